/* Holders of certificates and declared certificates (SPEC §12). */
#include "holders.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "timeutil.h"

const struct kigen_register_row *kigen_holders_find(const struct kigen_register *reg,
                                                    const char *subject, const char *path)
{
    for (size_t i = 0; reg && i < reg->n_rows; i++) {
        const struct kigen_register_row *row = &reg->rows[i];

        if ((row->subject && fnmatch(row->subject, subject, 0) == 0) ||
            (row->path && fnmatch(row->path, path, 0) == 0))
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
            c.not_before = INT64_MIN;
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
