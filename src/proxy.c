/* proxy: the upstream side of an exchange, on libcurl's multi-socket API driven
 * by the worker's epoll. Bodies stream through two bounded buffers (xbuf) with
 * pause/resume on both libraries, so memory per exchange is flat whatever the
 * body size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "httpx.h"
#include "log.h"
#include "uplink.h"
#include "worker.h"

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    worker *w = userp;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(w->multi, s, NULL);
        return 0;
    }
    struct epoll_event ev = {.data.u64 = (uint64_t)s};
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (socketp) {
        if (epoll_ctl(w->ep, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
            epoll_ctl(w->ep, EPOLL_CTL_ADD, s, &ev);
    } else {
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, s, &ev) != 0 && errno == EEXIST)
            epoll_ctl(w->ep, EPOLL_CTL_MOD, s, &ev);
        curl_multi_assign(w->multi, s, (void *)1);
    }
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    worker *w = userp;
    w->curl_deadline_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    return 0;
}

int px_worker_init(worker *w)
{
    w->multi = curl_multi_init();
    if (!w->multi)
        return -1;
    w->curl_deadline_ms = -1;
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    /* Keep enough idle upstream connections for the client concurrency we
     * expect, so keep-alive clients map onto reused upstream connections. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, 512L);
    return 0;
}

static void release_easy(worker *w, CURL *e)
{
    if (!e)
        return;
    if (w->neasy_pool < (int)AG_ARRAY_LEN(w->easy_pool)) {
        curl_easy_reset(e);
        w->easy_pool[w->neasy_pool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

void px_worker_cleanup(worker *w)
{
    while (w->active)
        px_abort(w->active);
    ul_worker_cleanup(w);
    for (int i = 0; i < w->neasy_pool; i++)
        curl_easy_cleanup(w->easy_pool[i]);
    w->neasy_pool = 0;
    if (w->multi)
        curl_multi_cleanup(w->multi);
    w->multi = NULL;
}

/* The upstream made progress: its inactivity deadline starts again. */
void px_touch(xchg *x)
{
    const cfg_route *r = x->d.route;
    x->deadline_ms = now_ms() + (r && r->upstream ? r->upstream->timeout_ms : 30000);
}

static size_t header_cb(char *data, size_t size, size_t n, void *userp)
{
    xchg *x = userp;
    size_t len = size * n;
    const cfg_limits *lim = &gate_config(x->gate)->limits;
    px_touch(x);
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new header block: an interim 1xx, or the final response. */
        ag_buf_reset(&x->resp_hdrs);
        x->resp_hdr_count = 0;
        x->resp_content_length = -1;
        return len;
    }
    if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        /* We never ask for an upgrade, so a 101 would turn the connection
         * into a tunnel nobody authorized (case 69). */
        int64_t cl;
        bool chunked;
        if (code == 101 || (code >= 200 && hx_resp_framing(x->resp_hdrs.p, x->resp_hdrs.len, &cl,
                                                           &chunked) != 0)) {
            x->upstream_error = "upstream_protocol";
            return 0;
        }
        if (code >= 100 && code < 200)
            return len;
        x->upstream_status = code;
        x->resp_headers_done = true;
        x->t_upstream_hdr_ns = ag_now_mono_ns();
        srv_upstream_progress(x);
        return len;
    }
    if (x->resp_hdrs.len + len > lim->max_response_header_bytes || x->resp_hdr_count >= 200) {
        x->upstream_error = "upstream_headers_too_large";
        return 0;
    }
    if (ag_buf_append(&x->resp_hdrs, data, len) != 0)
        return 0;
    x->resp_hdr_count++;
    return len;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
    xchg *x = userp;
    size_t len = size * n;
    px_touch(x);
    xbuf *b = &x->respbody;
    if (!b->p) {
        b->p = xb_get(x->w);
        if (!b->p)
            return 0;
    }
    if (b->len == 0)
        b->off = 0;
    if (xbuf_space(b) < len && b->off > 0) {
        memmove(b->p, b->p + b->off, b->len);
        b->off = 0;
    }
    if (xbuf_space(b) < len) {
        x->recv_paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    memcpy(b->p + b->off + b->len, data, len);
    b->len += len;
    x->resp_bytes += len;
    srv_upstream_progress(x);
    return len;
}

