/*
 * The configuration of SPEC §3. libyaml's event API first builds a small tree of our own:
 * every node keeps its mark for messages, anchors, aliases and tags are refused before
 * anything can expand ("billion laughs"), and nesting is bounded. The tree is then walked
 * against the schema into a struct kigen_config that starts out holding every default, so
 * that a key left out keeps its default and a failure at any point frees one consistent
 * structure.
 *
 * Where SPEC is silent:
 * - a null value (`key:` or `~`) on a scalar key keeps the default, on a list key means an
 *   empty list (entries commented out), on a section means an empty section;
 * - a `probes` section without `targets` keeps the NACCS default targets;
 * - a probe target's name defaults to its host, as a keystore's name defaults to its path;
 * - rule globs use fnmatch(3) with FNM_NOESCAPE, so that an RFC 2253 string can be pasted
 *   as it is, backslash escapes included;
 * - durations are capped at 100 years so that policy arithmetic cannot overflow;
 * - a rule's validity is `Ny`, `Nm` or `NyMm` (m: months), 1 month to 100 years, and after
 *   years at most 11 months; it is kept as written (18m stays 0y18m);
 * - validity, revocation and instructions are rule keys only: `policy` holds their defaults;
 * - holders.admins are plain addresses local@domain, no display name, each once;
 * - alerts.mail.sendmail is a string (one program path, run without a shell and never split)
 *   or a list (argv); "" or [] is off, and so is mail; a number or boolean is refused;
 * - alerts.mail.digest_at defaults to "" (no digest): a daily mail is asked for, not assumed;
 * - alerts.mail.from is free text for the From: header, without control characters;
 * - a webhook's name is required (its url is a secret and cannot stand in for it), its url
 *   must be a secret source, never the URL itself, and `events` must name at least one event
 *   (leave it out for all); the events are those alert.h knows;
 * - revocation.hosts keeps ["*.naccs.jp"] when the section is given without `hosts`, as
 *   probes keeps its targets; each entry is a host glob without scheme, port or path.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "alert.h"
#include "duration.h"
#include "i18n.h"
#include "maint.h"
#include "secret.h"
#include "tz.h"

#define MAX_FILE_SIZE     (1024 * 1024)
#define MAX_DEPTH         64
#define MAX_NODES         100000 /* about 10 MB of tree; a real config has a few thousand */
#define MAX_DURATION      (INT64_C(36500) * 86400)
#define MAX_FAILURES      1000
#define MAX_SOCKET_PATH   107 /* sizeof(sun_path) - 1 on Linux */
#define ZONEINFO_DIR      "/usr/share/zoneinfo/"
#define DEFAULT_TIMEZONE  "Asia/Tokyo"
#define DEFAULT_FILE_SIZE (UINT64_C(16) << 20)
#define DEFAULT_CRL_SIZE  (UINT64_C(20) << 20)
/* SPEC §13: only the NACCS hosts are ever asked, unless revocation.hosts says otherwise. */
#define DEFAULT_REVOCATION_HOSTS "*.naccs.jp"

enum node_type {
    NODE_SCALAR,
    NODE_SEQ,
    NODE_MAP,
};

struct node {
    enum node_type type;
    size_t line;   /* 1-based */
    size_t column; /* 1-based */
    char *value;   /* scalar: NUL-terminated copy; len counts bytes, an inner NUL included */
    size_t len;
    bool is_plain;      /* unquoted: the only style that can be a boolean, integer or null */
    struct node **kids; /* list: items; mapping: key, value, key, value, ... */
    size_t n;
    size_t cap;
};

struct ctx {
    const char *name; /* the file name used in messages */
    char *errbuf;
    size_t errlen;
    enum kigen_language lang; /* of the reasons (i18n.h); the FILE:LINE:COLUMN: PATH: stays */
    char path[512];           /* the key path of the node being read: "keystores[0].labels" */
    size_t path_len;
};

/* An entry of a uniqueness check: a name, where it was written, and its file order. */
struct named {
    const char *s;
    size_t len;
    size_t idx;
    const struct node *at;
};

/* Options of get_string(). */
enum {
    STR_EMPTY_IS_OFF = 1 << 0, /* "" clears the value (off) instead of being an error */
};

/* Messages. */

static int vfail(struct ctx *c, size_t line, size_t column, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int vfail(struct ctx *c, size_t line, size_t column, const char *fmt, va_list ap)
{
    int off;

    if (!c->errbuf || c->errlen == 0)
        return -EINVAL;
    off = snprintf(c->errbuf, c->errlen, "%s:%zu:%zu: %s%s", c->name, line, column, c->path,
                   c->path_len > 0 ? ": " : "");
    if (off >= 0 && (size_t)off < c->errlen)
        vsnprintf(c->errbuf + off, c->errlen - (size_t)off, kigen_tr(c->lang, fmt), ap);
    return -EINVAL;
}

/* Writes "FILE:LINE:COLUMN: PATH: reason" about node n and returns -EINVAL. */
static int fail(struct ctx *c, const struct node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, const struct node *n, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vfail(c, n->line, n->column, fmt, ap);
    va_end(ap);
    return r;
}

static int fail_at(struct ctx *c, size_t line, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct ctx *c, size_t line, size_t column, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = vfail(c, line, column, fmt, ap);
    va_end(ap);
    return r;
}

/* An error about the file as a whole: "FILE: reason". Returns r. */
static int fail_file(struct ctx *c, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_file(struct ctx *c, int r, const char *fmt, ...)
{
    va_list ap;
    int off;

    if (!c->errbuf || c->errlen == 0)
        return r;
    off = snprintf(c->errbuf, c->errlen, "%s: ", c->name);
    if (off >= 0 && (size_t)off < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->errbuf + off, c->errlen - (size_t)off, kigen_tr(c->lang, fmt), ap);
        va_end(ap);
    }
    return r;
}

/*
 * Copies user text into buf for a message: control bytes escaped, cut at a character
 * boundary after 60 bytes, so that a message stays one readable line.
 */
static const char *escape(const char *s, size_t len, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (o + 8 >= size || (i >= 60 && (ch & 0xc0) != 0x80)) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            if (ch == '"' || ch == '\\') {
                buf[o++] = (char)ch;
            } else {
                buf[o++] = 'x';
                buf[o++] = hex[ch >> 4];
                buf[o++] = hex[ch & 0xf];
            }
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o] = '\0';
    return buf;
}

/* The key path. */

static size_t path_push_key(struct ctx *c, const char *key, size_t len)
{
    size_t old = c->path_len;
    char buf[128];
    int w;

    w = snprintf(c->path + old, sizeof(c->path) - old, "%s%s", old > 0 ? "." : "",
                 escape(key, len, buf, sizeof(buf)));
    if (w > 0)
        c->path_len = old + (size_t)w < sizeof(c->path) ? old + (size_t)w : sizeof(c->path) - 1;
    return old;
}

static size_t path_push_index(struct ctx *c, size_t i)
{
    size_t old = c->path_len;
    int w;

    w = snprintf(c->path + old, sizeof(c->path) - old, "[%zu]", i);
    if (w > 0)
        c->path_len = old + (size_t)w < sizeof(c->path) ? old + (size_t)w : sizeof(c->path) - 1;
    return old;
}

static void path_pop(struct ctx *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

/* The tree. */

static void node_free(struct node *n)
{
    size_t i;

    if (!n)
        return;
    /* Recursion is bounded by MAX_DEPTH. */
    for (i = 0; i < n->n; i++)
        node_free(n->kids[i]);
    free(n->kids);
    free(n->value);
    free(n);
}

static int node_add(struct node *parent, struct node *kid)
{
    struct node **kids;
    size_t cap;

    if (parent->n == parent->cap) {
        cap = parent->cap ? parent->cap * 2 : 8;
        kids = reallocarray(parent->kids, cap, sizeof(*kids));
        if (!kids)
            return -ENOMEM;
        parent->kids = kids;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

static int oom(struct ctx *c)
{
    return fail_file(c, -ENOMEM, N_("out of memory"));
}

static int syntax_error(struct ctx *c, const yaml_parser_t *p, const char *text, size_t len)
{
    size_t i, line = 1, column = 1;
    const char *problem = p->problem ? p->problem : "unknown problem";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return oom(c);
    case YAML_READER_ERROR:
        /* The reader reports a byte offset, not a mark. */
        for (i = 0; i < p->problem_offset && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        return fail_at(c, line, column, N_("cannot read YAML: %s"), problem);
    default:
        break;
    }
    if (p->context)
        return fail_at(c, p->problem_mark.line + 1, p->problem_mark.column + 1,
                       N_("YAML syntax error: %s (%s)"), problem, p->context);
    return fail_at(c, p->problem_mark.line + 1, p->problem_mark.column + 1,
                   N_("YAML syntax error: %s"), problem);
}

/*
 * Anchors, aliases and tags are refused outright: nothing in the schema needs them, and
 * without aliases a "billion laughs" document has nothing to expand.
 */
static int check_event(struct ctx *c, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    size_t line = ev->start_mark.line + 1, column = ev->start_mark.column + 1;

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return fail_at(c, line, column, N_("YAML aliases are not supported"));
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default:
        break;
    }
    if (anchor)
        return fail_at(c, line, column, N_("YAML anchors are not supported"));
    if (tag)
        return fail_at(c, line, column, N_("YAML tags are not supported"));
    return 0;
}

static int node_new(const yaml_event_t *ev, struct node **ret_node)
{
    struct node *n;

    n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->line = ev->start_mark.line + 1;
    n->column = ev->start_mark.column + 1;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n->type = NODE_SCALAR;
        n->len = ev->data.scalar.length;
        n->is_plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->value = malloc(n->len + 1);
        if (!n->value) {
            free(n);
            return -ENOMEM;
        }
        memcpy(n->value, ev->data.scalar.value, n->len);
        n->value[n->len] = '\0';
        break;
    case YAML_SEQUENCE_START_EVENT:
        n->type = NODE_SEQ;
        break;
    default:
        n->type = NODE_MAP;
        break;
    }
    *ret_node = n;
    return 0;
}

/*
 * Parses text into a tree. *ret_root is NULL for a stream without a document. Costs one
 * node per scalar and collection, at most MAX_NODES of them.
 */
static int build_tree(struct ctx *c, const char *text, size_t len, struct node **ret_root)
{
    yaml_parser_t parser;
    yaml_event_t event;
    struct node *stack[MAX_DEPTH];
    struct node *root = NULL, *n = NULL, *parent;
    size_t depth = 0, docs = 0, nodes = 0;
    bool has_event = false, done = false;
    int r = 0;

    if (!yaml_parser_initialize(&parser))
        return oom(c);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &event)) {
            r = syntax_error(c, &parser, text, len);
            goto out;
        }
        has_event = true;
        switch (event.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (docs++ > 0) {
                r = fail_at(c, event.start_mark.line + 1, event.start_mark.column + 1,
                            N_("only one YAML document is allowed"));
                goto out;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_ALIAS_EVENT:
        case YAML_SCALAR_EVENT:
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            r = check_event(c, &event);
            if (r < 0)
                goto out;
            if (++nodes > MAX_NODES) {
                r = fail_at(c, event.start_mark.line + 1, event.start_mark.column + 1,
                            N_("more than %d YAML nodes"), MAX_NODES);
                goto out;
            }
            parent = depth > 0 ? stack[depth - 1] : NULL;
            if (event.type != YAML_SCALAR_EVENT) {
                if (depth == MAX_DEPTH) {
                    r = fail_at(c, event.start_mark.line + 1, event.start_mark.column + 1,
                                N_("nested deeper than %d levels"), MAX_DEPTH);
                    goto out;
                }
                if (parent && parent->type == NODE_MAP && parent->n % 2 == 0) {
                    r = fail_at(c, event.start_mark.line + 1, event.start_mark.column + 1,
                                N_("a mapping key must be a string"));
                    goto out;
                }
            }
            r = node_new(&event, &n);
            if (r < 0) {
                r = oom(c);
                goto out;
            }
            if (parent) {
                r = node_add(parent, n);
                if (r < 0) {
                    r = oom(c);
                    goto out;
                }
            } else {
                root = n;
            }
            if (n->type != NODE_SCALAR)
                stack[depth++] = n;
            n = NULL;
            break;
        default:
            break;
        }
        yaml_event_delete(&event);
        has_event = false;
    }
    *ret_root = root;
    root = NULL;
