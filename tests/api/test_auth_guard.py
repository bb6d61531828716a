"""Guards found in the security review of sign-in (docs/design/auth-contract.md,
"Acting on another user's account"):

- a user manager (users: write, below an administrator) cannot take over or
  lock out an administrator: password reset, 2FA reset, address ranges, ending
  sessions, email change and lifecycle actions are refused 403 rule
  `escalation` and change nothing; on a standard user they work;
- reads of another user's sessions, ranges and diagnosis need users: write;
- the last active administrator is never locked, but their sign-in pauses
  after the failures (then works again when the pause is over);
- wrong current passwords given to re-authenticate count toward the lockout;
- address ranges hold for a session after sign-in, not only at sign-in."""

from harness import (Failures, auth_env, check_generic_401, check_problem, events, expect,
                     expect_eq, expect_status, login_ok, strong_password, unique_tag)

USERS = "/api/v1/users"
AUTH = "/api/v1/auth"


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def manager_session(env):
    m, mpw = env.user(role="user_manager")
    return m, login_ok(env.server, m["username"], mpw)


def test_user_manager_cannot_take_over_an_administrator(ctx):
    env = auth_env(ctx)
    c = env.admin
    boss, bpw = env.user(type="admin")
    plain, ppw = env.user()
    m, s = manager_session(env)
    boss_session = login_ok(env.server, boss["username"], bpw)
    f = Failures()
    before = c.get(upath(boss["id"])).json
    attempts = (
        ("reset-password temporary", lambda u: s.post(upath(u, "/reset-password"),
                                                      {"method": "temporary",
                                                       "password": "mgr chosen " + unique_tag()})),
        ("reset-password email", lambda u: s.post(upath(u, "/reset-password"),
                                                  {"method": "email"})),
        ("ip-ranges", lambda u: s.put(upath(u, "/ip-ranges"), {"ranges": ["192.0.2.0/24"]})),
        ("end sessions", lambda u: s.delete(upath(u, "/sessions"))),
        ("email change", lambda u: s.patch(upath(u), {"email": "mgr-%s@example.com" %
                                                          unique_tag()})),
        ("lock", lambda u: s.post(upath(u, "/lock"), {})),
        ("deactivate", lambda u: s.post(upath(u, "/deactivate"), {"reason": "other",
                                                                    "note": "takeover"})),
    )
    for label, do in attempts:
        r = do(boss["id"])
        try:
            check_problem(r, 403, field="user", rule="escalation")
        except AssertionError as e:
            f.items.append("%s on an administrator: %s" % (label, e))
    after = c.get(upath(boss["id"])).json
    f.check(after == before, "the refused requests changed the administrator: %r -> %r" %
            (before, after))
    f.check(boss_session.me().status == 200, "the administrator's session was ended")
    r = Failures()
    # the same on a standard user works
    for label, do in attempts[:4]:
        r = do(plain["id"])
        f.check(r.status in (200, 202, 204), "%s on a standard user: %s" % (label, r.describe()))
    f.raise_if_any()


def test_credential_reads_need_users_write(ctx):
    env = auth_env(ctx)
    target, _ = env.user()
    g, gpw = env.user(type="guest", role="guest")
    s = login_ok(env.server, g["username"], gpw)
    f = Failures()
    for path in ("/sessions", "/ip-ranges", "/login-diagnosis"):
        r = s.get(upath(target["id"], path))
        try:
            check_problem(r, 403)
        except AssertionError as e:
            f.items.append("guest GET %s: %s" % (path, e))
    m, ms = manager_session(env)
    for path in ("/sessions", "/ip-ranges", "/login-diagnosis"):
        f.check(ms.get(upath(target["id"], path)).status == 200, "user manager GET " + path)
    f.raise_if_any()


