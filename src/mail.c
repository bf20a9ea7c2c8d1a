/*
 * Mail composition (mail.h) with GMime 3. The headers and the MIME structure are GMime's:
 * RFC 2047 encoded words for the Subject and display names, RFC 5322 address lists, and a
 * text/plain part whose transfer encoding GMime chooses for 7-bit transport
 * (g_mime_object_encode: quoted-printable for UTF-8 text). What people read is built here
 * from the table of strings below.
 */
#include "mail.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cert.h"
#include "i18n.h"
#include "timeutil.h"

/* ---- every text people read, English msgids of po/kigen.pot, translated by kigen_tr() ---- */

static const char *const event_titles[KIGEN_EVENT_COUNT] = {
    [KIGEN_EVENT_CERT_THRESHOLD] = N_("Certificate expires soon"),
    [KIGEN_EVENT_CERT_RENEWAL_OPEN] = N_("Renewal open"),
    [KIGEN_EVENT_CERT_CRITICAL] = N_("Certificate expires within days"),
    [KIGEN_EVENT_CERT_EXPIRED] = N_("Certificate expired"),
    [KIGEN_EVENT_CERT_RENEWED] = N_("Certificate renewed"),
    [KIGEN_EVENT_CERT_GONE] = N_("Certificate gone"),
    [KIGEN_EVENT_SCAN_ERROR] = N_("File cannot be read"),
    [KIGEN_EVENT_PROBE_DOWN] = N_("Host unreachable"),
    [KIGEN_EVENT_PROBE_UP] = N_("Host reachable again"),
    [KIGEN_EVENT_CONFIG_RELOADED] = N_("Configuration reloaded"),
    [KIGEN_EVENT_CONFIG_REJECTED] = N_("Configuration rejected"),
    [KIGEN_EVENT_CERT_REVOKED] = N_("Certificate revoked"),
    [KIGEN_EVENT_CRL_STALE] = N_("CRL out of date"),
};

#define T_SUBJECT_PREFIX "[kigen] "
#define T_CERTIFICATE    N_("Certificate:   ")
#define T_ISSUER         N_("Issuer:        ")
#define T_HOLDER         N_("Holder:        ")
#define T_DEADLINE       N_("Valid until:   ")
#define T_RENEWAL_OPENS  N_("Renewal opens: ")
#define T_DAYS_LEFT      N_("Days left:     ")
#define T_HOST           N_("Host:          ")
#define T_TODO           N_("What to do")
#define T_RENEW_AT       N_("Renew here: ")
#define T_REISSUE        N_("The certificate has expired and must be re-issued: ")
/* TRANSLATORS: a sentence (KIGEN_MAINTENANCE: "Mind that ...") and its full stop. */
#define T_MAINTENANCE    N_("%s.\n")
#define T_LOCATIONS      N_("Where it is kept")
#define T_FOOTER         N_("Sent by kigen on %s (event %s%s%s).")
#define T_DIGEST_SUBJECT N_("[kigen] Daily summary: %zu open items")
#define T_DIGEST_INTRO   N_("These certificates, files and hosts need attention, soonest first.")
#define T_DIGEST_DUE     N_("  %5lld days  %s  %s%s%s%s\n    %s\n")

static const char *const digest_sections[] = {
    [KIGEN_DIGEST_EXPIRED] = N_("Expired"),
    [KIGEN_DIGEST_CRITICAL] = N_("Expiring within days"),
    [KIGEN_DIGEST_RENEWAL_OPEN] = N_("Renewal window open"),
    [KIGEN_DIGEST_UNREADABLE] = N_("Files that cannot be read"),
    [KIGEN_DIGEST_PROBE_DOWN] = N_("Hosts unreachable"),
    [KIGEN_DIGEST_REVOKED] = N_("Revoked: to be re-issued"),
};

/* The place of a kind's section in the digest: revoked first, then the enum's order. */
static int digest_rank(enum kigen_digest_kind kind)
{
    return kind == KIGEN_DIGEST_REVOKED ? -1 : (int)kind;
}

static bool is_certificate_item(enum kigen_digest_kind kind)
{
    return kind <= KIGEN_DIGEST_RENEWAL_OPEN || kind == KIGEN_DIGEST_REVOKED;
}

