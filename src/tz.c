/*
 * A reader for the Time Zone Information Format, RFC 8536 (TZif, as written by zic into
 * /usr/share/zoneinfo), and for the POSIX TZ string in its footer. Nothing here reads or
 * changes process state (TZ, tzset(), localtime()): a zone is data owned by its caller.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "timeutil.h"

#define HEADER_SIZE 44  /* RFC 8536 §3.1: magic, version, 15 unused bytes, six counts */
#define MAX_TYPES   256 /* a transition names its type in one byte (§3.2) */
#define ABBR_SIZE   16  /* an abbreviation and its NUL; real ones have 3 to 6 letters */
/* RFC 8536 §3.2: utoff SHOULD be more than -25 hours and less than 26 hours. */
#define UTOFF_MIN (-89999)
#define UTOFF_MAX 93599
/* Wider than any offset, so a wall time's instants all lie within this of it. */
#define UTOFF_SLACK (27 * 3600)
#define DAY         86400

struct ttinfo {
    int32_t utoff;
    uint32_t desig; /* index into chars, NUL-terminated there */
};

/* One end of daylight saving time in the footer (POSIX TZ "Jn", "n" or "Mm.w.d", "/time"). */
enum rule_kind {
    RULE_JULIAN1, /* Jn: day 1..365, February 29 never counted */
    RULE_JULIAN0, /* n: day 0..365, February 29 counted */
    RULE_MONTH,   /* Mm.w.d: weekday d of week w (5 = last) of month m */
};

struct rule_date {
    enum rule_kind kind;
    int day;
    int month;
    int week;
    int weekday;
    int32_t secs; /* local time of day of the change, -167h..167h (RFC 8536 §3.3.1) */
};

struct footer {
    char std_abbr[ABBR_SIZE];
    char dst_abbr[ABBR_SIZE];
    int32_t std_utoff;
    int32_t dst_utoff;
    bool has_dst;
    struct rule_date start; /* in standard time */
    struct rule_date end;   /* in daylight saving time */
};

struct kigen_tz {
    int64_t *times;    /* transitions, strictly ascending */
    uint8_t *types_at; /* the type that starts at times[i] */
    size_t n_times;
    struct ttinfo *types;
    size_t n_types;
    char *chars;
    bool has_footer; /* a non-empty TZ string: it rules after the last transition */
    struct footer footer;
};

