/* libFuzzer target: the pure half of the key fetch (src/kmeta.h), i.e. what
 * PropelAuth's auth URL answers and the URLs and headers the gateway builds
 * from configuration (docs/security.md A19, A20).
 * Input: byte 0 picks the function (mod 5), the rest is its argument:
 *   0  a metadata body as received;
 *   1  a PEM text, wrapped as {"verifier_key_pem": <it>} (reaches the PEM
 *      checks without having to find valid JSON first);
 *   2  auth_url, then after the first NUL an API key;
 *   3  api_base_url;
 *   4  8 bytes of HTTP status, 4 of attempt, 4 of jitter.
 * Properties (each call is made twice and must give the same verdict, message
 * and result):
 *  - keys_parse_metadata answers only KEYS_OK or KEYS_FATAL; KEYS_OK exactly
 *    when a key is handed out, with a 16-lowercase-hex fingerprint, and the
 *    key is usable: a token signed by fuzz/keys/test-private.pem passes its
 *    signature check under it exactly when it is the test key (by
 *    fingerprint), and fails as JWT_BAD_SIGNATURE under any other key.
 *    KEYS_FATAL leaves *out NULL and a non-empty one-line message.
 *  - keys_auth_host gives exactly the bytes between "://" and the first of
 *    "/?#", visible ASCII, no '@', at most KEYS_MAX_HOST_BYTES; it never
 *    writes past a short buffer. keys_derive_issuer succeeds exactly then and
 *    is "https://" + that host. keys_header_lines succeeds exactly for a
 *    non-empty visible-ASCII key of at most KEYS_MAX_API_KEY_BYTES and gives
 *    exactly the two lines; on failure both lines are NULL.
 *  - keys_metadata_url: on success the URL is the input without trailing
 *    slashes + the metadata path, at most KEYS_MAX_URL_BYTES, no byte <= 0x20
 *    or >= 0x7f, no '?' or '#', no '@' in the authority; *tls says https; a
 *    plain-http URL's authority is a loopback host (localhost, 127.0.0.0/8,
 *    [::1]) with at most ":" and decimal digits after it. It never writes
 *    past a buffer one byte short.
 *  - keys_classify_status is total: every status maps to one of the three
 *    outcomes, KEYS_OK exactly for 200, KEYS_FATAL exactly for 400/401/404,
 *    with a one-line message naming the URL.
 *  - keys_backoff_ms lies in [base/2, base] with base = 500 ms doubling per
 *    attempt up to 60000 ms, so always in [250, 60000]; its lowest and highest
 *    possible values never decrease from one attempt to the next. */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "kmeta.h"

#define METADATA_PATH "/api/v1/token_verification_metadata"
#define URL_IN "https://api.example.test" METADATA_PATH

static const char test_pub_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEApIPpsg0nMcsMM/7ge9id\n"
    "35FtD24YSevo5h+m7K3hoggBvNGaqAC3H2NTiQ0ijEia9rldnV57/e0RLC6ZjsTN\n"
    "yK4rJg8vqae0x6HJ5qtgXSUFXo9jav7N4TSMBAl35FpsvkaRAQXNzOXwd0QbFd8R\n"
    "eBlZ8f1A0YuXAvFqWiALS6OgaKOqgO8334Q6lHtro5tgavI5wOifNX2iKUEX54FO\n"
    "WA5MxAafgW2KQVUQ0C4c9RGKKfgNEKSuJqL1aJdEBBKRKSS8/FVXEwfo41U5+dms\n"
    "QXrq+auQKYTnZypMjHKk/Jni+zASzg+2UqZt2Y0RO4EJc0Cru0VIEt372Xg/CnJA\n"
    "7QIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

/* RS256 over {"sub":"u1","iss":"https://auth.example.test","iat":1700000000,
 * "exp":1700001800} with fuzz/keys/test-private.pem (make_seeds.py's jws()). */
