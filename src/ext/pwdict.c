/* pwdict.c: rs_pwdict_common over libpwquality with every rule off but the
 * cracklib dictionary check. Settings are built once from the library's
 * defaults (never /etc/security/pwquality.conf: the policy is roster's) and
 * only read afterwards. Two gaps of cracklib's, measured on Debian 12's
 * cracklib-small, are closed here: a word plus a number or symbols
 * ("password1234", "welcome@1234", "football1234" pass cracklib), and a few
 * keyboard walks, leet spellings and doubled words (common_extra). */
#include <pthread.h>
#include <stdbool.h>
#include <pwquality.h>
#include <unistd.h>

#include "../util/log.h"
#include "pwdict.h"

static pthread_once_t settings_once = PTHREAD_ONCE_INIT;
static pwquality_settings_t *settings; /* NULL if they could not be built */
/* cracklib's FascistCheck (which pwquality_check calls) is not documented as
 * reentrant and its rules use static work buffers: one check at a time. */
static pthread_mutex_t check_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t missing_once = PTHREAD_ONCE_INIT;

static const struct {
    int setting, value;
} dict_only[] = {
    {PWQ_SETTING_DICT_CHECK, 1},  {PWQ_SETTING_MIN_LENGTH, 6}, /* libpwquality's floor */
    {PWQ_SETTING_DIFF_OK, 0},     {PWQ_SETTING_DIG_CREDIT, 0},       {PWQ_SETTING_UP_CREDIT, 0},
    {PWQ_SETTING_LOW_CREDIT, 0},  {PWQ_SETTING_OTH_CREDIT, 0},       {PWQ_SETTING_MIN_CLASS, 0},
    {PWQ_SETTING_MAX_REPEAT, 0},  {PWQ_SETTING_MAX_CLASS_REPEAT, 0}, {PWQ_SETTING_MAX_SEQUENCE, 0},
    {PWQ_SETTING_GECOS_CHECK, 0}, {PWQ_SETTING_USER_CHECK, 0},       {PWQ_SETTING_USER_SUBSTR, 0},
    {PWQ_SETTING_LOCAL_USERS, 0},
};

static void settings_build(void)
{
    pwquality_settings_t *s = pwquality_default_settings();
    if (!s)
        return;
    for (size_t i = 0; i < RS_ARRAY_LEN(dict_only); i++) {
        if (pwquality_set_int_value(s, dict_only[i].setting, dict_only[i].value) != 0)
            goto fail;
    }
    /* The defaults have no bad words; the path is explicit so the one checked
     * by rs_pwdict_available is the one used. */
    if (pwquality_set_str_value(s, PWQ_SETTING_DICT_PATH, RS_PWDICT_PATH) != 0)
        goto fail;
    settings = s;
    return;
fail:
    pwquality_free_settings(s);
}

bool rs_pwdict_available(void)
{
    return access(RS_PWDICT_PATH ".pwd", R_OK) == 0 && access(RS_PWDICT_PATH ".pwi", R_OK) == 0 &&
           access(RS_PWDICT_PATH ".hwm", R_OK) == 0;
}

/* Common passwords (lower case) that cracklib with cracklib-small accepts,
 * each measured; compared case-insensitively with the whole password and
 * with its base (see base_length). The short ones only ever match as a base
 * ("admin@1234"), being under the policy's minimum length themselves. */
static const char *const common_extra[] = {
    /* keyboard walks */
    "qwertyuiopasdf",
    "1qaz2wsx3edc",
    "1qaz2wsx3edc4rfv",
    "zaq12wsxcde3",
    "zaq1xsw2cde3",
    "1q2w3e4r5t6y7u",
    "1q2w3e4r5t6y7u8i",
    "q1w2e3r4t5y6",
    "q1w2e3r4t5y6u7",
    "123qweasdzxc",
    "1234qwerasdf",
    "qwer1234asdf",
    "!qaz2wsx",
    "1qaz!qaz",
    "a1b2c3d4e5f6",
    /* leet spellings */
    "p@ssw0rd",
    "p@$$w0rd",
    /* doubled words */
    "passwordpassword",
    "letmeinletmein",
    "qwertyqwerty",
    "iloveyouiloveyou",
    /* bases under libpwquality's 6-byte floor */
    "admin",
    "root",
    "pass",
    "test",
    "user",
    "love",
    "abc",
    "qwe",
    "asdf",
};

