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
#include "util.h"

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

/* Loads yaml expecting failure with an error containing needle. */
static inline void err_has(const char *yaml, const char *needle)
{
    cfg_config *c;
    cfg_diags d;
    int rc = load_str(yaml, &c, &d);
    if (rc == 0)
        cfg_free(c);
    if (rc == 0 || !has_diag(d.errors, d.nerrors, needle))
        dump(&d);
    ck_assert_msg(rc == -1, "loaded, expected an error with: %s", needle);
    ck_assert_msg(has_diag(d.errors, d.nerrors, needle), "no error with: %s", needle);
    cfg_diags_free(&d);
}

/* Loads yaml expecting success without any error; the caller frees. */
static inline cfg_config *load_ok(const char *yaml)
{
    cfg_config *c;
    cfg_diags d;
    int rc = load_str(yaml, &c, &d);
    if (rc != 0)
        dump(&d);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(d.nerrors, 0);
    cfg_diags_free(&d);
    return c;
}

/* head, n lines "PRE<i>POST", then tail: a list one entry past a limit or
 * at it. The caller frees. */
static inline char *n_entries(const char *head, int n, const char *pre, const char *post,
                              const char *tail)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_puts(&b, head), 0);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(ag_buf_printf(&b, "%s%d%s\n", pre, i, post), 0);
    ck_assert_int_eq(ag_buf_puts(&b, tail), 0);
    return ag_buf_steal(&b);
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
