#include "watch.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct watched {
    uv_fs_event_t handle; /* first: the handle's address is the struct's */
    struct kigen_watch *owner;
    char *path;
    uint64_t dev; /* what path was when the watch started: inotify watches the inode */
    uint64_t ino;
    bool is_dir;
    bool keep;
};

void kigen_watch_init(struct kigen_watch *watch, uv_loop_t *loop, kigen_watch_cb cb, void *data)
{
    memset(watch, 0, sizeof(*watch));
    watch->loop = loop;
    watch->cb = cb;
    watch->data = data;
}

static void close_watched(struct kigen_watch *watch, struct watched *w);

/*
 * Whether the watched path no longer leads to the watched inode: moved, deleted, unmounted
 * (IN_MOVE_SELF, IN_DELETE_SELF, IN_UNMOUNT, IN_IGNORED). libuv names such an event by the
 * path's last component, as it would a child of that name, so the path is looked at.
 */
static bool is_self_gone(const struct watched *w, const char *filename, int status)
{
    const char *base = strrchr(w->path, '/');
    struct stat st;

    base = base ? base + 1 : w->path;
    if (status == 0 && filename && strcmp(filename, base) != 0)
        return false;
    return stat(w->path, &st) < 0 || (uint64_t)st.st_dev != w->dev || (uint64_t)st.st_ino != w->ino;
}

static void event_cb(uv_fs_event_t *handle, const char *filename, int events, int status)
{
    struct watched *w = (struct watched *)handle;
    struct kigen_watch *owner = w->owner;

    if (is_self_gone(w, filename, status)) {
        /* Dropped, so that the next update watches whatever the path leads to then. */
        if (kigen_strmap_get(&owner->paths, w->path) == w)
            kigen_strmap_remove(&owner->paths, w->path);
        owner->cb(owner, w->path, NULL, owner->data);
        close_watched(owner, w);
        return;
    }
    if (status < 0)
        return;
    /* A watched file changed in place: the name libuv gives is the file's own. */
    owner->cb(owner, w->path, w->is_dir ? filename : NULL, owner->data);
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
    struct stat st;
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
    if (stat(path, &st) == 0) {
        w->dev = (uint64_t)st.st_dev;
        w->ino = (uint64_t)st.st_ino;
        w->is_dir = S_ISDIR(st.st_mode);
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
