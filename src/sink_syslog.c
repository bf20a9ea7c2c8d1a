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
 * EPROTOTYPE, a stream socket, framed by octet counting (RFC 6587 §3.4.1). Writing, retrying
 * and outages are sink_socket.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sink_socket.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define FACILITY_DAEMON 3
#define SD_ID           "kigen@32473"
#define SD_NAME_MAX     32 /* RFC 5424 §6.3.3: SD-NAME = 1*32PRINTUSASCII */

struct syslog_sink {
    struct kigen_sock_sink sock;
    char hostname[256]; /* RFC 5424 HOSTNAME, or "-" */
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

/* The message for alert at the current time, into b. Returns 0 or -ENOMEM. */
static int format_into(const struct syslog_sink *ss, const struct kigen_alert *alert, struct buf *b)
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

static int format_message(struct kigen_sock_sink *sock, const struct kigen_alert *alert, char **ret,
                          size_t *ret_len)
{
    struct buf b = { 0 };
    int r = format_into(container_of(sock, struct syslog_sink, sock), alert, &b);

    if (r < 0) {
        free(b.s);
        return r;
    }
    *ret = b.s;
    *ret_len = b.len;
    return 0;
}

static const struct kigen_sock_sink_ops syslog_ops = {
    .format = format_message,
    .is_stream_allowed = true,
};

static int syslog_create(const char *target, const struct kigen_config *config,
                         struct kigen_sink **ret_sink)
{
    struct syslog_sink *ss = calloc(1, sizeof(*ss));

    if (!ss)
        return -ENOMEM;
    if (kigen_sock_sink_init(&ss->sock, &syslog_ops, "syslog", target) < 0) {
        free(ss);
        return -ENOMEM;
    }
    /* RFC 5424 §6.2.4: the name of the machine, or "-" when it is no PRINTUSASCII word. */
    if (gethostname(ss->hostname, sizeof(ss->hostname)) < 0)
        ss->hostname[0] = '\0';
    ss->hostname[sizeof(ss->hostname) - 1] = '\0';
    if (!is_printusascii(ss->hostname, 255))
        strcpy(ss->hostname, "-");
    *ret_sink = &ss->sock.base;
    return 0;
}

static void syslog_free(struct kigen_sink *sink)
{
    struct syslog_sink *ss = container_of(sink, struct syslog_sink, sock.base);

    kigen_sock_sink_release(&ss->sock);
    free(ss);
}

const struct kigen_sink_type kigen_sink_syslog = {
    .name = "syslog",
    .max_in_flight = 1,
    .create = syslog_create,
    .start = kigen_sock_sink_start,
    .send = kigen_sock_sink_send,
    .close = kigen_sock_sink_close,
    .free = syslog_free,
};
