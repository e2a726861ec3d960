/* fauth: the forward-auth decision (fauth.h) on the answer-only listener
 * (hsrv.h): every answer is decided from the check request's head alone. */
#include "fauth.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "admit.h"
#include "alog.h"
#include "hdr.h"
#include "httpx.h"
#include "log.h"
#include "hsrv.h"
#include "reason.h"
#include "metrics.h"
#include "netaddr.h"
#include "tcache.h"
#include "util.h"

/* ---- the original request (pure) ------------------------------------------ */

enum { H_OMETHOD, H_OURI, H_FMETHOD, H_FURI, H_N };
static const char *const k_dialect_hdr[H_N] = {"X-Original-Method", "X-Original-URI",
                                               "X-Forwarded-Method", "X-Forwarded-Uri"};

static int dialect_header(const gate_header *h)
{
    for (int i = 0; i < H_N; i++) {
        size_t l = strlen(k_dialect_hdr[i]);
        /* Exact names, ASCII case-insensitive: a look-alike spelling
         * (X_Original_URI) is not read, and is passed on like any header. */
        if (h->name_len == l && strncasecmp(h->name, k_dialect_hdr[i], l) == 0)
            return i;
    }
    return -1;
}

static bool method_token(const char *m, size_t len)
{
    return len <= 32 && hx_is_token(m, len);
}

void fa_original_of(const cfg_forward_auth *cfg, const fa_call *call, gate_header *out,
                    fa_original *o)
{
    memset(o, 0, sizeof(*o));
    o->code = AR_INTERNAL;
    const gate_header *seen[H_N] = {0};
    unsigned count[H_N] = {0};
    for (size_t i = 0; i < call->nheaders; i++) {
        int k = dialect_header(&call->headers[i]);
        if (k < 0) {
            out[o->nheaders++] = call->headers[i];
            continue;
        }
        count[k]++;
        seen[k] = &call->headers[i];
    }
    for (int k = 0; k < H_N; k++)
        if (count[k] > 1) {
            o->code = AR_FA_AMBIGUOUS;
            return;
        }
    bool orig = (cfg->dialects & CFG_FA_ORIGINAL) && (seen[H_OMETHOD] || seen[H_OURI]);
    bool fwd = (cfg->dialects & CFG_FA_FORWARDED) && (seen[H_FMETHOD] || seen[H_FURI]);
    bool envoy = false;
    const char *rest = NULL;
    size_t rest_len = 0;
    if ((cfg->dialects & CFG_FA_ENVOY) && cfg->envoy_path_prefix) {
        size_t pl = strlen(cfg->envoy_path_prefix);
        /* "/" as the prefix: the check request's path is the original one. */
        if (pl == 1)
            pl = 0;
        if (call->target_len >= pl && memcmp(call->target, cfg->envoy_path_prefix, pl) == 0) {
            envoy = true;
            rest = call->target + pl;
            rest_len = call->target_len - pl;
        }
    }
    if ((int)orig + (int)fwd + (int)envoy > 1) {
        o->code = AR_FA_AMBIGUOUS;
        return;
    }
    if (envoy) {
        /* Envoy appends the original path (which starts with '/') to the
         * prefix; anything else is not a check request. */
        if (rest_len == 0 || rest[0] != '/') {
            o->code = AR_FA_URI_MISSING;
            return;
        }
        if (!call->method || !method_token(call->method, strlen(call->method))) {
            o->code = AR_FA_METHOD_MISSING;
            return;
        }
        o->dialect = CFG_FA_ENVOY;
        o->method = call->method;
        o->target = rest;
        o->target_len = rest_len;
        o->code = AR_OK;
        return;
    }
    if (!orig && !fwd) {
        o->code = AR_FA_URI_MISSING;
        return;
    }
    const gate_header *m = orig ? seen[H_OMETHOD] : seen[H_FMETHOD];
    const gate_header *u = orig ? seen[H_OURI] : seen[H_FURI];
    if (!u || u->value_len == 0) {
        o->code = AR_FA_URI_MISSING;
        return;
    }
    if (!m || !method_token(m->value, m->value_len)) {
        o->code = AR_FA_METHOD_MISSING;
        return;
    }
    o->dialect = orig ? CFG_FA_ORIGINAL : CFG_FA_FORWARDED;
    o->method = m->value;
    o->target = u->value;
    o->target_len = u->value_len;
    o->code = AR_OK;
}

/* ---- the listener --------------------------------------------------------- */

/* What one listener thread holds (hsrv.h calls each thread's requests with
 * its index): never touched by another thread while the listener runs. */
