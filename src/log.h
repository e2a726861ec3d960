/* log: levelled error/info log on stderr (one line each, systemd-friendly
 * "<N>" priority prefixes when stderr is the journal) and the JSON access log. */
#ifndef AG_LOG_H
#define AG_LOG_H

#include <stdbool.h>

#include "util.h"

typedef enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;

void log_set_level(log_level l);
int log_level_from_name(const char *name, log_level *out);
void log_msg(log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Access log target: "stdout", "off" or a file path (opened O_APPEND). */
int log_access_open(const char *target);
/* Reopen the file (SIGUSR1, after logrotate moved it). */
void log_access_reopen(void);
bool log_access_enabled(void);
/* Write one complete line (the caller builds JSON ending in '\n') with one write(2). */
void log_access_write(const char *line, size_t len);
void log_access_close(void);

#endif
