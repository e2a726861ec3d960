/* resolve: one background thread answers host names; workers only copy the
 * last published answer. Locking: r->mu guards registration, scheduling and
 * the thread's lifecycle; each name's e->mu guards only its published answer,
 * so a worker's rs_get never waits for registration or for a lookup. Lock
 * order r->mu, then e->mu. */
#include "resolve.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "util.h"

#define RS_PAGE 64 /* entries per page; pages never move, so ids stay valid lock-free */
#define RS_ERR_MAX 160

rs_lookup_fn rs_test_lookup = NULL;

typedef struct rs_entry {
    /* set in rs_add before the entry is published, then read-only */
    char host[RS_HOST_MAX + 1];
    char port[8];
    bool numeric;
    /* resolver thread and rs_add/rs_resolve_now, under r->mu */
    int64_t due_ms;
    long backoff_ms;
    unsigned fail_streak;
    /* the published answer, under mu (gen is also readable without it) */
    pthread_mutex_t mu;
    rs_state state;
    rs_addrs ans;
    char err[RS_ERR_MAX];
    _Atomic uint64_t gen;
} rs_entry;

struct rs_resolver {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* new name, rs_resolve_now, stop */
    pthread_cond_t done; /* the thread left a callback or exited */
    pthread_t thread;
    long refresh_ms;
    void (*on_update)(void *ctx);
    void *ctx;
    rs_lookup_fn lookup;
    bool stop, exited, in_callback;
    unsigned kick;  /* bumped by every request for an immediate pass */
    unsigned again; /* bumped by rs_resolve_now */
    int refs;       /* the owner and the thread; the last to leave frees */
    int *hidx;      /* open addressing over ids by host+port, -1 = empty */
    size_t hcap;
    _Atomic int n; /* published entries; stored with release after init */
    rs_entry *pages[RS_MAX_NAMES / RS_PAGE];
};

static rs_entry *entry(rs_resolver *r, int id)
{
    return &r->pages[id / RS_PAGE][id % RS_PAGE];
}

/* getaddrinfo into an rs_addrs: stream sockets, IPv4/IPv6 only, duplicates
 * (a name listed twice in /etc/hosts) dropped, order kept. */
static int gai_lookup(const char *host, const char *port, int flags, rs_addrs *out, char *err,
                      size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | flags};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        if (rc == EAI_SYSTEM)
            snprintf(err, errlen, "%m"); /* strerror(errno), thread-safe in glibc */
        else
            snprintf(err, errlen, "%s", gai_strerror(rc));
        return rc;
    }
    out->n = 0;
    for (const struct addrinfo *p = ai; p && out->n < RS_MAX_ADDRS; p = p->ai_next) {
        if ((p->ai_family != AF_INET && p->ai_family != AF_INET6) ||
            p->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        bool dup = false;
        for (size_t j = 0; j < out->n && !dup; j++)
            dup =
                out->a[j].len == p->ai_addrlen && !memcmp(&out->a[j].sa, p->ai_addr, p->ai_addrlen);
        if (dup)
            continue;
        memset(&out->a[out->n], 0, sizeof(out->a[out->n]));
        memcpy(&out->a[out->n].sa, p->ai_addr, p->ai_addrlen);
        out->a[out->n].len = p->ai_addrlen;
        out->n++;
    }
    freeaddrinfo(ai);
    if (out->n == 0) {
        snprintf(err, errlen, "no IPv4 or IPv6 address");
        return EAI_NONAME;
    }
    return 0;
}

static int gai_name(const char *host, const char *port, rs_addrs *out, char *err, size_t errlen)
{
    return gai_lookup(host, port, 0, out, err, errlen) == 0 ? 0 : -1;
}

static bool same_addrs(const rs_addrs *a, const rs_addrs *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->a[i].len != b->a[i].len || memcmp(&a->a[i].sa, &b->a[i].sa, a->a[i].len))
            return false;
    return true;
}

/* Publishes one lookup's result; true when the state or the addresses changed.
 * Called with r->mu held. A failure never replaces a good answer. */
static bool apply(rs_resolver *r, rs_entry *e, bool ok, const rs_addrs *got, const char *why)
{
    bool changed = false;
    pthread_mutex_lock(&e->mu);
    rs_state was = e->state;
    if (ok) {
        if (e->state != RS_READY || !same_addrs(&e->ans, got)) {
            e->ans.n = got->n;
            memcpy(e->ans.a, got->a, got->n * sizeof(got->a[0]));
            e->state = RS_READY;
            changed = true;
        }
        e->err[0] = '\0';
    } else if (e->state != RS_READY) {
        snprintf(e->err, sizeof(e->err), "%s", why);
        changed = e->state != RS_FAILED;
        e->state = RS_FAILED;
    }
    if (changed) {
        e->ans.gen++;
        atomic_store_explicit(&e->gen, e->ans.gen, memory_order_release);
    }
    size_t naddr = e->ans.n;
    pthread_mutex_unlock(&e->mu);

    int64_t now = ag_now_mono_ms();
    if (ok) {
        if (e->fail_streak)
            log_info("upstream name %s:%s resolves again (%zu address%s)", e->host, e->port, naddr,
                     naddr == 1 ? "" : "es");
        e->fail_streak = 0;
        e->backoff_ms = RS_RETRY_FIRST_MS < r->refresh_ms ? RS_RETRY_FIRST_MS : r->refresh_ms;
        e->due_ms = now + r->refresh_ms;
    } else {
        if (e->fail_streak++ == 0)
            log_warn("upstream name %s:%s: cannot resolve: %s (%s)", e->host, e->port, why,
                     was == RS_READY ? "keeping the last good answer" : "no address yet");
        e->due_ms = now + e->backoff_ms;
        e->backoff_ms = e->backoff_ms * 2 < r->refresh_ms ? e->backoff_ms * 2 : r->refresh_ms;
    }
    return changed;
}

