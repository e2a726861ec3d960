/* front: the front-end exchange. libmicrohttpd's callbacks for one request
 * (admission, decision, the upstream exchange through upstream.h, the
 * response), the per-connection records (request-head deadlines, idle time
 * for the drain, the budget slot) and the body buffers. Runs on the worker's
 * thread; nothing here blocks. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "conns.h"
#include "cors.h"
#include "fwd.h"
#include "gate.h"
#include "httpx.h"
#include "log.h"
#include "mhdhdr.h"
#include "metrics.h"
#include "tcache.h"
#include "tun.h"
#include "worker.h"

/* A denied request with a body up to this size is read and discarded so the
 * connection stays usable; larger or chunked bodies get the answer at once and
 * the connection is closed, so an unauthenticated client cannot make us read
 * (or be confused by) a large body. */
#define DRAIN_MAX (64 * 1024)
/* A chunked body found over max_body_bytes mid-stream: how much more is read
 * (and dropped) so the 413 can still be sent. */
#define OVERFLOW_DRAIN_MAX (1024 * 1024)

/* During a drain every response tells the client to close: the next request
 * of a keep-alive client then goes to a new connection (the next instance)
 * instead of being lost when this one leaves. */
static bool draining(const worker *w)
{
    return __atomic_load_n(&w->srv->stopping, __ATOMIC_ACQUIRE) != 0;
}

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

/* ---- request-head deadline (slowloris) ------------------------------------
 * MHD 0.9.75 only has an inactivity timeout, so a client trickling one header
 * byte at a time holds a connection forever. Each connection gets a deadline
 * by which its next request head must be complete: request_timeout_ms from
 * accept or from the request line, idle_timeout_ms + request_timeout_ms after
 * a response on a kept-alive connection. A connection past it is shut down
 * (MHD then sees EOF and closes it). All callbacks run on the worker's thread,
 * so the list is per thread and needs no lock. */

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

/* Most suspensions last one upstream round trip; watching each would cost two
 * epoll_ctl calls per request. A connection still suspended after
 * WATCH_AFTER_MS is watched from then on (front_sweep runs every 100 ms), so
 * a client that leaves is noticed within about a third of a second. */
#define WATCH_AFTER_MS 200

static void watch_client(xchg *x);

