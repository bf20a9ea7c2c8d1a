/*
 * kigenctl: asks a running kigend over its status socket (SPEC §9) and shows the answer as
 * tables for people, or as is for scripts (--json).
 *
 * Exit status: status and list follow SPEC §6 over what they show (0 ok, 1 attention,
 * 2 critical or expired), so that they work as Nagios/Icinga checks; other commands exit 1
 * when the daemon refuses the request; 3 is a usage error or a daemon that cannot be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <wchar.h>

#include <jansson.h>

#include "config.h"
#include "duration.h"
#include "err.h"
#include "i18n.h"
#include "policy.h"
#include "timeutil.h"

#define EXIT_UNKNOWN   3 /* SPEC §6: usage error; here also "the daemon cannot be reached" */
#define DEFAULT_CONFIG "/etc/kigen/kigen.yaml"
#define DEFAULT_SOCKET "/run/kigen/kigen.sock"
#define MAX_ANSWER     (512u << 20) /* 100,000 certificates are about 40 MB */
#define TIMEOUT_S      60           /* of silence from the daemon */

struct options {
    const char *socket_path;
    const char *config_path;
    bool json;
    bool help;
    const char *state;
    const char *within;
    const char *keystore;
    const char *holder;
    const char *cmd;
    const char *sha256;
    enum kigen_language lang; /* of what is said to the user (LANG, LC_MESSAGES, LANGUAGE) */
};

/* How tables are drawn on this output. */
struct term {
    enum kigen_language lang; /* of headings and labels (LANG, LC_MESSAGES, LANGUAGE) */
    size_t width;             /* columns; 0: no limit (not a terminal) */
    bool colour;
    const char *ellipsis;
    size_t ellipsis_width;
};

struct command {
    const char *name;
    const char *synopsis;
    const char *help;
    /* Prints an {"ok":true} answer for people; 0, or -ENOMEM. */
    int (*show)(const struct options *o, const struct term *t, json_t *answer);
};

static const struct command *find_command(const char *name);

/* ---- output helpers ---- */

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static long long jint(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/*
 * An RFC 3339 time of the answer in the configured zone, as people reading lang write it
 * (i18n.h); the text as is if it is not one.
 */
static void local_date(enum kigen_language lang, const char *rfc3339, char *out, size_t outlen)
{
    int64_t t;

    if (kigen_time_parse(rfc3339, &t) == 0)
        kigen_i18n_time(lang, NULL, t, out, outlen);
    else
        snprintf(out, outlen, "%s", rfc3339);
}

/*
 * A state of the answer ("renewal_open", "down") for people: English shows the SPEC name as
 * the JSON has it, other languages their words for it. Unknown names are shown as they are.
 */
static const char *state_label(const struct term *t, const char *state)
{
    static const struct {
        const char *name, *label;
    } labels[] = {
        { "ok", N_("ok") },
        { "renewal_open", N_("renewal open") },
        { "critical", N_("critical") },
        { "expired", N_("expired") },
        { "not_yet_valid", N_("not yet valid") },
        { "revoked", N_("revoked") },
        /* probes (SPEC §8) */
        { "up", N_("up") },
        { "down", N_("down") },
        { "maintenance", N_("maintenance") },
        { "unknown", N_("unknown") },
    };

    if (t->lang == KIGEN_LANGUAGE_EN)
        return state;
    for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
        if (strcmp(labels[i].name, state) == 0)
            return kigen_tr(t->lang, labels[i].label);
    return state;
}

static const char *state_colour(const struct term *t, const char *state)
{
    if (!t->colour)
        return "";
    if (strcmp(state, "ok") == 0)
        return "\033[32m";
    if (strcmp(state, "renewal_open") == 0 || strcmp(state, "not_yet_valid") == 0)
        return "\033[33m";
    if (strcmp(state, "critical") == 0 || strcmp(state, "expired") == 0)
        return "\033[31m";
    if (strcmp(state, "revoked") == 0)
        return "\033[1;31m"; /* bold: it cannot be renewed, only removed (SPEC §13) */
    return "";
}

static const char *reset(const struct term *t)
{
    return t->colour ? "\033[0m" : "";
}

/* The width of the character at s (*ret_len bytes); a byte that is no character counts 1. */
static size_t char_width(const char *s, size_t *ret_len)
{
    mbstate_t st = { 0 };
    wchar_t wc;
    size_t n = mbrtowc(&wc, s, MB_CUR_MAX, &st);
    int w;

    if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
        *ret_len = 1;
        return 1;
    }
    *ret_len = n;
    w = wcwidth(wc);
    return w < 0 ? 1 : (size_t)w;
}

static size_t text_width(const char *s)
{
    size_t w = 0, n;

    while (*s) {
        w += char_width(s, &n);
        s += n;
    }
    return w;
}

/*
 * Prints s in a cell of width columns (0: as is): cut with an ellipsis at its end, or at its
 * start when keep_end (a path's file name matters most), and padded when pad.
 */
