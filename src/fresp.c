/* fresp: the answer to one request. The up_callbacks handlers relay the
 * upstream's head and body toward libmicrohttpd (the only writers of the
 * exchange's upstream fields); the gateway's own answers (refusals, upstream
 * errors); the 101 and the hand-off of both sockets to a tunnel. Internal to
 * the front end (frontint.h); runs on the worker's thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cors.h"
#include "fwd.h"
#include "gate.h"
#include "httpx.h"
#include "log.h"
#include "metrics.h"
#include "tun.h"
#include "frontint.h"

/* During a drain every response tells the client to close: the next request
 * of a keep-alive client then goes to a new connection (the next instance)
 * instead of being lost when this one leaves. */
static bool draining(const worker *w)
{
    return __atomic_load_n(&w->srv->stopping, __ATOMIC_ACQUIRE) != 0;
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
void fr_warn_upstream_failure(const xchg *x, up_result r)
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
    int64_t now = ag_now_mono_ms();
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
        fr_warn_upstream_failure(x, r);
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

const up_callbacks fr_upstream_cbs = {
    .on_head = up_on_head,
    .on_body = up_on_body,
    .body_room = up_body_room,
    .body_peek = up_body_peek,
    .body_consume = up_body_consume,
    .on_done = up_on_done,
    .on_upgrade = up_on_upgrade,
};

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

enum MHD_Result fr_queue_error(xchg *x)
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

enum MHD_Result fr_queue_upstream_error(xchg *x)
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
    int64_t now = ag_now_mono_ms();
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
        return fr_queue_upstream_error(x);
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

enum MHD_Result fr_queue_proxied(xchg *x)
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
