"""No escalation; last administrator (docs/design/access-contract.md, "No
escalation; last administrator").

- A caller may grant, in a role's permissions, a user's roles, a group's
  roles or a group's membership, only levels they hold themselves on each
  resource: 403 rule `escalation`, the problem naming the resource.
- The last active user holding `admin` on `roles` (through type admin or the
  administrator role) cannot be deactivated, locked, erased, demoted (type
  change) or have that role removed: 409 rule `last_admin`.

A user_manager holds only `roles: read`, and every role route that writes
declares `roles: admin` (`roster routes`), so a user_manager creating or
editing a role is refused by the route itself (403). The escalation rule for
role permissions is therefore exercised with a "role smith": a custom role
holding `roles: admin` but only write or read elsewhere.

Every refusal is checked for its status, problem body and for having changed
nothing (the users, their roles, the roles, the groups and their members,
the audit trail)."""

import http.client
import json
import re
import sqlite3
import threading

from harness import (Failures, admin_user, check_problem, create_user, expect, expect_eq,
                     expect_status, unique_tag, user_body, user_total)

USERS = "/api/v1/users"
ROLES = "/api/v1/roles"
GROUPS = "/api/v1/groups"
BUILTIN_RESOURCES = ("users", "roles", "groups", "settings", "audit", "reports", "import",
                     "export", "api_keys")
UM_LEVELS = {"users": "write", "groups": "write", "roles": "read", "import": "write",
             "export": "write", "reports": "read", "audit": "read", "api_keys": "read",
             "settings": "read"}
LEVELS = ("none", "read", "write", "admin")


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def gpath(gid, suffix=""):
    return "%s/%d%s" % (GROUPS, gid, suffix)


def put(c, path, body, **kw):
    return c.request("PUT", path, json_body=body, **kw)


def new_key(c, username):
    r = c.post("/api/v1/api-keys", {"name": "es-" + unique_tag(), "username": username})
    expect_status(r, 201)
    return r.json["token"]


def create_role(c, permissions, key=None):
    r = c.post(ROLES, {"key": key or "es" + unique_tag(8), "name": "Escalation test",
                       "permissions": permissions})
    expect_status(r, 201)
    return r.json


def create_group(c, roles, name=None):
    r = c.post(GROUPS, {"name": name or "Esc " + unique_tag(8), "roles": roles})
    expect_status(r, 201)
    return r.json


def callers(ctx):
    """The module's callers, made once: a user manager and a role smith."""
    if "callers" not in ctx.state:
        c = ctx.client()
        t = unique_tag(5)
        um = create_user(c, "um" + t, role="user_manager")
        smith_role = create_role(c, {"roles": "admin", "users": "write", "groups": "write",
                                     "settings": "read"}, "smith_" + t)
        sm = create_user(c, "sm" + t, role=smith_role["key"])
        ctx.state["callers"] = {
            "um": (um, ctx.client(token=new_key(c, um["username"]))),
            "smith": (sm, ctx.client(token=new_key(c, sm["username"])), smith_role)}
    return ctx.state["callers"]


# -- audit events, read from the server's database

def audit_last(ctx, srv=None):
    url = (srv or ctx.server).db_url
    if url.startswith("sqlite:"):
        con = sqlite3.connect("file:%s?mode=ro" % ctx.sqlite_path(url), uri=True, timeout=10)
        try:
            return con.execute("SELECT coalesce(max(id), 0) FROM audit_events").fetchone()[0]
        finally:
            con.close()
    return int(ctx.suite.pg().psql(url.rsplit("/", 1)[1],
                                   "SELECT coalesce(max(id), 0) FROM audit_events").strip())


def snapshot(ctx, c, uids=(), gids=(), srv=None):
    def snap():
        out = {"total": user_total(c), "audit": audit_last(ctx, srv)}
        r = c.get(ROLES)
        out["roles"] = (r.status, r.json)
        r = c.get(GROUPS)
        out["groups"] = (r.status, r.json)
        for u in uids:
            g = c.get(upath(u))
            ro = c.get(upath(u, "/roles"))
            out["user%d" % u] = (g.status, g.json, g.header("ETag"), ro.status, ro.json)
        for g in gids:
            m = c.get(gpath(g, "/members") + "?limit=500")
            out["members%d" % g] = (m.status, sorted(x["id"] for x in (m.json or {}).get(
                "items", [])))
        return out
    return snap


