/*
 * test_gguf_hostile.c - malformed GGUF files, made byte by byte in memory (and
 * a few on disk), each refused with the exact status and a message that names
 * the key, tensor or problem; a valid file cut at every byte, and every byte
 * of it overwritten, never crashes the parser.
 */
#include "gguf_test_util.h"
#include "test.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int n_cases;

/*
 * Parse b from an exactly-sized copy (so ASan catches a read one byte past
 * the end), expect status want and a message containing needle, free b.
 */
static void expect_at(int line, struct gb *b, ntp_status want, const char *needle)
{
    n_cases++;
    uint8_t *copy = malloc(b->n ? b->n : 1);
    if (b->n)
        memcpy(copy, b->p, b->n);
    ntp_gguf *g = (ntp_gguf *)copy; /* must be overwritten */
    ntp_status s = ntp_gguf_parse(copy, b->n, &g);
    if (s != want || (want != NTP_OK && g != NULL) ||
        (want != NTP_OK && strstr(ntp_last_error(), needle) == NULL)) {
        fprintf(stderr, "line %d: got %s '%s', want %s with '%s'\n", line, ntp_status_str(s),
                ntp_last_error(), ntp_status_str(want), needle);
        ntp_test_failures++;
    }
    if (s == NTP_OK && g) {
        gguf_walk(g);
        ntp_gguf_free(g);
    }
    free(copy);
    gb_free(b);
}

#define EXPECT(b, want, needle) expect_at(__LINE__, b, want, needle)

/* A header with one key whose value the caller appends. */
static struct gb one_key(const char *key, enum ntp_gguf_type type)
{
    struct gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_key(&b, key, type);
    return b;
}

static void test_header(void)
{
    struct gb b = {0};
    EXPECT(&b, NTP_E_TRUNCATED, "empty file");
    gb_bytes(&b, "GGU", 3);
    EXPECT(&b, NTP_E_TRUNCATED, "magic needs 4 bytes");
    gb_header(&b, 3, 0, 0);
    memcpy(b.p, "GGML", 4);
    EXPECT(&b, NTP_E_FORMAT, "bad magic 47 47 4d 4c");
    gb_header(&b, 1, 0, 0);
    EXPECT(&b, NTP_E_UNSUPPORTED, "GGUF v1");
    gb_header(&b, 0x03000000u, 0, 0);
    EXPECT(&b, NTP_E_UNSUPPORTED, "big-endian GGUF (version reads 0x03000000, byte-swapped 3)");
    gb_header(&b, 0x03000000u, 0, 0);
    memcpy(b.p, "FUGG", 4);
    EXPECT(&b, NTP_E_UNSUPPORTED, "big-endian GGUF (magic reads 'FUGG')");
    gb_header(&b, 4, 0, 0);
    EXPECT(&b, NTP_E_UNSUPPORTED, "version 4");
    gb_header(&b, 0, 0, 0);
    EXPECT(&b, NTP_E_UNSUPPORTED, "version 0");
    gb_bytes(&b, "GGUF", 4);
    gb_u32(&b, 3);
    gb_u64(&b, 0);
    EXPECT(&b, NTP_E_TRUNCATED, "key/value count needs 8 bytes");
    gb_header(&b, 3, 0, (uint64_t)1 << 40);
    EXPECT(&b, NTP_E_OVERFLOW, "out of range");
    gb_header(&b, 3, (uint64_t)1 << 62, 0);
    EXPECT(&b, NTP_E_OVERFLOW, "out of range");
    gb_header(&b, 3, 0, 1000);
    gb_bytes(&b, "0123456789abcdef0123456789abcdef", 32);
    EXPECT(&b, NTP_E_TRUNCATED, "1000 keys and 0 tensor infos need at least 13000 bytes");
    gb_header(&b, 3, 2, 0);
    gb_tensor(&b, "only.one", 1, (uint64_t[]){8}, NTP_TYPE_F32, 0);
    gb_bytes(&b, "0123456789abcdef0123456789abcdef", 32);
    EXPECT(&b, NTP_E_TRUNCATED, "tensor #1");
    /* The smallest valid file: no keys, no tensors. */
    gb_header(&b, 3, 0, 0);
    EXPECT(&b, NTP_OK, "");
}

