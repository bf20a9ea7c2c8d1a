/*
 * Java keystores, read by hand: no C library reads them. The layout is the one OpenJDK
 * writes in sun.security.provider.JavaKeyStore.engineStore() (JKS) and
 * com.sun.crypto.provider.JceKeyStore.engineStore() (JCEKS), all integers big-endian:
 *
 *   u32 magic (0xFEEDFEED JKS, 0xCECECECE JCEKS), u32 version (1 or 2), u32 count,
 *   count entries, each u32 tag, UTF alias, u64 creation date (ms), then by tag:
 *     1 private key:  u32 length + encrypted key, u32 n, n x cert
 *     2 trusted cert: cert
 *     3 secret key (JCEKS only): a Java serialization stream holding a SealedObject
 *   cert: (version 2 only) UTF type ("X.509"), u32 length + encoding
 *   20-byte SHA-1 of UTF-16BE(password) || "Mighty Aphrodite" || every byte before it.
 *
 * "UTF" is DataOutput.writeUTF(): u16 length + modified UTF-8. A secret key entry has no
 * length: its end is found by walking the serialization stream (below).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "err.h"
#include "read.h"
#include "strmap.h"

#define JKS_MAGIC        0xfeedfeedu
#define JCEKS_MAGIC      0xcecececeu
#define JKS_DIGEST_LEN   20
#define JKS_DIGEST_SALT  "Mighty Aphrodite"
#define JKS_ENTRY_KEY    1
#define JKS_ENTRY_CERT   2
#define JKS_ENTRY_SECRET 3

/*
 * Java Object Serialization Stream Protocol (Java Object Serialization Specification,
 * chapter 6; java.io.ObjectStreamConstants).
 */
#define SER_MAGIC         0xaced
#define SER_VERSION       5
#define SER_BASE_HANDLE   0x7e0000u
#define TC_NULL           0x70
#define TC_REFERENCE      0x71
#define TC_CLASSDESC      0x72
#define TC_OBJECT         0x73
#define TC_STRING         0x74
#define TC_ARRAY          0x75
#define TC_CLASS          0x76
#define TC_BLOCKDATA      0x77
#define TC_ENDBLOCKDATA   0x78
#define TC_RESET          0x79
#define TC_BLOCKDATALONG  0x7a
#define TC_EXCEPTION      0x7b
#define TC_LONGSTRING     0x7c
#define TC_PROXYCLASSDESC 0x7d
#define TC_ENUM           0x7e
#define SC_WRITE_METHOD   0x01
#define SC_EXTERNALIZABLE 0x04
#define SC_BLOCK_DATA     0x08
#define SER_NONE          UINT32_MAX
/*
 * Limits that no real keystore nears (a sealed key is one object, a superclass, two byte
 * arrays and two strings; JceKeyStore's own filter allows a depth of 3), so that a hostile
 * stream can neither exhaust the stack nor make the reader allocate or loop without bound.
 */
#define SER_MAX_DEPTH   32
#define SER_MAX_SUPERS  16
#define SER_MAX_HANDLES 65536
#define SER_MAX_FIELDS  (1u << 20)

struct cursor {
    const uint8_t *buf;
    size_t len;
    size_t off;
};

/* What a handle refers to, as far as skipping needs: class descriptions only. */
struct ser_handle {
    bool is_classdesc;
    bool is_complete;   /* fields and superclass read: usable for an object or array */
    uint8_t flags;      /* classDescFlags */
    uint8_t array_type; /* element typecode of an array class ("[B" -> 'B'), else 0 */
    uint32_t super;     /* handle index of the superclass description, or SER_NONE */
    uint32_t nfields;
    size_t fields; /* offset of the field typecodes in ser.types */
};

struct ser {
    struct cursor *c;
    struct ser_handle *v;
    size_t n;
    size_t cap;
    uint8_t *types; /* field typecodes of every class description, one byte per field */
    size_t ntypes;
    size_t captypes;
};

/* One entry as read: its alias as written and the certificates it appended. */
struct jks_alias {
    char *alias;
    size_t first; /* index in certs */
    size_t n;
};

struct jks {
    const struct kigen_read_ctx *ctx;
    struct cursor c;
    const char *kind; /* "JKS" or "JCEKS", for messages */
    bool is_jceks;
    uint32_t version;
    uint32_t entry; /* 1-based, for messages */
    uint32_t count;
    struct kigen_certs *certs;
    size_t added;
    struct jks_alias *aliases; /* one per entry read, in file order */
    size_t n_aliases;
    size_t cap_aliases;
    int deferred; /* the first error that did not stop the reading, or 0 */
    struct ser ser;
    char *errbuf;
    size_t errlen;
};

