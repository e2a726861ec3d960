/* authgate: command-line entry point. */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/opensslv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cmds.h"
#include "config.h"
#include "server.h"
#include "version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage:\n"
               "  authgate run -c FILE          serve (also: authgate -c FILE)\n"
               "  authgate check -c FILE        validate a configuration\n"
               "  authgate explain -c FILE [--token T | --token-file F] [--header 'N: v']...\n"
               "                   METHOD TARGET   decide one request offline\n"
               "  authgate mint --key PEM --issuer URL --user-id ID [...]\n"
               "                                 print a signed test token\n"
               "  authgate version\n");
}

/* Parses "-c FILE" / "--config FILE"; returns the file or NULL after printing usage. */
static const char *config_arg(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
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
    const char *file = config_arg(argc, argv);
    if (!file)
        return 2;
    return srv_main(file);
}

int cmd_check(int argc, char **argv)
{
    const char *file = config_arg(argc, argv);
    if (!file)
        return 2;
    cfg_config *cfg = NULL;
    cfg_diags d = {0};
    int rc = cfg_load_file(file, &cfg, &d);
    cfg_diags_print(&d, stdout);
    cfg_diags_free(&d);
    if (rc != 0)
        return 1;
    cfg_free(cfg);
    printf("ok\n");
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
    else if (strcmp(cmd, "check") == 0)
        rc = cmd_check(argc - 1, argv + 1);
    else if (strcmp(cmd, "mint") == 0)
        rc = cmd_mint(argc - 1, argv + 1);
    else if (strcmp(cmd, "explain") == 0)
        rc = cmd_explain(argc - 1, argv + 1);
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
