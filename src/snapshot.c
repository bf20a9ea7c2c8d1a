/*
 * The copy of a view that may cross to the thread pool. Strings go into large blocks, not one
 * allocation each: 100,000 records hold about 800,000 strings.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "probe.h"
#include "revocation.h"
#include "strmap.h"
#include "timeutil.h"

#define BLOCK_MIN \
    (256u * 1024) /* below the mmap threshold: blocks are reused, not faulted in anew */

struct snapshot_block {
    struct snapshot_block *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) char data[];
};

/*
 * What a copy in progress knows: the arrays are allocated once, at their upper bounds, so
 * that what points into them stays put; n_* count what they hold.
 */
struct copier {
    struct kigen_snapshot *snap;
    struct kigen_strmap index; /* keystore name -> its copy */
    const struct kigen_file *last_file;
    const struct kigen_keystore *last_ks;
    struct kigen_keystore *last_copy;
    size_t n_files, n_crls;
    size_t cap_records, cap_files, cap_errors, cap_crls;
    bool is_failed;
};

/* size bytes aligned to align (a power of two up to max_align_t) in the blocks, or NULL. */
static void *block_alloc(struct copier *c, size_t size, size_t align)
{
    struct snapshot_block *b = c->snap->blocks;
    size_t at = b ? (b->used + align - 1) & ~(align - 1) : 0;

    if (!b || at > b->cap || b->cap - at < size) {
        size_t cap = size > BLOCK_MIN ? size : BLOCK_MIN;

        b = malloc(sizeof(*b) + cap);
        if (!b) {
            c->is_failed = true;
            return NULL;
        }
        b->next = c->snap->blocks;
        b->used = 0;
        b->cap = cap;
        c->snap->blocks = b;
        at = 0;
    }
    b->used = at + size;
    return b->data + at;
}

