/* mhdhdr: a request's headers as libmicrohttpd parsed them, as the gate_header
 * list admission and the decision take. The proxy front end's; the
 * forward-auth listener parses its own heads (rqhead.h). */
#ifndef AG_MHDHDR_H
#define AG_MHDHDR_H

#include <microhttpd.h>
#include <stddef.h>

#include "gate.h"

typedef struct mh_headers {
    gate_header *h;    /* the caller's stack array, or heap */
    size_t n;          /* every header of the request */
    gate_header *heap; /* owned: free() it when done (NULL when the stack sufficed) */
} mh_headers;

/* Collect into stack (cap entries); more headers than that are collected
 * again into a heap array of the exact size. 0, or -1 when out of memory. */
int mh_collect(struct MHD_Connection *conn, gate_header *stack, size_t cap, mh_headers *out);

#endif
