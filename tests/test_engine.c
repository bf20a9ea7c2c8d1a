#include <errno.h>

#include "engine.h"
#include "err.h"
#include "readtest.h"
#include "revocation.h"
#include "timeutil.h"

static int64_t notify[] = { 60 * 86400, 28 * 86400, 14 * 86400, 7 * 86400, 3 * 86400, 86400 };

struct fixture {
    struct kigen_read_ctx *ctx;
    struct kigen_keystore ks;
    struct kigen_label label;
    struct kigen_config config;
    struct kigen_inventory *inventory;
    struct kigen_engine engine;
};

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx || kigen_read_ctx_new(&fx->ctx) < 0 || kigen_inventory_new(&fx->inventory) < 0)
        return -1;
    fx->label = (struct kigen_label){ "team", "customs" };
    fx->ks.name = "naccs";
    fx->ks.path = "/srv/naccs";
    fx->ks.labels.v = &fx->label;
    fx->ks.labels.n = 1;
    fx->config.keystores = &fx->ks;
    fx->config.n_keystores = 1;
    fx->config.policy = (struct kigen_policy){ .renew_before = 28 * 86400,
                                               .critical_before = 7 * 86400,
                                               .has_notify = true,
                                               .notify_before = notify,
                                               .n_notify = 6,
                                               .renew_url = "https://renew.example/",
                                               .reissue_note = "re-issue takes a day" };
    fx->config.alerts.reminder_every = 86400;
    kigen_engine_init(&fx->engine);
    kigen_time_use_zone("UTC");
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

/* Puts the certificates of fixture certs/NAME.pem at path. */
static void place(struct fixture *fx, const char *name, const char *path)
{
    char file[128];

    snprintf(file, sizeof(file), "certs/%s.pem", name);
    assert_int_equal(inventory_place(fx->inventory, fx->ctx, file, "naccs", path), 1);
}

static void drop(struct fixture *fx, const char *path)
{
    struct kigen_file *f = kigen_inventory_find(fx->inventory, "naccs", path);

    assert_non_null(f);
    kigen_inventory_remove(fx->inventory, f);
}

/* Evaluates at now; returns how many alerts were queued and clears the outbox. */
static int evaluate(struct fixture *fx, int64_t now)
{
    struct kigen_view view;
    int n;

    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, now, NULL, &view), 0);
    n = kigen_engine_evaluate(&fx->engine, &fx->config, fx->inventory, &view, now);
    kigen_view_done(&view);
    assert_true(n >= 0);
    return n;
}

static const struct kigen_alert *outbox(struct fixture *fx, size_t i)
{
    assert_true(i < fx->engine.n_outbox);
    return fx->engine.outbox[i].alert;
}

static void deliver_all(struct fixture *fx)
{
    while (fx->engine.n_outbox)
        kigen_engine_delivered(&fx->engine, fx->engine.outbox[0].id);
}

static void test_renewal_open_fires_once_then_reminds_daily(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z"); /* suzuki ends 2026-12-14T12:00Z: 20 days */
    const struct kigen_alert *a;
    char *sha = fact("renewal_open", "sha256");

    place(fx, "renewal_open", "/srv/naccs/suzuki.p12");
    /* renewal_open, and the 28d notify step crossed eight days ago. */
    assert_int_equal(evaluate(fx, now), 2);
    a = outbox(fx, 0);
    assert_int_equal(a->event, KIGEN_EVENT_CERT_RENEWAL_OPEN);
    assert_string_equal(kigen_alert_get(a, "KIGEN_EVENT"), "cert.renewal_open");
    assert_string_equal(kigen_alert_get(a, "KIGEN_SHA256"), sha);
    assert_string_equal(kigen_alert_get(a, "KIGEN_DAYS_LEFT"), "20");
    assert_string_equal(kigen_alert_get(a, "KIGEN_NOT_AFTER"), "2026-12-14T12:00:00Z");
    assert_string_equal(kigen_alert_get(a, "KIGEN_RENEWAL_OPENS"), "2026-11-16T12:00:00Z");
    assert_string_equal(kigen_alert_get(a, "KIGEN_PATHS"), "/srv/naccs/suzuki.p12");
    assert_string_equal(kigen_alert_get(a, "KIGEN_LABEL_TEAM"), "customs");
    assert_non_null(strstr(a->message, "renew it now at https://renew.example/"));
    assert_int_equal(outbox(fx, 1)->event, KIGEN_EVENT_CERT_THRESHOLD);
    deliver_all(fx);

    assert_int_equal(evaluate(fx, now + 3600), 0);
    assert_int_equal(evaluate(fx, now + 86399), 0);
    assert_int_equal(evaluate(fx, now + 86400), 1);
    assert_non_null(strstr(outbox(fx, 0)->message, "Reminder"));
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 86400 + 10), 0);
    free(sha);
}

