"""The route matrix (docs/design/access-contract.md, "Authorisation on every
route"): every route `roster routes` prints (`METHOD PATH RESOURCE LEVEL`),
called by each of

  Administrator (type admin), User Manager (role user_manager), Auditor (role
  auditor), Standard (role standard_user), Guest (type guest, role guest), API
  user (type api, role standard_user), an inactive user's key, no credentials,

is allowed (any answer but 401/403, and no 5xx) when the caller's effective
level on the route's declared resource reaches the declared level, and
otherwise refused: 401 (problem, WWW-Authenticate: Bearer) without
credentials or with an inactive user's key, else 403 with the problem detail
`you need <level> access to <resource>`, changing nothing. The callers'
levels come from the contract's built-in roles and type bounds. Public routes
(`/healthz`, `/metrics`) are open to everyone.

Every route needs an entry in ROUTES below (how to call it, on which fresh
target, and what to compare before and after): a route that `roster routes`
prints and the table lacks fails the test, so a new route forces an update
here; a table entry the server no longer prints fails too.

Self-service exceptions (a user reads their own record, profile and
permissions and manages their own API keys) are tested separately with a
caller whose role grants nothing. In the matrix every target is another
user's, except GET /api/v1/api-keys, which lists the caller's own keys and
so is open to every authenticated caller."""

import json
import re
import sqlite3

from harness import (Failures, check_problem, create_user, expect, expect_status, run,
                     unique_tag, user_body)

USERS = "/api/v1/users"
LEVELS = ("none", "read", "write", "admin")
BUILTIN_RESOURCES = ("users", "roles", "groups", "settings", "audit", "reports", "import",
                     "export", "api_keys")
CALLERS = ("administrator", "user_manager", "auditor", "standard", "guest", "api", "inactive",
           "anonymous")


def _levels(d):
    return {r: d.get(r, "none") for r in BUILTIN_RESOURCES}


# what each caller holds, from the contract (registered resources: none but for
# the admin type; inactive users and no credentials: 401 before any level)
CALLER_LEVELS = {
    "administrator": {r: "admin" for r in BUILTIN_RESOURCES},
    "user_manager": _levels({"users": "write", "groups": "write", "roles": "read",
                             "import": "write", "export": "write", "reports": "read",
                             "audit": "read", "api_keys": "read", "settings": "read"}),
    "auditor": {r: "read" for r in BUILTIN_RESOURCES},
    "standard": _levels({"users": "read", "groups": "read"}),
    "guest": _levels({"users": "read"}),
    "api": _levels({"users": "read", "groups": "read"}),
}


def put(c, path, body, **kw):
    return c.request("PUT", path, json_body=body, **kw)


def new_key(c, username):
    r = c.post("/api/v1/api-keys", {"name": "mx-" + unique_tag(), "username": username})
    expect_status(r, 201)
    return r.json


def read_routes(ctx):
    p = run([ctx.binary, "routes"], timeout=30)
    out = []
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        expect(len(parts) == 4, "`roster routes` line %r is not METHOD PATH RESOURCE LEVEL" % line)
        out.append(tuple(parts))
    expect(out, "`roster routes` printed nothing")
    return out


# -- audit events of given requests, read from the server's database

def audited_request_ids(ctx, request_ids):
    """The request ids among these that wrote an audit event."""
    ids = sorted(set(i for i in request_ids if i))
    if not ids:
        return set()
    url = ctx.server.db_url
    if url.startswith("sqlite:"):
        con = sqlite3.connect("file:%s?mode=ro" % ctx.sqlite_path(url), uri=True, timeout=10)
        try:
            found = set()
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                found |= {row[0] for row in con.execute(
                    "SELECT request_id FROM audit_events WHERE request_id IN (%s)" %
                    ",".join("?" * len(part)), part)}
            return found
        finally:
            con.close()
    for i in ids:
        expect(re.match(r"^[0-9a-f]{32}$", i), "request id %r" % i)
    out = ctx.suite.pg().psql(url.rsplit("/", 1)[1], "SELECT request_id FROM audit_events WHERE "
                              "request_id IN (%s)" % ",".join("'%s'" % i for i in ids))
    return {line.strip() for line in out.splitlines() if line.strip()}


# ---------------------------------------------------------------------------
# fixtures: the callers and the targets