static size_t read_cb(char *out, size_t size, size_t n, void *userp)
{
    xchg *x = userp;
    size_t want = size * n;
    xbuf *b = &x->reqbody;
    px_touch(x);
    if (b->len == 0) {
        if (x->client_body_done)
            return 0;
        x->send_paused = true;
        srv_resume(x); /* the client may be suspended on a full buffer */
        return CURL_READFUNC_PAUSE;
    }
    size_t k = xbuf_take(b, out, want);
    srv_resume(x);
    return k;
}

static int add_header(struct curl_slist **list, const char *name, size_t nlen, const char *val,
                      size_t vlen)
{
    char stack[512];
    char *line = stack;
    size_t need = nlen + 2 + vlen + 1;
    if (need > sizeof(stack)) {
        line = malloc(need);
        if (!line)
            return -1;
    }
    memcpy(line, name, nlen);
    line[nlen] = ':';
    line[nlen + 1] = ' ';
    memcpy(line + nlen + 2, val, vlen);
    line[need - 1] = '\0';
    struct curl_slist *l = curl_slist_append(*list, line);
    if (line != stack)
        free(line);
    if (!l)
        return -1;
    *list = l;
    return 0;
}

typedef struct hdr_ctx {
    xchg *x;
    struct curl_slist *list;
    ag_buf *raw; /* uplink: header lines go here instead of the curl list */
    bool failed;
    bool have_ctype, have_accept;
    const char *host;
    char conn_tokens[512]; /* ",a,b," lower-cased names from the client's Connection */
} hdr_ctx;

static int emit(hdr_ctx *h, const char *name, size_t nlen, const char *val, size_t vlen)
{
    if (!h->raw)
        return add_header(&h->list, name, nlen, val, vlen);
    if (ag_buf_reserve(h->raw, nlen + vlen + 4) != 0)
        return -1;
    ag_buf_append(h->raw, name, nlen);
    ag_buf_append(h->raw, ": ", 2);
    ag_buf_append(h->raw, val, vlen);
    return ag_buf_append(h->raw, "\r\n", 2);
}

/* Collect the header names a client listed in Connection: they are hop-by-hop
 * for this hop only and must not be forwarded (RFC 9110 7.6.1). Headers the
 * gateway adds are appended afterwards and cannot be removed this way. */
static void collect_connection(hdr_ctx *h, const char *key, size_t key_size, const char *value,
                               size_t value_size)
{
    if (!value || !ag_streq_ci(key, key_size, "connection"))
        return;
    size_t n = strlen(h->conn_tokens);
    for (size_t i = 0; i <= value_size && n + 2 < sizeof(h->conn_tokens); i++) {
        char c = i < value_size ? value[i] : ',';
        if (c == ' ' || c == '\t')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c == ',' && n > 0 && h->conn_tokens[n - 1] == ',')
            continue;
        h->conn_tokens[n++] = c;
    }
    h->conn_tokens[n] = '\0';
}