static void cell(const struct term *t, const char *s, size_t width, bool keep_end, bool pad)
{
    size_t w = text_width(s), n, cw;

    if (width == 0 || w <= width) {
        fputs(s, stdout);
        for (; pad && w < width; w++)
            putchar(' ');
        return;
    }
    if (width <= t->ellipsis_width) {
        for (size_t i = 0; i < width; i++)
            putchar('.');
        return;
    }
    if (keep_end) {
        /* Drop characters from the start until the rest fits after the ellipsis. */
        while (*s && w > width - t->ellipsis_width) {
            w -= char_width(s, &n);
            s += n;
        }
        fputs(t->ellipsis, stdout);
        fputs(s, stdout);
        w += t->ellipsis_width;
    } else {
        const char *p = s;

        w = 0;
        while (*p && w + (cw = char_width(p, &n)) <= width - t->ellipsis_width) {
            w += cw;
            p += n;
        }
        fwrite(s, 1, (size_t)(p - s), stdout);
        fputs(t->ellipsis, stdout);
        w += t->ellipsis_width;
    }
    for (; pad && w < width; w++)
        putchar(' ');
}

/* ---- status ---- */

static const char *verdict(const struct term *t, int status)
{
    return status == 0   ? _(t->lang, "OK")
           : status == 1 ? _(t->lang, "ATTENTION")
                         : _(t->lang, "CRITICAL");
}

/* "  label" padded to 16 columns (never cut) and a space: the status lines' heading. */
static void heading(const struct term *t, const char *colour, const char *label)
{
    printf("  %s%s", colour, label);
    for (size_t w = text_width(label); w < 16; w++)
        putchar(' ');
    printf("%s ", *colour ? reset(t) : "");
}

static int show_status(const struct options *o, const struct term *t, json_t *a)
{
    const enum kigen_language lang = t->lang;
    json_t *s = json_object_get(a, "summary"), *d;
    long long status = jint(a, "exit_status");
    const char *name;
    const char *colour = status == 0   ? state_colour(t, "ok")
                         : status == 1 ? state_colour(t, "renewal_open")
                                       : state_colour(t, "expired");
    char date[64];
    static const struct {
        const char *key, *label;
    } rows[] = {
        { "ok", N_("ok") },
        { "renewal_open", N_("renewal open") },
        { "critical", N_("critical") },
        { "expired", N_("expired") },
        { "not_yet_valid", N_("not yet valid") },
    };

    printf(_(lang, "kigend on %s: %s%s%s\n"), o->socket_path, colour, verdict(t, (int)status),
           reset(t));
    heading(t, "", _(lang, "certificates"));
    printf(_(lang, "%lld (%lld unique) in %lld keystores\n"), jint(s, "certificates"),
           jint(s, "unique"), jint(a, "keystores"));
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long long n = jint(s, rows[i].key);

        heading(t, n ? state_colour(t, rows[i].key) : "", kigen_tr(lang, rows[i].label));
        printf("%lld\n", n);
    }
    heading(t, "", _(lang, "unreadable files"));
    printf("%lld\n", jint(s, "errors"));
    heading(t, "", _(lang, "probes down"));
    printf(_(lang, "%lld of %lld\n"), jint(s, "probes_down"), jint(a, "probe_targets"));
    heading(t, "", _(lang, "last scan"));
    if (json_is_string(json_object_get(a, "last_scan"))) {
        local_date(lang, jstr(a, "last_scan"), date, sizeof(date));
        printf(_(lang, "%s, %.2f s (%lld scans; %lld files read, %lld unchanged)%s\n"), date,
               json_number_value(json_object_get(a, "scan_seconds")), jint(a, "scans"),
               jint(a, "files_read"), jint(a, "files_unchanged"),
               json_is_true(json_object_get(a, "scanning")) ? _(lang, "; scanning now") : "");
    } else {
        printf("%s\n", _(lang, "none yet; scanning now"));
    }
    json_object_foreach(json_object_get(a, "deliveries"), name, d)
    {
        long long failed = jint(d, "failed");
        char label[300];

        snprintf(label, sizeof(label), _(lang, "%s delivery"), name);
        heading(t, "", label);
        printf(_(lang, "%lld pending, %s%lld given up%s\n"), jint(d, "pending"),
               failed ? state_colour(t, "expired") : "", failed, failed ? reset(t) : "");
    }
    return 0;
}

/*
 * SPEC §6 over a list answer: what kigen_view_exit_status() computes in the daemon, from its
 * summary and its CRL files (a stale one needs attention, SPEC §13).
 */
static int list_status(json_t *a)
{
    json_t *s = json_object_get(a, "summary"), *c;
    size_t i;

    if (jint(s, "critical") || jint(s, "expired") || jint(s, "revoked"))
        return 2;
    if (jint(s, "renewal_open") || jint(s, "not_yet_valid") || jint(s, "errors") ||
        jint(s, "probes_down"))
        return 1;
    json_array_foreach(json_object_get(a, "crls"), i, c)
    {
        if (strcmp(jstr(c, "state"), "stale") == 0)
            return 1;
    }
    return 0;
}

/* ---- list ---- */

struct row {
    const char *state;
    char days[24];
    char date[64];
    const char *keystore;
    const char *holder; /* the holder's name, "-" when none is known */
    char *location;
    const char *subject;
};

