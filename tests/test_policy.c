#include <errno.h>

#include "policy.h"
#include "testutil.h"
#include "timeutil.h"

static int64_t notify[] = { 60 * 86400, 28 * 86400, 14 * 86400, 7 * 86400, 3 * 86400, 86400 };

static struct kigen_policy naccs(void)
{
    struct kigen_policy p = { .renew_before = 28 * 86400,
                              .critical_before = 7 * 86400,
                              .has_notify = true,
                              .notify_before = notify,
                              .n_notify = 6 };
    return p;
}

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static void test_every_boundary_to_the_second(void **state)
{
    struct kigen_policy p = naccs();
    int64_t nb = at("2021-10-01T00:00:00Z"), na = at("2026-11-01T00:00:00Z");

    (void)state;
    assert_int_equal(kigen_policy_state(&p, nb, na, nb - 1), KIGEN_STATE_NOT_YET_VALID);
    assert_int_equal(kigen_policy_state(&p, nb, na, nb), KIGEN_STATE_OK);
    assert_int_equal(kigen_policy_state(&p, nb, na, na - 28 * 86400 - 1), KIGEN_STATE_OK);
    assert_int_equal(kigen_policy_state(&p, nb, na, na - 28 * 86400), KIGEN_STATE_RENEWAL_OPEN);
    assert_int_equal(kigen_policy_state(&p, nb, na, na - 7 * 86400 - 1), KIGEN_STATE_RENEWAL_OPEN);
    assert_int_equal(kigen_policy_state(&p, nb, na, na - 7 * 86400), KIGEN_STATE_CRITICAL);
    assert_int_equal(kigen_policy_state(&p, nb, na, na - 1), KIGEN_STATE_CRITICAL);
    assert_int_equal(kigen_policy_state(&p, nb, na, na), KIGEN_STATE_EXPIRED);
    assert_int_equal(kigen_policy_state(&p, nb, na, na + 86400 * 400), KIGEN_STATE_EXPIRED);
    assert_int_equal(kigen_policy_renewal_opens(&p, na), at("2026-10-04T00:00:00Z"));
}

static void test_not_yet_valid_wins_over_everything(void **state)
{
    struct kigen_policy p = naccs();
    int64_t now = at("2026-11-24T12:00:00Z");

    (void)state;
    /* Not valid yet and ends in three days: the first row of the table wins. */
    assert_int_equal(kigen_policy_state(&p, now + 3600, now + 3 * 86400, now),
                     KIGEN_STATE_NOT_YET_VALID);
    /* Even when it has already ended (a certificate with inverted dates). */
    assert_int_equal(kigen_policy_state(&p, now + 3600, now - 1, now), KIGEN_STATE_NOT_YET_VALID);
}

static void test_days_left_rounds_toward_minus_infinity(void **state)
{
    int64_t now = at("2026-11-24T12:00:00Z");

    (void)state;
    assert_int_equal(kigen_days_left(at("2026-11-01T00:00:00Z"), now), -24);
    assert_int_equal(kigen_days_left(now, now), 0);
    assert_int_equal(kigen_days_left(now - 1, now), -1);
    assert_int_equal(kigen_days_left(now + 86399, now), 0);
    assert_int_equal(kigen_days_left(now + 86400, now), 1);
    assert_int_equal(kigen_days_left(now - 86400, now), -1);
    assert_int_equal(kigen_days_left(now - 86401, now), -2);
}

static void test_severity_follows_nagios(void **state)
{
    (void)state;
    assert_int_equal(kigen_state_severity(KIGEN_STATE_OK), 0);
    assert_int_equal(kigen_state_severity(KIGEN_STATE_RENEWAL_OPEN), 1);
    assert_int_equal(kigen_state_severity(KIGEN_STATE_NOT_YET_VALID), 1);
    assert_int_equal(kigen_state_severity(KIGEN_STATE_CRITICAL), 2);
    assert_int_equal(kigen_state_severity(KIGEN_STATE_EXPIRED), 2);
    assert_string_equal(kigen_state_name(KIGEN_STATE_RENEWAL_OPEN), "renewal_open");
    assert_string_equal(kigen_state_name(KIGEN_STATE_NOT_YET_VALID), "not_yet_valid");
}

static void test_next_change_is_the_earliest_step(void **state)
{
    struct kigen_policy p = naccs();
    int64_t nb = at("2021-10-01T00:00:00Z"), na = at("2026-11-01T00:00:00Z");

    (void)state;
    assert_int_equal(kigen_policy_next_change(&p, nb, na, nb - 10), nb);
    assert_int_equal(kigen_policy_next_change(&p, nb, na, nb), na - 60 * 86400);
    assert_int_equal(kigen_policy_next_change(&p, nb, na, na - 60 * 86400), na - 28 * 86400);
    assert_int_equal(kigen_policy_next_change(&p, nb, na, na - 4 * 86400), na - 3 * 86400);
    assert_int_equal(kigen_policy_next_change(&p, nb, na, na - 1), na);
    assert_true(kigen_policy_next_change(&p, nb, na, na) == INT64_MAX);
}

static void test_rfc3339_round_trip_and_offsets(void **state)
{
    char buf[KIGEN_RFC3339_LEN];
    int64_t t;

    (void)state;
    assert_int_equal(at("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(at("2026-11-24T21:00:00+09:00"), at("2026-11-24T12:00:00Z"));
    assert_int_equal(at("2026-11-24T12:00:00.123Z"), at("2026-11-24T12:00:00Z"));
    assert_int_equal(at("2024-02-29T00:00:00Z") + 86400, at("2024-03-01T00:00:00Z"));
    kigen_time_format_utc(at("2050-12-31T23:59:59Z"), buf);
    assert_string_equal(buf, "2050-12-31T23:59:59Z");
    kigen_time_format_utc(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59Z");
    assert_int_equal(kigen_time_parse("2023-02-29T00:00:00Z", &t), -EINVAL);
    assert_int_equal(kigen_time_parse("2026-11-24T12:00:00", &t), -EINVAL);
    assert_int_equal(kigen_time_parse("2026-11-24", &t), -EINVAL);
    assert_int_equal(kigen_time_parse("2026-13-01T00:00:00Z", &t), -EINVAL);
    assert_int_equal(kigen_time_parse("2026-11-24T12:00:00Zjunk", &t), -EINVAL);
    assert_int_equal(kigen_time_parse("", &t), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_boundary_to_the_second),
        cmocka_unit_test(test_not_yet_valid_wins_over_everything),
        cmocka_unit_test(test_days_left_rounds_toward_minus_infinity),
        cmocka_unit_test(test_severity_follows_nagios),
        cmocka_unit_test(test_next_change_is_the_earliest_step),
        cmocka_unit_test(test_rfc3339_round_trip_and_offsets),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
