#include "gate.h"

#include <assert.h>
#include <regex.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "hdr.h"
#include "httpx.h"
#include "jwt.h"
#include "tcache.h"

struct gate {
    int refs;
    cfg_config *cfg;
    rt_table *routes;
    regex_t org_re;
    bool has_org_re;
};

int gate_new(cfg_config *cfg, gate **out, char *err, size_t errlen)
{
    int rc = -1;
    gate *g = calloc(1, sizeof(*g));
    if (!g) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    g->refs = 1;
    g->cfg = cfg;
    g->routes = rt_new();
    if (!g->routes) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        cfg_route *r = &cfg->routes[i];
        void *dup = NULL;
        char rerr[256];
        if (rt_add(g->routes, r->path, r->methods, r, &dup, rerr, sizeof(rerr)) != 0) {
            snprintf(err, errlen, "route %s: %s", r->path, rerr);
            goto out;
        }
    }
    /* The documented default pattern is what org_id_shape_ok checks without a
     * regex engine; only a custom pattern pays for regexec per request. */
    if (cfg->paths.org_id_pattern && cfg->paths.org_id_pattern[0] &&
        strcmp(cfg->paths.org_id_pattern, CFG_DEFAULT_ORG_ID_PATTERN) != 0) {
        /* Anchored so the whole decoded id must match, never a substring. */
        ag_buf re;
        ag_buf_init(&re);
        if (ag_buf_printf(&re, "^(%s)$", cfg->paths.org_id_pattern) != 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        int e = regcomp(&g->org_re, re.p, REG_EXTENDED | REG_NOSUB);
        ag_buf_free(&re);
        if (e != 0) {
            snprintf(err, errlen, "paths.org_id_pattern is not a valid extended regex");
            goto out;
        }
        g->has_org_re = true;
    }
    *out = g;
    g = NULL;
    rc = 0;
out:
    if (g) {
        g->cfg = NULL; /* the caller keeps cfg on failure */
        gate_unref(g);
    }
    return rc;
}

gate *gate_ref(gate *g)
{
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
    return g;
}

void gate_unref(gate *g)
{
    if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    rt_free(g->routes);
    if (g->has_org_re)
        regfree(&g->org_re);
    if (g->cfg)
        cfg_free(g->cfg);
    free(g);
}

const cfg_config *gate_config(const gate *g)
{
    return g->cfg;
}

const rt_table *gate_routes(const gate *g)
{
    return g->routes;
}

void gate_decision_init_buf(gate_decision *d, char *path, size_t cap)
{
    /* Every request initialises one of these; the path buffer is written by
     * the canonicalizer before it is read, so it is not cleared. */
    memset(d, 0, offsetof(gate_decision, org_id));
    d->org_id[0] = '\0';
    d->path = path;
    d->path_cap = path ? cap : 0;
    if (path && cap)
        path[0] = '\0';
    ag_buf_init(&d->scratch);
}

void gate_decision_init(gate_decision *d)
{
    char *p = malloc(GATE_PATH_MAX);
    gate_decision_init_buf(d, p, GATE_PATH_MAX);
    d->path_owned = p != NULL;
}

void gate_decision_clear(gate_decision *d)
{
    if (d->path_owned) {
        free(d->path);
        d->path = NULL;
        d->path_cap = 0;
        d->path_owned = false;
    }
    id_user_unref(d->user);
    d->user = NULL;
    ag_buf_free(&d->scratch);
}

/* Every outcome is written by one of these two, from the reason table. */
void gate_refuse(gate_decision *d, ag_reason code)
{
    d->outcome = GATE_REFUSE;
    d->code = code;
    d->status = reason_status(code);
    d->error = reason_error(code);
    d->reason = reason_name(code);
    assert(d->status >= 400 && d->error);
}

/* ---- cors ---------------------------------------------------------------- */

/* How many headers are named exactly name (case aside); *v gets the first. */
static size_t header_count(const gate_request *req, const char *name, const char **v, size_t *vl)
{
    size_t n = 0;
    *v = NULL;
    *vl = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const gate_header *h = &req->headers[i];
        if (!ag_streq_ci(h->name, h->name_len, name))
            continue;
        if (n++ == 0) {
            *v = h->value ? h->value : "";
            *vl = h->value ? h->value_len : 0;
        }
    }
    return n;
}

