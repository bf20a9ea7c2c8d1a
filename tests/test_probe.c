/*
 * The probe engine against real servers on loopback only: `openssl s_server` with the
 * certificates of tests/gen/gen_probe.sh, Debian's tinyproxy as the HTTP proxy, sockets that
 * refuse or never speak, and names under .invalid (RFC 2606) for DNS failures. No test ever
 * contacts any other address.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "config.h"
#include "inventory.h"
#include "maint.h"
#include "probe.h"
#include "probe_sync.h"
#include "testutil.h"
#include "timeutil.h"

/* The servers every test shares, started once by group_setup. */
struct servers {
    char dir[64]; /* a private scratch directory */
    pid_t pids[16];
    size_t n_pids;
    unsigned good, expired, wronghost, unknown; /* s_server ports */
    unsigned chain;                             /* chain.pem, sending chain-inter.pem too */
    unsigned chain_extra; /* chain.pem, sending chain-inter.pem and an unrelated CA */
    unsigned proxy;       /* tinyproxy: CONNECT allowed to good only */
    unsigned closed;      /* bound, not listening: refuses */
    unsigned silent;      /* listening, never accepts nor speaks */
    int closed_fd, silent_fd;
};

static struct servers srv = { .closed_fd = -1, .silent_fd = -1 };

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* A socket on 127.0.0.1 with a port the kernel chose; *ret_port gets it. */
static int loopback_socket(unsigned *ret_port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *ret_port = ntohs(sa.sin_port);
    return fd;
}

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    srv.pids[srv.n_pids++] = pid;
    return pid;
}

/* PROBE/name.suffix into buf. */
static char *probe_file(char *buf, size_t len, const char *name, const char *suffix)
{
    snprintf(buf, len, "%s", fixture_path("probe/"));
    snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", name, suffix);
    return buf;
}

/*
 * Starts s_server on 127.0.0.1 with a kernel-chosen port and returns the port it prints:
 * PROBE/name.pem and its key, and when chain is not NULL the certificates of PROBE/chain.pem
 * sent after it.
 */
static unsigned start_s_server(const char *name, const char *chain)
{
    char cert[4096], key[4096], extra[4096], log[128], buf[4096];
    char *argv[] = { "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert,
                     "-key",    key,        "-www",    "-cert_chain", extra,   NULL };

    probe_file(cert, sizeof(cert), name, ".pem");
    probe_file(key, sizeof(key), name, ".key");
    if (chain)
        probe_file(extra, sizeof(extra), chain, ".pem");
    else
        argv[9] = NULL;
    snprintf(log, sizeof(log), "%s/s_server-%s-%s.log", srv.dir, name, chain ? chain : "");
    spawn(argv, log);
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(log, "re");
        size_t n = 0;
        const char *at;

        if (f) {
            n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
        }
        buf[n] = '\0';
        at = strstr(buf, "ACCEPT 127.0.0.1:");
        if (at && strchr(at, '\n'))
            return (unsigned)strtoul(at + strlen("ACCEPT 127.0.0.1:"), NULL, 10);
        sleep_ms(10);
    }
    fail_msg("s_server for %s did not start: %s", name, buf);
    return 0;
}

