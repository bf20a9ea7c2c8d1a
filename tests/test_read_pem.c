#include "readtest.h"

static void test_pem_single_certificate_has_openssl_facts(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256], hex[65];
    char *sha = fact("ok", "sha256"), *subject = fact("ok", "subject"),
         *issuer = fact("ok", "issuer"), *serial = fact("ok", "serial"),
         *nb = fact("ok", "not_before"), *na = fact("ok", "not_after");

    assert_int_equal(
        read_fixture(*state, "certs/single.pem", NULL, 0, &certs, &format, err, sizeof(err)), 1);
    assert_int_equal(format, KIGEN_FORMAT_PEM);
    kigen_cert_sha256_hex(&certs.v[0], hex);
    assert_string_equal(hex, sha);
    assert_string_equal(certs.v[0].subject, subject);
    assert_string_equal(certs.v[0].issuer, issuer);
    assert_string_equal(certs.v[0].serial, serial);
    assert_int_equal(certs.v[0].not_before, strtoll(nb, NULL, 10));
    assert_int_equal(certs.v[0].not_after, strtoll(na, NULL, 10));
    assert_string_equal(certs.v[0].entry, "0");
    kigen_certs_clear(&certs);
    free(certs.v);
    free(sha), free(subject), free(issuer), free(serial), free(nb), free(na);
}

/* A certificate's own address: subjectAltName first, else the subject's emailAddress. */
static void test_pem_certificate_email_is_its_own_address(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256];

    assert_int_equal(
        read_fixture(*state, "certs/email_san.crt", NULL, 0, &certs, &format, err, sizeof(err)), 1);
    assert_string_equal(certs.v[0].email, "tanaka@example.co.jp");
    assert_int_equal(
        read_fixture(*state, "certs/email_dn.crt", NULL, 0, &certs, &format, err, sizeof(err)), 1);
    assert_string_equal(certs.v[1].email, "suzuki@example.co.jp");
    assert_int_equal(
        read_fixture(*state, "certs/single.pem", NULL, 0, &certs, &format, err, sizeof(err)), 1);
    assert_string_equal(certs.v[2].email, "");
    kigen_certs_clear(&certs);
    free(certs.v);
}

/* Beyond ASCII, names read as UTF-8 (RFC 2253 section 2.4), multi-valued RDNs joined by '+'. */
static void test_pem_names_beyond_ascii_are_utf8(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256];
    char *subject = fact("utf8", "subject");

    assert_int_equal(
        read_fixture(*state, "certs/utf8.crt", NULL, 0, &certs, &format, err, sizeof(err)), 1);
    assert_string_equal(certs.v[0].subject, subject);
    assert_non_null(strstr(certs.v[0].subject,
                           "UID=tanaka+CN=\xe7\x94\xb0\xe4\xb8\xad \xe5\xa4\xaa\xe9\x83\x8e"));
    assert_non_null(strstr(certs.v[0].subject,
                           "O=\xe6\xa0\xaa\xe5\xbc\x8f\xe4\xbc\x9a\xe7\xa4\xbe \xe4\xbe\x8b"));
    assert_string_equal(certs.v[0].issuer, subject); /* self-signed */
    kigen_certs_clear(&certs);
    free(certs.v);
    free(subject);
}

static void test_pem_bundle_skips_keys_and_prose(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256];

    assert_int_equal(
        read_fixture(*state, "certs/bundle.pem", NULL, 0, &certs, &format, err, sizeof(err)), 3);
    assert_fingerprints(&certs, "certs/bundle.pem");
    assert_string_equal(certs.v[0].entry, "0");
    assert_string_equal(certs.v[2].entry, "2");
    kigen_certs_clear(&certs);
    free(certs.v);
}

static void test_pem_trusted_certificate_is_read(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256];

    assert_int_equal(
        read_fixture(*state, "certs/trusted.pem", NULL, 0, &certs, &format, err, sizeof(err)), 1);
    assert_fingerprints(&certs, "certs/trusted.pem");
    kigen_certs_clear(&certs);
    free(certs.v);
}

