#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "gate.h"
#include "httpx.h"
#include "keys.h"
#include "admin.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "tcache.h"
#include "uplink.h"
#include "version.h"
#include "worker.h"

#define MAX_REQ_HEADERS_HARD 1000
/* A denied request with a body up to this size is read and discarded so the
 * connection stays usable; larger or chunked bodies get the answer at once and
 * the connection is closed, so an unauthenticated client cannot make us read
 * (or be confused by) a large body. */
#define DRAIN_MAX (64 * 1024)

typedef struct srv {
    char *config_path;
    char *config_dir;
    pthread_mutex_t mu;
    gate *gate;        /* current; guarded by mu */
    uint64_t gate_gen; /* atomic */
    keys_store *keys;
    worker *workers;
    int nworkers;
    int stopping; /* atomic */
    int64_t stop_deadline_ms;
    char policy_hash[17]; /* guarded by mu */
    int64_t policy_loaded_at;
    adm_server *admin;
} srv;

char *xb_get(worker *w)
{
    return w->nbuf_pool > 0 ? w->buf_pool[--w->nbuf_pool] : malloc(XB_CAP);
}

void xb_put(worker *w, char *p)
{
    if (!p)
        return;
    if (w->nbuf_pool < (int)AG_ARRAY_LEN(w->buf_pool))
        w->buf_pool[w->nbuf_pool++] = p;
    else
        free(p);
}

int64_t now_ms(void)
{
    return (int64_t)(ag_now_mono_ns() / 1000000ull);
}

static void worker_refresh(worker *w)
{
    srv *s = w->srv;
    uint64_t gg = __atomic_load_n(&s->gate_gen, __ATOMIC_ACQUIRE);
    static __thread uint64_t seen_gate_gen;
    if (gg != seen_gate_gen || !w->gate) {
        pthread_mutex_lock(&s->mu);
        gate *g = gate_ref(s->gate);
        pthread_mutex_unlock(&s->mu);
        gate_unref(w->gate);
        w->gate = g;
        seen_gate_gen = gg;
    }
    uint64_t kg = keys_generation(s->keys);
    if (kg != w->keys_gen) {
        keys_snapshot_unref(w->keys);
        w->keys = keys_acquire(s->keys);
        w->keys_gen = w->keys ? w->keys->generation : 0;
    }
}

/* ---- request-head deadline (slowloris) ------------------------------------
 * MHD 0.9.75 only has an inactivity timeout, so a client trickling one header
 * byte at a time holds a connection forever. Each connection gets a deadline
 * by which its next request head must be complete: request_timeout_ms from
 * accept or from the request line, idle_timeout_ms + request_timeout_ms after
 * a response on a kept-alive connection. A connection past it is shut down
 * (MHD then sees EOF and closes it). All callbacks run on the worker's thread,
 * so the list is per thread and needs no lock. */

typedef struct conn_rec {
    struct MHD_Connection *conn;
    xchg *x;             /* request whose head is pending, or NULL */
    int64_t deadline_ms; /* 0 = disarmed (head complete, request in progress) */
    struct conn_rec *next, *prev;
} conn_rec;

static __thread conn_rec *conn_list;
static __thread int64_t conn_next_sweep_ms;

static conn_rec *conn_rec_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void conn_arm(conn_rec *r, int64_t deadline_ms)
{
    if (r && (r->deadline_ms == 0 || deadline_ms < r->deadline_ms))
        r->deadline_ms = deadline_ms;
}

static void conn_sweep(worker *w, int64_t now)
{
    if (now < conn_next_sweep_ms)
        return;
    conn_next_sweep_ms = now + 100;
    for (conn_rec *r = conn_list; r; r = r->next) {
        if (r->deadline_ms == 0 || now < r->deadline_ms)
            continue;
        r->deadline_ms = 0;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci)
            continue;
        if (r->x)
            r->x->d.reason = reason_name(AR_CLIENT_HEADER_TIMEOUT);
        log_info("client_header_timeout: request head not complete within "
                 "request_timeout_ms (worker %d), closing",
                 w->id);
        shutdown(ci->connect_fd, SHUT_RDWR);
    }
}

/* ---- exchange lifecycle ------------------------------------------------ */

static void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    worker *w = cls;
    /* The canonical-path buffer follows the struct, sized for what this
     * configuration's URI limit can need. */
    size_t path_cap = GATE_PATH_CAP(gate_config(w->gate)->limits.max_uri_bytes);
    if (path_cap > GATE_PATH_MAX)
        path_cap = GATE_PATH_MAX;
    xchg *x = malloc(sizeof(*x) + path_cap);
    if (!x)
        return NULL;
    memset(x, 0, offsetof(xchg, d));
    x->w = w;
    x->conn = conn;
    x->t_start_ns = ag_now_mono_ns();
    size_t len = strlen(uri);
    /* MHD decodes this buffer in place after we return: keep the raw bytes. */
    x->target = ag_strndup(uri, len);
    if (!x->target) {
        free(x);
        return NULL;
    }
    x->target_len = len;
    gate_decision_init_buf(&x->d, (char *)(x + 1), path_cap);
    ag_buf_init(&x->resp_hdrs);
    ag_buf_init(&x->url);
    x->resp_content_length = -1;
    w->nx++;
    conn_rec *cr = conn_rec_of(conn);
    if (cr) {
        cr->x = x;
        conn_arm(cr, now_ms() + gate_config(w->gate)->limits.request_timeout_ms);
    }
    return x;
}

static void xchg_free(xchg *x)
{
    px_abort(x);
    gate_decision_clear(&x->d);
    if (x->gate)
        gate_unref(x->gate);
    ag_buf_free(&x->resp_hdrs);
    ag_buf_free(&x->url);
    xb_put(x->w, x->reqbody.p);
    xb_put(x->w, x->respbody.p);
    free(x->target);
    x->w->nx--;
    free(x);
}

void srv_resume(xchg *x)
{
    if (x->suspended) {
        x->suspended = false;
        MHD_resume_connection(x->conn);
    }
}

