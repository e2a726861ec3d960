/* worker.h: the transport's internal header, shared by its files, split by
 * lifetime:
 *   server.c - the process: configuration, listener, signals, reload, drain;
 *   worker.c - one thread's event loop: accept, libmicrohttpd, upstreams;
 *   front.c  - one request: admission, decision, upstream exchange; its
 *              response is fresp.c's, its records fconn.c's (frontint.h);
 *   alog.c   - the record of one request: access log and metrics.
 * Calls go downward only (server -> worker -> front -> alog); the decision
 * (gate.h), forwarding (fwd.h) and the upstream clients (upstream.h) are below
 * all of them. One worker is one thread; everything an exchange touches lives
 * on its worker's thread, so exchanges need no locks. */
#ifndef AG_WORKER_H
#define AG_WORKER_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <pthread.h>
#include <sys/socket.h>

#include "admin.h"
#include "conns.h"
#include "gate.h"
#include "keys.h"
#include "resolve.h"
#include "upstream.h"
#include "util.h"
#include "xpolicy.h"

struct tc_cache;
struct srv;
struct conn_rec;

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
    int ep;                 /* epoll */
    int evfd;               /* wake-ups (shutdown, reload, resolver answers) */
    bool accepting;         /* the shared listener is in this worker's epoll set */
    struct MHD_Daemon *mhd; /* the small pool (the only one when heads are small) */
    int mhd_ep;
    struct MHD_Daemon *mhd_big; /* the pool sized from max_header_bytes, or NULL */
    int mhd_big_ep;
    size_t small_head;       /* the longest first head the small pool is given */
    struct peeking *peeking; /* accepted, first head not yet judged (worker.c) */
    up_worker *up;           /* the upstream clients of this worker */
    xpolicy *pol;            /* this worker's reference to the current policy */
    keys_snapshot *keys;     /* this worker's reference to the current keys */
    uint64_t keys_gen;
    struct tc_cache *cache;
    xchg *proxying;       /* exchanges with an upstream exchange (resumed on stop) */
    struct tun_set *tuns; /* WebSocket tunnels of this worker (tun.h) */
    char *buf_pool[64];   /* XB_CAP body buffers kept for reuse */
    int nbuf_pool;
    uint64_t open_conns;
    uint64_t closed_since_trim; /* connections closed since the last malloc_trim */
    int64_t last_trim_ms;
    uint64_t nx;                /* exchanges alive on this worker */
    int finished;               /* atomic: the loop has exited */
    struct conn_rec *conns;     /* this worker's open connections (fconn.c) */
    int64_t conn_next_sweep_ms; /* fconn.c */
    bool budget_freed;          /* fconn.c saw a slot freed at a full budget: wake the workers */
} worker;

enum xstate {
    XS_NEW = 0,   /* URI seen, headers not yet */
    XS_REJECTED,  /* decided to answer ourselves; response pending */
    XS_PROXYING,  /* upstream transfer running */
    XS_RESPONDED, /* a response has been queued to the client */
};

/* One request on the front end. Every field is written by front.c, fresp.c or
 * fconn.c; the upstream side reaches it only through the callbacks in
 * up_callbacks (fresp.c). */
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
    int watch_fd;         /* the client socket in our epoll while suspended, or -1 */
    int64_t suspended_ms; /* when it was suspended */
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
    ag_buf head; /* request head / header lines built for the upstream */
    /* WebSocket handshake (tun.h): forwarded with the upgrade, holding a
     * max_tunnels slot until the tunnel takes it over. */
    bool ws, ws_reserved, tunnelled;
    uint64_t t_tunnel_ns; /* when the 101 was sent: the handshake's duration ends there */
    int up_fd;            /* the upstream socket after its 101, until the tunnel takes it */
    char *up_extra;       /* bytes the upstream sent after its 101 head */
    size_t up_extra_len;
    gate_decision d; /* last: large, initialised by gate_decision_init */
};

/* The process (server.c writes it; workers read what they need). */
typedef struct srv {
    char *config_path;
    char *config_dir;
    pthread_mutex_t mu;
    xpolicy *pol;      /* current; guarded by mu */
    gate *gate;        /* pol->gate, for the main thread's reads */
    uint64_t gate_gen; /* atomic */
    rs_resolver *resolver;
    keys_store *keys;
    worker *workers;
    int nworkers;
    int stopping; /* atomic */
    int64_t stop_deadline_ms;
    int64_t drain_start_ms;
    int workers_ready;    /* atomic: workers[] may be woken */
    int listen_fd;        /* the one listening socket, shared by the workers */
    cn_budget *budget;    /* connections open in the whole process */
    char policy_hash[17]; /* guarded by mu */
    int64_t policy_loaded_at;
    adm_server *admin;
    struct fa_server *fauth; /* the forward-auth listener (fauth.h), or NULL */
} srv;

typedef struct conn_rec {
    struct MHD_Connection *conn;
    xchg *x;                      /* request whose head is pending, or NULL */
    int64_t deadline_ms;          /* 0 = disarmed (head complete, request in progress) */
    bool busy;                    /* a request is in progress (request line seen, not completed) */
    int64_t idle_since;           /* when the last request completed (or the accept) */
    struct sockaddr_storage peer; /* for the connection budget */
    struct conn_rec *next, *prev;
} conn_rec;

#define CLIENT_TAG (1ull << 61) /* epoll data: a suspended client's socket */

#define LISTEN_TAG (1ull << 62) /* epoll data of the shared listener */

#define PEEK_TAG (1ull << 58) /* epoll data: an accepted socket whose first head is awaited */

/* worker.c */
int worker_init(worker *w, srv *s, int id);
void *worker_main(void *arg);
void worker_destroy(worker *w);
void worker_wake_all(srv *s);

/* The front end (access_handler in front.c, the rest in fconn.c):
 * libmicrohttpd's callbacks and what the loop asks of it. */
void *uri_log_cb(void *cls, const char *uri, struct MHD_Connection *conn);
void completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
                  enum MHD_RequestTerminationCode toe);
void conn_cb(void *cls, struct MHD_Connection *conn, void **socket_ctx,
             enum MHD_ConnectionNotificationCode code);
enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **req_cls);
void front_sweep(worker *w, int64_t now); /* request-head deadlines */
void front_drain_idle(worker *w, int64_t now, int64_t drain_start);
void front_client_gone(xchg *x); /* CLIENT_TAG event: the client closed */
void front_stop(worker *w);      /* the loop is leaving */
char *xb_get(worker *w);
void xb_put(worker *w, char *p);

/* alog.c */
void alog_request(xchg *x, enum MHD_RequestTerminationCode toe);

/* What a tunnel's access-log line says about the handshake that opened it
 * (fresp.c keeps it for the tunnel's life: the request is gone by then). */
typedef struct tun_record {
    struct MHD_UpgradeResponseHandle *urh;
    char request_id[64];
    char peer[64];
    char *route;    /* copies: a reload may free the configuration */
    char *user_id;  /* NULL: none */
    char *upstream; /* upstream name */
} tun_record;
struct tun_stats;
void alog_tunnel(const tun_record *r, const struct tun_stats *st);

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
