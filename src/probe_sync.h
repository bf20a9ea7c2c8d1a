/*
 * Server chains of probe targets in the inventory (SPEC §8: server certificates are
 * certificates too, and take part in alerts). A target whose last handshakes recorded a
 * chain is one location of the inventory:
 *
 *   keystore  "probe:<target name>"         (KIGEN_PROBE_KEYSTORE_PREFIX)
 *   path      "<host>:<port>", "[<IPv6>]:<port>" for an IPv6 literal
 *   format    der, entry "0" (the leaf), "1", ... the rest of the chain (probe.h)
 *
 * so that the report, the socket, the metrics and the alert engine treat it like any file.
 * The scanner never sweeps these locations; the daemon keeps them in step with the prober.
 * Loop thread only, like the inventory.
 */
#ifndef KIGEN_PROBE_SYNC_H
#define KIGEN_PROBE_SYNC_H

#include <stdbool.h>
#include <stddef.h>

#include "inventory.h"
#include "probe.h"

/* Whether keystore is the name of a probe target's location. */
bool kigen_probe_is_keystore(const char *keystore);

/*
 * The target of a location, the inverse of the naming above: its name (a pointer into
 * keystore), its host (without brackets, into host[hostlen]) and its port (a pointer into
 * path). Returns false when keystore and path are not a probe target's location.
 */
bool kigen_probe_location_parse(const char *keystore, const char *path, const char **ret_name,
                                char *host, size_t hostlen, const char **ret_port);

/*
 * Makes the inventory hold status's server chain (or nothing, when it has none).
 * *ret_changed (may be NULL) tells whether the location was added, replaced or removed; an
 * unchanged chain (the same certificates as the same entries) leaves the record as it was. Returns
 * 0 or -ENOMEM.
 */
int kigen_probe_sync(struct kigen_inventory *inventory, const struct kigen_probe_status *status,
                     bool *ret_changed);

/*
 * Removes every probe location that is not the current location of one of the n statuses
 * with a chain: targets removed or renamed by a reload. Returns how many went.
 */
size_t kigen_probe_prune(struct kigen_inventory *inventory,
                         const struct kigen_probe_status *statuses, size_t n);

#endif
