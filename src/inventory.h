/*
 * The in-memory inventory: every location (keystore, path) and what it held at its last read.
 * Loop thread only: the scan merges into it, the report and the socket read it.
 */
#ifndef KIGEN_INVENTORY_H
#define KIGEN_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cert.h"
#include "read.h"
#include "strmap.h"

struct kigen_register;      /* "register.h" */
struct kigen_holders_index; /* "holders.h" */

/* What tells an unchanged file from a changed one without reading it. */
struct kigen_file_id {
    uint64_t dev;
    uint64_t ino;
    int64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
};

struct kigen_file {
    char *keystore; /* keystore name; keystore and path share one allocation */
    char *path;
    /*
     * 0 for a file. A file may have more than one error record: the holders' register has one
     * per bad row (SPEC §12), part = the row's line; (keystore, path, part) is the location.
     */
    size_t part;
    enum kigen_format format;
    struct kigen_file_id id;
    struct kigen_certs certs;
    int error;     /* 0, or a positive enum kigen_err */
    char *message; /* the error's reason, or NULL */
    uint64_t seen; /* the scan generation that last saw the file */
    /*
     * When the file was last read, or found unchanged, and held these certificates (Unix
     * seconds, on the scan's clock). is_stale: its keystore's root was unavailable at the last
     * scan (SPEC §4 keystore_unavailable), so the record is kept as last seen; a live record
     * is seen now (SPEC §6 last_seen).
     */
    int64_t last_seen;
    bool is_stale;
    struct kigen_file *hnext;
    size_t index;
};

struct kigen_inventory {
    struct kigen_file **files;
    size_t n_files;
    size_t cap;
    struct kigen_file **buckets;
    size_t n_buckets;
    size_t n_certs; /* certificates over all files */
    size_t n_errors;
    uint64_t generation;
    /*
     * Counts changes: put, remove, set_error, and whoever changes a record, the register or
     * the revocation answers in place must add one too (a snapshot built in slices starts
     * over when it moved; snapshot.h).
     */
    uint64_t changes;
    /* Counters for the daemon and the benchmarks. */
    uint64_t files_read;
    uint64_t files_unchanged;
    uint64_t scans;
    /*
     * The holders' register as last read (SPEC §12), owned; NULL when none is configured or
     * it was never read. Its declared certificates and bad rows are records of keystore
     * KIGEN_REGISTER_KEYSTORE (register_records.h).
     */
    struct kigen_register *reg;
    struct kigen_holders_index *holders; /* reg's rows by subject and path (holders.h) */
    /*
     * Hex fingerprints of the certificates rows would declare but that a readable file now
     * matches: the file won, and the declared one is superseded, not gone (SPEC §12).
     */
    struct kigen_strmap superseded;
    /*
     * The last revocation answers (SPEC §13): hex fingerprint -> struct
     * kigen_revocation_status *, owned; only certificates whose rule says `revocation: true`.
     */
    struct kigen_strmap revocations;
    size_t n_crls; /* CRLs over all files (SPEC §13 CRL files) */
};

int kigen_inventory_new(struct kigen_inventory **ret_inventory);
void kigen_inventory_free(struct kigen_inventory *inventory);

/* Allocates an empty location record. Returns NULL on ENOMEM. */
struct kigen_file *kigen_file_new(const char *keystore, const char *path);
void kigen_file_free(struct kigen_file *file);

/* The location (keystore, path) of part 0, or NULL. O(1). */
struct kigen_file *kigen_inventory_find(const struct kigen_inventory *inventory,
                                        const char *keystore, const char *path);

/* The location (keystore, path, part), or NULL. O(1). */
struct kigen_file *kigen_inventory_find_part(const struct kigen_inventory *inventory,
                                             const char *keystore, const char *path, size_t part);

/*
 * Adds file, replacing (and freeing) a record of the same location. Takes ownership of file
 * on success; returns 0 or -ENOMEM (then file stays the caller's).
 */
int kigen_inventory_put(struct kigen_inventory *inventory, struct kigen_file *file);

/* Removes and frees one record. */
void kigen_inventory_remove(struct kigen_inventory *inventory, struct kigen_file *file);

/*
 * Sets (err != 0, message copied, may be NULL) or clears (err 0) the error of a record in
 * place, keeping its certificates and the counters. Returns 0 or -ENOMEM (then unchanged).
 */
int kigen_inventory_set_error(struct kigen_inventory *inventory, struct kigen_file *file, int err,
                              const char *message);

/*
 * Removes every record whose keystore is keystore (or any, when NULL) and whose seen is
 * older than generation. Returns how many went.
 */
size_t kigen_inventory_sweep(struct kigen_inventory *inventory, const char *keystore,
                             uint64_t generation);

#endif
