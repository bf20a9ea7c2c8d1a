/*
 * Delivery of alerts to the configured consumers (SPEC §7, §12): journald, syslog (RFC 5424),
 * an exec hook, mail and chat webhooks. Each sink has its own queue; a sink that fails or
 * blocks never stalls the loop or the other sinks. Loop thread only.
 *
 * Mail and the webhooks are durable (deliveries.h): an alert is done for them once it is
 * written to state_dir/deliveries/ (mail-<key>.json, webhook:<name>-<key>.json with bytes of
 * <name> outside [A-Za-z0-9_.:] as %XX), and from
 * there it is sent, retried with backoff (1 minute doubling to 1 hour, for 24 hours) and
 * delivered or given up on its own schedule; a restart resumes it. What is given up is
 * logged and counted per sink (kigen_sinks_stats()). A webhook's file holds the alert, never
 * its URL.
 *
 * An alert is copied once and shared by the sinks that deliver it. Each sink keeps at most
 * queue_max alerts waiting (see struct kigen_sink_limits); beyond that it drops its oldest
 * waiting alert, which counts as a failure of that alert, and logs one warning per burst.
 * A sink that cannot deliver logs one warning per failed alert, saying it carries on.
 */
#ifndef KIGEN_SINK_H
#define KIGEN_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "alert.h"
#include "config.h"
#include "deliveries.h"

struct kigen_sinks;

/*
 * Called once per delivered alert when every enabled sink is done with it. failures counts
 * the sinks that could not deliver it (they have logged why).
 */
typedef void (*kigen_sinks_done_cb)(void *data, unsigned failures);

/* The bounds every sink keeps; a zero field in kigen_sinks_set_limits() keeps the default. */
struct kigen_sink_limits {
    uint64_t exec_timeout_ms; /* a hook still running then is killed; default 30 000 */
    uint64_t retry_ms;        /* syslog retries an unreachable socket this long; default 30 000 */
    size_t queue_max;         /* alerts waiting per sink; default 10 000 */
    /*
     * The soft RLIMIT_NOFILE an exec hook starts with: the one the daemon was given, before
     * it raised its own for the status socket's clients. Default (0): the daemon's, as is.
     */
    uint64_t exec_nofile;
    /*
     * The socket whose absence means journald is not there (libsystemd then drops alerts
     * silently); default /run/systemd/journal/socket. Tests point it elsewhere.
     */
    const char *journal_socket;
    /*
     * Durable deliveries (mail, webhooks): the first retry after a failed attempt, doubling up to
     * retry_max_ms, for retry_for_ms from the first attempt; defaults 1 min, 1 h, 24 h
     * (SPEC §12). Tests lower them. At most max_pending wait per sink (default 10 000).
     * The durable queues read these where they live, so a later set_limits reaches them.
     */
    struct kigen_deliveries_limits durable;
};

/* At most this many exec hooks run at once; the others wait in the exec sink's queue. */
#define KIGEN_SINK_EXEC_MAX_RUNNING 4

/*
 * Sinks configured by config's alerts section (copied; mail also reads holders.admins,
 * timezone and state_dir). Returns 0 or -errno; *ret_sinks on success.
 */
int kigen_sinks_new(uv_loop_t *loop, const struct kigen_config *config,
                    struct kigen_sinks **ret_sinks);

/*
 * Replaces the limits (tests lower the timeouts). Applies to deliveries that start after the
 * call; a zero field keeps its default.
 */
void kigen_sinks_set_limits(struct kigen_sinks *sinks, const struct kigen_sink_limits *limits);

/*
 * Applies a new configuration (after a reload); queued alerts still go out. A sink whose
 * setting did not change keeps its queue and connection; one that changed or went away
 * finishes what it holds with its old setting, then closes. The mail sink stays while mail is
 * on, and a webhook's sink while a webhook of its name is configured: each takes the new
 * settings for its next attempts and keeps its queue (its state_dir stays the one it started
 * with). A webhook that goes away closes its queue; its pending files stay in state_dir and are
 * resumed when a webhook of the same name comes back. Returns 0 or -ENOMEM (then nothing changed).
 */
int kigen_sinks_configure(struct kigen_sinks *sinks, const struct kigen_config *config);

/* What a durable sink holds, for status and metrics. */
struct kigen_sink_stats {
    const char *name; /* "mail", "webhook:<name>" */
    size_t pending;   /* written to state_dir and not yet delivered or given up */
    uint64_t failed;  /* given up since the daemon started */
};

/*
 * The durable sinks that are on, at most max of them, into ret (names point into the sinks
 * and live until the next kigen_sinks_configure). Returns how many.
 */
size_t kigen_sinks_stats(const struct kigen_sinks *sinks, struct kigen_sink_stats *ret, size_t max);

/*
 * The daily digest to the mail sink (kigen_sink_mail_digest). Returns as it does, or
 * -ENOENT when mail is off.
 */
int kigen_sinks_mail_digest(struct kigen_sinks *sinks, const char *key,
                            const struct kigen_alert *carrier);

/*
 * Queues alert (copied) for every enabled sink. done_cb (may be NULL) runs on the loop thread
 * after the last sink finished with it, also when no sink is enabled. It always runs from
 * the loop in a later callback, never from within kigen_sinks_deliver(). Returns 0, -ENOMEM,
 * or -ESHUTDOWN after kigen_sinks_close(); on failure done_cb is not called.
 */
int kigen_sinks_deliver(struct kigen_sinks *sinks, const struct kigen_alert *alert,
                        kigen_sinks_done_cb done_cb, void *data);

/* Alerts whose done_cb has not run yet: queued, in flight, or about to be reported. */
size_t kigen_sinks_pending(const struct kigen_sinks *sinks);

