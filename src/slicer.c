/*
 * Builds in progress form a ring: each loop iteration gives the first one a slice and moves it
 * to the end, so that a long list does not keep the published metrics waiting, nor the
 * reverse. The slices run from an idle handle: once per iteration, and while it is active the
 * loop polls for I/O without waiting. (A zero timer re-armed from its callback would not do:
 * libuv before 1.45 runs it again at once, in the same iteration, until the build is done.)
 */
#include "slicer.h"

#include <errno.h>
#include <stdlib.h>

struct build {
    struct build *next;
    struct kigen_snapshot_builder *builder;
    kigen_slicer_done_fn done;
    void *data;
};

struct kigen_slicer {
    uv_idle_t idle;
    kigen_slicer_source_fn source;
    void *data;
    struct build *head, *tail;
    size_t n;
    uint64_t budget_ns;
};

static void end_build(struct build *b, struct kigen_snapshot *snapshot, int result)
{
    kigen_slicer_done_fn done = b->done;
    void *data = b->data;

    kigen_snapshot_builder_free(b->builder);
    free(b);
    done(data, snapshot, result);
}

/* Takes the first build off the ring. */
static struct build *pop(struct kigen_slicer *s)
{
    struct build *b = s->head;

    s->head = b->next;
    if (!s->head)
        s->tail = NULL;
    b->next = NULL;
    s->n--;
    return b;
}

static void push(struct kigen_slicer *s, struct build *b)
{
    if (s->tail)
        s->tail->next = b;
    else
        s->head = b;
    s->tail = b;
    s->n++;
}

static void slice_cb(uv_idle_t *idle)
{
    struct kigen_slicer *s = idle->data;
    struct kigen_slicer_source src = { 0 };
    struct kigen_snapshot *snapshot = NULL;
    struct build *b;
    int r;

    if (!s->head) {
        uv_idle_stop(&s->idle);
        return;
    }
    b = pop(s);
    s->source(s->data, &src);
    r = kigen_snapshot_builder_step(b->builder, src.config, src.config_serial, src.inventory,
                                    s->budget_ns);
    if (r == 0)
        push(s, b);
    if (!s->head)
        uv_idle_stop(&s->idle);
    if (r > 0)
        r = kigen_snapshot_builder_finish(b->builder, src.probes, src.n_probes, &snapshot);
    if (r != 0 || snapshot)
        end_build(b, snapshot, r); /* last: done may start another build */
}

int kigen_slicer_new(uv_loop_t *loop, kigen_slicer_source_fn source, void *data,
                     struct kigen_slicer **ret_slicer)
{
    struct kigen_slicer *s = calloc(1, sizeof(*s));
    int r;

    if (!s)
        return -ENOMEM;
    r = uv_idle_init(loop, &s->idle);
    if (r < 0) {
        free(s);
        return r;
    }
    s->idle.data = s;
    s->budget_ns = KIGEN_SLICE_NS;
    s->source = source;
    s->data = data;
    *ret_slicer = s;
    return 0;
}

int kigen_slicer_start(struct kigen_slicer *s, const struct kigen_view_filter *filter, int64_t now,
                       kigen_slicer_done_fn done, void *data)
{
    struct build *b = calloc(1, sizeof(*b));
    int r;

    if (!b)
        return -ENOMEM;
    r = kigen_snapshot_builder_new(filter, now, &b->builder);
    if (r < 0) {
        free(b);
        return r;
    }
    b->done = done;
    b->data = data;
    push(s, b);
    uv_idle_start(&s->idle, slice_cb); /* no-op when active */
    return 0;
}

void kigen_slicer_set_budget(struct kigen_slicer *s, uint64_t ns)
{
    if (ns)
        s->budget_ns = ns;
}

size_t kigen_slicer_pending(const struct kigen_slicer *s)
{
    return s->n;
}

static void close_cb(uv_handle_t *handle)
{
    free(handle->data);
}

void kigen_slicer_close(struct kigen_slicer *s)
{
    if (!s)
        return;
    while (s->head)
        end_build(pop(s), NULL, -ECANCELED);
    uv_close((uv_handle_t *)&s->idle, close_cb);
}
