/*
 * ntp.h - the public interface of numatp.
 *
 * numatp runs GGUF language models on multi-socket CPU servers, treating each
 * NUMA node as one tensor-parallel device. This is the only public header.
 *
 * Conventions (docs/architecture.md has the design behind them):
 *  - every fallible call returns ntp_status: 0 is success, negative is an error;
 *    ntp_status_str() names the code, ntp_last_error() gives the message of the
 *    last failing call on the calling thread (it names the file, key or tensor;
 *    an error inside a device's worker threads reaches the calling thread);
 *  - handles are opaque, made and freed in pairs; freeing NULL is a no-op;
 *  - the library never exits or aborts on bad input.
 *
 * Threads:
 *  - a model may be used from several threads at once: its accessors
 *    (ntp_model_*), ntp_tokenize, ntp_token_*, ntp_context_new and
 *    ntp_context_free;
 *  - a context belongs to one thread at a time: never call ntp_decode,
 *    ntp_get_logits, ntp_context_reset or the stats calls on one context from
 *    two threads at once;
 *  - two contexts on one model may decode from different threads at the same
 *    time. The model's devices run one decode at a time (each device has one
 *    thread team), so such calls take turns, each with the same result as
 *    alone; batching many sequences into one context is what makes them
 *    share the weight reads;
 *  - ntp_model_free only once every context on the model has been freed.
 */
#ifndef NTP_H
#define NTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */

#define NTP_VERSION_MAJOR 0
#define NTP_VERSION_MINOR 1
#define NTP_VERSION_PATCH 0

/* "0.1.0": the version of the library actually linked. */
const char *ntp_version(void);

/* ----------------------------------------------------------------- status */

/*
 * One list of status codes. X(name, value, description). Values are stable:
 * new codes are appended with new values.
 */
#define NTP_STATUS_LIST(X)                                                                         \
    X(NTP_OK, 0, "ok")                                                                             \
    X(NTP_E_INVALID_ARG, -1, "invalid argument")                                                   \
    X(NTP_E_NOMEM, -2, "out of memory")                                                            \
    X(NTP_E_IO, -3, "input/output error")                                                          \
    X(NTP_E_FORMAT, -4, "malformed file")                                                          \
    X(NTP_E_TRUNCATED, -5, "file truncated")                                                       \
    X(NTP_E_OVERFLOW, -6, "size or count out of range")                                            \
    X(NTP_E_UNSUPPORTED, -7, "unsupported")                                                        \
    X(NTP_E_NOT_FOUND, -8, "not found")                                                            \
    X(NTP_E_DUPLICATE, -9, "duplicate entry")                                                      \
    X(NTP_E_TYPE, -10, "wrong type")                                                               \
    X(NTP_E_DEVICE, -11, "device error")                                                           \
    X(NTP_E_INTERNAL, -12, "internal error")

typedef enum ntp_status {
#define NTP_X_ENUM(name, value, desc) name = value,
    NTP_STATUS_LIST(NTP_X_ENUM)
#undef NTP_X_ENUM
} ntp_status;

/* "NTP_E_FORMAT" etc.; "NTP_E_UNKNOWN" for a value outside the list. */
const char *ntp_status_str(ntp_status s);
/* "malformed file" etc. */
const char *ntp_status_desc(ntp_status s);
/*
 * The message of the last failing ntp_* call on this thread, e.g.
 * "model.gguf: tensor 'blk.0.attn_q.weight': data [1024, 2048) outside the file (1500 bytes)".
 * Empty string when no call has failed. Valid until the next ntp_* call on this thread.
 */
const char *ntp_last_error(void);

/* ------------------------------------------------------------ data types */

/*
 * Tensor element types. Values and block layouts are those of GGUF/ggml, so
 * files move between numatp and llama.cpp unchanged. Types ggml defines but
 * numatp cannot compute with are known by name and size (so `numatp info`
 * lists them) and rejected when a model is loaded.
 */