static bool get_bytes(struct cursor *c, size_t n, const uint8_t **ret)
{
    if (n > c->len - c->off)
        return false;
    if (ret)
        *ret = c->buf + c->off;
    c->off += n;
    return true;
}

static bool get_u8(struct cursor *c, uint8_t *ret)
{
    const uint8_t *p;

    if (!get_bytes(c, 1, &p))
        return false;
    *ret = p[0];
    return true;
}

static bool get_u16(struct cursor *c, uint16_t *ret)
{
    const uint8_t *p;

    if (!get_bytes(c, 2, &p))
        return false;
    *ret = (uint16_t)(p[0] << 8 | p[1]);
    return true;
}

static bool get_u32(struct cursor *c, uint32_t *ret)
{
    const uint8_t *p;

    if (!get_bytes(c, 4, &p))
        return false;
    *ret = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return true;
}

static bool get_u64(struct cursor *c, uint64_t *ret)
{
    uint32_t hi, lo;

    if (!get_u32(c, &hi) || !get_u32(c, &lo))
        return false;
    *ret = (uint64_t)hi << 32 | lo;
    return true;
}

/* DataInput.readUTF(): u16 length, then the bytes. */
static bool get_utf(struct cursor *c, const uint8_t **ret, size_t *ret_len)
{
    uint16_t n;

    if (!get_u16(c, &n) || !get_bytes(c, n, ret))
        return false;
    *ret_len = n;
    return true;
}

static bool peek_u8(const struct cursor *c, uint8_t *ret)
{
    if (c->off >= c->len)
        return false;
    *ret = c->buf[c->off];
    return true;
}

/* One UTF-16 code unit of modified UTF-8, as DataInputStream.readUTF() decodes it. */
static bool mutf8_unit(const uint8_t *s, size_t len, size_t *i, uint32_t *ret)
{
    uint8_t b = s[*i];

    if (b < 0x80) {
        *ret = b;
        *i += 1;
    } else if ((b & 0xe0) == 0xc0 && len - *i >= 2 && (s[*i + 1] & 0xc0) == 0x80) {
        *ret = (uint32_t)(b & 0x1f) << 6 | (s[*i + 1] & 0x3f);
        *i += 2;
    } else if ((b & 0xf0) == 0xe0 && len - *i >= 3 && (s[*i + 1] & 0xc0) == 0x80 &&
               (s[*i + 2] & 0xc0) == 0x80) {
        *ret = (uint32_t)(b & 0x0f) << 12 | (uint32_t)(s[*i + 1] & 0x3f) << 6 | (s[*i + 2] & 0x3f);
        *i += 3;
    } else {
        return false;
    }
    return true;
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Modified UTF-8 to UTF-8, so that an alias is a valid name downstream (JSON, logs): Java
 * writes a character beyond the BMP as two 3-byte surrogates, which become one 4-byte
 * sequence; NUL and lone surrogates become U+FFFD. Every input byte gives at most 3 output
 * bytes, so out holds 3 * len + 1. Returns false for bytes readUTF() rejects.
 */
static bool mutf8_to_utf8(const uint8_t *s, size_t len, char *out)
{
    size_t i = 0, o = 0, j;
    uint32_t u, low;

    while (i < len) {
        if (!mutf8_unit(s, len, &i, &u))
            return false;
        if (u >= 0xd800 && u <= 0xdbff && i < len) {
            j = i;
            if (!mutf8_unit(s, len, &j, &low))
                return false;
            if (low >= 0xdc00 && low <= 0xdfff) {
                u = 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00);
                i = j;
            }
        }
        if (u == 0 || (u >= 0xd800 && u <= 0xdfff))
            u = 0xfffd;
        o += utf8_put(u, out + o);
    }
    out[o] = '\0';
    return true;
}

