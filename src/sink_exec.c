/*
 * The exec sink (SPEC §7): alerts.exec runs as `/bin/sh -c COMMAND` once per alert, with the
 * alert in its environment: every field as NAME=value (KIGEN_EVENT, KIGEN_SHA256, ...) plus
 * KIGEN_MESSAGE, KIGEN_PRIORITY and KIGEN_MESSAGE_ID. The rest of the environment is the
 * daemon's, without the KIGEN_* variables it inherited (a password source may be one) and
 * without systemd's per-process protocol (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*), which
 * belongs to the daemon alone.
 *
 * Bounds: KIGEN_SINK_EXEC_MAX_RUNNING hooks at once (the dispatcher queues the rest), each
 * killed after exec_timeout_ms. A hook runs in its own session (UV_PROCESS_DETACHED), so the
 * timeout kills its whole process group, children included. stdin and stdout are /dev/null;
 * stderr is a pipe of which the first bytes are kept for the log and the rest discarded, so
 * a chatty hook can neither block nor flood the daemon. A hook that exits non-zero, dies of
 * a signal, times out or cannot be started is logged and counts as a failure; never more.
 *
 * A hook starts with the soft RLIMIT_NOFILE of limits->exec_nofile (the one the daemon was
 * given, not the one it raised itself to), when that is set: the script is then
 * `ulimit -S -n N`, a newline, and COMMAND. libuv's uv_spawn() has no hook between fork and
 * exec, and the limit is per process: lowering the daemon's own around uv_spawn() would make
 * every thread's next open() (the scan's workers, getaddrinfo(), uv_spawn()'s own pipes)
 * fail with EMFILE whenever more than N descriptors are open, which is what the raise is
 * for; prlimit() on the child after uv_spawn() is too late (it has exec'd and may have
 * forked). The shell's builtin sets it in the child alone, before COMMAND runs.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sink.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* After the hook exits, how long a child that kept its stderr open may hold us. */
#define STDERR_GRACE_MS 200
#define STDERR_KEEP     240 /* bytes of stderr kept for the log; the rest is read and dropped */

struct exec_job {
    struct exec_sink *sink;
    void *token; /* NULL once reported */
    enum kigen_event event;
    uv_process_t process;
    uv_pipe_t err;    /* the hook's stderr */
    uv_timer_t timer; /* the timeout; after the exit, the stderr grace */
    unsigned open;    /* handles not yet closed */
    bool is_running;  /* spawned and not yet exited */
    bool is_err_open;
    bool is_timed_out;
    int spawn_error;
    int64_t exit_status;
    int term_signal;
    char errline[STDERR_KEEP + 1];
    size_t errlen;
    char readbuf[512];
    struct exec_job *next;
};

struct exec_sink {
    struct kigen_sink base;
    uv_loop_t *loop;
    char *command;
    struct exec_job *jobs; /* every job with a handle open */
};

