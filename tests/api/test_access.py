"""Effective access (docs/design/access-contract.md, "Effective access" and
"Cache"): primary, secondary and group roles combine with the highest level
winning and granted_by naming the sources; the user type bounds the result
(admin everything, guest capped at read even with a write role, api users'
keys work); users who are not active have nothing and their keys get 401;
GET /api/v1/access/check allows and denies with reasons (unknown resource 404,
bad level 400 naming `level`); the cache is invalidated by every change
(role permissions, role assignments, retirement, group roles, memberships,
types, statuses): the next check and the next request reflect it within 1 s;
POST /api/v1/access/cache/clear (settings: admin); and on PostgreSQL two
`roster serve` processes on one database: a change made through one shows in
the other within 1 s.

"Within 1 s" is measured from the answer to the change, polling every 20 ms.
Each cache test first asks the question once (so a cache is warm) and only
then makes the change."""

import json
import time

import harness
from harness import (Failures, check_problem, create_user, expect, expect_eq, expect_status,
                     unique_tag, urlq)

USERS = "/api/v1/users"
ROLES = "/api/v1/roles"
GROUPS = "/api/v1/groups"
CHECK = "/api/v1/access/check"
SETTINGS = "/api/v1/settings/users"
LEVELS = ("none", "read", "write", "admin")
BUILTIN_RESOURCES = ("users", "roles", "groups", "settings", "audit", "reports", "import",
                     "export", "api_keys")
WITHIN = 1.0


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def put(c, path, body, **kw):
    return c.request("PUT", path, json_body=body, **kw)


def delete(c, path, **kw):
    return c.request("DELETE", path, **kw)


def create_role(c, permissions, key=None):
    r = c.post(ROLES, {"key": key or "ac" + unique_tag(8), "name": "Access test role",
                       "permissions": permissions})
    expect_status(r, 201)
    return r.json


def create_group(c, roles, name=None):
    r = c.post(GROUPS, {"name": name or "Access " + unique_tag(8), "roles": roles})
    expect_status(r, 201)
    return r.json


def add_members(c, gid, *uids):
    r = c.post("%s/%d/members" % (GROUPS, gid), {"user_ids": list(uids)})
    expect_status(r, (200, 201, 204))
    return r


def register(c, key=None):
    key = key or "inv_" + unique_tag(6)
    expect_status(c.post("/api/v1/resources", {"key": key, "label": "Invoices",
                                               "module": "finance"}), 201)
    return key


def new_key(c, username):
    r = c.post("/api/v1/api-keys", {"name": "ac-" + unique_tag(), "username": username})
    expect_status(r, 201)
    return r.json["token"]


def level_rank(lv):
    return LEVELS.index(lv)


def permissions(c, uid):
    r = c.get(upath(uid, "/permissions"))
    expect_status(r, 200)
    b = r.json
    expect(isinstance(b, dict) and isinstance(b.get("permissions"), dict),
           "permissions shape: " + r.describe())
    for res, v in b["permissions"].items():
        expect(isinstance(v, dict) and v.get("level") in LEVELS and
               isinstance(v.get("granted_by", []), list),
               "permissions.%s = %r: %s" % (res, v, r.describe(300)))
    return r


def levels(r, resources):
    p = r.json["permissions"]
    return {res: (p.get(res) or {}).get("level", "none") for res in resources}


def src_key(e):
    """A granted_by entry reduced to what the contract names."""
    if not isinstance(e, dict):
        return ("?", json.dumps(e))
    k = e.get("kind")
    if k == "role":
        return ("role", e.get("role"), e.get("via"))
    if k == "group":
        return ("group", e.get("group"), e.get("role"))
    if k == "type":
        return ("type", e.get("type"))
    return ("?", json.dumps(e, sort_keys=True))


def granted_list(g):
    """granted_by as a list: the permissions answer has a list; the check's
    answer is shown as {...} in the contract (reading: one source or a list)."""
    if isinstance(g, list):
        return g
    if isinstance(g, dict):
        return [g]
    return []


