#include "probe_sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* keystore and path of status's location; the caller frees *ret_keystore and *ret_path. */
static int location(const struct kigen_probe_status *status, char **ret_keystore, char **ret_path)
{
    bool is_ipv6 = strchr(status->host, ':') != NULL;
    char *keystore = NULL, *path = NULL;

    if (asprintf(&keystore, "%s%s", KIGEN_PROBE_KEYSTORE_PREFIX, status->name) < 0)
        return -ENOMEM;
    if (asprintf(&path, "%s%s%s:%u", is_ipv6 ? "[" : "", status->host, is_ipv6 ? "]" : "",
                 (unsigned)status->port) < 0) {
        free(keystore);
        return -ENOMEM;
    }
    *ret_keystore = keystore;
    *ret_path = path;
    return 0;
}

static bool same_certs(const struct kigen_certs *a, const struct kigen_certs *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (memcmp(a->v[i].sha256, b->v[i].sha256, KIGEN_SHA256_LEN) != 0 ||
            strcmp(a->v[i].entry, b->v[i].entry) != 0)
            return false;
    return true;
}

bool kigen_probe_is_keystore(const char *keystore)
{
    return strncmp(keystore, KIGEN_PROBE_KEYSTORE_PREFIX, strlen(KIGEN_PROBE_KEYSTORE_PREFIX)) == 0;
}

bool kigen_probe_location_parse(const char *keystore, const char *path, const char **ret_name,
                                char *host, size_t hostlen, const char **ret_port)
{
    const char *colon = strrchr(path, ':');
    size_t n;

    if (!kigen_probe_is_keystore(keystore) || !colon)
        return false;
    n = (size_t)(colon - path);
    if (n >= 2 && path[0] == '[' && path[n - 1] == ']')
        path++, n -= 2;
    snprintf(host, hostlen, "%.*s", (int)n, path);
    *ret_name = keystore + strlen(KIGEN_PROBE_KEYSTORE_PREFIX);
    *ret_port = colon + 1;
    return true;
}

int kigen_probe_sync(struct kigen_inventory *inventory, const struct kigen_probe_status *status,
                     bool *ret_changed)
{
    struct kigen_file *old, *f = NULL;
    char *keystore, *path;
    bool changed = false;
    int r = location(status, &keystore, &path);

    if (r < 0)
        return r;
    old = kigen_inventory_find(inventory, keystore, path);
    if (status->server.n == 0) {
        if (old) {
            kigen_inventory_remove(inventory, old);
            changed = true;
        }
    } else if (!old || !same_certs(&old->certs, &status->server)) {
        f = kigen_file_new(keystore, path);
        r = f ? kigen_certs_append(&f->certs, &status->server) : -ENOMEM;
        if (r == 0) {
            f->format = KIGEN_FORMAT_DER;
            f->seen = inventory->generation;
            kigen_certs_shrink(&f->certs);
            r = kigen_inventory_put(inventory, f);
        }
        if (r < 0)
            kigen_file_free(f);
        changed = r == 0;
    }
    free(keystore);
    free(path);
    if (ret_changed)
        *ret_changed = changed;
    return r;
}

size_t kigen_probe_prune(struct kigen_inventory *inventory,
                         const struct kigen_probe_status *statuses, size_t n)
{
    size_t removed = 0;

    for (size_t i = inventory->n_files; i-- > 0;) {
        struct kigen_file *f = inventory->files[i];
        bool keep = false;

        if (!kigen_probe_is_keystore(f->keystore))
            continue;
        for (size_t j = 0; j < n && !keep; j++) {
            char *keystore, *path;

            if (statuses[j].server.n == 0 || location(&statuses[j], &keystore, &path) < 0)
                continue;
            keep = strcmp(keystore, f->keystore) == 0 && strcmp(path, f->path) == 0;
            free(keystore);
            free(path);
        }
        if (!keep) {
            kigen_inventory_remove(inventory, f);
            removed++;
        }
    }
    return removed;
}
