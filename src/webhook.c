/*
 * Webhook bodies, built with jansson: every string goes through json_string(), so quoting and
 * escaping are jansson's, never ours. Slack's own markup is the one thing done here: its text
 * treats &, < and > as control characters (links are <url|label>) and wants them as &amp;
 * &lt; &gt; (api.slack.com, "Formatting text for app surfaces", escaping). The CommonMark
 * servers (Mattermost, Rocket.Chat) read those entities back as the characters.
 */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "i18n.h"

/* The facts a person needs, in the order they read them; fields an alert lacks are left out. */
static const struct {
    const char *field;
    const char *label;
} facts[] = {
    { "KIGEN_EVENT", N_("Event") },         { "KIGEN_SUBJECT", N_("Subject") },
    { "KIGEN_HOLDER", N_("Holder") },       { "KIGEN_NOT_AFTER", N_("Not after") },
    { "KIGEN_DAYS_LEFT", N_("Days left") }, { "KIGEN_RENEW_URL", N_("Renew at") },
    { "KIGEN_PATHS", N_("Paths") },         { "KIGEN_PROBE", N_("Probe") },
    { "KIGEN_HOST", N_("Host") },           { "KIGEN_PORT", N_("Port") },
    { "KIGEN_ERROR", N_("Error") },         { "KIGEN_SHA256", "SHA-256" },
};

#define N_FACTS (sizeof(facts) / sizeof(facts[0]))

/* The length of the valid UTF-8 sequence at s (RFC 3629 §4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* A JSON string of s, each byte that is not part of valid UTF-8 replaced by U+FFFD. */
static json_t *text(const char *s)
{
    json_t *j = json_string(s);
    const unsigned char *p = (const unsigned char *)s;
    char *clean, *q;

    if (j || !s)
        return j;
    clean = malloc(strlen(s) * 3 + 1);
    if (!clean)
        return NULL;
    for (q = clean; *p;) {
        size_t n = utf8_len(p);

        if (n == 0) {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3;
            p++;
            continue;
        }
        memcpy(q, p, n);
        q += n;
        p += n;
    }
    *q = '\0';
    j = json_string(clean);
    free(clean);
    return j;
}

static void put_slack_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else
            fputc(*s, f);
    }
}

/* {"text": "MESSAGE\nLabel: value\n..."} */
static json_t *slack(enum kigen_language lang, const struct kigen_alert *alert)
{
    json_t *result = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return NULL;
    put_slack_escaped(f, alert->message);
    for (size_t i = 0; i < N_FACTS; i++) {
        const char *v = kigen_alert_get(alert, facts[i].field);

        if (!v || !*v)
            continue;
        fprintf(f, "\n%s: ", kigen_tr(lang, facts[i].label));
        put_slack_escaped(f, v);
    }
    /* json_pack() takes the reference of an "o" argument, and releases it when it fails. */
    if (fclose(f) == 0)
        result = json_pack("{s:o}", "text", text(buf));
    free(buf);
    return result;
}

/*
 * A Teams Workflows message (learn.microsoft.com, "Create incoming webhooks with Workflows
 * for Microsoft Teams"): an attachment of type application/vnd.microsoft.card.adaptive
 * holding an Adaptive Card 1.4 (adaptivecards.io): a TextBlock and a FactSet.
 */
static json_t *teams(enum kigen_language lang, const struct kigen_alert *alert)
{
    json_t *list = json_array();

    for (size_t i = 0; list && i < N_FACTS; i++) {
        const char *v = kigen_alert_get(alert, facts[i].field);

        if (!v || !*v)
            continue;
        if (json_array_append_new(list,
                                  json_pack("{s:s, s:o}", "title", kigen_tr(lang, facts[i].label),
                                            "value", text(v))) < 0) {
            json_decref(list);
            return NULL;
        }
    }
    return json_pack("{s:s, s:[{s:s, s:n, s:{s:s, s:s, s:s, s:[{s:s, s:o, s:s, s:s, s:b}, "
                     "{s:s, s:o}]}}]}",
                     "type", "message", "attachments", "contentType",
                     "application/vnd.microsoft.card.adaptive", "contentUrl", "content", "$schema",
                     "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard",
                     "version", "1.4", "body", "type", "TextBlock", "text", text(alert->message),
                     "weight", "Bolder", "size", "Medium", "wrap", 1, "type", "FactSet", "facts",
                     list);
}

/* {"event", "priority", "message", "message_id", then every KIGEN_* field}. */
static json_t *plain(const struct kigen_alert *alert)
{
    const char *message_id = kigen_event_message_id(alert->event);
    json_t *root = json_pack("{s:s, s:i, s:o, s:s}", "event", kigen_event_name(alert->event),
                             "priority", alert->priority, "message", text(alert->message),
                             "message_id", message_id ? message_id : "");

    for (size_t i = 0; root && i < alert->n_fields; i++) {
        if (json_object_set_new(root, alert->fields[i].name, text(alert->fields[i].value)) < 0) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

int kigen_webhook_payload(enum kigen_webhook_format format, enum kigen_language lang,
                          const struct kigen_alert *alert, char **ret_body, size_t *ret_len)
{
    json_t *j;
    char *s;

    switch (format) {
    case KIGEN_WEBHOOK_SLACK:
        j = slack(lang, alert);
        break;
    case KIGEN_WEBHOOK_TEAMS:
        j = teams(lang, alert);
        break;
    case KIGEN_WEBHOOK_JSON:
        j = plain(alert);
        break;
    default:
        return -EINVAL;
    }
    if (!j)
        return -ENOMEM;
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return -ENOMEM;
    *ret_len = strlen(s);
    *ret_body = s;
    return 0;
}

int kigen_webhook_check_url(const char *url, char *errbuf, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    const char *why = NULL;

    if (!u)
        why = "out of memory";
    else if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        why = "not a URL";
    else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             strcmp(scheme, "https") != 0)
        why = "not an https:// URL";
    else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        why = "no host";
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    if (why) {
        snprintf(errbuf, errlen, "%s", why);
        return -EINVAL;
    }
    return 0;
}