def names(text, res):
    return re.search(r"(?<![a-z0-9_.-])%s(?![a-z0-9_.-])" % re.escape(res), text) is not None


def escalation(f, label, snap, do, resources):
    """A refusal with 403 rule `escalation` naming one of `resources` (in the
    problem detail, an errors[] message or field); nothing changes."""
    before = snap()
    r = None
    try:
        r = do()
        b = check_problem(r, 403)
        errs = [e for e in b.get("errors") or [] if isinstance(e, dict)]
        esc = [e for e in errs if e.get("rule") == "escalation"]
        expect(esc, "want an errors[] entry with rule escalation: " + r.describe())
        text = " ".join([b.get("detail") or ""] + ["%s %s" % (e.get("field"), e.get("message"))
                                                   for e in esc])
        expect(any(names(text, res) for res in resources),
               "the problem names none of %s: %s" % (sorted(resources), r.describe()))
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    after = snap()
    if after != before:
        diff = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
        f.items.append("%s: the refused request changed state: %s" % (
            label, json.dumps(diff, ensure_ascii=False)[:800]))
    return r


def refused(f, label, snap, do, status, rule=None, detail=None):
    before = snap()
    r = None
    try:
        r = do()
        b = check_problem(r, status)
        if rule is not None:
            errs = [e for e in b.get("errors") or [] if isinstance(e, dict)]
            expect(any(e.get("rule") == rule for e in errs),
                   "want an errors[] entry with rule %r: %s" % (rule, r.describe()))
        if detail is not None:
            expect_eq(b.get("detail"), detail, "problem detail", r)
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    after = snap()
    if after != before:
        diff = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
        f.items.append("%s: the refused request changed state: %s" % (
            label, json.dumps(diff, ensure_ascii=False)[:800]))
    return r


def above(levels, granted):
    """Resources where granted exceeds what levels holds."""
    return {r for r, lv in granted.items()
            if LEVELS.index(lv) > LEVELS.index(levels.get(r, "none"))}


# ---------------------------------------------------------------------------


def test_user_manager_cannot_create_or_change_roles(ctx):
    c = ctx.client()
    um, uc = callers(ctx)["um"]
    victim = create_role(c, {"users": "read"})
    snap = snapshot(ctx, c)
    f = Failures()
    for label, do in (
            ("create a role with users admin", lambda: uc.post(ROLES, {
                "key": "uma" + unique_tag(6), "name": "X", "permissions": {"users": "admin"}})),
            ("create a role within their own levels", lambda: uc.post(ROLES, {
                "key": "umb" + unique_tag(6), "name": "X", "permissions": {"users": "read"}})),
            ("raise a role to users admin", lambda: uc.patch("%s/%d" % (ROLES, victim["id"]),
                                                             {"permissions": {"users": "admin"}})),
            ("retire a role", lambda: uc.request("POST", "%s/%d/retire" % (ROLES, victim["id"]))),
            ("register a resource", lambda: uc.post("/api/v1/resources", {
                "key": "umr" + unique_tag(5), "label": "R", "module": "m"}))):
        refused(f, "a user_manager may not " + label, snap, do, 403,
                detail="you need admin access to roles")
    f.raise_if_any()


