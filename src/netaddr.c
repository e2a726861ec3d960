/* netaddr: listen addresses. A name is resolved with the system resolver at
 * start-up (and by check); IPv4 is preferred for a dual-stack name because
 * "localhost:8080" should mean the loopback address most clients try first,
 * and is what the admin listener has always bound for it. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int na_listen_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                   size_t errlen)
{
    char host[256];
    const char *port;
    size_t hlen;
    bool bracket = spec[0] == '[';
    if (bracket) {
        const char *close = strchr(spec, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "%s: expected [IPv6 address]:PORT", spec);
            return -1;
        }
        hlen = (size_t)(close - spec - 1);
        if (hlen == 0 || hlen >= sizeof(host)) {
            snprintf(err, errlen, "%s: bad IPv6 address", spec);
            return -1;
        }
        memcpy(host, spec + 1, hlen);
        port = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (!colon) {
            snprintf(err, errlen, "%s: expected HOST:PORT", spec);
            return -1;
        }
        hlen = (size_t)(colon - spec);
        if (hlen >= sizeof(host)) {
            snprintf(err, errlen, "%s: host name too long", spec);
            return -1;
        }
        if (memchr(spec, ':', hlen)) {
            snprintf(err, errlen, "%s: put an IPv6 address in brackets, e.g. [::1]:8080", spec);
            return -1;
        }
        memcpy(host, spec, hlen);
        port = colon + 1;
    }
    host[hlen] = '\0';
    size_t nd = strspn(port, "0123456789");
    if (nd == 0 || nd > 5 || port[nd] != '\0' || strtol(port, NULL, 10) > 65535) {
        snprintf(err, errlen, "%s: bad port (want 1..65535)", spec);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags =
                                 AI_PASSIVE | AI_NUMERICSERV | (bracket ? AI_NUMERICHOST : 0)};
    if (bracket)
        hints.ai_family = AF_INET6;
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, errlen, "%s: cannot resolve %s%s%s: %s", spec, bracket ? "[" : "",
                 host[0] ? host : "(any)", bracket ? "]" : "",
                 rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    const struct addrinfo *pick = ai;
    for (const struct addrinfo *p = ai; p; p = p->ai_next)
        if (p->ai_family == AF_INET) {
            pick = p;
            break;
        }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    *sl = pick->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

int na_cidr_parse(const char *s, na_cidr *out)
{
    char buf[64];
    memset(out, 0, sizeof(*out));
    if (!s)
        return -1;
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len + 1);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    na_cidr c = {0};
    unsigned max;
    if (inet_pton(AF_INET, buf, c.addr) == 1) {
        c.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, c.addr) == 1) {
        c.family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    c.prefix = max;
    if (slash) {
        const char *p = slash + 1;
        if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0') || strlen(p) > 3)
            return -1;
        unsigned v = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v > max)
            return -1;
        c.prefix = v;
    }
    for (unsigned bit = c.prefix; bit < max; bit++)
        if (c.addr[bit / 8] & (0x80u >> (bit % 8)))
            return -1;
    *out = c;
    return 0;
}

static bool cidr_has(const na_cidr *c, const unsigned char *a)
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, a, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

bool na_cidr_match(const na_cidr *v, size_t n, const struct sockaddr *sa)
{
    if (!sa)
        return false;
    unsigned char a[16];
    int fam;
    if (sa->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        fam = AF_INET;
    } else if (sa->sa_family == AF_INET6) {
        const unsigned char *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, mapped, 12) == 0) {
            memcpy(a, b + 12, 4);
            fam = AF_INET;
        } else {
            memcpy(a, b, 16);
            fam = AF_INET6;
        }
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].family == fam && cidr_has(&v[i], a))
            return true;
    return false;
}

void na_addr_string(const struct sockaddr *sa, char *out, size_t cap)
{
    if (cap == 0)
        return;
    out[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)cap);
}
