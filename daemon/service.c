/*
 * The resident daemon. One libuv loop owns everything:
 *
 *   scan      at start, every scan_interval, and soon after a watched directory changes
 *   evaluate  after each scan, at the next state change or reminder (one timer), and when
 *             the wall clock jumps
 *   save      the engine's state (with its outbox) before the alerts go to the sinks
 *   deliver   to the sinks; an alert leaves the outbox when they are done with it
 *
 * Signals: SIGHUP reloads (a bad configuration is rejected and the old one keeps running),
 * SIGTERM and SIGINT stop. sd_notify: READY=1 after the first scan, STATUS=, WATCHDOG=1,
 * RELOADING=1, STOPPING=1.
 */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#include "control.h"
#include "engine.h"
#include "err.h"
#include "evaluator.h"
#include "i18n.h"
#include "inventory.h"
#include "log.h"
#include "mail.h"
#include "maint.h"
#include "metrics.h"
#include "metrics_http.h"
#include "probe.h"
#include "probe_sync.h"
#include "proto.h"
#include "register_records.h"
#include "report.h"
#include "revocation.h"
#include "scan.h"
#include "secret.h"
#include "sink.h"
#include "slicer.h"
#include "snapshot.h"
#include "timeutil.h"
#include "tz.h"
#include "watch.h"
#include "webhook.h"

#define DEBOUNCE_MS       250
#define DEBOUNCE_MAX_MS   750 /* a stream of changes still shows within a second */
#define SAVE_RETRY_MS     30000
#define SAVE_DELAY_MS     1000
#define MAX_WAKEUP_MS     (7 * 86400 * 1000ull)
#define STOP_GRACE_MS     5000   /* how long a stop waits for alerts in flight */
#define PROBE_EVAL_MS     2000   /* probe results are evaluated together, at most this late */
#define EVAL_SLICE_MS     5      /* between the slices of an evaluation with many alerts due */
#define METRICS_MIN_MS    10000  /* metrics are rendered at most this often, */
#define METRICS_COST      10     /* or this many times as long as the last render took if less */
#define REGISTER_FIRST_MS 5000   /* the first scan waits this long for the register, at most */
#define ROOT_RETRY_MS     2000   /* an unavailable keystore root is looked at again after this, */
#define ROOT_RETRY_MAX_MS 300000 /* doubling up to this */

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct service {
    uv_loop_t loop;
    const char *config_path;
    struct kigen_config *config;
    struct kigen_config *next_config; /* accepted by a reload, waiting for the scan to end */
    struct kigen_metrics_http *next_metrics_http; /* next_config's endpoint, already bound */
    struct kigen_inventory *inventory;
    struct kigen_scanner *scanner;
    struct kigen_engine engine;
    struct kigen_sinks *sinks;
    struct kigen_watch watch;
    struct kigen_prober *prober; /* NULL when no target is configured */
    uv_signal_t sighup;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t scan_timer;
    uv_timer_t wakeup_timer;
    uv_timer_t debounce_timer;
    uv_timer_t watchdog_timer;
    uv_timer_t save_timer;
    uv_timer_t stop_timer;
    uv_timer_t probe_eval_timer;
    uv_timer_t metrics_timer;
    uv_timer_t digest_timer; /* the next alerts.mail.digest_at */
    uv_timer_t root_timer;   /* looks again at unavailable keystore roots, with backoff */
    uint64_t root_retry_ms;  /* the next delay of root_timer; 0 while every root is there */
    uv_poll_t mounts_poll;   /* /proc/self/mountinfo: a mount or unmount anywhere */
    int mounts_fd;
    struct kigen_slicer *slicer;       /* snapshots for renders, copied a slice at a time */
    struct kigen_evaluator *evaluator; /* evaluations, a slice at a time */
    uint64_t config_serial;            /* one more at every configuration taken (slicer.h) */
    uint64_t metrics_published_ms;     /* uv_now() of the last metrics render, 0: never */
    uint64_t metrics_cost_ms;          /* how long the last render took, snapshot included */
    bool is_rendering_metrics;         /* publish_metrics' snapshot is being built or rendered */
    bool is_metrics_stale;             /* an evaluation came while it ran: render again after */
    char status_sent[512];             /* the last STATUS= line sent to the service manager */
    uv_poll_t clock_poll;
    int clock_fd;
    char *state_path;
    uint64_t first_change_ms;
    uint64_t scan_started_ms;
    uint64_t stop_deadline_ms;
    struct kigen_view last;         /* counts of the last evaluation (records not kept) */
    struct kigen_maint_set *maint;  /* the maintenance windows of the configuration, or NULL */
    struct kigen_tz *display_tz;    /* the configured timezone, for messages */
    struct kigen_strmap secret_env; /* env: password sources, taken out of the environment */
    int64_t clock_offset;           /* --now: seconds added to the wall clock (testing) */
    double scan_seconds;
    struct kigen_control *control;           /* the status socket; NULL without one */
    struct kigen_proto_cache status_cache;   /* status answers, reused while unchanged */
    struct kigen_metrics_http *metrics_http; /* GET /metrics; NULL when off */
    char *metrics_listen;                    /* where metrics_http listens */
    int64_t last_scan_end;                   /* when the last scan ended, on the daemon's clock */
    bool ready;        /* the first evaluation after the first scan is done: READY=1 went */
    bool is_ready_due; /* the first scan is done: the evaluation it started makes us ready */
    bool stopping;
    bool rescan_wanted;
    bool full_wanted;            /* the changes need a full scan */
    bool scan_is_full;           /* the running (or last) scan walked every keystore */
    struct kigen_strmap changed; /* paths reported by the watches since the last scan */
    bool saving;
    bool save_again;
    uint64_t saving_below;      /* the save in flight holds the alerts with smaller ids */
    uint64_t deliverable_below; /* alerts with smaller ids are on disk and may go */
    bool save_failing;
    int watch_error_reported;
    int status;
    /* The holders' register (SPEC §12), read on the thread pool. */
    bool register_reading;
    bool register_wanted;      /* read it again once the read in flight is done */
    bool register_started;     /* the first read is done: scans may start */
    bool register_fresh;       /* just read: the scan it starts need not read it again */
    uv_timer_t register_timer; /* the first read taking too long: scan without it meanwhile */
    /* Revocation (SPEC §13), checked on the thread pool after scans and when answers fall due. */
    struct kigen_revocation_run *revocation_run; /* the check in flight, or NULL */
    bool revocation_wanted;                      /* check again once it is done */
    /*
     * What the last check collected from: inventory->changes and the configuration's serial
     * (has_revocation_check once there was one). A scan that changed nothing needs no new
     * check: answers that fall due come through revocation_timer.
     */
    bool has_revocation_check;
    uint64_t revocation_changes;
    uint64_t revocation_serial;
    uv_timer_t revocation_timer;
    struct kigen_revocation_memory revocation_memory; /* lent to the check in flight */
};

struct delivery {
    struct service *svc;
    uint64_t id;
};

static void start_scan(struct service *svc);
static void start_register_read(struct service *svc);
static void schedule_digest(struct service *svc);
static void digest_timer_cb(uv_timer_t *timer);
static void request_full_scan(struct service *svc);
static void watch_roots(struct service *svc);
static void start_prober(struct service *svc);
static void evaluate(struct service *svc);
static void start_changed_scan(struct service *svc);
static void save_state(struct service *svc);
static void stop(struct service *svc);

/* The daemon's clock: the wall clock, moved by --now. */
static int64_t now_of(const struct service *svc)
{
    return (int64_t)time(NULL) + svc->clock_offset;
}

static const struct kigen_probe_status *probes_of(const struct service *svc, size_t *ret_n)
{
    *ret_n = 0;
    return svc->prober ? kigen_prober_status(svc->prober, ret_n) : NULL;
}

static int64_t evaluator_clock_cb(void *data)
{
    return now_of(data);
}

/* What the slicer copies from, as it is at each slice. */
static void slicer_source_cb(void *data, struct kigen_slicer_source *src)
{
    const struct service *svc = data;

    src->config = svc->config;
    src->config_serial = svc->config_serial;
    src->inventory = svc->inventory;
    src->probes = probes_of(svc, &src->n_probes);
}

/* ---- status ---- */

/* STATUS= from the last evaluation, with the scan counters the benchmarks read. */
static void notify_status(struct service *svc)
{
    const struct kigen_inventory *inv = svc->inventory;
    struct kigen_view probes = { 0 };
    const struct kigen_probe_status *v;
    char text[sizeof(svc->status_sent)];
    size_t n;

    v = probes_of(svc, &n);
    kigen_view_set_probes(&probes, v, n);
    snprintf(text, sizeof(text),
             "STATUS=Watching %zu certificates (%zu unique) in %zu keystores: %zu expired, "
             "%zu critical, %zu renewal open; %zu unreadable files; %zu of %zu probes down; "
             "last scan %.2f s; files read %llu, unchanged %llu, scans %llu",
             svc->last.n_records, svc->last.unique, svc->config->n_keystores,
             svc->last.counts[KIGEN_STATE_EXPIRED], svc->last.counts[KIGEN_STATE_CRITICAL],
             svc->last.counts[KIGEN_STATE_RENEWAL_OPEN], svc->last.n_errors, probes.probes_down, n,
             svc->scan_seconds, (unsigned long long)inv->files_read,
             (unsigned long long)inv->files_unchanged, (unsigned long long)inv->scans);
    if (strcmp(text, svc->status_sent) == 0)
        return; /* evaluations come often; the manager hears of changes */
    memcpy(svc->status_sent, text, sizeof(text));
    sd_notify(0, text);
}

/* ---- delivery ---- */

static void save_timer_cb(uv_timer_t *timer)
{
    save_state(container_of(timer, struct service, save_timer));
}

static void delivered_cb(void *data, unsigned failures)
{
    struct delivery *d = data;
    struct service *svc = d->svc;

    kigen_engine_delivered(&svc->engine, d->id);
    free(d);
    if (!svc->stopping && !uv_is_active((uv_handle_t *)&svc->save_timer))
        uv_timer_start(&svc->save_timer, save_timer_cb, SAVE_DELAY_MS, 0);
}

