/*
 * test_gguf_fixtures.c - the vocab-only GGUF files llama.cpp made (copied into
 * tests/data/tokenizer) open, hold what a tokenizer needs, and come back byte
 * for byte when every key is copied through the writer.
 */
#include "gguf_test_util.h"
#include "test.h"

#include <glob.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

static void check_fixture(const char *path)
{
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    if (g == NULL)
        return;
    gguf_walk(g);
    CHECK(ntp_gguf_version(g) == 3);
    CHECK(ntp_gguf_n_tensors(g) == 0); /* vocab only */
    CHECK(ntp_gguf_n_kv(g) > 5);
    const char *model;
    CHECK_OK(ntp_gguf_get_str(g, "tokenizer.ggml.model", &model));
    const ntp_gguf_value *tokens;
    CHECK_OK(ntp_gguf_get_arr(g, "tokenizer.ggml.tokens", NTP_GGUF_STRING, &tokens));
    if (ntp_gguf_get(g, "tokenizer.ggml.tokens"))
        CHECK(tokens->arr.len > 1000);
    /* Copy every key through the writer: the result is the same file, byte for byte. */
    ntp_gguf_writer *w;
    CHECK_OK(ntp_gguf_writer_new(&w));
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++)
        CHECK_OK(ntp_gguf_writer_set_value(w, ntp_gguf_kv_key(g, i), ntp_gguf_kv_value(g, i)));
    void *buf;
    size_t len;
    CHECK_OK(ntp_gguf_writer_to_buffer(w, &buf, &len));
    ntp_gguf *g2 = NULL;
    CHECK_OK(ntp_gguf_parse(buf, len, &g2));
    if (g2) {
        CHECK(ntp_gguf_n_kv(g2) == ntp_gguf_n_kv(g));
        for (int64_t i = 0; i < ntp_gguf_n_kv(g) && i < ntp_gguf_n_kv(g2); i++)
            CHECK(gguf_value_equal(ntp_gguf_kv_value(g, i), ntp_gguf_kv_value(g2, i)));
    }
    /* Same bytes as the file: read it again and compare. */
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    uint8_t *orig = malloc(len + 1);
    size_t got = f ? fread(orig, 1, len + 1, f) : 0;
    CHECK(got == len && got == ntp_gguf_file_size(g) && memcmp(orig, buf, len) == 0);
    if (f)
        fclose(f);
    free(orig);
    printf("%s: %lld keys, %llu tokens, model %s, rewritten byte for byte\n", path,
           (long long)ntp_gguf_n_kv(g), (unsigned long long)tokens->arr.len, model);
    ntp_gguf_free(g2);
    free(buf);
    ntp_gguf_writer_free(w);
    ntp_gguf_free(g);
}

int main(void)
{
    /* The fixtures are part of the repository: finding none is a failure, not a skip. */
    const char *pattern = NTP_SOURCE_ROOT "/tests/data/tokenizer/*.gguf";
    glob_t gl;
    if (glob(pattern, 0, NULL, &gl) != 0 || gl.gl_pathc == 0) {
        fprintf(stderr, "test_gguf_fixtures: no tokenizer fixtures at %s\n", pattern);
        return 1;
    }
    for (size_t i = 0; i < gl.gl_pathc; i++)
        check_fixture(gl.gl_pathv[i]);
    globfree(&gl);
    return ntp_test_result("test_gguf_fixtures");
}
