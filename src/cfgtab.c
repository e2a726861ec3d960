/* cfgtab: the rows. Adding a key is adding a row here (and, for a key with a
 * meaning beyond its type, a check in config.c or a
 * section file of cfgint.h); docs/configuration.md is
 * tested against `authgate check --dump-keys`, so the docs cannot drift. */
#include "cfgtab.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfgload.h"
#include "identity.h"
#include "util.h"

#define TOP(f) offsetof(cfg_config, f)
#define UP(f) offsetof(cfg_upstream, f)
#define RT(f) offsetof(cl_route_raw, f)
#define CS(f) offsetof(cors_spec, f)
#define DAY (86400LL)

static const cfg_choice orgs_choices[] = {
    {"all", ID_ORGS_ALL}, {"requested", ID_ORGS_REQUESTED}, {"none", ID_ORGS_NONE}, {NULL, 0}};
static const cfg_choice level_choices[] = {
    {"error", 0}, {"warn", 0}, {"info", 0}, {"debug", 0}, {NULL, 0}};

/* clang-format off */
const cfg_key cfg_keys[] = {
    /* name, type, off, min, max, def, defdoc, typedoc, choices, apply, doc */
    {"listen", CK_STR, TOP(listen), 0, 0, "127.0.0.1:8080", NULL, "`HOST:PORT`", NULL,
     CFG_APPLY_RESTART, "where the gateway accepts requests"},
    {"admin_listen", CK_STR, TOP(admin_listen), 0, 0, NULL, "off", "`HOST:PORT`", NULL,
     CFG_APPLY_RESTART, "admin endpoints: health, readiness, metrics"},
    {"workers", CK_INT, TOP(workers), 0, 1024, "0", NULL, NULL, NULL, CFG_APPLY_RESTART,
     "worker threads; 0 is one per CPU core"},
    {"shutdown_grace_ms", CK_LONG, TOP(shutdown_grace_ms), 0, 3600000, "10000", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "on SIGTERM, how long requests in flight may take to finish"},
    {"trust_forwarded_headers", CK_BOOL, TOP(trust_forwarded_headers), 0, 0, "false", NULL, NULL,
     NULL, CFG_APPLY_RELOAD, "pass the client's X-Forwarded-* and Forwarded headers on"},
    {"watch_config", CK_BOOL, TOP(watch_config), 0, 0, "false", NULL, NULL, NULL,
     CFG_APPLY_RESTART, "reload by itself when the config file changes (inotify)"},
    {"auth", CK_NODE, 0, 0, 0, NULL, "required", "mapping", NULL, CFG_APPLY_RESTART,
     "where the verifier key comes from"},
    {"upstreams", CK_NODE, 0, 0, 0, NULL, "required", "mapping", NULL, CFG_APPLY_RELOAD,
     "named upstreams"},
    {"identity", CK_NODE, 0, 0, 0, NULL, "defaults", "mapping", NULL, CFG_APPLY_RELOAD,
     "the identity headers"},
    {"limits", CK_NODE, 0, 0, 0, NULL, "defaults", "mapping", NULL, CFG_APPLY_RELOAD,
     "size and time limits"},
    {"paths", CK_NODE, 0, 0, 0, NULL, "defaults", "mapping", NULL, CFG_APPLY_RELOAD,
     "path canonicalization"},
    {"log", CK_NODE, 0, 0, 0, NULL, "defaults", "mapping", NULL, CFG_APPLY_RESTART,
     "access and diagnostic logs"},
    {"websocket", CK_NODE, 0, 0, 0, NULL, "defaults", "mapping", NULL, CFG_APPLY_RELOAD,
     "limits of WebSocket tunnels"},
    {"routes", CK_NODE, 0, 0, 0, NULL, "required, non-empty", "list", NULL, CFG_APPLY_RELOAD,
     "the routes and their policies"},
    {"forward_auth", CK_NODE, 0, 0, 0, NULL, "off", "mapping", NULL, CFG_APPLY_RELOAD,
     "the forward-auth decision listener (docs/forward-auth.md)"},
    {"cors", CK_NODE, 0, 0, 0, NULL, "off", "mapping", NULL, CFG_APPLY_RELOAD,
     "cross-origin requests from browsers, for every route"},

    {"auth.auth_url", CK_STR, TOP(auth.auth_url), 0, 0, NULL, NULL, "URL", NULL,
     CFG_APPLY_RESTART, "PropelAuth auth URL (fetch mode)"},
    {"auth.api_key_env", CK_STR, TOP(auth.api_key_env), 0, 0, NULL, NULL, "string", NULL,
     CFG_APPLY_RESTART, "environment variable holding the API key"},
    {"auth.api_key_file", CK_STR, TOP(auth.api_key_file), 0, 0, NULL, NULL, "path", NULL,
     CFG_APPLY_RESTART, "file holding the API key; mode 0600"},
    {"auth.api_key", CK_STR, TOP(auth.api_key), 0, 0, NULL, NULL, "string", NULL,
     CFG_APPLY_RESTART, "the API key inline (warned about)"},
    {"auth.api_base_url", CK_STR, TOP(auth.api_base_url), 0, 0, "https://propelauth-api.com",
     NULL, "URL", NULL, CFG_APPLY_RESTART, "PropelAuth API base"},
    {"auth.verifier_key_file", CK_STR, TOP(auth.verifier_key_file), 0, 0, NULL, NULL, "path",
     NULL, CFG_APPLY_RESTART, "PEM public key file (manual mode)"},
    {"auth.verifier_key_pem", CK_STR, TOP(auth.verifier_key_pem), 0, 0, NULL, NULL, "string",
     NULL, CFG_APPLY_RESTART, "PEM public key inline (manual mode)"},
    {"auth.issuer", CK_STR, TOP(auth.issuer), 0, 0, NULL, NULL, "string", NULL,
     CFG_APPLY_RESTART, "the iss tokens must carry (manual mode)"},
    {"auth.leeway_seconds", CK_LONG, TOP(auth.leeway_seconds), 0, 3600, "60", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "clock skew allowed on exp, iat and nbf"},
    {"auth.refresh_interval", CK_DUR, TOP(auth.refresh_interval_s), 10, 7 * DAY, "3600",
     "`3600` (1h)", NULL, NULL, CFG_APPLY_RESTART, "how often fetched metadata is refreshed"},
    {"auth.previous_key_grace", CK_DUR, TOP(auth.previous_key_grace_s), 0, 7 * DAY, "600",
     "`600` (10m)", NULL, NULL, CFG_APPLY_RESTART,
     "how long the previous key is accepted after a rotation"},
    {"auth.ca_file", CK_STR, TOP(auth.ca_file), 0, 0, NULL, "system CAs", "path", NULL,
     CFG_APPLY_RESTART, "CA bundle for the metadata fetch"},
    {"auth.fetch_timeout_ms", CK_LONG, TOP(auth.fetch_timeout_ms), 100, 600000, "10000", NULL,
     NULL, NULL, CFG_APPLY_RESTART, "timeout of one metadata fetch"},
    {"auth.token_cache_entries", CK_SIZE, TOP(auth.token_cache_entries), 0, 10000000, "10000",
     NULL, NULL, NULL, CFG_APPLY_RESTART, "verified-token cache size; 0 disables it"},

    {"upstreams.*.url", CK_STR, UP(url), 0, 0, NULL, "required", "URL", NULL, CFG_APPLY_RELOAD,
     "http:// or https://, host, optional port and base path"},
    {"upstreams.*.connect_timeout_ms", CK_LONG, UP(connect_timeout_ms), 1, 600000, "2000", NULL,
     NULL, NULL, CFG_APPLY_RELOAD, "TCP and TLS connect timeout"},
    {"upstreams.*.timeout_ms", CK_LONG, UP(timeout_ms), 1, 86400000, "30000", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "how long the upstream may stay silent"},
    {"upstreams.*.ca_file", CK_STR, UP(ca_file), 0, 0, NULL, "system CAs", "path", NULL,
     CFG_APPLY_RELOAD, "CA bundle for an https:// upstream"},

    {"identity.user_header", CK_STR, TOP(identity.user_header), 0, 0, "X-User", NULL,
     "header name", NULL, CFG_APPLY_RELOAD, "header carrying the verified user"},
    {"identity.org_header", CK_STR, TOP(identity.org_header), 0, 0, "X-Org", NULL, "header name",
     NULL, CFG_APPLY_RELOAD, "header carrying the authorized org"},
    {"identity.user_orgs", CK_ENUM, TOP(identity.user_orgs), 0, 0, "all", NULL, NULL,
     orgs_choices, CFG_APPLY_RELOAD, "which orgs the user JSON holds"},
    {"identity.forward_authorization", CK_BOOL, TOP(identity.forward_authorization), 0, 0,
     "true", NULL, NULL, NULL, CFG_APPLY_RELOAD, "forward the client's Authorization header"},
    {"identity.strip_headers", CK_NODE, 0, 0, 0, NULL, "`[]`", "list of header names", NULL,
     CFG_APPLY_RELOAD, "more client headers that never reach an upstream"},

    {"limits.max_header_bytes", CK_SIZE, TOP(limits.max_header_bytes), 256, 1 << 24, "16384",
     NULL, NULL, NULL, CFG_APPLY_RELOAD_LOWER, "the whole request head"},
    {"limits.max_headers", CK_SIZE, TOP(limits.max_headers), 1, 10000, "100", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "number of request header fields"},
    {"limits.max_uri_bytes", CK_SIZE, TOP(limits.max_uri_bytes), 16, 65536, "8192", NULL, NULL,
     NULL, CFG_APPLY_RELOAD_LOWER, "the request target"},
    {"limits.max_token_bytes", CK_SIZE, TOP(limits.max_token_bytes), 64, 1 << 24, "49152", NULL,
     NULL, NULL, CFG_APPLY_RELOAD, "bearer token length"},
    {"limits.max_body_bytes", CK_U64, TOP(limits.max_body_bytes), 0, INT64_MAX, "0", NULL, NULL,
     NULL, CFG_APPLY_RELOAD, "request body size; 0 is unlimited"},
    {"limits.max_connections", CK_SIZE, TOP(limits.max_connections), 1, 1000000, "10000", NULL,
     NULL, NULL, CFG_APPLY_RESTART, "concurrent client connections"},
    {"limits.max_connections_per_ip", CK_SIZE, TOP(limits.max_connections_per_ip), 0, 1000000,
     "0", NULL, NULL, NULL, CFG_APPLY_RESTART, "connections per client address; 0 is unlimited"},
    {"limits.idle_timeout_ms", CK_LONG, TOP(limits.idle_timeout_ms), 1, 86400000, "60000", NULL,
     NULL, NULL, CFG_APPLY_RESTART, "keep-alive idle time"},
    {"limits.request_timeout_ms", CK_LONG, TOP(limits.request_timeout_ms), 1, 3600000, "10000",
     NULL, NULL, NULL, CFG_APPLY_RELOAD, "time for the request head to arrive"},
    {"limits.max_identity_bytes", CK_SIZE, TOP(limits.max_identity_bytes), 256, 1 << 24,
     "65536", NULL, NULL, NULL, CFG_APPLY_RELOAD, "size cap of the X-User value"},
    {"limits.max_response_header_bytes", CK_SIZE, TOP(limits.max_response_header_bytes), 256,
     1 << 24, "65536", NULL, NULL, NULL, CFG_APPLY_RELOAD, "upstream response head size"},

    {"paths.resolve_dot_segments", CK_BOOL, TOP(paths.resolve_dot_segments), 0, 0, "false", NULL,
     NULL, NULL, CFG_APPLY_RELOAD, "resolve . and .. segments instead of refusing them"},
    {"paths.merge_slashes", CK_BOOL, TOP(paths.merge_slashes), 0, 0, "false", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "merge // instead of refusing it"},
    {"paths.org_id_pattern", CK_STR, TOP(paths.org_id_pattern), 0, 0, CFG_DEFAULT_ORG_ID_PATTERN,
     NULL, "POSIX extended regex", NULL, CFG_APPLY_RELOAD, "what an org id must look like"},

    {"websocket.max_tunnels", CK_SIZE, TOP(websocket.max_tunnels), 0, 1000000, "1000", NULL,
     NULL, NULL, CFG_APPLY_RELOAD, "open tunnels in the whole process; 0 refuses every handshake"},
    {"websocket.idle_timeout_ms", CK_LONG, TOP(websocket.idle_timeout_ms), 1000, 86400000,
     "300000", NULL, NULL, NULL, CFG_APPLY_RELOAD, "a tunnel with no byte either way is closed"},
    {"websocket.close_on_token_expiry", CK_BOOL, TOP(websocket.close_on_token_expiry), 0, 0,
     "false", NULL, NULL, NULL, CFG_APPLY_RELOAD,
     "close a tunnel when the token that opened it expires"},

    {"log.access_log", CK_STR, TOP(log.access_log), 0, 0, "stdout", NULL,
     "`stdout` \\| `off` \\| path", NULL, CFG_APPLY_RESTART, "one JSON line per request"},
    {"log.level", CK_STR, TOP(log.level), 0, 0, "info", NULL, NULL, level_choices,
     CFG_APPLY_RESTART, "level of the diagnostic log"},

    {"forward_auth.listen", CK_STR, TOP(forward_auth.listen), 0, 0, NULL, "off", "`HOST:PORT`",
     NULL, CFG_APPLY_RESTART, "where calling proxies ask for decisions"},
    {"forward_auth.trusted_peers", CK_NODE, 0, 0, 0, NULL, "required with listen",
     "list of CIDR blocks", NULL, CFG_APPLY_RELOAD, "who may ask; everyone else gets 403"},
    {"forward_auth.dialects", CK_NODE, 0, 0, 0, NULL, "`[original, forwarded]`",
     "list of `original` \\| `forwarded` \\| `envoy`", NULL, CFG_APPLY_RELOAD,
     "which calling proxies' headers are read"},
    {"forward_auth.envoy_path_prefix", CK_STR, TOP(forward_auth.envoy_path_prefix), 0, 0, NULL,
     "none", "path", NULL, CFG_APPLY_RELOAD, "the path_prefix of Envoy's http_service"},
    {"forward_auth.threads", CK_INT, TOP(forward_auth.threads), 0, 1024, "0", NULL, NULL, NULL,
     CFG_APPLY_RESTART, "decision threads; 0 is one per CPU core"},
    {"cors.allowed_origins", CK_NODE, 0, 0, 0, NULL, "`[]` (off)", "list of origins", NULL,
     CFG_APPLY_RELOAD, "origins allowed: `https://app.example.com`, `https://*.example.com`, `*`"},
    {"cors.allowed_methods", CK_NODE, 0, 0, 0, NULL, "the route's", "list", NULL,
     CFG_APPLY_RELOAD, "methods a preflight may ask for"},
    {"cors.allowed_headers", CK_NODE, 0, 0, 0, NULL, "`[Authorization, Content-Type]`",
     "list of header names", NULL, CFG_APPLY_RELOAD, "request headers a preflight may ask for; `*` any"},
    {"cors.exposed_headers", CK_NODE, 0, 0, 0, NULL, "`[]`", "list of header names", NULL,
     CFG_APPLY_RELOAD, "response headers the page may read"},
    {"cors.allow_credentials", CK_BOOL, TOP(cors.credentials), 0, 0, "false", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "let the page send cookies and read the answer"},
    {"cors.max_age", CK_LONG, TOP(cors.max_age), 0, 86400, "600", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "seconds a browser may cache a preflight answer"},

    {"routes[].path", CK_STR, RT(path), 0, 0, NULL, "required", "template", NULL,
     CFG_APPLY_RELOAD, "the path template"},
    {"routes[].methods", CK_NODE, 0, 0, 0, NULL, "all seven", "list", NULL, CFG_APPLY_RELOAD,
     "methods the route takes"},
    {"routes[].policy", CK_STR, RT(policy), 0, 0, NULL, "required", "policy name", NULL,
     CFG_APPLY_RELOAD, "who may pass"},
    {"routes[].role", CK_STR, RT(role), 0, 0, NULL, NULL, "string", NULL, CFG_APPLY_RELOAD,
     "the role of the two role policies"},
    {"routes[].permission", CK_STR, RT(permission), 0, 0, NULL, NULL, "string", NULL,
     CFG_APPLY_RELOAD, "the permission of require_org_member_with_permission"},
    {"routes[].permissions", CK_NODE, 0, 0, 0, NULL, NULL, "list of strings", NULL,
     CFG_APPLY_RELOAD, "the permissions of require_org_member_with_all_permissions"},
    {"routes[].org_id_from", CK_STR, RT(org_id_from), 0, 0, NULL, "see below", "org source",
     NULL, CFG_APPLY_RELOAD, "where org policies find the org id"},
    {"routes[].upstream", CK_STR, RT(upstream), 0, 0, NULL, "the only upstream",
     "upstream name", NULL, CFG_APPLY_RELOAD, "where the route forwards"},
    {"routes[].cors", CK_NODE, 0, 0, 0, NULL, "the global `cors`", "mapping", NULL,
     CFG_APPLY_RELOAD, "this route's cors keys, each replacing the global one"},
    {"routes[].cors.allowed_origins", CK_NODE, 0, 0, 0, NULL, "global", "list of origins", NULL,
     CFG_APPLY_RELOAD, "as `cors.allowed_origins`; `[]` turns cors off for the route"},
    {"routes[].cors.allowed_methods", CK_NODE, 0, 0, 0, NULL, "global", "list", NULL,
     CFG_APPLY_RELOAD, "as `cors.allowed_methods`"},
    {"routes[].cors.allowed_headers", CK_NODE, 0, 0, 0, NULL, "global", "list of header names",
     NULL, CFG_APPLY_RELOAD, "as `cors.allowed_headers`"},
    {"routes[].cors.exposed_headers", CK_NODE, 0, 0, 0, NULL, "global", "list of header names",
     NULL, CFG_APPLY_RELOAD, "as `cors.exposed_headers`"},
    {"routes[].cors.allow_credentials", CK_BOOL, CS(credentials), 0, 0, NULL, "global", NULL,
     NULL, CFG_APPLY_RELOAD, "as `cors.allow_credentials`"},
    {"routes[].cors.max_age", CK_LONG, CS(max_age), 0, 86400, NULL, "global", NULL, NULL,
     CFG_APPLY_RELOAD, "as `cors.max_age`"},
    {"routes[].preserve_host", CK_BOOL, RT(preserve_host), 0, 0, "false", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "send the client's Host to the upstream instead of the upstream's"},
    {"routes[].strip_prefix", CK_STR, RT(strip_prefix), 0, 0, NULL, "none", "path prefix", NULL,
     CFG_APPLY_RELOAD, "remove this leading part of the path before forwarding"},
    {"routes[].request_headers", CK_NODE, 0, 0, 0, NULL, "none", "mapping", NULL,
     CFG_APPLY_RELOAD, "headers to set, add or remove on the way to the upstream"},
    {"routes[].request_headers.set", CK_NODE, 0, 0, 0, NULL, "`{}`", "mapping name: value", NULL,
     CFG_APPLY_RELOAD, "replace the client's copies with this value"},
    {"routes[].request_headers.add", CK_NODE, 0, 0, 0, NULL, "`{}`", "mapping name: value", NULL,
     CFG_APPLY_RELOAD, "send this value besides the client's copies"},
    {"routes[].request_headers.remove", CK_NODE, 0, 0, 0, NULL, "`[]`", "list of header names",
     NULL, CFG_APPLY_RELOAD, "drop the client's copies"},
    {"routes[].response_headers", CK_NODE, 0, 0, 0, NULL, "none", "mapping", NULL,
     CFG_APPLY_RELOAD, "headers to set, add or remove on the way to the client"},
    {"routes[].response_headers.set", CK_NODE, 0, 0, 0, NULL, "`{}`", "mapping name: value", NULL,
     CFG_APPLY_RELOAD, "replace the upstream's copies with this value"},
    {"routes[].response_headers.add", CK_NODE, 0, 0, 0, NULL, "`{}`", "mapping name: value", NULL,
     CFG_APPLY_RELOAD, "send this value besides the upstream's copies"},
    {"routes[].response_headers.remove", CK_NODE, 0, 0, 0, NULL, "`[]`", "list of header names",
     NULL, CFG_APPLY_RELOAD, "drop the upstream's copies"},
    {"routes[].websocket", CK_BOOL, RT(websocket), 0, 0, "false", NULL, NULL, NULL,
     CFG_APPLY_RELOAD, "tunnel WebSocket handshakes (http:// upstreams only)"},
};
/* clang-format on */
const size_t cfg_nkeys = AG_ARRAY_LEN(cfg_keys);

