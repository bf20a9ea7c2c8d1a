#include "holders.h"
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

static struct kigen_register *parse(const char *text, const struct kigen_tz *tz)
{
    struct kigen_register *reg = NULL;

    assert_int_equal(kigen_register_parse((const uint8_t *)text, strlen(text), tz, &reg), 0);
    assert_int_equal(reg->n_errors, 0);
    return reg;
}

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static bool naccs_validity(const char *subject, const char *issuer, void *data, int *ret_years,
                           int *ret_months)
{
    if (!strstr(issuer, "NACCS Client CA"))
        return false;
    *ret_years = 5;
    *ret_months = 1;
    return true;
}

/* A readable certificate matches rows naming "CN=file*" (the file wins). */
static bool file_matches(const struct kigen_register_row *row, void *data)
{
    return row->subject && strncmp(row->subject, "CN=file", 7) == 0;
}

static void hex(const uint8_t *sha, char out[65])
{
    struct kigen_cert c;

    memcpy(c.sha256, sha, KIGEN_SHA256_LEN);
    kigen_cert_sha256_hex(&c, out);
}

static void test_first_matching_row_names_the_holder(void **state)
{
    struct kigen_register *reg = parse("holder,subject,path\n"
                                       "Tanaka,\"CN=tanaka,*\",\n"
                                       "Backup,,/srv/naccs/backup/*\n"
                                       "Anyone,CN=*,\n",
                                       NULL);

    assert_string_equal(kigen_holders_find(reg, "CN=tanaka,O=Example", "/srv/a.p12")->holder,
                        "Tanaka");
    assert_string_equal(
        kigen_holders_find(reg, "CN=sato,O=Example", "/srv/naccs/backup/sato.p12")->holder,
        "Backup");
    assert_string_equal(kigen_holders_find(reg, "CN=x", "/y")->holder, "Anyone");
    assert_null(kigen_holders_find(reg, "O=NoCN", "/y"));
    kigen_register_free(reg);
}

/* The index gives kigen_holders_find's answer: exact rows by hash, glob rows in turn. */
static void test_index_finds_what_the_rows_in_order_find(void **state)
{
    struct kigen_register *reg = parse("holder,subject,path\n"
                                       "Glob,\"CN=g*\",\n"
                                       "Exact,CN=exact,\n"
                                       "PathExact,,/srv/p.p12\n"
                                       "Late,CN=gx,\n"
                                       "Both,CN=both,/srv/both.p12\n"
                                       "PathGlob,,/srv/dir/*\n"
                                       "Earlier,CN=exact,\n",
                                       NULL);
    static const char *const subjects[] = { "CN=gx", "CN=exact", "CN=none", "CN=both", "CN=g" };
    static const char *const paths[] = { "/srv/p.p12", "/srv/dir/a.p12", "/x", "/srv/both.p12" };
    struct kigen_holders_index *x = NULL;

    assert_int_equal(kigen_holders_index_new(reg, &x), 0);
    for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
        for (size_t j = 0; j < sizeof(paths) / sizeof(paths[0]); j++) {
            const struct kigen_register_row *want = kigen_holders_find(reg, subjects[i], paths[j]);

            assert_ptr_equal(kigen_holders_index_find(x, subjects[i], paths[j]), want);
        }
    }
    /* The first row wins: the glob on line 2 before the exact row on line 5. */
    assert_string_equal(kigen_holders_index_find(x, "CN=gx", "/x")->holder, "Glob");
    assert_string_equal(kigen_holders_index_find(x, "CN=exact", "/srv/dir/z")->holder, "Exact");
    assert_string_equal(kigen_holders_index_find(x, "CN=none", "/srv/p.p12")->holder, "PathExact");
    assert_null(kigen_holders_index_find(x, "CN=none", "/x"));
    assert_null(kigen_holders_index_find(NULL, "CN=none", "/x"));
    assert_string_equal(kigen_holders_row_at(reg, 6)->holder, "Both");
    assert_null(kigen_holders_row_at(reg, 1));
    assert_null(kigen_holders_row_at(reg, 99));
    kigen_holders_index_free(x);
    kigen_register_free(reg);
}

static void test_declared_certificates_as_spec_12_defines_them(void **state)
{
    struct kigen_tz *tz = NULL;
    struct kigen_register *reg;
    struct kigen_certs certs = { 0 };
    struct kigen_holders_problem *problems;
    size_t n_problems;
    char h[65];

    assert_int_equal(kigen_tz_load("Asia/Tokyo", &tz), 0);
    reg = parse("holder,email,terminal,issuer,issued,not_after,subject\n"
                /* issued 2021-10-01 JST plus 5y1m: 2026-11-01 00:00 JST */
                "田中 太郎,tanaka@example.co.jp,TRM001,\"CN=NACCS Client CA,O=NACCS\","
                "2021-10-01,,\n"
                /* not_after given: issued only shows as not_before */
                "佐藤,,,,,2031-12-20T09:00:00+09:00,CN=sato*\n"
                /* a readable certificate matches: nothing declared */
                "File,,,,,2031-01-01,CN=file-holder\n"
                /* issued, but no rule gives a validity */
                "Nobody,,,CN=Other CA,2021-01-31,,\n"
                /* names a holder only */
                "Holder only,,,,,,CN=h\n",
                tz);
    assert_int_equal(kigen_holders_declare(reg, tz, naccs_validity, file_matches, NULL, &certs,
                                           &problems, &n_problems),
                     0);
    assert_int_equal(certs.n, 2);
    assert_string_equal(certs.v[0].subject, "CN=田中 太郎");
    assert_string_equal(certs.v[0].issuer, "CN=NACCS Client CA,O=NACCS");
    assert_string_equal(certs.v[0].serial, "");
    assert_string_equal(certs.v[0].entry, "2");
    assert_string_equal(certs.v[0].email, "tanaka@example.co.jp");
    assert_int_equal(certs.v[0].not_before, at("2021-09-30T15:00:00Z"));
    assert_int_equal(certs.v[0].not_after, at("2026-10-31T15:00:00Z"));
    /* sha256 of "declared\n田中 太郎\nTRM001\n2026-10-31T15:00:00Z", by Python's hashlib. */
    hex(certs.v[0].sha256, h);
    assert_string_equal(h, "0ba21f3d7ded4d97d391f1f6661fa65be9295d682ea93c626ddc73ebff9b4dcb");
    assert_string_equal(certs.v[1].subject, "CN=佐藤"); /* a glob is no subject */
    assert_string_equal(certs.v[1].entry, "3");
    assert_int_equal(certs.v[1].not_before, INT64_MIN);
    assert_int_equal(certs.v[1].not_after, at("2031-12-20T00:00:00Z"));
    hex(certs.v[1].sha256, h);
    assert_string_equal(h, "501ad0f12c93cbbde6e6a03ccc0b256453b1bad465b4189530e255862f89af04");
    assert_int_equal(n_problems, 1);
    assert_int_equal(problems[0].line, 5);
    assert_non_null(strstr(problems[0].message, "no rule gives a validity"));
    free(problems);
    kigen_certs_clear(&certs);
    free(certs.v);
    kigen_register_free(reg);
    kigen_tz_free(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_matching_row_names_the_holder),
        cmocka_unit_test(test_index_finds_what_the_rows_in_order_find),
        cmocka_unit_test(test_declared_certificates_as_spec_12_defines_them),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
