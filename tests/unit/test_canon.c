/* Table tests for the canonicalizer and the query lookup: one table per
 * docs/security.md case (groups C and D), each row an exact output or an exact
 * reject reason, in the default mode and with the operator options. */
#include <stdio.h>
#include <string.h>

#include "canon.h"
#include "testutil.h"

#define A "0b5f6e1c-6a7d-4c8e-9f10-1a2b3c4d5e6f"
#define B "7d0e2b44-3f1a-4e55-8c21-9a8b7c6d5e4f"
#define X "e3c1a9b2-5d4f-4a6b-8e7c-0f1e2d3c4b5a"

/* A row runs under three option sets; NULL `out` means "rejected", with the
 * reason in the matching `why`. */
typedef struct row {
    const char *in;
    const char *out; /* default: no resolution, no merging */
    const char *why;
    const char *out_res; /* resolve_dot_segments (and merge_slashes) */
    const char *why_res;
} row;

/* Same as the default column. */
#define SAME(o, w) o, w, o, w

static const canon_opts OPT_DEFAULT = {false, false};
static const canon_opts OPT_LENIENT = {true, true};

static void check_one(const char *label, const char *in, size_t inlen, const canon_opts *o,
                      const char *want, const char *want_why)
{
    char out[512];
    size_t n = 12345;
    const char *q = (const char *)1, *why = (const char *)1;
    size_t ql = 99;
    int rc = canon_target(in, inlen, o, out, sizeof(out), &n, &q, &ql, &why);
    if (want) {
        ck_assert_msg(rc == 0, "%s: \"%s\" rejected with %s, want \"%s\"", label, in,
                      why ? why : "(null)", want);
        ck_assert_msg(strcmp(out, want) == 0, "%s: \"%s\" -> \"%s\", want \"%s\"", label, in, out,
                      want);
        ck_assert_uint_eq(n, strlen(want));
        ck_assert_ptr_null(why);
    } else {
        ck_assert_msg(rc == -1, "%s: \"%s\" accepted as \"%s\", want %s", label, in, out, want_why);
        ck_assert_msg(why && strcmp(why, want_why) == 0, "%s: \"%s\" reason %s, want %s", label, in,
                      why ? why : "(null)", want_why);
        ck_assert_uint_eq(n, 0);
        ck_assert_str_eq(out, "");
        ck_assert_ptr_null(q);
        ck_assert_uint_eq(ql, 0);
    }
}

static void run_rows(const char *label, const row *rows, size_t nrows)
{
    for (size_t i = 0; i < nrows; i++) {
        char l[64];
        snprintf(l, sizeof(l), "%s row %zu default", label, i);
        check_one(l, rows[i].in, strlen(rows[i].in), &OPT_DEFAULT, rows[i].out, rows[i].why);
        snprintf(l, sizeof(l), "%s row %zu lenient", label, i);
        check_one(l, rows[i].in, strlen(rows[i].in), &OPT_LENIENT, rows[i].out_res,
                  rows[i].why_res);
    }
}

#define RUN(label, rows) run_rows(label, rows, sizeof(rows) / sizeof(rows[0]))

static const row c25[] = {
    {"/public/../api/org/" X "/settings", NULL, "path_dot_segment", "/api/org/" X "/settings",
     NULL},
    {"/public/./../api/org/" X "/settings", NULL, "path_dot_segment", "/api/org/" X "/settings",
     NULL},
    {"/api/org/" A "/billing/../../" X "/billing", NULL, "path_dot_segment",
     "/api/org/" X "/billing", NULL},
    {"/..", SAME(NULL, "path_dot_segment")},
    {"/public/../../etc/passwd", SAME(NULL, "path_dot_segment")},
    {"/a/b/..", NULL, "path_dot_segment", "/a/", NULL},
    {"/a/./b", NULL, "path_dot_segment", "/a/b", NULL},
    {"/.", NULL, "path_dot_segment", "/", NULL},
    {"/./..", SAME(NULL, "path_dot_segment")},
    {"/a/../..", SAME(NULL, "path_dot_segment")},
    /* segment names that only look like dots (Envoy's normalizer table) */
    {"/.dir2/dir..5/...", SAME("/.dir2/dir..5/...", NULL)},
};

