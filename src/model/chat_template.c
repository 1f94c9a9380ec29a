/*
 * chat_template.c - recognize a chat template family by its markers and
 * format conversations the way llama.cpp's built-in templates do.
 *
 * The expected outputs in tests/sampler/test_chat_template.c come from
 * llama.cpp's tests/test-chat-template.cpp, so the quirks are deliberate:
 * e.g. llama2 puts the system prompt inside the first [INST], gemma folds it
 * into the next user turn, and llama3 and gemma trim every message.
 */
#include "model/chat_template.h"

#include "core/core.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Output cursor: writes while there is room, always counts, so one pass both measures and writes.
 */
struct out {
    char *buf;  /* caller's buffer, may be NULL when cap is 0 */
    size_t cap; /* bytes available in buf, NUL included */
    size_t len; /* bytes the full text needs so far */
};

static void put_n(struct out *o, const char *s, size_t n)
{
    if (o->len + n < o->cap)
        memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put(struct out *o, const char *s)
{
    put_n(o, s, strlen(s));
}

/* Bounds of s without leading and trailing white space (C isspace, as llama.cpp's trim). */
static const char *trimmed(const char *s, size_t *n)
{
    size_t len = strlen(s), start = 0;
    while (start < len && isspace((unsigned char)s[start]))
        start++;
    while (len > start && isspace((unsigned char)s[len - 1]))
        len--;
    *n = len - start;
    return s + start;
}

static void put_trim(struct out *o, const char *s)
{
    size_t n;
    const char *t = trimmed(s, &n);
    put_n(o, t, n);
}

static bool is_role(const struct ntp_chat_msg *m, const char *role)
{
    return strcmp(m->role, role) == 0;
}

/* ------------------------------------------------------------ formatters */

typedef void (*format_fn)(struct out *o, enum ntp_chat_style style, const struct ntp_chat_msg *m,
                          size_t n, bool add_ass);

/* Styles of the form HEAD role MID content TAIL, with the assistant header at the end. */
struct simple_style {
    enum ntp_chat_style style;
    const char *head, *mid, *tail; /* around each message's role and content */
    bool trim;                     /* content trimmed (llama3) */
    const char *assistant;         /* the generation prompt, or NULL for none */
};

static const struct simple_style simple_styles[] = {
    {NTP_CHAT_CHATML, "<|im_start|>", "\n", "<|im_end|>\n", false, "<|im_start|>assistant\n"},
    {NTP_CHAT_LLAMA3, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", true,
     "<|start_header_id|>assistant<|end_header_id|>\n\n"},
    {NTP_CHAT_ZEPHYR, "<|", "|>\n", "<|endoftext|>\n", false, "<|assistant|>\n"},
    {NTP_CHAT_PHI3, "<|", "|>\n", "<|end|>\n", false, "<|assistant|>\n"},
    {NTP_CHAT_PHI4, "<|im_start|>", "<|im_sep|>", "<|im_end|>", false,
     "<|im_start|>assistant<|im_sep|>"},
    {NTP_CHAT_FALCON3, "<|", "|>\n", "\n", false, "<|assistant|>\n"},
    {NTP_CHAT_GLMEDGE, "<|", "|>\n", "", false, "<|assistant|>"},
};

static void fmt_simple(struct out *o, enum ntp_chat_style style, const struct ntp_chat_msg *m,
                       size_t n, bool add_ass)
{
    const struct simple_style *ss = NULL;
    for (size_t i = 0; i < sizeof simple_styles / sizeof simple_styles[0]; i++)
        if (simple_styles[i].style == style)
            ss = &simple_styles[i];
    for (size_t i = 0; i < n; i++) {
        put(o, ss->head);
        put(o, m[i].role);
        put(o, ss->mid);
        if (ss->trim)
            put_trim(o, m[i].content);
        else
            put(o, m[i].content);
        put(o, ss->tail);
    }
    if (add_ass && ss->assistant)
        put(o, ss->assistant);
}

/* Llama 2 and the early Mistral instruct models; the prompt always ends in [/INST]. */
static void fmt_llama2(struct out *o, enum ntp_chat_style style, const struct ntp_chat_msg *m,
                       size_t n, bool add_ass)
{
    (void)add_ass;
    bool sys = style != NTP_CHAT_LLAMA2;
    bool bos_inside = style == NTP_CHAT_LLAMA2_SYS_BOS;
    bool strip = style == NTP_CHAT_LLAMA2_SYS_STRIP;
    bool inside_turn = true; /* the first [INST] comes without <s>: the tokenizer adds BOS */
    put(o, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!inside_turn) {
            inside_turn = true;
            put(o, bos_inside ? "<s>[INST] " : "[INST] ");
        }
        const char *pre = "", *post = " [/INST]";
        if (is_role(&m[i], "system")) {
            /* Without <<SYS>> support the system text still leads the first turn. */
            pre = sys ? "<<SYS>>\n" : "";
            post = sys ? "\n<</SYS>>\n\n" : "\n";
        } else if (!is_role(&m[i], "user")) {
            post = "</s>";
            inside_turn = false;
        }
        put(o, pre);
        if (strip)
            put_trim(o, m[i].content);
        else
            put(o, m[i].content);
        put(o, post);
    }
}

