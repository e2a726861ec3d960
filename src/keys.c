#include "keys.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"
#include "version.h"

#define METADATA_PATH "/api/v1/token_verification_metadata"
#define MAX_HOST_BYTES 300
#define MAX_URL_BYTES 2048
#define NS_PER_MS 1000000ull
#define NS_PER_S 1000000000ull

struct keys_store {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* CLOCK_MONOTONIC; wakes the refresher for stop/refresh */
    keys_snapshot *current; /* guarded by mu */
    uint64_t generation;    /* atomic mirror of current->generation */
    bool fetched;
    keys_status status; /* guarded by mu */

    /* Fetch settings: written once in keys_start, read-only afterwards. */
    char *url;
    char *auth_line; /* holds the API key: cleansed on stop */
    char *host_line;
    char *issuer;
    char *ca_file;
    bool tls;
    long timeout_ms;
    uint64_t refresh_ns;
    uint64_t grace_ns;

    /* Refresher state, guarded by mu. */
    jwt_key *cur_key;
    jwt_key *prev_key; /* accepted until prev_until_ns */
    uint64_t prev_until_ns;
    uint64_t next_fetch_ns;
    unsigned failures_in_row;
    bool refresh_requested;
    int stop; /* also read atomically by the transfer callback */
    bool thread_started;
    pthread_t thread;
};

/* ---- small helpers ----------------------------------------------------- */

