/*
 * Builds in progress form a ring: each timer tick gives the first one a slice and moves it to
 * the end, so that a long list does not keep the published metrics waiting, nor the reverse.
 * A zero timer re-armed per slice lets the loop poll for I/O (without waiting) in between.
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
    uv_timer_t timer;
    kigen_slicer_source_fn source;
    void *data;
    struct build *head, *tail;
    size_t n;
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

static void tick_cb(uv_timer_t *timer)
{
    struct kigen_slicer *s = timer->data;
    struct kigen_slicer_source src = { 0 };
    struct kigen_snapshot *snapshot = NULL;
    struct build *b;
    int r;

    if (!s->head)
        return;
    b = pop(s);
    s->source(s->data, &src);
    r = kigen_snapshot_builder_step(b->builder, src.config, src.config_serial, src.inventory,
                                    KIGEN_SLICE_NS);
    if (r == 0)
        push(s, b);
    if (s->head)
        uv_timer_start(&s->timer, tick_cb, 0, 0);
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
    r = uv_timer_init(loop, &s->timer);
    if (r < 0) {
        free(s);
        return r;
    }
    s->timer.data = s;
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
    if (!uv_is_active((uv_handle_t *)&s->timer))
        uv_timer_start(&s->timer, tick_cb, 0, 0);
    return 0;
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
    uv_close((uv_handle_t *)&s->timer, close_cb);
}
