/*
 * Who holds a certificate, and the certificates kigen only knows from the register (SPEC §12).
 * Rows come from register.c; this file matches them to certificates and turns the rows that
 * match none into declared certificates. No I/O; any thread.
 */
#ifndef KIGEN_HOLDERS_H
#define KIGEN_HOLDERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "config.h"
#include "register.h"

/*
 * The row that names the holder of the certificate with subject at location path: the first
 * row whose subject glob matches subject or whose path glob matches path (fnmatch(3)).
 * NULL when none does (then the holder is the certificate's own address, if any).
 */
const struct kigen_register_row *kigen_holders_find(const struct kigen_register *reg,
                                                    const char *subject, const char *path);

/*
 * The same answer as kigen_holders_find() without trying every row: rows whose subject or
 * path has no glob character are found by hash, only the glob rows are tried in turn. Built
 * once per register read; the register must outlive it.
 */
struct kigen_holders_index;

/* Returns 0 with *ret_index, or -ENOMEM. */
int kigen_holders_index_new(const struct kigen_register *reg,
                            struct kigen_holders_index **ret_index);
void kigen_holders_index_free(struct kigen_holders_index *index);
const struct kigen_register_row *kigen_holders_index_find(const struct kigen_holders_index *index,
                                                          const char *subject, const char *path);

/* The row whose record starts on line, or NULL (rows are in line order). */
const struct kigen_register_row *kigen_holders_row_at(const struct kigen_register *reg,
                                                      size_t line);

/*
 * Asks the configuration for the validity (calendar years and months) of a declared
 * certificate with subject and issuer (SPEC §12: the matching rule's `validity`). Returns
 * true and *ret_years, *ret_months when a rule gives one.
 */
typedef bool (*kigen_holders_validity_fn)(const char *subject, const char *issuer, void *data,
                                          int *ret_years, int *ret_months);

/*
 * Says whether a readable certificate matches row (its subject or path glob), so that the row
 * declares nothing: the file wins.
 */
typedef bool (*kigen_holders_matched_fn)(const struct kigen_register_row *row, void *data);

/* A row that could not be declared: its line and why (the caller adds "FILE:LINE: "). */
struct kigen_holders_problem {
    size_t line;
    char message[256];
};

/*
 * Appends to certs one declared certificate per row of reg that gives not_after or issued
 * and that no readable certificate matches (matched says), in row order: entry = the row's
 * line, subject = the row's subject when it has no glob characters, else "CN=<holder>",
 * issuer = the row's issuer or "", serial "", not_before = issued (INT64_MIN when not
 * given), not_after = the row's, else issued plus validity (tz: the configured zone, NULL for
 * UTC), sha256 = SHA-256 of "declared\n<holder>\n<terminal>\n<not_after RFC 3339>", email =
 * the row's. A row that cannot be declared (issued without a validity) is one entry of
 * *problems (malloc'd array of *n_problems, NULL when none). Returns 0 or -ENOMEM.
 */
int kigen_holders_declare(const struct kigen_register *reg, const struct kigen_tz *tz,
                          kigen_holders_validity_fn validity, kigen_holders_matched_fn matched,
                          void *data, struct kigen_certs *certs,
                          struct kigen_holders_problem **problems, size_t *n_problems);

/* SHA-256 of a declared certificate (SPEC §12), into out. */
void kigen_holders_declared_sha256(const char *holder, const char *terminal, int64_t not_after,
                                   uint8_t out[KIGEN_SHA256_LEN]);

#endif
