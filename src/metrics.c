/*
 * Metrics of SPEC §10 in the Prometheus text exposition format (version 0.0.4), and the
 * atomic file write that node_exporter's textfile collector needs.
 *
 * Every certificate gives two samples by default and up to eight with every option (three
 * dates and five states), all sharing one label set, so each label set is escaped once into
 * an arena and copied for each sample, and all goes into one growing buffer sized from the
 * arena up front. The cost is that copying, not formatting.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "policy.h"
#include "probe.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct out {
    char *s;
    size_t len, cap;
    bool failed;
};

static void reserve(struct out *o, size_t n)
{
    size_t cap;
    char *v;

    if (o->failed || o->cap - o->len >= n + 1)
        return;
    cap = o->cap ? o->cap : 4096;
    while (cap - o->len < n + 1)
        cap *= 2;
    v = realloc(o->s, cap);
    if (!v) {
        o->failed = true;
        return;
    }
    o->s = v;
    o->cap = cap;
}

static void add(struct out *o, const char *s, size_t n)
{
    reserve(o, n);
    if (o->failed)
        return;
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void add_str(struct out *o, const char *s)
{
    add(o, s, strlen(s));
}

static void add_int(struct out *o, int64_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    add(o, p, (size_t)(buf + sizeof(buf) - p));
}

/* A label value: '\', '"' and newline are escaped as the exposition format requires. */
static void add_escaped(struct out *o, const char *v)
{
    for (;;) {
        size_t n = strcspn(v, "\\\"\n");

        add(o, v, n);
        v += n;
        if (!*v)
            return;
        add(o, *v == '\n' ? "\\n" : *v == '"' ? "\\\"" : "\\\\", 2);
        v++;
    }
}

static void add_label(struct out *o, bool first, const char *name, const char *value)
{
    if (!first)
        add(o, ",", 1);
    add_str(o, name);
    add(o, "=\"", 2);
    add_escaped(o, value);
    add(o, "\"", 1);
}

/*
 * keystore path entry subject_cn issuer_cn, then what options add of subject issuer serial
 * sha256, holder when known (SPEC §10), then the keystore's configured labels. scratch holds
 * the common names while they are unescaped.
 */
static void add_record_labels(struct out *o, struct out *scratch, const struct kigen_record *rec,
                              const struct kigen_metrics *options)
{
    const char *dn[2] = { rec->cert->subject, rec->cert->issuer };
    static const char *const cn_names[2] = { "subject_cn", "issuer_cn" };
    char hex[65];

    add_label(o, true, "keystore", rec->file->keystore);
    add_label(o, false, "path", rec->file->path);
    add_label(o, false, "entry", rec->cert->entry);
    for (int i = 0; i < 2; i++) {
        reserve(scratch, strlen(dn[i]));
        if (scratch->failed) {
            o->failed = true;
            return;
        }
        kigen_dn_first_cn(dn[i], scratch->s);
        add_label(o, false, cn_names[i], scratch->s);
    }
    if (options->labels & KIGEN_METRICS_SUBJECT)
        add_label(o, false, "subject", rec->cert->subject);
    if (options->labels & KIGEN_METRICS_ISSUER)
        add_label(o, false, "issuer", rec->cert->issuer);
    if (options->labels & KIGEN_METRICS_SERIAL)
        add_label(o, false, "serial", rec->cert->serial);
    if (options->labels & KIGEN_METRICS_SHA256) {
        kigen_cert_sha256_hex(rec->cert, hex);
        add_label(o, false, "sha256", hex);
    }
    if (rec->holder)
        add_label(o, false, "holder", rec->holder);
    if (rec->keystore)
        for (size_t i = 0; i < rec->keystore->labels.n; i++)
            add_label(o, false, rec->keystore->labels.v[i].name, rec->keystore->labels.v[i].value);
}

static void add_typed_header(struct out *o, const char *name, const char *help, const char *type)
{
    add(o, "# HELP ", 7);
    add_str(o, name);
    add(o, " ", 1);
    add_str(o, help);
    add(o, "\n# TYPE ", 8);
    add_str(o, name);
    add(o, " ", 1);
    add_str(o, type);
    add(o, "\n", 1);
}

static void add_header(struct out *o, const char *name, const char *help)
{
    add_typed_header(o, name, help, "gauge");
}

