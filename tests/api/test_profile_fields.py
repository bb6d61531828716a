"""The user record (docs/design/users-contract.md, "The record" and "Profile"):
every field on create and GET, PATCH merge rules, null clearing optional
fields, read-only fields, display_name, field rules, manager rules (itself,
loops named in the message), employee_id uniqueness, defaults from the
settings, and GET /api/v1/users/{id}/profile with its three sections.

Every refused request is checked for its status, problem body (errors[].field
and .rule) and for having changed nothing: the user (body and ETag), its
history and the user total are the same before and after."""

import json
import threading

from harness import (Failures, ISO_MS, check_problem, create_user, expect, expect_eq,
                     expect_status, history, unique_tag, user_body, user_total)

USERS = "/api/v1/users"
SETTINGS = "/api/v1/settings/users"
FIELDS = "/api/v1/settings/users/fields"

RECORD = ("id", "username", "email", "first_name", "last_name", "display_name", "phone",
          "employee_id", "department", "position", "manager_id", "location", "type", "status",
          "status_reason", "status_note", "status_changed_at", "role", "custom_fields",
          "created_at", "updated_at", "last_login_at", "erased_at", "version")
OPTIONAL = ("phone", "employee_id", "department", "position", "manager_id", "location", "role")
READ_ONLY = (("id", 424242), ("display_name", "Some Body"), ("status_reason", "other"),
             ("status_note", "a note"), ("status_changed_at", "2026-01-01T00:00:00.000Z"),
             ("created_at", "2026-01-01T00:00:00.000Z"),
             ("updated_at", "2026-01-01T00:00:00.000Z"),
             ("last_login_at", "2026-01-01T00:00:00.000Z"),
             ("erased_at", "2026-01-01T00:00:00.000Z"), ("version", 1))


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def user_state(c, uid):
    g = c.get(upath(uid))
    h = c.get(upath(uid, "/history"))
    return {"user": (g.status, g.json, g.header("ETag")),
            "history": [e.get("id") for e in (h.json or {}).get("items", [])]}


def watch(c, *uids):
    """A snapshot of what a refused request must leave alone."""
    return lambda: {"total": user_total(c), "users": [user_state(c, u) for u in uids]}


def case(f, label, snap, do, status, field=None, rule=None, message=None):
    """One request that must be refused: status, problem body, field and rule,
    optionally a text the field error's message must contain, and nothing
    changed. status may be a tuple of acceptable (status, rule) readings."""
    before = snap()
    r = None
    try:
        r = do()
        if isinstance(status, tuple):
            alts = dict(status)
            st = r.status if r.status in alts else status[0][0]
            rule = alts.get(st, rule)
            status = st
        check_problem(r, status, field=field, rule=rule)
        if field is not None:
            errs = [e for e in r.json["errors"] if e.get("field") == field]
            expect(all(isinstance(e.get("rule"), str) and e["rule"] for e in errs),
                   "errors[] entry without a rule: " + r.describe())
        if message is not None:
            msgs = [e.get("message", "") for e in r.json.get("errors") or []
                    if e.get("field") == field]
            expect(any(message in m for m in msgs),
                   "errors[%s].message should contain %r: %s" % (field, message, r.describe()))
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    after = snap()
    if after != before:
        diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        f.items.append("%s: the refused request changed state: %s" % (
            label, json.dumps(diff, ensure_ascii=False)[:800]))
    return r


def settings(c):
    r = c.get(SETTINGS)
    expect_status(r, 200)
    return r.json


def patch_settings(c, body):
    r = c.patch(SETTINGS, body)
    expect_status(r, 200)
    return r.json


def together(fns):
    """Runs the functions in threads released at once; returns their results."""
    barrier = threading.Barrier(len(fns))
    out = [None] * len(fns)

    def run(i):
        try:
            barrier.wait(5)
            out[i] = fns[i]()
        except Exception as e:  # noqa: BLE001
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out


