/*
 * The TZif reader against an independent computation: GNU date(1) run through popen with TZ
 * set in its own environment (never ours), timegm(3), and Sakamoto's weekday formula.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "tz.h"

#define HOUR 3600
#define DAY  86400

/* Independent arithmetic. */

/* Sakamoto's day of the week, 0 = Sunday. */
static int weekday(int y, int m, int d)
{
    static const int t[] = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 };

    if (m < 3)
        y--;
    return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

static int last_sunday(int y, int m, int mdays)
{
    return mdays - weekday(y, m, mdays);
}

static int nth_sunday(int y, int m, int n)
{
    return 1 + (7 - weekday(y, m, 1)) % 7 + 7 * (n - 1);
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s
    };

    return (int64_t)timegm(&tm);
}

/* GNU date, one process per batch: lines written to a temporary file, read with -f. */

static FILE *run_date(const char *env, const char *fmt, const char *const *lines, size_t n,
                      char *path)
{
    char cmd[1024];
    FILE *f;
    int fd;

    strcpy(path, "/tmp/kigen-test-tz-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\n", lines[i]);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof(cmd), "%s date -f %s '%s'", env, path, fmt);
    f = popen(cmd, "r");
    assert_non_null(f);
    return f;
}

static void finish_date(FILE *f, char *path)
{
    assert_int_equal(pclose(f), 0);
    unlink(path);
}

/* "+09:00:00" -> 32400. */
static int32_t parse_offset(const char *s)
{
    int h, m, sec;

    assert_int_equal(sscanf(s + 1, "%d:%d:%d", &h, &m, &sec), 3);
    return (s[0] == '-' ? -1 : 1) * (h * HOUR + m * 60 + sec);
}

/* The offsets date gives at each instant, TZ='spec' (a zone name or a POSIX TZ string). */
static void date_offsets(const char *spec, const int64_t *t, size_t n, int32_t *ret)
{
    char path[64], env[300], line[64], **lines = calloc(n, sizeof(char *));
    FILE *f;

    assert_non_null(lines);
    for (size_t i = 0; i < n; i++) {
        lines[i] = malloc(32);
        assert_non_null(lines[i]);
        snprintf(lines[i], 32, "@%lld", (long long)t[i]);
    }
    snprintf(env, sizeof(env), "TZ='%s'", spec);
    f = run_date(env, "+%::z", (const char *const *)lines, n, path);
    for (size_t i = 0; i < n; i++) {
        assert_non_null(fgets(line, sizeof(line), f));
        ret[i] = parse_offset(line);
        free(lines[i]);
    }
    finish_date(f, path);
    free(lines);
}

/* The instant date gives for a wall time in zone (which must exist and be unambiguous). */
static int64_t date_wall(const char *zone, int y, int mo, int d, int minute)
{
    char path[64], buf[200], line[64];
    const char *lines[] = { buf };
    long long t;
    FILE *f;

    snprintf(buf, sizeof(buf), "TZ=\"%s\" %04d-%02d-%02d %02d:%02d", zone, y, mo, d, minute / 60,
             minute % 60);
    f = run_date("", "+%s", lines, 1, path);
    assert_non_null(fgets(line, sizeof(line), f));
    finish_date(f, path);
    assert_int_equal(sscanf(line, "%lld", &t), 1);
    return t;
}

/* The instant date gives for a wall time with an explicit UTC offset ("+0100"). */
static int64_t date_wall_at(const char *utoff, int y, int mo, int d, int minute)
{
    char path[64], buf[200], line[64];
    const char *lines[] = { buf };
    long long t;
    FILE *f;

    snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d %s", y, mo, d, minute / 60, minute % 60,
             utoff);
    f = run_date("", "+%s", lines, 1, path);
    assert_non_null(fgets(line, sizeof(line), f));
    finish_date(f, path);
    assert_int_equal(sscanf(line, "%lld", &t), 1);
    return t;
}

static struct kigen_tz *load(const char *name)
{
    struct kigen_tz *tz = NULL;

    assert_int_equal(kigen_tz_load(name, &tz), 0);
    assert_non_null(tz);
    return tz;
}

static int32_t offset(const struct kigen_tz *tz, int64_t t)
{
    int32_t off = 0x7fffffff;

    assert_int_equal(kigen_tz_offset(tz, t, &off), 0);
    return off;
}

static int64_t to_utc(const struct kigen_tz *tz, int y, int mo, int d, int minute)
{
    int64_t t = 0;

    assert_int_equal(kigen_tz_to_utc(tz, y, mo, d, minute, &t), 0);
    return t;
}

/* Offsets before and at a transition, both checked against date. */
static void assert_transition(const struct kigen_tz *tz, const char *zone, int64_t at,
                              int32_t before, int32_t after)
{
    int64_t t[] = { at - 1, at };
    int32_t want[2];

    date_offsets(zone, t, 2, want);
    assert_int_equal(want[0], before);
    assert_int_equal(want[1], after);
    assert_int_equal(offset(tz, at - 1), before);
    assert_int_equal(offset(tz, at), after);
}

/* Offsets over a long grid of instants, all against date in one run. */
static void assert_grid_matches_date(const struct kigen_tz *tz, const char *spec, int64_t from,
                                     int64_t to, int64_t step)
{
    size_t n = (size_t)((to - from) / step) + 1, i;
    int64_t *t = calloc(n, sizeof(*t));
    int32_t *want = calloc(n, sizeof(*want));

    assert_true(t && want);
    for (i = 0; i < n; i++)
        t[i] = from + (int64_t)i * step;
    date_offsets(spec, t, n, want);
    for (i = 0; i < n; i++)
        if (offset(tz, t[i]) != want[i])
            fail_msg("%s at %lld: %d, date says %d", spec, (long long)t[i], offset(tz, t[i]),
                     want[i]);
    free(t);
    free(want);
}

