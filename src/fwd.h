/* fwd: what crosses the gateway, as pure functions over the header table
 * (hdr). It owns no socket: the upstream clients send what fwd_build_head /
 * fwd_build_lines produce, and the front end relays what fwd_resp_headers
 * hands it, so neither keeps header rules of its own.
 *
 * Request side, in order: the client's admitted headers minus every name the
 * table or the configuration strips (compared in hdr's normal form, so
 * "X_Forwarded_For" is judged as X-Forwarded-For) and minus the names the
 * client listed in its Connection header; then the gateway's own: the identity
 * headers, X-Forwarded-For (peer address), X-Forwarded-Proto, X-Request-Id,
 * X-Forwarded-Host (the client's Host). With trust_forwarded_headers the
 * forwarded class is copied too, but only when spelled exactly: a trusted
 * proxy in front rewrites "X-Forwarded-For", not its look-alikes.
 * Authorization likewise, only when identity.forward_authorization.
 *
 * Per route (compiled with the rules): request_headers remove and set names
 * are dropped from the client's (in normal form), the set and add lines
 * follow the client's, before the gateway's own; preserve_host sends the
 * client's Host instead of the upstream's; strip_prefix shortens the path
 * (fwd_path). The loader refuses rewrite rules on any name the table or the
 * identity configuration rules, so none of them touches the gateway's own. */
#ifndef AG_FWD_H
#define AG_FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gate.h"
#include "util.h"

/* ---- upstream target: compiled once per configured URL ------------------ */

typedef enum fwd_scheme {
    FWD_SCHEME_NONE = 0, /* not compiled */
    FWD_SCHEME_HTTP,
    FWD_SCHEME_HTTPS,
} fwd_scheme;

typedef struct fwd_target {
    fwd_scheme scheme;
    char host[256]; /* for the resolver: IPv6 without brackets */
    char port[6];   /* decimal, 1..65535, explicit or the scheme's default */
    uint16_t port_num;
    char hostport[266]; /* Host value: host[:port], IPv6 bracketed, default port omitted */
    size_t hostport_len;
    char *base; /* path prefix without trailing '/', "" for none (owned) */
    size_t base_len;
    char *prefix; /* scheme://hostport + base: libcurl's URL before the path (owned) */
    size_t prefix_len;
} fwd_target;

/* http(s)://host[:port][/base]. Refuses userinfo ('@'), an unterminated or
 * followed-by-junk IPv6 literal, an empty host, bytes outside a host name's
 * grammar, an empty, non-numeric or out-of-range (1..65535) port, a query or
 * fragment, spaces and control bytes. 0, or -1 with err set and *t zeroed. */
int fwd_target_compile(const char *url, fwd_target *t, char *err, size_t errlen);
void fwd_target_free(fwd_target *t);

/* ---- rules: compiled once per loaded configuration ---------------------- */

typedef struct fwd_rules fwd_rules;

/* Copies what it needs from c (c may be freed afterwards). NULL with err set
 * on allocation failure or a configured name whose normal form is longer than
 * HDR_NORM_MAX - 1 bytes. */
fwd_rules *fwd_rules_new(const cfg_config *c, char *err, size_t errlen);
void fwd_rules_free(fwd_rules *r);

/* Is a client header with this name dropped whatever its position and the
 * Connection header (table rules plus configured identity/strip names)? The
 * config loader refuses at least these names as the org id's header source:
 * it judges by the same table (HDR_REQ_RULED), and test_config checks that
 * it covers every name this returns true for. */
bool fwd_client_header_stripped(const fwd_rules *r, const char *name, size_t len);

/* ---- request ----------------------------------------------------------- */

typedef enum fwd_body {
    FWD_BODY_UNSET = 0, /* refused: framing must be chosen, never defaulted */
    FWD_BODY_NONE,      /* no body (Content-Length: 0 for POST/PUT/PATCH) */
    FWD_BODY_LENGTH,    /* Content-Length: body_len */
    FWD_BODY_CHUNKED,   /* Transfer-Encoding: chunked */
} fwd_body;

