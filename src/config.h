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

/* A policy or the part of a rule that overrides it. -1 / NULL / has_notify=false: unset. */
struct kigen_policy {
    int64_t renew_before;
    int64_t critical_before;
    bool has_notify;
    int64_t *notify_before; /* sorted descending, no duplicates */
    size_t n_notify;
    char *renew_url;
    char *reissue_note;
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

struct kigen_alerts {
    bool journald;          /* default true */
    char *syslog;           /* NULL: off; `true` means "/dev/log" */
    char *exec;             /* NULL: off */
    char *textfile;         /* NULL: off */
    int64_t reminder_every; /* default 1d */
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

void kigen_config_free(struct kigen_config *config);

/* The configured keystore of that name, or NULL. */
const struct kigen_keystore *kigen_config_find_keystore(const struct kigen_config *config,
                                                        const char *name);

/*
 * The effective policy for a certificate: config->policy with the first matching rule's
 * fields laid over it. The pointers in *ret point into config.
 */
void kigen_config_policy_for(const struct kigen_config *config, const char *keystore,
                             const char *subject, const char *issuer, struct kigen_policy *ret);

#endif