static bool listed_in_connection(const hdr_ctx *h, const char *key, size_t key_size)
{
    char needle[130];
    if (h->conn_tokens[1] == '\0' || key_size + 3 > sizeof(needle))
        return false;
    needle[0] = ',';
    for (size_t i = 0; i < key_size; i++) {
        char c = key[i];
        needle[i + 1] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    needle[key_size + 1] = ',';
    needle[key_size + 2] = '\0';
    return strstr(h->conn_tokens, needle) != NULL;
}

static void copy_header(hdr_ctx *h, const char *key, size_t key_size, const char *value,
                        size_t value_size)
{
    xchg *x = h->x;
    const cfg_config *c = gate_config(x->gate);
    if (ag_streq_ci(key, key_size, "host")) {
        h->host = value;
        return;
    }
    if (hx_is_hop_by_hop(key, key_size) || gate_header_stripped(x->gate, key, key_size) ||
        listed_in_connection(h, key, key_size))
        return;
    /* We set these ourselves; the client's copies would be trusted upstream. */
    if (ag_streq_ci(key, key_size, "x-request-id") || ag_streq_ci(key, key_size, "expect"))
        return;
    if (!c->trust_forwarded_headers &&
        (ag_streq_ci(key, key_size, "x-forwarded-for") ||
         ag_streq_ci(key, key_size, "x-forwarded-proto") ||
         ag_streq_ci(key, key_size, "x-forwarded-host") || ag_streq_ci(key, key_size, "forwarded")))
        return;
    /* Client IP and "original URL" headers that common backends (Symfony,
     * IIS URL Rewrite, Envoy, nginx set_real_ip) trust: a client copy would
     * re-route the request behind the gateway or fake the peer (case 55). */
    if (!c->trust_forwarded_headers &&
        (ag_streq_ci(key, key_size, "x-real-ip") || ag_streq_ci(key, key_size, "x-original-url") ||
         ag_streq_ci(key, key_size, "x-rewrite-url") ||
         ag_streq_ci(key, key_size, "x-envoy-original-path") ||
         ag_streq_ci(key, key_size, "x-forwarded-uri") ||
         ag_streq_ci(key, key_size, "x-forwarded-prefix") ||
         ag_streq_ci(key, key_size, "x-forwarded-port")))
        return;
    if (key_size >= 11 && ag_streq_ci(key, 11, "x-authgate-"))
        return;
    if (!c->identity.forward_authorization && ag_streq_ci(key, key_size, "authorization"))
        return;
    if (ag_streq_ci(key, key_size, "content-type"))
        h->have_ctype = true;
    if (ag_streq_ci(key, key_size, "accept"))
        h->have_accept = true;
    if (emit(h, key, key_size, value ? value : "", value ? value_size : 0) != 0)
        h->failed = true;
    return;
}

/* The forwarded header set, shared by both clients: the client's headers minus
 * hop-by-hop, stripped and gateway-owned ones, then ours. With raw set the
 * lines are appended to it, otherwise they go into a curl list (x->hdrs). */
static int build_headers(xchg *x, ag_buf *raw)
{
    const cfg_config *c = gate_config(x->gate);
    hdr_ctx h = {.x = x, .raw = raw};
    h.conn_tokens[0] = ',';
    h.conn_tokens[1] = '\0';
    for (size_t i = 0; i < x->nhdrs_in; i++)
        collect_connection(&h, x->hdrs_in[i].name, x->hdrs_in[i].name_len, x->hdrs_in[i].value,
                           x->hdrs_in[i].value_len);
    for (size_t i = 0; i < x->nhdrs_in; i++)
        copy_header(&h, x->hdrs_in[i].name, x->hdrs_in[i].name_len, x->hdrs_in[i].value,
                    x->hdrs_in[i].value_len);
    if (h.failed)
        goto fail;
    if (x->d.x_user && emit(&h, c->identity.user_header, strlen(c->identity.user_header),
                            x->d.x_user, strlen(x->d.x_user)) != 0)
        goto fail;
    if (x->d.x_org && emit(&h, c->identity.org_header, strlen(c->identity.org_header), x->d.x_org,
                           strlen(x->d.x_org)) != 0)
        goto fail;
    if (emit(&h, "X-Forwarded-For", 15, x->client_addr, strlen(x->client_addr)) != 0 ||
        emit(&h, "X-Forwarded-Proto", 17, "http", 4) != 0 ||
        emit(&h, "X-Request-Id", 12, x->request_id, strlen(x->request_id)) != 0)
        goto fail;
    if (h.host && hx_valid_header_value(h.host, strlen(h.host)) &&
        emit(&h, "X-Forwarded-Host", 16, h.host, strlen(h.host)) != 0)
        goto fail;
    if (raw)
        return 0;
    /* Suppress headers libcurl would invent: the upstream sees the client's request. */
    struct curl_slist *l = curl_slist_append(h.list, "Expect:");
    if (!l)
        goto fail;
    h.list = l;
    if (!h.have_accept) {
        if (!(l = curl_slist_append(h.list, "Accept:")))
            goto fail;
        h.list = l;
    }
    if (!h.have_ctype && x->has_body) {
        if (!(l = curl_slist_append(h.list, "Content-Type:")))
            goto fail;
        h.list = l;
    }
    x->hdrs = h.list;
    return 0;
fail:
    curl_slist_free_all(h.list);
    return -1;
}

/* Request head for the uplink client: request line, Host, the forwarded
 * headers, and framing we choose ourselves. */
static int build_raw_head(xchg *x, ag_buf *out)
{
    const cfg_upstream *u = x->d.route->upstream;
    char host[256], port[8];
    const char *base;
    if (ul_parse_url(u->url, host, sizeof(host), port, sizeof(port), &base) != 0)
        return -1;
    size_t blen = strcspn(base, "?#");
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    bool v6 = strchr(host, ':') != NULL;
    /* Plain appends: this runs for every request. */
    int rc = ag_buf_reserve(out, 1024);
    rc |= ag_buf_puts(out, x->method);
    rc |= ag_buf_append(out, " ", 1);
    rc |= ag_buf_append(out, base, blen);
    rc |= ag_buf_append(out, x->d.path, x->d.path_len);
    if (x->d.query) {
        rc |= ag_buf_append(out, "?", 1);
        rc |= ag_buf_append(out, x->d.query, x->d.query_len);
    }
    rc |= ag_buf_puts(out, v6 ? " HTTP/1.1\r\nHost: [" : " HTTP/1.1\r\nHost: ");
    rc |= ag_buf_puts(out, host);
    if (v6)
        rc |= ag_buf_append(out, "]", 1);
    if (strcmp(port, "80") != 0) {
        rc |= ag_buf_append(out, ":", 1);
        rc |= ag_buf_puts(out, port);
    }
    rc |= ag_buf_append(out, "\r\n", 2);
    if (rc != 0 || build_headers(x, out) != 0)
        return -1;
    if (x->has_body && x->body_declared == UINT64_MAX)
        rc = ag_buf_puts(out, "Transfer-Encoding: chunked\r\n");
    else if (x->has_body)
        rc = ag_buf_printf(out, "Content-Length: %llu\r\n", (unsigned long long)x->body_declared);
    else if (!strcmp(x->method, "POST") || !strcmp(x->method, "PUT") || !strcmp(x->method, "PATCH"))
        rc = ag_buf_puts(out, "Content-Length: 0\r\n");
    rc |= ag_buf_puts(out, "\r\n");
    return rc;
}

void px_link_active(xchg *x)
{
    worker *w = x->w;
    x->next = w->active;
    x->prev = NULL;
    if (w->active)
        w->active->prev = x;
    w->active = x;
    x->in_active = true;
}

void px_unlink_active(xchg *x)
{
    worker *w = x->w;
    if (!x->in_active)
        return;
    if (x->next)
        x->next->prev = x->prev;
    if (x->prev)
        x->prev->next = x->next;
    else if (w->active == x)
        w->active = x->next;
    x->next = x->prev = NULL;
    x->in_active = false;
}

int px_start(xchg *x)
{
    worker *w = x->w;
    const cfg_route *r = x->d.route;
    const cfg_upstream *u = r->upstream;
    x->resp_content_length = -1;
    if (strncmp(u->url, "http://", 7) == 0) {
        ag_buf_reset(&x->url);
        if (build_raw_head(x, &x->url) != 0) {
            x->upstream_error = "upstream_internal";
            return -1;
        }
        if (x->has_body && !(x->reqbody.p = xb_get(w))) {
            x->upstream_error = "upstream_internal";
            return -1;
        }
        return ul_start(x, x->url.p, x->url.len);
    }
    CURL *e = w->neasy_pool > 0 ? w->easy_pool[--w->neasy_pool] : curl_easy_init();
    if (!e)
        goto fail;
    x->easy = e;
    ag_buf_reset(&x->url);
    if (ag_buf_puts(&x->url, u->url) != 0 ||
        ag_buf_append(&x->url, x->d.path, x->d.path_len) != 0 ||
        (x->d.query && (ag_buf_append(&x->url, "?", 1) != 0 ||
                        ag_buf_append(&x->url, x->d.query, x->d.query_len) != 0)))
        goto fail;
    if (build_headers(x, NULL) != 0)
        goto fail;
    curl_easy_setopt(e, CURLOPT_URL, x->url.p);
    /* The path was canonicalized by us; curl must send exactly that. */
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, u->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (u->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, u->ca_file);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 32768L);
    if (x->is_head) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (x->has_body || strcmp(x->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(e, CURLOPT_READDATA, x);
        curl_off_t size = !x->has_body                     ? 0
                          : x->body_declared == UINT64_MAX ? -1
                                                           : (curl_off_t)x->body_declared;
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, size);
        if (strcmp(x->method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
        x->reqbody.p = x->has_body ? xb_get(w) : NULL;
        if (x->has_body && !x->reqbody.p)
            goto fail;
    } else if (strcmp(x->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
    }
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK)
        goto fail;
    x->in_multi = true;
    x->t_upstream_ns = ag_now_mono_ns();
    px_touch(x);
    px_link_active(x);
    return 0;
fail:
    x->upstream_error = "upstream_internal";
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    release_easy(w, x->easy);
    x->easy = NULL;
    return -1;
}

void px_abort(xchg *x)
{
    worker *w = x->w;
    if (x->uc || (x->in_active && !x->in_multi)) {
        ul_abort(x);
        return;
    }
    if (x->in_multi) {
        curl_multi_remove_handle(w->multi, x->easy);
        x->in_multi = false;
    }
    px_unlink_active(x);
    if (x->easy) {
        release_easy(w, x->easy);
        x->easy = NULL;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
}

static const char *map_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        return "upstream_connect";
    case CURLE_OPERATION_TIMEDOUT:
        return "upstream_timeout";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return "upstream_tls";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
        return "upstream_reset";
    default:
        return "upstream_protocol";
    }
}

void px_drain_messages(worker *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        xchg *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        if (!x)
            continue;
        x->upstream_done = true;
        x->upstream_result = rc;
        if (rc != CURLE_OK && !x->upstream_error)
            x->upstream_error = map_error(rc);
        px_abort(x); /* m is invalid from here on */
        srv_upstream_progress(x);
    }
}

