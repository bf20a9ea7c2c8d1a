/* The register's records in the inventory: declared, matched, bad rows, a blinking share. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "register_records.h"
#include "report.h"
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

struct fx {
    char dir[64];
    char path[128];
    struct kigen_config *config;
    struct kigen_inventory *inv;
    struct kigen_tz *tz;
};

static const char config_text[] = "timezone: Asia/Tokyo\n"
                                  "rules:\n"
                                  "  - match: { issuer: \"*NACCS Client CA*\" }\n"
                                  "    validity: 5y1m\n"
                                  "  - match: { subject: \"CN=Yearly*\" }\n"
                                  "    validity: 1y\n"
                                  "holders: { register: /nonexistent }\n"
                                  "keystores: [ { name: naccs, path: /srv/naccs } ]\n";

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    char err[256];

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kigen-regrec-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/holders.csv", fx->dir);
    assert_int_equal(kigen_config_parse("t.yaml", config_text, strlen(config_text), &fx->config,
                                        err, sizeof(err)),
                     0);
    assert_int_equal(kigen_inventory_new(&fx->inv), 0);
    assert_int_equal(kigen_tz_load("Asia/Tokyo", &fx->tz), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    unlink(fx->path);
    rmdir(fx->dir);
    kigen_inventory_free(fx->inv);
    kigen_config_free(fx->config);
    kigen_tz_free(fx->tz);
    free(fx);
    return 0;
}

static void write_register(const struct fx *fx, const char *text)
{
    FILE *f = fopen(fx->path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Reads the register and applies it, as the daemon does. */
static void read_apply(struct fx *fx, int64_t now, int want_error)
{
    struct kigen_register_read read;

    assert_int_equal(kigen_register_read(fx->path, fx->tz, &read), 0);
    assert_int_equal(read.error, want_error);
    assert_int_equal(
        kigen_register_records_apply(fx->inv, fx->config, fx->tz, fx->path, &read, now), 0);
    assert_null(read.reg); /* taken, or never there */
    kigen_register_read_done(&read);
}

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static const struct kigen_file *part(const struct fx *fx, size_t line)
{
    return kigen_inventory_find_part(fx->inv, KIGEN_REGISTER_KEYSTORE, fx->path, line);
}

static void test_declared_rows_and_bad_rows_are_records(void **state)
{
    struct fx *fx = *state;
    const struct kigen_file *f;
    char when[KIGEN_RFC3339_LEN];

    write_register(fx, "holder,email,terminal,issuer,issued,not_after\n"
                       "田中 太郎,tanaka@example.co.jp,T1,CN=NACCS Client CA,2021-01-31,\n"
                       "Bad date,,,,31/01/2021,\n"
                       "佐藤,,T2,,,2027-03-01T00:00:00Z\n"
                       "No validity,,,CN=Other CA,2021-01-01,\n"
                       "Yearly one,,,CN=Other CA,2026-02-28,\n");
    read_apply(fx, at("2026-12-07T00:00:00Z"), 0);
    f = part(fx, 0);
    assert_non_null(f);
    assert_int_equal(f->format, KIGEN_FORMAT_DECLARED);
    assert_int_equal(f->error, 0);
    assert_int_equal(f->certs.n, 3);
    /* 2021-01-31 + 5y1m: February 2026 has no 31st, its last day instead (00:00 JST). */
    kigen_time_format_utc(f->certs.v[0].not_after, when);
    assert_string_equal(when, "2026-02-27T15:00:00Z");
    assert_string_equal(f->certs.v[0].entry, "2");
    assert_string_equal(f->certs.v[0].subject, "CN=田中 太郎");
    assert_string_equal(f->certs.v[1].entry, "4");
    assert_int_equal(f->certs.v[1].not_before, KIGEN_NO_TIME);
    /* One malformed record per bad row, the message FILE:LINE: why. */
    assert_non_null(part(fx, 3));
    assert_int_equal(part(fx, 3)->error, KIGEN_E_MALFORMED);
    assert_true(strncmp(part(fx, 3)->message, fx->path, strlen(fx->path)) == 0);
    assert_non_null(strstr(part(fx, 3)->message, ":3: "));
    /* issued without a validity from any rule: a bad row too; a rule by subject gives one. */
    assert_int_equal(part(fx, 5)->error, KIGEN_E_MALFORMED);
    assert_non_null(strstr(part(fx, 5)->message, ":5: 'issued' without 'not_after'"));
    kigen_time_format_utc(f->certs.v[2].not_after, when);
    assert_string_equal(when, "2027-02-27T15:00:00Z");
    assert_int_equal(fx->inv->n_errors, 2);
    assert_int_equal(fx->inv->n_certs, 3);
}

