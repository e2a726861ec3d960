/* jwt: RS256 verification of PropelAuth access tokens.
 *
 * Everything an attacker controls is bounded and checked before any RSA work:
 * the token is split with one linear scan, each segment must be canonical
 * unpadded base64url, the header is capped at about 1 KiB and parsed with
 * duplicate keys refused, and the payload's nesting depth is measured before
 * the signature is checked. The payload JSON itself is parsed only after the
 * signature passes, because on many-org tokens that parse dominates the cost.
 * The algorithm never comes from the token; the only key material ever used is
 * the caller's list of RSA keys. */
#include "jwt.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "jnum.h"
#include "util.h"

/* Limits. The header of a genuine token is ~40 bytes; 1 KiB of JSON leaves room
 * for a kid and a few registered fields without letting a header become work. */
#define JWT_MAX_HEADER_JSON 1024
#define JWT_MAX_HEADER_B64 1366 /* ceil(1024 * 4 / 3) */
#define JWT_MAX_HEADER_DEPTH 8
#define JWT_MAX_PAYLOAD_DEPTH 64
#define JWT_MAX_KID 256
#define JWT_DEFAULT_MAX_TOKEN 65536 /* when the caller passes 0 */
#define JWT_MIN_KEY_BITS 2048
#define JWT_MAX_KEY_BITS 8192 /* bounds the cost of one verification */
#define JWT_MAX_SIG_BYTES (JWT_MAX_KEY_BITS / 8)
#define JWT_MAX_PEM 65536

/* Verification contexts kept per key: setting one up (provider lookup, key
 * export, padding and digest parameters) costs about as much as a third of
 * the RSA operation, and a forged token should cost one RSA operation. A
 * context is used by one thread at a time: taken from the key's spares under
 * its lock, given back after. */
#define JWT_SPARE_CTX 8

struct jwt_key {
    EVP_PKEY *pkey;
    size_t sig_len; /* modulus size in bytes: the only valid signature length */
    int refs;
    char fp[17];
    pthread_mutex_t mu; /* guards spare */
    int nspare;
    EVP_PKEY_CTX *spare[JWT_SPARE_CTX];
};

