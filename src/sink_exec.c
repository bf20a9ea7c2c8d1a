/*
 * The exec sink (SPEC §7): alerts.exec runs as `/bin/sh -c COMMAND` once per alert, with the
 * alert in its environment: every field as NAME=value (KIGEN_EVENT, KIGEN_SHA256, ...) plus
 * KIGEN_MESSAGE, KIGEN_PRIORITY and KIGEN_MESSAGE_ID. The rest of the environment is the
 * daemon's, without the KIGEN_* variables it inherited (a password source may be one) and
 * without systemd's per-process protocol (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*), which
 * belongs to the daemon alone.
 *
 * Bounds: KIGEN_SINK_EXEC_MAX_RUNNING hooks at once (the dispatcher queues the rest), each
 * run by command.c: in its own session, killed with its children after exec_timeout_ms, with
 * the soft RLIMIT_NOFILE of limits->exec_nofile (the one the daemon was given, not the one it
 * raised itself to) when that is set, stdin and stdout /dev/null, the first line of stderr
 * kept for the log. A hook that exits non-zero, dies of a signal, times out or cannot be
 * started is logged and counts as a failure; never more.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "log.h"
#include "sink.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct exec_job {
    struct exec_sink *sink;
    void *token;
    enum kigen_event event;
    struct kigen_command *cmd;
    struct exec_job *next;
};

struct exec_sink {
    struct kigen_sink base;
    uv_loop_t *loop;
    char *command;
    struct exec_job *jobs; /* every job whose command has not ended yet */
};

static bool is_env_name(const char *name)
{
    if (!*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* The hook's environment: the daemon's (see kigen_command_env_build) and the alert's. NULL: ENOMEM.
 */
static char **env_build(const struct kigen_alert *alert)
{
    const char *message_id = kigen_event_message_id(alert->event);
    char **extra = calloc(alert->n_fields + 4, sizeof(*extra)), **env = NULL;
    size_t k = 0;

    if (!extra)
        return NULL;
    for (size_t i = 0; i < alert->n_fields; i++) {
        const struct kigen_alert_field *f = &alert->fields[i];

        if (!is_env_name(f->name) || strcmp(f->name, "KIGEN_MESSAGE") == 0 ||
            strcmp(f->name, "KIGEN_PRIORITY") == 0 || strcmp(f->name, "KIGEN_MESSAGE_ID") == 0)
            continue;
        if (asprintf(&extra[k], "%s=%s", f->name, f->value) < 0)
            goto out;
        k++;
    }
    if (asprintf(&extra[k], "KIGEN_MESSAGE=%s", alert->message) < 0)
        goto out;
    k++;
    if (asprintf(&extra[k], "KIGEN_PRIORITY=%d", alert->priority) < 0)
        goto out;
    k++;
    if (asprintf(&extra[k], "KIGEN_MESSAGE_ID=%s", message_id ? message_id : "") < 0)
        goto out;
    k++;
    env = kigen_command_env_build(extra, k);
out:
    extra[k] = NULL; /* asprintf() leaves a failed one undefined */
    kigen_command_env_free(extra);
    return env;
}

static void job_unlink(struct exec_job *job)
{
    struct exec_job **p = &job->sink->jobs;

    while (*p != job)
        p = &(*p)->next;
    *p = job->next;
}

/* Logs why the hook failed, once, at warning level. Returns whether it failed. */
static bool report(struct exec_sink *es, enum kigen_event ev,
                   const struct kigen_command_result *res)
{
    const char *event = kigen_event_name(ev);
    const char *line = res->errline;
    const char *sep = *line ? ": " : "";

    if (res->spawn_error) {
        kigen_log_errno(KIGEN_LOG_WARNING, res->spawn_error,
                        "Cannot run the alert hook for %s, carrying on", event);
        return true;
    }
    if (res->is_timed_out) {
        kigen_log_warn("Alert hook for %s ran longer than %llu ms and was killed, carrying on%s%s",
                       event, (unsigned long long)es->base.limits->exec_timeout_ms, sep, line);
        return true;
    }
    if (res->term_signal) {
        kigen_log_warn("Alert hook for %s was killed by signal %d (%s), carrying on%s%s", event,
                       res->term_signal, strsignal(res->term_signal), sep, line);
        return true;
    }
    if (res->exit_status != 0) {
        kigen_log_warn("Alert hook for %s exited with status %lld, carrying on%s%s", event,
                       (long long)res->exit_status, sep, line);
        return true;
    }
    return false;
}

static void spawn_done_cb(const struct kigen_command_result *res, void *data)
{
    struct exec_job *job = data;
    struct exec_sink *es = job->sink;
    bool failed = es->base.is_closing ? true : report(es, job->event, res);
    void *token = job->token;

    job_unlink(job);
    free(job);
    kigen_sink_finish(&es->base, token, failed);
    if (es->base.is_closing && !es->jobs)
        kigen_sink_closed(&es->base);
}

static int exec_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct exec_sink *es = container_of(sink, struct exec_sink, base);
    struct exec_job *job = calloc(1, sizeof(*job));
    char *args[] = { "/bin/sh", "-c", es->command, NULL };
    struct kigen_command_opts opts = {
        .args = args,
        .timeout_ms = sink->limits->exec_timeout_ms,
        .nofile = sink->limits->exec_nofile,
    };
    int r = -ENOMEM;

    if (!job)
        goto fail;
    opts.env = env_build(alert);
    if (!opts.env)
        goto fail;
    job->sink = es;
    job->token = token;
    job->event = alert->event;
    r = kigen_command_start(es->loop, &opts, spawn_done_cb, job, &job->cmd);
    kigen_command_env_free(opts.env);
    if (r < 0)
        goto fail;
    job->next = es->jobs;
    es->jobs = job;
    return 0;
fail:
    free(job);
    return kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot run the alert hook for %s, carrying on",
                           kigen_event_name(alert->event));
}

static int exec_create(const char *target, const struct kigen_config *config,
                       struct kigen_sink **ret_sink)
{
    struct exec_sink *es = calloc(1, sizeof(*es));

    if (!es)
        return -ENOMEM;
    es->command = strdup(target);
    if (!es->command) {
        free(es);
        return -ENOMEM;
    }
    *ret_sink = &es->base;
    return 0;
}

static void exec_start(struct kigen_sink *sink, uv_loop_t *loop)
{
    container_of(sink, struct exec_sink, base)->loop = loop;
}

static void exec_close(struct kigen_sink *sink)
{
    struct exec_sink *es = container_of(sink, struct exec_sink, base);

    /* Each killed hook's spawn_done_cb reports its alert. */
    for (struct exec_job *job = es->jobs; job; job = job->next)
        kigen_command_kill(job->cmd);
    if (!es->jobs)
        kigen_sink_closed(sink);
}

static void exec_free(struct kigen_sink *sink)
{
    struct exec_sink *es = container_of(sink, struct exec_sink, base);

    free(es->command);
    free(es);
}

const struct kigen_sink_type kigen_sink_exec = {
    .name = "exec",
    .max_in_flight = KIGEN_SINK_EXEC_MAX_RUNNING,
    .create = exec_create,
    .start = exec_start,
    .send = exec_send,
    .close = exec_close,
    .free = exec_free,
};
