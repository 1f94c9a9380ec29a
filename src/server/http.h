/*
 * http.h - the HTTP server of `numatp serve` (libmicrohttpd, one thread per
 * connection): routes, API key, body limit, streaming and /metrics. It
 * listens before the model is loaded (/health answers 503 "loading" until
 * ntp_http_ready) and hands every completion to the scheduler.
 */
#ifndef NTP_SERVER_HTTP_H
#define NTP_SERVER_HTTP_H

#include "ntp.h"
#include "sched/sched.h"
#include "server/openai.h"

#include <stdint.h>

struct ntp_http_config {
    const char *host;    /* address to bind: "127.0.0.1", "::", a name */
    int port;            /* 0: any free port */
    const char *api_key; /* NULL: no authorization asked */
    uint64_t max_body;   /* bytes a request body may have (413 past it) */
};

/* What the completion routes need once the model is loaded; the caller keeps it alive. */
struct ntp_http_engine {
    ntp_model *m;
    struct ntp_sched *sched;
    struct ntp_oai_served served;
    int32_t turn_end; /* the template's turn-end token that also ends a chat reply, or -1 */
};

struct ntp_http;

/* Bind and start answering; *port gets the port bound. Errors name the address. */
ntp_status ntp_http_start(const struct ntp_http_config *cfg, struct ntp_http **out, int *port);

/* From now on completions go to e (copied). */
void ntp_http_ready(struct ntp_http *h, const struct ntp_http_engine *e);

/* New completions get 503 from now on; those running end as the scheduler ends them. */
void ntp_http_stopping(struct ntp_http *h);

/* Stop the daemon (waits for the connections' threads) and free. NULL is a no-op. */
void ntp_http_free(struct ntp_http *h);

#endif /* NTP_SERVER_HTTP_H */