def test_role_permissions_above_the_callers_levels_are_escalation(ctx):
    c = ctx.client()
    sm, sc, smith_role = callers(ctx)["smith"]
    mine = {"roles": "admin", "users": "write", "groups": "write", "settings": "read"}
    snap = snapshot(ctx, c)
    f = Failures()
    for label, perms in (("users admin", {"users": "admin"}),
                         ("settings write", {"users": "read", "settings": "write"}),
                         ("audit read (none held)", {"audit": "read"}),
                         ("api_keys admin", {"api_keys": "admin", "groups": "read"})):
        escalation(f, "create a role with " + label, snap,
                   lambda perms=perms: sc.post(ROLES, {"key": "e" + unique_tag(8), "name": "E",
                                                       "permissions": perms}),
                   above(mine, perms))
    # within the caller's levels: fine
    r = sc.post(ROLES, {"key": "ok" + unique_tag(8), "name": "Within",
                        "permissions": {"users": "write", "groups": "read", "roles": "admin",
                                        "settings": "read"}})
    f.check(r.status == 201, "create a role within the caller's levels: " + r.describe())
    if r.status == 201:
        rid = r.json["id"]
        snap2 = snapshot(ctx, c)
        escalation(f, "PATCH the role to users admin", snap2,
                   lambda: sc.patch("%s/%d" % (ROLES, rid), {"permissions": {"users": "admin"}}),
                   {"users"})
        escalation(f, "PATCH the role to reports read", snap2,
                   lambda: sc.patch("%s/%d" % (ROLES, rid), {"permissions": {
                       "users": "read", "reports": "read"}}), {"reports"})
        r = sc.patch("%s/%d" % (ROLES, rid), {"permissions": {"users": "read"}})
        f.check(r.status == 200, "lower the role: " + r.describe())
    f.raise_if_any()


def test_user_manager_cannot_give_roles_above_their_levels(ctx):
    c = ctx.client()
    um, uc = callers(ctx)["um"]
    t = unique_tag(5)
    tgt = create_user(c, "et" + t, role="standard_user")
    sw = create_role(c, {"settings": "write", "users": "read"}, "sw_" + t)
    ra = create_role(c, {"roles": "admin"}, "ra_" + t)
    snap = snapshot(ctx, c, uids=(tgt["id"],))
    f = Failures()
    admin_all = set(BUILTIN_RESOURCES)
    R = upath(tgt["id"], "/roles")
    for label, do, res in (
            ("PUT administrator as primary", lambda: put(uc, R, {
                "primary": "administrator", "secondary": []}), admin_all),
            ("PUT administrator as secondary", lambda: put(uc, R, {
                "primary": "standard_user", "secondary": ["administrator"]}), admin_all),
            ("PATCH the user's role to administrator", lambda: uc.patch(upath(tgt["id"]), {
                "role": "administrator"}), admin_all),
            ("create a user with the administrator role", lambda: uc.post(USERS, user_body(
                "ea" + unique_tag(), role="administrator")), admin_all),
            ("PUT a role with settings write", lambda: put(uc, R, {
                "primary": "standard_user", "secondary": [sw["key"]]}), {"settings"}),
            ("PUT a role with roles admin as primary", lambda: put(uc, R, {
                "primary": ra["key"], "secondary": []}), {"roles"}),
            ("PATCH the user's role to one with roles admin", lambda: uc.patch(
                upath(tgt["id"]), {"role": ra["key"]}), {"roles"})):
        escalation(f, "a user_manager may not " + label, snap, do, res)
    # roles whose every level the user manager holds are fine
    for primary, secondary in (("user_manager", []), ("standard_user", ["guest", "auditor"])):
        r = put(uc, R, {"primary": primary, "secondary": secondary})
        f.check(r.status == 200, "a user_manager gives %s + %s: %s" % (primary, secondary,
                                                                       r.describe(300)))
    r = uc.patch(upath(tgt["id"]), {"role": "guest"})
    f.check(r.status == 200, "a user_manager sets role guest: " + r.describe(300))
    f.raise_if_any()


