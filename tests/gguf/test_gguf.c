/*
 * test_gguf.c - the GGUF writer and reader agree: every value type, nested
 * arrays, tensors of every type, custom alignment, v2 files, typed getters,
 * writer rules (replace, duplicates, alignment key) and write_file -> open.
 */
#include "gguf_test_util.h"
#include "test.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every scalar type through set_value, plus the typed setters. */
static void add_scalars(ntp_gguf_writer *w)
{
    const ntp_gguf_value vals[] = {
        {.type = NTP_GGUF_UINT8, .u8 = 250},
        {.type = NTP_GGUF_INT8, .i8 = -7},
        {.type = NTP_GGUF_UINT16, .u16 = 65000},
        {.type = NTP_GGUF_INT16, .i16 = -32000},
        {.type = NTP_GGUF_UINT32, .u32 = 4000000000u},
        {.type = NTP_GGUF_INT32, .i32 = -2000000000},
        {.type = NTP_GGUF_FLOAT32, .f32 = 1.5e-3f},
        {.type = NTP_GGUF_BOOL, .b = true},
        {.type = NTP_GGUF_UINT64, .u64 = UINT64_MAX - 3},
        {.type = NTP_GGUF_INT64, .i64 = INT64_MIN + 5},
        {.type = NTP_GGUF_FLOAT64, .f64 = -3.25e200},
        /* A string with an embedded NUL: lengths, not strlen, carry it. */
        {.type = NTP_GGUF_STRING, .str = {"ab\0cd", 5}},
        {.type = NTP_GGUF_STRING, .str = {"", 0}},
    };
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        char key[32];
        snprintf(key, sizeof key, "test.scalar.%zu", i);
        CHECK_OK(ntp_gguf_writer_set_value(w, key, &vals[i]));
    }
    CHECK_OK(ntp_gguf_writer_set_u32(w, "test.u32", 7));
    CHECK_OK(ntp_gguf_writer_set_i32(w, "test.i32", -9));
    CHECK_OK(ntp_gguf_writer_set_u64(w, "test.u64", (uint64_t)1 << 40));
    CHECK_OK(ntp_gguf_writer_set_f32(w, "test.f32", 0.25f));
    CHECK_OK(ntp_gguf_writer_set_bool(w, "test.bool", false));
    CHECK_OK(ntp_gguf_writer_set_str(w, "general.name", "tiny"));
}

/* A plain array of every number type, string arrays and nested arrays. */
static void add_arrays(ntp_gguf_writer *w)
{
    static const uint8_t raw[64] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const bool bools[3] = {true, false, true};
    for (int t = 0; t < NTP_GGUF_TYPE_COUNT; t++) {
        if (t == NTP_GGUF_STRING || t == NTP_GGUF_ARRAY || t == NTP_GGUF_BOOL)
            continue;
        char key[32];
        snprintf(key, sizeof key, "test.arr.%s", ntp_gguf_type_name(t));
        CHECK_OK(ntp_gguf_writer_set_arr_data(w, key, (enum ntp_gguf_type)t, raw, 3));
    }
    CHECK_OK(ntp_gguf_writer_set_arr_data(w, "test.arr.bool", NTP_GGUF_BOOL, bools, 3));
    CHECK_OK(ntp_gguf_writer_set_arr_data(w, "test.arr.empty", NTP_GGUF_INT32, NULL, 0));
    const char *strs[] = {"hello", "", "wörld", "<|end|>"};
    CHECK_OK(ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, 4));

    /* [[["a", "bc"], []], [["d"]]] and [[1, 2], [3]]: arrays of arrays of mixed length. */
    ntp_gguf_value s[3] = {{.type = NTP_GGUF_STRING, .str = {"a", 1}},
                           {.type = NTP_GGUF_STRING, .str = {"bc", 2}},
                           {.type = NTP_GGUF_STRING, .str = {"d", 1}}};
    ntp_gguf_value inner[3] = {{.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_STRING, 2, &s[0]}},
                               {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_STRING, 0, NULL}},
                               {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_STRING, 1, &s[2]}}};
    ntp_gguf_value mid[2] = {{.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_ARRAY, 2, &inner[0]}},
                             {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_ARRAY, 1, &inner[2]}}};
    ntp_gguf_value outer = {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_ARRAY, 2, mid}};
    CHECK_OK(ntp_gguf_writer_set_value(w, "test.nested3", &outer));
    ntp_gguf_value ints[3] = {{.type = NTP_GGUF_INT16, .i16 = 1},
                              {.type = NTP_GGUF_INT16, .i16 = 2},
                              {.type = NTP_GGUF_INT16, .i16 = 3}};
    ntp_gguf_value rows[2] = {{.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_INT16, 2, &ints[0]}},
                              {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_INT16, 1, &ints[2]}}};
    ntp_gguf_value nested2 = {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_ARRAY, 2, rows}};
    CHECK_OK(ntp_gguf_writer_set_value(w, "test.nested2", &nested2));
}