/*
 * Stops the sinks: queued and in-flight alerts are dropped (their done_cb is not called),
 * running hooks are killed, and closed_cb runs once every handle is closed. Alerts already
 * delivered whose done_cb had not run yet get it now, before kigen_sinks_close() returns.
 * closed_cb never runs from within kigen_sinks_close().
 */
void kigen_sinks_close(struct kigen_sinks *sinks, void (*closed_cb)(void *data), void *data);

/* Frees the sinks once closed_cb has run (their handles live in them); NULL is a no-op. */
void kigen_sinks_free(struct kigen_sinks *sinks);

/*
 * The contract between the dispatcher (sink.c) and the sinks (sink_journald.c, sink_syslog.c,
 * sink_exec.c, sink_webhook.c); callers of the functions above need none of it.
 *
 * A sink embeds struct kigen_sink and is driven by the dispatcher, which owns the queue and
 * hands it at most max_in_flight alerts at a time, in queue order, through send(). The alert
 * stays valid until the sink reports it with kigen_sink_finish().
 */
struct kigen_sink;

struct kigen_sink_type {
    const char *name; /* "journald", "syslog", "exec", "mail", "webhook": for messages */
    unsigned max_in_flight;
    /*
     * Allocates a sink for target (the socket path or command; NULL for journald and mail) and
     * config (mail's settings). Touches no loop, so that free() undoes it at once. Returns 0
     * or -ENOMEM.
     */
    int (*create)(const char *target, const struct kigen_config *config,
                  struct kigen_sink **ret_sink);
    /*
     * Optional: takes the settings of a reloaded config in place. A type with it is never
     * replaced by a reload, only closed when it goes. Returns 0 or -ENOMEM (nothing changed).
     */
    int (*configure)(struct kigen_sink *sink, const struct kigen_config *config);
    /* Optional: what a durable sink holds (name is the sink's, set by the dispatcher). */
    void (*stats)(const struct kigen_sink *sink, struct kigen_sink_stats *ret);
    /* Initialises the sink's handles on loop; cannot fail. */
    void (*start)(struct kigen_sink *sink, uv_loop_t *loop);
    /*
     * Starts delivering alert. Returns 1 when it was delivered at once, 0 when it is under
     * way (kigen_sink_finish() follows from a later callback, never from within send()), or
     * a negative errno when it failed (the sink has logged why).
     */
    int (*send)(struct kigen_sink *sink, const struct kigen_alert *alert, void *token);
    /*
     * Stops: aborts what is under way (reporting each alert with kigen_sink_finish(), quietly,
     * then or later),
     * closes the handles, and calls kigen_sink_closed() once none is left open and no work
     * is in flight (from within close() when nothing was open).
     */
    void (*close)(struct kigen_sink *sink);
    /* Releases a sink that closed, or one that was never started. */
    void (*free)(struct kigen_sink *sink);
};

struct kigen_sink {
    const struct kigen_sink_type *type;
    const char *name;                       /* for messages; NULL: the type's name */
    const struct kigen_sink_limits *limits; /* the dispatcher's; read when a delivery starts */
    bool is_closing;                        /* close() was called: fail quietly */
    void *slot;                             /* the dispatcher's queue; sink.c only */
};

extern const struct kigen_sink_type kigen_sink_journald;
extern const struct kigen_sink_type kigen_sink_syslog;
extern const struct kigen_sink_type kigen_sink_exec;
extern const struct kigen_sink_type kigen_sink_webhook;
extern const struct kigen_sink_type kigen_sink_mail;

/*
 * The field that makes an alert the carrier of a daily digest (SPEC §12): its message is the
 * JSON array of the digest's items, [{"kind": enum kigen_digest_kind, "what", "where",
 * "holder" (optional), "not_after", "days_left"}], composed by mail.c at each attempt.
 */
#define KIGEN_SINK_MAIL_DIGEST "KIGEN_DIGEST"

/*
 * Queues a digest carrier (copied) on the mail sink under key ("digest-2026-12-07"): durable
 * like an alert, and not queued twice for one key within a day and a half. Returns 0 (also
 * when the key went already), -ESHUTDOWN or -ENOMEM.
 */
int kigen_sink_mail_digest(struct kigen_sink *sink, const char *key,
                           const struct kigen_alert *carrier);

/*
 * A webhook sink (sink_webhook.c) for w, whose url_secret must be set; its name is
 * "webhook:<name>" and its queue is in state_dir/deliveries. Its type has no create(): a
 * webhook's setting is more than one string. Returns 0, -EINVAL without url_secret, or
 * -ENOMEM.
 */
int kigen_sink_webhook_new(const struct kigen_webhook *w, const char *state_dir,
                           struct kigen_sink **ret_sink);

/* Whether sink is a webhook sink for the webhook called name. */
bool kigen_sink_webhook_is_named(const struct kigen_sink *sink, const char *name);

/* Whether sink, a webhook sink, was made for a webhook set as w is (URL included). */
bool kigen_sink_webhook_is_same(const struct kigen_sink *sink, const struct kigen_webhook *w);

/*
 * Takes w's settings (URL, format, proxy, ca_file, events; the name stays) in place, for the
 * attempts that start after the call: the sink keeps its queue. Returns 0, -EINVAL without
 * url_secret, or -ENOMEM (nothing changed).
 */
int kigen_sink_webhook_configure(struct kigen_sink *sink, const struct kigen_webhook *w);

/* Reports the end of the delivery send() returned 0 for; failed when it did not get through. */
void kigen_sink_finish(struct kigen_sink *sink, void *token, bool failed);

/* Reports that a closing sink has no handle open and nothing in flight. */
void kigen_sink_closed(struct kigen_sink *sink);

#endif
