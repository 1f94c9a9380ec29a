/*
 * pretok.c - pre-tokenizers of byte-level BPE vocabularies.
 *
 * llama.cpp gives each tokenizer.ggml.pre value a list of regexes and applies
 * them in turn: each regex cuts every piece left by the previous one into its
 * matches and the stretches between matches. The two big regexes (GPT-2's and
 * Llama 3's) run through hand-written matchers in llama.cpp; the others run
 * through std::regex on a copy of the text where each non-ASCII code point is
 * replaced by one byte standing for its category (or by \v for whitespace).
 * Every regex used here is either one of the big two or has the shape
 * `\s?[class]` with `+` or nothing after it, so a small matcher per shape
 * reproduces std::regex's leftmost-first results exactly; the class tests
 * below encode what the collapsed text lets each class see.
 */
#include "tokenizer/pretok.h"

#include "core/core.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ name table */

/* clang-format off */
static const struct ntp__pre_info pre_table[] = {
    /* name               kind                     ign    bos    clean  no_bos */
    {"default",           NTP__PRE_DEFAULT,        false, false, true,  false},
    {"llama3",            NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"llama-v3",          NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"llama-bpe",         NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"falcon3",           NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"falcon-h1",         NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"pixtral",           NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"midm-2.0",          NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"lfm2",              NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"jina-v5-nano",      NTP__PRE_LLAMA3,         true,  true,  true,  false},
    {"dbrx",              NTP__PRE_LLAMA3,         false, false, true,  false},
    {"smaug-bpe",         NTP__PRE_LLAMA3,         false, false, true,  false},
    {"glm4",              NTP__PRE_LLAMA3,         false, false, true,  true},
    {"chatglm-bpe",       NTP__PRE_LLAMA3,         false, false, true,  true},
    {"deepseek-llm",      NTP__PRE_DEEPSEEK_LLM,   false, false, false, false},
    {"deepseek-coder",    NTP__PRE_DEEPSEEK_CODER, false, false, false, false},
    {"deepseek-v3",       NTP__PRE_DEEPSEEK_V3,    false, false, false, false},
    {"falcon",            NTP__PRE_FALCON,         false, false, true,  false},
    {"gpt-2",             NTP__PRE_GPT2,           false, false, true,  false},
    {"phi-2",             NTP__PRE_GPT2,           false, false, true,  false},
    {"gigachat",          NTP__PRE_GPT2,           false, false, true,  false},
    {"a.x-4.0",           NTP__PRE_GPT2,           false, false, true,  false},
    {"mellum",            NTP__PRE_GPT2,           false, false, true,  false},
    {"exaone4",           NTP__PRE_GPT2,           false, false, true,  false},
    {"mpt",               NTP__PRE_GPT2,           false, false, true,  false},
    {"olmo",              NTP__PRE_GPT2,           false, false, true,  false},
    {"jais",              NTP__PRE_GPT2,           false, false, true,  false},
    {"trillion",          NTP__PRE_GPT2,           false, false, false, false},
    {"granite-docling",   NTP__PRE_GPT2,           false, false, false, false},
    {"starcoder",         NTP__PRE_STARCODER,      false, false, true,  false},
    {"refact",            NTP__PRE_STARCODER,      false, false, true,  false},
    {"codeshell",         NTP__PRE_STARCODER,      false, false, true,  false},
    {"exaone",            NTP__PRE_STARCODER,      false, false, true,  false},
    {"minerva-7b",        NTP__PRE_STARCODER,      false, false, true,  false},
    {"mellum2",           NTP__PRE_STARCODER,      false, false, true,  false},
    {"command-r",         NTP__PRE_STARCODER,      false, false, false, false},
    {"smollm",            NTP__PRE_STARCODER,      false, false, false, false},
    {"qwen2",             NTP__PRE_QWEN2,          false, false, false, false},
    {"deepseek-r1-qwen",  NTP__PRE_QWEN2,          false, false, false, false},
    {"kormo",             NTP__PRE_QWEN2,          false, false, false, false},
    {"f2llmv2",           NTP__PRE_QWEN2,          false, false, false, false},
    {"hunyuan",           NTP__PRE_QWEN2,          false, false, false, false},
    {"solar-open",        NTP__PRE_QWEN2,          false, false, false, false},
    {"grok-2",            NTP__PRE_QWEN2,          false, false, false, false},
    {"megrez",            NTP__PRE_QWEN2,          false, false, true,  false},
    {"stablelm2",         NTP__PRE_QWEN2,          false, false, true,  false},
    {"ufakzeka",          NTP__PRE_QWEN2_NO_CONTR, false, false, false, false},
};
/* clang-format on */

