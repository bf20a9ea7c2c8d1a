#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "engine.h"
#include "err.h"
#include "metrics.h"
#include "proto.h"
#include "readtest.h"
#include "snapshot.h"
#include "timeutil.h"

#define NOW "2026-11-24T12:00:00Z"

static int64_t notify[] = { 60 * 86400, 28 * 86400, 14 * 86400, 7 * 86400, 3 * 86400, 86400 };

struct fixture {
    struct kigen_read_ctx *ctx;
    struct kigen_keystore ks[2];
    struct kigen_label label;
    struct kigen_config config;
    struct kigen_inventory *inventory;
    struct kigen_engine engine;
    struct kigen_proto_ctx proto;
    int rescans;
    int reloads;
    bool reload_fails;
};

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static int rescan_cb(void *data, char *errbuf, size_t errlen)
{
    struct fixture *fx = data;

    fx->rescans++;
    return 0;
}

static int reload_cb(void *data, char *errbuf, size_t errlen)
{
    struct fixture *fx = data;

    fx->reloads++;
    if (!fx->reload_fails)
        return 0;
    snprintf(errbuf, errlen, "kigen.yaml:3:1: unknown key 'bogus'");
    return -EINVAL;
}

/* Puts the certificates of fixture certs/NAME.pem at (keystore, path). */
static void place(struct fixture *fx, const char *name, const char *keystore, const char *path)
{
    char file[128];

    snprintf(file, sizeof(file), "certs/%s.pem", name);
    assert_int_equal(inventory_place(fx->inventory, fx->ctx, file, keystore, path), 1);
}

static void place_error(struct fixture *fx, const char *keystore, const char *path, int error,
                        const char *message)
{
    struct kigen_file *f = kigen_file_new(keystore, path);

    assert_non_null(f);
    f->format = KIGEN_FORMAT_PKCS12;
    f->error = error;
    f->message = strdup(message);
    assert_non_null(f->message);
    assert_int_equal(kigen_inventory_put(fx->inventory, f), 0);
}

/*
 * Two keystores at 2026-11-24T12:00Z: naccs holds one certificate in each state but
 * not_yet_valid and a file with the wrong password; web holds the not_yet_valid one and a
 * second copy of the expired one. 6 records, 5 unique.
 */
static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx || kigen_read_ctx_new(&fx->ctx) < 0 || kigen_inventory_new(&fx->inventory) < 0)
        return -1;
    fx->label = (struct kigen_label){ "team", "customs" };
    fx->ks[0].name = "naccs";
    fx->ks[0].path = "/srv/naccs";
    fx->ks[0].labels.v = &fx->label;
    fx->ks[0].labels.n = 1;
    fx->ks[1].name = "web";
    fx->ks[1].path = "/srv/web";
    fx->config.keystores = fx->ks;
    fx->config.n_keystores = 2;
    fx->config.policy = (struct kigen_policy){ .renew_before = 28 * 86400,
                                               .critical_before = 7 * 86400,
                                               .has_notify = true,
                                               .notify_before = notify,
                                               .n_notify = 6 };
    fx->config.alerts.reminder_every = 86400;
    kigen_engine_init(&fx->engine);
    kigen_time_use_zone("UTC");
    place(fx, "ok", "naccs", "/srv/naccs/tanaka.pem");
    place(fx, "renewal_open", "naccs", "/srv/naccs/suzuki.pem");
    place(fx, "critical", "naccs", "/srv/naccs/sato.pem");
    place(fx, "expired", "naccs", "/srv/naccs/takahashi.pem");
    place(fx, "not_yet_valid", "web", "/srv/web/watanabe.pem");
    place(fx, "expired", "web", "/srv/web/copy.pem");
    place_error(fx, "naccs", "/srv/naccs/broken.p12", KIGEN_E_WRONG_PASSWORD,
                "none of 2 passwords fits");
    fx->proto = (struct kigen_proto_ctx){
        .config = &fx->config,
        .inventory = fx->inventory,
        .engine = &fx->engine,
        .now = at(NOW),
        .scans = 3,
        .files_read = 7,
        .files_unchanged = 14,
        .last_scan_end = at("2026-11-24T11:59:58Z"),
        .last_scan_seconds = 0.25,
        .rescan = rescan_cb,
        .reload = reload_cb,
        .data = fx,
    };
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    kigen_engine_done(&fx->engine);
    kigen_inventory_free(fx->inventory);
    kigen_read_ctx_free(fx->ctx);
    free(fx);
    return 0;
}

/* The raw answer to req: one line, NUL-terminated, exactly *ret_len bytes. */
static char *ask_raw(struct fixture *fx, const char *req, size_t req_len, bool privileged,
                     size_t *ret_len)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(kigen_proto_answer(&fx->proto, req, req_len, privileged, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_null(memchr(text, '\n', len));
    if (ret_len)
        *ret_len = len;
    return text;
}

static json_t *ask(struct fixture *fx, const char *req, bool privileged)
{
    char *text = ask_raw(fx, req, strlen(req), privileged, NULL);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);

    if (!j)
        fail_msg("answer to %s is not JSON (%s): %s", req, jerr.text, text);
    assert_true(json_is_object(j));
    free(text);
    return j;
}

static const char *str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v))
        fail_msg("no string member '%s'", key);
    return json_string_value(v);
}

static long long num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v))
        fail_msg("no integer member '%s'", key);
    return json_integer_value(v);
}

/* The answer to req is {"ok":false,"error":E} with want in E. */
static void assert_refused(struct fixture *fx, const char *req, bool privileged, const char *want)
{
    json_t *j = ask(fx, req, privileged);

    assert_true(json_is_false(json_object_get(j, "ok")));
    if (!strstr(str(j, "error"), want))
        fail_msg("error for %s: '%s' lacks '%s'", req, str(j, "error"), want);
    assert_int_equal(json_object_size(j), 2);
    json_decref(j);
}

