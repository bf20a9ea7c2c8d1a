/*
 * The body of a webhook POST (SPEC §3 alerts.webhooks, §12): an alert as the JSON a chat
 * service takes. Pure: no I/O, no loop; any thread.
 *
 *   slack  {"text": "..."}: Slack's incoming webhooks, and the same shape Mattermost,
 *          Rocket.Chat and Google Chat take. The text is the message, then one "Label: value"
 *          line per key fact.
 *   teams  a message with one Adaptive Card (1.4): the message as a title, the facts as a
 *          FactSet; what a Teams Workflows "Post to a channel when a webhook request is
 *          received" flow takes.
 *   json   every field of the alert as the exec hook sees it: {"event", "priority",
 *          "message", "message_id", "KIGEN_EVENT", "KIGEN_SHA256", ...}, values as strings
 *          except priority (a number).
 *
 * Text is UTF-8 throughout and stays so: bytes of an alert field that are not valid UTF-8
 * (a certificate's subject may be Latin-1) become U+FFFD, so that the body is always valid
 * JSON.
 */
#ifndef KIGEN_WEBHOOK_H
#define KIGEN_WEBHOOK_H

#include <stddef.h>

#include "alert.h"
#include "config.h"

/*
 * The body for alert in format: compact JSON, NUL-terminated, owned by the caller (free()).
 * *ret_len is its length without the NUL. The labels people read (slack, teams) are in lang;
 * the alert's message is already; JSON keys and the plain format are the same in every
 * language. Returns 0, -EINVAL for an unknown format, or -ENOMEM.
 */
int kigen_webhook_payload(enum kigen_webhook_format format, enum kigen_language lang,
                          const struct kigen_alert *alert, char **ret_body, size_t *ret_len);

/*
 * Checks a webhook URL before it is used: https:// with a host (libcurl's URL parser,
 * RFC 3986). Writes the reason into errbuf, never the URL or any part of it: it is a secret.
 * Returns 0 or -EINVAL.
 */
int kigen_webhook_check_url(const char *url, char *errbuf, size_t errlen);

#endif