/* A copy of s in the snapshot's blocks, or NULL on ENOMEM (s NULL: NULL, not a failure). */
static char *copy_str(struct copier *c, const char *s)
{
    size_t n;
    char *p;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    p = block_alloc(c, n, 1);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void copy_file(struct copier *c, const struct kigen_file *from, struct kigen_file *to)
{
    memset(to, 0, sizeof(*to));
    to->keystore = copy_str(c, from->keystore);
    to->path = copy_str(c, from->path);
    to->part = from->part;
    to->format = from->format;
    to->error = from->error;
    to->message = copy_str(c, from->message);
    to->last_seen = from->last_seen;
    to->is_stale = from->is_stale;
}

static void copy_cert(struct copier *c, const struct kigen_cert *from, struct kigen_cert *to)
{
    memset(to, 0, sizeof(*to));
    memcpy(to->sha256, from->sha256, sizeof(to->sha256));
    to->not_before = from->not_before;
    to->not_after = from->not_after;
    to->subject = copy_str(c, from->subject);
    to->issuer = copy_str(c, from->issuer);
    to->serial = copy_str(c, from->serial);
    to->entry = copy_str(c, from->entry);
    to->email = copy_str(c, from->email);
}

/* The copy of keystore ks (its name and labels; paths and passwords stay behind), or NULL. */
static struct kigen_keystore *copy_keystore(struct copier *c, const struct kigen_keystore *ks)
{
    struct kigen_snapshot *snap = c->snap;
    struct kigen_keystore *to, **v;

    to = kigen_strmap_get(&c->index, ks->name);
    if (to)
        return to;
    v = realloc(snap->keystores, (snap->n_keystores + 1) * sizeof(*v));
    to = calloc(1, sizeof(*to));
    if (v)
        snap->keystores = v;
    if (!v || !to || kigen_strmap_put(&c->index, ks->name, to) < 0) {
        free(to);
        c->is_failed = true;
        return NULL;
    }
    v[snap->n_keystores++] = to;
    to->name = copy_str(c, ks->name);
    if (ks->labels.n) {
        to->labels.v = calloc(ks->labels.n, sizeof(*to->labels.v));
        if (!to->labels.v) {
            c->is_failed = true;
            return to;
        }
        to->labels.n = ks->labels.n;
        for (size_t i = 0; i < ks->labels.n; i++) {
            to->labels.v[i].name = copy_str(c, ks->labels.v[i].name);
            to->labels.v[i].value = copy_str(c, ks->labels.v[i].value);
        }
    }
    return to;
}

/* Allocates the copy's arrays for so many records, errors and CRLs at most. */
static int copier_init(struct copier *c, size_t n_records, size_t n_errors, size_t n_crls)
{
    struct kigen_snapshot *snap = calloc(1, sizeof(*snap));

    memset(c, 0, sizeof(*c));
    if (!snap)
        return -ENOMEM;
    c->snap = snap;
    c->cap_records = n_records;
    c->cap_errors = n_errors;
    c->cap_files = n_records + n_errors;
    c->cap_crls = n_crls;
    if ((n_records && (!(snap->view.records = malloc(n_records * sizeof(*snap->view.records))) ||
                       !(snap->certs = malloc(n_records * sizeof(*snap->certs))))) ||
        (c->cap_files && !(snap->files = malloc(c->cap_files * sizeof(*snap->files)))) ||
        (n_errors && !(snap->view.errors = malloc(n_errors * sizeof(*snap->view.errors)))) ||
        (n_crls && (!(snap->view.crls = malloc(n_crls * sizeof(*snap->view.crls))) ||
                    !(snap->crl_copies = malloc(n_crls * sizeof(*snap->crl_copies))) ||
                    !(snap->crl_files = malloc(n_crls * sizeof(*snap->crl_files))))))
        return -ENOMEM;
    return 0;
}

static void copier_done(struct copier *c)
{
    kigen_strmap_clear(&c->index);
    kigen_snapshot_free(c->snap);
    memset(c, 0, sizeof(*c));
}

/* Whether so many more records, errors and CRLs fit. */
static bool copier_has_room(const struct copier *c, size_t records, size_t errors, size_t crls)
{
    const struct kigen_view *v = &c->snap->view;

    return records <= c->cap_records - v->n_records && errors <= c->cap_errors - v->n_errors &&
           records + errors <= c->cap_files - c->n_files && crls <= c->cap_crls - c->n_crls;
}

/* Appends the copy of record from (copier_has_room said yes). */
static void copy_record(struct copier *c, const struct kigen_record *from)
{
    struct kigen_snapshot *snap = c->snap;
    size_t i = snap->view.n_records++;
    struct kigen_record *to = &snap->view.records[i];
    struct kigen_cert *cert = &snap->certs[i];

    /* A file's records are next to each other in an unsorted view: one copy for them. */
    if (from->file != c->last_file) {
        copy_file(c, from->file, &snap->files[c->n_files++]);
        c->last_file = from->file;
    }
    if (from->keystore != c->last_ks) {
        c->last_ks = from->keystore;
        c->last_copy = from->keystore ? copy_keystore(c, from->keystore) : NULL;
    }
    copy_cert(c, from->cert, cert);
    memset(to, 0, sizeof(*to));
    to->file = &snap->files[c->n_files - 1];
    to->cert = cert;
    to->keystore = c->last_copy;
    to->state = from->state;
    to->renewal_opens = from->renewal_opens;
    /* The holder: the certificate's own address (copied with it), or the register's. */
    if (from->holder && from->holder == from->cert->email)
        to->holder = cert->email;
    else
        to->holder = copy_str(c, from->holder);
    if (from->holder_email && from->holder_email == from->cert->email)
        to->holder_email = cert->email;
    else
        to->holder_email = copy_str(c, from->holder_email);
    to->holder_language = copy_str(c, from->holder_language);
    to->wants_revocation = from->wants_revocation;
    if (from->revocation) {
        struct kigen_revocation_status *rs =
            block_alloc(c, sizeof(*rs), alignof(struct kigen_revocation_status));

        if (rs)
            *rs = *from->revocation;
        to->revocation = rs;
    }
}

static void copy_error(struct copier *c, const struct kigen_file *from)
{
    struct kigen_file *to = &c->snap->files[c->n_files++];

    copy_file(c, from, to);
    c->snap->view.errors[c->snap->view.n_errors++] = to;
}

static void copy_crl(struct copier *c, const struct kigen_crl_record *from)
{
    struct kigen_snapshot *snap = c->snap;
    size_t i = c->n_crls++;

    copy_file(c, from->file, &snap->crl_files[i]);
    snap->crl_copies[i] = *from->crl;
    snap->crl_copies[i].issuer = copy_str(c, from->crl->issuer);
    snap->view.crls[i] =
        (struct kigen_crl_record){ &snap->crl_files[i], &snap->crl_copies[i], from->is_stale };
    snap->view.n_crls = c->n_crls;
}

/* Copies the n probe statuses, without their server certificates, and counts those down. */
static int copy_probes(struct copier *c, const struct kigen_probe_status *probes, size_t n)
{
    struct kigen_snapshot *snap = c->snap;

    if (n && !(snap->probes = calloc(n, sizeof(*snap->probes))))
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct kigen_probe_status *p = &snap->probes[i];

        *p = probes[i];
        memset(&p->server, 0, sizeof(p->server));
        p->name = copy_str(c, probes[i].name);
        p->host = copy_str(c, probes[i].host);
    }
    kigen_view_set_probes(&snap->view, snap->probes, n);
    return c->is_failed ? -ENOMEM : 0;
}

