/*
 * Maintenance windows against an independent computation: GNU date(1) through popen for wall
 * times in a zone (TZ set in the child only), timegm(3) for fixed offsets, and Sakamoto's
 * weekday formula for which date is the "third tuesday".
 */
#include <errno.h>
#include <time.h>

#include "config.h"
#include "maint.h"
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

#define MINUTE 60
#define HOUR   3600
#define DAY    86400

/* Independent arithmetic. */

/* Sakamoto's day of the week, 0 = Sunday. */
static int weekday(int y, int m, int d)
{
    static const int t[] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };

    if (m < 3)
        y--;
    return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

static int month_days(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return days[m - 1] + (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
}

/* The day of month of the nth (1..4, or -1 for last) weekday wd. */
static int nth_weekday(int y, int m, int nth, int wd)
{
    int last;

    if (nth > 0)
        return 1 + (wd - weekday(y, m, 1) + 7) % 7 + 7 * (nth - 1);
    last = month_days(y, m);
    return last - (weekday(y, m, last) - wd + 7) % 7;
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s
    };

    return (int64_t)timegm(&tm);
}

/* date -u -d 'TZ="zone" Y-M-D HH:MM' +%s: the instant of a wall time, by GNU date. */
static int64_t date_wall(const char *zone, int y, int mo, int d, int h, int mi)
{
    char cmd[256], line[64];
    FILE *f;

    snprintf(cmd, sizeof(cmd), "date -u -d 'TZ=\"%s\" %04d-%02d-%02d %02d:%02d' +%%s", zone, y, mo,
             d, h, mi);
    f = popen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    assert_int_equal(pclose(f), 0);
    return strtoll(line, NULL, 10);
}

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static struct kigen_tz *load(const char *name)
{
    struct kigen_tz *tz = NULL;

    assert_int_equal(kigen_tz_load(name, &tz), 0);
    return tz;
}

static struct kigen_maintenance window(enum kigen_every_kind kind, int nth, int wd, int at_minute,
                                       int64_t duration)
{
    struct kigen_maintenance m = {
        .every = { .kind = kind, .nth = nth, .weekday = wd },
        .at_minute = at_minute,
        .duration = duration,
    };

    return m;
}

static struct kigen_maintenance naccs(void)
{
    return window(KIGEN_EVERY_MONTHLY, 3, 2, 22 * 60, 10 * HOUR);
}

/* Asserts the window kigen_maint_window finds around t. */
static void assert_window(const struct kigen_maintenance *m, const struct kigen_tz *tz, int64_t t,
                          int want_r, int64_t want_start, int64_t want_end)
{
    int64_t start = -1, end = -1;
    char a[KIGEN_RFC3339_LEN], b[KIGEN_RFC3339_LEN];
    int r = kigen_maint_window(m, tz, t, &start, &end);

    if (r != want_r || start != want_start || end != want_end) {
        kigen_time_format_utc(t, a);
        kigen_time_format_utc(start, b);
        fail_msg("at %s: r=%d start=%s (%lld), want r=%d start=%lld end=%lld got end=%lld", a, r, b,
                 (long long)start, want_r, (long long)want_start, (long long)want_end,
                 (long long)end);
    }
}

static char *format(const struct kigen_tz *tz, int64_t t)
{
    static char buf[KIGEN_TZ_FORMAT_LEN];

    assert_int_equal(kigen_tz_format(tz, t, buf, sizeof(buf)), 0);
    return buf;
}

