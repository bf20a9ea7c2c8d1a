/*
 * Maintenance windows (SPEC §3 `maintenance`, §8): the spans during which a probe target's
 * failures raise no alert. A window starts on each local date that matches its `every`, at
 * its `at` wall time in its own time zone, and lasts `duration` seconds of real time, so a
 * window that spans a DST change is still exactly that long.
 */
#ifndef KIGEN_MAINT_H
#define KIGEN_MAINT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "tz.h"

/*
 * How many local days after t's date are searched for the next window. The sparsest
 * schedule (a monthly one) always has a window within 35 days, so this bound only stops a
 * broken zone from looping.
 */
#define KIGEN_MAINT_SEARCH_DAYS 400
/* The longest window accepted: the search looks back duration / 1 day + 4 days. */
#define KIGEN_MAINT_MAX_DURATION ((int64_t)366 * 86400)

/*
 * The window of m (in zone tz) that covers instant t, or failing that the first one that
 * starts after t. Windows are half open: [start, end), end = start + m->duration. When
 * windows overlap (a duration longer than the period), the covering one that started last
 * is returned. A start time that falls into a DST gap moves forward by the gap and one that
 * happens twice takes the first occurrence (kigen_tz_to_utc). Returns 1 (covered) or 0
 * (future window) with *ret_start and *ret_end written; -EINVAL for a window whose fields
 * are out of range (weekday, nth, at_minute, duration 1 s..KIGEN_MAINT_MAX_DURATION) or
 * whose dates leave the years 1..9999; -ERANGE for t out of kigen_tz's range; -ENOENT if
 * no window starts within KIGEN_MAINT_SEARCH_DAYS days. Pure; any thread.
 */
int kigen_maint_window(const struct kigen_maintenance *m, const struct kigen_tz *tz, int64_t t,
                       int64_t *ret_start, int64_t *ret_end);

/* Every window of a configuration with its zone loaded: immutable, so any thread may query. */
struct kigen_maint_set;

/*
 * Copies config->maintenance (the set does not refer to config afterwards) and loads each
 * distinct time zone once; a window without one uses config->timezone. Blocking (reads
 * zoneinfo files). Returns 0 and *ret_set (free with kigen_maint_set_free), or a negative
 * errno (-EINVAL for a bad window, kigen_tz_load's errors, -ENOMEM) with the window and
 * zone named in errbuf (may be NULL) for the caller to log with the errno text.
 */
int kigen_maint_set_new(const struct kigen_config *config, struct kigen_maint_set **ret_set,
                        char *errbuf, size_t errlen);

/* Frees a set; NULL is a no-op. */
void kigen_maint_set_free(struct kigen_maint_set *set);

/*
 * Whether some window naming target (exact match) covers instant t. Returns 1 and, if
 * ret_end is not NULL, the latest end among the covering windows (coverage may continue
 * past it when another window starts before it ends); 0 when none covers t or no window
 * names target; a negative errno as kigen_maint_window gives, other than -ENOENT.
 */
int kigen_maint_set_active(const struct kigen_maint_set *set, const char *target, int64_t t,
                           int64_t *ret_end);

/*
 * The earliest window naming target that starts strictly after t (a window covering t does
 * not count: ask kigen_maint_set_active). Returns 0 with *ret_start and *ret_end, -ENOENT
 * when no window names target, or a negative errno as kigen_maint_window gives.
 */
int kigen_maint_set_next(const struct kigen_maint_set *set, const char *target, int64_t t,
                         int64_t *ret_start, int64_t *ret_end);

#endif
