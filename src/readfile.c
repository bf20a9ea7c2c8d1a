/* Reading a whole file, bounded. */
#include "readfile.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int kigen_read_whole(int fd, uint64_t max, uint8_t **ret_buf, size_t *ret_len)
{
    struct stat st;
    size_t cap, len = 0;
    uint8_t *buf;
    ssize_t n;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if ((uint64_t)st.st_size > max)
        return -EFBIG;
    cap = (size_t)st.st_size + 1; /* one more byte tells a file that grew */
    buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    while (len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return -errno;
        }
        len += (size_t)n;
        if (len == cap && (uint64_t)cap <= max) {
            uint8_t *bigger =
                cap * 2 > max + 1 ? realloc(buf, (size_t)max + 1) : realloc(buf, cap * 2);

            if (!bigger) {
                free(buf);
                return -ENOMEM;
            }
            cap = cap * 2 > max + 1 ? (size_t)max + 1 : cap * 2;
            buf = bigger;
        }
    }
    if ((uint64_t)len > max) {
        free(buf);
        return -EFBIG;
    }
    *ret_buf = buf;
    *ret_len = len;
    return 0;
}
