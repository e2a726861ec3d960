/* kfetch: see kfetch.h. */
#include "kfetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"
#include "util.h"
#include "version.h"

void kf_free_secret(char *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, strlen(s));
    free(s);
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
        km_msg(err, errlen, "auth.api_key_file: cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        km_msg(err, errlen, "auth.api_key_file: %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        km_msg(err, errlen,
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
            km_msg(err, errlen, "auth.api_key_file: cannot read %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    size_t line = strcspn(buf, "\n");
    if (line == n && n == sizeof(buf) - 1) {
        km_msg(err, errlen, "auth.api_key_file: %s: first line is longer than %d bytes", path,
               KEYS_MAX_API_KEY_BYTES);
        goto out;
    }
    size_t b = 0, e = line;
    while (b < e && (buf[b] == ' ' || buf[b] == '\t'))
        b++;
    while (e > b && (buf[e - 1] == '\r' || buf[e - 1] == ' ' || buf[e - 1] == '\t'))
        e--;
    if (e == b) {
        km_msg(err, errlen, "auth.api_key_file: %s: first line is empty", path);
        goto out;
    }
    *out = ag_strndup(buf + b, e - b);
    if (!*out) {
        km_msg(err, errlen, "out of memory");
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
        km_msg(err, errlen, "auth: give exactly one of api_key_env, api_key_file, api_key");
        goto out;
    }
    if (auth->api_key_env) {
        const char *v = getenv(auth->api_key_env);
        if (!v || !v[0]) {
            km_msg(err, errlen, "auth.api_key_env: environment variable %s is not set or empty",
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
        km_msg(err, errlen, "out of memory");
        goto out;
    }
    *out = key;
    key = NULL;
    rc = 0;
out:
    kf_free_secret(key);
    return rc;
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
    const int *stop = userp;
    return __atomic_load_n(stop, __ATOMIC_ACQUIRE) ? 1 : 0;
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
        km_msg(msg, msglen, "TLS verification of %s failed: %s", url, why);
        return KEYS_FATAL;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        km_msg(msg, msglen, "cannot fetch %s: %s", url, why);
        return KEYS_FATAL;
    default:
        km_msg(msg, msglen, "cannot reach %s: %s", url, why);
        return KEYS_RETRY;
    }
}

#define SETOPT(h, opt, val)                                                                        \
    do {                                                                                           \
        if (curl_easy_setopt((h), (opt), (val)) != CURLE_OK) {                                     \
            km_msg(msg, msglen, "cannot set up the request (%s)", #opt);                           \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

keys_outcome kf_get(const kf_request *rq, const int *stop, jwt_key **out, char *msg, size_t msglen)
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
        km_msg(msg, msglen, "cannot create an HTTP client");
        goto out;
    }
    const char *fixed[] = {rq->auth_line, rq->host_line, "Accept: application/json"};
    for (size_t i = 0; i < AG_ARRAY_LEN(fixed); i++) {
        tmp = curl_slist_append(hdrs, fixed[i]);
        if (!tmp) {
            km_msg(msg, msglen, "out of memory");
            goto out;
        }
        hdrs = tmp;
    }
    SETOPT(h, CURLOPT_URL, rq->url);
    SETOPT(h, CURLOPT_HTTPGET, 1L);
    SETOPT(h, CURLOPT_HTTPHEADER, hdrs);
    SETOPT(h, CURLOPT_PROTOCOLS_STR, rq->tls ? "https" : "http");
    SETOPT(h, CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(h, CURLOPT_NOSIGNAL, 1L);
    SETOPT(h, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
    SETOPT(h, CURLOPT_CONNECTTIMEOUT_MS, rq->timeout_ms);
    SETOPT(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KEYS_MAX_RESPONSE_BYTES);
    SETOPT(h, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(h, CURLOPT_WRITEDATA, &sink);
    SETOPT(h, CURLOPT_NOPROGRESS, 0L);
    SETOPT(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(h, CURLOPT_XFERINFODATA, stop);
    SETOPT(h, CURLOPT_ERRORBUFFER, errbuf);
    SETOPT(h, CURLOPT_USERAGENT, "authgate/" AUTHGATE_VERSION);
    if (rq->tls) {
        SETOPT(h, CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(h, CURLOPT_SSL_VERIFYHOST, 2L);
        SETOPT(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        if (rq->ca_file)
            SETOPT(h, CURLOPT_CAINFO, rq->ca_file);
    } else {
        /* Loopback only: an http_proxy from the environment must not see the key. */
        SETOPT(h, CURLOPT_PROXY, "");
    }

    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        km_msg(msg, msglen, "fetch interrupted by shutdown");
        goto out;
    }
    if (sink.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        if (status == 200) {
            km_msg(msg, msglen, "unusable response from %s: larger than %d bytes", rq->url,
                   KEYS_MAX_RESPONSE_BYTES);
            rc = KEYS_FATAL;
        } else {
            rc = keys_classify_status(status, rq->url, msg, msglen);
        }
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = curl_failure(cc, rq->url, errbuf, msg, msglen);
        goto out;
    }
    rc = keys_classify_status(status, rq->url, msg, msglen);
    if (rc != KEYS_OK)
        goto out;
    char perr[300];
    rc = keys_parse_metadata(sink.buf.p ? sink.buf.p : "", sink.buf.len, out, perr, sizeof(perr));
    if (rc != KEYS_OK)
        km_msg(msg, msglen, "unusable response from %s: %s", rq->url, perr);
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
