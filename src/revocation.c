/* Revocation (SPEC §13): see revocation.h. */
#include "revocation.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "inventory.h"
#include "read.h"
#include "readfile.h"
#include "timeutil.h"

#define FETCH_TIMEOUT_MS 10000L
#define MAX_REDIRECTS    3
#define MAX_CANDIDATES   4

/* One certificate to check, with copies of what the run needs (the inventory may change). */
struct item {
    char sha[65];
    struct kigen_der *cert;                    /* NULL: it names no CRL or OCSP URL */
    struct kigen_der *issuers[MAX_CANDIDATES]; /* certificates named as its issuer */
    size_t n_issuers;
    struct kigen_revocation_status answer;
};

/* What one URL gave in this run (a CRL, or an OCSP answer for one certificate). */
struct answer {
    X509_CRL *crl;
    OCSP_BASICRESP *ocsp;
    int64_t fetched_at;
    const char *kind; /* the failure kind, or NULL */
    char error[200];
};

struct kigen_revocation_run {
    struct item *items;
    size_t n_items;
    char **hosts;
    size_t n_hosts;
    int64_t interval;
    uint64_t max_size;
    char *proxy;
    char *cache_dir;
    int64_t now;
    int64_t next_due;
    struct kigen_revocation_failure *failures;
    size_t n_failures;
    struct kigen_strmap answers; /* cache key -> struct answer *, while executing */
    X509_STORE *system;          /* the system trust store, loaded when first needed */
    bool system_loaded;
    atomic_bool cancel;
};

/* When a URL was last asked, and what went wrong then (empty kind: nothing). */
struct attempt {
    int64_t at;
    const char *kind;
    char error[200];
};

const char *kigen_rev_status_name(enum kigen_rev_status status)
{
    switch (status) {
    case KIGEN_REV_GOOD:
        return "good";
    case KIGEN_REV_REVOKED:
        return "revoked";
    case KIGEN_REV_UNKNOWN:
        break;
    }
    return "unknown";
}

const char *kigen_rev_source_name(enum kigen_rev_source source)
{
    return source == KIGEN_REV_SOURCE_CRL ? "crl" : source == KIGEN_REV_SOURCE_OCSP ? "ocsp" : NULL;
}

const char *kigen_crl_reason_name(int reason)
{
    static const char *const names[] = {
        "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
        "superseded",    "cessationOfOperation", "certificateHold", NULL,
        "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
    };

    return reason >= 0 && (size_t)reason < sizeof(names) / sizeof(names[0]) ? names[reason] : NULL;
}

static void free_cb(const char *key, void *value, void *data)
{
    (void)key;
    (void)data;
    free(value);
}

void kigen_revocation_memory_done(struct kigen_revocation_memory *memory)
{
    if (!memory)
        return;
    kigen_strmap_foreach(&memory->attempts, free_cb, NULL);
    kigen_strmap_clear(&memory->attempts);
}

void kigen_revocation_map_clear(struct kigen_strmap *map)
{
    kigen_strmap_foreach(map, free_cb, NULL);
    kigen_strmap_clear(map);
}

/* ---- collecting, on the loop ---- */

static struct kigen_der *der_copy(const struct kigen_der *d)
{
    struct kigen_der *c = malloc(sizeof(*c) + d->len);

    if (c) {
        c->len = d->len;
        memcpy(c->bytes, d->bytes, d->len);
    }
    return c;
}

/* Certificates by subject: those kept with their DER (CAs among them), at most a few each. */
struct candidates {
    const struct kigen_der *v[MAX_CANDIDATES];
    size_t n;
};

bool kigen_revocation_enabled(const struct kigen_config *config)
{
    if (config->policy.revocation)
        return true;
    for (size_t i = 0; i < config->n_rules; i++)
        if (config->rules[i].set.has_revocation && config->rules[i].set.revocation)
            return true;
    return false;
}

static void item_free(struct item *it)
{
    free(it->cert);
    for (size_t i = 0; i < it->n_issuers; i++)
        free(it->issuers[i]);
}

static int index_candidates(const struct kigen_inventory *inventory, struct kigen_strmap *index)
{
    for (size_t i = 0; i < inventory->n_files; i++) {
        const struct kigen_file *f = inventory->files[i];

        for (size_t j = 0; j < f->certs.n; j++) {
            const struct kigen_cert *c = &f->certs.v[j];
            struct candidates *cand;

            if (!c->der)
                continue;
            cand = kigen_strmap_get(index, c->subject);
            if (!cand) {
                cand = calloc(1, sizeof(*cand));
                if (!cand || kigen_strmap_put(index, c->subject, cand) < 0) {
                    free(cand);
                    return -ENOMEM;
                }
            }
            if (cand->n < MAX_CANDIDATES)
                cand->v[cand->n++] = c->der;
        }
    }
    return 0;
}