static size_t max_sz(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* An unreadable file's kind of error for people (err.h): the SPEC name in English. */
static const char *error_label(const struct term *t, json_t *error)
{
    const char *name = jstr(error, "error");
    int e = kigen_err_from_name(name);

    return e ? kigen_err_text(t->lang, e) : name;
}

static int show_list(const struct options *o, const struct term *t, json_t *a)
{
    const enum kigen_language lang = t->lang;
    const char *const h_state = _(lang, "STATE"), *const h_days = _(lang, "DAYS");
    const char *const h_date = _(lang, "NOT AFTER"), *const h_ks = _(lang, "KEYSTORE");
    const char *const h_holder = _(lang, "HOLDER"), *const h_loc = _(lang, "LOCATION");
    const char *const h_subj = _(lang, "SUBJECT");
    json_t *certs = json_object_get(a, "certificates"), *errors = json_object_get(a, "errors");
    json_t *s = json_object_get(a, "summary"), *c;
    size_t n = json_array_size(certs), i, w_state = text_width(h_state),
           w_days = text_width(h_days);
    size_t w_date = text_width(h_date), w_ks = text_width(h_ks), w_holder = text_width(h_holder);
    size_t w_loc = text_width(h_loc), w_subj = text_width(h_subj), room;
    bool two_lines = false;
    struct row *rows = calloc(n ? n : 1, sizeof(*rows));
    char date[64];

    if (!rows)
        return -ENOMEM;
    json_array_foreach(certs, i, c)
    {
        struct row *r = &rows[i];

        r->state = jstr(c, "state");
        snprintf(r->days, sizeof(r->days), "%lld", jint(c, "days_left"));
        local_date(lang, jstr(c, "not_after"), r->date, sizeof(r->date));
        r->keystore = jstr(c, "keystore");
        r->holder = json_is_object(json_object_get(c, "holder"))
                        ? jstr(json_object_get(c, "holder"), "name")
                        : "-";
        /* A location kept as last seen (its keystore root is unavailable) says since when. */
        if (strcmp(jstr(c, "last_seen"), jstr(a, "generated_at")) != 0 && *jstr(c, "last_seen"))
            local_date(lang, jstr(c, "last_seen"), date, sizeof(date));
        else
            date[0] = '\0';
        if ((date[0] ? asprintf(&r->location, _(lang, "%s [%s] (last seen %s)"), jstr(c, "path"),
                                jstr(c, "entry"), date)
                     : asprintf(&r->location, "%s [%s]", jstr(c, "path"), jstr(c, "entry"))) < 0)
            r->location = NULL;
        r->subject = jstr(c, "subject");
        w_state = max_sz(w_state, text_width(state_label(t, r->state)));
        w_days = max_sz(w_days, strlen(r->days));
        w_date = max_sz(w_date, text_width(r->date));
        w_ks = max_sz(w_ks, text_width(r->keystore));
        w_holder = max_sz(w_holder, text_width(r->holder));
        w_loc = max_sz(w_loc, r->location ? text_width(r->location) : 0);
        w_subj = max_sz(w_subj, text_width(r->subject));
    }
    if (w_ks > 16)
        w_ks = 16;
    if (w_holder > 20)
        w_holder = 20;
    /*
     * Location and subject share what the fixed columns leave, the shorter giving way; on a
     * narrow terminal the subject goes on a line of its own instead.
     */
    if (t->width) {
        size_t fixed = w_state + 1 + w_days + 2 + w_date + 2 + w_ks + 2 + w_holder + 2 + 2;

        room = t->width > fixed ? t->width - fixed : 0;
        if (w_loc + w_subj > room && room < 60) {
            two_lines = true;
            w_loc = room + 2 > 20 ? room + 2 : 20;
            w_subj = t->width > 24 ? t->width - 4 : 20;
        } else if (w_loc + w_subj > room) {
            if (w_loc <= room / 2)
                w_subj = room - w_loc;
            else if (w_subj <= room / 2)
                w_loc = room - w_subj;
            else {
                w_loc = room / 2;
                w_subj = room - w_loc;
            }
        }
    }
    if (n) {
        cell(t, h_state, w_state, false, true);
        for (size_t w = text_width(h_days); w < w_days + 1; w++)
            putchar(' ');
        fputs(h_days, stdout);
        fputs("  ", stdout);
        cell(t, h_date, w_date, false, true);
        fputs("  ", stdout);
        cell(t, h_ks, w_ks, false, true);
        fputs("  ", stdout);
        cell(t, h_holder, w_holder, false, true);
        fputs("  ", stdout);
        cell(t, h_loc, w_loc, false, !two_lines);
        printf("%s%s\n", two_lines ? "\n    " : "  ", h_subj);
    }
    for (i = 0; i < n; i++) {
        struct row *r = &rows[i];

        fputs(state_colour(t, r->state), stdout);
        cell(t, state_label(t, r->state), w_state, false, true);
        printf("%s %*s  ", reset(t), (int)w_days, r->days);
        cell(t, r->date, w_date, false, true);
        fputs("  ", stdout);
        cell(t, r->keystore, w_ks, false, true);
        fputs("  ", stdout);
        cell(t, r->holder, w_holder, false, true);
        fputs("  ", stdout);
        cell(t, r->location ? r->location : "", w_loc, true, !two_lines);
        fputs(two_lines ? "\n    " : "  ", stdout);
        cell(t, r->subject, t->width ? w_subj : 0, false, false);
        putchar('\n');
        free(r->location);
    }
    free(rows);
    if (json_array_size(errors)) {
        /* 16 columns as before, wider for a longer kind or heading. */
        size_t w_err = max_sz(16, text_width(_(lang, "ERROR")));

        json_array_foreach(errors, i, c) w_err = max_sz(w_err, text_width(error_label(t, c)));
        if (n)
            putchar('\n');
        cell(t, _(lang, "ERROR"), w_err + 1, false, true);
        cell(t, _(lang, "KEYSTORE"), 18, false, true);
        printf("%s\n", _(lang, "PATH: REASON"));
        json_array_foreach(errors, i, c)
        {
            char *line = NULL;

            cell(t, error_label(t, c), w_err + 1, false, true);
            cell(t, jstr(c, "keystore"), 16, false, true);
            fputs("  ", stdout);
            if (asprintf(&line, "%s: %s", jstr(c, "path"), jstr(c, "message")) >= 0) {
                cell(t, line, t->width > w_err + 20 ? t->width - w_err - 20 : 0, false, false);
                free(line);
            }
            putchar('\n');
        }
    }
    local_date(lang, jstr(a, "generated_at"), date, sizeof(date));
    if (n || json_array_size(errors))
        putchar('\n');
    printf(_(lang, "%lld certificates (%lld unique) at %s:\n%lld ok, %lld renewal open, "
                   "%lld critical, %lld expired, %lld not yet valid; %lld unreadable files"),
           jint(s, "certificates"), jint(s, "unique"), date, jint(s, "ok"), jint(s, "renewal_open"),
           jint(s, "critical"), jint(s, "expired"), jint(s, "not_yet_valid"), jint(s, "errors"));
    if (jint(s, "probes_down"))
        printf(_(lang, "; %lld probes down"), jint(s, "probes_down"));
    putchar('\n');
    return 0;
}

/* ---- show ---- */

static void labels_text(json_t *labels, char *out, size_t outlen)
{
    const char *key;
    json_t *v;
    size_t used = 0;

    out[0] = '\0';
    json_object_foreach(labels, key, v)
    {
        int n = snprintf(out + used, outlen - used, "%s%s=%s", used ? "," : "", key,
                         json_string_value(v) ? json_string_value(v) : "");

        if (n < 0 || (size_t)n >= outlen - used)
            break;
        used += (size_t)n;
    }
}

/* "label" padded to 14 columns (never cut) and a space: the show lines' heading. */
static void show_label(const struct term *t, const char *label)
{
    cell(t, label, 14, false, true);
    putchar(' ');
}

/* SPEC §13: the revocation answer, its source and when it was had; nothing when not asked. */
static void show_revocation(const struct term *t, json_t *r)
{
    const enum kigen_language lang = t->lang;
    char date[64];

    if (!r)
        return;
    show_label(t, _(lang, "revocation"));
    if (!json_is_object(r)) {
        printf("%s\n", _(lang, "not checked yet"));
        return;
    }
    printf("%s%s%s", state_colour(t, strcmp(jstr(r, "status"), "revoked") == 0 ? "revoked" : ""),
           state_label(t, jstr(r, "status")), reset(t));
    if (*jstr(r, "source"))
        printf(" (%s)", jstr(r, "source"));
    local_date(lang, jstr(r, "checked_at"), date, sizeof(date));
    printf(_(lang, ", checked %s"), date);
    if (*jstr(r, "revoked_at")) {
        local_date(lang, jstr(r, "revoked_at"), date, sizeof(date));
        printf(_(lang, "; revoked %s"), date);
    }
    if (*jstr(r, "reason"))
        printf(" (%s)", jstr(r, "reason"));
    if (*jstr(r, "error"))
        printf(": %s", jstr(r, "error"));
    putchar('\n');
}

static int show_show(const struct options *o, const struct term *t, json_t *a)
{
    const enum kigen_language lang = t->lang;
    static const struct {
        const char *key, *label;
    } dates[] = {
        { "not_before", N_("not before") },
        { "not_after", N_("not after") },
        { "renewal_opens", N_("renewal opens") },
    };
    json_t *v;
    size_t i, w_ks = 0;
    char date[64], labels[512];

    show_label(t, "sha256");
    printf("%s\n", jstr(a, "sha256"));
    show_label(t, _(lang, "subject"));
    printf("%s\n", jstr(a, "subject"));
    show_label(t, _(lang, "issuer"));
    printf("%s\n", jstr(a, "issuer"));
    show_label(t, _(lang, "serial"));
    printf("%s\n", jstr(a, "serial"));
    for (i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
        local_date(lang, jstr(a, dates[i].key), date, sizeof(date));
        show_label(t, kigen_tr(lang, dates[i].label));
        printf("%s\n", date);
    }
    show_label(t, _(lang, "days left"));
    printf("%lld\n", jint(a, "days_left"));
    show_label(t, _(lang, "state"));
    printf("%s%s%s\n", state_colour(t, jstr(a, "state")), state_label(t, jstr(a, "state")),
           reset(t));
    show_revocation(t, json_object_get(a, "revocation"));
    printf("\n%s\n", _(lang, "locations"));
    json_array_foreach(json_object_get(a, "locations"), i, v) w_ks =
        max_sz(w_ks, text_width(jstr(v, "keystore")));
    json_array_foreach(json_object_get(a, "locations"), i, v)
    {
        labels_text(json_object_get(v, "labels"), labels, sizeof(labels));
        fputs("  ", stdout);
        cell(t, jstr(v, "keystore"), w_ks, false, true);
        printf("  %s [%s]  %s%s%s\n", jstr(v, "path"), jstr(v, "entry"), jstr(v, "format"),
               labels[0] ? "  " : "", labels);
    }
    printf("\n%s\n", _(lang, "alerts sent"));
    if (json_array_size(json_object_get(a, "alerts")) == 0)
        printf("  %s\n", _(lang, "none"));
    json_array_foreach(json_object_get(a, "alerts"), i, v)
    {
        local_date(lang, jstr(v, "sent"), date, sizeof(date));
        printf("  %-18s %s\n", jstr(v, "event"), date);
    }
    return 0;
}

/* ---- probes, metrics, actions ---- */

/*
 * When a certificate of the chain (SPEC §8) ends before the server's own: when, and which.
 * Times of the answer are UTC RFC 3339 with Z, so text order is time order.
 */
static void show_chain_end(const struct term *t, json_t *p)
{
    const char *leaf = jstr(p, "tls_not_after"), *end = jstr(p, "tls_chain_not_after");
    const char *subject = "";
    char date[64];
    json_t *c;
    size_t i;

    if (!*end || !*leaf || strcmp(end, leaf) >= 0)
        return;
    json_array_foreach(json_object_get(p, "chain"), i, c)
    {
        if (strcmp(jstr(c, "not_after"), end) == 0) {
            subject = jstr(c, "subject");
            break;
        }
    }
    local_date(t->lang, end, date, sizeof(date));
    printf("%-16s ", "");
    printf(_(t->lang, "certificate chain until %s: %s\n"), date, subject);
}

static int show_probes(const struct options *o, const struct term *t, json_t *a)
{
    const enum kigen_language lang = t->lang;
    json_t *probes = json_object_get(a, "probes"), *p;
    size_t i;

    if (json_array_size(probes) == 0) {
        printf("%s\n", _(lang, "No probe targets are configured."));
        return 0;
    }
    cell(t, _(lang, "NAME"), 17, false, true);
    cell(t, _(lang, "HOST:PORT"), 31, false, true);
    cell(t, _(lang, "STATE"), 12, false, true);
    for (size_t w = text_width(_(lang, "CONNECT")); w < 11; w++)
        putchar(' ');
    printf("%s  %s\n", _(lang, "CONNECT"), _(lang, "SERVER CERTIFICATE UNTIL"));
    json_array_foreach(probes, i, p)
    {
        json_t *ms = json_object_get(p, "connect_ms");
        const char *state = jstr(p, "state"), *host = jstr(p, "host");
        char connect[32] = "-", until[64] = "-", where[300];

        if (json_is_number(ms))
            snprintf(connect, sizeof(connect), "%.1f ms", json_number_value(ms));
        if (json_is_string(json_object_get(p, "tls_not_after")))
            local_date(lang, jstr(p, "tls_not_after"), until, sizeof(until));
        snprintf(where, sizeof(where), "%s%s%s:%lld", strchr(host, ':') ? "[" : "", host,
                 strchr(host, ':') ? "]" : "", jint(p, "port"));
        printf("%-16s %-30s %s", jstr(p, "name"), where,
               state_colour(t, strcmp(state, "up") == 0     ? "ok"
                               : strcmp(state, "down") == 0 ? "expired"
                                                            : "renewal_open"));
        cell(t, state_label(t, state), 12, false, true);
        printf("%s %10s  %s\n", reset(t), connect, until);
        show_chain_end(t, p);
        /* The last failure, in words: what an operator takes to the network team. */
        if (json_is_string(json_object_get(p, "error"))) {
            printf("%-16s %s: %s ", "", jstr(p, "error"), jstr(p, "detail"));
            printf(_(lang, "(%lld in a row)\n"), jint(p, "consecutive_failures"));
        }
    }
    return 0;
}

static int show_metrics(const struct options *o, const struct term *t, json_t *a)
{
    const char *text = jstr(a, "metrics");
    size_t len = strlen(text);

    fwrite(text, 1, len, stdout);
    if (len && text[len - 1] != '\n')
        putchar('\n');
    return 0;
}

static int show_ok(const struct options *o, const struct term *t, json_t *a)
{
    printf("ok\n");
    return 0;
}

/* ---- talking to the daemon ---- */

static int connect_socket(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = TIMEOUT_S };
    int fd, r;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = errno;
        close(fd);
        errno = r;
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Reads one answer line into a malloc'd buffer (*ret_len bytes, NUL-terminated, newline
 * dropped). Returns 0, or -errno: -EAGAIN for silence past the timeout, -EPIPE for a
 * connection closed before the newline, -EFBIG past MAX_ANSWER.
 */
