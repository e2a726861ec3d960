/* Unit tests for src/log.c: level names and filtering, the one-line stderr
 * format (plain and journal), and the access log target: file (append, reopen
 * after logrotate moved it, as on SIGUSR1), stdout and off.
 *
 * log.c keeps process-wide state (level, journal detection, access fd); check
 * runs every test in its own forked child, so each test starts from the
 * defaults. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------------ */

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ag-test-log-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    (void)rc;
}

static char *path_in(const char *name)
{
    ag_buf b;
    ag_buf_init(&b);
    ck_assert_int_eq(ag_buf_printf(&b, "%s/%s", tmpdir, name), 0);
    return ag_buf_steal(&b);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    ag_buf b;
    ag_buf_init(&b);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        ck_assert_int_eq(ag_buf_append(&b, tmp, n), 0);
    fclose(f);
    return ag_buf_steal(&b);
}

/* Redirect fd (1 or 2) into a temp file until capture_end. */
typedef struct capture {
    int fd;
    int saved;
    char *path;
} capture;

static void capture_begin(capture *c, int fd, const char *name)
{
    c->fd = fd;
    c->path = path_in(name);
    int f = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(f, 0);
    c->saved = dup(fd);
    ck_assert_int_ge(c->saved, 0);
    ck_assert_int_ge(dup2(f, fd), 0);
    close(f);
}

/* Restores the fd and returns what was written (caller frees). */
static char *capture_end(capture *c)
{
    ck_assert_int_ge(dup2(c->saved, c->fd), 0);
    close(c->saved);
    char *out = slurp(c->path);
    free(c->path);
    return out;
}

static size_t count_char(const char *s, char ch)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == ch;
    return n;
}

static bool matches(const char *re, const char *s)
{
    regex_t r;
    ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    bool m = regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

/* ---- levels ------------------------------------------------------------------- */

START_TEST(test_level_from_name)
{
    static const struct {
        const char *name;
        log_level want;
    } good[] = {{"error", LOG_ERROR}, {"warn", LOG_WARN}, {"info", LOG_INFO}, {"debug", LOG_DEBUG}};
    for (size_t i = 0; i < AG_ARRAY_LEN(good); i++) {
        log_level l = (log_level)-1;
        ck_assert_int_eq(log_level_from_name(good[i].name, &l), 0);
        ck_assert_int_eq(l, good[i].want);
    }
    const char *bad[] = {"", "ERROR", "Info", "warning", "trace", "debug ", "err", "4"};
    for (size_t i = 0; i < AG_ARRAY_LEN(bad); i++) {
        log_level l = LOG_WARN;
        ck_assert_msg(log_level_from_name(bad[i], &l) == -1, "accepted '%s'", bad[i]);
        ck_assert_int_eq(l, LOG_WARN);
    }
}
END_TEST

START_TEST(test_level_filter_and_format)
{
    unsetenv("JOURNAL_STREAM");
    capture c;
    capture_begin(&c, STDERR_FILENO, "stderr");
    log_set_level(LOG_WARN);
    log_debug("debug %d", 1);
    log_info("info %d", 2);
    log_warn("warn %d", 3);
    log_error("error %d", 4);
    log_set_level(LOG_DEBUG);
    log_debug("debug %d", 5);
    log_set_level(LOG_ERROR);
    log_warn("warn %d", 6);
    char *out = capture_end(&c);
    ck_assert_uint_eq(count_char(out, '\n'), 3);
    ck_assert_ptr_null(strstr(out, "info 2"));
    ck_assert_ptr_null(strstr(out, "debug 1"));
    ck_assert_ptr_null(strstr(out, "warn 6"));
    const char *ts = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z ";
    char re[512];
    snprintf(re, sizeof(re),
             "^%sauthgate warn: warn 3\n%sauthgate error: error 4\n"
             "%sauthgate debug: debug 5\n$",
             ts, ts, ts);
    ck_assert_msg(matches(re, out), "unexpected stderr: %s", out);
    free(out);
}
END_TEST

START_TEST(test_journal_prefix)
{
    /* Under systemd the line carries a <priority> and no timestamp of its own. */
    setenv("JOURNAL_STREAM", "8:12345", 1);
    log_set_level(LOG_DEBUG);
    capture c;
    capture_begin(&c, STDERR_FILENO, "stderr");
    log_error("e");
    log_warn("w");
    log_info("i");
    log_debug("d");
    char *out = capture_end(&c);
    ck_assert_str_eq(out, "<3>authgate error: e\n<4>authgate warn: w\n<6>authgate info: i\n"
                          "<7>authgate debug: d\n");
    free(out);
}
END_TEST

START_TEST(test_msg_one_line)
{
    unsetenv("JOURNAL_STREAM");
    capture c;
    capture_begin(&c, STDERR_FILENO, "stderr");
    /* a message quoting hostile file content cannot start a second log line */
    log_error("bad value '%s'", "x\nauthgate error: forged\r\nmore\r");
    char *out = capture_end(&c);
    ck_assert_uint_eq(count_char(out, '\n'), 1);
    ck_assert_uint_eq(count_char(out, '\r'), 0);
    ck_assert_int_eq(out[strlen(out) - 1], '\n');
    ck_assert_ptr_nonnull(
        strstr(out, "authgate error: bad value 'x authgate error: forged  more '"));
    free(out);
}
END_TEST

START_TEST(test_msg_long_truncated_to_one_line)
{
    unsetenv("JOURNAL_STREAM");
    char *big = malloc(10000);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < 9999; i++)
        big[i] = (i % 100 == 99) ? '\n' : 'x';
    big[9999] = '\0';
    capture c;
    capture_begin(&c, STDERR_FILENO, "stderr");
    log_error("%s", big);
    log_error("after");
    char *out = capture_end(&c);
    /* two lines: the long one cut, newline-terminated, then the next message */
    ck_assert_uint_eq(count_char(out, '\n'), 2);
    char *nl = strchr(out, '\n');
    ck_assert_uint_le((size_t)(nl - out) + 1, 2048);
    ck_assert_uint_gt((size_t)(nl - out), 1000);
    ck_assert(matches("authgate error: after\n$", out));
    free(out);
    free(big);
}
END_TEST

