/*
 * A reader of gettext's .mo catalogs (i18n.h). Why not gettext(3): glibc chooses the catalog
 * from the process's LC_MESSAGES and LANGUAGE, one language for the whole process, while the
 * daemon speaks the configured language in journald and each holder's own in their mail; and
 * switching by setenv("LANGUAGE") from the sink threads is neither thread-safe nor seen by
 * glibc's cache of translations. The format is small and fixed (GNU gettext manual, "The
 * Format of GNU MO Files"): a header of 32-bit words (magic 0x950412de in the writer's byte
 * order, revision, N, offset O of the originals, offset T of the translations), then N
 * {length, offset} pairs for each table, the originals sorted by strcmp() (msgfmt sorts
 * them), each string NUL-terminated. A lookup is a binary search.
 */
#include "i18n.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "readfile.h"
#include "timeutil.h"

#ifndef KIGEN_LOCALEDIR
#define KIGEN_LOCALEDIR "/usr/share/locale"
#endif

#define MO_MAGIC    0x950412deu
#define MO_MAX_SIZE (16u << 20) /* ours is a few KiB */

struct catalog {
    char *data; /* the whole file */
    size_t size;
    uint32_t n;
    const char *const *originals; /* n each, pointing into data */
    const char *const *translations;
    size_t *translation_lens; /* plural forms are NUL-separated inside one entry */
    char path[PATH_MAX];
};

static const char *const codes[] = {
    [KIGEN_LANGUAGE_EN] = "en",
    [KIGEN_LANGUAGE_JA] = "ja",
};
#define N_LANGUAGES (sizeof(codes) / sizeof(codes[0]))

static struct catalog *catalogs[N_LANGUAGES];
static pthread_once_t catalogs_once = PTHREAD_ONCE_INIT;

const char *kigen_language_code(enum kigen_language lang)
{
    return (size_t)lang < N_LANGUAGES ? codes[lang] : "en";
}

static uint32_t word(const unsigned char *p, bool is_swapped)
{
    if (is_swapped)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* The i-th string of the table at offset table, checked to lie inside the file. */
static const char *entry(const struct catalog *c, uint32_t table, uint32_t i, bool is_swapped,
                         size_t *ret_len)
{
    const unsigned char *d = (const unsigned char *)c->data;
    uint64_t at = (uint64_t)table + (uint64_t)i * 8, len, off;

    if (at + 8 > c->size)
        return NULL;
    len = word(d + at, is_swapped);
    off = word(d + at + 4, is_swapped);
    if (off + len >= c->size || c->data[off + len] != '\0')
        return NULL;
    *ret_len = (size_t)len;
    return c->data + off;
}

static void catalog_free(struct catalog *c)
{
    if (!c)
        return;
    free(c->data);
    free((void *)c->originals);
    free((void *)c->translations);
    free(c->translation_lens);
    free(c);
}

/* The catalog at path, or NULL when there is none or it is not a valid, sorted .mo file. */
static struct catalog *catalog_load(const char *path)
{
    struct catalog *c = calloc(1, sizeof(*c));
    const char **orig = NULL, **tr = NULL;
    uint32_t magic, o, t;
    int fd = open(path, O_RDONLY | O_CLOEXEC), r;
    bool is_swapped;
    size_t len;

    if (fd < 0 || !c)
        goto err;
    r = kigen_read_whole(fd, MO_MAX_SIZE, (uint8_t **)&c->data, &c->size);
    close(fd);
    fd = -1;
    if (r < 0 || c->size < 28)
        goto err;
    magic = word((const unsigned char *)c->data, false);
    if (magic != MO_MAGIC && word((const unsigned char *)c->data, true) != MO_MAGIC)
        goto err;
    is_swapped = magic != MO_MAGIC;
    /* Major revision 0 or 1 (1 adds system-dependent strings, which we do not use). */
    if (word((const unsigned char *)c->data + 4, is_swapped) >> 16 > 1)
        goto err;
    c->n = word((const unsigned char *)c->data + 8, is_swapped);
    o = word((const unsigned char *)c->data + 12, is_swapped);
    t = word((const unsigned char *)c->data + 16, is_swapped);
    if (c->n > c->size / 16)
        goto err;
    orig = calloc(c->n ? c->n : 1, sizeof(*orig));
    tr = calloc(c->n ? c->n : 1, sizeof(*tr));
    c->translation_lens = calloc(c->n ? c->n : 1, sizeof(*c->translation_lens));
    if (!orig || !tr || !c->translation_lens)
        goto err;
    for (uint32_t i = 0; i < c->n; i++) {
        if (!(orig[i] = entry(c, o, i, is_swapped, &len)) ||
            !(tr[i] = entry(c, t, i, is_swapped, &c->translation_lens[i])))
            goto err;
        if (i > 0 && strcmp(orig[i - 1], orig[i]) >= 0)
            goto err; /* a binary search needs them sorted */
    }
    c->originals = orig;
    c->translations = tr;
    snprintf(c->path, sizeof(c->path), "%s", path);
    return c;
err:
    if (fd >= 0)
        close(fd);
    free(orig);
    free(tr);
    catalog_free(c);
    return NULL;
}

/* The directory of the running executable, or "" (no /proc). */
static void exe_dir(char *out, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", out, len - 1);
    char *slash;

    if (n <= 0) {
        out[0] = '\0';
        return;
    }
    out[n] = '\0';
    slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
    else
        out[0] = '\0';
}

static void load_all(void)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];

    exe_dir(dir, sizeof(dir));
    for (size_t i = 0; i < N_LANGUAGES; i++) {
        if (i == KIGEN_LANGUAGE_EN)
            continue; /* the msgids are English */
        /* Next to the executable: kigend in the build tree, then the tests in build/tests. */
        static const char *const up[] = { "", "/.." };

        for (size_t k = 0; k < 2 && !catalogs[i] && dir[0]; k++) {
            snprintf(path, sizeof(path), "%s%s/locale/%s/LC_MESSAGES/kigen.mo", dir, up[k],
                     codes[i]);
            catalogs[i] = catalog_load(path);
        }
        if (!catalogs[i]) {
            snprintf(path, sizeof(path), "%s/%s/LC_MESSAGES/kigen.mo", KIGEN_LOCALEDIR, codes[i]);
            catalogs[i] = catalog_load(path);
        }
    }
}

