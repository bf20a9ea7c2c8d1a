#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "alert.h"
#include "log.h"
#include "sink.h"
#include "testutil.h"

#define MAX_ALERTS 64
#define SHA        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define SUBJECT    "CN=q\"b\\s]e,O=Example" /* every character RFC 5424 escapes */

struct tag {
    struct harness *h;
    unsigned index;
};

struct harness {
    uv_loop_t loop;
    uv_timer_t guard;
    bool is_guard_fired;
    struct kigen_sinks *sinks;
    struct kigen_config config;
    char dir[256];
    struct tag tags[MAX_ALERTS];
    unsigned done;
    unsigned failures[MAX_ALERTS];
    unsigned order[MAX_ALERTS];
    bool is_closed;
    char log[32768]; /* every warning and notice, one a line */
    size_t log_len;
};

static void log_cb(enum kigen_log_level level, const char *message, void *data)
{
    struct harness *h = data;
    int n;

    fprintf(stderr, "log<%d>: %s\n", (int)level, message);
    if (level > KIGEN_LOG_NOTICE)
        return;
    n = snprintf(h->log + h->log_len, sizeof(h->log) - h->log_len, "%s\n", message);
    if (n > 0 && (size_t)n < sizeof(h->log) - h->log_len)
        h->log_len += (size_t)n;
}

/* How many logged lines contain s. */
static unsigned logged(const struct harness *h, const char *s)
{
    unsigned n = 0;

    for (const char *p = h->log; (p = strstr(p, s)); p += strlen(s))
        n++;
    return n;
}

static void guard_cb(uv_timer_t *timer)
{
    struct harness *h = timer->data;

    h->is_guard_fired = true;
}

/* Runs the loop until cond holds; fails the test after ms instead of hanging. */
#define RUN_UNTIL(h, cond, ms)                                                  \
    do {                                                                        \
        (h)->is_guard_fired = false;                                            \
        uv_timer_start(&(h)->guard, guard_cb, (ms), 0);                         \
        while (!(cond) && !(h)->is_guard_fired)                                 \
            uv_run(&(h)->loop, UV_RUN_ONCE);                                    \
        uv_timer_stop(&(h)->guard);                                             \
        if (!(cond))                                                            \
            fail_msg("timed out after %d ms waiting for %s", (int)(ms), #cond); \
    } while (0)

/* Runs the loop for ms. */
static void run_for(struct harness *h, uint64_t ms)
{
    h->is_guard_fired = false;
    uv_timer_start(&h->guard, guard_cb, ms, 0);
    while (!h->is_guard_fired)
        uv_run(&h->loop, UV_RUN_ONCE);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    struct harness *h = calloc(1, sizeof(*h));

    if (!h || uv_loop_init(&h->loop) < 0)
        return -1;
    uv_timer_init(&h->loop, &h->guard);
    h->guard.data = h;
    snprintf(h->dir, sizeof(h->dir), "/tmp/kigen-sink-XXXXXX");
    if (!mkdtemp(h->dir))
        return -1;
    for (unsigned i = 0; i < MAX_ALERTS; i++)
        h->tags[i] = (struct tag){ h, i };
    kigen_log_setup(log_cb, h, KIGEN_LOG_DEBUG);
    *state = h;
    return 0;
}

static void closed_cb(void *data)
{
    ((struct harness *)data)->is_closed = true;
}

/* Closes the sinks; every handle must be gone afterwards. */
static void close_sinks(struct harness *h)
{
    if (!h->sinks)
        return;
    kigen_sinks_close(h->sinks, closed_cb, h);
    RUN_UNTIL(h, h->is_closed, 10000);
    kigen_sinks_free(h->sinks);
    h->sinks = NULL;
}

static int teardown(void **state)
{
    struct harness *h = *state;
    char cmd[300];

    close_sinks(h);
    uv_close((uv_handle_t *)&h->guard, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    kigen_log_setup(NULL, NULL, KIGEN_LOG_INFO);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
    if (system(cmd) != 0)
        return -1;
    free(h);
    return 0;
}

static char *path_in(const struct harness *h, const char *name)
{
    char *p = NULL;

    assert_true(asprintf(&p, "%s/%s", h->dir, name) > 0);
    return p;
}

static void start(struct harness *h)
{
    assert_int_equal(kigen_sinks_new(&h->loop, &h->config, &h->sinks), 0);
}

static void done_cb(void *data, unsigned failures)
{
    struct tag *t = data;

    t->h->failures[t->index] = failures;
    t->h->order[t->h->done++] = t->index;
}

/* A cert.renewal_open alert; KIGEN_DAYS_LEFT carries seq so that order can be checked. */
static struct kigen_alert *make_alert(unsigned seq)
{
    struct kigen_alert *a;
    char msg[128], num[16];

    snprintf(msg, sizeof(msg), "Renewal of CN=tanaka is open, renew now (alert %u)", seq);
    snprintf(num, sizeof(num), "%u", seq);
    a = kigen_alert_new(KIGEN_EVENT_CERT_RENEWAL_OPEN, msg);
    assert_non_null(a);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SHA256", SHA), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SUBJECT", SUBJECT), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_DAYS_LEFT", num), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_LABEL_TEAM", "customs"), 0);
    return a;
}

