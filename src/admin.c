#include "admin.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "netaddr.h"

/* The admin port serves a handful of scrapers and probes; keep it cheap and
 * unable to hold many sockets if something misbehaves. */
#define ADM_MAX_CONNECTIONS 64
#define ADM_TIMEOUT_S 10

struct adm_server {
    struct MHD_Daemon *mhd;
    adm_status_fn fn;
    void *ctx;
    char last_log[256]; /* MHD's last complaint, for adm_start's err */
    char spec[128];
};

static const char *const k_json = "application/json";
static const char *const k_prom = "text/plain; version=0.0.4; charset=utf-8";

/* The same reading as `listen` and `authgate check` (netaddr.c). */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, bool *v6, char *err,
                        size_t errlen)
{
    socklen_t sl;
    char why[400];
    if (!spec || !*spec) {
        snprintf(err, errlen, "empty admin listen address");
        return -1;
    }
    /* ":PORT" would mean every interface: the admin endpoints (metrics,
     * status) must be put on an address on purpose. */
    if (spec[0] == ':') {
        snprintf(err, errlen, "admin listen %s: name the address (e.g. 127.0.0.1%s)", spec, spec);
        return -1;
    }
    if (na_listen_addr(spec, ss, &sl, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "admin listen %s", why);
        return -1;
    }
    *v6 = ss->ss_family == AF_INET6;
    return 0;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    adm_server *a = cls;
    vsnprintf(a->last_log, sizeof(a->last_log), fmt, ap);
    size_t n = strlen(a->last_log);
    while (n > 0 && (a->last_log[n - 1] == '\n' || a->last_log[n - 1] == '\r'))
        a->last_log[--n] = '\0';
    log_warn("admin listener %s: %s", a->spec, a->last_log);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               const char *body, size_t len)
{
    enum MHD_Result ret = MHD_NO;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, ag_unconst(body), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES)
        goto out;
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)
        goto out;
    ret = MHD_queue_response(c, status, r);
out:
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_str(struct MHD_Connection *c, unsigned status, const char *body)
{
    return respond(c, status, k_json, body, strlen(body));
}

static void get_status(adm_server *a, adm_status *st)
{
    memset(st, 0, sizeof(*st));
    if (a->fn)
        a->fn(a->ctx, st);
    /* The callback owns these arrays; never trust it to terminate them. */
    st->policy_hash[sizeof(st->policy_hash) - 1] = '\0';
    st->key_fingerprint[sizeof(st->key_fingerprint) - 1] = '\0';
    st->key_error[sizeof(st->key_error) - 1] = '\0';
}

static int json_str_or_null(ag_buf *b, const char *s)
{
    return *s ? ag_buf_json_str(b, s, strlen(s)) : ag_buf_puts(b, "null");
}

static enum MHD_Result serve_readyz(adm_server *a, struct MHD_Connection *c)
{
    adm_status st;
    ag_buf b;
    ag_buf_init(&b);
    get_status(a, &st);
    bool ready = st.keys_ready && st.policy_loaded && !st.draining;
    int rc = ag_buf_printf(&b, "{\"ready\":%s", ready ? "true" : "false");
    if (!ready) {
        const char *why[3];
        size_t n = 0;
        if (!st.keys_ready)
            why[n++] = "keys_unavailable";
        if (!st.policy_loaded)
            why[n++] = "policy_not_loaded";
        if (st.draining)
            why[n++] = "draining";
        rc |= ag_buf_puts(&b, ",\"reasons\":[");
        for (size_t i = 0; i < n; i++)
            rc |= ag_buf_printf(&b, "%s\"%s\"", i ? "," : "", why[i]);
        rc |= ag_buf_puts(&b, "]");
    }
    rc |= ag_buf_puts(&b, ",\"policy_hash\":");
    rc |= json_str_or_null(&b, st.policy_hash);
    rc |= ag_buf_printf(&b, ",\"policy_loaded_at\":%lld", (long long)st.policy_loaded_at);
    rc |= ag_buf_puts(&b, ",\"key_fingerprint\":");
    rc |= json_str_or_null(&b, st.key_fingerprint);
    if (st.key_error[0]) {
        rc |= ag_buf_puts(&b, ",\"key_error\":");
        rc |= json_str_or_null(&b, st.key_error);
    }
    rc |= ag_buf_puts(&b, "}\n");
    enum MHD_Result ret =
        rc == 0 ? respond(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, k_json, b.p, b.len)
                : respond_str(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"internal\"}\n");
    ag_buf_free(&b);
    return ret;
}

