/*
 * The JKS/JCEKS reader against keystores made by keytool (tests/gen/gen_jks.sh), their
 * expected values from keytool and openssl, and keystores built here byte by byte for what
 * keytool cannot make: version 1, bad DER, odd serialization streams, hostile counts.
 */
#include <errno.h>

#include <openssl/evp.h>

#include "cert.h"
#include "err.h"
#include "read.h"
#include "testutil.h"

#define DIGEST_LEN 20

static const char *const changeit[] = { "changeit" };

/* --- helpers ------------------------------------------------------------------------ */

struct result {
    struct kigen_certs certs;
    enum kigen_format format;
    char err[256];
    int r;
};

static void result_done(struct result *res)
{
    kigen_certs_clear(&res->certs);
    free(res->certs.v);
    memset(res, 0, sizeof(*res));
}

static void read_buf(void **state, const uint8_t *buf, size_t len, const char *const *pw,
                     size_t n_pw, struct result *res)
{
    struct kigen_passwords passwords = { pw, n_pw };

    memset(res, 0, sizeof(*res));
    res->format = KIGEN_FORMAT_UNKNOWN;
    res->r = kigen_read_jks(*state, buf, len, &passwords, &res->certs, &res->format, res->err,
                            sizeof(res->err));
    /* Whatever the input, the count matches what was appended, and errors are ours. */
    if (res->r >= 0)
        assert_int_equal((size_t)res->r, res->certs.n);
    else if (res->r != -ENOMEM)
        assert_non_null(kigen_err_name(res->r));
}

static void read_file(void **state, const char *name, const char *const *pw, size_t n_pw,
                      struct result *res)
{
    char path[256];
    size_t len;
    uint8_t *buf;

    snprintf(path, sizeof(path), "jks/%s", name);
    buf = fixture_load(path, &len);
    read_buf(state, buf, len, pw, n_pw, res);
    free(buf);
}

static const struct kigen_cert *find_entry(const struct kigen_certs *certs, const char *entry)
{
    for (size_t i = 0; i < certs->n; i++)
        if (strcmp(certs->v[i].entry, entry) == 0)
            return &certs->v[i];
    return NULL;
}

/*
 * Asserts that certs holds exactly the certificates of jks/NAME.expect ("entry sha256
 * not_after" lines from keytool and openssl), matched by entry name: keytool lists entries
 * in hash-table order, not file order.
 */
static void assert_expected(const struct kigen_certs *certs, const char *name)
{
    char path[256], hex[65];
    char *text, *line, *save = NULL, *sha, *end;
    const struct kigen_cert *cert;
    size_t n = 0;

    snprintf(path, sizeof(path), "jks/%s.expect", name);
    text = fixture_text(path);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        end = strrchr(line, ' ');
        assert_non_null(end);
        *end++ = '\0';
        sha = strrchr(line, ' ');
        assert_non_null(sha);
        *sha++ = '\0';
        cert = find_entry(certs, line);
        if (!cert)
            fail_msg("%s: no certificate for entry '%s'", name, line);
        kigen_cert_sha256_hex(cert, hex);
        assert_string_equal(hex, sha);
        assert_int_equal(cert->not_after, strtoll(end, NULL, 10));
    }
    assert_int_equal(certs->n, n);
    free(text);
}

static void expect_file(void **state, const char *name, enum kigen_format format,
                        const char *const *pw, size_t n_pw)
{
    struct result res;

    read_file(state, name, pw, n_pw, &res);
    if (res.r < 0)
        fail_msg("%s: %s: %s", name, kigen_err_name(res.r), res.err);
    assert_int_equal(res.format, format);
    assert_expected(&res.certs, name);
    result_done(&res);
}

static char *fixture_password(const char *name)
{
    char path[256];

    snprintf(path, sizeof(path), "jks/%s.pass", name);
    return fixture_text(path);
}

/* A keystore built by hand: big-endian writers, then the keyed digest. */
struct ks {
    uint8_t buf[16384];
    size_t len;
};

static void put(struct ks *ks, const void *p, size_t n)
{
    assert_true(n <= sizeof(ks->buf) - ks->len);
    memcpy(ks->buf + ks->len, p, n);
    ks->len += n;
}

static void put_u8(struct ks *ks, uint8_t v)
{
    put(ks, &v, 1);
}

static void put_u16(struct ks *ks, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

    put(ks, b, 2);
}

static void put_u32(struct ks *ks, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

    put(ks, b, 4);
}

static void put_u64(struct ks *ks, uint64_t v)
{
    put_u32(ks, (uint32_t)(v >> 32));
    put_u32(ks, (uint32_t)v);
}

static void put_utf(struct ks *ks, const char *s)
{
    put_u16(ks, (uint16_t)strlen(s));
    put(ks, s, strlen(s));
}

static void put_header(struct ks *ks, uint32_t magic, uint32_t version, uint32_t count)
{
    ks->len = 0;
    put_u32(ks, magic);
    put_u32(ks, version);
    put_u32(ks, count);
}

static void put_cert(struct ks *ks, uint32_t version, const uint8_t *der, size_t len)
{
    if (version == 2)
        put_utf(ks, "X.509");
    put_u32(ks, (uint32_t)len);
    put(ks, der, len);
}

