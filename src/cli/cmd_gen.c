/* cmd_gen.c - `numatp gen`: write a GGUF model with random weights. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "model/gen.h"
#include "ntp.h"

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
            "  --preset NAME         tiny (256 x 2 layers), tinyllama-1b (2048 x 22 layers),\n"
            "                        gemma3-270m (640 x 18 layers), tiny-moe (qwen3moe,\n"
            "                        256 x 2 layers, 8 experts), qwen3-30b-a3b (qwen3moe,\n"
            "                        2048 x 48 layers, 128 experts of 768, 8 per token) or\n"
            "                        mixtral-8x7b (llama, 4096 x 32 layers, 8 experts of\n"
            "                        14336, 2 per token), deepseek-v2-lite (deepseek2, 2048 x\n"
            "                        27 layers, 64 experts of 1408, 6 per token, 2 shared) or\n"
            "                        deepseek-v3-small (DeepSeek-V3's widths, 7168 x 4 layers,\n"
            "                        32 experts of 2048 in 8 groups); other options override\n"
            "                        its values\n"
            "  --arch NAME           llama, qwen2, qwen3, qwen3moe, gemma3 or deepseek2\n"
            "                        (default llama)\n"
            "  --dim N               hidden size n_embd\n"
            "  --layers N            transformer blocks\n"
            "  --heads N             query heads\n"
            "  --kv-heads N          key/value heads (must divide --heads)\n"
            "  --head-dim N          per-head width (default dim / heads)\n"
            "  --ff N                feed-forward width\n"
            "  --experts N           experts of a mixture-of-experts FFN in every block\n"
            "                        (qwen3moe: default 8; llama: Mixtral-style; 0: dense)\n"
            "  --experts-used N      experts per token (default 2)\n"
            "  --expert-ff N         one expert's width (qwen3moe; default --ff)\n"
            "  --fuse-gate-up        experts' gate and up as one ffn_gate_up_exps tensor\n"
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
            "  --sliding-window N    window of gemma3's local layers (five of every six);\n"
            "                        0 (default): every layer is global\n"
            "  --rope-scaling TYPE   write RoPE scaling metadata: none, linear or yarn\n"
            "  --rope-scale F        rope.scaling.factor (context stretch, e.g. 4); with\n"
            "                        --rope-freqs also llama3's factor (default 8)\n"
            "  --rope-orig-ctx N     YaRN's original_context_length; with --rope-freqs also\n"
            "                        llama3's original context (default 8192)\n"
            "  --rope-attn-factor F  rope.scaling.attn_factor (cos/sin magnitude, YaRN models)\n"
            "  --rope-freqs          add a llama3-style rope_freqs.weight (llama only)\n"
            "deepseek2 (multi-head latent attention; --head-dim is a query head's width\n"
            "with its RoPE part, default 192):\n"
            "  --kv-lora N           latent width (default 512)\n"
            "  --q-lora N            query low-rank width (default 0: attn_q)\n"
            "  --rope-dim N          RoPE part of each head (default 64)\n"
            "  --v-head-dim N        value head width (default head-dim - rope-dim)\n"
            "  --dense-layers N      leading blocks with a dense FFN of --ff\n"
            "  --shared-experts N    shared experts (each --expert-ff wide)\n"
            "  --gating NAME         softmax (V2, default) or sigmoid (V3)\n"
            "  --expert-norm         normalise the chosen experts' weights\n"
            "  --expert-scale F      multiply them by F\n"
            "  --expert-groups N     experts in N groups ...\n"
            "  --expert-groups-used N  ... of which the best N are chosen from\n"
            "  --probs-bias          add the experts' selection bias (exp_probs_b)\n"
            "  --kv-b                the older layout: one attn_kv_b, decompressed key lengths\n"
            "  --rope-yarn-log-mul F rope.scaling.yarn_log_multiplier (0.1 x mscale_all_dim)\n"
            "  --name TEXT           general.name\n"
            "  --seed N              random seed (default 1)\n"
            "  -q, --quiet           no progress messages\n"
            "  -h, --help            this help\n\n"
            "example: numatp gen -o tl.gguf --preset tinyllama-1b --mix q4_k_m\n");
}

/* The options' string values before they are turned into parameters. */
struct gen_args {
    const char *output, *preset, *type, *mix, *embd_type, *rope_scaling, *gating;
    int64_t seed;
    bool quiet, help;
};

