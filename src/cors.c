/* cors: see cors.h. */
#include "cors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpx.h"
#include "util.h"

typedef struct origin {
    bool https;
    bool wild; /* configured "*.suffix": host holds ".suffix" */
    unsigned port;
    char host[256];
    size_t hlen;
} origin;

struct cors_policy {
    bool any_origin;
    origin *origins;
    size_t norigins;
    unsigned methods;
    bool any_header;
    char **headers; /* lower case */
    size_t nheaders;
    char *expose; /* joined with ", "; NULL = none */
    bool credentials;
    char max_age[24];
};

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* scheme://host[:port], nothing else. wild admits a leading "*." label. */
static bool origin_parse(const char *s, size_t len, bool wild, origin *o)
{
    memset(o, 0, sizeof(*o));
    size_t i;
    if (len >= 8 && ag_streq_ci(s, 8, "https://")) {
        o->https = true;
        i = 8;
    } else if (len >= 7 && ag_streq_ci(s, 7, "http://")) {
        i = 7;
    } else {
        return false;
    }
    if (wild && len - i >= 2 && s[i] == '*' && s[i + 1] == '.') {
        o->wild = true;
        i++; /* keep the dot: host is ".suffix" */
    }
    size_t hs = i;
    while (i < len && s[i] != ':') {
        char c = lower(s[i]);
        if (!host_char(c) || o->hlen + 1 >= sizeof(o->host))
            return false;
        /* No empty label: not first (after a wildcard's dot), not doubled. */
        if (c == '.' && (i == hs ? !o->wild : o->host[o->hlen - 1] == '.'))
            return false;
        o->host[o->hlen++] = c;
        i++;
    }
    if (o->hlen == (o->wild ? 1u : 0u) || o->host[o->hlen - 1] == '.')
        return false;
    o->port = o->https ? 443 : 80;
    if (i < len) {
        i++; /* ':' */
        /* Decimal as serialised: no leading zero ("0443" is no port of ours). */
        if (i == len || len - i > 5 || s[i] == '0')
            return false;
        unsigned p = 0;
        for (; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            p = p * 10 + (unsigned)(s[i] - '0');
        }
        if (p < 1 || p > 65535)
            return false;
        o->port = p;
    }
    return true;
}

static bool origin_match(const origin *conf, const origin *req)
{
    if (conf->https != req->https || conf->port != req->port)
        return false;
    if (!conf->wild)
        return conf->hlen == req->hlen && memcmp(conf->host, req->host, req->hlen) == 0;
    /* ".example.com" and at least one label in front of it. */
    return req->hlen > conf->hlen &&
           memcmp(req->host + req->hlen - conf->hlen, conf->host, conf->hlen) == 0;
}

void cors_free(cors_policy *p)
{
    if (!p)
        return;
    free(p->origins);
    for (size_t i = 0; i < p->nheaders; i++)
        free(p->headers[i]);
    free(p->headers);
    free(p->expose);
    free(p);
}

/* key: "VALUE" why (value quoted as configured, cut at 80 bytes). */
static cors_policy *compile_fail(cors_policy *p, char *err, size_t errlen, const char *key,
                                 const char *value, const char *why)
{
    if (value)
        snprintf(err, errlen, "%s: \"%.80s\" %s", key, value, why);
    else
        snprintf(err, errlen, "%s: %s", key, why);
    cors_free(p);
    return NULL;
}

cors_policy *cors_compile(const cors_spec *s, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!s || s->norigins == 0)
        return NULL;
    cors_policy *p = calloc(1, sizeof(*p));
    if (!p || !(p->origins = calloc(s->norigins, sizeof(*p->origins))) ||
        (s->nheaders && !(p->headers = calloc(s->nheaders, sizeof(*p->headers)))))
        return compile_fail(p, err, errlen, "cors", NULL, "out of memory");
    for (size_t i = 0; i < s->norigins; i++) {
        const char *o = s->origins[i];
        if (strcmp(o, "*") == 0) {
            p->any_origin = true;
            continue;
        }
        if (strcmp(o, "null") == 0)
            return compile_fail(p, err, errlen, "allowed_origins", o,
                                "is the origin of sandboxed frames and file: pages; it cannot be "
                                "allowed");
        if (!origin_parse(o, strlen(o), true, &p->origins[p->norigins]))
            return compile_fail(p, err, errlen, "allowed_origins", o,
                                "is not an origin: expected http(s)://host[:port] without a path "
                                "(\"*.\" only as the first label), or \"*\"");
        p->norigins++;
    }
    if (p->any_origin && s->credentials)
        return compile_fail(p, err, errlen, "allowed_origins", "*",
                            "cannot be combined with allow_credentials: list the origins");
    for (size_t i = 0; i < s->nheaders; i++) {
        const char *h = s->headers[i];
        if (strcmp(h, "*") == 0) {
            p->any_header = true;
            continue;
        }
        if (!hx_valid_header_name(h, strlen(h)))
            return compile_fail(p, err, errlen, "allowed_headers", h, "is not a header name");
        char *l = ag_strdup(h);
        if (!l)
            return compile_fail(p, err, errlen, "cors", NULL, "out of memory");
        for (char *c = l; *c; c++)
            *c = lower(*c);
        p->headers[p->nheaders++] = l;
    }
    ag_buf b;
    ag_buf_init(&b);
    for (size_t i = 0; i < s->nexpose; i++) {
        const char *h = s->expose[i];
        if (!hx_valid_header_name(h, strlen(h))) {
            ag_buf_free(&b);
            return compile_fail(p, err, errlen, "exposed_headers", h, "is not a header name");
        }
        if ((i && ag_buf_puts(&b, ", ") != 0) || ag_buf_puts(&b, h) != 0) {
            ag_buf_free(&b);
            return compile_fail(p, err, errlen, "cors", NULL, "out of memory");
        }
    }
    p->expose = b.len ? ag_buf_steal(&b) : NULL;
    ag_buf_free(&b);
    p->methods = s->methods;
    p->credentials = s->credentials;
    snprintf(p->max_age, sizeof(p->max_age), "%ld", s->max_age);
    return p;
}

