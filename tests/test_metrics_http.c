/*
 * The HTTP metrics endpoint, driven by the real curl binary and checked by Prometheus' own
 * promtool. Everything listens on loopback only, on a port the kernel picks.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"
#include "metrics_http.h"
#include "readtest.h"
#include "timeutil.h"

extern char **environ;

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define N_CONCURRENT 50

struct fixture {
    char dir[64];
    struct kigen_metrics_http *h;
};

struct reply {
    int status;
    char *head; /* status line and headers */
    char *body;
    size_t body_len;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/kigen-http-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    signal(SIGPIPE, SIG_DFL); /* the server must not raise it: let it kill the test if it does */
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    kigen_metrics_http_stop(fx->h);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

/* ---- helpers ---- */

static char *dup_text(const char *s)
{
    char *t = strdup(s);

    assert_non_null(t);
    return t;
}

static void start(struct fixture *fx, const char *listen)
{
    char err[256] = "";
    int r = kigen_metrics_http_start(listen, &fx->h, err, sizeof(err));

    if (r < 0)
        fail_msg("cannot start on %s: %d %s", listen, r, err);
    assert_int_not_equal(kigen_metrics_http_port(fx->h), 0);
}

static void publish(struct fixture *fx, const char *text)
{
    assert_int_equal(kigen_metrics_http_publish(fx->h, dup_text(text), strlen(text)), 0);
}

