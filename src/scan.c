/*
 * The scan runs in two kinds of work on libuv's thread pool:
 *
 *   walk  one job: lists the files of every keystore (lstat, readdir) and resolves the
 *         configured password files; touches no inventory.
 *   read  batches of files: open, read, detect, decode into struct kigen_file records.
 *
 * Between and after them the loop thread decides what to read (unchanged files are skipped)
 * and merges the records into the inventory, which it alone writes. A work callback touches
 * only its own job struct.
 */
#include "scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "err.h"
#include "log.h"
#include "probe_sync.h"
#include "read.h"
#include "readfile.h"
#include "secret.h"
#include "timeutil.h"

#define BATCH_FILES     32
#define KIGEN_SCAN_NICE 19 /* the walking and reading threads' nice value (see below) */
#define CTX_SLOTS       64
#define MAX_DEPTH       64

/* One OpenSSL library context per concurrently running job, claimed without a lock. */
struct ctx_slot {
    atomic_bool busy;
    struct kigen_read_ctx *ctx;
};

struct kigen_scanner {
    uv_loop_t *loop;
    struct kigen_inventory *inventory;
    struct ctx_slot slots[CTX_SLOTS];
    struct scan *scan;  /* the running scan, or NULL */
    atomic_bool cancel; /* set by kigen_scanner_cancel(), read by the workers */
    char **dirs;        /* the directories the last complete scan walked */
    const char *(*getenv_fn)(const char *name, void *data); /* env: password sources */
    void *getenv_data;
    size_t n_dirs;
    size_t n_unavailable;     /* keystores whose root was unavailable at the last full scan */
    uint64_t merge_slice_ns;  /* of the walk's merge per loop iteration */
    bool is_background;       /* walk and read at KIGEN_SCAN_NICE (kigen_scanner_set_background) */
    bool is_credential_noted; /* a missing credential was logged: once per process */
    const struct kigen_scan_hooks *hooks; /* clock and root memory; NULL: wall clock, none */
    void *hooks_data;
};

/*
 * The passwords of one keystore for this scan, one slot per configured source in order (NULL
 * when the source gave nothing), wiped when the scan ends.
 */
struct secrets {
    char **v;
    size_t n;
};

/* A file found by the walk, or an error found there (error != 0). */
struct item {
    size_t keystore; /* index into config->keystores */
    char *path;
    struct kigen_file_id id;
    int error;
    char *message;
};

struct items {
    struct item *v;
    size_t n;
    size_t cap;
};

struct scan {
    struct kigen_scanner *scanner;
    const struct kigen_config *config;
    kigen_scan_done_cb done_cb;
    void *data;
    uint64_t generation;
    struct secrets *secrets; /* one per keystore */
    char **secret_paths;     /* credential/file paths, resolved on the loop thread */
    struct items found;      /* the walk's result */
    struct items dirs;       /* the directories it walked */
    char **roots;            /* a partial scan: only these paths; NULL for a full scan */
    size_t n_roots;
    struct root *root;     /* one per keystore, opened by the walk, used by the reads */
    int64_t started;       /* the scan's clock when it started: the records' last_seen */
    struct items warnings; /* password sources that could not be read, etc. */
    size_t pending;        /* read jobs not yet merged */
    int status;
    uv_work_t walk_req;
    /* The walk's merge, a slice per loop iteration (merge_walk). */
    size_t walk_next;   /* the next item of found */
    size_t walk_n_read; /* items before it that need reading, moved to the front */
};

struct read_job {
    uv_work_t req;
    struct scan *scan;
    struct item *items; /* borrowed from scan->found */
    size_t n;
    struct kigen_file **out; /* one record per item, or NULL when it holds nothing */
    int status;
};

/* ---- helpers shared by the workers ---- */

static void secret_free(char *s)
{
    kigen_secret_free(s);
}

