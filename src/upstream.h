/* upstream: the one interface between the front end and the clients that talk
 * to upstreams. The front end starts an exchange with a request it built and a
 * set of callbacks; from then on the client owns the exchange and reports back
 * only through those callbacks: the response head (parsed once, here), body
 * bytes as they arrive, and one final outcome. The front end can abort,
 * unpause or sweep; it never reads a client's state and a client never sees a
 * front-end type.
 *
 * Two implementations live behind it, chosen by the target's scheme:
 *   h1client.c   - our own HTTP/1.1 client for http:// upstreams (hot path);
 *   curlclient.c - libcurl's multi-socket API for https:// upstreams.
 * Both are driven by the worker's epoll and run on the worker's thread; an
 * exchange and its callbacks never cross threads. Besides a request with a
 * response, an exchange can be a protocol switch (up_request.upgrade, own
 * client only): it ends by handing the socket over (on_upgrade) to a tunnel
 * (tun.h) the front end runs. */
#ifndef AG_UPSTREAM_H
#define AG_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* How an exchange ended. The zero value is not a success: a result that was
 * never set reads as an internal failure. */
typedef enum up_result {
    UP_UNSET = 0,
    UP_OK,
    UP_ERR_CONNECT,     /* no connection could be made (every address tried) */
    UP_ERR_TIMEOUT,     /* connect, first byte or inactivity deadline passed */
    UP_ERR_RESET,       /* the upstream closed or reset mid-exchange */
    UP_ERR_PROTOCOL,    /* malformed or ambiguous response (status line, framing) */
    UP_ERR_TLS,         /* https:// handshake or certificate failure */
    UP_ERR_HEADERS_BIG, /* response head over limits.max_response_header_bytes */
    UP_ERR_INTERNAL,    /* out of memory, epoll failure, no address yet */
} up_result;

/* The stable reason code for a failure ("upstream_connect", ...); the access
 * log, metrics and error bodies all use this string. */
const char *up_result_reason(up_result r);

/* Body framing of the request sent upstream. The zero value is "no body". */
typedef enum up_body { UP_BODY_NONE = 0, UP_BODY_LENGTH, UP_BODY_CHUNKED } up_body;

/* A compiled upstream target: parsed once when the configuration loads. */
typedef struct up_target {
    bool https;
    char host[256];     /* without brackets */
    char port[8];       /* decimal */
    char hostport[272]; /* the Host value: default port omitted, IPv6 bracketed */
    char base[1024];    /* base path without trailing slash; "" for none */
    size_t base_len;
    char url[1536];  /* scheme://hostport + base, for libcurl */
    int resolver_id; /* rs_add id; -1 for none */
} up_target;

/* "http://host[:port][/base]" or "https://...": 0, or -1 with a message. */
int up_target_compile(const char *url, up_target *t, char *err, size_t errlen);

typedef struct up_request {
    const up_target *target;
    const char *method;
    bool is_head; /* HEAD: the response has no body whatever it says */
    /* http:// : the complete request head (request line .. final CRLF). It
     * is not copied: it must stay valid until on_done or up_abort. */
    const char *head;
    size_t head_len;
    /* https://: path+query to append to target->url, and the header lines
     * as fwd_build_lines writes them (each NUL-terminated). */
    const char *path_query;
    size_t path_query_len;
    const char *lines;
    size_t lines_len;
    up_body body;
    uint64_t body_len; /* UP_BODY_LENGTH */
    long connect_timeout_ms;
    long timeout_ms; /* first byte and inactivity */
    size_t max_head_bytes;
    const char *ca_file;       /* https://: CA bundle instead of the system store */
    const char *upstream_name; /* for warnings */
    /* The head asks for a protocol switch (a WebSocket handshake). Only then
     * is a 101 an answer rather than a protocol error: the head is reported
     * through on_head, the socket through on_upgrade, and the exchange ends
     * with UP_OK. http:// only (up_start refuses it for https://). */
    bool upgrade;
} up_request;

/* The response head, valid only during on_head. Lines are "Name: value\r\n",
 * already checked for grammar and bounded; framing is decided. */
typedef struct up_head {
    int status;
    const char *lines;
    size_t lines_len;
    size_t nlines;
    int64_t content_length; /* -1: none (chunked or until close) */
    bool chunked;
} up_head;

typedef struct up_callbacks {
    void (*on_head)(void *ctx, const up_head *h);
    /* Response body bytes; returns how many were taken. Taking fewer pauses
     * reading until up_unpause. */
    size_t (*on_body)(void *ctx, const char *p, size_t n);
    /* How many response bytes on_body would take now (for a client that
     * must deliver all or nothing). */
    size_t (*body_room)(void *ctx);
    /* Request body: p and n are the bytes available now; *eof when the client
     * sent its last byte. Nothing available and no eof pauses sending until
     * up_unpause. */
    void (*body_peek)(void *ctx, const char **p, size_t *n, bool *eof);
    void (*body_consume)(void *ctx, size_t n);
    /* The last call for an exchange: the handle is gone after it. */
    void (*on_done)(void *ctx, up_result r);
    /* The third kind of exchange (upgrade requests only): after on_head with
     * status 101, the connected socket changes hands. fd (non-blocking, out
     * of the worker's epoll set) now belongs to the callee, which must close
     * it; extra is what the upstream sent after the head (valid for the call
     * only). on_done(UP_OK) follows. */
    void (*on_upgrade)(void *ctx, int fd, const char *extra, size_t n);
} up_callbacks;

typedef struct up_worker up_worker;
typedef struct up_exchange up_exchange;
struct rs_resolver;

/* Per worker: the epoll set the clients register their sockets in. */
up_worker *up_worker_new(int epfd, struct rs_resolver *resolver);
void up_worker_free(up_worker *uw); /* aborts what is still running */

/* Start. Returns the handle, or NULL with *err set: then no callback follows,
 * except on_done(UP_OK) when the whole exchange completed inside the call.
 * Callbacks may run inside up_unpause (the exchange may even end there), never
 * inside up_abort; they must not call up_abort themselves. */
up_exchange *up_start(up_worker *uw, const up_request *rq, const up_callbacks *cb, void *ctx,
                      up_result *err);
/* Forget an exchange: its sockets close, no callback follows. */
void up_abort(up_exchange *ex);
/* The front end made room for response bytes or has request bytes. */
void up_unpause(up_exchange *ex);

/* Epoll data words of client sockets carry this bit. */
#define UP_EPOLL_TAG (1ull << 63)
static inline bool up_owns_event(uint64_t data)
{
    return (data & UP_EPOLL_TAG) != 0;
}
void up_event(up_worker *uw, uint64_t data, uint32_t events);
/* Deadlines and idle pools; returns ms until the next thing to do (<= max). */
int64_t up_sweep(up_worker *uw, int64_t now_ms, int64_t max_wait_ms);
/* Exchanges alive on this worker. */
size_t up_active(const up_worker *uw);

#endif