def full_body(tag, manager_id, **kw):
    d = user_body("pf" + tag, first_name="John", last_name="Smith", phone="+1 555-0100",
                  employee_id="EMP" + tag.upper(), department="Sales", position="Sales Manager",
                  manager_id=manager_id, location="New York", type="standard", status="active",
                  role="sales_manager")
    d.update(kw)
    return d


# ---------------------------------------------------------------------------


def test_create_with_every_field_then_get(ctx):
    c = ctx.client()
    t = unique_tag()
    boss = create_user(c, "boss" + t, first_name="Jane", last_name="Doe")
    body = full_body(t, boss["id"])
    r = c.post(USERS, body)
    expect_status(r, 201)
    u = r.json
    f = Failures()
    missing = [k for k in RECORD if k not in u]
    f.check(not missing, "the record lacks %s: %s" % (missing, r.describe()))
    for k, v in body.items():
        f.check(u.get(k) == v, "created %s = %r, want %r" % (k, u.get(k), v))
    f.check(u.get("display_name") == "John Smith", "display_name %r, want 'John Smith'" % (
        u.get("display_name"),))
    f.check(u.get("custom_fields") == {}, "custom_fields %r, want {}" % (u.get("custom_fields"),))
    for k in ("status_reason", "status_note", "last_login_at", "erased_at"):
        f.check(k in u and u[k] is None, "%s = %r on a new user, want null" % (k, u.get(k)))
    sca = u.get("status_changed_at")
    f.check(sca is None or (isinstance(sca, str) and ISO_MS.match(sca)),
            "status_changed_at %r is neither null nor like 2026-11-24T06:40:00.123Z" % (sca,))
    f.check(u.get("version") == 1 and r.header("ETag") == '"1"', "version %r / ETag %r" % (
        u.get("version"), r.header("ETag")))
    g = c.get(upath(u["id"]))
    f.check(g.status == 200 and g.json == u, "GET differs from the create response: %s" % (
        g.describe(),))
    f.check(g.header("ETag") == '"1"', "ETag on GET %r" % g.header("ETag"))
    # the list shows the same record
    lr = c.get(USERS + "?q=pf" + t)
    items = (lr.json or {}).get("items") or []
    f.check(lr.status == 200 and len(items) == 1 and items[0] == u,
            "the list item differs from GET: %s" % lr.describe())
    f.raise_if_any()


def test_omitted_optional_fields_are_null(ctx):
    c = ctx.client()
    u = create_user(c, "om" + unique_tag(), first_name="Ola", last_name="Nordmann")
    f = Failures()
    for k in OPTIONAL:
        if k == "role":
            # settings.defaults.role: new users take the standard_user role
            f.check(u.get(k) == "standard_user", "role = %r when omitted, want the default "
                    "standard_user" % (u.get(k),))
            continue
        f.check(k in u and u[k] is None, "%s = %r when omitted, want null" % (k, u.get(k)))
    f.check((u.get("type"), u.get("status")) == ("standard", "active"),
            "type/status %r/%r by default" % (u.get("type"), u.get("status")))
    f.check(u.get("custom_fields") == {}, "custom_fields %r, want {}" % (u.get("custom_fields"),))
    f.check(u.get("display_name") == "Ola Nordmann", "display_name %r" % (u.get("display_name"),))
    f.raise_if_any()


def test_status_on_create(ctx):
    c = ctx.client()
    f = Failures()
    for st in ("pending", "active"):
        r = c.post(USERS, user_body("st" + unique_tag(), status=st))
        f.check(r.status == 201 and (r.json or {}).get("status") == st,
                "create with status %s: %s" % (st, r.describe()))
    snap = watch(c)
    for st in ("inactive", "locked", "deleted", "ACTIVE", ""):
        case(f, "create with status %r" % st, snap,
             lambda st=st: c.post(USERS, user_body("st" + unique_tag(), status=st)),
             422, "status", "enum")
    case(f, "create with status 1", snap,
         lambda: c.post(USERS, user_body("st" + unique_tag(), status=1)), 400, "status", "type")
    f.raise_if_any()


