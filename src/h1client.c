/* h1client: our HTTP/1.1 client for plain http:// upstreams, on the worker's
 * own epoll. libcurl stays the client for https:// upstreams and the key fetch;
 * for the hot path it is too expensive (7.88 writes every request header
 * through its printf engine one byte at a time, measured with callgrind).
 *
 * One connection carries one exchange at a time; finished connections go back
 * to a per-worker idle pool keyed by host and port. Names come from the
 * background resolver (never resolved here); every address of a name is tried
 * before the exchange fails with UP_ERR_CONNECT. */
#include "h1client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpx.h"
#include "log.h"
#include "resolve.h"
#include "upcore.h"

#define H1_RBUF_MIN 16384
#define H1_IDLE_MAX 512  /* pooled connections per upstream and worker */
#define H1_IDLE_MS 30000 /* close pooled connections idle this long */
#define H1_CHUNK_LINE_MAX 1024
#define H1_MAX_RESP_LINES 200

typedef struct h1_pool {
    char key[280]; /* hostport */
    struct h1_conn *idle;
    size_t nidle;
} h1_pool;

enum rstate { R_HEAD, R_BODY_CL, R_BODY_CHUNKED, R_BODY_CLOSE, R_DONE, R_SWITCHED };
enum cstate { C_SIZE, C_DATA, C_DATA_END, C_TRAILER };

typedef struct h1_conn {
    int fd;
    up_worker *uw;
    size_t pool;     /* index into uw->pools */
    up_exchange *ex; /* NULL while idle */
    uint32_t ev;
    bool connecting;
    bool reused;
    bool retried;
    bool keepalive;
    bool got_bytes;
    bool peer_closed; /* RDHUP seen while reading was paused */
    /* request side */
    size_t head_off;
    bool req_done;
    bool final_queued; /* the last-chunk marker of a chunked request is queued */
    char pend[24];
    size_t pend_len, pend_off;
    uint64_t chunk_left;
    /* response side */
    char *rbuf;
    size_t rcap, roff, rlen;
    enum rstate rs;
    enum cstate cs;
    uint64_t remaining;
    int64_t idle_since;
    struct h1_conn *next_idle;
} h1_conn;

static int set_events(h1_conn *c, uint32_t ev)
{
    if (c->ev == ev)
        return 0;
    struct epoll_event e = {.events = ev, .data.u64 = UP_EPOLL_TAG | (uint64_t)(uintptr_t)c};
    if (epoll_ctl(c->uw->ep, EPOLL_CTL_MOD, c->fd, &e) != 0)
        return -1;
    c->ev = ev;
    return 0;
}

