/*
 * A probe is one heap object per attempt. It lives from probe_start until the last of its
 * handles (the deadline timer, the TCP stream) is closed and its name lookup, if any, has
 * come back: `pending` counts them. finish() decides the result exactly once: it closes what
 * is open, copies the result into the target's status, runs the state machine and then the
 * caller's callback, so that a callback may close the prober. A lookup that is still running
 * in the thread pool keeps the finished probe alive (it cannot be cancelled) but not its
 * result, which the deadline has already given.
 *
 * The prober queues targets that are due and starts them from an idle handle, at most
 * KIGEN_PROBE_START_BURST per loop iteration and KIGEN_PROBE_MAX_INFLIGHT alive at once.
 */
#include "probe.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <uv.h>

#include "log.h"
#include "strmap.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Waiting before another try when a probe could not even be allocated. */
#define RETRY_MS 1000

/* The failure kinds of SPEC §8, named by fail_names. */
enum fail {
    FAIL_NONE,
    FAIL_DNS,
    FAIL_CONNECT_REFUSED,
    FAIL_TIMEOUT,
    FAIL_PROXY,
    FAIL_TLS_HANDSHAKE,
    FAIL_TLS_VERIFY,
    FAIL_TLS_HOSTNAME,
};

static const char *const fail_names[] = {
    [FAIL_NONE] = "",
    [FAIL_DNS] = "dns",
    [FAIL_CONNECT_REFUSED] = "connect_refused",
    [FAIL_TIMEOUT] = "timeout",
    [FAIL_PROXY] = "proxy",
    [FAIL_TLS_HANDSHAKE] = "tls_handshake",
    [FAIL_TLS_VERIFY] = "tls_verify",
    [FAIL_TLS_HOSTNAME] = "tls_hostname",
};

/* What a probe is doing, which names the failure when its deadline passes. */
enum phase {
    PHASE_RESOLVE,
    PHASE_CONNECT,
    PHASE_PROXY, /* waiting for the answer to CONNECT */
    PHASE_TLS,
};

enum sock_state {
    SOCK_NONE,
    SOCK_OPEN,
    SOCK_CLOSING,
};

/* A TLS client context: one for the system trust store and one per distinct ca_file. */
struct tls_ctx {
    char *ca_file; /* NULL: the system trust store */
    SSL_CTX *ctx;  /* NULL when it could not be made; error says why */
    char error[200];
};

/* The HTTP proxy that tunnels connections, when one is configured. */
struct proxy {
    char *host;
    bool is_literal;
    uint16_t port;
    char error[200]; /* not empty: the setting cannot be used, every probe fails with this */
};

struct target {
    struct kigen_prober *prober;
    uv_timer_t timer; /* the periodic schedule */
    bool is_timer_open;
    bool is_busy; /* queued or in flight: a periodic turn is skipped */
    char *name;
    char *host;
    bool is_literal; /* host is an IPv4 or IPv6 address: no lookup, no SNI */
    uint16_t port;
    bool tls;
    struct tls_ctx *tls_ctx;   /* borrowed from the prober; NULL without tls */
    const struct proxy *proxy; /* NULL: direct */
    uint64_t interval_ms;
    uint64_t timeout_ms;
};

struct probe {
    struct kigen_prober *prober;
    struct probe *prev, *next; /* the prober's live probes */
    size_t index;
    unsigned pending; /* handles open and requests outstanding; freed at 0 */
    bool is_finished;
    bool is_gai_pending;
    enum phase phase;
    uint64_t started_ns;
    uint64_t connect_started_ns;
    uv_timer_t deadline; /* first starts the probe at the next iteration, then its deadline */

    /* The hop dialled first: the proxy or the target. */
    const char *dial_host;
    uint16_t dial_port;
    bool is_literal; /* dial_host is an address: no lookup */
    uv_getaddrinfo_t gai;
    struct addrinfo *addrs, *next_addr;
    unsigned n_tried;
    int last_error;
    char last_addr[64];
    uv_tcp_t tcp;
    enum sock_state tcp_state;
    uv_connect_t connect;

    char *answer; /* the proxy's answer, KIGEN_PROBE_MAX_PROXY_ANSWER bytes */
    size_t answer_len;

    SSL *ssl; /* owns rbio and wbio */
    BIO *rbio, *wbio;
    size_t tls_read;

    enum fail fail;
    char detail[sizeof(((struct kigen_probe_status *)0)->detail)];
    double connect_ms;
    struct kigen_certs server;
    char rbuf[16384];
};

/* A write in flight with its bytes. */
struct wreq {
    uv_write_t req;
    char data[];
};

struct kigen_prober {
    uv_loop_t *loop;
    struct kigen_read_ctx *read_ctx;
    struct target *targets;
    struct kigen_probe_status *status;
    size_t n;
    unsigned failures_before_alert;
    struct tls_ctx **tls;
    size_t n_tls;
    struct proxy *proxy; /* NULL: none configured */
    const struct kigen_maint_set *maint;
    int64_t (*now)(void *data);
    void *now_data;
    uint64_t rng;

    /* Targets waiting for a slot, a ring of indices: each is in it at most once. */
    size_t *queue;
    size_t queue_head, queue_len;
    size_t running; /* live probes, finished or not */
    struct probe *live;
    uv_idle_t pump;  /* starts queued probes, KIGEN_PROBE_START_BURST per loop iteration */
    uv_timer_t kick; /* async completion of an empty round, retries after ENOMEM */
    bool is_pump_open;
    size_t handles_open; /* the prober's own timers */

    bool is_once, is_started, is_closing, is_closed;
    size_t once_left;
    kigen_prober_done_cb done_cb;
    kigen_prober_result_cb result_cb;
    void *data;
    kigen_prober_closed_cb closed_cb;
    void *closed_data;
};

