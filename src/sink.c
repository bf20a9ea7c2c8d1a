/*
 * The dispatcher: one FIFO queue per enabled sink, one shared copy of each alert.
 *
 * An alert is copied once into an entry counted by the sinks that hold it. Each sink is fed
 * from its queue in order, at most its type's max_in_flight at a time. When the last sink lets
 * go of an entry, the entry moves to the done list and an idle handle reports it to the
 * caller from the loop, so that done_cb never runs inside kigen_sinks_deliver() and the
 * caller never sees re-entrancy.
 *
 * A reload replaces only the sinks whose setting changed. A replaced sink "retires": it takes
 * no new alerts, drains its queue with its old setting, then closes and is freed.
 *
 * journald, syslog and exec are one sink each at most (active[]); webhooks are as many as
 * alerts.webhooks lists (hooks[]). A webhook's sink is kept across a reload that keeps its
 * name, taking a changed setting in place: its durable queue (files named after it) has one
 * owner. One that went away retires; a webhook of its name that comes back before it began to
 * close takes it back, so that two queues never hold the same files.
 */
#include "sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#define DEFAULT_EXEC_TIMEOUT_MS 30000
#define DEFAULT_RETRY_MS        30000
#define DEFAULT_QUEUE_MAX       10000
#define DEFAULT_RETRY_FIRST_MS  60000    /* SPEC §12: 1 minute, */
#define DEFAULT_RETRY_MAX_MS    3600000  /* doubling to 1 hour, */
#define DEFAULT_RETRY_FOR_MS    86400000 /* for 24 hours */
#define DEFAULT_DURABLE_MAX     10000

enum {
    SINK_JOURNALD,
    SINK_SYSLOG,
    SINK_EXEC,
    SINK_MAIL,
    SINK_COUNT
};

static const struct kigen_sink_type *const types[SINK_COUNT] = {
    [SINK_JOURNALD] = &kigen_sink_journald,
    [SINK_SYSLOG] = &kigen_sink_syslog,
    [SINK_EXEC] = &kigen_sink_exec,
    [SINK_MAIL] = &kigen_sink_mail,
};

struct entry {
    struct kigen_alert *alert;
    kigen_sinks_done_cb done_cb;
    void *data;
    unsigned refs;     /* sinks that still hold the entry */
    unsigned failures; /* sinks that could not deliver it */
    struct entry *next;
};

struct slot {
    struct kigen_sinks *owner;
    struct kigen_sink *sink;
    char *target;        /* the setting it was made for; NULL for journald */
    struct entry **ring; /* waiting entries: ring[(head + i) % cap], i < n */
    size_t head, n, cap;
    unsigned in_flight;
    bool is_started;  /* slot_start() ran: its sink has handles */
    bool is_retiring; /* replaced by a reload: drains its queue, then closes */
    bool is_dropping; /* the queue overflowed and that was logged; until it empties */
    size_t dropped;
    struct slot *next;
};

struct kigen_sinks {
    uv_loop_t *loop;
    struct kigen_sink_limits limits;
    struct slot *active[SINK_COUNT]; /* the slots new alerts go to; NULL when disabled */
    struct slot **hooks;             /* and the webhooks', in the configuration's order */
    size_t n_hooks;
    struct slot *slots;      /* every slot, active and retiring */
    struct entry *done_head; /* entries every sink let go of, in order */
    struct entry **done_tail;
    uv_idle_t idle;   /* runs the done list; active while it is not empty */
    size_t pending;   /* entries whose done_cb has not run */
    unsigned closing; /* the idle handle and the slots not yet closed, after close */
    bool is_closing;
    void (*closed_cb)(void *data);
    void *closed_data;
};

static void idle_cb(uv_idle_t *idle);

static const char *sink_name(const struct kigen_sink *sink)
{
    return sink->name ? sink->name : sink->type->name;
}

/* The k-th slot that takes new alerts (NULL: that sink is off), k < n_taking(sinks). */
static struct slot *taking(const struct kigen_sinks *sinks, size_t k)
{
    return k < SINK_COUNT ? sinks->active[k] : sinks->hooks[k - SINK_COUNT];
}

static size_t n_taking(const struct kigen_sinks *sinks)
{
    return SINK_COUNT + sinks->n_hooks;
}

static void entry_free(struct entry *e)
{
    if (!e)
        return;
    kigen_alert_free(e->alert);
    free(e);
}

