#include "timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm). */
int64_t kigen_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void kigen_civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *ret_d = doy - (153 * mp + 2) / 5 + 1;
    *ret_m = mp < 10 ? mp + 3 : mp - 9;
    *ret_y = (int64_t)yoe + era * 400 + (*ret_m <= 2);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

void kigen_time_format_utc(int64_t t, char *out)
{
    int64_t days = floor_div(t, 86400), secs = t - days * 86400, y;
    unsigned m, d;

    kigen_civil_from_days(days, &y, &m, &d);
    snprintf(out, KIGEN_RFC3339_LEN, "%04lld-%02u-%02uT%02d:%02d:%02dZ", (long long)y, m, d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

static int digits(const char **p, int n, int *ret)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -EINVAL;
        v = v * 10 + (*(*p)++ - '0');
    }
    *ret = v;
    return 0;
}

static int expect(const char **p, const char *set)
{
    if (**p == '\0' || !strchr(set, **p))
        return -EINVAL;
    (*p)++;
    return 0;
}

int kigen_time_parse(const char *s, int64_t *ret_t)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
    static const unsigned char mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (digits(&p, 4, &y) < 0 || expect(&p, "-") < 0 || digits(&p, 2, &mo) < 0 ||
        expect(&p, "-") < 0 || digits(&p, 2, &d) < 0 || expect(&p, "Tt ") < 0 ||
        digits(&p, 2, &h) < 0 || expect(&p, ":") < 0 || digits(&p, 2, &mi) < 0 ||
        expect(&p, ":") < 0 || digits(&p, 2, &sec) < 0)
        return -EINVAL;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (digits(&p, 2, &oh) < 0 || expect(&p, ":") < 0 || digits(&p, 2, &om) < 0)
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 ||
        sec > 60 || oh > 23 || om > 59)
        return -EINVAL;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return -EINVAL;
    if (sec == 60)
        sec = 59; /* a leap second is the last second of its minute */
    *ret_t = kigen_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
             sec - sign * (oh * 3600 + om * 60);
    return 0;
}

int64_t kigen_days_left(int64_t not_after, int64_t now)
{
    return floor_div(not_after - now, 86400);
}

void kigen_time_format_local(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!localtime_r(&tt, &tm) || strftime(out, outlen, "%Y-%m-%d %H:%M %Z", &tm) == 0)
        kigen_time_format_utc(t, out);
}

void kigen_time_use_zone(const char *tz)
{
    setenv("TZ", tz && *tz ? tz : "UTC", 1);
    tzset();
}

uint64_t kigen_monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