void srv_upstream_progress(xchg *x)
{
    srv_resume(x);
}

static const char *decision_name(const xchg *x)
{
    const gate_decision *d = &x->d;
    if (x->status == 0)
        return "aborted";
    if (d->outcome == GATE_FORWARD && d->route)
        return x->upstream_error ? "error" : "allow";
    if (x->status >= 500)
        return "error";
    if (x->status == 400 || x->status == 413 || x->status == 414 || x->status == 431 ||
        x->status == 501)
        return "reject";
    return "deny";
}

static void access_log(xchg *x, enum MHD_RequestTerminationCode toe)
{
    if (!log_access_enabled())
        return;
    ag_buf b;
    ag_buf_init(&b);
    const gate_decision *d = &x->d;
    const char *decision = decision_name(x);
    const char *reason = x->upstream_error ? x->upstream_error : d->reason ? d->reason : "";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double dur = (double)(ag_now_mono_ns() - x->t_start_ns) / 1e6;
    int rc = ag_buf_printf(&b, "{\"ts\":%lld.%03ld,\"request_id\":", (long long)ts.tv_sec,
                           ts.tv_nsec / 1000000);
    rc |= ag_buf_json_str(&b, x->request_id, strlen(x->request_id));
    rc |= ag_buf_puts(&b, ",\"peer\":");
    rc |= ag_buf_json_str(&b, x->client_addr, strlen(x->client_addr));
    rc |= ag_buf_puts(&b, ",\"method\":");
    const char *m = x->method ? x->method : "";
    rc |= ag_buf_json_str(&b, m, strnlen(m, 32));
    rc |= ag_buf_puts(&b, ",\"path\":");
    if (d->path_len) {
        rc |= ag_buf_json_str(&b, d->path, d->path_len);
    } else {
        /* Refused before canonicalization: log the raw path, but never its
         * query, which often carries credentials. */
        const char *t = x->target ? x->target : "";
        size_t tl = x->target ? x->target_len : 0;
        const char *q = memchr(t, '?', tl);
        if (q)
            tl = (size_t)(q - t);
        rc |= ag_buf_json_str(&b, t, tl > 512 ? 512 : tl);
    }
    rc |= ag_buf_puts(&b, ",\"route\":");
    if (d->route)
        rc |= ag_buf_json_str(&b, d->route->path, strlen(d->route->path));
    else
        rc |= ag_buf_puts(&b, "null");
    rc |= ag_buf_printf(
        &b, ",\"policy\":\"%s\",\"decision\":\"%s\",\"reason\":\"%s\",\"status\":%d",
        d->route ? pol_kind_name(d->route->policy.kind) : "", decision, reason, x->status);
    rc |= ag_buf_puts(&b, ",\"user_id\":");
    if (d->user)
        rc |= ag_buf_json_str(&b, id_user_id(d->user), strlen(id_user_id(d->user)));
    else
        rc |= ag_buf_puts(&b, "null");
    rc |= ag_buf_puts(&b, ",\"org_id\":");
    if (d->has_org_id && d->pol.org)
        rc |= ag_buf_json_str(&b, d->org_id, d->org_id_len);
    else
        rc |= ag_buf_puts(&b, "null");
    rc |= ag_buf_puts(&b, ",\"upstream\":");
    if (d->route && d->route->upstream && d->outcome == GATE_FORWARD)
        rc |= ag_buf_json_str(&b, d->route->upstream->name, strlen(d->route->upstream->name));
    else
        rc |= ag_buf_puts(&b, "null");
    if (x->upstream_status)
        rc |= ag_buf_printf(&b, ",\"upstream_status\":%ld", x->upstream_status);
    else
        rc |= ag_buf_puts(&b, ",\"upstream_status\":null");
    double up_ms = x->t_upstream_ns && x->t_upstream_hdr_ns
                       ? (double)(x->t_upstream_hdr_ns - x->t_upstream_ns) / 1e6
                       : 0.0;
    rc |= ag_buf_printf(&b, ",\"duration_ms\":%.3f,\"upstream_ms\":%.3f,\"cache\":%s", dur, up_ms,
                        d->cache_hit ? "true" : "false");
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        rc |= ag_buf_printf(&b, ",\"terminated\":%d", (int)toe);
    rc |= ag_buf_puts(&b, "}\n");
    if (rc == 0)
        log_access_write(b.p, b.len);
    ag_buf_free(&b);
}

static void record_metrics(xchg *x)
{
    const gate_decision *d = &x->d;
    int shard = x->w->id;
    const char *decision = decision_name(x);
    const char *reason = x->upstream_error ? x->upstream_error : d->reason ? d->reason : "";
    double dur = (double)(ag_now_mono_ns() - x->t_start_ns) / 1e9;
    double up = x->t_upstream_ns && x->t_upstream_hdr_ns
                    ? (double)(x->t_upstream_hdr_ns - x->t_upstream_ns) / 1e9
                    : -1.0;
    met_request(shard, d->route ? d->route->path : NULL, x->status, decision, reason, dur, up);
    if (d->cache_used)
        met_cache(shard, d->cache_hit);
    if (x->upstream_error && d->route && d->route->upstream)
        met_upstream_error(shard, d->route->upstream->name, x->upstream_error);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    xchg *x = *req_cls;
    if (!x)
        return;
    *req_cls = NULL;
    conn_rec *cr = conn_rec_of(conn);
    if (cr) {
        const cfg_limits *lim = &gate_config(x->w->gate)->limits;
        cr->x = NULL;
        cr->deadline_ms = 0;
        conn_arm(cr, now_ms() + lim->idle_timeout_ms + lim->request_timeout_ms);
    }
    access_log(x, toe);
    record_metrics(x);
    xchg_free(x);
}