class Env:
    def __init__(self, ctx):
        self.ctx = ctx
        self.c = ctx.client()
        c = self.c
        t = unique_tag(4)
        self.t = t
        spec = {"administrator": {"type": "admin"},
                "user_manager": {"role": "user_manager"},
                "auditor": {"role": "auditor"},
                "standard": {"role": "standard_user"},
                "guest": {"type": "guest", "role": "guest"},
                "api": {"type": "api", "role": "standard_user"},
                "inactive": {"role": "user_manager"}}
        self.users, self.tokens = {}, {}
        for name, kw in spec.items():
            u = create_user(c, "mx%s%s" % (name[:5].replace("_", ""), t), **kw)
            self.users[name] = u
            self.tokens[name] = new_key(c, u["username"])["token"]
        expect_status(c.post("%s/%d/deactivate" % (USERS, self.users["inactive"]["id"]),
                             {"reason": "left_company"}), 200)
        self.tokens["anonymous"] = None
        # shared, read-only targets
        self.target = create_user(c, "mxt" + t, role="standard_user")
        self.group = self.new_group(members=[self.target["id"]])
        self.role = self.new_role()
        r = c.post("/api/v1/settings/users/fields", {"key": "mx_" + t, "label": "Matrix",
                                                     "type": "text"})
        expect_status(r, 201)
        self.field = r.json
        # a user who signs in (the public login route is called with good credentials)
        self.pw_password = "matrix sign-in phrase " + t
        self.pw_user = create_user(c, "mxpw" + t, password=self.pw_password)
        self.n = 0
        self.refused = {}   # X-Request-Id of a refused request -> its label

    def tag(self):
        self.n += 1
        return "%s%d%s" % (self.t, self.n, unique_tag(3))

    def client(self, caller):
        return self.ctx.client(token=self.tokens[caller])

    # fresh targets
    def new_user(self, state="active"):
        c = self.c
        u = create_user(c, "mxu" + self.tag(), status="pending" if state == "pending" else
                        "active")
        if state == "inactive":
            expect_status(c.post("%s/%d/deactivate" % (USERS, u["id"]), {"reason": "other",
                                                                         "note": "matrix"}), 200)
        elif state == "locked":
            expect_status(c.post("%s/%d/lock" % (USERS, u["id"]), {}), 200)
        return u

    def new_group(self, members=(), roles=()):
        r = self.c.post("/api/v1/groups", {"name": "Matrix " + unique_tag(10),
                                           "roles": list(roles)})
        expect_status(r, 201)
        if members:
            m = self.c.post("/api/v1/groups/%d/members" % r.json["id"],
                            {"user_ids": list(members)})
            expect(m.status in (200, 201, 204), "add members: " + m.describe())
        return r.json

    def new_role(self):
        r = self.c.post("/api/v1/roles", {"key": "mx" + unique_tag(10), "name": "Matrix",
                                          "permissions": {}})
        expect_status(r, 201)
        return r.json

    # snapshots
    def get(self, path):
        r = self.c.get(path)
        return (r.status, r.json if r.json is not None else r.text, r.header("ETag"))

    def user_snap(self, uid):
        return lambda: (self.get("%s/%d" % (USERS, uid)), self.get("%s/%d/roles" % (USERS, uid)))

    def list_snap(self, path):
        return lambda: self.get(path)

    def keys_snap(self):
        def snap():
            r = self.c.get("/api/v1/api-keys")
            items = [{k: v for k, v in x.items() if k != "last_used_at"}
                     for x in (r.json or {}).get("items", [])]
            return (r.status, json.dumps(items, sort_keys=True))
        return snap

    def total_snap(self):
        return lambda: self.get(USERS + "?limit=1")[1].get("total")


class Req:
    def __init__(self, path, body=None, snap=None, has_body=None):
        self.path = path
        self.body = body
        self.has_body = body is not None if has_body is None else has_body
        self.snap = snap


def _u(e):
    return e.target["id"]


