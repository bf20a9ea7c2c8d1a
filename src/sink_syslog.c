/*
 * The syslog sink (SPEC §7): one RFC 5424 message per alert on a local AF_UNIX socket,
 *
 *   <PRI>1 TIMESTAMP HOSTNAME kigend PROCID MSGID [kigen@32473 event="..." sha256="..."] MSG
 *
 * with facility daemon (3), the event name as MSGID and every alert field as an SD-PARAM
 * (KIGEN_LABEL_TEAM becomes label_team). 32473 is the enterprise number RFC 5612 reserves
 * for documentation; kigen has none of its own.
 *
 * The socket is a datagram socket (/dev/log, rsyslog, syslog-ng) or, when connect() says
 * EPROTOTYPE, a stream socket, framed by octet counting (RFC 6587 §3.4.1). It is non-blocking:
 * the loop never waits for a slow reader. One alert is in flight at a time, which keeps the
 * order. When the socket is busy (EAGAIN) or gone (ENOENT, ECONNREFUSED: the syslog daemon
 * restarts), the alert stays in flight and is retried on a timer with a doubling delay,
 * reconnecting each time. An outage is logged once; once it has lasted retry_ms, the alert
 * in flight fails, and so does each later one after a single attempt until the socket works
 * again, so that the queue keeps moving.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sink.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define FACILITY_DAEMON 3
#define SD_ID           "kigen@32473"
#define SD_NAME_MAX     32 /* RFC 5424 §6.3.3: SD-NAME = 1*32PRINTUSASCII */
#define BUSY_BACKOFF_MS 10 /* EAGAIN: the reader is slow, it will be back soon */
#define BUSY_MAX_MS     1000
#define GONE_BACKOFF_MS 1000 /* no socket or no listener: a restart takes seconds */
#define GONE_MAX_MS     8000

struct syslog_sink {
    struct kigen_sink base;
    uv_loop_t *loop;
    uv_timer_t timer; /* the next attempt */
    char *path;
    int fd; /* connected, or -1 */
    int socktype;
    char hostname[256]; /* RFC 5424 HOSTNAME, or "-" */
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

struct buf {
    char *s;
    size_t len, cap;
    bool failed;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 512;
        char *v;