def test_read_only_fields_are_refused(ctx):
    c = ctx.client()
    u = create_user(c, "ro" + unique_tag())
    snap = watch(c, u["id"])
    f = Failures()
    for field, value in READ_ONLY:
        case(f, "POST %s" % field, snap,
             lambda field=field, value=value: c.post(USERS, user_body(
                 "ro" + unique_tag(), **{field: value})), 400, field, "read_only")
        case(f, "PATCH %s" % field, snap,
             lambda field=field, value=value: c.patch(upath(u["id"]), {
                 field: value, "first_name": "Changed"}), 400, field, "read_only")
    # status changes only through the lifecycle actions, even to the same value
    for st in ("inactive", "locked", "active", "pending"):
        case(f, "PATCH status=%s" % st, snap,
             lambda st=st: c.patch(upath(u["id"]), {"status": st}), 400, "status", "read_only")
    # read-only even when sent with the value it has (null)
    case(f, "PATCH erased_at=null", snap,
         lambda: c.patch(upath(u["id"]), {"erased_at": None}), 400, "erased_at", "read_only")
    f.raise_if_any()


def test_patch_each_optional_field_then_null_clears_it(ctx):
    c = ctx.client()
    t = unique_tag()
    boss = create_user(c, "pb" + t)
    boss2 = create_user(c, "pc" + t)
    u = create_user(c, **full_body(t, boss["id"]))
    new = {"phone": "+46 70-123 45 67", "employee_id": "NEW" + t.upper(), "department": "Ops",
           "position": "Analyst", "manager_id": boss2["id"], "location": "Oslo",
           "role": "ops.lead-2"}
    f = Failures()
    cur = u
    for field in OPTIONAL:
        for value in (new[field], None):
            r = c.patch(upath(u["id"]), {field: value})
            if not f.check(r.status == 200, "PATCH %s=%r: %s" % (field, value, r.describe())):
                continue
            p = r.json
            want = dict(cur, **{field: value})
            diff = {k: (p.get(k), want.get(k)) for k in RECORD
                    if k not in ("updated_at", "version") and p.get(k) != want.get(k)}
            f.check(not diff, "PATCH %s=%r: fields (got, want) %s" % (field, value, diff))
            f.check(p.get("version") == cur["version"] + 1, "PATCH %s=%r: version %r after %r" % (
                field, value, p.get("version"), cur["version"]))
            ev = history(c, u["id"])[0]
            f.check(ev.get("action") == "user.update"
                    and ev.get("before") == {field: cur[field]}
                    and ev.get("after") == {field: value},
                    "PATCH %s=%r: history event %s" % (field, value, json.dumps(ev)[:400]))
            cur = p
    g = c.get(upath(u["id"]))
    for field in OPTIONAL:
        f.check(g.json.get(field) is None, "%s not cleared: %r" % (field, g.json.get(field)))
    f.raise_if_any()


def test_patch_null_on_a_required_field_is_refused(ctx):
    c = ctx.client()
    u = create_user(c, "rq" + unique_tag())
    snap = watch(c, u["id"])
    f = Failures()
    for field in ("username", "email", "first_name", "last_name"):
        # reading: null is either a wrong type (400 type) or a missing value (422 required)
        case(f, "PATCH %s=null" % field, snap, lambda field=field: c.patch(upath(u["id"]), {
            field: None}), ((422, "required"), (400, "type")), field)
    f.raise_if_any()


