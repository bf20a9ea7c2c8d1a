/*
 * The maintenance schedule (SPEC §3 `maintenance`, §8): the `every`, `at`, `duration` and
 * `timezone` of one window as text, read by kigen_config_parse() as the daemon reads them,
 * then searched by kigen_maint_set_active() and kigen_maint_set_next() around an instant.
 *
 * The input is up to five lines: every, at, duration, timezone, instant (decimal Unix
 * seconds). A missing line leaves the key out (the instant then defaults to
 * 2026-11-24T12:00:00Z). The values are written into the YAML as double-quoted strings, every
 * byte outside printable ASCII as the escape \xNN (the character U+00NN), so that any line
 * reaches the schedule parser as one string; the rest of the YAML grammar is fuzz_config's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "maint.h"

#define TARGET      "naccs-cert"
#define DEFAULT_NOW INT64_C(1795521600) /* 2026-11-24T12:00:00Z */
#define DAY         86400

struct text {
    char *s;
    size_t len;
    size_t cap;
};

static void add(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = 2 * (t->len + n + 1);
        t->s = realloc(t->s, t->cap);
        FUZZ_CHECK(t->s != NULL);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void add_str(struct text *t, const char *s)
{
    add(t, s, strlen(s));
}

/* A YAML double-quoted scalar (YAML 1.1 §5.6 escapes) holding exactly the bytes of s. */
static void add_quoted(struct text *t, const uint8_t *s, size_t n)
{
    char esc[8];

    add_str(t, "\"");
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') {
            add(t, (const char *)&s[i], 1);
        } else {
            snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
            add_str(t, esc);
        }
    }
    add_str(t, "\"");
}

/* The next line of data at *pos, or false at the end. */
static bool next_line(const uint8_t *data, size_t size, size_t *pos, const uint8_t **ret,
                      size_t *ret_len)
{
    const uint8_t *nl;

    if (*pos >= size)
        return false;
    *ret = data + *pos;
    nl = memchr(*ret, '\n', size - *pos);
    *ret_len = nl ? (size_t)(nl - *ret) : size - *pos;
    *pos += *ret_len + 1;
    return true;
}

static void check_at(const struct kigen_maint_set *set, const struct kigen_maintenance *w,
                     int64_t t)
{
    int64_t end = 0, start = 0, next_end = 0, end2 = 0;
    int active, next;

    active = kigen_maint_set_active(set, TARGET, t, &end);
    FUZZ_CHECK(active == 0 || active == 1 || active == -ERANGE || active == -EINVAL ||
               active == -ENOMEM);
    if (active == 1)
        FUZZ_CHECK(end > t && end - t <= w->duration);
    next = kigen_maint_set_next(set, TARGET, t, &start, &next_end);
    /* A window of a real zone starts at least once a month (maint.h); -EINVAL near year 9999. */
    FUZZ_CHECK(next == 0 || next == -ERANGE || next == -EINVAL || next == -ENOMEM);
    if (next < 0)
        return;
    FUZZ_CHECK(start > t);
    FUZZ_CHECK(next_end - start == w->duration);
    FUZZ_CHECK(start - t <= 40 * DAY);
    /* The window that starts next covers its own start. */
    active = kigen_maint_set_active(set, TARGET, start, &end2);
    FUZZ_CHECK(active == 1 || active == -ERANGE || active == -EINVAL);
    if (active == 1)
        FUZZ_CHECK(end2 >= next_end);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = { "every", "at", "duration", "timezone" };
    struct text yaml = { 0 };
    struct kigen_config *config = NULL;
    struct kigen_maint_set *set = NULL;
    char errbuf[512] = "", *num = NULL, *endp;
    const uint8_t *line;
    size_t pos = 0, len, i;
    int64_t t = DEFAULT_NOW;
    int r;

    add_str(&yaml, "maintenance:\n  - name: fuzz\n    targets: [" TARGET "]\n");
    for (i = 0; i < 4 && next_line(data, size, &pos, &line, &len); i++) {
        add_str(&yaml, "    ");
        add_str(&yaml, keys[i]);
        add_str(&yaml, ": ");
        add_quoted(&yaml, line, len);
        add_str(&yaml, "\n");
    }
    if (next_line(data, size, &pos, &line, &len)) {
        num = fuzz_strndup(line, len);
        errno = 0;
        t = strtoimax(num, &endp, 10);
        if (errno || endp == num)
            t = DEFAULT_NOW;
    }

    r = kigen_config_parse("fuzz.yaml", yaml.s, yaml.len, &config, errbuf, sizeof(errbuf));
    if (r < 0) {
        FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
        FUZZ_CHECK(fuzz_is_one_line(errbuf));
        goto out;
    }
    FUZZ_CHECK(config->n_maintenance == 1);
    r = kigen_maint_set_new(config, &set, errbuf, sizeof(errbuf));
    if (r < 0 && r != -ENOMEM) {
        fprintf(stderr, "accepted window gives no maintenance set: %s (%s)\n", errbuf,
                strerror(-r));
        FUZZ_CHECK(!"kigen_maint_set_new accepts what kigen_config_parse accepted");
    }
    if (r < 0)
        goto out;
    check_at(set, &config->maintenance[0], t);
    /* A day earlier, so that a window that covers t is also seen starting. */
    if (t > INT64_MIN + DAY)
        check_at(set, &config->maintenance[0], t - DAY);
out:
    kigen_maint_set_free(set);
    kigen_config_free(config);
    free(num);
    free(yaml.s);
    return 0;
}
