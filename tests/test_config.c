#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "alert.h"
#include "config.h"
#include "duration.h"
#include "testutil.h"

#define DAY          INT64_C(86400)
#define HOUR         INT64_C(3600)
#define MiB          (UINT64_C(1) << 20)
#define EVENT_BIT(e) (UINT32_C(1) << (e))
#define ALL_EVENTS   ((UINT32_C(1) << KIGEN_EVENT_COUNT) - 1)

/* The example of SPEC §3, verbatim (its `...` is literal text of `instructions`). */
static const char spec_example[] =
    "socket: /run/kigen/kigen.sock        # status socket\n"
    "state_dir: /var/lib/kigen            # persisted alert state\n"
    "scan_interval: 1h                    # full rescan; changes are picked up at once\n"
    "timezone: Asia/Tokyo                 # how dates are shown to people\n"
    "\n"
    "policy:                              # defaults for every certificate\n"
    "  renew_before: 28d                  # renewal window opens this long before not_after\n"
    "  critical_before: 7d\n"
    "  notify_before: [60d, 28d, 14d, 7d, 3d, 1d]\n"
    "rules:                               # first match wins; overrides policy fields\n"
    "  - match: { issuer: \"*NACCS Client CA*\" }\n"
    "    renew_before: 28d\n"
    "    renew_url: "
    "\"https://cert.nac.naccs.jp/NACCSClientCA/pages/renew/index-iOS.jsp?s=Sitel&lan=ja\"\n"
    "    reissue_note: \"re-issue takes at least one business day\"\n"
    "    validity: 5y1m                   # for register rows that give only `issued` (§12)\n"
    "    revocation: true                 # check CRL, else OCSP, for matching certificates (§13)\n"
    "    instructions: |                  # what the holder does; in their mail (§7)\n"
    "      Open the renewal page on the device that holds the certificate ...\n"
    "\n"
    "holders:                             # §12\n"
    "  register: /etc/kigen/holders.csv   # who holds what, and certificates kigen cannot read\n"
    "  admins: [\"it@example.co.jp\"]       # Cc of every mail; they receive the daily digest\n"
    "\n"
    "keystores:\n"
    "  - name: naccs-users\n"
    "    path: /srv/naccs                 # file or directory\n"
    "    recursive: true\n"
    "    include: [\"*\"]                   # globs on file names; exclude: [...] too\n"
    "    passwords:                       # tried in order, for PKCS#12 and keystore integrity\n"
    "      - file: /etc/kigen/naccs.pass\n"
    "      - credential: naccs-pass       # $CREDENTIALS_DIRECTORY/naccs-pass (systemd "
    "LoadCredential)\n"
    "      - env: KIGEN_NACCS_PASS\n"
    "    password_sidecar: true           # FILE.pass next to FILE, if present\n"
    "    follow_symlinks: false\n"
    "    max_file_size: 16MiB\n"
    "    labels: { team: customs }        # copied into alerts and metrics\n"
    "\n"
    "probes:\n"
    "  interval: 5m\n"
    "  timeout: 10s\n"
    "  failures_before_alert: 3\n"
    "  proxy: \"\"                          # http://host:port → HTTP CONNECT, as browsers do\n"
    "  targets:\n"
    "    - { name: webnaccs, host: web-prod.nac.naccs.jp, port: 443, tls: true }\n"
    "    - { name: naccs-cert, host: cert.nac.naccs.jp, port: 443, tls: true }\n"
    "\n"
    "maintenance:\n"
    "  - name: naccs-monthly\n"
    "    targets: [naccs-cert]\n"
    "    every: third tuesday\n"
    "    at: \"22:00\"\n"
    "    duration: 10h\n"
    "    timezone: Asia/Tokyo\n"
    "\n"
    "alerts:\n"
    "  journald: true\n"
    "  syslog: false                      # or a socket path\n"
    "  exec: \"\"                           # command run per alert, details in KIGEN_* env\n"
    "  textfile: \"\"                       # Prometheus node_exporter textfile path\n"
    "  reminder_every: 1d                 # repeat for unresolved renewal_open/critical/expired\n"
    "  mail:                              # off unless `sendmail` is set (§7)\n"
    "    sendmail: /usr/sbin/sendmail     # a command: the message on stdin, `-oi -t` added\n"
    "    from: \"kigen <kigen@admin.example.co.jp>\"\n"
    "    to_holders: true                 # the holder in To, the admins in Cc\n"
    "    digest_at: \"08:30\"               # daily summary to the admins, in `timezone`; \"\" = "
    "none\n"
    "  webhooks:\n"
    "    - name: team-chat\n"
    "      url: { credential: chat-webhook }  # a secret, from file / credential / env\n"
    "      format: slack                  # slack (Mattermost, Rocket.Chat, Google Chat) | teams | "
    "json\n"
    "      proxy: \"\"                      # as probes.proxy; \"env\" reads https_proxy\n"
    "      ca_file: \"\"                    # trust this CA bundle instead of the system's\n"
    "      events: [cert.renewal_open, cert.critical, cert.expired, probe.down]  # default: all\n"
    "\n"
    "language: en                         # en | ja: alerts, mails, webhooks (kigenctl follows "
    "LANG)\n"
    "\n"
    "revocation:                          # §13; used by rules with `revocation: true`\n"
    "  hosts: [\"*.naccs.jp\"]              # only URLs on these hosts are ever fetched; [] = "
    "none\n"
    "  interval: 6h                       # no CRL or OCSP answer is fetched more often than this\n"
    "  proxy: \"\"                          # as probes.proxy\n"
    "  max_size: 20MiB                    # a larger CRL is an error\n"
    "\n"
    "metrics:                             # §10: what /metrics and the textfile add to the lean "
    "default\n"
    "  labels: []                         # any of subject issuer serial sha256\n"
    "  not_before: false\n"
    "  state_series: false\n";

/* A config that must be rejected, where, and why. */
struct bad {
    const char *text;
    size_t line;
    size_t column;
    const char *reason; /* a substring of what follows "kigen.yaml:LINE:COLUMN: " */
};

static struct kigen_config *parse_ok(const char *text)
{
    struct kigen_config *config = NULL;
    char err[512] = "";
    int r;

    r = kigen_config_parse("kigen.yaml", text, strlen(text), &config, err, sizeof(err));
    if (r != 0)
        fail_msg("rejected (%d): %s\n--- config ---\n%s", r, err, text);
    assert_non_null(config);
    return config;
}

static void expect_bad(const struct bad *cases, size_t n)
{
    struct kigen_config *config;
    char err[512], prefix[64];
    size_t i;
    int r;

    for (i = 0; i < n; i++) {
        config = NULL;
        strcpy(err, "(none)");
        r = kigen_config_parse("kigen.yaml", cases[i].text, strlen(cases[i].text), &config, err,
                               sizeof(err));
        snprintf(prefix, sizeof(prefix), "kigen.yaml:%zu:%zu: ", cases[i].line, cases[i].column);
        if (r != -EINVAL || config || strncmp(err, prefix, strlen(prefix)) != 0 ||
            !strstr(err + strlen(prefix), cases[i].reason))
            fail_msg("case %zu: got %d \"%s\", want -EINVAL \"%s...%s...\"\n--- config ---\n%s", i,
                     r, err, prefix, cases[i].reason, cases[i].text);
        kigen_config_free(config);
    }
}

#define EXPECT_BAD(cases) expect_bad(cases, sizeof(cases) / sizeof(cases[0]))

static void assert_naccs_targets(const struct kigen_probes *probes, int64_t interval,
                                 int64_t timeout)
{
    assert_int_equal(probes->n_targets, 2);
    assert_string_equal(probes->targets[0].name, "webnaccs");
    assert_string_equal(probes->targets[0].host, "web-prod.nac.naccs.jp");
    assert_string_equal(probes->targets[1].name, "naccs-cert");
    assert_string_equal(probes->targets[1].host, "cert.nac.naccs.jp");
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(probes->targets[i].port, 443);
        assert_true(probes->targets[i].tls);
        assert_null(probes->targets[i].ca_file);
        assert_int_equal(probes->targets[i].interval, interval);
        assert_int_equal(probes->targets[i].timeout, timeout);
    }
}

static void assert_naccs_window(const struct kigen_config *config)
{
    const struct kigen_maintenance *w;

    assert_int_equal(config->n_maintenance, 1);
    w = &config->maintenance[0];
    assert_string_equal(w->name, "naccs-monthly");
    assert_int_equal(w->targets.n, 1);
    assert_string_equal(w->targets.v[0], "naccs-cert");
    assert_int_equal(w->every.kind, KIGEN_EVERY_MONTHLY);
    assert_int_equal(w->every.nth, 3);
    assert_int_equal(w->every.weekday, 2);
    assert_int_equal(w->at_minute, 22 * 60);
    assert_int_equal(w->duration, 10 * HOUR);
    assert_string_equal(w->timezone, "Asia/Tokyo");
}

