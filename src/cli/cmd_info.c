/*
 * cmd_info.c - `numatp info [-m FILE] [--json]`: what a GGUF file holds
 * (format, architecture, hyper-parameters, tokenizer, tensors) and what the
 * machine offers (NUMA nodes, cores, memory, last-level cache). Everything
 * generic is read from the metadata as it is, so the command also describes
 * architectures numatp cannot run and vocabulary-only files.
 */
#include "backend/cpu/cpu_device.h"
#include "cli/cli.h"
#include "cli/json.h"
#include "cli/opts.h"
#include "kernels/kernels.h"
#include "model/arch.h"
#include "model/plan.h"
#include "tokenizer/unicode.h"
#include "ntp.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: numatp info [-m FILE] [--json]\n\n"
               "Describe a GGUF model (format, architecture, hyper-parameters, tokenizer,\n"
               "tensors) and the machine (NUMA nodes, cores, memory, last-level cache).\n"
               "Without -m only the machine is described.\n\n"
               "options:\n"
               "  -m, --model FILE   the GGUF file\n"
               "  --json             one JSON object on stdout instead of text\n"
               "  -h, --help         this help\n");
}

/* ------------------------------------------------------------ strings */

/*
 * A string as a JSON string (json) or as a quoted C-like literal (text):
 * quotes, backslashes and control characters escaped, invalid UTF-8 bytes
 * shown as \xNN.
 */
static void put_str(FILE *f, const char *s, size_t n, bool json)
{
    if (json) {
        ntp_cli_json_strn(f, s, n);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        const size_t len = ntp__utf8_char(s + i, n - i);
        const unsigned char c = (unsigned char)s[i];
        if (len > 1)
            fwrite(s + i, 1, len, f);
        else if (len == 1 && (c == '"' || c == '\\'))
            fprintf(f, "\\%c", c);
        else if (len == 1 && c == '\n')
            fputs("\\n", f);
        else if (len == 1 && c == '\t')
            fputs("\\t", f);
        else if (len == 0 || c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
        i += len ? len : 1;
    }
    fputc('"', f);
}

/* A float as JSON allows it (no NaN or infinity) or as text. */
static void put_float(FILE *f, double x, bool json)
{
    if (json)
        ntp_cli_json_num(f, x);
    else
        fprintf(f, "%.9g", x);
}

/* Arrays longer than this are summarized by element type and length. */
#define INFO_MAX_ARRAY 64

static void put_value(FILE *f, const ntp_gguf_value *v, bool json)
{
    switch (v->type) {
    case NTP_GGUF_UINT8:
        fprintf(f, "%u", v->u8);
        break;
    case NTP_GGUF_INT8:
        fprintf(f, "%d", v->i8);
        break;
    case NTP_GGUF_UINT16:
        fprintf(f, "%u", v->u16);
        break;
    case NTP_GGUF_INT16:
        fprintf(f, "%d", v->i16);
        break;
    case NTP_GGUF_UINT32:
        fprintf(f, "%" PRIu32, v->u32);
        break;
    case NTP_GGUF_INT32:
        fprintf(f, "%" PRId32, v->i32);
        break;
    case NTP_GGUF_UINT64:
        fprintf(f, "%" PRIu64, v->u64);
        break;
    case NTP_GGUF_INT64:
        fprintf(f, "%" PRId64, v->i64);
        break;
    case NTP_GGUF_FLOAT32:
        put_float(f, v->f32, json);
        break;
    case NTP_GGUF_FLOAT64:
        put_float(f, v->f64, json);
        break;
    case NTP_GGUF_BOOL:
        fputs(v->b ? "true" : "false", f);
        break;
    case NTP_GGUF_STRING:
        put_str(f, v->str.data, v->str.len, json);
        break;
    case NTP_GGUF_ARRAY:
        if (v->arr.len > INFO_MAX_ARRAY || v->arr.type == NTP_GGUF_ARRAY) {
            if (json)
                fprintf(f, "{\"array_of\": \"%s\", \"length\": %" PRIu64 "}",
                        ntp_gguf_type_name(v->arr.type), v->arr.len);
            else
                fprintf(f, "[%" PRIu64 " x %s]", v->arr.len, ntp_gguf_type_name(v->arr.type));
            break;
        }
        fputc('[', f);
        for (uint64_t i = 0; i < v->arr.len; i++) {
            fputs(i ? ", " : "", f);
            put_value(f, &v->arr.elems[i], json);
        }
        fputc(']', f);
        break;
    case NTP_GGUF_TYPE_COUNT:
        fputs(json ? "null" : "?", f);
        break;
    }
}

/* ------------------------------------------------------------ numbers */

/* "1.23 GiB" style, for text output. */
static const char *human_bytes(uint64_t b, char buf[32])
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)b;
    int u = 0;
    while (x >= 1024.0 && u < 4) {
        x /= 1024.0;
        u++;
    }
    snprintf(buf, 32, u ? "%.2f %s" : "%.0f %s", x, units[u]);
    return buf;
}

