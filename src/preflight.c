/* preflight: see preflight.h. Each check calls the function `run` calls, not
 * a copy of its rules, so the two cannot disagree. */
#include "preflight.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gate.h"
#include "keys.h"
#include "netaddr.h"
#include "upstream.h"
#include "util.h"

__attribute__((format(printf, 5, 6))) static void add(cfg_diags *d, const char *file, int line,
                                                      int col, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ag_buf b;
    ag_buf_init(&b);
    char *s = NULL;
    if (ag_buf_printf(&b, "%s:%d:%d: %s", file, line, col, msg) == 0)
        s = ag_buf_steal(&b);
    ag_buf_free(&b);
    if (!s)
        s = ag_strdup("out of memory");
    char **p = s ? realloc(d->errors, (d->nerrors + 1) * sizeof(*p)) : NULL;
    if (!p) {
        free(s);
        return;
    }
    d->errors = p;
    p[d->nerrors++] = s;
}

/* What run does with the upstream's URL at load: the one compile (fwd's
 * parser, through up_target_compile) for http:// and https:// alike. */
static const char *upstream_problem(const cfg_upstream *u, char *why, size_t cap)
{
    up_target t;
    return up_target_compile(u->url, &t, why, cap) == 0 ? NULL : why;
}

/* log_access_open creates the file (mode 0640) if needed: the file, or its
 * directory, must be writable. */
static int access_log_problem(const char *target, char *why, size_t cap)
{
    if (!target || strcmp(target, "stdout") == 0 || strcmp(target, "off") == 0)
        return 0;
    if (access(target, F_OK) == 0) {
        if (access(target, W_OK) != 0) {
            snprintf(why, cap, "cannot write %s: %s", target, strerror(errno));
            return -1;
        }
        return 0;
    }
    char *copy = ag_strdup(target);
    if (!copy) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    const char *dir = dirname(copy);
    int rc = 0;
    if (access(dir, W_OK | X_OK) != 0) {
        snprintf(why, cap, "cannot create %s: %s: %s", target, dir, strerror(errno));
        rc = -1;
    }
    free(copy);
    return rc;
}

size_t pf_check(cfg_config *cfg, cfg_diags *d)
{
    size_t before = d->nerrors;
    const char *f = cfg->file ? cfg->file : "config";
    char err[512];
    struct sockaddr_storage ss;
    socklen_t sl;

    if (na_listen_addr(cfg->listen, &ss, &sl, err, sizeof(err)) != 0)
        add(d, f, cfg->listen_line, cfg->listen_col, "listen: %s", err);
    if (cfg->admin_listen && na_listen_addr(cfg->admin_listen, &ss, &sl, err, sizeof(err)) != 0)
        add(d, f, cfg->admin_line, cfg->admin_col, "admin_listen: %s", err);

    /* Paths in cfg are absolute already (the loader resolved them). */
    if (keys_preflight(&cfg->auth, NULL, err, sizeof(err)) != 0) {
        const char *key = cfg->auth.verifier_key_file    ? "auth.verifier_key_file: "
                          : cfg->auth.verifier_key_pem   ? "auth.verifier_key_pem: "
                          : strncmp(err, "auth", 4) != 0 ? "auth: "
                                                         : "";
        add(d, f, cfg->auth.key_line, cfg->auth.key_col, "%s%s", key, err);
    }

    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const cfg_upstream *u = &cfg->upstreams[i];
        char ubuf[160];
        const char *why = u->url ? upstream_problem(u, ubuf, sizeof(ubuf)) : NULL;
        if (why)
            add(d, f, u->line, u->col, "upstreams.%s.url: %s", u->name, why);
    }

    if (access_log_problem(cfg->log.access_log, err, sizeof(err)) != 0)
        add(d, f, 1, 1, "log.access_log: %s", err);

    gate *g = NULL;
    if (gate_new(cfg, &g, err, sizeof(err)) != 0) {
        add(d, f, 1, 1, "%s", err);
        cfg_free(cfg);
    } else {
        gate_unref(g); /* frees cfg */
    }
    return d->nerrors - before;
}
