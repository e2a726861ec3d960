/* Table tests for the HTTP grammar helpers: Authorization bearer grammar
 * (docs/security.md case 22-23, docs/semantics.md section 5), header name
 * classification (cases 52, 54, 58), request ids and methods (case 39). */
#include <stdio.h>
#include <string.h>

#include "httpx.h"
#include "testutil.h"

#define TOK "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln"

typedef struct brow {
    const char *v;
    const char *tok; /* NULL: rejected */
} brow;

static void run_brows(const char *label, const brow *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *t = (const char *)1, *why = (const char *)1;
        size_t tl = 99;
        size_t len = strlen(rows[i].v);
        int rc = hx_parse_bearer(rows[i].v, len, &t, &tl, &why);
        if (rows[i].tok) {
            ck_assert_msg(rc == 0, "%s row %zu \"%s\" rejected", label, i, rows[i].v);
            ck_assert_uint_eq(tl, strlen(rows[i].tok));
            ck_assert_int_eq(memcmp(t, rows[i].tok, tl), 0);
            /* a view into the value, not a copy */
            ck_assert(t >= rows[i].v && t + tl <= rows[i].v + len);
            ck_assert_ptr_null(why);
        } else {
            ck_assert_msg(rc == -1, "%s row %zu \"%s\" accepted", label, i, rows[i].v);
            ck_assert_str_eq(why, "auth_header_invalid");
            ck_assert_ptr_null(t);
            ck_assert_uint_eq(tl, 0);
        }
    }
}

