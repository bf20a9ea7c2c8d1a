/*
 * Alerts of SPEC §7. An alert is what the engine decided to say: one event, a priority, a
 * message that says what to do, and named facts (KIGEN_SHA256, KIGEN_PATHS, ...). Sinks
 * deliver alerts and know nothing of how they were decided.
 */
#ifndef KIGEN_ALERT_H
#define KIGEN_ALERT_H

#include <stddef.h>

enum kigen_event {
    KIGEN_EVENT_CERT_THRESHOLD,
    KIGEN_EVENT_CERT_RENEWAL_OPEN,
    KIGEN_EVENT_CERT_CRITICAL,
    KIGEN_EVENT_CERT_EXPIRED,
    KIGEN_EVENT_CERT_RENEWED,
    KIGEN_EVENT_CERT_GONE,
    KIGEN_EVENT_SCAN_ERROR,
    KIGEN_EVENT_PROBE_DOWN,
    KIGEN_EVENT_PROBE_UP,
    KIGEN_EVENT_CONFIG_RELOADED,
    KIGEN_EVENT_CONFIG_REJECTED,
    KIGEN_EVENT_CERT_REVOKED, /* SPEC §13 */
    KIGEN_EVENT_CRL_STALE,
};
#define KIGEN_EVENT_COUNT 13

/* "cert.threshold", ...; NULL when out of range. */
const char *kigen_event_name(enum kigen_event event);

/* The event named name, or -1. */
int kigen_event_from_name(const char *name);

/* The fixed 128-bit MESSAGE_ID of the event, 32 lowercase hex digits (units/kigen.catalog). */
const char *kigen_event_message_id(enum kigen_event event);

/* The syslog priority of the event (3 err .. 6 info). */
int kigen_event_priority(enum kigen_event event);

struct kigen_alert_field {
    char *name; /* "KIGEN_SHA256", "KIGEN_LABEL_TEAM", ...: [A-Z0-9_]+ */
    char *value;
};

struct kigen_alert {
    enum kigen_event event;
    int priority;
    char *message;                    /* one line, plain English */
    struct kigen_alert_field *fields; /* KIGEN_EVENT first, then the facts that apply */
    size_t n_fields;
    size_t cap;
    /*
     * KIGEN_MAINTENANCE's sentence in the holder's own language (KIGEN_LANGUAGE), for their
     * mail; NULL when there is none. Not a field: no sink shows it, so the KIGEN_* facts stay
     * the same whatever the languages; a delivery file keeps it with the alert.
     */
    char *holder_maintenance;
};

/* A new alert for event with the message; KIGEN_EVENT is its first field. NULL on ENOMEM. */
struct kigen_alert *kigen_alert_new(enum kigen_event event, const char *message);

/* Adds a field (copied). Returns 0 or -ENOMEM. */
int kigen_alert_add(struct kigen_alert *alert, const char *name, const char *value);

/* The value of field name, or NULL. */
const char *kigen_alert_get(const struct kigen_alert *alert, const char *name);

/* A deep copy, or NULL. */
struct kigen_alert *kigen_alert_dup(const struct kigen_alert *alert);

void kigen_alert_free(struct kigen_alert *alert);

#endif
