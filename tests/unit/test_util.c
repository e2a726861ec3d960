/* Unit tests for src/util.c: the growable buffer, the JSON string writer that
 * keeps identity headers printable ASCII (docs/semantics.md section 4),
 * the ASCII case-insensitive compare used for header names, hex digits, the
 * cache hash and the kernel random source. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "util.h"

/* ---- ag_buf ------------------------------------------------------------------ */

START_TEST(test_buf_empty_and_append)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(ag_buf_append(&b, "", 0), 0);
    /* even an empty append leaves a NUL-terminated string */
    ck_assert_ptr_nonnull(b.p);
    ck_assert_str_eq(b.p, "");
    ck_assert_int_eq(ag_buf_append(&b, "abc", 3), 0);
    ck_assert_int_eq(ag_buf_puts(&b, "def"), 0);
    ck_assert_uint_eq(b.len, 6);
    ck_assert_str_eq(b.p, "abcdef");
    /* binary data, including NUL, is kept by length */
    ck_assert_int_eq(ag_buf_append(&b, "x\0y", 3), 0);
    ck_assert_uint_eq(b.len, 9);
    ck_assert_int_eq(memcmp(b.p, "abcdefx\0y", 10), 0);
    ag_buf_free(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ag_buf_free(&b); /* twice is fine */
}
END_TEST

START_TEST(test_buf_growth)
{
    ag_buf b;
    ag_buf_init(&b);
    /* byte by byte past several doublings; content and terminator always right */
    for (size_t i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);
        ck_assert_int_eq(ag_buf_append(&b, &c, 1), 0);
        ck_assert_uint_eq(b.len, i + 1);
        ck_assert_uint_gt(b.cap, b.len);
        ck_assert_int_eq(b.p[b.len], '\0');
    }
    for (size_t i = 0; i < 10000; i++)
        ck_assert_int_eq(b.p[i], 'a' + (int)(i % 26));
    /* one big append */
    static char big[100000];
    memset(big, 'Z', sizeof(big));
    ck_assert_int_eq(ag_buf_append(&b, big, sizeof(big)), 0);
    ck_assert_uint_eq(b.len, 110000);
    ck_assert_int_eq(b.p[109999], 'Z');
    ck_assert_int_eq(b.p[110000], '\0');

    /* reset keeps the memory */
    size_t cap = b.cap;
    char *p = b.p;
    ag_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(b.p, "");
    ck_assert_ptr_eq(b.p, p);
    ck_assert_uint_eq(b.cap, cap);
    ag_buf_free(&b);

    /* reset on a never-used buffer does not crash */
    ag_buf_reset(&b);
    ck_assert_ptr_null(b.p);
}
END_TEST

START_TEST(test_buf_reserve_overflow)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_puts(&b, "keep"), 0);
    ck_assert_int_eq(ag_buf_reserve(&b, SIZE_MAX), -1);
    ck_assert_int_eq(ag_buf_reserve(&b, SIZE_MAX - 4), -1);
    ck_assert_int_eq(ag_buf_append(&b, "x", SIZE_MAX - 2), -1);
    /* the buffer is unchanged and still usable */
    ck_assert_uint_eq(b.len, 4);
    ck_assert_str_eq(b.p, "keep");
    ck_assert_int_eq(ag_buf_reserve(&b, 1000), 0);
    ck_assert_uint_ge(b.cap, 1005);
    ck_assert_uint_eq(b.len, 4);
    ck_assert_str_eq(b.p, "keep");
    ag_buf_free(&b);
}
END_TEST

START_TEST(test_buf_printf)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_printf(&b, "%s=%d", "n", 42), 0);
    ck_assert_int_eq(ag_buf_printf(&b, ";%c", 'x'), 0);
    ck_assert_str_eq(b.p, "n=42;x");
    ck_assert_uint_eq(b.len, 6);
    /* longer than the initial allocation and than what is left of it */
    ck_assert_int_eq(ag_buf_printf(&b, "%0500d|", 7), 0);
    ck_assert_uint_eq(b.len, 6 + 501);
    ck_assert_int_eq(b.p[6], '0');
    ck_assert_int_eq(b.p[6 + 499], '7');
    ck_assert_int_eq(b.p[6 + 500], '|');
    ck_assert_int_eq(b.p[6 + 501], '\0');
    /* an empty expansion changes nothing */
    ck_assert_int_eq(ag_buf_printf(&b, "%s", ""), 0);
    ck_assert_uint_eq(b.len, 507);
    ag_buf_free(&b);
}
END_TEST

