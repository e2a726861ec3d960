#include "rqhead.h"

#include <string.h>

#include "admit.h"
#include "fwd.h"
#include "httpx.h"
#include "util.h"

size_t rqh_skip_empty_lines(const char *buf, size_t len)
{
    size_t i = 0;
    while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
        i += 2;
    return i;
}

bool rqh_has_request_line(const char *buf, size_t len)
{
    return memchr(buf, '\n', len) != NULL;
}

size_t rqh_head_end(const char *buf, size_t len, size_t *scan)
{
    /* The end is the first LF whose line is empty: "\r\n" alone, or a bare
     * "\n" (which rqh_parse then refuses, at once rather than after the head
     * deadline). The scan resumes a little before where it stopped, since the
     * start of the empty line may have been the last byte seen. */
    size_t i = *scan;
    while (i < len) {
        const char *lf = memchr(buf + i, '\n', len - i);
        if (!lf)
            break;
        size_t at = (size_t)(lf - buf);
        if ((at >= 1 && buf[at - 1] == '\n') ||
            (at >= 2 && buf[at - 1] == '\r' && buf[at - 2] == '\n')) {
            *scan = 0;
            return at + 1;
        }
        i = at + 1;
    }
    *scan = len > 3 ? len - 3 : 0;
    return 0;
}

static void refuse(rqh_head *h, ag_reason code)
{
    h->code = code;
}

/* The request line buf[0..end) (without its CRLF). */
static ag_reason request_line(char *buf, size_t end, rqh_head *h)
{
    char *sp1 = memchr(buf, ' ', end);
    if (!sp1 || !hx_is_token(buf, (size_t)(sp1 - buf)))
        return AR_BAD_REQUEST_LINE;
    char *t = sp1 + 1;
    char *sp2 = memchr(t, ' ', (size_t)(buf + end - t));
    if (!sp2 || sp2 == t)
        return AR_BAD_REQUEST_LINE;
    for (char *p = t; p < sp2; p++) {
        unsigned char c = (unsigned char)*p;
        /* Any control or space inside the target: not a request line. */
        if (c <= 0x20 || c == 0x7f)
            return AR_BAD_REQUEST_LINE;
    }
    const char *v = sp2 + 1;
    size_t vl = (size_t)(buf + end - v);
    if (vl != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return AR_BAD_REQUEST_LINE;
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1'))
        return AR_HTTP_VERSION;
    h->minor = v[7] - '0';
    *sp1 = '\0';
    *sp2 = '\0';
    h->method = buf;
    h->method_len = (size_t)(sp1 - buf);
    h->target = t;
    h->target_len = (size_t)(sp2 - t);
    return AR_OK;
}

void rqh_parse(char *buf, size_t len, gate_header *hdrs, size_t cap, rqh_head *h)
{
    memset(h, 0, sizeof(*h));
    h->code = AR_INTERNAL;
    /* Every line, the empty last one included, ends in CRLF. */
    char *lf = memchr(buf, '\n', len);
    if (!lf || lf == buf || lf[-1] != '\r') {
        refuse(h, AR_BAD_REQUEST_LINE);
        return;
    }
    size_t rl_end = (size_t)(lf - buf) - 1;
    if (memchr(buf, '\r', rl_end) || memchr(buf, '\0', rl_end)) {
        refuse(h, AR_BAD_REQUEST_LINE);
        return;
    }
    ag_reason rc = request_line(buf, rl_end, h);
    if (rc != AR_OK) {
        refuse(h, rc);
        return;
    }
    bool conn_close = false, conn_keep = false;
    size_t i = (size_t)(lf - buf) + 1;
    for (;;) {
        char *e = memchr(buf + i, '\n', len - i);
        if (!e || e == buf + i || e[-1] != '\r') {
            /* A LF without its CR (a bare LF line end). */
            refuse(h, AR_BAD_HEADER_VALUE);
            return;
        }
        size_t line_end = (size_t)(e - buf) - 1; /* the CR */
        if (line_end == i)
            break; /* the empty line */
        char *line = buf + i;
        size_t ll = line_end - i;
        if (line[0] == ' ' || line[0] == '\t') {
            /* obs-fold: refused, as RFC 9112 5.2 allows. */
            refuse(h, AR_BAD_HEADER_VALUE);
            return;
        }
        char *colon = memchr(line, ':', ll);
        if (!colon || colon == line || colon[-1] == ' ' || colon[-1] == '\t') {
            refuse(h, AR_BAD_HEADER_NAME);
            return;
        }
        if (memchr(line, '\r', ll) || memchr(line, '\0', ll)) {
            refuse(h, AR_BAD_HEADER_VALUE);
            return;
        }
        if (h->nheaders >= cap) {
            refuse(h, AR_LIMIT_HEADERS);
            return;
        }
        char *v = colon + 1, *ve = line + ll;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        gate_header *g = &hdrs[h->nheaders++];
        g->name = line;
        g->name_len = (size_t)(colon - line);
        g->value = v;
        g->value_len = (size_t)(ve - v);
        *colon = '\0';
        *ve = '\0';
        if (ag_streq_ci(g->name, g->name_len, "content-length")) {
            h->n_content_length++;
            uint64_t n = 0;
            bool ok = adm_content_length(v, g->value_len, &n) == 0;
            h->content_length_ok = ok && h->n_content_length == 1;
            h->content_length = n;
        } else if (ag_streq_ci(g->name, g->name_len, "transfer-encoding")) {
            h->has_te = true;
        } else if (ag_streq_ci(g->name, g->name_len, "connection")) {
            conn_close = conn_close || fwd_has_token(v, g->value_len, "close");
            conn_keep = conn_keep || fwd_has_token(v, g->value_len, "keep-alive");
        } else if (ag_streq_ci(g->name, g->name_len, "expect")) {
            if (ag_streq_ci(v, g->value_len, "100-continue"))
                h->expect_continue = true;
        }
        i = line_end + 2;
    }
    h->keep_alive = !conn_close && (h->minor == 1 || conn_keep);
    h->code = AR_OK;
}