static void destroy(rs_resolver *r)
{
    int n = atomic_load_explicit(&r->n, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        pthread_mutex_destroy(&entry(r, i)->mu);
    for (size_t p = 0; p < AG_ARRAY_LEN(r->pages); p++)
        free(r->pages[p]);
    free(r->hidx);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->done);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* One pass looks up every due name (r->mu dropped around each lookup), then the
 * thread sleeps until the earliest due time or a kick. */
static void *thread_main(void *arg)
{
    rs_resolver *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        unsigned kick = r->kick;
        int64_t next = INT64_MAX;
        for (int i = 0; !r->stop && i < atomic_load_explicit(&r->n, memory_order_relaxed); i++) {
            rs_entry *e = entry(r, i);
            if (e->numeric)
                continue;
            if (e->due_ms <= ag_now_mono_ms()) {
                rs_addrs got;
                got.n = 0;
                char why[RS_ERR_MAX] = "";
                unsigned again = r->again;
                pthread_mutex_unlock(&r->mu);
                bool ok = r->lookup(e->host, e->port, &got, why, sizeof(why)) == 0 && got.n > 0 &&
                          got.n <= RS_MAX_ADDRS;
                if (!ok && !why[0])
                    snprintf(why, sizeof(why), "lookup failed");
                pthread_mutex_lock(&r->mu);
                if (r->stop)
                    break;
                bool changed = apply(r, e, ok, &got, why);
                /* Forced while this lookup ran (a reload after /etc/hosts
                 * changed): the answer may predate the change. */
                if (again != r->again)
                    e->due_ms = 0;
                if (changed && r->on_update) {
                    r->in_callback = true;
                    pthread_mutex_unlock(&r->mu);
                    r->on_update(r->ctx);
                    pthread_mutex_lock(&r->mu);
                    r->in_callback = false;
                    pthread_cond_broadcast(&r->done);
                }
            }
            if (e->due_ms < next)
                next = e->due_ms;
        }
        if (r->stop || kick != r->kick)
            continue;
        if (next == INT64_MAX) {
            pthread_cond_wait(&r->wake, &r->mu);
        } else {
            struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
            pthread_cond_timedwait(&r->wake, &r->mu, &ts);
        }
    }
    r->exited = true;
    bool last = --r->refs == 0;
    pthread_cond_broadcast(&r->done);
    pthread_mutex_unlock(&r->mu);
    if (last)
        destroy(r);
    return NULL;
}

rs_resolver *rs_new(long refresh_ms, void (*on_update)(void *ctx), void *ctx)
{
    if (refresh_ms <= 0 || refresh_ms > RS_REFRESH_MAX_MS)
        return NULL;
    rs_resolver *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->refresh_ms = refresh_ms;
    r->on_update = on_update;
    r->ctx = ctx;
    r->lookup = rs_test_lookup ? rs_test_lookup : gai_name;
    r->refs = 2;
    atomic_init(&r->n, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->wake, &ca);
    pthread_cond_init(&r->done, &ca);
    pthread_condattr_destroy(&ca);
    /* The thread inherits a full signal mask: the daemon's signals must reach
     * the threads that handle them, never this one. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, thread_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        destroy(r);
        return NULL;
    }
    return r;
}

void rs_free(rs_resolver *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->wake);
    /* A callback in flight may still use ctx, which the caller frees next. */
    while (r->in_callback)
        pthread_cond_wait(&r->done, &r->mu);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += RS_FREE_WAIT_MS / 1000;
    ts.tv_nsec += (RS_FREE_WAIT_MS % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (!r->exited)
        if (pthread_cond_timedwait(&r->done, &r->mu, &ts) == ETIMEDOUT)
            break;
    if (r->exited) {
        pthread_mutex_unlock(&r->mu);
        pthread_join(r->thread, NULL);
        destroy(r);
        return;
    }
    /* Stuck in getaddrinfo, which cannot be interrupted: the thread frees the
     * resolver when the lookup returns and it sees stop. */
    log_warn("resolver: a name lookup is still running at shutdown; not waiting for it");
    pthread_detach(r->thread);
    r->refs--;
    pthread_mutex_unlock(&r->mu);
}

static uint64_t name_hash(const char *host, const char *port)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = host; *p; p++)
        h = (h ^ (unsigned char)tolower((unsigned char)*p)) * 1099511628211ULL;
    h = (h ^ ':') * 1099511628211ULL;
    for (const char *p = port; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static int *hslot(rs_resolver *r, const char *host, const char *port)
{
    size_t mask = r->hcap - 1;
    for (size_t i = name_hash(host, port) & mask;; i = (i + 1) & mask) {
        int id = r->hidx[i];
        if (id < 0)
            return &r->hidx[i];
        rs_entry *e = entry(r, id);
        if (!strcasecmp(e->host, host) && !strcmp(e->port, port))
            return &r->hidx[i];
    }
}

/* Keeps the table at most half full so hslot always finds an empty slot. */
static int hgrow(rs_resolver *r, int n)
{
    if (r->hcap && (size_t)n + 1 <= r->hcap / 2)
        return 0;
    size_t cap = r->hcap ? r->hcap * 2 : 64;
    int *idx = malloc(cap * sizeof(*idx));
    if (!idx)
        return -1;
    for (size_t i = 0; i < cap; i++)
        idx[i] = -1;
    free(r->hidx);
    r->hidx = idx;
    r->hcap = cap;
    for (int id = 0; id < n; id++)
        *hslot(r, entry(r, id)->host, entry(r, id)->port) = id;
    return 0;
}

static bool valid_port(const char *port)
{
    size_t len = strlen(port);
    if (len == 0 || len > 5)
        return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (port[i] < '0' || port[i] > '9')
            return false;
        v = v * 10 + (port[i] - '0');
    }
    return v >= 1 && v <= 65535;
}