static void test_status_counts_the_whole_inventory(void **state)
{
    struct fixture *fx = *state;
    json_t *j = ask(fx, "{\"cmd\":\"status\"}", false), *s;

    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(str(j, "generated_at"), NOW);
    assert_string_equal(str(j, "evaluated_at"), NOW);
    s = json_object_get(j, "summary");
    assert_int_equal(num(s, "certificates"), 6);
    assert_int_equal(num(s, "unique"), 5);
    assert_int_equal(num(s, "ok"), 1);
    assert_int_equal(num(s, "renewal_open"), 1);
    assert_int_equal(num(s, "critical"), 1);
    assert_int_equal(num(s, "expired"), 2);
    assert_int_equal(num(s, "not_yet_valid"), 1);
    assert_int_equal(num(s, "errors"), 1);
    assert_int_equal(num(s, "probes_down"), 0);
    assert_null(json_object_get(s, "revoked")); /* no rule asks for revocation (SPEC §13) */
    assert_int_equal(json_object_size(s), 9);
    assert_int_equal(num(j, "exit_status"), 2);
    assert_int_equal(num(j, "keystores"), 2);
    assert_string_equal(str(j, "last_scan"), "2026-11-24T11:59:58Z");
    assert_true(json_real_value(json_object_get(j, "scan_seconds")) == 0.25);
    assert_int_equal(num(j, "scans"), 3);
    assert_int_equal(num(j, "files_read"), 7);
    assert_int_equal(num(j, "files_unchanged"), 14);
    assert_true(json_is_false(json_object_get(j, "scanning")));
    json_decref(j);
}

static void test_status_answers_from_the_last_evaluation_when_given(void **state)
{
    struct fixture *fx = *state;
    struct kigen_view last = { .now = at("2026-11-24T11:00:00Z"), .n_records = 2, .unique = 2 };
    json_t *j, *s;

    last.counts[KIGEN_STATE_OK] = 1;
    last.counts[KIGEN_STATE_RENEWAL_OPEN] = 1;
    fx->proto.last_view = &last;
    fx->proto.last_scan_end = 0;
    fx->proto.is_scanning = true;
    j = ask(fx, "{\"cmd\":\"status\"}", false);
    s = json_object_get(j, "summary");
    assert_int_equal(num(s, "certificates"), 2);
    assert_int_equal(num(s, "renewal_open"), 1);
    assert_int_equal(num(s, "expired"), 0);
    assert_int_equal(num(j, "exit_status"), 1);
    assert_string_equal(str(j, "generated_at"), NOW);
    assert_string_equal(str(j, "evaluated_at"), "2026-11-24T11:00:00Z");
    assert_true(json_is_null(json_object_get(j, "last_scan")));
    assert_true(json_is_true(json_object_get(j, "scanning")));
    json_decref(j);
}

static void test_status_answer_is_reused_only_while_nothing_changed(void **state)
{
    struct fixture *fx = *state;
    struct kigen_proto_cache cache = { 0 };
    struct kigen_view last = { .now = at("2026-11-24T11:00:00Z"), .n_records = 2, .unique = 2 };
    const char *req = "{\"cmd\":\"status\"}";
    char *a = NULL, *b = NULL;
    size_t la, lb;
    json_t *j;

    last.counts[KIGEN_STATE_OK] = 2;
    fx->proto.last_view = &last;
    fx->proto.cache = &cache;
    assert_int_equal(kigen_proto_answer(&fx->proto, req, strlen(req), false, &a, &la), 0);
    assert_non_null(cache.status);
    assert_int_equal(kigen_proto_answer(&fx->proto, req, strlen(req), false, &b, &lb), 0);
    assert_int_equal(la, lb);
    assert_string_equal(a, b);
    assert_ptr_not_equal(b, cache.status); /* a copy: the caller frees it */
    free(b);

    /* Each fact of the answer makes a new one: a file read, the clock, a probe down. */
    fx->proto.files_read++;
    j = ask(fx, req, false);
    assert_int_equal(num(j, "files_read"), 8);
    json_decref(j);
    fx->proto.now++;
    j = ask(fx, req, false);
    assert_string_equal(str(j, "generated_at"), "2026-11-24T12:00:01Z");
    json_decref(j);
    last.counts[KIGEN_STATE_OK] = 1;
    last.counts[KIGEN_STATE_EXPIRED] = 1;
    j = ask(fx, req, false);
    assert_int_equal(num(j, "exit_status"), 2);
    json_decref(j);
    /* The same request with spaces is parsed, and answered the same. */
    j = ask(fx, "{ \"cmd\" : \"status\" }", false);
    assert_int_equal(num(json_object_get(j, "summary"), "expired"), 1);
    json_decref(j);

    free(a);
    fx->proto.cache = NULL;
    kigen_proto_cache_done(&cache);
    assert_null(cache.status);
}

/* The number of records, and of errors, in a list answer. */
static void assert_list(struct fixture *fx, const char *req, size_t records, size_t errors,
                        int exit_status)
{
    json_t *j = ask(fx, req, false), *s = json_object_get(j, "summary");
    long long st = num(s, "critical") || num(s, "expired")                                 ? 2
                   : num(s, "renewal_open") || num(s, "not_yet_valid") || num(s, "errors") ? 1
                                                                                           : 0;

    assert_null(json_object_get(j, "ok"));
    if (json_array_size(json_object_get(j, "certificates")) != records)
        fail_msg("%s: %zu records, want %zu", req,
                 json_array_size(json_object_get(j, "certificates")), records);
    assert_int_equal(num(s, "certificates"), records);
    assert_int_equal(json_array_size(json_object_get(j, "errors")), errors);
    assert_int_equal(st, exit_status);
    json_decref(j);
}

static void test_list_filters_by_state_within_and_keystore(void **state)
{
    struct fixture *fx = *state;

    assert_list(fx, "{\"cmd\":\"list\"}", 6, 1, 2);
    assert_list(fx, "{\"cmd\":\"list\",\"state\":\"expired\"}", 2, 1, 2);
    assert_list(fx, "{\"cmd\":\"list\",\"state\":\"ok\"}", 1, 1, 1);
    assert_list(fx, "{\"cmd\":\"list\",\"state\":\"not_yet_valid\"}", 1, 1, 1);
    /* now + 30d = 2026-12-24T12:00Z: suzuki, sato and both expired copies. */
    assert_list(fx, "{\"cmd\":\"list\",\"within\":\"30d\"}", 4, 1, 2);
    /* now + 3d is sato's not_after exactly: kept (not_after <= now + within). */
    assert_list(fx, "{\"cmd\":\"list\",\"within\":\"3d\"}", 3, 1, 2);
    assert_list(fx, "{\"cmd\":\"list\",\"within\":\"259199s\"}", 2, 1, 2);
    assert_list(fx, "{\"cmd\":\"list\",\"keystore\":\"web\"}", 2, 0, 2);
    assert_list(fx, "{\"cmd\":\"list\",\"keystore\":\"web\",\"state\":\"not_yet_valid\"}", 1, 0, 1);
    assert_list(fx, "{\"cmd\":\"list\",\"keystore\":\"naccs\",\"state\":\"renewal_open\"}", 1, 1,
                1);
    assert_list(fx, "{\"cmd\":\"list\",\"keystore\":\"web\",\"state\":\"ok\"}", 0, 0, 0);
}