/* ---------------------------------------------------------------- base64url */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url digit values, -1 for every other byte: one load per character
 * instead of a chain of range tests (the decoder is on every token's path). */
/* clang-format off */
static const signed char b64url_digit[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
    -1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, 63,
    -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};
/* clang-format on */

static int b64url_val(unsigned char c)
{
    return b64url_digit[c];
}

long jwt_b64url_decode(const char *in, size_t len, unsigned char *out)
{
    /* A remainder of one character cannot encode a whole byte. */
    if (len % 4 == 1 || len > (size_t)LONG_MAX / 3 * 4 - 4)
        return -1;
    const unsigned char *u = (const unsigned char *)in;
    size_t o = 0, i = 0;
    for (; i + 4 <= len; i += 4) {
        int a = b64url_val(u[i]), b = b64url_val(u[i + 1]);
        int c = b64url_val(u[i + 2]), d = b64url_val(u[i + 3]);
        if ((a | b | c | d) < 0)
            return -1;
        uint32_t v = ((uint32_t)a << 18) | ((uint32_t)b << 12) | ((uint32_t)c << 6) | (uint32_t)d;
        out[o++] = (unsigned char)(v >> 16);
        out[o++] = (unsigned char)(v >> 8);
        out[o++] = (unsigned char)v;
    }
    size_t rem = len - i;
    if (rem == 2) {
        int a = b64url_val(u[i]), b = b64url_val(u[i + 1]);
        /* Unused low bits must be zero, so every byte string has exactly one
         * accepted spelling (anything keyed on the token relies on that). */
        if ((a | b) < 0 || (b & 0x0F) != 0)
            return -1;
        out[o++] = (unsigned char)((a << 2) | (b >> 4));
    } else if (rem == 3) {
        int a = b64url_val(u[i]), b = b64url_val(u[i + 1]), c = b64url_val(u[i + 2]);
        if ((a | b | c) < 0 || (c & 0x03) != 0)
            return -1;
        out[o++] = (unsigned char)((a << 2) | (b >> 4));
        out[o++] = (unsigned char)(((b & 0x0F) << 4) | (c >> 2));
    }
    out[o] = 0;
    return (long)o;
}

size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static size_t b64url_encoded_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* ---------------------------------------------------------------- keys */

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* Exactly one PEM block of the expected kind and nothing but whitespace
 * around it: two keys or trailing junk are configuration mistakes that a
 * lenient loader would silently resolve by picking one. */
static int pem_single_public_block(const char *pem, size_t len, size_t *start, size_t *end)
{
    static const char *const begins[] = {"-----BEGIN PUBLIC KEY-----",
                                         "-----BEGIN RSA PUBLIC KEY-----"};
    static const char *const ends[] = {"-----END PUBLIC KEY-----", "-----END RSA PUBLIC KEY-----"};
    size_t s = 0, e = len;
    while (s < e && (pem[s] == ' ' || pem[s] == '\t' || pem[s] == '\r' || pem[s] == '\n'))
        s++;
    while (e > s &&
           (pem[e - 1] == ' ' || pem[e - 1] == '\t' || pem[e - 1] == '\r' || pem[e - 1] == '\n'))
        e--;
    for (size_t k = 0; k < AG_ARRAY_LEN(begins); k++) {
        size_t bl = strlen(begins[k]), el = strlen(ends[k]);
        if (e - s < bl + el || memcmp(pem + s, begins[k], bl) != 0 ||
            memcmp(pem + e - el, ends[k], el) != 0)
            continue;
        /* No second block (and no NUL that would hide one from C string code). */
        if (memmem(pem + s + 1, e - s - 1, "-----BEGIN", 10) != NULL ||
            memchr(pem + s, '\0', e - s) != NULL)
            return -1;
        *start = s;
        *end = e;
        return 0;
    }
    return -1;
}

static int key_fingerprint(EVP_PKEY *pkey, char out[17])
{
    unsigned char *der = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = -1;
    int n = i2d_PUBKEY(pkey, &der);
    if (n <= 0)
        goto out;
    if (EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 8)
        goto out;
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    rc = 0;
out:
    OPENSSL_free(der);
    return rc;
}

int jwt_key_from_pem(const char *pem, size_t len, jwt_key **out, char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx = NULL;
    jwt_key *k = NULL;

    *out = NULL;
    if (!pem || len == 0 || len > JWT_MAX_PEM) {
        set_err(err, errlen, "verifier key: empty or oversized PEM");
        goto out;
    }
    size_t start = 0, end = 0;
    if (pem_single_public_block(pem, len, &start, &end) != 0) {
        set_err(err, errlen,
                "verifier key: expected exactly one 'BEGIN PUBLIC KEY' or 'BEGIN RSA PUBLIC KEY' "
                "block and nothing else");
        goto out;
    }
    /* Any key type is decoded (SPKI and PKCS#1 alike), so that a wrong type
     * gets its own message below instead of "unparsable". */
    dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL, EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (!dctx) {
        set_err(err, errlen, "verifier key: cannot create decoder");
        goto out;
    }
    const unsigned char *data = (const unsigned char *)pem + start;
    size_t dlen = end - start;
    if (OSSL_DECODER_from_data(dctx, &data, &dlen) != 1 || !pkey) {
        set_err(err, errlen, "verifier key: not a parsable RSA public key");
        goto out;
    }
    if (!EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_is_a(pkey, "RSA-PSS")) {
        set_err(err, errlen, "verifier key: not an RSA key");
        goto out;
    }
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits < JWT_MIN_KEY_BITS) {
        set_err(err, errlen, "verifier key: RSA modulus under 2048 bits is refused");
        goto out;
    }
    if (bits > JWT_MAX_KEY_BITS) {
        set_err(err, errlen, "verifier key: RSA modulus over 8192 bits is refused");
        goto out;
    }
    k = calloc(1, sizeof(*k));
    if (!k) {
        set_err(err, errlen, "verifier key: out of memory");
        goto out;
    }
    int size = EVP_PKEY_get_size(pkey);
    if (size <= 0 || size > JWT_MAX_SIG_BYTES || key_fingerprint(pkey, k->fp) != 0) {
        set_err(err, errlen, "verifier key: cannot read key parameters");
        goto out;
    }
    k->sig_len = (size_t)size;
    pthread_mutex_init(&k->mu, NULL);
    k->pkey = pkey;
    pkey = NULL;
    k->refs = 1;
    *out = k;
    k = NULL;
    rc = 0;
out:
    if (rc != 0)
        ERR_clear_error();
    free(k);
    EVP_PKEY_free(pkey);
    OSSL_DECODER_CTX_free(dctx);
    return rc;
}

