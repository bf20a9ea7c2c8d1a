#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <uv.h>

#include "log.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define SOCKET_GROUP "kigen"
#define SOCKET_MODE  0660
#define BIND_UMASK   0117
#define LINE_BUF_MIN 4096 /* the first read buffer of a client; it grows to max_line + 1 */

static const char too_long_answer[] = "{\"ok\":false,\"error\":\"request line too long\"}";
static const char too_many_answer[] = "{\"ok\":false,\"error\":\"too many clients\"}\n";
static const char busy_answer[] =
    "{\"ok\":false,\"error\":\"busy: other clients have not read their answers yet, try again\"}";
static const char no_memory_answer[] = "{\"ok\":false,\"error\":\"internal error: out of memory\"}";

struct client;

struct kigen_control {
    uv_loop_t *loop;
    uv_pipe_t server;
    char *path; /* the file we bound, removed at close; NULL for an inherited socket */
    kigen_control_handler handler;
    void *data;
    size_t max_clients;
    uint64_t idle_ms;
    size_t max_line;
    size_t max_pending; /* answer bytes held for all clients at most (see control.h) */
    size_t pending;     /* answer bytes handed to uv_write whose write_cb has not run */
    size_t max_deferred;
    size_t n_deferred;      /* tokens not yet finished, also those of clients gone */
    struct client *current; /* the client whose request the handler is answering */
    struct client *clients; /* every open client, doubly linked */
    size_t n_clients;
    size_t n_handles; /* handles open or closing; ctl goes when the last one has closed */
    bool is_closing;
    void (*closed_cb)(void *data);
    void *closed_data;
};

/*
 * One connection. buf[off, len) holds what was received and not yet answered: complete lines
 * waiting for the previous answer to drain, then at most one partial line.
 */
struct client {
    uv_pipe_t pipe;
    uv_timer_t timer;
    struct kigen_control *ctl;
    struct client *prev;
    struct client *next;
    char *buf;
    size_t off;
    size_t len;
    size_t cap;
    size_t writes;     /* answers handed to uv_write whose write_cb has not run */
    size_t idle_queue; /* the write queue's size when the idle timer was last armed */
    int open_handles;  /* pipe and timer; the client is freed when both have closed */
    bool is_privileged;
    bool is_reading;
    bool is_eof;      /* the peer has sent everything it will send */
    bool is_draining; /* answer nothing more; close once the last answer is written */
    bool is_closing;
    struct kigen_control_deferred *deferred; /* the answer this client waits for, or NULL */
};

struct kigen_control_deferred {
    struct kigen_control *ctl;
    struct client *client; /* NULL once the client has gone */
};

struct answer {
    uv_write_t req;
    char *text;       /* owned; NULL when the answer is a static text */
    const char *data; /* what is written: text, or the static text */
    size_t len;       /* counted in ctl->pending while written */
    size_t size;      /* bytes of data, without the newline */
    size_t off;       /* bytes of data handed to uv_write so far */
};

/*
 * An answer is handed to the socket at most this much per loop iteration: a large one (the
 * list of 100,000 certificates is 45 MB) read by a fast client would otherwise be copied
 * into the socket in one writev for as long as the client keeps up, and the loop would wait.
 */
#define WRITE_CHUNK (256u * 1024)

/* A connection over max_clients: told so, then closed. */
struct reject {
    uv_pipe_t pipe;
    struct kigen_control *ctl;
};

static void process(struct client *c);

