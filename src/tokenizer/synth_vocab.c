/*
 * synth_vocab.c - builds a byte-level BPE vocabulary for generated models by
 * training BPE on a fixed English text: the 256 byte symbols come first in
 * GPT-2's order, then one token per merge, then the special tokens. When the
 * text has nothing left to merge, further merges extend earlier tokens by one
 * letter, so any size is reachable and every merge stays valid (both halves
 * are tokens, the result is a new token).
 */
#include "tokenizer/synth_vocab.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>

/*
 * The training text. Written for this file; any English prose would do. It
 * only decides which merges come first, so it stays fixed: changing it would
 * change every generated model's vocabulary.
 */
static const char corpus[] =
    "The morning was cold and the river ran fast under the old stone bridge. People in the "
    "town walked to work with their hands in their pockets, and the shops opened one by one. "
    "A baker set out fresh bread on the counter, and the smell of it filled the whole street.\n"
    "In the small school at the end of the road, the teacher wrote a question on the board: "
    "what is the difference between a number and a word? The children thought about it for a "
    "long time. One of them said that a number tells you how many things there are, while a "
    "word tells you what the things are. The teacher smiled and said that this was a good "
    "answer, but that there was more to it than that.\n"
    "Computers store both numbers and words as patterns of bits. A program that reads text "
    "must first break it into pieces, and those pieces are called tokens. Some tokens are "
    "whole words, some are parts of words, and some are single letters or marks. The way a "
    "text is split into tokens depends on the order in which the pieces were learned.\n"
    "In 2023 there were 365 days in the year, 12 months, and 52 weeks. The train left at "
    "7:45 and arrived at 9:30, which was 15 minutes later than planned. Prices rose by 3.5 "
    "percent, and the report said that 1 in 4 families had to change their plans.\n"
    "\"Where are you going?\" she asked. \"To the market,\" he answered, \"and then home.\" "
    "They walked together for a while, talking about the weather, the harvest, and the news "
    "from the city. It had been a long summer, and everyone was looking forward to the "
    "autumn rain.\n"
    "A good model of language should know that the word the is common, that questions end "
    "with a question mark, and that sentences start with a capital letter. It should also "
    "know that some words often follow others: thank you, of course, at least, in order to, "
    "as well as. These patterns are what the merges of a tokenizer try to capture.\n"
    "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(i, add(i, 1))\n";

/* A word of the training text as token ids, and how often the word occurs. */
struct word {
    int32_t *ids; /* [len] token ids; owned */
    int len;
    int64_t count;
};

/* Open-addressing map from a 64-bit key to a value; keys are never 0 here. */
struct map {
    uint64_t *keys; /* [cap] 0 = empty */
    int64_t *vals;  /* [cap] */
    size_t cap;     /* power of two */
    size_t n;
};

/* Everything the builder works on; freed in one place. */
struct builder {
    struct ntp_synth_vocab *v;
    int64_t n_text_tokens; /* tokens before the special ones (n_tokens - 3) */
    int64_t n;             /* tokens made so far */
    struct map strs;       /* hash of a token string -> id + 1, to find duplicates */
    size_t merges_cap;     /* capacity of v->merges */
    struct word *words;    /* [n_words] distinct words of the text */
    int n_words;
};

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ? h : 1;
}

static bool map_init(struct map *m, size_t min_cap)
{
    m->cap = 64;
    while (m->cap < 2 * min_cap)
        m->cap *= 2;
    m->n = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    return m->keys && m->vals;
}

static void map_free(struct map *m)
{
    free(m->keys);
    free(m->vals);
}

/* Slot of key: where it is, or the empty slot where it would go. */
static size_t map_slot(const struct map *m, uint64_t key)
{
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull) & (m->cap - 1);
    while (m->keys[i] != 0 && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void map_clear(struct map *m)
{
    memset(m->keys, 0, m->cap * sizeof *m->keys);
    m->n = 0;
}

/*
 * GPT-2's byte-to-unicode table: printable Latin-1 bytes stand for themselves,
 * the other 68 bytes (controls, space, 0x7f-0xa0, 0xad) get code points 256,
 * 257, ... in byte order. Token i of the vocabulary is the i-th symbol in the
 * order GPT-2 lists them: the printable ones first, then the others.
 */
static bool byte_is_printable(int b)
{
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

static void byte_symbols(uint32_t cp_of_token[256], int32_t token_of_byte[256])
{
    int next = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if (byte_is_printable(b)) {
            cp_of_token[next] = (uint32_t)b;
            token_of_byte[b] = next++;
        }
    for (int b = 0; b < 256; b++)
        if (!byte_is_printable(b)) {
            cp_of_token[next] = 256u + (uint32_t)extra++;
            token_of_byte[b] = next++;
        }
}

/* UTF-8 of a code point below 0x800 (all byte symbols are). */
static void utf8_small(uint32_t cp, char out[3])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = '\0';
    }
}

