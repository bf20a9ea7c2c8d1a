/*
 * The status socket's server on a real loop and a real Unix socket in a temporary directory.
 * The test drives the loop itself (uv_run NOWAIT) between the moves of non-blocking clients,
 * so that a client that never reads and one that asks for status run side by side.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "control.h"
#include "testutil.h"

#define BIG (20u << 20) /* the size of a large answer: 100,000 certificates are about 40 MB */

struct fixture {
    uv_loop_t loop;
    struct kigen_control *ctl;
    char dir[48];
    char path[96];
    int calls;
    int big_calls;
    bool closed;
};

/* One client: a non-blocking socket and what it has received. */
struct peer {
    int fd;
    char *buf;
    size_t len;
    size_t cap;
    bool is_closed;
};

/*
 * "big" is answered with BIG bytes of 'x', "fail" fails, anything else is echoed with the
 * peer's privilege: {"echo":"LINE","privileged":true}.
 */
static int handler(void *data, const char *line, size_t len, bool is_privileged, char **ret_answer,
                   size_t *ret_len)
{
    struct fixture *fx = data;
    char *text;

    fx->calls++;
    assert_int_equal(strlen(line), len);
    assert_null(memchr(line, '\n', len));
    if (strcmp(line, "big") == 0) {
        fx->big_calls++;
        text = malloc(BIG + 1);
        assert_non_null(text);
        memset(text, 'x', BIG);
        text[BIG] = '\0';
        *ret_answer = text;
        *ret_len = BIG;
        return 0;
    }
    if (strcmp(line, "fail") == 0)
        return -EIO;
    assert_true(asprintf(&text, "{\"echo\":\"%s\",\"privileged\":%s}", line,
                         is_privileged ? "true" : "false") > 0);
    *ret_answer = text;
    *ret_len = strlen(text);
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One turn of the server's loop, then a short wait for fd (if any) to become readable. */
static void pump(struct fixture *fx, int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    uv_run(&fx->loop, UV_RUN_NOWAIT);
    if (fd >= 0)
        (void)poll(&pfd, 1, 1);
    else
        usleep(1000);
}

static void pump_for(struct fixture *fx, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;

    while (now_ms() < end)
        pump(fx, -1);
}

static void closed_cb(void *data)
{
    ((struct fixture *)data)->closed = true;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx || uv_loop_init(&fx->loop) < 0)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kigen-control-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/kigen.sock", fx->dir);
    *state = fx;
    return 0;
}

static void stop(struct fixture *fx)
{
    uint64_t end = now_ms() + 5000;

    if (!fx->ctl)
        return;
    fx->closed = false;
    kigen_control_close(fx->ctl, closed_cb, fx);
    fx->ctl = NULL;
    while (!fx->closed && now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_true(fx->closed);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    stop(fx);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

static void start(struct fixture *fx)
{
    char err[256] = "";
    int r = kigen_control_start(&fx->loop, fx->path, -1, handler, fx, &fx->ctl, err, sizeof(err));

    if (r < 0)
        fail_msg("kigen_control_start: %d %s", r, err);
}

static struct peer *peer_connect(struct fixture *fx)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct peer *p = calloc(1, sizeof(*p));

    assert_non_null(p);
    p->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(p->fd >= 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->path);
    /* EAGAIN: the backlog is full until the loop accepts. */
    while (connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno != EAGAIN)
            fail_msg("connect: %s", strerror(errno));
        pump(fx, -1);
    }
    return p;
}

static void peer_free(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    free(p->buf);
    free(p);
}

/* Sends len bytes while the loop turns; returns how many went before the server closed. */
static size_t peer_send(struct fixture *fx, struct peer *p, const char *s, size_t len)
{
    size_t off = 0;
    uint64_t end = now_ms() + 10000;

    while (off < len && now_ms() < end) {
        ssize_t n = send(p->fd, s + off, len - off, MSG_NOSIGNAL);

        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN)
            break; /* EPIPE: the server closed */
        pump(fx, -1);
    }
    return off;
}

