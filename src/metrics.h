/* Prometheus text exposition format of SPEC §10, from a view of the inventory. */
#ifndef KIGEN_METRICS_H
#define KIGEN_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "report.h"

/* Durable sinks counted in the metrics at most (mail, then one per webhook). */
#define KIGEN_METRICS_MAX_SINKS 32

/* Facts about the daemon that are not in the view, and what to render. */
struct kigen_metrics_extra {
    struct kigen_metrics options; /* metrics: of the configuration (copied); zeroed: lean */
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
 * Renders the metrics of SPEC §10 into a malloc'd NUL-terminated buffer (*ret_text, *ret_len).
 * Per record of the view, by default, two series: kigen_cert_not_after_seconds and
 * kigen_cert_renewal_opens_seconds, labelled keystore path entry subject_cn issuer_cn, holder
 * when known and the keystore's configured labels: labels a renewal leaves as they are.
 * extra->options adds the labels subject issuer serial sha256 (after issuer_cn),
 * kigen_cert_not_before_seconds and the five kigen_cert_state series. Then
 * kigen_certificates{state} for every state; the kigen_scan_errors kinds, always all present;
 * kigen_scan_duration_seconds; the durable sinks' kigen_alert_deliveries_failed_total; and for
 * the view's probes (kigen_view_set_probes) kigen_probe_up, kigen_probe_duration_seconds,
 * kigen_probe_tls_not_after_seconds, kigen_probe_tls_chain_not_after_seconds and
 * kigen_probe_state. Label values are escaped as the
 * format requires. extra may be NULL (the defaults). About 400 bytes per certificate by
 * default, 3.1 KB with every option (bench/metrics_size.sh). Returns 0 or -ENOMEM.
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