# (METHOD, PATH) -> builder(env) -> Req. Writes get a fresh target each call.
ROUTES = {
    ("GET", "/healthz"): lambda e: Req("/healthz"),
    ("GET", "/metrics"): lambda e: Req("/metrics"),
    ("GET", "/api/v1/users"): lambda e: Req(USERS + "?limit=1"),
    ("POST", "/api/v1/users"): lambda e: Req(USERS, user_body("mxn" + e.tag()),
                                             e.total_snap()),
    ("GET", "/api/v1/users/export"): lambda e: Req(USERS + "/export?group=%d" % e.group["id"]),
    ("GET", "/api/v1/users/{id}"): lambda e: Req("%s/%d" % (USERS, _u(e))),
    ("PATCH", "/api/v1/users/{id}"): lambda e: (lambda u: Req(
        "%s/%d" % (USERS, u["id"]), {"position": "Matrix"}, e.user_snap(u["id"])))(e.new_user()),
    ("GET", "/api/v1/users/{id}/history"): lambda e: Req("%s/%d/history" % (USERS, _u(e))),
    ("GET", "/api/v1/users/{id}/profile"): lambda e: Req("%s/%d/profile" % (USERS, _u(e))),
    ("POST", "/api/v1/users/{id}/activate"): lambda e: (lambda u: Req(
        "%s/%d/activate" % (USERS, u["id"]), {}, e.user_snap(u["id"])))(e.new_user("pending")),
    ("POST", "/api/v1/users/{id}/deactivate"): lambda e: (lambda u: Req(
        "%s/%d/deactivate" % (USERS, u["id"]), {"reason": "temporary_leave"},
        e.user_snap(u["id"])))(e.new_user()),
    ("POST", "/api/v1/users/{id}/reactivate"): lambda e: (lambda u: Req(
        "%s/%d/reactivate" % (USERS, u["id"]), {}, e.user_snap(u["id"])))(
            e.new_user("inactive")),
    ("POST", "/api/v1/users/{id}/lock"): lambda e: (lambda u: Req(
        "%s/%d/lock" % (USERS, u["id"]), {}, e.user_snap(u["id"])))(e.new_user()),
    ("POST", "/api/v1/users/{id}/unlock"): lambda e: (lambda u: Req(
        "%s/%d/unlock" % (USERS, u["id"]), {}, e.user_snap(u["id"])))(e.new_user("locked")),
    ("POST", "/api/v1/users/{id}/erase"): lambda e: (lambda u: Req(
        "%s/%d/erase" % (USERS, u["id"]), {"note": "DSAR-matrix"}, e.user_snap(u["id"])))(
            e.new_user()),
    ("GET", "/api/v1/settings/users"): lambda e: Req("/api/v1/settings/users"),
    ("PATCH", "/api/v1/settings/users"): lambda e: Req(
        "/api/v1/settings/users", {"options": {"show_employee_id": True}},
        e.list_snap("/api/v1/settings/users")),
    ("GET", "/api/v1/settings/users/fields"): lambda e: Req("/api/v1/settings/users/fields"),
    ("POST", "/api/v1/settings/users/fields"): lambda e: Req(
        "/api/v1/settings/users/fields", {"key": "mx_" + e.tag(), "label": "M", "type": "text"},
        e.list_snap("/api/v1/settings/users/fields")),
    ("GET", "/api/v1/settings/users/fields/{id}"): lambda e: Req(
        "/api/v1/settings/users/fields/%d" % e.field["id"]),
    ("PATCH", "/api/v1/settings/users/fields/{id}"): lambda e: Req(
        "/api/v1/settings/users/fields/%d" % e.field["id"], {"label": "Matrix " + e.tag()},
        e.list_snap("/api/v1/settings/users/fields/%d" % e.field["id"])),
    ("GET", "/api/v1/users/{id}/roles"): lambda e: Req("%s/%d/roles" % (USERS, _u(e))),
    ("PUT", "/api/v1/users/{id}/roles"): lambda e: (lambda u: Req(
        "%s/%d/roles" % (USERS, u["id"]), {"primary": "standard_user", "secondary": ["guest"]},
        e.user_snap(u["id"])))(e.new_user()),
    ("GET", "/api/v1/users/{id}/permissions"): lambda e: Req(
        "%s/%d/permissions" % (USERS, _u(e))),
    ("GET", "/api/v1/resources"): lambda e: Req("/api/v1/resources"),
    ("POST", "/api/v1/resources"): lambda e: Req(
        "/api/v1/resources", {"key": "mx_" + e.tag(), "label": "M", "module": "matrix"},
        e.list_snap("/api/v1/resources")),
    ("GET", "/api/v1/roles"): lambda e: Req("/api/v1/roles"),
    ("POST", "/api/v1/roles"): lambda e: Req(
        "/api/v1/roles", {"key": "mx_" + e.tag(), "name": "M", "permissions": {}},
        e.list_snap("/api/v1/roles")),
    ("GET", "/api/v1/roles/{id}"): lambda e: Req("/api/v1/roles/%d" % e.role["id"]),
    ("PATCH", "/api/v1/roles/{id}"): lambda e: (lambda r: Req(
        "/api/v1/roles/%d" % r["id"], {"description": "changed"},
        e.list_snap("/api/v1/roles/%d" % r["id"])))(e.new_role()),
    ("POST", "/api/v1/roles/{id}/retire"): lambda e: (lambda r: Req(
        "/api/v1/roles/%d/retire" % r["id"], None, e.list_snap("/api/v1/roles/%d" % r["id"])))(
            e.new_role()),
    ("GET", "/api/v1/access/check"): lambda e: Req(
        "/api/v1/access/check?user_id=%d&resource=users&level=read" % _u(e)),
    ("POST", "/api/v1/access/cache/clear"): lambda e: Req("/api/v1/access/cache/clear"),
    ("GET", "/api/v1/groups"): lambda e: Req("/api/v1/groups"),
    ("POST", "/api/v1/groups"): lambda e: Req(
        "/api/v1/groups", {"name": "Matrix " + e.tag()}, e.list_snap("/api/v1/groups")),
    ("GET", "/api/v1/groups/{id}"): lambda e: Req("/api/v1/groups/%d" % e.group["id"]),
    ("PATCH", "/api/v1/groups/{id}"): lambda e: (lambda g: Req(
        "/api/v1/groups/%d" % g["id"], {"description": "changed"},
        e.list_snap("/api/v1/groups/%d" % g["id"])))(e.new_group()),
    ("DELETE", "/api/v1/groups/{id}"): lambda e: (lambda g: Req(
        "/api/v1/groups/%d" % g["id"], None, e.list_snap("/api/v1/groups/%d" % g["id"])))(
            e.new_group(members=[e.target["id"]])),
    ("GET", "/api/v1/groups/{id}/members"): lambda e: Req(
        "/api/v1/groups/%d/members" % e.group["id"]),
    ("POST", "/api/v1/groups/{id}/members"): lambda e: (lambda g: Req(
        "/api/v1/groups/%d/members" % g["id"], {"user_ids": [e.target["id"]]},
        e.list_snap("/api/v1/groups/%d/members" % g["id"])))(e.new_group()),
    ("DELETE", "/api/v1/groups/{id}/members/{uid}"): lambda e: (lambda g: Req(
        "/api/v1/groups/%d/members/%d" % (g["id"], e.target["id"]), None,
        e.list_snap("/api/v1/groups/%d/members" % g["id"])))(
            e.new_group(members=[e.target["id"]])),
    ("GET", "/api/v1/groups/{id}/recipients"): lambda e: Req(
        "/api/v1/groups/%d/recipients" % e.group["id"]),
    ("GET", "/api/v1/groups/{id}/assignees"): lambda e: Req(
        "/api/v1/groups/%d/assignees" % e.group["id"]),
    ("GET", "/api/v1/api-keys"): lambda e: Req("/api/v1/api-keys"),
    ("POST", "/api/v1/api-keys"): lambda e: Req(
        "/api/v1/api-keys", {"name": "mx-" + e.tag(), "username": e.target["username"]},
        e.keys_snap()),
    ("POST", "/api/v1/api-keys/{id}/revoke"): lambda e: (lambda k: Req(
        "/api/v1/api-keys/%d/revoke" % k["id"], None, e.keys_snap()))(
            new_key(e.c, e.target["username"])),
    # sign-in: public routes, answered the same to every caller
    ("POST", "/api/v1/auth/login"): lambda e: Req(
        "/api/v1/auth/login", {"username": e.pw_user["username"], "password": e.pw_password}),
    ("POST", "/api/v1/auth/forgot-password"): lambda e: Req(
        "/api/v1/auth/forgot-password", {"email": "nobody-%s@example.com" % e.tag()}),
    ("POST", "/api/v1/auth/reset-password"): lambda e: Req(
        "/api/v1/auth/reset-password", {"token": "x" * 43, "password": "a long new passphrase"}),
    ("POST", "/api/v1/auth/activate"): lambda e: Req(
        "/api/v1/auth/activate", {"token": "y" * 43, "password": "a long new passphrase"}),
    # the caller's own sign-in: any authenticated caller (the answers may
    # refuse on the merits: wrong current password, nothing to confirm)
    ("POST", "/api/v1/auth/logout"): lambda e: Req("/api/v1/auth/logout"),
    ("GET", "/api/v1/auth/me"): lambda e: Req("/api/v1/auth/me"),
    ("POST", "/api/v1/auth/change-password"): lambda e: Req(
        "/api/v1/auth/change-password", {"current_password": "not my password",
                                         "new_password": "a long new passphrase"}),
    ("GET", "/api/v1/auth/sessions"): lambda e: Req("/api/v1/auth/sessions"),
    ("DELETE", "/api/v1/auth/sessions/{id}"): lambda e: Req("/api/v1/auth/sessions/999999999"),
    ("GET", "/api/v1/auth/totp"): lambda e: Req("/api/v1/auth/totp"),
    ("POST", "/api/v1/auth/totp/enroll"): lambda e: Req(
        "/api/v1/auth/totp/enroll", {"password": "not my password"}),
    ("POST", "/api/v1/auth/totp/confirm"): lambda e: Req(
        "/api/v1/auth/totp/confirm", {"code": "000000"}),
    ("POST", "/api/v1/auth/totp/disable"): lambda e: Req(
        "/api/v1/auth/totp/disable", {"password": "not my password", "code": "000000"}),
    ("POST", "/api/v1/auth/totp/recovery-codes"): lambda e: Req(
        "/api/v1/auth/totp/recovery-codes", {"password": "not my password"}),
    # another user's credentials
    ("GET", "/api/v1/users/{id}/sessions"): lambda e: Req("%s/%d/sessions" % (USERS, _u(e))),
    ("DELETE", "/api/v1/users/{id}/sessions"): lambda e: (lambda u: Req(
        "%s/%d/sessions" % (USERS, u["id"]), None, e.user_snap(u["id"])))(e.new_user()),
    ("DELETE", "/api/v1/users/{id}/sessions/{uid}"): lambda e: (lambda u: Req(
        "%s/%d/sessions/999999999" % (USERS, u["id"]), None, e.user_snap(u["id"])))(
            e.new_user()),
    ("POST", "/api/v1/users/{id}/reset-password"): lambda e: (lambda u: Req(
        "%s/%d/reset-password" % (USERS, u["id"]), {"method": "email"},
        e.list_snap("/api/v1/outbox?user_id=%d" % u["id"])))(e.new_user()),
    ("POST", "/api/v1/users/{id}/invite"): lambda e: (lambda u: Req(
        "%s/%d/invite" % (USERS, u["id"]), None,
        e.list_snap("/api/v1/outbox?user_id=%d" % u["id"])))(e.new_user("pending")),
    ("POST", "/api/v1/users/{id}/totp/reset"): lambda e: (lambda u: Req(
        "%s/%d/totp/reset" % (USERS, u["id"]), None, e.user_snap(u["id"])))(e.new_user()),
    ("GET", "/api/v1/users/{id}/ip-ranges"): lambda e: Req("%s/%d/ip-ranges" % (USERS, _u(e))),
    ("PUT", "/api/v1/users/{id}/ip-ranges"): lambda e: (lambda u: Req(
        "%s/%d/ip-ranges" % (USERS, u["id"]), {"ranges": ["10.0.0.0/8", "127.0.0.0/8"]},
        e.list_snap("%s/%d/ip-ranges" % (USERS, u["id"]))))(e.new_user()),
    ("GET", "/api/v1/users/{id}/login-diagnosis"): lambda e: Req(
        "%s/%d/login-diagnosis" % (USERS, _u(e))),
    ("GET", "/api/v1/settings/auth"): lambda e: Req("/api/v1/settings/auth"),
    ("PATCH", "/api/v1/settings/auth"): lambda e: Req(
        "/api/v1/settings/auth", {"lockout": {"notify_user": True}},
        e.list_snap("/api/v1/settings/auth")),
    ("GET", "/api/v1/settings/notifications"): lambda e: Req("/api/v1/settings/notifications"),
    ("PATCH", "/api/v1/settings/notifications"): lambda e: Req(
        "/api/v1/settings/notifications", {"enabled": {"welcome": True}},
        e.list_snap("/api/v1/settings/notifications")),
    ("POST", "/api/v1/settings/notifications/test"): lambda e: Req(
        "/api/v1/settings/notifications/test", {"to": "matrix@example.com"}),
    ("GET", "/api/v1/outbox"): lambda e: Req("/api/v1/outbox?limit=1"),
    ("PUT", "/api/v1/test/clock"): lambda e: Req("/api/v1/test/clock", {"offset_ms": 0}),
    ("PUT", "/api/v1/test/jobs"): lambda e: Req("/api/v1/test/jobs", {"paused": False}),
}

