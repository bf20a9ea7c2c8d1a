/*
 * Reachability probes (SPEC §3 `probes`, §8): for each target, resolve its name, connect over
 * TCP (through an HTTP CONNECT proxy when configured) and, for `tls: true`, complete a TLS
 * handshake that verifies the chain and the host name and records the server's chain.
 * Everything runs on the libuv loop and nothing blocks once the prober is made: names are
 * resolved by uv_getaddrinfo (libuv runs lookups as "slow I/O" on at most half of its thread
 * pool, so they never starve the scan), sockets are libuv streams, and OpenSSL speaks over a
 * pair of memory BIOs fed from uv_read and drained with uv_write.
 *
 * Each probe has one deadline, the target's timeout, for the whole of it. A failure names
 * its kind (the `error` of the report and of probe.down alerts) and a one-line detail:
 *
 *   dns              the target's name did not resolve (or not within the deadline)
 *   connect_refused  the TCP connection was refused; also any other connect error
 *                    (network or host unreachable, ...), SPEC has no better kind for them:
 *                    the detail then gives the errno text
 *   timeout          the deadline passed while connecting, waiting for the proxy's answer
 *                    or in the TLS handshake; the detail says which
 *   proxy            the proxy could not be resolved or reached, refused the tunnel (the
 *                    detail holds its status line, "HTTP/1.1 403 Forbidden") or answered
 *                    something that is not HTTP
 *   tls_handshake    the TLS handshake failed (OpenSSL's reason, or the peer closed)
 *   tls_verify       the chain does not verify (X509_verify_cert_error_string's text)
 *   tls_hostname     the chain verifies but names another host
 *
 * Loop thread only, like every libuv call.
 */
#ifndef KIGEN_PROBE_H
#define KIGEN_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cert.h"
#include "config.h"
#include "maint.h"

/*
 * At most this many probes hold a socket at once; the others wait their turn, first come
 * first served. With the default 10 s timeout, 1,000 unreachable targets take four waves, well
 * within a 5 minute interval, and kigend stays far below the usual 1,024 descriptors.
 */
#define KIGEN_PROBE_MAX_INFLIGHT 256
/* At most this many probes start per loop iteration, so that a round never holds the loop. */
#define KIGEN_PROBE_START_BURST 32
/* The proxy's answer to CONNECT, status line and headers, is read up to this many bytes. */
#define KIGEN_PROBE_MAX_PROXY_ANSWER 8192
/* A TLS handshake that makes the server send more than this is abandoned (tls_handshake). */
#define KIGEN_PROBE_MAX_TLS_READ (256 * 1024)
/*
 * A target's chain in the inventory holds at most this many certificates (leaf,
 * intermediates, trust anchor and anything else the server sent); the rest are left out.
 * Real chains have three to five.
 */
#define KIGEN_PROBE_MAX_CHAIN 32
/* The first periodic probe of each target starts at random within min(interval, this). */
#define KIGEN_PROBE_JITTER_MS 10000
/* The proxy port when `https_proxy` names none, as curl assumes. */
#define KIGEN_PROBE_DEFAULT_PROXY_PORT 1080

enum kigen_probe_state {
    KIGEN_PROBE_UNKNOWN, /* no result yet, or failures not yet confirmed */
    KIGEN_PROBE_UP,
    KIGEN_PROBE_DOWN,
    KIGEN_PROBE_MAINTENANCE, /* failing while a maintenance window covers the target */
};

/* The last result and the state of one target, as the report, alerts and metrics read it. */
struct kigen_probe_status {
    const char *name; /* owned by the prober */
    const char *host;
    uint16_t port;
    bool tls;
    enum kigen_probe_state state;
    unsigned consecutive_failures;
    char error[32];     /* the failure kind of the last probe, "" when it succeeded */
    char detail[256];   /* one line about the failure, "" when it succeeded */
    double connect_ms;  /* TCP connect (direct) or tunnel set-up (proxy); -1: never got there */
    double duration_ms; /* the whole probe */
    int64_t last_probe; /* when the last probe ended (the prober's clock), 0 before the first */
    /*
     * The server's chain from the last handshake that got one, even when it failed
     * verification (an expired server certificate must reach the inventory): entry "0" the
     * leaf, then "1", ...: after a verification that succeeded, the verified chain up to its
     * trust anchor and then anything else the server sent; after one that failed, only what
     * the server sent, in its order (SPEC §8). tls_not_after is the leaf's not_after,
     * tls_chain_not_after the earliest of the chain. Kept across later failures that got none;
     * empty and 0 until then.
     */
    int64_t tls_not_after;
    int64_t tls_chain_not_after;
    struct kigen_certs server;
    /*
     * Whether the last result calls for an alert: probe.down when state is DOWN, probe.up
     * when UP. A probe.down is announced once (is_down_announced) and answered by exactly one
     * probe.up, even when a maintenance window comes between them.
     */
    bool changed;
    bool is_down_announced;
};

/* "unknown", "up", "down", "maintenance". */
const char *kigen_probe_state_name(enum kigen_probe_state state);