def check(c, res, level, uid=None, username=None):
    q = {"user_id": uid} if uid is not None else {"username": username}
    q.update(resource=res, level=level)
    return c.get(CHECK + "?" + urlq(**q))


def allowed(c, uid, res, level):
    r = check(c, res, level, uid)
    expect_status(r, 200)
    a = (r.json or {}).get("allowed")
    expect(isinstance(a, bool), "allowed %r: %s" % (a, r.describe(300)))
    return a


def poll(fn, want, within=WITHIN):
    """Calls fn until it returns want or `within` seconds passed. Returns
    (reached, seconds, last value)."""
    t0 = time.monotonic()
    while True:
        v = fn()
        el = time.monotonic() - t0
        if v == want:
            return True, el, v
        if el > within:
            return False, el, v
        time.sleep(0.02)


def expect_soon(f, label, fn, want, within=WITHIN):
    ok, el, v = poll(fn, want, within)
    f.check(ok, "%s: still %r after %.2f s (want %r within %.1f s)" % (label, v, el, want,
                                                                       within))
    return ok


def db_exec(ctx, srv, sql):
    """Runs one statement on the server's database behind its back (an
    out-of-band change: what POST /access/cache/clear is there for)."""
    harness.db_exec(ctx, srv.db_url, sql)


def settings_probe(srv, token):
    """Whether the key may read the users settings (settings: read): 200, 403 or 401."""
    return lambda: srv.client(token=token).get(SETTINGS).status


# ---------------------------------------------------------------------------


def test_permissions_combine_and_highest_level_wins(ctx):
    c = ctx.client()
    inv = register(c)
    t = unique_tag(5)
    rp = create_role(c, {"users": "read", "reports": "write", inv: "read"}, "p_" + t)
    rs = create_role(c, {"users": "write", inv: "read", "export": "read"}, "s_" + t)
    rr = create_role(c, {"settings": "admin"}, "x_" + t)                 # retired below
    rg1 = create_role(c, {"reports": "admin", "audit": "read", inv: "read"}, "g1_" + t)
    rg2 = create_role(c, {"users": "write"}, "g2_" + t)
    rg3 = create_role(c, {"roles": "admin"}, "g3_" + t)                  # a group not joined
    g1 = create_group(c, [rg1["key"]], "Finance " + t)
    g2 = create_group(c, [rg2["key"], "standard_user"], "Sales " + t)
    create_group(c, [rg3["key"]], "Elsewhere " + t)
    u = create_user(c, "cb" + t, role=rp["key"])
    expect_status(put(c, upath(u["id"], "/roles"), {"primary": rp["key"],
                                                    "secondary": [rs["key"], rr["key"]]}), 200)
    expect_status(c.request("POST", "%s/%d/retire" % (ROLES, rr["id"])), 200)
    add_members(c, g1["id"], u["id"])
    add_members(c, g2["id"], u["id"])
    P = ("role", rp["key"], "primary")
    S = ("role", rs["key"], "secondary")
    G1 = ("group", g1["name"], rg1["key"])
    G2 = ("group", g2["name"], rg2["key"])
    G2s = ("group", g2["name"], "standard_user")
    want = {"users": ("write", {S, G2}, {P, G2s}),
            "reports": ("admin", {G1}, {P}),
            inv: ("read", {P, S, G1}, set()),
            "audit": ("read", {G1}, set()),
            "groups": ("read", {G2s}, set()),
            "export": ("read", {S}, set())}
    r = permissions(c, u["id"])
    b = r.json
    f = Failures()
    f.check(b.get("user_id") == u["id"] and b.get("type") == "standard" and
            b.get("status") == "active", "user_id/type/status: %s" % json.dumps(
                {k: b.get(k) for k in ("user_id", "type", "status")}))
    allres = BUILTIN_RESOURCES + (inv,)
    got = levels(r, allres)
    for res in allres:
        lv, winners, losers = want.get(res, ("none", set(), set()))
        f.check(got[res] == lv, "%s: level %r, want %r" % (res, got[res], lv))
        entry = b["permissions"].get(res) or {}
        gb = {src_key(e) for e in entry.get("granted_by") or []}
        # reading: granted_by names at least every source giving the winning
        # level, and nothing that gives no access to the resource at all
        f.check(winners <= gb, "%s: granted_by %s lacks %s" % (
            res, sorted(gb), sorted(winners - gb)))
        f.check(gb <= winners | losers, "%s: granted_by names sources giving nothing: %s" % (
            res, sorted(gb - winners - losers)))
    # the retired secondary role and the group not joined give nothing
    f.check(got["settings"] == "none" and got["roles"] == "none",
            "settings/roles %s/%s (from a retired role / a group not joined)" % (
                got["settings"], got["roles"]))
    # the check agrees
    for res, (lv, winners, _) in want.items():
        ck = check(c, res, lv, u["id"])
        if f.check(ck.status == 200, "check %s %s: %s" % (res, lv, ck.describe())):
            j = ck.json
            f.check(j.get("allowed") is True and j.get("level") == lv,
                    "check %s %s: %s" % (res, lv, ck.describe(400)))
            gb = {src_key(e) for e in granted_list(j.get("granted_by"))}
            f.check(gb and gb <= winners | want[res][2] and (gb & winners),
                    "check %s %s: granted_by %s, want among %s" % (res, lv, sorted(gb),
                                                                  sorted(winners)))
    f.raise_if_any()


