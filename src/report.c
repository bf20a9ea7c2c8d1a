#include "report.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "holders.h"
#include "i18n.h"
#include "probe.h"
#include "revocation.h"
#include "timeutil.h"

static bool is_number(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Entries "2" < "10" as numbers; aliases as strings. */
static int cmp_entry(const char *a, const char *b)
{
    if (is_number(a) && is_number(b)) {
        size_t la = strlen(a), lb = strlen(b);

        if (la != lb)
            return la < lb ? -1 : 1;
    }
    return strcmp(a, b);
}

static int cmp_record(const void *pa, const void *pb)
{
    const struct kigen_record *a = pa, *b = pb;
    int c;

    if (a->cert->not_after != b->cert->not_after)
        return a->cert->not_after < b->cert->not_after ? -1 : 1;
    c = strcmp(a->file->path, b->file->path);
    if (c)
        return c;
    c = cmp_entry(a->cert->entry, b->cert->entry);
    if (c)
        return c;
    return strcmp(a->file->keystore, b->file->keystore);
}

static int cmp_error(const void *pa, const void *pb)
{
    const struct kigen_file *a = *(const struct kigen_file *const *)pa;
    const struct kigen_file *b = *(const struct kigen_file *const *)pb;
    int c = strcmp(a->path, b->path);

    if (!c)
        c = strcmp(a->keystore, b->keystore);
    return c ? c : (a->part > b->part) - (a->part < b->part);
}

static int cmp_fingerprint(const void *pa, const void *pb)
{
    const struct kigen_cert *a = *(const struct kigen_cert *const *)pa;
    const struct kigen_cert *b = *(const struct kigen_cert *const *)pb;

    return memcmp(a->sha256, b->sha256, KIGEN_SHA256_LEN);
}

static bool keep(const struct kigen_view_filter *filter, const struct kigen_record *rec,
                 int64_t now)
{
    if (!filter)
        return true;
    if (filter->state >= 0 && (int)rec->state != filter->state)
        return false;
    /* now + within saturates: "within 292 billion years" keeps everything. */
    if (filter->within >= 0 && (now < 0 || filter->within <= INT64_MAX - now) &&
        rec->cert->not_after > now + filter->within)
        return false;
    if (filter->keystore && strcmp(filter->keystore, rec->file->keystore) != 0)
        return false;
    if (filter->holder && !(rec->holder && strcmp(filter->holder, rec->holder) == 0) &&
        !(rec->holder_email && strcmp(filter->holder, rec->holder_email) == 0))
        return false;
    return true;
}

static size_t count_unique(const struct kigen_record *records, size_t n)
{
    const struct kigen_cert **v;
    size_t unique = 0;

    if (n == 0)
        return 0;
    v = malloc(n * sizeof(*v));
    if (!v)
        return n; /* an upper bound beats failing the whole report */
    for (size_t i = 0; i < n; i++)
        v[i] = records[i].cert;
    qsort(v, n, sizeof(*v), cmp_fingerprint);
    for (size_t i = 0; i < n; i++)
        unique += i == 0 || memcmp(v[i]->sha256, v[i - 1]->sha256, KIGEN_SHA256_LEN) != 0;
    free(v);
    return unique;
}

void kigen_record_holder(const struct kigen_inventory *inventory, const struct kigen_file *f,
                         const struct kigen_cert *c, const char **ret_name, const char **ret_email,
                         const char **ret_language)
{
    const struct kigen_register_row *row = NULL;

    if (strcmp(f->keystore, KIGEN_REGISTER_KEYSTORE) == 0)
        row = kigen_holders_row_at(inventory->reg, strtoul(c->entry, NULL, 10));
    else if (inventory->holders)
        row = kigen_holders_index_find(inventory->holders, c->subject, f->path);
    if (ret_language)
        *ret_language = row && row->language && *row->language ? row->language : NULL;
    if (row) {
        *ret_name = row->holder;
        *ret_email = row->email;
    } else if (c->email && c->email[0]) {
        *ret_name = c->email;
        *ret_email = c->email;
    } else {
        *ret_name = NULL;
        *ret_email = NULL;
    }
}

static int cmp_crl(const void *a, const void *b)
{
    const struct kigen_crl_record *x = a, *y = b;
    /* A CRL without a next update is never stale: after every one that has one. */
    int64_t nx = x->crl->next_update == KIGEN_NO_TIME ? INT64_MAX : x->crl->next_update;
    int64_t ny = y->crl->next_update == KIGEN_NO_TIME ? INT64_MAX : y->crl->next_update;
    int c;

    if (nx != ny)
        return nx < ny ? -1 : 1;
    c = strcmp(x->file->path, y->file->path);
    if (c)
        return c;
    c = strcmp(x->file->keystore, y->file->keystore);
    if (c)
        return c;
    return x->crl < y->crl ? -1 : x->crl > y->crl;
}

void kigen_view_add_file(struct kigen_view *v, const struct kigen_config *config,
                         const struct kigen_inventory *inventory, const struct kigen_file *f,
                         const struct kigen_view_filter *filter)
{
    const struct kigen_keystore *ks = kigen_config_find_keystore(config, f->keystore);

    /* An error has a keystore but no holder. */
    if (f->error && (!filter || !filter->holder) &&
        (!filter || !filter->keystore || strcmp(filter->keystore, f->keystore) == 0))
        v->errors[v->n_errors++] = f;
    for (size_t j = 0; f->certs.crls && j < f->certs.crls->n; j++) {
        const struct kigen_crl *crl = &f->certs.crls->v[j];
        bool is_stale = crl->next_update != KIGEN_NO_TIME && v->now >= crl->next_update;

        if (filter && (filter->holder || filter->state >= 0 ||
                       (filter->keystore && strcmp(filter->keystore, f->keystore) != 0)))
            continue;
        v->crls[v->n_crls++] = (struct kigen_crl_record){ f, crl, is_stale };
        v->stale_crls += is_stale;
    }
    for (size_t j = 0; j < f->certs.n; j++) {
        struct kigen_record *rec = &v->records[v->n_records];
        const struct kigen_cert *c = &f->certs.v[j];

        rec->file = f;
        rec->cert = c;
        rec->keystore = ks;
        kigen_config_policy_for(config, f->keystore, c->subject, c->issuer, &rec->policy);
        rec->state = kigen_policy_state(&rec->policy, c->not_before, c->not_after, v->now);
        rec->revocation = NULL;
        rec->wants_revocation = rec->policy.revocation;
        if (rec->policy.revocation && inventory->revocations.n &&
            f->format != KIGEN_FORMAT_DECLARED) {
            char hex[65];

            kigen_cert_sha256_hex(c, hex);
            rec->revocation = kigen_strmap_get(&inventory->revocations, hex);
            if (rec->revocation && rec->revocation->status == KIGEN_REV_REVOKED)
                rec->state = KIGEN_STATE_REVOKED; /* the first row of SPEC §5 */
        }
        rec->renewal_opens = kigen_policy_renewal_opens(&rec->policy, c->not_after);
        kigen_record_holder(inventory, f, c, &rec->holder, &rec->holder_email,
                            &rec->holder_language);
        if (!keep(filter, rec, v->now))
            continue;
        v->counts[rec->state]++;
        v->n_records++;
    }
}

int kigen_view_build(const struct kigen_config *config, const struct kigen_inventory *inventory,
                     int64_t now, const struct kigen_view_filter *filter,
                     struct kigen_view *ret_view)
{
    struct kigen_view v = { .now = now, .revocation_on = kigen_revocation_enabled(config) };

    if (inventory->n_certs) {
        v.records = malloc(inventory->n_certs * sizeof(*v.records));
        if (!v.records)
            return -ENOMEM;
    }
    if (inventory->n_errors) {
        v.errors = malloc(inventory->n_errors * sizeof(*v.errors));
        if (!v.errors) {
            free(v.records);
            return -ENOMEM;
        }
    }
    if (inventory->n_crls) {
        v.crls = malloc(inventory->n_crls * sizeof(*v.crls));
        if (!v.crls) {
            free(v.records);
            free(v.errors);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < inventory->n_files; i++)
        kigen_view_add_file(&v, config, inventory, inventory->files[i], filter);
    if (!(filter && filter->is_unsorted)) {
        kigen_view_sort(&v);
    } else {
        /* Unsorted: the loop's view; kigen_view_sort (on the pool) or the engine counts them. */
        if (v.n_errors)
            qsort(v.errors, v.n_errors, sizeof(*v.errors), cmp_error);
        if (v.n_crls)
            qsort(v.crls, v.n_crls, sizeof(*v.crls), cmp_crl);
    }
    *ret_view = v;
    return 0;
}

void kigen_view_sort(struct kigen_view *view)
{
    if (view->n_records)
        qsort(view->records, view->n_records, sizeof(*view->records), cmp_record);
    if (view->n_errors)
        qsort(view->errors, view->n_errors, sizeof(*view->errors), cmp_error);
    if (view->n_crls)
        qsort(view->crls, view->n_crls, sizeof(*view->crls), cmp_crl);
    view->unique = count_unique(view->records, view->n_records);
}

void kigen_view_done(struct kigen_view *view)
{
    if (!view)
        return;
    free(view->records);
    free(view->errors);
    free(view->crls);
    memset(view, 0, sizeof(*view));
}

void kigen_view_set_probes(struct kigen_view *view, const struct kigen_probe_status *probes,
                           size_t n)
{
    view->probes = probes;
    view->n_probes = n;
    view->probes_down = 0;
    for (size_t i = 0; i < n; i++)
        view->probes_down += probes[i].state == KIGEN_PROBE_DOWN;
}

int kigen_view_exit_status(const struct kigen_view *view)
{
    int status = 0;

    for (int s = 0; s < KIGEN_STATE_COUNT; s++)
        if (view->counts[s] && kigen_state_severity(s) > status)
            status = kigen_state_severity(s);
    if (status == 0 && (view->n_errors || view->probes_down || view->stale_crls))
        status = 1;
    return status;
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

static json_t *labels_json(const struct kigen_keystore *ks)
{
    json_t *o = json_object();

    for (size_t i = 0; ks && o && i < ks->labels.n; i++)
        json_object_set_new(o, ks->labels.v[i].name, json_string(ks->labels.v[i].value));
    return o;
}

/* json_string fails on invalid UTF-8; file names need not be UTF-8. */
static json_t *text_json(const char *s)
{
    json_t *j = json_string(s);
    char *copy;

    if (j)
        return j;
    copy = strdup(s);
    if (!copy)
        return NULL;
    for (unsigned char *p = (unsigned char *)copy; *p; p++)
        if (*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

int64_t kigen_record_last_seen(const struct kigen_record *rec, int64_t now)
{
    return rec->file->is_stale && rec->file->last_seen ? rec->file->last_seen : now;
}

json_t *kigen_report_holder_json(const char *name, const char *email)
{
    json_t *o;

    if (!name)
        return json_null();
    o = json_object();
    if (o) {
        json_object_set_new(o, "name", text_json(name));
        json_object_set_new(o, "email", email ? text_json(email) : json_null());
    }
    return o;
}

static json_t *record_json(const struct kigen_record *rec, int64_t now)
{
    const struct kigen_cert *c = rec->cert;
    char hex[65];
    json_t *o = json_object();

    if (!o)
        return NULL;
    kigen_cert_sha256_hex(c, hex);
    json_object_set_new(o, "sha256", json_string(hex));
    json_object_set_new(o, "keystore", text_json(rec->file->keystore));
    json_object_set_new(o, "path", text_json(rec->file->path));
    json_object_set_new(o, "format", json_string(kigen_format_name(rec->file->format)));
    json_object_set_new(o, "entry", text_json(c->entry));
    json_object_set_new(o, "subject", text_json(c->subject));
    json_object_set_new(o, "issuer", text_json(c->issuer));
    json_object_set_new(o, "serial", json_string(c->serial));
    json_object_set_new(o, "not_before", time_json(c->not_before));
    json_object_set_new(o, "not_after", time_json(c->not_after));
    json_object_set_new(o, "renewal_opens", time_json(rec->renewal_opens));
    json_object_set_new(o, "days_left", json_integer(kigen_days_left(c->not_after, now)));
    json_object_set_new(o, "state", json_string(kigen_state_name(rec->state)));
    json_object_set_new(o, "labels", labels_json(rec->keystore));
    json_object_set_new(o, "last_seen", time_json(kigen_record_last_seen(rec, now)));
    json_object_set_new(o, "holder", kigen_report_holder_json(rec->holder, rec->holder_email));
    if (rec->wants_revocation)
        json_object_set_new(o, "revocation", kigen_report_revocation_json(rec->revocation));
    return o;
}

static json_t *name_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *kigen_report_revocation_json(const struct kigen_revocation_status *rs)
{
    json_t *o;

    if (!rs)
        return json_null();
    o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "status", json_string(kigen_rev_status_name(rs->status)));
    json_object_set_new(o, "source", name_or_null(kigen_rev_source_name(rs->source)));
    json_object_set_new(o, "checked_at", time_json(rs->checked_at));
    json_object_set_new(o, "revoked_at",
                        rs->status == KIGEN_REV_REVOKED ? time_json(rs->revoked_at) : json_null());
    json_object_set_new(o, "reason",
                        rs->status == KIGEN_REV_REVOKED
                            ? name_or_null(kigen_crl_reason_name(rs->reason))
                            : json_null());
    json_object_set_new(o, "error", rs->error[0] ? text_json(rs->error) : json_null());
    return o;
}

static json_t *crl_json(const struct kigen_crl_record *cr)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "keystore", text_json(cr->file->keystore));
    json_object_set_new(o, "path", text_json(cr->file->path));
    json_object_set_new(o, "issuer", text_json(cr->crl->issuer));
    json_object_set_new(o, "this_update", time_json(cr->crl->this_update));
    json_object_set_new(o, "next_update", time_json(cr->crl->next_update));
    json_object_set_new(o, "state", json_string(cr->is_stale ? "stale" : "fresh"));
    return o;
}

static json_t *error_json(const struct kigen_file *f)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "keystore", text_json(f->keystore));
    json_object_set_new(o, "path", text_json(f->path));
    json_object_set_new(o, "error", json_string(kigen_err_name(f->error)));
    json_object_set_new(o, "message", text_json(f->message ? f->message : ""));
    return o;
}