static void conn_close(h1_conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(c->uw->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    free(c->rbuf);
    free(c);
}

static h1_pool *pool_for(up_worker *uw, const up_target *t, size_t *idx)
{
    for (size_t i = 0; i < uw->npools; i++) {
        if (strcmp(uw->pools[i].key, t->hostport) == 0) {
            *idx = i;
            return &uw->pools[i];
        }
    }
    h1_pool *arr = realloc(uw->pools, (uw->npools + 1) * sizeof(*arr));
    if (!arr)
        return NULL;
    uw->pools = arr;
    h1_pool *p = &arr[uw->npools];
    memset(p, 0, sizeof(*p));
    snprintf(p->key, sizeof(p->key), "%s", t->hostport);
    *idx = uw->npools++;
    return p;
}

/* Open a socket to address number ex->addr_next and start connecting. */
static h1_conn *conn_open(up_exchange *ex, size_t pool, up_result *err)
{
    up_worker *uw = ex->uw;
    rs_addrs addrs;
    char why[128] = "";
    rs_state st = rs_get(uw->resolver, ex->target->resolver_id, &addrs, why, sizeof(why));
    if (st != RS_READY || addrs.n == 0) {
        *err = UP_ERR_CONNECT;
        return NULL;
    }
    while (ex->addr_next < addrs.n) {
        size_t i = ex->addr_next++;
        h1_conn *c = calloc(1, sizeof(*c));
        if (!c) {
            *err = UP_ERR_INTERNAL;
            return NULL;
        }
        c->uw = uw;
        c->pool = pool;
        c->fd = socket(addrs.a[i].sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            free(c);
            continue;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, (const struct sockaddr *)&addrs.a[i].sa, addrs.a[i].len) != 0) {
            if (errno != EINPROGRESS) {
                close(c->fd);
                free(c);
                continue; /* refused at once: the next address */
            }
            c->connecting = true;
        }
        c->ev = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
        struct epoll_event e = {.events = c->ev, .data.u64 = UP_EPOLL_TAG | (uint64_t)(uintptr_t)c};
        if (epoll_ctl(uw->ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
            close(c->fd);
            free(c);
            *err = UP_ERR_INTERNAL;
            return NULL;
        }
        return c;
    }
    *err = UP_ERR_CONNECT;
    return NULL;
}

static bool more_addresses(up_exchange *ex)
{
    rs_addrs addrs;
    char why[8];
    return rs_get(ex->uw->resolver, ex->target->resolver_id, &addrs, why, sizeof(why)) ==
               RS_READY &&
           ex->addr_next < addrs.n;
}

static void reset_exchange_state(h1_conn *c)
{
    c->head_off = 0;
    c->req_done = false;
    c->final_queued = false;
    c->pend_len = c->pend_off = 0;
    c->chunk_left = 0;
    c->roff = c->rlen = 0;
    c->rs = R_HEAD;
    c->cs = C_SIZE;
    c->remaining = 0;
    c->keepalive = true;
    c->got_bytes = false;
    c->retried = false;
    c->peer_closed = false;
}

static void attach(up_exchange *ex, h1_conn *c)
{
    c->ex = ex;
    ex->conn = c;
    if (c->connecting) /* until connected, the connect timeout is the deadline */
        ex->deadline_ms = ag_now_mono_ms() + ex->connect_timeout_ms;
    else
        up_touch(ex);
}

/* The exchange is over on this connection: pool it or close it. */
static void release(h1_conn *c, bool reusable)
{
    up_worker *uw = c->uw;
    if (c->ex)
        c->ex->conn = NULL;
    c->ex = NULL;
    h1_pool *p = &uw->pools[c->pool];
    if (!reusable || !c->keepalive || !c->req_done || c->rs != R_DONE || c->rlen != 0 ||
        c->peer_closed || p->nidle >= H1_IDLE_MAX || set_events(c, EPOLLIN | EPOLLRDHUP) != 0) {
        conn_close(c);
        return;
    }
    c->idle_since = ag_now_mono_ms();
    c->next_idle = p->idle;
    p->idle = c;
    p->nidle++;
}

static void finish(h1_conn *c, up_result r)
{
    up_exchange *ex = c->ex;
    release(c, r == UP_OK);
    if (ex)
        up_finish(ex, r);
}

static int begin(up_exchange *ex, up_result *err)
{
    up_worker *uw = ex->uw;
    size_t pidx = 0;
    h1_pool *p = pool_for(uw, ex->target, &pidx);
    if (!p) {
        *err = UP_ERR_INTERNAL;
        return -1;
    }
    h1_conn *c = NULL;
    if (p->idle) {
        c = p->idle;
        p->idle = c->next_idle;
        p->nidle--;
        c->next_idle = NULL;
        c->reused = true;
    }
    if (!c && !(c = conn_open(ex, pidx, err)))
        return -1;
    reset_exchange_state(c);
    attach(ex, c);
    if (!c->connecting)
        h1_event(uw, c, EPOLLOUT);
    return 0;
}

int h1_start(up_exchange *ex, const up_request *rq, up_result *err)
{
    /* The front end keeps the head alive until the exchange ends (upstream.h);
     * a retry on a fresh connection sends the same bytes again. */
    ex->head = rq->head;
    ex->head_len = rq->head_len;
    rs_addrs addrs;
    char why[160] = "";
    rs_state st = rs_get(ex->uw->resolver, ex->target->resolver_id, &addrs, why, sizeof(why));
    up_link(ex);
    if (st == RS_UNKNOWN) {
        /* The first answer for this name is still on its way: wait for it
         * (bounded by the connect timeout), never for DNS on this thread. */
        ex->waiting = true;
        ex->next_wait = ex->uw->waiting_dns;
        ex->uw->waiting_dns = ex;
        ex->deadline_ms = ag_now_mono_ms() + ex->connect_timeout_ms;
        return 0;
    }
    if (st != RS_READY) {
        log_warn("upstream %s: cannot resolve %s: %s", ex->upstream_name ? ex->upstream_name : "?",
                 ex->target->host, why);
        *err = UP_ERR_CONNECT;
        return -1;
    }
    return begin(ex, err);
}

static void unwait(up_exchange *ex)
{
    if (!ex->waiting)
        return;
    for (up_exchange **pp = &ex->uw->waiting_dns; *pp; pp = &(*pp)->next_wait) {
        if (*pp == ex) {
            *pp = ex->next_wait;
            break;
        }
    }
    ex->waiting = false;
    ex->next_wait = NULL;
}

/* Exchanges that waited for a first answer: start those whose name resolved. */
void h1_retry_waiting(up_worker *uw)
{
    up_exchange *ex = uw->waiting_dns;
    while (ex) {
        up_exchange *next = ex->next_wait;
        rs_addrs addrs;
        char why[160] = "";
        rs_state st = rs_get(uw->resolver, ex->target->resolver_id, &addrs, why, sizeof(why));
        if (st != RS_UNKNOWN) {
            unwait(ex);
            up_result err = UP_ERR_CONNECT;
            if (st != RS_READY)
                log_warn("upstream %s: cannot resolve %s: %s",
                         ex->upstream_name ? ex->upstream_name : "?", ex->target->host, why);
            if (st != RS_READY || begin(ex, &err) != 0)
                up_finish(ex, err);
        }
        ex = next;
    }
}

/* Write what we can: head, then body bytes the front end has. Returns 0 when
 * done or paused, 1 when the socket is full, -1 after finishing the exchange. */
static int do_write(h1_conn *c)
{
    up_exchange *ex = c->ex;
    bool blocked = false;
    while (!blocked && !c->req_done) {
        if (c->head_off < ex->head_len) {
            ssize_t n =
                send(c->fd, ex->head + c->head_off, ex->head_len - c->head_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    blocked = true;
                    continue;
                }
                goto broken;
            }
            c->head_off += (size_t)n;
            up_touch(ex);
            continue;
        }
        if (c->pend_off < c->pend_len) {
            ssize_t n = send(c->fd, c->pend + c->pend_off, c->pend_len - c->pend_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    blocked = true;
                    continue;
                }
                goto broken;
            }
            c->pend_off += (size_t)n;
            continue;
        }
        if (ex->body == UP_BODY_NONE) {
            c->req_done = true;
            break;
        }
        const char *p = NULL;
        size_t avail = 0;
        bool eof = false;
        ex->cb.body_peek(ex->ctx, &p, &avail, &eof);
        bool chunked = ex->body == UP_BODY_CHUNKED;
        if (chunked && c->chunk_left == 0 && avail > 0) {
            c->chunk_left = avail;
            c->pend_len = (size_t)snprintf(c->pend, sizeof(c->pend), "%zx\r\n", avail);
            c->pend_off = 0;
            continue;
        }
        if (avail > 0) {
            size_t want = avail;
            if (chunked && want > c->chunk_left)
                want = (size_t)c->chunk_left;
            ssize_t n = send(c->fd, p, want, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    blocked = true;
                    continue;
                }
                goto broken;
            }
            ex->cb.body_consume(ex->ctx, (size_t)n);
            up_touch(ex);
            if (chunked) {
                c->chunk_left -= (uint64_t)n;
                if (c->chunk_left == 0) {
                    memcpy(c->pend, "\r\n", 2);
                    c->pend_len = 2;
                    c->pend_off = 0;
                }
            }
            continue;
        }
        if (!eof) {
            ex->send_paused = true;
            break;
        }
        if (chunked && !c->final_queued) {
            c->final_queued = true;
            memcpy(c->pend, "0\r\n\r\n", 5);
            c->pend_len = 5;
            c->pend_off = 0;
            continue;
        }
        c->req_done = true;
    }
    return blocked ? 1 : 0;