/* SPEC §13: kigen_crl_next_update_seconds{keystore,path,issuer_cn} of each CRL file's CRL. */
static void add_crls(struct out *o, struct out *scratch, const struct kigen_view *view)
{
    add_header(o, "kigen_crl_next_update_seconds",
               "When each CRL found in a keystore is due to be replaced, in Unix time.");
    for (size_t i = 0; i < view->n_crls; i++) {
        const struct kigen_crl_record *cr = &view->crls[i];

        if (cr->crl->next_update == KIGEN_NO_TIME)
            continue;
        scratch->len = 0;
        reserve(scratch, strlen(cr->crl->issuer) + 1);
        if (scratch->failed)
            return;
        kigen_dn_first_cn(cr->crl->issuer, scratch->s);
        add_str(o, "kigen_crl_next_update_seconds{");
        add_label(o, true, "keystore", cr->file->keystore);
        add_label(o, false, "path", cr->file->path);
        add_label(o, false, "issuer_cn", scratch->s);
        add(o, "} ", 2);
        add_int(o, cr->crl->next_update);
        add(o, "\n", 1);
    }
}

/* name{labels[,extra]} value */
static void add_sample(struct out *o, const char *name, const char *labels, size_t labels_len,
                       const char *extra, int64_t value)
{
    add_str(o, name);
    add(o, "{", 1);
    add(o, labels, labels_len);
    if (extra) {
        if (labels_len)
            add(o, ",", 1);
        add_str(o, extra);
    }
    add(o, "} ", 2);
    add_int(o, value);
    add(o, "\n", 1);
}

static void add_probe_labels(struct out *o, const struct kigen_probe_status *st)
{
    char port[8];

    snprintf(port, sizeof(port), "%u", (unsigned)st->port);
    add_label(o, true, "name", st->name);
    add_label(o, false, "host", st->host);
    add_label(o, false, "port", port);
}

/* One probe sample: name{name,host,port[,extra]} and the value as text. */
static void add_probe_sample(struct out *o, const char *metric, const struct kigen_probe_status *st,
                             const char *extra, const char *value)
{
    add_str(o, metric);
    add(o, "{", 1);
    add_probe_labels(o, st);
    if (extra) {
        add(o, ",", 1);
        add_str(o, extra);
    }
    add(o, "} ", 2);
    add_str(o, value);
    add(o, "\n", 1);
}

/*
 * kigen_probe_up, _duration_seconds, _tls_not_after_seconds (SPEC §10) and
 * _tls_chain_not_after_seconds (§8) once a target has a result (the TLS ones once it has a
 * chain), and kigen_probe_state, which says what the alerts say: down only after
 * failures_before_alert failures, maintenance while a window covers the failures.
 */
static void add_probes(struct out *o, const struct kigen_probe_status *v, size_t n)
{
    static const enum kigen_probe_state states[] = { KIGEN_PROBE_UNKNOWN, KIGEN_PROBE_UP,
                                                     KIGEN_PROBE_DOWN, KIGEN_PROBE_MAINTENANCE };
    char buf[64];

    add_header(o, "kigen_probe_up", "1 when the last probe of the target succeeded, else 0.");
    for (size_t i = 0; i < n; i++)
        if (v[i].last_probe)
            add_probe_sample(o, "kigen_probe_up", &v[i], NULL, v[i].error[0] ? "0" : "1");
    add_header(o, "kigen_probe_duration_seconds", "How long the last probe of the target took.");
    for (size_t i = 0; i < n; i++) {
        if (!v[i].last_probe)
            continue;
        snprintf(buf, sizeof(buf), "%.6f", v[i].duration_ms / 1000.0);
        add_probe_sample(o, "kigen_probe_duration_seconds", &v[i], NULL, buf);
    }
    add_header(o, "kigen_probe_tls_not_after_seconds",
               "End of the validity of the target's TLS server certificate, in Unix time.");
    for (size_t i = 0; i < n; i++) {
        if (!v[i].tls_not_after)
            continue;
        snprintf(buf, sizeof(buf), "%lld", (long long)v[i].tls_not_after);
        add_probe_sample(o, "kigen_probe_tls_not_after_seconds", &v[i], NULL, buf);
    }
    add_header(o, "kigen_probe_tls_chain_not_after_seconds",
               "End of the validity of the certificate of the target's TLS chain (server "
               "certificates and trust anchor) that ends first, in Unix time.");
    for (size_t i = 0; i < n; i++) {
        if (!v[i].tls_chain_not_after)
            continue;
        snprintf(buf, sizeof(buf), "%lld", (long long)v[i].tls_chain_not_after);
        add_probe_sample(o, "kigen_probe_tls_chain_not_after_seconds", &v[i], NULL, buf);
    }
    add_header(o, "kigen_probe_state",
               "1 for the target's current state (unknown, up, down, maintenance), 0 for the "
               "others.");
    for (size_t i = 0; i < n; i++) {
        for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
            snprintf(buf, sizeof(buf), "state=\"%s\"", kigen_probe_state_name(states[s]));
            add_probe_sample(o, "kigen_probe_state", &v[i], buf,
                             v[i].state == states[s] ? "1" : "0");
        }
    }
}

