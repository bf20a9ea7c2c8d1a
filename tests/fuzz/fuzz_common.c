/* Helpers shared by the fuzz targets (see fuzz.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "fuzz.h"
#include "revocation.h"
#include "timeutil.h"

static const char *const passwords[] = { "changeit", "Tanaka-2026", "secret" };

const struct kigen_passwords fuzz_passwords = { passwords,
                                                sizeof(passwords) / sizeof(passwords[0]) };

_Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: contract broken: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    FUZZ_CHECK(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

const struct kigen_read_ctx *fuzz_read_ctx(void)
{
    static struct kigen_read_ctx *ctx;

    if (!ctx)
        FUZZ_CHECK(kigen_read_ctx_new(&ctx) == 0);
    return ctx;
}

bool fuzz_is_utf8(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, n, k;
    uint32_t cp;

    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if (s[i] >= 0xc2 && s[i] <= 0xdf) {
            n = 2;
            cp = s[i] & 0x1f;
        } else if ((s[i] & 0xf0) == 0xe0) {
            n = 3;
            cp = s[i] & 0x0f;
        } else if (s[i] >= 0xf0 && s[i] <= 0xf4) {
            n = 4;
            cp = s[i] & 0x07;
        } else {
            return false;
        }
        if (len - i < n)
            return false;
        for (k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

bool fuzz_is_one_line(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return false;
    return true;
}

void fuzz_check_read(int r, const struct kigen_certs *certs, size_t before, const char *errbuf,
                     bool is_utf8)
{
    FUZZ_CHECK(certs->n >= before);
    FUZZ_CHECK(certs->n <= certs->cap);
    if (r >= 0) {
        FUZZ_CHECK((size_t)r == certs->n - before);
    } else if (r != -ENOMEM) {
        FUZZ_CHECK(kigen_err_name(r) != NULL);
        FUZZ_CHECK(errbuf[0] != '\0');
        FUZZ_CHECK(fuzz_is_one_line(errbuf));
    }
    for (size_t i = before; i < certs->n; i++) {
        const struct kigen_cert *c = &certs->v[i];

        FUZZ_CHECK(c->subject && c->issuer && c->serial && c->entry);
        FUZZ_CHECK(c->entry[0] != '\0');
        FUZZ_CHECK(c->serial[0] != '\0');
        FUZZ_CHECK(strspn(c->serial, "-0123456789abcdef") == strlen(c->serial));
        if (is_utf8)
            FUZZ_CHECK(fuzz_is_utf8(c->entry, strlen(c->entry)));
    }
}

void fuzz_certs_free(struct kigen_certs *certs)
{
    kigen_certs_clear(certs);
    free(certs->v);
    certs->v = NULL;
    certs->cap = 0;
}

void fuzz_add_cert(struct kigen_certs *certs, uint8_t fill, const char *subject, const char *issuer,
                   const char *serial, const char *entry, int64_t not_before, int64_t not_after)
{
    size_t ls = strlen(subject) + 1, li = strlen(issuer) + 1, lr = strlen(serial) + 1,
           le = strlen(entry) + 1;
    struct kigen_cert *c;

    if (certs->n == certs->cap) {
        certs->cap = certs->cap ? 2 * certs->cap : 4;
        certs->v = realloc(certs->v, certs->cap * sizeof(*certs->v));
        FUZZ_CHECK(certs->v != NULL);
    }
    c = &certs->v[certs->n++];
    memset(c, 0, sizeof(*c));
    memset(c->sha256, fill, sizeof(c->sha256));
    c->not_before = not_before;
    c->not_after = not_after;
    c->subject = malloc(ls + li + lr + le);
    FUZZ_CHECK(c->subject != NULL);
    c->issuer = c->subject + ls;
    c->serial = c->issuer + li;
    c->entry = c->serial + lr;
    memcpy(c->subject, subject, ls);
    memcpy(c->issuer, issuer, li);
    memcpy(c->serial, serial, lr);
    memcpy(c->entry, entry, le);
}

static const char world_yaml[] = "timezone: UTC\n"
                                 "keystores:\n"
                                 "  - name: naccs\n"
                                 "    path: /nonexistent/kigen-fuzz/naccs\n"
                                 "    labels: { team: customs, site: kobe }\n"
                                 "  - name: web\n"
                                 "    path: /nonexistent/kigen-fuzz/web\n"
                                 "rules:\n"
                                 "  - match: { issuer: \"*NACCS Client CA*\" }\n"
                                 "    renew_before: 28d\n"
                                 "    renew_url: \"https://cert.nac.naccs.jp/renew\"\n"
                                 "    reissue_note: \"re-issue takes at least one business day\"\n";

static int64_t at(const char *s)
{
    int64_t t;

    FUZZ_CHECK(kigen_time_parse(s, &t) == 0);
    return t;
}

static struct kigen_file *world_file(const char *keystore, const char *path,
                                     enum kigen_format format)
{
    struct kigen_file *f = kigen_file_new(keystore, path);

    FUZZ_CHECK(f != NULL);
    f->format = format;
    return f;
}

/* Puts f into the inventory once filled: the inventory counts what it holds then. */
static void place(struct kigen_inventory *inv, struct kigen_file *f)
{
    FUZZ_CHECK(kigen_inventory_put(inv, f) == 0);
}

