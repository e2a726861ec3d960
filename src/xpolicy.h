/* xpolicy: the policy a request is decided and forwarded under: the gate
 * plus what the transport compiles once from the same configuration (the
 * forwarding rules, the upstream targets in both forms, their names
 * registered with the resolver). Immutable and reference counted; a reload
 * builds a new one and swaps it, requests in flight keep theirs. */
#ifndef AG_XPOLICY_H
#define AG_XPOLICY_H

#include <stddef.h>

#include "gate.h"
#include "upstream.h"

struct fwd_rules;
struct fwd_target;
struct rs_resolver;

typedef struct xpolicy {
    gate *gate;
    struct fwd_rules *rules;     /* what crosses the gateway (fwd.h) */
    struct fwd_target *ftargets; /* one per cfg upstream, same index */
    up_target *targets;          /* the clients' view of the same URLs */
    size_t ntargets;
    int refs; /* atomic */
} xpolicy;

/* Takes the gate reference (also on failure). NULL with err set. */
xpolicy *xpolicy_new(gate *g, struct rs_resolver *resolver, char *err, size_t errlen);
xpolicy *xpolicy_ref(xpolicy *p);
void xpolicy_unref(xpolicy *p);

#endif
