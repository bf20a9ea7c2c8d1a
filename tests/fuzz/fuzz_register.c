/*
 * The holders' register (SPEC §12): kigen_register_parse() on any bytes, UTF-8 or CP932 or
 * neither. Contract: it answers (0, or -ENOMEM), every row has a holder and names a
 * certificate, rows and errors come in line order, and every error says why.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "register.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kigen_register *reg = NULL;
    size_t last = 0;
    int r = kigen_register_parse(data, size, NULL, &reg);

    FUZZ_CHECK(r == 0 || r == -ENOMEM);
    if (r < 0)
        return 0;
    for (size_t i = 0; i < reg->n_rows; i++) {
        const struct kigen_register_row *row = &reg->rows[i];

        FUZZ_CHECK(row->holder && row->holder[0]);
        FUZZ_CHECK(row->line > last);
        FUZZ_CHECK(row->subject || row->path || row->issued != KIGEN_REGISTER_NO_DATE ||
                   row->not_after != KIGEN_REGISTER_NO_DATE);
        FUZZ_CHECK(!row->language || strcmp(row->language, "en") == 0 ||
                   strcmp(row->language, "ja") == 0);
        last = row->line;
    }
    for (size_t i = 0; i < reg->n_errors; i++)
        FUZZ_CHECK(reg->errors[i].message && reg->errors[i].message[0]);
    kigen_register_free(reg);
    return 0;
}
