/*
 * The configuration of SPEC §3, parsed from YAML. Every field has its default filled in
 * by kigen_config_load(); durations are seconds, sizes bytes.
 */
#ifndef KIGEN_CONFIG_H
#define KIGEN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The inventory holds each probe target's server certificate under the keystore name
 * "probe:<target>"; configured keystores may not take such a name.
 */
#define KIGEN_PROBE_KEYSTORE_PREFIX "probe:"

/*
 * SPEC §12: certificates declared in the holders' register live in the inventory under the
 * keystore name "register"; a configured keystore may not take it.
 */
#define KIGEN_REGISTER_KEYSTORE "register"

struct kigen_label {
    char *name;
    char *value;
};

struct kigen_labels {
    struct kigen_label *v;
    size_t n;
};

struct kigen_strv {
    char **v;
    size_t n;
};

enum kigen_password_kind {
    KIGEN_PASSWORD_FILE,       /* value: path; first line */
    KIGEN_PASSWORD_CREDENTIAL, /* value: name in $CREDENTIALS_DIRECTORY */
    KIGEN_PASSWORD_ENV,        /* value: environment variable name */
};

struct kigen_password_source {
    enum kigen_password_kind kind;
    char *value; /* a reference to the secret, never the secret */
};

/*
 * A rule's `validity` (SPEC §12): calendar years and months as written, `5y1m` = {5, 1},
 * `18m` = {0, 18}. A date plus a validity adds 12 * years + months months, then takes the
 * month's last day when the day is past it. {0, 0}: unset; a set one is 1 month to 100 years.
 */
struct kigen_validity {
    int years;
    int months;
};

/*
 * A policy or the part of a rule that overrides it. -1 / NULL / has_*=false / validity
 * {0, 0}: unset. validity, revocation and instructions are written in rules only; the
 * configuration's policy holds their defaults (unset, false, NULL).
 */
struct kigen_policy {
    int64_t renew_before;
    int64_t critical_before;
    bool has_notify;
    int64_t *notify_before; /* sorted descending, no duplicates */
    size_t n_notify;
    char *renew_url;
    char *reissue_note;
    struct kigen_validity validity; /* for register rows that give only `issued` (§12) */
    bool has_revocation;
    bool revocation;    /* check CRL, else OCSP (§13); default false */
    char *instructions; /* what the holder does, for their mail (§7); UTF-8, may span lines */
};

struct kigen_rule {
    char *keystore; /* glob on the name; NULL matches any */
    char *issuer;   /* fnmatch(3) glob on the RFC 2253 string; NULL matches any */
    char *subject;
    struct kigen_policy set; /* only the fields the rule sets */
};

struct kigen_keystore {
    char *name;
    char *path;
    bool recursive;            /* default true */
    struct kigen_strv include; /* default ["*"] */
    struct kigen_strv exclude; /* default [] */
    struct kigen_password_source *passwords;
    size_t n_passwords;
    bool password_sidecar;  /* default true */
    bool follow_symlinks;   /* default false */
    uint64_t max_file_size; /* default 16 MiB */
    struct kigen_labels labels;
};

struct kigen_probe_target {
    char *name;
    char *host;
    uint16_t port;    /* default 443 */
    bool tls;         /* default true */
    char *ca_file;    /* NULL: system trust store */
    int64_t interval; /* default: probes.interval */
    int64_t timeout;  /* default: probes.timeout */
};

struct kigen_probes {
    int64_t interval;               /* default 5m */
    int64_t timeout;                /* default 10s */
    unsigned failures_before_alert; /* default 3 */
    char *proxy;                    /* NULL or "": direct; "env"; "http://host:port" */
    struct kigen_probe_target *targets;
    size_t n_targets;
};

enum kigen_every_kind {
    KIGEN_EVERY_DAILY,
    KIGEN_EVERY_WEEKLY,  /* weekday */
    KIGEN_EVERY_MONTHLY, /* nth weekday of the month; nth 1..4, or -1 for last */
};

struct kigen_every {
    enum kigen_every_kind kind;
    int nth;
    int weekday; /* 0 = Sunday .. 6 = Saturday */
};

struct kigen_maintenance {
    char *name;
    struct kigen_strv targets;
    struct kigen_every every;
    int at_minute;    /* minutes after local midnight */
    int64_t duration; /* seconds, > 0 */
    char *timezone;   /* IANA name; default: the top-level timezone */
};

/*
 * holders (SPEC §12): the register (register_records.h); admins are the Cc of every mail
 * and the To of mail with no holder (sink_mail.c).
 */
struct kigen_holders {
    char *register_path;      /* holders.register: the CSV register; NULL (default): none */
    struct kigen_strv admins; /* plain addresses local@domain, no duplicates; default [] */
};

/*
 * alerts.mail (SPEC §7, §12): the mail sink (sink_mail.c), durable in state_dir/deliveries.
 * digest_at: the daily digest (daemon/service.c send_digest, composed by mail.c).
 */
struct kigen_mail {
    struct kigen_strv sendmail; /* argv of the command, without `-oi -t`; n == 0: mail off */
    char *from;                 /* the From: header as written; NULL (default): sendmail's */
    bool to_holders;            /* default true */
    int digest_at;              /* minutes after midnight in `timezone`; -1 (default): none */
};