broken:
    finish(c, c->got_bytes ? UP_ERR_RESET : UP_ERR_CONNECT);
    return -1;
}

/* A pooled connection the upstream closed just as we reused it: nothing of the
 * response arrived and no body was streamed, so sending the same request again
 * on a new connection is safe. */
static int retry_fresh(h1_conn *old)
{
    up_exchange *ex = old->ex;
    up_result err = UP_ERR_CONNECT;
    ex->addr_next = 0;
    h1_conn *c = conn_open(ex, old->pool, &err);
    if (!c)
        return -1;
    reset_exchange_state(c);
    c->retried = true;
    old->ex = NULL;
    conn_close(old);
    attach(ex, c);
    return 0;
}

/* Parse a complete response head in c->rbuf[roff .. roff+hlen) and report it.
 * Returns UP_OK, or the failure. */
static up_result parse_head(h1_conn *c, size_t hlen, bool *interim)
{
    up_exchange *ex = c->ex;
    const char *p = c->rbuf + c->roff;
    const char *end = p + hlen;
    *interim = false;
    const char *eol = memchr(p, '\n', hlen);
    /* Strict status line: HTTP/1.x SP 3DIGIT SP (RFC 9112 4). Anything after
     * the three digits but a space ("2000") is not a status we can relay. */
    if (!eol || eol - p < 13 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ' || p[12] != ' ')
        return UP_ERR_PROTOCOL;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return UP_ERR_PROTOCOL;
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100 || status > 599)
        return UP_ERR_PROTOCOL;
    bool switching = false;
    if (status < 200) {
        /* A 101 answers only a head that asked for a switch: to any other
         * request it would turn the connection into something we cannot
         * relay as HTTP. */
        if (status == 101 && !ex->upgrade)
            return UP_ERR_PROTOCOL;
        if (status != 101) {
            *interim = true;
            return UP_OK;
        }
        switching = true;
    }
    bool http10 = p[7] == '0';
    ag_buf *out = &ex->resp; /* reused: the h1 client keeps no other head copy */
    ag_buf_reset(out);
    size_t nlines = 0;
    bool conn_close_hdr = false;
    for (const char *line = eol + 1; line < end;) {
        const char *le = memchr(line, '\n', (size_t)(end - line));
        if (!le)
            le = end;
        size_t ll = (size_t)(le - line);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            break;
        if (line[0] == ' ' || line[0] == '\t')
            return UP_ERR_PROTOCOL; /* obsolete line folding */
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line || !hx_valid_header_name(line, (size_t)(colon - line)))
            return UP_ERR_PROTOCOL;
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1;
        const char *ve = line + ll;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (ag_streq_ci(line, nl, "connection")) {
            for (const char *q = v; q + 5 <= ve; q++)
                if (ag_streq_ci(q, 5, "close"))
                    conn_close_hdr = true;
        }
        if (out->len + ll + 2 > ex->max_head_bytes || ++nlines > H1_MAX_RESP_LINES)
            return UP_ERR_HEADERS_BIG;
        if (ag_buf_append(out, line, ll) != 0 || ag_buf_append(out, "\r\n", 2) != 0)
            return UP_ERR_INTERNAL;
        line = le + 1;
    }
    if (http10 || conn_close_hdr)
        c->keepalive = false;
    if (switching) {
        if (http10)
            return UP_ERR_PROTOCOL;
        /* No body and no framing: what follows the head is the new protocol. */
        c->rs = R_SWITCHED;
        c->keepalive = false;
        up_head sh = {.status = 101,
                      .lines = out->p ? out->p : "",
                      .lines_len = out->len,
                      .nlines = nlines,
                      .content_length = 0};
        ex->cb.on_head(ex->ctx, &sh);
        return UP_OK;
    }
    /* Exactly one "chunked" or one Content-Length value is the only framing we
     * relay; anything else is a 502 rather than a guess about where the body
     * ends, and the connection is never reused. */
    int64_t cl;
    bool chunked;
    if (up_check_head(out->p, out->len, &cl, &chunked) != UP_OK) {
        c->keepalive = false;
        return UP_ERR_PROTOCOL;
    }
    bool no_body = ex->is_head || status == 204 || status == 304;
    if (no_body) {
        c->rs = R_DONE;
    } else if (chunked) {
        c->rs = R_BODY_CHUNKED;
        c->cs = C_SIZE;
    } else if (cl >= 0) {
        c->rs = cl == 0 ? R_DONE : R_BODY_CL;
        c->remaining = (uint64_t)cl;
    } else {
        c->rs = R_BODY_CLOSE;
        c->keepalive = false;
    }
    up_head h = {
        .status = status,
        .lines = out->p ? out->p : "",
        .lines_len = out->len,
        .nlines = nlines,
        .content_length = chunked ? -1 : cl,
        .chunked = chunked,
    };
    ex->cb.on_head(ex->ctx, &h);
    return UP_OK;
}