#define N_PRE (sizeof pre_table / sizeof pre_table[0])

const struct ntp__pre_info *ntp__pre_find(const char *name)
{
    for (size_t i = 0; i < N_PRE; i++)
        if (strcmp(pre_table[i].name, name) == 0)
            return &pre_table[i];
    return NULL;
}

const char *ntp__pre_supported(void)
{
    return "default, llama3, llama-v3, llama-bpe, falcon3, falcon-h1, pixtral, midm-2.0, lfm2, "
           "jina-v5-nano, dbrx, smaug-bpe, glm4, chatglm-bpe, deepseek-llm, deepseek-coder, "
           "deepseek-v3, "
           "falcon, gpt-2, phi-2, gigachat, a.x-4.0, mellum, exaone4, mpt, olmo, jais, trillion, "
           "granite-docling, starcoder, refact, codeshell, exaone, minerva-7b, mellum2, "
           "command-r, smollm, qwen2, deepseek-r1-qwen, kormo, f2llmv2, hunyuan, solar-open, "
           "grok-2, megrez, stablelm2, ufakzeka";
}

/* ------------------------------------------------------------ word lists */

static ntp_status segs_push(struct ntp__segs *s, size_t len)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        size_t *p = realloc(s->len, cap * sizeof *p);
        if (!p)
            return ntp__error(NTP_E_NOMEM, "tokenizer: out of memory splitting words");
        s->len = p;
        s->cap = cap;
    }
    s->len[s->n++] = len;
    return NTP_OK;
}

void ntp__segs_free(struct ntp__segs *s)
{
    free(s->len);
    s->len = NULL;
    s->n = s->cap = 0;
}

/*
 * Cuts one piece [.., end) into words: add(e) closes the word that started
 * where the previous one ended. The first allocation failure sticks.
 */
struct cutter {
    struct ntp__segs *out;
    size_t prev;   /* where the next word starts */
    ntp_status st; /* NTP_OK or the first failure */
};

static size_t cut_add(struct cutter *c, size_t end)
{
    size_t len = end - c->prev;
    if (len > 0 && c->st == NTP_OK)
        c->st = segs_push(c->out, len);
    c->prev = end;
    return len;
}

/* ------------------------------------------------ character predicates */

/* A piece [a, b) of the code points; positions outside read as "no character". */
struct piece {
    const uint32_t *cps;
    size_t a, b;
};

enum { F_LETTER = 1, F_NUMBER = 2, F_WS = 4, F_IN = 8 };

/* The properties the big two matchers test; 0 outside the piece. */
static unsigned flags_at(const struct piece *p, size_t pos)
{
    if (pos < p->a || pos >= p->b)
        return 0;
    uint32_t cp = p->cps[pos];
    unsigned f = F_IN;
    if (ntp__u_is_ws(cp))
        return f | F_WS;
    enum ntp__ucat c = ntp__ucat_of(cp);
    if (c == NTP__UCAT_L)
        f |= F_LETTER;
    else if (c == NTP__UCAT_N)
        f |= F_NUMBER;
    return f;
}

static uint32_t cp_at(const struct piece *p, size_t pos)
{
    return (pos >= p->a && pos < p->b) ? p->cps[pos] : UINT32_MAX;
}

