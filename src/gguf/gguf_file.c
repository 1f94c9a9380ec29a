/*
 * gguf_file.c - opening GGUF files, mapped (ntp_gguf_open) or with only their
 * metadata read (the loader's --no-mmap), reading tensor data either way, and
 * the SIGBUS guard that keeps a file shrinking under its mapping from killing
 * the process.
 */
#include "gguf/gguf_file.h"
#include "gguf/gguf_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHANGED "the file changed while it was being read"

/* Bytes first read for the metadata of an unmapped file; doubled while the metadata runs past. */
#define META_FIRST_READ ((size_t)1 << 20)

/* ------------------------------------------------------------ the guard */

/*
 * The copies out of a mapping run on the devices' threads (each node's team
 * touches its own pages first), so no per-thread jump buffer could catch the
 * fault. Instead a process-wide handler finds the watched mapping the fault
 * lies in, maps zeros over the rest of it and lets the access run again; the
 * reader checks the slot afterwards and throws away what it read.
 */
#define GUARD_SLOTS 64

struct guard_slot {
    _Atomic uintptr_t begin, end; /* the mapping, page-rounded; 0, 0 when free */
    atomic_int hit;               /* a read fell past the end of the file */
};

static struct guard_slot slots[GUARD_SLOTS];
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static int guards_on;             /* slots in use; our handler is installed while > 0 */
static struct sigaction prev_bus; /* the handler ours replaced */
static uintptr_t page_size;       /* read once outside the handler (sysconf is not signal-safe) */

/* A fault that is not ours goes to the handler we replaced, or ends the process as before. */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
    if ((prev_bus.sa_flags & SA_SIGINFO) && prev_bus.sa_sigaction != NULL)
        prev_bus.sa_sigaction(sig, si, uc);
    else if (prev_bus.sa_handler != SIG_DFL && prev_bus.sa_handler != SIG_IGN)
        prev_bus.sa_handler(sig);
    else
        signal(SIGBUS, SIG_DFL); /* the access runs again and now raises the default action */
}

/* Zeros from the faulting page to the end of the mapping: one fault, not one per page. */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    const uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < GUARD_SLOTS; i++) {
        const uintptr_t b = atomic_load(&slots[i].begin), e = atomic_load(&slots[i].end);
        if (a < b || a >= e)
            continue;
        const uintptr_t from = a & ~(page_size - 1);
        if (mmap((void *)from, e - from, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
                 0) != MAP_FAILED) {
            atomic_store(&slots[i].hit, 1);
            return;
        }
    }
    pass_on(sig, si, uc);
}

/* Watch [p, p + n); the slot, or -1 when none is free (the mapping is then read unguarded). */
static int guard_on(const void *p, size_t n)
{
    int slot = -1;
    pthread_mutex_lock(&guard_lock);
    if (guards_on == 0) {
        page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, &prev_bus) != 0)
            goto out;
    }
    for (int i = 0; i < GUARD_SLOTS && slot < 0; i++)
        if (atomic_load(&slots[i].end) == 0) {
            atomic_store(&slots[i].hit, 0);
            atomic_store(&slots[i].begin, (uintptr_t)p);
            atomic_store(&slots[i].end, ((uintptr_t)p + n + page_size - 1) & ~(page_size - 1));
            slot = i;
            guards_on++;
        }
out:
    pthread_mutex_unlock(&guard_lock);
    return slot;
}

static void guard_off(int slot)
{
    pthread_mutex_lock(&guard_lock);
    atomic_store(&slots[slot].end, 0);
    atomic_store(&slots[slot].begin, 0);
    if (--guards_on == 0)
        sigaction(SIGBUS, &prev_bus, NULL);
    pthread_mutex_unlock(&guard_lock);
}

static ntp_status guard_check(int slot)
{
    if (slot >= 0 && atomic_load(&slots[slot].hit))
        return ntp__error(NTP_E_IO, CHANGED);
    return NTP_OK;
}

void ntp__gguf_guard_begin(ntp_gguf *g)
{
    if (g->map != NULL && g->guard < 0)
        g->guard = guard_on(g->map, (size_t)g->size);
}

ntp_status ntp__gguf_guard_check(const ntp_gguf *g)
{
    return guard_check(g->guard);
}

void ntp__gguf_guard_end(ntp_gguf *g)
{
    if (g->guard >= 0)
        guard_off(g->guard);
    g->guard = -1;
}

/* ---------------------------------------------------------------- files */