static void test_list_answer_is_the_report_document_on_one_line(void **state)
{
    struct fixture *fx = *state;
    struct kigen_view_filter filter = { .state = KIGEN_STATE_EXPIRED, .within = -1 };
    struct kigen_view view;
    const char *reqs[] = { "{\"cmd\":\"list\"}", "{\"cmd\":\"list\",\"state\":\"expired\"}" };

    for (size_t i = 0; i < 2; i++) {
        char *doc = NULL, *answer;
        size_t doc_len = 0, len, k = 0;
        FILE *f = open_memstream(&doc, &doc_len);

        assert_non_null(f);
        assert_int_equal(
            kigen_view_build(&fx->config, fx->inventory, at(NOW), i ? &filter : NULL, &view), 0);
        assert_int_equal(kigen_report_json(f, &view), 0);
        fclose(f);
        kigen_view_done(&view);
        /* kigend --once puts a newline after each record; the socket's line has none. */
        for (size_t p = 0; p < doc_len; p++)
            if (doc[p] != '\n')
                doc[k++] = doc[p];
        doc[k] = '\0';
        answer = ask_raw(fx, reqs[i], strlen(reqs[i]), false, &len);
        assert_string_equal(answer, doc);
        assert_true(strncmp(answer, "{\"generated_at\":\"" NOW "\",\"summary\":",
                            strlen("{\"generated_at\":\"" NOW "\",\"summary\":")) == 0);
        free(answer);
        free(doc);
    }
}

static void test_list_record_has_the_spec_fields(void **state)
{
    struct fixture *fx = *state;
    json_t *j = ask(fx, "{\"cmd\":\"list\",\"state\":\"critical\"}", false);
    json_t *r = json_array_get(json_object_get(j, "certificates"), 0);
    json_t *e = json_array_get(json_object_get(j, "errors"), 0);
    char *sha = fact("critical", "sha256"), *subject = fact("critical", "subject");

    assert_string_equal(str(r, "sha256"), sha);
    assert_string_equal(str(r, "keystore"), "naccs");
    assert_string_equal(str(r, "path"), "/srv/naccs/sato.pem");
    assert_string_equal(str(r, "format"), "pem");
    assert_string_equal(str(r, "entry"), "0");
    assert_string_equal(str(r, "subject"), subject);
    assert_string_equal(str(r, "not_after"), "2026-11-27T12:00:00Z");
    assert_string_equal(str(r, "renewal_opens"), "2026-10-30T12:00:00Z");
    assert_int_equal(num(r, "days_left"), 3);
    assert_string_equal(str(r, "state"), "critical");
    assert_string_equal(str(json_object_get(r, "labels"), "team"), "customs");
    assert_string_equal(str(e, "path"), "/srv/naccs/broken.p12");
    assert_string_equal(str(e, "error"), "wrong_password");
    assert_string_equal(str(e, "message"), "none of 2 passwords fits");
    assert_int_equal(json_array_size(json_object_get(j, "probes")), 0);
    free(sha);
    free(subject);
    json_decref(j);
}

static void test_list_refuses_bad_filters(void **state)
{
    struct fixture *fx = *state;

    assert_refused(fx, "{\"cmd\":\"list\",\"state\":\"bogus\"}", false, "unknown state \"bogus\"");
    assert_refused(fx, "{\"cmd\":\"list\",\"state\":3}", false, "\"state\" must be a string");
    assert_refused(fx, "{\"cmd\":\"list\",\"within\":\"30\"}", false,
                   "bad duration \"30\" for \"within\"");
    assert_refused(fx, "{\"cmd\":\"list\",\"within\":\"soon\"}", false, "bad duration");
    assert_refused(fx, "{\"cmd\":\"list\",\"within\":30}", false, "\"within\" must be a string");
    assert_refused(fx, "{\"cmd\":\"list\",\"keystore\":\"nacs\"}", false,
                   "unknown keystore \"nacs\"");
    assert_refused(fx, "{\"cmd\":\"list\",\"keystore\":null}", false,
                   "\"keystore\" must be a string");
    assert_refused(fx, "{\"cmd\":\"list\",\"limit\":10}", false,
                   "unknown field \"limit\" for list");
}

static void test_show_lists_locations_and_alert_history(void **state)
{
    struct fixture *fx = *state;
    char *sha = fact("expired", "sha256"), *subject = fact("expired", "subject");
    char *issuer = fact("expired", "issuer"), *serial = fact("expired", "serial"), req[128];
    struct kigen_view view;
    json_t *j, *locs, *l, *alerts;

    /* The engine decides at now: cert.expired is sent then. */
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), NULL, &view), 0);
    assert_true(kigen_engine_evaluate(&fx->engine, &fx->config, fx->inventory, &view, at(NOW)) > 0);
    kigen_view_done(&view);

    snprintf(req, sizeof(req), "{\"cmd\":\"show\",\"sha256\":\"%s\"}", sha);
    j = ask(fx, req, false);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(str(j, "sha256"), sha);
    assert_string_equal(str(j, "subject"), subject);
    assert_string_equal(str(j, "issuer"), issuer);
    assert_string_equal(str(j, "serial"), serial);
    assert_string_equal(str(j, "not_before"), "2021-10-01T00:00:00Z");
    assert_string_equal(str(j, "not_after"), "2026-11-01T00:00:00Z");
    assert_string_equal(str(j, "renewal_opens"), "2026-10-04T00:00:00Z");
    assert_int_equal(num(j, "days_left"), -24);
    assert_string_equal(str(j, "state"), "expired");
    locs = json_object_get(j, "locations");
    assert_int_equal(json_array_size(locs), 2);
    l = json_array_get(locs, 0);
    assert_string_equal(str(l, "keystore"), "naccs");
    assert_string_equal(str(l, "path"), "/srv/naccs/takahashi.pem");
    assert_string_equal(str(l, "format"), "pem");
    assert_string_equal(str(l, "entry"), "0");
    assert_string_equal(str(json_object_get(l, "labels"), "team"), "customs");
    l = json_array_get(locs, 1);
    assert_string_equal(str(l, "keystore"), "web");
    assert_string_equal(str(l, "path"), "/srv/web/copy.pem");
    assert_int_equal(json_object_size(json_object_get(l, "labels")), 0);
    alerts = json_object_get(j, "alerts");
    assert_int_equal(json_array_size(alerts), 1);
    assert_string_equal(str(json_array_get(alerts, 0), "event"), "cert.expired");
    assert_string_equal(str(json_array_get(alerts, 0), "sent"), NOW);
    json_decref(j);

    /* Upper case is the same fingerprint; a certificate never alerted has no history. */
    for (char *p = sha; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    snprintf(req, sizeof(req), "{\"cmd\":\"show\",\"sha256\":\"%s\"}", sha);
    j = ask(fx, req, false);
    assert_string_equal(str(j, "state"), "expired");
    json_decref(j);
    free(sha);
    sha = fact("ok", "sha256");
    snprintf(req, sizeof(req), "{\"cmd\":\"show\",\"sha256\":\"%s\"}", sha);
    j = ask(fx, req, false);
    assert_string_equal(str(j, "state"), "ok");
    assert_int_equal(json_array_size(json_object_get(j, "alerts")), 0);
    json_decref(j);
    free(sha);
    free(subject);
    free(issuer);
    free(serial);
}

