/*
 * gguf_access.c - read access to a parsed GGUF: the name indexes, the plain
 * accessors and the typed getters that convert integers between widths.
 */
#include "gguf/gguf_int.h"

#include <stdlib.h>
#include <string.h>

static const char *const type_names[NTP_GGUF_TYPE_COUNT] = {
    [NTP_GGUF_UINT8] = "uint8",     [NTP_GGUF_INT8] = "int8",     [NTP_GGUF_UINT16] = "uint16",
    [NTP_GGUF_INT16] = "int16",     [NTP_GGUF_UINT32] = "uint32", [NTP_GGUF_INT32] = "int32",
    [NTP_GGUF_FLOAT32] = "float32", [NTP_GGUF_BOOL] = "bool",     [NTP_GGUF_STRING] = "string",
    [NTP_GGUF_ARRAY] = "array",     [NTP_GGUF_UINT64] = "uint64", [NTP_GGUF_INT64] = "int64",
    [NTP_GGUF_FLOAT64] = "float64",
};

static const uint8_t scalar_sizes[NTP_GGUF_TYPE_COUNT] = {
    [NTP_GGUF_UINT8] = 1,  [NTP_GGUF_INT8] = 1,  [NTP_GGUF_UINT16] = 2,  [NTP_GGUF_INT16] = 2,
    [NTP_GGUF_UINT32] = 4, [NTP_GGUF_INT32] = 4, [NTP_GGUF_FLOAT32] = 4, [NTP_GGUF_BOOL] = 1,
    [NTP_GGUF_UINT64] = 8, [NTP_GGUF_INT64] = 8, [NTP_GGUF_FLOAT64] = 8,
};

const char *ntp_gguf_type_name(int t)
{
    return t >= 0 && t < NTP_GGUF_TYPE_COUNT ? type_names[t] : "unknown";
}

size_t ntp__gguf_scalar_size(int t)
{
    return t >= 0 && t < NTP_GGUF_TYPE_COUNT ? scalar_sizes[t] : 0;
}

/* FNV-1a: short names, few of them; any decent spread will do. */
static uint64_t hash_bytes(const char *s, uint64_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (uint64_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3u;
    return h;
}

static const char *entry_name(const ntp_gguf *g, bool tensors, int64_t i, uint64_t *len)
{
    if (tensors) {
        *len = strlen(g->tensors[i].name);
        return g->tensors[i].name;
    }
    *len = g->kv[i].key_len;
    return g->kv[i].key;
}

static int64_t index_find(const ntp_gguf *g, bool tensors, const char *name, uint64_t len)
{
    const struct ntp_gguf_index *ix = tensors ? &g->t_index : &g->kv_index;
    if (ix->slots == NULL)
        return -1;
    for (uint64_t h = hash_bytes(name, len) & ix->mask;; h = (h + 1) & ix->mask) {
        uint32_t slot = ix->slots[h];
        if (slot == 0)
            return -1;
        uint64_t n;
        const char *s = entry_name(g, tensors, (int64_t)slot - 1, &n);
        if (n == len && memcmp(s, name, (size_t)len) == 0)
            return (int64_t)slot - 1;
    }
}

ntp_status ntp__gguf_index_build(ntp_gguf *g, bool tensors, int64_t *first, int64_t *second)
{
    struct ntp_gguf_index *ix = tensors ? &g->t_index : &g->kv_index;
    int64_t n = tensors ? g->n_tensors : g->n_kv;
    if (n == 0)
        return NTP_OK;
    /* At most half full, so probes stay short and an empty slot always ends a search. */
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n)
        cap *= 2;
    ix->slots = calloc((size_t)cap, sizeof *ix->slots);
    if (ix->slots == NULL)
        return ntp__error(NTP_E_NOMEM, "no memory to index %lld names", (long long)n);
    ix->mask = cap - 1;
    for (int64_t i = 0; i < n; i++) {
        uint64_t len;
        const char *name = entry_name(g, tensors, i, &len);
        uint64_t h = hash_bytes(name, len) & ix->mask;
        for (; ix->slots[h] != 0; h = (h + 1) & ix->mask) {
            uint64_t olen;
            const char *other = entry_name(g, tensors, (int64_t)ix->slots[h] - 1, &olen);
            if (olen == len && memcmp(other, name, (size_t)len) == 0) {
                *first = (int64_t)ix->slots[h] - 1;
                *second = i;
                return NTP_E_DUPLICATE;
            }
        }
        ix->slots[h] = (uint32_t)(i + 1);
    }
    return NTP_OK;
}

