/* ag-wsbench: WebSocket load generator and echo server for `make bench`.
 *
 *   ag-wsbench client --url ws://127.0.0.1:PORT/PATH [--header 'Name: value']...
 *                     [--conns 64] [--seconds 2] [--size 32]
 *   ag-wsbench echo --listen 127.0.0.1:PORT [--seconds N] [--max-conns 1024]
 *
 * The client opens every connection first (blocking handshake, checks the 101
 * and Sec-WebSocket-Accept), then runs a closed loop on one epoll thread: each
 * connection sends one masked binary frame of --size bytes and waits for its
 * echo before sending the next. It prints one JSON object:
 *   {"round_trips":N,"secs":S,"per_s":R,"p50_ms":A,"p99_ms":B,"errors":E,"conns":C}
 * errors counts connections that failed (handshake, unexpected frame, close).
 *
 * The echo server answers the handshake, unmasks and echoes data frames,
 * answers ping with pong and close with close. Both exist so the benchmark
 * measures the gateway rather than an interpreter sharing the load CPU: a
 * single-threaded C peer needs a small fraction of the gateway's CPU per
 * message. Loopback addresses only; every count and duration is bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_CONNS 4096
#define WS_MAX_SECONDS 3600
#define WS_MAX_SIZE 16000 /* fits one connection buffer with its header */
#define WS_BUF 16384
#define WS_MAX_HEAD 8192
#define WS_MAX_HEADERS 8
/* Latency histogram: 10 µs buckets up to 10 s, the rest in the last bucket. */
#define WS_HIST_US 10
#define WS_HIST_N 1000000

enum ws_state { WS_DEAD = 0, WS_HEAD, WS_OPEN };

struct ws_conn {
    int fd;
    enum ws_state state;
    unsigned char in[WS_BUF];
    size_t inlen;
    unsigned char out[2 * WS_BUF];
    size_t outoff, outlen;
    uint64_t sent_ns; /* client: when the outstanding frame left, 0 when none */
    bool want_out;
};

static volatile sig_atomic_t ws_stop;

static void ws_on_signal(int sig)
{
    (void)sig;
    ws_stop = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void accept_key(const char *key, size_t keylen, char out[64])
{
    char buf[256];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (keylen > sizeof buf - sizeof WS_GUID)
        keylen = sizeof buf - sizeof WS_GUID;
    memcpy(buf, key, keylen);
    memcpy(buf + keylen, WS_GUID, sizeof WS_GUID - 1);
    EVP_Digest(buf, keylen + sizeof WS_GUID - 1, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* The value of header NAME in a CRLF-terminated head, trimmed; NULL if absent. */
static const char *head_value(const char *head, const char *name, size_t *len)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *e = strstr(v, "\r\n");
            if (!e)
                return NULL;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *len = (size_t)(e - v);
            return v;
        }
    }
    return NULL;
}

static bool parse_loopback(const char *hostport, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        return false;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (port < 1 || port > 65535 || (*end && *end != '/'))
        return false;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return false;
    return (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
}

/* Frame header for LEN payload bytes; returns its length (2, 4 or 8 with mask). */
static size_t frame_head(unsigned char *h, unsigned opcode, size_t len, const unsigned char *mask)
{
    size_t n = 0;
    h[n++] = (unsigned char)(0x80 | opcode);
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        h[n++] = (unsigned char)(m | len);
    } else {
        h[n++] = (unsigned char)(m | 126);
        h[n++] = (unsigned char)(len >> 8);
        h[n++] = (unsigned char)len;
    }
    if (mask) {
        memcpy(h + n, mask, 4);
        n += 4;
    }
    return n;
}

/* Parses one complete frame at the front of BUF. Returns its total length,
 * 0 if more bytes are needed, -1 if it is malformed or over WS_MAX_SIZE. */
