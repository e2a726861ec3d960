/* Unit tests for src/jwt.c: docs/semantics.md section 2 and docs/security.md
 * group A (cases 1-21; the case number is in each test name). */
#include "testutil.h"

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <unistd.h>

#include "cmds.h"
#include "fixtures/tokhelp.h"
#include "identity.h"
#include "jwt.h"
#include "util.h"

static jwt_key *demo_key;
static jwt_key *other_key;

static void setup(void)
{
    demo_key = th_key(TH_DEMO_PUB);
    other_key = th_key(TH_FIX "other-pub.pem");
}

static void teardown(void)
{
    jwt_key_unref(demo_key);
    jwt_key_unref(other_key);
}

static jwt_params params(void)
{
    static jwt_key *keys[1];
    keys[0] = demo_key;
    jwt_params p = {.keys = keys,
                    .nkeys = 1,
                    .issuer = TH_ISS,
                    .leeway = 60,
                    .now = TH_NOW,
                    .max_token_bytes = 65536};
    return p;
}

static jwt_status verify_p(const char *tok, const jwt_params *p)
{
    json_t *claims = (json_t *)0x1; /* must be reset to NULL on failure */
    jwt_status st = jwt_verify(tok, strlen(tok), p, &claims);
    if (st == JWT_OK) {
        ck_assert(json_is_object(claims));
        json_decref(claims);
    } else {
        ck_assert_ptr_null(claims);
    }
    return st;
}

static jwt_status verify(const char *tok)
{
    jwt_params p = params();
    return verify_p(tok, &p);
}

/* Token over the standard claims plus extra members, signed by the demo key,
 * with optional extra header fields. */
static jwt_status verify_claims(const char *hdr_extra, const char *extra)
{
    char *c = th_claims(extra);
    char *t = th_sign_with(TH_DEMO_PRIV, hdr_extra, c);
    jwt_status st = verify(t);
    free(c);
    free(t);
    return st;
}

/* Token over exactly the given claims (JSON text). */
static jwt_status verify_exact(const char *claims)
{
    char *t = th_sign(claims);
    jwt_status st = verify(t);
    free(t);
    return st;
}

/* header.payload.signature over raw JSON texts (jansson cannot produce
 * duplicate keys or non-object payloads), signed by the demo key. */
static char *sign_raw(const char *hdr, const char *payload)
{
    size_t pemlen;
    char *pem = th_read(TH_DEMO_PRIV, &pemlen);
    BIO *bio = BIO_new_mem_buf(pem, (int)pemlen);
    EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(pk);
    char *h = th_b64(hdr, strlen(hdr)), *p = th_b64(payload, strlen(payload));
    size_t inlen = strlen(h) + 1 + strlen(p);
    char *tok = malloc(inlen + 400);
    sprintf(tok, "%s.%s", h, p);
    unsigned char sig[512];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ck_assert(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pk) == 1);
    ck_assert(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)tok, inlen) == 1);
    tok[inlen] = '.';
    jwt_b64url_encode(sig, siglen, tok + inlen + 1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    free(h);
    free(p);
    free(pem);
    return tok;
}

static char *good_token(void)
{
    char *c = th_claims("");
    char *t = th_sign(c);
    free(c);
    return t;
}

START_TEST(test_good_token_and_claims_out)
{
    char *t = good_token();
    jwt_params p = params();
    json_t *claims = NULL;
    ck_assert_int_eq(jwt_verify(t, strlen(t), &p, &claims), JWT_OK);
    ck_assert_str_eq(json_string_value(json_object_get(claims, "user_id")), "u1");
    json_decref(claims);
    free(t);
}
END_TEST

START_TEST(test_reason_codes_stable)
{
    ck_assert_str_eq(jwt_status_reason(JWT_MALFORMED), "token_malformed");
    ck_assert_str_eq(jwt_status_reason(JWT_TOO_LARGE), "token_malformed");
    ck_assert_str_eq(jwt_status_reason(JWT_BAD_ALG), "token_alg");
    ck_assert_str_eq(jwt_status_reason(JWT_BAD_SIGNATURE), "token_signature");
    ck_assert_str_eq(jwt_status_reason(JWT_EXPIRED), "token_expired");
    ck_assert_str_eq(jwt_status_reason(JWT_NOT_YET_VALID), "token_not_yet_valid");
    ck_assert_str_eq(jwt_status_reason(JWT_BAD_ISSUER), "token_issuer");
    ck_assert_str_eq(jwt_status_reason(JWT_BAD_CLAIMS), "token_claims");
    ck_assert_str_eq(jwt_status_reason((jwt_status)99), "token_malformed");
}
END_TEST

/* ---- A1 */
START_TEST(test_A1_alg_none_any_spelling)
{
    static const char *const algs[] = {"none", "None", "NONE", "nOnE"};
    char *c = th_claims("");
    for (size_t i = 0; i < 4; i++) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", algs[i]);
        char *t = th_raw(hdr, c, "");
        ck_assert_int_eq(verify(t), JWT_BAD_ALG);
        free(t);
        t = th_raw(hdr, c, "AAAAAAAA");
        ck_assert_int_eq(verify(t), JWT_BAD_ALG);
        free(t);
    }
    /* Even with a signature that is valid for the demo key. */
    char *t = th_sign_with(TH_DEMO_PRIV, "{\"alg\":\"none\"}", c);
    ck_assert_int_eq(verify(t), JWT_BAD_ALG);
    free(t);
    free(c);
}
END_TEST

/* ---- A2 */
static char *hs256_token(const char *claims, const unsigned char *key, size_t keylen)
{
    char *h = th_b64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", 27);
    char *p = th_b64(claims, strlen(claims));
    char input[4096];
    snprintf(input, sizeof(input), "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    ck_assert(HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)input, strlen(input), mac,
                   &maclen) != NULL);
    char sig[128];
    jwt_b64url_encode(mac, maclen, sig);
    char *out = malloc(strlen(input) + strlen(sig) + 2);
    sprintf(out, "%s.%s", input, sig);
    free(h);
    free(p);
    return out;
}

START_TEST(test_A2_hs256_key_confusion)
{
    char *c = th_claims("");
    size_t pemlen;
    char *pem = th_read(TH_DEMO_PUB, &pemlen);
    BIO *bio = BIO_new_mem_buf(pem, (int)pemlen);
    EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(pk);
    unsigned char *spki = NULL, *pkcs1 = NULL;
    int spkilen = i2d_PUBKEY(pk, &spki);
    int pkcs1len = i2d_PublicKey(pk, &pkcs1);
    ck_assert(spkilen > 0 && pkcs1len > 0);
    char *ws = malloc(pemlen + 3);
    sprintf(ws, "  %s", pem);

    struct {
        const unsigned char *k;
        size_t n;
    } keys[] = {
        {(unsigned char *)pem, pemlen},
        {(unsigned char *)pem, pemlen - 1}, /* without the final newline */
        {(unsigned char *)ws, pemlen + 2},
        {spki, (size_t)spkilen},
        {pkcs1, (size_t)pkcs1len},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(keys); i++) {
        char *t = hs256_token(c, keys[i].k, keys[i].n);
        ck_assert_int_eq(verify(t), JWT_BAD_ALG);
        free(t);
    }
    OPENSSL_free(spki);
    OPENSSL_free(pkcs1);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    free(ws);
    free(pem);
    free(c);
}
END_TEST