static void test_threshold_steps_fire_once_each(void **state)
{
    struct fixture *fx = *state;
    int64_t na = at("2029-02-01T00:00:00Z"); /* tanaka */

    place(fx, "ok", "/srv/naccs/tanaka.p12");
    assert_int_equal(evaluate(fx, na - 61 * 86400), 0);
    assert_int_equal(evaluate(fx, na - 60 * 86400 - 1), 0);
    assert_int_equal(evaluate(fx, na - 60 * 86400), 1);
    assert_int_equal(outbox(fx, 0)->event, KIGEN_EVENT_CERT_THRESHOLD);
    assert_non_null(strstr(outbox(fx, 0)->message, "60d"));
    assert_non_null(strstr(outbox(fx, 0)->message, "renewal opens on"));
    deliver_all(fx);
    assert_int_equal(evaluate(fx, na - 59 * 86400), 0);
    /* Asleep from 60 days to 10: one alert for the state, one for the 14d step only. */
    assert_int_equal(evaluate(fx, na - 10 * 86400), 2);
    assert_non_null(strstr(outbox(fx, 1)->message, "14d"));
    deliver_all(fx);
    assert_int_equal(evaluate(fx, na - 10 * 86400 + 60), 0);
}

static void test_one_alert_for_a_certificate_in_two_files(void **state)
{
    struct fixture *fx = *state;

    place(fx, "expired", "/srv/naccs/a.p12");
    place(fx, "expired", "/srv/naccs/b.p12");
    assert_int_equal(evaluate(fx, at("2026-11-24T12:00:00Z")), 1);
    assert_int_equal(outbox(fx, 0)->event, KIGEN_EVENT_CERT_EXPIRED);
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_PATHS"),
                        "/srv/naccs/a.p12, /srv/naccs/b.p12");
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_DAYS_LEFT"), "-24");
    assert_non_null(strstr(outbox(fx, 0)->message, "re-issued (re-issue takes a day)"));
}

static void test_saved_state_sends_nothing_twice_after_restart(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    char *text;
    size_t len;
    char err[256];

    place(fx, "expired", "/srv/naccs/a.p12");
    place(fx, "critical", "/srv/naccs/b.p12");
    assert_int_equal(evaluate(fx, now), 3);
    /* One alert confirmed, two still in flight when the daemon stops. */
    kigen_engine_delivered(&fx->engine, fx->engine.outbox[0].id);
    assert_int_equal(kigen_engine_save(&fx->engine, &text, &len), 0);
    kigen_engine_done(&fx->engine);
    kigen_engine_init(&fx->engine);
    assert_int_equal(kigen_engine_load(&fx->engine, text, len, err, sizeof(err)), 0);
    assert_int_equal(fx->engine.n_outbox, 2); /* delivered again: at least once */
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 60), 0);
    free(text);
}

static void test_probe_down_is_remembered_across_a_restart(void **state)
{
    struct fixture *fx = *state;
    char *text;
    size_t len;
    char err[256];

    assert_int_equal(kigen_engine_probe_down_since(&fx->engine, "naccs-cert"), 0);
    assert_int_equal(kigen_engine_probe_set_down(&fx->engine, "naccs-cert", 1764000000), 0);
    assert_int_equal(kigen_engine_probe_set_down(&fx->engine, "webnaccs", 1764000100), 0);
    assert_true(fx->engine.dirty);
    assert_int_equal(kigen_engine_save(&fx->engine, &text, &len), 0);
    kigen_engine_done(&fx->engine);
    kigen_engine_init(&fx->engine);
    assert_int_equal(kigen_engine_load(&fx->engine, text, len, err, sizeof(err)), 0);
    free(text);
    assert_false(fx->engine.dirty);
    assert_int_equal(kigen_engine_probe_down_since(&fx->engine, "naccs-cert"), 1764000000);
    assert_int_equal(kigen_engine_probe_down_since(&fx->engine, "webnaccs"), 1764000100);
    /* probe.up clears it, and that is saved too. */
    kigen_engine_probe_clear_down(&fx->engine, "webnaccs");
    assert_true(fx->engine.dirty);
    assert_int_equal(kigen_engine_probe_down_since(&fx->engine, "webnaccs"), 0);
    assert_int_equal(kigen_engine_save(&fx->engine, &text, &len), 0);
    assert_null(strstr(text, "webnaccs"));
    assert_non_null(strstr(text, "\"probe_down\":\"naccs-cert\""));
    free(text);
}

