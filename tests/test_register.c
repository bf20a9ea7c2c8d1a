#include <errno.h>

#include "register.h"
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

static struct kigen_register *parse(const char *text, const struct kigen_tz *tz)
{
    struct kigen_register *reg = NULL;

    assert_int_equal(kigen_register_parse((const uint8_t *)text, strlen(text), tz, &reg), 0);
    assert_non_null(reg);
    return reg;
}

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static struct kigen_tz *tokyo(void)
{
    struct kigen_tz *tz = NULL;

    assert_int_equal(kigen_tz_load("Asia/Tokyo", &tz), 0);
    return tz;
}

static void test_register_utf8_with_bom_quotes_and_crlf(void **state)
{
    /* As Excel saves "CSV UTF-8": a BOM, CRLF, quoted fields holding commas, quotes, newlines. */
    static const char text[] =
        "\xef\xbb\xbfHolder,E-Mail,Terminal,Not_After,Note,Subject\r\n"
        "田中 太郎,tanaka@example.co.jp,TRM001,2031-11-01,\"a, \"\"quoted\"\" note\",\r\n"
        "\r\n"
        "# a comment line\r\n"
        "\"佐藤\r\n花子\",,TRM002,2031-12-20T09:00:00+09:00,,\"CN=sato*\"\r\n"
        "鈴木,suzuki@example.co.jp,,,,CN=suzuki\n";
    struct kigen_tz *tz = tokyo();
    struct kigen_register *reg = parse(text, tz);

    assert_int_equal(reg->n_errors, 0);
    assert_false(reg->is_cp932);
    assert_int_equal(reg->n_rows, 3);
    assert_string_equal(reg->rows[0].holder, "田中 太郎");
    assert_int_equal(reg->rows[0].line, 2);
    assert_null(reg->rows[0].email); /* "E-Mail" is not the email column */
    assert_string_equal(reg->rows[0].terminal, "TRM001");
    /* A date is 00:00 in the configured timezone: 2031-11-01 00:00 JST. */
    assert_int_equal(reg->rows[0].not_after, at("2031-10-31T15:00:00Z"));
    assert_int_equal(reg->rows[0].issued, KIGEN_REGISTER_NO_DATE);
    assert_null(reg->rows[0].subject);
    assert_string_equal(reg->rows[1].holder, "佐藤\r\n花子");
    assert_int_equal(reg->rows[1].line, 5); /* after an empty line and a comment */
    assert_int_equal(reg->rows[1].not_after, at("2031-12-20T00:00:00Z"));
    assert_string_equal(reg->rows[1].subject, "CN=sato*");
    assert_int_equal(reg->rows[2].line, 7);
    assert_string_equal(reg->rows[2].holder, "鈴木");
    assert_string_equal(reg->rows[2].subject, "CN=suzuki");
    kigen_register_free(reg);
    kigen_tz_free(tz);
}

static void test_register_cp932_is_read_as_japanese_excel_saves_it(void **state)
{
    /*
     * "holder,email,not_after" then "田中 太郎,...,2031-11-01" and "ソ" (0x83 0x5c: its second
     * byte is a backslash in ASCII), in CP932 as Python's cp932 codec writes them.
     */
    static const char text[] =
        "holder,email,not_after\r\n"
        "\x93\x63\x92\x86 \x91\xbe\x98\x59,tanaka@example.co.jp,2031-11-01\r\n"
        "\x83\x5c,,2031-11-02\r\n";
    struct kigen_register *reg = parse(text, NULL);

    assert_true(reg->is_cp932);
    assert_int_equal(reg->n_errors, 0);
    assert_int_equal(reg->n_rows, 2);
    assert_string_equal(reg->rows[0].holder, "田中 太郎");
    assert_string_equal(reg->rows[0].email, "tanaka@example.co.jp");
    assert_int_equal(reg->rows[0].not_after, at("2031-11-01T00:00:00Z"));
    assert_string_equal(reg->rows[1].holder, "ソ");
    kigen_register_free(reg);
}

static void test_register_bad_rows_are_errors_and_the_others_count(void **state)
{
    static const char text[] = "holder,not_after,issued,language,path\n"
                               "good one,2031-11-01,,ja,\n"
                               ",2031-11-01,,,\n"
                               "bad date,2031-13-01,,,\n"
                               "bad day,2026-02-30,,,\n"
                               "bad language,2031-11-01,,fr,\n"
                               "names nothing,,,,\n"
                               "by path,,,,/srv/naccs/*.p12\n"
                               "issued only,,2021-10-01,,\n";
    struct kigen_register *reg = parse(text, NULL);

    assert_int_equal(reg->n_rows, 3);
    assert_string_equal(reg->rows[0].holder, "good one");
    assert_string_equal(reg->rows[0].language, "ja");
    assert_string_equal(reg->rows[1].path, "/srv/naccs/*.p12");
    assert_int_equal(reg->rows[2].issued, at("2021-10-01T00:00:00Z"));
    assert_int_equal(reg->n_errors, 5);
    assert_int_equal(reg->errors[0].line, 3);
    assert_string_equal(reg->errors[0].message, "'holder' is empty");
    assert_int_equal(reg->errors[1].line, 4);
    assert_non_null(strstr(reg->errors[1].message, "'not_after' is not a date"));
    assert_int_equal(reg->errors[2].line, 5);
    assert_int_equal(reg->errors[3].line, 6);
    assert_non_null(strstr(reg->errors[3].message, "not en or ja"));
    assert_int_equal(reg->errors[4].line, 7);
    assert_non_null(strstr(reg->errors[4].message, "names no certificate"));
    kigen_register_free(reg);
}