const struct fuzz_world *fuzz_world(void)
{
    static const char naccs_ca[] = "CN=NACCS Client CA,O=Test NACCS,C=JP";
    static struct fuzz_world w;
    static struct kigen_view view;
    struct kigen_inventory *inv;
    struct kigen_file *f;
    char err[512] = "";

    if (w.config)
        return &w;
    if (kigen_config_parse("world.yaml", world_yaml, strlen(world_yaml), &w.config, err,
                           sizeof(err)) < 0) {
        fprintf(stderr, "fuzz world: %s\n", err);
        FUZZ_CHECK(!"the world's configuration parses");
    }
    FUZZ_CHECK(kigen_inventory_new(&w.inventory) == 0);
    inv = w.inventory;
    w.now = at("2026-11-24T12:00:00Z");

    f = world_file("naccs", "/srv/naccs/tanaka.p12", KIGEN_FORMAT_PKCS12);
    fuzz_add_cert(&f->certs, 0x11, "CN=tanaka,O=Example Trading,C=JP", naccs_ca, "3e8", "0",
                  at("2024-01-01T00:00:00Z"), at("2029-02-01T00:00:00Z"));
    fuzz_add_cert(&f->certs, 0x22, naccs_ca, naccs_ca, "1", "1", at("2021-01-01T00:00:00Z"),
                  at("2041-01-01T00:00:00Z"));
    place(inv, f);
    f = world_file("naccs", "/srv/naccs/suzuki.p12", KIGEN_FORMAT_PKCS12);
    fuzz_add_cert(&f->certs, 0x33, "CN=suzuki,O=Example Trading,C=JP", naccs_ca, "3e9", "0",
                  at("2021-12-01T00:00:00Z"), at("2026-12-14T12:00:00Z"));
    place(inv, f);
    f = world_file("naccs", "/srv/naccs/takahashi.p12", KIGEN_FORMAT_PKCS12);
    fuzz_add_cert(&f->certs, 0x44, "CN=takahashi,O=Example Trading,C=JP", naccs_ca, "3ea", "0",
                  at("2021-10-01T00:00:00Z"), at("2026-11-01T00:00:00Z"));
    place(inv, f);
    f = world_file("naccs", "/srv/naccs/sato.pem", KIGEN_FORMAT_PEM);
    fuzz_add_cert(&f->certs, 0x55, "CN=sato,O=Example Trading,C=JP", naccs_ca, "3eb", "0",
                  at("2021-12-01T00:00:00Z"), at("2026-11-27T12:00:00Z"));
    place(inv, f);
    f = world_file("web", "/srv/web/caf\xe9 \"quoted\"\n.pem", KIGEN_FORMAT_PEM);
    fuzz_add_cert(&f->certs, 0x11, "CN=tanaka,O=Example Trading,C=JP", naccs_ca, "3e8", "0",
                  at("2024-01-01T00:00:00Z"), at("2029-02-01T00:00:00Z"));
    fuzz_add_cert(&f->certs, 0x66, "CN=watanabe,O=Example \\\"Trading\\\",C=JP", naccs_ca, "0", "1",
                  at("2026-12-01T00:00:00Z"), at("2032-01-01T00:00:00Z"));
    place(inv, f);
    f = world_file("naccs", "/srv/naccs/broken.p12", KIGEN_FORMAT_PKCS12);
    f->error = KIGEN_E_WRONG_PASSWORD;
    f->message = strdup("MAC verification failed with every configured password");
    FUZZ_CHECK(f->message != NULL);
    place(inv, f);

    FUZZ_CHECK(kigen_view_build(w.config, w.inventory, w.now, NULL, &view) == 0);
    w.view = &view;
    return &w;
}