def test_display_name_follows_the_names(ctx):
    c = ctx.client()
    u = create_user(c, "dn" + unique_tag(), first_name="Anna", last_name="Berg")
    f = Failures()
    f.check(u.get("display_name") == "Anna Berg", "display_name %r" % (u.get("display_name"),))
    r = c.patch(upath(u["id"]), {"first_name": "Åsa"})
    f.check(r.status == 200 and r.json.get("display_name") == "Åsa Berg",
            "after first_name change: " + r.describe())
    r = c.patch(upath(u["id"]), {"last_name": "Öberg", "department": "Sales"})
    f.check(r.status == 200 and r.json.get("display_name") == "Åsa Öberg",
            "after last_name change: " + r.describe())
    g = c.get(upath(u["id"]))
    f.check(g.json.get("display_name") == "Åsa Öberg", "stored display_name " + g.describe())
    f.raise_if_any()


def test_field_rules_on_create(ctx):
    c = ctx.client()
    snap = watch(c)
    f = Failures()
    t = unique_tag()
    cases = [
        ("phone", "abc", "format"), ("phone", "12", "format"), ("phone", "+1 555 0100 x12", "format"),
        ("phone", "+" + "1" * 30, "format"),
        ("role", "Sales", "format"), ("role", "1role", "format"), ("role", "sales manager", "format"),
        ("role", "r" * 65, "format"), ("role", "", "format"),
        ("type", "superuser", "enum"),
        ("department", "d" * 101, "max_length"), ("position", "p" * 101, "max_length"),
        ("location", "l" * 101, "max_length"),
        ("department", "Sa\u0007les", ("characters", "format")),
        ("position", "Line\nbreak", ("characters", "format")),
        ("location", "Del\u007f", ("characters", "format")),
        ("department", "", ("min_length", "required")),
        ("location", "   ", ("min_length", "required")),
        ("manager_id", 987654321, "exists"), ("manager_id", 0, "exists"),
        ("manager_id", -4, "exists"),
    ]
    for field, value, rule in cases:
        case(f, "create %s=%r" % (field, value if len(str(value)) < 30 else str(value)[:20] + "..."),
             snap, lambda field=field, value=value: c.post(USERS, user_body(
                 "fr" + unique_tag(), **{field: value})), 422, field, rule)
    for field, value in (("manager_id", "3"), ("manager_id", 1.5), ("phone", 5551234),
                         ("employee_id", 17), ("department", ["Sales"]), ("role", True)):
        case(f, "create %s=%r" % (field, value), snap,
             lambda field=field, value=value: c.post(USERS, user_body(
                 "ft" + unique_tag(), **{field: value})), 400, field, "type")
    # the edges that are allowed
    r = c.post(USERS, user_body("fe" + t, department="D" * 100, position="P" * 100,
                                location="L" * 100, role="r" * 64, phone="+1 (555) 010-0100"))
    f.check(r.status == 201, "100-character department/position/location, 64-character role, "
            "phone with brackets: " + r.describe())
    # lengths are characters, not bytes
    r = c.post(USERS, user_body("fn" + t, department="å" * 100, position="ж" * 100,
                                location="😀" * 100))
    f.check(r.status == 201 and r.json.get("location") == "😀" * 100,
            "100 non-ASCII characters: " + r.describe(200))
    case(f, "101 non-ASCII characters", snap, lambda: c.post(USERS, user_body(
        "fo" + t, department="å" * 101)), 422, "department", "max_length")
    f.raise_if_any()


def test_field_rules_on_patch(ctx):
    c = ctx.client()
    u = create_user(c, "fp" + unique_tag(), department="Sales", phone="+1 555-0100")
    snap = watch(c, u["id"])
    f = Failures()
    for field, value, rule in (("phone", "call me", "format"), ("role", "Admin", "format"),
                               ("department", "x" * 101, "max_length"),
                               ("manager_id", 987654321, "exists"), ("type", "root", "enum")):
        case(f, "PATCH %s=%r" % (field, value), snap,
             lambda field=field, value=value: c.patch(upath(u["id"]), {field: value}),
             422, field, rule)
    # a valid field next to an invalid one: nothing is applied
    case(f, "PATCH valid department + bad phone", snap,
         lambda: c.patch(upath(u["id"]), {"department": "Ops", "phone": "nope"}),
         422, "phone", "format")
    f.raise_if_any()