static void finish(struct probe *p, enum fail fail, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void try_next_address(struct probe *p);
static void dispatch(struct kigen_prober *pr);

const char *kigen_probe_state_name(enum kigen_probe_state state)
{
    switch (state) {
    case KIGEN_PROBE_UP:
        return "up";
    case KIGEN_PROBE_DOWN:
        return "down";
    case KIGEN_PROBE_MAINTENANCE:
        return "maintenance";
    case KIGEN_PROBE_UNKNOWN:
        break;
    }
    return "unknown";
}

void kigen_probe_state_next(struct kigen_probe_status *status, bool is_success,
                            const struct kigen_maint_set *maint, int64_t now,
                            unsigned failures_before_alert)
{
    status->changed = false;
    if (is_success) {
        status->consecutive_failures = 0;
        status->state = KIGEN_PROBE_UP;
        if (status->is_down_announced) {
            status->is_down_announced = false;
            status->changed = true;
        }
        return;
    }
    if (status->consecutive_failures < UINT_MAX)
        status->consecutive_failures++;
    /* A window that cannot be computed (an error) covers nothing: alerts still go out. */
    if (maint && kigen_maint_set_active(maint, status->name, now, NULL) == 1) {
        status->state = KIGEN_PROBE_MAINTENANCE;
        return;
    }
    if (status->consecutive_failures >= (failures_before_alert ? failures_before_alert : 1)) {
        status->state = KIGEN_PROBE_DOWN;
        if (!status->is_down_announced) {
            status->is_down_announced = true;
            status->changed = true;
        }
    } else if (status->state != KIGEN_PROBE_UP) {
        status->state = KIGEN_PROBE_UNKNOWN;
    }
}

/* ---- one probe ---- */

static double ms_since(uint64_t ns)
{
    return (double)(uv_hrtime() - ns) / 1e6;
}

static const struct target *target_of(const struct probe *p)
{
    return &p->prober->targets[p->index];
}

/* Bytes from a peer go into details: only printable ASCII survives. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

static void release(struct probe *p);

static void handle_closed_cb(uv_handle_t *handle)
{
    struct probe *p = handle->data;

    if (handle == (uv_handle_t *)&p->tcp)
        p->tcp_state = SOCK_NONE;
    release(p);
}

/* Closes what is open; the probe is freed once the last handle or request is back. */
static void close_all(struct probe *p)
{
    if (!uv_is_closing((uv_handle_t *)&p->deadline))
        uv_close((uv_handle_t *)&p->deadline, handle_closed_cb);
    if (p->tcp_state == SOCK_OPEN) {
        p->tcp_state = SOCK_CLOSING;
        uv_close((uv_handle_t *)&p->tcp, handle_closed_cb);
    }
    /* A lookup already running in the thread pool cannot be stopped: its callback frees. */
    if (p->is_gai_pending)
        uv_cancel((uv_req_t *)&p->gai);
}

static void apply_result(struct probe *p, double duration_ms)
{
    struct kigen_prober *pr = p->prober;
    struct kigen_probe_status *st = &pr->status[p->index];
    int64_t now = pr->now(pr->now_data);

    snprintf(st->error, sizeof(st->error), "%s", fail_names[p->fail]);
    memcpy(st->detail, p->detail, sizeof(st->detail));
    st->connect_ms = p->connect_ms;
    st->duration_ms = duration_ms;
    st->last_probe = now;
    if (p->server.n > 0) {
        kigen_certs_clear(&st->server);
        kigen_certs_shrink(&st->server);
        st->server = p->server;
        memset(&p->server, 0, sizeof(p->server));
        st->tls_not_after = st->server.v[0].not_after;
        st->tls_chain_not_after = st->tls_not_after;
        for (size_t i = 1; i < st->server.n; i++)
            if (st->server.v[i].not_after < st->tls_chain_not_after)
                st->tls_chain_not_after = st->server.v[i].not_after;
    }
    kigen_probe_state_next(st, p->fail == FAIL_NONE, pr->maint, now,
                           pr->is_once ? 1 : pr->failures_before_alert);
    pr->targets[p->index].is_busy = false;
    kigen_log_debug("Probe '%s': %s%s%s (%.1f ms)", st->name, kigen_probe_state_name(st->state),
                    p->fail ? ", " : "", st->detail, duration_ms);

    if (pr->is_once) {
        if (--pr->once_left == 0) {
            pr->is_once = false;
            if (pr->done_cb)
                pr->done_cb(pr, pr->data);
        }
    } else if (pr->result_cb) {
        pr->result_cb(pr, p->index, pr->data);
    }
}

/*
 * Ends the probe with a result (fail = FAIL_NONE: success). Handles close first, then the
 * result is applied and the caller's callback runs last, so that it may close the prober.
 */
static void finish(struct probe *p, enum fail fail, const char *fmt, ...)
{
    double duration_ms;
    va_list ap;

    if (p->is_finished)
        return;
    p->is_finished = true;
    duration_ms = ms_since(p->started_ns);
    p->fail = fail;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
    va_end(ap);
    sanitize(p->detail);
    close_all(p);
    if (!p->prober->is_closing)
        apply_result(p, duration_ms);
}

static void probe_free(struct probe *p)
{
    struct kigen_prober *pr = p->prober;

    if (p->prev)
        p->prev->next = p->next;
    else
        pr->live = p->next;
    if (p->next)
        p->next->prev = p->prev;
    pr->running--;
    SSL_free(p->ssl);
    uv_freeaddrinfo(p->addrs);
    kigen_certs_clear(&p->server);
    kigen_certs_shrink(&p->server);
    free(p->answer);
    free(p);
    dispatch(pr);
}

static void maybe_closed(struct kigen_prober *pr);

static void release(struct probe *p)
{
    struct kigen_prober *pr = p->prober;

    if (--p->pending > 0)
        return;
    probe_free(p);
    maybe_closed(pr);
}

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = container_of(req, struct wreq, req);
    struct probe *p = container_of((uv_tcp_t *)req->handle, struct probe, tcp);

    free(w);
    if (status >= 0 || status == UV_ECANCELED || p->is_finished)
        return;
    if (p->phase == PHASE_PROXY)
        finish(p, FAIL_PROXY, "writing to the proxy: %s", uv_strerror(status));
    else
        finish(p, FAIL_TLS_HANDSHAKE, "writing: %s", uv_strerror(status));
}

/* Queues len bytes (copied) on the connection. Returns 0 or a negative errno. */
static int send_bytes(struct probe *p, const void *data, size_t len)
{
    struct wreq *w = malloc(sizeof(*w) + len);
    uv_buf_t buf;
    int r;

    if (!w)
        return -ENOMEM;
    memcpy(w->data, data, len);
    buf = uv_buf_init(w->data, (unsigned)len);
    r = uv_write(&w->req, (uv_stream_t *)&p->tcp, &buf, 1, write_cb);
    if (r < 0)
        free(w);
    return r;
}

/* Sends what OpenSSL has written into wbio. Returns 0 or a negative errno. */
static int tls_flush(struct probe *p)
{
    size_t len = BIO_ctrl_pending(p->wbio);
    struct wreq *w;
    uv_buf_t buf;
    int r;

    if (len == 0)
        return 0;
    if (len > UINT_MAX || len > INT_MAX)
        return -EOVERFLOW;
    w = malloc(sizeof(*w) + len);
    if (!w)
        return -ENOMEM;
    if (BIO_read(p->wbio, w->data, (int)len) != (int)len) {
        free(w);
        return -EIO;
    }
    buf = uv_buf_init(w->data, (unsigned)len);
    r = uv_write(&w->req, (uv_stream_t *)&p->tcp, &buf, 1, write_cb);
    if (r < 0)
        free(w);
    return r;
}

/*
 * OpenSSL's first queued error as text into buf, the errno text for a system error ("No such
 * file or directory" rather than "system lib"); false when the queue is empty. Clears the
 * queue, which is per thread and shared with the rest of the loop thread.
 */
