/*
 * The practical limit kigen is measured against: read and parse the same files with OpenSSL
 * on two threads, each in its own OSSL_LIB_CTX, doing the least kigen must do per file
 * (decode each certificate, hash its DER, read its notAfter; PKCS#12: verify the MAC and
 * decrypt the certificate bags only). No walking, no policy, no report.
 *
 *   refparse PASSWORD FILE...
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

struct worker {
    pthread_t thread;
    char **files;
    int n;
    int step;
    const char *password;
    long certs;
};

static void use_cert(X509 *x, EVP_MD *sha256, long *count)
{
    unsigned char *der = NULL, md[32];
    int n = i2d_X509(x, &der);
    struct tm tm;

    if (n > 0 && EVP_Digest(der, (size_t)n, md, NULL, sha256, NULL) &&
        ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        (*count)++;
    OPENSSL_free(der);
}

static void parse_p12(OSSL_LIB_CTX *libctx, const unsigned char *buf, long len, const char *pass,
                      EVP_MD *sha256, long *count)
{
    PKCS12 *p12 = d2i_PKCS12(NULL, &buf, len);
    STACK_OF(PKCS7) * safes;

    if (!p12 || !PKCS12_verify_mac(p12, pass, -1) || !(safes = PKCS12_unpack_authsafes(p12))) {
        PKCS12_free(p12);
        return;
    }
    for (int i = 0; i < sk_PKCS7_num(safes); i++) {
        PKCS7 *p7 = sk_PKCS7_value(safes, i);
        STACK_OF(PKCS12_SAFEBAG) *bags = NULL;

        if (OBJ_obj2nid(p7->type) == NID_pkcs7_data)
            bags = PKCS12_unpack_p7data(p7);
        else if (OBJ_obj2nid(p7->type) == NID_pkcs7_encrypted)
            bags = PKCS12_item_decrypt_d2i_ex(p7->d.encrypted->enc_data->algorithm,
                                              ASN1_ITEM_rptr(PKCS12_SAFEBAGS), pass, -1,
                                              p7->d.encrypted->enc_data->enc_data, 1, libctx, NULL);
        for (int j = 0; bags && j < sk_PKCS12_SAFEBAG_num(bags); j++) {
            X509 *x = PKCS12_SAFEBAG_get1_cert(sk_PKCS12_SAFEBAG_value(bags, j));

            if (x)
                use_cert(x, sha256, count);
            X509_free(x);
        }
        sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    PKCS12_free(p12);
}

static void *run(void *arg)
{
    struct worker *w = arg;
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *prov = OSSL_PROVIDER_load(libctx, "default");
    EVP_MD *sha256 = EVP_MD_fetch(libctx, "SHA256", NULL);
    enum {
        MAX = 1 << 20
    };
    unsigned char *mine = malloc(MAX);

    for (int i = 0; i < w->n; i += w->step) {
        FILE *f = fopen(w->files[i], "rb");
        long len;

        if (!f)
            continue;
        len = (long)fread(mine, 1, MAX, f);
        fclose(f);
        if (len > 0 && mine[0] == 0x30 && strstr(w->files[i], ".p12")) {
            parse_p12(libctx, mine, len, w->password, sha256, &w->certs);
        } else if (len > 0 && mine[0] == 0x30) {
            const unsigned char *p = mine;
            X509 *x = X509_new_ex(libctx, NULL);

            if (d2i_X509(&x, &p, len)) {
                use_cert(x, sha256, &w->certs);
                X509_free(x);
            }
        } else {
            BIO *bio = BIO_new_mem_buf(mine, (int)len);
            X509 *x;

            while ((x = X509_new_ex(libctx, NULL)) && PEM_read_bio_X509(bio, &x, NULL, NULL)) {
                use_cert(x, sha256, &w->certs);
                X509_free(x);
            }
            X509_free(x);
            BIO_free(bio);
        }
    }
    free(mine);
    EVP_MD_free(sha256);
    OSSL_PROVIDER_unload(prov);
    OSSL_LIB_CTX_free(libctx);
    return NULL;
}

int main(int argc, char **argv)
{
    struct worker w[2];

    if (argc < 2) {
        fprintf(stderr, "usage: refparse PASSWORD FILE...\n");
        return 2;
    }
    for (int i = 0; i < 2; i++) {
        w[i] = (struct worker){
            .files = argv + 2 + i, .n = argc - 2 - i, .step = 2, .password = argv[1]
        };
        pthread_create(&w[i].thread, NULL, run, &w[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(w[i].thread, NULL);
    printf("%ld certificates\n", w[0].certs + w[1].certs);
    return 0;
}