/* n bytes at byte off of the file; a file that ends early has changed under us. */
static ntp_status read_at(int fd, void *dst, size_t n, uint64_t off)
{
    uint8_t *p = dst;
    while (n > 0) {
        const ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ntp__error(NTP_E_IO, "read error at byte %llu: %s", (unsigned long long)off,
                              strerror(errno));
        if (r == 0)
            return ntp__error(NTP_E_IO, CHANGED " (it ends at byte %llu, %zu bytes short)",
                              (unsigned long long)off, n);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return NTP_OK;
}

static ntp_status open_mapped(int fd, uint64_t size, ntp_gguf **out)
{
    void *map = NULL;
    /* mmap refuses length 0; an empty file still goes through parse for its message. */
    if (size > 0 && (map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
        return ntp__error(NTP_E_IO, "cannot map %llu bytes: %s", (unsigned long long)size,
                          strerror(errno));
    const int slot = map ? guard_on(map, (size_t)size) : -1; /* the parse reads the mapping */
    ntp_status s = ntp__gguf_parse_part(map, (size_t)size, size, true, out);
    if (s == NTP_OK && (s = guard_check(slot)) != NTP_OK)
        ntp_gguf_free(*out);
    if (slot >= 0)
        guard_off(slot);
    if (s != NTP_OK) {
        *out = NULL;
        if (map)
            munmap(map, (size_t)size);
        return s;
    }
    (*out)->map = map;
    return NTP_OK;
}

/* Only the metadata, read and parsed in a part doubled until it holds all of it. */
static ntp_status open_unmapped(int fd, uint64_t size, ntp_gguf **out)
{
    size_t len = size < META_FIRST_READ ? (size_t)size : META_FIRST_READ;
    for (;;) {
        uint8_t *buf = malloc(len > 0 ? len : 1);
        if (buf == NULL)
            return ntp__error(NTP_E_NOMEM, "no memory for %zu bytes of metadata", len);
        ntp_status s = read_at(fd, buf, len, 0);
        if (s == NTP_OK)
            s = ntp__gguf_parse_part(buf, len, size, false, out);
        free(buf);
        if (s == NTP_OK) {
            (*out)->buf = NULL; /* nothing points into it: strings live in the handle's arena */
            (*out)->fd = fd;
            return NTP_OK;
        }
        if (s != NTP_E_TRUNCATED || len == size)
            return s;
        len = size - len > len ? 2 * len : (size_t)size;
    }
}

const char *ntp__gguf_file_kind(unsigned mode)
{
    return S_ISREG(mode)    ? "a regular file"
           : S_ISDIR(mode)  ? "a directory"
           : S_ISLNK(mode)  ? "a symbolic link"
           : S_ISFIFO(mode) ? "a FIFO"
           : S_ISCHR(mode)  ? "a character device"
           : S_ISBLK(mode)  ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "an unknown kind of file";
}

ntp_status ntp__gguf_open_file(const char *path, bool map, ntp_gguf **out)
{
    if (path == NULL || out == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "ntp_gguf_open: NULL path or output");
    *out = NULL;
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer before fstat could refuse it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return ntp__error(NTP_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    ntp_status s = NTP_OK;
    if (fstat(fd, &st) != 0)
        s = ntp__error(NTP_E_IO, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        s = ntp__error(NTP_E_IO, "%s, not a regular file: expected a GGUF model file",
                       ntp__gguf_file_kind(st.st_mode));
    else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        s = ntp__error(NTP_E_IO, "cannot clear O_NONBLOCK: %s", strerror(errno));
    else
        s = map ? open_mapped(fd, (uint64_t)st.st_size, out)
                : open_unmapped(fd, (uint64_t)st.st_size, out);
    if (s != NTP_OK || map)
        close(fd);
    if (s != NTP_OK)
        ntp__error_prefix("%s", path);
    return s;
}

ntp_status ntp_gguf_open(const char *path, ntp_gguf **out)
{
    return ntp__gguf_open_file(path, true, out);
}

ntp_status ntp__gguf_header_hash(const ntp_gguf *g, uint64_t *out)
{
    uint64_t h = 1469598103934665603u;
    uint8_t chunk[1 << 16];
    for (uint64_t off = 0; off < g->data_offset;) {
        const size_t n =
            g->data_offset - off < sizeof chunk ? (size_t)(g->data_offset - off) : sizeof chunk;
        const uint8_t *p = g->map ? (const uint8_t *)g->map + off : chunk;
        if (!g->map) {
            const ntp_status s = read_at(g->fd, chunk, n, off);
            if (s != NTP_OK)
                return s;
        }
        for (size_t i = 0; i < n; i++)
            h = (h ^ p[i]) * 1099511628211u;
        off += n;
    }
    *out = h;
    return g->map ? ntp__gguf_guard_check(g) : NTP_OK;
}

ntp_status ntp__gguf_read(const ntp_gguf *g, const ntp_gguf_tensor *t, uint64_t off, void *dst,
                          size_t n)
{
    uint64_t end;
    if (!ntp__add_u64(off, n, &end) || end > t->size)
        return ntp__error(NTP_E_INVALID_ARG, "tensor '%s': bytes [%llu, +%zu) outside its %llu",
                          t->name, (unsigned long long)off, n, (unsigned long long)t->size);
    if (t->data != NULL) {
        memcpy(dst, t->data + off, n);
        return ntp__gguf_guard_check(g);
    }
    ntp_status s = read_at(g->fd, dst, n, g->data_offset + t->offset + off);
    if (s != NTP_OK)
        ntp__error_prefix("tensor '%s'", t->name);
    return s;
}
