/* authgate healthcheck: is the daemon that this configuration describes
 * alive? For a container HEALTHCHECK or a probe that runs inside the
 * container, so it reads the addresses from the same file the daemon was
 * started with instead of assuming a port.
 *
 * With admin_listen: GET /healthz there must answer 200.
 * Without: the main listener must answer `OPTIONS * HTTP/1.1` with any
 * well-formed HTTP status line. That request matches no route, so it never
 * reaches an upstream or needs a token; whatever status the gateway gives it
 * proves the listener accepts and a worker answers. It does not prove
 * readiness (keys, policy): that is /readyz on the admin listener.
 *
 * Bounded: every step shares one deadline (--timeout-ms, default 2000), and
 * an alarm ends the process if anything else (a name lookup) outlasts it, so
 * a health check never hangs. Exit 0 alive, 1 not (one line on stderr),
 * 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "config.h"
#include "netaddr.h"

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? ms : 0;
}

/* A wildcard listen address is reached through loopback of the same family. */
static bool wildcard_to_loopback(struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        if (a->sin_addr.s_addr == htonl(INADDR_ANY)) {
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return true;
        }
    } else if (ss->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr)) {
            a->sin6_addr = in6addr_loopback;
            return true;
        }
    }
    return false;
}

/* Sends req to spec and reads the status line. Returns the status code
 * (100..599), or -1 with a reason in err. */
static int probe(const char *listen_spec, const char *req, const struct timespec *deadline,
                 char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char aerr[256];
    int status = -1;
    if (na_listen_addr(listen_spec, &ss, &sl, aerr, sizeof(aerr)) != 0) {
        snprintf(err, errlen, "%s", aerr);
        return -1;
    }
    char spec[300]; /* for the messages: what was actually probed */
    snprintf(spec, sizeof(spec), "%s%s", listen_spec,
             wildcard_to_loopback(&ss) ? " (on loopback)" : "");
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        int so = 0;
        socklen_t len = sizeof(so);
        if (errno != EINPROGRESS) {
            snprintf(err, errlen, "connect to %s: %s", spec, strerror(errno));
            goto out;
        }
        if (poll(&p, 1, (int)ms_left(deadline)) <= 0) {
            snprintf(err, errlen, "connect to %s: timed out", spec);
            goto out;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len) != 0 || so != 0) {
            snprintf(err, errlen, "connect to %s: %s", spec, strerror(so ? so : errno));
            goto out;
        }
    }
    size_t off = 0, want = strlen(req);
    while (off < want) {
        ssize_t n = send(fd, req + off, want - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "send to %s: %s", spec, strerror(errno));
            goto out;
        }
        if (poll(&p, 1, (int)ms_left(deadline)) <= 0) {
            snprintf(err, errlen, "send to %s: timed out", spec);
            goto out;
        }
    }
    /* The status line is all we need: "HTTP/1.x NNN". */
    char buf[64];
    size_t got = 0;
    p.events = POLLIN;
    while (got < 12) {
        if (poll(&p, 1, (int)ms_left(deadline)) <= 0) {
            snprintf(err, errlen, "%s: no answer within the time limit", spec);
            goto out;
        }
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n == 0) {
            snprintf(err, errlen, "%s closed the connection without an HTTP answer", spec);
            goto out;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            snprintf(err, errlen, "read from %s: %s", spec, strerror(errno));
            goto out;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ' ||
        buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
        buf[11] > '9') {
        snprintf(err, errlen, "%s answered something other than HTTP", spec);
        goto out;
    }
    status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
out:
    close(fd);
    return status;
}

int cmd_healthcheck(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {NULL, 0, NULL, 0}};
    const char *file = NULL;
    long timeout_ms = 2000;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        char *end = NULL;
        switch (ch) {
        case 'c':
            file = optarg;
            break;
        case 't':
            timeout_ms = strtol(optarg, &end, 10);
            if (!*optarg || *end || timeout_ms < 1 || timeout_ms > 60000) {
                fprintf(stderr, "authgate healthcheck: --timeout-ms wants 1..60000\n");
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: authgate healthcheck -c FILE [--timeout-ms MS]\n");
            return 2;
        }
    }
    if (!file || optind != argc) {
        fprintf(stderr, "usage: authgate healthcheck -c FILE [--timeout-ms MS]\n");
        return 2;
    }
    /* The backstop: a name lookup or a stuck file system cannot be bounded
     * by poll(); the default SIGALRM action ends the process, non-zero. */
    alarm((unsigned)(timeout_ms / 1000) + 1);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    cfg_config *cfg = NULL;
    cfg_diags d = {0};
    if (cfg_load_file(file, &cfg, &d) != 0) {
        fprintf(stderr, "unhealthy: %s does not load: %s\n", file,
                d.nerrors ? d.errors[0] : "unknown error");
        cfg_diags_free(&d);
        return 1;
    }
    cfg_diags_free(&d);
    char err[512] = "";
    int rc = 1;
    if (cfg->admin_listen) {
        int st = probe(cfg->admin_listen,
                       "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                       "Connection: close\r\n\r\n",
                       &deadline, err, sizeof(err));
        if (st == 200)
            rc = 0;
        else if (st > 0)
            fprintf(stderr, "unhealthy: admin %s answered /healthz with %d\n", cfg->admin_listen,
                    st);
        else
            fprintf(stderr, "unhealthy: admin listener: %s\n", err);
    } else {
        int st = probe(cfg->listen,
                       "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n"
                       "Connection: close\r\n\r\n",
                       &deadline, err, sizeof(err));
        if (st > 0)
            rc = 0;
        else
            fprintf(stderr, "unhealthy: listener: %s\n", err);
    }
    cfg_free(cfg);
    return rc;
}
