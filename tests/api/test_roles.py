"""Roles and resources (docs/design/access-contract.md, "Model"): the five
built-in roles with the contract's permissions, immutable (409 rule
`built_in`); custom roles created, read, edited and retired, with their
validation (key format 422, key unique 409, unknown resource 422
`permissions.<r>` rule `unknown`, bad level 422 rule `enum`); the resource
catalogue and the registration of a module's resource; a user's primary role
must name an active role (422 field `role` rule `exists`); GET/PUT
/api/v1/users/{id}/roles (audited `user.roles`); the audit events of role
changes.

Every refused request is checked for its status, problem body and for having
changed nothing (the roles, the resources, the users involved and the audit
trail). Role and resource changes have no audit API, so their events are read
from the server's database (audit_events), as test_settings.py does."""

import json
import sqlite3

from harness import (Failures, ISO_MS, check_problem, create_user, expect, expect_eq,
                     expect_status, history, unique_tag, user_body, user_total)

USERS = "/api/v1/users"
ROLES = "/api/v1/roles"
RESOURCES = "/api/v1/resources"
LEVELS = ("none", "read", "write", "admin")
BUILTIN_RESOURCES = ("users", "roles", "groups", "settings", "audit", "reports", "import",
                     "export", "api_keys")
BUILTIN_ROLES = {
    "administrator": {r: "admin" for r in BUILTIN_RESOURCES},
    "user_manager": {"users": "write", "groups": "write", "roles": "read", "import": "write",
                     "export": "write", "reports": "read", "audit": "read", "api_keys": "read",
                     "settings": "read"},
    "auditor": {r: "read" for r in BUILTIN_RESOURCES},
    "standard_user": {"users": "read", "groups": "read"},
    "guest": {"users": "read"},
}
ROLE_FIELDS = ("id", "key", "name", "description", "permissions", "built_in", "active",
               "created_at", "updated_at", "version")


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def rpath(rid, suffix=""):
    return "%s/%d%s" % (ROLES, rid, suffix)


def put(c, path, body, **kw):
    return c.request("PUT", path, json_body=body, **kw)


def retire(c, rid, **kw):
    return c.request("POST", rpath(rid, "/retire"), **kw)


def list_roles(c):
    r = c.get(ROLES)
    expect_status(r, 200)
    expect(isinstance(r.json, dict) and isinstance(r.json.get("items"), list),
           "roles list shape: " + r.describe())
    return r.json["items"]


def role_by_key(c, key):
    for x in list_roles(c):
        if x.get("key") == key:
            return x
    raise AssertionError("no role %r in GET %s" % (key, ROLES))


def catalogue(c):
    r = c.get(RESOURCES)
    expect_status(r, 200)
    expect(isinstance(r.json, dict) and isinstance(r.json.get("items"), list),
           "resources list shape: " + r.describe())
    return r.json["items"]


def expand(perms, resources):
    """A role's permissions as one level per resource ("resources not named are
    none"). Reading: a "*" key, if the server writes one, stands for every
    resource it does not name."""
    star = perms.get("*", "none")
    return {r: perms.get(r, star) for r in resources}


def create_role(c, key=None, permissions=None, **kw):
    body = {"key": key or "r" + unique_tag(8), "name": kw.pop("name", "Role " + unique_tag(4)),
            "permissions": permissions or {}}
    body.update(kw)
    r = c.post(ROLES, body)
    expect_status(r, 201)
    return r.json


def register(c, key=None, label="Invoices", module="finance"):
    r = c.post(RESOURCES, {"key": key or "inv_" + unique_tag(6), "label": label,
                           "module": module})
    expect_status(r, 201)
    return r.json


def new_key(c, username):
    r = c.post("/api/v1/api-keys", {"name": "rl-" + unique_tag(), "username": username})
    expect_status(r, 201)
    return r.json["token"]


def effective(c, uid):
    """{resource: level} from GET /users/{id}/permissions (absent = none)."""
    r = c.get(upath(uid, "/permissions"))
    expect_status(r, 200)
    p = (r.json or {}).get("permissions")
    expect(isinstance(p, dict), "permissions shape: " + r.describe())
    out = {}
    for res, v in p.items():
        expect(isinstance(v, dict) and v.get("level") in LEVELS,
               "permissions.%s = %r: %s" % (res, v, r.describe(300)))
        out[res] = v["level"]
    return out


def level_of(eff, res):
    return eff.get(res, "none")


# -- audit events, read from the server's database

def _rows_sqlite(ctx, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % ctx.sqlite_path(ctx.server.db_url), uri=True,
                          timeout=10)
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, args)]
    finally:
        con.close()


