#include "engine.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "cert.h"
#include "err.h"
#include "i18n.h"
#include "policy.h"
#include "probe_sync.h"
#include "revocation.h"
#include "timeutil.h"

#define STATE_VERSION 1

/*
 * The instants (and steps) a state file may hold: within +-2^53 s, the range kigen_tz
 * accepts, so that now minus one, or one plus a duration (at most 100 years), cannot
 * overflow. A file with others is damaged.
 */
#define STATE_TIME_MAX ((json_int_t)1 << 53)

void kigen_engine_init(struct kigen_engine *engine)
{
    memset(engine, 0, sizeof(*engine));
    engine->next_id = 1;
    engine->next_reminder = INT64_MAX;
}

static void tracked_free(struct kigen_tracked *t)
{
    if (!t)
        return;
    free(t->line);
    free(t->subject);
    free(t->issuer);
    free(t->locations);
    free(t);
}

static void free_tracked_cb(const char *key, void *value, void *data)
{
    tracked_free(value);
}

static void free_error_cb(const char *key, void *value, void *data)
{
    free(value);
}

static void clear(struct kigen_engine *engine)
{
    kigen_strmap_foreach(&engine->certs, free_tracked_cb, NULL);
    kigen_strmap_clear(&engine->certs);
    kigen_strmap_foreach(&engine->errors, free_error_cb, NULL);
    kigen_strmap_clear(&engine->errors);
    kigen_strmap_foreach(&engine->probes_down, free_error_cb, NULL);
    kigen_strmap_clear(&engine->probes_down);
    kigen_strmap_foreach(&engine->roots, free_error_cb, NULL);
    kigen_strmap_clear(&engine->roots);
    kigen_strmap_foreach(&engine->marks, free_error_cb, NULL);
    kigen_strmap_clear(&engine->marks);
    for (size_t i = 0; i < engine->n_outbox; i++) {
        kigen_alert_free(engine->outbox[i].alert);
        free(engine->outbox[i].line);
    }
    engine->n_outbox = 0;
}

void kigen_engine_done(struct kigen_engine *engine)
{
    clear(engine);
    free(engine->outbox);
    engine->outbox = NULL;
    engine->cap_outbox = 0;
}

int kigen_engine_probe_set_down(struct kigen_engine *engine, const char *name, int64_t sent)
{
    int64_t *v = kigen_strmap_get(&engine->probes_down, name);

    if (!v) {
        v = malloc(sizeof(*v));
        if (!v || kigen_strmap_put(&engine->probes_down, name, v) < 0) {
            free(v);
            return -ENOMEM;
        }
    }
    *v = sent;
    engine->dirty = true;
    return 0;
}

void kigen_engine_probe_clear_down(struct kigen_engine *engine, const char *name)
{
    int64_t *v = kigen_strmap_remove(&engine->probes_down, name);

    if (v) {
        free(v);
        engine->dirty = true;
    }
}

/* "keystore\npath", the key of a keystore root; NULL on ENOMEM. */
static char *root_key(const char *keystore, const char *path)
{
    char *key;

    return asprintf(&key, "%s\n%s", keystore, path) < 0 ? NULL : key;
}

uint64_t kigen_engine_root_dev(const struct kigen_engine *engine, const char *keystore,
                               const char *path)
{
    char *key = root_key(keystore, path);
    const uint64_t *dev = key ? kigen_strmap_get(&engine->roots, key) : NULL;

    free(key);
    return dev ? *dev : 0;
}

int kigen_engine_set_root_dev(struct kigen_engine *engine, const char *keystore, const char *path,
                              uint64_t dev)
{
    char *key = root_key(keystore, path);
    uint64_t *v = key ? kigen_strmap_get(&engine->roots, key) : NULL;
    int r = 0;

    if (!key)
        return -ENOMEM;
    if (!v) {
        v = malloc(sizeof(*v));
        if (!v || kigen_strmap_put(&engine->roots, key, v) < 0) {
            free(v);
            r = -ENOMEM;
            goto out;
        }
    }
    if (*v != dev)
        engine->dirty = true;
    *v = dev;
out:
    free(key);
    return r;
}

int64_t kigen_engine_probe_down_since(const struct kigen_engine *engine, const char *name)
{
    const int64_t *v = kigen_strmap_get(&engine->probes_down, name);

    return v ? *v : 0;
}

/*
 * KIGEN_ALERT_ID: 128 random bits naming this alert wherever it goes, kept with it in the
 * outbox, so that two alerts that say the same thing (two reloads) stay two, and an alert
 * sent again after a crash is known as the same by the durable sinks (deliveries.h).
 */
static int add_alert_id(struct kigen_alert *alert)
{
    uint8_t id[16];
    char text[2 * sizeof(id) + 1];

    if (kigen_alert_get(alert, "KIGEN_ALERT_ID"))
        return 0;
    if (RAND_bytes(id, sizeof(id)) != 1)
        return -EIO;
    kigen_bytes_to_hex(id, sizeof(id), text);
    return kigen_alert_add(alert, "KIGEN_ALERT_ID", text);
}

int kigen_engine_queue(struct kigen_engine *engine, struct kigen_alert *alert)
{
    int r = add_alert_id(alert);

    if (r < 0) {
        kigen_alert_free(alert);
        return r;
    }
    if (engine->n_outbox == engine->cap_outbox) {
        size_t cap = engine->cap_outbox ? engine->cap_outbox * 2 : 16;
        struct kigen_outbox_item *v = realloc(engine->outbox, cap * sizeof(*v));

        if (!v) {
            kigen_alert_free(alert);
            return -ENOMEM;
        }
        engine->outbox = v;
        engine->cap_outbox = cap;
    }
    engine->outbox[engine->n_outbox++] =
        (struct kigen_outbox_item){ .id = engine->next_id++, .alert = alert };
    engine->dirty = true;
    return 0;
}

void kigen_engine_delivered(struct kigen_engine *engine, uint64_t id)
{
    for (size_t i = 0; i < engine->n_outbox; i++) {
        if (engine->outbox[i].id != id)
            continue;
        kigen_alert_free(engine->outbox[i].alert);
        free(engine->outbox[i].line);
        memmove(&engine->outbox[i], &engine->outbox[i + 1],
                (engine->n_outbox - i - 1) * sizeof(*engine->outbox));
        engine->n_outbox--;
        engine->dirty = true;
        return;
    }
}

/* ---- deciding ---- */

static int rank(enum kigen_state s)
{
    switch (s) {
    case KIGEN_STATE_OK:
        return 0;
    case KIGEN_STATE_NOT_YET_VALID:
        return 1;
    case KIGEN_STATE_RENEWAL_OPEN:
        return 2;
    case KIGEN_STATE_CRITICAL:
        return 3;
    case KIGEN_STATE_EXPIRED:
        return 4;
    case KIGEN_STATE_REVOKED:
        return 5;
    }
    return 0;
}

static int state_event(enum kigen_state s)
{
    switch (s) {
    case KIGEN_STATE_RENEWAL_OPEN:
        return KIGEN_EVENT_CERT_RENEWAL_OPEN;
    case KIGEN_STATE_CRITICAL:
        return KIGEN_EVENT_CERT_CRITICAL;
    case KIGEN_STATE_EXPIRED:
        return KIGEN_EVENT_CERT_EXPIRED;
    case KIGEN_STATE_REVOKED:
        return KIGEN_EVENT_CERT_REVOKED;
    default:
        return -1;
    }
}

/* The smallest notify_before step already crossed at now, or 0. */
static int64_t crossed_step(const struct kigen_policy *p, int64_t not_after, int64_t now)
{
    int64_t step = 0;

    for (size_t i = 0; i < p->n_notify; i++)
        if (now >= not_after - p->notify_before[i] && (!step || p->notify_before[i] < step))
            step = p->notify_before[i];
    return step;
}

static void format_step(int64_t s, char *out, size_t len)
{
    if (s % 86400 == 0)
        snprintf(out, len, "%lldd", (long long)(s / 86400));
    else if (s % 3600 == 0)
        snprintf(out, len, "%lldh", (long long)(s / 3600));
    else
        snprintf(out, len, "%llds", (long long)s);
}

/*
 * A record and the first 8 bytes of its fingerprint as a big-endian number: most comparisons
 * end there, without following the record to its certificate (100,000 records: 60-90 ms
 * sorted through the pointers, a few ms by key).
 */
struct keyed {
    uint64_t key;
    const struct kigen_record *rec;
};

