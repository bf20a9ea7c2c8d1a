#include "secret.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

char *kigen_secret_dupn(const char *s, size_t len)
{
    size_t size = (sizeof(size_t) + len + 1 + 4095) & ~(size_t)4095;
    char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return NULL;
    (void)madvise(p, size, MADV_DONTDUMP);
    memcpy(p, &size, sizeof(size));
    memcpy(p + sizeof(size_t), s, len);
    p[sizeof(size_t) + len] = '\0';
    return p + sizeof(size_t);
}

char *kigen_secret_dup(const char *s)
{
    return kigen_secret_dupn(s, strlen(s));
}

void kigen_secret_free(char *s)
{
    char *p;
    size_t size;

    if (!s)
        return;
    p = s - sizeof(size_t);
    memcpy(&size, p, sizeof(size));
    OPENSSL_cleanse(p, size);
    munmap(p, size);
}

static void *wiping_malloc(size_t n, const char *file, int line)
{
    return malloc(n);
}

/* Readers of password-protected files on this thread now (kigen_secret_wipe_begin). */
static _Thread_local unsigned wipe_depth;

void kigen_secret_wipe_begin(void)
{
    wipe_depth++;
}

void kigen_secret_wipe_end(void)
{
    wipe_depth--;
}

static void wiping_free(void *p, const char *file, int line)
{
    if (!p)
        return;
    if (wipe_depth)
        explicit_bzero(p, malloc_usable_size(p));
    free(p);
}

/* Moves the block itself, so that the old one is wiped too. */
static void *wiping_realloc(void *p, size_t n, const char *file, int line)
{
    size_t old;
    void *q;

    if (!p)
        return malloc(n);
    if (!wipe_depth)
        return realloc(p, n);
    if (n == 0) {
        wiping_free(p, file, line);
        return NULL;
    }
    old = malloc_usable_size(p);
    if (n <= old)
        return p; /* it fits where it is: nothing is left behind (the free wipes it all) */
    q = malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    wiping_free(p, file, line);
    return q;
}

int kigen_secret_wipe_openssl_frees(void)
{
    return CRYPTO_set_mem_functions(wiping_malloc, wiping_realloc, wiping_free) ? 0 : -EBUSY;
}