static void test_file_names_that_are_not_utf8_survive_a_restart(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    char *text, *again;
    size_t len, len2;
    char err[256];
    const struct kigen_tracked *t;

    place(fx, "expired", "/srv/naccs/\xff\xfe-tanaka.p12");
    assert_int_equal(evaluate(fx, now), 1);
    assert_int_equal(kigen_engine_save(&fx->engine, &text, &len), 0);
    assert_non_null(strstr(text, "\"hex\""));
    kigen_engine_done(&fx->engine);
    kigen_engine_init(&fx->engine);
    assert_int_equal(kigen_engine_load(&fx->engine, text, len, err, sizeof(err)), 0);
    assert_int_equal(fx->engine.n_outbox, 1);
    t = kigen_strmap_get(&fx->engine.certs,
                         kigen_alert_get(fx->engine.outbox[0].alert, "KIGEN_SHA256"));
    assert_non_null(t);
    assert_non_null(strstr(t->locations, "/srv/naccs/\xff\xfe-tanaka.p12"));
    assert_non_null(strstr(kigen_alert_get(fx->engine.outbox[0].alert, "KIGEN_PATHS"), "\xff\xfe"));
    assert_int_equal(kigen_engine_save(&fx->engine, &again, &len2), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(text, again, len);
    free(text);
    free(again);
    /* Nothing is due again for it. */
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 60), 0);
}

static void test_corrupt_or_truncated_state_is_refused(void **state)
{
    struct fixture *fx = *state;
    char *text, err[256];
    size_t len;

    place(fx, "expired", "/srv/naccs/a.p12");
    assert_int_equal(evaluate(fx, at("2026-11-24T12:00:00Z")), 1);
    assert_int_equal(kigen_engine_save(&fx->engine, &text, &len), 0);
    for (size_t cut = 0; cut < len; cut += 7) {
        struct kigen_engine e;

        kigen_engine_init(&e);
        assert_int_equal(kigen_engine_load(&e, text, cut, err, sizeof(err)), -EINVAL);
        assert_int_equal(e.n_outbox, 0);
        kigen_engine_done(&e);
    }
    *strchr(text, '\n') = 'x'; /* two records run together */
    assert_int_equal(kigen_engine_load(&fx->engine, text, len, err, sizeof(err)), -EINVAL);
    assert_true(strlen(err) > 0);
    free(text);
}

static void test_renewed_in_place_and_gone(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");

    place(fx, "critical", "/srv/naccs/sato.p12");
    place(fx, "expired", "/srv/naccs/old.p12");
    assert_true(evaluate(fx, now) >= 2);
    deliver_all(fx);
    /* sato.p12 now holds a later certificate for the same subject; old.p12 is deleted. */
    drop(fx, "/srv/naccs/sato.p12");
    place(fx, "renewed", "/srv/naccs/sato.p12");
    drop(fx, "/srv/naccs/old.p12");
    assert_int_equal(evaluate(fx, now + 60), 2);
    for (size_t i = 0; i < 2; i++) {
        const struct kigen_alert *a = outbox(fx, i);

        if (a->event == KIGEN_EVENT_CERT_RENEWED) {
            assert_string_equal(kigen_alert_get(a, "KIGEN_NOT_AFTER"), "2031-12-20T00:00:00Z");
            assert_string_equal(kigen_alert_get(a, "KIGEN_PATHS"), "/srv/naccs/sato.p12");
        } else {
            assert_int_equal(a->event, KIGEN_EVENT_CERT_GONE);
            assert_string_equal(kigen_alert_get(a, "KIGEN_PATHS"), "/srv/naccs/old.p12");
        }
    }
    assert_int_not_equal(outbox(fx, 0)->event, outbox(fx, 1)->event);
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 120), 0);
}