static void peer_say(struct fixture *fx, struct peer *p, const char *s)
{
    assert_int_equal(peer_send(fx, p, s, strlen(s)), strlen(s));
}

/* Reads what is there (at most max bytes): how many came; is_closed once the server closed. */
static size_t peer_recv(struct peer *p, size_t max)
{
    ssize_t n;

    if (p->cap - p->len < 65536 + 1) {
        p->cap = p->cap ? p->cap * 2 : 1 << 20;
        p->buf = realloc(p->buf, p->cap);
        assert_non_null(p->buf);
    }
    n = recv(p->fd, p->buf + p->len, max < p->cap - p->len - 1 ? max : p->cap - p->len - 1, 0);
    if (n > 0) {
        p->len += (size_t)n;
        p->buf[p->len] = '\0';
        return (size_t)n;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
        p->is_closed = true;
    return 0;
}

/* The next answer line (malloc'd, newline dropped), or NULL when the server closed first. */
static char *peer_line(struct fixture *fx, struct peer *p, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    char *nl, *line;
    size_t n, scanned = 0;

    while (!(nl = p->len > scanned ? memchr(p->buf + scanned, '\n', p->len - scanned) : NULL)) {
        scanned = p->len;
        if (p->is_closed)
            return NULL;
        if (now_ms() > end)
            fail_msg("no answer line within %d ms", timeout_ms);
        pump(fx, p->fd);
        while (peer_recv(p, SIZE_MAX) > 0)
            ;
    }
    n = (size_t)(nl - p->buf);
    line = malloc(n + 1);
    assert_non_null(line);
    memcpy(line, p->buf, n);
    line[n] = '\0';
    memmove(p->buf, nl + 1, p->len - n - 1);
    p->len -= n + 1;
    return line;
}

static void assert_line(struct fixture *fx, struct peer *p, const char *want)
{
    char *line = peer_line(fx, p, 5000);

    if (!line)
        fail_msg("connection closed, wanted %s", want);
    assert_string_equal(line, want);
    free(line);
}

/* The server closes the connection within timeout_ms, with nothing more said. */
static void assert_closed(struct fixture *fx, struct peer *p, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;

    while (!p->is_closed && now_ms() < end) {
        pump(fx, p->fd);
        peer_recv(p, SIZE_MAX);
    }
    assert_true(p->is_closed);
    assert_int_equal(p->len, 0);
}

static void wait_clients(struct fixture *fx, size_t n, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;

    while (kigen_control_clients(fx->ctl) != n && now_ms() < end)
        pump(fx, -1);
    assert_int_equal(kigen_control_clients(fx->ctl), n);
}

static void test_requests_are_answered_in_order(void **state)
{
    struct fixture *fx = *state;
    struct peer *p;

    start(fx);
    p = peer_connect(fx);
    /* Several in one write, a CRLF, a blank line (no request), one in two pieces. */
    peer_say(fx, p, "a\nb\r\n\nc\nd");
    assert_line(fx, p, "{\"echo\":\"a\",\"privileged\":true}");
    assert_line(fx, p, "{\"echo\":\"b\",\"privileged\":true}");
    assert_line(fx, p, "{\"echo\":\"c\",\"privileged\":true}");
    pump_for(fx, 20);
    assert_int_equal(fx->calls, 3);
    peer_say(fx, p, "d\n");
    assert_line(fx, p, "{\"echo\":\"dd\",\"privileged\":true}");
    /* The last request may come without its newline, before the client half-closes. */
    peer_say(fx, p, "fail\ne");
    shutdown(p->fd, SHUT_WR);
    assert_line(fx, p, "{\"ok\":false,\"error\":\"internal error: Input/output error\"}");
    assert_line(fx, p, "{\"echo\":\"e\",\"privileged\":true}");
    assert_closed(fx, p, 2000);
    assert_int_equal(fx->calls, 6);
    wait_clients(fx, 0, 1000);
    peer_free(p);
}

static void test_a_1mib_line_is_refused_and_closed(void **state)
{
    struct fixture *fx = *state;
    size_t len = 1 << 20;
    char *junk = malloc(len);
    struct peer *p, *q;

    assert_non_null(junk);
    memset(junk, '{', len);
    start(fx);
    p = peer_connect(fx);
    /* The server stops reading after 64 KiB: the rest of the MiB never goes. */
    assert_true(peer_send(fx, p, junk, len) < len);
    assert_line(fx, p, "{\"ok\":false,\"error\":\"request line too long\"}");
    assert_closed(fx, p, 2000);
    assert_int_equal(fx->calls, 0);
    /* The server goes on serving. */
    q = peer_connect(fx);
    peer_say(fx, q, "after\n");
    assert_line(fx, q, "{\"echo\":\"after\",\"privileged\":true}");
    peer_free(p);
    peer_free(q);
    free(junk);
}

static void test_line_limit_is_exact(void **state)
{
    struct fixture *fx = *state;
    char line[128], want[160];
    struct peer *p, *q;

    start(fx);
    kigen_control_set_limits(fx->ctl, 0, 0, 100);
    memset(line, 'a', 100);
    line[100] = '\n';
    line[101] = '\0';
    p = peer_connect(fx);
    peer_say(fx, p, line);
    line[100] = '\0';
    snprintf(want, sizeof(want), "{\"echo\":\"%s\",\"privileged\":true}", line);
    assert_line(fx, p, want);
    q = peer_connect(fx);
    line[100] = 'a';
    line[101] = '\n';
    line[102] = '\0';
    peer_say(fx, q, line);
    assert_line(fx, q, "{\"ok\":false,\"error\":\"request line too long\"}");
    assert_closed(fx, q, 2000);
    assert_int_equal(fx->calls, 1);
    peer_free(p);
    peer_free(q);
}

static void test_1000_clients_at_once(void **state)
{
    enum {
        N = 1000
    };
    struct fixture *fx = *state;
    struct peer *p[N];
    char want[64], req[32];
    struct rlimit rl;

    /* Both ends of every connection are in this process: 2,000 descriptors. */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * N + 64) {
        rl.rlim_cur = rl.rlim_max;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    assert_true(rl.rlim_cur >= 2 * N + 64);
    start(fx);
    for (int i = 0; i < N; i++)
        p[i] = peer_connect(fx);
    wait_clients(fx, N, 10000);
    for (int i = 0; i < N; i++) {
        snprintf(req, sizeof(req), "c%d\n", i);
        peer_say(fx, p[i], req);
    }
    for (int i = N - 1; i >= 0; i--) {
        snprintf(want, sizeof(want), "{\"echo\":\"c%d\",\"privileged\":true}", i);
        assert_line(fx, p[i], want);
    }
    assert_int_equal(fx->calls, N);
    for (int i = 0; i < N; i++)
        peer_free(p[i]);
    wait_clients(fx, 0, 5000);
}

static void test_one_more_than_max_clients_is_told_and_closed(void **state)
{
    struct fixture *fx = *state;
    struct peer *p[4];

    start(fx);
    kigen_control_set_limits(fx->ctl, 3, 0, 0);
    for (int i = 0; i < 3; i++)
        p[i] = peer_connect(fx);
    wait_clients(fx, 3, 2000);
    p[3] = peer_connect(fx);
    assert_line(fx, p[3], "{\"ok\":false,\"error\":\"too many clients\"}");
    assert_closed(fx, p[3], 2000);
    assert_int_equal(kigen_control_clients(fx->ctl), 3);
    peer_say(fx, p[2], "still\n");
    assert_line(fx, p[2], "{\"echo\":\"still\",\"privileged\":true}");
    for (int i = 0; i < 4; i++)
        peer_free(p[i]);
}

/* Reads one BIG answer off p. */
static void assert_big_answer(struct fixture *fx, struct peer *p)
{
    char *line = peer_line(fx, p, 20000);

    assert_non_null(line);
    assert_int_equal(strlen(line), BIG);
    assert_int_equal(strspn(line, "x"), BIG);
    free(line);
}

static void test_a_client_that_never_reads_blocks_no_one(void **state)
{
    struct fixture *fx = *state;
    struct peer *hog, *p;
    uint64_t t0;

    start(fx);
    hog = peer_connect(fx);
    /* Three large answers asked for at once, and none read. */
    peer_say(fx, hog, "big\nbig\nbig\n");
    pump_for(fx, 200);
    /* One answer is queued; the next requests wait unparsed: memory holds one copy. */
    assert_int_equal(fx->big_calls, 1);
    p = peer_connect(fx);
    t0 = now_ms();
    peer_say(fx, p, "status\n");
    assert_line(fx, p, "{\"echo\":\"status\",\"privileged\":true}");
    assert_true(now_ms() - t0 < 5000); /* answered while the hog still holds its answers */
    pump_for(fx, 100);
    assert_int_equal(fx->big_calls, 1);
    /* Once the hog reads, the rest is answered, whole and in order. */
    assert_big_answer(fx, hog);
    assert_big_answer(fx, hog);
    assert_big_answer(fx, hog);
    assert_int_equal(fx->big_calls, 3);
    peer_free(hog);
    peer_free(p);
}

/* Asks p for "big" and waits until the server has handled it. */
static void ask_big(struct fixture *fx, struct peer *p)
{
    int calls = fx->calls;
    uint64_t end = now_ms() + 5000;

    peer_say(fx, p, "big\n");
    while (fx->calls == calls && now_ms() < end)
        pump(fx, -1);
    assert_int_equal(fx->calls, calls + 1);
}

static void test_unread_answers_are_bounded_together(void **state)
{
    struct fixture *fx = *state;
    struct peer *hog[3], *p;

    start(fx);
    kigen_control_set_max_pending(fx->ctl, 2 * BIG + BIG / 2);
    for (int i = 0; i < 3; i++)
        hog[i] = peer_connect(fx);
    p = peer_connect(fx);
    /* Two large answers held for clients that do not read; the third would pass the bound. */
    ask_big(fx, hog[0]);
    ask_big(fx, hog[1]);
    ask_big(fx, hog[2]);
    assert_line(fx, hog[2],
                "{\"ok\":false,\"error\":\"busy: other clients have not read their "
                "answers yet, try again\"}");
    /* Small answers still fit. */
    peer_say(fx, p, "status\n");
    assert_line(fx, p, "{\"echo\":\"status\",\"privileged\":true}");
    /* One hog reads: there is room again. */
    assert_big_answer(fx, hog[0]);
    ask_big(fx, hog[2]);
    assert_big_answer(fx, hog[2]);
    assert_big_answer(fx, hog[1]);
    /* With nothing held, one answer larger than the bound still goes out whole. */
    kigen_control_set_max_pending(fx->ctl, BIG / 2);
    ask_big(fx, p);
    assert_big_answer(fx, p);
    for (int i = 0; i < 3; i++)
        peer_free(hog[i]);
    peer_free(p);
}

static void test_a_client_gone_mid_answer_is_cleaned_up(void **state)
{
    struct fixture *fx = *state;
    struct peer *p, *q;
    uint64_t end = now_ms() + 2000;

    start(fx);
    p = peer_connect(fx);
    peer_say(fx, p, "big\nbig\n");
    while (p->len < (1 << 20) && now_ms() < end) {
        pump(fx, p->fd);
        peer_recv(p, 65536);
    }
    assert_true(p->len >= (1 << 20));
    close(p->fd);
    p->fd = -1;
    wait_clients(fx, 0, 2000);
    assert_int_equal(fx->big_calls, 1);
    q = peer_connect(fx);
    peer_say(fx, q, "next\n");
    assert_line(fx, q, "{\"echo\":\"next\",\"privileged\":true}");
    peer_free(p);
    peer_free(q);
}

static void test_idle_clients_are_closed(void **state)
{
    struct fixture *fx = *state;
    struct peer *silent, *hog;
    uint64_t t0 = now_ms();

    start(fx);
    kigen_control_set_limits(fx->ctl, 0, 100, 0);
    silent = peer_connect(fx);
    hog = peer_connect(fx);
    peer_say(fx, hog, "big\n");
    assert_closed(fx, silent, 2000);
    assert_true(now_ms() - t0 >= 100);
    wait_clients(fx, 0, 2000);
    /* The hog's queue never drained: it was closed too, its answer freed (ASan watches). */
    assert_int_equal(fx->big_calls, 1);
    peer_free(silent);
    peer_free(hog);
}

static void test_a_slow_reader_is_not_idle(void **state)
{
    struct fixture *fx = *state;
    struct peer *p;
    uint64_t t0, end;

    start(fx);
    /*
     * An idle limit well above the reader's 80 ms pauses, so that a test process descheduled
     * for a while on a busy machine (make check beside other work) is not taken for an idle
     * client.
     */
    kigen_control_set_limits(fx->ctl, 0, 1000, 0);
    p = peer_connect(fx);
    peer_say(fx, p, "big\n");
    /* 20 MiB at 1 MiB per 80 ms: longer than the idle limit, but always progressing. */
    t0 = now_ms();
    end = t0 + 20000;
    while (!(p->len && p->buf[p->len - 1] == '\n') && !p->is_closed && now_ms() < end) {
        uint64_t next = now_ms() + 80;
        size_t got = 0;

        while (got < (1 << 20) && !p->is_closed && now_ms() < end) {
            size_t before = p->len;

            pump(fx, p->fd);
            peer_recv(p, (1 << 20) - got);
            got += p->len - before;
            if (p->len && p->buf[p->len - 1] == '\n')
                break;
        }
        while (now_ms() < next)
            pump(fx, -1);
    }
    assert_false(p->is_closed);
    assert_int_equal(p->len, BIG + 1);
    assert_true(now_ms() - t0 > 1200); /* the whole answer took longer than the idle limit */
    peer_free(p);
}

static void test_a_stale_socket_file_is_replaced(void **state)
{
    struct fixture *fx = *state;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct peer *p;

    /* What a crash leaves: a socket file nothing listens on. */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    start(fx);
    p = peer_connect(fx);
    peer_say(fx, p, "hello\n");
    assert_line(fx, p, "{\"echo\":\"hello\",\"privileged\":true}");
    peer_free(p);
}

static void test_a_live_socket_or_a_file_is_not_taken(void **state)
{
    struct fixture *fx = *state;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct kigen_control *ctl = NULL;
    struct stat before, after;
    char err[256], longpath[200];
    FILE *f;

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(stat(fx->path, &before), 0);
    assert_int_equal(
        kigen_control_start(&fx->loop, fx->path, -1, handler, fx, &ctl, err, sizeof(err)),
        -EADDRINUSE);
    assert_null(ctl);
    assert_non_null(strstr(err, fx->path));
    assert_non_null(strstr(err, "refusing"));
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the failed server's handle closes */
    assert_int_equal(stat(fx->path, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    close(fd);
    unlink(fx->path);

    f = fopen(fx->path, "we");
    assert_non_null(f);
    fputs("precious", f);
    fclose(f);
    assert_int_equal(
        kigen_control_start(&fx->loop, fx->path, -1, handler, fx, &ctl, err, sizeof(err)), -EEXIST);
    assert_non_null(strstr(err, "is not a socket"));
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(stat(fx->path, &after), 0);
    assert_int_equal(after.st_size, 8);
    unlink(fx->path);

    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(
        kigen_control_start(&fx->loop, longpath, -1, handler, fx, &ctl, err, sizeof(err)),
        -ENAMETOOLONG);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void test_socket_mode_is_0660_and_removed_at_close(void **state)
{
    struct fixture *fx = *state;
    struct stat st;
    mode_t old = umask(0);

    /* Whatever the process's umask, the socket ends up 0660, and the umask is put back. */
    start(fx);
    assert_int_equal(umask(old), 0);
    assert_int_equal(stat(fx->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);
    stop(fx);
    assert_int_equal(stat(fx->path, &st), -1);
    assert_int_equal(errno, ENOENT);
}

/* In a child: connects as uid 65534 and exits 0 when told it is not privileged. */
static void child_as_nobody(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    const char want[] = "{\"echo\":\"who\",\"privileged\":false}\n";
    char buf[256];
    size_t len = 0;
    ssize_t n;
    int fd;

    alarm(10);
    if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
        _exit(2);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        _exit(3);
    if (write(fd, "who\n", 4) != 4)
        _exit(4);
    while (len < sizeof(want) - 1 && (n = read(fd, buf + len, sizeof(buf) - len)) > 0)
        len += (size_t)n;
    _exit(len == sizeof(want) - 1 && memcmp(buf, want, len) == 0 ? 0 : 5);
}

static void test_peer_uid_decides_privilege(void **state)
{
    struct fixture *fx = *state;
    struct peer *p;
    uint64_t end;
    pid_t pid;
    int status = -1;

    start(fx);
    p = peer_connect(fx);
    peer_say(fx, p, "who\n");
    /* Root, or the daemon's own uid: privileged either way. */
    assert_line(fx, p, "{\"echo\":\"who\",\"privileged\":true}");
    peer_free(p);
    if (geteuid() != 0)
        fail_msg("this test needs root, to connect as another uid (CI runs as root)");
    /* Let uid 65534 reach the socket: 0660 root:root would refuse it at connect. */
    assert_int_equal(chmod(fx->dir, 0711), 0);
    assert_int_equal(chmod(fx->path, 0666), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_as_nobody(fx->path);
    end = now_ms() + 10000;
    while (waitpid(pid, &status, WNOHANG) == 0 && now_ms() < end)
        pump(fx, -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_an_inherited_socket_is_served_and_left_in_place(void **state)
{
    struct fixture *fx = *state;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), pipefd[2];
    struct kigen_control *ctl = NULL;
    struct peer *p;
    struct stat st;
    char err[256];

    /* As systemd hands it over: bound and listening. */
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fx->path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(fcntl(fd, F_SETFD, 0), 0);
    assert_int_equal(
        kigen_control_start(&fx->loop, NULL, fd, handler, fx, &fx->ctl, err, sizeof(err)), 0);
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    p = peer_connect(fx);
    peer_say(fx, p, "activated\n");
    assert_line(fx, p, "{\"echo\":\"activated\",\"privileged\":true}");
    peer_free(p);
    stop(fx);
    assert_int_equal(stat(fx->path, &st), 0);
    /* A descriptor that is no listening socket is refused, and not ours to close. */
    assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
    assert_int_equal(
        kigen_control_start(&fx->loop, NULL, pipefd[0], handler, fx, &ctl, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "not a listening Unix stream socket"));
    assert_int_equal(fcntl(pipefd[0], F_GETFD), FD_CLOEXEC);
    close(pipefd[0]);
    close(pipefd[1]);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void test_close_with_answers_in_flight(void **state)
{
    struct fixture *fx = *state;
    struct peer *p, *q;

    start(fx);
    p = peer_connect(fx);
    q = peer_connect(fx);
    peer_say(fx, p, "big\n");
    peer_say(fx, q, "par");
    pump_for(fx, 50);
    assert_int_equal(fx->big_calls, 1);
    stop(fx); /* the queued answer is dropped and freed; the closed_cb runs */
    assert_closed(fx, q, 1000);
    peer_free(p);
    peer_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_requests_are_answered_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_1mib_line_is_refused_and_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_limit_is_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_1000_clients_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_more_than_max_clients_is_told_and_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_client_that_never_reads_blocks_no_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unread_answers_are_bounded_together, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_client_gone_mid_answer_is_cleaned_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_idle_clients_are_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_slow_reader_is_not_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_stale_socket_file_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_live_socket_or_a_file_is_not_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_mode_is_0660_and_removed_at_close, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peer_uid_decides_privilege, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_inherited_socket_is_served_and_left_in_place, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_with_answers_in_flight, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
