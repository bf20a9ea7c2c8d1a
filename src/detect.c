/* Format detection by content (SPEC §4) and the dispatch to the readers. */
#include <errno.h>
#include <string.h>

#include "err.h"
#include "read.h"
#include "secret.h"

#define JKS_MAGIC   0xFEEDFEEDu
#define JCEKS_MAGIC 0xCECECECEu

const char *kigen_format_name(enum kigen_format format)
{
    switch (format) {
    case KIGEN_FORMAT_PEM:
        return "pem";
    case KIGEN_FORMAT_DER:
        return "der";
    case KIGEN_FORMAT_PKCS7:
        return "pkcs7";
    case KIGEN_FORMAT_PKCS12:
        return "pkcs12";
    case KIGEN_FORMAT_JKS:
        return "jks";
    case KIGEN_FORMAT_JCEKS:
        return "jceks";
    case KIGEN_FORMAT_DECLARED:
        return "declared";
    case KIGEN_FORMAT_UNKNOWN:
        break;
    }
    return NULL;
}

/*
 * One BER tag-length header (X.690 §8.1) at buf[*pos]: low-tag-number form only, which is
 * all the structures sniffed here use. Indefinite length gives *ret_len = SIZE_MAX. The
 * length is not checked against the buffer: a truncated file still shows its shape.
 */
static int peek_tlv(const uint8_t *buf, size_t len, size_t *pos, uint8_t *ret_tag, size_t *ret_len)
{
    size_t p = *pos, n = 0;
    uint8_t b;

    if (p + 2 > len)
        return -1;
    *ret_tag = buf[p++];
    if ((*ret_tag & 0x1f) == 0x1f)
        return -1;
    b = buf[p++];
    if (b == 0x80) {
        n = SIZE_MAX;
    } else if (b & 0x80) {
        unsigned k = b & 0x7f;

        if (k > 4 || p + k > len)
            return -1;
        while (k--)
            n = n << 8 | buf[p++];
    } else {
        n = b;
    }
    *pos = p;
    *ret_len = n;
    return 0;
}

static const uint8_t oid_pkcs7_signed[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02 };

/*
 * DER/BER: a certificate is SEQUENCE { SEQUENCE tbs, ... }, PKCS#7 is SEQUENCE { OID
 * signedData, ... }, PKCS#12 is SEQUENCE { INTEGER 3, ... } (RFC 7292 §4). Keys (INTEGER 0 or
 * SEQUENCE { SEQUENCE algid, OCTET STRING }) are not certificates and give UNKNOWN.
 */
static enum kigen_format detect_der(const uint8_t *buf, size_t len)
{
    size_t pos = 0, n, inner;
    uint8_t tag;

    if (peek_tlv(buf, len, &pos, &tag, &n) < 0 || tag != 0x30)
        return KIGEN_FORMAT_UNKNOWN;
    if (peek_tlv(buf, len, &pos, &tag, &n) < 0)
        return KIGEN_FORMAT_UNKNOWN;
    if (tag == 0x02)
        return n == 1 && pos < len && buf[pos] == 3 ? KIGEN_FORMAT_PKCS12 : KIGEN_FORMAT_UNKNOWN;
    if (tag == 0x06)
        return n == sizeof(oid_pkcs7_signed) && pos + n <= len &&
                       memcmp(buf + pos, oid_pkcs7_signed, n) == 0
                   ? KIGEN_FORMAT_PKCS7
                   : KIGEN_FORMAT_UNKNOWN;
    if (tag != 0x30)
        return KIGEN_FORMAT_UNKNOWN;
    /* tbsCertificate starts with [0] version or INTEGER serial; an AlgorithmIdentifier
     * (encrypted PKCS#8) starts with an OID. */
    inner = pos;
    if (peek_tlv(buf, len, &inner, &tag, &n) < 0)
        return KIGEN_FORMAT_DER; /* truncated: let the reader say so */
    return tag == 0xa0 || tag == 0x02 ? KIGEN_FORMAT_DER : KIGEN_FORMAT_UNKNOWN;
}

static const void *find(const uint8_t *buf, size_t len, const char *needle)
{
    return memmem(buf, len, needle, strlen(needle));
}

enum kigen_format kigen_detect(const uint8_t *buf, size_t len)
{
    uint32_t magic;

    if (len >= 4) {
        magic = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
        if (magic == JKS_MAGIC)
            return KIGEN_FORMAT_JKS;
        if (magic == JCEKS_MAGIC)
            return KIGEN_FORMAT_JCEKS;
    }
    if (len > 0 && buf[0] == 0x30)
        return detect_der(buf, len);
    if (find(buf, len, "-----BEGIN ")) {
        /*
         * A .p7b in PEM form, under any label PEM_read_bio_PKCS7 takes; a PEM bundle that
         * also carries a PKCS7 block stays PEM.
         */
        if ((find(buf, len, "-----BEGIN PKCS7-----") ||
             find(buf, len, "-----BEGIN PKCS #7 SIGNED DATA-----") ||
             find(buf, len, "-----BEGIN CMS-----")) &&
            !find(buf, len, "CERTIFICATE-----"))
            return KIGEN_FORMAT_PKCS7;
        return KIGEN_FORMAT_PEM;
    }
    return KIGEN_FORMAT_UNKNOWN;
}

/* Text with no PEM block (a README, a .pass sidecar): holds no certificate, gives no record. */
static int is_text(const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = buf[i];

        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f')
            return 0;
        if (c == 0x7f)
            return 0;
    }
    return 1;
}

int kigen_read_any(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   const struct kigen_passwords *passwords, struct kigen_certs *certs,
                   enum kigen_format *ret_format, char *errbuf, size_t errlen)
{
    enum kigen_format format = kigen_detect(buf, len);
    int r;

    *ret_format = format;
    switch (format) {
    case KIGEN_FORMAT_PEM:
        return kigen_read_pem(ctx, buf, len, certs, errbuf, errlen);
    case KIGEN_FORMAT_DER:
        return kigen_read_der(ctx, buf, len, certs, errbuf, errlen);
    case KIGEN_FORMAT_PKCS7:
        return kigen_read_pkcs7(ctx, buf, len, certs, errbuf, errlen);
    case KIGEN_FORMAT_PKCS12:
        kigen_secret_wipe_begin();
        r = kigen_read_pkcs12(ctx, buf, len, passwords, certs, errbuf, errlen);
        kigen_secret_wipe_end();
        return r;
    case KIGEN_FORMAT_JKS:
    case KIGEN_FORMAT_JCEKS:
        kigen_secret_wipe_begin();
        r = kigen_read_jks(ctx, buf, len, passwords, certs, ret_format, errbuf, errlen);
        kigen_secret_wipe_end();
        return r;
    case KIGEN_FORMAT_DECLARED: /* never detected */
    case KIGEN_FORMAT_UNKNOWN:
        break;
    }
    if (len == 0)
        return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "empty file");
    if (is_text(buf, len > 4096 ? 4096 : len))
        return 0;
    if (buf[0] == 0x30 && kigen_read_der_is_certless(ctx, buf, len)) {
        /* a key, a CRL, a CSR: no certificate, no error (SPEC §4); a CRL's facts are kept */
        r = kigen_certs_add_crl_der(certs, ctx, buf, len);
        return r == -ENOMEM ? r : 0;
    }
    if (buf[0] == 0x30)
        return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                          "DER that is neither a certificate container nor a whole key, CSR "
                          "or CRL");
    return kigen_errf(errbuf, errlen, KIGEN_E_UNSUPPORTED,
                      "not a certificate, PKCS#7, PKCS#12 or Java keystore");
}