/* Reads certs/FILE: malformed, with the certificates of leaves as entries, and what in err. */
static void assert_damaged(void **state, const char *file, const char *what, size_t n,
                           const char *const *leaves, const char *const *entries)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256] = "", path[64], hex[65];

    snprintf(path, sizeof(path), "certs/%s", file);
    assert_int_equal(read_fixture(*state, path, NULL, 0, &certs, &format, err, sizeof(err)),
                     -KIGEN_E_MALFORMED);
    assert_non_null(strstr(err, what));
    assert_int_equal(certs.n, n);
    for (size_t i = 0; i < n; i++) {
        char *sha = fact(leaves[i], "sha256");

        kigen_cert_sha256_hex(&certs.v[i], hex);
        assert_string_equal(hex, sha);
        assert_string_equal(certs.v[i].entry, entries[i]);
        free(sha);
    }
    kigen_certs_clear(&certs);
    free(certs.v);
}

static void test_pem_damaged_block_keeps_the_good_ones(void **state)
{
    assert_damaged(state, "damaged.pem", "1 damaged PEM block (first near certificate 1)", 2,
                   (const char *[]){ "ok", "expired" }, (const char *[]){ "0", "2" });
    /* The block without an END line ends where the next begins. */
    assert_damaged(state, "noend.pem", "1 damaged PEM block (first near certificate 1)", 3,
                   (const char *[]){ "ok", "expired", "ca" }, (const char *[]){ "0", "2", "3" });
    assert_damaged(state, "binary.pem", "bytes that are not text outside the PEM blocks", 2,
                   (const char *[]){ "ok", "expired" }, (const char *[]){ "0", "1" });
}

static void test_pem_lone_key_gives_no_certificate_and_no_error(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256];

    assert_int_equal(
        read_fixture(*state, "certs/lonekey.pem", NULL, 0, &certs, &format, err, sizeof(err)), 0);
    assert_int_equal(certs.n, 0);
    free(certs.v);
}

static void test_pem_truncated_at_every_length_never_crashes(void **state)
{
    size_t len;
    uint8_t *buf = fixture_load("certs/bundle.pem", &len);
    struct kigen_certs certs = { 0 };
    char err[256];

    for (size_t n = 0; n <= len; n += 7) {
        int r = kigen_read_pem(*state, buf, n, &certs, err, sizeof(err));

        assert_true(r >= 0 || r == -KIGEN_E_MALFORMED);
        assert_true(certs.n <= 3);
        kigen_certs_clear(&certs);
    }
    assert_int_equal(kigen_read_pem(*state, buf, len, &certs, err, sizeof(err)), 3);
    kigen_certs_clear(&certs);
    free(certs.v);
    free(buf);
}

static void test_pem_huge_base64_block_is_malformed_not_fatal(void **state)
{
    size_t n = 8 << 20, len;
    char *buf = malloc(n + 100);
    struct kigen_certs certs = { 0 };
    char err[256];

    assert_non_null(buf);
    len = (size_t)sprintf(buf, "-----BEGIN CERTIFICATE-----\n");
    for (size_t i = 0; i < n / 65; i++) {
        memset(buf + len, 'A', 64);
        buf[len + 64] = '\n';
        len += 65;
    }
    len += (size_t)sprintf(buf + len, "-----END CERTIFICATE-----\n");
    assert_int_equal(kigen_read_pem(*state, (uint8_t *)buf, len, &certs, err, sizeof(err)),
                     -KIGEN_E_MALFORMED);
    assert_int_equal(certs.n, 0);
    free(certs.v);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pem_single_certificate_has_openssl_facts),
        cmocka_unit_test(test_pem_names_beyond_ascii_are_utf8),
        cmocka_unit_test(test_pem_certificate_email_is_its_own_address),
        cmocka_unit_test(test_pem_bundle_skips_keys_and_prose),
        cmocka_unit_test(test_pem_trusted_certificate_is_read),
        cmocka_unit_test(test_pem_damaged_block_keeps_the_good_ones),
        cmocka_unit_test(test_pem_lone_key_gives_no_certificate_and_no_error),
        cmocka_unit_test(test_pem_truncated_at_every_length_never_crashes),
        cmocka_unit_test(test_pem_huge_base64_block_is_malformed_not_fatal),
    };

    return cmocka_run_group_tests(tests, ctx_setup, ctx_teardown);
}
