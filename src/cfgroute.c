/* cfgroute: routes[]. Path, methods, policy and its arguments, the org id
 * source, upstream, strip_prefix (cors and header rules through cfgint.h),
 * the route table's ambiguity check, and the lint for public routes carved
 * out of a protected subtree. A route with errors gets no lint. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cfgint.h"
#include "cfgload.h"
#include "httpx.h"
#include "routes.h"
#include "util.h"

/* Does the (valid) template have a {name} segment? */
static bool tmpl_has_param(const char *tmpl, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
        if (strncmp(p + 1, name, nl) == 0 && p[1 + nl] == '}')
            return true;
    }
    return false;
}

static bool valid_query_name(const char *s)
{
    if (!*s || strlen(s) > 128)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch >= 0x7f || ch == '&' || ch == '=' || ch == '#' || ch == '%' ||
            ch == '+')
            return false;
    }
    return true;
}

static void parse_methods(lctx *c, const ynode *l, const char *rname, unsigned *out)
{
    char qb[96];
    unsigned mask = 0;
    if (l->bad)
        return;
    if (l->kind != Y_SEQ) {
        cl_err(c, l->line, l->col, "route %s: methods: expected a list like [GET, POST], got %s",
               rname, cl_kind_name(l));
        return;
    }
    if (l->n == 0) {
        cl_err(c, l->line, l->col, "route %s: methods: empty list (omit it for all methods)",
               rname);
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        const ynode *m = l->kids[i];
        if (m->bad)
            continue;
        if (m->kind != Y_SCALAR || cl_is_null(m)) {
            cl_err(c, m->line, m->col, "route %s: methods: expected a method name, got %s", rname,
                   cl_kind_name(m));
            continue;
        }
        unsigned bit = hx_method_bit(m->s);
        if (bit == 0) {
            cl_err(c, m->line, m->col,
                   "route %s: unknown method %s (use GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)",
                   rname, QN(qb, m));
            continue;
        }
        if (mask & bit) {
            cl_err(c, m->line, m->col, "route %s: method %s listed twice", rname, QN(qb, m));
            continue;
        }
        mask |= bit;
    }
    if (mask)
        *out = mask;
}

static void warn_space(lctx *c, const ynode *v, const char *rname, const char *key, const char *s)
{
    size_t l = strlen(s);
    if (l && (s[0] == ' ' || s[0] == '\t' || s[l - 1] == ' ' || s[l - 1] == '\t'))
        cl_warn(c, v->line, v->col,
                "route %s: %s has leading or trailing whitespace (comparisons are exact)", rname,
                key);
}

/* strip_prefix: a literal leading part of the route's path, at a segment
 * boundary, so every path the route matches starts with it. */
static void route_strip_prefix(lctx *c, const kseen *s, const char *where, cl_route_raw *t,
                               cfg_route *r)
{
    char qb[96], qb2[96];
    const char *sp = t->strip_prefix;
    if (!sp)
        return;
    size_t l = strlen(sp);
    if (sp[0] != '/' || l < 2 || sp[l - 1] == '/' || strpbrk(sp, "{}*?#%")) {
        cl_err(c, s->v->line, s->v->col,
               "%s: strip_prefix: expected a literal path prefix like /api (leading '/', no "
               "trailing '/', no template parts), got %s",
               where, QS(qb, sp));
        return;
    }
    if (t->path && !(strncmp(t->path, sp, l) == 0 && (t->path[l] == '\0' || t->path[l] == '/'))) {
        cl_err(c, s->v->line, s->v->col,
               "%s: strip_prefix: the route's path %s does not start with the segments %s", where,
               QS(qb, t->path), QS(qb2, sp));
        return;
    }
    r->strip_prefix = t->strip_prefix;
    t->strip_prefix = NULL;
}

