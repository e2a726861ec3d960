/* cfghdr: header names in the configuration. The identity section, the
 * checks every configured name passes (a valid name, comparable in hdr's
 * normal form as fwd compares it, not one the gateway owns) and the rewrite
 * rules routes[].request_headers and response_headers. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cfgint.h"
#include "cfgload.h"
#include "hdr.h"
#include "httpx.h"

/* Why a configured header name cannot be compared as fwd compares names
 * (NULL when it can): fwd_rules_new refuses the same names at start. */
const char *ch_uncomparable(const char *name)
{
    size_t n = hdr_norm(name, strlen(name), NULL, 0);
    if (n == 0)
        return "has no letter or digit";
    if (n >= HDR_NORM_MAX)
        return "is too long";
    return NULL;
}

static bool check_header_name(lctx *c, const ynode *v, const char *where, const char *name)
{
    char qb[96];
    const char *why;
    if (!hx_valid_header_name(name, strlen(name))) {
        cl_err(c, v->line, v->col, "%s: %s is not a valid header name", where, QS(qb, name));
        return false;
    }
    if ((why = ch_uncomparable(name)) != NULL) {
        cl_err(c, v->line, v->col, "%s: %s %s", where, QS(qb, name), why);
        return false;
    }
    return true;
}

void ch_identity(lctx *c, const ynode *n)
{
    cfg_identity *id = &c->cfg->identity;
    cl_walk w;
    char qb[96];

    if (!n || !cl_expect_map(c, n, "identity"))
        return;
    cl_walk_map(c, n, "identity", NULL, c->cfg, &w);
    const kseen *s_user = cl_seen(&w, "user_header");
    const kseen *s_org = cl_seen(&w, "org_header");
    const kseen *s_strip = cl_seen(&w, "strip_headers");

    if (s_user->v && id->user_header)
        check_header_name(c, s_user->v, "identity.user_header", id->user_header);
    if (s_org->v && id->org_header)
        check_header_name(c, s_org->v, "identity.org_header", id->org_header);
    /* In normal form: a backend may read "X-Who" and "X_Who" as one name. */
    if (id->user_header && id->org_header &&
        hdr_name_eq(id->user_header, strlen(id->user_header), id->org_header,
                    strlen(id->org_header))) {
        const ynode *at = s_org->v ? s_org->v : s_user->v ? s_user->v : n;
        cl_err(c, at->line, at->col, "identity: user_header and org_header must differ");
    }
    const kseen *hdrs[] = {s_user, s_org};
    for (size_t i = 0; i < 2; i++) {
        const char *h = i == 0 ? id->user_header : id->org_header;
        /* Any class of the table but identity: the gateway strips, sets or
         * frames that name itself (or libcurl treats it specially), so an
         * identity value sent under it would be dropped or doubled. */
        if (hdrs[i]->v && h && (hdr_flags(h, strlen(h)) & ~(HDR_F_IDENTITY | HDR_F_EXACT)))
            cl_err(c, hdrs[i]->v->line, hdrs[i]->v->col, "identity.%s: %s is reserved",
                   hdrs[i]->k->s, QS(qb, h));
    }
    if (s_strip->v && !s_strip->v->bad) {
        const ynode *l = s_strip->v;
        if (l->kind != Y_SEQ) {
            cl_err(c, l->line, l->col, "identity.strip_headers: expected a list, got %s",
                   cl_kind_name(l));
            return;
        }
        if (l->n > CFG_MAX_STRIP_HEADERS) {
            cl_err(c, l->line, l->col, "identity.strip_headers: more than %d entries",
                   CFG_MAX_STRIP_HEADERS);
            return;
        }
        for (size_t i = 0; i < l->n; i++) {
            char *h = NULL;
            if (cl_get_str(c, l->kids[i], "identity.strip_headers[]", &h) != 0)
                continue;
            if (!check_header_name(c, l->kids[i], "identity.strip_headers[]", h) ||
                cl_push_str(&id->strip_headers, &id->nstrip_headers, h) != 0) {
                free(h);
                continue;
            }
        }
    }
}

/* Header names an org source may not use: names the gateway strips in any
 * spelling or configuration (the table's ruled classes, the identity and
 * strip names), compared in hdr's normal form as fwd compares them. */
bool ch_is_stripped(const cfg_identity *id, const char *h)
{
    size_t l = strlen(h);
    if (hdr_flags(h, l) & HDR_REQ_RULED)
        return true;
    if ((id->user_header && hdr_name_eq(h, l, id->user_header, strlen(id->user_header))) ||
        (id->org_header && hdr_name_eq(h, l, id->org_header, strlen(id->org_header))))
        return true;
    for (size_t i = 0; i < id->nstrip_headers; i++)
        if (hdr_name_eq(h, l, id->strip_headers[i], strlen(id->strip_headers[i])))
            return true;
    return false;
}

