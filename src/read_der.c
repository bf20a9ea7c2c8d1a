/*
 * DER certificates (X.690, RFC 5280 §4.1): one, or several one after another, as `cat a.der
 * b.der` makes them. Bytes after the last certificate that are not one are damage: the
 * certificates before them are kept and the file gets one error.
 */
#include <limits.h>
#include <stdio.h>

#include <openssl/asn1.h>
#include <openssl/err.h>

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
        if (r < 0 && index == 0)
            return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "not a valid DER certificate");
        if (r < 0)
            return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                              "%zu bytes after certificate %u are not a DER certificate", len - off,
                              index - 1);
        off += n;
        index++;
    }
    return (int)index;
}