def test_user_type_bounds_access(ctx):
    c = ctx.client()
    inv = register(c)
    t = unique_tag(5)
    writer = create_role(c, {"users": "write", "settings": "admin", inv: "write"}, "w_" + t)
    f = Failures()
    # admin type: admin on everything, registered resources too, whatever the role
    a = create_user(c, "ta" + t, type="admin", role="guest")
    r = permissions(c, a["id"])
    allres = BUILTIN_RESOURCES + (inv,)
    got = levels(r, allres)
    f.check(all(v == "admin" for v in got.values()), "admin type: %s" % json.dumps(got))
    for res in allres:
        gb = {src_key(e) for e in (r.json["permissions"].get(res) or {}).get("granted_by") or []}
        f.check(("type", "admin") in gb, "admin type, %s: granted_by %s lacks the type" % (
            res, sorted(gb)))
    f.check(allowed(c, a["id"], inv, "admin"), "admin type: check admin on %s" % inv)
    # guest type: capped at read, even with write/admin roles from anywhere
    g = create_user(c, "tg" + t, type="guest", role=writer["key"])
    grp = create_group(c, ["administrator"], "Guests " + t)
    add_members(c, grp["id"], g["id"])
    got = levels(permissions(c, g["id"]), allres)
    f.check(all(v == "read" for v in got.values()),
            "a guest with write/admin roles has %s, want read everywhere" % json.dumps(got))
    for res, lv in (("users", "write"), ("settings", "admin"), (inv, "write")):
        ck = check(c, res, lv, g["id"])
        f.check(ck.status == 200 and ck.json.get("allowed") is False and
                ck.json.get("level") == "read", "guest check %s %s: %s" % (res, lv,
                                                                          ck.describe(300)))
    gtok = new_key(c, g["username"])
    gc = ctx.client(token=gtok)
    r = gc.get(USERS + "?limit=1")
    f.check(r.status == 200, "the guest reads users: " + r.describe(300))
    before = c.get(USERS + "?limit=1").json["total"]
    r = gc.post(USERS, {"username": "gx" + t, "email": "gx%s@example.com" % t,
                        "first_name": "G", "last_name": "X"})
    try:
        b = check_problem(r, 403)
        expect_eq(b.get("detail"), "you need write access to users", "403 detail", r)
    except AssertionError as e:
        f.items.append("the guest creates a user: %s" % e)
    f.check(c.get(USERS + "?limit=1").json["total"] == before, "the guest's refused create "
            "changed the user total")
    # api type: works through its keys, bounded by its roles only
    api = create_user(c, "tp" + t, type="api", role="user_manager")
    got = levels(permissions(c, api["id"]), BUILTIN_RESOURCES)
    f.check(got["users"] == "write" and got["settings"] == "read" and got["roles"] == "read",
            "api user with user_manager: %s" % json.dumps(got))
    ac = ctx.client(token=new_key(c, api["username"]))
    r = ac.post(USERS, {"username": "ap" + t, "email": "ap%s@example.com" % t,
                        "first_name": "A", "last_name": "P"})
    f.check(r.status == 201, "the api user's key creates a user: " + r.describe(300))
    r = ac.patch(SETTINGS, {"options": {"show_employee_id": True}})
    f.check(r.status == 403, "the api user's key patches settings: " + r.describe(300))
    f.raise_if_any()


