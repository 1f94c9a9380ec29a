/*
 * kernels.c - fills the dispatch table once per device and routes matrix
 * products to the chosen kernel, falling back to the reference.
 */
#include "kernels/kernels.h"

#include "core/core.h"
#include "kernels/isa.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool runs_always(const struct ntp_cpu_features *f)
{
    (void)f;
    return true;
}

#if NTP_HAVE_X86_KERNELS
/* What src/kernels/meson.build compiles each x86 library with. */
static bool runs_avx2(const struct ntp_cpu_features *f)
{
    return f->avx2 && f->fma && f->f16c;
}

static bool runs_avx512(const struct ntp_cpu_features *f)
{
    return runs_avx2(f) && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512vnni;
}

static bool runs_amx(const struct ntp_cpu_features *f)
{
    return runs_avx512(f) && f->amx_tile && f->amx_int8;
}
#endif

/*
 * The ISAs built into this binary, weakest first: without NTP_ISA the last
 * one this CPU runs is chosen. Each fill starts from the reference.
 */
static const struct ntp_kernel_isa isas[] = {
    {"ref", runs_always, NULL},
#if NTP_HAVE_X86_KERNELS
    {"avx2", runs_avx2, ntp__kernels_avx2_fill},
    {"avx512", runs_avx512, ntp__kernels_avx512_fill},
    {"amx", runs_amx, ntp__kernels_amx_fill},
#endif
};
enum { N_ISA = sizeof isas / sizeof isas[0] };

static const struct ntp_kernel_isa *find_isa(const char *name)
{
    for (int i = 0; i < N_ISA; i++)
        if (strcmp(name, isas[i].name) == 0)
            return &isas[i];
    return NULL;
}

bool ntp__kernels_isa_ok(const char *isa)
{
    const struct ntp_kernel_isa *e = find_isa(isa);
    const struct ntp_cpu_features f = ntp__cpu_features();
    return e != NULL && e->supported(&f);
}

/* The error for an NTP_ISA value that is not in the table: what is. */
static ntp_status unknown_isa(const char *isa)
{
    char names[128] = "";
    for (int i = 0; i < N_ISA; i++) {
        const char *sep = i == 0 ? "" : i == N_ISA - 1 ? " or " : ", ";
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", sep, isas[i].name);
    }
    return ntp__error(NTP_E_UNSUPPORTED, "NTP_ISA='%s': unknown kernel ISA (expected %s)", isa,
                      names);
}

/* The named ISA (NULL or empty: the strongest this CPU runs). */
static ntp_status pick_isa(const char *isa, const struct ntp_kernel_isa **out)
{
    const struct ntp_cpu_features f = ntp__cpu_features();
    if (isa == NULL || isa[0] == '\0') {
        for (int i = 0; i < N_ISA; i++)
            if (isas[i].supported(&f))
                *out = &isas[i];
        return NTP_OK;
    }
    const struct ntp_kernel_isa *e = find_isa(isa);
    if (e == NULL)
        return unknown_isa(isa);
    if (!e->supported(&f))
        return ntp__error(NTP_E_UNSUPPORTED, "NTP_ISA='%s': this CPU (or its OS) lacks it", isa);
    *out = e;
    return NTP_OK;
}

ntp_status ntp__kernels_init(struct ntp_kernels *k, const char *isa)
{
    static atomic_flag logged = ATOMIC_FLAG_INIT; /* log the choice once per process */
    if (isa == NULL)
        isa = getenv("NTP_ISA");
    const struct ntp_kernel_isa *e = &isas[0];
    ntp_status s = pick_isa(isa, &e);
    if (s != NTP_OK)
        return s;
    ntp__kernels_ref_fill(k->ref);
    memcpy(k->type, k->ref, sizeof k->type);
    k->attn = ntp__attn_ref;
    k->kv_to_f32 = ntp__kv_to_f32_ref;
    k->exp_sum = ntp__exp_sum_ref;
    k->max = ntp__max_f32_ref;
    k->glu[NTP_FFN_SILU] = ntp__swiglu_f32;
    k->glu[NTP_FFN_GELU] = ntp__geglu_f32;
    if (e->fill != NULL)
        e->fill(k);
    k->isa = e->name;
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
    if (a->glu != NULL && !(a->layout != NTP_PACK_NONE && kt->packed_glu))
        return ntp__error(NTP_E_INTERNAL, "kernels '%s' cannot gate a %s product", k->isa,
                          ntp_type_name(a->wtype));
    if (a->layout != NTP_PACK_NONE)
        return kt->pack == a->layout && kt->matmul_packed
                   ? kt->matmul_packed(a)
                   : ntp__error(NTP_E_UNSUPPORTED,
                                "kernels '%s' have no product for packed %s weights", k->isa,
                                ntp_type_name(a->wtype));
    ntp_matmul_fn fn = a->n_tok == 1 ? kt->matvec : kt->matmul;
    if (fn != NULL) {
        ntp_status s = fn(a);
        if (s != NTP_E_UNSUPPORTED)
            return s;
    }
    const struct ntp_kernel_type *rt = &k->ref[a->wtype];
    return rt->matmul ? rt->matmul(a)
                      : ntp__error(NTP_E_UNSUPPORTED, "kernels '%s' have no product for %s weights",
                                   k->isa, ntp_type_name(a->wtype));
}
