#include "alert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * The MESSAGE_IDs were generated once and never change: log pipelines filter on them and
 * units/kigen.catalog explains each.
 */
static const struct {
    const char *name;
    const char *message_id;
    int priority;
} events[KIGEN_EVENT_COUNT] = {
    [KIGEN_EVENT_CERT_THRESHOLD] = { "cert.threshold", "b6878696797c491688f24c7f7e352769", 5 },
    [KIGEN_EVENT_CERT_RENEWAL_OPEN] = { "cert.renewal_open", "00de9d89eafa4738a9f6717aca2d38d2",
                                        4 },
    [KIGEN_EVENT_CERT_CRITICAL] = { "cert.critical", "ab6735f932f4440eb91d267cec74cb31", 3 },
    [KIGEN_EVENT_CERT_EXPIRED] = { "cert.expired", "20db767fb9124450923afc81d0d3c4a9", 3 },
    [KIGEN_EVENT_CERT_RENEWED] = { "cert.renewed", "f5c94d975b474f79b211793098ed0852", 6 },
    [KIGEN_EVENT_CERT_GONE] = { "cert.gone", "2b3838b011a542ffa65941923f4b200f", 5 },
    [KIGEN_EVENT_SCAN_ERROR] = { "scan.error", "0694a9faae4840469567fc5f943c5c9a", 4 },
    [KIGEN_EVENT_PROBE_DOWN] = { "probe.down", "007facfbc80f400a9ae6f6f5cf089d7b", 3 },
    [KIGEN_EVENT_PROBE_UP] = { "probe.up", "4c2530caa884485eb89b6609011ed582", 6 },
    [KIGEN_EVENT_CONFIG_RELOADED] = { "config.reloaded", "744c4cc1cc15444b9a2f7d8c9be39a07", 6 },
    [KIGEN_EVENT_CONFIG_REJECTED] = { "config.rejected", "3fcfcf8137d346a9b191dcbf0f8f7ca3", 3 },
    [KIGEN_EVENT_CERT_REVOKED] = { "cert.revoked", "a9839decf5d04adf8cd97c9170745a5b", 3 },
    [KIGEN_EVENT_CRL_STALE] = { "crl.stale", "8c7b77befb924b3dac859644a5151cd0", 4 },
};

const char *kigen_event_name(enum kigen_event event)
{
    return (unsigned)event < KIGEN_EVENT_COUNT ? events[event].name : NULL;
}

int kigen_event_from_name(const char *name)
{
    for (int i = 0; i < KIGEN_EVENT_COUNT; i++)
        if (strcmp(events[i].name, name) == 0)
            return i;
    return -1;
}

const char *kigen_event_message_id(enum kigen_event event)
{
    return (unsigned)event < KIGEN_EVENT_COUNT ? events[event].message_id : NULL;
}

int kigen_event_priority(enum kigen_event event)
{
    return (unsigned)event < KIGEN_EVENT_COUNT ? events[event].priority : 3;
}

struct kigen_alert *kigen_alert_new(enum kigen_event event, const char *message)
{
    struct kigen_alert *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->event = event;
    a->priority = kigen_event_priority(event);
    a->message = strdup(message);
    if (!a->message || kigen_alert_add(a, "KIGEN_EVENT", kigen_event_name(event)) < 0) {
        kigen_alert_free(a);
        return NULL;
    }
    return a;
}

int kigen_alert_add(struct kigen_alert *alert, const char *name, const char *value)
{
    struct kigen_alert_field f;

    if (alert->n_fields == alert->cap) {
        size_t cap = alert->cap ? alert->cap * 2 : 16;
        struct kigen_alert_field *v = realloc(alert->fields, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        alert->fields = v;
        alert->cap = cap;
    }
    f.name = strdup(name);
    f.value = strdup(value);
    if (!f.name || !f.value) {
        free(f.name);
        free(f.value);
        return -ENOMEM;
    }
    alert->fields[alert->n_fields++] = f;
    return 0;
}

const char *kigen_alert_get(const struct kigen_alert *alert, const char *name)
{
    for (size_t i = 0; i < alert->n_fields; i++)
        if (strcmp(alert->fields[i].name, name) == 0)
            return alert->fields[i].value;
    return NULL;
}

struct kigen_alert *kigen_alert_dup(const struct kigen_alert *alert)
{
    struct kigen_alert *a = calloc(1, sizeof(*a));

    if (!a)
        return NULL;
    a->event = alert->event;
    a->priority = alert->priority;
    a->message = strdup(alert->message);
    if (!a->message)
        goto fail;
    for (size_t i = 0; i < alert->n_fields; i++)
        if (kigen_alert_add(a, alert->fields[i].name, alert->fields[i].value) < 0)
            goto fail;
    if (alert->holder_maintenance && !(a->holder_maintenance = strdup(alert->holder_maintenance)))
        goto fail;
    return a;
fail:
    kigen_alert_free(a);
    return NULL;
}

void kigen_alert_free(struct kigen_alert *alert)
{
    if (!alert)
        return;
    for (size_t i = 0; i < alert->n_fields; i++) {
        free(alert->fields[i].name);
        free(alert->fields[i].value);
    }
    free(alert->fields);
    free(alert->message);
    free(alert->holder_maintenance);
    free(alert);
}