def audit_since(ctx, after_id):
    """Audit events with id > after_id, oldest first."""
    cols = "id, action, target_type, target_id, actor_name, request_id, before_json, after_json"
    url = ctx.server.db_url
    if url.startswith("sqlite:"):
        return _rows_sqlite(ctx, "SELECT %s FROM audit_events WHERE id > ? ORDER BY id" % cols,
                            (after_id,))
    out = ctx.suite.pg().psql(url.rsplit("/", 1)[1], "SELECT row_to_json(a) FROM (SELECT %s FROM "
                              "audit_events WHERE id > %d ORDER BY id) a" % (cols, after_id))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def audit_last(ctx):
    url = ctx.server.db_url
    if url.startswith("sqlite:"):
        return _rows_sqlite(ctx, "SELECT coalesce(max(id), 0) AS n FROM audit_events")[0]["n"]
    return int(ctx.suite.pg().psql(url.rsplit("/", 1)[1],
                                   "SELECT coalesce(max(id), 0) FROM audit_events").strip())


def blob(ev):
    return json.dumps(ev, ensure_ascii=False, default=str)


def one_event(f, ctx, since, prefix, target_id, label, request_id=None):
    """Exactly one new audit event; its action starts with prefix and it names
    the target. The contract names no action for role changes (reading:
    `role.<something>`)."""
    evs = audit_since(ctx, since)
    if not f.check(len(evs) == 1, "%s: %d new audit events, want 1: %s" % (
            label, len(evs), blob(evs)[:600])):
        return None
    ev = evs[0]
    f.check(str(ev.get("action") or "").startswith(prefix) and
            (target_id is None or ev.get("target_id") == target_id),
            "%s: audit event %s, want action %s* on target %s" % (label, blob(ev)[:400], prefix,
                                                                 target_id))
    if request_id is not None:
        f.check(ev.get("request_id") == request_id, "%s: event request_id %r, want %r" % (
            label, ev.get("request_id"), request_id))
    return ev


def roles_snap(ctx, *uids):
    c = ctx.client()

    def snap():
        out = {"roles": list_roles(c), "resources": catalogue(c), "audit": audit_last(ctx),
               "total": user_total(c)}
        for u in uids:
            g = c.get(upath(u))
            ro = c.get(upath(u, "/roles"))
            out["user%d" % u] = (g.status, g.json, g.header("ETag"), ro.status, ro.json)
        return out
    return snap


def case(f, label, snap, do, status, field=None, rule=None, field_prefix=False):
    """A request that must be refused and change nothing. status may be a tuple
    of acceptable statuses. field None with a rule: the rule on any errors[]
    entry (the contract names no field). field_prefix: the field may also be an
    element of it (`secondary[0]`, `secondary.0`)."""
    before = snap()
    r = None
    try:
        r = do()
        statuses = status if isinstance(status, tuple) else (status,)
        b = check_problem(r, r.status if r.status in statuses else statuses[0])
        errs = [e for e in b.get("errors") or [] if isinstance(e, dict)]
        rules = rule if isinstance(rule, (tuple, list)) else (rule,)
        if field is not None:
            hit = [e for e in errs if e.get("field") == field or (
                field_prefix and str(e.get("field", "")).startswith((field + "[", field + ".")))]
            expect(hit and any(rule is None or e.get("rule") in rules for e in hit),
                   "want errors[] field=%r rule=%r: %s" % (field, rule, r.describe()))
        elif rule is not None:
            expect(any(e.get("rule") in rules for e in errs),
                   "want an errors[] entry with rule %r: %s" % (rule, r.describe()))
        expect(all(isinstance(e.get("message"), str) and e["message"] for e in errs),
               "errors[] entry without a message: " + r.describe())
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    after = snap()
    if after != before:
        diff = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
        f.items.append("%s: the refused request changed state: %s" % (
            label, json.dumps(diff, ensure_ascii=False)[:800]))
    return r


def check_role_shape(f, role, label):
    if not f.check(isinstance(role, dict), "%s: not an object: %r" % (label, role)):
        return
    missing = [k for k in ROLE_FIELDS if k not in role]
    f.check(not missing, "%s: fields %s missing: %s" % (label, missing, blob(role)[:400]))
    f.check(isinstance(role.get("id"), int) and isinstance(role.get("version"), int)
            and role.get("version", 0) >= 1, "%s: id/version %r/%r" % (
                label, role.get("id"), role.get("version")))
    for k in ("created_at", "updated_at"):
        f.check(isinstance(role.get(k), str) and bool(ISO_MS.match(role[k])),
                "%s: %s %r" % (label, k, role.get(k)))
    f.check(isinstance(role.get("permissions"), dict), "%s: permissions %r" % (
        label, role.get("permissions")))


