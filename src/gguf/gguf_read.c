/*
 * gguf_read.c - the GGUF reader: a pure, bounds-checked parse of a buffer (opening
 * files is gguf_file.c's).
 *
 * Layout (v2 and v3 are the same; v3 only added big-endian files, which we
 * refuse): magic "GGUF", u32 version, u64 tensor count, u64 key/value count,
 * the key/value pairs, the tensor infos, padding to the alignment, the data.
 *
 * Status codes a hostile file gets:
 *   NTP_E_TRUNCATED    a read, a count, a string or tensor data runs past the end
 *   NTP_E_OVERFLOW     a count, a dimension product or an offset does not fit 64 bits
 *   NTP_E_FORMAT       bad magic, unknown value type, bad bool, bad dims/shape,
 *                      bad alignment, misaligned or overlapping tensor data,
 *                      NUL byte inside a key or tensor name
 *   NTP_E_UNSUPPORTED  GGUF v1, big-endian files, other versions, arrays nested
 *                      deeper than NTP_GGUF_MAX_DEPTH, tensor types ggml never defined
 *   NTP_E_DUPLICATE    a key or a tensor name twice
 *   NTP_E_TYPE         general.alignment that is not a uint32
 * Every message names the item (header, key, tensor) and the byte offset.
 */
#include "gguf/gguf_file.h"
#include "gguf/gguf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Smallest encodings, used to reject counts before allocating for them. */
#define MIN_KV_BYTES 13 /* u64 key length + u32 type + a 1-byte value */
#define MIN_TENSOR_BYTES                                                                           \
    32                      /* u64 name length + u32 n_dims + one u64 dim + u32 type + u64 offset  \
                             */
#define MIN_STRING_BYTES 8  /* u64 length */
#define MIN_ARRAY_BYTES  12 /* u32 element type + u64 length */

#define ARENA_FIRST_CHUNK (64u << 10)
#define ARENA_MAX_CHUNK   (16u << 20)

/* The cursor of one parse. */
struct parser {
    const uint8_t *buf; /* bytes being parsed, len of them (borrowed) */
    size_t len;
    uint64_t file_size; /* bytes of the whole file: where tensor data must end */
    bool with_data;     /* buf is the whole file: tensors point into it */
    size_t pos;         /* next byte to read */
    ntp_gguf *g;        /* handle being filled */
    char where[112];    /* the item being read, for messages: "header", "key 'x'", ... */
};

static ntp_status perr_at(const struct parser *p, size_t at, ntp_status s, const char *fmt, ...)
    NTP_PRINTF(4, 5);

/* Record "<item> at byte <at>: <message>"; at is where the offending field starts. */
static ntp_status perr_at(const struct parser *p, size_t at, ntp_status s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ntp__error(s, "%s at byte %zu: %s", p->where, at, msg);
}

/* The same at the cursor. */
#define perr(p, ...) perr_at((p), (p)->pos, __VA_ARGS__)

/* "kind 'name'" with unprintable bytes shown as '?' and long names cut, for messages. */
static void describe(char *dst, size_t cap, const char *kind, const char *s, uint64_t n)
{
    char shown[68];
    size_t k = 0;
    for (; k < n && k < 64; k++)
        shown[k] = (s[k] >= 0x20 && s[k] < 0x7f) ? s[k] : '?';
    shown[k] = '\0';
    snprintf(dst, cap, "%s '%s%s'", kind, shown, n > 64 ? "..." : "");
}

static void *arena_alloc(ntp_gguf *g, uint64_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    n = (n + 7) & ~(uint64_t)7; /* keep every block 8-byte aligned for ntp_gguf_value */
    struct ntp_gguf_chunk *c = g->arena;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = c ? 2 * c->cap : ARENA_FIRST_CHUNK;
        if (cap > ARENA_MAX_CHUNK)
            cap = ARENA_MAX_CHUNK;
        if (cap < n)
            cap = (size_t)n;
        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->next = g->arena;
        c->used = 0;
        c->cap = cap;
        g->arena = c;
    }
    void *r = (char *)c->data + c->used;
    c->used += (size_t)n;
    return r;
}

/* Fail with NTP_E_TRUNCATED unless n more bytes are there. */
static ntp_status need(const struct parser *p, uint64_t n, const char *what)
{
    if (n > p->len - p->pos)
        return perr(p, NTP_E_TRUNCATED, "%s needs %llu bytes, only %zu left", what,
                    (unsigned long long)n, p->len - p->pos);
    return NTP_OK;
}

