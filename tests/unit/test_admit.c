/* Request-head admission (src/admit.h): every refusal reason, the order in
 * which they are checked, and the framing an admitted head declares. Heads are
 * written as "Name: value" lines split at the first ':' with leading blanks
 * dropped from the value, the way the front end hands them over. */
#include <stdio.h>
#include <string.h>

#include "admit.h"
#include "testutil.h"

#define MAXH 1200

typedef struct head {
    gate_header h[MAXH];
    size_t n;
} head;

static void head_add(head *hd, const char *line)
{
    const char *colon = strchr(line, ':');
    ck_assert_ptr_nonnull(colon);
    ck_assert_uint_lt(hd->n, MAXH);
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    hd->h[hd->n++] = (gate_header){line, (size_t)(colon - line), v, strlen(v)};
}

static cfg_limits default_limits(void)
{
    return (cfg_limits){.max_header_bytes = 16384, .max_headers = 100, .max_body_bytes = 0};
}

/* NULL-terminated list of lines. */
static adm_result check_lines(adm_version ver, const cfg_limits *lim, const char *const *lines)
{
    static head hd;
    hd.n = 0;
    for (size_t i = 0; lines[i]; i++)
        head_add(&hd, lines[i]);
    adm_request r = {.method = "POST", .version = ver, .headers = hd.h, .nheaders = hd.n};
    return adm_check(&r, lim);
}

static void expect_refused(adm_result r, int status, const char *reason, const char *what)
{
    ck_assert_msg(r.outcome == ADM_REFUSED, "%s: admitted, want %d %s", what, status, reason);
    ck_assert_msg(r.status == status, "%s: status %d, want %d", what, r.status, status);
    ck_assert_msg(r.reason && strcmp(r.reason, reason) == 0, "%s: reason %s, want %s", what,
                  r.reason ? r.reason : "(null)", reason);
    const char *want_error = status == 400   ? "bad_request"
                             : status == 413 ? "payload_too_large"
                             : status == 431 ? "request_header_fields_too_large"
                                             : "not_implemented";
    ck_assert_str_eq(r.error, want_error);
    ck_assert_msg(r.close, "%s: a refusal must close", what);
}

static void expect_admitted(adm_result r, adm_framing f, uint64_t len, const char *what)
{
    ck_assert_msg(r.outcome == ADM_ADMITTED, "%s: refused %d %s", what, r.status,
                  r.reason ? r.reason : "");
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(r.framing == f, "%s: framing %d, want %d", what, (int)r.framing, (int)f);
    ck_assert_msg(r.body_length == len, "%s: length %llu", what, (unsigned long long)r.body_length);
}

#define LINES(...) ((const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_zero_result_is_a_refusal)
{
    adm_result z = {0};
    ck_assert(z.outcome == ADM_REFUSED);
    ck_assert(z.outcome != ADM_ADMITTED);
}
END_TEST

START_TEST(test_plain_heads_admitted)
{
    cfg_limits lim = default_limits();
    expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw")), ADM_BODY_NONE, 0, "get");
    expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "Content-Length: 5")),
                    ADM_BODY_LENGTH, 5, "cl");
    expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "content-length: 0")),
                    ADM_BODY_LENGTH, 0, "cl 0");
    expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "Transfer-Encoding: chunked")),
                    ADM_BODY_CHUNKED, 0, "chunked");
    expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "TRANSFER-ENCODING: CHUNKED")),
                    ADM_BODY_CHUNKED, 0, "CHUNKED");
    /* HTTP/1.0 needs no Host */
    expect_admitted(check_lines(ADM_HTTP_10, &lim, LINES("X-A: b")), ADM_BODY_NONE, 0, "1.0");
    adm_request none = {.method = "GET", .version = ADM_HTTP_10};
    expect_admitted(adm_check(&none, &lim), ADM_BODY_NONE, 0, "1.0 no headers");
}
END_TEST

START_TEST(test_header_names)
{
    cfg_limits lim = default_limits();
    static const char *const bad[] = {
        "Content Length: 5", "Content-Length : 5", "X-A\x80z: 1", "X-A\tb: 1",
        "X(A): 1",           ": empty name",       "X@Y: 1",      "X\"Y: 1"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++)
        expect_refused(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", bad[i])), 400,
                       "bad_header_name", bad[i]);
    /* a name with ':' in it (possible only through explain --batch) */
    gate_header h[] = {{"Host", 4, "gw", 2}, {"X:Y", 3, "v", 1}};
    adm_request r = {.method = "GET", .headers = h, .nheaders = 2};
    expect_refused(adm_check(&r, &lim), 400, "bad_header_name", "colon in name");
    /* the name check comes before the framing checks */
    expect_refused(check_lines(ADM_HTTP_11, &lim,
                               LINES("Host: gw", "Transfer-Encoding: chunked", "Content-Length: 5",
                                     "Bad Name: 1")),
                   400, "bad_header_name", "name before framing");
    /* and before the value check */
    expect_refused(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "X-V: a\x01", "X Y: 1")), 400,
                   "bad_header_name", "name before value");
}
END_TEST