static void dispatch(struct service *svc)
{
    for (size_t i = 0; i < svc->engine.n_outbox; i++) {
        struct kigen_outbox_item *item = &svc->engine.outbox[i];
        struct delivery *d;

        /* Save before deliver: an alert goes out once a state file that holds it is written. */
        if (item->dispatched || item->id >= svc->deliverable_below)
            continue;
        d = malloc(sizeof(*d));
        if (!d)
            return; /* stays in the outbox; the next dispatch retries */
        d->svc = svc;
        d->id = item->id;
        if (kigen_sinks_deliver(svc->sinks, item->alert, delivered_cb, d) < 0) {
            free(d);
            return;
        }
        item->dispatched = true;
    }
}

/* ---- state ---- */

static void save_done_cb(int status, void *data)
{
    struct service *svc = data;

    svc->saving = false;
    /* Written: what the save held may go. Failed: everything goes, a full disk loses nothing. */
    svc->deliverable_below = status < 0 ? svc->engine.next_id : svc->saving_below;
    if (status < 0) {
        if (!svc->save_failing)
            kigen_log_errno(KIGEN_LOG_ERR, status,
                            "Cannot write the alert state '%s', delivering anyway and retrying "
                            "every %d s",
                            svc->state_path, SAVE_RETRY_MS / 1000);
        svc->save_failing = true;
        svc->engine.dirty = true;
        if (!svc->stopping)
            uv_timer_start(&svc->save_timer, save_timer_cb, SAVE_RETRY_MS, 0);
    } else if (svc->save_failing) {
        kigen_log_notice("Alert state '%s' written again", svc->state_path);
        svc->save_failing = false;
    }
    /* After a burst of alerts, give the memory of their texts back to the system. */
    if (svc->engine.n_outbox == 0)
        malloc_trim(0);
    /* Nothing is lost for a full disk: the alerts go out whether or not the state was saved. */
    if (!svc->stopping)
        dispatch(svc);
    if (svc->save_again) {
        svc->save_again = false;
        save_state(svc);
    } else if (svc->stopping) {
        stop(svc);
    }
}

static void save_state(struct service *svc)
{
    char *text = NULL;
    size_t len = 0;
    int r;

    if (svc->saving) {
        svc->save_again = true;
        return;
    }
    if (!svc->engine.dirty) {
        svc->deliverable_below = svc->engine.next_id; /* all of it is on disk */
        if (!svc->stopping)
            dispatch(svc);
        return;
    }
    r = kigen_engine_save(&svc->engine, &text, &len);
    if (r == 0) {
        svc->engine.dirty = false;
        svc->saving = true;
        svc->saving_below = svc->engine.next_id;
        r = kigen_textfile_write(&svc->loop, svc->state_path, text, len, save_done_cb, svc);
        if (r < 0)
            svc->saving = false;
    }
    if (r < 0)
        save_done_cb(r, svc);
}

static void load_state(struct service *svc)
{
    char err[256] = "", *buf = NULL, *bad = NULL;
    FILE *f = fopen(svc->state_path, "re");
    size_t len = 0, n;
    int r;

    if (!f) {
        if (errno != ENOENT)
            kigen_log_errno(KIGEN_LOG_WARNING, -errno,
                            "Cannot read the alert state '%s', starting afresh", svc->state_path);
        return;
    }
    for (;;) {
        char *p = realloc(buf, len + 65536);

        if (!p)
            break;
        buf = p;
        n = fread(buf + len, 1, 65536, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    r = buf ? kigen_engine_load(&svc->engine, buf, len, err, sizeof(err)) : -ENOMEM;
    free(buf);
    if (r == 0) {
        if (svc->engine.n_outbox)
            kigen_log_notice("Delivering %zu alerts that were not confirmed before the last stop",
                             svc->engine.n_outbox);
        return;
    }
    /* Corrupt or truncated: keep it for a post-mortem, start afresh, never refuse to run. */
    if (asprintf(&bad, "%s.corrupt", svc->state_path) >= 0)
        (void)rename(svc->state_path, bad);
    kigen_log_warn("The alert state '%s' is damaged (%s); kept as '%s', starting afresh",
                   svc->state_path, err, bad ? bad : "?");
    free(bad);
    svc->engine.dirty = true;
}

/* ---- evaluation ---- */

static void wakeup_cb(uv_timer_t *timer);
static void metrics_timer_cb(uv_timer_t *timer);

/* A render of the published metrics: the work callback touches this struct only. */
struct metrics_job {
    uv_work_t work;
    struct service *svc;
    struct kigen_snapshot *snapshot; /* freed by the work callback */
    struct kigen_metrics_extra extra;
    bool is_copied; /* the text goes to two places: copy it here, not on the loop */
    char *text;
    char *copy;
    size_t len;
    uint64_t cost_ns; /* the snapshot, then the render: what the next interval is made from */
    int result;
};

/* How long after a render the next may start (see evaluate). */
static uint64_t metrics_every(const struct service *svc)
{
    uint64_t every = svc->metrics_cost_ms * METRICS_COST;

    return every < METRICS_MIN_MS ? every : METRICS_MIN_MS;
}

/* Everything that costs is here: the render, the second copy and freeing the snapshot. */
static void metrics_work_cb(uv_work_t *work)
{
    struct metrics_job *job = work->data;
    uint64_t start = uv_hrtime();

    job->result = kigen_metrics_render(&job->snapshot->view, &job->extra, &job->text, &job->len);
    kigen_snapshot_free(job->snapshot);
    job->snapshot = NULL;
    if (job->result == 0 && job->is_copied) {
        job->copy = malloc(job->len + 1);
        if (job->copy)
            memcpy(job->copy, job->text, job->len + 1);
    }
    job->cost_ns += uv_hrtime() - start;
}

/*
 * The rendered text to the HTTP endpoint and the textfile of the configuration as it is now
 * (a reload may have changed them meanwhile); nothing once stopping.
 */
static void metrics_after_cb(uv_work_t *work, int status)
{
    struct metrics_job *job = work->data;
    struct service *svc = job->svc;
    const char *textfile = svc->config->alerts.textfile;
    char *text = job->text, *copy = job->copy;
    size_t len = job->len;
    int r = status < 0 ? status : job->result;

    svc->is_rendering_metrics = false;
    svc->metrics_cost_ms = job->cost_ns / 1000000;
    kigen_snapshot_free(job->snapshot); /* NULL unless the work never ran */
    free(job);
    if (svc->is_metrics_stale && !svc->stopping) {
        /* What changed while this ran is published when the interval has passed. */
        uint64_t since = uv_now(&svc->loop) - svc->metrics_published_ms, every = metrics_every(svc);

        svc->is_metrics_stale = false;
        uv_timer_start(&svc->metrics_timer, metrics_timer_cb, since < every ? every - since : 0, 0);
    }
    if (svc->stopping || r < 0) {
        if (r < 0 && !svc->stopping)
            kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot render the metrics, ignoring");
        free(text);
        free(copy);
        return;
    }
    if (textfile && svc->metrics_http && !copy) {
        /* A reload turned the second place on meanwhile (or ENOMEM): copy on the loop. */
        copy = malloc(len + 1);
        if (copy)
            memcpy(copy, text, len + 1);
    }
    if (svc->metrics_http) {
        /* Both take what they are given; the textfile gets the copy when there are two. */
        r = kigen_metrics_http_publish(svc->metrics_http, text, len);
        if (r < 0)
            kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot publish the metrics, ignoring");
        text = copy;
        copy = NULL;
        if (textfile && !text) {
            kigen_log_errno(KIGEN_LOG_WARNING, -ENOMEM,
                            "Cannot write the metrics textfile '%s', ignoring", textfile);
            return;
        }
    }
    free(copy);
    if (!textfile) {
        free(text);
        return;
    }
    r = kigen_textfile_write(&svc->loop, textfile, text, len, NULL, NULL);
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot write the metrics textfile '%s', ignoring",
                        textfile);
}

/* kigen_alert_deliveries_failed_total of the durable sinks (mail, webhooks). */
static void add_delivery_metrics(const struct service *svc, struct kigen_metrics_extra *extra)
{
    struct kigen_sink_stats st[KIGEN_METRICS_MAX_SINKS];
    size_t n = kigen_sinks_stats(svc->sinks, st, KIGEN_METRICS_MAX_SINKS);

    for (size_t i = 0; i < n; i++)
        kigen_metrics_extra_add_sink(extra, st[i].name, st[i].failed);
}

/* The snapshot is built: render it on the thread pool. */
static void metrics_built_cb(void *data, struct kigen_snapshot *snapshot, int result)
{
    struct metrics_job *job = data;
    struct service *svc = job->svc;
    int r = result;

    job->snapshot = snapshot;
    job->cost_ns = uv_hrtime() - job->cost_ns;
    if (r == 0 && svc->stopping)
        r = -ECANCELED;
    if (r == 0)
        r = uv_queue_work(&svc->loop, &job->work, metrics_work_cb, metrics_after_cb);
    if (r < 0) {
        job->result = r;
        metrics_after_cb(&job->work, r); /* frees job, and says why unless stopping */
    }
}

/*
 * The metrics of the evaluation at now, to the textfile and the HTTP endpoint when
 * configured: copied from the inventory in slices on the loop, rendered on the thread pool
 * (100,000 certificates make 250 MB of text, a second of work the status socket must not
 * wait for), published when done.
 */
static void publish_metrics(struct service *svc, int64_t now)
{
    static const struct kigen_view_filter all_unsorted = { .state = -1,
                                                           .within = -1,
                                                           .is_unsorted = true };
    struct metrics_job *job = calloc(1, sizeof(*job));
    int r;

    if (!job) {
        kigen_log_errno(KIGEN_LOG_WARNING, -ENOMEM, "Cannot render the metrics, ignoring");
        return;
    }
    job->work.data = job;
    job->svc = svc;
    job->extra.options = svc->config->metrics;
    job->extra.scan_duration_seconds = svc->scan_seconds;
    add_delivery_metrics(svc, &job->extra);
    job->is_copied = svc->config->alerts.textfile && svc->metrics_http;
    job->cost_ns = uv_hrtime();
    r = kigen_slicer_start(svc->slicer, &all_unsorted, now, metrics_built_cb, job);
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot render the metrics, ignoring");
        free(job);
        return;
    }
    svc->is_rendering_metrics = true;
}

/*
 * The endpoint config asks for, bound now: a reload that names a port that cannot be had is
 * rejected, and the running endpoint keeps serving. *ret_h is NULL when nothing is to change
 * or metrics_listen is off. Returns 0, or a negative errno with the reason in err.
 */
