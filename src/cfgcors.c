/* cfgcors: the global cors section and routes[].cors. Each route gets one
 * compiled cors_policy (NULL = off): the global keys, each replaced by the
 * route's own. */
#include <stdlib.h>
#include <string.h>

#include "cfgint.h"
#include "cfgload.h"
#include "httpx.h"
#include "util.h"

static const char *const default_cors_headers[] = {"Authorization", "Content-Type"};

static void free_strs(char **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

void cc_spec_free(cors_spec *s)
{
    free_strs(s->origins, s->norigins);
    free_strs(s->headers, s->nheaders);
    free_strs(s->expose, s->nexpose);
    memset(s, 0, sizeof(*s));
}

/* A list of strings appended to *arr. */
static void str_list(lctx *c, const ynode *l, const char *where, char ***arr, size_t *n)
{
    if (l->bad)
        return;
    if (l->kind != Y_SEQ) {
        cl_err(c, l->line, l->col, "%s: expected a list, got %s", where, cl_kind_name(l));
        return;
    }
    if (l->n > CFG_MAX_STRIP_HEADERS) {
        cl_err(c, l->line, l->col, "%s: more than %d entries", where, CFG_MAX_STRIP_HEADERS);
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        char *s = NULL;
        if (cl_get_str(c, l->kids[i], where, &s) != 0)
            continue;
        if (cl_push_str(arr, n, s) != 0) {
            free(s);
            c->oom = true;
        }
    }
}

static void cors_methods(lctx *c, const ynode *l, const char *where, unsigned *out)
{
    char qb[96];
    if (l->bad)
        return;
    if (l->kind != Y_SEQ || l->n == 0) {
        cl_err(c, l->line, l->col, "%s: expected a non-empty list like [GET, POST]", where);
        return;
    }
    unsigned mask = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ynode *m = l->kids[i];
        unsigned bit = m->kind == Y_SCALAR && !cl_is_null(m) ? hx_method_bit(m->s) : 0;
        if (bit == 0)
            cl_err(c, m->line, m->col,
                   "%s: unknown method %s (use GET, HEAD, POST, PUT, DELETE, PATCH)", where,
                   QN(qb, m));
        mask |= bit;
    }
    *out = mask;
}

/* The list keys of one cors mapping (the scalars are converted by the walk);
 * each seen key replaces what s had. */
static void cors_lists(lctx *c, const cl_walk *w, const char *where, cors_spec *s)
{
    char wh[200];
    const kseen *k;
    if ((k = cl_seen(w, "allowed_origins"))->v) {
        free_strs(s->origins, s->norigins);
        s->origins = NULL;
        s->norigins = 0;
        snprintf(wh, sizeof(wh), "%s.allowed_origins", where);
        str_list(c, k->v, wh, &s->origins, &s->norigins);
    }
    if ((k = cl_seen(w, "allowed_headers"))->v) {
        free_strs(s->headers, s->nheaders);
        s->headers = NULL;
        s->nheaders = 0;
        snprintf(wh, sizeof(wh), "%s.allowed_headers", where);
        str_list(c, k->v, wh, &s->headers, &s->nheaders);
    }
    if ((k = cl_seen(w, "exposed_headers"))->v) {
        free_strs(s->expose, s->nexpose);
        s->expose = NULL;
        s->nexpose = 0;
        snprintf(wh, sizeof(wh), "%s.exposed_headers", where);
        str_list(c, k->v, wh, &s->expose, &s->nexpose);
    }
    if ((k = cl_seen(w, "allowed_methods"))->v) {
        snprintf(wh, sizeof(wh), "%s.allowed_methods", where);
        cors_methods(c, k->v, wh, &s->methods);
    }
}

void cc_section(lctx *c, const ynode *n)
{
    cors_spec *s = &c->cfg->cors;
    for (size_t i = 0; i < AG_ARRAY_LEN(default_cors_headers); i++) {
        char *h = ag_strdup(default_cors_headers[i]);
        if (!h || cl_push_str(&s->headers, &s->nheaders, h) != 0) {
            free(h);
            c->oom = true;
        }
    }
    if (!n || !cl_expect_map(c, n, "cors"))
        return;
    cl_walk w;
    cl_walk_map(c, n, "cors", NULL, c->cfg, &w);
    cors_lists(c, &w, "cors", s);
    char err[256];
    cors_policy *p = cors_compile(s, err, sizeof(err));
    if (!p && err[0])
        cl_err(c, n->line, n->col, "cors: %s", err);
    cors_free(p);
}

/* The route's cors: the global keys, each replaced by the route's own. */
void cc_route(lctx *c, const ynode *n, const char *where, cfg_route *r)
{
    cors_spec own = {0}, eff = c->cfg->cors;
    char wh[200], err[256];
    snprintf(wh, sizeof(wh), "%s: cors", where);
    if (n && cl_expect_map(c, n, wh)) {
        cl_walk w;
        cl_walk_map(c, n, "routes[].cors", wh, &own, &w);
        cors_lists(c, &w, wh, &own);
        if (cl_seen(&w, "allowed_origins")->v) {
            eff.origins = own.origins;
            eff.norigins = own.norigins;
        }
        if (cl_seen(&w, "allowed_headers")->v) {
            eff.headers = own.headers;
            eff.nheaders = own.nheaders;
        }
        if (cl_seen(&w, "exposed_headers")->v) {
            eff.expose = own.expose;
            eff.nexpose = own.nexpose;
        }
        if (cl_seen(&w, "allowed_methods")->v)
            eff.methods = own.methods;
        if (cl_seen(&w, "allow_credentials")->v)
            eff.credentials = own.credentials;
        if (cl_seen(&w, "max_age")->v)
            eff.max_age = own.max_age;
    }
    r->cors = cors_compile(&eff, err, sizeof(err));
    /* A fault in the global section is reported once, at the section. */
    if (!r->cors && err[0] && n)
        cl_err(c, n->line, n->col, "%s: %s", wh, err);
    cc_spec_free(&own);
}
