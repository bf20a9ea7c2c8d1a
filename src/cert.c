#include "cert.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "err.h"

int kigen_read_ctx_new(struct kigen_read_ctx **ret_ctx)
{
    struct kigen_read_ctx *ctx = NULL;
    int r = -ENOMEM;

    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        goto out;
    ctx->libctx = OSSL_LIB_CTX_new();
    if (!ctx->libctx)
        goto out;
    ctx->provider_default = OSSL_PROVIDER_load(ctx->libctx, "default");
    if (!ctx->provider_default)
        goto out;
    /* RC2-40 and DES in old PKCS#12 files; absent on some builds, then those are unsupported. */
    ctx->provider_legacy = OSSL_PROVIDER_load(ctx->libctx, "legacy");
    ERR_clear_error();
    ctx->sha256 = EVP_MD_fetch(ctx->libctx, "SHA256", NULL);
    ctx->scratch = BIO_new(BIO_s_mem());
    if (!ctx->sha256 || !ctx->scratch)
        goto out;
    *ret_ctx = ctx;
    ctx = NULL;
    r = 0;
out:
    kigen_read_ctx_free(ctx);
    return r;
}

void kigen_read_ctx_free(struct kigen_read_ctx *ctx)
{
    if (!ctx)
        return;
    EVP_MD_free(ctx->sha256);
    BIO_free(ctx->scratch);
    if (ctx->provider_legacy)
        OSSL_PROVIDER_unload(ctx->provider_legacy);
    if (ctx->provider_default)
        OSSL_PROVIDER_unload(ctx->provider_default);
    OSSL_LIB_CTX_free(ctx->libctx);
    free(ctx);
}

int kigen_asn1_time_to_unix(const ASN1_TIME *t, int64_t *ret_unix)
{
    struct tm tm;

    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return -KIGEN_E_MALFORMED;
    *ret_unix = (int64_t)timegm(&tm);
    return 0;
}

/* Whether s holds well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
 */
static bool is_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], need, min, cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            need = 1, min = 0x80, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            need = 2, min = 0x800, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            need = 3, min = 0x10000, cp = c & 0x07;
        else
            return false;
        if (n - i <= need)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

/*
 * RFC 2253: as `openssl x509 -nameopt RFC2253,-esc_msb` prints it, characters beyond ASCII
 * as UTF-8 (RFC 2253 section 2.4 uses the UTF-8 string as it is; "CN=田中", not
 * "CN=\E7\94\B0..."). A value whose bytes are not UTF-8 after conversion keeps OpenSSL's
 * \XX escapes, so that the result is always valid UTF-8. Returns a malloc'd string.
 */
static char *name_to_string(const struct kigen_read_ctx *ctx, const X509_NAME *name)
{
    static const unsigned long flags[] = { XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB,
                                           XN_FLAG_RFC2253 };
    char *data, *s = NULL;
    long len;

    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) && !s; i++) {
        (void)BIO_reset(ctx->scratch);
        if (X509_NAME_print_ex(ctx->scratch, name, 0, flags[i]) < 0)
            break;
        len = BIO_get_mem_data(ctx->scratch, &data);
        if (!is_utf8((const unsigned char *)data, (size_t)len))
            continue;
        s = malloc((size_t)len + 1);
        if (!s)
            break;
        memcpy(s, data, (size_t)len);
        s[len] = '\0';
    }
    (void)BIO_reset(ctx->scratch);
    return s;
}

/* Lowercase hex without leading zeros, "0" for zero. Returns a malloc'd string. */
static char *serial_to_string(const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex, *s = NULL, *p;
    int neg;

    if (!bn)
        return NULL;
    hex = BN_bn2hex(bn);
    BN_free(bn);
    if (!hex)
        return NULL;
    p = hex;
    neg = *p == '-';
    if (neg)
        p++;
    while (p[0] == '0' && p[1] != '\0')
        p++;
    s = malloc(strlen(p) + 2);
    if (s) {
        char *q = s;

        if (neg)
            *q++ = '-';
        for (; *p; p++)
            *q++ = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
        *q = '\0';
    }
    OPENSSL_free(hex);
    return s;
}

