/* test_core_access.c: unit tests for the first-slice access rule
 * (src/core/access.h): the level follows the user type, only active users
 * hold any level. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/core/access.h"

/* The expected table for an active user, written out independently of access.c. */
static enum rs_level expected_active(enum rs_user_type t, enum rs_resource r)
{
    static const enum rs_level table[RS_USER_TYPE_COUNT][RS_RES_COUNT] = {
        /*                 users          api_keys       audit          system      settings */
        [RS_USER_STANDARD] = {RS_LEVEL_READ, RS_LEVEL_NONE, RS_LEVEL_NONE, RS_LEVEL_NONE,
                              RS_LEVEL_NONE},
        [RS_USER_ADMIN] = {RS_LEVEL_ADMIN, RS_LEVEL_ADMIN, RS_LEVEL_ADMIN, RS_LEVEL_ADMIN,
                           RS_LEVEL_ADMIN},
        [RS_USER_API] = {RS_LEVEL_READ, RS_LEVEL_NONE, RS_LEVEL_NONE, RS_LEVEL_NONE,
                         RS_LEVEL_NONE},
        /* Guests are capped at read. */
        [RS_USER_GUEST] = {RS_LEVEL_READ, RS_LEVEL_NONE, RS_LEVEL_NONE, RS_LEVEL_NONE,
                           RS_LEVEL_NONE},
    };
    return table[t][r];
}

static void levels_by_type_when_active(void **state)
{
    for (int t = 0; t < RS_USER_TYPE_COUNT; t++) {
        for (int r = 0; r < RS_RES_COUNT; r++) {
            enum rs_level got =
                rs_access_level((enum rs_user_type)t, RS_STATUS_ACTIVE, (enum rs_resource)r);
            enum rs_level want = expected_active((enum rs_user_type)t, (enum rs_resource)r);
            if (got != want)
                fail_msg("type %s on %s: %s, want %s", rs_user_type_name((enum rs_user_type)t),
                         rs_resource_name((enum rs_resource)r), rs_level_name(got),
                         rs_level_name(want));
        }
    }
}

static void no_level_unless_active(void **state)
{
    for (int s = 0; s < RS_STATUS_COUNT; s++) {
        if (s == RS_STATUS_ACTIVE)
            continue;
        for (int t = 0; t < RS_USER_TYPE_COUNT; t++) {
            for (int r = 0; r < RS_RES_COUNT; r++) {
                enum rs_level got = rs_access_level((enum rs_user_type)t, (enum rs_user_status)s,
                                                    (enum rs_resource)r);
                if (got != RS_LEVEL_NONE)
                    fail_msg("%s %s on %s: %s, want none",
                             rs_user_status_name((enum rs_user_status)s),
                             rs_user_type_name((enum rs_user_type)t),
                             rs_resource_name((enum rs_resource)r), rs_level_name(got));
            }
        }
    }
}

static void allows(void **state)
{
    assert_true(rs_access_allows(RS_USER_ADMIN, RS_STATUS_ACTIVE, RS_RES_USERS, RS_LEVEL_WRITE));
    assert_true(rs_access_allows(RS_USER_ADMIN, RS_STATUS_ACTIVE, RS_RES_SYSTEM, RS_LEVEL_ADMIN));
    assert_true(rs_access_allows(RS_USER_STANDARD, RS_STATUS_ACTIVE, RS_RES_USERS, RS_LEVEL_READ));
    assert_false(
        rs_access_allows(RS_USER_STANDARD, RS_STATUS_ACTIVE, RS_RES_USERS, RS_LEVEL_WRITE));
    assert_false(rs_access_allows(RS_USER_API, RS_STATUS_ACTIVE, RS_RES_AUDIT, RS_LEVEL_READ));
    assert_true(rs_access_allows(RS_USER_GUEST, RS_STATUS_ACTIVE, RS_RES_USERS, RS_LEVEL_READ));
    assert_false(rs_access_allows(RS_USER_GUEST, RS_STATUS_ACTIVE, RS_RES_USERS, RS_LEVEL_WRITE));
    assert_false(rs_access_allows(RS_USER_ADMIN, RS_STATUS_LOCKED, RS_RES_USERS, RS_LEVEL_READ));
    /* Needing nothing is always allowed. */
    assert_true(rs_access_allows(RS_USER_GUEST, RS_STATUS_LOCKED, RS_RES_USERS, RS_LEVEL_NONE));
}

static void out_of_range_type_has_no_level(void **state)
{
    assert_int_equal(rs_access_level(RS_USER_TYPE_COUNT, RS_STATUS_ACTIVE, RS_RES_USERS),
                     RS_LEVEL_NONE);
    assert_int_equal(rs_access_level((enum rs_user_type) - 1, RS_STATUS_ACTIVE, RS_RES_USERS),
                     RS_LEVEL_NONE);
}

static void names(void **state)
{
    assert_string_equal(rs_resource_name(RS_RES_USERS), "users");
    assert_string_equal(rs_resource_name(RS_RES_APIKEYS), "api_keys");
    assert_string_equal(rs_resource_name(RS_RES_AUDIT), "audit");
    assert_string_equal(rs_resource_name(RS_RES_SYSTEM), "system");
    assert_string_equal(rs_resource_name(RS_RES_COUNT), "unknown");
    assert_string_equal(rs_level_name(RS_LEVEL_NONE), "none");
    assert_string_equal(rs_level_name(RS_LEVEL_READ), "read");
    assert_string_equal(rs_level_name(RS_LEVEL_WRITE), "write");
    assert_string_equal(rs_level_name(RS_LEVEL_ADMIN), "admin");
    assert_string_equal(rs_level_name((enum rs_level)42), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(levels_by_type_when_active),
        cmocka_unit_test(no_level_unless_active),
        cmocka_unit_test(allows),
        cmocka_unit_test(out_of_range_type_has_no_level),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
