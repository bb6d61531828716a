"""Groups (docs/design/access-contract.md, "Groups" and "The four uses"):
create/read/edit/delete, names unique case-insensitively (409 field `name`
rule `unique`), validation, members added (audited `group.members.add`),
listed (paged like the users list) and removed (audited
`group.members.remove`), recipients (active members' emails only),
assignees (active members), the users list filtered by ?group=, group roles
granting access to their members, and DELETE (204, memberships removed,
audited).

Every refused request is checked for its status, problem body and for having
changed nothing (the group, its members, the group list and the audit trail,
read from the server's database as test_settings.py does)."""

import json
import sqlite3
import time

from harness import (Failures, ISO_MS, check_problem, create_user, expect, expect_status,
                     unique_tag, urlq)

USERS = "/api/v1/users"
GROUPS = "/api/v1/groups"
GROUP_FIELDS = ("id", "name", "description", "email", "roles", "member_count", "created_at",
                "updated_at", "version")


def gpath(gid, suffix=""):
    return "%s/%d%s" % (GROUPS, gid, suffix)


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def delete(c, path, **kw):
    return c.request("DELETE", path, **kw)


def create_group(c, name=None, **kw):
    body = {"name": name or "Team " + unique_tag(8)}
    body.update(kw)
    r = c.post(GROUPS, body)
    expect_status(r, 201)
    return r.json


def add(c, gid, *uids):
    return c.post(gpath(gid, "/members"), {"user_ids": list(uids)})


def must_add(c, gid, *uids):
    r = add(c, gid, *uids)
    expect(r.status in (200, 201, 204), "add members: " + r.describe())
    return r


def member_ids(c, gid):
    ids, cursor = [], None
    for _ in range(100):
        q = {"limit": 500}
        if cursor:
            q["cursor"] = cursor
        r = c.get(gpath(gid, "/members") + "?" + urlq(**q))
        expect_status(r, 200)
        ids += [x["id"] for x in r.json["items"]]
        cursor = r.json.get("next_cursor")
        if not cursor:
            return sorted(ids)
    raise AssertionError("members list never ended")


def new_key(c, username):
    r = c.post("/api/v1/api-keys", {"name": "gr-" + unique_tag(), "username": username})
    expect_status(r, 201)
    return r.json["token"]


def list_groups(c):
    r = c.get(GROUPS)
    expect_status(r, 200)
    expect(isinstance(r.json, dict) and isinstance(r.json.get("items"), list),
           "groups list shape: " + r.describe())
    return r.json["items"]


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


def blob(x):
    return json.dumps(x, ensure_ascii=False, default=str)


def events(f, ctx, since, action, label, exact=None, prefix=False):
    evs = audit_since(ctx, since)
    hit = [e for e in evs if (str(e.get("action") or "").startswith(action) if prefix
                              else e.get("action") == action)]
    if exact is not None:
        f.check(len(hit) == exact, "%s: %d %s%s events, want %d: %s" % (
            label, len(hit), action, "*" if prefix else "", exact, blob(evs)[:600]))
    else:
        f.check(len(hit) >= 1, "%s: no %s%s event: %s" % (label, action, "*" if prefix else "",
                                                          blob(evs)[:600]))
    return hit


def group_snap(ctx, *gids, uids=()):
    c = ctx.client()

    def snap():
        out = {"groups": list_groups(c), "audit": audit_last(ctx)}
        for g in gids:
            r = c.get(gpath(g))
            out["group%d" % g] = (r.status, r.json)
            out["members%d" % g] = member_ids(c, g) if r.status == 200 else None
        for u in uids:
            r = c.get(upath(u))
            out["user%d" % u] = (r.status, r.json, r.header("ETag"))
        return out
    return snap


def case(f, label, snap, do, status, field=None, rule=None, field_prefix=False):
    """A request that must be refused and change nothing."""
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
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    after = snap()
    if after != before:
        diff = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
        f.items.append("%s: the refused request changed state: %s" % (
            label, json.dumps(diff, ensure_ascii=False)[:800]))
    return r


