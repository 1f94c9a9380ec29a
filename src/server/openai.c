/*
 * openai.c - OpenAI request fields in, OpenAI response shapes out
 * (openai.h). Every string that goes into JSON passes through utf8_json, so
 * a token that ends mid-character never makes invalid JSON; logprobs carry
 * each token's raw bytes beside its text for that case.
 */
#include "server/openai.h"

#include "tokenizer/unicode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool ntp_oai_fail(struct ntp_oai_error *err, int status, const char *param, const char *code,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->status = status;
    err->type = status >= 500 ? "server_error" : "invalid_request_error";
    err->param = param;
    err->code = code;
    return false;
}

/* ------------------------------------------------------------- reading */

/* The field, or NULL when it is missing or null (OpenAI treats both as "not given"). */
static json_t *field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_null(v) ? NULL : v;
}

/* A number field within [lo, hi] into *out (left alone when not given). */
static bool get_num(json_t *o, const char *key, double lo, double hi, float *out,
                    struct ntp_oai_error *err)
{
    json_t *v = field(o, key);
    if (!v)
        return true;
    if (!json_is_number(v))
        return ntp_oai_fail(err, 400, key, "invalid_type", "'%s' must be a number", key);
    const double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return ntp_oai_fail(err, 400, key, "invalid_value", "'%s' must be in [%g, %g]", key, lo,
                            hi);
    *out = (float)d;
    return true;
}

/* An integer field within [lo, hi] into *out (left alone when not given). */
static bool get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                    struct ntp_oai_error *err)
{
    json_t *v = field(o, key);
    if (!v)
        return true;
    if (!json_is_integer(v))
        return ntp_oai_fail(err, 400, key, "invalid_type", "'%s' must be an integer", key);
    const json_int_t i = json_integer_value(v);
    if (i < lo || i > hi)
        return ntp_oai_fail(err, 400, key, "invalid_value", "'%s' must be in [%lld, %lld]", key,
                            (long long)lo, (long long)hi);
    *out = i;
    return true;
}

static bool get_bool(json_t *o, const char *key, bool *out, struct ntp_oai_error *err)
{
    json_t *v = field(o, key);
    if (!v)
        return true;
    if (!json_is_boolean(v))
        return ntp_oai_fail(err, 400, key, "invalid_type", "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return true;
}

/* stop: a string or an array of strings; empty strings are ignored. */
static bool get_stop(json_t *o, struct ntp_oai_request *r, struct ntp_oai_error *err)
{
    json_t *v = field(o, "stop");
    if (!v)
        return true;
    if (json_is_string(v)) {
        if (json_string_length(v) > 0)
            r->stop[r->n_stop++] = json_string_value(v);
        return true;
    }
    if (!json_is_array(v) || json_array_size(v) > NTP_OAI_MAX_STOP)
        return ntp_oai_fail(err, 400, "stop", "invalid_type",
                            "'stop' must be a string or an array of at most %d strings",
                            NTP_OAI_MAX_STOP);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return ntp_oai_fail(err, 400, "stop", "invalid_type",
                                "'stop' must be a string or an array of strings");
        if (json_string_length(e) > 0)
            r->stop[r->n_stop++] = json_string_value(e);
    }
    return true;
}

/*
 * Chat: "logprobs": true and "top_logprobs": N (which needs logprobs true);
 * the legacy completions: "logprobs": N, the alternatives per token.
 */
static bool get_logprobs(json_t *o, bool chat, struct ntp_oai_request *r, struct ntp_oai_error *err)
{
    int64_t top = 0;
    if (chat) {
        if (!get_bool(o, "logprobs", &r->logprobs, err) ||
            !get_int(o, "top_logprobs", 0, NTP_SCHED_MAX_TOP, &top, err))
            return false;
        if (field(o, "top_logprobs") && !r->logprobs)
            return ntp_oai_fail(err, 400, "top_logprobs", "invalid_value",
                                "'top_logprobs' needs 'logprobs': true");
    } else {
        if (field(o, "top_logprobs"))
            return ntp_oai_fail(err, 400, "top_logprobs", "unsupported_parameter",
                                "'top_logprobs' is a field of /v1/chat/completions; here "
                                "'logprobs' is the number of alternatives (0 .. %d)",
                                NTP_SCHED_MAX_TOP);
        json_t *v = field(o, "logprobs");
        if (json_is_false(v)) /* not OpenAI's type, but what a client means by it is clear */
            v = NULL;
        else if (!get_int(o, "logprobs", 0, NTP_SCHED_MAX_TOP, &top, err))
            return false;
        r->logprobs = v != NULL;
    }
    r->top_logprobs = (int32_t)top;
    return true;
}