static int read_line(int fd, char **ret_line, size_t *ret_len)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap), *nl = NULL, *p;

    if (!buf)
        return -ENOMEM;
    while (!nl) {
        ssize_t n;

        if (cap - len < 65536) {
            if (cap >= MAX_ANSWER) {
                free(buf);
                return -EFBIG;
            }
            p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return -ENOMEM;
            }
            buf = p;
            cap *= 2;
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int r = n == 0 ? -EPIPE : errno == EWOULDBLOCK ? -EAGAIN : -errno;

            free(buf);
            return r;
        }
        nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
    }
    len = (size_t)(nl - buf);
    buf[len] = '\0';
    *ret_line = buf;
    *ret_len = len;
    return 0;
}

static char *build_request(const struct options *o)
{
    json_t *req = json_pack("{ss}", "cmd", o->cmd);
    char *text = NULL;

    if (!req)
        return NULL;
    if (o->state)
        json_object_set_new(req, "state", json_string(o->state));
    if (o->within)
        json_object_set_new(req, "within", json_string(o->within));
    if (o->keystore)
        json_object_set_new(req, "keystore", json_string(o->keystore));
    if (o->holder)
        json_object_set_new(req, "holder", json_string(o->holder));
    if (o->sha256)
        json_object_set_new(req, "sha256", json_string(o->sha256));
    text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return text;
}