static void test_register_without_holder_column_is_one_error(void **state)
{
    struct kigen_register *reg = parse("name,not_after\nx,2031-11-01\ny,2031-11-02\n", NULL);

    assert_int_equal(reg->n_rows, 0);
    assert_int_equal(reg->n_errors, 1);
    assert_int_equal(reg->errors[0].line, 1);
    assert_non_null(strstr(reg->errors[0].message, "no 'holder' column"));
    kigen_register_free(reg);
    reg = parse("", NULL);
    assert_int_equal(reg->n_errors, 1);
    assert_string_equal(reg->errors[0].message, "no header row");
    kigen_register_free(reg);
}

static void test_register_field_too_long_and_hostile_bytes(void **state)
{
    size_t n = KIGEN_REGISTER_MAX_FIELD + 100;
    char *text = malloc(n + 64);
    struct kigen_register *reg;
    uint32_t x = 12345;

    snprintf(text, 64, "holder,not_after\nx,2031-11-01\n");
    memset(text + strlen(text), 'a', n);
    strcpy(text + strlen("holder,not_after\nx,2031-11-01\n") + n, ",2031-11-01\n");
    reg = parse(text, NULL);
    assert_int_equal(reg->n_rows, 1);
    assert_int_equal(reg->n_errors, 1);
    assert_int_equal(reg->errors[0].line, 3);
    assert_non_null(strstr(reg->errors[0].message, "longer than"));
    kigen_register_free(reg);

    /* Random bytes, and every prefix of a good register: an answer, never a crash. */
    for (int round = 0; round < 200; round++) {
        size_t len = (size_t)(round * 7 % 300);

        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            text[i] = (char)(x >> 16);
        }
        reg = NULL;
        assert_int_equal(kigen_register_parse((uint8_t *)text, len, NULL, &reg), 0);
        kigen_register_free(reg);
    }
    strcpy(text, "holder,\"not_after\",subject\n\"a\",2031-11-01,\"CN=\"\"x\"\"\"\n");
    for (size_t len = 0; len <= strlen(text); len++) {
        reg = NULL;
        assert_int_equal(kigen_register_parse((uint8_t *)text, len, NULL, &reg), 0);
        assert_true(reg->n_rows <= 1);
        kigen_register_free(reg);
    }
    free(text);
}

static void test_validity_adds_calendar_months_with_the_month_end_rule(void **state)
{
    struct kigen_tz *tz = tokyo();
    int64_t t;

    /* NACCS: issued 2021-10-01 (JST) plus 5 years and 1 month ends 2026-11-01 00:00 JST. */
    assert_int_equal(kigen_register_add_months(tz, at("2021-09-30T15:00:00Z"), 5, 1, &t), 0);
    assert_int_equal(t, at("2026-10-31T15:00:00Z"));
    /* A day past the end of the month becomes its last day. */
    assert_int_equal(kigen_register_add_months(tz, at("2021-01-30T15:00:00Z"), 0, 1, &t), 0);
    assert_int_equal(t, at("2021-02-27T15:00:00Z")); /* 01-31 JST + 1m = 02-28 JST */
    assert_int_equal(kigen_register_add_months(NULL, at("2020-12-31T10:20:30Z"), 5, 2, &t), 0);
    assert_int_equal(t, at("2026-02-28T10:20:30Z"));
    assert_int_equal(kigen_register_add_months(NULL, at("2024-02-29T00:00:00Z"), 1, 0, &t), 0);
    assert_int_equal(t, at("2025-02-28T00:00:00Z"));
    assert_int_equal(kigen_register_add_months(NULL, at("2023-03-31T00:00:00Z"), 1, -1, &t), 0);
    assert_int_equal(t, at("2024-02-29T00:00:00Z"));
    assert_int_equal(kigen_register_add_months(NULL, at("9999-06-01T00:00:00Z"), 1, 0, &t),
                     -ERANGE);
    kigen_tz_free(tz);
}

static void test_register_line_numbers_follow_every_line_end(void **state)
{
    /* Old Mac CR line ends, a stray quote inside an unquoted field, a line of spaces. */
    struct kigen_register *reg =
        parse("holder,not_after\rA,2031-01-01\r   \rB\"x,2031-01-02\r\nC,2031-01-03\n", NULL);

    assert_int_equal(reg->n_errors, 0);
    assert_int_equal(reg->n_rows, 3);
    assert_string_equal(reg->rows[0].holder, "A");
    assert_int_equal(reg->rows[0].line, 2);
    assert_string_equal(reg->rows[1].holder, "B\"x");
    assert_int_equal(reg->rows[1].line, 4);
    assert_string_equal(reg->rows[2].holder, "C");
    assert_int_equal(reg->rows[2].line, 5);
    kigen_register_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_utf8_with_bom_quotes_and_crlf),
        cmocka_unit_test(test_register_cp932_is_read_as_japanese_excel_saves_it),
        cmocka_unit_test(test_register_bad_rows_are_errors_and_the_others_count),
        cmocka_unit_test(test_register_without_holder_column_is_one_error),
        cmocka_unit_test(test_register_line_numbers_follow_every_line_end),
        cmocka_unit_test(test_register_field_too_long_and_hostile_bytes),
        cmocka_unit_test(test_validity_adds_calendar_months_with_the_month_end_rule),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
