/*
 * Mail composition: every message is parsed back with GMime's own parser (a reader that did
 * not write it would see the same), and the facts checked in the decoded headers and body.
 */
#include <errno.h>
#include <gmime/gmime.h>
#include <stdbool.h>

#include "alert.h"
#include "mail.h"
#include "testutil.h"
#include "tz.h"

#define SHA "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static char *admins[] = { "it@example.co.jp", "sec@example.co.jp" };

static struct kigen_mail_ctx ctx_of(struct kigen_tz *tz)
{
    return (struct kigen_mail_ctx){ .from = "kigen <kigen@admin.example.co.jp>",
                                    .admins = admins,
                                    .n_admins = 2,
                                    .to_holders = true,
                                    .tz = tz,
                                    .host = "admin.example.co.jp",
                                    .date = 1795000000 };
}

static struct kigen_alert *cert_alert(enum kigen_event event, bool with_holder)
{
    struct kigen_alert *a = kigen_alert_new(event, "The certificate of 田中 太郎 ends in 5 days.");

    assert_non_null(a);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SHA256", SHA), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SUBJECT", "CN=田中,O=Example"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_ISSUER", "CN=NACCS Client CA"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_NOT_AFTER", "2026-12-15T13:00:00Z"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_RENEWAL_OPENS", "2026-11-17T13:00:00Z"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_DAYS_LEFT", "5"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_PATHS", "/srv/naccs/tanaka.p12\n/srv/copy.p12"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_RENEW_URL", "https://cert.example/renew"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_INSTRUCTIONS", "Open the page.\nPress 更新."), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_REISSUE_NOTE", "one business day"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_MAINTENANCE", "2026-12-15 22:00 JST to 08:00"), 0);
    if (with_holder) {
        assert_int_equal(kigen_alert_add(a, "KIGEN_HOLDER", "田中 太郎"), 0);
        assert_int_equal(kigen_alert_add(a, "KIGEN_HOLDER_EMAIL", "tanaka@example.co.jp"), 0);
    }
    return a;
}

static GMimeMessage *parse(const char *text, size_t len)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(text, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);

    g_object_unref(parser);
    g_object_unref(stream);
    assert_non_null(m);
    return m;
}

/* The addresses of one header, "a@x,b@y". */
static void addresses(GMimeMessage *m, GMimeAddressType type, char *out, size_t len)
{
    InternetAddressList *l = g_mime_message_get_addresses(m, type);

    out[0] = '\0';
    for (int i = 0; l && i < internet_address_list_length(l); i++) {
        InternetAddress *ia = internet_address_list_get_address(l, i);

        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "",
                 internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
    }
}

static char *body_of(GMimeMessage *m)
{
    GMimeObject *part = g_mime_message_get_mime_part(m);

    assert_true(GMIME_IS_TEXT_PART(part));
    return g_mime_text_part_get_text(GMIME_TEXT_PART(part));
}