# ---------------------------------------------------------------------------


def test_builtin_roles_have_the_contract_permissions(ctx):
    c = ctx.client()
    roles = {x.get("key"): x for x in list_roles(c)}
    f = Failures()
    for key, want in BUILTIN_ROLES.items():
        role = roles.get(key)
        if not f.check(role is not None, "built-in role %s is not listed" % key):
            continue
        check_role_shape(f, role, key)
        f.check(role.get("built_in") is True and role.get("active") is True,
                "%s: built_in/active %r/%r" % (key, role.get("built_in"), role.get("active")))
        f.check(isinstance(role.get("name"), str) and role["name"].strip() != "",
                "%s: name %r" % (key, role.get("name")))
        perms = role.get("permissions") or {}
        f.check(all(v in LEVELS for v in perms.values()), "%s: levels %r" % (key, perms))
        got = expand(perms, BUILTIN_RESOURCES)
        wantx = {r: want.get(r, "none") for r in BUILTIN_RESOURCES}
        f.check(got == wantx, "%s: permissions %s, want %s" % (key, json.dumps(perms),
                                                               json.dumps(want)))
        g = c.get(rpath(role.get("id", 0)))
        f.check(g.status == 200 and g.json == role, "GET %s/%s differs from the list: %s" % (
            ROLES, role.get("id"), g.describe(300)))
    # what a standard-type user holding only that role gets, resource by resource
    for key, want in BUILTIN_ROLES.items():
        if key not in roles:
            continue
        u = create_user(c, "bi" + unique_tag(), role=key)
        eff = effective(c, u["id"])
        got = {r: level_of(eff, r) for r in BUILTIN_RESOURCES}
        f.check(got == {r: want.get(r, "none") for r in BUILTIN_RESOURCES},
                "a standard user with role %s has %s, want %s" % (key, json.dumps(got),
                                                                  json.dumps(want)))
    f.raise_if_any()


def test_registered_resources_reach_only_the_administrator_role(ctx):
    """administrator: "every resource admin (including registered ones)";
    auditor: "every built-in resource read" (reading: a module's resource is
    not built in, so the auditor gets none on it); the others do not name it."""
    c = ctx.client()
    res = register(c, "mod_" + unique_tag(6), "Things", "things")["key"]
    f = Failures()
    for key in BUILTIN_ROLES:
        u = create_user(c, "rr" + unique_tag(), role=key)
        eff = effective(c, u["id"])
        want = "admin" if key == "administrator" else "none"
        f.check(level_of(eff, res) == want, "role %s: level on the registered resource %s is "
                "%r, want %r" % (key, res, level_of(eff, res), want))
        r = c.get("/api/v1/access/check?user_id=%d&resource=%s&level=read" % (u["id"], res))
        f.check(r.status == 200 and (r.json or {}).get("allowed") is (want != "none"),
                "role %s: check read on %s: %s" % (key, res, r.describe(300)))
    f.raise_if_any()


def test_builtin_roles_cannot_be_changed_or_retired(ctx):
    c = ctx.client()
    roles = {x.get("key"): x for x in list_roles(c)}
    u = create_user(c, "bc" + unique_tag(), role="user_manager")
    snap = roles_snap(ctx, u["id"])
    f = Failures()
    for key in BUILTIN_ROLES:
        role = roles.get(key)
        if not f.check(role is not None, "no built-in role %s" % key):
            continue
        rid = role["id"]
        for label, body in (("name", {"name": "Renamed"}),
                            ("description", {"description": "mine now"}),
                            ("permissions", {"permissions": {"users": "none"}}),
                            ("the same permissions", {"permissions": role.get("permissions")}),
                            ("active false", {"active": False})):
            case(f, "PATCH %s %s" % (key, label), snap,
                 lambda rid=rid, body=body: c.patch(rpath(rid), body), 409, None, "built_in")
        case(f, "retire %s" % key, snap, lambda rid=rid: retire(c, rid), 409, None, "built_in")
    f.raise_if_any()


