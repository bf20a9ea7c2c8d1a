/*
 * Durable deliveries (deliveries.h). One list per queue, oldest first, of items that are
 * pending (waiting for their next attempt, or under way) or done (delivered or given up, kept
 * as a small file until until_ms so that the same key is not queued again). One timer serves
 * the next attempt and the next removal.
 *
 * File format, one JSON object (version 1):
 *   pending: {"version":1,"sink":S,"key":K,"created_ms":T,"first_ms":T,"attempts":N,
 *             "next_ms":T,"keep_ms":N,"alert":{"event":E,"priority":P,"message":M,
 *             "fields":[[NAME,VALUE],...]}}
 *   done:    {"version":1,"sink":S,"key":K,"done":"delivered"|"failed","until_ms":T}
 * Times are wall-clock milliseconds since the epoch: a restart resumes the schedule.
 */
#include "deliveries.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cert.h"
#include "log.h"
#include "metrics.h"

#define FILE_MAX (1 << 20) /* a delivery file larger than this is damaged */

struct kigen_delivery {
    struct kigen_deliveries *q;
    char key[KIGEN_DELIVERIES_KEY_MAX + 1];
    char *path;
    struct kigen_alert *alert; /* NULL once done */
    int64_t created_ms;
    int64_t first_ms; /* the first attempt; 0 before it */
    int64_t next_ms;  /* pending: the next attempt */
    int64_t until_ms; /* done: when the file goes */
    uint64_t keep_ms;
    unsigned attempts;
    bool is_done;
    bool is_delivered;
    bool is_running;
    bool is_written; /* on disk (or could not be, and goes on from memory) */
    bool is_writing;
    bool is_save_again;
    bool is_unlinking;
    void (*add_cb)(void *data, int status);
    void *add_data;
    struct kigen_delivery *prev, *next;
};

struct kigen_deliveries {
    uv_loop_t *loop;
    char *dir;
    char *name;  /* the sink's, for messages */
    char *fname; /* the sink's name made safe for a file name (file_prefix) */
    const struct kigen_deliveries_ops *ops;
    void *data;
    const struct kigen_deliveries_limits *limits;
    struct kigen_delivery *head, *tail;
    size_t pending;
    uint64_t failed;
    unsigned running;
    unsigned io; /* writes and unlinks in flight */
    uv_timer_t timer;
    bool is_closing;
    bool is_write_failing;
    bool is_dropping;
    void (*closed_cb)(void *data);
    void *closed_data;
};

static void schedule(struct kigen_deliveries *q);

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- keys and names ---- */

static void hash_part(EVP_MD_CTX *ctx, const char *s)
{
    EVP_DigestUpdate(ctx, s, strlen(s) + 1); /* with its NUL: parts cannot run together */
}

void kigen_deliveries_key(const struct kigen_alert *alert, char ret[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char priority[16];

    snprintf(priority, sizeof(priority), "%d", alert->priority);
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        /* Only for ENOMEM: a key that never matches another. */
        snprintf(ret, 33, "%016llx%016llx", (unsigned long long)now_ms(),
                 (unsigned long long)(uintptr_t)alert);
        EVP_MD_CTX_free(ctx);
        return;
    }
    hash_part(ctx, kigen_event_name(alert->event));
    hash_part(ctx, priority);
    hash_part(ctx, alert->message);
    for (size_t i = 0; i < alert->n_fields; i++) {
        hash_part(ctx, alert->fields[i].name);
        hash_part(ctx, alert->fields[i].value);
    }
    EVP_DigestFinal_ex(ctx, md, &n);
    EVP_MD_CTX_free(ctx);
    kigen_bytes_to_hex(md, 16, ret);
}

static bool is_plain(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == ':';
}

/* A key for a file name: every byte outside [A-Za-z0-9_.:-] made '_'; malloc'd or NULL. */
static char *safe_name(const char *s)
{
    char *t = strdup(s);

    for (char *p = t; p && *p; p++)
        if (!is_plain(*p) && *p != '-')
            *p = '_';
    return t;
}