static void assert_default_notify(const struct kigen_policy *p)
{
    static const int64_t want[] = { 60 * DAY, 28 * DAY, 14 * DAY, 7 * DAY, 3 * DAY, 1 * DAY };

    assert_true(p->has_notify);
    assert_int_equal(p->n_notify, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(p->notify_before[i], want[i]);
}

static void assert_default_revocation(const struct kigen_revocation *rev)
{
    assert_int_equal(rev->hosts.n, 1);
    assert_string_equal(rev->hosts.v[0], "*.naccs.jp");
    assert_int_equal(rev->interval, 6 * HOUR);
    assert_null(rev->proxy);
    assert_int_equal(rev->max_size, 20 * MiB);
}

static void test_spec_example_parses_to_the_documented_values(void **state)
{
    struct kigen_config *c = parse_ok(spec_example);
    const struct kigen_rule *rule;
    const struct kigen_keystore *ks;

    assert_string_equal(c->path, "kigen.yaml");
    assert_string_equal(c->socket, "/run/kigen/kigen.sock");
    assert_string_equal(c->state_dir, "/var/lib/kigen");
    assert_int_equal(c->scan_interval, HOUR);
    assert_string_equal(c->timezone, "Asia/Tokyo");
    assert_null(c->metrics_listen);

    assert_int_equal(c->policy.renew_before, 28 * DAY);
    assert_int_equal(c->policy.critical_before, 7 * DAY);
    assert_default_notify(&c->policy);
    assert_null(c->policy.renew_url);
    assert_null(c->policy.reissue_note);

    assert_int_equal(c->n_rules, 1);
    rule = &c->rules[0];
    assert_null(rule->keystore);
    assert_string_equal(rule->issuer, "*NACCS Client CA*");
    assert_null(rule->subject);
    assert_int_equal(rule->set.renew_before, 28 * DAY);
    assert_int_equal(rule->set.critical_before, -1);
    assert_false(rule->set.has_notify);
    assert_string_equal(rule->set.renew_url, "https://cert.nac.naccs.jp/NACCSClientCA/pages/"
                                             "renew/index-iOS.jsp?s=Sitel&lan=ja");
    assert_string_equal(rule->set.reissue_note, "re-issue takes at least one business day");
    assert_int_equal(rule->set.validity.years, 5);
    assert_int_equal(rule->set.validity.months, 1);
    assert_true(rule->set.has_revocation);
    assert_true(rule->set.revocation);
    assert_string_equal(rule->set.instructions,
                        "Open the renewal page on the device that holds the certificate ...\n");

    assert_string_equal(c->holders.register_path, "/etc/kigen/holders.csv");
    assert_int_equal(c->holders.admins.n, 1);
    assert_string_equal(c->holders.admins.v[0], "it@example.co.jp");

    assert_int_equal(c->n_keystores, 1);
    ks = &c->keystores[0];
    assert_string_equal(ks->name, "naccs-users");
    assert_string_equal(ks->path, "/srv/naccs");
    assert_true(ks->recursive);
    assert_int_equal(ks->include.n, 1);
    assert_string_equal(ks->include.v[0], "*");
    assert_int_equal(ks->exclude.n, 0);
    assert_int_equal(ks->n_passwords, 3);
    assert_int_equal(ks->passwords[0].kind, KIGEN_PASSWORD_FILE);
    assert_string_equal(ks->passwords[0].value, "/etc/kigen/naccs.pass");
    assert_int_equal(ks->passwords[1].kind, KIGEN_PASSWORD_CREDENTIAL);
    assert_string_equal(ks->passwords[1].value, "naccs-pass");
    assert_int_equal(ks->passwords[2].kind, KIGEN_PASSWORD_ENV);
    assert_string_equal(ks->passwords[2].value, "KIGEN_NACCS_PASS");
    assert_true(ks->password_sidecar);
    assert_false(ks->follow_symlinks);
    assert_int_equal(ks->max_file_size, 16 * 1024 * 1024);
    assert_int_equal(ks->labels.n, 1);
    assert_string_equal(ks->labels.v[0].name, "team");
    assert_string_equal(ks->labels.v[0].value, "customs");

    assert_int_equal(c->probes.interval, 5 * 60);
    assert_int_equal(c->probes.timeout, 10);
    assert_int_equal(c->probes.failures_before_alert, 3);
    assert_null(c->probes.proxy);
    assert_naccs_targets(&c->probes, 5 * 60, 10);

    assert_naccs_window(c);

    assert_true(c->alerts.journald);
    assert_null(c->alerts.syslog);
    assert_null(c->alerts.exec);
    assert_null(c->alerts.textfile);
    assert_int_equal(c->alerts.reminder_every, DAY);

    assert_int_equal(c->alerts.mail.sendmail.n, 1);
    assert_string_equal(c->alerts.mail.sendmail.v[0], "/usr/sbin/sendmail");
    assert_string_equal(c->alerts.mail.from, "kigen <kigen@admin.example.co.jp>");
    assert_true(c->alerts.mail.to_holders);
    assert_int_equal(c->alerts.mail.digest_at, 8 * 60 + 30);
    assert_int_equal(c->alerts.n_webhooks, 1);
    assert_string_equal(c->alerts.webhooks[0].name, "team-chat");
    assert_int_equal(c->alerts.webhooks[0].url.kind, KIGEN_PASSWORD_CREDENTIAL);
    assert_string_equal(c->alerts.webhooks[0].url.value, "chat-webhook");
    assert_int_equal(c->alerts.webhooks[0].format, KIGEN_WEBHOOK_SLACK);
    assert_null(c->alerts.webhooks[0].proxy);
    assert_null(c->alerts.webhooks[0].ca_file);
    assert_int_equal(c->alerts.webhooks[0].events, EVENT_BIT(KIGEN_EVENT_CERT_RENEWAL_OPEN) |
                                                       EVENT_BIT(KIGEN_EVENT_CERT_CRITICAL) |
                                                       EVENT_BIT(KIGEN_EVENT_CERT_EXPIRED) |
                                                       EVENT_BIT(KIGEN_EVENT_PROBE_DOWN));

    assert_int_equal(c->language, KIGEN_LANGUAGE_EN);
    assert_default_revocation(&c->revocation);
    assert_int_equal(c->metrics.labels, 0);
    assert_false(c->metrics.not_before);
    assert_false(c->metrics.state_series);
    kigen_config_free(c);
}

static void assert_all_defaults(const struct kigen_config *c)
{
    assert_string_equal(c->socket, "/run/kigen/kigen.sock");
    assert_string_equal(c->state_dir, "/var/lib/kigen");
    assert_int_equal(c->scan_interval, HOUR);
    assert_string_equal(c->timezone, "Asia/Tokyo");
    assert_null(c->metrics_listen);
    assert_int_equal(c->policy.renew_before, 28 * DAY);
    assert_int_equal(c->policy.critical_before, 7 * DAY);
    assert_default_notify(&c->policy);
    assert_int_equal(c->n_rules, 0);
    assert_int_equal(c->n_keystores, 0);
    assert_int_equal(c->probes.interval, 5 * 60);
    assert_int_equal(c->probes.timeout, 10);
    assert_int_equal(c->probes.failures_before_alert, 3);
    assert_null(c->probes.proxy);
    assert_naccs_targets(&c->probes, 5 * 60, 10);
    assert_naccs_window(c);
    assert_true(c->alerts.journald);
    assert_null(c->alerts.syslog);
    assert_null(c->alerts.exec);
    assert_null(c->alerts.textfile);
    assert_int_equal(c->alerts.reminder_every, DAY);
    assert_int_equal(c->policy.validity.years, 0);
    assert_int_equal(c->policy.validity.months, 0);
    assert_true(c->policy.has_revocation);
    assert_false(c->policy.revocation);
    assert_null(c->policy.instructions);
    assert_null(c->holders.register_path);
    assert_int_equal(c->holders.admins.n, 0);
    assert_int_equal(c->alerts.mail.sendmail.n, 0);
    assert_null(c->alerts.mail.from);
    assert_true(c->alerts.mail.to_holders);
    assert_int_equal(c->alerts.mail.digest_at, -1);
    assert_int_equal(c->alerts.n_webhooks, 0);
    assert_int_equal(c->language, KIGEN_LANGUAGE_EN);
    assert_default_revocation(&c->revocation);
    assert_int_equal(c->metrics.labels, 0);
    assert_false(c->metrics.not_before);
    assert_false(c->metrics.state_series);
}

static void test_empty_document_gives_every_default_and_no_keystore(void **state)
{
    static const char *const empties[] = { "",       "# nothing configured yet\n",
                                           "---\n",  "--- ~\n",
                                           "\n\n\n", "---\n...\n" };
    struct kigen_config *c;
    size_t i;

    for (i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        c = parse_ok(empties[i]);
        assert_all_defaults(c);
        kigen_config_free(c);
    }
    c = NULL;
    assert_int_equal(kigen_config_parse("kigen.yaml", NULL, 0, &c, NULL, 0), 0);
    assert_all_defaults(c);
    kigen_config_free(c);
}

static void test_absent_sections_give_the_naccs_probes_and_window(void **state)
{
    struct kigen_config *c = parse_ok("keystores:\n  - path: /srv/naccs\n");

    assert_naccs_targets(&c->probes, 5 * 60, 10);
    assert_naccs_window(c);
    kigen_config_free(c);
}

static void test_empty_probe_targets_turn_probing_off(void **state)
{
    struct kigen_config *c = parse_ok("probes: { targets: [] }\n");

    assert_int_equal(c->probes.n_targets, 0);
    assert_null(c->probes.targets);
    /* The default window stays; it names a target that no longer exists, which is allowed. */
    assert_naccs_window(c);
    kigen_config_free(c);
}

static void test_probes_without_targets_keep_the_naccs_targets(void **state)
{
    struct kigen_config *c = parse_ok("probes:\n  interval: 1m\n  timeout: 3s\n");

    assert_naccs_targets(&c->probes, 60, 3);
    kigen_config_free(c);
}

static void test_empty_maintenance_list_means_no_window(void **state)
{
    struct kigen_config *c = parse_ok("maintenance: []\n");

    assert_int_equal(c->n_maintenance, 0);
    assert_null(c->maintenance);
    assert_naccs_targets(&c->probes, 5 * 60, 10);
    kigen_config_free(c);
}

static void test_null_values_keep_defaults_and_null_lists_are_empty(void **state)
{
    struct kigen_config *c = parse_ok("socket:\n"
                                      "scan_interval: ~\n"
                                      "policy:\n"
                                      "probes:\n"
                                      "  targets:\n"
                                      "maintenance:\n"
                                      "alerts: null\n");

    assert_string_equal(c->socket, "/run/kigen/kigen.sock");
    assert_int_equal(c->scan_interval, HOUR);
    assert_default_notify(&c->policy);
    assert_int_equal(c->probes.n_targets, 0);
    assert_int_equal(c->n_maintenance, 0);
    assert_true(c->alerts.journald);
    kigen_config_free(c);
}

static void test_probe_targets_take_their_own_values_and_section_defaults(void **state)
{
    struct kigen_config *c = parse_ok("probes:\n"
                                      "  targets:\n"
                                      "    - name: api\n"
                                      "      host: api.example.org\n"
                                      "      port: 8443\n"
                                      "      tls: no\n"
                                      "      ca_file: /etc/ssl/private-ca.pem\n"
                                      "      interval: 30s\n"
                                      "    - host: '::1'\n"
                                      "      timeout: 2s\n"
                                      "  interval: 2m\n"
                                      "  failures_before_alert: 1\n"
                                      "  proxy: http://proxy.example:3128\n");
    const struct kigen_probe_target *t = c->probes.targets;

    assert_int_equal(c->probes.n_targets, 2);
    assert_string_equal(t[0].name, "api");
    assert_string_equal(t[0].host, "api.example.org");
    assert_int_equal(t[0].port, 8443);
    assert_false(t[0].tls);
    assert_string_equal(t[0].ca_file, "/etc/ssl/private-ca.pem");
    assert_int_equal(t[0].interval, 30);
    assert_int_equal(t[0].timeout, 10);
    /* A target without a name is named after its host. */
    assert_string_equal(t[1].name, "::1");
    assert_int_equal(t[1].port, 443);
    assert_true(t[1].tls);
    assert_int_equal(t[1].interval, 120);
    assert_int_equal(t[1].timeout, 2);
    assert_int_equal(c->probes.failures_before_alert, 1);
    assert_string_equal(c->probes.proxy, "http://proxy.example:3128");
    kigen_config_free(c);

    c = parse_ok("probes: { proxy: env }\n");
    assert_string_equal(c->probes.proxy, "env");
    kigen_config_free(c);
}

static void test_keystore_defaults_apply_and_name_defaults_to_path(void **state)
{
    struct kigen_config *c = parse_ok("keystores:\n"
                                      "  - path: /etc/ssl/certs\n"
                                      "  - path: /srv/java\n"
                                      "    name: java\n"
                                      "    recursive: off\n"
                                      "    include: ['*.jks', '*.jceks']\n"
                                      "    exclude: ['old-*']\n"
                                      "    password_sidecar: No\n"
                                      "    follow_symlinks: YES\n"
                                      "    max_file_size: 512KiB\n"
                                      "    labels:\n"
                                      "      team: payments\n"
                                      "      Env_2: prod\n");
    const struct kigen_keystore *ks = c->keystores;

    assert_int_equal(c->n_keystores, 2);
    assert_string_equal(ks[0].name, "/etc/ssl/certs");
    assert_string_equal(ks[0].path, "/etc/ssl/certs");
    assert_true(ks[0].recursive);
    assert_int_equal(ks[0].include.n, 1);
    assert_string_equal(ks[0].include.v[0], "*");
    assert_int_equal(ks[0].exclude.n, 0);
    assert_int_equal(ks[0].n_passwords, 0);
    assert_true(ks[0].password_sidecar);
    assert_false(ks[0].follow_symlinks);
    assert_int_equal(ks[0].max_file_size, 16 * 1024 * 1024);
    assert_int_equal(ks[0].labels.n, 0);

    assert_string_equal(ks[1].name, "java");
    assert_false(ks[1].recursive);
    assert_int_equal(ks[1].include.n, 2);
    assert_string_equal(ks[1].include.v[0], "*.jks");
    assert_string_equal(ks[1].include.v[1], "*.jceks");
    assert_int_equal(ks[1].exclude.n, 1);
    assert_string_equal(ks[1].exclude.v[0], "old-*");
    assert_false(ks[1].password_sidecar);
    assert_true(ks[1].follow_symlinks);
    assert_int_equal(ks[1].max_file_size, 512 * 1024);
    assert_int_equal(ks[1].labels.n, 2);
    assert_string_equal(ks[1].labels.v[1].name, "Env_2");
    assert_string_equal(ks[1].labels.v[1].value, "prod");
    kigen_config_free(c);
}

static void test_maintenance_schedules_and_timezone_default(void **state)
{
    struct kigen_config *c = parse_ok("maintenance:\n"
                                      "  - { name: a, targets: [x], every: daily, at: '0:05',"
                                      " duration: 30m }\n"
                                      "  - { name: b, targets: [], every: weekly Fri, at: '23:59',"
                                      " duration: 1h, timezone: UTC }\n"
                                      "  - { name: c, targets: [x, y], every: LAST  sunday,"
                                      " at: 12:00, duration: 2d }\n"
                                      "  - { name: d, targets: [x], every: First Mon, at: '00:00',"
                                      " duration: 1s }\n"
                                      "timezone: Europe/Paris\n");
    const struct kigen_maintenance *w = c->maintenance;

    assert_int_equal(c->n_maintenance, 4);
    assert_int_equal(w[0].every.kind, KIGEN_EVERY_DAILY);
    assert_int_equal(w[0].at_minute, 5);
    assert_int_equal(w[0].duration, 30 * 60);
    /* Written after the windows, the top-level timezone is still their default. */
    assert_string_equal(w[0].timezone, "Europe/Paris");
    assert_int_equal(w[1].every.kind, KIGEN_EVERY_WEEKLY);
    assert_int_equal(w[1].every.weekday, 5);
    assert_int_equal(w[1].targets.n, 0);
    assert_int_equal(w[1].at_minute, 23 * 60 + 59);
    assert_string_equal(w[1].timezone, "UTC");
    assert_int_equal(w[2].every.kind, KIGEN_EVERY_MONTHLY);
    assert_int_equal(w[2].every.nth, -1);
    assert_int_equal(w[2].every.weekday, 0);
    assert_int_equal(w[2].targets.n, 2);
    /* Unquoted 12:00 is YAML 1.1 sexagesimal; kigen reads the text as written. */
    assert_int_equal(w[2].at_minute, 12 * 60);
    assert_int_equal(w[2].duration, 2 * DAY);
    assert_int_equal(w[3].every.nth, 1);
    assert_int_equal(w[3].every.weekday, 1);
    assert_int_equal(w[3].at_minute, 0);
    kigen_config_free(c);
}

static void test_alerts_outputs_and_booleans(void **state)
{
    struct kigen_config *c = parse_ok("alerts:\n"
                                      "  journald: False\n"
                                      "  syslog: ON\n"
                                      "  exec: /usr/local/bin/page-oncall\n"
                                      "  textfile: /var/lib/node_exporter/kigen.prom\n"
                                      "  reminder_every: 12h\n"
                                      "metrics_listen: 127.0.0.1:9793\n");

    assert_false(c->alerts.journald);
    assert_string_equal(c->alerts.syslog, "/dev/log");
    assert_string_equal(c->alerts.exec, "/usr/local/bin/page-oncall");
    assert_string_equal(c->alerts.textfile, "/var/lib/node_exporter/kigen.prom");
    assert_int_equal(c->alerts.reminder_every, 12 * HOUR);
    assert_string_equal(c->metrics_listen, "127.0.0.1:9793");
    kigen_config_free(c);

    c = parse_ok("alerts: { syslog: /run/systemd/journal/syslog, exec: '' }\n"
                 "metrics_listen: '[::1]:9793'\n");
    assert_string_equal(c->alerts.syslog, "/run/systemd/journal/syslog");
    assert_null(c->alerts.exec);
    assert_string_equal(c->metrics_listen, "[::1]:9793");
    kigen_config_free(c);

    c = parse_ok("alerts: { syslog: no }\nmetrics_listen: ''\n");
    assert_null(c->alerts.syslog);
    assert_null(c->metrics_listen);
    kigen_config_free(c);
}

static void test_notify_before_is_sorted_descending_without_duplicates(void **state)
{
    struct kigen_config *c = parse_ok("policy:\n"
                                      "  notify_before: [1d, 2w, 24h, 3d, 14d, 90m]\n"
                                      "rules:\n"
                                      "  - match: { keystore: a }\n"
                                      "    notify_before: []\n");

    assert_true(c->policy.has_notify);
    assert_int_equal(c->policy.n_notify, 4);
    assert_int_equal(c->policy.notify_before[0], 14 * DAY);
    assert_int_equal(c->policy.notify_before[1], 3 * DAY);
    assert_int_equal(c->policy.notify_before[2], DAY);
    assert_int_equal(c->policy.notify_before[3], 90 * 60);
    /* An empty list is a setting too: no threshold alerts for these certificates. */
    assert_true(c->rules[0].set.has_notify);
    assert_int_equal(c->rules[0].set.n_notify, 0);
    kigen_config_free(c);
}

static const char rules_config[] =
    "policy: { renew_before: 30d, critical_before: 10d, notify_before: [30d, 10d] }\n"
    "rules:\n"
    "  - match: { keystore: 'naccs-*', subject: 'CN=tanaka*' }\n"
    "    critical_before: 14d\n"
    "  - match: { issuer: '*NACCS Client CA*' }\n"
    "    renew_before: 28d\n"
    "    notify_before: [28d, 7d, 1d]\n"
    "    renew_url: https://cert.nac.naccs.jp/renew\n"
    "    reissue_note: one business day\n"
    "  - match: { issuer: '*' }\n"
    "    renew_before: 1d\n"
    "  - match: { subject: 'CN=a\\, b' }\n"
    "    reissue_note: escaped\n";

static void test_policy_for_lays_the_first_matching_rule_over_the_policy(void **state)
{
    struct kigen_config *c = parse_ok(rules_config);
    struct kigen_policy p;

    /* Rule 0 needs both keys (the keystore's a glob too); it matches, sets critical_before. */
    kigen_config_policy_for(c, "naccs-users", "CN=tanaka,O=Example", "CN=NACCS Client CA,O=NACCS",
                            &p);
    assert_int_equal(p.renew_before, 30 * DAY);
    assert_int_equal(p.critical_before, 14 * DAY);
    assert_int_equal(p.n_notify, 2);
    assert_ptr_equal(p.notify_before, c->policy.notify_before);
    assert_null(p.renew_url);
    assert_null(p.reissue_note);

    /* Same subject in another keystore: rule 0 fails on keystore, rule 1 wins, not rule 2. */
    kigen_config_policy_for(c, "naccs", "CN=tanaka,O=Example", "CN=NACCS Client CA,O=NACCS", &p);
    assert_int_equal(p.critical_before, 10 * DAY);
    kigen_config_policy_for(c, "other", "CN=tanaka,O=Example", "CN=NACCS Client CA,O=NACCS", &p);
    assert_int_equal(p.renew_before, 28 * DAY);
    assert_int_equal(p.critical_before, 10 * DAY);
    assert_true(p.has_notify);
    assert_int_equal(p.n_notify, 3);
    assert_int_equal(p.notify_before[0], 28 * DAY);
    assert_int_equal(p.notify_before[2], DAY);
    assert_string_equal(p.renew_url, "https://cert.nac.naccs.jp/renew");
    assert_string_equal(p.reissue_note, "one business day");

    /* An unknown issuer matches no glob; rule 3's subject glob then decides. */
    kigen_config_policy_for(c, NULL, "CN=x", NULL, &p);
    assert_int_equal(p.renew_before, 30 * DAY);
    assert_int_equal(p.critical_before, 10 * DAY);
    assert_null(p.reissue_note);

    /* Backslashes in globs are literal, as in RFC 2253 strings. */
    kigen_config_policy_for(c, NULL, "CN=a\\, b", NULL, &p);
    assert_string_equal(p.reissue_note, "escaped");
    kigen_config_free(c);
}

static void test_policy_for_without_rules_is_the_policy(void **state)
{
    struct kigen_config *c = parse_ok("");
    struct kigen_policy p;

    kigen_config_policy_for(c, "ks", "CN=a", "CN=b", &p);
    assert_int_equal(p.renew_before, 28 * DAY);
    assert_int_equal(p.critical_before, 7 * DAY);
    assert_default_notify(&p);
    kigen_config_free(c);
}

static void test_validity_takes_years_and_months_as_written(void **state)
{
    static const struct {
        const char *text;
        int years, months;
    } cases[] = {
        { "5y1m", 5, 1 }, { "5y", 5, 0 },     { "18m", 0, 18 },     { "1m", 0, 1 },
        { "0y1m", 0, 1 }, { "100y", 100, 0 }, { "1200m", 0, 1200 }, { "'3y11m'", 3, 11 },
    };
    char text[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kigen_config *c;

        snprintf(text, sizeof(text), "rules:\n  - match: { issuer: x }\n    validity: %s\n",
                 cases[i].text);
        c = parse_ok(text);
        assert_int_equal(c->rules[0].set.validity.years, cases[i].years);
        assert_int_equal(c->rules[0].set.validity.months, cases[i].months);
        kigen_config_free(c);
    }
}

static void test_policy_for_carries_validity_revocation_and_instructions(void **state)
{
    struct kigen_config *c = parse_ok("rules:\n"
                                      "  - match: { issuer: '*NACCS*' }\n"
                                      "    validity: 5y1m\n"
                                      "    revocation: true\n"
                                      "    instructions: |\n"
                                      "      端末で更新してください。\n"
                                      "      Then tell IT.\n"
                                      "  - match: { issuer: '*Other*' }\n"
                                      "    renew_before: 10d\n"
                                      "  - match: { issuer: '*Off*' }\n"
                                      "    revocation: false\n"
                                      "    instructions: ''\n");
    struct kigen_policy p;

    kigen_config_policy_for(c, "ks", "CN=a", "CN=NACCS Client CA", &p);
    assert_int_equal(p.validity.years, 5);
    assert_int_equal(p.validity.months, 1);
    assert_true(p.revocation);
    assert_string_equal(p.instructions, "端末で更新してください。\nThen tell IT.\n");
    assert_int_equal(p.renew_before, 28 * DAY);

    /* Unset: the policy's defaults. */
    kigen_config_policy_for(c, "ks", "CN=a", "CN=Other CA", &p);
    assert_int_equal(p.renew_before, 10 * DAY);
    assert_int_equal(p.validity.years, 0);
    assert_int_equal(p.validity.months, 0);
    assert_true(p.has_revocation);
    assert_false(p.revocation);
    assert_null(p.instructions);
    assert_false(c->rules[1].set.has_revocation);

    kigen_config_policy_for(c, "ks", "CN=a", "CN=Off CA", &p);
    assert_true(c->rules[2].set.has_revocation);
    assert_false(p.revocation);
    assert_null(p.instructions);
    kigen_config_free(c);
}

static void test_mail_takes_a_command_as_path_or_argv(void **state)
{
    struct kigen_config *c;

    c = parse_ok("alerts:\n"
                 "  mail:\n"
                 "    sendmail: [/usr/bin/msmtp, -C, /etc/msmtprc]\n"
                 "    to_holders: false\n"
                 "    digest_at: \"7:05\"\n");
    assert_int_equal(c->alerts.mail.sendmail.n, 3);
    assert_string_equal(c->alerts.mail.sendmail.v[0], "/usr/bin/msmtp");
    assert_string_equal(c->alerts.mail.sendmail.v[1], "-C");
    assert_string_equal(c->alerts.mail.sendmail.v[2], "/etc/msmtprc");
    assert_null(c->alerts.mail.from);
    assert_false(c->alerts.mail.to_holders);
    assert_int_equal(c->alerts.mail.digest_at, 7 * 60 + 5);
    kigen_config_free(c);

    /* A string is one path, never split; "" is off, as is "" for the digest. */
    c = parse_ok("alerts:\n  mail: { sendmail: '/opt/my mailer/sendmail', digest_at: '' }\n");
    assert_int_equal(c->alerts.mail.sendmail.n, 1);
    assert_string_equal(c->alerts.mail.sendmail.v[0], "/opt/my mailer/sendmail");
    assert_int_equal(c->alerts.mail.digest_at, -1);
    kigen_config_free(c);

    c = parse_ok("alerts:\n  mail: { sendmail: '', from: kigen@example.com }\n");
    assert_int_equal(c->alerts.mail.sendmail.n, 0);
    assert_string_equal(c->alerts.mail.from, "kigen@example.com");
    kigen_config_free(c);

    c = parse_ok("alerts:\n  mail:\n    sendmail: []\n");
    assert_int_equal(c->alerts.mail.sendmail.n, 0);
    kigen_config_free(c);
}

static void test_webhooks_take_their_values_and_defaults(void **state)
{
    struct kigen_config *c = parse_ok("alerts:\n"
                                      "  webhooks:\n"
                                      "    - { name: a, url: { env: HOOK_A } }\n"
                                      "    - name: b\n"
                                      "      url: { file: /etc/kigen/hook-b }\n"
                                      "      format: teams\n"
                                      "      proxy: env\n"
                                      "      ca_file: /etc/kigen/ca.pem\n"
                                      "      events: [config.rejected, cert.threshold]\n"
                                      "    - name: c\n"
                                      "      url: { credential: hook-c }\n"
                                      "      format: json\n"
                                      "      proxy: http://proxy.example:8080\n");
    const struct kigen_webhook *w = c->alerts.webhooks;

    assert_int_equal(c->alerts.n_webhooks, 3);
    assert_string_equal(w[0].name, "a");
    assert_int_equal(w[0].url.kind, KIGEN_PASSWORD_ENV);
    assert_string_equal(w[0].url.value, "HOOK_A");
    assert_int_equal(w[0].format, KIGEN_WEBHOOK_SLACK);
    assert_null(w[0].proxy);
    assert_null(w[0].ca_file);
    assert_int_equal(w[0].events, ALL_EVENTS);
    assert_int_equal(w[1].url.kind, KIGEN_PASSWORD_FILE);
    assert_int_equal(w[1].format, KIGEN_WEBHOOK_TEAMS);
    assert_string_equal(w[1].proxy, "env");
    assert_string_equal(w[1].ca_file, "/etc/kigen/ca.pem");
    assert_int_equal(w[1].events, EVENT_BIT(KIGEN_EVENT_CONFIG_REJECTED) |
                                      EVENT_BIT(KIGEN_EVENT_CERT_THRESHOLD));
    assert_int_equal(w[2].format, KIGEN_WEBHOOK_JSON);
    assert_string_equal(w[2].proxy, "http://proxy.example:8080");
    kigen_config_free(c);
}

static void test_holders_language_revocation_and_metrics_take_their_values(void **state)
{
    struct kigen_config *c = parse_ok("holders:\n"
                                      "  admins: [it@example.co.jp, root@localhost]\n"
                                      "language: ja\n"
                                      "revocation:\n"
                                      "  hosts: ['*.example.jp', crl.example.com]\n"
                                      "  interval: 1h\n"
                                      "  proxy: http://proxy:3128\n"
                                      "  max_size: 1MiB\n"
                                      "metrics:\n"
                                      "  labels: [sha256, subject]\n"
                                      "  not_before: true\n"
                                      "  state_series: yes\n");

    assert_null(c->holders.register_path);
    assert_int_equal(c->holders.admins.n, 2);
    assert_string_equal(c->holders.admins.v[1], "root@localhost");
    assert_int_equal(c->language, KIGEN_LANGUAGE_JA);
    assert_int_equal(c->revocation.hosts.n, 2);
    assert_string_equal(c->revocation.hosts.v[0], "*.example.jp");
    assert_string_equal(c->revocation.hosts.v[1], "crl.example.com");
    assert_int_equal(c->revocation.interval, HOUR);
    assert_string_equal(c->revocation.proxy, "http://proxy:3128");
    assert_int_equal(c->revocation.max_size, MiB);
    assert_int_equal(c->metrics.labels, KIGEN_METRICS_SHA256 | KIGEN_METRICS_SUBJECT);
    assert_true(c->metrics.not_before);
    assert_true(c->metrics.state_series);
    kigen_config_free(c);
}

static void test_revocation_hosts_default_unless_given_and_empty_means_none(void **state)
{
    struct kigen_config *c;

    c = parse_ok("revocation:\n  interval: 2h\n");
    assert_int_equal(c->revocation.hosts.n, 1);
    assert_string_equal(c->revocation.hosts.v[0], "*.naccs.jp");
    assert_int_equal(c->revocation.interval, 2 * HOUR);
    kigen_config_free(c);

    c = parse_ok("revocation: { hosts: [] }\n");
    assert_int_equal(c->revocation.hosts.n, 0);
    kigen_config_free(c);

    /* Empty sections keep every default. */
    c = parse_ok("holders:\nrevocation:\nmetrics:\nalerts: { mail: ~, webhooks: ~ }\n");
    assert_all_defaults(c);
    kigen_config_free(c);
}

static void test_bad_schema_values_are_rejected(void **state)
{
    static const struct bad cases[] = {
        /* validity: calendar years and months only. */
        { "rules:\n  - match: { issuer: x }\n    validity: 5x\n", 3, 15,
          "rules[0].validity: bad validity \"5x\" (use years and months" },
        { "rules:\n  - match: { issuer: x }\n    validity: 5y1d\n", 3, 15,
          "bad validity \"5y1d\"" },
        { "rules:\n  - match: { issuer: x }\n    validity: 1m5y\n", 3, 15,
          "bad validity \"1m5y\"" },
        { "rules:\n  - match: { issuer: x }\n    validity: 5\n", 3, 15, "bad validity \"5\"" },
        { "rules:\n  - match: { issuer: x }\n    validity: y\n", 3, 15, "bad validity \"y\"" },
        { "rules:\n  - match: { issuer: x }\n    validity: 0m\n", 3, 15,
          "validity \"0m\" must be at least one month" },
        { "rules:\n  - match: { issuer: x }\n    validity: 0y0m\n", 3, 15,
          "must be at least one month" },
        { "rules:\n  - match: { issuer: x }\n    validity: 101y\n", 3, 15,
          "validity \"101y\" is too long (at most 100y)" },
        { "rules:\n  - match: { issuer: x }\n    validity: 1201m\n", 3, 15, "too long" },
        { "rules:\n  - match: { issuer: x }\n    validity: 99999999999y\n", 3, 15, "too long" },
        { "rules:\n  - match: { issuer: x }\n    validity: 5y13m\n", 3, 15,
          "more than 11 months after the years" },
        { "rules:\n  - match: { issuer: x }\n    validity: [5y]\n", 3, 15,
          "expected a validity, got a list" },
        { "rules:\n  - match: { issuer: x }\n    revocation: maybe\n", 3, 17,
          "rules[0].revocation: expected a boolean" },
        { "rules:\n  - match: { issuer: x }\n    instructions: { a: b }\n", 3, 19,
          "expected a string, got a mapping" },
        /* Rule keys only. */
        { "policy:\n  validity: 5y\n", 2, 3, "policy: unknown key \"validity\"" },
        /* SPEC §12 reserves the keystore name register. */
        { "keystores:\n  - { name: register, path: /a }\n", 2, 13,
          "keystores[0]: keystore name 'register' is reserved" },
        { "keystores:\n  - path: register\n", 2, 11, "keystore name 'register' is reserved" },
        /* holders */
        { "holders:\n  admins: [\"IT <it@example.co.jp>\"]\n", 2, 12,
          "holders.admins[0]: bad address (use local@domain, without a display name) \"IT " },
        { "holders:\n  admins: [nobody]\n", 2, 12, "bad address" },
        { "holders:\n  admins: [a@b, 'c@d,e@f']\n", 2, 17, "holders.admins[1]: bad address" },
        { "holders:\n  admins: [a@b, a@b]\n", 2, 17,
          "holders.admins[1]: duplicate admin address \"a@b\"" },
        { "holders:\n  admins: it@example.co.jp\n", 2, 11, "expected a list" },
        { "holders:\n  register: [a]\n", 2, 13, "holders.register: expected a string" },
        { "holders:\n  registry: /a\n", 2, 3, "holders: unknown key \"registry\"" },
        /* alerts.mail */
        { "alerts:\n  mail:\n    sendmail: 5\n", 3, 15,
          "alerts.mail.sendmail: expected a command (a path, or a list of strings), got \"5\"" },
        { "alerts:\n  mail:\n    sendmail: true\n", 3, 15, "expected a command" },
        { "alerts:\n  mail:\n    sendmail: { path: /a }\n", 3, 15, "expected a command" },
        { "alerts:\n  mail:\n    sendmail: [/usr/bin/msmtp, '']\n", 3, 32,
          "alerts.mail.sendmail[1]: must not be empty" },
        { "alerts:\n  mail:\n    from: \"a\\nBcc: x@y\"\n", 3, 11,
          "alerts.mail.from: must not contain a control character" },
        { "alerts:\n  mail:\n    digest_at: '25:00'\n", 3, 16, "bad time \"25:00\"" },
        { "alerts:\n  mail:\n    to_holders: 1\n", 3, 17, "expected a boolean" },
        { "alerts:\n  mail:\n    to: x@y\n", 3, 5, "alerts.mail: unknown key \"to\"" },
        /* alerts.webhooks */
        { "alerts:\n  webhooks:\n    - { name: a, url: { env: A }, events: [cert.expired, "
          "cert.expird] }\n",
          3, 58,
          "alerts.webhooks[0].events[1]: unknown event \"cert.expird\" (one of cert.threshold, " },
        { "alerts:\n  webhooks:\n    - { name: a, url: { env: A }, events: [] }\n", 3, 43,
          "lists no event" },
        { "alerts:\n  webhooks:\n    - { name: a, url: { env: A }, events: [probe.up, "
          "probe.up] }\n",
          3, 54, "duplicate event \"probe.up\"" },
        { "alerts:\n  webhooks:\n    - { name: a, url: { env: A }, format: xml }\n", 3, 43,
          "alerts.webhooks[0].format: unknown format \"xml\" (one of slack, teams, json)" },
        { "alerts:\n  webhooks:\n    - { name: a, url: { env: A } }\n"
          "    - { name: a, url: { env: B } }\n",
          4, 15, "alerts.webhooks[1]: duplicate webhook name \"a\" (first at line 3)" },
        { "alerts:\n  webhooks:\n    - { name: a, url: {} }\n", 3, 23,
          "alerts.webhooks[0].url: expected exactly one of file, credential or env" },
        { "alerts:\n  webhooks:\n    - { name: a, url: { env: A, file: /b } }\n", 3, 23,
          "expected exactly one of file, credential or env" },
        { "alerts:\n  webhooks:\n    - { name: a, url: { path: /b } }\n", 3, 25,
          "unknown key \"path\"" },
        { "alerts:\n  webhooks:\n    - { name: a, url: ~ }\n", 3, 23, "a value is required" },
        { "alerts:\n  webhooks:\n    - { name: a }\n", 3, 7,
          "alerts.webhooks[0]: missing key \"url\"" },
        { "alerts:\n  webhooks:\n    - { url: { env: A } }\n", 3, 7, "missing key \"name\"" },
        { "alerts:\n  webhooks:\n    - { name: a, url: { env: A }, proxy: socks5://x:1 }\n", 3, 42,
          "bad proxy" },
        { "alerts:\n  webhooks:\n    - { name: a, url: { env: 'A-B' } }\n", 3, 30,
          "bad environment variable name" },
        /* language, revocation, metrics */
        { "language: fr\n", 1, 11, "language: unknown language \"fr\" (one of en, ja)" },
        { "language: [en]\n", 1, 11, "language: expected one of en, ja, got a list" },
        { "revocation:\n  hosts: ['https://crl.example.com/']\n", 2, 11,
          "revocation.hosts[0]: bad host glob" },
        { "revocation:\n  hosts: [a.jp, a.jp]\n", 2, 17, "duplicate host \"a.jp\"" },
        { "revocation:\n  interval: 0s\n", 2, 13, "must be longer than 0s" },
        { "revocation:\n  max_size: 20MB\n", 2, 13, "bad size \"20MB\"" },
        { "revocation:\n  proxy: ftp://x\n", 2, 10, "bad proxy" },
        { "revocation:\n  host: [a]\n", 2, 3, "revocation: unknown key \"host\"" },
        { "metrics:\n  labels: [path]\n", 2, 12,
          "metrics.labels[0]: unknown label \"path\" (one of subject, issuer, serial, sha256)" },
        { "metrics:\n  labels: [subject, subject]\n", 2, 21,
          "metrics.labels[1]: duplicate label \"subject\"" },
        { "metrics:\n  not_before: 'true'\n", 2, 15, "the quoted string" },
        { "metrics:\n  listen: x\n", 2, 3, "metrics: unknown key \"listen\"" },
    };

    EXPECT_BAD(cases);
}

static void test_webhook_url_written_inline_is_rejected_without_echoing_it(void **state)
{
    static const char text[] = "alerts:\n"
                               "  webhooks:\n"
                               "    - name: a\n"
                               "      url: https://hooks.example/T0/B0/s3cr3t\n";
    struct kigen_config *c = NULL;
    char err[512] = "";

    assert_int_equal(kigen_config_parse("kigen.yaml", text, strlen(text), &c, err, sizeof(err)),
                     -EINVAL);
    assert_null(c);
    assert_string_equal(err, "kigen.yaml:4:12: alerts.webhooks[0].url: expected a secret source, "
                             "{ file | credential | env: ... }; the URL itself does not belong "
                             "in the configuration");
    assert_null(strstr(err, "s3cr3t"));
}

static void test_unknown_keys_are_rejected_where_written(void **state)
{
    static const struct bad cases[] = {
        { "socket: /run/k.sock\nscan_intervall: 1h\n", 2, 1, "unknown key \"scan_intervall\"" },
        { "policy:\n  renew_before: 28d\n  renew_url: x\n", 3, 3,
          "policy: unknown key \"renew_url\"" },
        { "keystores:\n  - path: /a\n    passwd: x\n", 3, 5,
          "keystores[0]: unknown key \"passwd\"" },
        { "rules:\n  - match: { issuer: a, serial: b }\n", 2, 25,
          "rules[0].match: unknown key \"serial\"" },
        { "keystores:\n  - path: /a\n    passwords:\n      - vault: x\n", 4, 9,
          "keystores[0].passwords[0]: unknown key \"vault\"" },
        { "probes:\n  targets:\n    - { host: h, tsl: true }\n", 3, 18,
          "probes.targets[0]: unknown key \"tsl\"" },
        { "alerts: { email: root }\n", 1, 11, "alerts: unknown key \"email\"" },
    };

    EXPECT_BAD(cases);
}

static void test_wrong_types_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "- socket: /x\n", 1, 1, "expected a mapping, got a list" },
        { "just text\n", 1, 1, "expected a mapping, got \"just text\"" },
        { "keystores:\n  path: /srv\n", 2, 3, "keystores: expected a list, got a mapping" },
        { "keystores: /srv\n", 1, 12, "keystores: expected a list, got \"/srv\"" },
        { "keystores:\n  - /srv\n", 2, 5, "keystores[0]: expected a mapping, got \"/srv\"" },
        { "socket: [a, b]\n", 1, 9, "socket: expected a string, got a list" },
        { "probes: [a]\n", 1, 9, "probes: expected a mapping" },
        { "policy:\n  notify_before: 7d\n", 2, 18, "policy.notify_before: expected a list" },
        { "keystores:\n  - path: /a\n    labels: [team]\n", 3, 13,
          "keystores[0].labels: expected a mapping" },
        { "keystores:\n  - path: /a\n    passwords: [pw]\n", 3, 17,
          "keystores[0].passwords[0]: expected a mapping" },
        { "keystores:\n  - path: /a\n    passwords:\n      - { file: a, env: B }\n", 4, 9,
          "expected exactly one of file, credential or env" },
        { "alerts: { syslog: [a] }\n", 1, 19,
          "alerts.syslog: expected a boolean or a socket path" },
        { "{ [a]: b }\n", 1, 3, "a mapping key must be a string" },
        { "socket: !!str /x\n", 1, 9, "YAML tags are not supported" },
    };

    EXPECT_BAD(cases);
}