enum date {
    NOT_AFTER,
    NOT_BEFORE,
    RENEWAL_OPENS
};

static int64_t date_of(const struct kigen_record *rec, enum date d)
{
    return d == NOT_AFTER    ? rec->cert->not_after
           : d == NOT_BEFORE ? rec->cert->not_before
                             : rec->renewal_opens;
}

void kigen_metrics_extra_add_sink(struct kigen_metrics_extra *extra, const char *sink,
                                  uint64_t failed)
{
    if (extra->n_deliveries >= KIGEN_METRICS_MAX_SINKS)
        return;
    snprintf(extra->deliveries[extra->n_deliveries].sink,
             sizeof(extra->deliveries[extra->n_deliveries].sink), "%s", sink);
    extra->deliveries[extra->n_deliveries++].failed = failed;
}

int kigen_metrics_render(const struct kigen_view *view, const struct kigen_metrics_extra *extra,
                         char **ret_text, size_t *ret_len)
{
    static const struct {
        const char *name, *help;
    } dates[] = {
        [NOT_AFTER] = { "kigen_cert_not_after_seconds",
                        "End of the certificate's validity, in Unix time." },
        [NOT_BEFORE] = { "kigen_cert_not_before_seconds",
                         "Start of the certificate's validity, in Unix time." },
        [RENEWAL_OPENS] = { "kigen_cert_renewal_opens_seconds",
                            "When the renewal window opens (not_after - renew_before), in Unix "
                            "time." },
    };
    static const struct kigen_metrics lean = { 0 };
    const struct kigen_metrics *options = extra ? &extra->options : &lean;
    struct out labels = { 0 }, scratch = { 0 }, o = { 0 };
    size_t *offs = NULL, errors[KIGEN_E_LAST - KIGEN_E_UNREADABLE + 1] = { 0 };
    size_t states[KIGEN_STATE_COUNT] = { 0 }, per_record;
    char buf[64];
    int r = -ENOMEM;

    /* Every label set once; offs[i] .. offs[i + 1] is record i's. */
    offs = malloc((view->n_records + 1) * sizeof(*offs));
    if (!offs)
        goto out;
    offs[0] = 0;
    for (size_t i = 0; i < view->n_records; i++) {
        add_record_labels(&labels, &scratch, &view->records[i], options);
        offs[i + 1] = labels.len;
        if ((unsigned)view->records[i].state < KIGEN_STATE_COUNT)
            states[view->records[i].state]++;
    }
    if (labels.failed)
        goto out;
    /* Samples per record: the labels and about 60 bytes of name and value each. */
    per_record =
        2 + (options->not_before ? 1 : 0) + (options->state_series ? KIGEN_STATE_COUNT : 0);
    reserve(&o, per_record * (labels.len + 64 * view->n_records) + 4096);

    for (size_t d = 0; d < sizeof(dates) / sizeof(dates[0]); d++) {
        if (d == NOT_BEFORE && !options->not_before)
            continue;
        add_header(&o, dates[d].name, dates[d].help);
        for (size_t i = 0; i < view->n_records; i++)
            if (date_of(&view->records[i], (enum date)d) != KIGEN_NO_TIME)
                add_sample(&o, dates[d].name, labels.s + offs[i], offs[i + 1] - offs[i], NULL,
                           date_of(&view->records[i], (enum date)d));
    }
    if (options->state_series) {
        add_header(&o, "kigen_cert_state",
                   "1 for the certificate's current state (ok, renewal_open, critical, expired, "
                   "not_yet_valid, revoked), 0 for the others.");
        for (size_t i = 0; i < view->n_records; i++) {
            for (int s = 0; s < KIGEN_STATE_COUNT; s++) {
                snprintf(buf, sizeof(buf), "state=\"%s\"", kigen_state_name((enum kigen_state)s));
                add_sample(&o, "kigen_cert_state", labels.s + offs[i], offs[i + 1] - offs[i], buf,
                           (int)view->records[i].state == s);
            }
        }
    }

    if (view->n_probes)
        add_probes(&o, view->probes, view->n_probes);
    if (view->n_crls)
        add_crls(&o, &scratch, view);

    for (size_t i = 0; i < view->n_errors; i++) {
        int e = view->errors[i]->error;

        if (e >= KIGEN_E_UNREADABLE && e <= KIGEN_E_LAST)
            errors[e - KIGEN_E_UNREADABLE]++;
    }
    add_header(&o, "kigen_scan_errors", "Files that could not be read, by error kind.");
    for (int e = KIGEN_E_UNREADABLE; e <= KIGEN_E_LAST; e++) {
        snprintf(buf, sizeof(buf), "error=\"%s\"", kigen_err_name(e));
        add_sample(&o, "kigen_scan_errors", "", 0, buf, (int64_t)errors[e - KIGEN_E_UNREADABLE]);
    }
    add_header(&o, "kigen_scan_duration_seconds", "How long the last full scan took.");
    snprintf(buf, sizeof(buf), "kigen_scan_duration_seconds %.9g\n",
             extra ? extra->scan_duration_seconds : 0.0);
    add_str(&o, buf);
    if (extra && extra->n_deliveries) {
        add_typed_header(&o, "kigen_alert_deliveries_failed_total",
                         "Alert deliveries given up after retrying, per durable sink.", "counter");
        for (size_t i = 0; i < extra->n_deliveries; i++) {
            add_str(&o, "kigen_alert_deliveries_failed_total{");
            add_label(&o, true, "sink", extra->deliveries[i].sink);
            add(&o, "} ", 2);
            add_int(&o, (int64_t)extra->deliveries[i].failed);
            add(&o, "\n", 1);
        }
    }
    add_header(&o, "kigen_certificates",
               "Certificates in the inventory (one per file and entry), by state.");
    for (int s = 0; s < KIGEN_STATE_COUNT; s++) {
        snprintf(buf, sizeof(buf), "state=\"%s\"", kigen_state_name((enum kigen_state)s));
        add_sample(&o, "kigen_certificates", "", 0, buf, (int64_t)states[s]);
    }
    if (o.failed)
        goto out;
    *ret_text = o.s;
    *ret_len = o.len;
    o.s = NULL;
    r = 0;
out:
    free(o.s);
    free(scratch.s);
    free(labels.s);
    free(offs);
    return r;
}

