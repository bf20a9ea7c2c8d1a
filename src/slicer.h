/*
 * The loop's side of kigen_snapshot_builder (snapshot.h): snapshots built a slice per loop
 * iteration, so that the status socket, the watches and the timers are served between the
 * slices of a 100,000-certificate copy. Loop thread only.
 */
#ifndef KIGEN_SLICER_H
#define KIGEN_SLICER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "snapshot.h"
#include "timeutil.h" /* KIGEN_SLICE_NS */

/* What a build reads, asked for again at every slice (a reload or a scan replaces it). */
struct kigen_slicer_source {
    const struct kigen_config *config;
    uint64_t config_serial; /* changes with every configuration taken */
    const struct kigen_inventory *inventory;
    const struct kigen_probe_status *probes;
    size_t n_probes;
};

typedef void (*kigen_slicer_source_fn)(void *data, struct kigen_slicer_source *source);

/*
 * A build's end, on the loop: snapshot (the callee's to free) and 0, or NULL and a negative
 * errno (-ECANCELED when the slicer was closed first).
 */
typedef void (*kigen_slicer_done_fn)(void *data, struct kigen_snapshot *snapshot, int result);

struct kigen_slicer;

int kigen_slicer_new(uv_loop_t *loop, kigen_slicer_source_fn source, void *data,
                     struct kigen_slicer **ret_slicer);

/*
 * Starts building the snapshot of the view for filter (may be NULL; copied) at now; done is
 * called once, from a later loop iteration, never from within this call. Builds in progress
 * take turns, a slice each. Returns 0 or -ENOMEM (then done is not called).
 */
int kigen_slicer_start(struct kigen_slicer *slicer, const struct kigen_view_filter *filter,
                       int64_t now, kigen_slicer_done_fn done, void *data);

/* Changes the length of a slice (0 keeps it); for tests. */
void kigen_slicer_set_budget(struct kigen_slicer *slicer, uint64_t ns);

/* How many builds are in progress. */
size_t kigen_slicer_pending(const struct kigen_slicer *slicer);

/*
 * Ends every build in progress (done with -ECANCELED, from within this call) and closes the
 * slicer: it is freed once its handle is closed. NULL is a no-op.
 */
void kigen_slicer_close(struct kigen_slicer *slicer);

#endif