/* SPEC §1: the third Tuesday, 22:00 to 08:00 the next day, Japan time. */
static void test_maint_next_twelve_naccs_windows_match_date(void **state)
{
    struct kigen_maintenance m = naccs();
    struct kigen_tz *tz = load("Asia/Tokyo");
    int64_t t = at("2026-11-25T00:00:00Z"), start, end;
    int y = 2026, mo = 12;

    (void)state;
    for (int i = 0; i < 12; i++) {
        int d = nth_weekday(y, mo, 3, 2);
        int64_t want = date_wall("Asia/Tokyo", y, mo, d, 22, 0);

        assert_int_equal(weekday(y, mo, d), 2);
        assert_true(d >= 15 && d <= 21);
        /* JST has no DST: the wall time less nine hours, by timegm too. */
        assert_int_equal(want, utc(y, mo, d, 22, 0, 0) - 9 * HOUR);
        assert_int_equal(kigen_maint_window(&m, tz, t, &start, &end), 0);
        assert_int_equal(start, want);
        assert_int_equal(end, want + 10 * HOUR);
        t = end; /* the end is not in the window: the next call finds the next month */
        if (++mo > 12) {
            mo = 1;
            y++;
        }
    }
    assert_string_equal(format(tz, start), "2027-11-16 22:00 JST");
    assert_string_equal(format(tz, end), "2027-11-17 08:00 JST");
    kigen_tz_free(tz);
}

static void test_maint_boundaries_are_start_inclusive_end_exclusive(void **state)
{
    struct kigen_maintenance m = naccs();
    struct kigen_tz *tz = load("Asia/Tokyo");
    int64_t s = at("2026-12-15T13:00:00Z"), e = at("2026-12-15T23:00:00Z");
    int64_t next = at("2027-01-19T13:00:00Z");

    (void)state;
    assert_int_equal(s, date_wall("Asia/Tokyo", 2026, 12, 15, 22, 0));
    assert_int_equal(e, date_wall("Asia/Tokyo", 2026, 12, 16, 8, 0));
    assert_window(&m, tz, s - 1, 0, s, e);
    assert_window(&m, tz, s, 1, s, e);
    assert_window(&m, tz, s + 1, 1, s, e);
    assert_window(&m, tz, e - 1, 1, s, e);
    assert_window(&m, tz, e, 0, next, next + 10 * HOUR);
    /* Across local midnight: 03:00 JST on Wednesday is inside Tuesday's window. */
    assert_window(&m, tz, date_wall("Asia/Tokyo", 2026, 12, 16, 3, 0), 1, s, e);
    assert_window(&m, tz, date_wall("Asia/Tokyo", 2026, 12, 16, 0, 0), 1, s, e);
    /* The Tuesday before and after: no window. */
    assert_window(&m, tz, date_wall("Asia/Tokyo", 2026, 12, 8, 23, 0), 0, s, e);
    assert_window(&m, tz, date_wall("Asia/Tokyo", 2026, 12, 22, 23, 0), 0, next, next + 10 * HOUR);
    kigen_tz_free(tz);
}

/* Last Friday 23:00 for three days: over a month end, and over a year end. */
static void test_maint_window_crosses_month_and_year_end(void **state)
{
    struct kigen_maintenance m = window(KIGEN_EVERY_MONTHLY, -1, 5, 23 * 60, 3 * DAY);
    struct kigen_tz *tz = load("Asia/Tokyo");
    int64_t s, e;

    (void)state;
    /* January 2027 ends on a Sunday: the last Friday is the 29th, the window ends 1 Feb. */
    assert_int_equal(nth_weekday(2027, 1, -1, 5), 29);
    s = date_wall("Asia/Tokyo", 2027, 1, 29, 23, 0);
    e = date_wall("Asia/Tokyo", 2027, 2, 1, 23, 0);
    assert_int_equal(e - s, 3 * DAY);
    assert_window(&m, tz, s - 1, 0, s, e);
    assert_window(&m, tz, s, 1, s, e);
    assert_window(&m, tz, date_wall("Asia/Tokyo", 2027, 2, 1, 12, 0), 1, s, e);
    assert_window(&m, tz, e - 1, 1, s, e);
    assert_string_equal(format(tz, e - 1), "2027-02-01 22:59 JST");
    /* December 2027: the last Friday is the 31st; the window runs into 2028. */
    assert_int_equal(nth_weekday(2027, 12, -1, 5), 31);
    s = date_wall("Asia/Tokyo", 2027, 12, 31, 23, 0);
    e = date_wall("Asia/Tokyo", 2028, 1, 3, 23, 0);
    assert_window(&m, tz, date_wall("Asia/Tokyo", 2028, 1, 2, 12, 0), 1, s, e);
    assert_window(&m, tz, date_wall("Asia/Tokyo", 2027, 12, 31, 22, 59), 0, s, e);
    assert_window(&m, tz, e - 1, 1, s, e);
    s = date_wall("Asia/Tokyo", 2028, 1, nth_weekday(2028, 1, -1, 5), 23, 0);
    assert_window(&m, tz, e, 0, s, s + 3 * DAY);
    kigen_tz_free(tz);
}

