/*
 * The YAML configuration (SPEC §3): kigen_config_parse(), the in-memory twin of
 * kigen_config_load(). A configuration that is accepted must hold every default and only
 * values in range, and must be usable by what reads it next: the policy lookup and the
 * maintenance windows (kigen_maint_set_new, which loads the zones the configuration named).
 * A rejected one must say why on one line that starts with the file name.
 *
 * Nothing here reads a file the input names: password sources and ca_file are only stored by
 * the parser; a timezone is looked up under /usr/share/zoneinfo, which fails fast.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "maint.h"

#define NAME "fuzz.yaml"

static void check_policy(const struct kigen_policy *p, bool is_full)
{
    if (is_full) {
        FUZZ_CHECK(p->renew_before >= 0 && p->critical_before >= 0 && p->has_notify);
    } else {
        FUZZ_CHECK(p->renew_before >= -1 && p->critical_before >= -1);
    }
    FUZZ_CHECK(p->n_notify == 0 || p->notify_before);
    FUZZ_CHECK(p->validity.years >= 0 && p->validity.months >= 0);
    FUZZ_CHECK(p->validity.years * 12 + p->validity.months <= 1200);
    if (is_full)
        FUZZ_CHECK(p->has_revocation);
    for (size_t i = 0; i < p->n_notify; i++) {
        FUZZ_CHECK(p->notify_before[i] >= 1);
        if (i > 0)
            FUZZ_CHECK(p->notify_before[i - 1] > p->notify_before[i]);
    }
}

static void check_strv(const struct kigen_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        FUZZ_CHECK(sv->v[i] != NULL);
}

static void check_config(const struct kigen_config *config)
{
    struct kigen_policy p;
    struct kigen_maint_set *set = NULL;
    char err[512] = "";
    int r;

    FUZZ_CHECK(config->path && config->socket && config->state_dir && config->timezone);
    FUZZ_CHECK(config->scan_interval >= 1);
    check_policy(&config->policy, true);
    for (size_t i = 0; i < config->n_rules; i++)
        check_policy(&config->rules[i].set, false);
    for (size_t i = 0; i < config->n_keystores; i++) {
        const struct kigen_keystore *ks = &config->keystores[i];

        FUZZ_CHECK(ks->name && ks->path && ks->max_file_size > 0);
        check_strv(&ks->include);
        check_strv(&ks->exclude);
        for (size_t j = 0; j < ks->n_passwords; j++)
            FUZZ_CHECK(ks->passwords[j].value != NULL);
        for (size_t j = 0; j < ks->labels.n; j++)
            FUZZ_CHECK(ks->labels.v[j].name && ks->labels.v[j].value);
    }
    FUZZ_CHECK(config->probes.interval >= 1 && config->probes.timeout >= 1);
    for (size_t i = 0; i < config->probes.n_targets; i++) {
        const struct kigen_probe_target *t = &config->probes.targets[i];

        FUZZ_CHECK(t->name && t->host && t->port >= 1 && t->interval >= 1 && t->timeout >= 1);
    }
    for (size_t i = 0; i < config->n_maintenance; i++) {
        const struct kigen_maintenance *m = &config->maintenance[i];

        FUZZ_CHECK(m->name && m->timezone && m->duration >= 1);
        FUZZ_CHECK(m->at_minute >= 0 && m->at_minute < 24 * 60);
        check_strv(&m->targets);
    }
    FUZZ_CHECK(config->alerts.reminder_every >= 1);
    check_strv(&config->alerts.mail.sendmail);
    FUZZ_CHECK(config->alerts.mail.digest_at >= -1 && config->alerts.mail.digest_at < 24 * 60);
    for (size_t i = 0; i < config->alerts.n_webhooks; i++) {
        const struct kigen_webhook *w = &config->alerts.webhooks[i];

        FUZZ_CHECK(w->name && w->url.value && w->events != 0);
    }
    check_strv(&config->holders.admins);
    check_strv(&config->revocation.hosts);
    FUZZ_CHECK(config->revocation.interval >= 1 && config->revocation.max_size > 0);

    kigen_config_policy_for(config, "naccs-users", "CN=tanaka,O=Example Trading,C=JP",
                            "CN=NACCS Client CA,O=Test NACCS,C=JP", &p);
    check_policy(&p, true);

    /* What the configuration accepted, the maintenance windows must be able to use. */
    r = kigen_maint_set_new(config, &set, err, sizeof(err));
    if (r < 0 && r != -ENOMEM) {
        fprintf(stderr, "accepted configuration gives no maintenance windows: %s (%s)\n", err,
                strerror(-r));
        FUZZ_CHECK(!"kigen_maint_set_new accepts what kigen_config_parse accepted");
    }
    kigen_maint_set_free(set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kigen_config *config = NULL;
    char errbuf[1024] = "";
    int r;

    r = kigen_config_parse(NAME, (const char *)data, size, &config, errbuf, sizeof(errbuf));
    if (r == 0) {
        FUZZ_CHECK(config != NULL);
        check_config(config);
        kigen_config_free(config);
        return 0;
    }
    FUZZ_CHECK(config == NULL);
    FUZZ_CHECK(r == -EINVAL || r == -EFBIG || r == -ENOMEM);
    FUZZ_CHECK(strncmp(errbuf, NAME ":", strlen(NAME ":")) == 0);
    FUZZ_CHECK(fuzz_is_one_line(errbuf));
    return 0;
}