static int add_item(struct kigen_revocation_run *run, size_t *cap, struct kigen_strmap *seen,
                    const struct kigen_cert *c, const struct kigen_strmap *index)
{
    const struct candidates *cand = kigen_strmap_get(index, c->issuer);
    struct item *it;

    if (run->n_items == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        struct item *v = reallocarray(run->items, n, sizeof(*v));

        if (!v)
            return -ENOMEM;
        run->items = v;
        *cap = n;
    }
    it = &run->items[run->n_items];
    memset(it, 0, sizeof(*it));
    kigen_cert_sha256_hex(c, it->sha);
    if (kigen_strmap_get(seen, it->sha))
        return 0; /* the same certificate in another location */
    if (c->der && !(it->cert = der_copy(c->der)))
        return -ENOMEM;
    for (size_t i = 0; cand && i < cand->n; i++) {
        it->issuers[it->n_issuers] = der_copy(cand->v[i]);
        if (!it->issuers[it->n_issuers]) {
            item_free(it);
            return -ENOMEM;
        }
        it->n_issuers++;
    }
    if (kigen_strmap_put(seen, it->sha, it) < 0) {
        item_free(it);
        return -ENOMEM;
    }
    run->n_items++;
    return 0;
}

int kigen_revocation_collect(const struct kigen_config *config,
                             const struct kigen_inventory *inventory, const char *cache_dir,
                             int64_t now, struct kigen_revocation_run **ret_run)
{
    struct kigen_strmap index = { 0 }, seen = { 0 };
    struct kigen_revocation_run *run;
    size_t cap = 0;
    int r = 0;

    *ret_run = NULL;
    if (!kigen_revocation_enabled(config))
        return 0;
    run = calloc(1, sizeof(*run));
    if (!run)
        return -ENOMEM;
    run->now = now;
    run->next_due = INT64_MAX;
    run->interval = config->revocation.interval > 0 ? config->revocation.interval : 1;
    run->max_size = config->revocation.max_size;
    run->proxy = strdup(config->revocation.proxy ? config->revocation.proxy : "");
    run->cache_dir = cache_dir ? strdup(cache_dir) : NULL;
    run->hosts = calloc(config->revocation.hosts.n + 1, sizeof(*run->hosts));
    if (!run->proxy || (cache_dir && !run->cache_dir) || !run->hosts)
        r = -ENOMEM;
    for (size_t i = 0; r == 0 && i < config->revocation.hosts.n; i++) {
        run->hosts[i] = strdup(config->revocation.hosts.v[i]);
        if (!run->hosts[i])
            r = -ENOMEM;
        else
            run->n_hosts++;
    }
    if (r == 0)
        r = index_candidates(inventory, &index);
    for (size_t i = 0; r == 0 && i < inventory->n_files; i++) {
        const struct kigen_file *f = inventory->files[i];

        if (f->format == KIGEN_FORMAT_DECLARED)
            continue; /* SPEC §13: declared certificates are never checked */
        for (size_t j = 0; r == 0 && j < f->certs.n; j++) {
            const struct kigen_cert *c = &f->certs.v[j];
            struct kigen_policy policy;

            kigen_config_policy_for(config, f->keystore, c->subject, c->issuer, &policy);
            if (policy.revocation)
                r = add_item(run, &cap, &seen, c, &index);
        }
    }
    kigen_strmap_foreach(&index, free_cb, NULL);
    kigen_strmap_clear(&index);
    kigen_strmap_clear(&seen);
    if (r < 0) {
        kigen_revocation_run_free(run);
        return r;
    }
    if (run->n_items == 0) {
        kigen_revocation_run_free(run);
        return 0;
    }
    *ret_run = run;
    return 0;
}

/* ---- URLs ---- */

/* Whether url is http or https on a host that revocation.hosts allows. */
static bool is_allowed(const struct kigen_revocation_run *run, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = false;

    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0)) {
        size_t n = strlen(host);

        /* "[::1]" is written with brackets in a URL; a glob names the address without them. */
        if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
            memmove(host, host + 1, n - 2);
            host[n - 2] = '\0';
        }
        for (size_t i = 0; i < run->n_hosts && !ok; i++)
            ok = fnmatch(run->hosts[i], host, FNM_CASEFOLD) == 0;
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* The URI full names of the certificate's CRL distribution points, NULL-terminated. */
static char **crl_urls(X509 *cert)
{
    STACK_OF(DIST_POINT) *dps = X509_get_ext_d2i(cert, NID_crl_distribution_points, NULL, NULL);
    int n_dps = sk_DIST_POINT_num(dps); /* -1 without the extension */
    char **v = calloc((size_t)(n_dps > 0 ? n_dps : 0) * 4 + 1, sizeof(*v));
    size_t n = 0;

    for (int i = 0; v && i < sk_DIST_POINT_num(dps); i++) {
        DIST_POINT *dp = sk_DIST_POINT_value(dps, i);

        if (!dp->distpoint || dp->distpoint->type != 0)
            continue;
        for (int k = 0;
             k < sk_GENERAL_NAME_num(dp->distpoint->name.fullname) && n < 4 * (size_t)(i + 1);
             k++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, k);

            if (g->type == GEN_URI)
                v[n++] =
                    strndup((const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier),
                            (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier));
        }
    }
    sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
    return v;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* ---- fetching ---- */