/* ---- A3 */
START_TEST(test_A3_near_miss_alg)
{
    /* Signed with the trusted key: only the alg value is wrong. */
    static const char *const hdrs[] = {
        "{\"alg\":\"rs256\"}", "{\"alg\":\"RS256 \"}", "{\"alg\":\"RS384\"}",
        "{\"alg\":\"PS256\"}", "{\"alg\":\"ES256\"}",  "{\"alg\":[\"RS256\"]}",
        "{\"alg\":null}",      "{\"alg\":\" RS256\"}", "{\"alg\":\"RS2560\"}",
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(hdrs); i++)
        ck_assert_msg(verify_claims(hdrs[i], "") == JWT_BAD_ALG, "%s", hdrs[i]);

    /* alg absent entirely */
    char *c = th_claims("");
    char *t = th_raw("{\"typ\":\"JWT\"}", c, "AAAA");
    ck_assert_int_eq(verify(t), JWT_BAD_ALG);
    free(t);
    /* "RS256\u0000" cannot even be parsed by jansson (NUL refused): malformed,
     * a plain 401, never an internal error. */
    t = th_raw("{\"alg\":\"RS256\\u0000\"}", c, "AAAA");
    ck_assert_int_eq(verify(t), JWT_MALFORMED);
    free(t);
    /* Header must be a JSON object. */
    t = th_raw("[\"RS256\"]", c, "AAAA");
    ck_assert_int_eq(verify(t), JWT_MALFORMED);
    free(t);
    /* Duplicate alg: refused, not last-wins. */
    t = th_raw("{\"alg\":\"none\",\"alg\":\"RS256\"}", c, "AAAA");
    ck_assert_int_eq(verify(t), JWT_MALFORMED);
    free(t);
    free(c);
}
END_TEST

/* ---- A4 */
START_TEST(test_A4_token_named_keys_ignored)
{
    static const char *const hdrs[] = {
        "{\"jwk\":{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}}",
        "{\"jku\":\"http://127.0.0.1:9/keys\"}",
        "{\"x5u\":\"http://127.0.0.1:9/cert\"}",
        "{\"x5c\":[\"MIIB\"]}",
    };
    char *c = th_claims("");
    for (size_t i = 0; i < AG_ARRAY_LEN(hdrs); i++) {
        /* Attacker's own key: only configured keys count. */
        char *t = th_sign_with(TH_FIX "other-key.pem", hdrs[i], c);
        ck_assert_int_eq(verify(t), JWT_BAD_SIGNATURE);
        free(t);
        /* The same header on a token the trusted key signed is harmless. */
        t = th_sign_with(TH_DEMO_PRIV, hdrs[i], c);
        ck_assert_int_eq(verify(t), JWT_OK);
        free(t);
    }
    free(c);
}
END_TEST

/* ---- A5 */
START_TEST(test_A5_hostile_kid)
{
    char *c = th_claims("");
    static const char *const strs[] = {"{\"kid\":\"../../../../dev/null\"}",
                                       "{\"kid\":\"' OR '1'='1\"}"};
    for (size_t i = 0; i < 2; i++) {
        char *t = th_sign_with(TH_FIX "other-key.pem", strs[i], c);
        ck_assert_int_eq(verify(t), JWT_BAD_SIGNATURE);
        free(t);
    }
    /* Non-string kid: refused even with a good signature (PyJWT does the same). */
    ck_assert_int_eq(verify_claims("{\"kid\":123}", ""), JWT_BAD_ALG);
    ck_assert_int_eq(verify_claims("{\"kid\":{\"a\":1}}", ""), JWT_BAD_ALG);
    ck_assert_int_eq(verify_claims("{\"kid\":null}", ""), JWT_BAD_ALG);
    /* Capped at 256 bytes. */
    char hdr[600];
    snprintf(hdr, sizeof(hdr), "{\"kid\":\"%0256d\"}", 0);
    ck_assert_int_eq(verify_claims(hdr, ""), JWT_OK);
    snprintf(hdr, sizeof(hdr), "{\"kid\":\"%0257d\"}", 0);
    ck_assert_int_eq(verify_claims(hdr, ""), JWT_BAD_ALG);
    /* A 64 KiB kid never gets parsed: the header segment is over its cap. */
    size_t n = 65536 + 32;
    char *big = malloc(n);
    int off = snprintf(big, n, "{\"alg\":\"RS256\",\"kid\":\"");
    memset(big + off, 'k', 65536);
    strcpy(big + off + 65536, "\"}");
    char *t = th_raw(big, c, "AAAA");
    jwt_params p = params();
    p.max_token_bytes = 1 << 20;
    ck_assert_int_eq(verify_p(t, &p), JWT_MALFORMED);
    free(t);
    free(big);
    free(c);
}
END_TEST

/* ---- A6 (JWKS mode is P1; with static keys a random kid is just ignored) */
START_TEST(test_A6_random_kid_junk_signature)
{
    char *c = th_claims("");
    char sig[400];
    memset(sig, 'A', 342);
    sig[342] = '\0';
    for (int i = 0; i < 50; i++) {
        char hdr[96];
        snprintf(hdr, sizeof(hdr), "{\"alg\":\"RS256\",\"kid\":\"rnd-%d-%x\"}", i, i * 7919);
        char *t = th_raw(hdr, c, sig);
        ck_assert_int_eq(verify(t), JWT_BAD_SIGNATURE);
        free(t);
    }
    free(c);
}
END_TEST

/* ---- A7 (catalog reason is token_header; jwt.h has one status for all header
 * refusals, which reports token_alg) */
START_TEST(test_A7_crit_header)
{
    ck_assert_int_eq(verify_claims("{\"crit\":[\"exp\"],\"exp\":1}", ""), JWT_BAD_ALG);
    ck_assert_int_eq(
        verify_claims("{\"crit\":[\"https://example.test/x\"],\"https://example.test/x\":true}",
                      ""),
        JWT_BAD_ALG);
    ck_assert_int_eq(verify_claims("{\"crit\":[]}", ""), JWT_BAD_ALG);
    ck_assert_int_eq(verify_claims("{\"crit\":\"b64\"}", ""), JWT_BAD_ALG);
    ck_assert_int_eq(verify_claims("{\"crit\":null}", ""), JWT_BAD_ALG);
}
END_TEST

/* ---- A9 */
START_TEST(test_A9_claim_types)
{
    char buf[512];
    static const char *const exps[] = {"\"9999999999\"", "true", "null", "[1]", "{}"};
    for (size_t i = 0; i < AG_ARRAY_LEN(exps); i++) {
        snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%s}",
                 TH_ISS, (long long)TH_NOW, exps[i]);
        ck_assert_msg(verify_exact(buf) == JWT_BAD_CLAIMS, "exp %s", exps[i]);
    }
    /* exp absent */
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld}", TH_ISS,
             (long long)TH_NOW);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    /* iat absent, iat string, iat numeric string */
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"exp\":%lld}", TH_ISS,
             (long long)TH_NOW + 100);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":\"x\",\"exp\":%lld}",
             TH_ISS, (long long)TH_NOW + 100);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":\"%lld\",\"exp\":%lld}",
             TH_ISS, (long long)TH_NOW, (long long)TH_NOW + 100);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    /* nbf as a string */
    ck_assert_int_eq(verify_claims(NULL, ",\"nbf\":\"1\""), JWT_BAD_CLAIMS);
    /* iss absent or null */
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iat\":%lld,\"exp\":%lld}", (long long)TH_NOW,
             (long long)TH_NOW + 100);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":null,\"iat\":%lld,\"exp\":%lld}",
             (long long)TH_NOW, (long long)TH_NOW + 100);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    /* sub / jti must be strings when present */
    ck_assert_int_eq(verify_claims(NULL, ",\"sub\":5"), JWT_BAD_CLAIMS);
    ck_assert_int_eq(verify_claims(NULL, ",\"jti\":{}"), JWT_BAD_CLAIMS);
    ck_assert_int_eq(verify_claims(NULL, ",\"sub\":\"u1\",\"jti\":\"j\""), JWT_OK);
    /* aud is ignored whatever it holds */
    ck_assert_int_eq(verify_claims(NULL, ",\"aud\":[1,{\"x\":2}]"), JWT_OK);
    /* user_id absent, non-string, empty */
    snprintf(buf, sizeof(buf), "{\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld}", TH_ISS,
             (long long)TH_NOW, (long long)TH_NOW + 100);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    snprintf(buf, sizeof(buf), "{\"user_id\":7,\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld}", TH_ISS,
             (long long)TH_NOW, (long long)TH_NOW + 100);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    snprintf(buf, sizeof(buf), "{\"user_id\":\"\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
             TH_ISS, (long long)TH_NOW, (long long)TH_NOW + 100);
    ck_assert_int_eq(verify_exact(buf), JWT_BAD_CLAIMS);
    /* Payload must be an object; duplicate claims refused (no last-wins exp). */
    char *t = sign_raw("{\"alg\":\"RS256\"}", "[1,2]");
    ck_assert_int_eq(verify(t), JWT_MALFORMED);
    free(t);
}
END_TEST

