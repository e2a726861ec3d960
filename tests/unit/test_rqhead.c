/* The forward-auth listener's request-head finder and parser (src/rqhead.h):
 * where a head ends however its bytes arrive, the strict grammar of the
 * request line and header lines, and what the listener reads off a parsed
 * head (framing, keep-alive, Expect). Every head is copied into a buffer of
 * exactly its length, so that a read past its end shows under valgrind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rqhead.h"
#include "testutil.h"

#define CAP 16

typedef struct parsed {
    char *buf; /* exactly len bytes */
    size_t len;
    gate_header h[CAP];
    rqh_head head;
} parsed;

static parsed P;

static void parse_n(const char *s, size_t len, size_t cap)
{
    free(P.buf);
    memset(&P, 0, sizeof(P));
    P.buf = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(P.buf);
    memcpy(P.buf, s, len);
    P.len = len;
    rqh_parse(P.buf, len, P.h, cap, &P.head);
}

/* A string literal, embedded NULs included. */
#define PARSE(lit) parse_n((lit), sizeof(lit) - 1, CAP)
#define PARSE_CAP(lit, cap) parse_n((lit), sizeof(lit) - 1, (cap))

static void expect_code(ag_reason want, const char *what)
{
    ck_assert_msg(P.head.code == want, "%s: code %s, want %s", what, reason_name(P.head.code),
                  reason_name(want));
}

/* A field parsed in place: inside the buffer and NUL-terminated at its
 * length, with the text wanted. */
static void expect_field(const char *p, size_t len, const char *want, const char *what)
{
    ck_assert_msg(p != NULL, "%s: not set", what);
    ck_assert_msg(p >= P.buf && p + len < P.buf + P.len, "%s: not inside the head", what);
    ck_assert_msg(p[len] == '\0', "%s: not NUL-terminated at its length", what);
    ck_assert_msg(len == strlen(want) && memcmp(p, want, len) == 0, "%s: '%.*s', want '%s'", what,
                  (int)len, p, want);
}

static void expect_header(size_t i, const char *name, const char *value)
{
    ck_assert_uint_lt(i, P.head.nheaders);
    expect_field(P.h[i].name, P.h[i].name_len, name, "name");
    expect_field(P.h[i].value, P.h[i].value_len, value, "value");
}

/* ---- rqh_head_end ------------------------------------------------------------ */

/* Heads followed by what comes after them (a body, the next request) and where
 * the head ends in each. */
static const struct {
    const char *bytes;
    size_t end;
} heads[] = {
    {"GET / HTTP/1.1\r\n\r\n", 18},
    {"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n", 18},
    {"GET /a HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n\r\nbody\r\n\r\n", 37},
    {"POST /p HTTP/1.0\r\nContent-Length: 4\r\n\r\n\r\n\r\n", 39},
    /* a bare LF inside a line is no end; an empty line of a bare LF is one
     * (rqh_parse then refuses the head at once, not after the deadline) */
    {"GET / HTTP/1.1\r\nX: a\nb\r\n\n\r\nY: c\r\n\r\n", 25},
    {"GET / HTTP/1.1\nHost: f\n\n", 24},
    /* CR CR LF ends no line of its own: the end is the CRLF CRLF inside */
    {"GET / HTTP/1.1\r\nX: \r\r\n\r\n", 24},
    {"G\r\n\r\n", 5},
};

static void feed_bytewise(const char *b, size_t len, size_t want, const char *what)
{
    size_t scan = 0;
    for (size_t n = 0; n <= len; n++) {
        size_t e = rqh_head_end(b, n, &scan);
        if (n < want) {
            ck_assert_msg(e == 0, "%s: end %zu after %zu bytes (want %zu)", what, e, n, want);
            ck_assert_msg(scan <= n, "%s: scan %zu past %zu bytes", what, scan, n);
        } else {
            ck_assert_msg(e == want, "%s: end %zu after %zu bytes, want %zu", what, e, n, want);
            return;
        }
    }
    ck_abort_msg("%s: no end", what);
}

