/* uplink: a small HTTP/1.1 client for plain-http upstreams. One connection
 * carries one exchange at a time; finished connections go back to a per-worker
 * idle pool keyed by upstream URL. Everything runs on the worker's thread. */
#include "uplink.h"

#include <errno.h>
#include <netdb.h>
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

#define UL_RBUF_MIN 16384
#define UL_IDLE_MAX 512     /* pooled connections per upstream and worker */
#define UL_IDLE_MS 30000    /* close pooled connections idle this long */
#define UL_RESOLVE_MS 30000 /* re-resolve upstream names this often */
#define UL_CHUNK_LINE_MAX 1024

typedef struct ul_target {
    char *url;
    char host[256];
    char port[8];
    char hostport[272];
    const char *base; /* points into url */
    size_t base_len;
    struct sockaddr_storage addr;
    socklen_t alen;
    int64_t resolved_at;
    ul_conn *idle;
    size_t nidle;
} ul_target;

enum rstate { R_HEAD, R_BODY_CL, R_BODY_CHUNKED, R_BODY_CLOSE, R_DONE };
enum cstate { C_SIZE, C_DATA, C_DATA_END, C_TRAILER };

struct ul_conn {
    int fd;
    worker *w;
    size_t target; /* index into w->ul_targets */
    xchg *x;       /* NULL while idle */
    uint32_t ev;
    bool connecting;
    bool reused;
    bool retried;
    bool keepalive;
    bool got_bytes;
    /* request side */
    ag_buf head;
    size_t head_off;
    bool chunked_req;
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
    ul_conn *next_idle;
};

static int set_events(ul_conn *c, uint32_t ev)
{
    if (c->ev == ev)
        return 0;
    struct epoll_event e = {.events = ev, .data.u64 = UL_TAG | (uint64_t)(uintptr_t)c};
    if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, c->fd, &e) != 0)
        return -1;
    c->ev = ev;
    return 0;
}

static void conn_close(ul_conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(c->w->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    ag_buf_free(&c->head);
    free(c->rbuf);
    free(c);
}

int ul_parse_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap,
                 const char **base)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7;
    const char *end = h + strcspn(h, "/?#");
    const char *hs = h, *he, *ps = NULL;
    if (*h == '[') {
        he = memchr(h, ']', (size_t)(end - h));
        if (!he)
            return -1;
        hs = h + 1;
        if (he + 1 < end && he[1] != ':')
            return -1; /* only ":port" may follow an IPv6 literal */
        ps = he + 1 < end ? he + 2 : NULL;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        he = colon ? colon : end;
        ps = colon ? colon + 1 : NULL;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hostcap || memchr(hs, '@', hl))
        return -1;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (ps) {
        size_t pl = (size_t)(end - ps);
        if (pl == 0 || pl >= portcap)
            return -1;
        for (size_t i = 0; i < pl; i++)
            if (ps[i] < '0' || ps[i] > '9')
                return -1;
        memcpy(port, ps, pl);
        port[pl] = '\0';
        long pv = strtol(port, NULL, 10);
        if (pv < 1 || pv > 65535)
            return -1;
    } else {
        snprintf(port, portcap, "80");
    }
    *base = end;
    return 0;
}

static ul_target *target_for(worker *w, const char *url, size_t *idx)
{
    for (size_t i = 0; i < w->nul_targets; i++) {
        if (strcmp(w->ul_targets[i].url, url) == 0) {
            *idx = i;
            return &w->ul_targets[i];
        }
    }
    ul_target *arr = realloc(w->ul_targets, (w->nul_targets + 1) * sizeof(*arr));
    if (!arr)
        return NULL;
    w->ul_targets = arr;
    ul_target *t = &arr[w->nul_targets];
    memset(t, 0, sizeof(*t));
    t->url = ag_strdup(url);
    if (!t->url ||
        ul_parse_url(t->url, t->host, sizeof(t->host), t->port, sizeof(t->port), &t->base) != 0) {
        free(t->url);
        return NULL;
    }
    t->base_len = strcspn(t->base, "?#");
    while (t->base_len > 0 && t->base[t->base_len - 1] == '/')
        t->base_len--;
    bool v6 = strchr(t->host, ':') != NULL;
    if (strcmp(t->port, "80") == 0)
        snprintf(t->hostport, sizeof(t->hostport), v6 ? "[%s]" : "%s", t->host);
    else
        snprintf(t->hostport, sizeof(t->hostport), v6 ? "[%s]:%s" : "%s:%s", t->host, t->port);
    *idx = w->nul_targets++;
    return t;
}

