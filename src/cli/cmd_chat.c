/*
 * cmd_chat.c - `numatp chat`: talk with a model through its chat template.
 *
 * Each line of stdin is one user turn. The whole conversation is formatted
 * with the template every turn, but only the text past what the KV cache
 * already holds is tokenized and decoded: templates only append, so the
 * cache stays valid. When a template rewrites earlier text (e.g. llama3 trims
 * a reply that ended in white space), the context is reset and the
 * conversation decoded again from the start.
 *
 * A line that is not valid UTF-8 is reported and skipped; the session goes
 * on, and ends with status 1 so that a script learns a turn was dropped. Ctrl-C ends the reply
 * being written (or the wait for a line), prints what was generated and exits with status 130.
 */
#include "cli/cli.h"
#include "cli/infer.h"
#include "cli/io.h"
#include "core/core.h"
#include "model/chat_template.h"
#include "tokenizer/unicode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct chat_opts {
    const char *system;          /* --system: system prompt, or NULL */
    const char *tmpl_name;       /* --chat-template: style name overriding detection, or NULL */
    int64_t n_predict;           /* -n: most tokens per reply; -1: until end of generation */
    bool help;                   /* -h */
    struct ntp_cli_sampling smp; /* sampling options */
    struct ntp_cli_infer inf;    /* model, context, threads, devices */
};

struct chat {
    ntp_model *m;              /* owned */
    ntp_context *c;            /* owned */
    struct ntp_sampler *smp;   /* owned */
    enum ntp_chat_style style; /* template in use */
    struct ntp_chat_msg *msgs; /* [n_msgs] conversation; role static, content malloc'd */
    size_t n_msgs, cap_msgs;   /* used and allocated entries of msgs */
    char *done;                /* malloc'd: the conversation text the KV cache holds */
    size_t done_len;           /* bytes of done */
    size_t done_cap;           /* bytes allocated for done */
    int32_t *toks;             /* [tok_cap] tokenization scratch, malloc'd */
    int32_t tok_cap;           /* entries of toks */
    int32_t stop_tok;          /* the template's turn-end marker as one token, or -1 */
    bool out_failed;           /* a write to stdout failed (main reports it) */
    bool skipped;              /* a line of stdin was not UTF-8 */
    int64_t n_gen;             /* reply tokens generated, for the closing line */
    double t_gen;              /* seconds spent generating them */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: numatp chat -m FILE [options]\n\n"
               "Reads user turns from stdin, one per line, and streams the replies to "
               "stdout.\n"
               "A line that is not valid UTF-8 is reported and skipped (the exit status is then\n"
               "1). Ctrl-C stops, prints the tokens generated and their speed, and exits with\n"
               "status 130.\n\n"
               "options:\n"
               "  --system TEXT           system prompt\n"
               "  --chat-template NAME    template instead of the model's "
               "tokenizer.chat_template:\n"
               "                          chatml, llama2, llama2-sys, llama2-sys-bos, "
               "llama2-sys-strip,\n"
               "                          mistral, mistral-v1, mistral-v3, "
               "mistral-v3-tekken, mistral-v7,\n"
               "                          mistral-v7-tekken, llama3, gemma, zephyr, "
               "phi3, phi4, falcon3,\n"
               "                          glmedge, deepseek2, deepseek3\n"
               "  -n, --n-predict N       most tokens per reply, -1 .. 2147483647; -1: until the "
               "end of the\n"
               "                          turn (default -1)\n");
    ntp_cli_infer_help(f, "0");
    ntp_cli_sampling_help(f);
    fprintf(f, "  -h, --help              this help\n");
}

/* ------------------------------------------------------------- options */