/* By fingerprint, then by place in the view: the order memcmp of the fingerprints gives. */
static int cmp_keyed(const void *pa, const void *pb)
{
    const struct keyed *a = pa, *b = pb;
    int c;

    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    c = memcmp(a->rec->cert->sha256, b->rec->cert->sha256, KIGEN_SHA256_LEN);
    if (c)
        return c;
    return a->rec < b->rec ? -1 : a->rec > b->rec;
}

/* The view's records by fingerprint, into *ret_v (malloc'd; NULL when none). */
static int sort_by_fingerprint(const struct kigen_view *view, const struct kigen_record ***ret_v)
{
    const struct kigen_record **v;
    struct keyed *k;

    *ret_v = NULL;
    if (!view->n_records)
        return 0;
    k = malloc(view->n_records * sizeof(*k));
    v = malloc(view->n_records * sizeof(*v));
    if (!k || !v) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    for (size_t i = 0; i < view->n_records; i++) {
        const unsigned char *d = view->records[i].cert->sha256;

        k[i].key = 0;
        for (int b = 0; b < 8; b++)
            k[i].key = k[i].key << 8 | d[b];
        k[i].rec = &view->records[i];
    }
    qsort(k, view->n_records, sizeof(*k), cmp_keyed);
    for (size_t i = 0; i < view->n_records; i++)
        v[i] = k[i].rec;
    free(k);
    *ret_v = v;
    return 0;
}

/* A growing string. */
struct buf {
    char *s;
    size_t len;
    size_t cap;
    bool failed;
};

/* Appends n bytes of s and keeps the text NUL-terminated. */
static void buf_add_n(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->s, cap);

        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_add(struct buf *b, const char *s)
{
    buf_add_n(b, s, strlen(s));
}

/* What one certificate looks like across all its locations. */
struct group {
    const struct kigen_record *const *v; /* records of one fingerprint */
    size_t n;
    const struct kigen_record *worst; /* the most severe, whose policy speaks */
};

/* KIGEN_LABEL_<NAME> for the labels of ks (may be NULL) that a is without. */
static int add_labels(struct kigen_alert *a, const struct kigen_keystore *ks)
{
    int r = 0;

    for (size_t j = 0; ks && j < ks->labels.n && r == 0; j++) {
        char name[128];
        size_t k = (size_t)snprintf(name, sizeof(name), "KIGEN_LABEL_");

        for (const char *p = ks->labels.v[j].name; *p && k < sizeof(name) - 1; p++)
            name[k++] = (char)toupper((unsigned char)*p);
        name[k] = '\0';
        if (!kigen_alert_get(a, name))
            r = kigen_alert_add(a, name, ks->labels.v[j].value);
    }
    return r;
}

/*
 * Adds s to the ", "-joined list b unless it is one of its items already. An empty s (a
 * state file's location with no keystore) is no item: strstr() would find it everywhere.
 */
static void buf_add_item(struct buf *b, const char *s)
{
    size_t n = strlen(s);

    if (n == 0)
        return;
    for (const char *p = b->s; p && (p = strstr(p, s)); p += n)
        if ((p == b->s || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return;
    if (b->len)
        buf_add(b, ", ");
    buf_add(b, s);
}

static int add_cert_fields(struct kigen_alert *a, const struct group *g, int64_t now)
{
    const struct kigen_cert *c = g->worst->cert;
    char hex[65], t[KIGEN_RFC3339_LEN], num[32];
    struct buf paths = { 0 }, keystores = { 0 };
    int r = 0;

    kigen_cert_sha256_hex(c, hex);
    for (size_t i = 0; i < g->n; i++) {
        const struct kigen_file *f = g->v[i]->file;

        if (i)
            buf_add(&paths, ", ");
        buf_add(&paths, f->path);
        buf_add_item(&keystores, f->keystore);
    }
    if (paths.failed || keystores.failed) {
        r = -ENOMEM;
        goto out;
    }
    snprintf(num, sizeof(num), "%lld", (long long)kigen_days_left(c->not_after, now));
    r = kigen_alert_add(a, "KIGEN_SHA256", hex);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_SUBJECT", c->subject);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_ISSUER", c->issuer);
    kigen_time_format_utc(c->not_after, t);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_NOT_AFTER", t);
    kigen_time_format_utc(g->worst->renewal_opens, t);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_RENEWAL_OPENS", t);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_DAYS_LEFT", num);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_PATHS", paths.s);
    if (r == 0)
        r = kigen_alert_add(a, "KIGEN_KEYSTORE", keystores.s);
    /* Labels of every keystore the certificate is in; the first keystore wins a clash. */
    for (size_t i = 0; i < g->n && r == 0; i++)
        r = add_labels(a, g->v[i]->keystore);
    if (r == 0 && g->worst->state == KIGEN_STATE_REVOKED && g->worst->revocation) {
        const struct kigen_revocation_status *rs = g->worst->revocation;
        const char *reason = kigen_crl_reason_name(rs->reason);

        if (rs->revoked_at != KIGEN_NO_TIME) {
            kigen_time_format_utc(rs->revoked_at, t);
            r = kigen_alert_add(a, "KIGEN_REVOKED_AT", t);
        }
        if (r == 0 && kigen_rev_source_name(rs->source))
            r = kigen_alert_add(a, "KIGEN_REVOCATION_SOURCE", kigen_rev_source_name(rs->source));
        if (r == 0 && reason)
            r = kigen_alert_add(a, "KIGEN_REVOCATION_REASON", reason);
    }
    /* A probe's server certificate: the first target that holds it, from "[host]:port". */
    for (size_t i = 0; i < g->n && r == 0 && !kigen_alert_get(a, "KIGEN_PROBE"); i++) {
        const char *name, *port;
        char host[1024];

        if (!kigen_probe_location_parse(g->v[i]->file->keystore, g->v[i]->file->path, &name, host,
                                        sizeof(host), &port))
            continue;
        r = kigen_alert_add(a, "KIGEN_PROBE", name);
        if (r == 0)
            r = kigen_alert_add(a, "KIGEN_HOST", host);
        if (r == 0)
            r = kigen_alert_add(a, "KIGEN_PORT", port);
    }
out:
    free(paths.s);
    free(keystores.s);
    return r;
}

/* The message, in the engine's language: what it is, when it ends, what to do. */
static void compose(const struct kigen_engine *engine, const struct group *g, int event,
                    int64_t step, bool reminder, int64_t now, char *out, size_t len)
{
    const enum kigen_language lang = engine->language;
    const struct kigen_cert *c = g->worst->cert;
    const struct kigen_policy *p = &g->worst->policy;
    int64_t days = kigen_days_left(c->not_after, now);
    char when[64], opens[64], stepbuf[32], maint[256] = "";
    size_t n = 0;

    kigen_i18n_time(lang, NULL, c->not_after, when, sizeof(when));
    kigen_i18n_time(lang, NULL, g->worst->renewal_opens, opens, sizeof(opens));
#define ADD(...)                                                  \
    do {                                                          \
        if (n < len)                                              \
            n += (size_t)snprintf(out + n, len - n, __VA_ARGS__); \
    } while (0)
    if (reminder)
        ADD("%s", _(lang, "Reminder: "));
    ADD(_(lang, "certificate %s (issuer %s) "), c->subject, c->issuer);
    switch (event) {
    case KIGEN_EVENT_CERT_EXPIRED:
        ADD(P_(lang, "expired on %s (%lld day ago): it must be re-issued",
               "expired on %s (%lld days ago): it must be re-issued", (unsigned long)-days),
            when, (long long)-days);
        if (p->reissue_note)
            ADD(_(lang, " (%s)"), p->reissue_note);
        break;
    case KIGEN_EVENT_CERT_REVOKED: {
        const struct kigen_revocation_status *rs = g->worst->revocation;
        char revoked[64] = "";

        if (rs && rs->revoked_at != KIGEN_NO_TIME)
            kigen_i18n_time(lang, NULL, rs->revoked_at, revoked, sizeof(revoked));
        ADD(_(lang, "was revoked on %s (%s): it cannot be renewed; remove the file and have it "
                    "re-issued"),
            *revoked ? revoked : "?",
            rs ? kigen_rev_source_name(rs->source) ? kigen_rev_source_name(rs->source) : "?" : "?");
        if (p->reissue_note)
            ADD(_(lang, " (%s)"), p->reissue_note);
        break;
    }
    case KIGEN_EVENT_CERT_CRITICAL:
    case KIGEN_EVENT_CERT_RENEWAL_OPEN:
        ADD(P_(lang, "expires on %s, in %lld day: renew it now",
               "expires on %s, in %lld days: renew it now", (unsigned long)days),
            when, (long long)days);
        if (p->renew_url)
            ADD(_(lang, " at %s"), p->renew_url);
        break;
    case KIGEN_EVENT_CERT_THRESHOLD:
        format_step(step, stepbuf, sizeof(stepbuf));
        ADD(P_(lang, "expires on %s, in %lld day (notice at %s before)",
               "expires on %s, in %lld days (notice at %s before)", (unsigned long)days),
            when, (long long)days, stepbuf);
        if (now >= g->worst->renewal_opens) {
            ADD("%s", _(lang, ": renew it now"));
            if (p->renew_url)
                ADD(_(lang, " at %s"), p->renew_url);
        } else {
            ADD(_(lang, ": renewal opens on %s"), opens);
        }
        break;
    default:
        break;
    }
    ADD(_(lang, "; found in %s"), g->v[0]->file->path);
    if (g->n > 1)
        ADD(P_(lang, " and %zu other location", " and %zu other locations",
               (unsigned long)(g->n - 1)),
            g->n - 1);
    if (event != KIGEN_EVENT_CERT_EXPIRED && event != KIGEN_EVENT_CERT_REVOKED &&
        engine->maint_fn &&
        engine->maint_fn(lang, now, c->not_after, maint, sizeof(maint), engine->maint_data))
        ADD(_(lang, ". %s"), maint);
    ADD("%s", _(lang, "."));
#undef ADD
}