def check_shape(f, g, label):
    if not f.check(isinstance(g, dict), "%s: %r" % (label, g)):
        return
    missing = [k for k in GROUP_FIELDS if k not in g]
    f.check(not missing, "%s: fields %s missing: %s" % (label, missing, blob(g)[:400]))
    f.check(isinstance(g.get("id"), int) and isinstance(g.get("version"), int) and
            isinstance(g.get("member_count"), int) and isinstance(g.get("roles"), list),
            "%s: id/version/member_count/roles %s" % (label, blob(g)[:400]))
    for k in ("created_at", "updated_at"):
        f.check(isinstance(g.get(k), str) and bool(ISO_MS.match(g[k])), "%s: %s %r" % (
            label, k, g.get(k)))


# ---------------------------------------------------------------------------


def test_group_crud_and_audit(ctx):
    c = ctx.client()
    t = unique_tag(6)
    f = Failures()
    since = audit_last(ctx)
    body = {"name": "Sales " + t, "description": "Sales team", "email": "sales-%s@example.com" % t,
            "roles": ["standard_user"]}
    r = c.post(GROUPS, body)
    expect_status(r, 201)
    g = r.json
    check_shape(f, g, "created group")
    for k, v in body.items():
        f.check(g.get(k) == v, "created %s = %r, want %r" % (k, g.get(k), v))
    f.check(g.get("member_count") == 0 and g.get("version") == 1,
            "member_count/version %r/%r" % (g.get("member_count"), g.get("version")))
    events(f, ctx, since, "group.", "create", exact=1, prefix=True)
    r = c.get(gpath(g["id"]))
    f.check(r.status == 200 and r.json == g, "GET the new group: " + r.describe(400))
    f.check([x for x in list_groups(c) if x.get("id") == g["id"]] == [g], "listed group")
    # PATCH: merge, null clears the email, version moves
    since = audit_last(ctx)
    r = c.patch(gpath(g["id"]), {"description": "Sales and pre-sales", "email": None})
    if f.check(r.status == 200, "PATCH: " + r.describe()):
        p = r.json
        f.check(p.get("description") == "Sales and pre-sales" and p.get("email") is None and
                p.get("name") == body["name"] and p.get("roles") == ["standard_user"],
                "after PATCH: %s" % blob(p)[:400])
        f.check(p.get("version") == 2 and p.get("updated_at", "") >= g["updated_at"] and
                p.get("created_at") == g["created_at"], "version/updated_at after PATCH: %s" %
                blob(p)[:300])
        events(f, ctx, since, "group.", "update", exact=1, prefix=True)
        f.check(c.get(gpath(g["id"])).json == p, "GET after PATCH differs")
    r = c.patch(gpath(g["id"]), {"roles": ["auditor", "standard_user"]})
    f.check(r.status == 200 and sorted(r.json.get("roles") or []) == ["auditor", "standard_user"],
            "PATCH roles: " + r.describe(300))
    # DELETE: 204, gone, audited
    since = audit_last(ctx)
    r = delete(c, gpath(g["id"]))
    f.check(r.status == 204 and r.body == b"", "DELETE: " + r.describe())
    ev = events(f, ctx, since, "group.", "delete", exact=1, prefix=True)
    f.check(all(e.get("target_id") == g["id"] or str(g["id"]) in blob(e) for e in ev),
            "the delete event does not name the group: %s" % blob(ev)[:400])
    for label, resp in (("GET", c.get(gpath(g["id"]))), ("PATCH", c.patch(gpath(g["id"]), {
            "description": "x"})), ("DELETE again", delete(c, gpath(g["id"]))),
            ("members", c.get(gpath(g["id"], "/members")))):
        f.check(resp.status == 404 and resp.content_type() == "application/problem+json",
                "%s of a deleted group: %s" % (label, resp.describe(300)))
    f.check(not [x for x in list_groups(c) if x.get("id") == g["id"]], "still listed")
    f.raise_if_any()