/* A sink let go of e. The last one hands it to the done list (or drops it when closing). */
static void entry_release(struct kigen_sinks *sinks, struct entry *e, bool failed)
{
    e->failures += failed;
    if (--e->refs > 0)
        return;
    if (sinks->is_closing) {
        sinks->pending--;
        entry_free(e);
        return;
    }
    e->next = NULL;
    *sinks->done_tail = e;
    sinks->done_tail = &e->next;
    if (!uv_is_active((uv_handle_t *)&sinks->idle))
        uv_idle_start(&sinks->idle, idle_cb);
}

/* Reports the done list as it is now; entries released by the callbacks wait for the next run. */
static void run_done(struct kigen_sinks *sinks)
{
    struct entry *e = sinks->done_head, *next;

    sinks->done_head = NULL;
    sinks->done_tail = &sinks->done_head;
    for (; e; e = next) {
        next = e->next;
        sinks->pending--;
        if (e->done_cb)
            e->done_cb(e->data, e->failures);
        entry_free(e);
    }
}

static void idle_cb(uv_idle_t *idle)
{
    struct kigen_sinks *sinks = container_of(idle, struct kigen_sinks, idle);

    run_done(sinks);
    if (!sinks->done_head)
        uv_idle_stop(idle);
}

static void maybe_closed(struct kigen_sinks *sinks)
{
    if (sinks->is_closing && sinks->closing == 0 && sinks->closed_cb)
        sinks->closed_cb(sinks->closed_data);
}

static void idle_closed_cb(uv_handle_t *handle)
{
    struct kigen_sinks *sinks = container_of((uv_idle_t *)handle, struct kigen_sinks, idle);

    sinks->closing--;
    maybe_closed(sinks);
}

static struct entry *ring_pop(struct slot *slot)
{
    struct entry *e = slot->ring[slot->head];

    slot->head = (slot->head + 1) % slot->cap;
    slot->n--;
    return e;
}

/* Makes room for one more entry without dropping one. Returns 0 or -ENOMEM. */
static int ring_reserve(struct slot *slot)
{
    struct entry **v;
    size_t cap;

    if (slot->n < slot->cap || slot->n >= slot->owner->limits.queue_max)
        return 0;
    cap = slot->cap ? slot->cap * 2 : 16;
    v = malloc(cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < slot->n; i++)
        v[i] = slot->ring[(slot->head + i) % slot->cap];
    free(slot->ring);
    slot->ring = v;
    slot->cap = cap;
    slot->head = 0;
    return 0;
}

/* Appends e after ring_reserve(); a full queue drops its oldest entry, a failure of that alert. */
static void ring_push(struct slot *slot, struct entry *e)
{
    while (slot->n >= slot->owner->limits.queue_max && slot->n > 0) {
        struct entry *old = ring_pop(slot);

        if (!slot->is_dropping)
            kigen_log_warn("The %s sink has %zu alerts waiting, dropping the oldest and "
                           "carrying on",
                           sink_name(slot->sink), slot->n + 1);
        slot->is_dropping = true;
        slot->dropped++;
        entry_release(slot->owner, old, true);
    }
    slot->ring[(slot->head + slot->n) % slot->cap] = e;
    slot->n++;
}

static void slot_free(struct slot *slot)
{
    if (!slot)
        return;
    if (slot->sink)
        slot->sink->type->free(slot->sink);
    free(slot->ring);
    free(slot->target);
    free(slot);
}

static void slot_unlink(struct slot *slot)
{
    struct slot **p = &slot->owner->slots;

    while (*p != slot)
        p = &(*p)->next;
    *p = slot->next;
}

/* Closes the sink; kigen_sink_closed() then frees the slot, perhaps before this returns. */
static void slot_close(struct slot *slot)
{
    struct kigen_sink *sink = slot->sink;

    if (sink->is_closing)
        return;
    sink->is_closing = true;
    slot->owner->closing++;
    sink->type->close(sink);
}

/* A retired slot closes once it has delivered everything it held. May free slot. */
static void slot_maybe_retire(struct slot *slot)
{
    if (slot->is_retiring && slot->n == 0 && slot->in_flight == 0)
        slot_close(slot);
}

/* Feeds the sink from its queue. May free slot (when it retires). */
static void slot_pump(struct slot *slot)
{
    struct kigen_sink *sink = slot->sink;

    while (!sink->is_closing && slot->n > 0 && slot->in_flight < sink->type->max_in_flight) {
        struct entry *e = ring_pop(slot);
        int r;

        slot->in_flight++;
        r = sink->type->send(sink, e->alert, e);
        if (r != 0) {
            slot->in_flight--;
            entry_release(slot->owner, e, r < 0);
        }
    }
    if (slot->n == 0 && slot->is_dropping) {
        kigen_log_warn("The %s sink caught up after dropping %zu alerts", sink_name(sink),
                       slot->dropped);
        slot->is_dropping = false;
        slot->dropped = 0;
    }
    slot_maybe_retire(slot);
}

