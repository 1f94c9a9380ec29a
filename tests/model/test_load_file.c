/*
 * test_load_file.c - how the loader reads the model file: without mapping it
 * (use_mmap false, --no-mmap) it loads the same model as with the mapping,
 * over tensors larger than its read buffer and shards cut inside rows; a
 * file truncated while it is being loaded fails with NTP_E_IO "the file
 * changed while it was being read" on either path, where the mapped path used
 * to die of SIGBUS; a FIFO given as the model is refused at once.
 */
#include "forward_util.h"

#include <sys/stat.h>

static char model[300];

/* Logits of the last of a few prompt tokens, with the model loaded as mp says. */
static int last_logits(ntp_model_params mp, float *out, int32_t n_vocab)
{
    ntp_model *m = NULL;
    ntp_context *c = NULL;
    ntp_context_params cp = ntp_context_default_params();
    cp.n_ctx = 16;
    int32_t toks[5];
    fwd_tokens(toks, 5, n_vocab, 3);
    int rc = -1;
    if (ntp_model_load(model, mp, &m) == NTP_OK && ntp_context_new(m, cp, &c) == NTP_OK &&
        ntp_decode(c, toks, 5, false) == NTP_OK) {
        memcpy(out, ntp_get_logits(c, -1), (size_t)n_vocab * sizeof(float));
        rc = 0;
    } else {
        fprintf(stderr, "loading %s: %s\n", model, ntp_last_error());
    }
    ntp_context_free(c);
    ntp_model_free(m);
    return rc;
}

/*
 * Reads without the mapping give bit-identical weights, so bit-identical
 * logits: on one device (the head read in several parts) and on two
 * (attn_output and ffn_down cut inside their rows: strided reads).
 */
static void test_no_mmap(int32_t n_vocab)
{
    float *a = calloc((size_t)n_vocab, sizeof *a), *b = calloc((size_t)n_vocab, sizeof *b);
    if (a == NULL || b == NULL)
        exit(1);
    ntp_model_params mp = ntp_model_default_params();
    CHECK(mp.use_mmap);
    mp.n_threads = 2;
    for (mp.tp = 1; mp.tp <= 2; mp.tp++) {
        mp.use_mmap = true;
        CHECK(last_logits(mp, a, n_vocab) == 0);
        mp.use_mmap = false;
        CHECK(last_logits(mp, b, n_vocab) == 0);
        CHECK(memcmp(a, b, (size_t)n_vocab * sizeof *a) == 0);
    }
    free(a);
    free(b);
}

/* The progress callback cuts the file to half its size after the first tensor. */
static bool truncate_once(float fraction, void *user)
{
    (void)fraction;
    off_t *size = user;
    if (*size > 0 && truncate(model, *size / 2) != 0)
        perror("truncate");
    *size = 0;
    return true;
}

static void test_truncated(bool use_mmap)
{
    char copy[700];
    snprintf(copy, sizeof copy, "cp '%s' '%s.bak'", model, model);
    CHECK(system(copy) == 0);
    struct stat st;
    CHECK(stat(model, &st) == 0);
    off_t size = st.st_size;
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 2;
    mp.use_mmap = use_mmap;
    mp.progress = truncate_once;
    mp.progress_user = &size;
    ntp_model *m = (ntp_model *)1;
    ntp_status s = ntp_model_load(model, mp, &m);
    printf("truncated while loading (use_mmap %d) -> %s: %s\n", (int)use_mmap, ntp_status_str(s),
           ntp_last_error());
    CHECK(s == NTP_E_IO && m == NULL);
    CHECK(strstr(ntp_last_error(), "the file changed while it was being read") != NULL);
    CHECK(strstr(ntp_last_error(), model) != NULL);
    snprintf(copy, sizeof copy, "mv '%s.bak' '%s'", model, model);
    CHECK(system(copy) == 0);
}

static void test_fifo(void)
{
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/fifo.gguf", fwd_tmpdir);
    CHECK(mkfifo(fifo, 0600) == 0);
    alarm(20); /* opening a FIFO used to wait for a writer forever */
    for (int map = 0; map < 2; map++) {
        ntp_model_params mp = ntp_model_default_params();
        mp.use_mmap = map;
        ntp_model *m = (ntp_model *)1;
        CHECK_STATUS(ntp_model_load(fifo, mp, &m), NTP_E_IO);
        CHECK(m == NULL && strstr(ntp_last_error(), "a FIFO, not a regular file") != NULL);
    }
    alarm(0);
}

int main(void)
{
    fwd_init();
    struct ntp_gen_params p = fwd_small("llama");
    p.n_vocab = 20000; /* an F32 output head of 5 MB: more than one read of --no-mmap's buffer */
    p.type = NTP_TYPE_F32;
    struct ntp_gen_params small = fwd_small("llama"); /* a file shorter than the first read */
    small.type = NTP_TYPE_Q8_0;
    if (fwd_gen(&small, "small", model, sizeof model) == 0)
        test_no_mmap((int32_t)small.n_vocab);
    if (fwd_gen(&p, "model", model, sizeof model) == 0) {
        test_no_mmap((int32_t)p.n_vocab);
        test_truncated(true);
        test_truncated(false);
    }
    test_fifo();
    fwd_cleanup();
    return ntp_test_result("test_load_file");
}