typedef struct fa_slot {
    xpolicy *pol;
    uint64_t gen;
    keys_snapshot *keys;
    uint64_t keys_gen;
    tc_cache *cache;
    int shard;
    int64_t untrusted_last_ms; /* rate limit of the untrusted-peer warning */
    unsigned untrusted_held;
    uint64_t rid_state;
    char *path;        /* the canonical-path buffer of this thread's decisions */
    gate_header *orig; /* the original request's headers: max_headers entries */
    size_t orig_cap;
    ag_buf answer; /* the answer's header values and body, until sent */
    char rid[HX_RID_CAP];
} fa_slot;

struct fa_server {
    hs_server *hs;
    keys_store *keys;
    pthread_mutex_t mu;
    xpolicy *pol; /* current; guarded by mu */
    uint64_t gen; /* atomic: moves with pol */
    fa_slot *slots;
    int nslots;
};

static fa_slot *slot_of(fa_server *f, int thread)
{
    if (thread < 0 || thread >= f->nslots)
        return NULL;
    fa_slot *s = &f->slots[thread];
    uint64_t g = __atomic_load_n(&f->gen, __ATOMIC_ACQUIRE);
    if (!s->pol || g != s->gen) {
        pthread_mutex_lock(&f->mu);
        xpolicy *p = xpolicy_ref(f->pol);
        pthread_mutex_unlock(&f->mu);
        xpolicy_unref(s->pol);
        s->pol = p;
        s->gen = g;
    }
    uint64_t kg = keys_generation(f->keys);
    if (kg != s->keys_gen || !s->keys) {
        keys_snapshot_unref(s->keys);
        s->keys = keys_acquire(f->keys);
        s->keys_gen = s->keys ? s->keys->generation : 0;
    }
    return s;
}

/* The caller's X-Request-Id when its first one is well formed (as proxy mode
 * reads it), else a new one. */
static void request_id(fa_slot *s, const gate_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ag_streq_ci(h[i].name, h[i].name_len, "x-request-id")) {
            hx_request_id(h[i].value, h[i].value_len, &s->rid_state, s->rid);
            return;
        }
    hx_request_id(NULL, 0, &s->rid_state, s->rid);
}

static const char *decision_name(const gate_decision *d)
{
    if (d->outcome == GATE_FORWARD)
        return "allow";
    if (d->status >= 500)
        return "error";
    if (d->status == 400 || d->status == 413 || d->status == 414 || d->status == 431 ||
        d->status == 501)
        return "reject";
    return "deny";
}

/* One access line: decision and status as the answer gave them (or
 * "aborted" and 0 for a check that never came). */
static void access_log(uint64_t elapsed_ns, const char *rid, const char *peer, const char *method,
                       const fa_original *o, const gate_decision *d, const char *decision,
                       int status)
{
    alog_rec rec = {
        .request_id = rid,
        .peer = peer,
        .method = method,
        .d = d,
        .target = o->target,
        .target_len = o->target_len,
        .decision = decision,
        .reason = d->reason ? d->reason : "",
        .status = status,
        .duration_ms = (double)elapsed_ns / 1e6,
        .mode = "forward_auth",
    };
    alog_write(&rec);
}

static void field(hs_reply *r, const char *name, const char *value)
{
    if (r->nfields < HS_MAX_FIELDS)
        r->fields[r->nfields++] = (hs_field){name, value};
}

/* The answer for d. Values the reply points at are copied into s->answer
 * (d is cleared before the listener writes the reply); -1 out of memory. */
static int answer(fa_slot *s, const gate_decision *d, const cfg_config *c, hs_reply *r)
{
    ag_buf *b = &s->answer;
    ag_buf_reset(b);
    /* Offsets, not pointers: the buffer may move while it grows. */
    size_t at_user = 0, at_org = 0, at_allow = 0, body_len = 0;
    bool user = false, org = false, allow = false;
    int rc = 0;
    r->status = 200;
    if (d->code == AR_CORS_PREFLIGHT) {
        /* A browser's preflight carries no credentials. The calling proxy
         * shows only a 2xx or 401/403 to the browser, so a preflight the
         * route's CORS policy allows is let through without an identity: the
         * ingress (or the backend) answers it with its own CORS settings. */
    } else if (d->outcome == GATE_FORWARD) {
        /* The identity headers are the whole answer: the proxy copies them
         * onto the request it forwards, in place of whatever the client sent. */
        if (d->x_user) {
            at_user = b->len;
            rc |= ag_buf_append(b, d->x_user, strlen(d->x_user) + 1);
            user = true;
        }
        if (d->x_org) {
            at_org = b->len;
            rc |= ag_buf_append(b, d->x_org, strlen(d->x_org) + 1);
            org = true;
        }
    } else {
        r->status = d->status;
        rc |= gate_error_body(d, b);
        body_len = b->len;
        if (d->status == 405 && d->allow) {
            char methods[128];
            hx_methods_format(d->allow, methods, sizeof(methods));
            rc |= ag_buf_append(b, "", 1);
            at_allow = b->len;
            rc |= ag_buf_append(b, methods, strlen(methods) + 1);
            allow = true;
        }
    }
    if (rc != 0)
        return -1;
    if (user)
        field(r, c->identity.user_header, b->p + at_user);
    if (org)
        field(r, c->identity.org_header, b->p + at_org);
    if (body_len) {
        r->body = b->p;
        r->body_len = body_len;
        field(r, "Content-Type", "application/json");
    }
    if (d->outcome != GATE_FORWARD && d->status == 401)
        field(r, "WWW-Authenticate", d->token_sent ? "Bearer error=\"invalid_token\"" : "Bearer");
    if (allow)
        field(r, "Allow", b->p + at_allow);
    field(r, "Cache-Control", "no-store");
    if (s->rid[0])
        field(r, "X-Request-Id", s->rid);
    return 0;
}

