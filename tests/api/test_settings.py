"""Settings -> Users -> Settings (docs/design/users-contract.md): GET/PATCH
/api/v1/settings/users with ETag and If-Match, the defaults, unknown keys (400),
bad values (422 naming the path), invalid regular expressions (422 rule
`pattern`), every validation setting taking effect on user create and PATCH,
the defaults section, options.allow_username_change, the licence limit (create
active, activate, reactivate, unlock refused at the limit with the exact
detail, pending creation allowed; exact under concurrent requests), and the
`settings.update` audit event.

Each test that changes a setting puts it back in a finally block, so the
module's other tests see the defaults. The audit events of settings changes
have no API yet; they are counted in the server's database (audit_events)."""

import contextlib
import json
import sqlite3
import threading

from harness import (Failures, admin_user, check_problem, create_user, expect, expect_eq,
                     expect_status, unique_tag, user_body, user_total)

USERS = "/api/v1/users"
SETTINGS = "/api/v1/settings/users"

DEFAULTS = {
    "validation": {"username_min_length": 2, "username_max_length": 64,
                   "username_pattern": None,
                   "reserved_usernames": ["admin", "administrator", "root", "system", "support",
                                          "api", "null"],
                   "email_allowed_domains": [],
                   "phone_pattern": r"^\+?[0-9][0-9 ().-]{5,24}$",
                   "employee_id_pattern": None, "require_department": False,
                   "require_manager": False, "require_role": False},
    "defaults": {"type": "standard", "status": "active", "department": None, "location": None,
                 "role": "standard_user"},
    "options": {"self_service_profile_edit": True, "send_invite_by_default": False,
                "require_reset_by_default": False, "show_employee_id": True,
                "allow_username_change": True},
    "licence": {"max_active_users": None},
}


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def get_settings(c):
    r = c.get(SETTINGS)
    expect_status(r, 200)
    return r.json


@contextlib.contextmanager
def changed(c, patch):
    """Applies a settings PATCH, yields the new settings, puts the touched keys back."""
    cur = get_settings(c)
    restore = {sec: {k: cur[sec][k] for k in vals} for sec, vals in patch.items()}
    r = c.patch(SETTINGS, patch)
    expect_status(r, 200)
    try:
        yield r.json
    finally:
        expect_status(c.patch(SETTINGS, restore), 200)


def audit_count(ctx, action):
    url = ctx.server.db_url
    if url.startswith("sqlite:"):
        return audit(ctx, action)[0]
    return int(ctx.suite.pg().psql(url.rsplit("/", 1)[1], "SELECT count(*) FROM audit_events "
                                   "WHERE action = '%s'" % action).strip())


def audit(ctx, action):
    """(count, newest after_json) of audit events with this action, read from the DB."""
    url = ctx.server.db_url
    if url.startswith("sqlite:"):
        con = sqlite3.connect("file:%s?mode=ro" % ctx.sqlite_path(url), uri=True, timeout=10)
        try:
            n = con.execute("SELECT count(*) FROM audit_events WHERE action = ?",
                            (action,)).fetchone()[0]
            row = con.execute("SELECT after_json FROM audit_events WHERE action = ? "
                              "ORDER BY id DESC LIMIT 1", (action,)).fetchone()
        finally:
            con.close()
        return n, (row[0] if row else None)
    db = url.rsplit("/", 1)[1]
    pg = ctx.suite.pg()
    n = int(pg.psql(db, "SELECT count(*) FROM audit_events WHERE action = '%s'" % action).strip())
    last = pg.psql(db, "SELECT after_json FROM audit_events WHERE action = '%s' "
                       "ORDER BY id DESC LIMIT 1" % action).strip()
    return n, (last or None)


def settings_watch(ctx):
    c = ctx.client()

    def snap():
        r = c.get(SETTINGS)
        return {"settings": (r.status, r.json, r.header("ETag")),
                "audit": audit_count(ctx, "settings.update")}
    return snap


def user_state(c, uid):
    g = c.get(upath(uid))
    h = c.get(upath(uid, "/history"))
    return {"user": (g.status, g.json, g.header("ETag")),
            "history": [e.get("id") for e in (h.json or {}).get("items", [])]}


def watch(c, *uids):
    return lambda: {"total": user_total(c), "users": [user_state(c, u) for u in uids]}


