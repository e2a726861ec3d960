/* worker: one thread, one epoll loop. It accepts from the shared listener
 * within the process-wide budget, runs its libmicrohttpd daemon (external
 * epoll mode) and its upstream clients, keeps its reference to the current
 * policy and keys, and drains on shutdown. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conns.h"
#include "hpeek.h"
#include "log.h"
#include "tcache.h"
#include "tun.h"
#include "worker.h"

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

/* ---- choosing the pool (hpeek.h) ------------------------------------------
 * With two daemons, an accepted socket waits here, in this worker's epoll set
 * (edge-triggered: a client that sends nothing more costs no wake-ups), until
 * its first head is complete, outgrows the small pool, or the head deadline
 * (request_timeout_ms from accept, as for any head) passes. Nothing is read:
 * the daemon that gets the socket reads the head itself. */

/* The small pool. libmicrohttpd reads a head into a buffer of half the free
 * pool and grows it by about 1 KiB per turn of the loop, rescanning the
 * unfinished line each time: a head longer than half the pool costs twice as
 * much CPU (a 10-org token, 7.7 KB, went from 29 to 60 us in a 12 KiB pool).
 * So the small pool takes heads that fit its first read (1- to 5-org tokens
 * with ordinary headers); longer ones get the pool sized from
 * max_header_bytes, as every connection did before. */
#define SMALL_POOL 12288
#define SMALL_HEAD (SMALL_POOL / 2 - 512) /* the cost budget of hpeek.h */

typedef struct peeking {
    int fd;
    socklen_t sl;
    int64_t deadline_ms;
    struct peeking *next, *prev;
    struct sockaddr_storage ss;
} peeking;

static size_t pool_bytes(const cfg_limits *lim, size_t head)
{
    /* Room for the head plus libmicrohttpd's per-header bookkeeping, and no
     * more: the pool is cleared twice per request and stays resident for the
     * life of the connection, idle or not. */
    return head + 1024 + lim->max_headers * 48;
}

/* The big daemon is run every loop turn while it has connections (as the
 * small one always is) and otherwise only when one was just handed to it:
 * most turns serve small-pool connections only, and an idle MHD_run is still
 * a syscall. */
static __thread bool big_kick;

static bool big_busy(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return !di || di->num_connections > 0;
}

/* The budget slot taken at accept moves with the socket. */
static void hand_over(worker *w, struct MHD_Daemon *d, int fd, struct sockaddr_storage *ss,
                      socklen_t sl)
{
    if (d == w->mhd_big)
        big_kick = true;
    if (MHD_add_connection(d, fd, (struct sockaddr *)ss, sl) != MHD_YES &&
        cn_release(w->srv->budget, (struct sockaddr *)ss)) /* libmicrohttpd closed fd */
        w->budget_freed = true;
}

static void peek_drop(worker *w, int fd, struct sockaddr_storage *ss)
{
    close(fd);
    if (cn_release(w->srv->budget, (struct sockaddr *)ss))
        w->budget_freed = true;
}

/* What the client has sent so far says which pool it gets, or HP_WAIT. */
static hp_verdict peek_judge(worker *w, int fd, bool eof)
{
    char buf[SMALL_HEAD + 1];
    size_t want = sizeof(buf);
    ssize_t n = recv(fd, buf, want, MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0) {
        /* Nothing yet, or reset / closed before a byte. */
        if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
            eof = true;
        n = 0;
    }
    return hp_classify(buf, (size_t)n, w->small_head, eof);
}

static void settle(worker *w, hp_verdict v, int fd, struct sockaddr_storage *ss, socklen_t sl)
{
    switch (v) {
    case HP_SMALL:
        hand_over(w, w->mhd, fd, ss, sl);
        return;
    case HP_BIG:
        hand_over(w, w->mhd_big, fd, ss, sl);
        return;
    case HP_WAIT: /* not for here */
    case HP_DROP:
        break;
    }
    peek_drop(w, fd, ss);
}

static void peek_unlink(worker *w, peeking *p)
{
    if (p->next)
        p->next->prev = p->prev;
    if (p->prev)
        p->prev->next = p->next;
    else
        w->peeking = p->next;
}