/* Actual requests on a CORS route: the response carries the headers. */
static void cors_note(const cfg_route *r, const gate_request *req, gate_decision *d)
{
    if (!r->cors)
        return;
    d->cors = r->cors;
    const char *o;
    size_t ol;
    if (header_count(req, "origin", &o, &ol) == 1) {
        d->origin = o;
        d->origin_len = ol;
    }
}

/* An OPTIONS with Origin and Access-Control-Request-Method for a route with
 * cors is answered here, before any token is looked at: browsers never send
 * credentials on a preflight. false when it is not one (an ordinary OPTIONS,
 * or the real request would reach no route with cors): decided as usual. */
static bool cors_preflight_decide(const gate *g, const gate_request *req, gate_decision *d)
{
    const char *o, *m, *h;
    size_t ol, ml, hl;
    size_t no = header_count(req, "origin", &o, &ol);
    size_t nm = header_count(req, "access-control-request-method", &m, &ml);
    size_t nh = header_count(req, "access-control-request-headers", &h, &hl);
    char mb[16];
    if (no == 0 || nm != 1 || ml == 0 || ml >= sizeof(mb))
        return false;
    memcpy(mb, m, ml);
    mb[ml] = '\0';
    unsigned bit = hx_method_bit(mb);
    rt_match rm;
    if (bit == 0)
        return false;
    rt_match_path(g->routes, d->path, d->path_len, bit, &rm);
    const cfg_route *r = rm.data;
    if (!r || !r->cors)
        return false;
    d->route = r;
    cors_note(r, req, d);
    cors_verdict v = no != 1  ? CORS_DENY_ORIGIN
                     : nh > 1 ? CORS_DENY_HEADERS
                              : cors_preflight(r->cors, o, ol, m, ml, nh ? h : NULL, hl);
    switch (v) {
    case CORS_ALLOW:
        d->outcome = GATE_REFUSE; /* answered, never forwarded */
        d->code = AR_CORS_PREFLIGHT;
        d->status = reason_status(AR_CORS_PREFLIGHT);
        d->error = NULL;
        d->reason = reason_name(AR_CORS_PREFLIGHT);
        d->cors_method = m;
        d->cors_method_len = ml;
        d->cors_headers = nh ? h : NULL;
        d->cors_headers_len = nh ? hl : 0;
        break;
    case CORS_DENY_METHOD:
        d->origin = NULL; /* a refused preflight reflects nothing */
        gate_refuse(d, AR_CORS_METHOD_DENIED);
        break;
    case CORS_DENY_HEADERS:
        d->origin = NULL;
        gate_refuse(d, AR_CORS_HEADERS_DENIED);
        break;
    case CORS_DENY_ORIGIN:
    default:
        gate_refuse(d, AR_CORS_ORIGIN_DENIED);
        break;
    }
    return true;
}

static void forward(gate_decision *d, ag_reason code)
{
    assert(reason_forwards(code));
    assert(d->route && d->route->upstream);
    assert(!pol_needs_token(d->route->policy.kind) || d->user);
    d->outcome = GATE_FORWARD;
    d->code = code;
    d->status = 0;
    d->error = NULL;
    d->reason = reason_name(code);
}

static void token_refused(gate_decision *d, ag_reason code)
{
    d->token_code = code;
    d->token_reason = reason_name(code);
}

/* Org ids are compared byte for byte with the token's map keys; this only keeps
 * out what no PropelAuth id looks like (controls, separators, huge values). */
static bool org_id_shape_ok(const gate *g, const char *id, size_t len)
{
    if (len == 0 || len > 128)
        return false;
    if (g->has_org_re)
        return regexec(&g->org_re, id, 0, NULL, 0) == 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '~';
        if (!ok)
            return false;
    }
    return true;
}

/* Find the org id for the route. Returns 0 (present or absent), or -1 after
 * setting a 400 decision. */
