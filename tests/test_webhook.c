#include <errno.h>

#include <jansson.h>

#include "alert.h"
#include "testutil.h"
#include "webhook.h"

#define SHA     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SUBJECT "CN=山田太郎,O=株式会社テスト,C=JP"
#define HOLDER  "山田 太郎 <yamada@example.co.jp>"
#define RENEW   "https://cert.nac.naccs.jp/NACCSClientCA/pages/renew/index-iOS.jsp?s=Sitel&lan=ja"
#define MESSAGE "証明書の有効期限が切れました: renew <now> & re-issue"
#define PATHS   "/srv/naccs/山田.p12, /srv/naccs/backup/山田.p12"

/* A cert.expired alert with every fact a person reads, Japanese text included. */
static struct kigen_alert *expired_alert(void)
{
    struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_CERT_EXPIRED, MESSAGE);

    assert_non_null(a);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SHA256", SHA), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SUBJECT", SUBJECT), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_ISSUER", "CN=NACCS Client CA"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_NOT_AFTER", "2026-11-20T00:00:00Z"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_DAYS_LEFT", "-3"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_PATHS", PATHS), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_HOLDER", HOLDER), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_RENEW_URL", RENEW), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_LABEL_TEAM", "通関"), 0);
    return a;
}

/* The payload of alert in format and lang, parsed back; valid UTF-8 JSON or the test fails. */
static json_t *payload_in(enum kigen_webhook_format format, enum kigen_language lang,
                          const struct kigen_alert *alert)
{
    json_error_t error;
    char *body = NULL;
    size_t len = 0;
    json_t *j;

    assert_int_equal(kigen_webhook_payload(format, lang, alert, &body, &len), 0);
    assert_int_equal(len, strlen(body));
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &error);
    if (!j)
        fail_msg("not JSON (%s): %s", error.text, body);
    free(body);
    return j;
}

static const char *str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    if (!json_is_string(v))
        fail_msg("'%s' is not a string", key);
    return json_string_value(v);
}

static json_t *payload(enum kigen_webhook_format format, const struct kigen_alert *alert)
{
    return payload_in(format, KIGEN_LANGUAGE_EN, alert);
}

/* Japanese labels for people; the json format, for programs, the same in both languages. */
static void test_japanese_labels_and_the_same_json(void **state)
{
    struct kigen_alert *a = expired_alert();
    json_t *j = payload_in(KIGEN_WEBHOOK_SLACK, KIGEN_LANGUAGE_JA, a), *en, *ja;

    assert_non_null(strstr(str(j, "text"), "\nイベント: cert.expired\n"));
    assert_non_null(strstr(str(j, "text"), "\n有効期限: 2026-11-20T00:00:00Z\n"));
    assert_non_null(strstr(str(j, "text"), "\nSHA-256: " SHA));
    json_decref(j);
    en = payload_in(KIGEN_WEBHOOK_JSON, KIGEN_LANGUAGE_EN, a);
    ja = payload_in(KIGEN_WEBHOOK_JSON, KIGEN_LANGUAGE_JA, a);
    assert_true(json_equal(en, ja));
    json_decref(en);
    json_decref(ja);
    kigen_alert_free(a);
}

static void test_slack_text_has_message_and_facts(void **state)
{
    struct kigen_alert *a = expired_alert();
    json_t *j = payload(KIGEN_WEBHOOK_SLACK, a);
    const char *text = str(j, "text");

    assert_int_equal(json_object_size(j), 1);
    /* The message first, with Slack's three control characters escaped. */
    assert_string_equal(text, "証明書の有効期限が切れました: renew &lt;now&gt; &amp; re-issue\n"
                              "Event: cert.expired\n"
                              "Subject: " SUBJECT "\n"
                              "Holder: 山田 太郎 &lt;yamada@example.co.jp&gt;\n"
                              "Not after: 2026-11-20T00:00:00Z\n"
                              "Days left: -3\n"
                              "Renew at: https://cert.nac.naccs.jp/NACCSClientCA/pages/renew/"
                              "index-iOS.jsp?s=Sitel&amp;lan=ja\n"
                              "Paths: " PATHS "\n"
                              "SHA-256: " SHA);
    json_decref(j);
    kigen_alert_free(a);
}