/*
 * The id of string s if it is a token already, else -1. The map holds a
 * 64-bit hash per token; a collision would only make a candidate look taken.
 */
static int64_t find_token(const struct builder *b, const char *s)
{
    size_t i = map_slot(&b->strs, hash_bytes(s, strlen(s)));
    return b->strs.keys[i] ? b->strs.vals[i] - 1 : -1;
}

/* Append token s (taking ownership) of type t. */
static void add_token(struct builder *b, char *s, int32_t t)
{
    const uint64_t h = hash_bytes(s, strlen(s));
    size_t i = map_slot(&b->strs, h);
    b->strs.keys[i] = h;
    b->strs.vals[i] = b->n + 1;
    b->strs.n++;
    b->v->tokens[b->n] = s;
    b->v->token_type[b->n] = t;
    b->n++;
}

static char *concat(const char *a, const char *sep, const char *c)
{
    size_t la = strlen(a), ls = strlen(sep), lc = strlen(c);
    char *s = malloc(la + ls + lc + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, sep, ls);
        memcpy(s + la + ls, c, lc + 1);
    }
    return s;
}

/* Record the merge "left right" of tokens l and r. */
static ntp_status add_merge(struct builder *b, int32_t l, int32_t r)
{
    struct ntp_synth_vocab *v = b->v;
    if ((size_t)v->n_merges == b->merges_cap) {
        size_t cap = b->merges_cap ? b->merges_cap * 2 : 256;
        char **m = realloc(v->merges, cap * sizeof *m);
        if (m == NULL)
            return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory for merges");
        v->merges = m;
        b->merges_cap = cap;
    }
    char *s = concat(v->tokens[l], " ", v->tokens[r]);
    if (s == NULL)
        return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory for merges");
    v->merges[v->n_merges++] = s;
    return NTP_OK;
}

enum char_class { CC_ALPHA, CC_DIGIT, CC_SPACE, CC_OTHER };

static enum char_class char_class(char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return CC_ALPHA;
    if (c >= '0' && c <= '9')
        return CC_DIGIT;
    if (c == ' ' || c == '\n' || c == '\t')
        return CC_SPACE;
    return CC_OTHER;
}

/*
 * Length of the pre-token starting at text[i], roughly as GPT-2's regex
 * splits ASCII text: an optional space and a run of letters, digits or other
 * marks; or a run of white space. Merges never cross these boundaries.
 */
static size_t pretoken_len(const char *text, size_t i)
{
    size_t j = i;
    if (text[j] == ' ' && text[j + 1] && char_class(text[j + 1]) != CC_SPACE)
        j++; /* a single leading space belongs to the word after it */
    enum char_class c = char_class(text[j]);
    size_t k = j + 1;
    while (text[k] && char_class(text[k]) == c)
        k++;
    /* A run of white space leaves its last space to the word that follows. */
    if (c == CC_SPACE && text[k] && k - j > 1 && text[k - 1] == ' ')
        k--;
    return k - i;
}

/* Split the text into distinct words of byte-token ids with their counts. */
static ntp_status split_words(struct builder *b, const int32_t token_of_byte[256])
{
    struct map seen = {0};
    const size_t len = strlen(corpus);
    b->words = calloc(len, sizeof *b->words);
    if (b->words == NULL || !map_init(&seen, len)) {
        map_free(&seen);
        return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory");
    }
    for (size_t i = 0; i < len;) {
        size_t n = pretoken_len(corpus, i);
        size_t slot = map_slot(&seen, hash_bytes(corpus + i, n));
        if (seen.keys[slot]) {
            b->words[seen.vals[slot]].count++;
        } else {
            struct word *w = &b->words[b->n_words];
            w->ids = malloc(n * sizeof *w->ids);
            if (w->ids == NULL) {
                map_free(&seen);
                return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory");
            }
            for (size_t k = 0; k < n; k++)
                w->ids[k] = token_of_byte[(unsigned char)corpus[i + k]];
            w->len = (int)n;
            w->count = 1;
            seen.keys[slot] = hash_bytes(corpus + i, n);
            seen.vals[slot] = b->n_words++;
        }
        i += n;
    }
    map_free(&seen);
    return NTP_OK;
}

