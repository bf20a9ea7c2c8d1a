/*
 * The holders' register (SPEC §12), parsed with libcsv (RFC 4180 quoting, as Excel writes
 * it). libcsv splits and unquotes; this file decodes CP932, tells records' line numbers,
 * skips comments and checks each row.
 */
#include "register.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"
#include "tz.h"

enum column {
    COL_HOLDER,
    COL_EMAIL,
    COL_SUBJECT,
    COL_PATH,
    COL_TERMINAL,
    COL_DEVICE,
    COL_ISSUER,
    COL_ISSUED,
    COL_NOT_AFTER,
    COL_LANGUAGE,
    COL_COUNT,
};

static const char *const column_names[COL_COUNT] = {
    "holder", "email",  "subject", "path",      "terminal",
    "device", "issuer", "issued",  "not_after", "language",
};

/* The record being assembled by libcsv's callbacks, and where it goes. */
struct parse {
    const struct kigen_tz *tz;
    enum kigen_language lang; /* of the reasons of bad rows (kigend --check-config) */
    struct kigen_register *reg;
    char **fields;
    size_t n_fields;
    size_t cap_fields;
    bool is_too_long;     /* a field of the record passed KIGEN_REGISTER_MAX_FIELD */
    size_t record_line;   /* the line the record being assembled starts on; 0 between records */
    int index[COL_COUNT]; /* the field number of each column; -1 absent */
    bool has_header;
    bool is_full; /* KIGEN_REGISTER_MAX_ROWS reached: the rest is one error */
    int status;   /* -ENOMEM once anything failed to allocate */
};

/* ---- UTF-8 and CP932 ---- */

/* Whether buf is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, at most U+10FFFF). */
static bool is_utf8(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/*
 * CP932 (Windows-31J, what Japanese Excel saves as "CSV") to UTF-8 with glibc's iconv.
 * Returns 0 with a malloc'd *ret_out, -EILSEQ at the first byte that is not CP932 (its offset
 * in *ret_bad), or -ENOMEM.
 */
static int cp932_to_utf8(const uint8_t *buf, size_t len, char **ret_out, size_t *ret_len,
                         size_t *ret_bad)
{
    iconv_t cd = iconv_open("UTF-8", "CP932");
    size_t cap = len * 3 + 1, left_in = len, left_out = cap;
    char *out, *in = (char *)buf, *p;
    int r = 0;

    if (cd == (iconv_t)-1)
        return -ENOTSUP; /* glibc's gconv modules are missing */
    out = malloc(cap);
    if (!out) {
        iconv_close(cd);
        return -ENOMEM;
    }
    p = out;
    /* Each CP932 byte gives at most three UTF-8 bytes: the buffer never runs short. */
    if (iconv(cd, &in, &left_in, &p, &left_out) == (size_t)-1) {
        *ret_bad = len - left_in;
        r = -EILSEQ;
        free(out);
        out = NULL;
    }
    iconv_close(cd);
    if (r == 0) {
        *ret_out = out;
        *ret_len = (size_t)(p - out);
    }
    return r;
}

/* ---- rows ---- */

static int add_error(struct parse *ps, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int add_error(struct parse *ps, size_t line, const char *fmt, ...)
{
    struct kigen_register *reg = ps->reg;
    struct kigen_register_error *v;
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), kigen_tr(ps->lang, fmt), ap);
    va_end(ap);
    v = realloc(reg->errors, (reg->n_errors + 1) * sizeof(*v));
    if (!v)
        return ps->status = -ENOMEM;
    reg->errors = v;
    v[reg->n_errors].line = line;
    v[reg->n_errors].message = strdup(msg);
    if (!v[reg->n_errors].message)
        return ps->status = -ENOMEM;
    reg->n_errors++;
    return 0;
}

static void row_done(struct kigen_register_row *row)
{
    free(row->holder);
    free(row->email);
    free(row->subject);
    free(row->path);
    free(row->terminal);
    free(row->device);
    free(row->issuer);
    free(row->language);
}