void kigen_sink_finish(struct kigen_sink *sink, void *token, bool failed)
{
    struct slot *slot = sink->slot;

    slot->in_flight--;
    entry_release(slot->owner, token, failed);
    slot_pump(slot);
}

void kigen_sink_closed(struct kigen_sink *sink)
{
    struct slot *slot = sink->slot;
    struct kigen_sinks *sinks = slot->owner;

    slot_unlink(slot);
    slot_free(slot);
    sinks->closing--;
    maybe_closed(sinks);
}

/*
 * A slot for type i and target (NULL: a webhook, or a sink without one), holding its sink:
 * made here by the type's create() with config, or for webhook w. No handle yet. Returns 0,
 * -EINVAL (a webhook without its URL) or -ENOMEM.
 */
static int slot_new(struct kigen_sinks *sinks, int i, const char *target,
                    const struct kigen_config *config, const struct kigen_webhook *w,
                    struct slot **ret_slot)
{
    struct slot *slot = calloc(1, sizeof(*slot));
    int r;

    if (!slot)
        return -ENOMEM;
    slot->owner = sinks;
    if (target) {
        slot->target = strdup(target);
        if (!slot->target) {
            r = -ENOMEM;
            goto out;
        }
    }
    r = w ? kigen_sink_webhook_new(w, config->state_dir, &slot->sink)
          : types[i]->create(target, config, &slot->sink);
    if (r < 0)
        goto out;
    if (!w)
        slot->sink->type = types[i];
    slot->sink->limits = &sinks->limits;
    slot->sink->slot = slot;
    *ret_slot = slot;
    slot = NULL;
out:
    slot_free(slot);
    return r;
}

/*
 * What sink i should deliver to under alerts: "" for journald and mail, the path or command,
 * or NULL.
 */
static const char *wanted(const struct kigen_alerts *alerts, int i)
{
    const char *s = NULL;

    switch (i) {
    case SINK_JOURNALD:
        return alerts->journald ? "" : NULL;
    case SINK_SYSLOG:
        s = alerts->syslog;
        break;
    case SINK_EXEC:
        s = alerts->exec;
        break;
    case SINK_MAIL:
        return alerts->mail.sendmail.n ? "" : NULL;
    }
    return s && *s ? s : NULL;
}

static bool is_same(const struct slot *slot, int i, const char *want)
{
    if (!slot || !want)
        return !slot && !want;
    return !slot->target || strcmp(slot->target, want) == 0;
}

/* Starts a new slot and lets it take alerts. */
static void slot_start(struct kigen_sinks *sinks, struct slot *slot)
{
    slot->sink->type->start(slot->sink, sinks->loop);
    slot->is_started = true;
    slot->next = sinks->slots;
    sinks->slots = slot;
}

/* Whether slot is one of the n in v. */
static bool is_in(struct slot *const *v, size_t n, const struct slot *slot)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == slot)
            return true;
    return false;
}

/*
 * The slot of the webhook called name that hooks_prepare() can take: a current one, or one
 * retiring that has not begun to close. NULL when there is none.
 */
static struct slot *hook_slot(const struct kigen_sinks *sinks, const char *name)
{
    for (size_t j = 0; j < sinks->n_hooks; j++)
        if (kigen_sink_webhook_is_named(sinks->hooks[j]->sink, name))
            return sinks->hooks[j];
    for (struct slot *slot = sinks->slots; slot; slot = slot->next)
        if (slot->is_retiring && !slot->sink->is_closing &&
            kigen_sink_webhook_is_named(slot->sink, name))
            return slot;
    return NULL;
}

/*
 * The webhook slots for alerts, in *ret_hooks: the running one of each webhook whose name
 * stays (hook_slot()), a new one (not started) for each other. Nothing changes here.
 * Returns 0, -EINVAL or -ENOMEM.
 */
static int hooks_prepare(struct kigen_sinks *sinks, const struct kigen_config *config,
                         struct slot ***ret_hooks)
{
    const struct kigen_alerts *alerts = &config->alerts;
    size_t n = alerts->n_webhooks;
    struct slot **v = calloc(n ? n : 1, sizeof(*v));
    int r = 0;

    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct kigen_webhook *w = &alerts->webhooks[i];

        v[i] = hook_slot(sinks, w->name); /* names are unique in a configuration */
        if (!v[i]) {
            r = slot_new(sinks, 0, NULL, config, w, &v[i]);
            if (r < 0)
                break;
        }
    }
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            if (v[i] && !v[i]->is_started)
                slot_free(v[i]);
        free(v);
        return r;
    }
    *ret_hooks = v;
    return 0;
}