/* systemd's protocol with this very process: a hook must not speak it for the daemon. */
static bool is_daemon_only(const char *env)
{
    static const char *const names[] = { "NOTIFY_SOCKET=",  "LISTEN_FDS=",   "LISTEN_PID=",
                                         "LISTEN_FDNAMES=", "WATCHDOG_PID=", "WATCHDOG_USEC=" };

    if (strncmp(env, "KIGEN_", 6) == 0)
        return true;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(env, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

static bool is_env_name(const char *name)
{
    if (!*name || (*name >= '0' && *name <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

static void env_free(char **env, size_t first_owned)
{
    if (!env)
        return;
    for (size_t i = first_owned; env[i]; i++)
        free(env[i]);
    free(env);
}

/*
 * The hook's environment: borrowed entries of environ, then owned "NAME=value" strings from
 * *ret_first_owned on. Returns 0 or -ENOMEM.
 */
static int env_build(const struct kigen_alert *alert, char ***ret_env, size_t *ret_first_owned)
{
    const char *message_id = kigen_event_message_id(alert->event);
    char **env = NULL;
    size_t n = 0, k = 0, first_owned;
    int r = -ENOMEM;

    while (environ && environ[n])
        n++;
    env = calloc(n + alert->n_fields + 4, sizeof(*env));
    if (!env)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!is_daemon_only(environ[i]))
            env[k++] = environ[i];
    first_owned = k;
    for (size_t i = 0; i < alert->n_fields; i++) {
        const struct kigen_alert_field *f = &alert->fields[i];

        if (!is_env_name(f->name) || strcmp(f->name, "KIGEN_MESSAGE") == 0 ||
            strcmp(f->name, "KIGEN_PRIORITY") == 0 || strcmp(f->name, "KIGEN_MESSAGE_ID") == 0)
            continue;
        if (asprintf(&env[k], "%s=%s", f->name, f->value) < 0)
            goto fail;
        k++;
    }
    if (asprintf(&env[k], "KIGEN_MESSAGE=%s", alert->message) < 0)
        goto fail;
    k++;
    if (asprintf(&env[k], "KIGEN_PRIORITY=%d", alert->priority) < 0)
        goto fail;
    k++;
    if (asprintf(&env[k], "KIGEN_MESSAGE_ID=%s", message_id ? message_id : "") < 0)
        goto fail;
    *ret_env = env;
    *ret_first_owned = first_owned;
    return 0;
fail:
    env[k] = NULL; /* asprintf() leaves it undefined */
    env_free(env, first_owned);
    return r;
}

static void job_unlink(struct exec_job *job)
{
    struct exec_job **p = &job->sink->jobs;

    while (*p != job)
        p = &(*p)->next;
    *p = job->next;
}

static void handle_closed_cb(uv_handle_t *handle)
{
    struct exec_job *job = handle->data;
    struct exec_sink *es = job->sink;

    if (--job->open > 0)
        return;
    job_unlink(job);
    free(job);
    if (es->base.is_closing && !es->jobs)
        kigen_sink_closed(&es->base);
}

static void close_handle(struct exec_job *job, uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, handle_closed_cb);
}

static void close_err(struct exec_job *job)
{
    if (!job->is_err_open)
        return;
    job->is_err_open = false;
    close_handle(job, (uv_handle_t *)&job->err);
}

/* The first line the hook wrote to stderr, printable, for the log. */
static const char *first_line(struct exec_job *job)
{
    job->errline[job->errlen] = '\0';
    for (size_t i = 0; i < job->errlen; i++) {
        if (job->errline[i] == '\n' || job->errline[i] == '\r') {
            job->errline[i] = '\0';
            break;
        }
        if ((unsigned char)job->errline[i] < 32 || job->errline[i] == 127)
            job->errline[i] = '?';
    }
    return job->errline;
}

/* Logs why the hook failed, once, at warning level. Returns whether it failed. */
static bool report(struct exec_job *job)
{
    const char *event = kigen_event_name(job->event);
    const char *line = first_line(job);
    const char *sep = *line ? ": " : "";

    if (job->spawn_error) {
        kigen_log_errno(KIGEN_LOG_WARNING, job->spawn_error,
                        "Cannot run the alert hook for %s, carrying on", event);
        return true;
    }
    if (job->is_timed_out) {
        kigen_log_warn("Alert hook for %s ran longer than %llu ms and was killed, carrying on%s%s",
                       event, (unsigned long long)job->sink->base.limits->exec_timeout_ms, sep,
                       line);
        return true;
    }
    if (job->term_signal) {
        kigen_log_warn("Alert hook for %s was killed by signal %d (%s), carrying on%s%s", event,
                       job->term_signal, strsignal(job->term_signal), sep, line);
        return true;
    }
    if (job->exit_status != 0) {
        kigen_log_warn("Alert hook for %s exited with status %lld, carrying on%s%s", event,
                       (long long)job->exit_status, sep, line);
        return true;
    }
    return false;
}

/* Once the hook has exited and its stderr is closed: reports the alert and closes the job. */
static void maybe_done(struct exec_job *job)
{
    struct exec_sink *es = job->sink;
    void *token = job->token;
    bool failed;

    if (job->is_running || job->is_err_open || !token)
        return;
    job->token = NULL;
    failed = es->base.is_closing ? true : report(job);
    close_handle(job, (uv_handle_t *)&job->timer);
    close_handle(job, (uv_handle_t *)&job->process);
    kigen_sink_finish(&es->base, token, failed);
}

static void timer_cb(uv_timer_t *timer);

static void exit_cb(uv_process_t *process, int64_t exit_status, int term_signal)
{
    struct exec_job *job = container_of(process, struct exec_job, process);

    job->is_running = false;
    job->exit_status = exit_status;
    job->term_signal = term_signal;
    uv_timer_stop(&job->timer);
    if (job->is_err_open)
        uv_timer_start(&job->timer, timer_cb, STDERR_GRACE_MS, 0);
    maybe_done(job);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct exec_job *job = handle->data;

    *buf = uv_buf_init(job->readbuf, sizeof(job->readbuf));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct exec_job *job = stream->data;

    if (nread > 0) {
        size_t keep = STDERR_KEEP - job->errlen;

        if (keep > (size_t)nread)
            keep = (size_t)nread;
        memcpy(job->errline + job->errlen, buf->base, keep);
        job->errlen += keep;
        return;
    }
    if (nread < 0) {
        close_err(job);
        maybe_done(job);
    }
}

static void timer_cb(uv_timer_t *timer)
{
    struct exec_job *job = container_of(timer, struct exec_job, timer);

    if (job->is_running) {
        /* The whole session: a shell's children die with it. */
        job->is_timed_out = true;
        if (uv_kill(-job->process.pid, SIGKILL) < 0)
            uv_process_kill(&job->process, SIGKILL);
        return;
    }
    /* The hook exited but something it started still holds stderr: stop listening. */
    close_err(job);
    maybe_done(job);
}

static int exec_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct exec_sink *es = container_of(sink, struct exec_sink, base);
    struct exec_job *job = calloc(1, sizeof(*job));
    char *args[] = { "sh", "-c", es->command, NULL };
    char *script = NULL;
    uv_stdio_container_t stdio[3];
    uv_process_options_t opts = { 0 };
    char **env = NULL;
    size_t first_owned = 0;
    int r = -ENOMEM;

    if (!job)
        goto fail;
    if (sink->limits->exec_nofile) {
        /* A line of its own: COMMAND is parsed as it would be alone. */
        if (asprintf(&script, "ulimit -S -n %llu\n%s",
                     (unsigned long long)sink->limits->exec_nofile, es->command) < 0) {
            script = NULL;
            goto fail;
        }
        args[2] = script;
    }
    r = env_build(alert, &env, &first_owned);
    if (r < 0)
        goto fail;
    job->sink = es;
    job->token = token;
    job->event = alert->event;
    job->process.data = job->err.data = job->timer.data = job;
    uv_pipe_init(es->loop, &job->err, 0);
    uv_timer_init(es->loop, &job->timer);
    job->open = 3; /* the process handle is to be closed even when uv_spawn() fails */
    job->is_err_open = true;
    job->next = es->jobs;
    es->jobs = job;

    stdio[0].flags = UV_IGNORE; /* libuv opens /dev/null for an ignored 0, 1 or 2 */
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&job->err;
    opts.exit_cb = exit_cb;
    opts.file = "/bin/sh";
    opts.args = args;
    opts.env = env;
    opts.flags = UV_PROCESS_DETACHED;
    opts.stdio_count = 3;
    opts.stdio = stdio;
    r = uv_spawn(es->loop, &job->process, &opts);
    env_free(env, first_owned);
    free(script);
    if (r < 0) {
        /* Reported now; the handles close behind it. */
        job->spawn_error = r;
        job->token = NULL;
        report(job);
        close_err(job);
        close_handle(job, (uv_handle_t *)&job->timer);
        close_handle(job, (uv_handle_t *)&job->process);
        return r;
    }
    job->is_running = true;
    uv_timer_start(&job->timer, timer_cb, sink->limits->exec_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&job->err, alloc_cb, read_cb) < 0)
        close_err(job);
    return 0;
fail:
    free(script);
    free(job);
    return kigen_log_errno(KIGEN_LOG_WARNING, r, "Cannot run the alert hook for %s, carrying on",
                           kigen_event_name(alert->event));
}

static int exec_create(const char *target, struct kigen_sink **ret_sink)
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

    /* Each killed hook's exit_cb reports its alert and closes its handles. */
    for (struct exec_job *job = es->jobs; job; job = job->next)
        if (job->is_running && uv_kill(-job->process.pid, SIGKILL) < 0)
            uv_process_kill(&job->process, SIGKILL);
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