def case(f, label, snap, do, status, field=None, rule=None, detail=None, field_prefix=False):
    """A request that must be refused and change nothing. rule None: any
    non-empty rule (the contract names none). field_prefix: the field may be
    the path itself or an element of it (path[0])."""
    before = snap()
    try:
        r = do()
        b = check_problem(r, status)
        errs = b.get("errors") or []
        if field is not None:
            rules = rule if isinstance(rule, (tuple, list)) else (rule,)
            hit = [e for e in errs if isinstance(e, dict) and (
                e.get("field") == field or (field_prefix and str(e.get("field", "")).startswith(
                    field + "[")))]
            expect(hit, "want errors[] field=%r: %s" % (field, r.describe()))
            expect(any((rule is None and isinstance(e.get("rule"), str) and e["rule"]) or
                       e.get("rule") in rules for e in hit),
                   "want errors[] field=%r rule=%r: %s" % (field, rule, r.describe()))
        if detail is not None:
            expect_eq(b.get("detail"), detail, "problem detail", r)
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    after = snap()
    if after != before:
        diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        f.items.append("%s: the refused request changed state: %s" % (
            label, json.dumps(diff, ensure_ascii=False)[:800]))


def together(n, fn):
    """Runs fn(i) in n threads released at once; returns the results in order."""
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        try:
            barrier.wait(5)
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out


def active_count(c):
    return user_total(c, "status=active")


def limit_detail(n):
    return "licence limit reached: %d of %d active users" % (n, n)


# ---------------------------------------------------------------------------


def test_defaults_and_etag(ctx):
    c = ctx.client()
    r = c.get(SETTINGS)
    expect_status(r, 200)
    expect_eq(r.content_type(), "application/json", "Content-Type", r)
    b = dict(r.json)
    v = b.pop("version", None)
    expect(isinstance(v, int) and v >= 1, "version %r: %s" % (v, r.describe()))
    expect_eq(r.header("ETag"), '"%d"' % v, "ETag", r)
    f = Failures()
    for sec, vals in DEFAULTS.items():
        f.check(b.get(sec) == vals, "%s = %s, want %s" % (sec, json.dumps(b.get(sec)),
                                                        json.dumps(vals)))
    f.check(set(b) == set(DEFAULTS), "sections %s" % sorted(b))
    f.raise_if_any()


def test_patch_merges_honours_if_match_and_is_audited(ctx):
    c = ctx.client()
    s0 = c.get(SETTINGS)
    v0 = s0.json["version"]
    n0, _ = audit(ctx, "settings.update")
    f = Failures()
    try:
        r = c.patch(SETTINGS, {"validation": {"username_min_length": 3}},
                    headers={"If-Match": '"%d"' % v0})
        expect_status(r, 200)
        want = json.loads(json.dumps(s0.json))
        want["validation"]["username_min_length"] = 3
        want["version"] = v0 + 1
        f.check(r.json == want, "merged settings %s, want %s" % (json.dumps(r.json),
                                                               json.dumps(want)))
        f.check(r.header("ETag") == '"%d"' % (v0 + 1), "ETag %r" % r.header("ETag"))
        g = c.get(SETTINGS)
        f.check(g.json == r.json and g.header("ETag") == r.header("ETag"), "GET after PATCH")
        n1, last = audit(ctx, "settings.update")
        f.check(n1 == n0 + 1, "%d settings.update events for one PATCH" % (n1 - n0))
        f.check(last is not None and "username_min_length" in last,
                "the settings.update event does not show the change: %r" % (last,))
        # arrays are replaced, nulls set null
        r = c.patch(SETTINGS, {"validation": {"reserved_usernames": ["root", "helpdesk"],
                                              "username_pattern": "^[a-z]"},
                               "licence": {"max_active_users": 250}})
        expect_status(r, 200)
        f.check(r.json["validation"]["reserved_usernames"] == ["root", "helpdesk"],
                "reserved_usernames %r" % r.json["validation"]["reserved_usernames"])
        f.check(r.json["licence"]["max_active_users"] == 250, "max_active_users")
        r = c.patch(SETTINGS, {"validation": {"username_pattern": None},
                               "licence": {"max_active_users": None}})
        expect_status(r, 200)
        f.check(r.json["validation"]["username_pattern"] is None
                and r.json["licence"]["max_active_users"] is None, "null clears: " +
                r.describe())
        # stale If-Match: 412 and nothing changes
        snap = settings_watch(ctx)
        before = snap()
        r = c.patch(SETTINGS, {"validation": {"username_min_length": 4}},
                    headers={"If-Match": '"%d"' % v0})
        f.check(r.status == 412 and r.content_type() == "application/problem+json",
                "stale If-Match: " + r.describe())
        f.check(snap() == before, "a stale If-Match changed the settings")
    finally:
        expect_status(c.patch(SETTINGS, {"validation": DEFAULTS["validation"],
                                         "licence": DEFAULTS["licence"]}), 200)
    f.raise_if_any()


