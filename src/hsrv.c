/* hsrv: the answer-only listener (hsrv.h). One thread's loop owns its
 * connections outright; the only state threads share is the listening socket,
 * the open-connection count and the drain/stop flags. */
#include "hsrv.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "httpx.h"
#include "log.h"
#include "util.h"

#define LISTEN_TAG 1u
#define WAKE_TAG 2u
#define SWEEP_MS 100
#define LINGER_MS 1000
#define DRAIN_IDLE_MS 500

typedef enum { HC_READ = 1, HC_WRITE, HC_LINGER } hc_state;

typedef struct hs_conn {
    int fd;
    hc_state state;
    bool closing; /* no request after the current answer */
    uint32_t ev;  /* what epoll watches */
    /* Bytes read but not consumed (a partial head, or pipelined heads left
     * while answers wait), and where the head-end scan resumes. */
    char *pend;
    size_t pend_len;
    size_t scan;
    /* Answer bytes the peer has not taken yet. */
    char *out;
    size_t out_len, out_off;
    uint64_t skip;         /* body bytes still to drop */
    int64_t head_since_ms; /* a head or body is under way since; 0 none */
    int64_t last_ms;       /* last answer, or the accept */
    int64_t linger_until_ms;
    struct sockaddr_storage peer;
    struct hs_conn *next, *prev;
} hs_conn;

typedef struct hs_thread {
    hs_server *srv;
    int idx;
    int ep;
    int evfd;
    pthread_t th;
    bool started;
    bool listening;
    char *in; /* scratch for one read: head_cap bytes */
    ag_buf out;
    gate_header *hdrs;
    hs_conn *conns;
    int64_t drain_seen_ms;
    int64_t next_sweep_ms;
    time_t date_s;
    char date[40];
} hs_thread;

struct hs_server {
    hs_config cfg;
    int listen_fd;
    int port;
    hs_thread *th;
    int nth;
    size_t open;  /* atomic */
    int draining; /* atomic */
    int stopping; /* atomic */
    int64_t full_warned_ms;
};

const char *hs_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        /* A code without a row of its own: its class's name. */
        return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "Status";
    }
}

/* ---- connections ----------------------------------------------------------- */

static int watch(hs_thread *t, hs_conn *c, uint32_t ev)
{
    if (c->ev == ev)
        return 0;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &e) != 0)
        return -1;
    c->ev = ev;
    return 0;
}

static void conn_close(hs_thread *t, hs_conn *c)
{
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->next)
        c->next->prev = c->prev;
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    free(c->pend);
    free(c->out);
    free(c);
    __atomic_sub_fetch(&t->srv->open, 1, __ATOMIC_ACQ_REL);
}

/* The last answer is out: stop sending, and read what the peer still sends
 * until it closes (or LINGER_MS), so that unread bytes do not turn our close
 * into a reset that could destroy the answer before the peer reads it. */
static bool conn_linger(hs_thread *t, hs_conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->state = HC_LINGER;
    c->linger_until_ms = ag_now_mono_ms() + LINGER_MS;
    free(c->pend);
    c->pend = NULL;
    c->pend_len = 0;
    if (watch(t, c, EPOLLIN) != 0) {
        conn_close(t, c);
        return false;
    }
    return true;
}

