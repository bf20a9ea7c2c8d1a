/*
 * The alert engine (SPEC §7): decides what to say and remembers what was said, so that each
 * event fires once per certificate and step, then at most once per reminder_every while
 * unresolved. It only decides: sinks deliver, state.c persists. Loop thread only.
 *
 * Delivery is at least once with a narrow window: every decided alert waits in the outbox,
 * which is persisted with the rest of the state before the alert is handed to the sinks, and
 * leaves it once the sinks are done. After a crash the outbox is delivered again.
 */
#ifndef KIGEN_ENGINE_H
#define KIGEN_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "inventory.h"
#include "report.h"
#include "strmap.h"

/*
 * Alerts waiting at most. A first start over a large, neglected inventory would otherwise
 * queue an alert per certificate at once; the rest are due again at the next evaluation.
 */
#define KIGEN_ENGINE_MAX_OUTBOX 1000

/*
 * New alerts one evaluation decides at most. Deciding and composing an alert costs the loop
 * about 10 µs: a first evaluation of a neglected inventory is cut into slices of this many,
 * so that the status socket is answered in between (more_now asks for the next slice).
 */
#define KIGEN_ENGINE_MAX_NEW 100

struct kigen_outbox_item {
    uint64_t id;
    bool dispatched; /* handed to the sinks in this process */
    struct kigen_alert *alert;
    char *line; /* its line of the state file, made once (an alert never changes); or NULL */
    size_t line_len;
};

/*
 * Describes the next maintenance window of the issuance host before a deadline, in lang, for
 * messages (and in English for the KIGEN_MAINTENANCE field, the same in every language).
 */
typedef bool (*kigen_engine_maint_fn)(enum kigen_language lang, int64_t now, int64_t before,
                                      char *out, size_t outlen, void *data);

struct kigen_engine {
    struct kigen_strmap certs;       /* hex sha256 -> struct kigen_tracked, every certificate */
    struct kigen_strmap errors;      /* "keystore\npath" -> struct kigen_tracked_error */
    struct kigen_strmap probes_down; /* probe target name -> int64_t *, when probe.down went */
    struct kigen_strmap roots;       /* "keystore\npath" -> uint64_t *, st_dev of a complete read */
    /*
     * Said once until it changes (SPEC §13): "crl\tISSUER\tTHIS_UPDATE" (crl.stale) and
     * "fetch\tURL\tKIND" (a revocation URL's scan.error) -> struct kigen_mark.
     */
    struct kigen_strmap marks;
    struct kigen_outbox_item *outbox;
    size_t n_outbox;
    size_t cap_outbox;
    uint64_t next_id;
    bool dirty;      /* state changed since the last save */
    bool more_due;   /* the last evaluation stopped at KIGEN_ENGINE_MAX_OUTBOX: evaluate again */
    bool more_now;   /* it stopped at KIGEN_ENGINE_MAX_NEW: evaluate again as soon as possible */
    size_t n_new;    /* alerts decided by the evaluation in progress */
    size_t n_unique; /* distinct fingerprints the last evaluation saw (its view's unique) */
    int64_t next_reminder; /* the earliest reminder the last evaluation left due; INT64_MAX */
    kigen_engine_maint_fn maint_fn;
    void *maint_data;
    enum kigen_language language; /* of the messages it composes (config->language) */
};

struct kigen_tracked {
    char sha256[65];
    char *subject;
    char *issuer;
    int64_t not_after;
    char *locations;                 /* "keystore\tpath\n" lines, as last seen */
    int64_t sent[KIGEN_EVENT_COUNT]; /* when each event was last sent; 0: never */
    int64_t threshold_step;          /* the smallest notify_before step sent; 0: none */
    bool seen;
    char *line; /* its line of the state file as last saved; NULL once anything changed */
    size_t line_len;
};

struct kigen_mark {
    int64_t sent;
    bool seen;
};

struct kigen_tracked_error {
    int error;
    int64_t sent;
    bool seen;
};

void kigen_engine_init(struct kigen_engine *engine);
void kigen_engine_done(struct kigen_engine *engine);

/*
 * Compares the inventory (through view, built at now without a filter) with what was said
 * and queues the alerts that are due in the outbox. Returns how many were queued, or -ENOMEM.
 */
int kigen_engine_evaluate(struct kigen_engine *engine, const struct kigen_config *config,
                          const struct kigen_inventory *inventory, const struct kigen_view *view,
                          int64_t now);

