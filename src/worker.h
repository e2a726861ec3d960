/* worker: internal to server.c and proxy.c. One worker is one thread running one
 * event loop (epoll) that drives both a libmicrohttpd daemon (external epoll
 * mode, its own SO_REUSEPORT listener) and a libcurl multi handle
 * (curl_multi_socket_action). Everything an exchange touches lives on its
 * worker's thread, so exchanges need no locks. */
#ifndef AG_WORKER_H
#define AG_WORKER_H

#include <curl/curl.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gate.h"
#include "keys.h"
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
    int ep;   /* epoll */
    int evfd; /* wake-ups (shutdown, reload) */
    int listen_fd;
    struct MHD_Daemon *mhd;
    int mhd_ep;
    CURLM *multi;
    int64_t curl_deadline_ms; /* monotonic ms, -1 = none */
    gate *gate;               /* this worker's reference to the current gate */
    keys_snapshot *keys;      /* this worker's reference to the current keys */
    uint64_t keys_gen;
    struct tc_cache *cache;
    xchg *active;        /* exchanges with an upstream transfer */
    CURL *easy_pool[64]; /* reset easy handles kept for reuse */
    int neasy_pool;
    char *buf_pool[64]; /* XB_CAP body buffers kept for reuse */
    int nbuf_pool;
    struct ul_target *ul_targets; /* uplink: per-upstream address and idle pool */
    size_t nul_targets;
    int64_t ul_last_sweep;
    uint64_t open_conns;
    uint64_t closed_since_trim; /* connections closed since the last malloc_trim */
    int64_t last_trim_ms;
    uint64_t nx;  /* exchanges alive on this worker */
    int finished; /* atomic: the loop has exited */
} worker;

enum xstate {
    XS_NEW = 0,   /* URI seen, headers not yet */
    XS_REJECTED,  /* decided to answer ourselves; response pending */
    XS_PROXYING,  /* upstream transfer running */
    XS_RESPONDED, /* a response has been queued to the client */
};

struct xchg {
    worker *w;
    struct MHD_Connection *conn;
    enum xstate state;
    char *target; /* raw request-target (copied from the URI log callback) */
    size_t target_len;
    const char *method;
    gate *gate; /* the gate this request is decided under */
    char request_id[64];
    char client_addr[64];
    uint64_t t_start_ns, t_upstream_ns, t_upstream_hdr_ns;
    int status;       /* status sent to the client */
    bool close_after; /* protocol error: answer and close */
    bool has_body;
    uint64_t body_declared; /* Content-Length, or UINT64_MAX when chunked */
    uint64_t body_seen;

    /* Upstream side. */
    CURL *easy;
    struct curl_slist *hdrs;
    bool in_multi;
    bool upstream_done;
    CURLcode upstream_result;
    const char *upstream_error; /* reason code when the upstream failed */
    long upstream_status;
    bool resp_headers_done;
    ag_buf resp_hdrs; /* raw header lines of the final response */
    size_t resp_hdr_count;
    int64_t resp_content_length; /* -1 unknown */
    xbuf reqbody, respbody;
    bool client_body_done;
    bool send_paused, recv_paused;
    bool suspended;
    bool is_head;
    int64_t deadline_ms; /* monotonic; upstream inactivity/first-byte deadline */
    uint64_t resp_bytes;
    xchg *next, *prev; /* worker->active list */
    bool in_active;
    const gate_header *hdrs_in; /* the client's headers; valid only inside on_headers */
    size_t nhdrs_in;
    struct ul_conn *uc; /* uplink connection (http:// upstreams) */
    ag_buf url;
    gate_decision d; /* last: large, initialised by gate_decision_init */
};

/* proxy.c */
int px_worker_init(worker *w);
void px_worker_cleanup(worker *w);
int px_start(xchg *x); /* 0, or -1 with x->upstream_error set */
void px_socket_event(worker *w, int fd, uint32_t events);
void px_timeout(worker *w);
void px_check_deadlines(worker *w, int64_t now_ms);
void px_unpause(xchg *x); /* apply x->send_paused / x->recv_paused */
void px_abort(xchg *x);   /* remove the transfer; safe if none */
void px_drain_messages(worker *w);
/* worker->active: exchanges with an upstream in flight (deadline checks). */
void px_link_active(xchg *x);
void px_unlink_active(xchg *x);
void px_touch(xchg *x); /* reset the upstream inactivity deadline */

/* server.c callbacks used by proxy.c */
void srv_upstream_progress(xchg *x); /* headers ready, body data, or done */
void srv_resume(xchg *x);

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