/* Little-endian load of n <= 8 bytes; the caller has checked them with need(). */
static uint64_t load_le(struct parser *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p->buf[p->pos + i] << (8 * i);
    p->pos += n;
    return v;
}

static ntp_status read_u32(struct parser *p, uint32_t *v, const char *what)
{
    ntp_status s = need(p, 4, what);
    if (s == NTP_OK)
        *v = (uint32_t)load_le(p, 4);
    return s;
}

static ntp_status read_u64(struct parser *p, uint64_t *v, const char *what)
{
    ntp_status s = need(p, 8, what);
    if (s == NTP_OK)
        *v = load_le(p, 8);
    return s;
}

/*
 * Fail unless count items of at least min_bytes each can still follow: the
 * check that comes before any allocation sized by a count from the file.
 */
static ntp_status check_count(const struct parser *p, size_t at, uint64_t count, uint64_t min_bytes,
                              const char *what)
{
    uint64_t bytes;
    if (!ntp__mul_u64(count, min_bytes, &bytes))
        return perr_at(p, at, NTP_E_OVERFLOW, "%llu %s is out of range", (unsigned long long)count,
                       what);
    if (bytes > p->len - p->pos)
        return perr_at(p, at, NTP_E_TRUNCATED, "%llu %s need at least %llu bytes, only %zu left",
                       (unsigned long long)count, what, (unsigned long long)bytes, p->len - p->pos);
    return NTP_OK;
}

/* A GGUF string (u64 length + bytes), copied NUL-terminated into the arena. */
static ntp_status read_string(struct parser *p, const char *what, const char **out,
                              uint64_t *out_len)
{
    uint64_t n;
    size_t at = p->pos;
    ntp_status s = read_u64(p, &n, what);
    if (s != NTP_OK)
        return s;
    if (n > p->len - p->pos)
        return perr_at(p, at, NTP_E_TRUNCATED,
                       "%s of %llu bytes runs past the end (%zu bytes left)", what,
                       (unsigned long long)n, p->len - p->pos);
    char *dst = arena_alloc(p->g, n + 1);
    if (dst == NULL)
        return perr(p, NTP_E_NOMEM, "no memory for a %s of %llu bytes", what,
                    (unsigned long long)n);
    if (n > 0)
        memcpy(dst, p->buf + p->pos, (size_t)n);
    dst[n] = '\0';
    p->pos += (size_t)n;
    *out = dst;
    *out_len = n;
    return NTP_OK;
}

/* A key or tensor name: a string that must not contain NUL, since lookups use C strings. */
static ntp_status read_name(struct parser *p, const char *what, const char **out, uint64_t *out_len)
{
    size_t start = p->pos;
    ntp_status s = read_string(p, what, out, out_len);
    if (s == NTP_OK && memchr(*out, '\0', (size_t)*out_len) != NULL) {
        p->pos = start;
        return perr(p, NTP_E_FORMAT, "%s contains a NUL byte", what);
    }
    return s;
}

static ntp_status read_value(struct parser *p, uint32_t type, ntp_gguf_value *v, int depth);

static ntp_status read_scalar(struct parser *p, uint32_t type, ntp_gguf_value *v)
{
    size_t n = ntp__gguf_scalar_size((int)type);
    ntp_status s = need(p, n, ntp_gguf_type_name((int)type));
    if (s != NTP_OK)
        return s;
    if (type == NTP_GGUF_BOOL && p->buf[p->pos] > 1)
        return perr(p, NTP_E_FORMAT, "bool byte is 0x%02x, expected 0 or 1", p->buf[p->pos]);
    uint64_t bits = load_le(p, n);
    v->type = (enum ntp_gguf_type)type;
    switch (type) {
    case NTP_GGUF_UINT8:
        v->u8 = (uint8_t)bits;
        break;
    case NTP_GGUF_INT8:
        v->i8 = (int8_t)(uint8_t)bits;
        break;
    case NTP_GGUF_UINT16:
        v->u16 = (uint16_t)bits;
        break;
    case NTP_GGUF_INT16:
        v->i16 = (int16_t)(uint16_t)bits;
        break;
    case NTP_GGUF_UINT32:
        v->u32 = (uint32_t)bits;
        break;
    case NTP_GGUF_INT32:
        v->i32 = (int32_t)(uint32_t)bits;
        break;
    case NTP_GGUF_BOOL:
        v->b = bits != 0;
        break;
    case NTP_GGUF_UINT64:
        v->u64 = bits;
        break;
    case NTP_GGUF_INT64:
        v->i64 = (int64_t)bits;
        break;
    case NTP_GGUF_FLOAT32: {
        uint32_t u = (uint32_t)bits;
        memcpy(&v->f32, &u, sizeof u);
        break;
    }
    case NTP_GGUF_FLOAT64:
        memcpy(&v->f64, &bits, sizeof bits);
        break;
    default:
        return perr(p, NTP_E_INTERNAL, "scalar type %u", type);
    }
    return NTP_OK;
}