def test_users_who_are_not_active_have_nothing(ctx):
    c = ctx.client()
    t = unique_tag(5)
    f = Failures()
    for state, typ in (("inactive", "standard"), ("locked", "standard"), ("pending", "standard"),
                       ("inactive", "admin"), ("locked", "admin")):
        label = "%s %s user" % (state, typ)
        u = create_user(c, "na" + state[:3] + typ[:2] + t, type=typ, role="administrator",
                        status="pending" if state == "pending" else "active")
        tok = None
        if state != "pending":
            tok = new_key(c, u["username"])
            r = ctx.client(token=tok).get(upath(u["id"]))
            f.check(r.status == 200, "%s: the key before the change: %s" % (label,
                                                                              r.describe(300)))
            # warm: the check answers yes first
            f.check(allowed(c, u["id"], "users", "admin"), "%s: no admin on users while "
                    "active" % label)
            body = {"reason": "temporary_leave"} if state == "inactive" else {}
            expect_status(c.post(upath(u["id"], "/" + ("deactivate" if state == "inactive"
                                                         else "lock")), body), 200)
        else:
            kr = c.post("/api/v1/api-keys", {"name": "pend", "username": u["username"]})
            tok = kr.json.get("token") if kr.status == 201 else None
        r = permissions(c, u["id"])
        f.check(r.json.get("status") == state and r.json.get("type") == typ,
                "%s: status/type in the answer %r/%r" % (label, r.json.get("status"),
                                                         r.json.get("type")))
        got = levels(r, BUILTIN_RESOURCES)
        f.check(all(v == "none" for v in got.values()), "%s has %s, want none everywhere" % (
            label, json.dumps(got)))
        for res, lv in (("users", "read"), ("roles", "admin")):
            ck = check(c, res, lv, u["id"])
            f.check(ck.status == 200 and ck.json.get("allowed") is False and
                    ck.json.get("level") == "none" and isinstance(ck.json.get("reason"), str)
                    and ck.json["reason"].strip(), "%s: check %s %s: %s" % (
                        label, res, lv, ck.describe(300)))
        if tok:
            r = ctx.client(token=tok).get(upath(u["id"]))
            try:
                check_problem(r, 401, errors_expected=False)
            except AssertionError as e:
                f.items.append("%s: own key: %s" % (label, e))
    f.raise_if_any()


def test_access_check_allows_and_denies_with_reasons(ctx):
    c = ctx.client()
    t = unique_tag(5)
    u = create_user(c, "ck" + t, role="standard_user")
    f = Failures()
    for by in ({"uid": u["id"]}, {"username": u["username"]}):
        r = check(c, "users", "read", **by)
        if f.check(r.status == 200, "check by %s: %s" % (by, r.describe())):
            j = r.json
            f.check(j.get("allowed") is True and j.get("level") == "read",
                    "allowed read by %s: %s" % (by, r.describe(400)))
            gb = {src_key(e) for e in granted_list(j.get("granted_by"))}
            f.check(("role", "standard_user", "primary") in gb, "granted_by %s" % sorted(gb))
        r = check(c, "users", "write", **by)
        if f.check(r.status == 200, "check by %s: %s" % (by, r.describe())):
            j = r.json
            f.check(j.get("allowed") is False and j.get("level") == "read",
                    "denied write by %s: %s" % (by, r.describe(400)))
            reason = j.get("reason")
            # reading: the reason says the highest level held (the contract's
            # example: "highest level held is read (role standard_user)")
            f.check(isinstance(reason, str) and "highest level held" in reason and
                    "read" in reason, "reason %r" % (reason,))
    r = check(c, "settings", "read", u["id"])
    f.check(r.status == 200 and r.json.get("allowed") is False and r.json.get("level") == "none",
            "a resource not granted: " + r.describe(300))
    for lv, want in (("read", True), ("write", False), ("admin", False)):
        f.check(allowed(c, u["id"], "groups", lv) is want, "groups %s: want %s" % (lv, want))
    f.raise_if_any()


