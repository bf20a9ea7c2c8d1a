/*
 * PEM (RFC 7468): every CERTIFICATE, X509 CERTIFICATE and TRUSTED CERTIFICATE block, and the
 * facts of every X509 CRL block (SPEC §13 CRL files).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
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

/* The first line in [p, end) of buf that starts with tag, or NULL. */
static const char *find_line(const char *buf, const char *p, const char *end, const char *tag)
{
    size_t n = strlen(tag);

    while (p < end && (p = memmem(p, (size_t)(end - p), tag, n))) {
        if (p == buf || p[-1] == '\n' || p[-1] == '\r')
            return p;
        p++;
    }
    return NULL;
}

/* Whether [p, end), text outside the blocks, holds bytes no text file has (damage). */
static bool is_binary(const char *p, const char *end)
{
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;

        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') ||
            c == 0x7f)
            return true;
    }
    return false;
}

/*
 * The blocks are found here, not by PEM_read_bio() alone: a block without its END line must
 * not swallow the next one, and each block is decoded from its own bytes. Lines outside the
 * blocks ("Bag Attributes", comments) are skipped; bytes outside them that are not text are
 * damage. A damaged certificate block keeps its place in the numbering of entries.
 */
int kigen_read_pem(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   struct kigen_certs *certs, char *errbuf, size_t errlen)
{
    const char *text = (const char *)buf, *end = text + len, *p = text, *begin, *next, *stop;
    char *name = NULL, *header = NULL, block[80], tag[96];
    unsigned char *data = NULL;
    long dlen;
    unsigned index = 0, damaged = 0, first_damaged = 0, damaged_crls = 0;
    bool is_garbage = false;
    char entry[16];
    size_t before = certs->n, n;
    int r;

    if (len > INT_MAX)
        return kigen_errf(errbuf, errlen, KIGEN_E_TOO_LARGE, "file too large for PEM");
    for (; (begin = find_line(text, p, end, "-----BEGIN ")); p = next) {
        const char *q = begin + 11;
        bool is_cert, is_crl, is_whole = false;

        is_garbage = is_garbage || is_binary(p, begin);
        for (n = 0; q + n < end && n < sizeof(block) - 1 && q[n] != '-' && q[n] != '\n'; n++)
            block[n] = q[n];
        block[n] = '\0';
        is_cert = is_cert_block(block);
        is_crl = strcmp(block, PEM_STRING_X509_CRL) == 0;
        /* Its END line, unless another block begins first; then it ends with the next one. */
        next = find_line(text, q, end, "-----BEGIN ");
        snprintf(tag, sizeof(tag), "-----END %s-----", block);
        stop = find_line(text, q, next ? next : end, tag);
        if (stop) {
            stop += strlen(tag);
            while (stop < end && (*stop == '\r' || *stop == '\n' || *stop == ' ' || *stop == '\t'))
                stop++;
            if (!next || next > stop)
                next = stop;
        } else if (!next) {
            next = end;
        }
        if (stop && (is_cert || is_crl)) {
            BIO *bio = BIO_new_mem_buf(begin, (int)(stop - begin));

            if (!bio) {
                r = -ENOMEM;
                goto out;
            }
            is_whole = PEM_read_bio(bio, &name, &header, &data, &dlen) == 1;
            BIO_free(bio);
            ERR_clear_error();
        }
        if (is_whole && is_cert) {
            snprintf(entry, sizeof(entry), "%u", index);
            r = kigen_certs_add_der(certs, ctx, data, (size_t)dlen, entry);
            if (r == -ENOMEM)
                goto out;
            is_whole = r >= 0;
        } else if (is_whole && is_crl) {
            r = kigen_certs_add_crl_der(certs, ctx, data, (size_t)dlen);
            if (r == -ENOMEM)
                goto out;
            is_whole = r >= 0;
        }
        /* Only certificate and CRL blocks are decoded: others are skipped, whatever they hold. */
        if (is_cert && !is_whole && !damaged++)
            first_damaged = index;
        if (is_crl && !is_whole)
            damaged_crls++;
        index += is_cert;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
    }
    is_garbage = is_garbage || is_binary(p, end);
    if (damaged_crls && !damaged && !is_garbage) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "%u damaged X509 CRL block%s",
                       damaged_crls, damaged_crls == 1 ? "" : "s");
        goto out;
    }
    if (damaged || is_garbage) {
        if (!damaged)
            r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                           "bytes that are not text outside the PEM blocks");
        else
            r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                           "%u damaged PEM block%s (first near certificate %u)%s", damaged,
                           damaged == 1 ? "" : "s", first_damaged,
                           is_garbage ? ", and bytes that are not text outside the blocks" : "");
        goto out;
    }
    r = (int)(certs->n - before);
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    return r;
}