static bool openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_error();
    const char *reason = NULL;

    if (e && ERR_SYSTEM_ERROR(e))
        reason = strerror(ERR_GET_REASON(e));
    else if (e)
        reason = ERR_reason_error_string(e);
    if (reason)
        snprintf(buf, len, "%s", reason);
    else if (e)
        snprintf(buf, len, "OpenSSL error %lx", e);
    ERR_clear_error();
    return e != 0;
}

/* The reason for a failed handshake: OpenSSL's, or what the state says. */
static void tls_reason(int ssl_error, char *buf, size_t len)
{
    if (openssl_reason(buf, len))
        return;
    if (ssl_error == SSL_ERROR_ZERO_RETURN || ssl_error == SSL_ERROR_SYSCALL)
        snprintf(buf, len, "the server closed the connection");
    else
        snprintf(buf, len, "SSL error %d", ssl_error);
}

/* Whether x is one of the first n certificates of chain (NULL: none). */
static bool chain_has(STACK_OF(X509) * chain, int n, const X509 *x)
{
    for (int i = 0; i < n; i++)
        if (X509_cmp(sk_X509_value(chain, i), x) == 0)
            return true;
    return false;
}

/*
 * Records the chain in p->server as entries "0" (the leaf), "1", ... (SPEC §8). When it
 * verified: the chain OpenSSL verified, from the leaf to the trust anchor, then whatever else
 * the server sent, in its order. Otherwise only what the server sent, as it sent it: OpenSSL's
 * chain may then be incomplete or wrong, and nothing is a trust anchor. Each certificate once,
 * at most KIGEN_PROBE_MAX_CHAIN. Without the leaf nothing is recorded; another certificate that
 * cannot be decoded is left out.
 */
static void record_chain(struct probe *p, bool is_verified)
{
    const struct target *t = target_of(p);
    STACK_OF(X509) *verified = is_verified ? SSL_get0_verified_chain(p->ssl) : NULL;
    STACK_OF(X509) *sent = SSL_get_peer_cert_chain(p->ssl);
    int n_verified = verified ? sk_X509_num(verified) : 0, n_sent = sent ? sk_X509_num(sent) : 0;
    char entry[16];
    int r;

    for (int i = 0; i < n_verified + n_sent; i++) {
        X509 *x = i < n_verified ? sk_X509_value(verified, i) : sk_X509_value(sent, i - n_verified);

        if (i >= n_verified &&
            (chain_has(verified, n_verified, x) || chain_has(sent, i - n_verified, x)))
            continue;
        if (p->server.n >= KIGEN_PROBE_MAX_CHAIN) {
            kigen_log_debug("Probe '%s': the chain holds more than %d certificates, ignoring "
                            "the rest",
                            t->name, KIGEN_PROBE_MAX_CHAIN);
            return;
        }
        snprintf(entry, sizeof(entry), "%zu", p->server.n);
        r = kigen_certs_add_x509(&p->server, p->prober->read_ctx, x, entry);
        if (r < 0 && p->server.n == 0) {
            kigen_log_debug("Probe '%s': cannot record the server certificate (%d), ignoring",
                            t->name, r);
            return;
        }
        if (r < 0)
            kigen_log_debug("Probe '%s': cannot record a certificate of the chain (%d), ignoring",
                            t->name, r);
    }
}

/*
 * The handshake is done: record the chain, then judge the verification OpenSSL made during
 * the handshake. The context verifies with SSL_VERIFY_NONE so that a chain that fails still
 * completes the handshake and is recorded: an expired server certificate must reach the
 * inventory. Nothing is sent over an unverified connection; it is closed at once.
 */
static void tls_done(struct probe *p)
{
    const struct target *t = target_of(p);
    X509 *leaf = SSL_get0_peer_certificate(p->ssl);
    long vr = SSL_get_verify_result(p->ssl);
    char closing[256];
    int n;

    if (leaf)
        record_chain(p, vr == X509_V_OK);
    /*
     * A close_notify, best effort: it fits any socket buffer, and a server that does not
     * read it loses nothing.
     */
    ERR_clear_error();
    if (SSL_shutdown(p->ssl) < 0)
        ERR_clear_error();
    n = BIO_read(p->wbio, closing, sizeof(closing));
    if (n > 0) {
        uv_buf_t buf = uv_buf_init(closing, (unsigned)n);

        (void)uv_try_write((uv_stream_t *)&p->tcp, &buf, 1);
    }

    if (!leaf)
        finish(p, FAIL_TLS_VERIFY, "the server sent no certificate");
    else if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
        finish(p, FAIL_TLS_HOSTNAME, "%s: the certificate is not valid for '%s'",
               X509_verify_cert_error_string(vr), t->host);
    else if (vr != X509_V_OK)
        finish(p, FAIL_TLS_VERIFY, "%s", X509_verify_cert_error_string(vr));
    else
        finish(p, FAIL_NONE, "%s", "");
}

/* One step of the handshake after new bytes (or none, to start). */
static void tls_step(struct probe *p)
{
    char reason[200];
    int r, e, w;

    ERR_clear_error();
    r = SSL_do_handshake(p->ssl);
    e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(p->ssl, r);
    if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ) {
        tls_reason(e, reason, sizeof(reason));
        (void)tls_flush(p); /* the alert, if any */
        finish(p, FAIL_TLS_HANDSHAKE, "%s", reason);
        return;
    }
    w = tls_flush(p);
    if (w < 0) {
        finish(p, FAIL_TLS_HANDSHAKE, "writing: %s", uv_strerror(w));
        return;
    }
    if (r == 1)
        tls_done(p);
}

static void tls_feed(struct probe *p, const char *data, size_t len)
{
    p->tls_read += len;
    if (p->tls_read > KIGEN_PROBE_MAX_TLS_READ) {
        finish(p, FAIL_TLS_HANDSHAKE, "the server sent more than %d KiB during the handshake",
               KIGEN_PROBE_MAX_TLS_READ / 1024);
        return;
    }
    /* len is at most sizeof(p->rbuf): it fits an int. */
    if (BIO_write(p->rbio, data, (int)len) != (int)len) {
        ERR_clear_error();
        finish(p, FAIL_TLS_HANDSHAKE, "out of memory");
        return;
    }
    tls_step(p);
}

static void tls_start(struct probe *p)
{
    const struct target *t = target_of(p);
    X509_VERIFY_PARAM *param;
    int ok;

    p->phase = PHASE_TLS;
    if (!t->tls_ctx->ctx) {
        finish(p, FAIL_TLS_VERIFY, "%s", t->tls_ctx->error);
        return;
    }
    ERR_clear_error();
    p->ssl = SSL_new(t->tls_ctx->ctx);
    p->rbio = BIO_new(BIO_s_mem());
    p->wbio = BIO_new(BIO_s_mem());
    if (!p->ssl || !p->rbio || !p->wbio) {
        BIO_free(p->rbio);
        BIO_free(p->wbio);
        p->rbio = p->wbio = NULL;
        ERR_clear_error();
        finish(p, FAIL_TLS_HANDSHAKE, "out of memory");
        return;
    }
    /* An empty read BIO means "wait for more", not end of stream. */
    BIO_set_mem_eof_return(p->rbio, -1);
    SSL_set_bio(p->ssl, p->rbio, p->wbio);
    SSL_set_connect_state(p->ssl);
    param = SSL_get0_param(p->ssl);
    /* RFC 6066 §3: a literal address is no server name; the certificate must name the IP. */
    if (t->is_literal) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(param, t->host);
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(param, t->host, 0) &&
             SSL_set_tlsext_host_name(p->ssl, t->host);
    }
    if (!ok) {
        ERR_clear_error();
        finish(p, FAIL_TLS_HANDSHAKE, "cannot use '%s' as a TLS server name", t->host);
        return;
    }
    tls_step(p);
}