/*
 * The most frequent adjacent pair over all words (ties: the smallest pair of
 * ids, so the result does not depend on the map's layout). False when no
 * word has two tokens left.
 */
static bool best_pair(const struct builder *b, struct map *pairs, int32_t *l, int32_t *r)
{
    map_clear(pairs);
    for (int i = 0; i < b->n_words; i++) {
        const struct word *w = &b->words[i];
        for (int k = 0; k + 1 < w->len; k++) {
            uint64_t key = ((uint64_t)(w->ids[k] + 1) << 32) | (uint64_t)(w->ids[k + 1] + 1);
            size_t slot = map_slot(pairs, key);
            if (pairs->keys[slot] == 0) {
                pairs->keys[slot] = key;
                pairs->vals[slot] = 0;
            }
            pairs->vals[slot] += w->count;
        }
    }
    uint64_t best = 0;
    int64_t best_count = 0;
    for (size_t i = 0; i < pairs->cap; i++) {
        uint64_t key = pairs->keys[i];
        if (key && (pairs->vals[i] > best_count || (pairs->vals[i] == best_count && key < best))) {
            best = key;
            best_count = pairs->vals[i];
        }
    }
    *l = (int32_t)(best >> 32) - 1;
    *r = (int32_t)(best & 0xffffffffu) - 1;
    return best_count > 0;
}

/* Replace every (l, r) in every word by id, left to right. */
static void apply_merge(struct builder *b, int32_t l, int32_t r, int32_t id)
{
    for (int i = 0; i < b->n_words; i++) {
        struct word *w = &b->words[i];
        int out = 0;
        for (int k = 0; k < w->len; k++) {
            if (k + 1 < w->len && w->ids[k] == l && w->ids[k + 1] == r) {
                w->ids[out++] = id;
                k++;
            } else {
                w->ids[out++] = w->ids[k];
            }
        }
        w->len = out;
    }
}

/*
 * BPE training on the text until the vocabulary is full or nothing is left to
 * merge. A merge whose result is already a token (two paths to one string)
 * is kept as a merge without a new token, as BPE trainers do.
 */
static ntp_status train(struct builder *b)
{
    struct map pairs;
    if (!map_init(&pairs, strlen(corpus))) {
        map_free(&pairs);
        return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory");
    }
    ntp_status s = NTP_OK;
    int32_t l, r;
    while (s == NTP_OK && b->n < b->n_text_tokens && best_pair(b, &pairs, &l, &r)) {
        char *str = concat(b->v->tokens[l], "", b->v->tokens[r]);
        if (str == NULL) {
            s = ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory");
            break;
        }
        int64_t id = find_token(b, str);
        if (id < 0) {
            id = b->n;
            add_token(b, str, NTP_TOKEN_NORMAL);
        } else {
            free(str);
        }
        s = add_merge(b, l, r);
        apply_merge(b, l, r, (int32_t)id);
    }
    map_free(&pairs);
    return s;
}

/*
 * Fill the rest of the vocabulary once the text is used up: extend the
 * learned tokens, oldest first, by one lower-case letter each, skipping
 * strings that exist. Each token yields up to 26 new ones and new tokens are
 * extended in turn, so this always reaches the requested size.
 */
static ntp_status extend(struct builder *b, const int32_t token_of_byte[256])
{
    static const char letters[] = "etaoinsrhldcumfpgwybvkxjqz";
    int64_t k = b->n > 256 ? 256 : 0;
    for (; b->n < b->n_text_tokens; k++) {
        if (k >= b->n) /* cannot happen: the longest token always extends */
            return ntp__error(NTP_E_INTERNAL, "synthetic vocabulary: ran out of tokens to extend");
        for (const char *c = letters; *c && b->n < b->n_text_tokens; c++) {
            int32_t r = token_of_byte[(unsigned char)*c];
            char *str = concat(b->v->tokens[k], "", b->v->tokens[r]);
            if (str == NULL)
                return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory");
            if (find_token(b, str) >= 0) {
                free(str);
                continue;
            }
            add_token(b, str, NTP_TOKEN_NORMAL);
            ntp_status s = add_merge(b, (int32_t)k, r);
            if (s != NTP_OK)
                return s;
        }
    }
    return NTP_OK;
}

/* The byte symbols as the first 256 tokens. */
static ntp_status add_bytes(struct builder *b, int32_t token_of_byte[256])
{
    uint32_t cp_of_token[256];
    byte_symbols(cp_of_token, token_of_byte);
    for (int i = 0; i < 256; i++) {
        char buf[3];
        utf8_small(cp_of_token[i], buf);
        char *s = concat(buf, "", "");
        if (s == NULL)
            return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory");
        add_token(b, s, NTP_TOKEN_NORMAL);
    }
    return NTP_OK;
}