static const char signed_token[] =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ1MSIsImlzcyI6Imh0dHBzOi8vYXV0aC5leGFtcGxlLnRlc3QiLCJpYXQiOjE3MDAwMDAwMDAsImV4"
    "cCI6MTcwMDAwMTgwMH0."
    "cHt0hIcUJi-VSp5_XFpqm6VYsAn2YyACdwYLs2fe-pkLKKDTuGT37DFxjkofIq2T9bXDYSvuMWHyPxtGBR2nwM6M4_"
    "5W6WTVNwKLY9mp6rMHVPcimRwknbwXnSdmHYHC-EN35pk8O-qwws0adTgTBfIwKehF65l-1Trwk9yBKLSf_"
    "VsEsqo_S2h5Y6bHZn2XSnLElS63eaRrjXyZOYxD63ksnMrUlW7iZN3pHI9mwPTXItmEPYcvYTnLyY_"
    "ByoaZTmT18xwT4xLPShnl0sz1QpQzHQ8sV6ypqSmK5I9ZTDdQjT5LxaoORKH122ZXfulMfu3YqPVucl1Vn6fdoFvpMA";

static char test_fp[32];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256] = "";
    jwt_key *k = NULL;
    if (jwt_key_from_pem(test_pub_pem, sizeof(test_pub_pem) - 1, &k, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_kmeta: test key refused: %s\n", err);
        abort();
    }
    snprintf(test_fp, sizeof(test_fp), "%s", jwt_key_fingerprint(k));
    /* The token must verify under the test key, or the usability check below
     * would prove nothing. */
    jwt_key *const keys[] = {k};
    jwt_params p = {.keys = keys,
                    .nkeys = 1,
                    .issuer = "https://auth.example.test",
                    .leeway = 60,
                    .now = 1700000100,
                    .max_token_bytes = 16384};
    json_t *claims = NULL;
    jwt_status s = jwt_verify(signed_token, sizeof(signed_token) - 1, &p, &claims);
    json_decref(claims);
    if (s == JWT_BAD_SIGNATURE || s == JWT_MALFORMED || s == JWT_BAD_ALG) {
        fprintf(stderr, "fuzz_kmeta: the signed token does not pass its signature check (%s)\n",
                jwt_status_reason(s));
        abort();
    }
    jwt_key_unref(k);
    return 0;
}

static bool one_line(const char *s)
{
    return s[0] != '\0' && strpbrk(s, "\r\n") == NULL;
}