/* Mistral's official v1, v3 and v3-tekken templates (system text opens the turn it falls in). */
static void fmt_mistral(struct out *o, enum ntp_chat_style style, const struct ntp_chat_msg *m,
                        size_t n, bool add_ass)
{
    (void)add_ass;
    const char *lead = style == NTP_CHAT_MISTRAL_V1 ? " " : "";
    const char *trail = style == NTP_CHAT_MISTRAL_V3_TEKKEN ? "" : " ";
    bool trim_reply = style == NTP_CHAT_MISTRAL_V3;
    bool inside_turn = false;
    for (size_t i = 0; i < n; i++) {
        if (!inside_turn) {
            put(o, lead);
            put(o, "[INST]");
            put(o, trail);
            inside_turn = true;
        }
        if (is_role(&m[i], "system")) {
            put(o, m[i].content);
            put(o, "\n\n");
        } else if (is_role(&m[i], "user")) {
            put(o, m[i].content);
            put(o, lead);
            put(o, "[/INST]");
        } else {
            put(o, trail);
            if (trim_reply)
                put_trim(o, m[i].content);
            else
                put(o, m[i].content);
            put(o, "</s>");
            inside_turn = false;
        }
    }
}

static void fmt_mistral_v7(struct out *o, enum ntp_chat_style style, const struct ntp_chat_msg *m,
                           size_t n, bool add_ass)
{
    (void)add_ass;
    const char *sp = style == NTP_CHAT_MISTRAL_V7 ? " " : "";
    for (size_t i = 0; i < n; i++) {
        if (is_role(&m[i], "system")) {
            put(o, "[SYSTEM_PROMPT]");
            put(o, sp);
            put(o, m[i].content);
            put(o, "[/SYSTEM_PROMPT]");
        } else if (is_role(&m[i], "user")) {
            put(o, "[INST]");
            put(o, sp);
            put(o, m[i].content);
            put(o, "[/INST]");
        } else {
            put(o, sp);
            put(o, m[i].content);
            put(o, "</s>");
        }
    }
}

/*
 * Gemma has no system role: system texts (trimmed, concatenated) wait for the
 * next user turn and open it, followed by a blank line.
 */
static void fmt_gemma(struct out *o, enum ntp_chat_style style, const struct ntp_chat_msg *m,
                      size_t n, bool add_ass)
{
    (void)style;
    size_t pending_from = n, pending_len = 0; /* first waiting system message; its text length */
    for (size_t i = 0; i < n; i++) {
        if (is_role(&m[i], "system")) {
            size_t len;
            trimmed(m[i].content, &len);
            pending_from = pending_from < i ? pending_from : i;
            pending_len += len;
            continue;
        }
        bool model = is_role(&m[i], "assistant");
        put(o, "<start_of_turn>");
        put(o, model ? "model" : m[i].role);
        put(o, "\n");
        if (!model && pending_len > 0) {
            for (size_t j = pending_from; j < i; j++)
                if (is_role(&m[j], "system"))
                    put_trim(o, m[j].content);
            put(o, "\n\n");
        }
        if (!model) {
            pending_from = n;
            pending_len = 0;
        }
        put_trim(o, m[i].content);
        put(o, "<end_of_turn>\n");
    }
    if (add_ass)
        put(o, "<start_of_turn>model\n");
}

/*
 * DeepSeek-V2 and V3/R1 (llama.cpp's llm_chat_apply_template): a system
 * text and a blank line, then the turns, each reply closed by the
 * end-of-sentence token.
 */
#define DS_EOS       "<｜end▁of▁sentence｜>"
#define DS_USER      "<｜User｜>"
#define DS_ASSISTANT "<｜Assistant｜>"