START_TEST(test_head_end_whole)
{
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        size_t scan = 0, len = strlen(heads[i].bytes);
        ck_assert_uint_eq(rqh_head_end(heads[i].bytes, len, &scan), heads[i].end);
        ck_assert_uint_eq(scan, 0); /* ready for the next head */
    }
    /* incomplete heads */
    static const char *const partial[] = {
        "",
        "G",
        "GET / HTTP/1.1",
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\n\r",
        "GET / HTTP/1.1\r\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n",
    };
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        size_t scan = 0;
        ck_assert_msg(rqh_head_end(partial[i], strlen(partial[i]), &scan) == 0, "partial %zu", i);
    }
    /* An empty line made of a bare LF ends the head, which rqh_parse refuses:
     * the client gets its 400 now rather than a silent close later. */
    static const char *const bare[] = {
        "GET / HTTP/1.1\n\n",
        "GET / HTTP/1.1\r\n\n",
        "GET / HTTP/1.1\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
        size_t scan = 0, len = strlen(bare[i]);
        ck_assert_msg(rqh_head_end(bare[i], len, &scan) == len, "bare %zu", i);
        parse_n(bare[i], len, CAP);
        ck_assert_msg(P.head.code != AR_OK, "bare %zu parsed", i);
    }
}
END_TEST

START_TEST(test_head_end_byte_by_byte)
{
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        char what[32];
        snprintf(what, sizeof(what), "head %zu", i);
        feed_bytewise(heads[i].bytes, strlen(heads[i].bytes), heads[i].end, what);
    }
}
END_TEST

/* Two and three pieces at every pair of split points: the resumed scan never
 * misses the end, wherever in "\r\n\r\n" a piece stops. */
START_TEST(test_head_end_every_split)
{
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        const char *b = heads[i].bytes;
        size_t len = strlen(b), want = heads[i].end;
        for (size_t s1 = 0; s1 <= len; s1++) {
            for (size_t s2 = s1; s2 <= len; s2++) {
                size_t scan = 0, e = rqh_head_end(b, s1, &scan);
                if (e == 0)
                    e = rqh_head_end(b, s2, &scan);
                if (e == 0)
                    e = rqh_head_end(b, len, &scan);
                ck_assert_msg(e == want, "head %zu split %zu/%zu: end %zu, want %zu", i, s1, s2, e,
                              want);
            }
        }
    }
}
END_TEST

/* A long head in 1..7-byte pieces, and its end at the last byte of a piece,
 * the first, and inside. */
START_TEST(test_head_end_long_head_pieces)
{
    char b[2048];
    size_t n = (size_t)snprintf(b, sizeof(b), "GET /x HTTP/1.1\r\n");
    for (int k = 0; k < 40; k++)
        n += (size_t)snprintf(b + n, sizeof(b) - n, "X-H%d: %0*d\r\n", k, k % 13, k);
    n += (size_t)snprintf(b + n, sizeof(b) - n, "\r\n");
    size_t want = n;
    n += (size_t)snprintf(b + n, sizeof(b) - n, "GET /y HTTP/1.1\r\n\r\n");
    for (size_t step = 1; step <= 7; step++) {
        for (size_t first = 0; first < step; first++) {
            size_t scan = 0, have = first, e = 0;
            while (!(e = rqh_head_end(b, have, &scan))) {
                ck_assert_uint_lt(have, n);
                have = have + step > n ? n : have + step;
            }
            ck_assert_msg(e == want, "step %zu first %zu: end %zu, want %zu", step, first, e, want);
        }
    }
}
END_TEST

/* How the listener uses them together: empty lines skipped first, only at the
 * start of a new head. */