static void test_show_refuses_unknown_and_bad_fingerprints(void **state)
{
    struct fixture *fx = *state;

    assert_refused(fx,
                   "{\"cmd\":\"show\",\"sha256\":"
                   "\"0000000000000000000000000000000000000000000000000000000000000000\"}",
                   false, "unknown certificate");
    assert_refused(fx, "{\"cmd\":\"show\",\"sha256\":\"b998e86d\"}", false, "64 hex digits");
    assert_refused(fx,
                   "{\"cmd\":\"show\",\"sha256\":"
                   "\"g998e86dc92eee4fdfef76351f4cdb5c22c707f66ef37374400198dbfd4d33df\"}",
                   false, "64 hex digits");
    assert_refused(fx, "{\"cmd\":\"show\"}", false, "show needs \"sha256\"");
    assert_refused(fx, "{\"cmd\":\"show\",\"sha256\":42}", false, "\"sha256\" must be a string");
}

static void test_malformed_requests_are_answered_not_fatal(void **state)
{
    struct fixture *fx = *state;
    static const char nul[] = "{\"cmd\":\"status\"}\0{}";
    char *text;
    json_t *j;

    assert_refused(fx, "{", false, "malformed JSON");
    assert_refused(fx, "status", false, "malformed JSON");
    assert_refused(fx, "", false, "malformed JSON");
    assert_refused(fx, "{\"cmd\":\"status\"} {\"cmd\":\"status\"}", false, "malformed JSON");
    assert_refused(fx, "{\"cmd\":\"status\",\"cmd\":\"list\"}", false, "malformed JSON");
    assert_refused(fx, "[{\"cmd\":\"status\"}]", false, "must be a JSON object");
    assert_refused(fx, "42", false, "must be a JSON object");
    assert_refused(fx, "\"status\"", false, "must be a JSON object");
    assert_refused(fx, "{}", false, "missing \"cmd\"");
    assert_refused(fx, "{\"cmd\":1}", false, "\"cmd\" must be a string");
    assert_refused(fx, "{\"cmd\":\"stats\"}", false, "unknown cmd \"stats\"");
    assert_refused(fx, "{\"cmd\":\"status\",\"verbose\":true}", false,
                   "unknown field \"verbose\" for status");
    /* A NUL inside the line is no request. */
    text = ask_raw(fx, nul, sizeof(nul) - 1, false, NULL);
    j = json_loads(text, 0, NULL);
    assert_true(json_is_false(json_object_get(j, "ok")));
    json_decref(j);
    free(text);
}

static void test_error_quotes_are_escaped_and_bounded(void **state)
{
    struct fixture *fx = *state;
    char req[512], want[128];
    json_t *j;

    snprintf(req, sizeof(req), "{\"cmd\":\"%s\\\"\\n%0200d\"}", "x", 0);
    j = ask(fx, req, false);
    assert_true(json_is_false(json_object_get(j, "ok")));
    snprintf(want, sizeof(want), "unknown cmd \"x\"\n%061d\" (", 0);
    assert_non_null(strstr(str(j, "error"), want));
    json_decref(j);
}

static void test_rescan_and_reload_need_privilege(void **state)
{
    struct fixture *fx = *state;
    json_t *j;

    assert_refused(fx, "{\"cmd\":\"rescan\"}", false,
                   "permission denied: rescan needs root or the daemon's user");
    assert_refused(fx, "{\"cmd\":\"reload\"}", false,
                   "permission denied: reload needs root or the daemon's user");
    assert_int_equal(fx->rescans, 0);
    assert_int_equal(fx->reloads, 0);
    j = ask(fx, "{\"cmd\":\"rescan\"}", true);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);
    assert_int_equal(fx->rescans, 1);
    j = ask(fx, "{\"cmd\":\"reload\"}", true);
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    assert_int_equal(fx->reloads, 1);
    fx->reload_fails = true;
    assert_refused(fx, "{\"cmd\":\"reload\"}", true,
                   "reload failed: kigen.yaml:3:1: unknown key 'bogus'");
    assert_int_equal(fx->reloads, 2);
    fx->proto.rescan = NULL;
    assert_refused(fx, "{\"cmd\":\"rescan\"}", true, "rescan is not available");
    /* Even a bad field is refused before the action runs. */
    assert_refused(fx, "{\"cmd\":\"reload\",\"force\":true}", true, "unknown field \"force\"");
    assert_int_equal(fx->reloads, 2);
}

static void test_probes_is_empty_until_probes_exist(void **state)
{
    struct fixture *fx = *state;
    json_t *j = ask(fx, "{\"cmd\":\"probes\"}", false);

    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_true(json_is_array(json_object_get(j, "probes")));
    assert_int_equal(json_array_size(json_object_get(j, "probes")), 0);
    json_decref(j);
}

