/* A sink on a local socket that is never waited on: see sink_socket.h. */
#include "sink_socket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define BUSY_BACKOFF_MS 10 /* EAGAIN: the reader is slow, it will be back soon */
#define BUSY_MAX_MS     1000
#define BUSY_GIVE_UP_MS 5000 /* full that long: the reader has stopped, not slowed down */
#define GONE_BACKOFF_MS 1000 /* no socket or no listener: a restart takes seconds */
#define GONE_MAX_MS     8000

static struct kigen_sock_sink *sock_sink(struct kigen_sink *sink)
{
    return container_of(sink, struct kigen_sock_sink, base);
}

int kigen_sock_sink_init(struct kigen_sock_sink *ss, const struct kigen_sock_sink_ops *ops,
                         const char *what, const char *path)
{
    ss->ops = ops;
    ss->what = what;
    ss->fd = -1;
    ss->path = strdup(path);
    return ss->path ? 0 : -ENOMEM;
}

static void disconnect(struct kigen_sock_sink *ss)
{
    if (ss->fd >= 0)
        close(ss->fd);
    ss->fd = -1;
}

int kigen_sock_sink_set_path(struct kigen_sock_sink *ss, const char *path)
{
    char *copy;

    if (strcmp(ss->path, path) == 0)
        return 0;
    copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    free(ss->path);
    ss->path = copy;
    if (!ss->token)
        disconnect(ss); /* else the alert in flight finishes on the old socket */
    return 0;
}

/* Connects to the path, as a datagram socket or else a stream socket. Returns 0 or -errno. */
static int connect_socket(struct kigen_sock_sink *ss)
{
    static const int socktypes[] = { SOCK_DGRAM, SOCK_STREAM };
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int r = -EPROTOTYPE;

    if (strlen(ss->path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, ss->path, strlen(ss->path) + 1);
    for (size_t i = 0; i < (ss->ops->is_stream_allowed ? 2 : 1) && r == -EPROTOTYPE; i++) {
        int fd = socket(AF_UNIX, socktypes[i] | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0)
            return -errno;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            ss->fd = fd;
            ss->socktype = socktypes[i];
            return 0;
        }
        r = -errno;
        close(fd);
    }
    return r;
}

/* The alert in flight, framed for the connection it goes out on. Returns 0 or -ENOMEM. */
static int frame(struct kigen_sock_sink *ss)
{
    free(ss->framed);
    ss->framed = NULL;
    ss->off = 0;
    ss->out = ss->msg;
    ss->out_len = ss->msg_len;
    if (ss->socktype == SOCK_STREAM) {
        /* RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG. */
        if (asprintf(&ss->framed, "%zu %s", ss->msg_len, ss->msg) < 0) {
            ss->framed = NULL;
            return -ENOMEM;
        }
        ss->out = ss->framed;
        ss->out_len = strlen(ss->framed);
    }
    return 0;
}

/*
 * Writes the rest of the alert in flight. Returns 0 when it is all out, -EAGAIN when the
 * reader is slow, -EMSGSIZE or -ENAMETOOLONG for what no retry mends, another -errno when the
 * socket is unreachable (the connection is dropped, the next try reconnects), or -ENOMEM.
 */
static int write_out(struct kigen_sock_sink *ss)
{
    int r;

    if (ss->fd < 0) {
        r = connect_socket(ss);
        /* A full backlog (EAGAIN) is a listener that is not keeping up: try again later. */
        if (r < 0)
            return r == -EAGAIN ? -ECONNREFUSED : r;
        ss->out = NULL; /* a new connection starts the message again */
    }
    if (!ss->out && (r = frame(ss)) < 0)
        return r;
    while (ss->off < ss->out_len) {
        ssize_t n =
            send(ss->fd, ss->out + ss->off, ss->out_len - ss->off, MSG_NOSIGNAL | MSG_DONTWAIT);

        r = n < 0 ? -errno : 0;
        if (r == -EINTR)
            continue;
        if (r == -EMSGSIZE && ss->socktype == SOCK_DGRAM && ss->ops->send_large)
            r = ss->ops->send_large(ss->fd, ss->out, ss->out_len);
        if (r == -EAGAIN || r == -ENOBUFS)
            return -EAGAIN;
        if (r < 0) {
            if (r != -EMSGSIZE && r != -ENOMEM)
                disconnect(ss);
            return r;
        }
        if (ss->socktype == SOCK_DGRAM)
            break; /* a datagram goes whole or not at all */
        ss->off += (size_t)n;
    }
    return 0;
}

static void clear_flight(struct kigen_sock_sink *ss)
{
    free(ss->msg);
    free(ss->framed);
    ss->msg = ss->framed = NULL;
    ss->out = NULL;
    ss->token = NULL;
}