/* Delivers alert seq and frees the caller's copy at once: the sinks must hold their own. */
static void deliver(struct harness *h, unsigned seq)
{
    struct kigen_alert *a = make_alert(seq);

    assert_int_equal(kigen_sinks_deliver(h->sinks, a, done_cb, &h->tags[seq]), 0);
    kigen_alert_free(a);
}

/* ---- the dispatcher ---- */

static void test_done_cb_runs_from_the_loop_not_from_deliver(void **state)
{
    struct harness *h = *state;

    start(h); /* no sink enabled */
    deliver(h, 0);
    assert_int_equal(h->done, 0);
    assert_int_equal(kigen_sinks_pending(h->sinks), 1);
    RUN_UNTIL(h, h->done == 1, 2000);
    assert_int_equal(h->failures[0], 0);
    assert_int_equal(kigen_sinks_pending(h->sinks), 0);
}

static void test_close_reports_delivered_alerts_and_refuses_new_ones(void **state)
{
    struct harness *h = *state;
    struct kigen_alert *a = make_alert(1);

    start(h);
    deliver(h, 0);
    kigen_sinks_close(h->sinks, closed_cb, h);
    /* Delivered (no sink) before the close: reported during it. */
    assert_int_equal(h->done, 1);
    assert_int_equal(kigen_sinks_deliver(h->sinks, a, done_cb, &h->tags[1]), -ESHUTDOWN);
    kigen_alert_free(a);
    RUN_UNTIL(h, h->is_closed, 2000);
    kigen_sinks_free(h->sinks);
    h->sinks = NULL;
    assert_int_equal(h->done, 1);
}

/* ---- syslog ---- */

static int bind_unix(const char *path, int type)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (type == SOCK_STREAM)
        assert_int_equal(listen(fd, 8), 0);
    return fd;
}