static int errf(char *errbuf, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int errf(char *errbuf, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errlen) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* ---- closing ---- */

/* One handle finished closing; the last one of a closing server frees it. */
static void handle_gone(struct kigen_control *ctl)
{
    void (*cb)(void *data) = ctl->closed_cb;
    void *data = ctl->closed_data;

    if (--ctl->n_handles > 0 || !ctl->is_closing)
        return;
    free(ctl->path);
    free(ctl);
    if (cb)
        cb(data);
}

static void client_close_cb(uv_handle_t *handle)
{
    struct client *c = handle->data;
    struct kigen_control *ctl = c->ctl;

    if (--c->open_handles == 0) {
        free(c->buf);
        free(c);
    }
    handle_gone(ctl);
}

/* Answers still queued are cancelled: their write_cb runs (UV_ECANCELED) before the close. */
static void close_client(struct client *c)
{
    struct kigen_control *ctl = c->ctl;

    if (c->is_closing)
        return;
    c->is_closing = true;
    if (c->deferred) {
        c->deferred->client = NULL; /* the answer is dropped when it comes */
        c->deferred = NULL;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ctl->n_clients--;
    uv_close((uv_handle_t *)&c->pipe, client_close_cb);
    uv_close((uv_handle_t *)&c->timer, client_close_cb);
}

static void server_close_cb(uv_handle_t *handle)
{
    handle_gone(container_of((uv_pipe_t *)handle, struct kigen_control, server));
}

static void reject_close_cb(uv_handle_t *handle)
{
    struct reject *rj = container_of((uv_pipe_t *)handle, struct reject, pipe);
    struct kigen_control *ctl = rj->ctl;

    free(rj);
    handle_gone(ctl);
}

void kigen_control_close(struct kigen_control *ctl, void (*closed_cb)(void *data), void *data)
{
    if (!ctl || ctl->is_closing)
        return;
    ctl->is_closing = true;
    ctl->closed_cb = closed_cb;
    ctl->closed_data = data;
    /* Unlinked now, not when the handle is gone: a successor may bind the path at once. */
    if (ctl->path && unlink(ctl->path) < 0 && errno != ENOENT)
        kigen_log_debug("Cannot remove the socket '%s': %s", ctl->path, strerror(errno));
    while (ctl->clients)
        close_client(ctl->clients);
    uv_close((uv_handle_t *)&ctl->server, server_close_cb);
}

/* ---- idle timeout ---- */

static void idle_cb(uv_timer_t *timer);

/* Progress was made (a request came, an answer went): the client has idle_ms more. */
static void arm_idle(struct client *c)
{
    c->idle_queue = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
    uv_timer_start(&c->timer, idle_cb, c->ctl->idle_ms, 0);
}

/*
 * No request and no finished answer for idle_ms. A client that reads a large answer slowly
 * still drains the queue: it gets another period. One that stopped reading is closed.
 */
static void idle_cb(uv_timer_t *timer)
{
    struct client *c = timer->data;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);

    if (queued > 0 && queued < c->idle_queue) {
        arm_idle(c);
        return;
    }
    kigen_log_debug("Closing a control client idle for %llu ms",
                    (unsigned long long)c->ctl->idle_ms);
    close_client(c);
}

/* ---- writing ---- */

static int write_chunk(struct client *c, struct answer *a);

static void write_cb(uv_write_t *req, int status)
{
    struct answer *a = container_of(req, struct answer, req);
    struct client *c = req->handle->data;

    if (status == 0 && !c->is_closing && a->off <= a->size) {
        if (write_chunk(c, a) == 0) {
            arm_idle(c); /* a part went: progress */
            return;      /* the next part goes in a loop iteration of its own */
        }
        status = UV_ENOMEM;
    }
    c->ctl->pending -= a->len;
    free(a->text);
    free(a);
    c->writes--;
    if (c->is_closing)
        return;
    if (status < 0) {
        /* The peer went away mid-answer (EPIPE, ECONNRESET). */
        kigen_log_debug("Cannot write to a control client: %s", uv_strerror(status));
        close_client(c);
        return;
    }
    arm_idle(c);
    process(c);
}

/*
 * Hands the next WRITE_CHUNK of a (the newline with the last one) to uv_write; a->off moves
 * past it, beyond a->size once the newline is out. Returns 0 or a libuv error.
 */
static int write_chunk(struct client *c, struct answer *a)
{
    size_t n = a->size - a->off > WRITE_CHUNK ? WRITE_CHUNK : a->size - a->off;
    bool is_last = a->off + n == a->size;
    uv_buf_t bufs[2];
    unsigned nbufs = 0;

    /* libuv never writes through a write buffer: casting the constant text is safe. */
    if (n)
        bufs[nbufs++] = uv_buf_init((char *)a->data + a->off, (unsigned)n);
    if (is_last)
        bufs[nbufs++] = uv_buf_init((char *)"\n", 1);
    a->off += n + is_last;
    return uv_write(&a->req, (uv_stream_t *)&c->pipe, bufs, nbufs, write_cb);
}

/*
 * Queues text (len bytes, without its newline) on the client. Takes text when owned is true;
 * libuv writes straight from it, so each answer exists once in memory however large.
 */
static void write_answer(struct client *c, char *text, size_t len, bool owned)
{
    struct answer *a = malloc(sizeof(*a));
    int r;

    if (!a) {
        if (owned)
            free(text);
        close_client(c);
        return;
    }
    a->text = owned ? text : NULL;
    a->len = owned ? len : 0;
    a->data = text;
    a->size = len;
    a->off = 0;
    r = write_chunk(c, a);
    if (r < 0) {
        free(a->text);
        free(a);
        close_client(c);
        return;
    }
    c->writes++;
    c->ctl->pending += a->len;
    arm_idle(c); /* from now on, the client has idle_ms to start draining it */
}

/* The handler's answer (r, text) to the client: an error, a too-large or a busy answer. */
static void deliver(struct client *c, int r, char *text, size_t text_len)
{
    struct kigen_control *ctl = c->ctl;

    if (r < 0) {
        free(text);
        if (asprintf(&text, "{\"ok\":false,\"error\":\"internal error: %s\"}", strerror(-r)) < 0) {
            write_answer(c, (char *)no_memory_answer, sizeof(no_memory_answer) - 1, false);
            return;
        }
        text_len = strlen(text);
    }
    if (text_len > UINT32_MAX / 2) {
        /* uv_buf_t counts in unsigned int; no real answer comes near. */
        free(text);
        if (asprintf(&text, "{\"ok\":false,\"error\":\"the answer is too large\"}") < 0) {
            write_answer(c, (char *)no_memory_answer, sizeof(no_memory_answer) - 1, false);
            return;
        }
        text_len = strlen(text);
    }
    if (ctl->pending > 0 && text_len > ctl->max_pending - ctl->pending) {
        /* Clients that do not read hold enough already: this one may ask again later. */
        free(text);
        write_answer(c, (char *)busy_answer, sizeof(busy_answer) - 1, false);
        return;
    }
    write_answer(c, text, text_len, true);
}

static void answer(struct client *c, const char *line, size_t len)
{
    struct kigen_control *ctl = c->ctl;
    char *text = NULL;
    size_t text_len = 0;
    int r;

    ctl->current = c;
    r = ctl->handler(ctl->data, line, len, c->is_privileged, &text, &text_len);
    ctl->current = NULL;
    if (r == KIGEN_CONTROL_DEFERRED) {
        /* Unless already finished within the handler, the wait is ours: no idle timeout. */
        if (c->deferred)
            uv_timer_stop(&c->timer);
        return;
    }
    deliver(c, r, text, text_len);
}

struct kigen_control_deferred *kigen_control_defer(struct kigen_control *ctl)
{
    struct kigen_control_deferred *d;
    struct client *c = ctl->current;

    if (!c || c->deferred || ctl->n_deferred >= ctl->max_deferred)
        return NULL;
    d = malloc(sizeof(*d));
    if (!d)
        return NULL;
    d->ctl = ctl;
    d->client = c;
    c->deferred = d;
    ctl->n_deferred++;
    ctl->n_handles++; /* a closed server waits for the token like for a handle */
    return d;
}

void kigen_control_finish(struct kigen_control_deferred *d, int r, char *text, size_t len)
{
    struct kigen_control *ctl = d->ctl;
    struct client *c = d->client;

    free(d);
    ctl->n_deferred--;
    if (c) {
        c->deferred = NULL;
        deliver(c, r, text, len);
        /* Within the handler, process() goes on by itself; otherwise the next request. */
        if (ctl->current != c)
            process(c);
    } else {
        free(text);
    }
    handle_gone(ctl);
}

void kigen_control_set_max_deferred(struct kigen_control *ctl, size_t n)
{
    if (n)
        ctl->max_deferred = n;
}

/* ---- reading ---- */

static void start_reading(struct client *c);

static void stop_reading(struct client *c)
{
    if (c->is_reading) {
        uv_read_stop((uv_stream_t *)&c->pipe);
        c->is_reading = false;
    }
}

static void too_long(struct client *c)
{
    c->is_draining = true;
    stop_reading(c);
    write_answer(c, (char *)too_long_answer, sizeof(too_long_answer) - 1, false);
}

/* Room for the NUL after a last line that came without its newline. */
static bool make_room(struct client *c)
{
    char *p;

    if (c->len < c->cap)
        return true;
    p = realloc(c->buf, c->cap + 1);
    if (!p)
        return false;
    c->buf = p;
    c->cap++;
    return true;
}

/*
 * Answers the complete lines received, in order, as long as the previous answer has left the
 * write queue; then reads again, or waits for the queue to drain (write_cb calls back here).
 */
static void process(struct client *c)
{
    struct kigen_control *ctl = c->ctl;

    while (!c->is_closing && !c->is_draining && !c->deferred &&
           uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) == 0) {
        size_t avail = c->len - c->off, n;
        char *line = avail ? c->buf + c->off : NULL, *nl = avail ? memchr(line, '\n', avail) : NULL;

        if (nl) {
            n = (size_t)(nl - line);
            c->off += n + 1;
        } else if (avail > ctl->max_line) {
            too_long(c);
            break;
        } else if (c->is_eof && avail > 0) {
            /* The last request may come without its newline (printf ... | nc -U). */
            if (!make_room(c)) {
                close_client(c);
                return;
            }
            line = c->buf + c->off;
            nl = line + avail;
            n = avail;
            c->off = c->len;
        } else {
            break;
        }
        if (n > ctl->max_line) {
            too_long(c);
            break;
        }
        *nl = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        if (n == 0)
            continue; /* a blank line is no request */
        answer(c, line, n);
    }
    if (c->is_closing)
        return;
    if (c->off == c->len) {
        c->off = c->len = 0;
        if (c->cap > LINE_BUF_MIN) {
            /* A long request is over: give its buffer back. */
            free(c->buf);
            c->buf = NULL;
            c->cap = 0;
        }
    }
    if (c->is_draining || c->is_eof) {
        if (c->writes == 0 && !c->deferred && (c->is_draining || c->off == c->len))
            close_client(c);
        return;
    }
    if (c->deferred || uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > 0)
        stop_reading(c); /* backpressure: no new request until this answer drains */
    else
        start_reading(c);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *ret)
{
    struct client *c = handle->data;
    size_t limit = c->ctl->max_line + 1;

    /* Only a partial line is left when reading: move it to the front. */
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->cap - c->len < LINE_BUF_MIN / 4 && c->cap < limit) {
        size_t cap = c->cap ? c->cap * 2 : LINE_BUF_MIN;
        char *p;

        if (cap > limit)
            cap = limit;
        p = realloc(c->buf, cap);
        if (p) {
            c->buf = p;
            c->cap = cap;
        }
    }
    /* An empty buffer makes libuv report UV_ENOBUFS, which closes the client. */
    *ret = uv_buf_init(c->buf ? c->buf + c->len : NULL, (unsigned)(c->cap - c->len));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct client *c = stream->data;

    if (nread == 0)
        return; /* EAGAIN */
    if (nread == UV_EOF) {
        c->is_reading = false; /* libuv stops reading at EOF */
        c->is_eof = true;
        process(c);
        return;
    }
    if (nread < 0) {
        kigen_log_debug("Cannot read from a control client: %s", uv_strerror((int)nread));
        close_client(c);
        return;
    }
    c->len += (size_t)nread;
    arm_idle(c);
    process(c);
}