void front_sweep(worker *w, int64_t now)
{
    if (now < w->conn_next_sweep_ms)
        return;
    w->conn_next_sweep_ms = now + 100;
    for (xchg *x = w->proxying; x; x = x->next)
        if (x->suspended && x->watch_fd < 0 && now - x->suspended_ms >= WATCH_AFTER_MS)
            watch_client(x);
    for (conn_rec *r = w->conns; r; r = r->next) {
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

void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn)
{
    worker *w = cls;
    /* The canonical-path buffer follows the struct, sized for what this
     * configuration's URI limit can need. */
    size_t path_cap = GATE_PATH_CAP(gate_config(w->pol->gate)->limits.max_uri_bytes);
    if (path_cap > GATE_PATH_MAX)
        path_cap = GATE_PATH_MAX;
    xchg *x = malloc(sizeof(*x) + path_cap);
    if (!x)
        return NULL;
    memset(x, 0, offsetof(xchg, d));
    x->w = w;
    x->conn = conn;
    x->watch_fd = -1;
    x->up_fd = -1;
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
    ag_buf_init(&x->head);
    x->resp_content_length = -1;
    w->nx++;
    conn_rec *cr = conn_rec_of(conn);
    if (cr) {
        cr->busy = true;
        cr->x = x;
        conn_arm(cr, now_ms() + gate_config(w->pol->gate)->limits.request_timeout_ms);
    }
    return x;
}

static void unlist(xchg *x)
{
    if (!x->listed)
        return;
    worker *w = x->w;
    if (x->next)
        x->next->prev = x->prev;
    if (x->prev)
        x->prev->next = x->next;
    else
        w->proxying = x->next;
    x->next = x->prev = NULL;
    x->listed = false;
}

static void xchg_free(xchg *x)
{
    if (x->watch_fd >= 0)
        epoll_ctl(x->w->ep, EPOLL_CTL_DEL, x->watch_fd, NULL);
    up_abort(x->up);
    x->up = NULL;
    unlist(x);
    gate_decision_clear(&x->d);
    xpolicy_unref(x->pol);
    ag_buf_free(&x->resp_hdrs);
    ag_buf_free(&x->head);
    xb_put(x->w, x->reqbody.p);
    xb_put(x->w, x->respbody.p);
    if (x->up_fd >= 0)
        close(x->up_fd); /* a 101 whose tunnel never opened */
    free(x->up_extra);
    if (x->ws_reserved)
        tun_release();
    free(x->target);
    x->w->nx--;
    free(x);
}

/* While libmicrohttpd has a connection suspended it does not look at the
 * socket, so a client that leaves (an abandoned upload, a client that gives
 * up waiting) would hold its connection and the upstream one until a timeout.
 * We watch the socket for the peer's close ourselves meanwhile. */
static void suspend(xchg *x)
{
    if (x->suspended)
        return;
    x->suspended = true;
    x->suspended_ms = now_ms();
    MHD_suspend_connection(x->conn);
}

static void watch_client(xchg *x)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(x->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    struct epoll_event ev = {.events = EPOLLRDHUP, .data.u64 = CLIENT_TAG | (uint64_t)(uintptr_t)x};
    if (epoll_ctl(x->w->ep, EPOLL_CTL_ADD, ci->connect_fd, &ev) == 0)
        x->watch_fd = ci->connect_fd;
}

static void srv_resume(xchg *x)
{
    if (x->watch_fd >= 0) {
        epoll_ctl(x->w->ep, EPOLL_CTL_DEL, x->watch_fd, NULL);
        x->watch_fd = -1;
    }
    if (x->suspended) {
        x->suspended = false;
        MHD_resume_connection(x->conn);
    }
}

/* The client of a suspended exchange closed its end: the upstream side goes
 * at once, and libmicrohttpd, resumed, finds the close and ends the request
 * (logged as aborted). */
void front_client_gone(xchg *x)
{
    up_abort(x->up);
    x->up = NULL;
    unlist(x);
    if (!x->upstream_done) {
        x->upstream_done = true;
        x->upstream_res = UP_ERR_INTERNAL;
    }
    srv_resume(x);
}

/* ---- the upstream callbacks: the only writers of the upstream fields ---- */

static void up_on_head(void *ctx, const up_head *h)
{
    xchg *x = ctx;
    ag_buf_reset(&x->resp_hdrs);
    if (ag_buf_append(&x->resp_hdrs, h->lines, h->lines_len) != 0) {
        /* Out of memory: report it as the exchange's outcome. */
        x->upstream_error = "upstream_internal";
        return;
    }
    x->upstream_status = h->status;
    x->resp_content_length = h->content_length;
    x->resp_headers_done = true;
    x->t_upstream_hdr_ns = ag_now_mono_ns();
    srv_resume(x);
}

static size_t up_body_room(void *ctx)
{
    xchg *x = ctx;
    xbuf *b = &x->respbody;
    if (!b->p)
        return XB_CAP;
    return XB_CAP - b->len;
}

static size_t up_on_body(void *ctx, const char *p, size_t n)
{
    xchg *x = ctx;
    xbuf *b = &x->respbody;
    if (!b->p && !(b->p = xb_get(x->w)))
        return 0;
    if (b->len == 0)
        b->off = 0;
    if (xbuf_space(b) < n && b->off > 0) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    size_t k = xbuf_space(b) < n ? xbuf_space(b) : n;
    memcpy(b->p + b->off + b->len, p, k);
    b->len += k;
    x->resp_bytes += k;
    if (k > 0)
        srv_resume(x);
    return k;
}

static void up_body_peek(void *ctx, const char **p, size_t *n, bool *eof)
{
    xchg *x = ctx;
    xbuf *b = &x->reqbody;
    *p = b->p ? b->p + b->off : NULL;
    *n = b->len;
    *eof = x->client_body_done;
    if (b->len == 0 && !x->client_body_done)
        srv_resume(x); /* the client may be suspended on a full buffer */
}

static void up_body_consume(void *ctx, size_t n)
{
    xchg *x = ctx;
    xbuf *b = &x->reqbody;
    b->off += n;
    b->len -= n;
    if (b->len == 0)
        b->off = 0;
    srv_resume(x); /* room for more of the client's body */
}

/* Upstream failures go to the error log as warnings (operators read
 * `journalctl -p warning` first), at most one line per upstream and second
 * and worker, with a count of the ones held back. */
static void warn_upstream_failure(const xchg *x, up_result r)
{
    static __thread struct {
        const void *key;
        int64_t last_ms;
        unsigned held;
    } slot[32];
    const cfg_upstream *u = x->d.route ? x->d.route->upstream : NULL;
    if (!u)
        return;
    size_t i = ((uintptr_t)u >> 4) % AG_ARRAY_LEN(slot);
    int64_t now = now_ms();
    if (slot[i].key == u && now - slot[i].last_ms < 1000) {
        slot[i].held++;
        return;
    }
    unsigned held = slot[i].key == u ? slot[i].held : 0;
    slot[i].key = u;
    slot[i].last_ms = now;
    slot[i].held = 0;
    size_t ui = (size_t)(u - gate_config(x->gate)->upstreams);
    const char *addr = ui < x->pol->ntargets ? x->pol->targets[ui].hostport : u->url;
    if (held)
        log_warn("upstream %s (%s): %s (%s; %u more since the last line)", u->name, addr,
                 up_result_reason(r), x->request_id, held);
    else
        log_warn("upstream %s (%s): %s (%s)", u->name, addr, up_result_reason(r), x->request_id);
}

static void up_on_done(void *ctx, up_result r)
{
    xchg *x = ctx;
    if (r != UP_OK)
        warn_upstream_failure(x, r);
    x->up = NULL;
    x->upstream_done = true;
    x->upstream_res = r;
    if (r != UP_OK && !x->upstream_error)
        x->upstream_error = up_result_reason(r);
    unlist(x);
    srv_resume(x);
}

/* The upstream switched protocols: keep its socket for the tunnel, which
 * opens once the 101 has reached the client (upgrade_cb). */
static void up_on_upgrade(void *ctx, int fd, const char *extra, size_t n)
{
    xchg *x = ctx;
    if (n > 0 && !(x->up_extra = malloc(n))) {
        close(fd);
        x->upstream_error = "upstream_internal";
        return;
    }
    if (n > 0)
        memcpy(x->up_extra, extra, n);
    x->up_extra_len = n;
    x->up_fd = fd;
}

static const up_callbacks upstream_cbs = {
    .on_head = up_on_head,
    .on_body = up_on_body,
    .body_room = up_body_room,
    .body_peek = up_body_peek,
    .body_consume = up_body_consume,
    .on_done = up_on_done,
    .on_upgrade = up_on_upgrade,
};

/* Start the upstream exchange for an allowed request: 0, or -1 with
 * x->upstream_error set. */
static int start_upstream(xchg *x)
{
    worker *w = x->w;
    const cfg_upstream *u = x->d.route->upstream;
    const cfg_config *c = gate_config(x->gate);
    size_t ui = (size_t)(u - c->upstreams);
    if (ui >= x->pol->ntargets) {
        x->upstream_error = "upstream_internal";
        return -1;
    }
    const up_target *t = &x->pol->targets[ui];
    ag_buf_reset(&x->head);
    up_body body = !x->has_body                     ? UP_BODY_NONE
                   : x->body_declared == UINT64_MAX ? UP_BODY_CHUNKED
                                                    : UP_BODY_LENGTH;
    up_request rq = {
        .target = t,
        .method = x->method,
        .is_head = x->is_head,
        .body = body,
        .body_len = x->body_declared,
        .connect_timeout_ms = u->connect_timeout_ms,
        .timeout_ms = u->timeout_ms,
        .max_head_bytes = c->limits.max_response_header_bytes,
        .ca_file = u->ca_file,
        .upstream_name = u->name,
        .upgrade = x->ws,
    };
    fwd_request in = {
        .method = x->method,
        .headers = x->hdrs_in,
        .nheaders = x->nhdrs_in,
        .path = x->d.path,
        .path_len = x->d.path_len,
        .query = x->d.query,
        .query_len = x->d.query_len,
        .x_user = x->d.x_user,
        .x_org = x->d.x_org,
        .client_addr = x->client_addr,
        .request_id = x->request_id,
        .route = x->d.route,
        .body = body == UP_BODY_NONE      ? FWD_BODY_NONE
                : body == UP_BODY_CHUNKED ? FWD_BODY_CHUNKED
                                          : FWD_BODY_LENGTH,
        .body_len = x->body_declared,
        .admitted = true,
        .websocket = x->ws,
    };
    if (t->https) {
        const char *path;
        size_t path_len;
        if (fwd_path(x->pol->rules, &in, &path, &path_len) != 0 ||
            ag_buf_append(&x->head, path, path_len) != 0 ||
            (x->d.query && (ag_buf_append(&x->head, "?", 1) != 0 ||
                            ag_buf_append(&x->head, x->d.query, x->d.query_len) != 0))) {
            x->upstream_error = "upstream_internal";
            return -1;
        }
        size_t pq = x->head.len;
        if (fwd_build_lines(x->pol->rules, &in, &x->head) != 0) {
            x->upstream_error = "upstream_internal";
            return -1;
        }
        rq.path_query = x->head.p;
        rq.path_query_len = pq;
        rq.lines = x->head.p + pq;
        rq.lines_len = x->head.len - pq;
    } else {
        if (fwd_build_head(x->pol->rules, &x->pol->ftargets[ui], &in, &x->head) != 0) {
            x->upstream_error = "upstream_internal";
            return -1;
        }
        rq.head = x->head.p;
        rq.head_len = x->head.len;
    }
    if (x->has_body && !(x->reqbody.p = xb_get(w))) {
        x->upstream_error = "upstream_internal";
        return -1;
    }
    x->t_upstream_ns = ag_now_mono_ns();
    x->resp_content_length = -1;
    /* Listed before the start: a client may call back at once. */
    x->next = w->proxying;
    x->prev = NULL;
    if (w->proxying)
        w->proxying->prev = x;
    w->proxying = x;
    x->listed = true;
    up_result err = UP_UNSET;
    x->up = up_start(w->up, &rq, &upstream_cbs, x, &err);
    if (!x->up && !x->upstream_done) {
        unlist(x);
        warn_upstream_failure(x, err);
        x->upstream_res = err;
        x->upstream_error = up_result_reason(err);
        return -1;
    }
    return 0;
}

void completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
                  enum MHD_RequestTerminationCode toe)
{
    xchg *x = *req_cls;
    if (!x)
        return;
    *req_cls = NULL;
    conn_rec *cr = conn_rec_of(conn);
    if (cr && x->tunnelled) {
        /* The connection is the tunnel's now: no head deadline, no drain
         * close of an "idle" connection. */
        cr->busy = true;
        cr->x = NULL;
        cr->deadline_ms = 0;
    } else if (cr) {
        const cfg_limits *lim = &gate_config(x->w->pol->gate)->limits;
        cr->busy = false;
        cr->idle_since = now_ms();
        cr->x = NULL;
        cr->deadline_ms = 0;
        conn_arm(cr, now_ms() + lim->idle_timeout_ms + lim->request_timeout_ms);
    }
    alog_request(x, toe);
    xchg_free(x);
}

