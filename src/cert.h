/* One certificate as kigen keeps it: the facts of SPEC §6, no OpenSSL object. */
#ifndef KIGEN_CERT_H
#define KIGEN_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#define KIGEN_SHA256_LEN 32

/* A not_before that is not known: a declared certificate without `issued` (SPEC §12). */
#define KIGEN_NO_TIME INT64_MIN

/*
 * A certificate's DER encoding, kept only where revocation checking (SPEC §13) needs it: a CA
 * certificate's (an issuer whose key verifies CRLs and OCSP answers) and that of a certificate
 * that names a CRL distribution point or an OCSP responder. Everything else keeps facts only.
 */
struct kigen_der {
    size_t len;
    uint8_t bytes[];
};

struct kigen_cert {
    uint8_t sha256[KIGEN_SHA256_LEN]; /* of the DER encoding */
    int64_t not_before;               /* Unix seconds, UTC; KIGEN_NO_TIME when unknown */
    int64_t not_after;
    char *subject; /* RFC 2253; the five strings share one allocation owned by subject */
    char *issuer;
    char *serial; /* lowercase hex, no leading zeros, "0" for zero */
    char *entry;  /* "0", "1", ... or a JKS alias ("alias", "alias#1") */
    char *email;  /* its own address (SAN rfc822Name, else emailAddress), or "" (SPEC §12) */
    struct kigen_der *der; /* malloc'd, or NULL (see struct kigen_der) */
};

/* A CRL found in a file (SPEC §13 CRL files): its facts, no OpenSSL object. */
struct kigen_crl {
    char *issuer; /* RFC 2253, malloc'd */
    int64_t this_update;
    int64_t next_update; /* KIGEN_NO_TIME when the CRL has none */
};

struct kigen_crl_list {
    struct kigen_crl *v;
    size_t n;
};

/* A growing array of certificates, owned by whoever holds it. */
struct kigen_certs {
    struct kigen_cert *v;
    size_t n;
    size_t cap;
    struct kigen_crl_list *crls; /* the CRLs of a file, or NULL when it has none */
};

/*
 * What a reader needs to decode on the calling thread: a library context that no other
 * thread uses at the same time (OpenSSL 3.0 threads sharing one context contend on its
 * locks) and the digest fetched from it once.
 */
struct kigen_read_ctx {
    OSSL_LIB_CTX *libctx;
    EVP_MD *sha256;
    OSSL_PROVIDER *provider_default;
    OSSL_PROVIDER *provider_legacy; /* RC2 and DES for old PKCS#12 files; may be NULL */
    BIO *scratch;                   /* a memory BIO reused for names: BIO_new takes a global lock */
};

/*
 * Creates a context with the default and (if available) legacy providers. Returns 0 or
 * -ENOMEM; *ret_ctx is written only on success. Free with kigen_read_ctx_free().
 */
int kigen_read_ctx_new(struct kigen_read_ctx **ret_ctx);
void kigen_read_ctx_free(struct kigen_read_ctx *ctx);

/*
 * Appends the facts of x509 to certs with the given entry name. x509 stays owned by the
 * caller. Returns 0, -ENOMEM, or -KIGEN_E_MALFORMED when a field cannot be decoded.
 */
int kigen_certs_add_x509(struct kigen_certs *certs, const struct kigen_read_ctx *ctx, X509 *x509,
                         const char *entry);

/*
 * Decodes one DER certificate (exactly len bytes) with ctx's library context and appends
 * it. Returns 0, -ENOMEM or -KIGEN_E_MALFORMED.
 */
int kigen_certs_add_der(struct kigen_certs *certs, const struct kigen_read_ctx *ctx,
                        const uint8_t *der, size_t len, const char *entry);

/* Appends a deep copy of src named entry. Returns 0 or -ENOMEM (certs unchanged). */
int kigen_certs_add_copy(struct kigen_certs *certs, const struct kigen_cert *src,
                         const char *entry);

/*
 * Decodes one DER CRL (exactly len bytes) and appends its facts to certs->crls. Returns 0,
 * -ENOMEM or -KIGEN_E_MALFORMED.
 */
int kigen_certs_add_crl_der(struct kigen_certs *certs, const struct kigen_read_ctx *ctx,
                            const uint8_t *der, size_t len);

/* Appends c, taking over its strings. Returns 0 or -ENOMEM (then c stays the caller's). */
int kigen_certs_push(struct kigen_certs *certs, const struct kigen_cert *c);

/* Appends a deep copy of each certificate of src to certs. Returns 0 or -ENOMEM (certs unchanged).
 */
int kigen_certs_append(struct kigen_certs *certs, const struct kigen_certs *src);

/* Gives back the unused capacity: an inventory of 100,000 files keeps exactly what it holds. */
void kigen_certs_shrink(struct kigen_certs *certs);

/* Releases every certificate; the array stays usable and empty. certs may be NULL. */
void kigen_certs_clear(struct kigen_certs *certs);

/*
 * Sets the five strings of c (copied into one allocation owned by c->subject; any previous
 * ones are not freed). Returns 0 or -ENOMEM (c unchanged).
 */
int kigen_cert_set_strings(struct kigen_cert *c, const char *subject, const char *issuer,
                           const char *serial, const char *entry, const char *email);

/* Releases the strings (and the DER) of one certificate. */
void kigen_cert_done(struct kigen_cert *cert);

/* Lowercase hex of len bytes into out (2 * len + 1 bytes, NUL-terminated). */
void kigen_bytes_to_hex(const uint8_t *bytes, size_t len, char *out);

/* Lowercase hex of the fingerprint into out (65 bytes). */
void kigen_cert_sha256_hex(const struct kigen_cert *cert, char out[65]);

/*
 * Unix seconds (UTC) of t into *ret_unix. Returns 0, or -KIGEN_E_MALFORMED when t is NULL or
 * cannot be decoded (*ret_unix unchanged).
 */
int kigen_asn1_time_to_unix(const ASN1_TIME *t, int64_t *ret_unix);

/*
 * The value of the first CN attribute (or 2.5.4.3) of a name as kigen writes it (RFC 2253,
 * "CN=a\,b+UID=x,O=Org"): RDNs split at unescaped ',', the attributes of a multi-valued RDN
 * at unescaped '+', the escapes of single characters ("\,", "\+", "\\", ...) undone.
 * \XX hex pairs stay as written: kigen keeps them only for bytes that are not UTF-8, and a
 * Prometheus label value must be. Written NUL-terminated into out, which holds at least
 * strlen(dn) + 1 bytes (the value is never longer); "" when the name has no CN. Returns the
 * length written.
 */
size_t kigen_dn_first_cn(const char *dn, char *out);

#endif