START_TEST(test_A9_duplicate_claims_signed)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":1,\"exp\":%lld}", TH_ISS,
             (long long)TH_NOW, (long long)TH_NOW + 100);
    char *t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_MALFORMED);
    free(t);
    /* control: the same without the duplicate verifies */
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
             TH_ISS, (long long)TH_NOW, (long long)TH_NOW + 100);
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_OK);
    free(t);
}
END_TEST

/* Integers beyond 64 bits: both libraries accept them, so does the verifier.
 * A far-future exp is simply not expired; a far-past one is expired. */
START_TEST(test_big_integers_accepted)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%s}",
             TH_ISS, (long long)TH_NOW, "99999999999999999999");
    char *t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_OK);
    free(t);
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%s}",
             TH_ISS, (long long)TH_NOW, "-99999999999999999999");
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_EXPIRED);
    free(t);
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%s,\"exp\":%lld}",
             TH_ISS, "99999999999999999999", (long long)TH_NOW + 100);
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_NOT_YET_VALID);
    free(t);
    snprintf(buf, sizeof(buf),
             "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld,"
             "\"properties\":{\"n\":12345678901234567890}}",
             TH_ISS, (long long)TH_NOW, (long long)TH_NOW + 100);
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_OK);
    free(t);
    /* ... in the header too; there a big kid is still not a string */
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
             TH_ISS, (long long)TH_NOW, (long long)TH_NOW + 100);
    t = sign_raw("{\"alg\":\"RS256\",\"x\":123456789012345678901}", buf);
    ck_assert_int_eq(verify(t), JWT_OK);
    free(t);
    t = sign_raw("{\"alg\":\"RS256\",\"kid\":123456789012345678901}", buf);
    ck_assert_int_eq(verify(t), JWT_BAD_ALG);
    free(t);
    /* A big number is a number: never a string where a string is required. */
    snprintf(buf, sizeof(buf), "{\"user_id\":%s,\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
             "12345678901234567890", TH_ISS, (long long)TH_NOW, (long long)TH_NOW + 100);
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_BAD_CLAIMS);
    free(t);
    snprintf(buf, sizeof(buf),
             "{\"user_id\":\"u1\",\"sub\":%s,\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
             "12345678901234567890", TH_ISS, (long long)TH_NOW, (long long)TH_NOW + 100);
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_BAD_CLAIMS);
    free(t);
    /* exp_not_finite: a real beyond double range stays refused. */
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":1e400}",
             TH_ISS, (long long)TH_NOW);
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    ck_assert_int_eq(verify(t), JWT_MALFORMED);
    free(t);
}
END_TEST

/* What the checks compared is reported once the signature held, also on a
 * refusal; before that nothing is claimed. */
START_TEST(test_verify_facts)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"user_id\":\"u1\",\"iss\":\"https://other\",\"iat\":%lld,\"exp\":%lld,"
             "\"nbf\":%lld}",
             (long long)TH_NOW, (long long)TH_NOW - 61, (long long)TH_NOW - 5);
    char *t = sign_raw("{\"alg\":\"RS256\"}", buf);
    jwt_params p = params();
    json_t *claims = NULL;
    jwt_facts f;
    memset(&f, 0x5A, sizeof(f));
    ck_assert_int_eq(jwt_verify_facts(t, strlen(t), &p, &claims, &f), JWT_EXPIRED);
    ck_assert_ptr_null(claims);
    ck_assert(f.parsed && f.has_exp && f.has_iat && f.has_nbf && f.iss_is_string);
    ck_assert_int_eq(f.now, TH_NOW);
    ck_assert_int_eq(f.leeway, 60);
    ck_assert_int_eq(f.exp, TH_NOW - 61);
    ck_assert_int_eq(f.nbf, TH_NOW - 5);
    ck_assert_str_eq(f.iss, "https://other");
    ck_assert_uint_eq(f.iss_len, 13);
    ck_assert_str_eq(f.want_iss, TH_ISS);
    /* the verifier's own verdicts, every one of them, not only the first failure */
    ck_assert(f.judged && !f.exp_ok && f.iat_ok && f.nbf_ok && !f.iss_ok);
    free(t);
    /* a claim of the wrong type: values reported, nothing judged */
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":\"x\",\"exp\":%lld}",
             TH_ISS, (long long)TH_NOW + 100);
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    memset(&f, 0x5A, sizeof(f));
    ck_assert_int_eq(jwt_verify_facts(t, strlen(t), &p, &claims, &f), JWT_BAD_CLAIMS);
    ck_assert(f.parsed && f.has_exp && !f.has_iat && !f.judged);
    free(t);
    /* A bad signature: nothing parsed, nothing reported. */
    t = sign_raw("{\"alg\":\"RS256\"}", buf);
    t[strlen(t) - 3] ^= 1;
    memset(&f, 0, sizeof(f));
    ck_assert_int_ne(jwt_verify_facts(t, strlen(t), &p, &claims, &f), JWT_OK);
    ck_assert(!f.parsed);
    free(t);
}
END_TEST

/* docs/compatibility.md, "Deliberately stricter": each named payload shape
 * is refused although @propelauth/node accepts it. */
START_TEST(test_compat_strictness_payload)
{
    char head[256], buf[1024];
    snprintf(head, sizeof(head), "\"iss\":\"%s\",\"iat\":%lld", TH_ISS, (long long)TH_NOW);
    long long exp = (long long)TH_NOW + 100;
    struct {
        const char *name;
        char payload[600];
        jwt_status want;
    } rows[8];
    size_t n = 0;
    rows[n].name = "exp_not_finite";
    snprintf(rows[n].payload, sizeof(rows[n].payload), "{%s,\"user_id\":\"u\",\"exp\":1e400}",
             head);
    rows[n++].want = JWT_MALFORMED;
    rows[n].name = "payload_invalid_utf8";
    snprintf(rows[n].payload, sizeof(rows[n].payload),
             "{%s,\"user_id\":\"u\",\"exp\":%lld,\"first_name\":\"\xc3\x28\"}", head, exp);
    rows[n++].want = JWT_MALFORMED;
    rows[n].name = "duplicate_claim_keys";
    snprintf(rows[n].payload, sizeof(rows[n].payload),
             "{%s,\"user_id\":\"u\",\"exp\":%lld,\"user_id\":\"v\"}", head, exp);
    rows[n++].want = JWT_MALFORMED;
    rows[n].name = "payload_lone_surrogate";
    snprintf(rows[n].payload, sizeof(rows[n].payload),
             "{%s,\"user_id\":\"u\",\"exp\":%lld,\"first_name\":\"\\ud800\"}", head, exp);
    rows[n++].want = JWT_MALFORMED;
    rows[n].name = "payload_bom";
    snprintf(rows[n].payload, sizeof(rows[n].payload),
             "\xef\xbb\xbf{%s,\"user_id\":\"u\",\"exp\":%lld}", head, exp);
    rows[n++].want = JWT_MALFORMED;
    rows[n].name = "payload_depth";
    int off = snprintf(rows[n].payload, sizeof(rows[n].payload),
                       "{%s,\"user_id\":\"u\",\"exp\":%lld,\"properties\":", head, exp);
    for (int i = 0; i < 70; i++)
        rows[n].payload[off++] = '[';
    for (int i = 0; i < 70; i++)
        rows[n].payload[off++] = ']';
    snprintf(rows[n].payload + off, sizeof(rows[n].payload) - (size_t)off, "}");
    rows[n++].want = JWT_MALFORMED;
    rows[n].name = "user_id_empty";
    snprintf(rows[n].payload, sizeof(rows[n].payload), "{%s,\"user_id\":\"\",\"exp\":%lld}", head,
             exp);
    rows[n++].want = JWT_BAD_CLAIMS;
    /* control: the same shape without the defect verifies */
    rows[n].name = "control";
    snprintf(rows[n].payload, sizeof(rows[n].payload), "{%s,\"user_id\":\"u\",\"exp\":%lld}", head,
             exp);
    rows[n++].want = JWT_OK;
    for (size_t i = 0; i < n; i++) {
        snprintf(buf, sizeof(buf), "%s", rows[i].payload);
        char *t = sign_raw("{\"alg\":\"RS256\"}", buf);
        jwt_status st = verify(t);
        ck_assert_msg(st == rows[i].want, "%s: status %d, want %d", rows[i].name, st, rows[i].want);
        free(t);
    }
}
END_TEST

