"""Sessions (docs/design/auth-contract.md): a user lists and ends their own
sessions (the current one flagged) but not anyone else's (404); an
administrator lists and ends anyone's (users:read / users:write); idle and
absolute timeouts (through the test clock); max_per_user ends the oldest;
deactivate, lock, a password change and an administrator's reset end
sessions at once; a new session id after a password change, and after a
change of the user's privileges (type, roles, groups, the permissions of a
role they hold) or of the 2FA policy (the policy is applied again; the old
cookie works for a 10 s grace, the CSRF token stays)."""

from harness import (AUTH, SESSION_COOKIE, Failures, Session, auth_env, check_problem,
                     db_exec, event_reason, events, expect, expect_eq, expect_status, poll, session_cookie,
                     start_auth_server, strong_password, unique_tag)

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


def with_cookie(s, cookie):
    """A Session sharing s's server and CSRF token but presenting cookie."""
    o = Session(s.server)
    o.cookie = cookie
    o.csrf = s.csrf
    return o


def rotated(f, label, s, before):
    """Runs GET /auth/me on s (cookie `before`) and checks that the answer
    sets a new session cookie; returns the response."""
    r = s.get(AUTH + "/me")
    sc = session_cookie(r)
    f.check(r.status == 200, "%s: GET /auth/me: %s" % (label, r.describe()))
    f.check(sc is not None and sc[0] and sc[0] != before,
            "%s: no new session cookie: %s" % (label, r.describe()))
    return r


def test_privilege_change_rotates_the_session_and_applies_the_2fa_policy(ctx):
    env = start_auth_server(ctx)
    env.patch_auth({"two_factor": {"require": "admins"}})
    u, pw = env.user()
    s = env.login(u["username"], pw)
    f = Failures()
    f.check(s.login_response.json.get("must_enroll_totp") is False, "must enrol before promotion")
    old, csrf = s.cookie, s.csrf
    old_id = sid(s)
    r = env.admin.patch(upath(u["id"]), {"type": "admin"})
    expect_status(r, 200)
    r = rotated(f, "promoted", s, old)
    me = r.json or {}
    f.check(me.get("must_enroll_totp") is True, "must_enroll_totp after promotion: %r" % me)
    f.check((me.get("session") or {}).get("id") not in (None, old_id),
            "session id after promotion: %r (was %d)" % (me.get("session"), old_id))
    f.check(me.get("csrf_token") == csrf, "the CSRF token changed: %r" % me.get("csrf_token"))
    ev = events(env.admin, u["id"], "auth.session_rotated")
    f.check(len(ev) == 1 and event_reason(ev[0]) == "privilege_change",
            "auth.session_rotated events: %r" % ev)
    # the 2FA policy holds at once: only enrolment until then
    r = s.get(upath(u["id"]))
    f.check(r.status == 403 and any(e.get("rule") == "totp_enrollment_required"
                                    for e in (r.json or {}).get("errors") or []),
            "promoted without 2FA reads a user record: " + r.describe())
    # a state-changing request with the CSRF token from before the rotation
    r = s.post(AUTH + "/totp/enroll", {"password": pw}, csrf=csrf)
    f.check(r.status == 200, "enrol with the CSRF token from before the rotation: " +
            r.describe())
    # a request sent in parallel with the old cookie: accepted for the grace,
    # as the new session, with no cookie of its own
    r = with_cookie(s, old).get(AUTH + "/me")
    f.check(r.status == 200 and session_cookie(r) is None and
            (r.json or {}).get("session", {}).get("id") == (me.get("session") or {}).get("id"),
            "old cookie within the grace: " + r.describe())
    env.advance(11 * 1000)
    r = with_cookie(s, old).get(AUTH + "/me")
    f.check(r.status == 401, "old cookie after the grace: " + r.describe())
    f.check(s.alive(), "the new session ended with the grace")
    # nothing changed since: no further rotation
    r = s.get(AUTH + "/me")
    f.check(r.status == 200 and session_cookie(r) is None, "rotated again: " + r.describe())
    f.raise_if_any()


def test_roles_through_groups_and_role_assignments_rotate_the_session(ctx):
    env = auth_env(ctx)
    key = "rot" + unique_tag(6).lower()
    r = env.admin.post("/api/v1/roles", {"key": key, "name": "Rotation " + key,
                                         "permissions": {}})
    expect_status(r, 201)
    g = env.admin.post("/api/v1/groups", {"name": "Rotation " + key, "roles": [key]})
    expect_status(g, 201)
    gid = g.json["id"]
    u, pw = env.user()
    bystander, bpw = env.user()
    s = env.login(u["username"], pw)
    b = env.login(bystander["username"], bpw)
    csrf = s.csrf
    f = Failures()
    steps = (
        ("added to a group", lambda: env.admin.post("/api/v1/groups/%d/members" % gid,
                                                    {"user_ids": [u["id"]]})),
        ("the group's roles changed", lambda: env.admin.patch("/api/v1/groups/%d" % gid,
                                                              {"roles": []})),
        ("secondary roles set", lambda: env.admin.request("PUT", upath(u["id"], "/roles"), {
            "primary": u.get("role"), "secondary": [key]})),
        ("removed from a group", lambda: env.admin.request(
            "DELETE", "/api/v1/groups/%d/members/%d" % (gid, u["id"]))),
    )
    for label, do in steps:
        before = s.cookie
        r = do()
        f.check(r.status in (200, 201, 204), "%s: %s" % (label, r.describe()))
        rotated(f, label, s, before)
        # the CSRF token from sign-in still passes (404: no such session)
        r = s.delete(AUTH + "/sessions/987654321")
        f.check(r.status == 404, "%s: a DELETE with the first CSRF token: %s" % (
            label, r.describe()))
        f.check(s.csrf == csrf, "%s: CSRF token changed" % label)
    # someone outside the group keeps their session id
    r = b.get(AUTH + "/me")
    f.check(r.status == 200 and session_cookie(r) is None,
            "a non-member's session was rotated: " + r.describe())
    f.raise_if_any()


