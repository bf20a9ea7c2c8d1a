/*
 * OCSP responses (SPEC §13): kigen_revocation_from_ocsp() on the bytes a responder answers,
 * for the world's leaf and CA. It must survive anything and never say revoked unless the
 * answer verifies with the issuer (or a responder it delegated) and names the certificate.
 *
 * Random bytes carry no valid signature, so each input that decodes as a successful response is
 * also signed again with the CA's key (OCSP_basic_sign): the answer then reaches the status,
 * the dates and the reason. The seeds are `openssl ocsp` answers of tests/gen/revocation_ca.sh.
 */
#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "fuzz.h"
#include "revocation.h"

#define NOW 1795521600 /* 2026-11-24T12:00:00Z */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_pki();
    return 0;
}

/*
 * A response signed by the world's CA (DER, OPENSSL_malloc'd) that says of the world's leaf what
 * the first answer of data says (status, reason, dates as the input gives them), or NULL. A new
 * basic response: OpenSSL checks that every answer in one names a certificate of its signer,
 * and the seeds' answers name other certificates.
 */
static unsigned char *resign(const uint8_t *data, size_t size, int *ret_len)
{
    const struct fuzz_pki *pki = fuzz_pki();
    const unsigned char *p = data;
    OCSP_RESPONSE *resp = size < 1 << 20 ? d2i_OCSP_RESPONSE(NULL, &p, (long)size) : NULL;
    OCSP_BASICRESP *bs = resp ? OCSP_response_get1_basic(resp) : NULL, *mine = NULL;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    OCSP_RESPONSE *again = NULL;
    OCSP_CERTID *id = NULL;
    unsigned char *out = NULL;
    int reason = -1, status = -1;

    *ret_len = 0;
    if (bs && OCSP_resp_count(bs) > 0)
        status = OCSP_single_get0_status(OCSP_resp_get0(bs, 0), &reason, &rev, &thisupd, &nextupd);
    if (status >= 0 && thisupd && (mine = OCSP_BASICRESP_new()) &&
        (id = OCSP_cert_to_id(EVP_sha1(), pki->leaf, pki->ca)) &&
        OCSP_basic_add1_status(mine, id, status, reason, rev, thisupd, nextupd) &&
        OCSP_basic_sign(mine, pki->ca, pki->ca_key, EVP_sha256(), NULL, OCSP_NOCERTS) == 1)
        again = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, mine);
    if (again)
        *ret_len = i2d_OCSP_RESPONSE(again, &out);
    OCSP_CERTID_free(id);
    OCSP_RESPONSE_free(again);
    OCSP_BASICRESP_free(mine);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return *ret_len > 0 ? out : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct fuzz_pki *pki = fuzz_pki();
    struct kigen_revocation_status s;
    unsigned char *signed_der;
    bool decided;
    int n;

    decided = kigen_revocation_from_ocsp(data, size, pki->leaf, pki->ca, NOW, &s);
    fuzz_check_revocation(decided, &s, NOW);
    FUZZ_CHECK(!decided); /* the CA's key was made in this process: no input has its signature */
    signed_der = resign(data, size, &n);
    if (signed_der) {
        decided = kigen_revocation_from_ocsp(signed_der, (size_t)n, pki->leaf, pki->ca, NOW, &s);
        fuzz_check_revocation(decided, &s, NOW);
        OPENSSL_free(signed_der);
    }
    ERR_clear_error();
    return 0;
}
