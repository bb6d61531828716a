/* test_ext_pwdict.c: unit tests for the common-password dictionary
 * (src/ext/pwdict.h) over cracklib's installed dictionary. Tests that need
 * the dictionary are skipped when cracklib-runtime is not installed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <cmocka.h>

#include "src/ext/pwdict.h"
#include "src/util/util.h"

static const char *const common[] = {
    /* plain dictionary words and classics */
    "password",
    "dragon",
    "letmein",
    "monkey",
    "sunshine",
    "princess",
    "football",
    "123456",
    "12345678",
    "qwertyuiop",
    "administrator",
    "trustno1",
    /* cracklib's mangling: case, leet, short suffixes */
    "PASSWORD",
    "Password",
    "passw0rd",
    "password123",
    "iloveyou123",
    "123456789012",
    "abcdefghijkl",
    "zyxwvutsrqponm",
    /* too simple per cracklib: fewer than 5 different characters */
    "abcabcabcabc",
    "aaaaaaaaaaaa",
    "111111111111",
    /* a word plus digits or symbols (cracklib alone lets these pass) */
    "password1234",
    "sunshine1234",
    "welcome@1234",
    "letmein12345",
    "Football1234!",
    /* the built-in list, alone and as a base */
    "qwertyuiopasdf",
    "1qaz2wsx3edc",
    "P@ssw0rd",
    "P@ssw0rd1234",
    "qwertyqwerty",
    "admin@1234",
};

static const char *const fine[] = {
    "correct horse battery staple fly",
    "k8#Vq2!mZp0x",
    "Tr0ub4dour&3xyz",
    "blue-harbor-kite-77",
    "maple syrup pancakes!",
    "xkcd936isgreat",
    "grumpy-otter-19",
    /* a palindrome with many different characters is not common as such */
    "xq7#kv!!vk#7qx",
    /* non-ASCII passphrase */
    "gr\u00FC\u00DFe aus M\u00FCnchen 42x",
    /* random strings that cracklib alone calls "too simplistic/systematic" */
    "QzWstbCshwjKJQwX!7",
    "QzWstbCshwjKJQwX",
};

static void common_passwords_refused(void **state)
{
    (void)state;
    if (!rs_pwdict_available())
        skip();
    for (size_t i = 0; i < RS_ARRAY_LEN(common); i++) {
        if (!rs_pwdict_common(common[i]))
            fail_msg("\"%s\" not reported common", common[i]);
    }
}

static void good_passwords_accepted(void **state)
{
    (void)state;
    if (!rs_pwdict_available())
        skip();
    for (size_t i = 0; i < RS_ARRAY_LEN(fine); i++) {
        if (rs_pwdict_common(fine[i]))
            fail_msg("\"%s\" reported common", fine[i]);
    }
}

static void empty_and_null_not_common(void **state)
{
    (void)state;
    assert_false(rs_pwdict_common(NULL));
    assert_false(rs_pwdict_common(""));
}

/* The built-in list needs no dictionary, so this runs everywhere. */
static void builtin_list_without_dictionary(void **state)
{
    (void)state;
    assert_true(rs_pwdict_common("qwertyuiopasdf"));
    assert_true(rs_pwdict_common("QWERTYUIOPASDF"));
    assert_true(rs_pwdict_common("p@ssw0rd!!2024"));
    /* A near miss of a list entry is not a match by the list. */
    assert_false(rs_pwdict_common("qwertyuiopasdX7#k-unusual"));
}

/* Concurrent checks give the same answers as sequential ones. */
struct worker {
    int mismatches;
};

static void *check_many(void *arg)
{
    struct worker *w = arg;
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < RS_ARRAY_LEN(common); i++)
            w->mismatches += !rs_pwdict_common(common[i]);
        for (size_t i = 0; i < RS_ARRAY_LEN(fine); i++)
            w->mismatches += rs_pwdict_common(fine[i]);
    }
    return NULL;
}

static void concurrent_checks_agree(void **state)
{
    (void)state;
    if (!rs_pwdict_available())
        skip();
    pthread_t t[8];
    struct worker w[8];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, check_many, &w[i]), 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].mismatches, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(common_passwords_refused),
        cmocka_unit_test(good_passwords_accepted),
        cmocka_unit_test(empty_and_null_not_common),
        cmocka_unit_test(builtin_list_without_dictionary),
        cmocka_unit_test(concurrent_checks_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