static void test_bad_durations_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "scan_interval: 60\n", 1, 16, "scan_interval: bad duration \"60\" (use an integer and" },
        { "scan_interval: 1 h\n", 1, 16, "bad duration \"1 h\"" },
        { "scan_interval: -1h\n", 1, 16, "bad duration \"-1h\"" },
        { "scan_interval: 1.5h\n", 1, 16, "bad duration \"1.5h\"" },
        { "scan_interval: 1y\n", 1, 16, "bad duration \"1y\"" },
        { "scan_interval: 1hh\n", 1, 16, "bad duration \"1hh\"" },
        { "scan_interval: \"\"\n", 1, 16, "bad duration \"\"" },
        { "scan_interval: 0s\n", 1, 16, "scan_interval: must be longer than 0s" },
        { "scan_interval: 36501d\n", 1, 16, "is too long (at most 36500d)" },
        { "scan_interval: 99999999999999999999s\n", 1, 16, "is too long" },
        { "policy:\n  notify_before: [7d, 0d]\n", 2, 23,
          "policy.notify_before[1]: must be longer than 0s" },
        { "policy:\n  notify_before: [7d, ~]\n", 2, 23,
          "policy.notify_before[1]: a value is required" },
        { "probes: { timeout: 0s }\n", 1, 20, "probes.timeout: must be longer than 0s" },
        { "probes: { interval: 0m }\n", 1, 21, "probes.interval: must be longer than 0s" },
        { "alerts: { reminder_every: 0d }\n", 1, 27, "alerts.reminder_every: must be longer" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, at: '1:00', duration: 0h }\n", 2,
          65, "maintenance[0].duration: must be longer than 0s" },
        { "rules:\n  - match: { keystore: a }\n    renew_before: 4 weeks\n", 3, 19,
          "rules[0].renew_before: bad duration \"4 weeks\"" },
    };

    EXPECT_BAD(cases);
}