/*
 * The sink's part of its file names, one to one with the name: bytes outside [A-Za-z0-9_.:]
 * as %XX ('-' included, so that the first '-' of a file name ends it: "webhook:team" does not
 * take the files of "webhook:team-chat"). A name whose part would pass FNAME_MAX keeps its
 * start and ends in '~' and 16 hex digits of its SHA-256 ('~' is never plain), so that a file
 * name stays under NAME_MAX. "mail" stays "mail". malloc'd or NULL.
 */
#define FNAME_MAX 120
static char *file_prefix(const char *name)
{
    size_t len = strlen(name), n = 0;
    char *t = malloc(3 * len + 1);

    if (!t)
        return NULL;
    for (const char *p = name; *p; p++) {
        if (is_plain(*p))
            t[n++] = *p;
        else
            n += (size_t)snprintf(t + n, 4, "%%%02x", (unsigned char)*p);
    }
    t[n] = '\0';
    if (n > FNAME_MAX) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        size_t cut = FNAME_MAX - 17;

        if (!EVP_Digest(name, len, md, &mdlen, EVP_sha256(), NULL)) {
            free(t);
            return NULL;
        }
        /* Not inside a %XX. */
        if (cut >= 1 && t[cut - 1] == '%')
            cut -= 1;
        else if (cut >= 2 && t[cut - 2] == '%')
            cut -= 2;
        t[cut] = '~';
        kigen_bytes_to_hex(md, 8, t + cut + 1);
    }
    return t;
}

static const char *sha_prefix(const struct kigen_alert *alert, char buf[13])
{
    const char *sha = alert ? kigen_alert_get(alert, "KIGEN_SHA256") : NULL;

    snprintf(buf, 13, "%.12s", sha ? sha : "-");
    return buf;
}

/* ---- the list ---- */

static void link_tail(struct kigen_deliveries *q, struct kigen_delivery *d)
{
    d->prev = q->tail;
    d->next = NULL;
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
}

static void item_free(struct kigen_delivery *d)
{
    if (!d)
        return;
    kigen_alert_free(d->alert);
    free(d->path);
    free(d);
}

static void item_remove(struct kigen_delivery *d)
{
    struct kigen_deliveries *q = d->q;

    if (d->prev)
        d->prev->next = d->next;
    else
        q->head = d->next;
    if (d->next)
        d->next->prev = d->prev;
    else
        q->tail = d->prev;
    if (!d->is_done)
        q->pending--;
    item_free(d);
}

static struct kigen_delivery *find(const struct kigen_deliveries *q, const char *key)
{
    for (struct kigen_delivery *d = q->head; d; d = d->next)
        if (strcmp(d->key, key) == 0)
            return d;
    return NULL;
}

static void maybe_closed(struct kigen_deliveries *q)
{
    if (q->is_closing && q->running == 0 && q->io == 0 && q->closed_cb) {
        void (*cb)(void *) = q->closed_cb;

        q->closed_cb = NULL;
        cb(q->closed_data);
    }
}

/* ---- files ---- */