static char *slurp(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    assert_non_null(f);
    do {
        if (cap - len < 65536) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    return buf;
}

/*
 * Starts argv[0] (looked up in PATH) with stdin from in_fd (-1: /dev/null) and stdout to
 * out_fd or, when out_fd < 0, to the file out_path; stderr goes to out_path ".err". A program
 * that is not installed fails the test: these tests need the real tools.
 */
static pid_t spawn(const char *const argv[], int in_fd, int out_fd, const char *out_path)
{
    posix_spawn_file_actions_t fa;
    char err_path[512];
    pid_t pid;
    int r;

    snprintf(err_path, sizeof(err_path), "%s.err", out_path);
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    if (in_fd >= 0)
        assert_int_equal(posix_spawn_file_actions_adddup2(&fa, in_fd, 0), 0);
    else
        assert_int_equal(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
    if (out_fd >= 0)
        assert_int_equal(posix_spawn_file_actions_adddup2(&fa, out_fd, 1), 0);
    else
        assert_int_equal(
            posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            0);
    assert_int_equal(
        posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
    r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r == ENOENT)
        fail_msg("'%s' is not installed: this test needs it (Debian: apt-get install %s)", argv[0],
                 strcmp(argv[0], "promtool") == 0 ? "prometheus" : argv[0]);
    assert_int_equal(r, 0);
    return pid;
}

/* The exit status of pid; a death by signal fails the test. */
static int wait_exit(pid_t pid)
{
    int status;

    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("process %d died of signal %d", (int)pid, WTERMSIG(status));
    return WEXITSTATUS(status);
}

/* Parses what curl -i wrote to path: the last response's status line, headers and body. */
static struct reply parse_reply(const char *path)
{
    struct reply rep = { 0 };
    size_t len;
    char *text = slurp(path, &len), *end;

    end = strstr(text, "\r\n\r\n");
    if (!end || sscanf(text, "HTTP/%*s %d", &rep.status) != 1)
        fail_msg("not an HTTP answer in '%s': %.300s", path, text);
    rep.head = strndup(text, (size_t)(end + 2 - text));
    rep.body_len = len - (size_t)(end + 4 - text);
    rep.body = malloc(rep.body_len + 1);
    assert_true(rep.head && rep.body);
    memcpy(rep.body, end + 4, rep.body_len + 1);
    free(text);
    return rep;
}

static void reply_done(struct reply *rep)
{
    free(rep->head);
    free(rep->body);
}

/*
 * Runs curl -sS -i [extra...] http://HOST:PORT/PATH and parses the answer; curl must succeed.
 * extra is NULL-terminated.
 */
static struct reply curl_at(struct fixture *fx, const char *host, const char *path,
                            const char *const *extra)
{
    const char *argv[16] = { "curl", "-sS", "-i", "--max-time", "10" };
    char url[256], out[128], err[160];
    size_t n = 5;
    int rc;

    snprintf(url, sizeof(url), "http://%s:%u%s", host, kigen_metrics_http_port(fx->h), path);
    snprintf(out, sizeof(out), "%s/curl.out", fx->dir);
    for (; extra && *extra; extra++)
        argv[n++] = *extra;
    argv[n++] = url;
    argv[n] = NULL;
    rc = wait_exit(spawn(argv, -1, -1, out));
    if (rc != 0) {
        snprintf(err, sizeof(err), "%s.err", out);
        fail_msg("curl %s failed with %d: %s", url, rc, slurp(err, NULL));
    }
    return parse_reply(out);
}

static struct reply curl_get(struct fixture *fx, const char *path)
{
    return curl_at(fx, "127.0.0.1", path, NULL);
}

/* The value of header name in head ("Name: value\r\n"), or NULL. */
static char *header(const struct reply *rep, const char *name)
{
    static char value[256];
    char key[64];
    const char *p, *end;

    snprintf(key, sizeof(key), "\r\n%s: ", name);
    p = strcasestr(rep->head, key);
    if (!p)
        return NULL;
    p += strlen(key);
    end = strstr(p, "\r\n");
    assert_non_null(end);
    snprintf(value, sizeof(value), "%.*s", (int)(end - p), p);
    return value;
}

static void assert_metrics(struct fixture *fx, const char *want)
{
    struct reply rep = curl_get(fx, "/metrics");

    assert_int_equal(rep.status, 200);
    assert_string_equal(header(&rep, "Content-Type"), CONTENT_TYPE);
    assert_int_equal(rep.body_len, strlen(want));
    assert_memory_equal(rep.body, want, rep.body_len);
    reply_done(&rep);
}

/* A loopback TCP connection to the server (close-on-exec, as every descriptor should be). */
static int connect_to(struct fixture *fx)
{
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons(kigen_metrics_http_port(fx->h)),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void send_all(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads until the end of the headers (or len bytes); returns what was read. */
static size_t read_head(int fd, char *buf, size_t len)
{
    size_t got = 0;

    while (got < len - 1) {
        ssize_t n = recv(fd, buf + got, len - 1 - got, 0);

        assert_true(n > 0);
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    return got;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

    nanosleep(&ts, NULL);
}

/* A text of about len bytes in the exposition format, each line different. */
static char *big_text(size_t len, const char *tag, size_t *ret_len)
{
    char *text = malloc(len + 128);
    size_t n = 0;

    assert_non_null(text);
    for (size_t i = 0; n < len; i++)
        n += (size_t)sprintf(text + n, "kigen_test_%s{i=\"%zu\"} %zu\n", tag, i, i);
    *ret_len = n;
    return text;
}

/* The descriptors open now, as a bitmap over 0..1023. */
static void open_fds(bool fds[1024])
{
    memset(fds, 0, 1024 * sizeof(bool));
    for (int fd = 0; fd < 1024; fd++)
        fds[fd] = fcntl(fd, F_GETFD) >= 0;
}

/* ---- tests ---- */

static void test_metrics_are_unavailable_before_the_first_publish(void **state)
{
    struct fixture *fx = *state;
    struct reply rep;

    start(fx, "127.0.0.1:0");
    rep = curl_get(fx, "/metrics");
    assert_int_equal(rep.status, 503);
    assert_string_equal(header(&rep, "Content-Type"), "text/plain; charset=utf-8");
    assert_string_equal(rep.body, "no metrics yet: the first scan has not finished\n");
    reply_done(&rep);
}

static void test_published_text_is_served_and_replaced(void **state)
{
    struct fixture *fx = *state;
    struct reply rep;

    start(fx, "127.0.0.1:0");
    publish(fx, "# HELP kigen_certificates Certificates.\n# TYPE kigen_certificates gauge\n"
                "kigen_certificates 3\n");
    assert_metrics(fx, "# HELP kigen_certificates Certificates.\n"
                       "# TYPE kigen_certificates gauge\nkigen_certificates 3\n");
    rep = curl_get(fx, "/metrics");
    assert_string_equal(header(&rep, "Content-Length"), "93"); /* the length of the text above */
    reply_done(&rep);
    /* The next publish replaces it at once; a query string does not matter. */
    publish(fx, "kigen_certificates 4\n");
    assert_metrics(fx, "kigen_certificates 4\n");
    rep = curl_get(fx, "/metrics?name[]=kigen_certificates");
    assert_int_equal(rep.status, 200);
    assert_string_equal(rep.body, "kigen_certificates 4\n");
    reply_done(&rep);
    /* Two publishes with no request between: the last one wins, the other is freed unseen. */
    publish(fx, "kigen_certificates 5\n");
    publish(fx, "kigen_certificates 6\n");
    assert_metrics(fx, "kigen_certificates 6\n");
    /* An empty text is a valid (empty) exposition. */
    publish(fx, "");
    assert_metrics(fx, "");
}

static void test_head_gives_the_headers_without_the_body(void **state)
{
    struct fixture *fx = *state;
    static const char *const head[] = { "-I", NULL };
    struct reply rep;

    start(fx, "127.0.0.1:0");
    rep = curl_at(fx, "127.0.0.1", "/metrics", head);
    assert_int_equal(rep.status, 503);
    reply_done(&rep);
    publish(fx, "kigen_certificates 12\n");
    rep = curl_at(fx, "127.0.0.1", "/metrics", head);
    assert_int_equal(rep.status, 200);
    assert_string_equal(header(&rep, "Content-Type"), CONTENT_TYPE);
    assert_string_equal(header(&rep, "Content-Length"), "22");
    assert_int_equal(rep.body_len, 0);
    reply_done(&rep);
}

static void test_other_paths_are_not_found(void **state)
{
    struct fixture *fx = *state;
    static const char *const paths[] = { "/",        "/metrics/",    "/metricsx",
                                         "/Metrics", "/favicon.ico", "/metrics/../metrics2" };
    struct reply rep;

    start(fx, "127.0.0.1:0");
    publish(fx, "kigen_certificates 1\n");
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        static const char *const as_is[] = { "--path-as-is", NULL };

        rep = curl_at(fx, "127.0.0.1", paths[i], as_is);
        if (rep.status != 404)
            fail_msg("%s: %d, not 404", paths[i], rep.status);
        assert_string_equal(rep.body, "not found: the metrics are at /metrics\n");
        reply_done(&rep);
    }
}

static void test_other_methods_are_not_allowed(void **state)
{
    struct fixture *fx = *state;
    static const char *const methods[] = { "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get" };
    struct reply rep;

    start(fx, "127.0.0.1:0");
    publish(fx, "kigen_certificates 1\n");
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        const char *const extra[] = { "-X", methods[i], NULL };

        rep = curl_at(fx, "127.0.0.1", "/metrics", extra);
        if (rep.status != 405)
            fail_msg("%s: %d, not 405", methods[i], rep.status);
        assert_string_equal(header(&rep, "Allow"), "GET, HEAD");
        assert_string_equal(rep.body, "method not allowed\n");
        reply_done(&rep);
    }
}

static void test_request_bodies_are_refused_unread(void **state)
{
    struct fixture *fx = *state;
    static const char *const get_body[] = { "-X", "GET", "--data-binary", "hello", NULL };
    static const char *const post_body[] = { "--data-binary", "hello", NULL };
    static const char *const chunked[] = {
        "-X", "GET", "-H", "Transfer-Encoding: chunked", "--data-binary", "hello", NULL
    };
    char *big = malloc(4 << 20), arg[96];
    const char *const big_body[] = { "-X", "GET", "--data-binary", arg, NULL };
    FILE *f;
    struct reply rep;

    start(fx, "127.0.0.1:0");
    publish(fx, "kigen_certificates 1\n");
    rep = curl_at(fx, "127.0.0.1", "/metrics", get_body);
    assert_int_equal(rep.status, 413);
    assert_string_equal(rep.body, "a request body is not accepted\n");
    reply_done(&rep);
    rep = curl_at(fx, "127.0.0.1", "/metrics", chunked);
    assert_int_equal(rep.status, 413);
    reply_done(&rep);
    rep = curl_at(fx, "127.0.0.1", "/metrics", post_body);
    assert_int_equal(rep.status, 405);
    reply_done(&rep);
    /* 4 MiB announced: answered without reading it (it would not fit the 32 KiB anyway). */
    assert_non_null(big);
    memset(big, 'x', 4 << 20);
    snprintf(arg, sizeof(arg), "@%s/big", fx->dir);
    f = fopen(arg + 1, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(big, 1, 4 << 20, f), 4 << 20);
    fclose(f);
    free(big);
    rep = curl_at(fx, "127.0.0.1", "/metrics", big_body);
    assert_int_equal(rep.status, 413);
    reply_done(&rep);
    /* 100 MB announced, 1 KB sent: the answer comes at once and the connection is closed. */
    {
        char answer[4096];
        size_t got = 0;
        ssize_t n;
        int fd = connect_to(fx);

        send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000000\r\n"
                     "\r\n");
        memset(answer, 'x', 1024);
        assert_int_equal(send(fd, answer, 1024, MSG_NOSIGNAL), 1024);
        while ((n = recv(fd, answer + got, sizeof(answer) - 1 - got, 0)) > 0)
            got += (size_t)n;
        answer[got] = '\0';
        assert_int_equal(n, 0);
        assert_true(strncmp(answer, "HTTP/1.1 413 ", 13) == 0);
        assert_non_null(strcasestr(answer, "\r\nConnection: close\r\n"));
        close(fd);
    }
    assert_metrics(fx, "kigen_certificates 1\n");
}

/* Whether this machine can bind the IPv6 loopback; the test needs it (Debian has it). */
static void require_ipv6_loopback(void)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0)
        fail_msg("this machine cannot bind [::1] (%s): the IPv6 case needs an IPv6 loopback",
                 strerror(errno));
    close(fd);
}

