/* The holders' register in the inventory (SPEC §12). */
#include "register_records.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "holders.h"
#include "readfile.h"

int kigen_register_read(const char *path, const struct kigen_tz *tz,
                        struct kigen_register_read *out)
{
    return kigen_register_read_lang(path, tz, KIGEN_LANGUAGE_EN, out);
}

int kigen_register_read_lang(const char *path, const struct kigen_tz *tz, enum kigen_language lang,
                             struct kigen_register_read *out)
{
    uint8_t *buf = NULL;
    struct stat st;
    size_t len = 0;
    int fd, r;

    memset(out, 0, sizeof(*out));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        out->error = KIGEN_E_KEYSTORE_UNAVAILABLE;
        snprintf(out->message, sizeof(out->message), _(lang, "cannot open the register: %s"),
                 strerror(errno));
        return 0;
    }
    if (fstat(fd, &st) == 0) {
        out->id.dev = st.st_dev;
        out->id.ino = st.st_ino;
        out->id.size = st.st_size;
        out->id.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        out->id.ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    }
    r = kigen_read_whole(fd, KIGEN_REGISTER_MAX_SIZE, &buf, &len);
    close(fd);
    if (r == -ENOMEM)
        return r;
    if (r == -EFBIG) {
        out->error = KIGEN_E_TOO_LARGE;
        snprintf(out->message, sizeof(out->message),
                 _(lang, "the register is larger than %llu MiB"), KIGEN_REGISTER_MAX_SIZE >> 20);
        return 0;
    }
    if (r < 0) {
        out->error = KIGEN_E_UNREADABLE;
        snprintf(out->message, sizeof(out->message), _(lang, "cannot read the register: %s"),
                 r == -EINVAL ? _(lang, "not a regular file") : strerror(-r));
        return 0;
    }
    r = kigen_register_parse_lang(buf, len, tz, lang, &out->reg);
    free(buf);
    return r;
}

void kigen_register_read_done(struct kigen_register_read *read)
{
    kigen_register_free(read->reg);
    read->reg = NULL;
}

struct declare_ctx {
    const struct kigen_config *config;
    const struct kigen_inventory *inventory;
    size_t n_matched; /* rows with dates that a readable file matches */
};

static bool validity_cb(const char *subject, const char *issuer, void *data, int *ret_years,
                        int *ret_months)
{
    const struct declare_ctx *c = data;
    struct kigen_policy p;

    kigen_config_policy_for(c->config, KIGEN_REGISTER_KEYSTORE, subject, issuer, &p);
    if (!p.validity.years && !p.validity.months)
        return false;
    *ret_years = p.validity.years;
    *ret_months = p.validity.months;
    return true;
}

/* Whether a readable certificate (in a keystore, not the register) matches row. */
static bool matched_cb(const struct kigen_register_row *row, void *data)
{
    const struct declare_ctx *c = data;

    if (!row->subject && !row->path)
        return false;
    for (size_t i = 0; i < c->inventory->n_files; i++) {
        const struct kigen_file *f = c->inventory->files[i];
        bool is_match = false;

        if (strcmp(f->keystore, KIGEN_REGISTER_KEYSTORE) == 0)
            continue;
        is_match = row->path && f->certs.n && fnmatch(row->path, f->path, 0) == 0;
        for (size_t j = 0; row->subject && j < f->certs.n && !is_match; j++)
            is_match = fnmatch(row->subject, f->certs.v[j].subject, 0) == 0;
        if (is_match) {
            ((struct declare_ctx *)data)->n_matched++;
            return true;
        }
    }
    return false;
}

/*
 * The certificates the rows would declare but that files won (ctx->n_matched of them): their
 * fingerprints into inventory->superseded, so that the alert engine lets them go quietly.
 */
static int note_superseded(struct kigen_inventory *inv, const struct kigen_tz *tz,
                           struct declare_ctx *ctx, const struct kigen_certs *declared)
{
    struct kigen_certs all = { 0 };
    struct kigen_holders_problem *problems = NULL;
    size_t n_problems = 0;
    int r = 0;

    kigen_strmap_clear(&inv->superseded);
    if (!ctx->n_matched)
        return 0;
    r = kigen_holders_declare(inv->reg, tz, validity_cb, NULL, ctx, &all, &problems, &n_problems);
    /* Both in row order, declared a subsequence of all. */
    for (size_t i = 0, j = 0; r == 0 && i < all.n; i++) {
        char hex[65];

        if (j < declared->n &&
            memcmp(declared->v[j].sha256, all.v[i].sha256, KIGEN_SHA256_LEN) == 0) {
            j++;
            continue;
        }
        kigen_cert_sha256_hex(&all.v[i], hex);
        r = kigen_strmap_put(&inv->superseded, hex, inv);
    }
    free(problems);
    kigen_certs_clear(&all);
    free(all.v);
    return r;
}