def test_group_names_are_unique_case_insensitively(ctx):
    c = ctx.client()
    t = unique_tag(6)
    a = create_group(c, "Finance Team " + t)
    b = create_group(c, "Ökonomi " + t)
    other = create_group(c, "Other " + t)
    snap = group_snap(ctx, a["id"], b["id"], other["id"])
    f = Failures()
    for label, name in (("the same name", a["name"]),
                        ("lower case", a["name"].lower()),
                        ("upper case", a["name"].upper()),
                        ("a non-ASCII name in another case", "ÖKONOMI " + t.upper())):
        case(f, "create with " + label, snap, lambda name=name: c.post(GROUPS, {"name": name}),
             409, "name", "unique")
        case(f, "rename to " + label, snap,
             lambda name=name: c.patch(gpath(other["id"]), {"name": name}), 409, "name",
             "unique")
    # a group may change the case of its own name
    r = c.patch(gpath(a["id"]), {"name": a["name"].upper()})
    f.check(r.status == 200 and r.json.get("name") == a["name"].upper(),
            "re-case a group's own name: " + r.describe(300))
    f.raise_if_any()


def test_group_validation(ctx):
    c = ctx.client()
    g = create_group(c)
    snap = group_snap(ctx, g["id"])
    f = Failures()
    P = lambda body: (lambda: c.post(GROUPS, body))  # noqa: E731
    for label, body, status, field, rule in (
            ("no name", {"description": "x"}, 422, "name", "required"),
            ("a blank name", {"name": "   "}, 422, "name", ("required", "min_length")),
            ("a name of the wrong type", {"name": 5}, 400, "name", "type"),
            ("a bad email", {"name": "E " + unique_tag(), "email": "not-an-email"}, 422,
             "email", "format"),
            ("an unknown role", {"name": "R " + unique_tag(), "roles": ["no_such_role"]}, 422,
             "roles", "exists"),
            ("roles not a list", {"name": "R " + unique_tag(), "roles": "auditor"}, 400,
             "roles", "type"),
            ("an unknown field", {"name": "U " + unique_tag(), "colour": "red"}, 400, "colour",
             "unknown_field"),
            ("a read-only field", {"name": "M " + unique_tag(), "member_count": 3}, 400,
             "member_count", ("read_only", "unknown_field"))):
        case(f, "create with " + label, snap, P(body), status, field, rule, field_prefix=True)
    for label, body, status, field, rule in (
            ("a bad email", {"email": "x@"}, 422, "email", "format"),
            ("an unknown role", {"roles": ["standard_user", "no_such_role"]}, 422, "roles",
             "exists"),
            ("a blank name", {"name": ""}, 422, "name", ("required", "min_length"))):
        case(f, "PATCH with " + label, snap, lambda body=body: c.patch(gpath(g["id"]), body),
             status, field, rule, field_prefix=True)
    # a retired role cannot be newly given to a group
    rr = c.post("/api/v1/roles", {"key": "gret_" + unique_tag(5), "name": "R",
                                  "permissions": {"reports": "read"}})
    expect_status(rr, 201)
    expect_status(c.request("POST", "/api/v1/roles/%d/retire" % rr.json["id"]), 200)
    case(f, "PATCH with a retired role", snap,
         lambda: c.patch(gpath(g["id"]), {"roles": [rr.json["key"]]}), 422, "roles", "exists",
         field_prefix=True)
    f.raise_if_any()