static void start_reading(struct client *c)
{
    int r;

    if (c->is_reading)
        return;
    r = uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
    if (r < 0) {
        kigen_log_debug("Cannot read from a control client: %s", uv_strerror(r));
        close_client(c);
        return;
    }
    c->is_reading = true;
}

/* ---- accepting ---- */

static bool peer_is_privileged(struct client *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return false;
    return cred.uid == 0 || cred.uid == geteuid();
}

static void reject(struct kigen_control *ctl)
{
    struct reject *rj = malloc(sizeof(*rj));
    uv_buf_t b = uv_buf_init((char *)too_many_answer, sizeof(too_many_answer) - 1);

    if (!rj) {
        /* Unaccepted, the connection waits in the backlog; libuv resumes at the next accept. */
        kigen_log_debug("Cannot reject a control client: out of memory");
        return;
    }
    rj->ctl = ctl;
    uv_pipe_init(ctl->loop, &rj->pipe, 0);
    ctl->n_handles++;
    if (uv_accept((uv_stream_t *)&ctl->server, (uv_stream_t *)&rj->pipe) == 0)
        (void)uv_try_write((uv_stream_t *)&rj->pipe, &b, 1); /* best effort: it is going anyway */
    uv_close((uv_handle_t *)&rj->pipe, reject_close_cb);
}

