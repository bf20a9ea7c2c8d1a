/*
 * IANA time zones read from the system's TZif files (RFC 8536), without TZ, tzset() or
 * localtime(): a loaded zone is an immutable value that any thread may read at once.
 */
#ifndef KIGEN_TZ_H
#define KIGEN_TZ_H

#include <stddef.h>
#include <stdint.h>

#define KIGEN_TZ_DIR        "/usr/share/zoneinfo/"
#define KIGEN_TZ_MAX_SIZE   (256 * 1024) /* real files are under 4 KiB */
#define KIGEN_TZ_FORMAT_LEN 64
/* Instants beyond +-2^53 s (285 million years) are refused rather than extrapolated. */
#define KIGEN_TZ_TIME_MAX ((int64_t)1 << 53)

struct kigen_tz;

/*
 * Loads the zone named name (an IANA name such as "Asia/Tokyo") from KIGEN_TZ_DIR. Names
 * that are empty, longer than 255 bytes, start with '/', hold ".." or a character outside
 * [A-Za-z0-9_+/-] give -EINVAL without touching the file system. "UTC" falls back to a
 * built-in UTC when the file is missing. Returns 0 and *ret_tz (owned by the caller, free
 * with kigen_tz_free), or -ENOENT and friends from open(2), -EFBIG for a file larger than
 * KIGEN_TZ_MAX_SIZE, -EINVAL for anything that is not a valid TZif file, -EOPNOTSUPP for a
 * file with leap-second records (the "right/" zones; kigen counts POSIX seconds).
 * Blocking (reads a file); any thread.
 */
int kigen_tz_load(const char *name, struct kigen_tz **ret_tz);

/*
 * Parses a TZif file held in buf (len bytes, the caller keeps it). Version 2+ files are read
 * from their 64-bit block and footer, version 1 files from the 32-bit block. Every count,
 * index and string is checked against len: a hostile buffer gives -EINVAL (or -EFBIG above
 * KIGEN_TZ_MAX_SIZE, -EOPNOTSUPP for leap seconds), never a read out of bounds. Returns 0
 * and *ret_tz, or a negative errno (-ENOMEM) with *ret_tz untouched.
 */
int kigen_tz_parse(const uint8_t *buf, size_t len, struct kigen_tz **ret_tz);

/* Wall-clock fields of an instant in a zone, as localtime_r() gives them. */
struct kigen_tz_tm {
    int year;
    int month; /* 1..12 */
    int day;   /* 1..31 */
    int hour;
    int minute;
    int second;
    int weekday; /* 0 = Sunday .. 6 = Saturday */
    int32_t utoff;
    const char *abbr; /* "JST"; points into the zone and lives as long as it */
};

/* Frees a zone; NULL is a no-op. */
void kigen_tz_free(struct kigen_tz *tz);

/*
 * The UTC offset in seconds (east positive, Tokyo +32400) in effect at instant t: from the
 * transition table, then from the file's POSIX TZ footer after the last transition.
 * Returns 0 and *ret_utoff, or -ERANGE when |t| > KIGEN_TZ_TIME_MAX. Any thread.
 */
int kigen_tz_offset(const struct kigen_tz *tz, int64_t t, int32_t *ret_utoff);

/*
 * The instant at which the wall clock of tz shows year-month-day (month 1..12) at
 * minute_of_day (0..1439) minutes after midnight.
 *  - A wall time that happens twice (the clock is set back) gives the earlier instant,
 *    before the change.
 *  - A wall time that never happens (the clock jumps forward over it) is moved forward by
 *    the length of the jump: Berlin's 02:30 on a spring-forward day gives 03:30 CEST, the
 *    instant 02:30 CET would have been.
 * Returns 0 and *ret_t, or -EINVAL for a date that does not exist or a year outside
 * 1..9999. Any thread.
 */
int kigen_tz_to_utc(const struct kigen_tz *tz, int year, int month, int day, int minute_of_day,
                    int64_t *ret_t);

/*
 * Fills *ret with the wall-clock fields of instant t in tz. Returns 0, or -ERANGE as
 * kigen_tz_offset does (*ret untouched). Any thread.
 */
int kigen_tz_local(const struct kigen_tz *tz, int64_t t, struct kigen_tz_tm *ret);

/*
 * Writes t as wall time in tz with the zone's abbreviation, "2026-12-15 22:00 JST" (seconds
 * dropped), into out (len bytes; KIGEN_TZ_FORMAT_LEN is always enough). Returns 0, -ERANGE
 * as kigen_tz_offset does, or -ENOBUFS when out is too small (out then holds a truncated
 * string if len > 0). Any thread.
 */
int kigen_tz_format(const struct kigen_tz *tz, int64_t t, char *out, size_t len);

/*
 * As kigen_tz_format, for Japanese text: "2026年12月27日(日) 12:51 JST" (month and day
 * without a leading zero, the day of the week in kanji). tz NULL: the process's zone (TZ,
 * localtime_r). Returns 0, -ERANGE, -ENOBUFS.
 */
int kigen_tz_format_ja(const struct kigen_tz *tz, int64_t t, char *out, size_t len);

#endif
