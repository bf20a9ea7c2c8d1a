/* Prometheus text exposition format of SPEC §10, from a view of the inventory. */
#ifndef KIGEN_METRICS_H
#define KIGEN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "report.h"

/* Durable sinks counted in the metrics at most (mail, then one per webhook). */
#define KIGEN_METRICS_MAX_SINKS 32

/* Facts about the daemon that are not in the view. */
struct kigen_metrics_extra {
    double scan_duration_seconds; /* the last full scan */
    /* kigen_alert_deliveries_failed_total{sink=NAME}: given up per durable sink (copied) */
    struct {
        char sink[256]; /* "webhook:" and a name; longer ones are cut */
        uint64_t failed;
    } deliveries[KIGEN_METRICS_MAX_SINKS];
    size_t n_deliveries;
};

/* Adds a durable sink's count of deliveries given up to extra (beyond the maximum: ignored). */
void kigen_metrics_extra_add_sink(struct kigen_metrics_extra *extra, const char *sink,
                                  uint64_t failed);

/*
 * Renders the metrics of SPEC §10 into a malloc'd NUL-terminated buffer (*ret_text, *ret_len):
 * per record of the view the three dates and five kigen_cert_state series, labelled keystore
 * path entry subject issuer serial sha256 and the keystore's configured labels; the six
 * kigen_scan_errors kinds, always all present; kigen_scan_duration_seconds and
 * kigen_certificates; and for the view's probes (kigen_view_set_probes) kigen_probe_up,
 * kigen_probe_duration_seconds, kigen_probe_tls_not_after_seconds and kigen_probe_state. Label
 * values are escaped as the format requires. About 2.5 KB per certificate. Returns 0 or -ENOMEM.
 */
int kigen_metrics_render(const struct kigen_view *view, const struct kigen_metrics_extra *extra,
                         char **ret_text, size_t *ret_len);

/*
 * Writes text to path atomically on the thread pool: a temporary PATH.tmp.<pid>.XXXXXX in the
 * same directory, written, fsync'd, given mode 0644 whatever the umask, renamed over path,
 * then the directory fsync'd. Readers see the old file or the new one, never a part; the
 * temporary file is removed on failure. Takes ownership of text. done_cb (may be NULL) gets
 * 0 or -errno on the loop thread, never from within this call. Returns 0 or -errno (then
 * done_cb is not called and text is freed).
 */
int kigen_textfile_write(uv_loop_t *loop, const char *path, char *text, size_t len,
                         void (*done_cb)(int status, void *data), void *data);

#endif
