/* kmeta: see kmeta.h. Nothing here may do I/O, so that it can be unit-tested
 * and fuzzed alone. */
#include "kmeta.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define METADATA_PATH "/api/v1/token_verification_metadata"

void km_msg(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || msglen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

static bool visible_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* ---- URL and header derivation ----------------------------------------- */

int keys_auth_host(const char *auth_url, char *out, size_t outlen, char *err, size_t errlen)
{
    int rc = -1;
    const char *sep = auth_url ? strstr(auth_url, "://") : NULL;
    if (!sep || sep == auth_url) {
        km_msg(err, errlen, "auth_url has no scheme and host (want https://HOST[:PORT])");
        goto out;
    }
    const char *host = sep + 3;
    size_t n = strcspn(host, "/?#");
    if (n == 0) {
        km_msg(err, errlen, "auth_url has no host");
        goto out;
    }
    if (memchr(host, '@', n)) {
        km_msg(err, errlen, "auth_url must not contain credentials (user@)");
        goto out;
    }
    /* The host goes into a request header and the issuer comparison verbatim. */
    if (!visible_ascii(host, n)) {
        km_msg(err, errlen, "auth_url host contains a space or control byte");
        goto out;
    }
    if (n > KEYS_MAX_HOST_BYTES || n + 1 > outlen) {
        km_msg(err, errlen, "auth_url host is too long");
        goto out;
    }
    memcpy(out, host, n);
    out[n] = '\0';
    rc = 0;
out:
    return rc;
}

int keys_derive_issuer(const char *auth_url, char *out, size_t outlen, char *err, size_t errlen)
{
    char host[KEYS_MAX_HOST_BYTES + 1];
    if (keys_auth_host(auth_url, host, sizeof(host), err, errlen) != 0)
        return -1;
    int n = snprintf(out, outlen, "https://%s", host);
    if (n < 0 || (size_t)n >= outlen) {
        km_msg(err, errlen, "issuer is too long");
        return -1;
    }
    return 0;
}

/* Host part of an authority (no port, no brackets), for the loopback check.
 * Only nothing or ":" and digits may follow the host: "[::1]x" or
 * "localhost:80x" names no host for certain, so no loopback host either. */
static bool authority_is_loopback(const char *auth, size_t n)
{
    char host[KEYS_MAX_HOST_BYTES + 1];
    size_t hlen;
    const char *end = auth + n, *after;
    if (n > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', n);
        if (!close)
            return false;
        hlen = (size_t)(close - auth - 1);
        after = close + 1;
        auth++;
    } else {
        const char *colon = memchr(auth, ':', n);
        hlen = colon ? (size_t)(colon - auth) : n;
        after = auth + hlen;
    }
    if (hlen == 0 || hlen > KEYS_MAX_HOST_BYTES)
        return false;
    if (after < end && *after++ != ':')
        return false;
    for (; after < end; after++)
        if (*after < '0' || *after > '9')
            return false;
    memcpy(host, auth, hlen);
    host[hlen] = '\0';
    if (ag_streq_ci(host, hlen, "localhost"))
        return true;
    unsigned char a4[4], a6[16];
    if (inet_pton(AF_INET, host, a4) == 1)
        return a4[0] == 127;
    if (inet_pton(AF_INET6, host, a6) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(a6, one, sizeof(one)) == 0;
    }
    return false;
}

int keys_metadata_url(const char *api_base_url, char *out, size_t outlen, bool *tls, char *err,
                      size_t errlen)
{
    int rc = -1;
    const char *rest;
    bool is_tls;
    if (!api_base_url) {
        km_msg(err, errlen, "api_base_url is missing");
        goto out;
    }
    if (strncmp(api_base_url, "https://", 8) == 0) {
        rest = api_base_url + 8;
        is_tls = true;
    } else if (strncmp(api_base_url, "http://", 7) == 0) {
        rest = api_base_url + 7;
        is_tls = false;
    } else {
        km_msg(err, errlen, "api_base_url must start with https://");
        goto out;
    }
    size_t alen = strcspn(rest, "/?#");
    if (alen == 0) {
        km_msg(err, errlen, "api_base_url has no host");
        goto out;
    }
    if (strpbrk(rest, "?#") || memchr(rest, '@', alen)) {
        km_msg(err, errlen, "api_base_url must not contain credentials, a query or a fragment");
        goto out;
    }
    if (!visible_ascii(rest, strlen(rest))) {
        km_msg(err, errlen, "api_base_url contains a space or control byte");
        goto out;
    }
    /* The API key travels in this request: plain http only where nobody can listen in. */
    if (!is_tls && !authority_is_loopback(rest, alen)) {
        km_msg(err, errlen,
               "api_base_url must use https:// (plain http is allowed only to a loopback host)");
        goto out;
    }
    size_t blen = strlen(api_base_url);
    while (blen > 0 && api_base_url[blen - 1] == '/')
        blen--;
    int n = snprintf(out, outlen, "%.*s%s", (int)blen, api_base_url, METADATA_PATH);
    if (n < 0 || (size_t)n >= outlen || (size_t)n > KEYS_MAX_URL_BYTES) {
        km_msg(err, errlen, "api_base_url is too long");
        goto out;
    }
    *tls = is_tls;
    rc = 0;
out:
    return rc;
}

int keys_header_lines(const char *api_key, const char *host, char **auth_line, char **host_line,
                      char *err, size_t errlen)
{
    int rc = -1;
    ag_buf a, h;
    ag_buf_init(&a);
    ag_buf_init(&h);
    *auth_line = *host_line = NULL;
    size_t klen = api_key ? strlen(api_key) : 0;
    if (klen == 0) {
        km_msg(err, errlen, "the API key is empty");
        goto out;
    }
    if (klen > KEYS_MAX_API_KEY_BYTES) {
        km_msg(err, errlen, "the API key is longer than %d bytes", KEYS_MAX_API_KEY_BYTES);
        goto out;
    }
    if (!visible_ascii(api_key, klen)) {
        km_msg(err, errlen, "the API key contains a space, control or non-ASCII byte");
        goto out;
    }
    if (!host || !host[0] || !visible_ascii(host, strlen(host))) {
        km_msg(err, errlen, "auth_url host is empty or not printable");
        goto out;
    }
    if (ag_buf_printf(&a, "Authorization: Bearer %s", api_key) != 0 ||
        ag_buf_printf(&h, "X-Propelauth-url: %s", host) != 0) {
        km_msg(err, errlen, "out of memory");
        goto out;
    }
    *auth_line = ag_buf_steal(&a);
    *host_line = ag_buf_steal(&h);
    rc = 0;
out:
    if (a.p)
        OPENSSL_cleanse(a.p, a.cap);
    ag_buf_free(&a);
    ag_buf_free(&h);
    return rc;
}

/* ---- response meaning ---------------------------------------------------- */

keys_outcome keys_classify_status(long status, const char *url, char *msg, size_t msglen)
{
    switch (status) {
    case 200:
        km_msg(msg, msglen, "200 from %s", url);
        return KEYS_OK;
    case 400:
        km_msg(msg, msglen, "bad request (400 from %s)", url);
        return KEYS_FATAL;
    case 401:
        km_msg(msg, msglen, "API key is incorrect (401 from %s)", url);
        return KEYS_FATAL;
    case 404:
        km_msg(msg, msglen, "auth_url is incorrect (404 from %s)", url);
        return KEYS_FATAL;
    case 429:
        km_msg(msg, msglen, "rate limited (429 from %s)", url);
        return KEYS_RETRY;
    default:
        break;
    }
    if (status >= 500 && status <= 599)
        km_msg(msg, msglen, "PropelAuth is unavailable (%ld from %s)", status, url);
    else
        km_msg(msg, msglen, "unexpected status %ld from %s", status, url);
    return KEYS_RETRY;
}

keys_outcome keys_parse_metadata(const char *body, size_t len, jwt_key **out, char *msg,
                                 size_t msglen)
{
    keys_outcome rc = KEYS_FATAL;
    json_error_t jerr;
    json_t *root = NULL;
    char kerr[256];
    *out = NULL;
    if (len > KEYS_MAX_RESPONSE_BYTES) {
        km_msg(msg, msglen, "response is larger than %d bytes", KEYS_MAX_RESPONSE_BYTES);
        goto out;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        km_msg(msg, msglen, "response is not JSON (line %d: %s)", jerr.line, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        km_msg(msg, msglen, "response is not a JSON object");
        goto out;
    }
    json_t *pem = json_object_get(root, "verifier_key_pem");
    if (!json_is_string(pem)) {
        km_msg(msg, msglen, "response has no verifier_key_pem string");
        goto out;
    }
    if (jwt_key_from_pem(json_string_value(pem), json_string_length(pem), out, kerr,
                         sizeof(kerr)) != 0) {
        km_msg(msg, msglen, "%s", kerr); /* "verifier key: <why>" */
        goto out;
    }
    rc = KEYS_OK;
out:
    json_decref(root);
    return rc;
}

uint64_t keys_backoff_ms(unsigned attempt, uint32_t rnd)
{
    uint64_t base = KEYS_BACKOFF_MIN_MS;
    for (unsigned i = 0; i < attempt && base < KEYS_BACKOFF_MAX_MS; i++)
        base *= 2;
    if (base > KEYS_BACKOFF_MAX_MS)
        base = KEYS_BACKOFF_MAX_MS;
    /* Equal jitter: many gateways restarted together spread out, yet none
     * retries sooner than half the nominal delay. */
    return base / 2 + rnd % (base / 2 + 1);
}
