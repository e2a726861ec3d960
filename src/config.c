/* config: what the configuration means. The generic loading (YAML tree,
 * positions, diagnostics, typed values, unknown keys) is cfgload.c and the
 * keys themselves are rows in cfgtab.c; this file gives auth, limits, paths,
 * log, upstreams and forward_auth their meaning, and loads and frees. The
 * identity section and header rules are cfghdr.c, cors cfgcors.c and routes
 * cfgroute.c (cfgint.h between them).
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

#include "cfgint.h"
#include "cfgload.h"
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
    ch_identity(&c, cl_seen(&w, "identity")->v);
    do_auth(&c, cl_seen(&w, "auth")->k, cl_seen(&w, "auth")->v);
    do_limits(&c, cl_seen(&w, "limits")->v);
    do_paths(&c, cl_seen(&w, "paths")->v);
    do_websocket(&c, cl_seen(&w, "websocket")->v);
    do_log(&c, cl_seen(&w, "log")->v);
    do_forward_auth(&c, cl_seen(&w, "forward_auth")->k, cl_seen(&w, "forward_auth")->v);
    do_upstreams(&c, cl_seen(&w, "upstreams")->v);
    cc_section(&c, cl_seen(&w, "cors")->v);
    cr_routes(&c, cl_seen(&w, "routes")->v);
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
        ch_rules_free(&c->routes[i].req_hdrs);
        ch_rules_free(&c->routes[i].resp_hdrs);
    }
    cc_spec_free(&c->cors);
    free(c->routes);
    free(c);
}