def test_access_check_errors(ctx):
    c = ctx.client()
    u = create_user(c, "ce" + unique_tag(), role="standard_user")
    f = Failures()
    r = check(c, "no_such_resource", "read", u["id"])
    try:
        check_problem(r, 404)
    except AssertionError as e:
        f.items.append("unknown resource: %s" % e)
    for label, q in (("bad level", {"level": "owner"}),
                     ("level in upper case", {"level": "READ"}),
                     ("empty level", {"level": ""}),
                     ("no level", {"level": None})):
        params = {"user_id": u["id"], "resource": "users"}
        params.update({k: v for k, v in q.items() if v is not None})
        r = c.get(CHECK + "?" + urlq(**params))
        try:
            check_problem(r, 400, field="level")
        except AssertionError as e:
            f.items.append("%s: %s" % (label, e))
    for label, q in (("unknown user id", {"user_id": 987654321}),
                     ("unknown username", {"username": "nobody" + unique_tag()})):
        q.update(resource="users", level="read")
        r = c.get(CHECK + "?" + urlq(**q))
        f.check(r.status == 404 and r.content_type() == "application/problem+json",
                "%s (reading: 404): %s" % (label, r.describe(300)))
    f.raise_if_any()


def test_cache_role_permission_changes_apply_within_1s(ctx):
    c = ctx.client()
    role = create_role(c, {"users": "read"})
    u = create_user(c, "cr" + unique_tag(), role=role["key"])
    probe = settings_probe(ctx.server, new_key(c, u["username"]))
    f = Failures()
    f.check(allowed(c, u["id"], "settings", "read") is False, "settings read before the change")
    f.check(probe() == 403, "the key reads settings before the change")
    rid = "%s/%d" % (ROLES, role["id"])
    expect_status(c.patch(rid, {"permissions": {"users": "read", "settings": "read"}}), 200)
    expect_soon(f, "check after granting settings read",
                lambda: allowed(c, u["id"], "settings", "read"), True)
    expect_soon(f, "the key after granting settings read", probe, 200)
    expect_status(c.patch(rid, {"permissions": {"users": "read"}}), 200)
    expect_soon(f, "check after taking settings read away",
                lambda: allowed(c, u["id"], "settings", "read"), False)
    expect_soon(f, "the key after taking settings read away", probe, 403)
    # retiring the role
    expect_status(c.patch(rid, {"permissions": {"settings": "read"}}), 200)
    expect_soon(f, "check after granting again", lambda: allowed(c, u["id"], "settings", "read"),
                True)
    expect_status(c.request("POST", rid + "/retire"), 200)
    expect_soon(f, "check after retiring the role",
                lambda: allowed(c, u["id"], "settings", "read"), False)
    expect_soon(f, "the key after retiring the role", probe, 403)
    f.raise_if_any()


