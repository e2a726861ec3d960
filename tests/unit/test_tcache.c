/* Unit tests for src/tcache.c: docs/security.md case 21 (verified-token cache). */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "identity.h"
#include "tcache.h"

#define NOW ((int64_t)1790000000)

static id_user *mk_user(const char *id, int64_t exp)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "{\"user_id\":\"%s\",\"exp\":%lld}", id, (long long)exp);
    json_error_t e;
    json_t *c = json_loads(buf, 0, &e);
    ck_assert_ptr_nonnull(c);
    id_user *u = NULL;
    ag_reason reason = AR_INTERNAL;
    ck_assert_int_eq(id_user_from_claims(c, &u, &reason), 0);
    json_decref(c);
    return u;
}

static id_user *get(tc_cache *c, const char *tok, uint64_t gen, int64_t now)
{
    return tc_get(c, tok, strlen(tok), gen, now);
}

static void put(tc_cache *c, const char *tok, uint64_t gen, id_user *u)
{
    tc_put(c, tok, strlen(tok), gen, u);
}

static size_t entries(const tc_cache *c)
{
    size_t n = 0;
    tc_stats(c, NULL, NULL, &n);
    return n;
}

START_TEST(test_A21_repeat_hits)
{
    tc_cache *c = tc_new(100, 1 << 20);
    ck_assert_ptr_nonnull(c);
    const char *tok = "eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyX2lkIjoidTEifQ.c2lnbmF0dXJl";
    ck_assert_ptr_null(get(c, tok, 1, NOW));
    id_user *u = mk_user("u1", NOW + 1800);
    put(c, tok, 1, u);
    id_user_unref(u); /* the cache holds its own reference */
    for (int i = 0; i < 1000; i++) {
        id_user *g = get(c, tok, 1, NOW);
        ck_assert_ptr_nonnull(g);
        ck_assert_str_eq(id_user_id(g), "u1");
        id_user_unref(g);
    }
    uint64_t hits, misses;
    size_t n;
    tc_stats(c, &hits, &misses, &n);
    ck_assert_uint_eq(hits, 1000);
    ck_assert_uint_eq(misses, 1);
    ck_assert_uint_eq(n, 1);
    /* A reference handed out outlives the cache. */
    id_user *g = get(c, tok, 1, NOW);
    tc_free(c);
    ck_assert_str_eq(id_user_id(g), "u1");
    id_user_unref(g);
}
END_TEST

START_TEST(test_A21_signature_reuse_with_other_payload)
{
    tc_cache *c = tc_new(100, 1 << 20);
    id_user *u = mk_user("victim", NOW + 1800);
    put(c, "hdr.cGF5bG9hZA.SIGNATURE", 1, u);
    id_user_unref(u);
    /* Same signature segment (so the same bucket), different payload or header. */
    ck_assert_ptr_null(get(c, "hdr.YXR0YWNr.SIGNATURE", 1, NOW));
    ck_assert_ptr_null(get(c, "HDR.cGF5bG9hZA.SIGNATURE", 1, NOW));
    ck_assert_ptr_null(get(c, "hdr.cGF5bG9hZA.SIGNATUR", 1, NOW));
    ck_assert_ptr_null(get(c, "xhdr.cGF5bG9hZA.SIGNATURE", 1, NOW));
    id_user *g = get(c, "hdr.cGF5bG9hZA.SIGNATURE", 1, NOW);
    ck_assert_ptr_nonnull(g);
    id_user_unref(g);
    /* Many tokens sharing one signature segment all resolve to their own user. */
    for (int i = 0; i < 50; i++) {
        char tok[64], id[16];
        snprintf(tok, sizeof(tok), "h.p%d.SAME", i);
        snprintf(id, sizeof(id), "u%d", i);
        u = mk_user(id, NOW + 100);
        put(c, tok, 1, u);
        id_user_unref(u);
    }
    for (int i = 0; i < 50; i++) {
        char tok[64], id[16];
        snprintf(tok, sizeof(tok), "h.p%d.SAME", i);
        snprintf(id, sizeof(id), "u%d", i);
        g = get(c, tok, 1, NOW);
        ck_assert_ptr_nonnull(g);
        ck_assert_str_eq(id_user_id(g), id);
        id_user_unref(g);
    }
    tc_free(c);
}
END_TEST