struct tensor_totals {
    uint64_t params; /* elements of all tensors */
    uint64_t bytes;  /* data bytes of all tensors */
};

static struct tensor_totals tensor_totals(const ntp_gguf *g)
{
    struct tensor_totals t = {0, 0};
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *x = ntp_gguf_tensor_at(g, i);
        uint64_t n = 1;
        for (uint32_t d = 0; d < x->n_dims; d++)
            n *= (uint64_t)x->ne[d];
        t.params += n;
        t.bytes += x->size;
    }
    return t;
}

/* A string key's value, or NULL when missing or not a string. */
static const char *str_key(const ntp_gguf *g, const char *key)
{
    const ntp_gguf_value *v = ntp_gguf_get(g, key);
    return v && v->type == NTP_GGUF_STRING ? v->str.data : NULL;
}

/* Length of an array key, or -1. */
static int64_t arr_len(const ntp_gguf *g, const char *key)
{
    const ntp_gguf_value *v = ntp_gguf_get(g, key);
    return v && v->type == NTP_GGUF_ARRAY ? (int64_t)v->arr.len : -1;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_special_id_key(const char *key)
{
    size_t n = strlen(key);
    return has_prefix(key, "tokenizer.ggml.") && n > 9 && strcmp(key + n - 9, "_token_id") == 0;
}

/* The text of token id, or NULL when the file has no such token. */
static const ntp_gguf_value *token_text(const ntp_gguf *g, const ntp_gguf_value *id)
{
    const ntp_gguf_value *toks = ntp_gguf_get(g, "tokenizer.ggml.tokens");
    uint64_t i = id->type == NTP_GGUF_UINT32  ? id->u32
                 : id->type == NTP_GGUF_INT32 ? (uint64_t)id->i32
                                              : UINT64_MAX;
    if (toks == NULL || toks->type != NTP_GGUF_ARRAY || toks->arr.type != NTP_GGUF_STRING ||
        i >= toks->arr.len)
        return NULL;
    return &toks->arr.elems[i];
}

/* --------------------------------------------------------------- text */

static void text_keys(FILE *f, const ntp_gguf *g, const char *prefix)
{
    const size_t skip = strlen(prefix);
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++) {
        const char *key = ntp_gguf_kv_key(g, i);
        if (!has_prefix(key, prefix))
            continue;
        fprintf(f, "  %-40s ", key + skip);
        put_value(f, ntp_gguf_kv_value(g, i), false);
        fputc('\n', f);
    }
}

static void text_tokenizer(FILE *f, const ntp_gguf *g)
{
    const char *model = str_key(g, "tokenizer.ggml.model");
    const char *pre = str_key(g, "tokenizer.ggml.pre");
    if (model == NULL) {
        fprintf(f, "tokenizer    none\n");
        return;
    }
    fprintf(f, "tokenizer    model %s, pre %s, %" PRId64 " tokens", model, pre ? pre : "-",
            arr_len(g, "tokenizer.ggml.tokens"));
    if (arr_len(g, "tokenizer.ggml.merges") >= 0)
        fprintf(f, ", %" PRId64 " merges", arr_len(g, "tokenizer.ggml.merges"));
    fputc('\n', f);
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++) {
        const char *key = ntp_gguf_kv_key(g, i);
        if (!is_special_id_key(key))
            continue;
        const ntp_gguf_value *v = ntp_gguf_kv_value(g, i);
        fprintf(f, "  %-40.*s ", (int)(strlen(key) - 9 - 15), key + 15);
        put_value(f, v, false);
        const ntp_gguf_value *t = token_text(g, v);
        if (t) {
            fputc(' ', f);
            put_value(f, t, false);
        }
        fputc('\n', f);
    }
}

static void text_tensors(FILE *f, const ntp_gguf *g)
{
    struct tensor_totals tt = tensor_totals(g);
    char hb[32];
    fprintf(f, "tensors      %" PRId64 ", %" PRIu64 " parameters, %s\n", ntp_gguf_n_tensors(g),
            tt.params, human_bytes(tt.bytes, hb));
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        char shape[96];
        int n = 0;
        for (uint32_t d = 0; d < t->n_dims && n < (int)sizeof shape; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, d ? " x %" PRId64 : "%" PRId64,
                          t->ne[d]);
        fprintf(f, "  %-40s %-8s %-20s %12" PRIu64 "\n", t->name, ntp_type_name(t->type), shape,
                t->size);
    }
}