def test_cache_role_assignment_changes_apply_within_1s(ctx):
    c = ctx.client()
    u = create_user(c, "ca" + unique_tag(), role="clerk")
    probe = settings_probe(ctx.server, new_key(c, u["username"]))
    f = Failures()
    f.check(probe() == 403, "the key reads settings with role clerk")
    f.check(allowed(c, u["id"], "settings", "read") is False, "clerk has settings read")
    expect_status(put(c, upath(u["id"], "/roles"), {"primary": "clerk",
                                                    "secondary": ["auditor"]}), 200)
    expect_soon(f, "after adding auditor as secondary",
                lambda: allowed(c, u["id"], "settings", "read"), True)
    expect_soon(f, "the key after adding auditor", probe, 200)
    expect_status(put(c, upath(u["id"], "/roles"), {"primary": "clerk", "secondary": []}), 200)
    expect_soon(f, "after removing the secondary role",
                lambda: allowed(c, u["id"], "settings", "read"), False)
    expect_soon(f, "the key after removing the secondary role", probe, 403)
    # the primary role through PATCH of the record
    expect_status(c.patch(upath(u["id"]), {"role": "auditor"}), 200)
    expect_soon(f, "after PATCH role auditor", lambda: allowed(c, u["id"], "settings", "read"),
                True)
    expect_status(c.patch(upath(u["id"]), {"role": "clerk"}), 200)
    expect_soon(f, "after PATCH role clerk", lambda: allowed(c, u["id"], "settings", "read"),
                False)
    expect_soon(f, "the key after PATCH role clerk", probe, 403)
    f.raise_if_any()


def test_cache_group_changes_apply_within_1s(ctx):
    c = ctx.client()
    u = create_user(c, "cg" + unique_tag(), role="clerk")
    probe = settings_probe(ctx.server, new_key(c, u["username"]))
    g = create_group(c, ["auditor"])
    gp = "%s/%d" % (GROUPS, g["id"])
    f = Failures()
    has = lambda: allowed(c, u["id"], "settings", "read")  # noqa: E731
    f.check(has() is False, "settings read before joining")
    add_members(c, g["id"], u["id"])
    expect_soon(f, "after joining the group", has, True)
    expect_soon(f, "the key after joining", probe, 200)
    expect_status(c.patch(gp, {"roles": []}), 200)
    expect_soon(f, "after the group's roles were emptied", has, False)
    expect_soon(f, "the key after the group's roles were emptied", probe, 403)
    expect_status(c.patch(gp, {"roles": ["auditor"]}), 200)
    expect_soon(f, "after the group got auditor again", has, True)
    expect_status(delete(c, "%s/members/%d" % (gp, u["id"])), (200, 204))
    expect_soon(f, "after leaving the group", has, False)
    expect_soon(f, "the key after leaving the group", probe, 403)
    add_members(c, g["id"], u["id"])
    expect_soon(f, "after joining again", has, True)
    expect_status(delete(c, gp), 204)
    expect_soon(f, "after the group was deleted", has, False)
    expect_soon(f, "the key after the group was deleted", probe, 403)
    f.raise_if_any()


def test_cache_type_and_status_changes_apply_within_1s(ctx):
    c = ctx.client()
    u = create_user(c, "ct" + unique_tag(), role="auditor")
    tok = new_key(c, u["username"])
    probe = settings_probe(ctx.server, tok)
    f = Failures()
    adm = lambda: allowed(c, u["id"], "settings", "admin")  # noqa: E731
    rd = lambda: allowed(c, u["id"], "settings", "read")  # noqa: E731
    f.check(adm() is False and rd() is True, "auditor: settings admin/read")
    expect_status(c.patch(upath(u["id"]), {"type": "admin"}), 200)
    expect_soon(f, "after type admin", adm, True)
    expect_status(c.patch(upath(u["id"]), {"type": "guest"}), 200)
    expect_soon(f, "after type guest", adm, False)
    expect_soon(f, "guest keeps read", rd, True)
    expect_status(c.patch(upath(u["id"]), {"type": "standard"}), 200)
    for off, on, body in (("lock", "unlock", {}),
                          ("deactivate", "reactivate", {"reason": "temporary_leave"})):
        f.check(rd() is True, "read before %s" % off)
        expect_status(c.post(upath(u["id"], "/" + off), body), 200)
        expect_soon(f, "after %s" % off, rd, False)
        f.check(probe() == 401, "the key right after %s" % off)
        expect_status(c.post(upath(u["id"], "/" + on), {}), 200)
        expect_soon(f, "after %s" % on, rd, True)
        expect_soon(f, "the key after %s" % on, probe, 200)
    f.raise_if_any()