def test_unknown_keys_bad_values_and_bad_patterns(ctx):
    c = ctx.client()
    snap = settings_watch(ctx)
    f = Failures()
    P = lambda body: (lambda: c.patch(SETTINGS, body))  # noqa: E731
    for label, body, status, field, rule in (
            ("unknown section", {"display": {}}, 400, "display", "unknown_field"),
            ("unknown validation key", {"validation": {"username_min": 3}}, 400,
             "validation.username_min", "unknown_field"),
            ("unknown option", {"options": {"allow_username_changes": False}}, 400,
             "options.allow_username_changes", "unknown_field"),
            ("valid key next to an unknown one",
             {"validation": {"username_min_length": 3, "bogus": 1}}, 400, "validation.bogus",
             "unknown_field"),
            ("min length as a string", {"validation": {"username_min_length": "3"}}, 400,
             "validation.username_min_length", "type"),
            ("require_department as a string", {"validation": {"require_department": "yes"}},
             400, "validation.require_department", "type"),
            ("reserved_usernames not a list", {"validation": {"reserved_usernames": "root"}},
             400, "validation.reserved_usernames", "type"),
            ("option as a number", {"options": {"allow_username_change": 0}}, 400,
             "options.allow_username_change", "type"),
            ("licence as a string", {"licence": {"max_active_users": "ten"}}, 400,
             "licence.max_active_users", "type"),
            ("section not an object", {"validation": 5}, 400, "validation", "type"),
            ("min length 0", {"validation": {"username_min_length": 0}}, 422,
             "validation.username_min_length", None),
            ("min length -3", {"validation": {"username_min_length": -3}}, 422,
             "validation.username_min_length", None),
            ("max length 0", {"validation": {"username_max_length": 0}}, 422,
             "validation.username_max_length", None),
            ("negative licence", {"licence": {"max_active_users": -1}}, 422,
             "licence.max_active_users", None),
            ("default type", {"defaults": {"type": "superuser"}}, 422, "defaults.type", "enum"),
            ("default status locked", {"defaults": {"status": "locked"}}, 422, "defaults.status",
             "enum"),
            ("default department too long", {"defaults": {"department": "d" * 101}}, 422,
             "defaults.department", None),
            ("invalid username_pattern", {"validation": {"username_pattern": "([a-z"}}, 422,
             "validation.username_pattern", "pattern"),
            ("invalid phone_pattern", {"validation": {"phone_pattern": "(+"}}, 422,
             "validation.phone_pattern", "pattern"),
            ("invalid employee_id_pattern", {"validation": {"employee_id_pattern": "[0-9"}},
             422, "validation.employee_id_pattern", "pattern"),
            ("valid key next to an invalid regex",
             {"validation": {"username_min_length": 3, "username_pattern": "a{2,1}"}}, 422,
             "validation.username_pattern", "pattern")):
        case(f, label, snap, P(body), status, field, rule)
    case(f, "an allowed domain that is no domain", snap,
         P({"validation": {"email_allowed_domains": ["not a domain!"]}}), 422,
         "validation.email_allowed_domains", None, field_prefix=True)
    # min above max: one of the two is named
    before = snap()
    r = c.patch(SETTINGS, {"validation": {"username_min_length": 10, "username_max_length": 5}})
    errs = (r.json or {}).get("errors") or []
    f.check(r.status == 422 and any(e.get("field") in ("validation.username_min_length",
                                                       "validation.username_max_length")
                                    for e in errs), "min 10 > max 5: " + r.describe())
    f.check(snap() == before, "min 10 > max 5 changed the settings")
    case(f, "version in the body", snap, P({"version": 99}), 400, "version",
         ("read_only", "unknown_field"))
    case(f, "body not an object", snap, lambda: c.request(
        "PATCH", SETTINGS, data="[]", headers={"Content-Type": "application/json"}), 400,
         "body", "type")
    f.raise_if_any()


