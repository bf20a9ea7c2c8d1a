#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <uv.h>

#include "metrics.h"
#include "probe.h"
#include "readtest.h"
#include "timeutil.h"

#define NOW "2026-11-24T12:00:00Z"

static int64_t notify[] = { 60 * 86400, 28 * 86400, 14 * 86400, 7 * 86400, 3 * 86400, 86400 };

struct fixture {
    struct kigen_read_ctx *ctx;
    struct kigen_label naccs_labels[2];
    struct kigen_label odd_label;
    struct kigen_keystore ks[2];
    struct kigen_config config;
    struct kigen_inventory *inventory;
    char dir[256];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx || kigen_read_ctx_new(&fx->ctx) < 0 || kigen_inventory_new(&fx->inventory) < 0)
        return -1;
    fx->naccs_labels[0] = (struct kigen_label){ "team", "customs" };
    fx->naccs_labels[1] = (struct kigen_label){ "site", "tokyo" };
    fx->ks[0].name = "naccs";
    fx->ks[0].path = "/srv/naccs";
    fx->ks[0].labels = (struct kigen_labels){ fx->naccs_labels, 2 };
    fx->odd_label = (struct kigen_label){ "note", "two\nlines" };
    fx->ks[1].name = "odd";
    fx->ks[1].path = "/srv/odd";
    fx->ks[1].labels = (struct kigen_labels){ &fx->odd_label, 1 };
    fx->config.keystores = fx->ks;
    fx->config.n_keystores = 2;
    fx->config.policy = (struct kigen_policy){ .renew_before = 28 * 86400,
                                               .critical_before = 7 * 86400,
                                               .has_notify = true,
                                               .notify_before = notify,
                                               .n_notify = 6 };
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kigen-metrics-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[300];

    kigen_inventory_free(fx->inventory);
    kigen_read_ctx_free(fx->ctx);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

/* Puts the certificates of fixture name at (keystore, path). */
static void place(struct fixture *fx, const char *name, const char *keystore, const char *path)
{
    inventory_place(fx->inventory, fx->ctx, name, keystore, path);
}

static void place_error(struct fixture *fx, const char *path, enum kigen_err error)
{
    struct kigen_file *f = kigen_file_new("naccs", path);

    assert_non_null(f);
    f->error = (int)error;
    f->message = strdup("could not be read");
    assert_int_equal(kigen_inventory_put(fx->inventory, f), 0);
}

/* A self-signed certificate with the common name cn, valid through 2026. */
static void place_synthetic(struct fixture *fx, const char *cn, const char *keystore,
                            const char *path)
{
    struct kigen_file *f = kigen_file_new(keystore, path);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(f);
    assert_true(key && x && name);
    assert_int_equal(X509_set_version(x, 2), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, name), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)at("2026-01-01T00:00:00Z")));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)at("2027-01-01T00:00:00Z")));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_int_equal(kigen_certs_add_x509(&f->certs, fx->ctx, x, "0"), 0);
    f->format = KIGEN_FORMAT_PEM;
    assert_int_equal(kigen_inventory_put(fx->inventory, f), 0);
    X509_NAME_free(name);
    X509_free(x);
    EVP_PKEY_free(key);
}

/* Asserts that text holds line as one whole line. */
static void assert_line(const char *text, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("no line '%s' in:\n%.2000s", line, text);
}

static size_t count(const char *text, const char *s)
{
    size_t n = 0;

    for (const char *p = text; (p = strstr(p, s)); p += strlen(s))
        n++;
    return n;
}

/*
 * Checks every line against the text exposition format: "# HELP name text", "# TYPE name
 * gauge", or name{label="value",...} value, label values escaped.
 */