static void do_route(lctx *c, const ynode *n, size_t idx, rt_table *table)
{
    cfg_config *cfg = c->cfg;
    cfg_route *r = &cfg->routes[idx];
    cl_route_raw t = {0};
    cl_walk w;
    char qb[96], rname[96], where[160];
    bool ok = true;

    r->line = n->line;
    r->col = n->col;
    r->index = idx;
    r->methods = HX_M_ALL;
    snprintf(rname, sizeof(rname), "#%zu", idx + 1);
    if (!cl_expect_map(c, n, "routes[]"))
        return;
    cl_walk_map(c, n, "routes[]", "route", &t, &w);
    const kseen *s_path = cl_seen(&w, "path");
    const kseen *s_meth = cl_seen(&w, "methods");
    const kseen *s_pol = cl_seen(&w, "policy");
    const kseen *s_role = cl_seen(&w, "role");
    const kseen *s_perm = cl_seen(&w, "permission");
    const kseen *s_perms = cl_seen(&w, "permissions");
    const kseen *s_org = cl_seen(&w, "org_id_from");
    const kseen *s_up = cl_seen(&w, "upstream");
    const kseen *s_strip = cl_seen(&w, "strip_prefix");

    if (t.path) {
        QS(rname, t.path);
        char why[160];
        if (rt_template_check(t.path, why, sizeof(why)) != 0) {
            cl_err(c, s_path->v->line, s_path->v->col, "route %s: %s", rname, why);
            ok = false;
        }
    } else {
        if (!s_path->v && !cl_misspelt(c, n, "path"))
            cl_err(c, n->line, n->col, "route %s: path is required", rname);
        ok = false;
    }
    snprintf(where, sizeof(where), "route %s", rname);
    if (s_meth->v)
        parse_methods(c, s_meth->v, rname, &r->methods);

    /* policy and its arguments */
    bool have_kind = false;
    if (t.policy) {
        if (pol_kind_from_name(t.policy, &r->policy.kind) == 0) {
            have_kind = true;
        } else {
            const char *names[POL__COUNT];
            for (int k = 0; k < POL__COUNT; k++)
                names[k] = pol_kind_name((pol_kind)k);
            const char *near = cl_suggest(t.policy, names, POL__COUNT);
            if (near) {
                cl_err(c, s_pol->v->line, s_pol->v->col,
                       "%s: unknown policy %s (did you mean \"%s\"?)", where, QS(qb, t.policy),
                       near);
            } else {
                ag_buf b;
                ag_buf_init(&b);
                for (int k = 0; k < POL__COUNT; k++)
                    ag_buf_printf(&b, "%s%s", k ? ", " : "", names[k]);
                cl_err(c, s_pol->v->line, s_pol->v->col, "%s: unknown policy %s (one of %s)", where,
                       QS(qb, t.policy), b.p ? b.p : "");
                ag_buf_free(&b);
            }
        }
    } else if (!s_pol->v && !cl_misspelt(c, n, "policy")) {
        cl_err(c, n->line, n->col, "%s: policy is required", where);
    }
    if (have_kind) {
        pol_kind k = r->policy.kind;
        bool takes_role = k == POL_ORG_MIN_ROLE || k == POL_ORG_EXACT_ROLE;
        bool takes_perm = k == POL_ORG_PERMISSION;
        bool takes_perms = k == POL_ORG_ALL_PERMISSIONS;
        const char *pname = pol_kind_name(k);
        if (s_role->v && !takes_role)
            cl_err(c, s_role->k->line, s_role->k->col, "%s: policy %s does not take a role", where,
                   pname);
        if (s_perm->v && !takes_perm)
            cl_err(c, s_perm->k->line, s_perm->k->col, "%s: policy %s does not take a permission%s",
                   where, pname, takes_perms ? " (use permissions: [...])" : "");
        if (s_perms->v && !takes_perms)
            cl_err(c, s_perms->k->line, s_perms->k->col,
                   "%s: policy %s does not take permissions%s", where, pname,
                   takes_perm ? " (use permission: NAME)" : "");
        if (takes_role) {
            if (!s_role->v) {
                if (!cl_misspelt(c, n, "role"))
                    cl_err(c, n->line, n->col, "%s: policy %s needs a role", where, pname);
            } else if (t.role && t.role[0] == '\0')
                cl_err(c, s_role->v->line, s_role->v->col, "%s: role must not be empty", where);
            else if (t.role) {
                warn_space(c, s_role->v, rname, "role", t.role);
                r->policy.role = t.role;
                t.role = NULL;
            }
        }
        if (takes_perm) {
            if (!s_perm->v) {
                if (!cl_misspelt(c, n, "permission"))
                    cl_err(c, n->line, n->col, "%s: policy %s needs a permission", where, pname);
            } else if (t.permission && t.permission[0] == '\0')
                cl_err(c, s_perm->v->line, s_perm->v->col, "%s: permission must not be empty",
                       where);
            else if (t.permission) {
                warn_space(c, s_perm->v, rname, "permission", t.permission);
                r->policy.permission = t.permission;
                t.permission = NULL;
            }
        }
        if (takes_perms) {
            const ynode *l = s_perms->v;
            if (!l) {
                if (!cl_misspelt(c, n, "permissions"))
                    cl_err(c, n->line, n->col, "%s: policy %s needs permissions: [...]", where,
                           pname);
            } else if (!l->bad && l->kind != Y_SEQ) {
                cl_err(c, l->line, l->col, "%s: permissions: expected a list, got %s", where,
                       cl_kind_name(l));
            } else if (!l->bad) {
                /* The libraries define has_all([]) as true (their own tests
                 * check it), so an empty list is legal; it is the same as
                 * require_org_member, which is likely not what was meant. */
                if (l->n == 0)
                    cl_warn(c, l->line, l->col,
                            "%s: permissions: [] requires no permission at all (same as "
                            "require_org_member)",
                            where);
                for (size_t i = 0; i < l->n; i++) {
                    char *p = NULL;
                    char pw[200];
                    snprintf(pw, sizeof(pw), "%s: permissions[]", where);
                    if (cl_get_str(c, l->kids[i], pw, &p) != 0)
                        continue;
                    if (p[0] == '\0') {
                        cl_err(c, l->kids[i]->line, l->kids[i]->col,
                               "%s: permissions: entries must not be empty", where);
                        free(p);
                        continue;
                    }
                    warn_space(c, l->kids[i], rname, "a permission", p);
                    if (cl_push_str(&r->policy.permissions, &r->policy.npermissions, p) != 0) {
                        free(p);
                        c->oom = true;
                    }
                }
            }
        }

        /* org source */
        if (pol_needs_org(k)) {
            const char *src = t.org_id_from;
            if (!s_org->v) {
                if (t.path && tmpl_has_param(t.path, "org_id")) {
                    r->org_kind = CFG_ORG_PATH;
                    r->org_name = ag_strdup("org_id");
                    if (!r->org_name)
                        c->oom = true;
                } else if (!cl_misspelt(c, n, "org_id_from")) {
                    cl_err(c, n->line, n->col,
                           "%s: policy %s needs an org id: put {org_id} in the path or set "
                           "org_id_from",
                           where, pname);
                }
            } else if (src) {
                const char *colon = strchr(src, ':');
                size_t kl = colon ? (size_t)(colon - src) : strlen(src);
                const char *name = colon ? colon + 1 : NULL;
                const ynode *at = s_org->v;
                if (kl == 4 && strncmp(src, "path", 4) == 0) {
                    r->org_kind = CFG_ORG_PATH;
                    name = name ? name : "org_id";
                    if (t.path && ok && !tmpl_has_param(t.path, name))
                        cl_err(c, at->line, at->col,
                               "%s: org_id_from %s but the path has no {%s} parameter", where,
                               QS(qb, src), name);
                } else if (kl == 5 && strncmp(src, "query", 5) == 0) {
                    r->org_kind = CFG_ORG_QUERY;
                    name = name ? name : "org_id";
                    if (!valid_query_name(name))
                        cl_err(c, at->line, at->col, "%s: org_id_from: bad query parameter name %s",
                               where, QS(qb, name));
                } else if (kl == 6 && strncmp(src, "header", 6) == 0 && name) {
                    r->org_kind = CFG_ORG_HEADER;
                    if (!hx_valid_header_name(name, strlen(name)))
                        cl_err(c, at->line, at->col, "%s: org_id_from: bad header name %s", where,
                               QS(qb, name));
                    else if (ch_uncomparable(name))
                        cl_err(c, at->line, at->col, "%s: org_id_from: header %s %s", where,
                               QS(qb, name), ch_uncomparable(name));
                    else if (ch_is_stripped(&cfg->identity, name))
                        cl_err(c, at->line, at->col,
                               "%s: org_id_from: header %s is stripped or reserved by the gateway",
                               where, QS(qb, name));
                } else {
                    cl_err(c, at->line, at->col,
                           "%s: org_id_from: expected path, path:NAME, query, query:NAME or "
                           "header:NAME, got %s",
                           where, QS(qb, src));
                    name = NULL;
                }
                if (name) {
                    r->org_name = ag_strdup(name);
                    if (!r->org_name)
                        c->oom = true;
                }
            }
        } else if (s_org->v) {
            cl_err(c, s_org->k->line, s_org->k->col,
                   "%s: policy %s does not use an org id; remove org_id_from", where, pname);
        }
    }

    /* upstream: every route forwards somewhere */
    if (t.upstream) {
        for (size_t i = 0; i < cfg->nupstreams; i++)
            if (strcmp(cfg->upstreams[i].name, t.upstream) == 0)
                r->upstream = &cfg->upstreams[i];
        /* With the upstreams section misspelt, no name could be known. */
        if (!r->upstream && !(!cfg->upstreams && cl_misspelt(c, c->root, "upstreams")))
            cl_err(c, s_up->v->line, s_up->v->col, "%s: unknown upstream %s", where,
                   QS(qb, t.upstream));
    } else if (!s_up->v) {
        if (cfg->nupstreams == 1)
            r->upstream = &cfg->upstreams[0];
        else if (cfg->nupstreams > 1 && !cl_misspelt(c, n, "upstream"))
            cl_err(c, n->line, n->col, "%s: upstream is required when %zu upstreams are defined",
                   where, cfg->nupstreams);
    }

    cc_route(c, cl_seen(&w, "cors")->v, where, r);
    r->preserve_host = t.preserve_host;
    route_strip_prefix(c, s_strip, where, &t, r);
    char hw[200];
    snprintf(hw, sizeof(hw), "%s: request_headers", where);
    ch_rules(c, cl_seen(&w, "request_headers")->v, "routes[].request_headers", hw, true, r,
             &r->req_hdrs);
    snprintf(hw, sizeof(hw), "%s: response_headers", where);
    ch_rules(c, cl_seen(&w, "response_headers")->v, "routes[].response_headers", hw, false, r,
             &r->resp_hdrs);
    r->websocket = t.websocket;
    if (r->websocket && r->upstream && strncmp(r->upstream->url, "https://", 8) == 0) {
        const kseen *s_ws = cl_seen(&w, "websocket");
        cl_err(c, s_ws->v ? s_ws->v->line : n->line, s_ws->v ? s_ws->v->col : n->col,
               "%s: websocket: true needs an http:// upstream; upstream %s is https:// "
               "(authgate does not tunnel WebSockets through TLS)",
               where, QS(qb, r->upstream->name));
    }

    if (t.path) {
        r->path = t.path;
        t.path = NULL;
        if (ok && table) {
            void *dup = NULL;
            char why[256];
            int rc = rt_add(table, r->path, r->methods, r, &dup, why, sizeof(why));
            if (rc == -2 && dup) {
                const cfg_route *first = dup;
                cl_err(c, n->line, n->col,
                       "%s: same path shape and overlapping methods as route %s at line %d "
                       "(ambiguous; give them disjoint methods or different paths)",
                       where, QS(qb, first->path), first->line);
            } else if (rc != 0) {
                cl_err(c, n->line, n->col, "%s: %s", where, why);
            }
        }
    }
    free(t.path);
    free(t.policy);
    free(t.role);
    free(t.permission);
    free(t.org_id_from);
    free(t.upstream);
    free(t.strip_prefix);
}