static uint32_t ascii_lower(uint32_t c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/*
 * Length of a contraction ('s 't 're 've 'm 'll 'd) at pos, or 0. any_case
 * follows Llama 3's (?i:...); llama.cpp lowercases with the full Unicode
 * table there, but no non-ASCII code point lowercases to one of these letters,
 * so ASCII folding gives the same answers.
 */
static size_t contraction_at(const struct piece *p, size_t pos, bool any_case)
{
    if (cp_at(p, pos) != '\'' || pos + 1 >= p->b)
        return 0;
    uint32_t c1 = cp_at(p, pos + 1);
    if (any_case)
        c1 = ascii_lower(c1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
        return 2;
    if (pos + 2 >= p->b)
        return 0;
    uint32_t c2 = cp_at(p, pos + 2);
    if (any_case)
        c2 = ascii_lower(c2);
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
        return 3;
    return 0;
}

/*
 * Whitespace tail shared by both big matchers: `\s+(?!\S)` leaves the last
 * space of a run for the next word when a character follows, `\s+` takes the
 * run otherwise, and a position nothing matches becomes a word of its own.
 */
static size_t cut_ws(struct cutter *c, const struct piece *p, size_t pos)
{
    size_t n = 0;
    while (flags_at(p, pos + n) & F_WS)
        n++;
    if (n > 1 && pos + n < p->b) {
        pos += n - 1;
        cut_add(c, pos);
        return pos;
    }
    if (n > 0) {
        pos += n;
        cut_add(c, pos);
        return pos;
    }
    cut_add(c, ++pos);
    return pos;
}

/* ------------------------------------------------------ GPT-2 matcher */

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(struct cutter *c, const struct piece *p)
{
    size_t pos = p->a;
    while (pos < p->b) {
        uint32_t cp = p->cps[pos];
        size_t k = contraction_at(p, pos, false);
        if (k) {
            pos += cut_add(c, pos + k);
            continue;
        }
        unsigned f2 = flags_at(p, cp == ' ' ? pos + 1 : pos);
        unsigned want = 0;
        if (f2 & F_LETTER)
            want = F_LETTER;
        else if (f2 & F_NUMBER)
            want = F_NUMBER;
        if (want) {
            pos += (cp == ' ');
            while (flags_at(p, pos) & want)
                pos++;
            cut_add(c, pos);
            continue;
        }
        if ((f2 & F_IN) && !(f2 & (F_WS | F_LETTER | F_NUMBER))) {
            pos += (cp == ' ');
            for (f2 = flags_at(p, pos); (f2 & F_IN) && !(f2 & (F_WS | F_LETTER | F_NUMBER));)
                f2 = flags_at(p, ++pos);
            cut_add(c, pos);
            continue;
        }
        pos = cut_ws(c, p, pos);
    }
}

/* ----------------------------------------------------- Llama 3 matcher */

/*
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * with D = max_digits. Qwen2's regex (D = 1, contractions spelled [sS]...)
 * goes through std::regex in llama.cpp; on the collapsed text it matches
 * exactly what this does.
 */
static void split_llama3(struct cutter *c, const struct piece *p, size_t max_digits,
                         bool contractions)
{
    size_t pos = p->a;
    while (pos < p->b) {
        uint32_t cp = p->cps[pos];
        unsigned f = flags_at(p, pos);
        size_t k = contractions ? contraction_at(p, pos, true) : 0;
        if (k) {
            pos += cut_add(c, pos + k);
            continue;
        }
        if (!(cp == '\r' || cp == '\n' || (f & F_NUMBER)) &&
            ((f & F_LETTER) || (flags_at(p, pos + 1) & F_LETTER))) {
            pos++;
            while (flags_at(p, pos) & F_LETTER)
                pos++;
            cut_add(c, pos);
            continue;
        }
        if (f & F_NUMBER) {
            size_t ini = pos;
            while (flags_at(p, pos) & F_NUMBER) {
                if (++pos - ini >= max_digits) {
                    cut_add(c, pos);
                    ini = pos;
                }
            }
            cut_add(c, pos);
            continue;
        }
        unsigned f2 = cp == ' ' ? flags_at(p, pos + 1) : f;
        /* llama.cpp tests the current position (always inside) for "in range" here. */
        if (!(f2 & (F_WS | F_LETTER | F_NUMBER))) {
            pos += (cp == ' ');
            for (f2 = flags_at(p, pos); (f2 & F_IN) && !(f2 & (F_WS | F_LETTER | F_NUMBER));)
                f2 = flags_at(p, ++pos);
            while (cp_at(p, pos) == '\r' || cp_at(p, pos) == '\n')
                pos++;
            cut_add(c, pos);
            continue;
        }
        size_t n = 0, last_rn = 0;
        while (flags_at(p, pos + n) & F_WS) {
            uint32_t w = p->cps[pos + n];
            if (w == '\r' || w == '\n')
                last_rn = pos + n + 1;
            n++;
        }
        if (last_rn > 0) {
            pos = last_rn;
            cut_add(c, pos);
            continue;
        }
        pos = cut_ws(c, p, pos);
    }
}

/* ------------------------------------------------ `\s?[class]+` regexes */

enum cls {
    CL_NEWLINE,       /* [\r\n] */
    CL_LETTER,        /* \p{L} */
    CL_NUMBER,        /* \p{N} */
    CL_PUNCT,         /* \p{P} */
    CL_MARK,          /* \p{M} */
    CL_SYMBOL,        /* \p{S} */
    CL_PUNCT_DEFAULT, /* [\p{P}\$\+<=>\^~\|] */
    CL_PUNCT_FALCON,  /* [\p{P}\$\+<=>\^~\|`] */
    CL_CJK,           /* [一-龥ࠀ-一가-퟿] */
    CL_DS_LETTER,     /* deepseek-llm's letter list */
    CL_DS_PUNCT,      /* [!-/:-~！-／：-～‘-‟　-。] */
    CL_DIGIT,         /* [0-9] */
    CL_CJK_KANA,      /* [一-龥぀-ゟ゠-ヿ]: CJK, hiragana, katakana (deepseek-v3) */
};

static bool cls_match(enum cls k, uint32_t cp)
{
    /* llama.cpp hands std::regex a \v in place of non-ASCII whitespace. */
    if (cp >= 0x80 && ntp__u_is_ws(cp))
        return false;
    switch (k) {
    case CL_NEWLINE:
        return cp == '\r' || cp == '\n';
    case CL_LETTER:
        return ntp__ucat_of(cp) == NTP__UCAT_L;
    case CL_NUMBER:
        return ntp__ucat_of(cp) == NTP__UCAT_N;
    case CL_PUNCT:
        return ntp__ucat_of(cp) == NTP__UCAT_P;
    case CL_MARK:
        return ntp__ucat_of(cp) == NTP__UCAT_M;
    case CL_SYMBOL:
        return ntp__ucat_of(cp) == NTP__UCAT_S;
    case CL_PUNCT_FALCON:
        if (cp == '`')
            return true;
        /* fall through */
    case CL_PUNCT_DEFAULT:
        return (cp != 0 && cp < 0x80 && strchr("$+<=>^~|", (int)cp)) ||
               ntp__ucat_of(cp) == NTP__UCAT_P;
    case CL_CJK:
        return (cp >= 0x4E00 && cp <= 0x9FA5) || (cp >= 0x0800 && cp <= 0x4E00) ||
               (cp >= 0xAC00 && cp <= 0xD7FF);
    case CL_DS_LETTER:
        return ntp__u_in_ranges(ntp__dsllm_letters, ntp__dsllm_n_letters, cp);
    case CL_DS_PUNCT:
        return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x7E) ||
               (cp >= 0xFF01 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF5E) ||
               (cp >= 0x2018 && cp <= 0x201F) || (cp >= 0x3000 && cp <= 0x3002);
    case CL_DIGIT:
        return cp >= '0' && cp <= '9';
    case CL_CJK_KANA:
        return (cp >= 0x4E00 && cp <= 0x9FA5) || (cp >= 0x3040 && cp <= 0x30FF);
    }
    return false;
}

/* \p{N}{1,3}, leftmost first (deepseek-v3's first pattern). */
static void split_num3(struct cutter *c, const struct piece *p)
{
    size_t pos = p->a;
    while (pos < p->b) {
        if (!cls_match(CL_NUMBER, p->cps[pos])) {
            pos++;
            continue;
        }
        size_t end = pos + 1;
        while (end < p->b && end < pos + 3 && cls_match(CL_NUMBER, p->cps[end]))
            end++;
        cut_add(c, pos);
        cut_add(c, end);
        pos = end;
    }
    cut_add(c, p->b);
}

static bool ds3_ascii_punct(uint32_t cp)
{
    return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) ||
           (cp >= 0x5B && cp <= 0x60) || (cp >= 0x7B && cp <= 0x7E);
}