static void test_a_readable_file_that_matches_wins(void **state)
{
    struct fx *fx = *state;
    struct kigen_file *file = kigen_file_new("naccs", "/srv/naccs/kato.p12");
    struct kigen_cert c = { .not_before = 0, .not_after = at("2030-01-01T00:00:00Z") };

    write_register(fx, "holder,subject,not_after\n"
                       "Kato,\"CN=kato,*\",2027-01-01\n"
                       "Ito,,2027-01-01\n");
    read_apply(fx, at("2026-12-07T00:00:00Z"), 0);
    assert_int_equal(part(fx, 0)->certs.n, 2);
    /* The file appears: the declared row goes when the rows are applied again. */
    assert_non_null(file);
    assert_int_equal(kigen_cert_set_strings(&c, "CN=kato,O=Example", "CN=CA", "1", "0", ""), 0);
    assert_int_equal(kigen_certs_push(&file->certs, &c), 0);
    assert_int_equal(kigen_inventory_put(fx->inv, file), 0);
    assert_int_equal(kigen_register_records_apply(fx->inv, fx->config, fx->tz, fx->path, NULL,
                                                  at("2026-12-07T00:00:01Z")),
                     0);
    assert_int_equal(part(fx, 0)->certs.n, 1);
    assert_string_equal(part(fx, 0)->certs.v[0].subject, "CN=Ito");
    /* And the view names the file's holder from the row. */
    {
        struct kigen_view v;
        bool seen = false;

        assert_int_equal(
            kigen_view_build(fx->config, fx->inv, at("2026-12-07T00:00:00Z"), NULL, &v), 0);
        for (size_t i = 0; i < v.n_records; i++) {
            if (strcmp(v.records[i].file->keystore, "naccs") == 0) {
                assert_string_equal(v.records[i].holder, "Kato");
                seen = true;
            } else {
                assert_string_equal(v.records[i].holder, "Ito");
            }
        }
        assert_true(seen);
        kigen_view_done(&v);
    }
}

static void test_a_register_that_goes_keeps_its_rows_stale(void **state)
{
    struct fx *fx = *state;
    int64_t t0 = at("2026-12-07T00:00:00Z");

    write_register(fx, "holder,not_after\nIto,2027-01-01\nBad,someday\n");
    read_apply(fx, t0, 0);
    assert_int_equal(fx->inv->n_errors, 1);
    unlink(fx->path);
    read_apply(fx, t0 + 60, KIGEN_E_KEYSTORE_UNAVAILABLE);
    assert_int_equal(part(fx, 0)->error, KIGEN_E_KEYSTORE_UNAVAILABLE);
    assert_true(part(fx, 0)->is_stale);
    assert_int_equal(part(fx, 0)->last_seen, t0);
    assert_int_equal(part(fx, 0)->certs.n, 1);
    /* A scan in between keeps the error and the staleness. */
    assert_int_equal(
        kigen_register_records_apply(fx->inv, fx->config, fx->tz, fx->path, NULL, t0 + 90), 0);
    assert_int_equal(part(fx, 0)->error, KIGEN_E_KEYSTORE_UNAVAILABLE);
    assert_true(part(fx, 0)->is_stale);
    assert_int_equal(fx->inv->n_errors, 2); /* the file and the bad row it had */
    /* Back: live again, the error gone. */
    write_register(fx, "holder,not_after\nIto,2027-01-01\n");
    read_apply(fx, t0 + 120, 0);
    assert_int_equal(part(fx, 0)->error, 0);
    assert_false(part(fx, 0)->is_stale);
    assert_int_equal(part(fx, 0)->last_seen, t0 + 120);
    assert_int_equal(fx->inv->n_errors, 0);
    /* Off: every register record goes. */
    assert_int_equal(kigen_register_records_apply(fx->inv, fx->config, fx->tz, NULL, NULL, 0), 0);
    assert_int_equal(fx->inv->n_files, 0);
    assert_null(fx->inv->reg);
}

static void test_a_file_without_header_is_one_error(void **state)
{
    struct fx *fx = *state;

    write_register(fx, "");
    read_apply(fx, 1, 0);
    assert_int_equal(part(fx, 0)->error, KIGEN_E_MALFORMED);
    assert_int_equal(part(fx, 0)->certs.n, 0);
    assert_int_equal(fx->inv->n_files, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_declared_rows_and_bad_rows_are_records, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_readable_file_that_matches_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_register_that_goes_keeps_its_rows_stale, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_file_without_header_is_one_error, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
