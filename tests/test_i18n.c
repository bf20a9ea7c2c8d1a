/*
 * Translations read from the catalogue built from po/ja.po (build/locale, found next to the
 * test's executable), and dates for Japanese text.
 */
#include <errno.h>
#include <string.h>

#include "i18n.h"
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

static void test_japanese_comes_from_the_built_catalogue(void **state)
{
    const char *path = kigen_i18n_path(KIGEN_LANGUAGE_JA);

    assert_true(kigen_i18n_is_available(KIGEN_LANGUAGE_JA));
    assert_non_null(path);
    assert_non_null(strstr(path, "/locale/ja/LC_MESSAGES/kigen.mo"));
    assert_string_equal(kigen_tr(KIGEN_LANGUAGE_JA, "Renewal open"),
                        "証明書の更新期間が始まりました");
    assert_string_equal(kigen_tr(KIGEN_LANGUAGE_EN, "Renewal open"), "Renewal open");
    /* Not in the catalogue, or the header's empty msgid: the msgid itself. */
    assert_string_equal(kigen_tr(KIGEN_LANGUAGE_JA, "no such text"), "no such text");
    assert_string_equal(kigen_tr(KIGEN_LANGUAGE_JA, ""), "");
    assert_string_equal(kigen_language_code(KIGEN_LANGUAGE_JA), "ja");
}

static void test_plurals_choose_by_n_in_english_and_one_form_in_japanese(void **state)
{
    const char *one = " and %zu other location", *many = " and %zu other locations";

    assert_ptr_equal(kigen_ntr(KIGEN_LANGUAGE_EN, one, many, 1), one);
    assert_ptr_equal(kigen_ntr(KIGEN_LANGUAGE_EN, one, many, 0), many);
    assert_ptr_equal(kigen_ntr(KIGEN_LANGUAGE_EN, one, many, 2), many);
    assert_string_equal(kigen_ntr(KIGEN_LANGUAGE_JA, one, many, 1), " ほか %zu か所");
    assert_string_equal(kigen_ntr(KIGEN_LANGUAGE_JA, one, many, 5), " ほか %zu か所");
}

static void test_japanese_dates_have_the_weekday_and_no_leading_zeros(void **state)
{
    struct kigen_tz *tz = NULL;
    char out[KIGEN_TZ_FORMAT_LEN];
    int64_t t;

    assert_int_equal(kigen_tz_load("Asia/Tokyo", &tz), 0);
    assert_int_equal(kigen_time_parse("2026-12-27T03:51:00Z", &t), 0);
    assert_int_equal(kigen_tz_format_ja(tz, t, out, sizeof(out)), 0);
    assert_string_equal(out, "2026年12月27日(日) 12:51 JST");
    assert_int_equal(kigen_time_parse("2027-01-04T15:05:00Z", &t), 0);
    kigen_i18n_time(KIGEN_LANGUAGE_JA, tz, t, out, sizeof(out));
    assert_string_equal(out, "2027年1月5日(火) 00:05 JST");
    kigen_i18n_time(KIGEN_LANGUAGE_EN, tz, t, out, sizeof(out));
    assert_string_equal(out, "2027-01-05 00:05 JST");
    /* No zone: the process's (TZ). */
    kigen_time_use_zone("UTC");
    kigen_i18n_time(KIGEN_LANGUAGE_JA, NULL, t, out, sizeof(out));
    assert_string_equal(out, "2027年1月4日(月) 15:05 UTC");
    assert_int_equal(kigen_tz_format_ja(tz, t, out, 20), -ENOBUFS);
    kigen_tz_free(tz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_japanese_comes_from_the_built_catalogue),
        cmocka_unit_test(test_plurals_choose_by_n_in_english_and_one_form_in_japanese),
        cmocka_unit_test(test_japanese_dates_have_the_weekday_and_no_leading_zeros),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