static json_t *summary_json(const struct kigen_view *v)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "certificates", json_integer((json_int_t)v->n_records));
    json_object_set_new(o, "unique", json_integer((json_int_t)v->unique));
    json_object_set_new(o, "ok", json_integer((json_int_t)v->counts[KIGEN_STATE_OK]));
    json_object_set_new(o, "renewal_open",
                        json_integer((json_int_t)v->counts[KIGEN_STATE_RENEWAL_OPEN]));
    json_object_set_new(o, "critical", json_integer((json_int_t)v->counts[KIGEN_STATE_CRITICAL]));
    json_object_set_new(o, "expired", json_integer((json_int_t)v->counts[KIGEN_STATE_EXPIRED]));
    json_object_set_new(o, "not_yet_valid",
                        json_integer((json_int_t)v->counts[KIGEN_STATE_NOT_YET_VALID]));
    if (v->revocation_on || v->counts[KIGEN_STATE_REVOKED])
        json_object_set_new(o, "revoked", json_integer((json_int_t)v->counts[KIGEN_STATE_REVOKED]));
    json_object_set_new(o, "errors", json_integer((json_int_t)v->n_errors));
    json_object_set_new(o, "probes_down", json_integer((json_int_t)v->probes_down));
    return o;
}

struct json_t *kigen_report_summary_json(const struct kigen_view *view)
{
    return summary_json(view);
}

