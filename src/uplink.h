/* uplink: the HTTP/1.1 client for plain http:// upstreams, on the worker's own
 * epoll. libcurl remains the client for https:// upstreams and the key fetch;
 * for the hot path it is too expensive: 7.88 writes every request header
 * through its printf engine one byte at a time (~90 instructions per byte,
 * measured with callgrind), which for a forwarded token plus X-User costs more
 * than the whole rest of the request. See docs/performance.md. */
#ifndef AG_UPLINK_H
#define AG_UPLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "worker.h"

typedef struct ul_conn ul_conn;

/* Epoll data of uplink sockets carries this tag bit plus the conn pointer. */
#define UL_TAG (1ull << 63)

int ul_start(xchg *x, const char *head, size_t head_len); /* -1: x->upstream_error set */
void ul_event(worker *w, ul_conn *c, uint32_t events);
void ul_kick(xchg *x);                    /* the client side made room or brought bytes */
void ul_abort(xchg *x);                   /* the exchange is over early: close its connection */
void ul_sweep(worker *w, int64_t now_ms); /* close long-idle pooled connections */
void ul_worker_cleanup(worker *w);

/* Parse "http://host[:port][/base]"; 0 on success. Exposed for tests. */
int ul_parse_url(const char *url, char *host, size_t hostcap, char *port, size_t portcap,
                 const char **base);

#endif