def test_manager_itself_and_loops_are_refused(ctx):
    c = ctx.client()
    t = unique_tag(5)
    a = create_user(c, "ma" + t)
    b = create_user(c, "mb" + t)
    cc = create_user(c, "mc" + t)
    d = create_user(c, "md" + t)
    A, B, C, D = (x["username"] for x in (a, b, cc, d))
    f = Failures()
    snap = watch(c, a["id"], b["id"], cc["id"])
    case(f, "a manages a", snap, lambda: c.patch(upath(a["id"]), {"manager_id": a["id"]}),
         422, "manager_id", "cycle", message=A)
    expect_status(c.patch(upath(b["id"]), {"manager_id": a["id"]}), 200)        # b -> a
    snap = watch(c, a["id"], b["id"], cc["id"])
    case(f, "a -> b -> a", snap, lambda: c.patch(upath(a["id"]), {"manager_id": b["id"]}),
         422, "manager_id", "cycle",
         message="manager chain would loop: %s \u2192 %s \u2192 %s" % (A, B, A))
    expect_status(c.patch(upath(cc["id"]), {"manager_id": b["id"]}), 200)       # c -> b -> a
    snap = watch(c, a["id"], b["id"], cc["id"])
    case(f, "a -> c -> b -> a", snap, lambda: c.patch(upath(a["id"]), {"manager_id": cc["id"]}),
         422, "manager_id", "cycle",
         message="manager chain would loop: %s \u2192 %s \u2192 %s \u2192 %s" % (A, C, B, A))
    # a tree is fine: d -> a, and a new user may report to c
    r = c.patch(upath(d["id"]), {"manager_id": a["id"]})
    f.check(r.status == 200 and r.json.get("manager_id") == a["id"], "d -> a: " + r.describe())
    r = c.post(USERS, user_body("me" + t, manager_id=cc["id"]))
    f.check(r.status == 201 and r.json.get("manager_id") == cc["id"],
            "create reporting to c: " + r.describe())
    # once b no longer reports to a, a may report to b (the check is not over-eager)
    expect_status(c.patch(upath(b["id"]), {"manager_id": None}), 200)
    r = c.patch(upath(a["id"]), {"manager_id": b["id"]})
    f.check(r.status == 200 and r.json.get("manager_id") == b["id"],
            "a -> b after b's manager was cleared: " + r.describe())
    f.raise_if_any()


def test_a_long_manager_loop_is_named_whole(ctx):
    """Org charts 15 deep with firstname.lastname usernames are ordinary; the
    message must still name the loop. Reading: the whole chain, or an
    abbreviation that keeps both ends ("u00 → u14 → … → u00"),
    but not a chain cut off."""
    c = ctx.client()
    t = unique_tag(4)
    us = [create_user(c, "maximiliane.%s-vonhohenberg%02d" % (t, i)) for i in range(15)]
    for i in range(1, 15):
        expect_status(c.patch(upath(us[i]["id"]), {"manager_id": us[i - 1]["id"]}), 200)
    names = [u["username"] for u in us]
    whole = "manager chain would loop: " + " → ".join([names[0]] + names[::-1])
    f = Failures()
    r = case(f, "close a 15-long chain", watch(c, us[0]["id"]),
             lambda: c.patch(upath(us[0]["id"]), {"manager_id": us[14]["id"]}),
             422, "manager_id", "cycle")
    if r is not None and r.status == 422:
        msg = [e.get("message", "") for e in r.json.get("errors") or []
               if e.get("field") == "manager_id"][0]
        head = "manager chain would loop: %s → %s → " % (names[0], names[14])
        f.check(msg == whole or (msg.startswith(head) and msg.endswith(" → " + names[0])),
                "the message does not name the loop:\n got  %r\n want %r" % (msg, whole))
    f.raise_if_any()


