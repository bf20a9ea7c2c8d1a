/*
 * Durable deliveries (SPEC §12 "Delivery is part of the alert promise"): the queue of a sink
 * whose deliveries are slow and may fail for hours (mail, webhooks). Each alert is written to
 * DIR/<sink>-<key>.json before the caller hears it is taken, attempted, retried with backoff
 * (retry_first_ms doubling to retry_max_ms, for retry_for_ms from the first attempt) and then
 * delivered or given up. A restart loads the files and carries on where it stopped.
 *
 * The key names an alert across restarts: the caller's (a digest's "digest-2026-12-01"), or
 * else the SHA-256 of the alert's content. Not the engine's id, which starts at 1 again in
 * each process. An alert whose key is pending, or was delivered or given up less than keep_ms
 * ago, is not queued again: the engine re-dispatches its outbox after a crash, and what a
 * sink already holds must not go twice. What was delivered or given up stays as a small
 * "done" file until then.
 *
 * In file names the sink's name keeps [A-Za-z0-9_.:] and has every other byte as %XX ('-'
 * too: the first '-' ends it), so "webhook:team" and "webhook:team-chat" never share a file;
 * a name longer than 120 such bytes is cut and ends in '~' and a hash of it. Each file also
 * names its sink, and a queue leaves other sinks' files alone. The file holds the alert and
 * its schedule only, nothing of the sink's setting (a webhook's URL is a secret).
 *
 * Files are written atomically on the thread pool (kigen_textfile_write) and removed with
 * uv_fs_unlink; a file that cannot be read back is renamed to .bad and logged, never fatal.
 * At most max_pending wait; beyond that the oldest not under way is given up. The scheduler
 * looks for the next due item linearly (10,000 items: tens of microseconds per event; a heap
 * would make it logarithmic). Loop thread only. Logs warnings itself (the sink, event and
 * sha256 prefix and the reason; never the alert's message or fields).
 */
#ifndef KIGEN_DELIVERIES_H
#define KIGEN_DELIVERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "alert.h"

#define KIGEN_DELIVERIES_KEY_MAX 64

struct kigen_deliveries;
struct kigen_delivery;

struct kigen_deliveries_limits {
    uint64_t retry_first_ms;
    uint64_t retry_max_ms;
    uint64_t retry_for_ms;
    size_t max_pending;
};

struct kigen_deliveries_ops {
    unsigned max_running; /* attempts under way at once */
    /*
     * Starts an attempt to deliver alert (key and created_ms, the wall-clock time it was
     * queued, make a retry say the same: a Message-ID, a Date). The sink reports the end with
     * kigen_deliveries_attempted(), never from within attempt(). Returns 0, or a negative
     * errno when it could not start (counted as a failed attempt).
     */
    int (*attempt)(void *data, struct kigen_delivery *d, const struct kigen_alert *alert,
                   const char *key, int64_t created_ms);
    /*
     * Stops an attempt under way (a stop); it still reports, failed, from within abort() or
     * later.
     */
    void (*abort)(void *data, struct kigen_delivery *d);
};

/*
 * A queue for the sink called name ("mail", "webhook:team-chat") in dir (created 0700 when
 * missing), loading what is there: pending files are resumed at their next attempt time.
 * ops and data are borrowed; limits is read when it is needed. Blocking (reads the
 * directory): at start only. Returns 0 and *ret_q, or -ENOMEM (a directory that cannot be
 * read is logged and the queue starts empty).
 */
int kigen_deliveries_new(uv_loop_t *loop, const char *dir, const char *name,
                         const struct kigen_deliveries_ops *ops, void *data,
                         const struct kigen_deliveries_limits *limits,
                         struct kigen_deliveries **ret_q);

/*
 * Queues alert (copied) under key (NULL: its content's hash) to be kept keep_ms after it is
 * done. done_cb(data, 0) runs from a later callback once the file is written (or could not
 * be: the delivery then goes on from memory, logged), or done_cb(data, -ECANCELED) when the
 * queue was closed meanwhile. Returns 0, -EEXIST when the key is known (a duplicate, not
 * queued), -ENOMEM or -ESHUTDOWN; done_cb is then not called.
 */
int kigen_deliveries_add(struct kigen_deliveries *q, const char *key,
                         const struct kigen_alert *alert, uint64_t keep_ms,
                         void (*done_cb)(void *data, int status), void *data);

/* Whether key is pending or was done less than its keep_ms ago. */
bool kigen_deliveries_knows(const struct kigen_deliveries *q, const char *key);

/*
 * The end of an attempt: delivered, or failed with reason (one line, no personal data; may
 * be NULL), then retried or given up.
 */
void kigen_deliveries_attempted(struct kigen_delivery *d, bool is_delivered, const char *reason);

/* Deliveries written and not yet delivered or given up. */
size_t kigen_deliveries_pending(const struct kigen_deliveries *q);

/* Deliveries given up since the queue was made. */
uint64_t kigen_deliveries_failed(const struct kigen_deliveries *q);

/*
 * Stops: no new attempt, attempts under way are aborted (ops->abort), and closed_cb runs from
 * a later callback once nothing is under way and every file write has landed. The files stay
 * for the next start. done_cb of adds whose file is not written yet gets -ECANCELED when the
 * write lands.
 */
void kigen_deliveries_close(struct kigen_deliveries *q, void (*closed_cb)(void *data), void *data);

/* Frees a queue once closed_cb has run; NULL is a no-op. */
void kigen_deliveries_free(struct kigen_deliveries *q);

/* The content key of alert: 32 lowercase hex digits of SHA-256 over event, message and fields. */
void kigen_deliveries_key(const struct kigen_alert *alert, char ret[33]);

#endif