static const row c26[] = {
    {"/public/%2e%2e/api/org/" X "/settings", NULL, "path_dot_segment", "/api/org/" X "/settings",
     NULL},
    {"/public/%2E%2E/api/org/" X "/settings", NULL, "path_dot_segment", "/api/org/" X "/settings",
     NULL},
    {"/public/.%2e/api/org/" X "/settings", NULL, "path_dot_segment", "/api/org/" X "/settings",
     NULL},
    {"/public/%2e./api/org/" X "/settings", NULL, "path_dot_segment", "/api/org/" X "/settings",
     NULL},
    {"/public/%2e/x", NULL, "path_dot_segment", "/public/x", NULL},
    {"/dir1/%2e./dir2", NULL, "path_dot_segment", "/dir2", NULL},
    {"/%2e%2e", SAME(NULL, "path_dot_segment")},
};

static const row c27[] = {
    {"/api/org/" B "%2Fbilling", SAME(NULL, "path_encoded_separator")},
    {"/public/..%2Fapi%2Forg%2F" X "%2Fsettings", SAME(NULL, "path_encoded_separator")},
    {"/public%2F..%2Fapi/me", SAME(NULL, "path_encoded_separator")},
    {"/api/org/" B "%2fbilling", SAME(NULL, "path_encoded_separator")},
    {"/public%5C..%5Capi", SAME(NULL, "path_encoded_separator")},
    {"/public%5c..", SAME(NULL, "path_encoded_separator")},
    {"/public\\..\\api\\me", SAME(NULL, "path_encoded_separator")},
};

static const row c28[] = {
    {"/public/%252e%252e/api/me", SAME("/public/%252e%252e/api/me", NULL)},
    {"/api/org/" B "%252Fbilling", SAME("/api/org/" B "%252Fbilling", NULL)},
    {"/x%25", SAME("/x%25", NULL)},
    {"/x%2525", SAME("/x%2525", NULL)},
};

static const row c29[] = {
    {"/public%00/../api/org/" X "/settings", SAME(NULL, "path_control_char")},
    {"/api/org/" B "%00" X "/billing", SAME(NULL, "path_control_char")},
    {"/api/me%0d%0aX-User:%20{\"user_id\":\"admin\"}", SAME(NULL, "path_control_char")},
    {"/api/me\x01", SAME(NULL, "path_control_char")},
    {"/api/me\x7f", SAME(NULL, "path_control_char")},
    {"/api/me\x0b", SAME(NULL, "path_control_char")},
    {"/api/me\r\nX-User: x", SAME(NULL, "path_control_char")},
    {"/api/me%09", SAME(NULL, "path_control_char")},
    {"/api/me%7F", SAME(NULL, "path_control_char")},
    {"/api/me%1f", SAME(NULL, "path_control_char")},
    {"/api/me?x=\x01", SAME(NULL, "path_control_char")},
};

static const row c30[] = {
    {"//api/org/" X "/settings", NULL, "path_empty_segment", "/api/org/" X "/settings", NULL},
    {"/api//org/" X "/settings", NULL, "path_empty_segment", "/api/org/" X "/settings", NULL},
    {"/api/org//billing", NULL, "path_empty_segment", "/api/org/billing", NULL},
    {"/public//../api/me", NULL, "path_empty_segment", "/api/me", NULL},
    {"///", NULL, "path_empty_segment", "/", NULL},
    {"//evil.example/x", NULL, "path_empty_segment", "/evil.example/x", NULL},
    {"/api/me//", NULL, "path_empty_segment", "/api/me/", NULL},
};

static const row c32[] = {
    {"/public/x#/../../api/me", SAME(NULL, "path_fragment")},
    {"/api/org/" X "/settings#x", SAME(NULL, "path_fragment")},
    {"/api/me?x=1#frag", SAME(NULL, "path_fragment")},
    {"/a%23b/c%3Fd", SAME("/a%23b/c%3Fd", NULL)},
    {"/a%23/c%3f", SAME("/a%23/c%3F", NULL)},
};