def test_members_add_list_and_remove_audited(ctx):
    c = ctx.client()
    t = unique_tag(5)
    g = create_group(c, "Members " + t)
    u1, u2, u3 = (create_user(c, "gm%d%s" % (i, t)) for i in range(3))
    f = Failures()
    since = audit_last(ctx)
    r = add(c, g["id"], u1["id"], u2["id"])
    f.check(r.status in (200, 201, 204), "add two members: " + r.describe())
    ev = events(f, ctx, since, "group.members.add", "add two")
    for u in (u1, u2):
        f.check(any(e.get("target_id") == u["id"] or str(u["id"]) in blob(
            (e.get("before_json"), e.get("after_json"))) for e in ev),
            "no group.members.add event names user %d: %s" % (u["id"], blob(ev)[:400]))
    f.check(member_ids(c, g["id"]) == sorted([u1["id"], u2["id"]]), "members after add")
    f.check(c.get(gpath(g["id"])).json.get("member_count") == 2, "member_count after add")
    # paged like the users list
    r = c.get(gpath(g["id"], "/members") + "?limit=1")
    if f.check(r.status == 200, "members limit=1: " + r.describe()):
        j = r.json
        f.check(len(j.get("items") or []) == 1 and j.get("total") == 2 and
                isinstance(j.get("next_cursor"), str), "first page: " + r.describe(400))
        item = (j.get("items") or [{}])[0]
        f.check({"id", "username", "email", "status"} <= set(item), "member item: %s" % item)
        r2 = c.get(gpath(g["id"], "/members") + "?" + urlq(limit=1, cursor=j.get("next_cursor")))
        f.check(r2.status == 200 and len(r2.json.get("items") or []) == 1 and
                r2.json["items"][0]["id"] != item.get("id") and r2.json.get("next_cursor") is None,
                "second page: " + r2.describe(400))
    r = c.get(gpath(g["id"], "/members") + "?" + urlq(limit=1, page=2, sort="id"))
    f.check(r.status == 200 and [x.get("id") for x in r.json.get("items") or []] ==
            [max(u1["id"], u2["id"])] and r.json.get("page") == 2 and r.json.get("total") == 2,
            "members page=2 of limit=1 sorted by id: " + r.describe(400))
    r = c.get(gpath(g["id"], "/members") + "?limit=0")
    f.check(r.status == 400, "members limit=0: " + r.describe(300))
    # adding a member again changes nothing more
    r = add(c, g["id"], u1["id"])
    f.check(r.status in (200, 201, 204, 409), "add an existing member: " + r.describe(300))
    f.check(member_ids(c, g["id"]) == sorted([u1["id"], u2["id"]]), "members after re-add")
    # refusals
    snap = group_snap(ctx, g["id"])
    case(f, "add an unknown user", snap, lambda: add(c, g["id"], u3["id"], 987654321),
         (422, 404), "user_ids", "exists", field_prefix=True)
    case(f, "add with user_ids not a list", snap,
         lambda: c.post(gpath(g["id"], "/members"), {"user_ids": u3["id"]}), 400, "user_ids",
         "type")
    case(f, "add with no user_ids", snap, lambda: c.post(gpath(g["id"], "/members"), {}), 422,
         "user_ids", "required")
    case(f, "remove a user who is no member", snap,
         lambda: delete(c, gpath(g["id"], "/members/%d" % u3["id"])), 404)
    r = add(c, 987654321, u3["id"])
    f.check(r.status == 404, "add to an unknown group: " + r.describe(300))
    # remove
    since = audit_last(ctx)
    r = delete(c, gpath(g["id"], "/members/%d" % u1["id"]))
    f.check(r.status in (200, 204), "remove a member: " + r.describe())
    ev = events(f, ctx, since, "group.members.remove", "remove", exact=1)
    f.check(all(e.get("target_id") == u1["id"] or str(u1["id"]) in blob(e) for e in ev),
            "the remove event does not name the user: %s" % blob(ev)[:400])
    f.check(member_ids(c, g["id"]) == [u2["id"]], "members after remove")
    f.check(c.get(gpath(g["id"])).json.get("member_count") == 1, "member_count after remove")
    f.raise_if_any()