const cfg_key *cfg_key_find(const char *name)
{
    for (size_t i = 0; i < cfg_nkeys; i++)
        if (strcmp(cfg_keys[i].name, name) == 0)
            return &cfg_keys[i];
    return NULL;
}

/* Per-item rows (upstreams.*, routes[]) have offsets into the item, not into
 * cfg_config. */
static bool is_item_row(const cfg_key *k)
{
    return strchr(k->name, '*') != NULL || strstr(k->name, "[]") != NULL;
}

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

void cfg_restart_only_changes(const cfg_config *old, const cfg_config *new_cfg,
                              void (*cb)(const char *key, void *ctx), void *ctx)
{
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (k->apply == CFG_APPLY_RELOAD || k->type == CK_NODE || is_item_row(k))
            continue;
        const char *a = (const char *)old + k->off, *b = (const char *)new_cfg + k->off;
        bool changed = false, raised = false;
        switch (k->type) {
        case CK_NODE:
            break;
        case CK_STR:
            changed = str_differs(*(char *const *)(const void *)a, *(char *const *)(const void *)b);
            break;
        case CK_BOOL:
            changed = *(const bool *)(const void *)a != *(const bool *)(const void *)b;
            break;
        case CK_INT:
        case CK_ENUM:
            changed = *(const int *)(const void *)a != *(const int *)(const void *)b;
            raised = *(const int *)(const void *)b > *(const int *)(const void *)a;
            break;
        case CK_LONG:
        case CK_DUR:
            changed = *(const long *)(const void *)a != *(const long *)(const void *)b;
            raised = *(const long *)(const void *)b > *(const long *)(const void *)a;
            break;
        case CK_SIZE:
            changed = *(const size_t *)(const void *)a != *(const size_t *)(const void *)b;
            raised = *(const size_t *)(const void *)b > *(const size_t *)(const void *)a;
            break;
        case CK_U64:
            changed = *(const uint64_t *)(const void *)a != *(const uint64_t *)(const void *)b;
            raised = *(const uint64_t *)(const void *)b > *(const uint64_t *)(const void *)a;
            break;
        }
        if (k->apply == CFG_APPLY_RELOAD_LOWER) {
            if (raised) {
                char name[128];
                snprintf(name, sizeof(name), "%s (raised)", k->name);
                cb(name, ctx);
            }
        } else if (changed) {
            cb(k->name, ctx);
        }
    }
}

