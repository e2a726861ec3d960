/* proxy: the request that goes upstream, built from the client's admitted
 * headers, the decision and the configuration. Both upstream clients forward
 * exactly this header set. */
#include <stdlib.h>
#include <string.h>

#include "httpx.h"
#include "log.h"
#include "worker.h"

typedef struct hdr_ctx {
    xchg *x;
    ag_buf *raw;
    bool failed;
    bool have_ctype, have_accept;
    const char *host;
    char conn_tokens[512]; /* ",a,b," lower-cased names from the client's Connection */
} hdr_ctx;

static int emit(hdr_ctx *h, const char *name, size_t nlen, const char *val, size_t vlen)
{
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
 * hop-by-hop, stripped and gateway-owned ones, then ours, appended to raw as
 * "Name: value\r\n" lines. */
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
        return -1;
    if (x->d.x_user && emit(&h, c->identity.user_header, strlen(c->identity.user_header),
                            x->d.x_user, strlen(x->d.x_user)) != 0)
        return -1;
    if (x->d.x_org && emit(&h, c->identity.org_header, strlen(c->identity.org_header), x->d.x_org,
                           strlen(x->d.x_org)) != 0)
        return -1;
    if (emit(&h, "X-Forwarded-For", 15, x->client_addr, strlen(x->client_addr)) != 0 ||
        emit(&h, "X-Forwarded-Proto", 17, "http", 4) != 0 ||
        emit(&h, "X-Request-Id", 12, x->request_id, strlen(x->request_id)) != 0)
        return -1;
    if (h.host && hx_valid_header_value(h.host, strlen(h.host)) &&
        emit(&h, "X-Forwarded-Host", 16, h.host, strlen(h.host)) != 0)
        return -1;
    return 0;
}

/* Request head for the HTTP/1.1 client: request line, Host, the forwarded
 * headers, and framing we choose ourselves. */
int px_build_head(xchg *x, const up_target *t, ag_buf *out)
{
    /* Plain appends: this runs for every request. */
    int rc = ag_buf_reserve(out, 1024);
    rc |= ag_buf_puts(out, x->method);
    rc |= ag_buf_append(out, " ", 1);
    rc |= ag_buf_append(out, t->base, t->base_len);
    rc |= ag_buf_append(out, x->d.path, x->d.path_len);
    if (x->d.query) {
        rc |= ag_buf_append(out, "?", 1);
        rc |= ag_buf_append(out, x->d.query, x->d.query_len);
    }
    rc |= ag_buf_puts(out, " HTTP/1.1\r\nHost: ");
    rc |= ag_buf_puts(out, t->hostport);
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

/* Header lines for libcurl (https://): the same set; libcurl writes the
 * request line, Host and framing itself. */
int px_build_lines(xchg *x, ag_buf *out)
{
    return build_headers(x, out);
}