/*
 * For the people who act (SPEC §12): the holder, and what the rule says to do: KIGEN_HOLDER,
 * KIGEN_HOLDER_EMAIL, KIGEN_RENEW_URL, KIGEN_REISSUE_NOTE, KIGEN_INSTRUCTIONS and
 * KIGEN_MAINTENANCE (the next maintenance window before the deadline), where they apply.
 */
static int add_action_fields(const struct kigen_engine *engine, struct kigen_alert *a,
                             const struct group *g, int64_t now)
{
    const struct kigen_policy *p = &g->worst->policy;
    const struct kigen_record *h = g->worst->holder ? g->worst : NULL;
    char maint[256];
    int r = 0;

    for (size_t i = 0; i < g->n && !h; i++)
        if (g->v[i]->holder)
            h = g->v[i];
    if (h)
        r = kigen_alert_add(a, "KIGEN_HOLDER", h->holder);
    if (r == 0 && h && h->holder_email)
        r = kigen_alert_add(a, "KIGEN_HOLDER_EMAIL", h->holder_email);
    /* The register row's language, for that holder's mail (SPEC §12); as written in the row. */
    if (r == 0 && h && h->holder_language)
        r = kigen_alert_add(a, "KIGEN_LANGUAGE", h->holder_language);
    if (r == 0 && p->renew_url)
        r = kigen_alert_add(a, "KIGEN_RENEW_URL", p->renew_url);
    if (r == 0 && p->reissue_note)
        r = kigen_alert_add(a, "KIGEN_REISSUE_NOTE", p->reissue_note);
    if (r == 0 && p->instructions)
        r = kigen_alert_add(a, "KIGEN_INSTRUCTIONS", p->instructions);
    if (r == 0 && engine->maint_fn &&
        engine->maint_fn(KIGEN_LANGUAGE_EN, now, g->worst->cert->not_after, maint, sizeof(maint),
                         engine->maint_data))
        r = kigen_alert_add(a, "KIGEN_MAINTENANCE", maint);
    /* The same sentence for the holder's mail, in their language (mail.c). */
    if (r == 0 && h && h->holder_language && kigen_alert_get(a, "KIGEN_MAINTENANCE") &&
        engine->maint_fn(
            strcmp(h->holder_language, "ja") == 0 ? KIGEN_LANGUAGE_JA : KIGEN_LANGUAGE_EN, now,
            g->worst->cert->not_after, maint, sizeof(maint), engine->maint_data) &&
        !(a->holder_maintenance = strdup(maint)))
        r = -ENOMEM;
    return r;
}

static int fire(struct kigen_engine *engine, const struct group *g, int event, int64_t step,
                bool reminder, int64_t now)
{
    char message[2048];
    struct kigen_alert *a;
    int r;

    compose(engine, g, event, step, reminder, now, message, sizeof(message));
    a = kigen_alert_new(event, message);
    if (!a)
        return -ENOMEM;
    r = add_cert_fields(a, g, now);
    if (r == 0)
        r = add_action_fields(engine, a, g, now);
    if (r < 0) {
        kigen_alert_free(a);
        return r;
    }
    return kigen_engine_queue(engine, a);
}

