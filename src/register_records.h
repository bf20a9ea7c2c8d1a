/*
 * The holders' register in the inventory (SPEC §12): reading the file, and keeping its
 * records up to date. The register is one location of keystore KIGEN_REGISTER_KEYSTORE:
 *
 *   part 0     path = the register, format declared, the declared certificates (entry = the
 *              row's line); its error, if any, is the file's as a whole (cannot be read, no
 *              header): the rows last read are then kept, stale, as a keystore's are when
 *              its root is unavailable;
 *   part LINE  one malformed error record per bad row, message "FILE:LINE: why".
 *
 * The inventory owns the rows last read (inventory->reg) and their index (holders), so that
 * a view names the holder of every certificate.
 */
#ifndef KIGEN_REGISTER_RECORDS_H
#define KIGEN_REGISTER_RECORDS_H

#include <stdint.h>

#include "config.h"
#include "inventory.h"
#include "register.h"

struct kigen_tz; /* "tz.h" */

/* A register larger than this is an error (100,000 rows of a few hundred bytes fit). */
#define KIGEN_REGISTER_MAX_SIZE (64ull << 20)

/* What a read of the register gave. */
struct kigen_register_read {
    struct kigen_register *reg; /* the rows, or NULL when the file could not be read */
    int error;                  /* 0, or the positive enum kigen_err of the file as a whole */
    char message[512];          /* its reason */
    struct kigen_file_id id;    /* what tells the file changed, when it could be opened */
};

/*
 * Reads and parses the register at path (blocking I/O: any thread but the loop's). A file
 * that cannot be opened is keystore_unavailable (a share that blinks keeps the rows last
 * read), one that cannot be read unreadable, one past KIGEN_REGISTER_MAX_SIZE too_large.
 * Returns 0 (out->error says how the read went) or -ENOMEM.
 */
int kigen_register_read(const char *path, const struct kigen_tz *tz,
                        struct kigen_register_read *out);
/* The same, its reasons in lang (kigend --check-config follows LANG; the daemon reads in en). */
int kigen_register_read_lang(const char *path, const struct kigen_tz *tz, enum kigen_language lang,
                             struct kigen_register_read *out);

/* Frees what a read holds (its rows, unless kigen_register_records_apply took them). */
void kigen_register_read_done(struct kigen_register_read *read);

/*
 * Makes the inventory's register records say what the register at path says, at now:
 *   read != NULL   a new read: its rows replace the last ones (taken: read->reg is NULL
 *                  after the call) or, when it failed, the last rows are kept, stale, with
 *                  the read's error on part 0;
 *   read == NULL   the same rows again: after a scan changed which certificates are
 *                  readable (a declared row that a file now matches declares nothing).
 * path NULL (holders.register off) removes every register record and the rows. tz is the
 * configured zone (YYYY-MM-DD dates, validity). Returns 0 or -ENOMEM (then the records may
 * be incomplete; a later call repairs them).
 */
int kigen_register_records_apply(struct kigen_inventory *inventory,
                                 const struct kigen_config *config, const struct kigen_tz *tz,
                                 const char *path, struct kigen_register_read *read, int64_t now);

#endif
