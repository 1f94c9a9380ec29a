/*
 * gguf_write.c - the GGUF writer: collects keys and tensors in memory and
 * serializes them as a little-endian GGUF v3 file, in the layout the reader
 * accepts: tensor data packed in insertion order, each start aligned, the
 * file padded to the alignment after the last tensor (as ggml writes it).
 */
#include "gguf/gguf_file.h"
#include "gguf/gguf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALIGNMENT_KEY "general.alignment"

/* One key; the value and everything it points to are malloc'd and owned here. */
struct wkv {
    char *key;
    ntp_gguf_value value;
};

/* One tensor; name and data are malloc'd copies. */
struct wtensor {
    char *name;
    enum ntp_type type;
    uint32_t n_dims;
    int64_t ne[NTP_GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint64_t size;                 /* bytes of data */
    void *data;
};

struct ntp_gguf_writer {
    struct wkv *kv; /* n_kv keys in insertion order, cap_kv allocated */
    size_t n_kv, cap_kv;
    struct wtensor *t; /* n_t tensors in insertion order, cap_t allocated */
    size_t n_t, cap_t;
    uint32_t alignment; /* power of two; 32 unless set */
};

ntp_status ntp_gguf_writer_new(ntp_gguf_writer **out)
{
    if (out == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_gguf_writer_new: NULL output");
    *out = calloc(1, sizeof **out);
    if (*out == NULL)
        return ntp__error(NTP_E_NOMEM, "no memory for a GGUF writer");
    (*out)->alignment = NTP_GGUF_DEFAULT_ALIGNMENT;
    return NTP_OK;
}

/*
 * Free what value_copy allocated. The public value type points to const
 * data because readers must not write through it; the writer owns its
 * copies, hence the casts.
 */
static void value_free(ntp_gguf_value *v)
{
    if (v->type == NTP_GGUF_STRING) {
        free((void *)v->str.data);
    } else if (v->type == NTP_GGUF_ARRAY) {
        ntp_gguf_value *e = (ntp_gguf_value *)v->arr.elems;
        for (uint64_t i = 0; i < v->arr.len; i++)
            value_free(&e[i]);
        free(e);
    }
    v->type = NTP_GGUF_UINT8;
}

void ntp_gguf_writer_free(ntp_gguf_writer *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        value_free(&w->kv[i].value);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* Deep copy of src into dst, checking what the reader would refuse. */
static ntp_status value_copy(ntp_gguf_value *dst, const ntp_gguf_value *src, int depth)
{
    *dst = *src;
    if (src->type < 0 || src->type >= NTP_GGUF_TYPE_COUNT)
        return ntp__error(NTP_E_INVALID_ARG, "unknown value type %d", (int)src->type);
    if (src->type == NTP_GGUF_STRING) {
        if (src->str.data == NULL && src->str.len > 0)
            return ntp__error(NTP_E_INVALID_ARG, "string of %llu bytes with NULL data",
                              (unsigned long long)src->str.len);
        char *s = src->str.len < SIZE_MAX ? malloc((size_t)src->str.len + 1) : NULL;
        if (s == NULL)
            return ntp__error(NTP_E_NOMEM, "no memory for a string of %llu bytes",
                              (unsigned long long)src->str.len);
        if (src->str.len > 0)
            memcpy(s, src->str.data, (size_t)src->str.len);
        s[src->str.len] = '\0';
        dst->str.data = s;
        return NTP_OK;
    }
    if (src->type != NTP_GGUF_ARRAY)
        return NTP_OK;
    dst->arr.elems = NULL;
    dst->arr.len = 0;
    if (depth >= NTP_GGUF_MAX_DEPTH)
        return ntp__error(NTP_E_INVALID_ARG, "arrays nested more than %d deep", NTP_GGUF_MAX_DEPTH);
    if (src->arr.type < 0 || src->arr.type >= NTP_GGUF_TYPE_COUNT ||
        (src->arr.elems == NULL && src->arr.len > 0))
        return ntp__error(NTP_E_INVALID_ARG, "array of unknown type %d or NULL elements",
                          (int)src->arr.type);
    if (src->arr.len == 0)
        return NTP_OK;
    ntp_gguf_value *e =
        src->arr.len <= SIZE_MAX / sizeof *e ? calloc((size_t)src->arr.len, sizeof *e) : NULL;
    if (e == NULL)
        return ntp__error(NTP_E_NOMEM, "no memory for an array of %llu values",
                          (unsigned long long)src->arr.len);
    dst->arr.elems = e;
    for (uint64_t i = 0; i < src->arr.len; i++) {
        if (src->arr.elems[i].type != src->arr.type)
            return ntp__error(NTP_E_INVALID_ARG, "array of %s holds a %s at element %llu",
                              ntp_gguf_type_name(src->arr.type),
                              ntp_gguf_type_name(src->arr.elems[i].type), (unsigned long long)i);
        dst->arr.len = i + 1; /* so value_free frees exactly what was copied */
        ntp_status s = value_copy(&e[i], &src->arr.elems[i], depth + 1);
        if (s != NTP_OK)
            return s;
    }
    return NTP_OK;
}

/* general.alignment is the writer's alignment; keep the two in step. */
static ntp_status check_alignment_key(ntp_gguf_writer *w, const ntp_gguf_value *v)
{
    if (v->type != NTP_GGUF_UINT32)
        return ntp__error(NTP_E_TYPE, "key '" ALIGNMENT_KEY "' must be uint32, not %s",
                          ntp_gguf_type_name(v->type));
    if (v->u32 == 0 || (v->u32 & (v->u32 - 1)) != 0)
        return ntp__error(NTP_E_INVALID_ARG,
                          "key '" ALIGNMENT_KEY "' is %u, expected a nonzero power of two", v->u32);
    w->alignment = v->u32;
    return NTP_OK;
}

/* Take ownership of *v (already a deep copy) under key: replace or append. */
static ntp_status put_owned(ntp_gguf_writer *w, const char *key, ntp_gguf_value *v)
{
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            value_free(&w->kv[i].value);
            w->kv[i].value = *v;
            return NTP_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        struct wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (kv == NULL)
            goto nomem;
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (k == NULL)
        goto nomem;
    w->kv[w->n_kv++] = (struct wkv){k, *v};
    return NTP_OK;
nomem:
    value_free(v);
    return ntp__error(NTP_E_NOMEM, "key '%s': no memory", key);
}

ntp_status ntp_gguf_writer_set_value(ntp_gguf_writer *w, const char *key, const ntp_gguf_value *v)
{
    if (w == NULL || key == NULL || v == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "GGUF writer: NULL writer, key or value");
    if (strcmp(key, ALIGNMENT_KEY) == 0) {
        ntp_status s = check_alignment_key(w, v);
        if (s != NTP_OK)
            return s;
    }
    ntp_gguf_value copy;
    ntp_status s = value_copy(&copy, v, 0);
    if (s != NTP_OK) {
        value_free(&copy);
        ntp__error_prefix("key '%s'", key);
        return s;
    }
    return put_owned(w, key, &copy);
}

ntp_status ntp_gguf_writer_set_u32(ntp_gguf_writer *w, const char *key, uint32_t v)
{
    ntp_gguf_value val = {.type = NTP_GGUF_UINT32, .u32 = v};
    return ntp_gguf_writer_set_value(w, key, &val);
}

ntp_status ntp_gguf_writer_set_i32(ntp_gguf_writer *w, const char *key, int32_t v)
{
    ntp_gguf_value val = {.type = NTP_GGUF_INT32, .i32 = v};
    return ntp_gguf_writer_set_value(w, key, &val);
}

ntp_status ntp_gguf_writer_set_u64(ntp_gguf_writer *w, const char *key, uint64_t v)
{
    ntp_gguf_value val = {.type = NTP_GGUF_UINT64, .u64 = v};
    return ntp_gguf_writer_set_value(w, key, &val);
}

ntp_status ntp_gguf_writer_set_f32(ntp_gguf_writer *w, const char *key, float v)
{
    ntp_gguf_value val = {.type = NTP_GGUF_FLOAT32, .f32 = v};
    return ntp_gguf_writer_set_value(w, key, &val);
}

ntp_status ntp_gguf_writer_set_bool(ntp_gguf_writer *w, const char *key, bool v)
{
    ntp_gguf_value val = {.type = NTP_GGUF_BOOL, .b = v};
    return ntp_gguf_writer_set_value(w, key, &val);
}

ntp_status ntp_gguf_writer_set_str(ntp_gguf_writer *w, const char *key, const char *v)
{
    if (v == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "key '%s': NULL string", key ? key : "(null)");
    ntp_gguf_value val = {.type = NTP_GGUF_STRING, .str = {v, strlen(v)}};
    return ntp_gguf_writer_set_value(w, key, &val);
}

/* One element of a plain-number array from its bytes in host order. */
static void scalar_from_bytes(ntp_gguf_value *v, enum ntp_gguf_type t, const uint8_t *p)
{
    v->type = t;
    if (t == NTP_GGUF_BOOL)
        v->b = *p != 0;
    else
        memcpy(&v->u64, p, ntp__gguf_scalar_size(t)); /* every member starts at the union's start */
}

/*
 * Build the array in place and hand it to put_owned: copying a temporary
 * array of values would double the memory of a large vocab.
 */
ntp_status ntp_gguf_writer_set_arr_data(ntp_gguf_writer *w, const char *key,
                                        enum ntp_gguf_type elem_type, const void *data, uint64_t n)
{
    if (w == NULL || key == NULL || (data == NULL && n > 0))
        return ntp__error(NTP_E_INVALID_ARG, "GGUF writer: NULL writer, key or data");
    if (strcmp(key, ALIGNMENT_KEY) == 0)
        return ntp__error(NTP_E_TYPE, "key '" ALIGNMENT_KEY "' must be uint32, not an array");
    size_t es = ntp__gguf_scalar_size(elem_type);
    if (es == 0)
        return ntp__error(NTP_E_INVALID_ARG, "key '%s': %s is not a plain number type", key,
                          ntp_gguf_type_name(elem_type));
    ntp_gguf_value *e = NULL;
    if (n > 0 && (n > SIZE_MAX / sizeof *e || (e = calloc((size_t)n, sizeof *e)) == NULL))
        return ntp__error(NTP_E_NOMEM, "key '%s': no memory for %llu values", key,
                          (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        scalar_from_bytes(&e[i], elem_type, (const uint8_t *)data + i * es);
    ntp_gguf_value v = {.type = NTP_GGUF_ARRAY, .arr = {elem_type, n, e}};
    return put_owned(w, key, &v);
}

ntp_status ntp_gguf_writer_set_arr_str(ntp_gguf_writer *w, const char *key, const char *const *strs,
                                       uint64_t n)
{
    if (w == NULL || key == NULL || (strs == NULL && n > 0))
        return ntp__error(NTP_E_INVALID_ARG, "GGUF writer: NULL writer, key or strings");
    if (strcmp(key, ALIGNMENT_KEY) == 0)
        return ntp__error(NTP_E_TYPE, "key '" ALIGNMENT_KEY "' must be uint32, not an array");
    ntp_gguf_value *e = NULL;
    if (n > 0 && (n > SIZE_MAX / sizeof *e || (e = calloc((size_t)n, sizeof *e)) == NULL))
        return ntp__error(NTP_E_NOMEM, "key '%s': no memory for %llu strings", key,
                          (unsigned long long)n);
    ntp_gguf_value v = {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_STRING, 0, e}};
    for (uint64_t i = 0; i < n; i++) {
        char *s = strs[i] ? strdup(strs[i]) : NULL;
        if (s == NULL) {
            value_free(&v);
            return ntp__error(strs[i] ? NTP_E_NOMEM : NTP_E_INVALID_ARG,
                              "key '%s': string %llu is NULL or out of memory", key,
                              (unsigned long long)i);
        }
        e[i] = (ntp_gguf_value){.type = NTP_GGUF_STRING, .str = {s, strlen(s)}};
        v.arr.len = i + 1;
    }
    return put_owned(w, key, &v);
}

ntp_status ntp_gguf_writer_set_alignment(ntp_gguf_writer *w, uint32_t alignment)
{
    if (w == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "GGUF writer: NULL writer");
    if (alignment != NTP_GGUF_DEFAULT_ALIGNMENT)
        return ntp_gguf_writer_set_u32(w, ALIGNMENT_KEY, alignment);
    /* The default needs no key: drop one set earlier, keeping the others in order. */
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, ALIGNMENT_KEY) == 0) {
            free(w->kv[i].key);
            value_free(&w->kv[i].value);
            memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
            w->n_kv--;
            break;
        }
    }
    w->alignment = alignment;
    return NTP_OK;
}

/* Bytes of a tensor of this type and shape; the message names the tensor. */
static ntp_status tensor_size(const char *name, enum ntp_type type, uint32_t n_dims,
                              const int64_t *ne, uint64_t *out)
{
    const ntp_type_traits *tt = ntp_type_get_traits((int)type);
    if (tt == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "tensor '%s': unknown type %d", name, (int)type);
    if (n_dims == 0 || n_dims > NTP_GGUF_MAX_DIMS || ne == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "tensor '%s': n_dims is %u, expected 1..%d", name,
                          n_dims, NTP_GGUF_MAX_DIMS);
    int64_t count = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0 || __builtin_mul_overflow(count, ne[d], &count))
            return ntp__error(NTP_E_INVALID_ARG,
                              "tensor '%s': ne[%u] = %lld is not positive or overflows", name, d,
                              (long long)ne[d]);
    }
    size_t row;
    ntp_status s = ntp_type_row_size(type, ne[0], &row);
    if (s != NTP_OK) {
        ntp__error_prefix("tensor '%s'", name);
        return s;
    }
    uint64_t size = row;
    for (uint32_t d = 1; d < n_dims; d++)
        if (!ntp__mul_u64(size, (uint64_t)ne[d], &size) || size > SIZE_MAX)
            return ntp__error(NTP_E_OVERFLOW, "tensor '%s': data size overflows", name);
    *out = size;
    return NTP_OK;
}

