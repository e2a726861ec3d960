/* hpeek: which libmicrohttpd pool a new connection gets, judged from the
 * first bytes the client sent (read with MSG_PEEK, so nothing is consumed).
 *
 * libmicrohttpd gives every connection one fixed pool that must hold the
 * whole request head, clears it twice per request and keeps it for the life
 * of the connection. A worker therefore runs two daemons when the configured
 * max_header_bytes is larger than an ordinary head: a small pool for heads of
 * at most small_cap bytes and a big one for the rest. A connection is judged
 * once, by its first head; a later head that outgrows a small pool is refused
 * by libmicrohttpd with 431 and the connection closed, and a client that
 * retries on a new connection is judged afresh (docs/performance.md).
 *
 * Pure logic: the caller peeks and passes what it saw. */
#ifndef AG_HPEEK_H
#define AG_HPEEK_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    HP_DROP = 0, /* nothing was sent and the client has gone: close */
    HP_WAIT,     /* the head is neither complete nor larger than small_cap yet */
    HP_SMALL,    /* the first head is complete within small_cap bytes */
    HP_BIG,      /* the first head is longer than small_cap bytes */
} hp_verdict;

/* What libmicrohttpd keeps per header line besides its bytes (a record of
 * pointers and lengths): a head costs its length plus this per line. */
#define HP_LINE_COST 64

/* buf holds the first n bytes of the connection (n may exceed small_cap: the
 * caller peeks small_cap + 1 bytes to learn "more than"); eof says the client
 * closed or the socket failed after those bytes. small_cap bounds the cost of
 * the head (bytes plus HP_LINE_COST per line). Empty lines before the request
 * line are not counted as a head end. A client that closes after a partial
 * head is HP_SMALL: libmicrohttpd then sees the truncation itself. */
hp_verdict hp_classify(const char *buf, size_t n, size_t small_cap, bool eof);

#endif
