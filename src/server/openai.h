/*
 * openai.h - the OpenAI side of `numatp serve`: reading a completion
 * request's JSON into what the scheduler needs, and writing the response,
 * stream chunk, model list and error bodies in OpenAI's shapes (jansson).
 */
#ifndef NTP_SERVER_OPENAI_H
#define NTP_SERVER_OPENAI_H

#include "model/chat_template.h"
#include "sampler/sampler.h"
#include "sched/sched.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most stop strings one request may give. */
#define NTP_OAI_MAX_STOP 16

/* An error answer: HTTP status and the fields of {"error": {...}}. */
struct ntp_oai_error {
    int status;
    char message[512];
    const char *type;  /* "invalid_request_error", "server_error" */
    const char *param; /* the field at fault, or NULL */
    const char *code;  /* "model_not_found" etc., or NULL */
};

/* What the server tells the parser: its model's name, template and sampling defaults. */
struct ntp_oai_served {
    const char *model_name;
    enum ntp_chat_style style;
    struct ntp_sampler_params defaults;
};

/* A parsed /v1/chat/completions or /v1/completions request. */
struct ntp_oai_request {
    bool chat;
    char *prompt;       /* malloc'd: the prompt text (the chat template applied) */
    int64_t max_tokens; /* 0: not given */
    struct ntp_sampler_params sp;
    float presence_penalty, frequency_penalty;
    const char *stop[NTP_OAI_MAX_STOP]; /* point into root */
    int32_t n_stop;
    bool stream, include_usage;
    bool logprobs;        /* chat's logprobs: true, or the legacy logprobs: N given */
    int32_t top_logprobs; /* alternatives per token, 0 .. NTP_SCHED_MAX_TOP */
    json_t *root;         /* the parsed body, kept for stop */
};

/*
 * Parse body[0, len). false with *err filled (400 for anything malformed,
 * 404 for another model's name); true with *out to be freed with
 * ntp_oai_request_free.
 */
bool ntp_oai_parse(const char *body, size_t len, bool chat, const struct ntp_oai_served *sv,
                   struct ntp_oai_request *out, struct ntp_oai_error *err);
void ntp_oai_request_free(struct ntp_oai_request *r);

/* Fill *err; message is printf-style. Returns false (for `return ntp_oai_fail(...)`). */
bool ntp_oai_fail(struct ntp_oai_error *err, int status, const char *param, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Identity of one response, the same in every chunk. */
struct ntp_oai_reply {
    bool chat;
    char id[48];
    long long created;
    const char *model;
};

/*
 * Where the legacy text_offset stands: the characters of the completion so
 * far (each valid UTF-8 character or stray byte is one, as the text is
 * written) and the continuation bytes its last character still expects.
 */
struct ntp_oai_offset {
    size_t chars;
    int pending;
};

/*
 * Some generated tokens' log-probabilities for a body or a stream chunk: the
 * tokens' text comes from m; offset stands before lp[0] and is advanced past
 * the tokens written.
 */
struct ntp_oai_logprobs {
    const ntp_model *m;
    const struct ntp_sched_logprob *lp; /* [n] */
    size_t n;
    struct ntp_oai_offset *offset;
};

/* The malloc'd compact JSON of each body ("" on allocation failure is not possible: NULL). */
char *ntp_oai_error_json(const struct ntp_oai_error *err);
char *ntp_oai_models_json(const char *model, long long created);
/*
 * A whole non-streamed answer; finish is "stop" or "length"; lp: the
 * choice's logprobs (NULL: "logprobs": null).
 */
char *ntp_oai_response_json(const struct ntp_oai_reply *r, const char *text, size_t len,
                            const char *finish, int32_t n_prompt, int32_t n_completion,
                            const struct ntp_oai_logprobs *lp);
/*
 * One "data: {...}\n\n" event of a stream: text (role: the chat opening
 * chunk with the assistant's role), finish NULL or the reason; usage_null
 * adds "usage": null as OpenAI does when include_usage is set; lp: the
 * chunk's tokens' logprobs, or NULL.
 */
char *ntp_oai_chunk(const struct ntp_oai_reply *r, bool role, const char *text, size_t len,
                    const char *finish, bool usage_null, const struct ntp_oai_logprobs *lp);
/* The closing usage event of a stream with include_usage (choices empty). */
char *ntp_oai_usage_chunk(const struct ntp_oai_reply *r, int32_t n_prompt, int32_t n_completion);

/*
 * Length of the prefix of s[0, n) that a stream may send now: it ends before
 * the start of a UTF-8 character whose other bytes have not come yet.
 */
size_t ntp_oai_utf8_ready(const char *s, size_t n);

#endif /* NTP_SERVER_OPENAI_H */
