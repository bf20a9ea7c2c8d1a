#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

int kigen_secret_read_line_fd(int fd, char **ret_secret)
{
    char buf[KIGEN_SECRET_MAX + 1];
    int r = 0;
    ssize_t n;
    size_t len = 0;
    struct stat st;
    char *nl, *s;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = -EINVAL;
        goto out;
    }
    while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    nl = memchr(buf, '\n', len);
    if (nl) {
        if (nl > buf && nl[-1] == '\r')
            nl--;
        *nl = '\0';
    }
    s = kigen_secret_dup(buf);
    if (!s) {
        r = -ENOMEM;
        goto out;
    }
    *ret_secret = s;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return r;
}

int kigen_secret_read_line(const char *path, char **ret_secret)
{
    return kigen_secret_read_line_fd(open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK),
                                     ret_secret);
}

int kigen_secret_read(const struct kigen_password_source *src,
                      const char *(*getenv_fn)(const char *name, void *data), void *data,
                      char **ret_secret)
{
    const char *dir, *value = NULL;
    char *path = NULL, *s = NULL;
    int r;

    switch (src->kind) {
    case KIGEN_PASSWORD_ENV:
        if (getenv_fn)
            value = getenv_fn(src->value, data);
        if (!value)
            value = getenv(src->value);
        if (!value)
            return -ENOENT;
        s = kigen_secret_dup(value);
        if (!s)
            return -ENOMEM;
        break;
    case KIGEN_PASSWORD_CREDENTIAL:
        dir = getenv("CREDENTIALS_DIRECTORY");
        if (strchr(src->value, '/'))
            return -EINVAL;
        if (!dir || !*dir)
            return -ENOENT;
        if (asprintf(&path, "%s/%s", dir, src->value) < 0)
            return -ENOMEM;
        r = kigen_secret_read_line(path, &s);
        free(path);
        if (r < 0)
            return r;
        break;
    case KIGEN_PASSWORD_FILE:
        r = kigen_secret_read_line(src->value, &s);
        if (r < 0)
            return r;
        break;
    }
    if (!s || !*s) {
        kigen_secret_free(s);
        return -EINVAL;
    }
    *ret_secret = s;
    return 0;
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