static void test_ipv6_loopback_is_served_and_only_it(void **state)
{
    struct fixture *fx = *state;
    char url[64], out[128];
    const char *argv[] = { "curl", "-sS", "--max-time", "10", url, NULL };

    require_ipv6_loopback();
    start(fx, "[::1]:0");
    publish(fx, "kigen_certificates 6\n");
    struct reply rep = curl_at(fx, "[::1]", "/metrics", NULL);

    assert_int_equal(rep.status, 200);
    assert_string_equal(rep.body, "kigen_certificates 6\n");
    reply_done(&rep);
    /* Only ::1 is bound: the same port on 127.0.0.1 is not served (curl: 7, cannot connect). */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", kigen_metrics_http_port(fx->h));
    snprintf(out, sizeof(out), "%s/v4.out", fx->dir);
    assert_int_equal(wait_exit(spawn(argv, -1, -1, out)), 7);
}

static void test_ipv4_address_is_served_and_only_it(void **state)
{
    struct fixture *fx = *state;
    char url[64], out[128];
    const char *argv[] = { "curl", "-sS", "--max-time", "10", url, NULL };

    require_ipv6_loopback();
    start(fx, "127.0.0.1:0");
    publish(fx, "kigen_certificates 4\n");
    snprintf(url, sizeof(url), "http://[::1]:%u/metrics", kigen_metrics_http_port(fx->h));
    snprintf(out, sizeof(out), "%s/v6.out", fx->dir);
    assert_int_equal(wait_exit(spawn(argv, -1, -1, out)), 7);
}