static void conn_cb(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                    enum MHD_ConnectionNotificationCode code)
{
    worker *w = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        w->open_conns++;
        met_connections(w->id, 1);
        conn_rec *r = calloc(1, sizeof(*r));
        if (r) {
            r->conn = conn;
            r->deadline_ms = now_ms() + gate_config(w->gate)->limits.request_timeout_ms;
            r->next = conn_list;
            if (conn_list)
                conn_list->prev = r;
            conn_list = r;
        }
        *socket_ctx = r;
    } else {
        w->open_conns--;
        w->closed_since_trim++;
        met_connections(w->id, -1);
        conn_rec *r = *socket_ctx;
        if (r) {
            if (r->next)
                r->next->prev = r->prev;
            if (r->prev)
                r->prev->next = r->next;
            else
                conn_list = r->next;
            free(r);
            *socket_ctx = NULL;
        }
    }
}

/* ---- responses ----------------------------------------------------------- */

static enum MHD_Result queue_error(xchg *x)
{
    gate_decision *d = &x->d;
    ag_buf body;
    ag_buf_init(&body);
    enum MHD_Result ret = MHD_NO;
    if (gate_error_body(d, &body) != 0)
        goto out;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body.len, body.p, MHD_RESPMEM_MUST_COPY);
    if (!r)
        goto out;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (x->request_id[0])
        MHD_add_response_header(r, "X-Request-Id", x->request_id);
    if (d->status == 401)
        MHD_add_response_header(r, "WWW-Authenticate",
                                d->token_sent ? "Bearer error=\"invalid_token\"" : "Bearer");
    if (d->status == 405 && d->allow) {
        char allow[128];
        hx_methods_format(d->allow, allow, sizeof(allow));
        MHD_add_response_header(r, "Allow", allow);
    }
    if (x->close_after)
        MHD_add_response_header(r, "Connection", "close");
    x->status = d->status;
    x->state = XS_RESPONDED;
    ret = MHD_queue_response(x->conn, (unsigned)d->status, r);
    MHD_destroy_response(r);
out:
    ag_buf_free(&body);
    return ret;
}

static enum MHD_Result reject_now(xchg *x, int status, const char *error, const char *reason,
                                  bool close)
{
    x->d.outcome = GATE_REFUSE;
    x->d.status = status;
    x->d.error = error;
    x->d.reason = reason;
    x->close_after = close;
    return queue_error(x);
}

static ssize_t body_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    xchg *x = cls;
    xbuf *b = &x->respbody;
    if (b->len > 0) {
        size_t k = xbuf_take(b, buf, max);
        if (x->recv_paused) {
            x->recv_paused = false;
            px_unpause(x);
        }
        return (ssize_t)k;
    }
    if (x->upstream_done) {
        bool complete =
            x->upstream_result == CURLE_OK && !x->upstream_error &&
            (x->resp_content_length < 0 || (int64_t)x->resp_bytes == x->resp_content_length);
        return complete ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    x->suspended = true;
    MHD_suspend_connection(x->conn);
    return 0;
}

static enum MHD_Result queue_upstream_error(xchg *x)
{
    /* The reason table gives status and error class (504 for a timeout). */
    ag_reason code;
    if (!reason_from_name(x->upstream_error, &code) || reason_status(code) < 500)
        code = AR_UPSTREAM_PROTOCOL;
    return reject_now(x, reason_status(code), reason_error(code), reason_name(code), false);
}

/* Is `name` listed in one of the response's own Connection headers? Such
 * headers are hop-by-hop for the upstream hop only (RFC 9110 7.6.1). */
static bool resp_conn_listed(const char *p, const char *end, const char *name, size_t nlen)
{
    for (const char *line = p; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && ag_streq_ci(line, (size_t)(colon - line), "connection")) {
            for (const char *t = colon + 1; t < eol;) {
                while (t < eol && (*t == ' ' || *t == '\t' || *t == ','))
                    t++;
                const char *te = t;
                while (te < eol && *te != ',' && *te != ' ' && *te != '\t' && *te != '\r')
                    te++;
                if (te > t && ag_streq_ci(t, (size_t)(te - t), name) && (size_t)(te - t) == nlen)
                    return true;
                t = te;
                while (t < eol && *t != ',')
                    t++;
            }
        }
        line = eol + 1;
    }
    return false;
}

