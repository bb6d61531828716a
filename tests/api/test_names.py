"""Role and group names follow the same text rule as people's names: no
control or format characters (a bidi override can disguise a name in a list),
422 rule `characters` naming the field, nothing created; a group listing a role
twice holds it once."""

from harness import Failures, check_problem, expect_eq, expect_status, unique_tag


def test_control_and_format_characters_are_refused(ctx):
    c = ctx.client()
    f = Failures()
    for bad in ("Sales\u0007Team", "Sales\u202eTeam", "Line\nbreak"):
        t = unique_tag()
        before = c.get("/api/v1/roles").json["items"]
        r = c.post("/api/v1/roles", {"key": "nm" + t, "name": bad, "permissions": {}})
        try:
            check_problem(r, 422, field="name", rule="characters")
        except AssertionError as e:
            f.items.append("role name %r: %s" % (bad, e))
        f.check(c.get("/api/v1/roles").json["items"] == before, "a refused role was created")
        before = c.get("/api/v1/groups").json["items"]
        r = c.post("/api/v1/groups", {"name": bad + t})
        try:
            check_problem(r, 422, field="name", rule="characters")
        except AssertionError as e:
            f.items.append("group name %r: %s" % (bad, e))
        f.check(c.get("/api/v1/groups").json["items"] == before, "a refused group was created")
    # joiners some scripts need stay allowed
    r = c.post("/api/v1/groups", {"name": "\u0915\u094d\u200d\u0937 " + unique_tag()})
    f.check(r.status == 201, "a name with a zero-width joiner: " + r.describe())
    f.raise_if_any()


def test_a_role_listed_twice_is_held_once(ctx):
    c = ctx.client()
    r = c.post("/api/v1/groups", {"name": "Twice " + unique_tag(),
                                  "roles": ["guest", "guest", "standard_user"]})
    expect_status(r, 201)
    expect_eq(r.json["roles"], ["guest", "standard_user"], "group roles", r)
    r = c.patch("/api/v1/groups/%d" % r.json["id"], {"roles": ["guest", "guest"]})
    expect_status(r, 200)
    expect_eq(r.json["roles"], ["guest"], "group roles after the patch", r)