def test_create_read_and_edit_a_custom_role(ctx):
    c = ctx.client()
    key = "acct." + unique_tag(5) + "-x_1"
    f = Failures()
    since = audit_last(ctx)
    body = {"key": key, "name": "Accounts clerk", "description": "Reads users, exports",
            "permissions": {"users": "read", "export": "write"}}
    r = c.post(ROLES, body)
    expect_status(r, 201)
    role = r.json
    check_role_shape(f, role, "created role")
    for k, v in body.items():
        if k == "permissions":
            f.check(expand(role.get("permissions") or {}, BUILTIN_RESOURCES) ==
                    expand(v, BUILTIN_RESOURCES), "created permissions %r" % (
                        role.get("permissions"),))
        else:
            f.check(role.get(k) == v, "created %s = %r, want %r" % (k, role.get(k), v))
    f.check(role.get("built_in") is False and role.get("active") is True and
            role.get("version") == 1, "built_in/active/version %r/%r/%r" % (
                role.get("built_in"), role.get("active"), role.get("version")))
    one_event(f, ctx, since, "role.", role["id"], "role create", r.header("X-Request-Id"))
    g = c.get(rpath(role["id"]))
    f.check(g.status == 200 and g.json == role, "GET the new role: " + g.describe(400))
    listed = [x for x in list_roles(c) if x.get("id") == role["id"]]
    f.check(listed == [role], "listed as %s" % blob(listed)[:400])
    # PATCH merges: permissions replaced, a level set to none drops out
    since = audit_last(ctx)
    r = c.patch(rpath(role["id"]), {"name": "Accounts lead", "permissions": {
        "users": "write", "export": "none", "reports": "read"}})
    if f.check(r.status == 200, "PATCH the role: " + r.describe()):
        p = r.json
        f.check(p.get("name") == "Accounts lead" and p.get("key") == key and
                p.get("description") == body["description"],
                "after PATCH name/key/description %r/%r/%r" % (p.get("name"), p.get("key"),
                                                               p.get("description")))
        got = expand(p.get("permissions") or {}, BUILTIN_RESOURCES)
        want = expand({"users": "write", "reports": "read"}, BUILTIN_RESOURCES)
        f.check(got == want, "permissions after PATCH %r, want %r" % (p.get("permissions"),
                                                                      {"users": "write",
                                                                       "reports": "read"}))
        f.check(p.get("version") == 2 and p.get("updated_at", "") >= role["updated_at"] and
                p.get("created_at") == role["created_at"],
                "version/updated_at/created_at after PATCH: %s" % blob(p)[:400])
        one_event(f, ctx, since, "role.", role["id"], "role update", r.header("X-Request-Id"))
        g = c.get(rpath(role["id"]))
        f.check(g.json == p, "GET after PATCH differs: " + g.describe(400))
        # the change is what a holder of the role gets
        u = create_user(c, "cr" + unique_tag(), role=key)
        eff = effective(c, u["id"])
        f.check({r2: level_of(eff, r2) for r2 in BUILTIN_RESOURCES} == want,
                "a holder of %s has %s" % (key, json.dumps(eff)))
    # unknown role id
    for label, r in (("GET", c.get(rpath(987654321))),
                     ("PATCH", c.patch(rpath(987654321), {"name": "x"})),
                     ("retire", retire(c, 987654321))):
        f.check(r.status == 404 and r.content_type() == "application/problem+json",
                "%s an unknown role: %s" % (label, r.describe()))
    f.raise_if_any()


def test_patch_role_honours_if_match(ctx):
    c = ctx.client()
    role = create_role(c, "im_" + unique_tag(5), {"users": "read"})
    expect_status(c.patch(rpath(role["id"]), {"name": "Version two"}), 200)
    snap = roles_snap(ctx)
    f = Failures()
    for label, tag in (("stale", '"1"'), ("future", '"9"'), ("garbage", "v2")):
        case(f, "PATCH with a %s If-Match" % label, snap,
             lambda tag=tag: c.patch(rpath(role["id"]), {"permissions": {"users": "write"}},
                                     headers={"If-Match": tag}), (412, 400))
    r = c.patch(rpath(role["id"]), {"permissions": {"users": "write"}},
                headers={"If-Match": '"2"'})
    f.check(r.status == 200 and r.json.get("version") == 3,
            "PATCH with the current If-Match: " + r.describe())
    r = c.request("POST", rpath(role["id"], "/retire"), headers={"If-Match": '"1"'})
    f.check(r.status == 412 and c.get(rpath(role["id"])).json.get("active") is True,
            "retire with a stale If-Match: " + r.describe())
    f.raise_if_any()


