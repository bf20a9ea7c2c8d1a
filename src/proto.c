#include "proto.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alert.h"
#include "duration.h"
#include "metrics.h"
#include "policy.h"
#include "probe_sync.h"
#include "revocation.h"
#include "slicer.h"
#include "snapshot.h"
#include "timeutil.h"

#define STATUS_REQUEST   "{\"cmd\":\"status\"}"
#define BUSY_RENDERING   "busy: other answers are being rendered, try again"
#define PROTO_DUMP_FLAGS (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(12))

/* Quoted request text in error messages is cut to this many bytes. */
#define QUOTE_MAX 64

struct command {
    const char *name;
    const char *const *fields; /* allowed besides "cmd", NULL-terminated */
    bool needs_privilege;
    int (*run)(const struct kigen_proto_ctx *ctx, json_t *req, char **ret_answer, size_t *ret_len);
};

/* Takes j; serializes it into the answer. -ENOMEM when j is NULL or cannot be dumped. */
static int finish(json_t *j, char **ret_answer, size_t *ret_len)
{
    char *text = j ? json_dumps(j, PROTO_DUMP_FLAGS) : NULL;

    json_decref(j);
    if (!text)
        return -ENOMEM;
    *ret_answer = text;
    *ret_len = strlen(text);
    return 0;
}