static const row c34[] = {
    {"/api/me/", SAME("/api/me/", NULL)},
    {"/api/org/" X "/settings.", SAME("/api/org/" X "/settings.", NULL)},
    {"/api/org/" X "/settings.json", SAME("/api/org/" X "/settings.json", NULL)},
    {"/api/org/" X "/settings%20", SAME("/api/org/" X "/settings%20", NULL)},
    {"/api/org/" X "/settings/.", NULL, "path_dot_segment", "/api/org/" X "/settings/", NULL},
};

static const row c36[] = {
    {"/foo%", SAME(NULL, "path_bad_encoding")},
    {"/foo%1", SAME(NULL, "path_bad_encoding")},
    {"/foo%zz", SAME(NULL, "path_bad_encoding")},
    {"/foo%1?2x", SAME(NULL, "path_bad_encoding")},
    {"/foo%%41", SAME(NULL, "path_bad_encoding")},
    {"/public /../api/me", SAME(NULL, "path_bad_encoding")},
};

static const row c37[] = {
    {"http://admin.internal/api/org/" X "/settings", SAME(NULL, "path_not_origin_form")},
    {"http://u@evil/", SAME(NULL, "path_not_origin_form")},
    {"*", SAME(NULL, "path_not_origin_form")},
    {"app:80", SAME(NULL, "path_not_origin_form")},
    {"api/me", SAME(NULL, "path_not_origin_form")},
    {"", SAME(NULL, "path_not_origin_form")},
    {"?x=1", SAME(NULL, "path_not_origin_form")},
};

static const row c40[] = {
    {"/api/org/%2e%2e/billing", NULL, "path_dot_segment", "/api/billing", NULL},
    {"/api/org/" B "%00" X "/billing", SAME(NULL, "path_control_char")},
    {"/api/org/" B "%20/billing", SAME("/api/org/" B "%20/billing", NULL)},
    {"/api/org/__proto__/billing", SAME("/api/org/__proto__/billing", NULL)},
    {"/api/org/7D0E2B44-3F1A-4E55-8C21-9A8B7C6D5E4F/billing",
     SAME("/api/org/7D0E2B44-3F1A-4E55-8C21-9A8B7C6D5E4F/billing", NULL)},
};

/* Normalization itself, and the servlet ";" dot bypass. */
static const row norm[] = {
    {"/", SAME("/", NULL)},
    {"/%7e%41%2d%5f%2E%30x", SAME("/~A-_.0x", NULL)},
    {"/caf%c3%a9/%e2%82%ac", SAME("/caf%C3%A9/%E2%82%AC", NULL)},
    {"/caf\xc3\xa9", SAME("/caf%C3%A9", NULL)},
    {"/a\"b<c>[d]^e`f{g|h}", SAME("/a%22b%3Cc%3E%5Bd%5D%5Ee%60f%7Bg%7Ch%7D", NULL)},
    {"/\xc0\xae\xc0\xae/x", SAME(NULL, "path_bad_utf8")},
    {"/\xed\xa0\x80", SAME(NULL, "path_bad_utf8")},
    {"/\xff", SAME(NULL, "path_bad_utf8")},
    {"/\xe2\x82", SAME(NULL, "path_bad_utf8")},
    {"/a;b/c;d=1", SAME("/a;b/c;d=1", NULL)},
    {"/public/..;/api/me", SAME(NULL, "path_semicolon")},
    {"/public/.;x=1/api/me", SAME(NULL, "path_semicolon")},
    {"/public/%2e%2e;/api/me", SAME(NULL, "path_semicolon")},
    {"/public/..%3b/api/me", SAME(NULL, "path_semicolon")},
    {"/a/..x;/b", SAME("/a/..x;/b", NULL)},
    {"/a%3a%40%21", SAME("/a%3A%40%21", NULL)},
    {"/a:@!$&'()*+,=", SAME("/a:@!$&'()*+,=", NULL)},
};

