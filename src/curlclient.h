/* curlclient: the entry points upstream.c calls for https:// upstreams (the
 * contract is upstream.h's; the client's own notes are in curlclient.c). */
#ifndef AG_CURLCLIENT_H
#define AG_CURLCLIENT_H

#include "upcore.h"

int cu_worker_init(up_worker *uw);
void cu_worker_cleanup(up_worker *uw);
int cu_start(up_exchange *ex, const up_request *rq, up_result *err);
void cu_event(up_worker *uw, int fd, uint32_t events);
void cu_unpause(up_exchange *ex);
void cu_abort(up_exchange *ex);
void cu_run(up_worker *uw, int64_t now); /* timers and finished transfers */

#endif
