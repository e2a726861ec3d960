/* Unit tests for src/jnum.c: integers beyond 64 bits survive a parse as
 * placeholders that no token string can imitate. */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "jnum.h"

static json_t *load(const char *s)
{
    json_error_t e;
    return jnum_loadb(s, strlen(s), JSON_REJECT_DUPLICATES, &e);
}

START_TEST(test_big_integers_kept_as_text)
{
    json_t *v = load("{\"a\":12345678901234567890,\"b\":[-99999999999999999999],"
                     "\"c\":9223372036854775807,\"d\":-9223372036854775808,"
                     "\"e\":9223372036854775808,\"f\":-9223372036854775809,\"g\":1.5e3}");
    ck_assert_ptr_nonnull(v);
    size_t len = 0;
    const json_t *a = json_object_get(v, "a");
    ck_assert(jnum_is_big(a));
    ck_assert(!jnum_is_string(a));
    const char *t = jnum_big_text(a, &len);
    ck_assert_uint_eq(len, 20);
    ck_assert_int_eq(memcmp(t, "12345678901234567890", len), 0);
    t = jnum_big_text(json_array_get(json_object_get(v, "b"), 0), &len);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(memcmp(t, "-99999999999999999999", len), 0);
    /* The int64 bounds themselves stay ordinary integers; one past them is big. */
    ck_assert(json_is_integer(json_object_get(v, "c")));
    ck_assert(json_is_integer(json_object_get(v, "d")));
    ck_assert_int_eq(json_integer_value(json_object_get(v, "d")), INT64_MIN);
    t = jnum_big_text(json_object_get(v, "e"), &len);
    ck_assert_int_eq(memcmp(t, "9223372036854775808", len), 0);
    t = jnum_big_text(json_object_get(v, "f"), &len);
    ck_assert_int_eq(memcmp(t, "-9223372036854775809", len), 0);
    ck_assert(json_is_real(json_object_get(v, "g")));
    json_decref(v);
}
END_TEST

START_TEST(test_strings_and_escapes_untouched)
{
    /* Digits inside strings, escaped quotes and backslashes before them. */
    json_t *v = load("{\"s\":\"12345678901234567890\",\"t\":\"\\\"99999999999999999999\","
                     "\"u\":\"\\\\\",\"n\":99999999999999999999}");
    ck_assert_ptr_nonnull(v);
    ck_assert(jnum_is_string(json_object_get(v, "s")));
    ck_assert_str_eq(json_string_value(json_object_get(v, "s")), "12345678901234567890");
    ck_assert_str_eq(json_string_value(json_object_get(v, "t")), "\"99999999999999999999");
    ck_assert_str_eq(json_string_value(json_object_get(v, "u")), "\\");
    ck_assert(jnum_is_big(json_object_get(v, "n")));
    json_decref(v);
}
END_TEST

START_TEST(test_placeholder_cannot_be_forged)
{
    /* A \u0000 string would look like a placeholder: refused, with or
     * without a real big integer elsewhere (json_loadb refuses it too). */
    ck_assert_ptr_null(load("{\"s\":\"\\u000012345\"}"));
    ck_assert_ptr_null(load("{\"s\":\"\\u000012345\",\"n\":99999999999999999999}"));
    /* An escaped backslash followed by u0000 text is an ordinary string. */
    json_t *v = load("{\"s\":\"\\\\u0000\",\"n\":99999999999999999999}");
    ck_assert_ptr_nonnull(v);
    ck_assert(jnum_is_string(json_object_get(v, "s")));
    json_decref(v);
}
END_TEST

START_TEST(test_invalid_numbers_stay_invalid)
{
    static const char *const bad[] = {
        "{\"n\":0123456789012345678901}", /* leading zero */
        "{\"n\":-}",
        "{\"n\":1e400}",                        /* exp_not_finite is decided by the JSON parser */
        "{\"n\":99999999999999999999,}",        /* the rest of the grammar still applies */
        "{\"n\":99999999999999999999,\"n\":1}", /* duplicate keys */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(load(bad[i]) == NULL, "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_seconds)
{
    json_t *v = load("[99999999999999999999,-99999999999999999999,5,5.9,\"5\",null]");
    ck_assert_ptr_nonnull(v);
    int64_t s = 0;
    ck_assert_int_eq(jnum_seconds(json_array_get(v, 0), &s), 0);
    ck_assert(s == INT64_MAX);
    ck_assert_int_eq(jnum_seconds(json_array_get(v, 1), &s), 0);
    ck_assert(s == INT64_MIN);
    ck_assert_int_eq(jnum_seconds(json_array_get(v, 2), &s), 0);
    ck_assert_int_eq(s, 5);
    ck_assert_int_eq(jnum_seconds(json_array_get(v, 3), &s), 0);
    ck_assert_int_eq(s, 5);
    ck_assert_int_eq(jnum_seconds(json_array_get(v, 4), &s), -1);
    ck_assert_int_eq(jnum_seconds(json_array_get(v, 5), &s), -1);
    ck_assert_ptr_null(jnum_big_text(json_array_get(v, 4), NULL));
    json_decref(v);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("jnum");
    TCase *tc = tcase_create("jnum");
    tcase_add_test(tc, test_big_integers_kept_as_text);
    tcase_add_test(tc, test_strings_and_escapes_untouched);
    tcase_add_test(tc, test_placeholder_cannot_be_forged);
    tcase_add_test(tc, test_invalid_numbers_stay_invalid);
    tcase_add_test(tc, test_seconds);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