/* February 2028 has 29 days; the 29th is a Tuesday, the last Thursday the 24th. */
static void test_maint_leap_day(void **state)
{
    struct kigen_maintenance daily = window(KIGEN_EVERY_DAILY, 0, -1, 12 * 60, HOUR);
    struct kigen_maintenance thursday = window(KIGEN_EVERY_MONTHLY, -1, 4, 9 * 60, 2 * HOUR);
    struct kigen_maintenance tuesday = window(KIGEN_EVERY_MONTHLY, -1, 2, 9 * 60, 2 * HOUR);
    struct kigen_tz *tz = load("UTC");
    int64_t s;

    (void)state;
    assert_int_equal(weekday(2028, 2, 29), 2);
    s = utc(2028, 2, 29, 12, 0, 0);
    assert_window(&daily, tz, utc(2028, 2, 28, 13, 0, 0), 0, s, s + HOUR);
    assert_window(&daily, tz, utc(2028, 2, 29, 12, 30, 0), 1, s, s + HOUR);
    assert_window(&daily, tz, utc(2028, 2, 29, 13, 0, 0), 0, utc(2028, 3, 1, 12, 0, 0),
                  utc(2028, 3, 1, 13, 0, 0));
    assert_int_equal(nth_weekday(2028, 2, -1, 4), 24);
    s = utc(2028, 2, 24, 9, 0, 0);
    assert_window(&thursday, tz, utc(2028, 2, 1, 0, 0, 0), 0, s, s + 2 * HOUR);
    s = utc(2028, 3, nth_weekday(2028, 3, -1, 4), 9, 0, 0);
    assert_window(&thursday, tz, utc(2028, 2, 24, 11, 0, 0), 0, s, s + 2 * HOUR);
    s = utc(2028, 2, 29, 9, 0, 0);
    assert_window(&tuesday, tz, utc(2028, 2, 23, 0, 0, 0), 0, s, s + 2 * HOUR);
    /* In 2027, February's last Tuesday is the 23rd. */
    s = utc(2027, 2, nth_weekday(2027, 2, -1, 2), 9, 0, 0);
    assert_int_equal(s, utc(2027, 2, 23, 9, 0, 0));
    assert_window(&tuesday, tz, utc(2027, 2, 1, 0, 0, 0), 0, s, s + 2 * HOUR);
    kigen_tz_free(tz);
}

static void test_maint_weekly_and_daily(void **state)
{
    struct kigen_maintenance weekly = window(KIGEN_EVERY_WEEKLY, 0, 1, 9 * 60 + 30, 2 * HOUR);
    struct kigen_maintenance daily = window(KIGEN_EVERY_DAILY, 0, -1, 3 * 60, 30 * MINUTE);
    struct kigen_tz *berlin = load("Europe/Berlin"), *ny = load("America/New_York");
    int64_t t = utc(2026, 1, 1, 0, 0, 0), start, end;

    (void)state;
    /* Fifty-three Mondays in Berlin, 09:30 local whatever the season. */
    for (int i = 0; i < 53; i++) {
        struct kigen_tz_tm tm;

        assert_int_equal(kigen_maint_window(&weekly, berlin, t, &start, &end), 0);
        assert_int_equal(end - start, 2 * HOUR);
        assert_int_equal(kigen_tz_local(berlin, start, &tm), 0);
        assert_int_equal(tm.weekday, 1);
        assert_int_equal(tm.hour * 60 + tm.minute, 9 * 60 + 30);
        assert_int_equal(weekday(tm.year, tm.month, tm.day), 1);
        if (i % 9 == 0)
            assert_int_equal(start, date_wall("Europe/Berlin", tm.year, tm.month, tm.day, 9, 30));
        t = start + 1;
        assert_int_equal(kigen_maint_window(&weekly, berlin, t, &start, &end), 1);
        t = end;
    }
    /* Daily at 03:00 New York, across both changes of 2026. */
    t = utc(2026, 3, 6, 0, 0, 0);
    for (int i = 0; i < 250; i++) {
        struct kigen_tz_tm tm;

        assert_int_equal(kigen_maint_window(&daily, ny, t, &start, &end), 0);
        assert_int_equal(kigen_tz_local(ny, start, &tm), 0);
        assert_int_equal(tm.hour, 3);
        assert_int_equal(tm.minute, 0);
        if (i < 4 || i % 40 == 0)
            assert_int_equal(start, date_wall("America/New_York", tm.year, tm.month, tm.day, 3, 0));
        t = end;
    }
    kigen_tz_free(ny);
    kigen_tz_free(berlin);
}

