/*
 * A pass goes through three phases, each checked against the budget before the next: the
 * view (about 10 ms for 100,000 certificates), the sort by fingerprint (about 25 ms), and the
 * groups, which stop when the budget is spent. The sweep (a few ms) ends the last slice. The
 * slices run from an idle handle, as the slicer's do (slicer.c says why not a zero timer).
 */
#include "evaluator.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

enum phase {
    IDLE,
    VIEW,
    SORT,
    GROUPS
};

struct kigen_evaluator {
    uv_idle_t idle;
    struct kigen_engine *engine;
    kigen_slicer_source_fn source;
    kigen_evaluator_clock_fn clock;
    kigen_evaluator_done_fn done;
    void *data;
    uint64_t budget_ns;
    size_t one_go_below;
    enum phase phase;
    bool again;        /* asked for while a pass ran: one more after it */
    bool is_deferred;  /* the first slice waits for the loop to poll once */
    unsigned in_row;   /* restarts of the evaluation in progress */
    unsigned restarts; /* in all */
    /* What the pass borrows from, as it was when its view was built. */
    const struct kigen_config *config;
    uint64_t config_serial;
    const struct kigen_inventory *inventory;
    uint64_t changes;
    int64_t now;
    struct kigen_view view;
    struct kigen_engine_pass pass;
};

static const struct kigen_view_filter all_unsorted = { .state = -1,
                                                       .within = -1,
                                                       .is_unsorted = true };

/* Drops the pass in progress and its view; the engine forgets what it saw. */
static void drop(struct kigen_evaluator *ev)
{
    if (ev->phase == GROUPS)
        kigen_engine_pass_abandon(ev->engine, &ev->pass);
    if (ev->phase > VIEW)
        kigen_view_done(&ev->view);
    memset(&ev->view, 0, sizeof(ev->view));
}

static void slice_cb(uv_idle_t *idle);

/* Ends the evaluation: done with its view (or none) and result; then the one asked for since. */
static void finish(struct kigen_evaluator *ev, int result)
{
    struct kigen_view view = ev->view;
    bool has_view = result >= 0;

    if (!has_view)
        drop(ev);
    memset(&ev->view, 0, sizeof(ev->view));
    ev->phase = IDLE;
    ev->in_row = 0;
    ev->is_deferred = false;
    uv_idle_stop(&ev->idle);
    /* done may ask for another evaluation, which then begins within it: view is ours now. */
    ev->done(ev->data, has_view ? &view : NULL, ev->now, result);
    if (has_view)
        kigen_view_done(&view);
    if (ev->phase == IDLE && ev->again) {
        ev->phase = VIEW;
        uv_idle_start(&ev->idle, slice_cb);
    }
}

/* Whether what the pass borrows from is as it was when its view was built. */
static bool is_unchanged(const struct kigen_evaluator *ev, const struct kigen_slicer_source *src)
{
    return src->config == ev->config && src->config_serial == ev->config_serial &&
           src->inventory == ev->inventory && src->inventory->changes == ev->changes;
}