static void warn_untrusted(fa_slot *s, const char *peer)
{
    int64_t now = (int64_t)(ag_now_mono_ns() / 1000000ull);
    if (s->untrusted_last_ms && now - s->untrusted_last_ms < 1000) {
        s->untrusted_held++;
        return;
    }
    if (s->untrusted_held)
        log_warn("forward_auth_untrusted_peer: %s is not in forward_auth.trusted_peers "
                 "(%u more refused since the last line)",
                 peer, s->untrusted_held);
    else
        log_warn("forward_auth_untrusted_peer: %s is not in forward_auth.trusted_peers", peer);
    s->untrusted_last_ms = now;
    s->untrusted_held = 0;
}

static void on_request(void *ctx, int thread, const hs_request *rq, hs_reply *out)
{
    fa_server *f = ctx;
    fa_slot *s = slot_of(f, thread);
    if (!s || !s->pol) {
        out->status = 500;
        out->close = true;
        return;
    }
    const cfg_config *c = gate_config(s->pol->gate);
    const cfg_forward_auth *fc = &c->forward_auth;
    gate_decision d;
    gate_decision_init_buf(&d, s->path, GATE_PATH_MAX);
    fa_original o = {0};
    char peer[64] = "";
    const rqh_head *h = rq->head;
    /* Rendered only for a line that shows it: most answers write none. */
    if (log_access_enabled())
        na_addr_string(rq->peer, peer, sizeof(peer));
    s->rid[0] = '\0';

    if (!na_cidr_match(fc->peers, fc->npeers, rq->peer)) {
        /* Nothing of the request is read: its forwarded headers are as good
         * as anyone's. Checked on every request, so that a reload that drops
         * a peer holds for its open connections too. */
        if (!peer[0])
            na_addr_string(rq->peer, peer, sizeof(peer));
        warn_untrusted(s, peer);
        gate_refuse(&d, AR_FA_UNTRUSTED_PEER);
        request_id(s, NULL, 0);
        out->close = true;
        goto respond;
    }
    if (rq->code != AR_OK || !h) {
        /* The check request itself could not be read (rqhead.h). */
        gate_refuse(&d, rq->code != AR_OK ? rq->code : AR_INTERNAL);
        request_id(s, NULL, 0);
        goto respond;
    }
    request_id(s, rq->headers, rq->nheaders);
    fa_call call = {
        .method = h->method,
        .target = h->target,
        .target_len = h->target_len,
        .headers = rq->headers,
        .nheaders = rq->nheaders,
    };
    fa_original_of(fc, &call, s->orig, &o);
    if (o.code != AR_OK) {
        gate_refuse(&d, o.code);
        goto respond;
    }
    /* Admission and the decision exactly as in proxy mode, on the original
     * request: its method and target, the caller's headers without the
     * dialect's own. */
    adm_request ar = {
        .method = o.method,
        .version = h->minor == 1 ? ADM_HTTP_11 : ADM_HTTP_10,
        .headers = s->orig,
        .nheaders = o.nheaders,
    };
    adm_result adm = adm_check(&ar, &c->limits);
    if (adm.outcome != ADM_ADMITTED) {
        d.outcome = GATE_REFUSE;
        d.status = adm.status;
        d.error = adm.error;
        d.reason = adm.reason;
        goto respond;
    }
    gate_request req = {
        .method = o.method,
        .target = o.target,
        .target_len = o.target_len,
        .headers = s->orig,
        .nheaders = o.nheaders,
    };
    gate_decide(s->pol->gate, s->keys, s->cache, &req, ag_now_wall(), &d);
respond:
    if (answer(s, &d, c, out) != 0) {
        *out = (hs_reply){.status = 500, .close = true};
        gate_refuse(&d, AR_OUT_OF_MEMORY);
    }
    uint64_t elapsed = ag_now_mono_ns() - rq->t0_ns;
    const char *decision = decision_name(&d);
    int status = d.outcome == GATE_FORWARD ? 200 : d.status;
    access_log(elapsed, s->rid, peer, o.method ? o.method : (h ? h->method : "-"), &o, &d, decision,
               status);
    met_request_forward_auth(s->shard, d.route ? d.route->path : NULL, status, decision,
                             d.reason ? d.reason : "", (double)elapsed / 1e9);
    if (d.cache_used)
        met_cache(s->shard, d.cache_hit);
    gate_decision_clear(&d);
}

