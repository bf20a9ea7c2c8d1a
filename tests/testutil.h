/* Helpers shared by the cmocka programs: fixture files made by tests/gen/, alert comparison. */
#ifndef KIGEN_TESTUTIL_H
#define KIGEN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alert.h"

/* The fixture directory ($KIGEN_FIXTURES), joined with name into a static buffer. */
static inline const char *fixture_path(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("KIGEN_FIXTURES");

    assert_non_null(dir);
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return buf;
}

/* Reads a whole fixture into a malloc'd buffer; fails the test if it is missing. */
static inline uint8_t *fixture_load(const char *name, size_t *ret_len)
{
    const char *path = fixture_path(name);
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f)
        fail_msg("missing fixture '%s'", path);
    for (;;) {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    fclose(f);
    *ret_len = len;
    return buf;
}

/* Reads a text fixture (e.g. an expected value written by a generator), newline stripped. */
static inline char *fixture_text(const char *name)
{
    size_t len;
    uint8_t *buf = fixture_load(name, &len);
    char *s = malloc(len + 1);

    assert_non_null(s);
    memcpy(s, buf, len);
    s[len] = '\0';
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
    free(buf);
    return s;
}

/* The alert's event, priority and fields by name, but KIGEN_ALERT_ID (random for each). */
static inline void assert_same_alert_fields(const struct kigen_alert *a,
                                            const struct kigen_alert *b)
{
    assert_int_equal(a->event, b->event);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->n_fields, b->n_fields);
    for (size_t i = 0; i < a->n_fields; i++) {
        assert_string_equal(a->fields[i].name, b->fields[i].name);
        if (strcmp(a->fields[i].name, "KIGEN_ALERT_ID") != 0)
            assert_string_equal(a->fields[i].value, b->fields[i].value);
    }
}

#endif
