"""Address rules (docs/design/auth-contract.md): a user's own ranges
(PUT/GET /users/{id}/ip-ranges), ranges per role and per user type in
PATCH /settings/auth ip_rules (an API-type user's key refused from 127.0.0.1
when ip_rules.types.api excludes it), invalid CIDR refused with 422 naming
the path, and the login diagnosis naming the refusing rule (?ip=). Every
client here is 127.0.0.1."""

import json

from harness import (Failures, Session, auth_env, check_generic_401, check_problem, create_user,
                     event_reason, events, expect, expect_eq, expect_status, unique_tag)

USERS = "/api/v1/users"
SETTINGS = "/api/v1/settings/auth"


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def set_ranges(c, uid, ranges):
    r = c.put(upath(uid, "/ip-ranges"), {"ranges": ranges})
    expect_status(r, 200)
    return r


def ip_check(c, uid, ip=None):
    r = c.get(upath(uid, "/login-diagnosis") + ("?ip=" + ip if ip else ""))
    expect_status(r, 200)
    ch = [x for x in r.json.get("checks", []) if x.get("check") == "ip"]
    expect(ch, "no ip check: " + r.describe())
    return r.json, ch[0]


def test_user_ranges(ctx):
    env = auth_env(ctx)
    c = env.admin
    u, pw = env.user()
    f = Failures()
    r = c.get(upath(u["id"], "/ip-ranges"))
    f.check(r.status == 200 and r.json.get("ranges") == [], "ranges at first: " + r.describe())
    set_ranges(c, u["id"], ["10.0.0.0/8"])
    r = c.get(upath(u["id"], "/ip-ranges"))
    f.check(r.json.get("ranges") == ["10.0.0.0/8"], "ranges read back: " + r.describe())
    check_generic_401(Session(env.server).login(u["username"], pw), "login from outside range")
    reasons = [event_reason(e) for e in events(c, u["id"], "auth.login_failed")]
    f.check(reasons[:1] == ["ip_refused"], "audited reason %r" % reasons)
    d, ch = ip_check(c, u["id"], "127.0.0.1")
    f.check(ch.get("ok") is False and d.get("can_sign_in") is False and
            "10.0.0.0/8" in json.dumps(ch), "diagnosis ?ip=127.0.0.1: %r" % d)
    d, ch = ip_check(c, u["id"], "10.1.2.3")
    f.check(ch.get("ok") is True and d.get("can_sign_in") is True,
            "diagnosis ?ip=10.1.2.3: %r" % d)
    set_ranges(c, u["id"], ["127.0.0.0/8", "2001:db8::/32"])
    r = Session(env.server).login(u["username"], pw)
    f.check(r.status == 200, "login inside 127.0.0.0/8: " + r.describe())
    set_ranges(c, u["id"], [])
    f.check(Session(env.server).login(u["username"], pw).status == 200, "login with no ranges")
    # a standard user may not set ranges (users:write)
    std, spw = env.user()
    s = env.login(std["username"], spw)
    r = s.put(upath(u["id"], "/ip-ranges"), {"ranges": ["10.0.0.0/8"]})
    try:
        check_problem(r, 403)
    except AssertionError as e:
        f.items.append("standard user sets ranges: %s" % e)
    f.raise_if_any()


def test_invalid_ranges_are_refused_naming_the_path(ctx):
    env = auth_env(ctx)
    c = env.admin
    u, pw = env.user()
    set_ranges(c, u["id"], ["127.0.0.0/8"])
    f = Failures()
    for label, body, status, field, rule in (
            ("prefix too long", {"ranges": ["127.0.0.0/8", "10.0.0.0/33"]}, 422, "ranges[1]",
             "cidr"),
            ("not an address", {"ranges": ["intranet"]}, 422, "ranges[0]", "cidr"),
            ("not strings", {"ranges": [10]}, 400, None, None),
            ("not an array", {"ranges": "10.0.0.0/8"}, 400, None, None)):
        r = c.put(upath(u["id"], "/ip-ranges"), body)
        try:
            check_problem(r, status, field=field, rule=rule)
        except AssertionError as e:
            f.items.append("%s: %s" % (label, e))
        g = c.get(upath(u["id"], "/ip-ranges"))
        f.check(g.json.get("ranges") == ["127.0.0.0/8"], "%s changed the ranges: %s" % (
            label, g.describe()))
    before = c.get(SETTINGS).json
    r = c.patch(SETTINGS, {"ip_rules": {"types": {"api": ["10.0.0.0/8", "300.1.1.1"]}}})
    try:
        check_problem(r, 422, field="ip_rules.types.api[1]", rule="cidr")
    except AssertionError as e:
        f.items.append("settings: %s" % e)
    r = c.patch(SETTINGS, {"ip_rules": {"types": {"wizard": ["10.0.0.0/8"]}}})
    f.check(r.status in (400, 422) and "ip_rules.types.wizard" in r.text,
            "unknown user type in ip_rules: " + r.describe())
    f.check(c.get(SETTINGS).json == before, "a refused settings patch changed them")
    f.raise_if_any()


def test_type_rule_refuses_an_api_users_key(ctx):
    env = auth_env(ctx)
    c = env.admin
    name = "ipapi" + unique_tag()
    u = create_user(c, name, type="api")
    k = c.post("/api/v1/api-keys", {"name": "ip-" + unique_tag(), "username": name})
    expect_status(k, 201)
    key = env.server.client(token=k.json["token"])
    expect_status(key.get("/api/v1/auth/me"), 200)
    env.patch_auth({"ip_rules": {"types": {"api": ["10.0.0.0/8"]}}})
    try:
        r = key.get("/api/v1/auth/me")
        check_problem(r, 401)
        d, ch = ip_check(c, u["id"], "127.0.0.1")
        expect(ch.get("ok") is False and "api" in json.dumps(ch),
               "diagnosis does not name the type rule: %r" % ch)
        # the admin's key (type admin) is not affected
        expect_status(c.get("/api/v1/auth/me"), 200)
    finally:
        env.patch_auth({"ip_rules": {"types": {"api": None}}})
    expect_status(key.get("/api/v1/auth/me"), 200)


def test_role_rule_refuses_sign_in(ctx):
    env = auth_env(ctx)
    c = env.admin
    u, pw = env.user(role="clerk")
    other, opw = env.user(role="sales_rep")
    env.patch_auth({"ip_rules": {"roles": {"clerk": ["10.0.0.0/8"]}}})
    try:
        check_generic_401(Session(env.server).login(u["username"], pw), "clerk from 127.0.0.1")
        reasons = [event_reason(e) for e in events(c, u["id"], "auth.login_failed")]
        expect_eq(reasons[:1], ["ip_refused"], "audited reason")
        d, ch = ip_check(c, u["id"], "127.0.0.1")
        expect(ch.get("ok") is False and "clerk" in json.dumps(ch),
               "diagnosis does not name the role rule: %r" % ch)
        r = Session(env.server).login(other["username"], opw)
        expect(r.status == 200, "a user of another role: " + r.describe())
    finally:
        env.patch_auth({"ip_rules": {"roles": {"clerk": None}}})
    r = Session(env.server).login(u["username"], pw)
    expect(r.status == 200, "clerk after the rule is gone: " + r.describe())