static void test_gone_names_every_location_its_keystores_and_labels(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    const struct kigen_alert *a;

    place(fx, "expired", "/srv/naccs/a.p12");
    place(fx, "expired", "/srv/naccs/b.p12");
    assert_int_equal(evaluate(fx, now), 1);
    deliver_all(fx);
    drop(fx, "/srv/naccs/a.p12");
    assert_int_equal(evaluate(fx, now + 60), 0); /* still in b.p12 */
    /* The locations are those of the last evaluation that saw it, in path order. */
    place(fx, "expired", "/srv/naccs/a.p12");
    assert_int_equal(evaluate(fx, now + 120), 0);
    drop(fx, "/srv/naccs/a.p12");
    drop(fx, "/srv/naccs/b.p12");
    assert_int_equal(evaluate(fx, now + 180), 1);
    a = outbox(fx, 0);
    assert_int_equal(a->event, KIGEN_EVENT_CERT_GONE);
    assert_string_equal(kigen_alert_get(a, "KIGEN_PATHS"), "/srv/naccs/a.p12, /srv/naccs/b.p12");
    assert_string_equal(kigen_alert_get(a, "KIGEN_KEYSTORE"), "naccs");
    assert_string_equal(kigen_alert_get(a, "KIGEN_LABEL_TEAM"), "customs");
    assert_non_null(strstr(a->message, "/srv/naccs/a.p12, /srv/naccs/b.p12"));
}

/* Nothing was ever said about an ok certificate; its disappearance is still news. */
static void test_gone_is_said_of_a_certificate_never_alerted_about(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");

    char *text, *sha = fact("ok", "sha256");
    size_t len;

    place(fx, "ok", "/srv/naccs/tanaka.p12");
    assert_int_equal(evaluate(fx, now), 0);
    assert_int_equal(evaluate(fx, now + 60), 0);
    /* Remembered, but not in the state file: nothing about it could be sent twice. */
    assert_int_equal(fx->engine.certs.n, 1);
    assert_false(fx->engine.dirty);
    assert_int_equal(kigen_engine_save(&fx->engine, &text, &len), 0);
    assert_null(strstr(text, sha));
    free(text);
    free(sha);
    drop(fx, "/srv/naccs/tanaka.p12");
    assert_int_equal(evaluate(fx, now + 120), 1);
    assert_int_equal(outbox(fx, 0)->event, KIGEN_EVENT_CERT_GONE);
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_PATHS"), "/srv/naccs/tanaka.p12");
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 180), 0);
    assert_int_equal(fx->engine.certs.n, 0);
}

/* A probe's server certificate names its target, host and port as probe alerts do. */
static void test_server_certificate_alerts_name_the_probe(void **state)
{
    struct fixture *fx = *state;
    const struct kigen_alert *a;

    assert_int_equal(inventory_place(fx->inventory, fx->ctx, "certs/critical.pem",
                                     "probe:naccs-cert", "[::1]:8443"),
                     1);
    assert_true(evaluate(fx, at("2026-11-24T12:00:00Z")) >= 1);
    a = outbox(fx, 0);
    assert_string_equal(kigen_alert_get(a, "KIGEN_PROBE"), "naccs-cert");
    assert_string_equal(kigen_alert_get(a, "KIGEN_HOST"), "::1");
    assert_string_equal(kigen_alert_get(a, "KIGEN_PORT"), "8443");
    assert_string_equal(kigen_alert_get(a, "KIGEN_PATHS"), "[::1]:8443");
    /* A file's certificate has none of them. */
    deliver_all(fx);
    place(fx, "expired", "/srv/naccs/old.p12");
    assert_int_equal(evaluate(fx, at("2026-11-24T12:00:00Z") + 60), 1);
    assert_null(kigen_alert_get(outbox(fx, 0), "KIGEN_PROBE"));
    assert_null(kigen_alert_get(outbox(fx, 0), "KIGEN_HOST"));
}

static void test_scan_errors_fire_once_and_clear(void **state)
{
    struct fixture *fx = *state;
    struct kigen_file *f = kigen_file_new("naccs", "/srv/naccs/bad.p12");
    int64_t now = at("2026-11-24T12:00:00Z");

    f->error = KIGEN_E_WRONG_PASSWORD;
    f->message = strdup("MAC verification failed");
    assert_int_equal(kigen_inventory_put(fx->inventory, f), 0);
    assert_int_equal(evaluate(fx, now), 1);
    assert_int_equal(outbox(fx, 0)->event, KIGEN_EVENT_SCAN_ERROR);
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_PATHS"), "/srv/naccs/bad.p12");
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_KEYSTORE"), "naccs");
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_LABEL_TEAM"), "customs");
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 86400 * 3), 0);
    drop(fx, "/srv/naccs/bad.p12");
    assert_int_equal(evaluate(fx, now + 86400 * 4), 0);
    assert_int_equal(fx->engine.errors.n, 0);
}