static void fmt_deepseek(struct out *o, enum ntp_chat_style style, const struct ntp_chat_msg *m,
                         size_t n, bool add_ass)
{
    const bool v2 = style == NTP_CHAT_DEEPSEEK2;
    for (size_t i = 0; i < n; i++) {
        if (is_role(&m[i], "system")) {
            put(o, m[i].content);
            put(o, "\n\n");
        } else if (is_role(&m[i], "user")) {
            put(o, v2 ? "User: " : DS_USER);
            put(o, m[i].content);
            put(o, v2 ? "\n\n" : "");
        } else if (is_role(&m[i], "assistant")) {
            put(o, v2 ? "Assistant: " : DS_ASSISTANT);
            put(o, m[i].content);
            put(o, DS_EOS);
        }
    }
    if (add_ass)
        put(o, v2 ? "Assistant:" : DS_ASSISTANT);
}

/* ----------------------------------------------------------------- table */

struct style_info {
    const char *name; /* for --chat-template and messages */
    enum ntp_chat_style style;
    format_fn fn;
    const char *turn_end; /* text that ends a reply, or NULL */
};

static const struct style_info styles[] = {
    {"chatml", NTP_CHAT_CHATML, fmt_simple, "<|im_end|>"},
    {"llama2", NTP_CHAT_LLAMA2, fmt_llama2, NULL},
    {"llama2-sys", NTP_CHAT_LLAMA2_SYS, fmt_llama2, NULL},
    {"llama2-sys-bos", NTP_CHAT_LLAMA2_SYS_BOS, fmt_llama2, NULL},
    {"llama2-sys-strip", NTP_CHAT_LLAMA2_SYS_STRIP, fmt_llama2, NULL},
    {"mistral-v1", NTP_CHAT_MISTRAL_V1, fmt_mistral, NULL},
    {"mistral-v3", NTP_CHAT_MISTRAL_V3, fmt_mistral, NULL},
    {"mistral-v3-tekken", NTP_CHAT_MISTRAL_V3_TEKKEN, fmt_mistral, NULL},
    {"mistral-v7", NTP_CHAT_MISTRAL_V7, fmt_mistral_v7, NULL},
    {"mistral-v7-tekken", NTP_CHAT_MISTRAL_V7_TEKKEN, fmt_mistral_v7, NULL},
    {"llama3", NTP_CHAT_LLAMA3, fmt_simple, "<|eot_id|>"},
    {"gemma", NTP_CHAT_GEMMA, fmt_gemma, "<end_of_turn>"},
    {"zephyr", NTP_CHAT_ZEPHYR, fmt_simple, "<|endoftext|>"},
    {"phi3", NTP_CHAT_PHI3, fmt_simple, "<|end|>"},
    {"phi4", NTP_CHAT_PHI4, fmt_simple, "<|im_end|>"},
    {"falcon3", NTP_CHAT_FALCON3, fmt_simple, NULL},
    {"glmedge", NTP_CHAT_GLMEDGE, fmt_simple, "<|user|>"},
    {"deepseek2", NTP_CHAT_DEEPSEEK2, fmt_deepseek, DS_EOS},
    {"deepseek3", NTP_CHAT_DEEPSEEK3, fmt_deepseek, DS_EOS},
};

#define N_STYLES (sizeof styles / sizeof styles[0])

static const struct style_info *find_style(enum ntp_chat_style style)
{
    for (size_t i = 0; i < N_STYLES; i++)
        if (styles[i].style == style)
            return &styles[i];
    return NULL;
}

const char *ntp__chat_style_name(enum ntp_chat_style style)
{
    const struct style_info *si = find_style(style);
    return si ? si->name : "unknown";
}

const char *ntp__chat_turn_end(enum ntp_chat_style style)
{
    const struct style_info *si = find_style(style);
    return si ? si->turn_end : NULL;
}