static void assert_exposition_format(const char *text)
{
    const char *p = text;

    while (*p) {
        const char *end = strchr(p, '\n');
        char *num_end;

        assert_non_null(end);
        if (*p == '#') {
            assert_true(strncmp(p, "# HELP kigen_", 13) == 0 ||
                        strncmp(p, "# TYPE kigen_", 13) == 0);
            p = end + 1;
            continue;
        }
        assert_true(strncmp(p, "kigen_", 6) == 0);
        while ((*p >= 'a' && *p <= 'z') || *p == '_')
            p++;
        if (*p == '{') {
            do {
                p++;
                assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_');
                while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || *p == '_')
                    p++;
                assert_int_equal(*p++, '=');
                assert_int_equal(*p++, '"');
                while (*p != '"') {
                    assert_true(*p != '\n' && *p != '\0');
                    if (*p == '\\') {
                        p++;
                        assert_true(*p == '\\' || *p == '"' || *p == 'n');
                    }
                    p++;
                }
                p++;
            } while (*p == ',');
            assert_int_equal(*p++, '}');
        }
        assert_int_equal(*p++, ' ');
        strtod(p, &num_end);
        assert_ptr_equal(num_end, end);
        p = end + 1;
    }
}

/* Every option of metrics: (SPEC §10): what the metrics were before they were made lean. */
static const struct kigen_metrics full = { .labels = KIGEN_METRICS_SUBJECT | KIGEN_METRICS_ISSUER |
                                                     KIGEN_METRICS_SERIAL | KIGEN_METRICS_SHA256,
                                           .not_before = true,
                                           .state_series = true };

static char *render_with(const struct kigen_view *view, const struct kigen_metrics *options,
                         double scan_seconds, size_t *ret_len)
{
    struct kigen_metrics_extra extra = { .options = *options,
                                         .scan_duration_seconds = scan_seconds };
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(kigen_metrics_render(view, &extra, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    if (ret_len)
        *ret_len = len;
    return text;
}

static char *render(const struct kigen_view *view, double scan_seconds, size_t *ret_len)
{
    return render_with(view, &full, scan_seconds, ret_len);
}

/* How many lines of text start with prefix and contain s. */
static size_t count_lines_with(const char *text, const char *prefix, const char *s)
{
    size_t n = 0;

    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        const char *hit = strstr(line, s);

        assert_non_null(end);
        if (strncmp(line, prefix, strlen(prefix)) == 0 && hit && hit < end)
            n++;
        line = end + 1;
    }
    return n;
}

/* The sum of the kigen_certificates{state} samples. */
static long certificates_counted(const char *text)
{
    const char *p = text;
    long n = 0;

    while ((p = strstr(p, "\nkigen_certificates{state=\""))) {
        p = strchr(p, '}');
        assert_non_null(p);
        n += strtol(p + 1, NULL, 10);
    }
    return n;
}

/* The bytes of the lines of text that contain s, newlines included. */
static size_t bytes_of_lines_with(const char *text, const char *s)
{
    size_t n = 0;

    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        const char *hit = strstr(line, s);

        assert_non_null(end);
        if (hit && hit < end)
            n += (size_t)(end - line) + 1;
        line = end + 1;
    }
    return n;
}