/*
 * The experts of a mixture of experts, and the KV cache a context at the
 * default size would take (what `numatp plan` prints per device), for a
 * model numatp can run; nothing otherwise.
 */
static void text_kv(FILE *f, const char *path)
{
    struct ntp_plan plan;
    struct ntp_hparams hp;
    uint64_t bytes[NTP_PLAN_MAX_DEV];
    struct ntp_kv_plan kv = {.n_batch = 512, .type = NTP_TYPE_F16};
    if (ntp__model_plan_file(path, 1, NTP_MOE_SPLIT_FEATURES, &plan, &hp, bytes, NULL) != NTP_OK)
        return;
    kv.n_ctx = hp.n_ctx < 4096 ? hp.n_ctx : 4096;
    if (ntp__model_plan_file(path, 1, NTP_MOE_SPLIT_FEATURES, &plan, &hp, bytes, &kv) != NTP_OK)
        return;
    char a[32], b[32];
    if (hp.n_expert > 0)
        fprintf(f,
                "experts      %lld per block, %lld per token, %lld wide (a mixture of experts "
                "in %s)\n",
                (long long)hp.n_expert, (long long)hp.n_expert_used, (long long)hp.n_ff_exp,
                hp.n_layer_dense > 0 ? "the blocks after the dense ones" : "every block");
    if (hp.kv_lora > 0)
        fprintf(f,
                "attention    latent (MLA): %lld heads of %lld (%lld RoPE) with values of %lld, "
                "from a latent of %lld%s\n",
                (long long)hp.n_head, (long long)hp.mla_k, (long long)hp.n_rot,
                (long long)hp.mla_v, (long long)hp.kv_lora,
                hp.q_lora > 0 ? ", queries through a rank of" : "");
    if (hp.kv_lora > 0 && hp.q_lora > 0)
        fprintf(f, "             %lld\n", (long long)hp.q_lora);
    if (hp.n_layer_dense > 0 || hp.n_expert_shared > 0)
        fprintf(f, "ffn          %lld dense leading blocks of %lld, %lld shared experts\n",
                (long long)hp.n_layer_dense, (long long)hp.n_ff, (long long)hp.n_expert_shared);
    fprintf(f, "kv cache     %s at -c %lld (f16), %llu bytes per token",
            human_bytes(kv.bytes[0], a), (long long)kv.n_ctx,
            (unsigned long long)(kv.n_ctx > 0 ? kv.plain[0] / (uint64_t)kv.n_ctx : 0));
    if (kv.n_ring)
        fprintf(f, "; %lld of %lld layers keep a sliding window of %lld (%s without)",
                (long long)kv.n_ring, (long long)hp.n_layer, (long long)hp.n_swa,
                human_bytes(kv.plain[0], b));
    fprintf(f, "\n");
}

static void text_model(FILE *f, const ntp_gguf *g, const char *path)
{
    char hb[32];
    const char *arch = str_key(g, "general.architecture");
    fprintf(f, "file         %s (%s)\n", path, human_bytes(ntp_gguf_file_size(g), hb));
    fprintf(f,
            "gguf         version %" PRIu32 ", alignment %" PRIu64 ", %" PRId64
            " keys, data at offset %" PRIu64 "\n",
            ntp_gguf_version(g), ntp_gguf_alignment(g), ntp_gguf_n_kv(g), ntp_gguf_data_offset(g));
    uint32_t ft = 0;
    const char *ftn =
        ntp_gguf_get_u32(g, "general.file_type", &ft) == NTP_OK ? ntp__file_type_name(ft) : NULL;
    fprintf(f, "architecture %s%s\n", arch ? arch : "(none)",
            arch && ntp__arch_find(arch) ? "" : " (numatp cannot run it)");
    if (ftn)
        fprintf(f, "file type    %s (%" PRIu32 ")\n", ftn, ft);
    if (arch && ntp__arch_find(arch))
        text_kv(f, path);
    fprintf(f, "general\n");
    text_keys(f, g, "general.");
    if (arch) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "%s.", arch);
        fprintf(f, "hyper-parameters\n");
        text_keys(f, g, prefix);
    }
    text_tokenizer(f, g);
    text_tensors(f, g);
}

/* The CPU kernel ISA a device would use here (NTP_ISA honoured), or why none. */
static const char *kernel_isa(void)
{
    struct ntp_kernels k;
    return ntp__kernels_init(&k, NULL) == NTP_OK ? k.isa : ntp_last_error();
}

