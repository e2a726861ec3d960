/* fauth: the forward-auth listener (fauth.h). Every answer is decided on the
 * first call of the access handler, from the head alone. It is sent when the
 * request is complete, so the connection stays alive for the proxy's next
 * check; a check request with a body (which no decision reads) larger than
 * DRAIN_MAX, or chunked, is answered at once and its connection closed. */
#include "fauth.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "admit.h"
#include "alog.h"
#include "hdr.h"
#include "httpx.h"
#include "log.h"
#include "mhdhdr.h"
#include "reason.h"
#include "metrics.h"
#include "netaddr.h"
#include "tcache.h"
#include "util.h"

/* ---- the original request (pure) ------------------------------------------ */

enum { H_OMETHOD, H_OURI, H_FMETHOD, H_FURI, H_N };
static const char *const k_dialect_hdr[H_N] = {"X-Original-Method", "X-Original-URI",
                                               "X-Forwarded-Method", "X-Forwarded-Uri"};

static int dialect_header(const gate_header *h)
{
    for (int i = 0; i < H_N; i++) {
        size_t l = strlen(k_dialect_hdr[i]);
        /* Exact names, ASCII case-insensitive: a look-alike spelling
         * (X_Original_URI) is not read, and is passed on like any header. */
        if (h->name_len == l && strncasecmp(h->name, k_dialect_hdr[i], l) == 0)
            return i;
    }
    return -1;
}

static bool method_token(const char *m, size_t len)
{
    if (len == 0 || len > 32)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)m[i];
        if (!(ch >= 'A' && ch <= 'Z') && !(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9') &&
            !strchr("!#$%&'*+-.^_`|~", ch))
            return false;
    }
    return true;
}

void fa_original_of(const cfg_forward_auth *cfg, const fa_call *call, gate_header *out,
                    fa_original *o)
{
    memset(o, 0, sizeof(*o));
    o->code = AR_INTERNAL;
    const gate_header *seen[H_N] = {0};
    unsigned count[H_N] = {0};
    for (size_t i = 0; i < call->nheaders; i++) {
        int k = dialect_header(&call->headers[i]);
        if (k < 0) {
            out[o->nheaders++] = call->headers[i];
            continue;
        }
        count[k]++;
        seen[k] = &call->headers[i];
    }
    for (int k = 0; k < H_N; k++)
        if (count[k] > 1) {
            o->code = AR_FA_AMBIGUOUS;
            return;
        }
    bool orig = (cfg->dialects & CFG_FA_ORIGINAL) && (seen[H_OMETHOD] || seen[H_OURI]);
    bool fwd = (cfg->dialects & CFG_FA_FORWARDED) && (seen[H_FMETHOD] || seen[H_FURI]);
    bool envoy = false;
    const char *rest = NULL;
    size_t rest_len = 0;
    if ((cfg->dialects & CFG_FA_ENVOY) && cfg->envoy_path_prefix) {
        size_t pl = strlen(cfg->envoy_path_prefix);
        /* "/" as the prefix: the check request's path is the original one. */
        if (pl == 1)
            pl = 0;
        if (call->target_len >= pl && memcmp(call->target, cfg->envoy_path_prefix, pl) == 0) {
            envoy = true;
            rest = call->target + pl;
            rest_len = call->target_len - pl;
        }
    }
    if ((int)orig + (int)fwd + (int)envoy > 1) {
        o->code = AR_FA_AMBIGUOUS;
        return;
    }
    if (envoy) {
        /* Envoy appends the original path (which starts with '/') to the
         * prefix; anything else is not a check request. */
        if (rest_len == 0 || rest[0] != '/') {
            o->code = AR_FA_URI_MISSING;
            return;
        }
        if (!call->method || !method_token(call->method, strlen(call->method))) {
            o->code = AR_FA_METHOD_MISSING;
            return;
        }
        o->dialect = CFG_FA_ENVOY;
        o->method = call->method;
        o->target = rest;
        o->target_len = rest_len;
        o->code = AR_OK;
        return;
    }
    if (!orig && !fwd) {
        o->code = AR_FA_URI_MISSING;
        return;
    }
    const gate_header *m = orig ? seen[H_OMETHOD] : seen[H_FMETHOD];
    const gate_header *u = orig ? seen[H_OURI] : seen[H_FURI];
    if (!u || u->value_len == 0) {
        o->code = AR_FA_URI_MISSING;
        return;
    }
    if (!m || !method_token(m->value, m->value_len)) {
        o->code = AR_FA_METHOD_MISSING;
        return;
    }
    o->dialect = orig ? CFG_FA_ORIGINAL : CFG_FA_FORWARDED;
    o->method = m->value;
    o->target = u->value;
    o->target_len = u->value_len;
    o->code = AR_OK;
}

