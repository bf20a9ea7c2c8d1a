/*
 * Passwords in memory: each in pages of its own that core dumps leave out (MADV_DONTDUMP,
 * honoured by the kernel's dumps and by gdb's gcore), wiped when freed. Any thread.
 */
#ifndef KIGEN_SECRET_H
#define KIGEN_SECRET_H

#include <stddef.h>

/* A copy of the first len bytes of s, NUL-terminated; NULL on ENOMEM. */
char *kigen_secret_dupn(const char *s, size_t len);

/* A copy of s; NULL on ENOMEM. */
char *kigen_secret_dup(const char *s);

/* Wipes and frees a copy made here; NULL is a no-op. */
void kigen_secret_free(char *s);

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