static int extract_org_id(const gate *g, const cfg_route *r, const rt_match *m,
                          const gate_request *req, gate_decision *d)
{
    size_t len = 0;
    switch (r->org_kind) {
    case CFG_ORG_NONE:
        return 0;
    case CFG_ORG_PATH: {
        const rt_param *p = NULL;
        for (size_t i = 0; i < m->nparams; i++)
            if (strcmp(m->params[i].name, r->org_name) == 0)
                p = &m->params[i];
        if (!p)
            return 0;
        if (canon_decode_segment(p->value, p->value_len, d->org_id, sizeof(d->org_id), &len) != 0)
            goto invalid;
        /* A query parameter of the same name that disagrees would let the
         * backend read a different org than the one authorized. */
        if (d->query) {
            char qv[GATE_ORG_MAX];
            size_t qlen = 0;
            canon_qstatus qs =
                canon_query_get(d->query, d->query_len, r->org_name, qv, sizeof(qv), &qlen);
            if (qs == CANON_Q_AMBIGUOUS || qs == CANON_Q_MALFORMED ||
                (qs == CANON_Q_FOUND && (qlen != len || memcmp(qv, d->org_id, len) != 0))) {
                gate_refuse(d, AR_ORG_ID_AMBIGUOUS);
                return -1;
            }
        }
        break;
    }
    case CFG_ORG_QUERY: {
        if (!d->query)
            return 0;
        canon_qstatus qs = canon_query_get(d->query, d->query_len, r->org_name, d->org_id,
                                           sizeof(d->org_id), &len);
        if (qs == CANON_Q_ABSENT)
            return 0;
        if (qs == CANON_Q_AMBIGUOUS) {
            gate_refuse(d, AR_ORG_ID_AMBIGUOUS);
            return -1;
        }
        if (qs != CANON_Q_FOUND)
            goto invalid;
        break;
    }
    case CFG_ORG_HEADER: {
        const gate_header *found = NULL;
        for (size_t i = 0; i < req->nheaders; i++) {
            const gate_header *h = &req->headers[i];
            /* In normal form: a backend may read "X_Tenant_Id" as the
             * source, so a look-alike is a second copy, not another header. */
            if (hdr_name_eq(h->name, h->name_len, r->org_name, strlen(r->org_name))) {
                if (found) {
                    gate_refuse(d, AR_ORG_ID_AMBIGUOUS);
                    return -1;
                }
                found = h;
            }
        }
        if (!found)
            return 0;
        if (found->value_len >= sizeof(d->org_id))
            goto invalid;
        memcpy(d->org_id, found->value, found->value_len);
        len = found->value_len;
        break;
    }
    }
    d->org_id[len] = '\0';
    if (!org_id_shape_ok(g, d->org_id, len))
        goto invalid;
    d->org_id_len = len;
    d->has_org_id = true;
    return 0;
invalid:
    d->org_id[0] = '\0';
    gate_refuse(d, AR_ORG_ID_INVALID);
    return -1;
}

/* Establish the token state: header grammar, then the cache, then the verifier. */
static pol_token_state check_token(const gate *g, const keys_snapshot *keys, struct tc_cache *cache,
                                   const gate_request *req, int64_t now, gate_decision *d)
{
    const gate_header *authz = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const gate_header *h = &req->headers[i];
        if (ag_streq_ci(h->name, h->name_len, "authorization")) {
            if (authz) {
                d->token_sent = true;
                token_refused(d, AR_AUTH_HEADER_DUPLICATE);
                return POL_TOKEN_INVALID;
            }
            authz = h;
        }
    }
    if (!authz)
        return POL_TOKEN_NONE;
    d->token_sent = true;
    const char *tok;
    size_t tok_len;
    if (hx_parse_bearer(authz->value, authz->value_len, &tok, &tok_len, NULL) != 0) {
        token_refused(d, AR_AUTH_HEADER_INVALID);
        return POL_TOKEN_INVALID;
    }
    if (!keys)
        return POL_KEYS_UNAVAILABLE;
    if (cache) {
        d->cache_used = true;
        id_user *u = tc_get(cache, tok, tok_len, keys->generation, now);
        if (u) {
            d->user = u;
            d->cache_hit = true;
            return POL_TOKEN_VALID;
        }
    }
    jwt_params p = {
        .keys = keys->keys,
        .nkeys = keys->nkeys,
        .issuer = keys->issuer,
        .leeway = g->cfg->auth.leeway_seconds,
        .now = now,
        .max_token_bytes = g->cfg->limits.max_token_bytes,
    };
    json_t *claims = NULL;
    jwt_status st = jwt_verify_facts(tok, tok_len, &p, &claims, d->facts);
    if (st != JWT_OK) {
        token_refused(d, jwt_status_code(st));
        return POL_TOKEN_INVALID;
    }
    id_user *u = NULL;
    ag_reason why = AR_TOKEN_CLAIMS;
    int rc = id_user_from_claims(claims, &u, &why);
    json_decref(claims);
    if (rc != 0) {
        token_refused(d, why);
        return POL_TOKEN_INVALID;
    }
    if (cache)
        tc_put(cache, tok, tok_len, keys->generation, u);
    d->user = u;
    return POL_TOKEN_VALID;
}

/* canon names its refusals with reason-table strings; anything else it might
 * say is still a 400. */