/* The tunnel or the direct connection is up: the target is reachable over TCP. */
static void stream_ready(struct probe *p)
{
    p->connect_ms = ms_since(p->connect_started_ns);
    if (target_of(p)->tls)
        tls_start(p);
    else
        finish(p, FAIL_NONE, "%s", "");
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Collects the answer to CONNECT (RFC 9110 §9.3.6) up to the blank line: any 2xx opens the
 * tunnel, anything else is the proxy's refusal. Bytes after the blank line already belong to
 * the tunnel.
 */
static void proxy_read(struct probe *p, const char *data, size_t len)
{
    size_t old = p->answer_len, take, end, used, line_len;
    const char *hit, *line = p->answer;

    take = KIGEN_PROBE_MAX_PROXY_ANSWER - old;
    if (take > len)
        take = len;
    memcpy(p->answer + old, data, take);
    p->answer_len += take;
    hit = memmem(p->answer + (old >= 3 ? old - 3 : 0), p->answer_len - (old >= 3 ? old - 3 : 0),
                 "\r\n\r\n", 4);
    if (!hit) {
        if (p->answer_len == KIGEN_PROBE_MAX_PROXY_ANSWER)
            finish(p, FAIL_PROXY, "the proxy's answer to CONNECT is longer than %d bytes",
                   KIGEN_PROBE_MAX_PROXY_ANSWER);
        return;
    }
    end = (size_t)(hit - p->answer) + 4;
    used = end - old;
    line_len = strcspn(line, "\r\n");
    /* "HTTP/1.1 200 Connection established" */
    if (line_len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' || !is_digit(line[9]) ||
        !is_digit(line[10]) || !is_digit(line[11]) || (line_len > 12 && line[12] != ' ')) {
        finish(p, FAIL_PROXY, "not an HTTP answer to CONNECT: %.*s",
               (int)(line_len > 100 ? 100 : line_len), line);
        return;
    }
    if (line[9] != '2') {
        finish(p, FAIL_PROXY, "%.*s", (int)(line_len > 200 ? 200 : line_len), line);
        return;
    }
    stream_ready(p);
    if (!p->is_finished && len > used)
        tls_feed(p, data + used, len - used);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct probe *p = handle->data;

    *buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct probe *p = stream->data;
    bool is_eof = nread == UV_EOF;

    if (p->is_finished || nread == 0)
        return;
    if (nread < 0 && p->phase == PHASE_PROXY)
        finish(p, FAIL_PROXY, "%s",
               is_eof ? "the proxy closed the connection before answering CONNECT"
                      : uv_strerror((int)nread));
    else if (nread < 0)
        finish(p, FAIL_TLS_HANDSHAKE, "%s",
               is_eof ? "the server closed the connection during the handshake"
                      : uv_strerror((int)nread));
    else if (p->phase == PHASE_PROXY)
        proxy_read(p, buf->base, (size_t)nread);
    else if (p->phase == PHASE_TLS)
        tls_feed(p, buf->base, (size_t)nread);
}

static void send_connect(struct probe *p)
{
    const struct target *t = target_of(p);
    bool is_v6 = strchr(t->host, ':') != NULL;
    const char *open = is_v6 ? "[" : "", *close = is_v6 ? "]" : "";
    char *req = NULL;
    int n, r;

    p->phase = PHASE_PROXY;
    p->answer = malloc(KIGEN_PROBE_MAX_PROXY_ANSWER);
    n = asprintf(&req, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\nUser-Agent: kigen\r\n\r\n",
                 open, t->host, close, t->port, open, t->host, close, t->port);
    if (n < 0 || !p->answer) {
        if (n >= 0)
            free(req);
        finish(p, FAIL_PROXY, "out of memory");
        return;
    }
    r = send_bytes(p, req, (size_t)n);
    free(req);
    if (r < 0) {
        finish(p, FAIL_PROXY, "writing to the proxy: %s", uv_strerror(r));
        return;
    }
}

static void connected_cb(uv_connect_t *req, int status);

static void retry_closed_cb(uv_handle_t *handle)
{
    struct probe *p = handle->data;

    p->tcp_state = SOCK_NONE;
    if (!p->is_finished)
        try_next_address(p);
    release(p);
}

/* Gives up on the current address and tries the next one. */
static void connect_failed(struct probe *p, int error)
{
    p->last_error = error;
    p->tcp_state = SOCK_CLOSING;
    uv_close((uv_handle_t *)&p->tcp, retry_closed_cb);
}

static void connected_cb(uv_connect_t *req, int status)
{
    struct probe *p = container_of(req, struct probe, connect);
    int r;

    if (status == UV_ECANCELED || p->is_finished)
        return;
    if (status < 0) {
        connect_failed(p, status);
        return;
    }
    (void)uv_tcp_nodelay(&p->tcp, 1);
    if (target_of(p)->tls || target_of(p)->proxy) {
        r = uv_read_start((uv_stream_t *)&p->tcp, alloc_cb, read_cb);
        if (r < 0) {
            finish(p, target_of(p)->proxy ? FAIL_PROXY : FAIL_TLS_HANDSHAKE, "reading: %s",
                   uv_strerror(r));
            return;
        }
    }
    if (target_of(p)->proxy)
        send_connect(p);
    else
        stream_ready(p);
}

/*
 * Every address failed. ECONNREFUSED is connect_refused and ETIMEDOUT (the kernel gave up
 * first) timeout; SPEC names no kind for the other connect errors (ENETUNREACH,
 * EHOSTUNREACH, EMFILE, ...), so they are reported as connect_refused with their own text.
 * Not reaching the proxy is the proxy's failure.
 */
static void fail_connect(struct probe *p)
{
    const struct target *t = target_of(p);
    enum fail kind = FAIL_CONNECT_REFUSED;
    char more[48] = "";

    if (t->proxy)
        kind = FAIL_PROXY;
    else if (p->last_error == UV_ETIMEDOUT)
        kind = FAIL_TIMEOUT;
    if (p->n_tried > 1)
        snprintf(more, sizeof(more), " (%u addresses tried)", p->n_tried);
    finish(p, kind, "%s%s port %u: %s%s", t->proxy ? "proxy " : "", p->last_addr, p->dial_port,
           uv_strerror(p->last_error), more);
}

static void try_next_address(struct probe *p)
{
    const struct target *t = target_of(p);
    struct sockaddr_storage literal;
    const struct sockaddr *sa = NULL;
    int r;

    if (p->is_literal && p->n_tried == 0) {
        if (uv_ip4_addr(p->dial_host, p->dial_port, (struct sockaddr_in *)&literal) == 0 ||
            uv_ip6_addr(p->dial_host, p->dial_port, (struct sockaddr_in6 *)&literal) == 0)
            sa = (const struct sockaddr *)&literal;
    }
    while (!sa && p->next_addr) {
        struct addrinfo *ai = p->next_addr;

        p->next_addr = ai->ai_next;
        if (ai->ai_family == AF_INET) {
            ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons(p->dial_port);
            sa = ai->ai_addr;
        } else if (ai->ai_family == AF_INET6) {
            ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons(p->dial_port);
            sa = ai->ai_addr;
        }
    }
    if (!sa) {
        if (p->n_tried > 0)
            fail_connect(p);
        else
            finish(p, t->proxy ? FAIL_PROXY : FAIL_DNS, "%s%s: no IPv4 or IPv6 address",
                   t->proxy ? "proxy " : "", p->dial_host);
        return;
    }
    p->n_tried++;
    if (uv_ip_name(sa, p->last_addr, sizeof(p->last_addr)) < 0)
        snprintf(p->last_addr, sizeof(p->last_addr), "%s", "?");
    p->phase = PHASE_CONNECT;
    r = uv_tcp_init(p->prober->loop, &p->tcp);
    if (r < 0) {
        p->last_error = r;
        fail_connect(p);
        return;
    }
    p->tcp.data = p;
    p->tcp_state = SOCK_OPEN;
    p->pending++;
    p->connect_started_ns = uv_hrtime();
    r = uv_tcp_connect(&p->connect, &p->tcp, sa, connected_cb);
    if (r < 0)
        connect_failed(p, r);
}

static void resolved_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct probe *p = container_of(req, struct probe, gai);
    const struct target *t = target_of(p);

    p->is_gai_pending = false;
    if (p->is_finished) {
        uv_freeaddrinfo(res);
    } else if (status < 0) {
        uv_freeaddrinfo(res);
        finish(p, t->proxy ? FAIL_PROXY : FAIL_DNS, "%s%s: %s", t->proxy ? "proxy " : "",
               p->dial_host, uv_strerror(status));
    } else {
        p->addrs = res;
        p->next_addr = res;
        try_next_address(p);
    }
    release(p);
}