/* A message's content: a string, or an array of {"type": "text", "text": ...} parts. */
static char *content_text(json_t *c, struct ntp_oai_error *err)
{
    if (json_is_string(c))
        return strdup(json_string_value(c));
    if (!json_is_array(c)) {
        ntp_oai_fail(err, 400, "messages", "invalid_type",
                     "a message's 'content' must be a string or an array of text parts");
        return NULL;
    }
    size_t len = 0, i;
    json_t *p;
    json_array_foreach(c, i, p)
    {
        json_t *t = json_object_get(p, "text");
        if (!json_is_string(json_object_get(p, "type")) ||
            strcmp(json_string_value(json_object_get(p, "type")), "text") != 0 ||
            !json_is_string(t)) {
            ntp_oai_fail(err, 400, "messages", "invalid_value",
                         "only content parts of type 'text' are supported");
            return NULL;
        }
        len += json_string_length(t);
    }
    char *s = malloc(len + 1);
    if (!s) {
        ntp_oai_fail(err, 500, NULL, NULL, "out of memory");
        return NULL;
    }
    len = 0;
    json_array_foreach(c, i, p)
    {
        json_t *t = json_object_get(p, "text");
        memcpy(s + len, json_string_value(t), json_string_length(t));
        len += json_string_length(t);
    }
    s[len] = '\0';
    return s;
}

/* messages through the chat template into r->prompt. */
static bool chat_prompt(json_t *root, const struct ntp_oai_served *sv, struct ntp_oai_request *r,
                        struct ntp_oai_error *err)
{
    json_t *msgs = field(root, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return ntp_oai_fail(err, 400, "messages",
                            msgs ? "invalid_type" : "missing_required_parameter",
                            "'messages' must be a non-empty array");
    const size_t n = json_array_size(msgs);
    struct ntp_chat_msg *m = calloc(n, sizeof *m);
    bool ok = m != NULL || ntp_oai_fail(err, 500, NULL, NULL, "out of memory");
    for (size_t i = 0; ok && i < n; i++) {
        json_t *e = json_array_get(msgs, i), *role = json_object_get(e, "role");
        const char *rs = json_is_string(role) ? json_string_value(role) : "";
        if (strcmp(rs, "developer") == 0)
            rs = "system";
        if (strcmp(rs, "system") != 0 && strcmp(rs, "user") != 0 && strcmp(rs, "assistant") != 0)
            ok = ntp_oai_fail(err, 400, "messages", "invalid_value",
                              "messages[%zu]: 'role' must be system, developer, user or assistant",
                              i);
        json_t *c = json_object_get(e, "content");
        if (ok && !(m[i].content = content_text(c, err)))
            ok = false;
        m[i].role = rs;
    }
    size_t len = 0;
    if (ok && (ntp__chat_format(sv->style, m, n, true, NULL, 0, &len) != NTP_OK ||
               !(r->prompt = malloc(len + 1)) ||
               ntp__chat_format(sv->style, m, n, true, r->prompt, len + 1, &len) != NTP_OK))
        ok = ntp_oai_fail(err, 500, NULL, NULL, "formatting the chat template: %s",
                          ntp_last_error());
    for (size_t i = 0; m && i < n; i++)
        free((char *)m[i].content);
    free(m);
    return ok;
}

bool ntp_oai_parse(const char *body, size_t len, bool chat, const struct ntp_oai_served *sv,
                   struct ntp_oai_request *r, struct ntp_oai_error *err)
{
    *r = (struct ntp_oai_request){.chat = chat, .sp = sv->defaults};
    json_error_t je;
    r->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!r->root)
        return ntp_oai_fail(err, 400, NULL, "invalid_json",
                            "malformed JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    json_t *o = r->root, *model = field(o, "model");
    if (!json_is_object(o))
        return ntp_oai_fail(err, 400, NULL, "invalid_json", "the body must be a JSON object");
    if (model && !json_is_string(model))
        return ntp_oai_fail(err, 400, "model", "invalid_type", "'model' must be a string");
    if (model && strcmp(json_string_value(model), sv->model_name) != 0)
        return ntp_oai_fail(err, 404, "model", "model_not_found",
                            "The model '%s' does not exist; this server serves '%s'",
                            json_string_value(model), sv->model_name);
    int64_t n = 1, seed = -1, top_k = r->sp.top_k;
    if (!get_int(o, "n", 1, INT32_MAX, &n, err))
        return false;
    if (n != 1)
        return ntp_oai_fail(err, 400, "n", "invalid_value", "only n = 1 is supported");
    if (!get_logprobs(o, chat, r, err))
        return false;
    json_t *so = field(o, "stream_options");
    if (so && !json_is_object(so))
        return ntp_oai_fail(err, 400, "stream_options", "invalid_type",
                            "'stream_options' must be an object");
    if (!get_int(o, "max_tokens", 1, INT32_MAX, &r->max_tokens, err) ||
        !get_int(o, "max_completion_tokens", 1, INT32_MAX, &r->max_tokens, err) ||
        !get_num(o, "temperature", 0, 2, &r->sp.temperature, err) ||
        !get_num(o, "top_p", 0, 1, &r->sp.top_p, err) ||
        !get_num(o, "min_p", 0, 1, &r->sp.min_p, err) ||
        !get_int(o, "top_k", 0, INT32_MAX, &top_k, err) ||
        !get_int(o, "seed", INT64_MIN, INT64_MAX, &seed, err) ||
        !get_num(o, "presence_penalty", -2, 2, &r->presence_penalty, err) ||
        !get_num(o, "frequency_penalty", -2, 2, &r->frequency_penalty, err) ||
        !get_bool(o, "stream", &r->stream, err) ||
        (so && !get_bool(so, "include_usage", &r->include_usage, err)) || !get_stop(o, r, err))
        return false;
    r->sp.top_k = (int32_t)top_k;
    if (field(o, "seed"))
        r->sp.seed = (uint32_t)seed; /* the low 32 bits, as a 32-bit PRNG seed */
    if (r->sp.temperature == 0)
        r->sp.temperature = -1; /* OpenAI's 0 is greedy; the sampler's greedy is <= 0 */
    if (chat)
        return chat_prompt(o, sv, r, err);
    json_t *p = field(o, "prompt");
    if (!json_is_string(p))
        return ntp_oai_fail(err, 400, "prompt", p ? "invalid_type" : "missing_required_parameter",
                            "'prompt' must be a string");
    if (!(r->prompt = strdup(json_string_value(p))))
        return ntp_oai_fail(err, 500, NULL, NULL, "out of memory");
    return true;
}

void ntp_oai_request_free(struct ntp_oai_request *r)
{
    free(r->prompt);
    json_decref(r->root);
    r->prompt = NULL;
    r->root = NULL;
}

/* ------------------------------------------------------------- writing */

size_t ntp_oai_utf8_ready(const char *s, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        const size_t need = ntp__utf8_seq_len((unsigned char)s[n - back]);
        if (need > 1)
            return need > back ? n - back : n; /* a lead byte whose character is unfinished */
        if (((unsigned char)s[n - back] & 0xC0) != 0x80)
            break; /* an ASCII byte (or a stray one): nothing pending */
    }
    return n;
}