def test_a_loop_of_70_managers_is_refused_too(ctx):
    """No depth at which the loop check may give up and let a loop in."""
    c = ctx.client()
    t = unique_tag(4)
    n = 70
    us = [create_user(c, "dl%s%02d" % (t, i)) for i in range(n)]
    for i in range(1, n):
        expect_status(c.patch(upath(us[i]["id"]), {"manager_id": us[i - 1]["id"]}), 200)
    f = Failures()
    case(f, "close a loop of %d users" % n, watch(c, us[0]["id"]),
         lambda: c.patch(upath(us[0]["id"]), {"manager_id": us[-1]["id"]}), 422, "manager_id",
         "cycle")
    f.raise_if_any()


def test_concurrent_manager_changes_cannot_make_a_loop(ctx):
    c = ctx.client()
    f = Failures()
    for i in range(5):
        a = create_user(c, "ra%d" % i + unique_tag())
        b = create_user(c, "rb%d" % i + unique_tag())
        rs = together([lambda: c.patch(upath(a["id"]), {"manager_id": b["id"]}),
                       lambda: c.patch(upath(b["id"]), {"manager_id": a["id"]})])
        bad = [r for r in rs if not hasattr(r, "status")]
        if not f.check(not bad, "exceptions: %s" % bad):
            break
        f.check(sorted(r.status for r in rs) == [200, 422],
                "round %d: a -> b and b -> a at once: %s" % (i, [r.status for r in rs]))
        ma = c.get(upath(a["id"])).json["manager_id"]
        mb = c.get(upath(b["id"])).json["manager_id"]
        f.check(not (ma == b["id"] and mb == a["id"]), "round %d: a and b manage each other" % i)
    f.raise_if_any()


def test_employee_id_is_unique_regardless_of_case(ctx):
    c = ctx.client()
    t = unique_tag()
    a = create_user(c, "ea" + t, employee_id="Emp-" + t.upper())
    b = create_user(c, "eb" + t)
    n1 = create_user(c, "ec" + t)    # several users without an employee id
    n2 = create_user(c, "ed" + t)
    f = Failures()
    f.check(n1["employee_id"] is None and n2["employee_id"] is None, "employee ids of n1/n2")
    snap = watch(c, a["id"], b["id"])
    case(f, "create with the same id in lower case", snap,
         lambda: c.post(USERS, user_body("ee" + t, employee_id="emp-" + t)),
         409, "employee_id", "unique")
    case(f, "PATCH b to the same id in upper case", snap,
         lambda: c.patch(upath(b["id"]), {"employee_id": "EMP-" + t.upper()}),
         409, "employee_id", "unique")
    # a keeps its own id on a PATCH that repeats it
    r = c.patch(upath(a["id"]), {"employee_id": "Emp-" + t.upper(), "position": "Clerk"})
    f.check(r.status == 200, "PATCH a with its own employee id: " + r.describe())
    # once a gives it up, b may take it
    expect_status(c.patch(upath(a["id"]), {"employee_id": None}), 200)
    r = c.patch(upath(b["id"]), {"employee_id": "EMP-" + t.upper()})
    f.check(r.status == 200 and r.json.get("employee_id") == "EMP-" + t.upper(),
            "b takes the id a released: " + r.describe())
    # simultaneous creates with one employee id in two cases: one user
    total = user_total(c)
    rs = together([lambda i=i: c.post(USERS, user_body("er%d%s" % (i, t), employee_id=(
        "race-" if i % 2 else "RACE-") + t)) for i in range(6)])
    f.check(sorted(getattr(r, "status", r) for r in rs) == [201] + [409] * 5,
            "6 simultaneous creates with one employee id: %s" % [getattr(r, "status", r)
                                                                 for r in rs])
    f.check(user_total(c) == total + 1, "users added by the race: %d" % (user_total(c) - total))
    f.raise_if_any()


