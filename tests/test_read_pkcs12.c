#include "readtest.h"

static const char *const good[] = { "Tanaka-2026" };
static const char *const wrong[] = { "not-it", "also-wrong" };
static const char *const wrong_then_good[] = { "not-it", "Tanaka-2026" };

static void expect_read(void **state, const char *name, const char *const *pw, size_t n_pw,
                        int want)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256] = "";
    char path[128];
    int r;

    snprintf(path, sizeof(path), "certs/%s", name);
    r = read_fixture(*state, path, pw, n_pw, &certs, &format, err, sizeof(err));
    if (r != want)
        fail_msg("%s: got %d (%s), want %d", name, r, err, want);
    assert_int_equal(format, KIGEN_FORMAT_PKCS12);
    if (want > 0) {
        assert_fingerprints(&certs, path);
        assert_string_equal(certs.v[0].entry, "0");
        assert_string_equal(certs.v[1].entry, "1");
    } else {
        assert_int_equal(certs.n, 0);
        assert_null(strstr(err, "Tanaka"));
    }
    kigen_certs_clear(&certs);
    free(certs.v);
}

static void test_pkcs12_modern_aes_with_password(void **state)
{
    expect_read(state, "modern.p12", good, 1, 2);
}

static void test_pkcs12_legacy_rc2_40(void **state)
{
    expect_read(state, "legacy.p12", good, 1, 2);
}

static void test_pkcs12_3des(void **state)
{
    expect_read(state, "des3.p12", good, 1, 2);
}

static void test_pkcs12_without_mac_finds_password_by_decryption(void **state)
{
    expect_read(state, "nomac.p12", wrong_then_good, 2, 2);
}

static void test_pkcs12_second_password_is_tried(void **state)
{
    expect_read(state, "modern.p12", wrong_then_good, 2, 2);
}

static void test_pkcs12_cleartext_cert_bags(void **state)
{
    expect_read(state, "clearcerts.p12", good, 1, 2);
}

static void test_pkcs12_no_password_needed(void **state)
{
    expect_read(state, "nopass.p12", NULL, 0, 2);
    expect_read(state, "nopass.p12", wrong, 2, 2);
}

static void test_pkcs12_empty_password_is_tried_last(void **state)
{
    expect_read(state, "emptypass.p12", NULL, 0, 2);
    expect_read(state, "emptypass.p12", wrong, 2, 2);
}

static void test_pkcs12_wrong_password_is_reported(void **state)
{
    expect_read(state, "modern.p12", wrong, 2, -KIGEN_E_WRONG_PASSWORD);
    expect_read(state, "nomac.p12", wrong, 2, -KIGEN_E_WRONG_PASSWORD);
}

static void test_pkcs12_missing_password_is_reported(void **state)
{
    expect_read(state, "modern.p12", NULL, 0, -KIGEN_E_NEEDS_PASSWORD);
    expect_read(state, "nomac.p12", NULL, 0, -KIGEN_E_NEEDS_PASSWORD);
}

static void test_pkcs12_truncated_is_malformed(void **state)
{
    expect_read(state, "truncated.p12", good, 1, -KIGEN_E_MALFORMED);
}

static void test_pkcs12_every_prefix_and_bit_flip_is_survived(void **state)
{
    size_t len;
    uint8_t *buf = fixture_load("certs/clearcerts.p12", &len);
    struct kigen_passwords pw = { good, 1 };
    struct kigen_certs certs = { 0 };
    char err[256];

    for (size_t n = 0; n < len; n += 3) {
        int r = kigen_read_pkcs12(*state, buf, n, &pw, &certs, err, sizeof(err));

        assert_true(r < 0);
        kigen_certs_clear(&certs);
    }
    for (size_t i = 0; i < len; i += 5) {
        buf[i] ^= 0x5a;
        (void)kigen_read_pkcs12(*state, buf, len, &pw, &certs, err, sizeof(err));
        assert_true(certs.n <= 2);
        kigen_certs_clear(&certs);
        buf[i] ^= 0x5a;
    }
    free(certs.v);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkcs12_modern_aes_with_password),
        cmocka_unit_test(test_pkcs12_legacy_rc2_40),
        cmocka_unit_test(test_pkcs12_3des),
        cmocka_unit_test(test_pkcs12_without_mac_finds_password_by_decryption),
        cmocka_unit_test(test_pkcs12_second_password_is_tried),
        cmocka_unit_test(test_pkcs12_cleartext_cert_bags),
        cmocka_unit_test(test_pkcs12_no_password_needed),
        cmocka_unit_test(test_pkcs12_empty_password_is_tried_last),
        cmocka_unit_test(test_pkcs12_wrong_password_is_reported),
        cmocka_unit_test(test_pkcs12_missing_password_is_reported),
        cmocka_unit_test(test_pkcs12_truncated_is_malformed),
        cmocka_unit_test(test_pkcs12_every_prefix_and_bit_flip_is_survived),
    };

    return cmocka_run_group_tests(tests, ctx_setup, ctx_teardown);
}