static int prepare_metrics_http(struct service *svc, const struct kigen_config *config,
                                struct kigen_metrics_http **ret_h, char *err, size_t errlen)
{
    const char *want = config->metrics_listen;

    *ret_h = NULL;
    if (!want || (svc->metrics_listen && strcmp(want, svc->metrics_listen) == 0))
        return 0;
    return kigen_metrics_http_start(want, ret_h, err, errlen);
}

/* Makes h, prepared for svc->config, the endpoint (or none, when metrics_listen is off). */
static void swap_metrics_http(struct service *svc, struct kigen_metrics_http *h)
{
    const char *want = svc->config->metrics_listen;
    char *copy = NULL;

    if (!h && want && svc->metrics_listen && strcmp(want, svc->metrics_listen) == 0)
        return; /* unchanged */
    if (h && !(copy = strdup(want))) {
        kigen_log_errno(KIGEN_LOG_WARNING, -ENOMEM, "Cannot serve metrics on %s", want);
        kigen_metrics_http_stop(h);
        h = NULL;
    }
    kigen_metrics_http_stop(svc->metrics_http);
    free(svc->metrics_listen);
    svc->metrics_http = h;
    svc->metrics_listen = copy;
    if (h)
        kigen_log_info("Serving metrics on http://%s/metrics", want);
}

static void evaluate(struct service *svc)
{
    if (!svc->stopping)
        kigen_evaluator_start(svc->evaluator); /* evaluated_cb, maybe from within */
}

/* The first evaluation after the first scan: the daemon is ready. */
static void announce_ready(struct service *svc)
{
    if (!svc->is_ready_due)
        return;
    svc->is_ready_due = false;
    svc->ready = true;
    sd_notify(0, "READY=1");
    kigen_log_info("Watching %zu certificates in %zu keystores", svc->inventory->n_certs,
                   svc->config->n_keystores);
}

/* An evaluation's end (src/evaluator.c): view is what it saw, at now. */
static void evaluated_cb(void *data, struct kigen_view *view, int64_t now, int r)
{
    struct service *svc = data;
    const struct kigen_probe_status *probes;
    int64_t next;
    uint64_t delay;
    size_t n_probes;

    if (!view) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot evaluate the inventory, retrying in a minute");
        uv_timer_start(&svc->wakeup_timer, wakeup_cb, 60000, 0);
        announce_ready(svc);
        return;
    }
    probes = probes_of(svc, &n_probes);
    kigen_view_set_probes(view, probes, n_probes);
    view->unique = svc->engine.n_unique; /* built unsorted: the engine counted them */
    next = kigen_engine_next_wakeup(&svc->engine, svc->config, view, now);
    /*
     * Between the slices of a large evaluation the metrics wait for the last one, and they
     * are rendered one at a time, at most every METRICS_COST times the last render's cost
     * and at least every METRICS_MIN_MS (100,000 certificates make 250 MB of text in a
     * second): a change within that time is published when it has passed.
     */
    if (!svc->engine.more_now && (svc->config->alerts.textfile || svc->metrics_http)) {
        uint64_t since = uv_now(&svc->loop) - svc->metrics_published_ms;
        uint64_t every = metrics_every(svc);

        if (svc->is_rendering_metrics) {
            svc->is_metrics_stale = true; /* metrics_after_cb starts metrics_timer */
        } else if (!svc->metrics_published_ms || since >= every) {
            publish_metrics(svc, now);
            svc->metrics_published_ms = uv_now(&svc->loop);
        } else if (!uv_is_active((uv_handle_t *)&svc->metrics_timer)) {
            uv_timer_start(&svc->metrics_timer, metrics_timer_cb, every - since, 0);
        }
    }
    svc->last = *view;
    svc->last.records = NULL;
    svc->last.errors = NULL;
    svc->last.probes = NULL; /* a reload replaces them: control_cb asks the prober */
    svc->last.n_probes = 0;
    announce_ready(svc);
    if (svc->ready)
        notify_status(svc); /* time moves states, and probes report, between scans */
    /* Milliseconds after the second the change happens in, so that it has happened. */
    delay = (uint64_t)(next - now) * 1000 + 5;
    if (svc->engine.more_now)
        delay = EVAL_SLICE_MS; /* more alerts are due: the next slice after a breath */
    uv_timer_start(&svc->wakeup_timer, wakeup_cb, delay < MAX_WAKEUP_MS ? delay : MAX_WAKEUP_MS, 0);
    /* In a loop iteration of its own: the status socket is answered in between. */
    uv_timer_start(&svc->save_timer, save_timer_cb, 0, 0);
}

static void wakeup_cb(uv_timer_t *timer)
{
    evaluate(container_of(timer, struct service, wakeup_timer));
}

/* A change waited for the metrics' interval: evaluating again publishes it (and says nothing new).
 */
static void metrics_timer_cb(uv_timer_t *timer)
{
    evaluate(container_of(timer, struct service, metrics_timer));
}

/* The wall clock was set: deadlines measured on the monotonic clock are wrong now. */
static void clock_cb(uv_poll_t *poll, int status, int events)
{
    struct service *svc = container_of(poll, struct service, clock_poll);
    struct itimerspec far = { .it_value = { .tv_sec = INT32_MAX } };
    uint64_t ticks;

    (void)!read(svc->clock_fd, &ticks, sizeof(ticks)); /* ECANCELED: the clock changed */
    timerfd_settime(svc->clock_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &far, NULL);
    kigen_log_info("The system clock changed, evaluating again");
    evaluate(svc);
    schedule_digest(svc);
}

/* ---- the daily digest ---- */

/* The next instant after now at which the wall clock of tz shows minute_of_day, or 0. */
static int64_t next_wall_time(const struct kigen_tz *tz, int64_t now, int minute_of_day)
{
    struct kigen_tz_tm tm;
    int64_t day, y, at;
    unsigned m, d;

    if (kigen_tz_local(tz, now, &tm) < 0)
        return 0;
    day = kigen_days_from_civil(tm.year, (unsigned)tm.month, (unsigned)tm.day);
    for (int k = 0; k < 3; k++) { /* today, else tomorrow (or the day after, over a DST gap) */
        kigen_civil_from_days(day + k, &y, &m, &d);
        if (kigen_tz_to_utc(tz, (int)y, (int)m, (int)d, minute_of_day, &at) == 0 && at > now)
            return at;
    }
    return 0;
}

/* Arms digest_timer for the next alerts.mail.digest_at in timezone, or stops it. */
static void schedule_digest(struct service *svc)
{
    const struct kigen_mail *m = &svc->config->alerts.mail;
    int64_t now = now_of(svc), at;

    uv_timer_stop(&svc->digest_timer);
    if (svc->stopping || m->digest_at < 0 || !m->sendmail.n || !svc->display_tz)
        return;
    at = next_wall_time(svc->display_tz, now, m->digest_at);
    if (at)
        uv_timer_start(&svc->digest_timer, digest_timer_cb, (uint64_t)(at - now) * 1000 + 5, 0);
}

/* One item of the digest, as the mail sink's carrier holds it (KIGEN_SINK_MAIL_DIGEST). */
static int add_digest_item(json_t *items, enum kigen_digest_kind kind, const char *what,
                           const char *where, const char *holder, int64_t not_after,
                           int64_t days_left)
{
    json_t *o =
        json_pack("{s:I, s:s, s:s, s:I, s:I}", "kind", (json_int_t)kind, "what", what, "where",
                  where, "not_after", (json_int_t)not_after, "days_left", (json_int_t)days_left);

    if (o && holder && json_object_set_new(o, "holder", json_string(holder)) < 0) {
        json_decref(o);
        o = NULL;
    }
    return o && json_array_append_new(items, o) == 0 ? 0 : -ENOMEM;
}

/*
 * Everything open, for the admins (SPEC §12): certificates in their renewal window, critical
 * or expired, files that cannot be read, probes down. Nothing is sent when nothing is open.
 */
static void send_digest(struct service *svc)
{
    static const struct kigen_view_filter all = { .state = -1, .within = -1 };
    const struct kigen_probe_status *probes;
    int64_t now = now_of(svc);
    json_t *items = json_array();
    struct kigen_alert *a = NULL;
    struct kigen_tz_tm tm;
    struct kigen_view view;
    size_t n_probes;
    char key[64], *text = NULL;
    int r;

    if (!svc->config->holders.admins.n || !items || kigen_tz_local(svc->display_tz, now, &tm) < 0) {
        json_decref(items);
        return; /* nobody to send it to */
    }
    r = kigen_view_build(svc->config, svc->inventory, now, &all, &view);
    if (r < 0) {
        json_decref(items);
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot make the daily digest");
        return;
    }
    probes = probes_of(svc, &n_probes);
    kigen_view_set_probes(&view, probes, n_probes);
    for (size_t i = 0; i < view.n_records && r == 0; i++) {
        const struct kigen_record *rec = &view.records[i];
        enum kigen_digest_kind kind;

        if (rec->state == KIGEN_STATE_REVOKED)
            kind = KIGEN_DIGEST_REVOKED;
        else if (rec->state == KIGEN_STATE_EXPIRED)
            kind = KIGEN_DIGEST_EXPIRED;
        else if (rec->state == KIGEN_STATE_CRITICAL)
            kind = KIGEN_DIGEST_CRITICAL;
        else if (rec->state == KIGEN_STATE_RENEWAL_OPEN)
            kind = KIGEN_DIGEST_RENEWAL_OPEN;
        else
            continue;
        r = add_digest_item(items, kind, rec->cert->subject, rec->file->path, rec->holder,
                            rec->cert->not_after, kigen_days_left(rec->cert->not_after, now));
    }
    for (size_t i = 0; i < view.n_errors && r == 0; i++) {
        const struct kigen_file *f = view.errors[i];
        char why[1024];

        snprintf(why, sizeof(why), "%s: %s", kigen_err_text(svc->config->language, f->error),
                 f->message ? f->message : "");
        r = add_digest_item(items, KIGEN_DIGEST_UNREADABLE, f->path, why, NULL, 0, 0);
    }
    for (size_t i = 0; i < view.n_probes && r == 0; i++) {
        const struct kigen_probe_status *p = &view.probes[i];
        char where[300];

        if (p->state != KIGEN_PROBE_DOWN)
            continue;
        snprintf(where, sizeof(where), "%s:%u", p->host, (unsigned)p->port);
        r = add_digest_item(items, KIGEN_DIGEST_PROBE_DOWN, p->name, where, NULL, 0, 0);
    }
    kigen_view_done(&view);
    snprintf(key, sizeof(key), "digest-%04d-%02d-%02d", tm.year, tm.month, tm.day);
    if (r == 0 && json_array_size(items)) {
        text = json_dumps(items, JSON_COMPACT);
        a = text ? kigen_alert_new(KIGEN_EVENT_CERT_RENEWAL_OPEN, text) : NULL;
        r = a && kigen_alert_add(a, KIGEN_SINK_MAIL_DIGEST, key) == 0 &&
                    kigen_alert_add(a, "KIGEN_SHA256", key) == 0
                ? kigen_sinks_mail_digest(svc->sinks, key, a)
                : -ENOMEM;
        if (r == 0)
            kigen_log_info("Daily digest %s: %zu open items, to %zu admins", key,
                           json_array_size(items), svc->config->holders.admins.n);
    }
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot send the daily digest %s", key);
    kigen_alert_free(a);
    free(text);
    json_decref(items);
}