static const struct catalog *catalog_of(enum kigen_language lang)
{
    if ((size_t)lang >= N_LANGUAGES || lang == KIGEN_LANGUAGE_EN)
        return NULL;
    pthread_once(&catalogs_once, load_all);
    return catalogs[lang];
}

/* The index of msgid in c, or -1. */
static long find(const struct catalog *c, const char *msgid)
{
    size_t lo = 0, hi = c->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(msgid, c->originals[mid]);

        if (cmp == 0)
            return c->translation_lens[mid] ? (long)mid : -1;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

const char *kigen_tr(enum kigen_language lang, const char *msgid)
{
    const struct catalog *c = catalog_of(lang);
    long i = c && *msgid ? find(c, msgid) : -1;

    return i < 0 ? msgid : c->translations[i];
}

const char *kigen_ntr(enum kigen_language lang, const char *msgid, const char *plural,
                      unsigned long n)
{
    const struct catalog *c = catalog_of(lang);
    long i = c ? find(c, msgid) : -1;

    /* The entry's key is "msgid\0plural", found by its first part; form 0 comes first. */
    return i < 0 ? (n == 1 ? msgid : plural) : c->translations[i];
}

bool kigen_i18n_is_available(enum kigen_language lang)
{
    return lang == KIGEN_LANGUAGE_EN || catalog_of(lang);
}

const char *kigen_i18n_path(enum kigen_language lang)
{
    const struct catalog *c = catalog_of(lang);

    return c ? c->path : NULL;
}

void kigen_i18n_time(enum kigen_language lang, const struct kigen_tz *tz, int64_t t, char *out,
                     size_t len)
{
    int r;

    if (lang == KIGEN_LANGUAGE_JA)
        r = kigen_tz_format_ja(tz, t, out, len);
    else if (tz)
        r = kigen_tz_format(tz, t, out, len);
    else
        return kigen_time_format_local(t, out, len);
    if (r < 0 && len >= KIGEN_RFC3339_LEN)
        kigen_time_format_utc(t, out);
}

const char *kigen_i18n_localedir(void)
{
    return KIGEN_LOCALEDIR;
}

enum kigen_language kigen_language_from_env(void)
{
    const char *const vars[] = { "LC_ALL", "LC_MESSAGES", "LANG" };
    const char *locale = NULL, *language = getenv("LANGUAGE");

    for (size_t i = 0; i < 3 && !locale; i++) {
        const char *v = getenv(vars[i]);

        if (v && *v)
            locale = v;
    }
    if (!locale || strcmp(locale, "C") == 0 || strcmp(locale, "POSIX") == 0)
        return KIGEN_LANGUAGE_EN;
    if (language && *language)
        return strncmp(language, "ja", 2) == 0 ? KIGEN_LANGUAGE_JA : KIGEN_LANGUAGE_EN;
    return strncmp(locale, "ja", 2) == 0 ? KIGEN_LANGUAGE_JA : KIGEN_LANGUAGE_EN;
}
