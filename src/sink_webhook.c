/*
 * The webhook sinks (SPEC §12): one per alerts.webhooks entry, named "webhook:<name>", each
 * an HTTPS POST per alert of the entry's format (webhook.c). A 2xx answer is delivered;
 * any other answer, a transport error or the 10 s timeout is a failure, logged with the sink's
 * name and the status or libcurl's reason. Alerts whose event is not in the entry's `events`
 * are delivered at once without a request.
 *
 * The URL is a secret: it carries the token. It is held in one kigen_secret_dup() copy, given
 * to libcurl and nothing else: no message names it, and libcurl's own error text is logged
 * only when no part of the URL's path, query or credentials appears in it.
 *
 * libcurl's multi interface runs on the loop (curl's docs/examples/multi-uv.c): libcurl says
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION, a uv_poll_t each) and when to wake it
 * (CURLMOPT_TIMERFUNCTION, one uv_timer_t). Debian's libcurl resolves names on a thread of
 * its own (CURL_VERSION_ASYNCHDNS), so no call blocks the loop, with one exception: closing
 * the sink (a stop, or a reload that changed it) while a name is being resolved waits for
 * that resolver thread (curl_multi_remove_handle()). One multi handle per sink keeps its
 * connection to the server alive between alerts.
 *
 * TLS is always verified, against ca_file alone when one is set. The proxy is that of probes:
 * none (and then none from the environment either: libcurl would read https_proxy itself),
 * "env" (https_proxy or HTTPS_PROXY, with no_proxy or NO_PROXY), or http://host:port, reached
 * with CONNECT. Redirects are not followed, and only https:// is spoken.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "secret.h"
#include "sink.h"
#include "webhook.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define TIMEOUT_MS  10000
#define ANSWER_KEEP (64 * 1024) /* bytes of an answer read (and dropped) before it is cut */
#define CLUE_LEN    8           /* a run of this many URL bytes in an error text hides it */

struct webhook_job {
    struct webhook_sink *sink;
    void *token;
    enum kigen_event event;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    size_t answered; /* bytes of the answer's body */
    char errbuf[CURL_ERROR_SIZE];
    struct webhook_job *next;
};

/* A socket libcurl asked us to watch. */
struct webhook_socket {
    struct webhook_sink *sink;
    uv_poll_t poll;
    curl_socket_t fd;
    struct webhook_socket *next;
};

struct webhook_sink {
    struct kigen_sink base;
    char *label; /* "webhook:<name>" */
    char *name;
    char *url; /* a secret */
    enum kigen_webhook_format format;
    char *proxy_setting; /* as configured, to compare with a reload's */
    char *ca_file;
    uint32_t events;
    char *proxy;    /* for CURLOPT_PROXY: "" is none */
    char *no_proxy; /* for CURLOPT_NOPROXY */
    char proxy_error[160];
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    unsigned open;                  /* handles not yet closed: the timer and the sockets' */
    struct webhook_socket *sockets; /* watched now */
    struct webhook_job *jobs;
};

static void check_done(struct webhook_sink *ws);

static void maybe_closed(struct webhook_sink *ws)
{
    if (ws->base.is_closing && ws->open == 0 && !ws->jobs)
        kigen_sink_closed(&ws->base);
}

static void handle_closed_cb(uv_handle_t *handle)
{
    struct webhook_sink *ws = handle->data;

    if (handle->type == UV_POLL)
        free(container_of((uv_poll_t *)handle, struct webhook_socket, poll));
    ws->open--;
    maybe_closed(ws);
}

static void poll_cb(uv_poll_t *poll, int status, int events)
{
    struct webhook_socket *s = container_of(poll, struct webhook_socket, poll);
    struct webhook_sink *ws = s->sink;
    int flags = 0, running;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    /* May close s (CURL_POLL_REMOVE): s is not used after. */
    curl_multi_socket_action(ws->multi, s->fd, flags, &running);
    check_done(ws);
}