out:
    if (has_event)
        yaml_event_delete(&event);
    yaml_parser_delete(&parser);
    node_free(n);
    node_free(root);
    return r;
}

/* Freeing; every function leaves a zeroed or partly filled structure safe to free. */

static void strv_done(struct kigen_strv *sv)
{
    size_t i;

    for (i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = 0;
}

static int strv_single(struct kigen_strv *sv, const char *s)
{
    sv->v = calloc(1, sizeof(*sv->v));
    if (!sv->v)
        return -ENOMEM;
    sv->n = 1;
    sv->v[0] = strdup(s);
    return sv->v[0] ? 0 : -ENOMEM;
}

static void policy_done(struct kigen_policy *p)
{
    free(p->notify_before);
    free(p->renew_url);
    free(p->reissue_note);
    free(p->instructions);
}

static void rule_done(struct kigen_rule *rule)
{
    free(rule->keystore);
    free(rule->issuer);
    free(rule->subject);
    policy_done(&rule->set);
}

static void keystore_done(struct kigen_keystore *ks)
{
    size_t i;

    free(ks->name);
    free(ks->path);
    strv_done(&ks->include);
    strv_done(&ks->exclude);
    for (i = 0; i < ks->n_passwords; i++)
        free(ks->passwords[i].value);
    free(ks->passwords);
    for (i = 0; i < ks->labels.n; i++) {
        free(ks->labels.v[i].name);
        free(ks->labels.v[i].value);
    }
    free(ks->labels.v);
}

static void targets_free(struct kigen_probes *probes)
{
    size_t i;

    for (i = 0; i < probes->n_targets; i++) {
        free(probes->targets[i].name);
        free(probes->targets[i].host);
        free(probes->targets[i].ca_file);
    }
    free(probes->targets);
    probes->targets = NULL;
    probes->n_targets = 0;
}

static void alerts_done(struct kigen_alerts *alerts)
{
    size_t i;

    free(alerts->syslog);
    free(alerts->exec);
    free(alerts->textfile);
    strv_done(&alerts->mail.sendmail);
    free(alerts->mail.from);
    for (i = 0; i < alerts->n_webhooks; i++) {
        free(alerts->webhooks[i].name);
        free(alerts->webhooks[i].url.value);
        free(alerts->webhooks[i].proxy);
        free(alerts->webhooks[i].ca_file);
        kigen_secret_free(alerts->webhooks[i].url_secret);
    }
    free(alerts->webhooks);
}

static void maintenance_free(struct kigen_config *config)
{
    size_t i;

    for (i = 0; i < config->n_maintenance; i++) {
        free(config->maintenance[i].name);
        strv_done(&config->maintenance[i].targets);
        free(config->maintenance[i].timezone);
    }
    free(config->maintenance);
    config->maintenance = NULL;
    config->n_maintenance = 0;
}

/* Reading nodes. */

static bool is_null(const struct node *n)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
    size_t i;

    if (n->type != NODE_SCALAR || !n->is_plain)
        return false;
    for (i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(n->value, nulls[i]) == 0)
            return true;
    return false;
}

static bool key_is(const struct node *k, const char *s)
{
    return k->len == strlen(s) && memcmp(k->value, s, k->len) == 0;
}

/* User text quoted for a message. */
static const char *quote_str(const char *s, size_t len, char *buf, size_t size)
{
    char tmp[256];

    snprintf(buf, size, "\"%s\"", escape(s, len, tmp, sizeof(tmp)));
    return buf;
}

static const char *quote(const struct node *n, char *buf, size_t size)
{
    return quote_str(n->value, n->len, buf, size);
}

/* The value of n for a message: "text", null, a list or a mapping. */
static const char *describe(const struct ctx *c, const struct node *n, char *buf, size_t size)
{
    if (n->type == NODE_MAP)
        return _(c->lang, "a mapping");
    if (n->type == NODE_SEQ)
        return _(c->lang, "a list");
    if (is_null(n))
        return "null";
    return quote(n, buf, size);
}

static int type_error(struct ctx *c, const struct node *n, const char *expected)
{
    char buf[300];

    return fail(c, n, N_("expected %s, got %s"), kigen_tr(c->lang, expected),
                describe(c, n, buf, sizeof(buf)));
}

static int unknown_key(struct ctx *c, const struct node *k, size_t parent_len)
{
    char buf[300];

    path_pop(c, parent_len);
    return fail(c, k, N_("unknown key %s"), quote(k, buf, sizeof(buf)));
}

static int missing_key(struct ctx *c, const struct node *map, const char *key)
{
    return fail(c, map, N_("missing key \"%s\""), key);
}

/* Keys that must not be null, e.g. a keystore's path. */
static int require_value(struct ctx *c, const struct node *n)
{
    if (is_null(n))
        return fail(c, n, N_("a value is required"));
    return 0;
}

/* Plain ASCII: tolower() depends on the locale. */
static int tolower_ascii(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : (unsigned char)ch;
}

/* Whether the first n bytes of a and b match, ASCII case-insensitively (n: at most). */
static bool eq_fold_n(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n && (a[i] || b[i]); i++)
        if (tolower_ascii(a[i]) != tolower_ascii(b[i]))
            return false;
    return true;
}

static bool eq_fold(const char *a, const char *b)
{
    return eq_fold_n(a, b, SIZE_MAX);
}

static int name_cmp(const struct named *x, const struct named *y, bool fold)
{
    size_t i, n = x->len < y->len ? x->len : y->len;
    int d = 0;

    if (fold) {
        for (i = 0; i < n && d == 0; i++)
            d = tolower_ascii(x->s[i]) - tolower_ascii(y->s[i]);
    } else {
        d = memcmp(x->s, y->s, n);
    }
    if (d == 0 && x->len != y->len)
        d = x->len < y->len ? -1 : 1;
    return d;
}

static int named_cmp_exact(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int d = name_cmp(x, y, false);

    return d ? d : (x->idx > y->idx) - (x->idx < y->idx);
}

static int named_cmp_fold(const void *a, const void *b)
{
    const struct named *x = a, *y = b;
    int d = name_cmp(x, y, true);

    return d ? d : (x->idx > y->idx) - (x->idx < y->idx);
}

/*
 * Sorts v (O(n log n), so that a long list stays cheap) and returns the entry that repeats
 * an earlier name and comes first in file order, with the earliest entry of that name in
 * *ret_first; NULL when all names differ. fold compares ASCII letters case-insensitively.
 */
static const struct named *find_duplicate(struct named *v, size_t n, bool fold,
                                          const struct named **ret_first)
{
    const struct named *dup = NULL, *first = NULL, *group;
    size_t i;

    if (n < 2)
        return NULL;
    qsort(v, n, sizeof(*v), fold ? named_cmp_fold : named_cmp_exact);
    group = &v[0];
    for (i = 1; i < n; i++) {
        if (name_cmp(&v[i - 1], &v[i], fold) != 0) {
            group = &v[i];
            continue;
        }
        if (!dup || v[i].idx < dup->idx) {
            dup = &v[i];
            first = group;
        }
    }
    *ret_first = first;
    return dup;
}

/* Checks that n is a mapping without duplicate keys. */
static int expect_map(struct ctx *c, const struct node *n)
{
    const struct named *dup, *first = NULL;
    struct named *keys = NULL;
    char buf[300];
    size_t i;
    int r = 0;

    if (n->type != NODE_MAP)
        return type_error(c, n, N_("a mapping"));
    if (n->n < 4)
        return 0;
    keys = calloc(n->n / 2, sizeof(*keys));
    if (!keys)
        return oom(c);
    for (i = 0; i < n->n / 2; i++) {
        keys[i].s = n->kids[2 * i]->value;
        keys[i].len = n->kids[2 * i]->len;
        keys[i].idx = i;
        keys[i].at = n->kids[2 * i];
    }
    dup = find_duplicate(keys, n->n / 2, false, &first);
    if (dup)
        r = fail(c, dup->at, N_("duplicate key %s (first at line %zu)"),
                 quote(dup->at, buf, sizeof(buf)), first->at->line);
    free(keys);
    return r;
}

static int expect_seq(struct ctx *c, const struct node *n)
{
    if (n->type != NODE_SEQ)
        return type_error(c, n, N_("a list"));
    return 0;
}

/*
 * Reads a string into *dst, replacing what was there. Null keeps *dst; "" is an error unless
 * STR_EMPTY_IS_OFF, which sets *dst to NULL.
 */