struct body {
    uint8_t *p;
    size_t len;
    size_t max;
    bool too_large;
};

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    struct body *b = userp;
    size_t len = size * n;
    uint8_t *p;

    if (len > b->max - b->len) {
        b->too_large = true;
        return 0;
    }
    p = realloc(b->p, b->len + len + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, data, len);
    b->p = p;
    b->len += len;
    return len;
}

__attribute__((format(printf, 3, 4))) static void fail(struct answer *a, const char *kind,
                                                       const char *fmt, ...)
{
    va_list ap;

    a->kind = kind;
    va_start(ap, fmt);
    vsnprintf(a->error, sizeof(a->error), fmt, ap);
    va_end(ap);
}

/*
 * GETs url (or POSTs body as an OCSP request) with the run's proxy and limits, following at
 * most MAX_REDIRECTS redirects to allowed URLs. Returns the body (malloc'd) or NULL with the
 * failure in a.
 */
static uint8_t *fetch(const struct kigen_revocation_run *run, const char *url, const uint8_t *post,
                      size_t post_len, size_t *ret_len, struct answer *a)
{
    char *where = strdup(url);
    struct body b = { .max = run->max_size ? run->max_size : SIZE_MAX };
    struct curl_slist *headers = NULL;

    if (post)
        headers = curl_slist_append(NULL, "Content-Type: application/ocsp-request");
    for (int hop = 0; where && hop <= MAX_REDIRECTS; hop++) {
        CURL *e = curl_easy_init();
        char errbuf[CURL_ERROR_SIZE] = "", *next = NULL;
        long code = 0;
        CURLcode res;

        if (!e)
            break;
        curl_easy_setopt(e, CURLOPT_URL, where);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
        curl_easy_setopt(e, CURLOPT_PROXY, run->proxy);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "kigen");
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
        if (run->max_size)
            curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)run->max_size);
        if (post) {
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)post_len);
        }
        b.len = 0;
        res = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        if (res == CURLE_OK && code >= 300 && code < 400 &&
            curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &next) == CURLE_OK && next)
            next = strdup(next);
        else
            next = NULL;
        curl_easy_cleanup(e);
        if (b.too_large || res == CURLE_FILESIZE_EXCEEDED) {
            fail(a, "revocation_too_large", "larger than revocation.max_size");
            break;
        }
        if (res != CURLE_OK) {
            fail(a, "revocation_fetch", "%s", *errbuf ? errbuf : curl_easy_strerror(res));
            break;
        }
        if (next) {
            free(where);
            where = next;
            if (!is_allowed(run, where)) {
                fail(a, "revocation_fetch",
                     "redirected to a host revocation.hosts does not "
                     "allow");
                break;
            }
            continue;
        }
        if (code != 200) {
            char num[32];

            snprintf(num, sizeof(num), "%ld", code);
            fail(a, "revocation_fetch", "HTTP status %s", num);
            break;
        }
        free(where);
        curl_slist_free_all(headers);
        *ret_len = b.len;
        if (!b.p)
            b.p = malloc(1);
        return b.p;
    }
    if (!a->kind)
        fail(a, "revocation_fetch", "%s", where ? "too many redirects" : "out of memory");
    free(where);
    free(b.p);
    curl_slist_free_all(headers);
    return NULL;
}

/* ---- the cache: state_dir/revocation/<sha256 of the key>, "fetched_at\n" then the bytes ---- */

static void cache_path(const struct kigen_revocation_run *run, const char *key, const char *ext,
                       char *out, size_t len)
{
    uint8_t md[KIGEN_SHA256_LEN];
    unsigned int n = 0;
    char name[2 * KIGEN_SHA256_LEN + 1];

    EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL);
    kigen_bytes_to_hex(md, n, name);
    snprintf(out, len, "%s/%s.%s", run->cache_dir, name, ext);
}