START_TEST(test_header_values)
{
    cfg_limits lim = default_limits();
    static const char *const bad[] = {"X-T: a\rTransfer-Encoding: chunked", "X-T: a\x01z",
                                      "X-T: a\x7fz", "X-T: a\x1bz", "X-T: a\nb"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++)
        expect_refused(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", bad[i])), 400,
                       "bad_header_value", bad[i]);
    /* HTAB and obs-text are fine, and so is an empty value */
    expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "X-T: caf\xe9\tok", "X-E:")),
                    ADM_BODY_NONE, 0, "htab obs-text");
    /* a NULL value is an empty value */
    gate_header h[] = {{"Host", 4, "gw", 2}, {"X-E", 3, NULL, 0}};
    adm_request r = {.method = "GET", .headers = h, .nheaders = 2};
    expect_admitted(adm_check(&r, &lim), ADM_BODY_NONE, 0, "null value");
    /* value before Host */
    expect_refused(check_lines(ADM_HTTP_11, &lim, LINES("X-T: \x01")), 400, "bad_header_value",
                   "value before host");
}
END_TEST

START_TEST(test_host)
{
    cfg_limits lim = default_limits();
    static const char *const bad[] = {"a/b",    "u@evil", "",     "gw:80x", "gw:123456", "[::1",
                                      "a b",    "gw?x",   "gw#x", "\\evil", ":80",       "[]",
                                      "[::1]x", "[::g]",  "gw:",  "[::1]:", "gw:8080:1"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        ck_assert_msg(!adm_host_ok(bad[i], strlen(bad[i])), "host '%s' accepted", bad[i]);
        char line[64];
        snprintf(line, sizeof(line), "Host: %s", bad[i]);
        expect_refused(check_lines(ADM_HTTP_11, &lim, LINES(line)), 400, "bad_host", line);
        /* a bad Host is refused on HTTP/1.0 too */
        expect_refused(check_lines(ADM_HTTP_10, &lim, LINES(line)), 400, "bad_host", line);
    }
    static const char *const good[] = {"gw",
                                       "gw:8080",
                                       "127.0.0.1",
                                       "[::1]:443",
                                       "[::1]",
                                       "xn--caf-dma.example",
                                       "a:1",
                                       "a:65535",
                                       "a:99999",
                                       "[fe80::1.2.3.4]",
                                       "A-b_c~d!$&'()*+,;=%20"};
    for (size_t i = 0; i < AG_ARRAY_LEN(good); i++) {
        ck_assert_msg(adm_host_ok(good[i], strlen(good[i])), "host '%s' refused", good[i]);
        char line[64];
        snprintf(line, sizeof(line), "Host: %s", good[i]);
        expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES(line)), ADM_BODY_NONE, 0, line);
    }
    /* the port has at most five digits */
    ck_assert(!adm_host_ok("a:123456", 8));
    /* missing on 1.1, repeated on either */
    expect_refused(check_lines(ADM_HTTP_11, &lim, LINES("X-A: 1")), 400, "bad_host", "missing");
    expect_refused(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "host: gw")), 400, "bad_host",
                   "twice");
    expect_refused(check_lines(ADM_HTTP_10, &lim, LINES("Host: gw", "Host: other")), 400,
                   "bad_host", "twice 1.0");
    /* Host comes before framing */
    expect_refused(
        check_lines(ADM_HTTP_11, &lim, LINES("Transfer-Encoding: chunked", "Content-Length: 5")),
        400, "bad_host", "host before framing");
}
END_TEST

START_TEST(test_te_and_cl)
{
    cfg_limits lim = default_limits();
    expect_refused(
        check_lines(ADM_HTTP_11, &lim,
                    LINES("Host: gw", "Transfer-Encoding: chunked", "Content-Length: 5")),
        400, "framing_te_and_cl", "te+cl");
    expect_refused(
        check_lines(ADM_HTTP_11, &lim,
                    LINES("Host: gw", "Content-Length: 6", "Transfer-Encoding: chunked")),
        400, "framing_te_and_cl", "cl+te");
    /* before the TE value and the CL value are looked at */
    expect_refused(check_lines(ADM_HTTP_11, &lim,
                               LINES("Host: gw", "Transfer-Encoding: gzip", "Content-Length: x")),
                   400, "framing_te_and_cl", "odd values");
    expect_refused(
        check_lines(ADM_HTTP_10, &lim, LINES("Transfer-Encoding: chunked", "Content-Length: 5")),
        400, "framing_te_and_cl", "1.0 te+cl");
}
END_TEST