/* A copy of s safe for a one-line message: printable ASCII, '?' for the rest, cut short. */
static void printable(const char *s, char *out, size_t outlen)
{
    size_t i;

    for (i = 0; s[i] && i + 1 < outlen; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[i] = '\0';
}

static int truncated(struct jks *j)
{
    return kigen_errf(j->errbuf, j->errlen, KIGEN_E_MALFORMED,
                      "%s keystore truncated in entry %u of %u", j->kind, j->entry, j->count);
}

/* --- Java serialization: enough of the grammar to find where a stream ends. -------- */

static int ser_object(struct ser *s, unsigned depth, uint32_t *ret_handle);

static void ser_reset(struct ser *s)
{
    s->n = 0;
    s->ntypes = 0;
}

/* newHandle: the next handle in sequence; *ret receives its index. */
static int ser_new_handle(struct ser *s, uint32_t *ret)
{
    struct ser_handle *v;
    size_t cap;

    if (s->n >= SER_MAX_HANDLES)
        return -KIGEN_E_MALFORMED;
    if (s->n == s->cap) {
        cap = s->cap ? s->cap * 2 : 16;
        v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n] = (struct ser_handle){ .super = SER_NONE };
    *ret = (uint32_t)s->n++;
    return 0;
}

static int ser_add_type(struct ser *s, uint8_t type)
{
    uint8_t *v;
    size_t cap;

    if (s->ntypes >= SER_MAX_FIELDS)
        return -KIGEN_E_MALFORMED;
    if (s->ntypes == s->captypes) {
        cap = s->captypes ? s->captypes * 2 : 64;
        v = realloc(s->types, cap);
        if (!v)
            return -ENOMEM;
        s->types = v;
        s->captypes = cap;
    }
    s->types[s->ntypes++] = type;
    return 0;
}

static int ser_skip(struct ser *s, size_t n)
{
    return get_bytes(s->c, n, NULL) ? 0 : -KIGEN_E_MALFORMED;
}

/* classAnnotation / objectAnnotation: contents (block data or objects), TC_ENDBLOCKDATA. */
static int ser_annotation(struct ser *s, unsigned depth)
{
    uint8_t tc, n8;
    uint32_t n32;
    int r;

    for (;;) {
        if (!peek_u8(s->c, &tc))
            return -KIGEN_E_MALFORMED;
        if (tc == TC_ENDBLOCKDATA) {
            s->c->off++;
            return 0;
        }
        if (tc == TC_BLOCKDATA) {
            s->c->off++;
            if (!get_u8(s->c, &n8) || ser_skip(s, n8) < 0)
                return -KIGEN_E_MALFORMED;
        } else if (tc == TC_BLOCKDATALONG) {
            s->c->off++;
            if (!get_u32(s->c, &n32) || ser_skip(s, n32) < 0)
                return -KIGEN_E_MALFORMED;
        } else {
            r = ser_object(s, depth + 1, NULL);
            if (r < 0)
                return r;
        }
    }
}

/* classDesc: a new description, a reference to one, or null. */
static int ser_classdesc(struct ser *s, unsigned depth, uint32_t *ret_handle)
{
    uint8_t tc;
    uint32_t h;
    int r;

    if (!peek_u8(s->c, &tc))
        return -KIGEN_E_MALFORMED;
    if (tc != TC_NULL && tc != TC_REFERENCE && tc != TC_CLASSDESC && tc != TC_PROXYCLASSDESC)
        return -KIGEN_E_MALFORMED;
    r = ser_object(s, depth, &h);
    if (r < 0)
        return r;
    if (h != SER_NONE && !s->v[h].is_classdesc)
        return -KIGEN_E_MALFORMED;
    *ret_handle = h;
    return 0;
}

/* className1 of a field: a string, as ObjectInputStream.readTypeString() takes it. */
static int ser_type_string(struct ser *s, unsigned depth)
{
    uint8_t tc;

    if (!peek_u8(s->c, &tc))
        return -KIGEN_E_MALFORMED;
    if (tc != TC_NULL && tc != TC_REFERENCE && tc != TC_STRING && tc != TC_LONGSTRING)
        return -KIGEN_E_MALFORMED;
    return ser_object(s, depth, NULL);
}

/* The rest of TC_CLASSDESC: className serialVersionUID newHandle classDescInfo. */
static int ser_new_classdesc(struct ser *s, unsigned depth, uint32_t *ret_handle)
{
    const uint8_t *name, *fname;
    size_t name_len, fname_len;
    uint16_t nfields;
    uint8_t flags, type;
    uint32_t h, super;
    int r;

    if (!get_utf(s->c, &name, &name_len) || ser_skip(s, 8) < 0)
        return -KIGEN_E_MALFORMED;
    r = ser_new_handle(s, &h);
    if (r < 0)
        return r;
    s->v[h].is_classdesc = true;
    if (name_len >= 2 && name[0] == '[')
        s->v[h].array_type = name[1];
    if (!get_u8(s->c, &flags) || !get_u16(s->c, &nfields))
        return -KIGEN_E_MALFORMED;
    s->v[h].flags = flags;
    s->v[h].fields = s->ntypes;
    s->v[h].nfields = nfields;
    /* A field's type name is a string, never a class description: typecodes stay together. */
    for (uint16_t i = 0; i < nfields; i++) {
        if (!get_u8(s->c, &type) || !get_utf(s->c, &fname, &fname_len))
            return -KIGEN_E_MALFORMED;
        if (!strchr("BCDFIJSZL[", type) || type == '\0')
            return -KIGEN_E_MALFORMED;
        if (type == 'L' || type == '[') {
            r = ser_type_string(s, depth + 1);
            if (r < 0)
                return r;
        }
        r = ser_add_type(s, type);
        if (r < 0)
            return r;
    }
    r = ser_annotation(s, depth);
    if (r < 0)
        return r;
    r = ser_classdesc(s, depth + 1, &super);
    if (r < 0)
        return r;
    s->v[h].super = super;
    s->v[h].is_complete = true;
    *ret_handle = h;
    return 0;
}

/* The rest of TC_PROXYCLASSDESC: newHandle (int)count proxyInterfaceName[count] ... */
static int ser_new_proxy_classdesc(struct ser *s, unsigned depth, uint32_t *ret_handle)
{
    const uint8_t *name;
    size_t name_len;
    uint32_t h, n, super;
    int r;

    r = ser_new_handle(s, &h);
    if (r < 0)
        return r;
    s->v[h].is_classdesc = true;
    if (!get_u32(s->c, &n))
        return -KIGEN_E_MALFORMED;
    /* Each name takes at least two bytes: a false count ends at the end of the buffer. */
    for (uint32_t i = 0; i < n; i++)
        if (!get_utf(s->c, &name, &name_len))
            return -KIGEN_E_MALFORMED;
    r = ser_annotation(s, depth);
    if (r < 0)
        return r;
    r = ser_classdesc(s, depth + 1, &super);
    if (r < 0)
        return r;
    s->v[h].super = super;
    s->v[h].is_complete = true;
    *ret_handle = h;
    return 0;
}

static int ser_value(struct ser *s, unsigned depth, uint8_t type)
{
    switch (type) {
    case 'B':
    case 'Z':
        return ser_skip(s, 1);
    case 'C':
    case 'S':
        return ser_skip(s, 2);
    case 'I':
    case 'F':
        return ser_skip(s, 4);
    case 'J':
    case 'D':
        return ser_skip(s, 8);
    case 'L':
    case '[':
        return ser_object(s, depth + 1, NULL);
    default:
        return -KIGEN_E_MALFORMED;
    }
}

/* classdata[] of a new object: each class's fields from the top superclass down. */
static int ser_classdata(struct ser *s, unsigned depth, uint32_t desc)
{
    uint32_t chain[SER_MAX_SUPERS];
    size_t n = 0;
    int r;

    if (s->v[desc].flags & SC_EXTERNALIZABLE) {
        /* Without block data (protocol 1) only the class itself knows where its data ends. */
        if (!(s->v[desc].flags & SC_BLOCK_DATA))
            return -KIGEN_E_UNSUPPORTED;
        return ser_annotation(s, depth);
    }
    for (uint32_t h = desc; h != SER_NONE; h = s->v[h].super) {
        if (n == SER_MAX_SUPERS || !s->v[h].is_complete)
            return -KIGEN_E_MALFORMED;
        chain[n++] = h;
    }
    while (n-- > 0) {
        const struct ser_handle d = s->v[chain[n]];

        for (uint32_t i = 0; i < d.nfields; i++) {
            r = ser_value(s, depth, s->types[d.fields + i]);
            if (r < 0)
                return r;
        }
        if (d.flags & SC_WRITE_METHOD) {
            r = ser_annotation(s, depth);
            if (r < 0)
                return r;
        }
    }
    return 0;
}

static int ser_array(struct ser *s, unsigned depth, uint32_t desc)
{
    uint32_t size;
    size_t width;
    int r;

    if (!get_u32(s->c, &size) || size > INT32_MAX)
        return -KIGEN_E_MALFORMED;
    switch (s->v[desc].array_type) {
    case 'B':
    case 'Z':
        width = 1;
        break;
    case 'C':
    case 'S':
        width = 2;
        break;
    case 'I':
    case 'F':
        width = 4;
        break;
    case 'J':
    case 'D':
        width = 8;
        break;
    case 'L':
    case '[':
        /* Each element takes at least one byte: a false size ends at the end of the buffer. */
        for (uint32_t i = 0; i < size; i++) {
            r = ser_object(s, depth + 1, NULL);
            if (r < 0)
                return r;
        }
        return 0;
    default:
        return -KIGEN_E_MALFORMED;
    }
    if (size > (s->c->len - s->c->off) / width)
        return -KIGEN_E_MALFORMED;
    return ser_skip(s, size * width);
}

/*
 * One object of the grammar, skipped. *ret_handle, if not NULL, receives the index of the
 * handle read or referred to, SER_NONE for null.
 */
static int ser_object(struct ser *s, unsigned depth, uint32_t *ret_handle)
{
    uint32_t h = SER_NONE, desc;
    uint64_t n64;
    uint16_t n16;
    uint8_t tc;
    int r;

    if (depth > SER_MAX_DEPTH)
        return -KIGEN_E_MALFORMED;
    if (!get_u8(s->c, &tc))
        return -KIGEN_E_MALFORMED;
    switch (tc) {
    case TC_NULL:
        break;
    case TC_REFERENCE:
        if (!get_u32(s->c, &h) || h < SER_BASE_HANDLE || h - SER_BASE_HANDLE >= s->n)
            return -KIGEN_E_MALFORMED;
        h -= SER_BASE_HANDLE;
        break;
    case TC_CLASSDESC:
        r = ser_new_classdesc(s, depth, &h);
        if (r < 0)
            return r;
        break;
    case TC_PROXYCLASSDESC:
        r = ser_new_proxy_classdesc(s, depth, &h);
        if (r < 0)
            return r;
        break;
    case TC_STRING:
        r = ser_new_handle(s, &h);
        if (r < 0)
            return r;
        if (!get_u16(s->c, &n16) || ser_skip(s, n16) < 0)
            return -KIGEN_E_MALFORMED;
        break;
    case TC_LONGSTRING:
        r = ser_new_handle(s, &h);
        if (r < 0)
            return r;
        if (!get_u64(s->c, &n64) || n64 > s->c->len - s->c->off || ser_skip(s, (size_t)n64) < 0)
            return -KIGEN_E_MALFORMED;
        break;
    case TC_CLASS:
        r = ser_classdesc(s, depth + 1, &desc);
        if (r < 0)
            return r;
        r = ser_new_handle(s, &h);
        if (r < 0)
            return r;
        break;
    case TC_OBJECT:
    case TC_ARRAY:
    case TC_ENUM:
        r = ser_classdesc(s, depth + 1, &desc);
        if (r < 0)
            return r;
        if (desc == SER_NONE || !s->v[desc].is_complete)
            return -KIGEN_E_MALFORMED;
        r = ser_new_handle(s, &h);
        if (r < 0)
            return r;
        if (tc == TC_OBJECT)
            r = ser_classdata(s, depth, desc);
        else if (tc == TC_ARRAY)
            r = ser_array(s, depth, desc);
        else
            r = ser_type_string(s, depth + 1); /* the constant's name */
        if (r < 0)
            return r;
        break;
    default:
        /* TC_EXCEPTION: the writer failed; block data or a reset where an object must be. */
        return -KIGEN_E_MALFORMED;
    }
    if (ret_handle)
        *ret_handle = h;
    return 0;
}

/*
 * A sealed secret key: JceKeyStore writes each with a new ObjectOutputStream, so each has
 * its own stream header and handle table, and one object (ObjectInputStream.readObject()
 * skips resets before it).
 */
static int ser_skip_stream(struct ser *s)
{
    uint16_t magic, version;
    uint8_t tc;

    ser_reset(s);
    if (!get_u16(s->c, &magic) || !get_u16(s->c, &version) || magic != SER_MAGIC ||
        version != SER_VERSION)
        return -KIGEN_E_MALFORMED;
    while (peek_u8(s->c, &tc) && tc == TC_RESET)
        s->c->off++;
    return ser_object(s, 0, NULL);
}

/* --- Keystore entries -------------------------------------------------------------- */

/*
 * The alias as UTF-8 in a new buffer with room for "#<chain index>". Returns 0, -ENOMEM
 * or -KIGEN_E_MALFORMED.
 */
static int read_alias(struct jks *j, char **ret_alias, size_t *ret_len)
{
    const uint8_t *s;
    size_t len;
    char *alias;

    if (!get_utf(&j->c, &s, &len))
        return truncated(j);
    alias = malloc(3 * len + sizeof("#4294967295"));
    if (!alias)
        return -ENOMEM;
    if (!mutf8_to_utf8(s, len, alias)) {
        free(alias);
        return kigen_errf(j->errbuf, j->errlen, KIGEN_E_MALFORMED,
                          "%s entry %u of %u has an alias that is not modified UTF-8", j->kind,
                          j->entry, j->count);
    }
    *ret_alias = alias;
    *ret_len = strlen(alias);
    return 0;
}

/*
 * One certificate: (version 2) its type, then its encoding. chain is its index in a
 * private key's chain, 0 for a trusted entry. A certificate that cannot be decoded is
 * skipped and the first such one reported at the end: the entries after it are still
 * framed, and their certificates good.
 */
static int read_cert(struct jks *j, char *alias, size_t alias_len, uint32_t chain)
{
    static const char x509[] = "X.509";
    const uint8_t *type = NULL, *der;
    size_t type_len = 0;
    uint32_t len;
    char shown[64];
    int r;

    if (j->version == 2 && !get_utf(&j->c, &type, &type_len))
        return truncated(j);
    if (!get_u32(&j->c, &len) || !get_bytes(&j->c, len, &der))
        return truncated(j);
    /* An empty alias (Java allows one) names its chain "#0", "#1", ...: an entry is never "". */
    if (chain > 0 || alias_len == 0)
        snprintf(alias + alias_len, sizeof("#4294967295"), "#%u", chain);
    else
        alias[alias_len] = '\0';
    if (type && (type_len != strlen(x509) || memcmp(type, x509, type_len) != 0))
        r = -KIGEN_E_UNSUPPORTED;
    else
        r = kigen_certs_add_der(j->certs, j->ctx, der, len, alias);
    if (r == 0) {
        j->added++;
        return 0;
    }
    if (r == -ENOMEM)
        return r;
    if (j->deferred)
        return 0;
    printable(alias, shown, sizeof(shown));
    if (r == -KIGEN_E_UNSUPPORTED)
        j->deferred =
            kigen_errf(j->errbuf, j->errlen, KIGEN_E_UNSUPPORTED,
                       "%s entry '%s' holds a certificate type other than X.509", j->kind, shown);
    else
        j->deferred =
            kigen_errf(j->errbuf, j->errlen, KIGEN_E_MALFORMED,
                       "%s entry '%s' holds a certificate that is not valid DER", j->kind, shown);
    return 0;
}

static int read_entry(struct jks *j)
{
    uint32_t tag, len, n;
    char *alias = NULL;
    size_t alias_len = 0, first = j->certs->n;
    int r;

    if (!get_u32(&j->c, &tag)) {
        r = truncated(j);
        goto out;
    }
    /* JavaKeyStore knows tags 1 and 2; only JceKeyStore knows 3. */
    if (tag != JKS_ENTRY_KEY && tag != JKS_ENTRY_CERT &&
        !(tag == JKS_ENTRY_SECRET && j->is_jceks)) {
        r = kigen_errf(j->errbuf, j->errlen, KIGEN_E_MALFORMED,
                       "%s entry %u of %u has unknown tag %u", j->kind, j->entry, j->count, tag);
        goto out;
    }
    r = read_alias(j, &alias, &alias_len);
    if (r < 0)
        goto out;
    if (!get_bytes(&j->c, 8, NULL)) { /* creation date */
        r = truncated(j);
        goto out;
    }
    switch (tag) {
    case JKS_ENTRY_KEY:
        /* The encrypted key is skipped, never decrypted (SPEC §4). */
        if (!get_u32(&j->c, &len) || !get_bytes(&j->c, len, NULL) || !get_u32(&j->c, &n)) {
            r = truncated(j);
            goto out;
        }
        /* Each certificate takes at least four bytes: a false count ends in truncation. */
        for (uint32_t i = 0; i < n; i++) {
            r = read_cert(j, alias, alias_len, i);
            if (r < 0)
                goto out;
        }
        break;
    case JKS_ENTRY_CERT:
        r = read_cert(j, alias, alias_len, 0);
        if (r < 0)
            goto out;
        break;
    case JKS_ENTRY_SECRET:
        j->ser.c = &j->c;
        r = ser_skip_stream(&j->ser);
        if (r == -KIGEN_E_UNSUPPORTED) {
            r = kigen_errf(j->errbuf, j->errlen, KIGEN_E_UNSUPPORTED,
                           "%s entry %u of %u is a secret key in an unsupported serialization",
                           j->kind, j->entry, j->count);
            goto out;
        }
        if (r == -KIGEN_E_MALFORMED) {
            r = kigen_errf(j->errbuf, j->errlen, KIGEN_E_MALFORMED,
                           "%s entry %u of %u is a secret key that is not a valid Java "
                           "serialization stream",
                           j->kind, j->entry, j->count);
            goto out;
        }
        if (r < 0)
            goto out;
        break;
    }
    if (j->n_aliases == j->cap_aliases) {
        size_t cap = j->cap_aliases ? j->cap_aliases * 2 : 8;
        struct jks_alias *v = realloc(j->aliases, cap * sizeof(*v));

        if (!v) {
            r = -ENOMEM;
            goto out;
        }
        j->aliases = v;
        j->cap_aliases = cap;
    }
    alias[alias_len] = '\0';
    j->aliases[j->n_aliases++] = (struct jks_alias){ alias, first, j->certs->n - first };
    alias = NULL;
    r = 0;
out:
    free(alias);
    return r;
}

/* An alias as Java looks it up: toLowerCase(Locale.ENGLISH), here for ASCII letters only. */
static char *lower(const char *alias)
{
    char *s = strdup(alias);

    for (char *p = s; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return s;
}

/*
 * Two entries under one alias, as Java reads them (JavaKeyStore and JceKeyStore of JDK 17
 * alike, checked with `keytool -list`): engineLoad() keeps the entries in a table under the
 * alias as written, so a later entry replaces an earlier one of exactly the same alias;
 * engineGetCertificate() and the rest look an alias up in lower case. keytool therefore lists
 * each alias once, with the certificates of the last entry written under its lower-case
 * form: "dup" then "DUP" lists both aliases, each with the certificates of "dup". An alias
 * with no lower-case twin keeps its own certificates (Java finds none for it). The
 * certificates read are replaced by that view, each alias where its last entry stood; a
 * keystore without such twins is left as read.
 */
static int resolve_aliases(struct jks *j, size_t start)
{
    struct kigen_strmap map = { 0 };
    struct kigen_certs out = { 0 };
    struct jks_alias *a, *src;
    char *low = NULL, *name = NULL;
    bool is_changed = false;
    int r;

    for (size_t i = 0; i < j->n_aliases; i++) {
        r = kigen_strmap_put(&map, j->aliases[i].alias, &j->aliases[i]);
        if (r < 0)
            goto out;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < j->n_aliases; i++) {
            a = &j->aliases[i];
            if (kigen_strmap_get(&map, a->alias) != a) {
                is_changed = true; /* replaced by a later entry */
                continue;
            }
            free(low);
            low = lower(a->alias);
            if (!low) {
                r = -ENOMEM;
                goto out;
            }
            src = kigen_strmap_get(&map, low);
            if (!src)
                src = a;
            is_changed = is_changed || src != a;
            for (size_t k = 0; pass == 1 && k < src->n; k++) {
                const struct kigen_cert *c = &j->certs->v[src->first + k];
                size_t len = strlen(a->alias) + strlen(c->entry) + 1;

                /* The chain suffix ("#1") of the certificate found, after the alias listed. */
                free(name);
                name = malloc(len);
                if (!name) {
                    r = -ENOMEM;
                    goto out;
                }
                snprintf(name, len, "%s%s", a->alias, c->entry + strlen(src->alias));
                r = kigen_certs_add_copy(&out, c, name);
                if (r < 0)
                    goto out;
            }
        }
        if (!is_changed)
            break;
    }
    if (is_changed) {
        while (j->certs->n > start)
            kigen_cert_done(&j->certs->v[--j->certs->n]);
        r = kigen_certs_append(j->certs, &out);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    free(name);
    free(low);
    kigen_certs_clear(&out);
    free(out.v);
    kigen_strmap_clear(&map);
    return r;
}

/* --- Integrity digest ---------------------------------------------------------------- */

/* One UTF-8 character; a byte that starts no valid sequence stands for itself (Latin-1). */
static size_t utf8_char(const unsigned char *p, uint32_t *ret)
{
    uint32_t cp;

    if (p[0] >= 0xc2 && p[0] <= 0xdf && (p[1] & 0xc0) == 0x80) {
        *ret = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
        return 2;
    }
    if (p[0] >= 0xe0 && p[0] <= 0xef && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80) {
        cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
        if (cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff)) {
            *ret = cp;
            return 3;
        }
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
        (p[3] & 0xc0) == 0x80) {
        cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
             (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
        if (cp >= 0x10000 && cp <= 0x10ffff) {
            *ret = cp;
            return 4;
        }
    }
    *ret = p[0];
    return 1;
}

/*
 * Feeds the password as Java holds it, a char[] of UTF-16 code units, each as two bytes
 * big-endian (JceKeyStore.getPreKeyedHash()). A byte that is not UTF-8 is taken as
 * Latin-1, as a JVM on a Latin-1 locale would have read it. The password is never copied
 * whole: only the few bytes in units, wiped after.
 */
static int digest_password(EVP_MD_CTX *md, const char *password)
{
    const unsigned char *p = (const unsigned char *)password;
    unsigned char units[4];
    uint32_t cp = 0, hi, lo;
    size_t n;
    int r = 0;

    while (*p) {
        p += utf8_char(p, &cp);
        if (cp >= 0x10000) {
            hi = 0xd800 + ((cp - 0x10000) >> 10);
            lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
            units[0] = (unsigned char)(hi >> 8);
            units[1] = (unsigned char)hi;
            units[2] = (unsigned char)(lo >> 8);
            units[3] = (unsigned char)lo;
            n = 4;
        } else {
            units[0] = (unsigned char)(cp >> 8);
            units[1] = (unsigned char)cp;
            n = 2;
        }
        if (!EVP_DigestUpdate(md, units, n)) {
            r = -ENOMEM;
            break;
        }
    }
    OPENSSL_cleanse(units, sizeof(units));
    OPENSSL_cleanse(&cp, sizeof(cp));
    return r;
}

/*
 * Checks the digest at buf + body_len with each non-NULL password. Returns 0 when one
 * fits, -KIGEN_E_WRONG_PASSWORD when none does, -ENOMEM.
 */
static int check_digest(struct jks *j, const uint8_t *buf, size_t body_len,
                        const struct kigen_passwords *passwords)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    EVP_MD_CTX *md = NULL;
    EVP_MD *sha1 = NULL;
    unsigned int n;
    size_t tried = 0;
    int r;

    sha1 = EVP_MD_fetch(j->ctx->libctx, "SHA1", NULL);
    if (!sha1) {
        r = kigen_errf(j->errbuf, j->errlen, KIGEN_E_UNSUPPORTED,
                       "SHA-1 is not available to check the %s integrity digest", j->kind);
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < passwords->n; i++) {
        if (!passwords->v[i])
            continue;
        tried++;
        if (!EVP_DigestInit_ex(md, sha1, NULL) || digest_password(md, passwords->v[i]) < 0 ||
            !EVP_DigestUpdate(md, JKS_DIGEST_SALT, strlen(JKS_DIGEST_SALT)) ||
            !EVP_DigestUpdate(md, buf, body_len) || !EVP_DigestFinal_ex(md, digest, &n)) {
            r = -ENOMEM;
            goto out;
        }
        if (n == JKS_DIGEST_LEN && CRYPTO_memcmp(digest, buf + body_len, JKS_DIGEST_LEN) == 0) {
            r = 0;
            goto out;
        }
    }
    r = kigen_errf(j->errbuf, j->errlen, KIGEN_E_WRONG_PASSWORD,
                   "%s integrity digest fits no password given (%zu tried)", j->kind, tried);
out:
    /* The context held the password's state: freeing it wipes it. */
    EVP_MD_CTX_free(md);
    EVP_MD_free(sha1);
    return r;
}

static bool has_password(const struct kigen_passwords *passwords)
{
    if (!passwords || !passwords->v)
        return false;
    for (size_t i = 0; i < passwords->n; i++)
        if (passwords->v[i])
            return true;
    return false;
}

int kigen_read_jks(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                   const struct kigen_passwords *passwords, struct kigen_certs *certs,
                   enum kigen_format *ret_format, char *errbuf, size_t errlen)
{
    struct jks j = {
        .ctx = ctx,
        .c = { .buf = buf, .len = len },
        .certs = certs,
        .errbuf = errbuf,
        .errlen = errlen,
    };
    uint32_t magic;
    size_t body_len, before = certs->n;
    int r;

    if (!get_u32(&j.c, &magic) || (magic != JKS_MAGIC && magic != JCEKS_MAGIC)) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "not a Java keystore");
        goto out;
    }
    j.is_jceks = magic == JCEKS_MAGIC;
    j.kind = j.is_jceks ? "JCEKS" : "JKS";
    if (ret_format)
        *ret_format = j.is_jceks ? KIGEN_FORMAT_JCEKS : KIGEN_FORMAT_JKS;
    if (!get_u32(&j.c, &j.version) || !get_u32(&j.c, &j.count)) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "%s keystore truncated in its header",
                       j.kind);
        goto out;
    }
    if (j.version != 1 && j.version != 2) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "%s keystore has unknown version %u",
                       j.kind, j.version);
        goto out;
    }
    /* Every entry takes at least 14 bytes: a false count ends in truncation, not in a loop. */
    for (uint32_t i = 0; i < j.count; i++) {
        j.entry = i + 1;
        r = read_entry(&j);
        if (r < 0)
            goto out;
    }
    r = resolve_aliases(&j, before);
    if (r < 0)
        goto out;
    j.added = certs->n - before;
    body_len = j.c.off;
    if (len - body_len < JKS_DIGEST_LEN) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                       "%s keystore truncated in its integrity digest", j.kind);
        goto out;
    }
    if (len - body_len > JKS_DIGEST_LEN) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                       "%s keystore has %zu bytes after its integrity digest", j.kind,
                       len - body_len - JKS_DIGEST_LEN);
        goto out;
    }
    if (j.deferred) {
        r = j.deferred;
        goto out;
    }
    /* Certificates need no password: without one the digest is not checked (as in Java). */
    if (has_password(passwords)) {
        r = check_digest(&j, buf, body_len, passwords);
        if (r < 0)
            goto out;
    }
    if (j.added > INT_MAX) {
        r = kigen_errf(errbuf, errlen, KIGEN_E_TOO_LARGE, "%s keystore holds too many certificates",
                       j.kind);
        goto out;
    }
    r = (int)j.added;
out:
    for (size_t i = 0; i < j.n_aliases; i++)
        free(j.aliases[i].alias);
    free(j.aliases);
    free(j.ser.types);
    free(j.ser.v);
    return r;
}
