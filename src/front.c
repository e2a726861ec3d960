/* front: one request on the proxy listener, as libmicrohttpd's access
 * handler sees it: admission, decision, the request body, the start of the
 * upstream exchange through upstream.h. The answer is fresp.c's, the
 * connection and exchange records fconn.c's (frontint.h). Runs on the
 * worker's thread; nothing here blocks. */

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "admit.h"
#include "fwd.h"
#include "gate.h"
#include "httpx.h"
#include "netaddr.h"
#include "mhdhdr.h"
#include "tun.h"
#include "frontint.h"

/* A denied request with a body up to this size is read and discarded so the
 * connection stays usable; larger or chunked bodies get the answer at once and
 * the connection is closed, so an unauthenticated client cannot make us read
 * (or be confused by) a large body. */
#define DRAIN_MAX (64 * 1024)
/* A chunked body found over max_body_bytes mid-stream: how much more is read
 * (and dropped) so the 413 can still be sent. */
#define OVERFLOW_DRAIN_MAX (1024 * 1024)

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
    x->up = up_start(w->up, &rq, &fr_upstream_cbs, x, &err);
    if (!x->up && !x->upstream_done) {
        unlist(x);
        fr_warn_upstream_failure(x, err);
        x->upstream_res = err;
        x->upstream_error = up_result_reason(err);
        return -1;
    }
    return 0;
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
    na_addr_string(ci ? ci->client_addr : NULL, x->client_addr, sizeof(x->client_addr));
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
            ret = fr_queue_error(x);
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
            ret = fr_queue_error(x);
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
        return fr_queue_error(x);
    x->client_body_done = true;
    if (x->up)
        up_unpause(x->up);
    if (x->resp_headers_done)
        return fr_queue_proxied(x);
    if (x->upstream_done)
        return fr_queue_upstream_error(x);
    suspend(x);
    return MHD_YES;
}