static int items_add(struct items *items, struct item **ret)
{
    if (items->n == items->cap) {
        size_t cap = items->cap ? items->cap * 2 : 64;
        struct item *v = realloc(items->v, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        items->v = v;
        items->cap = cap;
    }
    *ret = &items->v[items->n++];
    memset(*ret, 0, sizeof(**ret));
    return 0;
}

static void items_done(struct items *items)
{
    for (size_t i = 0; i < items->n; i++) {
        free(items->v[i].path);
        free(items->v[i].message);
    }
    free(items->v);
    memset(items, 0, sizeof(*items));
}

static int add_error(struct items *items, size_t ks, const char *path, int err, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

static int add_error(struct items *items, size_t ks, const char *path, int err, const char *fmt,
                     ...)
{
    struct item *it;
    char msg[512];
    va_list ap;

    if (items_add(items, &it) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    it->keystore = ks;
    it->path = strdup(path);
    it->message = strdup(msg);
    it->error = err;
    if (!it->path || !it->message)
        return -ENOMEM;
    return 0;
}

static void id_from_stat(const struct stat *st, struct kigen_file_id *id)
{
    id->dev = (uint64_t)st->st_dev;
    id->ino = (uint64_t)st->st_ino;
    id->size = (int64_t)st->st_size;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    /* mtime can be set back (touch -r, cp -p, tar); ctime cannot: any write moves it. */
    id->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* ---- the walk ---- */

/* (dev, inode) pairs already visited in one keystore: loops and links yield nothing twice. */
struct idset {
    uint64_t *v; /* pairs; (0, 0) is empty */
    size_t cap;  /* pairs, a power of two */
    size_t n;
};

static uint64_t mix(uint64_t a, uint64_t b)
{
    uint64_t h = a * 0x9e3779b97f4a7c15u ^ (b + 0x632be59bd9b4e019u + (a << 6));

    return h ^ (h >> 29);
}

/* Returns 1 if added, 0 if it was there, -ENOMEM. */
static int idset_add(struct idset *s, uint64_t dev, uint64_t ino)
{
    size_t i;

    if (2 * (s->n + 1) > s->cap) {
        struct idset bigger = { NULL, s->cap ? s->cap * 2 : 256, 0 };

        bigger.v = calloc(bigger.cap, 2 * sizeof(uint64_t));
        if (!bigger.v)
            return -ENOMEM;
        for (size_t j = 0; j < s->cap; j++)
            if (s->v[2 * j] || s->v[2 * j + 1])
                (void)idset_add(&bigger, s->v[2 * j], s->v[2 * j + 1]);
        free(s->v);
        *s = bigger;
    }
    if (dev == 0 && ino == 0)
        ino = UINT64_MAX; /* keep (0, 0) free as the empty mark */
    for (i = mix(dev, ino) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->v[2 * i] == dev && s->v[2 * i + 1] == ino)
            return 0;
        if (!s->v[2 * i] && !s->v[2 * i + 1])
            break;
    }
    s->v[2 * i] = dev;
    s->v[2 * i + 1] = ino;
    s->n++;
    return 1;
}

/*
 * A keystore root as the walk and the reads resolve paths under it. Without follow_symlinks
 * every entry below the root is opened beneath fd (openat2 RESOLVE_BENEATH): a link may lead
 * anywhere inside the keystore, and a directory or file swapped for a link to the outside
 * between two steps fails to open instead of being read. fd is -1 when the root is not a
 * directory (a keystore of one file) or could not be opened.
 */
struct root {
    int fd;     /* O_PATH, O_DIRECTORY */
    char *real; /* realpath of the root: where absolute links must lead; NULL if none */
    int error;  /* why real is NULL */
    size_t len; /* strlen of the configured path: the part of an entry's path before its own */
    uint64_t expected_dev; /* st_dev of the root at its last complete read; 0: unknown */
    uint64_t dev;          /* st_dev of the root now */
    bool is_unavailable;   /* missing, unreadable, or an empty directory on another device */
    bool is_incomplete;    /* a directory below it could not be listed: nothing is swept */
    char why[256];         /* is_unavailable: the reason, for the error record */
};

struct walk {
    const struct kigen_keystore *ks;
    size_t ks_index;
    struct root *root;
    struct idset dirs;
    struct idset files;
    struct items *out;
    struct items *walked; /* every directory opened, for the watches */
    atomic_bool *cancel;
};

static bool name_matches(const struct kigen_keystore *ks, const char *name)
{
    bool included = false;

    for (size_t i = 0; i < ks->include.n && !included; i++)
        included = fnmatch(ks->include.v[i], name, 0) == 0;
    if (!included)
        return false;
    for (size_t i = 0; i < ks->exclude.n; i++)
        if (fnmatch(ks->exclude.v[i], name, 0) == 0)
            return false;
    return true;
}

/* Whether path is root or lies under it. */
static bool is_under(const char *root, const char *path)
{
    size_t n = strlen(root);

    if (strcmp(root, "/") == 0)
        return true;
    return strncmp(root, path, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static void set_unavailable(struct root *root, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_unavailable(struct root *root, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(root->why, sizeof(root->why), fmt, ap);
    va_end(ap);
    root->is_unavailable = true;
}

/* Whether the directory fd (taken over) holds no entry but . and ..; false when unsure. */
static bool is_empty_dir(int fd)
{
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    bool is_empty = d != NULL;

    if (!d) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    while (is_empty && (de = readdir(d)))
        is_empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
    closedir(d);
    return is_empty;
}

/*
 * Opens the keystore root and decides whether it can be read as the keystore (SPEC §4
 * keystore_unavailable): it must exist, open, and, once it was read completely on one file
 * system, not be an empty directory on another one (an unmounted share leaves its empty
 * mount point). A directory on another device that holds entries is taken as the keystore's
 * new place (a share mounted from elsewhere, a copy put there on purpose).
 */
static void root_open(const struct kigen_keystore *ks, struct root *root)
{
    struct stat st;
    int fd;

    root->len = strlen(ks->path);
    root->real = realpath(ks->path, NULL);
    root->error = root->real ? 0 : errno;
    root->fd = open(ks->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (stat(ks->path, &st) < 0) {
        set_unavailable(root, "keystore root '%s': %s", ks->path, strerror(errno));
        return;
    }
    if (!root->real) {
        set_unavailable(root, "keystore root '%s': %s", ks->path, strerror(root->error));
        return;
    }
    root->dev = (uint64_t)st.st_dev;
    if (!S_ISDIR(st.st_mode))
        return; /* a keystore of one file: reading it tells what is wrong with it */
    fd = open(ks->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        set_unavailable(root, "keystore root '%s': cannot open: %s", ks->path, strerror(errno));
        return;
    }
    if (root->expected_dev && root->dev != root->expected_dev && is_empty_dir(fd))
        set_unavailable(root,
                        "keystore root '%s' is an empty directory on another file system "
                        "(device %llu:%llu, read before on %llu:%llu): an unmounted share?",
                        ks->path, (unsigned long long)major(st.st_dev),
                        (unsigned long long)minor(st.st_dev),
                        (unsigned long long)major((dev_t)root->expected_dev),
                        (unsigned long long)minor((dev_t)root->expected_dev));
    else if (fd >= 0)
        close(fd);
}

/*
 * For a root that is missing: the nearest directory above it that exists, to be watched for
 * the root's return (a share mounted again, a folder moved back). NULL when none.
 */
static char *nearest_existing_parent(const char *path)
{
    char *p = strdup(path), *slash;
    struct stat st;

    while (p && (slash = strrchr(p, '/'))) {
        if (slash == p)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            return p;
        if (slash == p)
            break;
    }
    free(p);
    return NULL;
}

static void root_close(struct root *root)
{
    if (root->fd >= 0)
        close(root->fd);
    free(root->real);
    root->fd = -1;
    root->real = NULL;
}

static int openat_beneath(int dirfd, const char *rel, int flags)
{
    struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC),
                            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };

    return (int)syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof(how));
}

/*
 * Opens path, which lies under the root, following links only as long as they stay inside
 * it; -1 with errno EXDEV when they lead out. Absolute links (and ".." past the root) are not
 * resolved by the kernel beneath a directory: where they really lead is looked up, and that
 * place, if inside, opened beneath the root, so that a link changed meanwhile still cannot
 * lead out. Kernels before 5.6 (no openat2) get the look-up and a plain open.
 */
static int open_beneath(const struct root *root, const char *path, int flags)
{
    const char *rel = strlen(path) > root->len ? path + root->len : "";
    char *real;
    int fd;

    if (root->fd < 0)
        return open(path, flags | O_CLOEXEC);
    while (*rel == '/')
        rel++;
    fd = openat_beneath(root->fd, rel, flags);
    if (fd >= 0 || (errno != EXDEV && errno != ENOSYS))
        return fd;
    real = realpath(path, NULL);
    if (!real)
        return -1;
    if (!is_under(root->real, real)) {
        free(real);
        errno = EXDEV;
        return -1;
    }
    if (errno == ENOSYS) {
        fd = open(real, flags | O_CLOEXEC);
    } else {
        rel = real + strlen(root->real);
        while (*rel == '/')
            rel++;
        fd = openat_beneath(root->fd, rel, flags);
    }
    free(real);
    return fd;
}

/* A directory entry; links are walked after everything else in their directory. */
struct dent {
    char *name;
    bool is_link;
};

static int cmp_dents(const void *a, const void *b)
{
    return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

static bool has_name(const struct dent *dents, size_t n, const char *name)
{
    struct dent key = { (char *)name, false };

    return n && bsearch(&key, dents, n, sizeof(*dents), cmp_dents) != NULL;
}

static int walk_dir(struct walk *w, int fd, const char *dir, int depth);

/*
 * Opens (O_PATH) what an entry of dirfd names and stats it: the target of a link, followed as
 * the keystore allows, or a directory that must still be the one st describes. -1 when it is
 * not to be walked (dangling, outside, swapped meanwhile).
 */
static int open_entry(const struct walk *w, int dirfd, const char *path, const char *name,
                      struct stat *st)
{
    struct stat seen = *st;
    int fd;

    if (!S_ISLNK(seen.st_mode))
        fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    else if (w->ks->follow_symlinks)
        fd = openat(dirfd, name, O_PATH | O_CLOEXEC);
    else
        fd = open_beneath(w->root, path, O_PATH);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 ||
        (!S_ISLNK(seen.st_mode) && (st->st_dev != seen.st_dev || st->st_ino != seen.st_ino))) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * One entry of the directory dirfd, or (dirfd -1, name NULL) the keystore root itself, which
 * is taken as configured, links and all.
 */
static int walk_entry(struct walk *w, int dirfd, const char *path, const char *name,
                      const struct dent *siblings, size_t n_siblings, int depth)
{
    const struct kigen_keystore *ks = w->ks;
    struct stat st;
    struct item *it;
    int r, fd = -1;

    r = name ? fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) : stat(path, &st);
    if (r < 0)
        return errno == ENOENT ? 0
                               : add_error(w->out, w->ks_index, path, KIGEN_E_UNREADABLE,
                                           "cannot stat: %s", strerror(errno));
    if (name && (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode))) {
        fd = open_entry(w, dirfd, path, name, &st);
        if (fd < 0)
            return 0; /* dangling, leads out of the keystore, or swapped since the readdir */
    }
    if (S_ISDIR(st.st_mode)) {
        if (name && !ks->recursive)
            r = 0;
        else if (depth >= MAX_DEPTH)
            r = add_error(w->out, w->ks_index, path, KIGEN_E_UNREADABLE,
                          "directories nested deeper than %d levels, skipping", MAX_DEPTH);
        else if ((r = idset_add(&w->dirs, st.st_dev, st.st_ino)) > 0) /* else a loop */
            return walk_dir(w, fd, path, depth + 1);
        if (fd >= 0)
            close(fd);
        return r;
    }
    if (fd >= 0)
        close(fd);
    if (!S_ISREG(st.st_mode))
        return 0; /* FIFOs, sockets, devices are never opened */
    if (name) {
        size_t len = strlen(name);

        if (!name_matches(ks, name))
            return 0;
        /* FILE.pass beside FILE is a password, not a keystore. */
        if (ks->password_sidecar && len > 5 && strcmp(name + len - 5, ".pass") == 0) {
            char base[NAME_MAX + 1];

            memcpy(base, name, len - 5);
            base[len - 5] = '\0';
            if (has_name(siblings, n_siblings, base))
                return 0;
        }
    }
    r = idset_add(&w->files, st.st_dev, st.st_ino);
    if (r <= 0)
        return r;
    if ((uint64_t)st.st_size > ks->max_file_size)
        return add_error(w->out, w->ks_index, path, KIGEN_E_TOO_LARGE,
                         "%lld bytes, more than max_file_size %llu", (long long)st.st_size,
                         (unsigned long long)ks->max_file_size);
    if (items_add(w->out, &it) < 0)
        return -ENOMEM;
    it->keystore = w->ks_index;
    it->path = strdup(path);
    id_from_stat(&st, &it->id);
    return it->path ? 0 : -ENOMEM;
}

/* Walks the directory at dir; fd (O_PATH, taken over) is it, or -1 to open dir by its path. */
static int walk_dir(struct walk *w, int fd, const char *dir, int depth)
{
    DIR *d = NULL;
    struct dirent *de;
    struct dent *dents = NULL;
    char *path = NULL;
    size_t n = 0, cap = 0;
    int r = 0, dfd;

    if (atomic_load(w->cancel)) {
        if (fd >= 0)
            close(fd);
        return -ECANCELED;
    }
    dfd = fd >= 0 ? openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                  : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0 && !(d = fdopendir(dfd)))
        close(dfd);
    if (!d) {
        /* What is below it is unknown now, not gone: nothing of this keystore is swept. */
        w->root->is_incomplete = true;
        return add_error(w->out, w->ks_index, dir, KIGEN_E_UNREADABLE, "cannot open directory: %s",
                         strerror(errno));
    }
    r = add_error(w->walked, w->ks_index, dir, 0, "directory");
    if (r < 0)
        goto out;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (!de) {
            if (errno) {
                w->root->is_incomplete = true;
                r = add_error(w->out, w->ks_index, dir, KIGEN_E_UNREADABLE,
                              "cannot list directory: %s", strerror(errno));
                goto out;
            }
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            struct dent *v;

            cap = cap ? cap * 2 : 64;
            v = realloc(dents, cap * sizeof(*v));
            if (!v) {
                r = -ENOMEM;
                goto out;
            }
            dents = v;
        }
        dents[n].name = strdup(de->d_name);
        dents[n].is_link = de->d_type == DT_LNK;
        if (!dents[n].name) {
            r = -ENOMEM;
            goto out;
        }
        n++;
    }
    /*
     * Sorted, and links after real entries: the same file reached twice is reported under its
     * own name, and the same way every scan.
     */
    if (n)
        qsort(dents, n, sizeof(*dents), cmp_dents);
    for (int links = 0; links <= 1; links++) {
        for (size_t i = 0; i < n && r >= 0; i++) {
            if (dents[i].is_link != links)
                continue;
            if (asprintf(&path, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
                         dents[i].name) < 0) {
                path = NULL;
                r = -ENOMEM;
                goto out;
            }
            r = walk_entry(w, dirfd(d), path, dents[i].name, dents, n, depth);
            free(path);
            path = NULL;
        }
    }
out:
    for (size_t i = 0; i < n; i++)
        free(dents[i].name);
    free(dents);
    if (d)
        closedir(d);
    return r;
}

static void walk_init(struct walk *w, struct scan *s, size_t ks_index)
{
    *w = (struct walk){ 0 };
    w->ks = &s->config->keystores[ks_index];
    w->ks_index = ks_index;
    w->root = &s->root[ks_index];
    w->out = &s->found;
    w->walked = &s->dirs;
    w->cancel = &s->scanner->cancel;
}

static void walk_done(struct walk *w)
{
    free(w->dirs.v);
    free(w->files.v);
}

static int walk_keystore(struct scan *s, size_t ks_index)
{
    struct walk w;
    int r;

    walk_init(&w, s, ks_index);
    if (w.root->is_unavailable) {
        char *parent = nearest_existing_parent(w.ks->path);

        /* The watches look there for the root's return; the walk's list carries it. */
        r = parent ? add_error(w.walked, ks_index, parent, 0, "parent") : 0;
        free(parent);
        return r;
    }
    r = walk_entry(&w, -1, w.ks->path, NULL, NULL, 0, 0);
    walk_done(&w);
    return r;
}

static void resolve_secrets(struct scan *s)
{
    const struct kigen_config *c = s->config;
    size_t k = 0;

    for (size_t i = 0; i < c->n_keystores; i++) {
        const struct kigen_keystore *ks = &c->keystores[i];

        for (size_t j = 0; j < ks->n_passwords; j++, k++) {
            char *secret = NULL;
            int r;

            if (ks->passwords[j].kind == KIGEN_PASSWORD_ENV || !s->secret_paths[k])
                continue;
            r = kigen_secret_read_line(s->secret_paths[k], &secret);
            if (r < 0) {
                (void)add_error(&s->warnings, i, s->secret_paths[k], -r,
                                "cannot read password source: %s", strerror(-r));
                continue;
            }
            s->secrets[i].v[j] = secret;
        }
    }
}

/*
 * A partial scan: each changed path, in every keystore that holds it, as the walk sees it:
 * an entry of its parent directory, opened beneath the keystore root.
 */
static int walk_roots(struct scan *s)
{
    int r = 0;

    for (size_t k = 0; k < s->config->n_keystores && r == 0; k++) {
        const struct kigen_keystore *ks = &s->config->keystores[k];
        struct walk w;

        walk_init(&w, s, k);
        for (size_t i = 0; i < s->n_roots && r == 0; i++) {
            const char *path = s->roots[i], *name = strrchr(path, '/');
            char *parent;
            int fd;

            if (!is_under(ks->path, path) || strcmp(ks->path, path) == 0 || !name)
                continue;
            if (w.root->is_unavailable ||
                (w.root->expected_dev && w.root->dev != w.root->expected_dev)) {
                r = -ESTALE; /* the root itself changed: only a full scan can tell */
                break;
            }
            parent = strndup(path, (size_t)(name - path));
            if (!parent) {
                r = -ENOMEM;
                break;
            }
            fd = ks->follow_symlinks
                     ? open(*parent ? parent : "/", O_PATH | O_DIRECTORY | O_CLOEXEC)
                     : open_beneath(w.root, parent, O_PATH | O_DIRECTORY);
            free(parent);
            if (fd < 0)
                continue; /* gone, or no longer inside: the sweep drops what it held */
            r = walk_entry(&w, fd, path, name + 1, NULL, 0, 1);
            close(fd);
        }
        walk_done(&w);
    }
    return r;
}

/*
 * Scanning is background work: the thread-pool threads that walk and read run at a lower
 * priority than the loop thread, so that on a busy machine (two cores, four readers) the
 * status socket and the alerts still come first. Linux gives each thread its own nice value.
 */
static void lower_thread_priority(const struct kigen_scanner *scanner)
{
    static _Thread_local bool is_lowered;

    if (is_lowered || !scanner->is_background)
        return;
    is_lowered = true;
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, (id_t)gettid());
    if (errno == 0 && nice < KIGEN_SCAN_NICE)
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), KIGEN_SCAN_NICE);
}

