/* registry.c - the table of device kinds (registry.h): the one file that knows every backend. */
#include "backend/registry.h"

#include "backend/cpu/cpu_device.h"
#include "backend/cuda/cuda_device.h"
#include "core/core.h"

#include <string.h>

static ntp_status cpu_create(const struct ntp_device_spec *s, struct ntp_device **out)
{
    const struct ntp_cpu_device_params p = {
        .node = s->node,
        .n_threads = s->n_threads,
        .memory_limit = s->memory_limit,
        .isa = s->isa,
        .topo = s->topo,
        .pus = s->pus,
    };
    return ntp__cpu_device_new(&p, out);
}

static ntp_status cuda_create(const struct ntp_device_spec *s, struct ntp_device **out)
{
    const struct ntp_cuda_device_params p = {.ordinal = s->index};
    return ntp__cuda_device_new(&p, out);
}

static const struct ntp_device_kind kinds[] = {
    {"cpu", ntp__cpu_device_count, cpu_create},
    {"cuda", ntp__cuda_device_count, cuda_create},
};

const struct ntp_device_kind *ntp__device_kind(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

ntp_status ntp__device_new(const char *kind, const struct ntp_device_spec *spec,
                           struct ntp_device **out)
{
    *out = NULL;
    const struct ntp_device_kind *k = ntp__device_kind(kind);
    if (k == NULL)
        return ntp__error(NTP_E_UNSUPPORTED, "device kind '%s' is unknown (known: cpu, cuda)",
                          kind);
    return k->create(spec, out);
}
