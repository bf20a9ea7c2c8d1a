/* PEM (RFC 7468): kigen_read_pem() directly, whatever kigen_detect() would say. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_read_ctx();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one_read(kigen_read_pem, data, size);
}