typedef struct fwd_request {
    const char *method;
    const gate_header *headers; /* as admitted by the front end */
    size_t nheaders;
    const char *path; /* canonical, starts with '/' */
    size_t path_len;
    const char *query; /* raw, without '?'; NULL = none */
    size_t query_len;
    const char *x_user; /* identity values to inject; NULL = none */
    const char *x_org;
    const char *client_addr; /* peer address, "" when unknown */
    const char *request_id;
    /* The decided route: its rewriting (preserve_host, strip_prefix,
     * request_headers) applies. NULL = none. A route of another
     * configuration than the rules' is refused. */
    const cfg_route *route;
    fwd_body body;
    uint64_t body_len; /* FWD_BODY_LENGTH only */
    /* The headers passed admission's grammar checks (admit.c), as in the
     * daemon: their names and values are not scanned a second time. false
     * (the zero value) checks them here. */
    bool admitted;
    /* A WebSocket handshake on a route that tunnels it: the head asks the
     * upstream for the switch (Connection: Upgrade, Upgrade: websocket); the
     * client's Sec-WebSocket-* headers pass as any end-to-end header. The
     * client's own Connection and Upgrade are hop-by-hop and never copied.
     * false (the zero value): no upgrade is ever asked for. */
    bool websocket;
} fwd_request;

/* The path sent upstream (before the target's base): the canonical path
 * minus the route's strip_prefix ("/" when nothing is left). 0, or -1 when
 * the path does not start with the prefix's segments or the route is
 * unknown. *path points into in->path or a constant. */
int fwd_path(const fwd_rules *r, const fwd_request *in, const char **path, size_t *len);

/* Appends the whole HTTP/1.1 request head for the own client: request line
 * (base + path + "?" query), Host, the forwarded header lines, framing, and
 * the empty line. 0, or -1 on allocation failure, FWD_BODY_UNSET, or a
 * header name or value the front end should have refused (out may then hold
 * a partial head: the caller discards it). */
int fwd_build_head(const fwd_rules *r, const fwd_target *t, const fwd_request *in, ag_buf *out);

/* The same header set for libcurl: each line NUL-terminated ("Name: value\0")
 * for curl_slist_append, an empty value as "Name;" (curl's spelling: "Name:"
 * would delete it), then the lines that stop libcurl from inventing headers
 * the client did not send ("Expect:", "Accept:" without a client Accept,
 * "Content-Type:" on a body without one). No request line, Host or framing:
 * libcurl writes those from the URL and the body size. 0 or -1 as above. */
int fwd_build_lines(const fwd_rules *r, const fwd_request *in, ag_buf *out);

/* ---- upgrades ------------------------------------------------------------ */

/* What a request's Upgrade header asks for. The zero value asks for nothing:
 * the request is forwarded as any other (Upgrade is hop-by-hop). */
typedef enum fwd_upgrade {
    FWD_UPG_NONE = 0,
    FWD_UPG_WEBSOCKET, /* RFC 6455 4.1: GET, HTTP/1.1, no body, Upgrade names
                        * websocket and Connection names upgrade */
    FWD_UPG_OTHER,     /* any other Upgrade (h2c, ...): never tunnelled */
} fwd_upgrade;

fwd_upgrade fwd_upgrade_kind(const char *method, bool http11, bool has_body, const gate_header *h,
                             size_t n);
/* Does the comma-separated list v[0..n) hold tok (ASCII case aside)? */
bool fwd_has_token(const char *v, size_t n, const char *tok);

/* ---- response ---------------------------------------------------------- */

/* Called for each relayable header with NUL-terminated copies valid for the
 * call only. A non-zero return stops the walk and is returned. */
typedef int (*fwd_resp_fn)(void *ctx, const char *name, const char *value);

/* Walks an upstream response head stored as "Name: value\r\n" lines and hands
 * on every header that may reach the client: drops names in HDR_RESP_DROP,
 * names listed in the response's Connection header, invalid names or values,
 * and empty values. Returns 0, -1 on allocation failure, or fn's non-zero. */
int fwd_resp_headers(const char *lines, size_t len, fwd_resp_fn fn, void *ctx);

/* The same, then the route's response_headers: its remove and set names
 * dropped (in normal form), an upstream's access-control-* dropped on a
 * route with cors (the gateway sets its own), and the set and add lines
 * handed on last. r NULL: no route rules. -1 for a route not r's. */
int fwd_resp_headers_route(const fwd_rules *r, const cfg_route *route, const char *lines,
                           size_t len, fwd_resp_fn fn, void *ctx);

#endif