enum ntp_type {
    NTP_TYPE_F32 = 0,
    NTP_TYPE_F16 = 1,
    NTP_TYPE_Q4_0 = 2,
    NTP_TYPE_Q4_1 = 3,
    /* 4 and 5 were Q4_2/Q4_3, removed from ggml long ago. */
    NTP_TYPE_Q5_0 = 6,
    NTP_TYPE_Q5_1 = 7,
    NTP_TYPE_Q8_0 = 8,
    NTP_TYPE_Q8_1 = 9,
    NTP_TYPE_Q2_K = 10,
    NTP_TYPE_Q3_K = 11,
    NTP_TYPE_Q4_K = 12,
    NTP_TYPE_Q5_K = 13,
    NTP_TYPE_Q6_K = 14,
    NTP_TYPE_Q8_K = 15,
    NTP_TYPE_IQ2_XXS = 16,
    NTP_TYPE_IQ2_XS = 17,
    NTP_TYPE_IQ3_XXS = 18,
    NTP_TYPE_IQ1_S = 19,
    NTP_TYPE_IQ4_NL = 20,
    NTP_TYPE_IQ3_S = 21,
    NTP_TYPE_IQ2_S = 22,
    NTP_TYPE_IQ4_XS = 23,
    NTP_TYPE_I8 = 24,
    NTP_TYPE_I16 = 25,
    NTP_TYPE_I32 = 26,
    NTP_TYPE_I64 = 27,
    NTP_TYPE_F64 = 28,
    NTP_TYPE_IQ1_M = 29,
    NTP_TYPE_BF16 = 30,
    /* 31..33 were Q4_0_4_4/Q4_0_4_8/Q4_0_8_8, removed from ggml. */
    NTP_TYPE_TQ1_0 = 34,
    NTP_TYPE_TQ2_0 = 35,
    /* 36..38 were IQ4_NL_4_4/IQ4_NL_4_8/IQ4_NL_8_8, removed from ggml. */
    NTP_TYPE_MXFP4 = 39,
    NTP_TYPE_COUNT = 40,
};

/* Static facts about a type, from one table. */
typedef struct ntp_type_traits {
    const char *name;    /* "Q4_K"; NULL for a value ggml never defined or removed */
    int64_t block_size;  /* elements per block (1 for plain types) */
    size_t type_size;    /* bytes per block */
    bool quantized;      /* block-quantized */
    bool supported;      /* numatp can quantize/dequantize/compute with it */
} ntp_type_traits;

/* Traits of a type; NULL when t is not a defined type. */
const ntp_type_traits *ntp_type_get_traits(int t);
/* Name of a type or "unknown". */
const char *ntp_type_name(int t);
/* Parse a type name ("q4_k", "Q8_0", "f16", case-insensitive); NTP_E_NOT_FOUND if unknown. */
ntp_status ntp_type_from_name(const char *name, enum ntp_type *out);
/*
 * Bytes of a row of n elements of type t. NTP_E_INVALID_ARG when n is not a
 * multiple of the block size, NTP_E_OVERFLOW when it does not fit in size_t.
 */
ntp_status ntp_type_row_size(enum ntp_type t, int64_t n, size_t *out);

/* ------------------------------------------------------------------ GGUF */

/* Metadata value types, as numbered in the GGUF specification. */
enum ntp_gguf_type {
    NTP_GGUF_UINT8 = 0,
    NTP_GGUF_INT8 = 1,
    NTP_GGUF_UINT16 = 2,
    NTP_GGUF_INT16 = 3,
    NTP_GGUF_UINT32 = 4,
    NTP_GGUF_INT32 = 5,
    NTP_GGUF_FLOAT32 = 6,
    NTP_GGUF_BOOL = 7,
    NTP_GGUF_STRING = 8,
    NTP_GGUF_ARRAY = 9,
    NTP_GGUF_UINT64 = 10,
    NTP_GGUF_INT64 = 11,
    NTP_GGUF_FLOAT64 = 12,
    NTP_GGUF_TYPE_COUNT = 13,
};

/* "uint32", "string", "array", ... or "unknown". */
const char *ntp_gguf_type_name(int t);

/*
 * One metadata value. Strings are NUL-terminated copies owned by the ntp_gguf
 * (len excludes the terminator; a string may itself contain NUL bytes, so use
 * len). Arrays hold their elements as values; nested arrays nest.
 */