START_TEST(test_C25_dot_segments)
{
    RUN("C25", c25);
}
END_TEST

START_TEST(test_C26_encoded_dots)
{
    RUN("C26", c26);
}
END_TEST

START_TEST(test_C27_encoded_separators)
{
    RUN("C27", c27);
}
END_TEST

START_TEST(test_C28_double_encoding)
{
    RUN("C28", c28);
    char out[64];
    size_t n = 0;
    ck_assert_int_eq(canon_decode_segment("%252e%252e", 10, out, sizeof(out), &n), 0);
    ck_assert_str_eq(out, "%2e%2e");
    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(canon_decode_segment(B "%252Fbilling", strlen(B) + 12, out, sizeof(out), &n),
                     0);
    ck_assert_str_eq(out, B "%2Fbilling");
}
END_TEST

START_TEST(test_C29_control_chars)
{
    RUN("C29", c29);
    /* raw NUL inside the given length: the C-string view would stop at it */
    check_one("C29 raw NUL", "/public\0/../api", 15, &OPT_DEFAULT, NULL, "path_control_char");
    check_one("C29 raw NUL", "/public\0/../api", 15, &OPT_LENIENT, NULL, "path_control_char");
}
END_TEST

START_TEST(test_C30_empty_segments)
{
    RUN("C30", c30);
    /* merging alone does not resolve dots */
    canon_opts merge_only = {false, true};
    check_one("C30 merge only", "/public//../api/me", 18, &merge_only, NULL, "path_dot_segment");
    canon_opts resolve_only = {true, false};
    check_one("C30 resolve only", "/public//../api/me", 18, &resolve_only, NULL,
              "path_empty_segment");
}
END_TEST

START_TEST(test_C32_fragments_and_encoded_delimiters)
{
    RUN("C32", c32);
}
END_TEST

START_TEST(test_C34_trailing_slash_dot_space)
{
    RUN("C34", c34);
}
END_TEST

START_TEST(test_C36_bad_percent_encoding_and_spaces)
{
    RUN("C36", c36);
}
END_TEST

START_TEST(test_C37_request_target_forms)
{
    RUN("C37", c37);
    const char *why = NULL;
    char out[16];
    size_t n;
    ck_assert_int_eq(canon_target(NULL, 0, NULL, out, sizeof(out), &n, NULL, NULL, &why), -1);
    ck_assert_str_eq(why, "path_not_origin_form");
}
END_TEST

START_TEST(test_C40_path_parameter_values)
{
    RUN("C40", c40);
    char out[64];
    size_t n = 0;
    /* the parameter is the once-decoded segment; the org-id pattern is the gate's */
    ck_assert_int_eq(canon_decode_segment(B "%20", strlen(B) + 3, out, sizeof(out), &n), 0);
    ck_assert_str_eq(out, B " ");
    ck_assert_int_eq(
        canon_decode_segment(B "%00" X, strlen(B) + 3 + strlen(X), out, sizeof(out), &n), -1);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(canon_decode_segment("a%0d", 4, out, sizeof(out), &n), -1);
    ck_assert_int_eq(canon_decode_segment("a%zz", 4, out, sizeof(out), &n), -1);
    ck_assert_int_eq(canon_decode_segment("a%2", 3, out, sizeof(out), &n), -1);
    ck_assert_int_eq(canon_decode_segment("a\x01", 2, out, sizeof(out), &n), -1);
    /* bounded: "abcd" needs 5 bytes */
    ck_assert_int_eq(canon_decode_segment("abcd", 4, out, 4, &n), -1);
    ck_assert_int_eq(canon_decode_segment("abcd", 4, out, 5, &n), 0);
    ck_assert_str_eq(out, "abcd");
    ck_assert_int_eq(canon_decode_segment("", 0, out, 1, &n), 0);
    ck_assert_uint_eq(n, 0);

    /* a 10 KB org id: exact cap boundary, one byte under and one over */
    static char big[10 * 1024 + 64];
    static char bigout[sizeof(big)];
    size_t len = 0;
    memcpy(big, "/api/org/", 9);
    len = 9;
    memset(big + len, 'a', 10 * 1024);
    len += 10 * 1024;
    memcpy(big + len, "/billing", 8);
    len += 8;
    const char *why = NULL;
    ck_assert_int_eq(canon_target(big, len, NULL, bigout, len + 1, &n, NULL, NULL, &why), 0);
    ck_assert_uint_eq(n, len);
    ck_assert_int_eq(memcmp(bigout, big, len), 0);
    ck_assert_int_eq(canon_target(big, len, NULL, bigout, len, &n, NULL, NULL, &why), -1);
    ck_assert_str_eq(why, "limit_uri");
}
END_TEST