uint32_t ntp_gguf_version(const ntp_gguf *g)
{
    return g->version;
}

uint64_t ntp_gguf_alignment(const ntp_gguf *g)
{
    return g->alignment;
}

uint64_t ntp_gguf_data_offset(const ntp_gguf *g)
{
    return g->data_offset;
}

uint64_t ntp_gguf_file_size(const ntp_gguf *g)
{
    return g->size;
}

int64_t ntp_gguf_n_kv(const ntp_gguf *g)
{
    return g->n_kv;
}

const char *ntp_gguf_kv_key(const ntp_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? g->kv[i].key : NULL;
}

const ntp_gguf_value *ntp_gguf_kv_value(const ntp_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? &g->kv[i].value : NULL;
}

int64_t ntp_gguf_find_key(const ntp_gguf *g, const char *key)
{
    return key ? index_find(g, false, key, strlen(key)) : -1;
}

const ntp_gguf_value *ntp_gguf_get(const ntp_gguf *g, const char *key)
{
    return ntp_gguf_kv_value(g, ntp_gguf_find_key(g, key));
}

int64_t ntp_gguf_n_tensors(const ntp_gguf *g)
{
    return g->n_tensors;
}

const ntp_gguf_tensor *ntp_gguf_tensor_at(const ntp_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const ntp_gguf_tensor *ntp_gguf_find_tensor(const ntp_gguf *g, const char *name)
{
    int64_t i = name ? index_find(g, true, name, strlen(name)) : -1;
    return ntp_gguf_tensor_at(g, i);
}

/* ------------------------------------------------------------ typed getters */

static ntp_status lookup(const ntp_gguf *g, const char *key, const ntp_gguf_value **v)
{
    if (g == NULL || key == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "GGUF getter: NULL handle or key");
    *v = ntp_gguf_get(g, key);
    if (*v == NULL)
        return ntp__error(NTP_E_NOT_FOUND, "key '%s' not found", key);
    return NTP_OK;
}

static ntp_status wrong_type(const char *key, const ntp_gguf_value *v, const char *want)
{
    return ntp__error(NTP_E_TYPE, "key '%s' has type %s, expected %s", key,
                      ntp_gguf_type_name(v->type), want);
}

/* An integer value as sign and magnitude, so every width compares exactly; false if not one. */
static bool int_parts(const ntp_gguf_value *v, bool *neg, uint64_t *mag)
{
    int64_t s;
    switch (v->type) {
    case NTP_GGUF_UINT8:
        *neg = false, *mag = v->u8;
        return true;
    case NTP_GGUF_UINT16:
        *neg = false, *mag = v->u16;
        return true;
    case NTP_GGUF_UINT32:
        *neg = false, *mag = v->u32;
        return true;
    case NTP_GGUF_UINT64:
        *neg = false, *mag = v->u64;
        return true;
    case NTP_GGUF_INT8:
        s = v->i8;
        break;
    case NTP_GGUF_INT16:
        s = v->i16;
        break;
    case NTP_GGUF_INT32:
        s = v->i32;
        break;
    case NTP_GGUF_INT64:
        s = v->i64;
        break;
    default:
        return false;
    }
    *neg = s < 0;
    /* -(s + 1) + 1 avoids negating INT64_MIN. */
    *mag = *neg ? (uint64_t)(-(s + 1)) + 1 : (uint64_t)s;
    return true;
}

/* Fetch key as an integer within [-neg_max, pos_max]. */
static ntp_status get_int(const ntp_gguf *g, const char *key, const char *want, uint64_t neg_max,
                          uint64_t pos_max, bool *neg, uint64_t *mag)
{
    const ntp_gguf_value *v;
    ntp_status s = lookup(g, key, &v);
    if (s != NTP_OK)
        return s;
    if (!int_parts(v, neg, mag))
        return wrong_type(key, v, want);
    if (*mag > (*neg ? neg_max : pos_max))
        return ntp__error(NTP_E_TYPE, "key '%s': %s value %s%llu does not fit in %s", key,
                          ntp_gguf_type_name(v->type), *neg ? "-" : "", (unsigned long long)*mag,
                          want);
    return NTP_OK;
}

ntp_status ntp_gguf_get_u32(const ntp_gguf *g, const char *key, uint32_t *out)
{
    bool neg = false;
    uint64_t mag = 0;
    ntp_status s = get_int(g, key, "uint32", 0, UINT32_MAX, &neg, &mag);
    if (s == NTP_OK)
        *out = (uint32_t)mag;
    return s;
}

ntp_status ntp_gguf_get_u64(const ntp_gguf *g, const char *key, uint64_t *out)
{
    bool neg = false;
    uint64_t mag = 0;
    ntp_status s = get_int(g, key, "uint64", 0, UINT64_MAX, &neg, &mag);
    if (s == NTP_OK)
        *out = mag;
    return s;
}

ntp_status ntp_gguf_get_i64(const ntp_gguf *g, const char *key, int64_t *out)
{
    bool neg = false;
    uint64_t mag = 0;
    ntp_status s = get_int(g, key, "int64", (uint64_t)INT64_MAX + 1, INT64_MAX, &neg, &mag);
    if (s == NTP_OK)
        *out = neg ? -(int64_t)(mag - 1) - 1 : (int64_t)mag;
    return s;
}

ntp_status ntp_gguf_get_f32(const ntp_gguf *g, const char *key, float *out)
{
    const ntp_gguf_value *v;
    ntp_status s = lookup(g, key, &v);
    if (s != NTP_OK)
        return s;
    bool neg = false;
    uint64_t mag = 0;
    if (v->type == NTP_GGUF_FLOAT32)
        *out = v->f32;
    else if (v->type == NTP_GGUF_FLOAT64)
        *out = (float)v->f64;
    else if (int_parts(v, &neg, &mag))
        *out = neg ? -(float)mag : (float)mag;
    else
        return wrong_type(key, v, "a number");
    return NTP_OK;
}

ntp_status ntp_gguf_get_bool(const ntp_gguf *g, const char *key, bool *out)
{
    const ntp_gguf_value *v;
    ntp_status s = lookup(g, key, &v);
    if (s == NTP_OK && v->type != NTP_GGUF_BOOL)
        return wrong_type(key, v, "bool");
    if (s == NTP_OK)
        *out = v->b;
    return s;
}

ntp_status ntp_gguf_get_str(const ntp_gguf *g, const char *key, const char **out)
{
    const ntp_gguf_value *v;
    ntp_status s = lookup(g, key, &v);
    if (s == NTP_OK && v->type != NTP_GGUF_STRING)
        return wrong_type(key, v, "string");
    if (s == NTP_OK)
        *out = v->str.data;
    return s;
}

ntp_status ntp_gguf_get_arr(const ntp_gguf *g, const char *key, enum ntp_gguf_type elem_type,
                            const ntp_gguf_value **out)
{
    const ntp_gguf_value *v;
    ntp_status s = lookup(g, key, &v);
    if (s != NTP_OK)
        return s;
    if (v->type != NTP_GGUF_ARRAY)
        return wrong_type(key, v, "array");
    if (elem_type != NTP_GGUF_TYPE_COUNT && v->arr.type != elem_type)
        return ntp__error(NTP_E_TYPE, "key '%s' is an array of %s, expected an array of %s", key,
                          ntp_gguf_type_name(v->arr.type), ntp_gguf_type_name(elem_type));
    *out = v;
    return NTP_OK;
}
