/* config: what the configuration means. The generic loading (YAML tree,
 * positions, diagnostics, typed values, unknown keys) is cfgload.c and the
 * keys themselves are rows in cfgtab.c; this file gives auth, identity,
 * upstreams and routes their meaning and checks how they fit together.
 *
 * Errors name the root cause: a misspelt key suppresses the "missing" error
 * for the key it resembles, and a route with errors gets no lint. */
#include "config.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <regex.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgload.h"
#include "hdr.h"
#include "httpx.h"
#include "routes.h"
#include "util.h"

/* ---- sections ------------------------------------------------------------- */

static void check_readable(lctx *c, const kseen *s, const char *where, const char *path,
                           bool secret)
{
    struct stat st;
    if (!s->v || !path)
        return;
    if (stat(path, &st) != 0) {
        cl_err(c, s->v->line, s->v->col, "%s: cannot read %s: %s", where, path, strerror(errno));
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        cl_err(c, s->v->line, s->v->col, "%s: %s is not a regular file", where, path);
        return;
    }
    if (access(path, R_OK) != 0) {
        cl_err(c, s->v->line, s->v->col, "%s: cannot read %s: %s", where, path, strerror(errno));
        return;
    }
    /* An error, not a warning: the daemon refuses to read a secret from such
     * a file, so a file that names one must not pass check or a reload. */
    if (secret && (st.st_mode & (S_IRWXG | S_IRWXO)))
        cl_err(c, s->v->line, s->v->col,
               "%s: %s holds a secret but is accessible by group or others (mode %04o); "
               "chmod 600 it",
               where, path, (unsigned)(st.st_mode & 07777));
}

