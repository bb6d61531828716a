"""Sessions (docs/design/auth-contract.md): a user lists and ends their own
sessions (the current one flagged) but not anyone else's (404); an
administrator lists and ends anyone's (users:read / users:write); idle and
absolute timeouts (through the test clock); max_per_user ends the oldest;
deactivate, lock, a password change and an administrator's reset end
sessions at once; a new session id after a password change."""

from harness import (AUTH, Failures, auth_env, check_problem, events, expect, expect_eq,
                     expect_status, poll, start_auth_server, strong_password)

USERS = "/api/v1/users"
MIN = 60 * 1000


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def sid(s):
    return s.login_response.json["session"]["id"]


def seen(env, uid, session_id):
    r = env.admin.get(upath(uid, "/sessions"))
    expect_status(r, 200)
    return [i.get("last_seen_at") for i in r.json.get("items", []) if i.get("id") == session_id]


def test_list_and_end_own_sessions(ctx):
    env = auth_env(ctx)
    u, pw = env.user()
    s1 = env.login(u["username"], pw)
    s2 = env.login(u["username"], pw)
    f = Failures()
    r = s1.get(AUTH + "/sessions")
    expect_status(r, 200)
    items = r.json.get("items") or []
    ids = [i.get("id") for i in items]
    f.check(sorted(ids) == sorted([sid(s1), sid(s2)]), "sessions %r, want %r" % (
        ids, [sid(s1), sid(s2)]))
    cur = [i.get("id") for i in items if i.get("current") is True]
    f.check(cur == [sid(s1)], "current flag on %r, want [%d]" % (cur, sid(s1)))
    for i in items:
        f.check(all(k in i for k in ("created_at", "last_seen_at", "expires_at", "ip",
                                     "user_agent")), "session item %r" % i)
        f.check(i.get("ip") == "127.0.0.1" and i.get("user_agent") == "roster-tests",
                "ip/user_agent %r/%r" % (i.get("ip"), i.get("user_agent")))
    r = s1.delete(AUTH + "/sessions/%d" % sid(s2))
    f.check(r.status == 204, "ending my other session: " + r.describe())
    f.check(not s2.alive(), "the ended session still works")
    f.check(s1.alive(), "ending another session ended the current one")
    f.check(len(events(env.admin, u["id"], "auth.session_ended")) >= 1,
            "no auth.session_ended event")
    r = s1.get(AUTH + "/sessions")
    f.check([i.get("id") for i in r.json.get("items", [])] == [sid(s1)],
            "sessions after ending one: " + r.describe())
    # ending the current one works too and signs out
    r = s1.delete(AUTH + "/sessions/%d" % sid(s1))
    f.check(r.status == 204 and not s1.alive(), "ending the current session: " + r.describe())
    f.raise_if_any()


def test_cannot_end_someone_elses_session(ctx):
    env = auth_env(ctx)
    a, apw = env.user()
    b, bpw = env.user()
    sa = env.login(a["username"], apw)
    sb = env.login(b["username"], bpw)
    r = sa.delete(AUTH + "/sessions/%d" % sid(sb))
    check_problem(r, 404)
    expect(sb.alive(), "another user's session ended")
    r = sa.delete(AUTH + "/sessions/999999999")
    check_problem(r, 404)


def test_admin_lists_and_ends_anyones_sessions(ctx):
    env = auth_env(ctx)
    c = env.admin
    u, pw = env.user()
    s1, s2, s3 = (env.login(u["username"], pw) for _ in range(3))
    f = Failures()
    r = c.get(upath(u["id"], "/sessions"))
    expect_status(r, 200)
    items = r.json.get("items") or []
    f.check(sorted(i.get("id") for i in items) == sorted([sid(s1), sid(s2), sid(s3)]),
            "admin list: " + r.describe())
    f.check(all("current" not in i for i in items), "admin list has `current`: %r" % items)
    # a user whose role grants nothing cannot list; a standard user cannot end
    clerk, cpw = env.user(role="clerk")
    sc = env.login(clerk["username"], cpw)
    try:
        check_problem(sc.get(upath(u["id"], "/sessions")), 403)
    except AssertionError as e:
        f.items.append("list without users:read: %s" % e)
    std, spw = env.user()
    ss = env.login(std["username"], spw)
    for label, r in (("end one", ss.delete(upath(u["id"], "/sessions/%d" % sid(s1)))),
                     ("end all", ss.delete(upath(u["id"], "/sessions")))):
        try:
            check_problem(r, 403)
        except AssertionError as e:
            f.items.append("standard user %s: %s" % (label, e))
    f.check(s1.alive() and s2.alive(), "a refused request ended sessions")
    # end one
    r = c.delete(upath(u["id"], "/sessions/%d" % sid(s1)))
    f.check(r.status == 204, "admin ends one: " + r.describe())
    f.check(not s1.alive() and s2.alive(), "after ending one: s1 %s s2 %s" % (
        s1.alive(), s2.alive()))
    # a session of another user under this user's id: 404
    r = c.delete(upath(std["id"], "/sessions/%d" % sid(s2)))
    f.check(r.status == 404 and s2.alive(), "ending u's session under another id: " +
            r.describe())
    # end all
    r = c.delete(upath(u["id"], "/sessions"))
    f.check(r.status == 200 and (r.json or {}).get("ended") == 2, "end all: " + r.describe())
    f.check(not s2.alive() and not s3.alive(), "sessions alive after end all")
    f.check(ss.alive(), "end all ended another user's session")
    f.raise_if_any()