struct header {
    int version; /* 1, or 2 for 2 and every later version */
    uint32_t isutcnt;
    uint32_t isstdcnt;
    uint32_t leapcnt;
    uint32_t timecnt;
    uint32_t typecnt;
    uint32_t charcnt;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int64_t y, int m)
{
    static const unsigned char mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return mdays[m - 1] + (m == 2 && is_leap(y));
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday_of(int64_t days)
{
    return (int)((days % 7 + 11) % 7);
}

/* The POSIX TZ string of the footer (RFC 8536 §3.3, POSIX.1-2017 §8.3). */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "JST", or "<+0330>" whose brackets allow digits and signs; at least three characters. */
static int parse_abbr(const char **pp, const char *end, char *out)
{
    const char *p = *pp, *start;
    bool quoted = p < end && *p == '<';
    size_t n;

    if (quoted)
        p++;
    start = p;
    while (p < end && (is_alpha(*p) || (quoted && (is_digit(*p) || *p == '+' || *p == '-'))))
        p++;
    n = (size_t)(p - start);
    if (n < 3 || n >= ABBR_SIZE)
        return -EINVAL;
    if (quoted) {
        if (p == end || *p != '>')
            return -EINVAL;
        p++;
    }
    memcpy(out, start, n);
    out[n] = '\0';
    *pp = p;
    return 0;
}

static int parse_number(const char **pp, const char *end, int max, int *ret)
{
    const char *p = *pp;
    int v = 0;

    if (p == end || !is_digit(*p))
        return -EINVAL;
    while (p < end && is_digit(*p)) {
        v = v * 10 + (*p++ - '0');
        if (v > max)
            return -EINVAL;
    }
    *pp = p;
    *ret = v;
    return 0;
}

/* [+|-]hh[:mm[:ss]] in seconds, hours up to max_hours. */
static int parse_hms(const char **pp, const char *end, int max_hours, int32_t *ret_secs)
{
    const char *p = *pp;
    int sign = 1, h, m = 0, s = 0, r;

    if (p < end && (*p == '+' || *p == '-'))
        sign = *p++ == '-' ? -1 : 1;
    r = parse_number(&p, end, max_hours, &h);
    if (r == 0 && p < end && *p == ':') {
        p++;
        r = parse_number(&p, end, 59, &m);
        if (r == 0 && p < end && *p == ':') {
            p++;
            r = parse_number(&p, end, 59, &s);
        }
    }
    if (r < 0)
        return r;
    *pp = p;
    *ret_secs = sign * (h * 3600 + m * 60 + s);
    return 0;
}

/* A POSIX offset is west of Greenwich and 0..24 hours (POSIX §8.3); utoff is east. */
static int parse_utoff(const char **pp, const char *end, int32_t *ret_utoff)
{
    int32_t secs;
    int r;

    r = parse_hms(pp, end, 24, &secs);
    if (r == 0)
        *ret_utoff = -secs;
    return r;
}

static int parse_rule_date(const char **pp, const char *end, struct rule_date *ret)
{
    const char *p = *pp;
    struct rule_date d = { .secs = 2 * 3600 };
    int r;

    if (p == end)
        return -EINVAL;
    if (*p == 'J') {
        p++;
        d.kind = RULE_JULIAN1;
        r = parse_number(&p, end, 365, &d.day);
        if (r == 0 && d.day < 1)
            r = -EINVAL;
    } else if (*p == 'M') {
        p++;
        d.kind = RULE_MONTH;
        r = parse_number(&p, end, 12, &d.month);
        if (r == 0 && (d.month < 1 || p == end || *p++ != '.'))
            r = -EINVAL;
        if (r == 0)
            r = parse_number(&p, end, 5, &d.week);
        if (r == 0 && (d.week < 1 || p == end || *p++ != '.'))
            r = -EINVAL;
        if (r == 0)
            r = parse_number(&p, end, 6, &d.weekday);
    } else {
        d.kind = RULE_JULIAN0;
        r = parse_number(&p, end, 365, &d.day);
    }
    /* RFC 8536 §3.3.1: the hours of the time may range over -167..167. */
    if (r == 0 && p < end && *p == '/') {
        p++;
        r = parse_hms(&p, end, 167, &d.secs);
    }
    if (r < 0)
        return r;
    *pp = p;
    *ret = d;
    return 0;
}

/*
 * std offset [dst [offset] ,start[/time],end[/time]]. POSIX leaves a rule-less dst to the
 * implementation; zic always writes the rule, so its absence is refused.
 */
static int parse_tz_string(const char *p, const char *end, struct footer *ret)
{
    struct footer f = { .has_dst = false };
    int r;

    r = parse_abbr(&p, end, f.std_abbr);
    if (r == 0)
        r = parse_utoff(&p, end, &f.std_utoff);
    if (r < 0 || p == end)
        goto done;
    f.has_dst = true;
    r = parse_abbr(&p, end, f.dst_abbr);
    f.dst_utoff = f.std_utoff + 3600;
    if (r == 0 && p < end && *p != ',')
        r = parse_utoff(&p, end, &f.dst_utoff);
    if (r == 0 && (p == end || *p++ != ','))
        r = -EINVAL;
    if (r == 0)
        r = parse_rule_date(&p, end, &f.start);
    if (r == 0 && (p == end || *p++ != ','))
        r = -EINVAL;
    if (r == 0)
        r = parse_rule_date(&p, end, &f.end);
    if (r == 0 && p != end)
        r = -EINVAL;
done:
    if (r < 0)
        return r;
    *ret = f;
    return 0;
}

/* The day (since the epoch) on which a rule date falls in year y. */
static int64_t rule_day(const struct rule_date *d, int64_t y)
{
    int64_t jan1 = kigen_days_from_civil(y, 1, 1), first, day;
    int mdays;

    switch (d->kind) {
    case RULE_JULIAN1:
        return jan1 + d->day - 1 + (is_leap(y) && d->day >= 60);
    case RULE_JULIAN0:
        return jan1 + d->day;
    case RULE_MONTH:
        break;
    }
    first = kigen_days_from_civil(y, (unsigned)d->month, 1);
    mdays = days_in_month(y, d->month);
    day = first + (d->weekday - weekday_of(first) + 7) % 7 + 7 * (d->week - 1);
    while (day >= first + mdays)
        day -= 7;
    return day;
}

/*
 * The instants at which daylight saving time starts and ends in year y: the start is given
 * in standard time, the end in daylight saving time.
 */
static void footer_changes(const struct footer *f, int64_t y, int64_t *ret_start, int64_t *ret_end)
{
    *ret_start = rule_day(&f->start, y) * DAY + f->start.secs - f->std_utoff;
    *ret_end = rule_day(&f->end, y) * DAY + f->end.secs - f->dst_utoff;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    unsigned m, d;

    kigen_civil_from_days(floor_div(t, DAY), &y, &m, &d);
    return y;
}

/*
 * Whether daylight saving time is in effect at t: the state set by the latest change at or
 * before t. A change lands at most about nine days outside its own year (a 167-hour time plus
 * an offset), so the changes of the two years before t's year decide. A start and an end at
 * the same instant are DST all year (RFC 8536 §3.3.1, "EST5EDT,0/0,J365/25"): the start
 * wins.
 */
static bool footer_is_dst(const struct footer *f, int64_t t)
{
    int64_t y0 = year_of(t), y, start, end, best = 0;
    bool found = false, dst = false;

    if (!f->has_dst)
        return false;
    for (y = y0 - 2; y <= y0 + 1; y++) {
        footer_changes(f, y, &start, &end);
        if (end <= t && (!found || end > best)) {
            best = end;
            dst = false;
            found = true;
        }
        if (start <= t && (!found || start >= best)) {
            best = start;
            dst = true;
            found = true;
        }
    }
    return dst;
}

/* The first change of the footer's rule after t, if it has one. */
static bool footer_next(const struct footer *f, int64_t t, int64_t *ret_t)
{
    int64_t y0 = year_of(t), y, start, end, best = 0;
    bool found = false;

    if (!f->has_dst)
        return false;
    for (y = y0 - 1; y <= y0 + 2; y++) {
        footer_changes(f, y, &start, &end);
        if (start > t && (!found || start < best)) {
            best = start;
            found = true;
        }
        if (end > t && (!found || end < best)) {
            best = end;
            found = true;
        }
    }
    if (found)
        *ret_t = best;
    return found;
}

/* Looking up an instant. */

/* The number of transitions at or before t. */
static size_t transitions_upto(const struct kigen_tz *tz, int64_t t)
{
    size_t lo = 0, hi = tz->n_times;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (tz->times[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * RFC 8536 §3.2: type 0 rules before the first transition; §3.3: the footer rules after
 * the last one, or everywhere when there are no transitions.
 */
static void lookup(const struct kigen_tz *tz, int64_t t, int32_t *ret_utoff, const char **ret_abbr)
{
    const struct ttinfo *type = &tz->types[0];
    size_t n = transitions_upto(tz, t);

    if (tz->has_footer && (tz->n_times == 0 || (n == tz->n_times && t > tz->times[n - 1]))) {
        bool dst = footer_is_dst(&tz->footer, t);

        *ret_utoff = dst ? tz->footer.dst_utoff : tz->footer.std_utoff;
        *ret_abbr = dst ? tz->footer.dst_abbr : tz->footer.std_abbr;
        return;
    }
    if (n > 0)
        type = &tz->types[tz->types_at[n - 1]];
    *ret_utoff = type->utoff;
    *ret_abbr = tz->chars + type->desig;
}

static int32_t utoff_at(const struct kigen_tz *tz, int64_t t)
{
    int32_t utoff;
    const char *abbr;

    lookup(tz, t, &utoff, &abbr);
    return utoff;
}

/* The first instant after t at which the offset may change, if there is one. */
static bool next_transition(const struct kigen_tz *tz, int64_t t, int64_t *ret_t)
{
    size_t n = transitions_upto(tz, t);

    if (n < tz->n_times) {
        *ret_t = tz->times[n];
        return true;
    }
    return tz->has_footer && footer_next(&tz->footer, t, ret_t);
}

/* Parsing the file. */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* RFC 8536 §3.1. */
static int parse_header(const uint8_t *p, size_t len, struct header *h)
{
    if (len < HEADER_SIZE || memcmp(p, "TZif", 4) != 0)
        return -EINVAL;
    /* Version 0 is 1; each later version ("2", "3", "4" of RFC 9636) extends version 2. */
    if (p[4] == 0)
        h->version = 1;
    else if (p[4] >= '2' && p[4] <= '9')
        h->version = 2;
    else
        return -EINVAL;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->typecnt == 0 || h->typecnt > MAX_TYPES || h->charcnt == 0 ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
        return -EINVAL;
    return 0;
}

/* RFC 8536 §3.2: the size of the data block; no overflow, as every count is below 2^32. */
static uint64_t block_size(const struct header *h, uint64_t time_size)
{
    return (uint64_t)h->timecnt * (time_size + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (time_size + 4) + h->isstdcnt + h->isutcnt;
}

/*
 * A time zone designation as it may reach a message: printable ASCII (RFC 8536 §3.2 asks
 * for alphanumerics, '-' and '+') and short enough for KIGEN_TZ_FORMAT_LEN.
 */
static bool is_abbr(const char *s)
{
    size_t n;

    for (n = 0; s[n]; n++)
        if (n + 1 >= ABBR_SIZE || (unsigned char)s[n] <= ' ' || (unsigned char)s[n] >= 0x7f)
            return false;
    return true;
}

/* RFC 8536 §3.2, on a block whose size the caller has checked against the buffer. */
static int parse_block(const uint8_t *p, const struct header *h, size_t time_size,
                       struct kigen_tz *tz)
{
    const uint8_t *idx = p + (size_t)h->timecnt * time_size;
    const uint8_t *ttis = idx + h->timecnt;
    const uint8_t *chars = ttis + (size_t)h->typecnt * 6;
    const uint8_t *isstd = chars + h->charcnt + (size_t)h->leapcnt * (time_size + 4);
    const uint8_t *isut = isstd + h->isstdcnt;
    size_t i;

    tz->n_times = h->timecnt;
    tz->n_types = h->typecnt;
    tz->times = calloc(h->timecnt ? h->timecnt : 1, sizeof(*tz->times));
    tz->types_at = calloc(h->timecnt ? h->timecnt : 1, 1);
    tz->types = calloc(h->typecnt, sizeof(*tz->types));
    tz->chars = malloc(h->charcnt);
    if (!tz->times || !tz->types_at || !tz->types || !tz->chars)
        return -ENOMEM;
    for (i = 0; i < h->timecnt; i++) {
        const uint8_t *q = p + i * time_size;

        tz->times[i] = time_size == 8 ? be64(q) : (int32_t)be32(q);
        /* Transition times are in strictly ascending order; each names a valid type. */
        if ((i > 0 && tz->times[i] <= tz->times[i - 1]) || idx[i] >= h->typecnt)
            return -EINVAL;
        tz->types_at[i] = idx[i];
    }
    memcpy(tz->chars, chars, h->charcnt);
    for (i = 0; i < h->typecnt; i++) {
        const uint8_t *q = ttis + i * 6;
        struct ttinfo *type = &tz->types[i];

        type->utoff = (int32_t)be32(q);
        type->desig = q[5];
        /* isdst is a boolean; desigidx starts a NUL-terminated string inside the block. */
        if (type->utoff < UTOFF_MIN || type->utoff > UTOFF_MAX || q[4] > 1 ||
            type->desig >= h->charcnt ||
            !memchr(tz->chars + type->desig, '\0', h->charcnt - type->desig) ||
            !is_abbr(tz->chars + type->desig))
            return -EINVAL;
    }
    /* The indicators only matter to POSIX TZ rules without a footer; they must be booleans. */
    for (i = 0; i < h->isstdcnt; i++)
        if (isstd[i] > 1)
            return -EINVAL;
    for (i = 0; i < h->isutcnt; i++)
        if (isut[i] > 1 || (isut[i] == 1 && h->isstdcnt > 0 && isstd[i] != 1))
            return -EINVAL;
    return 0;
}

/* RFC 8536 §3.3: "\n", a POSIX TZ string (possibly empty), "\n". */
static int parse_footer(const uint8_t *p, size_t len, struct kigen_tz *tz)
{
    const uint8_t *nl;

    if (len < 2 || p[0] != '\n')
        return -EINVAL;
    nl = memchr(p + 1, '\n', len - 1);
    if (!nl)
        return -EINVAL;
    if (nl == p + 1)
        return 0; /* no rule: the last transition's type stays */
    tz->has_footer = true;
    return parse_tz_string((const char *)p + 1, (const char *)nl, &tz->footer);
}

int kigen_tz_parse(const uint8_t *buf, size_t len, struct kigen_tz **ret_tz)
{
    struct kigen_tz *tz = NULL;
    struct header h;
    size_t off = HEADER_SIZE, time_size = 4;
    uint64_t size;
    int r;

    if (len > KIGEN_TZ_MAX_SIZE)
        return -EFBIG;
    r = parse_header(buf, len, &h);
    if (r < 0)
        return r;
    size = block_size(&h, 4);
    if (size > len - off)
        return -EINVAL;
    /* §3: a version 2+ file repeats header and data with 64-bit times; read only those. */
    if (h.version >= 2) {
        off += (size_t)size;
        r = parse_header(buf + off, len - off, &h);
        if (r < 0)
            return r;
        if (h.version < 2)
            return -EINVAL;
        off += HEADER_SIZE;
        time_size = 8;
        size = block_size(&h, 8);
        if (size > len - off)
            return -EINVAL;
    }
    /* Leap-second records make the times count TAI-like seconds; kigen counts POSIX ones. */
    if (h.leapcnt > 0)
        return -EOPNOTSUPP;
    tz = calloc(1, sizeof(*tz));
    if (!tz)
        return -ENOMEM;
    r = parse_block(buf + off, &h, time_size, tz);
    if (r < 0)
        goto out;
    off += (size_t)size;
    if (h.version >= 2) {
        r = parse_footer(buf + off, len - off, tz);
        if (r < 0)
            goto out;
    }
    *ret_tz = tz;
    tz = NULL;
out:
    kigen_tz_free(tz);
    return r;
}

/* For a system without /usr/share/zoneinfo/UTC. */
static int builtin_utc(struct kigen_tz **ret_tz)
{
    static const uint8_t utc[] = {
        'T', 'Z', 'i', 'f', 0,                               /* version 1 */
        0,   0,   0,   0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* unused */
        0,   0,   0,   0,                                    /* isutcnt */
        0,   0,   0,   0,                                    /* isstdcnt */
        0,   0,   0,   0,                                    /* leapcnt */
        0,   0,   0,   0,                                    /* timecnt */
        0,   0,   0,   1,                                    /* typecnt */
        0,   0,   0,   4,                                    /* charcnt */
        0,   0,   0,   0,   0, 0,                            /* utoff 0, isdst 0, desigidx 0 */
        'U', 'T', 'C', 0,
    };

    return kigen_tz_parse(utc, sizeof(utc), ret_tz);
}

/* An IANA name, which cannot climb out of KIGEN_TZ_DIR. */
static bool is_valid_name(const char *name)
{
    size_t i, len = strlen(name);

    if (len == 0 || len > 255 || name[0] == '/')
        return false;
    for (i = 0; i < len; i++) {
        char c = name[i];

        if (!is_alpha(c) && !is_digit(c) && !strchr("_+/-", c))
            return false;
    }
    /* Already refused with '.', but stated on its own so that a wider set keeps it. */
    return !strstr(name, "..");
}

int kigen_tz_load(const char *name, struct kigen_tz **ret_tz)
{
    char path[sizeof(KIGEN_TZ_DIR) + 256];
    uint8_t *buf = NULL;
    size_t len = 0;
    struct stat st;
    ssize_t n;
    int fd = -1, r;

    if (!is_valid_name(name))
        return -EINVAL;
    snprintf(path, sizeof(path), "%s%s", KIGEN_TZ_DIR, name);
    /* O_NONBLOCK: a FIFO planted in the directory must not hang the caller. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        r = -errno;
        if (r == -ENOENT && strcmp(name, "UTC") == 0)
            r = builtin_utc(ret_tz);
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        r = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        goto out;
    }
    if (st.st_size > KIGEN_TZ_MAX_SIZE) {
        r = -EFBIG;
        goto out;
    }
    /* One byte more than allowed, so that a file that grew since fstat() is still caught. */
    buf = malloc(KIGEN_TZ_MAX_SIZE + 1);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    while (len <= KIGEN_TZ_MAX_SIZE) {
        n = read(fd, buf + len, KIGEN_TZ_MAX_SIZE + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    r = kigen_tz_parse(buf, len, ret_tz);
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return r;
}

void kigen_tz_free(struct kigen_tz *tz)
{
    if (!tz)
        return;
    free(tz->times);
    free(tz->types_at);
    free(tz->types);
    free(tz->chars);
    free(tz);
}

/* The API on a loaded zone. */

static bool is_in_range(int64_t t)
{
    return t >= -KIGEN_TZ_TIME_MAX && t <= KIGEN_TZ_TIME_MAX;
}

int kigen_tz_offset(const struct kigen_tz *tz, int64_t t, int32_t *ret_utoff)
{
    if (!is_in_range(t))
        return -ERANGE;
    *ret_utoff = utoff_at(tz, t);
    return 0;
}

/*
 * Walks the spans of constant offset from UTOFF_SLACK before the wall time on. The first
 * span that contains wall - utoff gives the earliest instant showing that wall time; a change
 * that jumps over it (wall - old offset is past the change, wall - new offset before it)
 * is a gap, and wall - old offset is the instant moved forward by the jump. Each step
 * moves to a later change no further than wall + UTOFF_SLACK, so the walk ends.
 */
int kigen_tz_to_utc(const struct kigen_tz *tz, int year, int month, int day, int minute_of_day,
                    int64_t *ret_t)
{
    int64_t wall, cur, next, t;

    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 ||
        day > days_in_month(year, month) || minute_of_day < 0 || minute_of_day >= 24 * 60)
        return -EINVAL;
    wall = kigen_days_from_civil(year, (unsigned)month, (unsigned)day) * DAY + minute_of_day * 60;
    cur = wall - UTOFF_SLACK;
    for (;;) {
        t = wall - utoff_at(tz, cur);
        if (!next_transition(tz, cur, &next) || t < next)
            break;
        if (wall - utoff_at(tz, next) < next)
            break;
        cur = next;
    }
    *ret_t = t;
    return 0;
}

int kigen_tz_local(const struct kigen_tz *tz, int64_t t, struct kigen_tz_tm *ret)
{
    int64_t local, days, secs, y;
    unsigned m, d;
    int32_t utoff;
    const char *abbr;

    if (!is_in_range(t))
        return -ERANGE;
    lookup(tz, t, &utoff, &abbr);
    local = t + utoff;
    days = floor_div(local, DAY);
    secs = local - days * DAY;
    kigen_civil_from_days(days, &y, &m, &d);
    ret->year = (int)y;
    ret->month = (int)m;
    ret->day = (int)d;
    ret->hour = (int)(secs / 3600);
    ret->minute = (int)(secs / 60 % 60);
    ret->second = (int)(secs % 60);
    ret->weekday = weekday_of(days);
    ret->utoff = utoff;
    ret->abbr = abbr;
    return 0;
}

int kigen_tz_format(const struct kigen_tz *tz, int64_t t, char *out, size_t len)
{
    struct kigen_tz_tm tm;
    int n, r;

    r = kigen_tz_local(tz, t, &tm);
    if (r < 0)
        return r;
    n = snprintf(out, len, "%04d-%02d-%02d %02d:%02d %s", tm.year, tm.month, tm.day, tm.hour,
                 tm.minute, tm.abbr);
    if (n < 0 || (size_t)n >= len)
        return -ENOBUFS;
    return 0;
}

int kigen_tz_format_ja(const struct kigen_tz *tz, int64_t t, char *out, size_t len)
{
    static const char *const weekdays[] = { "日", "月", "火", "水", "木", "金", "土" };
    struct kigen_tz_tm tm;
    struct tm ltm;
    time_t tt = (time_t)t;
    int n, r;

    if (tz) {
        r = kigen_tz_local(tz, t, &tm);
        if (r < 0)
            return r;
    } else {
        if ((int64_t)tt != t || !localtime_r(&tt, &ltm))
            return -ERANGE;
        tm = (struct kigen_tz_tm){ .year = ltm.tm_year + 1900,
                                   .month = ltm.tm_mon + 1,
                                   .day = ltm.tm_mday,
                                   .hour = ltm.tm_hour,
                                   .minute = ltm.tm_min,
                                   .weekday = ltm.tm_wday,
                                   .abbr = ltm.tm_zone ? ltm.tm_zone : "" };
    }
    n = snprintf(out, len, "%04d年%d月%d日(%s) %02d:%02d %s", tm.year, tm.month, tm.day,
                 weekdays[tm.weekday % 7], tm.hour, tm.minute, tm.abbr);
    if (n < 0 || (size_t)n >= len)
        return -ENOBUFS;
    return 0;
}
