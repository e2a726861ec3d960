/* conns: the process-wide connection budget. Every worker takes a slot when it
 * accepts and gives it back when the connection closes, so max_connections and
 * max_connections_per_ip hold for the process, however unevenly the kernel
 * spreads connections over workers. Thread-safe; no sockets. */
#ifndef AG_CONNS_H
#define AG_CONNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

typedef struct cn_budget cn_budget;

/* The zero value is a refusal: a verdict that was never set admits nobody. */
typedef enum cn_verdict {
    CN_FULL = 0, /* max_connections reached: leave it in the listen backlog */
    CN_PER_IP,   /* this address has max_connections_per_ip open: close it */
    CN_TAKEN,    /* a slot is held; give it back with cn_release */
} cn_verdict;

/* max_per_ip 0 = no per-address limit. NULL on allocation failure. */
cn_budget *cn_new(size_t max_total, size_t max_per_ip);
void cn_free(cn_budget *b);

/* Room for one more connection (the listener may be armed)? */
bool cn_has_room(cn_budget *b);
/* Take a slot for a connection from sa (sa may be NULL: counted in total only). */
cn_verdict cn_take(cn_budget *b, const struct sockaddr *sa);
/* Give back the slot taken for sa; returns true when the budget was full
 * before (a worker that stopped accepting should start again). */
bool cn_release(cn_budget *b, const struct sockaddr *sa);
size_t cn_open(cn_budget *b);

#endif
