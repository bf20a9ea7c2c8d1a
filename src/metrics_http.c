/*
 * GET /metrics over HTTP (SPEC §10), served by libmicrohttpd from a thread of its own.
 *
 * libmicrohttpd runs in its "external epoll" mode, driven by one thread of ours that polls
 * two descriptors: libmicrohttpd's epoll descriptor and an eventfd. The eventfd is what lets
 * a publish or a stop reach the thread at once; libmicrohttpd's own internal thread has no
 * public way to be woken, so with it a replaced text would stay in memory until the next
 * request, which for 100,000 certificates is some 250 MB held for nothing.
 *
 * A published text becomes a libmicrohttpd response object, which is immutable and counts
 * its references: each connection answering with it holds one, and the server thread holds
 * one while it is the text answered. Ownership moves in one direction without a lock:
 *
 *   loop thread     publish: response -> exchange into `pending` (a response found there was
 *                   never seen by the server thread: destroyed at once), then wake the thread
 *   server thread   take: exchange `pending` with NULL, drop its reference to `served`,
 *                   serve the new one; a connection still sending the old one keeps it alive
 *
 * Only the server thread touches `served` and runs libmicrohttpd, until stop joins it.
 */
#include "metrics_http.h"

#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONTENT_TYPE      "text/plain; version=0.0.4; charset=utf-8"
#define PLAIN_TEXT        "text/plain; charset=utf-8"
#define METRICS_PATH      "/metrics"
#define LISTEN_BACKLOG    128
#define CONNECTION_MEMORY (32 * 1024) /* request line and headers, and the answer's headers */

struct kigen_metrics_http {
    struct MHD_Daemon *mhd;
    int epoll_fd; /* libmicrohttpd's, closed by it */
    int wake_fd;  /* eventfd: a publish or a stop */
    pthread_t thread;
    bool has_thread;
    uint16_t port;
    atomic_bool is_stopping;
    _Atomic(struct MHD_Response *) pending; /* published, not yet taken by the server thread */
    struct MHD_Response *served;            /* server thread: NULL before the first publish */
    /* Fixed answers, made at start and shared by every connection. */
    struct MHD_Response *unavailable;
    struct MHD_Response *not_found;
    struct MHD_Response *not_allowed;
    struct MHD_Response *too_large;
};

static int failf(char *errbuf, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes a one-line reason into errbuf (may be NULL) and returns r. */
static int failf(char *errbuf, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;

    if (errbuf && errlen) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return r;
}

static void destroy_response(struct MHD_Response *response)
{
    if (response)
        MHD_destroy_response(response);
}

/* ---- the server thread ---- */

/* Server thread: the latest published text replaces the one answered so far. */
static void take_published(struct kigen_metrics_http *h)
{
    struct MHD_Response *response = atomic_exchange(&h->pending, NULL);

    if (!response)
        return;
    destroy_response(h->served); /* freed once no connection still sends it */
    h->served = response;
}

/* A body announced by Content-Length (other than 0) or Transfer-Encoding. */
static bool has_body(struct MHD_Connection *conn)
{
    const char *length =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

    return (length && strcmp(length, "0") != 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*
 * Called once the request line and headers are in. Every answer is queued at once, so that
 * libmicrohttpd never reads a body (it closes the connection after answering instead).
 */
static enum MHD_Result answer_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
    struct kigen_metrics_http *h = cls;

    if (strcmp(url, METRICS_PATH) != 0)
        return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, h->not_found);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, h->not_allowed);
    if (has_body(conn))
        return MHD_queue_response(conn, MHD_HTTP_CONTENT_TOO_LARGE, h->too_large);
    /* The wake-up may still be on its way: a request after a publish sees what it published. */
    take_published(h);
    if (!h->served)
        return MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, h->unavailable);
    return MHD_queue_response(conn, MHD_HTTP_OK, h->served);
}

static unsigned int connections(struct MHD_Daemon *mhd)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

    return info ? info->num_connections : 0;
}

/*
 * At the connection limit libmicrohttpd takes its listening socket out of the epoll set, and
 * it puts it back only at the start of a run. So a run that closed connections is followed by
 * another: otherwise a client waiting in the backlog would wait for some unrelated event.
 */
static void run(struct MHD_Daemon *mhd)
{
    unsigned int before;

    do {
        before = connections(mhd);
        MHD_run(mhd);
    } while (connections(mhd) < before);
}