/* GPUs for hybrid offload: one line each, or why there are none. */
static void gpu_lines(FILE *f, bool json)
{
    char desc[256];
    const int n = ntp_cuda_device_count();
    if (json)
        fprintf(f, ", \"cuda_compiled\": %s, \"gpus\": [", ntp_cuda_compiled() ? "true" : "false");
    for (int i = 0; i < (n ? n : 1); i++) {
        const bool ok = ntp_cuda_device_desc(i, desc, sizeof desc) == NTP_OK;
        if (json && ok) {
            fputs(i ? ", " : "", f);
            ntp_cli_json_str(f, desc);
        } else if (!json) {
            fprintf(f, "gpu          %s%s\n", ok ? "" : "none: ", desc);
        }
    }
    if (json)
        fputs("]", f);
}

static void text_machine(FILE *f, const ntp_topology *t)
{
    char hb[32];
    fprintf(f, "machine      %d NUMA node%s, last-level cache %s\n", ntp_topology_n_nodes(t),
            ntp_topology_n_nodes(t) == 1 ? "" : "s", human_bytes(ntp_topology_llc_bytes(t), hb));
    for (int i = 0; i < ntp_topology_n_nodes(t); i++)
        fprintf(f, "  node %-3d   %d cores, %d hardware threads, %s\n",
                ntp_topology_node_os_index(t, i), ntp_topology_node_cores(t, i),
                ntp_topology_node_pus(t, i), human_bytes(ntp_topology_node_memory(t, i), hb));
    fprintf(f, "kernels      %s\n", kernel_isa());
    char blas[96];
    const char *hint = ntp__cpu_blas_desc(blas, sizeof blas, kernel_isa());
    if (hint)
        fprintf(f, "blas         %s (older than this CPU: set OPENBLAS_CORETYPE=%s)\n", blas, hint);
    else
        fprintf(f, "blas         %s\n", blas);
    gpu_lines(f, false);
}

/* --------------------------------------------------------------- json */

/* The keys with prefix as one object, the prefix removed from their names. */
static void json_keys(FILE *f, const ntp_gguf *g, const char *prefix)
{
    const size_t skip = strlen(prefix);
    bool first = true;
    fputc('{', f);
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++) {
        const char *key = ntp_gguf_kv_key(g, i);
        if (!has_prefix(key, prefix))
            continue;
        fputs(first ? "" : ", ", f);
        first = false;
        ntp_cli_json_str(f, key + skip);
        fputs(": ", f);
        put_value(f, ntp_gguf_kv_value(g, i), true);
    }
    fputc('}', f);
}

static void json_tokenizer(FILE *f, const ntp_gguf *g)
{
    const char *model = str_key(g, "tokenizer.ggml.model");
    const char *pre = str_key(g, "tokenizer.ggml.pre");
    if (model == NULL) {
        fputs("null", f);
        return;
    }
    fputs("{\"model\": ", f);
    ntp_cli_json_str(f, model);
    fputs(", \"pre\": ", f);
    ntp_cli_json_str(f, pre);
    fprintf(f, ", \"n_tokens\": %" PRId64 ", \"n_merges\": %" PRId64 ", \"special\": {",
            arr_len(g, "tokenizer.ggml.tokens"), arr_len(g, "tokenizer.ggml.merges"));
    bool first = true;
    for (int64_t i = 0; i < ntp_gguf_n_kv(g); i++) {
        const char *key = ntp_gguf_kv_key(g, i);
        if (!is_special_id_key(key))
            continue;
        fputs(first ? "" : ", ", f);
        first = false;
        ntp_cli_json_strn(f, key + 15, strlen(key) - 15 - 9);
        fputs(": ", f);
        put_value(f, ntp_gguf_kv_value(g, i), true);
    }
    fputs("}}", f);
}

static void json_tensors(FILE *f, const ntp_gguf *g)
{
    fputc('[', f);
    for (int64_t i = 0; i < ntp_gguf_n_tensors(g); i++) {
        const ntp_gguf_tensor *t = ntp_gguf_tensor_at(g, i);
        fputs(i ? ",\n    {\"name\": " : "\n    {\"name\": ", f);
        ntp_cli_json_str(f, t->name);
        fprintf(f, ", \"type\": \"%s\", \"shape\": [", ntp_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++)
            fprintf(f, d ? ", %" PRId64 : "%" PRId64, t->ne[d]);
        fprintf(f, "], \"offset\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", t->offset, t->size);
    }
    fputs(ntp_gguf_n_tensors(g) ? "\n  ]" : "]", f);
}