static bool visible(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static bool lower_hex16(const char *s)
{
    if (strlen(s) != 16)
        return false;
    for (size_t i = 0; i < 16; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ---- metadata bodies ---------------------------------------------------- */

static void check_usable(jwt_key *k)
{
    jwt_key *const keys[] = {k};
    jwt_params p = {.keys = keys,
                    .nkeys = 1,
                    .issuer = "https://auth.example.test",
                    .leeway = 60,
                    .now = 1700000100,
                    .max_token_bytes = 16384};
    json_t *claims = NULL;
    jwt_status s = jwt_verify(signed_token, sizeof(signed_token) - 1, &p, &claims);
    json_decref(claims);
    if (strcmp(jwt_key_fingerprint(k), test_fp) == 0)
        FUZZ_CHECK(s != JWT_BAD_SIGNATURE && s != JWT_MALFORMED && s != JWT_BAD_ALG);
    else
        FUZZ_CHECK(s == JWT_BAD_SIGNATURE);
}

static void check_body(const char *body, size_t len)
{
    jwt_key *k1 = (jwt_key *)1, *k2 = (jwt_key *)1;
    char m1[512] = "", m2[512] = "";
    keys_outcome o1 = keys_parse_metadata(body, len, &k1, m1, sizeof(m1));
    keys_outcome o2 = keys_parse_metadata(body, len, &k2, m2, sizeof(m2));
    FUZZ_CHECK(o1 == o2 && strcmp(m1, m2) == 0);
    FUZZ_CHECK(o1 == KEYS_OK || o1 == KEYS_FATAL);
    if (o1 == KEYS_OK) {
        FUZZ_CHECK(k1 != NULL && k2 != NULL && k1 != k2);
        FUZZ_CHECK(lower_hex16(jwt_key_fingerprint(k1)));
        FUZZ_CHECK(strcmp(jwt_key_fingerprint(k1), jwt_key_fingerprint(k2)) == 0);
        FUZZ_CHECK(len <= KEYS_MAX_RESPONSE_BYTES);
        check_usable(k1);
    } else {
        FUZZ_CHECK(k1 == NULL && k2 == NULL);
        FUZZ_CHECK(one_line(m1));
    }
    /* No message buffer at all: same verdict, nothing written. */
    jwt_key *k3 = NULL;
    FUZZ_CHECK(keys_parse_metadata(body, len, &k3, NULL, 0) == o1);
    FUZZ_CHECK((k3 != NULL) == (o1 == KEYS_OK));
    jwt_key_unref(k1);
    jwt_key_unref(k2);
    jwt_key_unref(k3);
}

static void check_pem(const char *pem, size_t len)
{
    json_t *s = json_stringn(pem, len); /* NULL unless valid UTF-8 */
    json_t *o = json_object();
    char *body = NULL;
    FUZZ_CHECK(o != NULL);
    if (s && json_object_set_new(o, "verifier_key_pem", s) == 0)
        body = json_dumps(o, JSON_COMPACT);
    if (body)
        check_body(body, strlen(body));
    else
        check_body(pem, len);
    free(body);
    json_decref(o);
}

/* ---- auth_url, issuer, header lines ------------------------------------- */

static void check_auth_url(const char *url, const char *key)
{
    char h1[KEYS_MAX_HOST_BYTES + 1], h2[KEYS_MAX_HOST_BYTES + 1];
    char e1[256] = "", e2[256] = "";
    int r1 = keys_auth_host(url, h1, sizeof(h1), e1, sizeof(e1));
    int r2 = keys_auth_host(url, h2, sizeof(h2), e2, sizeof(e2));
    FUZZ_CHECK(r1 == r2 && strcmp(e1, e2) == 0);
    FUZZ_CHECK(r1 == 0 || r1 == -1);

    /* What the host must be, read independently. */
    const char *sep = strstr(url, "://");
    bool want = sep && sep != url;
    size_t n = want ? strcspn(sep + 3, "/?#") : 0;
    want = want && n > 0 && n <= KEYS_MAX_HOST_BYTES && visible(sep + 3, n) &&
           memchr(sep + 3, '@', n) == NULL;
    FUZZ_CHECK((r1 == 0) == want);
    if (r1 == 0) {
        FUZZ_CHECK(strcmp(h1, h2) == 0 && strlen(h1) == n && memcmp(h1, sep + 3, n) == 0);
        /* exactly big enough, then one byte short, on the heap so that ASan sees
         * a write past the end */
        char *tight = malloc(n + 1);
        FUZZ_CHECK(tight != NULL);
        FUZZ_CHECK(keys_auth_host(url, tight, n + 1, NULL, 0) == 0 && strcmp(tight, h1) == 0);
        FUZZ_CHECK(keys_auth_host(url, tight, n, e2, sizeof(e2)) == -1 && one_line(e2));
        free(tight);
    } else {
        FUZZ_CHECK(one_line(e1));
    }

    char iss[KEYS_MAX_HOST_BYTES + 16];
    char ie[256] = "";
    int ri = keys_derive_issuer(url, iss, sizeof(iss), ie, sizeof(ie));
    FUZZ_CHECK(ri == r1);
    if (ri == 0) {
        FUZZ_CHECK(strncmp(iss, "https://", 8) == 0 && strcmp(iss + 8, h1) == 0);
        FUZZ_CHECK(visible(iss, strlen(iss)));
        size_t need = strlen(iss) + 1;
        char *tight = malloc(need - 1);
        FUZZ_CHECK(tight != NULL);
        FUZZ_CHECK(keys_derive_issuer(url, tight, need - 1, ie, sizeof(ie)) == -1 && one_line(ie));
        free(tight);
    } else {
        FUZZ_CHECK(one_line(ie));
    }

    /* Header lines: the host is the derived one when there is one, else the raw url. */
    const char *host = r1 == 0 ? h1 : url;
    char *a = (char *)1, *h = (char *)1;
    char he[256] = "";
    int rh = keys_header_lines(key, host, &a, &h, he, sizeof(he));
    size_t klen = strlen(key);
    bool hw = klen > 0 && klen <= KEYS_MAX_API_KEY_BYTES && visible(key, klen) && host[0] &&
              visible(host, strlen(host));
    FUZZ_CHECK((rh == 0) == hw);
    if (rh == 0) {
        FUZZ_CHECK(a && h);
        FUZZ_CHECK(strncmp(a, "Authorization: Bearer ", 22) == 0 && strcmp(a + 22, key) == 0);
        FUZZ_CHECK(strncmp(h, "X-Propelauth-url: ", 18) == 0 && strcmp(h + 18, host) == 0);
    } else {
        FUZZ_CHECK(a == NULL && h == NULL && one_line(he));
    }
    free(a);
    free(h);
}

/* ---- the metadata URL --------------------------------------------------- */

/* RFC 3986 port = *DIGIT: "host:" is the default port. */
static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Authority "host[:port]" naming a loopback host, read independently of kmeta.c. */
static bool loopback_authority(const char *a, size_t n)
{
    char host[64];
    size_t hlen;
    const char *after;
    if (n > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', n);
        if (!close)
            return false;
        hlen = (size_t)(close - a - 1);
        if (hlen >= sizeof(host))
            return false;
        memcpy(host, a + 1, hlen);
        host[hlen] = '\0';
        struct in6_addr v6;
        if (inet_pton(AF_INET6, host, &v6) != 1 || !IN6_IS_ADDR_LOOPBACK(&v6))
            return false;
        after = close + 1;
    } else {
        hlen = strcspn(a, ":");
        if (hlen > n)
            hlen = n;
        if (hlen == 0 || hlen >= sizeof(host))
            return false;
        memcpy(host, a, hlen);
        host[hlen] = '\0';
        struct in_addr v4;
        bool lh = strcasecmp(host, "localhost") == 0;
        bool v4lo = inet_pton(AF_INET, host, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
        if (!lh && !v4lo)
            return false;
        after = a + hlen;
    }
    size_t rest = n - (size_t)(after - a);
    return rest == 0 || (after[0] == ':' && digits(after + 1, rest - 1));
}

static void check_metadata_url(const char *base)
{
    char u1[KEYS_MAX_URL_BYTES + 64], u2[KEYS_MAX_URL_BYTES + 64];
    char e1[256] = "", e2[256] = "";
    bool t1 = false, t2 = true;
    int r1 = keys_metadata_url(base, u1, sizeof(u1), &t1, e1, sizeof(e1));
    int r2 = keys_metadata_url(base, u2, sizeof(u2), &t2, e2, sizeof(e2));
    FUZZ_CHECK(r1 == r2 && strcmp(e1, e2) == 0);
    FUZZ_CHECK(r1 == 0 || r1 == -1);
    if (r1 != 0) {
        FUZZ_CHECK(one_line(e1));
        return;
    }
    FUZZ_CHECK(strcmp(u1, u2) == 0 && t1 == t2);
    size_t ulen = strlen(u1);
    FUZZ_CHECK(ulen <= KEYS_MAX_URL_BYTES && visible(u1, ulen));
    FUZZ_CHECK(strpbrk(u1, "?#") == NULL);
    size_t plen = strlen(METADATA_PATH);
    FUZZ_CHECK(ulen >= plen && strcmp(u1 + ulen - plen, METADATA_PATH) == 0);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    FUZZ_CHECK(ulen - plen == blen && memcmp(u1, base, blen) == 0);
    const char *auth;
    if (t1) {
        FUZZ_CHECK(strncmp(u1, "https://", 8) == 0);
        auth = u1 + 8;
    } else {
        FUZZ_CHECK(strncmp(u1, "http://", 7) == 0);
        auth = u1 + 7;
    }
    size_t alen = strcspn(auth, "/");
    FUZZ_CHECK(alen > 0 && memchr(auth, '@', alen) == NULL);
    if (!t1)
        FUZZ_CHECK(loopback_authority(auth, alen));
    /* a buffer one byte short is refused, not overrun */
    char *tight = malloc(ulen);
    FUZZ_CHECK(tight != NULL);
    bool t3 = false;
    FUZZ_CHECK(keys_metadata_url(base, tight, ulen, &t3, e2, sizeof(e2)) == -1 && one_line(e2));
    free(tight);
}

/* ---- status and backoff ------------------------------------------------- */

static uint64_t nominal(unsigned attempt)
{
    uint64_t base = KEYS_BACKOFF_MIN_MS;
    for (unsigned i = 0; i < attempt && i < 16; i++)
        base *= 2;
    return base < KEYS_BACKOFF_MAX_MS ? base : KEYS_BACKOFF_MAX_MS;
}

static void check_status_backoff(const uint8_t *d, size_t n)
{
    uint8_t b[16] = {0};
    memcpy(b, d, n < sizeof(b) ? n : sizeof(b));
    uint64_t sv = 0;
    for (int i = 0; i < 8; i++)
        sv = sv << 8 | b[i];
    long status = (long)sv;
    if (b[0] & 0x80)
        status = (long)(int16_t)(sv & 0xffff); /* half the time a small one, near real codes */
    else if (b[0] & 0x40)
        status = (long)(sv & 0x3ff);
    char m1[512] = "", m2[512] = "";
    keys_outcome o1 = keys_classify_status(status, URL_IN, m1, sizeof(m1));
    keys_outcome o2 = keys_classify_status(status, URL_IN, m2, sizeof(m2));
    FUZZ_CHECK(o1 == o2 && strcmp(m1, m2) == 0);
    FUZZ_CHECK(o1 == KEYS_OK || o1 == KEYS_FATAL || o1 == KEYS_RETRY);
    FUZZ_CHECK((o1 == KEYS_OK) == (status == 200));
    FUZZ_CHECK((o1 == KEYS_FATAL) == (status == 400 || status == 401 || status == 404));
    FUZZ_CHECK(one_line(m1) && strstr(m1, URL_IN) != NULL);
    FUZZ_CHECK(keys_classify_status(status, URL_IN, NULL, 0) == o1);

    unsigned attempt = (unsigned)b[8] << 24 | (unsigned)b[9] << 16 | (unsigned)b[10] << 8 | b[11];
    if (b[8] & 0x80)
        attempt &= 31; /* half the time around the doubling steps */
    uint32_t rnd = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
    uint64_t base = nominal(attempt);
    uint64_t v = keys_backoff_ms(attempt, rnd);
    FUZZ_CHECK(v == keys_backoff_ms(attempt, rnd));
    FUZZ_CHECK(v >= base / 2 && v <= base);
    FUZZ_CHECK(v >= KEYS_BACKOFF_MIN_MS / 2 && v <= KEYS_BACKOFF_MAX_MS);
    /* the lowest and highest possible delays: reached, and never smaller next time */
    uint64_t lo = keys_backoff_ms(attempt, 0), hi = keys_backoff_ms(attempt, (uint32_t)(base / 2));
    FUZZ_CHECK(lo == base / 2 && hi == base);
    if (attempt < UINT32_MAX) {
        uint64_t nbase = nominal(attempt + 1);
        FUZZ_CHECK(keys_backoff_ms(attempt + 1, 0) >= lo);
        FUZZ_CHECK(keys_backoff_ms(attempt + 1, (uint32_t)(nbase / 2)) >= hi);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0:
        check_body((const char *)d, n);
        break;
    case 1:
        check_pem((const char *)d, n);
        break;
    case 2: {
        /* auth_url, NUL, API key; both NUL-terminated copies */
        char *buf = malloc(n + 2);
        FUZZ_CHECK(buf != NULL);
        memcpy(buf, d, n);
        buf[n] = buf[n + 1] = '\0';
        size_t ulen = strlen(buf);
        check_auth_url(buf, buf + ulen + 1 <= buf + n ? buf + ulen + 1 : buf + n);
        free(buf);
        break;
    }
    case 3: {
        char *buf = malloc(n + 1);
        FUZZ_CHECK(buf != NULL);
        memcpy(buf, d, n);
        buf[n] = '\0';
        check_metadata_url(buf);
        free(buf);
        break;
    }
    default:
        check_status_backoff(d, n);
        break;
    }
    return 0;
}
