/* fwd: see fwd.h. Every judgement of a name goes through hdr; this file only
 * decides order, configuration-dependent classes and framing. */
#include "fwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cors.h"
#include "hdr.h"
#include "httpx.h"

/* ---- target ------------------------------------------------------------ */

static bool host_byte(char c, bool v6)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.')
        return true;
    if (v6)
        return c == ':';
    return (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '-' || c == '_';
}

static int target_fail(fwd_target *t, char *err, size_t errlen, const char *why)
{
    fwd_target_free(t);
    snprintf(err, errlen, "%s", why);
    return -1;
}

int fwd_target_compile(const char *url, fwd_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    const char *h;
    fwd_scheme scheme;
    if (!url)
        return target_fail(t, err, errlen, "no url");
    if (strncmp(url, "http://", 7) == 0) {
        scheme = FWD_SCHEME_HTTP;
        h = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        scheme = FWD_SCHEME_HTTPS;
        h = url + 8;
    } else {
        return target_fail(t, err, errlen, "must start with http:// or https://");
    }
    const char *end = h + strcspn(h, "/?#");
    const char *hs = h, *he, *ps = NULL;
    bool v6 = *h == '[';
    if (v6) {
        he = memchr(h, ']', (size_t)(end - h));
        if (!he)
            return target_fail(t, err, errlen, "has an unterminated IPv6 literal");
        hs = h + 1;
        if (he + 1 < end && he[1] != ':')
            return target_fail(t, err, errlen, "has junk after the IPv6 literal");
        ps = he + 1 < end ? he + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
        ps = colon ? colon + 1 : NULL;
    }
    size_t hl = (size_t)(he - hs);
    if (memchr(h, '@', (size_t)(end - h)))
        return target_fail(t, err, errlen, "must not contain credentials (user@)");
    if (hl == 0)
        return target_fail(t, err, errlen, "has no host");
    if (hl >= sizeof(t->host))
        return target_fail(t, err, errlen, "has a host name that is too long");
    for (size_t i = 0; i < hl; i++)
        if (!host_byte(hs[i], v6))
            return target_fail(t, err, errlen, "has an invalid host");
    unsigned long port = scheme == FWD_SCHEME_HTTPS ? 443 : 80;
    if (ps) {
        size_t pl = (size_t)(end - ps);
        if (pl == 0 || pl > 5)
            return target_fail(t, err, errlen, "has an invalid port");
        port = 0;
        for (size_t i = 0; i < pl; i++) {
            if (ps[i] < '0' || ps[i] > '9')
                return target_fail(t, err, errlen, "has an invalid port");
            port = port * 10 + (unsigned long)(ps[i] - '0');
        }
        if (port < 1 || port > 65535)
            return target_fail(t, err, errlen, "has an invalid port");
    }
    for (const char *p = end; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '?' || c == '#')
            return target_fail(t, err, errlen, "must not contain a query or fragment");
        if (c <= 0x20 || c >= 0x7f)
            return target_fail(t, err, errlen, "contains a space or control byte");
    }
    memcpy(t->host, hs, hl);
    t->host[hl] = '\0';
    t->port_num = (uint16_t)port;
    snprintf(t->port, sizeof(t->port), "%lu", port);
    bool dflt = port == (scheme == FWD_SCHEME_HTTPS ? 443u : 80u);
    int n = snprintf(t->hostport, sizeof(t->hostport), "%s%s%s%s%s", v6 ? "[" : "", t->host,
                     v6 ? "]" : "", dflt ? "" : ":", dflt ? "" : t->port);
    if (n < 0 || (size_t)n >= sizeof(t->hostport))
        return target_fail(t, err, errlen, "has a host name that is too long");
    t->hostport_len = (size_t)n;
    size_t bl = strlen(end);
    while (bl > 0 && end[bl - 1] == '/')
        bl--;
    t->base = ag_strndup(end, bl);
    ag_buf pre;
    ag_buf_init(&pre);
    if (!t->base || ag_buf_puts(&pre, scheme == FWD_SCHEME_HTTPS ? "https://" : "http://") != 0 ||
        ag_buf_append(&pre, t->hostport, t->hostport_len) != 0 ||
        ag_buf_append(&pre, t->base, bl) != 0) {
        ag_buf_free(&pre);
        return target_fail(t, err, errlen, "out of memory");
    }
    t->base_len = bl;
    t->prefix_len = pre.len;
    t->prefix = ag_buf_steal(&pre);
    t->scheme = scheme;
    return 0;
}