static int certs_grow(struct kigen_certs *certs)
{
    struct kigen_cert *v;
    size_t cap;

    if (certs->n < certs->cap)
        return 0;
    cap = certs->cap ? certs->cap * 2 : 1; /* most files hold one certificate */
    v = realloc(certs->v, cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    certs->v = v;
    certs->cap = cap;
    return 0;
}

int kigen_cert_set_strings(struct kigen_cert *c, const char *subject, const char *issuer,
                           const char *serial, const char *entry, const char *email)
{
    size_t ls = strlen(subject) + 1, li = strlen(issuer) + 1, lr = strlen(serial) + 1;
    size_t le = strlen(entry) + 1, lm = strlen(email) + 1;
    char *p = malloc(ls + li + lr + le + lm);

    if (!p)
        return -ENOMEM;
    c->subject = memcpy(p, subject, ls);
    c->issuer = memcpy(p + ls, issuer, li);
    c->serial = memcpy(p + ls + li, serial, lr);
    c->entry = memcpy(p + ls + li + lr, entry, le);
    c->email = memcpy(p + ls + li + lr + le, email, lm);
    return 0;
}

/* Whether s (n bytes) reads as an e-mail address: printable ASCII with one '@' inside. */
static bool is_email(const unsigned char *s, int n)
{
    int at = -1;

    if (n < 3 || n > 254)
        return false;
    for (int i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == '<' || s[i] == '>' || s[i] == '"')
            return false;
        if (s[i] == '@') {
            if (at >= 0)
                return false;
            at = i;
        }
    }
    return at > 0 && at < n - 1;
}

/*
 * The certificate's own e-mail address (SPEC §12: its holder when no register row names
 * one): the first subjectAltName rfc822Name, else the subject's emailAddress. Written into
 * out (256 bytes); "" when it has none that reads as an address.
 */
static void email_of(X509 *x509, char out[256])
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
    const X509_NAME *subject = X509_get_subject_name(x509);
    const ASN1_STRING *found = NULL;
    int i;

    out[0] = '\0';
    for (i = 0; names && i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);

        if (g->type == GEN_EMAIL &&
            is_email(ASN1_STRING_get0_data(g->d.rfc822Name), ASN1_STRING_length(g->d.rfc822Name)))
            found = g->d.rfc822Name;
    }
    i = found ? -1 : X509_NAME_get_index_by_NID(subject, NID_pkcs9_emailAddress, -1);
    if (i >= 0) {
        const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));

        if (is_email(ASN1_STRING_get0_data(v), ASN1_STRING_length(v)))
            found = v;
    }
    if (found) {
        memcpy(out, ASN1_STRING_get0_data(found), (size_t)ASN1_STRING_length(found));
        out[ASN1_STRING_length(found)] = '\0';
    }
    GENERAL_NAMES_free(names);
}

/* Whether revocation checking may need x509's encoding (struct kigen_der). */
static bool needs_der(X509 *x509)
{
    return X509_check_ca(x509) > 0 ||
           X509_get_ext_by_NID(x509, NID_crl_distribution_points, -1) >= 0 ||
           X509_get_ext_by_NID(x509, NID_info_access, -1) >= 0;
}

static struct kigen_der *der_dup(const uint8_t *bytes, size_t len)
{
    struct kigen_der *d = malloc(sizeof(*d) + len);

    if (!d)
        return NULL;
    d->len = len;
    memcpy(d->bytes, bytes, len);
    return d;
}

