/* unicode.c - UTF-8, categories, White_Space and the GPT-2 byte alphabet. */
#include "tokenizer/unicode.h"

enum ntp__ucat ntp__ucat_of(uint32_t cp)
{
    if (cp > 0x10FFFF)
        return NTP__UCAT_C;
    /* Last range whose start is <= cp; entry 0 starts at U+0000. */
    size_t lo = 0, hi = ntp__ucat_n_ranges;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((ntp__ucat_ranges[mid] >> 3) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (enum ntp__ucat)(ntp__ucat_ranges[lo] & 7);
}

bool ntp__u_is_ws(uint32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || (cp >= '\t' && cp <= '\r');
    size_t lo = 0, hi = ntp__uws_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ntp__uws_list[mid] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ntp__uws_n && ntp__uws_list[lo] == cp;
}

bool ntp__u_in_ranges(const uint32_t (*ranges)[2], size_t n, uint32_t cp)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ranges[mid][1] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ranges[lo][0] <= cp;
}

bool ntp__utf8_valid(const char *s, size_t len, size_t *bad_off)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            n = 4, cp = c & 0x07, min = 0x10000;
        } else {
            *bad_off = i;
            return false;
        }
        if (len - i < n) {
            *bad_off = i;
            return false;
        }
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xC0) != 0x80) {
                *bad_off = i;
                return false;
            }
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            *bad_off = i;
            return false;
        }
        i += n;
    }
    return true;
}

uint32_t ntp__utf8_next(const char *s, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    if (p[0] < 0x80) {
        *i += 1;
        return p[0];
    }
    if ((p[0] & 0xE0) == 0xC0) {
        *i += 2;
        return (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F);
    }
    if ((p[0] & 0xF0) == 0xE0) {
        *i += 3;
        return (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 | (p[2] & 0x3F);
    }
    *i += 4;
    return (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3F) << 12 |
           (uint32_t)(p[2] & 0x3F) << 6 | (p[3] & 0x3F);
}

uint32_t ntp__utf8_next_lenient(const char *s, size_t len, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    size_t left = len - *i, n;
    uint32_t cp;
    if (p[0] < 0x80) {
        *i += 1;
        return p[0];
    }
    if ((p[0] & 0xE0) == 0xC0)
        n = 2, cp = p[0] & 0x1F;
    else if ((p[0] & 0xF0) == 0xE0)
        n = 3, cp = p[0] & 0x0F;
    else if ((p[0] & 0xF8) == 0xF0)
        n = 4, cp = p[0] & 0x07;
    else
        n = 0, cp = 0;
    if (n == 0 || left < n) {
        *i += 1;
        return 0xFFFD;
    }
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            *i += 1;
            return 0xFFFD;
        }
        cp = cp << 6 | (p[k] & 0x3F);
    }
    *i += n;
    return cp;
}

size_t ntp__utf8_put(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ntp__utf8_seq_len(unsigned char c)
{
    static const unsigned char by_nibble[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return by_nibble[c >> 4];
}

size_t ntp__utf8_char(const char *s, size_t n)
{
    size_t len = ntp__utf8_seq_len((unsigned char)s[0]), bad = 0;
    if (len > n)
        return 0;
    return ntp__utf8_valid(s, len, &bad) ? len : 0;
}

/*
 * GPT-2 keeps the printable bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF)
 * as themselves and gives the other 68 bytes, in ascending order, the code
 * points from U+0100 on: 0x00..0x20 (33 bytes), 0x7F..0xA0 (34), then 0xAD.
 */
static bool gpt2_self(uint32_t b)
{
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t ntp__gpt2_byte_to_cp(uint8_t b)
{
    if (gpt2_self(b))
        return b;
    if (b <= 0x20)
        return 0x100 + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x100 + 33 + (b - 0x7F);
    return 0x100 + 33 + 34; /* 0xAD */
}

int ntp__gpt2_cp_to_byte(uint32_t cp)
{
    if (cp <= 0xFF)
        return gpt2_self(cp) ? (int)cp : -1;
    if (cp < 0x100 + 33)
        return (int)(cp - 0x100);
    if (cp < 0x100 + 33 + 34)
        return (int)(0x7F + cp - (0x100 + 33));
    if (cp == 0x100 + 33 + 34)
        return 0xAD;
    return -1;
}