START_TEST(test_A21_noncanonical_copy_misses)
{
    tc_cache *c = tc_new(10, 4096);
    id_user *u = mk_user("u1", NOW + 1800);
    /* ...A and ...B decode to the same bytes under a lenient decoder. */
    put(c, "h.p.abcA", 1, u);
    id_user_unref(u);
    ck_assert_ptr_null(get(c, "h.p.abcB", 1, NOW));
    ck_assert_ptr_null(get(c, "h.p.abcA=", 1, NOW));
    tc_free(c);
}
END_TEST

START_TEST(test_A21_key_rotation_invalidates)
{
    tc_cache *c = tc_new(10, 4096);
    id_user *u = mk_user("u1", NOW + 1800);
    put(c, "h.p.s", 7, u);
    id_user_unref(u);
    ck_assert_uint_eq(entries(c), 1);
    ck_assert_ptr_null(get(c, "h.p.s", 8, NOW));
    ck_assert_uint_eq(entries(c), 0); /* dropped, not just skipped */
    /* Going back to the old generation does not resurrect it. */
    ck_assert_ptr_null(get(c, "h.p.s", 7, NOW));
    tc_free(c);
}
END_TEST

START_TEST(test_A21_lifetime_at_most_exp)
{
    tc_cache *c = tc_new(10, 4096);
    id_user *u = mk_user("u1", NOW + 10);
    put(c, "h.p.s", 1, u);
    id_user_unref(u);
    id_user *g = get(c, "h.p.s", 1, NOW + 9);
    ck_assert_ptr_nonnull(g);
    id_user_unref(g);
    ck_assert_ptr_null(get(c, "h.p.s", 1, NOW + 10)); /* exp <= now: gone */
    ck_assert_uint_eq(entries(c), 0);
    /* Already expired on insertion: never served. */
    u = mk_user("u2", NOW - 1);
    put(c, "h.p.t", 1, u);
    id_user_unref(u);
    ck_assert_ptr_null(get(c, "h.p.t", 1, NOW));
    tc_free(c);
}
END_TEST

START_TEST(test_A21_bounded_entries_lru)
{
    tc_cache *c = tc_new(4, 1 << 20);
    char tok[32];
    for (int i = 0; i < 4; i++) {
        snprintf(tok, sizeof(tok), "h.p.s%d", i);
        id_user *u = mk_user("u", NOW + 100);
        put(c, tok, 1, u);
        id_user_unref(u);
    }
    /* Touch s0 so s1 becomes the least recently used. */
    id_user *g = get(c, "h.p.s0", 1, NOW);
    ck_assert_ptr_nonnull(g);
    id_user_unref(g);
    id_user *u = mk_user("u", NOW + 100);
    put(c, "h.p.s4", 1, u);
    id_user_unref(u);
    ck_assert_uint_eq(entries(c), 4);
    ck_assert_ptr_null(get(c, "h.p.s1", 1, NOW));
    static const char *const kept[] = {"h.p.s0", "h.p.s2", "h.p.s3", "h.p.s4"};
    for (size_t i = 0; i < 4; i++) {
        g = get(c, kept[i], 1, NOW);
        ck_assert_msg(g != NULL, "%s evicted", kept[i]);
        id_user_unref(g);
    }
    /* Many inserts never exceed the bound. */
    for (int i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "h.p.x%d", i);
        u = mk_user("u", NOW + 100);
        put(c, tok, 1, u);
        id_user_unref(u);
        ck_assert_uint_le(entries(c), 4);
    }
    tc_free(c);
}
END_TEST

