/*
 * The report of SPEC §6: a sorted view of the inventory at one instant, printed as the JSON
 * document or a table for people. Reads the inventory, never writes it. Loop thread.
 */
#ifndef KIGEN_REPORT_H
#define KIGEN_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "inventory.h"
#include "policy.h"

struct json_t;             /* <jansson.h> */
struct kigen_probe_status; /* "probe.h" */

struct kigen_record {
    const struct kigen_file *file;
    const struct kigen_cert *cert;
    const struct kigen_keystore *keystore; /* NULL if no longer configured */
    struct kigen_policy policy;            /* the effective policy (pointers into config) */
    enum kigen_state state;
    int64_t renewal_opens;
    /*
     * The holder (SPEC §12): the register row's holder and e-mail (may be NULL), or the
     * certificate's own e-mail address as both; NULL when none is known. Borrowed from the
     * inventory's register or the certificate.
     */
    const char *holder;
    const char *holder_email;
    const char *holder_language; /* the register row's "en" or "ja", or NULL */
    /*
     * SPEC §13: wants_revocation when the rule says `revocation: true` (the record then has a
     * "revocation", null until answered; without it the record is §6's as before); the last
     * answer or NULL.
     */
    bool wants_revocation;
    const struct kigen_revocation_status *revocation;
};

/* Which records a view keeps; zeroed (with state = -1) keeps all. */
struct kigen_view_filter {
    int state;            /* an enum kigen_state, or -1 for any */
    int64_t within;       /* keep not_after <= now + within; -1 for any */
    const char *keystore; /* exact name, or NULL */
    const char *holder;   /* the holder's name or e-mail address, exactly; or NULL */
    /*
     * Skip the report order and the count of unique fingerprints (the alert engine groups by
     * itself; kigen_view_sort gives both later, on the thread pool).
     */
    bool is_unsorted;
};

/* A CRL file's CRL (SPEC §13): fresh, or stale once its next_update has passed. */
struct kigen_revocation_status;

struct kigen_crl_record {
    const struct kigen_file *file;
    const struct kigen_crl *crl;
    bool is_stale;
};

struct kigen_view {
    int64_t now;
    struct kigen_record *records; /* sorted by not_after, path, entry */
    size_t n_records;
    const struct kigen_file **errors; /* sorted by path */
    size_t n_errors;
    size_t counts[KIGEN_STATE_COUNT];
    size_t unique;      /* distinct fingerprints among records */
    bool revocation_on; /* a rule says `revocation: true`: the summary counts "revoked" */
    struct kigen_crl_record *crls; /* sorted by next_update (none last), then path */
    size_t n_crls;
    size_t stale_crls;
    /* The probe targets' statuses (borrowed; see kigen_view_set_probes) and how many are down. */
    const struct kigen_probe_status *probes;
    size_t n_probes;
    size_t probes_down;
};

/*
 * Builds the view of inventory at now. filter may be NULL. Returns 0 or -ENOMEM; free with
 * kigen_view_done(). The view borrows from inventory and config: use it before they change.
 */
int kigen_view_build(const struct kigen_config *config, const struct kigen_inventory *inventory,
                     int64_t now, const struct kigen_view_filter *filter,
                     struct kigen_view *ret_view);
void kigen_view_done(struct kigen_view *view);

/*
 * The step of kigen_view_build() for one file f of inventory: appends the records of its
 * certificates that filter keeps (their states at view->now), its error and its CRLs to
 * view, unsorted, and counts them. view's arrays must have room for f->certs.n more records,
 * one more error and its CRLs.
 */
void kigen_view_add_file(struct kigen_view *view, const struct kigen_config *config,
                         const struct kigen_inventory *inventory, const struct kigen_file *f,
                         const struct kigen_view_filter *filter);

/*
 * Sorts the records of a view built with is_unsorted into the report order, and its errors
 * and CRLs likewise, and counts its unique fingerprints: the same order and count
 * kigen_view_build() gives, since the orders are total. Touches only the view, so a
 * snapshot's view (snapshot.h) may be sorted on the thread pool.
 */
void kigen_view_sort(struct kigen_view *view);

/*
 * Makes the view show the n statuses of the probe targets (borrowed: they must outlive the
 * view's use) and count those down. A view has no probes until this is called.
 */
void kigen_view_set_probes(struct kigen_view *view, const struct kigen_probe_status *probes,
                           size_t n);

/*
 * SPEC §12: the holder of certificate c at location f, from the inventory's register (its
 * row's holder and e-mail, which may be NULL), else the certificate's own address as both;
 * both NULL when none is known; and the row's language ("en", "ja" or NULL) into
 * *ret_language unless ret_language is NULL. Borrowed from the inventory.
 */
void kigen_record_holder(const struct kigen_inventory *inventory, const struct kigen_file *f,
                         const struct kigen_cert *c, const char **ret_name, const char **ret_email,
                         const char **ret_language);

/*
 * SPEC §6 last_seen of a record: now for a live location, or when the location was last read
 * and held the certificate, for one kept as last seen (its keystore root is unavailable).
 */
int64_t kigen_record_last_seen(const struct kigen_record *rec, int64_t now);

/* The exit status of SPEC §6 over the view: 0, 1 or 2. */
int kigen_view_exit_status(const struct kigen_view *view);

/* Writes the SPEC §6 JSON document, one record a line. Returns 0 or -EIO. */
int kigen_report_json(FILE *out, const struct kigen_view *view);

/*
 * The same document on one line with no trailing newline: the socket's list answer (SPEC §9).
 * On success *ret_text is a malloc'd NUL-terminated text of *ret_len bytes, sized to fit.
 * Returns 0 or -ENOMEM.
 */
int kigen_report_json_text(const struct kigen_view *view, char **ret_text, size_t *ret_len);

/*
 * The pieces the socket's other answers share with the document, as new jansson references
 * (NULL on ENOMEM): the "summary" object of the view, and a JSON string for s in which bytes
 * that are not valid UTF-8 (file names need not be) read '?'.
 */
struct json_t *kigen_report_summary_json(const struct kigen_view *view);
/* SPEC §6 "holder": null when name is NULL, else {"name": …, "email": … or null}. */
struct json_t *kigen_report_holder_json(const char *name, const char *email);
struct json_t *kigen_report_text_json(const char *s);
/* SPEC §13 "revocation" of a record: null when not checked (rs NULL). */
struct json_t *kigen_report_revocation_json(const struct kigen_revocation_status *rs);

/*
 * One entry of the document's "probes": name, host, port, state, connect_ms (null before a
 * connection), tls_not_after (the leaf's; null without a server certificate),
 * tls_chain_not_after (the earliest of the recorded chain; null likewise), error (the failure
 * kind, null after a success) and detail (the failure in words, null after a success).
 */
struct json_t *kigen_report_probe_json(const struct kigen_probe_status *status);

/*
 * Writes a table for people, headings and sentences in lang (kigend --once follows the
 * environment, kigen_language_from_env), dates in the process's local zone. Returns 0 or -EIO.
 */
int kigen_report_table(FILE *out, const struct kigen_view *view, bool colour,
                       enum kigen_language lang);

#endif