typedef struct ntp_gguf_value {
    enum ntp_gguf_type type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        bool b;
        uint64_t u64;
        int64_t i64;
        double f64;
        struct {
            const char *data;
            uint64_t len;
        } str;
        struct {
            enum ntp_gguf_type type; /* element type */
            uint64_t len;
            const struct ntp_gguf_value *elems; /* len values */
        } arr;
    };
} ntp_gguf_value;

/* One tensor's description; the data is a view into the parsed buffer. */
typedef struct ntp_gguf_tensor {
    const char *name;    /* NUL-terminated, owned by the ntp_gguf */
    enum ntp_type type;
    uint32_t n_dims;     /* 1..4 */
    int64_t ne[4];       /* elements per dimension, ne[0] contiguous; unused dims are 1 */
    uint64_t offset;     /* bytes from the start of the data section */
    uint64_t size;       /* bytes of data */
    const void *data;    /* start of the data inside the buffer or mapping */
} ntp_gguf_tensor;

typedef struct ntp_gguf ntp_gguf;

/*
 * Parse a whole GGUF file (v2 or v3) held in buf[0, len). Pure: reads nothing
 * but the buffer, and checks every read against len. The buffer must outlive
 * the handle (tensor data pointers point into it). On error *out is NULL and
 * ntp_last_error() says what was wrong and where (byte offset).
 */
ntp_status ntp_gguf_parse(const void *buf, size_t len, ntp_gguf **out);
/* Map the file read-only and parse it. Messages start with the path. */
ntp_status ntp_gguf_open(const char *path, ntp_gguf **out);
void ntp_gguf_free(ntp_gguf *g);

uint32_t ntp_gguf_version(const ntp_gguf *g);
/* Value of general.alignment, 32 by default. */
uint64_t ntp_gguf_alignment(const ntp_gguf *g);
/* Byte offset of the tensor data section from the start of the file. */
uint64_t ntp_gguf_data_offset(const ntp_gguf *g);
/* Size of the whole buffer or file. */
uint64_t ntp_gguf_file_size(const ntp_gguf *g);

int64_t ntp_gguf_n_kv(const ntp_gguf *g);
const char *ntp_gguf_kv_key(const ntp_gguf *g, int64_t i);
const ntp_gguf_value *ntp_gguf_kv_value(const ntp_gguf *g, int64_t i);
/* Index of key, or -1. */
int64_t ntp_gguf_find_key(const ntp_gguf *g, const char *key);
/* Value of key, or NULL. */
const ntp_gguf_value *ntp_gguf_get(const ntp_gguf *g, const char *key);

/*
 * Typed getters. NTP_E_NOT_FOUND when the key is missing, NTP_E_TYPE when its
 * type does not convert (integers convert between widths when the value fits;
 * ntp_gguf_get_f32 also accepts f64 and integers). Messages name the key.
 */
ntp_status ntp_gguf_get_u32(const ntp_gguf *g, const char *key, uint32_t *out);
ntp_status ntp_gguf_get_u64(const ntp_gguf *g, const char *key, uint64_t *out);
ntp_status ntp_gguf_get_i64(const ntp_gguf *g, const char *key, int64_t *out);
ntp_status ntp_gguf_get_f32(const ntp_gguf *g, const char *key, float *out);
ntp_status ntp_gguf_get_bool(const ntp_gguf *g, const char *key, bool *out);
ntp_status ntp_gguf_get_str(const ntp_gguf *g, const char *key, const char **out);
/* Array of the given element type (NTP_GGUF_TYPE_COUNT: any). */
ntp_status ntp_gguf_get_arr(const ntp_gguf *g, const char *key, enum ntp_gguf_type elem_type,
                            const ntp_gguf_value **out);

int64_t ntp_gguf_n_tensors(const ntp_gguf *g);
const ntp_gguf_tensor *ntp_gguf_tensor_at(const ntp_gguf *g, int64_t i);
/* Tensor by name, or NULL. */
const ntp_gguf_tensor *ntp_gguf_find_tensor(const ntp_gguf *g, const char *name);