static void test_bad_sizes_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "keystores:\n  - path: /a\n    max_file_size: 16 MB\n", 3, 20,
          "keystores[0].max_file_size: bad size \"16 MB\" (use KiB, MiB or GiB)" },
        { "keystores:\n  - path: /a\n    max_file_size: 16MB\n", 3, 20, "bad size \"16MB\"" },
        { "keystores:\n  - path: /a\n    max_file_size: 16mib\n", 3, 20, "bad size \"16mib\"" },
        { "keystores:\n  - path: /a\n    max_file_size: MiB\n", 3, 20, "bad size \"MiB\"" },
        { "keystores:\n  - path: /a\n    max_file_size: 0\n", 3, 20, "must be larger than 0" },
        { "keystores:\n  - path: /a\n    max_file_size: 17179869184GiB\n", 3, 20,
          "size \"17179869184GiB\" is too large" },
    };

    EXPECT_BAD(cases);
}

static void test_bad_booleans_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "alerts:\n  journald: maybe\n", 2, 13,
          "alerts.journald: expected a boolean (true or false), got \"maybe\"" },
        { "alerts:\n  journald: \"true\"\n", 2, 13, "got the quoted string \"true\"" },
        { "alerts:\n  journald: 1\n", 2, 13, "expected a boolean" },
        { "alerts:\n  journald: y\n", 2, 13, "expected a boolean" },
        { "keystores:\n  - path: /a\n    recursive: [true]\n", 3, 16,
          "keystores[0].recursive: expected a boolean, got a list" },
    };

    EXPECT_BAD(cases);
}