static enum MHD_Result queue_proxied(xchg *x)
{
    long st = x->upstream_status;
    bool no_body = x->is_head || st == 204 || st == 304 || (st >= 100 && st < 200);
    /* Content-Length decides the framing we offer; both clients have already
     * refused heads whose framing is ambiguous. */
    const char *p = x->resp_hdrs.p ? x->resp_hdrs.p : "";
    const char *end = p + x->resp_hdrs.len;
    int64_t cl;
    bool chunked;
    if (hx_resp_framing(p, x->resp_hdrs.len, &cl, &chunked) == 0 && !chunked)
        x->resp_content_length = cl;
    struct MHD_Response *r;
    bool whole = x->upstream_done && x->upstream_result == CURLE_OK && !x->upstream_error &&
                 x->respbody.len == x->resp_bytes &&
                 (x->resp_content_length < 0 || (uint64_t)x->resp_content_length == x->resp_bytes);
    if (no_body && !(x->is_head && x->resp_content_length > 0))
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    else if (whole && !no_body)
        /* The body is already here: one buffer lets MHD send head and body in
         * a single write. */
        r = MHD_create_response_from_buffer(x->respbody.len,
                                            x->respbody.p ? x->respbody.p + x->respbody.off : "",
                                            MHD_RESPMEM_MUST_COPY);
    else
        r = MHD_create_response_from_callback(
            x->resp_content_length >= 0 ? (uint64_t)x->resp_content_length : MHD_SIZE_UNKNOWN,
            32 * 1024, body_reader, x, NULL);
    if (!r)
        return MHD_NO;
    for (const char *line = p; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon && colon > line) {
            size_t nlen = (size_t)(colon - line);
            const char *v = colon + 1;
            const char *vend = eol;
            while (v < vend && (*v == ' ' || *v == '\t'))
                v++;
            while (vend > v && (vend[-1] == '\r' || vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            char lname[256];
            if (nlen < sizeof(lname)) {
                memcpy(lname, line, nlen);
                lname[nlen] = '\0';
            }
            if (!hx_is_hop_by_hop(line, nlen) && hx_valid_header_name(line, nlen) &&
                hx_valid_header_value(v, (size_t)(vend - v)) && vend > v &&
                !(nlen < sizeof(lname) && resp_conn_listed(p, end, lname, nlen))) {
                char name[256], val[8192];
                if (nlen < sizeof(name) && (size_t)(vend - v) < sizeof(val)) {
                    memcpy(name, line, nlen);
                    name[nlen] = '\0';
                    memcpy(val, v, (size_t)(vend - v));
                    val[vend - v] = '\0';
                    if (MHD_add_response_header(r, name, val) != MHD_YES)
                        log_debug("dropped upstream header %s", name);
                }
            }
        }
        line = eol + 1;
    }
    MHD_add_response_header(r, "X-Request-Id", x->request_id);
    x->status = (int)st;
    x->state = XS_RESPONDED;
    enum MHD_Result ret = MHD_queue_response(x->conn, (unsigned)st, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- the access handler -------------------------------------------------- */

typedef struct hdr_collect {
    gate_header *h;
    size_t n, cap;
    size_t bytes;
    int n_cl, n_te, n_host;
    const char *cl, *te;
    bool bad_name, bad_value, bad_host;
} hdr_collect;

/* RFC 9112 3.2 / RFC 3986 3.2.2: uri-host [ ":" port ], non-empty. A Host with
 * '/', '@', '?', '#' or spaces would become part of a URL the upstream builds
 * (it is forwarded as X-Forwarded-Host). */
static bool host_ok(const char *v, size_t len)
{
    size_t i = 0;
    if (len == 0)
        return false;
    if (v[0] == '[') {
        while (++i < len && v[i] != ']')
            if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f') ||
                  (v[i] >= 'A' && v[i] <= 'F') || v[i] == ':' || v[i] == '.'))
                return false;
        if (i >= len || i == 1)
            return false;
        i++;
    } else {
        for (; i < len && v[i] != ':'; i++) {
            unsigned char c = (unsigned char)v[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("-._~!$&'()*+,;=%", c)))
                return false;
        }
        if (i == 0)
            return false;
    }
    if (i == len)
        return true;
    if (v[i] != ':' || i + 1 == len || len - i - 1 > 5)
        return false;
    for (i++; i < len; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

/* RFC 9112 6.1/6.3: 0 when the Transfer-Encoding list ends in exactly one
 * "chunked" and has nothing else; 501 for other codings before a final
 * chunked (we do not decode them); 400 when chunked is not the final coding
 * (body length unknowable), repeated, or a list element is empty. */
static int te_verdict(const char *v)
{
    int nchunked = 0, n = 0;
    bool last_chunked = false;
    const char *p = v;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *b = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e == b)
            return 400;
        n++;
        last_chunked = ag_streq_ci(b, (size_t)(e - b), "chunked");
        nchunked += last_chunked;
        if (!*p)
            break;
        p++;
    }
    if (!last_chunked || nchunked > 1)
        return 400;
    return n > 1 ? 501 : 0;
}

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    hdr_collect *c = cls;
    if (!value) {
        value = "";
        value_size = 0;
    }
    if (!hx_valid_header_name(key, key_size))
        c->bad_name = true;
    if (!hx_valid_header_value(value, value_size))
        c->bad_value = true;
    if (ag_streq_ci(key, key_size, "content-length")) {
        c->n_cl++;
        c->cl = value;
    } else if (ag_streq_ci(key, key_size, "transfer-encoding")) {
        c->n_te++;
        c->te = value;
    } else if (ag_streq_ci(key, key_size, "host")) {
        c->n_host++;
        if (!host_ok(value, value_size))
            c->bad_host = true;
    }
    c->bytes += key_size + value_size + 4;
    if (c->n < c->cap)
        c->h[c->n] = (gate_header){key, key_size, value, value_size};
    c->n++;
    return MHD_YES;
}

static void make_request_id(xchg *x)
{
    const char *rid = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t rlen = rid ? strlen(rid) : 0;
    if (rid && rlen < sizeof(x->request_id) && hx_valid_request_id(rid, rlen)) {
        memcpy(x->request_id, rid, rlen + 1);
        return;
    }
    unsigned char r[12];
    static __thread uint64_t state;
    if (state == 0 && ag_random(&state, sizeof(state)) != 0)
        state = ag_now_mono_ns() | 1;
    for (size_t i = 0; i < sizeof(r); i += 4) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        uint32_t v = (uint32_t)(state >> 16);
        memcpy(r + i, &v, 4);
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(r); i++) {
        x->request_id[2 * i] = hex[r[i] >> 4];
        x->request_id[2 * i + 1] = hex[r[i] & 15];
    }
    x->request_id[2 * sizeof(r)] = '\0';
}

static void client_address(xchg *x)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(x->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    x->client_addr[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, x->client_addr,
                  sizeof(x->client_addr));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, x->client_addr,
                  sizeof(x->client_addr));
}

/* Headers arrived: check framing and limits that libmicrohttpd 0.9.75 does not
 * enforce itself, then decide. Returns MHD_YES/NO for the handler. */
static enum MHD_Result on_headers(xchg *x, const char *method, const char *version)
{
    worker *w = x->w;
    x->method = method;
    x->gate = gate_ref(w->gate);
    conn_rec *cr = conn_rec_of(x->conn);
    if (cr) {
        cr->x = NULL;
        cr->deadline_ms = 0;
    }
    const cfg_config *c = gate_config(x->gate);
    make_request_id(x);
    client_address(x);
    x->is_head = strcmp(method, "HEAD") == 0;

