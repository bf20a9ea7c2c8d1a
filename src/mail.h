/*
 * Mail messages of SPEC §12, composed with GMime 3: RFC 5322 and MIME, UTF-8 throughout, the
 * Subject RFC 2047-encoded, the body text/plain in quoted-printable when it is not ASCII.
 * Composing touches no file and no network; it knows nothing of how the message is sent.
 * Loop thread only (GMime is initialised once, on the first call). Every text people read
 * is in mail.c's table of strings, translated (i18n.h) into the mail's language.
 */
#ifndef KIGEN_MAIL_H
#define KIGEN_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert.h"
#include "config.h"
#include "tz.h"

/* What a message needs besides the alert. Everything is borrowed. */
struct kigen_mail_ctx {
    const char *from;    /* the From: header as configured; NULL: none (sendmail's) */
    char *const *admins; /* holders.admins */
    size_t n_admins;
    bool to_holders;              /* alerts.mail.to_holders */
    const struct kigen_tz *tz;    /* dates are shown in it; NULL: UTC */
    enum kigen_language language; /* of the text; a holder's KIGEN_LANGUAGE wins for theirs */
    const char *host;             /* the right side of the Message-ID */
    int64_t date;                 /* the Date: header, Unix seconds (the first attempt's time) */
};

/*
 * The message for alert, into a malloc'd NUL-terminated *ret_text (*ret_len bytes, LF line
 * ends, as sendmail -t takes them). key names the alert across retries (deliveries.h): the
 * Message-ID is made of it and the certificate's sha256, so every retry sends the same one.
 * To the holder (KIGEN_HOLDER_EMAIL, named KIGEN_HOLDER) when known and to_holders, Cc the
 * admins; To the admins otherwise; events not about a certificate go to the admins alone.
 * In ctx->language, or in the alert's KIGEN_LANGUAGE (the holder's register row) when it
 * goes to the holder.
 * Returns 0, -ENODATA when there is no recipient at all, -ENOMEM.
 */
int kigen_mail_compose(const struct kigen_mail_ctx *ctx, const struct kigen_alert *alert,
                       const char *key, char **ret_text, size_t *ret_len);

/*
 * What an item of the daily digest is about. The numbers are kept in the durable outbox
 * (state_dir/deliveries): a new kind goes last. The digest's sections come revoked first,
 * then in this order.
 */
enum kigen_digest_kind {
    KIGEN_DIGEST_EXPIRED,
    KIGEN_DIGEST_CRITICAL,
    KIGEN_DIGEST_RENEWAL_OPEN,
    KIGEN_DIGEST_UNREADABLE,
    KIGEN_DIGEST_PROBE_DOWN,
    KIGEN_DIGEST_REVOKED, /* SPEC §13: to be re-issued, never renewed */
};

/* One open item; strings borrowed (from a struct kigen_view, say). */
struct kigen_digest_item {
    enum kigen_digest_kind kind;
    const char *what;   /* certificates: the subject; files: the path; probes: the target */
    const char *where;  /* certificates: a location; files: the error; probes: host:port */
    const char *holder; /* may be NULL */
    int64_t not_after;  /* certificates; else 0 */
    int64_t days_left;  /* certificates; else 0 */
};

/*
 * The daily digest for the admins: the items (sorted here by kind, then days left), or
 * -ENODATA when there is none or no admin to send it to. key makes the Message-ID ("digest-
 * 2026-12-01"). Returns 0 with *ret_text as kigen_mail_compose, -ENODATA, -ENOMEM.
 */
int kigen_mail_digest(const struct kigen_mail_ctx *ctx, struct kigen_digest_item *items, size_t n,
                      const char *key, char **ret_text, size_t *ret_len);

#endif