static void connection_cb(uv_stream_t *server, int status)
{
    struct kigen_control *ctl = container_of((uv_pipe_t *)server, struct kigen_control, server);
    struct client *c;

    if (status < 0) {
        kigen_log_debug("Cannot accept a control client: %s", uv_strerror(status));
        return;
    }
    if (ctl->n_clients >= ctl->max_clients) {
        kigen_log_debug("Refusing a control client: %zu are connected", ctl->n_clients);
        reject(ctl);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        reject(ctl);
        return;
    }
    c->ctl = ctl;
    uv_pipe_init(ctl->loop, &c->pipe, 0);
    uv_timer_init(ctl->loop, &c->timer);
    c->pipe.data = c->timer.data = c;
    c->open_handles = 2;
    ctl->n_handles += 2;
    c->next = ctl->clients;
    if (c->next)
        c->next->prev = c;
    ctl->clients = c;
    ctl->n_clients++;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
        close_client(c);
        return;
    }
    c->is_privileged = peer_is_privileged(c);
    arm_idle(c);
    start_reading(c);
}

/* ---- binding ---- */

/*
 * The path is free, or held by a socket file nothing answers on (a crashed daemon's): that
 * one is removed. A live socket or any other file is refused.
 */
static int remove_stale(const char *path, char *errbuf, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;
    int fd, r;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        r = -errno;
        return errf(errbuf, errlen, r, "Cannot check the socket path '%s': %s", path, strerror(-r));
    }
    if (!S_ISSOCK(st.st_mode))
        return errf(errbuf, errlen, -EEXIST,
                    "'%s' exists and is not a socket, refusing to replace it", path);
    /* Non-blocking: a live daemon with a full backlog answers EAGAIN rather than hanging us. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r = -errno;
        return errf(errbuf, errlen, r, "Cannot check the socket '%s': %s", path, strerror(-r));
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
    close(fd);
    if (r == 0 || r == -EAGAIN || r == -EINPROGRESS)
        return errf(errbuf, errlen, -EADDRINUSE,
                    "Another process answers on '%s', refusing to take it over", path);
    if (r != -ECONNREFUSED)
        return errf(errbuf, errlen, r, "Cannot tell whether the socket '%s' is in use: %s", path,
                    strerror(-r));
    if (unlink(path) < 0 && errno != ENOENT) {
        r = -errno;
        return errf(errbuf, errlen, r, "Cannot remove the stale socket '%s': %s", path,
                    strerror(-r));
    }
    kigen_log_debug("Removed the stale socket '%s'", path);
    return 0;
}

/* Group "kigen" may talk to the daemon; without such a group the file keeps ours. */
static void give_group(const char *path)
{
    struct group gr, *found = NULL;
    char buf[4096];

    if (getgrnam_r(SOCKET_GROUP, &gr, buf, sizeof(buf), &found) != 0 || !found) {
        kigen_log_debug("No group '%s', leaving the group of '%s' as it is", SOCKET_GROUP, path);
        return;
    }
    if (chown(path, (uid_t)-1, found->gr_gid) < 0)
        kigen_log_debug("Cannot give '%s' to group '%s': %s, leaving its group", path, SOCKET_GROUP,
                        strerror(errno));
}

