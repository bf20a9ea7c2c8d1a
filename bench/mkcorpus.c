/*
 * Makes a benchmark corpus with OpenSSL: N certificates as PEM and DER files (alternating),
 * M PKCS#12 files (AES-256 / PBKDF2, password "bench-pass"), and optionally one PEM bundle of
 * B certificates. All leaves are signed by one CA with one P-256 key, which is what makes
 * 100,000 certificates quick to make; their dates spread over ten years around now.
 *
 *   mkcorpus OUTDIR N_CERTS N_PKCS12 [N_BUNDLE]
 *
 * With KIGEN_CORPUS=naccs the dates are those of a kept NACCS estate instead: each
 * certificate issued at a random time in the last five years and valid 5 years and 1 month,
 * so about 1.5% are in their renewal window and none has expired.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

static EVP_PKEY *make_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static X509 *make_cert(EVP_PKEY *key, EVP_PKEY *ca_key, X509 *ca, long serial, const char *cn,
                       long start_off, long days)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    if (!x || !name)
        goto fail;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), start_off);
    X509_gmtime_adj(X509_getm_notAfter(x), start_off + days * 86400);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Bench Corp", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : name);
    X509_set_pubkey(x, key);
    if (!X509_sign(x, ca_key, EVP_sha256()))
        goto fail;
    X509_NAME_free(name);
    return x;
fail:
    X509_NAME_free(name);
    X509_free(x);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *dir;
    long n_certs, n_p12, n_bundle = 0;
    EVP_PKEY *ca_key, *key;
    X509 *ca;
    char path[4096], cn[64];
    FILE *f, *bundle = NULL;
    unsigned seed = 42;

    if (argc < 4) {
        fprintf(stderr, "usage: mkcorpus OUTDIR N_CERTS N_PKCS12 [N_BUNDLE]\n");
        return 2;
    }
    dir = argv[1];
    n_certs = strtol(argv[2], NULL, 10);
    n_p12 = strtol(argv[3], NULL, 10);
    if (argc > 4)
        n_bundle = strtol(argv[4], NULL, 10);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        perror(dir);
        return 1;
    }
    ca_key = make_key();
    key = make_key();
    ca =
        ca_key && key ? make_cert(ca_key, ca_key, NULL, 1, "Bench CA", -86400L * 3650, 7300) : NULL;
    if (!ca) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    const char *profile = getenv("KIGEN_CORPUS");
    int naccs = profile && strcmp(profile, "naccs") == 0;

    for (long i = 0; i < n_certs + n_p12 + n_bundle; i++) {
        long start = -(long)(rand_r(&seed) % (3650 * 86400L)) + 86400L * 30;
        long days = 30 + rand_r(&seed) % 3650;
        X509 *x;

        if (naccs) {
            start = -(long)(rand_r(&seed) % (1826 * 86400L));
            days = 1826 + 31;
        }

        snprintf(cn, sizeof(cn), "user-%06ld", i);
        x = make_cert(key, ca_key, ca, 1000 + i, cn, start, days);
        if (!x) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        if (i < n_certs) {
            snprintf(path, sizeof(path), "%s/c%06ld.%s", dir, i, i % 2 ? "der" : "pem");
            f = fopen(path, "wb");
            if (!f || !(i % 2 ? i2d_X509_fp(f, x) : PEM_write_X509(f, x))) {
                perror(path);
                return 1;
            }
            fclose(f);
        } else if (i < n_certs + n_p12) {
            PKCS12 *p12 = PKCS12_create("bench-pass", cn, key, x, NULL, 0, 0, 0, 0, 0);

            snprintf(path, sizeof(path), "%s/u%06ld.p12", dir, i);
            f = fopen(path, "wb");
            if (!p12 || !f || !i2d_PKCS12_fp(f, p12)) {
                perror(path);
                return 1;
            }
            fclose(f);
            PKCS12_free(p12);
        } else {
            if (!bundle) {
                snprintf(path, sizeof(path), "%s/bundle.pem", dir);
                bundle = fopen(path, "wb");
                if (!bundle) {
                    perror(path);
                    return 1;
                }
            }
            PEM_write_X509(bundle, x);
        }
        X509_free(x);
    }
    if (bundle)
        fclose(bundle);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return 0;
}
