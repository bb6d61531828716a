/* test_core_access.c: roles and effective access (src/core/access.h):
 * permissions combine and the highest level wins, the user type bounds the
 * result, only active users hold anything, retired roles grant nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/core/access.h"
#include "src/core/group.h"

static char *catalogue[] = {"users", "groups", "settings", "invoices"};
#define NCAT (sizeof(catalogue) / sizeof(catalogue[0]))

static void make_role(struct rs_role *r, const char *key, const char *perms, bool active)
{
    rs_role_init(r);
    r->key = rs_xstrdup(key);
    r->name = rs_xstrdup(key);
    r->permissions = json_loads(perms, 0, NULL);
    assert_non_null(r->permissions);
    r->active = active;
}

static struct rs_role roles[5];

static int setup(void **state)
{
    make_role(&roles[0], "reader", "{\"users\":\"read\",\"groups\":\"read\"}", true);
    make_role(&roles[1], "writer", "{\"users\":\"write\"}", true);
    make_role(&roles[2], "finance", "{\"invoices\":\"admin\"}", true);
    make_role(&roles[3], "everything", "{\"*\":\"admin\"}", true);
    make_role(&roles[4], "retired", "{\"settings\":\"admin\"}", false);
    return 0;
}

static int teardown(void **state)
{
    for (size_t i = 0; i < 5; i++)
        rs_role_release(&roles[i]);
    return 0;
}

static enum rs_level level(const struct rs_access *a, const char *res)
{
    const struct rs_access_entry *e = rs_access_find(a, res);
    assert_non_null(e);
    return e->level;
}

static void highest_access_wins(void **state)
{
    struct rs_role_ref refs[] = {{"reader", RS_VIA_PRIMARY, NULL},
                                 {"writer", RS_VIA_SECONDARY, NULL},
                                 {"finance", RS_VIA_GROUP, "Finance"},
                                 {"retired", RS_VIA_SECONDARY, NULL},
                                 {"no_such_role", RS_VIA_SECONDARY, NULL}};
    struct rs_access a;
    rs_access_resolve(7, RS_USER_STANDARD, RS_STATUS_ACTIVE, roles, 5, refs, 5, catalogue, NCAT,
                      &a);
    assert_int_equal(level(&a, "users"), RS_LEVEL_WRITE);  /* write beats read */
    assert_int_equal(level(&a, "groups"), RS_LEVEL_READ);
    assert_int_equal(level(&a, "invoices"), RS_LEVEL_ADMIN); /* through the group */
    assert_int_equal(level(&a, "settings"), RS_LEVEL_NONE);  /* retired role: nothing */
    assert_null(rs_access_find(&a, "unknown"));
    /* The grants name the sources of the winning level only. */
    const struct rs_access_entry *u = rs_access_find(&a, "users");
    assert_int_equal(u->ngrants, 1);
    assert_string_equal(u->grants[0].role, "writer");
    assert_int_equal(u->grants[0].via, RS_VIA_SECONDARY);
    const struct rs_access_entry *inv = rs_access_find(&a, "invoices");
    assert_string_equal(inv->grants[0].group, "Finance");
    rs_access_release(&a);
}

static void wildcard_and_ties(void **state)
{
    struct rs_role_ref refs[] = {{"everything", RS_VIA_PRIMARY, NULL},
                                 {"finance", RS_VIA_SECONDARY, NULL}};
    struct rs_access a;
    rs_access_resolve(7, RS_USER_STANDARD, RS_STATUS_ACTIVE, roles, 5, refs, 2, catalogue, NCAT,
                      &a);
    for (size_t i = 0; i < NCAT; i++)
        assert_int_equal(level(&a, catalogue[i]), RS_LEVEL_ADMIN);
    /* Two roles granting the same level are both named. */
    assert_int_equal(rs_access_find(&a, "invoices")->ngrants, 2);
    rs_access_release(&a);
}

static void types_and_statuses_bound_it(void **state)
{
    struct rs_role_ref refs[] = {{"everything", RS_VIA_PRIMARY, NULL}};
    struct rs_access a;
    rs_access_resolve(7, RS_USER_GUEST, RS_STATUS_ACTIVE, roles, 5, refs, 1, catalogue, NCAT, &a);
    for (size_t i = 0; i < NCAT; i++)
        assert_int_equal(level(&a, catalogue[i]), RS_LEVEL_READ); /* guests: at most read */
    assert_true(rs_access_find(&a, "users")->capped);
    rs_access_release(&a);

    rs_access_resolve(7, RS_USER_ADMIN, RS_STATUS_ACTIVE, roles, 5, NULL, 0, catalogue, NCAT, &a);
    for (size_t i = 0; i < NCAT; i++)
        assert_int_equal(level(&a, catalogue[i]), RS_LEVEL_ADMIN); /* admin type: all */
    rs_access_release(&a);

    for (int s = 0; s < RS_STATUS_COUNT; s++) {
        if (s == RS_STATUS_ACTIVE)
            continue;
        rs_access_resolve(7, RS_USER_ADMIN, (enum rs_user_status)s, roles, 5, refs, 1, catalogue,
                          NCAT, &a);
        for (size_t i = 0; i < NCAT; i++)
            assert_int_equal(level(&a, catalogue[i]), RS_LEVEL_NONE);
        rs_access_release(&a);
    }
}