/* 0: run; -1: --help was printed; 2: bad usage (message printed). */
static int parse_args(int argc, char **argv, struct chat_opts *o)
{
    *o = (struct chat_opts){.n_predict = -1, .smp = ntp_cli_sampling_default()};
    const struct ntp_cli_opt own[] = {
        {"--system", NULL, NTP_CLI_STR, .dst = &o->system},
        {"--chat-template", NULL, NTP_CLI_STR, .dst = &o->tmpl_name},
        {"--n-predict", "-n", NTP_CLI_INT, .dst = &o->n_predict, .lo = -1, .hi = INT32_MAX},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &o->help},
        {NULL},
    };
    struct ntp_cli_opt smp[NTP_CLI_SAMPLING_N_OPTS + 1], inf[NTP_CLI_INFER_N_OPTS + 1];
    ntp_cli_sampling_opts(&o->smp, smp);
    ntp_cli_infer_opts(&o->inf, false, inf);
    int rc =
        ntp_cli_parse("chat", argc, argv, (const struct ntp_cli_opt *const[]){own, smp, inf, NULL});
    if (rc != 0 || o->help)
        return rc != 0 ? rc : (usage(stdout), -1);
    enum ntp_chat_style style;
    if (o->tmpl_name && ntp__chat_style_from_name(o->tmpl_name, &style) != NTP_OK) {
        fprintf(stderr, "numatp chat: --chat-template: %s\n", ntp_last_error());
        return 2;
    }
    size_t bad = 0;
    if (o->system && !ntp__utf8_valid(o->system, strlen(o->system), &bad)) {
        fprintf(stderr, "numatp chat: --system is not valid UTF-8 at byte %zu (0x%02X)\n", bad,
                (unsigned)(unsigned char)o->system[bad]);
        return 2;
    }
    ntp_model_params mp;
    ntp_context_params cp;
    return ntp_cli_infer_apply("chat", &o->inf, &mp, &cp);
}

static int fail(ntp_status s)
{
    fprintf(stderr, "numatp chat: %s (%s)\n", ntp_last_error(), ntp_status_str(s));
    return 1;
}

/* ------------------------------------------------------------- set-up */

/* Tokenize text[0, len) into c->toks (grown as needed); *n gets the count. */
static ntp_status tokenize(struct chat *c, const char *text, size_t len, bool add_special,
                           int32_t *n)
{
    for (;;) {
        ntp_status s = ntp_tokenize(c->m, text, len, add_special, true, c->toks, c->tok_cap, n);
        if (s != NTP_E_OVERFLOW)
            return s;
        int32_t *t = realloc(c->toks, (size_t)*n * sizeof *t);
        if (!t)
            return ntp__error(NTP_E_NOMEM, "chat: %d tokens", (int)*n);
        c->toks = t;
        c->tok_cap = *n;
    }
}

/* The template's turn-end marker ("<|im_end|>"), when it is one token, also stops a reply. */
static void find_stop_token(struct chat *c)
{
    const char *end = ntp__chat_turn_end(c->style);
    int32_t n = 0;
    c->stop_tok = -1;
    if (end && tokenize(c, end, strlen(end), false, &n) == NTP_OK && n == 1)
        c->stop_tok = c->toks[0];
}

/* Template, model, context and sampler. 0, or 1 after printing the error. */
static int chat_open(struct chat *c, const struct chat_opts *o)
{
    ntp_status s = ntp__chat_choose(o->inf.model, o->tmpl_name, NTP_CHAT_UNKNOWN, &c->style, NULL);
    if (s != NTP_OK)
        return fail(s);
    ntp_context_params cp;
    int rc = ntp_cli_infer_load("chat", &o->inf, &c->m, &cp);
    if (rc == 0)
        rc = ntp_cli_infer_context("chat", &o->inf, c->m, cp, &c->c);
    if (rc != 0)
        return rc;
    const struct ntp_sampler_params sp = ntp_cli_sampling_params(&o->smp);
    s = ntp__sampler_new(&sp, ntp_model_n_vocab(c->m), &c->smp);
    if (s != NTP_OK)
        return fail(s);
    find_stop_token(c);
    fprintf(stderr, "numatp chat: template %s, context %d, seed %u\n",
            ntp__chat_style_name(c->style), (int)ntp_context_n_ctx(c->c),
            (unsigned)ntp__sampler_seed(c->smp));
    return 0;
}

static void chat_close(struct chat *c)
{
    for (size_t i = 0; i < c->n_msgs; i++)
        free((char *)c->msgs[i].content);
    free(c->msgs);
    free(c->done);
    free(c->toks);
    ntp__sampler_free(c->smp);
    ntp_context_free(c->c);
    ntp_model_free(c->m);
}