static void on_aborted(void *ctx, int thread, const struct sockaddr *sa, ag_reason code)
{
    fa_server *f = ctx;
    fa_slot *s = slot_of(f, thread);
    char peer[64];
    na_addr_string(sa, peer, sizeof(peer));
    log_info("%s: no complete forward-auth check request from %s within "
             "limits.request_timeout_ms, closing",
             reason_name(code), peer);
    if (!s || !log_access_enabled())
        return;
    gate_decision d;
    gate_decision_init_buf(&d, s->path, GATE_PATH_MAX);
    d.code = code;
    d.reason = reason_name(code);
    fa_original o = {0};
    hx_request_id(NULL, 0, &s->rid_state, s->rid);
    access_log(0, s->rid, peer, "-", &o, &d, "aborted", 0);
    gate_decision_clear(&d);
}

int fa_start(xpolicy *pol, keys_store *keys, int threads, int shard_base, fa_server **out,
             char *err, size_t errlen)
{
    int rc = -1;
    *out = NULL;
    const cfg_config *c = gate_config(pol->gate);
    const char *spec = c->forward_auth.listen;
    struct sockaddr_storage ss;
    socklen_t sl;
    char why[400];
    if (!spec || na_listen_addr(spec, &ss, &sl, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "forward_auth.listen %s", spec ? why : "is not set");
        return -1;
    }
    if (threads < 1)
        threads = 1;
    fa_server *f = calloc(1, sizeof(*f));
    if (!f || !(f->slots = calloc((size_t)threads, sizeof(*f->slots)))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->keys = keys;
    f->pol = xpolicy_ref(pol);
    f->gen = 1;
    f->nslots = threads;
    /* The check request may carry the four dialect headers besides the
     * original request's own: one more than that is over max_headers for
     * the original request too (admission's limit_headers). The head holds
     * what a proxy-mode head may hold, the original target included. */
    size_t max_headers = c->limits.max_headers + 5;
    size_t head_cap = c->limits.max_header_bytes + c->limits.max_uri_bytes + 1024;
    for (int i = 0; i < threads; i++) {
        fa_slot *s = &f->slots[i];
        s->shard = shard_base + i;
        ag_buf_init(&s->answer);
        size_t n = c->auth.token_cache_entries;
        if ((n && !(s->cache = tc_new(n, 64u * 1024 * 1024 / (size_t)threads))) ||
            !(s->path = malloc(GATE_PATH_MAX)) ||
            !(s->orig = calloc(max_headers, sizeof(*s->orig)))) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        s->orig_cap = max_headers;
    }
    hs_config hc = {
        .addr = (const struct sockaddr *)&ss,
        .addrlen = sl,
        .threads = threads,
        .max_connections = c->limits.max_connections,
        .head_cap = head_cap,
        .max_headers = max_headers,
        .request_timeout_ms = c->limits.request_timeout_ms,
        .idle_timeout_ms = c->limits.idle_timeout_ms,
        .handle = on_request,
        .aborted = on_aborted,
        .ctx = f,
    };
    if (hs_start(&hc, &f->hs, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", spec, why);
        goto out;
    }
    *out = f;
    f = NULL;
    rc = 0;
out:
    fa_stop(f);
    return rc;
}

void fa_set_policy(fa_server *f, xpolicy *p)
{
    if (!f)
        return;
    xpolicy *n = xpolicy_ref(p);
    pthread_mutex_lock(&f->mu);
    xpolicy *old = f->pol;
    f->pol = n;
    __atomic_add_fetch(&f->gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&f->mu);
    xpolicy_unref(old);
}

int fa_port(const fa_server *f)
{
    return f ? hs_port(f->hs) : -1;
}

void fa_drain(fa_server *f)
{
    if (f)
        hs_drain(f->hs);
}

void fa_stop(fa_server *f)
{
    if (!f)
        return;
    hs_stop(f->hs);
    if (f->slots) {
        for (int i = 0; i < f->nslots; i++) {
            fa_slot *s = &f->slots[i];
            xpolicy_unref(s->pol);
            keys_snapshot_unref(s->keys);
            tc_free(s->cache);
            free(s->path);
            free(s->orig);
            ag_buf_free(&s->answer);
        }
        free(f->slots);
        pthread_mutex_destroy(&f->mu);
    }
    xpolicy_unref(f->pol);
    free(f);
}