static ntp_status read_array(struct parser *p, ntp_gguf_value *v, int depth)
{
    if (depth >= NTP_GGUF_MAX_DEPTH)
        return perr(p, NTP_E_UNSUPPORTED, "arrays nested more than %d deep", NTP_GGUF_MAX_DEPTH);
    uint32_t et;
    uint64_t n;
    ntp_status s = read_u32(p, &et, "array element type");
    if (s != NTP_OK)
        return s;
    if (et >= NTP_GGUF_TYPE_COUNT) {
        p->pos -= 4;
        return perr(p, NTP_E_FORMAT, "unknown array element type %u", et);
    }
    size_t at = p->pos;
    if ((s = read_u64(p, &n, "array length")) != NTP_OK)
        return s;
    uint64_t min = et == NTP_GGUF_STRING  ? MIN_STRING_BYTES
                   : et == NTP_GGUF_ARRAY ? MIN_ARRAY_BYTES
                                          : ntp__gguf_scalar_size((int)et);
    if ((s = check_count(p, at, n, min, "array elements")) != NTP_OK)
        return s;
    ntp_gguf_value *elems = NULL;
    if (n > 0 && (elems = arena_alloc(p->g, n * sizeof *elems)) == NULL)
        return perr(p, NTP_E_NOMEM, "no memory for an array of %llu values", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++)
        if ((s = read_value(p, et, &elems[i], depth + 1)) != NTP_OK)
            return s;
    v->type = NTP_GGUF_ARRAY;
    v->arr.type = (enum ntp_gguf_type)et;
    v->arr.len = n;
    v->arr.elems = elems;
    return NTP_OK;
}

/* One value of the given type; depth counts the arrays around it. */
static ntp_status read_value(struct parser *p, uint32_t type, ntp_gguf_value *v, int depth)
{
    if (type == NTP_GGUF_ARRAY)
        return read_array(p, v, depth);
    if (type == NTP_GGUF_STRING) {
        v->type = NTP_GGUF_STRING;
        return read_string(p, "string", &v->str.data, &v->str.len);
    }
    return read_scalar(p, type, v); /* callers have checked type < NTP_GGUF_TYPE_COUNT */
}

static ntp_status read_header(struct parser *p, uint64_t *n_tensors, uint64_t *n_kv)
{
    snprintf(p->where, sizeof p->where, "header");
    if (p->len == 0)
        return perr(p, NTP_E_TRUNCATED, "empty file (0 bytes), expected a GGUF header");
    ntp_status s = need(p, 4, "magic");
    if (s != NTP_OK)
        return s;
    if (memcmp(p->buf, "FUGG", 4) == 0)
        return perr(p, NTP_E_UNSUPPORTED,
                    "big-endian GGUF (magic reads 'FUGG'); only "
                    "little-endian files are supported");
    if (memcmp(p->buf, "GGUF", 4) != 0)
        return perr(p, NTP_E_FORMAT, "bad magic %02x %02x %02x %02x, expected 'GGUF'", p->buf[0],
                    p->buf[1], p->buf[2], p->buf[3]);
    p->pos = 4;
    uint32_t ver;
    if ((s = read_u32(p, &ver, "version")) != NTP_OK)
        return s;
    p->pos = 4;
    if (ver == 1)
        return perr(p, NTP_E_UNSUPPORTED,
                    "GGUF v1 (32-bit counts) is not supported; "
                    "convert the model again with a current llama.cpp");
    uint32_t swapped = __builtin_bswap32(ver);
    if ((ver & 0xffffu) == 0 && swapped >= 1 && swapped <= 3)
        return perr(p, NTP_E_UNSUPPORTED,
                    "big-endian GGUF (version reads 0x%08x, byte-swapped "
                    "%u); only little-endian files are supported",
                    ver, swapped);
    if (ver != 2 && ver != 3)
        return perr(p, NTP_E_UNSUPPORTED, "unsupported GGUF version %u, expected 2 or 3", ver);
    p->pos = 8;
    p->g->version = ver;
    if ((s = read_u64(p, n_tensors, "tensor count")) != NTP_OK ||
        (s = read_u64(p, n_kv, "key/value count")) != NTP_OK)
        return s;
    /* Indexes hold positions in uint32 slots; no real file comes near this. */
    if (*n_tensors > INT32_MAX || *n_kv > INT32_MAX)
        return perr_at(p, 8, NTP_E_OVERFLOW, "%llu tensors and %llu keys are out of range",
                       (unsigned long long)*n_tensors, (unsigned long long)*n_kv);
    /* Both counts are below 2^31, so this sum cannot overflow. */
    uint64_t min = *n_kv * MIN_KV_BYTES + *n_tensors * MIN_TENSOR_BYTES;
    if (min > p->len - p->pos)
        return perr_at(p, 8, NTP_E_TRUNCATED,
                       "%llu keys and %llu tensor infos need at least %llu bytes, only %zu left",
                       (unsigned long long)*n_kv, (unsigned long long)*n_tensors,
                       (unsigned long long)min, p->len - p->pos);
    return NTP_OK;
}

