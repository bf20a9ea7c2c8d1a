/*
 * PKCS#7 / CMS SignedData certificate bags (RFC 2315 §9.1), DER or PEM (.p7b, .p7c).
 *
 * Entries number the certificates 0, 1, ... in file order: in a PEM file the numbering goes on
 * from one PKCS#7 block to the next, and a damaged certificate, or a damaged block whose
 * certificates cannot be counted, keeps the place of what could be counted of it.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "err.h"
#include "read.h"

/* Nesting that no SignedData needs, so that hostile BER cannot exhaust the stack. */
#define MAX_DEPTH 32

struct p7 {
    const struct kigen_read_ctx *ctx;
    struct kigen_certs *certs;
    unsigned index;         /* the next entry */
    unsigned damaged;       /* certificates that could not be read */
    unsigned first_damaged; /* the entry of the first of them */
    unsigned broken;        /* structures damaged outside their certificates */
    unsigned unsupported;   /* structures that are no SignedData */
    unsigned structures;    /* ContentInfos met, whole or not */
};

/* One BER element: its contents are [body, body_end), the element ends at end. */
struct tlv {
    const unsigned char *start;
    const unsigned char *body;
    const unsigned char *body_end;
    const unsigned char *end;
    int tag;
    int xclass;
    bool is_cons;
};

/*
 * The element at p, within [p, limit), by ASN1_get_object(). An indefinite length (BER, as
 * streaming writers make) is followed through its elements to the end-of-contents octets.
 */
static int get_element(const unsigned char *p, const unsigned char *limit, unsigned depth,
                       struct tlv *ret)
{
    const unsigned char *q = p;
    struct tlv child;
    long n;
    int flags;

    if (depth > MAX_DEPTH || limit - p < 2)
        return -KIGEN_E_MALFORMED;
    flags = ASN1_get_object(&q, &n, &ret->tag, &ret->xclass, limit - p);
    if (flags & 0x80)
        return -KIGEN_E_MALFORMED;
    ret->start = p;
    ret->body = q;
    ret->is_cons = flags & V_ASN1_CONSTRUCTED;
    if (flags == 0x21) {
        while (!(limit - q >= 2 && q[0] == 0 && q[1] == 0)) {
            if (get_element(q, limit, depth + 1, &child) < 0)
                return -KIGEN_E_MALFORMED;
            q = child.end;
        }
        ret->body_end = q;
        ret->end = q + 2;
    } else {
        ret->body_end = q + n;
        ret->end = ret->body_end;
    }
    return 0;
}

static int get_child(const struct tlv *parent, const unsigned char *p, struct tlv *ret)
{
    return p < parent->body_end ? get_element(p, parent->body_end, 1, ret) : -KIGEN_E_MALFORMED;
}

static int add(struct p7 *p, const uint8_t *der, size_t len, X509 *x509)
{
    char entry[16];
    int r;

    snprintf(entry, sizeof(entry), "%u", p->index);
    r = der ? kigen_certs_add_der(p->certs, p->ctx, der, len, entry)
            : kigen_certs_add_x509(p->certs, p->ctx, x509, entry);
    if (r == -KIGEN_E_MALFORMED && !p->damaged++)
        p->first_damaged = p->index;
    p->index++;
    return r == -ENOMEM ? r : 0;
}

/*
 * The certificates of a ContentInfo that d2i_PKCS7() refused, one by one: ContentInfo ->
 * [0] EXPLICIT SignedData (or SignedAndEnvelopedData, RFC 2315 §11.1) -> the first [0]
 * IMPLICIT element of it, the certificate SET. A certificate that does not decode is counted
 * as damaged and the next one read; a SET whose framing breaks ends the walk.
 */
static int walk(struct p7 *p, const uint8_t *buf, size_t len)
{
    const unsigned char *q, *oid_p;
    struct tlv ci, oid, content, sd, el, cert;
    ASN1_OBJECT *type = NULL;
    int nid, r;

    if (len > LONG_MAX || get_element(buf, buf + len, 0, &ci) < 0 || !ci.is_cons ||
        get_child(&ci, ci.body, &oid) < 0 || oid.tag != V_ASN1_OBJECT)
        return -KIGEN_E_MALFORMED;
    oid_p = oid.start;
    type = d2i_ASN1_OBJECT(NULL, &oid_p, oid.end - oid.start);
    nid = type ? OBJ_obj2nid(type) : NID_undef;
    ASN1_OBJECT_free(type);
    if (nid != NID_pkcs7_signed && nid != NID_pkcs7_signedAndEnveloped)
        return -KIGEN_E_MALFORMED;
    if (get_child(&ci, oid.end, &content) < 0 || content.xclass != V_ASN1_CONTEXT_SPECIFIC ||
        content.tag != 0 || get_child(&content, content.body, &sd) < 0 || !sd.is_cons)
        return -KIGEN_E_MALFORMED;
    for (q = sd.body; q < sd.body_end; q = el.end) {
        if (get_child(&sd, q, &el) < 0)
            return -KIGEN_E_MALFORMED;
        if (el.xclass == V_ASN1_CONTEXT_SPECIFIC && el.tag == 0 && el.is_cons)
            break;
    }
    if (q >= sd.body_end)
        return 0; /* no certificates */
    for (q = el.body; q < el.body_end; q = cert.end) {
        if (get_child(&el, q, &cert) < 0)
            return -KIGEN_E_MALFORMED;
        r = add(p, cert.start, (size_t)(cert.end - cert.start), NULL);
        if (r < 0)
            return r;
    }
    return 0;
}