def test_role_validation(ctx):
    c = ctx.client()
    existing = create_role(c, "taken_" + unique_tag(5))
    snap = roles_snap(ctx)
    f = Failures()

    def body(**kw):
        b = {"key": "v" + unique_tag(8), "name": "V", "permissions": {"users": "read"}}
        b.update(kw)
        return {k: v for k, v in b.items() if v is not ...}

    for label, b, status, field, rule in (
            ("no key", body(key=...), 422, "key", "required"),
            ("upper-case key", body(key="Clerk"), 422, "key", "format"),
            ("key starting with a digit", body(key="1clerk"), 422, "key", "format"),
            ("key starting with _", body(key="_clerk"), 422, "key", "format"),
            ("key with a space", body(key="ops lead"), 422, "key", "format"),
            ("key with a slash", body(key="ops/lead"), 422, "key", "format"),
            ("empty key", body(key=""), 422, "key", ("format", "required")),
            ("65-character key", body(key="k" * 65), 422, "key", "format"),
            ("key of the wrong type", body(key=7), 400, "key", "type"),
            ("taken key", body(key=existing["key"]), 409, "key", "unique"),
            ("a built-in role's key", body(key="auditor"), 409, "key", "unique"),
            ("unknown resource", body(permissions={"users": "read", "invoicez": "read"}), 422,
             "permissions.invoicez", "unknown"),
            ("bad level", body(permissions={"users": "max"}), 422, "permissions.users", "enum"),
            ("level in upper case", body(permissions={"groups": "WRITE"}), 422,
             "permissions.groups", "enum"),
            ("empty level", body(permissions={"groups": ""}), 422, "permissions.groups", "enum"),
            ("level of the wrong type", body(permissions={"users": 2}), (400, 422),
             "permissions.users", ("type", "enum")),
            ("permissions not an object", body(permissions=["users"]), 400, "permissions",
             "type"),
            ("unknown field", body(colour="red"), 400, "colour", "unknown_field"),
            ("read-only field", body(built_in=True), 400, "built_in",
             ("read_only", "unknown_field"))):
        case(f, "create with " + label, snap, lambda b=b: c.post(ROLES, b), status, field,
             rule)
    # every rule failure of one body is reported at once
    r = c.post(ROLES, {"key": "Bad Key", "name": "", "permissions": {"users": "max"}})
    try:
        b = check_problem(r, 422)
        got = {(e.get("field"), e.get("rule")) for e in b.get("errors") or []
               if isinstance(e, dict)}
        expect({("key", "format"), ("permissions.users", "enum")} <= got and
               any(fl == "name" for fl, _ in got),
               "want key, name and permissions.users errors together: %s" % sorted(got))
    except AssertionError as e:
        f.items.append("create with three bad fields: %s" % e)
    # the same rules on PATCH
    rid = existing["id"]
    for label, b, status, field, rule in (
            ("unknown resource", {"permissions": {"invoicez": "write"}}, 422,
             "permissions.invoicez", "unknown"),
            ("bad level", {"permissions": {"users": "owner"}}, 422, "permissions.users", "enum"),
            ("unknown field", {"colour": "red"}, 400, "colour", "unknown_field")):
        case(f, "PATCH with %s" % label, snap, lambda b=b: c.patch(rpath(rid), b), status,
             field, rule)
    # the edges that are fine: a 64-character key, one letter, every level
    for k in ("q" * 64, "z", "a.b-c_9"):
        k2 = k if k != "q" * 64 else "q" + unique_tag(63)
        r = c.post(ROLES, {"key": k2, "name": "Edge", "permissions": {
            "users": "none", "groups": "read", "reports": "write", "audit": "admin"}})
        f.check(r.status in (201, 409) if k == "z" else r.status == 201,
                "create with key %r: %s" % (k2, r.describe(300)))
    f.raise_if_any()


def test_permissions_name_only_catalogue_resources(ctx):
    """`*` is no resource of the catalogue (reading: the contract's rule
    "unknown resource in permissions -> 422" covers it; a custom role must not
    say "every resource", registered ones included, by a wildcard)."""
    c = ctx.client()
    snap = roles_snap(ctx)
    f = Failures()
    case(f, "create a role with permissions {\"*\": \"read\"}", snap,
         lambda: c.post(ROLES, {"key": "w" + unique_tag(8), "name": "W",
                                "permissions": {"*": "read"}}),
         422, "permissions.*", "unknown")
    f.raise_if_any()