static int get_string(struct ctx *c, const struct node *n, unsigned flags, char **dst)
{
    char *s;

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("a string"));
    if (is_null(n))
        return 0;
    if (n->len == 0) {
        if (!(flags & STR_EMPTY_IS_OFF))
            return fail(c, n, N_("must not be empty"));
        free(*dst);
        *dst = NULL;
        return 0;
    }
    if (memchr(n->value, '\0', n->len))
        return fail(c, n, N_("must not contain a NUL character"));
    s = strdup(n->value);
    if (!s)
        return oom(c);
    free(*dst);
    *dst = s;
    return 0;
}

/* A string that must be given: null and "" are errors. */
static int get_required_string(struct ctx *c, const struct node *n, char **dst)
{
    int r;

    r = require_value(c, n);
    if (r == 0)
        r = get_string(c, n, 0, dst);
    return r;
}

/* YAML 1.1 booleans, as operators write them; 1.1's y and n are left out on purpose. */
static bool parse_bool(const struct node *n, bool *ret)
{
    static const char *const yes[] = { "true", "yes", "on" };
    static const char *const no[] = { "false", "no", "off" };
    size_t i;

    if (n->type != NODE_SCALAR || !n->is_plain)
        return false;
    for (i = 0; i < 3; i++) {
        if (eq_fold(n->value, yes[i])) {
            *ret = true;
            return true;
        }
        if (eq_fold(n->value, no[i])) {
            *ret = false;
            return true;
        }
    }
    return false;
}

static int get_bool(struct ctx *c, const struct node *n, bool *dst)
{
    char buf[300];

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("a boolean"));
    if (is_null(n))
        return 0;
    if (!n->is_plain)
        return fail(c, n, N_("expected a boolean (true or false), got the quoted string %s"),
                    quote(n, buf, sizeof(buf)));
    if (!parse_bool(n, dst))
        return fail(c, n, N_("expected a boolean (true or false), got %s"),
                    quote(n, buf, sizeof(buf)));
    return 0;
}

/*
 * Reads a decimal integer in [lo, hi]. Leading zeros are refused: YAML 1.1 reads 0443 as
 * octal, and a value that means two things is better rejected than guessed.
 */
static int get_uint(struct ctx *c, const struct node *n, uint64_t lo, uint64_t hi, uint64_t *dst)
{
    char buf[300];
    uint64_t v = 0;
    size_t i;
    bool overflow = false;

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("an integer"));
    if (is_null(n))
        return 0;
    if (!n->is_plain)
        return fail(c, n, N_("expected an integer, got the quoted string %s"),
                    quote(n, buf, sizeof(buf)));
    for (i = 0; i < n->len; i++) {
        char ch = n->value[i];

        if (ch < '0' || ch > '9' || (i == 0 && ch == '0' && n->len > 1))
            return fail(c, n, N_("expected a decimal integer, got %s"), quote(n, buf, sizeof(buf)));
        if (v > (UINT64_MAX - (uint64_t)(ch - '0')) / 10)
            overflow = true;
        else
            v = v * 10 + (uint64_t)(ch - '0');
    }
    if (overflow || v < lo || v > hi)
        return fail(c, n, N_("%s is out of range (%llu to %llu)"), quote(n, buf, sizeof(buf)),
                    (unsigned long long)lo, (unsigned long long)hi);
    *dst = v;
    return 0;
}

/* Reads a duration of at least min seconds (0 or 1) into *dst; null keeps *dst. */
static int get_duration(struct ctx *c, const struct node *n, int64_t min, int64_t *dst)
{
    char buf[300];
    int64_t v = 0;
    int r;

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("a duration"));
    if (is_null(n))
        return 0;
    r = strlen(n->value) == n->len ? kigen_duration_parse(n->value, &v) : -EINVAL;
    if (r == -ERANGE || (r == 0 && v > MAX_DURATION))
        return fail(c, n, N_("duration %s is too long (at most 36500d)"),
                    quote(n, buf, sizeof(buf)));
    if (r < 0)
        return fail(c, n, N_("bad duration %s (use an integer and one of s m h d w, e.g. 28d)"),
                    quote(n, buf, sizeof(buf)));
    if (v < min)
        return fail(c, n, N_("must be longer than 0s"));
    *dst = v;
    return 0;
}

static int get_size(struct ctx *c, const struct node *n, uint64_t *dst)
{
    char buf[300];
    uint64_t v = 0;
    int r;

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("a size"));
    if (is_null(n))
        return 0;
    r = strlen(n->value) == n->len ? kigen_size_parse(n->value, &v) : -EINVAL;
    if (r == -ERANGE)
        return fail(c, n, N_("size %s is too large"), quote(n, buf, sizeof(buf)));
    if (r < 0)
        return fail(c, n, N_("bad size %s (use KiB, MiB or GiB)"), quote(n, buf, sizeof(buf)));
    if (v == 0)
        return fail(c, n, N_("must be larger than 0"));
    *dst = v;
    return 0;
}

/* Reports the first repeated name of a list, under path LIST[i]. */
static int check_unique(struct ctx *c, struct named *names, size_t n, const char *what)
{
    const struct named *dup, *first = NULL;
    char buf[300];
    size_t saved;
    int r;

    dup = find_duplicate(names, n, false, &first);
    if (!dup)
        return 0;
    saved = path_push_index(c, dup->idx);
    r = fail(c, dup->at, N_("duplicate %s %s (first at line %zu)"), kigen_tr(c->lang, what),
             quote_str(dup->s, dup->len, buf, sizeof(buf)), first->at->line);
    path_pop(c, saved);
    return r;
}

typedef int (*parse_item_fn)(struct ctx *c, const struct node *n, void *item,
                             struct named *ret_name);

/*
 * Every list of the schema: a sequence whose items are each parsed by parse_item, under the
 * path LIST[i]. ret_items, the address of the list's pointer (struct X **), gets one item of
 * size bytes per entry; a null or empty sequence leaves it as it is. *ret_n counts the items
 * from the start, so that freeing the configuration frees those parsed before an error too.
 * When what is not NULL, the names parse_item returns must be unique (what names them in
 * errors); otherwise parse_item may leave its name unset.
 */
static int parse_named_list(struct ctx *c, const struct node *n, size_t size,
                            parse_item_fn parse_item, const char *what, void *ret_items,
                            size_t *ret_n)
{
    struct named *names = NULL;
    char *items = NULL;
    int r = 0;

    if (!is_null(n))
        r = expect_seq(c, n);
    if (r < 0 || is_null(n) || n->n == 0)
        return r;
    items = calloc(n->n, size);
    names = calloc(n->n, sizeof(*names));
    if (!items || !names) {
        free(items);
        free(names);
        return oom(c);
    }
    memcpy(ret_items, &items, sizeof(items));
    *ret_n = n->n;
    for (size_t i = 0; i < n->n && r == 0; i++) {
        size_t saved = path_push_index(c, i);

        r = parse_item(c, n->kids[i], items + i * size, &names[i]);
        names[i].idx = i;
        path_pop(c, saved);
    }
    if (r == 0 && what)
        r = check_unique(c, names, n->n, what);
    free(names);
    return r;
}

static int parse_string_item(struct ctx *c, const struct node *n, void *item,
                             struct named *ret_name)
{
    char **s = item;
    int r;

    r = get_required_string(c, n, s);
    if (r == 0)
        *ret_name = (struct named){ .s = *s, .len = strlen(*s), .at = n };
    return r;
}

/* A list of strings replacing *sv; unique when what is not NULL. Null is the empty list. */
static int get_strv_named(struct ctx *c, const struct node *n, const char *what,
                          struct kigen_strv *sv)
{
    if (!is_null(n) && n->type != NODE_SEQ)
        return expect_seq(c, n);
    strv_done(sv);
    return parse_named_list(c, n, sizeof(*sv->v), parse_string_item, what, &sv->v, &sv->n);
}

static int get_strv(struct ctx *c, const struct node *n, struct kigen_strv *sv)
{
    return get_strv_named(c, n, NULL, sv);
}

/* Checks of values. */

static bool is_ident(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return false;
    for (i = 0; i < len; i++) {
        char ch = s[i];
        bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';

        if (!alpha && (i == 0 || ch < '0' || ch > '9'))
            return false;
    }
    return true;
}

/* A host name or address as written in a URL: no space, slash, @ or control character. */
static bool is_host(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return false;
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch <= ' ' || ch == 0x7f || ch == '/' || ch == '@' || ch == '?' || ch == '#')
            return false;
    }
    return true;
}

static bool parse_port(const char *s, uint16_t *ret_port)
{
    unsigned long v = 0;
    size_t i;

    if (s[0] == '\0' || s[0] == '0' || strlen(s) > 5)
        return false;
    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *ret_port = (uint16_t)v;
    return true;
}

/* "host:port" or "[v6]:port". */
static bool is_host_port(const char *s)
{
    const char *colon = strrchr(s, ':');
    size_t len;
    uint16_t port;

    if (!colon || !parse_port(colon + 1, &port))
        return false;
    len = (size_t)(colon - s);
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
        return is_host(s + 1, len - 2);
    return is_host(s, len) && !memchr(s, ':', len);
}

/*
 * An IANA name that exists as a TZif file under /usr/share/zoneinfo. ".." is refused so
 * that the name cannot leave the directory. The zone is loaded as the maintenance windows
 * and the report will load it, so that a name accepted here is one they can use: zone.tab
 * and friends are no TZif file, and the right/ zones count leap seconds.
 */
static int check_timezone(struct ctx *c, const struct node *n, const char *name)
{
    char path[sizeof(ZONEINFO_DIR) + 256], buf[300];
    struct kigen_tz *tz = NULL;
    struct stat st;
    size_t i, len = strlen(name);
    int r = 0;

    for (i = 0; i < len; i++) {
        char ch = name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("/_+-.", ch)))
            break;
    }
    if (i < len || len > 255 || name[0] == '/' || strstr(name, "..")) {
        r = fail(c, n, N_("bad timezone %s (use an IANA name such as Asia/Tokyo)"),
                 quote(n, buf, sizeof(buf)));
        goto out;
    }
    snprintf(path, sizeof(path), "%s%s", ZONEINFO_DIR, name);
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = fail(c, n, N_("unknown timezone %s (not in %s)"), quote(n, buf, sizeof(buf)),
                 ZONEINFO_DIR);
        goto out;
    }
    r = kigen_tz_load(name, &tz);
    if (r == -ENOMEM)
        r = oom(c);
    else if (r == -EOPNOTSUPP)
        r = fail(c, n,
                 N_("timezone %s counts leap seconds, which kigen does not (use the zone "
                    "without right/)"),
                 quote(n, buf, sizeof(buf)));
    else if (r < 0)
        r = fail(c, n, N_("unknown timezone %s (%s%s is not a time zone file)"),
                 quote(n, buf, sizeof(buf)), ZONEINFO_DIR, name);
    kigen_tz_free(tz);