static void test_metrics_carries_the_prometheus_text(void **state)
{
    struct fixture *fx = *state;
    struct kigen_metrics_extra extra = { .scan_duration_seconds = 0.25 };
    struct kigen_view view;
    char *text, *sha = fact("critical", "sha256"), want[160];
    size_t len;
    json_t *j = ask(fx, "{\"cmd\":\"metrics\"}", false);

    /* The configuration's metrics: options, lean by default. */
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), NULL, &view), 0);
    assert_int_equal(kigen_metrics_render(&view, &extra, &text, &len), 0);
    assert_string_equal(str(j, "metrics"), text);
    snprintf(want, sizeof(want), "kigen_cert_not_after_seconds{keystore=\"naccs\"");
    assert_non_null(strstr(str(j, "metrics"), want));
    snprintf(want, sizeof(want), "sha256=\"%s\"", sha);
    assert_null(strstr(str(j, "metrics"), want));
    free(text);
    json_decref(j);

    fx->config.metrics.labels = KIGEN_METRICS_SHA256;
    fx->config.metrics.state_series = true;
    extra.options = fx->config.metrics;
    j = ask(fx, "{\"cmd\":\"metrics\"}", false);
    assert_int_equal(kigen_metrics_render(&view, &extra, &text, &len), 0);
    kigen_view_done(&view);
    assert_string_equal(str(j, "metrics"), text);
    assert_non_null(strstr(str(j, "metrics"), want));
    assert_non_null(strstr(str(j, "metrics"), "kigen_cert_state{"));
    free(text);
    free(sha);
    json_decref(j);
    assert_refused(fx, "{\"cmd\":\"metrics\",\"format\":\"text\"}", false, "unknown field");
}

static void test_odd_bytes_in_paths_stay_valid_json(void **state)
{
    struct fixture *fx = *state;
    json_t *j, *r;
    char *sha = fact("renewed", "sha256"), req[128];

    /* Latin-1 bytes, a quote and a tab: not UTF-8, not plain. */
    place(fx, "renewed", "naccs", "/srv/naccs/m\xfcller \"new\"\t.pem");
    /* Valid since 2026-11-20: ok, after tanaka (2029) by not_after. */
    j = ask(fx, "{\"cmd\":\"list\",\"keystore\":\"naccs\",\"state\":\"ok\"}", false);
    assert_int_equal(json_array_size(json_object_get(j, "certificates")), 2);
    r = json_array_get(json_object_get(j, "certificates"), 1);
    assert_string_equal(str(r, "sha256"), sha);
    assert_string_equal(str(r, "path"), "/srv/naccs/m?ller \"new\"\t.pem");
    json_decref(j);
    snprintf(req, sizeof(req), "{\"cmd\":\"show\",\"sha256\":\"%s\"}", sha);
    j = ask(fx, req, false);
    assert_string_equal(str(json_array_get(json_object_get(j, "locations"), 0), "path"),
                        "/srv/naccs/m?ller \"new\"\t.pem");
    json_decref(j);
    j = ask(fx, "{\"cmd\":\"metrics\"}", false);
    assert_non_null(strstr(str(j, "metrics"), "m?ller \\\"new\\\"\t.pem"));
    json_decref(j);
    free(sha);
}

/* ---- snapshots and deferred answers ---- */

/* The list document and the metrics text of view, as the socket answers them. */
static void render_both(struct kigen_view *view, char **ret_list, char **ret_metrics)
{
    struct kigen_metrics_extra extra = { .scan_duration_seconds = 0.25 };
    size_t len;

    assert_int_equal(kigen_report_json_text(view, ret_list, &len), 0);
    assert_int_equal(kigen_metrics_render(view, &extra, ret_metrics, &len), 0);
}

/* Many more files: enough for a build to need several slices (a slice copies 64 at least). */
static void place_many(struct fixture *fx, int n)
{
    static const char *names[] = { "ok", "renewal_open", "critical", "expired" };
    char path[64];

    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/srv/%s/many-%03d.pem", i % 3 ? "naccs" : "web", i);
        place(fx, names[i % 4], i % 3 ? "naccs" : "web", path);
    }
}

/* The list and metrics of a built-in-one-go view for filter, for comparison. */
static void render_view(struct fixture *fx, const struct kigen_view_filter *filter, char **ret_list,
                        char **ret_metrics)
{
    struct kigen_view view;

    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), filter, &view), 0);
    kigen_view_sort(&view);
    kigen_view_set_probes(&view, fx->proto.probes, fx->proto.n_probes);
    render_both(&view, ret_list, ret_metrics);
    kigen_view_done(&view);
}

static bool has_path(const struct kigen_view *view, const char *path)
{
    for (size_t i = 0; i < view->n_records; i++)
        if (strcmp(view->records[i].file->path, path) == 0)
            return true;
    return false;
}

/* snap (taken; sorted here) renders the same bytes as the view for filter built in one go. */
static void assert_snapshot_is_view(struct fixture *fx, const struct kigen_view_filter *filter,
                                    struct kigen_snapshot *snap)
{
    char *list, *metrics, *snap_list, *snap_metrics;

    render_view(fx, filter, &list, &metrics);
    kigen_view_sort(&snap->view);
    render_both(&snap->view, &snap_list, &snap_metrics);
    assert_string_equal(snap_list, list);
    assert_string_equal(snap_metrics, metrics);
    free(list);
    free(metrics);
    free(snap_list);
    free(snap_metrics);
    kigen_snapshot_free(snap);
}

/* Steps with the smallest budget until done; how many steps it took. */
static int build_in_slices(struct fixture *fx, struct kigen_snapshot_builder *b,
                           struct kigen_snapshot **ret_snap)
{
    int steps = 0, r;

    do {
        r = kigen_snapshot_builder_step(b, &fx->config, 0, fx->inventory, 1);
        assert_true(r >= 0);
        steps++;
    } while (r == 0);
    assert_int_equal(
        kigen_snapshot_builder_finish(b, fx->proto.probes, fx->proto.n_probes, ret_snap), 0);
    kigen_view_sort(&(*ret_snap)->view);
    return steps;
}