def test_retire_a_role(ctx):
    c = ctx.client()
    role = create_role(c, "ret_" + unique_tag(5), {"users": "write", "reports": "read"})
    holder = create_user(c, "rh" + unique_tag(), role=role["key"])
    second = create_user(c, "rs" + unique_tag(), role="clerk")
    expect_status(put(c, upath(second["id"], "/roles"), {"primary": "clerk",
                                                         "secondary": [role["key"]]}), 200)
    member = create_user(c, "rg" + unique_tag(), role="clerk")
    gr = c.post("/api/v1/groups", {"name": "Retiring " + unique_tag(8), "roles": [role["key"]]})
    expect_status(gr, 201)
    expect_status(c.post("/api/v1/groups/%d/members" % gr.json["id"],
                         {"user_ids": [member["id"]]}), (200, 201, 204))
    f = Failures()
    for who in (holder, second, member):
        f.check(level_of(effective(c, who["id"]), "users") == "write",
                "%s has no write on users before the retire" % who["username"])
    since = audit_last(ctx)
    r = retire(c, role["id"])
    expect_status(r, 200)
    p = r.json
    f.check(p.get("active") is False and p.get("key") == role["key"] and
            p.get("version") == role["version"] + 1,
            "retired role active/key/version: %s" % blob(p)[:300])
    one_event(f, ctx, since, "role.", role["id"], "role retire", r.header("X-Request-Id"))
    g = c.get(rpath(role["id"]))
    f.check(g.status == 200 and g.json == p, "GET the retired role: " + g.describe(300))
    # assignments stay, inert
    for u, via in ((holder, "primary"), (second, "secondary")):
        ro = c.get(upath(u["id"], "/roles"))
        held = [ro.json.get("primary")] + list(ro.json.get("secondary") or []) \
            if ro.status == 200 and isinstance(ro.json, dict) else []
        f.check(role["key"] in held, "%s assignment of the retired role was dropped: %s" % (
            via, ro.describe(300)))
        eff = effective(c, u["id"])
        f.check(level_of(eff, "users") == "none" and level_of(eff, "reports") == "none",
                "the %s holder of a retired role still has %s" % (via, json.dumps(eff)))
    f.check(c.get(upath(holder["id"])).json.get("role") == role["key"],
            "the holder's role field changed on retire")
    g2 = c.get("/api/v1/groups/%d" % gr.json["id"])
    f.check(g2.status == 200 and role["key"] in (g2.json.get("roles") or []),
            "the group's assignment of the retired role was dropped: " + g2.describe(300))
    eff = effective(c, member["id"])
    f.check(level_of(eff, "users") == "none", "a member of a group with the retired role still "
            "has %s" % json.dumps(eff))
    # no new assignments
    fresh = create_user(c, "rn" + unique_tag(), role="clerk")
    snap = roles_snap(ctx, holder["id"], second["id"], fresh["id"])
    case(f, "create a user with the retired role", snap,
         lambda: c.post(USERS, user_body("rx" + unique_tag(), role=role["key"])), 422, "role",
         "exists")
    case(f, "PATCH a user's role to the retired role", snap,
         lambda: c.patch(upath(fresh["id"]), {"role": role["key"]}), 422, "role", "exists")
    case(f, "PUT the retired role as primary", snap,
         lambda: put(c, upath(fresh["id"], "/roles"), {"primary": role["key"], "secondary": []}),
         422, "primary", "exists", field_prefix=True)
    case(f, "PUT the retired role as secondary", snap,
         lambda: put(c, upath(fresh["id"], "/roles"), {"primary": "clerk",
                                                       "secondary": [role["key"]]}),
         422, "secondary", "exists", field_prefix=True)
    f.raise_if_any()


