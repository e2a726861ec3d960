/* kfetch: internal to the key store. The I/O half of getting a verifier key
 * from PropelAuth: the API key read from its source, and one GET of the
 * token_verification_metadata endpoint over libcurl, its answer judged by
 * kmeta. Only keys.c and kfetch.c include this header; keys.h is the API
 * (keys_read_api_key is declared there and defined here). */
#ifndef AG_KFETCH_H
#define AG_KFETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "jwt.h"
#include "kmeta.h"

/* What one GET needs, fixed in keys_start and read-only afterwards. */
typedef struct kf_request {
    char *url;
    char *auth_line; /* holds the API key: cleansed on stop */
    char *host_line;
    char *ca_file;
    bool tls;
    long timeout_ms;
} kf_request;

/* GET the metadata once. Reads only rq, so it runs without the store's lock;
 * a non-zero *stop (read atomically) aborts a transfer in flight. KEYS_OK with
 * *out (new reference), otherwise a one-line message in msg. */
keys_outcome kf_get(const kf_request *rq, const int *stop, jwt_key **out, char *msg, size_t msglen);

/* Cleanse a NUL-terminated secret, then free it. NULL is a no-op. */
void kf_free_secret(char *s);

#endif