START_TEST(test_A21_bounded_bytes)
{
    tc_cache *c = tc_new(1000, 350);
    char tok[128];
    for (int i = 0; i < 20; i++) {
        memset(tok, 'a', 100);
        snprintf(tok + 90, 38, ".s%07d", i % 10000000); /* 99 bytes, unique suffix */
        ck_assert_uint_eq(strlen(tok), 99);
        id_user *u = mk_user("u", NOW + 100);
        put(c, tok, 1, u);
        id_user_unref(u);
        ck_assert_uint_le(entries(c), 3);
    }
    ck_assert_uint_eq(entries(c), 3);
    /* A token over the byte bound is simply not stored. */
    char big[400];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    id_user *u = mk_user("u", NOW + 100);
    put(c, big, 1, u);
    id_user_unref(u);
    ck_assert_ptr_null(get(c, big, 1, NOW));
    ck_assert_uint_eq(entries(c), 3);
    tc_free(c);
}
END_TEST

START_TEST(test_A21_junk_lookups_store_nothing)
{
    tc_cache *c = tc_new(100, 1 << 20);
    char tok[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(tok, sizeof(tok), "junk.%d.%x", i, i * 2654435761u);
        ck_assert_ptr_null(get(c, tok, 1, NOW));
    }
    uint64_t hits, misses;
    size_t n;
    tc_stats(c, &hits, &misses, &n);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(hits, 0);
    ck_assert_uint_eq(misses, 100000);
    tc_free(c);
}
END_TEST

START_TEST(test_put_replaces_same_token)
{
    tc_cache *c = tc_new(10, 4096);
    id_user *a = mk_user("a", NOW + 100), *b = mk_user("b", NOW + 200);
    put(c, "h.p.s", 1, a);
    put(c, "h.p.s", 2, b);
    id_user_unref(a);
    id_user_unref(b);
    ck_assert_uint_eq(entries(c), 1);
    ck_assert_ptr_null(get(c, "h.p.s", 1, NOW) /* old generation: dropped */);
    put(c, "h.p.s", 2, b = mk_user("b", NOW + 200));
    id_user_unref(b);
    id_user *g = get(c, "h.p.s", 2, NOW + 150);
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(id_user_id(g), "b");
    id_user_unref(g);
    tc_free(c);
}
END_TEST

START_TEST(test_bad_arguments)
{
    ck_assert_ptr_null(tc_new(0, 100));
    ck_assert_ptr_null(tc_new(100, 0));
    tc_free(NULL);
    ck_assert_ptr_null(tc_get(NULL, "a", 1, 1, NOW));
    tc_cache *c = tc_new(2, 100);
    ck_assert_ptr_null(tc_get(c, "", 0, 1, NOW));
    tc_put(c, "x", 1, 1, NULL);
    tc_put(c, NULL, 0, 1, NULL);
    ck_assert_uint_eq(entries(c), 0);
    uint64_t h = 9;
    tc_stats(NULL, &h, NULL, NULL);
    ck_assert_uint_eq(h, 0);
    /* Tokens are compared by length too, not as C strings. */
    id_user *u = mk_user("u", NOW + 100);
    tc_put(c, "h.p.s\0extra", 11, 1, u);
    id_user_unref(u);
    ck_assert_ptr_null(tc_get(c, "h.p.s", 5, 1, NOW));
    id_user *g = tc_get(c, "h.p.s\0extra", 11, 1, NOW);
    ck_assert_ptr_nonnull(g);
    id_user_unref(g);
    tc_free(c);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("tcache");
    TCase *tc = tcase_create("tcache");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_A21_repeat_hits);
    tcase_add_test(tc, test_A21_signature_reuse_with_other_payload);
    tcase_add_test(tc, test_A21_noncanonical_copy_misses);
    tcase_add_test(tc, test_A21_key_rotation_invalidates);
    tcase_add_test(tc, test_A21_lifetime_at_most_exp);
    tcase_add_test(tc, test_A21_bounded_entries_lru);
    tcase_add_test(tc, test_A21_bounded_bytes);
    tcase_add_test(tc, test_A21_junk_lookups_store_nothing);
    tcase_add_test(tc, test_put_replaces_same_token);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