static void walk_work_cb(uv_work_t *req)
{
    struct scan *s = req->data;

    lower_thread_priority(s->scanner);
    resolve_secrets(s);
    for (size_t i = 0; i < s->config->n_keystores; i++)
        root_open(&s->config->keystores[i], &s->root[i]);
    if (s->roots) {
        s->status = walk_roots(s);
        return;
    }
    for (size_t i = 0; i < s->config->n_keystores && s->status == 0; i++)
        s->status = walk_keystore(s, i);
}

/* ---- reading ---- */

static struct kigen_read_ctx *claim_ctx(struct kigen_scanner *scanner, int *ret_slot)
{
    struct kigen_read_ctx *ctx = NULL;

    for (int i = 0; i < CTX_SLOTS; i++) {
        if (atomic_exchange(&scanner->slots[i].busy, true))
            continue;
        if (!scanner->slots[i].ctx && kigen_read_ctx_new(&scanner->slots[i].ctx) < 0) {
            atomic_store(&scanner->slots[i].busy, false);
            return NULL;
        }
        *ret_slot = i;
        return scanner->slots[i].ctx;
    }
    /* More threads than slots: a context for this job alone. */
    *ret_slot = -1;
    return kigen_read_ctx_new(&ctx) < 0 ? NULL : ctx;
}

