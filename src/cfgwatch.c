/* cfgwatch: see cfgwatch.h. */
#include "cfgwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Without inotify events (a file system that sends none), the bytes are
 * still compared this often. */
#define CW_POLL_MS 5000

struct cw_watch {
    char *path;
    char *base; /* the file's name in its directory */
    long debounce_ms;
    int ino;     /* inotify fd, -1 when unavailable */
    int stop_rd; /* cw_stop writes to stop_wr */
    int stop_wr;
    unsigned long long seen; /* fingerprint of the bytes last loaded or seen */
    pthread_t thread;
};

unsigned long long cw_fingerprint(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    unsigned long long h = 1469598103934665603ULL;
    unsigned char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            h ^= buf[i];
            h *= 1099511628211ULL;
        }
    }
    close(fd);
    if (n < 0)
        return 0;
    /* 0 is kept for "missing"; an empty file is a (broken) change. */
    return h ? h : 1;
}

/* Reads whatever events are queued; true if any was about the config: its
 * own name (an editor's rename, an in-place write) or a `..` name (a
 * ConfigMap's `..data` swap). Others are dropped: a log file written next to
 * the config must not keep the debounce from ever ending. */
static bool drain_events(int ino, const char *base)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool ours = false;
    for (;;) {
        ssize_t n = read(ino, buf, sizeof(buf));
        if (n <= 0)
            return ours;
        for (char *q = buf; q < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)q;
            if (ev->len == 0 || strcmp(ev->name, base) == 0 || strncmp(ev->name, "..", 2) == 0 ||
                (ev->mask & IN_Q_OVERFLOW))
                ours = true;
            q += sizeof(*ev) + ev->len;
        }
    }
}

static void *watch_main(void *arg)
{
    cw_watch *w = arg;
    struct pollfd p[2] = {{.fd = w->stop_rd, .events = POLLIN}, {.fd = w->ino, .events = POLLIN}};
    nfds_t n = w->ino >= 0 ? 2 : 1;
    for (;;) {
        if (poll(p, n, CW_POLL_MS) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            break;
        if (n == 2 && (p[1].revents & POLLIN)) {
            if (!drain_events(w->ino, w->base))
                continue;
            /* Debounce: a ConfigMap update or an editor's save is several
             * events; wait until the directory has been quiet a while. */
            for (;;) {
                int r = poll(p, n, (int)w->debounce_ms);
                if (r < 0 && errno != EINTR)
                    break;
                if (p[0].revents)
                    goto out;
                if (r <= 0 || !drain_events(w->ino, w->base))
                    break;
            }
        }
        unsigned long long fp = cw_fingerprint(w->path);
        /* Missing (mid-rename, or deleted): keep serving, wait for the file. */
        if (fp == 0 || fp == w->seen)
            continue;
        w->seen = fp;
        log_info("config watch: %s changed, reloading", w->path);
        kill(getpid(), SIGHUP);
    }
out:
    return NULL;
}

cw_watch *cw_start(const char *path, long debounce_ms, char *err, size_t errlen)
{
    cw_watch *w = calloc(1, sizeof(*w));
    char *tmp = ag_strdup(path);
    int pfd[2] = {-1, -1};
    if (!w || !tmp || !(w->path = ag_strdup(path))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->ino = -1;
    w->debounce_ms = debounce_ms;
    const char *slash = strrchr(path, '/');
    if (!(w->base = ag_strdup(slash ? slash + 1 : path))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->seen = cw_fingerprint(path);
    w->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->ino < 0 || inotify_add_watch(w->ino, dirname(tmp),
                                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                            IN_DELETE | IN_ATTRIB | IN_MODIFY) < 0) {
        /* Not fatal: the slow poll still sees the change. */
        log_warn("config watch: inotify on the directory of %s: %s; polling every %d ms "
                 "instead",
                 path, strerror(errno), CW_POLL_MS);
        if (w->ino >= 0)
            close(w->ino);
        w->ino = -1;
    }
    if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    w->stop_rd = pfd[0];
    w->stop_wr = pfd[1];
    /* The thread must never take SIGHUP/SIGTERM itself: server.c sigwait()s. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, watch_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the watch thread: %s", strerror(rc));
        goto fail;
    }
    free(tmp);
    return w;
fail:
    if (pfd[0] >= 0) {
        close(pfd[0]);
        close(pfd[1]);
    }
    if (w) {
        if (w->ino >= 0)
            close(w->ino);
        free(w->path);
        free(w->base);
        free(w);
    }
    free(tmp);
    return NULL;
}

void cw_stop(cw_watch *w)
{
    if (!w)
        return;
    ssize_t r = write(w->stop_wr, "x", 1);
    (void)r;
    pthread_join(w->thread, NULL);
    close(w->stop_rd);
    close(w->stop_wr);
    if (w->ino >= 0)
        close(w->ino);
    free(w->path);
    free(w->base);
    free(w);
}