static void test_a_name_binds_its_ipv4_address(void **state)
{
    struct fixture *fx = *state;
    struct reply rep;

    start(fx, "localhost:0");
    publish(fx, "kigen_certificates 7\n");
    rep = curl_get(fx, "/metrics");
    assert_int_equal(rep.status, 200);
    assert_string_equal(rep.body, "kigen_certificates 7\n");
    reply_done(&rep);
}

static void test_port_in_use_is_a_clear_error(void **state)
{
    struct fixture *fx = *state;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sin);
    struct kigen_metrics_http *h = NULL;
    char listen_on[64], want[128], err[256];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    /* Another program listens there. */
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%u", ntohs(sin.sin_port));
    assert_int_equal(kigen_metrics_http_start(listen_on, &h, err, sizeof(err)), -EADDRINUSE);
    assert_null(h);
    snprintf(want, sizeof(want), "cannot listen on %s: Address already in use", listen_on);
    assert_string_equal(err, want);
    close(fd);

    /* Another kigen listens there: SO_REUSEADDR is not SO_REUSEPORT. */
    start(fx, "127.0.0.1:0");
    snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%u", kigen_metrics_http_port(fx->h));
    assert_int_equal(kigen_metrics_http_start(listen_on, &h, err, sizeof(err)), -EADDRINUSE);
    snprintf(want, sizeof(want), "cannot listen on %s: Address already in use", listen_on);
    assert_string_equal(err, want);
}