def test_defaults_from_settings(ctx):
    c = ctx.client()
    t = unique_tag()
    old = settings(c)["defaults"]
    f = Failures()
    try:
        patch_settings(c, {"defaults": {"type": "guest", "status": "pending",
                                        "department": "Ops" + t, "location": "Oslo"}})
        u = create_user(c, "df" + t)
        f.check((u.get("type"), u.get("status"), u.get("department"), u.get("location")) ==
                ("guest", "pending", "Ops" + t, "Oslo"),
                "omitted fields with defaults guest/pending/Ops/Oslo: %s" % json.dumps(u)[:500])
        # given values win; an explicit null is not an omission
        v = create_user(c, "dg" + t, type="api", status="active", department="Sales",
                        location=None)
        f.check((v.get("type"), v.get("status"), v.get("department"), v.get("location")) ==
                ("api", "active", "Sales", None),
                "given api/active/Sales/null: %s" % json.dumps(v)[:500])
        # defaults apply on create only: a PATCH leaves the other fields alone
        r = c.patch(upath(v["id"]), {"position": "Clerk"})
        f.check(r.status == 200 and r.json.get("location") is None
                and r.json.get("type") == "api", "PATCH applied defaults: " + r.describe())
    finally:
        patch_settings(c, {"defaults": old})
    w = create_user(c, "dh" + t)
    f.check((w.get("type"), w.get("status"), w.get("department"), w.get("location")) ==
            ("standard", "active", None, None), "after restoring the defaults: %s" % (
                json.dumps(w)[:500],))
    f.raise_if_any()


def test_profile_has_three_sections(ctx):
    c = ctx.client()
    t = unique_tag()
    key = "pf_" + t
    fr = c.post(FIELDS, {"key": key, "label": "Cost center", "type": "text"})
    expect_status(fr, 201)
    boss = create_user(c, "jd" + t, first_name="Jane", last_name="Doe")
    u = create_user(c, **full_body(t, boss["id"], custom_fields={key: "CC-100"}))
    r = c.get(upath(u["id"], "/profile"))
    expect_status(r, 200)
    expect_eq(r.content_type(), "application/json", "profile Content-Type", r)
    p = r.json
    g = c.get(upath(u["id"])).json
    f = Failures()
    f.check(p.get("id") == u["id"] and p.get("username") == u["username"], "id/username %r/%r" % (
        p.get("id"), p.get("username")))
    f.check(p.get("personal") == {"first_name": "John", "last_name": "Smith",
                                  "email": u["email"], "phone": "+1 555-0100",
                                  "employee_id": u["employee_id"]},
            "personal %r" % (p.get("personal"),))
    f.check(p.get("organization") == {
        "department": "Sales", "position": "Sales Manager", "location": "New York",
        "manager": {"id": boss["id"], "username": boss["username"], "name": "Jane Doe"}},
        "organization %r" % (p.get("organization"),))
    f.check(p.get("system") == {"username": u["username"], "type": "standard",
                                "role": "sales_manager", "status": "active",
                                "last_login_at": None}, "system %r" % (p.get("system"),))
    f.check(p.get("custom_fields") == {key: "CC-100"}, "custom_fields %r" % (
        p.get("custom_fields"),))
    f.check(p.get("user") == g, "user %r differs from GET %r" % (p.get("user"), g))
    # no manager: null; changes show at once
    expect_status(c.patch(upath(u["id"]), {"manager_id": None, "first_name": "Johnny"}), 200)
    p2 = c.get(upath(u["id"], "/profile")).json or {}
    f.check((p2.get("organization") or {}).get("manager", "absent") is None,
            "manager without one: %r" % (p2.get("organization"),))
    f.check((p2.get("personal") or {}).get("first_name") == "Johnny",
            "profile after PATCH: %r" % (p2.get("personal"),))
    r = c.get(upath(987654321, "/profile"))
    f.check(r.status == 404 and r.content_type() == "application/problem+json",
            "profile of an unknown user: " + r.describe())
    f.raise_if_any()