/* ---- access log --------------------------------------------------------------- */

START_TEST(test_access_file_append_and_reopen)
{
    char *p = path_in("access.log");
    char *moved = path_in("access.log.1");
    /* existing content is appended to, not truncated */
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("old\n", f);
    fclose(f);

    ck_assert_int_eq(log_access_open(p), 0);
    ck_assert(log_access_enabled());
    log_access_write("{\"n\":1}\n", 8);
    char *s = slurp(p);
    ck_assert_str_eq(s, "old\n{\"n\":1}\n");
    free(s);

    /* logrotate moves the file: until the reopen, lines follow the old inode */
    ck_assert_int_eq(rename(p, moved), 0);
    log_access_write("{\"n\":2}\n", 8);
    ck_assert_int_eq(access(p, F_OK), -1);
    log_access_reopen();
    ck_assert(log_access_enabled());
    log_access_write("{\"n\":3}\n", 8);

    s = slurp(moved);
    ck_assert_str_eq(s, "old\n{\"n\":1}\n{\"n\":2}\n");
    free(s);
    s = slurp(p);
    ck_assert_str_eq(s, "{\"n\":3}\n");
    free(s);

    /* the new file is not world-accessible */
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0007, 0);
    ck_assert(S_ISREG(st.st_mode));

    /* a reopen without a rotation keeps appending to the same file */
    log_access_reopen();
    log_access_write("{\"n\":4}\n", 8);
    s = slurp(p);
    ck_assert_str_eq(s, "{\"n\":3}\n{\"n\":4}\n");
    free(s);

    log_access_close();
    ck_assert(!log_access_enabled());
    log_access_write("{\"n\":5}\n", 8); /* dropped, no crash */
    log_access_reopen();                /* no path any more: stays closed */
    ck_assert(!log_access_enabled());
    s = slurp(p);
    ck_assert_str_eq(s, "{\"n\":3}\n{\"n\":4}\n");
    free(s);
    free(p);
    free(moved);
}
END_TEST