/* ---- a growing text ---- */

struct text {
    char *s;
    size_t len, cap;
    bool is_failed;
};

static void add(struct text *t, const char *s, size_t n)
{
    if (t->is_failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        char *p;

        while (cap < t->len + n + 1)
            cap *= 2;
        p = realloc(t->s, cap);
        if (!p) {
            t->is_failed = true;
            return;
        }
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void adds(struct text *t, const char *s)
{
    add(t, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void addf(struct text *t, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(buf)) {
        add(t, buf, (size_t)n);
        return;
    }
    /* Longer than the buffer: format again into a fitting one. */
    char *big = malloc((size_t)n + 1);

    if (!big) {
        t->is_failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    add(t, big, (size_t)n);
    free(big);
}

/* Each line of s, indented. */
static void add_indented(struct text *t, const char *indent, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, "\n");

        adds(t, indent);
        add(t, s, n);
        adds(t, "\n");
        s += n + (s[n] == '\n');
    }
}

/* ---- pieces ---- */

static void init_once(void)
{
    static bool is_done;

    if (!is_done) {
        g_mime_init();
        is_done = true;
    }
}

/* The first CN of an RFC 2253 subject (kigen_dn_first_cn), or the whole of it when none. */
static char *common_name(const char *subject)
{
    char *cn = malloc(strlen(subject) + 1);

    if (cn && !kigen_dn_first_cn(subject, cn)) {
        free(cn);
        cn = strdup(subject);
    }
    return cn;
}

static bool is_cert_event(enum kigen_event event)
{
    return event <= KIGEN_EVENT_CERT_GONE;
}

/* An RFC 3339 time of the alert, for people in lang and the display zone (or as written). */
static void format_time(const struct kigen_mail_ctx *ctx, enum kigen_language lang,
                        const char *rfc3339, char *out, size_t len)
{
    int64_t when;

    if (kigen_time_parse(rfc3339, &when) < 0)
        snprintf(out, len, "%s", rfc3339);
    else if (ctx->tz)
        kigen_i18n_time(lang, ctx->tz, when, out, len);
    else
        kigen_time_format_utc(when, out);
}

static void add_time(struct text *t, const struct kigen_mail_ctx *ctx, enum kigen_language lang,
                     const char *label, const char *rfc3339)
{
    char shown[KIGEN_TZ_FORMAT_LEN];

    if (!rfc3339 || !*rfc3339)
        return;
    format_time(ctx, lang, rfc3339, shown, sizeof(shown));
    addf(t, "%s%s\n", label, shown);
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    if (!EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL))
        memset(md, 0, sizeof(md));
    kigen_bytes_to_hex(md, sizeof(md), out);
}

/*
 * The headers every message has: From, Date, a Message-ID made of key, what (a sha256 or
 * "") and the host, Auto-Submitted, and the text body.
 */
static GMimeMessage *message_new(const struct kigen_mail_ctx *ctx, const char *subject,
                                 const char *key, const char *what, const char *body)
{
    GMimeMessage *m = g_mime_message_new(TRUE);
    GMimeTextPart *part = g_mime_text_part_new_with_subtype("plain");
    GDateTime *date = g_date_time_new_from_unix_utc(ctx->date);
    char id[65], *idsrc = NULL;

    if (ctx->from && *ctx->from) {
        InternetAddressList *from = internet_address_list_parse(NULL, ctx->from);

        if (from) {
            internet_address_list_append(g_mime_message_get_from(m), from);
            g_object_unref(from);
        }
    }
    g_mime_message_set_subject(m, subject, "utf-8");
    if (date) {
        g_mime_message_set_date(m, date);
        g_date_time_unref(date);
    }
    /* Deterministic: a retry after a restart sends the same Message-ID. */
    if (asprintf(&idsrc, "%s\n%s", key, what) >= 0) {
        char mid[160];

        sha256_hex(idsrc, id);
        snprintf(mid, sizeof(mid), "kigen.%.32s@%s", id,
                 ctx->host && *ctx->host ? ctx->host : "localhost");
        g_mime_message_set_message_id(m, mid);
        free(idsrc);
    }
    g_mime_object_set_header((GMimeObject *)m, "Auto-Submitted", "auto-generated", NULL);
    g_mime_text_part_set_text(part, body);
    g_mime_text_part_set_charset(part, "utf-8");
    g_mime_object_encode((GMimeObject *)part, GMIME_ENCODING_CONSTRAINT_7BIT);
    g_mime_message_set_mime_part(m, (GMimeObject *)part);
    g_object_unref(part);
    return m;
}

static int serialize(GMimeMessage *m, char **ret_text, size_t *ret_len)
{
    GMimeFormatOptions *fo = g_mime_format_options_new();
    char *s;

    g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_UNIX);
    s = g_mime_object_to_string((GMimeObject *)m, fo);
    g_mime_format_options_free(fo);
    if (!s)
        return -ENOMEM;
    /* Handed on as malloc'd memory: g_free and free must not be mixed. */
    *ret_len = strlen(s);
    *ret_text = strdup(s);
    g_free(s);
    return *ret_text ? 0 : -ENOMEM;
}

