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
    /* The per-connection pool holds the whole request head; size it from the
     * configured header limit (default 32 KiB would refuse many-org tokens). */
    /* libmicrohttpd 0.9.75 zeroes the whole pool after every request and keeps
     * it resident for the life of the connection, so its size is both a
     * per-request cost and the memory of every idle keep-alive client. Room
     * for the head plus the per-header bookkeeping, and no more. */
    size_t pool = c->limits.max_header_bytes + 1024 + c->limits.max_headers * 48;
    w->mhd = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET |
            MHD_ALLOW_UPGRADE,
        0, NULL, NULL, access_handler, w, MHD_OPTION_URI_LOG_CALLBACK, uri_log_cb, w,
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
            front_drain_idle(w, now_ms(), s->drain_start_ms);
            if (stopping > 1 || w->open_conns == 0 || now_ms() >= s->stop_deadline_ms)
                break;
        } else if (!w->accepting && cn_has_room(s->budget)) {
            listener_arm(w, true);
        }
        int64_t t = w->conns ? 100 : 250;
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
        up_sweep(w->up, now_ms(), 0);
        tun_sweep(w->tuns, now_ms());
        front_sweep(w, now_ms());
        maybe_trim(w, now_ms());
        MHD_run(w->mhd);
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
    __atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

void worker_destroy(worker *w)
{
    if (w->mhd)
        MHD_stop_daemon(w->mhd);
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