/* Sends the request and reads the answer; on failure says why on stderr and returns < 0. */
static int ask(const struct options *o, char **ret_line, size_t *ret_len)
{
    char *req = build_request(o), *line = NULL;
    int fd = -1, r;

    if (!req) {
        fprintf(stderr, _(o->lang, "kigenctl: out of memory\n"));
        return -ENOMEM;
    }
    fd = connect_socket(o->socket_path);
    if (fd < 0) {
        r = -errno;
        fprintf(stderr, _(o->lang, "kigenctl: cannot connect to %s: %s\n"), o->socket_path,
                strerror(-r));
        goto out;
    }
    r = send_all(fd, req, strlen(req));
    if (r == 0)
        r = send_all(fd, "\n", 1);
    if (r < 0) {
        fprintf(stderr, _(o->lang, "kigenctl: cannot send the request to %s: %s\n"), o->socket_path,
                strerror(-r));
        goto out;
    }
    r = read_line(fd, &line, ret_len);
    if (r == -EAGAIN)
        fprintf(stderr, _(o->lang, "kigenctl: no answer from %s within %d s\n"), o->socket_path,
                TIMEOUT_S);
    else if (r == -EPIPE)
        fprintf(stderr, _(o->lang, "kigenctl: %s closed the connection without answering\n"),
                o->socket_path);
    else if (r == -EFBIG)
        fprintf(stderr,
                _(o->lang, "kigenctl: the answer from %s is larger than %u MiB, refusing it\n"),
                o->socket_path, MAX_ANSWER >> 20);
    else if (r < 0)
        fprintf(stderr, _(o->lang, "kigenctl: cannot read the answer from %s: %s\n"),
                o->socket_path, strerror(-r));
    if (r == 0)
        *ret_line = line;
out:
    if (fd >= 0)
        close(fd);
    free(req);
    return r;
}