/* The record's field for column c, or NULL when absent or empty. */
static const char *field(const struct parse *ps, enum column c)
{
    int i = ps->index[c];

    if (i < 0 || (size_t)i >= ps->n_fields || !ps->fields[i][0])
        return NULL;
    return ps->fields[i];
}

/* A date of the register: YYYY-MM-DD at 00:00 in tz, or RFC 3339. */
static int parse_date(const struct kigen_tz *tz, const char *s, int64_t *ret_t)
{
    unsigned y, m, d;
    char end;

    if (strlen(s) == 10 && sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &end) == 3 && s[4] == '-' &&
        s[7] == '-' && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[5]) &&
        isdigit((unsigned char)s[8])) {
        int64_t days;
        unsigned y2, m2, d2;
        int64_t yy;

        if (y < 1 || m < 1 || m > 12 || d < 1 || d > 31)
            return -EINVAL;
        if (tz)
            return kigen_tz_to_utc(tz, (int)y, (int)m, (int)d, 0, ret_t) < 0 ? -EINVAL : 0;
        days = kigen_days_from_civil(y, m, d);
        kigen_civil_from_days(days, &yy, &m2, &d2);
        y2 = (unsigned)yy;
        if (y2 != y || m2 != m || d2 != d)
            return -EINVAL; /* 2026-02-30 */
        *ret_t = days * 86400;
        return 0;
    }
    return kigen_time_parse(s, ret_t);
}

static int dup_field(const struct parse *ps, enum column c, char **dst)
{
    const char *s = field(ps, c);

    *dst = NULL;
    if (!s)
        return 0;
    *dst = strdup(s);
    return *dst ? 0 : -ENOMEM;
}

static void header(struct parse *ps, size_t line)
{
    for (int c = 0; c < COL_COUNT; c++)
        ps->index[c] = -1;
    for (size_t i = 0; i < ps->n_fields; i++) {
        char *name = ps->fields[i];
        size_t n = strlen(name);

        while (n && isspace((unsigned char)name[n - 1]))
            name[--n] = '\0';
        while (*name && isspace((unsigned char)*name))
            name++;
        for (int c = 0; c < COL_COUNT; c++)
            if (ps->index[c] < 0 && strcasecmp(name, column_names[c]) == 0)
                ps->index[c] = (int)i;
    }
    ps->has_header = true;
    if (ps->index[COL_HOLDER] < 0)
        (void)add_error(ps, line, N_("the header row has no 'holder' column"));
}

/* Checks one data record and keeps it as a row, or says why not. */
static void data_row(struct parse *ps, size_t line)
{
    struct kigen_register *reg = ps->reg;
    struct kigen_register_row row = { .line = line,
                                      .issued = KIGEN_REGISTER_NO_DATE,
                                      .not_after = KIGEN_REGISTER_NO_DATE };
    const char *s;
    int r = 0;

    if (ps->index[COL_HOLDER] < 0)
        return; /* said once, at the header */
    if (ps->is_too_long) {
        (void)add_error(ps, line, N_("a field is longer than %d bytes"), KIGEN_REGISTER_MAX_FIELD);
        return;
    }
    if (!field(ps, COL_HOLDER)) {
        (void)add_error(ps, line, N_("'holder' is empty"));
        return;
    }
    for (enum column c = COL_ISSUED; c <= COL_NOT_AFTER; c++) {
        s = field(ps, c);
        if (s && parse_date(ps->tz, s, c == COL_ISSUED ? &row.issued : &row.not_after) < 0) {
            (void)add_error(ps, line, N_("'%s' is not a date (YYYY-MM-DD or RFC 3339): '%.64s'"),
                            column_names[c], s);
            return;
        }
    }
    s = field(ps, COL_LANGUAGE);
    if (s && strcmp(s, "en") != 0 && strcmp(s, "ja") != 0) {
        (void)add_error(ps, line, N_("'language' is '%.32s', not en or ja"), s);
        return;
    }
    if (!field(ps, COL_SUBJECT) && !field(ps, COL_PATH) && row.issued == KIGEN_REGISTER_NO_DATE &&
        row.not_after == KIGEN_REGISTER_NO_DATE) {
        (void)add_error(ps, line,
                        N_("names no certificate: give subject, path, not_after or issued"));
        return;
    }
    if (reg->n_rows >= KIGEN_REGISTER_MAX_ROWS) {
        if (!ps->is_full)
            (void)add_error(ps, line, N_("more than %d rows: this one and the rest are ignored"),
                            KIGEN_REGISTER_MAX_ROWS);
        ps->is_full = true;
        return;
    }
    if ((r = dup_field(ps, COL_HOLDER, &row.holder)) < 0 ||
        (r = dup_field(ps, COL_EMAIL, &row.email)) < 0 ||
        (r = dup_field(ps, COL_SUBJECT, &row.subject)) < 0 ||
        (r = dup_field(ps, COL_PATH, &row.path)) < 0 ||
        (r = dup_field(ps, COL_TERMINAL, &row.terminal)) < 0 ||
        (r = dup_field(ps, COL_DEVICE, &row.device)) < 0 ||
        (r = dup_field(ps, COL_ISSUER, &row.issuer)) < 0 ||
        (r = dup_field(ps, COL_LANGUAGE, &row.language)) < 0) {
        row_done(&row);
        ps->status = r;
        return;
    }
    if (reg->n_rows % 64 == 0) {
        struct kigen_register_row *v = realloc(reg->rows, (reg->n_rows + 64) * sizeof(*v));

        if (!v) {
            row_done(&row);
            ps->status = -ENOMEM;
            return;
        }
        reg->rows = v;
    }
    reg->rows[reg->n_rows++] = row;
}