static void test_a_snapshot_renders_the_same_bytes(void **state)
{
    static const struct kigen_view_filter unsorted = { .state = -1,
                                                       .within = -1,
                                                       .is_unsorted = true };
    struct fixture *fx = *state;
    struct kigen_probe_status probe = { .name = "naccs-cert",
                                        .host = "cert.example",
                                        .port = 443,
                                        .state = KIGEN_PROBE_DOWN,
                                        .error = "timeout",
                                        .detail = "no answer in 10 s",
                                        .connect_ms = -1,
                                        .duration_ms = 10000,
                                        .last_probe = at(NOW),
                                        .tls_not_after = at("2027-03-01T00:00:00Z"),
                                        .tls_chain_not_after = at("2027-02-01T00:00:00Z") };
    struct kigen_snapshot_builder *b;
    struct kigen_snapshot *snap;
    char *list, *metrics, *snap_list;
    struct kigen_file *f;

    place(fx, "renewed", "naccs", "/srv/naccs/m\xfcller \"new\"\t.pem");
    /* One location kept as last seen, its keystore's root away (SPEC §6 last_seen). */
    place(fx, "critical", "naccs", "/srv/naccs/stale.pem");
    f = kigen_inventory_find(fx->inventory, "naccs", "/srv/naccs/stale.pem");
    assert_non_null(f);
    f->is_stale = true;
    f->last_seen = at(NOW) - 3600;
    fx->proto.probes = &probe;
    fx->proto.n_probes = 1;
    render_view(fx, NULL, &list, &metrics);
    assert_non_null(strstr(list, "\"last_seen\":\"2026-11-24T11:00:00Z\""));
    assert_non_null(strstr(list, "\"tls_chain_not_after\":\"2027-02-01T00:00:00Z\""));
    assert_non_null(strstr(metrics, "kigen_probe_tls_chain_not_after_seconds{"));
    free(metrics);
    /* Copied in one go (a budget of 0): the same bytes as the view. */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(kigen_snapshot_builder_new(&unsorted, at(NOW), &b), 0);
        assert_int_equal(kigen_snapshot_builder_step(b, &fx->config, 0, fx->inventory, 0), 1);
        assert_int_equal(kigen_snapshot_builder_finish(b, &probe, 1, &snap), 0);
        kigen_snapshot_builder_free(b);
        if (k == 0) {
            assert_snapshot_is_view(fx, &unsorted, snap);
            continue;
        }
        /* What it was copied from goes: the snapshot holds on its own. */
        kigen_inventory_free(fx->inventory);
        assert_int_equal(kigen_inventory_new(&fx->inventory), 0);
        fx->proto.inventory = fx->inventory;
        kigen_view_sort(&snap->view);
        assert_int_equal(kigen_report_json_text(&snap->view, &snap_list, &(size_t){ 0 }), 0);
        assert_string_equal(snap_list, list);
        free(snap_list);
        kigen_snapshot_free(snap);
    }
    free(list);
}

static void test_a_snapshot_built_in_slices_is_the_view(void **state)
{
    struct fixture *fx = *state;
    const struct kigen_view_filter filters[] = {
        { .state = -1, .within = -1, .is_unsorted = true },
        { .state = KIGEN_STATE_EXPIRED, .within = -1, .is_unsorted = true },
        { .state = -1, .within = 30 * 86400, .keystore = "web", .is_unsorted = true },
    };

    place_many(fx, 300);
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        struct kigen_snapshot_builder *b;
        struct kigen_snapshot *snap;

        assert_int_equal(kigen_snapshot_builder_new(&filters[i], at(NOW), &b), 0);
        /* 307 files, at least 64 a slice, a nanosecond's budget: five slices at most. */
        assert_in_range(build_in_slices(fx, b, &snap), 2, 5);
        assert_int_equal(kigen_snapshot_builder_restarts(b), 0);
        kigen_snapshot_builder_free(b);
        assert_snapshot_is_view(fx, &filters[i], snap);
    }
}

static void test_a_change_between_slices_starts_the_build_over(void **state)
{
    static const struct kigen_view_filter all = { .state = -1, .within = -1, .is_unsorted = true };
    struct fixture *fx = *state;
    struct kigen_snapshot_builder *b;
    struct kigen_snapshot *snap;
    uint64_t changes;

    place_many(fx, 300);
    assert_int_equal(kigen_snapshot_builder_new(&all, at(NOW), &b), 0);
    assert_int_equal(kigen_snapshot_builder_step(b, &fx->config, 0, fx->inventory, 1), 0);
    /* A file the scan adds, and one it removes, behind the copy: it starts over. */
    place(fx, "critical", "naccs", "/srv/naccs/new.pem");
    kigen_inventory_remove(fx->inventory,
                           kigen_inventory_find(fx->inventory, "naccs", "/srv/naccs/sato.pem"));
    assert_int_equal(kigen_snapshot_builder_step(b, &fx->config, 0, fx->inventory, 1), 0);
    assert_int_equal(kigen_snapshot_builder_restarts(b), 1);
    /*
     * A change nobody counted (a bug elsewhere) that makes more records than the copy has
     * room for: found, and started over, rather than written past the arrays (ASan checks).
     */
    changes = fx->inventory->changes;
    place(fx, "expired", "web", "/srv/web/uncounted.pem");
    fx->inventory->changes = changes;
    build_in_slices(fx, b, &snap);
    assert_int_equal(kigen_snapshot_builder_restarts(b), 2);
    kigen_snapshot_builder_free(b);
    assert_int_equal(snap->view.n_records, 306 + 1 - 1 + 1); /* the fixture, new, sato, uncounted */
    assert_true(has_path(&snap->view, "/srv/naccs/new.pem"));
    assert_true(has_path(&snap->view, "/srv/web/uncounted.pem"));
    assert_false(has_path(&snap->view, "/srv/naccs/sato.pem"));
    assert_snapshot_is_view(fx, &all, snap);
    /* A reload between slices starts over too; after three restarts the rest goes in one go. */
    assert_int_equal(kigen_snapshot_builder_new(&all, at(NOW), &b), 0);
    for (int i = 0; i < KIGEN_SNAPSHOT_RESTARTS; i++) {
        assert_int_equal(kigen_snapshot_builder_step(b, &fx->config, (uint64_t)i, fx->inventory, 1),
                         0);
        assert_int_equal(kigen_snapshot_builder_restarts(b), (unsigned)i);
    }
    assert_int_equal(kigen_snapshot_builder_step(b, &fx->config, 99, fx->inventory, 1), 1);
    assert_int_equal(kigen_snapshot_builder_restarts(b), KIGEN_SNAPSHOT_RESTARTS);
    kigen_snapshot_builder_free(b); /* unfinished: its copy goes with it (ASan checks) */
}

struct built {
    struct kigen_snapshot *snap;
    int result;
    int calls;
};

static void built_cb(void *data, struct kigen_snapshot *snap, int result)
{
    struct built *b = data;

    b->snap = snap;
    b->result = result;
    b->calls++;
}

static void fixture_source_cb(void *data, struct kigen_slicer_source *src)
{
    struct fixture *fx = data;

    memset(src, 0, sizeof(*src));
    src->config = &fx->config;
    src->inventory = fx->inventory;
}

static void slicer_closed_cb(uv_handle_t *handle)
{
}