static char *format(const struct kigen_tz *tz, int64_t t)
{
    static char buf[KIGEN_TZ_FORMAT_LEN];

    assert_int_equal(kigen_tz_format(tz, t, buf, sizeof(buf)), 0);
    return buf;
}

/* Offsets and wall times in real zones. */

static void test_tz_tokyo_is_always_plus_nine(void **state)
{
    struct kigen_tz *tz = load("Asia/Tokyo");
    const int64_t t[] = { utc(1990, 1, 1, 0, 0, 0), utc(2026, 12, 15, 13, 0, 0),
                          utc(2037, 12, 31, 23, 59, 59), utc(2045, 7, 1, 0, 0, 0),
                          utc(2100, 3, 1, 0, 0, 0) };
    int32_t want[5];

    (void)state;
    date_offsets("Asia/Tokyo", t, 5, want);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(want[i], 9 * HOUR);
        assert_int_equal(offset(tz, t[i]), 9 * HOUR);
    }
    assert_int_equal(to_utc(tz, 2026, 12, 15, 22 * 60),
                     date_wall("Asia/Tokyo", 2026, 12, 15, 1320));
    assert_int_equal(to_utc(tz, 2026, 12, 15, 22 * 60), utc(2026, 12, 15, 13, 0, 0));
    assert_string_equal(format(tz, utc(2026, 12, 15, 13, 0, 0)), "2026-12-15 22:00 JST");
    assert_grid_matches_date(tz, "Asia/Tokyo", utc(1940, 1, 1, 0, 0, 0), utc(2110, 1, 1, 0, 0, 0),
                             7 * DAY + 3599);
    kigen_tz_free(tz);
}

/* EU rules: last Sunday of March and of October at 01:00 UTC, in the table and the footer. */
static void test_tz_berlin_changes_to_the_second(void **state)
{
    static const int years[] = { 1996, 2000, 2026, 2027, 2037, 2038, 2045, 2100 };
    struct kigen_tz *tz = load("Europe/Berlin");

    (void)state;
    for (size_t i = 0; i < sizeof(years) / sizeof(years[0]); i++) {
        int y = years[i];
        int64_t spring = utc(y, 3, last_sunday(y, 3, 31), 1, 0, 0);
        int64_t autumn = utc(y, 10, last_sunday(y, 10, 31), 1, 0, 0);

        assert_transition(tz, "Europe/Berlin", spring, HOUR, 2 * HOUR);
        assert_transition(tz, "Europe/Berlin", autumn, 2 * HOUR, HOUR);
    }
    assert_string_equal(format(tz, utc(2045, 7, 1, 10, 0, 0)), "2045-07-01 12:00 CEST");
    assert_string_equal(format(tz, utc(2100, 12, 31, 23, 30, 0)), "2101-01-01 00:30 CET");
    assert_grid_matches_date(tz, "Europe/Berlin", utc(1890, 1, 1, 0, 0, 0),
                             utc(2110, 1, 1, 0, 0, 0), 5 * DAY + 3 * HOUR + 17);
    kigen_tz_free(tz);
}

/* US rules since 2007: second Sunday of March 02:00 EST, first Sunday of November 02:00 EDT. */
static void test_tz_new_york_changes_to_the_second(void **state)
{
    static const int years[] = { 2007, 2026, 2037, 2038, 2045, 2100 };
    struct kigen_tz *tz = load("America/New_York");

    (void)state;
    for (size_t i = 0; i < sizeof(years) / sizeof(years[0]); i++) {
        int y = years[i];
        int64_t spring = utc(y, 3, nth_sunday(y, 3, 2), 7, 0, 0);
        int64_t autumn = utc(y, 11, nth_sunday(y, 11, 1), 6, 0, 0);

        assert_transition(tz, "America/New_York", spring, -5 * HOUR, -4 * HOUR);
        assert_transition(tz, "America/New_York", autumn, -4 * HOUR, -5 * HOUR);
    }
    assert_string_equal(format(tz, utc(2100, 1, 1, 4, 59, 0)), "2099-12-31 23:59 EST");
    assert_grid_matches_date(tz, "America/New_York", utc(1890, 1, 1, 0, 0, 0),
                             utc(2110, 1, 1, 0, 0, 0), 5 * DAY + 3 * HOUR + 17);
    kigen_tz_free(tz);
}

/*
 * Lord Howe Island moves by 30 minutes: +10:30 to +11 on the first Sunday of October at
 * 02:00 local (15:30 UTC the day before), back on the first Sunday of April at 02:00 local
 * (15:00 UTC the day before).
 */
