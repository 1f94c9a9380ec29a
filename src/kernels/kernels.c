/*
 * kernels.c - fills the dispatch table once per device and routes matrix
 * products to the chosen kernel, falling back to the reference.
 */
#include "kernels/kernels.h"

#include "core/core.h"
#include "kernels/cpu_features.h"
#include "kernels/isa.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ISAs from weakest to strongest; each includes the ones before it. */
static const char *const isa_names[] = {"ref", "avx2", "avx512"};
enum { N_ISA = sizeof isa_names / sizeof isa_names[0] };

static int isa_index(const char *isa)
{
    for (int i = 0; i < N_ISA; i++)
        if (strcmp(isa, isa_names[i]) == 0)
            return i;
    return -1;
}

/* The strongest ISA this CPU and OS run. */
static int best_isa(const struct ntp_cpu_features *f)
{
    int best = 0;
    for (int i = 1; i < N_ISA; i++)
        if (ntp__cpu_isa_ok(f, isa_names[i]))
            best = i;
    return best;
}

const char *ntp__kernels_best_isa(void)
{
    const struct ntp_cpu_features f = ntp__cpu_features();
    return isa_names[best_isa(&f)];
}

static ntp_status pick_isa(const char *isa, int *out)
{
    const struct ntp_cpu_features f = ntp__cpu_features();
    if (isa == NULL || isa[0] == '\0') {
        *out = best_isa(&f);
        return NTP_OK;
    }
    if (strcmp(isa, "amx") == 0)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "NTP_ISA='amx': numatp has no AMX kernels yet (prefill runs on "
                          "AVX-512 VNNI; use NTP_ISA=avx512)");
    const int i = isa_index(isa);
    if (i < 0)
        return ntp__error(NTP_E_UNSUPPORTED,
                          "NTP_ISA='%s': unknown kernel ISA (expected ref, avx2 or avx512)", isa);
    if (!ntp__cpu_isa_ok(&f, isa))
        return ntp__error(NTP_E_UNSUPPORTED, "NTP_ISA='%s': this CPU (or its OS) lacks it", isa);
    *out = i;
    return NTP_OK;
}

ntp_status ntp__kernels_init(struct ntp_kernels *k, const char *isa)
{
    static atomic_flag logged = ATOMIC_FLAG_INIT; /* log the choice once per process */
    if (isa == NULL)
        isa = getenv("NTP_ISA");
    int i = 0;
    ntp_status s = pick_isa(isa, &i);
    if (s != NTP_OK)
        return s;
    ntp__kernels_ref_fill(k->ref);
    memcpy(k->type, k->ref, sizeof k->type);
    k->attn = ntp__attn_ref;
    k->kv_to_f32 = ntp__kv_to_f32_ref;
    k->exp_sum = ntp__exp_sum_ref;
    k->swiglu = ntp__swiglu_f32;
    if (i >= 1)
        ntp__kernels_avx2_fill(k);
    if (i >= 2)
        ntp__kernels_avx512_fill(k);
    k->isa = isa_names[i];
    if (!atomic_flag_test_and_set(&logged))
        ntp__log(NTP_LOG_INFO, "kernels: using ISA %s", k->isa);
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
    if (a->packed)
        return kt->matmul_packed ? kt->matmul_packed(a)
                                 : ntp__error(NTP_E_UNSUPPORTED,
                                              "kernels '%s' have no product for packed %s weights",
                                              k->isa, ntp_type_name(a->wtype));
    ntp_matmul_fn fn = a->n_tok == 1 ? kt->matvec : kt->matmul;
    if (fn != NULL) {
        ntp_status s = fn(a);
        if (s != NTP_E_UNSUPPORTED)
            return s;
    }
    const struct ntp_kernel_type *rt = &k->ref[a->wtype];
    return rt->matmul ? rt->matmul(a) : NTP_E_UNSUPPORTED;
}