static void test_keys(void)
{
    struct gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 100);
    gb_bytes(&b, "general.na", 10);
    EXPECT(&b, NTP_E_TRUNCATED, "key of 100 bytes runs past the end");
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, (uint64_t)1 << 63);
    gb_u32(&b, 0);
    gb_u8(&b, 0);
    EXPECT(&b, NTP_E_TRUNCATED, "key #0 at byte 24: key of 9223372036854775808 bytes");
    gb_header(&b, 3, 0, 1);
    gb_u64(&b, 3);
    gb_bytes(&b, "a\0b", 3);
    gb_u32(&b, NTP_GGUF_UINT8);
    gb_u8(&b, 0);
    EXPECT(&b, NTP_E_FORMAT, "key contains a NUL byte");
    b = one_key("my.key", (enum ntp_gguf_type)13);
    gb_u32(&b, 0);
    EXPECT(&b, NTP_E_FORMAT, "key 'my.key' at byte 38: unknown value type 13");
    b = one_key("my.key", (enum ntp_gguf_type)0xffffffffu);
    gb_u32(&b, 0);
    EXPECT(&b, NTP_E_FORMAT, "unknown value type 4294967295");
    b = one_key("flag", NTP_GGUF_BOOL);
    gb_u8(&b, 2);
    EXPECT(&b, NTP_E_FORMAT, "key 'flag' at byte 40: bool byte is 0x02, expected 0 or 1");
    b = one_key("general.name", NTP_GGUF_STRING);
    gb_u64(&b, 50);
    gb_bytes(&b, "short", 5);
    EXPECT(&b, NTP_E_TRUNCATED,
           "key 'general.name' at byte 48: string of 50 bytes runs past the end (5 bytes left)");
    b = one_key("n", NTP_GGUF_UINT64);
    gb_u32(&b, 7);
    EXPECT(&b, NTP_E_TRUNCATED, "key 'n' at byte 37: uint64 needs 8 bytes, only 4 left");
    b = one_key("odd\x01key", NTP_GGUF_UINT32);
    EXPECT(&b, NTP_E_TRUNCATED, "key 'odd?key'");
    /* The same key twice. */
    gb_header(&b, 3, 0, 2);
    gb_key(&b, "general.name", NTP_GGUF_STRING);
    gb_str(&b, "a");
    gb_key(&b, "general.name", NTP_GGUF_UINT8);
    gb_u8(&b, 1);
    EXPECT(&b, NTP_E_DUPLICATE, "key 'general.name' appears twice (entries #0 and #1)");
}