static ntp_status read_kvs(struct parser *p, uint64_t n_kv)
{
    ntp_gguf *g = p->g;
    if (n_kv > 0 && (g->kv = calloc((size_t)n_kv, sizeof *g->kv)) == NULL)
        return perr(p, NTP_E_NOMEM, "no memory for %llu keys", (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        struct ntp_gguf_kv *kv = &g->kv[i];
        snprintf(p->where, sizeof p->where, "key #%llu", (unsigned long long)i);
        ntp_status s = read_name(p, "key", &kv->key, &kv->key_len);
        if (s != NTP_OK)
            return s;
        describe(p->where, sizeof p->where, "key", kv->key, kv->key_len);
        uint32_t type;
        if ((s = read_u32(p, &type, "value type")) != NTP_OK)
            return s;
        if (type >= NTP_GGUF_TYPE_COUNT) {
            p->pos -= 4;
            return perr(p, NTP_E_FORMAT, "unknown value type %u", type);
        }
        if ((s = read_value(p, type, &kv->value, 0)) != NTP_OK)
            return s;
        g->n_kv = (int64_t)i + 1;
    }
    return NTP_OK;
}

/* n_dims and the dimensions of tensor t; unused dimensions are 1. */
static ntp_status read_shape(struct parser *p, ntp_gguf_tensor *t)
{
    uint32_t nd;
    ntp_status s = read_u32(p, &nd, "n_dims");
    if (s != NTP_OK)
        return s;
    if (nd == 0 || nd > NTP_GGUF_MAX_DIMS) {
        p->pos -= 4;
        return perr(p, NTP_E_FORMAT, "n_dims is %u, expected 1..%d", nd, NTP_GGUF_MAX_DIMS);
    }
    t->n_dims = nd;
    for (int d = 0; d < NTP_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    int64_t count = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v;
        if ((s = read_u64(p, &v, "dimension")) != NTP_OK)
            return s;
        if (v == 0 || v > INT64_MAX) {
            p->pos -= 8;
            return perr(p, NTP_E_FORMAT, "ne[%u] is %lld, expected a positive size", d,
                        (long long)(int64_t)v);
        }
        t->ne[d] = (int64_t)v;
        if (__builtin_mul_overflow(count, t->ne[d], &count))
            return perr_at(p, p->pos - 8, NTP_E_OVERFLOW,
                           "element count overflows int64 at ne[%u] = %lld", d,
                           (long long)t->ne[d]);
    }
    return NTP_OK;
}

/* The element type of tensor t, and from it the size of its data. */
static ntp_status read_tensor_type(struct parser *p, ntp_gguf_tensor *t)
{
    uint32_t type;
    ntp_status s = read_u32(p, &type, "tensor type");
    if (s != NTP_OK)
        return s;
    const ntp_type_traits *tt = type < NTP_TYPE_COUNT ? ntp_type_get_traits((int)type) : NULL;
    if (tt == NULL) {
        p->pos -= 4;
        return perr(p, NTP_E_UNSUPPORTED, "unknown tensor type %u (not a ggml type)", type);
    }
    t->type = (enum ntp_type)type;
    if (t->ne[0] % tt->block_size != 0)
        return perr(p, NTP_E_FORMAT, "ne[0] = %lld is not a multiple of the %s block size %lld",
                    (long long)t->ne[0], tt->name, (long long)tt->block_size);
    uint64_t size = (uint64_t)(t->ne[0] / tt->block_size);
    bool ok = ntp__mul_u64(size, tt->type_size, &size);
    for (int d = 1; d < NTP_GGUF_MAX_DIMS; d++)
        ok = ok && ntp__mul_u64(size, (uint64_t)t->ne[d], &size);
    if (!ok)
        return perr(p, NTP_E_OVERFLOW, "data size of %s [%lld, %lld, %lld, %lld] overflows 64 bits",
                    tt->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                    (long long)t->ne[3]);
    t->size = size;
    return NTP_OK;
}

static ntp_status read_tensor_infos(struct parser *p, uint64_t n_tensors)
{
    ntp_gguf *g = p->g;
    snprintf(p->where, sizeof p->where, "tensor infos");
    if (n_tensors > 0 && (g->tensors = calloc((size_t)n_tensors, sizeof *g->tensors)) == NULL)
        return perr(p, NTP_E_NOMEM, "no memory for %llu tensor infos",
                    (unsigned long long)n_tensors);
    for (uint64_t i = 0; i < n_tensors; i++) {
        ntp_gguf_tensor *t = &g->tensors[i];
        uint64_t name_len;
        snprintf(p->where, sizeof p->where, "tensor #%llu", (unsigned long long)i);
        ntp_status s = read_name(p, "tensor name", &t->name, &name_len);
        if (s != NTP_OK)
            return s;
        describe(p->where, sizeof p->where, "tensor", t->name, name_len);
        if ((s = read_shape(p, t)) != NTP_OK || (s = read_tensor_type(p, t)) != NTP_OK ||
            (s = read_u64(p, &t->offset, "data offset")) != NTP_OK)
            return s;
        if (t->offset % g->alignment != 0) {
            p->pos -= 8;
            return perr(p, NTP_E_FORMAT, "data offset %llu is not a multiple of the alignment %llu",
                        (unsigned long long)t->offset, (unsigned long long)g->alignment);
        }
        g->n_tensors = (int64_t)i + 1;
    }
    return NTP_OK;
}

/* general.alignment, when present, must be a uint32 power of two. */
static ntp_status read_alignment(struct parser *p)
{
    ntp_gguf *g = p->g;
    g->alignment = NTP_GGUF_DEFAULT_ALIGNMENT;
    const ntp_gguf_value *v = ntp_gguf_get(g, "general.alignment");
    if (v == NULL)
        return NTP_OK;
    if (v->type != NTP_GGUF_UINT32)
        return ntp__error(NTP_E_TYPE, "key 'general.alignment' has type %s, expected uint32",
                          ntp_gguf_type_name(v->type));
    if (v->u32 == 0 || (v->u32 & (v->u32 - 1)) != 0)
        return ntp__error(NTP_E_FORMAT,
                          "key 'general.alignment' is %u, expected a nonzero power of two", v->u32);
    g->alignment = v->u32;
    return NTP_OK;
}

/* Where one tensor's data lies, for the overlap check. */
struct span {
    uint64_t begin, end; /* [begin, end) relative to the data section */
    int64_t tensor;      /* index into ntp_gguf.tensors */
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static ntp_status check_overlap(ntp_gguf *g)
{
    if (g->n_tensors < 2)
        return NTP_OK;
    struct span *sp = malloc((size_t)g->n_tensors * sizeof *sp);
    if (sp == NULL)
        return ntp__error(NTP_E_NOMEM, "no memory to check %lld tensors for overlap",
                          (long long)g->n_tensors);
    for (int64_t i = 0; i < g->n_tensors; i++)
        sp[i] = (struct span){g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].size, i};
    qsort(sp, (size_t)g->n_tensors, sizeof *sp, span_cmp);
    ntp_status s = NTP_OK;
    for (int64_t i = 1; i < g->n_tensors && s == NTP_OK; i++) {
        if (sp[i].begin >= sp[i - 1].end)
            continue;
        const struct span *a = &sp[i - 1], *b = &sp[i];
        s = ntp__error(
            NTP_E_FORMAT, "tensor '%s': data [%llu, %llu) overlaps tensor '%s' [%llu, %llu)",
            g->tensors[b->tensor].name, (unsigned long long)b->begin, (unsigned long long)b->end,
            g->tensors[a->tensor].name, (unsigned long long)a->begin, (unsigned long long)a->end);
    }
    free(sp);
    return s;
}

/* The data section starts at the aligned end of the infos; every tensor must lie inside the buffer.
 */
static ntp_status place_tensors(struct parser *p)
{
    ntp_gguf *g = p->g;
    g->data_offset = ((uint64_t)p->pos + g->alignment - 1) & ~(g->alignment - 1);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        ntp_gguf_tensor *t = &g->tensors[i];
        uint64_t begin, end;
        if (!ntp__add_u64(g->data_offset, t->offset, &begin) || !ntp__add_u64(begin, t->size, &end))
            return ntp__error(NTP_E_OVERFLOW, "tensor '%s': data offset %llu + size %llu overflows",
                              t->name, (unsigned long long)t->offset, (unsigned long long)t->size);
        if (end > p->file_size)
            return ntp__error(NTP_E_TRUNCATED,
                              "tensor '%s': data [%llu, %llu) outside the file (%llu bytes)",
                              t->name, (unsigned long long)begin, (unsigned long long)end,
                              (unsigned long long)p->file_size);
        t->data = p->with_data ? p->buf + begin : NULL;
    }
    return check_overlap(g);
}