/* ---- libcsv's callbacks ---- */

static void field_cb(void *s, size_t len, void *data)
{
    struct parse *ps = data;
    char *copy;

    if (ps->status < 0)
        return;
    if (len > KIGEN_REGISTER_MAX_FIELD) {
        ps->is_too_long = true;
        len = 0;
    }
    if (ps->n_fields == ps->cap_fields) {
        size_t cap = ps->cap_fields ? ps->cap_fields * 2 : 16;
        char **v = realloc(ps->fields, cap * sizeof(*v));

        if (!v) {
            ps->status = -ENOMEM;
            return;
        }
        ps->fields = v;
        ps->cap_fields = cap;
    }
    copy = malloc(len + 1);
    if (!copy) {
        ps->status = -ENOMEM;
        return;
    }
    if (len)
        memcpy(copy, s, len);
    copy[len] = '\0';
    ps->fields[ps->n_fields++] = copy;
}

static void record_cb(int c, void *data)
{
    struct parse *ps = data;
    size_t line = ps->record_line;

    ps->record_line = 0;
    if (ps->status == 0) {
        if (!ps->has_header)
            header(ps, line);
        else
            data_row(ps, line);
    }
    for (size_t i = 0; i < ps->n_fields; i++)
        free(ps->fields[i]);
    ps->n_fields = 0;
    ps->is_too_long = false;
}

/* ---- the whole file ---- */

/* Whether the n bytes at s are what libcsv skips between records: spaces, tabs, line ends. */
static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/*
 * Feeds text to libcsv a line at a time, so that each record's first line is known. Lines
 * end where libcsv may end a record: LF, CRLF or a lone CR (old Mac files), so that a record
 * ends only at the end of a line. Between records (no record begun), a blank line or one
 * starting with '#' is not fed at all, and any other line begins the next record. Inside a
 * record (a quoted field spanning lines) every line is fed as it is.
 */
static int feed(struct parse *ps, struct csv_parser *p, const char *text, size_t len)
{
    size_t line = 0;

    for (size_t at = 0; at < len && ps->status == 0;) {
        const char *s = text + at;
        size_t n = 0;

        while (at + n < len && s[n] != '\n' && s[n] != '\r')
            n++;
        if (at + n < len)
            n += s[n] == '\r' && at + n + 1 < len && s[n + 1] == '\n' ? 2 : 1;
        line++;
        at += n;
        if (!ps->record_line) {
            if (is_blank(s, n) || s[0] == '#')
                continue;
            ps->record_line = line;
        }
        if (csv_parse(p, s, n, field_cb, record_cb, ps) != n)
            return ps->status = -ENOMEM; /* not strict: only an allocation fails */
    }
    csv_fini(p, field_cb, record_cb, ps);
    return ps->status;
}

