/*
 * Maintenance windows, anchored on local dates: each date that matches `every` starts a
 * window at its `at` wall time, found with kigen_tz_to_utc(), and it lasts `duration` real
 * seconds. The search walks dates one by one rather than solving for them: at most a few
 * hundred kigen_tz_to_utc() calls, each a binary search, and no calendar special cases.
 */
#include "maint.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400

struct date {
    int year;
    int month;
    int day;
    int weekday; /* 0 = Sunday */
};

/* What a search around an instant found. */
struct found {
    bool is_covered;
    int64_t cover_start; /* the covering window that started last */
    bool has_next;
    int64_t next_start; /* the first window that starts after the instant */
};

struct kigen_maint_set {
    struct kigen_maintenance *windows; /* copies without names; timezone: the zone loaded */
    size_t *zone_of;                   /* windows[i] uses zones[zone_of[i]] */
    size_t n_windows;
    struct kigen_tz **zones;
    size_t n_zones;
};

static int days_in_month(int y, int m)
{
    static const unsigned char mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool is_leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);

    return mdays[m - 1] + (m == 2 && is_leap);
}

static void date_next(struct date *d)
{
    d->weekday = (d->weekday + 1) % 7;
    if (++d->day <= days_in_month(d->year, d->month))
        return;
    d->day = 1;
    if (++d->month <= 12)
        return;
    d->month = 1;
    d->year++;
}

static void date_prev(struct date *d)
{
    d->weekday = (d->weekday + 6) % 7;
    if (--d->day >= 1)
        return;
    if (--d->month < 1) {
        d->month = 12;
        d->year--;
    }
    d->day = days_in_month(d->year, d->month);
}

/* Whether a window starts on local date d: "third tuesday" is days 15..21, "last" the final 7. */
static bool is_window_date(const struct kigen_every *e, const struct date *d)
{
    switch (e->kind) {
    case KIGEN_EVERY_DAILY:
        return true;
    case KIGEN_EVERY_WEEKLY:
        return d->weekday == e->weekday;
    case KIGEN_EVERY_MONTHLY:
        if (d->weekday != e->weekday)
            return false;
        if (e->nth == -1)
            return d->day + 7 > days_in_month(d->year, d->month);
        return (d->day - 1) / 7 + 1 == e->nth;
    }
    return false;
}

static bool is_valid_window(const struct kigen_maintenance *m)
{
    const struct kigen_every *e = &m->every;

    if (m->at_minute < 0 || m->at_minute >= 24 * 60 || m->duration < 1 ||
        m->duration > KIGEN_MAINT_MAX_DURATION)
        return false;
    switch (e->kind) {
    case KIGEN_EVERY_DAILY:
        return true;
    case KIGEN_EVERY_WEEKLY:
        return e->weekday >= 0 && e->weekday <= 6;
    case KIGEN_EVERY_MONTHLY:
        return e->weekday >= 0 && e->weekday <= 6 && (e->nth == -1 || (e->nth >= 1 && e->nth <= 4));
    }
    return false;
}

/*
 * Walks local dates from far enough back that any window still running at t is seen. A
 * start lies within 26 hours of its wall time (RFC 8536 offsets), so starts three or more
 * dates apart are in order: once a future window is found, two more dates settle which is
 * first, even where a zone skips or repeats a date.
 */
static int search(const struct kigen_maintenance *m, const struct kigen_tz *tz, int64_t t,
                  struct found *ret)
{
    struct found f = { .is_covered = false };
    struct kigen_tz_tm tm;
    struct date d;
    int64_t start;
    int i, back, stop = KIGEN_MAINT_SEARCH_DAYS, r;

    if (!is_valid_window(m))
        return -EINVAL;
    r = kigen_tz_local(tz, t, &tm);
    if (r < 0)
        return r;
    d = (struct date){ tm.year, tm.month, tm.day, tm.weekday };
    back = (int)(m->duration / DAY) + 4;
    for (i = 0; i < back; i++)
        date_prev(&d);
    for (i = -back; i <= stop; i++, date_next(&d)) {
        if (!is_window_date(&m->every, &d))
            continue;
        r = kigen_tz_to_utc(tz, d.year, d.month, d.day, m->at_minute, &start);
        if (r < 0)
            return r;
        if (start <= t) {
            if (t - start < m->duration && (!f.is_covered || start > f.cover_start)) {
                f.is_covered = true;
                f.cover_start = start;
            }
        } else if (!f.has_next || start < f.next_start) {
            f.has_next = true;
            f.next_start = start;
            if (stop > i + 2)
                stop = i + 2;
        }
    }
    *ret = f;
    return 0;
}

int kigen_maint_window(const struct kigen_maintenance *m, const struct kigen_tz *tz, int64_t t,
                       int64_t *ret_start, int64_t *ret_end)
{
    struct found f;
    int r;

    r = search(m, tz, t, &f);
    if (r < 0)
        return r;
    if (f.is_covered) {
        *ret_start = f.cover_start;
        *ret_end = f.cover_start + m->duration;
        return 1;
    }
    if (!f.has_next)
        return -ENOENT;
    *ret_start = f.next_start;
    *ret_end = f.next_start + m->duration;
    return 0;
}

/* The set. */

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!errbuf || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static bool names_target(const struct kigen_maintenance *m, const char *target)
{
    size_t i;

    for (i = 0; i < m->targets.n; i++)
        if (strcmp(m->targets.v[i], target) == 0)
            return true;
    return false;
}

