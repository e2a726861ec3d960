/* upstream: dispatch between the two clients and the sweep of the deadlines
 * they share. See upstream.h for the contract; what the clients share lives
 * below them in upcore.c. */
#include "upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curlclient.h"
#include "fwd.h"
#include "h1client.h"
#include "upcore.h"

const char *up_result_reason(up_result r)
{
    switch (r) {
    case UP_OK:
        return "ok";
    case UP_ERR_CONNECT:
        return "upstream_connect";
    case UP_ERR_TIMEOUT:
        return "upstream_timeout";
    case UP_ERR_RESET:
        return "upstream_reset";
    case UP_ERR_PROTOCOL:
        return "upstream_protocol";
    case UP_ERR_TLS:
        return "upstream_tls";
    case UP_ERR_HEADERS_BIG:
        return "upstream_headers_too_large";
    case UP_UNSET:
    case UP_ERR_INTERNAL:
        break;
    }
    return "upstream_internal";
}

/* One URL parser for the whole gateway: fwd's. The client's view is a copy
 * of the fields it needs, made once at load. */
int up_target_compile(const char *url, up_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->resolver_id = -1;
    fwd_target f;
    if (fwd_target_compile(url, &f, err, errlen) != 0)
        return -1;
    int rc = -1;
    if (strlen(f.host) >= sizeof(t->host) || f.hostport_len >= sizeof(t->hostport) ||
        f.base_len >= sizeof(t->base) || f.prefix_len >= sizeof(t->url)) {
        snprintf(err, errlen, "upstream URL too long");
        goto out;
    }
    t->https = f.scheme == FWD_SCHEME_HTTPS;
    memcpy(t->host, f.host, strlen(f.host) + 1);
    memcpy(t->port, f.port, strlen(f.port) + 1);
    memcpy(t->hostport, f.hostport, f.hostport_len + 1);
    memcpy(t->base, f.base, f.base_len + 1);
    t->base_len = f.base_len;
    memcpy(t->url, f.prefix, f.prefix_len + 1);
    rc = 0;
out:
    fwd_target_free(&f);
    return rc;
}

up_worker *up_worker_new(int epfd, struct rs_resolver *resolver)
{
    up_worker *uw = calloc(1, sizeof(*uw));
    if (!uw)
        return NULL;
    uw->ep = epfd;
    uw->resolver = resolver;
    uw->curl_deadline_ms = -1;
    if (cu_worker_init(uw) != 0) {
        free(uw);
        return NULL;
    }
    return uw;
}

void up_worker_free(up_worker *uw)
{
    if (!uw)
        return;
    while (uw->active)
        up_abort(uw->active);
    h1_worker_cleanup(uw);
    cu_worker_cleanup(uw);
    free(uw);
}

up_exchange *up_start(up_worker *uw, const up_request *rq, const up_callbacks *cb, void *ctx,
                      up_result *err)
{
    up_exchange *ex = calloc(1, sizeof(*ex));
    if (!ex) {
        *err = UP_ERR_INTERNAL;
        return NULL;
    }
    ex->uw = uw;
    ex->cb = *cb;
    ex->ctx = ctx;
    ex->curl = rq->target->https;
    ex->timeout_ms = rq->timeout_ms > 0 ? rq->timeout_ms : 30000;
    ex->connect_timeout_ms = rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms : 2000;
    ex->max_head_bytes = rq->max_head_bytes;
    ex->is_head = rq->is_head;
    ex->upgrade = rq->upgrade;
    if (rq->upgrade && (rq->target->https || !cb->on_upgrade)) {
        /* No tunnel through libcurl: authgate check refuses the combination. */
        free(ex);
        *err = UP_ERR_INTERNAL;
        return NULL;
    }
    ex->body = rq->body;
    ex->body_len = rq->body_len;
    ex->target = rq->target;
    ex->upstream_name = rq->upstream_name;
    ag_buf_init(&ex->url);
    ag_buf_init(&ex->resp);
    *err = UP_UNSET;
    ex->starting = true;
    int rc = ex->curl ? cu_start(ex, rq, err) : h1_start(ex, rq, err);
    ex->starting = false;
    if (rc == 0 && ex->early != UP_UNSET) {
        up_result early = ex->early;
        up_callbacks cb2 = ex->cb;
        up_exchange_free(ex);
        *err = early;
        if (early == UP_OK)
            cb2.on_done(ctx, UP_OK);
        return NULL;
    }
    if (rc != 0) {
        up_unlink(ex);
        up_exchange_free(ex);
        if (*err == UP_UNSET)
            *err = UP_ERR_INTERNAL;
        return NULL;
    }
    return ex;
}

void up_abort(up_exchange *ex)
{
    if (!ex)
        return;
    if (ex->curl)
        cu_abort(ex);
    else
        h1_abort(ex);
    up_unlink(ex);
    up_exchange_free(ex);
}

void up_unpause(up_exchange *ex)
{
    if (!ex)
        return;
    if (ex->curl)
        cu_unpause(ex);
    else
        h1_unpause(ex);
}

void up_event(up_worker *uw, uint64_t data, uint32_t events)
{
    if (data & UP_CURL_BIT)
        cu_event(uw, (int)(uint32_t)data, events);
    else
        h1_event(uw, (struct h1_conn *)(uintptr_t)(data & ~UP_EPOLL_TAG), events);
}

size_t up_active(const up_worker *uw)
{
    return uw->nactive;
}

int64_t up_sweep(up_worker *uw, int64_t now, int64_t max_wait)
{
    cu_run(uw, now);
    if (uw->waiting_dns)
        h1_retry_waiting(uw);
    if (now - uw->last_pool_sweep >= 1000) {
        h1_sweep(uw, now);
        uw->last_pool_sweep = now;
    }
    int64_t wait = max_wait;
    up_exchange *ex = uw->active;
    while (ex) {
        up_exchange *next = ex->next;
        /* A paused side waits on the client, whose own timeouts apply. */
        if (!ex->send_paused && !ex->recv_paused && ex->deadline_ms) {
            if (now >= ex->deadline_ms) {
                if (!ex->curl && h1_next_address(ex)) {
                    ex = next;
                    continue;
                }
                if (ex->curl)
                    cu_abort(ex);
                else
                    h1_abort(ex);
                up_finish(ex, UP_ERR_TIMEOUT);
            } else if (ex->deadline_ms - now < wait) {
                wait = ex->deadline_ms - now;
            }
        }
        ex = next;
    }
    if (uw->curl_deadline_ms >= 0) {
        int64_t ct = uw->curl_deadline_ms - now;
        if (ct < wait)
            wait = ct < 0 ? 0 : ct;
    }
    return wait;
}
