/*
 * The journald sink against a real systemd-journald, read back with journalctl. When no
 * journald listens on /run/systemd/journal/socket, the test starts one of its own (which
 * needs root: CI runs as root) and stops it at the end, removing what it created.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "alert.h"
#include "log.h"
#include "sink.h"
#include "testutil.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

struct journald {
    pid_t pid; /* the journald this test started, or 0 when one was running */
    bool made_journal_dir, made_log_dir;
};

struct harness {
    uv_loop_t loop;
    uv_timer_t guard;
    bool is_guard_fired, is_closed;
    struct kigen_sinks *sinks;
    unsigned done, failures;
    char log[8192];
    size_t log_len;
};

static bool is_listening(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool ok;

    strcpy(sa.sun_path, path);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int group_setup(void **state)
{
    static const char *const bins[] = { "/lib/systemd/systemd-journald",
                                        "/usr/lib/systemd/systemd-journald" };
    struct journald *jd = calloc(1, sizeof(*jd));
    const char *bin = NULL;

    if (!jd)
        return -1;
    *state = jd;
    if (is_listening(JOURNAL_SOCKET))
        return 0;
    if (geteuid() != 0) {
        fprintf(stderr,
                "test_sink_journald: no journald listens on %s and starting one needs "
                "root; run as root (CI does)\n",
                JOURNAL_SOCKET);
        return -1;
    }
    for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++)
        if (access(bins[i], X_OK) == 0)
            bin = bins[i];
    if (!bin) {
        fprintf(stderr, "test_sink_journald: no systemd-journald binary; install systemd\n");
        return -1;
    }
    jd->made_journal_dir = access("/run/systemd/journal", F_OK) != 0;
    jd->made_log_dir = access("/run/log/journal", F_OK) != 0;
    jd->pid = fork();
    if (jd->pid < 0)
        return -1;
    if (jd->pid == 0) {
        int null = open("/dev/null", O_RDWR);

        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a test that crashes takes its journald along */
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execl(bin, bin, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        if (is_listening(JOURNAL_SOCKET))
            return 0;
        if (waitpid(jd->pid, NULL, WNOHANG) == jd->pid) {
            fprintf(stderr, "test_sink_journald: %s exited at start\n", bin);
            jd->pid = 0;
            return -1;
        }
        usleep(50000);
    }
    fprintf(stderr, "test_sink_journald: %s did not open %s\n", bin, JOURNAL_SOCKET);
    return -1;
}

/* Stops the journald this test started and removes what it created. */
static void stop_journald(struct journald *jd)
{
    if (jd->pid > 0) {
        kill(jd->pid, SIGTERM);
        waitpid(jd->pid, NULL, 0);
        jd->pid = 0;
        if (jd->made_journal_dir && system("rm -rf /run/systemd/journal") != 0)
            fprintf(stderr, "test_sink_journald: cannot remove /run/systemd/journal\n");
        if (jd->made_log_dir && system("rm -rf /run/log/journal") != 0)
            fprintf(stderr, "test_sink_journald: cannot remove /run/log/journal\n");
    }
}

static int group_teardown(void **state)
{
    struct journald *jd = *state;

    if (jd)
        stop_journald(jd);
    free(jd);
    return 0;
}

static void log_cb(enum kigen_log_level level, const char *message, void *data)
{
    struct harness *h = data;
    int n;

    fprintf(stderr, "log<%d>: %s\n", (int)level, message);
    if (level > KIGEN_LOG_WARNING)
        return;
    n = snprintf(h->log + h->log_len, sizeof(h->log) - h->log_len, "%s\n", message);
    if (n > 0 && (size_t)n < sizeof(h->log) - h->log_len)
        h->log_len += (size_t)n;
}

static void guard_cb(uv_timer_t *timer)
{
    ((struct harness *)timer->data)->is_guard_fired = true;
}

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

static void done_cb(void *data, unsigned failures)
{
    struct harness *h = data;

    h->done++;
    h->failures += failures;
}

static void closed_cb(void *data)
{
    ((struct harness *)data)->is_closed = true;
}

static void harness_start(struct harness *h)
{
    struct kigen_config config = { .alerts = { .journald = true } };

    memset(h, 0, sizeof(*h));
    assert_int_equal(uv_loop_init(&h->loop), 0);
    uv_timer_init(&h->loop, &h->guard);
    h->guard.data = h;
    kigen_log_setup(log_cb, h, KIGEN_LOG_DEBUG);
    assert_int_equal(kigen_sinks_new(&h->loop, &config, &h->sinks), 0);
}

static void harness_stop(struct harness *h)
{
    kigen_sinks_close(h->sinks, closed_cb, h);
    RUN_UNTIL(h, h->is_closed, 10000);
    kigen_sinks_free(h->sinks);
    uv_close((uv_handle_t *)&h->guard, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    kigen_log_setup(NULL, NULL, KIGEN_LOG_INFO);
}

/* 64 random hex digits: a KIGEN_SHA256 no earlier run of the test used. */
static void random_hex(char out[65])
{
    unsigned char b[32];
    FILE *f = fopen("/dev/urandom", "rb");

    assert_non_null(f);
    assert_int_equal(fread(b, 1, sizeof(b), f), sizeof(b));
    fclose(f);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* A field of journalctl's JSON: a string, or an array of bytes for unprintable values. */
static char *json_field(json_t *entry, const char *name)
{
    json_t *v = json_object_get(entry, name);
    char *s;

    if (!v)
        return NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    assert_true(json_is_array(v));
    s = calloc(json_array_size(v) + 1, 1);
    assert_non_null(s);
    for (size_t i = 0; i < json_array_size(v); i++)
        s[i] = (char)json_integer_value(json_array_get(v, i));
    return s;
}

/* The journal entry whose KIGEN_SHA256 is sha, once journald has written it. */
static json_t *read_back(const char *sha)
{
    char cmd[256], *line = NULL;
    size_t cap = 0;

    /* --all: journalctl writes fields larger than 4096 bytes as null without it. */
    snprintf(cmd, sizeof(cmd), "journalctl -o json --all --no-pager KIGEN_SHA256=%s", sha);
    for (int i = 0; i < 100; i++) {
        FILE *p = popen(cmd, "r");
        json_t *entry = NULL;

        assert_non_null(p);
        if (getline(&line, &cap, p) > 0)
            entry = json_loads(line, 0, NULL);
        pclose(p);
        if (entry) {
            free(line);
            return entry;
        }
        usleep(100000);
    }
    free(line);
    fail_msg("journalctl found no entry with KIGEN_SHA256=%s", sha);
    return NULL;
}

static void assert_field(json_t *entry, const char *name, const char *want)
{
    char *got = json_field(entry, name);

    if (!got)
        fail_msg("the journal entry has no %s", name);
    assert_string_equal(got, want);
    free(got);
}

static void test_alert_reaches_the_journal_with_every_field(void **state)
{
    struct harness h;
    struct kigen_alert *a;
    char sha[65], priority[8];
    json_t *entry;

    random_hex(sha);
    a = kigen_alert_new(KIGEN_EVENT_CERT_RENEWAL_OPEN,
                        "Renewal of CN=tanaka is open until 2026-12-14: renew now");
    assert_non_null(a);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SHA256", sha), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SUBJECT", "CN=tanaka,O=Example Trading,C=JP"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_ISSUER", "CN=NACCS Client CA"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_NOT_AFTER", "2026-12-14T12:00:00Z"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_RENEWAL_OPENS", "2026-11-16T12:00:00Z"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_DAYS_LEFT", "20"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_PATHS", "/srv/naccs/a.p12, /srv/naccs/b.p12"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_KEYSTORE", "naccs"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_LABEL_TEAM", "customs"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_LABEL_NOTE", "two\nlines"), 0);

    harness_start(&h);
    assert_int_equal(kigen_sinks_deliver(h.sinks, a, done_cb, &h), 0);
    RUN_UNTIL(&h, h.done == 1, 10000);
    assert_int_equal(h.failures, 0);
    assert_int_equal(h.log_len, 0);
    harness_stop(&h);

    entry = read_back(sha);
    assert_field(entry, "MESSAGE", a->message);
    snprintf(priority, sizeof(priority), "%d", a->priority);
    assert_field(entry, "PRIORITY", priority);
    assert_field(entry, "PRIORITY", "4");
    assert_field(entry, "MESSAGE_ID", kigen_event_message_id(KIGEN_EVENT_CERT_RENEWAL_OPEN));
    assert_field(entry, "SYSLOG_IDENTIFIER", "kigend");
    for (size_t i = 0; i < a->n_fields; i++)
        assert_field(entry, a->fields[i].name, a->fields[i].value);
    assert_field(entry, "KIGEN_EVENT", "cert.renewal_open");
    json_decref(entry);
    kigen_alert_free(a);
}

static void test_reload_that_turns_journald_off_still_delivers_the_queue(void **state)
{
    struct kigen_config off = { .alerts = { .journald = false } };
    struct harness h;
    char sha[3][65];

    harness_start(&h);
    for (int i = 0; i < 3; i++) {
        struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_CERT_GONE, "Gone");

        random_hex(sha[i]);
        assert_non_null(a);
        assert_int_equal(kigen_alert_add(a, "KIGEN_SHA256", sha[i]), 0);
        assert_int_equal(kigen_sinks_deliver(h.sinks, a, done_cb, &h), 0);
        kigen_alert_free(a);
    }
    /* One in flight on the thread pool, two queued: all go out before the sink closes. */
    assert_int_equal(kigen_sinks_configure(h.sinks, &off), 0);
    RUN_UNTIL(&h, h.done == 3, 10000);
    assert_int_equal(h.failures, 0);
    harness_stop(&h);
    for (int i = 0; i < 3; i++) {
        json_t *entry = read_back(sha[i]);

        assert_field(entry, "KIGEN_EVENT", "cert.gone");
        json_decref(entry);
    }
}