static void digest_timer_cb(uv_timer_t *timer)
{
    struct service *svc = container_of(timer, struct service, digest_timer);

    send_digest(svc);
    schedule_digest(svc);
}

/* ---- scanning ---- */

static void update_watches(struct service *svc)
{
    const char *const *dirs;
    size_t n = kigen_scanner_dirs(svc->scanner, &dirs), failed;
    const char **paths = malloc((n + svc->config->n_keystores + 1) * sizeof(*paths));
    const char *reg = svc->config->holders.register_path;
    char *reg_dir = reg ? strdup(reg) : NULL;
    struct stat st;

    if (!paths) {
        free(reg_dir);
        return;
    }
    memcpy(paths, dirs, n * sizeof(*paths));
    /* The register's directory: an editor saves by renaming a new file over it. */
    if (reg_dir)
        paths[n++] = dirname(reg_dir);
    /* A keystore that is a single file is watched itself. */
    for (size_t i = 0; i < svc->config->n_keystores; i++)
        if (stat(svc->config->keystores[i].path, &st) == 0 && S_ISREG(st.st_mode))
            paths[n++] = svc->config->keystores[i].path;
    failed = kigen_watch_update(&svc->watch, paths, n);
    free(paths);
    free(reg_dir);
    if (failed && svc->watch_error_reported != svc->watch.last_error) {
        kigen_log_warn("Cannot watch %zu directories for changes (%s%s); they are still "
                       "rescanned every %lld s",
                       failed, strerror(-svc->watch.last_error),
                       svc->watch.last_error == -ENOSPC ? ": the inotify watch limit is reached"
                                                        : "",
                       (long long)svc->config->scan_interval);
        svc->watch_error_reported = svc->watch.last_error;
    } else if (!failed) {
        svc->watch_error_reported = 0;
    }
}

/*
 * For alert messages: the next maintenance window (or the one in progress) of any target
 * named in the configuration's windows, when it starts before the certificate expires.
 */
static bool maint_note_cb(enum kigen_language lang, int64_t now, int64_t before, char *out,
                          size_t outlen, void *data)
{
    struct service *svc = data;
    const char *best_target = NULL;
    int64_t best_start = INT64_MAX, best_end = 0, start, end;
    char from[64], to[64];

    if (!svc->maint)
        return false;
    for (size_t i = 0; i < svc->config->n_maintenance; i++) {
        const struct kigen_maintenance *m = &svc->config->maintenance[i];

        for (size_t j = 0; j < m->targets.n; j++) {
            const char *target = m->targets.v[j];

            if (kigen_maint_set_active(svc->maint, target, now, &end) == 1)
                start = now;
            else if (kigen_maint_set_next(svc->maint, target, now, &start, &end) < 0)
                continue;
            if (start < before && start < best_start) {
                best_start = start;
                best_end = end;
                best_target = target;
            }
        }
    }
    if (!best_target || !svc->display_tz ||
        (lang == KIGEN_LANGUAGE_JA
             ? kigen_tz_format_ja(svc->display_tz, best_start, from, sizeof(from)) < 0 ||
                   kigen_tz_format_ja(svc->display_tz, best_end, to, sizeof(to)) < 0
             : kigen_tz_format(svc->display_tz, best_start, from, sizeof(from)) < 0 ||
                   kigen_tz_format(svc->display_tz, best_end, to, sizeof(to)) < 0))
        return false;
    if (best_start <= now)
        snprintf(out, outlen,
                 _(lang, "Now: %s is down for maintenance from %s to %s, before it expires"),
                 best_target, from, to);
    else
        snprintf(out, outlen,
                 _(lang, "Mind that %s is down for maintenance from %s to %s, before it expires"),
                 best_target, from, to);
    return true;
}

/* Loads what the configuration needs from the system (zoneinfo); failures only narrow messages. */
static void load_zones(struct service *svc)
{
    char err[256] = "";
    int r;

    kigen_maint_set_free(svc->maint);
    svc->maint = NULL;
    kigen_tz_free(svc->display_tz);
    svc->display_tz = NULL;
    r = kigen_maint_set_new(svc->config, &svc->maint, err, sizeof(err));
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, r, "Maintenance windows unavailable (%s), ignoring",
                        err);
    r = kigen_tz_load(svc->config->timezone, &svc->display_tz);
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot load timezone '%s', ignoring",
                        svc->config->timezone);
    kigen_time_use_zone(svc->config->timezone);
}

static void capture_one(struct service *svc, const struct kigen_password_source *src)
{
    char *value, *copy;

    if (src->kind != KIGEN_PASSWORD_ENV || kigen_strmap_get(&svc->secret_env, src->value) ||
        !(value = getenv(src->value)))
        return;
    copy = kigen_secret_dup(value); /* out of core dumps */
    if (!copy || kigen_strmap_put(&svc->secret_env, src->value, copy) < 0) {
        kigen_secret_free(copy);
        return; /* left in the environment: still works, less hidden */
    }
    OPENSSL_cleanse(value, strlen(value));
    unsetenv(src->value);
}

/*
 * Moves the values of `env:` password and webhook URL sources out of the environment (and
 * wipes them in place, which also clears /proc/PID/environ), so that no exec hook inherits
 * them.
 */
static void capture_secret_env(struct service *svc, const struct kigen_config *config)
{
    for (size_t i = 0; i < config->n_keystores; i++)
        for (size_t j = 0; j < config->keystores[i].n_passwords; j++)
            capture_one(svc, &config->keystores[i].passwords[j]);
    for (size_t i = 0; i < config->alerts.n_webhooks; i++)
        capture_one(svc, &config->alerts.webhooks[i].url);
}

static const char *secret_getenv(const char *name, void *data);

/*
 * Reads each webhook's URL from its source into config (url_secret) and checks it. A webhook
 * that cannot have its URL would lose every alert meant for it: the configuration is then
 * refused, at start as on a reload, with a reason that names the source, never the URL.
 * Returns 0 or a negative errno with the reason in err.
 */
static int read_webhook_urls(struct service *svc, struct kigen_config *config, char *err,
                             size_t errlen)
{
    static const char *const kinds[] = {
        [KIGEN_PASSWORD_FILE] = "file",
        [KIGEN_PASSWORD_CREDENTIAL] = "credential",
        [KIGEN_PASSWORD_ENV] = "env",
    };

    capture_secret_env(svc, config);
    for (size_t i = 0; i < config->alerts.n_webhooks; i++) {
        struct kigen_webhook *w = &config->alerts.webhooks[i];
        char why[160];
        int r;

        kigen_secret_free(w->url_secret);
        w->url_secret = NULL;
        r = kigen_secret_read(&w->url, secret_getenv, svc, &w->url_secret);
        if (r == 0)
            r = kigen_webhook_check_url(w->url_secret, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "%s",
                     r == -EINVAL                                        ? "empty"
                     : r == -ENOENT && w->url.kind == KIGEN_PASSWORD_ENV ? "not set"
                     : r == -ENOENT && w->url.kind == KIGEN_PASSWORD_CREDENTIAL &&
                             !getenv("CREDENTIALS_DIRECTORY")
                         ? "$CREDENTIALS_DIRECTORY is not set"
                         : strerror(-r));
        if (r < 0) {
            snprintf(err, errlen, "webhook '%s': url from %s '%s': %s", w->name, kinds[w->url.kind],
                     w->url.value, why);
            return r;
        }
    }
    return 0;
}

static int64_t scan_now(void *data)
{
    return now_of(data);
}

static uint64_t scan_root_dev(const char *keystore, const char *path, void *data)
{
    struct service *svc = data;

    return kigen_engine_root_dev(&svc->engine, keystore, path);
}

static void scan_root_read(const char *keystore, const char *path, uint64_t dev, void *data)
{
    struct service *svc = data;

    if (kigen_engine_root_dev(&svc->engine, keystore, path))
        kigen_log_notice("Keystore '%s': '%s' is now on another file system and holds files; "
                         "reading it as the keystore's new place",
                         keystore, path);
    if (kigen_engine_set_root_dev(&svc->engine, keystore, path, dev) < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, -ENOMEM, "Cannot remember the keystore root '%s'", path);
}

static const struct kigen_scan_hooks scan_hooks = {
    .now = scan_now,
    .root_dev = scan_root_dev,
    .root_read = scan_root_read,
};

static const char *secret_getenv(const char *name, void *data)
{
    struct service *svc = data;

    return kigen_strmap_get(&svc->secret_env, name);
}

static void free_secret_cb(const char *key, void *value, void *data)
{
    kigen_secret_free(value);
}

/* language: ja without its catalogue says English: say so once per configuration. */
static void check_language(const struct kigen_config *config)
{
    if (!kigen_i18n_is_available(config->language))
        kigen_log_warn("No translations for language '%s' (kigen.mo next to kigend or in "
                       "%s/%s/LC_MESSAGES), writing English",
                       kigen_language_code(config->language), kigen_i18n_localedir(),
                       kigen_language_code(config->language));
}

static void apply_config(struct service *svc, struct kigen_config *config,
                         struct kigen_metrics_http *metrics_http)
{
    const char *was = svc->config->holders.register_path, *is = config->holders.register_path;
    int r = kigen_sinks_configure(svc->sinks, config);