static bool can_connect(unsigned port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                              .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

/* tinyproxy in the foreground with its own configuration, never the system service. */
static unsigned start_tinyproxy(unsigned allowed_port)
{
    char conf[128], log[128];
    char *argv[] = { "tinyproxy", "-d", "-c", conf, NULL };
    unsigned port;
    FILE *f;
    int fd;

    for (int attempt = 0; attempt < 5; attempt++) {
        /* tinyproxy refuses port 0: take a free one and hand it over. */
        fd = loopback_socket(&port);
        close(fd);
        snprintf(conf, sizeof(conf), "%s/tinyproxy.conf", srv.dir);
        snprintf(log, sizeof(log), "%s/tinyproxy.log", srv.dir);
        f = fopen(conf, "we");
        assert_non_null(f);
        fprintf(f,
                "Port %u\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nAllow 127.0.0.1\n"
                "ConnectPort %u\nLogLevel Info\n",
                port, allowed_port);
        fclose(f);
        spawn(argv, log);
        for (int i = 0; i < 300; i++) {
            if (can_connect(port))
                return port;
            sleep_ms(10);
        }
    }
    fail_msg("tinyproxy did not start (see %s)", log);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    /* The tests set the proxy environment themselves. */
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    snprintf(srv.dir, sizeof(srv.dir), "/tmp/kigen-test-probe-XXXXXX");
    if (!mkdtemp(srv.dir))
        return -1;
    srv.good = start_s_server("good", NULL);
    srv.expired = start_s_server("expired", NULL);
    srv.wronghost = start_s_server("wronghost", NULL);
    srv.unknown = start_s_server("unknown", NULL);
    srv.chain = start_s_server("chain", "chain-inter");
    srv.chain_extra = start_s_server("chain", "chain-extra");
    srv.proxy = start_tinyproxy(srv.good);
    srv.closed_fd = loopback_socket(&srv.closed);
    srv.silent_fd = loopback_socket(&srv.silent);
    assert_int_equal(listen(srv.silent_fd, 64), 0);
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    for (size_t i = 0; i < srv.n_pids; i++) {
        kill(srv.pids[i], SIGTERM);
        waitpid(srv.pids[i], NULL, 0);
    }
    if (srv.closed_fd >= 0)
        close(srv.closed_fd);
    if (srv.silent_fd >= 0)
        close(srv.silent_fd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", srv.dir);
    if (srv.dir[0] && system(cmd) != 0)
        return -1;
    return 0;
}

/* ---- running probers ---- */

static struct kigen_config *parse_config(const char *text)
{
    struct kigen_config *config = NULL;
    char err[256] = "";

    if (kigen_config_parse("kigen.yaml", text, strlen(text), &config, err, sizeof(err)) != 0)
        fail_msg("config: %s\n%s", err, text);
    return config;
}

static struct kigen_prober *new_prober(uv_loop_t *loop, const char *text)
{
    struct kigen_config *config = parse_config(text);
    struct kigen_prober *pr = NULL;

    assert_int_equal(kigen_prober_new(loop, config, &pr), 0);
    /* The prober keeps copies. */
    kigen_config_free(config);
    return pr;
}

static void flag_cb(struct kigen_prober *pr, void *data)
{
    (*(int *)data)++;
}

static void run_once(uv_loop_t *loop, struct kigen_prober *pr)
{
    int done = 0;

    assert_int_equal(kigen_prober_run_once(pr, flag_cb, &done), 0);
    /* done_cb never runs from inside run_once. */
    assert_int_equal(done, 0);
    while (!done)
        uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(done, 1);
}

/* Closes and frees pr, then checks that nothing was left on the loop. */
static void dispose(uv_loop_t *loop, struct kigen_prober *pr)
{
    int closed = 0;

    kigen_prober_close(pr, flag_cb, &closed);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    kigen_prober_free(pr);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* Probes the targets of a YAML `targets:` list once and returns the prober to inspect. */
static struct kigen_prober *probe_targets(uv_loop_t *loop, const char *proxy, const char *targets)
{
    char text[8192];
    struct kigen_prober *pr;

    snprintf(text, sizeof(text), "probes:\n  timeout: 10s\n  proxy: \"%s\"\n  targets:\n%s",
             proxy ? proxy : "", targets);
    assert_int_equal(uv_loop_init(loop), 0);
    pr = new_prober(loop, text);
    run_once(loop, pr);
    return pr;
}

static const struct kigen_probe_status *status_at(struct kigen_prober *pr, size_t i)
{
    size_t n;
    const struct kigen_probe_status *st = kigen_prober_status(pr, &n);

    assert_true(i < n);
    return &st[i];
}

static void assert_failure(const struct kigen_probe_status *st, const char *kind,
                           const char *detail_part)
{
    if (strcmp(st->error, kind) != 0 || !strstr(st->detail, detail_part))
        fail_msg("%s: want %s (%s), got %s (%s)", st->name, kind, detail_part, st->error,
                 st->detail);
    /* --once: one failure is final. */
    assert_int_equal(st->state, KIGEN_PROBE_DOWN);
    assert_int_equal(st->consecutive_failures, 1);
    assert_true(st->changed);
    assert_true(st->last_probe > 0);
}

static void assert_up(const struct kigen_probe_status *st)
{
    if (st->state != KIGEN_PROBE_UP)
        fail_msg("%s: not up: %s (%s)", st->name, st->error, st->detail);
    assert_string_equal(st->error, "");
    assert_string_equal(st->detail, "");
    assert_int_equal(st->consecutive_failures, 0);
    /* Up from unknown is no recovery: there was no probe.down. */
    assert_false(st->changed);
    assert_true(st->connect_ms >= 0);
    assert_true(st->duration_ms >= st->connect_ms);
}

static char *target_line(char *buf, size_t len, const char *name, const char *host, unsigned port,
                         bool tls, const char *ca)
{
    int n = snprintf(buf, len, "    - { name: %s, host: \"%s\", port: %u, tls: %s%s%s%s }\n", name,
                     host, port, tls ? "true" : "false", ca ? ", ca_file: \"" : "", ca ? ca : "",
                     ca ? "\"" : "");

    assert_true(n > 0 && (size_t)n < len); /* a cut line would be another target */
    return buf;
}

static char ca_path[4096];

static const char *test_ca(void)
{
    snprintf(ca_path, sizeof(ca_path), "%s", fixture_path("probe/ca.pem"));
    return ca_path;
}

/* ---- TLS verdicts ---- */

static void test_probe_good_chain_is_up_with_its_certificate(void **state)
{
    uv_loop_t loop;
    char t[3][512], targets[2048], hex[65];
    char *want_sha = fixture_text("probe/good.sha256");
    char *want_end = fixture_text("probe/good.not_after");
    char *ca_sha = fixture_text("probe/ca.sha256");
    struct kigen_prober *pr;

    (void)state;
    snprintf(targets, sizeof(targets), "%s%s%s",
             target_line(t[0], 512, "by-name", "localhost", srv.good, true, test_ca()),
             target_line(t[1], 512, "by-ip", "127.0.0.1", srv.good, true, test_ca()),
             target_line(t[2], 512, "plain", "localhost", srv.good, false, NULL));
    pr = probe_targets(&loop, NULL, targets);
    for (size_t i = 0; i < 3; i++) {
        const struct kigen_probe_status *st = status_at(pr, i);

        assert_up(st);
        assert_int_equal(st->port, srv.good);
        if (!st->tls) {
            /* No handshake, no certificate. */
            assert_int_equal(st->server.n, 0);
            assert_int_equal(st->tls_not_after, 0);
            continue;
        }
        /* The server sends its leaf alone; the CA of ca_file is the trust anchor. */
        assert_int_equal(st->server.n, 2);
        assert_string_equal(st->server.v[0].entry, "0");
        kigen_cert_sha256_hex(&st->server.v[0], hex);
        assert_string_equal(hex, want_sha);
        assert_int_equal(st->tls_not_after, strtoll(want_end, NULL, 10));
        assert_int_equal(st->server.v[0].not_after, st->tls_not_after);
        assert_non_null(strstr(st->server.v[0].issuer, "CN=Kigen Probe Test CA"));
        assert_string_equal(st->server.v[1].entry, "1");
        kigen_cert_sha256_hex(&st->server.v[1], hex);
        assert_string_equal(hex, ca_sha);
        /* The CA ends in 2040, after the leaf: the leaf ends the chain. */
        assert_int_equal(st->tls_chain_not_after, st->tls_not_after);
    }
    assert_string_equal(status_at(pr, 0)->name, "by-name");
    assert_string_equal(status_at(pr, 0)->host, "localhost");
    dispose(&loop, pr);
    free(want_sha);
    free(want_end);
    free(ca_sha);
}

/* Whether st's chain is exactly the certificates PROBE/<names[i]>.pem, as entries "0", "1", ... */
static void assert_chain(const struct kigen_probe_status *st, const char *const *names, size_t n)
{
    char hex[65], file[64], entry[21];

    if (st->server.n != n)
        fail_msg("%s: %zu certificates in the chain, want %zu", st->name, st->server.n, n);
    for (size_t i = 0; i < n; i++) {
        char *want;

        snprintf(file, sizeof(file), "probe/%s.sha256", names[i]);
        want = fixture_text(file);
        kigen_cert_sha256_hex(&st->server.v[i], hex);
        if (strcmp(hex, want) != 0)
            fail_msg("%s: entry %zu is %s, want %s (%s)", st->name, i, st->server.v[i].subject,
                     names[i], want);
        snprintf(entry, sizeof(entry), "%zu", i);
        assert_string_equal(st->server.v[i].entry, entry);
        free(want);
    }
}

static int64_t fixture_time(const char *name)
{
    char file[64], *text;
    int64_t t;

    snprintf(file, sizeof(file), "probe/%s.not_after", name);
    text = fixture_text(file);
    t = strtoll(text, NULL, 10);
    free(text);
    return t;
}

static void test_probe_chain_of_three_is_recorded_to_its_trust_anchor(void **state)
{
    static const char *const three[] = { "chain", "chain-inter", "chain-root" };
    static const char *const partial[] = { "chain", "chain-inter" };
    static const char *const extra[] = { "chain", "chain-inter", "chain-root", "ca" };
    uv_loop_t loop;
    char t[3][512], targets[2048], root[4096], inter[4096];
    struct kigen_prober *pr;

    (void)state;
    probe_file(root, sizeof(root), "chain-root", ".pem");
    probe_file(inter, sizeof(inter), "chain-inter", ".pem");
    snprintf(targets, sizeof(targets), "%s%s%s",
             target_line(t[0], 512, "root", "localhost", srv.chain, true, root),
             target_line(t[1], 512, "partial", "localhost", srv.chain, true, inter),
             target_line(t[2], 512, "extra", "localhost", srv.chain_extra, true, root));
    pr = probe_targets(&loop, NULL, targets);
    for (size_t i = 0; i < 3; i++) {
        assert_up(status_at(pr, i));
        assert_int_equal(status_at(pr, i)->tls_not_after, fixture_time("chain"));
        /* The intermediate ends first (2027-06-01), before the leaf (2028) and the root. */
        assert_true(fixture_time("chain-inter") < fixture_time("chain"));
        assert_int_equal(status_at(pr, i)->tls_chain_not_after, fixture_time("chain-inter"));
    }
    /* Leaf, the intermediate it sent and the root of ca_file that verified them. */
    assert_chain(status_at(pr, 0), three, 3);
    /* ca_file names the intermediate: it is the trust anchor, recorded once. */
    assert_chain(status_at(pr, 1), partial, 2);
    /* A certificate the server sends that the chain does not need still counts, last. */
    assert_chain(status_at(pr, 2), extra, 4);
    dispose(&loop, pr);
}

static void test_probe_chain_that_fails_verification_records_what_was_sent(void **state)
{
    static const char *const sent[] = { "chain", "chain-inter" };
    static const char *const sent_extra[] = { "chain", "chain-inter", "ca" };
    uv_loop_t loop;
    char t[3][512], targets[2048];
    struct kigen_prober *pr;

    (void)state;
    /* Another CA, the system store (which knows neither), and the extra chain unverified. */
    snprintf(targets, sizeof(targets), "%s%s%s",
             target_line(t[0], 512, "wrong-ca", "localhost", srv.chain, true, test_ca()),
             target_line(t[1], 512, "system", "localhost", srv.chain, true, NULL),
             target_line(t[2], 512, "extra", "localhost", srv.chain_extra, true, NULL));
    pr = probe_targets(&loop, NULL, targets);
    for (size_t i = 0; i < 3; i++) {
        assert_failure(status_at(pr, i), "tls_verify", "unable to get local issuer certificate");
        assert_int_equal(status_at(pr, i)->tls_not_after, fixture_time("chain"));
        assert_int_equal(status_at(pr, i)->tls_chain_not_after, fixture_time("chain-inter"));
    }
    /* What the server sent, as sent; no trust anchor verified it. */
    assert_chain(status_at(pr, 0), sent, 2);
    assert_chain(status_at(pr, 1), sent, 2);
    assert_chain(status_at(pr, 2), sent_extra, 3);
    dispose(&loop, pr);
}

static void test_probe_expired_certificate_is_tls_verify_and_still_recorded(void **state)
{
    uv_loop_t loop;
    char t[512];
    struct kigen_prober *pr;
    const struct kigen_probe_status *st;

    (void)state;
    pr = probe_targets(
        &loop, NULL,
        target_line(t, sizeof(t), "expired", "localhost", srv.expired, true, test_ca()));
    st = status_at(pr, 0);
    assert_failure(st, "tls_verify", "certificate has expired");
    assert_string_equal(st->detail, "certificate has expired");
    /* The handshake completed: the expired certificate reaches the inventory. */
    assert_int_equal(st->server.n, 1);
    assert_int_equal(st->tls_not_after, 1609459200); /* 2021-01-01T00:00:00Z */
    assert_true(st->connect_ms >= 0);
    dispose(&loop, pr);
}

static void test_probe_wrong_host_name_is_tls_hostname(void **state)
{
    uv_loop_t loop;
    char t[2][512], targets[2048];
    struct kigen_prober *pr;

    (void)state;
    snprintf(targets, sizeof(targets), "%s%s",
             target_line(t[0], 512, "wrong", "localhost", srv.wronghost, true, test_ca()),
             target_line(t[1], 512, "wrong-ip", "127.0.0.1", srv.wronghost, true, test_ca()));
    pr = probe_targets(&loop, NULL, targets);
    assert_failure(status_at(pr, 0), "tls_hostname", "hostname mismatch");
    assert_non_null(strstr(status_at(pr, 0)->detail, "'localhost'"));
    assert_failure(status_at(pr, 1), "tls_hostname", "IP address mismatch");
    assert_int_equal(status_at(pr, 0)->server.n, 1);
    dispose(&loop, pr);
}

static void test_probe_unknown_ca_is_tls_verify(void **state)
{
    uv_loop_t loop;
    char t[2][512], targets[2048];
    struct kigen_prober *pr;

    (void)state;
    /* Against the test CA, and against the system store, which knows neither CA. */
    snprintf(targets, sizeof(targets), "%s%s",
             target_line(t[0], 512, "unknown", "localhost", srv.unknown, true, test_ca()),
             target_line(t[1], 512, "system", "localhost", srv.good, true, NULL));
    pr = probe_targets(&loop, NULL, targets);
    assert_failure(status_at(pr, 0), "tls_verify", "unable to get local issuer certificate");
    assert_failure(status_at(pr, 1), "tls_verify", "unable to get local issuer certificate");
    dispose(&loop, pr);
}

static void test_probe_missing_ca_file_is_tls_verify_naming_it(void **state)
{
    uv_loop_t loop;
    char t[512];
    struct kigen_prober *pr;

    (void)state;
    pr = probe_targets(
        &loop, NULL,
        target_line(t, sizeof(t), "noca", "localhost", srv.good, true, "/nonexistent/ca.pem"));
    assert_failure(status_at(pr, 0), "tls_verify",
                   "cannot load ca_file '/nonexistent/ca.pem': No such file or directory");
    /* TCP worked: the connection time is known. */
    assert_true(status_at(pr, 0)->connect_ms >= 0);
    dispose(&loop, pr);
}

/* ---- TCP and DNS ---- */

static void test_probe_closed_port_is_connect_refused(void **state)
{
    uv_loop_t loop;
    char t[2][512], targets[2048];
    struct kigen_prober *pr;

    (void)state;
    snprintf(targets, sizeof(targets), "%s%s",
             target_line(t[0], 512, "closed", "127.0.0.1", srv.closed, true, test_ca()),
             target_line(t[1], 512, "closed-plain", "localhost", srv.closed, false, NULL));
    pr = probe_targets(&loop, NULL, targets);
    for (size_t i = 0; i < 2; i++) {
        assert_failure(status_at(pr, i), "connect_refused", "connection refused");
        assert_non_null(strstr(status_at(pr, i)->detail, "127.0.0.1 port"));
        assert_true(status_at(pr, i)->connect_ms < 0);
    }
    dispose(&loop, pr);
}

static void test_probe_silent_listener_times_out_in_tls(void **state)
{
    uv_loop_t loop;
    char t[2][512], targets[2048], text[4096];
    struct kigen_prober *pr;
    const struct kigen_probe_status *st;

    (void)state;
    snprintf(targets, sizeof(targets), "%s%s",
             target_line(t[0], 512, "silent", "127.0.0.1", srv.silent, true, test_ca()),
             target_line(t[1], 512, "silent-plain", "127.0.0.1", srv.silent, false, NULL));
    snprintf(text, sizeof(text), "probes:\n  targets:\n%s", targets);
    assert_int_equal(uv_loop_init(&loop), 0);
    pr = new_prober(&loop, text);
    assert_int_equal(kigen_prober_set_timeout_ms(pr, 0, 300), 0);
    assert_int_equal(kigen_prober_set_timeout_ms(pr, 2, 300), -EINVAL);
    assert_int_equal(kigen_prober_set_timeout_ms(pr, 0, 0), -EINVAL);
    run_once(&loop, pr);
    st = status_at(pr, 0);
    assert_failure(st, "timeout", "TLS handshake");
    assert_string_equal(st->detail, "the TLS handshake did not finish within 300 ms");
    assert_true(st->duration_ms >= 290 && st->duration_ms < 3000);
    assert_true(st->connect_ms >= 0);
    /* Without TLS, a listener that accepts is up. */
    assert_up(status_at(pr, 1));
    dispose(&loop, pr);
}

static void test_probe_ipv6_loopback_is_dialled_without_lookup(void **state)
{
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    uv_loop_t loop;
    char t[2][512], targets[2048];
    struct kigen_prober *pr;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    assert_int_equal(listen(fd, 8), 0);
    snprintf(targets, sizeof(targets), "%s%s",
             target_line(t[0], 512, "v6", "::1", ntohs(sa.sin6_port), false, NULL),
             target_line(t[1], 512, "v6-tls", "::1", srv.good, true, test_ca()));
    pr = probe_targets(&loop, NULL, targets);
    assert_up(status_at(pr, 0));
    /* s_server listens on 127.0.0.1 only. */
    assert_failure(status_at(pr, 1), "connect_refused", "::1 port");
    dispose(&loop, pr);
    close(fd);
}

static void test_probe_unresolvable_name_is_dns(void **state)
{
    uv_loop_t loop;
    char t[512];
    struct kigen_prober *pr;

    (void)state;
    pr = probe_targets(&loop, NULL,
                       target_line(t, sizeof(t), "nx", "nonexistent.invalid", 443, true, NULL));
    assert_failure(status_at(pr, 0), "dns", "nonexistent.invalid: ");
    assert_true(status_at(pr, 0)->connect_ms < 0);
    dispose(&loop, pr);
}

/* ---- the HTTP proxy ---- */

/* Whether tinyproxy logged a CONNECT to localhost:port. */
static bool proxy_saw(unsigned port)
{
    char path[128], want[64], line[1024];
    bool seen = false;
    FILE *f;

    snprintf(path, sizeof(path), "%s/tinyproxy.log", srv.dir);
    snprintf(want, sizeof(want), "CONNECT localhost:%u HTTP/1.1", port);
    f = fopen(path, "re");
    assert_non_null(f);
    while (!seen && fgets(line, sizeof(line), f))
        seen = strstr(line, want) != NULL;
    fclose(f);
    return seen;
}

static void test_probe_through_proxy_opens_a_tunnel(void **state)
{
    uv_loop_t loop;
    char t[2][512], targets[2048], proxy[64], hex[65];
    char *want_sha = fixture_text("probe/good.sha256");
    struct kigen_prober *pr;

    (void)state;
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u", srv.proxy);
    snprintf(targets, sizeof(targets), "%s%s",
             target_line(t[0], 512, "tunnel", "localhost", srv.good, true, test_ca()),
             target_line(t[1], 512, "tunnel-plain", "localhost", srv.good, false, NULL));
    pr = probe_targets(&loop, proxy, targets);
    assert_up(status_at(pr, 0));
    assert_up(status_at(pr, 1));
    assert_true(proxy_saw(srv.good));
    assert_int_equal(status_at(pr, 0)->server.n, 2); /* the leaf and the CA of ca_file */
    kigen_cert_sha256_hex(&status_at(pr, 0)->server.v[0], hex);
    assert_string_equal(hex, want_sha);
    dispose(&loop, pr);
    free(want_sha);
}

static void test_probe_proxy_refusal_names_its_status_line(void **state)
{
    uv_loop_t loop;
    char t[2][512], targets[2048], proxy[64], unused[64];
    struct kigen_prober *pr;

    (void)state;
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u", srv.proxy);
    /* tinyproxy allows CONNECT to the good server's port only. */
    snprintf(targets, sizeof(targets), "%s",
             target_line(t[0], 512, "denied", "localhost", srv.wronghost, true, test_ca()));
    pr = probe_targets(&loop, proxy, targets);
    assert_failure(status_at(pr, 0), "proxy", "403");
    assert_non_null(strstr(status_at(pr, 0)->detail, "HTTP/1."));
    dispose(&loop, pr);

    /* A proxy that is not there. */
    snprintf(unused, sizeof(unused), "http://127.0.0.1:%u", srv.closed);
    pr = probe_targets(&loop, unused,
                       target_line(t[1], 512, "noproxy", "localhost", srv.good, true, test_ca()));
    assert_failure(status_at(pr, 0), "proxy", "proxy 127.0.0.1 port");
    assert_non_null(strstr(status_at(pr, 0)->detail, "connection refused"));
    dispose(&loop, pr);
}

static void test_probe_proxy_env_reads_https_proxy_and_no_proxy(void **state)
{
    uv_loop_t loop;
    char t[2][512], targets[2048], proxy[64];
    struct kigen_prober *pr;

    (void)state;
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u/", srv.proxy);
    snprintf(targets, sizeof(targets), "%s%s",
             target_line(t[0], 512, "good", "localhost", srv.good, true, test_ca()),
             target_line(t[1], 512, "denied", "localhost", srv.wronghost, true, test_ca()));

    /* No variable: direct, so the wrong host name is seen. */
    pr = probe_targets(&loop, "env", targets);
    assert_up(status_at(pr, 0));
    assert_failure(status_at(pr, 1), "tls_hostname", "hostname mismatch");
    dispose(&loop, pr);

    /* Through the proxy: its refusal shows the tunnel was asked for. */
    setenv("HTTPS_PROXY", proxy, 1);
    pr = probe_targets(&loop, "env", targets);
    assert_up(status_at(pr, 0));
    assert_failure(status_at(pr, 1), "proxy", "403");
    dispose(&loop, pr);

    /* no_proxy exempts the second target's host and port only. */
    setenv("https_proxy", proxy, 1);
    unsetenv("HTTPS_PROXY");
    snprintf(proxy, sizeof(proxy), "example.invalid, .localhost:%u", srv.wronghost);
    setenv("no_proxy", proxy, 1);
    pr = probe_targets(&loop, "env", targets);
    assert_up(status_at(pr, 0));
    assert_failure(status_at(pr, 1), "tls_hostname", "hostname mismatch");
    dispose(&loop, pr);

    /* Credentials are refused, and never repeated. */
    setenv("https_proxy", "http://user:s3cret@127.0.0.1:1", 1);
    unsetenv("no_proxy");
    pr = probe_targets(&loop, "env", t[0]);
    assert_failure(status_at(pr, 0), "proxy", "https_proxy holds credentials");
    assert_null(strstr(status_at(pr, 0)->detail, "s3cret"));
    dispose(&loop, pr);

    setenv("https_proxy", "https://127.0.0.1:1", 1);
    pr = probe_targets(&loop, "env", t[0]);
    assert_failure(status_at(pr, 0), "proxy", "only http:// proxies");
    dispose(&loop, pr);
    unsetenv("https_proxy");
}

/*
 * A server on the test's own loop that says one fixed thing to whoever connects and then
 * keeps the connection open without reading: a fake proxy or a server that speaks no TLS.
 */
struct scripted {
    uv_tcp_t server;
    const char *say;
    size_t say_len;
    uv_tcp_t *conns[16];
    size_t n_conns;
    uv_write_t writes[16];
};

static void scripted_accept_cb(uv_stream_t *server, int status)
{
    struct scripted *sc = server->data;
    uv_tcp_t *c = malloc(sizeof(*c));
    uv_buf_t buf = uv_buf_init((char *)sc->say, (unsigned)sc->say_len);

    assert_int_equal(status, 0);
    assert_non_null(c);
    assert_true(sc->n_conns < 16);
    assert_int_equal(uv_tcp_init(server->loop, c), 0);
    assert_int_equal(uv_accept(server, (uv_stream_t *)c), 0);
    assert_int_equal(uv_write(&sc->writes[sc->n_conns], (uv_stream_t *)c, &buf, 1, NULL), 0);
    sc->conns[sc->n_conns++] = c;
}

static unsigned scripted_start(uv_loop_t *loop, struct scripted *sc, const char *say, size_t len)
{
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int blen = sizeof(bound);

    memset(sc, 0, sizeof(*sc));
    sc->say = say;
    sc->say_len = len;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    assert_int_equal(uv_tcp_init(loop, &sc->server), 0);
    sc->server.data = sc;
    assert_int_equal(uv_tcp_bind(&sc->server, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&sc->server, 16, scripted_accept_cb), 0);
    assert_int_equal(uv_tcp_getsockname(&sc->server, (struct sockaddr *)&bound, &blen), 0);
    return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void free_handle_cb(uv_handle_t *handle)
{
    free(handle);
}

static void scripted_stop(struct scripted *sc)
{
    for (size_t i = 0; i < sc->n_conns; i++)
        uv_close((uv_handle_t *)sc->conns[i], free_handle_cb);
    uv_close((uv_handle_t *)&sc->server, NULL);
}

/* Probes one target (a YAML line) on loop, whose servers run on the same loop. */
static struct kigen_prober *probe_on(uv_loop_t *loop, const char *proxy, const char *target)
{
    char text[4096];
    struct kigen_prober *pr;

    snprintf(text, sizeof(text), "probes:\n  proxy: \"%s\"\n  targets:\n%s", proxy ? proxy : "",
             target);
    pr = new_prober(loop, text);
    run_once(loop, pr);
    return pr;
}

static void test_probe_server_without_tls_is_tls_handshake(void **state)
{
    static const char banner[] = "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n";
    uv_loop_t loop;
    struct scripted sc;
    struct kigen_prober *pr;
    char t[512];
    unsigned port;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    port = scripted_start(&loop, &sc, banner, strlen(banner));
    pr = probe_on(&loop, NULL, target_line(t, sizeof(t), "ssh", "127.0.0.1", port, true, NULL));
    assert_failure(status_at(pr, 0), "tls_handshake", "wrong version number");
    scripted_stop(&sc);
    dispose(&loop, pr);
}

static void test_probe_proxy_answers_are_bounded_and_checked(void **state)
{
    static char flood[KIGEN_PROBE_MAX_PROXY_ANSWER + 100];
    static const char not_http[] = "SSH-2.0-OpenSSH_9.2p1\r\n\r\n";
    static const char ok_then_silence[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    uv_loop_t loop;
    struct scripted sc;
    struct kigen_prober *pr;
    char t[512], proxy[64];

    (void)state;
    /* A header that never ends is cut at the bound. */
    memset(flood, 'x', sizeof(flood));
    memcpy(flood, "HTTP/1.1 200 OK\r\nX-Pad: ", 25);
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u",
             scripted_start(&loop, &sc, flood, sizeof(flood)));
    target_line(t, sizeof(t), "via", "localhost", srv.good, true, test_ca());
    pr = probe_on(&loop, proxy, t);
    assert_failure(status_at(pr, 0), "proxy", "longer than 8192 bytes");
    scripted_stop(&sc);
    dispose(&loop, pr);

    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u",
             scripted_start(&loop, &sc, not_http, strlen(not_http)));
    pr = probe_on(&loop, proxy, t);
    assert_failure(status_at(pr, 0), "proxy", "not an HTTP answer to CONNECT: SSH-2.0");
    scripted_stop(&sc);
    dispose(&loop, pr);

    /* A tunnel that opens but carries no TLS answer: the handshake times out. */
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u",
             scripted_start(&loop, &sc, ok_then_silence, strlen(ok_then_silence)));
    {
        char text[4096];

        snprintf(text, sizeof(text), "probes:\n  proxy: \"%s\"\n  targets:\n%s", proxy, t);
        pr = new_prober(&loop, text);
    }
    assert_int_equal(kigen_prober_set_timeout_ms(pr, 0, 200), 0);
    run_once(&loop, pr);
    assert_failure(status_at(pr, 0), "timeout", "TLS handshake");
    assert_true(status_at(pr, 0)->connect_ms >= 0);
    scripted_stop(&sc);
    dispose(&loop, pr);
}

/* ---- the state machine ---- */

static int64_t at(const char *s)
{
    int64_t t;

    assert_int_equal(kigen_time_parse(s, &t), 0);
    return t;
}

static struct kigen_maint_set *naccs_window(void)
{
    struct kigen_config *config = parse_config("timezone: Asia/Tokyo\n");
    struct kigen_maint_set *set = NULL;
    char err[256] = "";

    /* No maintenance section: the NACCS default, third Tuesday 22:00 JST for 10 h. */
    if (kigen_maint_set_new(config, &set, err, sizeof(err)) != 0)
        fail_msg("maintenance: %s", err);
    kigen_config_free(config);
    return set;
}

static void test_probe_state_down_after_threshold_and_up_after_one_success(void **state)
{
    struct kigen_probe_status st = { .name = "webnaccs", .state = KIGEN_PROBE_UNKNOWN };
    struct kigen_maint_set *maint = naccs_window();
    int64_t now = at("2026-12-01T00:00:00Z");
    unsigned changes = 0;

    (void)state;
    /* Unknown stays unknown until the failures are confirmed. */
    for (int i = 0; i < 2; i++) {
        kigen_probe_state_next(&st, false, maint, now += 300, 3);
        assert_int_equal(st.state, KIGEN_PROBE_UNKNOWN);
        assert_false(st.changed);
    }
    for (int i = 0; i < 4; i++) {
        kigen_probe_state_next(&st, false, maint, now += 300, 3);
        assert_int_equal(st.state, KIGEN_PROBE_DOWN);
        changes += st.changed;
    }
    assert_int_equal(changes, 1); /* one probe.down */
    assert_int_equal(st.consecutive_failures, 6);
    kigen_probe_state_next(&st, true, maint, now += 300, 3);
    assert_int_equal(st.state, KIGEN_PROBE_UP);
    assert_true(st.changed); /* probe.up */
    assert_int_equal(st.consecutive_failures, 0);
    kigen_probe_state_next(&st, true, maint, now += 300, 3);
    assert_false(st.changed);
    /* Up stays up through failures below the threshold. */
    kigen_probe_state_next(&st, false, maint, now += 300, 3);
    kigen_probe_state_next(&st, false, maint, now += 300, 3);
    assert_int_equal(st.state, KIGEN_PROBE_UP);
    assert_false(st.changed);
    kigen_probe_state_next(&st, false, maint, now += 300, 3);
    assert_int_equal(st.state, KIGEN_PROBE_DOWN);
    assert_true(st.changed);
    assert_string_equal(kigen_probe_state_name(KIGEN_PROBE_DOWN), "down");
    assert_string_equal(kigen_probe_state_name(KIGEN_PROBE_UP), "up");
    assert_string_equal(kigen_probe_state_name(KIGEN_PROBE_MAINTENANCE), "maintenance");
    assert_string_equal(kigen_probe_state_name(KIGEN_PROBE_UNKNOWN), "unknown");
    kigen_maint_set_free(maint);
}

static void test_probe_state_failures_in_maintenance_raise_nothing(void **state)
{
    struct kigen_probe_status st = { .name = "naccs-cert", .state = KIGEN_PROBE_UP };
    struct kigen_maint_set *maint = naccs_window();
    /* December 2026: the third Tuesday is the 15th; 22:00 JST is 13:00 UTC, until 23:00. */
    int64_t start = at("2026-12-15T13:00:00Z"), end = at("2026-12-15T23:00:00Z"), now;

    (void)state;
    for (now = start; now < end; now += 1800) {
        kigen_probe_state_next(&st, false, maint, now, 3);
        assert_int_equal(st.state, KIGEN_PROBE_MAINTENANCE);
        assert_false(st.changed);
    }
    assert_int_equal(st.consecutive_failures, 20);
    /* Still failing once the window closed: now it is down, once. */
    kigen_probe_state_next(&st, false, maint, end, 3);
    assert_int_equal(st.state, KIGEN_PROBE_DOWN);
    assert_true(st.changed);
    /* Down, then a window, then recovery: the probe.up answers the probe.down. */
    kigen_probe_state_next(&st, false, maint, at("2027-01-19T13:30:00Z"), 3);
    assert_int_equal(st.state, KIGEN_PROBE_MAINTENANCE);
    assert_false(st.changed);
    kigen_probe_state_next(&st, true, maint, at("2027-01-19T14:00:00Z"), 3);
    assert_int_equal(st.state, KIGEN_PROBE_UP);
    assert_true(st.changed);
    /* The window names naccs-cert only. */
    st.name = "webnaccs";
    for (int i = 0; i < 3; i++)
        kigen_probe_state_next(&st, false, maint, start + 60 * i, 3);
    assert_int_equal(st.state, KIGEN_PROBE_DOWN);
    assert_true(st.changed);
    kigen_maint_set_free(maint);
}

static int64_t fixed_clock(void *data)
{
    return *(int64_t *)data;
}

static void test_probe_prober_uses_its_clock_and_maintenance(void **state)
{
    uv_loop_t loop;
    char t[2][512], text[4096];
    struct kigen_maint_set *maint = naccs_window();
    int64_t now = at("2026-12-15T14:00:00Z"); /* inside the December window */
    struct kigen_prober *pr;

    (void)state;
    snprintf(text, sizeof(text), "probes:\n  targets:\n%s%s",
             target_line(t[0], 512, "naccs-cert", "127.0.0.1", srv.closed, true, NULL),
             target_line(t[1], 512, "webnaccs", "127.0.0.1", srv.closed, true, NULL));
    assert_int_equal(uv_loop_init(&loop), 0);
    pr = new_prober(&loop, text);
    kigen_prober_set_clock(pr, fixed_clock, &now);
    kigen_prober_set_maintenance(pr, maint);
    run_once(&loop, pr);
    assert_int_equal(status_at(pr, 0)->state, KIGEN_PROBE_MAINTENANCE);
    assert_false(status_at(pr, 0)->changed);
    assert_string_equal(status_at(pr, 0)->error, "connect_refused");
    assert_int_equal(status_at(pr, 0)->last_probe, now);
    assert_int_equal(status_at(pr, 1)->state, KIGEN_PROBE_DOWN);
    assert_true(status_at(pr, 1)->changed);
    /* After the window, the same failure is down. */
    now = at("2026-12-16T00:00:00Z");
    run_once(&loop, pr);
    assert_int_equal(status_at(pr, 0)->state, KIGEN_PROBE_DOWN);
    assert_true(status_at(pr, 0)->changed);
    assert_int_equal(status_at(pr, 0)->consecutive_failures, 2);
    assert_false(status_at(pr, 1)->changed);
    dispose(&loop, pr);
    kigen_maint_set_free(maint);
}

static void test_probe_adopt_keeps_state_across_reload(void **state)
{
    uv_loop_t loop;
    char t[4][512], targets[2048], text[4096];
    struct kigen_prober *old, *pr;

    (void)state;
    snprintf(targets, sizeof(targets), "%s%s%s",
             target_line(t[0], 512, "down", "127.0.0.1", srv.closed, false, NULL),
             target_line(t[1], 512, "good", "localhost", srv.good, true, test_ca()),
             target_line(t[3], 512, "kept", "localhost", srv.good, true, test_ca()));
    old = probe_targets(&loop, NULL, targets);
    assert_int_equal(status_at(old, 0)->state, KIGEN_PROBE_DOWN);
    assert_int_equal(status_at(old, 1)->server.n, 2);

    /* The new configuration moves "good" elsewhere and keeps "down" and "kept" as they were. */
    snprintf(text, sizeof(text), "probes:\n  targets:\n%s%s%s%s",
             target_line(t[0], 512, "down", "127.0.0.1", srv.closed, false, NULL),
             target_line(t[1], 512, "good", "localhost", srv.expired, true, test_ca()),
             target_line(t[2], 512, "new", "localhost", srv.good, false, NULL),
             target_line(t[3], 512, "kept", "localhost", srv.good, true, test_ca()));
    pr = new_prober(&loop, text);
    kigen_prober_adopt(pr, old);
    assert_int_equal(status_at(pr, 0)->state, KIGEN_PROBE_DOWN);
    assert_true(status_at(pr, 0)->is_down_announced);
    assert_false(status_at(pr, 0)->changed);
    assert_int_equal(status_at(pr, 0)->consecutive_failures, 1);
    assert_string_equal(status_at(pr, 0)->error, "connect_refused");
    assert_int_equal(status_at(pr, 1)->state, KIGEN_PROBE_UNKNOWN);
    assert_int_equal(status_at(pr, 1)->server.n, 0);
    assert_int_equal(status_at(pr, 2)->state, KIGEN_PROBE_UNKNOWN);
    /* The chain moves with its dates. */
    assert_int_equal(status_at(pr, 3)->state, KIGEN_PROBE_UP);
    assert_int_equal(status_at(pr, 3)->server.n, 2);
    assert_int_equal(status_at(old, 2)->server.n, 0);
    assert_int_equal(status_at(pr, 3)->tls_not_after, status_at(old, 2)->tls_not_after);
    assert_true(status_at(pr, 3)->tls_chain_not_after > 0);
    assert_int_equal(status_at(pr, 3)->tls_chain_not_after, status_at(old, 2)->tls_chain_not_after);
    kigen_prober_free(pr); /* never ran: no close needed */
    dispose(&loop, old);
}

static void test_probe_restored_down_needs_no_second_announcement(void **state)
{
    uv_loop_t loop;
    char t[2][512], text[2048];
    struct kigen_prober *pr;

    (void)state;
    snprintf(text, sizeof(text), "probes:\n  failures_before_alert: 3\n  targets:\n%s%s",
             target_line(t[0], 512, "still-down", "127.0.0.1", srv.closed, false, NULL),
             target_line(t[1], 512, "back", "localhost", srv.good, false, NULL));
    assert_int_equal(uv_loop_init(&loop), 0);
    pr = new_prober(&loop, text);
    assert_int_equal(kigen_prober_restore_down(pr, 0), 0);
    assert_int_equal(kigen_prober_restore_down(pr, 1), 0);
    assert_int_equal(kigen_prober_restore_down(pr, 2), -EINVAL);
    assert_int_equal(status_at(pr, 0)->state, KIGEN_PROBE_DOWN);
    assert_true(status_at(pr, 0)->is_down_announced);
    run_once(&loop, pr);
    /* Still failing: down, and the probe.down of the earlier process stands. */
    assert_int_equal(status_at(pr, 0)->state, KIGEN_PROBE_DOWN);
    assert_false(status_at(pr, 0)->changed);
    /* Answering again: the probe.up that is owed. */
    assert_int_equal(status_at(pr, 1)->state, KIGEN_PROBE_UP);
    assert_true(status_at(pr, 1)->changed);
    assert_false(status_at(pr, 1)->is_down_announced);
    dispose(&loop, pr);
}

/* ---- the server certificates in the inventory ---- */

static void test_probe_server_certificate_joins_the_inventory_and_leaves_it(void **state)
{
    uv_loop_t loop;
    static const char *const three[] = { "chain", "chain-inter", "chain-root" };
    char t[4][512], targets[2048], path[64], hex[65], root[4096];
    char *want_sha = fixture_text("probe/good.sha256");
    struct kigen_inventory *inv;
    struct kigen_prober *pr;
    struct kigen_probe_status v6;
    struct kigen_file *f;
    const struct kigen_probe_status *st;
    size_t n;
    bool changed;

    (void)state;
    probe_file(root, sizeof(root), "chain-root", ".pem");
    snprintf(targets, sizeof(targets), "%s%s%s%s",
             target_line(t[0], 512, "good", "localhost", srv.good, true, test_ca()),
             target_line(t[1], 512, "plain", "localhost", srv.good, false, NULL),
             target_line(t[2], 512, "down", "127.0.0.1", srv.closed, true, NULL),
             target_line(t[3], 512, "chain", "localhost", srv.chain, true, root));
    pr = probe_targets(&loop, NULL, targets);
    st = kigen_prober_status(pr, &n);
    assert_int_equal(kigen_inventory_new(&inv), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kigen_probe_sync(inv, &st[i], &changed), 0);
        assert_true(changed == (i == 0 || i == 3)); /* only these have a certificate */
    }
    assert_int_equal(inv->n_files, 2);
    assert_int_equal(inv->n_certs, 2 + 3); /* good and its CA; chain, intermediate and root */
    /* The whole chain is one location, entries "0", "1", "2" (SPEC §8). */
    snprintf(path, sizeof(path), "localhost:%u", (unsigned)srv.chain);
    f = kigen_inventory_find(inv, "probe:chain", path);
    assert_non_null(f);
    {
        struct kigen_probe_status as_read = st[3];

        as_read.server = f->certs;
        assert_chain(&as_read, three, 3);
    }
    snprintf(path, sizeof(path), "localhost:%u", (unsigned)srv.good);
    f = kigen_inventory_find(inv, "probe:good", path);
    assert_non_null(f);
    assert_int_equal(f->format, KIGEN_FORMAT_DER);
    assert_int_equal(f->error, 0);
    kigen_cert_sha256_hex(&f->certs.v[0], hex);
    assert_string_equal(hex, want_sha);
    assert_string_equal(f->certs.v[0].entry, "0");
    assert_string_equal(f->certs.v[0].subject, st[0].server.v[0].subject);
    assert_ptr_not_equal(f->certs.v[0].subject, st[0].server.v[0].subject); /* a copy */

    /* The same certificate again: nothing changes, the record stays. */
    assert_int_equal(kigen_probe_sync(inv, &st[0], &changed), 0);
    assert_false(changed);
    assert_ptr_equal(kigen_inventory_find(inv, "probe:good", path), f);

    /* An IPv6 literal is bracketed in the path. */
    v6 = st[0];
    v6.name = "v6";
    v6.host = "::1";
    assert_int_equal(kigen_probe_sync(inv, &v6, &changed), 0);
    assert_true(changed);
    snprintf(path, sizeof(path), "[::1]:%u", (unsigned)srv.good);
    assert_non_null(kigen_inventory_find(inv, "probe:v6", path));

    /* A reload that keeps only "plain" and "down": every chain goes. */
    assert_int_equal(kigen_probe_prune(inv, &st[1], 2), 3);
    assert_int_equal(inv->n_files, 0);
    assert_int_equal(inv->n_certs, 0);
    /* Nothing else is touched by a prune. */
    f = kigen_file_new("naccs", "/srv/naccs/a.pem");
    assert_non_null(f);
    assert_int_equal(kigen_inventory_put(inv, f), 0);
    assert_int_equal(kigen_probe_prune(inv, NULL, 0), 0);
    assert_int_equal(inv->n_files, 1);
    assert_true(kigen_probe_is_keystore("probe:x"));
    assert_false(kigen_probe_is_keystore("naccs"));

    kigen_inventory_free(inv);
    dispose(&loop, pr);
    free(want_sha);
}

/* ---- scheduling ---- */

struct periodic {
    unsigned results[2];
    unsigned changes[2];
    uint64_t first_ns[2];
    uint64_t started_ns;
};

static void periodic_cb(struct kigen_prober *pr, size_t index, void *data)
{
    struct periodic *pd = data;

    assert_true(index < 2);
    if (pd->results[index]++ == 0)
        pd->first_ns[index] = uv_hrtime();
    pd->changes[index] += status_at(pr, index)->changed;
}

static void test_probe_periodic_schedule_runs_each_target_every_interval(void **state)
{
    uv_loop_t loop;
    char t[2][512], text[4096];
    struct periodic pd = { 0 };
    struct kigen_prober *pr;

    (void)state;
    snprintf(text, sizeof(text),
             "probes:\n  interval: 1s\n  failures_before_alert: 2\n"
             "  targets:\n%s%s",
             target_line(t[0], 512, "up", "127.0.0.1", srv.silent, false, NULL),
             target_line(t[1], 512, "down", "127.0.0.1", srv.closed, false, NULL));
    assert_int_equal(uv_loop_init(&loop), 0);
    pr = new_prober(&loop, text);
    pd.started_ns = uv_hrtime();
    assert_int_equal(kigen_prober_start(pr, periodic_cb, &pd), 0);
    assert_int_equal(kigen_prober_start(pr, periodic_cb, &pd), -EBUSY);
    assert_int_equal(kigen_prober_run_once(pr, flag_cb, NULL), -EBUSY);
    while (pd.results[0] < 3 || pd.results[1] < 3)
        uv_run(&loop, UV_RUN_ONCE);
    /* The first probes start within the jitter window, min(interval, 10 s) = 1 s. */
    for (int i = 0; i < 2; i++)
        assert_true(pd.first_ns[i] - pd.started_ns < UINT64_C(1200000000));
    /* Three rounds take about two intervals. */
    assert_true(uv_hrtime() - pd.started_ns < UINT64_C(4000000000));
    assert_int_equal(status_at(pr, 0)->state, KIGEN_PROBE_UP);
    assert_int_equal(pd.changes[0], 0);
    assert_int_equal(status_at(pr, 1)->state, KIGEN_PROBE_DOWN);
    assert_int_equal(pd.changes[1], 1);
    /* Closing while the schedule runs stops it; no callback follows. */
    dispose(&loop, pr);
}

static void close_soon_cb(uv_timer_t *timer)
{
    kigen_prober_close(timer->data, NULL, NULL);
    uv_close((uv_handle_t *)timer, NULL);
}

static void test_probe_close_abandons_probes_in_flight(void **state)
{
    uv_loop_t loop;
    uv_timer_t timer;
    char t[512], text[4096];
    struct kigen_prober *pr;
    int done = 0;

    (void)state;
    snprintf(text, sizeof(text), "probes:\n  targets:\n%s",
             target_line(t, sizeof(t), "silent", "127.0.0.1", srv.silent, true, NULL));
    assert_int_equal(uv_loop_init(&loop), 0);
    pr = new_prober(&loop, text);
    assert_int_equal(kigen_prober_run_once(pr, flag_cb, &done), 0);
    assert_int_equal(uv_timer_init(&loop, &timer), 0);
    timer.data = pr;
    assert_int_equal(uv_timer_start(&timer, close_soon_cb, 100, 0), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(done, 0);
    assert_int_equal(status_at(pr, 0)->state, KIGEN_PROBE_UNKNOWN);
    assert_int_equal(kigen_prober_run_once(pr, flag_cb, &done), -EBUSY);
    kigen_prober_free(pr);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_probe_empty_round_completes_asynchronously(void **state)
{
    uv_loop_t loop;
    struct kigen_prober *pr;
    size_t n = 99;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    pr = new_prober(&loop, "probes: { targets: [] }\n");
    (void)kigen_prober_status(pr, &n);
    assert_int_equal(n, 0);
    run_once(&loop, pr);
    dispose(&loop, pr);
}

/* ---- 1,000 targets in one round ---- */

#define MANY 1000

struct many {
    uv_tcp_t server;
    uv_timer_t watch;
    struct kigen_prober *pr;
    uint64_t last_ns, max_gap_ns;
    uint64_t gaps[4096];
    size_t n_gaps, max_up;
    unsigned accepted;
};

static void accepted_closed_cb(uv_handle_t *handle)
{
    free(handle);
}

static void accept_cb(uv_stream_t *server, int status)
{
    struct many *m = server->data;
    uv_tcp_t *c = malloc(sizeof(*c));

    assert_int_equal(status, 0);
    assert_non_null(c);
    assert_int_equal(uv_tcp_init(server->loop, c), 0);
    assert_int_equal(uv_accept(server, (uv_stream_t *)c), 0);
    m->accepted++;
    uv_close((uv_handle_t *)c, accepted_closed_cb);
}

/*
 * Runs every 5 ms as a status query would: a longer gap means a callback held the loop. The
 * statuses read meanwhile are whole, and only ever gain results.
 */
static void watch_cb(uv_timer_t *timer)
{
    struct many *m = timer->data;
    uint64_t now = uv_hrtime();
    const struct kigen_probe_status *st;
    size_t n, up = 0;

    if (now - m->last_ns > m->max_gap_ns)
        m->max_gap_ns = now - m->last_ns;
    if (m->n_gaps < sizeof(m->gaps) / sizeof(m->gaps[0]))
        m->gaps[m->n_gaps++] = now - m->last_ns;
    m->last_ns = now;
    st = kigen_prober_status(m->pr, &n);
    for (size_t i = 0; i < n; i++)
        up += st[i].state == KIGEN_PROBE_UP;
    assert_true(up >= m->max_up);
    m->max_up = up;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static void test_probe_thousand_targets_in_one_round_without_blocking(void **state)
{
    struct sockaddr_in sa;
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    struct many m = { 0 };
    uv_loop_t loop;
    struct kigen_prober *pr;
    const struct kigen_probe_status *st;
    size_t n, cap = 96 * MANY + 64, off;
    char *text = malloc(cap);
    struct rusage ru;
    uint64_t t0;
    unsigned port;

    (void)state;
    assert_non_null(text);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &sa), 0);
    assert_int_equal(uv_tcp_init(&loop, &m.server), 0);
    m.server.data = &m;
    assert_int_equal(uv_tcp_bind(&m.server, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&m.server, 1024, accept_cb), 0);
    assert_int_equal(uv_tcp_getsockname(&m.server, (struct sockaddr *)&bound, &len), 0);
    port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

    off = (size_t)snprintf(text, cap, "probes:\n  timeout: 10s\n  targets:\n");
    for (unsigned i = 0; i < MANY; i++)
        off += (size_t)snprintf(text + off, cap - off,
                                "    - { name: t%04u, host: %s, port: %u, tls: false }\n", i,
                                i % 2 ? "localhost" : "127.0.0.1", port);
    pr = new_prober(&loop, text);
    free(text);
    m.pr = pr;

    assert_int_equal(uv_timer_init(&loop, &m.watch), 0);
    m.watch.data = &m;
    t0 = m.last_ns = uv_hrtime();
    assert_int_equal(uv_timer_start(&m.watch, watch_cb, 5, 5), 0);
    run_once(&loop, pr);
    watch_cb(&m.watch);
    qsort(m.gaps, m.n_gaps, sizeof(m.gaps[0]), cmp_u64); /* n_gaps >= 1: never NULL, 0 */
    print_message(
        "      1,000 targets: %.0f ms; gaps between 5 ms ticks: p99 %.1f ms, max %.1f ms\n",
        (double)(uv_hrtime() - t0) / 1e6, (double)m.gaps[(m.n_gaps - 1) * 99 / 100] / 1e6,
        (double)m.max_gap_ns / 1e6);
    st = kigen_prober_status(pr, &n);
    assert_int_equal(n, MANY);
    for (size_t i = 0; i < n; i++) {
        if (st[i].state != KIGEN_PROBE_UP)
            fail_msg("%s: %s (%s)", st[i].name, st[i].error, st[i].detail);
    }
    /*
     * The loop kept turning during the round: its 5 ms timer ran again and again between the
     * probes (how long the gaps were is a figure for bench/probe_bench.py, not a test: a
     * loaded machine stretches them).
     */
    assert_true(m.n_gaps >= 2);
    uv_close((uv_handle_t *)&m.watch, NULL);
    uv_close((uv_handle_t *)&m.server, NULL);
    dispose(&loop, pr);
    assert_int_equal(m.accepted, MANY);
    getrusage(RUSAGE_SELF, &ru);
    print_message("      peak RSS of the test program: %ld KiB\n", ru.ru_maxrss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_good_chain_is_up_with_its_certificate),
        cmocka_unit_test(test_probe_chain_of_three_is_recorded_to_its_trust_anchor),
        cmocka_unit_test(test_probe_chain_that_fails_verification_records_what_was_sent),
        cmocka_unit_test(test_probe_expired_certificate_is_tls_verify_and_still_recorded),
        cmocka_unit_test(test_probe_wrong_host_name_is_tls_hostname),
        cmocka_unit_test(test_probe_unknown_ca_is_tls_verify),
        cmocka_unit_test(test_probe_missing_ca_file_is_tls_verify_naming_it),
        cmocka_unit_test(test_probe_closed_port_is_connect_refused),
        cmocka_unit_test(test_probe_silent_listener_times_out_in_tls),
        cmocka_unit_test(test_probe_ipv6_loopback_is_dialled_without_lookup),
        cmocka_unit_test(test_probe_unresolvable_name_is_dns),
        cmocka_unit_test(test_probe_through_proxy_opens_a_tunnel),
        cmocka_unit_test(test_probe_proxy_refusal_names_its_status_line),
        cmocka_unit_test(test_probe_proxy_env_reads_https_proxy_and_no_proxy),
        cmocka_unit_test(test_probe_server_without_tls_is_tls_handshake),
        cmocka_unit_test(test_probe_proxy_answers_are_bounded_and_checked),
        cmocka_unit_test(test_probe_state_down_after_threshold_and_up_after_one_success),
        cmocka_unit_test(test_probe_state_failures_in_maintenance_raise_nothing),
        cmocka_unit_test(test_probe_prober_uses_its_clock_and_maintenance),
        cmocka_unit_test(test_probe_adopt_keeps_state_across_reload),
        cmocka_unit_test(test_probe_restored_down_needs_no_second_announcement),
        cmocka_unit_test(test_probe_server_certificate_joins_the_inventory_and_leaves_it),
        cmocka_unit_test(test_probe_periodic_schedule_runs_each_target_every_interval),
        cmocka_unit_test(test_probe_close_abandons_probes_in_flight),
        cmocka_unit_test(test_probe_empty_round_completes_asynchronously),
        cmocka_unit_test(test_probe_thousand_targets_in_one_round_without_blocking),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
