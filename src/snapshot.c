/*
 * The copy of a view that may cross to the thread pool. Strings go into large blocks, not one
 * allocation each: 100,000 records hold about 800,000 strings.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"
#include "revocation.h"
#include "strmap.h"

#define BLOCK_MIN \
    (256u * 1024) /* below the mmap threshold: blocks are reused, not faulted in anew */

struct snapshot_block {
    struct snapshot_block *next;
    size_t used;
    size_t cap;
    char data[];
};

/* A copy of s in the snapshot's blocks, or NULL on ENOMEM (s NULL: NULL, not a failure). */
static char *copy_str(struct kigen_snapshot *snap, const char *s, bool *is_failed)
{
    struct snapshot_block *b = snap->blocks;
    size_t n;
    char *p;

    if (!s)
        return NULL;
    n = strlen(s) + 1;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > BLOCK_MIN ? n : BLOCK_MIN;

        b = malloc(sizeof(*b) + cap);
        if (!b) {
            *is_failed = true;
            return NULL;
        }
        b->next = snap->blocks;
        b->used = 0;
        b->cap = cap;
        snap->blocks = b;
    }
    p = b->data + b->used;
    memcpy(p, s, n);
    b->used += n;
    return p;
}

static void copy_file(struct kigen_snapshot *snap, const struct kigen_file *from,
                      struct kigen_file *to, bool *is_failed)
{
    memset(to, 0, sizeof(*to));
    to->keystore = copy_str(snap, from->keystore, is_failed);
    to->path = copy_str(snap, from->path, is_failed);
    to->part = from->part;
    to->format = from->format;
    to->error = from->error;
    to->message = copy_str(snap, from->message, is_failed);
    to->last_seen = from->last_seen;
    to->is_stale = from->is_stale;
}

static void copy_cert(struct kigen_snapshot *snap, const struct kigen_cert *from,
                      struct kigen_cert *to, bool *is_failed)
{
    memcpy(to->sha256, from->sha256, sizeof(to->sha256));
    to->not_before = from->not_before;
    to->not_after = from->not_after;
    to->subject = copy_str(snap, from->subject, is_failed);
    to->issuer = copy_str(snap, from->issuer, is_failed);
    to->serial = copy_str(snap, from->serial, is_failed);
    to->entry = copy_str(snap, from->entry, is_failed);
    to->email = from->email ? copy_str(snap, from->email, is_failed) : NULL;
}

/* The keystore's name and labels; the rest (paths, passwords) stays behind. */
static int copy_keystore(struct kigen_snapshot *snap, const struct kigen_keystore *from,
                         struct kigen_keystore *to, bool *is_failed)
{
    memset(to, 0, sizeof(*to));
    to->name = copy_str(snap, from->name, is_failed);
    if (!from->labels.n)
        return 0;
    to->labels.v = calloc(from->labels.n, sizeof(*to->labels.v));
    if (!to->labels.v)
        return -ENOMEM;
    to->labels.n = from->labels.n;
    for (size_t i = 0; i < from->labels.n; i++) {
        to->labels.v[i].name = copy_str(snap, from->labels.v[i].name, is_failed);
        to->labels.v[i].value = copy_str(snap, from->labels.v[i].value, is_failed);
    }
    return 0;
}

/* Every distinct keystore of the records, once; keystores[i] is the copy of the i-th found. */
static int copy_keystores(struct kigen_snapshot *snap, const struct kigen_view *view,
                          struct kigen_strmap *index, bool *is_failed)
{
    const struct kigen_keystore *last = NULL;
    size_t cap = 0;
    int r;

    for (size_t i = 0; i < view->n_records; i++) {
        const struct kigen_keystore *ks = view->records[i].keystore;
        struct kigen_keystore *v;

        /* Records come grouped by file, and files by keystore: most lookups are skipped. */
        if (!ks || ks == last || kigen_strmap_get(index, ks->name))
            continue;
        last = ks;
        if (snap->n_keystores == cap) {
            cap = cap ? cap * 2 : 8;
            v = realloc(snap->keystores, cap * sizeof(*v));
            if (!v)
                return -ENOMEM;
            snap->keystores = v;
        }
        v = &snap->keystores[snap->n_keystores];
        memset(v, 0, sizeof(*v));
        snap->n_keystores++;
        r = copy_keystore(snap, ks, v, is_failed);
        if (r < 0)
            return r;
        /* The value is the index + 1: NULL means absent. */
        r = kigen_strmap_put(index, ks->name, (void *)(uintptr_t)snap->n_keystores);
        if (r < 0)
            return r;
    }
    return 0;
}