static void test_tz_lord_howe_moves_by_half_an_hour(void **state)
{
    static const int years[] = { 2026, 2037, 2045, 2100 };
    struct kigen_tz *tz = load("Australia/Lord_Howe");

    (void)state;
    for (size_t i = 0; i < sizeof(years) / sizeof(years[0]); i++) {
        int y = years[i];
        int64_t start = utc(y, 10, nth_sunday(y, 10, 1), 2, 0, 0) - 10 * HOUR - 30 * 60;
        int64_t end = utc(y, 4, nth_sunday(y, 4, 1), 2, 0, 0) - 11 * HOUR;

        assert_transition(tz, "Australia/Lord_Howe", start, 10 * HOUR + 1800, 11 * HOUR);
        assert_transition(tz, "Australia/Lord_Howe", end, 11 * HOUR, 10 * HOUR + 1800);
    }
    assert_string_equal(format(tz, utc(2026, 6, 1, 0, 0, 0)), "2026-06-01 10:30 +1030");
    assert_string_equal(format(tz, utc(2045, 1, 1, 0, 0, 0)), "2045-01-01 11:00 +11");
    /* 02:15 on the October Sunday is skipped (02:00 -> 02:30); 01:45 in April repeats. */
    assert_int_equal(to_utc(tz, 2026, 10, 4, 2 * 60 + 15), date_wall_at("+1030", 2026, 10, 4, 135));
    assert_int_equal(to_utc(tz, 2026, 4, 5, 60 + 45), date_wall_at("+1100", 2026, 4, 5, 105));
    assert_grid_matches_date(tz, "Australia/Lord_Howe", utc(1970, 1, 1, 0, 0, 0),
                             utc(2110, 1, 1, 0, 0, 0), 3 * DAY + 5 * HOUR + 13);
    kigen_tz_free(tz);
}

/* Zones with odd rules, over two centuries, against date. */
static void test_tz_many_zones_match_date(void **state)
{
    static const char *const zones[] = {
        "Europe/Dublin",    "Africa/Casablanca", "America/Sao_Paulo", "Pacific/Chatham",
        "America/St_Johns", "Asia/Kolkata",      "America/Nuuk",      "Asia/Jerusalem",
        "Pacific/Apia",     "Antarctica/Troll",  "America/Santiago",  "Asia/Tehran",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        struct kigen_tz *tz = load(zones[i]);

        assert_grid_matches_date(tz, zones[i], utc(1900, 1, 1, 0, 0, 0), utc(2100, 1, 1, 0, 0, 0),
                                 11 * DAY + 7 * HOUR + 1);
        kigen_tz_free(tz);
    }
}

/* Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC. */
static void test_tz_wall_time_in_a_gap_moves_forward(void **state)
{
    struct kigen_tz *tz = load("Europe/Berlin");
    struct kigen_tz *ny = load("America/New_York");
    int64_t change = utc(2026, 3, 29, 1, 0, 0);

    (void)state;
    assert_int_equal(to_utc(tz, 2026, 3, 29, 60 + 59),
                     date_wall("Europe/Berlin", 2026, 3, 29, 119));
    assert_int_equal(to_utc(tz, 2026, 3, 29, 60 + 59), change - 60);
    /* 02:00 and 02:30 do not exist: they are read as CET, i.e. moved an hour forward. */
    assert_int_equal(to_utc(tz, 2026, 3, 29, 2 * 60), change);
    assert_int_equal(to_utc(tz, 2026, 3, 29, 2 * 60), date_wall_at("+0100", 2026, 3, 29, 120));
    assert_int_equal(to_utc(tz, 2026, 3, 29, 2 * 60 + 30), date_wall_at("+0100", 2026, 3, 29, 150));
    assert_string_equal(format(tz, to_utc(tz, 2026, 3, 29, 2 * 60 + 30)), "2026-03-29 03:30 CEST");
    assert_int_equal(to_utc(tz, 2026, 3, 29, 3 * 60), date_wall("Europe/Berlin", 2026, 3, 29, 180));
    assert_int_equal(to_utc(tz, 2026, 3, 29, 3 * 60), change);
    /* In the footer's years too. */
    assert_int_equal(to_utc(tz, 2100, 3, 28, 2 * 60 + 30), date_wall_at("+0100", 2100, 3, 28, 150));
    /* New York, 2026-03-08: 02:00 EST becomes 03:00 EDT. */
    assert_int_equal(to_utc(ny, 2026, 3, 8, 2 * 60 + 30), date_wall_at("-0500", 2026, 3, 8, 150));
    assert_int_equal(to_utc(ny, 2026, 3, 8, 3 * 60),
                     date_wall("America/New_York", 2026, 3, 8, 180));
    kigen_tz_free(ny);
    kigen_tz_free(tz);
}

/* Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:xx happens twice. */
static void test_tz_ambiguous_wall_time_takes_the_earlier_instant(void **state)
{
    struct kigen_tz *tz = load("Europe/Berlin");
    struct kigen_tz *ny = load("America/New_York");
    int64_t change = utc(2026, 10, 25, 1, 0, 0);

    (void)state;
    assert_int_equal(to_utc(tz, 2026, 10, 25, 60 + 59),
                     date_wall("Europe/Berlin", 2026, 10, 25, 119));
    assert_int_equal(to_utc(tz, 2026, 10, 25, 2 * 60), change - HOUR);
    assert_int_equal(to_utc(tz, 2026, 10, 25, 2 * 60 + 30),
                     date_wall_at("+0200", 2026, 10, 25, 150));
    assert_int_equal(to_utc(tz, 2026, 10, 25, 2 * 60 + 59), change - 60);
    assert_string_equal(format(tz, change - 60), "2026-10-25 02:59 CEST");
    assert_string_equal(format(tz, change), "2026-10-25 02:00 CET");
    assert_int_equal(to_utc(tz, 2026, 10, 25, 3 * 60),
                     date_wall("Europe/Berlin", 2026, 10, 25, 180));
    assert_int_equal(to_utc(tz, 2026, 10, 25, 3 * 60), change + HOUR);
    assert_int_equal(to_utc(tz, 2045, 10, 29, 2 * 60 + 30),
                     date_wall_at("+0200", 2045, 10, 29, 150));
    assert_int_equal(to_utc(ny, 2026, 11, 1, 60 + 30), date_wall_at("-0400", 2026, 11, 1, 90));
    kigen_tz_free(ny);
    kigen_tz_free(tz);
}