typedef struct te_row {
    const char *v;
    int verdict; /* adm_te_verdict */
    int status;  /* admission on HTTP/1.1; 0 = admitted chunked */
} te_row;

START_TEST(test_transfer_encoding)
{
    static const te_row rows[] = {
        {"chunked", 0, 0},
        {"CHUNKED", 0, 0},
        {"Chunked", 0, 0},
        {"chunked ", 0, 400}, /* only the exact value is read as chunked */
        {"\tchunked", 0, 400},
        {"xchunked", 400, 400},
        {"chunkedx", 400, 400},
        {"chunked, identity", 400, 400},
        {"chunked, chunked", 400, 400},
        {"chunked,chunked", 400, 400},
        {"gzip", 400, 400},
        {"identity", 400, 400},
        {"chunked;q=1", 400, 400},
        {",", 400, 400},
        {"", 400, 400},
        {" ", 400, 400},
        {"chunked,", 400, 400},
        {",chunked", 400, 400},
        {"gzip, chunked", 501, 501},
        {"deflate,chunked", 501, 501},
        {"gzip ,\tchunked", 501, 501},
        {"gzip, deflate, chunked", 501, 501},
        {"gzip, , chunked", 400, 400},
        {"chunked, gzip, chunked", 400, 400},
    };
    cfg_limits lim = default_limits();
    for (size_t i = 0; i < AG_ARRAY_LEN(rows); i++) {
        const te_row *t = &rows[i];
        ck_assert_msg(adm_te_verdict(t->v, strlen(t->v)) == t->verdict, "te '%s': verdict %d", t->v,
                      adm_te_verdict(t->v, strlen(t->v)));
        gate_header h[] = {{"Host", 4, "gw", 2}, {"Transfer-Encoding", 17, t->v, strlen(t->v)}};
        adm_request r = {.method = "POST", .version = ADM_HTTP_11, .headers = h, .nheaders = 2};
        adm_result res = adm_check(&r, &lim);
        if (t->status == 0)
            expect_admitted(res, ADM_BODY_CHUNKED, 0, t->v);
        else
            expect_refused(res, t->status, "framing_bad_te", t->v);
        /* HTTP/1.0: always refused */
        r.version = ADM_HTTP_10;
        expect_refused(adm_check(&r, &lim), 400, "framing_bad_te", t->v);
    }
    /* two Transfer-Encoding headers, even both plain chunked */
    expect_refused(
        check_lines(ADM_HTTP_11, &lim,
                    LINES("Host: gw", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")),
        400, "framing_bad_te", "two headers");
    /* the verdict reads only the given length */
    ck_assert_int_eq(adm_te_verdict("chunked, gzip", 7), 0);
}
END_TEST

typedef struct cl_row {
    const char *v;
    int ok;
    uint64_t n;
} cl_row;

START_TEST(test_content_length)
{
    static const cl_row rows[] = {
        {"0", 1, 0},
        {"5", 1, 5},
        {"007", 1, 7},
        {"18446744073709551609", 1, 18446744073709551609ull},
        {"18446744073709551610", 0, 0}, /* the guard is conservative near the top */
        {"18446744073709551615", 0, 0},
        {"99999999999999999999999", 0, 0},
        {"", 0, 0},
        {"+5", 0, 0},
        {"-5", 0, 0},
        {"5 ", 0, 0},
        {" 5", 0, 0},
        {"5 5", 0, 0},
        {"5, 5", 0, 0},
        {"0x5", 0, 0},
        {"5a", 0, 0},
        {"1e3", 0, 0},
    };
    cfg_limits lim = default_limits();
    for (size_t i = 0; i < AG_ARRAY_LEN(rows); i++) {
        const cl_row *c = &rows[i];
        uint64_t n = 42;
        int rc = adm_content_length(c->v, strlen(c->v), &n);
        ck_assert_msg((rc == 0) == (c->ok == 1), "cl '%s': rc %d", c->v, rc);
        gate_header h[] = {{"Host", 4, "gw", 2}, {"Content-Length", 14, c->v, strlen(c->v)}};
        adm_request r = {.method = "POST", .version = ADM_HTTP_11, .headers = h, .nheaders = 2};
        if (c->ok) {
            ck_assert_uint_eq(n, c->n);
            expect_admitted(adm_check(&r, &lim), ADM_BODY_LENGTH, c->n, c->v);
        } else {
            ck_assert_uint_eq(n, 42); /* untouched on failure */
            expect_refused(adm_check(&r, &lim), 400, "framing_bad_content_length", c->v);
        }
    }
    /* repeated, equal or not */
    expect_refused(
        check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "Content-Length: 5", "Content-Length: 5")),
        400, "framing_bad_content_length", "dup equal");
    expect_refused(check_lines(ADM_HTTP_11, &lim,
                               LINES("Host: gw", "Content-Length: 5", "content-length: 50")),
                   400, "framing_bad_content_length", "dup differ");
    /* HTTP/1.0 with a length is fine */
    expect_admitted(check_lines(ADM_HTTP_10, &lim, LINES("Content-Length: 3")), ADM_BODY_LENGTH, 3,
                    "1.0 cl");
}
END_TEST