def test_user_manager_cannot_fill_or_arm_a_powerful_group(ctx):
    c = ctx.client()
    um, uc = callers(ctx)["um"]
    t = unique_tag(5)
    tgt = create_user(c, "eg" + t, role="standard_user")
    sw = create_role(c, {"settings": "write"}, "gsw_" + t)
    gadm = create_group(c, ["administrator"], "Admins " + t)
    gsw = create_group(c, ["standard_user", sw["key"]], "Settings " + t)
    gstd = create_group(c, ["standard_user"], "Staff " + t)
    snap = snapshot(ctx, c, uids=(tgt["id"],), gids=(gadm["id"], gsw["id"], gstd["id"]))
    f = Failures()
    for label, do, res in (
            ("add a member to a group with the administrator role",
             lambda: uc.post(gpath(gadm["id"], "/members"), {"user_ids": [tgt["id"]]}),
             set(BUILTIN_RESOURCES)),
            ("add a member to a group granting settings write",
             lambda: uc.post(gpath(gsw["id"], "/members"), {"user_ids": [tgt["id"]]}),
             {"settings"}),
            ("add themselves to the administrators",
             lambda: uc.post(gpath(gadm["id"], "/members"), {"user_ids": [um["id"]]}),
             set(BUILTIN_RESOURCES)),
            ("create a group with the administrator role",
             lambda: uc.post(GROUPS, {"name": "Mine " + unique_tag(), "roles": ["administrator"]}),
             set(BUILTIN_RESOURCES)),
            ("give a group a role with settings write",
             lambda: uc.patch(gpath(gstd["id"]), {"roles": ["standard_user", sw["key"]]}),
             {"settings"})):
        escalation(f, "a user_manager may not " + label, snap, do, res)
    # within their levels
    r = uc.post(gpath(gstd["id"], "/members"), {"user_ids": [tgt["id"]]})
    f.check(r.status in (200, 201, 204), "add a member to a standard_user group: " +
            r.describe(300))
    r = uc.patch(gpath(gstd["id"]), {"roles": ["user_manager"]})
    f.check(r.status == 200, "give a group user_manager: " + r.describe(300))
    r = uc.post(GROUPS, {"name": "Helpers " + t, "roles": ["guest", "standard_user"]})
    f.check(r.status == 201, "create a group with guest/standard_user: " + r.describe(300))
    f.raise_if_any()


def test_user_manager_cannot_grant_the_admin_type(ctx):
    """The admin type "has admin on everything": making a user (or oneself)
    type admin grants levels the user manager does not hold. Reading: the
    no-escalation rule covers the type too (the contract lists role
    permissions, a user's roles and group roles/membership as the ways to
    grant; the admin type grants more than any of them), so 403 rule
    `escalation`, naming a resource."""
    c = ctx.client()
    # a user manager of its own: should one of these be let through, the
    # module's shared user manager stays what it was for the other tests
    um = create_user(c, "eu" + unique_tag(), role="user_manager")
    uc = ctx.client(token=new_key(c, um["username"]))
    tgt = create_user(c, "ey" + unique_tag(), role="standard_user")
    snap = snapshot(ctx, c, uids=(tgt["id"], um["id"]))
    f = Failures()
    res = set(BUILTIN_RESOURCES)
    for label, do in (
            ("create a type admin user", lambda: uc.post(USERS, user_body(
                "ez" + unique_tag(), type="admin"))),
            ("make another user type admin", lambda: uc.patch(upath(tgt["id"]), {
                "type": "admin"})),
            ("make themselves type admin", lambda: uc.patch(upath(um["id"]), {
                "type": "admin"}))):
        escalation(f, "a user_manager may not " + label, snap, do, res)
    f.raise_if_any()


def test_user_manager_cannot_lift_the_guest_cap_above_their_levels(ctx):
    """A guest is capped at read whatever their roles; changing the type to
    standard lifts the cap and so grants what the roles hold. Reading (as for
    the admin type): a user manager may lift it only when every level it
    grants is one they hold, else 403 rule `escalation` naming a resource."""
    c = ctx.client()
    um = create_user(c, "ek" + unique_tag(), role="user_manager")
    uc = ctx.client(token=new_key(c, um["username"]))
    f = Failures()
    for typ in ("standard", "api"):
        armed = create_user(c, "eh" + unique_tag(), type="guest", role="administrator")
        snap = snapshot(ctx, c, uids=(armed["id"],))
        escalation(f, "a user_manager makes a guest holding administrator type %s" % typ, snap,
                   lambda typ=typ, armed=armed: uc.patch(upath(armed["id"]), {"type": typ}),
                   set(BUILTIN_RESOURCES))
    plain = create_user(c, "ep" + unique_tag(), type="guest", role="standard_user")
    r = uc.patch(upath(plain["id"]), {"type": "standard"})
    f.check(r.status == 200, "a user_manager makes a standard_user guest standard: " +
            r.describe(300))
    f.raise_if_any()