static bool ds3_ascii_letter(uint32_t cp)
{
    return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z');
}

static bool ds3_word(uint32_t cp) /* [\p{L}\p{M}] */
{
    return cls_match(CL_LETTER, cp) || cls_match(CL_MARK, cp);
}

static bool ds3_ps(uint32_t cp) /* [\p{P}\p{S}] */
{
    return cls_match(CL_PUNCT, cp) || cls_match(CL_SYMBOL, cp);
}

/*
 * The length of deepseek-v3's last pattern matched at pos (0: none), its
 * alternatives tried in order as std::regex does:
 * [!-/:-@[-`{-~][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ |
 * ?[\p{P}\p{S}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 */
static size_t ds3_match(const struct piece *p, size_t pos)
{
    const uint32_t *cp = p->cps;
    const size_t b = p->b;
    size_t e;
    if (ds3_ascii_punct(cp[pos]) && pos + 1 < b && ds3_ascii_letter(cp[pos + 1])) {
        for (e = pos + 2; e < b && ds3_ascii_letter(cp[e]);)
            e++;
        return e - pos;
    }
    const bool nl = cp[pos] == '\r' || cp[pos] == '\n';
    if (!nl && !cls_match(CL_LETTER, cp[pos]) && !ds3_ps(cp[pos]) && pos + 1 < b &&
        ds3_word(cp[pos + 1])) { /* with the optional first character */
        for (e = pos + 2; e < b && ds3_word(cp[e]);)
            e++;
        return e - pos;
    }
    if (ds3_word(cp[pos])) {
        for (e = pos + 1; e < b && ds3_word(cp[e]);)
            e++;
        return e - pos;
    }
    e = pos + (cp[pos] == ' ' && pos + 1 < b && ds3_ps(cp[pos + 1]));
    if (ds3_ps(cp[e])) {
        while (e < b && ds3_ps(cp[e]))
            e++;
        while (e < b && (cp[e] == '\r' || cp[e] == '\n'))
            e++;
        return e - pos;
    }
    size_t ws = pos, last_nl = b; /* the whitespace run, and its last newline */
    for (; ws < b && ntp__u_is_ws(cp[ws]); ws++)
        if (cp[ws] == '\r' || cp[ws] == '\n')
            last_nl = ws;
    if (ws == pos)
        return 0;
    if (last_nl < b)
        return last_nl + 1 - pos; /* \s*[\r\n]+ */
    if (ws == b || ws - pos == 1)
        return ws - pos; /* \s+(?!\S) at the end, else \s+ */
    return ws - 1 - pos; /* \s+(?!\S): the last one stays for the next word */
}

