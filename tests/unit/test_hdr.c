/* The header table and its normal form: every row found under its own
 * spelling and its look-alikes, prefixes, names outside the table, and
 * Connection token matching. */
#include <stdio.h>
#include <string.h>

#include "hdr.h"
#include "testutil.h"

static unsigned flags_of(const char *name)
{
    return hdr_flags(name, strlen(name));
}

/* Spellings a backend may map to the same variable as the canonical name. */
static void variants(const char *canon, char out[4][64])
{
    size_t n = strlen(canon);
    ck_assert_uint_lt(n, 64);
    for (size_t i = 0; i <= n; i++) {
        char c = canon[i];
        out[0][i] = (char)((c >= 'a' && c <= 'z') ? c - 32 : c); /* upper */
        out[1][i] = c == '-' ? '_' : c;                          /* underscore */
        out[2][i] = c == '-' ? '.' : c;                          /* dot */
        out[3][i] = (char)(i == 0 && c >= 'a' && c <= 'z' ? c - 32 : c == '-' ? '_' : c);
    }
}

START_TEST(test_every_row)
{
    size_t rows = 0;
    for (size_t i = 0;; i++) {
        unsigned want;
        const char *name = hdr_row(i, &want);
        if (!name)
            break;
        rows++;
        size_t n = strlen(name);
        ck_assert_msg(want != 0, "row %s has no class", name);
        if (name[n - 1] == '-') {
            char longer[80];
            snprintf(longer, sizeof(longer), "%sSomething", name);
            ck_assert_msg((flags_of(longer) & want) == want, "prefix %s", name);
            char v[4][64];
            variants(longer, v);
            for (size_t k = 0; k < 4; k++)
                ck_assert_msg((flags_of(v[k]) & want) == want, "prefix %s as %s", name, v[k]);
            continue;
        }
        /* Proxy-* rows also carry the prefix row's bits (the same class). */
        ck_assert_msg((flags_of(name) & ~HDR_F_EXACT) == want, "%s: 0x%x, want 0x%x", name,
                      flags_of(name), want);
        ck_assert_msg(flags_of(name) & HDR_F_EXACT, "%s not exact", name);
        char v[4][64];
        variants(name, v);
        /* Case only: still the row's own spelling. */
        ck_assert_uint_eq(flags_of(v[0]), want | HDR_F_EXACT);
        for (size_t k = 1; k < 4; k++) {
            if (!strchr(name, '-'))
                continue;
            ck_assert_msg(flags_of(v[k]) == want, "%s: 0x%x, want 0x%x (look-alike)", v[k],
                          flags_of(v[k]), want);
        }
        /* Punctuation in other places, or none at all, is the same name. */
        char squeezed[64], dotted[130];
        size_t q = 0, d = 0;
        for (size_t k = 0; k < n; k++) {
            if (name[k] != '-')
                squeezed[q++] = name[k];
            dotted[d++] = name[k];
            dotted[d++] = '.';
        }
        squeezed[q] = dotted[d] = '\0';
        ck_assert_msg((flags_of(squeezed) & ~HDR_F_EXACT) == want, "%s", squeezed);
        ck_assert_msg(flags_of(dotted) == want, "%s", dotted);
    }
    ck_assert_uint_ge(rows, 50);
    ck_assert_ptr_null(hdr_row(rows, NULL));
}
END_TEST

START_TEST(test_rows_distinct)
{
    /* Two rows with one normal form: the second would never be found. */
    char seen[128][64];
    size_t n = 0;
    const char *name;
    for (size_t i = 0; (name = hdr_row(i, NULL)) != NULL; i++) {
        char norm[64];
        hdr_norm(name, strlen(name), norm, sizeof(norm));
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(strcmp(seen[k], norm) != 0, "duplicate normal form %s", norm);
        ck_assert_uint_lt(n, 128);
        strcpy(seen[n++], norm);
    }
}
END_TEST

typedef struct frow {
    const char *name;
    unsigned flags;
} frow;