/*
 * GGUF writer: collects metadata and tensors in memory, then writes a v3 file.
 * Keys and tensors keep their insertion order. Setting an existing key
 * replaces its value; adding a tensor name twice is NTP_E_DUPLICATE.
 */
typedef struct ntp_gguf_writer ntp_gguf_writer;

ntp_status ntp_gguf_writer_new(ntp_gguf_writer **out);
void ntp_gguf_writer_free(ntp_gguf_writer *w);

ntp_status ntp_gguf_writer_set_u32(ntp_gguf_writer *w, const char *key, uint32_t v);
ntp_status ntp_gguf_writer_set_i32(ntp_gguf_writer *w, const char *key, int32_t v);
ntp_status ntp_gguf_writer_set_u64(ntp_gguf_writer *w, const char *key, uint64_t v);
ntp_status ntp_gguf_writer_set_f32(ntp_gguf_writer *w, const char *key, float v);
ntp_status ntp_gguf_writer_set_bool(ntp_gguf_writer *w, const char *key, bool v);
ntp_status ntp_gguf_writer_set_str(ntp_gguf_writer *w, const char *key, const char *v);
/* Any value, nested arrays included (deep copy); used to copy keys between files. */
ntp_status ntp_gguf_writer_set_value(ntp_gguf_writer *w, const char *key,
                                     const ntp_gguf_value *v);
/* Array of n plain numbers of elem_type (not STRING or ARRAY) from data (copied). */
ntp_status ntp_gguf_writer_set_arr_data(ntp_gguf_writer *w, const char *key,
                                        enum ntp_gguf_type elem_type, const void *data,
                                        uint64_t n);
/* Array of n NUL-terminated strings (copied). */
ntp_status ntp_gguf_writer_set_arr_str(ntp_gguf_writer *w, const char *key,
                                       const char *const *strs, uint64_t n);
/* Alignment of tensor data (power of two); also written as general.alignment when not 32. */
ntp_status ntp_gguf_writer_set_alignment(ntp_gguf_writer *w, uint32_t alignment);

/*
 * Add a tensor. ne[0..n_dims) are its dimensions (ne[0] contiguous, a
 * multiple of the type's block size). data holds ntp_type_row_size(type, ne[0])
 * * ne[1] * ... bytes and is copied.
 */
ntp_status ntp_gguf_writer_add_tensor(ntp_gguf_writer *w, const char *name, enum ntp_type type,
                                      uint32_t n_dims, const int64_t *ne, const void *data);

/* Serialize to a malloc'd buffer (free with free()). */
ntp_status ntp_gguf_writer_to_buffer(const ntp_gguf_writer *w, void **buf, size_t *len);
/* Write to path (replaced atomically: written to path.tmp, then renamed). */
ntp_status ntp_gguf_writer_write_file(const ntp_gguf_writer *w, const char *path);

/* ---------------------------------------------------------- opaque handles */

/* A loaded model (weights sharded over devices); see the inference API. */
typedef struct ntp_model ntp_model;
/* A generation context: KV caches, scratch, sampler state. */
typedef struct ntp_context ntp_context;
/* The machine's NUMA nodes, their cores and caches (hwloc). */
typedef struct ntp_topology ntp_topology;

/* ---------------------------------------------------------------- topology */

ntp_status ntp_topology_detect(ntp_topology **out);
void ntp_topology_free(ntp_topology *t);
/* NUMA nodes (at least 1). */
int ntp_topology_n_nodes(const ntp_topology *t);
/* OS index of the i-th node. */
int ntp_topology_node_os_index(const ntp_topology *t, int i);
/* Physical cores and hardware threads of the i-th node. */
int ntp_topology_node_cores(const ntp_topology *t, int i);
int ntp_topology_node_pus(const ntp_topology *t, int i);
/* Local memory of the i-th node in bytes (0 if unknown). */
uint64_t ntp_topology_node_memory(const ntp_topology *t, int i);
/* Size of the last-level cache in bytes (0 if unknown). */
uint64_t ntp_topology_llc_bytes(const ntp_topology *t);

