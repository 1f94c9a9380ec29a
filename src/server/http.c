/*
 * http.c - libmicrohttpd glue of `numatp serve` (http.h).
 *
 * libmicrohttpd runs one thread per connection, so a handler may wait: a
 * non-streamed completion waits for the scheduler's final event, and a
 * stream's reader waits for the next piece of text. A job is what a request
 * and the scheduler share; it has two owners (the HTTP side and the
 * scheduler, which lets go with its final event) and is freed by the last.
 * A client that goes away mid-stream makes libmicrohttpd free the response,
 * which sets the job's cancel flag: the scheduler ends it within a step. A
 * non-streamed request's handler waits for the end itself, so it watches
 * its socket meanwhile: a client that closed it (or reset it) sets the
 * cancel flag too.
 */
#include "server/http.h"

#include "core/core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------- metrics */

enum route { R_CHAT, R_COMPLETIONS, R_MODELS, R_HEALTH, R_METRICS, R_OTHER, R_COUNT };
static const char *const route_path[R_COUNT] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "other"};
static const int statuses[] = {200, 400, 401, 404, 413, 500, 503};
#define N_STATUS (int)(sizeof statuses / sizeof statuses[0])

/* Upper bounds (seconds) of the histograms' buckets. */
static const double ttft_le[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const double tpot_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
#define N_TTFT (int)(sizeof ttft_le / sizeof ttft_le[0])
#define N_TPOT (int)(sizeof tpot_le / sizeof tpot_le[0])

struct histogram {
    int64_t bucket[16]; /* observations at most le[i] (not cumulative here) */
    int64_t count;
    double sum;
};

static void observe(struct histogram *h, const double *le, int n, double v)
{
    int i = 0;
    while (i < n && v > le[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

static void write_histogram(FILE *f, const char *name, const char *help, const struct histogram *h,
                            const double *le, int n)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    int64_t cum = 0;
    for (int i = 0; i < n; i++) {
        cum += h->bucket[i];
        fprintf(f, "%s_bucket{le=\"%g\"} %lld\n", name, le[i], (long long)cum);
    }
    fprintf(f, "%s_bucket{le=\"+Inf\"} %lld\n%s_sum %.6f\n%s_count %lld\n", name,
            (long long)h->count, name, h->sum, name, (long long)h->count);
}

/* ------------------------------------------------------------- server */

struct ntp_http {
    struct MHD_Daemon *d;
    char *bearer;       /* "Bearer KEY", or NULL */
    uint64_t max_body;  /* bytes */
    long long started;  /* wall clock, for "created" */
    pthread_mutex_t mu; /* guards what follows */
    bool ready, stopping;
    struct ntp_http_engine e;
    uint64_t next_id;
    int64_t requests[R_COUNT][N_STATUS];
    struct histogram ttft, tpot;
};

/* A request as the connection keeps it between libmicrohttpd's calls. */
struct conn {
    enum route route;
    char *body;
    size_t len, cap;
    bool too_big;  /* the body passed the limit */
    bool answered; /* a response is queued */
};

/* What a completion and the scheduler share. */
struct job {
    struct ntp_http *h;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int owners;
    atomic_bool cancel;
    char *text;                    /* every byte generated so far */
    size_t n_text, cap_text, sent; /* bytes; sent: bytes a stream has passed on */
    size_t seen;                   /* n_text when the stream last looked */
    bool done, ended;              /* final event came; the stream wrote its end */
    struct ntp_sched_event last;   /* the final event (message copied below) */
    char message[256];
    struct ntp_oai_reply reply;
    bool include_usage;
    bool oom; /* text or logprobs were lost for want of memory: the answer is an error */
    const ntp_model *m;
    bool logprobs;                /* the request asked for them */
    struct ntp_sched_logprob *lp; /* every generated token's, in order */
    size_t n_lp, cap_lp, lp_sent; /* lp_sent: entries a stream has passed on */
    struct ntp_oai_offset lp_at;  /* stream: text_offset of lp[lp_sent] */
    char *wire;                   /* formatted stream bytes not yet handed to libmicrohttpd */
    size_t wire_len, wire_off;
};

static void job_put(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    const int left = --j->owners;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->text);
    free(j->lp);
    free(j->wire);
    free(j);
}

/* The scheduler's callback (engine thread): keep the text, note the end. */
static void job_event(void *user, const struct ntp_sched_event *ev)
{
    struct job *j = user;
    pthread_mutex_lock(&j->mu);
    if (j->n_text + ev->len + 1 > j->cap_text) {
        const size_t cap = 2 * (j->n_text + ev->len + 1);
        char *t = realloc(j->text, cap);
        if (t) {
            j->text = t;
            j->cap_text = cap;
        }
    }
    if (j->n_text + ev->len + 1 <= j->cap_text) {
        memcpy(j->text + j->n_text, ev->text, ev->len);
        j->n_text += ev->len;
    } else
        j->oom = true;
    if (ev->n_lp > 0 && j->n_lp + (size_t)ev->n_lp > j->cap_lp) {
        const size_t cap = 2 * (j->n_lp + (size_t)ev->n_lp);
        struct ntp_sched_logprob *l = realloc(j->lp, cap * sizeof *l);
        if (l) {
            j->lp = l;
            j->cap_lp = cap;
        }
    }
    if (ev->n_lp > 0 && j->n_lp + (size_t)ev->n_lp <= j->cap_lp) {
        memcpy(j->lp + j->n_lp, ev->lp, (size_t)ev->n_lp * sizeof *ev->lp);
        j->n_lp += (size_t)ev->n_lp;
    } else if (ev->n_lp > 0)
        j->oom = true;
    if (ev->finish != NTP_SCHED_NONE) {
        j->done = true;
        j->last = *ev;
        snprintf(j->message, sizeof j->message, "%s", ev->message ? ev->message : "");
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (ev->finish == NTP_SCHED_NONE)
        return;
    struct ntp_http *h = j->h;
    pthread_mutex_lock(&h->mu);
    if (ev->n_completion > 0)
        observe(&h->ttft, ttft_le, N_TTFT, ev->t_first);
    if (ev->n_completion > 1)
        observe(&h->tpot, tpot_le, N_TPOT, ev->t_gen / (ev->n_completion - 1));
    pthread_mutex_unlock(&h->mu);
    job_put(j);
}

static const char *finish_name(enum ntp_sched_finish f)
{
    return f == NTP_SCHED_LENGTH ? "length" : "stop";
}

/* Whether the job ended with an answer to send (else job_error says why not). */
static bool job_ok(const struct job *j)
{
    return !j->oom && (j->last.finish == NTP_SCHED_STOP || j->last.finish == NTP_SCHED_LENGTH);
}

/* The error of a job that ended without an answer (cancelled, or the engine failed). */
static void job_error(const struct job *j, struct ntp_oai_error *err)
{
    if (j->oom)
        ntp_oai_fail(err, 500, NULL, NULL, "out of memory for the reply");
    else if (j->last.finish == NTP_SCHED_CANCELLED)
        ntp_oai_fail(err, 503, NULL, "shutting_down", "the server is shutting down");
    else
        ntp_oai_fail(err, 500, NULL, NULL, "generation failed: %s", j->message);
}

/* ------------------------------------------------------------ replies */

static void count(struct ntp_http *h, enum route r, int status)
{
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < N_STATUS; i++)
        if (statuses[i] == status)
            h->requests[r][i]++;
    pthread_mutex_unlock(&h->mu);
}

/* Queue body (malloc'd; taken) with status; a NULL body is a 500. */
static enum MHD_Result reply(struct ntp_http *h, struct MHD_Connection *mc, enum route r,
                             int status, const char *type, char *body)
{
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":null}}";
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    status = body ? status : 500;
    MHD_add_response_header(resp, "Content-Type", type);
    count(h, r, status);
    const enum MHD_Result res = MHD_queue_response(mc, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return res;
}

static enum MHD_Result reply_json(struct ntp_http *h, struct MHD_Connection *mc, enum route r,
                                  int status, char *body)
{
    return reply(h, mc, r, status, "application/json", body);
}

static enum MHD_Result reply_error(struct ntp_http *h, struct MHD_Connection *mc, enum route r,
                                   const struct ntp_oai_error *err)
{
    return reply_json(h, mc, r, err->status, ntp_oai_error_json(err));
}

/* ---------------------------------------------------------- streaming */

/* Append s (malloc'd, taken) to the job's wire bytes. false when memory runs out. */
static bool wire_add(struct job *j, char *s)
{
    if (!s)
        return false;
    const size_t n = strlen(s);
    char *w = realloc(j->wire, j->wire_len + n);
    if (w) {
        memcpy(w + j->wire_len, s, n);
        j->wire = w;
        j->wire_len += n;
    }
    free(s);
    return w != NULL;
}

/* Wait for new text or the end, and format it as stream events. */
static void stream_next(struct job *j)
{
    pthread_mutex_lock(&j->mu);
    while (!j->done && j->n_text == j->seen)
        pthread_cond_wait(&j->cv, &j->mu);
    j->seen = j->n_text;
    const size_t avail = j->n_text - j->sent;
    const size_t k = j->done ? avail : ntp_oai_utf8_ready(j->text + j->sent, avail);
    /* the tokens since the last chunk go with the next chunk that has text, or the last */
    struct ntp_oai_logprobs lp = {j->m, j->lp ? j->lp + j->lp_sent : NULL, j->n_lp - j->lp_sent,
                                  &j->lp_at};
    bool ok = k == 0 ||
              wire_add(j, ntp_oai_chunk(&j->reply, false, j->text + j->sent, k, NULL,
                                        j->include_usage, j->logprobs && lp.n > 0 ? &lp : NULL));
    j->sent += k;
    if (k > 0) {
        j->lp_sent = j->n_lp;
        lp.n = 0;
    }
    if (j->done) {
        j->ended = true;
        if (job_ok(j)) {
            ok = ok &&
                 wire_add(j, ntp_oai_chunk(&j->reply, false, "", 0, finish_name(j->last.finish),
                                           j->include_usage, j->logprobs && lp.n > 0 ? &lp : NULL));
            if (ok && j->include_usage)
                ok = wire_add(
                    j, ntp_oai_usage_chunk(&j->reply, j->last.n_prompt, j->last.n_completion));
        } else {
            struct ntp_oai_error err;
            job_error(j, &err);
            char *e = ntp_oai_error_json(&err), *ev = e ? malloc(strlen(e) + 9) : NULL;
            if (ev)
                sprintf(ev, "data: %s\n\n", e);
            free(e);
            ok = ok && wire_add(j, ev);
        }
        ok = ok && wire_add(j, strdup("data: [DONE]\n\n"));
    }
    if (!ok)
        j->ended = true; /* out of memory: end the stream where it is */
    pthread_mutex_unlock(&j->mu);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct job *j = cls;
    for (;;) {
        if (j->wire_off < j->wire_len) {
            const size_t n = j->wire_len - j->wire_off < max ? j->wire_len - j->wire_off : max;
            memcpy(buf, j->wire + j->wire_off, n);
            j->wire_off += n;
            return (ssize_t)n;
        }
        j->wire_len = j->wire_off = 0;
        if (j->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        stream_next(j);
    }
}

/* The response is gone: finished, or the client left. */
static void stream_free(void *cls)
{
    struct job *j = cls;
    atomic_store(&j->cancel, true);
    job_put(j);
}

/* --------------------------------------------------------- completions */

/* The prompt's tokens (malloc'd) into *toks; false with *err. */
static bool tokenize(const struct ntp_http_engine *e, const char *text, int32_t **toks, int32_t *n,
                     struct ntp_oai_error *err)
{
    const size_t len = strlen(text);
    ntp_status s = ntp_tokenize(e->m, text, len, true, true, NULL, 0, n);
    if (s != NTP_OK && s != NTP_E_OVERFLOW)
        return ntp_oai_fail(err, 400, NULL, NULL, "tokenizing the prompt: %s", ntp_last_error());
    *toks = malloc(((size_t)*n + 1) * sizeof **toks);
    if (!*toks || ntp_tokenize(e->m, text, len, true, true, *toks, *n, n) != NTP_OK)
        return ntp_oai_fail(err, 500, NULL, NULL, "tokenizing the prompt: %s", ntp_last_error());
    return true;
}

/* Check the sizes against a slot's context and hand the request to the scheduler. */
static bool submit(const struct ntp_http_engine *e, const struct ntp_oai_request *q, struct job *j,
                   struct ntp_oai_error *err)
{
    int32_t *toks = NULL, n = 0;
    const int32_t n_ctx = ntp_sched_n_ctx(e->sched);
    const char *what = q->chat ? "messages" : "prompt";
    bool ok = tokenize(e, q->prompt, &toks, &n, err);
    if (ok && n == 0)
        ok = ntp_oai_fail(err, 400, what, NULL, "the prompt has no tokens");
    else if (ok && n >= n_ctx)
        ok = ntp_oai_fail(err, 400, what, "context_length_exceeded",
                          "the prompt has %d tokens; the context holds %d", (int)n, (int)n_ctx);
    else if (ok && q->max_tokens > n_ctx - n)
        ok = ntp_oai_fail(err, 400, "max_tokens", "context_length_exceeded",
                          "max_tokens %lld with a prompt of %d tokens is more than the context "
                          "of %d",
                          (long long)q->max_tokens, (int)n, (int)n_ctx);
    const struct ntp_sched_request r = {
        .prompt = toks,
        .n_prompt = n,
        .max_tokens = (int32_t)q->max_tokens,
        .sp = q->sp,
        .presence_penalty = q->presence_penalty,
        .frequency_penalty = q->frequency_penalty,
        .stop = q->stop,
        .n_stop = q->n_stop,
        .stop_token = q->chat ? e->turn_end : -1,
        .logprobs = q->logprobs,
        .top_logprobs = q->top_logprobs,
        .cancel = &j->cancel,
        .fn = job_event,
        .user = j,
    };
    ntp_status s = ok ? ntp_sched_submit(e->sched, &r) : NTP_OK;
    if (s == NTP_E_OVERFLOW)
        ok = ntp_oai_fail(err, 503, NULL, "queue_full", "the server is busy: %s", ntp_last_error());
    else if (s == NTP_E_UNSUPPORTED)
        ok = ntp_oai_fail(err, 503, NULL, "shutting_down", "the server is shutting down");
    else if (s != NTP_OK)
        ok = ntp_oai_fail(err, 500, NULL, NULL, "%s", ntp_last_error());
    free(toks);
    return ok;
}

static struct job *job_new(struct ntp_http *h, const struct ntp_oai_request *q)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->h = h;
    j->owners = 2;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    atomic_init(&j->cancel, false);
    j->include_usage = q->include_usage;
    j->logprobs = q->logprobs;
    j->reply.chat = q->chat;
    j->reply.created = (long long)time(NULL);
    pthread_mutex_lock(&h->mu);
    j->reply.model = h->e.served.model_name;
    j->m = h->e.m;
    snprintf(j->reply.id, sizeof j->reply.id, "%s-%llx%06llx", q->chat ? "chatcmpl" : "cmpl",
             h->started, (unsigned long long)h->next_id++);
    pthread_mutex_unlock(&h->mu);
    return j;
}

/* A streamed answer: the response reads events from the job as they come. */
static enum MHD_Result answer_stream(struct ntp_http *h, struct MHD_Connection *mc, enum route r,
                                     struct job *j)
{
    if (j->reply.chat &&
        !wire_add(j, ntp_oai_chunk(&j->reply, true, "", 0, NULL, j->include_usage, NULL)))
        j->ended = true;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, j, stream_free);
    if (!resp) {
        stream_free(j);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    count(h, r, 200);
    const enum MHD_Result res = MHD_queue_response(mc, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return res;
}

/*
 * Whether the client has closed its end of mc's connection (or reset it). A
 * client that only shut down its sending side counts as gone: HTTP clients
 * do not do that while they wait for an answer.
 */
static bool client_gone(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    int n;
    while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
        ;
    return n == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* How often a waiting non-streamed answer looks at its client's socket. */
#define GONE_POLL_NS 20000000L

/*
 * A whole answer once the scheduler's final event came. A client that leaves
 * meanwhile cancels the request (the scheduler frees its slot within a step)
 * and gets no answer.
 */
static enum MHD_Result answer_whole(struct ntp_http *h, struct MHD_Connection *mc, enum route r,
                                    struct job *j)
{
    bool gone = false;
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += GONE_POLL_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        if (!j->done && !gone && client_gone(mc)) {
            gone = true;
            atomic_store(&j->cancel, true);
        }
    }
    pthread_mutex_unlock(&j->mu);
    enum MHD_Result res = MHD_NO; /* a client that left: close the connection */
    struct ntp_oai_logprobs lp = {j->m, j->lp, j->n_lp, &(struct ntp_oai_offset){0, 0}};
    if (!gone && job_ok(j))
        res = reply_json(h, mc, r, 200,
                         ntp_oai_response_json(&j->reply, j->text, j->n_text,
                                               finish_name(j->last.finish), j->last.n_prompt,
                                               j->last.n_completion, j->logprobs ? &lp : NULL));
    else if (!gone) {
        struct ntp_oai_error err;
        job_error(j, &err);
        res = reply_error(h, mc, r, &err);
    }
    job_put(j);
    return res;
}

static enum MHD_Result complete(struct ntp_http *h, struct MHD_Connection *mc, struct conn *c)
{
    struct ntp_oai_error err;
    pthread_mutex_lock(&h->mu);
    const bool ready = h->ready && !h->stopping;
    const struct ntp_http_engine e = h->e;
    const bool stopping = h->stopping;
    pthread_mutex_unlock(&h->mu);
    if (!ready) {
        ntp_oai_fail(&err, 503, NULL, stopping ? "shutting_down" : "loading",
                     stopping ? "the server is shutting down" : "the model is loading");
        return reply_error(h, mc, c->route, &err);
    }
    struct ntp_oai_request q;
    const bool chat = c->route == R_CHAT;
    if (!ntp_oai_parse(c->body ? c->body : "", c->len, chat, &e.served, &q, &err)) {
        ntp_oai_request_free(&q);
        return reply_error(h, mc, c->route, &err);
    }
    struct job *j = job_new(h, &q);
    bool ok = j ? submit(&e, &q, j, &err) : ntp_oai_fail(&err, 500, NULL, NULL, "out of memory");
    const bool stream = q.stream;
    ntp_oai_request_free(&q);
    if (!ok) {
        if (j) { /* the scheduler never took it: both owners let go */
            job_put(j);
            job_put(j);
        }
        return reply_error(h, mc, c->route, &err);
    }
    return stream ? answer_stream(h, mc, c->route, j) : answer_whole(h, mc, c->route, j);
}

/* ------------------------------------------------------------- routes */

static char *metrics_text(struct ntp_http *h)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    pthread_mutex_lock(&h->mu);
    struct ntp_sched_stats st = {0};
    if (h->ready)
        ntp_sched_get_stats(h->e.sched, &st);
    fprintf(f, "# HELP numatp_requests_total HTTP requests by endpoint and status.\n"
               "# TYPE numatp_requests_total counter\n");
    for (int r = 0; r < R_COUNT; r++)
        for (int i = 0; i < N_STATUS; i++)
            if (h->requests[r][i] > 0)
                fprintf(f, "numatp_requests_total{endpoint=\"%s\",status=\"%d\"} %lld\n",
                        route_path[r], statuses[i], (long long)h->requests[r][i]);
    fprintf(f,
            "# HELP numatp_prompt_tokens_total Prompt tokens of finished requests.\n"
            "# TYPE numatp_prompt_tokens_total counter\nnumatp_prompt_tokens_total %lld\n"
            "# HELP numatp_completion_tokens_total Tokens generated for finished requests.\n"
            "# TYPE numatp_completion_tokens_total counter\n"
            "numatp_completion_tokens_total %lld\n"
            "# HELP numatp_queue_length Requests waiting for a slot.\n"
            "# TYPE numatp_queue_length gauge\nnumatp_queue_length %d\n"
            "# HELP numatp_slots_busy Slots serving a request.\n"
            "# TYPE numatp_slots_busy gauge\nnumatp_slots_busy %d\n"
            "# HELP numatp_slots_total Slots (--parallel).\n"
            "# TYPE numatp_slots_total gauge\nnumatp_slots_total %d\n",
            (long long)st.prompt_tokens, (long long)st.completion_tokens, (int)st.queued,
            (int)st.busy, (int)st.n_slots);
    write_histogram(f, "numatp_time_to_first_token_seconds",
                    "Seconds from a request's arrival to its first token.", &h->ttft, ttft_le,
                    N_TTFT);
    write_histogram(f, "numatp_time_per_output_token_seconds",
                    "Seconds per generated token after the first.", &h->tpot, tpot_le, N_TPOT);
    pthread_mutex_unlock(&h->mu);
    fclose(f);
    return buf;
}

/* Whether the Authorization header is "Bearer KEY", in time that depends only on the key. */
static bool authorized(const struct ntp_http *h, struct MHD_Connection *mc)
{
    if (!h->bearer)
        return true;
    const char *got = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "Authorization");
    const size_t n = strlen(h->bearer), ng = got ? strlen(got) : 0;
    unsigned char diff = ng != n;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(h->bearer[i] ^ (i < ng ? got[i] : 0));
    return diff == 0;
}

static enum MHD_Result dispatch(struct ntp_http *h, struct MHD_Connection *mc, struct conn *c,
                                const char *method, const char *url)
{
    struct ntp_oai_error err;
    const bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    pthread_mutex_lock(&h->mu);
    const bool ready = h->ready;
    pthread_mutex_unlock(&h->mu);
    if (c->route == R_HEALTH && get)
        return reply_json(h, mc, R_HEALTH, ready ? 200 : 503,
                          strdup(ready ? "{\"status\":\"ok\"}" : "{\"status\":\"loading\"}"));
    if (!authorized(h, mc)) {
        ntp_oai_fail(&err, 401, NULL, "invalid_api_key",
                     "Invalid API key: send the header "
                     "'Authorization: Bearer KEY'");
        return reply_error(h, mc, c->route, &err);
    }
    if ((c->route == R_CHAT || c->route == R_COMPLETIONS) && post)
        return complete(h, mc, c);
    if (c->route == R_METRICS && get)
        return reply(h, mc, R_METRICS, 200, "text/plain; version=0.0.4", metrics_text(h));
    if (c->route == R_MODELS && get && ready)
        return reply_json(h, mc, R_MODELS, 200,
                          ntp_oai_models_json(h->e.served.model_name, h->started));
    if (c->route == R_MODELS && get) {
        ntp_oai_fail(&err, 503, NULL, "loading", "the model is loading");
        return reply_error(h, mc, R_MODELS, &err);
    }
    ntp_oai_fail(&err, 404, NULL, "not_found", "no route %.64s %.256s", method, url);
    return reply_error(h, mc, c->route, &err);
}

static enum route route_of(const char *url)
{
    for (int r = 0; r < R_OTHER; r++)
        if (strcmp(url, route_path[r]) == 0)
            return (enum route)r;
    return R_OTHER;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    struct ntp_http *h = cls;
    struct conn *c = *state;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return MHD_NO;
        c->route = route_of(url);
        *state = c;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        const size_t n = *upload_size;
        *upload_size = 0;
        c->too_big = c->too_big || c->len + n > h->max_body;
        if (c->too_big)
            return MHD_YES; /* the rest is read and dropped; 413 once it is all in */
        if (c->len + n + 1 > c->cap) {
            const size_t cap = 2 * (c->len + n + 1);
            char *b = realloc(c->body, cap);
            if (!b)
                return MHD_NO;
            c->body = b;
            c->cap = cap;
        }
        memcpy(c->body + c->len, upload, n);
        c->len += n;
        c->body[c->len] = '\0';
        return MHD_YES;
    }
    if (c->answered)
        return MHD_YES;
    c->answered = true;
    if (c->too_big) {
        struct ntp_oai_error err;
        ntp_oai_fail(&err, 413, NULL, "request_too_large",
                     "the request body is over the limit of %llu bytes (--max-body)",
                     (unsigned long long)h->max_body);
        return reply_error(h, mc, c->route, &err);
    }
    return dispatch(h, mc, c, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)mc, (void)why;
    struct conn *c = *state;
    if (c)
        free(c->body);
    free(c);
    *state = NULL;
}

ntp_status ntp_http_start(const struct ntp_http_config *cfg, struct ntp_http **out, int *port)
{
    *out = NULL;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", cfg->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    const int gai = getaddrinfo(cfg->host, port_s, &hints, &ai);
    if (gai != 0)
        return ntp__error(NTP_E_INVALID_ARG, "--host %s: %s", cfg->host, gai_strerror(gai));
    struct ntp_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        return ntp__error(NTP_E_NOMEM, "server");
    }
    pthread_mutex_init(&h->mu, NULL);
    h->max_body = cfg->max_body;
    h->started = (long long)time(NULL);
    if (cfg->api_key && asprintf(&h->bearer, "Bearer %s", cfg->api_key) < 0)
        h->bearer = NULL;
    const unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                           (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d || (cfg->api_key && !h->bearer)) {
        ntp_http_free(h);
        return ntp__error(NTP_E_IO,
                          "cannot listen on %s port %d (in use, or not an address "
                          "of this machine)",
                          cfg->host, cfg->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : cfg->port;
    *out = h;
    return NTP_OK;
}

void ntp_http_ready(struct ntp_http *h, const struct ntp_http_engine *e)
{
    pthread_mutex_lock(&h->mu);
    h->e = *e;
    h->ready = true;
    pthread_mutex_unlock(&h->mu);
}

void ntp_http_stopping(struct ntp_http *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_mutex_unlock(&h->mu);
}

void ntp_http_free(struct ntp_http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    pthread_mutex_destroy(&h->mu);
    free(h->bearer);
    free(h);
}
