/* resolve: process-wide background resolution of upstream host names, so no
 * worker thread ever waits for DNS.
 *
 * One resolver thread calls plain getaddrinfo(3). Chosen over the alternatives
 * because it keeps exactly the system's answers (nsswitch, /etc/hosts, gai.conf
 * ordering, the same as curl and getent see), needs no new dependency, and the
 * load is tiny (each name once per refresh period):
 *  - getaddrinfo_a(3) (glibc) runs its own helper threads anyway, notifies by
 *    signal or by yet another thread, and cannot cancel a lookup in progress,
 *    so it buys nothing over one owned thread and complicates shutdown;
 *  - c-ares does not go through NSS (no nsswitch modules, different ordering),
 *    so the gateway could reach other addresses than the operator's tools.
 * The cost of one thread: lookups run one after another, so a name whose DNS
 * server hangs delays the other names' refreshes (never a request: requests only
 * read the last good answer).
 *
 * Contract:
 *  - rs_add registers host+port once (same pair, host compared without case,
 *    returns the same id) from any thread, at load or at reload. Numeric hosts
 *    (IPv4, bare IPv6 literal without brackets) are answered inside rs_add and
 *    never looked up again. A name is looked up at once by the thread, then every
 *    refresh_ms; a failing name is retried after 1 s, doubling up to refresh_ms.
 *  - rs_get never blocks on DNS: it copies the last published answer under a
 *    per-name mutex that is only ever held for a copy (about 2 KiB at most).
 *    rs_generation is one lock-free load, for callers that cache the copy.
 *  - Fail closed: RS_UNKNOWN (zero, no answer yet) and RS_FAILED (never
 *    resolved; err says why) carry no address. A failed refresh keeps the last
 *    good answer (RS_READY) and is logged once per failure streak.
 *  - on_update(ctx) runs on the resolver thread after a name's state or address
 *    list changed. It must be quick and must not call rs_free (it is meant to
 *    write an eventfd that wakes the workers).
 *  - rs_free stops the thread. If a lookup is still inside getaddrinfo after
 *    RS_FREE_WAIT_MS, the thread is detached and frees the resolver itself when
 *    the lookup returns; on_update is never called once rs_free has returned.
 *  - Create the resolver after any fork (a thread does not survive fork). The
 *    thread blocks every signal, so signals reach the daemon's own threads.
 *  - Names are never unregistered: a name a reload dropped keeps being
 *    refreshed (one lookup per refresh_ms) until rs_free. */
#ifndef AG_RESOLVE_H
#define AG_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RS_MAX_ADDRS 16        /* addresses kept per name, in getaddrinfo order */
#define RS_MAX_NAMES 65536     /* rs_add refuses more */
#define RS_HOST_MAX 255        /* longest host name accepted */
#define RS_FREE_WAIT_MS 1000   /* rs_free waits this long for a lookup in progress */
#define RS_RETRY_FIRST_MS 1000 /* first retry after a failed lookup */
#define RS_REFRESH_MAX_MS (7L * 24 * 3600 * 1000)

typedef enum rs_state {
    RS_UNKNOWN = 0, /* not answered yet (lookup pending): no address */
    RS_FAILED,      /* never resolved successfully: no address, err says why */
    RS_READY,       /* the last good answer, possibly older than a failed refresh */
} rs_state;

typedef struct rs_addr {
    struct sockaddr_storage sa;
    socklen_t len;
} rs_addr;

typedef struct rs_addrs {
    uint64_t gen; /* changes whenever the state or the address list changes */
    size_t n;     /* only a[0..n) is written */
    rs_addr a[RS_MAX_ADDRS];
} rs_addrs;

typedef struct rs_resolver rs_resolver;

/* NULL on failure (allocation, thread creation, refresh_ms outside
 * 1..RS_REFRESH_MAX_MS). None of these functions is async-signal-safe: call
 * rs_resolve_now from the reload path, not from a signal handler. */
rs_resolver *rs_new(long refresh_ms, void (*on_update)(void *ctx), void *ctx);
void rs_free(rs_resolver *r);

/* Id >= 0, or -1 (bad host or port, more than RS_MAX_NAMES names, no memory).
 * port is decimal digits (service names are not looked up). */
int rs_add(rs_resolver *r, const char *host, const char *port);

/* Copies the current answer into *out (out->n = 0 unless RS_READY) and, for
 * RS_FAILED, the reason into err (always NUL-terminated when errlen > 0). An
 * unknown id is RS_FAILED. */
rs_state rs_get(rs_resolver *r, int id, rs_addrs *out, char *err, size_t errlen);

/* out->gen of the answer rs_get would copy now; 0 for an unknown id. */
uint64_t rs_generation(rs_resolver *r, int id);

/* Look every name up again now (SIGHUP). */
void rs_resolve_now(rs_resolver *r);

/* ---- TEST ONLY -------------------------------------------------------------
 * Replaces getaddrinfo for names (numeric hosts never reach it). Read once by
 * rs_new; NULL means the real lookup. Returns 0 and fills out (n >= 1), or -1
 * with a reason in err. The daemon never sets it. */
typedef int (*rs_lookup_fn)(const char *host, const char *port, rs_addrs *out, char *err,
                            size_t errlen);
extern rs_lookup_fn rs_test_lookup;

#endif