static void test_the_slicer_takes_turns_with_the_loop(void **state)
{
    static const struct kigen_view_filter all = { .state = -1, .within = -1, .is_unsorted = true };
    static const struct kigen_view_filter web = {
        .state = -1, .within = -1, .keystore = "web", .is_unsorted = true
    };
    struct fixture *fx = *state;
    struct built one = { 0 }, two = { 0 }, gone = { 0 };
    struct kigen_slicer *slicer;
    uv_loop_t loop;
    uv_timer_t marker;
    int iterations = 0;

    place_many(fx, 300);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(kigen_slicer_new(&loop, fixture_source_cb, fx, &slicer), 0);
    kigen_slicer_set_budget(slicer, 1); /* 64 files a slice */
    assert_int_equal(kigen_slicer_start(slicer, &all, at(NOW), built_cb, &one), 0);
    assert_int_equal(kigen_slicer_start(slicer, &web, at(NOW), built_cb, &two), 0);
    assert_int_equal(one.calls + two.calls, 0); /* never from within start */
    assert_int_equal(kigen_slicer_pending(slicer), 2);
    /* One slice per loop iteration, the two builds in turn: 307 files take 5 slices each. */
    while (one.calls + two.calls < 2) {
        uv_run(&loop, UV_RUN_NOWAIT); /* 0 once nothing is left to do */
        iterations++;
        assert_true(iterations < 100);
    }
    assert_in_range(iterations, 8, 12);
    assert_int_equal(one.calls, 1);
    assert_int_equal(two.calls, 1);
    assert_int_equal(one.result, 0);
    assert_int_equal(two.result, 0);
    assert_int_equal(kigen_slicer_pending(slicer), 0);
    assert_snapshot_is_view(fx, &all, one.snap);
    assert_snapshot_is_view(fx, &web, two.snap);
    /* Closed with a build in progress: it ends as cancelled, and the loop can close. */
    assert_int_equal(kigen_slicer_start(slicer, &all, at(NOW), built_cb, &gone), 0);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 1);
    assert_int_equal(gone.calls, 0);
    kigen_slicer_close(slicer);
    assert_int_equal(gone.calls, 1);
    assert_int_equal(gone.result, -ECANCELED);
    assert_null(gone.snap);
    assert_int_equal(uv_timer_init(&loop, &marker), 0);
    uv_close((uv_handle_t *)&marker, slicer_closed_cb);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The daemon's arrangement: a control server whose handler is kigen_proto_answer(). */
struct server {
    uv_loop_t loop;
    struct kigen_control *ctl;
    struct kigen_slicer *slicer;
    struct fixture *fx;
    char dir[48];
    char path[96];
    int blocker[2]; /* the thread pool's one thread waits on it while a test needs */
    uv_work_t block;
    bool is_blocking;
    bool is_closed;
};

static int server_handler(void *data, const char *line, size_t len, bool is_privileged,
                          char **ret_answer, size_t *ret_len)
{
    struct server *sv = data;

    return kigen_proto_answer(&sv->fx->proto, line, len, is_privileged, ret_answer, ret_len);
}

/* The slicer reads what the fixture's ctx holds at each slice, as the daemon's reads svc. */
static void server_source_cb(void *data, struct kigen_slicer_source *src)
{
    struct server *sv = data;

    src->config = sv->fx->proto.config;
    src->config_serial = 0;
    src->inventory = sv->fx->proto.inventory;
    src->probes = sv->fx->proto.probes;
    src->n_probes = sv->fx->proto.n_probes;
}

static void server_start(struct server *sv, struct fixture *fx)
{
    char err[256];

    memset(sv, 0, sizeof(*sv));
    sv->fx = fx;
    strcpy(sv->dir, "/tmp/kigen-proto-XXXXXX");
    assert_non_null(mkdtemp(sv->dir));
    snprintf(sv->path, sizeof(sv->path), "%s/kigen.sock", sv->dir);
    assert_int_equal(uv_loop_init(&sv->loop), 0);
    assert_int_equal(kigen_control_start(&sv->loop, sv->path, -1, server_handler, sv, &sv->ctl, err,
                                         sizeof(err)),
                     0);
    assert_int_equal(kigen_slicer_new(&sv->loop, server_source_cb, sv, &sv->slicer), 0);
    fx->proto.loop = &sv->loop;
    fx->proto.control = sv->ctl;
    fx->proto.slicer = sv->slicer;
    assert_int_equal(pipe(sv->blocker), 0);
}

static void pump(struct server *sv)
{
    uv_run(&sv->loop, UV_RUN_NOWAIT);
    poll(NULL, 0, 1);
}

static void block_work_cb(uv_work_t *work)
{
    struct server *sv = work->data;
    char c;

    while (read(sv->blocker[0], &c, 1) < 0 && errno == EINTR)
        ;
}

static void block_after_cb(uv_work_t *work, int status)
{
    struct server *sv = work->data;

    sv->is_blocking = false;
}

/* Holds the thread pool's only thread (UV_THREADPOOL_SIZE=1): renders wait behind it. */
static void block_pool(struct server *sv)
{
    sv->block.data = sv;
    sv->is_blocking = true;
    assert_int_equal(uv_queue_work(&sv->loop, &sv->block, block_work_cb, block_after_cb), 0);
}

static void unblock_pool(struct server *sv)
{
    assert_int_equal(write(sv->blocker[1], "x", 1), 1);
    while (sv->is_blocking)
        pump(sv);
}

static void closed_cb(void *data)
{
    ((struct server *)data)->is_closed = true;
}

static void server_stop(struct server *sv)
{
    kigen_slicer_close(sv->slicer);
    if (sv->ctl)
        kigen_control_close(sv->ctl, closed_cb, sv);
    do /* at least once: the slicer's timer closes */
        pump(sv);
    while (!sv->is_closed);
    assert_int_equal(uv_loop_close(&sv->loop), 0);
    close(sv->blocker[0]);
    close(sv->blocker[1]);
    rmdir(sv->dir);
}