static int bind_path(struct kigen_control *ctl, const char *path, char *errbuf, size_t errlen)
{
    struct sockaddr_un sa;
    mode_t old;
    int r;

    if (!path || !*path)
        return errf(errbuf, errlen, -EINVAL, "No socket path is configured");
    /* libuv would cut a long path short and bind another name. */
    if (strlen(path) >= sizeof(sa.sun_path))
        return errf(errbuf, errlen, -ENAMETOOLONG, "The socket path '%s' is longer than %zu bytes",
                    path, sizeof(sa.sun_path) - 1);
    r = remove_stale(path, errbuf, errlen);
    if (r < 0)
        return r;
    old = umask(BIND_UMASK);
    r = uv_pipe_bind(&ctl->server, path);
    umask(old);
    if (r < 0)
        return errf(errbuf, errlen, r, "Cannot bind the socket '%s': %s", path, uv_strerror(r));
    ctl->path = strdup(path);
    if (!ctl->path) {
        unlink(path);
        return errf(errbuf, errlen, -ENOMEM, "Out of memory");
    }
    if (chmod(path, SOCKET_MODE) < 0) {
        r = -errno;
        return errf(errbuf, errlen, r, "Cannot set the mode of the socket '%s': %s", path,
                    strerror(-r));
    }
    give_group(path);
    return 0;
}

