/*
 * pack.c - the packed weight layout (kernels/packed.h): rows of the file's
 * blocks to 16-row groups and back. Scalar, run once per matrix at load
 * (and by the tests); the layout itself is defined in packed.h.
 */
#include "kernels/packed.h"

#include <assert.h>
#include <string.h>

#define R NTP_PACK_ROWS

_Static_assert(offsetof(ntp_pack_q4_0, d) == offsetof(ntp_pack_q8_0, d) &&
                   offsetof(ntp_pack_q4_0, qs) == offsetof(ntp_pack_q8_0, qs) &&
                   offsetof(ntp_block_q4_0, qs) == offsetof(ntp_block_q8_0, qs),
               "Q4_0 and Q8_0 blocks and groups differ only in their number of codes");

bool ntp__pack_supported(enum ntp_pack_layout l, enum ntp_type t)
{
    if (l != NTP_PACK_R16)
        return false;
    switch (t) {
    case NTP_TYPE_Q4_0:
    case NTP_TYPE_Q4_1:
    case NTP_TYPE_Q5_0:
    case NTP_TYPE_Q5_1:
    case NTP_TYPE_Q8_0:
    case NTP_TYPE_Q2_K:
    case NTP_TYPE_Q3_K:
    case NTP_TYPE_Q4_K:
    case NTP_TYPE_Q5_K:
    case NTP_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

/* The file's block size and elements per block of a packable type. */
static size_t block_bytes(enum ntp_type t)
{
    switch (t) {
    case NTP_TYPE_Q4_0:
        return sizeof(ntp_block_q4_0);
    case NTP_TYPE_Q4_1:
        return sizeof(ntp_block_q4_1);
    case NTP_TYPE_Q5_0:
        return sizeof(ntp_block_q5_0);
    case NTP_TYPE_Q5_1:
        return sizeof(ntp_block_q5_1);
    case NTP_TYPE_Q8_0:
        return sizeof(ntp_block_q8_0);
    case NTP_TYPE_Q2_K:
        return sizeof(ntp_block_q2_K);
    case NTP_TYPE_Q3_K:
        return sizeof(ntp_block_q3_K);
    case NTP_TYPE_Q4_K:
        return sizeof(ntp_block_q4_K);
    case NTP_TYPE_Q5_K:
        return sizeof(ntp_block_q5_K);
    default:
        return sizeof(ntp_block_q6_K);
    }
}

static int64_t block_elems(enum ntp_type t)
{
    return ntp_type_get_traits(t)->block_size;
}

/*
 * Where the fields of a 4- or 5-bit legacy block lie, in the file's block
 * and in the packed one (0: the format has no such field).
 */
struct lg_fields {
    size_t m, qh, qs;    /* the file's block */
    size_t pm, pqh, pqs; /* the packed block */
};

static struct lg_fields lg_fields(enum ntp_type t)
{
    switch (t) {
    case NTP_TYPE_Q4_1:
        return (struct lg_fields){offsetof(ntp_block_q4_1, m), 0, offsetof(ntp_block_q4_1, qs),
                                  offsetof(ntp_pack_q4_1, m),  0, offsetof(ntp_pack_q4_1, qs)};
    case NTP_TYPE_Q5_0:
        return (struct lg_fields){0, offsetof(ntp_block_q5_0, qh), offsetof(ntp_block_q5_0, qs),
                                  0, offsetof(ntp_pack_q5_0, qh),  offsetof(ntp_pack_q5_0, qs)};
    default: /* Q5_1 */
        return (struct lg_fields){offsetof(ntp_block_q5_1, m),  offsetof(ntp_block_q5_1, qh),
                                  offsetof(ntp_block_q5_1, qs), offsetof(ntp_pack_q5_1, m),
                                  offsetof(ntp_pack_q5_1, qh),  offsetof(ntp_pack_q5_1, qs)};
    }
}

/* Q4_1, Q5_0 and Q5_1 (packed.h), in either direction as move_block. */
static void move_legacy(enum ntp_type t, uint8_t *p, uint8_t *b, int r, bool pack)
{
    const struct lg_fields f = lg_fields(t);
    uint8_t *pd = p + 2 * r, *pm = p + f.pm + 2 * r;
    uint8_t *from = pack ? b : pd, *to = pack ? pd : b;
    memcpy(to, from, 2); /* d */
    if (f.m) {
        from = pack ? b + f.m : pm;
        to = pack ? pm : b + f.m;
        memcpy(to, from, 2);
    }
    for (int c = 0; c < 4; c++)
        for (int j = 0; j < 4; j++) {
            uint8_t *pq = p + f.pqs + 64 * c + 4 * r + j, *q = b + f.qs + 4 * c + j;
            if (pack)
                *pq = *q;
            else
                *q = *pq;
        }
    if (!f.qh)
        return;
    /* the file's qh: bit e of the little-endian word is bit 4 of code e */
    uint8_t *fh = b + f.qh;
    for (int j = 0; j < 4; j++) {
        uint8_t *ph = p + f.pqh + 4 * r + j;
        if (pack)
            *ph = 0;
        for (int c = 0; c < 4; c++)
            for (int half = 0; half < 2; half++) {
                const int e = 16 * half + 4 * c + j, bit = 4 * half + c;
                if (pack)
                    *ph |= (uint8_t)(((fh[e / 8] >> (e % 8)) & 1) << bit);
                else
                    fh[e / 8] |= (uint8_t)(((*ph >> bit) & 1) << (e % 8));
            }
    }
}

/* Byte and shift of the 2-bit field of element e in Q2_K's (and Q3_K's) qs (blocks.h). */
static int q2k_byte(int e)
{
    return 32 * (e / 128) + e % 32;
}

static int q2k_shift(int e)
{
    return 2 * ((e % 128) / 32);
}

/*
 * Q2_K's and Q3_K's 2-bit fields, packed (pq: the group's qs[4][4][64], row
 * r) from the file's qs or back (file qs zeroed beforehand): field f of
 * qs[g][v][4r + j] is element 16(4g + f) + 4v + j.
 */
static void move_2bit(uint8_t (*pq)[4][64], uint8_t *qs, int r, bool pack)
{
    for (int g = 0; g < 4; g++)
        for (int v = 0; v < 4; v++)
            for (int j = 0; j < 4; j++) {
                uint8_t *q = &pq[g][v][4 * r + j];
                if (pack)
                    *q = 0;
                for (int f = 0; f < 4; f++) {
                    const int e = 16 * (4 * g + f) + 4 * v + j;
                    if (pack)
                        *q |= (uint8_t)(((qs[q2k_byte(e)] >> q2k_shift(e)) & 3) << (2 * f));
                    else
                        qs[q2k_byte(e)] |= (uint8_t)(((*q >> (2 * f)) & 3) << q2k_shift(e));
                }
            }
}

/* The 6-bit code of element e of a Q6_K block (blocks.h). */
static int q6k_code(const ntp_block_q6_K *b, int e)
{
    const int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
    const uint8_t lo = b->ql[64 * h + l + (quarter & 1) * 32];
    return ((quarter < 2 ? lo : lo >> 4) & 15) | ((b->qh[32 * h + l] >> (2 * quarter)) & 3) << 4;
}

/* Store the 6-bit code q of element e into a Q6_K block (ql and qh zeroed beforehand). */
static void q6k_set(ntp_block_q6_K *b, int e, int q)
{
    const int h = e / 128, l = e % 32, quarter = (e % 128) / 32;
    b->ql[64 * h + l + (quarter & 1) * 32] |= (uint8_t)((q & 15) << (quarter < 2 ? 0 : 4));
    b->qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * quarter));
}

