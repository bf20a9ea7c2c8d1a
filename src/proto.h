/*
 * The status socket's protocol (SPEC §9): one JSON request line in, one JSON answer object
 * out. No I/O: control.c carries the bytes, this file decides what they say. It only reads
 * the inventory, the configuration and the engine's memory of what was sent. Loop thread.
 *
 * Requests and answers (compact JSON on one line; only metrics may hold UTF-8 as is):
 *
 *   {"cmd":"status"}
 *       {"ok":true,"generated_at":T,"summary":{SPEC §6 summary},"exit_status":0|1|2,
 *        "evaluated_at":T,"keystores":N,"probe_targets":N,"scanning":B,"last_scan":T|null,
 *        "scan_seconds":S,"scans":N,"files_read":N,"files_unchanged":N,
 *        "deliveries":{"mail":{"pending":N,"failed":N}}}  (durable sinks that are on)
 *   {"cmd":"list","state":"renewal_open","within":"30d","keystore":"naccs"}  (all optional)
 *       the SPEC §6 document itself, on one line. It has no "ok" member: SPEC §6 says the
 *       socket's list answer is the same document as kigend --once prints, and a script
 *       tells it from an error by the absence of "ok":false.
 *   {"cmd":"show","sha256":"<64 hex>"}
 *       {"ok":true,"sha256","subject","issuer","serial","not_before","not_after",
 *        "renewal_opens","days_left","state","locations":[{"keystore","path","format",
 *        "entry","labels"}],"alerts":[{"event":"cert.expired","sent":T}]}
 *   {"cmd":"probes"}
 *       {"ok":true,"probes":[{SPEC §6 probe entry and "tls","consecutive_failures",
 *        "duration_ms","last_probe":T|null,"server":{"sha256","subject","issuer",
 *        "not_after"}|null,"chain":[{"entry","sha256","subject","issuer","not_after"}]}]}
 *       (server: the leaf; chain: every certificate of the probe:<name> location, SPEC §8)
 *   {"cmd":"rescan"} {"cmd":"reload"} {"ok":true}; privileged peers only
 *   {"cmd":"metrics"}                {"ok":true,"metrics":"<Prometheus text>"}
 *
 * list and metrics can be long to render (41 MB and 250 MB of text for 100,000 certificates):
 * given a loop and a control server, they are rendered on the thread pool from a snapshot
 * (snapshot.h) and answered later (kigen_control_defer), so that the loop answers status
 * meanwhile. The snapshot owns its copies: the inventory and configuration may change or go.
 *
 * Any failure: {"ok":false,"error":"reason"}. No answer ever holds a password: the inventory
 * holds none, and the configuration's password sources are never read here.
 */
#ifndef KIGEN_PROTO_H
#define KIGEN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "control.h"
#include "engine.h"
#include "inventory.h"
#include "probe.h"
#include "report.h"
#include "sink.h"
#include "slicer.h"

/*
 * The last status answer and what it was computed from: while none of that changes (a
 * hundred clients asking within one loop iteration, or within one second of a quiet
 * daemon), the answer is copied instead of built. Zeroed to start; freed by
 * kigen_proto_cache_done(). Loop thread, like everything here.
 */
struct kigen_proto_cache {
    unsigned char key[256];
    size_t key_len;
    char *status;
    size_t status_len;
};

void kigen_proto_cache_done(struct kigen_proto_cache *cache);

/*
 * What a request is answered from. The daemon fills one on the stack for each request (it is
 * cheap), so that the pointers are never stale after a reload.
 */
struct kigen_proto_ctx {
    const struct kigen_config *config;
    const struct kigen_inventory *inventory;
    const struct kigen_engine *engine; /* NULL: show has no alert history */
    /*
     * Counts of the daemon's last evaluation (a view whose records may be NULL), or NULL.
     * When set, status answers from it in O(1); when NULL, status builds a view at now, which
     * sorts the inventory (O(n log n), milliseconds for 10,000 certificates).
     */
    const struct kigen_view *last_view;
    int64_t now; /* evaluation time of list, show and metrics; generated_at */
    /* The scanner's facts for status. */
    uint64_t scans;
    uint64_t files_read;
    uint64_t files_unchanged;
    int64_t last_scan_end; /* Unix seconds; 0 before the first scan ends */
    double last_scan_seconds;
    bool is_scanning;
    /*
     * Actions of rescan and reload, called on the loop thread from kigen_proto_answer() for a
     * privileged peer only. They return 0 once the action is started (rescan) or done
     * (reload), or a negative errno with a one-line reason in errbuf. NULL: not available.
     */
    int (*rescan)(void *data, char *errbuf, size_t errlen);
    int (*reload)(void *data, char *errbuf, size_t errlen);
    void *data;
    /* The probe targets' statuses (kigen_prober_status), or NULL with none. */
    const struct kigen_probe_status *probes;
    size_t n_probes;
    struct kigen_proto_cache *cache; /* NULL: every status answer is built */
    /* The durable sinks' counts (kigen_sinks_stats), for status and metrics; may be NULL. */
    const struct kigen_sink_stats *deliveries;
    size_t n_deliveries;
    /*
     * All three set: list and metrics are copied in slices by slicer (slicer.h: it reads the
     * inventory as it is at each slice, not this ctx's), rendered on loop's thread pool and
     * answered through control's kigen_control_defer() (a "busy" answer when it refuses).
     * Any NULL: built and rendered on the calling thread.
     */
    uv_loop_t *loop;
    struct kigen_control *control;
    struct kigen_slicer *slicer;
};

/*
 * Answers one request line (len bytes, no newline; it need not be NUL-terminated) for a peer
 * that is_privileged (uid 0 or the daemon's own uid). On success returns 0 and *ret_answer
 * holds a malloc'd NUL-terminated JSON object of *ret_len bytes with no newline; a bad
 * request is answered with {"ok":false,...} and still returns 0. Returns -ENOMEM when the
 * answer cannot be built (nothing is written then). Returns KIGEN_CONTROL_DEFERRED when the
 * answer was deferred (ctx's loop and control set: see there). Loop thread: the answer is
 * computed from the in-memory inventory, or a snapshot of it.
 */
int kigen_proto_answer(const struct kigen_proto_ctx *ctx, const char *line, size_t len,
                       bool is_privileged, char **ret_answer, size_t *ret_len);

#endif
