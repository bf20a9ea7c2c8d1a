/*
 * The webhook sinks (SPEC §12): one per alerts.webhooks entry, named "webhook:<name>", each
 * an HTTPS POST per alert of the entry's format (webhook.c). A 2xx answer is delivered;
 * any other answer, a transport error or the 10 s timeout is a failed attempt, logged by the
 * queue with the sink's name and the status or libcurl's reason. Alerts whose event is not in
 * the entry's `events` are delivered at once without a request, and are not queued.
 *
 * Durable, as mail is (deliveries.h): send() writes the alert to
 * state_dir/deliveries/webhook:<name>-<key>.json and the dispatcher hears it is done once
 * that file is written. The queue then POSTs it, one at a time per webhook, and retries with
 * backoff until retry_for_ms. The file holds the alert and its schedule, never the URL: a
 * retry takes the URL the sink has then. A reload keeps the sink (and its queue) of every
 * webhook whose name stays, and a changed URL, format, proxy, ca_file or events applies from
 * the next attempt. A webhook that goes away closes its queue; its files stay in state_dir and
 * are resumed when a webhook of that name comes back (or never, if it does not).
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

#include "deliveries.h"
#include "log.h"
#include "secret.h"
#include "sink.h"
#include "webhook.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define TIMEOUT_MS  10000
#define ANSWER_KEEP (64 * 1024)   /* bytes of an answer read (and dropped) before it is cut */
#define CLUE_LEN    8             /* a run of this many URL bytes in an error text hides it */
#define KEEP_MS     (3600 * 1000) /* a delivered alert's key is kept an hour, as mail's */

