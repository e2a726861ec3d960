/* authgate: command-line entry point. */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/opensslv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cmds.h"
#include "cfgtab.h"
#include "config.h"
#include "preflight.h"
#include "server.h"
#include "version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage:\n"
               "  authgate run -c FILE [--pid-file PATH]\n"
               "                                 serve (also: authgate -c FILE)\n"
               "  authgate reload -c FILE --pid-file PATH\n"
               "                                 validate FILE, then make the daemon reload it\n"
               "  authgate check -c FILE [--strict]\n"
               "                                 everything run does short of serving;\n"
               "                                 --strict: warnings fail it too\n"
               "  authgate check --dump-keys    print the configuration keys (tab-separated)\n"
               "  authgate explain -c FILE [--token T | --token-file F] [--header 'N: v']...\n"
               "                   METHOD TARGET   decide one request offline\n"
               "  authgate healthcheck -c FILE [--timeout-ms MS]\n"
               "                                 is the daemon FILE describes alive? exit 0/1\n"
               "  authgate mint --key PEM --issuer URL --user-id ID [...]\n"
               "                                 print a signed test token\n"
               "  authgate version\n");
}

/* Parses "-c FILE" / "--config FILE" and, where allowed, "--pid-file PATH"
 * and "--strict". Returns the config file, or NULL after printing usage. */
static const char *config_arg(int argc, char **argv, const char **pid_file, bool *strict)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"pid-file", required_argument, NULL, 'p'},
                                         {"strict", no_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *file = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            file = optarg;
            break;
        case 'p':
            if (!pid_file) {
                fprintf(stderr, "authgate %s: --pid-file is not an option here\n", argv[0]);
                return NULL;
            }
            *pid_file = optarg;
            break;
        case 's':
            if (!strict) {
                fprintf(stderr, "authgate %s: --strict is not an option here\n", argv[0]);
                return NULL;
            }
            *strict = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return NULL;
        }
    }
    if (!file || optind != argc) {
        fprintf(stderr, "authgate %s: expected -c FILE\n", argv[0]);
        return NULL;
    }
    return file;
}

int cmd_run(int argc, char **argv)
{
    const char *pid_file = NULL;
    const char *file = config_arg(argc, argv, &pid_file, NULL);
    if (!file)
        return 2;
    return srv_main(file, pid_file);
}

/* The whole pre-flight: the file (cfg_load_file, as run loads it), then what
 * run does with it short of binding and serving (preflight.c). A file that
 * passes starts the daemon, in the same environment. */
int cmd_check(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--dump-keys") == 0) {
        cfg_dump_keys(stdout);
        return 0;
    }
    bool strict = false;
    const char *file = config_arg(argc, argv, NULL, &strict);
    if (!file)
        return 2;
    cfg_config *cfg = NULL;
    cfg_diags d = {0};
    int rc = cfg_load_file(file, &cfg, &d);
    size_t nroutes = 0, nupstreams = 0;
    char hash[17] = "";
    if (rc == 0) {
        nroutes = cfg->nroutes;
        nupstreams = cfg->nupstreams;
        memcpy(hash, cfg->hash, sizeof(hash));
        if (pf_check(cfg, &d) > 0) /* takes cfg */
            rc = -1;
    }
    cfg_diags_print(&d, stdout);
    size_t nwarn = d.nwarnings;
    cfg_diags_free(&d);
    if (rc != 0)
        return 1;
    if (strict && nwarn > 0) {
        printf("%zu warning%s, and --strict makes them fail the check\n", nwarn,
               nwarn == 1 ? "" : "s");
        return 1;
    }
    printf("ok: %zu route%s, %zu upstream%s, policy %s\n", nroutes, nroutes == 1 ? "" : "s",
           nupstreams, nupstreams == 1 ? "" : "s", hash);
    return 0;
}

/* Validate the file first, then signal the running daemon: a broken file never
 * reaches it (it would keep its policy anyway, but the operator sees the
 * errors here, with their line and column, instead of in the daemon's log). */
int cmd_reload(int argc, char **argv)
{
    const char *pid_file = NULL;
    const char *file = config_arg(argc, argv, &pid_file, NULL);
    if (!file)
        return 2;
    if (!pid_file) {
        fprintf(stderr, "authgate reload: --pid-file PATH is required (the file given to "
                        "authgate run --pid-file)\n");
        return 2;
    }
    cfg_config *cfg = NULL;
    cfg_diags d = {0};
    int rc = cfg_load_file(file, &cfg, &d);
    cfg_diags_print(&d, stdout);
    cfg_diags_free(&d);
    if (rc != 0) {
        fprintf(stderr, "authgate reload: %s has errors; the running daemon was not signalled\n",
                file);
        return 1;
    }
    char hash[17];
    memcpy(hash, cfg->hash, sizeof(hash));
    cfg_free(cfg);
    FILE *f = fopen(pid_file, "r");
    long pid = 0;
    if (!f || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
        fprintf(stderr, "authgate reload: cannot read a pid from %s\n", pid_file);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    if (kill((pid_t)pid, SIGHUP) != 0) {
        fprintf(stderr, "authgate reload: cannot signal pid %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    printf("reload requested: pid %ld, policy %s\n", pid, hash);
    return 0;
}

static int cmd_version(void)
{
    printf("authgate %s (libmicrohttpd %s, %s, jansson %s, libyaml %s, %s)\n", AUTHGATE_VERSION,
           MHD_get_version(), curl_version(), JANSSON_VERSION, yaml_get_version_string(),
           OPENSSL_VERSION_TEXT);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-c") == 0 || strcmp(cmd, "--config") == 0) {
        /* "authgate -c FILE" is "authgate run -c FILE". */
        argv[0] = "run";
        return cmd_run(argc, argv);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "authgate: libcurl failed to initialise\n");
        return 1;
    }
    int rc;
    if (strcmp(cmd, "run") == 0)
        rc = cmd_run(argc - 1, argv + 1);
    else if (strcmp(cmd, "reload") == 0)
        rc = cmd_reload(argc - 1, argv + 1);
    else if (strcmp(cmd, "check") == 0)
        rc = cmd_check(argc - 1, argv + 1);
    else if (strcmp(cmd, "mint") == 0)
        rc = cmd_mint(argc - 1, argv + 1);
    else if (strcmp(cmd, "explain") == 0)
        rc = cmd_explain(argc - 1, argv + 1);
    else if (strcmp(cmd, "healthcheck") == 0)
        rc = cmd_healthcheck(argc - 1, argv + 1);
    else if (strcmp(cmd, "reasons") == 0)
        rc = cmd_reasons(argc - 1, argv + 1);
    else if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        rc = cmd_version();
    else if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        rc = 0;
    } else {
        fprintf(stderr, "authgate: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
