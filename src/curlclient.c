/* curlclient: https:// upstreams through libcurl's multi-socket API, driven by
 * the worker's epoll. libcurl does TLS, name resolution (its own threaded
 * resolver, never blocking this thread) and tries every address itself.
 * Bodies stream with pause/resume, so memory per exchange stays flat. */
#include "curlclient.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"
#include "upcore.h"

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    up_worker *uw = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(uw->ep, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(uw->multi, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.data.u64 = UP_EPOLL_TAG | UP_CURL_BIT | (uint64_t)(uint32_t)s};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (socketp) {
        if (epoll_ctl(uw->ep, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
            epoll_ctl(uw->ep, EPOLL_CTL_ADD, s, &ev);
    } else {
        if (epoll_ctl(uw->ep, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
            epoll_ctl(uw->ep, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(uw->multi, s, (void *)1);
    }
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    up_worker *uw = userp;
    uw->curl_deadline_ms = timeout_ms < 0 ? -1 : ag_now_mono_ms() + timeout_ms;
    return 0;
}

int cu_worker_init(up_worker *uw)
{
    uw->multi = curl_multi_init();
    if (!uw->multi)
        return -1;
    curl_multi_setopt(uw->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(uw->multi, CURLMOPT_SOCKETDATA, uw);
    curl_multi_setopt(uw->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(uw->multi, CURLMOPT_TIMERDATA, uw);
    /* Keep enough idle upstream connections for the client concurrency we
     * expect, so keep-alive clients map onto reused upstream connections. */
    curl_multi_setopt(uw->multi, CURLMOPT_MAXCONNECTS, 512L);
    return 0;
}

static void release_easy(up_worker *uw, CURL *e)
{
    if (!e)
        return;
    if (uw->neasy_pool < (int)AG_ARRAY_LEN(uw->easy_pool)) {
        curl_easy_reset(e);
        uw->easy_pool[uw->neasy_pool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

void cu_worker_cleanup(up_worker *uw)
{
    for (int i = 0; i < uw->neasy_pool; i++)
        curl_easy_cleanup(uw->easy_pool[i]);
    uw->neasy_pool = 0;
    if (uw->multi)
        curl_multi_cleanup(uw->multi);
    uw->multi = NULL;
}

static size_t header_cb(char *data, size_t size, size_t n, void *userp)
{
    up_exchange *ex = userp;
    size_t len = size * n;
    up_touch(ex);
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new header block: an interim 1xx, or the final response. */
        ag_buf_reset(&ex->resp);
        ex->resp_n = 0;
        return len;
    }
    if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(ex->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 100 && code < 200 && code != 101)
            return len;
        /* We never ask for an upgrade, so a 101 would turn the connection
         * into a tunnel nobody authorized. */
        int64_t cl = -1;
        bool chunked = false;
        if (code == 101 || code > 599 ||
            up_check_head(ex->resp.p, ex->resp.len, &cl, &chunked) != UP_OK) {
            ex->curl_err = UP_ERR_PROTOCOL;
            return 0;
        }
        up_head h = {
            .status = (int)code,
            .lines = ex->resp.p ? ex->resp.p : "",
            .lines_len = ex->resp.len,
            .nlines = ex->resp_n,
            .content_length = chunked ? -1 : cl,
            .chunked = chunked,
        };
        ex->cb.on_head(ex->ctx, &h);
        return len;
    }
    if (ex->resp.len + len > ex->max_head_bytes || ex->resp_n >= 200) {
        ex->curl_err = UP_ERR_HEADERS_BIG;
        return 0;
    }
    if (ag_buf_append(&ex->resp, data, len) != 0)
        return 0;
    ex->resp_n++;
    return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    up_exchange *ex = userp;
    size_t len = size * n;
    up_touch(ex);
    /* libcurl cannot take a partial write: all of it or a pause (it offers
     * the same bytes again after the unpause). */
    if (ex->cb.body_room(ex->ctx) >= len) {
        if (ex->cb.on_body(ex->ctx, data, len) == len)
            return len;
        ex->curl_err = UP_ERR_INTERNAL;
        return 0;
    }
    ex->recv_paused = true;
    return CURL_WRITEFUNC_PAUSE;
}

static size_t read_cb(char *out, size_t size, size_t n, void *userp)
{
    up_exchange *ex = userp;
    size_t want = size * n;
    up_touch(ex);
    const char *p = NULL;
    size_t avail = 0;
    bool eof = false;
    ex->cb.body_peek(ex->ctx, &p, &avail, &eof);
    if (avail == 0) {
        if (eof)
            return 0;
        ex->send_paused = true;
        return CURL_READFUNC_PAUSE;
    }
    size_t k = avail < want ? avail : want;
    memcpy(out, p, k);
    ex->cb.body_consume(ex->ctx, k);
    return k;
}

/* The header lines (fwd_build_lines: NUL-terminated, with the lines that
 * stop libcurl from inventing headers) become a curl list. */
static int build_list(up_exchange *ex, const char *lines, size_t len)
{
    struct curl_slist *l = NULL;
    for (const char *p = lines, *end = lines + len; p < end;) {
        size_t ll = strnlen(p, (size_t)(end - p));
        if (ll == (size_t)(end - p))
            break; /* not terminated: not a line fwd wrote */
        struct curl_slist *nl = curl_slist_append(l, p);
        if (!nl) {
            curl_slist_free_all(l);
            return -1;
        }
        l = nl;
        p += ll + 1;
    }
    ex->hdrs = l;
    return 0;
}

int cu_start(up_exchange *ex, const up_request *rq, up_result *err)
{
    up_worker *uw = ex->uw;
    *err = UP_ERR_INTERNAL;
    CURL *e = uw->neasy_pool > 0 ? uw->easy_pool[--uw->neasy_pool] : curl_easy_init();
    if (!e)
        return -1;
    ex->easy = e;
    if (ag_buf_puts(&ex->url, rq->target->url) != 0 ||
        ag_buf_append(&ex->url, rq->path_query, rq->path_query_len) != 0 ||
        build_list(ex, rq->lines, rq->lines_len) != 0)
        goto fail;
    curl_easy_setopt(e, CURLOPT_URL, ex->url.p);
    /* The path was canonicalized by us; curl must send exactly that. */
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ex->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rq->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, rq->ca_file);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, ex->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, ex);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, ex);
    curl_easy_setopt(e, CURLOPT_PRIVATE, ex);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 32768L);
    bool post = strcmp(rq->method, "POST") == 0;
    if (ex->is_head) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (ex->body != UP_BODY_NONE || post) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, ex);
        curl_off_t size = ex->body == UP_BODY_NONE      ? 0
                          : ex->body == UP_BODY_CHUNKED ? -1
                                                        : (curl_off_t)ex->body_len;
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
        if (!post)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    if (curl_multi_add_handle(uw->multi, e) != CURLM_OK)
        goto fail;
    ex->in_multi = true;
    up_touch(ex);
    up_link(ex);
    return 0;
fail:
    cu_abort(ex);
    return -1;
}

void cu_abort(up_exchange *ex)
{
    up_worker *uw = ex->uw;
    if (ex->in_multi) {
        curl_multi_remove_handle(uw->multi, ex->easy);
        ex->in_multi = false;
    }
    if (ex->easy) {
        release_easy(uw, ex->easy);
        ex->easy = NULL;
    }
    curl_slist_free_all(ex->hdrs);
    ex->hdrs = NULL;
}

static up_result map_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return UP_OK;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return UP_ERR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return UP_ERR_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return UP_ERR_TLS;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
        return UP_ERR_RESET;
    default:
        return UP_ERR_PROTOCOL;
    }
}

static void drain_messages(up_worker *uw)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(uw->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        up_exchange *ex = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&ex);
        CURLcode rc = m->data.result;
        if (!ex)
            continue;
        up_result r = ex->curl_err != UP_UNSET ? ex->curl_err : map_error(rc);
        cu_abort(ex); /* m is invalid from here on */
        up_finish(ex, r);
    }
}

void cu_event(up_worker *uw, int fd, uint32_t events)
{
    int flags = 0;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(uw->multi, fd, flags, &running);
    drain_messages(uw);
}

void cu_run(up_worker *uw, int64_t now)
{
    if (uw->curl_deadline_ms >= 0 && now >= uw->curl_deadline_ms) {
        int running;
        uw->curl_deadline_ms = -1;
        curl_multi_socket_action(uw->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    drain_messages(uw);
}

void cu_unpause(up_exchange *ex)
{
    ex->send_paused = false;
    ex->recv_paused = false;
    up_touch(ex);
    if (!ex->easy || !ex->in_multi)
        return;
    curl_easy_pause(ex->easy, CURLPAUSE_CONT);
}
