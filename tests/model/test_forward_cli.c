/*
 * test_forward_cli.c - `numatp run` and `numatp perplexity` end to end
 * (argv[1] is the numatp binary):
 *  - run: greedy output is deterministic, text only on stdout, the speed line
 *    on stderr, bad flags exit with 2;
 *  - perplexity: the final estimate equals the one computed here from the
 *    numpy reference's logits with llama-perplexity's recipe (chunks of
 *    n_ctx from a fresh cache, BOS first, second half scored), to 1e-3
 *    relative; a text shorter than two chunks exits with 1 and says so.
 */
#include "forward_util.h"

#define CTX 16
#define NV  300

static const char *numatp;

/* Run a shell command; its stdout into out (NUL-terminated), exit status returned. */
static int run_cmd(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_run(const char *model)
{
    char cmd[1024], a[4096], b[4096];
    snprintf(cmd, sizeof cmd, "%s run -m '%s' -p 'hello there' -n 12 --temp 0 -t 1 2>/dev/null",
             numatp, model);
    CHECK(run_cmd(cmd, a, sizeof a) == 0);
    CHECK(run_cmd(cmd, b, sizeof b) == 0);
    CHECK(strcmp(a, b) == 0 && strlen(a) > 0);
    CHECK(strstr(a, "tok/s") == NULL);
    /* --no-mmap reads the same weights. */
    snprintf(cmd, sizeof cmd,
             "%s run -m '%s' -p 'hello there' -n 12 --temp 0 -t 1 --no-mmap 2>/dev/null", numatp,
             model);
    CHECK(run_cmd(cmd, b, sizeof b) == 0);
    CHECK(strcmp(a, b) == 0);
    snprintf(cmd, sizeof cmd, "%s run -m '%s' -p hi -n 4 --seed 5 -t 1 2>&1 >/dev/null", numatp,
             model);
    CHECK(run_cmd(cmd, a, sizeof a) == 0);
    CHECK(strstr(a, "prompt eval: ") != NULL && strstr(a, "generation: ") != NULL);
    snprintf(cmd, sizeof cmd, "%s run -m '%s' -p hi --top-k x 2>&1", numatp, model);
    CHECK(run_cmd(cmd, a, sizeof a) == 2);
    snprintf(cmd, sizeof cmd, "%s run -m '%s' -p hi --frobnicate 2>&1", numatp, model);
    CHECK(run_cmd(cmd, a, sizeof a) == 2);
    snprintf(cmd, sizeof cmd, "%s run -p hi 2>&1", numatp);
    CHECK(run_cmd(cmd, a, sizeof a) == 2);
}

/* llama-perplexity's score of one chunk's second half from its logits [CTX][NV]. */
static void score_chunk(const float *logits, const int32_t *chunk, double *nll, double *nll2,
                        int *count)
{
    for (int i = CTX / 2; i < CTX - 1; i++) {
        const float *l = logits + (size_t)i * NV;
        float max = l[0];
        for (int j = 1; j < NV; j++)
            max = l[j] > max ? l[j] : max;
        double sum = 0;
        for (int j = 0; j < NV; j++)
            sum += exp((double)l[j] - max);
        const double v = -((double)l[chunk[i + 1]] - max - log(sum));
        *nll += v;
        *nll2 += v * v;
        (*count)++;
    }
}

static void test_perplexity(const char *model)
{
    char text[300], cmd[1024], out[8192];
    snprintf(text, sizeof text, "%s/text.txt", fwd_tmpdir);
    FILE *f = fopen(text, "w");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    for (int i = 0; i < 40; i++)
        fprintf(f, "%s ", (const char *[]){"cat", "sat", "on", "the", "mat", "dog"}[i * 7 % 6]);
    fclose(f);
    ntp_model *m = NULL;
    CHECK_OK(ntp_model_load(model, ntp_model_default_params(), &m));
    if (m == NULL)
        return;
    int32_t toks[512], n = 0;
    CHECK_OK(ntp_tokenize(m, "", 0, true, false, toks, 512, &n)); /* BOS only, if any */
    const int32_t bos = n == 1 ? toks[0] : -1;
    char buf[512];
    f = fopen(text, "r");
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    CHECK_OK(ntp_tokenize(m, buf, len, true, false, toks, 512, &n));
    ntp_model_free(m);
    double nll = 0, nll2 = 0;
    int count = 0;
    static float ref[CTX * NV];
    for (int c = 0; c < n / CTX; c++) {
        int32_t chunk[CTX], g;
        memcpy(chunk, toks + c * CTX, sizeof chunk);
        const int32_t first = chunk[0];
        if (bos >= 0)
            chunk[0] = bos;
        CHECK(fwd_reference(model, chunk, CTX, "f16", 0, ref, CTX * NV, &g) == 0);
        chunk[0] = first;
        score_chunk(ref, chunk, &nll, &nll2, &count);
    }
    const double ppl = exp(nll / count);
    snprintf(cmd, sizeof cmd, "%s perplexity -m '%s' -f '%s' -c %d -b 5 -t 1 2>/dev/null", numatp,
             model, text, CTX);
    CHECK(run_cmd(cmd, out, sizeof out) == 0);
    const char *fin = strstr(out, "Final estimate: PPL = ");
    double got = 0, pm = 0;
    CHECK(fin != NULL && sscanf(fin, "Final estimate: PPL = %lf +/- %lf", &got, &pm) == 2);
    CHECK(strncmp(out, "[1]", 3) == 0);
    printf("perplexity: %d tokens, engine %.4f +/- %.5f, reference %.4f\n", n, got, pm, ppl);
    CHECK(fabs(got - ppl) <= 1e-3 * ppl);
    CHECK(pm > 0);
    snprintf(cmd, sizeof cmd, "%s perplexity -m '%s' -f '%s' -c 64 2>&1", numatp, model, text);
    CHECK(run_cmd(cmd, out, sizeof out) == 1);
    CHECK(strstr(out, "at least 128") != NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_forward_cli NUMATP\n");
        return 1;
    }
    numatp = argv[1];
    fwd_init();
    struct ntp_gen_params p = fwd_small("llama");
    char model[300];
    if (fwd_gen(&p, "cli", model, sizeof model) == 0) {
        test_run(model);
        test_perplexity(model);
    }
    fwd_cleanup();
    return ntp_test_result("test_forward_cli");
}
