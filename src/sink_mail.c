/*
 * The mail sink (SPEC §12): one message per alert, composed by mail.c, handed to
 * alerts.mail.sendmail with `-oi -t` on its stdin; exit 0 is delivered.
 *
 * Durable: send() writes the alert to state_dir/deliveries/mail-<key>.json (deliveries.c) and
 * the dispatcher hears it is done once that file is written, so the engine's outbox empties
 * at once whatever the mail server does. The queue then attempts it, at most
 * KIGEN_SINK_MAIL_MAX_RUNNING commands at once, each run by command.c like an exec hook
 * (its own session, killed after exec_timeout_ms, the given RLIMIT_NOFILE, the first line of
 * stderr kept as the reason), and retries with backoff until retry_for_ms.
 *
 * The log names the sink, the event, the sha256 prefix and sendmail's first stderr line;
 * never the message, its recipients or anything else it holds (personal data).
 *
 * A reload keeps the sink and its queue: the new settings (command, From, admins,
 * to_holders, timezone) apply from the next attempt. The message is composed at each attempt
 * with the Date of the first queueing and a Message-ID made of the key, so a retry sends the
 * same message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "command.h"
#include "deliveries.h"
#include "log.h"
#include "mail.h"
#include "sink.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define KIGEN_SINK_MAIL_MAX_RUNNING 2
#define KEEP_MS                     (3600 * 1000)      /* a delivered alert's key is kept an hour */
#define DIGEST_KEEP_MS              (36 * 3600 * 1000) /* a day's digest key, over the day */

struct mail_settings {
    char **argv; /* sendmail's, then "-oi", "-t", NULL */
    char *from;
    char **admins;
    size_t n_admins;
    bool to_holders;
    struct kigen_tz *tz; /* NULL: UTC */
    enum kigen_language language;
};

struct mail_job {
    struct mail_sink *sink;
    struct kigen_delivery *delivery;
    struct kigen_command *cmd;
    enum kigen_event event;
    struct mail_job *next;
};

struct mail_add {
    struct mail_sink *sink;
    void *token;
};

struct mail_sink {
    struct kigen_sink base;
    uv_loop_t *loop;
    char *dir;
    char host[256];
    struct mail_settings set;
    struct kigen_deliveries *q;
    struct mail_job *jobs;
    unsigned adds; /* alerts whose file is being written */
    bool is_q_open;
    bool is_no_recipient_logged;
};

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void settings_done(struct mail_settings *s)
{
    strv_free(s->argv);
    free(s->from);
    strv_free(s->admins);
    kigen_tz_free(s->tz);
    memset(s, 0, sizeof(*s));
}

/* A NULL-terminated copy of v, with the tail strings appended. */
static char **strv_copy(const struct kigen_strv *v, const char *const *tail, size_t n_tail)
{
    char **c = calloc(v->n + n_tail + 1, sizeof(*c));

    for (size_t i = 0; c && i < v->n + n_tail; i++) {
        c[i] = strdup(i < v->n ? v->v[i] : tail[i - v->n]);
        if (!c[i]) {
            strv_free(c);
            return NULL;
        }
    }
    return c;
}

static int settings_init(struct mail_settings *s, const struct kigen_config *config)
{
    static const char *const flags[] = { "-oi", "-t" };
    const struct kigen_mail *mail = &config->alerts.mail;
    int r;

    memset(s, 0, sizeof(*s));
    s->argv = strv_copy(&mail->sendmail, flags, 2);
    s->admins = strv_copy(&config->holders.admins, NULL, 0);
    s->n_admins = config->holders.admins.n;
    s->to_holders = mail->to_holders;
    s->language = config->language;
    if (mail->from && !(s->from = strdup(mail->from)))
        goto nomem;
    if (!s->argv || !s->admins)
        goto nomem;
    r = kigen_tz_load(config->timezone, &s->tz);
    if (r == -ENOMEM)
        goto nomem;
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot load the time zone '%s' for mail, using UTC",
                        config->timezone);
    return 0;
nomem:
    settings_done(s);
    return -ENOMEM;
}

/* Whether an alert can have a recipient under the settings. */
static bool has_recipient(const struct mail_settings *s, const struct kigen_alert *alert)
{
    const char *email = kigen_alert_get(alert, "KIGEN_HOLDER_EMAIL");

    return s->n_admins > 0 ||
           (s->to_holders && email && *email && alert->event <= KIGEN_EVENT_CERT_GONE);
}

static void maybe_closed(struct mail_sink *ms)
{
    if (ms->base.is_closing && !ms->is_q_open && ms->adds == 0 && !ms->jobs)
        kigen_sink_closed(&ms->base);
}

/* ---- attempts ---- */

static void job_unlink(struct mail_job *job)
{
    struct mail_job **p = &job->sink->jobs;

    while (*p != job)
        p = &(*p)->next;
    *p = job->next;
}

