/* Error codes shared by the readers, the scan and the report. */
#ifndef KIGEN_ERR_H
#define KIGEN_ERR_H

#include <stddef.h>

#include "config.h"

/*
 * File errors of SPEC §4. Functions return them negated (-KIGEN_E_MALFORMED) so that
 * they never collide with a count; they sit above every errno value.
 */
enum kigen_err {
    KIGEN_E_UNREADABLE = 4096,
    KIGEN_E_MALFORMED,
    KIGEN_E_WRONG_PASSWORD,
    KIGEN_E_NEEDS_PASSWORD,
    KIGEN_E_UNSUPPORTED,
    KIGEN_E_TOO_LARGE,
    /*
     * A keystore root that is missing, unreadable or no longer on the file system it was
     * read from: its certificates are kept as last seen (SPEC §4).
     */
    KIGEN_E_KEYSTORE_UNAVAILABLE,
    KIGEN_E_LAST = KIGEN_E_KEYSTORE_UNAVAILABLE,
};

/* The SPEC name of an error code ("malformed"), given positive or negative; NULL if unknown. */
const char *kigen_err_name(int err);

/* The error code of a SPEC name ("malformed" gives KIGEN_E_MALFORMED), or 0 if unknown. */
int kigen_err_from_name(const char *name);

/*
 * The kind of error err (positive or negative) for people reading lang: English keeps the
 * SPEC name ("malformed", as messages have always said it); other languages say what it
 * means ("破損しているか、想定した形式ではありません"). NULL if unknown. Lives as long as
 * the process.
 */
const char *kigen_err_text(enum kigen_language lang, int err);

/*
 * Writes a one-line reason into errbuf (printf format, may be NULL/0) and returns -err.
 * The reason must never hold a password or key material.
 */
int kigen_errf(char *errbuf, size_t errlen, enum kigen_err err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
