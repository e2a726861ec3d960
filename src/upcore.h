/* upcore: what the two upstream clients share with upstream.c, and nothing
 * the front end may see: the worker and exchange structs and the helpers both
 * clients call (the active list, deadlines, the end of an exchange, the check
 * of a response head). It sits below the clients and calls none of them nor
 * upstream.c, so calls only go down: upstream.c -> h1client.c / curlclient.c
 * -> upcore.c. An exchange is one struct for both clients; each field below
 * the common part is written by exactly one client. */
#ifndef AG_UPCORE_H
#define AG_UPCORE_H

#include <curl/curl.h>

#include "upstream.h"
#include "util.h"

/* Epoll data layout under UP_EPOLL_TAG: bit 62 set = a libcurl socket whose
 * fd is in the low 32 bits; clear = an h1 connection pointer (user-space
 * pointers on the platforms we build for stay below bit 47). */
#define UP_CURL_BIT (1ull << 62)

struct h1_conn;
struct h1_pool;

struct up_worker {
    int ep;
    struct rs_resolver *resolver;
    up_exchange *active; /* every exchange alive, for deadlines */
    size_t nactive;
    /* h1client */
    struct h1_pool *pools;
    size_t npools;
    up_exchange *waiting_dns; /* h1 exchanges whose name has no answer yet */
    int64_t last_pool_sweep;
    /* curlclient */
    CURLM *multi;
    int64_t curl_deadline_ms; /* -1: none */
    CURL *easy_pool[64];
    int neasy_pool;
};

struct up_exchange {
    /* common: written by upstream.c, upcore.c and the owning client */
    up_worker *uw;
    up_callbacks cb;
    void *ctx;
    bool curl;
    bool send_paused, recv_paused; /* a paused side waits on the client */
    bool in_active;
    bool starting;       /* inside up_start: an end is reported there */
    up_result early;     /* how it ended while starting */
    int64_t deadline_ms; /* 0: none */
    long timeout_ms;
    long connect_timeout_ms;
    size_t max_head_bytes;
    bool is_head;
    bool upgrade; /* a 101 hands the socket over (up_request.upgrade) */
    up_body body;
    uint64_t body_len;
    const up_target *target;
    const char *upstream_name;
    up_exchange *next, *prev; /* uw->active */

    /* h1client */
    struct h1_conn *conn;
    const char *head; /* the request head (the front end's memory), also for a retry */
    size_t head_len;
    size_t addr_next; /* next address to try when connecting fails */
    up_exchange *next_wait;
    bool waiting;

    /* curlclient */
    CURL *easy;
    struct curl_slist *hdrs;
    bool in_multi;
    ag_buf url;
    ag_buf resp; /* response header lines as they arrive */
    size_t resp_n;
    up_result curl_err; /* set by a callback that refused the response */
};

/* Deadlines and the active list, for both clients. */
void up_link(up_exchange *ex);
void up_unlink(up_exchange *ex);
void up_touch(up_exchange *ex); /* progress: the inactivity deadline restarts */
/* End an exchange: unlinked, on_done called, memory freed. The client has
 * already released its own resources. */
void up_finish(up_exchange *ex, up_result r);
/* Free the exchange's own memory (not the client's), without a callback. */
void up_exchange_free(up_exchange *ex);
/* Validate a response head given as lines; decides framing. */
up_result up_check_head(const char *lines, size_t len, int64_t *content_length, bool *chunked);

#endif
