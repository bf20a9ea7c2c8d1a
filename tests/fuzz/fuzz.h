/*
 * What the fuzz targets share. Each tests/fuzz/fuzz_<target>.c defines LLVMFuzzerTestOneInput
 * (and LLVMFuzzerInitialize when it needs setup) and is linked twice: with libFuzzer
 * (KIGEN_FUZZ=ON, clang) and with replay.c, which feeds it the files of the regression and
 * seed directories under CTest.
 *
 * A target frees everything it allocates per input and keeps no state that grows from one
 * input to the next: LeakSanitizer checks every run. A broken contract is a finding:
 * FUZZ_CHECK prints what failed and aborts, so that libFuzzer saves the input.
 */
#ifndef KIGEN_FUZZ_H
#define KIGEN_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "config.h"
#include "inventory.h"
#include "read.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with file, line and the failed condition. */
#define FUZZ_CHECK(cond)                          \
    do {                                          \
        if (!(cond))                              \
            fuzz_fail(__FILE__, __LINE__, #cond); \
    } while (0)

_Noreturn void fuzz_fail(const char *file, int line, const char *what);

/* A NUL-terminated copy of data (a NUL inside stays: C string users stop there). */
char *fuzz_strndup(const uint8_t *data, size_t size);

/*
 * The one reader context of the process, made on first use (readers run on one thread per
 * context; the fuzzer has one thread).
 */
const struct kigen_read_ctx *fuzz_read_ctx(void);

/*
 * The passwords the reader targets try besides none: the store password of the JKS fixtures
 * and of the PKCS#12 fixtures (tests/gen), and a common default, so that seeds made from
 * the fixtures open all the way down.
 */
extern const struct kigen_passwords fuzz_passwords;

/*
 * Checks the reader contract of read.h after a call that returned r with certs->n == before
 * on entry: a count equal to what was appended, or a known negative error with a one-line
 * reason; every certificate with its strings. With is_utf8, the entries must also be valid
 * UTF-8 (JKS aliases are converted from modified UTF-8 for that).
 */
void fuzz_check_read(int r, const struct kigen_certs *certs, size_t before, const char *errbuf,
                     bool is_utf8);

/* Whether s (len bytes) is valid UTF-8 (RFC 3629: no overlong forms, surrogates, > U+10FFFF). */
bool fuzz_is_utf8(const char *s, size_t len);

/* Whether s is one line of text: no byte below 0x20 other than a tab, no DEL. */
bool fuzz_is_one_line(const char *s);

/* Releases what a reader appended. */
void fuzz_certs_free(struct kigen_certs *certs);

/* A reader without passwords (PEM, DER, PKCS#7), as read.h declares them. */
typedef int (*fuzz_reader_fn)(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                              struct kigen_certs *certs, char *errbuf, size_t errlen);

/* One input through read, checked with fuzz_check_read, freed; libFuzzer's 0. */
int fuzz_one_read(fuzz_reader_fn read, const uint8_t *data, size_t size);

/*
 * Appends a certificate made by hand (no DER: fingerprint bytes all fill) to certs, for the
 * targets that need an inventory. Aborts when out of memory.
 */
void fuzz_add_cert(struct kigen_certs *certs, uint8_t fill, const char *subject, const char *issuer,
                   const char *serial, const char *entry, int64_t not_before, int64_t not_after);

/*
 * A small daemon's world for the targets that answer from one (fuzz_proto, fuzz_engine_load),
 * made once: a configuration of two keystores with labels and a rule, an inventory of
 * certificates made by hand in every state of SPEC §5 at now (2026-11-24T12:00:00Z), one
 * certificate in two places (one path not UTF-8) and one file error, and the view at now.
 * Fingerprints are one byte repeated (0x11, 0x22, ... 0x66), so seeds can name them.
 */
struct fuzz_world {
    struct kigen_config *config;
    struct kigen_inventory *inventory;
    struct kigen_view *view;
    int64_t now;
};

const struct fuzz_world *fuzz_world(void);

/*
 * The revocation targets' world (SPEC §13), made once in memory with OpenSSL: a CA "CN=Kigen
 * Revocation Test CA,O=Test NACCS,C=JP" (tests/gen/revocation_ca.sh's name) with an EC key, and
 * a leaf of serial 0x1001 (revoked.pem of that script, revoked in its CRLs) that it signed. Aborts
 * on failure.
 */
struct fuzz_pki {
    X509 *ca;
    EVP_PKEY *ca_key;
    X509 *leaf;
};
const struct fuzz_pki *fuzz_pki(void);

/* Checks what kigen_revocation_from_crl/_ocsp answered: decided is good or revoked, else unknown
 * with a reason; dates and names as the report writes them. */
struct kigen_revocation_status;
void fuzz_check_revocation(bool decided, const struct kigen_revocation_status *s, int64_t now);

#endif
