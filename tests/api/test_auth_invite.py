"""Invitations and the creation options (docs/design/auth-contract.md and
the spec's User Creation Options): Send Invite (pending, invite mail,
activate with the token, single use), Set Password, Require Reset (must
change at first sign-in; until then only change-password, me, logout and
sessions), Active without a password; password with send_invite is 422, as
is require_reset with neither a password nor an invite; an administrator's
reset by email and by temporary password."""

from harness import (AUTH, Failures, Session, auth_env, check_generic_401, check_problem,
                     create_user, event_reason, events, expect, expect_eq, expect_status,
                     strong_password, unique_tag, user_body, user_total)

USERS = "/api/v1/users"
ACTIVATE = AUTH + "/activate"


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def invite_token(env, u, count=1):
    m = env.mail(u["email"], "invite", count=count)
    tok = m.token()
    expect(tok, "no token in the invite mail's links %r: %r" % (m.links, m.body[:400]))
    return m, tok


def test_invite_then_activate(ctx):
    env = auth_env(ctx)
    c = env.admin
    u = create_user(c, "inv" + unique_tag(), send_invite=True)
    f = Failures()
    f.check(u["status"] == "pending", "invited user status %r" % u["status"])
    m, tok = invite_token(env, u)
    f.check(any(l.startswith(env.server.url + "/") for l in m.links),
            "invite link %r is not under the default base URL %s" % (m.links, env.server.url))
    f.check(len(events(c, u["id"], "auth.invite_sent")) == 1, "auth.invite_sent events")
    # cannot sign in yet
    pw = strong_password()
    check_generic_401(Session(env.server).login(u["username"], pw), "login before activation")
    # policy applies to the new password; the token survives a refused attempt
    r = Session(env.server).post(ACTIVATE, {"token": tok, "password": "short"})
    try:
        check_problem(r, 422, field="password", rule="min_length")
    except AssertionError as e:
        f.items.append("activate with a short password: %s" % e)
    f.check(c.get(upath(u["id"])).json.get("status") == "pending",
            "a refused activation changed the status")
    r = Session(env.server).post(ACTIVATE, {"token": tok, "password": pw})
    expect(r.status == 200 and r.json == {"status": "activated"}, "activate: " + r.describe())
    f.check(c.get(upath(u["id"])).json.get("status") == "active", "status after activation")
    f.check(len(events(c, u["id"], "auth.activated")) == 1, "auth.activated events")
    s = Session(env.server)
    r = s.login(u["username"], pw)
    f.check(r.status == 200 and r.json.get("must_change_password") is False,
            "login after activation: " + r.describe())
    r = Session(env.server).post(ACTIVATE, {"token": tok, "password": strong_password()})
    try:
        check_problem(r, 400, field="token", rule="invalid_token")
    except AssertionError as e:
        f.items.append("token reuse: %s" % e)
    f.check(Session(env.server).login(u["username"], pw).status == 200,
            "the refused reuse changed the password")
    f.raise_if_any()


def test_resend_invite(ctx):
    env = auth_env(ctx)
    c = env.admin
    u = create_user(c, "rin" + unique_tag(), send_invite=True)
    invite_token(env, u)
    r = c.request("POST", upath(u["id"], "/invite"))
    expect_status(r, 202)
    _, tok2 = invite_token(env, u, count=2)
    r = Session(env.server).post(ACTIVATE, {"token": tok2, "password": strong_password()})
    expect(r.status == 200, "activate with the resent token: " + r.describe())
    # not pending any more: 409
    r = c.request("POST", upath(u["id"], "/invite"))
    check_problem(r, 409)


def test_set_password_and_active_without_password(ctx):
    env = auth_env(ctx)
    c = env.admin
    f = Failures()
    u, pw = env.user()
    f.check(u["status"] == "active", "created with a password: status %r" % u["status"])
    f.check("password" not in u and pw not in str(u), "the password is echoed: %r" % u)
    s = Session(env.server)
    r = s.login(u["username"], pw)
    f.check(r.status == 200 and r.json.get("must_change_password") is False,
            "login with the set password: " + r.describe())
    v = create_user(c, "nop" + unique_tag(), status="active")
    r = Session(env.server).login(v["username"], pw)
    try:
        check_generic_401(r, "active user without a password")
        reasons = [event_reason(e) for e in events(c, v["id"], "auth.login_failed")]
        f.check(reasons[:1] == ["no_password"], "reason %r" % reasons)
    except AssertionError as e:
        f.items.append(str(e))
    # the password is checked against the policy on create too
    n = user_total(c)
    r = c.post(USERS, user_body("shp" + unique_tag(), password="short"))
    try:
        check_problem(r, 422, field="password", rule="min_length")
    except AssertionError as e:
        f.items.append("create with a short password: %s" % e)
    f.check(user_total(c) == n, "a refused create added a user")
    f.raise_if_any()