START_TEST(test_buf_steal)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_puts(&b, "hello"), 0);
    char *s = ag_buf_steal(&b);
    ck_assert_str_eq(s, "hello");
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    /* the buffer is reusable and independent of the stolen memory */
    ck_assert_int_eq(ag_buf_puts(&b, "again"), 0);
    ck_assert_str_eq(s, "hello");
    free(s);
    ag_buf_free(&b);
    /* stealing from an empty buffer gives an owned empty string, not NULL */
    s = ag_buf_steal(&b);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

START_TEST(test_strdup)
{
    char *s = ag_strndup("abcdef", 3);
    ck_assert_str_eq(s, "abc");
    free(s);
    s = ag_strndup("", 0);
    ck_assert_str_eq(s, "");
    free(s);
    s = ag_strdup("xyz");
    ck_assert_str_eq(s, "xyz");
    free(s);
    ck_assert_ptr_null(ag_strdup(NULL));
}
END_TEST

/* ---- ag_buf_json_str --------------------------------------------------------- */

static char *json_str(const char *s, size_t len)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_json_str(&b, s, len), 0);
    ck_assert_uint_eq(strlen(b.p), b.len);
    for (size_t i = 0; i < b.len; i++)
        ck_assert_msg((unsigned char)b.p[i] >= 0x20 && (unsigned char)b.p[i] < 0x7F,
                      "byte 0x%02x at %zu in output", (unsigned char)b.p[i], i);
    return ag_buf_steal(&b);
}

#define JS(lit) json_str(lit, sizeof(lit) - 1)

static void expect_json(const char *in, size_t len, const char *want)
{
    char *got = json_str(in, len);
    ck_assert_str_eq(got, want);
    free(got);
}

#define EXPECT(lit, want) expect_json(lit, sizeof(lit) - 1, want)

START_TEST(test_json_plain_and_quotes)
{
    EXPECT("", "\"\"");
    EXPECT("hello world", "\"hello world\"");
    EXPECT("a\"b", "\"a\\\"b\"");
    EXPECT("a\\b", "\"a\\\\b\"");
    EXPECT("\\\"", "\"\\\\\\\"\"");
    EXPECT("/<>&'", "\"/<>&'\"");
    /* appends to what is already there */
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_puts(&b, "x:"), 0);
    ck_assert_int_eq(ag_buf_json_str(&b, "y", 1), 0);
    ck_assert_str_eq(b.p, "x:\"y\"");
    ag_buf_free(&b);
    /* only len bytes are read */
    expect_json("abcdef", 2, "\"ab\"");
}
END_TEST

START_TEST(test_json_controls)
{
    EXPECT("a\nb", "\"a\\nb\"");
    EXPECT("\r\n", "\"\\r\\n\"");
    EXPECT("\t", "\"\\t\"");
    EXPECT("\x01", "\"\\u0001\"");
    EXPECT("\x08\x0c", "\"\\u0008\\u000c\"");
    EXPECT("\x1f", "\"\\u001f\"");
    EXPECT("\x7f", "\"\\u007f\"");
    /* NUL inside the length is escaped, not a terminator */
    EXPECT("a\0b", "\"a\\u0000b\"");
    /* every control byte, one by one */
    for (int c = 0; c < 0x20; c++) {
        char in = (char)c;
        char *got = json_str(&in, 1);
        ck_assert_uint_ge(strlen(got), 4);
        ck_assert_int_eq(got[1], '\\');
        free(got);
    }
}
END_TEST

START_TEST(test_json_utf8)
{
    EXPECT("caf\xc3\xa9", "\"caf\\u00e9\"");
    EXPECT("\xe2\x82\xac", "\"\\u20ac\"");
    EXPECT("\xef\xbf\xbf", "\"\\uffff\"");
    EXPECT("\xc2\x80", "\"\\u0080\"");
    /* outside the BMP: a surrogate pair */
    EXPECT("\xf0\x9f\x98\x80", "\"\\ud83d\\ude00\"");
    EXPECT("\xf0\x90\x80\x80", "\"\\ud800\\udc00\"");
    EXPECT("\xf4\x8f\xbf\xbf", "\"\\udbff\\udfff\"");
    /* U+2028 / U+2029 (JS line separators) are escaped too */
    EXPECT("\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\"");
}
END_TEST

