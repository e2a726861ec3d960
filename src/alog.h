/* alog.h: the access-log line, formatted from a small record that both the
 * proxy front end (alog.c, from an exchange) and the forward-auth listener
 * (fauth.c, from a decision) fill, so both modes write the same fields in the
 * same order (docs/operations.md). */
#ifndef AG_ALOG_H
#define AG_ALOG_H

#include <stddef.h>

#include "gate.h"

typedef struct alog_rec {
    const char *request_id;
    const char *peer;
    const char *method;
    const gate_decision *d; /* path, route, policy, user, org, cache */
    const char *target;     /* raw target: logged (without its query) when d has no path */
    size_t target_len;
    const char *decision; /* allow, deny, reject, error, aborted */
    const char *reason;
    int status;
    const char *upstream; /* NULL: null */
    long upstream_status; /* 0: null */
    double duration_ms, upstream_ms;
    const char *mode; /* "proxy" or "forward_auth" */
    int terminated;   /* libmicrohttpd's termination code; 0: completed */
} alog_rec;

/* One line to the access log (nothing when it is off). */
void alog_write(const alog_rec *r);

#endif