/*
 * The state machine of SPEC §8 after one result of status's target (status->name), which
 * ended at now. A success resets consecutive_failures and makes the state UP. A failure
 * counts; while a window of maint (may be NULL) covers the target at now the state is
 * MAINTENANCE and nothing is announced; otherwise failures_before_alert consecutive failures
 * make it DOWN, fewer leave UP as it is and anything else UNKNOWN. Sets status->changed as
 * described above. Pure: no clock, no I/O.
 */
void kigen_probe_state_next(struct kigen_probe_status *status, bool is_success,
                            const struct kigen_maint_set *maint, int64_t now,
                            unsigned failures_before_alert);

struct kigen_prober;

/* Called on the loop thread; the prober may be closed from inside (not freed). */
typedef void (*kigen_prober_done_cb)(struct kigen_prober *prober, void *data);
typedef void (*kigen_prober_result_cb)(struct kigen_prober *prober, size_t index, void *data);
typedef void (*kigen_prober_closed_cb)(struct kigen_prober *prober, void *data);

/*
 * Makes a prober for config->probes on loop, copying what it needs (config may go at once).
 * `proxy: env` reads https_proxy (or HTTPS_PROXY) and no_proxy (or NO_PROXY) now; a proxy
 * setting that cannot be used (an https:// proxy, credentials in the URL) makes every probe
 * through it fail as `proxy` with the reason. Blocking: loads the system trust store and
 * each distinct ca_file once, as kigen_maint_set_new reads zoneinfo; a ca_file that cannot be
 * loaded makes that target's probes fail as `tls_verify` naming the file. Starts nothing.
 * Returns 0 and *ret_prober (free with kigen_prober_free), or -ENOMEM.
 */
int kigen_prober_new(uv_loop_t *loop, const struct kigen_config *config,
                     struct kigen_prober **ret_prober);

/*
 * Probes every target once, at most KIGEN_PROBE_MAX_INFLIGHT at a time, and calls done_cb
 * once all have a result (at once, from a later loop iteration, with no target). Each result
 * is final, as for `kigend --once`: the state machine runs with failures_before_alert = 1,
 * so one failure is DOWN (or MAINTENANCE). Returns 0, or -EBUSY while a round or the periodic
 * schedule runs, or after close; on error done_cb is never called.
 */
int kigen_prober_run_once(struct kigen_prober *prober, kigen_prober_done_cb done_cb, void *data);

/*
 * Probes each target every its interval, the first time at a random moment within
 * min(interval, KIGEN_PROBE_JITTER_MS) so that many targets do not fire at once. A target
 * whose previous probe has not finished skips its turn. result_cb(prober, index, data) runs
 * after each result has been applied to kigen_prober_status()[index]. Returns 0, or -EBUSY
 * if already started, running a round or closed.
 */
int kigen_prober_start(struct kigen_prober *prober, kigen_prober_result_cb result_cb, void *data);

/*
 * Stops everything: no callback but closed_cb runs afterwards. Probes in flight are
 * abandoned without a result; the statuses stay readable. closed_cb(prober, data) runs once
 * every handle is closed, which may wait for a name lookup already running in the thread
 * pool; when nothing is open it runs before kigen_prober_close returns. closed_cb may be
 * NULL. A second call does nothing.
 */
void kigen_prober_close(struct kigen_prober *prober, kigen_prober_closed_cb closed_cb, void *data);

/* Frees a prober that was closed (closed_cb ran) or never ran a probe; NULL is a no-op. */
void kigen_prober_free(struct kigen_prober *prober);

/*
 * The status of each target, in configuration order (NULL with no target); *ret_n gets the
 * count. Valid until the prober is freed; updated only on the loop thread, before the
 * result callback.
 */
const struct kigen_probe_status *kigen_prober_status(const struct kigen_prober *prober,
                                                     size_t *ret_n);

/*
 * Takes over from old (a prober of the previous configuration, e.g. on reload) the state,
 * failure count, last result and server chain of each target that kept its name,
 * host, port and tls, so that a reload neither resets nor re-announces a down target. The
 * certificates move: old's records of those targets are emptied. Call before starting.
 */
void kigen_prober_adopt(struct kigen_prober *prober, struct kigen_prober *old);

/*
 * Tells the prober that a probe.down was announced for target index before (by an earlier
 * process; the alert state remembers it): the target starts DOWN with its probe.down
 * announced, so that failures do not announce it again and the first success announces
 * probe.up. Call before starting. Returns 0, or -EINVAL for a bad index.
 */
int kigen_prober_restore_down(struct kigen_prober *prober, size_t index);

/*
 * Makes failures while a window of maint covers a target count as MAINTENANCE. maint is
 * borrowed and must outlive the prober or be replaced; NULL (the default) means no window.
 */
void kigen_prober_set_maintenance(struct kigen_prober *prober, const struct kigen_maint_set *maint);

/*
 * The clock for last_probe and the maintenance check: now(data) returns Unix seconds (UTC).
 * NULL restores the default, the system's real-time clock. For tests and for `--now`.
 */
void kigen_prober_set_clock(struct kigen_prober *prober, int64_t (*now)(void *data), void *data);

/*
 * Sets one target's deadline in milliseconds, below the configuration's one-second grain
 * (tests). Returns 0, or -EINVAL for a bad index or 0 ms.
 */
int kigen_prober_set_timeout_ms(struct kigen_prober *prober, size_t index, uint64_t timeout_ms);

#endif
