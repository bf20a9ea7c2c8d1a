/*
 * Translations of what people read (issue 14), looked up by the language asked for at each
 * call rather than by the process locale: the daemon writes one alert in the configured
 * language and the next mail in the holder's, on a server whose only locale may be C.UTF-8.
 * The catalogs are the gettext .mo files built from po/ (kigen.mo), read by kigen itself.
 * Any thread: a catalog is loaded once (pthread_once) and only read afterwards.
 */
#ifndef KIGEN_I18N_H
#define KIGEN_I18N_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "tz.h"

/*
 * Marks for xgettext (CMake's kigen_pot target): _(lang, "text") is translated where it
 * stands; N_("text") marks a table entry that is translated where it is used, with
 * kigen_tr(); P_(lang, "one", "many", n) chooses a plural form.
 */
#define _(lang, msgid)             kigen_tr((lang), msgid)
#define N_(msgid)                  msgid
#define P_(lang, msgid, plural, n) kigen_ntr((lang), msgid, plural, (n))

/* "en", "ja". */
const char *kigen_language_code(enum kigen_language lang);

/*
 * The translation of msgid into lang, or msgid itself (English, a missing catalog, a missing
 * or empty entry). The result lives as long as the process; a format's arguments are those
 * of msgid (msgfmt --check makes sure of it).
 */
const char *kigen_tr(enum kigen_language lang, const char *msgid) __attribute__((format_arg(2)));

/*
 * The form of msgid/plural for the number n in lang: English and a missing entry choose by
 * n == 1; Japanese has one form (Plural-Forms: nplurals=1), the entry's first.
 */
const char *kigen_ntr(enum kigen_language lang, const char *msgid, const char *plural,
                      unsigned long n) __attribute__((format_arg(2)))
__attribute__((format_arg(3)));

/*
 * The instant t for people reading lang, in tz (NULL: the process's zone, TZ): English
 * "2026-12-27 12:51 JST" (kigen_tz_format, kigen_time_format_local), Japanese
 * "2026年12月27日(日) 12:51 JST" (kigen_tz_format_ja). UTC in RFC 3339 when the zone cannot
 * tell. out: KIGEN_TZ_FORMAT_LEN bytes are always enough.
 */
void kigen_i18n_time(enum kigen_language lang, const struct kigen_tz *tz, int64_t t, char *out,
                     size_t len);

/*
 * The language a command-line user asked for, as gettext reads it: LANGUAGE (its first
 * entry; ignored when the locale below is "C" or "POSIX"), else LC_ALL, LC_MESSAGES, LANG;
 * Japanese when it starts with "ja". Whether that locale is installed does not matter: the
 * catalogue is read by kigen. Reads the environment.
 */
enum kigen_language kigen_language_from_env(void);

/* Whether lang's catalog was found and is valid (English always is). */
bool kigen_i18n_is_available(enum kigen_language lang);

/*
 * Where the catalog of lang was read from, NULL if none. Looked for, in order, in the
 * directory of the executable + "/locale" and + "/../locale" (the build tree: kigend and the
 * tests), then KIGEN_LOCALEDIR (/usr/share/locale installed), as <dir>/<code>/LC_MESSAGES/kigen.mo.
 */
const char *kigen_i18n_path(enum kigen_language lang);

/* KIGEN_LOCALEDIR: where installed catalogues are looked for. */
const char *kigen_i18n_localedir(void);

#endif