static void put_trusted(struct ks *ks, uint32_t version, const char *alias, const uint8_t *der,
                        size_t len)
{
    put_u32(ks, 2);
    put_utf(ks, alias);
    put_u64(ks, 1700000000000ull);
    put_cert(ks, version, der, len);
}

/* Appends SHA-1(password16 || "Mighty Aphrodite" || body), password16 given as bytes. */
static void put_digest(struct ks *ks, const uint8_t *password16, size_t len)
{
    uint8_t md[DIGEST_LEN];
    unsigned int n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    assert_non_null(ctx);
    assert_true(EVP_DigestInit_ex(ctx, EVP_sha1(), NULL));
    assert_true(EVP_DigestUpdate(ctx, password16, len));
    assert_true(EVP_DigestUpdate(ctx, "Mighty Aphrodite", 16));
    assert_true(EVP_DigestUpdate(ctx, ks->buf, ks->len));
    assert_true(EVP_DigestFinal_ex(ctx, md, &n));
    assert_int_equal(n, DIGEST_LEN);
    EVP_MD_CTX_free(ctx);
    put(ks, md, DIGEST_LEN);
}

static const uint8_t changeit16[] = {
    0, 'c', 0, 'h', 0, 'a', 0, 'n', 0, 'g', 0, 'e', 0, 'i', 0, 't'
};