/* ---- A11 */
static jwt_status verify_times(long long iat, long long exp, const char *nbf)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld%s}",
             TH_ISS, iat, exp, nbf ? nbf : "");
    return verify_exact(buf);
}

START_TEST(test_A11_time_windows)
{
    long long now = TH_NOW;
    ck_assert_int_eq(verify_times(now - 3600, now - 59, NULL), JWT_OK);
    ck_assert_int_eq(verify_times(now - 3600, now - 60, NULL), JWT_EXPIRED); /* exp <= now-60 */
    ck_assert_int_eq(verify_times(now - 3600, now - 61, NULL), JWT_EXPIRED);
    ck_assert_int_eq(verify_times(now - 3600, now - 300, NULL), JWT_EXPIRED); /* py test 5 */
    ck_assert_int_eq(verify_times(now + 59, now + 1800, NULL), JWT_OK);
    ck_assert_int_eq(verify_times(now + 60, now + 1800, NULL), JWT_OK); /* iat > now+60 only */
    ck_assert_int_eq(verify_times(now + 61, now + 1800, NULL), JWT_NOT_YET_VALID);
    char nbf[64];
    snprintf(nbf, sizeof(nbf), ",\"nbf\":%lld", now + 30);
    ck_assert_int_eq(verify_times(now, now + 1800, nbf), JWT_OK);
    snprintf(nbf, sizeof(nbf), ",\"nbf\":%lld", now + 59);
    ck_assert_int_eq(verify_times(now, now + 1800, nbf), JWT_OK);
    snprintf(nbf, sizeof(nbf), ",\"nbf\":%lld", now + 61);
    ck_assert_int_eq(verify_times(now, now + 1800, nbf), JWT_NOT_YET_VALID);
    snprintf(nbf, sizeof(nbf), ",\"nbf\":%lld", now + 3600);
    ck_assert_int_eq(verify_times(now, now + 1800, nbf), JWT_NOT_YET_VALID);
    /* Real numbers are truncated like Python's int(). */
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld.5,\"exp\":%lld.9}",
             TH_ISS, now, now - 60);
    ck_assert_int_eq(verify_exact(buf), JWT_EXPIRED);
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld.5,\"exp\":%lld.0}",
             TH_ISS, now, now - 59);
    ck_assert_int_eq(verify_exact(buf), JWT_OK);
    /* Extreme values saturate instead of overflowing. */
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":-1e300,\"exp\":1e300}",
             TH_ISS);
    ck_assert_int_eq(verify_exact(buf), JWT_OK);
    snprintf(buf, sizeof(buf),
             "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":-9223372036854775808}",
             TH_ISS, now);
    ck_assert_int_eq(verify_exact(buf), JWT_EXPIRED);
    /* Configurable leeway: zero. */
    char *t = NULL;
    snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
             TH_ISS, now, now);
    t = th_sign(buf);
    jwt_params p = params();
    p.leeway = 0;
    ck_assert_int_eq(verify_p(t, &p), JWT_EXPIRED);
    p.leeway = 1;
    ck_assert_int_eq(verify_p(t, &p), JWT_OK);
    free(t);
}
END_TEST

/* ---- A12 */
START_TEST(test_A12_issuer_exact)
{
    static const char *const bad[] = {
        "\"https://auth.example.com/\"",       "\"http://auth.example.com\"",
        "\"https://AUTH.example.com\"",        "\"https://wrong.propelauth.com\"",
        "[\"https://auth.example.com\"]",      "7",
        "\"https://auth.example.com\\u0000\"", "\"\"",
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        char buf[512];
        snprintf(buf, sizeof(buf), "{\"user_id\":\"u1\",\"iss\":%s,\"iat\":%lld,\"exp\":%lld}",
                 bad[i], (long long)TH_NOW, (long long)TH_NOW + 100);
        json_error_t e;
        json_t *j = json_loads(buf, JSON_ALLOW_NUL, &e);
        ck_assert(j != NULL);
        char err[128];
        size_t pemlen;
        char *pem = th_read(TH_DEMO_PRIV, &pemlen);
        char *t = jwt_sign_rs256(pem, pemlen, NULL, j, err, sizeof(err));
        ck_assert(t != NULL);
        jwt_status st = verify(t);
        /* NUL inside iss fails the parse of the payload (malformed); the rest
         * are issuer mismatches. */
        if (strstr(bad[i], "u0000"))
            ck_assert_int_eq(st, JWT_MALFORMED);
        else
            ck_assert_msg(st == JWT_BAD_ISSUER, "iss %s -> %d", bad[i], st);
        free(t);
        free(pem);
        json_decref(j);
    }
    /* No configured issuer: nothing passes. */
    char *t = good_token();
    jwt_params p = params();
    p.issuer = NULL;
    ck_assert_int_eq(verify_p(t, &p), JWT_BAD_ISSUER);
    free(t);
}
END_TEST

/* ---- A13 */
START_TEST(test_A13_compact_shape)
{
    static const char *const bad[] = {"a.b", "a.b.c.d", "a.b.c.d.e", "..",   ".",
                                      "",    "abc",     ".b.c",      "a..c", "\x80.\x80.\x80"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++)
        ck_assert_msg(verify(bad[i]) == JWT_MALFORMED, "'%s'", bad[i]);
    /* Five-part JWE built from a real header. */
    char *t = good_token();
    char *jwe = malloc(strlen(t) + 8);
    sprintf(jwe, "%s.x.y", t);
    ck_assert_int_eq(verify(jwe), JWT_MALFORMED);
    free(jwe);
    /* A byte >= 0x80 inside an otherwise good token. */
    t[5] = (char)0xC3;
    ck_assert_int_eq(verify(t), JWT_MALFORMED);
    free(t);
    /* 100,000 dots: linear, refused as malformed. */
    jwt_params p = params();
    p.max_token_bytes = 200000;
    char *dots = malloc(100001);
    memset(dots, '.', 100000);
    dots[100000] = '\0';
    ck_assert_int_eq(verify_p(dots, &p), JWT_MALFORMED);
    free(dots);
}
END_TEST

/* ---- A14 */
START_TEST(test_A14_b64url_strict_decoder)
{
    unsigned char out[64];
    ck_assert_int_eq(jwt_b64url_decode("", 0, out), 0);
    ck_assert_int_eq(jwt_b64url_decode("YQ", 2, out), 1);
    ck_assert_int_eq(out[0], 'a');
    ck_assert_int_eq(jwt_b64url_decode("YWI", 3, out), 2);
    ck_assert_int_eq(jwt_b64url_decode("YWJj", 4, out), 3);
    ck_assert_int_eq(memcmp(out, "abc", 3), 0);
    ck_assert_int_eq(jwt_b64url_decode("-_8", 3, out), 2);
    ck_assert_int_eq(out[0], 0xfb);
    ck_assert_int_eq(out[1], 0xff);
    /* rejects */
    static const char *const bad[] = {"YQ==",   "YQ=", "Y",  "YWJj=", "Y+I", "Y/I",   "YW Jj",
                                      "YWJj\n", "%2B", "YR", "YWJ",   "YWK", "Y\x80", "YQ=a"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++)
        ck_assert_msg(jwt_b64url_decode(bad[i], strlen(bad[i]), out) == -1, "'%s'", bad[i]);
    /* YR and YQ decode to the same byte under a lenient decoder; YWI/YWJ too. */
    ck_assert_int_eq(jwt_b64url_decode("YWI", 3, out), 2);
    /* NUL inside the input is not skipped */
    ck_assert_int_eq(jwt_b64url_decode("YW\0j", 4, out), -1);
    /* encoder round trip over all lengths and byte values */
    unsigned char in[40];
    char enc[64];
    for (size_t n = 0; n < sizeof(in); n++) {
        for (size_t i = 0; i < n; i++)
            in[i] = (unsigned char)(i * 37 + n * 11 + 0xF0);
        size_t m = jwt_b64url_encode(in, n, enc);
        ck_assert_uint_eq(m, strlen(enc));
        ck_assert_ptr_null(strpbrk(enc, "+/="));
        ck_assert_int_eq(jwt_b64url_decode(enc, m, out), (long)n);
        ck_assert_int_eq(memcmp(in, out, n), 0);
    }
}
END_TEST

