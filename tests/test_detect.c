#include "readtest.h"

static void expect(void **state, const char *name, enum kigen_format want_format, int want)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256] = "";
    int r = read_fixture(*state, name, NULL, 0, &certs, &format, err, sizeof(err));

    if (r != want || format != want_format)
        fail_msg("%s: got %d/%d (%s), want %d/%d", name, r, format, err, want, want_format);
    if (want > 0)
        assert_fingerprints(&certs, name);
    kigen_certs_clear(&certs);
    free(certs.v);
}

static void test_formats_are_detected_from_content(void **state)
{
    expect(state, "certs/single.pem", KIGEN_FORMAT_PEM, 1);
    expect(state, "certs/single.der", KIGEN_FORMAT_DER, 1);
    expect(state, "certs/chain.p7b", KIGEN_FORMAT_PKCS7, 2);
    expect(state, "certs/chain.p7b.pem", KIGEN_FORMAT_PKCS7, 2);
    expect(state, "certs/pkcs7signeddata.p7b.pem", KIGEN_FORMAT_PKCS7, 2);
    expect(state, "certs/cms.p7b.pem", KIGEN_FORMAT_PKCS7, 2);
    expect(state, "certs/nopass.p12", KIGEN_FORMAT_PKCS12, 2);
}

static void test_names_do_not_decide_the_format(void **state)
{
    /* password.txt is text, single.der has no extension the reader could trust. */
    expect(state, "certs/password.txt", KIGEN_FORMAT_UNKNOWN, 0);
    expect(state, "certs/lonekey.der", KIGEN_FORMAT_UNKNOWN, 0);
}

static void test_empty_and_random_files_are_errors(void **state)
{
    expect(state, "certs/empty.p12", KIGEN_FORMAT_UNKNOWN, -KIGEN_E_MALFORMED);
    expect(state, "certs/random.bin", KIGEN_FORMAT_UNKNOWN, -KIGEN_E_UNSUPPORTED);
}

static void test_der_certificate_followed_by_nothing_is_one_entry(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256];

    assert_int_equal(
        read_fixture(*state, "certs/single.der", NULL, 0, &certs, &format, err, sizeof(err)), 1);
    assert_string_equal(certs.v[0].entry, "0");
    kigen_certs_clear(&certs);
    free(certs.v);
}

static void test_der_certificates_one_after_another_and_trailing_damage(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256] = "";

    assert_int_equal(
        read_fixture(*state, "certs/twoder.der", NULL, 0, &certs, &format, err, sizeof(err)), 2);
    assert_int_equal(format, KIGEN_FORMAT_DER);
    assert_string_equal(certs.v[0].entry, "0");
    assert_string_equal(certs.v[1].entry, "1");
    assert_int_not_equal(certs.v[0].not_after, certs.v[1].not_after);
    kigen_certs_clear(&certs);
    /* The good certificate is kept, and the damage after it is the file's one error. */
    assert_int_equal(
        read_fixture(*state, "certs/derjunk.der", NULL, 0, &certs, &format, err, sizeof(err)),
        -KIGEN_E_MALFORMED);
    assert_int_equal(certs.n, 1);
    assert_non_null(strstr(err, "8 bytes after certificate 0"));
    kigen_certs_clear(&certs);
    free(certs.v);
}

/* Keys, a CSR and a CRL in DER hold no certificate: no record and no error (SPEC §4). */
static void test_der_key_csr_and_crl_give_no_record(void **state)
{
    static const char *const files[] = {
        "certs/lonekey.der", "certs/key.der", "certs/key.p8plain.der",
        "certs/key.p8.der",  "certs/csr.der", "certs/crl.der",
    };

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct kigen_certs certs = { 0 };
        enum kigen_format format;
        char err[256] = "";
        int r = read_fixture(*state, files[i], NULL, 0, &certs, &format, err, sizeof(err));

        if (r != 0)
            fail_msg("%s: got %d (%s), want 0", files[i], r, err);
        assert_int_equal(certs.n, 0);
        /* A CRL's facts are kept for the report's crls (SPEC §13); nothing else is. */
        if (strstr(files[i], "crl")) {
            assert_non_null(certs.crls);
            assert_int_equal(certs.crls->n, 1);
            assert_non_null(certs.crls->v[0].issuer);
        } else {
            assert_null(certs.crls);
        }
        kigen_certs_clear(&certs);
        free(certs.v);
    }
}