/* One small tensor of every type ggml defines, filled with a pattern; returns how many. */
static int add_tensors(ntp_gguf_writer *w, int n_dims_cycle)
{
    int n = 0;
    for (int t = 0; t < NTP_TYPE_COUNT; t++) {
        const ntp_type_traits *tt = ntp_type_get_traits(t);
        if (tt == NULL)
            continue;
        uint32_t nd = (uint32_t)(1 + n % n_dims_cycle);
        int64_t ne[4] = {2 * tt->block_size, 3, 2, 1};
        size_t row;
        CHECK_OK(ntp_type_row_size((enum ntp_type)t, ne[0], &row));
        size_t size = row * (nd > 1 ? 3 : 1) * (nd > 2 ? 2 : 1);
        uint8_t *data = malloc(size);
        for (size_t i = 0; i < size; i++)
            data[i] = (uint8_t)(i * 7 + (size_t)t);
        char name[32];
        snprintf(name, sizeof name, "blk.%d.%s", n, tt->name);
        CHECK_OK(ntp_gguf_writer_add_tensor(w, name, (enum ntp_type)t, nd, ne, data));
        free(data);
        n++;
    }
    return n;
}

/* Two parsed files hold the same keys (in order), values and tensors. */
static void check_same(const ntp_gguf *a, const ntp_gguf *b)
{
    CHECK(ntp_gguf_n_kv(a) == ntp_gguf_n_kv(b));
    CHECK(ntp_gguf_n_tensors(a) == ntp_gguf_n_tensors(b));
    for (int64_t i = 0; i < ntp_gguf_n_kv(a) && i < ntp_gguf_n_kv(b); i++) {
        CHECK(strcmp(ntp_gguf_kv_key(a, i), ntp_gguf_kv_key(b, i)) == 0);
        CHECK(gguf_value_equal(ntp_gguf_kv_value(a, i), ntp_gguf_kv_value(b, i)));
    }
    for (int64_t i = 0; i < ntp_gguf_n_tensors(a) && i < ntp_gguf_n_tensors(b); i++) {
        const ntp_gguf_tensor *x = ntp_gguf_tensor_at(a, i), *y = ntp_gguf_tensor_at(b, i);
        CHECK(strcmp(x->name, y->name) == 0);
        CHECK(x->type == y->type && x->n_dims == y->n_dims && x->size == y->size);
        CHECK(memcmp(x->ne, y->ne, sizeof x->ne) == 0);
        CHECK(memcmp(x->data, y->data, x->size) == 0);
    }
}