/* der/derlen: the certificate's encoding when the caller has it, else NULL. */
static int add_x509(struct kigen_certs *certs, const struct kigen_read_ctx *ctx, X509 *x509,
                    const uint8_t *der, size_t derlen, const char *entry)
{
    struct kigen_cert c = { 0 };
    unsigned char *enc = NULL;
    char *subject = NULL, *issuer = NULL, *serial = NULL, email[256];
    int r, n;

    if (!der) {
        n = i2d_X509(x509, &enc);
        if (n <= 0) {
            r = -KIGEN_E_MALFORMED;
            goto out;
        }
        der = enc;
        derlen = (size_t)n;
    }
    if (!EVP_Digest(der, derlen, c.sha256, NULL, ctx->sha256, NULL)) {
        r = -ENOMEM;
        goto out;
    }
    r = kigen_asn1_time_to_unix(X509_get0_notBefore(x509), &c.not_before);
    if (r < 0)
        goto out;
    r = kigen_asn1_time_to_unix(X509_get0_notAfter(x509), &c.not_after);
    if (r < 0)
        goto out;
    subject = name_to_string(ctx, X509_get_subject_name(x509));
    issuer = name_to_string(ctx, X509_get_issuer_name(x509));
    serial = serial_to_string(X509_get0_serialNumber(x509));
    if (!subject || !issuer || !serial) {
        r = -ENOMEM;
        goto out;
    }
    email_of(x509, email);
    if (needs_der(x509)) {
        c.der = der_dup(der, derlen);
        if (!c.der) {
            r = -ENOMEM;
            goto out;
        }
    }
    if (certs_grow(certs) < 0 ||
        kigen_cert_set_strings(&c, subject, issuer, serial, entry, email) < 0) {
        free(c.der);
        r = -ENOMEM;
        goto out;
    }
    certs->v[certs->n++] = c;
    r = 0;
out:
    OPENSSL_free(enc);
    free(subject);
    free(issuer);
    free(serial);
    return r;
}

int kigen_certs_add_x509(struct kigen_certs *certs, const struct kigen_read_ctx *ctx, X509 *x509,
                         const char *entry)
{
    return add_x509(certs, ctx, x509, NULL, 0, entry);
}

int kigen_certs_add_der(struct kigen_certs *certs, const struct kigen_read_ctx *ctx,
                        const uint8_t *der, size_t len, const char *entry)
{
    const unsigned char *p = der;
    X509 *x509;
    int r;

    if (len > LONG_MAX)
        return -KIGEN_E_MALFORMED;
    x509 = X509_new_ex(ctx->libctx, NULL);
    if (!x509)
        return -ENOMEM;
    if (!d2i_X509(&x509, &p, (long)len)) {
        /* d2i frees *x509 on failure. */
        return -KIGEN_E_MALFORMED;
    }
    r = add_x509(certs, ctx, x509, der, (size_t)(p - der), entry);
    X509_free(x509);
    return r;
}

int kigen_certs_push(struct kigen_certs *certs, const struct kigen_cert *c)
{
    if (certs_grow(certs) < 0)
        return -ENOMEM;
    certs->v[certs->n++] = *c;
    return 0;
}

int kigen_certs_add_copy(struct kigen_certs *certs, const struct kigen_cert *src, const char *entry)
{
    struct kigen_cert c = *src;

    c.der = src->der ? der_dup(src->der->bytes, src->der->len) : NULL;
    if ((src->der && !c.der) || certs_grow(certs) < 0 ||
        kigen_cert_set_strings(&c, src->subject, src->issuer, src->serial, entry,
                               src->email ? src->email : "") < 0) {
        free(c.der);
        return -ENOMEM;
    }
    certs->v[certs->n++] = c;
    return 0;
}