void px_socket_event(worker *w, int fd, uint32_t events)
{
    int flags = 0;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        flags |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        flags |= CURL_CSELECT_ERR;
    int running;
    curl_multi_socket_action(w->multi, fd, flags, &running);
}

void px_timeout(worker *w)
{
    int running;
    w->curl_deadline_ms = -1;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

void px_check_deadlines(worker *w, int64_t now)
{
    if (now - w->ul_last_sweep >= 1000) {
        ul_sweep(w, now);
        w->ul_last_sweep = now;
    }
    xchg *x = w->active;
    while (x) {
        xchg *next = x->next;
        /* A paused side waits on the client, whose own timeouts apply. */
        if (!x->send_paused && !x->recv_paused && x->deadline_ms && now >= x->deadline_ms) {
            x->upstream_error = "upstream_timeout";
            x->upstream_result = CURLE_OPERATION_TIMEDOUT;
            px_abort(x);
            x->upstream_done = true;
            srv_upstream_progress(x);
        }
        x = next;
    }
}

void px_unpause(xchg *x)
{
    if (x->uc) {
        ul_kick(x);
        return;
    }
    if (!x->easy || !x->in_multi)
        return;
    int mask = (x->recv_paused ? CURLPAUSE_RECV : 0) | (x->send_paused ? CURLPAUSE_SEND : 0);
    curl_easy_pause(x->easy, mask);
}
