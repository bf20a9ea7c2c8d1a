/* PKCS#7 SignedData, DER or PEM: kigen_read_pkcs7() directly. */
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)fuzz_read_ctx();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_one_read(kigen_read_pkcs7, data, size);
}
