/* TEMPORARY stand-in (replaced by the real background resolver). */
#ifndef AG_RESOLVE_H
#define AG_RESOLVE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#define RS_MAX_ADDRS 8
typedef struct rs_resolver rs_resolver;
typedef enum rs_state { RS_UNKNOWN = 0, RS_FAILED, RS_READY } rs_state;
typedef struct rs_addrs {
    size_t n;
    struct sockaddr_storage addr[RS_MAX_ADDRS];
    socklen_t len[RS_MAX_ADDRS];
    uint64_t gen;
} rs_addrs;
rs_resolver *rs_new(long refresh_ms, void (*on_update)(void *ctx), void *ctx);
void rs_free(rs_resolver *r);
int rs_add(rs_resolver *r, const char *host, const char *port);
rs_state rs_get(rs_resolver *r, int id, rs_addrs *out, char *err, size_t errlen);
void rs_resolve_now(rs_resolver *r);
#endif