/* --------------------------------------------------------------- inference */

/*
 * Load a model, make a context, decode tokens, read logits:
 *
 *     ntp_model *m;  ntp_context *c;
 *     ntp_model_load("m.gguf", ntp_model_default_params(), &m);
 *     ntp_context_new(m, ntp_context_default_params(), &c);
 *     ntp_decode(c, tokens, n, false);          // prompt, as one batch
 *     const float *logits = ntp_get_logits(c, -1);
 *
 * Params structs come from ntp_*_default_params() and are passed by value;
 * fields are only ever appended.
 */

/* Called while a model loads with the fraction done in [0, 1]; return false to cancel. */
typedef bool (*ntp_progress_fn)(float fraction, void *user);

/*
 * How a mixture of experts is split over the CPU devices (docs/architecture.md
 * "Mixture of experts"; ntp_model_params.moe_split).
 */
enum ntp_moe_split {
    NTP_MOE_SPLIT_FEATURES = 0, /* every device a slice of every expert's width (default) */
    NTP_MOE_SPLIT_EXPERTS = 1,  /* whole experts per device */
};

typedef struct ntp_model_params {
    int32_t n_threads;        /* threads in all (split over the devices); <= 0: one per core */
    uint64_t memory_limit;    /* bytes the weights may take; 0: the system's available memory */
    ntp_progress_fn progress; /* NULL: no progress reports */
    void *progress_user;      /* passed to progress */
    const char *isa;          /* kernel ISA ("ref"); NULL: the best this CPU runs (NTP_ISA env) */
    /*
     * Hybrid offload: the first n_gpu_layers transformer blocks run on CUDA
     * GPU 0, the rest on the CPU devices (0: none; more than the model has:
     * all). The token embedding is looked up on the host, so with the first
     * blocks on the GPU the hidden state crosses PCIe once per batch on the
     * way in and once at the GPU/CPU boundary. Without a GPU loading fails
     * with NTP_E_DEVICE (NTP_E_UNSUPPORTED in a build without CUDA); with
     * too little GPU memory, NTP_E_NOMEM saying how many layers fit.
     */
    int32_t n_gpu_layers;
    bool gpu_output; /* the final norm and output head on the GPU too (needs n_gpu_layers > 0) */
    /*
     * A mixture of experts with n_gpu_layers > 0: the GPU takes only the
     * attention half of its blocks, and the CPU devices keep every block's
     * FFN (router and experts, most of the model's bytes), so a small GPU
     * speeds up a large MoE. No effect (a warning) on a dense model or
     * without GPU layers.
     */
    bool cpu_moe;
    /*
     * Tensor parallelism (docs/architecture.md "Threads and memory"). tp: CPU devices; 0
     * (auto): one per NUMA node with cores; more than the nodes: the nodes'
     * cores are split into virtual devices (the log says so).
     */
    int32_t tp;
    const char *numa_nodes;     /* OS node numbers to use ("0,1", "0-3"); NULL: every node */
    int32_t threads_per_device; /* 0: n_threads / devices if n_threads is set, else one per core */
    bool smt;                   /* also run threads on the other hardware threads of a core */
    /*
     * true (the default): map the file and copy the weights out of the
     * mapping; a file that shrinks meanwhile fails the load with NTP_E_IO
     * ("the file changed while it was being read") instead of SIGBUS, which
     * is caught for the time of the copy. false (--no-mmap): never map it;
     * read the metadata and the weights with read calls.
     */
    bool use_mmap;
    /*
     * A mixture of experts' split over the tensor-parallel devices (enum
     * ntp_moe_split); either way no expert weight is held twice and a
     * token's partial outputs meet in the FFN's all-reduce. Dense models
     * ignore it.
     */
    int32_t moe_split;
    /*
     * Pipeline parallelism across the processes of an mpirun: pp stages of
     * consecutive blocks, one per process, the hidden state crossing once
     * per stage boundary (pp must equal the number of processes). 0 or 1:
     * none; under mpirun the tensor-parallel group then spans the processes.
     */
    int32_t pp;
} ntp_model_params;

ntp_model_params ntp_model_default_params(void);