/* Saves and loads the engine back, as a restart does. */
static void restart(struct fixture *fx)
{
    char *text, err[256];
    size_t len;

    assert_int_equal(kigen_engine_save(&fx->engine, &text, &len), 0);
    kigen_engine_done(&fx->engine);
    kigen_engine_init(&fx->engine);
    assert_int_equal(kigen_engine_load(&fx->engine, text, len, err, sizeof(err)), 0);
    free(text);
}

/* SPEC §13: a verified answer says revoked; cert.revoked once, never reminded, not after a restart.
 */
static void test_revoked_fires_once_and_never_reminds(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    struct kigen_revocation_status *rs = calloc(1, sizeof(*rs));
    const struct kigen_alert *a;
    struct kigen_file *f;
    char hex[65];

    fx->config.policy.revocation = true;
    place(fx, "ok", "/srv/naccs/lost-phone.p12");
    f = kigen_inventory_find(fx->inventory, "naccs", "/srv/naccs/lost-phone.p12");
    kigen_cert_sha256_hex(&f->certs.v[0], hex);
    *rs = (struct kigen_revocation_status){ .status = KIGEN_REV_REVOKED,
                                            .source = KIGEN_REV_SOURCE_OCSP,
                                            .checked_at = now,
                                            .revoked_at = at("2026-11-20T09:00:00Z"),
                                            .reason = 1 };
    assert_int_equal(kigen_strmap_put(&fx->inventory->revocations, hex, rs), 0);
    assert_int_equal(evaluate(fx, now), 1);
    a = outbox(fx, 0);
    assert_int_equal(a->event, KIGEN_EVENT_CERT_REVOKED);
    assert_string_equal(kigen_alert_get(a, "KIGEN_REVOKED_AT"), "2026-11-20T09:00:00Z");
    assert_string_equal(kigen_alert_get(a, "KIGEN_REVOCATION_SOURCE"), "ocsp");
    assert_string_equal(kigen_alert_get(a, "KIGEN_REVOCATION_REASON"), "keyCompromise");
    assert_non_null(strstr(a->message, "remove the file"));
    assert_non_null(strstr(a->message, "re-issue takes a day"));
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 3 * 86400), 0); /* no reminder, no threshold */
    restart(fx);
    assert_int_equal(evaluate(fx, now + 4 * 86400), 0);
}

/* crl.stale once per CRL (issuer and this_update), also after a restart; again for a new one. */
static void test_stale_crl_fires_once_per_crl(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    struct kigen_file *f = kigen_file_new("naccs", "/srv/naccs/ca.crl");
    struct kigen_crl *crl;

    f->format = KIGEN_FORMAT_DER;
    f->certs.crls = calloc(1, sizeof(*f->certs.crls));
    f->certs.crls->v = calloc(1, sizeof(*f->certs.crls->v));
    f->certs.crls->n = 1;
    crl = &f->certs.crls->v[0];
    crl->issuer = strdup("CN=NACCS Client CA,O=Test,C=JP");
    crl->this_update = now - 40 * 86400;
    crl->next_update = now + 86400;
    assert_int_equal(kigen_inventory_put(fx->inventory, f), 0);
    assert_int_equal(evaluate(fx, now), 0); /* fresh */
    assert_int_equal(evaluate(fx, now + 86400 + 1), 1);
    assert_int_equal(outbox(fx, 0)->event, KIGEN_EVENT_CRL_STALE);
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_PATHS"), "/srv/naccs/ca.crl");
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_LABEL_TEAM"), "customs");
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 2 * 86400), 0);
    restart(fx);
    assert_int_equal(evaluate(fx, now + 3 * 86400), 0);
    /* A new CRL came and went stale in its turn: said again. */
    crl->this_update = now + 3 * 86400;
    crl->next_update = now + 4 * 86400;
    assert_int_equal(evaluate(fx, now + 3 * 86400 + 60), 0);
    assert_int_equal(evaluate(fx, now + 5 * 86400), 1);
}

