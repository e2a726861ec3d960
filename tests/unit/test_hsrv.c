/* The answer-only HTTP/1.1 listener (src/hsrv.h), over real loopback TCP: a
 * server on 127.0.0.1 port 0 with a handler that says what it saw (method,
 * target, refusal code, header count) in its answer fields and body, and a
 * raw client that writes bytes and reads answers. Every wait is bounded and
 * generous: the machine running these is loaded. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hsrv.h"
#include "util.h"
#include "testutil.h"

#define WAIT_MS 5000
#define MAX_THREADS 4

/* ---- the handler --------------------------------------------------------- */

typedef struct slot {
    char code[64], thread[8], nh[16];
    char method[64], target[256];
    char body[512];
} slot;

static struct {
    slot slots[MAX_THREADS];
    int calls;     /* atomic */
    int last_code; /* atomic: the last request's ag_reason */
    int bad;       /* atomic: a thread index out of range, a refusal with a head */
} H;

static char big_body[2048];

/* Copies s into d[0..cap) at most, NUL-terminated: its length. */
static size_t cpy(char *d, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        n = cap - 1;
    memcpy(d, s, n);
    d[n] = '\0';
    return n;
}

static void handle(void *ctx, int thread, const hs_request *rq, hs_reply *out)
{
    (void)ctx;
    if (thread < 0 || thread >= MAX_THREADS) {
        __atomic_store_n(&H.bad, 1, __ATOMIC_RELEASE);
        out->status = 500;
        return;
    }
    slot *s = &H.slots[thread];
    __atomic_add_fetch(&H.calls, 1, __ATOMIC_ACQ_REL);
    __atomic_store_n(&H.last_code, (int)rq->code, __ATOMIC_RELEASE);
    cpy(s->code, sizeof(s->code), reason_name(rq->code));
    snprintf(s->thread, sizeof(s->thread), "%d", thread);
    out->fields[out->nfields++] = (hs_field){"X-Code", s->code};
    out->fields[out->nfields++] = (hs_field){"X-Thread", s->thread};
    if (rq->code != AR_OK) {
        if (rq->head || rq->headers || rq->nheaders)
            __atomic_store_n(&H.bad, 1, __ATOMIC_RELEASE);
        out->status = reason_status(rq->code);
        size_t n = cpy(s->body, sizeof(s->body), "refused ");
        n += cpy(s->body + n, sizeof(s->body) - n, s->code);
        n += cpy(s->body + n, sizeof(s->body) - n, "\n");
        out->body = s->body;
        out->body_len = n;
        return;
    }
    const rqh_head *h = rq->head;
    if (!h || rq->nheaders != h->nheaders)
        __atomic_store_n(&H.bad, 1, __ATOMIC_RELEASE);
    cpy(s->method, sizeof(s->method), h->method);
    cpy(s->target, sizeof(s->target), h->target);
    snprintf(s->nh, sizeof(s->nh), "%zu", rq->nheaders);
    out->fields[out->nfields++] = (hs_field){"X-Method", s->method};
    out->fields[out->nfields++] = (hs_field){"X-Target", s->target};
    out->fields[out->nfields++] = (hs_field){"X-Headers", s->nh};
    out->status = 200;
    if (strncmp(h->target, "/s/", 3) == 0)
        out->status = atoi(h->target + 3);
    else if (strcmp(h->target, "/nostatus") == 0)
        out->status = 0; /* never set: the server answers 500 */
    if (strcmp(h->target, "/close") == 0)
        out->close = true;
    if (strncmp(h->target, "/big", 4) == 0) {
        out->body = big_body;
        out->body_len = sizeof(big_body);
    } else {
        size_t n = cpy(s->body, sizeof(s->body), s->method);
        n += cpy(s->body + n, sizeof(s->body) - n, " ");
        n += cpy(s->body + n, sizeof(s->body) - n, s->target);
        n += cpy(s->body + n, sizeof(s->body) - n, "\n");
        out->body = s->body;
        out->body_len = n;
    }
}

static int calls(void)
{
    return __atomic_load_n(&H.calls, __ATOMIC_ACQUIRE);
}

/* ---- the server ---------------------------------------------------------- */

static hs_server *srv;
static int port;
static struct sockaddr_in srv_addr;

static hs_config base_cfg(void)
{
    srv_addr = (struct sockaddr_in){.sin_family = AF_INET};
    srv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return (hs_config){
        .addr = (const struct sockaddr *)&srv_addr,
        .addrlen = sizeof(srv_addr),
        .threads = 2,
        .max_connections = 64,
        .head_cap = 1024,
        .max_headers = 8,
        .request_timeout_ms = 10000,
        .idle_timeout_ms = 10000,
        .handle = handle,
    };
}

static void start(const hs_config *c)
{
    char err[256] = "";
    memset(&H, 0, sizeof(H));
    memset(big_body, 'b', sizeof(big_body));
    ck_assert_msg(hs_start(c, &srv, err, sizeof(err)) == 0, "hs_start: %s", err);
    port = hs_port(srv);
    ck_assert_int_gt(port, 0);
}

static void start_default(void)
{
    hs_config c = base_cfg();
    start(&c);
}

static void teardown(void)
{
    hs_stop(srv);
    srv = NULL;
    ck_assert_int_eq(__atomic_load_n(&H.bad, __ATOMIC_ACQUIRE), 0);
}

/* ---- the client ---------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct client {
    int fd;
    char buf[1 << 16]; /* read, not yet taken as an answer */
    size_t len;
} client;