/* deepseek-v3's last pattern over the piece; stretches between matches become words. */
static void split_ds3(struct cutter *c, const struct piece *p)
{
    size_t pos = p->a;
    while (pos < p->b) {
        const size_t n = ds3_match(p, pos);
        if (n == 0) {
            pos++;
            continue;
        }
        cut_add(c, pos);
        cut_add(c, pos + n);
        pos += n;
    }
    cut_add(c, p->b);
}

/*
 * `\s?[class]+` (plus) or `[class]` (single), found leftmost-first as
 * std::regex_iterator does; stretches between matches become words too.
 */
static void split_class(struct cutter *c, const struct piece *p, enum cls k, bool ws_prefix,
                        bool plus)
{
    size_t pos = p->a;
    while (pos < p->b) {
        size_t start = pos, end;
        if (ws_prefix && ntp__u_is_ws(p->cps[pos]) && pos + 1 < p->b &&
            cls_match(k, p->cps[pos + 1]))
            end = pos + 2;
        else if (cls_match(k, p->cps[pos]))
            end = pos + 1;
        else {
            pos++;
            continue;
        }
        while (plus && end < p->b && cls_match(k, p->cps[end]))
            end++;
        cut_add(c, start);
        cut_add(c, end);
        pos = end;
    }
    cut_add(c, p->b);
}