/* ---- commands and options ---- */

static const struct command commands[] = {
    { "status", "status",
      N_("Shows how many certificates the daemon watches, how many are in their renewal window,\n"
         "critical or expired, unreadable files, probes down and the last scan. Exits 0 when all\n"
         "is well, 1 when something needs attention, 2 when anything is critical or expired.\n"),
      show_status },
    { "list", "list [--state STATE] [--within DURATION] [--keystore NAME] [--holder NAME]",
      N_("Lists the certificates (one line per file and entry) and the files that cannot be read.\n"
         "Exits 0/1/2 over what it lists, like status. With --json, prints the SPEC report "
         "document.\n"
         "\n"
         "      --state STATE        only ok, renewal_open, critical, expired or not_yet_valid\n"
         "      --within DURATION    only those ending within DURATION (30d, 12h, 2w), expired "
         "included\n"
         "      --keystore NAME      only the keystore NAME (its unreadable files too)\n"
         "      --holder NAME        only those NAME holds (the holder's name or e-mail, exactly;\n"
         "                           no unreadable files)\n"),
      show_list },
    { "show", "show SHA256",
      N_("Shows one certificate by its SHA-256 fingerprint: its facts, every location that holds\n"
         "it, and the alerts sent about it.\n"),
      show_show },
    { "probes", "probes",
      N_("Shows whether the hosts needed for renewal can be reached: each target's state (up,\n"
         "down after failures_before_alert failures, maintenance while a window covers it,\n"
         "unknown before enough results), the TCP connect time, its TLS server certificate's\n"
         "end of validity and the last failure in words. Exits 1 when a target is down.\n"),
      show_probes },
    { "rescan", "rescan",
      N_("Starts a full scan of every keystore now. Needs root or the daemon's user.\n"), show_ok },
    { "reload", "reload",
      N_("Re-reads the configuration; a bad one is rejected and the running one stays. Needs root\n"
         "or the daemon's user.\n"),
      show_ok },
    { "metrics", "metrics", N_("Prints the Prometheus text the daemon would export.\n"),
      show_metrics },
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* The defaults are written out: a msgid cannot hold a macro (xgettext reads the source). */
static const char common_options[] =
    N_("  -s, --socket PATH   the daemon's socket (default: socket: of the configuration,\n"
       "                      else /run/kigen/kigen.sock)\n"
       "  -c, --config FILE   where the socket and timezone come from (default "
       "/etc/kigen/kigen.yaml)\n"
       "  -j, --json          print the daemon's answer as is, one JSON line\n"
       "  -h, --help          this text\n");

/* In the user's language (LANG, LC_MESSAGES, LANGUAGE), as every CLI speaks. */
static void usage(FILE *out, enum kigen_language lang)
{
    fprintf(out,
            _(lang,
              "Usage: kigenctl [OPTIONS] COMMAND [ARGS]\n"
              "\n"
              "Asks a running kigend over its status socket.\n"
              "\n"
              "Commands:\n"
              "  status              counts and the last scan; exits 0/1/2 like a Nagios check\n"
              "  list                the certificates (--state, --within, --keystore, --holder)\n"
              "  show SHA256         one certificate, its locations and the alerts sent\n"
              "  probes              whether the renewal hosts can be reached\n"
              "  rescan              scan every keystore now (root or the daemon's user)\n"
              "  reload              re-read the configuration (root or the daemon's user)\n"
              "  metrics             the Prometheus text\n"
              "\n"
              "Options:\n"
              "%s"
              "      --version       the version\n"
              "\n"
              "Run 'kigenctl COMMAND --help' for one command. Exit status: 0 ok, 1 attention or\n"
              "a refused request, 2 critical or expired, 3 usage error or no daemon.\n"),
            kigen_tr(lang, common_options));
}

static void command_usage(const struct command *c, enum kigen_language lang)
{
    printf(_(lang, "Usage: kigenctl [OPTIONS] %s\n\n%s\nOptions:\n%s"), c->synopsis,
           kigen_tr(lang, c->help), kigen_tr(lang, common_options));
}

static int parse_options(int argc, char **argv, struct options *o)
{
    enum {
        OPT_STATE = 256,
        OPT_WITHIN,
        OPT_KEYSTORE,
        OPT_HOLDER,
        OPT_VERSION,
    };
    static const struct option longopts[] = {
        { "socket", required_argument, NULL, 's' },
        { "config", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "state", required_argument, NULL, OPT_STATE },
        { "within", required_argument, NULL, OPT_WITHIN },
        { "keystore", required_argument, NULL, OPT_KEYSTORE },
        { "holder", required_argument, NULL, OPT_HOLDER },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "s:c:jh", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->socket_path = optarg;
            break;
        case 'c':
            o->config_path = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            o->help = true;
            break;
        case OPT_STATE:
            o->state = optarg;
            break;
        case OPT_WITHIN:
            o->within = optarg;
            break;
        case OPT_KEYSTORE:
            o->keystore = optarg;
            break;
        case OPT_HOLDER:
            o->holder = optarg;
            break;
        case OPT_VERSION:
            printf("kigenctl %s\n", KIGEN_VERSION);
            exit(0);
        default:
            fprintf(stderr, _(o->lang, "Try 'kigenctl --help'.\n"));
            return -EINVAL;
        }
    }
    if (optind < argc)
        o->cmd = argv[optind++];
    if (o->cmd && strcmp(o->cmd, "show") == 0 && optind < argc)
        o->sha256 = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, _(o->lang, "kigenctl: unexpected argument '%s'\n"), argv[optind]);
        return -EINVAL;
    }
    return 0;
}

