/* h1client: the entry points upstream.c calls for http:// upstreams (the
 * contract is upstream.h's; the client's own notes are in h1client.c). */
#ifndef AG_H1CLIENT_H
#define AG_H1CLIENT_H

#include "upcore.h"

int h1_start(up_exchange *ex, const up_request *rq, up_result *err);
void h1_event(up_worker *uw, struct h1_conn *c, uint32_t events);
void h1_unpause(up_exchange *ex);
void h1_abort(up_exchange *ex);        /* release the connection; no callback */
bool h1_next_address(up_exchange *ex); /* connect deadline: try the next address */
void h1_retry_waiting(up_worker *uw);  /* names that got their first answer */
void h1_sweep(up_worker *uw, int64_t now);
void h1_worker_cleanup(up_worker *uw);

#endif