static void check_written(const ntp_gguf *g, int n_tensors, uint64_t alignment)
{
    CHECK(ntp_gguf_version(g) == 3);
    CHECK(ntp_gguf_alignment(g) == alignment);
    CHECK(ntp_gguf_data_offset(g) % alignment == 0);
    CHECK(ntp_gguf_file_size(g) % alignment == 0);
    CHECK(ntp_gguf_n_tensors(g) == n_tensors);
    const ntp_gguf_value *v = ntp_gguf_get(g, "test.scalar.11");
    CHECK(v && v->type == NTP_GGUF_STRING && v->str.len == 5 &&
          memcmp(v->str.data, "ab\0cd", 6) == 0);
    v = ntp_gguf_get(g, "test.arr.float64");
    double d;
    memcpy(&d, (const uint8_t[8]){1, 2, 3, 4, 5, 6, 7, 8}, 8);
    CHECK(v && v->arr.type == NTP_GGUF_FLOAT64 && v->arr.len == 3 &&
          memcmp(&v->arr.elems[0].f64, &d, 8) == 0);
    v = ntp_gguf_get(g, "test.nested3");
    CHECK(v && v->arr.len == 2 && v->arr.elems[0].arr.len == 2 &&
          v->arr.elems[0].arr.elems[1].arr.len == 0 &&
          strcmp(v->arr.elems[1].arr.elems[0].arr.elems[0].str.data, "d") == 0);
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        CHECK(t->offset % alignment == 0);
        CHECK(ntp_gguf_find_tensor(g, t->name) == t);
        const uint8_t *p = t->data;
        for (uint64_t j = 0; j < t->size; j++)
            if (p[j] != (uint8_t)(j * 7 + (uint64_t)t->type)) {
                CHECK(!"tensor data differs");
                break;
            }
    }
    CHECK(ntp_gguf_find_tensor(g, "missing") == NULL);
    CHECK(ntp_gguf_find_key(g, "missing") == -1);
}

static void test_round_trip(void)
{
    ntp_gguf_writer *w;
    CHECK_OK(ntp_gguf_writer_new(&w));
    add_scalars(w);
    add_arrays(w);
    CHECK_OK(ntp_gguf_writer_set_alignment(w, 64));
    int n = add_tensors(w, 4);
    void *buf;
    size_t len;
    CHECK_OK(ntp_gguf_writer_to_buffer(w, &buf, &len));
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_parse(buf, len, &g));
    if (g) {
        check_written(g, n, 64);
        /* Copying every key through set_value reproduces the file's keys exactly. */
        ntp_gguf_writer *w2;
        CHECK_OK(ntp_gguf_writer_new(&w2));
        for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++)
            CHECK_OK(ntp_gguf_writer_set_value(w2, ntp_gguf_kv_key(g, i), ntp_gguf_kv_value(g, i)));
        for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
            const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
            CHECK_OK(ntp_gguf_writer_add_tensor(w2, t->name, t->type, t->n_dims, t->ne, t->data));
        }
        void *buf2;
        size_t len2;
        CHECK_OK(ntp_gguf_writer_to_buffer(w2, &buf2, &len2));
        CHECK(len2 == len && memcmp(buf, buf2, len) == 0);
        free(buf2);
        ntp_gguf_writer_free(w2);
    }
    /* The same bytes labelled v2 (same layout) parse the same. */
    ((uint8_t *)buf)[4] = 2;
    ntp_gguf *g2 = NULL;
    CHECK_OK(ntp_gguf_parse(buf, len, &g2));
    if (g && g2) {
        CHECK(ntp_gguf_version(g2) == 2);
        check_same(g, g2);
    }
    ntp_gguf_free(g2);
    ntp_gguf_free(g);
    free(buf);
    ntp_gguf_writer_free(w);
}

/* Integers convert between widths when the value fits; floats take any number. */
static void test_number_getters(const ntp_gguf *g)
{
    CHECK(ntp_gguf_alignment(g) == 32 && ntp_gguf_get(g, "general.alignment") == NULL);
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    float f;
    CHECK_OK(ntp_gguf_get_u32(g, "test.scalar.0", &u32)); /* uint8 widens */
    CHECK(u32 == 250);
    CHECK_STATUS(ntp_gguf_get_u32(g, "test.i32", &u32), NTP_E_TYPE); /* negative */
    CHECK(strstr(ntp_last_error(), "test.i32") && strstr(ntp_last_error(), "-9"));
    CHECK_STATUS(ntp_gguf_get_u32(g, "test.u64", &u32), NTP_E_TYPE); /* 2^40 does not fit */
    CHECK_OK(ntp_gguf_get_u64(g, "test.u64", &u64));
    CHECK(u64 == (uint64_t)1 << 40);
    CHECK_OK(ntp_gguf_get_i64(g, "test.scalar.9", &i64));
    CHECK(i64 == INT64_MIN + 5);
    CHECK_OK(ntp_gguf_get_i64(g, "test.scalar.1", &i64));
    CHECK(i64 == -7);
    CHECK_STATUS(ntp_gguf_get_i64(g, "test.scalar.8", &i64), NTP_E_TYPE); /* > INT64_MAX */
    CHECK_STATUS(ntp_gguf_get_u64(g, "test.scalar.5", &u64), NTP_E_TYPE); /* negative */
    CHECK_OK(ntp_gguf_get_f32(g, "test.f32", &f));
    CHECK(f == 0.25f);
    CHECK_OK(ntp_gguf_get_f32(g, "test.scalar.10", &f)); /* f64 narrows (to -inf here) */
    CHECK(isinf(f) && f < 0);
    CHECK_OK(ntp_gguf_get_f32(g, "test.i32", &f));
    CHECK(f == -9.0f);
    CHECK_STATUS(ntp_gguf_get_f32(g, "general.name", &f), NTP_E_TYPE);
}

