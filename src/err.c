#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const names[] = {
    [KIGEN_E_UNREADABLE - KIGEN_E_UNREADABLE] = "unreadable",
    [KIGEN_E_MALFORMED - KIGEN_E_UNREADABLE] = "malformed",
    [KIGEN_E_WRONG_PASSWORD - KIGEN_E_UNREADABLE] = "wrong_password",
    [KIGEN_E_NEEDS_PASSWORD - KIGEN_E_UNREADABLE] = "needs_password",
    [KIGEN_E_UNSUPPORTED - KIGEN_E_UNREADABLE] = "unsupported",
    [KIGEN_E_TOO_LARGE - KIGEN_E_UNREADABLE] = "too_large",
    [KIGEN_E_KEYSTORE_UNAVAILABLE - KIGEN_E_UNREADABLE] = "keystore_unavailable",
};

const char *kigen_err_name(int err)
{
    int e = abs(err);

    if (e < KIGEN_E_UNREADABLE || e > KIGEN_E_LAST)
        return NULL;
    return names[e - KIGEN_E_UNREADABLE];
}

int kigen_errf(char *errbuf, size_t errlen, enum kigen_err err, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return -(int)err;
}