/*
 * s[0, n) made valid UTF-8: each byte that does not start a valid character
 * becomes U+FFFD. malloc'd and NUL-terminated; *len gets its length.
 */
static char *utf8_clean(const char *s, size_t n, size_t *len)
{
    char *buf = malloc(3 * n + 1);
    if (!buf)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const size_t c = ntp__utf8_char(s + i, n - i);
        if (c == 0) {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(buf + o, s + i, c);
            o += c;
            i += c;
        }
    }
    buf[o] = '\0';
    *len = o;
    return buf;
}

/* s[0, n) as a JSON string (utf8_clean). */
static json_t *utf8_json(const char *s, size_t n)
{
    size_t len = 0;
    char *buf = utf8_clean(s, n, &len);
    json_t *j = buf ? json_stringn(buf, len) : NULL;
    free(buf);
    return j;
}

/* ------------------------------------------------------------ logprobs */

/* One token's bytes: s[0, n), in small or, when longer, in big (malloc'd). */
struct piece {
    char small[128];
    char *big;
    const char *s;
    size_t n;
};

/* tok's bytes into *p (none when the tokenizer has none for it); free p->big after. */
static void piece_get(const ntp_model *m, int32_t tok, struct piece *p)
{
    size_t n = 0;
    p->big = NULL;
    p->s = p->small;
    p->n = 0;
    const ntp_status st = ntp_token_to_piece(m, tok, p->small, sizeof p->small, &n);
    if (st == NTP_OK)
        p->n = n;
    else if (st == NTP_E_OVERFLOW && (p->big = malloc(n)) &&
             ntp_token_to_piece(m, tok, p->big, n, &n) == NTP_OK) {
        p->s = p->big;
        p->n = n;
    }
}

