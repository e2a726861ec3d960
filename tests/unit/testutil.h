/* Shared scaffolding for the check-based unit tests: one suite per module. */
#ifndef AG_TESTUTIL_H
#define AG_TESTUTIL_H

#include <check.h>
#include <stdlib.h>

/* Defines main() running the suite built by make_suite and exiting non-zero on
 * any failure. Check prints its "N%: Checks: N, Failures: N, Errors: N" line. */
#define AG_TEST_MAIN(make_suite)                                                                   \
    int main(void)                                                                                 \
    {                                                                                              \
        SRunner *sr = srunner_create(make_suite());                                                \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        int failed = srunner_ntests_failed(sr);                                                    \
        srunner_free(sr);                                                                          \
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;                                          \
    }

#endif
