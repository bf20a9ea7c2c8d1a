/* States of SPEC §5: what a certificate's dates mean at a given instant. */
#ifndef KIGEN_POLICY_H
#define KIGEN_POLICY_H

#include <stdint.h>

#include "config.h"

enum kigen_state {
    KIGEN_STATE_OK,
    KIGEN_STATE_RENEWAL_OPEN,
    KIGEN_STATE_CRITICAL,
    KIGEN_STATE_EXPIRED,
    KIGEN_STATE_NOT_YET_VALID,
    KIGEN_STATE_REVOKED, /* SPEC §13: set by the view from a verified answer, never by the dates */
};
#define KIGEN_STATE_COUNT 6

/* "ok", "renewal_open", "critical", "expired", "not_yet_valid", "revoked". */
const char *kigen_state_name(enum kigen_state state);

/* not_after - renew_before. */
int64_t kigen_policy_renewal_opens(const struct kigen_policy *policy, int64_t not_after);

/* The first matching row of SPEC §5's table. policy has every field set. */
enum kigen_state kigen_policy_state(const struct kigen_policy *policy, int64_t not_before,
                                    int64_t not_after, int64_t now);

/* The exit status of SPEC §6 a state contributes: 0 ok, 1 attention, 2 critical/expired/revoked. */
int kigen_state_severity(enum kigen_state state);

/*
 * The earliest instant after now at which the state or the passed notify_before step of this
 * certificate changes, or INT64_MAX when nothing will change. For the daemon's single timer.
 */
int64_t kigen_policy_next_change(const struct kigen_policy *policy, int64_t not_before,
                                 int64_t not_after, int64_t now);

#endif