static void test_holder_is_to_and_admins_cc_with_encoded_subject(void **state)
{
    struct kigen_tz *tz = NULL;
    struct kigen_alert *a = cert_alert(KIGEN_EVENT_CERT_CRITICAL, true);
    struct kigen_mail_ctx ctx;
    char *text = NULL, to[256], cc[256], *body;
    size_t len = 0;
    GMimeMessage *m;
    const char *raw_subject;

    assert_int_equal(kigen_tz_load("Asia/Tokyo", &tz), 0);
    ctx = ctx_of(tz);
    assert_int_equal(kigen_mail_compose(&ctx, a, "k1", &text, &len), 0);
    assert_int_equal(strlen(text), len);
    /* On the wire: ASCII only, the Subject an RFC 2047 encoded word, the body QP. */
    for (size_t i = 0; i < len; i++)
        assert_true((unsigned char)text[i] < 128);
    raw_subject = strstr(text, "\nSubject: ");
    assert_non_null(raw_subject);
    assert_true(strstr(raw_subject, "=?UTF-8?") || strstr(raw_subject, "=?utf-8?"));
    assert_non_null(strstr(text, "Content-Transfer-Encoding: quoted-printable"));
    assert_non_null(strstr(text, "charset=utf-8"));
    assert_non_null(strstr(text, "\nAuto-Submitted: auto-generated\n"));
    assert_non_null(strstr(text, "\nX-Kigen-Event: cert.critical\n"));
    assert_non_null(strstr(text, "\nX-Kigen-SHA256: " SHA "\n"));

    m = parse(text, len);
    assert_string_equal(g_mime_message_get_subject(m),
                        "[kigen] Certificate expires within days: 田中 太郎");
    addresses(m, GMIME_ADDRESS_TYPE_TO, to, sizeof(to));
    addresses(m, GMIME_ADDRESS_TYPE_CC, cc, sizeof(cc));
    assert_string_equal(to, "tanaka@example.co.jp");
    assert_string_equal(cc, "it@example.co.jp,sec@example.co.jp");
    assert_string_equal(internet_address_get_name(internet_address_list_get_address(
                            g_mime_message_get_addresses(m, GMIME_ADDRESS_TYPE_TO), 0)),
                        "田中 太郎");
    addresses(m, GMIME_ADDRESS_TYPE_FROM, to, sizeof(to));
    assert_string_equal(to, "kigen@admin.example.co.jp");
    assert_int_equal(g_date_time_to_unix(g_mime_message_get_date(m)), 1795000000);
    body = body_of(m);
    assert_non_null(strstr(body, "The certificate of 田中 太郎 ends in 5 days."));
    assert_non_null(strstr(body, "Valid until:   2026-12-15 22:00 JST")); /* 13:00Z in Tokyo */
    assert_non_null(strstr(body, "Renewal opens: 2026-11-17 22:00 JST"));
    assert_non_null(strstr(body, "Renew here: https://cert.example/renew"));
    assert_non_null(strstr(body, "Open the page.\nPress 更新.\n"));
    assert_non_null(strstr(body, "2026-12-15 22:00 JST to 08:00"));
    assert_non_null(strstr(body, "  /srv/naccs/tanaka.p12\n  /srv/copy.p12\n"));
    assert_null(strstr(body, "one business day")); /* not expired: no re-issue */
    g_free(body);
    g_object_unref(m);
    free(text);
    kigen_alert_free(a);
    kigen_tz_free(tz);
}

/*
 * The Subject as RFC 2047 §6.2 reads it: each encoded word decoded alone, the white space
 * between two of them dropped. Not g_mime_message_get_subject(): GMime 3.2.13 joins adjacent
 * base64 words before decoding and loses what follows a word ending in "==" (Python's
 * email, Thunderbird and mutt decode them one by one).
 */
