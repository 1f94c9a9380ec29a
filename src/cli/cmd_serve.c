/*
 * cmd_serve.c - `numatp serve`: an OpenAI-compatible HTTP server.
 *
 * It listens first (so /health answers "loading"), loads the model with the
 * options every inference command shares (-c is per slot), starts the
 * scheduler (src/sched) and hands it to the HTTP side (src/server). SIGINT
 * and SIGTERM stop it: new requests get 503, running ones are cancelled
 * within one engine step, and the command exits 0.
 */
#include "cli/cli.h"
#include "cli/infer.h"
#include "comm/world.h"
#include "core/core.h"
#include "exec/follow.h"
#include "model/chat_template.h"
#include "server/http.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct serve_opts {
    const char *host, *api_key, *alias, *tmpl_name;
    int64_t port, parallel, queue_size, batch;
    uint64_t max_body;
    bool help;
    struct ntp_cli_sampling smp;
    struct ntp_cli_infer inf;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: numatp serve -m FILE [options]\n\n"
               "An OpenAI-compatible HTTP server: POST /v1/chat/completions and /v1/completions\n"
               "(streamed or not), GET /v1/models, /health and /metrics (Prometheus). SIGINT or\n"
               "SIGTERM cancels the running requests and exits with status 0.\n\n"
               "options:\n"
               "  --host ADDR             address to listen on (default 127.0.0.1)\n"
               "  --port N                port, 0 .. 65535; 0: any free one (default 8080)\n"
               "  --api-key KEY           ask every request but /health for 'Authorization: "
               "Bearer KEY'\n"
               "  --alias NAME            the model's name in the API (default: general.name, "
               "else\n"
               "                          the file's name)\n"
               "  --parallel N            requests generating at once, each with its own -c "
               "positions,\n"
               "                          1 .. 256 (default 4)\n"
               "  --queue-size N          requests waiting for a slot, 1 .. 65536 (default 64); "
               "more get\n"
               "                          503\n"
               "  -b, --batch-size N      prompt tokens read per step, 1 .. 65536 (default "
               "512)\n"
               "  --max-body SIZE         largest request body (default 1M); larger ones get "
               "413\n"
               "  --chat-template NAME    template instead of the model's "
               "tokenizer.chat_template (the\n"
               "                          names of numatp chat; default chatml when the model "
               "has none)\n");
    ntp_cli_infer_help(f, "0");
    ntp_cli_sampling_help(f);
    fprintf(f, "  -h, --help              this help\n");
}

/* 0: run; -1: --help was printed; 2: bad usage (message printed). */
static int parse_args(int argc, char **argv, struct serve_opts *o)
{
    *o = (struct serve_opts){.host = "127.0.0.1",
                             .port = 8080,
                             .parallel = 4,
                             .queue_size = 64,
                             .batch = 512,
                             .max_body = 1 << 20,
                             .smp = ntp_cli_sampling_default()};
    const struct ntp_cli_opt own[] = {
        {"--host", NULL, NTP_CLI_STR, .dst = &o->host},
        {"--port", NULL, NTP_CLI_INT, .dst = &o->port, .lo = 0, .hi = 65535},
        {"--api-key", NULL, NTP_CLI_STR, .dst = &o->api_key},
        {"--alias", NULL, NTP_CLI_STR, .dst = &o->alias},
        {"--parallel", "-np", NTP_CLI_INT, .dst = &o->parallel, .lo = 1,
         .hi = NTP_CLI_MAX_PARALLEL},
        {"--queue-size", NULL, NTP_CLI_INT, .dst = &o->queue_size, .lo = 1, .hi = 65536},
        {"--batch-size", "-b", NTP_CLI_INT, .dst = &o->batch, .lo = 1, .hi = 65536},
        {"--max-body", NULL, NTP_CLI_SIZE, .dst = &o->max_body},
        {"--chat-template", NULL, NTP_CLI_STR, .dst = &o->tmpl_name},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &o->help},
        {NULL},
    };
    struct ntp_cli_opt smp[NTP_CLI_SAMPLING_N_OPTS + 1], inf[NTP_CLI_INFER_N_OPTS + 1];
    ntp_cli_sampling_opts(&o->smp, smp);
    ntp_cli_infer_opts(&o->inf, false, inf);
    int rc = ntp_cli_parse("serve", argc, argv,
                           (const struct ntp_cli_opt *const[]){own, smp, inf, NULL});
    if (rc != 0 || o->help)
        return rc != 0 ? rc : (usage(stdout), -1);
    enum ntp_chat_style style;
    if (o->tmpl_name && ntp__chat_style_from_name(o->tmpl_name, &style) != NTP_OK) {
        fprintf(stderr, "numatp serve: --chat-template: %s\n", ntp_last_error());
        return 2;
    }
    if ((o->api_key && o->api_key[0] == '\0') || (o->alias && o->alias[0] == '\0')) {
        fprintf(stderr, "numatp serve: %s is empty\n", o->alias ? "--alias" : "--api-key");
        return 2;
    }
    ntp_model_params mp;
    ntp_context_params cp;
    return ntp_cli_infer_apply("serve", &o->inf, &mp, &cp);
}

/*
 * The served model's name (--alias, general.name or the file's name without
 * folder and .gguf; malloc'd) and chat template (--chat-template, the file's,
 * else chatml), from the file's metadata.
 */