void fwd_target_free(fwd_target *t)
{
    if (!t)
        return;
    free(t->base);
    free(t->prefix);
    memset(t, 0, sizeof(*t));
}

/* ---- rules ------------------------------------------------------------- */

typedef struct norm_name {
    char s[HDR_NORM_MAX];
    size_t len;
} norm_name;

/* One side's per-route rewrite: names dropped (remove and set, in normal
 * form) and lines sent (set values, then add values). */
typedef struct edit_line {
    char *name, *value;
    size_t name_len, value_len;
} edit_line;

typedef struct rw_side {
    norm_name *drop;
    size_t ndrop;
    edit_line *emit;
    size_t nemit;
} rw_side;

typedef struct route_rules {
    const cfg_route *route; /* which route: compared, never read */
    bool preserve_host;
    bool cors; /* the gateway sets access-control-*: an upstream's copy is dropped */
    char *strip;
    size_t strip_len;
    rw_side req, resp;
} route_rules;

struct fwd_rules {
    route_rules *routes; /* one per configured route, same index */
    size_t nroutes;
    bool trust_forwarded;
    bool forward_authorization;
    char *user_header; /* as configured: the spelling we send */
    char *org_header;
    size_t user_len, org_len;
    norm_name *strip; /* user, org, then identity.strip_headers */
    size_t nstrip;
};

static void side_free(rw_side *sd)
{
    for (size_t i = 0; i < sd->nemit; i++) {
        free(sd->emit[i].name);
        free(sd->emit[i].value);
    }
    free(sd->emit);
    free(sd->drop);
}

void fwd_rules_free(fwd_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nroutes; i++) {
        side_free(&r->routes[i].req);
        side_free(&r->routes[i].resp);
        free(r->routes[i].strip);
    }
    free(r->routes);
    free(r->user_header);
    free(r->org_header);
    free(r->strip);
    free(r);
}

static int norm_into(norm_name *nn, const char *h, char *err, size_t errlen)
{
    nn->len = hdr_norm(h, strlen(h), nn->s, sizeof(nn->s));
    if (nn->len >= sizeof(nn->s)) {
        snprintf(err, errlen, "header name %.40s... is too long to compare", h);
        return -1;
    }
    return 0;
}

/* The config loader has judged the names (no gateway-owned ones). */
static int side_new(const cfg_hdr_rules *h, rw_side *sd, char *err, size_t errlen)
{
    sd->drop = calloc(h->nset + h->nremove + 1, sizeof(*sd->drop));
    sd->emit = calloc(h->nset + h->nadd + 1, sizeof(*sd->emit));
    if (!sd->drop || !sd->emit) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < h->nset + h->nremove; i++) {
        const cfg_hdr_edit *e = i < h->nset ? &h->set[i] : &h->remove[i - h->nset];
        if (norm_into(&sd->drop[sd->ndrop], e->name, err, errlen) != 0)
            return -1;
        if (sd->drop[sd->ndrop].len > 0)
            sd->ndrop++;
    }
    for (size_t i = 0; i < h->nset + h->nadd; i++) {
        const cfg_hdr_edit *e = i < h->nset ? &h->set[i] : &h->add[i - h->nset];
        edit_line *l = &sd->emit[sd->nemit++];
        l->name = ag_strdup(e->name);
        l->value = ag_strdup(e->value ? e->value : "");
        if (!l->name || !l->value) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        l->name_len = strlen(l->name);
        l->value_len = strlen(l->value);
    }
    return 0;
}