/* Unambiguous noon wall times against date's parser, over many years. */
static void test_tz_to_utc_matches_date(void **state)
{
    static const char *const zones[] = { "Asia/Tokyo", "Europe/Berlin", "America/New_York",
                                         "Australia/Lord_Howe", "Pacific/Chatham" };
    char path[64], line[64];

    (void)state;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        struct kigen_tz *tz = load(zones[z]);
        char *lines[160];
        int64_t got[160];
        FILE *f;

        for (size_t i = 0; i < 160; i++) {
            int y = 1975 + (int)i * 7 / 8, mo = 1 + (int)(i * 5 % 12), d = 1 + (int)(i * 11 % 28);
            int minute = 12 * 60 + (int)(i * 13 % 120);

            lines[i] = malloc(96);
            assert_non_null(lines[i]);
            snprintf(lines[i], 96, "TZ=\"%s\" %04d-%02d-%02d %02d:%02d", zones[z], y, mo, d,
                     minute / 60, minute % 60);
            got[i] = to_utc(tz, y, mo, d, minute);
        }
        f = run_date("", "+%s", (const char *const *)lines, 160, path);
        for (size_t i = 0; i < 160; i++) {
            assert_non_null(fgets(line, sizeof(line), f));
            if (got[i] != strtoll(line, NULL, 10))
                fail_msg("%s: %lld, date says %s", lines[i], (long long)got[i], line);
            free(lines[i]);
        }
        finish_date(f, path);
        kigen_tz_free(tz);
    }
}

static void test_tz_to_utc_rejects_dates_that_do_not_exist(void **state)
{
    struct kigen_tz *tz = load("Asia/Tokyo");
    int64_t t = 42;

    (void)state;
    assert_int_equal(kigen_tz_to_utc(tz, 2027, 2, 29, 0, &t), -EINVAL);
    assert_int_equal(kigen_tz_to_utc(tz, 2026, 4, 31, 0, &t), -EINVAL);
    assert_int_equal(kigen_tz_to_utc(tz, 2026, 13, 1, 0, &t), -EINVAL);
    assert_int_equal(kigen_tz_to_utc(tz, 2026, 0, 1, 0, &t), -EINVAL);
    assert_int_equal(kigen_tz_to_utc(tz, 2026, 1, 0, 0, &t), -EINVAL);
    assert_int_equal(kigen_tz_to_utc(tz, 2026, 1, 1, 1440, &t), -EINVAL);
    assert_int_equal(kigen_tz_to_utc(tz, 2026, 1, 1, -1, &t), -EINVAL);
    assert_int_equal(kigen_tz_to_utc(tz, 0, 1, 1, 0, &t), -EINVAL);
    assert_int_equal(kigen_tz_to_utc(tz, 10000, 1, 1, 0, &t), -EINVAL);
    assert_int_equal(t, 42);
    assert_int_equal(to_utc(tz, 2028, 2, 29, 0), utc(2028, 2, 28, 15, 0, 0));
    assert_int_equal(kigen_tz_offset(tz, KIGEN_TZ_TIME_MAX + 1, &(int32_t){ 0 }), -ERANGE);
    assert_int_equal(kigen_tz_offset(tz, INT64_MIN, &(int32_t){ 0 }), -ERANGE);
    kigen_tz_free(tz);
}

static void test_tz_utc_loads_by_both_names(void **state)
{
    struct kigen_tz *a = load("UTC"), *b = load("Etc/UTC");
    int64_t t = utc(2026, 12, 15, 13, 0, 0);

    (void)state;
    assert_int_equal(offset(a, t), 0);
    assert_int_equal(offset(b, utc(2100, 6, 1, 0, 0, 0)), 0);
    assert_string_equal(format(a, t), "2026-12-15 13:00 UTC");
    assert_int_equal(to_utc(b, 2026, 12, 15, 13 * 60), t);
    kigen_tz_free(a);
    kigen_tz_free(b);
    kigen_tz_free(NULL);
}

static void test_tz_format_reports_a_short_buffer(void **state)
{
    struct kigen_tz *tz = load("Asia/Tokyo");
    struct kigen_tz_tm tm;
    char buf[10];

    (void)state;
    assert_int_equal(kigen_tz_format(tz, 0, buf, sizeof(buf)), -ENOBUFS);
    assert_int_equal(kigen_tz_format(tz, 0, buf, 0), -ENOBUFS);
    assert_int_equal(kigen_tz_format(tz, -KIGEN_TZ_TIME_MAX - 1, buf, sizeof(buf)), -ERANGE);
    assert_int_equal(kigen_tz_local(tz, utc(2026, 12, 15, 14, 59, 58), &tm), 0);
    assert_int_equal(tm.year, 2026);
    assert_int_equal(tm.month, 12);
    assert_int_equal(tm.day, 15);
    assert_int_equal(tm.hour, 23);
    assert_int_equal(tm.minute, 59);
    assert_int_equal(tm.second, 58);
    assert_int_equal(tm.weekday, 2);
    assert_int_equal(tm.utoff, 9 * HOUR);
    assert_string_equal(tm.abbr, "JST");
    /* Before 1970 the floor, not the truncation, of the day. */
    assert_int_equal(kigen_tz_local(tz, utc(1969, 12, 31, 14, 0, 0), &tm), 0);
    assert_int_equal(tm.year, 1969);
    assert_int_equal(tm.day, 31);
    assert_int_equal(tm.hour, 23);
    assert_int_equal(tm.weekday, 3);
    kigen_tz_free(tz);
}

