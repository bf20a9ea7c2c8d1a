/*
 * CRLs (SPEC §13): the bytes a CRL distribution point or a keystore's CRL file gives, on the two
 * paths that read them. kigen_certs_add_crl_der() (a CRL file's facts) and
 * kigen_revocation_from_crl() (the answer for a certificate) must survive anything and never
 * say revoked without a CRL the issuer signed.
 *
 * Random bytes are never signed by the world's CA, so each input that decodes as a CRL is also
 * signed again with its key (the issuer name set to the CA's): the answer then goes past the
 * signature to the dates and the revoked entries, as for a real CRL. The seeds are
 * tests/gen/revocation_ca.sh's CRLs, which revoke the world leaf's serial.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "err.h"
#include "fuzz.h"
#include "revocation.h"

#define NOW 1795521600 /* 2026-11-24T12:00:00Z */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_read_ctx();
    (void)fuzz_pki();
    return 0;
}

/* The CRL in data signed again by the world's CA (DER, OPENSSL_malloc'd), or NULL. */
static unsigned char *resign(const uint8_t *data, size_t size, int *ret_len)
{
    const struct fuzz_pki *pki = fuzz_pki();
    const unsigned char *p = data;
    unsigned char *out = NULL;
    X509_CRL *crl = size < 1 << 20 ? d2i_X509_CRL(NULL, &p, (long)size) : NULL;

    *ret_len = 0;
    if (crl && X509_CRL_set_issuer_name(crl, X509_get_subject_name(pki->ca)) == 1 &&
        X509_CRL_sign(crl, pki->ca_key, EVP_sha256()) > 0)
        *ret_len = i2d_X509_CRL(crl, &out);
    X509_CRL_free(crl);
    ERR_clear_error();
    return *ret_len > 0 ? out : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fuzz_pki *pki = fuzz_pki();
    struct kigen_certs certs = { 0 };
    struct kigen_revocation_status s;
    unsigned char *signed_der;
    bool decided;
    int r, n;

    /* A CRL file's facts: 0 and one CRL with an issuer, or an error and none. */
    r = kigen_certs_add_crl_der(&certs, fuzz_read_ctx(), data, size);
    FUZZ_CHECK(r == 0 || r == -KIGEN_E_MALFORMED);
    FUZZ_CHECK(r == 0 ? certs.crls && certs.crls->n == 1 && certs.crls->v[0].issuer : !certs.crls);
    if (r == 0)
        FUZZ_CHECK(fuzz_is_utf8(certs.crls->v[0].issuer, strlen(certs.crls->v[0].issuer)));
    fuzz_certs_free(&certs);

    /* As it came: nobody's signature, so never revoked. */
    decided = kigen_revocation_from_crl(data, size, pki->leaf, pki->ca, NOW, &s);
    fuzz_check_revocation(decided, &s, NOW);
    FUZZ_CHECK(!decided); /* the CA's key was made in this process: no input has its signature */
    signed_der = resign(data, size, &n);
    if (signed_der) {
        decided = kigen_revocation_from_crl(signed_der, (size_t)n, pki->leaf, pki->ca, NOW, &s);
        fuzz_check_revocation(decided, &s, NOW);
        OPENSSL_free(signed_der);
    }
    ERR_clear_error();
    return 0;
}