    gate_header hs[128];
    hdr_collect hc = {.h = hs, .cap = AG_ARRAY_LEN(hs)};
    gate_header *heap = NULL;
    MHD_get_connection_values_n(x->conn, MHD_HEADER_KIND, collect_header, &hc);
    if (hc.n > c->limits.max_headers || hc.n > MAX_REQ_HEADERS_HARD)
        return reject_now(x, 431, "request_header_fields_too_large", "limit_headers", true);
    if (hc.bytes > c->limits.max_header_bytes)
        return reject_now(x, 431, "request_header_fields_too_large", "limit_headers", true);
    if (hc.n > hc.cap) {
        heap = calloc(hc.n, sizeof(*heap));
        if (!heap)
            return MHD_NO;
        hdr_collect again = {.h = heap, .cap = hc.n};
        MHD_get_connection_values_n(x->conn, MHD_HEADER_KIND, collect_header, &again);
        hc = again;
    }
    enum MHD_Result ret = MHD_YES;
    if (hc.bad_name) {
        ret = reject_now(x, 400, "bad_request", "bad_header_name", true);
        goto out;
    }
    if (hc.bad_value) {
        ret = reject_now(x, 400, "bad_request", "bad_header_value", true);
        goto out;
    }
    if ((strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && hc.n_host != 1) || hc.n_host > 1 ||
        hc.bad_host) {
        ret = reject_now(x, 400, "bad_request", "bad_host", true);
        goto out;
    }
    if (hc.n_te > 0 && hc.n_cl > 0) {
        ret = reject_now(x, 400, "bad_request", "framing_te_and_cl", true);
        goto out;
    }
    if (hc.n_te > 0) {
        /* MHD 0.9.75 only recognises the exact value "chunked"; anything else
         * would be read as a body that lasts until the client closes. An
         * HTTP/1.0 message with Transfer-Encoding has faulty framing. */
        int v = hc.n_te > 1 || strcmp(version, MHD_HTTP_VERSION_1_1) != 0 ? 400 : te_verdict(hc.te);
        if (v == 0 && strcasecmp(hc.te, "chunked") != 0)
            v = 400;
        if (v != 0) {
            ret = reject_now(x, v, v == 501 ? "not_implemented" : "bad_request", "framing_bad_te",
                             true);
            goto out;
        }
    }
    x->body_declared = 0;
    if (hc.n_cl > 1) {
        ret = reject_now(x, 400, "bad_request", "framing_bad_content_length", true);
        goto out;
    }
    if (hc.n_cl == 1) {
        const char *v = hc.cl;
        uint64_t n = 0;
        if (!*v)
            goto bad_cl;
        for (; *v; v++) {
            if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
                goto bad_cl;
            n = n * 10 + (uint64_t)(*v - '0');
        }
        x->body_declared = n;
        x->has_body = n > 0;
    } else if (hc.n_te == 1) {
        x->body_declared = UINT64_MAX;
        x->has_body = true;
    }
    if (c->limits.max_body_bytes && x->body_declared != UINT64_MAX &&
        x->body_declared > c->limits.max_body_bytes) {
        ret = reject_now(x, 413, "payload_too_large", "limit_body", true);
        goto out;
    }

    gate_request req = {
        .method = method,
        .target = x->target,
        .target_len = x->target_len,
        .headers = hc.h,
        .nheaders = hc.n,
    };
    gate_decide(x->gate, w->keys, w->cache, &req, ag_now_wall(), &x->d);
    if (x->d.outcome != GATE_FORWARD) {
        x->state = XS_REJECTED;
        /* 400-class protocol errors close; so does a denial of a request with
         * a large or chunked body, which is never read (libmicrohttpd closes
         * after answering, so it cannot be parsed as the next request). A small
         * declared body is drained and the answer keeps the connection alive. */
        bool proto = x->d.status == 400 || x->d.status == 414 || x->d.status == 431;
        bool big = x->has_body && (x->body_declared == UINT64_MAX || x->body_declared > DRAIN_MAX);
        if (proto || big) {
            x->close_after = true;
            ret = queue_error(x);
        }
        goto out;
    }
    x->state = XS_PROXYING;
    x->hdrs_in = hc.h;
    x->nhdrs_in = hc.n;
    int started = px_start(x);
    x->hdrs_in = NULL;
    x->nhdrs_in = 0;
    if (started != 0) {
        x->state = XS_REJECTED;
        x->d.outcome = GATE_REFUSE;
        x->d.status = 502;
        x->d.error = "bad_gateway";
        x->d.reason = x->upstream_error;
        if (x->has_body) {
            x->close_after = true;
            ret = queue_error(x);
        }
    }
out:
    free(heap);
    return ret;
bad_cl:
    ret = reject_now(x, 400, "bad_request", "framing_bad_content_length", true);
    goto out;
}

static enum MHD_Result on_upload(xchg *x, const char *data, size_t *size)
{
    const cfg_config *c = gate_config(x->gate);
    if (x->state != XS_PROXYING || x->upstream_done) {
        /* Nobody wants these bytes any more; let MHD finish reading them. */
        *size = 0;
        return MHD_YES;
    }
    uint64_t lim = c->limits.max_body_bytes;
    if (lim && x->body_seen + *size > lim) {
        px_abort(x);
        x->upstream_done = true;
        return reject_now(x, 413, "payload_too_large", "limit_body", true);
    }
    xbuf *b = &x->reqbody;
    if (b->len == 0)
        b->off = 0;
    if (xbuf_space(b) < *size && b->off > 0) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    size_t k = xbuf_space(b) < *size ? xbuf_space(b) : *size;
    memcpy(b->p + b->off + b->len, data, k);
    b->len += k;
    x->body_seen += k;
    *size -= k;
    if (*size > 0) {
        x->suspended = true;
        MHD_suspend_connection(x->conn);
    }
    if (x->send_paused && k > 0) {
        x->send_paused = false;
        px_unpause(x);
    }
    return MHD_YES;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **req_cls)
{
    xchg *x = *req_cls;
    if (!x)
        return MHD_NO;
    if (x->state == XS_NEW)
        return on_headers(x, method, version);
    if (x->state == XS_RESPONDED) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (x->state == XS_REJECTED) {
            *upload_data_size = 0;
            return MHD_YES;
        }
        return on_upload(x, upload_data, upload_data_size);
    }
    /* The whole request has been received. */
    if (x->state == XS_REJECTED)
        return queue_error(x);
    x->client_body_done = true;
    if (x->send_paused) {
        x->send_paused = false;
        px_unpause(x);
    }
    if (x->resp_headers_done)
        return queue_proxied(x);
    if (x->upstream_done)
        return queue_upstream_error(x);
    x->suspended = true;
    MHD_suspend_connection(conn);
    return MHD_YES;
}