/* One scan.error per URL and kind; quiet while it lasts, after a restart too; again once fixed. */
static void test_revocation_failures_fire_once_per_url_and_kind(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    struct kigen_revocation_failure f[] = {
        { "http://crl.example/ca.crl", "revocation_fetch", "HTTP status 503" },
        { "http://ocsp.example/", "revocation_bad_signature", "not signed by the issuer" },
    };

    assert_int_equal(kigen_engine_revocation_failures(&fx->engine, &fx->config, f, 2, now), 2);
    assert_int_equal(outbox(fx, 0)->event, KIGEN_EVENT_SCAN_ERROR);
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_PATHS"), "http://crl.example/ca.crl");
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_ERROR"), "revocation_fetch");
    deliver_all(fx);
    assert_int_equal(kigen_engine_revocation_failures(&fx->engine, &fx->config, f, 2, now), 0);
    restart(fx);
    assert_int_equal(kigen_engine_revocation_failures(&fx->engine, &fx->config, f, 2, now), 0);
    /* The CRL works again; the OCSP answer now fails another way. */
    f[1].kind = "revocation_stale";
    assert_int_equal(kigen_engine_revocation_failures(&fx->engine, &fx->config, &f[1], 1, now), 1);
    deliver_all(fx);
    assert_int_equal(kigen_engine_revocation_failures(&fx->engine, &fx->config, f, 1, now), 1);
}

static void test_next_wakeup_is_the_next_step_or_reminder(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    struct kigen_view view;

    place(fx, "renewal_open", "/srv/naccs/suzuki.p12"); /* ends 2026-12-14T12:00Z */
    assert_int_equal(evaluate(fx, now), 2);
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, now, NULL, &view), 0);
    /* The reminder (tomorrow) comes before the 14d step (2026-11-30T12:00Z). */
    assert_int_equal(kigen_engine_next_wakeup(&fx->engine, &fx->config, &view, now), now + 86400);
    kigen_view_done(&view);
}

static void test_renewed_in_one_copy_while_another_copy_remains(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    const struct kigen_alert *a;

    place(fx, "critical", "/srv/naccs/sato.p12");
    place(fx, "critical", "/srv/naccs/backup/sato.p12");
    assert_true(evaluate(fx, now) >= 1);
    deliver_all(fx);
    /* One copy is replaced by the renewal; the other still holds the old certificate. */
    drop(fx, "/srv/naccs/sato.p12");
    place(fx, "renewed", "/srv/naccs/sato.p12");
    assert_int_equal(evaluate(fx, now + 60), 1);
    a = outbox(fx, 0);
    assert_int_equal(a->event, KIGEN_EVENT_CERT_RENEWED);
    assert_string_equal(kigen_alert_get(a, "KIGEN_PATHS"), "/srv/naccs/sato.p12");
    assert_string_equal(kigen_alert_get(a, "KIGEN_NOT_AFTER"), "2031-12-20T00:00:00Z");
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 120), 0);
    /* The old copy is still alerted on, by its own path, when a reminder is due. */
    assert_int_equal(evaluate(fx, now + 86400 + 60), 1);
    a = outbox(fx, 0);
    assert_int_equal(a->event, KIGEN_EVENT_CERT_CRITICAL);
    assert_string_equal(kigen_alert_get(a, "KIGEN_PATHS"), "/srv/naccs/backup/sato.p12");
    deliver_all(fx);
}

/* A keystore_unavailable error at the keystore root, as the scan records it. */
static void place_unavailable(struct fixture *fx)
{
    struct kigen_file *f = kigen_file_new("naccs", "/srv/naccs");

    assert_non_null(f);
    f->error = KIGEN_E_KEYSTORE_UNAVAILABLE;
    f->message = strdup("keystore root '/srv/naccs': No such file or directory");
    assert_int_equal(kigen_inventory_put(fx->inventory, f), 0);
}