static void accept_some(hs_thread *t)
{
    hs_server *s = t->srv;
    for (int i = 0; i < 32; i++) {
        hs_conn *c = calloc(1, sizeof(*c));
        if (!c)
            return;
        socklen_t sl = sizeof(c->peer);
        int fd =
            accept4(s->listen_fd, (struct sockaddr *)&c->peer, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            free(c);
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                log_warn("forward_auth listener: accept: %s", strerror(errno));
            return;
        }
        size_t n = __atomic_add_fetch(&s->open, 1, __ATOMIC_ACQ_REL);
        if (n > s->cfg.max_connections) {
            __atomic_sub_fetch(&s->open, 1, __ATOMIC_ACQ_REL);
            close(fd);
            free(c);
            int64_t now = ag_now_mono_ms();
            int64_t last = __atomic_load_n(&s->full_warned_ms, __ATOMIC_ACQUIRE);
            if (now - last >= 1000 &&
                __atomic_compare_exchange_n(&s->full_warned_ms, &last, now, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                log_warn("forward_auth listener: %zu connections open (limits.max_connections): "
                         "new ones are closed at once",
                         s->cfg.max_connections);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->state = HC_READ;
        c->ev = EPOLLIN;
        c->last_ms = ag_now_mono_ms();
        /* The first request is due within the head deadline too, so that a
         * connection that never sends one (a scanner, or anyone outside
         * trusted_peers, which is only judged per request) holds its slot
         * for request_timeout_ms, not idle_timeout_ms. */
        c->head_since_ms = c->last_ms;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c);
            __atomic_sub_fetch(&s->open, 1, __ATOMIC_ACQ_REL);
            continue;
        }
        c->next = t->conns;
        if (t->conns)
            t->conns->prev = c;
        t->conns = c;
    }
}

/* ---- answers --------------------------------------------------------------- */

static const char *date_now(hs_thread *t)
{
    time_t now = time(NULL);
    if (now != t->date_s) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(t->date, sizeof(t->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        t->date_s = now;
    }
    return t->date;
}

static int put_uint(ag_buf *b, uint64_t v)
{
    char d[24];
    size_t k = sizeof(d);
    do {
        d[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return ag_buf_append(b, d + k, sizeof(d) - k);
}

/* Append the answer to t->out. -1 when out of memory. */
static int format_reply(hs_thread *t, const hs_reply *r, bool head_only, bool keep_alive_10,
                        bool close)
{
    ag_buf *b = &t->out;
    int st = r->status >= 100 && r->status <= 999 ? r->status : 500;
    int rc = ag_buf_append(b, "HTTP/1.1 ", 9);
    rc |= put_uint(b, (uint64_t)st);
    rc |= ag_buf_append(b, " ", 1);
    rc |= ag_buf_puts(b, hs_status_text(st));
    rc |= ag_buf_append(b, "\r\nDate: ", 8);
    rc |= ag_buf_puts(b, date_now(t));
    rc |= ag_buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < r->nfields && i < HS_MAX_FIELDS; i++) {
        rc |= ag_buf_puts(b, r->fields[i].name);
        rc |= ag_buf_append(b, ": ", 2);
        rc |= ag_buf_puts(b, r->fields[i].value);
        rc |= ag_buf_append(b, "\r\n", 2);
    }
    rc |= ag_buf_append(b, "Content-Length: ", 16);
    rc |= put_uint(b, r->body_len);
    if (close)
        rc |= ag_buf_append(b, "\r\nConnection: close", 19);
    else if (keep_alive_10)
        rc |= ag_buf_append(b, "\r\nConnection: keep-alive", 24);
    rc |= ag_buf_append(b, "\r\n\r\n", 4);
    if (!head_only && r->body_len)
        rc |= ag_buf_append(b, r->body, r->body_len);
    return rc ? -1 : 0;
}

/* Ask the handler about one request (or refusal) and queue its answer. */
static void answer(hs_thread *t, hs_conn *c, ag_reason code, const rqh_head *h, size_t nheaders)
{
    hs_server *s = t->srv;
    hs_request rq = {
        .code = code,
        .head = code == AR_OK ? h : NULL,
        .headers = code == AR_OK ? t->hdrs : NULL,
        .nheaders = code == AR_OK ? nheaders : 0,
        .peer = (const struct sockaddr *)&c->peer,
        .t0_ns = ag_now_mono_ns(),
        .head_only = code == AR_OK && h->method_len == 4 && memcmp(h->method, "HEAD", 4) == 0,
    };
    hs_reply r = {0};
    s->cfg.handle(s->cfg.ctx, t->idx, &rq, &r);
    bool close =
        c->closing || r.close || code != AR_OK || __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE);
    if (close)
        c->closing = true;
    bool ka10 = code == AR_OK && h->minor == 0 && !close;
    if (format_reply(t, &r, rq.head_only, ka10, close) != 0) {
        /* No room for the answer: the connection cannot stay in step. */
        c->closing = true;
    }
    c->last_ms = ag_now_mono_ms();
}

/* Consume buf[0..len): answer every complete head, skip bodies, stop at a
 * partial head or when enough answers wait (*full). Returns bytes consumed. */
static size_t consume(hs_thread *t, hs_conn *c, char *buf, size_t len, bool *full)
{
    hs_server *s = t->srv;
    size_t pos = 0;
    while (pos < len && !c->closing && t->out.len < HS_OUT_MAX) {
        if (c->skip) {
            size_t k = len - pos < c->skip ? len - pos : (size_t)c->skip;
            pos += k;
            c->skip -= k;
            continue;
        }
        if (c->scan == 0)
            pos += rqh_skip_empty_lines(buf + pos, len - pos);
        if (pos == len)
            break;
        size_t hl = rqh_head_end(buf + pos, len - pos, &c->scan);
        if (hl == 0) {
            if (len - pos >= s->cfg.head_cap) {
                answer(t, c,
                       rqh_has_request_line(buf + pos, len - pos) ? AR_LIMIT_HEADERS : AR_LIMIT_URI,
                       NULL, 0);
                return len;
            }
            break;
        }
        if (hl > s->cfg.head_cap) {
            answer(t, c, AR_LIMIT_HEADERS, NULL, 0);
            return len;
        }
        rqh_head h;
        rqh_parse(buf + pos, hl, t->hdrs, s->cfg.max_headers, &h);
        pos += hl;
        /* This head is whole: the next one's deadline starts from its own
         * first byte (feed), not from this one's. */
        c->head_since_ms = 0;
        if (h.code != AR_OK) {
            answer(t, c, h.code, NULL, 0);
            return len;
        }
        /* Whether the connection can stay in step after this request is
         * settled before the answer, which then says Connection: close. */
        if (!h.keep_alive || h.has_te || (h.n_content_length && !h.content_length_ok))
            c->closing = true;
        else if (h.content_length_ok && h.content_length > 0) {
            if (h.content_length > HS_SKIP_MAX || h.expect_continue)
                c->closing = true;
            else
                c->skip = h.content_length;
        }
        answer(t, c, AR_OK, &h, h.nheaders);
    }
    *full = !c->closing && pos < len && t->out.len >= HS_OUT_MAX;
    return c->closing ? len : pos;
}

/* Send what waits in t->out, keep what the peer cannot take yet, and watch
 * for what comes next. False when c was closed (and freed). */
static bool flush(hs_thread *t, hs_conn *c)
{
    if (t->out.len) {
        size_t off = 0;
        while (off < t->out.len) {
            ssize_t n = send(c->fd, t->out.p + off, t->out.len - off, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN)
                    goto dead;
                break;
            }
            off += (size_t)n;
        }
        if (off < t->out.len) {
            size_t rest = t->out.len - off;
            if (!(c->out = malloc(rest)))
                goto dead;
            memcpy(c->out, t->out.p + off, rest);
            c->out_len = rest;
            c->out_off = 0;
        }
        ag_buf_reset(&t->out);
    }
    if (c->out) {
        c->state = HC_WRITE;
        if (watch(t, c, EPOLLOUT) != 0)
            goto dead;
        return true;
    }
    if (c->closing)
        return conn_linger(t, c);
    c->state = HC_READ;
    if (watch(t, c, EPOLLIN) != 0)
        goto dead;
    return true;
dead:
    ag_buf_reset(&t->out);
    conn_close(t, c);
    return false;
}

/* Process t->in[0..len) for c, keep what is left, send the answers; go on
 * with what was left for lack of room once the answers are out. */
static void feed(hs_thread *t, hs_conn *c, size_t len)
{
    for (;;) {
        bool full = false;
        size_t used = consume(t, c, t->in, len, &full);
        size_t rest = len - used;
        if (rest) {
            char *p = rest > c->pend_len || !c->pend ? realloc(c->pend, rest) : c->pend;
            if (!p) {
                ag_buf_reset(&t->out);
                conn_close(t, c);
                return;
            }
            c->pend = p;
            memcpy(c->pend, t->in + used, rest);
        } else {
            free(c->pend);
            c->pend = NULL;
        }
        c->pend_len = rest;
        if (rest || c->skip) {
            if (!c->head_since_ms)
                c->head_since_ms = ag_now_mono_ms();
        } else {
            c->head_since_ms = 0;
            c->scan = 0;
        }
        if (!flush(t, c) || !full || c->state != HC_READ)
            return;
        /* Everything went out at once: answer what was held back. */
        len = c->pend_len;
        memcpy(t->in, c->pend, len);
    }
}

static void on_readable(hs_thread *t, hs_conn *c)
{
    hs_server *s = t->srv;
    if (c->state == HC_LINGER) {
        ssize_t n = recv(c->fd, t->in, s->cfg.head_cap, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            conn_close(t, c);
        return;
    }
    size_t have = c->pend_len;
    if (have)
        memcpy(t->in, c->pend, have);
    if (have >= s->cfg.head_cap) {
        feed(t, c, have);
        return;
    }
    ssize_t n = recv(c->fd, t->in + have, s->cfg.head_cap - have, 0);
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            conn_close(t, c);
        return;
    }
    if (n == 0) {
        /* The peer is done sending. A partial head cannot be answered. */
        conn_close(t, c);
        return;
    }
    feed(t, c, have + (size_t)n);
}

static void on_writable(hs_thread *t, hs_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                conn_close(t, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->last_ms = ag_now_mono_ms();
    /* Reading starts again: a head under way gets its time from now. */
    if (c->head_since_ms)
        c->head_since_ms = c->last_ms;
    if (c->pend_len && !c->closing) {
        /* Requests read while answers waited. */
        size_t len = c->pend_len;
        memcpy(t->in, c->pend, len);
        feed(t, c, len);
        return;
    }
    (void)flush(t, c);
}

/* ---- the loop -------------------------------------------------------------- */

static void sweep(hs_thread *t, int64_t now)
{
    hs_server *s = t->srv;
    bool draining = __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE);
    if (draining && !t->drain_seen_ms)
        t->drain_seen_ms = now;
    for (hs_conn *c = t->conns, *nx; c; c = nx) {
        nx = c->next;
        if (c->state == HC_LINGER) {
            if (now >= c->linger_until_ms)
                conn_close(t, c);
            continue;
        }
        if (c->state == HC_WRITE) {
            /* A peer that stopped reading its answers. Not the head deadline:
             * nothing is read meanwhile, so a head held back is not late. */
            if (now - c->last_ms >= s->cfg.idle_timeout_ms)
                conn_close(t, c);
            continue;
        }
        if (c->head_since_ms && !c->pend_len && !c->skip &&
            now - c->last_ms >= s->cfg.idle_timeout_ms) {
            /* Not a byte of its first request yet: idle, whichever of the
             * two limits comes first. */
            conn_close(t, c);
            continue;
        }
        if (c->head_since_ms) {
            if (now - c->head_since_ms >= s->cfg.request_timeout_ms) {
                if (s->cfg.aborted)
                    s->cfg.aborted(s->cfg.ctx, t->idx, (const struct sockaddr *)&c->peer,
                                   AR_CLIENT_HEADER_TIMEOUT);
                conn_close(t, c);
            }
            continue;
        }
        int64_t idle_from = c->last_ms;
        if (draining && t->drain_seen_ms > idle_from)
            idle_from = t->drain_seen_ms;
        if (now - c->last_ms >= s->cfg.idle_timeout_ms ||
            (draining && now - idle_from >= DRAIN_IDLE_MS))
            conn_close(t, c);
    }
}

static void *thread_main(void *arg)
{
    hs_thread *t = arg;
    hs_server *s = t->srv;
    struct epoll_event ev[128];
    for (;;) {
        if (__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE))
            break;
        if (t->listening && __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE)) {
            epoll_ctl(t->ep, EPOLL_CTL_DEL, s->listen_fd, NULL);
            t->listening = false;
        }
        int n = epoll_wait(t->ep, ev, 128, SWEEP_MS);
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &t->srv) {
                if (t->listening)
                    accept_some(t);
                continue;
            }
            if (p == &t->evfd) {
                uint64_t v;
                ssize_t r = read(t->evfd, &v, sizeof(v));
                (void)r;
                continue;
            }
            hs_conn *c = p;
            if (c->state == HC_WRITE) {
                if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                    on_writable(t, c);
            } else if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                on_readable(t, c);
            }
        }
        int64_t now = ag_now_mono_ms();
        if (now >= t->next_sweep_ms) {
            sweep(t, now);
            t->next_sweep_ms = now + SWEEP_MS;
        }
    }
    while (t->conns)
        conn_close(t, t->conns);
    return NULL;
}