void conn_cb(void *cls, struct MHD_Connection *conn, void **socket_ctx,
             enum MHD_ConnectionNotificationCode code)
{
    worker *w = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        w->open_conns++;
        met_connections(w->id, 1);
        conn_rec *r = calloc(1, sizeof(*r));
        if (r) {
            r->conn = conn;
            r->idle_since = now_ms();
            r->deadline_ms = now_ms() + gate_config(w->pol->gate)->limits.request_timeout_ms;
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            if (ci && ci->client_addr)
                memcpy(&r->peer, ci->client_addr,
                       ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                              : sizeof(struct sockaddr_in));
            r->next = w->conns;
            if (w->conns)
                w->conns->prev = r;
            w->conns = r;
        }
        *socket_ctx = r;
    } else {
        w->open_conns--;
        w->closed_since_trim++;
        met_connections(w->id, -1);
        conn_rec *r = *socket_ctx;
        /* The slot was taken at accept; a worker that stopped accepting at
         * the budget starts again. */
        if (cn_release(w->srv->budget, r ? (const struct sockaddr *)&r->peer : NULL))
            w->budget_freed = true;
        if (r) {
            if (r->next)
                r->next->prev = r->prev;
            if (r->prev)
                r->prev->next = r->next;
            else
                w->conns = r->next;
            free(r);
            *socket_ctx = NULL;
        }
    }
}