static long frame_parse(const unsigned char *buf, size_t len, unsigned *opcode, bool *masked,
                        size_t *payload_off, size_t *payload_len)
{
    if (len < 2)
        return 0;
    if ((buf[0] & 0x70) || !(buf[0] & 0x80))
        return -1; /* no extensions were negotiated; peers here never fragment */
    *opcode = buf[0] & 0x0f;
    *masked = buf[1] & 0x80;
    size_t pl = buf[1] & 0x7f, off = 2;
    if (pl == 127)
        return -1;
    if (pl == 126) {
        if (len < 4)
            return 0;
        pl = ((size_t)buf[2] << 8) | buf[3];
        off = 4;
    }
    if (pl > WS_MAX_SIZE || (*opcode >= 8 && pl > 125))
        return -1;
    if (*masked)
        off += 4;
    if (len < off + pl)
        return 0;
    *payload_off = off;
    *payload_len = pl;
    return (long)(off + pl);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void conn_close(int ep, struct ws_conn *c)
{
    if (c->state == WS_DEAD)
        return;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = WS_DEAD;
}

/* Writes what is queued; arms EPOLLOUT while some stays. False on error. */
static bool conn_flush(int ep, struct ws_conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return false;
        c->outoff += (size_t)n;
    }
    if (c->outoff == c->outlen)
        c->outoff = c->outlen = 0;
    bool want = c->outlen > 0;
    if (want != c->want_out) {
        /* While replies are queued, read nothing more: backpressure, and no
         * spinning on a full input buffer that cannot be processed. */
        struct epoll_event ev = {.events = want ? EPOLLOUT : EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return true;
}

static bool conn_queue(struct ws_conn *c, const void *p, size_t n)
{
    if (c->outlen + n > sizeof c->out)
        return false;
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
    return true;
}

/* Reads what is available. False when the peer closed or failed. */
static bool conn_read(struct ws_conn *c)
{
    for (;;) {
        if (c->inlen == sizeof c->in)
            return true;
        ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        size_t asked = sizeof c->in - c->inlen;
        c->inlen += (size_t)n;
        /* A short read drained the socket: skip the recv that would only say
         * EAGAIN, a third of a peer's syscalls per message. Level-triggered
         * epoll reports anything that arrives later. */
        if ((size_t)n < asked)
            return true;
    }
}

static void consume(struct ws_conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->inlen - n);
    c->inlen -= n;
}

/* ------------------------------------------------------------------ echo */

static bool echo_handshake(struct ws_conn *c)
{
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end)
        return c->inlen < WS_MAX_HEAD;
    size_t headlen = (size_t)(end - (char *)c->in) + 4;
    char head[WS_MAX_HEAD + 1];
    if (headlen > WS_MAX_HEAD)
        return false;
    memcpy(head, c->in, headlen);
    head[headlen] = '\0';
    size_t klen = 0;
    const char *key = head_value(head, "Sec-WebSocket-Key", &klen);
    if (!key || klen == 0 || klen > 64)
        return false;
    char acc[64];
    accept_key(key, klen, acc);
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     acc);
    consume(c, headlen);
    c->state = WS_OPEN;
    return conn_queue(c, resp, (size_t)n);
}

/* Echoes every complete frame while the reply fits. False to close. */
static bool echo_frames(struct ws_conn *c)
{
    for (;;) {
        unsigned op;
        bool masked;
        size_t off, pl;
        long fl = frame_parse(c->in, c->inlen, &op, &masked, &off, &pl);
        if (fl == 0)
            return true;
        if (fl < 0 || !masked)
            return false;
        if (c->outlen + pl + 4 > sizeof c->out)
            return true; /* resumes once the reply queue drains */
        unsigned char *p = c->in + off;
        const unsigned char *mask = p - 4;
        for (size_t i = 0; i < pl; i++)
            p[i] ^= mask[i & 3];
        unsigned char h[8];
        switch (op) {
        case 1:
        case 2:
        case 8:
        case 9: {
            unsigned reply = op == 9 ? 10 : op;
            size_t hn = frame_head(h, reply, pl, NULL);
            conn_queue(c, h, hn);
            conn_queue(c, p, pl);
            break;
        }
        case 10:
            break;
        default:
            return false;
        }
        consume(c, (size_t)fl);
        if (op == 8)
            return false; /* the close reply is flushed before closing */
    }
}