def no_rotation(f, label, s):
    r = s.get(AUTH + "/me")
    f.check(r.status == 200 and session_cookie(r) is None, "%s: rotated: %s" % (
        label, r.describe()))
    return r


def test_role_permission_change_rotates_its_holders_sessions(ctx):
    """New permissions for a role reach every holder's session at once:
    primary, secondary and through a group; the 2FA policy (admins) is
    judged again. A change of the role's name rotates nothing; retiring it
    rotates again. Bystanders keep their session ids."""
    env = start_auth_server(ctx)
    env.patch_auth({"two_factor": {"require": "admins"}})
    key = "perm" + unique_tag(6).lower()
    r = env.admin.post("/api/v1/roles", {"key": key, "name": "Perm " + key,
                                         "permissions": {"reports": "read"}})
    expect_status(r, 201)
    role_id = r.json["id"]
    g = env.admin.post("/api/v1/groups", {"name": "Perm " + key, "roles": [key]})
    expect_status(g, 201)
    primary, ppw = env.user(role=key)
    secondary, spw = env.user()
    expect_status(env.admin.request("PUT", upath(secondary["id"], "/roles"), {
        "primary": secondary.get("role"), "secondary": [key]}), 200)
    member, mpw = env.user()
    r = env.admin.post("/api/v1/groups/%d/members" % g.json["id"], {"user_ids": [member["id"]]})
    expect(r.status in (200, 204), "add to group: " + r.describe())
    bystander, bpw = env.user()
    holders = (("primary", primary, env.login(primary["username"], ppw)),
               ("secondary", secondary, env.login(secondary["username"], spw)),
               ("through a group", member, env.login(member["username"], mpw)))
    b = env.login(bystander["username"], bpw)
    f = Failures()
    for label, u, s in holders:
        f.check(s.login_response.json.get("must_enroll_totp") is False,
                "%s: must enrol before the change" % label)
        no_rotation(f, label + " before the change", s)
    old = holders[0][2].cookie
    befores = [s.cookie for _, _, s in holders]
    # a name change is not a permission change
    r = env.admin.patch("/api/v1/roles/%d" % role_id, {"name": "Renamed " + key})
    expect_status(r, 200)
    for label, u, s in holders:
        no_rotation(f, label + " after a rename", s)
    r = env.admin.patch("/api/v1/roles/%d" % role_id,
                        {"permissions": {"reports": "read", "users": "admin"}})
    expect_status(r, 200)
    for (label, u, s), before in zip(holders, befores):
        me = rotated(f, label, s, before).json or {}
        f.check(me.get("must_enroll_totp") is True,
                "%s: must_enroll_totp after gaining users:admin: %r" % (label, me))
        ev = events(env.admin, u["id"], "auth.session_rotated")
        f.check(len(ev) == 1 and event_reason(ev[0]) == "privilege_change",
                "%s: auth.session_rotated events: %r" % (label, ev))
        r = s.get(upath(u["id"]))
        f.check(r.status == 403 and any(e.get("rule") == "totp_enrollment_required"
                                        for e in (r.json or {}).get("errors") or []),
                "%s: reads a user record before enrolling: %s" % (label, r.describe()))
    no_rotation(f, "bystander", b)
    # the old cookie: the new session for the grace, then refused
    s0 = holders[0][2]
    r = with_cookie(s0, old).get(AUTH + "/me")
    f.check(r.status == 200 and session_cookie(r) is None, "old cookie within the grace: " +
            r.describe())
    env.advance(11 * 1000)
    f.check(with_cookie(s0, old).get(AUTH + "/me").status == 401, "old cookie after the grace")
    f.check(s0.alive(), "the rotated session ended with the grace")
    # retiring the role takes its permissions away: rotated again, no 2FA needed
    before = s0.cookie
    r = env.admin.post("/api/v1/roles/%d/retire" % role_id, {})
    expect_status(r, 200)
    me = rotated(f, "retired", s0, before).json or {}
    f.check(me.get("must_enroll_totp") is False, "must_enroll_totp after retiring: %r" % me)
    no_rotation(f, "bystander after retiring", b)
    f.raise_if_any()