/* [0-9][0-9][0-9], leftmost first. */
static void split_digit3(struct cutter *c, const struct piece *p)
{
    size_t pos = p->a;
    while (pos < p->b) {
        if (pos + 3 <= p->b && cls_match(CL_DIGIT, p->cps[pos]) &&
            cls_match(CL_DIGIT, p->cps[pos + 1]) && cls_match(CL_DIGIT, p->cps[pos + 2])) {
            cut_add(c, pos);
            cut_add(c, pos + 3);
            pos += 3;
        } else {
            pos++;
        }
    }
    cut_add(c, p->b);
}

/* \s+$ : the whitespace run that ends the piece. */
static void split_trailing_ws(struct cutter *c, const struct piece *p)
{
    size_t start = p->b;
    while (start > p->a && ntp__u_is_ws(p->cps[start - 1]))
        start--;
    cut_add(c, start);
    cut_add(c, p->b);
}

/* ------------------------------------------------------------- stages */

enum op { OP_GPT2, OP_LLAMA3, OP_CLASS, OP_DIGIT3, OP_TRAIL_WS, OP_NUM3, OP_DS3 };

struct stage {
    enum op op;
    enum cls cls;      /* OP_CLASS */
    bool ws_prefix;    /* OP_CLASS: `\s?` in front */
    bool plus;         /* OP_CLASS: `+` after the class */
    size_t digits;     /* OP_LLAMA3: digits per number word */
    bool contractions; /* OP_LLAMA3: the contraction alternative is present */
};

#define S_CLASS(k, ws, pl)                                                                         \
    {                                                                                              \
        OP_CLASS, k, ws, pl, 0, false                                                              \
    }
#define S_OP(o)                                                                                    \
    {                                                                                              \
        o, CL_NEWLINE, false, false, 0, false                                                      \
    }
#define S_LLAMA3(d, ct)                                                                            \
    {                                                                                              \
        OP_LLAMA3, CL_NEWLINE, false, false, d, ct                                                 \
    }

static const struct stage st_default[] = {S_CLASS(CL_PUNCT_DEFAULT, false, true), S_OP(OP_GPT2),
                                          S_CLASS(CL_NUMBER, false, true), S_OP(OP_DIGIT3)};
static const struct stage st_gpt2[] = {S_OP(OP_GPT2)};
static const struct stage st_llama3[] = {S_LLAMA3(3, true)};
static const struct stage st_qwen2[] = {S_LLAMA3(1, true)};
static const struct stage st_qwen2_nc[] = {S_LLAMA3(1, false)};
static const struct stage st_starcoder[] = {S_CLASS(CL_NUMBER, false, false), S_OP(OP_GPT2)};
static const struct stage st_falcon[] = {S_CLASS(CL_PUNCT_FALCON, false, true), S_OP(OP_GPT2),
                                         S_OP(OP_DIGIT3)};
