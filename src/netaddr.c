/* netaddr: listen addresses. A name is resolved with the system resolver at
 * start-up (and by check); IPv4 is preferred for a dual-stack name because
 * "localhost:8080" should mean the loopback address most clients try first,
 * and is what the admin listener has always bound for it. */
#include "netaddr.h"

#include <netdb.h>
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