START_TEST(test_C45_query_never_chooses_route)
{
    static const struct {
        const char *in, *path, *query;
    } rows[] = {
        {"/api/org/" X "/settings?/public/", "/api/org/" X "/settings", "/public/"},
        {"/public/x?/../../api/org/" X "/settings", "/public/x", "/../../api/org/" X "/settings"},
        {"/api/me?x=/public", "/api/me", "x=/public"},
        {"/api/me?", "/api/me", ""},
        {"/api/me?a%2Fb=%2e%2e//", "/api/me", "a%2Fb=%2e%2e//"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char out[256];
        size_t n, ql = 0;
        const char *q = NULL, *why = NULL;
        size_t len = strlen(rows[i].in);
        ck_assert_int_eq(canon_target(rows[i].in, len, NULL, out, sizeof(out), &n, &q, &ql, &why),
                         0);
        ck_assert_str_eq(out, rows[i].path);
        ck_assert_ptr_eq(q, rows[i].in + strlen(rows[i].path) + 1);
        ck_assert_uint_eq(ql, strlen(rows[i].query));
        ck_assert_int_eq(memcmp(q, rows[i].query, ql), 0);
    }
    char out[16];
    size_t n, ql = 7;
    const char *q = (const char *)1, *why;
    ck_assert_int_eq(canon_target("/api/me", 7, NULL, out, sizeof(out), &n, &q, &ql, &why), 0);
    ck_assert_ptr_null(q);
    ck_assert_uint_eq(ql, 0);
}
END_TEST

START_TEST(test_C47_query_forwarded_byte_for_byte)
{
    const char *in = "/api/reports?org_id=" B "&q=a+b%20c%2B&x=%E2%82%AC";
    char out[64];
    size_t n, ql;
    const char *q, *why;
    ck_assert_int_eq(canon_target(in, strlen(in), NULL, out, sizeof(out), &n, &q, &ql, &why), 0);
    ck_assert_str_eq(out, "/api/reports");
    ck_assert_ptr_eq(q, in + 13);
    ck_assert_uint_eq(ql, strlen(in) - 13);
    ck_assert_int_eq(canon_query_check(q, ql, &why), 0);
    ck_assert_ptr_null(why);
}
END_TEST

START_TEST(test_canon_normalization)
{
    RUN("norm", norm);
}
END_TEST

START_TEST(test_canon_output_bounds)
{
    char out[8];
    size_t n;
    const char *why;
    /* "/abcdef" needs 8 bytes with the NUL */
    ck_assert_int_eq(canon_target("/abcdef", 7, NULL, out, 8, &n, NULL, NULL, &why), 0);
    ck_assert_int_eq(canon_target("/abcdefg", 8, NULL, out, 8, &n, NULL, NULL, &why), -1);
    ck_assert_str_eq(why, "limit_uri");
    /* decoding shrinks: the 3-byte escape fits as one byte */
    ck_assert_int_eq(canon_target("/abcde%7E", 9, NULL, out, 8, &n, NULL, NULL, &why), 0);
    ck_assert_str_eq(out, "/abcde~");
    ck_assert_int_eq(canon_target("/abcd%C3", 8, NULL, out, 8, &n, NULL, NULL, &why), -1);
    ck_assert_int_eq(canon_target("/", 1, NULL, out, 1, &n, NULL, NULL, &why), -1);
    ck_assert_str_eq(why, "limit_uri");
    ck_assert_int_eq(canon_target("/", 1, NULL, NULL, 0, &n, NULL, NULL, &why), -1);
}
END_TEST

/* Every accepted row, in every mode, is a fixed point, and its output is
 * accepted unchanged by the strict default mode: resolution and merging never
 * leave anything the strict mode would still object to. */
static void idem_rows(const row *rows, size_t nrows)
{
    const canon_opts *modes[] = {&OPT_DEFAULT, &OPT_LENIENT};
    for (size_t i = 0; i < nrows; i++)
        for (size_t m = 0; m < 2; m++) {
            char a[512], b[512];
            size_t na, nb;
            const char *why;
            if (canon_target(rows[i].in, strlen(rows[i].in), modes[m], a, sizeof(a), &na, NULL,
                             NULL, &why) != 0)
                continue;
            for (size_t m2 = 0; m2 < 2; m2++) {
                ck_assert_msg(canon_target(a, na, modes[m2], b, sizeof(b), &nb, NULL, NULL, &why) ==
                                  0,
                              "not idempotent: %s -> %s rejected (%s)", rows[i].in, a, why);
                ck_assert_str_eq(a, b);
            }
            ck_assert_ptr_null(strstr(a, "//"));
            ck_assert_ptr_null(strstr(a, "/./"));
            ck_assert_ptr_null(strstr(a, "/../"));
        }
}

START_TEST(test_canon_idempotent_over_tables)
{
    const struct {
        const row *r;
        size_t n;
    } all[] = {
#define T(x) {x, sizeof(x) / sizeof(x[0])}
        T(c25), T(c26), T(c27), T(c28), T(c29), T(c30),
        T(c32), T(c34), T(c36), T(c37), T(c40), T(norm),
#undef T
    };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        idem_rows(all[i].r, all[i].n);
}
END_TEST

/* Byte-replacement replay (an idea from Envoy's path tests), at the canonicalizer level:
 * replace each byte of a valid target in turn; every variant is rejected or
 * canonicalizes to a fixed point, and the bytes that are never legal in a
 * target (controls, space, '#'; a lone 0x80 in the path, where UTF-8 is
 * checked) are always rejected. The query is forwarded raw, so 0x80 there is
 * left alone. */
START_TEST(test_sweep_single_byte_mutation)
{
    static const char base[] = "/api/org/" B "/billing?org_id=" B "&q=a%20b";
    static const unsigned char subst[] = {0, '\r', '\n', ' ', '\t', '%', '.', '/', ';', '#', 0x80};
    const size_t len = sizeof(base) - 1;
    size_t rejected = 0, accepted = 0;
    for (size_t i = 1; i < len; i++)
        for (size_t k = 0; k < sizeof(subst); k++) {
            char in[sizeof(base)], out[sizeof(base)], again[sizeof(base)];
            memcpy(in, base, sizeof(base));
            in[i] = (char)subst[k];
            size_t n, n2;
            const char *why;
            const canon_opts *modes[] = {&OPT_DEFAULT, &OPT_LENIENT};
            for (size_t m = 0; m < 2; m++) {
                if (canon_target(in, len, modes[m], out, sizeof(out), &n, NULL, NULL, &why) != 0) {
                    rejected++;
                    continue;
                }
                accepted++;
                unsigned char c = subst[k];
                bool in_path = i < (size_t)(strchr(base, '?') - base);
                ck_assert_msg(!(c < 0x21 || c == '#' || (c == 0x80 && in_path)),
                              "byte %zu = 0x%02x accepted", i, c);
                ck_assert_int_eq(
                    canon_target(out, n, &OPT_DEFAULT, again, sizeof(again), &n2, NULL, NULL, &why),
                    0);
                ck_assert_str_eq(out, again);
            }
        }
    /* both outcomes occur, so the sweep exercises something */
    ck_assert_uint_gt(rejected, 0);
    ck_assert_uint_gt(accepted, 0);
}
END_TEST

/* ---- query (group D) ----------------------------------------------------- */

typedef struct qrow {
    const char *q;
    canon_qstatus st;
    const char *val; /* for FOUND */
} qrow;

static void run_qrows(const char *label, const qrow *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char out[128];
        size_t ol = 999;
        canon_qstatus st =
            canon_query_get(rows[i].q, strlen(rows[i].q), "org_id", out, sizeof(out), &ol);
        ck_assert_msg(st == rows[i].st, "%s row %zu: \"%s\" gave %d, want %d", label, i, rows[i].q,
                      (int)st, (int)rows[i].st);
        if (st == CANON_Q_FOUND) {
            ck_assert_uint_eq(ol, strlen(rows[i].val));
            ck_assert_int_eq(memcmp(out, rows[i].val, ol), 0);
            ck_assert_int_eq(out[ol], '\0');
        } else {
            ck_assert_uint_eq(ol, 0);
            ck_assert_str_eq(out, "");
        }
    }
}

