/* alog: the record of one request, once, when libmicrohttpd reports it
 * complete: the JSON access-log line and the request metrics. The line is
 * formatted from an alog_rec (alog.h), which the forward-auth listener fills
 * too, so both modes write the same fields in the same order. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alog.h"
#include "log.h"
#include "metrics.h"
#include "tun.h"
#include "worker.h"

static const char *decision_name(const xchg *x)
{
    const gate_decision *d = &x->d;
    if (x->status == 0)
        return "aborted";
    if (d->outcome == GATE_FORWARD && d->route)
        return x->upstream_error ? "error" : "allow";
    if (d->code == AR_CORS_PREFLIGHT && x->status == 204)
        return "allow"; /* a preflight the gateway answered */
    if (x->status >= 500)
        return "error";
    if (x->status == 400 || x->status == 413 || x->status == 414 || x->status == 431 ||
        x->status == 501)
        return "reject";
    return "deny";
}

void alog_write(const alog_rec *r)
{
    if (!log_access_enabled())
        return;
    ag_buf b;
    ag_buf_init(&b);
    const gate_decision *d = r->d;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int rc = ag_buf_printf(&b, "{\"ts\":%lld.%03ld,\"request_id\":", (long long)ts.tv_sec,
                           ts.tv_nsec / 1000000);
    rc |= ag_buf_json_str(&b, r->request_id, strlen(r->request_id));
    rc |= ag_buf_puts(&b, ",\"peer\":");
    rc |= ag_buf_json_str(&b, r->peer, strlen(r->peer));
    rc |= ag_buf_puts(&b, ",\"method\":");
    const char *m = r->method ? r->method : "";
    rc |= ag_buf_json_str(&b, m, strnlen(m, 32));
    rc |= ag_buf_puts(&b, ",\"path\":");
    if (d->path_len) {
        rc |= ag_buf_json_str(&b, d->path, d->path_len);
    } else {
        /* Refused before canonicalization: log the raw path, but never its
         * query, which often carries credentials. */
        const char *t = r->target ? r->target : "";
        size_t tl = r->target ? r->target_len : 0;
        const char *q = memchr(t, '?', tl);
        if (q)
            tl = (size_t)(q - t);
        rc |= ag_buf_json_str(&b, t, tl > 512 ? 512 : tl);
    }
    rc |= ag_buf_puts(&b, ",\"route\":");
    if (d->route)
        rc |= ag_buf_json_str(&b, d->route->path, strlen(d->route->path));
    else
        rc |= ag_buf_puts(&b, "null");
    rc |= ag_buf_printf(
        &b, ",\"policy\":\"%s\",\"decision\":\"%s\",\"reason\":\"%s\",\"status\":%d",
        d->route ? pol_kind_name(d->route->policy.kind) : "", r->decision, r->reason, r->status);
    rc |= ag_buf_puts(&b, ",\"user_id\":");
    if (d->user)
        rc |= ag_buf_json_str(&b, id_user_id(d->user), strlen(id_user_id(d->user)));
    else
        rc |= ag_buf_puts(&b, "null");
    rc |= ag_buf_puts(&b, ",\"org_id\":");
    if (d->has_org_id && d->pol.org)
        rc |= ag_buf_json_str(&b, d->org_id, d->org_id_len);
    else
        rc |= ag_buf_puts(&b, "null");
    rc |= ag_buf_puts(&b, ",\"upstream\":");
    if (r->upstream)
        rc |= ag_buf_json_str(&b, r->upstream, strlen(r->upstream));
    else
        rc |= ag_buf_puts(&b, "null");
    if (r->upstream_status)
        rc |= ag_buf_printf(&b, ",\"upstream_status\":%ld", r->upstream_status);
    else
        rc |= ag_buf_puts(&b, ",\"upstream_status\":null");
    rc |= ag_buf_printf(&b, ",\"duration_ms\":%.3f,\"upstream_ms\":%.3f,\"cache\":%s",
                        r->duration_ms, r->upstream_ms, d->cache_hit ? "true" : "false");
    rc |= ag_buf_printf(&b, ",\"mode\":\"%s\"", r->mode);
    if (r->terminated)
        rc |= ag_buf_printf(&b, ",\"terminated\":%d", r->terminated);
    rc |= ag_buf_puts(&b, "}\n");
    if (rc == 0)
        log_access_write(b.p, b.len);
    ag_buf_free(&b);
}