/* ---- the listener --------------------------------------------------------- */

/* What one pool thread holds: never touched by another thread while the
 * daemon runs (fa_stop frees them after the threads have ended). */
typedef struct fa_slot {
    xpolicy *pol;
    uint64_t gen;
    keys_snapshot *keys;
    uint64_t keys_gen;
    tc_cache *cache;
    int shard;
    int64_t untrusted_last_ms; /* rate limit of the untrusted-peer warning */
    unsigned untrusted_held;
    uint64_t rid_state;
    char *path; /* the canonical-path buffer of this thread's decisions */
} fa_slot;

struct fa_server {
    struct MHD_Daemon *mhd;
    keys_store *keys;
    pthread_mutex_t mu;
    xpolicy *pol; /* current; guarded by mu */
    uint64_t gen; /* atomic: moves with pol */
    fa_slot *slots;
    int nslots;
    int next_slot; /* atomic */
    char last_log[256];
};

static __thread fa_slot *t_slot;
static __thread const fa_server *t_owner;

/* Per request: when it started, the decided answer, and the raw target (the
 * Envoy dialect reads it; libmicrohttpd decodes its copy in place after the
 * URI callback). */
typedef struct fa_req {
    uint64_t t0;
    struct MHD_Response *resp; /* decided, not yet queued */
    unsigned status;
    bool answered;
    size_t target_len;
    char target[];
} fa_req;

static fa_slot *slot_of(fa_server *f)
{
    if (t_owner != f || !t_slot) {
        int i = __atomic_fetch_add(&f->next_slot, 1, __ATOMIC_ACQ_REL);
        if (i >= f->nslots)
            return NULL;
        t_slot = &f->slots[i];
        t_owner = f;
    }
    fa_slot *s = t_slot;
    uint64_t g = __atomic_load_n(&f->gen, __ATOMIC_ACQUIRE);
    if (!s->pol || g != s->gen) {
        pthread_mutex_lock(&f->mu);
        xpolicy *p = xpolicy_ref(f->pol);
        pthread_mutex_unlock(&f->mu);
        xpolicy_unref(s->pol);
        s->pol = p;
        s->gen = g;
    }
    uint64_t kg = keys_generation(f->keys);
    if (kg != s->keys_gen || !s->keys) {
        keys_snapshot_unref(s->keys);
        s->keys = keys_acquire(f->keys);
        s->keys_gen = s->keys ? s->keys->generation : 0;
    }
    return s;
}

static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    size_t len = strlen(uri);
    fa_req *r = malloc(sizeof(*r) + len + 1);
    if (!r)
        return NULL;
    r->t0 = ag_now_mono_ns();
    r->resp = NULL;
    r->status = 0;
    r->answered = false;
    memcpy(r->target, uri, len + 1);
    r->target_len = len;
    return r;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    fa_req *r = *req_cls;
    if (r && r->resp)
        MHD_destroy_response(r->resp);
    free(r);
    *req_cls = NULL;
}

/* The caller's X-Request-Id when its first one is well formed (as proxy mode
 * reads it), else a new one. */
static void request_id(fa_slot *s, const gate_header *h, size_t n, char *out, size_t cap)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i].name_len != 12 || strncasecmp(h[i].name, "X-Request-Id", 12) != 0)
            continue;
        if (h[i].value_len < cap && hx_valid_request_id(h[i].value, h[i].value_len)) {
            memcpy(out, h[i].value, h[i].value_len);
            out[h[i].value_len] = '\0';
            return;
        }
        break;
    }
    if (s->rid_state == 0 && ag_random(&s->rid_state, sizeof(s->rid_state)) != 0)
        s->rid_state = ag_now_mono_ns() | 1;
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (int w = 0; w < 3; w++) {
        s->rid_state ^= s->rid_state << 13;
        s->rid_state ^= s->rid_state >> 7;
        s->rid_state ^= s->rid_state << 17;
        uint32_t v = (uint32_t)(s->rid_state >> 16);
        for (int b = 0; b < 8 && k + 1 < cap; b++)
            out[k++] = hex[(v >> (28 - 4 * b)) & 15];
    }
    out[k] = '\0';
}