static uint32_t get_u32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void set_u32_at(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* xorshift32: reproducible input for the robustness tests. */
static uint32_t next_random(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* --- keystores made by keytool -------------------------------------------------------- */

static void test_jks_trusted_entry_is_read(void **state)
{
    struct result res;

    expect_file(state, "trusted.jks", KIGEN_FORMAT_JKS, changeit, 1);
    read_file(state, "trusted.jks", changeit, 1, &res);
    assert_int_equal(res.r, 1);
    assert_string_equal(res.certs.v[0].entry, "root");
    assert_string_equal(res.certs.v[0].subject, "CN=kigen JKS root,O=kigen test");
    result_done(&res);
}

static void test_jks_chain_entries_are_numbered(void **state)
{
    struct result res;

    expect_file(state, "chain.jks", KIGEN_FORMAT_JKS, changeit, 1);
    read_file(state, "chain.jks", changeit, 1, &res);
    assert_int_equal(res.r, 3);
    /* File order is chain order: leaf, then each issuer. */
    assert_string_equal(res.certs.v[0].entry, "server");
    assert_string_equal(res.certs.v[1].entry, "server#1");
    assert_string_equal(res.certs.v[2].entry, "server#2");
    assert_string_equal(res.certs.v[0].subject, "CN=server.example.test,O=kigen test");
    assert_string_equal(res.certs.v[0].issuer, res.certs.v[1].subject);
    assert_string_equal(res.certs.v[1].issuer, res.certs.v[2].subject);
    assert_string_equal(res.certs.v[2].issuer, res.certs.v[2].subject);
    result_done(&res);
}

static void test_jks_mixed_entries_are_all_read(void **state)
{
    expect_file(state, "multi.jks", KIGEN_FORMAT_JKS, changeit, 1);
}

static void test_jks_without_password_certs_are_read_unchecked(void **state)
{
    static const char *const only_null[] = { NULL, NULL };
    struct kigen_passwords none = { NULL, 0 };
    struct result res;
    size_t len;
    uint8_t *buf = fixture_load("jks/multi.jks", &len);

    memset(&res, 0, sizeof(res));
    res.r = kigen_read_jks(*state, buf, len, NULL, &res.certs, NULL, res.err, sizeof(res.err));
    assert_int_equal(res.r, 6);
    assert_expected(&res.certs, "multi.jks");
    result_done(&res);

    res.r = kigen_read_jks(*state, buf, len, &none, &res.certs, NULL, res.err, sizeof(res.err));
    assert_int_equal(res.r, 6);
    result_done(&res);

    expect_file(state, "multi.jks", KIGEN_FORMAT_JKS, only_null, 2);

    /* Without a password a damaged digest goes unnoticed, as in Java. */
    buf[len - 1] ^= 1;
    read_buf(state, buf, len, NULL, 0, &res);
    assert_int_equal(res.r, 6);
    result_done(&res);
    free(buf);
}

static void test_jks_wrong_password_is_reported_and_certs_kept(void **state)
{
    static const char *const wrong[] = { "secret-one", "secret-two" };
    struct result res;

    read_file(state, "multi.jks", wrong, 2, &res);
    assert_int_equal(res.r, -KIGEN_E_WRONG_PASSWORD);
    assert_int_equal(res.format, KIGEN_FORMAT_JKS);
    assert_expected(&res.certs, "multi.jks");
    assert_true(res.err[0] != '\0');
    assert_null(strstr(res.err, "secret-one"));
    assert_null(strstr(res.err, "secret-two"));
    result_done(&res);
}

static void test_jks_later_password_fits(void **state)
{
    static const char *const later[] = { "not-it", NULL, "", "changeit" };

    expect_file(state, "multi.jks", KIGEN_FORMAT_JKS, later, 4);
}

static void test_jks_tampered_body_is_wrong_password(void **state)
{
    struct result res;
    size_t len;
    uint8_t *buf = fixture_load("jks/trusted.jks", &len);

    /* A byte of the signature: the certificate still decodes, the digest no longer fits. */
    buf[len - DIGEST_LEN - 3] ^= 1;
    read_buf(state, buf, len, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_WRONG_PASSWORD);
    assert_int_equal(res.certs.n, 1);
    result_done(&res);
    free(buf);
}

static void test_jks_empty(void **state)
{
    static const char *const wrong[] = { "wrong-password" };
    struct result res;

    read_file(state, "empty.jks", changeit, 1, &res);
    assert_int_equal(res.r, 0);
    assert_int_equal(res.format, KIGEN_FORMAT_JKS);
    result_done(&res);
    read_file(state, "empty.jks", wrong, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_WRONG_PASSWORD);
    assert_int_equal(res.certs.n, 0);
    result_done(&res);
}

static void test_jks_non_ascii_password_and_alias(void **state)
{
    char *password = fixture_password("nonascii.jks");
    const char *const pw[] = { password };
    struct result res;

    /* "pässwörd" and a character beyond the BMP: UTF-16 with a surrogate pair. */
    assert_string_equal(password, "p\xc3\xa4ssw\xc3\xb6rd\xf0\x9f\x94\x91");
    expect_file(state, "nonascii.jks", KIGEN_FORMAT_JKS, pw, 1);
    read_file(state, "nonascii.jks", pw, 1, &res);
    assert_int_equal(res.r, 1);
    /* keytool writes the key as two 3-byte surrogates; the entry is plain UTF-8. */
    assert_string_equal(res.certs.v[0].entry, "cl\xc3\xa9\xf0\x9f\x94\x91");
    result_done(&res);

    read_file(state, "nonascii.jks", changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_WRONG_PASSWORD);
    assert_int_equal(res.certs.n, 1);
    result_done(&res);
    free(password);
}

static void test_jceks_entries_are_read(void **state)
{
    expect_file(state, "trusted.jceks", KIGEN_FORMAT_JCEKS, changeit, 1);
    expect_file(state, "chain.jceks", KIGEN_FORMAT_JCEKS, changeit, 1);
    expect_file(state, "multi.jceks", KIGEN_FORMAT_JCEKS, changeit, 1);
}

static void test_jceks_secret_key_entries_are_skipped(void **state)
{
    static const uint8_t ser_magic[] = { 0xac, 0xed, 0x00, 0x05 };
    struct result res;
    size_t len;
    uint8_t *buf = fixture_load("jks/seckey.jceks", &len);
    const uint8_t *first_secret = memmem(buf, len, ser_magic, sizeof(ser_magic));
    const uint8_t *last_cert = NULL, *p = buf;

    /* The fixture is only a test if a certificate follows a secret key. */
    while ((p = memmem(p, len - (size_t)(p - buf), "\x00\x05X.509", 7))) {
        last_cert = p;
        p++;
    }
    assert_non_null(first_secret);
    assert_non_null(last_cert);
    assert_true(first_secret < last_cert);

    read_buf(state, buf, len, changeit, 1, &res);
    if (res.r < 0)
        fail_msg("%s: %s", kigen_err_name(res.r), res.err);
    assert_int_equal(res.format, KIGEN_FORMAT_JCEKS);
    assert_expected(&res.certs, "seckey.jceks");
    result_done(&res);
    free(buf);
}

/* --- damaged and hostile input --------------------------------------------------------- */

/* Every prefix: malformed, never a crash, and the certificates are those of the whole file. */
static void truncate_everywhere(void **state, const char *name)
{
    char *password = fixture_password(name);
    const char *const pw[] = { password };
    struct result full, res;
    char path[256], a[65], b[65];
    size_t len;
    uint8_t *buf, *copy;

    snprintf(path, sizeof(path), "jks/%s", name);
    buf = fixture_load(path, &len);
    read_buf(state, buf, len, pw, 1, &full);
    assert_true(full.r > 0);
    for (size_t cut = 0; cut < len; cut++) {
        /* A copy of exactly cut bytes, so that ASan sees any read past the end. */
        copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, buf, cut);
        read_buf(state, copy, cut, pw, 1, &res);
        if (res.r != -KIGEN_E_MALFORMED)
            fail_msg("%s cut at %zu: got %d (%s)", name, cut, res.r, res.err);
        assert_true(res.certs.n <= full.certs.n);
        for (size_t i = 0; i < res.certs.n; i++) {
            kigen_cert_sha256_hex(&res.certs.v[i], a);
            kigen_cert_sha256_hex(&full.certs.v[i], b);
            assert_string_equal(a, b);
            assert_string_equal(res.certs.v[i].entry, full.certs.v[i].entry);
        }
        /* Cut inside the digest alone: every certificate is there. */
        if (cut >= len - DIGEST_LEN)
            assert_int_equal(res.certs.n, full.certs.n);
        result_done(&res);
        free(copy);
    }
    result_done(&full);
    free(buf);
    free(password);
}

static void test_jks_truncated_at_every_offset_never_crashes(void **state)
{
    truncate_everywhere(state, "multi.jks");
    truncate_everywhere(state, "nonascii.jks");
}

static void test_jceks_truncated_at_every_offset_never_crashes(void **state)
{
    truncate_everywhere(state, "seckey.jceks");
}

static void test_jks_random_bytes_after_magic(void **state)
{
    static const uint32_t magics[] = { 0xfeedfeed, 0xcecececeu };
    uint32_t seed = 0x6b696765;
    struct result res;
    struct ks ks;
    size_t n;

    for (int i = 0; i < 4000; i++) {
        put_header(&ks, magics[i & 1], next_random(&seed) % 3, next_random(&seed) % 4);
        /* Half the time keep a plausible version, to get past the header. */
        if (i & 2)
            set_u32_at(ks.buf + 4, next_random(&seed));
        n = next_random(&seed) % 600;
        for (size_t k = 0; k < n; k++)
            put_u8(&ks, (uint8_t)next_random(&seed));
        read_buf(state, ks.buf, ks.len, (i & 4) ? changeit : NULL, (i & 4) ? 1 : 0, &res);
        assert_int_equal(res.format, i & 1 ? KIGEN_FORMAT_JCEKS : KIGEN_FORMAT_JKS);
        /* No certificate can come of it; an empty keystore could, by chance. */
        assert_true(res.r <= 0);
        assert_int_equal(res.certs.n, 0);
        result_done(&res);
    }
}

/* Random bytes changed in real keystores: framing, counts and serialization streams. */
static void test_jks_flipped_bytes_never_crash(void **state)
{
    static const char *const names[] = { "jks/seckey.jceks", "jks/multi.jks" };
    uint32_t seed = 0x4a4b5321;
    struct result res;
    size_t len;

    for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        uint8_t *orig = fixture_load(names[f], &len);
        uint8_t *buf = malloc(len);

        assert_non_null(buf);
        for (int i = 0; i < 1500; i++) {
            memcpy(buf, orig, len);
            for (uint32_t k = 1 + next_random(&seed) % 4; k > 0; k--) {
                size_t at = next_random(&seed) % len;

                buf[at] = (i & 1) ? (uint8_t)next_random(&seed) : (uint8_t)(buf[at] ^ 0x80);
            }
            read_buf(state, buf, len, changeit, 1, &res);
            result_done(&res);
        }
        free(buf);
        free(orig);
    }
}