static void peek_add(worker *w, int fd, struct sockaddr_storage *ss, socklen_t sl)
{
    peeking *p = calloc(1, sizeof(*p));
    if (!p) {
        hand_over(w, w->mhd, fd, ss, sl);
        return;
    }
    p->fd = fd;
    p->sl = sl;
    memcpy(&p->ss, ss, sizeof(p->ss));
    p->deadline_ms = ag_now_mono_ms() + gate_config(w->pol->gate)->limits.request_timeout_ms;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET,
                             .data.u64 = PEEK_TAG | (uint64_t)(uintptr_t)p};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        /* Cannot watch it: the small pool, as without a big one. */
        free(p);
        hand_over(w, w->mhd, fd, ss, sl);
        return;
    }
    p->next = w->peeking;
    if (w->peeking)
        w->peeking->prev = p;
    w->peeking = p;
}

static void peek_event(worker *w, peeking *p, uint32_t events)
{
    hp_verdict v = peek_judge(w, p->fd, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    if (v == HP_WAIT)
        return;
    /* Out of this epoll set before a daemon adds it to its own. */
    epoll_ctl(w->ep, EPOLL_CTL_DEL, p->fd, NULL);
    peek_unlink(w, p);
    settle(w, v, p->fd, &p->ss, p->sl);
    free(p);
}

/* Heads not complete by the deadline are closed, as libmicrohttpd's would be
 * (front_sweep); on drain every waiting socket is closed (none has a request
 * in progress). */
static void peek_sweep(worker *w, int64_t now, bool all)
{
    for (peeking *p = w->peeking, *next; p; p = next) {
        next = p->next;
        if (!all && now < p->deadline_ms)
            continue;
        if (!all)
            log_info("client_header_timeout: request head not complete within "
                     "request_timeout_ms (worker %d), closing",
                     w->id);
        peek_unlink(w, p);
        peek_drop(w, p->fd, &p->ss);
        free(p);
    }
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
        hp_verdict v2;
        if (v != CN_TAKEN) {
            /* Over max_connections_per_ip, or another worker took the last
             * slot between the check and the accept. */
            close(fd);
            continue;
        }
        if (!w->mhd_big)
            hand_over(w, w->mhd, fd, &ss, sl);
        else if ((v2 = peek_judge(w, fd, false)) == HP_WAIT)
            peek_add(w, fd, &ss, sl);
        else
            settle(w, v2, fd, &ss, sl);
    }
}

static struct MHD_Daemon *start_daemon(worker *w, const cfg_limits *lim, size_t pool, int *ep)
{
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET |
            MHD_ALLOW_UPGRADE,
        0, NULL, NULL, access_handler, w, MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, w,
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, w, MHD_OPTION_NOTIFY_CONNECTION, conn_cb, w,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        /* The process-wide budget (conns.h) is the limit; this is a backstop. */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)lim->max_connections + 16,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((lim->idle_timeout_ms + 999) / 1000),
        MHD_OPTION_END);
    if (!d) {
        log_error("libmicrohttpd failed to start worker %d", w->id);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    *ep = di ? di->epoll_fd : -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)*ep};
    if (*ep < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, *ep, &ev) != 0) {
        MHD_stop_daemon(d);
        return NULL;
    }
    return d;
}

int worker_init(worker *w, srv *s, int id)
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
    if (!(w->tuns = tun_set_new(w->ep)))
        return -1;
    w->cache = c->auth.token_cache_entries
                   ? tc_new(c->auth.token_cache_entries, 64u * 1024 * 1024 / (size_t)s->nworkers)
                   : NULL;
    /* The per-connection pool holds the whole request head. When the
     * configured limit is above an ordinary head, a second daemon with the
     * big pool takes the connections whose first head needs it (hpeek.h). */
    const cfg_limits *lim = &c->limits;
    bool two = pool_bytes(lim, lim->max_header_bytes) > SMALL_POOL;
    w->small_head = SMALL_HEAD;
    w->mhd_ep = w->mhd_big_ep = -1;
    if (!(w->mhd = start_daemon(w, lim, two ? SMALL_POOL : pool_bytes(lim, lim->max_header_bytes),
                                &w->mhd_ep)))
        return -1;
    if (two && !(w->mhd_big =
                     start_daemon(w, lim, pool_bytes(lim, lim->max_header_bytes), &w->mhd_big_ep)))
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)w->evfd};
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