static void test_every_option_gives_each_certificate_its_dates_and_states(void **state)
{
    struct fixture *fx = *state;
    static const char *const states[] = { "ok",      "renewal_open",  "critical",
                                          "expired", "not_yet_valid", "revoked" };
    char *sha = fact("ok", "sha256"), *subject = fact("ok", "subject");
    char *issuer = fact("ok", "issuer"), *serial = fact("ok", "serial");
    char *not_before = fact("ok", "not_before"), *not_after = fact("ok", "not_after");
    char *exp_sha = fact("expired", "sha256");
    char labels[2048], line[4096];
    struct kigen_view view;
    char *text;

    place(fx, "certs/bundle.pem", "naccs", "/srv/naccs/bundle.pem"); /* ok, expired, CA */
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), NULL, &view), 0);
    text = render(&view, 1.5, NULL);
    assert_exposition_format(text);

    snprintf(labels, sizeof(labels),
             "keystore=\"naccs\",path=\"/srv/naccs/bundle.pem\",entry=\"0\",subject_cn=\"tanaka\","
             "issuer_cn=\"NACCS Client CA\",subject=\"%s\",issuer=\"%s\",serial=\"%s\","
             "sha256=\"%s\",team=\"customs\",site=\"tokyo\"",
             subject, issuer, serial, sha);
    snprintf(line, sizeof(line), "kigen_cert_not_after_seconds{%s} %s", labels, not_after);
    assert_line(text, line);
    snprintf(line, sizeof(line), "kigen_cert_not_before_seconds{%s} %s", labels, not_before);
    assert_line(text, line);
    snprintf(line, sizeof(line), "kigen_cert_renewal_opens_seconds{%s} %lld", labels,
             (long long)(atoll(not_after) - 28 * 86400));
    assert_line(text, line);
    for (int s = 0; s < KIGEN_STATE_COUNT; s++) {
        snprintf(line, sizeof(line), "kigen_cert_state{%s,state=\"%s\"} %d", labels, states[s],
                 s == KIGEN_STATE_OK);
        assert_line(text, line);
    }
    /* The expired certificate, entry 1: five series, the one for expired at 1. */
    snprintf(line, sizeof(line), "entry=\"1\",");
    assert_int_equal(count(text, line), 3 + KIGEN_STATE_COUNT);
    snprintf(line, sizeof(line),
             "sha256=\"%s\",team=\"customs\",site=\"tokyo\",state=\"expired\"} 1", exp_sha);
    assert_int_equal(count(text, line), 1);
    snprintf(line, sizeof(line), "sha256=\"%s\",team=\"customs\",site=\"tokyo\",state=\"ok\"} 0",
             exp_sha);
    assert_int_equal(count(text, line), 1);

    assert_int_equal(count(text, "kigen_cert_state{"), 3 * KIGEN_STATE_COUNT);
    /* One current state per certificate, 0 for the other states. */
    assert_int_equal(count_lines_with(text, "kigen_cert_state{", "\"} 1"), 3);
    assert_int_equal(count_lines_with(text, "kigen_cert_state{", "\"} 0"),
                     3 * (KIGEN_STATE_COUNT - 1));
    assert_line(text, "# TYPE kigen_cert_not_after_seconds gauge");
    assert_line(text, "# TYPE kigen_cert_not_before_seconds gauge");
    assert_line(text, "# TYPE kigen_cert_renewal_opens_seconds gauge");
    assert_line(text, "# TYPE kigen_cert_state gauge");
    assert_line(text, "# TYPE kigen_scan_errors gauge");
    assert_line(text, "# TYPE kigen_scan_duration_seconds gauge");
    assert_line(text, "# TYPE kigen_certificates gauge");
    assert_int_equal(count(text, "# HELP "), 7);
    assert_int_equal(count(text, "# TYPE "), 7);
    assert_line(text, "kigen_scan_duration_seconds 1.5");
    assert_int_equal(certificates_counted(text), 3);

    free(text);
    kigen_view_done(&view);
    free(sha);
    free(subject);
    free(issuer);
    free(serial);
    free(not_before);
    free(not_after);
    free(exp_sha);
}