static void test_other_getters(const ntp_gguf *g)
{
    bool b;
    const char *s;
    const ntp_gguf_value *arr;
    CHECK_OK(ntp_gguf_get_bool(g, "test.scalar.7", &b));
    CHECK(b == true);
    CHECK_STATUS(ntp_gguf_get_bool(g, "test.u32", &b), NTP_E_TYPE);
    CHECK(strstr(ntp_last_error(), "'test.u32' has type uint32, expected bool") != NULL);
    CHECK_OK(ntp_gguf_get_str(g, "general.name", &s));
    CHECK(strcmp(s, "tiny") == 0);
    CHECK_STATUS(ntp_gguf_get_str(g, "no.such.key", &s), NTP_E_NOT_FOUND);
    CHECK(strstr(ntp_last_error(), "no.such.key") != NULL);
    CHECK_OK(ntp_gguf_get_arr(g, "tokenizer.ggml.tokens", NTP_GGUF_STRING, &arr));
    CHECK(arr->arr.len == 4 && strcmp(arr->arr.elems[2].str.data, "wörld") == 0);
    CHECK_OK(ntp_gguf_get_arr(g, "test.nested2", NTP_GGUF_TYPE_COUNT, &arr));
    CHECK_STATUS(ntp_gguf_get_arr(g, "tokenizer.ggml.tokens", NTP_GGUF_INT32, &arr), NTP_E_TYPE);
    CHECK_STATUS(ntp_gguf_get_arr(g, "general.name", NTP_GGUF_TYPE_COUNT, &arr), NTP_E_TYPE);
    CHECK(ntp_gguf_kv_key(g, -1) == NULL && ntp_gguf_kv_value(g, ntp_gguf_n_kv(g)) == NULL);
    CHECK(ntp_gguf_tensor_at(g, 0) == NULL);
    CHECK(strcmp(ntp_gguf_type_name(NTP_GGUF_FLOAT64), "float64") == 0);
    CHECK(strcmp(ntp_gguf_type_name(13), "unknown") == 0);
    CHECK(strcmp(ntp_gguf_type_name(-1), "unknown") == 0);
}

static void test_getters(void)
{
    ntp_gguf_writer *w;
    CHECK_OK(ntp_gguf_writer_new(&w));
    add_scalars(w);
    add_arrays(w);
    void *buf;
    size_t len;
    CHECK_OK(ntp_gguf_writer_to_buffer(w, &buf, &len));
    ntp_gguf_writer_free(w);
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_parse(buf, len, &g));
    if (g) {
        test_number_getters(g);
        test_other_getters(g);
    }
    ntp_gguf_free(g);
    free(buf);
}

