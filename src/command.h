/*
 * Runs one command for a sink (the exec hook, sendmail), bounded: in its own session, killed
 * with its whole process group after a timeout, started with a given soft RLIMIT_NOFILE, its
 * stdin fed from bytes the caller gives (or /dev/null), stdout /dev/null, and the first line
 * of its stderr kept for the log. Loop thread only. How many run at once is the caller's
 * bound (the dispatcher's max_in_flight, the durable queue's max_running).
 *
 * stdin is a pipe the loop writes to: a command that exits without reading makes the write
 * fail with EPIPE, which the process must not die of: the caller ignores SIGPIPE (kigend
 * does).
 */
#ifndef KIGEN_COMMAND_H
#define KIGEN_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define KIGEN_COMMAND_ERR_KEEP 240 /* bytes of stderr kept for the log; the rest is dropped */

struct kigen_command;

struct kigen_command_opts {
    char **args; /* argv; args[0] is the program, looked up in PATH when it has no '/' */
    char **env;  /* the environment (see kigen_command_env_build) */
    const void *input;
    size_t input_len;    /* bytes written to the command's stdin; 0: stdin is /dev/null */
    uint64_t timeout_ms; /* the process group is killed with SIGKILL then */
    uint64_t nofile;     /* its soft RLIMIT_NOFILE; 0: the daemon's, as is */
};

struct kigen_command_result {
    int spawn_error; /* a negative errno when it could not be started; the rest is then 0 */
    bool is_timed_out;
    int64_t exit_status;
    int term_signal;
    const char *errline; /* its stderr's first line, control characters made '?'; "" if none */
};

/* Whether the command succeeded: started, exited 0, not killed, not timed out. */
bool kigen_command_result_ok(const struct kigen_command_result *result);

/*
 * Called once per started command, after it exited (or was killed), its stderr was read and
 * every handle closed; the job is freed when it returns. result lives as long as the call.
 */
typedef void (*kigen_command_done_cb)(const struct kigen_command_result *result, void *data);

/*
 * Starts the command of opts (copied as needed; input is copied too). Returns 0 and
 * *ret_job, which stays valid until done_cb has run. A command that cannot be started still
 * returns 0: done_cb then gets spawn_error, from a later callback. Returns -ENOMEM (done_cb
 * is then never called).
 */
int kigen_command_start(uv_loop_t *loop, const struct kigen_command_opts *opts,
                        kigen_command_done_cb done_cb, void *data, struct kigen_command **ret_job);

/* Kills the job's process group now (a stop); done_cb follows as for any end. */
void kigen_command_kill(struct kigen_command *job);

/*
 * The environment of a command: the daemon's own, less the KIGEN_* variables it inherited (a
 * password source may be one) and systemd's per-process protocol (NOTIFY_SOCKET, LISTEN_*,
 * WATCHDOG_*), which belongs to the daemon alone; then the n strings of extra ("NAME=value",
 * copied). Returns a NULL-terminated array to free with kigen_command_env_free, or NULL on
 * ENOMEM.
 */
char **kigen_command_env_build(char *const *extra, size_t n);

void kigen_command_env_free(char **env);

#endif
