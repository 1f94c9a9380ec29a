/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader. Every input is parsed;
 * a file that parses is walked (every key, value, string byte, tensor byte),
 * read through every typed getter, copied through the writer and parsed
 * again, and the copy must hold the same keys and tensors. A crash, a
 * sanitizer report or a failed round trip is a finding.
 */
#include "gguf/gguf_test_util.h"

#include <stdint.h>
#include <stdlib.h>

/* A finding that is not a crash: stop so libFuzzer saves the input. */
static void require(bool ok)
{
    if (!ok)
        abort();
}

static void exercise_getters(const ntp_gguf *g)
{
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++) {
        const char *key = ntp_gguf_kv_key(g, i);
        uint32_t u32;
        uint64_t u64;
        int64_t i64;
        float f;
        bool b;
        const char *s;
        const ntp_gguf_value *v;
        require(ntp_gguf_find_key(g, key) == i);
        (void)ntp_gguf_get_u32(g, key, &u32);
        (void)ntp_gguf_get_u64(g, key, &u64);
        (void)ntp_gguf_get_i64(g, key, &i64);
        (void)ntp_gguf_get_f32(g, key, &f);
        (void)ntp_gguf_get_bool(g, key, &b);
        (void)ntp_gguf_get_str(g, key, &s);
        (void)ntp_gguf_get_arr(g, key, NTP_GGUF_TYPE_COUNT, &v);
    }
}

/* Whatever the reader accepts, the writer must take and give back unchanged. */
static void round_trip(const ntp_gguf *g)
{
    ntp_gguf_writer *w;
    require(ntp_gguf_writer_new(&w) == NTP_OK);
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++)
        require(ntp_gguf_writer_set_value(w, ntp_gguf_kv_key(g, i), ntp_gguf_kv_value(g, i)) ==
                NTP_OK);
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        require(ntp_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) ==
                NTP_OK);
    }
    void *buf;
    size_t len;
    require(ntp_gguf_writer_to_buffer(w, &buf, &len) == NTP_OK);
    ntp_gguf *g2 = NULL;
    require(ntp_gguf_parse(buf, len, &g2) == NTP_OK);
    require(ntp_gguf_n_kv(g2) == ntp_gguf_n_kv(g));
    require(ntp_gguf_n_tensors(g2) == ntp_gguf_n_tensors(g));
    require(ntp_gguf_alignment(g2) == ntp_gguf_alignment(g));
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++)
        require(gguf_value_equal(ntp_gguf_kv_value(g, i), ntp_gguf_kv_value(g2, i)));
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *a = ntp_gguf_tensor_at(g, i), *b = ntp_gguf_tensor_at(g2, i);
        require(strcmp(a->name, b->name) == 0 && a->type == b->type && a->size == b->size);
        require(memcmp(a->ne, b->ne, sizeof a->ne) == 0 && memcmp(a->data, b->data, a->size) == 0);
    }
    ntp_gguf_free(g2);
    free(buf);
    ntp_gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ntp_gguf *g = NULL;
    ntp_status s = ntp_gguf_parse(data, size, &g);
    if (s != NTP_OK) {
        require(g == NULL && ntp_last_error()[0] != '\0');
        return 0;
    }
    (void)gguf_walk(g);
    exercise_getters(g);
    round_trip(g);
    ntp_gguf_free(g);
    return 0;
}