static int bad_value(const char *opt, const char *v, const char *want)
{
    fprintf(stderr, "numatp gen: %s '%s': expected %s\n", opt, v, want);
    return 2;
}

#define GEN_N_OPTS 47 /* entries of gen_opts, the end included */

/* The option table: a's strings and flags, p's shapes (sizes 0 or more, factors above 0). */
static void gen_opts(struct gen_args *a, struct ntp_gen_params *p, struct ntp_cli_opt *out)
{
#define GEN_INT(name, field)                                                                       \
    {                                                                                              \
        name, NULL, NTP_CLI_INT, &p->field, .lo = 0, .hi = INT64_MAX                               \
    }
#define GEN_POS(name, field)                                                                       \
    {                                                                                              \
        name, NULL, NTP_CLI_FLOAT, &p->field, .positive = true                                     \
    }
    const struct ntp_cli_opt opts[] = {
        {"--output", "-o", NTP_CLI_STR, .dst = &a->output},
        {"--preset", NULL, NTP_CLI_STR, .dst = &a->preset},
        {"--arch", NULL, NTP_CLI_STR, .dst = &p->arch},
        GEN_INT("--dim", n_embd),
        GEN_INT("--layers", n_layer),
        GEN_INT("--heads", n_head),
        GEN_INT("--kv-heads", n_head_kv),
        GEN_INT("--head-dim", head_dim),
        GEN_INT("--ff", n_ff),
        GEN_INT("--experts", n_expert),
        GEN_INT("--experts-used", n_expert_used),
        GEN_INT("--expert-ff", n_ff_exp),
        GEN_INT("--vocab", n_vocab),
        {"--vocab-from", NULL, NTP_CLI_STR, .dst = &p->vocab_from},
        GEN_INT("--ctx", n_ctx),
        {"--type", NULL, NTP_CLI_STR, .dst = &a->type},
        {"--mix", NULL, NTP_CLI_STR, .dst = &a->mix},
        {"--embd-type", NULL, NTP_CLI_STR, .dst = &a->embd_type},
        {"--tied", NULL, NTP_CLI_FLAG, .dst = &p->tied_output},
        GEN_POS("--rope-base", rope_freq_base),
        GEN_POS("--rms-eps", rms_eps),
        GEN_INT("--sliding-window", n_swa),
        {"--rope-scaling", NULL, NTP_CLI_STR, .dst = &a->rope_scaling},
        GEN_POS("--rope-scale", rope_scale),
        GEN_INT("--rope-orig-ctx", rope_orig_ctx),
        GEN_POS("--rope-attn-factor", rope_attn_factor),
        {"--rope-freqs", NULL, NTP_CLI_FLAG, .dst = &p->rope_freqs},
        GEN_INT("--kv-lora", kv_lora),
        GEN_INT("--q-lora", q_lora),
        GEN_INT("--rope-dim", rope_dim),
        GEN_INT("--v-head-dim", v_head_dim),
        GEN_INT("--dense-layers", n_layer_dense),
        GEN_INT("--shared-experts", n_expert_shared),
        {"--gating", NULL, NTP_CLI_STR, .dst = &a->gating},
        {"--expert-norm", NULL, NTP_CLI_FLAG, .dst = &p->expert_norm},
        GEN_POS("--expert-scale", expert_scale),
        GEN_INT("--expert-groups", n_group),
        GEN_INT("--expert-groups-used", n_group_used),
        {"--probs-bias", NULL, NTP_CLI_FLAG, .dst = &p->probs_bias},
        {"--kv-b", NULL, NTP_CLI_FLAG, .dst = &p->mla_kv_b},
        {"--fuse-gate-up", NULL, NTP_CLI_FLAG, .dst = &p->fuse_gate_up},
        GEN_POS("--rope-yarn-log-mul", rope_yarn_log_mul),
        {"--name", NULL, NTP_CLI_STR, .dst = &p->name},
        {"--seed", NULL, NTP_CLI_INT, .dst = &a->seed, .lo = 0, .hi = INT64_MAX},
        {"--quiet", "-q", NTP_CLI_FLAG, .dst = &a->quiet},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &a->help},
        {NULL},
    };
