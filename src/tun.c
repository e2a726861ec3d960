#include "tun.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"
#include "wsframe.h"

enum { SIDE_CLIENT = 0, SIDE_UPSTREAM = 1 };

/* One direction: bytes read from side `from`, waiting to be written to the
 * other side. */
typedef struct tun_dir {
    char *buf; /* NULL while empty */
    size_t off, len;
    uint64_t bytes;
    bool eof;  /* the source sent its last byte */
    bool shut; /* the destination's write side is shut */
    wsf fr;    /* frames in the bytes read from the source so far */
} tun_dir;

struct tun {
    tun_set *ts;
    int fd[2];
    uint32_t ev[2];
    tun_dir dir[2]; /* dir[s]: read from side s */
    tun_cause first_eof;
    bool dead;
    /* Set when the gateway ends the tunnel itself (idle, token expiry,
     * drain): its close handshake runs until close_by_ms. */
    tun_cause closing;
    bool done[2]; /* closing: nothing more to do with side s */
    int64_t close_by_ms;
    int64_t opened_ms, last_ms, idle_ms, expires_ms;
    void (*on_close)(void *ctx, const tun_stats *st);
    void *ctx;
    tun *next, *prev;
    tun *next_dead;
};

struct tun_set {
    int ep;
    tun *live;
    size_t nlive;
    tun *dead;
    size_t nclosing; /* live tunnels in their close handshake */
    int64_t next_sweep_ms;
};

static size_t g_open; /* atomic: tunnels and handshakes in the whole process */

bool tun_reserve(size_t max)
{
    size_t n = __atomic_add_fetch(&g_open, 1, __ATOMIC_ACQ_REL);
    if (n > max) {
        __atomic_sub_fetch(&g_open, 1, __ATOMIC_ACQ_REL);
        return false;
    }
    return true;
}

void tun_release(void)
{
    __atomic_sub_fetch(&g_open, 1, __ATOMIC_ACQ_REL);
}

size_t tun_open_total(void)
{
    return __atomic_load_n(&g_open, __ATOMIC_ACQUIRE);
}

const char *tun_cause_name(tun_cause c)
{
    switch (c) {
    case TUN_CLIENT:
        return "client";
    case TUN_UPSTREAM:
        return "upstream";
    case TUN_IDLE:
        return "idle_timeout";
    case TUN_TOKEN_EXPIRED:
        return "token_expired";
    case TUN_DRAIN:
        return "drain";
    case TUN_ERROR:
        return "error";
    default:
        return "unset";
    }
}

tun_set *tun_set_new(int epfd)
{
    tun_set *ts = calloc(1, sizeof(*ts));
    if (ts)
        ts->ep = epfd;
    return ts;
}

static tun_cause side_cause(int side)
{
    return side == SIDE_CLIENT ? TUN_CLIENT : TUN_UPSTREAM;
}

static void tun_end(tun *t, tun_cause why)
{
    if (t->dead)
        return;
    t->dead = true;
    tun_set *ts = t->ts;
    if (t->closing)
        ts->nclosing--;
    for (int s = 0; s < 2; s++) {
        if (t->fd[s] >= 0)
            epoll_ctl(ts->ep, EPOLL_CTL_DEL, t->fd[s], NULL);
        free(t->dir[s].buf);
        t->dir[s].buf = NULL;
    }
    if (t->fd[SIDE_UPSTREAM] >= 0)
        close(t->fd[SIDE_UPSTREAM]);
    t->fd[SIDE_UPSTREAM] = -1;
    if (t->next)
        t->next->prev = t->prev;
    if (t->prev)
        t->prev->next = t->next;
    else
        ts->live = t->next;
    ts->nlive--;
    t->next_dead = ts->dead;
    ts->dead = t;
    tun_stats st = {
        .bytes_up = t->dir[SIDE_CLIENT].bytes,
        .bytes_down = t->dir[SIDE_UPSTREAM].bytes,
        .opened_ms = t->opened_ms,
        .closed_ms = t->last_ms,
        .cause = why,
    };
    /* The client socket goes back to its owner, which closes it. */
    t->on_close(t->ctx, &st);
    tun_release();
}