static void test_bad_integers_and_ports_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "probes:\n  targets:\n    - { host: h, port: 0 }\n", 3, 24,
          "probes.targets[0].port: \"0\" is out of range (1 to 65535)" },
        { "probes:\n  targets:\n    - { host: h, port: 65536 }\n", 3, 24, "out of range" },
        { "probes:\n  targets:\n    - { host: h, port: 99999999999999999999999 }\n", 3, 24,
          "out of range" },
        { "probes:\n  targets:\n    - { host: h, port: \"443\" }\n", 3, 24,
          "expected an integer, got the quoted string \"443\"" },
        { "probes:\n  targets:\n    - { host: h, port: 0443 }\n", 3, 24,
          "expected a decimal integer, got \"0443\"" },
        { "probes:\n  targets:\n    - { host: h, port: 0x1bb }\n", 3, 24,
          "expected a decimal integer" },
        { "probes:\n  targets:\n    - { host: h, port: -1 }\n", 3, 24, "expected a decimal" },
        { "probes:\n  targets:\n    - { host: h, port: https }\n", 3, 24, "expected a decimal" },
        { "probes: { failures_before_alert: 0 }\n", 1, 34,
          "probes.failures_before_alert: \"0\" is out of range (1 to 1000)" },
    };

    EXPECT_BAD(cases);
}