static const struct stage st_ds_llm[] = {
    S_CLASS(CL_NEWLINE, false, false), S_CLASS(CL_DS_LETTER, true, true),
    S_CLASS(CL_DS_PUNCT, true, true),  S_OP(OP_TRAIL_WS),
    S_CLASS(CL_CJK, false, true),      S_CLASS(CL_NUMBER, false, true)};
static const struct stage st_ds_v3[] = {S_OP(OP_NUM3), S_CLASS(CL_CJK_KANA, false, true),
                                        S_OP(OP_DS3)};
static const struct stage st_ds_coder[] = {
    S_CLASS(CL_NEWLINE, false, false), S_CLASS(CL_LETTER, true, true),
    S_CLASS(CL_PUNCT, true, true), S_CLASS(CL_CJK, false, true), S_CLASS(CL_NUMBER, false, false)};

#define STAGES(a)                                                                                  \
    {                                                                                              \
        a, sizeof a / sizeof a[0]                                                                  \
    }

static const struct {
    const struct stage *st;
    size_t n;
} kind_stages[] = {
    [NTP__PRE_DEFAULT] = STAGES(st_default),         [NTP__PRE_GPT2] = STAGES(st_gpt2),
    [NTP__PRE_LLAMA3] = STAGES(st_llama3),           [NTP__PRE_QWEN2] = STAGES(st_qwen2),
    [NTP__PRE_QWEN2_NO_CONTR] = STAGES(st_qwen2_nc), [NTP__PRE_STARCODER] = STAGES(st_starcoder),
    [NTP__PRE_FALCON] = STAGES(st_falcon),           [NTP__PRE_DEEPSEEK_LLM] = STAGES(st_ds_llm),
    [NTP__PRE_DEEPSEEK_CODER] = STAGES(st_ds_coder), [NTP__PRE_DEEPSEEK_V3] = STAGES(st_ds_v3),
};

static void run_stage(const struct stage *s, struct cutter *c, const struct piece *p)
{
    switch (s->op) {
    case OP_GPT2:
        split_gpt2(c, p);
        break;
    case OP_LLAMA3:
        split_llama3(c, p, s->digits, s->contractions);
        break;
    case OP_CLASS:
        split_class(c, p, s->cls, s->ws_prefix, s->plus);
        break;
    case OP_DIGIT3:
        split_digit3(c, p);
        break;
    case OP_TRAIL_WS:
        split_trailing_ws(c, p);
        break;
    case OP_NUM3:
        split_num3(c, p);
        break;
    case OP_DS3:
        split_ds3(c, p);
        break;
    }
}

ntp_status ntp__pre_split(enum ntp__pre_kind kind, const uint32_t *cps, size_t n,
                          struct ntp__segs *out)
{
    struct ntp__segs cur = {0}, next = {0};
    ntp_status st = NTP_OK;
    if (n == 0)
        return NTP_OK;
    if ((st = segs_push(&cur, n)) != NTP_OK)
        return st;
    for (size_t si = 0; si < kind_stages[kind].n && st == NTP_OK; si++) {
        size_t start = 0;
        next.n = 0;
        for (size_t w = 0; w < cur.n && st == NTP_OK; w++) {
            struct piece p = {cps, start, start + cur.len[w]};
            struct cutter c = {&next, start, NTP_OK};
            run_stage(&kind_stages[kind].st[si], &c, &p);
            st = c.st;
            start = p.b;
        }
        struct ntp__segs t = cur;
        cur = next;
        next = t;
    }
    for (size_t w = 0; w < cur.n && st == NTP_OK; w++)
        st = segs_push(out, cur.len[w]);
    ntp__segs_free(&cur);
    ntp__segs_free(&next);
    return st;
}
