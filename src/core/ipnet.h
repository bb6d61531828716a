/* ipnet.h: IP addresses and address ranges (CIDR) for sign-in rules: the
 * ranges a user type, a role or one user may sign in from, and the trusted
 * proxies. Pure (inet_pton/inet_ntop only). IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d) are IPv4 here, so a client reaching a dual-stack socket
 * over IPv4 matches IPv4 ranges. */
#ifndef RS_IPNET_H
#define RS_IPNET_H

#include <jansson.h>
#include <stdbool.h>

#include "error.h"

#define RS_CIDR_LIST_MAX 64 /* entries in one list */
#define RS_CIDR_TEXT_MAX 64 /* bytes of one entry's text, more is refused */

struct rs_ipaddr {
    int family;          /* 4 or 6 */
    unsigned char a[16]; /* network order; IPv4 uses a[0..3] */
};
struct rs_cidr {
    struct rs_ipaddr addr; /* the network: bits after prefix are zero */
    int prefix;            /* 0..32 for IPv4, 0..128 for IPv6 */
};

/* Parses an address ("192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7" which
 * becomes family 4). No zone ids, no prefix. 0 or -RS_EVALIDATION; *ret
 * written only on success. */
int rs_ip_parse(const char *s, struct rs_ipaddr *ret) RS_WUR;

/* Parses a range: "10.0.0.0/8", "192.168.1.5" (/32), "2001:db8::/32", "::1"
 * (/128). A mapped IPv6 range with a prefix of 96 or more
 * ("::ffff:10.0.0.0/104") becomes the IPv4 range (10.0.0.0/8). Bits set
 * after the prefix ("10.0.0.1/8") are refused: such a range is almost
 * always a typing mistake. 0 or -RS_EVALIDATION. */
int rs_cidr_parse(const char *s, struct rs_cidr *ret) RS_WUR;

/* Whether ip lies in c. Both are compared as IPv6, IPv4 being ::ffff:a.b.c.d,
 * so "::/0" holds every address and "0.0.0.0/0" every IPv4 address. */
bool rs_cidr_contains(const struct rs_cidr *c, const struct rs_ipaddr *ip);

/* Text of an address ("10.0.0.0", "2001:db8::") into out (at least 46 bytes). */
void rs_ip_format(const struct rs_ipaddr *ip, char *out, size_t cap);

/* Checks a JSON array of CIDR strings (at most RS_CIDR_LIST_MAX): 400 rule
 * "type" naming `field` if arr is not an array, or `field`[i] if an entry is
 * not a string; 422 rule "max_items" for too many; 422 rule "cidr" naming
 * `field`[i] for an entry that is not a range (the message gives the network
 * form when only host bits were wrong). Every bad entry is reported. */
int rs_cidr_list_check(json_t *arr, const char *field, struct rs_error *err) RS_WUR;

/* Whether ip (text) lies inside any entry of arr; NULL or an empty array
 * allows everything. An unparsable ip is inside nothing; entries that do not
 * parse are skipped (lists are checked when written). */
bool rs_cidr_list_allows(json_t *arr, const char *ip);

#endif
