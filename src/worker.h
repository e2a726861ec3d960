/* worker: internal to the front end. One worker is one thread running one
 * event loop (epoll) that drives a libmicrohttpd daemon (external epoll mode)
 * and the upstream clients (upstream.h). Everything an exchange touches lives
 * on its worker's thread, so exchanges need no locks. */
#ifndef AG_WORKER_H
#define AG_WORKER_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gate.h"
#include "keys.h"
#include "upstream.h"
#include "util.h"

struct tc_cache;
struct srv;

#define XB_CAP (64 * 1024)

/* A bounded linear byte queue: the producer appends, the consumer takes from
 * the front; compacted when the front is consumed. */
typedef struct xbuf {
    char *p;
    size_t off, len;
} xbuf;

typedef struct xchg xchg;

typedef struct worker {
    struct srv *srv;
    int id;
    int ep;         /* epoll */
    int evfd;       /* wake-ups (shutdown, reload, resolver answers) */
    bool accepting; /* the shared listener is in this worker's epoll set */
    struct MHD_Daemon *mhd;
    int mhd_ep;
    up_worker *up;       /* the upstream clients of this worker */
    struct xpolicy *pol; /* this worker's reference to the current policy */
    keys_snapshot *keys; /* this worker's reference to the current keys */
    uint64_t keys_gen;
    struct tc_cache *cache;
    xchg *proxying;     /* exchanges with an upstream exchange (resumed on stop) */
    char *buf_pool[64]; /* XB_CAP body buffers kept for reuse */
    int nbuf_pool;
    uint64_t open_conns;
    uint64_t closed_since_trim; /* connections closed since the last malloc_trim */
    int64_t last_trim_ms;
    uint64_t nx;  /* exchanges alive on this worker */
    int finished; /* atomic: the loop has exited */
} worker;

/* The policy a request is decided and forwarded under: the gate plus what
 * the transport compiles from the same configuration (upstream targets).
 * Immutable, reference counted; a reload swaps it. */
typedef struct xpolicy {
    gate *gate;
    struct fwd_rules *rules;     /* what crosses the gateway (fwd.h) */
    struct fwd_target *ftargets; /* one per cfg upstream, same index */
    up_target *targets;          /* the clients' view of the same URLs */
    size_t ntargets;
    int refs; /* atomic */
} xpolicy;

enum xstate {
    XS_NEW = 0,   /* URI seen, headers not yet */
    XS_REJECTED,  /* decided to answer ourselves; response pending */
    XS_PROXYING,  /* upstream transfer running */
    XS_RESPONDED, /* a response has been queued to the client */
};

/* One request on the front end. Every field is written by server.c; the
 * upstream side reaches it only through the callbacks in up_callbacks. */
struct xchg {
    worker *w;
    struct MHD_Connection *conn;
    enum xstate state;
    char *target; /* raw request-target (copied from the URI log callback) */
    size_t target_len;
    const char *method;
    xpolicy *pol; /* the policy this request is decided under */
    gate *gate;   /* pol->gate */
    char request_id[64];
    char client_addr[64];
    uint64_t t_start_ns, t_upstream_ns, t_upstream_hdr_ns;
    int status;       /* status sent to the client */
    bool close_after; /* protocol error: answer and close */
    bool has_body;
    uint64_t body_declared; /* Content-Length, or UINT64_MAX when chunked */
    uint64_t body_seen;
    bool is_head;
    bool suspended;
    int watch_fd; /* the client socket in our epoll while suspended, or -1 */
    bool client_body_done;
    bool drain_bounded; /* refused mid-body: drop at most drain_left more */
    uint64_t drain_left;

    /* Upstream side, written only by the up_callbacks handlers. */
    up_exchange *up;            /* NULL once done or never started */
    bool upstream_done;         /* on_done arrived (or the start failed) */
    up_result upstream_res;     /* how it ended */
    const char *upstream_error; /* reason code when the upstream failed */
    long upstream_status;
    bool resp_headers_done;
    ag_buf resp_hdrs;            /* header lines of the final response */
    int64_t resp_content_length; /* -1 unknown */
    uint64_t resp_bytes;
    xbuf reqbody, respbody;
    xchg *next, *prev; /* worker->proxying */
    bool listed;
    const gate_header *hdrs_in; /* the client's headers; valid only inside on_headers */
    size_t nhdrs_in;
    ag_buf head;     /* request head / header lines built for the upstream */
    gate_decision d; /* last: large, initialised by gate_decision_init */
};

/* proxy.c: the request that goes upstream, built from the admitted headers
 * and the decision. */
int px_build_head(xchg *x, const up_target *t, ag_buf *out); /* http:// */
int px_build_lines(xchg *x, ag_buf *out);                    /* https:// */

int64_t now_ms(void);
char *xb_get(worker *w);
void xb_put(worker *w, char *p);

static inline size_t xbuf_space(const xbuf *b)
{
    return XB_CAP - b->off - b->len;
}

/* Move up to max bytes from the front of b into out; returns how many. */
static inline size_t xbuf_take(xbuf *b, char *out, size_t max)
{
    size_t k = b->len < max ? b->len : max;
    memcpy(out, b->p + b->off, k);
    b->off += k;
    b->len -= k;
    if (b->len == 0)
        b->off = 0;
    return k;
}

#endif
