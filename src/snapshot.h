/*
 * A snapshot: a view of the inventory (report.h) that owns copies of everything it shows, so
 * that the report and the metrics can be rendered from it on the thread pool while the loop
 * goes on changing, reloading or freeing the inventory and the configuration.
 *
 * It is built from the inventory by kigen_snapshot_builder, in slices on the daemon's loop
 * (100,000 certificates take about 0.1 s to copy, which in one go would hold up every status
 * answer behind it) or in one go with no budget.
 */
#ifndef KIGEN_SNAPSHOT_H
#define KIGEN_SNAPSHOT_H

#include "report.h"

struct snapshot_block;

/*
 * The copy. view is an ordinary view whose every pointer (records' files, certificates and
 * keystores, errors, probes) points into the snapshot; the rest is private.
 *
 * What is copied is what the renderers read: per record the file's keystore, path, format,
 * error and message, the certificate's fingerprint, dates, subject, issuer, serial and
 * entry, the keystore's name and labels, state, renewal_opens, the holder and the revocation
 * answer; the probes' statuses without their server certificates. A record's policy is
 * zeroed (its pointers lead into the configuration); a renderer that needs more copies it
 * here first.
 */
struct kigen_snapshot {
    struct kigen_view view;
    struct kigen_file *files;
    struct kigen_cert *certs;
    struct kigen_keystore **keystores; /* each allocated alone: records point at them */
    size_t n_keystores;
    struct kigen_probe_status *probes;
    struct kigen_crl *crl_copies;
    struct kigen_file *crl_files;
    struct snapshot_block *blocks; /* the strings and the revocation answers */
};

/* Frees the snapshot and all its copies. NULL is a no-op. */
void kigen_snapshot_free(struct kigen_snapshot *snapshot);

/*
 * A snapshot of the inventory built in slices on the loop: the view kigen_view_build() gives
 * for filter at now (built unsorted: kigen_view_sort() it on the thread pool), copied file by
 * file. Between slices the loop goes on, and the inventory or the configuration may change:
 * a slice that finds them changed (inventory->changes, or another configuration or serial)
 * starts over, so that the snapshot shows one state of them. After KIGEN_SNAPSHOT_RESTARTS
 * such restarts the next slice copies all the rest in one go: an inventory that never keeps
 * still for a build still gets an answer.
 */
#define KIGEN_SNAPSHOT_RESTARTS 3

struct kigen_snapshot_builder;

/* A builder of the view for filter (may be NULL; its strings are copied) at now. */
int kigen_snapshot_builder_new(const struct kigen_view_filter *filter, int64_t now,
                               struct kigen_snapshot_builder **ret_builder);

/*
 * One slice: copies files of inventory for about budget_ns nanoseconds (0: all of them).
 * config_serial names the configuration (a reload may free one and allocate the next at the
 * same address). Returns 1 when every file is copied, 0 when there is more to do, -ENOMEM.
 */
int kigen_snapshot_builder_step(struct kigen_snapshot_builder *builder,
                                const struct kigen_config *config, uint64_t config_serial,
                                const struct kigen_inventory *inventory, uint64_t budget_ns);

/*
 * The snapshot, once a step returned 1, with copies of the n probe statuses; the builder
 * keeps nothing of it. Returns 0 or -ENOMEM (the builder may then be finished again).
 */
int kigen_snapshot_builder_finish(struct kigen_snapshot_builder *builder,
                                  const struct kigen_probe_status *probes, size_t n,
                                  struct kigen_snapshot **ret_snapshot);

/* How many times the build started over. */
unsigned kigen_snapshot_builder_restarts(const struct kigen_snapshot_builder *builder);

void kigen_snapshot_builder_free(struct kigen_snapshot_builder *builder);

#endif