static int run_echo(int argc, char **argv)
{
    const char *listen_at = NULL;
    long secs = 0, max_conns = 1024;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--listen"))
            listen_at = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds"))
            secs = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-conns"))
            max_conns = atol(argv[i + 1]);
        else {
            fprintf(stderr, "ag-wsbench echo: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    struct sockaddr_in sa;
    if (!listen_at || !parse_loopback(listen_at, &sa) || secs < 0 || secs > WS_MAX_SECONDS ||
        max_conns < 1 || max_conns > WS_MAX_CONNS) {
        fprintf(stderr,
                "usage: ag-wsbench echo --listen 127.0.0.1:PORT [--seconds 0..%d] "
                "[--max-conns 1..%d]\n",
                WS_MAX_SECONDS, WS_MAX_CONNS);
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1024) < 0) {
        perror("ag-wsbench echo: listen");
        return 1;
    }
    struct ws_conn *conns = calloc((size_t)max_conns, sizeof *conns);
    int ep = epoll_create1(0);
    if (!conns || ep < 0) {
        perror("ag-wsbench echo");
        return 1;
    }
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    uint64_t deadline = secs ? now_ns() + (uint64_t)secs * 1000000000ULL : 0;
    struct epoll_event evs[64];
    while (!ws_stop && (!deadline || now_ns() < deadline)) {
        int n = epoll_wait(ep, evs, 64, 200);
        for (int i = 0; i < n; i++) {
            struct ws_conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct ws_conn *slot = NULL;
                    for (long k = 0; k < max_conns && !slot; k++)
                        if (conns[k].state == WS_DEAD)
                            slot = &conns[k];
                    if (!slot) {
                        close(fd);
                        continue;
                    }
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    memset(slot, 0, sizeof *slot);
                    slot->fd = fd;
                    slot->state = WS_HEAD;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = slot};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            bool ok = conn_read(c);
            bool keep = ok;
            if (c->state == WS_HEAD)
                keep = keep && echo_handshake(c);
            if (keep && c->state == WS_OPEN)
                keep = echo_frames(c);
            bool flushed = conn_flush(ep, c);
            if (!keep || !flushed)
                conn_close(ep, c);
        }
    }
    for (long k = 0; k < max_conns; k++)
        conn_close(ep, &conns[k]);
    free(conns);
    close(ep);
    close(lfd);
    return 0;
}

/* ---------------------------------------------------------------- client */

struct client_opts {
    struct sockaddr_in sa;
    const char *hostport; /* for Host: */
    size_t hostlen;
    const char *path;
    const char *headers[WS_MAX_HEADERS];
    int nheaders;
    long conns, secs, size;
};

static bool client_handshake(const struct client_opts *o, struct ws_conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    c->fd = fd;
    c->state = WS_HEAD;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&o->sa, sizeof o->sa) < 0)
        return false;
    unsigned char raw[16];
    char key[32], want[64];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return false;
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    accept_key(key, strlen(key), want);
    char req[WS_MAX_HEAD];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %.*s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n",
                     o->path, (int)o->hostlen, o->hostport, key);
    for (int i = 0; i < o->nheaders && n > 0 && (size_t)n < sizeof req; i++)
        n += snprintf(req + n, sizeof req - (size_t)n, "%s\r\n", o->headers[i]);
    if (n < 0 || (size_t)n + 2 >= sizeof req)
        return false;
    memcpy(req + n, "\r\n", 2);
    n += 2;
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return false;
    char *end = NULL;
    while (!end) {
        if (c->inlen >= WS_MAX_HEAD)
            return false;
        ssize_t r = recv(fd, c->in + c->inlen, WS_MAX_HEAD - c->inlen, 0);
        if (r <= 0)
            return false;
        c->inlen += (size_t)r;
        end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    }
    size_t headlen = (size_t)(end - (char *)c->in) + 4;
    char head[WS_MAX_HEAD + 1];
    memcpy(head, c->in, headlen);
    head[headlen] = '\0';
    consume(c, headlen);
    size_t alen = 0;
    const char *acc = head_value(head, "Sec-WebSocket-Accept", &alen);
    if (strncmp(head, "HTTP/1.1 101 ", 13) != 0 || !acc || alen != strlen(want) ||
        memcmp(acc, want, alen) != 0) {
        fprintf(stderr, "ag-wsbench: handshake refused: %.*s\n", (int)strcspn(head, "\r\n"), head);
        return false;
    }
    if (set_nonblock(fd) < 0)
        return false;
    c->state = WS_OPEN;
    return true;
}