static void test_probe_results_give_up_duration_expiry_and_state(void **state)
{
    struct fixture *fx = *state;
    struct kigen_probe_status probes[3] = {
        { .name = "webnaccs",
          .host = "web-prod.nac.naccs.jp",
          .port = 443,
          .tls = true,
          .state = KIGEN_PROBE_UP,
          .duration_ms = 125.0,
          .last_probe = 1,
          .tls_not_after = 1800000000,
          .tls_chain_not_after = 1861920000 /* the root, 2029-01-01 */ },
        { .name = "naccs-cert",
          .host = "cert.nac.naccs.jp",
          .port = 443,
          .tls = true,
          .state = KIGEN_PROBE_MAINTENANCE,
          .error = "timeout",
          .duration_ms = 10000.0,
          .last_probe = 1 },
        { .name = "new", .host = "::1", .port = 8443, .state = KIGEN_PROBE_UNKNOWN },
    };
    struct kigen_view view;
    char *text;

    assert_int_equal(
        kigen_view_build(&fx->config, fx->inventory, at("2026-11-24T12:00:00Z"), NULL, &view), 0);
    kigen_view_set_probes(&view, probes, 3);
    assert_int_equal(view.probes_down, 0); /* maintenance is not down */
    text = render(&view, 0.5, NULL);
    assert_exposition_format(text);
    assert_line(text,
                "kigen_probe_up{name=\"webnaccs\",host=\"web-prod.nac.naccs.jp\",port=\"443\"} 1");
    assert_line(text,
                "kigen_probe_up{name=\"naccs-cert\",host=\"cert.nac.naccs.jp\",port=\"443\"} 0");
    assert_line(text,
                "kigen_probe_duration_seconds{name=\"webnaccs\",host=\"web-prod.nac.naccs.jp\","
                "port=\"443\"} 0.125000");
    assert_line(
        text, "kigen_probe_tls_not_after_seconds{name=\"webnaccs\",host=\"web-prod.nac.naccs.jp\","
              "port=\"443\"} 1800000000");
    /* SPEC §8: the earliest of the chain, one series per target with a chain. */
    assert_line(text, "kigen_probe_tls_chain_not_after_seconds{name=\"webnaccs\","
                      "host=\"web-prod.nac.naccs.jp\",port=\"443\"} 1861920000");
    assert_line(text,
                "kigen_probe_state{name=\"naccs-cert\",host=\"cert.nac.naccs.jp\",port=\"443\","
                "state=\"maintenance\"} 1");
    assert_line(text,
                "kigen_probe_state{name=\"new\",host=\"::1\",port=\"8443\",state=\"unknown\"} 1");
    /* Without a result there is no up, duration or expiry to tell, only the state. */
    assert_int_equal(count(text, "kigen_probe_up{name=\"new\""), 0);
    assert_int_equal(count(text, "kigen_probe_duration_seconds{name=\"new\""), 0);
    assert_int_equal(count(text, "kigen_probe_tls_not_after_seconds{"), 1);
    assert_int_equal(count(text, "kigen_probe_tls_chain_not_after_seconds{"), 1);
    assert_int_equal(count(text, "kigen_probe_state{"), 12);
    free(text);

    probes[0].state = KIGEN_PROBE_DOWN;
    kigen_view_set_probes(&view, probes, 3);
    assert_int_equal(view.probes_down, 1);
    assert_int_equal(kigen_view_exit_status(&view), 1);
    kigen_view_done(&view);
}

static void test_label_values_are_escaped(void **state)
{
    struct fixture *fx = *state;
    struct kigen_view view;
    char hex[65], line[2048];
    char *text;

    place_synthetic(fx, "quote\"back\\slash", "odd", "/srv/odd/a\"b.pem");
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), NULL, &view), 0);
    assert_int_equal(view.n_records, 1);
    /* RFC 2253 escapes the quote and the backslash itself; the metrics escape both again. */
    assert_string_equal(view.records[0].cert->subject, "CN=quote\\\"back\\\\slash");
    kigen_cert_sha256_hex(view.records[0].cert, hex);
    text = render(&view, 0, NULL);
    assert_exposition_format(text);
    snprintf(line, sizeof(line),
             "kigen_cert_not_after_seconds{keystore=\"odd\",path=\"/srv/odd/a\\\"b.pem\","
             "entry=\"0\",subject_cn=\"quote\\\"back\\\\slash\","
             "issuer_cn=\"quote\\\"back\\\\slash\",subject=\"CN=quote\\\\\\\"back\\\\\\\\slash\","
             "issuer=\"CN=quote\\\\\\\"back\\\\\\\\slash\",serial=\"1234\",sha256=\"%s\","
             "note=\"two\\nlines\"} %lld",
             hex, (long long)at("2027-01-01T00:00:00Z"));
    assert_line(text, line);
    free(text);
    kigen_view_done(&view);
}