struct webhook_job {
    struct webhook_sink *sink;
    struct kigen_delivery *delivery;
    CURL *easy;
    struct curl_slist *headers;
    char *url; /* a secret: the URL of this POST, which a reload may change meanwhile */
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

/* What a reload may change in place. */
struct webhook_settings {
    char *url; /* a secret */
    enum kigen_webhook_format format;
    enum kigen_language language;
    char *proxy_setting; /* as configured, to compare with a reload's */
    char *ca_file;
    uint32_t events;
    char *proxy;    /* for CURLOPT_PROXY: "" is none */
    char *no_proxy; /* for CURLOPT_NOPROXY */
    char proxy_error[160];
};

/* An alert whose file is being written. */
struct webhook_add {
    struct webhook_sink *sink;
    void *token;
};

struct webhook_sink {
    struct kigen_sink base;
    char *label; /* "webhook:<name>" */
    char *name;
    char *dir; /* state_dir/deliveries */
    struct webhook_settings set;
    struct kigen_deliveries *q;
    unsigned adds;
    bool is_q_open;
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
    if (ws->base.is_closing && ws->open == 0 && !ws->jobs && !ws->is_q_open && ws->adds == 0)
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
 * Whether libcurl's error text may be logged: not when it repeats any part of url that may be
 * secret (the credentials before the host, the path, the query).
 */
static bool is_safe_to_log(const char *url, const char *text)
{
    const char *auth = strstr(url, "://"), *at, *rest;

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
    kigen_secret_free(job->url);
    free(job->body);
    free(job);
}

/*
 * Whether the POST got through; when not, why into why (the status, or libcurl's reason when
 * it names no secret part of the URL).
 */
static bool is_delivered(struct webhook_job *job, CURLcode result, long status, char *why,
                         size_t len)
{
    /* An answer cut after ANSWER_KEEP bytes still carried its status. */
    if (result == CURLE_WRITE_ERROR && job->answered > ANSWER_KEEP)
        result = CURLE_OK;
    if (result == CURLE_OK && status >= 200 && status < 300)
        return true;
    if (result == CURLE_OK)
        snprintf(why, len, "the server answered HTTP %ld", status);
    else
        snprintf(why, len, "%s",
                 job->errbuf[0] && is_safe_to_log(job->url, job->errbuf)
                     ? job->errbuf
                     : curl_easy_strerror(result));
    return false;
}

/* Reports every finished transfer to the queue. */
static void check_done(struct webhook_sink *ws)
{
    CURLMsg *msg;
    int left;

    /* multi is gone once the sink closed. */
    while (ws->multi && (msg = curl_multi_info_read(ws->multi, &left))) {
        struct webhook_job *job;
        struct kigen_delivery *d;
        CURLcode result = msg->data.result;
        char *private = NULL, why[CURL_ERROR_SIZE + 64] = "";
        long status = 0;
        bool ok;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private);
        job = (struct webhook_job *)(void *)private;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        ok = is_delivered(job, result, status, why, sizeof(why));
        d = job->delivery;
        job_free(job); /* msg is gone too */
        /* May start the next attempt: curl_multi_add_handle() is fine between info reads. */
        kigen_deliveries_attempted(d, ok, why);
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
    SET(CURLOPT_URL, job->url);
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
    if (ws->set.ca_file) {
        SET(CURLOPT_CAINFO, ws->set.ca_file);
        SET(CURLOPT_CAPATH, NULL); /* Debian's libcurl also looks in /etc/ssl/certs */
    }
    /* "" is no proxy at all: without it, libcurl would take https_proxy from the environment. */
    SET(CURLOPT_PROXY, ws->set.proxy);
    SET(CURLOPT_NOPROXY, ws->set.no_proxy);
    SET(CURLOPT_PROXYTYPE, (long)CURLPROXY_HTTP);
    SET(CURLOPT_HTTPPROXYTUNNEL, 1L);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, job);
#undef SET
    return c == CURLE_OK ? 0 : c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
}

/* The queue's attempt: one POST of alert with the settings of now. */
static int attempt(void *data, struct kigen_delivery *d, const struct kigen_alert *alert,
                   const char *key, int64_t created_ms)
{
    struct webhook_sink *ws = data;
    struct webhook_job *job = NULL;
    size_t len = 0;
    int r;

    if (ws->set.proxy_error[0]) {
        kigen_log_warn("The %s sink cannot POST %s: %s", ws->label, kigen_event_name(alert->event),
                       ws->set.proxy_error);
        return -EINVAL;
    }
    job = calloc(1, sizeof(*job));
    if (!job)
        return -ENOMEM;
    job->sink = ws;
    job->delivery = d;
    job->url = kigen_secret_dup(ws->set.url);
    if (!job->url) {
        r = -ENOMEM;
        goto fail;
    }
    r = kigen_webhook_payload(ws->set.format, ws->set.language, alert, &job->body, &len);
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
    if (job->easy) {
        curl_easy_cleanup(job->easy);
        job->easy = NULL;
    }
    job_free(job);
    return r;
}

/* A stop: the transfer is cancelled and reported failed at once (it stays pending on disk). */
static void abort_attempt(void *data, struct kigen_delivery *d)
{
    struct webhook_sink *ws = data;

    for (struct webhook_job *job = ws->jobs; job; job = job->next)
        if (job->delivery == d) {
            job_free(job);
            kigen_deliveries_attempted(d, false, "stopped");
            return;
        }
}

static const struct kigen_deliveries_ops webhook_ops = {
    .max_running = 1, /* one POST at a time per webhook, in order */
    .attempt = attempt,
    .abort = abort_attempt,
};

static void added_cb(void *data, int status)
{
    struct webhook_add *add = data;
    struct webhook_sink *ws = add->sink;

    ws->adds--;
    kigen_sink_finish(&ws->base, add->token, status < 0);
    free(add);
    maybe_closed(ws);
}

static int webhook_send(struct kigen_sink *sink, const struct kigen_alert *alert, void *token)
{
    struct webhook_sink *ws = container_of(sink, struct webhook_sink, base);
    struct webhook_add *add;
    int r;

    if (!(ws->set.events & (UINT32_C(1) << alert->event)))
        return 1; /* not wanted here: done, and not queued */
    add = ws->q ? malloc(sizeof(*add)) : NULL;
    if (!add)
        return kigen_log_errno(KIGEN_LOG_WARNING, -ENOMEM,
                               "The %s sink cannot queue %s, carrying on", ws->label,
                               kigen_event_name(alert->event));
    add->sink = ws;
    add->token = token;
    r = kigen_deliveries_add(ws->q, NULL, alert, KEEP_MS, added_cb, add);
    if (r == -EEXIST) {
        /* Held already (the engine's outbox, sent again after a crash): not twice. */
        free(add);
        return 1;
    }
    if (r < 0) {
        free(add);
        return kigen_log_errno(KIGEN_LOG_WARNING, r, "The %s sink cannot queue %s, carrying on",
                               ws->label, kigen_event_name(alert->event));
    }
    ws->adds++;
    return 0;
}

/* The proxy of SPEC §8 for CURLOPT_PROXY and CURLOPT_NOPROXY. Returns 0 or -ENOMEM. */
static int proxy_setup(struct webhook_settings *set, const char *setting)
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
        snprintf(set->proxy_error, sizeof(set->proxy_error),
                 "%s: only http:// proxies are supported", origin);
    host = host ? host + 3 : url;
    end = host + strcspn(host, "/?#");
    if (memchr(host, '@', (size_t)(end - host)))
        snprintf(set->proxy_error, sizeof(set->proxy_error),
                 "%s holds credentials, which kigen does not send to a proxy", origin);
    set->proxy = strdup(url);
    set->no_proxy = strdup(no_proxy);
    return set->proxy && set->no_proxy ? 0 : -ENOMEM;
}

static int dup_or_null(const char *s, char **ret)
{
    *ret = s ? strdup(s) : NULL;
    return !s || *ret ? 0 : -ENOMEM;
}

static void settings_done(struct webhook_settings *set)
{
    kigen_secret_free(set->url);
    free(set->proxy_setting);
    free(set->ca_file);
    free(set->proxy);
    free(set->no_proxy);
    memset(set, 0, sizeof(*set));
}