/* "chatml, llama2, ..." into buf, for messages. */
static const char *style_list(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_STYLES && len + 1 < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", styles[i].name);
        len += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

ntp_status ntp__chat_style_from_name(const char *name, enum ntp_chat_style *out)
{
    if (!name || !out)
        return ntp__error(NTP_E_INVALID_ARG, "chat template: NULL argument");
    /* llama.cpp has no plain "mistral": it recognizes Mistral 7B Instruct's template as llama2. */
    if (strcmp(name, "mistral") == 0) {
        *out = NTP_CHAT_LLAMA2;
        return NTP_OK;
    }
    const struct style_info *si = NULL;
    for (size_t i = 0; i < N_STYLES; i++)
        if (strcmp(styles[i].name, name) == 0)
            si = &styles[i];
    if (si) {
        *out = si->style;
        return NTP_OK;
    }
    char names[512];
    return ntp__error(NTP_E_NOT_FOUND, "chat template '%s' unknown; known: mistral, %s", name,
                      style_list(names, sizeof names));
}

/* --------------------------------------------------------------- detect */

/*
 * Marker rules after the chatml and [INST] families, in llama.cpp's order: a
 * template matches the first rule whose needles it all contains. Families
 * numatp does not format are listed too, so they are not mistaken for a later
 * rule's family (e.g. a Vicuna template for llama3).
 */
struct detect_rule {
    const char *needle[3]; /* all must occur; unused ones NULL */
    enum ntp_chat_style style;
    const char *family; /* for the message when style is NTP_CHAT_UNKNOWN */
};

static const struct detect_rule detect_rules[] = {
    {{"<|assistant|>", "<|end|>", NULL}, NTP_CHAT_PHI3, NULL},
    {{"[gMASK]<sop>", NULL, NULL}, NTP_CHAT_UNKNOWN, "chatglm4"},
    {{"<|assistant|>", "<|user|>", "</s>"}, NTP_CHAT_FALCON3, NULL},
    {{"<|assistant|>", "<|user|>", NULL}, NTP_CHAT_GLMEDGE, NULL},
    {{"<|{{ item['role'] }}|>", "<|begin_of_image|>", NULL}, NTP_CHAT_GLMEDGE, NULL},
    {{"<|user|>", "<|endoftext|>", NULL}, NTP_CHAT_ZEPHYR, NULL},
    {{"bos_token + message['role']", NULL, NULL}, NTP_CHAT_UNKNOWN, "monarch"},
    {{"<start_of_turn>", NULL, NULL}, NTP_CHAT_GEMMA, NULL},
    {{"'\\n\\nAssistant: ' + eos_token", NULL, NULL}, NTP_CHAT_UNKNOWN, "orion"},
    {{"GPT4 Correct ", NULL, NULL}, NTP_CHAT_UNKNOWN, "openchat"},
    {{"USER: ", "ASSISTANT: ", NULL}, NTP_CHAT_UNKNOWN, "vicuna"},
    {{"### Instruction:", "<|EOT|>", NULL}, NTP_CHAT_UNKNOWN, "deepseek"},
    {{"<|START_OF_TURN_TOKEN|>", "<|USER_TOKEN|>", NULL}, NTP_CHAT_UNKNOWN, "command-r"},
    {{"<|start_header_id|>", "<|end_header_id|>", NULL}, NTP_CHAT_LLAMA3, NULL},
    {{"[gMASK]sop", NULL, NULL}, NTP_CHAT_UNKNOWN, "chatglm3"},
    {{"<用户>", NULL, NULL}, NTP_CHAT_UNKNOWN, "minicpm"},
    {{"'Assistant: ' + message['content'] + eos_token", NULL, NULL}, NTP_CHAT_DEEPSEEK2, NULL},
    {{DS_ASSISTANT, DS_USER, DS_EOS}, NTP_CHAT_DEEPSEEK3, NULL},
};

static bool has(const char *tmpl, const char *needle)
{
    return strstr(tmpl, needle) != NULL;
}

/* The [INST] family: Mistral's official templates, else llama2 and its variants. */
static enum ntp_chat_style detect_inst(const char *t)
{
    if (has(t, "[SYSTEM_PROMPT]"))
        return NTP_CHAT_MISTRAL_V7;
    if (has(t, "' [INST] ' + system_message") || has(t, "[AVAILABLE_TOOLS]")) {
        if (has(t, " [INST]"))
            return NTP_CHAT_MISTRAL_V1;
        if (has(t, "\"[INST]\""))
            return NTP_CHAT_MISTRAL_V3_TEKKEN;
        return NTP_CHAT_MISTRAL_V3;
    }
    if (has(t, "content.strip()"))
        return NTP_CHAT_LLAMA2_SYS_STRIP;
    if (has(t, "bos_token + '[INST]"))
        return NTP_CHAT_LLAMA2_SYS_BOS;
    if (has(t, "<<SYS>>"))
        return NTP_CHAT_LLAMA2_SYS;
    return NTP_CHAT_LLAMA2;
}

ntp_status ntp__chat_detect(const char *tmpl, enum ntp_chat_style *out)
{
    if (!tmpl || !out)
        return ntp__error(NTP_E_INVALID_ARG, "chat template: NULL argument");
    *out = NTP_CHAT_UNKNOWN;
    if (ntp__chat_style_from_name(tmpl, out) == NTP_OK)
        return NTP_OK;
    ntp__error_clear();
    const char *family = NULL;
    if (has(tmpl, "<|im_start|>")) {
        if (has(tmpl, "<|im_sep|>"))
            *out = NTP_CHAT_PHI4;
        else if (has(tmpl, "<end_of_utterance>"))
            family = "smolvlm"; /* <|im_start|> is its BOS, the turns are not chatml */
        else
            *out = NTP_CHAT_CHATML;
    } else if (strncmp(tmpl, "mistral", 7) == 0 || has(tmpl, "[INST]")) {
        *out = detect_inst(tmpl);
    } else {
        for (size_t i = 0; i < sizeof detect_rules / sizeof detect_rules[0]; i++) {
            const struct detect_rule *r = &detect_rules[i];
            bool all = true;
            for (int k = 0; k < 3 && r->needle[k]; k++)
                all = all && has(tmpl, r->needle[k]);
            if (all) {
                *out = r->style;
                family = r->family;
                break;
            }
        }
    }
    if (*out != NTP_CHAT_UNKNOWN)
        return NTP_OK;
    char names[512];
    style_list(names, sizeof names);
    if (family)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "tokenizer.chat_template: looks like the %s template, which numatp does "
                          "not format; pick the closest with --chat-template NAME (%s)",
                          family, names);
    return ntp__error(NTP_E_UNSUPPORTED,
                      "tokenizer.chat_template: not a template family numatp knows (\"%.40s%s\"); "
                      "pick one with --chat-template NAME (%s)",
                      tmpl, strlen(tmpl) > 40 ? "..." : "", names);
}