def test_last_administrator_pauses_instead_of_locking(ctx):
    # its own server: the test makes its admin the only one
    env = auth_env(ctx)
    c = env.admin
    env.patch_auth({"lockout": {"max_failures": 3, "duration_minutes": 0}})
    try:
        r = c.get(USERS + "?type=admin&status=active&limit=500")
        admins = [u for u in r.json["items"]]
        expect(len(admins) >= 1, "no administrator")
        # find the administrator with a password: give the first admin one
        admin = [u for u in admins if u["username"] == "admin"][0]
        others = [u for u in admins if u["id"] != admin["id"]]
        for o in others:
            expect_status(c.post(upath(o["id"], "/deactivate"), {"reason": "other",
                                                                  "note": "last-admin test"}), 200)
        pw = strong_password()
        r = c.post(upath(admin["id"], "/reset-password"), {"method": "temporary", "password": pw})
        expect_status(r, 200)
        for _ in range(3):
            check_generic_401(env.session().login("admin", pw + "x"))
        u = c.get(upath(admin["id"])).json
        expect_eq(u["status"], "active", "the last administrator's status")
        check_generic_401(env.session().login("admin", pw), "the right password while paused")
        reasons = [e.get("reason") for e in events(c, admin["id"], "auth.locked")]
        expect(any("last_admin" in (x or "") for x in reasons), "auth.locked: %r" % reasons)
        d = c.get(upath(admin["id"], "/login-diagnosis")).json
        lock = [x for x in d["checks"] if x["check"] == "lock"][0]
        expect(lock["ok"] is False and "paused" in lock["detail"], "diagnosis: %r" % lock)
        env.advance(16 * 60 * 1000)
        r = env.session().login("admin", pw)
        expect(r.status == 200, "after the pause: " + r.describe())
    finally:
        env.set_clock(0)
        env.patch_auth({"lockout": {"max_failures": None, "duration_minutes": None}})
        for o in others:
            c.post(upath(o["id"], "/reactivate"), {})


def test_wrong_current_passwords_count_toward_the_lockout(ctx):
    env = auth_env(ctx)
    c = env.admin
    env.patch_auth({"lockout": {"max_failures": 3}})
    try:
        u, pw = env.user()
        s = login_ok(env.server, u["username"], pw)
        for i in range(3):
            r = s.post(AUTH + "/change-password", {"current_password": "wrong " + str(i) * 12,
                                                   "new_password": strong_password()})
            f = r.status
            expect(f in (401, 403, 422), "wrong current password: " + r.describe())
        expect_eq(c.get(upath(u["id"])).json["status"], "locked", "after 3 wrong passwords")
        check_generic_401(env.session().login(u["username"], pw), "the locked account")
        expect(s.me().status == 401, "the session of the locked account still works")
    finally:
        env.patch_auth({"lockout": {"max_failures": None}})


def test_address_ranges_hold_for_open_sessions(ctx):
    env = auth_env(ctx)
    c = env.admin
    u, pw = env.user()
    s = login_ok(env.server, u["username"], pw)
    expect_status(s.me(), 200)
    expect_status(c.request("PUT", upath(u["id"], "/ip-ranges"),
                            json_body={"ranges": ["10.0.0.0/8"]}), 200)
    check_problem(s.me(), 401)
    expect_status(c.request("PUT", upath(u["id"], "/ip-ranges"), json_body={"ranges": []}), 200)
    expect_status(s.me(), 200)


def test_old_rate_counters_are_purged(ctx):
    """Failure counters do not pile up: the sessions job drops windows that
    ended long ago (checked in the SQLite file itself)."""
    import sqlite3
    import time
    env = auth_env(ctx)
    url = env.server.db_url
    if not url.startswith("sqlite:"):
        ctx.skip("reads the SQLite file (PostgreSQL runs the same statement)")
    path = url[len("sqlite:"):]
    check_generic_401(env.session().login("nobody-" + unique_tag(), "not a password at all"))

    def rows():
        db = sqlite3.connect(path, timeout=10)
        try:
            return db.execute("SELECT count(*) FROM rate_limits WHERE key LIKE 'login-ip:%'"
                              ).fetchone()[0]
        finally:
            db.close()
    expect(rows() >= 1, "no failure counter recorded")
    try:
        env.advance(3 * 3600 * 1000)
        deadline = time.monotonic() + 10
        while rows() and time.monotonic() < deadline:
            time.sleep(0.1)
        expect_eq(rows(), 0, "failure counters three hours after their window")
    finally:
        env.set_clock(0)