static void access_log(xchg *x, enum MHD_RequestTerminationCode toe)
{
    const gate_decision *d = &x->d;
    alog_rec r = {
        .request_id = x->request_id,
        .peer = x->client_addr,
        .method = x->method,
        .d = d,
        .target = x->target,
        .target_len = x->target_len,
        .decision = decision_name(x),
        .reason = x->upstream_error ? x->upstream_error
                  : d->reason       ? d->reason
                                    : "",
        .status = x->status,
        /* An upstream failure (502/504) names the upstream too. */
        .upstream =
            d->route && d->route->upstream && (d->outcome == GATE_FORWARD || x->upstream_error)
                ? d->route->upstream->name
                : NULL,
        .upstream_status = x->upstream_status,
        /* A handshake that became a tunnel is logged when the tunnel closes;
         * its own duration stops at the 101. */
        .duration_ms =
            (double)((x->t_tunnel_ns ? x->t_tunnel_ns : ag_now_mono_ns()) - x->t_start_ns) / 1e6,
        .upstream_ms = x->t_upstream_ns && x->t_upstream_hdr_ns
                           ? (double)(x->t_upstream_hdr_ns - x->t_upstream_ns) / 1e6
                           : 0.0,
        .mode = "proxy",
        .terminated = toe != MHD_REQUEST_TERMINATED_COMPLETED_OK ? (int)toe : 0,
    };
    alog_write(&r);
}

static void record_metrics(xchg *x)
{
    const gate_decision *d = &x->d;
    int shard = x->w->id;
    const char *decision = decision_name(x);
    const char *reason = x->upstream_error ? x->upstream_error : d->reason ? d->reason : "";
    double dur =
        (double)((x->t_tunnel_ns ? x->t_tunnel_ns : ag_now_mono_ns()) - x->t_start_ns) / 1e9;
    double up = x->t_upstream_ns && x->t_upstream_hdr_ns
                    ? (double)(x->t_upstream_hdr_ns - x->t_upstream_ns) / 1e9
                    : -1.0;
    met_request(shard, d->route ? d->route->path : NULL, x->status, decision, reason, dur, up);
    if (d->cache_used)
        met_cache(shard, d->cache_hit);
    if (x->upstream_error && d->route && d->route->upstream)
        met_upstream_error(shard, d->route->upstream->name, x->upstream_error);
}

void alog_request(xchg *x, enum MHD_RequestTerminationCode toe)
{
    access_log(x, toe);
    record_metrics(x);
}

/* One line per tunnel, when it closes: the handshake had its own line. */
void alog_tunnel(const tun_record *r, const tun_stats *st)
{
    met_tunnel_closed((int)st->cause, st->bytes_up, st->bytes_down);
    if (!log_access_enabled())
        return;
    ag_buf b;
    ag_buf_init(&b);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int rc = ag_buf_printf(&b, "{\"ts\":%lld.%03ld,\"event\":\"tunnel_close\",\"request_id\":",
                           (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    rc |= ag_buf_json_str(&b, r->request_id, strlen(r->request_id));
    rc |= ag_buf_puts(&b, ",\"peer\":");
    rc |= ag_buf_json_str(&b, r->peer, strlen(r->peer));
    rc |= ag_buf_puts(&b, ",\"route\":");
    rc |= r->route ? ag_buf_json_str(&b, r->route, strlen(r->route)) : ag_buf_puts(&b, "null");
    rc |= ag_buf_puts(&b, ",\"user_id\":");
    rc |=
        r->user_id ? ag_buf_json_str(&b, r->user_id, strlen(r->user_id)) : ag_buf_puts(&b, "null");
    rc |= ag_buf_puts(&b, ",\"upstream\":");
    rc |= r->upstream ? ag_buf_json_str(&b, r->upstream, strlen(r->upstream))
                      : ag_buf_puts(&b, "null");
    rc |=
        ag_buf_printf(&b,
                      ",\"duration_ms\":%lld,\"bytes_up\":%llu,\"bytes_down\":%llu,"
                      "\"closed_by\":\"%s\"}\n",
                      (long long)(st->closed_ms - st->opened_ms), (unsigned long long)st->bytes_up,
                      (unsigned long long)st->bytes_down, tun_cause_name(st->cause));
    if (rc == 0)
        log_access_write(b.p, b.len);
    ag_buf_free(&b);
}
