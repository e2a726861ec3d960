/* Unit tests for src/reason.c: every row of the reason table is consistent
 * (status class, error class, metric label, level), the strings are unique,
 * the zero value refuses, and the verifier's statuses map onto 401 rows. */
#include "testutil.h"

#include <string.h>

#include "jwt.h"
#include "reason.h"

/* The error class each status must carry in the JSON body. */
static const char *error_for(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 413:
        return "payload_too_large";
    case 414:
        return "uri_too_long";
    case 431:
        return "request_header_fields_too_large";
    case 500:
        return "internal";
    case 502:
        return "bad_gateway";
    case 503:
        return "unavailable";
    case 504:
        return "gateway_timeout";
    case 505:
        return "http_version_not_supported";
    }
    return NULL;
}

/* The metric decision label the access log derives from a status. */
static const char *label_for(int status)
{
    if (status >= 500)
        return "error";
    if (status == 400 || status == 413 || status == 414 || status == 431)
        return "reject";
    return "deny";
}

START_TEST(test_rows_consistent)
{
    for (int i = 0; i < AR__COUNT; i++) {
        const reason_row *r = reason_row_of((ag_reason)i);
        ck_assert_ptr_nonnull(r->name);
        ck_assert_msg(strspn(r->name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(r->name) &&
                          r->name[0] != '\0',
                      "row %d: name '%s'", i, r->name);
        ck_assert_msg(r->level >= LOG_ERROR && r->level <= LOG_DEBUG, "%s: level", r->name);
        bool quiet = strcmp(r->label, "allow") == 0 || strcmp(r->label, "aborted") == 0;
        if (i == AR_CORS_PREFLIGHT) {
            /* The one answer of our own that allows: 204, no body, never forwarded. */
            ck_assert_int_eq(r->status, 204);
            ck_assert_ptr_null(r->error);
            ck_assert_str_eq(r->label, "allow");
            ck_assert(!reason_forwards((ag_reason)i));
            continue;
        } else if (quiet) {
            /* No answer of the gateway's own: no status, no error class. */
            ck_assert_msg(r->status == 0 && r->error == NULL, "%s: status %d", r->name, r->status);
        } else {
            ck_assert_msg(r->status >= 400 && r->status <= 599, "%s: status %d", r->name,
                          r->status);
            ck_assert_ptr_nonnull(r->error);
            ck_assert_msg(error_for(r->status) && strcmp(r->error, error_for(r->status)) == 0,
                          "%s: error class %s for %d", r->name, r->error, r->status);
            ck_assert_msg(strcmp(r->label, label_for(r->status)) == 0, "%s: label %s for %d",
                          r->name, r->label, r->status);
        }
        ck_assert_msg(reason_forwards((ag_reason)i) == (strcmp(r->label, "allow") == 0),
                      "%s: forwards", r->name);
        if (strncmp(r->name, "upstream_", 9) == 0) {
            ck_assert_msg(r->status == 502 || r->status == 504, "%s", r->name);
            ck_assert_int_eq(r->level, LOG_WARN);
        }
        if (strncmp(r->name, "token_", 6) == 0 || strncmp(r->name, "auth_header_", 12) == 0)
            ck_assert_msg(r->status == 401 || reason_forwards((ag_reason)i), "%s", r->name);
    }
}
END_TEST

START_TEST(test_names_unique_and_round_trip)
{
    for (int i = 0; i < AR__COUNT; i++) {
        for (int j = i + 1; j < AR__COUNT; j++)
            ck_assert_msg(strcmp(reason_name((ag_reason)i), reason_name((ag_reason)j)) != 0,
                          "duplicate %s", reason_name((ag_reason)i));
        ag_reason back = AR_OK;
        ck_assert(reason_from_name(reason_name((ag_reason)i), &back));
        ck_assert_int_eq(back, i);
    }
    ag_reason r = AR_OK;
    ck_assert(!reason_from_name("uri_too_long", &r)); /* the 414 error class, not a reason */
    ck_assert_int_eq(r, AR_INTERNAL);
    r = AR_OK;
    ck_assert(!reason_from_name(NULL, &r));
    ck_assert_int_eq(r, AR_INTERNAL);
}
END_TEST

START_TEST(test_zero_value_refuses)
{
    ag_reason zero;
    memset(&zero, 0, sizeof(zero));
    ck_assert_int_eq(zero, AR_INTERNAL);
    ck_assert(!reason_forwards(zero));
    ck_assert_int_eq(reason_status(zero), 500);
    /* Out-of-range values read as the zero row, never as a forward. */
    ck_assert_ptr_eq(reason_row_of((ag_reason)AR__COUNT), reason_row_of(AR_INTERNAL));
    ck_assert_ptr_eq(reason_row_of((ag_reason)-1), reason_row_of(AR_INTERNAL));
    ck_assert_str_eq(reason_name(AR_OK), "ok");
}
END_TEST

START_TEST(test_jwt_statuses_map_to_401_rows)
{
    jwt_status zero;
    memset(&zero, 0, sizeof(zero));
    ck_assert_int_ne(zero, JWT_OK);
    for (int s = 0; s < JWT__COUNT; s++) {
        ag_reason r = jwt_status_code((jwt_status)s);
        if (s == JWT_OK) {
            ck_assert_int_eq(r, AR_OK);
            continue;
        }
        ck_assert_msg(reason_status(r) == 401, "jwt status %d -> %s", s, reason_name(r));
        ck_assert_str_eq(jwt_status_reason((jwt_status)s), reason_name(r));
    }
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("reason");
    TCase *tc = tcase_create("reason");
    tcase_add_test(tc, test_rows_consistent);
    tcase_add_test(tc, test_names_unique_and_round_trip);
    tcase_add_test(tc, test_zero_value_refuses);
    tcase_add_test(tc, test_jwt_statuses_map_to_401_rows);
    suite_add_tcase(s, tc);
    return s;
}

AG_TEST_MAIN(make_suite)