ntp_status ntp_gguf_writer_add_tensor(ntp_gguf_writer *w, const char *name, enum ntp_type type,
                                      uint32_t n_dims, const int64_t *ne, const void *data)
{
    if (w == NULL || name == NULL || data == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "GGUF writer: NULL writer, tensor name or data");
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return ntp__error(NTP_E_DUPLICATE, "tensor '%s' added twice", name);
    struct wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
    ntp_status s = tensor_size(name, type, n_dims, ne, &t.size);
    if (s != NTP_OK)
        return s;
    memcpy(t.ne, ne, n_dims * sizeof *ne);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        struct wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (nt == NULL)
            return ntp__error(NTP_E_NOMEM, "tensor '%s': no memory", name);
        w->t = nt;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    t.data = malloc((size_t)t.size);
    if (t.name == NULL || t.data == NULL) {
        free(t.name);
        free(t.data);
        return ntp__error(NTP_E_NOMEM, "tensor '%s': no memory for %llu bytes", name,
                          (unsigned long long)t.size);
    }
    memcpy(t.data, data, (size_t)t.size);
    w->t[w->n_t++] = t;
    return NTP_OK;
}

/* ------------------------------------------------------------ serialization */

/*
 * Where bytes go. The same walk runs once to count (no buf, no file) and
 * once to write, so the size is known before the buffer is allocated.
 */
