/* xpolicy: what one loaded configuration becomes for the transport. See
 * xpolicy.h. */
#include "xpolicy.h"

#include <stdio.h>
#include <stdlib.h>

#include "fwd.h"
#include "resolve.h"

xpolicy *xpolicy_ref(xpolicy *p)
{
    if (p)
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
    return p;
}

void xpolicy_unref(xpolicy *p)
{
    if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    gate_unref(p->gate);
    for (size_t i = 0; p->ftargets && i < p->ntargets; i++)
        fwd_target_free(&p->ftargets[i]);
    free(p->ftargets);
    free(p->targets);
    fwd_rules_free(p->rules);
    free(p);
}

/* Compile what the transport needs from a configuration, once per load:
 * upstream targets (and their names registered with the resolver). Takes
 * the gate reference. */
xpolicy *xpolicy_new(gate *g, rs_resolver *resolver, char *err, size_t errlen)
{
    const cfg_config *c = gate_config(g);
    size_t n = c->nupstreams ? c->nupstreams : 1;
    xpolicy *p = calloc(1, sizeof(*p));
    if (!p || !(p->targets = calloc(n, sizeof(up_target))) ||
        !(p->ftargets = calloc(n, sizeof(fwd_target)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(p->rules = fwd_rules_new(c, err, errlen)))
        goto fail;
    p->ntargets = c->nupstreams;
    for (size_t i = 0; i < c->nupstreams; i++) {
        char why[128];
        up_target *t = &p->targets[i];
        if (fwd_target_compile(c->upstreams[i].url, &p->ftargets[i], why, sizeof(why)) != 0 ||
            up_target_compile(c->upstreams[i].url, t, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "upstream %s: %s", c->upstreams[i].name, why);
            goto fail;
        }
        if (!t->https && (t->resolver_id = rs_add(resolver, t->host, t->port)) < 0) {
            snprintf(err, errlen, "upstream %s: cannot register %s with the resolver",
                     c->upstreams[i].name, t->host);
            goto fail;
        }
    }
    p->gate = g;
    p->refs = 1;
    return p;
fail:
    if (p) {
        p->gate = g;
        p->refs = 1;
        xpolicy_unref(p);
    } else {
        gate_unref(g);
    }
    return NULL;
}