/*
 * Read the GGUF file at path, check every tensor against the architecture,
 * and copy the weights into the devices' memory (the file is unmapped
 * afterwards). Errors name the file and the key or tensor: NTP_E_UNSUPPORTED
 * for an unknown architecture or a tensor type numatp cannot compute with,
 * NTP_E_NOT_FOUND for a missing key or tensor, NTP_E_FORMAT for a wrong
 * shape, NTP_E_NOMEM when the weights do not fit in memory (with the sizes).
 */
ntp_status ntp_model_load(const char *path, ntp_model_params params, ntp_model **out);
void ntp_model_free(ntp_model *m);

const char *ntp_model_arch(const ntp_model *m);   /* "llama", "qwen2", "qwen3" */
int32_t ntp_model_n_vocab(const ntp_model *m);
int32_t ntp_model_n_ctx_train(const ntp_model *m);
int32_t ntp_model_n_embd(const ntp_model *m);
int32_t ntp_model_n_layer(const ntp_model *m);
uint64_t ntp_model_weight_bytes(const ntp_model *m); /* bytes of weights held by the devices */
/* "cpu node -1, 2 threads, ref kernels" etc., one line per device joined by "; ". */
const char *ntp_model_device_desc(const ntp_model *m);
/* Devices the model runs on. */
int32_t ntp_model_n_devices(const ntp_model *m);
/* How the CPU devices were chosen: "tp 2: one device per NUMA node (2 of 2); dev 0 node 0 ...". */
const char *ntp_model_layout_desc(const ntp_model *m);

/*
 * Tokenize text[0, len) with the model's tokenizer. add_special: add BOS/EOS
 * as the model's metadata asks; parse_special: recognize control tokens like
 * "<|im_start|>" in the text. Writes at most cap ids; *n_out is the number of
 * tokens the text has (NTP_E_OVERFLOW when that is more than cap).
 */
ntp_status ntp_tokenize(const ntp_model *m, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t *tokens, int32_t cap, int32_t *n_out);
/*
 * The bytes of one token (not NUL-terminated; may be part of a UTF-8
 * character). Writes at most cap bytes; *len_out is the full length
 * (NTP_E_OVERFLOW when more than cap). Control tokens give no bytes.
 */
ntp_status ntp_token_to_piece(const ntp_model *m, int32_t token, char *buf, size_t cap,
                              size_t *len_out);
int32_t ntp_token_bos(const ntp_model *m); /* -1 when the model has none */
int32_t ntp_token_eos(const ntp_model *m); /* -1 when the model has none */
bool ntp_token_is_eog(const ntp_model *m, int32_t token); /* end of generation (EOS, EOT...) */
bool ntp_model_add_bos(const ntp_model *m); /* whether tokenizing with add_special adds BOS */

typedef struct ntp_context_params {
    int32_t n_ctx;          /* positions of the KV cache (of each sequence); 0: min(training
                               context, 4096) */
    int32_t n_batch;        /* most tokens computed at once (longer inputs are split); 512 */
    enum ntp_type kv_type;  /* KV cache element type of K and V: NTP_TYPE_F16 (default),
                               NTP_TYPE_F32, or NTP_TYPE_Q8_0 / NTP_TYPE_Q4_0 (blocks of 32,
                               as llama.cpp's -ctk/-ctv; head widths must be multiples of
                               32; CPU devices only: NTP_E_UNSUPPORTED otherwise) */
    int32_t n_seq;          /* sequences held, each with its own KV cache of n_ctx positions,
                               decoded together by ntp_decode_seqs (0: one) */
} ntp_context_params;

ntp_context_params ntp_context_default_params(void);

/* A context (KV cache and scratch) on the model's devices; the model must outlive it. */
ntp_status ntp_context_new(ntp_model *m, ntp_context_params params, ntp_context **out);
void ntp_context_free(ntp_context *c);

/*
 * Run n tokens of sequence 0 at positions pos .. pos + n - 1 (pos: tokens
 * decoded since the last reset), in batches of n_batch, and append them to
 * the KV cache. all_logits: keep the logits of every one of the n tokens;
 * otherwise only the last one's. NTP_E_OVERFLOW when pos + n exceeds n_ctx
 * (nothing is computed), NTP_E_INVALID_ARG for a token id outside the
 * vocabulary.
 */
