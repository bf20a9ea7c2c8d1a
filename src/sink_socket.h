/*
 * What the syslog and the journald sink share: one alert at a time written to a local AF_UNIX
 * socket that the loop never waits on.
 *
 * The socket is non-blocking. When it is busy (EAGAIN: the reader is slow) or gone (ENOENT,
 * ECONNREFUSED: the daemon behind it restarts), the alert stays in flight and is retried on a
 * timer with a doubling delay, reconnecting each time. An outage is logged once; once it has
 * lasted retry_ms (a socket that stays full: 5 s at most, since a reader that is alive drains
 * it in milliseconds), the alert in flight fails, and so does each later one after a single
 * attempt until the socket works again, so that the queue keeps moving. Closing (SIGTERM)
 * drops the alert in flight at once. Loop thread only.
 */
#ifndef KIGEN_SINK_SOCKET_H
#define KIGEN_SINK_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "sink.h"

struct kigen_sock_sink;

struct kigen_sock_sink_ops {
    /* The message for alert, malloc'd, in *ret and *ret_len. Returns 0 or -ENOMEM. */
    int (*format)(struct kigen_sock_sink *ss, const struct kigen_alert *alert, char **ret,
                  size_t *ret_len);
    /*
     * Sends a message too large for one datagram (EMSGSIZE) another way on the connected
     * socket fd, or NULL: such a message fails. Returns 0, -EAGAIN (try again later) or
     * another -errno.
     */
    int (*send_large)(int fd, const char *msg, size_t len);
    /* EPROTOTYPE on a datagram socket: connect as a stream socket, octet-counted (RFC 6587). */
    bool is_stream_allowed;
};

struct kigen_sock_sink {
    struct kigen_sink base;
    const struct kigen_sock_sink_ops *ops;
    const char *what; /* "syslog", "journald": for messages */
    char *path;       /* the socket */
    uv_loop_t *loop;
    uv_timer_t timer; /* the next attempt */
    int fd;           /* connected, or -1 */
    int socktype;
    /* The alert in flight. */
    void *token;
    enum kigen_event event;
    char *msg;
    size_t msg_len;
    char *framed;    /* msg with its octet count, for a stream socket */
    const char *out; /* what goes on the socket; NULL: not yet framed for this connection */
    size_t out_len, off;
    /* The current outage, when in_outage. */
    bool in_outage;
    bool is_unreachable; /* logged as such */
    uint64_t outage_since;
    uint64_t last_failure; /* a quiet spell longer than retry_ms ends the outage */
    uint64_t backoff_ms;
};

/* For a sink type's create(): path is copied. Returns 0 or -ENOMEM. */
int kigen_sock_sink_init(struct kigen_sock_sink *ss, const struct kigen_sock_sink_ops *ops,
                         const char *what, const char *path);

/* Points the sink at another socket (for alerts that start after the call). 0 or -ENOMEM. */
int kigen_sock_sink_set_path(struct kigen_sock_sink *ss, const char *path);

/* Releases what init and the deliveries allocated; the caller frees the sink itself. */
void kigen_sock_sink_release(struct kigen_sock_sink *ss);

/* struct kigen_sink_type's start, send and close for a sink that embeds struct kigen_sock_sink. */
void kigen_sock_sink_start(struct kigen_sink *sink, uv_loop_t *loop);
int kigen_sock_sink_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token);
void kigen_sock_sink_close(struct kigen_sink *sink);

#endif
