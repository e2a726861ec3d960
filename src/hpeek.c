#include "hpeek.h"

#include <string.h>

/* The cost of the head (its length plus HP_LINE_COST per line) if its end,
 * an empty line with CRLF or bare LF (libmicrohttpd takes both), is within
 * the first n bytes; 0 when not seen. */
static size_t head_cost(const char *b, size_t n)
{
    size_t i = 0, lines = 0;
    while (i < n && (b[i] == '\r' || b[i] == '\n'))
        i++;
    for (const char *p = b + i; (p = memchr(p, '\n', (size_t)(b + n - p))) != NULL;) {
        p++;
        lines++;
        size_t end = 0;
        if (p < b + n && *p == '\n')
            end = (size_t)(p - b) + 1;
        else if (p + 1 < b + n && p[0] == '\r' && p[1] == '\n')
            end = (size_t)(p - b) + 2;
        if (end)
            return end + lines * HP_LINE_COST;
    }
    return 0;
}

hp_verdict hp_classify(const char *buf, size_t n, size_t small_cap, bool eof)
{
    size_t seen = n < small_cap ? n : small_cap;
    size_t cost = head_cost(buf, seen);
    if (cost)
        return cost <= small_cap ? HP_SMALL : HP_BIG;
    if (n > small_cap)
        return HP_BIG;
    if (eof)
        return n ? HP_SMALL : HP_DROP;
    return HP_WAIT;
}