        while (cap - b->len < n + 1)
            cap *= 2;
        v = realloc(b->s, cap);
        if (!v) {
            b->failed = true;
            return;
        }
        b->s = v;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static bool is_printusascii(const char *s, size_t max)
{
    size_t len = strlen(s);

    if (len == 0 || len > max)
        return false;
    for (; *s; s++)
        if (*s < 33 || *s > 126)
            return false;
    return true;
}

/* PARAM-VALUE (RFC 5424 §6.3.3): '"', '\' and ']' are escaped with a backslash. */
static void add_param_value(struct buf *b, const char *v)
{
    const char *run = v;

    for (; *v; v++) {
        if (*v == '"' || *v == '\\' || *v == ']') {
            buf_add(b, run, (size_t)(v - run));
            buf_add(b, "\\", 1);
            run = v;
        }
    }
    buf_add(b, run, (size_t)(v - run));
}

/*
 * The PARAM-NAME of an alert field: lowercase, without the KIGEN_ prefix, cut to 32
 * characters (RFC 5424 allows a name to repeat, so a cut cannot make the message invalid).
 */
static size_t param_name(const char *field, char out[SD_NAME_MAX + 1])
{
    size_t n = 0;

    if (strncmp(field, "KIGEN_", 6) == 0)
        field += 6;
    for (; *field && n < SD_NAME_MAX; field++) {
        char c = *field;

        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c < 33 || c > 126 || c == '=' || c == ']' || c == '"')
            c = '_';
        out[n++] = c;
    }
    out[n] = '\0';
    return n;
}

/* The message for alert at the current time. Returns 0 or -ENOMEM. */
static int format_message(const struct syslog_sink *ss, const struct kigen_alert *alert,
                          struct buf *b)
{
    const char *msgid = kigen_event_name(alert->event);
    int severity = alert->priority < 0 ? 0 : alert->priority > 7 ? 7 : alert->priority;
    char head[512], name[SD_NAME_MAX + 1];
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (!msgid || !is_printusascii(msgid, 32))
        msgid = "-";
    snprintf(head, sizeof(head), "<%d>1 %04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s kigend %ld %s [",
             FACILITY_DAEMON * 8 + severity, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, ss->hostname, (long)getpid(),
             msgid);
    buf_str(b, head);
    buf_str(b, SD_ID);
    for (size_t i = 0; i < alert->n_fields; i++) {
        if (param_name(alert->fields[i].name, name) == 0)
            continue;
        buf_add(b, " ", 1);
        buf_str(b, name);
        buf_add(b, "=\"", 2);
        add_param_value(b, alert->fields[i].value);
        buf_add(b, "\"", 1);
    }
    buf_add(b, "] ", 2);
    buf_str(b, alert->message);
    return b->failed ? -ENOMEM : 0;
}

static void disconnect(struct syslog_sink *ss)
{
    if (ss->fd >= 0)
        close(ss->fd);
    ss->fd = -1;
}

/* Connects to the path, as a datagram socket or else a stream socket. Returns 0 or -errno. */
static int connect_socket(struct syslog_sink *ss)
{
    static const int socktypes[] = { SOCK_DGRAM, SOCK_STREAM };
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int r = -EPROTOTYPE;

    if (strlen(ss->path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, ss->path, strlen(ss->path) + 1);
    for (size_t i = 0; i < 2 && r == -EPROTOTYPE; i++) {
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

/*
 * Writes the rest of the alert in flight. Returns 0 when it is all out, -EAGAIN when the
 * reader is slow, -EMSGSIZE or -ENAMETOOLONG for what no retry mends, another -errno when the
 * socket is unreachable (the connection is dropped, the next try reconnects), or -ENOMEM.
 */
static int write_out(struct syslog_sink *ss)
{
    int r;

    if (ss->fd < 0) {
        r = connect_socket(ss);
        /* A full backlog (EAGAIN) is a listener that is not keeping up: try again later. */
        if (r < 0)
            return r == -EAGAIN ? -ECONNREFUSED : r;
        ss->out = NULL; /* a new connection starts the message again */
    }
    if (!ss->out) {
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
    }
    while (ss->off < ss->out_len) {
        ssize_t n =
            send(ss->fd, ss->out + ss->off, ss->out_len - ss->off, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            r = -errno;
            if (r == -EINTR)
                continue;
            if (r == -EAGAIN || r == -ENOBUFS)
                return -EAGAIN;
            disconnect(ss);
            return r;
        }
        if (ss->socktype == SOCK_DGRAM)
            break; /* a datagram goes whole or not at all */
        ss->off += (size_t)n;
    }
    return 0;
}

static void clear_flight(struct syslog_sink *ss)
{
    free(ss->msg);
    free(ss->framed);
    ss->msg = ss->framed = NULL;
    ss->out = NULL;
    ss->token = NULL;
}

static void timer_cb(uv_timer_t *timer);

/*
 * One attempt at the alert in flight. Returns 1 when it went out, 0 when a retry is
 * scheduled, or a negative errno when it failed (logged).
 */
static int attempt(struct syslog_sink *ss)
{
    const char *event = kigen_event_name(ss->event);
    uint64_t now, cap;
    int r = write_out(ss);

    if (r == 0) {
        if (ss->is_unreachable)
            kigen_log_notice("Syslog socket '%s' reachable again", ss->path);
        ss->in_outage = ss->is_unreachable = false;
        return 1;
    }
    if (r == -EMSGSIZE || r == -ENAMETOOLONG || r == -ENOMEM) {
        return kigen_log_errno(KIGEN_LOG_WARNING, r,
                               "Cannot send a %s alert to syslog '%s', dropping it and "
                               "carrying on",
                               event, ss->path);
    }
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
    if (r != -EAGAIN) {
        cap = GONE_MAX_MS;
        if (ss->backoff_ms < GONE_BACKOFF_MS)
            ss->backoff_ms = GONE_BACKOFF_MS;
        if (!ss->is_unreachable)
            kigen_log_errno(KIGEN_LOG_WARNING, r,
                            "Cannot reach syslog socket '%s', retrying for up to %llu s", ss->path,
                            (unsigned long long)(ss->base.limits->retry_ms / 1000));
        ss->is_unreachable = true;
    }
    if (now + ss->backoff_ms > ss->outage_since + ss->base.limits->retry_ms) {
        /* Half a frame on a stream would garble the next message: start a new connection. */
        if (ss->socktype == SOCK_STREAM)
            disconnect(ss);
        return kigen_log_errno(KIGEN_LOG_WARNING, r,
                               "Cannot send a %s alert to syslog '%s' for %llu s, dropping it "
                               "and carrying on",
                               event, ss->path,
                               (unsigned long long)((now - ss->outage_since) / 1000));
    }
    uv_timer_start(&ss->timer, timer_cb, ss->backoff_ms, 0);
    ss->backoff_ms = ss->backoff_ms * 2 > cap ? cap : ss->backoff_ms * 2;
    return 0;
}

static void timer_cb(uv_timer_t *timer)
{
    struct syslog_sink *ss = container_of(timer, struct syslog_sink, timer);
    void *token = ss->token;
    int r = attempt(ss);

    if (r == 0)
        return;
    clear_flight(ss);
    kigen_sink_finish(&ss->base, token, r < 0);
}

static int syslog_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct syslog_sink *ss = container_of(sink, struct syslog_sink, base);
    struct buf b = { 0 };
    int r;

    r = format_message(ss, alert, &b);
    if (r < 0) {
        free(b.s);
        return kigen_log_errno(KIGEN_LOG_WARNING, r,
                               "Cannot send a %s alert to syslog '%s', dropping it and "
                               "carrying on",
                               kigen_event_name(alert->event), ss->path);
    }
    ss->msg = b.s;
    ss->msg_len = b.len;
    ss->out = NULL;
    ss->token = token;
    ss->event = alert->event;
    r = attempt(ss);
    if (r != 0)
        clear_flight(ss);
    return r;
}

static int syslog_create(const char *target, struct kigen_sink **ret_sink)
{
    struct syslog_sink *ss = calloc(1, sizeof(*ss));

    if (!ss)
        return -ENOMEM;
    ss->fd = -1;
    ss->path = strdup(target);
    if (!ss->path) {
        free(ss);
        return -ENOMEM;
    }
    /* RFC 5424 §6.2.4: the name of the machine, or "-" when it is no PRINTUSASCII word. */
    if (gethostname(ss->hostname, sizeof(ss->hostname)) < 0)
        ss->hostname[0] = '\0';
    ss->hostname[sizeof(ss->hostname) - 1] = '\0';
    if (!is_printusascii(ss->hostname, 255))
        strcpy(ss->hostname, "-");
    *ret_sink = &ss->base;
    return 0;
}

static void syslog_start(struct kigen_sink *sink, uv_loop_t *loop)
{
    struct syslog_sink *ss = container_of(sink, struct syslog_sink, base);

    ss->loop = loop;
    uv_timer_init(loop, &ss->timer);
}

static void timer_closed_cb(uv_handle_t *handle)
{
    struct syslog_sink *ss = container_of((uv_timer_t *)handle, struct syslog_sink, timer);

    kigen_sink_closed(&ss->base);
}

static void syslog_close(struct kigen_sink *sink)
{
    struct syslog_sink *ss = container_of(sink, struct syslog_sink, base);
    void *token = ss->token;

    uv_timer_stop(&ss->timer);
    disconnect(ss);
    if (token) {
        clear_flight(ss);
        kigen_sink_finish(sink, token, true);
    }
    uv_close((uv_handle_t *)&ss->timer, timer_closed_cb);
}

static void syslog_free(struct kigen_sink *sink)
{
    struct syslog_sink *ss = container_of(sink, struct syslog_sink, base);

    disconnect(ss);
    clear_flight(ss);
    free(ss->path);
    free(ss);
}

const struct kigen_sink_type kigen_sink_syslog = {
    .name = "syslog",
    .max_in_flight = 1,
    .create = syslog_create,
    .start = syslog_start,
    .send = syslog_send,
    .close = syslog_close,
    .free = syslog_free,
};