def test_registered_resources_count_for_escalation(ctx):
    c = ctx.client()
    sm, sc, smith_role = callers(ctx)["smith"]
    um, uc = callers(ctx)["um"]
    inv = "inv_" + unique_tag(6)
    expect_status(c.post("/api/v1/resources", {"key": inv, "label": "Invoices",
                                               "module": "finance"}), 201)
    ir = create_role(c, {inv: "read"})
    tgt = create_user(c, "er" + unique_tag(), role="standard_user")
    g = create_group(c, [ir["key"]])
    snap = snapshot(ctx, c, uids=(tgt["id"],), gids=(g["id"],))
    f = Failures()
    escalation(f, "the role smith creates a role with read on %s" % inv, snap,
               lambda: sc.post(ROLES, {"key": "ei" + unique_tag(6), "name": "I",
                                       "permissions": {inv: "read"}}), {inv})
    escalation(f, "a user_manager gives a role with read on %s" % inv, snap,
               lambda: put(uc, upath(tgt["id"], "/roles"), {"primary": "standard_user",
                                                          "secondary": [ir["key"]]}), {inv})
    escalation(f, "a user_manager adds a member to a group with read on %s" % inv, snap,
               lambda: uc.post(gpath(g["id"], "/members"), {"user_ids": [tgt["id"]]}), {inv})
    f.raise_if_any()


def test_last_administrator_is_kept(ctx):
    srv = ctx.new_server()
    try:
        c = srv.client()
        admin = admin_user(c)
        expect_eq(admin["type"], "admin", "type of the first-run admin")
        t = unique_tag(5)
        f = Failures()
        ar = c.get(upath(admin["id"], "/roles"))
        expect_status(ar, 200)
        if ar.json.get("primary") == "administrator" or "administrator" in (
                ar.json.get("secondary") or []):
            # the first-run admin holds roles: admin through its type only here
            expect_status(put(c, upath(admin["id"], "/roles"), {"primary": "standard_user",
                                                                "secondary": []}), 200)
        snap = snapshot(ctx, c, uids=(admin["id"],), srv=srv)
        for label, do in (
                ("deactivate", lambda: c.post(upath(admin["id"], "/deactivate"), {
                    "reason": "other", "note": "test"})),
                ("lock", lambda: c.post(upath(admin["id"], "/lock"), {})),
                ("erase", lambda: c.post(upath(admin["id"], "/erase"), {"note": "DSAR-1"})),
                ("demote to standard", lambda: c.patch(upath(admin["id"]), {"type": "standard"})),
                ("demote to guest", lambda: c.patch(upath(admin["id"]), {"type": "guest"}))):
            refused(f, "%s the only admin" % label, snap, do, 409, "last_admin")
        # an inactive holder of the administrator role does not count
        idle = create_user(c, "ei" + t, role="administrator")
        expect_status(c.post(upath(idle["id"], "/deactivate"), {"reason": "temporary_leave"}),
                      200)
        refused(f, "demote the only active admin (another holder is inactive)", snap,
                lambda: c.patch(upath(admin["id"]), {"type": "standard"}), 409, "last_admin")
        # a second holder, through the administrator role (type standard)
        b = create_user(c, "eb" + t, role="administrator")
        bc = srv.client(token=new_key(c, b["username"]))
        r = c.patch(upath(admin["id"]), {"type": "standard"})
        if not f.check(r.status == 200, "demote the first admin while another active user "
                       "holds the administrator role (so is not the last): " + r.describe(300)):
            f.raise_if_any()    # the rest needs the role holder to be the last one
        # now b is the last one holding roles: admin
        snapb = snapshot(ctx, bc, uids=(b["id"], admin["id"]), srv=srv)
        for label, do in (
                ("PUT away the administrator role", lambda: put(bc, upath(b["id"], "/roles"), {
                    "primary": "standard_user", "secondary": []})),
                ("PATCH the role away", lambda: bc.patch(upath(b["id"]), {
                    "role": "standard_user"})),
                ("deactivate", lambda: bc.post(upath(b["id"], "/deactivate"), {
                    "reason": "left_company"})),
                ("lock", lambda: bc.post(upath(b["id"], "/lock"), {})),
                ("erase", lambda: bc.post(upath(b["id"], "/erase"), {"note": "DSAR-2"}))):
            refused(f, "%s of the last administrator-role holder" % label, snapb, do, 409,
                    "last_admin")
        # moving the role from primary to secondary keeps it: fine; then removing it is not
        r = put(bc, upath(b["id"], "/roles"), {"primary": "standard_user",
                                               "secondary": ["administrator"]})
        f.check(r.status == 200, "move administrator to secondary: " + r.describe(300))
        snapb = snapshot(ctx, bc, uids=(b["id"], admin["id"]), srv=srv)
        r = refused(f, "drop the secondary administrator role of the last holder", snapb,
                    lambda: put(bc, upath(b["id"], "/roles"), {"primary": "standard_user",
                                                               "secondary": []}), 409,
                    "last_admin")
        if r is not None and r.status < 300:
            f.raise_if_any()    # nobody holds roles: admin any more; the rest cannot run
        # the first admin back: then b may let the role go
        r = bc.patch(upath(admin["id"]), {"type": "admin"})
        f.check(r.status == 200, "restore the first admin's type: " + r.describe(300))
        r = put(bc, upath(b["id"], "/roles"), {"primary": "standard_user", "secondary": []})
        f.check(r.status == 200, "drop the role once another admin exists: " + r.describe(300))
        f.raise_if_any()
    except (OSError, http.client.HTTPException) as e:
        raise AssertionError("no answer (%r)%s" % (e, "" if srv.alive() else
                                                   "; the server died (exit %s)" %
                                                   srv.proc.poll()))
    finally:
        srv.stop()


