#include "watch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct watched {
    uv_fs_event_t handle; /* first: the handle's address is the struct's */
    struct kigen_watch *owner;
    char *path;
    bool keep;
};

void kigen_watch_init(struct kigen_watch *watch, uv_loop_t *loop, kigen_watch_cb cb, void *data)
{
    memset(watch, 0, sizeof(*watch));
    watch->loop = loop;
    watch->cb = cb;
    watch->data = data;
}

static void event_cb(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    struct watched *w = (struct watched *)handle;

    if (status < 0)
        return; /* the directory went away; the next scan notices */
    w->owner->cb(w->owner, w->path, filename, w->owner->data);
}

static void closed_cb(uv_handle_t *handle)
{
    struct watched *w = (struct watched *)handle;
    struct kigen_watch *owner = w->owner;

    free(w->path);
    free(w);
    if (--owner->closing == 0 && owner->closed_cb)
        owner->closed_cb(owner);
}

static void close_watched(struct kigen_watch *watch, struct watched *w)
{
    watch->closing++;
    uv_close((uv_handle_t *)&w->handle, closed_cb);
}

static void unmark_cb(const char *key, void *value, void *data)
{
    ((struct watched *)value)->keep = false;
}

static void drop_unkept_cb(const char *key, void *value, void *data)
{
    struct kigen_watch *watch = data;
    struct watched *w = value;

    if (w->keep)
        return;
    kigen_strmap_remove(&watch->paths, key);
    close_watched(watch, w);
}

static int add(struct kigen_watch *watch, const char *path)
{
    struct watched *w = calloc(1, sizeof(*w));
    int r;

    if (!w)
        return -ENOMEM;
    w->owner = watch;
    w->keep = true;
    w->path = strdup(path);
    if (!w->path) {
        free(w);
        return -ENOMEM;
    }
    r = uv_fs_event_init(watch->loop, &w->handle);
    if (r < 0) {
        free(w->path);
        free(w);
        return r;
    }
    r = uv_fs_event_start(&w->handle, event_cb, path, 0);
    if (r == 0)
        r = kigen_strmap_put(&watch->paths, path, w);
    if (r < 0) {
        close_watched(watch, w);
        return r;
    }
    return 0;
}

size_t kigen_watch_update(struct kigen_watch *watch, const char *const *paths, size_t n)
{
    kigen_strmap_foreach(&watch->paths, unmark_cb, NULL);
    watch->n_failed = 0;
    watch->last_error = 0;
    for (size_t i = 0; i < n; i++) {
        struct watched *w = kigen_strmap_get(&watch->paths, paths[i]);
        int r;

        if (w) {
            w->keep = true;
            continue;
        }
        r = add(watch, paths[i]);
        if (r < 0) {
            watch->n_failed++;
            watch->last_error = r;
        }
    }
    kigen_strmap_foreach(&watch->paths, drop_unkept_cb, watch);
    return watch->n_failed;
}

static void close_all_cb(const char *key, void *value, void *data)
{
    struct kigen_watch *watch = data;

    kigen_strmap_remove(&watch->paths, key);
    close_watched(watch, value);
}

void kigen_watch_close(struct kigen_watch *watch, void (*cb)(struct kigen_watch *watch))
{
    watch->closed_cb = cb;
    kigen_strmap_foreach(&watch->paths, close_all_cb, watch);
    kigen_strmap_clear(&watch->paths);
    if (watch->closing == 0 && cb)
        cb(watch);
}
