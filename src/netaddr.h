/* netaddr: the one reading of a listen address ("listen", "admin_listen"), so
 * `authgate check` judges an address exactly as `authgate run` binds it. */
#ifndef AG_NETADDR_H
#define AG_NETADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* "HOST:PORT" or "[IPv6]:PORT" to the address to bind. HOST may be an IPv4
 * address, a bracketed IPv6 address, a host name (resolved now: its first
 * IPv4 address, else its first IPv6 one) or empty (every interface). -1 with
 * a one-line reason in err. */
int na_listen_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                   size_t errlen);

#endif