struct textfile_job {
    uv_work_t work;
    char *path;
    char *text;
    size_t len;
    int result;
    void (*done_cb)(int status, void *data);
    void *data;
};

static void textfile_job_free(struct textfile_job *job)
{
    if (!job)
        return;
    free(job->path);
    free(job->text);
    free(job);
}

/* fsync() of the directory makes the rename durable; some file systems cannot, ignoring. */
static int sync_dir(const char *path)
{
    char *copy = strdup(path);
    int fd, r = 0;

    if (!copy)
        return -ENOMEM;
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        r = -errno;
    else if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS)
        r = -errno;
    if (fd >= 0)
        close(fd);
    free(copy);
    return r;
}

/*
 * PATH.tmp.<pid>.XXXXXX in the same directory, written, flushed, given mode 0644 (the reader
 * is often another user, such as node_exporter) and renamed over PATH. The random suffix
 * keeps two writes of the same path apart. Thread pool: touches only its arguments.
 */
static int write_atomically(const char *path, const char *text, size_t len)
{
    char *tmp = NULL;
    bool is_created = false;
    size_t off = 0;
    int fd = -1, r = 0;

    if (asprintf(&tmp, "%s.tmp.%ld.XXXXXX", path, (long)getpid()) < 0) {
        tmp = NULL;
        r = -ENOMEM;
        goto out;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    is_created = true;
    if (fchmod(fd, 0644) < 0) {
        r = -errno;
        goto out;
    }
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = -errno;
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) < 0) {
        r = -errno;
        goto out;
    }
    r = close(fd) < 0 ? -errno : 0;
    fd = -1;
    if (r < 0)
        goto out;
    if (rename(tmp, path) < 0) {
        r = -errno;
        goto out;
    }
    is_created = false;
    r = sync_dir(path);
out:
    if (fd >= 0)
        close(fd);
    if (is_created)
        unlink(tmp);
    free(tmp);
    return r;
}

static void textfile_work_cb(uv_work_t *work)
{
    struct textfile_job *job = container_of(work, struct textfile_job, work);

    job->result = write_atomically(job->path, job->text, job->len);
}

static void textfile_after_cb(uv_work_t *work, int status)
{
    struct textfile_job *job = container_of(work, struct textfile_job, work);

    if (job->done_cb)
        job->done_cb(status < 0 ? status : job->result, job->data);
    textfile_job_free(job);
}

int kigen_textfile_write(uv_loop_t *loop, const char *path, char *text, size_t len,
                         void (*done_cb)(int status, void *data), void *data)
{
    struct textfile_job *job = calloc(1, sizeof(*job));
    int r;

    if (!job) {
        free(text);
        return -ENOMEM;
    }
    job->text = text;
    job->len = len;
    job->done_cb = done_cb;
    job->data = data;
    job->path = strdup(path);
    if (!job->path) {
        r = -ENOMEM;
        goto out;
    }
    r = uv_queue_work(loop, &job->work, textfile_work_cb, textfile_after_cb);
    if (r < 0)
        goto out;
    job = NULL;
out:
    textfile_job_free(job);
    return r;
}