static int drop(const struct kigen_sock_sink *ss, int r)
{
    return kigen_log_errno(KIGEN_LOG_WARNING, r,
                           "Cannot send a %s alert to %s socket '%s', dropping it and carrying on",
                           kigen_event_name(ss->event), ss->what, ss->path);
}

static void timer_cb(uv_timer_t *timer);

/*
 * One attempt at the alert in flight. Returns 1 when it went out, 0 when a retry is
 * scheduled, or a negative errno when it failed (logged).
 */
static int attempt(struct kigen_sock_sink *ss)
{
    uint64_t now, cap, limit = ss->base.limits->retry_ms;
    int r = write_out(ss);

    if (r == 0) {
        if (ss->is_unreachable)
            kigen_log_notice("The %s socket '%s' is reachable again", ss->what, ss->path);
        ss->in_outage = ss->is_unreachable = false;
        return 1;
    }
    if (r == -EMSGSIZE || r == -ENAMETOOLONG || r == -ENOMEM)
        return drop(ss, r);
    now = uv_now(ss->loop);
    if (ss->in_outage && now - ss->last_failure > ss->base.limits->retry_ms)
        ss->in_outage = ss->is_unreachable = false;
    ss->last_failure = now;
    if (!ss->in_outage) {
        ss->in_outage = true;
        ss->outage_since = now;
        ss->backoff_ms = BUSY_BACKOFF_MS;
    }
    cap = BUSY_MAX_MS;
    if (r == -EAGAIN && limit > BUSY_GIVE_UP_MS)
        limit = BUSY_GIVE_UP_MS;
    if (r != -EAGAIN) {
        cap = GONE_MAX_MS;
        if (ss->backoff_ms < GONE_BACKOFF_MS)
            ss->backoff_ms = GONE_BACKOFF_MS;
        if (!ss->is_unreachable)
            kigen_log_errno(KIGEN_LOG_WARNING, r,
                            "Cannot reach %s socket '%s', retrying for up to %llu s", ss->what,
                            ss->path, (unsigned long long)(ss->base.limits->retry_ms / 1000));
        ss->is_unreachable = true;
    }
    if (now + ss->backoff_ms > ss->outage_since + limit) {
        /* Half a frame on a stream would garble the next message: start a new connection. */
        if (ss->socktype == SOCK_STREAM)
            disconnect(ss);
        return kigen_log_errno(KIGEN_LOG_WARNING, r,
                               "Cannot send a %s alert to %s socket '%s' for %llu s, dropping "
                               "it and carrying on",
                               kigen_event_name(ss->event), ss->what, ss->path,
                               (unsigned long long)((now - ss->outage_since) / 1000));
    }
    uv_timer_start(&ss->timer, timer_cb, ss->backoff_ms, 0);
    ss->backoff_ms = ss->backoff_ms * 2 > cap ? cap : ss->backoff_ms * 2;
    return 0;
}

static void timer_cb(uv_timer_t *timer)
{
    struct kigen_sock_sink *ss = container_of(timer, struct kigen_sock_sink, timer);
    void *token = ss->token;
    int r = attempt(ss);

    if (r == 0)
        return;
    clear_flight(ss);
    kigen_sink_finish(&ss->base, token, r < 0);
}

int kigen_sock_sink_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct kigen_sock_sink *ss = sock_sink(sink);
    int r;

    ss->event = alert->event;
    r = ss->ops->format(ss, alert, &ss->msg, &ss->msg_len);
    if (r < 0)
        return drop(ss, r);
    ss->out = NULL;
    ss->token = token;
    r = attempt(ss);
    if (r != 0)
        clear_flight(ss);
    return r;
}

void kigen_sock_sink_start(struct kigen_sink *sink, uv_loop_t *loop)
{
    struct kigen_sock_sink *ss = sock_sink(sink);

    ss->loop = loop;
    uv_timer_init(loop, &ss->timer);
}

static void timer_closed_cb(uv_handle_t *handle)
{
    kigen_sink_closed(&container_of((uv_timer_t *)handle, struct kigen_sock_sink, timer)->base);
}

void kigen_sock_sink_close(struct kigen_sink *sink)
{
    struct kigen_sock_sink *ss = sock_sink(sink);
    void *token = ss->token;

    uv_timer_stop(&ss->timer);
    disconnect(ss);
    if (token) {
        clear_flight(ss);
        kigen_sink_finish(sink, token, true);
    }
    uv_close((uv_handle_t *)&ss->timer, timer_closed_cb);
}

void kigen_sock_sink_release(struct kigen_sock_sink *ss)
{
    disconnect(ss);
    clear_flight(ss);
    free(ss->path);
    ss->path = NULL;
}