static void deadline_cb(uv_timer_t *timer)
{
    struct probe *p = container_of(timer, struct probe, deadline);
    const struct target *t = target_of(p);
    unsigned long long ms = (unsigned long long)t->timeout_ms;

    switch (p->phase) {
    case PHASE_RESOLVE:
        /* A name that does not resolve in time is a DNS failure, not a TCP one. */
        if (t->proxy)
            finish(p, FAIL_PROXY, "proxy %s: no address within %llu ms", p->dial_host, ms);
        else
            finish(p, FAIL_DNS, "%s: no address within %llu ms", p->dial_host, ms);
        break;
    case PHASE_CONNECT:
        finish(p, t->proxy ? FAIL_PROXY : FAIL_TIMEOUT,
               "%s%s port %u: no TCP connection within %llu ms", t->proxy ? "proxy " : "",
               p->last_addr, p->dial_port, ms);
        break;
    case PHASE_PROXY:
        finish(p, FAIL_TIMEOUT, "no answer to CONNECT from the proxy within %llu ms", ms);
        break;
    case PHASE_TLS:
        finish(p, FAIL_TIMEOUT, "the TLS handshake did not finish within %llu ms", ms);
        break;
    }
}

/* The probe's first loop iteration: arm the deadline, then resolve or connect. */
static void begin_cb(uv_timer_t *timer)
{
    struct probe *p = container_of(timer, struct probe, deadline);
    const struct target *t = target_of(p);
    struct addrinfo hints = { 0 };
    int r;

    p->started_ns = uv_hrtime();
    (void)uv_timer_start(&p->deadline, deadline_cb, t->timeout_ms, 0);
    if (t->proxy && t->proxy->error[0]) {
        finish(p, FAIL_PROXY, "%s", t->proxy->error);
        return;
    }
    if (t->proxy) {
        p->dial_host = t->proxy->host;
        p->dial_port = t->proxy->port;
    } else {
        p->dial_host = t->host;
        p->dial_port = t->port;
    }
    p->is_literal = t->proxy ? t->proxy->is_literal : t->is_literal;
    p->phase = PHASE_RESOLVE;
    if (p->is_literal) {
        try_next_address(p);
        return;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    r = uv_getaddrinfo(p->prober->loop, &p->gai, resolved_cb, p->dial_host, NULL, &hints);
    if (r < 0) {
        finish(p, t->proxy ? FAIL_PROXY : FAIL_DNS, "%s%s: %s", t->proxy ? "proxy " : "",
               p->dial_host, uv_strerror(r));
        return;
    }
    p->is_gai_pending = true;
    p->pending++;
}

/*
 * Makes target index's probe, which begins from its own timer at the next loop iteration.
 * Returns 0 or -ENOMEM.
 */
static int probe_start(struct kigen_prober *pr, size_t index)
{
    struct probe *p = calloc(1, sizeof(*p));

    if (!p)
        return -ENOMEM;
    p->prober = pr;
    p->index = index;
    p->connect_ms = -1;
    p->tcp_state = SOCK_NONE;
    /* uv_timer_init cannot fail. */
    (void)uv_timer_init(pr->loop, &p->deadline);
    p->deadline.data = p;
    p->pending = 1;
    (void)uv_timer_start(&p->deadline, begin_cb, 0, 0);
    p->next = pr->live;
    if (pr->live)
        pr->live->prev = p;
    pr->live = p;
    pr->running++;
    return 0;
}

/* ---- the prober ---- */

static void enqueue(struct kigen_prober *pr, size_t index)
{
    pr->targets[index].is_busy = true;
    pr->queue[(pr->queue_head + pr->queue_len) % pr->n] = index;
    pr->queue_len++;
}

static void kick_cb(uv_timer_t *timer);

static bool can_start(const struct kigen_prober *pr)
{
    return !pr->is_closing && pr->queue_len > 0 && pr->running < KIGEN_PROBE_MAX_INFLIGHT;
}

/*
 * Starts waiting targets while slots are free, a few per loop iteration so that a round of
 * a thousand targets never holds the loop for long. After ENOMEM, a finishing probe
 * dispatches again; with none left, the kick timer does.
 */
static void pump_cb(uv_idle_t *idle)
{
    struct kigen_prober *pr = container_of(idle, struct kigen_prober, pump);

    for (unsigned i = 0; i < KIGEN_PROBE_START_BURST && can_start(pr); i++) {
        if (probe_start(pr, pr->queue[pr->queue_head]) < 0) {
            (void)uv_idle_stop(&pr->pump);
            if (pr->running == 0)
                (void)uv_timer_start(&pr->kick, kick_cb, RETRY_MS, 0);
            return;
        }
        pr->queue_head = (pr->queue_head + 1) % pr->n;
        pr->queue_len--;
    }
    if (!can_start(pr))
        (void)uv_idle_stop(&pr->pump);
}

static void dispatch(struct kigen_prober *pr)
{
    if (pr->is_pump_open && can_start(pr))
        (void)uv_idle_start(&pr->pump, pump_cb);
}

static void kick_cb(uv_timer_t *timer)
{
    struct kigen_prober *pr = container_of(timer, struct kigen_prober, kick);

    if (pr->is_once && pr->once_left == 0) {
        pr->is_once = false;
        if (pr->done_cb)
            pr->done_cb(pr, pr->data);
        return;
    }
    dispatch(pr);
}

static void target_timer_cb(uv_timer_t *timer)
{
    struct target *t = container_of(timer, struct target, timer);
    struct kigen_prober *pr = t->prober;
    size_t index = (size_t)(t - pr->targets);

    if (t->is_busy) {
        kigen_log_debug("Probe '%s' still running at its next turn, skipping", t->name);
        return;
    }
    enqueue(pr, index);
    dispatch(pr);
}

static void maybe_closed(struct kigen_prober *pr)
{
    if (!pr->is_closing || pr->is_closed || pr->handles_open > 0 || pr->live)
        return;
    pr->is_closed = true;
    if (pr->closed_cb)
        pr->closed_cb(pr, pr->closed_data);
}

static void own_handle_closed_cb(uv_handle_t *handle)
{
    struct kigen_prober *pr = handle->data;

    pr->handles_open--;
    maybe_closed(pr);
}

static void pump_init(struct kigen_prober *pr)
{
    if (pr->is_pump_open)
        return;
    /* Neither init can fail. */
    (void)uv_idle_init(pr->loop, &pr->pump);
    (void)uv_timer_init(pr->loop, &pr->kick);
    pr->pump.data = pr;
    pr->kick.data = pr;
    pr->is_pump_open = true;
    pr->handles_open += 2;
}

int kigen_prober_run_once(struct kigen_prober *pr, kigen_prober_done_cb done_cb, void *data)
{
    if (pr->is_once || pr->is_started || pr->is_closing)
        return -EBUSY;
    pump_init(pr);
    pr->is_once = true;
    pr->once_left = pr->n;
    pr->done_cb = done_cb;
    pr->data = data;
    if (pr->n == 0) {
        (void)uv_timer_start(&pr->kick, kick_cb, 0, 0);
        return 0;
    }
    for (size_t i = 0; i < pr->n; i++)
        enqueue(pr, i);
    dispatch(pr);
    return 0;
}

static uint64_t rng_next(struct kigen_prober *pr)
{
    /* xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators"). */
    pr->rng ^= pr->rng >> 12;
    pr->rng ^= pr->rng << 25;
    pr->rng ^= pr->rng >> 27;
    return pr->rng * UINT64_C(2685821657736338717);
}

int kigen_prober_start(struct kigen_prober *pr, kigen_prober_result_cb result_cb, void *data)
{
    if (pr->is_once || pr->is_started || pr->is_closing)
        return -EBUSY;
    pump_init(pr);
    pr->is_started = true;
    pr->result_cb = result_cb;
    pr->data = data;
    for (size_t i = 0; i < pr->n; i++) {
        struct target *t = &pr->targets[i];
        uint64_t spread =
            t->interval_ms < KIGEN_PROBE_JITTER_MS ? t->interval_ms : KIGEN_PROBE_JITTER_MS;

        (void)uv_timer_init(pr->loop, &t->timer);
        t->timer.data = pr;
        t->is_timer_open = true;
        pr->handles_open++;
        (void)uv_timer_start(&t->timer, target_timer_cb, spread ? rng_next(pr) % spread : 0,
                             t->interval_ms);
    }
    return 0;
}

void kigen_prober_close(struct kigen_prober *pr, kigen_prober_closed_cb closed_cb, void *data)
{
    if (pr->is_closing)
        return;
    pr->is_closing = true;
    pr->closed_cb = closed_cb;
    pr->closed_data = data;
    pr->done_cb = NULL;
    pr->result_cb = NULL;
    pr->queue_len = 0;
    for (size_t i = 0; i < pr->n; i++) {
        struct target *t = &pr->targets[i];

        t->is_busy = false;
        if (t->is_timer_open) {
            t->is_timer_open = false;
            uv_close((uv_handle_t *)&t->timer, own_handle_closed_cb);
        }
    }
    if (pr->is_pump_open) {
        pr->is_pump_open = false;
        uv_close((uv_handle_t *)&pr->pump, own_handle_closed_cb);
        uv_close((uv_handle_t *)&pr->kick, own_handle_closed_cb);
    }
    for (struct probe *p = pr->live; p; p = p->next) {
        if (!p->is_finished) {
            /* Abandoned: no result (finish skips it while closing). */
            finish(p, FAIL_NONE, "%s", "");
        }
    }
    maybe_closed(pr);
}

static int64_t real_now(void *data)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return uv_inet_pton(AF_INET, host, buf) == 0 || uv_inet_pton(AF_INET6, host, buf) == 0;
}

