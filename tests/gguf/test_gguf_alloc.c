/*
 * test_gguf_alloc.c - the GGUF reader when memory runs out: every allocation
 * that parsing a valid file makes (ntp_gguf_parse on a buffer, ntp_gguf_open,
 * and the loader's unmapped open) fails in turn, and each failure must give
 * a status other than NTP_OK with a message, no crash, and, under ASan, no
 * leak. Linked with the allocation wrappers of alloc_fail.h.
 */
#include "gguf/alloc_fail.h"
#include "gguf/gguf_file.h"
#include "test.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* A file with every kind of thing the parser allocates for: keys, strings, arrays, tensors. */
static void make_file(void **buf, size_t *len)
{
    ntp_gguf_writer *w = NULL;
    CHECK_OK(ntp_gguf_writer_new(&w));
    CHECK_OK(ntp_gguf_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(ntp_gguf_writer_set_u32(w, "llama.block_count", 2));
    const char *words[] = {"a", "bb", "ccc", "dddd"};
    CHECK_OK(ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", words, 4));
    const float scores[] = {0.5f, 1.5f, 2.5f, 3.5f};
    CHECK_OK(ntp_gguf_writer_set_arr_data(w, "tokenizer.ggml.scores", NTP_GGUF_FLOAT32, scores, 4));
    static float data[64];
    const int64_t ne[2] = {8, 8};
    char name[32];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "blk.%d.w", i);
        CHECK_OK(ntp_gguf_writer_add_tensor(w, name, NTP_TYPE_F32, 2, ne, data));
    }
    CHECK_OK(ntp_gguf_writer_to_buffer(w, buf, len));
    ntp_gguf_writer_free(w);
}

/* Run one way of reading the file with the n-th allocation failing; true once none failed. */
typedef ntp_status (*read_fn)(const void *buf, size_t len, const char *path, ntp_gguf **g);

static ntp_status by_parse(const void *buf, size_t len, const char *path, ntp_gguf **g)
{
    (void)path;
    return ntp_gguf_parse(buf, len, g);
}

static ntp_status by_open(const void *buf, size_t len, const char *path, ntp_gguf **g)
{
    (void)buf, (void)len;
    return ntp_gguf_open(path, g);
}

static ntp_status by_read(const void *buf, size_t len, const char *path, ntp_gguf **g)
{
    (void)buf, (void)len;
    return ntp__gguf_open_file(path, false, g);
}

/* Fail each allocation of fn in turn until it needs no more than it was given. */
static void fail_each(const char *what, read_fn fn, const void *buf, size_t len, const char *path)
{
    long n = 0;
    for (;; n++) {
        ntp_gguf *g = NULL;
        alloc_fail_nth(n);
        const ntp_status s = fn(buf, len, path, &g);
        alloc_fail_nth(-1);
        if (s == NTP_OK) {
            CHECK(g != NULL && ntp_gguf_n_tensors(g) == 3);
            ntp_gguf_free(g);
            break;
        }
        CHECK(g == NULL);
        if (ntp_last_error()[0] == '\0') {
            fprintf(stderr, "%s: allocation %ld failed: %s with no message\n", what, n,
                    ntp_status_str(s));
            ntp_test_failures++;
        }
    }
    printf("%s: each of %ld allocations failed in turn\n", what, n);
    CHECK(n >= 3);
}

int main(void)
{
    void *buf = NULL;
    size_t len = 0;
    make_file(&buf, &len);
    char path[256];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/ntp-test-gguf-alloc-%d.gguf", dir, (int)getpid());
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(buf, 1, len, f) == len && fclose(f) == 0);
    fail_each("ntp_gguf_parse", by_parse, buf, len, path);
    fail_each("ntp_gguf_open", by_open, buf, len, path);
    fail_each("open without mapping", by_read, buf, len, path);
    unlink(path);
    free(buf);
    return ntp_test_result("test_gguf_alloc");
}
