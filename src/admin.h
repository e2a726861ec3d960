/* admin: the optional admin listener (admin_listen), never on the public port:
 * /healthz, /readyz and /metrics. It runs on its own libmicrohttpd thread so a
 * scrape never competes with the workers' event loops. */
#ifndef AG_ADMIN_H
#define AG_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "metrics.h"
#include "util.h"

typedef struct adm_server adm_server;

/* Called on the admin thread to fill readiness facts and gauges. */
typedef struct adm_status {
    bool keys_ready;
    bool policy_loaded;
    bool draining;
    char policy_hash[17];
    int64_t policy_loaded_at;
    char key_fingerprint[17];
    char key_error[160];
    met_gauges gauges;
} adm_status;
typedef void (*adm_status_fn)(void *ctx, adm_status *out);

int adm_start(const char *listen, adm_status_fn fn, void *ctx, adm_server **out, char *err,
              size_t errlen);
/* The bound port (useful with port 0 in tests), or -1. */
int adm_port(const adm_server *a);
void adm_stop(adm_server *a);

#endif