#define QRUN(label, rows) run_qrows(label, rows, sizeof(rows) / sizeof(rows[0]))

START_TEST(test_D41_repeated_org_id)
{
    static const qrow rows[] = {
        {"org_id=" B "&org_id=" X, CANON_Q_AMBIGUOUS, NULL},
        {"org_id=" X "&org_id=" B, CANON_Q_AMBIGUOUS, NULL},
        {"org_id=" B "&org_id=" B, CANON_Q_AMBIGUOUS, NULL},
        {"org_id=" B, CANON_Q_FOUND, B},
        {"x=1&org_id=" B "&y=2", CANON_Q_FOUND, B},
        {"", CANON_Q_ABSENT, NULL},
        {"x=1", CANON_Q_ABSENT, NULL},
        /* parsers that split on ';' too would see a second org_id */
        {"a=1;org_id=" X "&org_id=" B, CANON_Q_AMBIGUOUS, NULL},
        {"org_id=" B ";org_id=" X, CANON_Q_AMBIGUOUS, NULL},
    };
    QRUN("D41", rows);
}
END_TEST

START_TEST(test_D42_case_variant_keys)
{
    static const qrow rows[] = {
        {"ORG_ID=" B "&org_id=" X, CANON_Q_AMBIGUOUS, NULL},
        {"org_id=" X "&ORG_ID=" B, CANON_Q_AMBIGUOUS, NULL},
        {"Org_Id=" B, CANON_Q_ABSENT, NULL},
        {"ORG_ID=" B "&Org_Id=" X, CANON_Q_ABSENT, NULL},
        /* other look-alikes some stacks fold into org_id */
        {"org.id=" X "&org_id=" B, CANON_Q_AMBIGUOUS, NULL},
        {"org_id[]=" X "&org_id=" B, CANON_Q_AMBIGUOUS, NULL},
        {"org%20id=" X "&org_id=" B, CANON_Q_AMBIGUOUS, NULL},
        {"org_id%00=" X "&org_id=" B, CANON_Q_AMBIGUOUS, NULL},
        {"org_ids=" X "&org_id=" B, CANON_Q_FOUND, B},
    };
    QRUN("D42", rows);
}
END_TEST