static void peer_string(const struct sockaddr *sa, char *out, size_t cap)
{
    out[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}

static void refuse(gate_decision *d, ag_reason code)
{
    d->outcome = GATE_REFUSE;
    d->code = code;
    d->status = reason_status(code);
    d->error = reason_error(code);
    d->reason = reason_name(code);
}

static const char *decision_name(const gate_decision *d)
{
    if (d->outcome == GATE_FORWARD)
        return "allow";
    if (d->status >= 500)
        return "error";
    if (d->status == 400 || d->status == 413 || d->status == 414 || d->status == 431 ||
        d->status == 501)
        return "reject";
    return "deny";
}

static void access_log(uint64_t elapsed_ns, const char *rid, const char *peer, const char *method,
                       const fa_original *o, const gate_decision *d)
{
    alog_rec rec = {
        .request_id = rid,
        .peer = peer,
        .method = method,
        .d = d,
        .target = o->target,
        .target_len = o->target_len,
        .decision = decision_name(d),
        .reason = d->reason ? d->reason : "",
        .status = d->outcome == GATE_FORWARD ? 200 : d->status,
        .duration_ms = (double)elapsed_ns / 1e6,
        .mode = "forward_auth",
    };
    alog_write(&rec);
}

/* The response for d, or NULL (out of memory). */
static struct MHD_Response *answer(const gate_decision *d, const cfg_config *c, const char *rid,
                                   unsigned *status_out)
{
    struct MHD_Response *r = NULL;
    ag_buf body;
    ag_buf_init(&body);
    unsigned status = 200;
    if (d->code == AR_CORS_PREFLIGHT) {
        /* A browser's preflight carries no credentials. The calling proxy
         * shows only a 2xx or 401/403 to the browser, so a preflight the
         * route's CORS policy allows is let through without an identity: the
         * ingress (or the backend) answers it with its own CORS settings. */
        r = MHD_create_response_from_buffer(0, ag_unconst(""), MHD_RESPMEM_PERSISTENT);
        if (!r)
            goto out;
    } else if (d->outcome == GATE_FORWARD) {
        r = MHD_create_response_from_buffer(0, ag_unconst(""), MHD_RESPMEM_PERSISTENT);
        if (!r)
            goto out;
        /* The identity headers are the whole answer: the proxy copies them
         * onto the request it forwards, in place of whatever the client sent. */
        if (d->x_user)
            MHD_add_response_header(r, c->identity.user_header, d->x_user);
        if (d->x_org)
            MHD_add_response_header(r, c->identity.org_header, d->x_org);
    } else {
        status = (unsigned)d->status;
        if (gate_error_body(d, &body) != 0)
            goto out;
        r = MHD_create_response_from_buffer(body.len, body.p, MHD_RESPMEM_MUST_COPY);
        if (!r)
            goto out;
        MHD_add_response_header(r, "Content-Type", "application/json");
        if (d->status == 401)
            MHD_add_response_header(r, "WWW-Authenticate",
                                    d->token_sent ? "Bearer error=\"invalid_token\"" : "Bearer");
        if (d->status == 405 && d->allow) {
            char allow[128];
            hx_methods_format(d->allow, allow, sizeof(allow));
            MHD_add_response_header(r, "Allow", allow);
        }
    }
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (rid[0])
        MHD_add_response_header(r, "X-Request-Id", rid);
    *status_out = status;
out:
    ag_buf_free(&body);
    return r;
}

/* A body bigger than this (or chunked) is not read: the answer goes at once
 * and the connection closes. */
#define DRAIN_MAX (64 * 1024)

/* From the headers already collected (h, n) when there are any, so the head
 * is not walked twice more; else from libmicrohttpd's table. */
static bool small_or_no_body(struct MHD_Connection *conn, const gate_header *h, size_t n)
{
    const char *cl = NULL;
    if (h) {
        for (size_t i = 0; i < n; i++) {
            if (h[i].name_len == 17 && strncasecmp(h[i].name, "Transfer-Encoding", 17) == 0)
                return false;
            /* libmicrohttpd's lookup returns the first Content-Length. */
            if (!cl && h[i].name_len == 14 && strncasecmp(h[i].name, "Content-Length", 14) == 0)
                cl = h[i].value;
        }
    } else {
        if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
            return false;
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    }
    if (!cl)
        return true;
    char *end = NULL;
    unsigned long long v = strtoull(cl, &end, 10);
    return end && end != cl && *end == '\0' && v <= DRAIN_MAX;
}

static void warn_untrusted(fa_slot *s, const char *peer)
{
    int64_t now = (int64_t)(ag_now_mono_ns() / 1000000ull);
    if (s->untrusted_last_ms && now - s->untrusted_last_ms < 1000) {
        s->untrusted_held++;
        return;
    }
    if (s->untrusted_held)
        log_warn("forward_auth_untrusted_peer: %s is not in forward_auth.trusted_peers "
                 "(%u more refused since the last line)",
                 peer, s->untrusted_held);
    else
        log_warn("forward_auth_untrusted_peer: %s is not in forward_auth.trusted_peers", peer);
    s->untrusted_last_ms = now;
    s->untrusted_held = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    fa_server *f = cls;
    fa_req *rq = *req_cls;
    if (!rq)
        return MHD_NO;
    if (rq->answered) {
        /* Decided: a small body is read and dropped, then the answer goes. */
        if (*upload_size > 0) {
            *upload_size = 0;
            return MHD_YES;
        }
        struct MHD_Response *r = rq->resp;
        rq->resp = NULL;
        enum MHD_Result qr = MHD_queue_response(conn, rq->status, r);
        MHD_destroy_response(r);
        return qr;
    }
    fa_slot *s = slot_of(f);
    if (!s || !s->pol)
        return MHD_NO;
    const cfg_config *c = gate_config(s->pol->gate);
    const cfg_forward_auth *fc = &c->forward_auth;
    if (!s->path && !(s->path = malloc(GATE_PATH_MAX)))
        return MHD_NO;
    gate_decision d;
    gate_decision_init_buf(&d, s->path, GATE_PATH_MAX);
    fa_original o = {0};
    char rid[64] = "";
    char peer[64] = "";
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    /* Rendered only for a line that shows it: most answers write none. */
    if (log_access_enabled())
        peer_string(sa, peer, sizeof(peer));
    gate_header hs[128], orig_stack[128];
    gate_header *orig_heap = NULL, *orig = orig_stack;
    mh_headers hc = {.h = hs, .n = 0, .heap = NULL};
    enum MHD_Result ret = MHD_NO;

    if (!na_cidr_match(fc->peers, fc->npeers, sa)) {
        /* Nothing of the request is read: its forwarded headers are as good
         * as anyone's. */
        if (!peer[0])
            peer_string(sa, peer, sizeof(peer));
        warn_untrusted(s, peer);
        refuse(&d, AR_FA_UNTRUSTED_PEER);
        request_id(s, NULL, 0, rid, sizeof(rid));
        goto respond;
    }
    if (mh_collect(conn, hs, AG_ARRAY_LEN(hs), &hc) != 0)
        goto out;
    request_id(s, hc.h, hc.n, rid, sizeof(rid));
    if (hc.n > AG_ARRAY_LEN(orig_stack) && !(orig = orig_heap = calloc(hc.n, sizeof(*orig))))
        goto out;
    fa_call call = {
        .method = method,
        .target = rq->target,
        .target_len = rq->target_len,
        .headers = hc.h,
        .nheaders = hc.n,
    };
    fa_original_of(fc, &call, orig, &o);
    if (o.code != AR_OK) {
        refuse(&d, o.code);
        goto respond;
    }
    /* Admission and the decision exactly as in proxy mode, on the original
     * request: its method and target, the caller's headers without the
     * dialect's own. */
    adm_request ar = {
        .method = o.method,
        .version = strcmp(version, MHD_HTTP_VERSION_1_1) == 0 ? ADM_HTTP_11 : ADM_HTTP_10,
        .headers = orig,
        .nheaders = o.nheaders,
    };
    adm_result adm = adm_check(&ar, &c->limits);
    if (adm.outcome != ADM_ADMITTED) {
        d.outcome = GATE_REFUSE;
        d.status = adm.status;
        d.error = adm.error;
        d.reason = adm.reason;
        goto respond;
    }
    gate_request req = {
        .method = o.method,
        .target = o.target,
        .target_len = o.target_len,
        .headers = orig,
        .nheaders = o.nheaders,
    };
    gate_decide(s->pol->gate, s->keys, s->cache, &req, ag_now_wall(), &d);
respond:
    if (!(rq->resp = answer(&d, c, rid, &rq->status)))
        goto out;
    rq->answered = true;
    ret = MHD_YES;
    if (!small_or_no_body(conn, hc.n ? hc.h : NULL, hc.n)) {
        struct MHD_Response *r = rq->resp;
        rq->resp = NULL;
        ret = MHD_queue_response(conn, rq->status, r);
        MHD_destroy_response(r);
    }
    uint64_t elapsed = ag_now_mono_ns() - rq->t0;
    access_log(elapsed, rid, peer, o.method ? o.method : method, &o, &d);
    met_request_forward_auth(s->shard, d.route ? d.route->path : NULL,
                             d.outcome == GATE_FORWARD ? 200 : d.status, decision_name(&d),
                             d.reason ? d.reason : "", (double)elapsed / 1e9);
    if (d.cache_used)
        met_cache(s->shard, d.cache_hit);
out:
    gate_decision_clear(&d);
    free(orig_heap);
    free(hc.heap);
    return ret;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    fa_server *f = cls;
    vsnprintf(f->last_log, sizeof(f->last_log), fmt, ap);
    size_t n = strlen(f->last_log);
    while (n > 0 && (f->last_log[n - 1] == '\n' || f->last_log[n - 1] == '\r'))
        f->last_log[--n] = '\0';
    log_debug("forward_auth listener: %s", f->last_log);
}

int fa_start(xpolicy *pol, keys_store *keys, int threads, int shard_base, fa_server **out,
             char *err, size_t errlen)
{
    int rc = -1;
    *out = NULL;
    const cfg_config *c = gate_config(pol->gate);
    const char *spec = c->forward_auth.listen;
    struct sockaddr_storage ss;
    socklen_t sl;
    char why[400];
    if (!spec || na_listen_addr(spec, &ss, &sl, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "forward_auth.listen %s", spec ? why : "is not set");
        return -1;
    }
    if (threads < 1)
        threads = 1;
    fa_server *f = calloc(1, sizeof(*f));
    if (!f || !(f->slots = calloc((size_t)threads, sizeof(*f->slots)))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->keys = keys;
    f->pol = xpolicy_ref(pol);
    f->gen = 1;
    f->nslots = threads;
    for (int i = 0; i < threads; i++) {
        f->slots[i].shard = shard_base + i;
        size_t n = c->auth.token_cache_entries;
        if (n && !(f->slots[i].cache = tc_new(n, 64u * 1024 * 1024 / (size_t)threads))) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    uint16_t port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    /* The same head budget as the proxy's workers, so a head the proxy
     * refuses for its size is refused here the same way. */
    size_t pool = c->limits.max_header_bytes + 1024 + c->limits.max_headers * 48;
    f->mhd = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, f, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, f,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK, uri_cb, f,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, f, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->limits.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((c->limits.idle_timeout_ms + 999) / 1000),
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 0),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
    if (!f->mhd) {
        snprintf(err, errlen, "cannot listen on %s%s%s", spec, f->last_log[0] ? ": " : "",
                 f->last_log);
        goto out;
    }
    *out = f;
    f = NULL;
    rc = 0;
out:
    fa_stop(f);
    return rc;
}

void fa_set_policy(fa_server *f, xpolicy *p)
{
    if (!f)
        return;
    xpolicy *n = xpolicy_ref(p);
    pthread_mutex_lock(&f->mu);
    xpolicy *old = f->pol;
    f->pol = n;
    __atomic_add_fetch(&f->gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&f->mu);
    xpolicy_unref(old);
}

int fa_port(const fa_server *f)
{
    if (!f || !f->mhd)
        return -1;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(f->mhd, MHD_DAEMON_INFO_BIND_PORT);
    return i ? (int)i->port : -1;
}

void fa_stop(fa_server *f)
{
    if (!f)
        return;
    if (f->mhd)
        MHD_stop_daemon(f->mhd);
    if (f->slots) {
        for (int i = 0; i < f->nslots; i++) {
            xpolicy_unref(f->slots[i].pol);
            keys_snapshot_unref(f->slots[i].keys);
            tc_free(f->slots[i].cache);
            free(f->slots[i].path);
        }
        free(f->slots);
        pthread_mutex_destroy(&f->mu);
    }
    xpolicy_unref(f->pol);
    free(f);
}
