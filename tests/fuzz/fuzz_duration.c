/*
 * Durations ("28d") and sizes ("16MiB") of SPEC §3: kigen_duration_parse() and
 * kigen_size_parse() on the input as a C string, each compared with a plain reference that
 * reads the grammar of duration.h with 128-bit arithmetic.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "fuzz.h"

/* The digits at s: their count, the value in *ret (saturated past UINT64_MAX). */
static size_t digits(const char *s, unsigned __int128 *ret)
{
    unsigned __int128 v = 0;
    size_t i;

    for (i = 0; s[i] >= '0' && s[i] <= '9'; i++)
        if (v <= UINT64_MAX)
            v = v * 10 + (unsigned)(s[i] - '0');
    *ret = v;
    return i;
}

static int ref_duration(const char *s, int64_t *ret)
{
    static const char units[] = "smhdw";
    static const int64_t secs[] = { 1, 60, 3600, 86400, 7 * 86400 };
    unsigned __int128 v;
    size_t n = digits(s, &v);
    const char *u;

    if (n == 0 || s[n] == '\0' || s[n + 1] != '\0' || !(u = strchr(units, s[n])))
        return -EINVAL;
    v *= (unsigned)secs[u - units];
    if (v > INT64_MAX)
        return -ERANGE;
    *ret = (int64_t)v;
    return 0;
}

static int ref_size(const char *s, uint64_t *ret)
{
    static const char *const units[] = { "", "B", "KiB", "MiB", "GiB" };
    static const unsigned shift[] = { 0, 0, 10, 20, 30 };
    unsigned __int128 v;
    size_t n = digits(s, &v);

    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s + n, units[i]) != 0)
            continue;
        v <<= shift[i];
        if (v > UINT64_MAX)
            return -ERANGE;
        *ret = (uint64_t)v;
        return 0;
    }
    return -EINVAL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size);
    int64_t secs = -1, want_secs = -1;
    uint64_t bytes = 0, want_bytes = 0;
    int r, want;

    r = kigen_duration_parse(s, &secs);
    want = ref_duration(s, &want_secs);
    FUZZ_CHECK(r == want);
    if (r == 0)
        FUZZ_CHECK(secs == want_secs && secs >= 0);

    r = kigen_size_parse(s, &bytes);
    want = ref_size(s, &want_bytes);
    FUZZ_CHECK(r == want);
    if (r == 0)
        FUZZ_CHECK(bytes == want_bytes);
    free(s);
    return 0;
}
