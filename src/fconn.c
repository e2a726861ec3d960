/* fconn: the front end's records. The exchange of one request (created
 * when libmicrohttpd reports its URI, freed when it reports it complete), the
 * per-connection records (the budget slot, request-head deadlines, idle time
 * for the drain) and their sweeps, the watch on a suspended client's socket,
 * the end of every exchange when the worker stops, and the body buffers.
 * Internal to the front end (frontint.h); runs on the worker's thread. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conns.h"
#include "gate.h"
#include "log.h"
#include "metrics.h"
#include "tun.h"
#include "frontint.h"

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
        conn_arm(cr, ag_now_mono_ms() + gate_config(w->pol->gate)->limits.request_timeout_ms);
    }
    return x;
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
        cr->idle_since = ag_now_mono_ms();
        cr->x = NULL;
        cr->deadline_ms = 0;
        conn_arm(cr, ag_now_mono_ms() + lim->idle_timeout_ms + lim->request_timeout_ms);
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
            r->idle_since = ag_now_mono_ms();
            r->deadline_ms =
                ag_now_mono_ms() + gate_config(w->pol->gate)->limits.request_timeout_ms;
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