static uint8_t *cache_read(const struct kigen_revocation_run *run, const char *key, const char *ext,
                           size_t *ret_len, int64_t *ret_at)
{
    char path[PATH_MAX], *nl;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd, r;

    if (!run->cache_dir)
        return NULL;
    cache_path(run, key, ext, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    /* The answer and its "fetched_at\n" line: at most max_size and 24 bytes. */
    r = kigen_read_whole(fd, run->max_size ? run->max_size + 24 : UINT64_MAX, &buf, &len);
    close(fd);
    nl = r == 0 && len ? memchr(buf, '\n', len < 24 ? len : 24) : NULL;
    if (!nl) {
        free(buf);
        return NULL;
    }
    *nl = '\0';
    *ret_at = strtoll((char *)buf, NULL, 10);
    *ret_len = len - (size_t)((uint8_t *)nl + 1 - buf);
    memmove(buf, nl + 1, *ret_len);
    return buf;
}

/* Written whole or not at all; a cache that cannot be written is no error, only slower. */
static void cache_write(const struct kigen_revocation_run *run, const char *key, const char *ext,
                        const uint8_t *bytes, size_t len, int64_t at)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], head[32];
    size_t hl;
    FILE *f;
    int fd;

    if (!run->cache_dir)
        return;
    (void)mkdir(run->cache_dir, 0700);
    cache_path(run, key, ext, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        return;
    }
    hl = (size_t)snprintf(head, sizeof(head), "%" PRId64 "\n", at);
    if (fwrite(head, 1, hl, f) != hl || fwrite(bytes, 1, len, f) != len || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        fclose(f);
        unlink(tmp);
        return;
    }
    fclose(f);
    if (rename(tmp, path) < 0)
        unlink(tmp);
}

/* ---- CRLs ---- */

static X509_CRL *crl_decode(const uint8_t *p, size_t len)
{
    const unsigned char *q = p;
    X509_CRL *crl;

    if (len > LONG_MAX)
        return NULL;
    if (len > 10 && memcmp(p, "-----BEGIN", 10) == 0) {
        BIO *bio = BIO_new_mem_buf(p, (int)(len > INT_MAX ? INT_MAX : len));

        crl = bio ? PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        return crl;
    }
    crl = d2i_X509_CRL(NULL, &q, (long)len);
    if (crl && q != p + len) {
        X509_CRL_free(crl);
        crl = NULL;
    }
    return crl;
}

static void note_due(struct kigen_revocation_run *run, int64_t t)
{
    if (t > run->now && t < run->next_due)
        run->next_due = t;
}

/* Whether a kept answer is due to be fetched again, and whether the interval allows it now. */
static bool may_fetch(const struct kigen_revocation_run *run,
                      struct kigen_revocation_memory *memory, const char *key, int64_t cached_at,
                      struct answer *a)
{
    struct attempt *at = memory ? kigen_strmap_get(&memory->attempts, key) : NULL;
    int64_t last = cached_at;

    if (at && at->at > last)
        last = at->at;
    if (last && run->now - last < run->interval && run->now >= last) {
        if (at && at->kind && at->at >= cached_at) {
            a->kind = at->kind;
            snprintf(a->error, sizeof(a->error),
                     "%.120s (asked again once revocation.interval "
                     "has passed)",
                     at->error);
        }
        return false;
    }
    return true;
}

static void remember_attempt(struct kigen_revocation_run *run,
                             struct kigen_revocation_memory *memory, const char *key,
                             const struct answer *a)
{
    struct attempt *at;

    note_due(run, run->now + run->interval);
    if (!memory)
        return;
    at = kigen_strmap_get(&memory->attempts, key);
    if (!at) {
        at = calloc(1, sizeof(*at));
        if (!at || kigen_strmap_put(&memory->attempts, key, at) < 0) {
            free(at);
            return;
        }
    }
    at->at = run->now;
    at->kind = a->kind;
    snprintf(at->error, sizeof(at->error), "%s", a->error);
}

/* The CRL of url for this run: from the cache, or fetched when due and allowed. */
static struct answer *get_crl(struct kigen_revocation_run *run,
                              struct kigen_revocation_memory *memory, const char *url)
{
    struct answer *a = kigen_strmap_get(&run->answers, url);
    uint8_t *bytes;
    size_t len = 0;
    int64_t at = 0, next;

    if (a)
        return a;
    a = calloc(1, sizeof(*a));
    if (!a || kigen_strmap_put(&run->answers, url, a) < 0) {
        free(a);
        return NULL;
    }
    bytes = cache_read(run, url, "crl", &len, &at);
    if (bytes) {
        a->crl = crl_decode(bytes, len);
        a->fetched_at = at;
        free(bytes);
    }
    if (!a->crl || kigen_asn1_time_to_unix(X509_CRL_get0_nextUpdate(a->crl), &next) < 0)
        next = KIGEN_NO_TIME;
    if (a->crl && (next == KIGEN_NO_TIME || next > run->now)) {
        note_due(run, next != KIGEN_NO_TIME ? next : a->fetched_at + run->interval);
        return a; /* fresh: kept until its nextUpdate */
    }
    if (!may_fetch(run, memory, url, a->crl ? a->fetched_at : 0, a))
        return a;
    bytes = fetch(run, url, NULL, 0, &len, a);
    if (bytes) {
        X509_CRL *crl = crl_decode(bytes, len);

        if (crl) {
            X509_CRL_free(a->crl);
            a->crl = crl;
            a->fetched_at = run->now;
            a->kind = NULL;
            a->error[0] = '\0';
            cache_write(run, url, "crl", bytes, len, run->now);
            if (kigen_asn1_time_to_unix(X509_CRL_get0_nextUpdate(crl), &next) == 0)
                note_due(run, next);
        } else {
            fail(a, "revocation_malformed", "not a CRL");
        }
        free(bytes);
    }
    remember_attempt(run, memory, url, a);
    ERR_clear_error();
    return a;
}

