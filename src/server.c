/* server: the process. Loads the configuration, binds the one listener,
 * starts the workers, and on the main thread handles signals: reload
 * (SIGHUP), log reopen (SIGUSR1), drain and stop (SIGTERM/SIGINT). */
#include "server.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "cfgtab.h"
#include "cfgwatch.h"
#include "config.h"
#include "conns.h"
#include "fauth.h"
#include "gate.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "notify.h"
#include "resolve.h"
#include "version.h"
#include "worker.h"

/* The same reading as `authgate check` (netaddr.c): a host name is resolved. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *sl, char *err,
                        size_t errlen)
{
    return na_listen_addr(spec, ss, sl, err, errlen);
}

/* The one listening socket. Bound without SO_REUSEPORT, so a second daemon
 * (or anything else) on the same address makes this one refuse to start
 * instead of silently sharing the connections. listen() is separate: the
 * caller writes the pid file in between. */
static int bind_listener(const char *spec)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    char err[512];
    if (parse_listen(spec, &ss, &sl, err, sizeof(err)) != 0) {
        log_error("listen: %s", err);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("listen on %s: %s", spec, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        if (errno == EADDRINUSE)
            log_error("address already in use: %s (another authgate, or another program, "
                      "listens there)",
                      spec);
        else
            log_error("listen on %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* The resolver has a new answer: exchanges waiting for a name retry. */
static void resolver_answered(void *ctx)
{
    srv *s = ctx;
    if (__atomic_load_n(&s->workers_ready, __ATOMIC_ACQUIRE))
        worker_wake_all(s);
}

static void warn_one_restart_only(const char *key, void *ctx)
{
    (void)ctx;
    log_warn("reload: %s changed, but it only takes effect on restart", key);
}

/* Settings read once at start-up (sockets, threads, the key source, the log
 * target) are not changed by a reload; say so instead of letting the new
 * policy hash suggest that they were. Which keys those are is in the key
 * table (cfgtab.c), not here. */
static void warn_restart_only(const cfg_config *o, const cfg_config *n)
{
    cfg_restart_only_changes(o, n, warn_one_restart_only, NULL);
}

static void reload(srv *s)
{
    cfg_config *cfg = NULL;
    cfg_diags diags = {0};
    char err[256];
    sd_notify_msg("RELOADING=1");
    if (cfg_load_file(s->config_path, &cfg, &diags) != 0) {
        met_reload(false);
        sd_notify_msg("READY=1\nSTATUS=reload failed; previous policy still active");
        /* The verdict line carries the first problem, so a reader (or a log
         * pipeline) never sees it without a location; any others follow, one
         * per line. */
        for (size_t i = 0; i < diags.nerrors; i++)
            log_error("%s%s", i == 0 ? "reload failed, keeping the running policy: " : "",
                      diags.errors[i]);
        cfg_diags_free(&diags);
        return;
    }
    /* Same as at start-up: a lint warning in the new file must not go unseen
     * just because it arrived by SIGHUP. */
    for (size_t i = 0; i < diags.nwarnings; i++)
        log_warn("%s", diags.warnings[i]);
    cfg_diags_free(&diags);
    gate *g = NULL;
    char hash[17];
    memcpy(hash, cfg->hash, sizeof(hash));
    if (gate_new(cfg, &g, err, sizeof(err)) != 0) {
        met_reload(false);
        sd_notify_msg("READY=1\nSTATUS=reload failed; previous policy still active");
        log_error("reload failed, keeping the running policy: %s", err);
        cfg_free(cfg);
        return;
    }
    xpolicy *np = xpolicy_new(g, s->resolver, err, sizeof(err));
    if (!np) {
        met_reload(false);
        sd_notify_msg("READY=1\nSTATUS=reload failed; previous policy still active");
        log_error("reload failed, keeping the running policy: %s", err);
        return;
    }
    warn_restart_only(gate_config(s->gate), gate_config(g));
    pthread_mutex_lock(&s->mu);
    xpolicy *old = s->pol;
    s->pol = np;
    s->gate = g;
    memcpy(s->policy_hash, hash, sizeof(s->policy_hash));
    s->policy_loaded_at = ag_now_wall();
    __atomic_add_fetch(&s->gate_gen, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->mu);
    xpolicy_unref(old);
    fa_set_policy(s->fauth, np);
    worker_wake_all(s);
    met_reload(true);
    sd_notify_msg("READY=1\nSTATUS=serving");
    log_info("reloaded %s (policy %s)", s->config_path, hash);
}

static void admin_status(void *ctx, adm_status *st)
{
    srv *s = ctx;
    keys_status ks;
    keys_get_status(s->keys, &ks);
    memset(st, 0, sizeof(*st));
    st->keys_ready = ks.ready;
    st->policy_loaded = true;
    st->draining = __atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE) != 0;
    pthread_mutex_lock(&s->mu);
    memcpy(st->policy_hash, s->policy_hash, sizeof(st->policy_hash));
    st->policy_loaded_at = s->policy_loaded_at;
    pthread_mutex_unlock(&s->mu);
    memcpy(st->key_fingerprint, ks.fingerprint, sizeof(st->key_fingerprint));
    snprintf(st->key_error, sizeof(st->key_error), "%s", ks.last_error);
    st->gauges.keys_ready = ks.ready;
    st->gauges.key_loaded_at = ks.loaded_at;
    st->gauges.key_refresh_ok = ks.refresh_ok;
    st->gauges.key_refresh_failures = ks.refresh_failures;
    st->gauges.policy_hash = st->policy_hash;
    st->gauges.policy_loaded_at = st->policy_loaded_at;
    st->gauges.version = AUTHGATE_VERSION;
}

int srv_main(const char *config_path, const char *pid_file)
{
    int rc = 1;
    srv s = {.listen_fd = -1};
    cfg_config *cfg = NULL;
    cfg_diags diags = {0};
    char err[512];
    pthread_t *threads = NULL;
    int started = 0;
    const char *pid_written = NULL;
    pthread_mutex_init(&s.mu, NULL);

    if (cfg_load_file(config_path, &cfg, &diags) != 0) {
        cfg_diags_print(&diags, stderr);
        goto out;
    }
    for (size_t i = 0; i < diags.nwarnings; i++)
        log_warn("%s", diags.warnings[i]);
    log_level lvl;
    if (cfg->log.level && log_level_from_name(cfg->log.level, &lvl) == 0)
        log_set_level(lvl);
    if (log_access_open(cfg->log.access_log) != 0) {
        log_error("cannot open access log %s: %s", cfg->log.access_log, strerror(errno));
        goto out;
    }
    s.config_path = ag_strdup(config_path);
    char *tmp = ag_strdup(config_path);
    s.config_dir = ag_strdup(tmp ? dirname(tmp) : ".");
    free(tmp);
    if (keys_start(&cfg->auth, s.config_dir, &s.keys, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    s.nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s.nworkers < 1)
        s.nworkers = 1;
    char listen_spec[256];
    snprintf(listen_spec, sizeof(listen_spec), "%s", cfg->listen);
    char hash[17];
    memcpy(hash, cfg->hash, sizeof(hash));
    memcpy(s.policy_hash, cfg->hash, sizeof(s.policy_hash));
    s.policy_loaded_at = ag_now_wall();
    char admin_spec[256] = "";
    if (cfg->admin_listen)
        snprintf(admin_spec, sizeof(admin_spec), "%s", cfg->admin_listen);
    if (!(s.resolver = rs_new(30000, resolver_answered, &s))) {
        log_error("cannot start the resolver");
        goto out;
    }
    gate *g0 = NULL;
    if (gate_new(cfg, &g0, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    cfg = NULL; /* owned by the gate */
    if (!(s.pol = xpolicy_new(g0, s.resolver, err, sizeof(err)))) {
        log_error("%s", err);
        goto out;
    }
    s.gate = g0;
    s.gate_gen = 1;

    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* Shards: the workers', then the forward-auth threads', then the shared one. */
    int fa_threads = 0;
    if (gate_config(s.gate)->forward_auth.listen) {
        fa_threads = gate_config(s.gate)->forward_auth.threads;
        if (fa_threads <= 0)
            fa_threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (fa_threads < 1)
            fa_threads = 1;
    }
    if (met_init(s.nworkers + fa_threads + 1) != 0)
        goto out;
    if (admin_spec[0] && adm_start(admin_spec, admin_status, &s, &s.admin, err, sizeof(err)) != 0) {
        log_error("admin listener: %s", err);
        goto out;
    }
    if (fa_threads &&
        fa_start(s.pol, s.keys, fa_threads, s.nworkers, &s.fauth, err, sizeof(err)) != 0) {
        log_error("forward_auth listener: %s", err);
        goto out;
    }
    /* Bound first (a second instance stops here, before touching the pid
     * file), listening last: the pid file exists before any connection can
     * be accepted, so whoever sees the port answer (a supervisor, a test,
     * `authgate reload`) can rely on it. */
    if ((s.listen_fd = bind_listener(listen_spec)) < 0)
        goto out;
    if (!(s.budget = cn_new(gate_config(s.gate)->limits.max_connections,
                            gate_config(s.gate)->limits.max_connections_per_ip)))
        goto out;
    if (pid_file) {
        FILE *pf = fopen(pid_file, "w");
        bool ok = pf && fprintf(pf, "%ld\n", (long)getpid()) > 0;
        if (pf && fclose(pf) != 0)
            ok = false;
        if (!ok) {
            log_error("cannot write pid file %s: %s", pid_file, strerror(errno));
            pid_file = NULL;
            goto out;
        }
        pid_written = pid_file;
    }
    s.workers = calloc((size_t)s.nworkers, sizeof(worker));
    threads = calloc((size_t)s.nworkers, sizeof(pthread_t));
    if (!s.workers || !threads)
        goto out;
    for (int i = 0; i < s.nworkers; i++) {
        s.workers[i].ep = s.workers[i].evfd = -1;
        if (worker_init(&s.workers[i], &s, i) != 0) {
            log_error("cannot start worker %d", i);
            goto out;
        }
    }
    if (listen(s.listen_fd, 1024) != 0) {
        log_error("listen on %s: %s", listen_spec, strerror(errno));
        goto out;
    }
    __atomic_store_n(&s.workers_ready, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < s.nworkers; i++) {
        if (pthread_create(&threads[i], NULL, worker_main, &s.workers[i]) != 0)
            goto stop;
        started++;
    }
    log_info("listening on %s with %d workers (policy %s)", listen_spec, s.nworkers, hash);
    if (admin_spec[0])
        log_info("admin listener on %s", admin_spec);
    if (s.fauth)
        log_info("forward_auth listener on %s with %d threads",
                 gate_config(s.gate)->forward_auth.listen, fa_threads);
    sd_notify_msg("READY=1\nSTATUS=serving");
    /* A change to the file arrives here as SIGHUP (cfgwatch.h). */
    cw_watch *watch = NULL;
    if (gate_config(s.gate)->watch_config &&
        !(watch = cw_start(config_path, 500, err, sizeof(err))))
        log_warn("config watch: %s; reload with SIGHUP", err);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(&s);
            rs_resolve_now(s.resolver);
            keys_refresh_now(s.keys);
        } else if (sig == SIGUSR1) {
            log_access_reopen();
        } else {
            int prev = __atomic_load_n(&s.stopping, __ATOMIC_ACQUIRE);
            if (prev == 0) {
                sd_notify_msg("STOPPING=1");
                log_info("shutting down: draining in-flight requests (up to %ld ms)",
                         gate_config(s.gate)->shutdown_grace_ms);
                s.stop_deadline_ms = ag_now_mono_ms() + gate_config(s.gate)->shutdown_grace_ms;
                s.drain_start_ms = ag_now_mono_ms();
            } else {
                log_info("second signal: exiting now");
            }
            __atomic_store_n(&s.stopping, prev + 1, __ATOMIC_RELEASE);
            /* New connections are refused at once from here on, instead of
             * queueing behind a daemon that is leaving. */
            if (prev == 0) {
                shutdown(s.listen_fd, SHUT_RD);
                fa_drain(s.fauth);
            }
            worker_wake_all(&s);
            if (prev == 0) {
                /* Wait for the drain while still answering a second signal. */
                struct timespec poll = {0, 50 * 1000000};
                for (;;) {
                    siginfo_t si;
                    int r = sigtimedwait(&set, &si, &poll);
                    if (r == SIGTERM || r == SIGINT) {
                        __atomic_store_n(&s.stopping, 2, __ATOMIC_RELEASE);
                        worker_wake_all(&s);
                    }
                    bool all_done = true;
                    for (int i = 0; i < started; i++)
                        if (!__atomic_load_n(&s.workers[i].finished, __ATOMIC_ACQUIRE))
                            all_done = false;
                    if (all_done)
                        break;
                }
            }
            break;
        }
    }
    cw_stop(watch);
    rc = 0;
stop:
    __atomic_store_n(&s.stopping, 2, __ATOMIC_RELEASE);
    worker_wake_all(&s);
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    log_info("stopped");
out:
    if (pid_written)
        unlink(pid_written);
    if (s.admin)
        adm_stop(s.admin);
    fa_stop(s.fauth);
    if (s.workers)
        for (int i = 0; i < s.nworkers; i++)
            worker_destroy(&s.workers[i]);
    met_shutdown();
    if (s.listen_fd >= 0)
        close(s.listen_fd);
    cn_free(s.budget);
    free(s.workers);
    free(threads);
    xpolicy_unref(s.pol);
    if (s.resolver)
        rs_free(s.resolver);
    if (s.keys)
        keys_stop(s.keys);
    if (cfg)
        cfg_free(cfg);
    cfg_diags_free(&diags);
    free(s.config_path);
    free(s.config_dir);
    log_access_close();
    pthread_mutex_destroy(&s.mu);
    return rc;
}