static void test_unreachable_journald_is_a_logged_failure(void **state)
{
    struct journald *jd = *state;
    struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_CERT_EXPIRED, "Expired");
    struct harness h;

    /*
     * Our own journald is stopped for real; the system's is not ours to stop, so the sink is
     * told to expect journald at a path where none listens. Either way it is gone.
     */
    bool is_ours = jd->pid != 0;

    if (is_ours)
        stop_journald(jd);
    harness_start(&h);
    /* It is retried for retry_ms (a journald that restarts comes back), then dropped. */
    kigen_sinks_set_limits(
        h.sinks,
        &(struct kigen_sink_limits){
            .retry_ms = 1500, .journal_socket = is_ours ? NULL : "/run/kigen-test/no-journald" });
    assert_int_equal(kigen_sinks_deliver(h.sinks, a, done_cb, &h), 0);
    RUN_UNTIL(&h, h.done == 1, 10000);
    assert_int_equal(h.failures, 1);
    assert_non_null(strstr(h.log, "Cannot reach journald socket '"));
    assert_non_null(strstr(h.log, "Cannot send a cert.expired alert to journald socket '"));
    assert_non_null(strstr(h.log, "dropping it and carrying on: "));
    harness_stop(&h);
    kigen_alert_free(a);
}

/* An entry larger than a datagram goes in a memfd; journald takes it whole. */
static void test_entry_larger_than_a_datagram_reaches_the_journal(void **state)
{
    size_t n = 300 * 1024;
    char sha[65], *paths = malloc(n + 1);
    struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_CERT_EXPIRED, "Expired, in many places");
    struct harness h;
    json_t *entry;

    (void)state;
    assert_non_null(paths);
    assert_non_null(a);
    for (size_t i = 0; i < n; i++)
        paths[i] = "/srv/naccs/x.p12, "[i % 18];
    paths[n] = '\0';
    random_hex(sha);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SHA256", sha), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_PATHS", paths), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_LABEL_NOTE", "two\nlines"), 0);
    harness_start(&h);
    assert_int_equal(kigen_sinks_deliver(h.sinks, a, done_cb, &h), 0);
    RUN_UNTIL(&h, h.done == 1, 10000);
    assert_int_equal(h.failures, 0);
    harness_stop(&h);
    entry = read_back(sha);
    assert_field(entry, "KIGEN_PATHS", paths);
    assert_field(entry, "KIGEN_LABEL_NOTE", "two\nlines");
    assert_field(entry, "MESSAGE", a->message);
    json_decref(entry);
    kigen_alert_free(a);
    free(paths);
}

