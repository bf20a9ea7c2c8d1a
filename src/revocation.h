/*
 * Revocation (SPEC §13): whether a certificate whose rule says `revocation: true` still holds.
 *
 * A check is a run in three steps, so that nothing slow happens on the loop:
 *
 *   kigen_revocation_collect()  loop thread: which certificates, with copies of their DER and
 *                               of their issuer candidates' DER, and the settings;
 *   kigen_revocation_execute()  any one thread: the CRL of each allowed distribution point (or
 *                               the OCSP answer of each allowed responder), from the cache in
 *                               state_dir/revocation or fetched with libcurl, verified with
 *                               OpenSSL; an answer for every certificate;
 *   kigen_revocation_apply()    loop thread: the answers into the inventory, where the view
 *                               finds them (state `revoked`, the record's "revocation").
 *
 * Only http and https URLs whose host matches `revocation.hosts` are ever fetched; redirects
 * are followed only to such URLs. Never `revoked` without a verified answer: anything missing,
 * stale or not verified is `unknown` with the reason.
 */
#ifndef KIGEN_REVOCATION_H
#define KIGEN_REVOCATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "strmap.h"

struct kigen_config;
struct kigen_inventory;

enum kigen_rev_status {
    KIGEN_REV_GOOD,
    KIGEN_REV_REVOKED,
    KIGEN_REV_UNKNOWN,
};

enum kigen_rev_source {
    KIGEN_REV_SOURCE_NONE,
    KIGEN_REV_SOURCE_CRL,
    KIGEN_REV_SOURCE_OCSP,
};

/* A certificate's answer: SPEC §13's record "revocation". */
struct kigen_revocation_status {
    enum kigen_rev_status status;
    enum kigen_rev_source source;
    int64_t checked_at;
    int64_t revoked_at; /* KIGEN_NO_TIME unless revoked */
    int reason;         /* RFC 5280 CRLReason, or -1 when none is given */
    char error[200];    /* why it is unknown; "" otherwise */
};

/* Whether any rule (or the policy) says `revocation: true`. */
bool kigen_revocation_enabled(const struct kigen_config *config);

/* "good", "revoked", "unknown"; "crl", "ocsp" or NULL; "keyCompromise", ... or NULL. */
const char *kigen_rev_status_name(enum kigen_rev_status status);
const char *kigen_rev_source_name(enum kigen_rev_source source);
const char *kigen_crl_reason_name(int reason);

/* A URL that could not give a usable answer: one scan.error per URL and kind (SPEC §13). */
struct kigen_revocation_failure {
    char *url;
    const char *kind; /* "revocation_fetch", "revocation_too_large", ... (static) */
    char *message;
};

/*
 * What a run remembers between runs (loop-owned, lent to the run while it executes): when each
 * URL was last fetched, so that a failing one is not asked more often than `interval`.
 */
struct kigen_revocation_memory {
    struct kigen_strmap attempts; /* URL -> int64_t *, the time of the last fetch */
};

void kigen_revocation_memory_done(struct kigen_revocation_memory *memory);

struct kigen_revocation_run;

/*
 * Collects the certificates of inventory whose rule says `revocation: true` (declared ones
 * never), with their issuer candidates among all certificates read. cache_dir may be NULL (no
 * cache). Returns 0 with *ret_run (NULL when there is nothing to check) or -ENOMEM.
 */
int kigen_revocation_collect(const struct kigen_config *config,
                             const struct kigen_inventory *inventory, const char *cache_dir,
                             int64_t now, struct kigen_revocation_run **ret_run);

/* Does the work: cache, fetches, verification. memory may be NULL. Never fails as a whole. */
void kigen_revocation_execute(struct kigen_revocation_run *run,
                              struct kigen_revocation_memory *memory);

/*
 * Replaces the answers kept in inventory->revocations by the run's. Returns 0 or -ENOMEM
 * (the old answers then stay).
 */
int kigen_revocation_apply(struct kigen_inventory *inventory,
                           const struct kigen_revocation_run *run);

/* The run's URL failures (valid until the run is freed). */
const struct kigen_revocation_failure *
kigen_revocation_failures(const struct kigen_revocation_run *run, size_t *ret_n);

/* When a later run may have something new to fetch (an answer's next update, or a retry). */
int64_t kigen_revocation_next_due(const struct kigen_revocation_run *run);

/* Asks an executing run to stop soon (any thread): the certificates left get no answer. */
void kigen_revocation_cancel(struct kigen_revocation_run *run);

void kigen_revocation_run_free(struct kigen_revocation_run *run);

/*
 * The answer CRL bytes (DER or PEM) or OCSP response bytes (DER) give for cert, issued by
 * issuer, at now, verified as a run verifies them: true when they decide (good or revoked),
 * else false with the reason in *s. For the fuzz targets and the tests; the run uses the same
 * code.
 */
bool kigen_revocation_from_crl(const uint8_t *bytes, size_t len, X509 *cert, X509 *issuer,
                               int64_t now, struct kigen_revocation_status *s);
bool kigen_revocation_from_ocsp(const uint8_t *bytes, size_t len, X509 *cert, X509 *issuer,
                                int64_t now, struct kigen_revocation_status *s);

/* Frees the answers of a map of hex fingerprint -> struct kigen_revocation_status *. */
void kigen_revocation_map_clear(struct kigen_strmap *map);

#endif