static void test_tz_load_refuses_names_that_leave_the_directory(void **state)
{
    static const char *const bad[] = {
        "",
        "/etc/passwd",
        "../etc/passwd",
        "Asia/../../etc/passwd",
        "Asia/./Tokyo",
        "Asia/Tokyo ",
        "Asia\\Tokyo",
        "Asia/Tokyo\n",
        "zone1970.tab",
        "$HOME",
    };
    struct kigen_tz *tz = NULL;
    char longname[300];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(kigen_tz_load(bad[i], &tz), -EINVAL);
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(kigen_tz_load(longname, &tz), -EINVAL);
    assert_int_equal(kigen_tz_load("Nowhere/Atlantis", &tz), -ENOENT);
    assert_int_equal(kigen_tz_load("Asia", &tz), -EINVAL);      /* a directory */
    assert_int_equal(kigen_tz_load("tzdata.zi", &tz), -EINVAL); /* '.' is not in a zone name */
    assert_null(tz);
}

static void test_tz_leap_second_zones_are_refused(void **state)
{
    struct kigen_tz *tz = NULL;
    struct stat st;

    (void)state;
    if (stat(KIGEN_TZ_DIR "right/Asia/Tokyo", &st) < 0)
        fail_msg("tzdata's right/ zones are missing: install tzdata");
    assert_int_equal(kigen_tz_load("right/Asia/Tokyo", &tz), -EOPNOTSUPP);
    assert_null(tz);
}

/* Hostile files, through kigen_tz_parse on exact-size heap copies so ASan sees overreads. */

static uint8_t *read_zone(const char *name, size_t *ret_len)
{
    char path[256];
    uint8_t *buf = malloc(KIGEN_TZ_MAX_SIZE);
    ssize_t n;
    int fd;

    assert_non_null(buf);
    snprintf(path, sizeof(path), "%s%s", KIGEN_TZ_DIR, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    n = read(fd, buf, KIGEN_TZ_MAX_SIZE);
    assert_true(n > 0);
    close(fd);
    *ret_len = (size_t)n;
    return buf;
}

static int parse_copy(const uint8_t *buf, size_t len, struct kigen_tz **ret)
{
    uint8_t *copy = malloc(len ? len : 1);
    int r;

    assert_non_null(copy);
    memcpy(copy, buf, len);
    r = kigen_tz_parse(copy, len, ret);
    free(copy);
    return r;
}

/* Everything a parsed zone offers, over centuries; the point is that nothing crashes. */
static void exercise(const struct kigen_tz *tz)
{
    char out[KIGEN_TZ_FORMAT_LEN];
    struct kigen_tz_tm tm;
    int32_t off;
    int64_t t;

    for (t = -KIGEN_TZ_TIME_MAX; t < KIGEN_TZ_TIME_MAX / 2; t += KIGEN_TZ_TIME_MAX / 8)
        assert_int_equal(kigen_tz_offset(tz, t, &off), 0);
    for (t = utc(1900, 1, 1, 0, 0, 0); t < utc(2200, 1, 1, 0, 0, 0); t += 97 * DAY + 11)
        assert_int_equal(kigen_tz_format(tz, t, out, sizeof(out)), 0);
    for (int y = 1; y <= 9999; y += 37)
        assert_int_equal(kigen_tz_to_utc(tz, y, 1 + y % 12, 1 + y % 28, y % 1440, &t), 0);
    assert_int_equal(kigen_tz_local(tz, KIGEN_TZ_TIME_MAX, &tm), 0);
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The offset of the second header in a version 2+ file (RFC 8536 §3). */
static size_t v2_header_offset(const uint8_t *buf)
{
    uint32_t isut = be32_at(buf + 20), isstd = be32_at(buf + 24), leap = be32_at(buf + 28),
             time = be32_at(buf + 32), type = be32_at(buf + 36), chars = be32_at(buf + 40);

    return 44 + time * 5 + type * 6 + chars + leap * 8 + isstd + isut;
}

static void test_tz_parse_refuses_every_truncation(void **state)
{
    size_t len;
    uint8_t *buf = read_zone("Europe/Berlin", &len);
    struct kigen_tz *tz = NULL;

    (void)state;
    assert_int_equal(parse_copy(buf, len, &tz), 0);
    exercise(tz);
    kigen_tz_free(tz);
    tz = NULL;
    for (size_t n = 0; n < len; n++)
        if (parse_copy(buf, n, &tz) != -EINVAL)
            fail_msg("a prefix of %zu bytes was not refused", n);
    assert_null(tz);
    free(buf);
}

/* A real version 1 file: the 32-bit block alone, no footer; the last type stays. */
static void test_tz_parse_reads_version_1(void **state)
{
    size_t len;
    uint8_t *buf = read_zone("Europe/Berlin", &len);
    struct kigen_tz *tz = NULL;

    (void)state;
    buf[4] = 0;
    assert_int_equal(parse_copy(buf, v2_header_offset(buf), &tz), 0);
    assert_int_equal(offset(tz, utc(2026, 3, 29, 1, 0, 0) - 1), HOUR);
    assert_int_equal(offset(tz, utc(2026, 3, 29, 1, 0, 0)), 2 * HOUR);
    assert_int_equal(offset(tz, utc(2026, 10, 25, 1, 0, 0)), HOUR);
    kigen_tz_free(tz);
    free(buf);
}

/* A little PRNG (xorshift32) so that the random tests repeat exactly. */
static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void test_tz_parse_survives_random_data_after_valid_headers(void **state)
{
    static const char *const zones[] = { "Europe/Berlin", "America/New_York", "Asia/Tokyo" };
    uint32_t seed = 0x6b696765;

    (void)state;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        size_t len, v2;
        uint8_t *buf = read_zone(zones[z], &len), *copy = malloc(len);

        assert_non_null(copy);
        v2 = v2_header_offset(buf);
        for (int round = 0; round < 2000; round++) {
            struct kigen_tz *tz = NULL;
            int r;

            /* Both headers kept, every data byte random: sizes agree, contents do not. */
            memcpy(copy, buf, len);
            for (size_t i = 44; i < len; i++)
                if (i < v2 || i >= v2 + 44)
                    copy[i] = (uint8_t)next_random(&seed);
            r = parse_copy(copy, len, &tz);
            assert_true(r == 0 || r == -EINVAL || r == -EOPNOTSUPP);
            if (r == 0)
                exercise(tz);
            kigen_tz_free(tz);
        }
        free(copy);
        free(buf);
    }
}

static void test_tz_parse_survives_mutations(void **state)
{
    static const char *const zones[] = { "Europe/Berlin", "Australia/Lord_Howe" };
    uint32_t seed = 0x747a6966;
    int parsed = 0;

    (void)state;
    for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
        size_t len;
        uint8_t *buf = read_zone(zones[z], &len), *copy = malloc(len);

        assert_non_null(copy);
        for (int round = 0; round < 3000; round++) {
            struct kigen_tz *tz = NULL;
            int r, flips = 1 + (int)(next_random(&seed) % 4);

            memcpy(copy, buf, len);
            while (flips-- > 0)
                copy[next_random(&seed) % len] = (uint8_t)next_random(&seed);
            r = parse_copy(copy, len, &tz);
            assert_true(r == 0 || r == -EINVAL || r == -EOPNOTSUPP);
            if (r == 0) {
                parsed++;
                exercise(tz);
            }
            kigen_tz_free(tz);
        }
        free(copy);
        free(buf);
    }
    /* Most flips land in transition times or names and still parse: the walk ran. */
    assert_true(parsed > 100);
}