static void add_failure(struct kigen_revocation_run *run, const char *url, const char *kind,
                        const char *message)
{
    struct kigen_revocation_failure *v;

    for (size_t i = 0; i < run->n_failures; i++)
        if (strcmp(run->failures[i].url, url) == 0 && strcmp(run->failures[i].kind, kind) == 0)
            return;
    v = reallocarray(run->failures, run->n_failures + 1, sizeof(*v));
    if (!v)
        return;
    run->failures = v;
    v[run->n_failures].url = strdup(url);
    v[run->n_failures].kind = kind;
    v[run->n_failures].message = strdup(message);
    if (!v[run->n_failures].url || !v[run->n_failures].message) {
        free(v[run->n_failures].url);
        free(v[run->n_failures].message);
        return;
    }
    run->n_failures++;
}

__attribute__((format(printf, 3, 4))) static void
set_unknown(struct kigen_revocation_status *s, enum kigen_rev_source source, const char *fmt, ...)
{
    va_list ap;

    s->status = KIGEN_REV_UNKNOWN;
    s->source = source;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
}

/*
 * What crl says of cert at now, verified with issuer's key: NULL when it decided (good or
 * revoked, in s), else the failure kind with the reason in s.
 */
static const char *crl_answer(X509_CRL *crl, X509 *cert, X509 *issuer, int64_t now,
                              struct kigen_revocation_status *s)
{
    X509_REVOKED *rev = NULL;
    char when[KIGEN_RFC3339_LEN];
    int64_t next;
    int r;

    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) != 0 ||
        X509_CRL_verify(crl, X509_get0_pubkey(issuer)) != 1) {
        ERR_clear_error();
        set_unknown(s, KIGEN_REV_SOURCE_CRL, "the CRL is not signed by the certificate's issuer");
        return "revocation_bad_signature";
    }
    if (kigen_asn1_time_to_unix(X509_CRL_get0_nextUpdate(crl), &next) == 0 && next <= now) {
        kigen_time_format_utc(next, when);
        set_unknown(s, KIGEN_REV_SOURCE_CRL, "the CRL is stale (next update %s)", when);
        return "revocation_stale";
    }
    s->source = KIGEN_REV_SOURCE_CRL;
    s->error[0] = '\0';
    r = X509_CRL_get0_by_cert(crl, &rev, cert);
    if (r == 1 && rev) {
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);

        s->status = KIGEN_REV_REVOKED;
        if (kigen_asn1_time_to_unix(X509_REVOKED_get0_revocationDate(rev), &s->revoked_at) < 0)
            s->revoked_at = KIGEN_NO_TIME;
        s->reason = reason ? (int)ASN1_ENUMERATED_get(reason) : -1;
        if (!kigen_crl_reason_name(s->reason))
            s->reason = -1; /* none, or a value RFC 5280 does not name */
        ASN1_ENUMERATED_free(reason);
    } else {
        s->status = KIGEN_REV_GOOD;
    }
    ERR_clear_error();
    return NULL;
}

static void status_init(struct kigen_revocation_status *s, int64_t now)
{
    *s = (struct kigen_revocation_status){
        .status = KIGEN_REV_UNKNOWN, .checked_at = now, .revoked_at = KIGEN_NO_TIME, .reason = -1
    };
}

bool kigen_revocation_from_crl(const uint8_t *bytes, size_t len, X509 *cert, X509 *issuer,
                               int64_t now, struct kigen_revocation_status *s)
{
    X509_CRL *crl = crl_decode(bytes, len);
    const char *kind = "revocation_malformed";

    status_init(s, now);
    if (crl)
        kind = crl_answer(crl, cert, issuer, now, s);
    else
        set_unknown(s, KIGEN_REV_SOURCE_CRL, "CRL: not a CRL");
    X509_CRL_free(crl);
    ERR_clear_error();
    return !kind;
}

/* Returns true when the CRL of url decided (good or revoked), else leaves the reason in s. */
static bool check_crl(struct kigen_revocation_run *run, struct kigen_revocation_memory *memory,
                      const char *url, X509 *cert, X509 *issuer, struct kigen_revocation_status *s)
{
    struct answer *a = get_crl(run, memory, url);
    const char *kind;

    if (!a) {
        set_unknown(s, KIGEN_REV_SOURCE_CRL, "out of memory");
        return false;
    }
    if (!a->crl) {
        set_unknown(s, KIGEN_REV_SOURCE_CRL, "CRL: %s", a->error[0] ? a->error : "not fetched");
        if (a->kind)
            add_failure(run, url, a->kind, s->error);
        return false;
    }
    kind = crl_answer(a->crl, cert, issuer, run->now, s);
    if (!kind)
        return true;
    /* Stale, and a fresh one could not be fetched: the fetch's failure is the news. */
    if (strcmp(kind, "revocation_stale") == 0 && a->kind)
        add_failure(run, url, a->kind, a->error);
    else
        add_failure(run, url, kind, s->error);
    return false;
}

