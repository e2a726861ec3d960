/* preflight: what run would refuse after the file itself loaded. The end-to-
 * end agreement with the real daemon is tests/integration/test_check_run_agree.py. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "preflight.h"
#include "testutil.h"

#define FIXDIR "tests/unit/fixtures/"

static size_t run_pf(const char *yaml, cfg_diags *d)
{
    cfg_config *c = NULL;
    memset(d, 0, sizeof(*d));
    int rc = cfg_load_string("t.yaml", yaml, strlen(yaml), &c, d);
    if (rc != 0)
        cfg_diags_print(d, stderr);
    ck_assert_int_eq(rc, 0);
    return pf_check(c, d);
}

static bool has(const cfg_diags *d, const char *needle)
{
    for (size_t i = 0; i < d->nerrors; i++)
        if (strstr(d->errors[i], needle))
            return true;
    return false;
}

#define TAIL                                                                                       \
    "upstreams:\n  app: http://127.0.0.1:9000\n"                                                   \
    "routes:\n  - {path: /x, policy: public}\n"

START_TEST(test_good_manual_key)
{
    cfg_diags d;
    /* relative paths resolve against t.yaml's directory: the working directory */
    ck_assert_uint_eq(run_pf("listen: localhost:18080\n"
                             "auth: {verifier_key_file: " FIXDIR
                             "rsa3072-pub.pem, issuer: https://i}\n" TAIL,
                             &d),
                      0);
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_key_material_refused)
{
    cfg_diags d;
    /* a private key where the public one belongs */
    ck_assert_uint_eq(run_pf("auth:\n  verifier_key_file: " FIXDIR
                             "rsa3072-key.pem\n  issuer: https://i\n" TAIL,
                             &d),
                      1);
    ck_assert(has(&d, "t.yaml:2:22: auth.verifier_key_file: "));
    cfg_diags_free(&d);
    /* a PEM block whose body is not a key */
    ck_assert_uint_eq(run_pf("auth:\n  verifier_key_pem: \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n"
                             "-----END PUBLIC KEY-----\\n\"\n  issuer: https://i\n" TAIL,
                             &d),
                      1);
    ck_assert(has(&d, "t.yaml:2:21: auth.verifier_key_pem: "));
    cfg_diags_free(&d);
}
END_TEST

START_TEST(test_addresses_and_env)
{
    cfg_diags d;
    ck_assert_uint_eq(
        run_pf("listen: no-such-host.invalid:1\n"
               "admin_listen: no-such-host.invalid:2\n"
               "auth: {auth_url: https://a.example, api_key_env: AG_PF_UNSET_VAR}\n" TAIL,
               &d),
        3);
    ck_assert(has(&d, "t.yaml:1:9: listen: no-such-host.invalid:1: cannot resolve"));
    ck_assert(has(&d, "t.yaml:2:15: admin_listen: "));
    ck_assert(has(&d, "auth.api_key_env: environment variable AG_PF_UNSET_VAR is not set"));
    cfg_diags_free(&d);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("preflight");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_good_manual_key);
    tcase_add_test(tc, test_key_material_refused);
    tcase_add_test(tc, test_addresses_and_env);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