/* ---- workers --------------------------------------------------------------- */

static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *h = host;
    if (h[0] == '[') {
        h++;
        h[strlen(h) - 1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &ai) != 0 || !ai)
        return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *sl = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int make_listener(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (parse_listen(spec, &ss, &sl) != 0) {
        log_error("listen: cannot parse address %s (want HOST:PORT)", spec);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* One listener per worker: the kernel spreads connections across them. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
        log_error("listen on %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int worker_init(worker *w, srv *s, int id)
{
    const cfg_config *c = gate_config(s->gate);
    w->srv = s;
    w->id = id;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->ep < 0 || w->evfd < 0)
        return -1;
    w->listen_fd = make_listener(c->listen);
    if (w->listen_fd < 0)
        return -1;
    if (px_worker_init(w) != 0)
        return -1;
    w->cache = c->auth.token_cache_entries
                   ? tc_new(c->auth.token_cache_entries, 64u * 1024 * 1024 / (size_t)s->nworkers)
                   : NULL;
    unsigned conn_limit = (unsigned)(c->limits.max_connections / (size_t)s->nworkers);
    if (conn_limit < 1)
        conn_limit = 1;
    /* The per-connection pool holds the whole request head; size it from the
     * configured header limit (default 32 KiB would refuse many-org tokens). */
    /* libmicrohttpd 0.9.75 zeroes the whole pool after every request and keeps
     * it resident for the life of the connection, so its size is both a
     * per-request cost and the memory of every idle keep-alive client. Room
     * for the head plus the per-header bookkeeping, and no more. */
    size_t pool = c->limits.max_header_bytes + 1024 + c->limits.max_headers * 48;
    w->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, 0, NULL, NULL, access_handler, w,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)w->listen_fd, MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb,
        w, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, w, MHD_OPTION_NOTIFY_CONNECTION, conn_cb, w,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool, MHD_OPTION_CONNECTION_LIMIT, conn_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)c->limits.max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((c->limits.idle_timeout_ms + 999) / 1000),
        MHD_OPTION_END);
    if (!w->mhd) {
        log_error("libmicrohttpd failed to start worker %d", id);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    w->mhd_ep = di ? di->epoll_fd : -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)w->mhd_ep};
    if (w->mhd_ep < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, w->mhd_ep, &ev) != 0)
        return -1;
    ev.data.u64 = (uint64_t)w->evfd;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->evfd, &ev) != 0)
        return -1;
    return 0;
}

/* Connection pools are freed on close but glibc keeps the pages; after a wave
 * of closed connections (a burst of clients going away), give them back so RSS
 * follows the connections actually open. At most every few seconds: a trim
 * walks the heap. */
static void maybe_trim(worker *w, int64_t now)
{
    if (w->closed_since_trim < 256 || now - w->last_trim_ms < 5000)
        return;
    w->closed_since_trim = 0;
    w->last_trim_ms = now;
    malloc_trim(0);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    srv *s = w->srv;
    struct epoll_event evs[64];
    bool quiesced = false;
    worker_refresh(w);
    for (;;) {
        int stopping = __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE);
        if (stopping && !quiesced) {
            /* Stop accepting: closing our listener makes new connections
             * fail fast instead of queueing behind a daemon that is leaving. */
            MHD_socket lfd = MHD_quiesce_daemon(w->mhd);
            if (lfd != MHD_INVALID_SOCKET)
                close(lfd);
            w->listen_fd = -1;
            quiesced = true;
        }
        if (stopping) {
            bool idle = w->nx == 0;
            if (stopping > 1 || idle || now_ms() >= s->stop_deadline_ms)
                break;
        }
        int64_t t = conn_list ? 100 : 250;
        MHD_UNSIGNED_LONG_LONG mt;
        if (MHD_get_timeout(w->mhd, &mt) == MHD_YES && (int64_t)mt < t)
            t = (int64_t)mt;
        if (w->curl_deadline_ms >= 0) {
            int64_t ct = w->curl_deadline_ms - now_ms();
            if (ct < t)
                t = ct < 0 ? 0 : ct;
        }
        int n = epoll_wait(w->ep, evs, (int)AG_ARRAY_LEN(evs), (int)t);
        if (n < 0 && errno != EINTR)
            break;
        worker_refresh(w);
        for (int i = 0; i < n; i++) {
            uint64_t tagged = evs[i].data.u64;
            if (tagged & UL_TAG) {
                ul_event(w, (ul_conn *)(uintptr_t)(tagged & ~UL_TAG), evs[i].events);
                continue;
            }
            int fd = (int)tagged;
            if (fd == w->mhd_ep) {
                continue;
            } else if (fd == w->evfd) {
                uint64_t v;
                ssize_t r = read(w->evfd, &v, sizeof(v));
                (void)r;
            } else {
                px_socket_event(w, fd, evs[i].events);
            }
        }
        if (w->curl_deadline_ms >= 0 && now_ms() >= w->curl_deadline_ms)
            px_timeout(w);
        px_drain_messages(w);
        px_check_deadlines(w, now_ms());
        conn_sweep(w, now_ms());
        maybe_trim(w, now_ms());
        MHD_run(w->mhd);
        px_drain_messages(w);
    }
    /* Suspended connections must be resumed before the daemon is stopped. */
    for (xchg *x = w->active; x; x = x->next)
        srv_resume(x);
    px_worker_cleanup(w);
    MHD_stop_daemon(w->mhd);
    w->mhd = NULL;
    __atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void worker_destroy(worker *w)
{
    if (w->mhd)
        MHD_stop_daemon(w->mhd);
    if (w->multi)
        px_worker_cleanup(w);
    if (w->cache)
        tc_free(w->cache);
    for (int i = 0; i < w->nbuf_pool; i++)
        free(w->buf_pool[i]);
    w->nbuf_pool = 0;
    gate_unref(w->gate);
    keys_snapshot_unref(w->keys);
    if (w->ep >= 0)
        close(w->ep);
    if (w->evfd >= 0)
        close(w->evfd);
}

