/*
 * Durations and sizes of SPEC §3. Both are checked for syntax first and for range second,
 * so that "99999999999999999999x" is a syntax error rather than an overflow.
 */
#include "duration.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Plain ASCII: isdigit() depends on the locale. */
static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/*
 * Reads the run of digits at s into *ret_value and the length of the run into *ret_len.
 * Returns -EINVAL when there is no digit, -ERANGE when the value does not fit in max.
 */
static int parse_digits(const char *s, uint64_t max, uint64_t *ret_value, size_t *ret_len)
{
    uint64_t v = 0;
    size_t i;
    bool overflow = false;

    for (i = 0; is_digit(s[i]); i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (v > (max - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    if (i == 0)
        return -EINVAL;
    *ret_len = i;
    *ret_value = v;
    return overflow ? -ERANGE : 0;
}

int kigen_duration_parse(const char *s, int64_t *ret_seconds)
{
    uint64_t v = 0, unit;
    size_t len = 0;
    int r;

    if (!s)
        return -EINVAL;
    r = parse_digits(s, INT64_MAX, &v, &len);
    if (r == -EINVAL)
        return r;
    switch (s[len]) {
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    case 'w':
        unit = 7 * 86400;
        break;
    default:
        return -EINVAL;
    }
    if (s[len + 1] != '\0')
        return -EINVAL;
    if (r < 0)
        return r;
    if (v > (uint64_t)INT64_MAX / unit)
        return -ERANGE;
    *ret_seconds = (int64_t)(v * unit);
    return 0;
}

int kigen_size_parse(const char *s, uint64_t *ret_bytes)
{
    static const struct {
        const char *name;
        uint64_t bytes;
    } units[] = {
        { "", 1 },
        { "B", 1 },
        { "KiB", UINT64_C(1) << 10 },
        { "MiB", UINT64_C(1) << 20 },
        { "GiB", UINT64_C(1) << 30 },
    };
    uint64_t v = 0;
    size_t len = 0, i;
    int r;

    if (!s)
        return -EINVAL;
    r = parse_digits(s, UINT64_MAX, &v, &len);
    if (r == -EINVAL)
        return r;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s + len, units[i].name) != 0)
            continue;
        if (r < 0)
            return r;
        if (v > UINT64_MAX / units[i].bytes)
            return -ERANGE;
        *ret_bytes = v * units[i].bytes;
        return 0;
    }
    return -EINVAL;
}