/* Names are resolved on the worker thread (blocking, but only once per
 * UL_RESOLVE_MS per upstream), so a container restart that moves the backend
 * is picked up without restarting the gateway. */
static int resolve(ul_target *t, int64_t now)
{
    if (t->alen && now - t->resolved_at < UL_RESOLVE_MS)
        return 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(t->host, t->port, &hints, &ai);
    if (rc != 0 || !ai) {
        if (t->alen)
            return 0; /* keep the last good address */
        log_warn("upstream %s: cannot resolve %s: %s", t->url, t->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->alen = ai->ai_addrlen;
    t->resolved_at = now;
    freeaddrinfo(ai);
    return 0;
}

static ul_conn *conn_new(worker *w, ul_target *t, size_t idx, const char **err)
{
    ul_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        *err = "upstream_internal";
        return NULL;
    }
    c->w = w;
    c->target = idx;
    c->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        *err = "upstream_connect";
        free(c);
        return NULL;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&t->addr, t->alen) != 0) {
        if (errno != EINPROGRESS) {
            *err = "upstream_connect";
            close(c->fd);
            free(c);
            return NULL;
        }
        c->connecting = true;
    }
    c->ev = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    struct epoll_event e = {.events = c->ev, .data.u64 = UL_TAG | (uint64_t)(uintptr_t)c};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &e) != 0) {
        *err = "upstream_internal";
        close(c->fd);
        free(c);
        return NULL;
    }
    ag_buf_init(&c->head);
    return c;
}

static void reset_exchange_state(ul_conn *c)
{
    c->head_off = 0;
    c->chunked_req = false;
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
}

/* The exchange is over on this connection: pool it or close it. */
static void release(ul_conn *c, bool reusable)
{
    worker *w = c->w;
    xchg *x = c->x;
    if (x) {
        x->uc = NULL;
        px_unlink_active(x);
    }
    c->x = NULL;
    ul_target *t = &w->ul_targets[c->target];
    if (!reusable || !c->keepalive || !c->req_done || c->rs != R_DONE || c->rlen != 0 ||
        t->nidle >= UL_IDLE_MAX || set_events(c, EPOLLIN | EPOLLRDHUP) != 0) {
        conn_close(c);
        return;
    }
    c->idle_since = now_ms();
    c->next_idle = t->idle;
    t->idle = c;
    t->nidle++;
}

static void finish(ul_conn *c, const char *error)
{
    xchg *x = c->x;
    if (!x)
        return;
    x->upstream_done = true;
    if (error) {
        x->upstream_error = error;
        x->upstream_result =
            strcmp(error, "upstream_timeout") == 0 ? CURLE_OPERATION_TIMEDOUT : CURLE_RECV_ERROR;
    } else {
        x->upstream_result = CURLE_OK;
    }
    release(c, error == NULL);
    srv_upstream_progress(x);
}