static char *subject_of(const char *text)
{
    const char *p = strstr(text, "\nSubject: ");
    char *out = calloc(1, 1024);
    bool was_encoded = false;

    assert_non_null(p);
    assert_non_null(out);
    p += strlen("\nSubject: ");
    while (*p && !(*p == '\n' && p[1] != ' ' && p[1] != '\t')) {
        size_t ws = strspn(p, " \t\n"), n;
        bool is_encoded;
        char *word, *decoded;

        p += ws;
        n = strcspn(p, " \t\n");
        word = strndup(p, n);
        is_encoded = strncmp(word, "=?", 2) == 0;
        decoded = is_encoded ? g_mime_utils_header_decode_text(NULL, word) : g_strdup(word);
        if (ws && *out && !(was_encoded && is_encoded))
            strcat(out, " ");
        strncat(out, decoded, 1023 - strlen(out));
        was_encoded = is_encoded;
        g_free(decoded);
        free(word);
        p += n;
    }
    return out;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The Subject and body of the message for a, composed with ctx and parsed back. */
static void compose_parsed(const struct kigen_mail_ctx *ctx, const struct kigen_alert *a,
                           char **ret_subject, char **ret_body)
{
    char *text = NULL;
    size_t len = 0;
    GMimeMessage *m;

    assert_int_equal(kigen_mail_compose(ctx, a, "k1", &text, &len), 0);
    m = parse(text, len);
    *ret_subject = subject_of(text);
    *ret_body = body_of(m);
    g_object_unref(m);
    free(text);
}

static void test_language_ja_and_a_holder_row_language_choose_the_text(void **state)
{
    struct kigen_tz *tz = NULL;
    struct kigen_alert *a = cert_alert(KIGEN_EVENT_CERT_RENEWAL_OPEN, true);
    struct kigen_mail_ctx ctx;
    char *subject, *body;

    assert_int_equal(kigen_tz_load("Asia/Tokyo", &tz), 0);
    ctx = ctx_of(tz);
    ctx.language = KIGEN_LANGUAGE_JA;
    compose_parsed(&ctx, a, &subject, &body);
    assert_string_equal(subject, "[kigen] 証明書の更新期間が始まりました: 田中 太郎");
    assert_non_null(strstr(body, "有効期限:   2026年12月15日(火) 22:00 JST\n"));
    assert_non_null(strstr(body, "更新開始日: 2026年11月17日(火) 22:00 JST\n"));
    assert_non_null(strstr(body, "更新はこちらから: https://cert.example/renew\n"));
    assert_non_null(strstr(body, "admin.example.co.jp の kigen が送信しました（イベント "
                                 "cert.renewal_open, sha256 " SHA "）。"));
    /* The message is the daemon's, in Japanese: it names the maintenance itself. */
    assert_true(starts_with(body, "The certificate of 田中 太郎 ends in 5 days.\n"));
    assert_null(strstr(body, "2026-12-15 22:00 JST to 08:00"));
    free(subject);
    g_free(body);

    /* The holder's register row says en: their mail is English, as it was. */
    assert_int_equal(kigen_alert_add(a, "KIGEN_LANGUAGE", "en"), 0);
    compose_parsed(&ctx, a, &subject, &body);
    assert_string_equal(subject, "[kigen] Renewal open: 田中 太郎");
    assert_non_null(strstr(body, "Valid until:   2026-12-15 22:00 JST\n"));
    /* The message is in the daemon's Japanese: their mail opens with a sentence of its own. */
    assert_true(starts_with(body, "The renewal period of the certificate has begun. Please renew "
                                  "it by 2026-12-15 22:00 JST.\n\n"));
    assert_non_null(strstr(body, "2026-12-15 22:00 JST to 08:00.\n"));
    free(subject);
    g_free(body);
    kigen_alert_free(a);

    /* A row's ja under language: en; the admins' own mail (no holder) stays English. */
    a = cert_alert(KIGEN_EVENT_CERT_RENEWAL_OPEN, true);
    assert_int_equal(kigen_alert_add(a, "KIGEN_LANGUAGE", "ja"), 0);
    ctx.language = KIGEN_LANGUAGE_EN;
    compose_parsed(&ctx, a, &subject, &body);
    assert_string_equal(subject, "[kigen] 証明書の更新期間が始まりました: 田中 太郎");
    assert_non_null(strstr(body, "証明書の更新期間が始まりました。2026年12月15日(火) 22:00 JST "
                                 "までに更新してください。\n"));
    assert_null(strstr(body, "ends in 5 days"));
    free(subject);
    g_free(body);
    ctx.to_holders = false;
    compose_parsed(&ctx, a, &subject, &body);
    assert_string_equal(subject, "[kigen] Renewal open: 田中 太郎");
    free(subject);
    g_free(body);
    kigen_alert_free(a);
    kigen_tz_free(tz);
}

/*
 * A row's ja under language: en: KIGEN_MAINTENANCE is English, as every field; the holder
 * reads the engine's Japanese sentence for it (holder_maintenance), with a Japanese full stop.
 */
static void test_holder_language_says_the_maintenance_in_it(void **state)
{
    static const char ja[] =
        "ご注意ください: 有効期限より前に naccs-web の定期メンテナンスが"
        "あります（2026年12月13日(日) 22:00 JST ～ 2026年12月14日(月) 06:00 JST）";
    struct kigen_tz *tz = NULL;
    struct kigen_alert *a = cert_alert(KIGEN_EVENT_CERT_RENEWAL_OPEN, true);
    struct kigen_mail_ctx ctx;
    char *subject, *body;

    assert_int_equal(kigen_tz_load("Asia/Tokyo", &tz), 0);
    ctx = ctx_of(tz);
    ctx.language = KIGEN_LANGUAGE_EN;
    assert_int_equal(kigen_alert_add(a, "KIGEN_LANGUAGE", "ja"), 0);
    a->holder_maintenance = strdup(ja);
    assert_non_null(a->holder_maintenance);
    compose_parsed(&ctx, a, &subject, &body);
    assert_non_null(strstr(body, ja));
    assert_non_null(strstr(body, "06:00 JST）。\n"));
    assert_null(strstr(body, "2026-12-15 22:00 JST to 08:00"));
    free(subject);
    g_free(body);

    /* The copy a delivery file kept from before: the English sentence, still said. */
    free(a->holder_maintenance);
    a->holder_maintenance = NULL;
    compose_parsed(&ctx, a, &subject, &body);
    assert_non_null(strstr(body, "2026-12-15 22:00 JST to 08:00。\n"));
    free(subject);
    g_free(body);
    kigen_alert_free(a);
    kigen_tz_free(tz);
}

static void test_message_id_is_the_same_for_the_same_key(void **state)
{
    struct kigen_alert *a = cert_alert(KIGEN_EVENT_CERT_EXPIRED, false);
    struct kigen_mail_ctx ctx = ctx_of(NULL);
    char *t1 = NULL, *t2 = NULL, *t3 = NULL, *body;
    size_t l1, l2, l3;
    GMimeMessage *m1, *m2, *m3;

    assert_int_equal(kigen_mail_compose(&ctx, a, "k1", &t1, &l1), 0);
    assert_int_equal(kigen_mail_compose(&ctx, a, "k1", &t2, &l2), 0);
    assert_int_equal(kigen_mail_compose(&ctx, a, "k2", &t3, &l3), 0);
    m1 = parse(t1, l1);
    m2 = parse(t2, l2);
    m3 = parse(t3, l3);
    assert_string_equal(g_mime_message_get_message_id(m1), g_mime_message_get_message_id(m2));
    assert_string_not_equal(g_mime_message_get_message_id(m1), g_mime_message_get_message_id(m3));
    assert_non_null(strstr(g_mime_message_get_message_id(m1), "@admin.example.co.jp"));
    /* No holder: To the admins, no Cc; the subject names the CN; expired: re-issue, no URL. */
    assert_string_equal(g_mime_message_get_subject(m1), "[kigen] Certificate expired: 田中");
    {
        char to[256], cc[256];

        addresses(m1, GMIME_ADDRESS_TYPE_TO, to, sizeof(to));
        addresses(m1, GMIME_ADDRESS_TYPE_CC, cc, sizeof(cc));
        assert_string_equal(to, "it@example.co.jp,sec@example.co.jp");
        assert_string_equal(cc, "");
    }
    body = body_of(m1);
    assert_non_null(strstr(body, "must be re-issued: one business day"));
    assert_null(strstr(body, "https://cert.example/renew"));
    assert_non_null(strstr(body, "Valid until:   2026-12-15T13:00:00Z"));
    g_free(body);
    g_object_unref(m1);
    g_object_unref(m2);
    g_object_unref(m3);
    free(t1);
    free(t2);
    free(t3);
    kigen_alert_free(a);
}

static void test_probe_events_go_to_admins_only(void **state)
{
    struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_PROBE_DOWN, "cert.example:443 is down.");
    struct kigen_mail_ctx ctx = ctx_of(NULL);
    char *text = NULL, to[256], cc[256];
    size_t len;
    GMimeMessage *m;

    assert_int_equal(kigen_alert_add(a, "KIGEN_PROBE", "naccs-cert"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_HOLDER_EMAIL", "tanaka@example.co.jp"), 0);
    assert_int_equal(kigen_mail_compose(&ctx, a, "p", &text, &len), 0);
    m = parse(text, len);
    addresses(m, GMIME_ADDRESS_TYPE_TO, to, sizeof(to));
    addresses(m, GMIME_ADDRESS_TYPE_CC, cc, sizeof(cc));
    assert_string_equal(to, "it@example.co.jp,sec@example.co.jp");
    assert_string_equal(cc, "");
    assert_string_equal(g_mime_message_get_subject(m), "[kigen] Host unreachable: naccs-cert");
    assert_null(g_mime_object_get_header((GMimeObject *)m, "X-Kigen-SHA256"));
    g_object_unref(m);
    free(text);
    /* Nobody to tell: no message. */
    ctx.n_admins = 0;
    assert_int_equal(kigen_mail_compose(&ctx, a, "p", &text, &len), -ENODATA);
    kigen_alert_free(a);
}

static void test_holder_without_to_holders_is_not_mailed(void **state)
{
    struct kigen_alert *a = cert_alert(KIGEN_EVENT_CERT_RENEWAL_OPEN, true);
    struct kigen_mail_ctx ctx = ctx_of(NULL);
    char *text = NULL;
    size_t len;

    ctx.to_holders = false;
    ctx.n_admins = 0;
    assert_int_equal(kigen_mail_compose(&ctx, a, "k", &text, &len), -ENODATA);
    ctx.to_holders = true;
    assert_int_equal(kigen_mail_compose(&ctx, a, "k", &text, &len), 0);
    assert_non_null(strstr(text, "\nTo: "));
    assert_null(strstr(text, "\nCc: "));
    free(text);
    kigen_alert_free(a);
}

static void test_digest_sorts_by_kind_then_days_and_is_empty_when_nothing_is_open(void **state)
{
    struct kigen_digest_item items[] = {
        { KIGEN_DIGEST_RENEWAL_OPEN, "CN=b", "/srv/b.p12", NULL, 1796000000, 20 },
        { KIGEN_DIGEST_PROBE_DOWN, "naccs-cert", "cert.nac.naccs.jp:443", NULL, 0, 0 },
        { KIGEN_DIGEST_RENEWAL_OPEN, "CN=a", "/srv/a.p12", "佐藤", 1795500000, 12 },
        { KIGEN_DIGEST_EXPIRED, "CN=old", "/srv/old.p12", NULL, 1790000000, -3 },
        { KIGEN_DIGEST_REVOKED, "CN=lost", "/srv/lost.p12", "鈴木", 1800000000, 60 },
    };
    struct kigen_mail_ctx ctx = ctx_of(NULL);
    char *text = NULL, *body, *a, *b, *old, *probe, *lost;
    size_t len;
    GMimeMessage *m;

    assert_int_equal(kigen_mail_digest(&ctx, items, 0, "digest-2026-12-01", &text, &len), -ENODATA);
    assert_int_equal(kigen_mail_digest(&ctx, items, 5, "digest-2026-12-01", &text, &len), 0);
    m = parse(text, len);
    assert_string_equal(g_mime_message_get_subject(m), "[kigen] Daily summary: 5 open items");
    body = body_of(m);
    old = strstr(body, "CN=old");
    a = strstr(body, "CN=a (佐藤)");
    b = strstr(body, "CN=b");
    probe = strstr(body, "naccs-cert: cert.nac.naccs.jp:443");
    /* A revoked certificate comes first (it cannot be renewed), with its days and holder. */
    lost = strstr(body, "Revoked: to be re-issued\n\n     60 days");
    assert_true(old && a && b && probe && lost && strstr(body, "CN=lost (鈴木)"));
    assert_true(lost < old && old < a && a < b && b < probe);
    g_free(body);
    g_object_unref(m);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holder_is_to_and_admins_cc_with_encoded_subject),
        cmocka_unit_test(test_language_ja_and_a_holder_row_language_choose_the_text),
        cmocka_unit_test(test_holder_language_says_the_maintenance_in_it),
        cmocka_unit_test(test_message_id_is_the_same_for_the_same_key),
        cmocka_unit_test(test_probe_events_go_to_admins_only),
        cmocka_unit_test(test_holder_without_to_holders_is_not_mailed),
        cmocka_unit_test(test_digest_sorts_by_kind_then_days_and_is_empty_when_nothing_is_open),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
