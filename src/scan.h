/*
 * The scan: walks the keystores, reads changed files on libuv's thread pool and merges what
 * they hold into the inventory on the loop thread (SPEC §4). A file whose device, inode, size
 * and mtime are unchanged since its last read is not read again.
 */
#ifndef KIGEN_SCAN_H
#define KIGEN_SCAN_H

#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "inventory.h"

struct kigen_scanner;

/*
 * Called on the loop thread when a scan has merged all it read. status is 0 or -errno;
 * -ESTALE from a partial scan means a keystore root changed under it: start a full scan.
 */
typedef void (*kigen_scan_done_cb)(struct kigen_scanner *scanner, int status, void *data);

/*
 * A scanner for inventory on loop. It keeps one OpenSSL library context per worker thread
 * between scans. Returns 0 or -ENOMEM; *ret_scanner written on success.
 */
int kigen_scanner_new(uv_loop_t *loop, struct kigen_inventory *inventory,
                      struct kigen_scanner **ret_scanner);

/* Frees the scanner; no scan may be running. NULL is a no-op. */
void kigen_scanner_free(struct kigen_scanner *scanner);

/*
 * Starts a full scan of every keystore of config. config must stay unchanged and alive until
 * done_cb runs. Records of locations no longer found are removed from the inventory at the
 * end, in keystores whose root was read completely: an unavailable root (missing, unreadable,
 * an empty directory on another file system) keeps its records as last seen, with one
 * keystore_unavailable error at the root, and a directory that could not be listed keeps
 * its keystore's records. Returns 0, -EBUSY if a scan is running, or -ENOMEM; on failure done_cb is
 * not called.
 */
int kigen_scanner_start(struct kigen_scanner *scanner, const struct kigen_config *config,
                        kigen_scan_done_cb done_cb, void *data);

/*
 * Starts a partial scan of paths (files or directories below keystore roots, as a change
 * watch reports them): each is walked as the full scan would walk it, and records under a
 * path that is no longer found are removed. Keystore roots themselves need a full scan.
 * Same contract as kigen_scanner_start otherwise.
 */
int kigen_scanner_start_paths(struct kigen_scanner *scanner, const struct kigen_config *config,
                              const char *const *paths, size_t n, kigen_scan_done_cb done_cb,
                              void *data);

/* Whether a scan is running. */
bool kigen_scanner_is_busy(const struct kigen_scanner *scanner);

/*
 * Where `env:` password sources are looked up (default getenv). The daemon keeps them out of
 * its environment, so that exec hooks and /proc/PID/environ never show them.
 */
/*
 * Makes the scan background work (the daemon): the thread-pool threads that walk and read run
 * at nice KIGEN_SCAN_NICE from then on, so that the loop thread comes first. kigend --once
 * does not: there the scan is all there is to do.
 */
void kigen_scanner_set_background(struct kigen_scanner *scanner);

/* How long each slice of the walk's merge may take (default 3 ms; 0 keeps it); for tests. */
void kigen_scanner_set_merge_slice(struct kigen_scanner *scanner, uint64_t ns);

void kigen_scanner_set_getenv(struct kigen_scanner *scanner,
                              const char *(*getenv_fn)(const char *name, void *data), void *data);

/*
 * What the scanner asks of its owner, on the loop thread (every member may be NULL):
 *   now        the clock that stamps the records' last_seen (default: the wall clock);
 *   root_dev   the st_dev of a keystore root (by name and path) at its last complete read,
 *              0 when unknown; an empty directory on another device is then unavailable;
 *   root_read  a keystore root was read completely on device dev (remember it, across
 *              restarts too); called only when dev differs from what root_dev said.
 */
struct kigen_scan_hooks {
    int64_t (*now)(void *data);
    uint64_t (*root_dev)(const char *keystore, const char *path, void *data);
    void (*root_read)(const char *keystore, const char *path, uint64_t dev, void *data);
};

/* Sets the hooks (borrowed: they must outlive the scanner) and their data. */
void kigen_scanner_set_hooks(struct kigen_scanner *scanner, const struct kigen_scan_hooks *hooks,
                             void *data);

/*
 * How many keystores had an unavailable root (SPEC §4 keystore_unavailable) at the last full
 * scan. Their records are kept, marked stale; the directories to watch for their return are
 * among kigen_scanner_dirs().
 */
size_t kigen_scanner_unavailable(const struct kigen_scanner *scanner);

/*
 * Asks the running scan to stop soon: its done_cb still runs, with -ECANCELED, and the
 * inventory keeps what was merged so far. No-op when idle.
 */
void kigen_scanner_cancel(struct kigen_scanner *scanner);

/*
 * The directories the last complete scan walked (for the change watches). The array and
 * its strings stay valid until the next scan completes. Returns their number.
 */
size_t kigen_scanner_dirs(const struct kigen_scanner *scanner, const char *const **ret_dirs);

#endif