/* Hand decoded body bytes from rbuf to the front end. *full when it took less
 * than offered (reading pauses). */
static up_result decode_body(h1_conn *c, bool *full)
{
    up_exchange *ex = c->ex;
    *full = false;
    while (c->rlen > 0 && c->rs != R_DONE) {
        if (c->rs == R_BODY_CHUNKED && c->cs != C_DATA) {
            char *s = c->rbuf + c->roff;
            char *nl = memchr(s, '\n', c->rlen);
            if (!nl) {
                if (c->rlen > H1_CHUNK_LINE_MAX)
                    return UP_ERR_PROTOCOL;
                return UP_OK; /* need more bytes */
            }
            size_t ll = (size_t)(nl - s) + 1;
            size_t content = ll - 1;
            if (content > 0 && s[content - 1] == '\r')
                content--;
            if (c->cs == C_SIZE) {
                uint64_t n = 0;
                size_t i = 0;
                for (; i < content; i++) {
                    int h = ag_hexval((unsigned char)s[i]);
                    if (h < 0)
                        break;
                    if (n > (UINT64_MAX >> 4))
                        return UP_ERR_PROTOCOL;
                    n = (n << 4) | (uint64_t)h;
                }
                if (i == 0 || (i < content && s[i] != ';' && s[i] != ' ' && s[i] != '\t'))
                    return UP_ERR_PROTOCOL;
                c->remaining = n;
                c->cs = n == 0 ? C_TRAILER : C_DATA;
            } else if (c->cs == C_DATA_END) {
                if (content != 0)
                    return UP_ERR_PROTOCOL;
                c->cs = C_SIZE;
            } else if (content == 0) { /* trailers are dropped; an empty line ends it */
                c->rs = R_DONE;
            }
            c->roff += ll;
            c->rlen -= ll;
            continue;
        }
        size_t take = c->rlen;
        if ((c->rs == R_BODY_CL || c->rs == R_BODY_CHUNKED) && take > c->remaining)
            take = (size_t)c->remaining;
        size_t k = ex->cb.on_body(ex->ctx, c->rbuf + c->roff, take);
        c->roff += k;
        c->rlen -= k;
        if (c->rs == R_BODY_CL || c->rs == R_BODY_CHUNKED) {
            c->remaining -= k;
            if (c->remaining == 0) {
                if (c->rs == R_BODY_CL)
                    c->rs = R_DONE;
                else
                    c->cs = C_DATA_END;
            }
        }
        if (k < take) {
            *full = true;
            return UP_OK;
        }
    }
    if (c->rlen == 0)
        c->roff = 0;
    return UP_OK;
}