/* ------------------------------------------------------- conversation */

/* Append a message; content[0, len) is copied. */
static ntp_status push_msg(struct chat *c, const char *role, const char *content, size_t len)
{
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? 2 * c->cap_msgs : 16;
        struct ntp_chat_msg *m = realloc(c->msgs, cap * sizeof *m);
        if (!m)
            return ntp__error(NTP_E_NOMEM, "chat: %zu messages", cap);
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return ntp__error(NTP_E_NOMEM, "chat: message of %zu bytes", len);
    memcpy(copy, content, len);
    copy[len] = '\0';
    c->msgs[c->n_msgs++] = (struct ntp_chat_msg){role, copy};
    return NTP_OK;
}

/* ntp_decode, with a message that says what to do when the context is full. */
static ntp_status decode(struct chat *c, const int32_t *toks, int32_t n)
{
    ntp_status s = ntp_decode(c->c, toks, n, false);
    if (s == NTP_E_OVERFLOW)
        return ntp__error(s,
                          "the conversation fills the context (%d of %d positions); "
                          "restart with a larger -c",
                          (int)(ntp_context_pos(c->c) + n), (int)ntp_context_n_ctx(c->c));
    return s;
}

/* Tokenize and decode text[0, len); its tokens join the sampler's history. */
static ntp_status eval_text(struct chat *c, const char *text, size_t len, bool add_special)
{
    int32_t n = 0;
    ntp_status s = tokenize(c, text, len, add_special, &n);
    if (s != NTP_OK || n == 0)
        return s;
    s = decode(c, c->toks, n);
    for (int32_t i = 0; s == NTP_OK && i < n; i++)
        s = ntp__sampler_accept(c->smp, c->toks[i]);
    return s;
}

/*
 * Format the conversation with the assistant prompt and decode what the KV
 * cache lacks; afterwards c->done is the whole formatted text.
 */
static ntp_status feed_conversation(struct chat *c)
{
    size_t len = 0;
    ntp_status s = ntp__chat_format(c->style, c->msgs, c->n_msgs, true, NULL, 0, &len);
    if (s != NTP_OK)
        return s;
    char *text = malloc(len + 1);
    if (!text)
        return ntp__error(NTP_E_NOMEM, "chat: prompt of %zu bytes", len);
    s = ntp__chat_format(c->style, c->msgs, c->n_msgs, true, text, len + 1, &len);
    bool extends =
        c->done_len == 0 || (c->done_len <= len && memcmp(text, c->done, c->done_len) == 0);
    if (s == NTP_OK && !extends) {
        ntp_context_reset(c->c);
        c->done_len = 0;
    }
    if (s == NTP_OK)
        s = eval_text(c, text + c->done_len, len - c->done_len, c->done_len == 0);
    if (s != NTP_OK) {
        free(text);
        return s;
    }
    free(c->done);
    c->done = text;
    c->done_len = len;
    c->done_cap = len + 1;
    return NTP_OK;
}

/* Append bytes to a growing malloc'd buffer. */
static bool append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *b = realloc(*buf, nc);
        if (!b)
            return false;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return true;
}

/* Print a token's bytes and add them to the reply. */
static ntp_status emit(struct chat *c, int32_t tok, char **reply, size_t *len, size_t *cap)
{
    char piece[256];
    size_t n = 0;
    ntp_status s = ntp_token_to_piece(c->m, tok, piece, sizeof piece, &n);
    if (s != NTP_OK)
        return s;
    fwrite(piece, 1, n, stdout);
    if (!ntp_cli_flush()) {
        c->out_failed = true;
        return NTP_E_IO;
    }
    if (!append(reply, len, cap, piece, n))
        return ntp__error(NTP_E_NOMEM, "chat: reply of %zu bytes", *len + n);
    return NTP_OK;
}

/*
 * Sample, print and decode tokens until an end-of-generation token (which is
 * not decoded: the template writes the turn's end itself) or n_predict.
 * *reply gets the reply's text (malloc'd).
 */