def test_cache_clear(ctx):
    c = ctx.client()
    t = unique_tag(5)
    um = create_user(c, "cu" + t, role="user_manager")
    sw = create_user(c, "cs" + t, role=create_role(c, {"settings": "write"})["key"])
    sa = create_user(c, "cx" + t, role=create_role(c, {"settings": "admin"})["key"])
    f = Failures()
    before = {r: allowed(c, um["id"], r, "write") for r in BUILTIN_RESOURCES}
    for who in (um, sw):
        r = ctx.client(token=new_key(c, who["username"])).post("/api/v1/access/cache/clear")
        try:
            b = check_problem(r, 403)
            expect_eq(b.get("detail"), "you need admin access to settings", "403 detail", r)
        except AssertionError as e:
            f.items.append("cache clear by %s: %s" % (who["username"], e))
    for who, cl in (("admin", c), ("settings admin", ctx.client(token=new_key(
            c, sa["username"])))):
        r = cl.post("/api/v1/access/cache/clear")
        f.check(r.status in (200, 204), "cache clear by %s: %s" % (who, r.describe()))
    after = {r: allowed(c, um["id"], r, "write") for r in BUILTIN_RESOURCES}
    f.check(after == before, "answers changed across a clear: %s -> %s" % (before, after))
    f.raise_if_any()


def test_cache_clear_applies_out_of_band_changes_everywhere(ctx):
    """A role's permissions changed directly in the database (no access
    version bump) may be answered from the cache; POST /access/cache/clear
    "flushes it everywhere": afterwards every process answers from the
    database. On PostgreSQL with two processes, the clear is sent to one and
    observed on the other. (This test writes the roles table directly: the
    only way to make a change the server has not seen.)"""
    if ctx.backend == "postgres":
        a = ctx.new_server(name="clear_a")
        b = ctx.new_server(db_url=a.db_url, admin_token=a.admin_token, name="clear_b")
        servers = (a, b)
    else:
        a = ctx.server
        servers = (a,)
    ca = a.client()
    role = create_role(ca, {"users": "read"})
    u = create_user(ca, "co" + unique_tag(), role=role["key"])
    tok = new_key(ca, u["username"])
    f = Failures()
    for s_ in servers:
        f.check(allowed(s_.client(), u["id"], "settings", "read") is False,
                "%s: settings read before" % s_.name)
        f.check(settings_probe(s_, tok)() == 403, "%s: the key reads settings before" % s_.name)
    db_exec(ctx, a, "UPDATE roles SET permissions = '{\"users\":\"read\",\"settings\":"
                    "\"read\"}' WHERE key = '%s'" % role["key"])
    r = ca.post("/api/v1/access/cache/clear")
    expect_status(r, (200, 204))
    for s_ in servers:
        cl = s_.client()
        expect_soon(f, "%s: check after the clear" % s_.name,
                    lambda cl=cl: allowed(cl, u["id"], "settings", "read"), True)
        expect_soon(f, "%s: the key after the clear" % s_.name, settings_probe(s_, tok), 200)
    f.raise_if_any()


