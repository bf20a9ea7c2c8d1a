/* Durations ("28d") and sizes ("16MiB") of SPEC §3. */
#ifndef KIGEN_DURATION_H
#define KIGEN_DURATION_H

#include <stdint.h>

/*
 * Parses a non-negative integer followed by one of s m h d w into seconds. A bare integer
 * is rejected. Returns 0 and writes *ret_seconds, or -EINVAL (bad syntax) / -ERANGE.
 */
int kigen_duration_parse(const char *s, int64_t *ret_seconds);

/*
 * Parses an integer with an optional unit B, KiB, MiB or GiB into bytes (a bare integer is
 * bytes). Returns 0 and writes *ret_bytes, or -EINVAL / -ERANGE.
 */
int kigen_size_parse(const char *s, uint64_t *ret_bytes);

#endif