static void test_malformed_listen_is_refused(void **state)
{
    static const char *const bad[] = { "9793",       "::1:9793", "[::1]",
                                       "localhost:", ":9793",    "localhost:65536",
                                       "host:9x",    "[]:9793",  "h:123456" };
    struct kigen_metrics_http *h = NULL;
    char err[256], want[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (kigen_metrics_http_start(bad[i], &h, err, sizeof(err)) != -EINVAL)
            fail_msg("'%s' was not refused with -EINVAL", bad[i]);
        snprintf(want, sizeof(want), "cannot listen on %s: not host:port or [v6]:port", bad[i]);
        assert_string_equal(err, want);
        assert_null(h);
    }
    /* Brackets hold an IPv6 address, resolved without DNS. */
    assert_int_equal(kigen_metrics_http_start("[127.0.0.1]:0", &h, err, sizeof(err)),
                     -EADDRNOTAVAIL);
    assert_true(strncmp(err, "cannot listen on [127.0.0.1]:0: ", 32) == 0);
    assert_null(h);
    /* A null errbuf is allowed. */
    assert_int_equal(kigen_metrics_http_start("nope", &h, NULL, 0), -EINVAL);
}

static void test_restart_binds_the_same_port_again(void **state)
{
    struct fixture *fx = *state;
    char listen_on[64], buf[4096];
    int fd;

    start(fx, "127.0.0.1:0");
    publish(fx, "kigen_certificates 1\n");
    snprintf(listen_on, sizeof(listen_on), "127.0.0.1:%u", kigen_metrics_http_port(fx->h));
    /* A keep-alive client: the server closes first, which leaves its side in TIME_WAIT. */
    fd = connect_to(fx);
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    read_head(fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    kigen_metrics_http_stop(fx->h);
    fx->h = NULL;
    close(fd);
    start(fx, listen_on);
    publish(fx, "kigen_certificates 2\n");
    assert_metrics(fx, "kigen_certificates 2\n");
}

static void test_slow_clients_block_neither_publish_nor_others(void **state)
{
    struct fixture *fx = *state;
    char buf[4096], *text;
    size_t len;
    int slow_sender, slow_reader;

    start(fx, "127.0.0.1:0");
    /* 16 MB, more than any socket buffer holds: a client that does not read stalls midway. */
    text = big_text(16 << 20, "big", &len);
    assert_int_equal(kigen_metrics_http_publish(fx->h, text, len), 0);
    slow_reader = connect_to(fx);
    send_all(slow_reader, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    read_head(slow_reader, buf, sizeof(buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    /* A request that never ends. */
    slow_sender = connect_to(fx);
    send_all(slow_sender, "GET /metr");
    sleep_ms(200);

    /* Both are still connected (the idle limit is 10 s) while the others are served. */
    publish(fx, "kigen_certificates 1\n");
    assert_metrics(fx, "kigen_certificates 1\n");
    publish(fx, "kigen_certificates 2\n");
    assert_metrics(fx, "kigen_certificates 2\n");
    /* The slow reader still gets the text it began with, to the last byte. */
    {
        size_t got = 0, head_len = (size_t)(strstr(buf, "\r\n\r\n") + 4 - buf);
        size_t already = strlen(buf) - head_len;
        char *want = big_text(16 << 20, "big", &len), *chunk = malloc(1 << 16);

        assert_non_null(chunk);
        assert_memory_equal(buf + head_len, want, already);
        got = already;
        while (got < len) {
            ssize_t n = recv(slow_reader, chunk, 1 << 16, 0);

            assert_true(n > 0);
            assert_true(got + (size_t)n <= len);
            assert_memory_equal(chunk, want + got, (size_t)n);
            got += (size_t)n;
        }
        free(chunk);
        free(want);
    }
    close(slow_reader);
    close(slow_sender);
}

static void test_a_client_gone_midway_raises_no_sigpipe(void **state)
{
    struct fixture *fx = *state;
    char buf[4096], *text;
    size_t len;
    int fd;

    start(fx, "127.0.0.1:0");
    text = big_text(16 << 20, "gone", &len);
    assert_int_equal(kigen_metrics_http_publish(fx->h, text, len), 0);
    for (int i = 0; i < 4; i++) {
        struct linger reset = { 1, 0 };

        fd = connect_to(fx);
        send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
        read_head(fd, buf, sizeof(buf));
        /* Unread data and a zero linger: a reset, and the server's next send fails. */
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
        close(fd);
    }
    sleep_ms(300);
    /* SIGPIPE is at its default here: the process would be dead by now. */
    publish(fx, "kigen_certificates 3\n");
    assert_metrics(fx, "kigen_certificates 3\n");
}

static void test_fifty_concurrent_clients_are_all_served(void **state)
{
    struct fixture *fx = *state;
    pid_t pids[N_CONCURRENT];
    char url[64], out[N_CONCURRENT][128], *text, *want;
    size_t len;

    start(fx, "127.0.0.1:0");
    text = big_text(512 << 10, "many", &len);
    want = strndup(text, len);
    assert_non_null(want);
    assert_int_equal(kigen_metrics_http_publish(fx->h, text, len), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", kigen_metrics_http_port(fx->h));
    for (int i = 0; i < N_CONCURRENT; i++) {
        const char *argv[] = { "curl", "-sS", "-i", "--max-time", "30", url, NULL };

        snprintf(out[i], sizeof(out[i]), "%s/c%02d.out", fx->dir, i);
        pids[i] = spawn(argv, -1, -1, out[i]);
    }
    for (int i = 0; i < N_CONCURRENT; i++)
        assert_int_equal(wait_exit(pids[i]), 0);
    for (int i = 0; i < N_CONCURRENT; i++) {
        struct reply rep = parse_reply(out[i]);

        assert_int_equal(rep.status, 200);
        assert_int_equal(rep.body_len, len);
        assert_memory_equal(rep.body, want, len);
        reply_done(&rep);
    }
    free(want);
}

static void test_connections_are_limited_and_idle_ones_closed(void **state)
{
    struct fixture *fx = *state;
    int fds[KIGEN_METRICS_HTTP_MAX_CLIENTS];
    char url[64], out[128], buf[64];
    const char *argv[] = { "curl", "-sS", "--max-time", "3", url, NULL };
    struct timespec t0, t1;
    int rc;

    start(fx, "127.0.0.1:0");
    publish(fx, "kigen_certificates 1\n");
    for (int i = 0; i < KIGEN_METRICS_HTTP_MAX_CLIENTS; i++) {
        fds[i] = connect_to(fx);
        send_all(fds[i], "GET /metr");
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sleep_ms(500); /* for the server to accept them all */
    /* One more waits in the backlog, unserved. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", kigen_metrics_http_port(fx->h));
    snprintf(out, sizeof(out), "%s/limit.out", fx->dir);
    rc = wait_exit(spawn(argv, -1, -1, out));
    if (rc != 28)
        fail_msg("the client over the limit was not kept waiting: curl exited %d", rc);
    /* The idle ones are closed after KIGEN_METRICS_HTTP_IDLE_S, which makes room. */
    for (int i = 0; i < KIGEN_METRICS_HTTP_MAX_CLIENTS; i++) {
        assert_true(recv(fds[i], buf, sizeof(buf), 0) <= 0);
        close(fds[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec >= KIGEN_METRICS_HTTP_IDLE_S - 1);
    assert_metrics(fx, "kigen_certificates 1\n");
}

static void test_stop_with_clients_connected_returns_and_closes_everything(void **state)
{
    struct fixture *fx = *state;
    bool before[1024], after[1024];
    char buf[4096], *text;
    size_t len;
    int fds[3];

    open_fds(before);
    start(fx, "127.0.0.1:0");
    text = big_text(16 << 20, "stop", &len);
    assert_int_equal(kigen_metrics_http_publish(fx->h, text, len), 0);
    fds[0] = connect_to(fx); /* mid-answer */
    send_all(fds[0], "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    read_head(fds[0], buf, sizeof(buf));
    fds[1] = connect_to(fx); /* mid-request */
    send_all(fds[1], "GET /metrics HTTP/1.1\r\nHo");
    fds[2] = connect_to(fx); /* silent */
    sleep_ms(200);
    publish(fx, "kigen_certificates 1\n"); /* a text taken by nobody yet */

    alarm(30); /* a hang is a failure, not a stuck test */
    kigen_metrics_http_stop(fx->h);
    alarm(0);
    fx->h = NULL;
    /* Every client sees its connection end. */
    for (int i = 0; i < 3; i++) {
        ssize_t n;

        while ((n = recv(fds[i], buf, sizeof(buf), 0)) > 0)
            ;
        assert_true(n == 0 || errno == ECONNRESET);
        close(fds[i]);
    }
    /* Nothing is left open (ASan sees to the memory). */
    open_fds(after);
    for (int fd = 0; fd < 1024; fd++)
        if (after[fd] != before[fd])
            fail_msg("descriptor %d is %s", fd, after[fd] ? "left open" : "closed");
}

static void test_every_descriptor_is_close_on_exec(void **state)
{
    struct fixture *fx = *state;
    bool before[1024], after[1024];
    char buf[4096];
    int fd;

    open_fds(before);
    start(fx, "127.0.0.1:0");
    publish(fx, "kigen_certificates 1\n");
    fd = connect_to(fx); /* so that an accepted socket exists */
    send_all(fd, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    read_head(fd, buf, sizeof(buf));
    open_fds(after);
    for (int i = 0; i < 1024; i++)
        if (after[i] && !before[i] && i != fd && !(fcntl(i, F_GETFD) & FD_CLOEXEC))
            fail_msg("descriptor %d is not close-on-exec", i);
    close(fd);
}

/* ---- a real render, checked by promtool ---- */

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static void test_promtool_accepts_a_real_render(void **state)
{
    static int64_t notify[] = { 60 * 86400, 28 * 86400, 7 * 86400 };
    struct fixture *fx = *state;
    struct kigen_label labels[2] = { { "team", "customs" }, { "note", "two\nlines \"q\"" } };
    struct kigen_keystore ks = { .name = "naccs", .path = "/srv/naccs", .labels = { labels, 2 } };
    struct kigen_config config = {
        .keystores = &ks,
        .n_keystores = 1,
        .policy = { .renew_before = 28 * 86400,
                    .critical_before = 7 * 86400,
                    .has_notify = true,
                    .notify_before = notify,
                    .n_notify = 3 },
    };
    struct kigen_metrics_extra extra = { .scan_duration_seconds = 0.75 };
    struct kigen_read_ctx *ctx = NULL;
    struct kigen_inventory *inventory = NULL;
    struct kigen_file *broken;
    struct kigen_view view;
    char url[64], out[128], line[256], *text, *want, *served, *msg;
    size_t len;
    int pipe_fds[2];
    pid_t curl_pid, promtool_pid;

    assert_int_equal(kigen_read_ctx_new(&ctx), 0);
    assert_int_equal(kigen_inventory_new(&inventory), 0);
    inventory_place(inventory, ctx, "certs/bundle.pem", "naccs", "/srv/naccs/bundle.pem");
    inventory_place(inventory, ctx, "certs/single.pem", "naccs", "/srv/naccs/a \"quoted\".pem");
    broken = kigen_file_new("naccs", "/srv/naccs/broken.p12");
    assert_non_null(broken);
    broken->error = KIGEN_E_WRONG_PASSWORD;
    broken->message = strdup("wrong password");
    assert_int_equal(kigen_inventory_put(inventory, broken), 0);
    assert_int_equal(kigen_view_build(&config, inventory, at("2026-11-24T12:00:00Z"), NULL, &view),
                     0);
    assert_int_equal(kigen_metrics_render(&view, &extra, &text, &len), 0);
    want = strndup(text, len);
    assert_non_null(want);
    kigen_view_done(&view);
    kigen_inventory_free(inventory);
    kigen_read_ctx_free(ctx);

    start(fx, "127.0.0.1:0");
    assert_int_equal(kigen_metrics_http_publish(fx->h, text, len), 0);
    /* What is served is the render, byte for byte. */
    {
        struct reply rep = curl_get(fx, "/metrics");

        assert_int_equal(rep.status, 200);
        assert_int_equal(rep.body_len, len);
        assert_memory_equal(rep.body, want, len);
        assert_non_null(strstr(rep.body, "kigen_certificates{state=\"expired\"} 1\n"));
        reply_done(&rep);
    }
    /* curl ... | promtool check metrics */
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", kigen_metrics_http_port(fx->h));
    assert_int_equal(pipe2(pipe_fds, O_CLOEXEC), 0);
    {
        const char *curl_argv[] = { "curl", "-sS", "--fail", "--max-time", "10", url, NULL };
        const char *promtool_argv[] = { "promtool", "check", "metrics", NULL };

        snprintf(out, sizeof(out), "%s/curl-pipe", fx->dir);
        curl_pid = spawn(curl_argv, -1, pipe_fds[1], out);
        snprintf(out, sizeof(out), "%s/promtool.out", fx->dir);
        promtool_pid = spawn(promtool_argv, pipe_fds[0], -1, out);
    }
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    assert_int_equal(wait_exit(curl_pid), 0);
    if (wait_exit(promtool_pid) != 0) {
        served = slurp(out, NULL);
        snprintf(line, sizeof(line), "%s.err", out);
        msg = slurp(line, NULL);
        fail_msg("promtool check metrics refused the served text: %s%s", served, msg);
    }
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_are_unavailable_before_the_first_publish,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_published_text_is_served_and_replaced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_head_gives_the_headers_without_the_body, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_other_paths_are_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_methods_are_not_allowed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_bodies_are_refused_unread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv6_loopback_is_served_and_only_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ipv4_address_is_served_and_only_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_name_binds_its_ipv4_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_in_use_is_a_clear_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_listen_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_binds_the_same_port_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_clients_block_neither_publish_nor_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_client_gone_midway_raises_no_sigpipe, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fifty_concurrent_clients_are_all_served, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_connections_are_limited_and_idle_ones_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_stop_with_clients_connected_returns_and_closes_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_descriptor_is_close_on_exec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promtool_accepts_a_real_render, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