/* fd, or -errno. */
static int try_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (const struct sockaddr *)&a, sizeof(a)) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static client *cl_open(void)
{
    client *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->fd = try_connect();
    ck_assert_msg(c->fd >= 0, "connect: %s", strerror(-c->fd));
    return c;
}

static void cl_close(client *c)
{
    if (c) {
        close(c->fd);
        free(c);
    }
}

static void cl_send(client *c, const char *p, size_t len)
{
    while (len) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_msg(n > 0, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void cl_sends(client *c, const char *s)
{
    cl_send(c, s, strlen(s));
}

/* For a connection the server may already have closed. */
static void cl_sends_any(client *c, const char *s)
{
    ssize_t n = send(c->fd, s, strlen(s), MSG_NOSIGNAL);
    (void)n;
}

/* One more read within ms: bytes read, 0 at EOF, -1 on a reset, -2 when
 * nothing came. */
static ssize_t cl_fill(client *c, int ms)
{
    ck_assert_uint_lt(c->len, sizeof(c->buf));
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int r = poll(&p, 1, ms < 0 ? 0 : ms);
    if (r <= 0)
        return -2;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n < 0)
        return -1;
    c->len += (size_t)n;
    return n;
}

typedef struct answer {
    int status;
    char head[4096];
    long content_length;
    char body[4096];
    size_t body_len;
} answer;

static answer A;

/* The value of field name in A.head ("" when absent). */
static const char *field(const char *name)
{
    static char v[512];
    v[0] = '\0';
    size_t nl = strlen(name);
    for (const char *l = strstr(A.head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        const char *line = l + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *p = line + nl + 1;
            while (*p == ' ')
                p++;
            const char *e = strstr(p, "\r\n");
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n >= sizeof(v))
                n = sizeof(v) - 1;
            memcpy(v, p, n);
            v[n] = '\0';
            return v;
        }
    }
    return v;
}

/* Read one answer into A (its body too unless head_only). 1, or 0 when the
 * connection ended (or nothing came within WAIT_MS) first. */
static int read_answer(client *c, bool head_only)
{
    memset(&A, 0, sizeof(A));
    int64_t until = ag_now_mono_ms() + WAIT_MS;
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (cl_fill(c, (int)(until - ag_now_mono_ms())) <= 0)
            return 0;
    size_t hl = (size_t)(end - c->buf) + 4;
    ck_assert_uint_lt(hl, sizeof(A.head));
    memcpy(A.head, c->buf, hl);
    ck_assert_msg(sscanf(A.head, "HTTP/1.1 %d ", &A.status) == 1, "not an answer: %.40s", A.head);
    const char *cl = field("Content-Length");
    ck_assert_msg(cl[0], "no Content-Length");
    A.content_length = atol(cl);
    size_t want = head_only ? 0 : (size_t)A.content_length;
    ck_assert_uint_le(want, sizeof(A.body) - 1);
    while (c->len < hl + want)
        if (cl_fill(c, (int)(until - ag_now_mono_ms())) <= 0)
            return 0;
    memcpy(A.body, c->buf + hl, want);
    A.body_len = want;
    memmove(c->buf, c->buf + hl + want, c->len - hl - want);
    c->len -= hl + want;
    return 1;
}

/* An answer to target, 200, with the connection kept. */
static void expect_ok(client *c, const char *target)
{
    ck_assert_msg(read_answer(c, false), "%s: no answer", target);
    ck_assert_msg(A.status == 200, "%s: status %d", target, A.status);
    ck_assert_str_eq(field("X-Target"), target);
    ck_assert_msg(field("Connection")[0] == '\0', "%s: Connection: %s", target,
                  field("Connection"));
}

/* The server closes c within ms and sends nothing more: the ms it took. */
static int64_t expect_closed(client *c, int ms)
{
    ck_assert_msg(c->len == 0, "%zu bytes left unread", c->len);
    int64_t t0 = ag_now_mono_ms(), until = t0 + ms;
    for (;;) {
        ssize_t n = cl_fill(c, (int)(until - ag_now_mono_ms()));
        ck_assert_msg(n <= 0, "%zd more bytes: %.60s", n, c->buf);
        ck_assert_msg(n != -2, "still open after %d ms", ms);
        return ag_now_mono_ms() - t0;
    }
}

