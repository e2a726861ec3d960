#include "hpeek.h"

#include <string.h>

/* The end of the head: an empty line, CRLF or bare LF (libmicrohttpd takes
 * both). Returns the length of the head including it, or 0 when not seen. */
static size_t head_end(const char *b, size_t n)
{
    size_t i = 0;
    while (i < n && (b[i] == '\r' || b[i] == '\n'))
        i++;
    for (const char *p = b + i; (p = memchr(p, '\n', (size_t)(b + n - p))) != NULL;) {
        p++;
        if (p < b + n && *p == '\n')
            return (size_t)(p - b) + 1;
        if (p + 1 < b + n && p[0] == '\r' && p[1] == '\n')
            return (size_t)(p - b) + 2;
    }
    return 0;
}

hp_verdict hp_classify(const char *buf, size_t n, size_t small_cap, bool eof)
{
    size_t seen = n < small_cap ? n : small_cap;
    if (head_end(buf, seen))
        return HP_SMALL;
    if (n > small_cap)
        return HP_BIG;
    if (eof)
        return n ? HP_SMALL : HP_DROP;
    return HP_WAIT;
}