out:
    return r;
}

static int get_timezone(struct ctx *c, const struct node *n, char **dst)
{
    int r;

    r = get_string(c, n, 0, dst);
    if (r == 0 && !is_null(n))
        r = check_timezone(c, n, *dst);
    return r;
}

/* Full English names or their first three letters, any case; 0 = Sunday as in struct tm. */
static int parse_weekday(const char *s)
{
    static const char *const days[] = { "sunday",   "monday", "tuesday", "wednesday",
                                        "thursday", "friday", "saturday" };
    int i;

    for (i = 0; i < 7; i++)
        if (eq_fold(s, days[i]) || (strlen(s) == 3 && eq_fold_n(s, days[i], 3)))
            return i;
    return -1;
}

static int get_every(struct ctx *c, const struct node *n, struct kigen_every *ret)
{
    static const char *const nths[] = { "first", "second", "third", "fourth" };
    char copy[64], buf[300], *words[3] = { NULL }, *save = NULL, *w;
    struct kigen_every e = { .kind = KIGEN_EVERY_DAILY, .nth = 0, .weekday = -1 };
    size_t nw = 0;
    int i;

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("a schedule"));
    if (n->len >= sizeof(copy) || strlen(n->value) != n->len)
        goto bad;
    memcpy(copy, n->value, n->len + 1);
    for (w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (nw == 2)
            goto bad;
        words[nw++] = w;
    }
    if (nw == 1 && eq_fold(words[0], "daily"))
        goto good;
    if (nw != 2)
        goto bad;
    e.weekday = parse_weekday(words[1]);
    if (e.weekday < 0)
        goto bad;
    if (eq_fold(words[0], "weekly")) {
        e.kind = KIGEN_EVERY_WEEKLY;
        goto good;
    }
    e.kind = KIGEN_EVERY_MONTHLY;
    if (eq_fold(words[0], "last")) {
        e.nth = -1;
        goto good;
    }
    for (i = 0; i < 4; i++)
        if (eq_fold(words[0], nths[i]))
            e.nth = i + 1;
    if (e.nth == 0)
        goto bad;
good:
    *ret = e;
    return 0;
bad:
    return fail(c, n,
                N_("bad schedule %s (use daily, weekly <weekday> or "
                   "first|second|third|fourth|last <weekday>)"),
                quote(n, buf, sizeof(buf)));
}

/* "HH:MM" (or "H:MM"), 24-hour clock. */
static int get_at(struct ctx *c, const struct node *n, int *ret_minute)
{
    const char *s = n->value;
    size_t i, colon = n->len == 4 ? 1 : 2;
    char buf[300];
    int h = 0, m = 0;

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("a time"));
    if (n->len != 4 && n->len != 5)
        goto bad;
    for (i = 0; i < n->len; i++) {
        if (i == colon) {
            if (s[i] != ':')
                goto bad;
        } else if (s[i] < '0' || s[i] > '9') {
            goto bad;
        } else if (i < colon) {
            h = h * 10 + (s[i] - '0');
        } else {
            m = m * 10 + (s[i] - '0');
        }
    }
    if (h > 23 || m > 59)
        goto bad;
    *ret_minute = h * 60 + m;
    return 0;
bad:
    return fail(c, n, N_("bad time %s (use HH:MM, 24-hour clock)"), quote(n, buf, sizeof(buf)));
}

/*
 * `5y1m`, `5y` or `18m`: calendar years and months, for a register row that gives only the
 * date of issue. m means months here, unlike in durations.
 */
static int get_validity(struct ctx *c, const struct node *n, struct kigen_validity *dst)
{
    const char *s = n->value;
    long v[2] = { 0, 0 };
    char buf[300];
    size_t i = 0, start;
    int part = 0; /* 1 after the years, 2 after the months */

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("a validity"));
    if (is_null(n))
        return 0;
    while (i < n->len) {
        long x = 0;

        /* Five digits are more than 100 years in any unit. */
        for (start = i; i < n->len && s[i] >= '0' && s[i] <= '9' && i - start < 5; i++)
            x = x * 10 + (s[i] - '0');
        if (i == start || i == n->len)
            goto bad;
        if (s[i] >= '0' && s[i] <= '9')
            goto too_long;
        if (s[i] == 'y' && part == 0)
            part = 1;
        else if (s[i] == 'm' && part < 2)
            part = 2;
        else
            goto bad;
        v[part - 1] = x;
        i++;
    }
    if (part == 0)
        goto bad;
    if (v[0] > 0 && v[1] > 11)
        return fail(c, n, N_("validity %s has more than 11 months after the years"),
                    quote(n, buf, sizeof(buf)));
    if (v[0] * 12 + v[1] > 1200)
        goto too_long;
    if (v[0] * 12 + v[1] == 0)
        return fail(c, n, N_("validity %s must be at least one month"), quote(n, buf, sizeof(buf)));
    dst->years = (int)v[0];
    dst->months = (int)v[1];
    return 0;
too_long:
    return fail(c, n, N_("validity %s is too long (at most 100y)"), quote(n, buf, sizeof(buf)));
bad:
    return fail(c, n,
                N_("bad validity %s (use years and months, e.g. 5y1m, 5y or 18m; m means months "
                   "here)"),
                quote(n, buf, sizeof(buf)));
}

/* The index of s in names, or -1. */
static int find_choice(const char *const *names, size_t count, const char *s, size_t len)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return (int)i;
    return -1;
}

/* "a, b, c" into buf. */
static const char *join_choices(const char *const *names, size_t count, char *buf, size_t size)
{
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < count && off < size; i++) {
        int w = snprintf(buf + off, size - off, "%s%s", i > 0 ? ", " : "", names[i]);

        if (w > 0)
            off += (size_t)w;
    }
    return buf;
}

/* Fails with "unknown WHAT "x" (one of a, b, c)". */
static int unknown_choice(struct ctx *c, const struct node *n, const char *what,
                          const char *const *names, size_t count)
{
    char list[400], buf[300];

    return fail(c, n, N_("unknown %s %s (one of %s)"), kigen_tr(c->lang, what),
                quote(n, buf, sizeof(buf)), join_choices(names, count, list, sizeof(list)));
}

/* A string that must be one of names; *dst gets its index; null keeps *dst. */
static int get_choice(struct ctx *c, const struct node *n, const char *what,
                      const char *const *names, size_t count, int *dst)
{
    char list[400], buf[300];
    int i;

    if (n->type != NODE_SCALAR)
        return fail(c, n, N_("expected one of %s, got %s"),
                    join_choices(names, count, list, sizeof(list)),
                    describe(c, n, buf, sizeof(buf)));
    if (is_null(n))
        return 0;
    i = find_choice(names, count, n->value, n->len);
    if (i < 0)
        return unknown_choice(c, n, what, names, count);
    *dst = i;
    return 0;
}

/*
 * A list of names from names (at most 32), each at most once, as bits (1u << index) in
 * *dst. Null is the empty list.
 */
static int get_choice_set(struct ctx *c, const struct node *n, const char *what,
                          const char *const *names, size_t count, uint32_t *dst)
{
    struct kigen_strv sv = { NULL, 0 };
    uint32_t bits = 0;
    size_t i, saved;
    int r, k;

    r = get_strv_named(c, n, what, &sv);
    for (i = 0; r == 0 && i < sv.n; i++) {
        k = find_choice(names, count, sv.v[i], strlen(sv.v[i]));
        if (k < 0) {
            saved = path_push_index(c, i);
            r = unknown_choice(c, n->kids[i], what, names, count);
            path_pop(c, saved);
        } else {
            bits |= UINT32_C(1) << k;
        }
    }
    if (r == 0)
        *dst = bits;
    strv_done(&sv);
    return r;
}

/* Checks each string of sv, read from the sequence n, with is_good. */
static int check_each(struct ctx *c, const struct node *n, const struct kigen_strv *sv,
                      bool (*is_good)(const char *s), const char *bad)
{
    char buf[300];
    size_t i, saved;
    int r = 0;

    for (i = 0; r == 0 && i < sv->n; i++) {
        if (is_good(sv->v[i]))
            continue;
        saved = path_push_index(c, i);
        r = fail(c, n->kids[i], "%s %s", kigen_tr(c->lang, bad),
                 quote(n->kids[i], buf, sizeof(buf)));
        path_pop(c, saved);
    }
    return r;
}

/*
 * A plain address local@domain: what a mail header and the register's email column can
 * both carry without quoting. Display names ("Name <a@b>") are left out on purpose: they
 * would need RFC 5322 quoting and RFC 2047 encoding, and a comma would add a recipient.
 */
static bool is_address(const char *s)
{
    const char *at = strchr(s, '@');
    size_t i;

    if (!at || at == s || at[1] == '\0' || strchr(at + 1, '@'))
        return false;
    for (i = 0; s[i]; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch <= ' ' || ch == 0x7f || strchr("<>()[]\\,;:\"", ch))
            return false;
    }
    return true;
}

/* A host glob of revocation.hosts: a host name with * ? [ ], no scheme, port or path. */
static bool is_host_glob(const char *s)
{
    for (size_t i = 0; s[i]; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || strchr("/@#:", s[i]))
            return false;
    return s[0] != '\0';
}

/* What YAML would read as a number or a boolean had it been a plain scalar. */
static bool looks_numeric(const struct node *n)
{
    bool b;

    if (!n->is_plain)
        return false;
    if (parse_bool(n, &b))
        return true;
    return n->len > 0 && strspn(n->value, "0123456789") > 0 &&
           strspn(n->value, "0123456789+-.eE_") == n->len;
}

/*
 * A command: a string (the path of the program, run without a shell and without splitting)
 * or a list of strings (argv). "" or [] is off.
 */
static int get_command(struct ctx *c, const struct node *n, struct kigen_strv *argv)
{
    const char *what = N_("a command (a path, or a list of strings)");

    if (n->type == NODE_SEQ)
        return get_strv(c, n, argv);
    if (n->type != NODE_SCALAR || looks_numeric(n))
        return type_error(c, n, what);
    if (is_null(n))
        return 0;
    strv_done(argv);
    if (n->len == 0)
        return 0;
    if (memchr(n->value, '\0', n->len))
        return fail(c, n, N_("must not contain a NUL character"));
    return strv_single(argv, n->value) < 0 ? oom(c) : 0;
}