/* Seconds as the largest of s / m / h that divides them. */
static void fmt_secs(char *out, size_t cap, long long v)
{
    if (v == 0)
        snprintf(out, cap, "0");
    else if (v % 3600 == 0)
        snprintf(out, cap, "%lldh", v / 3600);
    else if (v % 60 == 0)
        snprintf(out, cap, "%lldm", v / 60);
    else
        snprintf(out, cap, "%llds", v);
}

static void type_doc(const cfg_key *k, char *out, size_t cap)
{
    char lo[32], hi[32];
    if (k->typedoc) {
        snprintf(out, cap, "%s", k->typedoc);
        return;
    }
    switch (k->type) {
    case CK_BOOL:
        snprintf(out, cap, "boolean");
        return;
    case CK_DUR:
        fmt_secs(lo, sizeof(lo), k->min);
        fmt_secs(hi, sizeof(hi), k->max);
        snprintf(out, cap, "duration %s-%s", lo, hi);
        return;
    case CK_U64:
        if (k->max == INT64_MAX) {
            snprintf(out, cap, "integer %lld-2^63-1", k->min);
            return;
        }
        break;
    case CK_ENUM:
    case CK_STR:
        if (k->choices) {
            size_t o = 0;
            out[0] = '\0';
            for (const cfg_choice *ch = k->choices; ch->name && o < cap; ch++)
                o += (size_t)snprintf(out + o, cap - o, "%s`%s`", ch == k->choices ? "" : " \\| ",
                                      ch->name);
            return;
        }
        snprintf(out, cap, "string");
        return;
    default:
        break;
    }
    snprintf(out, cap, "integer %lld-%lld", k->min, k->max);
}

static const char *apply_doc(const cfg_key *k)
{
    /* A section's keys say for themselves. */
    size_t l = strlen(k->name);
    for (size_t i = 0; i < cfg_nkeys; i++)
        if (strncmp(cfg_keys[i].name, k->name, l) == 0 &&
            (cfg_keys[i].name[l] == '.' || cfg_keys[i].name[l] == '['))
            return "per key";
    switch (k->apply) {
    case CFG_APPLY_RELOAD:
        return "reload";
    case CFG_APPLY_RELOAD_LOWER:
        return "restart to raise";
    case CFG_APPLY_RESTART:
        break;
    }
    return "restart";
}

void cfg_dump_keys(FILE *f)
{
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key *k = &cfg_keys[i];
        char t[160], d[160];
        type_doc(k, t, sizeof(t));
        if (k->defdoc)
            snprintf(d, sizeof(d), "%s", k->defdoc);
        else if (k->def)
            snprintf(d, sizeof(d), "`%s`", k->def);
        else
            snprintf(d, sizeof(d), "-");
        fprintf(f, "%s\t%s\t%s\t%s\t%s\n", k->name, t, d, apply_doc(k), k->doc);
    }
}