/* Every datagram waiting on fd, NUL-terminated, into msgs; returns how many. */
static unsigned recv_all(int fd, char **msgs, unsigned max)
{
    unsigned n = 0;
    char buf[65536];
    ssize_t len;

    while (n < max && (len = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
        buf[len] = '\0';
        msgs[n] = strdup(buf);
        assert_non_null(msgs[n]);
        n++;
    }
    return n;
}

static void free_all(char **msgs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        free(msgs[i]);
}

struct sd_param {
    char name[64];
    char value[512];
};

struct syslog_msg {
    int pri;
    char timestamp[64], hostname[256], app[64], procid[32], msgid[64];
    char sd[4096]; /* the raw STRUCTURED-DATA */
    char sd_id[64];
    struct sd_param params[16];
    unsigned n_params;
    char msg[1024];
};

static const char *token(const char *p, char *out, size_t outlen)
{
    size_t n = strcspn(p, " ");

    assert_true(n > 0 && n < outlen && p[n] == ' ');
    memcpy(out, p, n);
    out[n] = '\0';
    return p + n + 1;
}

/* Parses an RFC 5424 message with one SD-ELEMENT and a MSG, failing on anything else. */
static void parse_syslog(const char *s, struct syslog_msg *m)
{
    const char *p = s, *sd;
    char version[8];

    memset(m, 0, sizeof(*m));
    assert_int_equal(*p++, '<');
    m->pri = (int)strtol(p, (char **)&p, 10);
    assert_int_equal(*p++, '>');
    p = token(p, version, sizeof(version));
    assert_string_equal(version, "1");
    p = token(p, m->timestamp, sizeof(m->timestamp));
    p = token(p, m->hostname, sizeof(m->hostname));
    p = token(p, m->app, sizeof(m->app));
    p = token(p, m->procid, sizeof(m->procid));
    p = token(p, m->msgid, sizeof(m->msgid));
    /* SD-ELEMENT = "[" SD-ID *(SP SD-PARAM) "]"; PARAM-VALUE escapes '"', '\' and ']'. */
    sd = p;
    assert_int_equal(*p++, '[');
    {
        size_t n = strcspn(p, " ]");

        assert_true(n < sizeof(m->sd_id));
        memcpy(m->sd_id, p, n);
        p += n;
    }
    while (*p == ' ') {
        struct sd_param *prm = &m->params[m->n_params++];
        size_t n, k = 0;

        assert_true(m->n_params <= 16);
        p++;
        n = strcspn(p, "=");
        assert_true(n > 0 && n <= 32 && p[n] == '=' && p[n + 1] == '"');
        memcpy(prm->name, p, n);
        p += n + 2;
        while (*p != '"') {
            assert_true(*p != '\0' && *p != ']');
            if (*p == '\\') {
                p++;
                assert_true(*p == '"' || *p == '\\' || *p == ']');
            }
            assert_true(k < sizeof(prm->value) - 1);
            prm->value[k++] = *p++;
        }
        p++;
    }
    assert_int_equal(*p++, ']');
    assert_true((size_t)(p - sd) < sizeof(m->sd));
    memcpy(m->sd, sd, (size_t)(p - sd));
    assert_int_equal(*p++, ' ');
    assert_true(strlen(p) < sizeof(m->msg));
    strcpy(m->msg, p);
}

static const char *param(const struct syslog_msg *m, const char *name)
{
    for (unsigned i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0)
            return m->params[i].value;
    return NULL;
}

/* Asserts that m is alert seq exactly as RFC 5424 and this sink spell it. */
static void assert_alert_message(const char *raw, unsigned seq)
{
    struct syslog_msg m;
    char want[1024], host[256] = "", procid[32];
    struct tm tm = { 0 };
    int usec = 0;
    time_t t;

    parse_syslog(raw, &m);
    assert_int_equal(m.pri, 3 * 8 + 4); /* daemon.warning: cert.renewal_open is priority 4 */
    /* 2026-11-24T12:00:00.123456Z, within a minute of now. */
    assert_int_equal(strlen(m.timestamp), 27);
    assert_int_equal(sscanf(m.timestamp, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &usec),
                     7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    t = timegm(&tm);
    assert_true(llabs((long long)(t - time(NULL))) < 60);
    gethostname(host, sizeof(host) - 1);
    assert_string_equal(m.hostname, host);
    assert_string_equal(m.app, "kigend");
    snprintf(procid, sizeof(procid), "%ld", (long)getpid());
    assert_string_equal(m.procid, procid);
    assert_string_equal(m.msgid, "cert.renewal_open");
    snprintf(want, sizeof(want),
             "[kigen@32473 event=\"cert.renewal_open\" sha256=\"" SHA "\" "
             "subject=\"CN=q\\\"b\\\\s\\]e,O=Example\" days_left=\"%u\" label_team=\"customs\"]",
             seq);
    assert_string_equal(m.sd, want);
    assert_string_equal(m.sd_id, "kigen@32473");
    assert_int_equal(m.n_params, 5);
    assert_string_equal(param(&m, "subject"), SUBJECT);
    snprintf(want, sizeof(want), "Renewal of CN=tanaka is open, renew now (alert %u)", seq);
    assert_string_equal(m.msg, want);
}

static unsigned seq_of(const char *raw)
{
    struct syslog_msg m;

    parse_syslog(raw, &m);
    assert_non_null(param(&m, "days_left"));
    return (unsigned)atoi(param(&m, "days_left"));
}

static void test_syslog_datagram_is_rfc5424_with_structured_data(void **state)
{
    struct harness *h = *state;
    char *path = path_in(h, "log.sock"), *msgs[4];
    int fd = bind_unix(path, SOCK_DGRAM);
    unsigned n;

    h->config.alerts.syslog = path;
    start(h);
    deliver(h, 7);
    RUN_UNTIL(h, h->done == 1, 5000);
    assert_int_equal(h->failures[7], 0);
    n = recv_all(fd, msgs, 4);
    assert_int_equal(n, 1);
    assert_alert_message(msgs[0], 7);
    assert_int_equal(h->log_len, 0);
    free_all(msgs, n);
    close(fd);
    free(path);
}

static void test_syslog_stream_socket_uses_octet_counting(void **state)
{
    struct harness *h = *state;
    char *path = path_in(h, "stream.sock"), buf[8192];
    int lfd = bind_unix(path, SOCK_STREAM), cfd;
    size_t len = 0;
    const char *p;

    h->config.alerts.syslog = path;
    start(h);
    deliver(h, 1);
    deliver(h, 2);
    RUN_UNTIL(h, h->done == 2, 5000);
    assert_int_equal(h->failures[1] + h->failures[2], 0);
    cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    assert_true(cfd >= 0);
    for (;;) {
        struct pollfd pfd = { .fd = cfd, .events = POLLIN };
        ssize_t n;

        if (poll(&pfd, 1, 500) <= 0)
            break;
        n = read(cfd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    /* RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG, twice. */
    p = buf;
    for (unsigned i = 1; i <= 2; i++) {
        char *end, msg[4096];
        unsigned long n = strtoul(p, &end, 10);

        assert_true(end > p && *end == ' ');
        assert_true(n < sizeof(msg) && (size_t)(end + 1 - buf) + n <= len);
        n = n < sizeof(msg) ? n : sizeof(msg) - 1; /* what the assertion said, for the optimiser */
        memcpy(msg, end + 1, n);
        msg[n] = '\0';
        assert_alert_message(msg, i);
        p = end + 1 + n;
    }
    assert_int_equal((size_t)(p - buf), len);
    close(cfd);
    close(lfd);
    free(path);
}

static void test_syslog_missing_socket_fails_after_retrying_then_recovers(void **state)
{
    struct harness *h = *state;
    char *path = path_in(h, "later.sock"), *msgs[4];
    uint64_t t0;
    unsigned n;
    int fd;

    h->config.alerts.syslog = path;
    start(h);
    kigen_sinks_set_limits(h->sinks, &(struct kigen_sink_limits){ .retry_ms = 2500 });
    t0 = now_ms();
    deliver(h, 0);
    deliver(h, 1);
    RUN_UNTIL(h, h->done == 2, 10000);
    /* One retry a second later, then the first fails; the second fails at its first try. */
    assert_true(now_ms() - t0 >= 900);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(h->failures[0], 1);
    assert_int_equal(h->failures[1], 1);
    assert_int_equal(logged(h, "Cannot reach syslog socket"), 1);
    assert_int_equal(logged(h, "alert to syslog"), 2);
    assert_int_equal(logged(h, "dropping it and carrying on"), 2);

    fd = bind_unix(path, SOCK_DGRAM);
    deliver(h, 2);
    RUN_UNTIL(h, h->done == 3, 5000);
    assert_int_equal(h->failures[2], 0);
    assert_int_equal(logged(h, "reachable again"), 1);
    n = recv_all(fd, msgs, 4);
    assert_int_equal(n, 1);
    assert_alert_message(msgs[0], 2);
    free_all(msgs, n);
    close(fd);
    free(path);
}

struct drain {
    uv_timer_t timer;
    int fd;
    char *msgs[MAX_ALERTS];
    unsigned n;
};

static void drain_cb(uv_timer_t *timer)
{
    struct drain *d = timer->data;

    d->n += recv_all(d->fd, d->msgs + d->n, MAX_ALERTS - d->n);
}

static void test_syslog_busy_reader_delays_but_loses_nothing(void **state)
{
    struct harness *h = *state;
    char *path = path_in(h, "slow.sock");
    struct drain d = { .fd = bind_unix(path, SOCK_DGRAM) };

    h->config.alerts.syslog = path;
    start(h);
    /* More than the socket queue holds (net.unix.max_dgram_qlen, 10 by default). */
    for (unsigned i = 0; i < 40; i++)
        deliver(h, i);
    run_for(h, 150);
    assert_true(h->done < 40);
    uv_timer_init(&h->loop, &d.timer);
    d.timer.data = &d;
    uv_timer_start(&d.timer, drain_cb, 0, 20);
    RUN_UNTIL(h, h->done == 40, 10000);
    drain_cb(&d.timer);
    uv_close((uv_handle_t *)&d.timer, NULL);
    uv_run(&h->loop, UV_RUN_NOWAIT); /* d is on the stack: the close must end here */
    assert_int_equal(d.n, 40);
    for (unsigned i = 0; i < 40; i++) {
        assert_int_equal(h->failures[i], 0);
        assert_int_equal(h->order[i], i);
        assert_int_equal(seq_of(d.msgs[i]), i);
    }
    assert_int_equal(h->log_len, 0);
    free_all(d.msgs, d.n);
    close(d.fd);
    free(path);
}

static void test_full_queue_drops_the_oldest_as_failures(void **state)
{
    struct harness *h = *state;
    char *path = path_in(h, "late.sock"), *msgs[16];
    static const unsigned got[] = { 0, 5, 6, 7, 8, 9 };
    unsigned n;
    int fd;

    h->config.alerts.syslog = path;
    start(h);
    kigen_sinks_set_limits(h->sinks, &(struct kigen_sink_limits){ .queue_max = 5 });
    /* 0 goes in flight and waits for the socket; 1..9 queue behind it, five at most. */
    for (unsigned i = 0; i < 10; i++)
        deliver(h, i);
    fd = bind_unix(path, SOCK_DGRAM);
    RUN_UNTIL(h, h->done == 10, 10000);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(h->failures[i], i >= 1 && i <= 4);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(h->order[i], i + 1);
    assert_int_equal(logged(h, "The syslog sink has 5 alerts waiting, dropping the oldest and "
                               "carrying on"),
                     1);
    assert_int_equal(logged(h, "The syslog sink caught up after dropping 4 alerts"), 1);
    n = recv_all(fd, msgs, 16);
    assert_int_equal(n, 6);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(seq_of(msgs[i]), got[i]);
    free_all(msgs, n);
    close(fd);
    free(path);
}

static void test_reload_drains_the_old_socket_and_uses_the_new(void **state)
{
    struct harness *h = *state;
    char *a = path_in(h, "a.sock"), *b = path_in(h, "b.sock"), *msgs[4];
    int fa, fb;
    unsigned n;

    h->config.alerts.syslog = a;
    start(h);
    deliver(h, 0); /* a is not there yet: 0 waits in flight, 1 behind it */
    deliver(h, 1);
    h->config.alerts.syslog = b;
    fb = bind_unix(b, SOCK_DGRAM);
    assert_int_equal(kigen_sinks_configure(h->sinks, &h->config), 0);
    deliver(h, 2);
    fa = bind_unix(a, SOCK_DGRAM);
    RUN_UNTIL(h, h->done == 3, 10000);
    assert_int_equal(h->failures[0] + h->failures[1] + h->failures[2], 0);
    n = recv_all(fa, msgs, 4);
    assert_int_equal(n, 2);
    assert_int_equal(seq_of(msgs[0]), 0);
    assert_int_equal(seq_of(msgs[1]), 1);
    free_all(msgs, n);
    n = recv_all(fb, msgs, 4);
    assert_int_equal(n, 1);
    assert_int_equal(seq_of(msgs[0]), 2);
    free_all(msgs, n);
    /* The same setting again changes nothing. */
    assert_int_equal(kigen_sinks_configure(h->sinks, &h->config), 0);
    deliver(h, 3);
    RUN_UNTIL(h, h->done == 4, 5000);
    n = recv_all(fb, msgs, 4);
    assert_int_equal(n, 1);
    assert_int_equal(seq_of(msgs[0]), 3);
    free_all(msgs, n);
    close(fa);
    close(fb);
    free(a);
    free(b);
}

/* ---- exec ---- */

static char *write_hook(struct harness *h, const char *name, const char *body)
{
    char *path = path_in(h, name), *cmd = NULL;
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nD='%s'\n%s\n", h->dir, body);
    fclose(f);
    assert_true(asprintf(&cmd, "sh '%s'", path) > 0);
    free(path);
    return cmd;
}

/* The value of name in a NUL-separated environment dump, or NULL. */
static const char *env_get(const char *dump, size_t len, const char *name)
{
    size_t nlen = strlen(name);

    for (const char *p = dump; p < dump + len; p += strlen(p) + 1)
        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=')
            return p + nlen + 1;
    return NULL;
}

static char *read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = malloc(65536);
    size_t len;

    assert_non_null(f);
    assert_non_null(buf);
    len = fread(buf, 1, 65535, f);
    buf[len] = '\0';
    fclose(f);
    if (ret_len)
        *ret_len = len;
    return buf;
}

static void test_exec_hook_gets_the_alert_in_its_environment(void **state)
{
    struct harness *h = *state;
    char *cmd = write_hook(h, "env.sh",
                           "i=$(readlink /proc/$$/fd/0); o=$(readlink /proc/$$/fd/1)\n"
                           "echo \"$i\" >\"$D/stdin\"; echo \"$o\" >\"$D/stdout\"\n"
                           "env -0 >\"$D/env\"\n");
    char *path, *dump, *text;
    size_t len;

    setenv("KIGEN_NACCS_PASS", "hunter2", 1); /* a password source must not reach the hook */
    setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
    setenv("SINK_TEST_KEEP", "kept", 1);
    h->config.alerts.exec = cmd;
    start(h);
    deliver(h, 3);
    unsetenv("KIGEN_NACCS_PASS");
    unsetenv("NOTIFY_SOCKET");
    unsetenv("SINK_TEST_KEEP");
    RUN_UNTIL(h, h->done == 1, 10000);
    assert_int_equal(h->failures[3], 0);

    path = path_in(h, "env");
    dump = read_file(path, &len);
    assert_string_equal(env_get(dump, len, "KIGEN_EVENT"), "cert.renewal_open");
    assert_string_equal(env_get(dump, len, "KIGEN_SHA256"), SHA);
    assert_string_equal(env_get(dump, len, "KIGEN_SUBJECT"), SUBJECT);
    assert_string_equal(env_get(dump, len, "KIGEN_DAYS_LEFT"), "3");
    assert_string_equal(env_get(dump, len, "KIGEN_LABEL_TEAM"), "customs");
    assert_string_equal(env_get(dump, len, "KIGEN_MESSAGE"),
                        "Renewal of CN=tanaka is open, renew now (alert 3)");
    assert_string_equal(env_get(dump, len, "KIGEN_PRIORITY"), "4");
    assert_string_equal(env_get(dump, len, "KIGEN_MESSAGE_ID"),
                        kigen_event_message_id(KIGEN_EVENT_CERT_RENEWAL_OPEN));
    assert_string_equal(env_get(dump, len, "SINK_TEST_KEEP"), "kept");
    assert_null(env_get(dump, len, "KIGEN_NACCS_PASS"));
    assert_null(env_get(dump, len, "KIGEN_FIXTURES"));
    assert_null(env_get(dump, len, "NOTIFY_SOCKET"));
    for (const char *p = dump; p < dump + len; p += strlen(p) + 1)
        assert_null(strstr(p, "hunter2"));
    free(dump);
    free(path);

    path = path_in(h, "stdin");
    text = read_file(path, NULL);
    assert_string_equal(text, "/dev/null\n");
    free(text);
    free(path);
    path = path_in(h, "stdout");
    text = read_file(path, NULL);
    assert_string_equal(text, "/dev/null\n");
    free(text);
    free(path);
    free(cmd);
}

/*
 * The daemon raises its own soft RLIMIT_NOFILE; a hook starts with the one the daemon was
 * given (exec_nofile), with the hard limit untouched, and the daemon keeps its own.
 */
static void test_exec_hook_starts_with_the_given_fd_limit(void **state)
{
    struct harness *h = *state;
    char *cmd = write_hook(h, "nofile.sh",
                           "echo \"$(ulimit -S -n) $(ulimit -H -n)\" >\"$D/nofile\"\n"
                           "grep '^Max open files' /proc/self/limits >\"$D/limits\"\n");
    char *path, *text, *want;
    struct rlimit before, after;
    unsigned long long given;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &before), 0);
    assert_true(before.rlim_cur > 64);
    given = before.rlim_cur / 2; /* below the daemon's: a hook that inherited it would differ */
    h->config.alerts.exec = cmd;
    start(h);
    kigen_sinks_set_limits(h->sinks, &(struct kigen_sink_limits){ .exec_nofile = given });
    deliver(h, 1);
    RUN_UNTIL(h, h->done == 1, 10000);
    assert_int_equal(h->failures[1], 0);

    path = path_in(h, "nofile");
    text = read_file(path, NULL);
    if (before.rlim_max == RLIM_INFINITY)
        assert_true(asprintf(&want, "%llu unlimited\n", given) > 0);
    else
        assert_true(asprintf(&want, "%llu %llu\n", given, (unsigned long long)before.rlim_max) > 0);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free(path);
    /* What the kernel says of the hook's own child, not only the shell's view. */
    path = path_in(h, "limits");
    text = read_file(path, NULL);
    assert_true(asprintf(&want, "Max open files %llu ", given) > 0);
    for (char *p = text; *p; p++) /* squeeze the table's padding */
        while (p[0] == ' ' && p[1] == ' ')
            memmove(p, p + 1, strlen(p));
    assert_non_null(strstr(text, want));
    free(want);
    free(text);
    free(path);

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &after), 0);
    assert_int_equal(after.rlim_cur, before.rlim_cur);
    assert_int_equal(after.rlim_max, before.rlim_max);
    free(cmd);
}