static void test_unconfigured_keystore_gives_no_extra_labels(void **state)
{
    struct fixture *fx = *state;
    struct kigen_view view;
    char *text, *sha = fact("ok", "sha256"), line[512];

    place(fx, "certs/single.pem", "retired", "/srv/old/single.pem");
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), NULL, &view), 0);
    assert_null(view.records[0].keystore);
    text = render(&view, 0, NULL);
    snprintf(line, sizeof(line), "sha256=\"%s\",state=\"ok\"} 1\n", sha);
    assert_int_equal(count(text, line), 1);
    snprintf(line, sizeof(line), "sha256=\"%s\"} ", sha);
    assert_int_equal(count(text, line), 3);
    free(text);
    free(sha);
    kigen_view_done(&view);
}

static void test_scan_errors_are_counted_by_kind_and_all_kinds_shown(void **state)
{
    struct fixture *fx = *state;
    struct kigen_view view;
    char *text;

    place_error(fx, "/srv/naccs/tanaka.p12", KIGEN_E_WRONG_PASSWORD);
    place_error(fx, "/srv/naccs/a.pem", KIGEN_E_MALFORMED);
    place_error(fx, "/srv/naccs/b.der", KIGEN_E_MALFORMED);
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), NULL, &view), 0);
    text = render(&view, 0.25, NULL);
    assert_exposition_format(text);
    assert_line(text, "kigen_scan_errors{error=\"unreadable\"} 0");
    assert_line(text, "kigen_scan_errors{error=\"malformed\"} 2");
    assert_line(text, "kigen_scan_errors{error=\"wrong_password\"} 1");
    assert_line(text, "kigen_scan_errors{error=\"needs_password\"} 0");
    assert_line(text, "kigen_scan_errors{error=\"unsupported\"} 0");
    assert_line(text, "kigen_scan_errors{error=\"too_large\"} 0");
    assert_line(text, "kigen_scan_errors{error=\"keystore_unavailable\"} 0");
    assert_int_equal(count(text, "kigen_scan_errors{"), 7);
    assert_line(text, "kigen_scan_duration_seconds 0.25");
    assert_int_equal(certificates_counted(text), 0);
    assert_int_equal(count(text, "kigen_cert_"), 8); /* HELP and TYPE of four families only */
    free(text);
    kigen_view_done(&view);
}

static void test_hundred_thousand_certificates_render_completely(void **state)
{
    struct fixture *fx = *state;
    enum {
        N = 100000
    };
    struct kigen_file **files = calloc(N, sizeof(*files));
    struct kigen_view view = { .now = at(NOW) };
    struct kigen_certs certs = { 0 };
    char err[256], path[64], last[64];
    enum kigen_format format;
    size_t len, lines = 0;
    char *text;

    assert_non_null(files);
    assert_int_equal(
        read_fixture(fx->ctx, "certs/single.pem", NULL, 0, &certs, &format, err, sizeof(err)), 1);
    view.records = calloc(N, sizeof(*view.records));
    assert_non_null(view.records);
    for (size_t i = 0; i < N; i++) {
        struct kigen_record *rec = &view.records[i];

        snprintf(path, sizeof(path), "/srv/naccs/user%06zu.p12", i);
        files[i] = kigen_file_new("naccs", path);
        assert_non_null(files[i]);
        rec->file = files[i];
        rec->cert = &certs.v[0];
        rec->keystore = &fx->ks[0];
        rec->state = (enum kigen_state)(i % KIGEN_STATE_COUNT);
        rec->renewal_opens = certs.v[0].not_after - 28 * 86400;
    }
    view.n_records = N;

    /* How fast is for bench/ (rule: no timing in unit tests); here, that all of it is there. */
    text = render(&view, 2.0, &len);
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines,
                     2 * 7 + (3 + KIGEN_STATE_COUNT) * (size_t)N + 7 + 1 + KIGEN_STATE_COUNT);
    assert_int_equal(certificates_counted(text), N);
    snprintf(last, sizeof(last), "kigen_certificates{state=\"ok\"} %d",
             (N + KIGEN_STATE_COUNT - 1) / KIGEN_STATE_COUNT);
    assert_line(text, last);
    snprintf(last, sizeof(last), "path=\"/srv/naccs/user%06d.p12\"", N - 1);
    assert_int_equal(count(text, last), 3 + KIGEN_STATE_COUNT);
    free(text);
    /* The defaults: two lines per certificate. */
    text = render_with(&view, &(struct kigen_metrics){ 0 }, 2.0, &len);
    lines = 0;
    for (const char *p = text; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, 2 * 5 + 2 * (size_t)N + 7 + 1 + KIGEN_STATE_COUNT);
    assert_int_equal(count(text, last), 2);

    free(text);
    for (size_t i = 0; i < N; i++)
        kigen_file_free(files[i]);
    free(files);
    free(view.records);
    kigen_certs_clear(&certs);
    free(certs.v);
}