static void socket_close(struct webhook_socket *s)
{
    struct webhook_socket **p = &s->sink->sockets;

    while (*p != s)
        p = &(*p)->next;
    *p = s->next;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, handle_closed_cb);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct webhook_sink *ws = userp;
    struct webhook_socket *s = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(ws->multi, fd, NULL);
            socket_close(s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(ws->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->sink = ws;
        s->fd = fd;
        s->poll.data = ws;
        s->next = ws->sockets;
        ws->sockets = s;
        ws->open++;
        curl_multi_assign(ws->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    return uv_poll_start(&s->poll, events, poll_cb) < 0 ? -1 : 0;
}

static void timer_cb(uv_timer_t *timer)
{
    struct webhook_sink *ws = container_of(timer, struct webhook_sink, timer);
    int running;

    curl_multi_socket_action(ws->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(ws);
}

/* libcurl's wish to be woken: never calls it back from here (its docs forbid it). */
static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    struct webhook_sink *ws = userp;

    if (timeout_ms < 0)
        uv_timer_stop(&ws->timer);
    else
        uv_timer_start(&ws->timer, timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* The answer's body is not needed: it is counted and dropped, and cut after ANSWER_KEEP. */
static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct webhook_job *job = userp;

    job->answered += n;
    return job->answered > ANSWER_KEEP ? 0 : n;
}

/* Whether text holds CLUE_LEN bytes in a row of secret (or all of a shorter one). */
static bool mentions(const char *text, const char *secret, size_t len)
{
    size_t run = len < CLUE_LEN ? len : CLUE_LEN;

    for (size_t i = 0; run > 0 && i + run <= len; i++)
        if (memmem(text, strlen(text), secret + i, run))
            return true;
    return false;
}

/*
 * Whether libcurl's error text may be logged: not when it repeats any part of the URL that
 * may be secret (the credentials before the host, the path, the query).
 */
static bool is_safe_to_log(const struct webhook_sink *ws, const char *text)
{
    const char *url = ws->url, *auth = strstr(url, "://"), *at, *rest;

    auth = auth ? auth + 3 : url;
    rest = auth + strcspn(auth, "/?#");
    at = memchr(auth, '@', (size_t)(rest - auth));
    if (at && mentions(text, auth, (size_t)(at - auth)))
        return false;
    return !mentions(text, rest, strlen(rest));
}

static void job_free(struct webhook_job *job)
{
    struct webhook_job **p;

    if (!job)
        return;
    for (p = &job->sink->jobs; *p && *p != job; p = &(*p)->next)
        ;
    if (*p)
        *p = job->next;
    if (job->easy) {
        curl_multi_remove_handle(job->sink->multi, job->easy);
        curl_easy_cleanup(job->easy);
    }
    curl_slist_free_all(job->headers);
    free(job->body);
    free(job);
}

/* Logs why the alert did not get through, once. Returns whether it failed. */
static bool report(struct webhook_job *job, CURLcode result, long status)
{
    const char *event = kigen_event_name(job->event);
    const char *label = job->sink->label;

    /* An answer cut after ANSWER_KEEP bytes still carried its status. */
    if (result == CURLE_WRITE_ERROR && job->answered > ANSWER_KEEP)
        result = CURLE_OK;
    if (result == CURLE_OK && status >= 200 && status < 300)
        return false;
    if (result == CURLE_OK) {
        kigen_log_warn("The %s sink could not deliver %s: the server answered HTTP %ld, "
                       "carrying on",
                       label, event, status);
        return true;
    }
    kigen_log_warn("The %s sink could not deliver %s: %s, carrying on", label, event,
                   job->errbuf[0] && is_safe_to_log(job->sink, job->errbuf)
                       ? job->errbuf
                       : curl_easy_strerror(result));
    return true;
}

/* Reports every finished transfer. */
static void check_done(struct webhook_sink *ws)
{
    CURLMsg *msg;
    int left;

    /* kigen_sink_finish() may retire and close the sink: then multi is gone, and so are we. */
    while (ws->multi && (msg = curl_multi_info_read(ws->multi, &left))) {
        struct webhook_job *job;
        CURLcode result = msg->data.result;
        char *private = NULL;
        long status = 0;
        void *token;
        bool failed;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private);
        job = (struct webhook_job *)(void *)private;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        token = job->token;
        failed = report(job, result, status);
        job_free(job); /* msg is gone too */
        kigen_sink_finish(&ws->base, token, failed);
    }
}

/* The options of one POST. Returns 0 or -ENOMEM. */
static int job_setup(struct webhook_job *job, size_t len)
{
    struct webhook_sink *ws = job->sink;
    CURL *e = job->easy;
    struct curl_slist *h;
    CURLcode c = CURLE_OK;

    h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h)
        job->headers = h;
    h = h ? curl_slist_append(h, "Expect:") : NULL; /* no 100-continue round trip */
    if (!h)
        return -ENOMEM;
    job->headers = h;
#define SET(opt, val)                          \
    do {                                       \
        if (c == CURLE_OK)                     \
            c = curl_easy_setopt(e, opt, val); \
    } while (0)
    SET(CURLOPT_PRIVATE, job);
    SET(CURLOPT_ERRORBUFFER, job->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_URL, ws->url);
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_USERAGENT, "kigen");
    SET(CURLOPT_HTTPHEADER, job->headers);
    SET(CURLOPT_POSTFIELDSIZE, (long)len);
    SET(CURLOPT_POSTFIELDS, job->body);
    SET(CURLOPT_TIMEOUT_MS, (long)TIMEOUT_MS);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (ws->ca_file) {
        SET(CURLOPT_CAINFO, ws->ca_file);
        SET(CURLOPT_CAPATH, NULL); /* Debian's libcurl also looks in /etc/ssl/certs */
    }
    /* "" is no proxy at all: without it, libcurl would take https_proxy from the environment. */
    SET(CURLOPT_PROXY, ws->proxy);
    SET(CURLOPT_NOPROXY, ws->no_proxy);
    SET(CURLOPT_PROXYTYPE, (long)CURLPROXY_HTTP);
    SET(CURLOPT_HTTPPROXYTUNNEL, 1L);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, job);