/* Without exec_nofile a hook has the daemon's limit, as it always had. */
static void test_exec_hook_keeps_the_daemon_fd_limit_by_default(void **state)
{
    struct harness *h = *state;
    char *cmd = write_hook(h, "nofile.sh", "ulimit -S -n >\"$D/nofile\"\n");
    char *path, *text, *want;
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    h->config.alerts.exec = cmd;
    start(h);
    deliver(h, 1);
    RUN_UNTIL(h, h->done == 1, 10000);
    assert_int_equal(h->failures[1], 0);
    path = path_in(h, "nofile");
    text = read_file(path, NULL);
    if (rl.rlim_cur == RLIM_INFINITY)
        want = strdup("unlimited\n");
    else
        assert_true(asprintf(&want, "%llu\n", (unsigned long long)rl.rlim_cur) > 0);
    assert_string_equal(text, want);
    free(want);
    free(text);
    free(path);
    free(cmd);
}

static void test_exec_runs_at_most_four_hooks_at_once(void **state)
{
    struct harness *h = *state;
    /* Each hook counts itself in and out under flock; "max" records the count on entry. */
    char *cmd = write_hook(h, "count.sh",
                           "exec 9>>\"$D/lock\"\n"
                           "flock 9; n=$(( $(cat \"$D/running\" 2>/dev/null || echo 0) + 1 ))\n"
                           "echo $n >\"$D/running\"; echo $n >>\"$D/max\"; flock -u 9\n"
                           "sleep 0.3\n"
                           "flock 9; n=$(( $(cat \"$D/running\") - 1 ))\n"
                           "echo $n >\"$D/running\"; flock -u 9\n");
    char *path, *text, *line, *save = NULL;
    unsigned lines = 0, max = 0;

    h->config.alerts.exec = cmd;
    start(h);
    for (unsigned i = 0; i < 10; i++)
        deliver(h, i);
    assert_int_equal(kigen_sinks_pending(h->sinks), 10);
    RUN_UNTIL(h, h->done == 10, 20000);
    for (unsigned i = 0; i < 10; i++)
        assert_int_equal(h->failures[i], 0);
    assert_int_equal(kigen_sinks_pending(h->sinks), 0);
    path = path_in(h, "max");
    text = read_file(path, NULL);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        unsigned n = (unsigned)atoi(line);

        lines++;
        max = n > max ? n : max;
    }
    assert_int_equal(lines, 10);
    assert_int_equal(max, KIGEN_SINK_EXEC_MAX_RUNNING);
    free(text);
    free(path);
    free(cmd);
}