    if (r < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot apply the new alert settings, ignoring");
    capture_secret_env(svc, config);
    /* Another register (or none): the rows of the old one go; the scan that follows reads it. */
    if (was && (!is || strcmp(was, is) != 0))
        kigen_register_records_apply(svc->inventory, config, NULL, NULL, NULL, 0);
    kigen_config_free(svc->config);
    svc->config = config;
    svc->config_serial++;
    check_language(config);
    svc->engine.language = config->language;
    load_zones(svc);
    start_prober(svc);
    swap_metrics_http(svc, metrics_http);
    schedule_digest(svc);
}

static void scan_timer_cb(uv_timer_t *timer)
{
    start_scan(container_of(timer, struct service, scan_timer));
}

/*
 * While a keystore root is unavailable, look at it again: after ROOT_RETRY_MS, doubling to
 * ROOT_RETRY_MAX_MS. Its parent directory is watched too (kigen_scanner_dirs) and so is the
 * mount table, so a share that comes back is usually seen at once; the timer covers the rest
 * (a parent that cannot be watched, a network file system that says nothing).
 */
static void root_timer_cb(uv_timer_t *timer)
{
    start_scan(container_of(timer, struct service, root_timer));
}

static void watch_roots(struct service *svc)
{
    if (!kigen_scanner_unavailable(svc->scanner)) {
        svc->root_retry_ms = 0;
        uv_timer_stop(&svc->root_timer);
        return;
    }
    svc->root_retry_ms = !svc->root_retry_ms                          ? ROOT_RETRY_MS
                         : svc->root_retry_ms * 2 > ROOT_RETRY_MAX_MS ? ROOT_RETRY_MAX_MS
                                                                      : svc->root_retry_ms * 2;
    uv_timer_start(&svc->root_timer, root_timer_cb, svc->root_retry_ms, 0);
}

/* A look at one keystore root after the mount table changed, on the thread pool. */
struct root_check {
    uv_fs_t req;
    struct service *svc;
    char *keystore;
    char *path;
};

static void root_checked_cb(uv_fs_t *req)
{
    struct root_check *c = container_of(req, struct root_check, req);
    uint64_t dev = kigen_engine_root_dev(&c->svc->engine, c->keystore, c->path);

    /* Gone, or another file system at the same path (an unmount does not touch the inode). */
    if (!c->svc->stopping && dev && (req->result < 0 || req->statbuf.st_dev != dev))
        request_full_scan(c->svc);
    uv_fs_req_cleanup(req);
    free(c->keystore);
    free(c->path);
    free(c);
}

/*
 * The mount table changed: a share may be back, or gone. An unmounted share leaves its
 * directory's watch silent (the inode is still there, only no longer at that path), so each
 * keystore root is stat'ed off the loop (a dead network mount may hang) and compared with the
 * device it was read on.
 */
static void mounts_cb(uv_poll_t *poll, int status, int events)
{
    struct service *svc = container_of(poll, struct service, mounts_poll);

    if (status < 0) {
        uv_poll_stop(poll);
        return;
    }
    if (svc->stopping)
        return;
    if (kigen_scanner_unavailable(svc->scanner)) {
        request_full_scan(svc);
        return;
    }
    for (size_t i = 0; i < svc->config->n_keystores; i++) {
        const struct kigen_keystore *ks = &svc->config->keystores[i];
        struct root_check *c = calloc(1, sizeof(*c));

        if (!c || !(c->keystore = strdup(ks->name)) || !(c->path = strdup(ks->path))) {
            if (c)
                free(c->keystore);
            free(c);
            request_full_scan(svc);
            return;
        }
        c->svc = svc;
        if (uv_fs_stat(&svc->loop, &c->req, c->path, root_checked_cb) < 0) {
            free(c->keystore);
            free(c->path);
            free(c);
            request_full_scan(svc);
            return;
        }
    }
}

/* ---- the holders' register ---- */

struct register_job {
    uv_work_t work;
    struct service *svc;
    char *path;
    char *timezone;
    struct kigen_register_read read;
    int result;
};

/* Makes the inventory say what the register says (read NULL: the rows last read, again). */
static void apply_register(struct service *svc, struct kigen_register_read *read)
{
    int r = kigen_register_records_apply(svc->inventory, svc->config, svc->display_tz,
                                         svc->config->holders.register_path, read, now_of(svc));

    if (r < 0)
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot apply the holders' register, retrying");
}

static void register_work_cb(uv_work_t *work)
{
    struct register_job *job = work->data;
    struct kigen_tz *tz = NULL;

    /* Its own zone: a reload may free the loop's meanwhile. UTC dates if it cannot load. */
    (void)kigen_tz_load(job->timezone, &tz);
    job->result = kigen_register_read(job->path, tz, &job->read);
    kigen_tz_free(tz);
}

static void register_after_cb(uv_work_t *work, int status)
{
    struct register_job *job = work->data;
    struct service *svc = job->svc;
    const char *now_path = svc->config->holders.register_path;
    bool is_first = !svc->register_started;

    svc->register_reading = false;
    svc->register_started = true;
    uv_timer_stop(&svc->register_timer);
    if (svc->stopping) {
        kigen_register_read_done(&job->read);
    } else if (status < 0 || job->result < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, status < 0 ? status : job->result,
                        "Cannot read the holders' register '%s', retrying", job->path);
        svc->register_wanted = true;
    } else if (now_path && strcmp(now_path, job->path) == 0) {
        const struct kigen_file *f =
            kigen_inventory_find(svc->inventory, KIGEN_REGISTER_KEYSTORE, job->path);

        /* Said once, not at every full scan while it lasts. */
        if (job->read.error && (!f || f->error != job->read.error))
            kigen_log_warn("The holders' register '%s' (%s): %s", job->path,
                           kigen_err_name(job->read.error), job->read.message);
        apply_register(svc, &job->read);
    }
    kigen_register_read_done(&job->read);
    free(job->path);
    free(job->timezone);
    free(job);
    if (svc->stopping)
        return;
    if (is_first) {
        svc->register_fresh = true;
        start_scan(svc); /* the first evaluation knows every holder */
        return;
    }
    if (svc->register_wanted)
        start_register_read(svc);
    if (svc->ready && !kigen_scanner_is_busy(svc->scanner))
        evaluate(svc);
}

/*
 * The first read of the register hangs (a share that does not answer): the first scan goes
 * ahead without it; the read applies its rows when it ends.
 */
static void register_timer_cb(uv_timer_t *timer)
{
    struct service *svc = container_of(timer, struct service, register_timer);

    if (svc->register_started || svc->stopping)
        return;
    kigen_log_warn("The holders' register '%s' takes more than %d s to read, scanning without it "
                   "meanwhile",
                   svc->config->holders.register_path, REGISTER_FIRST_MS / 1000);
    svc->register_started = true;
    start_scan(svc);
}

/*
 * Reads the register on the thread pool (a share that blinks must not stall the loop), then
 * evaluates. Without a register the records go and the first scan starts at once.
 */
static void start_register_read(struct service *svc)
{
    const char *path = svc->config->holders.register_path;
    struct register_job *job;

    if (svc->stopping)
        return;
    if (!path) {
        if (svc->inventory->reg || !svc->register_started)
            apply_register(svc, NULL);
        if (!svc->register_started) {
            svc->register_started = true;
            start_scan(svc);
        }
        return;
    }
    if (svc->register_reading) {
        svc->register_wanted = true;
        return;
    }
    svc->register_wanted = false;
    job = calloc(1, sizeof(*job));
    if (job) {
        job->work.data = job;
        job->svc = svc;
    }
    if (!job || !(job->path = strdup(path)) || !(job->timezone = strdup(svc->config->timezone)) ||
        uv_queue_work(&svc->loop, &job->work, register_work_cb, register_after_cb) < 0) {
        if (job) {
            free(job->path);
            free(job->timezone);
        }
        free(job);
        kigen_log_errno(KIGEN_LOG_ERR, -ENOMEM, "Cannot read the holders' register '%s'", path);
        if (!svc->register_started) {
            svc->register_started = true;
            start_scan(svc);
        }
        return;
    }
    svc->register_reading = true;
    if (!svc->register_started)
        uv_timer_start(&svc->register_timer, register_timer_cb, REGISTER_FIRST_MS, 0);
}

/* ---- revocation ---- */

static void start_revocation(struct service *svc, bool is_due);

static void revocation_work_cb(uv_work_t *work)
{
    struct service *svc = work->data;

    kigen_revocation_execute(svc->revocation_run, &svc->revocation_memory);
}

static void revocation_timer_cb(uv_timer_t *timer)
{
    start_revocation(container_of(timer, struct service, revocation_timer), true);
}

static void revocation_after_cb(uv_work_t *work, int status)
{
    struct service *svc = work->data;
    struct kigen_revocation_run *run = svc->revocation_run;
    const struct kigen_revocation_failure *failures;
    int64_t now = now_of(svc), due = kigen_revocation_next_due(run);
    uint64_t before;
    size_t n;
    int r;

    free(work);
    svc->revocation_run = NULL;
    if (svc->stopping || status < 0) {
        kigen_revocation_run_free(run);
        if (svc->stopping)
            stop(svc);
        return;
    }
    before = svc->inventory->changes;
    r = kigen_revocation_apply(svc->inventory, run);
    if (svc->revocation_changes == before) /* the answers themselves are no news to check */
        svc->revocation_changes = svc->inventory->changes;
    failures = kigen_revocation_failures(run, &n);
    if (r == 0)
        r = kigen_engine_revocation_failures(&svc->engine, svc->config, failures, n, now);
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot apply the revocation answers");
    kigen_revocation_run_free(run);
    if (due != INT64_MAX && due > now)
        uv_timer_start(&svc->revocation_timer, revocation_timer_cb,
                       (uint64_t)(due - now) * 1000 + 5, 0);
    if (!kigen_scanner_is_busy(svc->scanner))
        evaluate(svc);
    if (svc->revocation_wanted)
        start_revocation(svc, true); /* asked for while this ran: maybe by the timer */
}

/*
 * Collects on the loop what the check needs (copies), checks on the thread pool: CRL and OCSP
 * fetches take seconds and must never stall the loop. is_due: the timer says answers fall
 * due; otherwise a scan ended, and nothing is checked when neither the inventory nor the
 * configuration changed since the last check (collecting is a pass over every certificate).
 */
