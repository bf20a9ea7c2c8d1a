/*
 * The journald sink (SPEC §7): one journal entry per alert with MESSAGE, PRIORITY, MESSAGE_ID
 * (units/kigen.catalog explains each), SYSLOG_IDENTIFIER=kigend and every field of the
 * alert as NAME=value.
 *
 * The entry goes to journald's socket in journald's native protocol: "NAME=value\n" per
 * field, or, for a value that holds a newline, "NAME\n", the value's length as 64-bit little
 * endian, the value and "\n". An entry too large for one datagram goes in a sealed memfd passed
 * with SCM_RIGHTS, as libsystemd does. kigen writes it itself rather than call
 * sd_journal_sendv(), which blocks while journald does not read: this socket is non-blocking,
 * and a journald that stops reading delays only its own queue (sink_socket.c retries and
 * gives up after retry_ms like the syslog sink).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sink_socket.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Where journald listens for native entries. */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* journald accepts [A-Z0-9_]{1,64}, not starting with '_' (trusted fields) or a digit. */
static bool is_field_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > 64 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

/* Appends one field in the native protocol; the buffer was sized beforehand. */
static void put(char *buf, size_t *off, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    char *p = buf + *off;

    memcpy(p, name, nlen);
    p += nlen;
    if (memchr(value, '\n', vlen)) {
        *p++ = '\n';
        for (int i = 0; i < 8; i++)
            *p++ = (char)((uint64_t)vlen >> (8 * i) & 0xff);
    } else {
        *p++ = '=';
    }
    memcpy(p, value, vlen);
    p += vlen;
    *p++ = '\n';
    *off = (size_t)(p - buf);
}

/* The most a field takes: NAME, '\n', 8 length bytes, value, '\n'. */
static size_t field_size(const char *name, const char *value)
{
    return strlen(name) + 10 + strlen(value);
}

static int format_entry(struct kigen_sock_sink *sock, const struct kigen_alert *alert, char **ret,
                        size_t *ret_len)
{
    const char *message_id = kigen_event_message_id(alert->event);
    char priority[16], *buf;
    size_t size, off = 0;

    (void)sock;
    snprintf(priority, sizeof(priority), "%d", alert->priority);
    if (!message_id)
        message_id = "";
    size = field_size("MESSAGE", alert->message) + field_size("PRIORITY", priority) +
           field_size("MESSAGE_ID", message_id) + field_size("SYSLOG_IDENTIFIER", "kigend");
    for (size_t i = 0; i < alert->n_fields; i++)
        size += field_size(alert->fields[i].name, alert->fields[i].value);
    buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    put(buf, &off, "MESSAGE", alert->message);
    put(buf, &off, "PRIORITY", priority);
    put(buf, &off, "MESSAGE_ID", message_id);
    put(buf, &off, "SYSLOG_IDENTIFIER", "kigend");
    for (size_t i = 0; i < alert->n_fields; i++) {
        const struct kigen_alert_field *f = &alert->fields[i];

        /* A name journald would refuse would lose the whole entry: leave that field out. */
        if (!is_field_name(f->name)) {
            kigen_log_debug("Alert field '%s' is no journal field name, skipping", f->name);
            continue;
        }
        put(buf, &off, f->name, f->value);
    }
    *ret = buf;
    *ret_len = off;
    return 0;
}

/* An entry larger than a datagram: in a sealed memfd, its descriptor passed to journald. */
static int send_memfd(int fd, const char *msg, size_t len)
{
    union {
        struct cmsghdr cmsg;
        char buf[CMSG_SPACE(sizeof(int))];
    } control = { 0 };
    struct msghdr mh = { .msg_control = &control, .msg_controllen = sizeof(control) };
    struct cmsghdr *cmsg;
    int mfd, r = 0;

    mfd = memfd_create("kigen-journal-entry", MFD_ALLOW_SEALING | MFD_CLOEXEC);
    if (mfd < 0)
        return -errno;
    for (size_t off = 0; off < len && r == 0;) {
        ssize_t n = write(mfd, msg + off, len - off);

        if (n < 0 && errno != EINTR)
            r = -errno;
        else if (n > 0)
            off += (size_t)n;
    }
    if (r == 0 &&
        fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        r = -errno;
    if (r == 0) {
        cmsg = CMSG_FIRSTHDR(&mh);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &mfd, sizeof(int));
        if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
            r = -errno;
    }
    close(mfd);
    return r;
}

static const struct kigen_sock_sink_ops journald_ops = {
    .format = format_entry,
    .send_large = send_memfd,
};

/* The socket: the default, or the one the limits name (tests). */
static const char *journal_socket(const struct kigen_sink *sink)
{
    const struct kigen_sink_limits *l = sink->limits;

    return l && l->journal_socket ? l->journal_socket : JOURNAL_SOCKET;
}

static int journald_create(const char *target, const struct kigen_config *config,
                           struct kigen_sink **ret_sink)
{
    struct kigen_sock_sink *ss = calloc(1, sizeof(*ss));

    (void)target;
    if (!ss)
        return -ENOMEM;
    if (kigen_sock_sink_init(ss, &journald_ops, "journald", JOURNAL_SOCKET) < 0) {
        free(ss);
        return -ENOMEM;
    }
    *ret_sink = &ss->base;
    return 0;
}

static int journald_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct kigen_sock_sink *ss = container_of(sink, struct kigen_sock_sink, base);

    if (kigen_sock_sink_set_path(ss, journal_socket(sink)) < 0)
        return kigen_log_errno(KIGEN_LOG_WARNING, -ENOMEM,
                               "Cannot send a %s alert to journald, dropping it and carrying on",
                               kigen_event_name(alert->event));
    return kigen_sock_sink_send(sink, alert, token);
}

static void journald_free(struct kigen_sink *sink)
{
    struct kigen_sock_sink *ss = container_of(sink, struct kigen_sock_sink, base);

    kigen_sock_sink_release(ss);
    free(ss);
}

const struct kigen_sink_type kigen_sink_journald = {
    .name = "journald",
    .max_in_flight = 1,
    .create = journald_create,
    .start = kigen_sock_sink_start,
    .send = journald_send,
    .close = kigen_sock_sink_close,
    .free = journald_free,
};
