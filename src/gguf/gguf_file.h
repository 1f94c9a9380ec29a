/*
 * gguf_file.h - GGUF files for the model layer: opening one with or without
 * mapping it, reading tensor data either way, surviving a mapped file that
 * shrinks while it is read, and whether a path may be written.
 */
#ifndef NTP_GGUF_FILE_H
#define NTP_GGUF_FILE_H

#include "ntp.h"

/*
 * Open the GGUF file at path: mapped (map true, as ntp_gguf_open), or with
 * only its metadata read into memory and the tensors' data pointers NULL,
 * their bytes read on demand by ntp__gguf_read. Anything but a regular file
 * is refused before it could block (a FIFO, a device).
 */
ntp_status ntp__gguf_open_file(const char *path, bool map, ntp_gguf **out);

/*
 * Copy n bytes at byte off of tensor t's data into dst: from the mapping, or
 * with checked reads of the file. NTP_E_IO when the file has shrunk.
 */
ntp_status ntp__gguf_read(const ntp_gguf *g, const ntp_gguf_tensor *t, uint64_t off, void *dst,
                          size_t n);

/*
 * FNV-1a hash of the file's header (magic, metadata, tensor infos: every
 * byte before the data section) into *out, from the mapping or read from
 * the file. Two processes compare it to know they opened the same model.
 */
ntp_status ntp__gguf_header_hash(const ntp_gguf *g, uint64_t *out);

/*
 * A guard over g's mapping while it is read (a no-op for other handles):
 * while it is on, a read of a page the file no longer has, by any thread,
 * reads zeros instead of raising SIGBUS, and the guard remembers it. begin
 * installs a process-wide SIGBUS handler on the first guard (other faults go
 * to the handler it replaced); end, also done by ntp_gguf_free, puts that
 * handler back after the last. check: NTP_E_IO "the file changed while it
 * was being read" once such a read happened, so the reader drops what it read.
 */
void ntp__gguf_guard_begin(ntp_gguf *g);
ntp_status ntp__gguf_guard_check(const ntp_gguf *g);
void ntp__gguf_guard_end(ntp_gguf *g);

/*
 * Whether ntp_gguf_writer_write_file may replace path: it does not exist, or
 * it is a regular file that is not read-only. Anything else (a device, a FIFO,
 * a symbolic link, a read-only file) is refused with NTP_E_IO saying what it
 * is, since renaming over it would replace it. The writer checks it again;
 * calling it first fails before the work of making the file.
 */
ntp_status ntp__gguf_check_target(const char *path);

/*
 * A new file beside path, "<path>.tmp.<pid>.<n>", created with O_EXCL: never
 * an existing file or a link someone left there, never the file of another
 * writer. tmp receives its name (size: strlen(path) + 40). The descriptor,
 * or -1 with errno set. Used by every writer that renames a finished file
 * over its target (the GGUF writer, perplexity's KL-divergence base).
 */
int ntp__create_temp(const char *path, char *tmp, size_t size);

#endif /* NTP_GGUF_FILE_H */