/* DER that is no whole structure is damage, whatever the file is named. */
static void test_der_that_is_no_whole_structure_is_malformed(void **state)
{
    static const char *const files[] = {
        "certs/derbadlen.p12",    /* outer length 4096, 600 bytes follow */
        "certs/dergarbage.der",   /* the right outer length around garbage */
        "certs/dertruncated.der", /* a key cut short */
        "certs/derkeyjunk.der",   /* a whole key, then junk */
    };

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct kigen_certs certs = { 0 };
        enum kigen_format format;
        char err[256] = "";
        int r = read_fixture(*state, files[i], NULL, 0, &certs, &format, err, sizeof(err));

        if (r != -KIGEN_E_MALFORMED)
            fail_msg("%s: got %d (%s), want malformed", files[i], r, err);
        assert_int_equal(certs.n, 0);
        assert_non_null(strstr(err, "nor a whole key, CSR or CRL"));
        kigen_certs_clear(&certs);
        free(certs.v);
    }
}

/* Asserts that certs holds the certificates of leaves under entries, not_after as openssl says. */
static void assert_leaves(const struct kigen_certs *certs, size_t n, const char *const *leaves,
                          const char *const *entries)
{
    char hex[65];

    assert_int_equal(certs->n, n);
    for (size_t i = 0; i < n; i++) {
        char *sha = fact(leaves[i], "sha256"), *subject = fact(leaves[i], "subject"),
             *na = fact(leaves[i], "not_after");

        kigen_cert_sha256_hex(&certs->v[i], hex);
        assert_string_equal(hex, sha);
        assert_string_equal(certs->v[i].subject, subject);
        assert_int_equal(certs->v[i].not_after, strtoll(na, NULL, 10));
        assert_string_equal(certs->v[i].entry, entries[i]);
        free(sha), free(subject), free(na);
    }
}

/* One certificate of the SET does not decode: the others are kept, in their places. */
static void test_pkcs7_damaged_certificate_keeps_the_others(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256] = "";

    assert_int_equal(
        read_fixture(*state, "certs/damaged.p7b", NULL, 0, &certs, &format, err, sizeof(err)),
        -KIGEN_E_MALFORMED);
    assert_int_equal(format, KIGEN_FORMAT_PKCS7);
    assert_string_equal(err, "1 damaged PKCS#7 certificate (first: entry 1)");
    assert_leaves(&certs, 2, (const char *[]){ "ok", "ca" }, (const char *[]){ "0", "2" });
    kigen_certs_clear(&certs);
    free(certs.v);
}

/* Every PKCS#7 block of a PEM file is read; entries go on counting from block to block. */
static void test_pkcs7_pem_blocks_are_all_read(void **state)
{
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256] = "";

    assert_int_equal(
        read_fixture(*state, "certs/multi.p7b.pem", NULL, 0, &certs, &format, err, sizeof(err)), 4);
    assert_int_equal(format, KIGEN_FORMAT_PKCS7);
    assert_fingerprints(&certs, "certs/multi.p7b.pem");
    assert_leaves(&certs, 4, (const char *[]){ "ok", "ca", "expired", "renewed" },
                  (const char *[]){ "0", "1", "2", "3" });
    kigen_certs_clear(&certs);
    assert_int_equal(read_fixture(*state, "certs/multidamaged.p7b.pem", NULL, 0, &certs, &format,
                                  err, sizeof(err)),
                     -KIGEN_E_MALFORMED);
    assert_string_equal(err, "1 damaged PKCS#7 certificate (first: entry 5)");
    assert_leaves(&certs, 6, (const char *[]){ "ok", "ca", "expired", "renewed", "ok", "ca" },
                  (const char *[]){ "0", "1", "2", "3", "4", "6" });
    kigen_certs_clear(&certs);
    free(certs.v);
}