static void *serve_thread(void *data)
{
    struct kigen_metrics_http *h = data;
    eventfd_t n;

    for (;;) {
        struct pollfd fds[2] = { { .fd = h->epoll_fd, .events = POLLIN },
                                 { .fd = h->wake_fd, .events = POLLIN } };
        MHD_UNSIGNED_LONG_LONG ms;
        int timeout = -1;

        /* libmicrohttpd's next deadline: an idle connection to close, or work it has pending. */
        if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
            timeout = ms < INT_MAX ? (int)ms : INT_MAX;
        /* A failed poll (EINTR, ENOMEM) leaves revents 0: check, then go round again. */
        poll(fds, 2, timeout);
        if (fds[1].revents & POLLIN)
            eventfd_read(h->wake_fd, &n);
        if (atomic_load(&h->is_stopping))
            break;
        take_published(h);
        run(h->mhd);
    }
    return NULL;
}

/* ---- start and stop ---- */

/*
 * Splits "host:port" or "[v6]:port" into host (brackets removed) and port; 0 or -EINVAL.
 * The same syntax as config.c's is_host_port, but port 0 (any free port) is allowed here.
 */
static int split_listen(const char *listen, char *host, size_t hostlen, char *port, size_t portlen,
                        bool *ret_is_bracketed)
{
    const char *colon = strrchr(listen, ':');
    size_t len, plen;
    bool is_bracketed;
    unsigned long v = 0;

    if (!colon)
        return -EINVAL;
    plen = strlen(colon + 1);
    if (plen == 0 || plen >= portlen || plen > 5)
        return -EINVAL;
    for (size_t i = 0; i < plen; i++) {
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned long)(colon[1 + i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    len = (size_t)(colon - listen);
    is_bracketed = len >= 2 && listen[0] == '[' && listen[len - 1] == ']';
    if (is_bracketed) {
        listen++;
        len -= 2;
    }
    if (len == 0 || len >= hostlen || (!is_bracketed && memchr(listen, ':', len)))
        return -EINVAL;
    memcpy(host, listen, len);
    host[len] = '\0';
    memcpy(port, colon + 1, plen + 1);
    *ret_is_bracketed = is_bracketed;
    return 0;
}

/* The negative errno for a getaddrinfo() error. */
static int gai_errno(int e)
{
    switch (e) {
    case EAI_SYSTEM:
        return errno > 0 ? -errno : -EIO;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_AGAIN:
        return -EAGAIN;
    default:
        return -EADDRNOTAVAIL;
    }
}

/* A non-blocking, close-on-exec socket bound to ai and listening; 0 or -errno. */
static int bind_listener(const struct addrinfo *ai, int *ret_fd)
{
    static const int on = 1;
    int fd, r = 0;

    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
        (ai->ai_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        r = -errno;
        close(fd);
        return r;
    }
    *ret_fd = fd;
    return 0;
}

/* Resolves listen and binds one of its addresses, the first IPv4 one if any. */
static int open_listener(const char *listen, int *ret_fd, uint16_t *ret_port, char *errbuf,
                         size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
    struct addrinfo *list = NULL, *pick = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char host[NI_MAXHOST], port[8];
    bool is_bracketed;
    int e, fd = -1, r;

    r = split_listen(listen, host, sizeof(host), port, sizeof(port), &is_bracketed);
    if (r < 0)
        return failf(errbuf, errlen, r, "cannot listen on %s: not host:port or [v6]:port", listen);
    if (is_bracketed) {
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
    }
    e = getaddrinfo(host, port, &hints, &list);
    if (e != 0) {
        r = gai_errno(e);
        return failf(errbuf, errlen, r, "cannot listen on %s: %s", listen,
                     e == EAI_SYSTEM ? strerror(-r) : gai_strerror(e));
    }
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next)
        if ((ai->ai_family == AF_INET && (!pick || pick->ai_family != AF_INET)) ||
            (ai->ai_family == AF_INET6 && !pick))
            pick = ai;
    if (!pick) {
        r = failf(errbuf, errlen, -EAFNOSUPPORT, "cannot listen on %s: no IPv4 or IPv6 address",
                  listen);
        goto out;
    }
    r = bind_listener(pick, &fd);
    if (r == 0 && getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
        r = -errno;
    if (r < 0) {
        failf(errbuf, errlen, r, "cannot listen on %s: %s", listen, strerror(-r));
        goto out;
    }
    *ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    *ret_fd = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(list);
    return r;
}

/* A fixed plain-text answer; extra_header (may be NULL) is "Name", extra_value its value. */
static struct MHD_Response *fixed_answer(const char *body, const char *extra_header,
                                         const char *extra_value)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);

    if (response &&
        (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, PLAIN_TEXT) != MHD_YES ||
         (extra_header &&
          MHD_add_response_header(response, extra_header, extra_value) != MHD_YES))) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return response;
}