static void tick_cb(uv_timer_t *timer)
{
    (*(unsigned *)timer->data)++;
}

/* The value of field name in one native-protocol datagram (text or binary form), or NULL. */
static char *native_field(const char *d, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    const char *end = d + len;

    while (d < end) {
        const char *nl = memchr(d, '\n', (size_t)(end - d)), *eq;
        uint64_t vlen = 0;

        assert_non_null(nl);
        eq = memchr(d, '=', (size_t)(nl - d));
        if (eq) {
            if ((size_t)(eq - d) == nlen && memcmp(d, name, nlen) == 0)
                return strndup(eq + 1, (size_t)(nl - eq - 1));
            d = nl + 1;
            continue;
        }
        assert_true(end - nl > 8);
        for (int i = 0; i < 8; i++)
            vlen |= (uint64_t)(unsigned char)nl[1 + i] << (8 * i);
        assert_true(vlen <= (uint64_t)(end - nl - 9));
        if ((size_t)(nl - d) == nlen && memcmp(d, name, nlen) == 0)
            return strndup(nl + 9, vlen);
        d = nl + 9 + vlen + 1;
    }
    return NULL;
}

/*
 * A journald that stops reading its socket (here a socket of the test's own that nobody
 * reads): the loop never waits; what fits in the socket goes in, the alert after waits
 * retry_ms and is dropped, later ones fail at once until there is room; once the reader is
 * back, alerts go out again. Closing does not wait for it.
 */
