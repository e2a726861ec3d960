/* authgate explain: run the daemon's request-head admission and then the real
 * matcher and policy engine offline on one request, and show why it would be
 * allowed or denied. --json prints one object;
 * --batch reads JSON lines of requests on stdin (for differential testing). */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmds.h"
#include "admit.h"
#include "config.h"
#include "fwd.h"
#include "gate.h"
#include "httpx.h"
#include "identity.h"
#include "keys.h"
#include "log.h"
#include "routes.h"

typedef struct xreq {
    char *method;
    char *target;
    char **names;
    char **values;
    size_t nh, cap;
    adm_version version;
    bool no_default_host;
} xreq;

static void xreq_free(xreq *r)
{
    free(r->method);
    free(r->target);
    for (size_t i = 0; i < r->nh; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    memset(r, 0, sizeof(*r));
}

static int xreq_add(xreq *r, const char *name, size_t nlen, const char *value)
{
    if (r->nh == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        char **n = realloc(r->names, cap * sizeof(*n));
        if (!n)
            return -1;
        r->names = n;
        char **v = realloc(r->values, cap * sizeof(*v));
        if (!v)
            return -1;
        r->values = v;
        r->cap = cap;
    }
    char *nc = ag_strndup(name, nlen), *vc = ag_strdup(value);
    if (!nc || !vc) {
        free(nc);
        free(vc);
        return -1;
    }
    r->names[r->nh] = nc;
    r->values[r->nh] = vc;
    r->nh++;
    return 0;
}

static int add_header_line(xreq *r, const char *line)
{
    const char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return -1;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    return xreq_add(r, line, (size_t)(colon - line), v);
}

static int parse_version(const char *v, adm_version *out)
{
    if (strcmp(v, "HTTP/1.1") == 0 || strcmp(v, "1.1") == 0)
        *out = ADM_HTTP_11;
    else if (strcmp(v, "HTTP/1.0") == 0 || strcmp(v, "1.0") == 0)
        *out = ADM_HTTP_10;
    else
        return -1;
    return 0;
}

/* A command line rarely carries a Host, and every HTTP/1.1 client sends one:
 * without it each answer would be bad_host. One is supplied unless asked not
 * to; it counts toward the header limits like any other. */
static int default_host(xreq *r)
{
    if (r->no_default_host || r->version != ADM_HTTP_11)
        return 0;
    for (size_t i = 0; i < r->nh; i++)
        if (strcasecmp(r->names[i], "host") == 0)
            return 0;
    return xreq_add(r, "Host", 4, "localhost");
}

/* Runs admission and, when the head is admitted, the decision. A head the
 * daemon would refuse on its own is reported in d as that refusal, with no
 * route, exactly as the daemon answers it. */
static int decide(const gate *g, keys_snapshot *ks, const xreq *r, int64_t now, gate_decision *d,
                  adm_result *adm)
{
    gate_header *hs = calloc(r->nh ? r->nh : 1, sizeof(*hs));
    if (!hs)
        return -1;
    for (size_t i = 0; i < r->nh; i++)
        hs[i] = (gate_header){r->names[i], strlen(r->names[i]), r->values[i], strlen(r->values[i])};
    adm_request ar = {.method = r->method, .version = r->version, .headers = hs, .nheaders = r->nh};
    *adm = adm_check(&ar, &gate_config(g)->limits);
    if (adm->outcome != ADM_ADMITTED) {
        d->status = adm->status;
        d->error = adm->error;
        d->reason = adm->reason;
    } else {
        gate_request req = {
            .method = r->method,
            .target = r->target,
            .target_len = strlen(r->target),
            .headers = hs,
            .nheaders = r->nh,
        };
        gate_decide(g, ks, NULL, &req, now, d);
        /* The daemon refuses a WebSocket handshake on a route that does not
         * tunnel it, after the decision (front.c); so does explain. */
        if (d->outcome == GATE_FORWARD && d->route && !d->route->websocket &&
            fwd_upgrade_kind(r->method, r->version == ADM_HTTP_11,
                             adm->framing == ADM_BODY_CHUNKED || adm->body_length > 0, hs,
                             r->nh) == FWD_UPG_WEBSOCKET) {
            d->outcome = GATE_REFUSE;
            d->code = AR_WEBSOCKET_NOT_ALLOWED;
            d->status = reason_status(d->code);
            d->error = reason_error(d->code);
            d->reason = reason_name(d->code);
        }
    }
    free(hs);
    return 0;
}

/* ---- the values the checks compared ------------------------------------- */

/* The verifier's verdict; "not compared" when a claim had the wrong type. */
static const char *verdict(const jwt_facts *f, bool ok)
{
    return !f->judged ? "not compared (a claim has the wrong type)" : ok ? "pass" : "FAIL";
}

static json_t *json_verdict(const jwt_facts *f, bool ok)
{
    return f->judged ? json_boolean(ok) : json_null();
}

/* The org the policy judged, when a role or permission check ran. */
static const id_org *judged_org(const gate_decision *d)
{
    return d->route && d->pol.judged && d->route->policy.kind >= POL_ORG_MIN_ROLE ? d->pol.judged
                                                                                  : NULL;
}

static void text_time(const char *name, bool has, int64_t v, int64_t bound, const char *rel,
                      const char *verdict_text)
{
    if (!has) {
        printf("  %-4s (absent): %s\n", name, verdict_text);
        return;
    }
    char when[32] = "";
    time_t t = (time_t)v;
    struct tm tm;
    if (v > -62135596800LL && v < 253402300800LL && gmtime_r(&t, &tm))
        strftime(when, sizeof(when), " (%Y-%m-%dT%H:%M:%SZ)", &tm);
    printf("  %-4s %lld%s must be %s %lld: %s\n", name, (long long)v, when, rel, (long long)bound,
           verdict_text);
}

static void text_list(const char *label, const id_org *o, size_t (*count)(const id_org *),
                      const char *(*at)(const id_org *, size_t))
{
    printf("  %s:", label);
    size_t n = count(o);
    for (size_t i = 0; i < n; i++)
        printf("%s %s", i ? "," : "", at(o, i));
    printf("%s\n", n ? "" : " (none)");
}

static void print_compared_text(const gate_decision *d)
{
    const jwt_facts *f = d->facts;
    if (f && f->parsed) {
        printf("claims (now %lld, leeway %lld s):\n", (long long)f->now, (long long)f->leeway);
        text_time("exp", f->has_exp, f->exp, f->now - f->leeway,
                  "after now - leeway =", verdict(f, f->exp_ok));
        text_time("iat", f->has_iat, f->iat, f->now + f->leeway,
                  "at most now + leeway =", verdict(f, f->iat_ok));
        text_time("nbf", f->has_nbf, f->nbf, f->now + f->leeway,
                  "at most now + leeway =", verdict(f, f->nbf_ok));
        printf("  iss  %s%s%s vs configured \"%s\": %s\n", f->iss_is_string ? "\"" : "",
               f->iss_is_string ? f->iss : "(not a string)", f->iss_is_string ? "\"" : "",
               f->want_iss ? f->want_iss : "", verdict(f, f->iss_ok));
    }
    const id_org *o = judged_org(d);
    if (!o)
        return;
    const pol_spec *p = &d->route->policy;
    printf("org %s:\n", id_org_id(o));
    printf("  role: %s%s\n", id_org_role(o), id_org_is_multi_role(o) ? " (multi_role)" : "");
    if (p->kind == POL_ORG_MIN_ROLE || p->kind == POL_ORG_EXACT_ROLE) {
        if (id_org_is_multi_role(o))
            text_list("additional roles", o, id_org_additional_count, id_org_additional_at);
        else if (p->kind == POL_ORG_MIN_ROLE)
            text_list("inherited roles plus current", o, id_org_inherited_count,
                      id_org_inherited_at);
        bool ok = p->kind == POL_ORG_MIN_ROLE ? id_org_is_at_least_role(o, p->role)
                                              : id_org_is_role(o, p->role);
        printf("  required role: %s (%s): %s\n", p->role,
               p->kind == POL_ORG_MIN_ROLE ? "at least" : "exactly", ok ? "pass" : "FAIL");
        return;
    }
    text_list("permissions", o, id_org_permission_count, id_org_permission_at);
    char *const one[1] = {p->permission};
    char *const *req = p->kind == POL_ORG_PERMISSION ? one : p->permissions;
    size_t nreq = p->kind == POL_ORG_PERMISSION ? 1 : p->npermissions;
    printf("  missing:");
    size_t nmiss = 0;
    for (size_t i = 0; i < nreq; i++)
        if (!id_org_has_permission(o, req[i]))
            printf("%s %s", nmiss++ ? "," : "", req[i]);
    printf("%s\n", nmiss ? "" : " (none)");
}

static json_t *json_list(const id_org *o, size_t (*count)(const id_org *),
                         const char *(*at)(const id_org *, size_t))
{
    json_t *a = json_array();
    for (size_t i = 0; i < count(o); i++)
        json_array_append_new(a, json_string(at(o, i)));
    return a;
}

static json_t *json_time(bool has, int64_t v)
{
    return has ? json_integer(v) : json_null();
}

/* {"token":{...},"org":{...}}, each null when that check did not run. */
static json_t *compared_json(const gate_decision *d)
{
    json_t *c = json_object();
    const jwt_facts *f = d->facts;
    json_t *t = json_null();
    if (f && f->parsed) {
        t = json_object();
        json_object_set_new(t, "now", json_integer(f->now));
        json_object_set_new(t, "leeway", json_integer(f->leeway));
        json_object_set_new(t, "exp", json_time(f->has_exp, f->exp));
        json_object_set_new(t, "exp_ok", json_verdict(f, f->exp_ok));
        json_object_set_new(t, "iat", json_time(f->has_iat, f->iat));
        json_object_set_new(t, "iat_ok", json_verdict(f, f->iat_ok));
        json_object_set_new(t, "nbf", json_time(f->has_nbf, f->nbf));
        json_object_set_new(t, "nbf_ok", json_verdict(f, f->nbf_ok));
        json_object_set_new(t, "iss", f->iss_is_string ? json_string(f->iss) : json_null());
        json_object_set_new(t, "issuer", f->want_iss ? json_string(f->want_iss) : json_null());
        json_object_set_new(t, "iss_ok", json_verdict(f, f->iss_ok));
    }
    json_object_set_new(c, "token", t);
    const id_org *o = judged_org(d);
    json_t *g = json_null();
    if (o) {
        const pol_spec *p = &d->route->policy;
        g = json_object();
        json_object_set_new(g, "org_id", json_string(id_org_id(o)));
        json_object_set_new(g, "role", json_string(id_org_role(o)));
        json_object_set_new(g, "multi_role", json_boolean(id_org_is_multi_role(o)));
        json_object_set_new(g, "inherited_roles",
                            json_list(o, id_org_inherited_count, id_org_inherited_at));
        json_object_set_new(g, "additional_roles",
                            json_list(o, id_org_additional_count, id_org_additional_at));
        json_object_set_new(g, "permissions",
                            json_list(o, id_org_permission_count, id_org_permission_at));
        json_object_set_new(g, "required_role", p->role ? json_string(p->role) : json_null());
        json_t *req = json_array(), *miss = json_array();
        char *const one[1] = {p->permission};
        char *const *rp = p->permission ? one : p->permissions;
        size_t nrp = p->permission ? 1 : p->npermissions;
        for (size_t i = 0; i < nrp; i++) {
            json_array_append_new(req, json_string(rp[i]));
            if (!id_org_has_permission(o, rp[i]))
                json_array_append_new(miss, json_string(rp[i]));
        }
        json_object_set_new(g, "required_permissions", req);
        json_object_set_new(g, "missing_permissions", miss);
    }
    json_object_set_new(c, "org", g);
    return c;
}

/* X-User as JSON; integers beyond 64 bits read as reals here (x_user_raw
 * keeps their digits). */
static json_t *header_json(const char *h)
{
    json_t *v = json_loads(h, 0, NULL);
    return v ? v : json_loads(h, JSON_DECODE_INT_AS_REAL, NULL);
}

static void print_json(const gate_decision *d, const adm_result *adm)
{
    json_t *o = json_object();
    bool fwd = d->outcome == GATE_FORWARD;
    json_object_set_new(o, "decision", json_string(fwd ? "allow" : "deny"));
    json_object_set_new(o, "status", json_integer(fwd ? 0 : d->status));
    json_object_set_new(o, "reason", json_string(d->reason ? d->reason : ""));
    json_object_set_new(o, "route", d->route ? json_string(d->route->path) : json_null());
    json_object_set_new(o, "policy",
                        d->route ? json_string(pol_kind_name(d->route->policy.kind)) : json_null());
    json_object_set_new(o, "token_reason",
                        d->token_reason ? json_string(d->token_reason) : json_null());
    json_object_set_new(o, "org_id",
                        d->has_org_id ? json_stringn(d->org_id, d->org_id_len) : json_null());
    json_object_set_new(o, "x_user", d->x_user ? header_json(d->x_user) : json_null());
    json_object_set_new(o, "x_org", d->x_org ? header_json(d->x_org) : json_null());
    json_object_set_new(o, "compared", compared_json(d));
    json_object_set_new(o, "x_user_raw", d->x_user ? json_string(d->x_user) : json_null());
    json_object_set_new(o, "stage",
                        json_string(adm->outcome == ADM_ADMITTED ? "policy" : "admission"));
    json_object_set_new(o, "error", d->status && d->error ? json_string(d->error) : json_null());
    char *s = json_dumps(o, JSON_COMPACT);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

static const char *org_source(const cfg_route *r, char *buf, size_t cap)
{
    switch (r->org_kind) {
    case CFG_ORG_PATH:
        snprintf(buf, cap, "path parameter {%s}", r->org_name);
        break;
    case CFG_ORG_QUERY:
        snprintf(buf, cap, "query parameter %s", r->org_name);
        break;
    case CFG_ORG_HEADER:
        snprintf(buf, cap, "header %s", r->org_name);
        break;
    default:
        snprintf(buf, cap, "none");
    }
    return buf;
}

static void print_text(const gate *g, const xreq *r, const gate_decision *d, const adm_result *adm,
                       const char *file)
{
    char buf[256];
    printf("request:   %s %s\n", r->method, r->target);
    if (adm->outcome != ADM_ADMITTED) {
        printf("admission: REFUSED: %d %s (%s): the daemon answers this itself before any "
               "policy, and closes the connection\n",
               adm->status, adm->error, adm->reason);
        printf("decision:  DENY: %d %s (%s)\n", d->status, d->error ? d->error : "",
               d->reason ? d->reason : "");
        return;
    }
    if (d->path_len)
        printf("canonical: %.*s%s%.*s\n", (int)d->path_len, d->path, d->query ? "?" : "",
               (int)d->query_len, d->query ? d->query : "");
    if (d->path_len) {
        void *cands[16];
        size_t n = rt_candidates(gate_routes(g), d->path, d->path_len, cands, 16);
        printf("routes matching the path (most specific first):\n");
        if (n == 0)
            printf("  (none)\n");
        for (size_t i = 0; i < n; i++) {
            const cfg_route *c = cands[i];
            hx_methods_format(c->methods, buf, sizeof(buf));
            printf("  %s %-40s %-10s %s (%s:%d)\n", c == d->route ? "=>" : "  ", c->path, buf,
                   pol_kind_name(c->policy.kind), file, c->line);
        }
    }
    if (d->route) {
        const cfg_route *c = d->route;
        printf("route:     %s (%s:%d:%d)\n", c->path, file, c->line, c->col);
        printf("policy:    %s", pol_kind_name(c->policy.kind));
        if (c->policy.role)
            printf(" role=%s", c->policy.role);
        if (c->policy.permission)
            printf(" permission=%s", c->policy.permission);
        for (size_t i = 0; i < c->policy.npermissions; i++)
            printf("%s%s", i ? "," : " permissions=", c->policy.permissions[i]);
        printf("\n");
        if (pol_needs_org(c->policy.kind))
            printf("org id:    %s from %s\n", d->has_org_id ? d->org_id : "(absent)",
                   org_source(c, buf, sizeof(buf)));
        if (d->user)
            printf("token:     valid, user %s\n", id_user_id(d->user));
        else if (d->token_reason)
            printf("token:     rejected (%s)\n", d->token_reason);
        else if (c->policy.kind != POL_PUBLIC)
            printf("token:     none\n");
        if (d->pol.nchecks)
            printf("checks:\n");
        for (size_t i = 0; i < d->pol.nchecks; i++)
            printf("  [%s] %s\n", d->pol.check_ok[i] ? "pass" : "FAIL", d->pol.checks[i]);
        print_compared_text(d);
    }
    if (d->outcome == GATE_FORWARD) {
        printf("decision:  ALLOW: forwarded to upstream %s\n",
               d->route && d->route->upstream ? d->route->upstream->name : "?");
        printf("%s: %s\n", gate_config(g)->identity.user_header,
               d->x_user ? d->x_user : "(not sent)");
        printf("%s: %s\n", gate_config(g)->identity.org_header, d->x_org ? d->x_org : "(not sent)");
    } else if (d->code == AR_CORS_PREFLIGHT) {
        printf("decision:  ANSWERED: %d CORS preflight (%s): authgate answers it without a "
               "token, nothing is forwarded\n",
               d->status, d->reason);
    } else {
        printf("decision:  DENY: %d %s (%s)\n", d->status, d->error ? d->error : "",
               d->reason ? d->reason : "");
        if (d->allow) {
            hx_methods_format(d->allow, buf, sizeof(buf));
            printf("allow:     %s\n", buf);
        }
    }
}

static int batch(const gate *g, keys_snapshot *ks, int64_t now)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, 0, &je);
        xreq r = {0};
        const char *m = o ? json_string_value(json_object_get(o, "method")) : NULL;
        const char *t = o ? json_string_value(json_object_get(o, "target")) : NULL;
        if (!m || !t) {
            printf("{\"error\":\"bad input line\"}\n");
            json_decref(o);
            rc = 2;
            continue;
        }
        r.method = ag_strdup(m);
        r.target = ag_strdup(t);
        bool ok = r.method && r.target;
        json_t *hs = json_object_get(o, "headers");
        size_t i;
        json_t *pair;
        json_array_foreach(hs, i, pair)
        {
            const char *hn = json_string_value(json_array_get(pair, 0));
            const char *hv = json_string_value(json_array_get(pair, 1));
            if (hn && hv && xreq_add(&r, hn, strlen(hn), hv) != 0)
                ok = false;
        }
        const char *ver = json_string_value(json_object_get(o, "version"));
        if (ver && parse_version(ver, &r.version) != 0)
            ok = false;
        r.no_default_host = json_is_false(json_object_get(o, "default_host"));
        json_t *jn = json_object_get(o, "now");
        int64_t at = json_is_integer(jn) ? (int64_t)json_integer_value(jn) : now;
        gate_decision d;
        gate_decision_init(&d);
        adm_result adm;
        jwt_facts facts = {0};
        d.facts = &facts;
        if (ok && default_host(&r) == 0 && decide(g, ks, &r, at, &d, &adm) == 0) {
            print_json(&d, &adm);
        } else {
            printf("{\"error\":\"bad input line\"}\n");
            rc = 2;
        }
        fflush(stdout);
        gate_decision_clear(&d);
        xreq_free(&r);
        json_decref(o);
    }
    free(line);
    return rc;
}

