/* Instants as Unix seconds (int64_t, UTC) and their RFC 3339 text. */
#ifndef KIGEN_TIMEUTIL_H
#define KIGEN_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define KIGEN_RFC3339_LEN 64

/* Writes "2026-11-24T12:00:00Z" into out (KIGEN_RFC3339_LEN bytes). */
void kigen_time_format_utc(int64_t t, char *out);

/*
 * Parses RFC 3339 ("2026-11-24T12:00:00Z", "2026-11-24T21:00:00+09:00", fractional seconds
 * ignored, "t"/" " separators and "z" accepted). Returns 0 and *ret_t, or -EINVAL.
 */
int kigen_time_parse(const char *s, int64_t *ret_t);

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian calendar (H. Hinnant's algorithm). */
int64_t kigen_days_from_civil(int64_t y, unsigned m, unsigned d);

/* The date of day z counted from 1970-01-01 (the inverse of kigen_days_from_civil). */
void kigen_civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d);

/* Days between t and now, floored toward minus infinity (SPEC §5). */
int64_t kigen_days_left(int64_t not_after, int64_t now);

/*
 * Formats t in the process's local time zone as "2026-11-24 21:00 JST". main() sets TZ to the
 * configured timezone before the loop starts (kigen_time_use_zone).
 */
void kigen_time_format_local(int64_t t, char *out, size_t outlen);

/* Makes tz (an IANA name; NULL or "" for UTC) the process's local zone. Loop thread only. */
void kigen_time_use_zone(const char *tz);

/*
 * How long one slice of work on the loop may take (a snapshot's copy, an evaluation, a scan's
 * merge): a status answer waits at most about this for any of them.
 */
#define KIGEN_SLICE_NS (3u * 1000 * 1000)

/* CLOCK_MONOTONIC in nanoseconds: what the loop's slices measure their budget on. */
uint64_t kigen_monotonic_ns(void);

#endif