static ntp_status add_specials(struct builder *b)
{
    static const char *const names[NTP_SYNTH_N_SPECIAL] = {"<|endoftext|>", "<|im_start|>",
                                                           "<|im_end|>"};
    b->v->eot_id = (uint32_t)b->n;
    b->v->im_start_id = (uint32_t)b->n + 1;
    b->v->im_end_id = (uint32_t)b->n + 2;
    for (int i = 0; i < NTP_SYNTH_N_SPECIAL; i++) {
        char *s = concat(names[i], "", "");
        if (s == NULL)
            return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory");
        add_token(b, s, NTP_TOKEN_CONTROL);
    }
    return NTP_OK;
}

static void builder_free(struct builder *b)
{
    for (int i = 0; i < b->n_words; i++)
        free(b->words[i].ids);
    free(b->words);
    map_free(&b->strs);
}

ntp_status ntp__synth_vocab_build(int64_t n_vocab, struct ntp_synth_vocab **out)
{
    *out = NULL;
    if (n_vocab < NTP_SYNTH_MIN_VOCAB || n_vocab > INT32_MAX)
        return ntp__error(NTP_E_INVALID_ARG,
                          "synthetic vocabulary: %lld tokens requested, expected %d to %d "
                          "(256 byte symbols and %d special tokens at least)",
                          (long long)n_vocab, NTP_SYNTH_MIN_VOCAB, INT32_MAX, NTP_SYNTH_N_SPECIAL);
    struct builder b = {.n_text_tokens = n_vocab - NTP_SYNTH_N_SPECIAL};
    struct ntp_synth_vocab *v = calloc(1, sizeof *v);
    b.v = v;
    if (v == NULL || !map_init(&b.strs, (size_t)n_vocab) ||
        (v->tokens = calloc((size_t)n_vocab, sizeof *v->tokens)) == NULL ||
        (v->token_type = calloc((size_t)n_vocab, sizeof *v->token_type)) == NULL) {
        builder_free(&b);
        ntp__synth_vocab_free(v);
        return ntp__error(NTP_E_NOMEM, "synthetic vocabulary: out of memory");
    }
    v->n_tokens = n_vocab;
    int32_t token_of_byte[256];
    ntp_status s = add_bytes(&b, token_of_byte);
    if (s == NTP_OK)
        s = split_words(&b, token_of_byte);
    if (s == NTP_OK)
        s = train(&b);
    if (s == NTP_OK)
        s = extend(&b, token_of_byte);
    if (s == NTP_OK)
        s = add_specials(&b);
    builder_free(&b);
    if (s != NTP_OK) {
        ntp__synth_vocab_free(v);
        return s;
    }
    *out = v;
    return NTP_OK;
}

void ntp__synth_vocab_free(struct ntp_synth_vocab *v)
{
    if (v == NULL)
        return;
    for (int64_t i = 0; v->tokens && i < v->n_tokens; i++)
        free(v->tokens[i]);
    for (int64_t i = 0; i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->token_type);
    free(v->merges);
    free(v);
}

/*
 * ChatML, the template of Qwen's instruct models: the special tokens above
 * are exactly its markers, so chat front-ends that recognise it work.
 */
static const char chat_template[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

ntp_status ntp__synth_vocab_write(const struct ntp_synth_vocab *v, ntp_gguf_writer *w)
{
    ntp_status s;
    if ((s = ntp_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) != NTP_OK ||
        (s = ntp_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2")) != NTP_OK ||
        (s = ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens,
                                         (uint64_t)v->n_tokens)) != NTP_OK ||
        (s = ntp_gguf_writer_set_arr_data(w, "tokenizer.ggml.token_type", NTP_GGUF_INT32,
                                          v->token_type, (uint64_t)v->n_tokens)) != NTP_OK ||
        (s = ntp_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges,
                                         (uint64_t)v->n_merges)) != NTP_OK)
        return s;
    if ((s = ntp_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", v->eot_id)) != NTP_OK ||
        (s = ntp_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", v->eot_id)) != NTP_OK ||
        (s = ntp_gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", v->im_end_id)) != NTP_OK ||
        (s = ntp_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", v->eot_id)) != NTP_OK ||
        (s = ntp_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false)) != NTP_OK ||
        (s = ntp_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false)) != NTP_OK)
        return s;
    return ntp_gguf_writer_set_str(w, "tokenizer.chat_template", chat_template);
}