def test_idle_and_absolute_timeouts(ctx):
    env = start_auth_server(ctx)
    env.patch_auth({"sessions": {"idle_timeout_minutes": 30, "absolute_timeout_hours": 1}})
    u, pw = env.user()
    f = Failures()
    s = env.login(u["username"], pw)
    idle = env.login(u["username"], pw)

    def use(label):
        # The server records last use after answering (off the loop); wait
        # until it landed before moving the clock on, or the write would
        # carry the moved clock's time.
        before = seen(env, u["id"], sid(s))
        ok = s.alive()
        if ok:
            poll(lambda: seen(env, u["id"], sid(s)) != before, timeout=5,
                 what="last_seen_at of the session to move (%s)" % label)
        return ok
    env.advance(20 * MIN)
    f.check(use("20 min"), "used session dead after 20 idle minutes")
    env.advance(20 * MIN)     # s: 20 min since its last use; idle: 40
    f.check(use("40 min"), "session used 20 minutes ago is dead")
    f.check(not idle.alive(), "session idle for 40 minutes still works (idle timeout 30)")
    env.advance(15 * MIN)     # 55 min after sign-in, s used 15 min ago
    f.check(use("55 min"), "session dead at 55 min")
    env.advance(10 * MIN)     # 65 min: past the absolute timeout though recently used
    f.check(not s.alive(), "session alive after its absolute timeout (1 h)")
    # the purge job removes them from the list
    r = env.admin.get(upath(u["id"], "/sessions"))
    expect_status(r, 200)
    env.set_clock(0)
    f.raise_if_any()


def test_max_per_user_ends_the_oldest(ctx):
    env = start_auth_server(ctx)
    env.patch_auth({"sessions": {"max_per_user": 2}})
    u, pw = env.user()
    s1 = env.login(u["username"], pw)
    s2 = env.login(u["username"], pw)
    s3 = env.login(u["username"], pw)
    f = Failures()
    f.check(not s1.alive(), "the oldest session survived the third sign-in")
    f.check(s2.alive() and s3.alive(), "the newest two should live")
    r = env.admin.get(upath(u["id"], "/sessions"))
    f.check(sorted(i["id"] for i in r.json.get("items", [])) == sorted([sid(s2), sid(s3)]),
            "listed: " + r.describe())
    f.raise_if_any()


def test_status_changes_and_password_changes_end_sessions(ctx):
    env = auth_env(ctx)
    c = env.admin
    f = Failures()
    for label, action, body in (("deactivate", "/deactivate", {"reason": "temporary_leave"}),
                                ("lock", "/lock", {})):
        u, pw = env.user()
        s = env.login(u["username"], pw)
        expect_status(c.post(upath(u["id"], action), body), 200)
        f.check(not s.alive(), "session alive after %s" % label)
        back = "/reactivate" if action == "/deactivate" else "/unlock"
        expect_status(c.post(upath(u["id"], back), {}), 200)
        f.check(not s.alive(), "the session came back after %s" % back)
    # admin reset (temporary password)
    u, pw = env.user()
    s = env.login(u["username"], pw)
    r = c.post(upath(u["id"], "/reset-password"), {"method": "temporary"})
    f.check(r.status == 200, "admin reset: " + r.describe())
    f.check(not s.alive(), "session alive after an admin reset")
    # change-password: the other sessions end, the caller gets a new session id
    u, pw = env.user()
    s = env.login(u["username"], pw)
    other = env.login(u["username"], pw)
    old_cookie = s.cookie
    new = strong_password()
    r = s.post(AUTH + "/change-password", {"current_password": pw, "new_password": new})
    if f.check(r.status == 200 and (r.json or {}).get("status") == "password_changed",
               "change-password: " + r.describe()):
        f.check(s.cookie and s.cookie != old_cookie, "no new session cookie after a password "
                "change: %r" % r.header_all("Set-Cookie"))
        f.check(s.alive(), "the caller's new session does not work")
        f.check(s.get(AUTH + "/me", cookie=old_cookie).status == 401,
                "the old session id still works after a password change")
        f.check(not other.alive(), "another session survived a password change")
        # the new session can change things with the new CSRF token
        r2 = s.post(AUTH + "/logout")
        f.check(r2.status == 204, "logout with the CSRF token after the change: " + r2.describe())
    f.raise_if_any()


def test_no_credentials_or_bad_cookie_is_401(ctx):
    env = auth_env(ctx)
    u, pw = env.user()
    s = env.login(u["username"], pw)
    f = Failures()
    for label, cookie in (("garbage", "not-a-session"), ("tampered", s.cookie[:-2] + (
            "AA" if not s.cookie.endswith("AA") else "BB")), ("empty", "")):
        r = s.get(AUTH + "/sessions", cookie=cookie)
        try:
            check_problem(r, 401)
        except AssertionError as e:
            f.items.append("%s cookie: %s" % (label, e))
    expect_eq(s.alive(), True, "the real session")
    f.raise_if_any()
