/* cmd_gen.c - `numatp gen`: write a GGUF model with random weights. */
#include "cli/cli.h"
#include "model/gen.h"
#include "ntp.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numatp gen -o FILE [options]\n\n"
            "Write a GGUF model with random weights (deterministic in the seed), for tests\n"
            "and benchmarks. Shapes default to the 'tiny' preset.\n\n"
            "options:\n"
            "  -o, --output FILE     file to write (required)\n"
            "  --preset NAME         tiny (256 x 2 layers) or tinyllama-1b (2048 x 22 layers);\n"
            "                        other options override its values\n"
            "  --arch NAME           llama, qwen2 or qwen3 (default llama)\n"
            "  --dim N               hidden size n_embd\n"
            "  --layers N            transformer blocks\n"
            "  --heads N             query heads\n"
            "  --kv-heads N          key/value heads (must divide --heads)\n"
            "  --head-dim N          per-head width (default dim / heads)\n"
            "  --ff N                feed-forward width\n"
            "  --vocab N             synthetic vocabulary size (>= 259)\n"
            "  --vocab-from FILE     copy the tokenizer of another GGUF file (and its size)\n"
            "  --ctx N               context length written to the file\n"
            "  --type TYPE           type of every weight matrix: f32 (default), f16, bf16,\n"
            "                        q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k\n"
            "  --mix NAME            q4_k_m or q5_k_m (llama.cpp's per-tensor choice), or a type\n"
            "  --embd-type TYPE      type of token_embd (default: as --type/--mix choose)\n"
            "  --tied                no output.weight: the output head reuses token_embd\n"
            "  --rope-base X         RoPE theta (default 10000 for llama, 1e6 for qwen)\n"
            "  --rms-eps X           RMS norm epsilon (default 1e-5 for llama, 1e-6 for qwen)\n"
            "  --rope-scaling TYPE   write RoPE scaling metadata: none, linear or yarn\n"
            "  --rope-scale F        rope.scaling.factor (context stretch, e.g. 4); with\n"
            "                        --rope-freqs also llama3's factor (default 8)\n"
            "  --rope-orig-ctx N     YaRN's original_context_length; with --rope-freqs also\n"
            "                        llama3's original context (default 8192)\n"
            "  --rope-attn-factor F  rope.scaling.attn_factor (cos/sin magnitude, YaRN models)\n"
            "  --rope-freqs          add a llama3-style rope_freqs.weight (llama only)\n"
            "  --name TEXT           general.name\n"
            "  --seed N              random seed (default 1)\n"
            "  -q, --quiet           no progress messages\n"
            "  -h, --help            this help\n\n"
            "example: numatp gen -o tl.gguf --preset tinyllama-1b --mix q4_k_m\n");
}

enum opt_kind { OPT_INT, OPT_FLOAT, OPT_STR, OPT_FLAG };

struct opt {
    const char *name; /* "--dim"; short alias in alias or NULL */
    const char *alias;
    enum opt_kind kind;
    void *dst; /* int64_t*, float*, const char** or bool* */
};

/* The options' string values before they are turned into parameters. */
struct gen_args {
    const char *output, *preset, *type, *mix, *embd_type, *rope_scaling;
    int64_t seed;
    bool quiet, help;
};

static int bad_value(const char *opt, const char *v, const char *want)
{
    fprintf(stderr, "numatp gen: %s '%s': expected %s\n", opt, v, want);
    return 2;
}

static int parse_value(const struct opt *o, const char *v)
{
    char *end = NULL;
    errno = 0;
    if (o->kind == OPT_INT) {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < 0)
            return bad_value(o->name, v, "a non-negative integer");
        *(int64_t *)o->dst = x;
    } else if (o->kind == OPT_FLOAT) {
        float x = strtof(v, &end);
        if (errno || end == v || *end || !isfinite(x) || x <= 0)
            return bad_value(o->name, v, "a positive number");
        *(float *)o->dst = x;
    } else {
        *(const char **)o->dst = v;
    }
    return 0;
}

/* Parse argv against opts; 0 on success, 2 (after a message) on a usage error. */
static int parse_opts(int argc, char **argv, const struct opt *opts)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct opt *o = opts;
        while (o->name && !((strlen(o->name) == len && strncmp(o->name, arg, len) == 0) ||
                            (o->alias && !eq && strcmp(o->alias, arg) == 0)))
            o++;
        if (o->name == NULL) {
            fprintf(stderr, "numatp gen: unknown option '%s' (see numatp gen --help)\n", arg);
            return 2;
        }
        if (o->kind == OPT_FLAG) {
            if (eq)
                return bad_value(o->name, eq + 1, "no value");
            *(bool *)o->dst = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (v == NULL) {
            fprintf(stderr, "numatp gen: %s needs a value\n", o->name);
            return 2;
        }
        int rc = parse_value(o, v);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * A preset is the base the other options change, wherever it stands on the
 * command line, so it is found and applied before the options are parsed.
 */
static int apply_preset(int argc, char **argv, struct ntp_gen_params *p)
{
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strncmp(argv[i], "--preset=", 9) == 0)
            name = argv[i] + 9;
    }
    if (name && ntp__gen_preset(name, p) != NTP_OK) {
        fprintf(stderr, "numatp gen: --preset: %s\n", ntp_last_error());
        return 2;
    }
    return 0;
}

