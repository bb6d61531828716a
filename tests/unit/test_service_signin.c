/* test_service_signin.c: the dummy password hash unknown users are checked
 * against is made before the first sign-in (rs_svc_signin_prepare, which
 * `roster serve` calls at start) and again when the hashing parameters
 * change (rs_svc_auth_settings_patch), never inside a sign-in that the
 * process could have prepared for. Counts the hashes made instead of timing
 * them. A SQLite database in a temporary directory. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "src/service/crypto.h"
#include "src/service/notify.h"
#include "src/service/service.h"
#include "src/store/store.h"
#include "tmpdb.h"
#include "tmpstore.h"

static unsigned long made(void)
{
    unsigned long n = 0;
    (void)rs_pw_dummy_ready(0, 0, &n);
    return n;
}

static struct rs_store *open_store(void)
{
    return tmpstore_open();
}

static void patch_auth(struct rs_ctx *ctx, const char *text)
{
    struct rs_error err;
    rs_error_init(&err);
    json_t *p = json_loads(text, 0, NULL);
    assert_non_null(p);
    struct rs_auth_settings out;
    if (rs_svc_auth_settings_patch(ctx, p, -1, &out, &err) < 0)
        fail_msg("patch %s: %s", text, err.message);
    rs_auth_settings_release(&out);
    json_decref(p);
}

static void *verify_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        rs_pw_dummy_verify("a guess", 19456, 2);
    return NULL;
}

static void dummy_hash_made_before_sign_in(void **state)
{
    (void)state;
    assert_int_equal(tmpdb_make("roster-signin"), 0);
    struct rs_store *store = open_store();
    struct rs_ctx ctx;
    rs_ctx_init(&ctx, store);
    struct rs_error err;
    rs_error_init(&err);

    /* Nothing is made before the server prepares. */
    assert_false(rs_pw_dummy_ready(19456, 2, NULL));
    assert_int_equal(made(), 0);

    /* At start: made once, with the stored (default) parameters. */
    int mem = 0, iter = 0;
    assert_int_equal(rs_svc_signin_prepare(&ctx, &mem, &iter, &err), 0);
    assert_int_equal(mem, 19456);
    assert_int_equal(iter, 2);
    assert_true(rs_pw_dummy_ready(19456, 2, NULL));
    assert_int_equal(made(), 1);
    /* Preparing again makes nothing. */
    assert_int_equal(rs_svc_signin_prepare(&ctx, &mem, &iter, &err), 0);
    assert_int_equal(made(), 1);

    /* Unknown users' sign-ins (several at once) only verify. */
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, verify_many, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(made(), 1);

    /* New parameters: made by the settings change, not by the next sign-in. */
    patch_auth(&ctx, "{\"password\": {\"hash_memory_kib\": 20480, \"hash_iterations\": 3}}");
    assert_true(rs_pw_dummy_ready(20480, 3, NULL));
    assert_int_equal(made(), 2);
    rs_pw_dummy_verify("a guess", 20480, 3);
    assert_int_equal(made(), 2);
    /* A change of something else makes nothing. */
    patch_auth(&ctx, "{\"lockout\": {\"max_failures\": 6}}");
    assert_int_equal(made(), 2);

    /* Parameters another process set, unprepared here: that one sign-in
     * makes the hash (one argon2id computation, as a verification costs)
     * and the next only verifies. */
    rs_pw_dummy_verify("a guess", 19456, 4);
    assert_int_equal(made(), 3);
    assert_true(rs_pw_dummy_ready(19456, 4, NULL));
    rs_pw_dummy_verify("a guess", 19456, 4);
    assert_int_equal(made(), 3);

    rs_ctx_release(&ctx);
    store->ops->close(store);
    tmpdb_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dummy_hash_made_before_sign_in),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
