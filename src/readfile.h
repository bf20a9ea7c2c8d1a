/* Reading a whole file, bounded. Any thread. */
#ifndef KIGEN_READFILE_H
#define KIGEN_READFILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads the regular file open on fd to its end, at most max bytes (a file that grows while
 * it is read is read to max + 1 and refused). Returns 0 with *ret_buf (malloc'd) and
 * *ret_len; -EINVAL for a file that is not regular, -EFBIG past max, -ENOMEM or -errno.
 */
int kigen_read_whole(int fd, uint64_t max, uint8_t **ret_buf, size_t *ret_len);

#endif