/* The snapshot, its copier emptied. */
static struct kigen_snapshot *copier_take(struct copier *c)
{
    struct kigen_snapshot *snap = c->snap;

    kigen_strmap_clear(&c->index);
    memset(c, 0, sizeof(*c));
    return snap;
}

void kigen_snapshot_free(struct kigen_snapshot *snap)
{
    struct snapshot_block *b, *next;

    if (!snap)
        return;
    for (b = snap->blocks; b; b = next) {
        next = b->next;
        free(b);
    }
    for (size_t i = 0; i < snap->n_keystores; i++) {
        free(snap->keystores[i]->labels.v);
        free(snap->keystores[i]);
    }
    free(snap->keystores);
    free(snap->probes);
    free(snap->crl_copies);
    free(snap->crl_files);
    free(snap->certs);
    free(snap->files);
    free(snap->view.records);
    free((void *)snap->view.errors);
    free(snap->view.crls);
    free(snap);
}

/* ---- built in slices ---- */

struct kigen_snapshot_builder {
    struct copier copier; /* snap NULL: not started, or to start over */
    /* One file's view at a time, its arrays kept (warm) from file to file. */
    struct kigen_view scratch;
    size_t cap_scratch;
    struct kigen_view_filter filter;
    bool has_filter;
    char *keystore, *holder; /* the filter's, copied */
    int64_t now;
    const struct kigen_config *config;
    uint64_t config_serial;
    uint64_t changes; /* inventory->changes the copy started at */
    size_t next;      /* the inventory's next file */
    unsigned restarts;
};

int kigen_snapshot_builder_new(const struct kigen_view_filter *filter, int64_t now,
                               struct kigen_snapshot_builder **ret_builder)
{
    struct kigen_snapshot_builder *b = calloc(1, sizeof(*b));

    if (!b)
        return -ENOMEM;
    b->now = now;
    b->scratch.errors = malloc(sizeof(*b->scratch.errors));
    if (!b->scratch.errors)
        goto fail;
    if (filter) {
        b->has_filter = true;
        b->filter = *filter;
        if ((filter->keystore && !(b->keystore = strdup(filter->keystore))) ||
            (filter->holder && !(b->holder = strdup(filter->holder))))
            goto fail;
        b->filter.keystore = b->keystore;
        b->filter.holder = b->holder;
    }
    *ret_builder = b;
    return 0;
fail:
    kigen_snapshot_builder_free(b);
    return -ENOMEM;
}

/* Starts (over) at the first file of inventory as it is now. */
static int builder_begin(struct kigen_snapshot_builder *b, const struct kigen_config *config,
                         uint64_t config_serial, const struct kigen_inventory *inventory)
{
    if (b->copier.snap)
        b->restarts++;
    copier_done(&b->copier);
    b->config = config;
    b->config_serial = config_serial;
    b->changes = inventory->changes;
    b->next = 0;
    memset(b->scratch.counts, 0, sizeof(b->scratch.counts));
    b->scratch.stale_crls = 0;
    b->scratch.now = b->now;
    b->scratch.revocation_on = kigen_revocation_enabled(config);
    return copier_init(&b->copier, inventory->n_certs, inventory->n_errors, inventory->n_crls);
}

