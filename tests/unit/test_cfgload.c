/* cfgload: the generic loader pieces on their own (the loader as a whole is
 * test_config.c): did-you-mean, the policy hash, file reading. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfgload.h"
#include "testutil.h"
#include "util.h"

START_TEST(test_suggest)
{
    static const char *const pols[] = {"public",
                                       "optional_user",
                                       "require_user",
                                       "require_org_member",
                                       "require_org_member_with_minimum_role",
                                       "require_org_member_with_exact_role",
                                       "require_org_member_with_permission",
                                       "require_org_member_with_all_permissions"};
    size_t n = AG_ARRAY_LEN(pols);
    ck_assert_str_eq(cl_suggest("Public", pols, n), "public");
    ck_assert_str_eq(cl_suggest("PUBLIC", pols, n), "public");
    ck_assert_str_eq(cl_suggest("require_org_member_with_min_role", pols, n),
                     "require_org_member_with_minimum_role");
    ck_assert_str_eq(cl_suggest("require_usr", pols, n), "require_user");
    ck_assert_str_eq(cl_suggest("require_org_member_with_permissions", pols, n),
                     "require_org_member_with_permission");
    ck_assert_ptr_null(cl_suggest("require_superuser", pols, n));
    ck_assert_ptr_null(cl_suggest("admin", pols, n));
    static const char *const lv[] = {"error", "warn", "info", "debug"};
    ck_assert_str_eq(cl_suggest("inf", lv, 4), "info");
    ck_assert_str_eq(cl_suggest("warning", lv, 4), "warn");
    ck_assert_ptr_null(cl_suggest("verbose", lv, 4));
    /* short words: at most two edits */
    static const char *const top[] = {"listen", "log", "paths"};
    ck_assert_str_eq(cl_suggest("lisen", top, 3), "listen");
    ck_assert_ptr_null(cl_suggest("xyz", top, 3));
}
END_TEST

START_TEST(test_hash16)
{
    char h[17];
    cl_hash16("", 0, h);
    /* SHA-256("") starts e3b0c44298fc1c14 */
    ck_assert_str_eq(h, "e3b0c44298fc1c14");
}
END_TEST

START_TEST(test_read_file)
{
    char path[] = "/tmp/agcfgloadXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "a: b\n", 5), 5);
    close(fd);
    ck_assert_int_eq(chmod(path, 0620), 0);
    char *data = NULL;
    size_t len = 0, cap = 0;
    unsigned mode = 0;
    cfg_diags d = {0};
    ck_assert_int_eq(cl_read_file(path, &data, &len, &cap, &mode, &d), 0);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(data, "a: b\n", 5), 0);
    ck_assert_uint_eq(mode & 07777, 0620);
    ck_assert_uint_eq(d.nerrors, 0);
    free(data);
    unlink(path);
    ck_assert_int_ne(cl_read_file(path, &data, &len, &cap, &mode, &d), 0);
    ck_assert_ptr_null(data);
    ck_assert_uint_eq(d.nerrors, 1);
    ck_assert_ptr_nonnull(strstr(d.errors[0], ":1:1: cannot open: "));
    cfg_diags_free(&d);
    ck_assert_int_ne(cl_read_file("/tmp", &data, &len, &cap, &mode, &d), 0);
    ck_assert_ptr_nonnull(strstr(d.errors[0], "not a regular file"));
    cfg_diags_free(&d);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cfgload");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_suggest);
    tcase_add_test(tc, test_hash16);
    tcase_add_test(tc, test_read_file);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