#undef GEN_INT
#undef GEN_POS
    _Static_assert(sizeof opts / sizeof opts[0] == GEN_N_OPTS, "GEN_N_OPTS counts the table");
    memcpy(out, opts, sizeof opts);
}

/*
 * A preset is the base the other options change, wherever it stands on the
 * command line: a first pass finds it (and whether --vocab is given), the
 * second parses onto the preset. 0, or 2 after a message.
 */
static int parse_args(int argc, char **argv, struct gen_args *a, struct ntp_gen_params *p,
                      bool *vocab_given)
{
    struct ntp_gen_params scout = *p;
    struct ntp_cli_opt opts[GEN_N_OPTS];
    scout.n_vocab = -1; /* the parser writes 0 or more */
    gen_opts(a, &scout, opts);
    int rc = ntp_cli_parse("gen", argc, argv, (const struct ntp_cli_opt *const[]){opts, NULL});
    if (rc != 0 || a->help)
        return rc;
    *vocab_given = scout.n_vocab >= 0;
    if (a->preset && ntp__gen_preset(a->preset, p) != NTP_OK) {
        fprintf(stderr, "numatp gen: --preset: %s\n", ntp_last_error());
        return 2;
    }
    gen_opts(a, p, opts);
    return ntp_cli_parse("gen", argc, argv, (const struct ntp_cli_opt *const[]){opts, NULL});
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
    if (a->gating && strcmp(a->gating, "softmax") != 0 && strcmp(a->gating, "sigmoid") != 0)
        return bad_value("--gating", a->gating, "softmax or sigmoid");
    if (a->gating)
        p->gating_sigmoid = strcmp(a->gating, "sigmoid") == 0;
    p->seed = (uint64_t)a->seed;
    return 0;
}

/* Parameters of the whole model, for deciding whether progress is worth printing. */
static double n_params(const struct ntp_gen_params *p)
{
    const double d = (double)p->n_embd;
    const double ffn = p->n_expert > 0
                           ? (double)p->n_expert * (double)(p->n_ff_exp ? p->n_ff_exp : p->n_ff)
                           : (double)p->n_ff;
    return (double)p->n_layer * (4.0 * d * d + 3.0 * d * ffn) + 2.0 * d * (double)p->n_vocab;
}

int ntp_cli_gen(int argc, char **argv)
{
    struct ntp_gen_params p = ntp__gen_default_params();
    struct gen_args a = {.seed = (int64_t)p.seed};
    bool vocab_given = false;
    int rc = parse_args(argc, argv, &a, &p, &vocab_given);
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
    if (!a.quiet && p.n_expert > 0)
        fprintf(stderr,
                "numatp gen: wrote %s (%s, %lld layers, %lld x %lld experts of %lld, %lld per "
                "token, seed %llu)\n",
                a.output, p.arch, (long long)p.n_layer, (long long)p.n_embd, (long long)p.n_expert,
                (long long)(p.n_ff_exp ? p.n_ff_exp : p.n_ff),
                (long long)(p.n_expert_used ? p.n_expert_used : 2), (unsigned long long)p.seed);
    else if (!a.quiet)
        fprintf(stderr, "numatp gen: wrote %s (%s, %lld layers, %lld x %lld, seed %llu)\n",
                a.output, p.arch, (long long)p.n_layer, (long long)p.n_embd, (long long)p.n_ff,
                (unsigned long long)p.seed);
    return 0;
}