def test_two_admins_demoting_each_other_at_once_leave_one(ctx):
    """The last-administrator rule holds under concurrent requests: two
    admin-type users demote each other at the same moment; one of them stays
    (the other request is refused as the last admin, 409, or finds its own
    access gone, 403)."""
    srv = ctx.new_server()
    try:
        c = srv.client()
        admin = admin_user(c)
        if (c.get(upath(admin["id"], "/roles")).json or {}).get("primary") == "administrator":
            expect_status(put(c, upath(admin["id"], "/roles"), {"primary": "standard_user",
                                                                "secondary": []}), 200)
        a2 = create_user(c, "ed" + unique_tag(), type="admin", role="standard_user")
        c2 = srv.client(token=new_key(c, a2["username"]))
        f = Failures()
        for i in range(5):
            barrier = threading.Barrier(2)
            out = [None, None]

            def go(j, client, uid):
                barrier.wait(5)
                try:
                    out[j] = client.patch(upath(uid), {"type": "standard"})
                except Exception as e:  # noqa: BLE001 - a dropped connection is a finding
                    out[j] = e
            ts = [threading.Thread(target=go, args=(0, c, a2["id"])),
                  threading.Thread(target=go, args=(1, c2, admin["id"]))]
            for th in ts:
                th.start()
            for th in ts:
                th.join(30)
            st = [getattr(x, "status", None) for x in out]
            if not f.check(sorted(st, key=str) in ([200, 409], [200, 403]),
                           "round %d: two admins demote each other at once: %s%s" % (
                               i, [x if isinstance(x, int) else repr(out[k])[:100]
                                   for k, x in enumerate(st)],
                               "" if srv.alive() else "; the server died (exit %s); stderr "
                               "tail: %s" % (srv.proc.poll(), srv.stderr_tail(300)))):
                break
            loser = out[st.index(409 if 409 in st else 403)]
            if loser.status == 409:
                errs = (loser.json or {}).get("errors") or []
                f.check(any(e.get("rule") == "last_admin" for e in errs),
                        "the refused demotion: " + loser.describe())
            survivor = c if st[0] == 200 else c2
            types = [survivor.get(upath(x)).json.get("type") for x in (admin["id"], a2["id"])]
            if not f.check(sorted(types) == ["admin", "standard"],
                           "round %d: the two are %s" % (i, types)):
                break
            back = a2 if st[0] == 200 else admin
            r = survivor.patch(upath(back["id"]), {"type": "admin"})
            if not f.check(r.status == 200, "restore after round %d: %s" % (i, r.describe())):
                break
        f.raise_if_any()
    finally:
        srv.stop()