static void add_admins(GMimeMessage *m, GMimeAddressType type, const struct kigen_mail_ctx *ctx)
{
    for (size_t i = 0; i < ctx->n_admins; i++)
        g_mime_message_add_mailbox(m, type, NULL, ctx->admins[i]);
}

/* ---- alerts ---- */

/*
 * A holder's mail in another language than the alert's message (their register row's): the
 * message is replaced by this first sentence in theirs; shown is the end of validity.
 */
static void add_holder_lead(struct text *t, enum kigen_language lang, enum kigen_event event,
                            const char *shown)
{
    switch (event) {
    case KIGEN_EVENT_CERT_THRESHOLD:
        addf(t, _(lang, "The certificate expires on %s. Please plan its renewal."), shown);
        break;
    case KIGEN_EVENT_CERT_RENEWAL_OPEN:
        addf(t, _(lang, "The renewal period of the certificate has begun. Please renew it by %s."),
             shown);
        break;
    case KIGEN_EVENT_CERT_CRITICAL:
        addf(t, _(lang, "The certificate expires on %s. Please renew it now."), shown);
        break;
    case KIGEN_EVENT_CERT_EXPIRED:
        addf(t, _(lang, "The certificate expired on %s. It must be re-issued."), shown);
        break;
    case KIGEN_EVENT_CERT_RENEWED:
        addf(t, _(lang, "The certificate was renewed; it is valid until %s."), shown);
        break;
    default:
        addf(t, _(lang, "The certificate (valid until %s) is no longer found."), shown);
        break;
    }
    adds(t, "\n");
}