static void start_revocation(struct service *svc, bool is_due)
{
    struct kigen_revocation_run *run = NULL;
    uv_work_t *work;
    char *cache = NULL;
    int r;

    if (svc->stopping)
        return;
    if (svc->revocation_run) {
        svc->revocation_wanted = true;
        return;
    }
    svc->revocation_wanted = false;
    if (!is_due && svc->has_revocation_check &&
        svc->revocation_changes == svc->inventory->changes &&
        svc->revocation_serial == svc->config_serial)
        return;
    uv_timer_stop(&svc->revocation_timer);
    r = asprintf(&cache, "%s/revocation", svc->config->state_dir) < 0 ? -ENOMEM : 0;
    if (r == 0)
        r = kigen_revocation_collect(svc->config, svc->inventory, cache, now_of(svc), &run);
    free(cache);
    if (r == 0) {
        svc->has_revocation_check = true;
        svc->revocation_changes = svc->inventory->changes;
        svc->revocation_serial = svc->config_serial;
    }
    if (r == 0 && !run) {
        if (svc->inventory->revocations.n) /* a reload turned it off */
            (void)kigen_revocation_apply(svc->inventory, NULL);
        return;
    }
    work = r == 0 ? calloc(1, sizeof(*work)) : NULL;
    if (work) {
        work->data = svc;
        svc->revocation_run = run;
        r = uv_queue_work(&svc->loop, work, revocation_work_cb, revocation_after_cb);
        if (r < 0) {
            svc->revocation_run = NULL;
            free(work);
        }
    } else if (r == 0) {
        r = -ENOMEM;
    }
    if (r < 0) {
        kigen_revocation_run_free(run);
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot check revocation, retrying in a minute");
        uv_timer_start(&svc->revocation_timer, revocation_timer_cb, 60000, 0);
    }
}

static void scan_done_cb(struct kigen_scanner *scanner, int status, void *data)
{
    struct service *svc = data;

    svc->scan_seconds = (double)(uv_now(&svc->loop) - svc->scan_started_ms) / 1000.0;
    svc->last_scan_end = (int64_t)time(NULL) + svc->clock_offset;
    if (svc->stopping) {
        stop(svc);
        return;
    }
    if (status == -ESTALE) {
        /* A partial scan met a keystore root that changed: only a full scan can tell. */
        svc->full_wanted = true;
        svc->rescan_wanted = true;
        status = 0;
    } else if (status < 0 && status != -ECANCELED) {
        kigen_log_errno(KIGEN_LOG_ERR, status, "The scan failed, retrying at the next interval");
    }
    if (svc->next_config) {
        apply_config(svc, svc->next_config, svc->next_metrics_http);
        svc->next_config = NULL;
        svc->next_metrics_http = NULL;
        start_scan(svc);
        return;
    }
    if (status == 0)
        update_watches(svc);
    if (status == 0 && svc->scan_is_full)
        watch_roots(svc);
    apply_register(svc, NULL); /* which declared rows a readable file now matches */
    if (!svc->ready)
        svc->is_ready_due = true; /* READY=1 once this evaluation is done */
    evaluate(svc);
    if (status == 0)
        start_revocation(svc, false); /* evaluates again when its answers come */
    if (svc->ready)
        notify_status(svc);
    uv_timer_start(&svc->scan_timer, scan_timer_cb, (uint64_t)svc->config->scan_interval * 1000, 0);
    if (svc->rescan_wanted)
        start_changed_scan(svc);
}

static void start_scan(struct service *svc)
{
    int r;

    if (svc->stopping)
        return;
    if (!svc->register_started) {
        start_register_read(svc); /* its end starts the scan */
        return;
    }
    if (!svc->register_fresh)
        start_register_read(svc); /* a full scan reads the register again too */
    svc->register_fresh = false;
    if (kigen_scanner_is_busy(svc->scanner)) {
        svc->rescan_wanted = true;
        svc->full_wanted = true;
        return;
    }
    svc->rescan_wanted = false;
    svc->full_wanted = false;
    svc->scan_is_full = true;
    kigen_strmap_clear(&svc->changed); /* a full scan sees every change */
    svc->scan_started_ms = uv_now(&svc->loop);
    r = kigen_scanner_start(svc->scanner, svc->config, scan_done_cb, svc);
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot start a scan, retrying in a minute");
        uv_timer_start(&svc->scan_timer, scan_timer_cb, 60000, 0);
    }
}

struct paths {
    const char **v;
    size_t n;
};

static void collect_cb(const char *key, void *value, void *data)
{
    struct paths *p = data;

    p->v[p->n++] = key;
}

/* Reads what the watches reported: those paths alone, or everything when that is simpler. */
static void start_changed_scan(struct service *svc)
{
    struct paths p = { NULL, 0 };
    int r = -ENOMEM;

    if (svc->stopping)
        return;
    if (kigen_scanner_is_busy(svc->scanner)) {
        svc->rescan_wanted = true;
        return;
    }
    if (svc->full_wanted || svc->changed.n > 1000) {
        start_scan(svc);
        return;
    }
    if (svc->changed.n == 0)
        return;
    p.v = malloc(svc->changed.n * sizeof(*p.v));
    if (p.v) {
        kigen_strmap_foreach(&svc->changed, collect_cb, &p);
        svc->rescan_wanted = false;
        svc->scan_is_full = false;
        svc->scan_started_ms = uv_now(&svc->loop);
        r = kigen_scanner_start_paths(svc->scanner, svc->config, p.v, p.n, scan_done_cb, svc);
    }
    free(p.v);
    kigen_strmap_clear(&svc->changed);
    if (r < 0)
        start_scan(svc);
}

static void debounce_cb(uv_timer_t *timer)
{
    struct service *svc = container_of(timer, struct service, debounce_timer);

    svc->first_change_ms = 0;
    if (svc->register_wanted)
        start_register_read(svc);
    start_changed_scan(svc);
}

/* Whether path is dir or lies below it. */
static bool is_at_or_above(const char *dir, const char *path)
{
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(dir, path, n) == 0 && (path[n] == '\0' || path[n] == '/' || n == 1);
}

static void debounce(struct service *svc);

static void change_cb(struct kigen_watch *watch, const char *path, const char *name, void *data)
{
    struct service *svc = data;
    char *full = NULL;
    size_t len;

    /* FILE.pass changed: FILE is what must be read again. */
    if (name && asprintf(&full, "%s/%s", path, name) >= 0) {
        len = strlen(full);
        if (len > 5 && strcmp(full + len - 5, ".pass") == 0)
            full[len - 5] = '\0';
    } else if (!name) {
        full = strdup(path); /* the watched file or directory itself */
    }
    /* The register, or a directory above it: read it again (and scan nothing for it). */
    if (full && svc->config->holders.register_path &&
        is_at_or_above(full, svc->config->holders.register_path)) {
        svc->register_wanted = true;
        if (strcmp(full, svc->config->holders.register_path) == 0) {
            free(full);
            debounce(svc);
            return;
        }
    }
    if (!full || kigen_strmap_put(&svc->changed, full, svc) < 0)
        svc->full_wanted = true;
    /* A keystore root, or a directory above one, came, went or was replaced. */
    for (size_t i = 0; i < svc->config->n_keystores && !svc->full_wanted; i++)
        if (is_at_or_above(full, svc->config->keystores[i].path))
            svc->full_wanted = true;
    free(full);
    debounce(svc);
}

/* A scan of everything soon, debounced with the changes. */
static void request_full_scan(struct service *svc)
{
    svc->full_wanted = true;
    debounce(svc);
}

static void debounce(struct service *svc)
{
    uint64_t now = uv_now(&svc->loop), delay = DEBOUNCE_MS;

    /* A burst of writes is one scan; a stream of them still shows within a second. */
    if (!svc->first_change_ms)
        svc->first_change_ms = now;
    if (now - svc->first_change_ms + delay > DEBOUNCE_MAX_MS)
        delay = now - svc->first_change_ms >= DEBOUNCE_MAX_MS
                    ? 0
                    : DEBOUNCE_MAX_MS - (now - svc->first_change_ms);
    uv_timer_start(&svc->debounce_timer, debounce_cb, delay, 0);
}

/* ---- probes ---- */

static int64_t prober_clock(void *data)
{
    return now_of(data);
}

/* probe.down or probe.up for a target whose state calls for it (status->changed). */
static void announce_probe(struct service *svc, const struct kigen_probe_status *st)
{
    bool is_down = st->state == KIGEN_PROBE_DOWN;
    int64_t now = now_of(svc), since = kigen_engine_probe_down_since(&svc->engine, st->name);
    const enum kigen_language lang = svc->config->language;
    char msg[1024], port[8], when[64] = "";
    struct kigen_alert *a;
    int r;

    if (is_down) {
        snprintf(msg, sizeof(msg),
                 _(lang, "Probe %s: %s port %u is unreachable after %u failed attempts (%s: %s). "
                         "Renewing certificates needs this host: check DNS, the firewall and the "
                         "proxy."),
                 st->name, st->host, (unsigned)st->port, st->consecutive_failures, st->error,
                 st->detail);
    } else {
        if (since && svc->display_tz)
            kigen_i18n_time(lang, svc->display_tz, since, when, sizeof(when));
        if (when[0])
            snprintf(msg, sizeof(msg),
                     _(lang, "Probe %s: %s port %u is reachable again (unreachable since %s)."),
                     st->name, st->host, (unsigned)st->port, when);
        else
            snprintf(msg, sizeof(msg), _(lang, "Probe %s: %s port %u is reachable again."),
                     st->name, st->host, (unsigned)st->port);
    }
    snprintf(port, sizeof(port), "%u", (unsigned)st->port);
    a = kigen_alert_new(is_down ? KIGEN_EVENT_PROBE_DOWN : KIGEN_EVENT_PROBE_UP, msg);
    r = a ? 0 : -ENOMEM;
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_PROBE", st->name);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_HOST", st->host);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_PORT", port);
    if (r == 0 && is_down)
        r = kigen_alert_add(a, "KIGEN_ERROR", st->error);
    if (r == 0)
        r = is_down ? kigen_engine_probe_set_down(&svc->engine, st->name, now) : 0;
    if (r < 0) {
        kigen_alert_free(a);
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot queue the %s alert of probe '%s'",
                        is_down ? "probe.down" : "probe.up", st->name);
        return;
    }
    if (!is_down)
        kigen_engine_probe_clear_down(&svc->engine, st->name);
    if (kigen_engine_queue(&svc->engine, a) == 0)
        save_state(svc);
}

