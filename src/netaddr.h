/* netaddr: the one reading of a listen address ("listen", "admin_listen"), so
 * `authgate check` judges an address exactly as `authgate run` binds it. */
#ifndef AG_NETADDR_H
#define AG_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* "HOST:PORT" or "[IPv6]:PORT" to the address to bind. HOST may be an IPv4
 * address, a bracketed IPv6 address, a host name (resolved now: its first
 * IPv4 address, else its first IPv6 one) or empty (every interface). -1 with
 * a one-line reason in err. */
int na_listen_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                   size_t errlen);

/* An address block: "10.0.0.0/8", "::1/128", or a bare address (the whole
 * address). The zero value (family 0) matches nothing. */
typedef struct na_cidr {
    int family; /* AF_INET or AF_INET6; 0 = empty */
    unsigned char addr[16];
    unsigned prefix; /* bits */
} na_cidr;

/* 0, or -1 when s is not an address block in that notation. Host bits past
 * the prefix must be zero ("10.1.2.3/8" is refused: it is usually a typo). */
int na_cidr_parse(const char *s, na_cidr *out);
/* Is sa in one of the n blocks? An IPv4-mapped IPv6 peer (::ffff:a.b.c.d)
 * matches as the IPv4 address it carries. */
bool na_cidr_match(const na_cidr *v, size_t n, const struct sockaddr *sa);

/* A peer's address as text ("192.0.2.7", "::1") for logs; "" when sa is NULL
 * or neither IPv4 nor IPv6. */
void na_addr_string(const struct sockaddr *sa, char *out, size_t cap);

#endif
