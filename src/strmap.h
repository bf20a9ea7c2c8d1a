/* A string-keyed hash map with separate chaining. Keys are copied; values are borrowed. */
#ifndef KIGEN_STRMAP_H
#define KIGEN_STRMAP_H

#include <stddef.h>

struct kigen_strmap_entry {
    char *key;
    void *value;
    struct kigen_strmap_entry *next;
};

struct kigen_strmap {
    struct kigen_strmap_entry **buckets;
    size_t n_buckets; /* a power of two, or 0 before the first put */
    size_t n;
};

/* The value under key, or NULL. */
void *kigen_strmap_get(const struct kigen_strmap *map, const char *key);

/* Sets key to value (replacing any). Returns 0 or -ENOMEM. */
int kigen_strmap_put(struct kigen_strmap *map, const char *key, void *value);

/* Removes key; returns its value or NULL. */
void *kigen_strmap_remove(struct kigen_strmap *map, const char *key);

/*
 * Calls fn for every entry; fn may remove the entry it is given (and only that one).
 * Order is unspecified.
 */
void kigen_strmap_foreach(struct kigen_strmap *map,
                          void (*fn)(const char *key, void *value, void *data), void *data);

/* Frees the map's own memory (not the values). The map is then empty and reusable. */
void kigen_strmap_clear(struct kigen_strmap *map);

#endif