/* What part 0 said before: the file's error and when it was last read, kept over a re-apply. */
struct file_state {
    int error;
    char *message;
    int64_t last_seen;
    bool is_stale;
};

static void remove_records(struct kigen_inventory *inv, struct file_state *keep)
{
    for (size_t i = inv->n_files; i-- > 0;) {
        struct kigen_file *f = inv->files[i];

        if (strcmp(f->keystore, KIGEN_REGISTER_KEYSTORE) != 0)
            continue;
        if (keep && f->part == 0) {
            keep->error = f->error;
            keep->message = f->message;
            f->message = NULL;
            keep->last_seen = f->last_seen;
            keep->is_stale = f->is_stale;
        }
        kigen_inventory_remove(inv, f);
    }
}

/* A malformed error record for a bad row, unless that line has one already. */
static int put_row_error(struct kigen_inventory *inv, const char *path, size_t line,
                         const char *why)
{
    struct kigen_file *f;
    char *message = NULL;

    if (kigen_inventory_find_part(inv, KIGEN_REGISTER_KEYSTORE, path, line))
        return 0;
    f = kigen_file_new(KIGEN_REGISTER_KEYSTORE, path);
    if (!f || asprintf(&message, "%s:%zu: %s", path, line, why) < 0) {
        kigen_file_free(f);
        return -ENOMEM;
    }
    f->part = line;
    f->format = KIGEN_FORMAT_DECLARED;
    f->error = KIGEN_E_MALFORMED;
    f->message = message;
    f->seen = inv->generation;
    if (kigen_inventory_put(inv, f) < 0) {
        kigen_file_free(f);
        return -ENOMEM;
    }
    return 0;
}

/* Replaces the rows (and their index) with reg, taken. */
static int set_rows(struct kigen_inventory *inv, struct kigen_register *reg)
{
    struct kigen_holders_index *index = NULL;

    if (reg && kigen_holders_index_new(reg, &index) < 0)
        return -ENOMEM;
    kigen_holders_index_free(inv->holders);
    kigen_register_free(inv->reg);
    inv->holders = index;
    inv->reg = reg;
    inv->changes++;
    return 0;
}

int kigen_register_records_apply(struct kigen_inventory *inventory,
                                 const struct kigen_config *config, const struct kigen_tz *tz,
                                 const char *path, struct kigen_register_read *read, int64_t now)
{
    struct file_state was = { 0 };
    struct declare_ctx ctx = { .config = config, .inventory = inventory };
    struct kigen_holders_problem *problems = NULL;
    const struct kigen_register *reg;
    struct kigen_file *f = NULL;
    size_t n_problems = 0;
    int r = 0;

    remove_records(inventory, &was);
    if (!path) {
        kigen_strmap_clear(&inventory->superseded);
        free(was.message);
        return set_rows(inventory, NULL);
    }
    if (read) {
        free(was.message);
        was.message = NULL;
        was.error = read->error;
        if (read->error && read->message[0] && !(was.message = strdup(read->message)))
            return -ENOMEM;
        was.is_stale = read->error != 0 && inventory->reg;
        if (!read->error) {
            if (set_rows(inventory, read->reg) < 0) {
                free(was.message);
                return -ENOMEM;
            }
            read->reg = NULL;
            was.last_seen = now;
        }
    } else if (!was.is_stale) {
        was.last_seen = now;
    }
    reg = inventory->reg;
    f = kigen_file_new(KIGEN_REGISTER_KEYSTORE, path);
    if (!f) {
        free(was.message);
        return -ENOMEM;
    }
    f->format = KIGEN_FORMAT_DECLARED;
    f->seen = inventory->generation;
    f->last_seen = was.last_seen;
    f->is_stale = was.is_stale;
    f->error = was.error;
    f->message = was.message;
    if (reg)
        r = kigen_holders_declare(reg, tz, validity_cb, matched_cb, &ctx, &f->certs, &problems,
                                  &n_problems);
    if (r == 0)
        r = note_superseded(inventory, tz, &ctx, &f->certs);
    /* The file as a whole: no header, no holder column (line 0 of the parser's errors). */
    for (size_t i = 0; r == 0 && reg && i < reg->n_errors && !f->error; i++) {
        if (reg->errors[i].line == 0) {
            f->error = KIGEN_E_MALFORMED;
            if (!(f->message = strdup(reg->errors[i].message)))
                r = -ENOMEM;
        }
    }
    kigen_certs_shrink(&f->certs);
    if (r == 0)
        r = kigen_inventory_put(inventory, f);
    if (r < 0) {
        kigen_file_free(f);
        free(problems);
        return r;
    }
    for (size_t i = 0; r == 0 && reg && i < reg->n_errors; i++)
        if (reg->errors[i].line)
            r = put_row_error(inventory, path, reg->errors[i].line, reg->errors[i].message);
    for (size_t i = 0; r == 0 && i < n_problems; i++)
        r = put_row_error(inventory, path, problems[i].line, problems[i].message);
    free(problems);
    return r;
}