def test_password_with_send_invite_is_422(ctx):
    env = auth_env(ctx)
    c = env.admin
    n = user_total(c)
    body = user_body("pwi" + unique_tag(), password=strong_password(), send_invite=True)
    r = c.post(USERS, body)
    b = check_problem(r, 422)
    fields = {e.get("field") for e in (b.get("errors") or [])}
    expect(fields & {"password", "send_invite"}, "errors name neither password nor send_invite: "
           + r.describe())
    expect_eq(user_total(c), n, "users after the refused create")
    expect_eq(env.smtp.to(body["email"]), [], "mail after the refused create")


def test_require_reset_needs_a_password_or_an_invite(ctx):
    """Require Reset forces a change of a password someone else set: without
    one and without an invite it would make an active account with no
    password and no mail. 422 field password, rule required; nothing made."""
    env = auth_env(ctx)
    c = env.admin
    f = Failures()
    n = user_total(c)
    for label, extra in (("no options", {}),
                         ("send_invite false", {"send_invite": False}),
                         ("active", {"status": "active"}),
                         ("pending without invite", {"status": "pending", "send_invite": False})):
        body = user_body("rrn" + unique_tag(), require_reset=True, **extra)
        r = c.post(USERS, body)
        try:
            b = check_problem(r, 422, field="password", rule="required")
            msg = " ".join(e.get("message") or "" for e in b.get("errors") or [])
            f.check("require_reset" in msg and "invite" in msg,
                    "%s: the refusal says why: %s" % (label, r.describe()))
        except AssertionError as e:
            f.items.append("%s: %s" % (label, e))
        f.check(env.smtp.none_for(body["email"], wait=0.2) == [],
                "%s: mail after the refused create" % label)
    body = user_body("rra" + unique_tag(), require_reset=True, type="api")
    r = c.post(USERS, body)
    try:
        check_problem(r, 422, field="require_reset", rule="api_user")
    except AssertionError as e:
        f.items.append("API user: %s" % e)
    f.check(user_total(c) == n, "a refused create added a user")
    # with a password, or with an invite, it is accepted
    u, pw = env.user(require_reset=True)
    f.check(u["status"] == "active", "require_reset with a password: %r" % u)
    r = c.post(USERS, user_body("rri" + unique_tag(), require_reset=True, send_invite=True))
    f.check(r.status == 201 and (r.json or {}).get("status") == "pending",
            "require_reset with send_invite: " + r.describe())
    if r.status == 201:
        env.mail(r.json["email"], "invite")
    # require_reset false without a password stays allowed (Active, password later)
    r = c.post(USERS, user_body("rrf" + unique_tag(), require_reset=False))
    f.check(r.status == 201, "require_reset false without a password: " + r.describe())
    f.raise_if_any()


def test_require_reset_allows_only_the_password_change(ctx):
    env = auth_env(ctx)
    c = env.admin
    u, pw = env.user(require_reset=True)
    s = Session(env.server)
    r = s.login(u["username"], pw)
    expect_status(r, 200)
    expect_eq(r.json.get("must_change_password"), True, "must_change_password", r)
    f = Failures()
    me = s.get(AUTH + "/me")
    f.check(me.status == 200 and me.json.get("must_change_password") is True,
            "GET /auth/me: " + me.describe())
    f.check(s.get(AUTH + "/sessions").status == 200, "GET /auth/sessions refused")
    # a user who must also enrol 2FA can do that first (contract: both are allowed)
    f.check(s.get(AUTH + "/totp").status == 200, "GET /auth/totp refused")
    for label, r in (("GET own record", s.get(upath(u["id"]))),
                     ("GET users", s.get(USERS)),
                     ("POST totp/recovery-codes",
                      s.post(AUTH + "/totp/recovery-codes", {"password": pw}))):
        try:
            check_problem(r, 403)
            f.check(any(e.get("rule") == "password_change_required"
                        for e in (r.json.get("errors") or [])),
                    "%s: no rule password_change_required: %s" % (label, r.describe()))
        except AssertionError as e:
            f.items.append("%s: %s" % (label, e))
    new = strong_password()
    r = s.post(AUTH + "/change-password", {"current_password": pw, "new_password": new})
    expect_status(r, 200)
    f.check(s.get(upath(u["id"])).status == 200, "own record still refused after the change")
    r = Session(env.server).login(u["username"], new)
    f.check(r.status == 200 and r.json.get("must_change_password") is False,
            "login after the change: " + r.describe())
    f.check(len(events(c, u["id"], "auth.password_changed")) == 1, "auth.password_changed")
    f.raise_if_any()