static void test_defaults_give_two_series_labelled_to_survive_a_renewal(void **state)
{
    struct fixture *fx = *state;
    static const struct kigen_metrics lean = { 0 };
    char *not_after = fact("ok", "not_after"), line[1024];
    const char *labels = "keystore=\"naccs\",path=\"/srv/naccs/bundle.pem\",entry=\"0\","
                         "subject_cn=\"tanaka\",issuer_cn=\"NACCS Client CA\","
                         "holder=\"Tanaka Taro\",team=\"customs\",site=\"tokyo\"";
    struct kigen_view view;
    char *text, *text_null;
    size_t len, len_null;

    place(fx, "certs/bundle.pem", "naccs", "/srv/naccs/bundle.pem"); /* ok, expired, CA */
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), NULL, &view), 0);
    for (size_t i = 0; i < view.n_records; i++)
        if (strcmp(view.records[i].cert->entry, "0") == 0)
            view.records[i].holder = "Tanaka Taro";
    text = render_with(&view, &lean, 1.5, &len);
    assert_exposition_format(text);

    snprintf(line, sizeof(line), "kigen_cert_not_after_seconds{%s} %s", labels, not_after);
    assert_line(text, line);
    snprintf(line, sizeof(line), "kigen_cert_renewal_opens_seconds{%s} %lld", labels,
             (long long)(atoll(not_after) - 28 * 86400));
    assert_line(text, line);
    /* Two series per certificate, nothing that a renewal changes in their labels. */
    assert_int_equal(count(text, "kigen_cert_"), 2 * 3 + 2 * 2); /* samples, HELP and TYPE */
    assert_int_equal(count(text, "kigen_cert_not_before_seconds"), 0);
    assert_int_equal(count(text, "kigen_cert_state"), 0);
    assert_int_equal(count(text, "sha256="), 0);
    assert_int_equal(count(text, "serial="), 0);
    assert_int_equal(count(text, "subject="), 0);
    assert_int_equal(count(text, "issuer="), 0);
    assert_int_equal(count(text, "holder="), 2);
    /* At most 400 bytes of text per certificate location (SPEC §10). */
    assert_true(bytes_of_lines_with(text, "entry=\"0\"") <= 400);
    /*
     * Counts per state whatever the options: tanaka ok, takahashi expired, and the CA made
     * today (ok or, after NOW, not yet valid).
     */
    assert_line(text, "# TYPE kigen_certificates gauge");
    assert_int_equal(certificates_counted(text), 3);
    assert_line(text, "kigen_certificates{state=\"expired\"} 1");
    assert_line(text, "kigen_certificates{state=\"renewal_open\"} 0");
    assert_line(text, "kigen_certificates{state=\"critical\"} 0");
    assert_int_equal(count(text, "kigen_certificates{state="), KIGEN_STATE_COUNT);
    assert_int_equal(count(text, "# HELP "), 5);
    assert_int_equal(count(text, "# TYPE "), 5);

    /* No extra at all renders the defaults too. */
    assert_int_equal(kigen_metrics_render(&view, NULL, &text_null, &len_null), 0);
    assert_line(text_null, line);
    assert_int_equal(count(text_null, "kigen_cert_"), 2 * 3 + 2 * 2);
    free(text_null);
    free(text);
    kigen_view_done(&view);
    free(not_after);
}