static void thread_free(hs_thread *t)
{
    if (t->ep >= 0)
        close(t->ep);
    if (t->evfd >= 0)
        close(t->evfd);
    free(t->in);
    free(t->hdrs);
    ag_buf_free(&t->out);
}

int hs_start(const hs_config *cfg, hs_server **out, char *err, size_t errlen)
{
    *out = NULL;
    hs_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->cfg = *cfg;
    s->listen_fd = -1;
    int nth = cfg->threads > 0 ? cfg->threads : 1;
    if (!(s->th = calloc((size_t)nth, sizeof(*s->th)))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->nth = nth;
    for (int i = 0; i < nth; i++)
        s->th[i].ep = s->th[i].evfd = -1;
    s->listen_fd = socket(cfg->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (s->listen_fd < 0 ||
        setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s->listen_fd, cfg->addr, cfg->addrlen) != 0 || listen(s->listen_fd, 1024) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sl) == 0)
        s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    for (int i = 0; i < nth; i++) {
        hs_thread *t = &s->th[i];
        t->srv = s;
        t->idx = i;
        ag_buf_init(&t->out);
        t->in = malloc(cfg->head_cap);
        t->hdrs = calloc(cfg->max_headers ? cfg->max_headers : 1, sizeof(*t->hdrs));
        t->ep = epoll_create1(EPOLL_CLOEXEC);
        t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (!t->in || !t->hdrs || t->ep < 0 || t->evfd < 0) {
            snprintf(err, errlen, "cannot set up thread %d: %s", i, strerror(errno));
            goto fail;
        }
        /* The tags are addresses no connection can have. */
        struct epoll_event le = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &s->th[i].srv};
        struct epoll_event we = {.events = EPOLLIN, .data.ptr = &t->evfd};
        if (epoll_ctl(t->ep, EPOLL_CTL_ADD, s->listen_fd, &le) != 0 ||
            epoll_ctl(t->ep, EPOLL_CTL_ADD, t->evfd, &we) != 0) {
            snprintf(err, errlen, "epoll: %s", strerror(errno));
            goto fail;
        }
        t->listening = true;
    }
    for (int i = 0; i < nth; i++) {
        if (pthread_create(&s->th[i].th, NULL, thread_main, &s->th[i]) != 0) {
            snprintf(err, errlen, "cannot start thread %d", i);
            goto fail;
        }
        s->th[i].started = true;
    }
    *out = s;
    return 0;
fail:
    hs_stop(s);
    return -1;
}

int hs_port(const hs_server *s)
{
    return s ? s->port : -1;
}

static void wake_all(hs_server *s)
{
    uint64_t one = 1;
    for (int i = 0; i < s->nth; i++)
        if (s->th[i].evfd >= 0) {
            ssize_t r = write(s->th[i].evfd, &one, sizeof(one));
            (void)r;
        }
}

void hs_drain(hs_server *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->draining, 1, __ATOMIC_RELEASE);
    /* New connections are refused from now on rather than left queued. */
    if (s->listen_fd >= 0)
        shutdown(s->listen_fd, SHUT_RD);
    wake_all(s);
}

void hs_stop(hs_server *s)
{
    if (!s)
        return;
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
    if (s->th) {
        wake_all(s);
        for (int i = 0; i < s->nth; i++)
            if (s->th[i].started)
                pthread_join(s->th[i].th, NULL);
        for (int i = 0; i < s->nth; i++)
            thread_free(&s->th[i]);
        free(s->th);
    }
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    free(s);
}
