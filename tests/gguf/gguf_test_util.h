/*
 * gguf_test_util.h - helpers the GGUF tests share: a byte builder for
 * hand-made (often hostile) files, deep comparison of values and a walk that
 * touches every byte a parsed handle points to (so ASan sees bad pointers).
 */
#ifndef NTP_GGUF_TEST_UTIL_H
#define NTP_GGUF_TEST_UTIL_H

#include "ntp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A growing byte buffer; p is malloc'd, n bytes used of cap. */
struct gb {
    uint8_t *p;
    size_t n, cap;
};

static inline void gb_bytes(struct gb *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (p == NULL)
            abort(); /* a test helper: running out of memory here is not what is tested */
        b->p = p;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->n, src, n);
    b->n += n;
}

static inline void gb_le(struct gb *b, uint64_t v, size_t n)
{
    uint8_t t[8];
    for (size_t i = 0; i < n; i++)
        t[i] = (uint8_t)(v >> (8 * i));
    gb_bytes(b, t, n);
}

static inline void gb_u8(struct gb *b, uint8_t v)
{
    gb_le(b, v, 1);
}

static inline void gb_u32(struct gb *b, uint32_t v)
{
    gb_le(b, v, 4);
}

static inline void gb_u64(struct gb *b, uint64_t v)
{
    gb_le(b, v, 8);
}

/* A GGUF string: u64 length + bytes. */
static inline void gb_str(struct gb *b, const char *s)
{
    gb_u64(b, strlen(s));
    gb_bytes(b, s, strlen(s));
}

static inline void gb_header(struct gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}

/* Key and value type; the caller appends the value. */
static inline void gb_key(struct gb *b, const char *key, enum ntp_gguf_type type)
{
    gb_str(b, key);
    gb_u32(b, (uint32_t)type);
}

/* A tensor info with n_dims dims from ne. */
static inline void gb_tensor(struct gb *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                             uint32_t type, uint64_t offset)
{
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        gb_u64(b, ne[d]);
    gb_u32(b, type);
    gb_u64(b, offset);
}

/* Zero bytes up to the next multiple of align. */
static inline void gb_pad(struct gb *b, size_t align)
{
    while (b->n % align != 0)
        gb_u8(b, 0);
}

static inline void gb_free(struct gb *b)
{
    free(b->p);
    *b = (struct gb){0};
}

/* Deep equality of two values (floats by bits, so NaN equals itself). */
static inline bool gguf_value_equal(const ntp_gguf_value *a, const ntp_gguf_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case NTP_GGUF_UINT8:
    case NTP_GGUF_INT8:
        return a->u8 == b->u8;
    case NTP_GGUF_UINT16:
    case NTP_GGUF_INT16:
        return a->u16 == b->u16;
    case NTP_GGUF_UINT32:
    case NTP_GGUF_INT32:
        return a->u32 == b->u32;
    case NTP_GGUF_FLOAT32:
        return memcmp(&a->f32, &b->f32, sizeof a->f32) == 0;
    case NTP_GGUF_BOOL:
        return a->b == b->b;
    case NTP_GGUF_UINT64:
    case NTP_GGUF_INT64:
        return a->u64 == b->u64;
    case NTP_GGUF_FLOAT64:
        return memcmp(&a->f64, &b->f64, sizeof a->f64) == 0;
    case NTP_GGUF_STRING:
        return a->str.len == b->str.len && a->str.data[a->str.len] == '\0' &&
               b->str.data[b->str.len] == '\0' && memcmp(a->str.data, b->str.data, a->str.len) == 0;
    case NTP_GGUF_ARRAY:
        if (a->arr.type != b->arr.type || a->arr.len != b->arr.len)
            return false;
        for (uint64_t i = 0; i < a->arr.len; i++)
            if (!gguf_value_equal(&a->arr.elems[i], &b->arr.elems[i]))
                return false;
        return true;
    default:
        return false;
    }
}

/* Read every byte a value points to; returns a checksum so the reads are not optimized away. */
static inline uint64_t gguf_walk_value(const ntp_gguf_value *v)
{
    uint64_t sum = (uint64_t)v->type;
    if (v->type == NTP_GGUF_STRING) {
        for (uint64_t i = 0; i <= v->str.len; i++)
            sum = sum * 31 + (uint8_t)v->str.data[i];
    } else if (v->type == NTP_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->arr.len; i++)
            sum = sum * 31 + gguf_walk_value(&v->arr.elems[i]);
    } else {
        sum = sum * 31 + v->u8;
    }
    return sum;
}

/* Walk keys, values, tensor infos and tensor data of a parsed file. */
static inline uint64_t gguf_walk(const ntp_gguf *g)
{
    uint64_t sum = ntp_gguf_version(g) + ntp_gguf_alignment(g) + ntp_gguf_data_offset(g);
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++) {
        const char *k = ntp_gguf_kv_key(g, i);
        sum = sum * 31 + strlen(k) + (uint64_t)ntp_gguf_find_key(g, k);
        sum = sum * 31 + gguf_walk_value(ntp_gguf_kv_value(g, i));
    }
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        sum = sum * 31 + strlen(t->name) + (ntp_gguf_find_tensor(g, t->name) == t);
        const uint8_t *d = t->data;
        for (uint64_t j = 0; j < t->size; j++)
            sum = sum * 31 + d[j];
    }
    return sum;
}

#endif /* NTP_GGUF_TEST_UTIL_H */