/* A port of 1..65535 in [s, end). */
static bool parse_port(const char *s, const char *end, uint16_t *ret_port)
{
    unsigned long v = 0;

    if (s == end || end - s > 5)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *ret_port = (uint16_t)v;
    return true;
}

/*
 * Fills px from "http://host:port" (the configuration's form, already checked) or an
 * https_proxy value as curl takes it: the scheme may be left out, the port too (1080), a
 * path is ignored. origin names the setting in errors; the value itself is never repeated,
 * since it may hold credentials.
 */
static int proxy_parse(struct proxy *px, const char *url, const char *origin)
{
    const char *s = url, *end, *host, *host_end, *colon;
    uint16_t port = KIGEN_PROBE_DEFAULT_PROXY_PORT;

    if (strncasecmp(s, "http://", 7) == 0)
        s += 7;
    else if (strstr(s, "://"))
        goto bad_scheme;
    end = s + strcspn(s, "/?#");
    if (memchr(s, '@', (size_t)(end - s))) {
        snprintf(px->error, sizeof(px->error),
                 "%s holds credentials, which kigen does not send to a proxy", origin);
        return 0;
    }
    if (*s == '[') {
        host = s + 1;
        host_end = memchr(host, ']', (size_t)(end - host));
        if (!host_end)
            goto bad;
        colon = host_end + 1 < end ? host_end + 1 : NULL;
        if (colon && *colon != ':')
            goto bad;
    } else {
        host = s;
        colon = memchr(s, ':', (size_t)(end - s));
        host_end = colon ? colon : end;
    }
    if (host_end == host || (colon && !parse_port(colon + 1, end, &port)))
        goto bad;
    px->host = strndup(host, (size_t)(host_end - host));
    if (!px->host)
        return -ENOMEM;
    px->is_literal = is_ip_literal(px->host);
    px->port = port;
    return 0;
bad_scheme:
    snprintf(px->error, sizeof(px->error), "%s: only http:// proxies are supported", origin);
    return 0;
bad:
    snprintf(px->error, sizeof(px->error), "%s is not http://host:port", origin);
    return 0;
}

