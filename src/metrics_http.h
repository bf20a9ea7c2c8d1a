/*
 * The optional HTTP endpoint of SPEC §10: GET /metrics answers the Prometheus text that the
 * daemon last published, so that a Prometheus server can scrape kigen directly instead of
 * going through node_exporter's textfile collector.
 *
 * The daemon's loop never serves HTTP. It renders the text after each evaluation and
 * publishes it; one server thread of this module (libmicrohttpd, driven by epoll) answers
 * every client from the latest published text. A published text is immutable and reference
 * counted (libmicrohttpd's response object): each answer holds a reference until its last byte
 * is sent, so publishing never waits for a client, a slow client never holds anything the
 * loop needs, and a text is freed as soon as it is replaced and no answer still uses it. The
 * hand-over is one atomic pointer exchange and an eventfd wake-up; there is no lock.
 *
 * What is answered:
 *   GET or HEAD /metrics  200, Content-Type: text/plain; version=0.0.4; charset=utf-8
 *                         (503 with a one-line text until the first publish)
 *   another path          404
 *   another method        405 with Allow: GET, HEAD
 *   a request body        413 on /metrics: none is accepted, and none is read
 * Limits: KIGEN_METRICS_HTTP_MAX_CLIENTS connections at once (more wait in the listen
 * backlog), KIGEN_METRICS_HTTP_IDLE_S seconds without progress closes a connection, and
 * libmicrohttpd's 32 KiB per connection bounds what a request may hold. No compression.
 *
 * SIGPIPE: libmicrohttpd sends with MSG_NOSIGNAL on Linux (MHD_FEATURE_AUTOSUPPRESS_SIGPIPE),
 * so a client that goes away is a send error, whatever the process does with SIGPIPE; kigend
 * ignores SIGPIPE anyway. The server thread blocks every signal, so they reach the loop.
 * Every descriptor is close-on-exec (the listening socket, the eventfd, libmicrohttpd's epoll
 * descriptor and accepted sockets), so exec hooks inherit none.
 *
 * Threads: start, publish and stop are called from one thread (kigend's loop thread); the
 * server thread touches only the published texts and libmicrohttpd.
 */
#ifndef KIGEN_METRICS_HTTP_H
#define KIGEN_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define KIGEN_METRICS_HTTP_MAX_CLIENTS 64
#define KIGEN_METRICS_HTTP_IDLE_S      10

struct kigen_metrics_http;

/*
 * Listens on listen, "host:port" or "[v6]:port" (what config.c accepts for metrics_listen;
 * port 0 picks a free port, see kigen_metrics_http_port()), and starts the server thread.
 * Only that address is bound: "127.0.0.1:9793" is IPv4 loopback only, "[::1]:9793" IPv6
 * loopback only (IPV6_V6ONLY), "0.0.0.0" or "[::]" every address of that family. A name is
 * resolved once, here, with getaddrinfo(3) (which may block on DNS: prefer an address), and
 * one of its addresses is bound, the first IPv4 one if any, as Go's net.Listen does:
 * "localhost:9793" binds 127.0.0.1. SO_REUSEADDR (not SO_REUSEPORT) lets a restart bind
 * the port while old connections linger in TIME_WAIT, and still refuses a port that another
 * process listens on.
 *
 * On success returns 0 and *ret_h serves 503 until the first publish. On failure returns a
 * negative errno (-EADDRINUSE, -EACCES, -EADDRNOTAVAIL for a name that does not resolve,
 * -EINVAL for a malformed listen, ...) with a one-line reason in errbuf such as
 * "cannot listen on 127.0.0.1:9793: Address already in use"; nothing is left behind.
 */
int kigen_metrics_http_start(const char *listen, struct kigen_metrics_http **ret_h, char *errbuf,
                             size_t errlen);

/* The port listened on, useful after asking for port 0. */
uint16_t kigen_metrics_http_port(const struct kigen_metrics_http *h);

/*
 * Makes text (len bytes, malloc'd, such as kigen_metrics_render()'s) the body of every
 * GET /metrics that arrives after this call; answers already started finish with the text
 * they began with. Takes ownership of text, also on failure. Never blocks and never waits for
 * a client. Returns 0, or -ENOMEM: text is freed and the previous text stays served.
 */
int kigen_metrics_http_publish(struct kigen_metrics_http *h, char *text, size_t len);

/*
 * Stops listening and joins the server thread, then closes every connection at once: an
 * answer in progress is cut short (a scraper retries at its next interval). Frees every
 * published text and h. h may be NULL. Returns in milliseconds whatever the clients do.
 */
void kigen_metrics_http_stop(struct kigen_metrics_http *h);

#endif
