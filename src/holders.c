/* Holders of certificates and declared certificates (SPEC §12). */
#include "holders.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "strmap.h"
#include "timeutil.h"

struct kigen_holders_index {
    struct kigen_strmap subjects;            /* exact subject -> its first row */
    struct kigen_strmap paths;               /* exact path -> its first row */
    const struct kigen_register_row **globs; /* rows with a glob subject or path, in order */
    size_t n_globs;
};

static bool is_glob(const char *s)
{
    return s && strpbrk(s, "*?[\\");
}

/* Puts row under key unless an earlier row is there. */
static int index_put(struct kigen_strmap *map, const char *key,
                     const struct kigen_register_row *row)
{
    if (kigen_strmap_get(map, key))
        return 0;
    return kigen_strmap_put(map, key, (void *)row);
}

int kigen_holders_index_new(const struct kigen_register *reg,
                            struct kigen_holders_index **ret_index)
{
    struct kigen_holders_index *x = calloc(1, sizeof(*x));
    int r = 0;

    if (!x)
        return -ENOMEM;
    if (reg && reg->n_rows && !(x->globs = malloc(reg->n_rows * sizeof(*x->globs))))
        r = -ENOMEM;
    for (size_t i = 0; reg && i < reg->n_rows && r == 0; i++) {
        const struct kigen_register_row *row = &reg->rows[i];

        if (is_glob(row->subject) || is_glob(row->path)) {
            x->globs[x->n_globs++] = row;
            continue;
        }
        if (row->subject)
            r = index_put(&x->subjects, row->subject, row);
        if (r == 0 && row->path)
            r = index_put(&x->paths, row->path, row);
    }
    if (r < 0) {
        kigen_holders_index_free(x);
        return r;
    }
    *ret_index = x;
    return 0;
}

void kigen_holders_index_free(struct kigen_holders_index *index)
{
    if (!index)
        return;
    kigen_strmap_clear(&index->subjects);
    kigen_strmap_clear(&index->paths);
    free(index->globs);
    free(index);
}

static bool row_matches(const struct kigen_register_row *row, const char *subject, const char *path)
{
    return (row->subject && fnmatch(row->subject, subject, 0) == 0) ||
           (row->path && fnmatch(row->path, path, 0) == 0);
}

const struct kigen_register_row *kigen_holders_index_find(const struct kigen_holders_index *index,
                                                          const char *subject, const char *path)
{
    const struct kigen_register_row *best, *p;

    if (!index)
        return NULL;
    best = kigen_strmap_get(&index->subjects, subject);
    p = kigen_strmap_get(&index->paths, path);
    if (p && (!best || p->line < best->line))
        best = p;
    for (size_t i = 0; i < index->n_globs; i++) {
        const struct kigen_register_row *row = index->globs[i];

        if (best && row->line > best->line)
            break; /* the first matching row wins */
        if (row_matches(row, subject, path))
            return row;
    }
    return best;
}

const struct kigen_register_row *kigen_holders_row_at(const struct kigen_register *reg, size_t line)
{
    size_t lo = 0, hi = reg ? reg->n_rows : 0;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (reg->rows[mid].line == line)
            return &reg->rows[mid];
        if (reg->rows[mid].line < line)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct kigen_register_row *kigen_holders_find(const struct kigen_register *reg,
                                                    const char *subject, const char *path)
{
    for (size_t i = 0; reg && i < reg->n_rows; i++) {
        const struct kigen_register_row *row = &reg->rows[i];

        if (row_matches(row, subject, path))
            return row;
    }
    return NULL;
}

void kigen_holders_declared_sha256(const char *holder, const char *terminal, int64_t not_after,
                                   uint8_t out[KIGEN_SHA256_LEN])
{
    char when[KIGEN_RFC3339_LEN], *text = NULL;
    int n;

    kigen_time_format_utc(not_after, when);
    n = asprintf(&text, "declared\n%s\n%s\n%s", holder, terminal ? terminal : "", when);
    if (n < 0 || !EVP_Digest(text, (size_t)n, out, NULL, EVP_sha256(), NULL))
        memset(out, 0,
               KIGEN_SHA256_LEN); /* out of memory: no fingerprint rather than a wrong one */
    free(text);
}

static int add_problem(struct kigen_holders_problem **problems, size_t *n, size_t line,
                       const char *message)
{
    struct kigen_holders_problem *v = realloc(*problems, (*n + 1) * sizeof(*v));

    if (!v)
        return -ENOMEM;
    *problems = v;
    v[*n].line = line;
    snprintf(v[*n].message, sizeof(v[*n].message), "%s", message);
    (*n)++;
    return 0;
}

int kigen_holders_declare(const struct kigen_register *reg, const struct kigen_tz *tz,
                          kigen_holders_validity_fn validity, kigen_holders_matched_fn matched,
                          void *data, struct kigen_certs *certs,
                          struct kigen_holders_problem **problems, size_t *n_problems)
{
    *problems = NULL;
    *n_problems = 0;
    for (size_t i = 0; reg && i < reg->n_rows; i++) {
        const struct kigen_register_row *row = &reg->rows[i];
        struct kigen_cert c = { .not_before = row->issued, .not_after = row->not_after };
        char *subject = NULL, entry[32];
        const char *issuer = row->issuer ? row->issuer : "";
        int years, months, r;

        if (row->issued == KIGEN_REGISTER_NO_DATE && row->not_after == KIGEN_REGISTER_NO_DATE)
            continue; /* names a holder only */
        if (matched && matched(row, data))
            continue; /* the file wins */
        if (row->subject && !strpbrk(row->subject, "*?["))
            subject = strdup(row->subject);
        else if (asprintf(&subject, "CN=%s", row->holder) < 0)
            subject = NULL;
        if (!subject)
            return -ENOMEM;
        if (c.not_after == KIGEN_REGISTER_NO_DATE) {
            if (!validity || !validity(subject, issuer, data, &years, &months)) {
                free(subject);
                if (add_problem(problems, n_problems, row->line,
                                "'issued' without 'not_after', and no rule gives a validity") < 0)
                    return -ENOMEM;
                continue;
            }
            if (kigen_register_add_months(tz, row->issued, years, months, &c.not_after) < 0) {
                free(subject);
                if (add_problem(problems, n_problems, row->line,
                                "'issued' plus the validity is out of range") < 0)
                    return -ENOMEM;
                continue;
            }
        }
        if (c.not_before == KIGEN_REGISTER_NO_DATE)
            c.not_before = KIGEN_NO_TIME;
        kigen_holders_declared_sha256(row->holder, row->terminal, c.not_after, c.sha256);
        snprintf(entry, sizeof(entry), "%zu", row->line);
        r = kigen_cert_set_strings(&c, subject, issuer, "", entry, row->email ? row->email : "");
        free(subject);
        if (r < 0)
            return r;
        if (kigen_certs_push(certs, &c) < 0) {
            kigen_cert_done(&c);
            return -ENOMEM;
        }
    }
    return 0;
}
