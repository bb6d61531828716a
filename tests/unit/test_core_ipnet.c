/* test_core_ipnet.c: IP addresses and CIDR ranges (src/core/ipnet.h):
 * parsing, host bits, prefix ranges, IPv4-mapped IPv6, list checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "src/core/ipnet.h"

static json_t *J(const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(v);
    return v;
}

static void ip_parse_accepts_and_refuses(void **state)
{
    struct rs_ipaddr ip;
    assert_int_equal(rs_ip_parse("192.0.2.7", &ip), 0);
    assert_int_equal(ip.family, 4);
    assert_memory_equal(ip.a, "\xc0\x00\x02\x07", 4);
    assert_int_equal(rs_ip_parse("2001:db8::1", &ip), 0);
    assert_int_equal(ip.family, 6);
    assert_int_equal(ip.a[0], 0x20);
    assert_int_equal(ip.a[15], 1);
    /* IPv4-mapped IPv6 is IPv4 */
    assert_int_equal(rs_ip_parse("::ffff:192.0.2.7", &ip), 0);
    assert_int_equal(ip.family, 4);
    assert_memory_equal(ip.a, "\xc0\x00\x02\x07", 4);

    const char *bad[] = {"",         "1.2.3",      "1.2.3.4.5",    "256.1.1.1",
                         "01.2.3.4", "1.2.3.4/32", "fe80::1%eth0", "2001:db8:::1",
                         " 1.2.3.4", "1.2.3.4 ",   "localhost",    "::g"};
    for (size_t i = 0; i < RS_ARRAY_LEN(bad); i++) {
        ip.family = 99;
        if (rs_ip_parse(bad[i], &ip) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(ip.family, 99); /* untouched on failure */
    }
}

