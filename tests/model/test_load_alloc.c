/*
 * test_load_alloc.c - the loader when memory runs out: every allocation that
 * ntp_model_load makes for a small generated model (the file, the
 * hyper-parameters, the devices, the weights, the tokenizer) fails in turn,
 * mapped and unmapped; each failure must give a status other than NTP_OK with
 * a message naming the file, no crash, and, under ASan, no leak. Linked with
 * the allocation wrappers of gguf/alloc_fail.h.
 */
#include "forward_util.h"
#include "gguf/alloc_fail.h"

/* Fail each allocation of loading path in turn until the load needs no more than it got. */
static void fail_each(const char *path, bool use_mmap)
{
    ntp_model_params mp = ntp_model_default_params();
    mp.n_threads = 1;
    mp.use_mmap = use_mmap;
    long n = 0;
    for (;; n++) {
        ntp_model *m = NULL;
        alloc_fail_nth(n);
        const ntp_status s = ntp_model_load(path, mp, &m);
        alloc_fail_nth(-1);
        if (s == NTP_OK) {
            CHECK(m != NULL && ntp_model_n_vocab(m) == 300);
            ntp_model_free(m);
            break;
        }
        CHECK(m == NULL);
        if (strstr(ntp_last_error(), path) == NULL) {
            fprintf(stderr, "allocation %ld failed: %s, message '%s' does not name the file\n", n,
                    ntp_status_str(s), ntp_last_error());
            ntp_test_failures++;
        }
    }
    printf("ntp_model_load (use_mmap %d): each of %ld allocations failed in turn\n", (int)use_mmap,
           n);
    CHECK(n >= 10);
}

int main(void)
{
    fwd_init();
    struct ntp_gen_params p = fwd_small("llama");
    char path[300];
    if (fwd_gen(&p, "alloc", path, sizeof path) == 0) {
        setenv("NTP_LOG", "error", 1); /* one load per allocation: no info lines for each */
        fail_each(path, true);
        fail_each(path, false);
    }
    fwd_cleanup();
    return ntp_test_result("test_load_alloc");
}