def test_resource_catalogue_and_registration(ctx):
    c = ctx.client()
    items = catalogue(c)
    f = Failures()
    by_key = {x.get("key"): x for x in items}
    for k in BUILTIN_RESOURCES:
        x = by_key.get(k)
        if f.check(x is not None, "built-in resource %s is not listed" % k):
            f.check(x.get("built_in") is True and isinstance(x.get("label"), str) and x["label"]
                    and "module" in x, "built-in resource %s: %s" % (k, blob(x)))
    for x in items:
        f.check(set(x) >= {"key", "label", "module", "built_in"}, "resource fields: %s" % x)
    key = "invoices_" + unique_tag(5)
    res_before = catalogue(c)
    since = audit_last(ctx)
    r = c.post(RESOURCES, {"key": key, "label": "Invoices", "module": "finance"})
    if f.check(r.status == 201, "register %s: %s" % (key, r.describe())):
        # reading: audited like every change (the contract's conventions); the
        # action's name is not given, the event's text names the key
        ev = one_event(f, ctx, since, "resource.", None, "register", r.header("X-Request-Id"))
        f.check(ev is None or key in blob(ev), "the register event does not name %s: %s" % (
            key, blob(ev)[:400]))
        f.check({k: r.json.get(k) for k in ("key", "label", "module", "built_in")} ==
                {"key": key, "label": "Invoices", "module": "finance", "built_in": False},
                "registered resource: " + r.describe())
    listed = [x for x in catalogue(c) if x.get("key") == key]
    f.check(len(listed) == 1 and listed[0].get("built_in") is False and
            listed[0].get("module") == "finance", "listed as %s" % listed)
    f.check(len(catalogue(c)) == len(res_before) + 1, "the catalogue did not grow by one")
    # a role may name it now, and a check on it answers
    role = c.post(ROLES, {"key": "fin_" + unique_tag(5), "name": "Finance",
                          "permissions": {key: "write"}})
    if f.check(role.status == 201, "a role naming the registered resource: " +
               role.describe()):
        u = create_user(c, "fi" + unique_tag(), role=role.json["key"])
        ck = c.get("/api/v1/access/check?user_id=%d&resource=%s&level=write" % (u["id"], key))
        f.check(ck.status == 200 and (ck.json or {}).get("allowed") is True,
                "check write on %s: %s" % (key, ck.describe(300)))
    snap = roles_snap(ctx)
    for label, body, status, field, rule in (
            ("a taken key", {"key": key, "label": "Again", "module": "finance"}, 409, "key",
             "unique"),
            ("a built-in key", {"key": "users", "label": "Users", "module": "x"}, 409, "key",
             "unique"),
            ("an upper-case key", {"key": "Invoices", "label": "I", "module": "m"}, 422, "key",
             "format"),
            ("a key starting with a digit", {"key": "9inv", "label": "I", "module": "m"}, 422,
             "key", "format"),
            ("a 65-character key", {"key": "i" * 65, "label": "I", "module": "m"}, 422, "key",
             "format"),
            ("no key", {"label": "I", "module": "m"}, 422, "key", "required"),
            ("an unknown field", {"key": "inv_" + unique_tag(4), "label": "I", "module": "m",
                                  "owner": "x"}, 400, "owner", "unknown_field")):
        case(f, "register " + label, snap, lambda body=body: c.post(RESOURCES, body), status,
             field, rule)
    f.raise_if_any()


def test_user_role_must_name_an_active_role(ctx):
    c = ctx.client()
    u = create_user(c, "ur" + unique_tag(), role="clerk")
    snap = roles_snap(ctx, u["id"])
    f = Failures()
    for label, role, status, rule in (("an unknown role", "no_such_role", 422, "exists"),
                                      ("a key of bad format", "No Such", 422, "format")):
        case(f, "create with " + label, snap,
             lambda role=role: c.post(USERS, user_body("un" + unique_tag(), role=role)), status,
             "role", rule)
        case(f, "PATCH to " + label, snap,
             lambda role=role: c.patch(upath(u["id"]), {"role": role}), status, "role", rule)
    # omitted: the default role (settings defaults.role, standard_user)
    d = create_user(c, "ud" + unique_tag())
    f.check(d.get("role") == "standard_user", "role of a user created without one: %r" % (
        d.get("role"),))
    ro = c.get(upath(d["id"], "/roles"))
    f.check(ro.status == 200 and ro.json.get("primary") == "standard_user" and
            ro.json.get("secondary") == [], "roles of that user: " + ro.describe(300))
    # an active custom role and a built-in one are fine
    for role in ("clerk", "auditor"):
        r = c.patch(upath(u["id"]), {"role": role})
        f.check(r.status == 200 and r.json.get("role") == role,
                "PATCH role to %s: %s" % (role, r.describe(300)))
    f.raise_if_any()