static void test_bad_schedules_and_times_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "maintenance:\n  - { name: m, targets: [], every: fifth tuesday, at: '1:00',"
          " duration: 1h }\n",
          2, 36, "maintenance[0].every: bad schedule \"fifth tuesday\" (use daily," },
        { "maintenance:\n  - { name: m, targets: [], every: third tue wed, at: '1:00',"
          " duration: 1h }\n",
          2, 36, "bad schedule" },
        { "maintenance:\n  - { name: m, targets: [], every: weekly, at: '1:00', duration: 1h }\n",
          2, 36, "bad schedule \"weekly\"" },
        { "maintenance:\n  - { name: m, targets: [], every: monthly, at: '1:00', duration: 1h }\n",
          2, 36, "bad schedule" },
        { "maintenance:\n  - { name: m, targets: [], every: third tues, at: '1:00',"
          " duration: 1h }\n",
          2, 36, "bad schedule" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, at: '24:00', duration: 1h }\n",
          2, 47, "maintenance[0].at: bad time \"24:00\" (use HH:MM, 24-hour clock)" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, at: '12:60', duration: 1h }\n",
          2, 47, "bad time" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, at: 10pm, duration: 1h }\n", 2,
          47, "bad time \"10pm\"" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, at: '1200', duration: 1h }\n", 2,
          47, "bad time" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, at: '1:2', duration: 1h }\n", 2,
          47, "bad time" },
    };

    EXPECT_BAD(cases);
}

static void test_unknown_timezones_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "timezone: Mars/Olympus_Mons\n", 1, 11,
          "timezone: unknown timezone \"Mars/Olympus_Mons\"" },
        { "timezone: ../../../etc/passwd\n", 1, 11, "bad timezone" },
        { "timezone: Asia/../Asia/Tokyo\n", 1, 11, "bad timezone" },
        { "timezone: /etc/localtime\n", 1, 11, "bad timezone" },
        { "timezone: Asia\n", 1, 11, "unknown timezone \"Asia\"" },
        { "timezone: zone.tab\n", 1, 11, "is not a time zone file" },
        { "timezone: 'Asia/Tokyo '\n", 1, 11, "bad timezone" },
        { "maintenance:\n  - name: m\n    targets: []\n    every: daily\n    at: '1:00'\n"
          "    duration: 1h\n    timezone: Japan/Osaka\n",
          7, 15, "maintenance[0].timezone: unknown timezone" },
    };

    EXPECT_BAD(cases);
}

static void test_duplicate_keys_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "socket: /a\nstate_dir: /b\nsocket: /c\n", 3, 1,
          "duplicate key \"socket\" (first at line 1)" },
        { "alerts:\n  exec: a\n  journald: true\n  exec: b\n", 4, 3,
          "alerts: duplicate key \"exec\" (first at line 2)" },
        { "keystores:\n  - path: /a\n    labels: { team: a, team: b }\n", 3, 24,
          "keystores[0].labels: duplicate key \"team\"" },
    };

    EXPECT_BAD(cases);
}

static void test_duplicate_names_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "keystores:\n  - { name: a, path: /a }\n  - { name: b, path: /b }\n"
          "  - { name: a, path: /c }\n",
          4, 13, "keystores[2]: duplicate keystore name \"a\" (first at line 2)" },
        /* A name that defaults to the path collides like a written one. */
        { "keystores:\n  - path: /srv\n  - path: /srv\n", 3, 11,
          "keystores[1]: duplicate keystore name \"/srv\"" },
        /* probe:NAME holds the server certificates of probe targets. */
        { "keystores:\n  - { name: 'probe:x', path: /a }\n", 2, 13,
          "keystores[0]: keystore name 'probe:x' is reserved" },
        { "probes:\n  targets:\n    - { name: x, host: a }\n    - { name: x, host: b }\n", 4, 15,
          "probes.targets[1]: duplicate target name \"x\"" },
        { "maintenance:\n"
          "  - { name: w, targets: [], every: daily, at: '1:00', duration: 1h }\n"
          "  - { name: w, targets: [], every: daily, at: '2:00', duration: 1h }\n",
          3, 13, "maintenance[1]: duplicate maintenance window name \"w\"" },
        { "keystores:\n  - path: /a\n    labels: { Team: a, team: b }\n", 3, 24,
          "keystores[0].labels: duplicate label \"team\" (first at line 3" },
    };

    EXPECT_BAD(cases);
}