/* Berlin's spring and autumn changes inside a window, and window starts in the gap/overlap. */
static void test_maint_window_spanning_a_dst_change_lasts_its_real_duration(void **state)
{
    struct kigen_maintenance m = window(KIGEN_EVERY_MONTHLY, -1, 0, 0, 4 * HOUR);
    struct kigen_maintenance gap = window(KIGEN_EVERY_MONTHLY, -1, 0, 2 * 60 + 30, HOUR);
    struct kigen_tz *tz = load("Europe/Berlin");
    int64_t s, e;

    (void)state;
    /* Last Sunday of March 2026, 00:00 CET for four hours: ends 05:00 CEST, not 04:00. */
    s = date_wall("Europe/Berlin", 2026, 3, 29, 0, 0);
    e = date_wall("Europe/Berlin", 2026, 3, 29, 5, 0);
    assert_int_equal(e - s, 4 * HOUR);
    assert_window(&m, tz, utc(2026, 3, 20, 0, 0, 0), 0, s, e);
    assert_window(&m, tz, e - 1, 1, s, e);
    assert_string_equal(format(tz, e), "2026-03-29 05:00 CEST");
    /* October: 00:00 CEST for four hours ends 03:00 CET. */
    s = date_wall("Europe/Berlin", 2026, 10, 25, 0, 0);
    e = date_wall("Europe/Berlin", 2026, 10, 25, 3, 0);
    assert_int_equal(e - s, 4 * HOUR);
    assert_window(&m, tz, e - 1, 1, s, e);
    assert_string_equal(format(tz, e), "2026-10-25 03:00 CET");
    /* 02:30 does not exist on 2026-03-29: the window starts at 03:30 CEST (02:30 +0100). */
    s = utc(2026, 3, 29, 1, 30, 0);
    assert_window(&gap, tz, utc(2026, 3, 20, 0, 0, 0), 0, s, s + HOUR);
    assert_string_equal(format(tz, s), "2026-03-29 03:30 CEST");
    /* 02:30 happens twice on 2026-10-25: the first, 02:30 CEST. */
    s = utc(2026, 10, 25, 0, 30, 0);
    assert_window(&gap, tz, utc(2026, 10, 20, 0, 0, 0), 0, s, s + HOUR);
    assert_string_equal(format(tz, s), "2026-10-25 02:30 CEST");
    /* The same in 2100, from the zone's footer rule. */
    s = utc(2100, 3, 28, 1, 30, 0);
    assert_window(&gap, tz, utc(2100, 3, 1, 0, 0, 0), 0, s, s + HOUR);
    kigen_tz_free(tz);
}