/* Move *o past the bytes s[0, n): a new character at each byte that does not continue one. */
static void advance(struct ntp_oai_offset *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char b = (unsigned char)s[i];
        if (o->pending > 0 && (b & 0xC0) == 0x80) {
            o->pending--;
            continue;
        }
        o->chars++;
        o->pending = (int)ntp__utf8_seq_len(b) - 1;
    }
}

/* A log-probability; OpenAI's -9999 stands for one too small to matter (or not finite). */
static json_t *logprob_json(float v)
{
    return json_real(isfinite(v) && v > -9999.0f ? (v < 0 ? (double)v : 0.0) : -9999.0);
}

/* The raw bytes of a token as an array of integers 0 .. 255. */
static json_t *bytes_json(const char *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer((unsigned char)s[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    return a;
}

/* Chat's {"token", "logprob", "bytes"} of one token. */
static json_t *chat_token(const ntp_model *m, int32_t tok, float logprob)
{
    struct piece p;
    piece_get(m, tok, &p);
    json_t *o = json_pack("{s:o,s:o,s:o}", "token", utf8_json(p.s, p.n), "logprob",
                          logprob_json(logprob), "bytes", bytes_json(p.s, p.n));
    free(p.big);
    return o;
}

/* Chat's {"content": [each token with its "top_logprobs"], "refusal": null}. */
static json_t *chat_logprobs(const struct ntp_oai_logprobs *lp)
{
    json_t *content = json_array();
    bool ok = content != NULL;
    for (size_t i = 0; ok && i < lp->n; i++) {
        const struct ntp_sched_logprob *e = &lp->lp[i];
        json_t *top = json_array();
        for (int32_t k = 0; top && k < e->n_top; k++) {
            json_t *alt = chat_token(lp->m, e->top_token[k], e->top_logprob[k]);
            if (json_array_append_new(top, alt) != 0) {
                json_decref(top);
                top = NULL;
            }
        }
        json_t *c = chat_token(lp->m, e->token, e->logprob);
        if (json_object_set_new(c, "top_logprobs", top) != 0) {
            json_decref(c); /* top, when there was one, is released by the call */
            c = NULL;
        }
        ok = json_array_append_new(content, c) == 0;
    }
    if (!ok) {
        json_decref(content);
        return NULL;
    }
    return json_pack("{s:o,s:n}", "content", content, "refusal");
}

/*
 * The legacy {text: logprob} of a token's alternatives and of the token
 * itself when it is not one of them (as OpenAI does); of two tokens with the
 * same text, the more likely one keeps the key.
 */
static json_t *legacy_top(const ntp_model *m, const struct ntp_sched_logprob *e)
{
    json_t *o = json_object();
    for (int32_t k = 0; o && k <= e->n_top; k++) {
        struct piece p;
        piece_get(m, k < e->n_top ? e->top_token[k] : e->token, &p);
        size_t n = 0;
        char *key = utf8_clean(p.s, p.n, &n);
        const float v = k < e->n_top ? e->top_logprob[k] : e->logprob;
        if (!key || (!json_object_getn(o, key, n) &&
                     json_object_setn_new(o, key, n, logprob_json(v)) != 0)) {
            json_decref(o);
            o = NULL;
        }
        free(key);
        free(p.big);
    }
    return o;
}

/* The legacy {"tokens", "token_logprobs", "top_logprobs", "text_offset"} of /v1/completions. */
static json_t *legacy_logprobs(const struct ntp_oai_logprobs *lp)
{
    json_t *tokens = json_array(), *values = json_array(), *tops = json_array(),
           *offsets = json_array();
    bool ok = tokens && values && tops && offsets;
    for (size_t i = 0; ok && i < lp->n; i++) {
        const struct ntp_sched_logprob *e = &lp->lp[i];
        struct piece p;
        piece_get(lp->m, e->token, &p);
        ok = json_array_append_new(tokens, utf8_json(p.s, p.n)) == 0 &&
             json_array_append_new(values, logprob_json(e->logprob)) == 0 &&
             json_array_append_new(tops, legacy_top(lp->m, e)) == 0 &&
             json_array_append_new(offsets, json_integer((json_int_t)lp->offset->chars)) == 0;
        advance(lp->offset, p.s, p.n);
        free(p.big);
    }
    if (!ok) {
        json_decref(tokens);
        json_decref(values);
        json_decref(tops);
        json_decref(offsets);
        return NULL;
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", tokens, "token_logprobs", values,
                     "top_logprobs", tops, "text_offset", offsets);
}

/* A choice's "logprobs": null when not asked for. */
static json_t *logprobs_json(bool chat, const struct ntp_oai_logprobs *lp)
{
    return !lp ? json_null() : chat ? chat_logprobs(lp) : legacy_logprobs(lp);
}

/* ------------------------------------------------------------- bodies */

/* The compact text of o (which is released). */
static char *dump(json_t *o)
{
    /* 9 digits: a float's logprob round-trips, without the noise of a double's 17 */
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(o);
    return s;
}

char *ntp_oai_error_json(const struct ntp_oai_error *err)
{
    return dump(json_pack("{s:{s:o,s:s,s:s?,s:s?}}", "error", "message",
                          utf8_json(err->message, strlen(err->message)), "type", err->type, "param",
                          err->param, "code", err->code));
}

char *ntp_oai_models_json(const char *model, long long created)
{
    return dump(json_pack("{s:s,s:[{s:s,s:s,s:I,s:s}]}", "object", "list", "data", "id", model,
                          "object", "model", "created", (json_int_t)created, "owned_by", "numatp"));
}

static json_t *usage(int32_t n_prompt, int32_t n_completion)
{
    return json_pack("{s:i,s:i,s:i}", "prompt_tokens", (int)n_prompt, "completion_tokens",
                     (int)n_completion, "total_tokens", (int)(n_prompt + n_completion));
}

/* The envelope every body shares: id, object, created, model, choices. */
static json_t *envelope(const struct ntp_oai_reply *r, const char *object, json_t *choices)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:o}", "id", r->id, "object", object, "created",
                     (json_int_t)r->created, "model", r->model, "choices", choices);
}