int ul_start(xchg *x, const char *head, size_t head_len)
{
    worker *w = x->w;
    const char *err = "upstream_connect";
    size_t idx = 0;
    ul_target *t = target_for(w, x->d.route->upstream->url, &idx);
    if (!t || resolve(t, now_ms()) != 0)
        goto fail;
    ul_conn *c = NULL;
    while (t->idle) {
        c = t->idle;
        t->idle = c->next_idle;
        t->nidle--;
        c->next_idle = NULL;
        c->reused = true;
        break;
    }
    if (!c && !(c = conn_new(w, t, idx, &err)))
        goto fail;
    reset_exchange_state(c);
    ag_buf_reset(&c->head);
    if (ag_buf_append(&c->head, head, head_len) != 0) {
        conn_close(c);
        err = "upstream_internal";
        goto fail;
    }
    c->chunked_req = x->has_body && x->body_declared == UINT64_MAX;
    c->x = x;
    x->uc = c;
    x->t_upstream_ns = ag_now_mono_ns();
    px_touch(x);
    px_link_active(x);
    if (c->connecting) /* until connected, the connect timeout is the deadline */
        x->deadline_ms = now_ms() + x->d.route->upstream->connect_timeout_ms;
    if (!c->connecting)
        ul_event(w, c, EPOLLOUT);
    return 0;
fail:
    x->upstream_error = err;
    return -1;
}

/* Write what we can: head, then body bytes from the client's buffer. Returns
 * 0, or -1 after finishing the exchange with an error. */
static int do_write(ul_conn *c)
{
    xchg *x = c->x;
    bool blocked = false;
    while (!blocked && !c->req_done) {
        if (c->head_off < c->head.len) {
            ssize_t n =
                send(c->fd, c->head.p + c->head_off, c->head.len - c->head_off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    blocked = true;
                    continue;
                }
                goto broken;
            }
            c->head_off += (size_t)n;
            px_touch(x);
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
        if (!x->has_body) {
            c->req_done = true;
            break;
        }
        xbuf *b = &x->reqbody;
        if (c->chunked_req && c->chunk_left == 0 && b->len > 0) {
            c->chunk_left = b->len;
            c->pend_len =
                (size_t)snprintf(c->pend, sizeof(c->pend), "%llx\r\n", (unsigned long long)b->len);
            c->pend_off = 0;
            continue;
        }
        if (b->len > 0) {
            size_t want = b->len;
            if (c->chunked_req && want > c->chunk_left)
                want = (size_t)c->chunk_left;
            ssize_t n = send(c->fd, b->p + b->off, want, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    blocked = true;
                    continue;
                }
                goto broken;
            }
            b->off += (size_t)n;
            b->len -= (size_t)n;
            if (b->len == 0)
                b->off = 0;
            px_touch(x);
            if (c->chunked_req) {
                c->chunk_left -= (uint64_t)n;
                if (c->chunk_left == 0) {
                    memcpy(c->pend, "\r\n", 2);
                    c->pend_len = 2;
                    c->pend_off = 0;
                }
            }
            srv_resume(x); /* the client may be waiting for room */
            continue;
        }
        if (!x->client_body_done) {
            x->send_paused = true;
            srv_resume(x);
            break;
        }
        if (c->chunked_req && !c->final_queued) {
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
    finish(c, c->got_bytes ? "upstream_reset" : "upstream_connect");
    return -1;
}

static int retry_fresh(ul_conn *old)
{
    /* A pooled connection the upstream closed just as we reused it: nothing of
     * the response arrived and no body was streamed, so sending the same
     * request again on a new connection is safe. */
    worker *w = old->w;
    xchg *x = old->x;
    ul_target *t = &w->ul_targets[old->target];
    const char *err = "upstream_connect";
    ul_conn *c = conn_new(w, t, old->target, &err);
    if (!c)
        return -1;
    reset_exchange_state(c);
    if (ag_buf_append(&c->head, old->head.p, old->head.len) != 0) {
        conn_close(c);
        return -1;
    }
    c->retried = true;
    c->x = x;
    x->uc = c;
    x->deadline_ms = now_ms() + x->d.route->upstream->connect_timeout_ms;
    old->x = NULL;
    conn_close(old);
    return 0;
}

/* Parse a complete response head in c->rbuf[roff .. roff+hlen). */
static const char *parse_head(ul_conn *c, size_t hlen, bool *interim)
{
    xchg *x = c->x;
    const char *p = c->rbuf + c->roff;
    const char *end = p + hlen;
    *interim = false;
    const char *eol = memchr(p, '\n', hlen);
    if (!eol || eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ')
        return "upstream_protocol";
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return "upstream_protocol";
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100 || status > 599)
        return "upstream_protocol";
    if (status >= 100 && status < 200) {
        if (status == 101)
            return "upstream_protocol"; /* no upgrades through the gateway */
        *interim = true;
        return NULL;
    }
    bool http10 = p[7] == '0';
    ag_buf_reset(&x->resp_hdrs);
    x->resp_hdr_count = 0;
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
            return "upstream_protocol"; /* obsolete line folding */
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line || !hx_valid_header_name(line, (size_t)(colon - line)))
            return "upstream_protocol";
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
        if (x->resp_hdrs.len + ll + 2 > gate_config(x->gate)->limits.max_response_header_bytes ||
            ++x->resp_hdr_count > 200)
            return "upstream_headers_too_large";
        if (ag_buf_append(&x->resp_hdrs, line, ll) != 0 || ag_buf_append(&x->resp_hdrs, "\r\n", 2))
            return "upstream_internal";
        line = le + 1;
    }
    if (http10 || conn_close_hdr)
        c->keepalive = false;
    /* Exactly one "chunked" or one Content-Length value is the only framing we
     * relay; anything else is a 502 rather than a guess about where the body
     * ends (case I83), and the connection is never reused. */
    int64_t cl;
    bool chunked;
    if (hx_resp_framing(x->resp_hdrs.p, x->resp_hdrs.len, &cl, &chunked) != 0) {
        c->keepalive = false;
        return "upstream_protocol";
    }
    x->upstream_status = status;
    bool no_body = x->is_head || status == 204 || status == 304;
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
    return NULL;
}