def test_username_length_settings(ctx):
    c = ctx.client()
    t = unique_tag(12)
    u = create_user(c, "ulen" + t[:6])
    f = Failures()
    with changed(c, {"validation": {"username_min_length": 5, "username_max_length": 12}}):
        snap = watch(c, u["id"])
        case(f, "4 characters", snap, lambda: c.post(USERS, user_body(t[:4])), 422, "username",
             "min_length")
        case(f, "13 characters", snap, lambda: c.post(USERS, user_body("m" + t)), 422,
             "username", "max_length")
        case(f, "PATCH to 4 characters", snap,
             lambda: c.patch(upath(u["id"]), {"username": t[4:8]}), 422, "username",
             "min_length")
        for name in (t[:5], "x" + t[:11]):
            r = c.post(USERS, user_body(name))
            f.check(r.status == 201, "%d characters within 5..12: %s" % (len(name), r.describe()))
    # back to 2..64
    r = c.post(USERS, user_body(t[8:11]))
    f.check(r.status == 201, "3 characters after restoring: " + r.describe())
    f.raise_if_any()


def test_username_pattern_setting(ctx):
    c = ctx.client()
    t = unique_tag()
    u = create_user(c, "up" + t)
    f = Failures()
    with changed(c, {"validation": {"username_pattern": r"^[a-z]+\.[a-z]+$"}}):
        snap = watch(c, u["id"])
        case(f, "no dot", snap, lambda: c.post(USERS, user_body("jsmith" + t)), 422, "username",
             "pattern")
        case(f, "digits", snap, lambda: c.post(USERS, user_body("j1." + t)), 422, "username",
             "pattern")
        case(f, "PATCH to a name without a dot", snap,
             lambda: c.patch(upath(u["id"]), {"username": "nodot" + t}), 422, "username",
             "pattern")
        r = c.post(USERS, user_body("john." + t))
        f.check(r.status == 201, "john.%s under the pattern: %s" % (t, r.describe()))
        # other fields of a user whose name does not match may still change
        r = c.patch(upath(u["id"]), {"first_name": "Still"})
        f.check(r.status == 200, "PATCH first_name of an old user: " + r.describe())
    r = c.post(USERS, user_body("jsmith" + t))
    f.check(r.status == 201, "after clearing the pattern: " + r.describe())
    f.raise_if_any()


def test_reserved_usernames(ctx):
    c = ctx.client()
    t = unique_tag()
    u = create_user(c, "rs" + t)
    f = Failures()
    snap = watch(c, u["id"])
    for name in ("ADMINISTRATOR", "Root", "system", "Support", "API", "NULL", "nuLL"):
        case(f, "default reserved %s" % name, snap, lambda name=name: c.post(USERS, user_body(
            name, email="r%s%s@example.com" % (name.lower(), t))), 422, "username", "reserved")
    case(f, "PATCH to Root", snap, lambda: c.patch(upath(u["id"]), {"username": "Root"}), 422,
         "username", "reserved")
    # the first-run admin is exempt
    admin = admin_user(c)
    r = c.patch(upath(admin["id"]), {"username": "admin", "last_name": admin["last_name"]})
    f.check(r.status == 200, "PATCH the first-run admin, repeating its username: " +
            r.describe())
    with changed(c, {"validation": {"reserved_usernames": ["Helpdesk", "ops"]}}):
        snap = watch(c, u["id"])
        for name in ("helpdesk", "HELPDESK", "OPS", "Ops"):
            case(f, "custom reserved %s" % name, snap, lambda name=name: c.post(
                USERS, user_body(name, email="c%s%s@example.com" % (name.lower(), t))), 422,
                "username", "reserved")
        r = c.post(USERS, user_body("system", email="sys%s@example.com" % t))
        f.check(r.status == 201, "'system' once the list no longer holds it: " + r.describe())
    f.raise_if_any()