static void do_auth(lctx *c, const ynode *key, const ynode *n)
{
    cfg_auth *a = &c->cfg->auth;
    cl_walk w;
    int line = key ? key->line : 1, col = key ? key->col : 1;

    if (!n) {
        if (cl_misspelt(c, c->root, "auth"))
            return;
        cl_err(c, 1, 1,
               "auth: missing; give auth_url with an API key, or "
               "verifier_key_file/verifier_key_pem with issuer");
        return;
    }
    if (!cl_expect_map(c, n, "auth"))
        return;
    cl_walk_map(c, n, "auth", NULL, c->cfg, &w);

    const kseen *s_url = cl_seen(&w, "auth_url");
    const kseen *s_env = cl_seen(&w, "api_key_env");
    const kseen *s_kf = cl_seen(&w, "api_key_file");
    const kseen *s_key = cl_seen(&w, "api_key");
    const kseen *s_base = cl_seen(&w, "api_base_url");
    const kseen *s_vf = cl_seen(&w, "verifier_key_file");
    const kseen *s_vp = cl_seen(&w, "verifier_key_pem");
    const kseen *s_iss = cl_seen(&w, "issuer");
    const kseen *s_ca = cl_seen(&w, "ca_file");

    bool fetch = s_url->v != NULL, manual = s_vf->v || s_vp->v;
    const ynode *src = s_vf->v ? s_vf->v : s_vp->v ? s_vp->v : s_url->v;
    a->key_line = src ? src->line : line;
    a->key_col = src ? src->col : col;
    int nkeys = (s_env->v != NULL) + (s_kf->v != NULL) + (s_key->v != NULL);

    if (fetch && manual) {
        const kseen *second = s_vf->v ? s_vf : s_vp;
        cl_err(c, second->k->line, second->k->col,
               "auth: give either auth_url (fetch the verifier key) or %s with issuer, not both",
               second->k->s);
    } else if (!fetch && !manual && !cl_misspelt(c, n, "auth_url") &&
               !cl_misspelt(c, n, "verifier_key_file") && !cl_misspelt(c, n, "verifier_key_pem")) {
        cl_err(c, line, col,
               "auth: need auth_url with an API key, or verifier_key_file/verifier_key_pem with "
               "issuer");
    }
    if (fetch) {
        const char *why = a->auth_url ? cl_url_problem(a->auth_url) : NULL;
        if (why)
            cl_err(c, s_url->v->line, s_url->v->col, "auth.auth_url: %s", why);
        if (nkeys == 0 && !cl_misspelt(c, n, "api_key_env") && !cl_misspelt(c, n, "api_key_file") &&
            !cl_misspelt(c, n, "api_key"))
            cl_err(c, s_url->k->line, s_url->k->col,
                   "auth: auth_url needs exactly one of api_key_env, api_key_file, api_key");
        if (nkeys > 1) {
            const kseen *second = s_key->v ? s_key : s_kf;
            cl_err(c, second->k->line, second->k->col,
                   "auth: give exactly one of api_key_env, api_key_file, api_key");
        }
        if (s_iss->v)
            cl_err(c, s_iss->k->line, s_iss->k->col,
                   "auth.issuer: with auth_url the issuer is derived from it; set issuer only "
                   "with verifier_key_file/verifier_key_pem");
    } else {
        const kseen *apis[] = {s_env, s_kf, s_key, s_base};
        for (size_t i = 0; i < AG_ARRAY_LEN(apis); i++)
            if (apis[i]->v)
                cl_err(c, apis[i]->k->line, apis[i]->k->col,
                       "auth.%s: only used to fetch the verifier key with auth_url", apis[i]->k->s);
    }
    if (manual) {
        if (s_vf->v && s_vp->v)
            cl_err(c, s_vp->k->line, s_vp->k->col,
                   "auth: give either verifier_key_file or verifier_key_pem, not both");
        if (!s_iss->v) {
            if (!cl_misspelt(c, n, "issuer"))
                cl_err(c, line, col, "auth: issuer is required with %s",
                       s_vf->v ? "verifier_key_file" : "verifier_key_pem");
        } else if (a->issuer && a->issuer[0] == '\0')
            cl_err(c, s_iss->v->line, s_iss->v->col, "auth.issuer: must not be empty");
        if (a->verifier_key_pem && !strstr(a->verifier_key_pem, "-----BEGIN "))
            cl_err(c, s_vp->v->line, s_vp->v->col,
                   "auth.verifier_key_pem: not a PEM block (no \"-----BEGIN \" line)");
    }
    if (a->api_key_env && (a->api_key_env[0] == '\0' || strchr(a->api_key_env, '=')))
        cl_err(c, s_env->v->line, s_env->v->col,
               "auth.api_key_env: not an environment variable name");
    if (a->api_key) {
        if (a->api_key[0] == '\0')
            cl_err(c, s_key->v->line, s_key->v->col, "auth.api_key: must not be empty");
        else
            cl_warn(c, s_key->v->line, s_key->v->col,
                    "auth.api_key: secret written inline in the config file; prefer api_key_env "
                    "or api_key_file");
    }
    if (s_base->v && a->api_base_url) {
        const char *why = cl_url_problem(a->api_base_url);
        if (why)
            cl_err(c, s_base->v->line, s_base->v->col, "auth.api_base_url: %s", why);
    }
    cl_resolve_in_place(c, &a->api_key_file);
    cl_resolve_in_place(c, &a->verifier_key_file);
    cl_resolve_in_place(c, &a->ca_file);
    check_readable(c, s_kf, "auth.api_key_file", a->api_key_file, true);
    check_readable(c, s_vf, "auth.verifier_key_file", a->verifier_key_file, false);
    check_readable(c, s_ca, "auth.ca_file", a->ca_file, false);
}

/* Why a configured header name cannot be compared as fwd compares names
 * (NULL when it can): fwd_rules_new refuses the same names at start. */
static const char *uncomparable(const char *name)
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
    if ((why = uncomparable(name)) != NULL) {
        cl_err(c, v->line, v->col, "%s: %s %s", where, QS(qb, name), why);
        return false;
    }
    return true;
}

static void do_identity(lctx *c, const ynode *n)
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

static void do_limits(lctx *c, const ynode *n)
{
    cl_walk w;
    if (!n || !cl_expect_map(c, n, "limits"))
        return;
    cl_walk_map(c, n, "limits", NULL, c->cfg, &w);
}

