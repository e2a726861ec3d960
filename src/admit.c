#include "admit.h"

#include <string.h>

#include "httpx.h"
#include "util.h"

/* A Host with '/', '@', '?', '#' or spaces would become part of a URL the
 * upstream builds (it is forwarded as X-Forwarded-Host). */
bool adm_host_ok(const char *v, size_t len)
{
    size_t i = 0;
    if (len == 0)
        return false;
    if (v[0] == '[') {
        while (++i < len && v[i] != ']')
            if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f') ||
                  (v[i] >= 'A' && v[i] <= 'F') || v[i] == ':' || v[i] == '.'))
                return false;
        if (i >= len || i == 1)
            return false;
        i++;
    } else {
        for (; i < len && v[i] != ':'; i++) {
            unsigned char c = (unsigned char)v[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr("-._~!$&'()*+,;=%", c))))
                return false;
        }
        if (i == 0)
            return false;
    }
    if (i == len)
        return true;
    if (v[i] != ':' || i + 1 == len || len - i - 1 > 5)
        return false;
    for (i++; i < len; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

/* RFC 9112 6.1/6.3: 0 when the list ends in exactly one "chunked" and has
 * nothing else; 501 for other codings before a final chunked (we do not decode
 * them); 400 when chunked is not the final coding (body length unknowable),
 * repeated, or a list element is empty. */
int adm_te_verdict(const char *v, size_t len)
{
    int nchunked = 0, n = 0;
    bool last_chunked = false;
    const char *p = v, *end = v + len;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *b = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e == b)
            return 400;
        n++;
        last_chunked = (size_t)(e - b) == 7 && ag_streq_ci(b, 7, "chunked");
        nchunked += last_chunked;
        if (p == end)
            break;
        p++;
    }
    if (!last_chunked || nchunked > 1)
        return 400;
    return n > 1 ? 501 : 0;
}

int adm_content_length(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

static adm_result refuse(int status, const char *error, const char *reason)
{
    return (adm_result){
        .outcome = ADM_REFUSED, .status = status, .error = error, .reason = reason, .close = true};
}

adm_result adm_check(const adm_request *req, const cfg_limits *lim)
{
    const gate_header *h = req->headers;
    size_t n = req->nheaders;
    /* Size first: a head over the limits is refused without reading it. */
    if (n > lim->max_headers || n > ADM_MAX_HEADERS_HARD)
        return refuse(431, "request_header_fields_too_large", "limit_headers");
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += h[i].name_len + h[i].value_len + 4;
    if (bytes > lim->max_header_bytes)
        return refuse(431, "request_header_fields_too_large", "limit_headers");

    bool bad_name = false, bad_value = false, bad_host = false;
    size_t n_host = 0, n_te = 0, n_cl = 0;
    const gate_header *te = NULL, *cl = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = h[i].value ? h[i].value : "";
        size_t vl = h[i].value ? h[i].value_len : 0;
        if (!hx_valid_header_name(h[i].name, h[i].name_len))
            bad_name = true;
        if (!hx_valid_header_value(v, vl))
            bad_value = true;
        if (ag_streq_ci(h[i].name, h[i].name_len, "content-length")) {
            n_cl++;
            cl = &h[i];
        } else if (ag_streq_ci(h[i].name, h[i].name_len, "transfer-encoding")) {
            n_te++;
            te = &h[i];
        } else if (ag_streq_ci(h[i].name, h[i].name_len, "host")) {
            n_host++;
            if (!adm_host_ok(v, vl))
                bad_host = true;
        }
    }
    if (bad_name)
        return refuse(400, "bad_request", "bad_header_name");
    if (bad_value)
        return refuse(400, "bad_request", "bad_header_value");
    if ((req->version == ADM_HTTP_11 && n_host != 1) || n_host > 1 || bad_host)
        return refuse(400, "bad_request", "bad_host");
    if (n_te > 0 && n_cl > 0)
        return refuse(400, "bad_request", "framing_te_and_cl");

    adm_result r = {.outcome = ADM_ADMITTED, .framing = ADM_BODY_NONE};
    if (n_te > 0) {
        /* The front end (libmicrohttpd 0.9.75) only recognises the exact value
         * "chunked"; anything else would be read as a body lasting until the
         * client closes. HTTP/1.0 with Transfer-Encoding has faulty framing. */
        const char *v = te->value ? te->value : "";
        size_t vl = te->value ? te->value_len : 0;
        int verdict = n_te > 1 || req->version != ADM_HTTP_11 ? 400 : adm_te_verdict(v, vl);
        if (verdict == 0 && !(vl == 7 && ag_streq_ci(v, vl, "chunked")))
            verdict = 400;
        if (verdict != 0)
            return refuse(verdict, verdict == 501 ? "not_implemented" : "bad_request",
                          "framing_bad_te");
        r.framing = ADM_BODY_CHUNKED;
    }
    if (n_cl > 1)
        return refuse(400, "bad_request", "framing_bad_content_length");
    if (n_cl == 1) {
        if (adm_content_length(cl->value ? cl->value : "", cl->value ? cl->value_len : 0,
                               &r.body_length) != 0)
            return refuse(400, "bad_request", "framing_bad_content_length");
        r.framing = ADM_BODY_LENGTH;
        if (lim->max_body_bytes && r.body_length > lim->max_body_bytes)
            return refuse(413, "payload_too_large", "limit_body");
    }
    return r;
}