static void test_tz_parse_refuses_huge_counts(void **state)
{
    static const uint32_t huge[] = { 0xffffffff, 0x80000000, 0x7fffffff, 0x10000000, 100000 };
    size_t len, v2;
    uint8_t *buf = read_zone("Europe/Berlin", &len), *copy = malloc(len);
    struct kigen_tz *tz = NULL;

    (void)state;
    assert_non_null(copy);
    v2 = v2_header_offset(buf);
    for (size_t h = 0; h < 2; h++) {
        for (size_t field = 0; field < 6; field++) {
            for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
                memcpy(copy, buf, len);
                put_be32(copy + (h ? v2 : 0) + 20 + field * 4, huge[i]);
                assert_int_equal(parse_copy(copy, len, &tz), -EINVAL);
            }
        }
    }
    /* typecnt and charcnt must not be zero (RFC 8536 §3.1). */
    memcpy(copy, buf, len);
    put_be32(copy + v2 + 36, 0);
    assert_int_equal(parse_copy(copy, len, &tz), -EINVAL);
    memcpy(copy, buf, len);
    put_be32(copy + v2 + 40, 0);
    assert_int_equal(parse_copy(copy, len, &tz), -EINVAL);
    /* A bad magic or version. */
    memcpy(copy, buf, len);
    copy[0] = 'X';
    assert_int_equal(parse_copy(copy, len, &tz), -EINVAL);
    memcpy(copy, buf, len);
    copy[v2 + 4] = '1';
    assert_int_equal(parse_copy(copy, len, &tz), -EINVAL);
    free(copy);
    copy = calloc(1, KIGEN_TZ_MAX_SIZE + 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    assert_int_equal(kigen_tz_parse(copy, KIGEN_TZ_MAX_SIZE + 1, &tz), -EFBIG);
    assert_null(tz);
    free(copy);
    free(buf);
}

/*
 * A small version 2 file built by hand: a minimal version 1 block, then transitions, types
 * ("AAA\0BBB\0" designations) and the footer. Returns its length in out.
 */
struct zone_spec {
    size_t n_times;
    int64_t times[4];
    uint8_t types_at[4];
    size_t n_types;
    int32_t utoff[3];
    uint8_t isdst[3];
    uint8_t desig[3];
    const char *chars;
    size_t n_chars;
    const char *footer; /* NULL: omit the footer entirely */
    int footer_len;     /* -1: strlen */
};

static size_t build_zone(const struct zone_spec *z, uint8_t *out)
{
    uint8_t *p = out;

    memset(out, 0, 512);
    memcpy(p, "TZif2", 5);
    put_be32(p + 36, 1);
    put_be32(p + 40, 1);
    p += 44 + 6 + 1;
    memcpy(p, "TZif2", 5);
    put_be32(p + 32, (uint32_t)z->n_times);
    put_be32(p + 36, (uint32_t)z->n_types);
    put_be32(p + 40, (uint32_t)z->n_chars);
    p += 44;
    for (size_t i = 0; i < z->n_times; i++, p += 8) {
        put_be32(p, (uint32_t)((uint64_t)z->times[i] >> 32));
        put_be32(p + 4, (uint32_t)z->times[i]);
    }
    for (size_t i = 0; i < z->n_times; i++)
        *p++ = z->types_at[i];
    for (size_t i = 0; i < z->n_types; i++, p += 6) {
        put_be32(p, (uint32_t)z->utoff[i]);
        p[4] = z->isdst[i];
        p[5] = z->desig[i];
    }
    memcpy(p, z->chars, z->n_chars);
    p += z->n_chars;
    if (z->footer) {
        size_t n = z->footer_len < 0 ? strlen(z->footer) : (size_t)z->footer_len;

        *p++ = '\n';
        memcpy(p, z->footer, n);
        p += n;
        *p++ = '\n';
    }
    return (size_t)(p - out);
}