/* A template split into segments, for the lint below. */
static size_t split_segs(const char *p, const char **segs, size_t *lens, size_t max)
{
    size_t n = 0;
    /* Invalid templates (already reported) may be empty or lack the '/'. */
    if (p[0] != '/' || strcmp(p, "/") == 0)
        return 0;
    p++;
    while (n < max) {
        const char *e = strchr(p, '/');
        segs[n] = p;
        lens[n] = e ? (size_t)(e - p) : strlen(p);
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    return n;
}

/* Warn about public routes carved out of a protected subtree: e.g. a public
 * /api/org/{org_id}/x next to a protected /api/org/{org_id}/ ** route. Usually an
 * accident, since everything else under the prefix needs a token. */
static void lint_public_holes(lctx *c, const bool *has_errors)
{
    cfg_config *cfg = c->cfg;
    const char *ps[64], *rs[64];
    size_t pl[64], rl[64];
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const cfg_route *p = &cfg->routes[i];
        if (!p->path || has_errors[i] || !pol_needs_token(p->policy.kind))
            continue;
        size_t np = split_segs(p->path, ps, pl, 64);
        if (np == 0 || pl[np - 1] != 2 || strncmp(ps[np - 1], "**", 2) != 0)
            continue;
        np--; /* the prefix before ** */
        for (size_t j = 0; j < cfg->nroutes; j++) {
            const cfg_route *r = &cfg->routes[j];
            if (!r->path || has_errors[j] || r->policy.kind != POL_PUBLIC ||
                !(r->methods & p->methods))
                continue;
            size_t nr = split_segs(r->path, rs, rl, 64);
            if (nr < np)
                continue;
            /* prefix/ ** again: the same subtree, not a hole carved out of it */
            if (nr == np + 1 && rl[np] == 2 && strncmp(rs[np], "**", 2) == 0)
                continue;
            bool overlap = true;
            for (size_t s = 0; s < np && overlap; s++) {
                bool pp = ps[s][0] == '{', rp = rs[s][0] == '{';
                bool rstar = rl[s] == 2 && strncmp(rs[s], "**", 2) == 0;
                if (rstar)
                    overlap = false; /* a broader public route: the protected one wins */
                else if (!pp && !rp)
                    overlap = pl[s] == rl[s] && memcmp(ps[s], rs[s], pl[s]) == 0;
            }
            if (overlap)
                cl_warn(c, r->line, r->col,
                        "route \"%s\" is public but lies under protected route \"%s\" (line %d); "
                        "it is reachable without a token",
                        r->path, p->path, p->line);
        }
    }
}

