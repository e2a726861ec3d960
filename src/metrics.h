/* metrics: counters and histograms for /metrics (Prometheus text format).
 * Recording is lock-free per worker (each worker writes only its own shard);
 * rendering sums the shards. Label strings are copied, so a reload that frees
 * the old configuration never leaves dangling labels. */
#ifndef AG_METRICS_H
#define AG_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* Call once before workers start; nshards = number of workers + 1 (the last
 * shard is for the main/admin threads). */
int met_init(int nshards);
void met_shutdown(void);

/* One finished request. route may be NULL (no route); decision is
 * allow|deny|reject|error|aborted; upstream_s < 0 when there was no upstream
 * exchange. */
void met_request(int shard, const char *route, int status, const char *decision, const char *reason,
                 double duration_s, double upstream_s);
/* The same, for a decision of the forward-auth listener (fauth.h): its series
 * carry mode="forward_auth"; proxy series have no mode label. */
void met_request_forward_auth(int shard, const char *route, int status, const char *decision,
                              const char *reason, double duration_s);
void met_upstream_error(int shard, const char *upstream, const char *reason);
void met_cache(int shard, bool hit);
void met_connections(int shard, int delta);
void met_reload(bool ok);
/* Tunnels (tun.h): one opened; one closed, by cause, with its bytes. */
void met_tunnel_opened(void);
void met_tunnel_closed(int cause, uint64_t bytes_up, uint64_t bytes_down);

/* Gauges the renderer asks for at scrape time. */
typedef struct met_gauges {
    bool keys_ready;
    int64_t key_loaded_at; /* wall seconds, 0 = never */
    uint64_t key_refresh_ok, key_refresh_failures;
    const char *policy_hash;
    int64_t policy_loaded_at;
    const char *version;
} met_gauges;

int met_render(ag_buf *out, const met_gauges *g);

#endif