static void test_arrays(void)
{
    struct gb b = one_key("arr", NTP_GGUF_ARRAY);
    gb_u32(&b, NTP_GGUF_UINT64);
    gb_u64(&b, (uint64_t)1 << 61);
    EXPECT(&b, NTP_E_OVERFLOW,
           "key 'arr' at byte 43: 2305843009213693952 array elements is out of range");
    b = one_key("arr", NTP_GGUF_ARRAY);
    gb_u32(&b, NTP_GGUF_UINT32);
    gb_u64(&b, 1000);
    gb_u64(&b, 0);
    EXPECT(&b, NTP_E_TRUNCATED, "1000 array elements need at least 4000 bytes, only 8 left");
    b = one_key("arr", NTP_GGUF_ARRAY);
    gb_u32(&b, NTP_GGUF_STRING);
    gb_u64(&b, (uint64_t)1 << 40); /* strings: 8 bytes each at least */
    gb_u64(&b, 0);
    EXPECT(&b, NTP_E_TRUNCATED, "1099511627776 array elements need at least 8796093022208 bytes");
    b = one_key("arr", NTP_GGUF_ARRAY);
    gb_u32(&b, 20);
    gb_u64(&b, 1);
    EXPECT(&b, NTP_E_FORMAT, "key 'arr' at byte 39: unknown array element type 20");
    b = one_key("tokenizer.ggml.tokens", NTP_GGUF_ARRAY);
    gb_u32(&b, NTP_GGUF_STRING);
    gb_u64(&b, 2);
    gb_str(&b, "ok");
    gb_u64(&b, 9);
    gb_bytes(&b, "abc", 3);
    EXPECT(&b, NTP_E_TRUNCATED, "key 'tokenizer.ggml.tokens' at byte 79: string of 9 bytes");
    b = one_key("flags", NTP_GGUF_ARRAY);
    gb_u32(&b, NTP_GGUF_BOOL);
    gb_u64(&b, 2);
    gb_u8(&b, 1);
    gb_u8(&b, 0xff);
    EXPECT(&b, NTP_E_FORMAT, "key 'flags' at byte 54: bool byte is 0xff");
    /* Arrays nested 9 deep are refused, 8 deep accepted. */
    for (int depth = 8; depth <= 9; depth++) {
        b = one_key("deep", NTP_GGUF_ARRAY);
        for (int i = 0; i < depth - 1; i++) {
            gb_u32(&b, NTP_GGUF_ARRAY);
            gb_u64(&b, 1);
        }
        gb_u32(&b, NTP_GGUF_UINT8);
        gb_u64(&b, 1);
        gb_u8(&b, 5);
        if (depth == 8)
            EXPECT(&b, NTP_OK, "");
        else
            EXPECT(&b, NTP_E_UNSUPPORTED, "key 'deep' at byte 136: arrays nested more than 8 deep");
    }
}

static void test_alignment_key(void)
{
    struct gb b = one_key("general.alignment", NTP_GGUF_STRING);
    gb_str(&b, "64");
    EXPECT(&b, NTP_E_TYPE, "'general.alignment' has type string, expected uint32");
    b = one_key("general.alignment", NTP_GGUF_UINT64);
    gb_u64(&b, 64);
    EXPECT(&b, NTP_E_TYPE, "has type uint64, expected uint32");
    b = one_key("general.alignment", NTP_GGUF_UINT32);
    gb_u32(&b, 0);
    EXPECT(&b, NTP_E_FORMAT, "'general.alignment' is 0, expected a nonzero power of two");
    b = one_key("general.alignment", NTP_GGUF_UINT32);
    gb_u32(&b, 48);
    EXPECT(&b, NTP_E_FORMAT, "'general.alignment' is 48");
}

/*
 * One tensor info (name "w") with the given shape and type at offset off,
 * after a general.alignment key when align is not 32, then padding and
 * data_bytes bytes of data.
 */
static struct gb one_tensor(uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off,
                            uint32_t align, size_t data_bytes)
{
    struct gb b = {0};
    gb_header(&b, 3, 1, align != 32);
    if (align != 32) {
        gb_key(&b, "general.alignment", NTP_GGUF_UINT32);
        gb_u32(&b, align);
    }
    gb_tensor(&b, "w", n_dims, ne, type, off);
    gb_pad(&b, align);
    for (size_t i = 0; i < data_bytes; i++)
        gb_u8(&b, (uint8_t)i);
    return b;
}

