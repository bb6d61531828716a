/* test_core_lifecycle.c: the status state machine, deactivation reasons and
 * manager cycles (src/core/lifecycle.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/core/lifecycle.h"

/* The table, written out independently of lifecycle.c: -1 refused. */
static int expected(enum rs_user_status from, enum rs_user_action a)
{
    if (from == RS_STATUS_PENDING && a == RS_ACTION_ACTIVATE)
        return RS_STATUS_ACTIVE;
    if (from == RS_STATUS_ACTIVE && a == RS_ACTION_DEACTIVATE)
        return RS_STATUS_INACTIVE;
    if (from == RS_STATUS_INACTIVE && a == RS_ACTION_REACTIVATE)
        return RS_STATUS_ACTIVE;
    if (from == RS_STATUS_ACTIVE && a == RS_ACTION_LOCK)
        return RS_STATUS_LOCKED;
    if (from == RS_STATUS_LOCKED && a == RS_ACTION_UNLOCK)
        return RS_STATUS_ACTIVE;
    return -1;
}

static void every_transition(void **state)
{
    for (int s = 0; s < RS_STATUS_COUNT; s++) {
        for (int a = 0; a < RS_ACTION_COUNT; a++) {
            struct rs_error e;
            rs_error_init(&e);
            enum rs_user_status to = RS_STATUS_COUNT;
            int r = rs_lifecycle_next((enum rs_user_status)s, (enum rs_user_action)a, &to, &e);
            int want = expected((enum rs_user_status)s, (enum rs_user_action)a);
            if (want >= 0) {
                assert_int_equal(r, 0);
                assert_int_equal(to, want);
            } else {
                assert_int_equal(r, -RS_ECONFLICT);
                assert_int_equal(to, RS_STATUS_COUNT); /* not written on failure */
                assert_string_equal(e.fields[0].field, "status");
                assert_string_equal(e.fields[0].rule, "transition");
            }
        }
    }
}

static void refusal_names_the_allowed_actions(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    enum rs_user_status to;
    assert_int_equal(rs_lifecycle_next(RS_STATUS_PENDING, RS_ACTION_DEACTIVATE, &to, &e),
                     -RS_ECONFLICT);
    assert_string_equal(e.message, "cannot deactivate a user who is pending; from pending the "
                                   "allowed actions are: activate");
    rs_error_init(&e);
    assert_int_equal(rs_lifecycle_next(RS_STATUS_ACTIVE, RS_ACTION_ACTIVATE, &to, &e),
                     -RS_ECONFLICT);
    assert_non_null(strstr(e.message, "deactivate, lock"));
}

static void deactivation_reasons(void **state)
{
    struct rs_error e;
    rs_error_init(&e);
    assert_int_equal(rs_lifecycle_check_reason(RS_ACTION_DEACTIVATE, "left_company", NULL, &e), 0);
    assert_int_equal(rs_lifecycle_check_reason(RS_ACTION_DEACTIVATE, NULL, NULL, &e),
                     -RS_EVALIDATION);
    assert_string_equal(e.fields[0].field, "reason");
    assert_string_equal(e.fields[0].rule, "required");
    rs_error_init(&e);
    assert_int_equal(rs_lifecycle_check_reason(RS_ACTION_DEACTIVATE, "bored", NULL, &e),
                     -RS_EVALIDATION);
    assert_string_equal(e.fields[0].rule, "enum");
    rs_error_init(&e);
    assert_int_equal(rs_lifecycle_check_reason(RS_ACTION_DEACTIVATE, "other", NULL, &e),
                     -RS_EVALIDATION);
    assert_string_equal(e.fields[0].field, "note");
    assert_string_equal(e.fields[0].rule, "required");
    rs_error_init(&e);
    assert_int_equal(rs_lifecycle_check_reason(RS_ACTION_DEACTIVATE, "other", "sabbatical", &e),
                     0);
    /* Only deactivate takes a reason. */
    assert_int_equal(rs_lifecycle_check_reason(RS_ACTION_LOCK, "other", NULL, &e),
                     -RS_EBADREQUEST);
    char *long_note = rs_xmalloc(RS_NOTE_MAX + 2);
    memset(long_note, 'n', RS_NOTE_MAX + 1);
    long_note[RS_NOTE_MAX + 1] = '\0';
    rs_error_init(&e);
    assert_int_equal(rs_lifecycle_check_reason(RS_ACTION_LOCK, NULL, long_note, &e),
                     -RS_EVALIDATION);
    assert_string_equal(e.fields[0].rule, "max_length");
    free(long_note);
}

static void manager_cycles(void **state)
{
    struct rs_error e;
    /* 5 would report to 3, whose chain is 3 -> 4 -> 5: a loop. */
    int64_t ids[] = {3, 4, 5};
    char *names[] = {"mjones", "kdoe", "jsmith"};
    rs_error_init(&e);
    assert_int_equal(rs_manager_check(5, "jsmith", 3, ids, names, 3, &e), -RS_EVALIDATION);
    assert_string_equal(e.fields[0].field, "manager_id");
    assert_string_equal(e.fields[0].rule, "cycle");
    assert_non_null(strstr(e.message, "jsmith \xe2\x86\x92 mjones \xe2\x86\x92 kdoe \xe2\x86\x92 jsmith"));
    /* No loop when the user is not in the chain. */
    rs_error_init(&e);
    assert_int_equal(rs_manager_check(9, "other", 3, ids, names, 3, &e), 0);
    /* Oneself. */
    rs_error_init(&e);
    assert_int_equal(rs_manager_check(7, "ann", 7, NULL, NULL, 0, &e), -RS_EVALIDATION);
    assert_non_null(strstr(e.message, "ann \xe2\x86\x92 ann"));
    /* A new user (id 0) cannot loop; no manager is fine. */
    assert_int_equal(rs_manager_check(0, "new", 3, ids, names, 3, &e), 0);
    assert_int_equal(rs_manager_check(5, "jsmith", 0, ids, names, 3, &e), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_transition),
        cmocka_unit_test(refusal_names_the_allowed_actions),
        cmocka_unit_test(deactivation_reasons),
        cmocka_unit_test(manager_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