/* Every nth of every weekday for two years, in Tokyo (fixed +9, so timegm is the oracle). */
static void test_maint_every_nth_weekday(void **state)
{
    static const int nths[] = { 1, 2, 3, 4, -1 };
    struct kigen_maintenance first_sat = window(KIGEN_EVERY_MONTHLY, 1, 6, 6 * 60 + 45, HOUR);
    struct kigen_tz *tz = load("Asia/Tokyo");
    int64_t start, end;

    (void)state;
    for (size_t n = 0; n < sizeof(nths) / sizeof(nths[0]); n++) {
        for (int wd = 0; wd < 7; wd++) {
            struct kigen_maintenance m =
                window(KIGEN_EVERY_MONTHLY, nths[n], wd, 6 * 60 + 45, HOUR);
            int64_t t = utc(2026, 1, 1, 0, 0, 0) - 9 * HOUR;

            for (int i = 0; i < 24; i++) {
                int y = 2026 + i / 12, mo = 1 + i % 12, d = nth_weekday(y, mo, nths[n], wd);
                int64_t want = utc(y, mo, d, 6, 45, 0) - 9 * HOUR;

                assert_int_equal(weekday(y, mo, d), wd);
                assert_int_equal(kigen_maint_window(&m, tz, t, &start, &end), 0);
                if (start != want)
                    fail_msg("nth %d weekday %d in %d-%02d: %lld, want day %d (%lld)", nths[n], wd,
                             y, mo, (long long)start, d, (long long)want);
                assert_int_equal(end, want + HOUR);
                t = end;
            }
        }
    }
    /* And against date. */
    assert_int_equal(kigen_maint_window(&first_sat, tz, utc(2026, 7, 20, 0, 0, 0), &start, &end),
                     0);
    assert_int_equal(start, date_wall("Asia/Tokyo", 2026, 8, 1, 6, 45));
    kigen_tz_free(tz);
}

/* Windows longer than their period overlap; the one that started last is reported. */
static void test_maint_overlapping_windows_report_the_latest(void **state)
{
    struct kigen_maintenance m = window(KIGEN_EVERY_DAILY, 0, -1, 0, 36 * HOUR);
    struct kigen_maintenance long_window = window(KIGEN_EVERY_MONTHLY, 1, 1, 0, 40 * DAY);
    struct kigen_tz *tz = load("UTC");
    int64_t s;

    (void)state;
    s = utc(2026, 5, 2, 0, 0, 0);
    assert_window(&m, tz, utc(2026, 5, 2, 6, 0, 0), 1, s, s + 36 * HOUR);
    /* Forty days from the first Monday of April (the 6th) still cover 3 May; by the 5th the
     * window of the first Monday of May (the 4th) is the later one. */
    s = utc(2026, 5, 4, 0, 0, 0);
    assert_window(&long_window, tz, utc(2026, 5, 5, 0, 0, 0), 1, s, s + 40 * DAY);
    s = utc(2026, 4, 6, 0, 0, 0);
    assert_window(&long_window, tz, utc(2026, 5, 3, 0, 0, 0), 1, s, s + 40 * DAY);
    kigen_tz_free(tz);
}

static void test_maint_rejects_bad_windows(void **state)
{
    const struct kigen_maintenance bad[] = {
        window(KIGEN_EVERY_MONTHLY, 5, 2, 0, HOUR),
        window(KIGEN_EVERY_MONTHLY, 0, 2, 0, HOUR),
        window(KIGEN_EVERY_MONTHLY, -2, 2, 0, HOUR),
        window(KIGEN_EVERY_MONTHLY, 1, 7, 0, HOUR),
        window(KIGEN_EVERY_WEEKLY, 0, -1, 0, HOUR),
        window(KIGEN_EVERY_DAILY, 0, -1, 24 * 60, HOUR),
        window(KIGEN_EVERY_DAILY, 0, -1, -1, HOUR),
        window(KIGEN_EVERY_DAILY, 0, -1, 0, 0),
        window(KIGEN_EVERY_DAILY, 0, -1, 0, KIGEN_MAINT_MAX_DURATION + 1),
        window((enum kigen_every_kind)42, 0, -1, 0, HOUR),
    };
    struct kigen_maintenance ok = naccs();
    struct kigen_tz *tz = load("UTC");
    int64_t start = 7, end = 7;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kigen_maint_window(&bad[i], tz, 0, &start, &end), -EINVAL);
    assert_int_equal(start, 7);
    assert_int_equal(end, 7);
    /* Dates past the year 9999 cannot be converted; instants past kigen_tz's range neither. */
    assert_int_equal(kigen_maint_window(&ok, tz, utc(9999, 12, 25, 0, 0, 0), &start, &end),
                     -EINVAL);
    assert_int_equal(kigen_maint_window(&ok, tz, KIGEN_TZ_TIME_MAX + 1, &start, &end), -ERANGE);
    kigen_tz_free(tz);
}