struct sink {
    uint8_t *buf; /* memory target of pos bytes so far, or NULL */
    FILE *f;      /* file target, or NULL */
    uint64_t pos; /* bytes emitted */
    bool failed;  /* a write to f failed */
};

static void put(struct sink *o, const void *p, size_t n)
{
    if (o->buf)
        memcpy(o->buf + o->pos, p, n);
    else if (o->f && !o->failed && fwrite(p, 1, n, o->f) != n)
        o->failed = true;
    o->pos += n;
}

static void put_le(struct sink *o, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(o, b, n);
}

static void put_zeros(struct sink *o, uint64_t n)
{
    static const uint8_t zeros[64];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        put(o, zeros, k);
        n -= k;
    }
}

static void put_str(struct sink *o, const char *s, uint64_t n)
{
    put_le(o, n, 8);
    put(o, s, (size_t)n);
}

static void put_value(struct sink *o, const ntp_gguf_value *v)
{
    uint64_t bits = 0;
    switch (v->type) {
    case NTP_GGUF_STRING:
        put_str(o, v->str.data, v->str.len);
        return;
    case NTP_GGUF_ARRAY:
        put_le(o, (uint64_t)v->arr.type, 4);
        put_le(o, v->arr.len, 8);
        for (uint64_t i = 0; i < v->arr.len; i++)
            put_value(o, &v->arr.elems[i]);
        return;
    case NTP_GGUF_BOOL:
        bits = v->b;
        break;
    case NTP_GGUF_FLOAT32: {
        uint32_t u;
        memcpy(&u, &v->f32, sizeof u);
        bits = u;
        break;
    }
    case NTP_GGUF_FLOAT64:
        memcpy(&bits, &v->f64, sizeof bits);
        break;
    /* The integer members share the union's first bytes: read them at their own width. */
    case NTP_GGUF_UINT8:
    case NTP_GGUF_INT8:
        bits = v->u8;
        break;
    case NTP_GGUF_UINT16:
    case NTP_GGUF_INT16:
        bits = v->u16;
        break;
    case NTP_GGUF_UINT32:
    case NTP_GGUF_INT32:
        bits = v->u32;
        break;
    default:
        bits = v->u64;
        break;
    }
    put_le(o, bits, ntp__gguf_scalar_size(v->type));
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) & ~(a - 1);
}

