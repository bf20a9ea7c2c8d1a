#include "strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3u;
    return (size_t)h;
}

static struct kigen_strmap_entry **slot(const struct kigen_strmap *map, const char *key)
{
    struct kigen_strmap_entry **p = &map->buckets[hash(key) & (map->n_buckets - 1)];

    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->next;
    return p;
}

void *kigen_strmap_get(const struct kigen_strmap *map, const char *key)
{
    struct kigen_strmap_entry *e;

    if (!map->n_buckets)
        return NULL;
    e = *slot(map, key);
    return e ? e->value : NULL;
}

static int grow(struct kigen_strmap *map)
{
    size_t n = map->n_buckets ? map->n_buckets * 2 : 64;
    struct kigen_strmap_entry **b = calloc(n, sizeof(*b));

    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < map->n_buckets; i++) {
        struct kigen_strmap_entry *e = map->buckets[i], *next;

        for (; e; e = next) {
            size_t j = hash(e->key) & (n - 1);

            next = e->next;
            e->next = b[j];
            b[j] = e;
        }
    }
    free(map->buckets);
    map->buckets = b;
    map->n_buckets = n;
    return 0;
}

int kigen_strmap_put(struct kigen_strmap *map, const char *key, void *value)
{
    struct kigen_strmap_entry **p, *e;

    if (map->n >= map->n_buckets && grow(map) < 0 && !map->n_buckets)
        return -ENOMEM;
    p = slot(map, key);
    if (*p) {
        (*p)->value = value;
        return 0;
    }
    e = malloc(sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->key = strdup(key);
    if (!e->key) {
        free(e);
        return -ENOMEM;
    }
    e->value = value;
    e->next = NULL;
    *p = e;
    map->n++;
    return 0;
}

void *kigen_strmap_remove(struct kigen_strmap *map, const char *key)
{
    struct kigen_strmap_entry **p, *e;
    void *value;

    if (!map->n_buckets)
        return NULL;
    p = slot(map, key);
    e = *p;
    if (!e)
        return NULL;
    *p = e->next;
    value = e->value;
    free(e->key);
    free(e);
    map->n--;
    return value;
}

void kigen_strmap_foreach(struct kigen_strmap *map,
                          void (*fn)(const char *key, void *value, void *data), void *data)
{
    for (size_t i = 0; i < map->n_buckets; i++) {
        struct kigen_strmap_entry *e = map->buckets[i], *next;

        for (; e; e = next) {
            next = e->next;
            fn(e->key, e->value, data);
        }
    }
}

void kigen_strmap_clear(struct kigen_strmap *map)
{
    for (size_t i = 0; i < map->n_buckets; i++) {
        struct kigen_strmap_entry *e = map->buckets[i], *next;

        for (; e; e = next) {
            next = e->next;
            free(e->key);
            free(e);
        }
    }
    free(map->buckets);
    memset(map, 0, sizeof(*map));
}