START_TEST(test_skip_empty_lines)
{
    ck_assert_uint_eq(rqh_skip_empty_lines("", 0), 0);
    ck_assert_uint_eq(rqh_skip_empty_lines("\r", 1), 0);
    ck_assert_uint_eq(rqh_skip_empty_lines("\r\n", 2), 2);
    ck_assert_uint_eq(rqh_skip_empty_lines("\r\n\r", 3), 2);
    ck_assert_uint_eq(rqh_skip_empty_lines("\r\n\r\nGET", 7), 4);
    ck_assert_uint_eq(rqh_skip_empty_lines("\n\r\n", 3), 0); /* a bare LF is no empty line */
    ck_assert_uint_eq(rqh_skip_empty_lines("\r\r\n", 3), 0);
    ck_assert_uint_eq(rqh_skip_empty_lines("GET\r\n", 5), 0);
    /* the length is respected */
    ck_assert_uint_eq(rqh_skip_empty_lines("\r\n\r\n", 3), 2);

    const char *b = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    size_t skip = rqh_skip_empty_lines(b, strlen(b)), scan = 0;
    ck_assert_uint_eq(skip, 4);
    ck_assert_uint_eq(rqh_head_end(b + skip, strlen(b) - skip, &scan), 18);
}
END_TEST

START_TEST(test_has_request_line)
{
    ck_assert(!rqh_has_request_line("", 0));
    ck_assert(!rqh_has_request_line("GET /very/long", 14));
    ck_assert(!rqh_has_request_line("GET / HTTP/1.1\r", 15));
    ck_assert(rqh_has_request_line("GET / HTTP/1.1\r\n", 16));
    ck_assert(rqh_has_request_line("GET / HTTP/1.1\n", 15));
    /* the length is respected */
    ck_assert(!rqh_has_request_line("GET / HTTP/1.1\r\n", 15));
}
END_TEST

/* ---- rqh_parse: the request line ---------------------------------------------- */

START_TEST(test_zero_head_refuses)
{
    rqh_head z;
    memset(&z, 0, sizeof(z));
    ck_assert(z.code != AR_OK);
    ck_assert(!z.keep_alive && !z.content_length_ok);
}
END_TEST

START_TEST(test_request_line_ok)
{
    PARSE("GET /a/b?c=d HTTP/1.1\r\n\r\n");
    expect_code(AR_OK, "plain");
    expect_field(P.head.method, P.head.method_len, "GET", "method");
    expect_field(P.head.target, P.head.target_len, "/a/b?c=d", "target");
    ck_assert_int_eq(P.head.minor, 1);
    ck_assert_uint_eq(P.head.nheaders, 0);
    ck_assert(P.head.keep_alive);

    PARSE("M-SEARCH * HTTP/1.0\r\n\r\n");
    expect_code(AR_OK, "token method, asterisk form");
    expect_field(P.head.method, P.head.method_len, "M-SEARCH", "method");
    expect_field(P.head.target, P.head.target_len, "*", "target");
    ck_assert_int_eq(P.head.minor, 0);
    ck_assert(!P.head.keep_alive);

    PARSE("!#$%&'*+-.^_`|~09az "
          "http://h:1/%7e\x80\xff HTTP/1.1\r\n\r\n");
    expect_code(AR_OK, "every tchar class; obs-text in the target");
    ck_assert_uint_eq(P.head.method_len, 19);
    ck_assert_uint_eq(P.head.target_len, 16);

    PARSE("get / HTTP/1.1\r\n\r\n");
    expect_code(AR_OK, "methods are case-sensitive tokens: lower case is a token");
    expect_field(P.head.method, P.head.method_len, "get", "method");
}
END_TEST

