/*
 * The status socket's server (SPEC §9): a libuv pipe server that reads newline-delimited
 * requests and writes one answer line for each, in order. What a request means is the
 * handler's business (proto.c); this file carries bytes and enforces the limits that keep a
 * slow or hostile client from stalling the daemon or growing its memory:
 *
 *   - a request line holds at most max_line bytes (default 64 KiB); a longer one is answered
 *     {"ok":false,"error":"request line too long"} and the connection is closed;
 *   - at most max_clients connections at once (default 1,024); one more is accepted, told
 *     {"ok":false,"error":"too many clients"} and closed at once, so that it never hangs in
 *     the listen backlog;
 *   - one request is answered at a time per client: the next is not even parsed while the
 *     previous answer still waits in the client's write queue, and the socket is not read
 *     meanwhile. A client that never reads holds one answer in memory, never more;
 *   - the answers held for all clients together are bounded (max_pending, default 256 MiB,
 *     a few lists of 100,000 certificates): an answer that would go over is replaced by
 *     {"ok":false,"error":"busy: ..."}, unless nothing else is held, so that a thousand
 *     clients that ask for a large list and never read cannot take the machine's memory;
 *   - a client that makes no progress for idle_ms (default 60 s), neither sending a request
 *     nor draining its answer, is closed.
 *
 *   - an answer may be deferred (kigen_control_defer): the client then waits for it, and its
 *     next request is not parsed, nor its socket read, until it is given; the idle timeout
 *     does not run meanwhile (the wait is the daemon's, not the client's). At most
 *     max_deferred answers (default 4) are deferred at once over all clients.
 *
 * The process must ignore SIGPIPE (a client that goes away mid-answer is then a write error
 * that closes the connection). Loop thread only.
 */
#ifndef KIGEN_CONTROL_H
#define KIGEN_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define KIGEN_CONTROL_MAX_CLIENTS  1024
#define KIGEN_CONTROL_MAX_PENDING  (256u << 20)
#define KIGEN_CONTROL_IDLE_MS      60000
#define KIGEN_CONTROL_MAX_LINE     (64 * 1024)
#define KIGEN_CONTROL_MAX_DEFERRED 4

/* What a handler returns once it has deferred its answer (kigen_control_defer). */
#define KIGEN_CONTROL_DEFERRED 1

struct kigen_control;

/*
 * Answers one request line: line holds len bytes without the newline (a trailing '\r' is
 * stripped too) and line[len] is '\0'. is_privileged: the peer's uid (SO_PEERCRED) is 0 or
 * the daemon's effective uid. On success returns 0 and *ret_answer is a malloc'd answer of
 * *ret_len bytes without a newline, which the server owns from then on and frees once
 * written. A negative errno makes the server answer {"ok":false,"error":"internal error: ..."}
 * instead. KIGEN_CONTROL_DEFERRED (after kigen_control_defer() succeeded) leaves *ret_answer
 * unset: the answer comes later through kigen_control_finish(). Runs on the loop thread; it
 * must not close the server.
 */
typedef int (*kigen_control_handler)(void *data, const char *line, size_t len, bool is_privileged,
                                     char **ret_answer, size_t *ret_len);

/*
 * Starts serving on loop. With inherited_fd >= 0 (a listening Unix stream socket from
 * sd_listen_fds()), serves that socket and leaves path alone (path may be NULL); once checked
 * to be such a socket, the descriptor is the server's (closed at close, or if a later step
 * fails), while anything else is refused with -EINVAL and left untouched. Otherwise
 * binds path: a socket file left by a crash (nothing answers on it: ECONNREFUSED) is
 * replaced; a live one (-EADDRINUSE) or anything that is not a socket (-EEXIST) is refused.
 * The socket is bound under umask 0117, then given mode 0660 and, when the group exists, the
 * group "kigen". Call it before queuing thread-pool work: the umask is process-wide.
 *
 * On success returns 0 and *ret_ctl is serving. On failure returns a negative errno with a
 * one-line reason in errbuf (naming the path) and nothing is left behind.
 */
int kigen_control_start(uv_loop_t *loop, const char *path, int inherited_fd,
                        kigen_control_handler handler, void *data, struct kigen_control **ret_ctl,
                        char *errbuf, size_t errlen);

/*
 * Changes the limits (0 keeps a limit as it is); for tests and tuning. They apply to what
 * happens next: connections already open are not closed for a lower max_clients.
 */
void kigen_control_set_limits(struct kigen_control *ctl, size_t max_clients, uint64_t idle_ms,
                              size_t max_line);

/* An answer that will be given later. */
struct kigen_control_deferred;

/*
 * Called from within a handler: the request being answered will be answered later, through
 * kigen_control_finish() on the returned token, and the handler returns
 * KIGEN_CONTROL_DEFERRED. Answers stay in order: the client's next request waits. Returns
 * NULL when max_deferred answers are already deferred (the handler then answers now, such as
 * with a "busy" error) or when called outside a handler.
 */
struct kigen_control_deferred *kigen_control_defer(struct kigen_control *ctl);

/*
 * Gives a deferred answer, with the handler's conventions: r = 0 and text (malloc'd, len
 * bytes, no newline, taken in every case), or a negative errno for an internal error answer.
 * Must be called exactly once per token, on the loop thread, also after the client has gone
 * or the server was closed (the token and text are then just freed): a closed server is
 * freed, and its closed_cb runs, only once every deferred answer is finished. May be called
 * from within the handler that deferred.
 */
void kigen_control_finish(struct kigen_control_deferred *deferred, int r, char *text, size_t len);

/* Changes max_deferred (0 keeps it); for tests. */
void kigen_control_set_max_deferred(struct kigen_control *ctl, size_t n);

/* Changes max_pending (0 keeps it); for tests. */
void kigen_control_set_max_pending(struct kigen_control *ctl, size_t bytes);

/* How many clients are connected now (those told "too many clients" are not counted). */
size_t kigen_control_clients(const struct kigen_control *ctl);

/*
 * Stops serving: closes every connection (answers not yet written are dropped), the
 * listening socket, and removes the socket file it bound (an inherited one stays). closed_cb
 * (may be NULL) runs on the loop once every handle is closed; ctl is freed then and must not
 * be used after this call. ctl may be NULL: closed_cb is then not called.
 */
void kigen_control_close(struct kigen_control *ctl, void (*closed_cb)(void *data), void *data);

#endif