/* Whether pid is gone (or a zombie waiting for whoever inherited it). */
static bool is_dead(pid_t pid)
{
    char path[64], *text;
    FILE *f;
    size_t len;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return true;
    text = malloc(1024);
    assert_non_null(text);
    len = fread(text, 1, 1023, f);
    text[len] = '\0';
    fclose(f);
    /* "pid (comm) S ...": the state follows the last ')'. */
    {
        const char *p = strrchr(text, ')');
        bool zombie = p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');

        free(text);
        return zombie;
    }
}

static void test_exec_hook_that_hangs_is_killed_with_its_children(void **state)
{
    struct harness *h = *state;
    char *cmd = write_hook(h, "hang.sh", "sleep 60 &\necho $! >\"$D/child\"\nwait\n");
    char *path, *text;
    uint64_t t0 = now_ms();
    pid_t child;

    h->config.alerts.exec = cmd;
    start(h);
    kigen_sinks_set_limits(h->sinks, &(struct kigen_sink_limits){ .exec_timeout_ms = 300 });
    deliver(h, 0);
    RUN_UNTIL(h, h->done == 1, 10000);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(h->failures[0], 1);
    assert_int_equal(
        logged(h, "Alert hook for cert.renewal_open ran longer than 300 ms and was killed, "
                  "carrying on"),
        1);
    path = path_in(h, "child");
    text = read_file(path, NULL);
    child = (pid_t)atoi(text);
    assert_true(child > 0);
    for (int i = 0; i < 100 && !is_dead(child); i++)
        usleep(20000);
    assert_true(is_dead(child));
    free(text);
    free(path);
    free(cmd);
}

