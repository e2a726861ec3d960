/* TEMPORARY stand-in: blocking lookups, replaced by the real resolver. */
#include "resolve.h"
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef struct ent {
    char host[256], port[8];
} ent;
struct rs_resolver {
    pthread_mutex_t mu;
    ent *e;
    int n;
};
rs_resolver *rs_new(long refresh_ms, void (*on_update)(void *ctx), void *ctx)
{
    rs_resolver *r = calloc(1, sizeof(*r));
    if (r)
        pthread_mutex_init(&r->mu, NULL);
    return r;
}
void rs_free(rs_resolver *r)
{
    if (r) {
        free(r->e);
        pthread_mutex_destroy(&r->mu);
        free(r);
    }
}
int rs_add(rs_resolver *r, const char *host, const char *port)
{
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->e[i].host, host) && !strcmp(r->e[i].port, port)) {
            pthread_mutex_unlock(&r->mu);
            return i;
        }
    ent *e = realloc(r->e, (size_t)(r->n + 1) * sizeof(*e));
    if (!e) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    r->e = e;
    snprintf(e[r->n].host, 256, "%s", host);
    snprintf(e[r->n].port, 8, "%s", port);
    int id = r->n++;
    pthread_mutex_unlock(&r->mu);
    return id;
}
rs_state rs_get(rs_resolver *r, int id, rs_addrs *out, char *err, size_t errlen)
{
    out->n = 0;
    if (!r || id < 0 || id >= r->n) {
        snprintf(err, errlen, "unknown name");
        return RS_FAILED;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(r->e[id].host, r->e[id].port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s", gai_strerror(rc));
        return RS_FAILED;
    }
    for (struct addrinfo *a = ai; a && out->n < RS_MAX_ADDRS; a = a->ai_next) {
        memcpy(&out->addr[out->n], a->ai_addr, a->ai_addrlen);
        out->len[out->n++] = a->ai_addrlen;
    }
    freeaddrinfo(ai);
    return RS_READY;
}
void rs_resolve_now(rs_resolver *r)
{
    (void)r;
}