static int fail(char **ret_answer, size_t *ret_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* {"ok":false,"error":...}; the reason may quote request text, so it goes through text_json. */
static int fail(char **ret_answer, size_t *ret_len, const char *fmt, ...)
{
    char msg[512];
    json_t *j = json_object();
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (j && (json_object_set_new(j, "ok", json_false()) < 0 ||
              json_object_set_new(j, "error", kigen_report_text_json(msg)) < 0)) {
        json_decref(j);
        j = NULL;
    }
    return finish(j, ret_answer, ret_len);
}

/* A new {"ok":true} to add members to, or NULL. */
static json_t *ok_object(void)
{
    json_t *j = json_object();

    if (j && json_object_set_new(j, "ok", json_true()) < 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* null for a time that is not known (a declared certificate's not_before without `issued`). */
static json_t *time_json(int64_t t)
{
    char buf[KIGEN_RFC3339_LEN];

    if (t == KIGEN_NO_TIME)
        return json_null();
    kigen_time_format_utc(t, buf);
    return json_string(buf);
}

/* Sets key to v in o, taking v; false (and o is to be dropped) when either failed. */
static bool set(json_t *o, const char *key, json_t *v)
{
    return v && json_object_set_new(o, key, v) == 0;
}

/* ---- status ---- */

/* Everything a status answer says, in a form memcmp can compare (no padding left unset). */
struct status_key {
    int64_t now;
    int64_t evaluated;
    int64_t last_scan_end;
    double last_scan_seconds;
    uint64_t counts[KIGEN_STATE_COUNT];
    uint64_t n_records, unique, n_errors, probes_down, n_probes, n_keystores;
    uint64_t scans, files_read, files_unchanged;
    uint64_t is_scanning;
    uint64_t deliveries; /* a hash of the durable sinks' names and counts */
};

void kigen_proto_cache_done(struct kigen_proto_cache *cache)
{
    if (!cache)
        return;
    free(cache->status);
    memset(cache, 0, sizeof(*cache));
}

static void status_key(const struct kigen_proto_ctx *ctx, const struct kigen_view *v,
                       struct status_key *k)
{
    memset(k, 0, sizeof(*k));
    k->now = ctx->now;
    k->evaluated = v->now;
    k->last_scan_end = ctx->last_scan_end;
    k->last_scan_seconds = ctx->last_scan_seconds;
    for (int s = 0; s < KIGEN_STATE_COUNT; s++)
        k->counts[s] = v->counts[s];
    k->n_records = v->n_records;
    k->unique = v->unique;
    k->n_errors = v->n_errors;
    k->probes_down = v->probes_down;
    k->n_probes = ctx->n_probes;
    k->n_keystores = ctx->config->n_keystores;
    k->scans = ctx->scans;
    k->files_read = ctx->files_read;
    k->files_unchanged = ctx->files_unchanged;
    k->is_scanning = ctx->is_scanning;
    /* FNV-1a over what the deliveries member says. */
    k->deliveries = 14695981039346656037ull;
    for (size_t i = 0; i < ctx->n_deliveries; i++) {
        const struct kigen_sink_stats *s = &ctx->deliveries[i];
        uint64_t n[2] = { s->pending, s->failed };

        for (const char *p = s->name; *p; p++)
            k->deliveries = (k->deliveries ^ (unsigned char)*p) * 1099511628211ull;
        for (size_t b = 0; b < sizeof(n); b++)
            k->deliveries = (k->deliveries ^ ((unsigned char *)n)[b]) * 1099511628211ull;
    }
}

/* {"mail":{"pending":N,"failed":N},...}, or NULL on ENOMEM. */
static json_t *deliveries_json(const struct kigen_proto_ctx *ctx)
{
    json_t *o = json_object();

    for (size_t i = 0; o && i < ctx->n_deliveries; i++) {
        const struct kigen_sink_stats *s = &ctx->deliveries[i];

        if (!set(o, s->name,
                 json_pack("{s:I, s:I}", "pending", (json_int_t)s->pending, "failed",
                           (json_int_t)s->failed))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* A malloc'd copy of the cached answer when k is what it was computed from; else NULL. */
static char *cached_status(const struct kigen_proto_ctx *ctx, const struct status_key *k,
                           size_t *ret_len)
{
    struct kigen_proto_cache *c = ctx->cache;
    char *text;

    if (!c || !c->status || c->key_len != sizeof(*k) || memcmp(c->key, k, sizeof(*k)) != 0)
        return NULL;
    text = malloc(c->status_len + 1);
    if (!text)
        return NULL;
    memcpy(text, c->status, c->status_len + 1);
    *ret_len = c->status_len;
    return text;
}

static void cache_status(const struct kigen_proto_ctx *ctx, const struct status_key *k,
                         const char *text, size_t len)
{
    struct kigen_proto_cache *c = ctx->cache;
    char *copy;

    if (!c || sizeof(*k) > sizeof(c->key) || !(copy = malloc(len + 1)))
        return;
    memcpy(copy, text, len + 1);
    free(c->status);
    c->status = copy;
    c->status_len = len;
    memcpy(c->key, k, sizeof(*k));
    c->key_len = sizeof(*k);
}

static int run_status(const struct kigen_proto_ctx *ctx, json_t *req, char **ret_answer,
                      size_t *ret_len)
{
    struct kigen_view built = { 0 };
    const struct kigen_view *v = ctx->last_view;
    struct status_key key;
    json_t *j = NULL;
    bool good;
    int r;

    if (v) {
        built = *v;
        built.records = NULL;
        built.errors = NULL;
    } else {
        r = kigen_view_build(ctx->config, ctx->inventory, ctx->now, NULL, &built);
        if (r < 0)
            return r;
    }
    kigen_view_set_probes(&built, ctx->probes, ctx->n_probes);
    v = &built;
    status_key(ctx, v, &key);
    *ret_answer = cached_status(ctx, &key, ret_len);
    if (*ret_answer) {
        kigen_view_done(&built);
        return 0;
    }
    j = ok_object();
    good = j && set(j, "generated_at", time_json(ctx->now)) &&
           set(j, "summary", kigen_report_summary_json(v)) &&
           set(j, "exit_status", json_integer(kigen_view_exit_status(v))) &&
           set(j, "evaluated_at", time_json(v->now)) &&
           set(j, "keystores", json_integer((json_int_t)ctx->config->n_keystores)) &&
           set(j, "probe_targets", json_integer((json_int_t)ctx->n_probes)) &&
           set(j, "scanning", json_boolean(ctx->is_scanning)) &&
           set(j, "last_scan", ctx->last_scan_end ? time_json(ctx->last_scan_end) : json_null()) &&
           set(j, "scan_seconds", json_real(ctx->last_scan_seconds)) &&
           set(j, "scans", json_integer((json_int_t)ctx->scans)) &&
           set(j, "files_read", json_integer((json_int_t)ctx->files_read)) &&
           set(j, "files_unchanged", json_integer((json_int_t)ctx->files_unchanged)) &&
           set(j, "deliveries", deliveries_json(ctx));
    kigen_view_done(&built);
    if (!good) {
        json_decref(j);
        return -ENOMEM;
    }
    r = finish(j, ret_answer, ret_len);
    if (r == 0)
        cache_status(ctx, &key, *ret_answer, *ret_len);
    return r;
}

/* ---- list and metrics, rendered here or on the thread pool ---- */

enum render_kind {
    RENDER_LIST,
    RENDER_METRICS,
};

static int metrics_answer(const char *text, size_t len, char **ret_answer, size_t *ret_len);

/*
 * The answer of list or metrics from view. is_sorting: view was built unsorted, and the
 * report order is wanted. Reads the view alone: a snapshot's view may be rendered on the
 * thread pool.
 */
static int render(struct kigen_view *view, enum render_kind kind, bool is_sorting,
                  const struct kigen_metrics_extra *extra, char **ret_answer, size_t *ret_len)
{
    char *text = NULL;
    size_t len;
    int r;

    if (is_sorting)
        kigen_view_sort(view);
    if (kind == RENDER_LIST)
        return kigen_report_json_text(view, ret_answer, ret_len);
    r = kigen_metrics_render(view, extra, &text, &len);
    if (r < 0)
        return r;
    r = metrics_answer(text, len, ret_answer, ret_len);
    free(text);
    return r;
}

/* A render on the thread pool: the work callback touches this struct only. */
struct render_job {
    uv_work_t work;
    uv_loop_t *loop;
    struct kigen_snapshot *snapshot;
    struct kigen_control_deferred *deferred;
    enum render_kind kind;
    struct kigen_metrics_extra extra;
    char *answer;
    size_t len;
    int result;
};

static void render_work_cb(uv_work_t *work)
{
    struct render_job *job = work->data;

    job->result =
        render(&job->snapshot->view, job->kind, true, &job->extra, &job->answer, &job->len);
    /* Freeing 100,000 records' copies is work too: not the loop's. */
    kigen_snapshot_free(job->snapshot);
    job->snapshot = NULL;
}

static void render_after_cb(uv_work_t *work, int status)
{
    struct render_job *job = work->data;

    kigen_snapshot_free(job->snapshot); /* NULL unless the work never ran */
    kigen_control_finish(job->deferred, status < 0 ? status : job->result, job->answer, job->len);
    free(job);
}

/* The slicer built the snapshot: render it on the thread pool. */
static void built_cb(void *data, struct kigen_snapshot *snapshot, int result)
{
    struct render_job *job = data;
    int r = result;

    job->snapshot = snapshot;
    if (r == 0)
        r = uv_queue_work(job->loop, &job->work, render_work_cb, render_after_cb);
    if (r < 0) {
        kigen_snapshot_free(job->snapshot);
        kigen_control_finish(job->deferred, r, NULL, 0);
        free(job);
    }
}

/*
 * Answers list or metrics for filter at ctx->now: copied in slices on the loop and rendered on
 * the thread pool when ctx allows, else built and rendered here.
 */
static int answer_view(const struct kigen_proto_ctx *ctx, const struct kigen_view_filter *filter,
                       enum render_kind kind, char **ret_answer, size_t *ret_len)
{
    struct kigen_metrics_extra extra = { .options = ctx->config->metrics,
                                         .scan_duration_seconds = ctx->last_scan_seconds };
    struct render_job *job = NULL;
    struct kigen_view view;
    int r;

    for (size_t i = 0; i < ctx->n_deliveries; i++)
        kigen_metrics_extra_add_sink(&extra, ctx->deliveries[i].name, ctx->deliveries[i].failed);
    if (!ctx->loop || !ctx->control || !ctx->slicer) {
        r = kigen_view_build(ctx->config, ctx->inventory, ctx->now, filter, &view);
        if (r < 0)
            return r;
        kigen_view_set_probes(&view, ctx->probes, ctx->n_probes);
        r = render(&view, kind, true, &extra, ret_answer, ret_len);
        kigen_view_done(&view);
        return r;
    }
    job = calloc(1, sizeof(*job));
    if (!job)
        return -ENOMEM;
    job->work.data = job;
    job->loop = ctx->loop;
    job->kind = kind;
    job->extra = extra;
    job->deferred = kigen_control_defer(ctx->control);
    if (!job->deferred) {
        free(job);
        return fail(ret_answer, ret_len, BUSY_RENDERING);
    }
    r = kigen_slicer_start(ctx->slicer, filter, ctx->now, built_cb, job);
    if (r < 0) {
        kigen_control_finish(job->deferred, r, NULL, 0);
        free(job);
    }
    return KIGEN_CONTROL_DEFERRED; /* answered already, within the handler, on failure */
}

/* ---- list ---- */

static int state_from_name(const char *name)
{
    for (int s = 0; s < KIGEN_STATE_COUNT; s++)
        if (strcmp(kigen_state_name(s), name) == 0)
            return s;
    return -1;
}

/* A member that must be a string when present: 1 and *ret, 0 when absent, -EINVAL. */
static int get_string(json_t *req, const char *key, const char **ret)
{
    json_t *v = json_object_get(req, key);

    if (!v)
        return 0;
    if (!json_is_string(v))
        return -EINVAL;
    *ret = json_string_value(v);
    return 1;
}

static int run_list(const struct kigen_proto_ctx *ctx, json_t *req, char **ret_answer,
                    size_t *ret_len)
{
    /* Unsorted: the sort is the renderer's, on the thread pool when there is one. */
    struct kigen_view_filter filter = { .state = -1, .within = -1, .is_unsorted = true };
    const char *s;
    int r;

    r = get_string(req, "state", &s);
    if (r < 0)
        return fail(ret_answer, ret_len, "\"state\" must be a string");
    if (r > 0) {
        filter.state = state_from_name(s);
        if (filter.state < 0)
            return fail(ret_answer, ret_len,
                        "unknown state \"%.*s\" (one of ok, renewal_open, critical, expired, "
                        "not_yet_valid)",
                        QUOTE_MAX, s);
    }
    r = get_string(req, "within", &s);
    if (r < 0)
        return fail(ret_answer, ret_len, "\"within\" must be a string like \"30d\"");
    if (r > 0 && kigen_duration_parse(s, &filter.within) < 0)
        return fail(ret_answer, ret_len,
                    "bad duration \"%.*s\" for \"within\" (an integer and one of s m h d w, like "
                    "\"30d\")",
                    QUOTE_MAX, s);
    r = get_string(req, "keystore", &s);
    if (r < 0)
        return fail(ret_answer, ret_len, "\"keystore\" must be a string");
    if (r > 0) {
        /* A typo must not read as "all is well" to a Nagios check. */
        if (!kigen_config_find_keystore(ctx->config, s) && !kigen_probe_is_keystore(s) &&
            !(strcmp(s, KIGEN_REGISTER_KEYSTORE) == 0 && ctx->config->holders.register_path))
            return fail(ret_answer, ret_len, "unknown keystore \"%.*s\"", QUOTE_MAX, s);
        filter.keystore = s;
    }
    r = get_string(req, "holder", &s);
    if (r < 0)
        return fail(ret_answer, ret_len, "\"holder\" must be a string");
    if (r > 0)
        filter.holder = s; /* a name nobody holds is an empty list: holders come and go */
    return answer_view(ctx, &filter, RENDER_LIST, ret_answer, ret_len);
}

/* ---- show ---- */

struct location {
    const struct kigen_file *file;
    const struct kigen_cert *cert;
};

static int cmp_location(const void *pa, const void *pb)
{
    const struct location *a = pa, *b = pb;
    int c = strcmp(a->file->keystore, b->file->keystore);

    if (c)
        return c;
    c = strcmp(a->file->path, b->file->path);
    return c ? c : strcmp(a->cert->entry, b->cert->entry);
}

static int parse_sha256(const char *s, uint8_t out[KIGEN_SHA256_LEN], char hex[65])
{
    if (strlen(s) != 64)
        return -EINVAL;
    for (size_t i = 0; i < 64; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return -EINVAL;
        hex[i] = (char)tolower((unsigned char)s[i]);
    }
    hex[64] = '\0';
    for (size_t i = 0; i < KIGEN_SHA256_LEN; i++) {
        unsigned v;

        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return 0;
}

static json_t *labels_json(const struct kigen_keystore *ks)
{
    json_t *o = json_object();

    for (size_t i = 0; ks && o && i < ks->labels.n; i++)
        if (!set(o, ks->labels.v[i].name, kigen_report_text_json(ks->labels.v[i].value))) {
            json_decref(o);
            return NULL;
        }
    return o;
}

static json_t *location_json(const struct kigen_proto_ctx *ctx, const struct location *loc)
{
    json_t *o = json_object();
    const char *holder, *email;

    kigen_record_holder(ctx->inventory, loc->file, loc->cert, &holder, &email, NULL);
    if (o && set(o, "keystore", kigen_report_text_json(loc->file->keystore)) &&
        set(o, "path", kigen_report_text_json(loc->file->path)) &&
        set(o, "format", json_string(kigen_format_name(loc->file->format))) &&
        set(o, "entry", kigen_report_text_json(loc->cert->entry)) &&
        set(o, "holder", kigen_report_holder_json(holder, email)) &&
        set(o, "labels", labels_json(kigen_config_find_keystore(ctx->config, loc->file->keystore))))
        return o;
    json_decref(o);
    return NULL;
}

struct sent {
    int event;
    int64_t at;
};

static int cmp_sent(const void *pa, const void *pb)
{
    const struct sent *a = pa, *b = pb;

    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    return a->event - b->event;
}

/* What the engine remembers having sent about the certificate, oldest first. */
static json_t *alerts_json(const struct kigen_proto_ctx *ctx, const char *hex)
{
    const struct kigen_tracked *t = ctx->engine ? kigen_strmap_get(&ctx->engine->certs, hex) : NULL;
    struct sent sent[KIGEN_EVENT_COUNT];
    size_t n = 0;
    json_t *a = json_array();

    for (int e = 0; t && e < KIGEN_EVENT_COUNT; e++)
        if (t->sent[e])
            sent[n++] = (struct sent){ e, t->sent[e] };
    qsort(sent, n, sizeof(sent[0]), cmp_sent);
    for (size_t i = 0; a && i < n; i++) {
        json_t *o = json_object();

        if (!o || !set(o, "event", json_string(kigen_event_name(sent[i].event))) ||
            !set(o, "sent", time_json(sent[i].at)) || json_array_append_new(a, o) < 0) {
            json_decref(o);
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/*
 * The facts of the certificate and its policy come from its first location (by keystore,
 * path, entry): the same DER has the same dates everywhere, but a rule that matches on the
 * keystore may give another location another renew_before.
 */
static int run_show(const struct kigen_proto_ctx *ctx, json_t *req, char **ret_answer,
                    size_t *ret_len)
{
    uint8_t want[KIGEN_SHA256_LEN];
    char hex[65];
    struct location *locs = NULL, *tmp;
    size_t n = 0, cap = 0;
    const struct kigen_cert *c;
    struct kigen_policy policy;
    const struct kigen_revocation_status *rs = NULL;
    enum kigen_state state;
    json_t *j = NULL, *arr = NULL;
    const char *s = NULL;
    int r;

    r = get_string(req, "sha256", &s);
    if (r < 0)
        return fail(ret_answer, ret_len, "\"sha256\" must be a string");
    if (r == 0)
        return fail(ret_answer, ret_len, "show needs \"sha256\"");
    if (parse_sha256(s, want, hex) < 0)
        return fail(ret_answer, ret_len, "\"sha256\" must be 64 hex digits, not \"%.*s\"",
                    QUOTE_MAX, s);
    for (size_t i = 0; i < ctx->inventory->n_files; i++) {
        const struct kigen_file *f = ctx->inventory->files[i];

        for (size_t k = 0; k < f->certs.n; k++) {
            if (memcmp(f->certs.v[k].sha256, want, KIGEN_SHA256_LEN) != 0)
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 4;
                tmp = realloc(locs, cap * sizeof(*locs));
                if (!tmp) {
                    r = -ENOMEM;
                    goto out;
                }
                locs = tmp;
            }
            locs[n++] = (struct location){ f, &f->certs.v[k] };
        }
    }
    if (n == 0) {
        r = fail(ret_answer, ret_len, "unknown certificate");
        goto out;
    }
    qsort(locs, n, sizeof(*locs), cmp_location);
    c = locs[0].cert;
    kigen_config_policy_for(ctx->config, locs[0].file->keystore, c->subject, c->issuer, &policy);
    state = kigen_policy_state(&policy, c->not_before, c->not_after, ctx->now);
    if (policy.revocation && locs[0].file->format != KIGEN_FORMAT_DECLARED) {
        rs = kigen_strmap_get(&ctx->inventory->revocations, hex);
        if (rs && rs->status == KIGEN_REV_REVOKED)
            state = KIGEN_STATE_REVOKED; /* the first row of SPEC §5 */
    }
    r = -ENOMEM;
    j = ok_object();
    arr = json_array();
    if (!j || !arr)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, location_json(ctx, &locs[i])) < 0)
            goto out;
    if (!set(j, "sha256", json_string(hex)) ||
        !set(j, "subject", kigen_report_text_json(c->subject)) ||
        !set(j, "issuer", kigen_report_text_json(c->issuer)) ||
        !set(j, "serial", json_string(c->serial)) ||
        !set(j, "not_before", time_json(c->not_before)) ||
        !set(j, "not_after", time_json(c->not_after)) ||
        !set(j, "renewal_opens", time_json(kigen_policy_renewal_opens(&policy, c->not_after))) ||
        !set(j, "days_left", json_integer(kigen_days_left(c->not_after, ctx->now))) ||
        !set(j, "state", json_string(kigen_state_name(state))) ||
        (policy.revocation && !set(j, "revocation", kigen_report_revocation_json(rs))))
        goto out;
    if (json_object_set(j, "locations", arr) < 0 || !set(j, "alerts", alerts_json(ctx, hex)))
        goto out;
    r = finish(j, ret_answer, ret_len);
    j = NULL;
out:
    json_decref(j);
    json_decref(arr);
    free(locs);
    return r;
}

/* ---- probes, metrics ---- */

/* One certificate of a probe's chain: what names it and when it ends. */
static json_t *chain_cert_json(const struct kigen_cert *c, bool with_entry)
{
    json_t *o = json_object();
    char hex[65];

    kigen_cert_sha256_hex(c, hex);
    if (!o || (with_entry && !set(o, "entry", json_string(c->entry))) ||
        !set(o, "sha256", json_string(hex)) ||
        !set(o, "subject", kigen_report_text_json(c->subject)) ||
        !set(o, "issuer", kigen_report_text_json(c->issuer)) ||
        !set(o, "not_after", time_json(c->not_after))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *chain_json(const struct kigen_certs *chain)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < chain->n; i++) {
        if (json_array_append_new(arr, chain_cert_json(&chain->v[i], true)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/*
 * The §6 entries with what an operator asks next: since when and how often it failed, how
 * long the last probe took and which server certificate and chain it saw.
 */
static json_t *probes_json(const struct kigen_proto_ctx *ctx)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < ctx->n_probes; i++) {
        const struct kigen_probe_status *st = &ctx->probes[i];
        json_t *o = kigen_report_probe_json(st);
        bool good;

        good = o && set(o, "tls", json_boolean(st->tls)) &&
               set(o, "consecutive_failures", json_integer(st->consecutive_failures)) &&
               set(o, "duration_ms",
                   st->last_probe ? json_real(round(st->duration_ms * 100) / 100) : json_null()) &&
               set(o, "last_probe", st->last_probe ? time_json(st->last_probe) : json_null());
        good = good && set(o, "server",
                           st->server.n ? chain_cert_json(&st->server.v[0], false) : json_null());
        good = good && set(o, "chain", chain_json(&st->server));
        if (!good || json_array_append_new(arr, o) < 0) {
            if (!good)
                json_decref(o);
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int run_probes(const struct kigen_proto_ctx *ctx, json_t *req, char **ret_answer,
                      size_t *ret_len)
{
    json_t *j = ok_object();

    if (j && !set(j, "probes", probes_json(ctx))) {
        json_decref(j);
        j = NULL;
    }
    return finish(j, ret_answer, ret_len);
}

/* Length of the valid UTF-8 sequence (RFC 3629) at s, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    size_t n;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        n = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        n = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/*
 * Writes text as the inside of a JSON string into out, or only counts when out is NULL.
 * Bytes that are not UTF-8 read '?', as in the report.
 */
static size_t escape_json(const char *text, size_t len, char *out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t o = 0, i = 0, n;

    while (i < len) {
        char esc[8];

        /* Runs of plain ASCII, most of the text, are copied at once. */
        for (n = 0; i + n < len && s[i + n] >= 0x20 && s[i + n] < 0x80 && s[i + n] != '"' &&
                    s[i + n] != '\\';
             n++)
            ;
        if (n) {
            if (out)
                memcpy(out + o, s + i, n);
            o += n;
            i += n;
            continue;
        }
        if (s[i] == '"' || s[i] == '\\' || s[i] == '\n') {
            esc[0] = '\\';
            esc[1] = s[i] == '\n' ? 'n' : (char)s[i];
            n = 2;
        } else if (s[i] < 0x20) {
            n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
        } else if ((n = utf8_seq(s + i, len - i)) > 0) {
            if (out)
                memcpy(out + o, s + i, n);
            o += n;
            i += n;
            continue;
        } else {
            esc[0] = '?';
            n = 1;
        }
        if (out)
            memcpy(out + o, esc, n);
        o += n;
        i++;
    }
    return o;
}

/*
 * {"ok":true,"metrics":"..."} written straight from the text: 100,000 certificates give
 * hundreds of MB of metrics, and a json_t would copy them twice more.
 */
static int metrics_answer(const char *text, size_t len, char **ret_answer, size_t *ret_len)
{
    static const char head[] = "{\"ok\":true,\"metrics\":\"", tail[] = "\"}";
    size_t n = escape_json(text, len, NULL), total = sizeof(head) - 1 + n + sizeof(tail) - 1;
    char *a = malloc(total + 1);

    if (!a)
        return -ENOMEM;
    memcpy(a, head, sizeof(head) - 1);
    escape_json(text, len, a + sizeof(head) - 1);
    memcpy(a + sizeof(head) - 1 + n, tail, sizeof(tail));
    *ret_answer = a;
    *ret_len = total;
    return 0;
}

static int run_metrics(const struct kigen_proto_ctx *ctx, json_t *req, char **ret_answer,
                       size_t *ret_len)
{
    static const struct kigen_view_filter all_unsorted = { .state = -1,
                                                           .within = -1,
                                                           .is_unsorted = true };

    return answer_view(ctx, &all_unsorted, RENDER_METRICS, ret_answer, ret_len);
}

/* ---- rescan, reload ---- */

static int run_action(int (*action)(void *data, char *errbuf, size_t errlen), void *data,
                      const char *name, char **ret_answer, size_t *ret_len)
{
    char err[512] = "";
    int r;

    if (!action)
        return fail(ret_answer, ret_len, "%s is not available", name);
    r = action(data, err, sizeof(err));
    if (r < 0)
        return fail(ret_answer, ret_len, "%s failed: %s", name, err[0] ? err : strerror(-r));
    return finish(ok_object(), ret_answer, ret_len);
}

static int run_rescan(const struct kigen_proto_ctx *ctx, json_t *req, char **ret_answer,
                      size_t *ret_len)
{
    return run_action(ctx->rescan, ctx->data, "rescan", ret_answer, ret_len);
}

static int run_reload(const struct kigen_proto_ctx *ctx, json_t *req, char **ret_answer,
                      size_t *ret_len)
{
    return run_action(ctx->reload, ctx->data, "reload", ret_answer, ret_len);
}

/* ---- dispatch ---- */

static const char *const no_fields[] = { NULL };
static const char *const list_fields[] = { "state", "within", "keystore", "holder", NULL };
static const char *const show_fields[] = { "sha256", NULL };

static const struct command commands[] = {
    { "status", no_fields, false, run_status },   { "list", list_fields, false, run_list },
    { "show", show_fields, false, run_show },     { "probes", no_fields, false, run_probes },
    { "rescan", no_fields, true, run_rescan },    { "reload", no_fields, true, run_reload },
    { "metrics", no_fields, false, run_metrics },
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static bool is_field(const struct command *cmd, const char *key)
{
    for (const char *const *f = cmd->fields; *f; f++)
        if (strcmp(*f, key) == 0)
            return true;
    return false;
}

int kigen_proto_answer(const struct kigen_proto_ctx *ctx, const char *line, size_t len,
                       bool is_privileged, char **ret_answer, size_t *ret_len)
{
    const struct command *cmd;
    json_error_t jerr;
    json_t *req, *v;
    const char *key;
    int r;

    /* What kigenctl and monitoring send, many times a second: no need to parse it. */
    if (len == sizeof(STATUS_REQUEST) - 1 && memcmp(line, STATUS_REQUEST, len) == 0)
        return run_status(ctx, NULL, ret_answer, ret_len);
    req = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!req)
        return fail(ret_answer, ret_len, "malformed JSON at column %d: %s", jerr.column, jerr.text);
    if (!json_is_object(req)) {
        r = fail(ret_answer, ret_len,
                 "the request must be a JSON object like {\"cmd\":\"status\"}");
        goto out;
    }
    v = json_object_get(req, "cmd");
    if (!v) {
        r = fail(ret_answer, ret_len, "missing \"cmd\"");
        goto out;
    }
    if (!json_is_string(v)) {
        r = fail(ret_answer, ret_len, "\"cmd\" must be a string");
        goto out;
    }
    cmd = find_command(json_string_value(v));
    if (!cmd) {
        r = fail(ret_answer, ret_len,
                 "unknown cmd \"%.*s\" (one of status, list, show, probes, rescan, reload, "
                 "metrics)",
                 QUOTE_MAX, json_string_value(v));
        goto out;
    }
    json_object_foreach(req, key, v)
    {
        if (strcmp(key, "cmd") != 0 && !is_field(cmd, key)) {
            r = fail(ret_answer, ret_len, "unknown field \"%.*s\" for %s", QUOTE_MAX, key,
                     cmd->name);
            goto out;
        }
    }
    if (cmd->needs_privilege && !is_privileged) {
        r = fail(ret_answer, ret_len, "permission denied: %s needs root or the daemon's user",
                 cmd->name);
        goto out;
    }
    r = cmd->run(ctx, req, ret_answer, ret_len);
out:
    json_decref(req);
    return r;
}