static void test_exec_failures_are_logged_and_counted(void **state)
{
    struct harness *h = *state;
    /* Inline, so that $$ is the shell libuv started and the signal is what it dies of. */
    char *cmd = "case $KIGEN_DAYS_LEFT in\n"
                "0) echo 'boom: no route to the pager' >&2; echo second >&2; exit 3;;\n"
                "1) kill -TERM $$;;\n"
                "*) exit 0;;\n"
                "esac\n";

    h->config.alerts.exec = cmd;
    start(h);
    deliver(h, 0);
    deliver(h, 1);
    deliver(h, 2);
    RUN_UNTIL(h, h->done == 3, 10000);
    assert_int_equal(h->failures[0], 1);
    assert_int_equal(h->failures[1], 1);
    assert_int_equal(h->failures[2], 0);
    assert_int_equal(logged(h, "Alert hook for cert.renewal_open exited with status 3, carrying "
                               "on: boom: no route to the pager\n"),
                     1);
    assert_int_equal(logged(h, "second"), 0);
    assert_int_equal(logged(h, "Alert hook for cert.renewal_open was killed by signal 15"), 1);
    assert_int_equal(logged(h, "Alert hook"), 2);
}

static void test_failures_add_up_over_sinks(void **state)
{
    struct harness *h = *state;
    char *path = path_in(h, "log.sock"), *msgs[4];
    int fd = bind_unix(path, SOCK_DGRAM);
    unsigned n;

    h->config.alerts.syslog = path;
    h->config.alerts.exec = "exit 1";
    start(h);
    deliver(h, 0);
    RUN_UNTIL(h, h->done == 1, 10000);
    assert_int_equal(h->failures[0], 1);
    n = recv_all(fd, msgs, 4);
    assert_int_equal(n, 1);
    free_all(msgs, n);
    close(fd);
    free(path);
}