int kigen_certs_add_crl_der(struct kigen_certs *certs, const struct kigen_read_ctx *ctx,
                            const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    const ASN1_TIME *next;
    struct kigen_crl c = { .next_update = KIGEN_NO_TIME }, *v;
    X509_CRL *crl;
    int r;

    if (len > LONG_MAX)
        return -KIGEN_E_MALFORMED;
    crl = d2i_X509_CRL(NULL, &p, (long)len);
    if (!crl || p != der + len) {
        X509_CRL_free(crl);
        return -KIGEN_E_MALFORMED;
    }
    next = X509_CRL_get0_nextUpdate(crl);
    r = kigen_asn1_time_to_unix(X509_CRL_get0_lastUpdate(crl), &c.this_update);
    if (r == 0 && next)
        r = kigen_asn1_time_to_unix(next, &c.next_update);
    if (r < 0)
        goto out;
    c.issuer = name_to_string(ctx, X509_CRL_get_issuer(crl));
    if (!certs->crls)
        certs->crls = calloc(1, sizeof(*certs->crls));
    v = certs->crls && c.issuer ? reallocarray(certs->crls->v, certs->crls->n + 1, sizeof(*v))
                                : NULL;
    if (!v) {
        free(c.issuer);
        r = -ENOMEM;
        goto out;
    }
    certs->crls->v = v;
    v[certs->crls->n++] = c;
out:
    X509_CRL_free(crl);
    return r;
}

int kigen_certs_append(struct kigen_certs *certs, const struct kigen_certs *src)
{
    size_t n = certs->n;

    for (size_t i = 0; i < src->n; i++) {
        if (kigen_certs_add_copy(certs, &src->v[i], src->v[i].entry) < 0) {
            while (certs->n > n)
                kigen_cert_done(&certs->v[--certs->n]);
            return -ENOMEM;
        }
    }
    return 0;
}

void kigen_cert_done(struct kigen_cert *cert)
{
    if (!cert)
        return;
    free(cert->subject);
    free(cert->der);
    memset(cert, 0, sizeof(*cert));
}

void kigen_certs_shrink(struct kigen_certs *certs)
{
    struct kigen_cert *v;

    if (certs->n == certs->cap)
        return;
    if (certs->n == 0) {
        free(certs->v);
        certs->v = NULL;
        certs->cap = 0;
        return;
    }
    v = realloc(certs->v, certs->n * sizeof(*v));
    if (v) {
        certs->v = v;
        certs->cap = certs->n;
    }
}

void kigen_certs_clear(struct kigen_certs *certs)
{
    if (!certs)
        return;
    for (size_t i = 0; i < certs->n; i++)
        kigen_cert_done(&certs->v[i]);
    certs->n = 0;
    if (certs->crls) {
        for (size_t i = 0; i < certs->crls->n; i++)
            free(certs->crls->v[i].issuer);
        free(certs->crls->v);
        free(certs->crls);
        certs->crls = NULL;
    }
}

void kigen_bytes_to_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

void kigen_cert_sha256_hex(const struct kigen_cert *cert, char out[65])
{
    kigen_bytes_to_hex(cert->sha256, KIGEN_SHA256_LEN, out);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

size_t kigen_dn_first_cn(const char *dn, char *out)
{
    const char *p = dn;

    while (*p) {
        const char *type = p;
        bool is_cn;
        size_t n = 0;

        /* An attribute type has no escapes: up to '=' (or a malformed part to skip). */
        while (*p && *p != '=' && *p != ',' && *p != '+')
            p++;
        if (*p != '=') {
            if (*p)
                p++;
            continue;
        }
        is_cn = (p - type == 2 && (type[0] == 'C' || type[0] == 'c') &&
                 (type[1] == 'N' || type[1] == 'n')) ||
                (p - type == 7 && strncmp(type, "2.5.4.3", 7) == 0);
        p++;
        while (*p && *p != ',' && *p != '+') {
            size_t len = 1, skip = 0;

            if (*p == '\\' && is_hex(p[1]) && is_hex(p[2]))
                len = 3; /* RFC 2253 2.4 hexpair: kept */
            else if (*p == '\\' && p[1])
                skip = 1; /* an escaped special character: the character */
            if (is_cn)
                memcpy(out + n, p + skip, len);
            n += is_cn ? len : 0;
            p += skip + len;
        }
        if (is_cn) {
            out[n] = '\0';
            return n;
        }
        if (*p)
            p++;
    }
    out[0] = '\0';
    return 0;
}