static void json_model(FILE *f, const ntp_gguf *g, const char *path)
{
    const char *arch = str_key(g, "general.architecture");
    struct tensor_totals tt = tensor_totals(g);
    fputs("  \"file\": ", f);
    ntp_cli_json_str(f, path);
    fprintf(f,
            ",\n  \"file_size\": %" PRIu64 ",\n  \"gguf\": {\"version\": %" PRIu32
            ", \"alignment\": %" PRIu64 ", \"n_kv\": %" PRId64 ", \"n_tensors\": %" PRId64
            ", \"data_offset\": %" PRIu64 "},\n  \"architecture\": ",
            ntp_gguf_file_size(g), ntp_gguf_version(g), ntp_gguf_alignment(g), ntp_gguf_n_kv(g),
            ntp_gguf_n_tensors(g), ntp_gguf_data_offset(g));
    ntp_cli_json_str(f, arch);
    uint32_t ft = 0;
    const char *ftn =
        ntp_gguf_get_u32(g, "general.file_type", &ft) == NTP_OK ? ntp__file_type_name(ft) : NULL;
    fprintf(f, ",\n  \"supported\": %s,\n  \"file_type\": ",
            arch && ntp__arch_find(arch) ? "true" : "false");
    if (ftn)
        fprintf(f, "{\"id\": %" PRIu32 ", \"name\": \"%s\"}", ft, ftn);
    else
        fputs("null", f);
    fputs(",\n  \"general\": ", f);
    json_keys(f, g, "general.");
    fputs(",\n  \"hparams\": ", f);
    if (arch) {
        char prefix[128];
        snprintf(prefix, sizeof prefix, "%s.", arch);
        json_keys(f, g, prefix);
    } else {
        fputs("{}", f);
    }
    fputs(",\n  \"tokenizer\": ", f);
    json_tokenizer(f, g);
    fprintf(f, ",\n  \"n_params\": %" PRIu64 ",\n  \"tensor_bytes\": %" PRIu64 ",\n  \"tensors\": ",
            tt.params, tt.bytes);
    json_tensors(f, g);
    fputs(",\n", f);
}

static void json_machine(FILE *f, const ntp_topology *t)
{
    fprintf(f, "  \"machine\": {\"kernel_isa\": \"%s\", \"llc_bytes\": %" PRIu64 ", \"nodes\": [",
            kernel_isa(), ntp_topology_llc_bytes(t));
    for (int i = 0; i < ntp_topology_n_nodes(t); i++)
        fprintf(f, "%s{\"os_index\": %d, \"cores\": %d, \"pus\": %d, \"memory\": %" PRIu64 "}",
                i ? ", " : "", ntp_topology_node_os_index(t, i), ntp_topology_node_cores(t, i),
                ntp_topology_node_pus(t, i), ntp_topology_node_memory(t, i));
    char blas[96];
    const char *hint = ntp__cpu_blas_desc(blas, sizeof blas, kernel_isa());
    fputs("], \"blas\": ", f);
    ntp_cli_json_str(f, blas);
    fputs(", \"blas_coretype_hint\": ", f);
    ntp_cli_json_str(f, hint);
    gpu_lines(f, true);
    fputs("}\n", f);
}

/* ------------------------------------------------------------ command */

int ntp_cli_info(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false, help = false;
    const struct ntp_cli_opt opts[] = {
        {"--model", "-m", NTP_CLI_STR, .dst = &path},
        {"--json", NULL, NTP_CLI_FLAG, .dst = &json},
        {"--help", "-h", NTP_CLI_FLAG, .dst = &help},
        {NULL},
    };
    const int rc =
        ntp_cli_parse("info", argc, argv, (const struct ntp_cli_opt *const[]){opts, NULL});
    if (rc != 0 || help)
        return rc != 0 ? rc : (usage(stdout), 0);
    ntp_gguf *g = NULL;
    if (path && ntp_gguf_open(path, &g) != NTP_OK) {
        fprintf(stderr, "numatp info: %s\n", ntp_last_error());
        return 1;
    }
    ntp_topology *topo = NULL;
    if (ntp_topology_detect(&topo) != NTP_OK) {
        fprintf(stderr, "numatp info: %s\n", ntp_last_error());
        ntp_gguf_free(g);
        return 1;
    }
    if (json) {
        fputs("{\n", stdout);
        if (g)
            json_model(stdout, g, path);
        json_machine(stdout, topo);
        fputs("}\n", stdout);
    } else {
        if (g)
            text_model(stdout, g, path);
        text_machine(stdout, topo);
    }
    ntp_topology_free(topo);
    ntp_gguf_free(g);
    return 0;
}