/* ---- responses ----------------------------------------------------------- */

static int relay_header(void *ctx, const char *name, const char *value);

/* The Access-Control-* headers of a route with cors, on every answer:
 * proxied, the gateway's own errors (so the page can read them) and an
 * answered preflight. */
static void add_cors(const xchg *x, struct MHD_Response *r)
{
    const gate_decision *d = &x->d;
    cors_request rq = {
        .origin = d->origin,
        .origin_len = d->origin_len,
        .preflight = d->code == AR_CORS_PREFLIGHT,
        .method = d->cors_method,
        .method_len = d->cors_method_len,
        .req_headers = d->cors_headers,
        .req_headers_len = d->cors_headers_len,
    };
    cors_response_headers(d->cors, &rq, relay_header, r);
}

static enum MHD_Result queue_error(xchg *x)
{
    gate_decision *d = &x->d;
    ag_buf body;
    ag_buf_init(&body);
    enum MHD_Result ret = MHD_NO;
    bool preflight = d->code == AR_CORS_PREFLIGHT; /* 204: no body */
    if (!preflight && gate_error_body(d, &body) != 0)
        goto out;
    struct MHD_Response *r = MHD_create_response_from_buffer(body.len, body.p ? body.p : (char *)"",
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        goto out;
    if (!preflight)
        MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    add_cors(x, r);
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
    if (x->close_after || draining(x->w))
        MHD_add_response_header(r, "Connection", "close");
    x->status = d->status;
    x->state = XS_RESPONDED;
    ret = MHD_queue_response(x->conn, (unsigned)d->status, r);
    MHD_destroy_response(r);
out:
    ag_buf_free(&body);
    return ret;
}

/* Decide to answer ourselves; queued now or when the request is complete. */
static void refuse(xchg *x, int status, const char *error, const char *reason, bool close)
{
    x->d.outcome = GATE_REFUSE;
    x->d.status = status;
    x->d.error = error;
    x->d.reason = reason;
    x->close_after = close;
}

static enum MHD_Result reject_now(xchg *x, int status, const char *error, const char *reason,
                                  bool close)
{
    refuse(x, status, error, reason, close);
    return queue_error(x);
}

static ssize_t body_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    xchg *x = cls;
    xbuf *b = &x->respbody;
    if (b->len > 0) {
        size_t k = xbuf_take(b, buf, max);
        if (x->up)
            up_unpause(x->up);
        return (ssize_t)k;
    }
    if (x->upstream_done) {
        bool complete =
            x->upstream_res == UP_OK && !x->upstream_error &&
            (x->resp_content_length < 0 || (int64_t)x->resp_bytes == x->resp_content_length);
        return complete ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    suspend(x);
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

static int relay_header(void *ctx, const char *name, const char *value)
{
    if (MHD_add_response_header(ctx, name, value) != MHD_YES)
        log_debug("dropped upstream header %s", name);
    return 0;
}

static void tunnel_closed(void *ctx, const tun_stats *st)
{
    tun_record *r = ctx;
    if (r->urh)
        MHD_upgrade_action(r->urh, MHD_UPGRADE_ACTION_CLOSE);
    alog_tunnel(r, st);
    free(r->route);
    free(r->user_id);
    free(r->upstream);
    free(r);
}

/* libmicrohttpd sent the 101 and hands over the client's socket: join it to
 * the upstream's in a tunnel on this worker's epoll. */
static void upgrade_cb(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    (void)req_cls;
    xchg *x = cls;
    worker *w = x->w;
    const cfg_config *c = gate_config(x->gate);
    conn_rec *cr = conn_rec_of(conn);
    if (cr) {
        cr->busy = true;
        cr->deadline_ms = 0;
    }
    x->tunnelled = true;
    x->t_tunnel_ns = ag_now_mono_ns();
    tun_record *r = calloc(1, sizeof(*r));
    const gate_decision *d = &x->d;
    if (r) {
        r->urh = urh;
        memcpy(r->request_id, x->request_id, sizeof(r->request_id));
        memcpy(r->peer, x->client_addr, sizeof(r->peer));
        r->route = d->route ? ag_strdup(d->route->path) : NULL;
        r->user_id = d->user ? ag_strdup(id_user_id(d->user)) : NULL;
        r->upstream = d->route && d->route->upstream ? ag_strdup(d->route->upstream->name) : NULL;
    }
    if (!r || x->up_fd < 0) {
        free(r ? r->route : NULL);
        free(r ? r->user_id : NULL);
        free(r ? r->upstream : NULL);
        free(r);
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return; /* xchg_free closes the upstream socket and frees the slot */
    }
    int64_t now = now_ms();
    int64_t expires = 0;
    if (c->websocket.close_on_token_expiry && d->user && id_user_exp(d->user) > 0) {
        int64_t left_s = id_user_exp(d->user) - ag_now_wall();
        expires = now + (left_s > 0 ? left_s * 1000 : 0);
        if (expires == 0)
            expires = 1;
    }
    tun_open_args a = {
        .client_fd = sock,
        .upstream_fd = x->up_fd,
        .to_upstream = extra_in,
        .to_upstream_len = extra_in_size,
        .to_client = x->up_extra,
        .to_client_len = x->up_extra_len,
        .idle_ms = c->websocket.idle_timeout_ms,
        .expires_ms = expires,
        .on_close = tunnel_closed,
        .ctx = r,
    };
    /* From here the tunnel owns the upstream socket and the max_tunnels slot. */
    x->up_fd = -1;
    x->ws_reserved = false;
    met_tunnel_opened();
    tun_open(w->tuns, &a, now);
    /* The exchange stays until the tunnel closes (libmicrohttpd completes the
     * request then): drop what it no longer needs. */
    free(x->up_extra);
    x->up_extra = NULL;
    x->up_extra_len = 0;
    ag_buf_free(&x->head);
    ag_buf_free(&x->resp_hdrs);
}

/* The upstream's 101: relayed with its end-to-end headers (Sec-WebSocket-*);
 * libmicrohttpd adds Connection: Upgrade, we add the one protocol we tunnel. */
/* Did the upstream's 101 switch to websocket (its Upgrade header)? */
static bool switched_to_websocket(const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && ag_streq_ci(p, (size_t)(colon - p), "upgrade")) {
            const char *v = colon + 1, *ve = eol;
            if (ve > v && ve[-1] == '\r')
                ve--;
            if (fwd_has_token(v, (size_t)(ve - v), "websocket"))
                return true;
        }
        p = eol + 1;
    }
    return false;
}