static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_msg(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || msglen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

static void free_secret(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
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
        set_msg(err, errlen, "auth_url has no scheme and host (want https://HOST[:PORT])");
        goto out;
    }
    const char *host = sep + 3;
    size_t n = strcspn(host, "/?#");
    if (n == 0) {
        set_msg(err, errlen, "auth_url has no host");
        goto out;
    }
    if (memchr(host, '@', n)) {
        set_msg(err, errlen, "auth_url must not contain credentials (user@)");
        goto out;
    }
    /* The host goes into a request header and the issuer comparison verbatim. */
    if (!visible_ascii(host, n)) {
        set_msg(err, errlen, "auth_url host contains a space or control byte");
        goto out;
    }
    if (n > MAX_HOST_BYTES || n + 1 > outlen) {
        set_msg(err, errlen, "auth_url host is too long");
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
    char host[MAX_HOST_BYTES + 1];
    if (keys_auth_host(auth_url, host, sizeof(host), err, errlen) != 0)
        return -1;
    int n = snprintf(out, outlen, "https://%s", host);
    if (n < 0 || (size_t)n >= outlen) {
        set_msg(err, errlen, "issuer is too long");
        return -1;
    }
    return 0;
}

/* Host part of an authority (no port, no brackets), for the loopback check. */
static bool authority_is_loopback(const char *auth, size_t n)
{
    char host[MAX_HOST_BYTES + 1];
    size_t hlen;
    if (n > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', n);
        if (!close)
            return false;
        hlen = (size_t)(close - auth - 1);
        auth++;
    } else {
        const char *colon = memchr(auth, ':', n);
        hlen = colon ? (size_t)(colon - auth) : n;
    }
    if (hlen == 0 || hlen > MAX_HOST_BYTES)
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
        set_msg(err, errlen, "api_base_url is missing");
        goto out;
    }
    if (strncmp(api_base_url, "https://", 8) == 0) {
        rest = api_base_url + 8;
        is_tls = true;
    } else if (strncmp(api_base_url, "http://", 7) == 0) {
        rest = api_base_url + 7;
        is_tls = false;
    } else {
        set_msg(err, errlen, "api_base_url must start with https://");
        goto out;
    }
    size_t alen = strcspn(rest, "/?#");
    if (alen == 0) {
        set_msg(err, errlen, "api_base_url has no host");
        goto out;
    }
    if (strpbrk(rest, "?#") || memchr(rest, '@', alen)) {
        set_msg(err, errlen, "api_base_url must not contain credentials, a query or a fragment");
        goto out;
    }
    if (!visible_ascii(rest, strlen(rest))) {
        set_msg(err, errlen, "api_base_url contains a space or control byte");
        goto out;
    }
    /* The API key travels in this request: plain http only where nobody can listen in. */
    if (!is_tls && !authority_is_loopback(rest, alen)) {
        set_msg(err, errlen,
                "api_base_url must use https:// (plain http is allowed only to a loopback host)");
        goto out;
    }
    size_t blen = strlen(api_base_url);
    while (blen > 0 && api_base_url[blen - 1] == '/')
        blen--;
    int n = snprintf(out, outlen, "%.*s%s", (int)blen, api_base_url, METADATA_PATH);
    if (n < 0 || (size_t)n >= outlen || (size_t)n > MAX_URL_BYTES) {
        set_msg(err, errlen, "api_base_url is too long");
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
        set_msg(err, errlen, "the API key is empty");
        goto out;
    }
    if (klen > KEYS_MAX_API_KEY_BYTES) {
        set_msg(err, errlen, "the API key is longer than %d bytes", KEYS_MAX_API_KEY_BYTES);
        goto out;
    }
    if (!visible_ascii(api_key, klen)) {
        set_msg(err, errlen, "the API key contains a space, control or non-ASCII byte");
        goto out;
    }
    if (!host || !host[0] || !visible_ascii(host, strlen(host))) {
        set_msg(err, errlen, "auth_url host is empty or not printable");
        goto out;
    }
    if (ag_buf_printf(&a, "Authorization: Bearer %s", api_key) != 0 ||
        ag_buf_printf(&h, "X-Propelauth-url: %s", host) != 0) {
        set_msg(err, errlen, "out of memory");
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

/* ---- the API key --------------------------------------------------------- */

/* First line of a secret file that only its owner may access. */
static int read_key_file(const char *path, char **out, char *err, size_t errlen)
{
    int rc = -1;
    char buf[KEYS_MAX_API_KEY_BYTES + 2];
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_msg(err, errlen, "auth.api_key_file: cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_msg(err, errlen, "auth.api_key_file: %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        set_msg(err, errlen,
                "auth.api_key_file: %s is accessible by group or others (mode %04o); refusing "
                "to read a secret from it: chmod 600 %s",
                path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    while (n < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            set_msg(err, errlen, "auth.api_key_file: cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    size_t line = strcspn(buf, "\n");
    if (line == n && n == sizeof(buf) - 1) {
        set_msg(err, errlen, "auth.api_key_file: %s: first line is longer than %d bytes", path,
                KEYS_MAX_API_KEY_BYTES);
        goto out;
    }
    size_t b = 0, e = line;
    while (b < e && (buf[b] == ' ' || buf[b] == '\t'))
        b++;
    while (e > b && (buf[e - 1] == '\r' || buf[e - 1] == ' ' || buf[e - 1] == '\t'))
        e--;
    if (e == b) {
        set_msg(err, errlen, "auth.api_key_file: %s: first line is empty", path);
        goto out;
    }
    *out = ag_strndup(buf + b, e - b);
    if (!*out) {
        set_msg(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    if (fd >= 0)
        close(fd);
    return rc;
}

int keys_read_api_key(const cfg_auth *auth, char **out, char *err, size_t errlen)
{
    int rc = -1;
    char *key = NULL;
    int sources =
        (auth->api_key_env != NULL) + (auth->api_key_file != NULL) + (auth->api_key != NULL);
    *out = NULL;
    if (sources != 1) {
        set_msg(err, errlen, "auth: give exactly one of api_key_env, api_key_file, api_key");
        goto out;
    }
    if (auth->api_key_env) {
        const char *v = getenv(auth->api_key_env);
        if (!v || !v[0]) {
            set_msg(err, errlen, "auth.api_key_env: environment variable %s is not set or empty",
                    auth->api_key_env);
            goto out;
        }
        key = ag_strdup(v);
    } else if (auth->api_key_file) {
        if (read_key_file(auth->api_key_file, &key, err, errlen) != 0)
            goto out;
    } else {
        key = ag_strdup(auth->api_key);
    }
    if (!key) {
        set_msg(err, errlen, "out of memory");
        goto out;
    }
    *out = key;
    key = NULL;
    rc = 0;
out:
    free_secret(key);
    return rc;
}

/* ---- response meaning ---------------------------------------------------- */

keys_outcome keys_classify_status(long status, const char *url, char *msg, size_t msglen)
{
    switch (status) {
    case 200:
        set_msg(msg, msglen, "200 from %s", url);
        return KEYS_OK;
    case 400:
        set_msg(msg, msglen, "bad request (400 from %s)", url);
        return KEYS_FATAL;
    case 401:
        set_msg(msg, msglen, "API key is incorrect (401 from %s)", url);
        return KEYS_FATAL;
    case 404:
        set_msg(msg, msglen, "auth_url is incorrect (404 from %s)", url);
        return KEYS_FATAL;
    case 429:
        set_msg(msg, msglen, "rate limited (429 from %s)", url);
        return KEYS_RETRY;
    default:
        break;
    }
    if (status >= 500 && status <= 599)
        set_msg(msg, msglen, "PropelAuth is unavailable (%ld from %s)", status, url);
    else
        set_msg(msg, msglen, "unexpected status %ld from %s", status, url);
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
        set_msg(msg, msglen, "response is larger than %d bytes", KEYS_MAX_RESPONSE_BYTES);
        goto out;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        set_msg(msg, msglen, "response is not JSON (line %d: %s)", jerr.line, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        set_msg(msg, msglen, "response is not a JSON object");
        goto out;
    }
    json_t *pem = json_object_get(root, "verifier_key_pem");
    if (!json_is_string(pem)) {
        set_msg(msg, msglen, "response has no verifier_key_pem string");
        goto out;
    }
    if (jwt_key_from_pem(json_string_value(pem), json_string_length(pem), out, kerr,
                         sizeof(kerr)) != 0) {
        set_msg(msg, msglen, "%s", kerr); /* "verifier key: <why>" */
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

/* ---- one fetch ------------------------------------------------------------ */

typedef struct body_sink {
    ag_buf buf;
    bool too_big;
} body_sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    body_sink *b = userp;
    size_t n = size * nmemb;
    if (b->buf.len + n > KEYS_MAX_RESPONSE_BYTES) {
        b->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (ag_buf_append(&b->buf, data, n) != 0)
        return 0;
    return n;
}

/* Lets keys_stop interrupt a hanging fetch instead of waiting out its timeout. */
static int on_progress(void *userp, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const keys_store *ks = userp;
    return __atomic_load_n(&ks->stop, __ATOMIC_ACQUIRE) ? 1 : 0;
}

static keys_outcome curl_failure(CURLcode cc, const char *url, const char *detail, char *msg,
                                 size_t msglen)
{
    const char *why = detail && detail[0] ? detail : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        set_msg(msg, msglen, "TLS verification of %s failed: %s", url, why);
        return KEYS_FATAL;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        set_msg(msg, msglen, "cannot fetch %s: %s", url, why);
        return KEYS_FATAL;
    default:
        set_msg(msg, msglen, "cannot reach %s: %s", url, why);
        return KEYS_RETRY;
    }
}

#define SETOPT(h, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK) {                                     \
            set_msg(msg, msglen, "cannot set up the request (%s)", #opt);                          \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* GET the metadata once. Reads only the settings fixed in keys_start, so it
 * runs without the lock. */
static keys_outcome fetch_key(keys_store *ks, jwt_key **out, char *msg, size_t msglen)
{
    keys_outcome rc = KEYS_RETRY;
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL, *tmp;
    body_sink sink = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    ag_buf_init(&sink.buf);
    *out = NULL;

    h = curl_easy_init();
    if (!h) {
        set_msg(msg, msglen, "cannot create an HTTP client");
        goto out;
    }
    const char *fixed[] = {ks->auth_line, ks->host_line, "Accept: application/json"};
    for (size_t i = 0; i < AG_ARRAY_LEN(fixed); i++) {
        tmp = curl_slist_append(hdrs, fixed[i]);
        if (!tmp) {
            set_msg(msg, msglen, "out of memory");
            goto out;
        }
        hdrs = tmp;
    }
    SETOPT(h, CURLOPT_URL, ks->url);
    SETOPT(h, CURLOPT_HTTPGET, 1L);
    SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
    SETOPT(h, CURLOPT_PROTOCOLS_STR, ks->tls ? "https" : "http");
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_TIMEOUT_MS, ks->timeout_ms);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, ks->timeout_ms);
    SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KEYS_MAX_RESPONSE_BYTES);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, &sink);
    SETOPT(h, CURLOPT_NOPROGRESS, 0L);
    SETOPT(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(h, CURLOPT_XFERINFODATA, ks);
    SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(h, CURLOPT_USERAGENT, "authgate/" AUTHGATE_VERSION);
    if (ks->tls) {
        SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
        SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        if (ks->ca_file)
            SETOPT(h, CURLOPT_CAINFO, ks->ca_file);
    } else {
        /* Loopback only: an http_proxy from the environment must not see the key. */
        SETOPT(h, CURLOPT_PROXY, "");
    }

    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        set_msg(msg, msglen, "fetch interrupted by shutdown");
        goto out;
    }
    if (sink.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        if (status == 200) {
            set_msg(msg, msglen, "unusable response from %s: larger than %d bytes", ks->url,
                    KEYS_MAX_RESPONSE_BYTES);
            rc = KEYS_FATAL;
        } else {
            rc = keys_classify_status(status, ks->url, msg, msglen);
        }
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = curl_failure(cc, ks->url, errbuf, msg, msglen);
        goto out;
    }
    rc = keys_classify_status(status, ks->url, msg, msglen);
    if (rc != KEYS_OK)
        goto out;
    char perr[300];
    rc = keys_parse_metadata(sink.buf.p ? sink.buf.p : "", sink.buf.len, out, perr, sizeof(perr));
    if (rc != KEYS_OK)
        set_msg(msg, msglen, "unusable response from %s: %s", ks->url, perr);
out:
    if (rc != KEYS_OK && *out) {
        jwt_key_unref(*out);
        *out = NULL;
    }
    for (tmp = hdrs; tmp; tmp = tmp->next)
        OPENSSL_cleanse(tmp->data, strlen(tmp->data));
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    ag_buf_free(&sink.buf);
    return rc;
}

/* ---- snapshots -------------------------------------------------------------- */

void keys_snapshot_unref(keys_snapshot *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < s->nkeys; i++)
        jwt_key_unref(s->keys[i]);
    free(s->issuer);
    free(s);
}

/* Publish cur_key (+ prev_key) as a new snapshot. Called with mu held. On
 * allocation failure the old snapshot stays, which is still a valid key set. */
static int publish_locked(keys_store *ks)
{
    keys_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return -1;
    s->issuer = ag_strdup(ks->issuer);
    if (!s->issuer) {
        free(s);
        return -1;
    }
    s->refs = 1;
    s->keys[s->nkeys++] = jwt_key_ref(ks->cur_key);
    if (ks->prev_key)
        s->keys[s->nkeys++] = jwt_key_ref(ks->prev_key);
    s->generation = ks->generation + 1;
    keys_snapshot *old = ks->current;
    ks->current = s;
    __atomic_store_n(&ks->generation, s->generation, __ATOMIC_RELEASE);
    ks->status.ready = true;
    snprintf(ks->status.fingerprint, sizeof(ks->status.fingerprint), "%s",
             jwt_key_fingerprint(ks->cur_key));
    /* Workers hold their own references, so this only drops the store's. */
    keys_snapshot_unref(old);
    return 0;
}

static bool same_key(const jwt_key *a, const jwt_key *b)
{
    return a && b && strcmp(jwt_key_fingerprint(a), jwt_key_fingerprint(b)) == 0;
}

static uint32_t jitter(void)
{
    uint32_t r = 0;
    if (ag_random(&r, sizeof(r)) != 0)
        r = (uint32_t)ag_now_mono_ns();
    return r;
}

/* Record one fetch result. Takes the key reference. Called with mu held. */
static void record_locked(keys_store *ks, keys_outcome oc, jwt_key *key, const char *msg)
{
    uint64_t now = ag_now_mono_ns();
    if (oc == KEYS_OK) {
        ks->failures_in_row = 0;
        ks->status.refresh_ok++;
        ks->status.last_error[0] = '\0';
        ks->status.loaded_at = ag_now_wall();
        ks->next_fetch_ns = now + ks->refresh_ns;
        if (same_key(ks->cur_key, key)) {
            jwt_key_unref(key);
            log_debug("verifier key unchanged (fingerprint %s)", jwt_key_fingerprint(ks->cur_key));
            return;
        }
        jwt_key *old = ks->cur_key, *dropped = ks->prev_key;
        ks->prev_key = NULL;
        /* Tokens signed just before the rotation keep working for the grace period. */
        if (old && ks->grace_ns > 0) {
            ks->prev_key = old;
            ks->prev_until_ns = now + ks->grace_ns;
        }
        ks->cur_key = key;
        if (publish_locked(ks) != 0)
            log_error("verifier key %s fetched but not installed: out of memory",
                      jwt_key_fingerprint(key));
        if (!old)
            log_info("verifier key loaded from %s: fingerprint %s, issuer %s", ks->url,
                     jwt_key_fingerprint(key), ks->issuer);
        else if (ks->prev_key)
            log_info("verifier key changed: fingerprint %s (was %s, still accepted for %llu s)",
                     jwt_key_fingerprint(key), jwt_key_fingerprint(old),
                     (unsigned long long)(ks->grace_ns / NS_PER_S));
        else
            log_info("verifier key changed: fingerprint %s (was %s, no grace period)",
                     jwt_key_fingerprint(key), jwt_key_fingerprint(old));
        if (old && !ks->prev_key)
            jwt_key_unref(old);
        jwt_key_unref(dropped);
        return;
    }
    ks->status.refresh_failures++;
    snprintf(ks->status.last_error, sizeof(ks->status.last_error), "%s", msg);
    uint64_t delay = keys_backoff_ms(ks->failures_in_row, jitter()) * NS_PER_MS;
    if (delay > ks->refresh_ns)
        delay = ks->refresh_ns;
    if (ks->failures_in_row < 32)
        ks->failures_in_row++;
    ks->next_fetch_ns = now + delay;
    if (ks->cur_key)
        log_warn("verifier key refresh failed (%u in a row): %s; keeping key %s; retrying in "
                 "%llu ms",
                 ks->failures_in_row, msg, jwt_key_fingerprint(ks->cur_key),
                 (unsigned long long)(delay / NS_PER_MS));
    else
        log_warn("no verifier key yet: %s; routes that need a token answer 503 "
                 "keys_unavailable; retrying in %llu ms",
                 msg, (unsigned long long)(delay / NS_PER_MS));
}

static void retire_prev_locked(keys_store *ks)
{
    jwt_key *prev = ks->prev_key;
    ks->prev_key = NULL;
    if (publish_locked(ks) != 0) {
        /* Keep accepting it rather than fail: try again shortly. */
        ks->prev_key = prev;
        ks->prev_until_ns = ag_now_mono_ns() + NS_PER_S;
        return;
    }
    log_info("previous verifier key %s retired after its grace period", jwt_key_fingerprint(prev));
    jwt_key_unref(prev);
}

static struct timespec mono_deadline(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S)};
    return ts;
}

static void *refresher(void *arg)
{
    keys_store *ks = arg;
    pthread_mutex_lock(&ks->mu);
    while (!ks->stop) {
        uint64_t now = ag_now_mono_ns();
        if (ks->prev_key && now >= ks->prev_until_ns) {
            retire_prev_locked(ks);
            continue;
        }
        if (ks->refresh_requested || now >= ks->next_fetch_ns) {
            ks->refresh_requested = false;
            pthread_mutex_unlock(&ks->mu);
            jwt_key *key = NULL;
            char msg[512];
            keys_outcome oc = fetch_key(ks, &key, msg, sizeof(msg));
            pthread_mutex_lock(&ks->mu);
            if (ks->stop) {
                jwt_key_unref(key);
                break;
            }
            record_locked(ks, oc, key, msg);
            continue;
        }
        uint64_t wake = ks->next_fetch_ns;
        if (ks->prev_key && ks->prev_until_ns < wake)
            wake = ks->prev_until_ns;
        struct timespec ts = mono_deadline(wake);
        pthread_cond_timedwait(&ks->cv, &ks->mu, &ts);
    }
    pthread_mutex_unlock(&ks->mu);
    return NULL;
}

/* ---- start and stop -------------------------------------------------------- */

static int read_file(const char *path, char **out, size_t *len, size_t max, char *err,
                     size_t errlen)
{
    int rc = -1;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        set_msg(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(max + 1);
    if (!buf) {
        set_msg(err, errlen, "out of memory");
        goto out;
    }
    size_t n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        set_msg(err, errlen, "cannot read %s", path);
        goto out;
    }
    if (n > max) {
        set_msg(err, errlen, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static char *resolve_path(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir || !dir[0])
        return ag_strdup(p);
    ag_buf b;
    ag_buf_init(&b);
    if (ag_buf_printf(&b, "%s/%s", dir, p) != 0) {
        ag_buf_free(&b);
        return NULL;
    }
    return ag_buf_steal(&b);
}

/* The manual key as keys_start loads it: read (a file resolved against
 * config_dir) and parsed. *path_out is the file read, or NULL for inline. */
static int manual_key(const cfg_auth *auth, const char *config_dir, jwt_key **out, char **path_out,
                      char *err, size_t errlen)
{
    int rc = -1;
    char *pem = NULL, *path = NULL;
    size_t pem_len = 0;
    char kerr[256];
    *out = NULL;
    if (!auth->issuer || !auth->issuer[0]) {
        set_msg(err, errlen, "auth: issuer is required with a manual verifier key");
        goto out;
    }
    if (auth->verifier_key_file) {
        path = resolve_path(config_dir, auth->verifier_key_file);
        if (!path) {
            set_msg(err, errlen, "out of memory");
            goto out;
        }
        if (read_file(path, &pem, &pem_len, 64 * 1024, err, errlen) != 0)
            goto out;
    } else {
        pem = ag_strdup(auth->verifier_key_pem);
        if (!pem) {
            set_msg(err, errlen, "out of memory");
            goto out;
        }
        pem_len = strlen(pem);
    }
    if (jwt_key_from_pem(pem, pem_len, out, kerr, sizeof(kerr)) != 0) {
        set_msg(err, errlen, "%s%s%s", path ? path : "", path ? ": " : "", kerr);
        goto out;
    }
    rc = 0;
out:
    free(pem);
    if (rc == 0 && path_out)
        *path_out = path;
    else
        free(path);
    return rc;
}

static int start_manual(keys_store *ks, const cfg_auth *auth, const char *config_dir, char *err,
                        size_t errlen)
{
    int rc = -1;
    char *path = NULL;
    jwt_key *k = NULL;
    if (manual_key(auth, config_dir, &k, &path, err, errlen) != 0)
        goto out;
    ks->issuer = ag_strdup(auth->issuer);
    if (!ks->issuer) {
        set_msg(err, errlen, "out of memory");
        goto out;
    }
    ks->cur_key = k;
    k = NULL;
    pthread_mutex_lock(&ks->mu);
    int prc = publish_locked(ks);
    if (prc == 0)
        ks->status.loaded_at = ag_now_wall();
    pthread_mutex_unlock(&ks->mu);
    if (prc != 0) {
        set_msg(err, errlen, "out of memory");
        goto out;
    }
    log_info("verifier key loaded%s%s: fingerprint %s, issuer %s", path ? " from " : "",
             path ? path : "", jwt_key_fingerprint(ks->cur_key), ks->issuer);
    rc = 0;
out:
    jwt_key_unref(k);
    free(path);
    return rc;
}

int keys_preflight(const cfg_auth *auth, const char *config_dir, char *err, size_t errlen)
{
    int rc = -1;
    char *api_key = NULL, *auth_line = NULL, *host_line = NULL;
    char host[MAX_HOST_BYTES + 1], issuer[MAX_HOST_BYTES + 16], url[MAX_URL_BYTES + 1];
    char msg[512];
    bool tls = false;
    jwt_key *k = NULL;
    if (auth->verifier_key_file || auth->verifier_key_pem) {
        rc = manual_key(auth, config_dir, &k, NULL, err, errlen);
        jwt_key_unref(k);
        return rc;
    }
    if (!auth->auth_url) {
        set_msg(err, errlen, "auth: need auth_url with an API key, or a verifier key with issuer");
        return -1;
    }
    if (keys_auth_host(auth->auth_url, host, sizeof(host), msg, sizeof(msg)) != 0 ||
        keys_derive_issuer(auth->auth_url, issuer, sizeof(issuer), msg, sizeof(msg)) != 0 ||
        keys_metadata_url(auth->api_base_url, url, sizeof(url), &tls, msg, sizeof(msg)) != 0) {
        set_msg(err, errlen, "auth: %s", msg);
        goto out;
    }
    if (keys_read_api_key(auth, &api_key, err, errlen) != 0)
        goto out;
    if (keys_header_lines(api_key, host, &auth_line, &host_line, msg, sizeof(msg)) != 0) {
        set_msg(err, errlen, "auth: %s", msg);
        goto out;
    }
    rc = 0;
out:
    free_secret(api_key);
    free_secret(auth_line);
    free(host_line);
    return rc;
}

/* The refresher must never take a process signal (SIGHUP's default action is
 * to terminate): server.c blocks them for the main thread only after
 * keys_start, so block everything across pthread_create. */
static int spawn_refresher(keys_store *ks)
{
    sigset_t all, old;
    sigfillset(&all);
    if (pthread_sigmask(SIG_SETMASK, &all, &old) != 0)
        return -1;
    int rc = pthread_create(&ks->thread, NULL, refresher, ks);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return -1;
    ks->thread_started = true;
    return 0;
}

static int start_fetch(keys_store *ks, const cfg_auth *auth, char *err, size_t errlen)
{
    int rc = -1;
    char *api_key = NULL;
    char host[MAX_HOST_BYTES + 1], issuer[MAX_HOST_BYTES + 16], url[MAX_URL_BYTES + 1];
    char msg[512];
    jwt_key *key = NULL;

    if (keys_auth_host(auth->auth_url, host, sizeof(host), msg, sizeof(msg)) != 0 ||
        keys_derive_issuer(auth->auth_url, issuer, sizeof(issuer), msg, sizeof(msg)) != 0 ||
        keys_metadata_url(auth->api_base_url, url, sizeof(url), &ks->tls, msg, sizeof(msg)) != 0) {
        set_msg(err, errlen, "auth: %s", msg);
        goto out;
    }
    if (keys_read_api_key(auth, &api_key, err, errlen) != 0)
        goto out;
    if (keys_header_lines(api_key, host, &ks->auth_line, &ks->host_line, msg, sizeof(msg)) != 0) {
        set_msg(err, errlen, "auth: %s", msg);
        goto out;
    }
    ks->url = ag_strdup(url);
    ks->issuer = ag_strdup(auth->issuer && auth->issuer[0] ? auth->issuer : issuer);
    ks->ca_file = auth->ca_file ? ag_strdup(auth->ca_file) : NULL;
    if (!ks->url || !ks->issuer || (auth->ca_file && !ks->ca_file)) {
        set_msg(err, errlen, "out of memory");
        goto out;
    }
    ks->timeout_ms = auth->fetch_timeout_ms > 0 ? auth->fetch_timeout_ms : 10000;
    ks->refresh_ns =
        (uint64_t)(auth->refresh_interval_s > 0 ? auth->refresh_interval_s : 3600) * NS_PER_S;
    ks->grace_ns =
        (uint64_t)(auth->previous_key_grace_s > 0 ? auth->previous_key_grace_s : 0) * NS_PER_S;
    ks->fetched = true;

    /* The first attempt is synchronous so a misconfiguration stops start-up. */
    keys_outcome oc = fetch_key(ks, &key, msg, sizeof(msg));
    if (oc == KEYS_FATAL) {
        set_msg(err, errlen, "auth: cannot fetch the verifier key: %s", msg);
        goto out;
    }
    pthread_mutex_lock(&ks->mu);
    record_locked(ks, oc, key, msg);
    bool loaded = ks->cur_key != NULL;
    pthread_mutex_unlock(&ks->mu);
    key = NULL;
    if (oc == KEYS_OK && !loaded) {
        set_msg(err, errlen, "out of memory");
        goto out;
    }
    if (spawn_refresher(ks) != 0) {
        set_msg(err, errlen, "auth: cannot start the key refresh thread");
        goto out;
    }
    rc = 0;
out:
    jwt_key_unref(key);
    free_secret(api_key);
    return rc;
}

static keys_store *store_new(void)
{
    keys_store *ks = calloc(1, sizeof(*ks));
    pthread_condattr_t ca;
    if (!ks)
        return NULL;
    /* Timed waits use the monotonic clock so a wall-clock step cannot stall refreshes. */
    if (pthread_condattr_init(&ca) != 0) {
        free(ks);
        return NULL;
    }
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&ks->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        free(ks);
        return NULL;
    }
    if (pthread_mutex_init(&ks->mu, NULL) != 0) {
        pthread_cond_destroy(&ks->cv);
        free(ks);
        return NULL;
    }
    return ks;
}

int keys_start(const cfg_auth *auth, const char *config_dir, keys_store **out, char *err,
               size_t errlen)
{
    int rc = -1;
    keys_store *ks = store_new();
    *out = NULL;
    if (!ks) {
        set_msg(err, errlen, "cannot create the key store: out of memory");
        goto out;
    }
    if (auth->verifier_key_file || auth->verifier_key_pem) {
        if (start_manual(ks, auth, config_dir, err, errlen) != 0)
            goto out;
    } else if (auth->auth_url) {
        if (start_fetch(ks, auth, err, errlen) != 0)
            goto out;
    } else {
        set_msg(err, errlen, "auth: need auth_url with an API key, or a verifier key with issuer");
        goto out;
    }
    *out = ks;
    ks = NULL;
    rc = 0;
out:
    keys_stop(ks);
    return rc;
}

void keys_stop(keys_store *ks)
{
    if (!ks)
        return;
    if (ks->thread_started) {
        pthread_mutex_lock(&ks->mu);
        __atomic_store_n(&ks->stop, 1, __ATOMIC_RELEASE);
        pthread_cond_signal(&ks->cv);
        pthread_mutex_unlock(&ks->mu);
        pthread_join(ks->thread, NULL);
    }
    keys_snapshot_unref(ks->current);
    jwt_key_unref(ks->cur_key);
    jwt_key_unref(ks->prev_key);
    free_secret(ks->auth_line);
    free(ks->host_line);
    free(ks->url);
    free(ks->issuer);
    free(ks->ca_file);
    pthread_cond_destroy(&ks->cv);
    pthread_mutex_destroy(&ks->mu);
    free(ks);
}

keys_snapshot *keys_acquire(keys_store *ks)
{
    pthread_mutex_lock(&ks->mu);
    keys_snapshot *s = ks->current;
    if (s)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&ks->mu);
    return s;
}

uint64_t keys_generation(const keys_store *ks)
{
    return __atomic_load_n(&ks->generation, __ATOMIC_ACQUIRE);
}

bool keys_ready(const keys_store *ks)
{
    return keys_generation(ks) != 0;
}

void keys_refresh_now(keys_store *ks)
{
    if (!ks || !ks->thread_started)
        return;
    pthread_mutex_lock(&ks->mu);
    ks->refresh_requested = true;
    pthread_cond_signal(&ks->cv);
    pthread_mutex_unlock(&ks->mu);
    log_info("verifier key refresh requested");
}

void keys_get_status(keys_store *ks, keys_status *st)
{
    pthread_mutex_lock(&ks->mu);
    *st = ks->status;
    st->fetched = ks->fetched;
    pthread_mutex_unlock(&ks->mu);
}
