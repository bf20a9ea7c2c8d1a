/*
 * Change watches on keystore directories (inotify through uv_fs_event). They only say that
 * something changed; the scan finds out what. Loop thread only.
 */
#ifndef KIGEN_WATCH_H
#define KIGEN_WATCH_H

#include <stddef.h>

#include <uv.h>

#include "strmap.h"

struct kigen_watch;

/*
 * Called on the loop thread for every change event: path is the watched path, name the entry
 * in it that changed, or NULL when the change is to path itself: a watched file changed, or
 * the watched directory was moved, deleted, replaced or unmounted (its watch is then dropped,
 * and the next kigen_watch_update() watches whatever the path leads to).
 */
typedef void (*kigen_watch_cb)(struct kigen_watch *watch, const char *path, const char *name,
                               void *data);

struct kigen_watch {
    uv_loop_t *loop;
    struct kigen_strmap paths; /* path -> struct watched */
    kigen_watch_cb cb;
    void *data;
    size_t n_failed; /* paths that could not be watched at the last update */
    int last_error;  /* why, as a negative errno (-ENOSPC: the inotify limit) */
    size_t closing;  /* handles not yet closed */
    void (*closed_cb)(struct kigen_watch *watch);
};

void kigen_watch_init(struct kigen_watch *watch, uv_loop_t *loop, kigen_watch_cb cb, void *data);

/*
 * Watches exactly paths (directories or files): new ones are added, missing ones closed.
 * Returns how many paths could not be watched (see n_failed, last_error).
 */
size_t kigen_watch_update(struct kigen_watch *watch, const char *const *paths, size_t n);

/* Closes every watch; closed_cb (may be NULL) runs when the last handle is closed. */
void kigen_watch_close(struct kigen_watch *watch, void (*closed_cb)(struct kigen_watch *watch));

#endif
