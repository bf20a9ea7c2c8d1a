/*
 * PKCS#12 (RFC 7292): the certificate bags only. Key bags are skipped unread, so a private
 * key is never decrypted. Encrypted safes (§5.1, pkcs7-encryptedData) are decrypted with
 * this thread's library context, which carries the legacy provider for RC2-40 and 3DES.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>

#include "err.h"
#include "read.h"

#define MAX_NESTING 8
#define MAX_TRIES   34 /* configured passwords are few; this bounds the work a file causes */
/*
 * The iteration counts (MAC, PBKDF2, PKCS#12 PBE) and scrypt cost N*r*p a file may ask for:
 * every try of a password pays it, 1,000,000 SHA-256 iterations about 0.1 s. Tools write
 * 2048 (OpenSSL), 10,000 (Java) or at most some 600,000; a file asking 2^31 would hold a
 * worker for hours.
 */
#define MAX_ITERATIONS  UINT64_C(1000000)
#define MAX_SCRYPT_COST (UINT64_C(1) << 20)

struct walk {
    const struct kigen_read_ctx *ctx;
    struct kigen_certs *certs;
    unsigned index;   /* next entry number, in bag order */
    unsigned damaged; /* bags or safes that could not be read */
};

static void walk_bags(struct walk *w, const STACK_OF(PKCS12_SAFEBAG) * bags, int depth)
{
    char entry[16];

    for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
        const PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
        X509 *x509;
        int r;

        switch (PKCS12_SAFEBAG_get_nid(bag)) {
        case NID_certBag:
            if (PKCS12_SAFEBAG_get_bag_nid(bag) != NID_x509Certificate)
                break; /* SDSI certificates: nothing to watch */
            snprintf(entry, sizeof(entry), "%u", w->index++);
            /* Decoded by plain ASN.1 (no algorithm fetch), so the default context is fine. */
            x509 = PKCS12_SAFEBAG_get1_cert(bag);
            if (!x509) {
                w->damaged++;
                break;
            }
            r = kigen_certs_add_x509(w->certs, w->ctx, x509, entry);
            X509_free(x509);
            if (r < 0)
                w->damaged++;
            break;
        case NID_safeContentsBag:
            if (depth >= MAX_NESTING)
                w->damaged++;
            else
                walk_bags(w, PKCS12_SAFEBAG_get0_safes(bag), depth + 1);
            break;
        default:
            break; /* keyBag, pkcs8ShroudedKeyBag, crlBag, secretBag: never opened */
        }
    }
}

/* Whether an INTEGER (absent: the default 1) is a count of at most max. */
static bool is_within(const ASN1_INTEGER *i, uint64_t max)
{
    uint64_t v;

    if (!i)
        return true;
    return ASN1_INTEGER_get_uint64(&v, i) == 1 && v <= max;
}

/*
 * Whether deriving a key with alg costs no more than the limits above. Parameters that do
 * not decode are left to OpenSSL, which refuses them the same way.
 */
static bool is_affordable(const X509_ALGOR *alg)
{
    PBE2PARAM *pbe2 = NULL;
    PBKDF2PARAM *kdf = NULL;
    PBEPARAM *pbe = NULL;
    bool ok = true;

    if (OBJ_obj2nid(alg->algorithm) != NID_pbes2) {
        /* PKCS#5 v1.5 and PKCS#12 PBE (RFC 7292 Appendix C): PBEParameter { salt, iterations } */
        pbe = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBEPARAM), alg->parameter);
        ok = !pbe || is_within(pbe->iter, MAX_ITERATIONS);
        goto out;
    }
    pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    if (!pbe2 || !pbe2->keyfunc)
        goto out;
    switch (OBJ_obj2nid(pbe2->keyfunc->algorithm)) {
    case NID_id_pbkdf2:
        kdf = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBKDF2PARAM), pbe2->keyfunc->parameter);
        ok = !kdf || is_within(kdf->iter, MAX_ITERATIONS);
        break;
#ifndef OPENSSL_NO_SCRYPT
    case NID_id_scrypt: {
        SCRYPT_PARAMS *sp =
            ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), pbe2->keyfunc->parameter);
        uint64_t n, r, p;

        /* RFC 7914 §7: N, r and p; the work is about N * r * p. */
        if (sp)
            ok = ASN1_INTEGER_get_uint64(&n, sp->costParameter) == 1 &&
                 ASN1_INTEGER_get_uint64(&r, sp->blockSize) == 1 &&
                 ASN1_INTEGER_get_uint64(&p, sp->parallelizationParameter) == 1 &&
                 n <= MAX_SCRYPT_COST && r <= MAX_SCRYPT_COST && p <= MAX_SCRYPT_COST &&
                 n * r * p <= MAX_SCRYPT_COST;
        SCRYPT_PARAMS_free(sp);
        break;
    }
#endif
    default:
        break;
    }
out:
    PBEPARAM_free(pbe);
    PBKDF2PARAM_free(kdf);
    PBE2PARAM_free(pbe2);
    return ok;
}

static STACK_OF(PKCS12_SAFEBAG) *
    decrypt_safe(const struct kigen_read_ctx *ctx, PKCS7 *p7, const char *pass)
{
    PKCS7_ENC_CONTENT *enc;

    if (!p7->d.encrypted || !(enc = p7->d.encrypted->enc_data) || !enc->algorithm || !enc->enc_data)
        return NULL;
    return PKCS12_item_decrypt_d2i_ex(enc->algorithm, ASN1_ITEM_rptr(PKCS12_SAFEBAGS), pass,
                                      pass ? -1 : 0, enc->enc_data, 1, ctx->libctx, NULL);
}