START_TEST(test_hole1_lookalikes)
{
    static const frow rows[] = {
        {"X_Forwarded_For", HDR_F_FORWARDED | HDR_F_GW_SET},
        {"X-Forwarded_For", HDR_F_FORWARDED | HDR_F_GW_SET},
        {"x_forwarded_for", HDR_F_FORWARDED | HDR_F_GW_SET},
        {"X-Forwarded-For", HDR_F_FORWARDED | HDR_F_GW_SET | HDR_F_EXACT},
        {"X_Real_IP", HDR_F_FORWARDED},
        {"x_real_ip", HDR_F_FORWARDED},
        {"X-Real-Ip", HDR_F_FORWARDED | HDR_F_EXACT},
        {"X_USER", HDR_F_IDENTITY},
        {"x_user", HDR_F_IDENTITY},
        {"X.User", HDR_F_IDENTITY},
        {"x_org", HDR_F_IDENTITY},
        {"x-authgate-foo", HDR_F_INTERNAL},
        {"X_Authgate_Foo", HDR_F_INTERNAL},
        {"X-AUTHGATE-REQUEST-ID", HDR_F_INTERNAL},
        {"X_Request_Id", HDR_F_GW_SET | HDR_F_GW_RESP},
        {"X-Request-ID", HDR_F_GW_SET | HDR_F_GW_RESP | HDR_F_EXACT},
        {"Transfer_Encoding", HDR_F_HOP | HDR_F_FRAMING},
        {"Content_Length", HDR_F_FRAMING},
        {"Ho_st", HDR_F_HOST},
        {"HOST", HDR_F_HOST | HDR_F_EXACT},
        {"Ex_pect", HDR_F_EXPECT},
        {"Author_ization", HDR_F_AUTHZ},
        {"authorization", HDR_F_AUTHZ | HDR_F_EXACT},
        {"Proxy", HDR_F_HOP}, /* httpoxy */
        {"Proxy_Foo", HDR_F_HOP},
        {"proxy-authorization", HDR_F_HOP | HDR_F_EXACT},
        {"True_Client_IP", HDR_F_FORWARDED},
        {"CF-Connecting-IP", HDR_F_FORWARDED | HDR_F_EXACT},
        {"content-type", HDR_F_CTYPE | HDR_F_EXACT},
        {"Accept", HDR_F_ACCEPT | HDR_F_EXACT},
        /* outside the table */
        {"X-Trace-Id", 0},
        {"X_Trace_Id", 0},
        {"X-Userx", 0},
        {"Hosts", 0},
        {"Proxies", 0},
        {"Upgrade-Insecure-Requests", 0},
        {"Content-Length0", 0},
        {"Trailer-X", 0},
        {"Accept-Encoding", 0},
        {"", 0},
        {"-_-", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ck_assert_msg(flags_of(rows[i].name) == rows[i].flags, "%s: 0x%x, want 0x%x", rows[i].name,
                      flags_of(rows[i].name), rows[i].flags);
    ck_assert_uint_eq(hdr_flags(NULL, 0), 0);
}
END_TEST

START_TEST(test_nothing_lost_from_httpx)
{
    /* The rows of httpx's hop-by-hop list (removed; the table replaced it):
     * every name it dropped is still dropped from responses, names it let
     * through stay out of that class (except a bare "Proxy", now dropped on
     * purpose). */
    static const char *const hop[] = {
        "Connection",
        "connection",
        "CONNECTION",
        "Keep-Alive",
        "keep_alive",
        "TE",
        "te",
        "Trailer",
        "Trailers",
        "Transfer-Encoding",
        "transfer_encoding",
        "Upgrade",
        "Content-Length",
        "content-length",
        "HTTP2-Settings",
        "Host",
        "host",
        "Proxy-Authorization",
        "Proxy-Connection",
        "proxy-authenticate",
        "Proxy_Foo",
        "Connection ",
        "Transfer-Encoding\t",
    };
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        ck_assert_msg(flags_of(hop[i]) & HDR_RESP_DROP, "%s", hop[i]);
    }
    static const char *const pass[] = {"X-User",
                                       "Authorization",
                                       "Content-Type",
                                       "Accept",
                                       "Proxies",
                                       "Hosts",
                                       "Connections",
                                       "T",
                                       "Tex",
                                       "Trailer-X",
                                       "X-Forwarded-For",
                                       "Content-Length0",
                                       "Upgrade-Insecure-Requests"};
    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
        ck_assert_msg(!(flags_of(pass[i]) & HDR_RESP_DROP), "%s", pass[i]);
    /* Names proxy.c dropped from requests before the table. */
    static const char *const req[] = {
        "x-request-id",     "expect",
        "x-forwarded-for",  "x-forwarded-proto",
        "x-forwarded-host", "forwarded",
        "x-real-ip",        "x-original-url",
        "x-rewrite-url",    "x-envoy-original-path",
        "x-forwarded-uri",  "x-forwarded-prefix",
        "x-forwarded-port", "x-authgate-x",
        "authorization",
    };
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
        ck_assert_msg(flags_of(req[i]) &
                          (HDR_REQ_DROP | HDR_F_GW_SET | HDR_F_FORWARDED | HDR_F_AUTHZ),
                      "%s", req[i]);
}
END_TEST

START_TEST(test_norm)
{
    static const char *const same[] = {"X-User", "x-user",  "X_User", "X.USER",   "X-User_",
                                       "x user", "X-USER ", "XUser",  "x~u!s#e$r"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        char out[16];
        ck_assert_uint_eq(hdr_norm(same[i], strlen(same[i]), out, sizeof(out)), 5);
        ck_assert_str_eq(out, "xuser");
    }
    /* Truncated output, full length returned. */
    char out[4];
    ck_assert_uint_eq(hdr_norm("X-Org-Id", 8, out, sizeof(out)), 6);
    ck_assert_str_eq(out, "xor");
    ck_assert_uint_eq(hdr_norm("X-Org", 5, NULL, 0), 4);
    ck_assert_uint_eq(hdr_norm("--", 2, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(hdr_norm("X-Us\0er", 7, out, sizeof(out)), 5);
    /* Bytes outside ASCII are not letters. */
    ck_assert_uint_eq(hdr_norm("X-\xc3\xa9", 4, out, sizeof(out)), 1);
}
END_TEST

START_TEST(test_long_names)
{
    char name[600];
    memset(name, 'a', sizeof(name));
    ck_assert_uint_eq(hdr_flags(name, sizeof(name)), 0);
    /* A long name is still judged by a prefix row. */
    memcpy(name, "X-Authgate-", 11);
    ck_assert_uint_eq(hdr_flags(name, sizeof(name)), HDR_F_INTERNAL);
    memcpy(name, "Proxy_", 6);
    ck_assert_uint_eq(hdr_flags(name, sizeof(name)), HDR_F_HOP);
    /* A name of a table name's letters plus many separators is that name. */
    char sep[300];
    size_t n = 0;
    for (const char *p = "x-user"; *p; p++) {
        sep[n++] = *p;
        for (int k = 0; k < 40; k++)
            sep[n++] = '_';
    }
    ck_assert_uint_eq(hdr_flags(sep, n), HDR_F_IDENTITY);
}
END_TEST

typedef struct crow {
    const char *value;
    const char *name;
    bool listed;
} crow;

START_TEST(test_connection_tokens)
{
    static const crow rows[] = {
        {"keep-alive, X-Drop-Me", "X-Drop-Me", true},
        {"keep-alive, X-Drop-Me", "x_drop_me", true},
        {"keep-alive,X_Drop_Me", "X-Drop-Me", true},
        {"X-Drop-Me", "x.drop.me", true},
        {" \tX-Drop-Me \t", "X-Drop-Me", true},
        {"close", "Close", true},
        {"keep-alive, X-Drop-Me", "X-Drop", false},
        {"keep-alive, X-Drop", "X-Drop-Me", false},
        {"keep-alive, X-Drop-Me", "Keep-Alive", true},
        {"keep-alive, X-Drop-Me", "Keep", false},
        {",,, ,", "X", false},
        {"", "X", false},
        {"a,b,c", "b", true},
        {"a,b,c", "c", true},
        {"a,b,c", "d", false},
        {"-, _", "-", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ck_assert_msg(hdr_conn_lists(rows[i].value, strlen(rows[i].value), rows[i].name,
                                     strlen(rows[i].name)) == rows[i].listed,
                      "\"%s\" lists %s", rows[i].value, rows[i].name);
    ck_assert(!hdr_conn_lists(NULL, 0, "a", 1));
    ck_assert(!hdr_conn_lists("a", 1, NULL, 0));
}
END_TEST

START_TEST(test_name_eq)
{
    static const struct {
        const char *a, *b;
        bool eq;
    } rows[] = {
        {"X-Tenant-Id", "x_tenant_id", true},
        {"X-Tenant-Id", "XTENANTID", true},
        {"X-Tenant-Id", "x.tenant.id.", true},
        {"X-Tenant-Id", "X-Tenant", false},
        {"X-Tenant", "X-Tenant-Id", false},
        {"X-Tenant-Id", "X-Tenant-Ids", false},
        {"-", "-", false}, /* names nothing */
        {"", "", false},
        {"a", "", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        ck_assert_msg(hdr_name_eq(rows[i].a, strlen(rows[i].a), rows[i].b, strlen(rows[i].b)) ==
                          rows[i].eq,
                      "%s vs %s", rows[i].a, rows[i].b);
    /* length-delimited, no copy: longer than any normal-form buffer */
    char a[700], b[1400];
    for (size_t i = 0; i < sizeof(a); i++) {
        a[i] = 'q';
        b[2 * i] = 'Q';
        b[2 * i + 1] = '_';
    }
    ck_assert(hdr_name_eq(a, sizeof(a), b, sizeof(b)));
    ck_assert(!hdr_name_eq(a, sizeof(a) - 1, b, sizeof(b)));
    ck_assert(!hdr_name_eq(NULL, 0, "a", 1));
    ck_assert(!hdr_name_eq("a", 1, NULL, 0));
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("hdr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_every_row);
    tcase_add_test(tc, test_rows_distinct);
    tcase_add_test(tc, test_hole1_lookalikes);
    tcase_add_test(tc, test_nothing_lost_from_httpx);
    tcase_add_test(tc, test_norm);
    tcase_add_test(tc, test_long_names);
    tcase_add_test(tc, test_connection_tokens);
    tcase_add_test(tc, test_name_eq);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