# Public routes under /api/v1 (sign-in without credentials).
PUBLIC_API = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/forgot-password"),
              ("POST", "/api/v1/auth/reset-password"), ("POST", "/api/v1/auth/activate")}
# An allowed call that may fail upstream: the test mail reaches no SMTP server here.
UPSTREAM_OK = {("POST", "/api/v1/settings/notifications/test"): 502}

# routes open to every authenticated caller whatever their levels (the
# caller's own API keys: "manage their own API keys")
ANY_AUTHENTICATED = {("GET", "/api/v1/api-keys")}


def expected(caller, method, path, resource, level):
    """'allow', 401 or 403."""
    if level == "public":
        return "allow"
    if caller in ("anonymous", "inactive"):
        return 401
    if (method, path) in ANY_AUTHENTICATED or (resource, level) == ("system", "none"):
        return "allow"
    held = CALLER_LEVELS[caller].get(resource, "none")
    if level not in LEVELS or held not in LEVELS:
        return 403
    return "allow" if LEVELS.index(held) >= LEVELS.index(level) else 403


def send(env, caller, method, req):
    c = env.client(caller)
    if req.has_body:
        return c.request(method, req.path, json_body=req.body)
    return c.request(method, req.path)


def check_one(f, env, caller, route, req):
    method, path, resource, level = route
    want = expected(caller, method, path, resource, level)
    label = "%s %s as %s (declared %s %s, want %s)" % (method, req.path, caller, resource, level,
                                                      want)
    before = req.snap() if (req.snap and want != "allow") else None
    r = send(env, caller, method, req)
    if want == "allow":
        ok5 = UPSTREAM_OK.get((method, path)) == r.status
        f.check(r.status not in (401, 403) and (r.status < 500 or ok5),
                "%s: %s" % (label, r.describe(300)))
        return
    env.refused[r.header("X-Request-Id")] = label
    try:
        b = check_problem(r, want)
        if want == 403:
            d = "you need %s access to %s" % (level, resource)
            expect(b.get("detail") == d, "detail %r, want %r: %s" % (b.get("detail"), d,
                                                                    r.describe(300)))
        else:
            www = r.header("WWW-Authenticate") or ""
            expect(www.split(" ")[0].lower() == "bearer", "WWW-Authenticate %r" % www)
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    if before is not None:
        after = req.snap()
        f.check(after == before, "%s: the refused request changed state: %s -> %s" % (
            label, json.dumps(before, default=str)[:300], json.dumps(after, default=str)[:300]))