static int set_events(tun *t, int s, uint32_t ev)
{
    if (t->ev[s] == ev)
        return 0;
    struct epoll_event e = {.events = ev,
                            .data.u64 = TUN_EPOLL_TAG | (uint64_t)(uintptr_t)t | (uint64_t)s};
    if (epoll_ctl(t->ts->ep, EPOLL_CTL_MOD, t->fd[s], &e) != 0)
        return -1;
    t->ev[s] = ev;
    return 0;
}

/* Keep bytes that could not be written yet; 0, or -1 out of memory. */
static int keep(tun_dir *d, const char *p, size_t n)
{
    if (!d->buf && !(d->buf = malloc(TUN_BUF)))
        return -1;
    memcpy(d->buf, p, n);
    d->off = 0;
    d->len = n;
    return 0;
}

/* Move bytes from side s to the other side until either would block.
 * Returns TUN_CAUSE_UNSET to go on, or why the tunnel must end. */
static tun_cause pump(tun *t, int s, int64_t now)
{
    tun_dir *d = &t->dir[s];
    int to = 1 - s;
    char stack[TUN_BUF];
    for (;;) {
        while (d->len > 0) {
            ssize_t n = send(t->fd[to], d->buf + d->off, d->len, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                    return TUN_CAUSE_UNSET;
                return side_cause(to);
            }
            d->off += (size_t)n;
            d->len -= (size_t)n;
            t->last_ms = now;
        }
        if (d->buf) {
            /* Empty: give the memory back, an idle tunnel holds none. */
            free(d->buf);
            d->buf = NULL;
            d->off = 0;
        }
        if (d->eof) {
            if (!d->shut) {
                shutdown(t->fd[to], SHUT_WR);
                d->shut = true;
            }
            return TUN_CAUSE_UNSET;
        }
        ssize_t n = recv(t->fd[s], stack, sizeof(stack), 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return TUN_CAUSE_UNSET;
            return side_cause(s);
        }
        if (n == 0) {
            d->eof = true;
            if (t->first_eof == TUN_CAUSE_UNSET)
                t->first_eof = side_cause(s);
            continue;
        }
        d->bytes += (uint64_t)n;
        t->last_ms = now;
        wsf_feed(&d->fr, stack, (size_t)n);
        ssize_t w = send(t->fd[to], stack, (size_t)n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return side_cause(to);
            w = 0;
        }
        if (w < n && keep(d, stack + w, (size_t)(n - w)) != 0)
            return TUN_ERROR;
        if ((size_t)n < sizeof(stack) && w == n)
            /* A short read drained the socket (as far as it knows now): the
             * next readiness event brings the rest, or the EOF. */
            return TUN_CAUSE_UNSET;
    }
}

/* Pump both directions, then ask epoll for what each side waits on. */
/* Pump the directions in mask (bit s: bytes read from side s), then ask epoll
 * for what each side waits on. */
static void run(tun *t, int64_t now, unsigned mask)
{
    for (int s = 0; s < 2; s++) {
        if (!(mask & (1u << s)))
            continue;
        tun_cause c = pump(t, s, now);
        if (c != TUN_CAUSE_UNSET) {
            tun_end(t, c);
            return;
        }
    }
    if (t->dir[0].eof && t->dir[0].shut && t->dir[1].eof && t->dir[1].shut) {
        tun_end(t, t->first_eof);
        return;
    }
    for (int s = 0; s < 2; s++) {
        /* Read side s while its bytes have somewhere to go; write to it
         * while the other direction holds bytes for it. */
        uint32_t ev = (!t->dir[s].eof && t->dir[s].len == 0 ? EPOLLIN : 0) |
                      (t->dir[1 - s].len > 0 ? EPOLLOUT : 0);
        if (set_events(t, s, ev) != 0) {
            tun_end(t, TUN_ERROR);
            return;
        }
    }
}