static void wake_all(srv *s)
{
    uint64_t one = 1;
    for (int i = 0; i < s->nworkers; i++) {
        ssize_t r = write(s->workers[i].evfd, &one, sizeof(one));
        (void)r;
    }
}

static bool str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Settings read once at start-up (sockets, threads, the key source, the log
 * target) are not changed by a reload; say so instead of letting the new
 * policy hash suggest that they were. */
static void warn_restart_only(const cfg_config *o, const cfg_config *n)
{
    struct {
        const char *key;
        bool changed;
    } keys[] = {
        {"listen", str_differs(o->listen, n->listen)},
        {"admin_listen", str_differs(o->admin_listen, n->admin_listen)},
        {"workers", o->workers != n->workers},
        {"log.access_log", str_differs(o->log.access_log, n->log.access_log)},
        {"log.level", str_differs(o->log.level, n->log.level)},
        {"auth.auth_url", str_differs(o->auth.auth_url, n->auth.auth_url)},
        {"auth.api_key_env", str_differs(o->auth.api_key_env, n->auth.api_key_env)},
        {"auth.api_key_file", str_differs(o->auth.api_key_file, n->auth.api_key_file)},
        {"auth.api_base_url", str_differs(o->auth.api_base_url, n->auth.api_base_url)},
        {"auth.verifier_key_file",
         str_differs(o->auth.verifier_key_file, n->auth.verifier_key_file)},
        {"auth.verifier_key_pem", str_differs(o->auth.verifier_key_pem, n->auth.verifier_key_pem)},
        {"auth.issuer", str_differs(o->auth.issuer, n->auth.issuer)},
        {"auth.ca_file", str_differs(o->auth.ca_file, n->auth.ca_file)},
        {"auth.refresh_interval", o->auth.refresh_interval_s != n->auth.refresh_interval_s},
        {"auth.previous_key_grace", o->auth.previous_key_grace_s != n->auth.previous_key_grace_s},
        {"auth.fetch_timeout_ms", o->auth.fetch_timeout_ms != n->auth.fetch_timeout_ms},
        {"auth.token_cache_entries", o->auth.token_cache_entries != n->auth.token_cache_entries},
        {"limits.max_connections", o->limits.max_connections != n->limits.max_connections},
        {"limits.max_connections_per_ip",
         o->limits.max_connections_per_ip != n->limits.max_connections_per_ip},
        {"limits.idle_timeout_ms", o->limits.idle_timeout_ms != n->limits.idle_timeout_ms},
        /* Lowering these applies at once; raising them needs bigger
         * per-connection buffers, which are sized at start-up. */
        {"limits.max_header_bytes (raised)",
         n->limits.max_header_bytes > o->limits.max_header_bytes},
        {"limits.max_uri_bytes (raised)", n->limits.max_uri_bytes > o->limits.max_uri_bytes},
    };
    for (size_t i = 0; i < AG_ARRAY_LEN(keys); i++)
        if (keys[i].changed)
            log_warn("reload: %s changed, but it only takes effect on restart", keys[i].key);
}

static void reload(srv *s)
{
    cfg_config *cfg = NULL;
    cfg_diags diags = {0};
    char err[256];
    sd_notify_msg("RELOADING=1");
    if (cfg_load_file(s->config_path, &cfg, &diags) != 0) {
        met_reload(false);
        sd_notify_msg("READY=1\nSTATUS=reload failed; previous policy still active");
        /* The verdict line carries the first problem, so a reader (or a log
         * pipeline) never sees it without a location; any others follow, one
         * per line. */
        for (size_t i = 0; i < diags.nerrors; i++)
            log_error("%s%s", i == 0 ? "reload failed, keeping the running policy: " : "",
                      diags.errors[i]);
        cfg_diags_free(&diags);
        return;
    }
    /* Same as at start-up: a lint warning in the new file must not go unseen
     * just because it arrived by SIGHUP. */
    for (size_t i = 0; i < diags.nwarnings; i++)
        log_warn("%s", diags.warnings[i]);
    cfg_diags_free(&diags);
    gate *g = NULL;
    char hash[17];
    memcpy(hash, cfg->hash, sizeof(hash));
    if (gate_new(cfg, &g, err, sizeof(err)) != 0) {
        met_reload(false);
        sd_notify_msg("READY=1\nSTATUS=reload failed; previous policy still active");
        log_error("reload failed, keeping the running policy: %s", err);
        cfg_free(cfg);
        return;
    }
    warn_restart_only(gate_config(s->gate), gate_config(g));
    pthread_mutex_lock(&s->mu);
    gate *old = s->gate;
    s->gate = g;
    memcpy(s->policy_hash, hash, sizeof(s->policy_hash));
    s->policy_loaded_at = ag_now_wall();
    __atomic_add_fetch(&s->gate_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->mu);
    gate_unref(old);
    wake_all(s);
    met_reload(true);
    sd_notify_msg("READY=1\nSTATUS=serving");
    log_info("reloaded %s (policy %s)", s->config_path, hash);
}

static void admin_status(void *ctx, adm_status *st)
{
    srv *s = ctx;
    keys_status ks;
    keys_get_status(s->keys, &ks);
    memset(st, 0, sizeof(*st));
    st->keys_ready = ks.ready;
    st->policy_loaded = true;
    st->draining = __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE) != 0;
    pthread_mutex_lock(&s->mu);
    memcpy(st->policy_hash, s->policy_hash, sizeof(st->policy_hash));
    st->policy_loaded_at = s->policy_loaded_at;
    pthread_mutex_unlock(&s->mu);
    memcpy(st->key_fingerprint, ks.fingerprint, sizeof(st->key_fingerprint));
    snprintf(st->key_error, sizeof(st->key_error), "%s", ks.last_error);
    st->gauges.keys_ready = ks.ready;
    st->gauges.key_loaded_at = ks.loaded_at;
    st->gauges.key_refresh_ok = ks.refresh_ok;
    st->gauges.key_refresh_failures = ks.refresh_failures;
    st->gauges.policy_hash = st->policy_hash;
    st->gauges.policy_loaded_at = st->policy_loaded_at;
    st->gauges.version = AUTHGATE_VERSION;
}

