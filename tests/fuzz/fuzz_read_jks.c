/*
 * Java JKS and JCEKS: kigen_read_jks() directly, with no password (the integrity digest is
 * then not checked) and with the fixtures' store password among others (it is). The
 * certificates found must not depend on the password: only the verdict on the digest does.
 */
#include <errno.h>
#include <string.h>

#include <openssl/err.h>

#include "err.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_read_ctx();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kigen_certs plain = { 0 }, keyed = { 0 };
    enum kigen_format format = KIGEN_FORMAT_UNKNOWN;
    char errbuf[256] = "";
    int r, rk;

    r = kigen_read_jks(fuzz_read_ctx(), data, size, NULL, &plain, &format, errbuf, sizeof(errbuf));
    fuzz_check_read(r, &plain, 0, errbuf, true);
    FUZZ_CHECK(r != -KIGEN_E_WRONG_PASSWORD);
    if (size >= 4 && r != -KIGEN_E_MALFORMED)
        FUZZ_CHECK(format == KIGEN_FORMAT_JKS || format == KIGEN_FORMAT_JCEKS);

    errbuf[0] = '\0';
    rk = kigen_read_jks(fuzz_read_ctx(), data, size, &fuzz_passwords, &keyed, NULL, errbuf,
                        sizeof(errbuf));
    fuzz_check_read(rk, &keyed, 0, errbuf, true);
    FUZZ_CHECK(keyed.n == plain.n);
    for (size_t i = 0; i < plain.n; i++) {
        FUZZ_CHECK(memcmp(plain.v[i].sha256, keyed.v[i].sha256, KIGEN_SHA256_LEN) == 0);
        FUZZ_CHECK(strcmp(plain.v[i].entry, keyed.v[i].entry) == 0);
    }
    /* A password changes the outcome only by checking the digest. */
    if (r >= 0)
        FUZZ_CHECK(rk == r || rk == -KIGEN_E_WRONG_PASSWORD || rk == -ENOMEM ||
                   rk == -KIGEN_E_UNSUPPORTED);
    else
        FUZZ_CHECK(rk == r || r == -ENOMEM || rk == -ENOMEM);
    fuzz_certs_free(&plain);
    fuzz_certs_free(&keyed);
    ERR_clear_error();
    return 0;
}