static int copy_window(const struct kigen_maintenance *src, const char *zone,
                       struct kigen_maintenance *dst)
{
    size_t i;

    /* The name is only the caller's to log; the copy needs the schedule, zone and targets. */
    *dst = (struct kigen_maintenance){ .every = src->every,
                                       .at_minute = src->at_minute,
                                       .duration = src->duration };
    dst->timezone = strdup(zone);
    dst->targets.v = calloc(src->targets.n ? src->targets.n : 1, sizeof(char *));
    if (!dst->timezone || !dst->targets.v)
        return -ENOMEM;
    for (i = 0; i < src->targets.n; i++) {
        dst->targets.v[i] = strdup(src->targets.v[i]);
        if (!dst->targets.v[i])
            return -ENOMEM;
        dst->targets.n++;
    }
    return 0;
}

static void window_done(struct kigen_maintenance *m)
{
    size_t i;

    free(m->timezone);
    for (i = 0; i < m->targets.n; i++)
        free(m->targets.v[i]);
    free(m->targets.v);
}

/* Loads zone for window i, or shares the zone an earlier window of the same name loaded. */
static int set_add_zone(struct kigen_maint_set *set, size_t i, const char *zone)
{
    size_t j;
    int r;

    for (j = 0; j < i; j++) {
        if (strcmp(set->windows[j].timezone, zone) == 0) {
            set->zone_of[i] = set->zone_of[j];
            return 0;
        }
    }
    r = kigen_tz_load(zone, &set->zones[set->n_zones]);
    if (r < 0)
        return r;
    set->zone_of[i] = set->n_zones++;
    return 0;
}

int kigen_maint_set_new(const struct kigen_config *config, struct kigen_maint_set **ret_set,
                        char *errbuf, size_t errlen)
{
    struct kigen_maint_set *set = NULL;
    size_t i, n = config->n_maintenance;
    int r = -ENOMEM;

    set = calloc(1, sizeof(*set));
    if (!set)
        goto out;
    set->windows = calloc(n ? n : 1, sizeof(*set->windows));
    set->zone_of = calloc(n ? n : 1, sizeof(*set->zone_of));
    set->zones = calloc(n ? n : 1, sizeof(*set->zones));
    if (!set->windows || !set->zone_of || !set->zones)
        goto out;
    for (i = 0; i < n; i++) {
        const struct kigen_maintenance *w = &config->maintenance[i];
        const char *zone = w->timezone ? w->timezone : config->timezone;

        if (!zone)
            zone = "UTC";
        if (!is_valid_window(w)) {
            r = -EINVAL;
            set_error(errbuf, errlen, "Maintenance window '%s' has a bad schedule or duration",
                      w->name ? w->name : "");
            goto out;
        }
        r = copy_window(w, zone, &set->windows[i]);
        set->n_windows++;
        if (r < 0) {
            set_error(errbuf, errlen, "Out of memory copying maintenance window '%s'",
                      w->name ? w->name : "");
            goto out;
        }
        r = set_add_zone(set, i, zone);
        if (r < 0) {
            set_error(errbuf, errlen, "Maintenance window '%s': cannot load time zone '%s'",
                      w->name ? w->name : "", zone);
            goto out;
        }
    }
    *ret_set = set;
    set = NULL;
    r = 0;
out:
    kigen_maint_set_free(set);
    return r;
}

void kigen_maint_set_free(struct kigen_maint_set *set)
{
    size_t i;

    if (!set)
        return;
    for (i = 0; i < set->n_zones; i++)
        kigen_tz_free(set->zones[i]);
    free(set->zones);
    free(set->zone_of);
    for (i = 0; i < set->n_windows; i++)
        window_done(&set->windows[i]);
    free(set->windows);
    free(set);
}

int kigen_maint_set_active(const struct kigen_maint_set *set, const char *target, int64_t t,
                           int64_t *ret_end)
{
    bool is_covered = false;
    int64_t end = 0;
    struct found f;
    size_t i;
    int r;

    for (i = 0; i < set->n_windows; i++) {
        const struct kigen_maintenance *m = &set->windows[i];

        if (!names_target(m, target))
            continue;
        r = search(m, set->zones[set->zone_of[i]], t, &f);
        if (r < 0)
            return r;
        if (f.is_covered && (!is_covered || f.cover_start + m->duration > end)) {
            is_covered = true;
            end = f.cover_start + m->duration;
        }
    }
    if (!is_covered)
        return 0;
    if (ret_end)
        *ret_end = end;
    return 1;
}

int kigen_maint_set_next(const struct kigen_maint_set *set, const char *target, int64_t t,
                         int64_t *ret_start, int64_t *ret_end)
{
    bool has_next = false;
    int64_t start = 0, end = 0;
    struct found f;
    size_t i;
    int r;

    for (i = 0; i < set->n_windows; i++) {
        const struct kigen_maintenance *m = &set->windows[i];

        if (!names_target(m, target))
            continue;
        r = search(m, set->zones[set->zone_of[i]], t, &f);
        if (r < 0)
            return r;
        if (f.has_next && (!has_next || f.next_start < start)) {
            has_next = true;
            start = f.next_start;
            end = start + m->duration;
        }
    }
    if (!has_next)
        return -ENOENT;
    *ret_start = start;
    *ret_end = end;
    return 0;
}