/* Whether an address prefix "addr/bits" in [s, end) holds host (an IP literal). */
static bool cidr_matches(const char *s, const char *end, const char *host)
{
    unsigned char net[16], addr[16];
    char buf[64];
    const char *slash = memchr(s, '/', (size_t)(end - s));
    int family, len, bits = 0;

    if (!slash || (size_t)(slash - s) >= sizeof(buf))
        return false;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    family = strchr(buf, ':') ? AF_INET6 : AF_INET;
    len = family == AF_INET6 ? 16 : 4;
    if (uv_inet_pton(family, buf, net) != 0 || uv_inet_pton(family, host, addr) != 0)
        return false;
    for (const char *d = slash + 1; d < end; d++) {
        if (*d < '0' || *d > '9' || bits > len * 8)
            return false;
        bits = bits * 10 + (*d - '0');
    }
    if (slash + 1 == end || bits > len * 8)
        return false;
    for (int i = 0; i < len && bits > 0; i++, bits -= 8) {
        unsigned mask = bits >= 8 ? 0xffu : (0xffu << (8 - bits)) & 0xffu;

        if ((net[i] & mask) != (addr[i] & mask))
            return false;
    }
    return true;
}

/*
 * Whether no_proxy exempts host:port, as curl reads it: a comma-separated list of "*", host
 * names (which also cover their subdomains; a leading "." or "*." is the same), IP addresses
 * and address prefixes ("10.0.0.0/8"), each optionally with ":port" ("[::1]:443" for IPv6).
 */
static bool is_no_proxy(const char *list, const char *host, uint16_t port)
{
    size_t hlen = strlen(host);
    bool is_literal = is_ip_literal(host);

    while (*list) {
        const char *s, *end, *name_end;
        uint16_t want = 0;
        size_t len;

        list += strspn(list, ", \t");
        s = list;
        end = s + strcspn(s, ", \t");
        list = end;
        if (s == end)
            continue;
        if (end - s == 1 && *s == '*')
            return true;
        name_end = end;
        if (*s == '[') {
            const char *close = memchr(s, ']', (size_t)(end - s));

            if (!close ||
                (close + 1 < end && (close[1] != ':' || !parse_port(close + 2, end, &want))))
                continue;
            s++;
            name_end = close;
        } else {
            const char *colon = memchr(s, ':', (size_t)(end - s));

            /* One colon is a port; more are an IPv6 address. */
            if (colon && !memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
                if (!parse_port(colon + 1, end, &want))
                    continue;
                name_end = colon;
            }
        }
        if (want && want != port)
            continue;
        if (memchr(s, '/', (size_t)(name_end - s))) {
            if (is_literal && cidr_matches(s, name_end, host))
                return true;
            continue;
        }
        if (name_end - s >= 2 && s[0] == '*' && s[1] == '.')
            s += 2;
        else if (*s == '.')
            s++;
        len = (size_t)(name_end - s);
        if (len == 0)
            continue;
        if (is_literal) {
            unsigned char a[16], b[16];
            char buf[64];
            int family = strchr(host, ':') ? AF_INET6 : AF_INET;

            if (len >= sizeof(buf))
                continue;
            memcpy(buf, s, len);
            buf[len] = '\0';
            if (uv_inet_pton(family, buf, a) == 0 && uv_inet_pton(family, host, b) == 0 &&
                memcmp(a, b, family == AF_INET6 ? 16 : 4) == 0)
                return true;
            continue;
        }
        if ((hlen == len && strncasecmp(host, s, len) == 0) ||
            (hlen > len && host[hlen - len - 1] == '.' &&
             strncasecmp(host + hlen - len, s, len) == 0))
            return true;
    }
    return false;
}

static void tls_ctx_free(struct tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    free(c->ca_file);
    free(c);
}

/*
 * The context for ca_file (NULL: the system store), made once per prober. Blocking: reads
 * the files. Returns it (owned by pr) or NULL for out of memory.
 */
static struct tls_ctx *tls_ctx_get(struct kigen_prober *pr, const char *ca_file)
{
    struct tls_ctx *c = NULL, **v;
    char reason[128];
    int ok;

    for (size_t i = 0; i < pr->n_tls; i++)
        if ((!ca_file && !pr->tls[i]->ca_file) ||
            (ca_file && pr->tls[i]->ca_file && strcmp(ca_file, pr->tls[i]->ca_file) == 0))
            return pr->tls[i];
    v = realloc(pr->tls, (pr->n_tls + 1) * sizeof(*v));
    if (!v)
        return NULL;
    pr->tls = v;
    c = calloc(1, sizeof(*c));
    if (!c || (ca_file && !(c->ca_file = strdup(ca_file))))
        goto oom;
    ERR_clear_error();
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (!c->ctx)
        goto oom;
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    /* Every probe makes a full handshake: it is the certificate we come for. */
    SSL_CTX_set_session_cache_mode(c->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_NONE, NULL); /* judged after the handshake */
    if (ca_file) {
        ok = SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL);
        /*
         * What the operator names in ca_file is trusted as it is, an intermediate too, as
         * curl does.
         */
        X509_STORE_set_flags(SSL_CTX_get_cert_store(c->ctx), X509_V_FLAG_PARTIAL_CHAIN);
    } else {
        ok = SSL_CTX_set_default_verify_paths(c->ctx);
    }
    if (!ok) {
        if (!openssl_reason(reason, sizeof(reason)))
            snprintf(reason, sizeof(reason), "unknown error");
        snprintf(c->error, sizeof(c->error), "cannot load %s%s%s: %s",
                 ca_file ? "ca_file '" : "the system trust store", ca_file ? ca_file : "",
                 ca_file ? "'" : "", reason);
        sanitize(c->error);
        SSL_CTX_free(c->ctx);
        c->ctx = NULL;
    }
    ERR_clear_error();
    pr->tls[pr->n_tls++] = c;
    return c;
oom:
    ERR_clear_error();
    tls_ctx_free(c);
    return NULL;
}