/* ---- OCSP ---- */

static OCSP_BASICRESP *ocsp_decode(const uint8_t *p, size_t len, const char **ret_why)
{
    const unsigned char *q = p;
    OCSP_RESPONSE *resp = len <= LONG_MAX ? d2i_OCSP_RESPONSE(NULL, &q, (long)len) : NULL;
    OCSP_BASICRESP *bs = NULL;

    *ret_why = "not an OCSP response";
    if (resp && OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        *ret_why = OCSP_response_status_str(OCSP_response_status(resp));
    else if (resp)
        bs = OCSP_response_get1_basic(resp);
    OCSP_RESPONSE_free(resp);
    return bs;
}

/* Whether bs is signed by issuer or by a responder issuer delegated (OCSP signing). */
static bool ocsp_verified(OCSP_BASICRESP *bs, X509 *issuer)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_STORE *store = X509_STORE_new();
    bool ok = false;

    if (chain && store && sk_X509_push(chain, issuer) > 0 && X509_STORE_add_cert(store, issuer)) {
        /* The answer's own times are checked against the evaluation time by the caller. */
        X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_NO_CHECK_TIME);
        ok = OCSP_basic_verify(bs, chain, store, 0) == 1;
    }
    sk_X509_free(chain);
    X509_STORE_free(store);
    ERR_clear_error();
    return ok;
}

/*
 * What bs says of the certificate id at now, verified against issuer: NULL when it decided
 * (good or revoked, in s), else the failure kind with the reason in s.
 */
static const char *ocsp_answer(OCSP_BASICRESP *bs, OCSP_CERTID *id, X509 *issuer, int64_t now,
                               struct kigen_revocation_status *s)
{
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    char when[KIGEN_RFC3339_LEN];
    int status = -1, reason = -1;
    int64_t next;

    if (!OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd)) {
        set_unknown(s, KIGEN_REV_SOURCE_OCSP, "the OCSP answer does not name the certificate");
        return "revocation_malformed";
    }
    if (!ocsp_verified(bs, issuer)) {
        set_unknown(s, KIGEN_REV_SOURCE_OCSP,
                    "the OCSP answer is not signed by the issuer or its responder");
        return "revocation_bad_signature";
    }
    if (kigen_asn1_time_to_unix(nextupd, &next) == 0 && next <= now) {
        kigen_time_format_utc(next, when);
        set_unknown(s, KIGEN_REV_SOURCE_OCSP, "the OCSP answer is stale (next update %s)", when);
        return "revocation_stale";
    }
    s->source = KIGEN_REV_SOURCE_OCSP;
    s->error[0] = '\0';
    if (status == V_OCSP_CERTSTATUS_GOOD) {
        s->status = KIGEN_REV_GOOD;
    } else if (status == V_OCSP_CERTSTATUS_REVOKED) {
        s->status = KIGEN_REV_REVOKED;
        if (kigen_asn1_time_to_unix(rev, &s->revoked_at) < 0)
            s->revoked_at = KIGEN_NO_TIME;
        s->reason = kigen_crl_reason_name(reason) ? reason : -1;
    } else {
        set_unknown(s, KIGEN_REV_SOURCE_OCSP, "the OCSP responder does not know the certificate");
        return "revocation_unknown";
    }
    return NULL;
}

bool kigen_revocation_from_ocsp(const uint8_t *bytes, size_t len, X509 *cert, X509 *issuer,
                                int64_t now, struct kigen_revocation_status *s)
{
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), cert, issuer);
    const char *why = NULL, *kind = "revocation_malformed";
    OCSP_BASICRESP *bs = ocsp_decode(bytes, len, &why);

    status_init(s, now);
    if (bs && id)
        kind = ocsp_answer(bs, id, issuer, now, s);
    else
        set_unknown(s, KIGEN_REV_SOURCE_OCSP, "OCSP: %s", why ? why : "out of memory");
    OCSP_BASICRESP_free(bs);
    OCSP_CERTID_free(id);
    ERR_clear_error();
    return !kind;
}