/* A JSON string of s, its bytes outside UTF-8 made '?' when it is not valid UTF-8. */
static json_t *text_json(const char *s)
{
    json_t *j = json_string(s);
    char *t;

    if (j)
        return j;
    t = strdup(s);
    for (char *p = t; p && *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = t ? json_string(t) : NULL;
    free(t);
    return j;
}

static json_t *alert_json(const struct kigen_alert *a)
{
    json_t *fields = json_array(), *j;

    for (size_t i = 0; fields && i < a->n_fields; i++)
        if (json_array_append_new(fields, json_pack("[o,o]", text_json(a->fields[i].name),
                                                    text_json(a->fields[i].value))) < 0) {
            json_decref(fields);
            return NULL;
        }
    j = json_pack("{s:s, s:i, s:o, s:o}", "event", kigen_event_name(a->event), "priority",
                  a->priority, "message", text_json(a->message), "fields", fields);
    if (j && a->holder_maintenance &&
        json_object_set_new(j, "holder_maintenance", text_json(a->holder_maintenance)) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static char *item_text(const struct kigen_delivery *d)
{
    const struct kigen_deliveries *q = d->q;
    json_t *j;
    char *text;

    if (d->is_done)
        j = json_pack("{s:i, s:s, s:s, s:s, s:I}", "version", 1, "sink", q->name, "key", d->key,
                      "done", d->is_delivered ? "delivered" : "failed", "until_ms",
                      (json_int_t)d->until_ms);
    else
        j = json_pack("{s:i, s:s, s:s, s:I, s:I, s:i, s:I, s:I, s:o}", "version", 1, "sink",
                      q->name, "key", d->key, "created_ms", (json_int_t)d->created_ms, "first_ms",
                      (json_int_t)d->first_ms, "attempts", (int)d->attempts, "next_ms",
                      (json_int_t)d->next_ms, "keep_ms", (json_int_t)d->keep_ms, "alert",
                      alert_json(d->alert));
    if (!j)
        return NULL;
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

static int item_save(struct kigen_delivery *d);

static void write_done_cb(int status, void *data)
{
    struct kigen_delivery *d = data;
    struct kigen_deliveries *q = d->q;
    void (*add_cb)(void *, int) = d->add_cb;

    q->io--;
    d->is_writing = false;
    if (status < 0 && !q->is_write_failing) {
        kigen_log_errno(KIGEN_LOG_WARNING, status,
                        "Cannot write the pending %s deliveries to '%s', delivering from memory",
                        q->name, q->dir);
        q->is_write_failing = true;
    } else if (status == 0 && q->is_write_failing) {
        kigen_log_notice("Pending %s deliveries are written to '%s' again", q->name, q->dir);
        q->is_write_failing = false;
    }
    d->is_written = true;
    d->add_cb = NULL;
    if (q->is_closing) {
        if (add_cb)
            add_cb(d->add_data, -ECANCELED);
        maybe_closed(q);
        return;
    }
    if (d->is_save_again) {
        d->is_save_again = false;
        (void)item_save(d); /* a failure: it goes on from memory */
    }
    if (add_cb)
        add_cb(d->add_data, 0);
    schedule(q);
}

/*
 * Writes what d is now to its file; one write at a time per item. Returns 0, or -ENOMEM when
 * the write could not start (d then goes on from memory).
 */
static int item_save(struct kigen_delivery *d)
{
    struct kigen_deliveries *q = d->q;
    char *text;
    int r;

    if (d->is_writing) {
        d->is_save_again = true;
        return 0;
    }
    text = item_text(d);
    if (!text)
        return -ENOMEM;
    d->is_writing = true;
    q->io++;
    r = kigen_textfile_write(q->loop, d->path, text, strlen(text), write_done_cb, d);
    if (r < 0) {
        d->is_writing = false;
        q->io--;
    }
    return r;
}

static void unlink_cb(uv_fs_t *req)
{
    struct kigen_delivery *d = req->data;
    struct kigen_deliveries *q = d->q;

    uv_fs_req_cleanup(req);
    free(req);
    q->io--;
    item_remove(d);
    maybe_closed(q);
}

/* Removes d's file, then d. */
static void item_unlink(struct kigen_delivery *d)
{
    uv_fs_t *req = malloc(sizeof(*req));

    d->is_unlinking = true;
    if (!req || uv_fs_unlink(d->q->loop, req, d->path, unlink_cb) < 0) {
        free(req);
        (void)unlink(d->path);
        item_remove(d);
        return;
    }
    req->data = d;
    d->q->io++;
}

/* ---- the schedule ---- */

/* d is delivered or given up: it stays as a done file for keep_ms. */
static void item_finish(struct kigen_delivery *d, bool is_delivered)
{
    struct kigen_deliveries *q = d->q;

    d->is_done = true;
    d->is_delivered = is_delivered;
    d->until_ms = now_ms() + (int64_t)d->keep_ms;
    kigen_alert_free(d->alert);
    d->alert = NULL;
    q->pending--;
    if (!is_delivered)
        q->failed++;
    (void)item_save(d); /* a failure: the done mark stays in memory */
}

static void give_up(struct kigen_delivery *d, const char *why)
{
    char sha[13];

    kigen_log_err("Giving up the %s delivery for %s (sha256 %s) after %u attempts: %s", d->q->name,
                  kigen_event_name(d->alert->event), sha_prefix(d->alert, sha), d->attempts, why);
    item_finish(d, false);
}

static void failed_attempt(struct kigen_delivery *d, const char *reason)
{
    const struct kigen_deliveries_limits *lim = d->q->limits;
    int64_t now = now_ms(), end = d->first_ms + (int64_t)lim->retry_for_ms;
    uint64_t delay = lim->retry_first_ms;
    char sha[13];

    if (!reason || !*reason)
        reason = "no reason given";
    if (now >= end) {
        give_up(d, reason);
        return;
    }
    for (unsigned i = 1; i < d->attempts && delay < lim->retry_max_ms; i++)
        delay *= 2;
    if (delay > lim->retry_max_ms)
        delay = lim->retry_max_ms;
    d->next_ms = now + (int64_t)delay;
    if (d->next_ms > end)
        d->next_ms = end; /* one last try when the time is up */
    kigen_log(d->attempts == 1 ? KIGEN_LOG_WARNING : KIGEN_LOG_INFO,
              "Cannot deliver %s for %s (sha256 %s), attempt %u: %s; retrying in %lld s",
              d->q->name, kigen_event_name(d->alert->event), sha_prefix(d->alert, sha), d->attempts,
              reason, (long long)((d->next_ms - now + 999) / 1000));
    (void)item_save(d); /* a failure: the old schedule stays on disk, this one in memory */
}

void kigen_deliveries_attempted(struct kigen_delivery *d, bool is_delivered, const char *reason)
{
    struct kigen_deliveries *q = d->q;

    d->is_running = false;
    q->running--;
    if (q->is_closing) {
        maybe_closed(q); /* it stays pending on disk for the next start */
        return;
    }
    if (is_delivered) {
        char sha[13];

        kigen_log_info("Delivered %s for %s (sha256 %s)", q->name,
                       kigen_event_name(d->alert->event), sha_prefix(d->alert, sha));
        item_finish(d, true);
    } else {
        failed_attempt(d, reason);
    }
    schedule(q);
}

static void timer_cb(uv_timer_t *timer)
{
    schedule(timer->data);
}

/*
 * Starts what is due (attempts up to max_running, oldest first), removes done files whose time
 * is up, and arms the timer for the next of either. Linear in the items.
 */
static void schedule(struct kigen_deliveries *q)
{
    int64_t now = now_ms(), next = INT64_MAX;
    struct kigen_delivery *d, *following;

    if (q->is_closing)
        return;
    for (d = q->head; d; d = following) {
        following = d->next;
        if (d->is_writing || d->is_unlinking || !d->is_written)
            continue;
        if (d->is_done) {
            if (d->until_ms <= now)
                item_unlink(d);
            else if (d->until_ms < next)
                next = d->until_ms;
            continue;
        }
        if (d->is_running)
            continue;
        if (d->next_ms > now) {
            if (d->next_ms < next)
                next = d->next_ms;
            continue;
        }
        if (q->running >= q->ops->max_running)
            continue; /* an attempt's end schedules again */
        if (!d->first_ms)
            d->first_ms = now;
        d->attempts++;
        d->is_running = true;
        q->running++;
        if (q->ops->attempt(q->data, d, d->alert, d->key, d->created_ms) < 0) {
            d->is_running = false;
            q->running--;
            failed_attempt(d, "cannot start");
            if (!d->is_done && d->next_ms < next)
                next = d->next_ms;
        }
    }
    if (next == INT64_MAX) {
        uv_timer_stop(&q->timer);
        return;
    }
    uv_timer_start(&q->timer, timer_cb, next > now ? (uint64_t)(next - now) : 0, 0);
}

/* ---- the queue ---- */

static struct kigen_delivery *item_new(struct kigen_deliveries *q, const char *key)
{
    struct kigen_delivery *d = calloc(1, sizeof(*d));
    char *safe = safe_name(key);

    if (!d || !safe || asprintf(&d->path, "%s/%s-%s.json", q->dir, q->fname, safe) < 0) {
        free(safe);
        free(d);
        return NULL;
    }
    free(safe);
    d->q = q;
    snprintf(d->key, sizeof(d->key), "%s", key);
    return d;
}

bool kigen_deliveries_knows(const struct kigen_deliveries *q, const char *key)
{
    return find(q, key) != NULL;
}

int kigen_deliveries_add(struct kigen_deliveries *q, const char *key,
                         const struct kigen_alert *alert, uint64_t keep_ms,
                         void (*done_cb)(void *data, int status), void *data)
{
    struct kigen_delivery *d;
    char hash[33];

    if (q->is_closing)
        return -ESHUTDOWN;
    if (!key) {
        kigen_deliveries_key(alert, hash);
        key = hash;
    }
    if (find(q, key))
        return -EEXIST;
    d = item_new(q, key);
    if (!d || !(d->alert = kigen_alert_dup(alert))) {
        item_free(d);
        return -ENOMEM;
    }
    d->created_ms = d->next_ms = now_ms();
    d->keep_ms = keep_ms;
    d->add_cb = done_cb;
    d->add_data = data;
    /* Room for it: the oldest waiting that is not under way is given up. */
    for (struct kigen_delivery *old = q->head; old && q->pending >= q->limits->max_pending;
         old = old->next) {
        if (old->is_done || old->is_running || !old->is_written)
            continue;
        if (!q->is_dropping)
            kigen_log_warn("%zu %s deliveries are waiting, giving up the oldest", q->pending,
                           q->name);
        q->is_dropping = true;
        give_up(old, "too many waiting");
    }
    if (q->pending < q->limits->max_pending / 2)
        q->is_dropping = false;
    link_tail(q, d);
    q->pending++;
    if (item_save(d) < 0) {
        d->add_cb = NULL;
        item_remove(d);
        return -ENOMEM;
    }
    return 0;
}

size_t kigen_deliveries_pending(const struct kigen_deliveries *q)
{
    return q->pending;
}

uint64_t kigen_deliveries_failed(const struct kigen_deliveries *q)
{
    return q->failed;
}

/* ---- loading ---- */

static int read_small(int dirfd, const char *name, char **ret_text, size_t *ret_len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    char *buf = NULL;
    ssize_t n;
    int r = 0;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        r = -EINVAL;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        r = -ENOMEM;
        goto out;
    }
    n = read(fd, buf, (size_t)st.st_size);
    if (n < 0) {
        r = -errno;
        goto out;
    }
    buf[n] = '\0';
    *ret_text = buf;
    *ret_len = (size_t)n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return r;
}

static struct kigen_alert *alert_from_json(json_t *j)
{
    const char *event, *message, *holder_maintenance = NULL;
    json_t *fields, *v;
    struct kigen_alert *a;
    int priority, ev;
    size_t i;

    if (json_unpack(j, "{s:s, s:i, s:s, s:o, s?s}", "event", &event, "priority", &priority,
                    "message", &message, "fields", &fields, "holder_maintenance",
                    &holder_maintenance) < 0 ||
        (ev = kigen_event_from_name(event)) < 0 || !json_is_array(fields))
        return NULL;
    a = kigen_alert_new(ev, message);
    if (!a)
        return NULL;
    if (holder_maintenance && !(a->holder_maintenance = strdup(holder_maintenance))) {
        kigen_alert_free(a);
        return NULL;
    }
    a->priority = priority;
    json_array_foreach(fields, i, v)
    {
        const char *name, *value;

        if (json_unpack(v, "[s,s]", &name, &value) < 0) {
            kigen_alert_free(a);
            return NULL;
        }
        if (strcmp(name, "KIGEN_EVENT") == 0)
            continue; /* kigen_alert_new() put it first */
        if (kigen_alert_add(a, name, value) < 0) {
            kigen_alert_free(a);
            return NULL;
        }
    }
    return a;
}

/*
 * An item from a file's text, or NULL when it is damaged (errno EINVAL), another sink's
 * (ESRCH: left alone) or ENOMEM.
 */
static struct kigen_delivery *item_parse(struct kigen_deliveries *q, const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *alert = NULL;
    struct kigen_delivery *d = NULL;
    const char *key, *done = NULL, *sink = NULL;
    json_int_t created = 0, first = 0, next = 0, keep = 0, until = 0;
    int version = 0, attempts = 0;

    errno = EINVAL;
    if (!j ||
        json_unpack(j, "{s:i, s:s, s?:s, s?:s, s?:I, s?:I, s?:i, s?:I, s?:I, s?:I, s?:o}",
                    "version", &version, "key", &key, "sink", &sink, "done", &done, "created_ms",
                    &created, "first_ms", &first, "attempts", &attempts, "next_ms", &next,
                    "keep_ms", &keep, "until_ms", &until, "alert", &alert) < 0)
        goto out;
    if (sink && strcmp(sink, q->name) != 0) {
        errno = ESRCH; /* another sink's whose name makes the same file prefix: not ours */
        goto out;
    }
    if (version != 1 || !*key || strlen(key) > KIGEN_DELIVERIES_KEY_MAX || attempts < 0 ||
        keep < 0 || (!done && !alert))
        goto out;
    d = item_new(q, key);
    if (!d) {
        errno = ENOMEM;
        goto out;
    }
    d->is_written = true;
    if (done) {
        d->is_done = true;
        d->is_delivered = strcmp(done, "delivered") == 0;
        d->until_ms = until;
    } else {
        d->alert = alert_from_json(alert);
        if (!d->alert) {
            item_free(d);
            d = NULL;
            goto out;
        }
        d->created_ms = created;
        d->first_ms = first;
        d->attempts = (unsigned)attempts;
        d->next_ms = next;
        d->keep_ms = (uint64_t)keep;
    }
out:
    json_decref(j);
    return d;
}

static int by_created(const void *a, const void *b)
{
    const struct kigen_delivery *x = *(struct kigen_delivery *const *)a;
    const struct kigen_delivery *y = *(struct kigen_delivery *const *)b;
    int64_t tx = x->is_done ? x->until_ms : x->created_ms;
    int64_t ty = y->is_done ? y->until_ms : y->created_ms;

    return tx < ty ? -1 : tx > ty;
}

/* Moves a damaged file aside as NAME.bad. */
static void set_aside(struct kigen_deliveries *q, int dirfd, const char *name, const char *why)
{
    char bad[512];

    snprintf(bad, sizeof(bad), "%s.bad", name);
    if (renameat(dirfd, name, dirfd, bad) < 0)
        (void)unlinkat(dirfd, name, 0);
    kigen_log_warn("The %s delivery file '%s/%s' is damaged (%s); kept as '%s', skipping", q->name,
                   q->dir, name, why, bad);
}

static void load(struct kigen_deliveries *q)
{
    DIR *dir = opendir(q->dir);
    struct kigen_delivery **v = NULL, *d;
    size_t n = 0, cap = 0, plen = strlen(q->fname);
    struct dirent *e;

    if (!dir) {
        kigen_log_errno(KIGEN_LOG_WARNING, -errno,
                        "Cannot read the pending %s deliveries in '%s', starting without", q->name,
                        q->dir);
        return;
    }
    while ((e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        char *text = NULL;
        size_t tlen = 0;
        int r;

        if (len <= plen + 6 || strncmp(e->d_name, q->fname, plen) != 0 || e->d_name[plen] != '-')
            continue;
        if (strstr(e->d_name, ".json.tmp.")) {
            (void)unlinkat(dirfd(dir), e->d_name, 0); /* a write cut short by a crash */
            continue;
        }
        if (strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        r = read_small(dirfd(dir), e->d_name, &text, &tlen);
        if (r == -ENOMEM)
            break;
        d = r < 0 ? NULL : item_parse(q, text, tlen);
        free(text);
        if (!d) {
            if (errno == ENOMEM)
                break;
            if (errno == ESRCH)
                continue;
            set_aside(q, dirfd(dir), e->d_name, r < 0 ? strerror(-r) : "not a delivery record");
            continue;
        }
        /* Its name must be its key's: else it would be written again under another one. */
        if (strcmp(strrchr(d->path, '/') + 1, e->d_name) != 0) {
            item_free(d);
            set_aside(q, dirfd(dir), e->d_name, "its name is not its key's");
            continue;
        }
        if (n == cap) {
            struct kigen_delivery **w = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));

            if (!w) {
                item_free(d);
                break;
            }
            v = w;
        }
        v[n++] = d;
    }
    closedir(dir);
    if (n)
        qsort(v, n, sizeof(*v), by_created);
    for (size_t i = 0; i < n; i++) {
        link_tail(q, v[i]);
        if (!v[i]->is_done)
            q->pending++;
    }
    free(v);
    if (q->pending)
        kigen_log_notice("Resuming %zu pending %s deliveries", q->pending, q->name);
}

int kigen_deliveries_new(uv_loop_t *loop, const char *dir, const char *name,
                         const struct kigen_deliveries_ops *ops, void *data,
                         const struct kigen_deliveries_limits *limits,
                         struct kigen_deliveries **ret_q)
{
    struct kigen_deliveries *q = calloc(1, sizeof(*q));

    if (!q)
        return -ENOMEM;
    q->dir = strdup(dir);
    q->name = strdup(name);
    q->fname = file_prefix(name);
    if (!q->dir || !q->name || !q->fname) {
        kigen_deliveries_free(q);
        return -ENOMEM;
    }
    q->loop = loop;
    q->ops = ops;
    q->data = data;
    q->limits = limits;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        kigen_log_errno(KIGEN_LOG_WARNING, -errno, "Cannot create '%s'", dir);
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    load(q);
    schedule(q);
    *ret_q = q;
    return 0;
}

static void timer_closed_cb(uv_handle_t *handle)
{
    struct kigen_deliveries *q = handle->data;

    q->io--;
    maybe_closed(q);
}

void kigen_deliveries_close(struct kigen_deliveries *q, void (*closed_cb)(void *data), void *data)
{
    if (q->is_closing)
        return;
    q->is_closing = true;
    q->closed_cb = closed_cb;
    q->closed_data = data;
    q->io++; /* the timer's close counts as I/O: closed_cb never runs from within here */
    uv_close((uv_handle_t *)&q->timer, timer_closed_cb);
    for (struct kigen_delivery *d = q->head; d; d = d->next)
        if (d->is_running)
            q->ops->abort(q->data, d);
}

void kigen_deliveries_free(struct kigen_deliveries *q)
{
    struct kigen_delivery *d, *next;

    if (!q)
        return;
    for (d = q->head; d; d = next) {
        next = d->next;
        item_free(d);
    }
    free(q->dir);
    free(q->name);
    free(q->fname);
    free(q);
}