/* A zone that is its footer alone: no transitions, one type. */
static int parse_footer(const char *footer, struct kigen_tz **ret)
{
    struct zone_spec z = {
        .n_types = 1, .chars = "AAA", .n_chars = 4, .footer = footer, .footer_len = -1
    };
    uint8_t buf[512];

    return parse_copy(buf, build_zone(&z, buf), ret);
}

static void test_tz_parse_refuses_bad_footers(void **state)
{
    static const char *const bad[] = {
        "JST",                          /* no offset */
        "JS-9",                         /* abbreviation shorter than 3 */
        "JSTJSTJSTJSTJSTJ-9",           /* longer than kigen keeps */
        "JST-25",                       /* POSIX offsets stop at 24 hours */
        "JST-9:60",                     /* minutes */
        "JST-9:00:60",                  /* seconds */
        "JST-9x",                       /* trailing text */
        "JST-9JDT",                     /* daylight saving time with no rule */
        "<+0330",                       /* unclosed */
        "<+03>-3<",                     /* unclosed dst */
        "<+3>-3",                       /* quoted but short */
        "<+03:30>-3:30",                /* ':' in a quoted name */
        "CET-1CEST,M13.5.0,M10.5.0/3",  /* month 13 */
        "CET-1CEST,M0.5.0,M10.5.0/3",   /* month 0 */
        "CET-1CEST,M3.6.0,M10.5.0/3",   /* week 6 */
        "CET-1CEST,M3.0.0,M10.5.0/3",   /* week 0 */
        "CET-1CEST,M3.5.7,M10.5.0/3",   /* weekday 7 */
        "CET-1CEST,M3.5,M10.5.0/3",     /* missing weekday */
        "CET-1CEST,M3.5.0",             /* missing end */
        "CET-1CEST,M3.5.0,",            /* empty end */
        "CET-1CEST,M3.5.0,M10.5.0/168", /* beyond 167 hours (RFC 8536 §3.3.1) */
        "CET-1CEST,M3.5.0/-168,M10.5.0",
        "CET-1CEST,J0,J300",   /* Jn starts at 1 */
        "CET-1CEST,J366,J300", /* and ends at 365 */
        "CET-1CEST,366,300",   /* n ends at 365 */
        "CET-1CEST,M3.5.0,M10.5.0/3,",
        "CET-1CEST,X3,M10.5.0",
        "CET-1CEST,M3.5.0/,M10.5.0",
        "CET-1CEST,M3.5.0/2:,M10.5.0",
        "CET-1CEST-99999999999999999999,M3.5.0,M10.5.0",
        "-1CET",
        "JST\n-9",
    };
    struct zone_spec z = {
        .n_types = 1, .chars = "AAA", .n_chars = 4, .footer = "JST\0-9", .footer_len = 6
    };
    struct kigen_tz *tz = NULL;
    uint8_t buf[512];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse_footer(bad[i], &tz) != -EINVAL)
            fail_msg("footer '%s' was not refused", bad[i]);
    /* A NUL inside, no closing newline, no footer at all. */
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z.footer = NULL;
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z.footer = "JST-9";
    assert_int_equal(parse_copy(buf, build_zone(&z, buf) - 1, &tz), -EINVAL);
    assert_null(tz);
}

/*
 * POSIX TZ rules in every form, each checked against glibc reading the same string. Not
 * DST all year ("EST5EDT,0/0,J365/25"): glibc weighs each UTC year's rule alone and shows
 * standard time in the hours before the local new year; the next test pins RFC 8536.
 */
static void test_tz_footer_rules_match_date(void **state)
{
    static const char *const good[] = {
        "JST-9",
        "<+0330>-3:30",
        "<-0330>3:30",
        "CET-1CEST,M3.5.0,M10.5.0/3",
        "EST5EDT,M3.2.0,M11.1.0",
        "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", /* southern: DST across the new year */
        "<-03>3<-02>,M3.5.0/-2,M10.5.0/-1",     /* negative times */
        "IST-2IDT,M3.4.4/26,M10.5.0",           /* past 24 hours */
        "XXX0YYY,M3.5.0/167,M10.5.0/-167",      /* the RFC 8536 §3.3.1 limits */
        "AAA3BBB,J60/2,J300/2",                 /* Jn: February 29 never counted */
        "AAA3BBB,59/2,299/2",                   /* n: February 29 counted */
        "AAA+3:15:30BBB+2:15:30,M1.1.1/0:30:15,M11.5.6/23:59:59",
        "<+00>0<+02>-2,M3.5.0/1,M10.5.0/3",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct kigen_tz *tz = NULL;

        if (parse_footer(good[i], &tz) != 0)
            fail_msg("footer '%s' was refused", good[i]);
        assert_grid_matches_date(tz, good[i], utc(1970, 1, 1, 0, 0, 0), utc(2110, 1, 1, 0, 0, 0),
                                 6 * DAY + 5 * HOUR + 29 * 60 + 7);
        /* Around the leap day, where Jn and n part. */
        assert_grid_matches_date(tz, good[i], utc(2028, 2, 26, 0, 0, 0), utc(2028, 3, 3, 0, 0, 0),
                                 HOUR + 1);
        assert_grid_matches_date(tz, good[i], utc(2027, 2, 26, 0, 0, 0), utc(2027, 3, 3, 0, 0, 0),
                                 HOUR + 1);
        kigen_tz_free(tz);
    }
}