def test_recipients_and_assignees_are_active_members_only(ctx):
    c = ctx.client()
    t = unique_tag(5)
    g = create_group(c, "Mail " + t, email="mail-%s@example.com" % t)
    act = create_user(c, "ra" + t, first_name="Ada", last_name="Active")
    ina = create_user(c, "ri" + t, first_name="Ivo", last_name="Inactive")
    loc = create_user(c, "rl" + t, first_name="Lea", last_name="Locked")
    pen = create_user(c, "rp" + t, first_name="Per", last_name="Pending", status="pending")
    act2 = create_user(c, "rb" + t, first_name="Bea", last_name="Busy")
    outsider = create_user(c, "ro" + t)
    must_add(c, g["id"], act["id"], ina["id"], loc["id"], pen["id"], act2["id"])
    expect_status(c.post(upath(ina["id"], "/deactivate"), {"reason": "left_company"}), 200)
    expect_status(c.post(upath(loc["id"], "/lock"), {}), 200)
    f = Failures()
    active = sorted([act, act2], key=lambda u: u["id"])
    r = c.get(gpath(g["id"], "/recipients"))
    if f.check(r.status == 200 and isinstance((r.json or {}).get("items"), list),
               "recipients: " + r.describe()):
        got = sorted(r.json["items"], key=lambda x: x.get("user_id", 0))
        want = [{"user_id": u["id"], "email": u["email"], "name": u["display_name"]}
                for u in active]
        f.check([{k: x.get(k) for k in ("user_id", "email", "name")} for x in got] == want,
                "recipients %s, want %s" % (blob(got), blob(want)))
    r = c.get(gpath(g["id"], "/assignees"))
    if f.check(r.status == 200 and isinstance((r.json or {}).get("items"), list),
               "assignees: " + r.describe()):
        got = sorted(r.json["items"], key=lambda x: x.get("user_id", 0))
        want = [{"user_id": u["id"], "username": u["username"], "name": u["display_name"]}
                for u in active]
        f.check([{k: x.get(k) for k in ("user_id", "username", "name")} for x in got] == want,
                "assignees %s, want %s" % (blob(got), blob(want)))
    # follows status changes
    expect_status(c.post(upath(act2["id"], "/lock"), {}), 200)
    expect_status(c.post(upath(ina["id"], "/reactivate"), {}), 200)
    r = c.get(gpath(g["id"], "/recipients"))
    f.check(r.status == 200 and sorted(x.get("user_id") for x in r.json["items"]) ==
            sorted([act["id"], ina["id"]]), "recipients after lock/reactivate: " + r.describe())
    f.check(outsider["id"] not in [x.get("user_id") for x in r.json.get("items", [])],
            "an outsider is a recipient")
    # an empty group
    e = create_group(c, "Empty " + t)
    for what in ("recipients", "assignees"):
        r = c.get(gpath(e["id"], "/" + what))
        f.check(r.status == 200 and r.json.get("items") == [], "%s of an empty group: %s" % (
            what, r.describe(300)))
        r = c.get(gpath(987654321, "/" + what))
        f.check(r.status == 404, "%s of an unknown group: %s" % (what, r.describe(300)))
    f.raise_if_any()


def test_recipients_and_assignees_reach_every_member_and_skip_api_users(ctx):
    """A mailing to a big group reaches everyone: more members than one list
    page (500) all come back, total included. API users (integrations) are
    members for access but neither read mail nor take work: they are left
    out of both lists."""
    c = ctx.client()
    t = unique_tag(5)
    g = create_group(c, "All staff " + t)
    ids = [create_user(c, "big%s.%d" % (t, i))["id"] for i in range(507)]
    bot = create_user(c, "bot" + t, type="api")
    for i in range(0, len(ids), 500):
        must_add(c, g["id"], *ids[i:i + 500])
    must_add(c, g["id"], bot["id"])
    f = Failures()
    for what in ("recipients", "assignees"):
        r = c.get(gpath(g["id"], "/" + what))
        if not f.check(r.status == 200, "%s: %s" % (what, r.describe(300))):
            continue
        got = [x.get("user_id") for x in r.json.get("items", [])]
        f.check(sorted(got) == sorted(ids), "%s: %d items (want the %d people), api user "
                "listed: %s" % (what, len(got), len(ids), bot["id"] in got))
        f.check(r.json.get("total") == len(ids), "%s total %r, want %d" % (
            what, r.json.get("total"), len(ids)))
    f.raise_if_any()


