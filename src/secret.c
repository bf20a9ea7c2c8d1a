#include "secret.h"

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