/* Nothing to read within ms (and the connection still open). */
static void expect_quiet(client *c, int ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    ck_assert_msg(poll(&p, 1, ms) == 0, "something to read");
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(test_keep_alive_sequence)
{
    start_default();
    client *c = cl_open();
    for (int i = 0; i < 4; i++) {
        char req[128], target[32], body[64];
        snprintf(target, sizeof(target), "/k%d", i);
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: gw\r\n\r\n", target);
        cl_sends(c, req);
        expect_ok(c, target);
        snprintf(body, sizeof(body), "GET %s\n", target);
        ck_assert_str_eq(A.body, body);
        ck_assert_int_eq(A.content_length, (long)strlen(body));
        ck_assert_str_eq(field("X-Method"), "GET");
        ck_assert_str_eq(field("X-Headers"), "1");
        ck_assert_str_eq(field("X-Code"), "ok");
        ck_assert_msg(field("Date")[0], "no Date");
        ck_assert_int_lt(atoi(field("X-Thread")), 2);
    }
    ck_assert_int_eq(calls(), 4);
    cl_close(c);
}
END_TEST

START_TEST(test_pipelined_in_order)
{
    start_default();
    client *c = cl_open();
    /* empty lines between requests are ignored; nothing after a request
     * that closes is answered */
    cl_sends(c, "GET /p0 HTTP/1.1\r\n\r\n"
                "GET /p1 HTTP/1.1\r\nHost: gw\r\n\r\n"
                "\r\n\r\n"
                "HEAD /p2 HTTP/1.1\r\n\r\n"
                "POST /p3 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                "GET /p4 HTTP/1.1\r\n\r\n"
                "GET /p5 HTTP/1.1\r\nConnection: close\r\n\r\n"
                "GET /p6 HTTP/1.1\r\n\r\n");
    for (int i = 0; i < 6; i++) {
        char target[16];
        snprintf(target, sizeof(target), "/p%d", i);
        ck_assert_msg(read_answer(c, i == 2), "%s: no answer", target);
        ck_assert_int_eq(A.status, 200);
        ck_assert_str_eq(field("X-Target"), target);
        ck_assert_str_eq(field("Connection"), i == 5 ? "close" : "");
    }
    expect_closed(c, WAIT_MS);
    ck_assert_int_eq(calls(), 6);
    cl_close(c);
}
END_TEST

START_TEST(test_head_byte_by_byte)
{
    start_default();
    client *c = cl_open();
    const char *req = "GET /slow HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n\r\n";
    size_t n = strlen(req);
    for (size_t i = 0; i + 1 < n; i++) {
        cl_send(c, req + i, 1);
        sleep_ms(2);
    }
    expect_quiet(c, 100);
    ck_assert_int_eq(calls(), 0);
    cl_send(c, req + n - 1, 1);
    expect_ok(c, "/slow");
    ck_assert_str_eq(field("X-Headers"), "2");
    /* the next head split inside its final CRLF CRLF, at each point */
    const char *next = "GET /next HTTP/1.1\r\nHost: gw\r\n\r\n";
    for (size_t cut = 1; cut <= 4; cut++) {
        cl_send(c, next, strlen(next) - cut);
        expect_quiet(c, 50);
        cl_send(c, next + strlen(next) - cut, cut);
        expect_ok(c, "/next");
    }
    ck_assert_int_eq(calls(), 5);
    cl_close(c);
}
END_TEST

START_TEST(test_small_body_skipped)
{
    start_default();
    client *c = cl_open();
    /* a body that looks like a request is skipped, not answered */
    const char *evil = "GET /evil HTTP/1.1\r\n\r\n";
    char req[256];
    snprintf(req, sizeof(req),
             "POST /a HTTP/1.1\r\nContent-Length: %zu\r\n\r\n%sGET /b HTTP/1.1\r\n\r\n",
             strlen(evil), evil);
    cl_sends(c, req);
    expect_ok(c, "/a");
    expect_ok(c, "/b");
    /* the answer comes from the head; the body may follow it */
    cl_sends(c, "POST /c HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe");
    expect_ok(c, "/c");
    cl_sends(c, "llo");
    sleep_ms(20);
    cl_sends(c, "GET /d HTTP/1.1\r\n\r\n");
    expect_ok(c, "/d");
    /* exactly HS_SKIP_MAX bytes are still skipped */
    static char body[HS_SKIP_MAX];
    memset(body, 'x', sizeof(body));
    snprintf(req, sizeof(req), "POST /e HTTP/1.1\r\nContent-Length: %d\r\n\r\n", HS_SKIP_MAX);
    cl_sends(c, req);
    cl_send(c, body, sizeof(body));
    cl_sends(c, "GET /f HTTP/1.1\r\n\r\n");
    expect_ok(c, "/e");
    expect_ok(c, "/f");
    ck_assert_int_eq(calls(), 6);
    cl_close(c);
}
END_TEST

/* A body the server will not read: the answer closes the connection. */
static void expect_closing_answer(const char *req, const char *target)
{
    client *c = cl_open();
    int before = calls();
    cl_sends(c, req);
    ck_assert_msg(read_answer(c, false), "%s: no answer", target);
    ck_assert_msg(A.status == 200, "%s: status %d (an interim answer?)", target, A.status);
    ck_assert_str_eq(field("X-Target"), target);
    ck_assert_str_eq(field("Connection"), "close");
    expect_closed(c, WAIT_MS);
    ck_assert_int_eq(calls(), before + 1);
    cl_close(c);
}

START_TEST(test_unskippable_bodies_close)
{
    start_default();
    char req[256];
    snprintf(req, sizeof(req),
             "POST /over HTTP/1.1\r\nContent-Length: %d\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
             HS_SKIP_MAX + 1);
    expect_closing_answer(req, "/over");
    expect_closing_answer("POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "14\r\nGET /x HTTP/1.1\r\n\r\n\r\n0\r\n\r\n",
                          "/chunked");
    expect_closing_answer(
        "POST /te HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nab", "/te");
    expect_closing_answer(
        "POST /expect HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", "/expect");
    expect_closing_answer("POST /badlen HTTP/1.1\r\nContent-Length: 5x\r\n\r\nhello", "/badlen");
    expect_closing_answer(
        "POST /twolen HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "/twolen");
    /* Expect without a body keeps the connection */
    client *c = cl_open();
    cl_sends(c, "POST /e0 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"
                "GET /after HTTP/1.1\r\n\r\n");
    expect_ok(c, "/e0");
    expect_ok(c, "/after");
    cl_close(c);
}
END_TEST

START_TEST(test_http10)
{
    start_default();
    client *c = cl_open();
    cl_sends(c, "GET /o HTTP/1.0\r\n\r\nGET /never HTTP/1.0\r\n\r\n");
    ck_assert(read_answer(c, false));
    ck_assert_str_eq(field("X-Target"), "/o");
    ck_assert_str_eq(field("Connection"), "close");
    expect_closed(c, WAIT_MS);
    cl_close(c);

    c = cl_open();
    for (int i = 0; i < 2; i++) {
        cl_sends(c, "GET /ka HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        ck_assert(read_answer(c, false));
        ck_assert_str_eq(field("X-Target"), "/ka");
        ck_assert_str_eq(field("Connection"), "keep-alive");
    }
    cl_sends(c, "GET /last HTTP/1.0\r\n\r\n");
    ck_assert(read_answer(c, false));
    ck_assert_str_eq(field("Connection"), "close");
    expect_closed(c, WAIT_MS);
    cl_close(c);

    c = cl_open();
    cl_sends(c, "GET /c11 HTTP/1.1\r\nConnection: close\r\n\r\n");
    ck_assert(read_answer(c, false));
    ck_assert_str_eq(field("Connection"), "close");
    expect_closed(c, WAIT_MS);
    cl_close(c);
    ck_assert_int_eq(calls(), 5);
}
END_TEST

START_TEST(test_head_method)
{
    start_default();
    client *c = cl_open();
    cl_sends(c, "HEAD /h HTTP/1.1\r\n\r\n");
    ck_assert(read_answer(c, true));
    ck_assert_int_eq(A.status, 200);
    ck_assert_int_eq(A.content_length, (long)strlen("HEAD /h\n"));
    /* no body bytes follow the head */
    expect_quiet(c, 200);
    ck_assert_uint_eq(c->len, 0);
    cl_sends(c, "GET /g HTTP/1.1\r\n\r\n");
    expect_ok(c, "/g");
    ck_assert_str_eq(A.body, "GET /g\n");
    cl_close(c);
}
END_TEST

START_TEST(test_head_cap)
{
    hs_config cfg = base_cfg();
    cfg.head_cap = 1024;
    start(&cfg);
    char req[4096];

    /* the request line alone runs over: 414 */
    client *c = cl_open();
    int n = snprintf(req, sizeof(req), "GET /%01100d", 0);
    cl_send(c, req, (size_t)n);
    ck_assert(read_answer(c, false));
    ck_assert_int_eq(A.status, 414);
    ck_assert_str_eq(field("X-Code"), "limit_uri");
    ck_assert_str_eq(field("Connection"), "close");
    ck_assert_int_eq(__atomic_load_n(&H.last_code, __ATOMIC_ACQUIRE), AR_LIMIT_URI);
    expect_closed(c, WAIT_MS);
    cl_close(c);

    /* after the request line: 431 */
    c = cl_open();
    n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Pad: %01100d", 0);
    cl_send(c, req, (size_t)n);
    ck_assert(read_answer(c, false));
    ck_assert_int_eq(A.status, 431);
    ck_assert_str_eq(field("X-Code"), "limit_headers");
    ck_assert_int_eq(__atomic_load_n(&H.last_code, __ATOMIC_ACQUIRE), AR_LIMIT_HEADERS);
    expect_closed(c, WAIT_MS);
    cl_close(c);

    /* a whole head of exactly head_cap bytes is answered; one byte more is
     * not */
    for (int extra = 0; extra <= 1; extra++) {
        size_t fixed = strlen("GET /cap HTTP/1.1\r\nX-Pad: \r\n\r\n");
        int pad = (int)(cfg.head_cap - fixed) + extra;
        n = snprintf(req, sizeof(req), "GET /cap HTTP/1.1\r\nX-Pad: %0*d\r\n\r\n", pad, 0);
        ck_assert_uint_eq((size_t)n, cfg.head_cap + (size_t)extra);
        c = cl_open();
        cl_send(c, req, (size_t)n);
        ck_assert(read_answer(c, false));
        if (extra == 0) {
            ck_assert_int_eq(A.status, 200);
            ck_assert_str_eq(field("X-Target"), "/cap");
        } else {
            ck_assert_int_eq(A.status, 431);
            expect_closed(c, WAIT_MS);
        }
        cl_close(c);
    }

    /* a long request line behind a good pipelined request */
    c = cl_open();
    n = snprintf(req, sizeof(req), "GET /ok HTTP/1.1\r\n\r\nGET /%01100d", 0);
    cl_send(c, req, (size_t)n);
    expect_ok(c, "/ok");
    ck_assert(read_answer(c, false));
    ck_assert_int_eq(A.status, 414);
    expect_closed(c, WAIT_MS);
    cl_close(c);
}
END_TEST

START_TEST(test_parse_refusals)
{
    start_default();
    static const struct {
        const char *req;
        ag_reason code;
        int status;
    } rows[] = {
        {"GET / HTTP/2.0\r\n\r\n", AR_HTTP_VERSION, 505},
        {"GET / HTTP/1.1\r\nBad : x\r\n\r\n", AR_BAD_HEADER_NAME, 400},
        {"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", AR_BAD_HEADER_VALUE, 400},
        {"GET /a b HTTP/1.1\r\n\r\n", AR_BAD_REQUEST_LINE, 400},
        {"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: 8\r\nI: "
         "9\r\n\r\n",
         AR_LIMIT_HEADERS, 431},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        client *c = cl_open();
        int before = calls();
        char req[512];
        snprintf(req, sizeof(req), "%sGET /after HTTP/1.1\r\n\r\n", rows[i].req);
        cl_sends(c, req);
        ck_assert_msg(read_answer(c, false), "row %zu: no answer", i);
        ck_assert_msg(A.status == rows[i].status, "row %zu: status %d", i, A.status);
        ck_assert_str_eq(field("X-Code"), reason_name(rows[i].code));
        ck_assert_str_eq(field("Connection"), "close");
        expect_closed(c, WAIT_MS);
        ck_assert_int_eq(calls(), before + 1);
        ck_assert_int_eq(__atomic_load_n(&H.last_code, __ATOMIC_ACQUIRE), (int)rows[i].code);
        cl_close(c);
    }
}
END_TEST

START_TEST(test_request_timeout)
{
    hs_config cfg = base_cfg();
    cfg.request_timeout_ms = 200;
    start(&cfg);
    /* a stalled partial head */
    /* timed from before the send: the server's clock starts later */
    client *c = cl_open();
    int64_t t0 = ag_now_mono_ms();
    cl_sends(c, "GET /p HTTP/1.1\r\nHost:");
    expect_closed(c, WAIT_MS);
    ck_assert_int_ge(ag_now_mono_ms() - t0, 199);
    ck_assert_int_eq(calls(), 0);
    cl_close(c);
    /* a stalled body */
    c = cl_open();
    cl_sends(c, "POST /b HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
    expect_ok(c, "/b");
    expect_closed(c, WAIT_MS);
    cl_close(c);
    /* a connection that never sends its first request: timed from the
     * accept, not left to the idle timeout */
    c = cl_open();
    t0 = ag_now_mono_ms();
    expect_closed(c, WAIT_MS);
    ck_assert_int_ge(ag_now_mono_ms() - t0, 150);
    ck_assert_int_eq(calls(), 1);
    cl_close(c);
    /* the deadline is not an idle timeout: a connection between requests
     * stays */
    c = cl_open();
    cl_sends(c, "GET /1 HTTP/1.1\r\n\r\n");
    expect_ok(c, "/1");
    sleep_ms(600);
    cl_sends(c, "GET /2 HTTP/1.1\r\n\r\n");
    expect_ok(c, "/2");
    cl_close(c);
}
END_TEST

/* The deadline runs from a head's first byte to its end, each head its own:
 * a client streaming pipelined requests whose every write ends inside a head
 * is not cut off after request_timeout_ms overall. */
START_TEST(test_request_timeout_per_head)
{
    hs_config cfg = base_cfg();
    cfg.request_timeout_ms = 1000;
    start(&cfg);
    client *c = cl_open();
    char stream[4096];
    size_t n = 0, starts[24];
    for (int i = 0; i < 20; i++) {
        starts[i] = n;
        n += (size_t)snprintf(stream + n, sizeof(stream) - n,
                              "GET /t%d HTTP/1.1\r\nHost: gw\r\n\r\n", i);
    }
    /* piece k: from the middle of head k-1 to the middle of head k */
    size_t from = 0;
    for (int i = 0; i < 20; i++) {
        size_t to = i == 19 ? n : starts[i + 1] + 7;
        cl_send(c, stream + from, to - from);
        from = to;
        sleep_ms(150);
    }
    for (int i = 0; i < 20; i++) {
        char target[16];
        snprintf(target, sizeof(target), "/t%d", i);
        expect_ok(c, target);
    }
    cl_close(c);
}
END_TEST

START_TEST(test_idle_timeout)
{
    hs_config cfg = base_cfg();
    cfg.idle_timeout_ms = 300;
    start(&cfg);
    /* timed from before the send (the connect): the server's clock starts
     * later */
    client *c = cl_open();
    int64_t t0 = ag_now_mono_ms();
    cl_sends(c, "GET /i HTTP/1.1\r\n\r\n");
    expect_ok(c, "/i");
    expect_closed(c, WAIT_MS);
    ck_assert_int_ge(ag_now_mono_ms() - t0, 299);
    cl_close(c);
    /* a connection that never sends a byte */
    t0 = ag_now_mono_ms();
    c = cl_open();
    expect_closed(c, WAIT_MS);
    ck_assert_int_ge(ag_now_mono_ms() - t0, 299);
    cl_close(c);
}
END_TEST

START_TEST(test_max_connections)
{
    hs_config cfg = base_cfg();
    cfg.max_connections = 2;
    start(&cfg);
    client *a = cl_open(), *b = cl_open();
    cl_sends(a, "GET /a HTTP/1.1\r\n\r\n");
    expect_ok(a, "/a");
    cl_sends(b, "GET /b HTTP/1.1\r\n\r\n");
    expect_ok(b, "/b");
    /* the third is accepted and closed at once, unanswered */
    client *c = cl_open();
    cl_sends_any(c, "GET /c HTTP/1.1\r\n\r\n");
    /* at once: long before any timeout (10 s here) */
    ck_assert_int_lt(expect_closed(c, WAIT_MS), 2500);
    cl_close(c);
    ck_assert_int_eq(calls(), 2);
    /* a place freed is a place taken again */
    cl_close(a);
    bool answered = false;
    for (int64_t until = ag_now_mono_ms() + WAIT_MS; !answered && ag_now_mono_ms() < until;) {
        c = cl_open();
        cl_sends_any(c, "GET /d HTTP/1.1\r\n\r\n");
        answered = read_answer(c, false) == 1;
        cl_close(c);
        if (!answered)
            sleep_ms(50);
    }
    ck_assert_msg(answered, "no place after one was freed");
    ck_assert_str_eq(field("X-Target"), "/d");
    cl_sends(b, "GET /b2 HTTP/1.1\r\n\r\n");
    expect_ok(b, "/b2");
    cl_close(b);
}
END_TEST

START_TEST(test_drain)
{
    start_default();
    client *idle = cl_open(), *busy = cl_open();
    cl_sends(idle, "GET /idle HTTP/1.1\r\n\r\n");
    expect_ok(idle, "/idle");
    cl_sends(busy, "GET /busy HTTP/1.1\r\n\r\n");
    expect_ok(busy, "/busy");
    hs_drain(srv);
    /* the next answer on a kept connection ends it */
    cl_sends(busy, "GET /last HTTP/1.1\r\n\r\n");
    ck_assert(read_answer(busy, false));
    ck_assert_str_eq(field("X-Target"), "/last");
    ck_assert_str_eq(field("Connection"), "close");
    expect_closed(busy, WAIT_MS);
    cl_close(busy);
    /* an idle one is closed soon (500 ms after the drain is seen) */
    int64_t took = expect_closed(idle, WAIT_MS);
    ck_assert_int_le(took, 3000);
    cl_close(idle);
    /* new connections are refused */
    int fd = try_connect();
    if (fd >= 0)
        close(fd);
    ck_assert_msg(fd == -ECONNREFUSED, "connect while draining: %s",
                  fd >= 0 ? "accepted" : strerror(-fd));
    ck_assert_int_eq(calls(), 3);
}
END_TEST

/* Read n answers to GET <prefix><i>, i = 0.., in order and none closing,
 * writing what is left of req meanwhile. */
static void read_in_order(client *c, const char *prefix, int n, const char *req, size_t *req_off,
                          size_t req_len)
{
    int got = 0;
    int64_t until = ag_now_mono_ms() + 60000;
    char *end;
    while (got < n) {
        ck_assert_msg(ag_now_mono_ms() < until, "%d of %d answers", got, n);
        struct pollfd p = {.fd = c->fd, .events = POLLIN | (*req_off < req_len ? POLLOUT : 0)};
        ck_assert_int_ge(poll(&p, 1, 1000), 0);
        if ((p.revents & POLLOUT) && *req_off < req_len) {
            ssize_t k = send(c->fd, req + *req_off, req_len - *req_off, MSG_NOSIGNAL);
            if (k > 0)
                *req_off += (size_t)k;
        }
        if (!(p.revents & POLLIN))
            continue;
        ssize_t k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (k < 0 && errno == EAGAIN)
            continue;
        ck_assert_msg(k > 0, "connection ended after %d of %d answers", got, n);
        c->len += (size_t)k;
        size_t off = 0;
        while ((end = memmem(c->buf + off, c->len - off, "\r\n\r\n", 4))) {
            size_t hl = (size_t)(end - (c->buf + off)) + 4;
            const char *cl = memmem(c->buf + off, hl, "Content-Length: ", 16);
            ck_assert_ptr_nonnull(cl);
            size_t blen = (size_t)atol(cl + 16);
            if (c->len - off < hl + blen)
                break;
            char want[64];
            int wl = snprintf(want, sizeof(want), "X-Target: %s%d\r\n", prefix, got);
            ck_assert_msg(memmem(c->buf + off, hl, want, (size_t)wl),
                          "answer %d out of order: %.*s", got, (int)hl, c->buf + off);
            ck_assert_msg(!memmem(c->buf + off, hl, "Connection: close", 17), "answer %d closes",
                          got);
            got++;
            off += hl + blen;
        }
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
    }
}

/* A client that pipelines without reading: the server stops reading once
 * answers wait, so the client's sends block long before it has written
 * everything, and every answer still comes, in order, once it reads. */
START_TEST(test_back_pressure)
{
    hs_config cfg = base_cfg();
    cfg.threads = 1;
    cfg.head_cap = 4096;
    cfg.request_timeout_ms = 60000;
    cfg.idle_timeout_ms = 60000;
    start(&cfg);
    client *c = cl_open();
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);

    /* Write until the server has answered nothing for a while although
     * requests wait: it stopped reading. (The kernel still takes a trickle
     * of bytes into the server's full receive buffer, so the writes never
     * block for good.) */
    char req[64];
    size_t req_len = 0, req_off = 0;
    int sent = 0; /* requests begun */
    int last_calls = -1;
    int64_t t0 = ag_now_mono_ms(), since = t0;
    bool held = false;
    while (!held && ag_now_mono_ms() - t0 < 30000) {
        int k = calls();
        if (k != last_calls) {
            last_calls = k;
            since = ag_now_mono_ms();
        } else if (ag_now_mono_ms() - since >= 1500 && k < sent) {
            held = true;
        }
        if (req_off == req_len) {
            req_len = (size_t)snprintf(req, sizeof(req), "GET /q%d HTTP/1.1\r\n\r\n", sent);
            req_off = 0;
            sent++;
        }
        ssize_t n = send(c->fd, req + req_off, req_len - req_off, MSG_NOSIGNAL);
        if (n > 0) {
            req_off += (size_t)n;
            continue;
        }
        ck_assert_msg(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "send: %s",
                      strerror(errno));
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        poll(&p, 1, 100);
    }
    ck_assert_msg(held, "%d requests written, %d answered: the server did not hold back", sent,
                  calls());
    ck_assert_int_lt(calls(), sent);

    /* now read: every answer, in order, while writing the rest */
    read_in_order(c, "/q", sent, req, &req_off, req_len);
    ck_assert_int_eq(calls(), sent);
    cl_close(c);
}
END_TEST

/* A client that reads slowly is not a client that writes its heads slowly:
 * heads it sent at once, held back while their answers wait (HS_OUT_MAX),
 * are not cut off by the request-head deadline. */
START_TEST(test_slow_reader_is_no_slow_head)
{
    hs_config cfg = base_cfg();
    cfg.threads = 1;
    cfg.head_cap = 4096;
    cfg.request_timeout_ms = 300;
    cfg.idle_timeout_ms = 60000;
    start(&cfg);
    client *c = cl_open();
    /* 2 KB answers to 26-byte requests: one read of heads is more answer
     * than HS_OUT_MAX, and the answers fill the socket buffers */
    enum { N = 3000 };
    char *reqs = malloc(N * 32);
    ck_assert_ptr_nonnull(reqs);
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(reqs + len, 32, "GET /big%d HTTP/1.1\r\n\r\n", i);
    cl_send(c, reqs, len);
    free(reqs);
    /* hold back well past the deadline; the server stays in step */
    int64_t t0 = ag_now_mono_ms();
    int k = -1;
    while (ag_now_mono_ms() - t0 < 1500 || calls() != k) {
        k = calls();
        sleep_ms(200);
        ck_assert_int_lt(ag_now_mono_ms() - t0, 30000);
    }
    ck_assert_int_lt(calls(), N);
    size_t none = 0;
    read_in_order(c, "/big", N, "", &none, 0);
    ck_assert_int_eq(calls(), N);
    cl_close(c);
}
END_TEST

/* Several connections on two threads, each a stream of requests (some with
 * small bodies, some after empty lines, padded heads) written in pieces of
 * random size interleaved with the others, its answers read as they come:
 * each connection gets every answer, in its own order. */
START_TEST(test_random_streams)
{
    start_default();
    enum { NC = 6, NR = 150 };
    client *cl[NC];
    char *stream[NC];
    size_t slen[NC], soff[NC];
    int got[NC];
    unsigned seed = 12345;
#define RND(n) ((seed = seed * 1103515245u + 12345u) >> 16) % (n)
    for (int k = 0; k < NC; k++) {
        cl[k] = cl_open();
        stream[k] = malloc(NR * 256);
        ck_assert_ptr_nonnull(stream[k]);
        size_t n = 0;
        for (int i = 0; i < NR; i++) {
            char *o = stream[k] + n;
            size_t room = NR * 256 - n;
            int w;
            switch (RND(4)) {
            case 0: {
                unsigned bl = RND(80);
                w = snprintf(o, room, "POST /r%d HTTP/1.1\r\nContent-Length: %u\r\n\r\n", i, bl);
                memset(o + w, 'a' + (int)RND(26), bl);
                w += (int)bl;
                break;
            }
            case 1:
                w = snprintf(o, room, "\r\nGET /r%d HTTP/1.1\r\n\r\n", i);
                break;
            case 2:
                w = snprintf(o, room, "GET /r%d HTTP/1.1\r\nHost: gw\r\nX-Pad: %0*d\r\n\r\n", i,
                             (int)RND(120) + 1, 0);
                break;
            default:
                w = snprintf(o, room, "HEAD /r%d HTTP/1.1\r\nHost: gw\r\n\r\n", i);
                break;
            }
            n += (size_t)w;
        }
        slen[k] = n;
        soff[k] = 0;
        got[k] = 0;
    }
    int64_t until = ag_now_mono_ms() + 60000;
    for (bool more = true; more;) {
        ck_assert_msg(ag_now_mono_ms() < until, "streams did not finish");
        more = false;
        for (int k = 0; k < NC; k++) {
            if (soff[k] < slen[k]) {
                size_t piece = 1 + RND(60);
                if (piece > slen[k] - soff[k])
                    piece = slen[k] - soff[k];
                cl_send(cl[k], stream[k] + soff[k], piece);
                soff[k] += piece;
            }
            /* take whatever answers are there */
            while (got[k] < NR) {
                char *end = memmem(cl[k]->buf, cl[k]->len, "\r\n\r\n", 4);
                if (!end) {
                    if (cl_fill(cl[k], 0) <= 0)
                        break;
                    continue;
                }
                size_t hl = (size_t)(end - cl[k]->buf) + 4;
                char want[32];
                snprintf(want, sizeof(want), "X-Target: /r%d\r\n", got[k]);
                ck_assert_msg(memmem(cl[k]->buf, hl, want, strlen(want)),
                              "connection %d answer %d: %.*s", k, got[k], (int)hl, cl[k]->buf);
                ck_assert_msg(!memmem(cl[k]->buf, hl, "Connection:", 11), "connection %d closes",
                              k);
                const char *lenf = memmem(cl[k]->buf, hl, "Content-Length: ", 16);
                ck_assert_ptr_nonnull(lenf);
                bool head = memmem(cl[k]->buf, hl, "X-Method: HEAD", 14) != NULL;
                size_t blen = head ? 0 : (size_t)atol(lenf + 16);
                if (cl[k]->len < hl + blen) {
                    if (cl_fill(cl[k], 0) <= 0)
                        break;
                    continue;
                }
                memmove(cl[k]->buf, cl[k]->buf + hl + blen, cl[k]->len - hl - blen);
                cl[k]->len -= hl + blen;
                got[k]++;
            }
            if (soff[k] < slen[k] || got[k] < NR)
                more = true;
        }
        if (more)
            sleep_ms(1);
    }
#undef RND
    for (int k = 0; k < NC; k++) {
        ck_assert_int_eq(got[k], NR);
        free(stream[k]);
        cl_close(cl[k]);
    }
    ck_assert_int_eq(calls(), NC * NR);
}
END_TEST

START_TEST(test_stop_with_open_connections)
{
    start_default();
    client *idle = cl_open(), *partial = cl_open(), *body = cl_open(), *silent = cl_open();
    cl_sends(idle, "GET /idle HTTP/1.1\r\n\r\n");
    expect_ok(idle, "/idle");
    cl_sends(partial, "GET /partial HTTP/1.1\r\nHo");
    cl_sends(body, "POST /body HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789");
    expect_ok(body, "/body");
    sleep_ms(50);
    hs_stop(srv);
    srv = NULL;
    expect_closed(idle, 2000);
    expect_closed(partial, 2000);
    expect_closed(body, 2000);
    expect_closed(silent, 2000);
    cl_close(idle);
    cl_close(partial);
    cl_close(body);
    cl_close(silent);
    /* NULL is fine everywhere */
    hs_stop(NULL);
    hs_drain(NULL);
    ck_assert_int_eq(hs_port(NULL), -1);
}
END_TEST

/* A peer that sends its requests and then its FIN still gets every answer. */
START_TEST(test_half_close)
{
    start_default();
    client *c = cl_open();
    cl_sends(c, "GET /h1 HTTP/1.1\r\n\r\nGET /h2 HTTP/1.1\r\n\r\n");
    shutdown(c->fd, SHUT_WR);
    expect_ok(c, "/h1");
    expect_ok(c, "/h2");
    expect_closed(c, WAIT_MS);
    cl_close(c);
    ck_assert_int_eq(calls(), 2);
}
END_TEST

/* A port in use: an error, nothing started, nothing left behind. */
START_TEST(test_start_error)
{
    start_default();
    hs_config c = base_cfg();
    srv_addr.sin_port = htons((uint16_t)port);
    hs_server *second = srv; /* not NULL: hs_start must clear it */
    char err[256] = "";
    ck_assert_int_eq(hs_start(&c, &second, err, sizeof(err)), -1);
    ck_assert_ptr_null(second);
    ck_assert_msg(err[0], "no reason given");
    /* the first still answers */
    client *cl = cl_open();
    cl_sends(cl, "GET /first HTTP/1.1\r\n\r\n");
    expect_ok(cl, "/first");
    cl_close(cl);
}
END_TEST

START_TEST(test_answers)
{
    start_default();
    client *c = cl_open();
    cl_sends(c, "GET /s/404 HTTP/1.1\r\n\r\n");
    ck_assert(read_answer(c, false));
    ck_assert_msg(strncmp(A.head, "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%.30s", A.head);
    cl_sends(c, "GET /nostatus HTTP/1.1\r\n\r\n");
    ck_assert(read_answer(c, false));
    ck_assert_int_eq(A.status, 500);
    ck_assert_str_eq(field("X-Target"), "/nostatus");
    cl_sends(c, "GET /big HTTP/1.1\r\n\r\n");
    ck_assert(read_answer(c, false));
    ck_assert_uint_eq(A.body_len, sizeof(big_body));
    cl_sends(c, "\r\n\r\nGET /after-empty-lines HTTP/1.1\r\n\r\n");
    expect_ok(c, "/after-empty-lines");
    cl_sends(c, "GET /close HTTP/1.1\r\n\r\nGET /never HTTP/1.1\r\n\r\n");
    ck_assert(read_answer(c, false));
    ck_assert_str_eq(field("Connection"), "close");
    expect_closed(c, WAIT_MS);
    cl_close(c);
    ck_assert_int_eq(calls(), 5);

    /* a peer that ends inside a head gets no answer */
    c = cl_open();
    cl_sends(c, "GET /half HTTP/1.1\r\n");
    shutdown(c->fd, SHUT_WR);
    expect_closed(c, WAIT_MS);
    cl_close(c);
    ck_assert_int_eq(calls(), 5);

    ck_assert_str_eq(hs_status_text(200), "OK");
    ck_assert_str_eq(hs_status_text(403), "Forbidden");
    ck_assert_str_eq(hs_status_text(431), "Request Header Fields Too Large");
    ck_assert_str_eq(hs_status_text(505), "HTTP Version Not Supported");
    ck_assert_str_eq(hs_status_text(599), "Server Error");
    ck_assert_str_eq(hs_status_text(502), "Bad Gateway");
    ck_assert_str_eq(hs_status_text(418), "Client Error");
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("hsrv");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_keep_alive_sequence);
    tcase_add_test(tc, test_pipelined_in_order);
    tcase_add_test(tc, test_head_byte_by_byte);
    tcase_add_test(tc, test_small_body_skipped);
    tcase_add_test(tc, test_unskippable_bodies_close);
    tcase_add_test(tc, test_http10);
    tcase_add_test(tc, test_head_method);
    tcase_add_test(tc, test_head_cap);
    tcase_add_test(tc, test_parse_refusals);
    tcase_add_test(tc, test_request_timeout);
    tcase_add_test(tc, test_request_timeout_per_head);
    tcase_add_test(tc, test_idle_timeout);
    tcase_add_test(tc, test_max_connections);
    tcase_add_test(tc, test_drain);
    tcase_add_test(tc, test_back_pressure);
    tcase_add_test(tc, test_slow_reader_is_no_slow_head);
    tcase_add_test(tc, test_random_streams);
    tcase_add_test(tc, test_stop_with_open_connections);
    tcase_add_test(tc, test_half_close);
    tcase_add_test(tc, test_start_error);
    tcase_add_test(tc, test_answers);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