/* Cut short anywhere, a .p7b gives what it still holds and one error, never a crash. */
static void test_pkcs7_truncated_at_every_length_never_crashes(void **state)
{
    size_t len;
    uint8_t *buf = fixture_load("certs/damaged.p7b", &len);
    struct kigen_certs certs = { 0 };
    char err[256];

    for (size_t n = 0; n < len; n++) {
        int r = kigen_read_pkcs7(*state, buf, n, &certs, err, sizeof(err));

        assert_int_equal(r, -KIGEN_E_MALFORMED);
        assert_true(certs.n <= 2);
        kigen_certs_clear(&certs);
    }
    free(certs.v);
    free(buf);
}

static void test_random_inputs_never_crash(void **state)
{
    uint8_t buf[512];
    struct kigen_certs certs = { 0 };
    enum kigen_format format;
    char err[256];
    unsigned seed = 12345;

    for (int i = 0; i < 3000; i++) {
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof(buf));

        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)rand_r(&seed);
        /* Steer a third of them into each structured reader. */
        if (len > 4 && i % 3 == 0)
            buf[0] = 0x30;
        if (len > 4 && i % 3 == 1)
            memcpy(buf, "\xfe\xed\xfe\xed", 4);
        (void)kigen_read_any(*state, buf, len, NULL, &certs, &format, err, sizeof(err));
        kigen_certs_clear(&certs);
    }
    free(certs.v);
}

static void test_format_names_match_the_spec(void **state)
{
    (void)state;
    assert_string_equal(kigen_format_name(KIGEN_FORMAT_PEM), "pem");
    assert_string_equal(kigen_format_name(KIGEN_FORMAT_DER), "der");
    assert_string_equal(kigen_format_name(KIGEN_FORMAT_PKCS7), "pkcs7");
    assert_string_equal(kigen_format_name(KIGEN_FORMAT_PKCS12), "pkcs12");
    assert_string_equal(kigen_format_name(KIGEN_FORMAT_JKS), "jks");
    assert_string_equal(kigen_format_name(KIGEN_FORMAT_JCEKS), "jceks");
    assert_null(kigen_format_name(KIGEN_FORMAT_UNKNOWN));
    assert_string_equal(kigen_err_name(-KIGEN_E_WRONG_PASSWORD), "wrong_password");
    assert_string_equal(kigen_err_name(KIGEN_E_TOO_LARGE), "too_large");
    assert_null(kigen_err_name(-2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_are_detected_from_content),
        cmocka_unit_test(test_names_do_not_decide_the_format),
        cmocka_unit_test(test_empty_and_random_files_are_errors),
        cmocka_unit_test(test_der_certificate_followed_by_nothing_is_one_entry),
        cmocka_unit_test(test_der_certificates_one_after_another_and_trailing_damage),
        cmocka_unit_test(test_der_key_csr_and_crl_give_no_record),
        cmocka_unit_test(test_der_that_is_no_whole_structure_is_malformed),
        cmocka_unit_test(test_pkcs7_damaged_certificate_keeps_the_others),
        cmocka_unit_test(test_pkcs7_pem_blocks_are_all_read),
        cmocka_unit_test(test_pkcs7_truncated_at_every_length_never_crashes),
        cmocka_unit_test(test_random_inputs_never_crash),
        cmocka_unit_test(test_format_names_match_the_spec),
    };

    return cmocka_run_group_tests(tests, ctx_setup, ctx_teardown);
}
