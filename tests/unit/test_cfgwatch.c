/* cfgwatch: a change of the file's bytes (by rename, by a symlink swap as a
 * ConfigMap does it, or in place) raises one SIGHUP after the debounce; a
 * touch, another file in the directory, or a missing file raise none. */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cfgwatch.h"
#include "testutil.h"

static char dir[64];
static char path[128];

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ag-cw-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/authgate.yaml", dir);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Whether a SIGHUP arrives within ms. */
static bool hup_within(long ms)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    return sigtimedwait(&set, NULL, &ts) == SIGHUP;
}

START_TEST(test_fingerprint)
{
    ck_assert_uint_eq(cw_fingerprint(path), 0); /* missing */
    write_file(path, "a: 1\n");
    unsigned long long a = cw_fingerprint(path);
    ck_assert_uint_ne(a, 0);
    ck_assert_uint_eq(cw_fingerprint(path), a);
    write_file(path, "a: 2\n");
    ck_assert_uint_ne(cw_fingerprint(path), a);
    write_file(path, "");
    ck_assert_uint_ne(cw_fingerprint(path), 0); /* empty is a change, not missing */
}
END_TEST

START_TEST(test_rename_raises_one_hup)
{
    write_file(path, "a: 1\n");
    char err[256];
    cw_watch *w = cw_start(path, 100, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    ck_assert(!hup_within(300)); /* nothing changed yet */
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s/.new", dir);
    write_file(tmp, "a: 2\n");
    ck_assert_int_eq(rename(tmp, path), 0);
    ck_assert(hup_within(3000));
    ck_assert(!hup_within(400)); /* debounced: one signal for one change */
    cw_stop(w);
}
END_TEST

START_TEST(test_same_bytes_and_other_files_raise_none)
{
    write_file(path, "a: 1\n");
    char err[256];
    cw_watch *w = cw_start(path, 100, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    write_file(path, "a: 1\n"); /* rewritten, same bytes */
    char other[160];
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    write_file(other, "x");
    ck_assert(!hup_within(600));
    unlink(path); /* missing: keep serving, no reload */
    ck_assert(!hup_within(600));
    write_file(path, "a: 3\n");
    ck_assert(hup_within(3000));
    cw_stop(w);
}
END_TEST

/* A log file written next to the config all the time must neither reload
 * nor keep the debounce from ending for a real change. */
START_TEST(test_busy_neighbour_does_not_starve)
{
    write_file(path, "a: 1\n");
    char err[256], other[160];
    snprintf(other, sizeof(other), "%s/access.log", dir);
    cw_watch *w = cw_start(path, 200, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    FILE *f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    bool changed = false, hup = false;
    for (int i = 0; i < 60 && !hup; i++) { /* 3 s of a write every 50 ms */
        fputs("line\n", f);
        fflush(f);
        if (i == 10) {
            write_file(path, "a: 2\n");
            changed = true;
        }
        hup = hup_within(50);
        ck_assert(!hup || changed);
    }
    fclose(f);
    ck_assert(hup);
    cw_stop(w);
}
END_TEST

/* The ConfigMap layout: authgate.yaml -> ..data/authgate.yaml, ..data ->
 * ..v1; an update writes ..v2 and renames a new ..data symlink over the old. */
START_TEST(test_configmap_symlink_swap)
{
    char p[256], q[256];
    snprintf(p, sizeof(p), "%s/..v1", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/..v1/authgate.yaml", dir);
    write_file(p, "a: 1\n");
    snprintf(p, sizeof(p), "%s/..data", dir);
    ck_assert_int_eq(symlink("..v1", p), 0);
    ck_assert_int_eq(symlink("..data/authgate.yaml", path), 0);
    char err[256];
    cw_watch *w = cw_start(path, 100, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    snprintf(p, sizeof(p), "%s/..v2", dir);
    ck_assert_int_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/..v2/authgate.yaml", dir);
    write_file(p, "a: 2\n");
    snprintf(p, sizeof(p), "%s/..data_tmp", dir);
    ck_assert_int_eq(symlink("..v2", p), 0);
    snprintf(q, sizeof(q), "%s/..data", dir);
    ck_assert_int_eq(rename(p, q), 0);
    ck_assert(hup_within(3000));
    cw_stop(w);
}
END_TEST

START_TEST(test_stop_is_prompt)
{
    write_file(path, "a: 1\n");
    char err[256];
    cw_watch *w = cw_start(path, 100, err, sizeof(err));
    ck_assert_ptr_nonnull(w);
    time_t t0 = time(NULL);
    cw_stop(w);
    ck_assert_int_le(time(NULL) - t0, 1);
    cw_stop(NULL);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cfgwatch");
    TCase *tc = tcase_create("watch");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_fingerprint);
    tcase_add_test(tc, test_rename_raises_one_hup);
    tcase_add_test(tc, test_same_bytes_and_other_files_raise_none);
    tcase_add_test(tc, test_busy_neighbour_does_not_starve);
    tcase_add_test(tc, test_configmap_symlink_swap);
    tcase_add_test(tc, test_stop_is_prompt);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
