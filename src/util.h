/* util: small shared helpers (growable buffer, string helpers, clocks).
 * Everything here is allocation-checked: functions that can fail return -1/NULL
 * and leave the object in a valid state. */
#ifndef AG_UTIL_H
#define AG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <time.h>

/* For library calls whose parameter lacks const although they never write
 * through it (libmicrohttpd's MUST_COPY/PERSISTENT buffers, jansson's
 * iterators): one visible place for the cast instead of casts that hide it. */
static inline void *ag_unconst(const void *p)
{
    return (void *)(uintptr_t)p;
}

#define AG_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A growable byte buffer, always NUL-terminated when p != NULL. */
typedef struct ag_buf {
    char *p;
    size_t len;
    size_t cap;
} ag_buf;

void ag_buf_init(ag_buf *b);
void ag_buf_free(ag_buf *b);
void ag_buf_reset(ag_buf *b); /* len = 0, keeps memory */
int ag_buf_reserve(ag_buf *b, size_t extra);
int ag_buf_append(ag_buf *b, const void *data, size_t len);
int ag_buf_puts(ag_buf *b, const char *s);
int ag_buf_printf(ag_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal (with quotes), escaping every control and
 * non-ASCII byte so the result is pure printable ASCII (safe in a header). */
int ag_buf_json_str(ag_buf *b, const char *s, size_t len);
/* Detach the buffer's memory (caller frees); buffer becomes empty. */
char *ag_buf_steal(ag_buf *b);

char *ag_strndup(const char *s, size_t n);
char *ag_strdup(const char *s);
bool ag_streq_ci(const char *a, size_t alen,
                 const char *b); /* ASCII case-insensitive, b NUL-terminated */
int ag_hexval(int c);            /* -1 if not a hex digit */

/* Seconds since the epoch (wall clock; token times) and a monotonic clock in ns. */
int64_t ag_now_wall(void);
uint64_t ag_now_mono_ns(void);
/* The same clock in milliseconds; inline, as the request path reads it often. */
static inline int64_t ag_now_mono_ms(void)
{
    return (int64_t)(ag_now_mono_ns() / 1000000ull);
}

/* 64-bit hash (for caches and tables; not cryptographic). */
uint64_t ag_hash64(const void *data, size_t len, uint64_t seed);

/* Random bytes from the kernel; 0 on success. */
int ag_random(void *out, size_t len);

#endif