static void test_each_option_adds_its_labels_or_series(void **state)
{
    struct fixture *fx = *state;
    struct kigen_metrics options = { .labels = KIGEN_METRICS_SERIAL };
    struct kigen_view view;
    char *text;

    place(fx, "certs/single.pem", "naccs", "/srv/naccs/single.pem");
    assert_int_equal(kigen_view_build(&fx->config, fx->inventory, at(NOW), NULL, &view), 0);
    text = render_with(&view, &options, 0, NULL);
    assert_int_equal(count(text, "serial=\"1000\""), 2);
    assert_int_equal(count(text, "sha256="), 0);
    assert_int_equal(count(text, "subject="), 0);
    free(text);
    options = (struct kigen_metrics){ .labels = KIGEN_METRICS_SUBJECT | KIGEN_METRICS_SHA256,
                                      .not_before = true };
    text = render_with(&view, &options, 0, NULL);
    assert_exposition_format(text);
    assert_int_equal(count(text, "kigen_cert_not_before_seconds{"), 1);
    assert_int_equal(count(text, "subject=\""), 3);
    assert_int_equal(count(text, "sha256=\""), 3);
    assert_int_equal(count(text, "serial="), 0);
    assert_int_equal(count(text, "kigen_cert_state"), 0);
    free(text);
    options = (struct kigen_metrics){ .state_series = true };
    text = render_with(&view, &options, 0, NULL);
    assert_exposition_format(text);
    assert_int_equal(count(text, "kigen_cert_state{"), KIGEN_STATE_COUNT);
    assert_int_equal(count(text, "kigen_cert_not_before_seconds"), 0);
    free(text);
    kigen_view_done(&view);
}

static void assert_cn(const char *dn, const char *want)
{
    char *out = malloc(strlen(dn) + 1);

    assert_non_null(out);
    assert_int_equal(kigen_dn_first_cn(dn, out), strlen(want));
    assert_string_equal(out, want);
    free(out);
}

static void test_common_name_is_the_first_cn_of_the_rfc2253_name(void **state)
{
    (void)state;
    assert_cn("CN=tanaka,O=Example Trading,C=JP", "tanaka");
    assert_cn("C=JP,O=Example Trading,CN=tanaka", "tanaka");
    /* Escaped specials are one character; the comma does not end the value. */
    assert_cn("CN=Sato\\, Hanako,O=Example", "Sato, Hanako");
    assert_cn("CN=a\\+b\\=c\\\\d\\\"e\\<f\\>g\\;h,O=x", "a+b=c\\d\"e<f>g;h");
    assert_cn("CN=\\#hash\\ ", "#hash ");
    /* A multi-valued RDN: the attributes are split at '+'. */
    assert_cn("UID=tanaka+CN=田中 太郎,O=株式会社 例,C=JP", "田中 太郎");
    assert_cn("CN=田中 太郎+UID=tanaka,O=株式会社 例,C=JP", "田中 太郎");
    /* The first of two; lowercase and numeric types; an O that contains "CN=". */
    assert_cn("O=ACN=x,CN=first,CN=second", "first");
    assert_cn("cn=lower", "lower");
    assert_cn("2.5.4.3=numeric,O=x", "numeric");
    /* Bytes that are not UTF-8 keep their hex escapes: label values must be UTF-8. */
    assert_cn("CN=\\E7\\94,O=x", "\\E7\\94");
    assert_cn("O=No Common Name,C=JP", "");
    assert_cn("", "");
    assert_cn("garbage,,+", "");
    assert_cn("CN=", "");
}

