/* mhdhdr: see mhdhdr.h. */
#include "mhdhdr.h"

#include <stdlib.h>

typedef struct collect {
    gate_header *h;
    size_t n, cap;
} collect;

/* Counts every header, keeps as many as fit. */
static enum MHD_Result collect_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    collect *c = cls;
    if (!value) {
        value = "";
        value_size = 0;
    }
    if (c->n < c->cap)
        c->h[c->n] = (gate_header){key, key_size, value, value_size};
    c->n++;
    return MHD_YES;
}

int mh_collect(struct MHD_Connection *conn, gate_header *stack, size_t cap, mh_headers *out)
{
    collect c = {.h = stack, .cap = cap};
    out->heap = NULL;
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_one, &c);
    if (c.n > c.cap) {
        /* No larger than the connection's pool, which already holds them. */
        if (!(out->heap = calloc(c.n, sizeof(*out->heap))))
            return -1;
        c = (collect){.h = out->heap, .cap = c.n};
        MHD_get_connection_values_n(conn, MHD_HEADER_KIND, collect_one, &c);
    }
    out->h = c.h;
    out->n = c.n < c.cap ? c.n : c.cap;
    return 0;
}
