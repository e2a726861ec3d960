#include "keys.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kfetch.h"
#include "log.h"
#include "util.h"

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
    kf_request fetch;
    char *issuer;
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
            log_info("verifier key loaded from %s: fingerprint %s, issuer %s", ks->fetch.url,
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
            keys_outcome oc = kf_get(&ks->fetch, &ks->stop, &key, msg, sizeof(msg));
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
        km_msg(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(max + 1);
    if (!buf) {
        km_msg(err, errlen, "out of memory");
        goto out;
    }
    size_t n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        km_msg(err, errlen, "cannot read %s", path);
        goto out;
    }
    if (n > max) {
        km_msg(err, errlen, "%s is larger than %zu bytes", path, max);
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
        km_msg(err, errlen, "auth: issuer is required with a manual verifier key");
        goto out;
    }
    if (auth->verifier_key_file) {
        path = resolve_path(config_dir, auth->verifier_key_file);
        if (!path) {
            km_msg(err, errlen, "out of memory");
            goto out;
        }
        if (read_file(path, &pem, &pem_len, 64 * 1024, err, errlen) != 0)
            goto out;
    } else {
        pem = ag_strdup(auth->verifier_key_pem);
        if (!pem) {
            km_msg(err, errlen, "out of memory");
            goto out;
        }
        pem_len = strlen(pem);
    }
    if (jwt_key_from_pem(pem, pem_len, out, kerr, sizeof(kerr)) != 0) {
        km_msg(err, errlen, "%s%s%s", path ? path : "", path ? ": " : "", kerr);
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
        km_msg(err, errlen, "out of memory");
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
        km_msg(err, errlen, "out of memory");
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
    char host[KEYS_MAX_HOST_BYTES + 1], issuer[KEYS_MAX_HOST_BYTES + 16],
        url[KEYS_MAX_URL_BYTES + 1];
    char msg[512];
    bool tls = false;
    jwt_key *k = NULL;
    if (auth->verifier_key_file || auth->verifier_key_pem) {
        rc = manual_key(auth, config_dir, &k, NULL, err, errlen);
        jwt_key_unref(k);
        return rc;
    }
    if (!auth->auth_url) {
        km_msg(err, errlen, "auth: need auth_url with an API key, or a verifier key with issuer");
        return -1;
    }
    if (keys_auth_host(auth->auth_url, host, sizeof(host), msg, sizeof(msg)) != 0 ||
        keys_derive_issuer(auth->auth_url, issuer, sizeof(issuer), msg, sizeof(msg)) != 0 ||
        keys_metadata_url(auth->api_base_url, url, sizeof(url), &tls, msg, sizeof(msg)) != 0) {
        km_msg(err, errlen, "auth: %s", msg);
        goto out;
    }
    if (keys_read_api_key(auth, &api_key, err, errlen) != 0)
        goto out;
    if (keys_header_lines(api_key, host, &auth_line, &host_line, msg, sizeof(msg)) != 0) {
        km_msg(err, errlen, "auth: %s", msg);
        goto out;
    }
    rc = 0;
out:
    kf_free_secret(api_key);
    kf_free_secret(auth_line);
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
    char host[KEYS_MAX_HOST_BYTES + 1], issuer[KEYS_MAX_HOST_BYTES + 16],
        url[KEYS_MAX_URL_BYTES + 1];
    char msg[512];
    jwt_key *key = NULL;

    if (keys_auth_host(auth->auth_url, host, sizeof(host), msg, sizeof(msg)) != 0 ||
        keys_derive_issuer(auth->auth_url, issuer, sizeof(issuer), msg, sizeof(msg)) != 0 ||
        keys_metadata_url(auth->api_base_url, url, sizeof(url), &ks->fetch.tls, msg, sizeof(msg)) !=
            0) {
        km_msg(err, errlen, "auth: %s", msg);
        goto out;
    }
    if (keys_read_api_key(auth, &api_key, err, errlen) != 0)
        goto out;
    if (keys_header_lines(api_key, host, &ks->fetch.auth_line, &ks->fetch.host_line, msg,
                          sizeof(msg)) != 0) {
        km_msg(err, errlen, "auth: %s", msg);
        goto out;
    }
    ks->fetch.url = ag_strdup(url);
    ks->issuer = ag_strdup(auth->issuer && auth->issuer[0] ? auth->issuer : issuer);
    ks->fetch.ca_file = auth->ca_file ? ag_strdup(auth->ca_file) : NULL;
    if (!ks->fetch.url || !ks->issuer || (auth->ca_file && !ks->fetch.ca_file)) {
        km_msg(err, errlen, "out of memory");
        goto out;
    }
    ks->fetch.timeout_ms = auth->fetch_timeout_ms > 0 ? auth->fetch_timeout_ms : 10000;
    ks->refresh_ns =
        (uint64_t)(auth->refresh_interval_s > 0 ? auth->refresh_interval_s : 3600) * NS_PER_S;
    ks->grace_ns =
        (uint64_t)(auth->previous_key_grace_s > 0 ? auth->previous_key_grace_s : 0) * NS_PER_S;
    ks->fetched = true;

    /* The first attempt is synchronous so a misconfiguration stops start-up. */
    keys_outcome oc = kf_get(&ks->fetch, &ks->stop, &key, msg, sizeof(msg));
    if (oc == KEYS_FATAL) {
        km_msg(err, errlen, "auth: cannot fetch the verifier key: %s", msg);
        goto out;
    }
    pthread_mutex_lock(&ks->mu);
    record_locked(ks, oc, key, msg);
    bool loaded = ks->cur_key != NULL;
    pthread_mutex_unlock(&ks->mu);
    key = NULL;
    if (oc == KEYS_OK && !loaded) {
        km_msg(err, errlen, "out of memory");
        goto out;
    }
    if (spawn_refresher(ks) != 0) {
        km_msg(err, errlen, "auth: cannot start the key refresh thread");
        goto out;
    }
    rc = 0;
out:
    jwt_key_unref(key);
    kf_free_secret(api_key);
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
        km_msg(err, errlen, "cannot create the key store: out of memory");
        goto out;
    }
    if (auth->verifier_key_file || auth->verifier_key_pem) {
        if (start_manual(ks, auth, config_dir, err, errlen) != 0)
            goto out;
    } else if (auth->auth_url) {
        if (start_fetch(ks, auth, err, errlen) != 0)
            goto out;
    } else {
        km_msg(err, errlen, "auth: need auth_url with an API key, or a verifier key with issuer");
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
    kf_free_secret(ks->fetch.auth_line);
    free(ks->fetch.host_line);
    free(ks->fetch.url);
    free(ks->issuer);
    free(ks->fetch.ca_file);
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