static int describe(const struct serve_opts *o, char **name, enum ntp_chat_style *style)
{
    ntp_gguf *g = NULL;
    if (ntp_gguf_open(o->inf.model, &g) != NTP_OK) {
        fprintf(stderr, "numatp serve: %s\n", ntp_last_error());
        return 1;
    }
    const char *gname = NULL;
    const char *slash = strrchr(o->inf.model, '/'), *base = slash ? slash + 1 : o->inf.model;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    if (o->alias)
        *name = strdup(o->alias);
    else if (ntp_gguf_get_str(g, "general.name", &gname) == NTP_OK && gname[0])
        *name = strdup(gname);
    else
        *name = strndup(base, n);
    ntp_gguf_free(g);
    bool fell_back = false;
    const ntp_status s =
        *name ? ntp__chat_choose(o->inf.model, o->tmpl_name, NTP_CHAT_CHATML, style, &fell_back)
              : NTP_OK;
    if (fell_back)
        fprintf(stderr,
                "numatp serve: %s has no chat template; using chatml (see "
                "--chat-template)\n",
                o->inf.model);
    if (s != NTP_OK || !*name) {
        fprintf(stderr, "numatp serve: %s\n", *name ? ntp_last_error() : "out of memory");
        return 1;
    }
    return 0;
}

/* The template's turn-end marker when it is one token (as chat stops on it), else -1. */
static int32_t turn_end_token(const ntp_model *m, enum ntp_chat_style style)
{
    const char *end = ntp__chat_turn_end(style);
    int32_t tok[2], n = 0;
    if (end && ntp_tokenize(m, end, strlen(end), false, true, tok, 2, &n) == NTP_OK && n == 1)
        return tok[0];
    return -1;
}

/* Load, start the scheduler, serve until a signal. 0, or 1 after printing the error. */
static int serve(const struct serve_opts *o, struct ntp_http *h, const sigset_t *sigs)
{
    char *name = NULL;
    enum ntp_chat_style style = NTP_CHAT_CHATML;
    ntp_model *m = NULL;
    ntp_context_params cp;
    struct ntp_sched *sched = NULL;
    int rc = describe(o, &name, &style);
    if (rc == 0)
        rc = ntp_cli_infer_load("serve", &o->inf, &m, &cp);
    const struct ntp_sched_params sp = {.n_slots = (int32_t)o->parallel,
                                        .queue_size = (int32_t)o->queue_size,
                                        .n_batch = (int32_t)o->batch,
                                        .cparams = cp};
    if (rc == 0 && ntp_sched_new(m, &sp, &sched) != NTP_OK) {
        fprintf(stderr, "numatp serve: %s\n", ntp_last_error());
        rc = 1;
    }
    if (rc == 0) {
        const struct ntp_http_engine e = {
            .m = m,
            .sched = sched,
            .served = {.model_name = name,
                       .style = style,
                       .defaults = ntp_cli_sampling_params(&o->smp)},
            .turn_end = turn_end_token(m, style),
        };
        ntp_http_ready(h, &e);
        fprintf(stderr,
                "numatp serve: model '%s', template %s, %d slots of %d positions, queue %d\n", name,
                ntp__chat_style_name(style), (int)o->parallel, (int)ntp_sched_n_ctx(sched),
                (int)o->queue_size);
        fprintf(stderr, "numatp serve: all slots are idle\n");
        int sig = 0;
        sigwait(sigs, &sig);
        fprintf(stderr, "numatp serve: %s: stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    ntp_http_stopping(h);
    if (sched)
        ntp_sched_stop(sched); /* running requests end; their connections finish */
    ntp_http_free(h);
    ntp_sched_free(sched);
    ntp_model_free(m);
    free(name);
    return rc;
}

/*
 * Under mpirun, a rank other than 0: load the same model and repeat rank 0's
 * context calls until it ends (exec/follow.h). Rank 0 alone serves HTTP and
 * decides when to stop, so the signals mpirun forwards are left to it.
 */
static int follow(const struct serve_opts *o)
{
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    ntp_model *m = NULL;
    ntp_context_params cp;
    int rc = ntp_cli_infer_load("serve", &o->inf, &m, &cp);
    if (rc == 0 && ntp__follow(m) != NTP_OK) {
        fprintf(stderr, "numatp serve: rank %d: %s\n", ntp__world_rank(), ntp_last_error());
        rc = 1;
    }
    ntp_model_free(m);
    return rc;
}

int ntp_cli_serve(int argc, char **argv)
{
    struct serve_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (ntp__world_rank() > 0)
        return follow(&o);
    /* Every thread started from here on leaves SIGINT and SIGTERM to sigwait. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    const struct ntp_http_config hc = {
        .host = o.host, .port = (int)o.port, .api_key = o.api_key, .max_body = o.max_body};
    struct ntp_http *h = NULL;
    int port = 0;
    if (ntp_http_start(&hc, &h, &port) != NTP_OK) {
        fprintf(stderr, "numatp serve: %s\n", ntp_last_error());
        return 1;
    }
    const bool v6 = strchr(o.host, ':') != NULL;
    fprintf(stderr, "numatp serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", o.host,
            v6 ? "]" : "", port);
    ntp__follow_lead(ntp__world_size() > 1); /* the other ranks repeat its context calls */
    rc = serve(&o, h, &sigs);
    if (ntp__world_size() > 1 && rc == 0 && ntp__lead_end() != NTP_OK) {
        fprintf(stderr, "numatp serve: %s\n", ntp_last_error());
        rc = 1;
    }
    return rc;
}
