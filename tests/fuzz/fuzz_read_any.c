/*
 * The scanner's path (scan.c read_one): kigen_detect() on the content, then kigen_read_any()
 * and the reader it picks, once with no password configured and once with some.
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
    static const struct kigen_passwords none = { NULL, 0 };
    const struct kigen_passwords *tries[] = { &none, &fuzz_passwords };
    enum kigen_format detected = kigen_detect(data, size);

    for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct kigen_certs certs = { 0 };
        enum kigen_format format = (enum kigen_format) - 1;
        char errbuf[256] = "";
        int r;

        r = kigen_read_any(fuzz_read_ctx(), data, size, tries[i], &certs, &format, errbuf,
                           sizeof(errbuf));
        fuzz_check_read(r, &certs, 0, errbuf,
                        format == KIGEN_FORMAT_JKS || format == KIGEN_FORMAT_JCEKS);
        /* The format is the detected one, also on error. */
        FUZZ_CHECK(format == detected);
        FUZZ_CHECK(format == KIGEN_FORMAT_UNKNOWN || kigen_format_name(format) != NULL);
        if (format == KIGEN_FORMAT_UNKNOWN)
            FUZZ_CHECK(r == 0 || r == -KIGEN_E_UNSUPPORTED || r == -KIGEN_E_MALFORMED);
        fuzz_certs_free(&certs);
    }
    ERR_clear_error();
    return 0;
}
