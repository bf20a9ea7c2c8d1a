#include "inventory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "holders.h"
#include "register.h"
#include "revocation.h"

int kigen_inventory_new(struct kigen_inventory **ret_inventory)
{
    struct kigen_inventory *inv = calloc(1, sizeof(*inv));

    if (!inv)
        return -ENOMEM;
    inv->n_buckets = 1024;
    inv->buckets = calloc(inv->n_buckets, sizeof(*inv->buckets));
    if (!inv->buckets) {
        free(inv);
        return -ENOMEM;
    }
    *ret_inventory = inv;
    return 0;
}

void kigen_inventory_free(struct kigen_inventory *inventory)
{
    if (!inventory)
        return;
    for (size_t i = 0; i < inventory->n_files; i++)
        kigen_file_free(inventory->files[i]);
    free(inventory->files);
    free(inventory->buckets);
    kigen_holders_index_free(inventory->holders);
    kigen_strmap_clear(&inventory->superseded);
    kigen_revocation_map_clear(&inventory->revocations);
    kigen_register_free(inventory->reg);
    free(inventory);
}

struct kigen_file *kigen_file_new(const char *keystore, const char *path)
{
    size_t lk = strlen(keystore) + 1, lp = strlen(path) + 1;
    struct kigen_file *file = calloc(1, sizeof(*file));

    if (!file)
        return NULL;
    file->keystore = malloc(lk + lp);
    if (!file->keystore) {
        free(file);
        return NULL;
    }
    file->path = file->keystore + lk;
    memcpy(file->keystore, keystore, lk);
    memcpy(file->path, path, lp);
    return file;
}

void kigen_file_free(struct kigen_file *file)
{
    if (!file)
        return;
    kigen_certs_clear(&file->certs);
    free(file->certs.v);
    free(file->message);
    free(file->keystore);
    free(file);
}

/* FNV-1a over "keystore\0path", then part. */
static uint64_t location_hash(const char *keystore, const char *path, size_t part)
{
    uint64_t h = 0xcbf29ce484222325u;

    for (const char *p = keystore;; p++) {
        h = (h ^ (uint8_t)*p) * 0x100000001b3u;
        if (!*p)
            break;
    }
    for (const char *p = path; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3u;
    return part ? (h ^ part) * 0x100000001b3u : h;
}

static struct kigen_file **bucket_of(const struct kigen_inventory *inv, const char *keystore,
                                     const char *path, size_t part)
{
    return &inv->buckets[location_hash(keystore, path, part) & (inv->n_buckets - 1)];
}

struct kigen_file *kigen_inventory_find_part(const struct kigen_inventory *inventory,
                                             const char *keystore, const char *path, size_t part)
{
    struct kigen_file *f = *bucket_of(inventory, keystore, path, part);

    for (; f; f = f->hnext)
        if (f->part == part && strcmp(f->path, path) == 0 && strcmp(f->keystore, keystore) == 0)
            return f;
    return NULL;
}

struct kigen_file *kigen_inventory_find(const struct kigen_inventory *inventory,
                                        const char *keystore, const char *path)
{
    return kigen_inventory_find_part(inventory, keystore, path, 0);
}

/* Doubles the table when the load passes one, keeping chains short. */
static int rehash(struct kigen_inventory *inv)
{
    size_t n = inv->n_buckets * 2;
    struct kigen_file **b = calloc(n, sizeof(*b));

    if (!b)
        return -ENOMEM;
    free(inv->buckets);
    inv->buckets = b;
    inv->n_buckets = n;
    for (size_t i = 0; i < inv->n_files; i++) {
        struct kigen_file *f = inv->files[i],
                          **head = bucket_of(inv, f->keystore, f->path, f->part);

        f->hnext = *head;
        *head = f;
    }
    return 0;
}

int kigen_inventory_put(struct kigen_inventory *inventory, struct kigen_file *file)
{
    struct kigen_file *old =
        kigen_inventory_find_part(inventory, file->keystore, file->path, file->part);
    struct kigen_file **head;

    if (old)
        kigen_inventory_remove(inventory, old);
    if (inventory->n_files == inventory->cap) {
        size_t cap = inventory->cap ? inventory->cap * 2 : 256;
        struct kigen_file **v = realloc(inventory->files, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        inventory->files = v;
        inventory->cap = cap;
    }
    if (inventory->n_files >= inventory->n_buckets)
        (void)rehash(inventory); /* on ENOMEM the chains just grow longer */
    head = bucket_of(inventory, file->keystore, file->path, file->part);
    file->hnext = *head;
    *head = file;
    file->index = inventory->n_files;
    inventory->files[inventory->n_files++] = file;
    inventory->n_certs += file->certs.n;
    inventory->n_crls += file->certs.crls ? file->certs.crls->n : 0;
    inventory->n_errors += file->error != 0;
    inventory->changes++;
    return 0;
}

void kigen_inventory_remove(struct kigen_inventory *inventory, struct kigen_file *file)
{
    struct kigen_file **p = bucket_of(inventory, file->keystore, file->path, file->part), *last;

    while (*p && *p != file)
        p = &(*p)->hnext;
    if (*p)
        *p = file->hnext;
    last = inventory->files[--inventory->n_files];
    inventory->files[file->index] = last;
    last->index = file->index;
    inventory->n_certs -= file->certs.n;
    inventory->n_crls -= file->certs.crls ? file->certs.crls->n : 0;
    inventory->n_errors -= file->error != 0;
    inventory->changes++;
    kigen_file_free(file);
}

int kigen_inventory_set_error(struct kigen_inventory *inventory, struct kigen_file *file, int err,
                              const char *message)
{
    char *copy = NULL;

    if (err && message && !(copy = strdup(message)))
        return -ENOMEM;
    inventory->n_errors -= file->error != 0;
    inventory->n_errors += err != 0;
    free(file->message);
    file->message = copy;
    file->error = err;
    inventory->changes++;
    return 0;
}

size_t kigen_inventory_sweep(struct kigen_inventory *inventory, const char *keystore,
                             uint64_t generation)
{
    size_t gone = 0;

    for (size_t i = inventory->n_files; i-- > 0;) {
        struct kigen_file *f = inventory->files[i];

        if (f->seen < generation && (!keystore || strcmp(f->keystore, keystore) == 0)) {
            kigen_inventory_remove(inventory, f);
            gone++;
        }
    }
    return gone;
}
