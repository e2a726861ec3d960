/* frontint: internal to the front end. front.c takes one request (the
 * access handler: admission, decision, upload, the start of the upstream
 * exchange); fresp.c answers it (the up_callbacks handlers relaying the
 * upstream's head and body, the gateway's own answers, the 101 and the
 * tunnel hand-off); fconn.c keeps the records (connections and exchanges:
 * created, swept, ended, the client-close watch, the body buffers). This
 * header declares only what one of those files uses in another; nothing
 * outside the front end includes it (worker.h is what the loop calls).
 * The small helpers every side calls per request are static inline here, so
 * the split adds no call. */
#ifndef AG_FRONTINT_H
#define AG_FRONTINT_H

#include <microhttpd.h>
#include <stdbool.h>
#include <sys/epoll.h>

#include "worker.h"

static inline conn_rec *conn_rec_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static inline void unlist(xchg *x)
{
    if (!x->listed)
        return;
    worker *w = x->w;
    if (x->next)
        x->next->prev = x->prev;
    if (x->prev)
        x->prev->next = x->next;
    else
        w->proxying = x->next;
    x->next = x->prev = NULL;
    x->listed = false;
}

/* While libmicrohttpd has a connection suspended it does not look at the
 * socket, so a client that leaves (an abandoned upload, a client that gives
 * up waiting) would hold its connection and the upstream one until a timeout.
 * We watch the socket for the peer's close ourselves meanwhile. */
static inline void suspend(xchg *x)
{
    if (x->suspended)
        return;
    x->suspended = true;
    x->suspended_ms = ag_now_mono_ms();
    MHD_suspend_connection(x->conn);
}

static inline void srv_resume(xchg *x)
{
    if (x->watch_fd >= 0) {
        epoll_ctl(x->w->ep, EPOLL_CTL_DEL, x->watch_fd, NULL);
        x->watch_fd = -1;
    }
    if (x->suspended) {
        x->suspended = false;
        MHD_resume_connection(x->conn);
    }
}

/* fresp.c: the callbacks the upstream exchange is started with (their
 * handlers are the only writers of the exchange's upstream fields), and the
 * answers the access handler queues. */
extern const up_callbacks fr_upstream_cbs;
void fr_warn_upstream_failure(const xchg *x, up_result r);
enum MHD_Result fr_queue_error(xchg *x);
enum MHD_Result fr_queue_upstream_error(xchg *x);
enum MHD_Result fr_queue_proxied(xchg *x);

/* Decide to answer ourselves; queued now or when the request is complete. */
static inline void refuse(xchg *x, int status, const char *error, const char *reason, bool close)
{
    x->d.outcome = GATE_REFUSE;
    x->d.status = status;
    x->d.error = error;
    x->d.reason = reason;
    x->close_after = close;
}

static inline enum MHD_Result reject_now(xchg *x, int status, const char *error, const char *reason,
                                         bool close)
{
    refuse(x, status, error, reason, close);
    return fr_queue_error(x);
}

#endif
