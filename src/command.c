/*
 * One bounded command (command.h): the process, a pipe from its stderr, a pipe to its stdin
 * when there is input, and one timer (the timeout; after the exit, the stderr grace).
 *
 * A command runs in its own session (UV_PROCESS_DETACHED), so the timeout kills its whole
 * process group, children included. Of stderr the first bytes are kept and the rest read and
 * dropped, so a chatty command can neither block nor flood the daemon.
 *
 * The soft RLIMIT_NOFILE: libuv's uv_spawn() has no hook between fork and exec, and the limit
 * is per process: lowering the daemon's own around uv_spawn() would make every thread's next
 * open() fail with EMFILE whenever more descriptors are open, which is what the daemon raised
 * it for; prlimit() on the child after uv_spawn() is too late (it has exec'd and may have
 * forked). So the command runs as `/bin/sh -c 'ulimit -S -n N; exec "$@"' sh ARGV...`: the
 * shell's builtin sets it in the child alone, then becomes the command.
 */
#include "command.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* After the command exits, how long a child that kept its stderr open may hold us. */
#define STDERR_GRACE_MS 200

struct kigen_command {
    kigen_command_done_cb done_cb;
    void *data;
    uv_process_t process;
    uv_pipe_t err;    /* the command's stderr */
    uv_pipe_t in;     /* its stdin, when there is input */
    uv_write_t write; /* the input */
    uv_timer_t timer; /* the timeout; after the exit, the stderr grace */
    char *input;
    size_t input_len;
    unsigned open; /* handles not yet closed */
    bool is_running;
    bool is_err_open;
    bool is_in_open;
    bool is_done; /* the handles are closing: the result is settled */
    struct kigen_command_result result;
    char errline[KIGEN_COMMAND_ERR_KEEP + 1];
    size_t errlen;
    char readbuf[512];
};

bool kigen_command_result_ok(const struct kigen_command_result *result)
{
    return !result->spawn_error && !result->is_timed_out && !result->term_signal &&
           result->exit_status == 0;
}

/* systemd's protocol with this very process: a command must not speak it for the daemon. */
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

void kigen_command_env_free(char **env)
{
    if (!env)
        return;
    for (size_t i = 0; env[i]; i++)
        free(env[i]);
    free(env);
}

char **kigen_command_env_build(char *const *extra, size_t n)
{
    char **env;
    size_t n_env = 0, k = 0;

    while (environ && environ[n_env])
        n_env++;
    env = calloc(n_env + n + 1, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n_env + n; i++) {
        const char *s = i < n_env ? environ[i] : extra[i - n_env];

        if (i < n_env && is_daemon_only(s))
            continue;
        env[k] = strdup(s);
        if (!env[k]) {
            kigen_command_env_free(env);
            return NULL;
        }
        k++;
    }
    return env;
}

/* The first line the command wrote to stderr, printable, for the log. */
static void settle_errline(struct kigen_command *job)
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
    job->result.errline = job->errline;
}

static void handle_closed_cb(uv_handle_t *handle)
{
    struct kigen_command *job = handle->data;

    if (--job->open > 0)
        return;
    settle_errline(job);
    job->done_cb(&job->result, job->data);
    free(job->input);
    free(job);
}

static void close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, handle_closed_cb);
}

static void close_err(struct kigen_command *job)
{
    if (!job->is_err_open)
        return;
    job->is_err_open = false;
    close_handle((uv_handle_t *)&job->err);
}

static void close_in(struct kigen_command *job)
{
    if (!job->is_in_open)
        return;
    job->is_in_open = false;
    close_handle((uv_handle_t *)&job->in);
}

/* Once the command has exited and its stderr is closed: closes the rest; done_cb follows. */
static void maybe_done(struct kigen_command *job)
{
    if (job->is_running || job->is_err_open || job->is_done)
        return;
    job->is_done = true;
    close_in(job);
    close_handle((uv_handle_t *)&job->timer);
    close_handle((uv_handle_t *)&job->process);
}

static void timer_cb(uv_timer_t *timer);

