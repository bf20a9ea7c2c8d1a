/* A single DER certificate: kigen_read_der() directly. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_read_ctx();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one_read(kigen_read_der, data, size);
}
