/*
 * The holders' register of SPEC §12: a CSV file an administrator keeps (in Excel, often),
 * naming who holds which certificate and declaring the certificates kigen cannot read (on a
 * holder's iPhone or PC). This file only turns the file's bytes into rows; matching rows to
 * certificates and declaring certificates is the caller's. Any thread: no global state.
 */
#ifndef KIGEN_REGISTER_H
#define KIGEN_REGISTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "i18n.h"

struct kigen_tz; /* "tz.h" */

/* Limits on what one register may hold; past them the rest is one error. */
#define KIGEN_REGISTER_MAX_ROWS  100000
#define KIGEN_REGISTER_MAX_FIELD 4096 /* bytes of one field */

/* A date that is not given. */
#define KIGEN_REGISTER_NO_DATE INT64_MIN

/* One row of the register. Strings are UTF-8, NULL when the column is absent or empty. */
struct kigen_register_row {
    size_t line;  /* the line its record starts on, 1-based */
    char *holder; /* never NULL */
    char *email;
    char *subject;  /* fnmatch(3) glob on the RFC 2253 subject */
    char *path;     /* fnmatch(3) glob on a location's path */
    char *terminal; /* NACCS logical terminal name */
    char *device;
    char *issuer;
    char *language; /* "en" or "ja" */
    int64_t issued; /* Unix seconds, or KIGEN_REGISTER_NO_DATE */
    int64_t not_after;
};

/* A row that could not be used: "FILE:LINE: why" is the caller's to write. */
struct kigen_register_error {
    size_t line; /* 0 for the file as a whole (no header, no holder column) */
    char *message;
};

struct kigen_register {
    struct kigen_register_row *rows;
    size_t n_rows;
    struct kigen_register_error *errors;
    size_t n_errors;
    bool is_cp932; /* the file was not UTF-8 and was read as CP932 (Japanese Excel's CSV) */
};

/*
 * Parses the register's bytes: a header row (column names case-insensitive, any order,
 * unknown ones ignored; `holder` required), then one row per record. UTF-8 (a BOM is
 * skipped) or, when the bytes are not valid UTF-8, CP932. RFC 4180 quoting (commas, quotes
 * and line breaks inside quoted fields), CRLF or LF. Empty lines and lines starting with '#'
 * are skipped. Dates are YYYY-MM-DD (00:00 in tz; UTC when tz is NULL) or RFC 3339.
 *
 * A bad row becomes one entry of errors and the other rows are kept. Returns 0 with
 * *ret_register (free with kigen_register_free), or -ENOMEM.
 */
int kigen_register_parse(const uint8_t *buf, size_t len, const struct kigen_tz *tz,
                         struct kigen_register **ret_register);
/* The same, the reasons of bad rows in lang (kigend --check-config follows LANG). */
int kigen_register_parse_lang(const uint8_t *buf, size_t len, const struct kigen_tz *tz,
                              enum kigen_language lang, struct kigen_register **ret_register);

void kigen_register_free(struct kigen_register *reg);

/*
 * t plus years and months on the calendar of tz (UTC when NULL), the wall time kept; a day
 * past the end of the month becomes its last day (2021-01-31 + 1 month = 2021-02-28), as
 * SPEC §12 says for `validity`. Returns 0 with *ret_t, or -ERANGE.
 */
int kigen_register_add_months(const struct kigen_tz *tz, int64_t t, int years, int months,
                              int64_t *ret_t);

#endif