static enum MHD_Result queue_switch(xchg *x)
{
    if (x->up_fd >= 0 &&
        !switched_to_websocket(x->resp_hdrs.p ? x->resp_hdrs.p : "", x->resp_hdrs.len)) {
        /* A switch to something else than what the client asked for. */
        close(x->up_fd);
        x->up_fd = -1;
        x->upstream_error = "upstream_protocol";
    }
    if (x->up_fd < 0) {
        if (!x->upstream_error)
            x->upstream_error = "upstream_internal";
        return queue_upstream_error(x);
    }
    struct MHD_Response *r = MHD_create_response_for_upgrade(upgrade_cb, x);
    if (!r)
        return MHD_NO;
    const char *p = x->resp_hdrs.p ? x->resp_hdrs.p : "";
    if (fwd_resp_headers(p, x->resp_hdrs.len, relay_header, r) != 0 ||
        MHD_add_response_header(r, "Upgrade", "websocket") != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    MHD_add_response_header(r, "X-Request-Id", x->request_id);
    x->status = 101;
    x->state = XS_RESPONDED;
    enum MHD_Result ret = MHD_queue_response(x->conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result queue_proxied(xchg *x)
{
    long st = x->upstream_status;
    if (st == 101)
        return queue_switch(x);
    bool no_body = x->is_head || st == 204 || st == 304 || (st >= 100 && st < 200);
    /* Content-Length (decided by the client that parsed the head) decides the
     * framing we offer. */
    const char *p = x->resp_hdrs.p ? x->resp_hdrs.p : "";
    const char *end = p + x->resp_hdrs.len;
    struct MHD_Response *r;
    bool whole = x->upstream_done && x->upstream_res == UP_OK && !x->upstream_error &&
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
    /* What may reach the client is fwd's decision, by the one header table. */
    if (fwd_resp_headers_route(x->pol->rules, x->d.route, p, (size_t)(end - p), relay_header, r) !=
        0) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    MHD_add_response_header(r, "X-Request-Id", x->request_id);
    add_cors(x, r);
    if (draining(x->w))
        MHD_add_response_header(r, "Connection", "close");
    x->status = (int)st;
    x->state = XS_RESPONDED;
    enum MHD_Result ret = MHD_queue_response(x->conn, (unsigned)st, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- the access handler -------------------------------------------------- */

static void make_request_id(xchg *x)
{
    static __thread uint64_t state;
    const char *rid = MHD_lookup_connection_value(x->conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t rlen = rid ? strlen(rid) : 0;
    /* A kept id must fit the exchange's field as well. */
    if (rlen >= sizeof(x->request_id))
        rid = NULL;
    hx_request_id(rid, rlen, &state, x->request_id);
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
    x->pol = xpolicy_ref(w->pol);
    x->gate = x->pol->gate;
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
    mh_headers hc;
    if (mh_collect(x->conn, hs, AG_ARRAY_LEN(hs), &hc) != 0)
        return MHD_NO;
    enum MHD_Result ret = MHD_YES;
    adm_request ar = {
        .method = method,
        .version = strcmp(version, MHD_HTTP_VERSION_1_1) == 0 ? ADM_HTTP_11 : ADM_HTTP_10,
        .headers = hc.h,
        .nheaders = hc.n,
    };
    adm_result adm = adm_check(&ar, &c->limits);
    if (adm.outcome != ADM_ADMITTED) {
        ret = reject_now(x, adm.status, adm.error, adm.reason, adm.close);
        goto out;
    }
    x->body_declared = adm.framing == ADM_BODY_CHUNKED ? UINT64_MAX : adm.body_length;
    x->has_body = adm.framing == ADM_BODY_CHUNKED || adm.body_length > 0;

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
    switch (fwd_upgrade_kind(method, ar.version == ADM_HTTP_11, x->has_body, hc.h, hc.n)) {
    case FWD_UPG_NONE:
        break;
    case FWD_UPG_OTHER:
        /* Forwarded as a plain request: Upgrade is hop-by-hop and dropped,
         * and a server that is not asked to switch answers in HTTP/1.1. */
        x->d.reason = reason_name(AR_UPGRADE_NOT_TUNNELLED);
        break;
    case FWD_UPG_WEBSOCKET:
        if (!x->d.route->websocket) {
            ag_reason code = AR_WEBSOCKET_NOT_ALLOWED;
            refuse(x, reason_status(code), reason_error(code), reason_name(code), x->has_body);
            x->state = XS_REJECTED;
            goto out;
        }
        if (!tun_reserve(c->websocket.max_tunnels)) {
            ag_reason code = AR_TUNNEL_LIMIT;
            refuse(x, reason_status(code), reason_error(code), reason_name(code), x->has_body);
            x->state = XS_REJECTED;
            goto out;
        }
        x->ws = true;
        x->ws_reserved = true;
        break;
    }
    x->state = XS_PROXYING;
    x->hdrs_in = hc.h;
    x->nhdrs_in = hc.n;
    int started = start_upstream(x);
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
    free(hc.heap);
    return ret;
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
        up_abort(x->up);
        x->up = NULL;
        unlist(x);
        x->upstream_done = true;
        /* libmicrohttpd cannot queue a response while a body is arriving: the
         * rest is read and dropped, up to OVERFLOW_DRAIN_MAX more, and the
         * 413 goes out when the body ends (then the connection closes). A
         * client that sends more than that is cut off without an answer. */
        refuse(x, 413, "payload_too_large", "limit_body", true);
        x->state = XS_REJECTED;
        x->drain_left = OVERFLOW_DRAIN_MAX;
        x->drain_bounded = true;
        *size = 0;
        return MHD_YES;
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
        suspend(x);
    }
    if (k > 0 && x->up)
        up_unpause(x->up);
    return MHD_YES;
}

enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls)
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
            if (x->drain_bounded) {
                if (*upload_data_size > x->drain_left)
                    return MHD_NO; /* closes without an answer */
                x->drain_left -= *upload_data_size;
            }
            *upload_data_size = 0;
            return MHD_YES;
        }
        return on_upload(x, upload_data, upload_data_size);
    }
    /* The whole request has been received. */
    if (x->state == XS_REJECTED)
        return queue_error(x);
    x->client_body_done = true;
    if (x->up)
        up_unpause(x->up);
    if (x->resp_headers_done)
        return queue_proxied(x);
    if (x->upstream_done)
        return queue_upstream_error(x);
    suspend(x);
    return MHD_YES;
}

/* During a drain, a keep-alive connection with no request in progress is
 * closed once it has been idle this long (counted from its last response or
 * from the start of the drain, whichever is later): a client that is about
 * to send its next request gets it answered (with Connection: close) rather
 * than lost in a close that crosses it. */
#define DRAIN_IDLE_MS 500

void front_drain_idle(worker *w, int64_t now, int64_t drain_start)
{
    for (conn_rec *r = w->conns; r; r = r->next) {
        int64_t since = r->idle_since > drain_start ? r->idle_since : drain_start;
        if (r->busy || now - since < DRAIN_IDLE_MS)
            continue;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci)
            shutdown(ci->connect_fd, SHUT_RDWR);
        r->busy = true; /* once */
    }
}

/* The worker is leaving: exchanges still waiting on an upstream end here,
 * their upstream side dropped and their connection resumed (libmicrohttpd
 * cannot stop with a suspended connection). */
void front_stop(worker *w)
{
    while (w->proxying) {
        xchg *x = w->proxying;
        up_abort(x->up);
        x->up = NULL;
        x->upstream_done = true;
        if (!x->upstream_error)
            x->upstream_error = "upstream_internal";
        unlist(x);
        srv_resume(x);
    }
}
