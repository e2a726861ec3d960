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

#include "admit.h"
#include "cfgtab.h"
#include "config.h"
#include "conns.h"
#include "fwd.h"
#include "gate.h"
#include "httpx.h"
#include "keys.h"
#include "admin.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "notify.h"
#include "tcache.h"
#include "resolve.h"
#include "upstream.h"
#include "version.h"
#include "worker.h"

/* A denied request with a body up to this size is read and discarded so the
 * connection stays usable; larger or chunked bodies get the answer at once and
 * the connection is closed, so an unauthenticated client cannot make us read
 * (or be confused by) a large body. */
#define DRAIN_MAX (64 * 1024)
/* A chunked body found over max_body_bytes mid-stream: how much more is read
 * (and dropped) so the 413 can still be sent. */
#define OVERFLOW_DRAIN_MAX (1024 * 1024)

typedef struct srv {
    char *config_path;
    char *config_dir;
    pthread_mutex_t mu;
    xpolicy *pol;      /* current; guarded by mu */
    gate *gate;        /* pol->gate, for the main thread's reads */
    uint64_t gate_gen; /* atomic */
    rs_resolver *resolver;
    keys_store *keys;
    worker *workers;
    int nworkers;
    int stopping; /* atomic */
    int64_t stop_deadline_ms;
    int64_t drain_start_ms;
    int workers_ready;    /* atomic: workers[] may be woken */
    int listen_fd;        /* the one listening socket, shared by the workers */
    cn_budget *budget;    /* connections open in the whole process */
    char policy_hash[17]; /* guarded by mu */
    int64_t policy_loaded_at;
    adm_server *admin;
} srv;

static void wake_all(srv *s);

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

int64_t now_ms(void)
{
    return (int64_t)(ag_now_mono_ns() / 1000000ull);
}

static xpolicy *xpolicy_ref(xpolicy *p)
{
    if (p)
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
    return p;
}

static void xpolicy_unref(xpolicy *p)
{
    if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    gate_unref(p->gate);
    for (size_t i = 0; p->ftargets && i < p->ntargets; i++)
        fwd_target_free(&p->ftargets[i]);
    free(p->ftargets);
    free(p->targets);
    fwd_rules_free(p->rules);
    free(p);
}

/* Compile what the transport needs from a configuration, once per load:
 * upstream targets (and their names registered with the resolver). Takes
 * the gate reference. */