/*
 * Makes hooks (from hooks_prepare(), for webhooks) the webhook slots: starts the new ones,
 * takes back the retiring ones, gives a kept one a changed setting, and retires the others.
 * Returns 0, or -ENOMEM when a kept one could not take its setting (it keeps its old one).
 */
static int hooks_apply(struct kigen_sinks *sinks, struct slot **hooks, size_t n,
                       const struct kigen_webhook *webhooks)
{
    int r = 0;

    for (size_t i = 0; i < n; i++) {
        struct slot *slot = hooks[i];

        if (!slot->is_started) {
            slot_start(sinks, slot);
            continue;
        }
        slot->is_retiring = false;
        if (!kigen_sink_webhook_is_same(slot->sink, &webhooks[i])) {
            int q = kigen_sink_webhook_configure(slot->sink, &webhooks[i]);

            if (q < 0) {
                kigen_log_errno(KIGEN_LOG_WARNING, q, "The %s sink keeps its old setting",
                                sink_name(slot->sink));
                r = q;
            }
        }
    }
    for (size_t j = 0; j < sinks->n_hooks; j++) {
        struct slot *old = sinks->hooks[j];

        if (!is_in(hooks, n, old)) {
            old->is_retiring = true;
            slot_maybe_retire(old);
        }
    }
    free(sinks->hooks);
    sinks->hooks = hooks;
    sinks->n_hooks = n;
    return r;
}

/*
 * Moves sinks to the settings of alerts: allocates every new slot first (nothing changes when
 * one fails), then starts them and retires the slots they replace.
 */
static int apply(struct kigen_sinks *sinks, const struct kigen_config *config)
{
    struct slot *fresh[SINK_COUNT] = { NULL };
    bool change[SINK_COUNT] = { false };
    struct slot **hooks = NULL;
    int r = 0;

    for (int i = 0; i < SINK_COUNT; i++) {
        const char *want = wanted(&config->alerts, i);

        change[i] = !is_same(sinks->active[i], i, want);
        if (change[i] && want) {
            r = slot_new(sinks, i, *want ? want : NULL, config, NULL, &fresh[i]);
            if (r < 0)
                goto out;
        }
    }
    r = hooks_prepare(sinks, config, &hooks);
    if (r < 0)
        goto out;
    r = hooks_apply(sinks, hooks, config->alerts.n_webhooks, config->alerts.webhooks);
    /* Sinks that take a reload in place; one that cannot keeps its settings. */
    for (int i = 0; i < SINK_COUNT; i++) {
        struct slot *same = sinks->active[i];

        if (!change[i] && same && same->sink->type->configure) {
            int q = same->sink->type->configure(same->sink, config);

            if (q < 0)
                r = q;
        }
    }
    for (int i = 0; i < SINK_COUNT; i++) {
        struct slot *old = sinks->active[i];

        if (!change[i])
            continue;
        if (fresh[i])
            slot_start(sinks, fresh[i]);
        sinks->active[i] = fresh[i];
        fresh[i] = NULL;
        if (old) {
            old->is_retiring = true;
            slot_maybe_retire(old);
        }
    }
out:
    for (int i = 0; i < SINK_COUNT; i++)
        slot_free(fresh[i]);
    return r;
}

int kigen_sinks_new(uv_loop_t *loop, const struct kigen_config *config,
                    struct kigen_sinks **ret_sinks)
{
    struct kigen_sinks *sinks = calloc(1, sizeof(*sinks));
    int r;

    if (!sinks)
        return -ENOMEM;
    sinks->loop = loop;
    sinks->done_tail = &sinks->done_head;
    kigen_sinks_set_limits(sinks, &(struct kigen_sink_limits){ 0 });
    /* apply() starts sinks only once every allocation succeeded: a failure leaves no handle. */
    r = apply(sinks, config);
    if (r < 0) {
        kigen_sinks_free(sinks);
        return r;
    }
    uv_idle_init(loop, &sinks->idle);
    *ret_sinks = sinks;
    return 0;
}