void ch_rules_free(cfg_hdr_rules *h)
{
    cfg_hdr_edit *lists[] = {h->set, h->add, h->remove};
    size_t ns[] = {h->nset, h->nadd, h->nremove};
    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; i < ns[l]; i++) {
            free(lists[l][i].name);
            free(lists[l][i].value);
        }
        free(lists[l]);
    }
    memset(h, 0, sizeof(*h));
}

/* Identity and forwarding headers stay the gateway's: judged by the header
 * table (and the configured identity and strip names on the request side). */
static bool rewrite_name_ok(lctx *c, const ynode *at, const char *where, bool request,
                            const cfg_route *r, const char *name)
{
    char qb[96];
    if (!check_header_name(c, at, where, name))
        return false;
    size_t l = strlen(name);
    unsigned f = hdr_flags(name, l) & ~(HDR_F_EXACT | HDR_F_CTYPE | HDR_F_ACCEPT);
    if (request ? f != 0 || ch_is_stripped(&c->cfg->identity, name) : (f & HDR_RESP_DROP)) {
        cl_err(c, at->line, at->col,
               "%s: %s is the gateway's own (identity, forwarding or transport header); a "
               "rewrite rule cannot set or remove it",
               where, QS(qb, name));
        return false;
    }
    /* The org id was read from this header: the upstream must see it as
     * the gate judged it, not a rewritten or second copy. */
    if (request && r->org_kind == CFG_ORG_HEADER && r->org_name &&
        hdr_name_eq(name, l, r->org_name, strlen(r->org_name))) {
        cl_err(c, at->line, at->col,
               "%s: %s is the route's org id source (org_id_from); a rewrite rule cannot set or "
               "remove it",
               where, QS(qb, name));
        return false;
    }
    if (!request && r->cors && cors_header_is_ours(name, l)) {
        cl_err(c, at->line, at->col, "%s: %s is set by the route's cors", where, QS(qb, name));
        return false;
    }
    return true;
}

static void hdr_edits(lctx *c, const ynode *n, const char *where, bool request, const cfg_route *r,
                      bool with_value, cfg_hdr_edit **out, size_t *nout)
{
    char qb[96], qb2[96];
    if (n->bad)
        return;
    if (n->kind != (with_value ? Y_MAP : Y_SEQ)) {
        cl_err(c, n->line, n->col, "%s: expected %s, got %s", where,
               with_value ? "a mapping of header names to values" : "a list of header names",
               cl_kind_name(n));
        return;
    }
    size_t count = with_value ? n->n / 2 : n->n;
    if (count > CFG_MAX_STRIP_HEADERS) {
        cl_err(c, n->line, n->col, "%s: more than %d entries", where, CFG_MAX_STRIP_HEADERS);
        return;
    }
    if (count == 0)
        return;
    *out = calloc(count, sizeof(**out));
    if (!*out) {
        c->oom = true;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const ynode *kn = with_value ? n->kids[2 * i] : n->kids[i];
        char *name = NULL, *value = NULL;
        if (cl_get_str(c, kn, where, &name) != 0)
            continue;
        if (!rewrite_name_ok(c, kn, where, request, r, name)) {
            free(name);
            continue;
        }
        if (with_value) {
            const ynode *vn = n->kids[2 * i + 1];
            if (cl_get_str(c, vn, where, &value) != 0) {
                free(name);
                continue;
            }
            if (!value[0] || !hx_valid_header_value(value, strlen(value))) {
                cl_err(c, vn->line, vn->col, "%s: %s: value %s is empty or not a header value",
                       where, QS(qb, name), QS(qb2, value));
                free(name);
                free(value);
                continue;
            }
        }
        (*out)[(*nout)++] = (cfg_hdr_edit){name, value};
    }
}

void ch_rules(lctx *c, const ynode *n, const char *scope, const char *where, bool request,
              const cfg_route *r, cfg_hdr_rules *out)
{
    if (!n || !cl_expect_map(c, n, where))
        return;
    cl_walk w;
    char wh[200];
    int unused = 0; /* the rows are lists and mappings: nothing is converted */
    cl_walk_map(c, n, scope, where, &unused, &w);
    const kseen *k;
    if ((k = cl_seen(&w, "set"))->v) {
        snprintf(wh, sizeof(wh), "%s.set", where);
        hdr_edits(c, k->v, wh, request, r, true, &out->set, &out->nset);
    }
    if ((k = cl_seen(&w, "add"))->v) {
        snprintf(wh, sizeof(wh), "%s.add", where);
        hdr_edits(c, k->v, wh, request, r, true, &out->add, &out->nadd);
    }
    if ((k = cl_seen(&w, "remove"))->v) {
        snprintf(wh, sizeof(wh), "%s.remove", where);
        hdr_edits(c, k->v, wh, request, r, false, &out->remove, &out->nremove);
    }
}