/*
 * One packed block p and the file's block of row r, b, in either direction
 * (pack: file -> packed; otherwise packed -> file, b zeroed beforehand).
 */
static void move_block(enum ntp_type t, uint8_t *p, uint8_t *b, int r, bool pack)
{
#define MOVE(packed_byte, file_byte)                                                               \
    do {                                                                                           \
        if (pack)                                                                                  \
            (packed_byte) = (file_byte);                                                           \
        else                                                                                       \
            (file_byte) = (packed_byte);                                                           \
    } while (0)
    switch (t) {
    case NTP_TYPE_Q4_0:
    case NTP_TYPE_Q8_0: {
        /* Both keep d first and the codes after the 16 scales (asserted above). */
        ntp_pack_q8_0 *pk = (ntp_pack_q8_0 *)p;
        ntp_block_q8_0 *k = (ntp_block_q8_0 *)b;
        MOVE(pk->d[r], k->d);
        const int nq = t == NTP_TYPE_Q4_0 ? 4 : 8;
        uint8_t *qs = (uint8_t *)k->qs;
        /* Q8_0's signed codes are stored plus 128: an XOR of the sign bit. */
        const uint8_t bias = t == NTP_TYPE_Q8_0 ? 0x80 : 0;
        for (int c = 0; c < nq; c++)
            for (int j = 0; j < 4; j++) {
                if (pack)
                    pk->qs[c][4 * r + j] = qs[4 * c + j] ^ bias;
                else
                    qs[4 * c + j] = pk->qs[c][4 * r + j] ^ bias;
            }
        break;
    }
    case NTP_TYPE_Q4_1:
    case NTP_TYPE_Q5_0:
    case NTP_TYPE_Q5_1:
        move_legacy(t, p, b, r, pack);
        break;
    case NTP_TYPE_Q2_K: {
        ntp_pack_q2_K *pk = (ntp_pack_q2_K *)p;
        ntp_block_q2_K *k = (ntp_block_q2_K *)b;
        MOVE(pk->d[r], k->d);
        MOVE(pk->dmin[r], k->dmin);
        for (int s = 0; s < 16; s++)
            MOVE(pk->sc[s][r], k->scales[s]);
        move_2bit(pk->qs, k->qs, r, pack);
        break;
    }
    case NTP_TYPE_Q3_K: {
        ntp_pack_q3_K *pk = (ntp_pack_q3_K *)p;
        ntp_block_q3_K *k = (ntp_block_q3_K *)b;
        MOVE(pk->d[r], k->d);
        for (int i = 0; i < 12; i++)
            MOVE(pk->sc[i][r], k->scales[i]);
        move_2bit(pk->qs, k->qs, r, pack);
        /* bit b of hm[h][v][4r + j]: element e = 16(8h + b) + 4v + j, hmask[e % 32] bit e / 32 */
        for (int h = 0; h < 2; h++)
            for (int v = 0; v < 4; v++)
                for (int j = 0; j < 4; j++) {
                    uint8_t *q = &pk->hm[h][v][4 * r + j];
                    if (pack)
                        *q = 0;
                    for (int bit = 0; bit < 8; bit++) {
                        const int e = 16 * (8 * h + bit) + 4 * v + j;
                        if (pack)
                            *q |= (uint8_t)(((k->hmask[e % 32] >> (e / 32)) & 1) << bit);
                        else
                            k->hmask[e % 32] |= (uint8_t)(((*q >> bit) & 1) << (e / 32));
                    }
                }
        break;
    }
    case NTP_TYPE_Q4_K: {
        ntp_pack_q4_K *pk = (ntp_pack_q4_K *)p;
        ntp_block_q4_K *k = (ntp_block_q4_K *)b;
        MOVE(pk->d[r], k->d);
        MOVE(pk->dmin[r], k->dmin);
        for (int i = 0; i < 12; i++)
            MOVE(pk->sc[i][r], k->scales[i]);
        for (int c = 0; c < 4; c++)
            for (int i = 0; i < 8; i++)
                for (int j = 0; j < 4; j++)
                    MOVE(pk->qs[c][i][4 * r + j], k->qs[32 * c + 4 * i + j]);
        break;
    }
    case NTP_TYPE_Q5_K: {
        ntp_pack_q5_K *pk = (ntp_pack_q5_K *)p;
        ntp_block_q5_K *k = (ntp_block_q5_K *)b;
        MOVE(pk->d[r], k->d);
        MOVE(pk->dmin[r], k->dmin);
        for (int i = 0; i < 12; i++)
            MOVE(pk->sc[i][r], k->scales[i]);
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 4; j++) {
                for (int c = 0; c < 4; c++)
                    MOVE(pk->qs[c][i][4 * r + j], k->qs[32 * c + 4 * i + j]);
                MOVE(pk->qh[i][4 * r + j], k->qh[4 * i + j]);
            }
        break;
    }
    default: { /* Q6_K */
        ntp_pack_q6_K *pk = (ntp_pack_q6_K *)p;
        ntp_block_q6_K *k = (ntp_block_q6_K *)b;
        MOVE(pk->d[r], k->d);
        for (int g = 0; g < 16; g++)
            MOVE(pk->sc[g][r], k->scales[g]);
        /* sub-block sb, vector v: element 16sb + 4v + j, and bits 2v, 2v + 1 of 16sb + 12 + j */
        for (int sb = 0; sb < 16; sb++)
            for (int j = 0; j < 4; j++) {
                uint8_t(*c)[64] = pk->q[sb];
                const int e = 4 * r + j;
                if (pack) {
                    const int q3 = q6k_code(k, 16 * sb + 12 + j);
                    for (int v = 0; v < 3; v++)
                        c[v][e] = (uint8_t)(q6k_code(k, 16 * sb + 4 * v + j) | ((q3 >> (2 * v)) & 3)
                                                                                   << 6);
                } else {
                    int q3 = 0;
                    for (int v = 0; v < 3; v++) {
                        q6k_set(k, 16 * sb + 4 * v + j, c[v][e] & 63);
                        q3 |= (c[v][e] >> 6) << (2 * v);
                    }
                    q6k_set(k, 16 * sb + 12 + j, q3);
                }
            }
        break;
    }
    }