/* Text that goes into a mail header: any UTF-8 but no control character. */
static int get_header_text(struct ctx *c, const struct node *n, char **dst)
{
    int r;

    r = get_string(c, n, STR_EMPTY_IS_OFF, dst);
    for (size_t i = 0; r == 0 && *dst && (*dst)[i]; i++)
        if ((unsigned char)(*dst)[i] < ' ' || (*dst)[i] == 0x7f)
            r = fail(c, n, N_("must not contain a control character or line break"));
    return r;
}

/* Sections. */

/* What a parse_key_fn returns for a key it does not know. */
#define KEY_UNKNOWN 1

typedef int (*parse_key_fn)(struct ctx *c, const struct node *k, const struct node *v,
                            void *section);

/*
 * A section: a mapping whose keys parse_key reads into section, each under its key path;
 * null is an empty section, which keeps every default.
 */
static int parse_section(struct ctx *c, const struct node *n, parse_key_fn parse_key, void *section)
{
    size_t i, saved;
    int r;

    if (is_null(n))
        return 0;
    r = expect_map(c, n);
    for (i = 0; r == 0 && i < n->n; i += 2) {
        const struct node *k = n->kids[i], *v = n->kids[i + 1];

        saved = path_push_key(c, k->value, k->len);
        r = parse_key(c, k, v, section);
        if (r == KEY_UNKNOWN)
            r = unknown_key(c, k, saved);
        path_pop(c, saved);
    }
    return r;
}

static int cmp_descending(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x < y) - (x > y);
}

/* notify_before: stored sorted descending and without duplicates, as config.h promises. */
static int parse_notify_item(struct ctx *c, const struct node *n, void *item,
                             struct named *ret_name)
{
    int r;

    (void)ret_name;
    r = require_value(c, n);
    if (r == 0)
        r = get_duration(c, n, 1, item);
    return r;
}

static int get_notify(struct ctx *c, const struct node *n, struct kigen_policy *p)
{
    int64_t *v = NULL;
    size_t i, k = 0, count = 0;
    int r;

    if (!is_null(n) && n->type != NODE_SEQ)
        return expect_seq(c, n);
    r = parse_named_list(c, n, sizeof(*v), parse_notify_item, NULL, &v, &count);
    if (r < 0)
        goto out;
    if (count > 0)
        qsort(v, count, sizeof(*v), cmp_descending);
    for (i = 0; i < count; i++)
        if (k == 0 || v[k - 1] != v[i])
            v[k++] = v[i];
    free(p->notify_before);
    p->notify_before = v;
    p->n_notify = k;
    p->has_notify = true;
    v = NULL;
out:
    free(v);
    return r;
}

/* The keys shared by `policy` and a rule; *ret_known tells whether k was one of them. */
static int get_policy_key(struct ctx *c, const struct node *k, const struct node *v,
                          struct kigen_policy *p, bool *ret_known)
{
    *ret_known = true;
    if (key_is(k, "renew_before"))
        return get_duration(c, v, 0, &p->renew_before);
    if (key_is(k, "critical_before"))
        return get_duration(c, v, 0, &p->critical_before);
    if (key_is(k, "notify_before"))
        return get_notify(c, v, p);
    *ret_known = false;
    return 0;
}

static int parse_match(struct ctx *c, const struct node *n, struct kigen_rule *rule)
{
    size_t i, saved;
    int r = 0;

    if (!is_null(n))
        r = expect_map(c, n);
    for (i = 0; !is_null(n) && i < n->n && r == 0; i += 2) {
        const struct node *k = n->kids[i], *v = n->kids[i + 1];

        saved = path_push_key(c, k->value, k->len);
        if (key_is(k, "keystore"))
            r = get_string(c, v, 0, &rule->keystore);
        else if (key_is(k, "issuer"))
            r = get_string(c, v, 0, &rule->issuer);
        else if (key_is(k, "subject"))
            r = get_string(c, v, 0, &rule->subject);
        else
            r = unknown_key(c, k, saved);
        path_pop(c, saved);
    }
    if (r == 0 && !rule->keystore && !rule->issuer && !rule->subject)
        r = fail(c, n, N_("needs at least one of keystore, issuer or subject"));
    return r;
}

static int parse_rule(struct ctx *c, const struct node *n, void *item, struct named *ret_name)
{
    struct kigen_rule *rule = item;
    const struct node *match = NULL;
    size_t i, saved;
    bool known;
    int r;

    (void)ret_name;
    rule->set.renew_before = -1;
    rule->set.critical_before = -1;
    r = expect_map(c, n);
    for (i = 0; r == 0 && i < n->n; i += 2) {
        const struct node *k = n->kids[i], *v = n->kids[i + 1];

        saved = path_push_key(c, k->value, k->len);
        if (key_is(k, "match")) {
            match = v;
            r = parse_match(c, v, rule);
        } else if (key_is(k, "renew_url")) {
            r = get_string(c, v, STR_EMPTY_IS_OFF, &rule->set.renew_url);
        } else if (key_is(k, "reissue_note")) {
            r = get_string(c, v, STR_EMPTY_IS_OFF, &rule->set.reissue_note);
        } else if (key_is(k, "validity")) {
            r = get_validity(c, v, &rule->set.validity);
        } else if (key_is(k, "revocation")) {
            r = get_bool(c, v, &rule->set.revocation);
            rule->set.has_revocation = r == 0 && !is_null(v);
        } else if (key_is(k, "instructions")) {
            r = get_string(c, v, STR_EMPTY_IS_OFF, &rule->set.instructions);
        } else {
            r = get_policy_key(c, k, v, &rule->set, &known);
            if (r == 0 && !known)
                r = unknown_key(c, k, saved);
        }
        path_pop(c, saved);
    }
    if (r == 0 && !match)
        r = missing_key(c, n, "match");
    return r;
}

static int parse_rules(struct ctx *c, const struct node *n, struct kigen_config *config)
{
    return parse_named_list(c, n, sizeof(*config->rules), parse_rule, NULL, &config->rules,
                            &config->n_rules);
}

static int get_password(struct ctx *c, const struct node *n, struct kigen_password_source *pw)
{
    static const char *const kinds[] = {
        [KIGEN_PASSWORD_FILE] = "file",
        [KIGEN_PASSWORD_CREDENTIAL] = "credential",
        [KIGEN_PASSWORD_ENV] = "env",
    };
    const struct node *k, *v;
    char buf[300];
    size_t saved;
    int r, kind;

    r = expect_map(c, n);
    if (r < 0)
        return r;
    if (n->n != 2)
        return fail(c, n, N_("expected exactly one of file, credential or env"));
    k = n->kids[0];
    v = n->kids[1];
    for (kind = 0; kind < 3; kind++)
        if (key_is(k, kinds[kind]))
            break;
    if (kind == 3)
        return unknown_key(c, k, c->path_len);
    pw->kind = (enum kigen_password_kind)kind;
    saved = path_push_key(c, k->value, k->len);
    r = get_required_string(c, v, &pw->value);
    /* A credential is a file name inside $CREDENTIALS_DIRECTORY, never a path. */
    if (r == 0 && pw->kind == KIGEN_PASSWORD_CREDENTIAL &&
        (strchr(pw->value, '/') || strcmp(pw->value, ".") == 0 || strcmp(pw->value, "..") == 0))
        r = fail(c, v, N_("bad credential name %s (a file name, without /)"),
                 quote(v, buf, sizeof(buf)));
    if (r == 0 && pw->kind == KIGEN_PASSWORD_ENV && !is_ident(v->value, v->len))
        r = fail(c, v, N_("bad environment variable name %s"), quote(v, buf, sizeof(buf)));
    path_pop(c, saved);
    return r;
}

static int parse_password_item(struct ctx *c, const struct node *n, void *item,
                               struct named *ret_name)
{
    (void)ret_name;
    return get_password(c, n, item);
}

static int get_passwords(struct ctx *c, const struct node *n, struct kigen_keystore *ks)
{
    return parse_named_list(c, n, sizeof(*ks->passwords), parse_password_item, NULL, &ks->passwords,
                            &ks->n_passwords);
}

/*
 * Labels become Prometheus labels and KIGEN_LABEL_<NAME> journald fields: names must suit
 * both, must not shadow the labels kigen sets itself, and must differ in more than case.
 */
static int get_labels(struct ctx *c, const struct node *n, struct kigen_labels *labels)
{
    static const char *const reserved[] = { "keystore", "path",   "entry",      "subject",
                                            "issuer",   "serial", "sha256",     "state",
                                            "error",    "holder", "subject_cn", "issuer_cn" };
    const struct named *dup, *first = NULL;
    struct named *names = NULL;
    char buf[300];
    size_t i, j, saved, count;
    int r = 0;

    if (is_null(n))
        return 0;
    r = expect_map(c, n);
    count = n->n / 2;
    if (r < 0 || count == 0)
        return r;
    labels->v = calloc(count, sizeof(*labels->v));
    names = calloc(count, sizeof(*names));
    if (!labels->v || !names) {
        r = oom(c);
        goto out;
    }
    labels->n = count;
    for (i = 0; i < count; i++) {
        const struct node *k = n->kids[2 * i], *v = n->kids[2 * i + 1];

        if (!is_ident(k->value, k->len)) {
            r = fail(c, k,
                     N_("bad label name %s (use letters, digits and _, not starting with a digit)"),
                     quote(k, buf, sizeof(buf)));
            goto out;
        }
        if (k->len >= 2 && k->value[0] == '_' && k->value[1] == '_') {
            r = fail(c, k,
                     N_("label name %s is reserved (names starting with __ belong to Prometheus)"),
                     quote(k, buf, sizeof(buf)));
            goto out;
        }
        for (j = 0; j < sizeof(reserved) / sizeof(reserved[0]); j++) {
            if (key_is(k, reserved[j])) {
                r = fail(c, k, N_("label name %s is reserved (kigen sets it itself)"),
                         quote(k, buf, sizeof(buf)));
                goto out;
            }
        }
        labels->v[i].name = strdup(k->value);
        if (!labels->v[i].name) {
            r = oom(c);
            goto out;
        }
        saved = path_push_key(c, k->value, k->len);
        r = get_required_string(c, v, &labels->v[i].value);
        path_pop(c, saved);
        if (r < 0)
            goto out;
        names[i] = (struct named){ .s = k->value, .len = k->len, .idx = i, .at = k };
    }
    dup = find_duplicate(names, count, true, &first);
    if (dup)
        r = fail(c, dup->at,
                 N_("duplicate label %s (first at line %zu; names differing only in case collide "
                    "as journald fields)"),
                 quote(dup->at, buf, sizeof(buf)), first->at->line);
out:
    free(names);
    return r;
}

