#include "keys.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct keys_store {
    pthread_mutex_t mu;
    keys_snapshot *current; /* guarded by mu */
    uint64_t generation;    /* atomic mirror of current->generation */
    bool fetched;
    keys_status status;     /* guarded by mu */
};

void keys_snapshot_unref(keys_snapshot *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < s->nkeys; i++)
        jwt_key_unref(s->keys[i]);
    free(s->issuer);
    free(s);
}

static int read_file(const char *path, char **out, size_t *len, size_t max, char *err,
                     size_t errlen)
{
    int rc = -1;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    buf = malloc(max + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s", path);
        goto out;
    }
    if (n > max) {
        snprintf(err, errlen, "%s is larger than %zu bytes", path, max);
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

/* Install a new current key. The caller holds no lock. */
static void install(keys_store *ks, jwt_key *key, const char *issuer)
{
    keys_snapshot *s = calloc(1, sizeof(*s));
    if (!s) {
        jwt_key_unref(key);
        return;
    }
    s->refs = 1;
    s->keys[0] = key;
    s->nkeys = 1;
    s->issuer = ag_strdup(issuer);
    pthread_mutex_lock(&ks->mu);
    s->generation = ks->generation + 1;
    keys_snapshot *old = ks->current;
    ks->current = s;
    __atomic_store_n(&ks->generation, s->generation, __ATOMIC_RELEASE);
    ks->status.ready = true;
    ks->status.loaded_at = ag_now_wall();
    snprintf(ks->status.fingerprint, sizeof(ks->status.fingerprint), "%s",
             jwt_key_fingerprint(key));
    pthread_mutex_unlock(&ks->mu);
    keys_snapshot_unref(old);
    log_info("verifier key loaded: fingerprint %s, issuer %s", jwt_key_fingerprint(key), issuer);
}

int keys_start(const cfg_auth *auth, const char *config_dir, keys_store **out, char *err,
               size_t errlen)
{
    int rc = -1;
    char *pem = NULL, *path = NULL;
    size_t pem_len = 0;
    keys_store *ks = calloc(1, sizeof(*ks));
    if (!ks) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    pthread_mutex_init(&ks->mu, NULL);
    if (!auth->verifier_key_file && !auth->verifier_key_pem) {
        snprintf(err, errlen, "fetching keys from auth_url is not supported in this build yet");
        goto out;
    }
    if (auth->verifier_key_file) {
        path = resolve_path(config_dir, auth->verifier_key_file);
        if (!path || read_file(path, &pem, &pem_len, 64 * 1024, err, errlen) != 0)
            goto out;
    } else {
        pem = ag_strdup(auth->verifier_key_pem);
        if (!pem)
            goto out;
        pem_len = strlen(pem);
    }
    jwt_key *k = NULL;
    char kerr[256];
    if (jwt_key_from_pem(pem, pem_len, &k, kerr, sizeof(kerr)) != 0) {
        snprintf(err, errlen, "verifier key%s%s: %s", path ? " " : "", path ? path : "", kerr);
        goto out;
    }
    install(ks, k, auth->issuer);
    *out = ks;
    ks = NULL;
    rc = 0;
out:
    free(pem);
    free(path);
    if (ks)
        keys_stop(ks);
    return rc;
}

void keys_stop(keys_store *ks)
{
    if (!ks)
        return;
    keys_snapshot_unref(ks->current);
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
    (void)ks;
}

void keys_get_status(keys_store *ks, keys_status *st)
{
    pthread_mutex_lock(&ks->mu);
    *st = ks->status;
    st->fetched = ks->fetched;
    pthread_mutex_unlock(&ks->mu);
}