static void exit_cb(uv_process_t *process, int64_t exit_status, int term_signal)
{
    struct kigen_command *job = container_of(process, struct kigen_command, process);

    job->is_running = false;
    job->result.exit_status = exit_status;
    job->result.term_signal = term_signal;
    uv_timer_stop(&job->timer);
    if (job->is_err_open)
        uv_timer_start(&job->timer, timer_cb, STDERR_GRACE_MS, 0);
    maybe_done(job);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct kigen_command *job = handle->data;

    *buf = uv_buf_init(job->readbuf, sizeof(job->readbuf));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct kigen_command *job = stream->data;

    if (nread > 0) {
        size_t keep = KIGEN_COMMAND_ERR_KEEP - job->errlen;

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

/* All of the input is written, or the command stopped reading: closing is its end of file. */
static void write_cb(uv_write_t *req, int status)
{
    close_in(req->data);
}

void kigen_command_kill(struct kigen_command *job)
{
    if (!job->is_running)
        return;
    /* The whole session: a shell's children die with it. */
    if (uv_kill(-job->process.pid, SIGKILL) < 0)
        uv_process_kill(&job->process, SIGKILL);
}

static void timer_cb(uv_timer_t *timer)
{
    struct kigen_command *job = container_of(timer, struct kigen_command, timer);

    if (job->is_running) {
        job->result.is_timed_out = true;
        kigen_command_kill(job);
        return;
    }
    /* The command exited but something it started still holds stderr: stop listening. */
    close_err(job);
    maybe_done(job);
}

/* args, behind `sh -c 'ulimit -S -n N; exec "$@"' sh` when nofile is set. */
static int make_argv(const struct kigen_command_opts *opts, char ***ret_args, char **ret_script)
{
    size_t n = 0;
    char **v;

    *ret_script = NULL;
    if (!opts->nofile) {
        *ret_args = NULL;
        return 0;
    }
    while (opts->args[n])
        n++;
    v = calloc(n + 5, sizeof(*v));
    if (!v || asprintf(ret_script, "ulimit -S -n %llu\nexec \"$@\"",
                       (unsigned long long)opts->nofile) < 0) {
        free(v);
        *ret_script = NULL;
        return -ENOMEM;
    }
    v[0] = "/bin/sh";
    v[1] = "-c";
    v[2] = *ret_script;
    v[3] = "sh";
    memcpy(v + 4, opts->args, n * sizeof(*v));
    *ret_args = v;
    return 0;
}

int kigen_command_start(uv_loop_t *loop, const struct kigen_command_opts *opts,
                        kigen_command_done_cb done_cb, void *data, struct kigen_command **ret_job)
{
    struct kigen_command *job = calloc(1, sizeof(*job));
    uv_process_options_t po = { 0 };
    uv_stdio_container_t stdio[3];
    char **wrapped = NULL, *script = NULL;
    uv_buf_t buf;
    int r;

    if (!job)
        return -ENOMEM;
    if (opts->input_len) {
        job->input = malloc(opts->input_len);
        if (!job->input)
            goto nomem;
        memcpy(job->input, opts->input, opts->input_len);
        job->input_len = opts->input_len;
    }
    if (make_argv(opts, &wrapped, &script) < 0)
        goto nomem;
    job->done_cb = done_cb;
    job->data = data;
    job->process.data = job->err.data = job->in.data = job->timer.data = job->write.data = job;
    uv_pipe_init(loop, &job->err, 0);
    uv_timer_init(loop, &job->timer);
    job->open = 3; /* the process handle is to be closed even when uv_spawn() fails */
    job->is_err_open = true;
    if (job->input) {
        uv_pipe_init(loop, &job->in, 0);
        job->open++;
        job->is_in_open = true;
        stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
        stdio[0].data.stream = (uv_stream_t *)&job->in;
    } else {
        stdio[0].flags = UV_IGNORE; /* libuv opens /dev/null for an ignored 0, 1 or 2 */
    }
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&job->err;
    po.exit_cb = exit_cb;
    po.args = wrapped ? wrapped : opts->args;
    po.file = po.args[0];
    po.env = opts->env;
    po.flags = UV_PROCESS_DETACHED;
    po.stdio_count = 3;
    po.stdio = stdio;
    r = uv_spawn(loop, &job->process, &po);
    free(wrapped);
    free(script);
    *ret_job = job;
    if (r < 0) {
        /* Reported once the handles are closed, from their callbacks. */
        job->result.spawn_error = r;
        job->is_done = true;
        close_err(job);
        close_in(job);
        close_handle((uv_handle_t *)&job->timer);
        close_handle((uv_handle_t *)&job->process);
        return 0;
    }
    job->is_running = true;
    uv_timer_start(&job->timer, timer_cb, opts->timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&job->err, alloc_cb, read_cb) < 0)
        close_err(job);
    if (job->input) {
        buf = uv_buf_init(job->input, (unsigned)job->input_len);
        if (uv_write(&job->write, (uv_stream_t *)&job->in, &buf, 1, write_cb) < 0)
            close_in(job);
    }
    return 0;
nomem:
    free(job->input);
    free(job);
    return -ENOMEM;
}