/* The gateway's own end of a tunnel (idle, token expiry, drain) is a
 * WebSocket close handshake toward each side that is between frames: a close
 * frame (masked toward the upstream, for which the gateway is the client),
 * the write half shut after it, then what the side still sends is read and
 * dropped until its own close frame or EOF, for at most TUN_CLOSE_WAIT_MS. A
 * side that is not between frames (or that the frame cannot reach at once
 * within the direction's buffer) is shut both ways at once, as before. The
 * tunnel ends when both sides are done or the time is up, with the cause
 * that started the close. Nothing is relayed any more: each side has been
 * told (or shown) that the tunnel ends. */

static uint16_t close_code(tun_cause why, const char **reason)
{
    switch (why) {
    case TUN_TOKEN_EXPIRED:
        *reason = "token expired";
        return WSF_CLOSE_POLICY;
    case TUN_IDLE:
        /* Not 1000: clients that reconnect on anything but a normal
         * closure should come back when they need the tunnel again. */
        *reason = "idle timeout";
        return WSF_CLOSE_GOING_AWAY;
    default:
        *reason = "going away";
        return WSF_CLOSE_GOING_AWAY;
    }
}

/* Nothing more to do with side x: out of the epoll set (a shut socket would
 * report HUP on every turn), its waiting bytes dropped; abrupt shuts it both
 * ways, as a tunnel ended before close frames existed. */
static void side_done(tun *t, int x, bool abrupt)
{
    if (t->done[x])
        return;
    t->done[x] = true;
    epoll_ctl(t->ts->ep, EPOLL_CTL_DEL, t->fd[x], NULL);
    t->ev[x] = 0;
    if (abrupt)
        shutdown(t->fd[x], SHUT_RDWR);
    tun_dir *d = &t->dir[1 - x];
    free(d->buf);
    d->buf = NULL;
    d->off = d->len = 0;
}

/* Put the gateway's close frame behind whatever waits toward side x. false
 * when it cannot go whole: no room in the direction's buffer, no random mask
 * key, or the socket already failed. */
static bool queue_close(tun *t, int x, uint16_t code, const char *reason)
{
    uint8_t mask[4], fr[WSF_CLOSE_MAX];
    /* RFC 6455 5.3: a client masks every frame with an unpredictable key. */
    if (x == SIDE_UPSTREAM && ag_random(mask, sizeof(mask)) != 0)
        return false;
    size_t n = wsf_close_frame(fr, sizeof(fr), code, reason, x == SIDE_UPSTREAM ? mask : NULL);
    if (n == 0)
        return false;
    tun_dir *d = &t->dir[1 - x];
    if (!d->buf) {
        ssize_t w = send(t->fd[x], fr, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR)
                return false;
            w = 0;
        }
        return (size_t)w == n || keep(d, (const char *)fr + w, n - (size_t)w) == 0;
    }
    if (d->len + n > TUN_BUF)
        return false;
    if (d->off + d->len + n > TUN_BUF) {
        memmove(d->buf, d->buf + d->off, d->len);
        d->off = 0;
    }
    memcpy(d->buf + d->off + d->len, fr, n);
    d->len += n;
    return true;
}

static void run_closing(tun *t, int64_t now)
{
    char sink[16384];
    for (int x = 0; x < 2; x++) {
        if (t->done[x])
            continue;
        tun_dir *d = &t->dir[1 - x], *in = &t->dir[x];
        bool lost = false;
        while (d->len > 0) {
            ssize_t n = send(t->fd[x], d->buf + d->off, d->len, MSG_NOSIGNAL);
            if (n < 0) {
                lost = errno != EAGAIN && errno != EINTR;
                break;
            }
            d->off += (size_t)n;
            d->len -= (size_t)n;
        }
        if (!lost && d->len == 0 && !d->shut) {
            free(d->buf);
            d->buf = NULL;
            d->off = 0;
            shutdown(t->fd[x], SHUT_WR);
            d->shut = true;
        }
        /* A bounded number of reads per turn: a side that keeps sending
         * instead of answering cannot hold the worker. */
        for (int i = 0; !lost && i < 16 && !in->eof && !wsf_saw_close(&in->fr); i++) {
            ssize_t n = recv(t->fd[x], sink, sizeof(sink), 0);
            if (n < 0) {
                lost = errno != EAGAIN && errno != EINTR;
                break;
            }
            if (n == 0) {
                in->eof = true;
                break;
            }
            wsf_feed(&in->fr, sink, (size_t)n);
            if ((size_t)n < sizeof(sink))
                break;
        }
        if (lost)
            side_done(t, x, true);
        else if (d->shut && (in->eof || wsf_saw_close(&in->fr)))
            side_done(t, x, false);
    }
    if (t->done[0] && t->done[1]) {
        t->last_ms = now;
        tun_end(t, t->closing);
        return;
    }
    for (int x = 0; x < 2; x++) {
        if (t->done[x])
            continue;
        tun_dir *in = &t->dir[x];
        uint32_t ev = (in->eof || wsf_saw_close(&in->fr) ? 0 : EPOLLIN) |
                      (t->dir[1 - x].len > 0 ? EPOLLOUT : 0);
        if (set_events(t, x, ev) != 0) {
            t->last_ms = now;
            tun_end(t, t->closing);
            return;
        }
    }
}