int kigen_snapshot_new(const struct kigen_view *view, struct kigen_snapshot **ret_snapshot)
{
    struct kigen_snapshot *snap = calloc(1, sizeof(*snap));
    struct kigen_strmap index = { 0 };
    const struct kigen_file *last_file = NULL;
    const struct kigen_keystore *last_ks = NULL;
    struct kigen_keystore *last_copy = NULL;
    struct kigen_record *records = NULL;
    const struct kigen_file **errors = NULL;
    size_t n_files = 0, n_answers = 0;
    bool is_failed = false;
    int r = -ENOMEM;

    if (!snap)
        return -ENOMEM;
    snap->view = *view;
    snap->view.records = NULL;
    snap->view.errors = NULL;
    snap->view.probes = NULL;
    snap->view.crls = NULL;
    if (view->n_records) {
        records = malloc(view->n_records * sizeof(*records));
        snap->certs = malloc(view->n_records * sizeof(*snap->certs));
        if (!records || !snap->certs)
            goto out;
    }
    if (view->n_records + view->n_errors) {
        snap->files = malloc((view->n_records + view->n_errors) * sizeof(*snap->files));
        if (!snap->files)
            goto out;
    }
    if (view->n_errors) {
        errors = malloc(view->n_errors * sizeof(*errors));
        if (!errors)
            goto out;
    }
    if (view->n_probes) {
        snap->probes = calloc(view->n_probes, sizeof(*snap->probes));
        if (!snap->probes)
            goto out;
    }
    for (size_t i = 0; i < view->n_records; i++)
        n_answers += view->records[i].revocation != NULL;
    if (n_answers && !(snap->revocations = malloc(n_answers * sizeof(*snap->revocations))))
        goto out;
    if (view->n_crls) {
        snap->crls = malloc(view->n_crls * sizeof(*snap->crls));
        snap->crl_copies = malloc(view->n_crls * sizeof(*snap->crl_copies));
        snap->crl_files = malloc(view->n_crls * sizeof(*snap->crl_files));
        if (!snap->crls || !snap->crl_copies || !snap->crl_files)
            goto out;
    }
    r = copy_keystores(snap, view, &index, &is_failed);
    if (r < 0)
        goto out;
    n_answers = 0;
    for (size_t i = 0; i < view->n_records; i++) {
        const struct kigen_record *from = &view->records[i];
        struct kigen_record *to = &records[i];

        /* A file's records are next to each other in an unsorted view: one copy for them. */
        if (from->file != last_file) {
            copy_file(snap, from->file, &snap->files[n_files++], &is_failed);
            last_file = from->file;
        }
        if (from->keystore != last_ks) {
            uintptr_t k =
                (uintptr_t)(from->keystore ? kigen_strmap_get(&index, from->keystore->name) : NULL);

            last_ks = from->keystore;
            last_copy = k ? &snap->keystores[k - 1] : NULL;
        }
        copy_cert(snap, from->cert, &snap->certs[i], &is_failed);
        memset(to, 0, sizeof(*to));
        to->file = &snap->files[n_files - 1];
        to->cert = &snap->certs[i];
        to->keystore = last_copy;
        to->state = from->state;
        to->renewal_opens = from->renewal_opens;
        /* The holder: the certificate's own address (copied with it), or the register's. */
        if (from->holder && from->holder == from->cert->email)
            to->holder = snap->certs[i].email;
        else if (from->holder)
            to->holder = copy_str(snap, from->holder, &is_failed);
        if (from->holder_email && from->holder_email == from->cert->email)
            to->holder_email = snap->certs[i].email;
        else if (from->holder_email)
            to->holder_email = copy_str(snap, from->holder_email, &is_failed);
        to->holder_language = copy_str(snap, from->holder_language, &is_failed);
        to->wants_revocation = from->wants_revocation;
        if (from->revocation) {
            snap->revocations[n_answers] = *from->revocation;
            to->revocation = &snap->revocations[n_answers++];
        }
    }
    for (size_t i = 0; i < view->n_crls; i++) {
        copy_file(snap, view->crls[i].file, &snap->crl_files[i], &is_failed);
        snap->crl_copies[i] = *view->crls[i].crl;
        snap->crl_copies[i].issuer = copy_str(snap, view->crls[i].crl->issuer, &is_failed);
        snap->crls[i] = (struct kigen_crl_record){ &snap->crl_files[i], &snap->crl_copies[i],
                                                   view->crls[i].is_stale };
    }
    for (size_t i = 0; i < view->n_errors; i++) {
        copy_file(snap, view->errors[i], &snap->files[n_files], &is_failed);
        errors[i] = &snap->files[n_files++];
    }
    for (size_t i = 0; i < view->n_probes; i++) {
        struct kigen_probe_status *p = &snap->probes[i];

        *p = view->probes[i];
        memset(&p->server, 0, sizeof(p->server));
        p->name = copy_str(snap, view->probes[i].name, &is_failed);
        p->host = copy_str(snap, view->probes[i].host, &is_failed);
    }
    if (is_failed) {
        r = -ENOMEM;
        goto out;
    }
    snap->view.records = records;
    snap->view.errors = errors;
    snap->view.probes = snap->probes;
    snap->view.crls = snap->crls;
    records = NULL;
    errors = NULL;
    *ret_snapshot = snap;
    snap = NULL;
    r = 0;
out:
    kigen_strmap_clear(&index);
    free(records);
    free(errors);
    kigen_snapshot_free(snap);
    return r;
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
    for (size_t i = 0; i < snap->n_keystores; i++)
        free(snap->keystores[i].labels.v);
    free(snap->keystores);
    free(snap->probes);
    free(snap->revocations);
    free(snap->crls);
    free(snap->crl_copies);
    free(snap->crl_files);
    free(snap->certs);
    free(snap->files);
    free((void *)snap->view.records);
    free((void *)snap->view.errors);
    free(snap);
}