static size_t room(const xbuf *b)
{
    return xbuf_space(b);
}

static void compact(xbuf *b)
{
    if (b->len == 0)
        b->off = 0;
    else if (b->off > 0 && xbuf_space(b) < XB_CAP / 4) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
}

/* Move decoded body bytes from rbuf into the client buffer. Returns false when
 * the client buffer is full (reading pauses). */
static const char *decode_body(ul_conn *c, bool *full)
{
    xchg *x = c->x;
    xbuf *b = &x->respbody;
    *full = false;
    if (!b->p && !(b->p = xb_get(x->w)))
        return "upstream_internal";
    while (c->rlen > 0 && c->rs != R_DONE) {
        compact(b);
        if (c->rs == R_BODY_CHUNKED && c->cs != C_DATA) {
            char *s = c->rbuf + c->roff;
            char *nl = memchr(s, '\n', c->rlen);
            if (!nl) {
                if (c->rlen > UL_CHUNK_LINE_MAX)
                    return "upstream_protocol";
                return NULL; /* need more bytes */
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
                        return "upstream_protocol";
                    n = (n << 4) | (uint64_t)h;
                }
                if (i == 0 || (i < content && s[i] != ';' && s[i] != ' ' && s[i] != '\t'))
                    return "upstream_protocol";
                c->remaining = n;
                c->cs = n == 0 ? C_TRAILER : C_DATA;
            } else if (c->cs == C_DATA_END) {
                if (content != 0)
                    return "upstream_protocol";
                c->cs = C_SIZE;
            } else { /* trailers are dropped; an empty line ends the message */
                if (content == 0)
                    c->rs = R_DONE;
            }
            c->roff += ll;
            c->rlen -= ll;
            continue;
        }
        size_t take = c->rlen;
        if ((c->rs == R_BODY_CL || c->rs == R_BODY_CHUNKED) && take > c->remaining)
            take = (size_t)c->remaining;
        if (take > room(b))
            take = room(b);
        if (take == 0) {
            *full = true;
            return NULL;
        }
        memcpy(b->p + b->off + b->len, c->rbuf + c->roff, take);
        b->len += take;
        x->resp_bytes += take;
        c->roff += take;
        c->rlen -= take;
        if (c->rs == R_BODY_CL || c->rs == R_BODY_CHUNKED) {
            c->remaining -= take;
            if (c->remaining == 0) {
                if (c->rs == R_BODY_CL)
                    c->rs = R_DONE;
                else
                    c->cs = C_DATA_END;
            }
        }
    }
    if (c->rlen == 0)
        c->roff = 0;
    if (c->rs == R_BODY_CHUNKED && c->cs == C_DATA && c->rlen == 0 && room(b) == 0)
        *full = true;
    return NULL;
}