START_TEST(test_header_limits)
{
    static head hd;
    cfg_limits lim = default_limits();
    lim.max_headers = 5;
    hd.n = 0;
    head_add(&hd, "Host: gw");
    for (int i = 0; i < 4; i++)
        head_add(&hd, "X-A: 1");
    adm_request r = {.method = "GET", .version = ADM_HTTP_11, .headers = hd.h, .nheaders = hd.n};
    expect_admitted(adm_check(&r, &lim), ADM_BODY_NONE, 0, "at max_headers");
    head_add(&hd, "X-A: 1");
    r.nheaders = hd.n;
    expect_refused(adm_check(&r, &lim), 431, "limit_headers", "one over max_headers");
    /* the count comes before the grammar: a bad name over the limit is a 431 */
    hd.h[hd.n - 1] = (gate_header){"Bad Name", 8, "1", 1};
    expect_refused(adm_check(&r, &lim), 431, "limit_headers", "count before grammar");

    /* the hard cap holds whatever max_headers says */
    lim.max_headers = 100000;
    hd.n = 0;
    head_add(&hd, "Host: gw");
    while (hd.n < ADM_MAX_HEADERS_HARD)
        head_add(&hd, "X: 1");
    r.nheaders = hd.n;
    expect_admitted(adm_check(&r, &lim), ADM_BODY_NONE, 0, "at the hard cap");
    head_add(&hd, "X: 1");
    r.nheaders = hd.n;
    expect_refused(adm_check(&r, &lim), 431, "limit_headers", "over the hard cap");

    /* bytes: name + value + 4 for each header */
    lim = default_limits();
    lim.max_header_bytes = 4 + 2 + 4 + 5 + 10 + 4; /* Host: gw and X-Pad: 10 bytes */
    gate_header h[] = {{"Host", 4, "gw", 2}, {"X-Pad", 5, "0123456789", 10}};
    adm_request rb = {.method = "GET", .version = ADM_HTTP_11, .headers = h, .nheaders = 2};
    expect_admitted(adm_check(&rb, &lim), ADM_BODY_NONE, 0, "at max_header_bytes");
    lim.max_header_bytes--;
    expect_refused(adm_check(&rb, &lim), 431, "limit_headers", "one byte over");
    /* bytes before grammar too */
    h[1].value = "012345678\x01";
    expect_refused(adm_check(&rb, &lim), 431, "limit_headers", "bytes before grammar");
    lim.max_header_bytes++;
    expect_refused(adm_check(&rb, &lim), 400, "bad_header_value", "then the grammar");
}
END_TEST

START_TEST(test_body_limit)
{
    cfg_limits lim = default_limits();
    lim.max_body_bytes = 10;
    expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "Content-Length: 10")),
                    ADM_BODY_LENGTH, 10, "at limit");
    expect_refused(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "Content-Length: 11")), 413,
                   "limit_body", "over");
    /* a chunked body is counted as it arrives, not here */
    expect_admitted(check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "Transfer-Encoding: chunked")),
                    ADM_BODY_CHUNKED, 0, "chunked under a limit");
    /* a malformed length is a framing error, not a size one */
    expect_refused(
        check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "Content-Length: 99999999999999999999")),
        400, "framing_bad_content_length", "overflow with a limit");
    /* 0 = unlimited */
    lim.max_body_bytes = 0;
    expect_admitted(
        check_lines(ADM_HTTP_11, &lim, LINES("Host: gw", "Content-Length: 18446744073709551609")),
        ADM_BODY_LENGTH, 18446744073709551609ull, "unlimited");
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("admit");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_zero_result_is_a_refusal);
    tcase_add_test(tc, test_plain_heads_admitted);
    tcase_add_test(tc, test_header_names);
    tcase_add_test(tc, test_header_values);
    tcase_add_test(tc, test_host);
    tcase_add_test(tc, test_te_and_cl);
    tcase_add_test(tc, test_transfer_encoding);
    tcase_add_test(tc, test_content_length);
    tcase_add_test(tc, test_header_limits);
    tcase_add_test(tc, test_body_limit);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