START_TEST(test_D43_encoded_and_degenerate_forms)
{
    static const qrow rows[] = {
        {"org%5Fid=" X, CANON_Q_FOUND, X},
        {"org%5fid=" X "&org_id=" B, CANON_Q_AMBIGUOUS, NULL},
        {"org_id=" B "%26org_id%3D" X, CANON_Q_FOUND, B "&org_id=" X},
        {"org_id=+" B, CANON_Q_FOUND, " " B},
        {"org_id=%2B" B, CANON_Q_FOUND, "+" B},
        {"org_id=" B "%00", CANON_Q_MALFORMED, NULL},
        {"org_id=" B "%0a", CANON_Q_MALFORMED, NULL},
        {"org_id", CANON_Q_ABSENT, NULL},
        {"org_id=", CANON_Q_ABSENT, NULL},
        {"org_id=" B "&org_id", CANON_Q_AMBIGUOUS, NULL},
        {"org_id&org_id=", CANON_Q_AMBIGUOUS, NULL},
        {"&&&org_id=" B, CANON_Q_FOUND, B},
        {"org_id=" B "&&&", CANON_Q_FOUND, B},
        {"org_id=a=b", CANON_Q_FOUND, "a=b"},
        {"org_id=%zz", CANON_Q_MALFORMED, NULL},
        {"org_id=" B "&q=%", CANON_Q_MALFORMED, NULL},
        {"q=%4", CANON_Q_MALFORMED, NULL},
        {"org_id=" B "&q=\x01", CANON_Q_MALFORMED, NULL},
        /* a bad value elsewhere does not matter once the escapes are valid */
        {"org_id=" B "&q=%00", CANON_Q_FOUND, B},
    };
    QRUN("D43", rows);

    /* a value over the caller's cap is refused, never truncated */
    char out[8];
    size_t ol;
    ck_assert_int_eq(canon_query_get("org_id=1234567", 14, "org_id", out, sizeof(out), &ol),
                     CANON_Q_FOUND);
    ck_assert_str_eq(out, "1234567");
    ck_assert_int_eq(canon_query_get("org_id=12345678", 15, "org_id", out, sizeof(out), &ol),
                     CANON_Q_MALFORMED);
    ck_assert_uint_eq(ol, 0);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_D47_query_check)
{
    static const struct {
        const char *q;
        const char *why;
    } rows[] = {
        {"org_id=" B "&q=a+b%20c%2B&x=%E2%82%AC", NULL},
        {"", NULL},
        {"a=%0A&b=%00", NULL},
        {"a=%zz", "query_bad_encoding"},
        {"a=%", "query_bad_encoding"},
        {"a=%4", "query_bad_encoding"},
        {"a=b c", "query_bad_encoding"},
        {"a=\x01", "query_control_char"},
        {"a=\r\nX-User: x", "query_control_char"},
        {"a=\x7f", "query_control_char"},
        {"a#b", "path_fragment"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *why = (const char *)1;
        int rc = canon_query_check(rows[i].q, strlen(rows[i].q), &why);
        if (rows[i].why) {
            ck_assert_msg(rc == -1, "D47 row %zu accepted", i);
            ck_assert_str_eq(why, rows[i].why);
        } else {
            ck_assert_msg(rc == 0, "D47 row %zu rejected: %s", i, why);
            ck_assert_ptr_null(why);
        }
    }
    const char *why = NULL;
    ck_assert_int_eq(canon_query_check("a\0b", 3, &why), -1);
    ck_assert_str_eq(why, "query_control_char");
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("canon");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_C25_dot_segments);
    tcase_add_test(tc, test_C26_encoded_dots);
    tcase_add_test(tc, test_C27_encoded_separators);
    tcase_add_test(tc, test_C28_double_encoding);
    tcase_add_test(tc, test_C29_control_chars);
    tcase_add_test(tc, test_C30_empty_segments);
    tcase_add_test(tc, test_C32_fragments_and_encoded_delimiters);
    tcase_add_test(tc, test_C34_trailing_slash_dot_space);
    tcase_add_test(tc, test_C36_bad_percent_encoding_and_spaces);
    tcase_add_test(tc, test_C37_request_target_forms);
    tcase_add_test(tc, test_C40_path_parameter_values);
    tcase_add_test(tc, test_C45_query_never_chooses_route);
    tcase_add_test(tc, test_C47_query_forwarded_byte_for_byte);
    tcase_add_test(tc, test_canon_normalization);
    tcase_add_test(tc, test_canon_output_bounds);
    tcase_add_test(tc, test_canon_idempotent_over_tables);
    tcase_add_test(tc, test_sweep_single_byte_mutation);
    tcase_add_test(tc, test_D41_repeated_org_id);
    tcase_add_test(tc, test_D42_case_variant_keys);
    tcase_add_test(tc, test_D43_encoded_and_degenerate_forms);
    tcase_add_test(tc, test_D47_query_check);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