int fuzz_one_read(fuzz_reader_fn read, const uint8_t *data, size_t size)
{
    struct kigen_certs certs = { 0 };
    char errbuf[256] = "";
    int r;

    r = read(fuzz_read_ctx(), data, size, &certs, errbuf, sizeof(errbuf));
    fuzz_check_read(r, &certs, 0, errbuf, false);
    fuzz_certs_free(&certs);
    ERR_clear_error();
    return 0;
}

/* ---- the revocation targets' world ---- */

static X509 *pki_cert(X509_NAME *subject, X509_NAME *issuer, EVP_PKEY *key, EVP_PKEY *signer,
                      long serial, bool is_ca)
{
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    FUZZ_CHECK(x != NULL);
    FUZZ_CHECK(X509_set_version(x, 2) == 1);
    FUZZ_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1);
    FUZZ_CHECK(X509_set_subject_name(x, subject) == 1 && X509_set_issuer_name(x, issuer) == 1);
    FUZZ_CHECK(ASN1_TIME_set(X509_getm_notBefore(x), 1767225600) != NULL); /* 2026-01-01 */
    FUZZ_CHECK(ASN1_TIME_set(X509_getm_notAfter(x), 1927843200) != NULL);  /* 2031-02-01 */
    FUZZ_CHECK(X509_set_pubkey(x, key) == 1);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, is_ca ? "CA:TRUE" : "CA:FALSE");
    FUZZ_CHECK(ext != NULL && X509_add_ext(x, ext, -1) == 1);
    X509_EXTENSION_free(ext);
    FUZZ_CHECK(X509_sign(x, signer, EVP_sha256()) > 0);
    return x;
}

const struct fuzz_pki *fuzz_pki(void)
{
    static struct fuzz_pki pki;
    X509_NAME *ca_name, *leaf_name;
    EVP_PKEY *leaf_key;

    if (pki.ca)
        return &pki;
    pki.ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FUZZ_CHECK(pki.ca_key != NULL && leaf_key != NULL);
    ca_name = X509_NAME_new();
    leaf_name = X509_NAME_new();
    FUZZ_CHECK(ca_name && leaf_name);
    FUZZ_CHECK(X509_NAME_add_entry_by_txt(ca_name, "C", MBSTRING_ASC, (const unsigned char *)"JP",
                                          -1, -1, 0) == 1);
    FUZZ_CHECK(X509_NAME_add_entry_by_txt(ca_name, "O", MBSTRING_ASC,
                                          (const unsigned char *)"Test NACCS", -1, -1, 0) == 1);
    FUZZ_CHECK(X509_NAME_add_entry_by_txt(ca_name, "CN", MBSTRING_ASC,
                                          (const unsigned char *)"Kigen Revocation Test CA", -1, -1,
                                          0) == 1);
    FUZZ_CHECK(X509_NAME_add_entry_by_txt(leaf_name, "CN", MBSTRING_ASC,
                                          (const unsigned char *)"revoked", -1, -1, 0) == 1);
    pki.ca = pki_cert(ca_name, ca_name, pki.ca_key, pki.ca_key, 1, true);
    pki.leaf = pki_cert(leaf_name, ca_name, leaf_key, pki.ca_key, 0x1001, false);
    X509_NAME_free(ca_name);
    X509_NAME_free(leaf_name);
    EVP_PKEY_free(leaf_key);
    return &pki;
}

void fuzz_check_revocation(bool decided, const struct kigen_revocation_status *s, int64_t now)
{
    FUZZ_CHECK(s->checked_at == now);
    FUZZ_CHECK(strlen(s->error) < sizeof(s->error));
    if (decided) {
        FUZZ_CHECK(s->status == KIGEN_REV_GOOD || s->status == KIGEN_REV_REVOKED);
        FUZZ_CHECK(s->source == KIGEN_REV_SOURCE_CRL || s->source == KIGEN_REV_SOURCE_OCSP);
        FUZZ_CHECK(s->error[0] == '\0');
        FUZZ_CHECK(s->reason == -1 || kigen_crl_reason_name(s->reason) != NULL);
        FUZZ_CHECK(s->status == KIGEN_REV_REVOKED || s->revoked_at == KIGEN_NO_TIME);
    } else {
        /* Never revoked without a verified answer (SPEC §13). */
        FUZZ_CHECK(s->status == KIGEN_REV_UNKNOWN);
        FUZZ_CHECK(s->error[0] != '\0' && fuzz_is_one_line(s->error));
    }
}