static void probe_eval_cb(uv_timer_t *timer)
{
    evaluate(container_of(timer, struct service, probe_eval_timer));
}

static void probe_result_cb(struct kigen_prober *prober, size_t index, void *data)
{
    struct service *svc = data;
    size_t n;
    const struct kigen_probe_status *st = &kigen_prober_status(prober, &n)[index];
    bool is_cert_changed = false;
    int r = kigen_probe_sync(svc->inventory, st, &is_cert_changed);

    if (r < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, r,
                        "Cannot record the server certificate of probe '%s', ignoring", st->name);
    if (st->changed)
        announce_probe(svc, st);
    if (svc->ready)
        notify_status(svc); /* "n of m probes down"; sent only when it reads differently */
    /*
     * A new server certificate takes part in alerts; metrics show every result. Before the
     * first scan has ended there is nothing to evaluate: it will see the certificate.
     */
    if (svc->ready && !uv_is_active((uv_handle_t *)&svc->probe_eval_timer) &&
        (is_cert_changed || svc->config->alerts.textfile || svc->config->metrics_listen))
        uv_timer_start(&svc->probe_eval_timer, probe_eval_cb, PROBE_EVAL_MS, 0);
}

static void prober_closed_cb(struct kigen_prober *prober, void *data)
{
    kigen_prober_free(prober);
}

struct stale_probes {
    const struct kigen_probe_status *v;
    size_t n;
    const char **names;
    size_t n_names;
};

static void collect_stale_cb(const char *key, void *value, void *data)
{
    struct stale_probes *sp = data;

    for (size_t i = 0; i < sp->n; i++)
        if (strcmp(sp->v[i].name, key) == 0)
            return;
    sp->names[sp->n_names++] = key;
}

/* Forgets the probe.down of targets no longer configured: no probe.up is owed for them. */
static void forget_stale_probes(struct service *svc, const struct kigen_probe_status *v, size_t n)
{
    struct stale_probes sp = { v, n, NULL, 0 };

    if (svc->engine.probes_down.n == 0)
        return;
    sp.names = malloc(svc->engine.probes_down.n * sizeof(*sp.names));
    if (!sp.names)
        return;
    kigen_strmap_foreach(&svc->engine.probes_down, collect_stale_cb, &sp);
    for (size_t i = 0; i < sp.n_names; i++)
        kigen_engine_probe_clear_down(&svc->engine, sp.names[i]);
    free(sp.names);
}

/*
 * Replaces the prober with one for the configuration, keeping what the old one knew of the
 * targets that stay (state, failures, server certificate) and what the alert state says was
 * announced. Targets that went take their certificates out of the inventory.
 */
static void start_prober(struct service *svc)
{
    struct kigen_prober *p = NULL, *old = svc->prober;
    const struct kigen_probe_status *v = NULL;
    size_t n = 0;
    int r;

    if (svc->config->probes.n_targets) {
        r = kigen_prober_new(&svc->loop, svc->config, &p);
        if (r < 0) {
            kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot set up the probes, keeping the old ones");
            return;
        }
    }
    if (old) {
        if (p)
            kigen_prober_adopt(p, old);
        kigen_prober_close(old, prober_closed_cb, NULL);
    }
    svc->prober = p;
    if (p) {
        v = kigen_prober_status(p, &n);
        for (size_t i = 0; i < n; i++)
            if (!v[i].is_down_announced && kigen_engine_probe_down_since(&svc->engine, v[i].name))
                kigen_prober_restore_down(p, i);
        kigen_prober_set_maintenance(p, svc->maint);
        if (svc->clock_offset)
            kigen_prober_set_clock(p, prober_clock, svc);
        r = kigen_prober_start(p, probe_result_cb, svc);
        if (r < 0)
            kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot start the probes");
    }
    kigen_probe_prune(svc->inventory, v, n);
    forget_stale_probes(svc, v, n);
}

/* ---- reload and stop ---- */

/* Returns 0, or a negative errno with the reason in errbuf (may be NULL) for a rejection. */
static int reload(struct service *svc, char *errbuf, size_t errlen)
{
    struct kigen_config *config = NULL;
    struct kigen_alert *a;
    char err[1024], msg[1200];
    int r;

    struct kigen_metrics_http *metrics_http = NULL;

    sd_notify(0, "RELOADING=1");
    /* The reason goes into a config.rejected alert: in the running configuration's language. */
    r = kigen_config_load_lang(svc->config_path, svc->config->language, &config, err, sizeof(err));
    if (r == 0)
        r = read_webhook_urls(svc, config, err, sizeof(err));
    if (r < 0) {
        kigen_config_free(config);
        config = NULL;
    } else {
        /* A reload still waiting for the scan gives way to this one, its endpoint too. */
        kigen_metrics_http_stop(svc->next_metrics_http);
        svc->next_metrics_http = NULL;
        kigen_config_free(svc->next_config);
        svc->next_config = NULL;
        r = prepare_metrics_http(svc, config, &metrics_http, err, sizeof(err));
        if (r < 0) {
            kigen_config_free(config);
            config = NULL;
        }
    }
    if (r < 0) {
        if (errbuf)
            snprintf(errbuf, errlen, "%s", err);
        kigen_log_err("Configuration rejected, the running one stays: %s", err);
        snprintf(msg, sizeof(msg),
                 _(svc->config->language, "Configuration rejected, the running one stays: %s"),
                 err);
        a = kigen_alert_new(KIGEN_EVENT_CONFIG_REJECTED, msg);
    } else {
        kigen_log_info("Configuration '%s' reloaded", svc->config_path);
        snprintf(msg, sizeof(msg),
                 _(config->language, "Configuration '%s' reloaded: %zu keystores."),
                 svc->config_path, config->n_keystores);
        a = kigen_alert_new(KIGEN_EVENT_CONFIG_RELOADED, msg);
        if (kigen_scanner_is_busy(svc->scanner)) {
            svc->next_config = config;
            svc->next_metrics_http = metrics_http;
        } else {
            apply_config(svc, config, metrics_http);
            start_scan(svc);
        }
    }
    if (a && kigen_engine_queue(&svc->engine, a) == 0)
        save_state(svc);
    sd_notify(0, "READY=1");
    notify_status(svc);
    return r < 0 ? r : 0;
}

static void signal_cb(uv_signal_t *handle, int signum)
{
    struct service *svc = handle->data;

    if (signum == SIGHUP) {
        reload(svc, NULL, 0);
        return;
    }
    if (!svc->stopping) {
        kigen_log_info("Stopping on signal %d", signum);
        sd_notify(0, "STOPPING=1");
        svc->stopping = true;
        kigen_control_close(svc->control, NULL, NULL); /* no new question while stopping */
        svc->control = NULL;
        if (svc->prober)
            kigen_prober_close(svc->prober, NULL, NULL); /* freed once the loop has ended */
        svc->stop_deadline_ms = uv_now(&svc->loop) + STOP_GRACE_MS;
        kigen_evaluator_close(svc->evaluator); /* what it queued is saved by stop() */
        svc->evaluator = NULL;
        kigen_scanner_cancel(svc->scanner);
        stop(svc);
    }
}

static void watchdog_cb(uv_timer_t *timer)
{
    sd_notify(0, "WATCHDOG=1");
}

static void sinks_closed_cb(void *data)
{
}

static void stop_timer_cb(uv_timer_t *timer)
{
    stop(container_of(timer, struct service, stop_timer));
}

/* Closes everything once no scan or state write is in flight; uv_run then returns. */
static void stop(struct service *svc)
{
    uv_handle_t *handles[] = {
        (uv_handle_t *)&svc->sighup,           (uv_handle_t *)&svc->sigterm,
        (uv_handle_t *)&svc->sigint,           (uv_handle_t *)&svc->scan_timer,
        (uv_handle_t *)&svc->wakeup_timer,     (uv_handle_t *)&svc->debounce_timer,
        (uv_handle_t *)&svc->watchdog_timer,   (uv_handle_t *)&svc->save_timer,
        (uv_handle_t *)&svc->stop_timer,       (uv_handle_t *)&svc->probe_eval_timer,
        (uv_handle_t *)&svc->metrics_timer,    (uv_handle_t *)&svc->root_timer,
        (uv_handle_t *)&svc->digest_timer,     (uv_handle_t *)&svc->register_timer,
        (uv_handle_t *)&svc->revocation_timer,
    };

    if (kigen_scanner_is_busy(svc->scanner))
        return; /* scan_done_cb calls again */
    if (svc->revocation_run) {
        kigen_revocation_cancel(svc->revocation_run);
        return; /* revocation_after_cb calls again */
    }
    if (kigen_sinks_pending(svc->sinks) && uv_now(&svc->loop) < svc->stop_deadline_ms) {
        /* Alerts in flight: let them land, so that they leave the outbox. */
        uv_timer_start(&svc->stop_timer, stop_timer_cb, 50, 0);
        return;
    }
    if (svc->saving)
        return; /* save_done_cb calls again */
    if (svc->engine.dirty) {
        save_state(svc); /* the last state, outbox included, then here again */
        return;
    }
    for (size_t i = 0; i < sizeof(handles) / sizeof(handles[0]); i++)
        if (!uv_is_closing(handles[i]))
            uv_close(handles[i], NULL);
    if (svc->clock_fd >= 0 && !uv_is_closing((uv_handle_t *)&svc->clock_poll))
        uv_close((uv_handle_t *)&svc->clock_poll, NULL);
    if (svc->mounts_fd >= 0 && !uv_is_closing((uv_handle_t *)&svc->mounts_poll))
        uv_close((uv_handle_t *)&svc->mounts_poll, NULL);
    kigen_watch_close(&svc->watch, NULL);
    kigen_slicer_close(svc->slicer); /* builds not done yet end here */
    svc->slicer = NULL;
    kigen_sinks_close(svc->sinks, sinks_closed_cb, svc);
    kigen_metrics_http_stop(svc->metrics_http);
    svc->metrics_http = NULL;
}

/* ---- status socket ---- */

static int rescan_action(void *data, char *errbuf, size_t errlen)
{
    struct service *svc = data;

    if (svc->stopping) {
        snprintf(errbuf, errlen, "the daemon is stopping");
        return -ESHUTDOWN;
    }
    start_scan(svc); /* a scan in progress is followed by another */
    return 0;
}