static void test_tensor_shapes(void)
{
    struct gb b = one_tensor(0, NULL, NTP_TYPE_F32, 0, 32, 64);
    EXPECT(&b, NTP_E_FORMAT, "tensor 'w' at byte 33: n_dims is 0, expected 1..4");
    b = one_tensor(5, (uint64_t[]){1, 1, 1, 1, 1}, NTP_TYPE_F32, 0, 32, 64);
    EXPECT(&b, NTP_E_FORMAT, "tensor 'w' at byte 33: n_dims is 5");
    b = one_tensor(2, (uint64_t[]){4, 0}, NTP_TYPE_F32, 0, 32, 64);
    EXPECT(&b, NTP_E_FORMAT, "tensor 'w' at byte 45: ne[1] is 0, expected a positive size");
    b = one_tensor(2, (uint64_t[]){4, UINT64_MAX}, NTP_TYPE_F32, 0, 32, 64);
    EXPECT(&b, NTP_E_FORMAT, "ne[1] is -1");
    b = one_tensor(3, (uint64_t[]){(uint64_t)1 << 32, (uint64_t)1 << 30, 4}, NTP_TYPE_F32, 0, 32,
                   64);
    EXPECT(&b, NTP_E_OVERFLOW, "tensor 'w' at byte 53: element count overflows int64 at ne[2] = 4");
    b = one_tensor(2, (uint64_t[]){(uint64_t)1 << 31, (uint64_t)1 << 31}, NTP_TYPE_F64, 0, 32, 64);
    EXPECT(&b, NTP_E_OVERFLOW, "data size of F64 [2147483648, 2147483648, 1, 1] overflows");
    b = one_tensor(1, (uint64_t[]){33}, NTP_TYPE_Q4_0, 0, 32, 64);
    EXPECT(&b, NTP_E_FORMAT, "ne[0] = 33 is not a multiple of the Q4_0 block size 32");
    b = one_tensor(1, (uint64_t[]){8}, 4, 0, 32, 64);
    EXPECT(&b, NTP_E_UNSUPPORTED, "tensor 'w' at byte 45: unknown tensor type 4");
    b = one_tensor(1, (uint64_t[]){8}, 32, 0, 32, 64); /* a removed Q4_0_4_8 */
    EXPECT(&b, NTP_E_UNSUPPORTED, "unknown tensor type 32");
    b = one_tensor(1, (uint64_t[]){8}, 1000, 0, 32, 64);
    EXPECT(&b, NTP_E_UNSUPPORTED, "unknown tensor type 1000");
    /* Types ggml defines but numatp cannot compute with are still parsed. */
    b = one_tensor(1, (uint64_t[]){256}, NTP_TYPE_IQ2_XXS, 0, 32, 66);
    EXPECT(&b, NTP_OK, "");
    /* A name with a NUL in it, and a name that runs off the end. */
    b = (struct gb){0};
    gb_header(&b, 3, 1, 0);
    gb_u64(&b, 3);
    gb_bytes(&b, "x\0y", 3);
    gb_bytes(&b, "0123456789abcdef0123456789abcdef", 32);
    EXPECT(&b, NTP_E_FORMAT, "tensor #0 at byte 24: tensor name contains a NUL byte");
    b = (struct gb){0};
    gb_header(&b, 3, 1, 0);
    gb_u64(&b, 300);
    gb_bytes(&b, "0123456789abcdef0123456789abcdef", 32);
    EXPECT(&b, NTP_E_TRUNCATED, "tensor #0 at byte 24: tensor name of 300 bytes");
}

static void test_tensor_data(void)
{
    struct gb b = one_tensor(2, (uint64_t[]){8, 2}, NTP_TYPE_F32, 0, 32, 63);
    EXPECT(&b, NTP_E_TRUNCATED, "tensor 'w': data [96, 160) outside the file (159 bytes)");
    b = one_tensor(1, (uint64_t[]){8}, NTP_TYPE_F32, (uint64_t)1 << 40, 32, 32);
    EXPECT(&b, NTP_E_TRUNCATED, "tensor 'w': data [1099511627840, 1099511627872) outside");
    b = one_tensor(1, (uint64_t[]){8}, NTP_TYPE_F32, UINT64_MAX - 31, 32, 32);
    EXPECT(&b, NTP_E_OVERFLOW, "tensor 'w': data offset 18446744073709551584 + size 32 overflows");
    b = one_tensor(1, (uint64_t[]){8}, NTP_TYPE_F32, 4, 32, 64);
    EXPECT(&b, NTP_E_FORMAT,
           "tensor 'w' at byte 49: data offset 4 is not a multiple of the alignment 32");
    b = one_tensor(1, (uint64_t[]){8}, NTP_TYPE_F32, 32, 64, 128);
    EXPECT(&b, NTP_E_FORMAT, "data offset 32 is not a multiple of the alignment 64");
    b = one_tensor(1, (uint64_t[]){8}, NTP_TYPE_F32, 128, 64, 160);
    EXPECT(&b, NTP_OK, "");
    /* Two tensors: overlapping data, then the same name twice. */
    for (int dup = 0; dup <= 1; dup++) {
        b = (struct gb){0};
        gb_header(&b, 3, 2, 0);
        gb_tensor(&b, "a", 1, (uint64_t[]){16}, NTP_TYPE_F32, 32);
        gb_tensor(&b, dup ? "a" : "b", 1, (uint64_t[]){16}, NTP_TYPE_F32, dup ? 96 : 64);
        gb_pad(&b, 32);
        for (int i = 0; i < 256; i++)
            gb_u8(&b, 0);
        if (dup)
            EXPECT(&b, NTP_E_DUPLICATE, "tensor 'a' appears twice (infos #0 and #1)");
        else
            EXPECT(&b, NTP_E_FORMAT, "tensor 'b': data [64, 128) overlaps tensor 'a' [32, 96)");
    }
}

