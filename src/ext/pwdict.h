/* pwdict.h: the common-password dictionary (Authentication Settings ->
 * Password Policy -> blocklist): libpwquality's dictionary check against
 * cracklib's packed dictionary (Debian package cracklib-runtime). The rule's
 * error ("blocklist") is the caller's; this only answers yes or no. */
#ifndef RS_PWDICT_H
#define RS_PWDICT_H

#include <stdbool.h>

/* Where cracklib-runtime keeps the dictionary (files .pwd, .pwi, .hwm). */
#define RS_PWDICT_PATH "/var/cache/cracklib/cracklib_dict"

/* true when pw (a normalised password, NUL-terminated) is common:
 * - cracklib (through libpwquality, every other pwquality rule off) finds it
 *   a dictionary word, based on one, or too simple (fewer than 5 different
 *   characters, systematic);
 * - or it is such a word followed by digits or symbols ("welcome@1234"),
 *   which cracklib alone lets pass;
 * - or it (or its base without trailing digits and symbols) is on a short
 *   built-in list of common passwords cracklib misses (keyboard walks, leet
 *   spellings, doubled words); the list works without the dictionary.
 * false otherwise, also when pw is NULL or "", for libpwquality's own early
 * refusals (shorter than 6 bytes, or a palindrome of 5+ different
 * characters: not ours to judge; the policy's minimum length refuses the
 * short ones), and when the dictionary is not installed (logged once per
 * process). Thread-safe: cracklib calls are serialised (it is not
 * documented as reentrant) and each opens the dictionary files, about
 * 0.5 ms; a password costs one or two. */
bool rs_pwdict_common(const char *pw);

/* Whether the dictionary files are present and readable (tests skip without). */
bool rs_pwdict_available(void);

#endif