static int reload_action(void *data, char *errbuf, size_t errlen)
{
    return reload(data, errbuf, errlen);
}

/* One request: answered from what the loop holds right now, never waiting for a scan. */
static int control_cb(void *data, const char *line, size_t len, bool is_privileged,
                      char **ret_answer, size_t *ret_len)
{
    struct service *svc = data;
    struct kigen_view last = svc->last;
    struct kigen_sink_stats deliveries[KIGEN_METRICS_MAX_SINKS];
    struct kigen_proto_ctx ctx = {
        .config = svc->config,
        .inventory = svc->inventory,
        .engine = &svc->engine,
        .last_view = &last,
        .now = now_of(svc),
        .scans = svc->inventory->scans,
        .files_read = svc->inventory->files_read,
        .files_unchanged = svc->inventory->files_unchanged,
        .last_scan_end = svc->last_scan_end,
        .last_scan_seconds = svc->scan_seconds,
        .is_scanning = kigen_scanner_is_busy(svc->scanner),
        .rescan = rescan_action,
        .reload = reload_action,
        .data = svc,
        /* list and metrics are rendered on the thread pool; status is answered meanwhile. */
        .loop = &svc->loop,
        .control = svc->control,
        .slicer = svc->slicer,
    };

    ctx.probes = probes_of(svc, &ctx.n_probes);
    ctx.cache = &svc->status_cache;
    ctx.deliveries = deliveries;
    ctx.n_deliveries = kigen_sinks_stats(svc->sinks, deliveries, KIGEN_METRICS_MAX_SINKS);
    /*
     * Before the first evaluation, status tells what the scan has found so far rather than
     * judging the whole inventory for every question (100 clients would stall the loop).
     */
    if (!svc->ready) {
        last.now = ctx.now;
        last.n_records = svc->inventory->n_certs;
        last.n_errors = svc->inventory->n_errors;
    }
    return kigen_proto_answer(&ctx, line, len, is_privileged, ret_answer, ret_len);
}

/* The socket is how people ask; alerts matter more: without it, the daemon carries on. */
static void open_control(struct service *svc)
{
    char err[512];
    int fd = sd_listen_fds(1) >= 1 ? SD_LISTEN_FDS_START : -1;
    int r = kigen_control_start(&svc->loop, svc->config->socket, fd, control_cb, svc, &svc->control,
                                err, sizeof(err));

    if (r < 0)
        kigen_log_warn("Cannot open the status socket: %s; running without it", err);
}

/* ---- setup ---- */

/* The metrics endpoint at start; alerts matter more: without it, the daemon carries on. */
static void start_metrics_http(struct service *svc)
{
    struct kigen_metrics_http *h;
    char err[512];

    if (prepare_metrics_http(svc, svc->config, &h, err, sizeof(err)) < 0)
        kigen_log_warn("Cannot serve metrics: %s; running without", err);
    else
        swap_metrics_http(svc, h);
}

static int setup(struct service *svc)
{
    struct itimerspec far = { .it_value = { .tv_sec = INT32_MAX } };
    uint64_t usec = 0;
    char err[512];
    int r;

    r = uv_loop_init(&svc->loop);
    if (r < 0)
        return r;
    /* Before the sinks: the mail queue lives in it. */
    if (mkdir(svc->config->state_dir, 0700) < 0 && errno != EEXIST)
        kigen_log_errno(KIGEN_LOG_WARNING, -errno, "Cannot create the state directory '%s'",
                        svc->config->state_dir);
    r = read_webhook_urls(svc, svc->config, err, sizeof(err));
    if (r < 0) {
        kigen_log_err("Configuration '%s': %s", svc->config_path, err);
        return r;
    }
    r = kigen_inventory_new(&svc->inventory);
    if (r == 0)
        r = kigen_scanner_new(&svc->loop, svc->inventory, &svc->scanner);
    if (r == 0)
        r = kigen_sinks_new(&svc->loop, svc->config, &svc->sinks);
    if (r < 0)
        return r;
    kigen_scanner_set_getenv(svc->scanner, secret_getenv, svc);
    kigen_scanner_set_hooks(svc->scanner, &scan_hooks, svc);
    kigen_scanner_set_background(svc->scanner);
    kigen_engine_init(&svc->engine);
    svc->engine.maint_fn = maint_note_cb;
    svc->engine.language = svc->config->language;
    check_language(svc->config);
    svc->engine.maint_data = svc;
    load_zones(svc);
    kigen_watch_init(&svc->watch, &svc->loop, change_cb, svc);
    signal(SIGPIPE, SIG_IGN); /* a status client that goes away is a write error, not a death */
    open_control(svc);        /* before any thread-pool work: it sets the umask for a moment */
    start_metrics_http(svc);
    uv_signal_init(&svc->loop, &svc->sighup);
    uv_signal_init(&svc->loop, &svc->sigterm);
    uv_signal_init(&svc->loop, &svc->sigint);
    svc->sighup.data = svc->sigterm.data = svc->sigint.data = svc;
    uv_signal_start(&svc->sighup, signal_cb, SIGHUP);
    uv_signal_start(&svc->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&svc->sigint, signal_cb, SIGINT);
    uv_timer_init(&svc->loop, &svc->scan_timer);
    uv_timer_init(&svc->loop, &svc->wakeup_timer);
    uv_timer_init(&svc->loop, &svc->debounce_timer);
    uv_timer_init(&svc->loop, &svc->watchdog_timer);
    uv_timer_init(&svc->loop, &svc->save_timer);
    uv_timer_init(&svc->loop, &svc->stop_timer);
    uv_timer_init(&svc->loop, &svc->probe_eval_timer);
    uv_timer_init(&svc->loop, &svc->metrics_timer);
    uv_timer_init(&svc->loop, &svc->digest_timer);
    uv_timer_init(&svc->loop, &svc->register_timer);
    uv_timer_init(&svc->loop, &svc->revocation_timer);
    r = kigen_slicer_new(&svc->loop, slicer_source_cb, svc, &svc->slicer);
    if (r < 0)
        return r;
    r = kigen_evaluator_new(&svc->loop, &svc->engine, slicer_source_cb, evaluator_clock_cb,
                            evaluated_cb, svc, &svc->evaluator);
    if (r < 0)
        return r;
    /*
     * Tests only: slices of KIGEN_TEST_EVAL_SLICE_NS nanoseconds, for every inventory (a few
     * certificates then take several loop iterations). Not documented for people.
     */
    if (getenv("KIGEN_TEST_EVAL_SLICE_NS"))
        kigen_evaluator_set_budget(svc->evaluator,
                                   strtoull(getenv("KIGEN_TEST_EVAL_SLICE_NS"), NULL, 10), 0);
    uv_timer_init(&svc->loop, &svc->root_timer);
    /* The kernel marks the mount table POLLPRI when a mount comes or goes (proc(5)). */
    svc->mounts_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (svc->mounts_fd >= 0 && uv_poll_init(&svc->loop, &svc->mounts_poll, svc->mounts_fd) == 0) {
        uv_poll_start(&svc->mounts_poll, UV_PRIORITIZED, mounts_cb);
    } else if (svc->mounts_fd >= 0) {
        close(svc->mounts_fd);
        svc->mounts_fd = -1;
    }
    if (sd_watchdog_enabled(0, &usec) > 0 && usec >= 2000)
        uv_timer_start(&svc->watchdog_timer, watchdog_cb, usec / 2000, usec / 2000);
    svc->clock_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (svc->clock_fd >= 0 &&
        timerfd_settime(svc->clock_fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &far, NULL) ==
            0 &&
        uv_poll_init(&svc->loop, &svc->clock_poll, svc->clock_fd) == 0) {
        uv_poll_start(&svc->clock_poll, UV_READABLE, clock_cb);
    } else if (svc->clock_fd >= 0) {
        close(svc->clock_fd);
        svc->clock_fd = -1;
    }
    if (asprintf(&svc->state_path, "%s/state.jsonl", svc->config->state_dir) < 0)
        return -ENOMEM;
    return 0;
}

int kigend_service_run(const char *config_path, struct kigen_config *config, int64_t clock_offset,
                       const struct kigen_sink_limits *sink_limits)
{
    struct service *svc = calloc(1, sizeof(*svc));
    int r;

    if (!svc) {
        kigen_config_free(config);
        return 1;
    }
    svc->clock_offset = clock_offset;
    svc->config_path = config_path;
    svc->config = config;
    svc->clock_fd = -1;
    svc->mounts_fd = -1;
    r = setup(svc);
    if (r < 0) {
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot start");
        svc->status = 1;
        goto out;
    }
    kigen_sinks_set_limits(svc->sinks, sink_limits);
    load_state(svc);
    /* Alerts that were waiting when the daemon last stopped go out first. */
    if (svc->engine.n_outbox)
        save_state(svc);
    start_prober(svc); /* after the state: it knows which probe.down went out */
    schedule_digest(svc);
    start_scan(svc);
    uv_run(&svc->loop, UV_RUN_DEFAULT);
out:
    kigen_control_close(svc->control, NULL, NULL);
    kigen_slicer_close(svc->slicer);
    kigen_evaluator_close(svc->evaluator);
    uv_run(&svc->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&svc->loop) == UV_EBUSY)
        kigen_log_debug("Event loop closed with handles still open");
    if (svc->clock_fd >= 0)
        close(svc->clock_fd);
    if (svc->mounts_fd >= 0)
        close(svc->mounts_fd);
    kigen_prober_free(svc->prober);
    kigen_metrics_http_stop(svc->metrics_http);
    free(svc->metrics_listen);
    kigen_sinks_free(svc->sinks);
    kigen_scanner_free(svc->scanner);
    kigen_inventory_free(svc->inventory);
    kigen_engine_done(&svc->engine);
    kigen_revocation_memory_done(&svc->revocation_memory);
    kigen_config_free(svc->config);
    kigen_config_free(svc->next_config);
    kigen_metrics_http_stop(svc->next_metrics_http);
    kigen_maint_set_free(svc->maint);
    kigen_tz_free(svc->display_tz);
    kigen_strmap_clear(&svc->changed);
    kigen_proto_cache_done(&svc->status_cache);
    kigen_strmap_foreach(&svc->secret_env, free_secret_cb, NULL);
    kigen_strmap_clear(&svc->secret_env);
    free(svc->state_path);
    r = svc->status;
    free(svc);
    return r;
}