/* A valid file with strings, arrays, nested arrays, tensors and alignment 64. */
static void make_valid(void **buf, size_t *len)
{
    ntp_gguf_writer *w;
    CHECK_OK(ntp_gguf_writer_new(&w));
    CHECK_OK(ntp_gguf_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(ntp_gguf_writer_set_alignment(w, 64));
    CHECK_OK(ntp_gguf_writer_set_u32(w, "llama.block_count", 2));
    CHECK_OK(ntp_gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f));
    CHECK_OK(ntp_gguf_writer_set_bool(w, "x.flag", true));
    const char *toks[] = {"<s>", "</s>", "a", "bc"};
    CHECK_OK(ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4));
    CHECK_OK(ntp_gguf_writer_set_arr_data(w, "tokenizer.ggml.scores", NTP_GGUF_FLOAT32,
                                          (float[]){0, -1, -2, -3}, 4));
    ntp_gguf_value e[2] = {{.type = NTP_GGUF_UINT16, .u16 = 1},
                           {.type = NTP_GGUF_UINT16, .u16 = 2}};
    ntp_gguf_value in[2] = {{.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_UINT16, 2, e}},
                            {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_UINT16, 0, NULL}}};
    ntp_gguf_value nested = {.type = NTP_GGUF_ARRAY, .arr = {NTP_GGUF_ARRAY, 2, in}};
    CHECK_OK(ntp_gguf_writer_set_value(w, "x.nested", &nested));
    uint8_t data[2 * 144] = {0};
    CHECK_OK(
        ntp_gguf_writer_add_tensor(w, "tok_embd.weight", NTP_TYPE_F32, 2, (int64_t[]){8, 4}, data));
    CHECK_OK(ntp_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", NTP_TYPE_Q4_K, 2,
                                        (int64_t[]){256, 2}, data));
    CHECK_OK(ntp_gguf_writer_to_buffer(w, buf, len));
    ntp_gguf_writer_free(w);
}

/* Every proper prefix of a valid file is NTP_E_TRUNCATED; the whole file parses. */
static void test_truncation_everywhere(void)
{
    void *buf;
    size_t len;
    make_valid(&buf, &len);
    /* The padding after the last tensor is optional: cutting it off leaves a valid file. */
    ntp_gguf *full = NULL;
    CHECK_OK(ntp_gguf_parse(buf, len, &full));
    size_t data_end = 0;
    for (int64_t i = 0; full && i < ntp_gguf_n_tensors(full); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(full, i);
        size_t end = (size_t)((const uint8_t *)t->data - (const uint8_t *)buf) + t->size;
        data_end = end > data_end ? end : data_end;
    }
    ntp_gguf_free(full);
    CHECK(data_end > 0 && data_end < len);
    int bad = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, buf, cut);
        ntp_gguf *g = NULL;
        ntp_status s = ntp_gguf_parse(p, cut, &g);
        ntp_status want = cut >= data_end ? NTP_OK : NTP_E_TRUNCATED;
        if (s != want || (s != NTP_OK) != (g == NULL)) {
            if (bad++ < 5)
                fprintf(stderr, "cut at %zu of %zu: %s (%s)\n", cut, len, ntp_status_str(s),
                        ntp_last_error());
        }
        if (g)
            gguf_walk(g);
        ntp_gguf_free(g);
        free(p);
    }
    CHECK(bad == 0);
    n_cases++;
    free(buf);
}