jwt_key *jwt_key_ref(jwt_key *k)
{
    if (k)
        __atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
    return k;
}

void jwt_key_unref(jwt_key *k)
{
    if (!k)
        return;
    if (__atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (int i = 0; i < k->nspare; i++)
        EVP_PKEY_CTX_free(k->spare[i]);
    pthread_mutex_destroy(&k->mu);
    EVP_PKEY_free(k->pkey);
    free(k);
}

const char *jwt_key_fingerprint(const jwt_key *k)
{
    return k ? k->fp : "";
}

/* ---------------------------------------------------------------- verify */

ag_reason jwt_status_code(jwt_status s)
{
    /* The codes of docs/semantics.md section 2. An oversized token is "malformed"
     * (docs/security.md case A17); callers that need the distinction have the enum. */
    switch (s) {
    case JWT_OK:
        return AR_OK;
    case JWT_MALFORMED:
    case JWT_TOO_LARGE:
        return AR_TOKEN_MALFORMED;
    case JWT_BAD_ALG:
        return AR_TOKEN_ALG;
    case JWT_BAD_SIGNATURE:
        return AR_TOKEN_SIGNATURE;
    case JWT_EXPIRED:
        return AR_TOKEN_EXPIRED;
    case JWT_NOT_YET_VALID:
        return AR_TOKEN_NOT_YET_VALID;
    case JWT_BAD_ISSUER:
        return AR_TOKEN_ISSUER;
    case JWT_BAD_CLAIMS:
        return AR_TOKEN_CLAIMS;
    case JWT__COUNT:
        break;
    }
    return AR_TOKEN_MALFORMED;
}

const char *jwt_status_reason(jwt_status s)
{
    return reason_name(jwt_status_code(s));
}

/* Nesting depth of a JSON text, measured without parsing it, so a deeply nested
 * document is refused in linear time before any allocation. Returns -1 when the
 * limit is passed. Bytes inside strings are skipped (escapes included). */
static int json_depth_ok(const unsigned char *s, size_t len, int max)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return -1;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static jwt_status check_header(const unsigned char *json, size_t len)
{
    jwt_status st = JWT_MALFORMED;
    json_t *h = NULL;
    json_error_t jerr;

    if (json_depth_ok(json, len, JWT_MAX_HEADER_DEPTH) != 0)
        goto out;
    h = jnum_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!h || !json_is_object(h))
        goto out;
    st = JWT_BAD_ALG;
    const json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg) || json_string_length(alg) != 5 ||
        memcmp(json_string_value(alg), "RS256", 5) != 0)
        goto out;
    /* We implement no JWS extension, so any crit (even empty) fails closed. */
    if (json_object_get(h, "crit"))
        goto out;
    const json_t *kid = json_object_get(h, "kid");
    if (kid && (!jnum_is_string(kid) || json_string_length(kid) > JWT_MAX_KID))
        goto out;
    /* jwk, jku, x5u, x5c and friends are deliberately ignored: keys come only
     * from configuration, so a token naming its own key simply fails to verify. */
    st = JWT_OK;
out:
    json_decref(h);
    return st;
}

