/* comm.c - the table of collective kinds (docs/architecture.md "Collectives"). */
#include "comm/comm.h"

#include "core/core.h"

#include <string.h>

struct comm_kind {
    const char *name;
    ntp_status (*create)(const struct ntp_comm_params *p, struct ntp_comm **out);
};

/* A kind that spans machines (MPI) adds its row here. */
static const struct comm_kind kinds[] = {
    {"shm", ntp__comm_shm_new},
    {"shm-serial", ntp__comm_shm_serial_new},
};

ntp_status ntp__comm_new(const char *kind, const struct ntp_comm_params *p, struct ntp_comm **out)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, kind) == 0)
            return kinds[i].create(p, out);
    return ntp__error(NTP_E_UNSUPPORTED, "collective kind '%s' is unknown (known: shm, shm-serial)",
                      kind);
}

void ntp__comm_free(struct ntp_comm *c)
{
    if (c != NULL)
        c->iface->destroy(c);
}