static char *token_with_segment_edit(int seg, const char *insert, size_t at)
{
    char *t = good_token();
    char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
    size_t pos = (seg == 0 ? 0 : seg == 1 ? (size_t)(d1 - t) + 1 : (size_t)(d2 - t) + 1) + at;
    char *o = malloc(strlen(t) + strlen(insert) + 1);
    memcpy(o, t, pos);
    strcpy(o + pos, insert);
    strcat(o, t + pos);
    free(t);
    return o;
}

START_TEST(test_A14_token_strict_base64url)
{
    static const char *const ins[] = {"+", "/", "=", "==", " ", "\n", "%2B", "\t"};
    for (int seg = 0; seg < 3; seg++) {
        for (size_t i = 0; i < AG_ARRAY_LEN(ins); i++) {
            char *t = token_with_segment_edit(seg, ins[i], 4);
            ck_assert_msg(verify(t) == JWT_MALFORMED, "seg %d insert '%s'", seg, ins[i]);
            free(t);
        }
    }
    /* Trailing '=' padding after the signature. */
    char *t = good_token();
    char *p = malloc(strlen(t) + 3);
    sprintf(p, "%s==", t);
    ck_assert_int_eq(verify(p), JWT_MALFORMED);
    free(p);
    /* Same signature bytes, non-canonical last character (unused bits set). A
     * 256-byte signature is 342 chars with 4 unused bits in the last one. */
    size_t len = strlen(t);
    char *s = strrchr(t, '.') + 1;
    ck_assert_uint_eq(strlen(s), 342);
    ck_assert_int_eq(verify(t), JWT_OK);
    char last = t[len - 1];
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, last) - alpha);
    ck_assert_int_eq(v & 0x0F, 0);
    t[len - 1] = alpha[v | 0x01];
    ck_assert_int_eq(verify(t), JWT_MALFORMED);
    free(t);
}
END_TEST

/* ---- A15 */
START_TEST(test_A15_signature_length)
{
    char *t = good_token();
    char *dot = strrchr(t, '.');
    size_t prefix = (size_t)(dot - t) + 1;
    static const size_t lens[] = {0, 3, 255, 257, 512, 1, 2000};
    for (size_t i = 0; i < AG_ARRAY_LEN(lens); i++) {
        unsigned char *sig = calloc(1, lens[i] + 1);
        memset(sig, 0x5A, lens[i]);
        char *s64 = malloc(lens[i] / 3 * 4 + 8);
        jwt_b64url_encode(sig, lens[i], s64);
        char *tok = malloc(prefix + strlen(s64) + 1);
        memcpy(tok, t, prefix);
        strcpy(tok + prefix, s64);
        ck_assert_msg(verify(tok) == JWT_BAD_SIGNATURE, "len %zu", lens[i]);
        free(tok);
        free(s64);
        free(sig);
    }
    /* "AAAA" is three zero bytes. */
    memcpy(dot + 1, "AAAA", 5);
    ck_assert_int_eq(verify(t), JWT_BAD_SIGNATURE);
    free(t);
}
END_TEST

/* ---- A16 */
static const unsigned char sha256_digestinfo[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                  0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                  0x01, 0x05, 0x00, 0x04, 0x20};

/* Smallest s with s^3 >= t (binary search; fine for a test). */
static BIGNUM *bn_cbrt_ceil(const BIGNUM *t, BN_CTX *ctx)
{
    BIGNUM *lo = BN_new(), *hi = BN_new(), *mid = BN_new(), *cube = BN_new();
    BN_zero(lo);
    BN_one(hi);
    ck_assert(BN_lshift(hi, hi, BN_num_bits(t) / 3 + 2));
    while (BN_cmp(lo, hi) < 0) {
        ck_assert(BN_add(mid, lo, hi));
        ck_assert(BN_rshift1(mid, mid));
        ck_assert(BN_sqr(cube, mid, ctx));
        ck_assert(BN_mul(cube, cube, mid, ctx));
        if (BN_cmp(cube, t) >= 0) {
            ck_assert(BN_copy(hi, mid));
        } else {
            ck_assert(BN_add_word(mid, 1));
            ck_assert(BN_copy(lo, mid));
        }
    }
    BN_free(hi);
    BN_free(mid);
    BN_free(cube);
    return lo;
}

START_TEST(test_A16_bleichenbacher_e3_forgery)
{
    jwt_key *e3 = th_key(TH_FIX "rsa-e3-pub.pem");
    char *c = th_claims("");
    char *base = th_raw("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", c, "");
    size_t inlen = strlen(base) - 1; /* without the final '.' */
    unsigned char hash[32];
    unsigned int hl = 0;
    ck_assert(EVP_Digest(base, inlen, hash, &hl, EVP_sha256(), NULL) == 1);

    /* 00 01 FF 00 DigestInfo hash, then garbage where padding should be. */
    unsigned char em[256];
    memset(em, 0xAB, sizeof(em));
    size_t o = 0;
    em[o++] = 0x00;
    em[o++] = 0x01;
    em[o++] = 0xFF;
    em[o++] = 0x00;
    memcpy(em + o, sha256_digestinfo, sizeof(sha256_digestinfo));
    o += sizeof(sha256_digestinfo);
    memcpy(em + o, hash, 32);
    o += 32;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *target = BN_bin2bn(em, sizeof(em), NULL);
    BIGNUM *s = bn_cbrt_ceil(target, ctx);
    /* Sanity: s^3 keeps the forged prefix, so a lenient parser would accept. */
    BIGNUM *cube = BN_new();
    ck_assert(BN_sqr(cube, s, ctx) && BN_mul(cube, cube, s, ctx));
    unsigned char chk[256];
    ck_assert_int_eq(BN_bn2binpad(cube, chk, sizeof(chk)), 256);
    ck_assert_int_eq(memcmp(chk, em, o), 0);

    unsigned char sig[256];
    ck_assert_int_eq(BN_bn2binpad(s, sig, sizeof(sig)), 256);
    char s64[400];
    jwt_b64url_encode(sig, sizeof(sig), s64);
    char *tok = malloc(strlen(base) + strlen(s64) + 1);
    sprintf(tok, "%s%s", base, s64);

    jwt_key *keys[1] = {e3};
    jwt_params p = params();
    p.keys = keys;
    ck_assert_int_eq(verify_p(tok, &p), JWT_BAD_SIGNATURE);

    /* A signature numerically >= the modulus makes OpenSSL error out (not 0);
     * that too is only a bad signature. */
    memset(sig, 0xFF, sizeof(sig));
    jwt_b64url_encode(sig, sizeof(sig), s64);
    sprintf(tok, "%s%s", base, s64);
    ck_assert_int_eq(verify_p(tok, &p), JWT_BAD_SIGNATURE);
    p.keys = (jwt_key *const[]){demo_key};
    ck_assert_int_eq(verify_p(tok, &p), JWT_BAD_SIGNATURE);

    /* A genuine e=3 signature still verifies. */
    char *good = th_sign_with(TH_FIX "rsa-e3-key.pem", NULL, c);
    p.keys = keys;
    ck_assert_int_eq(verify_p(good, &p), JWT_OK);
    free(good);

    BN_free(cube);
    BN_free(s);
    BN_free(target);
    BN_CTX_free(ctx);
    free(tok);
    free(base);
    free(c);
    jwt_key_unref(e3);
}
END_TEST

START_TEST(test_A16_tampered_payload_and_signature)
{
    char *t = good_token();
    char *d1 = strchr(t, '.');
    d1[3] = d1[3] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(t), JWT_BAD_SIGNATURE);
    free(t);
    t = good_token();
    char *s = strrchr(t, '.') + 10;
    *s = *s == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(t), JWT_BAD_SIGNATURE);
    free(t);
}
END_TEST

