/*
 * Time zones (RFC 8536 TZif, with the POSIX TZ string of its footer): kigen_tz_parse() on
 * hostile bytes, then every query of tz.h on what it accepted, and a maintenance window
 * search (kigen_maint_window) in that zone. The zones kigen reads come from
 * /usr/share/zoneinfo, but tz.h promises that any buffer is safe, and a broken zone must not
 * make the maintenance search loop or overflow.
 *
 * Input: 16 bytes of query, then the TZif file.
 *   0..7   instant t, big-endian two's complement
 *   8..9   year (mod 10001), 10 month (mod 13), 11 day (mod 32), 12..13 minute (mod 1440)
 *   14     schedule: kind (mod 3), weekday (bits 2..4, mod 7), nth (bits 5..7: 0..3 -> 1..4,
 *          else last)
 *   15     duration: 1 s, 1 h, 10 h, 1 d, 7 d, 40 d or 366 d (mod 7)
 * Queries also run at a few fixed instants around the range limits.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "maint.h"
#include "timeutil.h"
#include "tz.h"

#define PARAMS   16
#define DAY      86400
#define MAX_SKEW (27 * 3600) /* tz.c UTOFF_SLACK: no offset is wider */

static int64_t be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static void check_instant(const struct kigen_tz *tz, int64_t t)
{
    struct kigen_tz_tm tm;
    char out[KIGEN_TZ_FORMAT_LEN], tiny[6];
    int32_t utoff;
    int r;

    r = kigen_tz_offset(tz, t, &utoff);
    FUZZ_CHECK(r == 0 || r == -ERANGE);
    if (r < 0)
        return;
    FUZZ_CHECK(utoff > -26 * 3600 && utoff < 26 * 3600);
    FUZZ_CHECK(kigen_tz_local(tz, t, &tm) == 0);
    FUZZ_CHECK(tm.utoff == utoff);
    FUZZ_CHECK(tm.month >= 1 && tm.month <= 12 && tm.day >= 1 && tm.day <= 31);
    FUZZ_CHECK(tm.hour >= 0 && tm.hour < 24 && tm.minute >= 0 && tm.minute < 60);
    FUZZ_CHECK(tm.second >= 0 && tm.second < 60 && tm.weekday >= 0 && tm.weekday < 7);
    FUZZ_CHECK(tm.abbr != NULL);
    /* KIGEN_TZ_FORMAT_LEN is always enough (tz.h). */
    r = kigen_tz_format(tz, t, out, sizeof(out));
    if (r != 0)
        fprintf(stderr, "kigen_tz_format: %d for abbreviation of %zu bytes\n", r, strlen(tm.abbr));
    FUZZ_CHECK(r == 0);
    FUZZ_CHECK(strlen(out) < sizeof(out) && fuzz_is_one_line(out));
    r = kigen_tz_format(tz, t, tiny, sizeof(tiny));
    FUZZ_CHECK(r == -ENOBUFS && strlen(tiny) < sizeof(tiny));
}

static void check_wall(const struct kigen_tz *tz, int year, int month, int day, int minute)
{
    int64_t t, naive;
    int r;

    r = kigen_tz_to_utc(tz, year, month, day, minute, &t);
    FUZZ_CHECK(r == 0 || r == -EINVAL);
    if (r < 0)
        return;
    /* The wall time read as UTC: no offset or gap moves an instant further than that. */
    naive = kigen_days_from_civil(year, (unsigned)month, (unsigned)day) * DAY + minute * 60;
    FUZZ_CHECK(t >= naive - MAX_SKEW && t <= naive + MAX_SKEW);
    check_instant(tz, t);
}

static void check_window(const struct kigen_tz *tz, const struct kigen_maintenance *m, int64_t t)
{
    int64_t start = 0, end = 0;
    int r;

    r = kigen_maint_window(m, tz, t, &start, &end);
    FUZZ_CHECK(r == 0 || r == 1 || r == -EINVAL || r == -ERANGE || r == -ENOENT);
    if (r < 0)
        return;
    FUZZ_CHECK(end - start == m->duration);
    if (r == 1)
        FUZZ_CHECK(start <= t && t < end);
    else
        FUZZ_CHECK(start > t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t durations[] = { 1, 3600, 36000, DAY, 7 * DAY, 40 * DAY, 366 * DAY };
    static const int64_t fixed[] = {
        0,
        1795521600,
        -KIGEN_TZ_TIME_MAX,
        KIGEN_TZ_TIME_MAX,
        -62135596800 /* 0001-01-01 */,
        253402300799 /* 9999-12-31T23:59:59Z */,
        INT64_MIN,
        INT64_MAX,
    };
    struct kigen_maintenance m = { 0 };
    struct kigen_tz *tz = NULL;
    int64_t t;
    int year, month, day, minute, r;

    if (size < PARAMS)
        return 0;
    r = kigen_tz_parse(data + PARAMS, size - PARAMS, &tz);
    FUZZ_CHECK(r == 0 || r == -EINVAL || r == -EFBIG || r == -EOPNOTSUPP || r == -ENOMEM);
    if (r < 0)
        return 0;
    t = be64(data);
    year = (data[8] << 8 | data[9]) % 10001;
    month = data[10] % 13;
    day = data[11] % 32;
    minute = (data[12] << 8 | data[13]) % 1440;
    m.every.kind = (enum kigen_every_kind)(data[14] % 3);
    m.every.weekday = (data[14] >> 2 & 7) % 7;
    m.every.nth = (data[14] >> 5) < 4 ? (data[14] >> 5) + 1 : -1;
    m.at_minute = minute;
    m.duration = durations[data[15] % 7];

    check_instant(tz, t);
    check_wall(tz, year, month, day, minute);
    check_window(tz, &m, t);
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        check_instant(tz, fixed[i]);
        check_window(tz, &m, fixed[i]);
    }
    check_wall(tz, 1, 1, 1, 0);
    check_wall(tz, 9999, 12, 31, 1439);
    kigen_tz_free(tz);
    return 0;
}
