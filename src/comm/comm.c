/* comm.c - the table of collective kinds (docs/architecture.md "Collectives"). */
#include "comm/comm.h"

#include "comm/world.h"
#include "core/core.h"

#include <string.h>

struct comm_kind {
    const char *name;
    ntp_status (*create)(const struct ntp_comm_params *p, struct ntp_comm **out);
};

static const struct comm_kind kinds[] = {
    {"shm", ntp__comm_shm_new},
    {"shm-serial", ntp__comm_shm_serial_new},
    {"mpi", ntp__comm_mpi_new}, /* across the processes of an mpirun (world.c) */
};

ntp_status ntp__comm_new(const char *kind, const struct ntp_comm_params *p, struct ntp_comm **out)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, kind) == 0)
            return kinds[i].create(p, out);
    return ntp__error(NTP_E_UNSUPPORTED, "collective kind '%s' is unknown (known: shm, shm-serial, mpi)",
                      kind);
}

void ntp__comm_free(struct ntp_comm *c)
{
    if (c != NULL)
        c->iface->destroy(c);
}