/* ---- the textfile ---- */

static void written_cb(int status, void *data)
{
    int *ret = data;

    *ret = status;
}

static int write_file(const char *path, const char *text)
{
    uv_loop_t loop;
    int status = 1;

    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(
        kigen_textfile_write(&loop, path, strdup(text), strlen(text), written_cb, &status), 0);
    assert_int_equal(status, 1); /* never from within the call */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_not_equal(status, 1);
    return status;
}

/* The names in dir, sorted, joined by spaces. */
static void list_dir(const char *dir, char *out, size_t outlen)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);

    assert_true(n >= 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            if (out[0])
                strncat(out, " ", outlen - strlen(out) - 1);
            strncat(out, names[i]->d_name, outlen - strlen(out) - 1);
        }
        free(names[i]);
    }
    free(names);
}

static void test_textfile_is_replaced_atomically_and_readable(void **state)
{
    struct fixture *fx = *state;
    char path[512], names[512], *text;
    struct stat st;
    size_t len;
    mode_t old_mask;
    FILE *f;

    snprintf(path, sizeof(path), "%s/kigen.prom", fx->dir);
    old_mask = umask(077); /* systemd's UMask= must not hide the file from node_exporter */
    assert_int_equal(write_file(path, "kigen_certificates 1\n"), 0);
    assert_int_equal(write_file(path, "kigen_certificates 2\n"), 0);
    umask(old_mask);

    f = fopen(path, "r");
    assert_non_null(f);
    text = calloc(1, 256);
    len = fread(text, 1, 255, f);
    fclose(f);
    assert_int_equal(len, strlen("kigen_certificates 2\n"));
    assert_string_equal(text, "kigen_certificates 2\n");
    free(text);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    list_dir(fx->dir, names, sizeof(names));
    assert_string_equal(names, "kigen.prom"); /* no temporary file left behind */
}

static void test_textfile_in_missing_directory_reports_the_error(void **state)
{
    struct fixture *fx = *state;
    char path[512], names[512];

    snprintf(path, sizeof(path), "%s/nope/kigen.prom", fx->dir);
    assert_int_equal(write_file(path, "kigen_certificates 1\n"), -ENOENT);
    list_dir(fx->dir, names, sizeof(names));
    assert_string_equal(names, "");
}

static void test_textfile_failure_leaves_no_temporary_file(void **state)
{
    struct fixture *fx = *state;
    char path[512], names[512];

    /* A directory where the file should be: the rename fails after the write. */
    snprintf(path, sizeof(path), "%s/kigen.prom", fx->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/kigen.prom/x", fx->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/kigen.prom", fx->dir);
    assert_true(write_file(path, "kigen_certificates 1\n") < 0);
    list_dir(fx->dir, names, sizeof(names));
    assert_string_equal(names, "kigen.prom");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_give_two_series_labelled_to_survive_a_renewal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_option_adds_its_labels_or_series, setup,
                                        teardown),
        cmocka_unit_test(test_common_name_is_the_first_cn_of_the_rfc2253_name),
        cmocka_unit_test_setup_teardown(
            test_every_option_gives_each_certificate_its_dates_and_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_results_give_up_duration_expiry_and_state, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_label_values_are_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unconfigured_keystore_gives_no_extra_labels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scan_errors_are_counted_by_kind_and_all_kinds_shown,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hundred_thousand_certificates_render_completely, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_textfile_is_replaced_atomically_and_readable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_textfile_in_missing_directory_reports_the_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_textfile_failure_leaves_no_temporary_file, setup,
                                        teardown),
    };

    kigen_time_use_zone("UTC");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
