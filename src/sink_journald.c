/*
 * The journald sink (SPEC §7): one journal entry per alert with MESSAGE, PRIORITY, MESSAGE_ID
 * (units/kigen.catalog explains each), SYSLOG_IDENTIFIER=kigend and every field of the
 * alert as NAME=value.
 *
 * sd_journal_sendv() blocks while journald is slow to read its socket, so it runs on libuv's
 * thread pool, one alert at a time (max_in_flight 1 keeps the order). The job carries its own
 * copy of the entry: the work callback touches nothing else.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "log.h"
#include "sink.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Where sd_journal_sendv() sends; fixed in libsystemd. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

struct job {
    uv_work_t work;
    struct journald_sink *sink;
    void *token;
    enum kigen_event event;
    struct iovec *iov; /* "NAME=value" without NUL, pointing into buf */
    size_t n_iov;
    char *buf;
    char socket[108]; /* copied: the work callback reads nothing shared */
    int result;       /* sd_journal_sendv()'s, written by the work callback */
};

struct journald_sink {
    struct kigen_sink base;
    uv_loop_t *loop;
    struct job *job; /* the one in flight, or NULL */
};

static void job_free(struct job *job)
{
    if (!job)
        return;
    free(job->iov);
    free(job->buf);
    free(job);
}

/* journald accepts [A-Z0-9_]{1,64}, not starting with '_' (trusted fields) or a digit. */
static bool is_field_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > 64 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* Appends "name=value" to the job's buffer (sized beforehand) and points the next iovec at it. */
static void put(struct job *job, size_t *off, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    char *p = job->buf + *off;

    memcpy(p, name, nlen);
    p[nlen] = '=';
    memcpy(p + nlen + 1, value, vlen);
    job->iov[job->n_iov].iov_base = p;
    job->iov[job->n_iov].iov_len = nlen + 1 + vlen;
    job->n_iov++;
    *off += nlen + 1 + vlen;
}

/* Copies the alert into a job. Returns 0 or -ENOMEM. */
static int job_new(const struct kigen_alert *alert, struct job **ret_job)
{
    const char *message_id = kigen_event_message_id(alert->event);
    struct job *job = NULL;
    char priority[16];
    size_t size, off = 0;
    int r = -ENOMEM;

    snprintf(priority, sizeof(priority), "%d", alert->priority);
    if (!message_id)
        message_id = "";
    size = sizeof("MESSAGE=") + strlen(alert->message) + sizeof("PRIORITY=") + strlen(priority) +
           sizeof("MESSAGE_ID=") + strlen(message_id) + sizeof("SYSLOG_IDENTIFIER=kigend");
    for (size_t i = 0; i < alert->n_fields; i++)
        size += strlen(alert->fields[i].name) + 1 + strlen(alert->fields[i].value);
    job = calloc(1, sizeof(*job));
    if (!job)
        goto out;
    job->event = alert->event;
    job->iov = calloc(4 + alert->n_fields, sizeof(*job->iov));
    job->buf = malloc(size);
    if (!job->iov || !job->buf)
        goto out;
    put(job, &off, "MESSAGE", alert->message);
    put(job, &off, "PRIORITY", priority);
    put(job, &off, "MESSAGE_ID", message_id);
    put(job, &off, "SYSLOG_IDENTIFIER", "kigend");
    for (size_t i = 0; i < alert->n_fields; i++) {
        const struct kigen_alert_field *f = &alert->fields[i];

        /* A name journald would refuse would lose the whole entry: leave that field out. */
        if (!is_field_name(f->name)) {
            kigen_log_debug("Alert field '%s' is no journal field name, skipping", f->name);
            continue;
        }
        put(job, &off, f->name, f->value);
    }
    *ret_job = job;
    job = NULL;
    r = 0;
out:
    job_free(job);
    return r;
}

/*
 * Thread pool: the job only. libsystemd reports success when journald's socket does not exist
 * ("fail silently if the journal is not available"); an alert lost that way is a failure.
 */
static void work_cb(uv_work_t *work)
{
    struct job *job = container_of(work, struct job, work);

    if (access(job->socket, F_OK) < 0)
        job->result = -errno;
    else
        job->result = sd_journal_sendv(job->iov, (int)job->n_iov);
}

/* The socket checked before sending: the default, or the one the limits name (tests). */
static const char *journal_socket(const struct journald_sink *js)
{
    const struct kigen_sink_limits *l = js->base.limits;

    return l && l->journal_socket ? l->journal_socket : JOURNAL_SOCKET;
}

static void after_work_cb(uv_work_t *work, int status)
{
    struct job *job = container_of(work, struct job, work);
    struct journald_sink *js = job->sink;
    bool was_closing = js->base.is_closing;
    int r = status < 0 ? status : job->result;

    js->job = NULL;
    if (r < 0 && !was_closing)
        kigen_log_errno(KIGEN_LOG_WARNING, r,
                        "Cannot send a %s alert to journald, dropping it and carrying on",
                        kigen_event_name(job->event));
    /* A retired sink may close and be freed within this call: js is not used after it. */
    kigen_sink_finish(&js->base, job->token, r < 0);
    job_free(job);
    if (was_closing)
        kigen_sink_closed(&js->base);
}

static int journald_create(const char *target, struct kigen_sink **ret_sink)
{
    struct journald_sink *js = calloc(1, sizeof(*js));

    if (!js)
        return -ENOMEM;
    *ret_sink = &js->base;
    return 0;
}

static void journald_start(struct kigen_sink *sink, uv_loop_t *loop)
{
    container_of(sink, struct journald_sink, base)->loop = loop;
}

static int journald_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct journald_sink *js = container_of(sink, struct journald_sink, base);
    struct job *job = NULL;
    int r;

    r = job_new(alert, &job);
    if (r < 0)
        goto out;
    job->sink = js;
    job->token = token;
    snprintf(job->socket, sizeof(job->socket), "%s", journal_socket(js));
    r = uv_queue_work(js->loop, &job->work, work_cb, after_work_cb);
    if (r < 0)
        goto out;
    js->job = job;
    job = NULL;
out:
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, r,
                        "Cannot send a %s alert to journald, dropping it and carrying on",
                        kigen_event_name(alert->event));
    job_free(job);
    return r;
}

static void journald_close(struct kigen_sink *sink)
{
    struct journald_sink *js = container_of(sink, struct journald_sink, base);

    /* A job that already runs cannot be stopped; its after_work_cb reports the close. */
    if (js->job)
        uv_cancel((uv_req_t *)&js->job->work);
    else
        kigen_sink_closed(sink);
}

static void journald_free(struct kigen_sink *sink)
{
    free(container_of(sink, struct journald_sink, base));
}

const struct kigen_sink_type kigen_sink_journald = {
    .name = "journald",
    .max_in_flight = 1,
    .create = journald_create,
    .start = journald_start,
    .send = journald_send,
    .close = journald_close,
    .free = journald_free,
};