static int dial(struct server *sv)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    strcpy(sa.sun_path, sv->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void say(int fd, const char *text)
{
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

/* The next answer line on fd (without its newline), pumping the loop meanwhile. */
static char *hear(struct server *sv, int fd)
{
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);

    assert_non_null(buf);
    for (;;) {
        ssize_t n = recv(fd, buf + len, 1, MSG_DONTWAIT);

        if (n == 1 && buf[len] == '\n') {
            buf[len] = '\0';
            return buf;
        }
        if (n == 1) {
            if (++len == cap) {
                cap *= 2;
                buf = realloc(buf, cap);
                assert_non_null(buf);
            }
            continue;
        }
        assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        pump(sv);
    }
}

/* Nothing has arrived on fd yet. */
static void assert_silent(int fd)
{
    char c;

    assert_true(recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN);
}

/* The direct (synchronous) answer to req, as kigen_proto_answer gives it without a loop. */
static char *direct(struct fixture *fx, const char *req)
{
    struct kigen_proto_ctx ctx = fx->proto;
    char *text = NULL;
    size_t len;

    ctx.loop = NULL;
    ctx.control = NULL;
    ctx.slicer = NULL;
    assert_int_equal(kigen_proto_answer(&ctx, req, strlen(req), false, &text, &len), 0);
    return text;
}

static void test_list_and_metrics_are_answered_in_order_from_the_pool(void **state)
{
    struct fixture *fx = *state;
    struct server sv;
    char *list = direct(fx, "{\"cmd\":\"list\"}"), *metrics = direct(fx, "{\"cmd\":\"metrics\"}");
    char *ks_list = direct(fx, "{\"cmd\":\"list\",\"keystore\":\"web\"}"), *a;
    int fd;

    server_start(&sv, fx);
    fd = dial(&sv);
    say(fd, "{\"cmd\":\"list\"}\n{\"cmd\":\"status\"}\n{\"cmd\":\"metrics\"}\n"
            "{\"cmd\":\"list\",\"keystore\":\"web\"}\n{\"cmd\":\"list\",\"state\":\"bogus\"}\n");
    a = hear(&sv, fd);
    assert_string_equal(a, list);
    free(a);
    a = hear(&sv, fd);
    assert_non_null(strstr(a, "\"ok\":true,\"generated_at\""));
    free(a);
    a = hear(&sv, fd);
    assert_string_equal(a, metrics);
    free(a);
    a = hear(&sv, fd);
    assert_string_equal(a, ks_list);
    free(a);
    a = hear(&sv, fd);
    assert_non_null(strstr(a, "unknown state"));
    free(a);
    close(fd);
    server_stop(&sv);
    free(list);
    free(metrics);
    free(ks_list);
}

static void test_status_is_answered_while_a_list_renders(void **state)
{
    struct fixture *fx = *state;
    struct server sv;
    char *list = direct(fx, "{\"cmd\":\"list\"}"), *a;
    int lister, asker;

    server_start(&sv, fx);
    lister = dial(&sv);
    asker = dial(&sv);
    block_pool(&sv);
    say(lister, "{\"cmd\":\"list\"}\n{\"cmd\":\"status\"}\n");
    for (int i = 0; i < 20; i++)
        pump(&sv);
    /* The render waits behind the blocked pool; the other client is answered meanwhile. */
    say(asker, "{\"cmd\":\"status\"}\n");
    a = hear(&sv, asker);
    assert_non_null(strstr(a, "\"ok\":true"));
    free(a);
    assert_silent(lister);
    /* The inventory changes (and the first one is freed) before the render runs. */
    kigen_inventory_free(fx->inventory);
    assert_int_equal(kigen_inventory_new(&fx->inventory), 0);
    fx->proto.inventory = fx->inventory;
    unblock_pool(&sv);
    a = hear(&sv, lister);
    assert_string_equal(a, list);
    free(a);
    /* Then the status asked after it, from the inventory as it is now. */
    a = hear(&sv, lister);
    assert_non_null(strstr(a, "\"certificates\":0"));
    free(a);
    close(lister);
    close(asker);
    server_stop(&sv);
    free(list);
}

static void test_a_client_gone_or_a_server_closed_during_a_render(void **state)
{
    struct fixture *fx = *state;
    struct server sv;
    int gone, stays;

    server_start(&sv, fx);
    gone = dial(&sv);
    stays = dial(&sv);
    while (kigen_control_clients(sv.ctl) != 2)
        pump(&sv);
    block_pool(&sv);
    say(gone, "{\"cmd\":\"metrics\"}\n");
    for (int i = 0; i < 20; i++)
        pump(&sv);
    close(gone);
    for (int i = 0; i < 20; i++)
        pump(&sv);
    unblock_pool(&sv);
    /* The answer finds the client gone: it is dropped, and the client cleaned up. */
    while (kigen_control_clients(sv.ctl) != 1)
        pump(&sv);
    /* The server closes with a list still rendering: it goes once the render is done. */
    block_pool(&sv);
    say(stays, "{\"cmd\":\"list\"}\n");
    for (int i = 0; i < 20; i++)
        pump(&sv);
    kigen_control_close(sv.ctl, closed_cb, &sv);
    sv.ctl = NULL;
    for (int i = 0; i < 20; i++)
        pump(&sv);
    assert_false(sv.is_closed);
    unblock_pool(&sv);
    server_stop(&sv); /* the answer is dropped and freed (ASan checks) */
    close(stays);
}

static void test_renders_at_once_are_bounded(void **state)
{
    struct fixture *fx = *state;
    struct server sv;
    char *list = direct(fx, "{\"cmd\":\"list\"}"), *a;
    int fds[3];

    server_start(&sv, fx);
    kigen_control_set_max_deferred(sv.ctl, 2);
    block_pool(&sv);
    for (int i = 0; i < 3; i++) {
        fds[i] = dial(&sv);
        say(fds[i], "{\"cmd\":\"list\"}\n");
        for (int k = 0; k < 20; k++)
            pump(&sv);
    }
    a = hear(&sv, fds[2]);
    assert_non_null(strstr(a, "busy"));
    free(a);
    unblock_pool(&sv);
    for (int i = 0; i < 2; i++) {
        a = hear(&sv, fds[i]);
        assert_string_equal(a, list);
        free(a);
        close(fds[i]);
    }
    close(fds[2]);
    server_stop(&sv);
    free(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_snapshot_renders_the_same_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_snapshot_built_in_slices_is_the_view, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_change_between_slices_starts_the_build_over, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_slicer_takes_turns_with_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_metrics_are_answered_in_order_from_the_pool,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_is_answered_while_a_list_renders, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_client_gone_or_a_server_closed_during_a_render,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_renders_at_once_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_counts_the_whole_inventory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_answer_is_reused_only_while_nothing_changed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_answers_from_the_last_evaluation_when_given,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_by_state_within_and_keystore, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_answer_is_the_report_document_on_one_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_list_record_has_the_spec_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_refuses_bad_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show_lists_locations_and_alert_history, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_show_refuses_unknown_and_bad_fingerprints, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests_are_answered_not_fatal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_quotes_are_escaped_and_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rescan_and_reload_need_privilege, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probes_is_empty_until_probes_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_carries_the_prometheus_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_bytes_in_paths_stay_valid_json, setup, teardown),
    };

    /* One thread: a test can hold it (block_pool) so that a render is known to be pending. */
    setenv("UV_THREADPOOL_SIZE", "1", 1);
    signal(SIGPIPE, SIG_IGN); /* as kigend: a client gone is a write error */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