START_TEST(test_json_invalid_utf8)
{
    /* a lone continuation byte */
    EXPECT("\x80", "\"\\ufffd\"");
    /* overlong encodings are not decoded */
    EXPECT("\xc0\xaf", "\"\\ufffd\\ufffd\"");
    EXPECT("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
    /* encoded surrogate */
    EXPECT("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"");
    /* above U+10FFFF */
    EXPECT("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    /* bytes that never start a sequence */
    EXPECT("\xff\xfe", "\"\\ufffd\\ufffd\"");
    EXPECT("\xf8\x88\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"");
    /* truncated at the end of the input, and interrupted by ASCII */
    EXPECT("\xe2\x82", "\"\\ufffd\\ufffd\"");
    EXPECT("\xe2\x82"
           "A",
           "\"\\ufffd\\ufffdA\"");
    EXPECT("x\xc3", "\"x\\ufffd\"");
    /* a valid sequence cut by len is not read past len */
    expect_json("\xc3\xa9", 1, "\"\\ufffd\"");
}
END_TEST

START_TEST(test_json_round_trip_with_jansson)
{
    static const char in[] =
        "q\"b\\s/\x01\x1f\n\r\t caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f end";
    char *got = JS(in);
    json_error_t e;
    json_t *j = json_loads(got, JSON_DECODE_ANY, &e);
    ck_assert_msg(j != NULL, "not JSON: %s (%s)", got, e.text);
    ck_assert(json_is_string(j));
    ck_assert_uint_eq(json_string_length(j), sizeof(in) - 1);
    ck_assert_int_eq(memcmp(json_string_value(j), in, sizeof(in) - 1), 0);
    json_decref(j);
    free(got);

    /* invalid input still yields valid JSON, with U+FFFD in place of bad bytes */
    got = JS("a\xff"
             "b");
    j = json_loads(got, JSON_DECODE_ANY, &e);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(j), "a\xef\xbf\xbd"
                                           "b");
    json_decref(j);
    free(got);
}
END_TEST

START_TEST(test_json_every_byte_is_safe)
{
    /* all 256 byte values, alone and in a run, always give printable ASCII
     * (json_str asserts it) and parse as JSON */
    unsigned char all[256];
    for (int i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
        char *one = json_str((const char *)&all[i], 1);
        json_t *j = json_loads(one, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        ck_assert_msg(j != NULL, "byte 0x%02x -> %s not JSON", i, one);
        json_decref(j);
        free(one);
    }
    char *run = json_str((const char *)all, sizeof(all));
    json_t *j = json_loads(run, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    ck_assert_ptr_nonnull(j);
    /* the ASCII half comes back unchanged */
    ck_assert_int_eq(memcmp(json_string_value(j), all, 128), 0);
    json_decref(j);
    free(run);
}
END_TEST

/* ---- string helpers ---------------------------------------------------------- */

START_TEST(test_streq_ci)
{
    ck_assert(ag_streq_ci("Authorization", 13, "authorization"));
    ck_assert(ag_streq_ci("AUTHORIZATION", 13, "authorization"));
    ck_assert(ag_streq_ci("x-user", 6, "X-USER"));
    ck_assert(ag_streq_ci("", 0, ""));
    /* a is length-delimited, b is NUL-terminated: both lengths must agree */
    ck_assert(ag_streq_ci("Hostname", 4, "HOST"));
    ck_assert(!ag_streq_ci("Host", 4, "hostname"));
    ck_assert(!ag_streq_ci("Hostname", 8, "host"));
    ck_assert(!ag_streq_ci("", 0, "a"));
    ck_assert(!ag_streq_ci("a", 1, ""));
    ck_assert(!ag_streq_ci("X-User", 6, "X_User"));
    /* only ASCII letters fold: not @/` [/{ and not bytes >= 0x80 */
    ck_assert(!ag_streq_ci("@", 1, "`"));
    ck_assert(!ag_streq_ci("[", 1, "{"));
    ck_assert(!ag_streq_ci("^", 1, "~"));
    ck_assert(!ag_streq_ci("\xc3\xa9", 2, "\xc3\x89"));
    ck_assert(!ag_streq_ci("\xe0", 1, "\xc0"));
    /* an embedded NUL in a never matches the end of b */
    ck_assert(!ag_streq_ci("ab\0", 3, "ab"));
}
END_TEST

START_TEST(test_hexval)
{
    for (int c = -1; c < 256; c++) {
        int want = -1;
        if (c >= '0' && c <= '9')
            want = c - '0';
        else if (c >= 'a' && c <= 'f')
            want = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            want = c - 'A' + 10;
        ck_assert_msg(ag_hexval(c) == want, "ag_hexval(%d) = %d, want %d", c, ag_hexval(c), want);
    }
    ck_assert_int_eq(ag_hexval('f'), 15);
    ck_assert_int_eq(ag_hexval('G'), -1);
}
END_TEST

/* ---- hash, random, clocks ----------------------------------------------------- */

START_TEST(test_hash64)
{
    static const char tok[] = "eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyX2lkIjoidTEifQ.c2ln";
    size_t n = sizeof(tok) - 1;
    uint64_t h1 = ag_hash64(tok, n, 1);
    ck_assert_uint_eq(ag_hash64(tok, n, 1), h1); /* deterministic */
    ck_assert_uint_ne(ag_hash64(tok, n, 2), h1); /* seed matters */
    ck_assert_uint_ne(ag_hash64(tok, n - 1, 1), h1);
    /* length is part of the hash, even when the extra bytes are zero */
    static const char z[16] = {0};
    ck_assert_uint_ne(ag_hash64(z, 3, 7), ag_hash64(z, 4, 7));
    ck_assert_uint_ne(ag_hash64(z, 8, 7), ag_hash64(z, 9, 7));
    ck_assert_uint_ne(ag_hash64(z, 0, 7), ag_hash64(z, 1, 7));
    /* every single-bit change anywhere (full words and the tail) changes it */
    char buf[sizeof(tok)];
    memcpy(buf, tok, sizeof(tok));
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (char)(1 << bit);
            ck_assert_msg(ag_hash64(buf, n, 1) != h1, "flip byte %zu bit %d", i, bit);
            buf[i] ^= (char)(1 << bit);
        }
    }
    ck_assert_uint_eq(ag_hash64(buf, n, 1), h1);
    /* empty input is fine and still seed dependent */
    ck_assert_uint_ne(ag_hash64("", 0, 1), ag_hash64("", 0, 2));
}
END_TEST

START_TEST(test_random)
{
    unsigned char a[32], b[32];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    ck_assert_int_eq(ag_random(a, sizeof(a)), 0);
    ck_assert_int_eq(ag_random(b, sizeof(b)), 0);
    static const unsigned char zero[32];
    ck_assert_int_ne(memcmp(a, zero, sizeof(a)), 0);
    ck_assert_int_ne(memcmp(a, b, sizeof(a)), 0);
    /* large requests are filled completely (getrandom may return short) */
    static unsigned char big[1 << 20];
    memset(big, 0, sizeof(big));
    ck_assert_int_eq(ag_random(big, sizeof(big)), 0);
    ck_assert_int_ne(memcmp(big + sizeof(big) - 32, zero, 32), 0);
    ck_assert_int_eq(ag_random(a, 0), 0);
}
END_TEST

START_TEST(test_clocks)
{
    int64_t w = ag_now_wall();
    ck_assert_int_gt(w, 1700000000); /* after 2023 */
    ck_assert_int_lt(w, 4102444800); /* before 2100 */
    uint64_t m1 = ag_now_mono_ns();
    uint64_t m2 = ag_now_mono_ns();
    ck_assert_uint_ge(m2, m1);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, test_buf_empty_and_append);
    tcase_add_test(tc, test_buf_growth);
    tcase_add_test(tc, test_buf_reserve_overflow);
    tcase_add_test(tc, test_buf_printf);
    tcase_add_test(tc, test_buf_steal);
    tcase_add_test(tc, test_strdup);
    tcase_add_test(tc, test_json_plain_and_quotes);
    tcase_add_test(tc, test_json_controls);
    tcase_add_test(tc, test_json_utf8);
    tcase_add_test(tc, test_json_invalid_utf8);
    tcase_add_test(tc, test_json_round_trip_with_jansson);
    tcase_add_test(tc, test_json_every_byte_is_safe);
    tcase_add_test(tc, test_streq_ci);
    tcase_add_test(tc, test_hexval);
    tcase_add_test(tc, test_hash64);
    tcase_add_test(tc, test_random);
    tcase_add_test(tc, test_clocks);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