/* ---- A17 */
START_TEST(test_A17_parsing_budget)
{
    jwt_params p = params();
    p.max_token_bytes = 4u << 20;
    char *c = th_claims("");
    /* 100 KiB header segment */
    size_t n = 100 * 1024;
    char *h = malloc(n + 64);
    int off = sprintf(h, "{\"alg\":\"RS256\",\"x\":\"");
    memset(h + off, 'x', n);
    strcpy(h + off + n, "\"}");
    char *t = th_raw(h, c, "AAAA");
    ck_assert_int_eq(verify_p(t, &p), JWT_MALFORMED);
    free(t);
    /* header nested 5,000 levels: over the header cap as text already */
    char *deep = malloc(5000 * 6 + 64);
    size_t o = 0;
    o += (size_t)sprintf(deep, "{\"alg\":\"RS256\",\"a\":");
    for (int i = 0; i < 5000; i++)
        o += (size_t)sprintf(deep + o, "{\"a\":");
    deep[o++] = '1';
    for (int i = 0; i < 5000; i++)
        deep[o++] = '}';
    deep[o++] = '}';
    deep[o] = '\0';
    t = th_raw(deep, c, "AAAA");
    ck_assert_int_eq(verify_p(t, &p), JWT_MALFORMED);
    free(t);
    /* header nested 10 levels, small enough for the size cap: depth refused */
    t = th_raw("{\"alg\":\"RS256\",\"a\":[[[[[[[[[[1]]]]]]]]]]}", c, "AAAA");
    ck_assert_int_eq(verify_p(t, &p), JWT_MALFORMED);
    free(t);
    /* brackets inside strings do not count */
    ck_assert_int_eq(verify_claims("{\"x\":\"[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[\"}", ""), JWT_OK);

    /* 1 MB payload with the default 64 KiB cap: too large (reason malformed). */
    size_t big = 1u << 20;
    char *pl = malloc(big + 256);
    off = sprintf(pl, "{\"user_id\":\"u1\",\"pad\":\"");
    memset(pl + off, 'p', big);
    strcpy(pl + off + big, "\"}");
    t = th_raw("{\"alg\":\"RS256\"}", pl, "AAAA");
    jwt_params q = params();
    ck_assert_int_eq(verify_p(t, &q), JWT_TOO_LARGE);
    ck_assert_str_eq(jwt_status_reason(JWT_TOO_LARGE), "token_malformed");
    free(t);
    /* max_token_bytes boundary: exactly at the cap passes, one over fails. */
    char *g = good_token();
    jwt_params r = params();
    r.max_token_bytes = strlen(g);
    ck_assert_int_eq(verify_p(g, &r), JWT_OK);
    r.max_token_bytes = strlen(g) - 1;
    ck_assert_int_eq(verify_p(g, &r), JWT_TOO_LARGE);
    free(g);
    /* A deeply nested payload with a junk signature is refused as malformed,
     * i.e. before the RSA check. */
    o = (size_t)sprintf(pl, "{\"user_id\":\"u1\",\"a\":");
    for (int i = 0; i < 100; i++)
        pl[o++] = '[';
    for (int i = 0; i < 100; i++)
        pl[o++] = ']';
    strcpy(pl + o, "}");
    t = th_raw("{\"alg\":\"RS256\"}", pl, "AAAA");
    ck_assert_int_eq(verify_p(t, &p), JWT_MALFORMED);
    free(t);
    /* ... and the same when validly signed (depth cap 64). */
    char *pl2 = malloc(512);
    o = (size_t)sprintf(pl2, "{\"user_id\":\"u1\",\"iss\":\"%s\",\"iat\":%lld,\"exp\":%lld,\"a\":",
                        TH_ISS, (long long)TH_NOW, (long long)TH_NOW + 99);
    for (int i = 0; i < 70; i++)
        pl2[o++] = '[';
    for (int i = 0; i < 70; i++)
        pl2[o++] = ']';
    strcpy(pl2 + o, "}");
    ck_assert_int_eq(verify_exact(pl2), JWT_MALFORMED);
    free(pl2);
    free(pl);
    free(deep);
    free(h);
    free(c);
}
END_TEST

/* ---- A18 (claim-level part; org entries are in test_identity.c) */
START_TEST(test_A18_good_signature_bad_payload)
{
    /* Signed bytes that are not JSON, or not an object. */
    static const char *const bad[] = {"not json", "", "null", "\"u1\"", "{\"a\":1", "{} {}"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        char *t = sign_raw("{\"alg\":\"RS256\"}", bad[i]);
        jwt_status st = verify(t);
        ck_assert_msg(st == JWT_MALFORMED, "payload '%s' -> %d", bad[i], st);
        free(t);
    }
}
END_TEST

/* ---- A19 */
static int load_pem_text(const char *pem, jwt_key **k)
{
    char err[256] = "";
    int rc = jwt_key_from_pem(pem, strlen(pem), k, err, sizeof(err));
    if (rc != 0) {
        ck_assert_ptr_null(*k);
        ck_assert(err[0] != '\0');
    }
    return rc;
}

START_TEST(test_A19_key_material_hygiene)
{
    jwt_key *k = NULL;
    static const char *const refused[] = {
        TH_FIX "ec-pub.pem", TH_FIX "rsa1024-pub.pem", TH_FIX "pss-pub.pem",
        TH_DEMO_PRIV, /* a private key is not a verifier key */
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(refused); i++) {
        char *pem = th_read(refused[i], NULL);
        ck_assert_msg(load_pem_text(pem, &k) == -1, "%s accepted", refused[i]);
        free(pem);
    }
    /* The messages say what is wrong. */
    static const struct {
        const char *file, *needle;
    } why[] = {{TH_FIX "ec-pub.pem", "not an RSA key"},
               {TH_FIX "pss-pub.pem", "not an RSA key"},
               {TH_FIX "rsa1024-pub.pem", "2048"},
               {TH_DEMO_PRIV, "exactly one"}};
    for (size_t i = 0; i < AG_ARRAY_LEN(why); i++) {
        size_t n;
        char *text = th_read(why[i].file, &n);
        char err[256] = "";
        ck_assert_int_eq(jwt_key_from_pem(text, n, &k, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, why[i].needle) != NULL, "%s: '%s'", why[i].file, err);
        free(text);
    }
    char *pem = th_read(TH_DEMO_PUB, NULL);
    char *other = th_read(TH_FIX "other-pub.pem", NULL);
    char *two = malloc(strlen(pem) + strlen(other) + 1);
    sprintf(two, "%s%s", pem, other);
    ck_assert_int_eq(load_pem_text(two, &k), -1);
    char *junk = malloc(strlen(pem) + 16);
    sprintf(junk, "%sjunk\n", pem);
    ck_assert_int_eq(load_pem_text(junk, &k), -1);
    ck_assert_int_eq(load_pem_text("", &k), -1);
    ck_assert_int_eq(load_pem_text("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n", &k),
                     -1);
    /* Corrupted base64 body */
    char *bad = ag_strdup(pem);
    bad[40] = '*';
    ck_assert_int_eq(load_pem_text(bad, &k), -1);
    /* Embedded NUL */
    char *nul = ag_strdup(pem);
    /* A NUL anywhere, even one trailing terminator counted in the length. */
    ck_assert_int_eq(jwt_key_from_pem(nul, strlen(nul) + 1, &k, NULL, 0), -1);
    nul[30] = '\0';
    size_t full = strlen(pem);
    ck_assert_int_eq(jwt_key_from_pem(nul, full, &k, NULL, 0), -1);

    /* Accepted: SPKI with surrounding whitespace, PKCS#1, 3072 bits. */
    char *ws = malloc(strlen(pem) + 8);
    sprintf(ws, "\n  %s\n\n", pem);
    ck_assert_int_eq(load_pem_text(ws, &k), 0);
    ck_assert_str_eq(jwt_key_fingerprint(k), "63548387c0717d6a");
    jwt_key_unref(k);
    k = th_key(TH_FIX "demo-pub-pkcs1.pem");
    ck_assert_str_eq(jwt_key_fingerprint(k), "63548387c0717d6a");
    /* A PKCS#1 key verifies the demo tokens. */
    char *t = good_token();
    jwt_params p = params();
    p.keys = (jwt_key *const[]){k};
    ck_assert_int_eq(verify_p(t, &p), JWT_OK);
    jwt_key_unref(k);
    k = th_key(TH_FIX "rsa3072-pub.pem");
    ck_assert_uint_eq(strlen(jwt_key_fingerprint(k)), 16);
    /* A 3072-bit key expects 384-byte signatures; the demo token is refused. */
    p.keys = (jwt_key *const[]){k};
    ck_assert_int_eq(verify_p(t, &p), JWT_BAD_SIGNATURE);
    char *c = th_claims("");
    char *t3 = th_sign_with(TH_FIX "rsa3072-key.pem", NULL, c);
    ck_assert_int_eq(verify_p(t3, &p), JWT_OK);
    jwt_key_unref(k);
    ck_assert_str_eq(jwt_key_fingerprint(other_key), "933a9acae5879c1c");
    free(t3);
    free(c);
    free(t);
    free(ws);
    free(nul);
    free(bad);
    free(junk);
    free(two);
    free(other);
    free(pem);
}
END_TEST