static void test_restart_while_root_is_unavailable_says_nothing_gone(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z");
    char *text, err[256];
    size_t len;

    place(fx, "critical", "/srv/naccs/sato.p12");
    place(fx, "expired", "/srv/naccs/old.p12");
    assert_int_equal(kigen_engine_set_root_dev(&fx->engine, "naccs", "/srv/naccs", 2049), 0);
    assert_true(evaluate(fx, now) >= 2);
    deliver_all(fx);
    assert_int_equal(kigen_engine_save(&fx->engine, &text, &len), 0);
    kigen_engine_done(&fx->engine);
    kigen_engine_init(&fx->engine);
    assert_int_equal(kigen_engine_load(&fx->engine, text, len, err, sizeof(err)), 0);
    free(text);
    assert_int_equal(kigen_engine_root_dev(&fx->engine, "naccs", "/srv/naccs"), 2049);
    assert_int_equal(kigen_engine_root_dev(&fx->engine, "naccs", "/srv/other"), 0);

    /* The daemon comes back with the share away: nothing read, only the root's error. */
    drop(fx, "/srv/naccs/sato.p12");
    drop(fx, "/srv/naccs/old.p12");
    place_unavailable(fx);
    assert_int_equal(evaluate(fx, now + 60), 1);
    assert_int_equal(outbox(fx, 0)->event, KIGEN_EVENT_SCAN_ERROR);
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_ERROR"), "keystore_unavailable");
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 120), 0);

    /* The share is back, less old.p12, deleted meanwhile: that one alone is gone. */
    drop(fx, "/srv/naccs");
    place(fx, "critical", "/srv/naccs/sato.p12");
    assert_int_equal(evaluate(fx, now + 180), 1);
    assert_int_equal(outbox(fx, 0)->event, KIGEN_EVENT_CERT_GONE);
    assert_string_equal(kigen_alert_get(outbox(fx, 0), "KIGEN_PATHS"), "/srv/naccs/old.p12");
    deliver_all(fx);
    assert_int_equal(evaluate(fx, now + 240), 0);
}

static void test_japanese_changes_the_message_and_no_field(void **state)
{
    struct fixture *fx = *state;
    int64_t now = at("2026-11-24T12:00:00Z"); /* suzuki ends 2026-12-14T12:00Z, a Monday */
    struct kigen_alert *en[2];

    place(fx, "renewal_open", "/srv/naccs/suzuki.p12");
    place(fx, "renewal_open", "/srv/naccs/copy/suzuki.p12");
    assert_int_equal(evaluate(fx, now), 2);
    for (size_t i = 0; i < 2; i++)
        assert_non_null(en[i] = kigen_alert_dup(outbox(fx, i)));
    assert_non_null(strstr(en[0]->message, "expires on 2026-12-14 12:00 UTC, in 20 days: renew it "
                                           "now at https://renew.example/; found in "));
    assert_non_null(strstr(en[0]->message, " and 1 other location."));

    /* A new engine remembers nothing: the same alerts again, in Japanese. */
    kigen_engine_done(&fx->engine);
    kigen_engine_init(&fx->engine);
    fx->engine.language = KIGEN_LANGUAGE_JA;
    assert_int_equal(evaluate(fx, now), 2);
    for (size_t i = 0; i < 2; i++) {
        const struct kigen_alert *ja = outbox(fx, i);

        assert_same_alert_fields(en[i], ja);
        assert_string_not_equal(en[i]->message, ja->message);
        assert_non_null(strstr(ja->message, "デジタル証明書 "));
        assert_non_null(strstr(ja->message, "2026年12月14日(月) 12:00 UTC に有効期限が切れます"));
    }
    assert_non_null(strstr(outbox(fx, 0)->message,
                           "今すぐ更新してください（更新先: https://renew.example/）。保管場所: "));
    assert_non_null(strstr(outbox(fx, 0)->message, " ほか 1 か所。"));
    for (size_t i = 0; i < 2; i++)
        kigen_alert_free(en[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_renewal_open_fires_once_then_reminds_daily, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_threshold_steps_fire_once_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_japanese_changes_the_message_and_no_field, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_one_alert_for_a_certificate_in_two_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_saved_state_sends_nothing_twice_after_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_probe_down_is_remembered_across_a_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_names_that_are_not_utf8_survive_a_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_or_truncated_state_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_renewed_in_place_and_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_names_every_location_its_keystores_and_labels,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_is_said_of_a_certificate_never_alerted_about,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_certificate_alerts_name_the_probe, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scan_errors_fire_once_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_fires_once_and_never_reminds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_crl_fires_once_per_crl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_failures_fire_once_per_url_and_kind, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_next_wakeup_is_the_next_step_or_reminder, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_renewed_in_one_copy_while_another_copy_remains, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restart_while_root_is_unavailable_says_nothing_gone,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