/* Find the end of a response head in s[0..len): its length, or 0. */
static size_t head_end(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '\n')
            continue;
        if (s[i + 1] == '\n')
            return i + 2;
        if (s[i + 1] == '\r' && i + 2 < len && s[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* A 101 to an upgrade request: the socket leaves the client (and its
 * epoll registration) for the front end's tunnel; the exchange ends. */
static void hand_over(h1_conn *c)
{
    up_exchange *ex = c->ex;
    int fd = c->fd;
    epoll_ctl(c->uw->ep, EPOLL_CTL_DEL, fd, NULL);
    c->fd = -1;
    ex->cb.on_upgrade(ex->ctx, fd, c->rbuf + c->roff, c->rlen);
    c->rlen = 0;
    ex->conn = NULL;
    c->ex = NULL;
    conn_close(c);
    up_finish(ex, UP_OK);
}

/* Read and parse. Returns 0 (wait for more), 1 (moved to a fresh connection)
 * or -1 (the exchange ended, with or without error). */
static int do_read(h1_conn *c)
{
    up_exchange *ex = c->ex;
    for (;;) {
        if (c->rs == R_DONE)
            break;
        if (c->rs != R_HEAD) {
            bool full = false;
            up_result e = decode_body(c, &full);
            if (e != UP_OK) {
                finish(c, e);
                return -1;
            }
            if (c->rs == R_DONE)
                break;
            if (full) {
                ex->recv_paused = true;
                return set_events(c, (c->req_done ? 0 : EPOLLOUT)) ? -1 : 0;
            }
        }
        size_t cap_needed = c->rs == R_HEAD ? ex->max_head_bytes + 1024 : H1_RBUF_MIN;
        if (cap_needed < H1_RBUF_MIN)
            cap_needed = H1_RBUF_MIN;
        if (!c->rbuf) {
            if (!(c->rbuf = malloc(H1_RBUF_MIN))) {
                finish(c, UP_ERR_INTERNAL);
                return -1;
            }
            c->rcap = H1_RBUF_MIN;
        }
        if (c->roff > 0 && (c->rlen == 0 || c->roff + c->rlen == c->rcap)) {
            memmove(c->rbuf, c->rbuf + c->roff, c->rlen);
            c->roff = 0;
        }
        if (c->roff + c->rlen == c->rcap) {
            if (c->rs != R_HEAD || c->rcap >= cap_needed) {
                finish(c, c->rs == R_HEAD ? UP_ERR_HEADERS_BIG : UP_ERR_PROTOCOL);
                return -1;
            }
            size_t nc = c->rcap * 2 > cap_needed ? cap_needed : c->rcap * 2;
            char *nb = realloc(c->rbuf, nc);
            if (!nb) {
                finish(c, UP_ERR_INTERNAL);
                return -1;
            }
            c->rbuf = nb;
            c->rcap = nc;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->roff + c->rlen, c->rcap - c->roff - c->rlen, 0);
        bool fresh_ok = !c->got_bytes && c->reused && !c->retried && ex->body == UP_BODY_NONE;
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            if (fresh_ok)
                return retry_fresh(c) == 0 ? 1 : (finish(c, UP_ERR_RESET), -1);
            finish(c, !c->got_bytes && errno == ECONNREFUSED ? UP_ERR_CONNECT : UP_ERR_RESET);
            return -1;
        }
        if (n == 0) {
            if (c->rs == R_BODY_CLOSE) {
                c->rs = R_DONE;
                c->keepalive = false;
                break;
            }
            if (fresh_ok)
                return retry_fresh(c) == 0 ? 1 : (finish(c, UP_ERR_RESET), -1);
            finish(c, UP_ERR_RESET);
            return -1;
        }
        c->got_bytes = true;
        c->rlen += (size_t)n;
        up_touch(ex);
        while (c->rs == R_HEAD) {
            size_t hlen = head_end(c->rbuf + c->roff, c->rlen);
            if (!hlen) {
                if (c->rlen > ex->max_head_bytes) {
                    finish(c, UP_ERR_HEADERS_BIG);
                    return -1;
                }
                break;
            }
            bool interim = false;
            up_result e = parse_head(c, hlen, &interim);
            if (e != UP_OK) {
                finish(c, e);
                return -1;
            }
            c->roff += hlen;
            c->rlen -= hlen;
            if (c->rs == R_SWITCHED) {
                hand_over(c);
                return -1;
            }
        }
    }
    /* Complete. Bytes after a complete response mean a confused upstream. */
    if (c->rlen > 0)
        c->keepalive = false;
    if (!c->req_done) {
        /* The upstream answered before taking the whole body: fine for the
         * client, but this connection is out of sync. */
        c->keepalive = false;
        c->req_done = true;
    }
    finish(c, UP_OK);
    return -1;
}

static void drop_idle(up_worker *uw, h1_conn *c)
{
    h1_pool *p = &uw->pools[c->pool];
    for (h1_conn **pp = &p->idle; *pp; pp = &(*pp)->next_idle) {
        if (*pp == c) {
            *pp = c->next_idle;
            p->nidle--;
            break;
        }
    }
    conn_close(c);
}

/* Connecting to the current address failed: the next one, or the end. */
static void connect_failed(h1_conn *c)
{
    up_exchange *ex = c->ex;
    size_t pool = c->pool;
    c->ex = NULL;
    ex->conn = NULL;
    conn_close(c);
    up_result err = UP_ERR_CONNECT;
    h1_conn *n = more_addresses(ex) ? conn_open(ex, pool, &err) : NULL;
    if (!n) {
        up_finish(ex, err);
        return;
    }
    reset_exchange_state(n);
    attach(ex, n);
}

void h1_event(up_worker *uw, h1_conn *c, uint32_t events)
{
    up_exchange *ex = c->ex;
    if (!ex) {
        /* An idle pooled connection: any event means the upstream closed it
         * or sent something unsolicited. Either way it is done. */
        drop_idle(uw, c);
        return;
    }
    if (c->connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            connect_failed(c);
            return;
        }
        c->connecting = false;
        up_touch(ex);
    }
    if (ex->recv_paused && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        /* The upstream closed while the client is slow to read: what it sent
         * is still in the socket; stop listening for the close so the loop
         * does not spin, and let the read after unpausing find the end. */
        c->peer_closed = true;
    }
    for (int round = 0; round < 4; round++) {
        int wr = 0;
        if (!c->req_done) {
            wr = do_write(c);
            if (wr < 0)
                return;
        }
        if (!ex->recv_paused) {
            int rd = do_read(c);
            if (rd < 0)
                return;
            if (rd == 1) { /* retried on a fresh connection */
                c = ex->conn;
                if (!c || c->connecting)
                    return;
                continue;
            }
        }
        uint32_t want =
            (ex->recv_paused ? 0 : EPOLLIN | EPOLLRDHUP) | (!c->req_done && wr == 1 ? EPOLLOUT : 0);
        if (!ex->recv_paused && c->peer_closed)
            want |= EPOLLIN;
        if (set_events(c, want) != 0)
            finish(c, UP_ERR_INTERNAL);
        return;
    }
}