static void spawn_done_cb(const struct kigen_command_result *res, void *data)
{
    struct mail_job *job = data;
    struct mail_sink *ms = job->sink;
    char why[KIGEN_COMMAND_ERR_KEEP + 96] = "";
    const char *sep = *res->errline ? ": " : "";

    if (res->spawn_error)
        snprintf(why, sizeof(why), "cannot run %s: %s", ms->set.argv[0],
                 strerror(-res->spawn_error));
    else if (res->is_timed_out)
        snprintf(why, sizeof(why), "sendmail ran longer than %llu ms and was killed%s%s",
                 (unsigned long long)ms->base.limits->exec_timeout_ms, sep, res->errline);
    else if (res->term_signal)
        snprintf(why, sizeof(why), "sendmail was killed by signal %d%s%s", res->term_signal, sep,
                 res->errline);
    else if (res->exit_status)
        snprintf(why, sizeof(why), "sendmail exited with status %lld%s%s",
                 (long long)res->exit_status, sep, res->errline);
    job_unlink(job);
    kigen_deliveries_attempted(job->delivery, kigen_command_result_ok(res), why);
    free(job);
    maybe_closed(ms);
}

/* The daily digest a carrier alert holds (kigen_sink_mail_digest), composed. */
static int compose_digest(const struct kigen_mail_ctx *ctx, const struct kigen_alert *carrier,
                          const char *key, char **ret_text, size_t *ret_len)
{
    json_t *items = json_loads(carrier->message, 0, NULL), *it;
    struct kigen_digest_item *v = NULL;
    size_t n = json_array_size(items), i;
    int r = -EINVAL;

    if (!json_is_array(items) || !n)
        goto out;
    v = calloc(n, sizeof(*v));
    if (!v) {
        r = -ENOMEM;
        goto out;
    }
    json_array_foreach(items, i, it)
    {
        json_int_t kind, not_after, days_left;
        const char *what, *where, *holder = NULL;

        if (json_unpack(it, "{s:I, s:s, s:s, s?s, s:I, s:I}", "kind", &kind, "what", &what, "where",
                        &where, "holder", &holder, "not_after", &not_after, "days_left",
                        &days_left) < 0 ||
            kind < KIGEN_DIGEST_EXPIRED || kind > KIGEN_DIGEST_REVOKED)
            goto out;
        v[i] = (struct kigen_digest_item){
            (enum kigen_digest_kind)kind, what, where, holder, not_after, days_left
        };
    }
    r = kigen_mail_digest(ctx, v, n, key, ret_text, ret_len);
out:
    free(v);
    json_decref(items);
    return r;
}

static int attempt(void *data, struct kigen_delivery *d, const struct kigen_alert *alert,
                   const char *key, int64_t created_ms)
{
    struct mail_sink *ms = data;
    struct kigen_mail_ctx ctx = {
        .from = ms->set.from,
        .admins = ms->set.admins,
        .n_admins = ms->set.n_admins,
        .to_holders = ms->set.to_holders,
        .tz = ms->set.tz,
        .language = ms->set.language,
        .host = ms->host,
        .date = created_ms / 1000,
    };
    struct kigen_command_opts opts = {
        .args = ms->set.argv,
        .timeout_ms = ms->base.limits->exec_timeout_ms,
        .nofile = ms->base.limits->exec_nofile,
    };
    struct mail_job *job = NULL;
    char *text = NULL;
    size_t len = 0;
    int r;

    r = kigen_alert_get(alert, KIGEN_SINK_MAIL_DIGEST)
            ? compose_digest(&ctx, alert, key, &text, &len)
            : kigen_mail_compose(&ctx, alert, key, &text, &len);
    if (r < 0)
        goto out;
    job = calloc(1, sizeof(*job));
    opts.env = kigen_command_env_build(NULL, 0);
    if (!job || !opts.env) {
        r = -ENOMEM;
        goto out;
    }
    opts.input = text;
    opts.input_len = len;
    job->sink = ms;
    job->delivery = d;
    job->event = alert->event;
    r = kigen_command_start(ms->loop, &opts, spawn_done_cb, job, &job->cmd);
    if (r < 0)
        goto out;
    job->next = ms->jobs;
    ms->jobs = job;
    job = NULL;
out:
    kigen_command_env_free(opts.env);
    free(text);
    free(job);
    return r;
}

static void abort_attempt(void *data, struct kigen_delivery *d)
{
    struct mail_sink *ms = data;

    for (struct mail_job *job = ms->jobs; job; job = job->next)
        if (job->delivery == d)
            kigen_command_kill(job->cmd);
}

static const struct kigen_deliveries_ops mail_ops = {
    .max_running = KIGEN_SINK_MAIL_MAX_RUNNING,
    .attempt = attempt,
    .abort = abort_attempt,
};

/* ---- the sink ---- */

static void added_cb(void *data, int status)
{
    struct mail_add *add = data;
    struct mail_sink *ms = add->sink;

    ms->adds--;
    kigen_sink_finish(&ms->base, add->token, status < 0);
    free(add);
    maybe_closed(ms);
}