START_TEST(test_request_line_refused)
{
    static const struct {
        const char *line; /* without CRLF */
        ag_reason want;
    } rows[] = {
        {"", AR_BAD_REQUEST_LINE},
        {"GET", AR_BAD_REQUEST_LINE},
        {"GET /", AR_BAD_REQUEST_LINE},
        {"GET / ", AR_BAD_REQUEST_LINE},
        {" GET / HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET  / HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET /  HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/1.1 ", AR_BAD_REQUEST_LINE},
        {"GET /a b HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET\t/ HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET /\t HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET /\x01 HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET /\x1f HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET /\x7f HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"G(T / HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"G@T / HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"G\xc3\x89T / HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET / http/1.1", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/1", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/11", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/1.10", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/1.x", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/x.1", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/1,1", AR_BAD_REQUEST_LINE},
        {"GET / HTTPS/1.1", AR_BAD_REQUEST_LINE},
        {"GET / FTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/1.1\r", AR_BAD_REQUEST_LINE}, /* a bare CR */
        {"GET /\r HTTP/1.1", AR_BAD_REQUEST_LINE},
        {"GET / HTTP/2.0", AR_HTTP_VERSION},
        {"GET / HTTP/1.2", AR_HTTP_VERSION},
        {"GET / HTTP/1.9", AR_HTTP_VERSION},
        {"GET / HTTP/0.9", AR_HTTP_VERSION},
        {"GET / HTTP/3.0", AR_HTTP_VERSION},
        {"GET / HTTP/2.1", AR_HTTP_VERSION},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char b[128];
        int n = snprintf(b, sizeof(b), "%s\r\nHost: gw\r\n\r\n", rows[i].line);
        parse_n(b, (size_t)n, CAP);
        char what[96];
        snprintf(what, sizeof(what), "row %zu '%s'", i, rows[i].line);
        expect_code(rows[i].want, what);
        /* nothing of a refused request line is handed out */
        ck_assert_msg(P.head.method == NULL && P.head.target == NULL && P.head.nheaders == 0,
                      "%s: fields set", what);
        ck_assert(!P.head.keep_alive);
    }
    /* a NUL in the method, the target or the version */
    PARSE("GE\0T / HTTP/1.1\r\n\r\n");
    expect_code(AR_BAD_REQUEST_LINE, "NUL in the method");
    PARSE("GET /a\0b HTTP/1.1\r\n\r\n");
    expect_code(AR_BAD_REQUEST_LINE, "NUL in the target");
    PARSE("GET / HTTP/1.1\0\r\n\r\n");
    expect_code(AR_BAD_REQUEST_LINE, "NUL after the version");
    /* a request line ended by a bare LF */
    PARSE("GET / HTTP/1.1\nHost: gw\r\n\r\n");
    expect_code(AR_BAD_REQUEST_LINE, "bare LF after the request line");
    PARSE("\r\n\r\n");
    expect_code(AR_BAD_REQUEST_LINE, "an empty request line");
    PARSE("\nGET / HTTP/1.1\r\n\r\n");
    expect_code(AR_BAD_REQUEST_LINE, "a leading bare LF");
}
END_TEST

/* ---- rqh_parse: header lines -------------------------------------------------- */

START_TEST(test_headers_in_place)
{
    PARSE("GET / HTTP/1.1\r\n"
          "Host: gw\r\n"
          "X-Plain:v\r\n"
          "X-Ows: \t a b \t \r\n"
          "X-Empty:\r\n"
          "X-Blank:   \r\n"
          "X-Colon: a:b: c\r\n"
          "X-Obs: \x80\xff\r\n"
          "\r\n");
    expect_code(AR_OK, "headers");
    ck_assert_uint_eq(P.head.nheaders, 7);
    expect_header(0, "Host", "gw");
    expect_header(1, "X-Plain", "v");
    expect_header(2, "X-Ows", "a b");
    expect_header(3, "X-Empty", "");
    expect_header(4, "X-Blank", "");
    expect_header(5, "X-Colon", "a:b: c");
    expect_header(6, "X-Obs", "\x80\xff");
    /* the grammar is rqhead's only: a name is not checked for tchars here
     * (admission does that for both listeners) */
    PARSE("GET / HTTP/1.1\r\nX(y): 1\r\n\r\n");
    expect_code(AR_OK, "name characters are admission's");
    expect_header(0, "X(y)", "1");
}
END_TEST

START_TEST(test_header_lines_refused)
{
    PARSE("GET / HTTP/1.1\r\nHost gw\r\n\r\n");
    expect_code(AR_BAD_HEADER_NAME, "no colon");
    PARSE("GET / HTTP/1.1\r\n: gw\r\n\r\n");
    expect_code(AR_BAD_HEADER_NAME, "empty name");
    PARSE("GET / HTTP/1.1\r\nHost : gw\r\n\r\n");
    expect_code(AR_BAD_HEADER_NAME, "space before the colon");
    PARSE("GET / HTTP/1.1\r\nHost\t: gw\r\n\r\n");
    expect_code(AR_BAD_HEADER_NAME, "tab before the colon");
    PARSE("GET / HTTP/1.1\r\nHost: gw\r\n folded\r\n\r\n");
    expect_code(AR_BAD_HEADER_VALUE, "obs-fold with SP");
    PARSE("GET / HTTP/1.1\r\nHost: gw\r\n\tfolded\r\n\r\n");
    expect_code(AR_BAD_HEADER_VALUE, "obs-fold with HTAB");
    PARSE("GET / HTTP/1.1\r\n Host: gw\r\n\r\n");
    expect_code(AR_BAD_HEADER_VALUE, "a first line that starts with a space");
    PARSE("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n");
    expect_code(AR_BAD_HEADER_VALUE, "bare CR in a value");
    PARSE("GET / HTTP/1.1\r\nX: ab\r\r\n\r\n");
    expect_code(AR_BAD_HEADER_VALUE, "CR CR LF");
    PARSE("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n");
    expect_code(AR_BAD_HEADER_VALUE, "NUL in a value");
    PARSE("GET / HTTP/1.1\r\nX\0Y: ab\r\n\r\n");
    expect_code(AR_BAD_HEADER_VALUE, "NUL in a name");
    PARSE("GET / HTTP/1.1\r\nX: ab\nY: c\r\n\r\n");
    expect_code(AR_BAD_HEADER_VALUE, "bare LF line end");
    PARSE("GET / HTTP/1.1\r\nX: ab\r\n\n");
    expect_code(AR_BAD_HEADER_VALUE, "bare LF empty line");
    /* a buffer that is not a whole head (rqh_head_end was not asked) */
    PARSE("GET / HTTP/1.1\r\nX: ab\r\n");
    ck_assert(P.head.code != AR_OK);
    PARSE("GET / HTTP/1.1\r\n");
    ck_assert(P.head.code != AR_OK);
    PARSE("GET / HTTP/1.1\r\nX: ab");
    ck_assert(P.head.code != AR_OK);
}
END_TEST

START_TEST(test_header_cap)
{
    PARSE_CAP("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 3);
    expect_code(AR_OK, "at the cap");
    ck_assert_uint_eq(P.head.nheaders, 3);
    expect_header(2, "C", "3");
    PARSE_CAP("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 3);
    expect_code(AR_LIMIT_HEADERS, "one over the cap");
    ck_assert_uint_le(P.head.nheaders, 3);
    PARSE_CAP("GET / HTTP/1.1\r\n\r\n", 0);
    expect_code(AR_OK, "no header, cap 0");
    PARSE_CAP("GET / HTTP/1.1\r\nA: 1\r\n\r\n", 0);
    expect_code(AR_LIMIT_HEADERS, "one header, cap 0");
}
END_TEST

/* ---- rqh_parse: what the listener reads off a head ---------------------------- */

START_TEST(test_content_length)
{
    PARSE("POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n");
    expect_code(AR_OK, "one");
    ck_assert_int_eq(P.head.n_content_length, 1);
    ck_assert(P.head.content_length_ok);
    ck_assert_uint_eq(P.head.content_length, 42);

    PARSE("POST / HTTP/1.1\r\ncontent-LENGTH:0\r\n\r\n");
    ck_assert(P.head.content_length_ok);
    ck_assert_uint_eq(P.head.content_length, 0);

    PARSE("POST / HTTP/1.1\r\nContent-Length: 007 \r\n\r\n");
    ck_assert(P.head.content_length_ok);
    ck_assert_uint_eq(P.head.content_length, 7);

    PARSE("POST / HTTP/1.1\r\nContent-Length: 18446744073709551609\r\n\r\n");
    ck_assert(P.head.content_length_ok);
    ck_assert_uint_eq(P.head.content_length, 18446744073709551609ull);

    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: x\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5,5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse_n(bad[i], strlen(bad[i]), CAP);
        ck_assert_msg(P.head.code == AR_OK, "bad %zu: the parser leaves framing to admission", i);
        ck_assert_msg(P.head.n_content_length >= 1, "bad %zu: not counted", i);
        ck_assert_msg(!P.head.content_length_ok, "bad %zu: taken as a length", i);
    }
    PARSE("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    ck_assert_int_eq(P.head.n_content_length, 2);

    PARSE("GET / HTTP/1.1\r\nContent-Lengthy: 5\r\nX-Content-Length: 5\r\n\r\n");
    ck_assert_int_eq(P.head.n_content_length, 0);
    ck_assert(!P.head.content_length_ok);
}
END_TEST

START_TEST(test_transfer_encoding)
{
    PARSE("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    ck_assert(P.head.has_te);
    PARSE("POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n");
    ck_assert(P.head.has_te);
    PARSE("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n");
    ck_assert(P.head.has_te);
    PARSE("POST / HTTP/1.1\r\nTE: trailers\r\n\r\n");
    ck_assert(!P.head.has_te);
}
END_TEST

START_TEST(test_keep_alive)
{
    static const struct {
        const char *head;
        bool keep;
    } rows[] = {
        {"GET / HTTP/1.1\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: te,close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: , ,close , \r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: x\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: cl ose\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nX-Connection: close\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: te, keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\t,\tx\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        parse_n(rows[i].head, strlen(rows[i].head), CAP);
        ck_assert_msg(P.head.code == AR_OK, "row %zu: %s", i, reason_name(P.head.code));
        ck_assert_msg(P.head.keep_alive == rows[i].keep, "row %zu: keep_alive %d", i,
                      P.head.keep_alive);
    }
}
END_TEST

START_TEST(test_expect)
{
    PARSE("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    ck_assert(P.head.expect_continue);
    PARSE("POST / HTTP/1.1\r\nexpect:100-Continue \r\n\r\n");
    ck_assert(P.head.expect_continue);
    PARSE("POST / HTTP/1.1\r\nExpect: 100-continuex\r\n\r\n");
    ck_assert(!P.head.expect_continue);
    PARSE("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n");
    ck_assert(!P.head.expect_continue);
    PARSE("POST / HTTP/1.1\r\nX-Expect: 100-continue\r\n\r\n");
    ck_assert(!P.head.expect_continue);
}
END_TEST

static void teardown(void)
{
    free(P.buf);
    memset(&P, 0, sizeof(P));
}

static Suite *make_suite(void)
{
    Suite *s = suite_create("rqhead");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_head_end_whole);
    tcase_add_test(tc, test_head_end_byte_by_byte);
    tcase_add_test(tc, test_head_end_every_split);
    tcase_add_test(tc, test_head_end_long_head_pieces);
    tcase_add_test(tc, test_skip_empty_lines);
    tcase_add_test(tc, test_has_request_line);
    tcase_add_test(tc, test_zero_head_refuses);
    tcase_add_test(tc, test_request_line_ok);
    tcase_add_test(tc, test_request_line_refused);
    tcase_add_test(tc, test_headers_in_place);
    tcase_add_test(tc, test_header_lines_refused);
    tcase_add_test(tc, test_header_cap);
    tcase_add_test(tc, test_content_length);
    tcase_add_test(tc, test_transfer_encoding);
    tcase_add_test(tc, test_keep_alive);
    tcase_add_test(tc, test_expect);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