static ag_reason target_reason(const char *why)
{
    ag_reason r;
    if (!reason_from_name(why, &r) || (reason_status(r) != 400 && r != AR_LIMIT_URI))
        r = AR_PATH_BAD_ENCODING;
    return r;
}

void gate_decide(const gate *g, const keys_snapshot *keys, struct tc_cache *cache,
                 const gate_request *req, int64_t now, gate_decision *d)
{
    const cfg_config *c = g->cfg;
    canon_opts co = {
        .resolve_dot_segments = c->paths.resolve_dot_segments,
        .merge_slashes = c->paths.merge_slashes,
    };
    const char *why = NULL;
    if (!d->path) {
        gate_refuse(d, AR_OUT_OF_MEMORY);
        return;
    }
    size_t cap = d->path_cap;
    if (GATE_PATH_CAP(c->limits.max_uri_bytes) < cap)
        cap = GATE_PATH_CAP(c->limits.max_uri_bytes);
    if (req->target_len > c->limits.max_uri_bytes) {
        gate_refuse(d, AR_LIMIT_URI);
        return;
    }
    if (canon_target(req->target, req->target_len, &co, d->path, cap, &d->path_len, &d->query,
                     &d->query_len, &why) != 0 ||
        (d->query && canon_query_check(d->query, d->query_len, &why) != 0)) {
        gate_refuse(d, target_reason(why));
        return;
    }

    unsigned mbit = hx_method_bit(req->method);
    if (mbit == HX_M_OPTIONS && cors_preflight_decide(g, req, d))
        return;
    rt_match m;
    rt_match_path(g->routes, d->path, d->path_len, mbit, &m);
    if (!m.data) {
        if (m.allow) {
            d->allow = m.allow;
            gate_refuse(d, AR_METHOD_NOT_ALLOWED);
        } else {
            gate_refuse(d, AR_NO_ROUTE);
        }
        return;
    }
    const cfg_route *r = m.data;
    d->route = r;
    cors_note(r, req, d);

    pol_input in = {.token = POL_TOKEN_NONE};
    if (r->policy.kind != POL_PUBLIC) {
        in.token = check_token(g, keys, cache, req, now, d);
        in.token_reason = d->token_code;
        in.user = d->user;
        /* Without a key an optional route can still serve anonymous requests,
         * but a token it cannot check must not silently lose its identity. */
        if (in.token == POL_KEYS_UNAVAILABLE && r->policy.kind == POL_OPTIONAL_USER) {
            gate_refuse(d, AR_KEYS_UNAVAILABLE);
            return;
        }
        if (!keys && pol_needs_token(r->policy.kind))
            in.token = POL_KEYS_UNAVAILABLE;
    }

    if (pol_needs_org(r->policy.kind) && in.token == POL_TOKEN_VALID) {
        if (extract_org_id(g, r, &m, req, d) != 0)
            return;
        if (d->has_org_id) {
            in.org_id = d->org_id;
            in.org_id_len = d->org_id_len;
        }
    }

    pol_decide(&r->policy, &in, &d->pol);
    if (d->pol.outcome != POL_ALLOW) {
        gate_refuse(d, d->pol.code);
        return;
    }
    if (!r->upstream) {
        /* The loader gives every route an upstream; never forward nowhere. */
        gate_refuse(d, AR_INTERNAL);
        return;
    }
    if (d->pol.inject_user && d->user) {
        d->x_user = id_user_header(d->user, c->identity.user_orgs, d->pol.org, &d->scratch);
        if (!d->x_user) {
            gate_refuse(d, AR_OUT_OF_MEMORY);
            return;
        }
        if (c->limits.max_identity_bytes && strlen(d->x_user) > c->limits.max_identity_bytes) {
            d->x_user = NULL;
            gate_refuse(d, AR_IDENTITY_TOO_LARGE);
            return;
        }
    }
    if (d->pol.org)
        d->x_org = id_org_header(d->pol.org);
    forward(d, r->policy.kind == POL_OPTIONAL_USER && in.token == POL_TOKEN_INVALID
                   ? AR_TOKEN_INVALID_IGNORED
                   : AR_OK);
}

int gate_error_body(const gate_decision *d, ag_buf *out)
{
    /* Only constants from our own tables: error bodies never echo request bytes. */
    return ag_buf_printf(out, "{\"error\":\"%s\",\"reason\":\"%s\"}\n",
                         d->error ? d->error : "error", d->reason ? d->reason : "unknown");
}
