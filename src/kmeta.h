/* kmeta: the pure half of getting a verifier key from PropelAuth. What the
 * request is made of (the issuer and the X-Propelauth-url host from auth_url,
 * the metadata URL from api_base_url, the header lines), what an answer means
 * (the status, then the JSON body and the PEM in it) and how long to wait
 * before the next attempt. No I/O, no clock, no global state: testable and
 * fuzzable alone. The names keep the keys_ prefix of the API they belong to;
 * keys.h includes this header. kfetch.c does the fetch, keys.c the store. */
#ifndef AG_KMETA_H
#define AG_KMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

#define KEYS_MAX_RESPONSE_BYTES (64 * 1024) /* metadata body cap; PropelAuth's is ~500 B */
#define KEYS_MAX_API_KEY_BYTES 4096
#define KEYS_MAX_HOST_BYTES 300 /* host[:port] of auth_url */
#define KEYS_MAX_URL_BYTES 2048 /* the metadata URL */
#define KEYS_BACKOFF_MIN_MS 500
#define KEYS_BACKOFF_MAX_MS 60000

/* What one fetch attempt means. The zero value retries, so a forgotten branch
 * never reads as success. */
typedef enum keys_outcome {
    KEYS_RETRY = 0, /* network error, timeout, 429, 5xx, other statuses */
    KEYS_FATAL,     /* definitive: 400/401/404, a 200 that is unusable, TLS refusal */
    KEYS_OK,
} keys_outcome;

/* host[:port] of <auth_url> exactly as written (urlparse(auth_url).netloc in
 * propelauth-py): path, query and trailing slash dropped. -1 with a message
 * when there is no host, credentials, or a byte that cannot go in a header. */
int keys_auth_host(const char *auth_url, char *out, size_t outlen, char *err, size_t errlen);
/* "https://" + keys_auth_host(<auth_url>), whatever scheme auth_url had. */
int keys_derive_issuer(const char *auth_url, char *out, size_t outlen, char *err, size_t errlen);
/* <api_base_url> without trailing slashes + "/api/v1/token_verification_metadata".
 * https only, except plain http to a loopback host (tests and local fakes); *tls
 * says which. -1 with a message otherwise. */
int keys_metadata_url(const char *api_base_url, char *out, size_t outlen, bool *tls, char *err,
                      size_t errlen);
/* The two PropelAuth request headers as malloc'd lines: "Authorization: Bearer
 * <api_key>" (caller cleanses and frees) and "X-Propelauth-url: <host>". -1 if the
 * key is empty, too long or holds a byte outside visible ASCII. */
int keys_header_lines(const char *api_key, const char *host, char **auth_line, char **host_line,
                      char *err, size_t errlen);
/* Meaning of an HTTP status other than 200, with a one-line message naming the
 * cause and <url>. */
keys_outcome keys_classify_status(long status, const char *url, char *msg, size_t msglen);
/* A 200 body: a JSON object whose verifier_key_pem is a usable RSA public key.
 * KEYS_OK with *out (new reference) or KEYS_FATAL with a message. */
keys_outcome keys_parse_metadata(const char *body, size_t len, jwt_key **out, char *msg,
                                 size_t msglen);
/* Delay before retry number <attempt> (0-based): 0.5 s doubling to 60 s, then
 * "equal jitter" from <rnd>: a value in [base/2, base]. */
uint64_t keys_backoff_ms(unsigned attempt, uint32_t rnd);

/* For the key modules (kmeta.c, kfetch.c, keys.c) only: snprintf into msg
 * when there is room for a message. */
void km_msg(char *msg, size_t msglen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
