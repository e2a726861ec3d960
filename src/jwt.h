/* jwt: RS256 access-token verification (docs/semantics.md section 2,
 * docs/security.md group A). Pure: the caller passes the clock and the keys.
 * The algorithm is fixed here (RS256); nothing in the token selects it. */
#ifndef AG_JWT_H
#define AG_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reason.h"

typedef struct jwt_key jwt_key;

/* Parse an RSA public key from PEM (SPKI "BEGIN PUBLIC KEY" or PKCS#1
 * "BEGIN RSA PUBLIC KEY"). Rejects non-RSA keys and moduli under 2048 bits.
 * Returns 0, or -1 with a message in err. */
int jwt_key_from_pem(const char *pem, size_t len, jwt_key **out, char *err, size_t errlen);
jwt_key *jwt_key_ref(jwt_key *k);
void jwt_key_unref(jwt_key *k); /* NULL ok; atomic refcount */
/* Short fingerprint: first 16 hex chars of SHA-256 over the DER SPKI. */
const char *jwt_key_fingerprint(const jwt_key *k);

/* The zero value is a refusal: a status nobody set never reads as valid. */
typedef enum jwt_status {
    JWT_MALFORMED = 0, /* structure, base64url, JSON */
    JWT_TOO_LARGE,     /* over max_token_bytes */
    JWT_BAD_ALG,       /* alg not exactly RS256, crit, or a non-string kid; jwk/jku/x5u/x5c
                        * are ignored: only configured keys are ever used (case A4) */
    JWT_BAD_SIGNATURE,
    JWT_EXPIRED,
    JWT_NOT_YET_VALID, /* iat or nbf in the future beyond leeway */
    JWT_BAD_ISSUER,
    JWT_BAD_CLAIMS, /* missing/mistyped exp, iat, iss, sub, jti, user_id ... */
    JWT_OK,
    JWT__COUNT
} jwt_status;

/* The reason-table row of a refusal (AR_TOKEN_EXPIRED, ...); AR_OK for JWT_OK. */
ag_reason jwt_status_code(jwt_status s);
/* Its reason string ("token_expired", ...). */
const char *jwt_status_reason(jwt_status s);

typedef struct jwt_params {
    jwt_key *const *keys; /* tried in order (current, then previous during grace) */
    size_t nkeys;
    const char *issuer; /* compared byte for byte with iss */
    int64_t leeway;     /* seconds */
    int64_t now;        /* seconds since epoch */
    size_t max_token_bytes;
} jwt_params;

/* Verify a compact JWS. Every structural check runs before RSA, so garbage never
 * costs a signature verification. On JWT_OK *claims_out receives the payload
 * object (caller owns the reference, parsed by jnum_loadb); otherwise it is
 * left NULL. */
jwt_status jwt_verify(const char *tok, size_t len, const jwt_params *p, json_t **claims_out);

/* What the claim checks compared, for `authgate explain`. Filled only once
 * the signature held and the payload parsed (parsed = true). */
typedef struct jwt_facts {
    bool parsed;
    int64_t now, leeway; /* the clock and the leeway applied */
    bool has_exp, has_iat, has_nbf;
    int64_t exp, iat, nbf; /* whole seconds, saturated */
    bool iss_is_string;
    char iss[256];        /* the token's iss (truncated, NUL-terminated) */
    size_t iss_len;       /* its full length */
    const char *want_iss; /* the configured issuer (jwt_params.issuer) */
    /* The verifier's own verdicts, once the claim types were right (judged). */
    bool judged;
    bool exp_ok, iat_ok, nbf_ok, iss_ok;
} jwt_facts;

/* jwt_verify, also filling *facts when facts is not NULL. */
jwt_status jwt_verify_facts(const char *tok, size_t len, const jwt_params *p, json_t **claims_out,
                            jwt_facts *facts);

/* Sign claims as an RS256 token with a private key (PEM). Used by `authgate mint`
 * and the tests. Returns a malloc'd token or NULL with err filled. */
char *jwt_sign_rs256(const char *private_pem, size_t pem_len, const json_t *header_extra,
                     const json_t *claims, char *err, size_t errlen);

/* base64url without padding (strict: rejects '=', '+', '/', whitespace, and
 * non-canonical trailing bits). Returns decoded length or -1. out must hold
 * at least (len * 3) / 4 + 1 bytes. */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out);
size_t jwt_b64url_encode(const unsigned char *in, size_t len,
                         char *out); /* out >= 4*ceil(len/3)+1 */

#endif