def test_2fa_policy_change_rotates_sessions_and_sends_to_enrolment(ctx):
    """A user signed in without 2FA is sent to enrolment on the next request
    once the policy requires it of everyone (their session rotates); other
    changes of the auth settings rotate nothing; turning it off again lets
    them back."""
    env = start_auth_server(ctx)
    u, pw = env.user()
    s = env.login(u["username"], pw)
    f = Failures()
    f.check(s.login_response.json.get("must_enroll_totp") is False, "must enrol at sign-in")
    csrf = s.csrf
    env.patch_auth({"lockout": {"max_failures": 7}})
    no_rotation(f, "lockout change", s)
    before = s.cookie
    env.patch_auth({"two_factor": {"require": "everyone"}})
    me = rotated(f, "2FA required of everyone", s, before).json or {}
    f.check(me.get("must_enroll_totp") is True, "must_enroll_totp: %r" % me)
    r = s.get(upath(u["id"]))
    f.check(r.status == 403 and any(e.get("rule") == "totp_enrollment_required"
                                    for e in (r.json or {}).get("errors") or []),
            "reads a user record before enrolling: " + r.describe())
    r = s.get(AUTH + "/totp")
    f.check(r.status == 200 and (r.json or {}).get("required") is True,
            "GET /auth/totp: " + r.describe())
    f.check(s.csrf == csrf, "CSRF token changed")
    ev = events(env.admin, u["id"], "auth.session_rotated")
    f.check(len(ev) == 1 and event_reason(ev[0]) == "privilege_change",
            "auth.session_rotated events: %r" % ev)
    # same policy again: nothing to rotate
    env.patch_auth({"two_factor": {"require": "everyone"}})
    no_rotation(f, "unchanged policy", s)
    before = s.cookie
    env.patch_auth({"two_factor": {"require": "off"}})
    me = rotated(f, "2FA off", s, before).json or {}
    f.check(me.get("must_enroll_totp") is False, "must_enroll_totp after off: %r" % me)
    f.check(s.get(upath(u["id"])).status == 200, "reads their record again")
    f.raise_if_any()


def run_sql(ctx, env, sql):
    """Runs one statement on the server's database (SQLite file or the
    private PostgreSQL cluster)."""
    db_exec(ctx, env.server.db_url, sql)


def test_a_session_from_before_csrf_seeds_keeps_working_through_rotation(ctx):
    """A session stored before migration 0007 has no CSRF seed (its CSRF
    token derives from its token, as it used to): it keeps working, and a
    rotation keeps that CSRF token."""
    env = auth_env(ctx)
    u, pw = env.user()
    s = env.login(u["username"], pw)
    run_sql(ctx, env, "UPDATE sessions SET csrf_seed = '', privilege_epoch = 0 WHERE id = %d"
            % sid(s))
    f = Failures()
    seeded = s.csrf
    r = s.get(AUTH + "/me")
    f.check(r.status == 200 and session_cookie(r) is None, "old-style session: " + r.describe())
    legacy = (r.json or {}).get("csrf_token")
    f.check(legacy and legacy != seeded, "CSRF token of an old-style session: %r" % legacy)
    r = s.delete(AUTH + "/sessions/987654321", csrf=seeded)
    f.check(r.status == 403, "the seed's CSRF token passed for an old-style session: " +
            r.describe())
    s.csrf = legacy
    r = s.delete(AUTH + "/sessions/987654321")
    f.check(r.status == 404, "old-style CSRF token: " + r.describe())
    before = s.cookie
    r = env.admin.post("/api/v1/groups", {"name": "Old style " + unique_tag(), "roles": []})
    expect_status(r, 201)
    r = env.admin.post("/api/v1/groups/%d/members" % r.json["id"], {"user_ids": [u["id"]]})
    f.check(r.status in (200, 204), "add to group: " + r.describe())
    r = rotated(f, "old-style session", s, before)
    f.check((r.json or {}).get("csrf_token") == legacy,
            "CSRF token after rotating an old-style session: %r" % (r.json or {}).get(
                "csrf_token"))
    r = s.delete(AUTH + "/sessions/987654321")
    f.check(r.status == 404, "old-style CSRF token after the rotation: " + r.describe())
    f.raise_if_any()


def test_a_session_that_must_change_its_password_may_end_another_session(ctx):
    """Forced to change the password, a user may still end a suspicious
    session of theirs (DELETE /auth/sessions/{id}), and nothing else."""
    env = auth_env(ctx)
    u, pw = env.user()
    tmp = strong_password()
    r = env.admin.post(upath(u["id"], "/reset-password"), {"method": "temporary",
                                                          "password": tmp})
    expect_status(r, 200)
    suspicious = env.login(u["username"], tmp)  # say, someone else who knows it
    s = env.login(u["username"], tmp)
    f = Failures()
    f.check(s.login_response.json.get("must_change_password") is True, "must change")
    r = s.delete(AUTH + "/sessions/%d" % sid(suspicious))
    f.check(r.status == 204, "ending another session while forced to change: " + r.describe())
    f.check(not suspicious.alive(), "the other session survived")
    r = s.get(upath(u["id"]))
    f.check(r.status == 403, "forced to change, read a user record: " + r.describe())
    f.raise_if_any()
