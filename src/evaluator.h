/*
 * The loop's side of an evaluation (engine.h kigen_engine_pass): the view is built, sorted
 * and evaluated a slice per loop iteration, so that the status socket, the watches and the
 * timers are served in between, even for 100,000 certificates. An inventory of fewer than
 * KIGEN_EVALUATOR_ONE_GO certificates (an evaluation of 10 ms or so) is evaluated in one go,
 * within the call that asks for it, as by a plain kigen_engine_evaluate(). Loop thread only.
 *
 * The view borrows from the inventory and the configuration: a slice that finds either
 * changed (another configuration or serial, inventory->changes moved) abandons the pass and
 * begins another, at the time it is then. After KIGEN_EVALUATOR_RESTARTS such restarts the
 * next pass runs in one go: an estate that never keeps still is still evaluated.
 */
#ifndef KIGEN_EVALUATOR_H
#define KIGEN_EVALUATOR_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "engine.h"
#include "slicer.h"

#define KIGEN_EVALUATOR_RESTARTS 3
#define KIGEN_EVALUATOR_ONE_GO   10000

/*
 * An evaluation's end: view (built at now, unsorted, without probes; valid until the callback
 * returns) and how many alerts it queued, or a negative errno with view NULL.
 */
typedef void (*kigen_evaluator_done_fn)(void *data, struct kigen_view *view, int64_t now,
                                        int result);

/* The clock evaluations are made at (the daemon's: --now moves it). */
typedef int64_t (*kigen_evaluator_clock_fn)(void *data);

struct kigen_evaluator;

int kigen_evaluator_new(uv_loop_t *loop, struct kigen_engine *engine, kigen_slicer_source_fn source,
                        kigen_evaluator_clock_fn clock, kigen_evaluator_done_fn done, void *data,
                        struct kigen_evaluator **ret_evaluator);

/*
 * Asks for an evaluation. Without one in progress, a small inventory is evaluated within this
 * call (done is called from within it), and a large one begins once the loop has polled; with
 * one in progress, another follows it, so that what changed since it built its view is
 * evaluated too. A failure comes to done.
 */
void kigen_evaluator_start(struct kigen_evaluator *evaluator);

/* Whether an evaluation is in progress. */
bool kigen_evaluator_is_busy(const struct kigen_evaluator *evaluator);

/* How many passes were abandoned and begun again since the evaluator was made. */
unsigned kigen_evaluator_restarts(const struct kigen_evaluator *evaluator);

/*
 * Changes the length of a slice (0 keeps it) and the size below which an inventory is
 * evaluated in one go (0: none is); for tests.
 */
void kigen_evaluator_set_budget(struct kigen_evaluator *evaluator, uint64_t ns,
                                size_t one_go_below);

/* Abandons the evaluation in progress (done is not called) and closes. NULL is a no-op. */
void kigen_evaluator_close(struct kigen_evaluator *evaluator);

#endif