ntp_status ntp_decode(ntp_context *c, const int32_t *tokens, int32_t n, bool all_logits);
/*
 * The same for tokens of several sequences at once (continuous batching):
 * token i belongs to sequence seq[i] (0 .. n_seq - 1) and goes at that
 * sequence's next position, a sequence's tokens in the order given, each
 * attending to its own sequence only. The tokens run as one batch (n_batch
 * at a time), so every weight is read once for all of them. all_logits:
 * keep every token's logits; otherwise those of each sequence's last token
 * in the call. NTP_E_OVERFLOW when a sequence would pass n_ctx, and
 * NTP_E_INVALID_ARG for a bad token or sequence (nothing is computed).
 */
ntp_status ntp_decode_seqs(ntp_context *c, const int32_t *tokens, const int32_t *seq, int32_t n,
                           bool all_logits);
/*
 * Logits (n_vocab floats) of the i-th token of the last ntp_decode or
 * ntp_decode_seqs call; i = -1 is the last token. NULL when that row was not
 * kept. Valid until the next decode or reset.
 */
const float *ntp_get_logits(const ntp_context *c, int32_t i);
int32_t ntp_context_pos(const ntp_context *c);   /* tokens in sequence 0's KV cache */
int32_t ntp_context_n_ctx(const ntp_context *c); /* capacity of each sequence's KV cache */
int32_t ntp_context_n_seq(const ntp_context *c); /* sequences the context holds */
/* Tokens in sequence seq's KV cache; -1 when there is no such sequence. */
int32_t ntp_context_seq_pos(const ntp_context *c, int32_t seq);
/* Forget every position of every sequence (each starts again at position 0). */
void ntp_context_reset(ntp_context *c);
/* Forget sequence seq's positions only (no-op for no such sequence). */
void ntp_context_seq_reset(ntp_context *c, int32_t seq);

/*
 * --verify-numa: ask the kernel (move_pages) where every page of every
 * device's weights and of its KV cache and scratch in context c (NULL: the
 * weights only) is, and write a table into buf (cap bytes, NUL-terminated;
 * one line per device: its node, bytes on that node / bytes checked).
 * NTP_E_DEVICE when any page is on another node than its device's.
 */
ntp_status ntp_model_verify_numa(const ntp_model *m, const ntp_context *c, char *buf, size_t cap);

/* Where a context's time went since it was made or its stats were reset. */
typedef struct ntp_context_stats {
    int64_t n_decode;     /* ntp_decode calls */
    int64_t n_tokens;     /* tokens they computed */
    double t_decode;      /* seconds inside ntp_decode */
    double t_allreduce;   /* seconds the first device's first thread spent in all-reduces,
                             waiting for the other devices included (0 with one device) */
    int64_t n_allreduce;  /* all-reduce calls (two per layer per batch with tp > 1) */
    double t_pp;          /* seconds handing the hidden state between pipeline stages and
                             sharing the logits (mpirun --pp), waiting included */
} ntp_context_stats;

void ntp_context_get_stats(const ntp_context *c, ntp_context_stats *out);
void ntp_context_reset_stats(ntp_context *c);

/* ----------------------------------------------------------------- devices */

/* Whether this build has the CUDA backend (meson option cuda; auto: on when nvcc was found). */
bool ntp_cuda_compiled(void);
/*
 * CUDA GPUs usable now: 0 when the build has no CUDA, when there is no
 * driver or no GPU. ntp_model_params.n_gpu_layers needs at least one.
 */
int32_t ntp_cuda_device_count(void);
/*
 * One line about GPU i into buf, e.g. "cuda0: NVIDIA H100 80GB HBM3, sm_90,
 * 79.1 GiB, 78.6 GiB free". NTP_E_DEVICE when there is none (buf then says
 * why: no CUDA in the build, no driver, no GPU).
 */
ntp_status ntp_cuda_device_desc(int32_t i, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* NTP_H */