static void put_file(const ntp_gguf_writer *w, struct sink *o)
{
    put(o, "GGUF", 4);
    put_le(o, 3, 4);
    put_le(o, w->n_t, 8);
    put_le(o, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(o, w->kv[i].key, strlen(w->kv[i].key));
        put_le(o, (uint64_t)w->kv[i].value.type, 4);
        put_value(o, &w->kv[i].value);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        put_str(o, t->name, strlen(t->name));
        put_le(o, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_le(o, (uint64_t)t->ne[d], 8);
        put_le(o, (uint64_t)t->type, 4);
        put_le(o, offset, 8);
        offset = align_up(offset + t->size, w->alignment);
    }
    /* A file without tensors ends after its infos, as gguf-py and ggml write it. */
    if (w->n_t > 0)
        put_zeros(o, align_up(o->pos, w->alignment) - o->pos);
    for (size_t i = 0; i < w->n_t; i++) {
        put(o, w->t[i].data, (size_t)w->t[i].size);
        put_zeros(o, align_up(w->t[i].size, w->alignment) - w->t[i].size);
    }
}

ntp_status ntp_gguf_writer_to_buffer(const ntp_gguf_writer *w, void **buf, size_t *len)
{
    if (w == NULL || buf == NULL || len == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_gguf_writer_to_buffer: NULL argument");
    struct sink count = {0};
    put_file(w, &count);
    if (count.pos > SIZE_MAX)
        return ntp__error(NTP_E_OVERFLOW, "GGUF of %llu bytes does not fit in memory",
                          (unsigned long long)count.pos);
    struct sink o = {.buf = malloc((size_t)count.pos)};
    if (o.buf == NULL)
        return ntp__error(NTP_E_NOMEM, "no memory for a GGUF of %llu bytes",
                          (unsigned long long)count.pos);
    put_file(w, &o);
    *buf = o.buf;
    *len = (size_t)o.pos;
    return NTP_OK;
}

ntp_status ntp__gguf_check_target(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? NTP_OK
                               : ntp__error(NTP_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ntp__error(NTP_E_IO, "%s exists and is %s, not a regular file: not replaced", path,
                          ntp__gguf_file_kind(st.st_mode));
    if ((st.st_mode & 0222) == 0 || access(path, W_OK) != 0)
        return ntp__error(NTP_E_IO, "%s exists and is read-only: not replaced", path);
    return NTP_OK;
}

int ntp__create_temp(const char *path, char *tmp, size_t size)
{
    static atomic_uint counter;
    for (int tries = 0; tries < 100; tries++) {
        snprintf(tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        const int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/*
 * Write to a temporary file in path's folder, flush and sync it, then rename
 * it over path, so that path holds the old file or the whole new one.
 */
ntp_status ntp_gguf_writer_write_file(const ntp_gguf_writer *w, const char *path)
{
    if (w == NULL || path == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_gguf_writer_write_file: NULL argument");
    ntp_status s = ntp__gguf_check_target(path);
    if (s != NTP_OK)
        return s;
    const size_t size = strlen(path) + 40;
    char *tmp = malloc(size);
    if (tmp == NULL)
        return ntp__error(NTP_E_NOMEM, "%s: no memory", path);
    const int fd = ntp__create_temp(path, tmp, size);
    struct sink o = {.f = fd >= 0 ? fdopen(fd, "wb") : NULL};
    if (o.f == NULL) {
        s = ntp__error(NTP_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return s;
    }
    put_file(w, &o);
    if (fflush(o.f) != 0 || o.failed || fsync(fd) != 0)
        s = ntp__error(NTP_E_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (fclose(o.f) != 0 && s == NTP_OK)
        s = ntp__error(NTP_E_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (s == NTP_OK && rename(tmp, path) != 0)
        s = ntp__error(NTP_E_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (s != NTP_OK)
        unlink(tmp);
    free(tmp);
    return s;
}