def test_users_list_filters_by_group(ctx):
    c = ctx.client()
    t = unique_tag(5)
    g = create_group(c, "Filter " + t)
    h = create_group(c, "Filter other " + t)
    ms = [create_user(c, "fm%d%s" % (i, t)) for i in range(4)]
    other = create_user(c, "fo" + t)
    must_add(c, g["id"], *[u["id"] for u in ms])
    must_add(c, h["id"], other["id"], ms[0]["id"])
    expect_status(c.post(upath(ms[1]["id"], "/lock"), {}), 200)
    f = Failures()
    r = c.get(USERS + "?" + urlq(group=g["id"], limit=500))
    if f.check(r.status == 200, "users?group=: " + r.describe()):
        f.check(sorted(x["id"] for x in r.json["items"]) == sorted(u["id"] for u in ms) and
                r.json.get("total") == len(ms), "users?group=%d: %s" % (g["id"],
                                                                        r.describe(300)))
    r = c.get(USERS + "?" + urlq(group=g["id"], status="active", limit=500))
    f.check(r.status == 200 and sorted(x["id"] for x in r.json["items"]) ==
            sorted(u["id"] for u in ms if u is not ms[1]), "users?group=&status=active: " +
            r.describe(300))
    r = c.get(USERS + "?" + urlq(group=h["id"], limit=500))
    f.check(r.status == 200 and sorted(x["id"] for x in r.json["items"]) ==
            sorted([other["id"], ms[0]["id"]]), "users?group=<other>: " + r.describe(300))
    # paged by cursor: no gaps, no duplicates
    seen, cursor = [], None
    for _ in range(10):
        q = {"group": g["id"], "limit": 1}
        if cursor:
            q["cursor"] = cursor
        r = c.get(USERS + "?" + urlq(**q))
        if not f.check(r.status == 200, "paging users?group=: " + r.describe()):
            break
        seen += [x["id"] for x in r.json["items"]]
        cursor = r.json.get("next_cursor")
        if not cursor:
            break
    f.check(sorted(seen) == sorted(u["id"] for u in ms), "paged users?group=: %s" % seen)
    for bad in ("abc", "0", "-1", "1.5"):
        r = c.get(USERS + "?" + urlq(group=bad))
        try:
            check_problem(r, 400, field="group")
        except AssertionError as e:
            f.items.append("users?group=%s: %s" % (bad, e))
    r = c.get(USERS + "?group=%d&group=%d" % (g["id"], h["id"]))
    f.check(r.status == 400, "group given twice: " + r.describe(300))
    f.raise_if_any()


def test_group_roles_grant_access_to_members(ctx):
    c = ctx.client()
    t = unique_tag(5)
    g = create_group(c, "Managers " + t, roles=["user_manager"])
    u = create_user(c, "ga" + t, role="standard_user")
    uc = ctx.client(token=new_key(c, u["username"]))
    f = Failures()

    def try_create():
        tag = unique_tag(8)
        return uc.post(USERS, {"username": "gx" + tag, "email": "gx%s@example.com" % tag,
                               "first_name": "G", "last_name": "X"}).status

    total = c.get(USERS + "?limit=1").json["total"]
    f.check(try_create() == 403, "a standard user creates a user")
    f.check(c.get(USERS + "?limit=1").json["total"] == total, "the refused create made a user")
    must_add(c, g["id"], u["id"])
    ok = False
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        if try_create() == 201:
            ok = True
            break
        time.sleep(0.02)
    f.check(ok, "a member of a group with user_manager cannot create users within 1 s")
    r = c.get("/api/v1/access/check?" + urlq(user_id=u["id"], resource="users", level="write"))
    if f.check(r.status == 200 and r.json.get("allowed") is True, "check: " + r.describe()):
        gb = r.json.get("granted_by")
        gb = gb if isinstance(gb, list) else [gb]
        f.check(any(isinstance(e, dict) and e.get("kind") == "group" and
                    e.get("group") == g["name"] and e.get("role") == "user_manager" for e in gb),
                "granted_by does not name the group: %s" % blob(gb))
    p = c.get(upath(u["id"], "/permissions"))
    f.check(p.status == 200 and (p.json["permissions"].get("users") or {}).get("level") ==
            "write", "permissions of the member: " + p.describe(400))
    f.raise_if_any()