def test_email_allowed_domains(ctx):
    c = ctx.client()
    t = unique_tag()
    u = create_user(c, "ed" + t)
    f = Failures()
    with changed(c, {"validation": {"email_allowed_domains": ["example.com",
                                                              "Corp.Example.ORG"]}}):
        snap = watch(c, u["id"])
        for email in ("x%s@other.org" % t, "x%s@example.com.evil.org" % t,
                      "x%s@corp.example.org.uk" % t, "x%s@notexample.com" % t):
            case(f, "email %s" % email, snap, lambda email=email: c.post(
                USERS, user_body("e" + unique_tag(), email=email)), 422, "email", "domain")
        case(f, "PATCH email to another domain", snap,
             lambda: c.patch(upath(u["id"]), {"email": "w%s@other.org" % t}), 422, "email",
             "domain")
        for email in ("y%s@CORP.example.org" % t, "z%s@Example.COM" % t):
            r = c.post(USERS, user_body("e" + unique_tag(), email=email))
            f.check(r.status == 201, "allowed %s: %s" % (email, r.describe()))
    r = c.post(USERS, user_body("e" + unique_tag(), email="q%s@other.org" % t))
    f.check(r.status == 201, "any domain once the list is empty: " + r.describe())
    f.raise_if_any()


def test_phone_and_employee_id_patterns(ctx):
    c = ctx.client()
    t = unique_tag()
    u = create_user(c, "pp" + t, phone="+1 555-0100")
    f = Failures()
    snap = watch(c, u["id"])
    case(f, "default phone pattern: letters", snap,
         lambda: c.post(USERS, user_body("p" + unique_tag(), phone="abc12345")), 422, "phone",
         "format")
    with changed(c, {"validation": {"phone_pattern": r"^\+46[0-9]{7,9}$",
                                    "employee_id_pattern": "^EMP[0-9]{3}$"}}):
        snap = watch(c, u["id"])
        case(f, "phone +1 under a Swedish pattern", snap,
             lambda: c.post(USERS, user_body("p" + unique_tag(), phone="+1 555-0100")), 422,
             "phone", "format")
        case(f, "PATCH phone under a Swedish pattern", snap,
             lambda: c.patch(upath(u["id"]), {"phone": "+1 555-0199"}), 422, "phone", "format")
        for eid in ("X1", "EMP12", "EMP1234", "xEMP123"):
            case(f, "employee id %s" % eid, snap, lambda eid=eid: c.post(
                USERS, user_body("p" + unique_tag(), employee_id=eid)), 422, "employee_id",
                "pattern")
        case(f, "PATCH employee id X9", snap,
             lambda: c.patch(upath(u["id"]), {"employee_id": "X9"}), 422, "employee_id",
             "pattern")
        r = c.post(USERS, user_body("p" + unique_tag(), phone="+46701234567",
                                    employee_id="EMP%03d" % (sum(map(ord, t)) % 1000)))
        f.check(r.status == 201, "matching phone and employee id: " + r.describe())
        r = c.patch(upath(u["id"]), {"first_name": "Kept"})
        f.check(r.status == 200, "PATCH another field of a user with an old phone: " +
                r.describe())
    r = c.post(USERS, user_body("p" + unique_tag(), phone="+1 555-0100", employee_id="X" + t))
    f.check(r.status == 201, "after restoring the patterns: " + r.describe())
    f.raise_if_any()


def test_require_department_manager_and_role(ctx):
    c = ctx.client()
    t = unique_tag()
    boss = create_user(c, "rb" + t)
    u = create_user(c, "ru" + t, department="Sales", manager_id=boss["id"], role="clerk")
    f = Failures()
    # With no default role (defaults.role null) a required role must be given.
    with changed(c, {"validation": {"require_department": True, "require_manager": True,
                                    "require_role": True}, "defaults": {"role": None}}):
        snap = watch(c, u["id"])
        for field in ("department", "manager_id", "role"):
            case(f, "create without %s" % field, snap,
                 lambda: c.post(USERS, user_body("r" + unique_tag())), 422, field, "required")
            case(f, "PATCH %s to null" % field, snap,
                 lambda field=field: c.patch(upath(u["id"]), {field: None}), 422, field,
                 "required")
        r = c.post(USERS, user_body("r" + unique_tag(), department="Ops", manager_id=boss["id"],
                                    role="clerk"))
        f.check(r.status == 201, "create with all three: " + r.describe())
        # each alone
        with changed(c, {"validation": {"require_manager": False, "require_role": False}}):
            r = c.post(USERS, user_body("r" + unique_tag(), department="Ops"))
            f.check(r.status == 201, "only department required, given: " + r.describe())
    r = c.post(USERS, user_body("r" + unique_tag()))
    f.check(r.status == 201, "none required after restoring: " + r.describe())
    f.raise_if_any()


