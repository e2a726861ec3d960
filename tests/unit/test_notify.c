/* notify: the datagram really arrives on a filesystem or abstract AF_UNIX
 * socket named by $NOTIFY_SOCKET, and bad or absent sockets behave. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"
#include "testutil.h"

static char g_dir[64];

static void setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/ag-notify-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    unsetenv("NOTIFY_SOCKET");
}

static void teardown(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/notify", g_dir);
    unlink(p);
    rmdir(g_dir);
    unsetenv("NOTIFY_SOCKET");
}

/* A bound datagram socket with a receive timeout so a lost message fails the
 * test instead of hanging it. name starting with '@' is abstract. */
static int listener(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    size_t n = strlen(name);
    ck_assert_uint_lt(n, sizeof(sa.sun_path));
    memcpy(sa.sun_path, name, n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, len), 0);
    struct timeval tv = {.tv_sec = 5};
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    ck_assert_int_eq((int)n, (int)strlen(want));
    buf[n] = '\0';
    ck_assert_str_eq(buf, want);
}

START_TEST(test_not_under_systemd_is_noop)
{
    ck_assert_int_eq(sd_notify_msg("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    ck_assert_int_eq(sd_notify_msg("READY=1"), 0);
}
END_TEST

START_TEST(test_filesystem_socket)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/notify", g_dir);
    int fd = listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(sd_notify_msg("READY=1\nSTATUS=serving"), 0);
    expect_datagram(fd, "READY=1\nSTATUS=serving");
    ck_assert_int_eq(sd_notify_msg("RELOADING=1"), 0);
    expect_datagram(fd, "RELOADING=1");
    ck_assert_int_eq(sd_notify_msg("STOPPING=1"), 0);
    expect_datagram(fd, "STOPPING=1");
    close(fd);
}
END_TEST

START_TEST(test_abstract_socket)
{
    char name[96];
    snprintf(name, sizeof(name), "@authgate-test-notify-%ld-%s", (long)getpid(), g_dir + 5);
    int fd = listener(name);
    setenv("NOTIFY_SOCKET", name, 1);
    ck_assert_int_eq(sd_notify_msg("READY=1"), 0);
    expect_datagram(fd, "READY=1");
    close(fd);
}
END_TEST

START_TEST(test_errors)
{
    char path[128];
    /* Nobody listening there. */
    snprintf(path, sizeof(path), "%s/absent", g_dir);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(sd_notify_msg("READY=1"), -1);
    /* Relative paths and vsock addresses are not spoken here. */
    setenv("NOTIFY_SOCKET", "relative/sock", 1);
    ck_assert_int_eq(sd_notify_msg("READY=1"), -1);
    setenv("NOTIFY_SOCKET", "vsock:2:1234", 1);
    ck_assert_int_eq(sd_notify_msg("READY=1"), -1);
    /* Longer than sun_path can hold: refused, not truncated to another name. */
    char longp[200];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    setenv("NOTIFY_SOCKET", longp, 1);
    ck_assert_int_eq(sd_notify_msg("READY=1"), -1);
    /* A real socket but no message. */
    snprintf(path, sizeof(path), "%s/notify", g_dir);
    int fd = listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(sd_notify_msg(NULL), -1);
    close(fd);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_not_under_systemd_is_noop);
    tcase_add_test(tc, test_filesystem_socket);
    tcase_add_test(tc, test_abstract_socket);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