static void alert_body(struct text *t, const struct kigen_mail_ctx *ctx, enum kigen_language lang,
                       const struct kigen_alert *a)
{
    const char *subject = kigen_alert_get(a, "KIGEN_SUBJECT");
    const char *issuer = kigen_alert_get(a, "KIGEN_ISSUER");
    const char *holder = kigen_alert_get(a, "KIGEN_HOLDER");
    const char *email = kigen_alert_get(a, "KIGEN_HOLDER_EMAIL");
    const char *days = kigen_alert_get(a, "KIGEN_DAYS_LEFT");
    const char *url = kigen_alert_get(a, "KIGEN_RENEW_URL");
    const char *steps = kigen_alert_get(a, "KIGEN_INSTRUCTIONS");
    const char *reissue = kigen_alert_get(a, "KIGEN_REISSUE_NOTE");
    const char *maint = kigen_alert_get(a, "KIGEN_MAINTENANCE");
    const char *paths = kigen_alert_get(a, "KIGEN_PATHS");
    const char *host = kigen_alert_get(a, "KIGEN_HOST");
    const char *port = kigen_alert_get(a, "KIGEN_PORT");
    const char *sha = kigen_alert_get(a, "KIGEN_SHA256");
    const char *not_after = kigen_alert_get(a, "KIGEN_NOT_AFTER");
    bool is_expired = a->event == KIGEN_EVENT_CERT_EXPIRED;
    /* The message is in ctx->language; a Japanese one already names the maintenance. */
    bool is_other_language = lang != ctx->language;
    bool is_maint_said = !is_other_language && lang != KIGEN_LANGUAGE_EN;
    bool is_todo = (url && !is_expired) || (steps && !is_expired) || (reissue && is_expired) ||
                   (maint && !is_maint_said);

    if (is_other_language && is_cert_event(a->event) && not_after) {
        char shown[KIGEN_TZ_FORMAT_LEN];

        format_time(ctx, lang, not_after, shown, sizeof(shown));
        add_holder_lead(t, lang, a->event, shown);
    } else {
        add_indented(t, "", a->message);
    }
    adds(t, "\n");
    if (subject)
        addf(t, "%s%s\n", kigen_tr(lang, T_CERTIFICATE), subject);
    if (issuer && *issuer)
        addf(t, "%s%s\n", kigen_tr(lang, T_ISSUER), issuer);
    if (holder || email)
        addf(t, "%s%s%s%s%s\n", kigen_tr(lang, T_HOLDER), holder ? holder : "",
             holder && email ? " <" : "", email ? email : "", holder && email ? ">" : "");
    add_time(t, ctx, lang, kigen_tr(lang, T_DEADLINE), not_after);
    if (!is_expired)
        add_time(t, ctx, lang, kigen_tr(lang, T_RENEWAL_OPENS),
                 kigen_alert_get(a, "KIGEN_RENEWAL_OPENS"));
    if (days)
        addf(t, "%s%s\n", kigen_tr(lang, T_DAYS_LEFT), days);
    if (host)
        addf(t, "%s%s%s%s\n", kigen_tr(lang, T_HOST), host, port ? ":" : "", port ? port : "");
    if (is_todo) {
        addf(t, "\n%s\n\n", kigen_tr(lang, T_TODO));
        if (url && !is_expired)
            addf(t, "%s%s\n", kigen_tr(lang, T_RENEW_AT), url);
        if (steps && !is_expired)
            add_indented(t, "", steps);
        if (reissue && is_expired)
            addf(t, "%s%s\n", kigen_tr(lang, T_REISSUE), reissue);
        /* KIGEN_MAINTENANCE is English; the engine said it again in the holder's language. */
        if (maint && !is_maint_said)
            addf(t, kigen_tr(lang, T_MAINTENANCE),
                 is_other_language && a->holder_maintenance ? a->holder_maintenance : maint);
    }
    if (paths && *paths) {
        addf(t, "\n%s\n\n", kigen_tr(lang, T_LOCATIONS));
        add_indented(t, "  ", paths);
    }
    adds(t, "\n-- \n");
    addf(t, kigen_tr(lang, T_FOOTER), ctx->host ? ctx->host : "localhost",
         kigen_event_name(a->event), sha ? ", sha256 " : "", sha ? sha : "");
    adds(t, "\n");
}

int kigen_mail_compose(const struct kigen_mail_ctx *ctx, const struct kigen_alert *alert,
                       const char *key, char **ret_text, size_t *ret_len)
{
    const char *holder = kigen_alert_get(alert, "KIGEN_HOLDER");
    const char *email = kigen_alert_get(alert, "KIGEN_HOLDER_EMAIL");
    const char *sha = kigen_alert_get(alert, "KIGEN_SHA256");
    const char *subject = kigen_alert_get(alert, "KIGEN_SUBJECT");
    const char *probe = kigen_alert_get(alert, "KIGEN_PROBE");
    const char *language = kigen_alert_get(alert, "KIGEN_LANGUAGE");
    bool is_holder = ctx->to_holders && email && *email && is_cert_event(alert->event);
    enum kigen_language lang = !is_holder || !language       ? ctx->language
                               : strcmp(language, "ja") == 0 ? KIGEN_LANGUAGE_JA
                                                             : KIGEN_LANGUAGE_EN;
    struct text body = { 0 }, subj = { 0 };
    GMimeMessage *m = NULL;
    char *cn = NULL;
    int r;

    if (!is_holder && ctx->n_admins == 0)
        return -ENODATA;
    init_once();
    adds(&subj, T_SUBJECT_PREFIX);
    adds(&subj, kigen_tr(lang, event_titles[alert->event]));
    if (holder && *holder && is_cert_event(alert->event)) {
        addf(&subj, ": %s", holder);
    } else if (subject && (cn = common_name(subject))) {
        addf(&subj, ": %s", cn);
    } else if (probe) {
        addf(&subj, ": %s", probe);
    }
    alert_body(&body, ctx, lang, alert);
    if (body.is_failed || subj.is_failed) {
        r = -ENOMEM;
        goto out;
    }
    m = message_new(ctx, subj.s, key, sha ? sha : "", body.s);
    if (is_holder) {
        g_mime_message_add_mailbox(m, GMIME_ADDRESS_TYPE_TO, holder, email);
        add_admins(m, GMIME_ADDRESS_TYPE_CC, ctx);
    } else {
        add_admins(m, GMIME_ADDRESS_TYPE_TO, ctx);
    }
    g_mime_object_set_header((GMimeObject *)m, "X-Kigen-Event", kigen_event_name(alert->event),
                             NULL);
    if (sha)
        g_mime_object_set_header((GMimeObject *)m, "X-Kigen-SHA256", sha, NULL);
    r = serialize(m, ret_text, ret_len);
out:
    if (m)
        g_object_unref(m);
    free(cn);
    free(body.s);
    free(subj.s);
    return r;
}