static int set_str(char **dst, const char *src)
{
    char *s = strdup(src);

    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

/* What is remembered of t changed: its saved line must be made again. */
static void touch(struct kigen_tracked *t)
{
    free(t->line);
    t->line = NULL;
}

/* Updates what is remembered of a certificate. Returns 1 if it changed, 0, or -ENOMEM. */
/* Whether anything was ever sent about t (only then does the state file keep it). */
static bool is_alerted(const struct kigen_tracked *t)
{
    for (int e = 0; e < KIGEN_EVENT_COUNT; e++)
        if (t->sent[e])
            return true;
    return t->threshold_step != 0;
}

/* Whether locations ("keystore\tpath\n" lines) are g's, in order; no allocation. */
static bool is_same_locations(const char *locations, const struct group *g)
{
    const char *p = locations;

    if (!p)
        return false;
    for (size_t i = 0; i < g->n; i++) {
        const struct kigen_file *f = g->v[i]->file;
        size_t lk = strlen(f->keystore), lp = strlen(f->path);

        if (strncmp(p, f->keystore, lk) != 0 || p[lk] != '\t' ||
            strncmp(p + lk + 1, f->path, lp) != 0 || p[lk + 1 + lp] != '\n')
            return false;
        p += lk + lp + 2;
    }
    return *p == '\0';
}

static int remember(struct kigen_tracked *t, const struct group *g)
{
    struct buf loc = { 0 };

    if (is_same_locations(t->locations, g) && t->subject && t->issuer &&
        t->not_after == g->worst->cert->not_after)
        return 0; /* the usual case: nothing to save */

    for (size_t i = 0; i < g->n; i++) {
        buf_add(&loc, g->v[i]->file->keystore);
        buf_add(&loc, "\t");
        buf_add(&loc, g->v[i]->file->path);
        buf_add(&loc, "\n");
    }
    if (loc.failed) {
        free(loc.s);
        return -ENOMEM;
    }
    touch(t);
    free(t->locations);
    t->locations = loc.s;
    t->not_after = g->worst->cert->not_after;
    if (set_str(&t->subject, g->worst->cert->subject) < 0 ||
        set_str(&t->issuer, g->worst->cert->issuer) < 0)
        return -ENOMEM;
    return 1;
}

/*
 * The certificate at keystore/path with subject that ends after not_after (a renewal in that
 * location), made into a record as the view would make it; false when there is none.
 */
static bool find_renewal(const struct kigen_config *config, const struct kigen_inventory *inventory,
                         const char *keystore, const char *path, const char *subject,
                         int64_t not_after, int64_t now, struct kigen_record *ret_rec)
{
    const struct kigen_file *f = kigen_inventory_find(inventory, keystore, path);
    const struct kigen_cert *best = NULL;

    for (size_t i = 0; f && i < f->certs.n; i++) {
        const struct kigen_cert *c = &f->certs.v[i];

        if (strcmp(c->subject, subject) == 0 && c->not_after > not_after &&
            (!best || c->not_after > best->not_after))
            best = c;
    }
    if (!best)
        return false;
    *ret_rec = (struct kigen_record){ .file = f, .cert = best };
    ret_rec->keystore = kigen_config_find_keystore(config, f->keystore);
    kigen_config_policy_for(config, f->keystore, best->subject, best->issuer, &ret_rec->policy);
    ret_rec->state = kigen_policy_state(&ret_rec->policy, best->not_before, best->not_after, now);
    ret_rec->renewal_opens = kigen_policy_renewal_opens(&ret_rec->policy, best->not_after);
    return true;
}

/* cert.renewed: subject's certificate at renewal's location now ends later. */
static int queue_renewed(struct kigen_engine *engine, const struct kigen_record *renewal,
                         const char *subject, int64_t now)
{
    const struct kigen_record *one = renewal;
    struct group g = { &one, 1, renewal };
    struct kigen_alert *a;
    char message[2048], when[64];

    kigen_i18n_time(engine->language, NULL, renewal->cert->not_after, when, sizeof(when));
    snprintf(message, sizeof(message),
             _(engine->language,
               "Certificate %s was renewed: %s now holds a certificate valid until %s."),
             subject, renewal->file->path, when);
    a = kigen_alert_new(KIGEN_EVENT_CERT_RENEWED, message);
    if (!a || add_cert_fields(a, &g, now) < 0) {
        kigen_alert_free(a);
        return -ENOMEM;
    }
    return kigen_engine_queue(engine, a);
}

/* Whether the location keystore/path (not NUL-terminated: lk and lp bytes) is one of g's. */
static bool group_has_location(const struct group *g, const char *keystore, size_t lk,
                               const char *path, size_t lp)
{
    for (size_t i = 0; i < g->n; i++) {
        const struct kigen_file *f = g->v[i]->file;

        if (strlen(f->keystore) == lk && memcmp(f->keystore, keystore, lk) == 0 &&
            strlen(f->path) == lp && memcmp(f->path, path, lp) == 0)
            return true;
    }
    return false;
}

/*
 * A certificate still found somewhere, but no longer in some location it was in: each such
 * location that now holds a later certificate for the same subject is a renewal there, said
 * even while another copy of the old certificate remains (that copy keeps being alerted on).
 * Returns how many cert.renewed were queued, or -ENOMEM.
 */
static int evaluate_moved(struct kigen_engine *engine, const struct kigen_config *config,
                          const struct kigen_inventory *inventory, const struct kigen_tracked *t,
                          const struct group *g, int64_t now)
{
    const char *line, *tab, *end;
    int fired = 0;

    for (line = t->locations; line && *line; line = *end ? end + 1 : end) {
        struct kigen_record rec;
        char *keystore, *path;
        bool is_renewed;
        int r;

        end = line + strcspn(line, "\n");
        tab = memchr(line, '\t', (size_t)(end - line));
        if (!tab ||
            group_has_location(g, line, (size_t)(tab - line), tab + 1, (size_t)(end - tab - 1)))
            continue;
        keystore = strndup(line, (size_t)(tab - line));
        path = strndup(tab + 1, (size_t)(end - tab - 1));
        is_renewed = keystore && path &&
                     find_renewal(config, inventory, keystore, path, t->subject ? t->subject : "",
                                  t->not_after, now, &rec);
        r = !keystore || !path ? -ENOMEM
            : is_renewed       ? queue_renewed(engine, &rec, t->subject, now)
                               : 0;
        free(keystore);
        free(path);
        if (r < 0)
            return r;
        fired += is_renewed;
    }
    return fired;
}

static int evaluate_group(struct kigen_engine *engine, const struct kigen_config *config,
                          const struct kigen_inventory *inventory, const struct group *g,
                          int64_t now)
{
    const struct kigen_cert *c = g->worst->cert;
    char hex[65];
    struct kigen_tracked *t;
    int ev = state_event(g->worst->state), fired = 0, r;
    int64_t step = 0;
    bool due_state = false, reminder = false, due_step = false;

    kigen_cert_sha256_hex(c, hex);
    t = kigen_strmap_get(&engine->certs, hex);
    if (ev >= 0) {
        if (!t || !t->sent[ev])
            due_state = true;
        else if (ev != KIGEN_EVENT_CERT_REVOKED &&
                 now - t->sent[ev] >= config->alerts.reminder_every)
            due_state = reminder = true; /* cert.revoked is said once (SPEC §13) */
    }
    if (g->worst->state != KIGEN_STATE_EXPIRED && g->worst->state != KIGEN_STATE_NOT_YET_VALID &&
        g->worst->state != KIGEN_STATE_REVOKED) {
        step = crossed_step(&g->worst->policy, c->not_after, now);
        due_step = step && (!t || !t->threshold_step || step < t->threshold_step);
    }
    if ((due_state || due_step) && engine->n_outbox >= KIGEN_ENGINE_MAX_OUTBOX) {
        engine->more_due = true; /* not marked as sent: due again next time */
        due_state = due_step = false;
    } else if ((due_state || due_step) && engine->n_new >= KIGEN_ENGINE_MAX_NEW) {
        engine->more_now = true; /* the next slice says it */
        due_state = due_step = false;
    }
    /*
     * Every certificate is remembered, alerted about or not: cert.gone and cert.renewed are
     * about any certificate that leaves its locations (SPEC §7 limits neither).
     */
    if (!t) {
        t = calloc(1, sizeof(*t));
        if (!t)
            return -ENOMEM;
        memcpy(t->sha256, hex, sizeof(hex));
        if (kigen_strmap_put(&engine->certs, hex, t) < 0) {
            free(t);
            return -ENOMEM;
        }
    }
    t->seen = true;
    if (t->locations && t->subject && !is_same_locations(t->locations, g)) {
        r = evaluate_moved(engine, config, inventory, t, g, now);
        if (r < 0)
            return r;
        fired += r;
    }
    r = remember(t, g);
    if (r < 0)
        return r;
    if (r > 0 && is_alerted(t))
        engine->dirty = true;
    if (due_state) {
        r = fire(engine, g, ev, 0, reminder, now);
        if (r < 0)
            return r;
        t->sent[ev] = now;
        fired++;
    }
    if (due_step) {
        r = fire(engine, g, KIGEN_EVENT_CERT_THRESHOLD, step, false, now);
        if (r < 0)
            return r;
        t->sent[KIGEN_EVENT_CERT_THRESHOLD] = now;
        t->threshold_step = step;
        fired++;
    }
    /* When the reminder of its state falls due: kigen_engine_next_wakeup needs no lookup. */
    if (ev >= 0 && ev != KIGEN_EVENT_CERT_REVOKED && t->sent[ev] &&
        t->sent[ev] + config->alerts.reminder_every < engine->next_reminder)
        engine->next_reminder = t->sent[ev] + config->alerts.reminder_every;
    if (fired) {
        touch(t);
        engine->dirty = true;
        engine->n_new += (size_t)fired;
    }
    return fired;
}

/* cert.gone for t: every location it was last seen in, their keystores and labels. */
static struct kigen_alert *gone_alert(const struct kigen_config *config,
                                      const struct kigen_tracked *t, const char *subject,
                                      const char *issuer)
{
    struct buf paths = { 0 }, keystores = { 0 }, ks_lines = { 0 };
    char message[2048], when[64], na[KIGEN_RFC3339_LEN];
    struct kigen_alert *a = NULL;
    const char *line, *tab, *end;
    int r = -ENOMEM;

    /* "keystore\tpath\n" lines: paths in order, each keystore once. */
    for (line = t->locations; line && *line; line = *end ? end + 1 : end) {
        end = line + strcspn(line, "\n");
        tab = memchr(line, '\t', (size_t)(end - line));
        if (!tab)
            continue;
        if (paths.len)
            buf_add(&paths, ", ");
        buf_add_n(&paths, tab + 1, (size_t)(end - tab - 1));
        buf_add_n(&ks_lines, line, (size_t)(tab - line));
        buf_add_n(&ks_lines, "", 1);
    }
    if (paths.failed || ks_lines.failed)
        goto out;
    kigen_i18n_time(config->language, NULL, t->not_after, when, sizeof(when));
    snprintf(message, sizeof(message),
             _(config->language, "Certificate %s (valid until %s) is no longer found in any "
                                 "keystore (last seen in %s)."),
             subject, when, paths.s ? paths.s : "");
    a = kigen_alert_new(KIGEN_EVENT_CERT_GONE, message);
    kigen_time_format_utc(t->not_after, na);
    if (!a || kigen_alert_add(a, "KIGEN_SHA256", t->sha256) < 0 ||
        kigen_alert_add(a, "KIGEN_SUBJECT", subject) < 0 ||
        kigen_alert_add(a, "KIGEN_ISSUER", issuer) < 0 ||
        kigen_alert_add(a, "KIGEN_NOT_AFTER", na) < 0 ||
        kigen_alert_add(a, "KIGEN_PATHS", paths.s ? paths.s : "") < 0)
        goto out;
    r = 0;
    for (size_t off = 0; off < ks_lines.len && r == 0; off += strlen(ks_lines.s + off) + 1) {
        buf_add_item(&keystores, ks_lines.s + off);
        r = add_labels(a, kigen_config_find_keystore(config, ks_lines.s + off));
    }
    if (r == 0 && keystores.failed)
        r = -ENOMEM;
    if (r == 0 && keystores.len)
        r = kigen_alert_add(a, "KIGEN_KEYSTORE", keystores.s);
out:
    if (r < 0) {
        kigen_alert_free(a);
        a = NULL;
    }
    free(paths.s);
    free(keystores.s);
    free(ks_lines.s);
    return a;
}

/* A certificate that was alerted about and is found nowhere now: renewed in place, or gone. */
static int evaluate_gone(struct kigen_engine *engine, const struct kigen_config *config,
                         const struct kigen_inventory *inventory, struct kigen_tracked *t,
                         int64_t now)
{
    /* A state file may lack them (the loader allows it), and an out-of-memory may leave them. */
    const char *subject = t->subject ? t->subject : "", *issuer = t->issuer ? t->issuer : "";
    char *lines = t->locations ? strdup(t->locations) : NULL, *save = NULL, *line;
    struct kigen_record renewal;
    bool is_renewed = false;
    struct kigen_alert *a;
    int r;

    if (t->locations && !lines)
        return -ENOMEM;
    /* A location that now holds a later certificate for the same subject. */
    for (line = lines ? strtok_r(lines, "\n", &save) : NULL; line && !is_renewed;
         line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');

        if (!tab)
            continue;
        *tab = '\0';
        is_renewed =
            find_renewal(config, inventory, line, tab + 1, subject, t->not_after, now, &renewal);
    }
    free(lines);
    if (is_renewed)
        return queue_renewed(engine, &renewal, subject, now);
    a = gone_alert(config, t, subject, issuer);
    if (!a)
        return -ENOMEM;
    r = kigen_engine_queue(engine, a);
    return r;
}

/* A field of an alert yet to be made: see queue_alert(). */
struct field {
    const char *name, *value;
};

/*
 * Makes an alert of event with message, fields (up to a NULL name) and the labels of ks (may
 * be NULL), and queues it. Returns 0 or a negative errno; on failure the alert is freed.
 */
static int queue_alert(struct kigen_engine *engine, enum kigen_event event, const char *message,
                       const struct field *fields, const struct kigen_keystore *ks)
{
    struct kigen_alert *a = kigen_alert_new(event, message);
    int r = a ? 0 : -ENOMEM;

    for (; r == 0 && fields->name; fields++)
        r = kigen_alert_add(a, fields->name, fields->value);
    if (r == 0)
        r = add_labels(a, ks);
    if (r < 0) {
        kigen_alert_free(a);
        return r;
    }
    return kigen_engine_queue(engine, a);
}

static int evaluate_errors(struct kigen_engine *engine, const struct kigen_config *config,
                           const struct kigen_view *view, int64_t now)
{
    char key[8192], message[2048];
    int fired = 0, r;

    for (size_t i = 0; i < view->n_errors; i++) {
        const struct kigen_file *f = view->errors[i];
        const struct field fields[] = {
            { "KIGEN_PATHS", f->path },
            { "KIGEN_KEYSTORE", f->keystore },
            { "KIGEN_ERROR", kigen_err_name(f->error) },
            { NULL, NULL },
        };
        struct kigen_tracked_error *e;

        snprintf(key, sizeof(key), "%s\n%s", f->keystore, f->path);
        e = kigen_strmap_get(&engine->errors, key);
        if (e && e->error == f->error) {
            e->seen = true;
            continue;
        }
        if (!e) {
            e = calloc(1, sizeof(*e));
            if (!e || kigen_strmap_put(&engine->errors, key, e) < 0) {
                free(e);
                return -ENOMEM;
            }
        }
        e->error = f->error;
        e->sent = now;
        e->seen = true;
        snprintf(message, sizeof(message),
                 _(config->language, "Cannot read '%s' in keystore %s (%s): %s."), f->path,
                 f->keystore, kigen_err_text(config->language, f->error),
                 f->message ? f->message : "");
        r = queue_alert(engine, KIGEN_EVENT_SCAN_ERROR, message, fields,
                        kigen_config_find_keystore(config, f->keystore));
        if (r < 0)
            return r;
        fired++;
        engine->dirty = true;
    }
    return fired;
}

/* The mark under key: 1 if new (now marked as sent at now), 0 if known, or -ENOMEM. */
static int mark(struct kigen_engine *engine, const char *key, int64_t now)
{
    struct kigen_mark *m = kigen_strmap_get(&engine->marks, key);

    if (m) {
        m->seen = true;
        return 0;
    }
    m = calloc(1, sizeof(*m));
    if (!m || kigen_strmap_put(&engine->marks, key, m) < 0) {
        free(m);
        return -ENOMEM;
    }
    m->sent = now;
    m->seen = true;
    engine->dirty = true;
    return 1;
}

struct sweep_marks {
    struct kigen_engine *engine;
    const char *prefix;
};

static void sweep_marks_cb(const char *key, void *value, void *data)
{
    struct sweep_marks *s = data;
    struct kigen_mark *m = value;

    if (strncmp(key, s->prefix, strlen(s->prefix)) != 0)
        return;
    if (m->seen) {
        m->seen = false;
        return;
    }
    kigen_strmap_remove(&s->engine->marks, key);
    free(m);
    s->engine->dirty = true;
}

/* Forgets the marks with prefix that the last pass did not see (the thing changed or went). */
static void sweep_marks(struct kigen_engine *engine, const char *prefix)
{
    struct sweep_marks s = { engine, prefix };

    kigen_strmap_foreach(&engine->marks, sweep_marks_cb, &s);
}

/* crl.stale, once per CRL (its issuer and thisUpdate) whose next update has passed (SPEC §13). */
static int evaluate_crls(struct kigen_engine *engine, const struct kigen_config *config,
                         const struct kigen_view *view, int64_t now)
{
    char key[4096], message[2048], t[KIGEN_RFC3339_LEN], when[64];
    int fired = 0, r;

    for (size_t i = 0; i < view->n_crls; i++) {
        const struct kigen_crl_record *cr = &view->crls[i];
        const struct field fields[] = {
            { "KIGEN_ISSUER", cr->crl->issuer },
            { "KIGEN_PATHS", cr->file->path },
            { "KIGEN_KEYSTORE", cr->file->keystore },
            { "KIGEN_NEXT_UPDATE", t }, /* written below, once the CRL is known to be stale */
            { NULL, NULL },
        };

        if (!cr->is_stale)
            continue;
        snprintf(key, sizeof(key), "crl\t%s\t%lld", cr->crl->issuer,
                 (long long)cr->crl->this_update);
        r = mark(engine, key, now);
        if (r <= 0) {
            if (r < 0)
                return r;
            continue;
        }
        kigen_i18n_time(config->language, NULL, cr->crl->next_update, when, sizeof(when));
        snprintf(message, sizeof(message),
                 _(config->language, "The CRL of %s in %s (keystore %s) is out of date: its next "
                                     "update was due on %s. Replace it with the issuer's current "
                                     "CRL."),
                 cr->crl->issuer, cr->file->path, cr->file->keystore, when);
        kigen_time_format_utc(cr->crl->next_update, t);
        r = queue_alert(engine, KIGEN_EVENT_CRL_STALE, message, fields,
                        kigen_config_find_keystore(config, cr->file->keystore));
        if (r < 0)
            return r;
        fired++;
    }
    return fired;
}

int kigen_engine_revocation_failures(struct kigen_engine *engine, const struct kigen_config *config,
                                     const struct kigen_revocation_failure *failures, size_t n,
                                     int64_t now)
{
    char key[4096], message[2048];
    int fired = 0, r;

    for (size_t i = 0; i < n; i++) {
        const struct kigen_revocation_failure *f = &failures[i];
        const struct field fields[] = {
            { "KIGEN_PATHS", f->url },
            { "KIGEN_KEYSTORE", "revocation" },
            { "KIGEN_ERROR", f->kind },
            { NULL, NULL },
        };

        snprintf(key, sizeof(key), "fetch\t%s\t%s", f->url, f->kind);
        r = mark(engine, key, now);
        if (r <= 0) {
            if (r < 0)
                return r;
            continue;
        }
        snprintf(message, sizeof(message),
                 _(config->language, "Cannot check revocation with %s (%s): %s. Certificates "
                                     "that depend on it are 'unknown'."),
                 f->url, f->kind, f->message);
        r = queue_alert(engine, KIGEN_EVENT_SCAN_ERROR, message, fields, NULL);
        if (r < 0)
            return r;
        fired++;
    }
    sweep_marks(engine, "fetch\t");
    return fired;
}

struct sweep {
    struct kigen_engine *engine;
    const struct kigen_config *config;
    const struct kigen_inventory *inventory;
    const struct kigen_view *view;
    int64_t now;
    int fired;
    int status;
};

/*
 * Whether t, found nowhere now, was last seen in a keystore whose root is unavailable (after a
 * restart its records are not in the inventory, but the error says the root is unknown).
 */
static bool is_kept_as_last_seen(const struct sweep *s, const struct kigen_tracked *t)
{
    const char *line, *tab, *end;

    for (size_t i = 0; i < s->view->n_errors; i++) {
        const struct kigen_file *f = s->view->errors[i];
        size_t lk = strlen(f->keystore);

        if (f->error != KIGEN_E_KEYSTORE_UNAVAILABLE)
            continue;
        for (line = t->locations; line && *line; line = *end ? end + 1 : end) {
            end = line + strcspn(line, "\n");
            tab = memchr(line, '\t', (size_t)(end - line));
            if (tab && (size_t)(tab - line) == lk && memcmp(line, f->keystore, lk) == 0)
                return true;
        }
    }
    return false;
}

/* Whether every location t was last seen in is a probe's chain (keystore "probe:NAME"). */
static bool is_probe_only(const struct kigen_tracked *t)
{
    const char *line, *end;
    bool any = false;

    for (line = t->locations; line && *line; line = *end ? end + 1 : end) {
        end = line + strcspn(line, "\n");
        if (strncmp(line, "probe:", 6) != 0)
            return false;
        any = true;
    }
    return any;
}

static void sweep_certs_cb(const char *key, void *value, void *data)
{
    struct sweep *s = data;
    struct kigen_tracked *t = value;
    bool is_superseded;
    int r;

    if (t->seen) {
        t->seen = false;
        return;
    }
    if (is_kept_as_last_seen(s, t))
        return; /* its keystore's root is unavailable: unknown, not gone (SPEC §4) */
    /*
     * A declared certificate whose row a readable file now matches: the file won (§12). A
     * certificate only a probe's chain held (a server that changed its chain, or one that no
     * longer verifies, so that its trust anchor is not recorded) is no cert.gone: the probe's
     * own alerts say what happened to the server (SPEC §8).
     */
    is_superseded = kigen_strmap_get(&s->inventory->superseded, key) != NULL || is_probe_only(t);
    r = is_superseded ? 0 : evaluate_gone(s->engine, s->config, s->inventory, t, s->now);
    if (r < 0) {
        s->status = r;
        return;
    }
    s->fired += !is_superseded;
    kigen_strmap_remove(&s->engine->certs, key);
    tracked_free(t);
    s->engine->dirty = true;
}

static void sweep_errors_cb(const char *key, void *value, void *data)
{
    struct sweep *s = data;
    struct kigen_tracked_error *e = value;

    if (e->seen) {
        e->seen = false;
        return;
    }
    kigen_strmap_remove(&s->engine->errors, key); /* resolved: said nothing more about it */
    free(e);
    s->engine->dirty = true;
}

int kigen_engine_pass_begin(struct kigen_engine *engine, const struct kigen_view *view, int64_t now,
                            struct kigen_engine_pass *pass)
{
    memset(pass, 0, sizeof(*pass));
    engine->more_due = false;
    engine->more_now = false;
    engine->n_new = 0;
    engine->n_unique = 0;
    engine->next_reminder = INT64_MAX;
    pass->view = view;
    pass->now = now;
    return sort_by_fingerprint(view, &pass->sorted);
}

int kigen_engine_pass_step(struct kigen_engine *engine, const struct kigen_config *config,
                           const struct kigen_inventory *inventory, struct kigen_engine_pass *pass,
                           uint64_t budget_ns)
{
    const struct kigen_view *view = pass->view;
    const struct kigen_record **v = pass->sorted;
    uint64_t until = budget_ns ? kigen_monotonic_ns() + budget_ns : 0;
    unsigned k = 0;
    size_t i, j;
    int r;

    for (i = pass->next; i < view->n_records; i = j) {
        struct group g = { &v[i], 0, v[i] };

        /* The clock every 64 groups: a group costs about a microsecond. */
        if (until && ++k % 64 == 0 && kigen_monotonic_ns() >= until)
            break;
        for (j = i; j < view->n_records &&
                    memcmp(v[j]->cert->sha256, v[i]->cert->sha256, KIGEN_SHA256_LEN) == 0;
             j++)
            if (rank(v[j]->state) > rank(g.worst->state))
                g.worst = v[j];
        g.n = j - i;
        engine->n_unique++;
        r = evaluate_group(engine, config, inventory, &g, pass->now);
        if (r < 0)
            return r;
        pass->fired += r;
    }
    pass->next = i;
    return i == view->n_records;
}

int kigen_engine_pass_end(struct kigen_engine *engine, const struct kigen_config *config,
                          const struct kigen_inventory *inventory, struct kigen_engine_pass *pass)
{
    struct sweep s = { engine, config, inventory, pass->view, pass->now, 0, 0 };
    int fired = pass->fired, r;

    free(pass->sorted);
    pass->sorted = NULL;
    kigen_strmap_foreach(&engine->certs, sweep_certs_cb, &s);
    if (s.status < 0)
        return s.status;
    r = evaluate_errors(engine, config, pass->view, pass->now);
    if (r < 0)
        return r;
    kigen_strmap_foreach(&engine->errors, sweep_errors_cb, &s);
    fired += r;
    r = evaluate_crls(engine, config, pass->view, pass->now);
    if (r < 0)
        return r;
    sweep_marks(engine, "crl\t");
    return fired + s.fired + r;
}

static void unsee_cb(const char *key, void *value, void *data)
{
    ((struct kigen_tracked *)value)->seen = false;
}

void kigen_engine_pass_abandon(struct kigen_engine *engine, struct kigen_engine_pass *pass)
{
    kigen_strmap_foreach(&engine->certs, unsee_cb, NULL);
    free(pass->sorted);
    memset(pass, 0, sizeof(*pass));
}

int kigen_engine_evaluate(struct kigen_engine *engine, const struct kigen_config *config,
                          const struct kigen_inventory *inventory, const struct kigen_view *view,
                          int64_t now)
{
    struct kigen_engine_pass pass;
    int r = kigen_engine_pass_begin(engine, view, now, &pass);

    if (r == 0)
        r = kigen_engine_pass_step(engine, config, inventory, &pass, 0);
    if (r < 0) {
        kigen_engine_pass_abandon(engine, &pass);
        return r;
    }
    return kigen_engine_pass_end(engine, config, inventory, &pass);
}

int64_t kigen_engine_next_wakeup(const struct kigen_engine *engine,
                                 const struct kigen_config *config, const struct kigen_view *view,
                                 int64_t now)
{
    int64_t best = engine->next_reminder; /* the reminders, found by the evaluation */

    (void)config;
    for (size_t i = 0; i < view->n_records; i++) {
        const struct kigen_record *rec = &view->records[i];
        int64_t t = kigen_policy_next_change(&rec->policy, rec->cert->not_before,
                                             rec->cert->not_after, now);

        if (t < best)
            best = t;
    }
    for (size_t i = 0; i < view->n_crls; i++) {
        int64_t t = view->crls[i].crl->next_update;

        if (t != KIGEN_NO_TIME && t > now && t < best)
            best = t;
    }
    if (engine->more_due)
        best = now + 1;
    return best > now ? best : now + 1;
}

/* ---- persistence: JSON lines, so that neither side builds the whole document ---- */

static int emit(struct buf *b, json_t *j)
{
    char *s;

    if (!j)
        return -ENOMEM;
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return -ENOMEM;
    buf_add(b, s);
    buf_add(b, "\n");
    free(s);
    return b->failed ? -ENOMEM : 0;
}

struct save {
    struct buf *b;
    size_t lines;
    int status;
};

/* The line of j (taken) with its newline, malloc'd into *ret_line. Returns 0 or -ENOMEM. */
static int make_line(json_t *j, char **ret_line, size_t *ret_len)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL, *line;
    size_t len;

    json_decref(j);
    if (!s)
        return -ENOMEM;
    len = strlen(s);
    line = realloc(s, len + 2); /* a local: GCC 12 then sees that s is freed only if it failed */
    if (!line) {
        free(s);
        return -ENOMEM;
    }
    memcpy(line + len, "\n", 2);
    *ret_line = line;
    *ret_len = len + 1;
    return 0;
}