static bool check_ocsp(struct kigen_revocation_run *run, struct kigen_revocation_memory *memory,
                       const char *url, X509 *cert, X509 *issuer, struct kigen_revocation_status *s)
{
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), cert, issuer);
    OCSP_REQUEST *req = NULL;
    unsigned char *der = NULL, *idder = NULL;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    struct answer a = { 0 };
    uint8_t *bytes = NULL;
    size_t len = 0;
    char *key = NULL;
    const char *why = NULL, *kind;
    int status = -1, reason = -1, n, idlen;
    int64_t at = 0, next;
    bool decided = false;

    /* The cache key: the URL and the certificate's id, in hex. */
    idlen = id ? i2d_OCSP_CERTID(id, &idder) : -1;
    key = idlen > 0 ? malloc(strlen(url) + 2 * (size_t)idlen + 2) : NULL;
    if (!key) {
        set_unknown(s, KIGEN_REV_SOURCE_OCSP, "out of memory");
        goto out;
    }
    n = sprintf(key, "%s\n", url);
    for (int i = 0; i < idlen; i++)
        n += sprintf(key + n, "%02x", idder[i]);
    bytes = cache_read(run, key, "ocsp", &len, &at);
    if (bytes) {
        a.ocsp = ocsp_decode(bytes, len, &why);
        a.fetched_at = at;
        free(bytes);
        bytes = NULL;
    }
    if (a.ocsp && OCSP_resp_find_status(a.ocsp, id, &status, &reason, &rev, &thisupd, &nextupd)) {
        if (kigen_asn1_time_to_unix(nextupd, &next) < 0)
            next = a.fetched_at + run->interval;
        if (next > run->now)
            goto decide; /* the kept answer still holds */
    }
    if (may_fetch(run, memory, key, a.ocsp ? a.fetched_at : 0, &a)) {
        req = OCSP_REQUEST_new();
        if (!req || !OCSP_request_add0_id(req, OCSP_CERTID_dup(id)) ||
            (n = i2d_OCSP_REQUEST(req, &der)) <= 0) {
            set_unknown(s, KIGEN_REV_SOURCE_OCSP, "out of memory");
            goto out;
        }
        bytes = fetch(run, url, der, (size_t)n, &len, &a);
        if (bytes) {
            OCSP_BASICRESP *bs = ocsp_decode(bytes, len, &why);

            if (bs) {
                OCSP_BASICRESP_free(a.ocsp);
                a.ocsp = bs;
                a.fetched_at = run->now;
                cache_write(run, key, "ocsp", bytes, len, run->now);
            } else {
                fail(&a, "revocation_malformed", "OCSP: %s", why);
            }
        }
        remember_attempt(run, memory, key, &a);
    }
    if (!a.ocsp) {
        set_unknown(s, KIGEN_REV_SOURCE_OCSP, "OCSP: %s", a.error[0] ? a.error : "no answer");
        if (a.kind)
            add_failure(run, url, a.kind, s->error);
        goto out;
    }
decide:
    kind = ocsp_answer(a.ocsp, id, issuer, run->now, s);
    if (kind) {
        add_failure(run, url, strcmp(kind, "revocation_stale") == 0 && a.kind ? a.kind : kind,
                    s->error);
        goto out;
    }
    (void)OCSP_resp_find_status(a.ocsp, id, &status, &reason, &rev, &thisupd, &nextupd);
    if (kigen_asn1_time_to_unix(nextupd, &next) < 0)
        next = a.fetched_at + run->interval;
    note_due(run, next);
    decided = true;
out:
    OCSP_BASICRESP_free(a.ocsp);
    OCSP_REQUEST_free(req);
    OCSP_CERTID_free(id);
    OPENSSL_free(der);
    OPENSSL_free(idder);
    free(bytes);
    free(key);
    ERR_clear_error();
    return decided;
}

/* ---- one certificate ---- */

static X509 *der_x509(const struct kigen_der *d)
{
    const unsigned char *p = d->bytes;

    return d->len <= LONG_MAX ? d2i_X509(NULL, &p, (long)d->len) : NULL;
}

/* The issuer: a candidate that signed cert, else one from the system trust store. */
static X509 *find_issuer(struct kigen_revocation_run *run, const struct item *it, X509 *cert)
{
    X509_STORE_CTX *ctx;
    X509 *issuer = NULL;

    for (size_t i = 0; i < it->n_issuers && !issuer; i++) {
        X509 *c = der_x509(it->issuers[i]);

        if (c && X509_check_issued(c, cert) == X509_V_OK &&
            X509_verify(cert, X509_get0_pubkey(c)) == 1)
            issuer = c;
        else
            X509_free(c);
    }
    if (!issuer && !run->system_loaded) {
        run->system_loaded = true;
        run->system = X509_STORE_new();
        if (run->system && !X509_STORE_set_default_paths(run->system)) {
            X509_STORE_free(run->system);
            run->system = NULL;
        }
    }
    if (!issuer && run->system && (ctx = X509_STORE_CTX_new())) {
        if (X509_STORE_CTX_init(ctx, run->system, cert, NULL) &&
            X509_STORE_CTX_get1_issuer(&issuer, ctx, cert) != 1)
            issuer = NULL;
        X509_STORE_CTX_free(ctx);
    }
    ERR_clear_error();
    return issuer;
}