/* Overwrite each byte with a few values: any status is fine, crashes and leaks are not. */
static void test_every_byte(void)
{
    void *buf;
    size_t len;
    make_valid(&buf, &len);
    uint8_t *p = malloc(len);
    static const uint8_t vals[] = {0x00, 0x01, 0x07, 0x40, 0x80, 0xff};
    int n_ok = 0;
    for (size_t i = 0; i < len; i++) {
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(p, buf, len);
            p[i] = vals[v];
            ntp_gguf *g = NULL;
            if (ntp_gguf_parse(p, len, &g) == NTP_OK) {
                gguf_walk(g);
                n_ok++;
            } else {
                CHECK(g == NULL && ntp_last_error()[0] != '\0');
            }
            ntp_gguf_free(g);
        }
    }
    CHECK(n_ok > 0); /* data bytes and most value bytes can change freely */
    n_cases++;
    free(p);
    free(buf);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(p, 1, n, f) == n);
        fclose(f);
    }
}

/* Open a file that must fail with want; the message starts with the path and holds needle. */
static void expect_open(const char *path, ntp_status want, const char *needle)
{
    n_cases++;
    ntp_gguf *g = NULL;
    CHECK_STATUS(ntp_gguf_open(path, &g), want);
    CHECK(g == NULL);
    CHECK(strncmp(ntp_last_error(), path, strlen(path)) == 0);
    if (strstr(ntp_last_error(), needle) == NULL) {
        fprintf(stderr, "%s: message '%s' lacks '%s'\n", path, ntp_last_error(), needle);
        ntp_test_failures++;
    }
    ntp_gguf_free(g);
}

static void test_files(void)
{
    char path[256];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/ntp-test-hostile-%d.gguf", dir, (int)getpid());
    write_bytes(path, "", 0);
    expect_open(path, NTP_E_TRUNCATED, "empty file (0 bytes)");
    write_bytes(path, "GGJT\x03\0\0\0", 8);
    expect_open(path, NTP_E_FORMAT, "bad magic");
    /* A real file cut short: a tokenizer fixture when there is one, else a made one. */
    char fixture[512];
    snprintf(fixture, sizeof fixture, "%s/tests/data/tokenizer/ggml-vocab-llama-spm.gguf",
             NTP_SOURCE_ROOT);
    FILE *f = fopen(fixture, "rb");
    void *buf = NULL;
    size_t len = 0;
    bool have_fixture = f != NULL;
    if (f) {
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(len);
        CHECK(fread(buf, 1, len, f) == len);
        fclose(f);
    } else {
        make_valid(&buf, &len);
    }
    write_bytes(path, buf, len / 2);
    expect_open(path, NTP_E_TRUNCATED, have_fixture ? "key 'tokenizer.ggml." : "at byte");
    write_bytes(path, buf, len);
    ntp_gguf *g = NULL;
    CHECK_OK(ntp_gguf_open(path, &g));
    ntp_gguf_free(g);
    free(buf);
    unlink(path);
    expect_open(path, NTP_E_IO, "cannot open");
    expect_open(dir, NTP_E_IO, "a directory, not a regular file");
    expect_open("/dev/null", NTP_E_IO, "a character device, not a regular file");
    /* A FIFO is refused at once; opening it used to wait for a writer forever. */
    CHECK(mkfifo(path, 0600) == 0);
    alarm(20);
    expect_open(path, NTP_E_IO, "a FIFO, not a regular file");
    alarm(0);
    unlink(path);
}

int main(void)
{
    test_header();
    test_keys();
    test_arrays();
    test_alignment_key();
    test_tensor_shapes();
    test_tensor_data();
    test_truncation_everywhere();
    test_every_byte();
    test_files();
    printf("%d hostile cases\n", n_cases);
    CHECK(n_cases >= 30);
    return ntp_test_result("test_gguf_hostile");
}