START_TEST(test_A19_signing_refuses_weak_keys)
{
    char err[256];
    json_t *c = th_json("{\"user_id\":\"u1\"}");
    size_t len;
    char *pem = th_read(TH_FIX "rsa1024-key.pem", &len);
    ck_assert_ptr_null(jwt_sign_rs256(pem, len, NULL, c, err, sizeof(err)));
    free(pem);
    pem = th_read(TH_FIX "ec-key.pem", &len);
    ck_assert_ptr_null(jwt_sign_rs256(pem, len, NULL, c, err, sizeof(err)));
    free(pem);
    ck_assert_ptr_null(jwt_sign_rs256("garbage", 7, NULL, c, err, sizeof(err)));
    json_decref(c);
}
END_TEST

/* ---- A20 */
START_TEST(test_A20_no_keys_never_ok)
{
    char *t = good_token();
    jwt_params p = params();
    p.nkeys = 0;
    ck_assert_int_eq(verify_p(t, &p), JWT_BAD_SIGNATURE);
    p.keys = NULL;
    ck_assert_int_eq(verify_p(t, &p), JWT_BAD_SIGNATURE);
    jwt_key *nulls[2] = {NULL, NULL};
    p.keys = nulls;
    p.nkeys = 2;
    ck_assert_int_eq(verify_p(t, &p), JWT_BAD_SIGNATURE);
    /* Bad arguments are refusals too. */
    json_t *claims = NULL;
    ck_assert_int_eq(jwt_verify(t, strlen(t), NULL, &claims), JWT_MALFORMED);
    ck_assert_int_eq(jwt_verify(NULL, 0, &p, &claims), JWT_MALFORMED);
    free(t);
}
END_TEST

START_TEST(test_key_rotation_order)
{
    char *t = good_token();
    jwt_params p = params();
    p.keys = (jwt_key *const[]){other_key, demo_key};
    p.nkeys = 2;
    ck_assert_int_eq(verify_p(t, &p), JWT_OK);
    p.nkeys = 1;
    ck_assert_int_eq(verify_p(t, &p), JWT_BAD_SIGNATURE);
    /* Signed by another key (python test 7). */
    char *c = th_claims("");
    char *o = th_sign_with(TH_FIX "other-key.pem", NULL, c);
    ck_assert_int_eq(verify(o), JWT_BAD_SIGNATURE);
    free(o);
    free(c);
    free(t);
}
END_TEST

START_TEST(test_key_refcount)
{
    jwt_key *k = th_key(TH_DEMO_PUB);
    ck_assert_ptr_eq(jwt_key_ref(k), k);
    jwt_key_unref(k);
    ck_assert_str_eq(jwt_key_fingerprint(k), "63548387c0717d6a"); /* still alive */
    jwt_key_unref(k);
    jwt_key_unref(NULL);
    ck_assert_ptr_null(jwt_key_ref(NULL));
}
END_TEST

START_TEST(test_sign_roundtrip_header_extra)
{
    char *t = th_sign_with(TH_DEMO_PRIV, "{\"kid\":\"k1\"}", "{\"a\":\"\\u00e9\"}");
    char *dot = strchr(t, '.');
    unsigned char hdr[256];
    long n = jwt_b64url_decode(t, (size_t)(dot - t), hdr);
    ck_assert(n > 0);
    ck_assert_str_eq((char *)hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}");
    free(t);
}
END_TEST

/* ---- authgate mint (src/cmd_mint.c), checked through the verifier */

/* Runs cmd_mint with the given arguments (argv[0] "mint" added), capturing
 * stdout and stderr; returns the exit code and the token (or NULL). */
static int run_mint(char **tok_out, const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "mint";
    for (; *args; args++)
        argv[argc++] = ag_unconst(*args);
    argv[argc] = NULL;
    char outpath[] = "/tmp/ag-mint-out-XXXXXX", errpath[] = "/tmp/ag-mint-err-XXXXXX";
    int ofd = mkstemp(outpath), efd = mkstemp(errpath);
    ck_assert(ofd >= 0 && efd >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    int rc = cmd_mint(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(ofd);
    close(efd);
    size_t len;
    char *out = th_read(outpath, &len);
    char *err = th_read(errpath, NULL);
    unlink(outpath);
    unlink(errpath);
    if (rc == 0) {
        ck_assert_msg(len > 1 && out[len - 1] == '\n', "no trailing newline");
        out[len - 1] = '\0';
        ck_assert_ptr_null(strchr(out, '\n'));
        ck_assert_str_eq(err, "");
    } else {
        ck_assert_str_eq(out, "");
        ck_assert_msg(strstr(err, "authgate mint") != NULL, "no message on stderr");
    }
    free(err);
    if (tok_out)
        *tok_out = out;
    else
        free(out);
    return rc;
}

#define MINT_BASE                                                                                  \
    "--key", TH_DEMO_PRIV, "--issuer", TH_ISS, "--user-id", "u1", "--now", "1790000000"

static json_t *mint_claims(const char *const *args, jwt_status want)
{
    char *tok = NULL;
    ck_assert_int_eq(run_mint(&tok, args), 0);
    jwt_params p = params();
    json_t *claims = NULL;
    ck_assert_int_eq(jwt_verify(tok, strlen(tok), &p, &claims), want);
    free(tok);
    return claims;
}

START_TEST(test_mint_layout_and_inheritance)
{
    const char *args[] = {MINT_BASE,
                          "--email",
                          "a@example.com",
                          "--org",
                          "o1:Acme Inc:Owner:read,propelauth::can_invite",
                          "--org",
                          "o2:Two:Admin",
                          "--org",
                          "o3:Three:Member:",
                          "--org",
                          "o4:Four:Custom",
                          NULL};
    json_t *c = mint_claims(args, JWT_OK);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "iat")), 1790000000);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "exp")), 1790001800);
    ck_assert_str_eq(json_string_value(json_object_get(c, "email")), "a@example.com");
    id_user *u = NULL;
    ag_reason reason = AR_INTERNAL;
    ck_assert_int_eq(id_user_from_claims(c, &u, &reason), 0);
    ck_assert_uint_eq(id_user_org_count(u), 4);
    const id_org *o1 = id_user_get_org(u, "o1", 2);
    ck_assert_str_eq(id_org_name(o1), "Acme Inc");
    ck_assert(id_org_is_role(o1, "Owner"));
    ck_assert(id_org_is_at_least_role(o1, "Admin"));
    ck_assert(id_org_is_at_least_role(o1, "Member"));
    ck_assert(id_org_has_permission(o1, "propelauth::can_invite"));
    ck_assert(id_org_has_permission(o1, "read"));
    ck_assert_ptr_nonnull(strstr(id_org_header(o1), "\"url_safe_org_name\":\"acme-inc\""));
    const id_org *o2 = id_user_get_org(u, "o2", 2);
    ck_assert(!id_org_is_at_least_role(o2, "Owner"));
    ck_assert(id_org_is_at_least_role(o2, "Member"));
    ck_assert(!id_org_has_permission(o2, "read"));
    const id_org *o3 = id_user_get_org(u, "o3", 2);
    ck_assert(!id_org_is_at_least_role(o3, "Admin"));
    const id_org *o4 = id_user_get_org(u, "o4", 2);
    ck_assert(id_org_is_at_least_role(o4, "Custom"));
    ck_assert(!id_org_is_at_least_role(o4, "Member"));
    id_user_unref(u);
    json_decref(c);
}
END_TEST