/* Start the close handshake (see above); may end the tunnel at once when
 * neither side can take part. Never from inside tun_open. */
static void begin_close(tun *t, tun_cause why, int64_t now)
{
    if (t->dead || t->closing)
        return;
    t->closing = why;
    t->ts->nclosing++;
    t->close_by_ms = now + TUN_CLOSE_WAIT_MS;
    const char *reason = NULL;
    uint16_t code = close_code(why, &reason);
    for (int x = 0; x < 2; x++) {
        tun_dir *d = &t->dir[1 - x]; /* toward x */
        bool wait;
        if (wsf_saw_close(&d->fr))
            /* The other peer's close frame already went to x: x answers
             * that one, a second would break its handshake. */
            wait = true;
        else if (d->eof)
            /* x's stream ends (or ended) without a close frame. */
            wait = false;
        else
            wait = wsf_at_boundary(&d->fr) && queue_close(t, x, code, reason);
        if (!wait)
            side_done(t, x, true);
    }
    run_closing(t, now);
}

int tun_open(tun_set *ts, const tun_open_args *a, int64_t now_ms)
{
    tun *t = calloc(1, sizeof(*t));
    if (!t)
        goto fail;
    t->ts = ts;
    t->fd[SIDE_CLIENT] = a->client_fd;
    t->fd[SIDE_UPSTREAM] = a->upstream_fd;
    t->opened_ms = t->last_ms = now_ms;
    t->idle_ms = a->idle_ms;
    t->expires_ms = a->expires_ms;
    t->on_close = a->on_close;
    t->ctx = a->ctx;
    if ((a->to_upstream_len &&
         keep(&t->dir[SIDE_CLIENT], a->to_upstream, a->to_upstream_len) != 0) ||
        (a->to_client_len && keep(&t->dir[SIDE_UPSTREAM], a->to_client, a->to_client_len) != 0))
        goto fail;
    t->dir[SIDE_CLIENT].bytes = a->to_upstream_len;
    t->dir[SIDE_UPSTREAM].bytes = a->to_client_len;
    /* Both streams start at a frame boundary right after the 101. */
    wsf_init(&t->dir[SIDE_CLIENT].fr);
    wsf_init(&t->dir[SIDE_UPSTREAM].fr);
    wsf_feed(&t->dir[SIDE_CLIENT].fr, a->to_upstream, a->to_upstream_len);
    wsf_feed(&t->dir[SIDE_UPSTREAM].fr, a->to_client, a->to_client_len);
    for (int s = 0; s < 2; s++) {
        /* Messages are relayed as they come: no Nagle delay, and no cork
         * left over from the 101 libmicrohttpd just sent. */
        int one = 1, zero = 0;
        setsockopt(t->fd[s], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(t->fd[s], IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
        /* Both directions are pumped on the first event rather than here:
         * tun_open runs inside libmicrohttpd's upgrade callback, where the
         * tunnel must not end (and hand the client socket back) yet. A
         * writable socket makes that event immediate. */
        t->ev[s] = EPOLLIN | EPOLLOUT;
        struct epoll_event e = {.events = t->ev[s],
                                .data.u64 = TUN_EPOLL_TAG | (uint64_t)(uintptr_t)t | (uint64_t)s};
        if (epoll_ctl(ts->ep, EPOLL_CTL_ADD, t->fd[s], &e) != 0) {
            if (s == 1)
                epoll_ctl(ts->ep, EPOLL_CTL_DEL, t->fd[0], NULL);
            goto fail;
        }
    }
    t->next = ts->live;
    if (ts->live)
        ts->live->prev = t;
    ts->live = t;
    ts->nlive++;
    return 0;
fail:
    if (t) {
        free(t->dir[0].buf);
        free(t->dir[1].buf);
        free(t);
    }
    close(a->upstream_fd);
    tun_stats st = {.opened_ms = now_ms, .closed_ms = now_ms, .cause = TUN_ERROR};
    a->on_close(a->ctx, &st);
    tun_release();
    return -1;
}

void tun_event(tun_set *ts, uint64_t data, uint32_t events)
{
    (void)ts;
    tun *t = (tun *)(uintptr_t)(data & ~(TUN_EPOLL_TAG | 1ull));
    int s = (int)(data & 1ull);
    if (t->dead)
        return;
    if (t->closing) {
        if (events & EPOLLERR)
            side_done(t, s, true);
        run_closing(t, ag_now_mono_ms());
        return;
    }
    if ((events & EPOLLERR) || ((events & EPOLLHUP) && t->dir[s].len > 0 && !t->dir[s].eof)) {
        /* A reset, or a side gone both ways while we hold bytes we could not
         * read: nothing more can move. */
        t->last_ms = ag_now_mono_ms();
        tun_end(t, side_cause(s));
        return;
    }
    /* Readable (or closed): its bytes move on. Writable: the other
     * direction's waiting bytes go out. Nothing else changed. */
    unsigned mask = 0;
    if (events & (EPOLLIN | EPOLLHUP))
        mask |= 1u << s;
    if (events & (EPOLLOUT | EPOLLHUP))
        mask |= 1u << (1 - s);
    run(t, ag_now_mono_ms(), mask);
}

void tun_sweep(tun_set *ts, int64_t now_ms)
{
    while (ts->dead) {
        tun *t = ts->dead;
        ts->dead = t->next_dead;
        free(t);
    }
    if (now_ms < ts->next_sweep_ms)
        return;
    ts->next_sweep_ms = now_ms + 100;
    for (tun *t = ts->live, *nx; t; t = nx) {
        nx = t->next;
        if (t->closing) {
            /* Out of time: whoever has not answered is cut off. */
            if (now_ms >= t->close_by_ms) {
                t->last_ms = now_ms;
                tun_end(t, t->closing);
            }
        } else if (t->expires_ms && now_ms >= t->expires_ms) {
            begin_close(t, TUN_TOKEN_EXPIRED, now_ms);
        } else if (now_ms - t->last_ms >= t->idle_ms) {
            begin_close(t, TUN_IDLE, now_ms);
        }
    }
}

void tun_begin_close_all(tun_set *ts, tun_cause why, int64_t now_ms)
{
    if (ts->nclosing == ts->nlive)
        return;
    for (tun *t = ts->live, *nx; t; t = nx) {
        nx = t->next;
        begin_close(t, why, now_ms);
    }
}

void tun_close_all(tun_set *ts, tun_cause why)
{
    int64_t now = ag_now_mono_ms();
    while (ts->live) {
        tun *t = ts->live;
        /* The close frames go out if the sockets take them now; nobody
         * waits for the answers. */
        begin_close(t, why, now);
        if (t->dead)
            continue;
        for (int s = 0; s < 2; s++)
            if (t->fd[s] >= 0)
                shutdown(t->fd[s], SHUT_RDWR);
        t->last_ms = now;
        tun_end(t, t->closing);
    }
}

size_t tun_count(const tun_set *ts)
{
    return ts ? ts->nlive : 0;
}

void tun_set_free(tun_set *ts)
{
    if (!ts)
        return;
    tun_close_all(ts, TUN_DRAIN);
    ts->next_sweep_ms = INT64_MAX;
    tun_sweep(ts, 0);
    free(ts);
}