static void test_close_kills_running_hooks_and_drops_the_queue(void **state)
{
    struct harness *h = *state;
    uint64_t t0;

    h->config.alerts.exec = "sleep 30";
    start(h);
    for (unsigned i = 0; i < 6; i++)
        deliver(h, i);
    run_for(h, 100);
    assert_int_equal(kigen_sinks_pending(h->sinks), 6);
    t0 = now_ms();
    close_sinks(h);
    assert_true(now_ms() - t0 < 5000);
    assert_int_equal(h->done, 0);
    assert_int_equal(logged(h, "Alert hook"), 0);
}

/* ---- the journald catalog ---- */

static char *catalog_path(void)
{
    const char *slash = strrchr(__FILE__, '/');
    char *p = NULL;

    assert_non_null(slash);
    assert_true(asprintf(&p, "%.*s/../units/kigen.catalog", (int)(slash - __FILE__), __FILE__) > 0);
    return p;
}

static bool is_hex32(const char *s)
{
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[32] == '\0';
}

/*
 * Every event once in each language the catalog has: the default (English) and ja, as
 * systemd's "-- MESSAGE_ID LANGUAGE" entries.
 */
static void test_catalog_explains_every_event_exactly_once(void **state)
{
    static const char *const languages[] = { "", "ja" };
    char *path = catalog_path(), *text, *line, *cursor;
    char ids[64][33], langs[64][8];
    unsigned n = 0, headers = 0, body = 0;
    bool in_headers = false;

    text = read_file(path, NULL);
    cursor = text;
    while ((line = strsep(&cursor, "\n"))) {
        if (strncmp(line, "-- ", 3) == 0) {
            /* The previous entry had its three headers and some text. */
            if (n > 0)
                assert_true(headers == 3 && body > 0);
            char *lang = strchr(line + 3, ' ');

            if (lang)
                *lang++ = '\0';
            assert_true(is_hex32(line + 3));
            assert_true(!lang || strcmp(lang, "ja") == 0);
            assert_true(n < 64);
            strcpy(langs[n], lang ? lang : "");
            strcpy(ids[n++], line + 3);
            headers = body = 0;
            in_headers = true;
        } else if (n > 0 && in_headers) {
            /* Headers end at the first empty line. */
            in_headers = *line != '\0';
            if (in_headers)
                assert_non_null(strchr(line, ':'));
            headers += strncmp(line, "Subject: ", 9) == 0 ||
                       strcmp(line, "Defined-By: kigen") == 0 || strncmp(line, "Support: ", 9) == 0;
        } else if (n > 0 && *line) {
            body++;
        }
    }
    assert_true(headers == 3 && body > 0);
    assert_int_equal(n, 2 * KIGEN_EVENT_COUNT);
    for (size_t l = 0; l < sizeof(languages) / sizeof(languages[0]); l++) {
        for (int e = 0; e < KIGEN_EVENT_COUNT; e++) {
            unsigned seen = 0;

            for (unsigned i = 0; i < n; i++)
                seen += strcmp(ids[i], kigen_event_message_id((enum kigen_event)e)) == 0 &&
                        strcmp(langs[i], languages[l]) == 0;
            if (seen != 1)
                fail_msg("event %s (%s) is in the catalog %u times in language '%s'",
                         kigen_event_name(e), kigen_event_message_id((enum kigen_event)e), seen,
                         languages[l]);
        }
    }
    free(text);
    free(path);
}