/* Whether "--name" or "--name=..." is among the arguments. */
static bool has_option(int argc, char **argv, const char *name)
{
    const size_t n = strlen(name);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], name, n) == 0 && (argv[i][n] == '\0' || argv[i][n] == '='))
            return true;
    return false;
}

/* Turn the string options into parameters; 2 on a bad name. */
static int apply_args(const struct gen_args *a, struct ntp_gen_params *p)
{
    /* --type takes only types; --mix also takes the named mixes. */
    enum ntp_type t;
    if (a->type && ntp_type_from_name(a->type, &t) != NTP_OK)
        return bad_value("--type", a->type, "a tensor type such as f32, f16, q8_0, q4_k");
    if (a->type) {
        p->type = t;
        p->mix = NTP_GEN_MIX_NONE;
    }
    if (a->mix && ntp__gen_parse_mix(a->mix, p) != NTP_OK)
        return bad_value("--mix", a->mix, "q4_k_m, q5_k_m or a tensor type");
    if (a->embd_type && ntp_type_from_name(a->embd_type, &p->embd_type) != NTP_OK)
        return bad_value("--embd-type", a->embd_type, "a tensor type such as f16, q8_0, q6_k");
    if (a->rope_scaling && ntp__gen_parse_rope_scaling(a->rope_scaling, p) != NTP_OK)
        return bad_value("--rope-scaling", a->rope_scaling, "none, linear or yarn");
    p->seed = (uint64_t)a->seed;
    return 0;
}

/* Parameters of the whole model, for deciding whether progress is worth printing. */
static double n_params(const struct ntp_gen_params *p)
{
    const double d = (double)p->n_embd;
    return (double)p->n_layer * (4.0 * d * d + 3.0 * d * (double)p->n_ff) +
           2.0 * d * (double)p->n_vocab;
}

int ntp_cli_gen(int argc, char **argv)
{
    struct ntp_gen_params p = ntp_gen_default_params();
    struct gen_args a = {.seed = (int64_t)p.seed};
    const struct opt opts[] = {
        {"--output", "-o", OPT_STR, &a.output},
        {"--preset", NULL, OPT_STR, &a.preset},
        {"--arch", NULL, OPT_STR, &p.arch},
        {"--dim", NULL, OPT_INT, &p.n_embd},
        {"--layers", NULL, OPT_INT, &p.n_layer},
        {"--heads", NULL, OPT_INT, &p.n_head},
        {"--kv-heads", NULL, OPT_INT, &p.n_head_kv},
        {"--head-dim", NULL, OPT_INT, &p.head_dim},
        {"--ff", NULL, OPT_INT, &p.n_ff},
        {"--vocab", NULL, OPT_INT, &p.n_vocab},
        {"--vocab-from", NULL, OPT_STR, &p.vocab_from},
        {"--ctx", NULL, OPT_INT, &p.n_ctx},
        {"--type", NULL, OPT_STR, &a.type},
        {"--mix", NULL, OPT_STR, &a.mix},
        {"--embd-type", NULL, OPT_STR, &a.embd_type},
        {"--tied", NULL, OPT_FLAG, &p.tied_output},
        {"--rope-base", NULL, OPT_FLOAT, &p.rope_freq_base},
        {"--rms-eps", NULL, OPT_FLOAT, &p.rms_eps},
        {"--rope-scaling", NULL, OPT_STR, &a.rope_scaling},
        {"--rope-scale", NULL, OPT_FLOAT, &p.rope_scale},
        {"--rope-orig-ctx", NULL, OPT_INT, &p.rope_orig_ctx},
        {"--rope-attn-factor", NULL, OPT_FLOAT, &p.rope_attn_factor},
        {"--rope-freqs", NULL, OPT_FLAG, &p.rope_freqs},
        {"--name", NULL, OPT_STR, &p.name},
        {"--seed", NULL, OPT_INT, &a.seed},
        {"--quiet", "-q", OPT_FLAG, &a.quiet},
        {"--help", "-h", OPT_FLAG, &a.help},
        {NULL, NULL, OPT_INT, NULL},
    };
    const bool vocab_given = has_option(argc, argv, "--vocab");
    int rc = apply_preset(argc, argv, &p);
    if (rc == 0)
        rc = parse_opts(argc, argv, opts);
    if (rc == 0 && a.help) {
        usage(stdout);
        return 0;
    }
    if (rc == 0)
        rc = apply_args(&a, &p);
    if (rc)
        return rc;
    if (a.output == NULL) {
        fprintf(stderr, "numatp gen: no output file (give -o FILE; see numatp gen --help)\n");
        return 2;
    }
    /* With --vocab-from the size comes from that file unless --vocab insists. */
    if (p.vocab_from && !vocab_given)
        p.n_vocab = 0;
    if (ntp__gen_check(&p) != NTP_OK) {
        fprintf(stderr, "numatp gen: %s\n", ntp_last_error());
        return 2;
    }
    p.progress = !a.quiet && n_params(&p) >= 1e8;
    if (ntp__model_gen(&p, a.output) != NTP_OK) {
        fprintf(stderr, "numatp gen: %s\n", ntp_last_error());
        return 1;
    }
    if (!a.quiet)
        fprintf(stderr, "numatp gen: wrote %s (%s, %lld layers, %lld x %lld, seed %llu)\n",
                a.output, p.arch, (long long)p.n_layer, (long long)p.n_embd, (long long)p.n_ff,
                (unsigned long long)p.seed);
    return 0;
}