static int parse_keystore(struct ctx *c, const struct node *n, void *item, struct named *ret_name)
{
    struct kigen_keystore *ks = item;
    const struct node *name = NULL, *path = NULL;
    char buf[300];
    size_t i, saved;
    int r;

    ks->recursive = true;
    ks->password_sidecar = true;
    ks->follow_symlinks = false;
    ks->max_file_size = DEFAULT_FILE_SIZE;
    if (strv_single(&ks->include, "*") < 0)
        return oom(c);
    r = expect_map(c, n);
    for (i = 0; r == 0 && i < n->n; i += 2) {
        const struct node *k = n->kids[i], *v = n->kids[i + 1];

        saved = path_push_key(c, k->value, k->len);
        if (key_is(k, "name")) {
            name = v;
            r = get_required_string(c, v, &ks->name);
        } else if (key_is(k, "path")) {
            path = v;
            r = get_required_string(c, v, &ks->path);
        } else if (key_is(k, "recursive")) {
            r = get_bool(c, v, &ks->recursive);
        } else if (key_is(k, "include")) {
            r = get_strv(c, v, &ks->include);
        } else if (key_is(k, "exclude")) {
            r = get_strv(c, v, &ks->exclude);
        } else if (key_is(k, "passwords")) {
            r = get_passwords(c, v, ks);
        } else if (key_is(k, "password_sidecar")) {
            r = get_bool(c, v, &ks->password_sidecar);
        } else if (key_is(k, "follow_symlinks")) {
            r = get_bool(c, v, &ks->follow_symlinks);
        } else if (key_is(k, "max_file_size")) {
            r = get_size(c, v, &ks->max_file_size);
        } else if (key_is(k, "labels")) {
            r = get_labels(c, v, &ks->labels);
        } else {
            r = unknown_key(c, k, saved);
        }
        path_pop(c, saved);
    }
    if (r < 0)
        return r;
    if (!path)
        return missing_key(c, n, "path");
    if (!ks->name) {
        ks->name = strdup(ks->path);
        if (!ks->name)
            return oom(c);
    }
    /* The server certificates of probe targets live in the inventory as keystore probe:NAME. */
    if (strncmp(ks->name, KIGEN_PROBE_KEYSTORE_PREFIX, strlen(KIGEN_PROBE_KEYSTORE_PREFIX)) == 0)
        return fail(c, name ? name : path,
                    N_("keystore name '%s' is reserved: names starting with '%s' hold the server "
                       "certificates of probe targets"),
                    escape(ks->name, strlen(ks->name), buf, sizeof(buf)),
                    KIGEN_PROBE_KEYSTORE_PREFIX);
    /* Declared certificates of the holders' register (SPEC §12) live under keystore register. */
    if (strcmp(ks->name, KIGEN_REGISTER_KEYSTORE) == 0)
        return fail(c, name ? name : path,
                    N_("keystore name '%s' is reserved for the certificates declared in the "
                       "holders' register"),
                    KIGEN_REGISTER_KEYSTORE);
    ret_name->s = ks->name;
    ret_name->len = strlen(ks->name);
    ret_name->at = name ? name : path;
    return 0;
}

static int parse_keystores(struct ctx *c, const struct node *n, struct kigen_config *config)
{
    return parse_named_list(c, n, sizeof(*config->keystores), parse_keystore, N_("keystore name"),
                            &config->keystores, &config->n_keystores);
}

static int parse_target(struct ctx *c, const struct node *n, void *item, struct named *ret_name)
{
    struct kigen_probe_target *t = item;
    const struct node *name = NULL, *host = NULL;
    uint64_t port = 443;
    char buf[300];
    size_t i, saved;
    int r;

    t->tls = true;
    t->interval = -1;
    t->timeout = -1;
    r = expect_map(c, n);
    for (i = 0; r == 0 && i < n->n; i += 2) {
        const struct node *k = n->kids[i], *v = n->kids[i + 1];

        saved = path_push_key(c, k->value, k->len);
        if (key_is(k, "name")) {
            name = v;
            r = get_required_string(c, v, &t->name);
        } else if (key_is(k, "host")) {
            host = v;
            r = get_required_string(c, v, &t->host);
            if (r == 0 && !is_host(v->value, v->len))
                r = fail(c, v, N_("bad host %s"), quote(v, buf, sizeof(buf)));
        } else if (key_is(k, "port")) {
            r = get_uint(c, v, 1, 65535, &port);
        } else if (key_is(k, "tls")) {
            r = get_bool(c, v, &t->tls);
        } else if (key_is(k, "ca_file")) {
            r = get_string(c, v, STR_EMPTY_IS_OFF, &t->ca_file);
        } else if (key_is(k, "interval")) {
            r = get_duration(c, v, 1, &t->interval);
        } else if (key_is(k, "timeout")) {
            r = get_duration(c, v, 1, &t->timeout);
        } else {
            r = unknown_key(c, k, saved);
        }
        path_pop(c, saved);
    }
    if (r < 0)
        return r;
    if (!host)
        return missing_key(c, n, "host");
    t->port = (uint16_t)port;
    if (!t->name) {
        t->name = strdup(t->host);
        if (!t->name)
            return oom(c);
    }
    ret_name->s = t->name;
    ret_name->len = strlen(t->name);
    ret_name->at = name ? name : host;
    return 0;
}

static int parse_targets(struct ctx *c, const struct node *n, struct kigen_probes *probes)
{
    if (!is_null(n) && n->type != NODE_SEQ)
        return expect_seq(c, n);
    targets_free(probes);
    return parse_named_list(c, n, sizeof(*probes->targets), parse_target, N_("target name"),
                            &probes->targets, &probes->n_targets);
}

static int get_proxy(struct ctx *c, const struct node *n, char **dst)
{
    char buf[300];
    int r;

    r = get_string(c, n, STR_EMPTY_IS_OFF, dst);
    if (r < 0 || !*dst || strcmp(*dst, "env") == 0)
        return r;
    if (strncmp(*dst, "http://", 7) == 0 && is_host_port(*dst + 7))
        return 0;
    return fail(c, n, N_("bad proxy %s (use \"\", env or http://host:port)"),
                quote(n, buf, sizeof(buf)));
}

static int probes_key(struct ctx *c, const struct node *k, const struct node *v, void *section)
{
    struct kigen_probes *probes = section;
    uint64_t failures = probes->failures_before_alert;
    int r;

    if (key_is(k, "interval"))
        return get_duration(c, v, 1, &probes->interval);
    if (key_is(k, "timeout"))
        return get_duration(c, v, 1, &probes->timeout);
    if (key_is(k, "proxy"))
        return get_proxy(c, v, &probes->proxy);
    /* A `probes` section without `targets` keeps the NACCS default targets. */
    if (key_is(k, "targets"))
        return parse_targets(c, v, probes);
    if (!key_is(k, "failures_before_alert"))
        return KEY_UNKNOWN;
    r = get_uint(c, v, 1, MAX_FAILURES, &failures);
    probes->failures_before_alert = (unsigned)failures;
    return r;
}

static int parse_window(struct ctx *c, const struct node *n, void *item, struct named *ret_name)
{
    struct kigen_maintenance *w = item;
    const struct node *name = NULL;
    bool has_targets = false, has_every = false, has_at = false;
    char buf[300];
    size_t i, saved;
    int r;

    w->duration = -1;
    r = expect_map(c, n);
    for (i = 0; r == 0 && i < n->n; i += 2) {
        const struct node *k = n->kids[i], *v = n->kids[i + 1];

        saved = path_push_key(c, k->value, k->len);
        if (key_is(k, "targets")) {
            has_targets = true;
            r = get_strv(c, v, &w->targets);
        } else if (key_is(k, "timezone")) {
            r = get_timezone(c, v, &w->timezone);
        } else if (key_is(k, "name")) {
            name = v;
            r = get_required_string(c, v, &w->name);
        } else if (key_is(k, "every")) {
            has_every = true;
            r = require_value(c, v);
            if (r == 0)
                r = get_every(c, v, &w->every);
        } else if (key_is(k, "at")) {
            has_at = true;
            r = require_value(c, v);
            if (r == 0)
                r = get_at(c, v, &w->at_minute);
        } else if (key_is(k, "duration")) {
            r = require_value(c, v);
            if (r == 0)
                r = get_duration(c, v, 1, &w->duration);
            /* The longest window the search of maint.c handles. */
            if (r == 0 && w->duration > KIGEN_MAINT_MAX_DURATION)
                r = fail(c, v,
                         N_("duration %s is too long for a maintenance window (at most 366d)"),
                         quote(v, buf, sizeof(buf)));
        } else {
            r = unknown_key(c, k, saved);
        }
        path_pop(c, saved);
    }
    if (r < 0)
        return r;
    if (!name)
        return missing_key(c, n, "name");
    if (!has_targets)
        return missing_key(c, n, "targets");
    if (!has_every)
        return missing_key(c, n, "every");
    if (!has_at)
        return missing_key(c, n, "at");
    if (w->duration < 0)
        return missing_key(c, n, "duration");
    ret_name->s = w->name;
    ret_name->len = strlen(w->name);
    ret_name->at = name;
    return 0;
}

static int parse_maintenance(struct ctx *c, const struct node *n, struct kigen_config *config)
{
    if (!is_null(n) && n->type != NODE_SEQ)
        return expect_seq(c, n);
    maintenance_free(config);
    return parse_named_list(c, n, sizeof(*config->maintenance), parse_window,
                            N_("maintenance window name"), &config->maintenance,
                            &config->n_maintenance);
}

static int mail_key(struct ctx *c, const struct node *k, const struct node *v, void *section)
{
    struct kigen_mail *mail = section;

    if (key_is(k, "sendmail"))
        return get_command(c, v, &mail->sendmail);
    if (key_is(k, "from"))
        return get_header_text(c, v, &mail->from);
    if (key_is(k, "to_holders"))
        return get_bool(c, v, &mail->to_holders);
    if (!key_is(k, "digest_at"))
        return KEY_UNKNOWN;
    /* "" is no digest; null keeps the default. */
    if (v->type == NODE_SCALAR && !v->is_plain && v->len == 0) {
        mail->digest_at = -1;
        return 0;
    }
    return is_null(v) ? 0 : get_at(c, v, &mail->digest_at);
}

