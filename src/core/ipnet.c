/* ipnet.c: IP addresses and CIDR ranges (see ipnet.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <sys/socket.h>

#include "ipnet.h"

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int rs_ip_parse(const char *s, struct rs_ipaddr *ret)
{
    struct rs_ipaddr ip;
    memset(&ip, 0, sizeof(ip));
    if (!s || strnlen(s, RS_CIDR_TEXT_MAX + 1) > RS_CIDR_TEXT_MAX)
        return -RS_EVALIDATION;
    if (strchr(s, ':')) {
        if (inet_pton(AF_INET6, s, ip.a) != 1)
            return -RS_EVALIDATION;
        ip.family = 6;
        if (memcmp(ip.a, v4_mapped, sizeof(v4_mapped)) == 0) {
            memmove(ip.a, ip.a + 12, 4);
            memset(ip.a + 4, 0, 12);
            ip.family = 4;
        }
    } else {
        /* glibc's inet_pton takes exactly four decimal parts, no leading zeros. */
        if (inet_pton(AF_INET, s, ip.a) != 1)
            return -RS_EVALIDATION;
        ip.family = 4;
    }
    *ret = ip;
    return 0;
}

/* Decimal 0..max, no sign, no leading zeros. */
static int parse_prefix(const char *s, int max, int *ret)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *ret = v;
    return 0;
}

static void mask_bits(unsigned char *a, int bytes, int prefix)
{
    for (int i = 0; i < bytes; i++) {
        int keep = prefix - i * 8;
        if (keep >= 8)
            continue;
        a[i] &= keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
    }
}

/* 0, -1 when not a range, -2 when only bits after the prefix are set
 * (*ret_network then holds the network form). */
static int cidr_parse(const char *s, struct rs_cidr *ret, struct rs_cidr *ret_network)
{
    if (!s || strnlen(s, RS_CIDR_TEXT_MAX + 1) > RS_CIDR_TEXT_MAX)
        return -1;
    char text[RS_CIDR_TEXT_MAX + 1];
    rs_strlcpy(text, s, sizeof(text));
    char *slash = strchr(text, '/');
    const char *ptext = NULL;
    if (slash) {
        *slash = '\0';
        ptext = slash + 1;
    }
    struct rs_cidr c;
    memset(&c, 0, sizeof(c));
    bool v6_text = strchr(text, ':') != NULL;
    if (rs_ip_parse(text, &c.addr) < 0)
        return -1;
    int max = v6_text ? 128 : 32;
    int prefix = max;
    if (ptext && parse_prefix(ptext, max, &prefix) < 0)
        return -1;
    if (v6_text && c.addr.family == 4) {
        /* ::ffff:a.b.c.d/p: the IPv4 range when p covers the mapped prefix. */
        if (prefix < 96) {
            memmove(c.addr.a + 12, c.addr.a, 4);
            memcpy(c.addr.a, v4_mapped, sizeof(v4_mapped));
            c.addr.family = 6;
        } else {
            prefix -= 96;
        }
    }
    c.prefix = prefix;
    struct rs_cidr net = c;
    mask_bits(net.addr.a, c.addr.family == 4 ? 4 : 16, prefix);
    if (memcmp(net.addr.a, c.addr.a, sizeof(c.addr.a)) != 0) {
        if (ret_network)
            *ret_network = net;
        return -2;
    }
    *ret = c;
    return 0;
}

int rs_cidr_parse(const char *s, struct rs_cidr *ret)
{
    return cidr_parse(s, ret, NULL) < 0 ? -RS_EVALIDATION : 0;
}

/* The 16-byte IPv6 form and the prefix in it. */
static void as_v6(const struct rs_ipaddr *ip, int prefix, unsigned char out[16], int *ret_prefix)
{
    if (ip->family == 4) {
        memcpy(out, v4_mapped, sizeof(v4_mapped));
        memcpy(out + 12, ip->a, 4);
        *ret_prefix = prefix + 96;
    } else {
        memcpy(out, ip->a, 16);
        *ret_prefix = prefix;
    }
}

bool rs_cidr_contains(const struct rs_cidr *c, const struct rs_ipaddr *ip)
{
    unsigned char net[16], addr[16];
    int prefix, unused;
    as_v6(&c->addr, c->prefix, net, &prefix);
    as_v6(ip, 0, addr, &unused);
    mask_bits(addr, 16, prefix);
    return memcmp(net, addr, 16) == 0;
}

void rs_ip_format(const struct rs_ipaddr *ip, char *out, size_t cap)
{
    if (!inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->a, out, (socklen_t)cap) && cap)
        out[0] = '\0';
}

int rs_cidr_list_check(json_t *arr, const char *field, struct rs_error *err)
{
    if (!json_is_array(arr))
        return rs_error_field(err, RS_EBADREQUEST, field, "type",
                              "%s must be an array of address ranges such as \"10.0.0.0/8\"",
                              field);
    size_t n = json_array_size(arr);
    if (n > RS_CIDR_LIST_MAX)
        return rs_error_field(err, RS_EVALIDATION, field, "max_items",
                              "%s may hold at most %d address ranges", field, RS_CIDR_LIST_MAX);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        char path[80];
        snprintf(path, sizeof(path), "%.60s[%zu]", field, i);
        if (!json_is_string(e)) {
            r = rs_error_field(err, RS_EBADREQUEST, path, "type",
                               "%s must be a string such as \"10.0.0.0/8\"", path);
            continue;
        }
        struct rs_cidr c, net;
        int pr = cidr_parse(json_string_value(e), &c, &net);
        if (pr == -2) {
            char a[INET6_ADDRSTRLEN];
            rs_ip_format(&net.addr, a, sizeof(a));
            r = rs_error_field(err, RS_EVALIDATION, path, "cidr",
                               "%s has bits set after the /%d prefix: write the network as "
                               "\"%s/%d\"",
                               path, net.prefix, a, net.prefix);
        } else if (pr < 0) {
            r = rs_error_field(err, RS_EVALIDATION, path, "cidr",
                               "%s must be an address or a range such as \"10.0.0.0/8\" or "
                               "\"2001:db8::/32\" (prefix 0 to 32 for IPv4, 0 to 128 for IPv6)",
                               path);
        }
    }
    if (r < 0 && err)
        return -err->code;
    return r;
}

bool rs_cidr_list_allows(json_t *arr, const char *ip)
{
    if (!arr || !json_is_array(arr) || json_array_size(arr) == 0)
        return true;
    struct rs_ipaddr a;
    if (!ip || rs_ip_parse(ip, &a) < 0)
        return false;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        struct rs_cidr c;
        if (json_is_string(e) && rs_cidr_parse(json_string_value(e), &c) == 0 &&
            rs_cidr_contains(&c, &a))
            return true;
    }
    return false;
}