bool cors_origin_allowed(const cors_policy *p, const char *origin_s, size_t len)
{
    if (!p || !origin_s)
        return false;
    origin req;
    if (!origin_parse(origin_s, len, false, &req))
        return p->any_origin && len == 4 && memcmp(origin_s, "null", 4) == 0;
    if (p->any_origin)
        return true;
    for (size_t i = 0; i < p->norigins; i++)
        if (origin_match(&p->origins[i], &req))
            return true;
    return false;
}

static bool header_allowed(const cors_policy *p, const char *h, size_t len)
{
    if (p->any_header)
        return true;
    for (size_t i = 0; i < p->nheaders; i++)
        if (ag_streq_ci(h, len, p->headers[i]))
            return true;
    return false;
}

/* Every comma-separated token a valid header name the policy allows. */
static bool headers_allowed(const cors_policy *p, const char *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        size_t e = i;
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (i < len && v[i] != ',')
            return false;
        i++;
        /* Empty elements are allowed by the list grammar. */
        if (e > s && (!hx_valid_header_name(v + s, e - s) || !header_allowed(p, v + s, e - s)))
            return false;
    }
    return true;
}

cors_verdict cors_preflight(const cors_policy *p, const char *origin_s, size_t olen,
                            const char *method, size_t mlen, const char *req_headers, size_t rhlen)
{
    if (!cors_origin_allowed(p, origin_s, olen))
        return CORS_DENY_ORIGIN;
    char m[16];
    /* A token, so no NUL can cut "GET\0junk" short to GET. */
    if (!method || mlen == 0 || mlen >= sizeof(m) || !hx_valid_header_name(method, mlen))
        return CORS_DENY_METHOD;
    memcpy(m, method, mlen);
    m[mlen] = '\0';
    /* Method names are case-sensitive: "get" is not GET. */
    unsigned bit = hx_method_bit(m);
    if (bit == 0 || (p->methods && !(p->methods & bit)))
        return CORS_DENY_METHOD;
    if (req_headers && !headers_allowed(p, req_headers, rhlen))
        return CORS_DENY_HEADERS;
    return CORS_ALLOW;
}

static int emit_n(cors_emit_fn fn, void *ctx, const char *name, const char *v, size_t len)
{
    char buf[1024];
    if (len >= sizeof(buf))
        return 0; /* longer than any value we would accept: leave it out */
    memcpy(buf, v, len);
    buf[len] = '\0';
    return fn(ctx, name, buf);
}

int cors_response_headers(const cors_policy *p, const cors_request *rq, cors_emit_fn fn, void *ctx)
{
    if (!p || !rq)
        return 0;
    /* "*" without credentials answers the same to everyone: nothing varies. */
    bool star = p->any_origin && !p->credentials;
    int rc = star ? 0 : fn(ctx, "Vary", "Origin");
    if (rc || !cors_origin_allowed(p, rq->origin, rq->origin_len))
        return rc;
    rc = star ? fn(ctx, "Access-Control-Allow-Origin", "*")
              : emit_n(fn, ctx, "Access-Control-Allow-Origin", rq->origin, rq->origin_len);
    if (!rc && p->credentials)
        rc = fn(ctx, "Access-Control-Allow-Credentials", "true");
    if (rc)
        return rc;
    if (!rq->preflight)
        return p->expose ? fn(ctx, "Access-Control-Expose-Headers", p->expose) : 0;
    rc = emit_n(fn, ctx, "Access-Control-Allow-Methods", rq->method, rq->method_len);
    if (!rc && rq->req_headers && rq->req_headers_len)
        rc = emit_n(fn, ctx, "Access-Control-Allow-Headers", rq->req_headers, rq->req_headers_len);
    if (!rc)
        rc = fn(ctx, "Access-Control-Max-Age", p->max_age);
    return rc;
}

bool cors_header_is_ours(const char *name, size_t len)
{
    return len > 15 && ag_streq_ci(name, 15, "access-control-");
}