def test_last_administrator_through_a_group_is_kept(ctx):
    """The administrator role held through a group counts (reading: "the
    administrator role" is held however it is assigned; a group's roles are
    the member's roles): while such a member is the last holder, leaving the
    group, the group losing the role, the group being deleted, or the member
    being deactivated, locked or erased is refused with 409 rule `last_admin`.
    A wrongly accepted request leaves nobody able to repair anything, so each
    case runs on a server of its own."""
    cases = (
        ("the last holder leaves the group",
         lambda bc, b, g: bc.request("DELETE", gpath(g["id"], "/members/%d" % b["id"]))),
        ("the group loses the administrator role",
         lambda bc, b, g: bc.patch(gpath(g["id"]), {"roles": ["standard_user"]})),
        ("the group is deleted", lambda bc, b, g: bc.request("DELETE", gpath(g["id"]))),
        ("the last holder is deactivated",
         lambda bc, b, g: bc.post(upath(b["id"], "/deactivate"), {"reason": "left_company"})),
        ("the last holder is locked", lambda bc, b, g: bc.post(upath(b["id"], "/lock"), {})),
        ("the last holder is erased",
         lambda bc, b, g: bc.post(upath(b["id"], "/erase"), {"note": "DSAR-3"})))
    f = Failures()
    for label, do in cases:
        srv = ctx.new_server()
        try:
            c = srv.client()
            admin = admin_user(c)
            if (c.get(upath(admin["id"], "/roles")).json or {}).get("primary") == \
                    "administrator":
                expect_status(put(c, upath(admin["id"], "/roles"), {
                    "primary": "standard_user", "secondary": []}), 200)
            t = unique_tag(5)
            b = create_user(c, "gb" + t, role="standard_user")
            g = create_group(c, ["administrator"], "Admins " + t)
            r = c.post(gpath(g["id"], "/members"), {"user_ids": [b["id"]]})
            expect(r.status in (200, 201, 204), "add the member: " + r.describe())
            bc = srv.client(token=new_key(c, b["username"]))
            r = c.patch(upath(admin["id"]), {"type": "standard"})
            if not f.check(r.status == 200, "demote the first admin while a group member holds "
                           "the administrator role: " + r.describe(300)):
                break
            snap = snapshot(ctx, bc, uids=(b["id"], admin["id"]), gids=(g["id"],), srv=srv)
            r = refused(f, label, snap, lambda: do(bc, b, g), 409, "last_admin")
            if r is not None and r.status == 409:
                r = bc.patch(upath(admin["id"]), {"type": "admin"})
                f.check(r.status == 200, "%s: restore the first admin: %s" % (label,
                                                                            r.describe(300)))
                r = do(bc, b, g)
                f.check(r.status < 300, "%s, once another admin exists: %s" % (
                    label, r.describe(300)))
        except (OSError, http.client.HTTPException) as e:
            f.items.append("%s: no answer (%r)%s" % (label, e, "" if srv.alive() else
                                                     "; the server died (exit %s)" %
                                                     srv.proc.poll()))
        finally:
            srv.stop()
    f.raise_if_any()


