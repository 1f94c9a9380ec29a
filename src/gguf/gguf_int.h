/*
 * gguf_int.h - what the GGUF reader, its accessors and the writer share: the
 * layout of the parsed handle, the fixed sizes of metadata value types and the
 * limits both sides enforce. Not a public header.
 */
#ifndef NTP_GGUF_INT_H
#define NTP_GGUF_INT_H

#include "core/core.h"

#include <stddef.h>
#include <stdint.h>

#define NTP_GGUF_MAGIC             0x46554747u /* "GGUF" read as a little-endian uint32 */
#define NTP_GGUF_DEFAULT_ALIGNMENT 32
#define NTP_GGUF_MAX_DIMS          4
/*
 * Arrays may nest, but a real file never goes beyond two levels; the limit
 * keeps recursion (parse, copy, free) bounded on hostile input.
 */
#define NTP_GGUF_MAX_DEPTH 8

/* Bytes a scalar value of GGUF type t occupies in a file; 0 for STRING, ARRAY or unknown. */
size_t ntp__gguf_scalar_size(int t);

/* One key/value pair of a parsed file. */
struct ntp_gguf_kv {
    const char *key;      /* NUL-terminated copy in the handle's arena */
    uint64_t key_len;     /* bytes of key, terminator excluded (keys may hold NUL bytes) */
    ntp_gguf_value value; /* strings and array elements live in the arena too */
};

/* One block of the arena that holds every string and array of a parsed file. */
struct ntp_gguf_chunk {
    struct ntp_gguf_chunk *next; /* older chunk, or NULL */
    size_t used;                 /* bytes of data[] handed out */
    size_t cap;                  /* bytes of data[] */
    max_align_t data[];          /* the storage itself */
};

/*
 * Open-addressing hash index from a name (key or tensor name) to its
 * position. slots[h] holds position + 1, 0 marks an empty slot.
 */
struct ntp_gguf_index {
    uint32_t *slots; /* mask + 1 entries, malloc'd; NULL when there is nothing to index */
    uint64_t mask;   /* capacity - 1; capacity is a power of two, at least twice the count */
};

struct ntp_gguf {
    const uint8_t *buf;             /* the parsed bytes: caller's buffer or our mapping */
    uint64_t size;                  /* bytes of the file (of buf, unless read without mapping) */
    void *map;                      /* mmap of the file for ntp_gguf_open, else NULL */
    int fd;                         /* the file read without mapping it, else -1 */
    int guard;                      /* slot of the SIGBUS guard watching map, else -1 */
    uint32_t version;               /* 2 or 3 */
    uint64_t alignment;             /* general.alignment or 32; a power of two */
    uint64_t data_offset;           /* start of the tensor data section in buf */
    int64_t n_kv;                   /* entries of kv */
    struct ntp_gguf_kv *kv;         /* n_kv pairs in file order, malloc'd */
    int64_t n_tensors;              /* entries of tensors */
    ntp_gguf_tensor *tensors;       /* n_tensors infos in file order, malloc'd */
    struct ntp_gguf_index kv_index; /* key -> position in kv */
    struct ntp_gguf_index t_index;  /* tensor name -> position in tensors */
    struct ntp_gguf_chunk *arena;   /* newest chunk first; freed with the handle */
};

/*
 * Build the index of the keys (tensors false) or of the tensor names. On
 * NTP_E_DUPLICATE, *first and *second are the positions of the two equal
 * names and no message is set (the caller words it); NTP_E_NOMEM sets one.
 */
ntp_status ntp__gguf_index_build(ntp_gguf *g, bool tensors, int64_t *first, int64_t *second);

/*
 * Parse the first len bytes of a GGUF of file_size bytes (len <= file_size):
 * the metadata must lie within buf; tensor data is checked against file_size.
 * with_data: buf is the whole file and the tensors' data pointers point into
 * it; otherwise they are NULL (the data is read from the file).
 */
ntp_status ntp__gguf_parse_part(const void *buf, size_t len, uint64_t file_size, bool with_data,
                                ntp_gguf **out);

/* What a file of st_mode mode is, for messages: "a FIFO", "a directory", ... */
const char *ntp__gguf_file_kind(unsigned mode);

#endif /* NTP_GGUF_INT_H */