struct json_t *kigen_report_text_json(const char *s)
{
    return text_json(s);
}

struct json_t *kigen_report_probe_json(const struct kigen_probe_status *st)
{
    bool failed = st->error[0] != '\0';
    json_t *o = json_object();

    if (!o)
        return NULL;
    json_object_set_new(o, "name", text_json(st->name));
    json_object_set_new(o, "host", text_json(st->host));
    json_object_set_new(o, "port", json_integer(st->port));
    json_object_set_new(o, "state", json_string(kigen_probe_state_name(st->state)));
    /* Hundredths of a millisecond are all a network time means. */
    json_object_set_new(o, "connect_ms",
                        st->connect_ms >= 0 ? json_real(round(st->connect_ms * 100) / 100)
                                            : json_null());
    json_object_set_new(o, "tls_not_after",
                        st->tls_not_after ? time_json(st->tls_not_after) : json_null());
    json_object_set_new(o, "tls_chain_not_after",
                        st->tls_chain_not_after ? time_json(st->tls_chain_not_after) : json_null());
    json_object_set_new(o, "error", failed ? json_string(st->error) : json_null());
    json_object_set_new(o, "detail", failed ? text_json(st->detail) : json_null());
    return o;
}

/* Where the document goes: a FILE or a growing buffer, both through jansson's callback type. */
struct out {
    json_dump_callback_t write;
    void *data;
};

