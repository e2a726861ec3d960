/* cfgint: internal to the config loader. config.c loads and frees and gives
 * the small sections their meaning; cfghdr.c, cfgcors.c and cfgroute.c each
 * take one concern. This header declares only what one of those files calls
 * in another; nothing outside the loader includes it (config.h is the API).
 *
 * Order matters: load() runs identity before routes (an org id header is
 * checked against the identity and strip names), and upstreams and the
 * global cors section before routes (a route points into the one and starts
 * from the other). */
#ifndef AG_CFGINT_H
#define AG_CFGINT_H

#include <stdbool.h>

#include "cfgload.h"

/* cfghdr.c: header names. */
void ch_identity(lctx *c, const ynode *n);
/* Why name cannot be compared as fwd compares names; NULL when it can. */
const char *ch_uncomparable(const char *name);
/* Does the gateway strip h in any spelling (a ruled class, an identity or
 * strip name)? */
bool ch_is_stripped(const cfg_identity *id, const char *h);
/* One routes[].request_headers (request) or response_headers mapping; r is
 * the route so far: its org id source and cors are checked against. */
void ch_rules(lctx *c, const ynode *n, const char *scope, const char *where, bool request,
              const cfg_route *r, cfg_hdr_rules *out);
void ch_rules_free(cfg_hdr_rules *h);

/* cfgcors.c: the global cors section into c->cfg->cors, and a route's
 * compiled policy from it and the route's own keys. */
void cc_section(lctx *c, const ynode *n);
void cc_route(lctx *c, const ynode *n, const char *where, cfg_route *r);
void cc_spec_free(cors_spec *s);

/* cfgroute.c: routes[], the route table's ambiguity check, the lint. */
void cr_routes(lctx *c, const ynode *n);

#endif