/* The settings of w, whose url_secret is set. Returns 0 or -ENOMEM. */
static int settings_init(struct webhook_settings *set, const struct kigen_webhook *w)
{
    memset(set, 0, sizeof(*set));
    set->url = kigen_secret_dup(w->url_secret);
    if (!set->url || dup_or_null(w->proxy, &set->proxy_setting) < 0 ||
        dup_or_null(w->ca_file, &set->ca_file) < 0 || proxy_setup(set, w->proxy) < 0) {
        settings_done(set);
        return -ENOMEM;
    }
    set->format = w->format;
    set->language = w->language;
    set->events = w->events;
    return 0;
}

static void webhook_free(struct kigen_sink *sink)
{
    struct webhook_sink *ws;

    if (!sink)
        return;
    ws = container_of(sink, struct webhook_sink, base);
    kigen_deliveries_free(ws->q);
    if (ws->multi)
        curl_multi_cleanup(ws->multi);
    settings_done(&ws->set);
    free(ws->label);
    free(ws->name);
    free(ws->dir);
    free(ws);
}

int kigen_sink_webhook_new(const struct kigen_webhook *w, const char *state_dir,
                           struct kigen_sink **ret_sink)
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
    if (asprintf(&ws->dir, "%s/deliveries", state_dir) < 0) {
        ws->dir = NULL;
        goto out;
    }
    if (dup_or_null(w->name, &ws->name) < 0 || settings_init(&ws->set, w) < 0)
        goto out;
    ws->multi = curl_multi_init();
    if (!ws->multi)
        goto out;
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

bool kigen_sink_webhook_is_named(const struct kigen_sink *sink, const char *name)
{
    const struct webhook_sink *ws = container_of(sink, const struct webhook_sink, base);

    return sink->type == &kigen_sink_webhook && is_same_string(ws->name, name);
}

bool kigen_sink_webhook_is_same(const struct kigen_sink *sink, const struct kigen_webhook *w)
{
    const struct webhook_sink *ws = container_of(sink, const struct webhook_sink, base);
    const struct webhook_settings *set = &ws->set;

    return is_same_string(ws->name, w->name) && is_same_string(set->url, w->url_secret) &&
           set->format == w->format && set->language == w->language &&
           is_same_string(set->proxy_setting, w->proxy) &&
           is_same_string(set->ca_file, w->ca_file) && set->events == w->events;
}

int kigen_sink_webhook_configure(struct kigen_sink *sink, const struct kigen_webhook *w)
{
    struct webhook_sink *ws = container_of(sink, struct webhook_sink, base);
    struct webhook_settings set;

    if (!w->url_secret)
        return -EINVAL;
    if (settings_init(&set, w) < 0)
        return -ENOMEM;
    /* A POST under way keeps what libcurl copied (URL, proxy, CA) and its own URL copy. */
    settings_done(&ws->set);
    ws->set = set;
    return 0;
}

static void webhook_start(struct kigen_sink *sink, uv_loop_t *loop)
{
    struct webhook_sink *ws = container_of(sink, struct webhook_sink, base);
    int r;

    ws->loop = loop;
    uv_timer_init(loop, &ws->timer);
    ws->timer.data = ws;
    ws->open = 1;
    curl_multi_setopt(ws->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(ws->multi, CURLMOPT_SOCKETDATA, ws);
    curl_multi_setopt(ws->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(ws->multi, CURLMOPT_TIMERDATA, ws);
    /*
     * Last: loading may start an attempt at once. The dispatcher's limits outlive the sink;
     * the queue reads them where they are.
     */
    r = kigen_deliveries_new(loop, ws->dir, ws->label, &webhook_ops, ws, &sink->limits->durable,
                             &ws->q);
    if (r < 0)
        kigen_log_errno(KIGEN_LOG_ERR, r, "Cannot start the %s queue", ws->label);
    ws->is_q_open = ws->q != NULL;
}

static void q_closed_cb(void *data)
{
    struct webhook_sink *ws = data;

    ws->is_q_open = false;
    maybe_closed(ws);
}

static void webhook_close(struct kigen_sink *sink)
{
    struct webhook_sink *ws = container_of(sink, struct webhook_sink, base);

    /* Aborts the POST under way (abort_attempt()); what is pending stays on disk. */
    if (ws->q)
        kigen_deliveries_close(ws->q, q_closed_cb, ws);
    while (ws->jobs)
        job_free(ws->jobs); /* none: every job is the queue's attempt */
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

static void webhook_stats(const struct kigen_sink *sink, struct kigen_sink_stats *ret)
{
    const struct webhook_sink *ws = container_of(sink, const struct webhook_sink, base);

    ret->pending = ws->q ? kigen_deliveries_pending(ws->q) : 0;
    ret->failed = ws->q ? kigen_deliveries_failed(ws->q) : 0;
}

const struct kigen_sink_type kigen_sink_webhook = {
    .name = "webhook",
    .max_in_flight = 64, /* file writes on the thread pool; POSTs have their own bound */
    .create = NULL,      /* kigen_sink_webhook_new(): its setting is more than a string */
    .start = webhook_start,
    .send = webhook_send,
    .close = webhook_close,
    .free = webhook_free,
    .stats = webhook_stats,
};