static void test_writer_rules(void)
{
    ntp_gguf_writer *w;
    CHECK_OK(ntp_gguf_writer_new(&w));
    CHECK_OK(ntp_gguf_writer_set_u32(w, "a", 1));
    CHECK_OK(ntp_gguf_writer_set_str(w, "b", "x"));
    CHECK_OK(ntp_gguf_writer_set_str(w, "a", "replaced")); /* keeps position 0 */
    CHECK_STATUS(ntp_gguf_writer_set_alignment(w, 48), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp_gguf_writer_set_alignment(w, 0), NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp_gguf_writer_set_str(w, "general.alignment", "64"), NTP_E_TYPE);
    CHECK_STATUS(
        ntp_gguf_writer_set_arr_data(w, "general.alignment", NTP_GGUF_UINT32, (uint32_t[]){64}, 1),
        NTP_E_TYPE);
    CHECK_OK(ntp_gguf_writer_set_alignment(w, 128));
    CHECK_OK(ntp_gguf_writer_set_alignment(w, 32)); /* back to the default: key dropped */
    CHECK_STATUS(ntp_gguf_writer_set_arr_data(w, "c", NTP_GGUF_STRING, "x", 1), NTP_E_INVALID_ARG);
    ntp_gguf_value bad_elems[2] = {{.type = NTP_GGUF_INT32}, {.type = NTP_GGUF_UINT32}};
    ntp_gguf_value bad = {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_INT32, 2, bad_elems}};
    CHECK_STATUS(ntp_gguf_writer_set_value(w, "mixed", &bad), NTP_E_INVALID_ARG);
    CHECK(strstr(ntp_last_error(), "mixed") != NULL);
    /* Nine nested levels are refused, as the reader would refuse them. */
    ntp_gguf_value chain[10];
    chain[9] = (ntp_gguf_value){.type = NTP_GGUF_UINT8, .u8 = 1};
    for (int i = 8; i >= 0; i--)
        chain[i] =
            (ntp_gguf_value){.type = NTP_GGUF_ARRAY, .arr = {chain[i + 1].type, 1, &chain[i + 1]}};
    CHECK_STATUS(ntp_gguf_writer_set_value(w, "deep9", &chain[0]), NTP_E_INVALID_ARG);
    CHECK_OK(ntp_gguf_writer_set_value(w, "deep8", &chain[1]));
    const float data[64] = {0};
    CHECK_OK(ntp_gguf_writer_add_tensor(w, "t", NTP_TYPE_F32, 2, (int64_t[]){4, 2}, data));
    CHECK_STATUS(ntp_gguf_writer_add_tensor(w, "t", NTP_TYPE_F32, 1, (int64_t[]){4}, data),
                 NTP_E_DUPLICATE);
    CHECK_STATUS(ntp_gguf_writer_add_tensor(w, "q", NTP_TYPE_Q4_0, 1, (int64_t[]){40}, data),
                 NTP_E_INVALID_ARG);
    CHECK(strstr(ntp_last_error(), "tensor 'q'") != NULL);
    CHECK_STATUS(ntp_gguf_writer_add_tensor(w, "z", NTP_TYPE_F32, 2, (int64_t[]){4, 0}, data),
                 NTP_E_INVALID_ARG);
    CHECK_STATUS(ntp_gguf_writer_add_tensor(w, "u", (enum ntp_type)4, 1, (int64_t[]){4}, data),
                 NTP_E_INVALID_ARG);
    CHECK_STATUS(
        ntp_gguf_writer_add_tensor(w, "d", NTP_TYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, data),
        NTP_E_INVALID_ARG);
    void *buf;
    size_t len;
    CHECK_OK(ntp_gguf_writer_to_buffer(w, &buf, &len));
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_parse(buf, len, &g));
    if (g) {
        CHECK(ntp_gguf_n_kv(g) == 3 && ntp_gguf_n_tensors(g) == 1);
        CHECK(strcmp(ntp_gguf_kv_key(g, 0), "a") == 0);
        CHECK(strcmp(ntp_gguf_kv_value(g, 0)->str.data, "replaced") == 0);
        CHECK(ntp_gguf_alignment(g) == 32);
    }
    ntp_gguf_free(g);
    free(buf);
    ntp_gguf_writer_free(w);
    ntp_gguf_writer_free(NULL);
    ntp_gguf_free(NULL);
}

