/*
 * type.c - the one table of tensor element types: names, block sizes and
 * bytes per block, as ggml defines them (ggml.c type_traits). The GGUF parser
 * uses it to size tensors; kernels register their functions elsewhere.
 */
#include "core.h"

#include <ctype.h>
#include <string.h>

#define QK 32   /* elements per block of the legacy formats */
#define QKK 256 /* elements per super-block of the k-quants and i-quants */

static const ntp_type_traits traits[NTP_TYPE_COUNT] = {
    [NTP_TYPE_F32] = {"F32", 1, 4, false, true},
    [NTP_TYPE_F16] = {"F16", 1, 2, false, true},
    [NTP_TYPE_Q4_0] = {"Q4_0", QK, 2 + QK / 2, true, true},
    [NTP_TYPE_Q4_1] = {"Q4_1", QK, 4 + QK / 2, true, true},
    [NTP_TYPE_Q5_0] = {"Q5_0", QK, 2 + 4 + QK / 2, true, true},
    [NTP_TYPE_Q5_1] = {"Q5_1", QK, 4 + 4 + QK / 2, true, true},
    [NTP_TYPE_Q8_0] = {"Q8_0", QK, 2 + QK, true, true},
    [NTP_TYPE_Q8_1] = {"Q8_1", QK, 4 + QK, true, true},
    [NTP_TYPE_Q2_K] = {"Q2_K", QKK, QKK / 16 + QKK / 4 + 4, true, true},
    [NTP_TYPE_Q3_K] = {"Q3_K", QKK, QKK / 8 + QKK / 4 + 12 + 2, true, true},
    [NTP_TYPE_Q4_K] = {"Q4_K", QKK, 4 + 12 + QKK / 2, true, true},
    [NTP_TYPE_Q5_K] = {"Q5_K", QKK, 4 + 12 + QKK / 8 + QKK / 2, true, true},
    [NTP_TYPE_Q6_K] = {"Q6_K", QKK, QKK / 2 + QKK / 4 + QKK / 16 + 2, true, true},
    [NTP_TYPE_Q8_K] = {"Q8_K", QKK, 4 + QKK + QKK / 16 * 2, true, true},
    [NTP_TYPE_IQ2_XXS] = {"IQ2_XXS", QKK, 2 + QKK / 4, true, false},
    [NTP_TYPE_IQ2_XS] = {"IQ2_XS", QKK, 2 + QKK / 4 + QKK / 32, true, false},
    [NTP_TYPE_IQ3_XXS] = {"IQ3_XXS", QKK, 2 + 3 * QKK / 8, true, false},
    [NTP_TYPE_IQ1_S] = {"IQ1_S", QKK, 2 + QKK / 8 + QKK / 16, true, false},
    [NTP_TYPE_IQ4_NL] = {"IQ4_NL", QK, 2 + QK / 2, true, false},
    [NTP_TYPE_IQ3_S] = {"IQ3_S", QKK, 2 + QKK / 4 + QKK / 32 + QKK / 8 + QKK / 64, true, false},
    [NTP_TYPE_IQ2_S] = {"IQ2_S", QKK, 2 + QKK / 4 + QKK / 32 + QKK / 32, true, false},
    [NTP_TYPE_IQ4_XS] = {"IQ4_XS", QKK, 2 + 2 + QKK / 64 + QKK / 2, true, false},
    [NTP_TYPE_I8] = {"I8", 1, 1, false, false},
    [NTP_TYPE_I16] = {"I16", 1, 2, false, false},
    [NTP_TYPE_I32] = {"I32", 1, 4, false, false},
    [NTP_TYPE_I64] = {"I64", 1, 8, false, false},
    [NTP_TYPE_F64] = {"F64", 1, 8, false, false},
    [NTP_TYPE_IQ1_M] = {"IQ1_M", QKK, QKK / 8 + QKK / 16 + QKK / 32, true, false},
    [NTP_TYPE_BF16] = {"BF16", 1, 2, false, true},
    [NTP_TYPE_TQ1_0] = {"TQ1_0", QKK, 2 + 4 + (QKK - 4 * QKK / 64) / 5, true, false},
    [NTP_TYPE_TQ2_0] = {"TQ2_0", QKK, 2 + QKK / 4, true, false},
    [NTP_TYPE_MXFP4] = {"MXFP4", QK, 1 + QK / 2, true, false},
};

const ntp_type_traits *ntp_type_get_traits(int t)
{
    if (t < 0 || t >= NTP_TYPE_COUNT || traits[t].name == NULL)
        return NULL;
    return &traits[t];
}

const char *ntp_type_name(int t)
{
    const ntp_type_traits *tt = ntp_type_get_traits(t);
    return tt ? tt->name : "unknown";
}

ntp_status ntp_type_from_name(const char *name, enum ntp_type *out)
{
    for (int t = 0; t < NTP_TYPE_COUNT; t++) {
        const char *n = traits[t].name;
        if (n == NULL)
            continue;
        size_t i = 0;
        while (n[i] && name[i] && toupper((unsigned char)name[i]) == n[i])
            i++;
        if (n[i] == '\0' && name[i] == '\0') {
            *out = (enum ntp_type)t;
            return NTP_OK;
        }
    }
    return ntp__error(NTP_E_NOT_FOUND, "unknown tensor type '%s'", name);
}

ntp_status ntp_type_row_size(enum ntp_type t, int64_t n, size_t *out)
{
    const ntp_type_traits *tt = ntp_type_get_traits((int)t);
    if (tt == NULL)
        return ntp__error(NTP_E_INVALID_ARG, "unknown tensor type %d", (int)t);
    if (n < 0 || n % tt->block_size != 0)
        return ntp__error(NTP_E_INVALID_ARG, "%s row of %lld elements is not a whole number of %lld-element blocks",
                          tt->name, (long long)n, (long long)tt->block_size);
    uint64_t bytes;
    if (!ntp__mul_u64((uint64_t)(n / tt->block_size), tt->type_size, &bytes) || bytes > SIZE_MAX)
        return ntp__error(NTP_E_OVERFLOW, "%s row of %lld elements overflows", tt->name,
                          (long long)n);
    *out = (size_t)bytes;
    return NTP_OK;
}