/* Checks what the daemon would refuse anyway, so that a typo is a usage error (3) here. */
static int check_options(const struct options *o)
{
    int64_t d;
    bool known = false;

    if (!o->cmd) {
        usage(stderr, o->lang);
        return -EINVAL;
    }
    if (!find_command(o->cmd)) {
        fprintf(stderr, _(o->lang, "kigenctl: unknown command '%s'; try 'kigenctl --help'\n"),
                o->cmd);
        return -EINVAL;
    }
    if (strcmp(o->cmd, "list") != 0 && (o->state || o->within || o->keystore || o->holder)) {
        fprintf(stderr,
                _(o->lang, "kigenctl: --state, --within, --keystore and --holder go with list\n"));
        return -EINVAL;
    }
    if (strcmp(o->cmd, "show") == 0 && !o->sha256) {
        fprintf(
            stderr,
            _(o->lang, "kigenctl: show needs a SHA-256 fingerprint (kigenctl list shows them)\n"));
        return -EINVAL;
    }
    for (int s = 0; o->state && s < KIGEN_STATE_COUNT; s++)
        known |= strcmp(o->state, kigen_state_name(s)) == 0;
    if (o->state && !known) {
        fprintf(stderr,
                _(o->lang,
                  "kigenctl: --state must be ok, renewal_open, critical, expired or not_yet_valid, "
                  "not '%s'\n"),
                o->state);
        return -EINVAL;
    }
    if (o->within && kigen_duration_parse(o->within, &d) < 0) {
        fprintf(stderr,
                _(o->lang,
                  "kigenctl: --within '%s' is not a duration (an integer and one of s m h d w, "
                  "like 30d)\n"),
                o->within);
        return -EINVAL;
    }
    return 0;
}

/*
 * The socket and the timezone. An explicit --config must load; the default one is used when
 * it exists and parses (an unprivileged user may not be able to read it).
 */
static int load_config(struct options *o, struct kigen_config **ret_config)
{
    struct kigen_config *config = NULL;
    char err[1024];
    int r;

    r = kigen_config_load_lang(o->config_path ? o->config_path : DEFAULT_CONFIG, o->lang, &config,
                               err, sizeof(err));
    if (r < 0 && o->config_path) {
        fprintf(stderr, "kigenctl: %s\n", err);
        return r;
    }
    if (r == 0) {
        kigen_time_use_zone(config->timezone);
        if (!o->socket_path)
            o->socket_path = config->socket;
    }
    if (!o->socket_path)
        o->socket_path = DEFAULT_SOCKET;
    *ret_config = config;
    return 0;
}

