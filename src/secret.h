/*
 * Passwords in memory: each in pages of its own that core dumps leave out (MADV_DONTDUMP,
 * honoured by the kernel's dumps and by gdb's gcore), wiped when freed. Any thread.
 */
#ifndef KIGEN_SECRET_H
#define KIGEN_SECRET_H

#include <stddef.h>

#include "config.h"

/* The longest secret read from a file: longer ones are cut there. */
#define KIGEN_SECRET_MAX 4096

/* A copy of the first len bytes of s, NUL-terminated; NULL on ENOMEM. */
char *kigen_secret_dupn(const char *s, size_t len);

/* A copy of s; NULL on ENOMEM. */
char *kigen_secret_dup(const char *s);

/* Wipes and frees a copy made here; NULL is a no-op. */
void kigen_secret_free(char *s);

/*
 * The first line of the regular file fd (SPEC §4: one trailing \n or \r\n stripped, at most
 * KIGEN_SECRET_MAX bytes), as a copy made here; closes fd, also when it fails. A negative fd
 * is taken as the failed open() it came from (errno). Returns 0, -EINVAL (not a regular
 * file), -ENOMEM or the -errno of the open or read. Blocking; any thread.
 */
int kigen_secret_read_line_fd(int fd, char **ret_secret);

/* The same for the file at path. */
int kigen_secret_read_line(const char *path, char **ret_secret);

/*
 * The secret src refers to, as a copy made here: the first line of the file, of
 * $CREDENTIALS_DIRECTORY/NAME (systemd's LoadCredential=), or the environment variable's
 * value, asked of getenv_fn(name, data) first (the daemon keeps such values out of its
 * environment), then of getenv(). Returns 0, -ENOENT when the variable or credential is
 * not there (also without $CREDENTIALS_DIRECTORY), -EINVAL for a credential name with a '/'
 * or an empty value, or as kigen_secret_read_line(). Blocking (a small file); any thread.
 */
int kigen_secret_read(const struct kigen_password_source *src,
                      const char *(*getenv_fn)(const char *name, void *data), void *data,
                      char **ret_secret);

/*
 * Makes OpenSSL wipe every block it frees (or moves by realloc) between
 * kigen_secret_wipe_begin() and _end() on the same thread. Its PKCS#12 key derivation frees
 * a buffer holding the password (as UCS-2) without wiping it; this keeps such copies out of
 * freed memory and core dumps. Call first thing in main, before OpenSSL allocates. Returns 0,
 * or -EBUSY when OpenSSL has allocated already (nothing changed).
 */
int kigen_secret_wipe_openssl_frees(void);

/*
 * Brackets work with passwords on this thread (the PKCS#12 and Java keystore readers), so
 * that only it pays for the wiping: 10 % of a scan of 10,000 PEM files otherwise. Nests.
 */
void kigen_secret_wipe_begin(void);
void kigen_secret_wipe_end(void);

#endif