void cr_routes(lctx *c, const ynode *n)
{
    cfg_config *cfg = c->cfg;
    rt_table *table = NULL;
    bool *has_errors = NULL;
    if (!n) {
        if (cl_misspelt(c, c->root, "routes"))
            return;
        cl_err(c, 1, 1, "routes: missing; at least one route is required");
        return;
    }
    if (n->bad)
        return;
    if (n->kind != Y_SEQ) {
        cl_err(c, n->line, n->col, "routes: expected a list, got %s", cl_kind_name(n));
        return;
    }
    if (n->n == 0) {
        cl_err(c, n->line, n->col, "routes: at least one route is required");
        return;
    }
    cfg->routes = calloc(n->n, sizeof(*cfg->routes));
    table = rt_new();
    if (!cfg->routes || !table) {
        c->oom = true;
        goto out;
    }
    cfg->nroutes = n->n;
    /* A route that already has an error gets no lint: the warning would be
     * about what the route was mistakenly read as. */
    has_errors = calloc(n->n, sizeof(*has_errors));
    if (!has_errors) {
        c->oom = true;
        goto out;
    }
    for (size_t i = 0; i < n->n && !c->oom; i++) {
        size_t before = c->nerrors;
        do_route(c, n->kids[i], i, table);
        has_errors[i] = c->nerrors != before;
    }
    lint_public_holes(c, has_errors);
out:
    free(has_errors);
    rt_free(table);
}