enum kigen_webhook_format {
    KIGEN_WEBHOOK_SLACK, /* default; also Mattermost, Rocket.Chat, Google Chat */
    KIGEN_WEBHOOK_TEAMS,
    KIGEN_WEBHOOK_JSON,
};

/*
 * An entry of alerts.webhooks (SPEC §12): each is a sink of its own, "webhook:<name>"
 * (sink_webhook.c). The parser fills everything but url_secret, which the daemon reads from
 * url when it starts or reloads (kigen_secret_read()).
 */
/* language: of alerts, mails and the digest (i18n.h); a register row's own wins for its mail. */
enum kigen_language {
    KIGEN_LANGUAGE_EN, /* default */
    KIGEN_LANGUAGE_JA,
};

struct kigen_webhook {
    char *name;                       /* required, unique */
    struct kigen_password_source url; /* required: the URL is a secret, read like a password */
    enum kigen_webhook_format format;
    char *proxy;      /* as probes.proxy: NULL: direct; "env"; "http://host:port" */
    char *ca_file;    /* NULL (default): the system trust store */
    uint32_t events;  /* bit (1u << enum kigen_event) per event sent; default: every event */
    char *url_secret; /* the URL itself (kigen_secret_dup()): never logged, shown or saved */
    enum kigen_language language; /* the top-level language:, for the labels */
};

struct kigen_alerts {
    bool journald;          /* default true */
    char *syslog;           /* NULL: off; `true` means "/dev/log" */
    char *exec;             /* NULL: off */
    char *textfile;         /* NULL: off */
    int64_t reminder_every; /* default 1d */
    struct kigen_mail mail;
    struct kigen_webhook *webhooks; /* default none */
    size_t n_webhooks;
};

/* revocation (SPEC §13), for rules with `revocation: true`: how revocation.c fetches. */
struct kigen_revocation {
    struct kigen_strv hosts; /* host globs, no duplicates; default ["*.naccs.jp"]; [] = none */
    int64_t interval;        /* default 6h */
    char *proxy;             /* as probes.proxy */
    uint64_t max_size;       /* default 20 MiB */
};

/* The optional labels of metrics.labels, as bits. */
enum {
    KIGEN_METRICS_SUBJECT = 1 << 0,
    KIGEN_METRICS_ISSUER = 1 << 1,
    KIGEN_METRICS_SERIAL = 1 << 2,
    KIGEN_METRICS_SHA256 = 1 << 3,
};

/* metrics (SPEC §10): what the metrics add to their lean defaults. */
struct kigen_metrics {
    uint32_t labels;   /* KIGEN_METRICS_* bits; default 0 */
    bool not_before;   /* default false */
    bool state_series; /* default false */
};

struct kigen_config {
    char *path;                 /* the file it came from */
    char *socket;               /* default /run/kigen/kigen.sock */
    char *state_dir;            /* default /var/lib/kigen */
    int64_t scan_interval;      /* default 1h */
    char *timezone;             /* default Asia/Tokyo */
    char *metrics_listen;       /* NULL: off; "127.0.0.1:9793" */
    struct kigen_policy policy; /* every field set: 28d, 7d, [60d,28d,14d,7d,3d,1d] */
    struct kigen_rule *rules;
    size_t n_rules;
    struct kigen_keystore *keystores;
    size_t n_keystores;
    struct kigen_probes probes;            /* NACCS defaults when the section is absent */
    struct kigen_maintenance *maintenance; /* NACCS default when the section is absent */
    size_t n_maintenance;
    struct kigen_alerts alerts;
    struct kigen_holders holders;
    enum kigen_language language;
    struct kigen_revocation revocation; /* defaults when the section or a key is absent */
    struct kigen_metrics metrics;
};

/*
 * Reads and validates the YAML file at path. On success returns 0 and *ret_config owns the
 * result. On failure returns a negative errno (-EINVAL for bad content, -ENOENT etc. for
 * the file) and writes "FILE:LINE:COLUMN: reason" into errbuf; *ret_config is untouched.
 * Unknown keys, wrong types and bad values are errors.
 */
int kigen_config_load(const char *path, struct kigen_config **ret_config, char *errbuf,
                      size_t errlen);

/* The same from a buffer; name is used in messages. */
int kigen_config_parse(const char *name, const char *text, size_t len,
                       struct kigen_config **ret_config, char *errbuf, size_t errlen);

/*
 * The same, with the reason in errbuf written for people reading lang (i18n.h): only the
 * text after "FILE:LINE:COLUMN: PATH: " changes, never the location, the return value or
 * an errno text (strerror, libyaml's problem), which stay as the library wrote them.
 */
int kigen_config_load_lang(const char *path, enum kigen_language lang,
                           struct kigen_config **ret_config, char *errbuf, size_t errlen);
int kigen_config_parse_lang(const char *name, const char *text, size_t len,
                            enum kigen_language lang, struct kigen_config **ret_config,
                            char *errbuf, size_t errlen);

void kigen_config_free(struct kigen_config *config);

/* The configured keystore of that name, or NULL. */
const struct kigen_keystore *kigen_config_find_keystore(const struct kigen_config *config,
                                                        const char *name);

/*
 * The effective policy for a certificate: config->policy with the first matching rule's
 * fields laid over it (validity, revocation and instructions included: unset inherits the
 * policy's). The pointers in *ret point into config.
 */
void kigen_config_policy_for(const struct kigen_config *config, const char *keystore,
                             const char *subject, const char *issuer, struct kigen_policy *ret);

#endif