static bool is_unsupported_error(unsigned long e)
{
    int reason = ERR_GET_REASON(e);

    return reason == ERR_R_UNSUPPORTED ||
           (ERR_GET_LIB(e) == ERR_LIB_EVP &&
            (reason == EVP_R_UNSUPPORTED_CIPHER || reason == EVP_R_UNSUPPORTED_ALGORITHM ||
             reason == EVP_R_UNKNOWN_CIPHER ||
             reason == EVP_R_UNSUPPORTED_KEY_DERIVATION_FUNCTION));
}

int kigen_read_pkcs12(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                      const struct kigen_passwords *passwords, struct kigen_certs *certs,
                      char *errbuf, size_t errlen)
{
    const char *tries[MAX_TRIES];
    size_t n_tries = 0, given = 0;
    const unsigned char *p = buf;
    PKCS12 *p12 = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    struct walk w = { ctx, certs, 0, 0 };
    size_t before = certs->n;
    long found = -1; /* index into tries of the password that fits, once known */
    bool unsupported = false, locked = false, costly = false;
    int r;

    if (len > LONG_MAX)
        return kigen_errf(errbuf, errlen, KIGEN_E_TOO_LARGE, "file too large for PKCS#12");
    /* The configured passwords in order, then none: NULL and "" (SPEC §4). */
    for (size_t i = 0; passwords && i < passwords->n && n_tries < MAX_TRIES - 2; i++) {
        tries[n_tries++] = passwords->v[i];
        given += passwords->v[i] != NULL;
    }
    tries[n_tries++] = NULL;
    tries[n_tries++] = "";

    p12 = d2i_PKCS12(NULL, &p, (long)len);
    if (!p12) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "not a valid PKCS#12 file");
        goto out;
    }
    if (PKCS12_mac_present(p12)) {
        const ASN1_INTEGER *iter = NULL;

        PKCS12_get0_mac(NULL, NULL, NULL, &iter, p12);
        if (!is_within(iter, MAX_ITERATIONS)) {
            r = kigen_errf(errbuf, errlen, KIGEN_E_UNSUPPORTED,
                           "MAC iteration count above kigen's limit of %llu",
                           (unsigned long long)MAX_ITERATIONS);
            goto out;
        }
        for (size_t i = 0; i < n_tries && found < 0; i++)
            if (PKCS12_verify_mac(p12, tries[i], tries[i] ? -1 : 0))
                found = (long)i;
        if (found < 0) {
            r = given ? kigen_errf(errbuf, errlen, KIGEN_E_WRONG_PASSWORD,
                                   "MAC verification failed with every configured password")
                      : kigen_errf(errbuf, errlen, KIGEN_E_NEEDS_PASSWORD,
                                   "protected by a password and none is configured");
            goto out;
        }
    }
    safes = PKCS12_unpack_authsafes(p12);
    if (!safes) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "damaged authenticated safe");
        goto out;
    }
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);

        switch (OBJ_obj2nid(p7->type)) {
        case NID_pkcs7_data:
            bags = PKCS12_unpack_p7data(p7);
            break;
        case NID_pkcs7_encrypted: {
            const PKCS7_ENC_CONTENT *enc = p7->d.encrypted ? p7->d.encrypted->enc_data : NULL;

            if (enc && enc->algorithm && !is_affordable(enc->algorithm)) {
                unsupported = costly = true; /* each try would cost more than allowed */
                break;
            }
            /* With a MAC the password is known; without one, the first that decrypts. */
            for (size_t t = found < 0 ? 0 : (size_t)found; t < n_tries && !bags; t++) {
                ERR_clear_error();
                bags = decrypt_safe(ctx, p7, tries[t]);
                if (bags)
                    found = (long)t;
                else if (is_unsupported_error(ERR_peek_last_error()))
                    unsupported = true;
                if (found >= 0)
                    break;
            }
            if (!bags && !unsupported && found < 0)
                locked = true;
            break;
        }
        default:
            unsupported = true; /* pkcs7-envelopedData: public-key privacy mode */
            break;
        }
        if (!bags) {
            w.damaged++;
            continue;
        }
        walk_bags(&w, bags, 0);
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
        bags = NULL;
    }
    if (locked && certs->n == before)
        r = given ? kigen_errf(errbuf, errlen, KIGEN_E_WRONG_PASSWORD,
                               "no configured password decrypts the certificates")
                  : kigen_errf(errbuf, errlen, KIGEN_E_NEEDS_PASSWORD,
                               "certificates are encrypted and no password is configured");
    else if (costly)
        r = kigen_errf(errbuf, errlen, KIGEN_E_UNSUPPORTED,
                       "certificates protected with an iteration count above kigen's limit "
                       "of %llu",
                       (unsigned long long)MAX_ITERATIONS);
    else if (unsupported)
        r = kigen_errf(errbuf, errlen, KIGEN_E_UNSUPPORTED,
                       "certificates protected by an algorithm this OpenSSL cannot use");
    else if (w.damaged || locked)
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "%u damaged bag%s or safe%s", w.damaged,
                       w.damaged == 1 ? "" : "s", w.damaged == 1 ? "" : "s");
    else
        r = (int)(certs->n - before);
out:
    ERR_clear_error();
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
    return r;
}