void kigen_sinks_set_limits(struct kigen_sinks *sinks, const struct kigen_sink_limits *limits)
{
    const struct kigen_deliveries_limits *in = &limits->durable;
    struct kigen_deliveries_limits *d = &sinks->limits.durable;

    sinks->limits.exec_timeout_ms =
        limits->exec_timeout_ms ? limits->exec_timeout_ms : DEFAULT_EXEC_TIMEOUT_MS;
    sinks->limits.retry_ms = limits->retry_ms ? limits->retry_ms : DEFAULT_RETRY_MS;
    sinks->limits.queue_max = limits->queue_max ? limits->queue_max : DEFAULT_QUEUE_MAX;
    sinks->limits.exec_nofile = limits->exec_nofile;
    sinks->limits.journal_socket = limits->journal_socket; /* borrowed; NULL: the default */
    d->retry_first_ms = in->retry_first_ms ? in->retry_first_ms : DEFAULT_RETRY_FIRST_MS;
    d->retry_max_ms = in->retry_max_ms ? in->retry_max_ms : DEFAULT_RETRY_MAX_MS;
    d->retry_for_ms = in->retry_for_ms ? in->retry_for_ms : DEFAULT_RETRY_FOR_MS;
    d->max_pending = in->max_pending ? in->max_pending : DEFAULT_DURABLE_MAX;
}

int kigen_sinks_mail_digest(struct kigen_sinks *sinks, const char *key,
                            const struct kigen_alert *carrier)
{
    struct slot *slot = sinks->active[SINK_MAIL];

    if (sinks->is_closing)
        return -ESHUTDOWN;
    return slot ? kigen_sink_mail_digest(slot->sink, key, carrier) : -ENOENT;
}

int kigen_sinks_configure(struct kigen_sinks *sinks, const struct kigen_config *config)
{
    if (sinks->is_closing)
        return -ESHUTDOWN;
    return apply(sinks, config);
}

size_t kigen_sinks_stats(const struct kigen_sinks *sinks, struct kigen_sink_stats *ret, size_t max)
{
    size_t n = 0;

    /* Mail first, then the webhooks in the configuration's order. */
    for (size_t k = 0; k < n_taking(sinks) && n < max; k++) {
        const struct slot *slot = taking(sinks, k);

        if (!slot || !slot->sink->type->stats)
            continue;
        ret[n] = (struct kigen_sink_stats){ .name = sink_name(slot->sink) };
        slot->sink->type->stats(slot->sink, &ret[n]);
        n++;
    }
    return n;
}

int kigen_sinks_deliver(struct kigen_sinks *sinks, const struct kigen_alert *alert,
                        kigen_sinks_done_cb done_cb, void *data)
{
    struct entry *e = NULL;
    int r;

    if (sinks->is_closing)
        return -ESHUTDOWN;
    /* Room in every queue first, so that a failure leaves no sink holding the alert. */
    for (size_t k = 0; k < n_taking(sinks); k++) {
        if (taking(sinks, k)) {
            r = ring_reserve(taking(sinks, k));
            if (r < 0)
                goto out;
        }
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        r = -ENOMEM;
        goto out;
    }
    e->alert = kigen_alert_dup(alert);
    if (!e->alert) {
        r = -ENOMEM;
        goto out;
    }
    e->done_cb = done_cb;
    e->data = data;
    /* One reference for the call itself, so that a sink finishing at once cannot report e. */
    e->refs = 1;
    sinks->pending++;
    for (size_t k = 0; k < n_taking(sinks); k++) {
        if (taking(sinks, k)) {
            e->refs++;
            ring_push(taking(sinks, k), e);
        }
    }
    for (size_t k = 0; k < n_taking(sinks); k++)
        if (taking(sinks, k))
            slot_pump(taking(sinks, k));
    entry_release(sinks, e, false);
    e = NULL;
    r = 0;
out:
    entry_free(e);
    return r;
}

size_t kigen_sinks_pending(const struct kigen_sinks *sinks)
{
    return sinks->pending;
}

void kigen_sinks_close(struct kigen_sinks *sinks, void (*closed_cb)(void *data), void *data)
{
    struct slot *slot, *next;

    if (sinks->is_closing)
        return;
    sinks->is_closing = true;
    sinks->closed_cb = closed_cb;
    sinks->closed_data = data;
    /* Delivered alerts are reported: their callers may forget them. */
    run_done(sinks);
    sinks->closing++;
    uv_close((uv_handle_t *)&sinks->idle, idle_closed_cb);
    for (int i = 0; i < SINK_COUNT; i++)
        sinks->active[i] = NULL;
    free(sinks->hooks);
    sinks->hooks = NULL;
    sinks->n_hooks = 0;
    for (slot = sinks->slots; slot; slot = next) {
        next = slot->next;
        while (slot->n > 0)
            entry_release(sinks, ring_pop(slot), true);
        slot_close(slot);
    }
}

void kigen_sinks_free(struct kigen_sinks *sinks)
{
    if (!sinks)
        return;
    free(sinks->hooks);
    free(sinks);
}