ntp_status ntp__chat_choose(const char *path, const char *name, enum ntp_chat_style fallback,
                            enum ntp_chat_style *out, bool *fell_back)
{
    if (fell_back)
        *fell_back = false;
    if (name)
        return ntp__chat_style_from_name(name, out);
    ntp_gguf *g = NULL;
    ntp_status s = ntp_gguf_open(path, &g);
    if (s != NTP_OK)
        return s;
    const char *tmpl = NULL;
    s = ntp_gguf_get_str(g, "tokenizer.chat_template", &tmpl);
    if (s == NTP_OK)
        s = ntp__chat_detect(tmpl, out);
    else if (s == NTP_E_NOT_FOUND && fallback != NTP_CHAT_UNKNOWN) {
        ntp__error_clear();
        *out = fallback;
        if (fell_back)
            *fell_back = true;
        s = NTP_OK;
    } else if (s == NTP_E_NOT_FOUND)
        s = ntp__error(NTP_E_NOT_FOUND,
                       "%s: no tokenizer.chat_template; pick one with --chat-template NAME", path);
    ntp_gguf_free(g);
    return s;
}

/* --------------------------------------------------------------- format */

ntp_status ntp__chat_format(enum ntp_chat_style style, const struct ntp_chat_msg *msgs, size_t n,
                            bool add_assistant_prompt, char *out, size_t cap, size_t *len)
{
    const struct style_info *si = find_style(style);
    if (!si)
        return ntp__error(NTP_E_INVALID_ARG, "chat template: style %d is not a known style",
                          (int)style);
    if (!len || (n > 0 && !msgs) || (!out && cap > 0))
        return ntp__error(NTP_E_INVALID_ARG, "chat template: NULL argument");
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return ntp__error(NTP_E_INVALID_ARG, "chat template: message %zu has a NULL %s", i,
                              msgs[i].role ? "content" : "role");
    struct out o = {out, cap, 0};
    si->fn(&o, style, msgs, n, add_assistant_prompt);
    *len = o.len;
    if (o.len < cap) {
        out[o.len] = '\0';
        return NTP_OK;
    }
    if (cap > 0)
        out[0] = '\0';
    if (!out)
        return NTP_OK;
    return ntp__error(NTP_E_OVERFLOW, "chat template: the %s text needs %zu bytes, buffer has %zu",
                      si->name, o.len + 1, cap);
}