/* A line kept for the next save too: records change rarely, saves come with every delivery. */
static int emit_line(struct buf *b, char **line, size_t *line_len, json_t *(*make)(const void *),
                     const void *what)
{
    if (!*line && make_line(make(what), line, line_len) < 0)
        return -ENOMEM;
    buf_add_n(b, *line, *line_len);
    return b->failed ? -ENOMEM : 0;
}

/*
 * Text from outside need not be UTF-8 (file names are bytes), and JSON strings must be: such
 * text is saved as {"hex":"..."} and read back byte for byte by bytes_dup().
 */
static json_t *bytes_json(const char *s)
{
    static const char digits[] = "0123456789abcdef";
    json_t *j = json_string(s);
    char *hex;
    size_t n;

    if (j)
        return j;
    n = strlen(s);
    hex = malloc(2 * n + 1);
    if (!hex)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[(unsigned char)s[i] >> 4];
        hex[2 * i + 1] = digits[(unsigned char)s[i] & 15];
    }
    hex[2 * n] = '\0';
    j = json_pack("{s:s}", "hex", hex);
    free(hex);
    return j;
}

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A malloc'd copy of what bytes_json() saved; NULL (errno EINVAL or ENOMEM) for anything else. */
static char *bytes_dup(const json_t *j)
{
    const char *hex = json_string_value(json_object_get(j, "hex"));
    size_t n = hex ? strlen(hex) : 0;
    char *s;

    if (json_is_string(j))
        return strdup(json_string_value(j));
    if (!hex || n % 2 || !json_is_object(j) || json_object_size(j) != 1) {
        errno = EINVAL;
        return NULL;
    }
    s = malloc(n / 2 + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

        if (hi < 0 || lo < 0 || (hi | lo) == 0) { /* a NUL would cut the text short */
            free(s);
            errno = EINVAL;
            return NULL;
        }
        s[i] = (char)(hi << 4 | lo);
    }
    s[n / 2] = '\0';
    return s;
}