int cmd_explain(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"token", required_argument, NULL, 't'},
                                         {"token-file", required_argument, NULL, 'T'},
                                         {"header", required_argument, NULL, 'H'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"batch", no_argument, NULL, 'b'},
                                         {"now", required_argument, NULL, 'n'},
                                         {"http-version", required_argument, NULL, 'V'},
                                         {"no-default-host", no_argument, NULL, 'N'},
                                         {NULL, 0, NULL, 0}};
    const char *file = NULL;
    char *token = NULL;
    bool json = false, is_batch = false;
    int64_t now = ag_now_wall();
    xreq r = {0};
    int rc = 2, ch;
    cfg_config *cfg = NULL;
    gate *g = NULL;
    keys_store *ks = NULL;
    keys_snapshot *snap = NULL;
    cfg_diags diags = {0};
    char err[512];
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:t:T:H:jbn:V:N", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            file = optarg;
            break;
        case 't':
            free(token);
            token = ag_strdup(optarg);
            break;
        case 'T': {
            FILE *f = fopen(optarg, "r");
            char buf[65536];
            size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
            if (f)
                fclose(f);
            if (!f) {
                fprintf(stderr, "explain: cannot read %s\n", optarg);
                goto out;
            }
            buf[n] = '\0';
            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                buf[--n] = '\0';
            free(token);
            token = ag_strdup(buf);
            break;
        }
        case 'H':
            if (add_header_line(&r, optarg) != 0) {
                fprintf(stderr, "explain: bad --header '%s' (want 'Name: value')\n", optarg);
                goto out;
            }
            break;
        case 'j':
            json = true;
            break;
        case 'b':
            is_batch = true;
            break;
        case 'n':
            now = strtoll(optarg, NULL, 10);
            break;
        case 'V':
            if (parse_version(optarg, &r.version) != 0) {
                fprintf(stderr, "explain: bad --http-version '%s' (want 1.0 or 1.1)\n", optarg);
                goto out;
            }
            break;
        case 'N':
            r.no_default_host = true;
            break;
        default:
            goto usage;
        }
    }
    if (!file || (!is_batch && argc - optind != 2) || (is_batch && argc != optind))
        goto usage;
    log_set_level(LOG_WARN);
    if (cfg_load_file(file, &cfg, &diags) != 0) {
        cfg_diags_print(&diags, stderr);
        goto out;
    }
    char *tmp = ag_strdup(file);
    char *dir = tmp ? dirname(tmp) : ".";
    int krc = keys_start(&cfg->auth, dir, &ks, err, sizeof(err));
    free(tmp);
    if (krc != 0) {
        fprintf(stderr, "explain: %s\n", err);
        goto out;
    }
    snap = keys_acquire(ks);
    if (gate_new(cfg, &g, err, sizeof(err)) != 0) {
        fprintf(stderr, "explain: %s\n", err);
        goto out;
    }
    cfg = NULL;
    if (is_batch) {
        rc = batch(g, snap, now);
        goto out;
    }
    r.method = ag_strdup(argv[optind]);
    r.target = ag_strdup(argv[optind + 1]);
    if (token) {
        ag_buf v;
        ag_buf_init(&v);
        ag_buf_printf(&v, "Bearer %s", token);
        xreq_add(&r, "Authorization", 13, v.p ? v.p : "");
        ag_buf_free(&v);
    }
    gate_decision d;
    gate_decision_init(&d);
    adm_result adm;
    jwt_facts facts = {0};
    d.facts = &facts;
    if (default_host(&r) != 0 || decide(g, snap, &r, now, &d, &adm) != 0) {
        fprintf(stderr, "explain: out of memory\n");
        gate_decision_clear(&d);
        goto out;
    }
    if (json)
        print_json(&d, &adm);
    else
        print_text(g, &r, &d, &adm, file);
    rc = d.outcome == GATE_FORWARD ? 0 : 1;
    gate_decision_clear(&d);
    goto out;
usage:
    fprintf(stderr, "usage: authgate explain -c FILE [--token T | --token-file F] "
                    "[--header 'Name: value']... [--json] [--now EPOCH]\n"
                    "       [--http-version 1.0|1.1] [--no-default-host] METHOD TARGET\n"
                    "       authgate explain -c FILE --batch < requests.jsonl\n");
out:
    free(token);
    xreq_free(&r);
    keys_snapshot_unref(snap);
    if (g)
        gate_unref(g);
    if (cfg)
        cfg_free(cfg);
    if (ks)
        keys_stop(ks);
    cfg_diags_free(&diags);
    return rc;
}
