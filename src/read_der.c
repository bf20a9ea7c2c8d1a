/*
 * DER certificates (X.690, RFC 5280 §4.1): one, or several one after another, as `cat a.der
 * b.der` makes them. Bytes after the last certificate that are not one are damage: the
 * certificates before them are kept and the file gets one error.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"
#include "read.h"

/* The length of the DER element at p (header and contents), or 0 when there is none. */
static size_t element_len(const uint8_t *p, size_t len)
{
    const unsigned char *q = p;
    long n;
    int tag, xclass, ret;

    if (len > LONG_MAX)
        len = LONG_MAX;
    ret = ASN1_get_object(&q, &n, &tag, &xclass, (long)len);
    ERR_clear_error();
    /* 0x80: an error; 0x21: indefinite length, which DER does not have. */
    if ((ret & 0x80) || ret == 0x21 || n < 0 || (size_t)n > len - (size_t)(q - p))
        return 0;
    return (size_t)(q - p) + (size_t)n;
}

bool kigen_read_der_is_certless(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len)
{
    const unsigned char *p, *end = buf + len;
    EVP_PKEY *pkey = NULL;
    X509_SIG *p8 = NULL;
    X509_REQ *req = NULL;
    X509_CRL *crl = NULL;
    bool is_certless = false;

    if (len == 0 || len > LONG_MAX || element_len(buf, len) != len)
        goto out;
    /* Each decoder must take the whole file: a whole key followed by junk is damage. */
    p = buf; /* PKCS#8 or a traditional RSA, DSA or EC key: decoded only to be recognised */
    pkey = d2i_AutoPrivateKey_ex(NULL, &p, (long)len, ctx->libctx, NULL);
    if (pkey && p == end)
        goto certless;
    EVP_PKEY_free(pkey);
    p = buf; /* EncryptedPrivateKeyInfo (RFC 5208 §6): its shape only, never decrypted */
    pkey = NULL;
    p8 = d2i_X509_SIG(NULL, &p, (long)len);
    if (p8 && p == end)
        goto certless;
    p = buf;
    pkey = d2i_PUBKEY_ex(NULL, &p, (long)len, ctx->libctx, NULL);
    if (pkey && p == end)
        goto certless;
    p = buf;
    req = X509_REQ_new_ex(ctx->libctx, NULL);
    if (req && !d2i_X509_REQ(&req, &p, (long)len))
        req = NULL; /* freed by d2i */
    if (req && p == end)
        goto certless;
    p = buf;
    crl = d2i_X509_CRL(NULL, &p, (long)len);
    if (crl && p == end)
        goto certless;
    goto out;
certless:
    is_certless = true;
out:
    X509_CRL_free(crl);
    X509_REQ_free(req);
    X509_SIG_free(p8);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return is_certless;
}

int kigen_read_der(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   struct kigen_certs *certs, char *errbuf, size_t errlen)
{
    size_t off = 0, n;
    unsigned index = 0;
    char entry[16];
    int r;

    while (off < len) {
        n = element_len(buf + off, len - off);
        snprintf(entry, sizeof(entry), "%u", index);
        r = n ? kigen_certs_add_der(certs, ctx, buf + off, n, entry) : -KIGEN_E_MALFORMED;
        if (r == -ENOMEM)
            return r;
        /* A CSR or CRL looks like a certificate to kigen_detect(): it holds none. */
        if (r < 0 && index == 0 && kigen_read_der_is_certless(ctx, buf, len)) {
            /* A CRL's facts are kept (SPEC §13 CRL files); any other such file gives nothing. */
            r = kigen_certs_add_crl_der(certs, ctx, buf, len);
            return r == -ENOMEM ? r : 0;
        }
        if (r < 0 && index == 0)
            return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                              "neither a DER certificate nor a whole key, CSR or CRL");
        if (r < 0)
            return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                              "%zu bytes after certificate %u are not a DER certificate", len - off,
                              index - 1);
        off += n;
        index++;
    }
    return (int)index;
}
