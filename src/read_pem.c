/* PEM (RFC 7468): every CERTIFICATE, X509 CERTIFICATE and TRUSTED CERTIFICATE block. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "err.h"
#include "read.h"

static int is_cert_block(const char *name)
{
    return strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0 ||
           strcmp(name, PEM_STRING_X509_TRUSTED) == 0;
}

/*
 * Whether the next block PEM_read_bio() will meet in the rest of the buffer is a certificate,
 * so that a block too damaged to decode still takes its place in the numbering of entries.
 */
static int next_is_cert(BIO *bio)
{
    char *data, name[64];
    long len = BIO_get_mem_data(bio, &data);
    const char *p = len > 0 ? memmem(data, (size_t)len, "-----BEGIN ", 11) : NULL;
    size_t n = 0;

    if (!p)
        return 0;
    p += 11;
    while (p + n < data + len && n < sizeof(name) - 1 && p[n] != '-' && p[n] != '\n')
        n++;
    memcpy(name, p, n);
    name[n] = '\0';
    return is_cert_block(name);
}

int kigen_read_pem(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   struct kigen_certs *certs, char *errbuf, size_t errlen)
{
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen;
    unsigned index = 0, damaged = 0, first_damaged = 0;
    char entry[16];
    size_t before = certs->n;
    int r;

    if (len > INT_MAX)
        return kigen_errf(errbuf, errlen, KIGEN_E_TOO_LARGE, "file too large for PEM");
    bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio)
        return -ENOMEM;
    for (;;) {
        int cert_next = next_is_cert(bio);

        /* Lines outside blocks ("Bag Attributes", comments) are skipped by PEM_read_bio. */
        if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
            unsigned long e = ERR_peek_last_error();

            ERR_clear_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                break;
            /* A block with a bad line or bad base64: count it, go on with the next one. */
            if (!damaged++)
                first_damaged = index;
            index += cert_next;
            if (BIO_eof(bio))
                break;
            continue;
        }
        if (is_cert_block(name)) {
            snprintf(entry, sizeof(entry), "%u", index++);
            r = kigen_certs_add_der(certs, ctx, data, (size_t)dlen, entry);
            if (r == -ENOMEM)
                goto out;
            if (r < 0 && !damaged++)
                first_damaged = index - 1;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    ERR_clear_error();
    if (damaged) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                       "%u damaged PEM block%s (first near certificate %u)", damaged,
                       damaged == 1 ? "" : "s", first_damaged);
        goto out;
    }
    r = (int)(certs->n - before);
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    return r;
}
