/* PEM (RFC 7468): kigen_read_pem() directly, whatever kigen_detect() would say. */
#include <openssl/err.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_read_ctx();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kigen_certs certs = { 0 };
    char errbuf[256] = "";
    int r;

    r = kigen_read_pem(fuzz_read_ctx(), data, size, &certs, errbuf, sizeof(errbuf));
    fuzz_check_read(r, &certs, 0, errbuf, false);
    fuzz_certs_free(&certs);
    ERR_clear_error();
    return 0;
}