static int open_inherited(struct kigen_control *ctl, int fd, char *errbuf, size_t errlen)
{
    int r, flags;

    /* Not what systemd promised: not ours to close either. */
    r = sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0);
    if (r <= 0)
        return errf(errbuf, errlen, r < 0 ? r : -EINVAL,
                    "The inherited descriptor %d is not a listening Unix stream socket", fd);
    flags = fcntl(fd, F_GETFD);
    if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
        r = -errno;
        close(fd);
        return errf(errbuf, errlen, r, "Cannot set close-on-exec on descriptor %d: %s", fd,
                    strerror(-r));
    }
    r = uv_pipe_open(&ctl->server, fd);
    if (r < 0) {
        close(fd);
        return errf(errbuf, errlen, r, "Cannot use the inherited socket %d: %s", fd,
                    uv_strerror(r));
    }
    return 0;
}

int kigen_control_start(uv_loop_t *loop, const char *path, int inherited_fd,
                        kigen_control_handler handler, void *data, struct kigen_control **ret_ctl,
                        char *errbuf, size_t errlen)
{
    struct kigen_control *ctl = calloc(1, sizeof(*ctl));
    int r;

    if (!ctl)
        return errf(errbuf, errlen, -ENOMEM, "Out of memory");
    ctl->loop = loop;
    ctl->handler = handler;
    ctl->data = data;
    ctl->max_clients = KIGEN_CONTROL_MAX_CLIENTS;
    ctl->max_pending = KIGEN_CONTROL_MAX_PENDING;
    ctl->max_deferred = KIGEN_CONTROL_MAX_DEFERRED;
    ctl->idle_ms = KIGEN_CONTROL_IDLE_MS;
    ctl->max_line = KIGEN_CONTROL_MAX_LINE;
    uv_pipe_init(loop, &ctl->server, 0);
    ctl->n_handles = 1;
    r = inherited_fd >= 0 ? open_inherited(ctl, inherited_fd, errbuf, errlen)
                          : bind_path(ctl, path, errbuf, errlen);
    if (r < 0)
        goto err;
    r = uv_listen((uv_stream_t *)&ctl->server, SOMAXCONN, connection_cb);
    if (r < 0) {
        errf(errbuf, errlen, r, "Cannot listen on the socket '%s': %s",
             ctl->path ? ctl->path : "(inherited)", uv_strerror(r));
        goto err;
    }
    *ret_ctl = ctl;
    return 0;
err:
    /* The handle is freed on the loop's next iteration, like any closed handle. */
    kigen_control_close(ctl, NULL, NULL);
    return r;
}

void kigen_control_set_limits(struct kigen_control *ctl, size_t max_clients, uint64_t idle_ms,
                              size_t max_line)
{
    if (max_clients)
        ctl->max_clients = max_clients;
    if (idle_ms)
        ctl->idle_ms = idle_ms;
    if (max_line)
        ctl->max_line = max_line;
}

void kigen_control_set_max_pending(struct kigen_control *ctl, size_t bytes)
{
    if (bytes)
        ctl->max_pending = bytes;
}

size_t kigen_control_clients(const struct kigen_control *ctl)
{
    return ctl->n_clients;
}
