/* PKCS#7 / CMS SignedData certificate bags (RFC 2315 §9.1), DER or PEM (.p7b, .p7c). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "err.h"
#include "read.h"

static PKCS7 *decode(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len)
{
    PKCS7 *p7 = PKCS7_new_ex(ctx->libctx, NULL);
    const unsigned char *p = buf;
    BIO *bio;

    if (!p7)
        return NULL;
    if (len > 0 && buf[0] == 0x30)
        return d2i_PKCS7(&p7, &p, (long)len); /* frees p7 on failure */
    bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio) {
        PKCS7_free(p7);
        return NULL;
    }
    /* The first block under a PKCS#7 label: PKCS7, PKCS #7 SIGNED DATA or CMS. */
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *data = NULL;
        long dlen;
        bool is_p7;

        if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
            PKCS7_free(p7);
            p7 = NULL;
            break;
        }
        is_p7 = strcmp(name, PEM_STRING_PKCS7) == 0 || strcmp(name, PEM_STRING_PKCS7_SIGNED) == 0 ||
                strcmp(name, PEM_STRING_CMS) == 0;
        p = data;
        if (is_p7 && !d2i_PKCS7(&p7, &p, dlen))
            p7 = NULL; /* freed by d2i */
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (is_p7)
            break;
    }
    ERR_clear_error();
    BIO_free(bio);
    return p7;
}

int kigen_read_pkcs7(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                     struct kigen_certs *certs, char *errbuf, size_t errlen)
{
    PKCS7 *p7 = NULL;
    STACK_OF(X509) *sk = NULL;
    char entry[16];
    int r, n;

    if (len > INT_MAX)
        return kigen_errf(errbuf, errlen, KIGEN_E_TOO_LARGE, "file too large for PKCS#7");
    p7 = decode(ctx, buf, len);
    ERR_clear_error();
    if (!p7) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "not a valid PKCS#7 structure");
        goto out;
    }
    if (PKCS7_type_is_signed(p7))
        sk = p7->d.sign ? p7->d.sign->cert : NULL;
    else if (PKCS7_type_is_signedAndEnveloped(p7))
        sk = p7->d.signed_and_enveloped ? p7->d.signed_and_enveloped->cert : NULL;
    else {
        r = kigen_errf(errbuf, errlen, KIGEN_E_UNSUPPORTED, "PKCS#7 content is not SignedData");
        goto out;
    }
    n = sk ? sk_X509_num(sk) : 0;
    for (int i = 0; i < n; i++) {
        snprintf(entry, sizeof(entry), "%d", i);
        r = kigen_certs_add_x509(certs, ctx, sk_X509_value(sk, i), entry);
        if (r == -KIGEN_E_MALFORMED)
            r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "certificate %d is damaged", i);
        if (r < 0)
            goto out;
    }
    r = n;
out:
    PKCS7_free(p7);
    return r;
}