static void test_jks_huge_count_is_malformed(void **state)
{
    static const uint32_t counts[] = { 2, 0x7fffffff, 0x80000000u, 0xffffffffu };
    struct result res;
    size_t len;
    uint8_t *buf = fixture_load("jks/trusted.jks", &len);

    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        set_u32_at(buf + 8, counts[i]);
        read_buf(state, buf, len, changeit, 1, &res);
        assert_int_equal(res.r, -KIGEN_E_MALFORMED);
        /* The one real entry is read before the count runs past the end. */
        assert_int_equal(res.certs.n, 1);
        assert_string_equal(res.certs.v[0].entry, "root");
        result_done(&res);
    }
    free(buf);
}

static void test_jks_huge_lengths_are_malformed(void **state)
{
    struct result res;
    size_t len, key_len;
    uint8_t *buf = fixture_load("jks/chain.jks", &len);
    uint8_t *save = malloc(len);
    /* magic, version, count, tag, alias "server", date: then the key length. */
    const size_t alias_at = 16, key_at = 32;

    assert_non_null(save);
    memcpy(save, buf, len);
    assert_int_equal(get_u32_at(buf + 12), 1);
    assert_memory_equal(buf + alias_at, "\x00\x06server", 8);
    key_len = get_u32_at(buf + key_at);
    assert_true(key_at + 4 + key_len + 4 < len);
    assert_int_equal(get_u32_at(buf + key_at + 4 + key_len), 3);

    /* Key length past the end, and the largest values. */
    for (uint32_t v = 0xfffffff0u; v != 0; v++) {
        set_u32_at(buf + key_at, v);
        read_buf(state, buf, len, changeit, 1, &res);
        assert_int_equal(res.r, -KIGEN_E_MALFORMED);
        assert_int_equal(res.certs.n, 0);
        result_done(&res);
    }
    memcpy(buf, save, len);

    /* Chain count far beyond the three certificates: those three are kept. */
    set_u32_at(buf + key_at + 4 + key_len, 0xffffffffu);
    read_buf(state, buf, len, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_MALFORMED);
    assert_int_equal(res.certs.n, 3);
    result_done(&res);
    memcpy(buf, save, len);

    /* First certificate's length (after its "X.509" type) past the end. */
    set_u32_at(buf + key_at + 4 + key_len + 4 + 7, 0x7fffffff);
    read_buf(state, buf, len, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_MALFORMED);
    assert_int_equal(res.certs.n, 0);
    result_done(&res);
    memcpy(buf, save, len);

    /* Alias length past the end. */
    buf[alias_at] = 0xff;
    buf[alias_at + 1] = 0xff;
    read_buf(state, buf, len, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_MALFORMED);
    assert_int_equal(res.certs.n, 0);
    result_done(&res);

    free(save);
    free(buf);
}

static void test_jks_unknown_tag_is_malformed(void **state)
{
    static const uint32_t tags[] = { 0, 3, 4, 0xffffffffu };
    struct result res;
    size_t len;
    uint8_t *buf = fixture_load("jks/trusted.jks", &len);

    /* 3 is a secret key, which only JCEKS knows. */
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
        set_u32_at(buf + 12, tags[i]);
        read_buf(state, buf, len, NULL, 0, &res);
        assert_int_equal(res.r, -KIGEN_E_MALFORMED);
        assert_int_equal(res.certs.n, 0);
        result_done(&res);
    }
    free(buf);
}