static void test_missing_and_empty_required_values_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "keystores:\n  - name: a\n    recursive: true\n", 2, 5,
          "keystores[0]: missing key \"path\"" },
        { "keystores:\n  - name: a\n    path:\n", 3, 10, "keystores[0].path: a value is required" },
        { "keystores:\n  - { name: a, path: '' }\n", 2, 22,
          "keystores[0].path: must not be empty" },
        { "socket: ''\n", 1, 9, "socket: must not be empty" },
        { "probes:\n  targets:\n    - { name: a, port: 443 }\n", 3, 7,
          "probes.targets[0]: missing key \"host\"" },
        { "probes:\n  targets:\n    - { host: 'bad host' }\n", 3, 15, "bad host \"bad host\"" },
        { "rules:\n  - renew_before: 1d\n", 2, 5, "rules[0]: missing key \"match\"" },
        { "rules:\n  - match: {}\n", 2, 12,
          "rules[0].match: needs at least one of keystore, issuer or subject" },
        { "rules:\n  - match:\n", 2, 11, "rules[0].match: needs at least one of" },
        { "maintenance:\n  - { targets: [], every: daily, at: '1:00', duration: 1h }\n", 2, 5,
          "maintenance[0]: missing key \"name\"" },
        { "maintenance:\n  - { name: m, every: daily, at: '1:00', duration: 1h }\n", 2, 5,
          "missing key \"targets\"" },
        { "maintenance:\n  - { name: m, targets: [], at: '1:00', duration: 1h }\n", 2, 5,
          "missing key \"every\"" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, duration: 1h }\n", 2, 5,
          "missing key \"at\"" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, at: '1:00' }\n", 2, 5,
          "missing key \"duration\"" },
        { "maintenance:\n  - { name: m, targets: [], every: daily, at: '1:00', duration: }\n", 2,
          65, "maintenance[0].duration: a value is required" },
        { "keystores:\n  - path: /a\n    include: [a, '']\n", 3, 18,
          "keystores[0].include[1]: must not be empty" },
        { "socket: \"a\\0b\"\n", 1, 9, "must not contain a NUL character" },
    };

    EXPECT_BAD(cases);
}

static void test_bad_labels_and_password_sources_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "keystores:\n  - path: /a\n    labels: { cost-center: x }\n", 3, 15,
          "keystores[0].labels: bad label name \"cost-center\"" },
        { "keystores:\n  - path: /a\n    labels: { 2fa: x }\n", 3, 15, "bad label name \"2fa\"" },
        { "keystores:\n  - path: /a\n    labels: { __name__: x }\n", 3, 15,
          "label name \"__name__\" is reserved" },
        { "keystores:\n  - path: /a\n    labels: { keystore: x }\n", 3, 15,
          "label name \"keystore\" is reserved" },
        { "keystores:\n  - path: /a\n    labels: { team: }\n", 3, 21,
          "keystores[0].labels.team: a value is required" },
        { "keystores:\n  - path: /a\n    passwords:\n      - credential: ../etc/shadow\n", 4, 21,
          "keystores[0].passwords[0].credential: bad credential name" },
        { "keystores:\n  - path: /a\n    passwords:\n      - env: KIGEN-PASS\n", 4, 14,
          "keystores[0].passwords[0].env: bad environment variable name \"KIGEN-PASS\"" },
        { "keystores:\n  - path: /a\n    passwords:\n      - file:\n", 4, 14,
          "keystores[0].passwords[0].file: a value is required" },
    };

    EXPECT_BAD(cases);
}

static void test_bad_addresses_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "metrics_listen: 9793\n", 1, 17, "metrics_listen: bad address \"9793\"" },
        { "metrics_listen: ':9793'\n", 1, 17, "bad address" },
        { "metrics_listen: 'localhost:0'\n", 1, 17, "bad address" },
        { "metrics_listen: '::1:9793'\n", 1, 17, "bad address" },
        { "probes: { proxy: 'socks5://p:1080' }\n", 1, 18,
          "probes.proxy: bad proxy \"socks5://p:1080\" (use \"\", env or http://host:port)" },
        { "probes: { proxy: 'http://proxy' }\n", 1, 18, "bad proxy" },
        { "probes: { proxy: 'http://user:pw@proxy:8080' }\n", 1, 18, "bad proxy" },
        { "socket: "
          "/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n",
          1, 9, "socket: socket path longer than 107 bytes" },
    };

    EXPECT_BAD(cases);
}

static void test_yaml_syntax_errors_are_reported_at_the_problem(void **state)
{
    static const struct bad cases[] = {
        { "socket: /a\nprobes:\n  interval: [5m\n  timeout: 10s\n", 4, 10,
          "YAML syntax error: did not find expected ',' or ']'" },
        { "socket: /a\n  state_dir: /b\n", 2, 12,
          "YAML syntax error: mapping values are not allowed" },
        { "alerts:\n  exec: \"unterminated\n", 3, 1, "YAML syntax error: found unexpected end" },
        { "socket: /a\n\tstate_dir: /b\n", 2, 1, "YAML syntax error" },
        { "socket: \"\xff\"\n", 1, 10, "cannot read YAML" },
    };

    EXPECT_BAD(cases);
}

static void test_anchors_aliases_and_billion_laughs_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "policy: &p\n  renew_before: 1d\nalerts: *p\n", 1, 9, "YAML anchors are not supported" },
        { "alerts: *p\n", 1, 9, "YAML aliases are not supported" },
        { "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
          "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
          "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
          "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
          "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
          "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
          "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
          "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
          "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n",
          1, 4, "YAML anchors are not supported" },
    };

    EXPECT_BAD(cases);
}

static void test_multiple_documents_are_rejected(void **state)
{
    static const struct bad cases[] = {
        { "socket: /a\n---\nsocket: /b\n", 2, 1, "only one YAML document is allowed" },
        { "---\nsocket: /a\n...\n---\n", 4, 1, "only one YAML document is allowed" },
    };

    EXPECT_BAD(cases);
}

static void test_deep_nesting_is_rejected_without_crash(void **state)
{
    size_t depth = 200000, i;
    char *text = malloc(2 * depth + 16);
    struct kigen_config *c = NULL;
    char err[512];
    size_t len;

    assert_non_null(text);
    len = (size_t)sprintf(text, "socket: ");
    for (i = 0; i < depth; i++)
        text[len++] = '[';
    for (i = 0; i < depth; i++)
        text[len++] = ']';
    text[len++] = '\n';
    assert_int_equal(kigen_config_parse("kigen.yaml", text, len, &c, err, sizeof(err)), -EINVAL);
    assert_null(c);
    /* The top-level mapping is level 1 and the outer list level 2: list 64 is at column 72. */
    assert_string_equal(err, "kigen.yaml:1:72: nested deeper than 64 levels");

    /* Block mappings nest too. */
    len = 0;
    for (i = 0; i < 100; i++)
        len += (size_t)sprintf(text + len, "%*sk:\n", (int)i, "");
    assert_int_equal(kigen_config_parse("kigen.yaml", text, len, &c, err, sizeof(err)), -EINVAL);
    assert_string_equal(err, "kigen.yaml:65:65: nested deeper than 64 levels");
    free(text);
}

static void test_too_many_nodes_are_rejected_without_crash(void **state)
{
    size_t items = 100001, i, len;
    char *text = malloc(2 * items + 16);
    struct kigen_config *c = NULL;
    char err[512];

    assert_non_null(text);
    len = (size_t)sprintf(text, "socket: [");
    for (i = 0; i < items; i++) {
        text[len++] = 'a';
        text[len++] = ',';
    }
    text[len++] = ']';
    assert_int_equal(kigen_config_parse("kigen.yaml", text, len, &c, err, sizeof(err)), -EINVAL);
    assert_null(c);
    /* The mapping, "socket" and the list are nodes 1 to 3: item 99998 is node 100001. */
    assert_string_equal(err, "kigen.yaml:1:200004: more than 100000 YAML nodes");
    free(text);
}

static void test_input_over_one_mebibyte_is_rejected(void **state)
{
    size_t len = 1024 * 1024 + 1;
    char *text = malloc(len);
    struct kigen_config *c = NULL;
    char err[512];

    assert_non_null(text);
    memset(text, '#', len);
    assert_int_equal(kigen_config_parse("kigen.yaml", text, len, &c, err, sizeof(err)), -EFBIG);
    assert_null(c);
    assert_non_null(strstr(err, "kigen.yaml: larger than 1 MiB"));

    /* Exactly 1 MiB of comment is still read. */
    assert_int_equal(kigen_config_parse("kigen.yaml", text, len - 1, &c, err, sizeof(err)), 0);
    kigen_config_free(c);
    free(text);
}

