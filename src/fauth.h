/* fauth: the forward-auth decision listener. An ingress that is already in
 * the data path (nginx auth_request, Traefik ForwardAuth, Caddy forward_auth,
 * Envoy ext_authz) asks it, per request, whether the original request may
 * pass: the answer is the proxy mode's decision (adm_check, then gate_decide,
 * on the same canonical path) as a status with the identity headers, and
 * nothing is ever forwarded. docs/forward-auth.md is the operator's page.
 *
 * Its own listener (forward_auth.listen) and threads (hsrv.h, an answer-only
 * HTTP/1.1 server), apart from the proxy's workers. Only peers in
 * forward_auth.trusted_peers are answered; the forwarded-URI headers of
 * anyone else are never read. Each thread keeps its own token cache and its
 * own references to the policy and the keys, refreshed when their generation
 * moves (fa_set_policy after a reload, keys_generation after a rotation). */
#ifndef AG_FAUTH_H
#define AG_FAUTH_H

#include <stddef.h>

#include "config.h"
#include "gate.h"
#include "keys.h"
#include "reason.h"
#include "xpolicy.h"

/* The check request as it reached the listener. Header values are
 * NUL-terminated at value_len (rqhead.h parses them so). */
typedef struct fa_call {
    const char *method; /* the check request's own method */
    const char *target; /* its raw request-target */
    size_t target_len;
    const gate_header *headers;
    size_t nheaders;
} fa_call;

/* The original request a check request names. code is AR_OK when it names
 * exactly one; otherwise one of the AR_FA_* rows (the zero value, AR_INTERNAL,
 * refuses too). method and target point into the call. */
typedef struct fa_original {
    ag_reason code;
    unsigned dialect; /* the CFG_FA_* that named it; 0 when none did */
    const char *method;
    const char *target;
    size_t target_len;
    size_t nheaders; /* headers written to out: the call's minus the dialect headers */
} fa_original;

/* Read the original request out of a check request, by the dialects cfg
 * enables:
 *   original   X-Original-Method + X-Original-URI  (nginx auth_request)
 *   forwarded  X-Forwarded-Method + X-Forwarded-Uri (Traefik, Caddy)
 *   envoy      the call's method, its target after envoy_path_prefix
 * Exactly one dialect must name the request: either header of a pair repeated,
 * two dialects present at once, or an Envoy path carrying another dialect's
 * headers is forward_auth_ambiguous (a client that forged another proxy's
 * headers is refused rather than believed); half a pair is
 * forward_auth_method_missing / forward_auth_uri_missing, as is nothing at all.
 * out must have room for call->nheaders entries. Pure. */
void fa_original_of(const cfg_forward_auth *cfg, const fa_call *call, gate_header *out,
                    fa_original *o);

typedef struct fa_server fa_server;

/* Start the listener of pol's forward_auth section. The policy reference is
 * taken (the caller keeps its own); metric shards shard_base ..
 * shard_base + threads - 1 are this listener's. 0, or -1 with err set. */
int fa_start(xpolicy *pol, keys_store *keys, int threads, int shard_base, fa_server **out,
             char *err, size_t errlen);
/* A reload: calls decided from now on use p (a reference is taken). */
void fa_set_policy(fa_server *f, xpolicy *p);
int fa_port(const fa_server *f);
/* The process is draining (hsrv.h hs_drain): answers close their connection. */
void fa_drain(fa_server *f);
void fa_stop(fa_server *f); /* NULL ok */

#endif
