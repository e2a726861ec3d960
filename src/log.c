#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static log_level g_level = LOG_INFO;
static int g_access_fd = -1;
static char *g_access_path;
static pthread_mutex_t g_access_mu = PTHREAD_MUTEX_INITIALIZER;
static bool g_journal = false;
static bool g_journal_checked = false;

void log_set_level(log_level l)
{
    g_level = l;
}

int log_level_from_name(const char *name, log_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    return -1;
}

void log_msg(log_level l, const char *fmt, ...)
{
    if (l > g_level)
        return;
    if (!g_journal_checked) {
        /* Under systemd stderr goes to the journal, which understands <N>
         * priority prefixes and adds its own timestamps. */
        g_journal = getenv("JOURNAL_STREAM") != NULL;
        g_journal_checked = true;
    }
    static const char *const tags[] = {"error", "warn", "info", "debug"};
    static const int prio[] = {3, 4, 6, 7};
    char line[2048];
    size_t n = 0;
    if (g_journal) {
        n = (size_t)snprintf(line, sizeof(line), "<%d>", prio[l]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "authgate %s: ", tags[l]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* Messages are ours, but they may quote file contents: keep one line. */
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

int log_access_open(const char *target)
{
    log_access_close();
    if (!target || strcmp(target, "stdout") == 0) {
        g_access_fd = STDOUT_FILENO;
        return 0;
    }
    if (strcmp(target, "off") == 0)
        return 0;
    int fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    g_access_path = strdup(target);
    g_access_fd = fd;
    return 0;
}

void log_access_reopen(void)
{
    if (!g_access_path)
        return;
    int fd = open(g_access_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) {
        log_error("cannot reopen access log %s: %s", g_access_path, strerror(errno));
        return;
    }
    pthread_mutex_lock(&g_access_mu);
    int old = g_access_fd;
    g_access_fd = fd;
    pthread_mutex_unlock(&g_access_mu);
    if (old > STDERR_FILENO)
        close(old);
}

bool log_access_enabled(void)
{
    return g_access_fd >= 0;
}

void log_access_write(const char *line, size_t len)
{
    pthread_mutex_lock(&g_access_mu);
    int fd = g_access_fd;
    if (fd >= 0) {
        ssize_t w = write(fd, line, len);
        (void)w;
    }
    pthread_mutex_unlock(&g_access_mu);
}

void log_access_close(void)
{
    if (g_access_fd > STDERR_FILENO)
        close(g_access_fd);
    g_access_fd = -1;
    free(g_access_path);
    g_access_path = NULL;
}