/* Room in the scratch view for file f. */
static int scratch_reserve(struct kigen_snapshot_builder *b, const struct kigen_file *f)
{
    size_t need = f->certs.n;
    size_t crls = f->certs.crls ? f->certs.crls->n : 0;
    void *p;

    if (crls > need)
        need = crls; /* one capacity for both arrays */
    if (need <= b->cap_scratch)
        return 0;
    p = realloc(b->scratch.records, need * sizeof(*b->scratch.records));
    if (!p)
        return -ENOMEM;
    b->scratch.records = p;
    p = realloc(b->scratch.crls, need * sizeof(*b->scratch.crls));
    if (!p)
        return -ENOMEM;
    b->scratch.crls = p;
    b->cap_scratch = need;
    return 0;
}

int kigen_snapshot_builder_step(struct kigen_snapshot_builder *b, const struct kigen_config *config,
                                uint64_t config_serial, const struct kigen_inventory *inventory,
                                uint64_t budget_ns)
{
    const struct kigen_view_filter *filter = b->has_filter ? &b->filter : NULL;
    uint64_t deadline = 0;
    int r;

    if (!b->copier.snap || config != b->config || config_serial != b->config_serial ||
        inventory->changes != b->changes) {
        r = builder_begin(b, config, config_serial, inventory);
        if (r < 0)
            return r;
    }
    if (budget_ns && b->restarts < KIGEN_SNAPSHOT_RESTARTS)
        deadline = kigen_monotonic_ns() + budget_ns;
    for (size_t k = 1; b->next < inventory->n_files; k++) {
        const struct kigen_file *f = inventory->files[b->next];
        struct kigen_view *s = &b->scratch;

        r = scratch_reserve(b, f);
        if (r < 0)
            return r;
        s->n_records = s->n_errors = s->n_crls = 0;
        kigen_view_add_file(s, config, inventory, f, filter);
        /*
         * More than the counts at the start allow: the inventory changed without saying so.
         * Start over rather than write past the arrays.
         */
        if (!copier_has_room(&b->copier, s->n_records, s->n_errors, s->n_crls)) {
            r = builder_begin(b, config, config_serial, inventory);
            if (r < 0)
                return r;
            return 0;
        }
        for (size_t i = 0; i < s->n_records; i++)
            copy_record(&b->copier, &s->records[i]);
        for (size_t i = 0; i < s->n_crls; i++)
            copy_crl(&b->copier, &s->crls[i]);
        if (s->n_errors)
            copy_error(&b->copier, s->errors[0]);
        if (b->copier.is_failed)
            return -ENOMEM;
        b->next++;
        if (deadline && k % 64 == 0 && kigen_monotonic_ns() >= deadline)
            break;
    }
    return b->next >= inventory->n_files;
}

int kigen_snapshot_builder_finish(struct kigen_snapshot_builder *b,
                                  const struct kigen_probe_status *probes, size_t n,
                                  struct kigen_snapshot **ret_snapshot)
{
    struct kigen_view *v;
    int r;

    if (!b->copier.snap)
        return -EINVAL;
    v = &b->copier.snap->view;
    r = copy_probes(&b->copier, probes, n);
    if (r < 0)
        return r;
    v->now = b->now;
    memcpy(v->counts, b->scratch.counts, sizeof(v->counts));
    v->revocation_on = b->scratch.revocation_on;
    v->stale_crls = b->scratch.stale_crls;
    v->unique = 0; /* kigen_view_sort counts them */
    *ret_snapshot = copier_take(&b->copier);
    return 0;
}

unsigned kigen_snapshot_builder_restarts(const struct kigen_snapshot_builder *b)
{
    return b->restarts;
}

void kigen_snapshot_builder_free(struct kigen_snapshot_builder *b)
{
    if (!b)
        return;
    copier_done(&b->copier);
    free(b->scratch.records);
    free((void *)b->scratch.errors);
    free(b->scratch.crls);
    free(b->keystore);
    free(b->holder);
    free(b);
}