static void test_journald_that_stops_reading_stalls_nothing(void **state)
{
    enum {
        N = 1000
    };
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    char dir[] = "/tmp/kigen-jfull-XXXXXX", buf[65536];
    unsigned ticks = 0, datagrams = 0;
    struct kigen_alert *a = kigen_alert_new(KIGEN_EVENT_CERT_EXPIRED, "Expired");
    struct harness h;
    uv_timer_t tick;
    int fd;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/socket", dir);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_non_null(a);
    assert_int_equal(kigen_alert_add(a, "KIGEN_SHA256", "ab"), 0);
    assert_int_equal(kigen_alert_add(a, "KIGEN_LABEL_NOTE", "two\nlines"), 0);

    harness_start(&h);
    kigen_sinks_set_limits(
        h.sinks, &(struct kigen_sink_limits){ .retry_ms = 300, .journal_socket = sa.sun_path });
    uv_timer_init(&h.loop, &tick);
    tick.data = &ticks;
    uv_timer_start(&tick, tick_cb, 5, 5);
    for (int i = 0; i < N; i++)
        assert_int_equal(kigen_sinks_deliver(h.sinks, a, done_cb, &h), 0);
    RUN_UNTIL(&h, h.done == N, 30000);
    /*
     * The loop ran its timers meanwhile: the 300 ms of waiting would be 60 ticks of 5 ms on
     * an idle machine, but a repeating timer does not catch up the ticks a loaded machine
     * (make check beside other work) makes it miss; a sink that blocked would give one.
     */
    assert_true(ticks >= 3);
    assert_true(h.failures > 0 && h.failures < N);
    assert_non_null(strstr(h.log, "dropping it and carrying on"));

    /* What did go in is whole, native protocol: one datagram per delivered alert. */
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        char *v;

        if (n < 0)
            break;
        if (datagrams++ == 0) {
            v = native_field(buf, (size_t)n, "KIGEN_LABEL_NOTE");
            assert_non_null(v);
            assert_string_equal(v, "two\nlines");
            free(v);
            v = native_field(buf, (size_t)n, "MESSAGE_ID");
            assert_non_null(v);
            assert_string_equal(v, kigen_event_message_id(KIGEN_EVENT_CERT_EXPIRED));
            free(v);
        }
    }
    assert_int_equal(datagrams, N - h.failures);

    /* The reader is back (the queue was drained): the next alert goes out. */
    h.failures = 0;
    assert_int_equal(kigen_sinks_deliver(h.sinks, a, done_cb, &h), 0);
    RUN_UNTIL(&h, h.done == N + 1, 10000);
    assert_int_equal(h.failures, 0);
    assert_true(recv(fd, buf, sizeof(buf), 0) > 0);

    /*
     * Stuck again, with alerts waiting that would be retried for ten minutes: closing does
     * not wait for them (harness_stop allows 10 s).
     */
    kigen_sinks_set_limits(
        h.sinks, &(struct kigen_sink_limits){ .retry_ms = 600000, .journal_socket = sa.sun_path });
    for (int i = 0; i < N; i++)
        assert_int_equal(kigen_sinks_deliver(h.sinks, a, done_cb, &h), 0);
    RUN_UNTIL(&h, h.done > N + 1 + 10, 10000);
    uv_close((uv_handle_t *)&tick, NULL);
    harness_stop(&h);
    close(fd);
    unlink(sa.sun_path);
    rmdir(dir);
    kigen_alert_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_reaches_the_journal_with_every_field),
        cmocka_unit_test(test_reload_that_turns_journald_off_still_delivers_the_queue),
        cmocka_unit_test(test_entry_larger_than_a_datagram_reaches_the_journal),
        cmocka_unit_test(test_journald_that_stops_reading_stalls_nothing),
        cmocka_unit_test(test_unreachable_journald_is_a_logged_failure),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