def test_defaults_section_applies_on_create(ctx):
    c = ctx.client()
    f = Failures()
    with changed(c, {"defaults": {"type": "guest", "status": "pending", "location": "Oslo"}}) as s:
        f.check(s["defaults"] == {"type": "guest", "status": "pending", "department": None,
                                  "location": "Oslo", "role": "standard_user"},
                "defaults %r" % s["defaults"])
        u = create_user(c, "dd" + unique_tag())
        f.check((u["type"], u["status"], u.get("location"), u.get("department")) ==
                ("guest", "pending", "Oslo", None), "user under the defaults: %s" % (
                    json.dumps(u)[:400],))
    u = create_user(c, "dd" + unique_tag())
    f.check((u["type"], u["status"], u.get("location")) == ("standard", "active", None),
            "user after restoring: %s" % json.dumps(u)[:400])
    f.raise_if_any()


def test_allow_username_change_option(ctx):
    c = ctx.client()
    t = unique_tag()
    u = create_user(c, "ac" + t)
    f = Failures()
    with changed(c, {"options": {"allow_username_change": False}}):
        snap = watch(c, u["id"])
        case(f, "rename while names are immutable", snap,
             lambda: c.patch(upath(u["id"]), {"username": "acx" + t}), 422, "username",
             "immutable")
        case(f, "rename + another field", snap,
             lambda: c.patch(upath(u["id"]), {"username": "acy" + t, "first_name": "New"}),
             422, "username", "immutable")
        r = c.patch(upath(u["id"]), {"first_name": "Other"})
        f.check(r.status == 200, "PATCH first_name: " + r.describe())
        r = c.post(USERS, user_body("acz" + t))
        f.check(r.status == 201, "create is unaffected: " + r.describe())
    r = c.patch(upath(u["id"]), {"username": "acw" + t})
    f.check(r.status == 200 and r.json.get("username") == "acw" + t,
            "rename once allowed again: " + r.describe())
    f.raise_if_any()


def test_licence_limit(ctx):
    c = ctx.client()
    t = unique_tag(4)
    pend = create_user(c, "lp" + t, status="pending")
    inact = create_user(c, "li" + t)
    expect_status(c.post(upath(inact["id"], "/deactivate"), {"reason": "temporary_leave"}), 200)
    locked = create_user(c, "ll" + t)
    expect_status(c.post(upath(locked["id"], "/lock"), {}), 200)
    spare = create_user(c, "ls" + t)
    f = Failures()
    try:
        n = active_count(c)
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": n}}), 200)
        snap = watch(c, pend["id"], inact["id"], locked["id"])
        for label, do in (
                ("create active", lambda: c.post(USERS, user_body("la" + unique_tag(),
                                                                  status="active"))),
                ("create with the default status", lambda: c.post(USERS, user_body(
                    "la" + unique_tag()))),
                ("activate", lambda: c.post(upath(pend["id"], "/activate"), {})),
                ("reactivate", lambda: c.post(upath(inact["id"], "/reactivate"), {})),
                ("unlock", lambda: c.post(upath(locked["id"], "/unlock"), {}))):
            case(f, "at the limit: " + label, snap, do, 409, "status", "licence_limit",
                 detail=limit_detail(n))
        r = c.post(USERS, user_body("lq" + unique_tag(), status="pending"))
        f.check(r.status == 201 and r.json.get("status") == "pending",
                "create pending at the limit: " + r.describe())
        # one more seat: one activation fits, the next is refused with the new figures
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": n + 1}}), 200)
        r = c.post(upath(pend["id"], "/activate"), {})
        f.check(r.status == 200, "activate with a free seat: " + r.describe())
        case(f, "reactivate at the raised limit", watch(c, inact["id"]),
             lambda: c.post(upath(inact["id"], "/reactivate"), {}), 409, "status",
             "licence_limit", detail=limit_detail(n + 1))
        # a deactivation frees a seat
        expect_status(c.post(upath(spare["id"], "/deactivate"), {"reason": "left_company"}), 200)
        r = c.post(upath(locked["id"], "/unlock"), {})
        f.check(r.status == 200, "unlock after a seat was freed: " + r.describe())
        f.check(active_count(c) == n + 1, "active users %d, limit %d" % (active_count(c), n + 1))
    finally:
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": None}}), 200)
    r = c.post(upath(inact["id"], "/reactivate"), {})
    f.check(r.status == 200, "reactivate without a limit: " + r.describe())
    f.raise_if_any()


