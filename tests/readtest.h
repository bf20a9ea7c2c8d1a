/* Helpers for the reader tests: a thread context and expected values from openssl. */
#ifndef KIGEN_READTEST_H
#define KIGEN_READTEST_H

#include "cert.h"
#include "err.h"
#include "inventory.h"
#include "read.h"
#include "testutil.h"

static inline int ctx_setup(void **state)
{
    struct kigen_read_ctx *ctx = NULL;

    if (kigen_read_ctx_new(&ctx) < 0)
        return -1;
    *state = ctx;
    return 0;
}

static inline int ctx_teardown(void **state)
{
    kigen_read_ctx_free(*state);
    return 0;
}

/* Asserts that certs holds exactly the fingerprints listed in fixture NAME.sha256, in order. */
static inline void assert_fingerprints(const struct kigen_certs *certs, const char *name)
{
    char file[256], hex[65];
    char *want = NULL, *line, *save = NULL;
    size_t i = 0;

    snprintf(file, sizeof(file), "%s.sha256", name);
    want = fixture_text(file);
    for (line = strtok_r(want, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        assert_true(i < certs->n);
        kigen_cert_sha256_hex(&certs->v[i], hex);
        assert_string_equal(hex, line);
    }
    assert_int_equal(i, certs->n);
    free(want);
}

/* One field of a LEAF.facts file written by gen_certs.sh, as a malloc'd string. */
static inline char *fact(const char *leaf, const char *key)
{
    char file[256], *text, *line, *save = NULL, *ret = NULL;
    size_t klen = strlen(key);

    snprintf(file, sizeof(file), "certs/%s.facts", leaf);
    text = fixture_text(file);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ')
            ret = strdup(line + klen + 1);
    free(text);
    assert_non_null(ret);
    return ret;
}

/* Reads fixture NAME with kigen_read_any; returns the reader's result. */
static inline int read_fixture(const struct kigen_read_ctx *ctx, const char *name,
                               const char *const *passwords, size_t n_passwords,
                               struct kigen_certs *certs, enum kigen_format *ret_format,
                               char *errbuf, size_t errlen)
{
    struct kigen_passwords pw = { passwords, n_passwords };
    size_t len;
    uint8_t *buf = fixture_load(name, &len);
    int r = kigen_read_any(ctx, buf, len, &pw, certs, ret_format, errbuf, errlen);

    free(buf);
    return r;
}

/*
 * Puts the certificates of fixture file name (as read by kigen_read_any) into inventory at
 * (keystore, path); returns how many there were.
 */
static inline int inventory_place(struct kigen_inventory *inventory,
                                  const struct kigen_read_ctx *ctx, const char *name,
                                  const char *keystore, const char *path)
{
    struct kigen_file *f = kigen_file_new(keystore, path);
    char err[256];
    int r;

    assert_non_null(f);
    r = read_fixture(ctx, name, NULL, 0, &f->certs, &f->format, err, sizeof(err));
    assert_true(r > 0);
    assert_int_equal(kigen_inventory_put(inventory, f), 0);
    return r;
}

#endif