/* The URL of a webhook is a secret: it is read like a password and never quoted back. */
static int get_secret(struct ctx *c, const struct node *n, struct kigen_password_source *src)
{
    int r;

    r = require_value(c, n);
    if (r == 0 && n->type == NODE_SCALAR)
        r = fail(c, n,
                 N_("expected a secret source, { file | credential | env: ... }; the URL itself "
                    "does not belong in the configuration"));
    if (r == 0)
        r = get_password(c, n, src);
    return r;
}

_Static_assert(KIGEN_EVENT_COUNT <= 32, "struct kigen_webhook.events holds one bit per event");

/* A webhook while it is read: where its required keys were written. */
struct webhook_read {
    struct kigen_webhook *w;
    const struct node *name;
    const struct node *url;
};

static int webhook_key(struct ctx *c, const struct node *k, const struct node *v, void *section)
{
    static const char *const formats[] = {
        [KIGEN_WEBHOOK_SLACK] = "slack",
        [KIGEN_WEBHOOK_TEAMS] = "teams",
        [KIGEN_WEBHOOK_JSON] = "json",
    };
    const char *events[KIGEN_EVENT_COUNT];
    struct webhook_read *wr = section;
    struct kigen_webhook *w = wr->w;
    int r, format = (int)w->format;

    if (key_is(k, "name")) {
        wr->name = v;
        return get_required_string(c, v, &w->name);
    }
    if (key_is(k, "url")) {
        wr->url = v;
        return get_secret(c, v, &w->url);
    }
    if (key_is(k, "format")) {
        r = get_choice(c, v, N_("format"), formats, 3, &format);
        w->format = (enum kigen_webhook_format)format;
        return r;
    }
    if (key_is(k, "proxy"))
        return get_proxy(c, v, &w->proxy);
    if (key_is(k, "ca_file"))
        return get_string(c, v, STR_EMPTY_IS_OFF, &w->ca_file);
    if (!key_is(k, "events"))
        return KEY_UNKNOWN;
    for (size_t i = 0; i < KIGEN_EVENT_COUNT; i++)
        events[i] = kigen_event_name((enum kigen_event)i);
    r = get_choice_set(c, v, N_("event"), events, KIGEN_EVENT_COUNT, &w->events);
    if (r == 0 && w->events == 0)
        r = fail(c, v, N_("lists no event (leave events out to send every event)"));
    return r;
}

static int parse_webhook(struct ctx *c, const struct node *n, void *item, struct named *ret_name)
{
    struct webhook_read wr = { .w = item };
    int r;

    wr.w->format = KIGEN_WEBHOOK_SLACK;
    wr.w->events = (UINT32_C(1) << KIGEN_EVENT_COUNT) - 1;
    if (n->type != NODE_MAP)
        return expect_map(c, n);
    r = parse_section(c, n, webhook_key, &wr);
    if (r < 0)
        return r;
    if (!wr.name)
        return missing_key(c, n, "name");
    if (!wr.url)
        return missing_key(c, n, "url");
    *ret_name = (struct named){ .s = wr.w->name, .len = strlen(wr.w->name), .at = wr.name };
    return 0;
}

static int parse_webhooks(struct ctx *c, const struct node *n, struct kigen_alerts *alerts)
{
    return parse_named_list(c, n, sizeof(*alerts->webhooks), parse_webhook, N_("webhook name"),
                            &alerts->webhooks, &alerts->n_webhooks);
}

static int holders_key(struct ctx *c, const struct node *k, const struct node *v, void *section)
{
    struct kigen_holders *holders = section;
    int r;

    if (key_is(k, "register"))
        return get_string(c, v, STR_EMPTY_IS_OFF, &holders->register_path);
    if (!key_is(k, "admins"))
        return KEY_UNKNOWN;
    r = get_strv_named(c, v, N_("admin address"), &holders->admins);
    if (r == 0)
        r = check_each(c, v, &holders->admins, is_address,
                       N_("bad address (use local@domain, without a display name)"));
    return r;
}

static int revocation_key(struct ctx *c, const struct node *k, const struct node *v, void *section)
{
    struct kigen_revocation *rev = section;
    int r;

    if (key_is(k, "interval"))
        return get_duration(c, v, 1, &rev->interval);
    if (key_is(k, "proxy"))
        return get_proxy(c, v, &rev->proxy);
    if (key_is(k, "max_size"))
        return get_size(c, v, &rev->max_size);
    if (!key_is(k, "hosts"))
        return KEY_UNKNOWN;
    r = get_strv_named(c, v, N_("host"), &rev->hosts);
    if (r == 0)
        r = check_each(
            c, v, &rev->hosts, is_host_glob,
            N_("bad host glob (a host name such as *.naccs.jp, no scheme, port or path)"));
    return r;
}

static int metrics_key(struct ctx *c, const struct node *k, const struct node *v, void *section)
{
    /* In the order of the KIGEN_METRICS_* bits. */
    static const char *const labels[] = { "subject", "issuer", "serial", "sha256" };
    struct kigen_metrics *metrics = section;

    if (key_is(k, "labels"))
        return get_choice_set(c, v, N_("label"), labels, 4, &metrics->labels);
    if (key_is(k, "not_before"))
        return get_bool(c, v, &metrics->not_before);
    if (key_is(k, "state_series"))
        return get_bool(c, v, &metrics->state_series);
    return KEY_UNKNOWN;
}

static int check_socket_path(struct ctx *c, const struct node *n, const char *path)
{
    if (path && strlen(path) > MAX_SOCKET_PATH)
        return fail(c, n, N_("socket path longer than %d bytes"), MAX_SOCKET_PATH);
    return 0;
}

/* syslog: false (off), true ("/dev/log") or the path of a socket. */
static int get_syslog(struct ctx *c, const struct node *n, char **dst)
{
    bool on;
    int r;

    if (n->type != NODE_SCALAR)
        return type_error(c, n, N_("a boolean or a socket path"));
    if (is_null(n))
        return 0;
    if (parse_bool(n, &on)) {
        free(*dst);
        *dst = on ? strdup("/dev/log") : NULL;
        return on && !*dst ? oom(c) : 0;
    }
    r = get_string(c, n, STR_EMPTY_IS_OFF, dst);
    if (r == 0)
        r = check_socket_path(c, n, *dst);
    return r;
}

static int policy_key(struct ctx *c, const struct node *k, const struct node *v, void *section)
{
    bool known;
    int r;

    r = get_policy_key(c, k, v, section, &known);
    return r == 0 && !known ? KEY_UNKNOWN : r;
}

static int alerts_key(struct ctx *c, const struct node *k, const struct node *v, void *section)
{
    struct kigen_alerts *alerts = section;

    if (key_is(k, "journald"))
        return get_bool(c, v, &alerts->journald);
    if (key_is(k, "syslog"))
        return get_syslog(c, v, &alerts->syslog);
    if (key_is(k, "exec"))
        return get_string(c, v, STR_EMPTY_IS_OFF, &alerts->exec);
    if (key_is(k, "textfile"))
        return get_string(c, v, STR_EMPTY_IS_OFF, &alerts->textfile);
    if (key_is(k, "reminder_every"))
        return get_duration(c, v, 1, &alerts->reminder_every);
    if (key_is(k, "mail"))
        return parse_section(c, v, mail_key, &alerts->mail);
    if (key_is(k, "webhooks"))
        return parse_webhooks(c, v, alerts);
    return KEY_UNKNOWN;
}

static int parse_top(struct ctx *c, const struct node *n, struct kigen_config *config)
{
    static const char *const languages[] = {
        [KIGEN_LANGUAGE_EN] = "en",
        [KIGEN_LANGUAGE_JA] = "ja",
    };
    char buf[300];
    size_t i, saved;
    int r, language = (int)config->language;

    r = expect_map(c, n);
    for (i = 0; r == 0 && i < n->n; i += 2) {
        const struct node *k = n->kids[i], *v = n->kids[i + 1];

        saved = path_push_key(c, k->value, k->len);
        if (key_is(k, "socket")) {
            r = get_string(c, v, 0, &config->socket);
            if (r == 0)
                r = check_socket_path(c, v, config->socket);
        } else if (key_is(k, "state_dir")) {
            r = get_string(c, v, 0, &config->state_dir);
        } else if (key_is(k, "scan_interval")) {
            r = get_duration(c, v, 1, &config->scan_interval);
        } else if (key_is(k, "timezone")) {
            r = get_timezone(c, v, &config->timezone);
        } else if (key_is(k, "metrics_listen")) {
            r = get_string(c, v, STR_EMPTY_IS_OFF, &config->metrics_listen);
            if (r == 0 && config->metrics_listen && !is_host_port(config->metrics_listen))
                r = fail(c, v, N_("bad address %s (use host:port, e.g. 127.0.0.1:9793)"),
                         quote(v, buf, sizeof(buf)));
        } else if (key_is(k, "policy")) {
            r = parse_section(c, v, policy_key, &config->policy);
        } else if (key_is(k, "rules")) {
            r = parse_rules(c, v, config);
        } else if (key_is(k, "keystores")) {
            r = parse_keystores(c, v, config);
        } else if (key_is(k, "probes")) {
            r = parse_section(c, v, probes_key, &config->probes);
        } else if (key_is(k, "maintenance")) {
            r = parse_maintenance(c, v, config);
        } else if (key_is(k, "alerts")) {
            r = parse_section(c, v, alerts_key, &config->alerts);
        } else if (key_is(k, "holders")) {
            r = parse_section(c, v, holders_key, &config->holders);
        } else if (key_is(k, "language")) {
            r = get_choice(c, v, N_("language"), languages, 2, &language);
            config->language = (enum kigen_language)language;
        } else if (key_is(k, "revocation")) {
            r = parse_section(c, v, revocation_key, &config->revocation);
        } else if (key_is(k, "metrics")) {
            r = parse_section(c, v, metrics_key, &config->metrics);
        } else {
            r = unknown_key(c, k, saved);
        }
        path_pop(c, saved);
    }
    /* Webhooks speak the configured language, whichever key came first. */
    for (size_t w = 0; w < config->alerts.n_webhooks; w++)
        config->alerts.webhooks[w].language = config->language;
    return r;
}

/* Defaults. */