static void note_facts(const json_t *c, const jwt_params *p, int64_t leeway, jwt_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->parsed = true;
    f->now = p->now;
    f->leeway = leeway;
    f->want_iss = p->issuer;
    f->has_exp = jnum_seconds(json_object_get(c, "exp"), &f->exp) == 0;
    f->has_iat = jnum_seconds(json_object_get(c, "iat"), &f->iat) == 0;
    f->has_nbf = jnum_seconds(json_object_get(c, "nbf"), &f->nbf) == 0;
    const json_t *iss = json_object_get(c, "iss");
    if (jnum_is_string(iss)) {
        f->iss_is_string = true;
        f->iss_len = json_string_length(iss);
        snprintf(f->iss, sizeof(f->iss), "%s", json_string_value(iss));
    }
}

static jwt_status check_claims(const json_t *c, const jwt_params *p, jwt_facts *facts)
{
    int64_t exp, iat, nbf;
    int64_t leeway = p->leeway < 0 ? 0 : p->leeway;

    if (facts && json_is_object(c))
        note_facts(c, p, leeway, facts);

    if (!json_is_object(c))
        return JWT_MALFORMED;
    const json_t *jexp = json_object_get(c, "exp");
    const json_t *jiat = json_object_get(c, "iat");
    const json_t *jnbf = json_object_get(c, "nbf");
    const json_t *jiss = json_object_get(c, "iss");
    const json_t *jsub = json_object_get(c, "sub");
    const json_t *jjti = json_object_get(c, "jti");
    const json_t *juid = json_object_get(c, "user_id");

    /* Types first: a numeric string is refused even though Python's int()
     * would take it (docs/semantics.md section 2, "fail closed"). */
    if (jnum_seconds(jexp, &exp) != 0 || jnum_seconds(jiat, &iat) != 0)
        return JWT_BAD_CLAIMS;
    if (jnbf && jnum_seconds(jnbf, &nbf) != 0)
        return JWT_BAD_CLAIMS;
    if (!jiss || json_is_null(jiss))
        return JWT_BAD_CLAIMS;
    if ((jsub && !jnum_is_string(jsub)) || (jjti && !jnum_is_string(jjti)))
        return JWT_BAD_CLAIMS;

    /* Each verdict is computed once, for the decision and for explain. */
    bool exp_ok = exp > sat_add(p->now, -leeway);
    bool iat_ok = iat <= sat_add(p->now, leeway);
    bool nbf_ok = !jnbf || nbf <= sat_add(p->now, leeway);
    bool iss_ok = p->issuer && jnum_is_string(jiss) &&
                  json_string_length(jiss) == strlen(p->issuer) &&
                  memcmp(json_string_value(jiss), p->issuer, strlen(p->issuer)) == 0;
    if (facts) {
        facts->judged = true;
        facts->exp_ok = exp_ok;
        facts->iat_ok = iat_ok;
        facts->nbf_ok = nbf_ok;
        facts->iss_ok = iss_ok;
    }
    if (!exp_ok)
        return JWT_EXPIRED;
    if (!iat_ok || !nbf_ok)
        return JWT_NOT_YET_VALID;
    if (!iss_ok)
        return JWT_BAD_ISSUER;

    if (!jnum_is_string(juid) || json_string_length(juid) == 0)
        return JWT_BAD_CLAIMS;
    return JWT_OK;
}

static EVP_PKEY_CTX *verify_ctx_take(jwt_key *k)
{
    EVP_PKEY_CTX *c = NULL;
    pthread_mutex_lock(&k->mu);
    if (k->nspare > 0)
        c = k->spare[--k->nspare];
    pthread_mutex_unlock(&k->mu);
    if (c)
        return c;
    c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (!c || EVP_PKEY_verify_init(c) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_CTX_set_signature_md(c, EVP_sha256()) != 1) {
        EVP_PKEY_CTX_free(c);
        return NULL;
    }
    return c;
}

