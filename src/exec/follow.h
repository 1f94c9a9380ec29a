/*
 * follow.h - a command whose logic runs on rank 0 alone under mpirun (serve):
 * rank 0 leads, telling the other ranks every context call that runs the
 * devices (context.c calls the ntp__lead_* functions when leading), and the
 * others follow, repeating each call on their own shards (ntp__follow), so
 * that the collectives inside meet. docs/architecture.md, "Several processes".
 */
#ifndef NTP_EXEC_FOLLOW_H
#define NTP_EXEC_FOLLOW_H

#include "ntp.h"

#include <stdbool.h>
#include <stdint.h>

/* Rank 0: make every context made from now on tell the others its calls. */
void ntp__follow_lead(bool on);
bool ntp__follow_leading(void);

/* What a leading context tells (id: the number ntp__lead_new gave it). */
ntp_status ntp__lead_new(const ntp_context_params *p, int32_t *id);
ntp_status ntp__lead_decode(int32_t id, const int32_t *tokens, const int32_t *seq, int32_t n,
                            bool all_logits);
ntp_status ntp__lead_seq_reset(int32_t id, int32_t seq);
ntp_status ntp__lead_reset(int32_t id);
ntp_status ntp__lead_free(int32_t id);
/* The leader is done: the followers' ntp__follow returns. */
ntp_status ntp__lead_end(void);

/* The other ranks: repeat the leader's calls on m until it ends. */
ntp_status ntp__follow(ntp_model *m);

#endif /* NTP_EXEC_FOLLOW_H */