static void role_decoding(void **state)
{
    struct rs_role r;
    struct rs_error e;
    rs_error_init(&e);
    json_t *o = json_loads("{\"key\":\"clerk\",\"name\":\"Clerk\",\"permissions\":"
                           "{\"users\":\"read\",\"invoices\":\"write\"}}",
                           0, NULL);
    assert_int_equal(rs_role_decode(o, NULL, catalogue, NCAT, &r, &e), 0);
    assert_int_equal(rs_role_level(&r, "invoices"), RS_LEVEL_WRITE);
    assert_int_equal(rs_role_level(&r, "settings"), RS_LEVEL_NONE);
    json_decref(o);
    struct rs_role r2;
    o = json_loads("{\"key\":\"other\"}", 0, NULL);
    rs_error_init(&e);
    assert_int_equal(rs_role_decode(o, &r, catalogue, NCAT, &r2, &e), -RS_EVALIDATION);
    assert_string_equal(e.fields[0].rule, "immutable");
    json_decref(o);
    rs_role_release(&r);

    static const char *const bad[][3] = {
        {"{\"key\":\"Bad Key\",\"name\":\"x\"}", "key", "format"},
        {"{\"key\":\"x\"}", "name", "required"},
        {"{\"key\":\"x\",\"name\":\"x\",\"permissions\":{\"nope\":\"read\"}}", "permissions.nope",
         "unknown"},
        {"{\"key\":\"x\",\"name\":\"x\",\"permissions\":{\"users\":\"root\"}}",
         "permissions.users", "enum"},
        {"{\"key\":\"x\",\"name\":\"x\",\"built_in\":true}", "built_in", "read_only"},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        rs_error_init(&e);
        o = json_loads(bad[i][0], 0, NULL);
        assert_true(rs_role_decode(o, NULL, catalogue, NCAT, &r, &e) < 0);
        json_decref(o);
        assert_string_equal(e.fields[0].field, bad[i][1]);
        assert_string_equal(e.fields[0].rule, bad[i][2]);
    }
    enum rs_level l;
    assert_int_equal(rs_level_parse("write", &l), 0);
    assert_int_equal(l, RS_LEVEL_WRITE);
    assert_int_equal(rs_level_parse("superuser", &l), -1);
    assert_true(rs_access_key_ok("finance.invoices"));
    assert_false(rs_access_key_ok("9lives"));
}

static void group_decoding(void **state)
{
    struct rs_group g, g2;
    struct rs_error e;
    rs_error_init(&e);
    json_t *o = json_loads("{\"name\":\"  Sales  \",\"email\":\"sales@example.com\","
                           "\"roles\":[\"standard_user\"]}",
                           0, NULL);
    assert_int_equal(rs_group_decode(o, NULL, &g, &e), 0);
    json_decref(o);
    assert_string_equal(g.name, "Sales"); /* trimmed */
    assert_string_equal(g.description, "");
    assert_int_equal(json_array_size(g.roles), 1);
    /* A change merges onto the old record; null clears the address. */
    o = json_loads("{\"email\":null,\"description\":\"Field sales\"}", 0, NULL);
    assert_int_equal(rs_group_decode(o, &g, &g2, &e), 0);
    json_decref(o);
    assert_null(g2.email);
    assert_string_equal(g2.name, "Sales");
    assert_string_equal(g2.description, "Field sales");
    rs_group_release(&g2);
    rs_group_release(&g);
    static const char *const bad[][3] = {
        {"{}", "name", "required"},
        {"{\"name\":\"   \"}", "name", "required"},
        {"{\"name\":\"x\",\"email\":\"not-an-address\"}", "email", "format"},
        {"{\"name\":\"x\",\"roles\":[\"Bad Key\"]}", "roles", "format"},
        {"{\"name\":\"x\",\"roles\":\"admin\"}", "roles", "type"},
        {"{\"name\":\"x\",\"member_count\":3}", "member_count", "read_only"},
        {"{\"name\":\"x\",\"colour\":1}", "colour", "unknown_field"},
    };
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        rs_error_init(&e);
        o = json_loads(bad[i][0], 0, NULL);
        assert_true(rs_group_decode(o, NULL, &g, &e) < 0);
        json_decref(o);
        assert_string_equal(e.fields[0].field, bad[i][1]);
        assert_string_equal(e.fields[0].rule, bad[i][2]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(highest_access_wins),
        cmocka_unit_test(wildcard_and_ties),
        cmocka_unit_test(types_and_statuses_bound_it),
        cmocka_unit_test(role_decoding),
        cmocka_unit_test(group_decoding),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