def env_of(ctx):
    if "env" not in ctx.state:
        ctx.state["env"] = Env(ctx)
    return ctx.state["env"]


# ---------------------------------------------------------------------------


def test_every_route_is_in_the_table_and_declares_a_sane_level(ctx):
    routes = read_routes(ctx)
    c = ctx.client()
    r = c.get("/api/v1/resources")
    expect_status(r, 200)
    catalogue = {x["key"] for x in r.json["items"]}
    f = Failures()
    seen = set()
    for method, path, resource, level in routes:
        key = (method, path)
        f.check(key not in seen, "route %s %s printed twice" % key)
        seen.add(key)
        f.check(key in ROUTES, "route %s %s (%s %s) is not in the matrix's expectation table: "
                "add it to ROUTES in test_authz_matrix.py" % (method, path, resource, level))
        if key in PUBLIC_API:
            f.check(level == "public", "%s %s should be public, declares %s %s" % (
                method, path, resource, level))
        elif path.startswith("/api/v1/auth/"):
            # the caller's own sign-in: authenticated, no resource
            f.check((resource, level) == ("system", "none"), "%s %s declares %s %s, want "
                    "system none (any signed-in caller)" % (method, path, resource, level))
        elif path.startswith("/api/v1/"):
            f.check(level in ("read", "write", "admin"), "%s %s declares level %r" % (
                method, path, level))
            f.check(resource in catalogue, "%s %s declares resource %r, not in the catalogue" % (
                method, path, resource))
            if method != "GET":
                f.check(level in ("write", "admin"), "%s %s changes things but declares only "
                        "%s on %s" % (method, path, level, resource))
        else:
            f.check(level == "public", "%s %s outside /api/v1 declares %s %s" % (
                method, path, resource, level))
    for key in ROUTES:
        f.check(key in seen, "the table has %s %s but `roster routes` does not print it" % key)
    decl = {(m, p): (res, lv) for m, p, res, lv in routes}
    f.check(decl.get(("POST", "/api/v1/access/cache/clear")) == ("settings", "admin"),
            "POST /api/v1/access/cache/clear declares %s (the contract: settings admin)" % (
                decl.get(("POST", "/api/v1/access/cache/clear")),))
    f.raise_if_any()