static void test_file(void)
{
    char path[256];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/ntp-test-gguf-%d.gguf", dir, (int)getpid());
    ntp_gguf_writer *w;
    CHECK_OK(ntp_gguf_writer_new(&w));
    add_scalars(w);
    add_arrays(w);
    int n = add_tensors(w, 3);
    CHECK_OK(ntp_gguf_writer_write_file(w, path));
    void *buf;
    size_t len;
    CHECK_OK(ntp_gguf_writer_to_buffer(w, &buf, &len));
    ntp_gguf_writer_free(w);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0); /* renamed into place */
    ntp_gguf *a = NULL, *b = NULL;
    CHECK_OK(ntp_gguf_open(path, &a));
    CHECK_OK(ntp_gguf_parse(buf, len, &b));
    if (a && b) {
        CHECK(ntp_gguf_file_size(a) == len);
        check_written(a, n, 32);
        check_same(a, b);
    }
    ntp_gguf_free(a);
    ntp_gguf_free(b);
    free(buf);
    unlink(path);
    /* A directory that does not exist: the writer says which path failed. */
    w = NULL;
    CHECK_OK(ntp_gguf_writer_new(&w));
    CHECK_STATUS(ntp_gguf_writer_write_file(w, "/nonexistent-dir/x.gguf"), NTP_E_IO);
    CHECK(strstr(ntp_last_error(), "/nonexistent-dir/x.gguf.tmp") != NULL);
    ntp_gguf_writer_free(w);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void expect_refused(const ntp_gguf_writer *w, const char *path, const char *needle)
{
    CHECK_STATUS(ntp_gguf_writer_write_file(w, path), NTP_E_IO);
    if (strstr(ntp_last_error(), needle) == NULL || strstr(ntp_last_error(), path) == NULL) {
        fprintf(stderr, "message '%s' lacks '%s' or the path\n", ntp_last_error(), needle);
        ntp_test_failures++;
    }
}

struct racer {
    const char *path;
    uint32_t id;
};

/* One of the racing writers: a file of its own, eight times to the shared path. */
static void *race_writer(void *arg)
{
    const struct racer *r = arg;
    const char *path = r->path;
    ntp_gguf_writer *w = NULL;
    CHECK_OK(ntp_gguf_writer_new(&w));
    CHECK_OK(ntp_gguf_writer_set_u32(w, "writer", r->id));
    add_arrays(w);
    add_tensors(w, 3);
    for (int i = 0; i < 8; i++)
        CHECK_OK(ntp_gguf_writer_write_file(w, path));
    ntp_gguf_writer_free(w);
    return NULL;
}

/* Entries of folder dir besides . and .. */
static int entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

/*
 * What the writer must not replace or follow: a FIFO, a symbolic link or a
 * read-only file at the path is refused and left as it was (they used to be
 * replaced by a regular file); a link at the fixed temporary name once used
 * (path.tmp) is not followed; no temporary is left behind; writers racing to
 * one path leave one whole file.
 */
static void test_file_targets(void)
{
    char dir[] = "/tmp/ntp-test-targets-XXXXXX", path[128], victim[128], tmp[140];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/x.gguf", dir);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(victim, "w");
    CHECK(f != NULL && fputs("keep", f) >= 0 && fclose(f) == 0);
    ntp_gguf_writer *w = NULL;
    CHECK_OK(ntp_gguf_writer_new(&w));
    add_scalars(w);
    struct stat st;
    CHECK(mkfifo(path, 0600) == 0);
    expect_refused(w, path, "exists and is a FIFO, not a regular file");
    CHECK(lstat(path, &st) == 0 && S_ISFIFO(st.st_mode) && unlink(path) == 0);
    CHECK(symlink(victim, path) == 0);
    expect_refused(w, path, "is a symbolic link");
    CHECK(lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && unlink(path) == 0);
    CHECK(file_size(victim) == 4);
    CHECK(link(victim, path) == 0 && chmod(path, 0444) == 0);
    expect_refused(w, path, "is read-only");
    CHECK(file_size(path) == 4 && unlink(path) == 0 && chmod(victim, 0644) == 0);
    CHECK(symlink(victim, tmp) == 0);
    CHECK_OK(ntp_gguf_writer_write_file(w, path));
    CHECK(file_size(victim) == 4 && unlink(tmp) == 0);
    ntp_gguf_writer_free(w);
    CHECK(entries(dir) == 2); /* x.gguf and victim: no temporary left */
    pthread_t th[4];
    struct racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){path, (uint32_t)i};
        CHECK(pthread_create(&th[i], NULL, race_writer, &r[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    CHECK(g != NULL && ntp_gguf_find_key(g, "writer") >= 0);
    ntp_gguf_free(g);
    CHECK(entries(dir) == 2);
    CHECK(unlink(path) == 0 && unlink(victim) == 0 && rmdir(dir) == 0);
}

int main(void)
{
    test_round_trip();
    test_getters();
    test_writer_rules();
    test_file();
    test_file_targets();
    return ntp_test_result("test_gguf");
}