/* Read and parse. Returns -1 when the exchange ended (with or without error). */
static int do_read(ul_conn *c)
{
    xchg *x = c->x;
    const cfg_limits *lim = &gate_config(x->gate)->limits;
    for (;;) {
        if (c->rs == R_DONE)
            break;
        if (c->rs != R_HEAD) {
            bool full = false;
            const char *e = decode_body(c, &full);
            if (e) {
                finish(c, e);
                return -1;
            }
            if (c->rs == R_DONE)
                break;
            if (full) {
                x->recv_paused = true;
                srv_upstream_progress(x);
                return set_events(c, (c->req_done ? 0 : EPOLLOUT) | EPOLLRDHUP) ? -1 : 0;
            }
        }
        /* Make room to read into rbuf. */
        size_t cap_needed = c->rs == R_HEAD ? lim->max_response_header_bytes + 1024 : UL_RBUF_MIN;
        if (cap_needed < UL_RBUF_MIN)
            cap_needed = UL_RBUF_MIN;
        if (!c->rbuf || c->rcap < (c->rs == R_HEAD ? UL_RBUF_MIN : 0)) {
            char *nb = realloc(c->rbuf, UL_RBUF_MIN);
            if (!nb) {
                finish(c, "upstream_internal");
                return -1;
            }
            c->rbuf = nb;
            c->rcap = UL_RBUF_MIN;
        }
        if (c->roff > 0 && (c->rlen == 0 || c->roff + c->rlen == c->rcap)) {
            memmove(c->rbuf, c->rbuf + c->roff, c->rlen);
            c->roff = 0;
        }
        if (c->roff + c->rlen == c->rcap) {
            if (c->rs != R_HEAD || c->rcap >= cap_needed) {
                finish(c, c->rs == R_HEAD ? "upstream_headers_too_large" : "upstream_protocol");
                return -1;
            }
            size_t nc = c->rcap * 2 > cap_needed ? cap_needed : c->rcap * 2;
            char *nb = realloc(c->rbuf, nc);
            if (!nb) {
                finish(c, "upstream_internal");
                return -1;
            }
            c->rbuf = nb;
            c->rcap = nc;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->roff + c->rlen, c->rcap - c->roff - c->rlen, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            if (!c->got_bytes && c->reused && !c->retried && !x->has_body)
                return retry_fresh(c) == 0 ? 1 : (finish(c, "upstream_reset"), -1);
            finish(c, c->got_bytes
                          ? "upstream_reset"
                          : (errno == ECONNREFUSED ? "upstream_connect" : "upstream_reset"));
            return -1;
        }
        if (n == 0) {
            if (c->rs == R_BODY_CLOSE) {
                c->rs = R_DONE;
                c->keepalive = false;
                break;
            }
            if (!c->got_bytes && c->reused && !c->retried && !x->has_body)
                return retry_fresh(c) == 0 ? 1 : (finish(c, "upstream_reset"), -1);
            finish(c, c->got_bytes ? "upstream_reset" : "upstream_reset");
            return -1;
        }
        c->got_bytes = true;
        c->rlen += (size_t)n;
        px_touch(x);
        while (c->rs == R_HEAD) {
            char *s = c->rbuf + c->roff;
            char *hend = NULL;
            for (size_t i = 0; i + 1 < c->rlen; i++) {
                if (s[i] == '\n' && (s[i + 1] == '\n' ||
                                     (s[i + 1] == '\r' && i + 2 < c->rlen && s[i + 2] == '\n'))) {
                    hend = s + i + (s[i + 1] == '\n' ? 2 : 3);
                    break;
                }
            }
            if (!hend) {
                if (c->rlen > lim->max_response_header_bytes) {
                    finish(c, "upstream_headers_too_large");
                    return -1;
                }
                break;
            }
            size_t hlen = (size_t)(hend - s);
            bool interim = false;
            const char *e = parse_head(c, hlen, &interim);
            if (e) {
                finish(c, e);
                return -1;
            }
            c->roff += hlen;
            c->rlen -= hlen;
            if (interim)
                continue;
            x->resp_headers_done = true;
            x->t_upstream_hdr_ns = ag_now_mono_ns();
            srv_upstream_progress(x);
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
    finish(c, NULL);
    return -1;
}

void ul_event(worker *w, ul_conn *c, uint32_t events)
{
    xchg *x = c->x;
    if (!x) {
        /* An idle pooled connection: any event means the upstream closed it
         * or sent something unsolicited. Either way it is done. */
        ul_target *t = &w->ul_targets[c->target];
        for (ul_conn **pp = &t->idle; *pp; pp = &(*pp)->next_idle) {
            if (*pp == c) {
                *pp = c->next_idle;
                t->nidle--;
                break;
            }
        }
        conn_close(c);
        return;
    }
    if (c->connecting) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            finish(c, "upstream_connect");
            return;
        }
        c->connecting = false;
        px_touch(x);
    }
    for (int round = 0; round < 4; round++) {
        if (c->connecting) {
            if (set_events(c, EPOLLOUT | EPOLLIN | EPOLLRDHUP) != 0)
                finish(c, "upstream_internal");
            return;
        }
        int wr = 0;
        if (!c->req_done) {
            wr = do_write(c);
            if (wr < 0)
                return;
        }
        if (!x->recv_paused) {
            int rd = do_read(c);
            if (rd < 0)
                return;
            if (rd == 1) { /* retried on a fresh connection */
                c = x->uc;
                if (!c)
                    return;
                continue;
            }
        }
        uint32_t want = EPOLLRDHUP | (x->recv_paused ? 0 : EPOLLIN) |
                        (!c->req_done && wr == 1 ? EPOLLOUT : 0) | (c->connecting ? EPOLLOUT : 0);
        if (set_events(c, want) != 0)
            finish(c, "upstream_internal");
        return;
    }
}