def test_admin_reset_by_email(ctx):
    env = auth_env(ctx)
    c = env.admin
    u, pw = env.user()
    s = env.login(u["username"], pw)
    r = c.post(upath(u["id"], "/reset-password"), {"method": "email"})
    expect_status(r, 202)
    f = Failures()
    f.check(not s.alive(), "the user's session survived the admin reset")
    # the old password still signs in, but only to change it (must change at
    # next sign-in, as with a temporary password)
    s2 = Session(env.server)
    r = s2.login(u["username"], pw)
    f.check(r.status == 200 and r.json.get("must_change_password") is True,
            "login with the old password after the admin reset: " + r.describe())
    f.check(s2.get(upath(u["id"])).status == 403, "old password: not limited to the change")
    m = env.mail(u["email"], "reset")
    tok = m.token()
    new = strong_password()
    r = Session(env.server).post(AUTH + "/reset-password", {"token": tok, "password": new})
    f.check(r.status == 200, "reset with the admin-sent token: " + r.describe())
    r = Session(env.server).login(u["username"], new)
    f.check(r.status == 200 and r.json.get("must_change_password") is False,
            "login with the new password: " + r.describe())
    f.raise_if_any()


def test_admin_reset_with_a_temporary_password(ctx):
    env = auth_env(ctx)
    c = env.admin
    f = Failures()
    for label, body in (("generated", {"method": "temporary"}),
                        ("given", {"method": "temporary", "password": strong_password()})):
        u, pw = env.user()
        s = env.login(u["username"], pw)
        before = len(env.smtp.to(u["email"]))
        r = c.post(upath(u["id"], "/reset-password"), body)
        given = body.get("password")
        got = (r.json or {}).get("temporary_password")
        # a generated password is returned (once); a given one may be echoed or left out
        if not f.check(r.status == 200 and (isinstance(got, str) or (given and got is None)),
                       "%s: %s" % (label, r.describe())):
            continue
        tmp = got or given
        if given:
            f.check(tmp == given, "%s: returned %r, given %r" % (label, tmp, given))
        else:
            f.check(len(tmp) >= 12, "%s: generated %r is short" % (label, tmp))
        f.check(not s.alive(), "%s: a session survived the reset" % label)
        f.check(Session(env.server).login(u["username"], pw).status == 401,
                "%s: the old password still works" % label)
        s2 = Session(env.server)
        r = s2.login(u["username"], tmp)
        f.check(r.status == 200 and r.json.get("must_change_password") is True,
                "%s: login with the temporary password: %s" % (label, r.describe()))
        f.check(s2.get(upath(u["id"])).status == 403, "%s: not limited to the change" % label)
        env.smtp.wait_for(u["email"], count=before + 1)
        got = env.smtp.to(u["email"])
        f.check(all(tmp not in m.body for m in got), "%s: the temporary password was mailed" %
                label)
        # reading the user shows no secret
        f.check(tmp not in c.get(upath(u["id"])).text, "%s: the password is in the record" %
                label)
    # a standard user may not reset others
    std, spw = env.user()
    v, _ = env.user()
    ss = env.login(std["username"], spw)
    r = ss.post(upath(v["id"], "/reset-password"), {"method": "temporary"})
    try:
        check_problem(r, 403)
    except AssertionError as e:
        f.items.append("standard user resets another: %s" % e)
    r = c.post(upath(v["id"], "/reset-password"), {"method": "sms"})
    f.check(r.status in (400, 422), "method sms: " + r.describe())
    f.raise_if_any()