#undef SET
    return c == CURLE_OK ? 0 : c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

static int webhook_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct webhook_sink *ws = container_of(sink, struct webhook_sink, base);
    struct webhook_job *job = NULL;
    size_t len = 0;
    int r;

    if (!(ws->events & (UINT32_C(1) << alert->event)))
        return 1; /* not wanted here: done */
    if (ws->proxy_error[0]) {
        kigen_log_warn("The %s sink could not deliver %s: %s, carrying on", ws->label,
                       kigen_event_name(alert->event), ws->proxy_error);
        return -EINVAL;
    }
    job = calloc(1, sizeof(*job));
    if (!job) {
        r = -ENOMEM;
        goto fail;
    }
    job->sink = ws;
    job->token = token;
    job->event = alert->event;
    r = kigen_webhook_payload(ws->format, alert, &job->body, &len);
    if (r < 0)
        goto fail;
    job->easy = curl_easy_init();
    if (!job->easy) {
        r = -ENOMEM;
        goto fail;
    }
    r = job_setup(job, len);
    if (r < 0)
        goto fail;
    /* Arms the timer (timer_fn): the transfer starts from the loop, never in here. */
    if (curl_multi_add_handle(ws->multi, job->easy) != CURLM_OK) {
        r = -ENOMEM;
        goto fail;
    }
    job->next = ws->jobs;
    ws->jobs = job;
    return 0;
fail:
    if (job && job->easy) {
        curl_easy_cleanup(job->easy);
        job->easy = NULL;
    }
    job_free(job);
    return kigen_log_errno(KIGEN_LOG_WARNING, r, "The %s sink could not deliver %s, carrying on",
                           ws->label, kigen_event_name(alert->event));
}

/* The proxy of SPEC §8 for CURLOPT_PROXY and CURLOPT_NOPROXY. Returns 0 or -ENOMEM. */
static int proxy_setup(struct webhook_sink *ws, const char *setting)
{
    const char *url = setting, *origin = "proxy", *no_proxy = "", *host, *end;

    if (url && strcmp(url, "env") == 0) {
        origin = "https_proxy";
        url = getenv(origin);
        if (!url || !*url) {
            origin = "HTTPS_PROXY";
            url = getenv(origin);
        }
        no_proxy = getenv("no_proxy");
        if (!no_proxy || !*no_proxy)
            no_proxy = getenv("NO_PROXY");
    }
    if (!url)
        url = "";
    if (!no_proxy)
        no_proxy = "";
    /* As probes take it: http:// or no scheme, and no credentials (never repeated here). */
    host = strstr(url, "://");
    if (host && strncasecmp(url, "http://", 7) != 0)
        snprintf(ws->proxy_error, sizeof(ws->proxy_error), "%s: only http:// proxies are supported",
                 origin);
    host = host ? host + 3 : url;
    end = host + strcspn(host, "/?#");
    if (memchr(host, '@', (size_t)(end - host)))
        snprintf(ws->proxy_error, sizeof(ws->proxy_error),
                 "%s holds credentials, which kigen does not send to a proxy", origin);
    ws->proxy = strdup(url);
    ws->no_proxy = strdup(no_proxy);
    return ws->proxy && ws->no_proxy ? 0 : -ENOMEM;
}