void *worker_main(void *arg)
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
            peek_sweep(w, ag_now_mono_ms(), true);
            front_drain_idle(w, ag_now_mono_ms(), s->drain_start_ms);
            /* Tunnels get their WebSocket close handshake in the last part
             * of the grace, so the worker still leaves by the deadline. */
            if (ag_now_mono_ms() >= s->stop_deadline_ms - TUN_CLOSE_WAIT_MS)
                tun_begin_close_all(w->tuns, TUN_DRAIN, ag_now_mono_ms());
            if (stopping > 1 || w->open_conns == 0 || ag_now_mono_ms() >= s->stop_deadline_ms)
                break;
        } else if (!w->accepting && cn_has_room(s->budget)) {
            listener_arm(w, true);
        }
        int64_t t = w->conns || w->peeking ? 100 : 250;
        MHD_UNSIGNED_LONG_LONG mt;
        if (MHD_get_timeout(w->mhd, &mt) == MHD_YES && (int64_t)mt < t)
            t = (int64_t)mt;
        if (w->mhd_big && MHD_get_timeout(w->mhd_big, &mt) == MHD_YES && (int64_t)mt < t)
            t = (int64_t)mt;
        t = up_sweep(w->up, ag_now_mono_ms(), t);
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
            if (tun_owns_event(tagged)) {
                tun_event(w->tuns, tagged, evs[i].events);
                continue;
            }
            if (tagged & CLIENT_TAG) {
                /* Handled after the batch: dropping the upstream side now
                 * would free a connection a later event of this batch names. */
                gone[ngone++] = (xchg *)(uintptr_t)(tagged & ~CLIENT_TAG);
                continue;
            }
            if (tagged & PEEK_TAG) {
                peek_event(w, (peeking *)(uintptr_t)(tagged & ~PEEK_TAG), evs[i].events);
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
            front_client_gone(gone[i]);
        up_sweep(w->up, ag_now_mono_ms(), 0);
        tun_sweep(w->tuns, ag_now_mono_ms());
        front_sweep(w, ag_now_mono_ms());
        if (w->peeking)
            peek_sweep(w, ag_now_mono_ms(), false);
        maybe_trim(w, ag_now_mono_ms());
        MHD_run(w->mhd);
        if (w->mhd_big && (big_kick || big_busy(w->mhd_big))) {
            big_kick = false;
            MHD_run(w->mhd_big);
        }
        if (w->budget_freed) {
            /* A connection closed while the budget was full: workers that
             * stopped accepting may start again. */
            w->budget_freed = false;
            worker_wake_all(s);
        }
    }
    /* Tunnels still open at the end of the drain grace (or on a second
     * signal) close here; libmicrohttpd then releases their connections
     * (before front_stop resumes the rest, which must not be answered). */
    tun_set_free(w->tuns);
    w->tuns = NULL;
    MHD_run(w->mhd);
    front_stop(w);
    up_worker_free(w->up);
    w->up = NULL;
    MHD_stop_daemon(w->mhd);
    w->mhd = NULL;
    if (w->mhd_big)
        MHD_stop_daemon(w->mhd_big);
    w->mhd_big = NULL;
    __atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

void worker_destroy(worker *w)
{
    peek_sweep(w, 0, true);
    if (w->mhd)
        MHD_stop_daemon(w->mhd);
    if (w->mhd_big)
        MHD_stop_daemon(w->mhd_big);
    up_worker_free(w->up);
    w->up = NULL;
    tun_set_free(w->tuns);
    w->tuns = NULL;
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

void worker_wake_all(srv *s)
{
    uint64_t one = 1;
    for (int i = 0; i < s->nworkers; i++) {
        ssize_t r = write(s->workers[i].evfd, &one, sizeof(one));
        (void)r;
    }
}