static int setup_proxy(struct kigen_prober *pr, const struct kigen_probes *probes,
                       char **ret_no_proxy)
{
    const char *url = probes->proxy, *origin = "proxy", *no_proxy = NULL;

    if (!url || !*url)
        return 0;
    if (strcmp(url, "env") == 0) {
        origin = "https_proxy";
        url = getenv(origin);
        if (!url || !*url) {
            origin = "HTTPS_PROXY";
            url = getenv(origin);
        }
        if (!url || !*url)
            return 0;
        no_proxy = getenv("no_proxy");
        if (!no_proxy || !*no_proxy)
            no_proxy = getenv("NO_PROXY");
    }
    pr->proxy = calloc(1, sizeof(*pr->proxy));
    if (!pr->proxy)
        return -ENOMEM;
    if (no_proxy && *no_proxy) {
        *ret_no_proxy = strdup(no_proxy);
        if (!*ret_no_proxy)
            return -ENOMEM;
    }
    return proxy_parse(pr->proxy, url, origin);
}

int kigen_prober_new(uv_loop_t *loop, const struct kigen_config *config,
                     struct kigen_prober **ret_prober)
{
    const struct kigen_probes *probes = &config->probes;
    struct kigen_prober *pr = NULL;
    char *no_proxy = NULL;
    size_t n = probes->n_targets;
    int r = -ENOMEM;

    pr = calloc(1, sizeof(*pr));
    if (!pr)
        goto out;
    pr->loop = loop;
    pr->now = real_now;
    pr->failures_before_alert = probes->failures_before_alert;
    r = kigen_read_ctx_new(&pr->read_ctx);
    if (r < 0)
        goto out;
    r = -ENOMEM;
    if (n > 0) {
        pr->targets = calloc(n, sizeof(*pr->targets));
        pr->status = calloc(n, sizeof(*pr->status));
        pr->queue = calloc(n, sizeof(*pr->queue));
        if (!pr->targets || !pr->status || !pr->queue)
            goto out;
    }
    r = setup_proxy(pr, probes, &no_proxy);
    if (r < 0)
        goto out;
    r = -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct kigen_probe_target *ct = &probes->targets[i];
        struct target *t = &pr->targets[i];
        struct kigen_probe_status *st = &pr->status[i];

        pr->n = i + 1; /* what kigen_prober_free must release */
        t->prober = pr;
        t->name = strdup(ct->name);
        t->host = strdup(ct->host);
        if (!t->name || !t->host)
            goto out;
        t->is_literal = is_ip_literal(t->host);
        t->port = ct->port;
        t->tls = ct->tls;
        t->interval_ms = (uint64_t)(ct->interval > 0 ? ct->interval : 1) * 1000;
        t->timeout_ms = (uint64_t)(ct->timeout > 0 ? ct->timeout : 1) * 1000;
        if (pr->proxy && !(no_proxy && is_no_proxy(no_proxy, t->host, t->port)))
            t->proxy = pr->proxy;
        if (t->tls) {
            t->tls_ctx = tls_ctx_get(pr, ct->ca_file);
            if (!t->tls_ctx)
                goto out;
        }
        st->name = t->name;
        st->host = t->host;
        st->port = t->port;
        st->tls = t->tls;
        st->state = KIGEN_PROBE_UNKNOWN;
        st->connect_ms = -1;
    }
    if (RAND_bytes((unsigned char *)&pr->rng, sizeof(pr->rng)) != 1)
        ERR_clear_error();
    pr->rng ^= uv_hrtime();
    if (pr->rng == 0)
        pr->rng = 1;
    *ret_prober = pr;
    pr = NULL;
    r = 0;
out:
    free(no_proxy);
    kigen_prober_free(pr);
    return r;
}

void kigen_prober_free(struct kigen_prober *pr)
{
    if (!pr)
        return;
    /* Closing is finished (or nothing ever ran): no handle refers to pr any more. */
    assert(!pr->live && pr->handles_open == 0);
    for (size_t i = 0; i < pr->n; i++) {
        free(pr->targets[i].name);
        free(pr->targets[i].host);
        kigen_certs_clear(&pr->status[i].server);
        kigen_certs_shrink(&pr->status[i].server);
    }
    for (size_t i = 0; i < pr->n_tls; i++)
        tls_ctx_free(pr->tls[i]);
    free(pr->tls);
    if (pr->proxy)
        free(pr->proxy->host);
    free(pr->proxy);
    free(pr->queue);
    free(pr->status);
    free(pr->targets);
    kigen_read_ctx_free(pr->read_ctx);
    free(pr);
}

const struct kigen_probe_status *kigen_prober_status(const struct kigen_prober *pr, size_t *ret_n)
{
    *ret_n = pr->n;
    return pr->status;
}

int kigen_prober_restore_down(struct kigen_prober *pr, size_t index)
{
    struct kigen_probe_status *st;

    if (index >= pr->n)
        return -EINVAL;
    st = &pr->status[index];
    st->state = KIGEN_PROBE_DOWN;
    st->is_down_announced = true;
    st->consecutive_failures = pr->failures_before_alert;
    return 0;
}

void kigen_prober_adopt(struct kigen_prober *pr, struct kigen_prober *old)
{
    struct kigen_strmap by_name = { 0 };
    bool is_indexed = true;

    /* A map keeps this linear for thousands of targets; without memory, search instead. */
    for (size_t i = 0; i < old->n && is_indexed; i++)
        if (kigen_strmap_put(&by_name, old->status[i].name, &old->status[i]) < 0)
            is_indexed = false;
    for (size_t i = 0; i < pr->n; i++) {
        struct kigen_probe_status *st = &pr->status[i], *was = NULL;

        if (is_indexed) {
            was = kigen_strmap_get(&by_name, st->name);
        } else {
            for (size_t j = 0; j < old->n && !was; j++)
                if (strcmp(old->status[j].name, st->name) == 0)
                    was = &old->status[j];
        }
        if (!was || strcmp(was->host, st->host) != 0 || was->port != st->port ||
            was->tls != st->tls)
            continue;
        st->state = was->state;
        st->consecutive_failures = was->consecutive_failures;
        memcpy(st->error, was->error, sizeof(st->error));
        memcpy(st->detail, was->detail, sizeof(st->detail));
        st->connect_ms = was->connect_ms;
        st->duration_ms = was->duration_ms;
        st->last_probe = was->last_probe;
        st->tls_not_after = was->tls_not_after;
        st->tls_chain_not_after = was->tls_chain_not_after;
        st->is_down_announced = was->is_down_announced;
        st->changed = false;
        kigen_certs_clear(&st->server);
        kigen_certs_shrink(&st->server);
        st->server = was->server;
        memset(&was->server, 0, sizeof(was->server));
    }
    kigen_strmap_clear(&by_name);
}

void kigen_prober_set_maintenance(struct kigen_prober *pr, const struct kigen_maint_set *maint)
{
    pr->maint = maint;
}

void kigen_prober_set_clock(struct kigen_prober *pr, int64_t (*now)(void *data), void *data)
{
    pr->now = now ? now : real_now;
    pr->now_data = now ? data : NULL;
}

int kigen_prober_set_timeout_ms(struct kigen_prober *pr, size_t index, uint64_t timeout_ms)
{
    if (index >= pr->n || timeout_ms == 0)
        return -EINVAL;
    pr->targets[index].timeout_ms = timeout_ms;
    return 0;
}