static int put(const struct out *o, const char *s)
{
    return o->write(s, strlen(s), o->data) == 0 ? 0 : -EIO;
}

/* Dumps and frees j; a NULL j (ENOMEM while building) fails the report. */
static int dump(const struct out *o, json_t *j)
{
    int r = j && json_dump_callback(j, o->write, o->data,
                                    JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(12)) == 0
                ? 0
                : -EIO;

    json_decref(j);
    return r;
}

/*
 * The document is streamed one record at a time: building the whole tree for 100,000
 * certificates would cost far more memory than the inventory itself. nl goes between records
 * and after the document: "\n" for files, "" for the socket's one-line answer.
 */
static int write_document(const struct out *o, const struct kigen_view *view, const char *nl)
{
    char now[KIGEN_RFC3339_LEN], head[128];
    int r;

    kigen_time_format_utc(view->now, now);
    snprintf(head, sizeof(head), "{\"generated_at\":\"%s\",\"summary\":", now);
    r = put(o, head);
    if (r == 0)
        r = dump(o, summary_json(view));
    if (r == 0)
        r = put(o, ",") < 0 || put(o, nl) < 0 || put(o, "\"certificates\":[") < 0 ? -EIO : 0;
    for (size_t i = 0; i < view->n_records && r == 0; i++) {
        r = put(o, i ? "," : "");
        if (r == 0)
            r = put(o, nl);
        if (r == 0)
            r = dump(o, record_json(&view->records[i], view->now));
    }
    if (r == 0)
        r = put(o, "],") < 0 || put(o, nl) < 0 || put(o, "\"errors\":[") < 0 ? -EIO : 0;
    for (size_t i = 0; i < view->n_errors && r == 0; i++) {
        r = put(o, i ? "," : "");
        if (r == 0)
            r = put(o, nl);
        if (r == 0)
            r = dump(o, error_json(view->errors[i]));
    }
    if (r == 0)
        r = put(o, "],") < 0 || put(o, nl) < 0 || put(o, "\"probes\":[") < 0 ? -EIO : 0;
    for (size_t i = 0; i < view->n_probes && r == 0; i++) {
        r = put(o, i ? "," : "");
        if (r == 0)
            r = put(o, nl);
        if (r == 0)
            r = dump(o, kigen_report_probe_json(&view->probes[i]));
    }
    if (r == 0)
        r = put(o, "],") < 0 || put(o, nl) < 0 || put(o, "\"crls\":[") < 0 ? -EIO : 0;
    for (size_t i = 0; i < view->n_crls && r == 0; i++) {
        r = put(o, i ? "," : "");
        if (r == 0)
            r = put(o, nl);
        if (r == 0)
            r = dump(o, crl_json(&view->crls[i]));
    }
    if (r == 0)
        r = put(o, "]}") < 0 || put(o, nl) < 0 ? -EIO : 0;
    return r;
}

