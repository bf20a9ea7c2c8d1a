/*
 * PKCS#12: kigen_read_pkcs12() directly, with no password (it then tries NULL and ""), with
 * the fixtures' passwords, and with a list holding a NULL entry (read.h allows it). Seeds
 * without a MAC (nomac.p12, nopass.p12) let mutations reach the safes and the bags.
 */
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
    static const char *const with_null[] = { NULL, "secret" };
    static const struct kigen_passwords some_null = { with_null, 2 };
    const struct kigen_passwords *tries[] = { NULL, &fuzz_passwords, &some_null };

    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct kigen_certs certs = { 0 };
        char errbuf[256] = "";
        int r;

        r = kigen_read_pkcs12(fuzz_read_ctx(), data, size, tries[i], &certs, errbuf,
                              sizeof(errbuf));
        fuzz_check_read(r, &certs, 0, errbuf, false);
        /* Without a password given, it can need one but never be wrong. */
        if (!tries[i])
            FUZZ_CHECK(r != -KIGEN_E_WRONG_PASSWORD);
        fuzz_certs_free(&certs);
    }
    ERR_clear_error();
    return 0;
}