static void check_item(struct kigen_revocation_run *run, struct kigen_revocation_memory *memory,
                       struct item *it)
{
    struct kigen_revocation_status *s = &it->answer;
    STACK_OF(OPENSSL_STRING) *ocsp = NULL;
    char **crls = NULL;
    X509 *cert = NULL, *issuer = NULL;
    bool any = false, decided = false;

    status_init(s, run->now);
    if (!it->cert) {
        set_unknown(s, KIGEN_REV_SOURCE_NONE,
                    "the certificate names no CRL distribution point or OCSP responder");
        return;
    }
    cert = der_x509(it->cert);
    if (!cert) {
        set_unknown(s, KIGEN_REV_SOURCE_NONE, "the certificate cannot be decoded");
        goto out;
    }
    issuer = find_issuer(run, it, cert);
    if (!issuer) {
        set_unknown(s, KIGEN_REV_SOURCE_NONE, "issuer not found");
        goto out;
    }
    crls = crl_urls(cert);
    for (size_t i = 0; crls && crls[i] && !decided; i++) {
        if (!is_allowed(run, crls[i]))
            continue;
        any = true;
        decided = check_crl(run, memory, crls[i], cert, issuer, s);
    }
    ocsp = X509_get1_ocsp(cert);
    for (int i = 0; i < sk_OPENSSL_STRING_num(ocsp) && !decided; i++) {
        const char *url = sk_OPENSSL_STRING_value(ocsp, i);

        if (!is_allowed(run, url))
            continue;
        any = true;
        decided = check_ocsp(run, memory, url, cert, issuer, s);
    }
    if (!any) {
        bool named = (crls && crls[0]) || sk_OPENSSL_STRING_num(ocsp) > 0;

        set_unknown(s, KIGEN_REV_SOURCE_NONE,
                    named ? "no CRL or OCSP URL on a host revocation.hosts allows"
                          : "the certificate names no CRL distribution point or OCSP responder");
    }
out:
    strv_free(crls);
    X509_email_free(ocsp);
    X509_free(cert);
    X509_free(issuer);
    ERR_clear_error();
}

static void free_answer_cb(const char *key, void *value, void *data)
{
    struct answer *a = value;

    (void)key;
    (void)data;
    X509_CRL_free(a->crl);
    OCSP_BASICRESP_free(a->ocsp);
    free(a);
}

void kigen_revocation_execute(struct kigen_revocation_run *run,
                              struct kigen_revocation_memory *memory)
{
    for (size_t i = 0; i < run->n_items; i++) {
        if (atomic_load(&run->cancel))
            break; /* the daemon stops: nothing is applied */
        check_item(run, memory, &run->items[i]);
    }
    kigen_strmap_foreach(&run->answers, free_answer_cb, NULL);
    kigen_strmap_clear(&run->answers);
    X509_STORE_free(run->system);
    run->system = NULL;
    run->system_loaded = false;
}

/* ---- applying, on the loop ---- */

int kigen_revocation_apply(struct kigen_inventory *inventory,
                           const struct kigen_revocation_run *run)
{
    struct kigen_strmap fresh = { 0 };

    for (size_t i = 0; run && i < run->n_items; i++) {
        struct kigen_revocation_status *s = malloc(sizeof(*s));

        if (!s || kigen_strmap_put(&fresh, run->items[i].sha, s) < 0) {
            free(s);
            kigen_revocation_map_clear(&fresh);
            return -ENOMEM;
        }
        *s = run->items[i].answer;
    }
    kigen_revocation_map_clear(&inventory->revocations);
    inventory->revocations = fresh;
    inventory->changes++;
    return 0;
}

const struct kigen_revocation_failure *
kigen_revocation_failures(const struct kigen_revocation_run *run, size_t *ret_n)
{
    *ret_n = run ? run->n_failures : 0;
    return run ? run->failures : NULL;
}

int64_t kigen_revocation_next_due(const struct kigen_revocation_run *run)
{
    return run ? run->next_due : INT64_MAX;
}

void kigen_revocation_cancel(struct kigen_revocation_run *run)
{
    atomic_store(&run->cancel, true);
}

void kigen_revocation_run_free(struct kigen_revocation_run *run)
{
    if (!run)
        return;
    for (size_t i = 0; i < run->n_items; i++)
        item_free(&run->items[i]);
    free(run->items);
    for (size_t i = 0; i < run->n_hosts; i++)
        free(run->hosts[i]);
    free(run->hosts);
    for (size_t i = 0; i < run->n_failures; i++) {
        free(run->failures[i].url);
        free(run->failures[i].message);
    }
    free(run->failures);
    free(run->proxy);
    free(run->cache_dir);
    kigen_strmap_foreach(&run->answers, free_answer_cb, NULL);
    kigen_strmap_clear(&run->answers);
    X509_STORE_free(run->system);
    free(run);
}