/* systemd's own parser, on a private root: nothing of the system is touched. */
static void test_catalog_is_accepted_by_journalctl(void **state)
{
    struct harness *h = *state;
    char *path = catalog_path(), *cmd = NULL, *out, *list;

    if (access("/usr/bin/journalctl", X_OK) < 0 && access("/bin/journalctl", X_OK) < 0)
        fail_msg("journalctl is missing: install systemd (make check does)");
    assert_true(asprintf(&cmd,
                         "mkdir -p '%s/root/usr/lib/systemd/catalog' && "
                         "cp '%s' '%s/root/usr/lib/systemd/catalog/' && "
                         "journalctl --root='%s/root' --update-catalog && "
                         "journalctl --root='%s/root' --list-catalog >'%s/list'",
                         h->dir, path, h->dir, h->dir, h->dir, h->dir) > 0);
    assert_int_equal(system(cmd), 0);
    list = path_in(h, "list");
    out = read_file(list, NULL);
    for (int e = 0; e < KIGEN_EVENT_COUNT; e++) {
        char want[64];

        snprintf(want, sizeof(want), "%s kigen: ", kigen_event_message_id((enum kigen_event)e));
        if (!strstr(out, want))
            fail_msg("journalctl does not list %s", want);
    }
    free(out);
    free(list);
    free(cmd);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_done_cb_runs_from_the_loop_not_from_deliver, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_reports_delivered_alerts_and_refuses_new_ones,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_syslog_datagram_is_rfc5424_with_structured_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_syslog_stream_socket_uses_octet_counting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_syslog_missing_socket_fails_after_retrying_then_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syslog_busy_reader_delays_but_loses_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_drops_the_oldest_as_failures, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reload_drains_the_old_socket_and_uses_the_new, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exec_hook_gets_the_alert_in_its_environment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exec_hook_starts_with_the_given_fd_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exec_hook_keeps_the_daemon_fd_limit_by_default, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exec_runs_at_most_four_hooks_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_hook_that_hangs_is_killed_with_its_children,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_failures_are_logged_and_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_add_up_over_sinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_kills_running_hooks_and_drops_the_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog_explains_every_event_exactly_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catalog_is_accepted_by_journalctl, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