/* One slice: the phases of the pass while the budget lasts (all of them with budget 0). */
static void run(struct kigen_evaluator *ev)
{
    struct kigen_slicer_source src = { 0 };
    uint64_t start = kigen_monotonic_ns(), budget;
    int r;

    ev->source(ev->data, &src);
    if (ev->phase > VIEW && !is_unchanged(ev, &src)) {
        drop(ev);
        ev->phase = VIEW;
        ev->in_row++;
        ev->restarts++;
    }
    budget = ev->in_row >= KIGEN_EVALUATOR_RESTARTS || src.inventory->n_certs < ev->one_go_below
                 ? 0
                 : ev->budget_ns;
    for (;;) {
        uint64_t spent;

        switch (ev->phase) {
        case IDLE:
            return;
        case VIEW:
            ev->again = false; /* this pass sees what any request since the last one saw */
            ev->config = src.config;
            ev->config_serial = src.config_serial;
            ev->inventory = src.inventory;
            ev->changes = src.inventory->changes;
            ev->now = ev->clock(ev->data);
            r = kigen_view_build(src.config, src.inventory, ev->now, &all_unsorted, &ev->view);
            if (r < 0) {
                finish(ev, r);
                return;
            }
            ev->phase = SORT;
            break;
        case SORT:
            r = kigen_engine_pass_begin(ev->engine, &ev->view, ev->now, &ev->pass);
            ev->phase = GROUPS; /* the pass is begun, even when it failed: drop() frees it */
            if (r < 0) {
                finish(ev, r);
                return;
            }
            break;
        case GROUPS:
            spent = kigen_monotonic_ns() - start;
            r = kigen_engine_pass_step(ev->engine, ev->config, ev->inventory, &ev->pass,
                                       !budget          ? 0
                                       : spent < budget ? budget - spent
                                                        : 1);
            if (r == 0)
                return; /* the idle handle runs the next slice */
            if (r > 0)
                r = kigen_engine_pass_end(ev->engine, ev->config, ev->inventory, &ev->pass);
            else
                kigen_engine_pass_abandon(ev->engine, &ev->pass);
            ev->phase = SORT; /* the pass is over: only the view is left to free */
            finish(ev, r);
            return;
        }
        if (budget && kigen_monotonic_ns() - start >= budget)
            return;
    }
}

static void slice_cb(uv_idle_t *idle)
{
    struct kigen_evaluator *ev = idle->data;

    if (ev->is_deferred) {
        ev->is_deferred = false;
        return;
    }
    run(ev);
}

int kigen_evaluator_new(uv_loop_t *loop, struct kigen_engine *engine, kigen_slicer_source_fn source,
                        kigen_evaluator_clock_fn clock, kigen_evaluator_done_fn done, void *data,
                        struct kigen_evaluator **ret_evaluator)
{
    struct kigen_evaluator *ev = calloc(1, sizeof(*ev));
    int r;

    if (!ev)
        return -ENOMEM;
    r = uv_idle_init(loop, &ev->idle);
    if (r < 0) {
        free(ev);
        return r;
    }
    ev->idle.data = ev;
    ev->engine = engine;
    ev->source = source;
    ev->clock = clock;
    ev->done = done;
    ev->data = data;
    ev->budget_ns = KIGEN_SLICE_NS;
    ev->one_go_below = KIGEN_EVALUATOR_ONE_GO;
    *ret_evaluator = ev;
    return 0;
}

void kigen_evaluator_start(struct kigen_evaluator *ev)
{
    struct kigen_slicer_source src = { 0 };

    if (ev->phase != IDLE) {
        ev->again = true;
        return;
    }
    ev->phase = VIEW;
    uv_idle_start(&ev->idle, slice_cb);
    ev->source(ev->data, &src);
    /*
     * A large one begins in a later loop iteration, once the loop has polled: what asked for
     * it (the end of a scan, say) has taken its own time already.
     */
    ev->is_deferred = src.inventory->n_certs >= ev->one_go_below;
    if (!ev->is_deferred)
        run(ev);
}

bool kigen_evaluator_is_busy(const struct kigen_evaluator *ev)
{
    return ev->phase != IDLE;
}

unsigned kigen_evaluator_restarts(const struct kigen_evaluator *ev)
{
    return ev->restarts;
}

void kigen_evaluator_set_budget(struct kigen_evaluator *ev, uint64_t ns, size_t one_go_below)
{
    if (ns)
        ev->budget_ns = ns;
    ev->one_go_below = one_go_below;
}

static void close_cb(uv_handle_t *handle)
{
    free(handle->data);
}

void kigen_evaluator_close(struct kigen_evaluator *ev)
{
    if (!ev)
        return;
    drop(ev);
    ev->phase = IDLE;
    uv_close((uv_handle_t *)&ev->idle, close_cb);
}