/* Missing strings are left out: the loader takes a key that is absent, not a null. */
static json_t *cert_json(const void *what)
{
    const struct kigen_tracked *t = what;
    json_t *sent = json_object(), *j;

    for (int e = 0; sent && e < KIGEN_EVENT_COUNT; e++)
        if (t->sent[e])
            json_object_set_new(sent, kigen_event_name(e), json_integer(t->sent[e]));
    j = json_pack("{s:s, s:I, s:o, s:I}", "cert", t->sha256, "not_after", (json_int_t)t->not_after,
                  "sent", sent, "threshold_step", (json_int_t)t->threshold_step);
    if (j &&
        ((t->subject && json_object_set_new(j, "subject", bytes_json(t->subject)) < 0) ||
         (t->issuer && json_object_set_new(j, "issuer", bytes_json(t->issuer)) < 0) ||
         (t->locations && json_object_set_new(j, "locations", bytes_json(t->locations)) < 0))) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static json_t *outbox_json(const void *what)
{
    const struct kigen_outbox_item *item = what;
    const struct kigen_alert *a = item->alert;
    json_t *fields = json_array();

    for (size_t k = 0; fields && k < a->n_fields; k++) {
        if (json_array_append_new(fields, json_pack("[s,o]", a->fields[k].name,
                                                    bytes_json(a->fields[k].value))) < 0) {
            json_decref(fields);
            return NULL;
        }
    }
    return json_pack("{s:I, s:s, s:i, s:o, s:o}", "outbox", (json_int_t)item->id, "event",
                     kigen_event_name(a->event), "priority", a->priority, "message",
                     bytes_json(a->message), "fields", fields);
}

static void save_cert_cb(const char *key, void *value, void *data)
{
    struct save *s = data;
    struct kigen_tracked *t = value;

    if (!is_alerted(t))
        return; /* nothing to re-send or hold back after a restart: the next scan finds it */
    if (s->status == 0)
        s->status = emit_line(s->b, &t->line, &t->line_len, cert_json, t);
    s->lines++;
}

static void save_error_cb(const char *key, void *value, void *data)
{
    struct save *s = data;
    const struct kigen_tracked_error *e = value;
    json_t *j = json_pack("{s:o, s:s, s:I}", "error", bytes_json(key), "code",
                          kigen_err_name(e->error), "sent", (json_int_t)e->sent);

    if (s->status == 0)
        s->status = emit(s->b, j);
    else
        json_decref(j);
    s->lines++;
}

static void save_root_cb(const char *key, void *value, void *data)
{
    struct save *s = data;
    uint64_t dev = *(const uint64_t *)value;
    json_t *j;

    if (dev > (uint64_t)STATE_TIME_MAX)
        return; /* not kept: the next complete read remembers it again */
    j = json_pack("{s:o, s:I}", "root", bytes_json(key), "dev", (json_int_t)dev);
    if (s->status == 0)
        s->status = emit(s->b, j);
    else
        json_decref(j);
    s->lines++;
}

static void save_probe_cb(const char *key, void *value, void *data)
{
    struct save *s = data;
    json_t *j = json_pack("{s:s, s:I}", "probe_down", key, "sent", (json_int_t) * (int64_t *)value);

    if (s->status == 0)
        s->status = emit(s->b, j);
    else
        json_decref(j);
    s->lines++;
}

static void save_mark_cb(const char *key, void *value, void *data)
{
    struct save *s = data;
    const struct kigen_mark *m = value;
    json_t *j = json_pack("{s:o, s:I}", "mark", bytes_json(key), "sent", (json_int_t)m->sent);

    if (s->status == 0)
        s->status = emit(s->b, j);
    else
        json_decref(j);
    s->lines++;
}

int kigen_engine_save(const struct kigen_engine *engine, char **ret_text, size_t *ret_len)
{
    struct buf b = { 0 };
    struct save s = { &b, 0, 0 };
    struct kigen_engine *e = (struct kigen_engine *)engine; /* foreach does not modify */

    s.status = emit(&b, json_pack("{s:i}", "kigen_state", STATE_VERSION));
    kigen_strmap_foreach(&e->certs, save_cert_cb, &s);
    kigen_strmap_foreach(&e->errors, save_error_cb, &s);
    kigen_strmap_foreach(&e->probes_down, save_probe_cb, &s);
    kigen_strmap_foreach(&e->roots, save_root_cb, &s);
    kigen_strmap_foreach(&e->marks, save_mark_cb, &s);
    for (size_t i = 0; i < engine->n_outbox && s.status == 0; i++) {
        struct kigen_outbox_item *item = &e->outbox[i];

        s.status = emit_line(&b, &item->line, &item->line_len, outbox_json, item);
        s.lines++;
    }
    if (s.status == 0)
        s.status = emit(&b, json_pack("{s:I}", "end", (json_int_t)s.lines));
    if (s.status < 0) {
        free(b.s);
        return s.status;
    }
    *ret_text = b.s;
    *ret_len = b.len;
    return 0;
}

static bool is_state_time(json_int_t t, json_int_t min)
{
    return t >= min && t <= STATE_TIME_MAX;
}

/* What every certificate is keyed by: 64 lowercase hex digits (SPEC §6). */
static bool is_fingerprint(const char *s)
{
    return strlen(s) == 2 * KIGEN_SHA256_LEN &&
           strspn(s, "0123456789abcdef") == 2 * KIGEN_SHA256_LEN;
}

static int load_line(struct kigen_engine *engine, json_t *j, char *errbuf, size_t errlen)
{
    const char *sha = NULL, *key, *code, *event;
    json_int_t not_after = 0, step = 0, sent_at, id;
    json_t *sent = NULL, *fields = NULL, *v, *subject = NULL, *issuer = NULL, *locations = NULL;
    json_t *error, *message;
    int priority, r;

    if (json_unpack(j, "{s:s, s?o, s?o, s:I, s?o, s:o, s:I}", "cert", &sha, "subject", &subject,
                    "issuer", &issuer, "not_after", &not_after, "locations", &locations, "sent",
                    &sent, "threshold_step", &step) == 0) {
        struct kigen_tracked *t;

        if (!is_fingerprint(sha)) {
            snprintf(errbuf, errlen, "bad fingerprint in a certificate record");
            return -EINVAL;
        }
        if (!is_state_time(not_after, -STATE_TIME_MAX) || !is_state_time(step, 0)) {
            snprintf(errbuf, errlen, "time out of range in the record of %.64s", sha);
            return -EINVAL;
        }
        t = calloc(1, sizeof(*t));

        r = 0;
        if (!t)
            return -ENOMEM;
        snprintf(t->sha256, sizeof(t->sha256), "%s", sha);
        t->not_after = not_after;
        t->threshold_step = step;
        /* A record without names (a damaged file) still needs them for its messages. */
        t->subject = subject ? bytes_dup(subject) : strdup("");
        t->issuer = issuer ? bytes_dup(issuer) : strdup("");
        t->locations = locations ? bytes_dup(locations) : NULL;
        if (!t->subject || !t->issuer || (locations && !t->locations))
            r = errno == EINVAL ? -EINVAL : -ENOMEM;
        else if (kigen_strmap_get(&engine->certs, t->sha256))
            r = -EINVAL; /* a second record would replace the first, which nobody frees */
        else if (kigen_strmap_put(&engine->certs, t->sha256, t) < 0)
            r = -ENOMEM;
        if (r < 0) {
            if (r == -EINVAL)
                snprintf(errbuf, errlen, "bad text or a second record of %.64s", sha);
            tracked_free(t);
            return r;
        }
        json_object_foreach(sent, key, v)
        {
            int e = kigen_event_from_name(key);

            if (e < 0 || !json_is_integer(v))
                continue;
            /* t is the engine's already: a failed load clears it. */
            if (!is_state_time(json_integer_value(v), 0)) {
                snprintf(errbuf, errlen, "time out of range in the record of %.64s", sha);
                return -EINVAL;
            }
            t->sent[e] = json_integer_value(v);
        }
        return 0;
    }
    if (json_unpack(j, "{s:o, s:s, s:I}", "error", &error, "code", &code, "sent", &sent_at) == 0) {
        struct kigen_tracked_error *e;
        char *where;

        if (!is_state_time(sent_at, 0)) {
            snprintf(errbuf, errlen, "time out of range in an error record");
            return -EINVAL;
        }
        where = bytes_dup(error);

        if (!where) {
            snprintf(errbuf, errlen, "bad location of an error record");
            return errno == EINVAL ? -EINVAL : -ENOMEM;
        }
        if (kigen_strmap_get(&engine->errors, where)) {
            free(where);
            snprintf(errbuf, errlen, "a second record of the same error");
            return -EINVAL;
        }
        e = calloc(1, sizeof(*e));
        if (!e) {
            free(where);
            return -ENOMEM;
        }
        for (int k = KIGEN_E_UNREADABLE; k <= KIGEN_E_LAST; k++)
            if (strcmp(kigen_err_name(k), code) == 0)
                e->error = k;
        /* A code the saver could not write back (kigen_err_name gives it no name). */
        if (!e->error) {
            free(where);
            free(e);
            snprintf(errbuf, errlen, "unknown error code '%.32s'", code);
            return -EINVAL;
        }
        e->sent = sent_at;
        r = kigen_strmap_put(&engine->errors, where, e);
        free(where);
        if (r < 0) {
            free(e);
            return -ENOMEM;
        }
        return 0;
    }
    if (json_unpack(j, "{s:o, s:I}", "root", &message, "dev", &id) == 0) {
        char *where = bytes_dup(message), *nl;

        if (!where)
            return errno == EINVAL ? -EINVAL : -ENOMEM;
        nl = strchr(where, '\n');
        r = !nl || id <= 0 || id > STATE_TIME_MAX ? -EINVAL : 0;
        if (r == 0) {
            *nl = '\0';
            r = kigen_engine_set_root_dev(engine, where, nl + 1, (uint64_t)id);
        }
        if (r == -EINVAL)
            snprintf(errbuf, errlen, "bad keystore root record");
        free(where);
        return r;
    }
    if (json_unpack(j, "{s:o, s:I}", "mark", &message, "sent", &sent_at) == 0) {
        char *where = bytes_dup(message);
        struct kigen_mark *m;

        if (!where)
            return errno == EINVAL ? -EINVAL : -ENOMEM;
        r = !is_state_time(sent_at, 0) ||
                    (strncmp(where, "crl\t", 4) != 0 && strncmp(where, "fetch\t", 6) != 0)
                ? -EINVAL
            : kigen_strmap_get(&engine->marks, where) ? -EINVAL
                                                      : 0;
        m = r == 0 ? calloc(1, sizeof(*m)) : NULL;
        if (r == 0 && !m)
            r = -ENOMEM;
        if (r == 0) {
            m->sent = sent_at;
            m->seen = true; /* kept until a pass finds the thing changed or gone */
            r = kigen_strmap_put(&engine->marks, where, m);
            if (r < 0)
                free(m);
        }
        if (r == -EINVAL)
            snprintf(errbuf, errlen, "bad mark record");
        free(where);
        return r;
    }
    if (json_unpack(j, "{s:s, s:I}", "probe_down", &key, "sent", &sent_at) == 0) {
        if (!is_state_time(sent_at, 0)) {
            snprintf(errbuf, errlen, "time out of range in a probe record");
            return -EINVAL;
        }
        return kigen_engine_probe_set_down(engine, key, sent_at);
    }
    if (json_unpack(j, "{s:I, s:s, s:i, s:o, s:o}", "outbox", &id, "event", &event, "priority",
                    &priority, "message", &message, "fields", &fields) == 0) {
        int ev = kigen_event_from_name(event);
        struct kigen_alert *a;
        size_t k;

        if (ev < 0 || !json_is_array(fields)) {
            snprintf(errbuf, errlen, "unknown event '%s' in the outbox", event);
            return -EINVAL;
        }
        a = calloc(1, sizeof(*a));
        if (!a || !(a->message = bytes_dup(message))) {
            r = a && errno == EINVAL ? -EINVAL : -ENOMEM;
            if (r == -EINVAL)
                snprintf(errbuf, errlen, "bad message in the outbox");
            kigen_alert_free(a);
            return r;
        }
        a->event = ev;
        a->priority = priority;
        json_array_foreach(fields, k, v)
        {
            const char *name;
            json_t *value;
            char *text;

            if (json_unpack(v, "[s,o]", &name, &value) < 0)
                continue;
            text = bytes_dup(value);
            r = text ? kigen_alert_add(a, name, text) : errno == EINVAL ? 0 : -ENOMEM;
            free(text);
            if (r < 0) {
                kigen_alert_free(a);
                return -ENOMEM;
            }
        }
        if (kigen_engine_queue(engine, a) < 0)
            return -ENOMEM;
        return 0;
    }
    snprintf(errbuf, errlen, "unrecognised record");
    return -EINVAL;
}

int kigen_engine_load(struct kigen_engine *engine, const char *text, size_t len, char *errbuf,
                      size_t errlen)
{
    const char *p = text, *end = text + len;
    size_t lineno = 0, records = 0;
    json_int_t version = 0, count = -1;
    json_error_t jerr;
    int r = 0;

    clear(engine);
    while (p < end && r == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        json_t *j;

        if (!nl) {
            snprintf(errbuf, errlen, "line %zu: truncated (no end of line)", lineno + 1);
            r = -EINVAL;
            break;
        }
        lineno++;
        j = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, &jerr);
        p = nl + 1;
        if (!j) {
            snprintf(errbuf, errlen, "line %zu: %s", lineno, jerr.text);
            r = -EINVAL;
            break;
        }
        if (lineno == 1) {
            if (json_unpack(j, "{s:I}", "kigen_state", &version) < 0 || version != STATE_VERSION) {
                snprintf(errbuf, errlen, "line 1: not a kigen state file of version %d",
                         STATE_VERSION);
                r = -EINVAL;
            }
        } else if (json_unpack(j, "{s:I}", "end", &count) == 0) {
            if (p != end || (size_t)count != records) {
                snprintf(errbuf, errlen, "line %zu: end marker does not match", lineno);
                r = -EINVAL;
            }
        } else {
            char why[256] = "";

            r = load_line(engine, j, why, sizeof(why));
            if (r == -EINVAL)
                snprintf(errbuf, errlen, "line %zu: %s", lineno, why);
            records++;
        }
        json_decref(j);
    }
    if (r == 0 && count < 0) {
        snprintf(errbuf, errlen, "truncated: no end marker");
        r = -EINVAL;
    }
    if (r < 0)
        clear(engine);
    engine->dirty = false;
    return r;
}
