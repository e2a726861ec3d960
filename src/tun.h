/* tun: byte tunnels after a protocol switch (WebSocket). A tunnel joins the
 * client's socket and the upstream's socket and copies bytes both ways on the
 * worker's epoll, with no thread of its own. Each direction holds at most one
 * read's worth of bytes (TUN_BUF): while they wait for the other side, the
 * sending side is not read, so a slow reader slows the writer down through
 * TCP instead of making the gateway buffer. Buffers exist only while bytes
 * wait, so an idle tunnel costs its struct and two sockets.
 *
 * A direction ends when its source reaches EOF and its bytes are delivered
 * (the destination's write side is shut then); the tunnel ends when both have,
 * on an error, or when the gateway ends it (idle, token expiry, drain). The
 * peers' own WebSocket close frames pass through as bytes like any other. When
 * the gateway ends a tunnel it speaks for itself: each side that is between
 * two frames gets a close frame (1001 drain and idle, 1008 token expiry) and
 * up to TUN_CLOSE_WAIT_MS to answer with its own; a side in the middle of a
 * frame is shut at once. Frames are found by wsframe.h, which looks only at
 * frame headers. The upstream socket is closed here; the client socket is
 * given back through on_close (libmicrohttpd closes it). Everything runs on
 * the owning worker's thread. */
#ifndef AG_TUN_H
#define AG_TUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TUN_BUF (64 * 1024)

/* How long a side may take to answer the gateway's close frame. */
#define TUN_CLOSE_WAIT_MS 1000

/* Epoll data words of tunnel sockets carry this bit (the worker's other tags
 * are bits 61..63); bit 0 says which side. */
#define TUN_EPOLL_TAG (1ull << 60)

/* Who or what ended a tunnel. The zero value is not a cause anybody chose. */
typedef enum tun_cause {
    TUN_CAUSE_UNSET = 0,
    TUN_CLIENT,        /* the client closed or reset first */
    TUN_UPSTREAM,      /* the upstream closed or reset first */
    TUN_IDLE,          /* no byte either way for the idle timeout */
    TUN_TOKEN_EXPIRED, /* close_on_token_expiry and the token expired */
    TUN_DRAIN,         /* the worker left at the end of the drain grace */
    TUN_ERROR,         /* out of memory or epoll failure in the gateway */
    TUN_CAUSE__COUNT
} tun_cause;

/* "client", "upstream", "idle_timeout", "token_expired", "drain", "error";
 * "unset" for the zero value. */
const char *tun_cause_name(tun_cause c);

typedef struct tun_stats {
    uint64_t bytes_up;   /* client -> upstream */
    uint64_t bytes_down; /* upstream -> client */
    int64_t opened_ms, closed_ms;
    tun_cause cause;
} tun_stats;

typedef struct tun_set tun_set;
typedef struct tun tun;

typedef struct tun_open_args {
    int client_fd;   /* not closed here: on_close gives it back */
    int upstream_fd; /* owned from now on (closed here, also on failure) */
    /* Bytes already read that belong to the other side (copied). */
    const char *to_upstream;
    size_t to_upstream_len;
    const char *to_client;
    size_t to_client_len;
    int64_t idle_ms;    /* > 0 */
    int64_t expires_ms; /* monotonic deadline; 0 = none */
    /* Called once when the tunnel ends (also when tun_open fails after taking
     * the sockets: then stats.cause is TUN_ERROR). */
    void (*on_close)(void *ctx, const tun_stats *st);
    void *ctx;
} tun_open_args;

tun_set *tun_set_new(int epfd);
void tun_set_free(tun_set *ts); /* closes every tunnel (TUN_DRAIN) first */

/* 0, or -1: then on_close has been called with TUN_ERROR. */
int tun_open(tun_set *ts, const tun_open_args *a, int64_t now_ms);

static inline bool tun_owns_event(uint64_t data)
{
    return (data & TUN_EPOLL_TAG) != 0 && (data >> 61) == 0;
}
void tun_event(tun_set *ts, uint64_t data, uint32_t events);
/* Idle and expiry deadlines (they start the close handshake) and the end of
 * close handshakes that ran out of time; frees tunnels that ended in this loop turn
 * (events later in the same epoll batch may still name them). */
void tun_sweep(tun_set *ts, int64_t now_ms);
/* Start the close handshake of every open tunnel not already closing (for the
 * drain: the worker calls it TUN_CLOSE_WAIT_MS before it must leave, and
 * again for tunnels opened since). tun_sweep ends the late ones. */
void tun_begin_close_all(tun_set *ts, tun_cause why, int64_t now_ms);
/* End every tunnel now: close frames go out only where the sockets take them
 * at once, nobody waits for an answer. */
void tun_close_all(tun_set *ts, tun_cause why);
size_t tun_count(const tun_set *ts);

/* The process-wide count against max_tunnels: take before starting a
 * handshake, give back when it fails or the tunnel ends. */
bool tun_reserve(size_t max);
void tun_release(void);
size_t tun_open_total(void);

#endif