def test_route_matrix(ctx):
    env = env_of(ctx)
    routes = read_routes(ctx)
    f = Failures()
    missing = [r for r in routes if (r[0], r[1]) not in ROUTES]
    f.check(not missing, "routes missing from the expectation table: %s" % [
        "%s %s" % (m, p) for m, p, _, _ in missing])
    for route in routes:
        build = ROUTES.get((route[0], route[1]))
        if build is None:
            continue
        shared = None
        for caller in CALLERS:
            # reads share their target; writes get a fresh one per caller
            if route[0] == "GET" or route[1] in ("/api/v1/access/cache/clear",):
                shared = shared or build(env)
                req = shared
            else:
                req = build(env)
            check_one(f, env, caller, route, req)
    # a refused request writes no audit event
    for rid in sorted(audited_request_ids(ctx, env.refused)):
        f.items.append("%s: the refused request wrote an audit event (request id %s)" % (
            env.refused[rid], rid))
    f.raise_if_any()


def test_self_service_exceptions(ctx):
    """A caller whose role grants nothing (the seeded role `clerk`), a guest and
    a standard user: their own record, profile and permissions, their own keys;
    never another's."""
    env = env_of(ctx)
    c = env.c
    t = unique_tag(5)
    f = Failures()
    other = env.target
    other_key = new_key(c, other["username"])
    who = {"nobody": create_user(c, "mxs" + t, role="clerk"),
           "guest": env.users["guest"], "standard": env.users["standard"]}
    for name, me in who.items():
        tok = new_key(c, me["username"])
        mc = ctx.client(token=tok["token"])
        mine = "%s/%d" % (USERS, me["id"])
        theirs = "%s/%d" % (USERS, other["id"])
        for path in (mine, mine + "/profile", mine + "/permissions"):
            r = mc.get(path)
            f.check(r.status == 200, "%s reads own %s: %s" % (name, path, r.describe(300)))
        r = mc.get(mine + "/permissions")
        f.check(r.status == 200 and r.json.get("user_id") == me["id"],
                "%s's own permissions: %s" % (name, r.describe(300)))
        lvl = CALLER_LEVELS.get(name, _levels({}))
        for path, res, lv in ((theirs, "users", "read"), (theirs + "/profile", "users", "read"),
                              (theirs + "/permissions", "roles", "read"),
                              (mine + "/history", "audit", "read")):
            if LEVELS.index(lvl[res]) >= LEVELS.index(lv):
                continue
            r = mc.get(path)
            try:
                b = check_problem(r, 403)
                expect(b.get("detail") == "you need %s access to %s" % (lv, res),
                       "detail %r" % b.get("detail"))
            except AssertionError as e:
                f.items.append("%s reads %s: %s" % (name, path, e))
        # own keys: list (only their own), create, revoke
        r = mc.get("/api/v1/api-keys")
        if f.check(r.status == 200, "%s lists keys: %s" % (name, r.describe(300))):
            owners = {x.get("user_id") for x in r.json.get("items", [])}
            f.check(owners == {me["id"]}, "%s's key list shows keys of users %s" % (
                name, sorted(owners)))
        r = mc.post("/api/v1/api-keys", {"name": "own-" + t})
        f.check(r.status == 201 and r.json.get("user_id") == me["id"],
                "%s creates an own key: %s" % (name, r.describe(300)))
        if r.status == 201:
            rv = mc.request("POST", "/api/v1/api-keys/%d/revoke" % r.json["id"])
            f.check(rv.status == 200, "%s revokes an own key: %s" % (name, rv.describe(300)))
        snap = env.keys_snap()
        before = snap()
        for label, do in (
                ("creates a key for another user", lambda: mc.post("/api/v1/api-keys", {
                    "name": "theirs-" + t, "username": other["username"]})),
                ("revokes another user's key", lambda: mc.request(
                    "POST", "/api/v1/api-keys/%d/revoke" % other_key["id"]))):
            r = do()
            try:
                b = check_problem(r, 403)
                expect(b.get("detail") == "you need write access to api_keys",
                       "detail %r" % b.get("detail"))
            except AssertionError as e:
                f.items.append("%s %s: %s" % (name, label, e))
        f.check(snap() == before, "%s: refused key requests changed the keys" % name)
    r = ctx.client(token=other_key["token"]).get("%s/%d" % (USERS, other["id"]))
    f.check(r.status == 200, "the other user's key after the refused revokes: " + r.describe())
    # an inactive user's key cannot even read its own record
    ina = env.users["inactive"]
    r = env.client("inactive").get("%s/%d" % (USERS, ina["id"]))
    try:
        check_problem(r, 401, errors_expected=False)
    except AssertionError as e:
        f.items.append("inactive user reads own record: %s" % e)
    f.raise_if_any()