/* One DER or BER ContentInfo: whole by d2i_PKCS7(), else certificate by certificate. */
static int read_one(struct p7 *p, const uint8_t *buf, size_t len)
{
    const unsigned char *q = buf;
    STACK_OF(X509) *sk = NULL;
    PKCS7 *p7 = NULL;
    unsigned damaged = p->damaged;
    int r = 0, n;

    p->structures++;
    p7 = PKCS7_new_ex(p->ctx->libctx, NULL);
    if (!p7)
        return -ENOMEM;
    if (!d2i_PKCS7(&p7, &q, (long)len)) {
        /* freed by d2i */
        ERR_clear_error();
        r = walk(p, buf, len);
        if (r == -ENOMEM)
            return r;
        /* Something d2i refused that is not a certificate: the structure around them. */
        if (r < 0 || p->damaged == damaged)
            p->broken++;
        return 0;
    }
    if (PKCS7_type_is_signed(p7))
        sk = p7->d.sign ? p7->d.sign->cert : NULL;
    else if (PKCS7_type_is_signedAndEnveloped(p7))
        sk = p7->d.signed_and_enveloped ? p7->d.signed_and_enveloped->cert : NULL;
    else
        r = -KIGEN_E_UNSUPPORTED;
    n = sk ? sk_X509_num(sk) : 0;
    for (int i = 0; i < n && r == 0; i++)
        r = add(p, NULL, 0, sk_X509_value(sk, i));
    PKCS7_free(p7);
    return r;
}

static bool is_p7_label(const char *name)
{
    return strcmp(name, PEM_STRING_PKCS7) == 0 || strcmp(name, PEM_STRING_PKCS7_SIGNED) == 0 ||
           strcmp(name, PEM_STRING_CMS) == 0;
}

/* Every block under a PKCS#7 label (PKCS7, PKCS #7 SIGNED DATA, CMS), in file order. */
static int read_pem(struct p7 *p, const uint8_t *buf, size_t len)
{
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    unsigned long e;
    size_t left;
    long dlen;
    BIO *bio;
    int r = 0;

    bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio)
        return -ENOMEM;
    for (;;) {
        left = BIO_ctrl_pending(bio);
        if (!PEM_read_bio(bio, &name, &header, &data, &dlen)) {
            e = ERR_peek_last_error();
            ERR_clear_error();
            if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                break;
            /* A block that is not PEM (bad base64, no END line): damage, then go on. */
            p->broken++;
            if (BIO_ctrl_pending(bio) == left || BIO_ctrl_pending(bio) == 0)
                break;
            continue;
        }
        if (is_p7_label(name))
            r = read_one(p, data, (size_t)dlen);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
        if (r < 0 && r != -KIGEN_E_UNSUPPORTED)
            break;
        p->unsupported += r == -KIGEN_E_UNSUPPORTED;
        r = 0;
    }
    BIO_free(bio);
    return r;
}

int kigen_read_pkcs7(const struct kigen_read_ctx *ctx, const uint8_t *buf, size_t len,
                     struct kigen_certs *certs, char *errbuf, size_t errlen)
{
    struct p7 p = { .ctx = ctx, .certs = certs };
    size_t before = certs->n;
    int r;

    if (len > INT_MAX)
        return kigen_errf(errbuf, errlen, KIGEN_E_TOO_LARGE, "file too large for PKCS#7");
    if (len > 0 && buf[0] == 0x30) {
        r = read_one(&p, buf, len);
        p.unsupported += r == -KIGEN_E_UNSUPPORTED;
    } else {
        r = read_pem(&p, buf, len);
    }
    if (r < 0 && r != -KIGEN_E_UNSUPPORTED)
        return r;
    if (p.damaged)
        return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                          "%u damaged PKCS#7 certificate%s (first: entry %u)%s", p.damaged,
                          p.damaged == 1 ? "" : "s", p.first_damaged,
                          p.broken ? ", and damage around them" : "");
    if ((p.broken && p.index == 0) || p.structures == 0)
        return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED, "not a valid PKCS#7 structure");
    if (p.broken)
        return kigen_errf(errbuf, errlen, KIGEN_E_MALFORMED,
                          "PKCS#7 structure damaged outside its certificates");
    if (p.unsupported && p.index == 0)
        return kigen_errf(errbuf, errlen, KIGEN_E_UNSUPPORTED, "PKCS#7 content is not SignedData");
    return (int)(certs->n - before);
}