static int routes_new(fwd_rules *r, const cfg_config *c, char *err, size_t errlen)
{
    if (c->nroutes == 0)
        return 0;
    r->routes = calloc(c->nroutes, sizeof(*r->routes));
    if (!r->routes) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    r->nroutes = c->nroutes;
    for (size_t i = 0; i < c->nroutes; i++) {
        const cfg_route *cr = &c->routes[i];
        route_rules *rr = &r->routes[i];
        rr->route = cr;
        rr->preserve_host = cr->preserve_host;
        rr->cors = cr->cors != NULL;
        if (cr->strip_prefix) {
            rr->strip_len = strlen(cr->strip_prefix);
            if (!(rr->strip = ag_strdup(cr->strip_prefix))) {
                snprintf(err, errlen, "out of memory");
                return -1;
            }
        }
        if (side_new(&cr->req_hdrs, &rr->req, err, errlen) != 0 ||
            side_new(&cr->resp_hdrs, &rr->resp, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static const route_rules no_route_rules;

/* The rules of the request's route; NULL (refuse) for a route that is not
 * this configuration's. */
static const route_rules *route_of(const fwd_rules *r, const cfg_route *route)
{
    if (!route)
        return &no_route_rules;
    if (route->index < r->nroutes && r->routes[route->index].route == route)
        return &r->routes[route->index];
    return NULL;
}

static bool side_drops(const rw_side *sd, const char *norm, size_t nlen)
{
    for (size_t i = 0; i < sd->ndrop; i++)
        if (sd->drop[i].len == nlen && memcmp(sd->drop[i].s, norm, nlen) == 0)
            return true;
    return false;
}

fwd_rules *fwd_rules_new(const cfg_config *c, char *err, size_t errlen)
{
    fwd_rules *r = calloc(1, sizeof(*r));
    const cfg_identity *id = &c->identity;
    const char *user = id->user_header ? id->user_header : "X-User";
    const char *org = id->org_header ? id->org_header : "X-Org";
    if (!r)
        goto oom;
    r->trust_forwarded = c->trust_forwarded_headers;
    r->forward_authorization = id->forward_authorization;
    r->user_header = ag_strdup(user);
    r->org_header = ag_strdup(org);
    r->strip = calloc(2 + id->nstrip_headers, sizeof(*r->strip));
    if (!r->user_header || !r->org_header || !r->strip)
        goto oom;
    r->user_len = strlen(user);
    r->org_len = strlen(org);
    for (size_t i = 0; i < 2 + id->nstrip_headers; i++) {
        const char *h = i == 0 ? user : i == 1 ? org : id->strip_headers[i - 2];
        norm_name *nn = &r->strip[r->nstrip];
        nn->len = hdr_norm(h, strlen(h), nn->s, sizeof(nn->s));
        if (nn->len >= sizeof(nn->s)) {
            snprintf(err, errlen, "header name %.40s... is too long to compare", h);
            fwd_rules_free(r);
            return NULL;
        }
        /* A name without letters or digits would equal every such name. */
        if (nn->len > 0)
            r->nstrip++;
    }
    if (routes_new(r, c, err, errlen) != 0) {
        fwd_rules_free(r);
        return NULL;
    }
    return r;
oom:
    snprintf(err, errlen, "out of memory");
    fwd_rules_free(r);
    return NULL;
}

static bool configured(const fwd_rules *r, const char *norm, size_t nlen)
{
    for (size_t i = 0; i < r->nstrip; i++)
        if (r->strip[i].len == nlen && memcmp(r->strip[i].s, norm, nlen) == 0)
            return true;
    return false;
}

/* The one decision for a client header, apart from Connection listing:
 * true when it is never copied. */
static bool client_drop(const fwd_rules *r, unsigned f, const char *norm, size_t nlen)
{
    if (f & HDR_REQ_DROP)
        return true;
    if ((f & HDR_F_GW_SET) && !(f & HDR_F_FORWARDED))
        return true;
    if ((f & HDR_F_FORWARDED) && !(r->trust_forwarded && (f & HDR_F_EXACT)))
        return true;
    if ((f & HDR_F_AUTHZ) && !(r->forward_authorization && (f & HDR_F_EXACT)))
        return true;
    return configured(r, norm, nlen);
}

bool fwd_client_header_stripped(const fwd_rules *r, const char *name, size_t len)
{
    char norm[HDR_NORM_MAX];
    size_t n = hdr_norm(name, len, norm, sizeof(norm));
    return client_drop(r, hdr_flags_norm(norm, n, name, len), norm, n);
}

/* ---- request headers --------------------------------------------------- */

typedef int (*emit_fn)(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen);

static bool is_connection(const gate_header *h)
{
    return h->name_len == 10 && ag_streq_ci(h->name, h->name_len, "connection");
}

/* Feeds every forwarded header to emit, in order. *seen gets HDR_F_ACCEPT /
 * HDR_F_CTYPE when the client's exactly spelled copy is forwarded. */
static int each_header(const fwd_rules *r, const fwd_request *in, emit_fn emit, void *ctx,
                       unsigned *seen)
{
    const gate_header *hs = in->headers;
    const gate_header *host = NULL;
    size_t first_conn = in->nheaders; /* most requests have no Connection */
    *seen = 0;
    if (!r || !in->client_addr || !in->request_id || (in->nheaders && !hs))
        return -1;
    const route_rules *rr = route_of(r, in->route);
    if (!rr)
        return -1;
    for (size_t i = 0; i < in->nheaders && first_conn == in->nheaders; i++)
        if (is_connection(&hs[i]))
            first_conn = i;
    for (size_t i = 0; i < in->nheaders; i++) {
        const gate_header *h = &hs[i];
        const char *v = h->value ? h->value : "";
        size_t vl = h->value ? h->value_len : 0;
        if (!in->admitted &&
            (!hx_valid_header_name(h->name, h->name_len) || !hx_valid_header_value(v, vl)))
            return -1;
        char norm[HDR_NORM_MAX];
        size_t n = hdr_norm(h->name, h->name_len, norm, sizeof(norm));
        unsigned f = hdr_flags_norm(norm, n, h->name, h->name_len);
        if ((f & (HDR_F_HOST | HDR_F_EXACT)) == (HDR_F_HOST | HDR_F_EXACT))
            host = h;
        if (client_drop(r, f, norm, n) || side_drops(&rr->req, norm, n))
            continue;
        bool listed = false;
        for (size_t j = first_conn; j < in->nheaders && !listed; j++)
            listed = is_connection(&hs[j]) &&
                     hdr_conn_lists(hs[j].value, hs[j].value_len, h->name, h->name_len);
        if (listed)
            continue;
        if (f & HDR_F_EXACT)
            *seen |= f & (HDR_F_ACCEPT | HDR_F_CTYPE);
        if (emit(ctx, h->name, h->name_len, v, vl) != 0)
            return -1;
    }
    for (size_t i = 0; i < rr->req.nemit; i++) {
        const edit_line *l = &rr->req.emit[i];
        if (emit(ctx, l->name, l->name_len, l->value, l->value_len) != 0)
            return -1;
    }
    if ((in->x_user &&
         emit(ctx, r->user_header, r->user_len, in->x_user, strlen(in->x_user)) != 0) ||
        (in->x_org && emit(ctx, r->org_header, r->org_len, in->x_org, strlen(in->x_org)) != 0))
        return -1;
    if (emit(ctx, "X-Forwarded-For", 15, in->client_addr, strlen(in->client_addr)) != 0 ||
        emit(ctx, "X-Forwarded-Proto", 17, "http", 4) != 0 ||
        emit(ctx, "X-Request-Id", 12, in->request_id, strlen(in->request_id)) != 0)
        return -1;
    if (host && host->value && hx_valid_header_value(host->value, host->value_len) &&
        emit(ctx, "X-Forwarded-Host", 16, host->value, host->value_len) != 0)
        return -1;
    return 0;
}

static int emit_head(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
    ag_buf *b = ctx;
    if (ag_buf_reserve(b, nlen + vlen + 4) != 0)
        return -1;
    ag_buf_append(b, name, nlen);
    ag_buf_append(b, ": ", 2);
    ag_buf_append(b, val, vlen);
    return ag_buf_append(b, "\r\n", 2);
}

static bool method_is(const char *m, const char *s)
{
    return strcmp(m, s) == 0;
}

/* The client's Host, spelled exactly (admission allows one). */
static const gate_header *client_host(const fwd_request *in)
{
    for (size_t i = 0; i < in->nheaders; i++) {
        const gate_header *h = &in->headers[i];
        if (h->value && h->value_len && ag_streq_ci(h->name, h->name_len, "host") &&
            hx_valid_header_value(h->value, h->value_len))
            return h;
    }
    return NULL;
}

int fwd_path(const fwd_rules *r, const fwd_request *in, const char **path, size_t *len)
{
    const route_rules *rr = r && in && in->path ? route_of(r, in->route) : NULL;
    if (!rr)
        return -1;
    *path = in->path;
    *len = in->path_len;
    if (!rr->strip)
        return 0;
    /* The loader made the route's path start with the prefix's segments; a
     * path that does not (it cannot match the route) is refused, not sent
     * unchanged. */
    size_t n = rr->strip_len;
    if (in->path_len < n || memcmp(in->path, rr->strip, n) != 0 ||
        (in->path_len > n && in->path[n] != '/'))
        return -1;
    *path = in->path_len > n ? in->path + n : "/";
    *len = in->path_len > n ? in->path_len - n : 1;
    return 0;
}

int fwd_build_head(const fwd_rules *r, const fwd_target *t, const fwd_request *in, ag_buf *out)
{
    const char *path;
    size_t path_len;
    if (!t || t->scheme == FWD_SCHEME_NONE || !in || !in->method || !in->path ||
        in->body == FWD_BODY_UNSET || !hx_valid_header_name(in->method, strlen(in->method)) ||
        fwd_path(r, in, &path, &path_len) != 0)
        return -1;
    const route_rules *rr = route_of(r, in->route);
    const gate_header *host = rr && rr->preserve_host ? client_host(in) : NULL;
    /* Plain appends: this runs for every request. */
    int rc = ag_buf_reserve(out, 1024);
    rc |= ag_buf_puts(out, in->method);
    rc |= ag_buf_append(out, " ", 1);
    rc |= ag_buf_append(out, t->base, t->base_len);
    rc |= ag_buf_append(out, path, path_len);
    if (in->query) {
        rc |= ag_buf_append(out, "?", 1);
        rc |= ag_buf_append(out, in->query, in->query_len);
    }
    rc |= ag_buf_append(out, " HTTP/1.1\r\nHost: ", 17);
    if (host)
        rc |= ag_buf_append(out, host->value, host->value_len);
    else
        rc |= ag_buf_append(out, t->hostport, t->hostport_len);
    rc |= ag_buf_append(out, "\r\n", 2);
    unsigned seen;
    if (rc != 0 || each_header(r, in, emit_head, out, &seen) != 0)
        return -1;
    switch (in->body) {
    case FWD_BODY_CHUNKED:
        rc = ag_buf_puts(out, "Transfer-Encoding: chunked\r\n");
        break;
    case FWD_BODY_LENGTH:
        rc = ag_buf_printf(out, "Content-Length: %llu\r\n", (unsigned long long)in->body_len);
        break;
    case FWD_BODY_NONE:
        /* A bodiless POST/PUT/PATCH still says so: some servers wait for a
         * body or answer 411 otherwise. */
        if (method_is(in->method, "POST") || method_is(in->method, "PUT") ||
            method_is(in->method, "PATCH"))
            rc = ag_buf_puts(out, "Content-Length: 0\r\n");
        break;
    default:
        return -1;
    }
    if (in->websocket)
        rc |= ag_buf_puts(out, "Connection: Upgrade\r\nUpgrade: websocket\r\n");
    rc |= ag_buf_append(out, "\r\n", 2);
    return rc;
}

static int emit_line(void *ctx, const char *name, size_t nlen, const char *val, size_t vlen)
{
    ag_buf *b = ctx;
    if (ag_buf_reserve(b, nlen + vlen + 3) != 0)
        return -1;
    ag_buf_append(b, name, nlen);
    if (vlen == 0)
        return ag_buf_append(b, ";", 2); /* with the NUL */
    ag_buf_append(b, ": ", 2);
    ag_buf_append(b, val, vlen);
    return ag_buf_append(b, "", 1);
}

int fwd_build_lines(const fwd_rules *r, const fwd_request *in, ag_buf *out)
{
    unsigned seen;
    if (!in || in->body == FWD_BODY_UNSET || each_header(r, in, emit_line, out, &seen) != 0)
        return -1;
    const route_rules *rr = route_of(r, in->route);
    const gate_header *host = rr && rr->preserve_host ? client_host(in) : NULL;
    if (host && emit_line(out, "Host", 4, host->value, host->value_len) != 0)
        return -1;
    int rc = ag_buf_append(out, "Expect:", 8);
    if (!(seen & HDR_F_ACCEPT))
        rc |= ag_buf_append(out, "Accept:", 8);
    bool body = in->body == FWD_BODY_CHUNKED || in->body == FWD_BODY_LENGTH;
    if (body && !(seen & HDR_F_CTYPE))
        rc |= ag_buf_append(out, "Content-Type:", 14);
    return rc;
}

/* ---- upgrades ------------------------------------------------------------ */

bool fwd_has_token(const char *v, size_t n, const char *tok)
{
    for (size_t i = 0; i < n;) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t e = j;
        while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > i && ag_streq_ci(v + i, e - i, tok))
            return true;
        i = j;
    }
    return false;
}

fwd_upgrade fwd_upgrade_kind(const char *method, bool http11, bool has_body, const gate_header *h,
                             size_t n)
{
    bool upgrade = false, websocket = false, conn_upgrade = false;
    for (size_t i = 0; i < n; i++) {
        if (ag_streq_ci(h[i].name, h[i].name_len, "upgrade")) {
            upgrade = true;
            websocket = websocket || fwd_has_token(h[i].value, h[i].value_len, "websocket");
        } else if (ag_streq_ci(h[i].name, h[i].name_len, "connection")) {
            conn_upgrade = conn_upgrade || fwd_has_token(h[i].value, h[i].value_len, "upgrade");
        }
    }
    if (!upgrade)
        return FWD_UPG_NONE;
    /* A body would be read by the gateway as the request's while the
     * upstream reads it as the first bytes of the tunnel. */
    if (websocket && conn_upgrade && method && strcmp(method, "GET") == 0 && http11 && !has_body)
        return FWD_UPG_WEBSOCKET;
    return FWD_UPG_OTHER;
}

/* ---- response ---------------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

/* Splits one stored line into name and trimmed value; false when it has no
 * colon or an empty name. */
static bool split_line(const char *line, const char *eol, span *name, span *val)
{
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    if (!colon || colon == line)
        return false;
    const char *v = colon + 1, *ve = eol;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    *name = (span){line, (size_t)(colon - line)};
    *val = (span){v, (size_t)(ve - v)};
    return true;
}

static const char *line_end(const char *line, const char *end)
{
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    return eol ? eol : end;
}

static bool resp_conn_lists(const char *p, const char *end, const char *name, size_t nlen)
{
    for (const char *line = p; line < end;) {
        const char *eol = line_end(line, end);
        span n, v;
        if (split_line(line, eol, &n, &v) && n.n == 10 && ag_streq_ci(n.p, n.n, "connection") &&
            hdr_conn_lists(v.p, v.n, name, nlen))
            return true;
        line = eol + 1;
    }
    return false;
}

int fwd_resp_headers(const char *lines, size_t len, fwd_resp_fn fn, void *ctx)
{
    return fwd_resp_headers_route(NULL, NULL, lines, len, fn, ctx);
}

int fwd_resp_headers_route(const fwd_rules *r, const cfg_route *route, const char *lines,
                           size_t len, fwd_resp_fn fn, void *ctx)
{
    const route_rules *rr = r ? route_of(r, route) : &no_route_rules;
    if (!rr)
        return -1;
    const char *p = lines ? lines : "";
    const char *end = p + (lines ? len : 0);
    bool has_conn = false;
    for (const char *line = p; line < end && !has_conn;) {
        const char *eol = line_end(line, end);
        span n, v;
        has_conn =
            split_line(line, eol, &n, &v) && n.n == 10 && ag_streq_ci(n.p, n.n, "connection");
        line = eol + 1;
    }
    /* NUL-terminated copies: on the stack for ordinary lines, one growing
     * buffer for the rare long one. */
    char stack[8192];
    ag_buf big;
    ag_buf_init(&big);
    int rc = 0;
    for (const char *line = p; line < end && rc == 0;) {
        const char *eol = line_end(line, end);
        span n, v;
        bool ok = split_line(line, eol, &n, &v);
        line = eol + 1;
        if (!ok || v.n == 0 || !hx_valid_header_name(n.p, n.n) || !hx_valid_header_value(v.p, v.n))
            continue;
        char norm[HDR_NORM_MAX];
        size_t nl = hdr_norm(n.p, n.n, norm, sizeof(norm));
        if ((hdr_flags_norm(norm, nl, n.p, n.n) & HDR_RESP_DROP) ||
            side_drops(&rr->resp, norm, nl) || (rr->cors && cors_header_is_ours(n.p, n.n)))
            continue;
        if (has_conn && resp_conn_lists(p, end, n.p, n.n))
            continue;
        char *buf = stack;
        size_t need = n.n + 1 + v.n + 1;
        if (need > sizeof(stack)) {
            ag_buf_reset(&big);
            if (ag_buf_reserve(&big, need) != 0) {
                rc = -1;
                break;
            }
            buf = big.p;
        }
        memcpy(buf, n.p, n.n);
        buf[n.n] = '\0';
        memcpy(buf + n.n + 1, v.p, v.n);
        buf[n.n + 1 + v.n] = '\0';
        rc = fn(ctx, buf, buf + n.n + 1);
    }
    ag_buf_free(&big);
    for (size_t i = 0; i < rr->resp.nemit && rc == 0; i++)
        rc = fn(ctx, rr->resp.emit[i].name, rr->resp.emit[i].value);
    return rc;
}