/*
 * kigen_engine_evaluate() in parts, for the loop to answer in between (src/evaluator.c):
 * begin sorts the view's records by fingerprint; each step evaluates them for about
 * budget_ns (0: all); end sweeps what was not seen (cert.gone), the errors and the CRLs, and
 * frees the pass. The view, the configuration and the inventory must stay as they were from
 * begin to end, and nothing but steps may evaluate in between: when they change, abandon the
 * pass (what it queued stays queued and said; the seen marks are cleared, so that the next
 * pass sweeps in full) and begin another.
 */
struct kigen_engine_pass {
    const struct kigen_view *view;
    const struct kigen_record **sorted;
    size_t next; /* the index in sorted of the next group */
    int64_t now;
    int fired;
};

int kigen_engine_pass_begin(struct kigen_engine *engine, const struct kigen_view *view, int64_t now,
                            struct kigen_engine_pass *pass);

/* Returns 1 when every record is evaluated, 0 when there is more, or -ENOMEM. */
int kigen_engine_pass_step(struct kigen_engine *engine, const struct kigen_config *config,
                           const struct kigen_inventory *inventory, struct kigen_engine_pass *pass,
                           uint64_t budget_ns);

/* After a step returned 1: how many alerts the whole pass queued, or -ENOMEM. */
int kigen_engine_pass_end(struct kigen_engine *engine, const struct kigen_config *config,
                          const struct kigen_inventory *inventory, struct kigen_engine_pass *pass);

/* Frees a pass that is not ended, forgetting which certificates it saw. */
void kigen_engine_pass_abandon(struct kigen_engine *engine, struct kigen_engine_pass *pass);

/* Queues an alert decided elsewhere (config.reloaded, probe.down). Takes ownership. */
int kigen_engine_queue(struct kigen_engine *engine, struct kigen_alert *alert);

/*
 * What was said about probe targets, kept with the rest of the state so that a restart
 * neither repeats a probe.down nor forgets the probe.up it owes. sent is when probe.down
 * went; 0 from kigen_engine_probe_down_since means none is outstanding for name. Setting
 * returns 0 or -ENOMEM; clearing an unknown name does nothing.
 */
int kigen_engine_probe_set_down(struct kigen_engine *engine, const char *name, int64_t sent);
void kigen_engine_probe_clear_down(struct kigen_engine *engine, const char *name);
int64_t kigen_engine_probe_down_since(const struct kigen_engine *engine, const char *name);

/*
 * The device a keystore root was last read completely on (SPEC §4 keystore_unavailable), kept
 * with the state so that an unmounted share is told from an emptied folder after a restart
 * too. Getting gives 0 when unknown; setting returns 0 or -ENOMEM.
 */
uint64_t kigen_engine_root_dev(const struct kigen_engine *engine, const char *keystore,
                               const char *path);
int kigen_engine_set_root_dev(struct kigen_engine *engine, const char *keystore, const char *path,
                              uint64_t dev);

/*
 * The URLs a revocation check could not use (revocation.h): one scan.error per URL and kind,
 * then nothing until it changes; a URL that works again is forgotten. Returns how many alerts
 * were queued, or -ENOMEM.
 */
struct kigen_revocation_failure;
int kigen_engine_revocation_failures(struct kigen_engine *engine, const struct kigen_config *config,
                                     const struct kigen_revocation_failure *failures, size_t n,
                                     int64_t now);

/* The alert with id leaves the outbox (the sinks are done with it). */
void kigen_engine_delivered(struct kigen_engine *engine, uint64_t id);

/*
 * The earliest instant after now at which an evaluation could have something new to say
 * (a state change, a notify_before step, a reminder), or INT64_MAX. view is the one the last
 * kigen_engine_evaluate() saw: the reminders come from that evaluation.
 */
int64_t kigen_engine_next_wakeup(const struct kigen_engine *engine,
                                 const struct kigen_config *config, const struct kigen_view *view,
                                 int64_t now);

/* Serializes the state (what was said and the outbox) into a malloc'd JSON text. 0/-ENOMEM. */
int kigen_engine_save(const struct kigen_engine *engine, char **ret_text, size_t *ret_len);

/*
 * Replaces the state with the one in text. Returns 0, or -EINVAL with a reason in errbuf for
 * a corrupt or truncated text (the engine is then empty), or -ENOMEM.
 */
int kigen_engine_load(struct kigen_engine *engine, const char *text, size_t len, char *errbuf,
                      size_t errlen);

#endif