int srv_main(const char *config_path, const char *pid_file)
{
    int rc = 1;
    srv s = {0};
    cfg_config *cfg = NULL;
    cfg_diags diags = {0};
    char err[512];
    pthread_t *threads = NULL;
    int started = 0;
    const char *pid_written = NULL;
    pthread_mutex_init(&s.mu, NULL);

    if (cfg_load_file(config_path, &cfg, &diags) != 0) {
        cfg_diags_print(&diags, stderr);
        goto out;
    }
    for (size_t i = 0; i < diags.nwarnings; i++)
        log_warn("%s", diags.warnings[i]);
    log_level lvl;
    if (cfg->log.level && log_level_from_name(cfg->log.level, &lvl) == 0)
        log_set_level(lvl);
    if (log_access_open(cfg->log.access_log) != 0) {
        log_error("cannot open access log %s: %s", cfg->log.access_log, strerror(errno));
        goto out;
    }
    s.config_path = ag_strdup(config_path);
    char *tmp = ag_strdup(config_path);
    s.config_dir = ag_strdup(tmp ? dirname(tmp) : ".");
    free(tmp);
    if (keys_start(&cfg->auth, s.config_dir, &s.keys, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    s.nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s.nworkers < 1)
        s.nworkers = 1;
    char listen_spec[256];
    snprintf(listen_spec, sizeof(listen_spec), "%s", cfg->listen);
    char hash[17];
    memcpy(hash, cfg->hash, sizeof(hash));
    memcpy(s.policy_hash, cfg->hash, sizeof(s.policy_hash));
    s.policy_loaded_at = ag_now_wall();
    char admin_spec[256] = "";
    if (cfg->admin_listen)
        snprintf(admin_spec, sizeof(admin_spec), "%s", cfg->admin_listen);
    if (gate_new(cfg, &s.gate, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    cfg = NULL; /* owned by the gate */
    s.gate_gen = 1;

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (met_init(s.nworkers + 1) != 0)
        goto out;
    if (admin_spec[0] && adm_start(admin_spec, admin_status, &s, &s.admin, err, sizeof(err)) != 0) {
        log_error("admin listener: %s", err);
        goto out;
    }
    /* The pid file exists before any listener opens: whoever sees the port
     * answer (a supervisor, a test, `authgate reload`) can rely on it. */
    if (pid_file) {
        FILE *pf = fopen(pid_file, "w");
        bool ok = pf && fprintf(pf, "%ld\n", (long)getpid()) > 0;
        if (pf && fclose(pf) != 0)
            ok = false;
        if (!ok) {
            log_error("cannot write pid file %s: %s", pid_file, strerror(errno));
            pid_file = NULL;
            goto out;
        }
        pid_written = pid_file;
    }
    s.workers = calloc((size_t)s.nworkers, sizeof(worker));
    threads = calloc((size_t)s.nworkers, sizeof(pthread_t));
    if (!s.workers || !threads)
        goto out;
    for (int i = 0; i < s.nworkers; i++) {
        s.workers[i].ep = s.workers[i].evfd = -1;
        if (worker_init(&s.workers[i], &s, i) != 0) {
            log_error("cannot start worker %d", i);
            goto out;
        }
    }
    for (int i = 0; i < s.nworkers; i++) {
        if (pthread_create(&threads[i], NULL, worker_main, &s.workers[i]) != 0)
            goto stop;
        started++;
    }
    log_info("listening on %s with %d workers (policy %s)", listen_spec, s.nworkers, hash);
    if (admin_spec[0])
        log_info("admin listener on %s", admin_spec);
    sd_notify_msg("READY=1\nSTATUS=serving");

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(&s);
            keys_refresh_now(s.keys);
        } else if (sig == SIGUSR1) {
            log_access_reopen();
        } else {
            int prev = __atomic_load_n(&s.stopping, __ATOMIC_ACQUIRE);
            if (prev == 0) {
                sd_notify_msg("STOPPING=1");
                log_info("shutting down: draining in-flight requests (up to %ld ms)",
                         gate_config(s.gate)->shutdown_grace_ms);
                s.stop_deadline_ms = now_ms() + gate_config(s.gate)->shutdown_grace_ms;
            } else {
                log_info("second signal: exiting now");
            }
            __atomic_store_n(&s.stopping, prev + 1, __ATOMIC_RELEASE);
            wake_all(&s);
            if (prev == 0) {
                /* Wait for the drain while still answering a second signal. */
                struct timespec poll = {0, 50 * 1000000};
                for (;;) {
                    siginfo_t si;
                    int r = sigtimedwait(&set, &si, &poll);
                    if (r == SIGTERM || r == SIGINT) {
                        __atomic_store_n(&s.stopping, 2, __ATOMIC_RELEASE);
                        wake_all(&s);
                    }
                    bool all_done = true;
                    for (int i = 0; i < started; i++)
                        if (!__atomic_load_n(&s.workers[i].finished, __ATOMIC_ACQUIRE))
                            all_done = false;
                    if (all_done)
                        break;
                }
            }
            break;
        }
    }
    rc = 0;
stop:
    __atomic_store_n(&s.stopping, 2, __ATOMIC_RELEASE);
    wake_all(&s);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    log_info("stopped");
out:
    if (pid_written)
        unlink(pid_written);
    if (s.admin)
        adm_stop(s.admin);
    if (s.workers)
        for (int i = 0; i < s.nworkers; i++)
            worker_destroy(&s.workers[i]);
    met_shutdown();
    free(s.workers);
    free(threads);
    if (s.gate)
        gate_unref(s.gate);
    if (s.keys)
        keys_stop(s.keys);
    if (cfg)
        cfg_free(cfg);
    cfg_diags_free(&diags);
    free(s.config_path);
    free(s.config_dir);
    log_access_close();
    pthread_mutex_destroy(&s.mu);
    return rc;
}