def test_licence_limit_holds_under_concurrent_requests(ctx):
    c = ctx.client()
    t = unique_tag(4)
    pend = [create_user(c, "cp%d%s" % (i, t), status="pending") for i in range(10)]
    f = Failures()
    try:
        n = active_count(c)
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": n + 3}}), 200)
        rs = together(10, lambda i: c.post(upath(pend[i]["id"], "/activate"), {}))
        bad = [r for r in rs if not hasattr(r, "status")]
        expect(not bad, "exceptions: %s" % bad)
        f.check(sorted(r.status for r in rs) == [200] * 3 + [409] * 7,
                "10 activations with 3 seats left: statuses %s" % sorted(r.status for r in rs))
        for r in rs:
            if r.status == 409:
                errs = (r.json or {}).get("errors") or []
                f.check(any(e.get("field") == "status" and e.get("rule") == "licence_limit"
                            for e in errs) and (r.json or {}).get("detail") ==
                        limit_detail(n + 3), "a refused activation: " + r.describe())
        f.check(active_count(c) == n + 3, "active users %d after the race, limit %d" % (
            active_count(c), n + 3))
        won = sum(1 for p in pend if c.get(upath(p["id"])).json["status"] == "active")
        f.check(won == 3, "%d of the 10 pending users are active, want 3" % won)
        # creates of active users race the same way
        m = active_count(c)
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": m + 2}}), 200)
        total = user_total(c)
        rs = together(8, lambda i: c.post(USERS, user_body("cc%d%s" % (i, t), status="active")))
        bad = [r for r in rs if not hasattr(r, "status")]
        expect(not bad, "exceptions: %s" % bad)
        f.check(sorted(r.status for r in rs) == [201] * 2 + [409] * 6,
                "8 active creates with 2 seats left: statuses %s" % sorted(r.status for r in rs))
        f.check(active_count(c) == m + 2 and user_total(c) == total + 2,
                "after the create race: %d active (limit %d), %d new users" % (
                    active_count(c), m + 2, user_total(c) - total))
        # activate, reactivate and unlock race for the same seats
        us = [create_user(c, "cm%d%s" % (i, t), status="pending") for i in range(3)]
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": None}}), 200)
        us += [create_user(c, "cn%d%s" % (i, t)) for i in range(6)]
        for u in us[3:6]:
            expect_status(c.post(upath(u["id"], "/deactivate"), {"reason": "temporary_leave"}),
                          200)
        for u in us[6:]:
            expect_status(c.post(upath(u["id"], "/lock"), {}), 200)
        m = active_count(c)
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": m + 4}}), 200)
        acts = ["activate"] * 3 + ["reactivate"] * 3 + ["unlock"] * 3
        rs = together(9, lambda i: c.post(upath(us[i]["id"], "/" + acts[i]), {}))
        f.check(sorted(getattr(r, "status", r) for r in rs) == [200] * 4 + [409] * 5,
                "activate/reactivate/unlock of 9 users with 4 seats: %s" % [
                    getattr(r, "status", r) for r in rs])
        f.check(active_count(c) == m + 4, "active users %d after the mixed race, limit %d" % (
            active_count(c), m + 4))
    finally:
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": None}}), 200)
    f.raise_if_any()


def test_concurrent_patches_with_one_if_match_let_one_win(ctx):
    c = ctx.client()
    s0 = get_settings(c)
    n0, _ = audit(ctx, "settings.update")
    f = Failures()
    try:
        rs = together(4, lambda i: c.patch(SETTINGS, {"validation": {
            "username_min_length": 2 + i}}, headers={"If-Match": '"%d"' % s0["version"]}))
        st = sorted(getattr(r, "status", r) for r in rs)
        f.check(st == [200, 412, 412, 412], "4 PATCHes with one If-Match: %s" % st)
        s1 = get_settings(c)
        f.check(s1["version"] == s0["version"] + 1, "version %d after %d" % (
            s1["version"], s0["version"]))
        winner = [r for r in rs if getattr(r, "status", None) == 200]
        if winner:
            f.check(s1 == winner[0].json, "the settings are not the winner's: %s vs %s" % (
                json.dumps(s1)[:300], winner[0].text[:300]))
        f.check(audit(ctx, "settings.update")[0] == n0 + 1, "settings.update events: %d new" % (
            audit(ctx, "settings.update")[0] - n0))
    finally:
        expect_status(c.patch(SETTINGS, {"validation": {"username_min_length": 2}}), 200)
    f.raise_if_any()