static void do_websocket(lctx *c, const ynode *n)
{
    cl_walk w;
    if (!n || !cl_expect_map(c, n, "websocket"))
        return;
    cl_walk_map(c, n, "websocket", NULL, c->cfg, &w);
}

static void do_paths(lctx *c, const ynode *n)
{
    cl_walk w;
    if (!n || !cl_expect_map(c, n, "paths"))
        return;
    cl_walk_map(c, n, "paths", NULL, c->cfg, &w);
    const kseen *s = cl_seen(&w, "org_id_pattern");
    if (s->v && !s->v->bad && c->cfg->paths.org_id_pattern) {
        regex_t re;
        ag_buf b;
        ag_buf_init(&b);
        /* Compiled the way the gate uses it: anchored around the whole id. */
        if (ag_buf_printf(&b, "^(%s)$", c->cfg->paths.org_id_pattern) != 0) {
            c->oom = true;
        } else {
            int e = regcomp(&re, b.p, REG_EXTENDED | REG_NOSUB);
            if (e != 0) {
                char why[128];
                regerror(e, &re, why, sizeof(why));
                cl_err(c, s->v->line, s->v->col,
                       "paths.org_id_pattern: not a POSIX extended regular expression: %s", why);
            } else {
                regfree(&re);
            }
            if (c->cfg->paths.org_id_pattern[0] == '\0')
                cl_err(c, s->v->line, s->v->col, "paths.org_id_pattern: must not be empty");
        }
        ag_buf_free(&b);
    }
}

static void do_log(lctx *c, const ynode *n)
{
    cl_walk w;
    cfg_log *l = &c->cfg->log;
    if (!n || !cl_expect_map(c, n, "log"))
        return;
    cl_walk_map(c, n, "log", NULL, c->cfg, &w);
    const kseen *s_al = cl_seen(&w, "access_log");
    if (s_al->v && l->access_log) {
        if (l->access_log[0] == '\0')
            cl_err(c, s_al->v->line, s_al->v->col,
                   "log.access_log: must be stdout, off or a file path");
        else if (strcmp(l->access_log, "stdout") != 0 && strcmp(l->access_log, "off") != 0)
            cl_resolve_in_place(c, &l->access_log);
    }
}

static bool valid_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

static void do_upstreams(lctx *c, const ynode *n)
{
    cfg_config *cfg = c->cfg;
    char qb[96], where[160];

    if (!n) {
        if (cl_misspelt(c, c->root, "upstreams"))
            return;
        cl_err(c, 1, 1, "upstreams: missing; at least one upstream is required");
        return;
    }
    if (!cl_expect_map(c, n, "upstreams"))
        return;
    if (n->n == 0) {
        cl_err(c, n->line, n->col, "upstreams: at least one upstream is required");
        return;
    }
    /* Allocated once so routes can point into it. */
    cfg->upstreams = calloc(n->n / 2, sizeof(*cfg->upstreams));
    if (!cfg->upstreams) {
        c->oom = true;
        return;
    }
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        const ynode *k = n->kids[i], *v = n->kids[i + 1];
        if (k->bad)
            continue;
        if (!valid_name(k->s)) {
            cl_err(c, k->line, k->col,
                   "upstreams: name %s must be 1-64 characters of [A-Za-z0-9_.-]", QN(qb, k));
            continue;
        }
        cfg_upstream *u = &cfg->upstreams[cfg->nupstreams++];
        if (cl_apply_defaults("upstreams.*", u) != 0) {
            c->oom = true;
            return;
        }
        u->line = k->line;
        u->col = k->col;
        u->name = ag_strdup(k->s);
        if (!u->name) {
            c->oom = true;
            return;
        }
        snprintf(where, sizeof(where), "upstreams.%s", k->s);
        const ynode *urlnode = NULL;
        if (v->bad)
            continue;
        if (v->kind == Y_SCALAR && !cl_is_null(v)) {
            urlnode = v;
            cl_get_str(c, v, where, &u->url);
        } else if (v->kind == Y_MAP) {
            cl_walk w;
            cl_walk_map(c, v, "upstreams.*", where, u, &w);
            urlnode = cl_seen(&w, "url")->v;
            if (!urlnode && !cl_misspelt(c, v, "url"))
                cl_err(c, v->line, v->col, "%s: url is required", where);
            const kseen *s_ca = cl_seen(&w, "ca_file");
            if (s_ca->v && u->ca_file) {
                char cw[200];
                snprintf(cw, sizeof(cw), "%s.ca_file", where);
                cl_resolve_in_place(c, &u->ca_file);
                check_readable(c, s_ca, cw, u->ca_file, false);
                if (u->url && strncmp(u->url, "https://", 8) != 0)
                    cl_err(c, s_ca->v->line, s_ca->v->col, "%s: only used with an https:// url",
                           cw);
            }
        } else {
            cl_err(c, v->line, v->col, "%s: expected a url or a mapping, got %s", where,
                   cl_kind_name(v));
            continue;
        }
        if (urlnode && u->url) {
            const char *why = cl_url_problem(u->url);
            if (why) {
                cl_err(c, urlnode->line, urlnode->col, "%s.url: %s", where, why);
            } else {
                size_t l = strlen(u->url);
                while (l > 0 && u->url[l - 1] == '/')
                    u->url[--l] = '\0';
            }
        }
    }
}