char *ntp_oai_response_json(const struct ntp_oai_reply *r, const char *text, size_t len,
                            const char *finish, int32_t n_prompt, int32_t n_completion,
                            const struct ntp_oai_logprobs *lp)
{
    json_t *choice = r->chat
                         ? json_pack("{s:i,s:{s:s,s:o},s:o,s:s}", "index", 0, "message", "role",
                                     "assistant", "content", utf8_json(text, len), "logprobs",
                                     logprobs_json(true, lp), "finish_reason", finish)
                         : json_pack("{s:i,s:o,s:o,s:s}", "index", 0, "text", utf8_json(text, len),
                                     "logprobs", logprobs_json(false, lp), "finish_reason", finish);
    json_t *o =
        envelope(r, r->chat ? "chat.completion" : "text_completion", json_pack("[o]", choice));
    if (o)
        json_object_set_new(o, "usage", usage(n_prompt, n_completion));
    return dump(o);
}

/* "data: " + the JSON of o + a blank line. */
static char *event(json_t *o)
{
    char *j = dump(o);
    if (!j)
        return NULL;
    const size_t n = strlen(j) + 9;
    char *e = malloc(n);
    if (e)
        snprintf(e, n, "data: %s\n\n", j);
    free(j);
    return e;
}

char *ntp_oai_chunk(const struct ntp_oai_reply *r, bool role, const char *text, size_t len,
                    const char *finish, bool usage_null, const struct ntp_oai_logprobs *lp)
{
    json_t *choice;
    if (r->chat) {
        json_t *delta = json_object();
        if (role)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (role || len > 0)
            json_object_set_new(delta, "content", utf8_json(text, len));
        choice = json_pack("{s:i,s:o,s:o,s:s?}", "index", 0, "delta", delta, "logprobs",
                           logprobs_json(true, lp), "finish_reason", finish);
    } else
        choice = json_pack("{s:i,s:o,s:o,s:s?}", "index", 0, "text", utf8_json(text, len),
                           "logprobs", logprobs_json(false, lp), "finish_reason", finish);
    json_t *o = envelope(r, r->chat ? "chat.completion.chunk" : "text_completion",
                         json_pack("[o]", choice));
    if (o && usage_null)
        json_object_set_new(o, "usage", json_null());
    return event(o);
}

char *ntp_oai_usage_chunk(const struct ntp_oai_reply *r, int32_t n_prompt, int32_t n_completion)
{
    json_t *o = envelope(r, r->chat ? "chat.completion.chunk" : "text_completion", json_array());
    if (o)
        json_object_set_new(o, "usage", usage(n_prompt, n_completion));
    return event(o);
}
