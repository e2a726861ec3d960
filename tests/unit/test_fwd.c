/* Forwarding policy: the upstream target, the exact request head, the libcurl
 * header lines and the relayed response headers. Configurations are built by
 * hand: fwd reads only the identity and trust settings. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fwd.h"
#include "hdr.h"
#include "testutil.h"

/* ---- target ------------------------------------------------------------ */

typedef struct trow {
    const char *url;
    fwd_scheme scheme;
    const char *host, *port, *hostport, *base, *prefix;
} trow;

START_TEST(test_target_compile)
{
    static const trow rows[] = {
        {"http://127.0.0.1:8081", FWD_SCHEME_HTTP, "127.0.0.1", "8081", "127.0.0.1:8081", "",
         "http://127.0.0.1:8081"},
        {"http://app", FWD_SCHEME_HTTP, "app", "80", "app", "", "http://app"},
        {"http://app:80/", FWD_SCHEME_HTTP, "app", "80", "app", "", "http://app"},
        {"http://app:443", FWD_SCHEME_HTTP, "app", "443", "app:443", "", "http://app:443"},
        {"https://app", FWD_SCHEME_HTTPS, "app", "443", "app", "", "https://app"},
        {"https://app:443/v1", FWD_SCHEME_HTTPS, "app", "443", "app", "/v1", "https://app/v1"},
        {"https://app:8443/v1//", FWD_SCHEME_HTTPS, "app", "8443", "app:8443", "/v1",
         "https://app:8443/v1"},
        {"https://app:80", FWD_SCHEME_HTTPS, "app", "80", "app:80", "", "https://app:80"},
        {"http://[::1]:9000/base/", FWD_SCHEME_HTTP, "::1", "9000", "[::1]:9000", "/base",
         "http://[::1]:9000/base"},
        {"http://[::1]", FWD_SCHEME_HTTP, "::1", "80", "[::1]", "", "http://[::1]"},
        {"https://[2001:db8::1]:443/a/b", FWD_SCHEME_HTTPS, "2001:db8::1", "443", "[2001:db8::1]",
         "/a/b", "https://[2001:db8::1]/a/b"},
        {"http://my_host.internal-1:00080/x", FWD_SCHEME_HTTP, "my_host.internal-1", "80",
         "my_host.internal-1", "/x", "http://my_host.internal-1/x"},
        {"http://app:65535", FWD_SCHEME_HTTP, "app", "65535", "app:65535", "", "http://app:65535"},
        {"http://app:1/a/", FWD_SCHEME_HTTP, "app", "1", "app:1", "/a", "http://app:1/a"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        fwd_target t;
        char err[128] = "";
        ck_assert_msg(fwd_target_compile(rows[i].url, &t, err, sizeof(err)) == 0, "%s: %s",
                      rows[i].url, err);
        ck_assert_int_eq(t.scheme, rows[i].scheme);
        ck_assert_str_eq(t.host, rows[i].host);
        ck_assert_str_eq(t.port, rows[i].port);
        ck_assert_str_eq(t.hostport, rows[i].hostport);
        ck_assert_uint_eq(t.hostport_len, strlen(rows[i].hostport));
        ck_assert_str_eq(t.base, rows[i].base);
        ck_assert_uint_eq(t.base_len, strlen(rows[i].base));
        ck_assert_str_eq(t.prefix, rows[i].prefix);
        ck_assert_uint_eq(t.prefix_len, strlen(rows[i].prefix));
        ck_assert_uint_eq(t.port_num, (unsigned)atoi(rows[i].port));
        fwd_target_free(&t);
        ck_assert_int_eq(t.scheme, FWD_SCHEME_NONE);
        ck_assert_ptr_null(t.base);
    }
}
END_TEST

START_TEST(test_target_errors)
{
    static const char *const bad[] = {
        "ftp://app",
        "app:80",
        "HTTP://app",
        "http://",
        "http:///x",
        "http://user@app",
        "http://user:pw@app:80/",
        "http://app@",
        "https://[::1",
        "http://[::1]x",
        "http://[::1]:",
        "http://[::1]]:80",
        "http://[]:80",
        "http://[::g]",
        "http://app:",
        "http://app:0",
        "http://app:65536",
        "http://app:123456",
        "http://app:8a",
        "http://app:-1",
        "http://app:+80",
        "http://app: 80",
        "http://a:b:c",
        "http://ap p",
        "http://app/a b",
        "http://app/a\tb",
        "http://app/a\x01",
        "http://app/?q",
        "http://app?q",
        "http://app#f",
        "http://app/x#f",
        "http://ap%70",
        "http://app\\evil",
        NULL,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fwd_target t;
        memset(&t, 0x5a, sizeof(t));
        char err[128] = "";
        ck_assert_msg(fwd_target_compile(bad[i], &t, err, sizeof(err)) == -1, "%s accepted",
                      bad[i] ? bad[i] : "(null)");
        ck_assert_msg(err[0] != '\0', "%s: no reason", bad[i]);
        ck_assert_int_eq(t.scheme, FWD_SCHEME_NONE);
        ck_assert_ptr_null(t.base);
        ck_assert_ptr_null(t.prefix);
        fwd_target_free(&t); /* safe on a refused target */
    }
    char longhost[300 + 8];
    memcpy(longhost, "http://", 7);
    memset(longhost + 7, 'a', 300);
    longhost[307] = '\0';
    fwd_target t;
    char err[128];
    ck_assert_int_eq(fwd_target_compile(longhost, &t, err, sizeof(err)), -1);
}
END_TEST

/* ---- rules and request head --------------------------------------------- */

typedef struct setup {
    cfg_config c;
    char *strip[4];
    fwd_rules *r;
    fwd_target t;
    ag_buf out;
} setup;

static void mk(setup *s, bool trust, bool authz, const char *user, const char *org,
               const char *strip1, const char *url)
{
    memset(s, 0, sizeof(*s));
    s->c.trust_forwarded_headers = trust;
    s->c.identity.forward_authorization = authz;
    s->c.identity.user_header = ag_unconst(user);
    s->c.identity.org_header = ag_unconst(org);
    if (strip1) {
        s->strip[0] = ag_unconst(strip1);
        s->c.identity.strip_headers = s->strip;
        s->c.identity.nstrip_headers = 1;
    }
    char err[128] = "";
    s->r = fwd_rules_new(&s->c, err, sizeof(err));
    ck_assert_msg(s->r != NULL, "fwd_rules_new: %s", err);
    ck_assert_int_eq(fwd_target_compile(url, &s->t, err, sizeof(err)), 0);
    ag_buf_init(&s->out);
}

static void done(setup *s)
{
    fwd_rules_free(s->r);
    fwd_target_free(&s->t);
    ag_buf_free(&s->out);
}

#define H(n, v)                                                                                    \
    {                                                                                              \
        n, sizeof(n) - 1, v, sizeof(v) - 1                                                         \
    }

static fwd_request base_req(const gate_header *h, size_t n)
{
    return (fwd_request){
        .method = "GET",
        .headers = h,
        .nheaders = n,
        .path = "/a/b",
        .path_len = 4,
        .client_addr = "127.0.0.1",
        .request_id = "rid-1",
        .body = FWD_BODY_NONE,
    };
}

static const char *head(setup *s, const fwd_request *in)
{
    ag_buf_reset(&s->out);
    ck_assert_int_eq(fwd_build_head(s->r, &s->t, in, &s->out), 0);
    return s->out.p;
}

/* The shape proxy.c's build_raw_head produced: request line, Host, client
 * headers in order, identity, X-Forwarded-*, X-Request-Id, X-Forwarded-Host,
 * framing, empty line. */
START_TEST(test_head_exact)
{
    setup s;
    mk(&s, false, true, "X-User", "X-Org", NULL, "http://127.0.0.1:8081/base/");
    static const gate_header h[] = {
        H("Host", "gw"),      H("User-Agent", "t"),
        H("Accept", "*/*"),   H("X_Forwarded_For", "6.6.6.6"),
        H("X-User", "spoof"), H("Authorization", "Bearer tok"),
        H("X-Empty", ""),
    };
    fwd_request in = base_req(h, sizeof(h) / sizeof(h[0]));
    in.query = "x=1&y";
    in.query_len = 5;
    in.x_user = "{\"user_id\":\"u\"}";
    in.x_org = "{\"org_id\":\"o\"}";
    ck_assert_str_eq(head(&s, &in), "GET /base/a/b?x=1&y HTTP/1.1\r\n"
                                    "Host: 127.0.0.1:8081\r\n"
                                    "User-Agent: t\r\n"
                                    "Accept: */*\r\n"
                                    "Authorization: Bearer tok\r\n"
                                    "X-Empty: \r\n"
                                    "X-User: {\"user_id\":\"u\"}\r\n"
                                    "X-Org: {\"org_id\":\"o\"}\r\n"
                                    "X-Forwarded-For: 127.0.0.1\r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "X-Forwarded-Host: gw\r\n"
                                    "\r\n");
    /* No query, no identity, no Host (HTTP/1.0), empty query kept as "?". */
    in.nheaders = 2;
    in.headers = h + 1;
    in.query = NULL;
    in.x_user = in.x_org = NULL;
    ck_assert_str_eq(head(&s, &in), "GET /base/a/b HTTP/1.1\r\n"
                                    "Host: 127.0.0.1:8081\r\n"
                                    "User-Agent: t\r\n"
                                    "Accept: */*\r\n"
                                    "X-Forwarded-For: 127.0.0.1\r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "\r\n");
    in.query = "";
    in.query_len = 0;
    in.nheaders = 0;
    in.client_addr = "";
    ck_assert_str_eq(head(&s, &in), "GET /base/a/b? HTTP/1.1\r\n"
                                    "Host: 127.0.0.1:8081\r\n"
                                    "X-Forwarded-For: \r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "\r\n");
    /* Appends to what the buffer holds. */
    ag_buf_reset(&s.out);
    ag_buf_puts(&s.out, "KEEP");
    ck_assert_int_eq(fwd_build_head(s.r, &s.t, &in, &s.out), 0);
    ck_assert_int_eq(strncmp(s.out.p, "KEEPGET /base/a/b? ", 19), 0);
    done(&s);
}
END_TEST

START_TEST(test_head_host_and_base)
{
    static const struct {
        const char *url, *line;
    } rows[] = {
        {"http://app", "GET /a/b HTTP/1.1\r\nHost: app\r\n"},
        {"http://app:80/", "GET /a/b HTTP/1.1\r\nHost: app\r\n"},
        {"http://app:8080/x/y//", "GET /x/y/a/b HTTP/1.1\r\nHost: app:8080\r\n"},
        {"http://[::1]", "GET /a/b HTTP/1.1\r\nHost: [::1]\r\n"},
        {"http://[::1]:8080/p", "GET /p/a/b HTTP/1.1\r\nHost: [::1]:8080\r\n"},
        {"https://[fe80::2]:443", "GET /a/b HTTP/1.1\r\nHost: [fe80::2]\r\n"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        setup s;
        mk(&s, false, true, "X-User", "X-Org", NULL, rows[i].url);
        fwd_request in = base_req(NULL, 0);
        const char *got = head(&s, &in);
        ck_assert_msg(strncmp(got, rows[i].line, strlen(rows[i].line)) == 0, "%s: %s", rows[i].url,
                      got);
        done(&s);
    }
}
END_TEST

/* Names that must not reach the upstream from a client whatever the spelling. */
static const char *const never[] = {
    "X_Forwarded_For",
    "X-Forwarded_For",
    "x_forwarded_for",
    "X_Real_IP",
    "x_real_ip",
    "X_Forwarded_Proto",
    "X_Forwarded_Host",
    "x-forwarded-prefix",
    "Forwarded",
    "True-Client-IP",
    "X_USER",
    "x_user",
    "X.User",
    "x-org",
    "x-authgate-foo",
    "X_Authgate_Foo",
    "X-Request-Id",
    "x_request_id",
    "Expect",
    "Connection",
    "Keep-Alive",
    "Keep_Alive",
    "TE",
    "Trailer",
    "Transfer_Encoding",
    "Content-Length",
    "Content_Length",
    "Upgrade",
    "Proxy",
    "Proxy-Authorization",
    "HTTP2-Settings",
    "Ho_st",
    "X-Internal-Secret",
    "x_internal_secret",
    "X.Internal.Secret",
    "Author_ization",
};

static bool has_name(const char *head_s, const char *name)
{
    /* Line-anchored: "\r\n" + name + ":" */
    char pat[128];
    snprintf(pat, sizeof(pat), "\r\n%s:", name);
    for (const char *p = head_s; (p = strstr(p, "\r\n")) != NULL; p += 2) {
        size_t n = strlen(pat);
        if (strncasecmp(p, pat, n) == 0)
            return true;
    }
    return false;
}

static size_t count_name(const char *head_s, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof(pat), "\r\n%s:", name);
    size_t k = 0;
    for (const char *p = head_s; (p = strstr(p, "\r\n")) != NULL; p += 2)
        if (strncasecmp(p, pat, strlen(pat)) == 0)
            k++;
    return k;
}

static void run_never(bool trust, bool authz)
{
    setup s;
    mk(&s, trust, authz, "X-User", "X-Org", "X-Internal-Secret", "http://app");
    size_t checked = 0;
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        /* Trusted, the exact spellings of the forwarded class pass (below). */
        unsigned f = hdr_flags(never[i], strlen(never[i]));
        if (trust && (f & (HDR_F_FORWARDED | HDR_F_EXACT)) == (HDR_F_FORWARDED | HDR_F_EXACT))
            continue;
        checked++;
        gate_header h[2] = {{never[i], strlen(never[i]), "6.6.6.6", 7}, H("X-Keep", "k")};
        fwd_request in = base_req(h, 2);
        in.x_user = "U";
        const char *got = head(&s, &in);
        ck_assert_msg(!strstr(got, "6.6.6.6"), "%s reached the upstream (trust %d): %s", never[i],
                      trust, got);
        ck_assert(has_name(got, "X-Keep"));
        ck_assert_uint_eq(count_name(got, "X-User"), 1);
        ck_assert_uint_eq(count_name(got, "X-Forwarded-For"), 1);
        ck_assert(!fwd_client_header_stripped(s.r, "X-Keep", 6));
        ck_assert_msg(fwd_client_header_stripped(s.r, never[i], strlen(never[i])) ||
                          !strcmp(never[i], "Connection"),
                      "%s", never[i]);
        /* the libcurl set is the same */
        ag_buf_reset(&s.out);
        ck_assert_int_eq(fwd_build_lines(s.r, &in, &s.out), 0);
        for (size_t off = 0; off < s.out.len; off += strlen(s.out.p + off) + 1)
            ck_assert_msg(!strstr(s.out.p + off, "6.6.6.6"), "%s in curl lines", never[i]);
    }
    ck_assert_uint_ge(checked, trust ? 30 : sizeof(never) / sizeof(never[0]));
    done(&s);
}

START_TEST(test_hole1_never_forwarded)
{
    run_never(false, true);
    run_never(false, false);
}
END_TEST

START_TEST(test_hole1_trusted_only_exact_spelling)
{
    run_never(true, true);
    setup s;
    mk(&s, true, true, "X-User", "X-Org", NULL, "http://app");
    static const gate_header h[] = {
        H("Host", "gw"),
        H("x-forwarded-for", "1.1.1.1"),
        H("X_Forwarded_For", "6.6.6.6"),
        H("X-Real-IP", "2.2.2.2"),
        H("X_Real_IP", "6.6.6.6"),
        H("Forwarded", "for=3.3.3.3"),
        H("X-Forwarded-Host", "front"),
    };
    fwd_request in = base_req(h, sizeof(h) / sizeof(h[0]));
    ck_assert_str_eq(head(&s, &in), "GET /a/b HTTP/1.1\r\n"
                                    "Host: app\r\n"
                                    "x-forwarded-for: 1.1.1.1\r\n"
                                    "X-Real-IP: 2.2.2.2\r\n"
                                    "Forwarded: for=3.3.3.3\r\n"
                                    "X-Forwarded-Host: front\r\n"
                                    "X-Forwarded-For: 127.0.0.1\r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "X-Forwarded-Host: gw\r\n"
                                    "\r\n");
    done(&s);
    /* Untrusted: none of the client copies. */
    mk(&s, false, true, "X-User", "X-Org", NULL, "http://app");
    ck_assert_str_eq(head(&s, &in), "GET /a/b HTTP/1.1\r\n"
                                    "Host: app\r\n"
                                    "X-Forwarded-For: 127.0.0.1\r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "X-Forwarded-Host: gw\r\n"
                                    "\r\n");
    done(&s);
}
END_TEST

START_TEST(test_authorization)
{
    static const gate_header h[] = {H("authorization", "Bearer t"), H("Author_ization", "x")};
    setup s;
    mk(&s, false, true, "X-User", "X-Org", NULL, "http://app");
    fwd_request in = base_req(h, 2);
    const char *got = head(&s, &in);
    ck_assert(strstr(got, "\r\nauthorization: Bearer t\r\n"));
    ck_assert(!strstr(got, "Author_ization"));
    done(&s);
    mk(&s, false, false, "X-User", "X-Org", NULL, "http://app");
    got = head(&s, &in);
    ck_assert_msg(!strstr(got, "uthoriz"), "%s", got);
    done(&s);
}
END_TEST

START_TEST(test_configured_identity_names)
{
    /* Custom names: every spelling of them is stripped, ours sent once in the
     * configured spelling; the default names are stripped as well. */
    setup s;
    mk(&s, false, true, "X-Auth-User", "X-Auth-Org", "X-Debug-User", "http://app");
    static const gate_header h[] = {
        H("x_auth_user", "spoof"), H("X-AUTH-ORG", "spoof"), H("X.Debug.User", "spoof"),
        H("X-User", "spoof"),      H("X-Debug-Users", "ok"), H("X-Auth", "ok"),
    };
    fwd_request in = base_req(h, sizeof(h) / sizeof(h[0]));
    in.x_user = "U";
    in.x_org = "O";
    ck_assert_str_eq(head(&s, &in), "GET /a/b HTTP/1.1\r\n"
                                    "Host: app\r\n"
                                    "X-Debug-Users: ok\r\n"
                                    "X-Auth: ok\r\n"
                                    "X-Auth-User: U\r\n"
                                    "X-Auth-Org: O\r\n"
                                    "X-Forwarded-For: 127.0.0.1\r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "\r\n");
    ck_assert(fwd_client_header_stripped(s.r, "x_debug_user", 12));
    ck_assert(!fwd_client_header_stripped(s.r, "X-Debug-Users", 13));
    done(&s);
}
END_TEST

/* The rows test_gate pinned on gate's own copy of this rule (gone): every
 * spelling of an identity or strip name is stripped, nearby names are not. */
START_TEST(test_identity_spellings)
{
    setup s;
    mk(&s, false, false, "X-User", "X-Org", "X-Internal", "http://app");
    static const char *const yes[] = {"X-User", "x-user",     "X_User",    "X.USER",
                                      "XUSER",  "x--user",    "X-Org",     "x_org",
                                      "X.Org",  "X-INTERNAL", "x.internal"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        ck_assert_msg(fwd_client_header_stripped(s.r, yes[i], strlen(yes[i])), "kept %s", yes[i]);
    static const char *const no[] = {"X-Users", "X-User-Id",   "User",   "X-Orgs",
                                     "X-Debug", "X-Tenant-Id", "Accept", ""};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        ck_assert_msg(!fwd_client_header_stripped(s.r, no[i], strlen(no[i])), "stripped %s", no[i]);
    /* length-delimited: a name that is a prefix of a longer buffer */
    ck_assert(fwd_client_header_stripped(s.r, "X-Userxyz", 6));
    ck_assert(!fwd_client_header_stripped(s.r, "X-Us", 4));
    done(&s);
}
END_TEST

START_TEST(test_connection_listed)
{
    setup s;
    mk(&s, false, true, "X-User", "X-Org", NULL, "http://app");
    static const gate_header h[] = {
        H("Connection", "keep-alive, X_Drop_Me"),
        H("X-Drop-Me", "1"),
        H("x.drop.me", "2"),
        H("X-Keep-Me", "kept"),
        H("connection", "X-Also, X-User, X-Forwarded-For, X-Request-Id, Host, Authorization"),
        H("X-Also", "3"),
        H("Authorization", "Bearer t"),
        H("Host", "gw"),
        H("Conn_ection", "X-Keep-Me"), /* a look-alike lists nothing; it is dropped itself */
    };
    fwd_request in = base_req(h, sizeof(h) / sizeof(h[0]));
    in.x_user = "U";
    /* The gateway's own headers cannot be removed this way (F54). */
    ck_assert_str_eq(head(&s, &in), "GET /a/b HTTP/1.1\r\n"
                                    "Host: app\r\n"
                                    "X-Keep-Me: kept\r\n"
                                    "X-User: U\r\n"
                                    "X-Forwarded-For: 127.0.0.1\r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "X-Forwarded-Host: gw\r\n"
                                    "\r\n");
    done(&s);
}
END_TEST

/* A WebSocket handshake on a route that tunnels it: the gateway's own
 * Connection/Upgrade pair (never the client's, in any spelling), the client's
 * Sec-WebSocket-* as end-to-end headers. Without the flag, no upgrade is asked. */
START_TEST(test_websocket_handshake)
{
    setup s;
    mk(&s, false, true, "X-User", "X-Org", NULL, "http://app");
    static const gate_header h[] = {
        H("Host", "gw"),
        H("Connection", "Upgrade, X-Gone"),
        H("Upgrade", "websocket, h2c"),
        H("up_grade", "evil"),
        H("X-Gone", "1"),
        H("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        H("Sec-WebSocket-Version", "13"),
        H("Sec-WebSocket-Protocol", "chat"),
        H("X-User", "forged"),
    };
    fwd_request in = base_req(h, sizeof(h) / sizeof(h[0]));
    in.x_user = "U";
    in.websocket = true;
    ck_assert_str_eq(head(&s, &in), "GET /a/b HTTP/1.1\r\n"
                                    "Host: app\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                    "Sec-WebSocket-Version: 13\r\n"
                                    "Sec-WebSocket-Protocol: chat\r\n"
                                    "X-User: U\r\n"
                                    "X-Forwarded-For: 127.0.0.1\r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "X-Forwarded-Host: gw\r\n"
                                    "Connection: Upgrade\r\n"
                                    "Upgrade: websocket\r\n"
                                    "\r\n");
    /* what counts as a handshake */
    ck_assert_int_eq(fwd_upgrade_kind("GET", true, false, h, sizeof(h) / sizeof(h[0])),
                     FWD_UPG_WEBSOCKET);
    ck_assert_int_eq(fwd_upgrade_kind("POST", true, false, h, sizeof(h) / sizeof(h[0])),
                     FWD_UPG_OTHER);
    ck_assert_int_eq(fwd_upgrade_kind("GET", false, false, h, sizeof(h) / sizeof(h[0])),
                     FWD_UPG_OTHER);
    ck_assert_int_eq(fwd_upgrade_kind("GET", true, false, h + 2, 1),
                     FWD_UPG_OTHER); /* no Connection */
    ck_assert_int_eq(fwd_upgrade_kind("GET", true, false, h + 3, 6),
                     FWD_UPG_NONE); /* a look-alike */
    ck_assert_int_eq(fwd_upgrade_kind("GET", true, true, h, sizeof(h) / sizeof(h[0])),
                     FWD_UPG_OTHER); /* with a body */
    static const gate_header h2c[] = {H("Connection", "HTTP2-Settings, upgrade"),
                                      H("Upgrade", "h2c")};
    ck_assert_int_eq(fwd_upgrade_kind("GET", true, false, h2c, 2), FWD_UPG_OTHER);
    ck_assert(fwd_has_token(" a ,\tWebSocket ,b", 18, "websocket"));
    ck_assert(!fwd_has_token("websockets, x-websocket", 23, "websocket"));
    ck_assert(!fwd_has_token("", 0, "websocket"));
    in.websocket = false;
    const char *plain = head(&s, &in);
    ck_assert_ptr_null(strstr(plain, "Upgrade"));
    ck_assert_ptr_null(strstr(plain, "Connection"));
    ck_assert_ptr_nonnull(strstr(plain, "Sec-WebSocket-Key"));
    done(&s);
}
END_TEST

START_TEST(test_framing)
{
    static const struct {
        const char *method;
        fwd_body body;
        uint64_t len;
        const char *tail;
    } rows[] = {
        {"GET", FWD_BODY_NONE, 0, "X-Request-Id: rid-1\r\n\r\n"},
        {"DELETE", FWD_BODY_NONE, 0, "X-Request-Id: rid-1\r\n\r\n"},
        {"POST", FWD_BODY_NONE, 0, "X-Request-Id: rid-1\r\nContent-Length: 0\r\n\r\n"},
        {"PUT", FWD_BODY_NONE, 0, "X-Request-Id: rid-1\r\nContent-Length: 0\r\n\r\n"},
        {"PATCH", FWD_BODY_NONE, 0, "X-Request-Id: rid-1\r\nContent-Length: 0\r\n\r\n"},
        {"POST", FWD_BODY_LENGTH, 12345678901ull,
         "X-Request-Id: rid-1\r\nContent-Length: 12345678901\r\n\r\n"},
        {"DELETE", FWD_BODY_LENGTH, 3, "X-Request-Id: rid-1\r\nContent-Length: 3\r\n\r\n"},
        {"PUT", FWD_BODY_CHUNKED, 0, "X-Request-Id: rid-1\r\nTransfer-Encoding: chunked\r\n\r\n"},
    };
    static const gate_header h[] = {
        H("Content-Length", "999"),  H("Transfer-Encoding", "chunked"),
        H("Expect", "100-continue"), H("Content_Length", "5"),
        H("TE", "trailers"),
    };
    setup s;
    mk(&s, false, true, "X-User", "X-Org", NULL, "http://app");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        fwd_request in = base_req(h, sizeof(h) / sizeof(h[0]));
        in.method = rows[i].method;
        in.body = rows[i].body;
        in.body_len = rows[i].len;
        const char *got = head(&s, &in);
        size_t gl = strlen(got), tl = strlen(rows[i].tail);
        ck_assert_msg(gl > tl && strcmp(got + gl - tl, rows[i].tail) == 0, "%s: %s", rows[i].method,
                      got);
        ck_assert(!strstr(got, "999") && !strstr(got, "100-continue") && !strstr(got, ": 5"));
        ck_assert_uint_eq(count_name(got, "Content-Length") + count_name(got, "Transfer-Encoding"),
                          rows[i].body == FWD_BODY_NONE && i < 2 ? 0 : 1);
    }
    /* Framing is never defaulted. */
    fwd_request in = base_req(NULL, 0);
    in.body = FWD_BODY_UNSET;
    ck_assert_int_eq(fwd_build_head(s.r, &s.t, &in, &s.out), -1);
    ck_assert_int_eq(fwd_build_lines(s.r, &in, &s.out), -1);
    done(&s);
}
END_TEST

START_TEST(test_refused_input)
{
    setup s;
    mk(&s, false, true, "X-User", "X-Org", NULL, "http://app");
    static const gate_header bad[][1] = {
        {H("X-Bad", "a\r\nX-User: spoof")},
        {H("X-Bad ", "a")},
        {H("X:Bad", "a")},
        {H("", "a")},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fwd_request in = base_req(bad[i], 1);
        ag_buf_reset(&s.out);
        ck_assert_int_eq(fwd_build_head(s.r, &s.t, &in, &s.out), -1);
    }
    fwd_request in = base_req(NULL, 0);
    in.method = "GET /x";
    ck_assert_int_eq(fwd_build_head(s.r, &s.t, &in, &s.out), -1);
    in = base_req(NULL, 0);
    in.request_id = NULL;
    ck_assert_int_eq(fwd_build_head(s.r, &s.t, &in, &s.out), -1);
    fwd_target none;
    memset(&none, 0, sizeof(none));
    in = base_req(NULL, 0);
    ck_assert_int_eq(fwd_build_head(s.r, &none, &in, &s.out), -1);
    /* An invalid value refuses the request, Host included. */
    gate_header host[] = {{"Host", 4, "g\x01w", 3}};
    in = base_req(host, 1);
    ag_buf_reset(&s.out);
    ck_assert_int_eq(fwd_build_head(s.r, &s.t, &in, &s.out), -1);
    done(&s);
}
END_TEST

START_TEST(test_rules_errors)
{
    cfg_config c;
    memset(&c, 0, sizeof(c));
    char name[200];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    char *strip[1] = {name};
    c.identity.strip_headers = strip;
    c.identity.nstrip_headers = 1;
    char err[128] = "";
    ck_assert_ptr_null(fwd_rules_new(&c, err, sizeof(err)));
    ck_assert(strstr(err, "too long"));
    /* Defaults when the names are unset; a name without letters matches nothing. */
    strip[0] = ag_unconst("--");
    fwd_rules *r = fwd_rules_new(&c, err, sizeof(err));
    ck_assert_ptr_nonnull(r);
    ck_assert(fwd_client_header_stripped(r, "x_user", 6));
    ck_assert(!fwd_client_header_stripped(r, "-", 1));
    ck_assert(!fwd_client_header_stripped(r, "X-Other", 7));
    fwd_rules_free(r);
    fwd_rules_free(NULL);
}
END_TEST

/* ---- libcurl lines ----------------------------------------------------- */

static size_t split_lines(const ag_buf *b, const char **lines, size_t cap)
{
    size_t n = 0;
    for (size_t off = 0; off < b->len && n < cap; off += strlen(b->p + off) + 1)
        lines[n++] = b->p + off;
    return n;
}

START_TEST(test_curl_lines)
{
    setup s;
    mk(&s, false, true, "X-User", "X-Org", NULL, "https://app");
    static const gate_header h[] = {
        H("Host", "gw"),  H("X-Empty", ""),       H("X_Real_IP", "6.6.6.6"),
        H("Accept", "a"), H("Content-Type", "t"), H("Expect", "100-continue"),
    };
    fwd_request in = base_req(h, sizeof(h) / sizeof(h[0]));
    in.x_user = "U";
    in.method = "POST";
    in.body = FWD_BODY_LENGTH;
    in.body_len = 3;
    ck_assert_int_eq(fwd_build_lines(s.r, &in, &s.out), 0);
    const char *l[32];
    static const char *const want[] = {
        "X-Empty;",
        "Accept: a",
        "Content-Type: t",
        "X-User: U",
        "X-Forwarded-For: 127.0.0.1",
        "X-Forwarded-Proto: http",
        "X-Request-Id: rid-1",
        "X-Forwarded-Host: gw",
        "Expect:",
    };
    size_t n = split_lines(&s.out, l, 32);
    ck_assert_uint_eq(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(l[i], want[i]);
    /* Without a client Accept / Content-Type libcurl is told to add none. */
    ag_buf_reset(&s.out);
    in.nheaders = 1;
    ck_assert_int_eq(fwd_build_lines(s.r, &in, &s.out), 0);
    n = split_lines(&s.out, l, 32);
    ck_assert_str_eq(l[n - 3], "Expect:");
    ck_assert_str_eq(l[n - 2], "Accept:");
    ck_assert_str_eq(l[n - 1], "Content-Type:");
    /* No body: no Content-Type line; a look-alike Accept does not count. */
    static const gate_header h2[] = {H("Accept_", "a")};
    in = base_req(h2, 1);
    ag_buf_reset(&s.out);
    ck_assert_int_eq(fwd_build_lines(s.r, &in, &s.out), 0);
    n = split_lines(&s.out, l, 32);
    ck_assert_str_eq(l[n - 2], "Expect:");
    ck_assert_str_eq(l[n - 1], "Accept:");
    done(&s);
}
END_TEST

/* ---- response ---------------------------------------------------------- */

typedef struct rec {
    char got[2048];
    int stop_at;
    int calls;
} rec;

static int collect(void *ctx, const char *name, const char *value)
{
    rec *r = ctx;
    size_t n = strlen(r->got);
    snprintf(r->got + n, sizeof(r->got) - n, "%s=%s|", name, value);
    return ++r->calls == r->stop_at ? 7 : 0;
}

START_TEST(test_response_headers)
{
    static const char lines[] = "Content-Type: text/plain\r\n"
                                "Connection: keep-alive, X_Hop\r\n"
                                "Keep-Alive: timeout=5\r\n"
                                "Transfer-Encoding: chunked\r\n"
                                "Content-Length: 5\r\n"
                                "Content_Length: 5\r\n"
                                "X-Hop: 1\r\n"
                                "x.hop: 2\r\n"
                                "Proxy-Status: x\r\n"
                                "Upgrade: h2c\r\n"
                                "Host: h\r\n"
                                "X-Empty:   \r\n"
                                "Bad Name: v\r\n"
                                ": novalue\r\n"
                                "no colon\r\n"
                                "X-Ctl: a\x01"
                                "b\r\n"
                                "Set-Cookie: a=1\r\n"
                                "Set-Cookie: b=2\r\n"
                                "X-User: from-upstream\r\n"
                                "X-Request-Id: up\r\n"
                                "x_request_id: up2\r\n"
                                "X-Last:\tv \t\r\n"
                                "X-NoCR: z";
    rec r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(fwd_resp_headers(lines, sizeof(lines) - 1, collect, &r), 0);
    ck_assert_str_eq(r.got, "Content-Type=text/plain|Set-Cookie=a=1|Set-Cookie=b=2|"
                            "X-User=from-upstream|X-Last=v|X-NoCR=z|");
    /* The callback can stop the walk. */
    memset(&r, 0, sizeof(r));
    r.stop_at = 2;
    ck_assert_int_eq(fwd_resp_headers(lines, sizeof(lines) - 1, collect, &r), 7);
    ck_assert_int_eq(r.calls, 2);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(fwd_resp_headers(NULL, 0, collect, &r), 0);
    ck_assert_int_eq(r.calls, 0);
}
END_TEST

/* The gateway adds its own X-Request-Id to every response: the upstream's,
 * in any spelling, never reaches the client as a second one. */
START_TEST(test_response_request_id_is_ours)
{
    static const char *const names[] = {"X-Request-Id", "x-request-id", "X-REQUEST-ID",
                                        "X_Request_Id", "x.request.id", "XRequestId"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char lines[256];
        int n = snprintf(lines, sizeof(lines),
                         "Content-Type: text/plain\r\n%s: up-%zu\r\n"
                         "X-Request-Ids: kept\r\n",
                         names[i], i);
        rec r;
        memset(&r, 0, sizeof(r));
        ck_assert_int_eq(fwd_resp_headers(lines, (size_t)n, collect, &r), 0);
        ck_assert_msg(!strstr(r.got, "up-"), "%s relayed: %s", names[i], r.got);
        ck_assert_str_eq(r.got, "Content-Type=text/plain|X-Request-Ids=kept|");
    }
}
END_TEST

static int long_value(void *ctx, const char *name, const char *value)
{
    size_t *n = ctx;
    *n = strlen(value);
    return strcmp(name, "X-Big");
}

START_TEST(test_response_long_value)
{
    ag_buf b;
    ag_buf_init(&b);
    ag_buf_puts(&b, "X-Big: ");
    for (int i = 0; i < 20000; i++)
        ag_buf_append(&b, "v", 1);
    ag_buf_puts(&b, "\r\n");
    size_t n = 0;
    ck_assert_int_eq(fwd_resp_headers(b.p, b.len, long_value, &n), 0);
    ck_assert_uint_eq(n, 20000);
    ag_buf_free(&b);
}
END_TEST

/* ---- per-route rewriting ------------------------------------------------ */

static cfg_hdr_edit req_set[] = {{"X-Env", "prod"}};
static cfg_hdr_edit req_add[] = {{"X-Extra", "one"}};
static cfg_hdr_edit req_rm[] = {{"Cookie", NULL}};
static cfg_hdr_edit resp_set[] = {{"Cache-Control", "no-store"}};
static cfg_hdr_edit resp_add[] = {{"X-Added", "yes"}};
static cfg_hdr_edit resp_rm[] = {{"Server", NULL}};

/* Two routes: #0 with every rule, #1 with none. */
static void mk_routes(setup *s, cfg_route *routes, const char *url)
{
    memset(routes, 0, 2 * sizeof(*routes));
    routes[0].index = 0;
    routes[0].preserve_host = true;
    routes[0].strip_prefix = ag_unconst("/api");
    routes[0].req_hdrs = (cfg_hdr_rules){
        .set = req_set, .nset = 1, .add = req_add, .nadd = 1, .remove = req_rm, .nremove = 1};
    routes[0].resp_hdrs = (cfg_hdr_rules){
        .set = resp_set, .nset = 1, .add = resp_add, .nadd = 1, .remove = resp_rm, .nremove = 1};
    routes[1].index = 1;
    memset(s, 0, sizeof(*s));
    s->c.identity.forward_authorization = true;
    s->c.routes = routes;
    s->c.nroutes = 2;
    char err[128] = "";
    s->r = fwd_rules_new(&s->c, err, sizeof(err));
    ck_assert_msg(s->r != NULL, "fwd_rules_new: %s", err);
    ck_assert_int_eq(fwd_target_compile(url, &s->t, err, sizeof(err)), 0);
    ag_buf_init(&s->out);
}

START_TEST(test_route_request_rewrite)
{
    setup s;
    cfg_route routes[2];
    mk_routes(&s, routes, "http://up:8081/base");
    static const gate_header h[] = {
        H("Host", "gw.example"), H("Cookie", "a=b"),     H("X_Env", "client"),
        H("X-Env", "client"),    H("X-Extra", "client"), H("Accept", "*/*"),
    };
    fwd_request in = base_req(h, sizeof(h) / sizeof(h[0]));
    in.path = "/api/u/7";
    in.path_len = 8;
    in.route = &routes[0];
    ck_assert_str_eq(head(&s, &in), "GET /base/u/7 HTTP/1.1\r\n"
                                    "Host: gw.example\r\n"
                                    "X-Extra: client\r\n"
                                    "Accept: */*\r\n"
                                    "X-Env: prod\r\n"
                                    "X-Extra: one\r\n"
                                    "X-Forwarded-For: 127.0.0.1\r\n"
                                    "X-Forwarded-Proto: http\r\n"
                                    "X-Request-Id: rid-1\r\n"
                                    "X-Forwarded-Host: gw.example\r\n"
                                    "\r\n");
    /* The route without rules: the upstream's Host, the whole path. */
    in.route = &routes[1];
    const char *plain = head(&s, &in);
    static const char plain_start[] = "GET /base/api/u/7 HTTP/1.1\r\nHost: up:8081\r\n";
    ck_assert_msg(strncmp(plain, plain_start, sizeof(plain_start) - 1) == 0, "%s", plain);
    ck_assert(strstr(plain, "Cookie: a=b\r\n") && strstr(plain, "X-Env: client\r\n"));
    /* libcurl's lines carry the client's Host for preserve_host. */
    in.route = &routes[0];
    ag_buf_reset(&s.out);
    ck_assert_int_eq(fwd_build_lines(s.r, &in, &s.out), 0);
    const char *l[32];
    size_t n = split_lines(&s.out, l, 32);
    bool host = false;
    for (size_t i = 0; i < n; i++)
        host |= strcmp(l[i], "Host: gw.example") == 0;
    ck_assert(host);
    /* A route of another configuration is refused, never forwarded unchanged. */
    cfg_route stranger = routes[0];
    in.route = &stranger;
    ag_buf_reset(&s.out);
    ck_assert_int_eq(fwd_build_head(s.r, &s.t, &in, &s.out), -1);
    ag_buf_reset(&s.out);
    ck_assert_int_eq(fwd_build_lines(s.r, &in, &s.out), -1);
    done(&s);
}
END_TEST

START_TEST(test_route_strip_prefix)
{
    setup s;
    cfg_route routes[2];
    mk_routes(&s, routes, "http://up");
    fwd_request in = base_req(NULL, 0);
    in.route = &routes[0];
    static const struct {
        const char *in, *out;
    } ok[] = {{"/api", "/"}, {"/api/", "/"}, {"/api/x", "/x"}, {"/api/x/y", "/x/y"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *p;
        size_t len;
        in.path = ok[i].in;
        in.path_len = strlen(ok[i].in);
        ck_assert_int_eq(fwd_path(s.r, &in, &p, &len), 0);
        ck_assert_uint_eq(len, strlen(ok[i].out));
        ck_assert(memcmp(p, ok[i].out, len) == 0);
    }
    static const char *const bad[] = {"/apix", "/ap", "/", "/API/x", "/x/api"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *p;
        size_t len;
        in.path = bad[i];
        in.path_len = strlen(bad[i]);
        ck_assert_msg(fwd_path(s.r, &in, &p, &len) == -1, "%s", bad[i]);
        ag_buf_reset(&s.out);
        ck_assert_int_eq(fwd_build_head(s.r, &s.t, &in, &s.out), -1);
    }
    done(&s);
}
END_TEST

START_TEST(test_route_response_rewrite)
{
    setup s;
    cfg_route routes[2];
    mk_routes(&s, routes, "http://up");
    static const char lines[] = "Content-Type: text/plain\r\n"
                                "Server: x\r\n"
                                "server_: y\r\n"
                                "Cache-Control: public\r\n"
                                "Access-Control-Allow-Origin: *\r\n"
                                "X-Added: upstream\r\n";
    rec r;
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(fwd_resp_headers_route(s.r, &routes[0], lines, sizeof(lines) - 1, collect, &r),
                     0);
    ck_assert_str_eq(r.got, "Content-Type=text/plain|Access-Control-Allow-Origin=*|"
                            "X-Added=upstream|Cache-Control=no-store|X-Added=yes|");
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(fwd_resp_headers_route(s.r, &routes[1], lines, sizeof(lines) - 1, collect, &r),
                     0);
    ck_assert_str_eq(r.got, "Content-Type=text/plain|Server=x|server_=y|Cache-Control=public|"
                            "Access-Control-Allow-Origin=*|X-Added=upstream|");
    cfg_route stranger = routes[1];
    ck_assert_int_eq(fwd_resp_headers_route(s.r, &stranger, lines, sizeof(lines) - 1, collect, &r),
                     -1);
    done(&s);
    /* With cors on the route the gateway's Access-Control-* replace the upstream's. */
    const char *origins[] = {"https://app.example.com"};
    cors_spec cs = {.origins = (char **)(uintptr_t)origins, .norigins = 1};
    char err[128];
    routes[1].cors = cors_compile(&cs, err, sizeof(err));
    ck_assert_ptr_nonnull(routes[1].cors);
    s.r = fwd_rules_new(&s.c, err, sizeof(err));
    ck_assert_ptr_nonnull(s.r);
    memset(&r, 0, sizeof(r));
    ck_assert_int_eq(fwd_resp_headers_route(s.r, &routes[1], lines, sizeof(lines) - 1, collect, &r),
                     0);
    ck_assert_ptr_null(strstr(r.got, "Access-Control"));
    fwd_rules_free(s.r);
    cors_free(routes[1].cors);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("fwd");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_target_compile);
    tcase_add_test(tc, test_target_errors);
    tcase_add_test(tc, test_head_exact);
    tcase_add_test(tc, test_head_host_and_base);
    tcase_add_test(tc, test_hole1_never_forwarded);
    tcase_add_test(tc, test_hole1_trusted_only_exact_spelling);
    tcase_add_test(tc, test_authorization);
    tcase_add_test(tc, test_configured_identity_names);
    tcase_add_test(tc, test_identity_spellings);
    tcase_add_test(tc, test_connection_listed);
    tcase_add_test(tc, test_framing);
    tcase_add_test(tc, test_websocket_handshake);
    tcase_add_test(tc, test_refused_input);
    tcase_add_test(tc, test_rules_errors);
    tcase_add_test(tc, test_curl_lines);
    tcase_add_test(tc, test_response_headers);
    tcase_add_test(tc, test_response_long_value);
    tcase_add_test(tc, test_response_request_id_is_ours);
    tcase_add_test(tc, test_route_request_rewrite);
    tcase_add_test(tc, test_route_strip_prefix);
    tcase_add_test(tc, test_route_response_rewrite);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
