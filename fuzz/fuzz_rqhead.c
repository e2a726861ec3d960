/* libFuzzer target: the forward-auth listener's request-head finder and
 * parser (src/rqhead.h).
 * Input: byte 0 picks the header cap (its low 4 bits), bytes 1-2 where the
 * bytes are split into pieces; the rest is what a peer sent.
 * Properties: rqh_head_end finds the same end on the whole input, in two or
 * three pieces at data-chosen splits and fed byte by byte, and that end
 * closes the first empty line (CRLF or a bare LF) after the first line;
 * rqh_skip_empty_lines skips only CRLF pairs. A parse,
 * of the found head and of the whole input, yields a known code; AR_OK
 * exactly when the head's fields are handed out, every field inside the
 * buffer and NUL-terminated at its length, at most cap headers, names and
 * values without CR, LF, NUL or edge blanks, a Content-Length taken only when
 * it is the one; a larger cap changes only AR_LIMIT_HEADERS into AR_OK. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "rqhead.h"

#define BIG_CAP 300

static gate_header hs[BIG_CAP];

static bool inside(const char *p, size_t len, const char *buf, size_t blen)
{
    return p && p >= buf && p + len < buf + blen && p[len] == '\0';
}

/* Where the first empty line after the first line ends, read line by line:
 * a line that starts after a LF and is empty or a lone CR. 0 when none. */
static size_t first_empty_line_end(const char *b, size_t len)
{
    for (size_t p = 0; p < len; p++) {
        if (b[p] != '\n')
            continue;
        size_t line = p + 1; /* the next line starts here */
        if (line < len && b[line] == '\n')
            return line + 1;
        if (line + 1 < len && b[line] == '\r' && b[line + 1] == '\n')
            return line + 2;
    }
    return 0;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool clean(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
            return false;
    return true;
}

static bool known(ag_reason r)
{
    return r == AR_OK || r == AR_BAD_REQUEST_LINE || r == AR_HTTP_VERSION ||
           r == AR_BAD_HEADER_NAME || r == AR_BAD_HEADER_VALUE || r == AR_LIMIT_HEADERS;
}

/* Parse buf[0..len) (a copy of exactly len bytes) with cap; check the head. */
static rqh_head parse_checked(const char *src, size_t len, size_t cap)
{
    char *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, src, len);
    rqh_head h;
    rqh_parse(buf, len, hs, cap, &h);
    FUZZ_CHECK(known(h.code));
    FUZZ_CHECK(h.nheaders <= cap);
    if (h.code == AR_BAD_REQUEST_LINE || h.code == AR_HTTP_VERSION)
        FUZZ_CHECK(h.method == NULL && h.target == NULL && h.nheaders == 0);
    if (h.code == AR_OK) {
        FUZZ_CHECK(inside(h.method, h.method_len, buf, len) && h.method_len > 0);
        FUZZ_CHECK(inside(h.target, h.target_len, buf, len) && h.target_len > 0);
        FUZZ_CHECK(h.method == buf && h.target > h.method + h.method_len);
        for (size_t i = 0; i < h.target_len; i++)
            FUZZ_CHECK((unsigned char)h.target[i] > 0x20 && h.target[i] != 0x7f);
        FUZZ_CHECK(h.minor == 0 || h.minor == 1);
        FUZZ_CHECK(!h.keep_alive || h.minor == 1 || h.nheaders > 0);
        FUZZ_CHECK(!h.content_length_ok || h.n_content_length == 1);
        FUZZ_CHECK(h.n_content_length >= 0 && (size_t)h.n_content_length <= h.nheaders);
        FUZZ_CHECK(!h.has_te || h.nheaders > 0);
        FUZZ_CHECK(!h.expect_continue || h.nheaders > 0);
        const char *prev = h.target;
        for (size_t i = 0; i < h.nheaders; i++) {
            const gate_header *g = &hs[i];
            FUZZ_CHECK(inside(g->name, g->name_len, buf, len) && g->name_len > 0);
            FUZZ_CHECK(inside(g->value, g->value_len, buf, len));
            FUZZ_CHECK(g->name > prev && g->value > g->name + g->name_len);
            prev = g->value;
            FUZZ_CHECK(clean(g->name, g->name_len) && clean(g->value, g->value_len));
            FUZZ_CHECK(!blank(g->name[0]) && !blank(g->name[g->name_len - 1]));
            FUZZ_CHECK(memchr(g->name, ':', g->name_len) == NULL);
            FUZZ_CHECK(g->value_len == 0 ||
                       (!blank(g->value[0]) && !blank(g->value[g->value_len - 1])));
        }
    } else {
        /* a refusal hands nothing out as a head */
        FUZZ_CHECK(h.code != AR_OK && !h.keep_alive);
    }
    free(buf);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t cap = data[0] & 15;
    const char *b = (const char *)data + 3;
    size_t len = size - 3;
    size_t s1 = len ? data[1] % (len + 1) : 0;
    size_t s2 = s1 + (len - s1 ? data[2] % (len - s1 + 1) : 0);

    /* empty lines and the request line */
    size_t skip = rqh_skip_empty_lines(b, len);
    FUZZ_CHECK(skip <= len && skip % 2 == 0);
    for (size_t i = 0; i < skip; i += 2)
        FUZZ_CHECK(b[i] == '\r' && b[i + 1] == '\n');
    FUZZ_CHECK(skip + 1 >= len || !(b[skip] == '\r' && b[skip + 1] == '\n'));
    FUZZ_CHECK(rqh_has_request_line(b, len) == (memchr(b, '\n', len) != NULL));

    /* the end, found whole, in pieces and byte by byte */
    size_t scan = 0;
    size_t whole = rqh_head_end(b, len, &scan);
    FUZZ_CHECK(whole <= len);
    FUZZ_CHECK(whole == first_empty_line_end(b, len));
    scan = 0;
    size_t e = rqh_head_end(b, s1, &scan);
    if (!e) {
        FUZZ_CHECK(scan <= s1);
        e = rqh_head_end(b, s2, &scan);
    }
    if (!e) {
        FUZZ_CHECK(scan <= s2);
        e = rqh_head_end(b, len, &scan);
    }
    FUZZ_CHECK(e == whole);
    scan = 0;
    e = 0;
    for (size_t n = 0; n <= len && !e; n++)
        e = rqh_head_end(b, n, &scan);
    FUZZ_CHECK(e == whole);

    /* the head found, after its empty lines, as the listener parses it */
    scan = 0;
    size_t hl = rqh_head_end(b + skip, len - skip, &scan);
    if (hl) {
        rqh_head h = parse_checked(b + skip, hl, cap);
        rqh_head big = parse_checked(b + skip, hl, BIG_CAP);
        if (h.code == AR_OK)
            FUZZ_CHECK(big.code == AR_OK && big.nheaders == h.nheaders &&
                       big.keep_alive == h.keep_alive && big.content_length == h.content_length);
        else if (h.code != AR_LIMIT_HEADERS)
            FUZZ_CHECK(big.code == h.code);
        else
            FUZZ_CHECK(big.code != AR_OK || big.nheaders > cap);
    }
    /* and whatever a caller might hand it */
    (void)parse_checked(b, len, cap);
    return 0;
}
