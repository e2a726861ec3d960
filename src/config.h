/* config: the YAML configuration (docs/configuration.md is the reference).
 * Unknown keys are errors; every problem is reported as FILE:LINE:COL: message
 * and loading collects all of them rather than stopping at the first. */
#ifndef AG_CONFIG_H
#define AG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cors.h"
#include "identity.h"
#include "netaddr.h"
#include "policy.h"

typedef struct cfg_upstream {
    char *name;
    char *url;               /* scheme://host[:port][/base] without trailing slash */
    long connect_timeout_ms; /* default 2000 */
    long timeout_ms;         /* default 30000: upstream inactivity */
    char *ca_file;           /* https:// only: CA bundle instead of the system store */
    int line, col;
} cfg_upstream;

typedef enum cfg_org_source_kind {
    CFG_ORG_NONE = 0,
    CFG_ORG_PATH,   /* name = template parameter */
    CFG_ORG_QUERY,  /* name = query parameter */
    CFG_ORG_HEADER, /* name = header name */
} cfg_org_source_kind;

/* One header rewrite: a name and, for set/add, its value. */
typedef struct cfg_hdr_edit {
    char *name;
    char *value; /* NULL for remove */
} cfg_hdr_edit;

/* routes[].request_headers / response_headers. */
typedef struct cfg_hdr_rules {
    cfg_hdr_edit *set, *add, *remove;
    size_t nset, nadd, nremove;
} cfg_hdr_rules;

typedef struct cfg_route {
    char *path;       /* template */
    unsigned methods; /* HX_M_* mask; HX_M_ALL when omitted */
    pol_spec policy;
    cfg_org_source_kind org_kind;
    char *org_name;         /* parameter / header name */
    cfg_upstream *upstream; /* points into cfg_config.upstreams; NULL for none */
    bool websocket;         /* tunnel WebSocket handshakes; default false */
    int line, col;
    size_t index;      /* position in the file, for logs and metrics labels */
    cors_policy *cors; /* global cors merged with the route's; NULL = off (owned) */
    bool preserve_host;
    char *strip_prefix; /* NULL = none; the route's path starts with it */
    cfg_hdr_rules req_hdrs, resp_hdrs;
} cfg_route;

typedef struct cfg_limits {
    size_t max_header_bytes;          /* whole request head; default 16384 */
    size_t max_headers;               /* default 100 */
    size_t max_uri_bytes;             /* default 8192 */
    size_t max_token_bytes;           /* default 49152 */
    uint64_t max_body_bytes;          /* default 0 = unlimited (streamed) */
    size_t max_connections;           /* default 10000 */
    size_t max_connections_per_ip;    /* default 0 = unlimited */
    long idle_timeout_ms;             /* keep-alive idle; default 60000 */
    long request_timeout_ms;          /* whole request head must arrive within; default 10000 */
    size_t max_identity_bytes;        /* X-User size cap; default 65536 */
    size_t max_response_header_bytes; /* from upstream; default 65536 */
} cfg_limits;

typedef struct cfg_auth {
    char *auth_url;
    char *api_key_env;
    char *api_key_file;
    char *api_key;      /* inline (warned about) */
    char *api_base_url; /* default https://propelauth-api.com */
    char *verifier_key_file;
    char *verifier_key_pem;
    char *issuer;
    long leeway_seconds;       /* default 60 */
    long refresh_interval_s;   /* default 3600 */
    long previous_key_grace_s; /* default 600 */
    char *ca_file;
    long fetch_timeout_ms;      /* default 10000 */
    size_t token_cache_entries; /* default 10000; 0 disables */
    int key_line, key_col;      /* the value naming the key source, for check's messages */
} cfg_auth;

typedef struct cfg_identity {
    char *user_header; /* X-User */
    char *org_header;  /* X-Org */
    id_orgs_mode user_orgs;
    bool forward_authorization; /* default true */
    char **strip_headers;
    size_t nstrip_headers;
} cfg_identity;

/* The org id shape accepted by default (PropelAuth ids are UUIDs). */
#define CFG_DEFAULT_ORG_ID_PATTERN "[A-Za-z0-9._~-]{1,128}"

typedef struct cfg_paths {
    bool resolve_dot_segments; /* default false */
    bool merge_slashes;        /* default false */
    char *org_id_pattern;      /* documented default: unreserved chars, 1..128 */
} cfg_paths;

typedef struct cfg_websocket {
    size_t max_tunnels;         /* whole process; default 1000 */
    long idle_timeout_ms;       /* no byte either way; default 300000 */
    bool close_on_token_expiry; /* default false */
} cfg_websocket;

typedef struct cfg_log {
    char *access_log; /* "stdout" (default), "off", or a file path */
    char *level;      /* error|warn|info|debug; default info */
} cfg_log;

/* Which calling proxies' headers the forward-auth listener reads (fauth.h). */
#define CFG_FA_ORIGINAL 1u  /* X-Original-Method + X-Original-URI (nginx) */
#define CFG_FA_FORWARDED 2u /* X-Forwarded-Method + X-Forwarded-Uri (Traefik, Caddy) */
#define CFG_FA_ENVOY 4u     /* method and path of the check request (Envoy ext_authz) */

typedef struct cfg_forward_auth {
    char *listen; /* NULL = no forward-auth listener */
    na_cidr *peers;
    size_t npeers;
    unsigned dialects;       /* CFG_FA_*; 0 accepts no call */
    char *envoy_path_prefix; /* the Envoy dialect's path_prefix; NULL = "" */
    int threads;             /* 0 = one per CPU core */
    int line, col;
} cfg_forward_auth;

typedef struct cfg_config {
    char *file;                   /* path it was loaded from */
    char *listen;                 /* host:port, default 127.0.0.1:8080 */
    char *admin_listen;           /* NULL = off */
    int workers;                  /* default 0 = number of cores */
    long shutdown_grace_ms;       /* default 10000 */
    bool trust_forwarded_headers; /* default false: X-Forwarded-* from client replaced */
    bool watch_config;            /* default false: reload only on SIGHUP (cfgwatch.h) */
    cfg_auth auth;
    cfg_identity identity;
    cfg_limits limits;
    cfg_paths paths;
    cfg_websocket websocket;
    cfg_log log;
    cfg_forward_auth forward_auth;
    cors_spec cors; /* the global cors section; routes hold the compiled policy */
    cfg_upstream *upstreams;
    size_t nupstreams;
    cfg_route *routes;
    size_t nroutes;
    char hash[17]; /* first 16 hex of SHA-256 of the file bytes */
    int listen_line, listen_col, admin_line, admin_col; /* 1:1 when defaulted */
} cfg_config;

/* A diagnostic list: errors and warnings, each "FILE:LINE:COL: message". */
typedef struct cfg_diags {
    char **errors;
    size_t nerrors;
    char **warnings;
    size_t nwarnings;
} cfg_diags;

void cfg_diags_free(cfg_diags *d);
void cfg_diags_print(const cfg_diags *d, FILE *f);

/* Load and validate. Returns 0 with *out set, or -1 with diags->nerrors > 0.
 * Warnings (lint) may be present either way. Validation includes route
 * templates, duplicate/ambiguous routes, policy arguments and org sources. */
int cfg_load_file(const char *path, cfg_config **out, cfg_diags *diags);
int cfg_load_string(const char *name, const char *yaml, size_t len, cfg_config **out,
                    cfg_diags *diags);
void cfg_free(cfg_config *c);

#endif