static void test_jks_trailing_bytes_are_malformed(void **state)
{
    struct result res;
    size_t len;
    uint8_t *buf = fixture_load("jks/trusted.jks", &len);
    uint8_t *longer = malloc(len + 1);

    assert_non_null(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    read_buf(state, longer, len + 1, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_MALFORMED);
    assert_int_equal(res.certs.n, 1);
    result_done(&res);
    free(longer);
    free(buf);
}

static void test_jks_other_magic_or_version_is_malformed(void **state)
{
    struct result res;
    size_t len;
    uint8_t *buf = fixture_load("jks/trusted.jks", &len);

    set_u32_at(buf + 4, 3);
    read_buf(state, buf, len, NULL, 0, &res);
    assert_int_equal(res.r, -KIGEN_E_MALFORMED);
    assert_int_equal(res.format, KIGEN_FORMAT_JKS);
    result_done(&res);

    set_u32_at(buf, 0xfeedfeee);
    read_buf(state, buf, len, NULL, 0, &res);
    assert_int_equal(res.r, -KIGEN_E_MALFORMED);
    assert_int_equal(res.format, KIGEN_FORMAT_UNKNOWN);
    result_done(&res);
    free(buf);
}

/* --- keystores built by hand ------------------------------------------------------------- */

static void test_jks_version_1_has_no_certificate_type(void **state)
{
    static const char *const wrong[] = { "changeme" };
    struct result res;
    struct ks ks;
    size_t len;
    uint8_t *der = fixture_load("jks/root.der", &len);
    uint8_t sha[32];

    assert_true(EVP_Digest(der, len, sha, NULL, EVP_sha256(), NULL));
    put_header(&ks, 0xfeedfeed, 1, 2);
    put_u32(&ks, 1);
    put_utf(&ks, "key");
    put_u64(&ks, 1700000000000ull);
    put_u32(&ks, 3);
    put(&ks, "\x01\x02\x03", 3);
    put_u32(&ks, 2);
    put_cert(&ks, 1, der, len);
    put_cert(&ks, 1, der, len);
    put_trusted(&ks, 1, "ca", der, len);
    put_digest(&ks, changeit16, sizeof(changeit16));

    read_buf(state, ks.buf, ks.len, changeit, 1, &res);
    assert_int_equal(res.r, 3);
    assert_string_equal(res.certs.v[0].entry, "key");
    assert_string_equal(res.certs.v[1].entry, "key#1");
    assert_string_equal(res.certs.v[2].entry, "ca");
    for (size_t i = 0; i < 3; i++)
        assert_memory_equal(res.certs.v[i].sha256, sha, sizeof(sha));
    result_done(&res);

    read_buf(state, ks.buf, ks.len, wrong, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_WRONG_PASSWORD);
    assert_int_equal(res.certs.n, 3);
    result_done(&res);
    free(der);
}

static void test_jks_bad_der_is_malformed_and_later_entries_kept(void **state)
{
    static const uint8_t junk[] = { 0x30, 0x03, 0x02, 0x01, 0x00 };
    struct result res;
    struct ks ks;
    size_t len;
    uint8_t *der = fixture_load("jks/root.der", &len);

    put_header(&ks, 0xfeedfeed, 2, 3);
    put_trusted(&ks, 2, "before", der, len);
    put_trusted(&ks, 2, "junk", junk, sizeof(junk));
    put_trusted(&ks, 2, "after", der, len);
    put_digest(&ks, changeit16, sizeof(changeit16));
    read_buf(state, ks.buf, ks.len, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_MALFORMED);
    assert_non_null(strstr(res.err, "junk"));
    assert_int_equal(res.certs.n, 2);
    assert_string_equal(res.certs.v[0].entry, "before");
    assert_string_equal(res.certs.v[1].entry, "after");
    result_done(&res);

    /* A type other than X.509: unsupported, the others kept; the first error is told. */
    put_header(&ks, 0xfeedfeed, 2, 3);
    put_u32(&ks, 2);
    put_utf(&ks, "pgp");
    put_u64(&ks, 0);
    put_utf(&ks, "PGP");
    put_u32(&ks, (uint32_t)len);
    put(&ks, der, len);
    put_trusted(&ks, 2, "junk", junk, sizeof(junk));
    put_trusted(&ks, 2, "x509", der, len);
    put_digest(&ks, changeit16, sizeof(changeit16));
    read_buf(state, ks.buf, ks.len, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_UNSUPPORTED);
    assert_non_null(strstr(res.err, "pgp"));
    assert_int_equal(res.certs.n, 1);
    assert_string_equal(res.certs.v[0].entry, "x509");
    result_done(&res);
    free(der);
}

static void test_jks_alias_modified_utf8_becomes_utf8(void **state)
{
    /* "a", NUL as C0 80, U+1F511 as two 3-byte surrogates, a lone high surrogate. */
    static const char mutf8[] = "a\xc0\x80\xed\xa0\xbd\xed\xb4\x91\xed\xa0\x80z";
    struct result res;
    struct ks ks;
    size_t len;
    uint8_t *der = fixture_load("jks/root.der", &len);

    put_header(&ks, 0xfeedfeed, 2, 1);
    put_trusted(&ks, 2, mutf8, der, len);
    put_digest(&ks, changeit16, sizeof(changeit16));
    read_buf(state, ks.buf, ks.len, changeit, 1, &res);
    assert_int_equal(res.r, 1);
    assert_string_equal(res.certs.v[0].entry, "a\xef\xbf\xbd\xf0\x9f\x94\x91\xef\xbf\xbdz");
    result_done(&res);

    /* A byte readUTF() rejects. */
    put_header(&ks, 0xfeedfeed, 2, 1);
    put_trusted(&ks, 2, "bad\xff", der, len);
    put_digest(&ks, changeit16, sizeof(changeit16));
    read_buf(state, ks.buf, ks.len, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_MALFORMED);
    assert_int_equal(res.certs.n, 0);
    result_done(&res);
    free(der);
}

static void test_jks_password_of_three_byte_utf8_fits(void **state)
{
    /* "€uro": U+20AC is three bytes of UTF-8 and one UTF-16 unit. */
    static const uint8_t pw16[] = { 0x20, 0xac, 0, 'u', 0, 'r', 0, 'o' };
    static const char *const utf8[] = { "\xe2\x82\xacuro" };
    struct result res;
    struct ks ks;
    size_t len;
    uint8_t *der = fixture_load("jks/root.der", &len);

    put_header(&ks, 0xfeedfeed, 2, 1);
    put_trusted(&ks, 2, "ca", der, len);
    put_digest(&ks, pw16, sizeof(pw16));
    read_buf(state, ks.buf, ks.len, utf8, 1, &res);
    assert_int_equal(res.r, 1);
    result_done(&res);
    free(der);
}

static void test_jks_latin1_password_fits_like_utf8(void **state)
{
    /* "pässwörd" as Java's UTF-16BE. */
    static const uint8_t pw16[] = {
        0, 'p', 0, 0xe4, 0, 's', 0, 's', 0, 'w', 0, 0xf6, 0, 'r', 0, 'd'
    };
    static const char *const utf8[] = { "p\xc3\xa4ssw\xc3\xb6rd" };
    static const char *const latin1[] = { "p\xe4ssw\xf6rd" };
    struct result res;
    struct ks ks;
    size_t len;
    uint8_t *der = fixture_load("jks/root.der", &len);

    put_header(&ks, 0xcecececeu, 2, 1);
    put_trusted(&ks, 2, "ca", der, len);
    put_digest(&ks, pw16, sizeof(pw16));
    read_buf(state, ks.buf, ks.len, utf8, 1, &res);
    assert_int_equal(res.r, 1);
    result_done(&res);
    read_buf(state, ks.buf, ks.len, latin1, 1, &res);
    assert_int_equal(res.r, 1);
    result_done(&res);
    read_buf(state, ks.buf, ks.len, changeit, 1, &res);
    assert_int_equal(res.r, -KIGEN_E_WRONG_PASSWORD);
    result_done(&res);
    free(der);
}

/* Java serialization streams as a secret key entry, followed by a trusted certificate. */
static void put_secret(struct ks *ks, const uint8_t *stream, size_t n)
{
    put_u32(ks, 3);
    put_utf(ks, "secret");
    put_u64(ks, 1700000000000ull);
    put(ks, stream, n);
}

static int read_secret(void **state, const uint8_t *stream, size_t n, struct result *res)
{
    struct ks ks;
    size_t len;
    uint8_t *der = fixture_load("jks/root.der", &len);

    put_header(&ks, 0xcecececeu, 2, 3);
    put_trusted(&ks, 2, "first", der, len);
    put_secret(&ks, stream, n);
    put_trusted(&ks, 2, "last", der, len);
    put_digest(&ks, changeit16, sizeof(changeit16));
    read_buf(state, ks.buf, ks.len, changeit, 1, res);
    free(der);
    return res->r;
}

static void test_jceks_serialization_grammar_is_skipped(void **state)
{
    /*
     * Hand-written: a reset, then an object of class "K" (fields: int, Object[] and
     * String, with a writeObject annotation of short and long block data and an object)
     * whose superclass is a proxy; the fields hold an enum, a long string, references.
     */
    static const uint8_t stream[] = {
        0xac, 0xed, 0x00, 0x05, 0x79,                        /* header, TC_RESET */
        0x73, 0x72, 0x00, 0x01, 'K', 0, 0, 0, 0, 0, 0, 0, 1, /* object, classdesc K: h0 */
        0x03, 0x00, 0x03,                       /* SERIALIZABLE|WRITE_METHOD, 3 fields */
        'I', 0x00, 0x01, 'i',                   /* int i */
        '[', 0x00, 0x01, 'a', 0x74, 0x00, 0x13, /* Object[] a, type string: h1 */
        '[', 'L', 'j', 'a', 'v', 'a', '/', 'l', 'a', 'n', 'g', '/', 'O', 'b', 'j', 'e', 'c', 't',
        ';', 'L', 0x00, 0x01, 's', 0x71, 0x00, 0x7e, 0x00, 0x01, /* String s, type by reference */
        0x78,                                                    /* class annotation: none */
        0x7d, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 'P',           /* super: proxy class desc h2 */
        0x78, 0x70,                                              /* its annotation, no super */
        /* new handle h3 for the object; data of the proxy (none), then of K: */
        0x00, 0x00, 0x00, 0x2a,                                   /* i */
        0x75, 0x72, 0x00, 0x02, '[', 'L', 0, 0, 0, 0, 0, 0, 0, 2, /* array desc h4 */
        0x02, 0x00, 0x00, 0x78, 0x70,                        /* no fields, no super; array h5 */
        0x00, 0x00, 0x00, 0x03,                              /* three elements: */
        0x7e, 0x72, 0x00, 0x01, 'E', 0, 0, 0, 0, 0, 0, 0, 3, /* enum, desc E h6 */
        0x12, 0x00, 0x00, 0x78, 0x70,                        /* SC_ENUM|SERIALIZABLE; enum h7 */
        0x74, 0x00, 0x03, 'O', 'N', 'E',                     /* its name, h8 */
        0x7c, 0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i',              /* long string h9 */
        0x71, 0x00, 0x7e, 0x00, 0x05,                        /* the array itself */
        0x70,                                                /* s = null */
        0x77, 0x02, 0xde, 0xad,                              /* annotation: block data */
        0x7a, 0x00, 0x00, 0x00, 0x01, 0xbe,                  /* long block data */
        0x75, 0x72, 0x00, 0x02, '[', 'I', 0, 0, 0, 0, 0, 0, 0, 4, /* int[2] */
        0x02, 0x00, 0x00, 0x78, 0x70, 0x00, 0x00, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2, 0x76, 0x71,
        0x00, 0x7e, 0x00, 0x00, /* class K, by reference */
        0x78,                   /* end of annotation */
    };
    struct result res;

    if (read_secret(state, stream, sizeof(stream), &res) < 0)
        fail_msg("%s: %s", kigen_err_name(res.r), res.err);
    assert_int_equal(res.r, 2);
    assert_string_equal(res.certs.v[0].entry, "first");
    assert_string_equal(res.certs.v[1].entry, "last");
    result_done(&res);
}

/*
 * Two entries under one alias: what keytool -list shows. Java keeps entries under the alias
 * as written (a later "dup" replaces an earlier "dup") and looks each alias up in lower case,
 * so "dup" then "DUP" lists both aliases with the certificate of "dup".
 */
static void test_jks_duplicate_alias_reads_as_java_does(void **state)
{
    static const char *const names[] = {
        "dupcase.jks",   "duplower.jks",   "dupsame.jks",   "dupchain.jks",
        "dupcase.jceks", "duplower.jceks", "dupsame.jceks",
    };
    struct result res;
    const struct kigen_cert *dup, *upper;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        expect_file(state, names[i],
                    strstr(names[i], ".jceks") ? KIGEN_FORMAT_JCEKS : KIGEN_FORMAT_JKS, changeit,
                    1);
    /* The same, spelled out: the later entry is dropped when only its case differs... */
    read_file(state, "dupcase.jks", changeit, 1, &res);
    assert_int_equal(res.r, 2);
    dup = find_entry(&res.certs, "dup");
    upper = find_entry(&res.certs, "DUP");
    assert_non_null(dup);
    assert_non_null(upper);
    assert_string_equal(dup->subject, "CN=kigen JKS root,O=kigen test");
    assert_memory_equal(dup->sha256, upper->sha256, KIGEN_SHA256_LEN);
    result_done(&res);
    /* ...and wins when the alias is the same. */
    read_file(state, "dupsame.jks", changeit, 1, &res);
    assert_int_equal(res.r, 1);
    assert_string_equal(res.certs.v[0].entry, "dup");
    assert_string_equal(res.certs.v[0].subject, "CN=kigen JKS other CA,O=kigen test");
    result_done(&res);
}

static void test_jceks_bad_serialization_keeps_earlier_certs(void **state)
{
    /* Externalizable without block data: its length is known only to its class. */
    static const uint8_t external[] = {
        0xac, 0xed, 0x00, 0x05, 0x73, 0x72, 0x00, 0x01, 'X',  0,    0,    0,
        0,    0,    0,    0,    1,    0x04, 0x00, 0x00, 0x78, 0x70, 0x01, 0x02,
    };
    /* A reference to a handle that does not exist; a class that is its own superclass. */
    static const uint8_t dangling[] = { 0xac, 0xed, 0x00, 0x05, 0x71, 0x00, 0x7e, 0x00, 0x00 };
    static const uint8_t cycle[] = {
        0xac, 0xed, 0x00, 0x05, 0x73, 0x72, 0x00, 0x01, 'C',  0,    0,    0,    0,
        0,    0,    0,    1,    0x02, 0x00, 0x00, 0x78, 0x71, 0x00, 0x7e, 0x00, 0x00,
    };
    static const uint8_t bad_header[] = { 0xac, 0xed, 0x00, 0x04, 0x70 };
    static const uint8_t exception[] = { 0xac, 0xed, 0x00, 0x05, 0x7b };
    /* Header, TC_ARRAY of a new class "[L" (serializable, no fields, no super): h0, h1. */
    static const char array_head[] = "\xac\xed\x00\x05\x75\x72\x00\x02[L\0\0\0\0\0\0\0\0"
                                     "\x02\0\0\x78\x70";
    /* Arrays of Object nested deeper than any real key. */
    uint8_t deep[sizeof(array_head) - 1 + 4 + 1000 * 10];
    struct result res;
    size_t n;

    assert_int_equal(read_secret(state, external, sizeof(external), &res), -KIGEN_E_UNSUPPORTED);
    assert_int_equal(res.certs.n, 1);
    result_done(&res);
    assert_int_equal(read_secret(state, dangling, sizeof(dangling), &res), -KIGEN_E_MALFORMED);
    assert_int_equal(res.certs.n, 1);
    result_done(&res);
    assert_int_equal(read_secret(state, cycle, sizeof(cycle), &res), -KIGEN_E_MALFORMED);
    result_done(&res);
    assert_int_equal(read_secret(state, bad_header, sizeof(bad_header), &res), -KIGEN_E_MALFORMED);
    result_done(&res);
    assert_int_equal(read_secret(state, exception, sizeof(exception), &res), -KIGEN_E_MALFORMED);
    result_done(&res);

    /*
     * An Object[] of 70000 empty strings: more handles than the reader keeps. Too big for
     * struct ks: a JCEKS with this entry alone, built in place.
     */
    {
        const uint32_t strings = 70000;
        const size_t total =
            12 + 4 + 8 + 8 + sizeof(array_head) - 1 + 4 + 3 * (size_t)strings + DIGEST_LEN;
        uint8_t *buf = calloc(1, total);
        size_t o = 0;

        assert_non_null(buf);
        set_u32_at(buf, 0xcecececeu);
        set_u32_at(buf + 4, 2);
        set_u32_at(buf + 8, 1);
        set_u32_at(buf + 12, 3);
        memcpy(buf + 16, "\x00\x06secret", 8);
        o = 16 + 8 + 8;
        memcpy(buf + o, array_head, sizeof(array_head) - 1);
        o += sizeof(array_head) - 1;
        set_u32_at(buf + o, strings);
        o += 4;
        for (uint32_t i = 0; i < strings; i++, o += 3)
            memcpy(buf + o, "\x74\x00\x00", 3);
        assert_int_equal(o + DIGEST_LEN, total);
        read_buf(state, buf, total, NULL, 0, &res);
        assert_int_equal(res.r, -KIGEN_E_MALFORMED);
        assert_non_null(strstr(res.err, "serialization"));
        result_done(&res);
        free(buf);
    }

    /* 1000 nested Object[1]. */
    memcpy(deep, array_head, sizeof(array_head) - 1);
    n = sizeof(array_head) - 1;
    set_u32_at(deep + n, 1);
    n += 4;
    for (int i = 0; i < 1000; i++) {
        memcpy(deep + n, "\x75\x71\x00\x7e\x00\x00\x00\x00\x00\x01", 10);
        n += 10;
    }
    assert_true(n <= sizeof(deep));
    assert_int_equal(read_secret(state, deep, n, &res), -KIGEN_E_MALFORMED);
    assert_int_equal(res.certs.n, 1);
    result_done(&res);
}

static int ctx_setup(void **state)
{
    struct kigen_read_ctx *ctx = NULL;

    if (kigen_read_ctx_new(&ctx) < 0)
        return -1;
    *state = ctx;
    return 0;
}

static int ctx_teardown(void **state)
{
    kigen_read_ctx_free(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jks_trusted_entry_is_read),
        cmocka_unit_test(test_jks_chain_entries_are_numbered),
        cmocka_unit_test(test_jks_mixed_entries_are_all_read),
        cmocka_unit_test(test_jks_without_password_certs_are_read_unchecked),
        cmocka_unit_test(test_jks_wrong_password_is_reported_and_certs_kept),
        cmocka_unit_test(test_jks_later_password_fits),
        cmocka_unit_test(test_jks_tampered_body_is_wrong_password),
        cmocka_unit_test(test_jks_empty),
        cmocka_unit_test(test_jks_non_ascii_password_and_alias),
        cmocka_unit_test(test_jceks_entries_are_read),
        cmocka_unit_test(test_jceks_secret_key_entries_are_skipped),
        cmocka_unit_test(test_jks_truncated_at_every_offset_never_crashes),
        cmocka_unit_test(test_jceks_truncated_at_every_offset_never_crashes),
        cmocka_unit_test(test_jks_random_bytes_after_magic),
        cmocka_unit_test(test_jks_flipped_bytes_never_crash),
        cmocka_unit_test(test_jks_huge_count_is_malformed),
        cmocka_unit_test(test_jks_huge_lengths_are_malformed),
        cmocka_unit_test(test_jks_unknown_tag_is_malformed),
        cmocka_unit_test(test_jks_trailing_bytes_are_malformed),
        cmocka_unit_test(test_jks_other_magic_or_version_is_malformed),
        cmocka_unit_test(test_jks_version_1_has_no_certificate_type),
        cmocka_unit_test(test_jks_bad_der_is_malformed_and_later_entries_kept),
        cmocka_unit_test(test_jks_alias_modified_utf8_becomes_utf8),
        cmocka_unit_test(test_jks_password_of_three_byte_utf8_fits),
        cmocka_unit_test(test_jks_latin1_password_fits_like_utf8),
        cmocka_unit_test(test_jceks_serialization_grammar_is_skipped),
        cmocka_unit_test(test_jceks_bad_serialization_keeps_earlier_certs),
        cmocka_unit_test(test_jks_duplicate_alias_reads_as_java_does),
    };

    return cmocka_run_group_tests(tests, ctx_setup, ctx_teardown);
}