static int dup_or_null(const char *s, char **ret)
{
    *ret = s ? strdup(s) : NULL;
    return !s || *ret ? 0 : -ENOMEM;
}

static void webhook_free(struct kigen_sink *sink)
{
    struct webhook_sink *ws;

    if (!sink)
        return;
    ws = container_of(sink, struct webhook_sink, base);
    if (ws->multi)
        curl_multi_cleanup(ws->multi);
    kigen_secret_free(ws->url);
    free(ws->label);
    free(ws->name);
    free(ws->proxy_setting);
    free(ws->ca_file);
    free(ws->proxy);
    free(ws->no_proxy);
    free(ws);
}

int kigen_sink_webhook_new(const struct kigen_webhook *w, struct kigen_sink **ret_sink)
{
    struct webhook_sink *ws = NULL;
    int r = -ENOMEM;

    if (!w->url_secret)
        return -EINVAL;
    ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -ENOMEM;
    if (asprintf(&ws->label, "webhook:%s", w->name) < 0) {
        ws->label = NULL;
        goto out;
    }
    ws->url = kigen_secret_dup(w->url_secret);
    if (!ws->url || dup_or_null(w->name, &ws->name) < 0 ||
        dup_or_null(w->proxy, &ws->proxy_setting) < 0 || dup_or_null(w->ca_file, &ws->ca_file) < 0)
        goto out;
    r = proxy_setup(ws, w->proxy);
    if (r < 0)
        goto out;
    ws->multi = curl_multi_init();
    if (!ws->multi) {
        r = -ENOMEM;
        goto out;
    }
    ws->format = w->format;
    ws->events = w->events;
    ws->base.type = &kigen_sink_webhook;
    ws->base.name = ws->label;
    *ret_sink = &ws->base;
    ws = NULL;
    r = 0;
out:
    webhook_free(ws ? &ws->base : NULL);
    return r;
}

static bool is_same_string(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) == 0 : a == b;
}

bool kigen_sink_webhook_is_same(const struct kigen_sink *sink, const struct kigen_webhook *w)
{
    const struct webhook_sink *ws = container_of(sink, const struct webhook_sink, base);

    return is_same_string(ws->name, w->name) && is_same_string(ws->url, w->url_secret) &&
           ws->format == w->format && is_same_string(ws->proxy_setting, w->proxy) &&
           is_same_string(ws->ca_file, w->ca_file) && ws->events == w->events;
}

static void webhook_start(struct kigen_sink *sink, uv_loop_t *loop)
{
    struct webhook_sink *ws = container_of(sink, struct webhook_sink, base);

    ws->loop = loop;
    uv_timer_init(loop, &ws->timer);
    ws->timer.data = ws;
    ws->open = 1;
    curl_multi_setopt(ws->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(ws->multi, CURLMOPT_SOCKETDATA, ws);
    curl_multi_setopt(ws->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(ws->multi, CURLMOPT_TIMERDATA, ws);
}

static void webhook_close(struct kigen_sink *sink)
{
    struct webhook_sink *ws = container_of(sink, struct webhook_sink, base);

    /* Quietly: each alert under way is reported failed; the dispatcher drops it. */
    while (ws->jobs) {
        struct webhook_job *job = ws->jobs;
        void *token = job->token;

        job_free(job);
        kigen_sink_finish(sink, token, true);
    }
    /*
     * The connections libcurl keeps for the next alert: stop watching them, then let libcurl
     * close them without calling back.
     */
    curl_multi_setopt(ws->multi, CURLMOPT_SOCKETFUNCTION, NULL);
    curl_multi_setopt(ws->multi, CURLMOPT_TIMERFUNCTION, NULL);
    while (ws->sockets)
        socket_close(ws->sockets);
    curl_multi_cleanup(ws->multi);
    ws->multi = NULL;
    uv_close((uv_handle_t *)&ws->timer, handle_closed_cb);
}

const struct kigen_sink_type kigen_sink_webhook = {
    .name = "webhook",
    .max_in_flight = 1,
    .create = NULL, /* kigen_sink_webhook_new(): its setting is more than a string */
    .start = webhook_start,
    .send = webhook_send,
    .close = webhook_close,
    .free = webhook_free,
};
