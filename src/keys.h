/* keys: where the verifier key comes from (docs/semantics.md section 1).
 * Manual metadata (a PEM plus an issuer) is loaded once; fetched metadata comes
 * from PropelAuth's token_verification_metadata endpoint and is refreshed by a
 * background thread. Readers take an immutable, reference-counted snapshot, so
 * a request in flight keeps the key it started with across a rotation. */
#ifndef AG_KEYS_H
#define AG_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "jwt.h"
#include "kmeta.h"

typedef struct keys_store keys_store;

typedef struct keys_snapshot {
    jwt_key *keys[2]; /* current, then the previous one during its grace period */
    size_t nkeys;
    char *issuer;
    uint64_t generation; /* changes whenever the accepted key set changes */
    int refs;            /* atomic; use keys_snapshot_ref/unref */
} keys_snapshot;

/* Start from the auth section. Manual keys are loaded before returning. With
 * auth_url, the first fetch is attempted once synchronously: a definitive
 * answer (400/401/404, bad PEM) fails start-up with a one-line message in err;
 * a transient failure returns 0 with the store not ready and a background
 * thread retrying with back-off. */
int keys_start(const cfg_auth *auth, const char *config_dir, keys_store **out, char *err,
               size_t errlen);
void keys_stop(keys_store *ks);
/* What keys_start would refuse, found without contacting PropelAuth (for
 * `authgate check`): the manual key read and parsed; or, with auth_url, the
 * derived URLs and the API key read (a key file's mode judged exactly as at
 * start-up). 0, or -1 with a one-line message in err. */
int keys_preflight(const cfg_auth *auth, const char *config_dir, char *err, size_t errlen);

/* Current snapshot (new reference) or NULL when no key is loaded yet. */
keys_snapshot *keys_acquire(keys_store *ks);
void keys_snapshot_unref(keys_snapshot *s);
/* Cheap check whether keys_acquire would return something newer. */
uint64_t keys_generation(const keys_store *ks);
bool keys_ready(const keys_store *ks);
/* Ask for an immediate re-fetch (SIGHUP). No-op for manual keys. */
void keys_refresh_now(keys_store *ks);

typedef struct keys_status {
    bool ready;
    bool fetched; /* false: manual metadata */
    char fingerprint[17];
    int64_t loaded_at; /* wall clock seconds, 0 if never */
    uint64_t refresh_failures;
    uint64_t refresh_ok;
    char last_error[160];
} keys_status;
void keys_get_status(keys_store *ks, keys_status *st);

/* ---- The pieces of a fetch, exported so the unit tests can reach them; the
 * pure ones are in kmeta.h. ---- */

/* The API key from exactly one of api_key_env / api_key_file / api_key. The file
 * must not be accessible by group or others; its first line is the key. The
 * message in err never contains the key. *out is malloc'd; cleanse before free. */
int keys_read_api_key(const cfg_auth *auth, char **out, char *err, size_t errlen);

#endif
