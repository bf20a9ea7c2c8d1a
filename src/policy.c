#include "policy.h"

const char *kigen_state_name(enum kigen_state state)
{
    static const char *const names[KIGEN_STATE_COUNT] = {
        [KIGEN_STATE_OK] = "ok",
        [KIGEN_STATE_RENEWAL_OPEN] = "renewal_open",
        [KIGEN_STATE_CRITICAL] = "critical",
        [KIGEN_STATE_EXPIRED] = "expired",
        [KIGEN_STATE_NOT_YET_VALID] = "not_yet_valid",
        [KIGEN_STATE_REVOKED] = "revoked",
    };

    return (unsigned)state < KIGEN_STATE_COUNT ? names[state] : "unknown";
}

int64_t kigen_policy_renewal_opens(const struct kigen_policy *policy, int64_t not_after)
{
    return not_after - policy->renew_before;
}

enum kigen_state kigen_policy_state(const struct kigen_policy *policy, int64_t not_before,
                                    int64_t not_after, int64_t now)
{
    if (now < not_before)
        return KIGEN_STATE_NOT_YET_VALID;
    if (now >= not_after)
        return KIGEN_STATE_EXPIRED;
    if (now >= not_after - policy->critical_before)
        return KIGEN_STATE_CRITICAL;
    if (now >= kigen_policy_renewal_opens(policy, not_after))
        return KIGEN_STATE_RENEWAL_OPEN;
    return KIGEN_STATE_OK;
}

int kigen_state_severity(enum kigen_state state)
{
    switch (state) {
    case KIGEN_STATE_OK:
        return 0;
    case KIGEN_STATE_RENEWAL_OPEN:
    case KIGEN_STATE_NOT_YET_VALID:
        return 1;
    case KIGEN_STATE_CRITICAL:
    case KIGEN_STATE_EXPIRED:
    case KIGEN_STATE_REVOKED:
        return 2;
    }
    return 2;
}

static void consider(int64_t t, int64_t now, int64_t *best)
{
    if (t > now && t < *best)
        *best = t;
}

int64_t kigen_policy_next_change(const struct kigen_policy *policy, int64_t not_before,
                                 int64_t not_after, int64_t now)
{
    int64_t best = INT64_MAX;

    consider(not_before, now, &best);
    consider(not_after, now, &best);
    consider(not_after - policy->critical_before, now, &best);
    consider(kigen_policy_renewal_opens(policy, not_after), now, &best);
    for (size_t i = 0; i < policy->n_notify; i++)
        consider(not_after - policy->notify_before[i], now, &best);
    return best;
}