static int mail_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct mail_sink *ms = container_of(sink, struct mail_sink, base);
    struct mail_add *add = NULL;
    int r;

    if (!has_recipient(&ms->set, alert)) {
        if (!ms->is_no_recipient_logged)
            kigen_log_debug("No mail for %s: no holder address and no admins",
                            kigen_event_name(alert->event));
        ms->is_no_recipient_logged = true;
        return 1;
    }
    if (!ms->q)
        return kigen_log_errno(KIGEN_LOG_WARNING, -ENOMEM, "Cannot queue mail for %s, carrying on",
                               kigen_event_name(alert->event));
    add = malloc(sizeof(*add));
    if (!add)
        return kigen_log_errno(KIGEN_LOG_WARNING, -ENOMEM, "Cannot queue mail for %s, carrying on",
                               kigen_event_name(alert->event));
    add->sink = ms;
    add->token = token;
    r = kigen_deliveries_add(ms->q, NULL, alert, KEEP_MS, added_cb, add);
    if (r == -EEXIST) {
        /* Held already (the engine's outbox, sent again after a crash): not twice. */
        free(add);
        return 1;
    }
    if (r < 0) {
        free(add);
        return kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot queue mail for %s, carrying on",
                               kigen_event_name(alert->event));
    }
    ms->adds++;
    return 0;
}

static void digest_added_cb(void *data, int status)
{
    struct mail_sink *ms = data;

    (void)status; /* a file that could not be written: the digest goes on from memory */
    ms->adds--;
    maybe_closed(ms);
}

int kigen_sink_mail_digest(struct kigen_sink *sink, const char *key,
                           const struct kigen_alert *carrier)
{
    struct mail_sink *ms = container_of(sink, struct mail_sink, base);
    int r;

    if (!ms->q || sink->is_closing)
        return -ESHUTDOWN;
    r = kigen_deliveries_add(ms->q, key, carrier, DIGEST_KEEP_MS, digest_added_cb, ms);
    if (r == -EEXIST)
        return 0; /* this day's went already */
    if (r == 0)
        ms->adds++;
    return r;
}

static int mail_create(const char *target, const struct kigen_config *config,
                       struct kigen_sink **ret_sink)
{
    struct mail_sink *ms = calloc(1, sizeof(*ms));

    if (!ms)
        return -ENOMEM;
    if (asprintf(&ms->dir, "%s/deliveries", config->state_dir) < 0) {
        free(ms);
        return -ENOMEM;
    }
    if (settings_init(&ms->set, config) < 0) {
        free(ms->dir);
        free(ms);
        return -ENOMEM;
    }
    if (gethostname(ms->host, sizeof(ms->host) - 1) < 0 || !*ms->host)
        snprintf(ms->host, sizeof(ms->host), "localhost");
    *ret_sink = &ms->base;
    return 0;
}

static int mail_configure(struct kigen_sink *sink, const struct kigen_config *config)
{
    struct mail_sink *ms = container_of(sink, struct mail_sink, base);
    struct mail_settings s;

    if (settings_init(&s, config) < 0)
        return -ENOMEM;
    settings_done(&ms->set);
    ms->set = s;
    ms->is_no_recipient_logged = false;
    return 0;
}

static void mail_start(struct kigen_sink *sink, uv_loop_t *loop)
{
    struct mail_sink *ms = container_of(sink, struct mail_sink, base);
    int r;

    ms->loop = loop;
    /* The dispatcher's limits outlive the sink; the queue reads them where they are. */
    r = kigen_deliveries_new(loop, ms->dir, "mail", &mail_ops, ms, &sink->limits->durable, &ms->q);
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot start the mail queue");
    ms->is_q_open = ms->q != NULL;
}

static void q_closed_cb(void *data)
{
    struct mail_sink *ms = data;

    ms->is_q_open = false;
    maybe_closed(ms);
}

static void mail_close(struct kigen_sink *sink)
{
    struct mail_sink *ms = container_of(sink, struct mail_sink, base);

    if (ms->q)
        kigen_deliveries_close(ms->q, q_closed_cb, ms);
    else
        maybe_closed(ms);
}

static void mail_free(struct kigen_sink *sink)
{
    struct mail_sink *ms = container_of(sink, struct mail_sink, base);

    kigen_deliveries_free(ms->q);
    settings_done(&ms->set);
    free(ms->dir);
    free(ms);
}

static void mail_stats(const struct kigen_sink *sink, struct kigen_sink_stats *ret)
{
    const struct mail_sink *ms = container_of(sink, const struct mail_sink, base);

    ret->pending = ms->q ? kigen_deliveries_pending(ms->q) : 0;
    ret->failed = ms->q ? kigen_deliveries_failed(ms->q) : 0;
}

const struct kigen_sink_type kigen_sink_mail = {
    .name = "mail",
    .max_in_flight = 64, /* file writes on the thread pool; attempts have their own bound */
    .create = mail_create,
    .configure = mail_configure,
    .start = mail_start,
    .send = mail_send,
    .close = mail_close,
    .free = mail_free,
    .stats = mail_stats,
};