def test_two_processes_on_one_postgres_database(ctx):
    if ctx.backend != "postgres":
        ctx.skip("two processes on one database: PostgreSQL only")
    a = ctx.new_server(name="proc_a")
    b = ctx.new_server(db_url=a.db_url, admin_token=a.admin_token, name="proc_b")
    ca, cb = a.client(), b.client()
    role = create_role(ca, {"users": "read"})
    u = create_user(ca, "xp" + unique_tag(), role=role["key"])
    tok = new_key(ca, u["username"])
    f = Failures()
    has_b = lambda: allowed(cb, u["id"], "settings", "read")  # noqa: E731
    has_a = lambda: allowed(ca, u["id"], "settings", "read")  # noqa: E731
    pb, pa = settings_probe(b, tok), settings_probe(a, tok)
    # both processes warm
    f.check(has_a() is False and has_b() is False, "settings read before the change")
    f.check(pa() == 403 and pb() == 403, "the key reads settings before the change")
    rid = "%s/%d" % (ROLES, role["id"])
    expect_status(ca.patch(rid, {"permissions": {"users": "read", "settings": "read"}}), 200)
    expect_soon(f, "B's check after a role change on A", has_b, True)
    expect_soon(f, "the key on B after a role change on A", pb, 200)
    # the other way round: a role assignment changed on B
    expect_status(put(cb, upath(u["id"], "/roles"), {"primary": "clerk", "secondary": []}), 200)
    expect_soon(f, "A's check after an assignment change on B", has_a, False)
    expect_soon(f, "the key on A after an assignment change on B", pa, 403)
    # a group membership on A
    g = create_group(ca, ["auditor"])
    f.check(has_b() is False, "B before the membership")
    add_members(ca, g["id"], u["id"])
    expect_soon(f, "B's check after joining a group on A", has_b, True)
    expect_status(ca.patch("%s/%d" % (GROUPS, g["id"]), {"roles": []}), 200)
    expect_soon(f, "B's check after the group's roles were emptied on A", has_b, False)
    expect_status(ca.patch("%s/%d" % (GROUPS, g["id"]), {"roles": ["auditor"]}), 200)
    expect_soon(f, "B's check after the group got auditor again on A", has_b, True)
    expect_status(delete(ca, "%s/%d/members/%d" % (GROUPS, g["id"], u["id"])), (200, 204))
    expect_soon(f, "B's check after leaving the group on A", has_b, False)
    # a status change on A stops the key on B
    expect_status(put(ca, upath(u["id"], "/roles"), {"primary": "auditor", "secondary": []}),
                  200)
    expect_soon(f, "the key on B with auditor", pb, 200)
    expect_status(ca.post(upath(u["id"], "/lock"), {}), 200)
    expect_soon(f, "the key on B after a lock on A", pb, 401)
    expect_soon(f, "B's check after a lock on A", has_b, False)
    # a clear on one process leaves both answering correctly
    r = ca.post("/api/v1/access/cache/clear")
    f.check(r.status in (200, 204), "cache clear on A: " + r.describe())
    f.check(has_b() is False and has_a() is False, "answers after the clear")
    f.raise_if_any()


def test_status_reasons_are_shown_only_to_who_may_act_or_audit(ctx):
    """Why an account was deactivated or locked (status_reason, status_note:
    often an HR matter) is shown to those who may change users (users write),
    to auditors (audit read) and to the user themself; a caller with users
    read alone (a guest, a standard user) sees the status but not the reason,
    in the record and in lists."""
    c = ctx.client()
    t = unique_tag(5)
    gone = create_user(c, "sr" + t)
    expect_status(c.post("/api/v1/users/%d/deactivate" % gone["id"], {
        "reason": "security_concern", "note": "HR case " + t}), 200)
    viewers = {"guest": create_user(c, "srg" + t, type="guest", role="guest"),
               "standard": create_user(c, "srs" + t, role="standard_user"),
               "auditor": create_user(c, "sra" + t, role="auditor"),
               "user_manager": create_user(c, "srm" + t, role="user_manager")}
    f = Failures()
    for name, v in viewers.items():
        vc = ctx.client(token=new_key(c, v["username"]))
        sees = name in ("auditor", "user_manager")
        r = vc.get("/api/v1/users/%d" % gone["id"])
        if f.check(r.status == 200, "%s reads the record: %s" % (name, r.describe(300))):
            f.check(r.json.get("status") == "inactive", "%s sees status %r" % (
                name, r.json.get("status")))
            got = (r.json.get("status_reason"), r.json.get("status_note"))
            want = ("security_concern", "HR case " + t) if sees else (None, None)
            f.check(got == want, "%s reads reason/note %r, want %r" % (name, got, want))
        r = vc.get("/api/v1/users?status=inactive&q=sr%s&limit=50" % t)
        if f.check(r.status == 200, "%s lists: %s" % (name, r.describe(300))):
            row = [x for x in r.json.get("items", []) if x.get("id") == gone["id"]]
            f.check(len(row) == 1 and (row[0].get("status_note") is not None) == sees,
                    "%s lists the note: %s" % (name, json.dumps(row)[:300]))
    f.raise_if_any()