static bool equal_ascii_nocase(const char *a, size_t alen, const char *lower)
{
    size_t i = 0;
    for (; i < alen && lower[i]; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lower[i])
            return false;
    }
    return i == alen && lower[i] == '\0';
}

static bool in_common_extra(const char *pw, size_t len)
{
    for (size_t i = 0; i < RS_ARRAY_LEN(common_extra); i++) {
        if (equal_ascii_nocase(pw, len, common_extra[i]))
            return true;
    }
    return false;
}

/* The length of pw without its trailing ASCII digits and punctuation:
 * "welcome@1234" -> 7 ("welcome"). */
static size_t base_length(const char *pw, size_t len)
{
    while (len > 0) {
        unsigned char c = (unsigned char)pw[len - 1];
        bool tail = (c >= '0' && c <= '9') || (c >= '!' && c <= '/') || (c >= ':' && c <= '@') ||
                    (c >= '[' && c <= '`') || (c >= '{' && c <= '~') || c == ' ';
        if (!tail)
            break;
        len--;
    }
    return len;
}

/* Fewer different characters than cracklib's MINDIFF (5). */
static bool few_different(const char *pw)
{
    bool seen[256] = {false};
    int n = 0;
    for (const unsigned char *p = (const unsigned char *)pw; *p && n < 5; p++) {
        if (!seen[*p])
            n++;
        seen[*p] = true;
    }
    return n < 5;
}

/* A run-like password: most neighbours equal or one apart ("123456789012",
 * "abcdefghijkl", "zyxwvutsrqpo"), compared without case. */
static bool systematic(const char *pw)
{
    size_t pairs = 0, close = 0;
    for (const unsigned char *p = (const unsigned char *)pw; p[0] && p[1]; p++) {
        int a = p[0] >= 'A' && p[0] <= 'Z' ? p[0] + 32 : p[0];
        int b = p[1] >= 'A' && p[1] <= 'Z' ? p[1] + 32 : p[1];
        pairs++;
        if (a - b <= 1 && b - a <= 1)
            close++;
    }
    return pairs > 0 && close * 2 > pairs;
}

/* cracklib's verdict on pw through libpwquality (dictionary present). */
static bool cracklib_common(const char *pw)
{
    if (pthread_once(&settings_once, settings_build) != 0 || !settings)
        return false;
    void *aux = NULL;
    char msg[256] = "";
    pthread_mutex_lock(&check_lock);
    int rc = pwquality_check(settings, pw, NULL, NULL, &aux);
    /* Frees aux when the library allocated it (see pwquality.h). */
    if (rc < 0)
        (void)pwquality_strerror(msg, sizeof(msg), rc, aux);
    pthread_mutex_unlock(&check_lock);
    /* pwquality refuses palindromes before asking cracklib; a palindrome is
     * not common as such, but "aaaaaaaaaaaa" is, and cracklib would have
     * said so for its few different characters. Other early refusals
     * (length under 6) are not ours either. */
    if (rc == PWQ_ERROR_PALINDROME)
        return few_different(pw);
    if (rc != PWQ_ERROR_CRACKLIB_CHECK)
        return false;
    /* cracklib's "too simplistic/systematic" also fires on random strings
     * (it counts a few neighbouring letters); judge that one ourselves. */
    if (strstr(msg, "simplistic"))
        return systematic(pw);
    return true;
}

static void log_missing(void)
{
    rs_log(RS_LOG_WARN, "password dictionary missing: common-password check disabled", "path",
           RS_PWDICT_PATH, "package", "cracklib-runtime", NULL);
}

bool rs_pwdict_common(const char *pw)
{
    if (!pw || !*pw)
        return false;
    size_t len = strlen(pw), base = base_length(pw, len);
    /* The built-in list needs no dictionary. */
    if (in_common_extra(pw, len) || (base > 0 && base < len && in_common_extra(pw, base)))
        return true;
    /* Checked on every call: without the files cracklib answers "error
     * loading dictionary" as if every password were common. */
    if (!rs_pwdict_available()) {
        (void)pthread_once(&missing_once, log_missing);
        return false;
    }
    if (cracklib_common(pw))
        return true;
    /* A dictionary word plus digits or symbols is the first thing a cracker
     * tries; libpwquality cannot judge bases under 6 bytes. */
    if (base < len && base >= 6) {
        _cleanup_free_ char *stem = rs_xstrndup(pw, base);
        return cracklib_common(stem);
    }
    return false;
}