static enum MHD_Result serve_metrics(adm_server *a, struct MHD_Connection *c)
{
    adm_status st;
    ag_buf b;
    ag_buf_init(&b);
    get_status(a, &st);
    /* Fill gauges the callback left empty from the readiness facts, so a
     * callback that only knows those still yields a complete scrape. */
    met_gauges g = st.gauges;
    if (!g.keys_ready)
        g.keys_ready = st.keys_ready;
    if (!g.policy_hash || !*g.policy_hash)
        g.policy_hash = st.policy_hash;
    if (g.policy_loaded_at == 0)
        g.policy_loaded_at = st.policy_loaded_at;
    enum MHD_Result ret;
    if (met_render(&b, &g) == 0)
        ret = respond(c, MHD_HTTP_OK, k_prom, b.p ? b.p : "", b.len);
    else
        ret = respond_str(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"internal\"}\n");
    ag_buf_free(&b);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    static int responded;
    adm_server *a = cls;
    if (*req_cls) {
        /* A body after we already answered: swallow it. */
        *upload_size = 0;
        return MHD_YES;
    }
    *req_cls = &responded;
    enum { P_NONE, P_HEALTH, P_READY, P_METRICS } page = P_NONE;
    if (strcmp(url, "/healthz") == 0)
        page = P_HEALTH;
    else if (strcmp(url, "/readyz") == 0)
        page = P_READY;
    else if (strcmp(url, "/metrics") == 0)
        page = P_METRICS;
    if (page == P_NONE)
        return respond_str(c, MHD_HTTP_NOT_FOUND, "{\"error\":\"not_found\"}\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_str(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"method_not_allowed\"}\n");
    switch (page) {
    case P_HEALTH:
        return respond_str(c, MHD_HTTP_OK, "{\"status\":\"alive\"}\n");
    case P_READY:
        return serve_readyz(a, c);
    default:
        return serve_metrics(a, c);
    }
}

int adm_start(const char *listen, adm_status_fn fn, void *ctx, adm_server **out, char *err,
              size_t errlen)
{
    int rc = -1;
    adm_server *a = NULL;
    struct sockaddr_storage ss;
    bool v6 = false;
    *out = NULL;
    if (parse_listen(listen, &ss, &v6, err, errlen) != 0)
        goto out;
    a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    a->fn = fn;
    a->ctx = ctx;
    snprintf(a->spec, sizeof(a->spec), "%s", listen);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    uint16_t port =
        ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    /* The logger must come first or MHD logs the earlier options itself. */
    a->mhd =
        MHD_start_daemon(flags, port, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER,
                         mhd_log, a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADM_MAX_CONNECTIONS,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADM_TIMEOUT_S, MHD_OPTION_END);
    if (!a->mhd) {
        snprintf(err, errlen, "cannot listen on %s%s%s", listen, a->last_log[0] ? ": " : "",
                 a->last_log);
        goto out;
    }
    *out = a;
    a = NULL;
    rc = 0;
out:
    free(a);
    return rc;
}

int adm_port(const adm_server *a)
{
    if (!a || !a->mhd)
        return -1;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void adm_stop(adm_server *a)
{
    if (!a)
        return;
    if (a->mhd)
        MHD_stop_daemon(a->mhd);
    free(a);
}
