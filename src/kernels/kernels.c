/*
 * kernels.c - fills the dispatch table once per device and routes matrix
 * products to the chosen kernel, falling back to the reference.
 */
#include "kernels/kernels.h"

#include "core/core.h"

#include <stdlib.h>
#include <string.h>

ntp_status ntp__kernels_init(struct ntp_kernels *k, const char *isa)
{
    if (isa == NULL)
        isa = getenv("NTP_ISA");
    /* Only the reference exists yet; the SIMD issue adds cpuid-driven choices here. */
    if (isa != NULL && isa[0] != '\0' && strcmp(isa, "ref") != 0)
        return ntp__error(NTP_E_UNSUPPORTED, "kernel ISA '%s' is not available (have: ref)", isa);
    ntp__kernels_ref_fill(k->ref);
    memcpy(k->type, k->ref, sizeof k->type);
    k->isa = "ref";
    return NTP_OK;
}

bool ntp__kernels_supports(const struct ntp_kernels *k, enum ntp_type t)
{
    return (int)t >= 0 && t < NTP_TYPE_COUNT && k->ref[t].vec_dot != NULL;
}

size_t ntp__kernels_act_row_size(const struct ntp_kernels *k, enum ntp_type t, int64_t n)
{
    size_t sz;
    if (!ntp__kernels_supports(k, t) || ntp_type_row_size(k->type[t].act_type, n, &sz) != NTP_OK)
        return 0;
    return sz;
}

ntp_status ntp__kernels_matmul(const struct ntp_kernels *k, const struct ntp_matmul_args *a)
{
    const struct ntp_kernel_type *kt = &k->type[a->wtype];
    ntp_matmul_fn fn = a->n_tok == 1 ? kt->matvec : kt->matmul;
    if (fn != NULL) {
        ntp_status s = fn(a);
        if (s != NTP_E_UNSUPPORTED)
            return s;
    }
    const struct ntp_kernel_type *rt = &k->ref[a->wtype];
    return rt->matmul ? rt->matmul(a) : NTP_E_UNSUPPORTED;
}