/* Writes text to a new temporary file; returns its path in a static buffer. */
static const char *write_temp(const char *text, size_t len)
{
    static char path[64];
    int fd;

    strcpy(path, "/tmp/kigen-test-config-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    return path;
}

static void test_load_reads_a_file_and_names_it_in_messages(void **state)
{
    static const char bad[] = "alerts:\n  syslog: maybe?\n  journald: nope\n";
    struct kigen_config *c = NULL;
    const char *path;
    char err[512], want[128];

    path = write_temp(spec_example, strlen(spec_example));
    assert_int_equal(kigen_config_load(path, &c, err, sizeof(err)), 0);
    assert_string_equal(c->path, path);
    assert_string_equal(c->keystores[0].name, "naccs-users");
    kigen_config_free(c);
    unlink(path);

    c = NULL;
    path = write_temp(bad, strlen(bad));
    assert_int_equal(kigen_config_load(path, &c, err, sizeof(err)), -EINVAL);
    assert_null(c);
    snprintf(want, sizeof(want), "%s:3:13: alerts.journald: expected a boolean", path);
    assert_non_null(strstr(err, want));
    unlink(path);
}

static void test_load_rejects_a_file_over_one_mebibyte(void **state)
{
    size_t len = 1024 * 1024 + 1;
    char *text = malloc(len);
    struct kigen_config *c = NULL;
    const char *path;
    char err[512], want[128];

    assert_non_null(text);
    memset(text, '\n', len);
    path = write_temp(text, len);
    assert_int_equal(kigen_config_load(path, &c, err, sizeof(err)), -EFBIG);
    assert_null(c);
    snprintf(want, sizeof(want), "%s: larger than 1 MiB", path);
    assert_non_null(strstr(err, want));
    unlink(path);
    free(text);
}

static void test_load_of_a_missing_file_is_enoent_with_message(void **state)
{
    struct kigen_config *c = NULL;
    char err[512];

    assert_int_equal(kigen_config_load("/nonexistent/kigen.yaml", &c, err, sizeof(err)), -ENOENT);
    assert_null(c);
    assert_string_equal(err, "/nonexistent/kigen.yaml: No such file or directory");
    assert_int_equal(kigen_config_load("/tmp", &c, err, sizeof(err)), -EISDIR);
    assert_string_equal(err, "/tmp: Is a directory");
}

static void test_small_or_missing_error_buffers_are_safe(void **state)
{
    static const char text[] = "keystores:\n  - path: /a\n    max_file_size: 16 MB\n";
    struct kigen_config *c = NULL;
    char err[16];

    assert_int_equal(kigen_config_parse("kigen.yaml", text, strlen(text), &c, err, sizeof(err)),
                     -EINVAL);
    assert_string_equal(err, "kigen.yaml:3:20");
    assert_int_equal(kigen_config_parse("kigen.yaml", text, strlen(text), &c, NULL, 0), -EINVAL);
    assert_null(c);
}

static void test_user_text_in_messages_is_escaped_and_cut(void **state)
{
    static const char text[] = "scan_interval: \"1\\nh\\u0007\"\n";
    char long_text[300];
    struct kigen_config *c = NULL;
    char err[512];

    assert_int_equal(kigen_config_parse("kigen.yaml", text, strlen(text), &c, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "bad duration \"1\\x0ah\\x07\""));

    snprintf(long_text, sizeof(long_text), "socket: /a\n%0200d: x\n", 0);
    assert_int_equal(
        kigen_config_parse("kigen.yaml", long_text, strlen(long_text), &c, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "unknown key \"000000"));
    assert_non_null(strstr(err, "...\""));
    assert_true(strlen(err) < 120);
}

static void test_duration_parse_accepts_each_unit(void **state)
{
    int64_t s = -1;

    assert_int_equal(kigen_duration_parse("10s", &s), 0);
    assert_int_equal(s, 10);
    assert_int_equal(kigen_duration_parse("5m", &s), 0);
    assert_int_equal(s, 300);
    assert_int_equal(kigen_duration_parse("1h", &s), 0);
    assert_int_equal(s, 3600);
    assert_int_equal(kigen_duration_parse("28d", &s), 0);
    assert_int_equal(s, 28 * DAY);
    assert_int_equal(kigen_duration_parse("2w", &s), 0);
    assert_int_equal(s, 14 * DAY);
    assert_int_equal(kigen_duration_parse("0s", &s), 0);
    assert_int_equal(s, 0);
    assert_int_equal(kigen_duration_parse("007d", &s), 0);
    assert_int_equal(s, 7 * DAY);
}

static void test_duration_parse_handles_range_boundaries(void **state)
{
    int64_t s = -1;

    assert_int_equal(kigen_duration_parse("9223372036854775807s", &s), 0);
    assert_int_equal(s, INT64_MAX);
    assert_int_equal(kigen_duration_parse("9223372036854775808s", &s), -ERANGE);
    assert_int_equal(kigen_duration_parse("153722867280912930m", &s), 0);
    assert_int_equal(s, INT64_C(153722867280912930) * 60);
    assert_int_equal(kigen_duration_parse("153722867280912931m", &s), -ERANGE);
    assert_int_equal(kigen_duration_parse("15250284452471w", &s), 0);
    assert_int_equal(kigen_duration_parse("15250284452472w", &s), -ERANGE);
    assert_int_equal(kigen_duration_parse("99999999999999999999999999d", &s), -ERANGE);
    /* Syntax is judged before range. */
    assert_int_equal(kigen_duration_parse("99999999999999999999999999x", &s), -EINVAL);
    assert_int_equal(s, 15250284452471 * 7 * DAY);
}

static void test_duration_parse_rejects_junk(void **state)
{
    static const char *const bad[] = { "",    "s",    "10", "-1h",  "+1h",   " 1h", "1h ", "1 h",
                                       "1hs", "1.5h", "1H", "1d2h", "0x10s", "1y",  "h1",  "1\th" };
    int64_t s = 42;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (kigen_duration_parse(bad[i], &s) != -EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(kigen_duration_parse(NULL, &s), -EINVAL);
    assert_int_equal(s, 42);
}

static void test_size_parse_accepts_units_and_bare_bytes(void **state)
{
    uint64_t b = 0;

    assert_int_equal(kigen_size_parse("16MiB", &b), 0);
    assert_int_equal(b, 16 * 1024 * 1024);
    assert_int_equal(kigen_size_parse("512KiB", &b), 0);
    assert_int_equal(b, 512 * 1024);
    assert_int_equal(kigen_size_parse("1GiB", &b), 0);
    assert_int_equal(b, 1024 * 1024 * 1024);
    assert_int_equal(kigen_size_parse("100B", &b), 0);
    assert_int_equal(b, 100);
    assert_int_equal(kigen_size_parse("4096", &b), 0);
    assert_int_equal(b, 4096);
    assert_int_equal(kigen_size_parse("0", &b), 0);
    assert_int_equal(b, 0);
}

static void test_size_parse_handles_range_boundaries(void **state)
{
    uint64_t b = 0;

    assert_int_equal(kigen_size_parse("18446744073709551615", &b), 0);
    assert_true(b == UINT64_MAX);
    assert_int_equal(kigen_size_parse("18446744073709551616", &b), -ERANGE);
    assert_int_equal(kigen_size_parse("17179869183GiB", &b), 0);
    assert_true(b == UINT64_C(17179869183) << 30);
    assert_int_equal(kigen_size_parse("17179869184GiB", &b), -ERANGE);
    assert_int_equal(kigen_size_parse("99999999999999999999999KiB", &b), -ERANGE);
    assert_int_equal(kigen_size_parse("99999999999999999999999MB", &b), -EINVAL);
}

static void test_size_parse_rejects_junk(void **state)
{
    static const char *const bad[] = { "",     "MiB",  "16 MiB", "16MB", "16mib", "16M",
                                       "16Mi", "-1",   "+1",     " 1",   "1 ",    "1.5MiB",
                                       "1TiB", "0x10", "16MiBs", "1kib" };
    uint64_t b = 42;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (kigen_size_parse(bad[i], &b) != -EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(kigen_size_parse(NULL, &b), -EINVAL);
    assert_true(b == 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_example_parses_to_the_documented_values),
        cmocka_unit_test(test_empty_document_gives_every_default_and_no_keystore),
        cmocka_unit_test(test_absent_sections_give_the_naccs_probes_and_window),
        cmocka_unit_test(test_empty_probe_targets_turn_probing_off),
        cmocka_unit_test(test_probes_without_targets_keep_the_naccs_targets),
        cmocka_unit_test(test_empty_maintenance_list_means_no_window),
        cmocka_unit_test(test_null_values_keep_defaults_and_null_lists_are_empty),
        cmocka_unit_test(test_probe_targets_take_their_own_values_and_section_defaults),
        cmocka_unit_test(test_keystore_defaults_apply_and_name_defaults_to_path),
        cmocka_unit_test(test_maintenance_schedules_and_timezone_default),
        cmocka_unit_test(test_alerts_outputs_and_booleans),
        cmocka_unit_test(test_notify_before_is_sorted_descending_without_duplicates),
        cmocka_unit_test(test_policy_for_lays_the_first_matching_rule_over_the_policy),
        cmocka_unit_test(test_policy_for_without_rules_is_the_policy),
        cmocka_unit_test(test_validity_takes_years_and_months_as_written),
        cmocka_unit_test(test_policy_for_carries_validity_revocation_and_instructions),
        cmocka_unit_test(test_mail_takes_a_command_as_path_or_argv),
        cmocka_unit_test(test_webhooks_take_their_values_and_defaults),
        cmocka_unit_test(test_holders_language_revocation_and_metrics_take_their_values),
        cmocka_unit_test(test_revocation_hosts_default_unless_given_and_empty_means_none),
        cmocka_unit_test(test_bad_schema_values_are_rejected),
        cmocka_unit_test(test_webhook_url_written_inline_is_rejected_without_echoing_it),
        cmocka_unit_test(test_unknown_keys_are_rejected_where_written),
        cmocka_unit_test(test_wrong_types_are_rejected),
        cmocka_unit_test(test_bad_durations_are_rejected),
        cmocka_unit_test(test_bad_sizes_are_rejected),
        cmocka_unit_test(test_bad_booleans_are_rejected),
        cmocka_unit_test(test_bad_integers_and_ports_are_rejected),
        cmocka_unit_test(test_bad_schedules_and_times_are_rejected),
        cmocka_unit_test(test_unknown_timezones_are_rejected),
        cmocka_unit_test(test_duplicate_keys_are_rejected),
        cmocka_unit_test(test_duplicate_names_are_rejected),
        cmocka_unit_test(test_missing_and_empty_required_values_are_rejected),
        cmocka_unit_test(test_bad_labels_and_password_sources_are_rejected),
        cmocka_unit_test(test_bad_addresses_are_rejected),
        cmocka_unit_test(test_yaml_syntax_errors_are_reported_at_the_problem),
        cmocka_unit_test(test_anchors_aliases_and_billion_laughs_are_rejected),
        cmocka_unit_test(test_multiple_documents_are_rejected),
        cmocka_unit_test(test_deep_nesting_is_rejected_without_crash),
        cmocka_unit_test(test_too_many_nodes_are_rejected_without_crash),
        cmocka_unit_test(test_input_over_one_mebibyte_is_rejected),
        cmocka_unit_test(test_load_reads_a_file_and_names_it_in_messages),
        cmocka_unit_test(test_load_rejects_a_file_over_one_mebibyte),
        cmocka_unit_test(test_load_of_a_missing_file_is_enoent_with_message),
        cmocka_unit_test(test_small_or_missing_error_buffers_are_safe),
        cmocka_unit_test(test_user_text_in_messages_is_escaped_and_cut),
        cmocka_unit_test(test_duration_parse_accepts_each_unit),
        cmocka_unit_test(test_duration_parse_handles_range_boundaries),
        cmocka_unit_test(test_duration_parse_rejects_junk),
        cmocka_unit_test(test_size_parse_accepts_units_and_bare_bytes),
        cmocka_unit_test(test_size_parse_handles_range_boundaries),
        cmocka_unit_test(test_size_parse_rejects_junk),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