static int add_default_targets(struct kigen_probes *probes)
{
    static const char *const naccs[][2] = {
        { "webnaccs", "web-prod.nac.naccs.jp" },
        { "naccs-cert", "cert.nac.naccs.jp" },
    };
    size_t i;

    probes->targets = calloc(2, sizeof(*probes->targets));
    if (!probes->targets)
        return -ENOMEM;
    probes->n_targets = 2;
    for (i = 0; i < 2; i++) {
        struct kigen_probe_target *t = &probes->targets[i];

        t->port = 443;
        t->tls = true;
        t->interval = -1;
        t->timeout = -1;
        t->name = strdup(naccs[i][0]);
        t->host = strdup(naccs[i][1]);
        if (!t->name || !t->host)
            return -ENOMEM;
    }
    return 0;
}

/* SPEC §1: the issuance service stops on the third Tuesday, 22:00 to 08:00, Japan time. */
static int add_default_window(struct kigen_config *config)
{
    struct kigen_maintenance *w;

    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    config->maintenance = w;
    config->n_maintenance = 1;
    w->every.kind = KIGEN_EVERY_MONTHLY;
    w->every.nth = 3;
    w->every.weekday = 2;
    w->at_minute = 22 * 60;
    w->duration = 10 * 3600;
    w->name = strdup("naccs-monthly");
    w->timezone = strdup(DEFAULT_TIMEZONE);
    if (!w->name || !w->timezone || strv_single(&w->targets, "naccs-cert") < 0)
        return -ENOMEM;
    return 0;
}

static int config_new(const char *path, struct kigen_config **ret_config)
{
    static const int64_t notify_days[] = { 60, 28, 14, 7, 3, 1 };
    struct kigen_config *config;
    size_t i;
    int r = -ENOMEM;

    config = calloc(1, sizeof(*config));
    if (!config)
        return -ENOMEM;
    config->path = strdup(path);
    config->socket = strdup("/run/kigen/kigen.sock");
    config->state_dir = strdup("/var/lib/kigen");
    config->timezone = strdup(DEFAULT_TIMEZONE);
    config->scan_interval = 3600;
    config->policy.renew_before = 28 * 86400;
    config->policy.critical_before = 7 * 86400;
    config->policy.has_notify = true;
    config->policy.has_revocation = true;
    config->policy.notify_before = calloc(6, sizeof(int64_t));
    config->probes.interval = 5 * 60;
    config->probes.timeout = 10;
    config->probes.failures_before_alert = 3;
    config->alerts.journald = true;
    config->alerts.reminder_every = 86400;
    config->alerts.mail.to_holders = true;
    config->alerts.mail.digest_at = -1;
    config->revocation.interval = 6 * 3600;
    config->revocation.max_size = DEFAULT_CRL_SIZE;
    if (strv_single(&config->revocation.hosts, DEFAULT_REVOCATION_HOSTS) < 0)
        goto out;
    if (!config->path || !config->socket || !config->state_dir || !config->timezone ||
        !config->policy.notify_before)
        goto out;
    for (i = 0; i < 6; i++)
        config->policy.notify_before[i] = notify_days[i] * 86400;
    config->policy.n_notify = 6;
    if (add_default_targets(&config->probes) < 0 || add_default_window(config) < 0)
        goto out;
    *ret_config = config;
    config = NULL;
    r = 0;
out:
    kigen_config_free(config);
    return r;
}

/* Defaults that depend on other keys, which may come later in the file. */
static int config_finish(struct kigen_config *config)
{
    size_t i;

    for (i = 0; i < config->probes.n_targets; i++) {
        struct kigen_probe_target *t = &config->probes.targets[i];

        if (t->interval < 0)
            t->interval = config->probes.interval;
        if (t->timeout < 0)
            t->timeout = config->probes.timeout;
    }
    for (i = 0; i < config->n_maintenance; i++) {
        struct kigen_maintenance *w = &config->maintenance[i];

        if (!w->timezone) {
            w->timezone = strdup(config->timezone);
            if (!w->timezone)
                return -ENOMEM;
        }
    }
    return 0;
}

/* The API. */

void kigen_config_free(struct kigen_config *config)
{
    size_t i;

    if (!config)
        return;
    free(config->path);
    free(config->socket);
    free(config->state_dir);
    free(config->timezone);
    free(config->metrics_listen);
    policy_done(&config->policy);
    for (i = 0; i < config->n_rules; i++)
        rule_done(&config->rules[i]);
    free(config->rules);
    for (i = 0; i < config->n_keystores; i++)
        keystore_done(&config->keystores[i]);
    free(config->keystores);
    free(config->probes.proxy);
    targets_free(&config->probes);
    maintenance_free(config);
    alerts_done(&config->alerts);
    free(config->holders.register_path);
    strv_done(&config->holders.admins);
    strv_done(&config->revocation.hosts);
    free(config->revocation.proxy);
    free(config);
}

int kigen_config_parse(const char *name, const char *text, size_t len,
                       struct kigen_config **ret_config, char *errbuf, size_t errlen)
{
    return kigen_config_parse_lang(name, text, len, KIGEN_LANGUAGE_EN, ret_config, errbuf, errlen);
}

int kigen_config_parse_lang(const char *name, const char *text, size_t len,
                            enum kigen_language lang, struct kigen_config **ret_config,
                            char *errbuf, size_t errlen)
{
    struct ctx c = {
        .name = name ? name : "(config)", .errbuf = errbuf, .errlen = errlen, .lang = lang
    };
    struct kigen_config *config = NULL;
    struct node *root = NULL;
    int r;

    if (errbuf && errlen > 0)
        errbuf[0] = '\0';
    if (len > MAX_FILE_SIZE) {
        r = fail_file(&c, -EFBIG, N_("larger than 1 MiB (%zu bytes), refusing to read it"), len);
        goto out;
    }
    r = config_new(c.name, &config);
    if (r < 0) {
        r = oom(&c);
        goto out;
    }
    /* libyaml asserts on a NULL input even when it is empty. */
    r = build_tree(&c, len > 0 ? text : "", len, &root);
    if (r < 0)
        goto out;
    /* No document, or an empty one: every default, no keystore. */
    if (root && !is_null(root)) {
        r = parse_top(&c, root, config);
        if (r < 0)
            goto out;
    }
    r = config_finish(config);
    if (r < 0) {
        r = oom(&c);
        goto out;
    }
    *ret_config = config;
    config = NULL;
out:
    node_free(root);
    kigen_config_free(config);
    return r;
}

/* Reads at most MAX_FILE_SIZE + 1 bytes: one more than allowed tells a file too large. */
static int read_all(int fd, char **ret_buf, size_t *ret_len)
{
    char *buf = NULL, *grown;
    size_t len = 0, cap = 0;
    ssize_t got;
    int r = 0;

    for (;;) {
        if (len == cap) {
            if (cap > MAX_FILE_SIZE) {
                r = -EFBIG;
                goto out;
            }
            cap = cap ? cap * 2 : 16384;
            if (cap > MAX_FILE_SIZE + 1)
                cap = MAX_FILE_SIZE + 1;
            grown = realloc(buf, cap);
            if (!grown) {
                r = -ENOMEM;
                goto out;
            }
            buf = grown;
        }
        got = read(fd, buf + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            r = -errno;
            goto out;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    *ret_buf = buf;
    *ret_len = len;
    buf = NULL;
out:
    free(buf);
    return r;
}

int kigen_config_load(const char *path, struct kigen_config **ret_config, char *errbuf,
                      size_t errlen)
{
    return kigen_config_load_lang(path, KIGEN_LANGUAGE_EN, ret_config, errbuf, errlen);
}

int kigen_config_load_lang(const char *path, enum kigen_language lang,
                           struct kigen_config **ret_config, char *errbuf, size_t errlen)
{
    struct ctx c = { .name = path, .errbuf = errbuf, .errlen = errlen, .lang = lang };
    char *buf = NULL, ebuf[128];
    size_t len = 0;
    int fd = -1, r;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        r = -errno;
        fail_file(&c, r, "%s", strerror_r(-r, ebuf, sizeof(ebuf)));
        goto out;
    }
    r = read_all(fd, &buf, &len);
    if (r == -EFBIG) {
        fail_file(&c, r, N_("larger than 1 MiB, refusing to read it"));
        goto out;
    }
    if (r < 0) {
        fail_file(&c, r, "%s", strerror_r(-r, ebuf, sizeof(ebuf)));
        goto out;
    }
    r = kigen_config_parse_lang(path, buf, len, lang, ret_config, errbuf, errlen);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return r;
}

/* A rule key that is set must match; a certificate field that is unknown matches nothing. */
static bool rule_matches(const struct kigen_rule *rule, const char *keystore, const char *subject,
                         const char *issuer)
{
    if (rule->keystore && (!keystore || fnmatch(rule->keystore, keystore, FNM_NOESCAPE) != 0))
        return false;
    if (rule->issuer && (!issuer || fnmatch(rule->issuer, issuer, FNM_NOESCAPE) != 0))
        return false;
    if (rule->subject && (!subject || fnmatch(rule->subject, subject, FNM_NOESCAPE) != 0))
        return false;
    return true;
}

const struct kigen_keystore *kigen_config_find_keystore(const struct kigen_config *config,
                                                        const char *name)
{
    for (size_t i = 0; i < config->n_keystores; i++)
        if (strcmp(config->keystores[i].name, name) == 0)
            return &config->keystores[i];
    return NULL;
}

void kigen_config_policy_for(const struct kigen_config *config, const char *keystore,
                             const char *subject, const char *issuer, struct kigen_policy *ret)
{
    const struct kigen_policy *set;
    size_t i;

    *ret = config->policy;
    for (i = 0; i < config->n_rules; i++) {
        if (!rule_matches(&config->rules[i], keystore, subject, issuer))
            continue;
        set = &config->rules[i].set;
        if (set->renew_before >= 0)
            ret->renew_before = set->renew_before;
        if (set->critical_before >= 0)
            ret->critical_before = set->critical_before;
        if (set->has_notify) {
            ret->has_notify = true;
            ret->notify_before = set->notify_before;
            ret->n_notify = set->n_notify;
        }
        if (set->renew_url)
            ret->renew_url = set->renew_url;
        if (set->reissue_note)
            ret->reissue_note = set->reissue_note;
        if (set->validity.years > 0 || set->validity.months > 0)
            ret->validity = set->validity;
        if (set->has_revocation)
            ret->revocation = set->revocation;
        if (set->instructions)
            ret->instructions = set->instructions;
        break;
    }
}