/* The set, built from configuration text as the daemon does. */

static struct kigen_config *parse_config(const char *text)
{
    struct kigen_config *config = NULL;
    char err[256] = "";

    if (kigen_config_parse("kigen.yaml", text, strlen(text), &config, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    return config;
}

static struct kigen_maint_set *new_set(const char *text)
{
    struct kigen_config *config = parse_config(text);
    struct kigen_maint_set *set = NULL;
    char err[256] = "";

    if (kigen_maint_set_new(config, &set, err, sizeof(err)) != 0)
        fail_msg("set: %s", err);
    /* The set keeps copies: the configuration may go first. */
    kigen_config_free(config);
    return set;
}

static void test_maint_set_default_is_the_naccs_window(void **state)
{
    struct kigen_maint_set *set = new_set("");
    int64_t s = at("2026-12-15T13:00:00Z"), e = at("2026-12-15T23:00:00Z"), start, end = 0;

    (void)state;
    assert_int_equal(kigen_maint_set_active(set, "naccs-cert", s - 1, &end), 0);
    assert_int_equal(kigen_maint_set_active(set, "naccs-cert", s, &end), 1);
    assert_int_equal(end, e);
    assert_int_equal(kigen_maint_set_active(set, "naccs-cert", e - 1, NULL), 1);
    assert_int_equal(kigen_maint_set_active(set, "naccs-cert", e, NULL), 0);
    assert_int_equal(kigen_maint_set_active(set, "webnaccs", s, NULL), 0);
    assert_int_equal(kigen_maint_set_next(set, "naccs-cert", s - 1, &start, &end), 0);
    assert_int_equal(start, s);
    assert_int_equal(end, e);
    /* Inside a window, the next one is next month's. */
    assert_int_equal(kigen_maint_set_next(set, "naccs-cert", s, &start, &end), 0);
    assert_int_equal(start, at("2027-01-19T13:00:00Z"));
    assert_int_equal(kigen_maint_set_next(set, "webnaccs", s, &start, &end), -ENOENT);
    kigen_maint_set_free(set);
    kigen_maint_set_free(NULL);
}

static void test_maint_set_combines_windows_per_target(void **state)
{
    struct kigen_maint_set *set = new_set("timezone: Europe/Berlin\n"
                                          "maintenance:\n"
                                          "  - name: nightly\n"
                                          "    targets: [api, db]\n"
                                          "    every: daily\n"
                                          "    at: \"23:00\"\n"
                                          "    duration: 2h\n"
                                          "  - name: tokyo-weekly\n"
                                          "    targets: [db]\n"
                                          "    every: weekly sunday\n"
                                          "    at: \"6:00\"\n"
                                          "    duration: 4h\n"
                                          "    timezone: Asia/Tokyo\n"
                                          "  - name: berlin-monthly\n"
                                          "    targets: [db]\n"
                                          "    every: first monday\n"
                                          "    at: \"22:30\"\n"
                                          "    duration: 3h\n"
                                          "    timezone: Europe/Berlin\n");
    int64_t start = 0, end = 0;

    (void)state;
    /* Nightly in Berlin (the top-level zone): 23:00 CEST is 21:00 UTC in June. */
    assert_int_equal(kigen_maint_set_active(set, "api", utc(2026, 6, 10, 21, 0, 0), &end), 1);
    assert_int_equal(end, utc(2026, 6, 10, 23, 0, 0));
    assert_int_equal(kigen_maint_set_active(set, "api", utc(2026, 6, 10, 20, 59, 59), &end), 0);
    assert_int_equal(kigen_maint_set_next(set, "api", utc(2026, 6, 10, 12, 0, 0), &start, &end), 0);
    assert_int_equal(start, date_wall("Europe/Berlin", 2026, 6, 10, 23, 0));
    /* db: Sunday 06:00 JST is Saturday 21:00 UTC, the same instant as the nightly one. */
    assert_int_equal(weekday(2026, 6, 14), 0);
    assert_int_equal(kigen_maint_set_active(set, "db", utc(2026, 6, 13, 22, 30, 0), &end), 1);
    assert_int_equal(end, utc(2026, 6, 14, 1, 0, 0)); /* the later of 23:00 and 01:00 UTC */
    assert_int_equal(kigen_maint_set_active(set, "db", utc(2026, 6, 14, 0, 59, 59), NULL), 1);
    assert_int_equal(kigen_maint_set_active(set, "db", utc(2026, 6, 14, 1, 0, 0), NULL), 0);
    assert_int_equal(kigen_maint_set_active(set, "api", utc(2026, 6, 13, 23, 30, 0), NULL), 0);
    /* First Monday of July 2026 is the 6th: 22:30 CEST, overlapping the nightly one. */
    assert_int_equal(nth_weekday(2026, 7, 1, 1), 6);
    assert_int_equal(kigen_maint_set_active(set, "db", utc(2026, 7, 6, 22, 0, 0), &end), 1);
    assert_int_equal(end, date_wall("Europe/Berlin", 2026, 7, 7, 1, 30));
    /* The earliest start after t among the three. */
    assert_int_equal(kigen_maint_set_next(set, "db", utc(2026, 7, 6, 20, 45, 0), &start, &end), 0);
    assert_int_equal(start, utc(2026, 7, 6, 21, 0, 0));
    assert_int_equal(end, utc(2026, 7, 6, 23, 0, 0));
    assert_int_equal(kigen_maint_set_next(set, "db", utc(2026, 7, 6, 20, 15, 0), &start, &end), 0);
    assert_int_equal(start, utc(2026, 7, 6, 20, 30, 0));
    assert_int_equal(end, utc(2026, 7, 6, 23, 30, 0));
    assert_int_equal(kigen_maint_set_next(set, "nobody", 0, &start, &end), -ENOENT);
    kigen_maint_set_free(set);
}

static void test_maint_set_reports_a_zone_that_cannot_load(void **state)
{
    struct kigen_maintenance w = naccs();
    char *targets[] = { "naccs-cert" };
    struct kigen_config config = { .timezone = "Asia/Tokyo",
                                   .maintenance = &w,
                                   .n_maintenance = 1 };
    struct kigen_maint_set *set = NULL;
    char err[256] = "";

    (void)state;
    w.name = "broken";
    w.targets.v = targets;
    w.targets.n = 1;
    w.timezone = "Nowhere/Atlantis";
    assert_int_equal(kigen_maint_set_new(&config, &set, err, sizeof(err)), -ENOENT);
    assert_null(set);
    assert_string_equal(err,
                        "Maintenance window 'broken': cannot load time zone 'Nowhere/Atlantis'");
    w.timezone = NULL; /* the top-level zone */
    w.every.nth = 5;
    assert_int_equal(kigen_maint_set_new(&config, &set, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "Maintenance window 'broken' has a bad schedule or duration");
    w.every.nth = 3;
    assert_int_equal(kigen_maint_set_new(&config, &set, NULL, 0), 0);
    assert_int_equal(kigen_maint_set_active(set, "naccs-cert", at("2026-12-15T13:00:00Z"), NULL),
                     1);
    kigen_maint_set_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maint_next_twelve_naccs_windows_match_date),
        cmocka_unit_test(test_maint_boundaries_are_start_inclusive_end_exclusive),
        cmocka_unit_test(test_maint_window_crosses_month_and_year_end),
        cmocka_unit_test(test_maint_leap_day),
        cmocka_unit_test(test_maint_weekly_and_daily),
        cmocka_unit_test(test_maint_window_spanning_a_dst_change_lasts_its_real_duration),
        cmocka_unit_test(test_maint_every_nth_weekday),
        cmocka_unit_test(test_maint_overlapping_windows_report_the_latest),
        cmocka_unit_test(test_maint_rejects_bad_windows),
        cmocka_unit_test(test_maint_set_default_is_the_naccs_window),
        cmocka_unit_test(test_maint_set_combines_windows_per_target),
        cmocka_unit_test(test_maint_set_reports_a_zone_that_cannot_load),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