/* Masks need to vary, not to be secret, for a load generator: xorshift32. */
static uint32_t mask_state = 2463534242u;

static bool client_send(struct ws_conn *c, const unsigned char *payload, size_t len)
{
    unsigned char h[8], mask[4], buf[WS_MAX_SIZE];
    mask_state ^= mask_state << 13;
    mask_state ^= mask_state >> 17;
    mask_state ^= mask_state << 5;
    memcpy(mask, &mask_state, sizeof mask);
    size_t hn = frame_head(h, 2, len, mask);
    for (size_t i = 0; i < len; i++)
        buf[i] = payload[i] ^ mask[i & 3];
    c->sent_ns = now_ns();
    return conn_queue(c, h, hn) && conn_queue(c, buf, len);
}

static double hist_quantile(const uint32_t *hist, uint64_t total, double q)
{
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total), seen = 0;
    for (size_t i = 0; i < WS_HIST_N; i++) {
        seen += hist[i];
        if (seen > want)
            return (double)((i + 1) * WS_HIST_US) / 1000.0;
    }
    return (double)(WS_HIST_N * WS_HIST_US) / 1000.0;
}

static int run_client(int argc, char **argv)
{
    struct client_opts o = {.conns = 64, .secs = 2, .size = 32};
    const char *url = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url"))
            url = argv[i + 1];
        else if (!strcmp(argv[i], "--header") && o.nheaders < WS_MAX_HEADERS)
            o.headers[o.nheaders++] = argv[i + 1];
        else if (!strcmp(argv[i], "--conns"))
            o.conns = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            o.secs = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--size"))
            o.size = atol(argv[i + 1]);
        else {
            fprintf(stderr, "ag-wsbench client: unknown or repeated option %s\n", argv[i]);
            return 2;
        }
    }
    bool ok = url && !strncmp(url, "ws://", 5);
    if (ok) {
        o.hostport = url + 5;
        o.path = strchr(o.hostport, '/');
        ok = o.path && parse_loopback(o.hostport, &o.sa);
        o.hostlen = ok ? (size_t)(o.path - o.hostport) : 0;
    }
    for (int i = 0; i < o.nheaders && ok; i++)
        ok = !strpbrk(o.headers[i], "\r\n") && strchr(o.headers[i], ':');
    if (!ok || o.conns < 1 || o.conns > WS_MAX_CONNS || o.secs < 1 || o.secs > WS_MAX_SECONDS ||
        o.size < 1 || o.size > WS_MAX_SIZE) {
        fprintf(stderr,
                "usage: ag-wsbench client --url ws://127.0.0.1:PORT/PATH "
                "[--header 'Name: value']... [--conns 1..%d] [--seconds 1..%d] "
                "[--size 1..%d]\n",
                WS_MAX_CONNS, WS_MAX_SECONDS, WS_MAX_SIZE);
        return 2;
    }
    struct ws_conn *conns = calloc((size_t)o.conns, sizeof *conns);
    uint32_t *hist = calloc(WS_HIST_N, sizeof *hist);
    int ep = epoll_create1(0);
    if (!conns || !hist || ep < 0) {
        perror("ag-wsbench client");
        return 1;
    }
    unsigned char payload[WS_MAX_SIZE];
    for (long i = 0; i < o.size; i++)
        payload[i] = (unsigned char)('a' + i % 26);
    long errors = 0;
    for (long i = 0; i < o.conns; i++) {
        struct ws_conn *c = &conns[i];
        c->fd = -1;
        if (!client_handshake(&o, c)) {
            if (c->fd >= 0)
                close(c->fd);
            c->state = WS_DEAD;
            errors++;
            continue;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)o.secs * 1000000000ULL;
    uint64_t trips = 0;
    for (long i = 0; i < o.conns; i++) {
        struct ws_conn *c = &conns[i];
        if (c->state == WS_OPEN &&
            (!client_send(c, payload, (size_t)o.size) || !conn_flush(ep, c))) {
            conn_close(ep, c);
            errors++;
        }
    }
    struct epoll_event evs[64];
    uint64_t now = t0;
    while (!ws_stop && (now = now_ns()) < end) {
        int n = epoll_wait(ep, evs, 64, 50);
        for (int i = 0; i < n; i++) {
            struct ws_conn *c = evs[i].data.ptr;
            bool good = conn_read(c);
            while (good) {
                unsigned op;
                bool masked;
                size_t off, pl;
                long fl = frame_parse(c->in, c->inlen, &op, &masked, &off, &pl);
                if (fl == 0)
                    break;
                if (fl < 0 || masked) {
                    good = false;
                    break;
                }
                if (op == 9) {
                    unsigned char h[8], mask[4] = {0, 0, 0, 0};
                    size_t hn = frame_head(h, 10, pl, mask);
                    good = conn_queue(c, h, hn) && conn_queue(c, c->in + off, pl);
                } else if (op == 2 && c->sent_ns && pl == (size_t)o.size &&
                           memcmp(c->in + off, payload, pl) == 0) {
                    uint64_t us = (now_ns() - c->sent_ns) / 1000;
                    size_t b = (size_t)(us / WS_HIST_US);
                    hist[b < WS_HIST_N ? b : WS_HIST_N - 1]++;
                    trips++;
                    c->sent_ns = 0;
                } else if (op != 10) {
                    good = false; /* a close, a text frame or a wrong echo */
                }
                consume(c, (size_t)fl);
            }
            if (good && !c->sent_ns && now_ns() < end)
                good = client_send(c, payload, (size_t)o.size);
            if (good)
                good = conn_flush(ep, c);
            if (!good) {
                conn_close(ep, c);
                errors++;
            }
        }
    }
    double secs = (double)(now - t0) / 1e9;
    for (long i = 0; i < o.conns; i++) {
        struct ws_conn *c = &conns[i];
        if (c->state == WS_OPEN) {
            /* A close frame so the gateway logs a clean end; no wait for its reply. */
            unsigned char h[8], mask[4] = {0, 0, 0, 0}, code[2] = {0x03, 0xe8};
            size_t hn = frame_head(h, 8, 2, mask);
            c->outoff = c->outlen = 0;
            if (conn_queue(c, h, hn) && conn_queue(c, code, 2))
                (void)send(c->fd, c->out, c->outlen, MSG_NOSIGNAL);
        }
        conn_close(ep, c);
    }
    printf("{\"round_trips\":%llu,\"secs\":%.3f,\"per_s\":%.1f,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"errors\":%ld,\"conns\":%ld}\n",
           (unsigned long long)trips, secs, secs > 0 ? (double)trips / secs : 0.0,
           hist_quantile(hist, trips, 0.50), hist_quantile(hist, trips, 0.99), errors, o.conns);
    free(hist);
    free(conns);
    close(ep);
    return 0; /* errors are in the JSON, for the caller to judge */
}

int main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = ws_on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "client"))
        return run_client(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "echo"))
        return run_echo(argc, argv);
    fprintf(stderr, "usage: ag-wsbench client --url ws://127.0.0.1:PORT/PATH ... | "
                    "ag-wsbench echo --listen 127.0.0.1:PORT\n");
    return 2;
}