static void verify_ctx_give(jwt_key *k, EVP_PKEY_CTX *c)
{
    pthread_mutex_lock(&k->mu);
    if (k->nspare < JWT_SPARE_CTX) {
        k->spare[k->nspare++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&k->mu);
    EVP_PKEY_CTX_free(c);
}

/* RS256 is RSASSA-PKCS1-v1_5 over SHA-256 of the signing input. Returns 1
 * only when OpenSSL says exactly 1; errors and 0 are both "no". */
static int rsa_verify(jwt_key *k, const unsigned char digest[SHA256_DIGEST_LENGTH],
                      const unsigned char *sig, size_t siglen)
{
    int ok = 0;
    EVP_PKEY_CTX *c = verify_ctx_take(k);
    if (c && EVP_PKEY_verify(c, sig, siglen, digest, SHA256_DIGEST_LENGTH) == 1)
        ok = 1;
    if (!ok)
        ERR_clear_error();
    if (c)
        verify_ctx_give(k, c);
    return ok;
}

jwt_status jwt_verify(const char *tok, size_t len, const jwt_params *p, json_t **claims_out)
{
    return jwt_verify_facts(tok, len, p, claims_out, NULL);
}

jwt_status jwt_verify_facts(const char *tok, size_t len, const jwt_params *p, json_t **claims_out,
                            jwt_facts *facts)
{
    jwt_status st = JWT_MALFORMED;
    unsigned char hdr[JWT_MAX_HEADER_JSON + 4];
    unsigned char sig[JWT_MAX_SIG_BYTES + 4];
    unsigned char *payload = NULL;
    size_t payload_cap = 0;
    json_t *claims = NULL;
    json_error_t jerr;

    if (claims_out)
        *claims_out = NULL;
    if (!tok || !p || !claims_out)
        goto out;
    size_t max = p->max_token_bytes ? p->max_token_bytes : JWT_DEFAULT_MAX_TOKEN;
    if (len > max) {
        st = JWT_TOO_LARGE;
        goto out;
    }

    /* One scan, at most two dots remembered: a token of a million dots costs a
     * million comparisons and nothing else. */
    size_t dot1 = 0, dot2 = 0, ndots = 0;
    for (size_t i = 0; i < len; i++) {
        if (tok[i] != '.')
            continue;
        if (++ndots > 2)
            goto out;
        if (ndots == 1)
            dot1 = i;
        else
            dot2 = i;
    }
    if (ndots != 2)
        goto out;
    const char *h64 = tok, *p64 = tok + dot1 + 1, *s64 = tok + dot2 + 1;
    size_t h64len = dot1, p64len = dot2 - dot1 - 1, s64len = len - dot2 - 1;
    if (h64len == 0 || p64len == 0 || h64len > JWT_MAX_HEADER_B64)
        goto out;

    long hlen = jwt_b64url_decode(h64, h64len, hdr);
    if (hlen < 0)
        goto out;
    st = check_header(hdr, (size_t)hlen);
    if (st != JWT_OK)
        goto out;
    st = JWT_MALFORMED;

    payload_cap = p64len / 4 * 3 + 3;
    payload = malloc(payload_cap);
    if (!payload)
        goto out;
    long plen = jwt_b64url_decode(p64, p64len, payload);
    if (plen < 0 || json_depth_ok(payload, (size_t)plen, JWT_MAX_PAYLOAD_DEPTH) != 0)
        goto out;

    /* The signature must decode canonically (malformed otherwise) and then be
     * exactly one modulus long; the length test protects every backend from
     * short or long buffers and costs nothing. */
    if (s64len > b64url_encoded_len(JWT_MAX_SIG_BYTES)) {
        st = JWT_BAD_SIGNATURE;
        goto out;
    }
    long slen = jwt_b64url_decode(s64, s64len, sig);
    if (slen < 0)
        goto out;
    st = JWT_BAD_SIGNATURE;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    bool hashed = false;
    for (size_t i = 0; i < p->nkeys; i++) {
        jwt_key *k = p->keys[i];
        if (!k || k->sig_len != (size_t)slen)
            continue;
        if (!hashed && !SHA256((const unsigned char *)tok, dot2, digest))
            goto out;
        hashed = true;
        if (rsa_verify(k, digest, sig, (size_t)slen) == 1) {
            st = JWT_OK;
            break;
        }
    }
    if (st != JWT_OK)
        goto out;

    st = JWT_MALFORMED;
    /* Integers beyond 64 bits are kept (jnum.h): both libraries accept them. */
    claims = jnum_loadb((const char *)payload, (size_t)plen, JSON_REJECT_DUPLICATES, &jerr);
    if (!claims || !json_is_object(claims))
        goto out;
    st = check_claims(claims, p, facts);
    if (st != JWT_OK)
        goto out;
    *claims_out = claims;
    claims = NULL;
out:
    json_decref(claims);
    if (payload) {
        OPENSSL_cleanse(payload, payload_cap);
        free(payload);
    }
    return st;
}

/* ---------------------------------------------------------------- sign */

static char *b64url_of(const unsigned char *data, size_t len)
{
    char *out = malloc(b64url_encoded_len(len) + 1);
    if (out)
        jwt_b64url_encode(data, len, out);
    return out;
}

char *jwt_sign_rs256(const char *private_pem, size_t pem_len, const json_t *header_extra,
                     const json_t *claims, char *err, size_t errlen)
{
    char *result = NULL;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *ctx = NULL;
    json_t *hdr = NULL;
    char *hjson = NULL, *cjson = NULL, *h64 = NULL, *c64 = NULL, *tok = NULL;
    unsigned char *sig = NULL;

    if (!private_pem || !json_is_object(claims) ||
        (header_extra && !json_is_object(header_extra))) {
        set_err(err, errlen, "sign: bad arguments");
        goto out;
    }
    if (pem_len > INT_MAX) {
        set_err(err, errlen, "sign: key too large");
        goto out;
    }
    bio = BIO_new_mem_buf(private_pem, (int)pem_len);
    if (!bio || !(pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL))) {
        set_err(err, errlen, "sign: cannot parse private key PEM");
        goto out;
    }
    if (!EVP_PKEY_is_a(pkey, "RSA") || EVP_PKEY_get_bits(pkey) < JWT_MIN_KEY_BITS) {
        set_err(err, errlen, "sign: private key must be RSA of at least 2048 bits");
        goto out;
    }
    /* The extra header fields may override alg and typ on purpose: tests use
     * that to build tokens the verifier must refuse. */
    hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
    if (!hdr || (header_extra && json_object_update(hdr, ag_unconst(header_extra)) != 0)) {
        set_err(err, errlen, "sign: out of memory");
        goto out;
    }
    hjson = json_dumps(hdr, JSON_COMPACT);
    cjson = json_dumps(claims, JSON_COMPACT);
    if (!hjson || !cjson) {
        set_err(err, errlen, "sign: cannot encode JSON");
        goto out;
    }
    h64 = b64url_of((const unsigned char *)hjson, strlen(hjson));
    c64 = b64url_of((const unsigned char *)cjson, strlen(cjson));
    if (!h64 || !c64) {
        set_err(err, errlen, "sign: out of memory");
        goto out;
    }
    size_t h64len = strlen(h64), c64len = strlen(c64);
    size_t siglen = (size_t)EVP_PKEY_get_size(pkey);
    tok = malloc(h64len + 1 + c64len + 1 + b64url_encoded_len(siglen) + 1);
    sig = malloc(siglen);
    ctx = EVP_MD_CTX_new();
    if (!tok || !sig || !ctx) {
        set_err(err, errlen, "sign: out of memory");
        goto out;
    }
    memcpy(tok, h64, h64len);
    tok[h64len] = '.';
    memcpy(tok + h64len + 1, c64, c64len);
    size_t inlen = h64len + 1 + c64len;
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)tok, inlen) != 1) {
        set_err(err, errlen, "sign: RSA signing failed");
        goto out;
    }
    tok[inlen] = '.';
    jwt_b64url_encode(sig, siglen, tok + inlen + 1);
    result = tok;
    tok = NULL;
out:
    if (!result)
        ERR_clear_error();
    free(tok);
    free(sig);
    free(h64);
    free(c64);
    free(hjson);
    free(cjson);
    json_decref(hdr);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return result;
}