static void release_ctx(struct kigen_scanner *scanner, struct kigen_read_ctx *ctx, int slot)
{
    if (slot < 0)
        kigen_read_ctx_free(ctx);
    else
        atomic_store(&scanner->slots[slot].busy, false);
}

static int set_error(struct kigen_file *f, int err, const char *msg)
{
    f->error = err;
    f->message = strdup(msg);
    return f->message ? 0 : -ENOMEM;
}

/* Reads one file into a record; *ret_file is NULL when it vanished or holds nothing. */
static int read_one(struct scan *s, const struct kigen_read_ctx *ctx, const struct item *it,
                    struct kigen_file **ret_file)
{
    const struct kigen_keystore *ks = &s->config->keystores[it->keystore];
    const struct secrets *sec = &s->secrets[it->keystore];
    const char *tries[1 + 32];
    struct kigen_passwords pw = { tries, 0 };
    struct kigen_file *f = NULL;
    char *sidecar = NULL, *sidecar_path = NULL, errbuf[256] = "";
    uint8_t *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd = -1, r;

    *ret_file = NULL;
    f = kigen_file_new(ks->name, it->path);
    if (!f)
        return -ENOMEM;
    /*
     * Without follow_symlinks, what is opened must be what the walk saw (its device and
     * inode, of the file or of the target of a link that stays inside the keystore): a file
     * or a directory on its path swapped since for a link to elsewhere is not read; the
     * next scan sees the link and skips it.
     */
    fd = ks->follow_symlinks
             ? open(it->path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
             : open_beneath(&s->root[it->keystore], it->path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == EXDEV || errno == ELOOP) {
            r = 0; /* gone since the walk, or now a link out of the keystore: not read */
            goto out;
        }
        r = set_error(f, KIGEN_E_UNREADABLE, strerror(errno));
        goto done;
    }
    if (fstat(fd, &st) == 0) {
        if (!S_ISREG(st.st_mode) || (!ks->follow_symlinks && ((uint64_t)st.st_dev != it->id.dev ||
                                                              (uint64_t)st.st_ino != it->id.ino))) {
            r = 0; /* replaced by something that is not the file the walk found: never read */
            goto out;
        }
        id_from_stat(&st, &f->id);
    }
    r = kigen_read_whole(fd, ks->max_file_size, &buf, &len);
    if (r == -EFBIG) {
        snprintf(errbuf, sizeof(errbuf), "more than max_file_size %llu bytes",
                 (unsigned long long)ks->max_file_size);
        r = set_error(f, KIGEN_E_TOO_LARGE, errbuf);
        goto done;
    }
    if (r < 0) {
        if (r == -ENOMEM)
            goto out;
        r = set_error(f, KIGEN_E_UNREADABLE, strerror(-r));
        goto done;
    }
    if (ks->password_sidecar) {
        if (asprintf(&sidecar_path, "%s.pass", it->path) < 0) {
            sidecar_path = NULL;
            r = -ENOMEM;
            goto out;
        }
        /* Opened as the file is: a link may lead to it only from inside the keystore. */
        if (kigen_secret_read_line_fd(
                ks->follow_symlinks
                    ? open(sidecar_path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
                    : open_beneath(&s->root[it->keystore], sidecar_path,
                                   O_RDONLY | O_NOCTTY | O_NONBLOCK),
                &sidecar) == 0)
            tries[pw.n++] = sidecar;
    }
    for (size_t i = 0; i < sec->n && pw.n < sizeof(tries) / sizeof(tries[0]); i++)
        if (sec->v[i])
            tries[pw.n++] = sec->v[i];
    r = kigen_read_any(ctx, buf, len, &pw, &f->certs, &f->format, errbuf, sizeof(errbuf));
    if (r == -ENOMEM)
        goto out;
    if (r < 0) {
        r = set_error(f, -r, errbuf);
        if (r < 0)
            goto out;
    } else if (f->certs.n == 0 && !f->certs.crls) {
        r = 0; /* holds no certificate: no record */
        goto out;
    }
done:
    if (r < 0)
        goto out;
    kigen_certs_shrink(&f->certs);
    *ret_file = f;
    f = NULL;
    r = 0;
out:
    if (buf) {
        OPENSSL_cleanse(buf, len);
        free(buf);
    }
    secret_free(sidecar);
    free(sidecar_path);
    if (fd >= 0)
        close(fd);
    kigen_file_free(f);
    return r;
}

static void read_work_cb(uv_work_t *req)
{
    struct read_job *job = req->data;
    struct kigen_scanner *scanner = job->scan->scanner;
    struct kigen_read_ctx *ctx;
    int slot;

    lower_thread_priority(scanner);
    ctx = claim_ctx(scanner, &slot);
    if (!ctx) {
        job->status = -ENOMEM;
        return;
    }
    for (size_t i = 0; i < job->n && job->status == 0; i++)
        job->status = atomic_load(&scanner->cancel)
                          ? -ECANCELED
                          : read_one(job->scan, ctx, &job->items[i], &job->out[i]);
    release_ctx(scanner, ctx, slot);
}

/* ---- the loop thread ---- */

static void scan_free(struct scan *s)
{
    size_t k = 0;

    if (!s)
        return;
    for (size_t i = 0; i < s->config->n_keystores; i++) {
        for (size_t j = 0; s->secrets && j < s->secrets[i].n; j++)
            secret_free(s->secrets[i].v[j]);
        if (s->secrets)
            free(s->secrets[i].v);
        for (size_t j = 0; j < s->config->keystores[i].n_passwords; j++, k++)
            if (s->secret_paths)
                free(s->secret_paths[k]);
    }
    for (size_t i = 0; s->root && i < s->config->n_keystores; i++)
        root_close(&s->root[i]);
    free(s->root);
    free(s->secrets);
    free(s->secret_paths);
    items_done(&s->found);
    items_done(&s->warnings);
    items_done(&s->dirs);
    for (size_t i = 0; i < s->n_roots; i++)
        free(s->roots[i]);
    free(s->roots);
    free(s);
}

/* After a partial scan: the directories it found are added to the watched ones. */
static void add_dirs(struct kigen_scanner *scanner, struct scan *s)
{
    char **v;
    size_t n = scanner->n_dirs;

    if (!s->dirs.n)
        return;
    v = realloc(scanner->dirs, (n + s->dirs.n) * sizeof(*v));
    if (!v)
        return;
    scanner->dirs = v;
    for (size_t i = 0; i < s->dirs.n; i++) {
        bool known = false;

        for (size_t j = 0; j < scanner->n_dirs && !known; j++)
            known = strcmp(scanner->dirs[j], s->dirs.v[i].path) == 0;
        if (!known) {
            scanner->dirs[n++] = s->dirs.v[i].path;
            s->dirs.v[i].path = NULL;
        }
    }
    scanner->n_dirs = n;
}

/* After a partial scan: what was under a changed path and is not there now is gone. */
static void sweep_roots(struct kigen_inventory *inv, const struct scan *s)
{
    for (size_t i = inv->n_files; i-- > 0;) {
        struct kigen_file *f = inv->files[i];
        bool is_incomplete = false;

        if (f->seen >= s->generation || strcmp(f->keystore, KIGEN_REGISTER_KEYSTORE) == 0)
            continue;
        for (size_t k = 0; k < s->config->n_keystores && !is_incomplete; k++)
            is_incomplete =
                s->root[k].is_incomplete && strcmp(s->config->keystores[k].name, f->keystore) == 0;
        if (is_incomplete)
            continue; /* a directory could not be listed: unknown, not gone */
        for (size_t j = 0; j < s->n_roots; j++) {
            if (is_under(s->roots[j], f->path)) {
                kigen_inventory_remove(inv, f);
                break;
            }
        }
    }
}

/* Keeps the walked directories for the watches: the paths move from the scan. */
static void keep_dirs(struct kigen_scanner *scanner, struct scan *s)
{
    char **v = malloc((s->dirs.n ? s->dirs.n : 1) * sizeof(*v));

    if (!v)
        return; /* the watches keep the previous list */
    for (size_t i = 0; i < scanner->n_dirs; i++)
        free(scanner->dirs[i]);
    free(scanner->dirs);
    for (size_t i = 0; i < s->dirs.n; i++) {
        v[i] = s->dirs.v[i].path;
        s->dirs.v[i].path = NULL;
    }
    scanner->dirs = v;
    scanner->n_dirs = s->dirs.n;
}

static void finish(struct scan *s)
{
    struct kigen_scanner *scanner = s->scanner;
    kigen_scan_done_cb cb = s->done_cb;
    void *data = s->data;
    int status = s->status;

    if (status == 0 && atomic_load(&scanner->cancel))
        status = -ECANCELED;
    atomic_store(&scanner->cancel, false);
    if (status == 0 && s->roots) {
        add_dirs(scanner, s);
        sweep_roots(scanner->inventory, s);
    } else if (status == 0) {
        keep_dirs(scanner, s);
        scanner->n_unavailable = 0;
        for (size_t i = 0; i < s->config->n_keystores; i++) {
            const struct kigen_keystore *ks = &s->config->keystores[i];

            /* Only a root read completely tells what is gone (SPEC §4). */
            if (s->root[i].is_unavailable) {
                scanner->n_unavailable++;
                continue;
            }
            if (s->root[i].is_incomplete)
                continue;
            kigen_inventory_sweep(scanner->inventory, ks->name, s->generation);
            if (scanner->hooks && scanner->hooks->root_read && s->root[i].dev &&
                s->root[i].dev != s->root[i].expected_dev)
                scanner->hooks->root_read(ks->name, ks->path, s->root[i].dev, scanner->hooks_data);
        }
        /*
         * Keystores no longer configured are gone too; probe targets' and the register's
         * are the daemon's.
         */
        for (size_t i = scanner->inventory->n_files; i-- > 0;) {
            struct kigen_file *f = scanner->inventory->files[i];
            bool known = kigen_probe_is_keystore(f->keystore) ||
                         strcmp(f->keystore, KIGEN_REGISTER_KEYSTORE) == 0;

            for (size_t j = 0; j < s->config->n_keystores && !known; j++)
                known = strcmp(s->config->keystores[j].name, f->keystore) == 0;
            if (!known)
                kigen_inventory_remove(scanner->inventory, f);
        }
    }
    scanner->inventory->scans++;
    scanner->scan = NULL;
    scan_free(s);
    cb(scanner, status, data);
}

static int merge(struct scan *s, struct kigen_file *f)
{
    struct kigen_inventory *inv = s->scanner->inventory;
    int r;

    f->seen = s->generation;
    f->last_seen = s->started;
    r = kigen_inventory_put(inv, f);
    if (r < 0)
        kigen_file_free(f);
    return r;
}

static void read_after_cb(uv_work_t *req, int status)
{
    struct read_job *job = req->data;
    struct scan *s = job->scan;

    if (status < 0 && s->status == 0)
        s->status = status;
    if (job->status < 0 && s->status == 0)
        s->status = job->status;
    for (size_t i = 0; i < job->n; i++) {
        /* The record has its own copy of the path: give the walk's back now, not at the end. */
        free(job->items[i].path);
        job->items[i].path = NULL;
        if (!job->out[i])
            continue;
        s->scanner->inventory->files_read++;
        if (merge(s, job->out[i]) < 0 && s->status == 0)
            s->status = -ENOMEM;
    }
    free(job->out);
    free(job);
    if (--s->pending == 0)
        finish(s);
}

static bool id_equal(const struct kigen_file_id *a, const struct kigen_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* Files whose password may have changed outside them are read again every scan. */
static bool is_password_error(int err)
{
    return err == KIGEN_E_WRONG_PASSWORD || err == KIGEN_E_NEEDS_PASSWORD;
}

static int queue_job(struct scan *s, struct item *items, size_t n)
{
    struct read_job *job = calloc(1, sizeof(*job));
    int r;

    if (!job)
        return -ENOMEM;
    job->out = calloc(n, sizeof(*job->out));
    if (!job->out) {
        free(job);
        return -ENOMEM;
    }
    job->scan = s;
    job->items = items;
    job->n = n;
    job->req.data = job;
    r = uv_queue_work(s->scanner->loop, &job->req, read_work_cb, read_after_cb);
    if (r < 0) {
        free(job->out);
        free(job);
        return r;
    }
    s->pending++;
    return 0;
}

/*
 * A keystore whose root is unavailable keeps its records as last seen (stale) and gets one
 * keystore_unavailable error at its root: on the root's own record when the keystore is one
 * file (its certificates stay), else on a record of its own.
 */
static int keep_unavailable(struct scan *s, size_t ks_index)
{
    const struct kigen_keystore *ks = &s->config->keystores[ks_index];
    struct kigen_inventory *inv = s->scanner->inventory;
    struct kigen_file *f;
    int r;

    for (size_t i = 0; i < inv->n_files; i++) {
        f = inv->files[i];
        if (strcmp(f->keystore, ks->name) == 0) {
            f->seen = s->generation;
            f->is_stale = true;
        }
    }
    inv->changes++;
    f = kigen_inventory_find(inv, ks->name, ks->path);
    if (f)
        return kigen_inventory_set_error(inv, f, KIGEN_E_KEYSTORE_UNAVAILABLE,
                                         s->root[ks_index].why);
    f = kigen_file_new(ks->name, ks->path);
    if (!f || set_error(f, KIGEN_E_KEYSTORE_UNAVAILABLE, s->root[ks_index].why) < 0) {
        kigen_file_free(f);
        return -ENOMEM;
    }
    f->is_stale = true;
    r = merge(s, f);
    f->last_seen = 0; /* never held a certificate */
    return r;
}

static void merge_walk(struct scan *s);

static void nothing_cb(uv_work_t *req)
{
}

static void merge_walk_cb(uv_work_t *req, int status)
{
    struct scan *s = req->data;

    if (status < 0 && s->status == 0)
        s->status = status;
    merge_walk(s);
}

/*
 * Compares the walk's items with the inventory, KIGEN_SLICE_NS at a time: 100,000 unchanged
 * files take about 60 ms, and the status socket is answered between the slices (the next one
 * comes back through the thread pool, as a job that does nothing, so that the loop polls in
 * between). The items read alike become records now; the rest go to the readers.
 */
static void merge_walk(struct scan *s)
{
    struct kigen_inventory *inv = s->scanner->inventory;
    uint64_t until = kigen_monotonic_ns() + s->scanner->merge_slice_ns;
    size_t i, start, n_read = s->walk_n_read;
    const struct kigen_keystore *ks;
    int r = s->status;

    if (r == 0 && atomic_load(&s->scanner->cancel))
        r = -ECANCELED;
    for (i = s->walk_next; i < s->found.n && r == 0; i++) {
        struct item *it = &s->found.v[i];
        struct kigen_file *f;

        if ((i - s->walk_next) % 256 == 255 && kigen_monotonic_ns() >= until) {
            s->walk_next = i;
            s->walk_n_read = n_read;
            r = uv_queue_work(s->scanner->loop, &s->walk_req, nothing_cb, merge_walk_cb);
            if (r == 0)
                return;
            break;
        }
        ks = &s->config->keystores[it->keystore];
        f = kigen_inventory_find(inv, ks->name, it->path);
        if (it->error) {
            f = kigen_file_new(ks->name, it->path);
            if (!f || set_error(f, it->error, it->message) < 0) {
                kigen_file_free(f);
                r = -ENOMEM;
                break;
            }
            r = merge(s, f);
            continue;
        }
        if (f && id_equal(&f->id, &it->id) && !is_password_error(f->error)) {
            f->seen = s->generation;
            f->last_seen = s->started; /* shown only while stale: no change to count */
            if (f->is_stale) {
                f->is_stale = false;
                inv->changes++;
            }
            /* A keystore of one file that is back as it was: its certificates hold again. */
            if (f->error == KIGEN_E_KEYSTORE_UNAVAILABLE &&
                kigen_inventory_set_error(inv, f, 0, NULL) < 0)
                r = -ENOMEM;
            inv->files_unchanged++;
            continue;
        }
        if (n_read != i) {
            struct item tmp = s->found.v[n_read];

            s->found.v[n_read] = *it;
            *it = tmp;
        }
        n_read++;
    }
    if (r < 0) {
        s->status = r;
        finish(s);
        return;
    }
    /* One extra pending count keeps finish() from running while jobs are still queued. */
    s->pending = 1;
    for (start = 0; start < n_read && r == 0; start += BATCH_FILES)
        r = queue_job(s, &s->found.v[start],
                      n_read - start < BATCH_FILES ? n_read - start : BATCH_FILES);
    if (r < 0)
        s->status = r;
    if (--s->pending == 0)
        finish(s);
}

static void walk_after_cb(uv_work_t *req, int status)
{
    struct scan *s = req->data;
    int r = 0;

    for (size_t i = 0; i < s->warnings.n; i++)
        kigen_log_warn("Keystore '%s': '%s': %s, ignoring",
                       s->config->keystores[s->warnings.v[i].keystore].name, s->warnings.v[i].path,
                       s->warnings.v[i].message);
    if (status < 0 || s->status < 0) {
        s->status = status < 0 ? status : s->status;
        finish(s);
        return;
    }
    for (size_t i = 0; !s->roots && i < s->config->n_keystores && r == 0; i++)
        if (s->root[i].is_unavailable)
            r = keep_unavailable(s, i);
    s->status = r;
    s->walk_next = 0;
    s->walk_n_read = 0;
    merge_walk(s);
}

int kigen_scanner_new(uv_loop_t *loop, struct kigen_inventory *inventory,
                      struct kigen_scanner **ret_scanner)
{
    struct kigen_scanner *scanner = calloc(1, sizeof(*scanner));

    if (!scanner)
        return -ENOMEM;
    scanner->loop = loop;
    scanner->inventory = inventory;
    scanner->merge_slice_ns = KIGEN_SLICE_NS;
    for (int i = 0; i < CTX_SLOTS; i++)
        atomic_init(&scanner->slots[i].busy, false);
    atomic_init(&scanner->cancel, false);
    *ret_scanner = scanner;
    return 0;
}

void kigen_scanner_free(struct kigen_scanner *scanner)
{
    if (!scanner)
        return;
    for (int i = 0; i < CTX_SLOTS; i++)
        kigen_read_ctx_free(scanner->slots[i].ctx);
    for (size_t i = 0; i < scanner->n_dirs; i++)
        free(scanner->dirs[i]);
    free(scanner->dirs);
    free(scanner);
}

bool kigen_scanner_is_busy(const struct kigen_scanner *scanner)
{
    return scanner->scan != NULL;
}

void kigen_scanner_set_merge_slice(struct kigen_scanner *scanner, uint64_t ns)
{
    if (ns)
        scanner->merge_slice_ns = ns;
}

void kigen_scanner_set_background(struct kigen_scanner *scanner)
{
    scanner->is_background = true;
}

void kigen_scanner_set_getenv(struct kigen_scanner *scanner,
                              const char *(*getenv_fn)(const char *name, void *data), void *data)
{
    scanner->getenv_fn = getenv_fn;
    scanner->getenv_data = data;
}

void kigen_scanner_cancel(struct kigen_scanner *scanner)
{
    if (scanner->scan)
        atomic_store(&scanner->cancel, true);
}

void kigen_scanner_set_hooks(struct kigen_scanner *scanner, const struct kigen_scan_hooks *hooks,
                             void *data)
{
    scanner->hooks = hooks;
    scanner->hooks_data = data;
}

size_t kigen_scanner_unavailable(const struct kigen_scanner *scanner)
{
    return scanner->n_unavailable;
}

size_t kigen_scanner_dirs(const struct kigen_scanner *scanner, const char *const **ret_dirs)
{
    *ret_dirs = (const char *const *)scanner->dirs;
    return scanner->n_dirs;
}

static int start(struct kigen_scanner *scanner, const struct kigen_config *config,
                 const char *const *roots, size_t n_roots, kigen_scan_done_cb done_cb, void *data)
{
    struct scan *s = NULL;
    const char *credentials = getenv("CREDENTIALS_DIRECTORY");
    size_t n_sources = 0, k = 0;
    int r = -ENOMEM;

    if (scanner->scan)
        return -EBUSY;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (roots) {
        s->roots = calloc(n_roots ? n_roots : 1, sizeof(*s->roots));
        if (!s->roots)
            goto out;
        for (; s->n_roots < n_roots; s->n_roots++) {
            s->roots[s->n_roots] = strdup(roots[s->n_roots]);
            if (!s->roots[s->n_roots])
                goto out;
        }
    }
    s->scanner = scanner;
    s->config = config;
    s->done_cb = done_cb;
    s->data = data;
    s->generation = ++scanner->inventory->generation;
    s->secrets = calloc(config->n_keystores ? config->n_keystores : 1, sizeof(*s->secrets));
    for (size_t i = 0; i < config->n_keystores; i++)
        n_sources += config->keystores[i].n_passwords;
    s->secret_paths = calloc(n_sources ? n_sources : 1, sizeof(*s->secret_paths));
    s->root = calloc(config->n_keystores ? config->n_keystores : 1, sizeof(*s->root));
    if (!s->secrets || !s->secret_paths || !s->root)
        goto out;
    s->started = scanner->hooks && scanner->hooks->now ? scanner->hooks->now(scanner->hooks_data)
                                                       : (int64_t)time(NULL);
    for (size_t i = 0; i < config->n_keystores; i++) {
        s->root[i].fd = -1;
        if (scanner->hooks && scanner->hooks->root_dev)
            s->root[i].expected_dev = scanner->hooks->root_dev(
                config->keystores[i].name, config->keystores[i].path, scanner->hooks_data);
    }
    /* The environment is read here, on the loop thread; files are read by the walk. */
    for (size_t i = 0; i < config->n_keystores; i++) {
        const struct kigen_keystore *ks = &config->keystores[i];

        s->secrets[i].v = calloc(ks->n_passwords ? ks->n_passwords : 1, sizeof(char *));
        if (!s->secrets[i].v)
            goto out;
        s->secrets[i].n = ks->n_passwords;
        for (size_t j = 0; j < ks->n_passwords; j++, k++) {
            const struct kigen_password_source *src = &ks->passwords[j];
            const char *value;

            switch (src->kind) {
            case KIGEN_PASSWORD_ENV:
                value = scanner->getenv_fn ? scanner->getenv_fn(src->value, scanner->getenv_data)
                                           : getenv(src->value);
                if (value) {
                    s->secrets[i].v[j] = kigen_secret_dup(value);
                    if (!s->secrets[i].v[j])
                        goto out;
                }
                break;
            case KIGEN_PASSWORD_CREDENTIAL:
                if (strchr(src->value, '/') ||
                    (credentials &&
                     asprintf(&s->secret_paths[k], "%s/%s", credentials, src->value) < 0))
                    s->secret_paths[k] = NULL;
                /*
                 * systemd starts the unit without a LoadCredential=NAME found in no credstore,
                 * and sets $CREDENTIALS_DIRECTORY only when the unit names a credential. Either
                 * way the source gives nothing, as an unset env: does. Credentials are fixed
                 * when the service starts (systemd's ramfs): one access() here, one notice per
                 * process, not a warning per scan.
                 */
                if (!credentials || (s->secret_paths[k] && access(s->secret_paths[k], F_OK) < 0 &&
                                     errno == ENOENT)) {
                    if (!scanner->is_credential_noted)
                        kigen_log_notice("Keystore '%s': no credential '%s'%s, going without; "
                                         "said once",
                                         ks->name, src->value,
                                         credentials ? "" : " ($CREDENTIALS_DIRECTORY is not set)");
                    scanner->is_credential_noted = true;
                    free(s->secret_paths[k]);
                    s->secret_paths[k] = NULL;
                }
                break;
            case KIGEN_PASSWORD_FILE:
                s->secret_paths[k] = strdup(src->value);
                if (!s->secret_paths[k])
                    goto out;
                break;
            }
        }
    }
    s->walk_req.data = s;
    r = uv_queue_work(scanner->loop, &s->walk_req, walk_work_cb, walk_after_cb);
    if (r < 0)
        goto out;
    scanner->scan = s;
    s = NULL;
    r = 0;
out:
    scan_free(s);
    return r;
}

int kigen_scanner_start(struct kigen_scanner *scanner, const struct kigen_config *config,
                        kigen_scan_done_cb done_cb, void *data)
{
    return start(scanner, config, NULL, 0, done_cb, data);
}

int kigen_scanner_start_paths(struct kigen_scanner *scanner, const struct kigen_config *config,
                              const char *const *paths, size_t n, kigen_scan_done_cb done_cb,
                              void *data)
{
    return start(scanner, config, paths, n, done_cb, data);
}