int rs_add(rs_resolver *r, const char *host, const char *port)
{
    if (!r || !host || !port || !host[0] || strlen(host) > RS_HOST_MAX || host[0] == '[' ||
        !valid_port(port))
        return -1;
    int id = -1;
    pthread_mutex_lock(&r->mu);
    int n = atomic_load_explicit(&r->n, memory_order_relaxed);
    if (r->hcap) {
        int *slot = hslot(r, host, port);
        if (*slot >= 0) {
            id = *slot;
            goto out;
        }
    }
    if (n >= RS_MAX_NAMES || hgrow(r, n) != 0)
        goto out;
    if (!r->pages[n / RS_PAGE] && !(r->pages[n / RS_PAGE] = calloc(RS_PAGE, sizeof(rs_entry))))
        goto out;
    rs_entry *e = entry(r, n);
    memset(e, 0, sizeof(*e));
    snprintf(e->host, sizeof(e->host), "%s", host);
    snprintf(e->port, sizeof(e->port), "%s", port);
    pthread_mutex_init(&e->mu, NULL);
    atomic_init(&e->gen, 0);
    /* A literal address needs no lookup and never changes. */
    if (gai_lookup(host, port, AI_NUMERICHOST, &e->ans, e->err, sizeof(e->err)) == 0) {
        e->numeric = true;
        e->state = RS_READY;
        e->ans.gen = 1;
        atomic_init(&e->gen, 1);
    } else {
        e->ans.n = 0;
        e->err[0] = '\0';
        e->state = RS_UNKNOWN;
        e->due_ms = 0;
        e->backoff_ms = RS_RETRY_FIRST_MS < r->refresh_ms ? RS_RETRY_FIRST_MS : r->refresh_ms;
    }
    *hslot(r, host, port) = n;
    id = n;
    atomic_store_explicit(&r->n, n + 1, memory_order_release);
    if (!e->numeric) {
        r->kick++;
        pthread_cond_signal(&r->wake);
    }
out:
    pthread_mutex_unlock(&r->mu);
    return id;
}

static rs_entry *published(rs_resolver *r, int id)
{
    if (!r || id < 0 || id >= atomic_load_explicit(&r->n, memory_order_acquire))
        return NULL;
    return entry(r, id);
}

rs_state rs_get(rs_resolver *r, int id, rs_addrs *out, char *err, size_t errlen)
{
    out->gen = 0;
    out->n = 0;
    if (errlen)
        err[0] = '\0';
    rs_entry *e = published(r, id);
    if (!e) {
        if (errlen)
            snprintf(err, errlen, "unknown name id %d", id);
        return RS_FAILED;
    }
    pthread_mutex_lock(&e->mu);
    rs_state st = e->state;
    out->gen = e->ans.gen;
    if (st == RS_READY) {
        out->n = e->ans.n;
        memcpy(out->a, e->ans.a, e->ans.n * sizeof(e->ans.a[0]));
    } else if (st == RS_FAILED && errlen) {
        snprintf(err, errlen, "%s", e->err);
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

uint64_t rs_generation(rs_resolver *r, int id)
{
    rs_entry *e = published(r, id);
    return e ? atomic_load_explicit(&e->gen, memory_order_acquire) : 0;
}

void rs_resolve_now(rs_resolver *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    int n = atomic_load_explicit(&r->n, memory_order_relaxed);
    for (int i = 0; i < n; i++)
        entry(r, i)->due_ms = 0;
    r->again++;
    r->kick++;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
}