def test_user_manager_cannot_demote_or_strip_an_administrator(ctx):
    """Taking access away is bound like giving it. A user manager may not
    lower an administrator's access: not by type, primary role, secondary
    roles, removing them from a group that carries the administrator role,
    taking that role from the group, or deleting the group (403 rule
    `escalation`, nothing changes). Each would otherwise let them strip every
    administrator but one, and then lock or reset the demoted ones."""
    c = ctx.client()
    um, uc = callers(ctx)["um"]
    t = unique_tag(5)
    a_type = create_user(c, "dt" + t, type="admin", role="standard_user")
    a_role = create_user(c, "dr" + t, role="administrator")
    a_sec = create_user(c, "ds" + t, role="standard_user")
    expect_status(put(c, upath(a_sec["id"], "/roles"), {"primary": "standard_user",
                                                         "secondary": ["administrator"]}), 200)
    a_grp = create_user(c, "dg" + t, role="standard_user")
    g = create_group(c, ["administrator"], "Admins " + t)
    r = c.post(gpath(g["id"], "/members"), {"user_ids": [a_grp["id"]]})
    expect(r.status in (200, 201, 204), "add the member: " + r.describe())
    uids = (a_type["id"], a_role["id"], a_sec["id"], a_grp["id"])
    snap = snapshot(ctx, c, uids=uids, gids=(g["id"],))
    f = Failures()
    every = set(BUILTIN_RESOURCES)
    for label, do in (
            ("demote an admin-type user to standard",
             lambda: uc.patch(upath(a_type["id"]), {"type": "standard"})),
            ("demote an admin-type user to guest",
             lambda: uc.patch(upath(a_type["id"]), {"type": "guest"})),
            ("change the primary administrator role",
             lambda: uc.patch(upath(a_role["id"]), {"role": "standard_user"})),
            ("PUT away the primary administrator role",
             lambda: put(uc, upath(a_role["id"], "/roles"), {"primary": "standard_user",
                                                              "secondary": []})),
            ("PUT away the secondary administrator role",
             lambda: put(uc, upath(a_sec["id"], "/roles"), {"primary": "standard_user",
                                                             "secondary": []})),
            ("remove a member from the administrators group",
             lambda: uc.request("DELETE", gpath(g["id"], "/members/%d" % a_grp["id"]))),
            ("take the administrator role from the group",
             lambda: uc.patch(gpath(g["id"]), {"roles": []})),
            ("delete the administrators group",
             lambda: uc.request("DELETE", gpath(g["id"])))):
        escalation(f, "a user_manager may not " + label, snap, do, every)
    # what stays allowed: the same changes on someone they outrank, and a
    # roleless group's membership
    low = create_user(c, "dl" + t, role="standard_user")
    r = uc.patch(upath(low["id"]), {"role": "guest"})
    f.check(r.status == 200, "a user_manager changes a standard user's role: " +
            r.describe(300))
    plain = create_group(c, [], "Mailing " + t)
    r = c.post(gpath(plain["id"], "/members"), {"user_ids": [a_type["id"]]})
    expect(r.status in (200, 201, 204), "add an admin to a roleless group: " + r.describe())
    r = uc.request("DELETE", gpath(plain["id"], "/members/%d" % a_type["id"]))
    f.check(r.status in (200, 204), "a user_manager removes an admin from a roleless group: " +
            r.describe(300))
    f.raise_if_any()


def test_a_guest_holding_the_administrator_role_is_not_an_administrator(ctx):
    """A guest-type user is capped at read, so the administrator role does
    not make them one: demoting the only real administrator is still refused
    (409 last_admin) while only a guest holds the role."""
    srv = ctx.new_server()
    try:
        c = srv.client()
        admin = admin_user(c)
        if (c.get(upath(admin["id"], "/roles")).json or {}).get("primary") == "administrator":
            expect_status(put(c, upath(admin["id"], "/roles"), {"primary": "standard_user",
                                                                "secondary": []}), 200)
        create_user(c, "gg" + unique_tag(5), type="guest", role="administrator")
        f = Failures()
        snap = snapshot(ctx, c, uids=(admin["id"],), srv=srv)
        refused(f, "demote the only admin while a guest holds the administrator role", snap,
                lambda: c.patch(upath(admin["id"]), {"type": "standard"}), 409, "last_admin")
        f.raise_if_any()
    finally:
        srv.stop()
