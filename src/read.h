/*
 * The readers: bytes in, certificates out (SPEC §4). A reader knows nothing of files,
 * keystores or policy. All share one contract:
 *
 *   - certificates are appended to certs in file order, with entry names of SPEC §4;
 *   - the return value is the number of certificates appended, or a negative enum
 *     kigen_err with a one-line reason in errbuf. Certificates appended before an error
 *     stay in certs: a file with good certificates and damaged bytes gives both;
 *   - private keys are never decrypted; passwords are only read, never copied or logged;
 *   - any input, however hostile, gives an error and never a crash.
 *
 * Readers run on worker threads with the caller's own ctx.
 */
#ifndef KIGEN_READ_H
#define KIGEN_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"

enum kigen_format {
    KIGEN_FORMAT_UNKNOWN = 0,
    KIGEN_FORMAT_PEM,
    KIGEN_FORMAT_DER,
    KIGEN_FORMAT_PKCS7,
    KIGEN_FORMAT_PKCS12,
    KIGEN_FORMAT_JKS,
    KIGEN_FORMAT_JCEKS,
    KIGEN_FORMAT_DECLARED, /* a certificate of the holders' register (SPEC §12): no file */
};

/* "pem", "der", "pkcs7", "pkcs12", "jks", "jceks", "declared"; NULL for unknown. */
const char *kigen_format_name(enum kigen_format format);

/*
 * Guesses the format from the content alone (never from a name). PEM input that holds a
 * PKCS7 block is KIGEN_FORMAT_PKCS7. Returns KIGEN_FORMAT_UNKNOWN for anything else.
 */
enum kigen_format kigen_detect(const uint8_t *buf, size_t len);

int kigen_read_pem(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   struct kigen_certs *certs, char *errbuf, size_t errlen);
int kigen_read_der(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   struct kigen_certs *certs, char *errbuf, size_t errlen);
/*
 * Whether buf is exactly one DER structure that holds no certificate and is no damage: a
 * private key (PKCS#8, encrypted PKCS#8, traditional RSA, DSA or EC), a public key, a CSR or
 * a CRL, as OpenSSL's decoders take it. Anything else that starts like DER (an outer length
 * that is not the file's, a SEQUENCE of garbage) is not. Keys are never decrypted.
 */
bool kigen_read_der_is_certless(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len);
int kigen_read_pkcs7(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                     struct kigen_certs *certs, char *errbuf, size_t errlen);

/*
 * A password list for the readers that take one: tried in order. An entry may be NULL
 * (no password). The strings are owned by the caller, who wipes them.
 */
struct kigen_passwords {
    const char *const *v;
    size_t n;
};

/*
 * PKCS#12 (RFC 7292). Tries each password; with none, or when none fits, tries NULL and "".
 * Returns -KIGEN_E_WRONG_PASSWORD when passwords were given and none fits,
 * -KIGEN_E_NEEDS_PASSWORD when none was given and one is needed.
 */
int kigen_read_pkcs12(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                      const struct kigen_passwords *passwords, struct kigen_certs *certs,
                      char *errbuf, size_t errlen);

/*
 * Java JKS (magic 0xFEEDFEED) and JCEKS (0xCECECECE). Certificates need no password; when
 * passwords are given the keyed SHA-1 integrity digest is checked with each, and
 * -KIGEN_E_WRONG_PASSWORD returned (certificates still appended) when none fits.
 * *ret_format, if not NULL, receives KIGEN_FORMAT_JKS or KIGEN_FORMAT_JCEKS.
 */
int kigen_read_jks(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   const struct kigen_passwords *passwords, struct kigen_certs *certs,
                   enum kigen_format *ret_format, char *errbuf, size_t errlen);

/*
 * Detects the format and calls the matching reader. *ret_format receives the detected
 * format (also on error). Returns as the readers do; -KIGEN_E_UNSUPPORTED for unknown content.
 */
int kigen_read_any(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   const struct kigen_passwords *passwords, struct kigen_certs *certs,
                   enum kigen_format *ret_format, char *errbuf, size_t errlen);

#endif