static void term_setup(struct term *t)
{
    struct winsize ws;
    const char *columns = getenv("COLUMNS"), *no_colour = getenv("NO_COLOR");
    bool is_tty = isatty(STDOUT_FILENO);

    if (is_tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        t->width = ws.ws_col;
    else if (columns && atoi(columns) > 0)
        t->width = (size_t)atoi(columns);
    t->colour = is_tty && !(no_colour && *no_colour);
    t->lang = kigen_language_from_env();
    if (strcmp(nl_langinfo(CODESET), "UTF-8") == 0) {
        t->ellipsis = "…";
        t->ellipsis_width = 1;
    } else {
        t->ellipsis = "...";
        t->ellipsis_width = 3;
    }
}

/* The exit status an answer gives, whether it is shown as a table or as is. */
static int answer_status(const struct options *o, json_t *a)
{
    bool is_check = strcmp(o->cmd, "status") == 0 || strcmp(o->cmd, "list") == 0;
    json_t *ok = json_object_get(a, "ok");

    if (json_is_false(ok))
        return is_check ? EXIT_UNKNOWN : 1;
    if (strcmp(o->cmd, "status") == 0) {
        long long s = jint(a, "exit_status");

        return s >= 0 && s <= 2 ? (int)s : EXIT_UNKNOWN;
    }
    if (strcmp(o->cmd, "list") == 0)
        return list_status(a);
    if (strcmp(o->cmd, "probes") == 0) {
        json_t *p;
        size_t i;

        /* SPEC §6: a probe down (outside maintenance) needs attention. */
        json_array_foreach(json_object_get(a, "probes"), i,
                           p) if (strcmp(jstr(p, "state"), "down") == 0) return 1;
    }
    return 0;
}

/*
 * Of a list answer printed as is, only the summary is needed, for the exit status: parsing
 * 100,000 records just to count them takes longer than the daemon takes to write them. The
 * report starts {"generated_at":"...","summary":{...}, (SPEC §6); anything else gives NULL
 * and is parsed whole.
 */
static json_t *parse_report_head(const char *line, size_t len)
{
    static const char start[] = "{\"generated_at\":\"", key[] = "\"summary\":";
    const char *p;
    json_t *summary, *head;

    if (len < sizeof(start) || memcmp(line, start, sizeof(start) - 1) != 0)
        return NULL;
    p = memmem(line, len < 128 ? len : 128, key, sizeof(key) - 1);
    if (!p)
        return NULL;
    p += sizeof(key) - 1;
    summary = json_loadb(p, len - (size_t)(p - line), JSON_DISABLE_EOF_CHECK, NULL);
    if (!json_is_object(summary)) {
        json_decref(summary);
        return NULL;
    }
    head = json_object();
    if (!head || json_object_set_new(head, "summary", summary) < 0) {
        json_decref(head);
        return NULL;
    }
    return head;
}

int main(int argc, char **argv)
{
    struct options o = { 0 };
    struct kigen_config *config = NULL;
    const struct command *cmd;
    struct term t = { 0 };
    char *line = NULL;
    size_t len = 0;
    json_t *answer = NULL;
    json_error_t jerr;
    int status = EXIT_UNKNOWN;

    /*
     * Widths of Japanese text need a UTF-8 character type: a Japanese LANG whose locale is
     * not generated (the catalogue is read by kigen, it needs none) falls back to C.UTF-8.
     */
    o.lang = kigen_language_from_env();
    if (!setlocale(LC_CTYPE, "") && o.lang != KIGEN_LANGUAGE_EN)
        (void)setlocale(LC_CTYPE, "C.UTF-8");
    if (parse_options(argc, argv, &o) < 0)
        return EXIT_UNKNOWN;
    if (o.help) {
        cmd = o.cmd ? find_command(o.cmd) : NULL;
        if (cmd)
            command_usage(cmd, o.lang);
        else
            usage(stdout, o.lang);
        return 0;
    }
    if (check_options(&o) < 0 || load_config(&o, &config) < 0)
        return EXIT_UNKNOWN;
    cmd = find_command(o.cmd);
    if (ask(&o, &line, &len) < 0)
        goto out;
    if (o.json && strcmp(o.cmd, "list") == 0)
        answer = parse_report_head(line, len);
    if (!answer)
        answer = json_loadb(line, len, 0, &jerr);
    if (!json_is_object(answer)) {
        fprintf(stderr, _(o.lang, "kigenctl: the answer from %s is not a JSON object%s%s\n"),
                o.socket_path, answer ? "" : ": ", answer ? "" : jerr.text);
        goto out;
    }
    status = answer_status(&o, answer);
    if (o.json) {
        fwrite(line, 1, len, stdout);
        putchar('\n');
    } else if (json_is_false(json_object_get(answer, "ok"))) {
        fprintf(stderr, "kigenctl: %s\n", jstr(answer, "error"));
    } else {
        term_setup(&t);
        if (cmd->show(&o, &t, answer) < 0) {
            fprintf(stderr, _(o.lang, "kigenctl: out of memory\n"));
            status = EXIT_UNKNOWN;
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, _(o.lang, "kigenctl: cannot write the output: %s\n"), strerror(errno));
        status = EXIT_UNKNOWN;
    }
out:
    json_decref(answer);
    free(line);
    kigen_config_free(config);
    return status;
}