static xpolicy *xpolicy_new(gate *g, rs_resolver *resolver, char *err, size_t errlen)
{
    const cfg_config *c = gate_config(g);
    size_t n = c->nupstreams ? c->nupstreams : 1;
    xpolicy *p = calloc(1, sizeof(*p));
    if (!p || !(p->targets = calloc(n, sizeof(up_target))) ||
        !(p->ftargets = calloc(n, sizeof(fwd_target)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(p->rules = fwd_rules_new(c, err, errlen)))
        goto fail;
    p->ntargets = c->nupstreams;
    for (size_t i = 0; i < c->nupstreams; i++) {
        char why[128];
        up_target *t = &p->targets[i];
        if (fwd_target_compile(c->upstreams[i].url, &p->ftargets[i], why, sizeof(why)) != 0 ||
            up_target_compile(c->upstreams[i].url, t, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "upstream %s: %s", c->upstreams[i].name, why);
            goto fail;
        }
        if (!t->https && (t->resolver_id = rs_add(resolver, t->host, t->port)) < 0) {
            snprintf(err, errlen, "upstream %s: cannot register %s with the resolver",
                     c->upstreams[i].name, t->host);
            goto fail;
        }
    }
    p->gate = g;
    p->refs = 1;
    return p;
fail:
    if (p) {
        p->gate = g;
        p->refs = 1;
        xpolicy_unref(p);
    } else {
        gate_unref(g);
    }
    return NULL;
}

static void worker_refresh(worker *w)
{
    srv *s = w->srv;
    uint64_t gg = __atomic_load_n(&s->gate_gen, __ATOMIC_ACQUIRE);
    static __thread uint64_t seen_gate_gen;
    if (gg != seen_gate_gen || !w->pol) {
        pthread_mutex_lock(&s->mu);
        xpolicy *p = xpolicy_ref(s->pol);
        pthread_mutex_unlock(&s->mu);
        xpolicy_unref(w->pol);
        w->pol = p;
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
    xchg *x;                      /* request whose head is pending, or NULL */
    int64_t deadline_ms;          /* 0 = disarmed (head complete, request in progress) */
    bool busy;                    /* a request is in progress (request line seen, not completed) */
    int64_t idle_since;           /* when the last request completed (or the accept) */
    struct sockaddr_storage peer; /* for the connection budget */
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
    free(x->target);
    x->w->nx--;
    free(x);
}

#define CLIENT_TAG (1ull << 61) /* epoll data: a suspended client's socket */

/* While libmicrohttpd has a connection suspended it does not look at the
 * socket, so a client that leaves (an abandoned upload, a client that gives
 * up waiting) would hold its connection and the upstream one until a timeout.
 * We watch the socket for the peer's close ourselves meanwhile. */
static void suspend(xchg *x)
{
    if (x->suspended)
        return;
    x->suspended = true;
    MHD_suspend_connection(x->conn);
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
static void client_gone(xchg *x)
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

static const up_callbacks upstream_cbs = {
    .on_head = up_on_head,
    .on_body = up_on_body,
    .body_room = up_body_room,
    .body_peek = up_body_peek,
    .body_consume = up_body_consume,
    .on_done = up_on_done,
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
        .body = body == UP_BODY_NONE      ? FWD_BODY_NONE
                : body == UP_BODY_CHUNKED ? FWD_BODY_CHUNKED
                                          : FWD_BODY_LENGTH,
        .body_len = x->body_declared,
        .admitted = true,
    };
    if (t->https) {
        if (ag_buf_append(&x->head, x->d.path, x->d.path_len) != 0 ||
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
    /* An upstream failure (502/504) names the upstream too. */
    if (d->route && d->route->upstream && (d->outcome == GATE_FORWARD || x->upstream_error))
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
        const cfg_limits *lim = &gate_config(x->w->pol->gate)->limits;
        cr->busy = false;
        cr->idle_since = now_ms();
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
            r->idle_since = now_ms();
            r->deadline_ms = now_ms() + gate_config(w->pol->gate)->limits.request_timeout_ms;
            const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            if (ci && ci->client_addr)
                memcpy(&r->peer, ci->client_addr,
                       ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                              : sizeof(struct sockaddr_in));
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
        /* The slot was taken at accept; a worker that stopped accepting at
         * the budget starts again. */
        if (cn_release(w->srv->budget, r ? (const struct sockaddr *)&r->peer : NULL))
            wake_all(w->srv);
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

static enum MHD_Result queue_proxied(xchg *x)
{
    long st = x->upstream_status;
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
    if (fwd_resp_headers(p, (size_t)(end - p), relay_header, r) != 0) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    MHD_add_response_header(r, "X-Request-Id", x->request_id);
    if (draining(x->w))
        MHD_add_response_header(r, "Connection", "close");
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
} hdr_collect;

/* Counts every header, keeps as many as fit. */
static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    hdr_collect *c = cls;
    if (!value) {
        value = "";
        value_size = 0;
    }
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
    hdr_collect hc = {.h = hs, .cap = AG_ARRAY_LEN(hs)};
    gate_header *heap = NULL;
    MHD_get_connection_values_n(x->conn, MHD_HEADER_KIND, collect_header, &hc);
    if (hc.n > hc.cap) {
        /* No larger than the connection's pool, which already holds them. */
        heap = calloc(hc.n, sizeof(*heap));
        if (!heap)
            return MHD_NO;
        hdr_collect again = {.h = heap, .cap = hc.n};
        MHD_get_connection_values_n(x->conn, MHD_HEADER_KIND, collect_header, &again);
        hc = again;
    }
    enum MHD_Result ret = MHD_YES;
    adm_request ar = {
        .method = method,
        .version = strcmp(version, MHD_HTTP_VERSION_1_1) == 0 ? ADM_HTTP_11 : ADM_HTTP_10,
        .headers = hc.h,
        .nheaders = hc.n < hc.cap ? hc.n : hc.cap,
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
    free(heap);
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

/* ---- workers --------------------------------------------------------------- */

/* The same reading as `authgate check` (netaddr.c): a host name is resolved. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                        size_t errlen)
{
    return na_listen_addr(spec, ss, sl, err, errlen);
}

/* The one listening socket. Bound without SO_REUSEPORT, so a second daemon
 * (or anything else) on the same address makes this one refuse to start
 * instead of silently sharing the connections. listen() is separate: the
 * caller writes the pid file in between. */
static int bind_listener(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char err[512];
    if (parse_listen(spec, &ss, &sl, err, sizeof(err)) != 0) {
        log_error("listen: %s", err);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("listen on %s: %s", spec, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        if (errno == EADDRINUSE)
            log_error("address already in use: %s (another authgate, or another program, "
                      "listens there)",
                      spec);
        else
            log_error("listen on %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

#define LISTEN_TAG (1ull << 62) /* epoll data of the shared listener */

static void listener_arm(worker *w, bool on)
{
    if (w->accepting == on || w->srv->listen_fd < 0)
        return;
    if (on) {
        /* EPOLLEXCLUSIVE: one worker wakes per new connection. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = LISTEN_TAG};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->srv->listen_fd, &ev) != 0)
            return;
    } else {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, w->srv->listen_fd, NULL);
    }
    w->accepting = on;
}

/* Accept what is waiting, within the process-wide budget: at the budget the
 * listener is disarmed and connections wait in the kernel's backlog until a
 * slot frees (conn_cb wakes the workers). */
static void accept_some(worker *w)
{
    srv *s = w->srv;
    for (int i = 0; i < 32; i++) {
        if (!cn_has_room(s->budget)) {
            listener_arm(w, false);
            return;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: leave the rest in the backlog; retried
                 * on the next loop turn. */
                log_warn("accept: %s (worker %d)", strerror(errno), w->id);
                listener_arm(w, false);
            }
            return;
        }
        cn_verdict v = cn_take(s->budget, (struct sockaddr *)&ss);
        if (v != CN_TAKEN) {
            /* Over max_connections_per_ip, or another worker took the last
             * slot between the check and the accept. */
            close(fd);
            continue;
        }
        if (MHD_add_connection(w->mhd, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
            cn_release(s->budget, (struct sockaddr *)&ss); /* libmicrohttpd closed fd */
    }
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
    if (!(w->up = up_worker_new(w->ep, s->resolver)))
        return -1;
    w->cache = c->auth.token_cache_entries
                   ? tc_new(c->auth.token_cache_entries, 64u * 1024 * 1024 / (size_t)s->nworkers)
                   : NULL;
    /* The per-connection pool holds the whole request head; size it from the
     * configured header limit (default 32 KiB would refuse many-org tokens). */
    /* libmicrohttpd 0.9.75 zeroes the whole pool after every request and keeps
     * it resident for the life of the connection, so its size is both a
     * per-request cost and the memory of every idle keep-alive client. Room
     * for the head plus the per-header bookkeeping, and no more. */
    size_t pool = c->limits.max_header_bytes + 1024 + c->limits.max_headers * 48;
    w->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET, 0,
        NULL, NULL, access_handler, w, MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, w,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, w, MHD_OPTION_NOTIFY_CONNECTION, conn_cb, w,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        /* The process-wide budget (conns.h) is the limit; this is a backstop. */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->limits.max_connections + 16,
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

/* During a drain, a keep-alive connection with no request in progress is
 * closed once it has been idle this long (counted from its last response or
 * from the start of the drain, whichever is later): a client that is about
 * to send its next request gets it answered (with Connection: close) rather
 * than lost in a close that crosses it. */
#define DRAIN_IDLE_MS 500

static void drain_idle(worker *w, int64_t now, int64_t drain_start)
{
    for (conn_rec *r = conn_list; r; r = r->next) {
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

static void *worker_main(void *arg)
{
    worker *w = arg;
    srv *s = w->srv;
    struct epoll_event evs[64];
    worker_refresh(w);
    listener_arm(w, true);
    for (;;) {
        int stopping = __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE);
        if (stopping) {
            /* Drain: no new connections (the main thread shut the listener);
             * every response now says Connection: close; idle keep-alive
             * connections are closed once idle for DRAIN_IDLE_MS. Leave when
             * no connection is left, the grace is over, or on a second
             * signal. */
            listener_arm(w, false);
            drain_idle(w, now_ms(), s->drain_start_ms);
            if (stopping > 1 || w->open_conns == 0 || now_ms() >= s->stop_deadline_ms)
                break;
        } else if (!w->accepting && cn_has_room(s->budget)) {
            listener_arm(w, true);
        }
        int64_t t = conn_list ? 100 : 250;
        MHD_UNSIGNED_LONG_LONG mt;
        if (MHD_get_timeout(w->mhd, &mt) == MHD_YES && (int64_t)mt < t)
            t = (int64_t)mt;
        t = up_sweep(w->up, now_ms(), t);
        int n = epoll_wait(w->ep, evs, (int)AG_ARRAY_LEN(evs), (int)t);
        if (n < 0 && errno != EINTR)
            break;
        worker_refresh(w);
        xchg *gone[AG_ARRAY_LEN(evs)];
        int ngone = 0;
        for (int i = 0; i < n; i++) {
            uint64_t tagged = evs[i].data.u64;
            if (up_owns_event(tagged)) {
                up_event(w->up, tagged, evs[i].events);
                continue;
            }
            if (tagged & CLIENT_TAG) {
                /* Handled after the batch: dropping the upstream side now
                 * would free a connection a later event of this batch names. */
                gone[ngone++] = (xchg *)(uintptr_t)(tagged & ~CLIENT_TAG);
                continue;
            }
            if (tagged == LISTEN_TAG) {
                accept_some(w);
                continue;
            }
            int fd = (int)tagged;
            if (fd == w->mhd_ep) {
                continue;
            } else if (fd == w->evfd) {
                uint64_t v;
                ssize_t r = read(w->evfd, &v, sizeof(v));
                (void)r;
            }
        }
        for (int i = 0; i < ngone; i++)
            client_gone(gone[i]);
        up_sweep(w->up, now_ms(), 0);
        conn_sweep(w, now_ms());
        maybe_trim(w, now_ms());
        MHD_run(w->mhd);
    }
    /* Exchanges still waiting on an upstream end here: their upstream side is
     * dropped and their connection resumed (libmicrohttpd cannot stop with a
     * suspended connection). */
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
    up_worker_free(w->up);
    w->up = NULL;
    MHD_stop_daemon(w->mhd);
    w->mhd = NULL;
    __atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void worker_destroy(worker *w)
{
    if (w->mhd)
        MHD_stop_daemon(w->mhd);
    up_worker_free(w->up);
    w->up = NULL;
    if (w->cache)
        tc_free(w->cache);
    for (int i = 0; i < w->nbuf_pool; i++)
        free(w->buf_pool[i]);
    w->nbuf_pool = 0;
    xpolicy_unref(w->pol);
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

/* The resolver has a new answer: exchanges waiting for a name retry. */
static void resolver_answered(void *ctx)
{
    srv *s = ctx;
    if (__atomic_load_n(&s->workers_ready, __ATOMIC_ACQUIRE))
        wake_all(s);
}

static void warn_one_restart_only(const char *key, void *ctx)
{
    (void)ctx;
    log_warn("reload: %s changed, but it only takes effect on restart", key);
}

/* Settings read once at start-up (sockets, threads, the key source, the log
 * target) are not changed by a reload; say so instead of letting the new
 * policy hash suggest that they were. Which keys those are is in the key
 * table (cfgtab.c), not here. */
static void warn_restart_only(const cfg_config *o, const cfg_config *n)
{
    cfg_restart_only_changes(o, n, warn_one_restart_only, NULL);
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
    xpolicy *np = xpolicy_new(g, s->resolver, err, sizeof(err));
    if (!np) {
        met_reload(false);
        sd_notify_msg("READY=1\nSTATUS=reload failed; previous policy still active");
        log_error("reload failed, keeping the running policy: %s", err);
        return;
    }
    warn_restart_only(gate_config(s->gate), gate_config(g));
    pthread_mutex_lock(&s->mu);
    xpolicy *old = s->pol;
    s->pol = np;
    s->gate = g;
    memcpy(s->policy_hash, hash, sizeof(s->policy_hash));
    s->policy_loaded_at = ag_now_wall();
    __atomic_add_fetch(&s->gate_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->mu);
    xpolicy_unref(old);
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
    srv s = {.listen_fd = -1};
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
    if (!(s.resolver = rs_new(30000, resolver_answered, &s))) {
        log_error("cannot start the resolver");
        goto out;
    }
    gate *g0 = NULL;
    if (gate_new(cfg, &g0, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    cfg = NULL; /* owned by the gate */
    if (!(s.pol = xpolicy_new(g0, s.resolver, err, sizeof(err)))) {
        log_error("%s", err);
        goto out;
    }
    s.gate = g0;
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
    /* Bound first (a second instance stops here, before touching the pid
     * file), listening last: the pid file exists before any connection can
     * be accepted, so whoever sees the port answer (a supervisor, a test,
     * `authgate reload`) can rely on it. */
    if ((s.listen_fd = bind_listener(listen_spec)) < 0)
        goto out;
    if (!(s.budget = cn_new(gate_config(s.gate)->limits.max_connections,
                            gate_config(s.gate)->limits.max_connections_per_ip)))
        goto out;
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
    if (listen(s.listen_fd, 1024) != 0) {
        log_error("listen on %s: %s", listen_spec, strerror(errno));
        goto out;
    }
    __atomic_store_n(&s.workers_ready, 1, __ATOMIC_RELEASE);
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
            rs_resolve_now(s.resolver);
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
                s.drain_start_ms = now_ms();
            } else {
                log_info("second signal: exiting now");
            }
            __atomic_store_n(&s.stopping, prev + 1, __ATOMIC_RELEASE);
            /* New connections are refused at once from here on, instead of
             * queueing behind a daemon that is leaving. */
            if (prev == 0)
                shutdown(s.listen_fd, SHUT_RD);
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
    if (s.listen_fd >= 0)
        close(s.listen_fd);
    cn_free(s.budget);
    free(s.workers);
    free(threads);
    xpolicy_unref(s.pol);
    if (s.resolver)
        rs_free(s.resolver);
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
