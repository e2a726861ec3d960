/* hsrv: an answer-only HTTP/1.1 listener. Every request is answered from its
 * head alone, at once, by a handler that never blocks: nothing is forwarded,
 * no body is read (a small one is skipped), nothing waits on another socket.
 * The forward-auth listener (fauth.h) is its one user.
 *
 * It is not libmicrohttpd because that is all it has to do: one recv, one
 * parse (rqhead.h), one answer written with one send, on keep-alive
 * connections that the calling proxy reuses for every check. That path costs
 * a third of what a general server's does (docs/performance.md).
 *
 * Threads: hs_start opens the listener and starts `threads` threads, each with
 * its own epoll set; all of them accept from the one listening socket
 * (EPOLLEXCLUSIVE wakes one per new connection). A connection stays on the
 * thread that accepted it; the handler is told which thread calls it, so the
 * caller can keep per-thread state without locks.
 *
 * Limits: max_connections open at once (more are accepted and closed at
 * once), a head must be complete within request_timeout_ms of its first byte
 * (the first head of a connection: of the accept) and fit head_cap bytes (longer: 414 while the
 * request line is incomplete, 431 after), an idle keep-alive connection is closed after
 * idle_timeout_ms. A body of at most HS_SKIP_MAX bytes (Content-Length) is read and dropped so that
 * the connection stays usable; a larger one, a chunked one, or one sent after Expect: 100-continue
 * is not read: the answer says Connection: close. Answers to pipelined requests go out in order;
 * reading stops while more than HS_OUT_MAX bytes of answers wait for the peer to read them. */
#ifndef AG_HSRV_H
#define AG_HSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gate.h"
#include "reason.h"
#include "rqhead.h"

#define HS_SKIP_MAX (64 * 1024)
#define HS_OUT_MAX (256 * 1024)

typedef struct hs_request {
    /* AR_OK: head holds a parsed head. Otherwise why it is refused before any
     * handler logic: a parse refusal (rqhead.h), AR_LIMIT_URI /
     * AR_LIMIT_HEADERS for a head over head_cap. The connection closes after
     * the answer to a refusal. */
    ag_reason code;
    const rqh_head *head; /* NULL unless code is AR_OK */
    const gate_header *headers;
    size_t nheaders;
    const struct sockaddr *peer;
    uint64_t t0_ns; /* monotonic: when the head was complete */
    bool head_only; /* a HEAD request: the answer has no body bytes */
} hs_request;

typedef struct hs_field {
    const char *name;
    const char *value;
} hs_field;

/* What the handler answers. status, fields and body must stay valid until
 * the handler returns; the server adds Date, Content-Length and, when the
 * connection ends after this answer, Connection: close. */
#define HS_MAX_FIELDS 12
typedef struct hs_reply {
    int status; /* 0 (never set): 500 */
    hs_field fields[HS_MAX_FIELDS];
    size_t nfields;
    const char *body;
    size_t body_len;
    bool close; /* end the connection after this answer */
} hs_reply;

typedef struct hs_config {
    const struct sockaddr *addr;
    socklen_t addrlen;
    int threads;
    size_t max_connections;
    size_t head_cap;    /* bytes of one request head */
    size_t max_headers; /* header lines of one head; more is AR_LIMIT_HEADERS */
    long request_timeout_ms;
    long idle_timeout_ms;
    /* Decide one request; must fill out (out->status at least). */
    void (*handle)(void *ctx, int thread, const hs_request *rq, hs_reply *out);
    /* A connection closed without an answer because its head did not arrive
     * within request_timeout_ms (code AR_CLIENT_HEADER_TIMEOUT). May be NULL. */
    void (*aborted)(void *ctx, int thread, const struct sockaddr *peer, ag_reason code);
    void *ctx;
} hs_config;

typedef struct hs_server hs_server;

/* Bind, listen and start the threads. 0, or -1 with err set. */
int hs_start(const hs_config *cfg, hs_server **out, char *err, size_t errlen);
int hs_port(const hs_server *s);
/* Start a drain: no new connections; every answer from now on closes its
 * connection; idle connections are closed after 500 ms without a request. */
void hs_drain(hs_server *s);
/* Stop the threads and close every connection. NULL ok. */
void hs_stop(hs_server *s);

/* The status line's reason phrase ("OK", "Forbidden", ...). Pure. */
const char *hs_status_text(int status);

#endif