int kigen_register_parse(const uint8_t *buf, size_t len, const struct kigen_tz *tz,
                         struct kigen_register **ret_register)
{
    return kigen_register_parse_lang(buf, len, tz, KIGEN_LANGUAGE_EN, ret_register);
}

int kigen_register_parse_lang(const uint8_t *buf, size_t len, const struct kigen_tz *tz,
                              enum kigen_language lang, struct kigen_register **ret_register)
{
    struct parse ps = { .tz = tz, .lang = lang };
    struct csv_parser parser;
    char *converted = NULL;
    const char *text = (const char *)buf;
    size_t text_len = len, bad = 0;
    int r;

    ps.reg = calloc(1, sizeof(*ps.reg));
    if (!ps.reg)
        return -ENOMEM;
    if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        text += 3;
        text_len -= 3;
    } else if (!is_utf8(buf, len)) {
        r = cp932_to_utf8(buf, len, &converted, &text_len, &bad);
        if (r == -ENOMEM)
            goto out;
        if (r == -ENOTSUP) {
            r = add_error(&ps, 0, N_("not UTF-8, and CP932 cannot be decoded here (iconv)"));
            goto done;
        }
        if (r < 0) {
            r = add_error(&ps, 0, N_("neither UTF-8 nor CP932 (byte %zu)"), bad);
            goto done;
        }
        text = converted;
        ps.reg->is_cp932 = true;
    }
    if (text_len && !is_utf8((const uint8_t *)text, text_len)) {
        r = add_error(&ps, 0, N_("not valid UTF-8 after its byte order mark"));
        goto done;
    }
    if (csv_init(&parser, CSV_APPEND_NULL) != 0) {
        r = -ENOMEM;
        goto out;
    }
    r = feed(&ps, &parser, text, text_len);
    csv_free(&parser);
    if (r == 0 && !ps.has_header)
        r = add_error(&ps, 0, N_("no header row"));
done:
    if (r == 0) {
        *ret_register = ps.reg;
        ps.reg = NULL;
    }
out:
    for (size_t i = 0; i < ps.n_fields; i++)
        free(ps.fields[i]);
    free(ps.fields);
    free(converted);
    kigen_register_free(ps.reg);
    return r;
}

void kigen_register_free(struct kigen_register *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_rows; i++)
        row_done(&reg->rows[i]);
    for (size_t i = 0; i < reg->n_errors; i++)
        free(reg->errors[i].message);
    free(reg->rows);
    free(reg->errors);
    free(reg);
}

static int days_in_month(int64_t y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool is_leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && is_leap ? 29 : days[m - 1];
}

int kigen_register_add_months(const struct kigen_tz *tz, int64_t t, int years, int months,
                              int64_t *ret_t)
{
    struct kigen_tz_tm tm;
    int64_t y, total, secs;
    unsigned m, d;
    int day;

    if (tz) {
        if (kigen_tz_local(tz, t, &tm) < 0)
            return -ERANGE;
        y = tm.year;
        m = (unsigned)tm.month;
        d = (unsigned)tm.day;
        secs = tm.hour * 3600 + tm.minute * 60 + tm.second;
    } else {
        int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);

        kigen_civil_from_days(days, &y, &m, &d);
        secs = t - days * 86400;
    }
    total = y * 12 + (int64_t)(m - 1) + (int64_t)years * 12 + months;
    y = total / 12;
    m = (unsigned)(total % 12) + 1;
    if (y < 1 || y > 9999)
        return -ERANGE;
    day = (int)d > days_in_month(y, (int)m) ? days_in_month(y, (int)m) : (int)d;
    if (!tz) {
        *ret_t = kigen_days_from_civil(y, m, (unsigned)day) * 86400 + secs;
        return 0;
    }
    if (kigen_tz_to_utc(tz, (int)y, (int)m, day, (int)(secs / 60), ret_t) < 0)
        return -ERANGE;
    *ret_t += secs % 60;
    return 0;
}
