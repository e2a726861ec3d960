/* Shared by the config loader's unit tests (test_config, test_cfghdr,
 * test_cfgcors, test_cfgroute): load a YAML string and look for one
 * diagnostic. Static inline so a test file may leave any of them unused. */
#ifndef AG_CFGTEST_H
#define AG_CFGTEST_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

static inline int load_str(const char *yaml, cfg_config **c, cfg_diags *d)
{
    memset(d, 0, sizeof(*d));
    *c = NULL;
    return cfg_load_string("t.yaml", yaml, strlen(yaml), c, d);
}

static inline bool has_diag(char **list, size_t n, const char *needle)
{
    for (size_t i = 0; i < n; i++)
        if (strstr(list[i], needle))
            return true;
    return false;
}

static inline void dump(const cfg_diags *d)
{
    cfg_diags_print(d, stderr);
}

/* Loads yaml expecting failure; returns the diagnostics for inspection. */
static inline void load_fail(const char *yaml, cfg_diags *d)
{
    cfg_config *c;
    ck_assert_int_ne(load_str(yaml, &c, d), 0);
    ck_assert_ptr_null(c);
}

/* A minimal valid file, with a hole where a test adds its own lines. */
#define BASE_AUTH                                                                                  \
    "auth:\n"                                                                                      \
    "  verifier_key_pem: \"-----BEGIN PUBLIC KEY-----\\nx\\n-----END PUBLIC KEY-----\\n\"\n"       \
    "  issuer: https://auth.example.test\n"                                                        \
    "upstreams:\n"                                                                                 \
    "  app: http://127.0.0.1:9000\n"
#define BASE_AUTH_UPSTREAM "upstreams:\n  app: http://127.0.0.1:9000\n"

#endif