def test_get_and_put_user_roles(ctx):
    c = ctx.client()
    extra = create_role(c, "xtra_" + unique_tag(5), {"reports": "write"})
    u = create_user(c, "pr" + unique_tag(), role="clerk")
    f = Failures()
    r = c.get(upath(u["id"], "/roles"))
    expect_status(r, 200)
    f.check(r.json.get("primary") == "clerk" and r.json.get("secondary") == [],
            "roles of a new user: " + r.describe())
    h0 = history(c, u["id"])
    body = {"primary": "standard_user", "secondary": ["auditor", extra["key"]]}
    r = put(c, upath(u["id"], "/roles"), body)
    expect_status(r, 200)
    f.check(r.json.get("primary") == "standard_user" and
            sorted(r.json.get("secondary") or []) == sorted(body["secondary"]),
            "PUT answer: " + r.describe())
    g = c.get(upath(u["id"], "/roles"))
    f.check(g.status == 200 and g.json.get("primary") == "standard_user" and
            sorted(g.json.get("secondary") or []) == sorted(body["secondary"]),
            "GET after PUT: " + g.describe())
    rec = c.get(upath(u["id"])).json
    f.check(rec.get("role") == "standard_user", "the user's role field after PUT: %r" % (
        rec.get("role"),))
    h1 = history(c, u["id"])
    new = h1[:len(h1) - len(h0)]
    ev = [e for e in new if e.get("action") == "user.roles"]
    f.check(len(ev) == 1, "user.roles events after one PUT: %s" % blob(new)[:600])
    if ev:
        e = ev[0]
        f.check("clerk" in blob(e.get("before")) and "auditor" in blob(e.get("after")) and
                extra["key"] in blob(e.get("after")),
                "user.roles before/after: %s" % blob(e)[:600])
        f.check(e.get("request_id") == r.header("X-Request-Id") and
                e.get("actor_name") == "admin" and e.get("target_id") == u["id"],
                "user.roles actor/request_id/target: %s" % blob(e)[:400])
    # effective permissions follow: auditor gives read on settings, extra write on reports
    eff = effective(c, u["id"])
    f.check(level_of(eff, "settings") == "read" and level_of(eff, "reports") == "write",
            "effective after PUT: %s" % json.dumps(eff))
    # PUT replaces both
    r = put(c, upath(u["id"], "/roles"), {"primary": "guest", "secondary": []})
    f.check(r.status == 200 and r.json.get("primary") == "guest" and
            r.json.get("secondary") == [], "PUT replacing everything: " + r.describe())
    eff = effective(c, u["id"])
    f.check(level_of(eff, "reports") == "none" and level_of(eff, "groups") == "none",
            "after dropping the secondary roles: %s" % json.dumps(eff))
    # refusals change nothing
    snap = roles_snap(ctx, u["id"])
    P = lambda b: (lambda: put(c, upath(u["id"], "/roles"), b))  # noqa: E731
    case(f, "PUT an unknown primary", snap, P({"primary": "nope_x", "secondary": []}), 422,
         "primary", "exists", field_prefix=True)
    case(f, "PUT an unknown secondary", snap, P({"primary": "guest", "secondary": ["nope_y"]}),
         422, "secondary", "exists", field_prefix=True)
    case(f, "PUT a secondary of bad format", snap,
         P({"primary": "guest", "secondary": ["Bad Key"]}), 422, "secondary",
         ("format", "exists"), field_prefix=True)
    case(f, "PUT a primary of the wrong type", snap, P({"primary": 5, "secondary": []}), 400,
         "primary", "type")
    case(f, "PUT secondary not a list", snap, P({"primary": "guest", "secondary": "auditor"}),
         400, "secondary", "type")
    case(f, "PUT without the primary role (it would silently clear it)", snap,
         P({"secondary": ["auditor"]}), 422, "primary", "required")
    case(f, "PUT with an unknown field", snap,
         P({"primary": "guest", "secondary": [], "tertiary": []}), 400, "tertiary",
         "unknown_field")
    r = put(c, upath(987654321, "/roles"), {"primary": "guest", "secondary": []})
    f.check(r.status == 404 and r.content_type() == "application/problem+json",
            "PUT roles of an unknown user: " + r.describe())
    r = c.get(upath(987654321, "/roles"))
    f.check(r.status == 404, "GET roles of an unknown user: " + r.describe())
    f.raise_if_any()


def test_roles_list_shows_retired_and_custom_roles_with_their_state(ctx):
    c = ctx.client()
    a = create_role(c, "lst_a_" + unique_tag(4), {"groups": "read"})
    b = create_role(c, "lst_b_" + unique_tag(4), {"groups": "write"})
    expect_status(retire(c, b["id"]), 200)
    items = {x.get("key"): x for x in list_roles(c)}
    f = Failures()
    f.check(items.get(a["key"], {}).get("active") is True, "active role listed as %s" % (
        items.get(a["key"]),))
    f.check(items.get(b["key"], {}).get("active") is False, "retired role listed as %s" % (
        items.get(b["key"]),))
    f.check(all(x.get("built_in") is (k in BUILTIN_ROLES) for k, x in items.items()),
            "built_in flags: %s" % {k: x.get("built_in") for k, x in items.items()})
    keys = [x.get("key") for x in list_roles(c)]
    f.check(len(keys) == len(set(keys)), "duplicate keys in the list: %s" % keys)
    expect_eq(len([k for k in keys if k in BUILTIN_ROLES]), 5, "built-in roles listed")
    f.raise_if_any()