static int file_write_cb(const char *s, size_t len, void *data)
{
    return fwrite(s, 1, len, data) == len ? 0 : -1;
}

int kigen_report_json(FILE *out, const struct kigen_view *view)
{
    struct out o = { file_write_cb, out };
    int r = write_document(&o, view, "\n");

    if (r == 0 && (fflush(out) != 0 || ferror(out)))
        r = -EIO;
    return r;
}

struct buf {
    char *p;
    size_t len;
    size_t cap;
};

static int buf_write_cb(const char *s, size_t len, void *data)
{
    struct buf *b = data;

    if (b->cap - b->len <= len) {
        size_t cap = b->cap;
        char *p;

        while (cap - b->len <= len) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

/* About what one record costs in the document; a good guess saves most of the reallocs. */
#define RECORD_GUESS 640
#define ERROR_GUESS  256

int kigen_report_json_text(const struct kigen_view *view, char **ret_text, size_t *ret_len)
{
    struct buf b = { 0 };
    struct out o = { buf_write_cb, &b };
    char *p;
    int r;

    b.cap = 1024;
    if (view->n_records < (SIZE_MAX / 4) / RECORD_GUESS &&
        view->n_errors < (SIZE_MAX / 4) / ERROR_GUESS)
        b.cap += view->n_records * RECORD_GUESS + view->n_errors * ERROR_GUESS;
    b.p = malloc(b.cap);
    if (!b.p)
        return -ENOMEM;
    r = write_document(&o, view, "");
    if (r < 0) {
        free(b.p);
        return -ENOMEM; /* the only way a buffer write fails */
    }
    /* Give back the guess's slack: the answer may wait a long time for a slow client. */
    p = realloc(b.p, b.len + 1);
    if (p)
        b.p = p;
    *ret_text = b.p;
    *ret_len = b.len;
    return 0;
}

static const char *state_colour(enum kigen_state state)
{
    switch (state) {
    case KIGEN_STATE_OK:
        return "\033[32m";
    case KIGEN_STATE_RENEWAL_OPEN:
    case KIGEN_STATE_NOT_YET_VALID:
        return "\033[33m";
    case KIGEN_STATE_CRITICAL:
    case KIGEN_STATE_EXPIRED:
    case KIGEN_STATE_REVOKED:
        return "\033[31m";
    }
    return "";
}

static const char *probe_colour(enum kigen_probe_state state)
{
    switch (state) {
    case KIGEN_PROBE_UP:
        return "\033[32m";
    case KIGEN_PROBE_DOWN:
        return "\033[31m";
    default:
        return "\033[33m";
    }
}

/*
 * A heading in a column width wide (right-aligned when is_right), padded by display columns:
 * a translated heading may hold kana and kanji, two columns each (a lead byte from 0xE1 on,
 * U+1000 and up, is taken as wide: headings are ours). ASCII pads as printf's %-*s does.
 */
static void heading(FILE *out, const char *s, size_t width, bool is_right)
{
    size_t w = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            w += *p >= 0xE1 ? 2 : 1;
    for (; is_right && w < width; w++)
        fputc(' ', out);
    fputs(s, out);
    for (; w < width; w++)
        fputc(' ', out);
}

/* A column's heading (a msgid), its width (negative: right-aligned; 0: last) and the gap after. */
struct column {
    const char *text;
    int width;
    const char *gap;
};

static const struct column cert_columns[] = {
    { N_("STATE"), 13, " " },
    { N_("DAYS"), -6, "  " },
    { N_("NOT AFTER"), 20, "  " },
    { N_("KEYSTORE"), 14, " " },
    { N_("LOCATION / SUBJECT"), 0, "" },
};
static const struct column error_columns[] = {
    { N_("ERROR"), 15, " " },
    { N_("KEYSTORE"), 14, " " },
    { N_("PATH: REASON"), 0, "" },
};
static const struct column probe_columns[] = {
    { N_("PROBE"), 12, " " },
    { N_("NAME"), 16, " " },
    { N_("HOST:PORT"), 32, " " },
    { N_("CONNECT / ERROR"), 0, "" },
};

/* The heading line of n columns, in lang. */
static void headings(FILE *out, enum kigen_language lang, const struct column *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        heading(out, kigen_tr(lang, c[i].text), (size_t)abs(c[i].width), c[i].width < 0);
        fputs(c[i].gap, out);
    }
    fputc('\n', out);
}

#define HEADINGS(out, lang, columns) \
    headings((out), (lang), (columns), sizeof(columns) / sizeof((columns)[0]))

/* Japanese dates ("2026年12月27日(日) 12:51 JST") take 28 columns. */
static const struct column cert_columns_ja[] = {
    { N_("STATE"), 13, " " },
    { N_("DAYS"), -6, "  " },
    { N_("NOT AFTER"), 28, "  " },
    { N_("KEYSTORE"), 14, " " },
    { N_("LOCATION / SUBJECT"), 0, "" },
};

/* A state for people: the JSON name in English (as before), the label of kigenctl in lang. */
static const char *state_text(enum kigen_language lang, enum kigen_state s)
{
    static const char *const labels[KIGEN_STATE_COUNT] = {
        [KIGEN_STATE_OK] = N_("ok"),
        [KIGEN_STATE_RENEWAL_OPEN] = N_("renewal open"),
        [KIGEN_STATE_CRITICAL] = N_("critical"),
        [KIGEN_STATE_EXPIRED] = N_("expired"),
        [KIGEN_STATE_NOT_YET_VALID] = N_("not yet valid"),
        [KIGEN_STATE_REVOKED] = N_("revoked"),
    };

    return lang == KIGEN_LANGUAGE_EN || (unsigned)s >= KIGEN_STATE_COUNT
               ? kigen_state_name(s)
               : kigen_tr(lang, labels[s]);
}

static const char *probe_state_text(enum kigen_language lang, enum kigen_probe_state s)
{
    const char *name = kigen_probe_state_name(s);

    return lang == KIGEN_LANGUAGE_EN ? name : kigen_tr(lang, name);
}

/* A date for people in the process's zone: as before in English, Japanese style in ja. */
static void table_time(enum kigen_language lang, int64_t t, char *out, size_t len)
{
    if (lang == KIGEN_LANGUAGE_EN)
        kigen_time_format_local(t, out, len);
    else
        kigen_i18n_time(lang, NULL, t, out, len);
}

int kigen_report_table(FILE *out, const struct kigen_view *view, bool colour,
                       enum kigen_language lang)
{
    char date[64];

    const int date_width = lang == KIGEN_LANGUAGE_EN ? 20 : 28;

    if (lang == KIGEN_LANGUAGE_EN)
        HEADINGS(out, lang, cert_columns);
    else
        HEADINGS(out, lang, cert_columns_ja);
    for (size_t i = 0; i < view->n_records; i++) {
        const struct kigen_record *rec = &view->records[i];

        table_time(lang, rec->cert->not_after, date, sizeof(date));
        fputs(colour ? state_colour(rec->state) : "", out);
        heading(out, state_text(lang, rec->state), 13, false);
        fprintf(out, "%s %6lld  ", colour ? "\033[0m" : "",
                (long long)kigen_days_left(rec->cert->not_after, view->now));
        heading(out, date, (size_t)date_width, false);
        fprintf(out, "  %-14s %s [%s]\n", rec->file->keystore, rec->file->path, rec->cert->entry);
        fprintf(out, "%-13s %6s  %-*s  %-14s %s", "", "", date_width, "", "", rec->cert->subject);
        if (rec->holder)
            fprintf(out, _(lang, " (holder: %s)"), rec->holder);
        fputc('\n', out);
        if (kigen_record_last_seen(rec, view->now) != view->now) {
            table_time(lang, rec->file->last_seen, date, sizeof(date));
            fprintf(out, "%-13s %6s  %-*s  %-14s ", "", "", date_width, "", "");
            fprintf(out, _(lang, "(keystore unavailable; last seen %s)\n"), date);
        }
    }
    if (view->n_errors) {
        fputc('\n', out);
        HEADINGS(out, lang, error_columns);
        for (size_t i = 0; i < view->n_errors; i++) {
            const struct kigen_file *f = view->errors[i];

            heading(out, kigen_err_text(lang, f->error), 15, false);
            fprintf(out, " %-14s %s: %s\n", f->keystore, f->path, f->message ? f->message : "");
        }
    }
    if (view->n_probes) {
        fputc('\n', out);
        HEADINGS(out, lang, probe_columns);
        for (size_t i = 0; i < view->n_probes; i++) {
            const struct kigen_probe_status *p = &view->probes[i];
            char hostport[300], connect[32] = "-";

            bool is_ipv6 = strchr(p->host, ':') != NULL;

            snprintf(hostport, sizeof(hostport), "%s%s%s:%u", is_ipv6 ? "[" : "", p->host,
                     is_ipv6 ? "]" : "", (unsigned)p->port);
            if (p->connect_ms >= 0)
                snprintf(connect, sizeof(connect), "%.1f ms", p->connect_ms);
            fputs(colour ? probe_colour(p->state) : "", out);
            heading(out, probe_state_text(lang, p->state), 12, false);
            fprintf(out, "%s %-16s %-32s %s%s%s%s\n", colour ? "\033[0m" : "", p->name, hostport,
                    p->error[0] ? "" : connect, p->error, p->error[0] ? ": " : "", p->detail);
            if (p->tls_not_after) {
                table_time(lang, p->tls_not_after, date, sizeof(date));
                fprintf(out, "%-12s %-16s %-32s ", "", "", "");
                fprintf(out, _(lang, "server certificate until %s\n"), date);
            }
            /* The earliest of the chain, when an intermediate or the root ends first. */
            if (p->tls_chain_not_after && p->tls_chain_not_after < p->tls_not_after) {
                table_time(lang, p->tls_chain_not_after, date, sizeof(date));
                fprintf(out, "%-12s %-16s %-32s ", "", "", "");
                fprintf(out, _(lang, "certificate chain until %s\n"), date);
            }
        }
    }
    table_time(lang, view->now, date, sizeof(date));
    fprintf(out,
            _(lang,
              "\n%zu certificates (%zu unique) at %s: %zu ok, %zu renewal open, %zu critical, "
              "%zu expired, %zu not yet valid; %zu unreadable files; %zu of %zu probes "
              "down\n"),
            view->n_records, view->unique, date, view->counts[KIGEN_STATE_OK],
            view->counts[KIGEN_STATE_RENEWAL_OPEN], view->counts[KIGEN_STATE_CRITICAL],
            view->counts[KIGEN_STATE_EXPIRED], view->counts[KIGEN_STATE_NOT_YET_VALID],
            view->n_errors, view->probes_down, view->n_probes);
    if (view->counts[KIGEN_STATE_REVOKED])
        fprintf(out, _(lang, "%zu revoked: they cannot be renewed; remove the files\n"),
                view->counts[KIGEN_STATE_REVOKED]);
    for (size_t i = 0; i < view->n_crls; i++) {
        const struct kigen_crl_record *cr = &view->crls[i];

        if (!cr->is_stale)
            continue;
        table_time(lang, cr->crl->next_update, date, sizeof(date));
        fprintf(out, _(lang, "stale CRL %s (%s): its next update was due %s\n"), cr->file->path,
                cr->crl->issuer, date);
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : -EIO;
}