static ntp_status generate(struct chat *c, int32_t n_predict, char **reply, size_t *len)
{
    size_t cap = 0;
    *reply = NULL;
    *len = 0;
    if (!append(reply, len, &cap, "", 0))
        return ntp__error(NTP_E_NOMEM, "chat: reply");
    for (int32_t i = 0; n_predict < 0 || i < n_predict; i++) {
        const float *logits = ntp_get_logits(c->c, -1);
        int32_t tok = -1;
        bool stop = false;
        if (!logits)
            return ntp__error(NTP_E_INTERNAL, "chat: no logits after decoding");
        ntp_status s = ntp_cli_sample(c->smp, logits, &tok, &stop);
        if (s != NTP_OK)
            return s;
        if (stop || ntp_token_is_eog(c->m, tok) || tok == c->stop_tok)
            break;
        s = emit(c, tok, reply, len, &cap);
        c->n_gen++;
        if (s == NTP_OK)
            s = decode(c, &tok, 1);
        if (s != NTP_OK)
            return s;
    }
    return NTP_OK;
}

/* One user turn: format, decode, reply. The reply joins the conversation and c->done. */
static ntp_status turn(struct chat *c, const struct chat_opts *o, const char *line, size_t n)
{
    ntp_status s = push_msg(c, "user", line, n);
    if (s == NTP_OK)
        s = feed_conversation(c);
    char *reply = NULL;
    size_t len = 0;
    const double t0 = ntp_cli_now();
    if (s == NTP_OK)
        s = generate(c, (int32_t)o->n_predict, &reply, &len);
    c->t_gen += ntp_cli_now() - t0;
    fputc('\n', stdout);
    if (!ntp_cli_flush() && !c->out_failed) {
        c->out_failed = true;
        s = s == NTP_OK ? NTP_E_IO : s;
    }
    if (s == NTP_OK)
        s = push_msg(c, "assistant", reply, len);
    /* What the cache now holds: the prompt plus the reply's tokens. */
    if (s == NTP_OK && !append(&c->done, &c->done_len, &c->done_cap, reply, len))
        s = ntp__error(NTP_E_NOMEM, "chat: conversation text");
    free(reply);
    return s;
}

/* Whether line number no of stdin can be a turn; a line that is not UTF-8 is reported. */
static bool line_ok(struct chat *c, const char *line, size_t n, int64_t no)
{
    size_t bad = 0;
    if (ntp__utf8_valid(line, n, &bad))
        return true;
    fprintf(stderr,
            "numatp chat: line %lld is not valid UTF-8 at byte %zu of the line (0x%02X); "
            "skipped\n",
            (long long)no, bad, (unsigned)(unsigned char)line[bad]);
    c->skipped = true;
    return false;
}

/* Read turns from stdin until its end, an error or Ctrl-C. */
static ntp_status converse(struct chat *c, const struct chat_opts *o)
{
    const bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t line_cap = 0;
    ntp_status s = NTP_OK;
    for (int64_t no = 1; s == NTP_OK && !ntp_cli_interrupted(); no++) {
        if (tty)
            fputs("> ", stderr);
        ssize_t n = ntp_cli_read_line(&line, &line_cap);
        if (n < 0)
            break;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n > 0 && line_ok(c, line, (size_t)n, no))
            s = turn(c, o, line, (size_t)n);
    }
    free(line);
    return s;
}

int ntp_cli_chat(int argc, char **argv)
{
    struct chat_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    struct chat c = {0};
    rc = chat_open(&c, &o);
    ntp_status s =
        rc == 0 && o.system ? push_msg(&c, "system", o.system, strlen(o.system)) : NTP_OK;
    if (rc == 0 && s == NTP_OK) {
        ntp_cli_catch_sigint();
        s = converse(&c, &o);
    }
    if (rc == 0 && s != NTP_OK)
        rc = c.out_failed ? 1 : fail(s); /* main reports a write error */
    if (rc == 0 && ntp_cli_interrupted()) {
        fprintf(stderr, "numatp chat: interrupted; %lld tokens generated, %.2f tok/s\n",
                (long long)c.n_gen, c.t_gen > 0 ? (double)c.n_gen / c.t_gen : 0.0);
        rc = NTP_CLI_EXIT_INTERRUPTED;
    }
    if (rc == 0 && c.skipped)
        rc = 1;
    chat_close(&c);
    return rc;
}
