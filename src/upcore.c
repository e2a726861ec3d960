/* upcore: the active list, deadlines and the end of an exchange, shared by
 * both upstream clients. See upcore.h; it calls no client and nothing in
 * upstream.c. */
#include "upcore.h"

#include <stdlib.h>

#include "httpx.h"

void up_link(up_exchange *ex)
{
    up_worker *uw = ex->uw;
    if (ex->in_active)
        return;
    ex->prev = NULL;
    ex->next = uw->active;
    if (uw->active)
        uw->active->prev = ex;
    uw->active = ex;
    ex->in_active = true;
    uw->nactive++;
}

void up_unlink(up_exchange *ex)
{
    up_worker *uw = ex->uw;
    if (!ex->in_active)
        return;
    if (ex->next)
        ex->next->prev = ex->prev;
    if (ex->prev)
        ex->prev->next = ex->next;
    else
        uw->active = ex->next;
    ex->next = ex->prev = NULL;
    ex->in_active = false;
    uw->nactive--;
}

void up_touch(up_exchange *ex)
{
    ex->deadline_ms = ag_now_mono_ms() + ex->timeout_ms;
}

void up_exchange_free(up_exchange *ex)
{
    ag_buf_free(&ex->url);
    ag_buf_free(&ex->resp);
    free(ex);
}

void up_finish(up_exchange *ex, up_result r)
{
    up_unlink(ex);
    if (ex->starting) {
        /* Ended inside up_start (e.g. a pooled connection that turned out
         * dead): up_start reports it; the handle never reaches the caller. */
        ex->early = r == UP_UNSET ? UP_ERR_INTERNAL : r;
        return;
    }
    up_callbacks cb = ex->cb;
    void *ctx = ex->ctx;
    up_exchange_free(ex);
    cb.on_done(ctx, r == UP_UNSET ? UP_ERR_INTERNAL : r);
}

up_result up_check_head(const char *lines, size_t len, int64_t *content_length, bool *chunked)
{
    return hx_resp_framing(lines ? lines : "", len, content_length, chunked) == 0 ? UP_OK
                                                                                  : UP_ERR_PROTOCOL;
}