static void cidr_parse_prefixes_and_host_bits(void **state)
{
    struct rs_cidr c;
    assert_int_equal(rs_cidr_parse("10.0.0.0/8", &c), 0);
    assert_int_equal(c.addr.family, 4);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(rs_cidr_parse("192.168.1.5", &c), 0);
    assert_int_equal(c.prefix, 32);
    assert_int_equal(rs_cidr_parse("::1", &c), 0);
    assert_int_equal(c.addr.family, 6);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(rs_cidr_parse("2001:db8::/32", &c), 0);
    assert_int_equal(c.prefix, 32);
    /* range edges */
    assert_int_equal(rs_cidr_parse("0.0.0.0/0", &c), 0);
    assert_int_equal(c.prefix, 0);
    assert_int_equal(rs_cidr_parse("1.2.3.4/32", &c), 0);
    assert_int_equal(rs_cidr_parse("::/0", &c), 0);
    assert_int_equal(rs_cidr_parse("2001:db8::1/128", &c), 0);
    assert_int_equal(rs_cidr_parse("1.2.3.4/33", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("::1/129", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("1.2.3.0/-1", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("1.2.3.0/", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("1.2.3.0/024", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("1.2.3.0/24/1", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("1.2.3.0/ 24", &c), -RS_EVALIDATION);
    /* host bits set */
    assert_int_equal(rs_cidr_parse("10.0.0.1/8", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("10.128.0.0/8", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("10.128.0.0/9", &c), 0);
    assert_int_equal(rs_cidr_parse("2001:db8::1/32", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("1.2.3.4/0", &c), -RS_EVALIDATION);
    /* a mapped range with prefix >= 96 is the IPv4 range */
    assert_int_equal(rs_cidr_parse("::ffff:10.0.0.0/104", &c), 0);
    assert_int_equal(c.addr.family, 4);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(rs_cidr_parse("::ffff:10.0.0.1/104", &c), -RS_EVALIDATION);
    assert_int_equal(rs_cidr_parse("::ffff:0.0.0.0/96", &c), 0);
    assert_int_equal(c.addr.family, 4);
    assert_int_equal(c.prefix, 0);
    assert_int_equal(rs_cidr_parse("::ffff:0.0.0.0/95", &c), -RS_EVALIDATION); /* host bits */
    assert_int_equal(rs_cidr_parse("::/95", &c), 0);
    assert_int_equal(c.addr.family, 6);
}

static bool in(const char *cidr, const char *ip)
{
    struct rs_cidr c;
    struct rs_ipaddr a;
    assert_int_equal(rs_cidr_parse(cidr, &c), 0);
    assert_int_equal(rs_ip_parse(ip, &a), 0);
    return rs_cidr_contains(&c, &a);
}

static void cidr_contains(void **state)
{
    assert_true(in("10.0.0.0/8", "10.255.255.255"));
    assert_true(in("10.0.0.0/8", "10.0.0.0"));
    assert_false(in("10.0.0.0/8", "11.0.0.0"));
    assert_false(in("10.0.0.0/8", "9.255.255.255"));
    assert_true(in("192.168.1.5", "192.168.1.5"));
    assert_false(in("192.168.1.5", "192.168.1.4"));
    assert_true(in("192.168.0.0/23", "192.168.1.200"));
    assert_false(in("192.168.0.0/23", "192.168.2.0"));
    assert_true(in("0.0.0.0/0", "203.0.113.9"));
    assert_false(in("0.0.0.0/0", "2001:db8::1"));
    assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in("2001:db8::/32", "2001:db9::1"));
    assert_true(in("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(in("2001:db8::/33", "2001:db8:8000::1"));
    assert_true(in("::1", "::1"));
    assert_false(in("::1", "127.0.0.1"));
    /* IPv4-mapped addresses match IPv4 ranges, and mapped ranges IPv4 addresses */
    assert_true(in("10.0.0.0/8", "::ffff:10.1.2.3"));
    assert_false(in("10.0.0.0/8", "::ffff:11.1.2.3"));
    assert_true(in("::ffff:10.0.0.0/104", "10.9.9.9"));
    assert_true(in("::/0", "10.9.9.9"));
    assert_false(in("10.0.0.0/8", "::a01:203")); /* IPv4-compatible, not mapped */
}

static void cidr_list_check_names_entries(void **state)
{
    struct rs_error e;
    json_t *a = J("[\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.1\"]");
    rs_error_init(&e);
    assert_int_equal(rs_cidr_list_check(a, "ranges", &e), 0);
    json_decref(a);

    a = J("[\"10.0.0.0/8\", \"10.0.0.1/8\", \"nope\"]");
    rs_error_init(&e);
    assert_int_equal(rs_cidr_list_check(a, "ip_rules.types.api", &e), -RS_EVALIDATION);
    assert_int_equal(e.nfields, 2);
    assert_string_equal(e.fields[0].field, "ip_rules.types.api[1]");
    assert_string_equal(e.fields[0].rule, "cidr");
    assert_non_null(strstr(e.fields[0].message, "\"10.0.0.0/8\""));
    assert_string_equal(e.fields[1].field, "ip_rules.types.api[2]");
    assert_string_equal(e.fields[1].rule, "cidr");
    json_decref(a);

    a = J("[\"2001:db8::1/32\"]");
    rs_error_init(&e);
    assert_int_equal(rs_cidr_list_check(a, "r", &e), -RS_EVALIDATION);
    assert_non_null(strstr(e.fields[0].message, "\"2001:db8::/32\""));
    json_decref(a);

    a = J("[\"10.0.0.0/8\", 5]");
    rs_error_init(&e);
    assert_int_equal(rs_cidr_list_check(a, "r", &e), -RS_EBADREQUEST);
    assert_string_equal(e.fields[0].field, "r[1]");
    assert_string_equal(e.fields[0].rule, "type");
    json_decref(a);

    a = J("{\"a\": \"10.0.0.0/8\"}");
    rs_error_init(&e);
    assert_int_equal(rs_cidr_list_check(a, "r", &e), -RS_EBADREQUEST);
    assert_string_equal(e.fields[0].field, "r");
    assert_string_equal(e.fields[0].rule, "type");
    json_decref(a);

    a = json_array();
    for (int i = 0; i < RS_CIDR_LIST_MAX; i++) {
        char s[32];
        snprintf(s, sizeof(s), "10.0.%d.0/24", i);
        json_array_append_new(a, json_string(s));
    }
    rs_error_init(&e);
    assert_int_equal(rs_cidr_list_check(a, "r", &e), 0);
    json_array_append_new(a, json_string("10.1.0.0/24"));
    rs_error_init(&e);
    assert_int_equal(rs_cidr_list_check(a, "r", &e), -RS_EVALIDATION);
    assert_string_equal(e.fields[0].rule, "max_items");
    json_decref(a);
}

static void cidr_list_allows(void **state)
{
    assert_true(rs_cidr_list_allows(NULL, "10.0.0.1"));
    json_t *a = json_array();
    assert_true(rs_cidr_list_allows(a, "10.0.0.1"));
    json_decref(a);
    a = J("[\"10.0.0.0/8\", \"2001:db8::/32\"]");
    assert_true(rs_cidr_list_allows(a, "10.2.3.4"));
    assert_true(rs_cidr_list_allows(a, "::ffff:10.2.3.4"));
    assert_true(rs_cidr_list_allows(a, "2001:db8::5"));
    assert_false(rs_cidr_list_allows(a, "192.0.2.1"));
    assert_false(rs_cidr_list_allows(a, "not an ip"));
    assert_false(rs_cidr_list_allows(a, NULL));
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ip_parse_accepts_and_refuses),
        cmocka_unit_test(cidr_parse_prefixes_and_host_bits),
        cmocka_unit_test(cidr_contains),
        cmocka_unit_test(cidr_list_check_names_entries),
        cmocka_unit_test(cidr_list_allows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