static void test_slack_leaves_out_missing_facts(void **state)
{
    struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_PROBE_DOWN, "Probe web is down");
    json_t *j;

    assert_non_null(a);
    assert_int_equal(kigen_alert_add(a, "KIGEN_PROBE", "webnaccs"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_HOST", "web-prod.nac.naccs.jp"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_PORT", "443"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_ERROR", "connect_refused"), 0);
    j = payload(KIGEN_WEBHOOK_SLACK, a);
    assert_string_equal(str(j, "text"), "Probe web is down\nEvent: probe.down\nProbe: webnaccs\n"
                                        "Host: web-prod.nac.naccs.jp\nPort: 443\n"
                                        "Error: connect_refused");
    json_decref(j);
    kigen_alert_free(a);
}

static void test_teams_is_an_adaptive_card_message(void **state)
{
    struct kigen_alert *a = expired_alert();
    json_t *j = payload(KIGEN_WEBHOOK_TEAMS, a);
    json_t *atts, *att, *card, *body, *title, *facts, *fact;
    static const char *const want[][2] = {
        { "Event", "cert.expired" }, { "Subject", SUBJECT },
        { "Holder", HOLDER },        { "Not after", "2026-11-20T00:00:00Z" },
        { "Days left", "-3" },       { "Renew at", RENEW },
        { "Paths", PATHS },          { "SHA-256", SHA },
    };

    assert_string_equal(str(j, "type"), "message");
    atts = json_object_get(j, "attachments");
    assert_true(json_is_array(atts));
    assert_int_equal(json_array_size(atts), 1);
    att = json_array_get(atts, 0);
    assert_string_equal(str(att, "contentType"), "application/vnd.microsoft.card.adaptive");
    assert_true(json_is_null(json_object_get(att, "contentUrl")));
    card = json_object_get(att, "content");
    assert_string_equal(str(card, "$schema"), "http://adaptivecards.io/schemas/adaptive-card.json");
    assert_string_equal(str(card, "type"), "AdaptiveCard");
    assert_string_equal(str(card, "version"), "1.4");
    body = json_object_get(card, "body");
    assert_int_equal(json_array_size(body), 2);
    title = json_array_get(body, 0);
    assert_string_equal(str(title, "type"), "TextBlock");
    assert_string_equal(str(title, "text"), MESSAGE); /* no Slack escaping here */
    assert_true(json_is_true(json_object_get(title, "wrap")));
    facts = json_object_get(json_array_get(body, 1), "facts");
    assert_string_equal(str(json_array_get(body, 1), "type"), "FactSet");
    assert_int_equal(json_array_size(facts), sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        fact = json_array_get(facts, i);
        assert_int_equal(json_object_size(fact), 2);
        assert_string_equal(str(fact, "title"), want[i][0]);
        assert_string_equal(str(fact, "value"), want[i][1]);
    }
    json_decref(j);
    kigen_alert_free(a);
}

static void test_json_has_every_field_by_name(void **state)
{
    struct kigen_alert *a = expired_alert();
    json_t *j = payload(KIGEN_WEBHOOK_JSON, a);

    assert_string_equal(str(j, "event"), "cert.expired");
    assert_true(json_is_integer(json_object_get(j, "priority")));
    assert_int_equal(json_integer_value(json_object_get(j, "priority")), 3);
    assert_string_equal(str(j, "message"), MESSAGE);
    assert_string_equal(str(j, "message_id"), kigen_event_message_id(KIGEN_EVENT_CERT_EXPIRED));
    /* Every field, KIGEN_EVENT first among them, each a string as the exec hook gets it. */
    assert_int_equal(json_object_size(j), 4 + a->n_fields);
    for (size_t i = 0; i < a->n_fields; i++)
        assert_string_equal(str(j, a->fields[i].name), a->fields[i].value);
    assert_string_equal(str(j, "KIGEN_EVENT"), "cert.expired");
    assert_string_equal(str(j, "KIGEN_SUBJECT"), SUBJECT);
    assert_string_equal(str(j, "KIGEN_LABEL_TEAM"), "通関");
    assert_string_equal(str(j, "KIGEN_RENEW_URL"), RENEW);
    json_decref(j);
    kigen_alert_free(a);
}

/* A subject in Latin-1, truncated UTF-8 and an encoded surrogate: U+FFFD each, valid JSON. */
static void test_invalid_utf8_becomes_replacement_characters(void **state)
{
    struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_CERT_CRITICAL, "ok");
    json_t *j;

    assert_non_null(a);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SUBJECT", "CN=Jos\xe9 \xe5\xb1 \xed\xa0\x80 山"), 0);
    for (int f = KIGEN_WEBHOOK_SLACK; f <= KIGEN_WEBHOOK_JSON; f++) {
        j = payload((enum kigen_webhook_format)f, a);
        json_decref(j);
    }
    j = payload(KIGEN_WEBHOOK_JSON, a);
    assert_string_equal(str(j, "KIGEN_SUBJECT"), "CN=Jos\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
                                                 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd 山");
    json_decref(j);
    kigen_alert_free(a);
}

static void test_unknown_format_is_refused(void **state)
{
    struct kigen_alert *a = expired_alert();
    char *body = NULL;
    size_t len = 0;

    assert_int_equal(
        kigen_webhook_payload((enum kigen_webhook_format)42, KIGEN_LANGUAGE_EN, a, &body, &len),
        -EINVAL);
    assert_null(body);
    kigen_alert_free(a);
}

static void test_url_must_be_https_and_is_never_quoted(void **state)
{
    static const char *const bad[] = {
        "http://127.0.0.1/hooks/SECRET-TOKEN",
        "ftp://example.com/SECRET-TOKEN",
        "SECRET-TOKEN",
        "https://",
        "https:// SECRET-TOKEN",
        "",
    };
    char err[128];

    assert_int_equal(
        kigen_webhook_check_url("https://hooks.slack.com/services/T0/B0/X", err, sizeof(err)), 0);
    assert_int_equal(
        kigen_webhook_check_url("https://127.0.0.1:8443/hooks/x?a=1", err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(kigen_webhook_check_url(bad[i], err, sizeof(err)), -EINVAL);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "SECRET"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slack_text_has_message_and_facts),
        cmocka_unit_test(test_japanese_labels_and_the_same_json),
        cmocka_unit_test(test_slack_leaves_out_missing_facts),
        cmocka_unit_test(test_teams_is_an_adaptive_card_message),
        cmocka_unit_test(test_json_has_every_field_by_name),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement_characters),
        cmocka_unit_test(test_unknown_format_is_refused),
        cmocka_unit_test(test_url_must_be_https_and_is_never_quoted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