START_TEST(test_access_reopen_failure_keeps_old_file)
{
    unsetenv("JOURNAL_STREAM");
    char *dir = path_in("logs");
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    char *p = path_in("logs/access.log");
    char *moved = path_in("kept.log");
    ck_assert_int_eq(log_access_open(p), 0);
    log_access_write("a\n", 2);
    /* the file moves out and its directory disappears: the reopen cannot
     * create a new file, says so on stderr, and keeps writing to the old one */
    ck_assert_int_eq(rename(p, moved), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    capture c;
    capture_begin(&c, STDERR_FILENO, "stderr");
    log_access_reopen();
    char *err = capture_end(&c);
    ck_assert_ptr_nonnull(strstr(err, "cannot reopen access log"));
    ck_assert_uint_eq(count_char(err, '\n'), 1);
    free(err);
    ck_assert(log_access_enabled());
    log_access_write("b\n", 2);
    char *s = slurp(moved);
    ck_assert_str_eq(s, "a\nb\n");
    free(s);
    log_access_close();
    free(dir);
    free(p);
    free(moved);
}
END_TEST

START_TEST(test_access_off_and_bad_path)
{
    ck_assert_int_eq(log_access_open("off"), 0);
    ck_assert(!log_access_enabled());
    capture c;
    capture_begin(&c, STDOUT_FILENO, "stdout");
    log_access_write("x\n", 2);
    log_access_reopen();
    log_access_write("y\n", 2);
    char *out = capture_end(&c);
    ck_assert_str_eq(out, "");
    free(out);
    ck_assert(!log_access_enabled());

    /* a path that cannot be opened fails and leaves logging off */
    char *p = path_in("no/such/dir/access.log");
    ck_assert_int_eq(log_access_open(p), -1);
    ck_assert(!log_access_enabled());
    free(p);

    /* switching from a file to off closes the file */
    p = path_in("a.log");
    ck_assert_int_eq(log_access_open(p), 0);
    ck_assert(log_access_enabled());
    ck_assert_int_eq(log_access_open("off"), 0);
    ck_assert(!log_access_enabled());
    log_access_write("z\n", 2);
    char *s = slurp(p);
    ck_assert_str_eq(s, "");
    free(s);
    free(p);
}
END_TEST

START_TEST(test_access_stdout)
{
    capture c;
    capture_begin(&c, STDOUT_FILENO, "stdout");
    ck_assert_int_eq(log_access_open("stdout"), 0);
    ck_assert(log_access_enabled());
    log_access_write("{\"a\":1}\n", 8);
    log_access_reopen(); /* no file behind stdout: nothing to reopen */
    log_access_write("{\"a\":2}\n", 8);
    log_access_close(); /* must not close the process's stdout */
    char *out = capture_end(&c);
    ck_assert_str_eq(out, "{\"a\":1}\n{\"a\":2}\n");
    free(out);
    ck_assert_int_ne(fcntl(STDOUT_FILENO, F_GETFD), -1);

    /* NULL means the default, stdout */
    capture_begin(&c, STDOUT_FILENO, "stdout2");
    ck_assert_int_eq(log_access_open(NULL), 0);
    log_access_write("n\n", 2);
    log_access_close();
    out = capture_end(&c);
    ck_assert_str_eq(out, "n\n");
    free(out);
}
END_TEST

#define WRITERS 4
#define LINES 2000

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char line[128];
    for (int i = 0; i < LINES; i++) {
        int n = snprintf(line, sizeof(line), "{\"w\":%d,\"i\":%05d,\"pad\":\"%040d\"}\n", id, i, 0);
        log_access_write(line, (size_t)n);
        if (id == 0 && i % 200 == 0)
            log_access_reopen(); /* concurrent SIGUSR1-style reopens */
    }
    return NULL;
}

START_TEST(test_access_concurrent_lines_intact)
{
    char *p = path_in("c.log");
    ck_assert_int_eq(log_access_open(p), 0);
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    log_access_close();
    char *s = slurp(p);
    /* every line whole, none lost, each writer's lines in order */
    int next[WRITERS] = {0};
    size_t lines = 0;
    for (char *line = s, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        int w = -1, i = -1;
        ck_assert_msg(sscanf(line, "{\"w\":%d,\"i\":%d,", &w, &i) == 2, "torn line: %s", line);
        ck_assert_int_eq(strlen(line), 66);
        ck_assert(w >= 0 && w < WRITERS);
        ck_assert_int_eq(i, next[w]);
        next[w]++;
        lines++;
    }
    ck_assert_uint_eq(lines, WRITERS * LINES);
    free(s);
    free(p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_level_from_name);
    tcase_add_test(tc, test_level_filter_and_format);
    tcase_add_test(tc, test_journal_prefix);
    tcase_add_test(tc, test_msg_one_line);
    tcase_add_test(tc, test_msg_long_truncated_to_one_line);
    tcase_add_test(tc, test_access_file_append_and_reopen);
    tcase_add_test(tc, test_access_reopen_failure_keeps_old_file);
    tcase_add_test(tc, test_access_off_and_bad_path);
    tcase_add_test(tc, test_access_stdout);
    tcase_add_test(tc, test_access_concurrent_lines_intact);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