START_TEST(test_B22_authorization_grammar)
{
    static const brow rows[] = {
        {"Bearer " TOK, TOK},
        {"bearer " TOK, TOK},
        {"BEARER " TOK, TOK},
        {"Bearer   " TOK, TOK},
        {"Bearer " TOK " ", TOK},
        {"Bearer\t" TOK, NULL},
        {"Bearer \t" TOK, NULL},
        {"Bearer  \t " TOK, NULL},
        {"Bearer", NULL},
        {"Bearer ", NULL},
        {"Bearer a b", NULL},
        {"Token " TOK, NULL},
        {"Basic dXNlcjpw", NULL},
        {TOK, NULL},
        {"", NULL},
    };
    run_brows("B22", rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

START_TEST(test_B23_two_credentials_in_one_header)
{
    /* The comma-joined form that some stacks build from two headers fails
     * the grammar; a comma without a space is one word, which the grammar
     * passes whole and the token parser then rejects (still 401, never a
     * choice between two credentials). */
    static const brow rows[] = {
        {"Bearer " TOK ", Bearer other.token.sig", NULL},
        {"Bearer " TOK " Bearer other", NULL},
        {"Bearer " TOK ",other", TOK ",other"},
    };
    run_brows("B23", rows, sizeof(rows) / sizeof(rows[0]));
}
END_TEST

/* docs/semantics.md section 5: the FastAPI-derived choices spelled out. */
START_TEST(test_B22_libraries_4_1_rows)
{
    static const brow rows[] = {
        {"Bearer whatisthis", "whatisthis"}, /* grammar ok; the token check fails it */
        {"token " TOK, NULL},
        /* FastAPI would strip the TAB; @propelauth/node answers 401, and
         * the semantics allow spaces only, so the stricter answer wins. */
        {"Bearer \t " TOK, NULL},
        {" \tBearer " TOK "\t ", TOK}, /* OWS around the value */
        {"Bearer  " TOK "  ", TOK},
        {"Bearer " TOK "\r", NULL},
        {"Bearer " TOK "\r\nX-User: x", NULL},
        {"Bearer " TOK "\x0b", NULL},
        {"Bearer " TOK "\x7f", NULL},
        {"Bearerx " TOK, NULL},
        {"Bearer: " TOK, NULL},
        {"Bear " TOK, NULL},
        {"Bearer\xa0" TOK, NULL},
        {"Bearer x", "x"},
    };
    run_brows("4.1", rows, sizeof(rows) / sizeof(rows[0]));
    /* NUL inside the given length is a control byte, not an end */
    const char v[] = "Bearer ab\0cd";
    const char *t, *why;
    size_t tl;
    ck_assert_int_eq(hx_parse_bearer(v, sizeof(v) - 1, &t, &tl, &why), -1);
    ck_assert_int_eq(hx_parse_bearer(NULL, 0, &t, &tl, &why), -1);
    ck_assert_str_eq(why, "auth_header_invalid");
}
END_TEST

START_TEST(test_F52_header_name_validity)
{
    static const char *const ok[] = {"X-User", "x_org", "Content-Type", "a", "!#$%&'*+-.^_`|~09Az"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(hx_valid_header_name(ok[i], strlen(ok[i])), "%s invalid", ok[i]);
    static const char *const bad[] = {"X-User ",    " X-User", "X User", "X-User\t",  "X:User",
                                      "X-\xc3\xa9", "X\x01",   "X\x7f",  "(x)",       "a/b",
                                      "a@b",        "a\"b",    "",       "X-User\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!hx_valid_header_name(bad[i], strlen(bad[i])), "%s valid", bad[i]);
    ck_assert(!hx_valid_header_name("a\0b", 3));
    ck_assert(!hx_valid_header_name(NULL, 0));
}
END_TEST

START_TEST(test_F58_header_value_validity)
{
    static const char *const ok[] = {"plain",   "",         "a\tb",
                                     "caf\xe9", " spaced ", "{\"user_id\":\"x\"}"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(hx_valid_header_value(ok[i], strlen(ok[i])), "\"%s\" invalid", ok[i]);
    static const char *const bad[] = {
        "a\rTransfer-Encoding: chunked", "a\nb", "a\x0b", "\x7f", "a\x1f", "\r"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!hx_valid_header_value(bad[i], strlen(bad[i])), "row %zu valid", i);
    ck_assert(!hx_valid_header_value("a\0b", 3));
    ck_assert(hx_valid_header_value(NULL, 0));
}
END_TEST

START_TEST(test_request_id)
{
    char max[129];
    memset(max, 'a', 128);
    max[128] = '\0';
    ck_assert(hx_valid_request_id(max, 128));
    char over[130];
    memset(over, 'a', 129);
    over[129] = '\0';
    ck_assert(!hx_valid_request_id(over, 129));
    ck_assert(hx_valid_request_id("req-1.2_3:4", 11));
    ck_assert(hx_valid_request_id("A", 1));
    ck_assert(!hx_valid_request_id("", 0));
    ck_assert(!hx_valid_request_id("a b", 3));
    ck_assert(!hx_valid_request_id("a\r\nb", 4));
    ck_assert(!hx_valid_request_id("a/b", 3));
    ck_assert(!hx_valid_request_id("a\"b", 3));
    ck_assert(!hx_valid_request_id("a\0b", 3));
    ck_assert(!hx_valid_request_id(NULL, 5));
}
END_TEST

START_TEST(test_C39_methods)
{
    ck_assert_uint_eq(hx_method_bit("GET"), HX_M_GET);
    ck_assert_uint_eq(hx_method_bit("HEAD"), HX_M_HEAD);
    ck_assert_uint_eq(hx_method_bit("POST"), HX_M_POST);
    ck_assert_uint_eq(hx_method_bit("PUT"), HX_M_PUT);
    ck_assert_uint_eq(hx_method_bit("DELETE"), HX_M_DELETE);
    ck_assert_uint_eq(hx_method_bit("PATCH"), HX_M_PATCH);
    ck_assert_uint_eq(hx_method_bit("OPTIONS"), HX_M_OPTIONS);
    static const char *const bad[] = {"get",   "Get",     "GET\x0b", "GET ", " GET", "FOO",
                                      "TRACE", "CONNECT", "",        "GETX", "GE"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(hx_method_bit(bad[i]) == 0, "\"%s\" accepted", bad[i]);
    ck_assert_uint_eq(hx_method_bit(NULL), 0);
}
END_TEST

START_TEST(test_methods_format)
{
    char out[64];
    ck_assert_uint_eq(hx_methods_format(HX_M_GET | HX_M_HEAD | HX_M_POST, out, sizeof(out)), 15);
    ck_assert_str_eq(out, "GET, HEAD, POST");
    hx_methods_format(HX_M_ALL, out, sizeof(out));
    ck_assert_str_eq(out, "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS");
    ck_assert_uint_eq(hx_methods_format(HX_M_DELETE, out, sizeof(out)), 6);
    ck_assert_str_eq(out, "DELETE");
    ck_assert_uint_eq(hx_methods_format(0, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(hx_methods_format(1u << 20, out, sizeof(out)), 0);
    char small[6];
    ck_assert_uint_eq(hx_methods_format(HX_M_GET | HX_M_POST, small, sizeof(small)), 5);
    ck_assert_str_eq(small, "GET, ");
    ck_assert_uint_eq(hx_methods_format(HX_M_GET, small, 0), 0);
}
END_TEST

/* The value and token scans work 16 and 8 bytes at a time: a forbidden byte must
 * be found at every offset of a word and in the tail, and bytes >= 0x80 are
 * opaque data, never mistaken for controls. */
START_TEST(test_F58_scan_every_offset)
{
    char v[40], hdr[64];
    for (size_t len = 1; len <= sizeof(v); len++) {
        memset(v, 'a', len);
        ck_assert(hx_valid_header_value(v, len));
        for (size_t pos = 0; pos < len; pos++) {
            static const unsigned char bad[] = {0x00, 0x01, 0x0a, 0x0d, 0x1f, 0x7f};
            for (size_t b = 0; b < sizeof(bad); b++) {
                memset(v, 'a', len);
                v[pos] = (char)bad[b];
                ck_assert_msg(!hx_valid_header_value(v, len), "byte %02x at %zu/%zu", bad[b], pos,
                              len);
            }
            memset(v, 'a', len);
            v[pos] = '\t';
            ck_assert(hx_valid_header_value(v, len));
            v[pos] = (char)0xe9;
            ck_assert(hx_valid_header_value(v, len));
            /* The same positions inside a bearer token: space, tab and DEL end it. */
            memset(v, 'a', len);
            v[pos] = (pos % 2) ? '\t' : 0x7f;
            int n = snprintf(hdr, sizeof(hdr), "Bearer %.*s", (int)len, v);
            const char *tok;
            size_t tl;
            const char *why;
            if (pos != 0 && pos != len - 1)
                ck_assert_int_ne(hx_parse_bearer(hdr, (size_t)n, &tok, &tl, &why), 0);
            memset(v, 'a', len);
            v[pos] = (char)0xe9;
            n = snprintf(hdr, sizeof(hdr), "Bearer %.*s", (int)len, v);
            ck_assert_int_eq(hx_parse_bearer(hdr, (size_t)n, &tok, &tl, &why), 0);
            ck_assert_uint_eq(tl, len);
        }
    }
}
END_TEST

/* I83: one function decides upstream response framing for both clients. */
START_TEST(test_I83_response_framing)
{
    static const struct {
        const char *hdrs;
        int rc;
        long long cl;
        bool chunked;
    } rows[] = {
        {"", 0, -1, false},
        {"Content-Type: a/b\r\nContent-Length: 12\r\n", 0, 12, false},
        {"content-length:  0 \r\n", 0, 0, false},
        {"Content-Length: 5\r\nContent-Length: 5\r\n", 0, 5, false},
        {"Transfer-Encoding: chunked\r\n", 0, -1, true},
        {"transfer-encoding: CHUNKED\r\n", 0, -1, true},
        {"Content-Length: 5\r\nContent-Length: 6\r\n", -1, 0, false},
        {"Content-Length: \r\n", -1, 0, false},
        {"Content-Length: 5x\r\n", -1, 0, false},
        {"Content-Length: -1\r\n", -1, 0, false},
        {"Content-Length: 99999999999999999999\r\n", -1, 0, false},
        {"Transfer-Encoding: gzip\r\n", -1, 0, false},
        {"Transfer-Encoding: chunked, chunked\r\n", -1, 0, false},
        {"Transfer-Encoding: gzip, chunked\r\n", -1, 0, false},
        {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", -1, 0, false},
        {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", -1, 0, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int64_t cl = 123;
        bool ch = true;
        int rc = hx_resp_framing(rows[i].hdrs, strlen(rows[i].hdrs), &cl, &ch);
        ck_assert_msg(rc == rows[i].rc, "row %zu: rc %d", i, rc);
        if (rc == 0) {
            ck_assert_msg(cl == rows[i].cl, "row %zu: cl %lld", i, (long long)cl);
            ck_assert_msg(ch == rows[i].chunked, "row %zu: chunked %d", i, ch);
        }
    }
    int64_t cl;
    bool ch;
    ck_assert_int_eq(hx_resp_framing(NULL, 0, &cl, &ch), 0);
    ck_assert_int_eq(cl, -1);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("httpx");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_B22_authorization_grammar);
    tcase_add_test(tc, test_B23_two_credentials_in_one_header);
    tcase_add_test(tc, test_B22_libraries_4_1_rows);
    tcase_add_test(tc, test_F52_header_name_validity);
    tcase_add_test(tc, test_F58_header_value_validity);
    tcase_add_test(tc, test_F58_scan_every_offset);
    tcase_add_test(tc, test_I83_response_framing);
    tcase_add_test(tc, test_request_id);
    tcase_add_test(tc, test_C39_methods);
    tcase_add_test(tc, test_methods_format);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
