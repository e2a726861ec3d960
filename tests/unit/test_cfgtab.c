/* cfgtab: the rows are well formed, defaults come from them, and the
 * restart-only list the daemon warns about is derived from them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgtab.h"
#include "config.h"
#include "testutil.h"
#include "util.h"

#define BASE                                                                                       \
    "auth:\n"                                                                                      \
    "  verifier_key_pem: \"-----BEGIN PUBLIC KEY-----\\nx\\n-----END PUBLIC KEY-----\\n\"\n"       \
    "  issuer: https://auth.example.test\n"                                                        \
    "upstreams:\n"                                                                                 \
    "  app: http://127.0.0.1:9000\n"                                                               \
    "routes:\n"                                                                                    \
    "  - {path: /x, policy: public}\n"

static cfg_config *load(const char *yaml)
{
    cfg_config *c = NULL;
    cfg_diags d = {0};
    int rc = cfg_load_string("t.yaml", yaml, strlen(yaml), &c, &d);
    if (rc != 0)
        cfg_diags_print(&d, stderr);
    ck_assert_int_eq(rc, 0);
    cfg_diags_free(&d);
    return c;
}

START_TEST(test_rows_well_formed)
{
    ck_assert_uint_gt(cfg_nkeys, 50);
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key *k = &cfg_keys[i];
        ck_assert_ptr_nonnull(k->doc);
        ck_assert_msg(k->doc[0] != '\0', "%s has no doc", k->name);
        ck_assert_ptr_eq(cfg_key_find(k->name), k); /* unique */
        if (k->type == CK_ENUM)
            ck_assert_msg(k->choices && k->def, "%s: enum without choices or default", k->name);
        if (k->type != CK_NODE && k->type != CK_STR && k->type != CK_BOOL && k->type != CK_ENUM)
            ck_assert_msg(k->min <= k->max, "%s: bounds", k->name);
        /* a section's own row belongs to the table too */
        const char *dot = strchr(k->name, '.');
        if (dot && !strchr(k->name, '*') && !strstr(k->name, "[]")) {
            char sect[64];
            snprintf(sect, sizeof sect, "%.*s", (int)(dot - k->name), k->name);
            ck_assert_msg(cfg_key_find(sect) != NULL, "%s: no row for section %s", k->name, sect);
        }
    }
    ck_assert_ptr_null(cfg_key_find("no_such_key"));
}
END_TEST

/* Every scalar default in the loaded config is the row's default. */
START_TEST(test_defaults_come_from_rows)
{
    cfg_config *c = load(BASE);
    size_t checked = 0;
    for (size_t i = 0; i < cfg_nkeys; i++) {
        const cfg_key *k = &cfg_keys[i];
        if (!k->def || k->type == CK_NODE || strchr(k->name, '*') || strstr(k->name, "[]"))
            continue;
        const char *p = (const char *)c + k->off;
        long long want = strtoll(k->def, NULL, 10);
        switch (k->type) {
        case CK_STR:
            ck_assert_str_eq(*(char *const *)(const void *)p, k->def);
            break;
        case CK_BOOL:
            ck_assert_int_eq(*(const bool *)(const void *)p, strcmp(k->def, "true") == 0);
            break;
        case CK_INT:
            ck_assert_int_eq(*(const int *)(const void *)p, want);
            break;
        case CK_LONG:
        case CK_DUR:
            ck_assert_int_eq(*(const long *)(const void *)p, want);
            break;
        case CK_SIZE:
            ck_assert_uint_eq(*(const size_t *)(const void *)p, (size_t)want);
            break;
        case CK_U64:
            ck_assert_uint_eq(*(const uint64_t *)(const void *)p, (uint64_t)want);
            break;
        case CK_ENUM:
            ck_assert_int_eq(*(const int *)(const void *)p, k->choices[0].value);
            break;
        case CK_NODE:
            break;
        }
        checked++;
    }
    ck_assert_uint_ge(checked, 30);
    /* and they are the documented values */
    ck_assert_str_eq(c->listen, "127.0.0.1:8080");
    ck_assert_int_eq(c->limits.max_header_bytes, 16384);
    ck_assert_int_eq(c->auth.refresh_interval_s, 3600);
    cfg_free(c);
}
END_TEST

typedef struct seen_keys {
    char names[16][96];
    size_t n;
} seen_keys;

static void collect(const char *key, void *ctx)
{
    seen_keys *s = ctx;
    ck_assert_uint_lt(s->n, 16);
    snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", key);
}

static bool saw(const seen_keys *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], key) == 0)
            return true;
    return false;
}

START_TEST(test_restart_only_changes)
{
    cfg_config *a =
        load("workers: 2\nlimits: {max_header_bytes: 8192, max_uri_bytes: 4096}\n" BASE);
    cfg_config *b =
        load("workers: 3\nshutdown_grace_ms: 1\nlog: {level: debug}\n"
             "limits: {max_header_bytes: 16384, max_uri_bytes: 1024, max_headers: 5}\n" BASE);
    seen_keys s = {0};
    cfg_restart_only_changes(a, b, collect, &s);
    ck_assert(saw(&s, "workers"));
    ck_assert(saw(&s, "log.level"));
    ck_assert(saw(&s, "limits.max_header_bytes (raised)"));
    ck_assert(!saw(&s, "limits.max_uri_bytes (raised)")); /* lowered: applies */
    ck_assert(!saw(&s, "shutdown_grace_ms"));             /* reload applies it */
    ck_assert(!saw(&s, "limits.max_headers"));
    ck_assert_uint_eq(s.n, 3);

    /* nothing changed: nothing to say */
    seen_keys none = {0};
    cfg_restart_only_changes(a, a, collect, &none);
    ck_assert_uint_eq(none.n, 0);
    cfg_free(a);
    cfg_free(b);
}
END_TEST

START_TEST(test_dump_keys_lines)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    cfg_dump_keys(f);
    fclose(f);
    size_t lines = 0;
    for (char *p = buf; *p; p++)
        lines += *p == '\n';
    ck_assert_uint_eq(lines, cfg_nkeys);
    ck_assert_ptr_nonnull(
        strstr(buf, "limits.max_header_bytes\tinteger 256-16777216\t`16384`\trestart to raise\t"));
    ck_assert_ptr_nonnull(strstr(buf, "auth.refresh_interval\tduration 10s-168h\t`3600` (1h)\t"));
    ck_assert_ptr_nonnull(strstr(buf, "identity.user_orgs\t`all` \\| `requested` \\| `none`\t"));
    ck_assert_ptr_nonnull(strstr(buf, "\nauth\tmapping\trequired\tper key\t"));
    free(buf);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cfgtab");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rows_well_formed);
    tcase_add_test(tc, test_defaults_come_from_rows);
    tcase_add_test(tc, test_restart_only_changes);
    tcase_add_test(tc, test_dump_keys_lines);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