def test_each_route_opens_at_its_declared_level_and_not_below(ctx):
    """The route table is the gate, for callers holding one thing only. For
    every /api/v1 route declaring resource R and level L: a caller whose only
    grant is R at L gets past the gate (any answer but 401, and a 403 only
    for the content of the call: rule `escalation`, e.g. a target who
    outranks them); a caller holding R one level lower (or nothing, for L
    read) is refused with `you need L access to R`, changing nothing. The
    built-in callers above cannot tell a route that asks for more than it
    declares (a group's recipients that also needed users read), since each
    of them holding groups read also holds users read."""
    env = env_of(ctx)
    c = env.c
    routes = [r for r in read_routes(ctx) if r[1].startswith("/api/v1/")
              and r[2] in BUILTIN_RESOURCES and r[3] in LEVELS[1:]
              and (r[0], r[1]) not in ANY_AUTHENTICATED
              and r[1] not in ("/api/v1/test/clock", "/api/v1/test/jobs")]
    expect(routes, "no routes to check")
    callers = {}

    def caller(res, lv):
        if (res, lv) not in callers:
            perms = {res: lv} if lv != "none" else {}
            r = c.post("/api/v1/roles", {"key": "mx1" + unique_tag(10), "name": "One grant",
                                         "permissions": perms})
            expect_status(r, 201)
            u = create_user(c, "mx1" + unique_tag(8), role=r.json["key"])
            tok = new_key(c, u["username"])["token"]
            callers[(res, lv)] = ctx.client(token=tok)
        return callers[(res, lv)]

    f = Failures()
    for method, path, res, lv in routes:
        build = ROUTES.get((method, path))
        if build is None:
            continue    # test_route_matrix reports it
        below = LEVELS[LEVELS.index(lv) - 1]
        for held, want in ((lv, "allow"), (below, 403)):
            req = build(env)
            cc = caller(res, held)
            label = "%s %s holding only %s %s (declared %s %s)" % (method, req.path, res, held,
                                                                   res, lv)
            before = req.snap() if (req.snap and want != "allow") else None
            r = cc.request(method, req.path, json_body=req.body) if req.has_body else \
                cc.request(method, req.path)
            if want == "allow":
                rules = [e.get("rule") for e in ((r.json or {}).get("errors") or [])
                         if isinstance(e, dict)] if r.status == 403 else []
                ok5 = UPSTREAM_OK.get((method, path)) == r.status
                f.check(r.status != 401 and (r.status != 403 or "escalation" in rules) and
                        (r.status < 500 or ok5), "%s: %s" % (label, r.describe(300)))
                continue
            env.refused[r.header("X-Request-Id")] = label
            try:
                b = check_problem(r, 403)
                d = "you need %s access to %s" % (lv, res)
                expect(b.get("detail") == d, "detail %r, want %r" % (b.get("detail"), d))
            except AssertionError as e:
                f.items.append("%s: %s" % (label, e))
            if before is not None:
                f.check(req.snap() == before, "%s: the refused request changed state" % label)
    f.raise_if_any()