#undef MOVE
}

void ntp__pack_group(enum ntp_pack_layout l, enum ntp_type t, void *dst, const void *src,
                     size_t src_stride, int64_t k)
{
    (void)l; /* NTP_PACK_R16 is the only layout so far */
    assert(ntp__pack_supported(l, t));
    const size_t bb = block_bytes(t);
    const int64_t nb = k / block_elems(t);
    for (int64_t b = 0; b < nb; b++) /* every byte of a packed block is written */
        for (int r = 0; r < R; r++)
            move_block(t, (uint8_t *)dst + (size_t)b * bb * R,
                       (uint8_t *)src + (size_t)r * src_stride + (size_t)b * bb, r, true);
}

void ntp__unpack_group(enum ntp_pack_layout l, enum ntp_type t, void *dst, size_t dst_stride,
                       const void *src, int64_t k)
{
    (void)l;
    assert(ntp__pack_supported(l, t));
    const size_t bb = block_bytes(t);
    const int64_t nb = k / block_elems(t);
    for (int64_t b = 0; b < nb; b++)
        for (int r = 0; r < R; r++) {
            uint8_t *row = (uint8_t *)dst + (size_t)r * dst_stride + (size_t)b * bb;
            memset(row, 0, bb);
            move_block(t, (uint8_t *)src + (size_t)b * bb * R, row, r, false);
        }
}