def test_delete_group_removes_memberships(ctx):
    c = ctx.client()
    t = unique_tag(5)
    g = create_group(c, "Doomed " + t, roles=["auditor"])
    keep = create_group(c, "Kept " + t)
    u = create_user(c, "gd" + t, role="clerk")
    must_add(c, g["id"], u["id"])
    must_add(c, keep["id"], u["id"])
    f = Failures()
    chk = lambda: c.get("/api/v1/access/check?" + urlq(  # noqa: E731
        user_id=u["id"], resource="settings", level="read")).json.get("allowed")
    f.check(chk() is True, "the member has settings read through the group")
    r = delete(c, gpath(g["id"]))
    expect_status(r, 204)
    t0 = time.monotonic()
    while chk() is not False and time.monotonic() - t0 < 1.0:
        time.sleep(0.02)
    f.check(chk() is False, "the member keeps the deleted group's role after 1 s")
    r = c.get(USERS + "?" + urlq(group=g["id"]))
    f.check(r.status in (200, 400, 404) and (r.status != 200 or r.json.get("total") == 0),
            "users?group=<deleted>: " + r.describe(300))
    f.check(member_ids(c, keep["id"]) == [u["id"]], "the other group lost its member")
    f.check(c.get(gpath(keep["id"])).json.get("member_count") == 1, "member_count of the kept "
            "group")
    # the name is free again
    r = c.post(GROUPS, {"name": g["name"]})
    f.check(r.status == 201 and r.json.get("member_count") == 0,
            "re-create a deleted group's name: " + r.describe(300))
    f.raise_if_any()


def test_patch_group_honours_if_match(ctx):
    c = ctx.client()
    g = create_group(c)
    expect_status(c.patch(gpath(g["id"]), {"description": "v2"}), 200)
    snap = group_snap(ctx, g["id"])
    f = Failures()
    case(f, "PATCH with a stale If-Match", snap,
         lambda: c.patch(gpath(g["id"]), {"description": "v3"}, headers={"If-Match": '"1"'}),
         412)
    r = c.patch(gpath(g["id"]), {"description": "v3"}, headers={"If-Match": '"2"'})
    f.check(r.status == 200 and r.json.get("version") == 3 and r.json.get("description") == "v3",
            "PATCH with the current If-Match: " + r.describe())
    f.raise_if_any()


def test_unknown_groups_are_404(ctx):
    c = ctx.client()
    u = create_user(c, "gu" + unique_tag())
    snap = group_snap(ctx, uids=(u["id"],))
    f = Failures()
    for method, path, body in (("GET", gpath(987654321), None),
                               ("PATCH", gpath(987654321), {"description": "x"}),
                               ("DELETE", gpath(987654321), None),
                               ("GET", gpath(987654321, "/members"), None),
                               ("POST", gpath(987654321, "/members"), {"user_ids": [u["id"]]}),
                               ("DELETE", gpath(987654321, "/members/%d" % u["id"]), None)):
        kw = {"json_body": body} if body is not None else {}
        case(f, "%s %s" % (method, path), snap,
             lambda method=method, path=path, kw=kw: c.request(method, path, **kw), 404)
    f.raise_if_any()