int kigen_metrics_http_start(const char *listen, struct kigen_metrics_http **ret_h, char *errbuf,
                             size_t errlen)
{
    struct kigen_metrics_http *h = NULL;
    const union MHD_DaemonInfo *info;
    sigset_t all, saved;
    int fd = -1, r;

    h = calloc(1, sizeof(*h));
    if (!h) {
        r = failf(errbuf, errlen, -ENOMEM, "cannot listen on %s: %s", listen, strerror(ENOMEM));
        goto out;
    }
    h->wake_fd = -1;
    atomic_init(&h->is_stopping, false);
    atomic_init(&h->pending, NULL);
    r = open_listener(listen, &fd, &h->port, errbuf, errlen);
    if (r < 0)
        goto out;
    h->unavailable = fixed_answer("no metrics yet: the first scan has not finished\n", NULL, NULL);
    h->not_found = fixed_answer("not found: the metrics are at " METRICS_PATH "\n", NULL, NULL);
    h->not_allowed = fixed_answer("method not allowed\n", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    h->too_large = fixed_answer("a request body is not accepted\n", NULL, NULL);
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->wake_fd < 0 || !h->unavailable || !h->not_found || !h->not_allowed || !h->too_large) {
        r = h->wake_fd < 0 ? -errno : -ENOMEM;
        failf(errbuf, errlen, r, "cannot listen on %s: %s", listen, strerror(-r));
        goto out;
    }
    /* Without MHD_USE_ERROR_LOG libmicrohttpd prints nothing; the caller logs our errbuf. */
    errno = 0;
    h->mhd = MHD_start_daemon(
        MHD_USE_EPOLL, 0, NULL, NULL, answer_cb, h, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)KIGEN_METRICS_HTTP_MAX_CLIENTS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)KIGEN_METRICS_HTTP_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_END);
    if (!h->mhd) {
        r = errno > 0 ? -errno : -ENOMEM;
        failf(errbuf, errlen, r, "cannot listen on %s: cannot start the HTTP server: %s", listen,
              strerror(-r));
        goto out;
    }
    fd = -1; /* libmicrohttpd's from now on: MHD_stop_daemon() closes it */
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    h->epoll_fd = info ? info->epoll_fd : -1;
    if (h->epoll_fd < 0) {
        r = failf(errbuf, errlen, -EINVAL, "cannot listen on %s: libmicrohttpd has no epoll",
                  listen);
        goto out;
    }
    /* Signals are the loop's business: the server thread blocks them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    r = -pthread_create(&h->thread, NULL, serve_thread, h);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (r < 0) {
        failf(errbuf, errlen, r, "cannot listen on %s: cannot start a thread: %s", listen,
              strerror(-r));
        goto out;
    }
    h->has_thread = true;
    *ret_h = h;
    h = NULL;
out:
    if (fd >= 0)
        close(fd);
    kigen_metrics_http_stop(h);
    return r;
}

uint16_t kigen_metrics_http_port(const struct kigen_metrics_http *h)
{
    return h->port;
}

int kigen_metrics_http_publish(struct kigen_metrics_http *h, char *text, size_t len)
{
    struct MHD_Response *response, *old;

    /* libmicrohttpd calls free(text) when the last reference to the response goes. */
    response = MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (!response) {
        free(text);
        return -ENOMEM;
    }
    if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE) != MHD_YES) {
        MHD_destroy_response(response);
        return -ENOMEM;
    }
    old = atomic_exchange(&h->pending, response);
    destroy_response(old); /* never taken by the server thread: no connection holds it */
    /*
     * The wake-up lets the server thread drop the text it answered with now rather than at the
     * next request. Should it fail (it cannot: the counter is drained at every wake-up), the
     * next request still takes the new text.
     */
    eventfd_write(h->wake_fd, 1);
    return 0;
}

void kigen_metrics_http_stop(struct kigen_metrics_http *h)
{
    if (!h)
        return;
    if (h->has_thread) {
        atomic_store(&h->is_stopping, true);
        eventfd_write(h->wake_fd, 1);
        pthread_join(h->thread, NULL);
    }
    /* Closes the listening socket and every connection, which release their responses. */
    if (h->mhd)
        MHD_stop_daemon(h->mhd);
    destroy_response(h->served);
    destroy_response(atomic_exchange(&h->pending, NULL));
    destroy_response(h->unavailable);
    destroy_response(h->not_found);
    destroy_response(h->not_allowed);
    destroy_response(h->too_large);
    if (h->wake_fd >= 0)
        close(h->wake_fd);
    free(h);
}