void h1_unpause(up_exchange *ex)
{
    h1_conn *c = ex->conn;
    bool was_recv = ex->recv_paused;
    ex->send_paused = false;
    ex->recv_paused = false;
    if (was_recv || !c)
        up_touch(ex);
    if (!c || c->connecting)
        return;
    h1_event(ex->uw, c, EPOLLIN | EPOLLOUT);
}

void h1_abort(up_exchange *ex)
{
    unwait(ex);
    h1_conn *c = ex->conn;
    if (!c)
        return;
    c->ex = NULL;
    ex->conn = NULL;
    conn_close(c);
}

/* A connect deadline passed: true when another address is being tried. */
bool h1_next_address(up_exchange *ex)
{
    h1_conn *c = ex->conn;
    if (!c || !c->connecting || !more_addresses(ex))
        return false;
    connect_failed(c);
    return true;
}

void h1_sweep(up_worker *uw, int64_t now)
{
    for (size_t i = 0; i < uw->npools; i++) {
        h1_pool *p = &uw->pools[i];
        h1_conn **pp = &p->idle;
        while (*pp) {
            h1_conn *c = *pp;
            if (now - c->idle_since > H1_IDLE_MS) {
                *pp = c->next_idle;
                p->nidle--;
                conn_close(c);
            } else {
                pp = &c->next_idle;
            }
        }
    }
}

void h1_worker_cleanup(up_worker *uw)
{
    for (size_t i = 0; i < uw->npools; i++) {
        h1_pool *p = &uw->pools[i];
        while (p->idle) {
            h1_conn *c = p->idle;
            p->idle = c->next_idle;
            conn_close(c);
        }
    }
    free(uw->pools);
    uw->pools = NULL;
    uw->npools = 0;
}