/* ---- routes --------------------------------------------------------------- */

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

/* Header names an org source may not use: names the gateway strips in any
 * spelling or configuration (the table's ruled classes, the identity and
 * strip names), compared in hdr's normal form as fwd compares them. */
static bool header_is_stripped(const cfg_identity *id, const char *h)
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

/* ---- cors and rewriting: the global cors section, routes[].cors,
 * preserve_host, strip_prefix, request_headers and response_headers ------- */

static const char *const default_cors_headers[] = {"Authorization", "Content-Type"};

static void free_strs(char **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

static void cors_spec_free(cors_spec *s)
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

static void do_cors(lctx *c, const ynode *n)
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
static void route_cors(lctx *c, const ynode *n, const char *where, cfg_route *r)
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
    cors_spec_free(&own);
}

static void hdr_rules_free(cfg_hdr_rules *h)
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
    if (request ? f != 0 || header_is_stripped(&c->cfg->identity, name) : (f & HDR_RESP_DROP)) {
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
    char qb[96];
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
                       where, QS(qb, name), QS(qb, value));
                free(name);
                free(value);
                continue;
            }
        }
        (*out)[(*nout)++] = (cfg_hdr_edit){name, value};
    }
}

static void do_hdr_rules(lctx *c, const ynode *n, const char *scope, const char *where,
                         bool request, const cfg_route *r, cfg_hdr_rules *out)
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
                    else if (uncomparable(name))
                        cl_err(c, at->line, at->col, "%s: org_id_from: header %s %s", where,
                               QS(qb, name), uncomparable(name));
                    else if (header_is_stripped(&cfg->identity, name))
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

    route_cors(c, cl_seen(&w, "cors")->v, where, r);
    r->preserve_host = t.preserve_host;
    route_strip_prefix(c, s_strip, where, &t, r);
    char hw[200];
    snprintf(hw, sizeof(hw), "%s: request_headers", where);
    do_hdr_rules(c, cl_seen(&w, "request_headers")->v, "routes[].request_headers", hw, true, r,
                 &r->req_hdrs);
    snprintf(hw, sizeof(hw), "%s: response_headers", where);
    do_hdr_rules(c, cl_seen(&w, "response_headers")->v, "routes[].response_headers", hw, false, r,
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

static void do_routes(lctx *c, const ynode *n)
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

/* ---- forward_auth ---------------------------------------------------------- */

/* The forward-auth listener reads forwarded-URI headers it would strip from
 * any other client, so who may call it is never implied: with a listen
 * address the peer list is required (loopback included only when written). */
static void do_forward_auth(lctx *c, const ynode *k, const ynode *n)
{
    cfg_forward_auth *fa = &c->cfg->forward_auth;
    cl_walk w;
    char qb[96];
    fa->dialects = CFG_FA_ORIGINAL | CFG_FA_FORWARDED;
    if (!n || cl_is_null(n) || !cl_expect_map(c, n, "forward_auth"))
        return;
    fa->line = k ? k->line : n->line;
    fa->col = k ? k->col : n->col;
    cl_walk_map(c, n, "forward_auth", NULL, c->cfg, &w);
    const kseen *s_listen = cl_seen(&w, "listen");
    const kseen *s_peers = cl_seen(&w, "trusted_peers");
    const kseen *s_dial = cl_seen(&w, "dialects");
    const kseen *s_env = cl_seen(&w, "envoy_path_prefix");
    if (s_listen->v && fa->listen) {
        if (!cl_valid_listen(fa->listen))
            cl_err(c, s_listen->v->line, s_listen->v->col,
                   "forward_auth.listen: expected HOST:PORT (e.g. 127.0.0.1:9191), got %s",
                   QS(qb, fa->listen));
        else if ((c->cfg->listen && strcmp(c->cfg->listen, fa->listen) == 0) ||
                 (c->cfg->admin_listen && strcmp(c->cfg->admin_listen, fa->listen) == 0))
            cl_err(c, s_listen->v->line, s_listen->v->col,
                   "forward_auth.listen: must differ from listen and admin_listen");
    }
    if (s_peers->v && !s_peers->v->bad) {
        const ynode *l = s_peers->v;
        if (l->kind != Y_SEQ || l->n == 0) {
            cl_err(c, l->line, l->col,
                   "forward_auth.trusted_peers: expected a non-empty list of CIDR blocks");
        } else if (l->n > 256) {
            cl_err(c, l->line, l->col, "forward_auth.trusted_peers: more than 256 entries");
        } else if (!(fa->peers = calloc(l->n, sizeof(*fa->peers)))) {
            c->oom = true;
        } else {
            for (size_t i = 0; i < l->n; i++) {
                char *v = NULL;
                if (cl_get_str(c, l->kids[i], "forward_auth.trusted_peers[]", &v) != 0)
                    continue;
                if (na_cidr_parse(v, &fa->peers[fa->npeers]) == 0)
                    fa->npeers++;
                else
                    cl_err(c, l->kids[i]->line, l->kids[i]->col,
                           "forward_auth.trusted_peers[]: %s is not an address or CIDR block "
                           "(e.g. 127.0.0.1/32, 10.0.0.0/8, ::1/128; host bits must be zero)",
                           QS(qb, v));
                free(v);
            }
        }
    } else if (fa->listen && !s_peers->v) {
        cl_err(c, fa->line, fa->col,
               "forward_auth: trusted_peers is required with listen (who may ask for decisions; "
               "e.g. [127.0.0.1/32])");
    }
    if (s_dial->v && !s_dial->v->bad) {
        const ynode *l = s_dial->v;
        fa->dialects = 0;
        if (l->kind != Y_SEQ || l->n == 0) {
            cl_err(c, l->line, l->col,
                   "forward_auth.dialects: expected a non-empty list of original, forwarded, "
                   "envoy");
        } else {
            for (size_t i = 0; i < l->n; i++) {
                char *v = NULL;
                if (cl_get_str(c, l->kids[i], "forward_auth.dialects[]", &v) != 0)
                    continue;
                if (strcmp(v, "original") == 0)
                    fa->dialects |= CFG_FA_ORIGINAL;
                else if (strcmp(v, "forwarded") == 0)
                    fa->dialects |= CFG_FA_FORWARDED;
                else if (strcmp(v, "envoy") == 0)
                    fa->dialects |= CFG_FA_ENVOY;
                else
                    cl_err(c, l->kids[i]->line, l->kids[i]->col,
                           "forward_auth.dialects[]: %s is not one of original, forwarded, envoy",
                           QS(qb, v));
                free(v);
            }
        }
    }
    if (s_env->v && fa->envoy_path_prefix) {
        const char *p = fa->envoy_path_prefix;
        size_t len = strlen(p);
        if (p[0] != '/' || (len > 1 && p[len - 1] == '/') || strpbrk(p, "?#%") != NULL)
            cl_err(c, s_env->v->line, s_env->v->col,
                   "forward_auth.envoy_path_prefix: expected a path like /ext-authz (leading "
                   "slash, no trailing slash, no ?, # or %%), got %s",
                   QS(qb, p));
    }
    if ((fa->dialects & CFG_FA_ENVOY) && !fa->envoy_path_prefix)
        cl_err(c, fa->line, fa->col,
               "forward_auth: the envoy dialect needs envoy_path_prefix (the path_prefix of "
               "Envoy's http_service; it tells a check request from a mistyped URL)");
}

/* ---- top level ------------------------------------------------------------ */

/* Every default comes from its row in cfgtab.c. */
static int set_defaults(cfg_config *cfg)
{
    static const char *const scopes[] = {"",    "auth", "identity",     "limits",   "paths",
                                         "log", "cors", "forward_auth", "websocket"};
    for (size_t i = 0; i < AG_ARRAY_LEN(scopes); i++)
        if (cl_apply_defaults(scopes[i], cfg) != 0)
            return -1;
    return 0;
}

static void validate_top(lctx *c, const cl_walk *top)
{
    cfg_config *cfg = c->cfg;
    const kseen *s_listen = cl_seen(top, "listen");
    const kseen *s_admin = cl_seen(top, "admin_listen");
    cfg->listen_line = s_listen->v ? s_listen->v->line : 1;
    cfg->listen_col = s_listen->v ? s_listen->v->col : 1;
    cfg->admin_line = s_admin->v ? s_admin->v->line : 1;
    cfg->admin_col = s_admin->v ? s_admin->v->col : 1;
    char qb[96];
    if (s_listen->v && cfg->listen && !cl_valid_listen(cfg->listen))
        cl_err(c, s_listen->v->line, s_listen->v->col,
               "listen: expected HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080), got %s",
               QS(qb, cfg->listen));
    if (s_admin->v && cfg->admin_listen) {
        if (!cl_valid_listen(cfg->admin_listen))
            cl_err(c, s_admin->v->line, s_admin->v->col,
                   "admin_listen: expected HOST:PORT (e.g. 127.0.0.1:9090), got %s",
                   QS(qb, cfg->admin_listen));
        else if (cfg->listen && strcmp(cfg->listen, cfg->admin_listen) == 0)
            cl_err(c, s_admin->v->line, s_admin->v->col, "admin_listen: must differ from listen");
    }
}

static int load(const char *name, const char *basedir, const char *yaml, size_t len,
                cfg_config **out, cfg_diags *diags)
{
    int rc = -1;
    lctx c = {0};
    ynode *root = NULL;
    cfg_config *cfg = NULL;

    *out = NULL;
    c.file = name;
    c.text = yaml;
    c.text_len = len;
    if (basedir) {
        c.basedir = ag_strdup(basedir);
        if (!c.basedir)
            c.oom = true;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg || set_defaults(cfg) != 0) {
        c.oom = true;
        goto out;
    }
    cfg->file = ag_strdup(name);
    if (!cfg->file) {
        c.oom = true;
        goto out;
    }
    c.cfg = cfg;
    cl_hash16(yaml, len, cfg->hash);

    if (len > CFG_MAX_FILE_BYTES) {
        cl_err(&c, 1, 1, "file larger than %u bytes", CFG_MAX_FILE_BYTES);
        goto out;
    }
    if (cl_build_tree(&c, yaml, len, &root) != 0)
        goto out;
    if (!root || cl_is_null(root)) {
        /* Never "no routes": an empty file is an error (security.md case 87). */
        cl_err(&c, 1, 1, "configuration is empty");
        goto out;
    }
    if (root->bad)
        goto out;
    if (root->kind != Y_MAP) {
        cl_err(&c, root->line, root->col, "top level: expected a mapping, got %s",
               cl_kind_name(root));
        goto out;
    }
    c.root = root;
    cl_walk w;
    cl_walk_map(&c, root, "", NULL, cfg, &w);
    validate_top(&c, &w);
    do_identity(&c, cl_seen(&w, "identity")->v);
    do_auth(&c, cl_seen(&w, "auth")->k, cl_seen(&w, "auth")->v);
    do_limits(&c, cl_seen(&w, "limits")->v);
    do_paths(&c, cl_seen(&w, "paths")->v);
    do_websocket(&c, cl_seen(&w, "websocket")->v);
    do_log(&c, cl_seen(&w, "log")->v);
    do_forward_auth(&c, cl_seen(&w, "forward_auth")->k, cl_seen(&w, "forward_auth")->v);
    do_upstreams(&c, cl_seen(&w, "upstreams")->v);
    do_cors(&c, cl_seen(&w, "cors")->v);
    do_routes(&c, cl_seen(&w, "routes")->v);
    if (c.nerrors == 0 && !c.oom) {
        *out = cfg;
        cfg = NULL;
        rc = 0;
    }
out:
    cl_flush(&c, diags);
    if (c.oom || diags->nerrors > 0) {
        rc = -1;
        if (*out) {
            cfg_free(*out);
            *out = NULL;
        }
    }
    cl_ctx_free(&c);
    cl_ynode_free(root);
    cfg_free(cfg);
    return rc;
}

int cfg_load_string(const char *name, const char *yaml, size_t len, cfg_config **out,
                    cfg_diags *diags)
{
    char *dir = cl_base_dir(name);
    int rc = load(name, dir, yaml, len, out, diags);
    free(dir);
    return rc;
}

int cfg_load_file(const char *path, cfg_config **out, cfg_diags *diags)
{
    char *data = NULL, *dir = NULL;
    size_t len = 0, cap = 0;
    unsigned mode = 0;
    *out = NULL;
    if (cl_read_file(path, &data, &len, &cap, &mode, diags) != 0)
        return -1;
    dir = cl_base_dir(path);
    int rc = load(path, dir, data, len, out, diags);
    if (mode & (S_IWGRP | S_IWOTH)) {
        ag_buf b;
        ag_buf_init(&b);
        if (ag_buf_printf(&b,
                          "%s:1:1: warning: file is writable by %s (mode %04o); whoever can "
                          "write it controls who is let through",
                          path, (mode & S_IWOTH) ? "others" : "group", mode & 07777) == 0) {
            char *w = ag_buf_steal(&b);
            if (w && cl_push_str(&diags->warnings, &diags->nwarnings, w) != 0)
                free(w);
        }
        ag_buf_free(&b);
    }
    OPENSSL_cleanse(data, cap);
    free(data);
    free(dir);
    return rc;
}

void cfg_free(cfg_config *c)
{
    if (!c)
        return;
    free(c->file);
    free(c->listen);
    free(c->admin_listen);
    free(c->forward_auth.listen);
    free(c->forward_auth.peers);
    free(c->forward_auth.envoy_path_prefix);
    cfg_auth *a = &c->auth;
    free(a->auth_url);
    free(a->api_key_env);
    free(a->api_key_file);
    if (a->api_key) {
        OPENSSL_cleanse(a->api_key, strlen(a->api_key));
        free(a->api_key);
    }
    free(a->api_base_url);
    free(a->verifier_key_file);
    free(a->verifier_key_pem);
    free(a->issuer);
    free(a->ca_file);
    free(c->identity.user_header);
    free(c->identity.org_header);
    for (size_t i = 0; i < c->identity.nstrip_headers; i++)
        free(c->identity.strip_headers[i]);
    free(c->identity.strip_headers);
    free(c->paths.org_id_pattern);
    free(c->log.access_log);
    free(c->log.level);
    for (size_t i = 0; i < c->nupstreams; i++) {
        free(c->upstreams[i].name);
        free(c->upstreams[i].url);
        free(c->upstreams[i].ca_file);
    }
    free(c->upstreams);
    for (size_t i = 0; i < c->nroutes; i++) {
        free(c->routes[i].path);
        free(c->routes[i].org_name);
        pol_spec_free(&c->routes[i].policy);
        cors_free(c->routes[i].cors);
        free(c->routes[i].strip_prefix);
        hdr_rules_free(&c->routes[i].req_hdrs);
        hdr_rules_free(&c->routes[i].resp_hdrs);
    }
    cors_spec_free(&c->cors);
    free(c->routes);
    free(c);
}