void ul_kick(xchg *x)
{
    ul_conn *c = x->uc;
    if (!c || c->connecting)
        return;
    ul_event(x->w, c, EPOLLIN | EPOLLOUT);
}

void ul_abort(xchg *x)
{
    ul_conn *c = x->uc;
    px_unlink_active(x);
    if (!c)
        return;
    c->x = NULL;
    x->uc = NULL;
    conn_close(c);
}

void ul_sweep(worker *w, int64_t now)
{
    for (size_t i = 0; i < w->nul_targets; i++) {
        ul_target *t = &w->ul_targets[i];
        ul_conn **pp = &t->idle;
        while (*pp) {
            ul_conn *c = *pp;
            if (now - c->idle_since > UL_IDLE_MS) {
                *pp = c->next_idle;
                t->nidle--;
                conn_close(c);
            } else {
                pp = &c->next_idle;
            }
        }
    }
}

void ul_worker_cleanup(worker *w)
{
    for (size_t i = 0; i < w->nul_targets; i++) {
        ul_target *t = &w->ul_targets[i];
        while (t->idle) {
            ul_conn *c = t->idle;
            t->idle = c->next_idle;
            conn_close(c);
        }
        free(t->url);
    }
    free(w->ul_targets);
    w->ul_targets = NULL;
    w->nul_targets = 0;
}
