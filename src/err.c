#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "i18n.h"

static const char *const names[] = {
    [KIGEN_E_UNREADABLE - KIGEN_E_UNREADABLE] = "unreadable",
    [KIGEN_E_MALFORMED - KIGEN_E_UNREADABLE] = "malformed",
    [KIGEN_E_WRONG_PASSWORD - KIGEN_E_UNREADABLE] = "wrong_password",
    [KIGEN_E_NEEDS_PASSWORD - KIGEN_E_UNREADABLE] = "needs_password",
    [KIGEN_E_UNSUPPORTED - KIGEN_E_UNREADABLE] = "unsupported",
    [KIGEN_E_TOO_LARGE - KIGEN_E_UNREADABLE] = "too_large",
    [KIGEN_E_KEYSTORE_UNAVAILABLE - KIGEN_E_UNREADABLE] = "keystore_unavailable",
};

/* For people: what each kind means, translated where it is shown (kigen_err_text). */
static const char *const texts[] = {
    [KIGEN_E_UNREADABLE - KIGEN_E_UNREADABLE] = N_("cannot be read"),
    [KIGEN_E_MALFORMED - KIGEN_E_UNREADABLE] = N_("damaged or not in the expected format"),
    [KIGEN_E_WRONG_PASSWORD - KIGEN_E_UNREADABLE] = N_("wrong password"),
    [KIGEN_E_NEEDS_PASSWORD - KIGEN_E_UNREADABLE] = N_("a password is needed"),
    [KIGEN_E_UNSUPPORTED - KIGEN_E_UNREADABLE] = N_("unsupported format"),
    [KIGEN_E_TOO_LARGE - KIGEN_E_UNREADABLE] = N_("file too large"),
    [KIGEN_E_KEYSTORE_UNAVAILABLE - KIGEN_E_UNREADABLE] = N_("keystore unavailable"),
};

const char *kigen_err_name(int err)
{
    int e = abs(err);

    if (e < KIGEN_E_UNREADABLE || e > KIGEN_E_LAST)
        return NULL;
    return names[e - KIGEN_E_UNREADABLE];
}

int kigen_err_from_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return KIGEN_E_UNREADABLE + (int)i;
    return 0;
}

const char *kigen_err_text(enum kigen_language lang, int err)
{
    int e = abs(err);

    if (e < KIGEN_E_UNREADABLE || e > KIGEN_E_LAST)
        return NULL;
    if (lang == KIGEN_LANGUAGE_EN)
        return names[e - KIGEN_E_UNREADABLE];
    return kigen_tr(lang, texts[e - KIGEN_E_UNREADABLE]);
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
