/*
 * A snapshot: a view of the inventory (report.h) that owns copies of everything it shows, so
 * that the report and the metrics can be rendered from it on the thread pool while the loop
 * goes on changing, reloading or freeing the inventory and the configuration.
 */
#ifndef KIGEN_SNAPSHOT_H
#define KIGEN_SNAPSHOT_H

#include "report.h"

/*
 * The copy. view is an ordinary view whose every pointer (records' files, certificates and
 * keystores, errors, probes) points into the snapshot; the rest is private.
 *
 * What is copied is what the renderers read: per record the file's keystore, path, format,
 * error and message, the certificate's fingerprint, dates, subject, issuer, serial and
 * entry, the keystore's name and labels, state, renewal_opens and the holder; the probes' statuses
 * without their server certificates. A record's policy is zeroed (its pointers lead into the
 * configuration); a renderer that needs more copies it here first.
 */
struct kigen_snapshot {
    struct kigen_view view;
    struct kigen_file *files;
    struct kigen_cert *certs;
    struct kigen_keystore *keystores;
    size_t n_keystores;
    struct kigen_probe_status *probes;
    struct kigen_revocation_status *revocations; /* one per record that has an answer */
    struct kigen_crl_record *crls;
    struct kigen_crl *crl_copies;
    struct kigen_file *crl_files;
    struct snapshot_block *blocks; /* the strings */
};

/*
 * Copies view (records, errors, probes, counts; its order too) into a new snapshot
 * (*ret_snapshot). Cost: one pass over the view and a memcpy of its strings, a few ms for
 * 100,000 records. Returns 0 or -ENOMEM. Loop thread (it reads what view borrows); the
 * snapshot may then be used and freed on any one thread at a time.
 */
int kigen_snapshot_new(const struct kigen_view *view, struct kigen_snapshot **ret_snapshot);

/* Frees the snapshot and all its copies. NULL is a no-op. */
void kigen_snapshot_free(struct kigen_snapshot *snapshot);

#endif
