#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

void ag_buf_init(ag_buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void ag_buf_free(ag_buf *b)
{
    free(b->p);
    ag_buf_init(b);
}

void ag_buf_reset(ag_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

int ag_buf_reserve(ag_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int ag_buf_append(ag_buf *b, const void *data, size_t len)
{
    if (ag_buf_reserve(b, len) != 0)
        return -1;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int ag_buf_puts(ag_buf *b, const char *s)
{
    return ag_buf_append(b, s, strlen(s));
}

int ag_buf_printf(ag_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ag_buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Decode one UTF-8 sequence; returns its length, or 0 when invalid (the byte
 * is then escaped on its own as U+FFFD so output stays valid ASCII JSON). */
static size_t utf8_decode(const unsigned char *s, size_t len, unsigned *cp)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        n = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

int ag_buf_json_str(ag_buf *b, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (ag_buf_reserve(b, len + 2) != 0 || ag_buf_append(b, "\"", 1) != 0)
        return -1;
    size_t i = 0;
    while (i < len) {
        unsigned char c = u[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            size_t j = i;
            while (j < len && u[j] >= 0x20 && u[j] < 0x7F && u[j] != '"' && u[j] != '\\')
                j++;
            if (ag_buf_append(b, s + i, j - i) != 0)
                return -1;
            i = j;
            continue;
        }
        int rc;
        switch (c) {
        case '"':
            rc = ag_buf_append(b, "\\\"", 2);
            i++;
            break;
        case '\\':
            rc = ag_buf_append(b, "\\\\", 2);
            i++;
            break;
        case '\n':
            rc = ag_buf_append(b, "\\n", 2);
            i++;
            break;
        case '\r':
            rc = ag_buf_append(b, "\\r", 2);
            i++;
            break;
        case '\t':
            rc = ag_buf_append(b, "\\t", 2);
            i++;
            break;
        default: {
            unsigned cp;
            size_t n = c < 0x80 ? 1 : utf8_decode(u + i, len - i, &cp);
            if (c < 0x80)
                cp = c;
            if (n == 0) {
                cp = 0xFFFD;
                n = 1;
            }
            if (cp >= 0x10000) {
                unsigned v = cp - 0x10000;
                rc = ag_buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
            } else {
                rc = ag_buf_printf(b, "\\u%04x", cp);
            }
            i += n;
        }
        }
        if (rc != 0)
            return -1;
    }
    return ag_buf_append(b, "\"", 1);
}

char *ag_buf_steal(ag_buf *b)
{
    char *p = b->p;
    if (!p)
        p = calloc(1, 1);
    ag_buf_init(b);
    return p;
}

char *ag_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ag_strdup(const char *s)
{
    return s ? ag_strndup(s, strlen(s)) : NULL;
}

bool ag_streq_ci(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen; i++) {
        if (b[i] == '\0')
            return false;
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x += 32;
        if (y >= 'A' && y <= 'Z')
            y += 32;
        if (x != y)
            return false;
    }
    return b[i] == '\0';
}

int ag_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int64_t ag_now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

uint64_t ag_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A multiply-mix hash over 8-byte words: fast on long tokens, seeded per process
 * so bucket placement cannot be predicted from outside. */
uint64_t ag_hash64(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ (len * 0x9E3779B97F4A7C15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w *= 0xBF58476D1CE4E5B9ull;
        w ^= w >> 31;
        h = (h ^ w) * 0x94D049BB133111EBull;
        p += 8;
        len -= 8;
    }
    uint64_t t = 0;
    memcpy(&t, p, len);
    h = (h ^ (t * 0xBF58476D1CE4E5B9ull)) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

int ag_random(void *out, size_t len)
{
    unsigned char *p = out;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}