/* ---- the digest ---- */

static int by_kind_then_days(const void *a, const void *b)
{
    const struct kigen_digest_item *x = a, *y = b;

    if (x->kind != y->kind)
        return digest_rank(x->kind) < digest_rank(y->kind) ? -1 : 1;
    if (x->days_left != y->days_left)
        return x->days_left < y->days_left ? -1 : 1;
    return strcmp(x->what ? x->what : "", y->what ? y->what : "");
}

int kigen_mail_digest(const struct kigen_mail_ctx *ctx, struct kigen_digest_item *items, size_t n,
                      const char *key, char **ret_text, size_t *ret_len)
{
    const enum kigen_language lang = ctx->language;
    struct text body = { 0 }, subj = { 0 };
    GMimeMessage *m = NULL;
    int section = -1, r;

    if (n == 0 || ctx->n_admins == 0)
        return -ENODATA;
    init_once();
    qsort(items, n, sizeof(*items), by_kind_then_days);
    addf(&subj, kigen_tr(lang, T_DIGEST_SUBJECT), n);
    addf(&body, "%s\n", kigen_tr(lang, T_DIGEST_INTRO));
    for (size_t i = 0; i < n; i++) {
        const struct kigen_digest_item *it = &items[i];

        if ((int)it->kind != section) {
            section = it->kind;
            addf(&body, "\n%s\n\n", kigen_tr(lang, digest_sections[section]));
        }
        if (is_certificate_item(it->kind)) {
            char shown[KIGEN_TZ_FORMAT_LEN] = "";

            if (ctx->tz)
                kigen_i18n_time(lang, ctx->tz, it->not_after, shown, sizeof(shown));
            else
                kigen_time_format_utc(it->not_after, shown);
            addf(&body, kigen_tr(lang, T_DIGEST_DUE), (long long)it->days_left, shown,
                 it->what ? it->what : "", it->holder ? " (" : "", it->holder ? it->holder : "",
                 it->holder ? ")" : "", it->where ? it->where : "");
        } else {
            addf(&body, "  %s%s%s\n", it->what ? it->what : "", it->where ? ": " : "",
                 it->where ? it->where : "");
        }
    }
    adds(&body, "\n-- \n");
    addf(&body, kigen_tr(lang, T_FOOTER), ctx->host ? ctx->host : "localhost", "digest", "", "");
    adds(&body, "\n");
    if (body.is_failed || subj.is_failed) {
        r = -ENOMEM;
        goto out;
    }
    m = message_new(ctx, subj.s, key, "digest", body.s);
    add_admins(m, GMIME_ADDRESS_TYPE_TO, ctx);
    g_mime_object_set_header((GMimeObject *)m, "X-Kigen-Event", "digest", NULL);
    r = serialize(m, ret_text, ret_len);
out:
    if (m)
        g_object_unref(m);
    free(body.s);
    free(subj.s);
    return r;
}