START_TEST(test_mint_inherited_multi_role_active_org)
{
    const char *args[] = {
        MINT_BASE,        "--org",        "o1:One:Admin",  "--inherited",  "Admin", "--org",
        "m:Multi:Role A", "--multi-role", "Role B,Role C", "--active-org", "m",     NULL};
    json_t *c = mint_claims(args, JWT_OK);
    ck_assert_ptr_null(json_object_get(c, "org_id_to_org_member_info"));
    id_user *u = NULL;
    ag_reason reason = AR_INTERNAL;
    ck_assert_int_eq(id_user_from_claims(c, &u, &reason), 0);
    ck_assert_str_eq(id_user_active_org_id(u), "m");
    ck_assert_uint_eq(id_user_org_count(u), 1);
    const id_org *m = id_user_get_org(u, "m", 1);
    ck_assert(id_org_is_multi_role(m));
    ck_assert(id_org_is_role(m, "Role C"));
    id_user_unref(u);
    json_decref(c);

    const char *args2[] = {MINT_BASE, "--org", "o1:One:Admin", "--inherited", "Admin", NULL};
    c = mint_claims(args2, JWT_OK);
    u = NULL;
    ck_assert_int_eq(id_user_from_claims(c, &u, &reason), 0);
    ck_assert(!id_org_is_at_least_role(id_user_get_org(u, "o1", 2), "Member"));
    id_user_unref(u);
    json_decref(c);
}
END_TEST

START_TEST(test_mint_crafting_options)
{
    const char *expired[] = {MINT_BASE, "--exp-offset", "-61", NULL};
    ck_assert_ptr_null(mint_claims(expired, JWT_EXPIRED));
    const char *edge[] = {MINT_BASE, "--exp-offset=-59", "--ttl", "5", NULL};
    json_decref(mint_claims(edge, JWT_OK));
    const char *future[] = {MINT_BASE, "--iat-offset", "61", NULL};
    ck_assert_ptr_null(mint_claims(future, JWT_NOT_YET_VALID));
    const char *strexp[] = {MINT_BASE, "--claims-json", "{\"exp\":\"1790001800\"}", NULL};
    ck_assert_ptr_null(mint_claims(strexp, JWT_BAD_CLAIMS));
    const char *noiat[] = {MINT_BASE, "--unset", "iat", NULL};
    ck_assert_ptr_null(mint_claims(noiat, JWT_BAD_CLAIMS));
    const char *alg[] = {MINT_BASE, "--header-json", "{\"alg\":\"HS256\"}", NULL};
    ck_assert_ptr_null(mint_claims(alg, JWT_BAD_ALG));
    const char *extra[] = {MINT_BASE, "--claims-json", "{\"first_name\":\"A\",\"user_id\":\"u9\"}",
                           NULL};
    json_t *c = mint_claims(extra, JWT_OK);
    ck_assert_str_eq(json_string_value(json_object_get(c, "user_id")), "u9");
    ck_assert_str_eq(json_string_value(json_object_get(c, "first_name")), "A");
    json_decref(c);
    /* claims from a file */
    const char *file[] = {MINT_BASE, "--claims-json", TH_FIX "mint-claims.json", NULL};
    c = mint_claims(file, JWT_OK);
    ck_assert_str_eq(json_string_value(json_object_get(c, "username")), "from-file");
    json_decref(c);
    /* another key: verifies only against that key */
    const char *other[] = {"--key", TH_FIX "other-key.pem", "--issuer", TH_ISS, "--user-id", "u1",
                           "--now", "1790000000",           NULL};
    ck_assert_ptr_null(mint_claims(other, JWT_BAD_SIGNATURE));
}
END_TEST

START_TEST(test_mint_usage_errors)
{
    const char *no_key[] = {"--issuer", TH_ISS, "--user-id", "u1", NULL};
    ck_assert_int_eq(run_mint(NULL, no_key), 2);
    const char *inh_first[] = {MINT_BASE, "--inherited", "Admin", NULL};
    ck_assert_int_eq(run_mint(NULL, inh_first), 2);
    const char *multi_first[] = {MINT_BASE, "--multi-role", "A", NULL};
    ck_assert_int_eq(run_mint(NULL, multi_first), 2);
    const char *bad_org[] = {MINT_BASE, "--org", "justanid", NULL};
    ck_assert_int_eq(run_mint(NULL, bad_org), 2);
    const char *empty_role[] = {MINT_BASE, "--org", "o1:Name:", NULL};
    ck_assert_int_eq(run_mint(NULL, empty_role), 2);
    const char *bad_ttl[] = {MINT_BASE, "--ttl", "10s", NULL};
    ck_assert_int_eq(run_mint(NULL, bad_ttl), 2);
    const char *positional[] = {MINT_BASE, "extra", NULL};
    ck_assert_int_eq(run_mint(NULL, positional), 2);
    const char *unknown_opt[] = {MINT_BASE, "--bogus", NULL};
    ck_assert_int_eq(run_mint(NULL, unknown_opt), 2);
    const char *bad_active[] = {MINT_BASE, "--org", "o1:One:Admin", "--active-org", "o2", NULL};
    ck_assert_int_eq(run_mint(NULL, bad_active), 2);
    const char *bad_json[] = {MINT_BASE, "--claims-json", "{not json", NULL};
    ck_assert_int_eq(run_mint(NULL, bad_json), 2);
    const char *arr_json[] = {MINT_BASE, "--claims-json", "[1]", NULL};
    ck_assert_int_eq(run_mint(NULL, arr_json), 2);
    const char *no_file[] = {"--key", "/nonexistent/key.pem", "--issuer", TH_ISS, "--user-id", "u",
                             NULL};
    ck_assert_int_eq(run_mint(NULL, no_file), 1);
    const char *pub_key[] = {"--key", TH_DEMO_PUB, "--issuer", TH_ISS, "--user-id", "u", NULL};
    ck_assert_int_eq(run_mint(NULL, pub_key), 1);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_good_token_and_claims_out);
    tcase_add_test(tc, test_reason_codes_stable);
    tcase_add_test(tc, test_A1_alg_none_any_spelling);
    tcase_add_test(tc, test_A2_hs256_key_confusion);
    tcase_add_test(tc, test_A3_near_miss_alg);
    tcase_add_test(tc, test_A4_token_named_keys_ignored);
    tcase_add_test(tc, test_A5_hostile_kid);
    tcase_add_test(tc, test_A6_random_kid_junk_signature);
    tcase_add_test(tc, test_A7_crit_header);
    tcase_add_test(tc, test_A9_claim_types);
    tcase_add_test(tc, test_A9_duplicate_claims_signed);
    tcase_add_test(tc, test_big_integers_accepted);
    tcase_add_test(tc, test_verify_facts);
    tcase_add_test(tc, test_compat_strictness_payload);
    tcase_add_test(tc, test_A11_time_windows);
    tcase_add_test(tc, test_A12_issuer_exact);
    tcase_add_test(tc, test_A13_compact_shape);
    tcase_add_test(tc, test_A14_b64url_strict_decoder);
    tcase_add_test(tc, test_A14_token_strict_base64url);
    tcase_add_test(tc, test_A15_signature_length);
    tcase_add_test(tc, test_A16_bleichenbacher_e3_forgery);
    tcase_add_test(tc, test_A16_tampered_payload_and_signature);
    tcase_add_test(tc, test_A17_parsing_budget);
    tcase_add_test(tc, test_A18_good_signature_bad_payload);
    tcase_add_test(tc, test_A19_key_material_hygiene);
    tcase_add_test(tc, test_A19_signing_refuses_weak_keys);
    tcase_add_test(tc, test_A20_no_keys_never_ok);
    tcase_add_test(tc, test_key_rotation_order);
    tcase_add_test(tc, test_key_refcount);
    tcase_add_test(tc, test_sign_roundtrip_header_extra);
    tcase_add_test(tc, test_mint_layout_and_inheritance);
    tcase_add_test(tc, test_mint_inherited_multi_role_active_org);
    tcase_add_test(tc, test_mint_crafting_options);
    tcase_add_test(tc, test_mint_usage_errors);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