static void test_tz_footer_names_and_all_year_dst(void **state)
{
    struct kigen_tz *tz = NULL;

    (void)state;
    assert_int_equal(parse_footer("<+0330>-3:30", &tz), 0);
    assert_string_equal(format(tz, utc(2026, 1, 1, 0, 0, 0)), "2026-01-01 03:30 +0330");
    kigen_tz_free(tz);
    assert_int_equal(parse_footer("EST5EDT,0/0,J365/25", &tz), 0);
    for (int y = 2020; y < 2030; y++) {
        assert_int_equal(offset(tz, utc(y, 1, 1, 4, 0, 0) - 1), -4 * HOUR);
        assert_int_equal(offset(tz, utc(y, 1, 1, 4, 0, 0)), -4 * HOUR);
        assert_int_equal(offset(tz, utc(y, 7, 1, 4, 0, 0)), -4 * HOUR);
    }
    assert_string_equal(format(tz, utc(2026, 1, 1, 12, 0, 0)), "2026-01-01 08:00 EDT");
    kigen_tz_free(tz);
}

/* Transitions, types and names that break RFC 8536 §3.2. */
static void test_tz_parse_refuses_bad_records(void **state)
{
    const struct zone_spec base = {
        .n_times = 2,
        .times = { 1000, 2000 },
        .types_at = { 1, 0 },
        .n_types = 2,
        .utoff = { 3600, 7200 },
        .isdst = { 0, 1 },
        .desig = { 0, 4 },
        .chars = "AAA\0BBB",
        .n_chars = 8,
        .footer = "AAA-1",
        .footer_len = -1,
    };
    struct zone_spec z;
    struct kigen_tz *tz = NULL;
    uint8_t buf[512];

    (void)state;
    z = base;
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), 0);
    assert_int_equal(offset(tz, 999), 3600);
    assert_int_equal(offset(tz, 1000), 7200);
    assert_string_equal(format(tz, 1999), "1970-01-01 02:33 BBB");
    assert_int_equal(offset(tz, 2000), 3600);
    assert_int_equal(offset(tz, 5000), 3600);
    kigen_tz_free(tz);
    tz = NULL;
    z = base;
    z.times[1] = 1000; /* not strictly ascending */
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z = base;
    z.times[0] = 3000;
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z = base;
    z.types_at[1] = 2; /* no such type */
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z = base;
    z.desig[1] = 8; /* past the designations */
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z = base;
    z.chars = "AAA\0BBBB"; /* "BBBB" has no NUL */
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z = base;
    z.isdst[0] = 2;
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z = base;
    z.utoff[0] = INT32_MIN;
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    z = base;
    z.utoff[1] = 26 * HOUR;
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), -EINVAL);
    /* Extreme but ordered transition times are fine, and lookups stay sane. */
    z = base;
    z.times[0] = INT64_MIN;
    z.times[1] = INT64_MAX;
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), 0);
    exercise(tz);
    kigen_tz_free(tz);
    tz = NULL;
    /* An empty footer: the last type stays for ever. */
    z = base;
    z.footer = "";
    assert_int_equal(parse_copy(buf, build_zone(&z, buf), &tz), 0);
    assert_int_equal(offset(tz, utc(2100, 1, 1, 0, 0, 0)), 3600);
    kigen_tz_free(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tz_tokyo_is_always_plus_nine),
        cmocka_unit_test(test_tz_berlin_changes_to_the_second),
        cmocka_unit_test(test_tz_new_york_changes_to_the_second),
        cmocka_unit_test(test_tz_lord_howe_moves_by_half_an_hour),
        cmocka_unit_test(test_tz_many_zones_match_date),
        cmocka_unit_test(test_tz_wall_time_in_a_gap_moves_forward),
        cmocka_unit_test(test_tz_ambiguous_wall_time_takes_the_earlier_instant),
        cmocka_unit_test(test_tz_to_utc_matches_date),
        cmocka_unit_test(test_tz_to_utc_rejects_dates_that_do_not_exist),
        cmocka_unit_test(test_tz_utc_loads_by_both_names),
        cmocka_unit_test(test_tz_format_reports_a_short_buffer),
        cmocka_unit_test(test_tz_load_refuses_names_that_leave_the_directory),
        cmocka_unit_test(test_tz_leap_second_zones_are_refused),
        cmocka_unit_test(test_tz_parse_refuses_every_truncation),
        cmocka_unit_test(test_tz_parse_reads_version_1),
        cmocka_unit_test(test_tz_parse_survives_random_data_after_valid_headers),
        cmocka_unit_test(test_tz_parse_survives_mutations),
        cmocka_unit_test(test_tz_parse_refuses_huge_counts),
        cmocka_unit_test(test_tz_parse_refuses_bad_footers),
        cmocka_unit_test(test_tz_footer_rules_match_date),
        cmocka_unit_test(test_tz_footer_names_and_all_year_dst),
        cmocka_unit_test(test_tz_parse_refuses_bad_records),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