/* Index the keys (or the tensor names), refusing duplicates. */
static ntp_status build_index(ntp_gguf *g, bool tensors)
{
    int64_t first, second;
    ntp_status s = ntp__gguf_index_build(g, tensors, &first, &second);
    if (s != NTP_E_DUPLICATE)
        return s;
    if (tensors)
        return ntp__error(s, "tensor '%s' appears twice (infos #%lld and #%lld)",
                          g->tensors[second].name, (long long)first, (long long)second);
    char what[112];
    describe(what, sizeof what, "key", g->kv[second].key, g->kv[second].key_len);
    return ntp__error(s, "%s appears twice (entries #%lld and #%lld)", what, (long long)first,
                      (long long)second);
}

ntp_status ntp_gguf_parse(const void *buf, size_t len, ntp_gguf **out)
{
    return ntp__gguf_parse_part(buf, len, len, true, out);
}

ntp_status ntp__gguf_parse_part(const void *buf, size_t len, uint64_t file_size, bool with_data,
                                ntp_gguf **out)
{
    if (out == NULL || (buf == NULL && len > 0))
        return ntp__error(NTP_E_INVALID_ARG, "ntp_gguf_parse: NULL buffer or output");
    *out = NULL;
    ntp_gguf *g = calloc(1, sizeof *g);
    if (g == NULL)
        return ntp__error(NTP_E_NOMEM, "no memory for a GGUF handle");
    g->buf = buf;
    g->size = file_size;
    g->fd = -1;
    g->guard = -1;
    g->alignment = NTP_GGUF_DEFAULT_ALIGNMENT;
    struct parser p = {
        .buf = buf, .len = len, .file_size = file_size, .with_data = with_data, .g = g};
    uint64_t n_tensors = 0, n_kv = 0;
    ntp_status s = read_header(&p, &n_tensors, &n_kv);
    if (s == NTP_OK)
        s = read_kvs(&p, n_kv);
    /* Keys first: the alignment must be known before tensor offsets are checked. */
    if (s == NTP_OK)
        s = build_index(g, false);
    if (s == NTP_OK)
        s = read_alignment(&p);
    if (s == NTP_OK)
        s = read_tensor_infos(&p, n_tensors);
    if (s == NTP_OK)
        s = build_index(g, true);
    if (s == NTP_OK)
        s = place_tensors(&p);
    if (s != NTP_OK) {
        ntp_gguf_free(g);
        return s;
    }
    *out = g;
    return NTP_OK;
}

void ntp_gguf_free(ntp_gguf *g)
{
    if (g == NULL)
        return;
    for (struct ntp_gguf_chunk *c = g->arena, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(g->kv_index.slots);
    free(g->t_index.slots);
    free(g->kv);
    free(g->tensors);
    ntp__gguf_guard_end(g); /* before the mapping goes */
    if (g->map)
        munmap(g->map, (size_t)g->size);
    if (g->fd >= 0)
        close(g->fd);
    free(g);
}
