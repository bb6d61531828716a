"""Two-factor sign-in (docs/design/auth-contract.md): enrolment needs the
password, gives a secret, an otpauth URI and an SVG QR code; confirming with
a code enables it, rotates the session id and gives 10 recovery codes;
sign-in then needs a code (401 field totp rule required without one, the
generic 401 with a wrong one), a code works once, a recovery code works
once; policy `everyone` makes a user without 2FA enrol first (only /auth/me,
/auth/totp*, /auth/logout) and refuses disabling (409); an administrator
resets a user's 2FA.

Codes are computed here (RFC 6238) from the secret at the server's test
clock; each sign-in moves the clock one step so codes never repeat a used
step by accident."""

import re
import urllib.parse

from harness import (AUTH, Failures, Session, check_generic_401, check_problem, event_reason,
                     events, expect, expect_eq, expect_status, start_auth_server, totp_code,
                     unique_tag)

USERS = "/api/v1/users"
CODE = re.compile(r"^[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}$", re.I)


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def env_of(ctx):
    if "env" not in ctx.state:
        ctx.state["env"] = start_auth_server(ctx)
    return ctx.state["env"]


def enrol(env, s, pw):
    r = s.post(AUTH + "/totp/enroll", {"password": pw})
    expect_status(r, 200)
    secret = r.json.get("secret")
    expect(isinstance(secret, str) and re.match(r"^[A-Z2-7]{16,}$", secret),
           "secret: " + r.describe())
    return r.json


def enrolled_user(env):
    """(user, password, secret, recovery codes, session) with 2FA on."""
    u, pw = env.user()
    s = env.login(u["username"], pw)
    e = enrol(env, s, pw)
    r = s.post(AUTH + "/totp/confirm", {"code": env.fresh_totp(e["secret"])})
    expect_status(r, 200)
    return u, pw, e["secret"], r.json.get("recovery_codes") or [], s


def test_enrol_and_confirm(ctx):
    env = env_of(ctx)
    u, pw = env.user()
    s = env.login(u["username"], pw)
    f = Failures()
    r = s.get(AUTH + "/totp")
    f.check(r.status == 200 and r.json == {"enabled": False, "pending": False,
                                           "recovery_codes_left": 0, "required": False},
            "totp status before: " + r.describe())
    # the password is required
    for label, body in (("wrong password", {"password": "Wrong" + pw}), ("no password", {})):
        r = s.post(AUTH + "/totp/enroll", body)
        f.check(r.status in (400, 401, 403, 422) and "secret" not in (r.json or {}),
                "enrol with %s: %s" % (label, r.describe()))
    e = enrol(env, s, pw)
    uri = urllib.parse.urlsplit(e.get("otpauth_uri", ""))
    q = urllib.parse.parse_qs(uri.query)
    f.check(uri.scheme == "otpauth" and uri.netloc == "totp" and q.get("secret") == [e["secret"]]
            and q.get("issuer") == ["roster"] and q.get("digits", ["6"]) == ["6"]
            and q.get("period", ["30"]) == ["30"], "otpauth_uri %r" % e.get("otpauth_uri"))
    f.check(u["username"] in urllib.parse.unquote(uri.path), "account not in the URI %r" %
            e.get("otpauth_uri"))
    svg = e.get("qr_svg") or ""
    f.check(svg.lstrip().startswith(("<?xml", "<svg")) and "<svg" in svg and "</svg>" in svg,
            "qr_svg is not an SVG document: %r" % svg[:120])
    r = s.get(AUTH + "/totp")
    f.check(r.json.get("pending") is True and r.json.get("enabled") is False,
            "status while pending: " + r.describe())
    # pending: sign-in does not need a code yet
    f.check(Session(env.server).login(u["username"], pw).status == 200,
            "a pending enrolment already demands a code")
    # a wrong code does not confirm
    good = env.fresh_totp(e["secret"])
    bad = "%06d" % ((int(good) + 1) % 1000000)
    r = s.post(AUTH + "/totp/confirm", {"code": bad})
    f.check(r.status in (400, 401, 422), "confirm with a wrong code: " + r.describe())
    f.check(s.get(AUTH + "/totp").json.get("enabled") is False, "a wrong code enabled 2FA")
    old_cookie = s.cookie
    r = s.post(AUTH + "/totp/confirm", {"code": good})
    expect_status(r, 200)
    codes = r.json.get("recovery_codes") or []
    f.check(r.json.get("enabled") is True and len(codes) == 10 and len(set(codes)) == 10
            and all(isinstance(c, str) and CODE.match(c) for c in codes),
            "confirm answer: " + r.describe())
    f.check(s.cookie and s.cookie != old_cookie, "the session id was not rotated on confirm")
    f.check(s.alive(), "the rotated session does not work")
    f.check(s.get(AUTH + "/me", cookie=old_cookie).status == 401,
            "the pre-confirm session id still works")
    st = s.get(AUTH + "/totp").json
    f.check(st.get("enabled") is True and st.get("recovery_codes_left") == 10,
            "status after confirm: %r" % st)
    f.check(s.me().json.get("totp_enabled") is True, "/auth/me totp_enabled")
    f.check(len(events(env.admin, u["id"], "auth.totp_enabled")) == 1, "auth.totp_enabled")
    f.raise_if_any()


def test_sign_in_with_a_code(ctx):
    env = env_of(ctx)
    u, pw, secret, codes, _ = enrolled_user(env)
    f = Failures()
    # no code: 401 naming the totp field
    r = Session(env.server).login(u["username"], pw)
    try:
        check_problem(r, 401, field="totp", rule="required", first=True)
    except AssertionError as e:
        f.items.append("no code: %s" % e)
    f.check(r.header_all("Set-Cookie") == [], "no code set a cookie")
    # a wrong password with no code is the generic answer (no hint that 2FA is on)
    check_generic_401(Session(env.server).login(u["username"], "Wrong" + pw),
                      "wrong password, no code")
    good = env.fresh_totp(secret)
    bad = "%06d" % ((int(good) + 500000) % 1000000)
    check_generic_401(Session(env.server).login(u["username"], pw, totp=bad), "wrong code")
    f.check(event_reason(events(env.admin, u["id"], "auth.login_failed")[0]) == "bad_totp",
            "wrong code not audited as bad_totp")
    check_generic_401(Session(env.server).login(u["username"], "Wrong" + pw, totp=good),
                      "right code, wrong password")
    r = Session(env.server).login(u["username"], pw, totp=good)
    f.check(r.status == 200, "right code: " + r.describe())
    r = Session(env.server).login(u["username"], pw, totp=good)
    try:
        check_generic_401(r, "the same code again")
    except AssertionError as e:
        f.items.append(str(e))
    # a code from an earlier step than the last used one is refused too
    r = Session(env.server).login(u["username"], pw, totp=env.totp(secret, step_delta=-1))
    f.check(r.status == 401, "an older code after a newer one: " + r.describe())
    f.raise_if_any()


def test_recovery_codes_work_once(ctx):
    env = env_of(ctx)
    u, pw, secret, codes, s = enrolled_user(env)
    expect_eq(len(codes), 10, "recovery codes")
    f = Failures()
    r = Session(env.server).login(u["username"], pw, recovery_code=codes[0])
    f.check(r.status == 200, "recovery code: " + r.describe())
    check_generic_401(Session(env.server).login(u["username"], pw, recovery_code=codes[0]),
                      "recovery code again")
    check_generic_401(Session(env.server).login(u["username"], pw,
                                                recovery_code="aaaa-bbbb-cccc-dddd"),
                      "made-up recovery code")
    f.check(s.get(AUTH + "/totp").json.get("recovery_codes_left") == 9, "codes left after one")
    # new codes replace the old ones
    r = s.post(AUTH + "/totp/recovery-codes", {"password": "Wrong" + pw})
    f.check(r.status in (400, 401, 403, 422), "new codes with a wrong password: " +
            r.describe())
    r = s.post(AUTH + "/totp/recovery-codes", {"password": pw})
    if f.check(r.status == 200 and len(r.json.get("recovery_codes") or []) == 10,
               "new codes: " + r.describe()):
        new = r.json["recovery_codes"]
        check_generic_401(Session(env.server).login(u["username"], pw, recovery_code=codes[1]),
                          "an old code after regeneration")
        f.check(Session(env.server).login(u["username"], pw, recovery_code=new[0]).status == 200,
                "a new code")
    f.raise_if_any()


def test_disable_and_admin_reset(ctx):
    env = env_of(ctx)
    u, pw, secret, codes, s = enrolled_user(env)
    f = Failures()
    r = s.post(AUTH + "/totp/disable", {"password": pw, "code": "000000"
                                        if env.totp(secret) != "000000" else "111111"})
    f.check(r.status in (400, 401, 422), "disable with a wrong code: " + r.describe())
    f.check(s.get(AUTH + "/totp").json.get("enabled") is True, "a refused disable disabled it")
    r = s.post(AUTH + "/totp/disable", {"password": pw, "code": env.fresh_totp(secret)})
    f.check(r.status == 200, "disable: " + r.describe())
    f.check(Session(env.server).login(u["username"], pw).status == 200,
            "login without a code after disable")
    f.check(len(events(env.admin, u["id"], "auth.totp_disabled")) == 1, "auth.totp_disabled")
    # administrator reset (lost device)
    v, vpw, vsecret, _, _ = enrolled_user(env)
    std, spw = env.user()
    ss = env.login(std["username"], spw)
    r = ss.request("POST", upath(v["id"], "/totp/reset"))
    f.check(r.status == 403, "a standard user resets 2FA: " + r.describe())
    r = env.admin.request("POST", upath(v["id"], "/totp/reset"))
    f.check(r.status == 200, "admin 2FA reset: " + r.describe())
    r = Session(env.server).login(v["username"], vpw)
    f.check(r.status == 200, "login after the admin reset: " + r.describe())
    f.raise_if_any()


def test_security_notices_and_disabling_ends_other_sessions(ctx):
    """Turning 2FA on or off, new recovery codes and an administrator's
    reset each mail the user (two_factor_changed); disabling 2FA ends the
    user's other sessions; an email change is told to the old address."""
    env = env_of(ctx)
    u, pw, secret, codes, s = enrolled_user(env)
    f = Failures()

    def notices(addr, n, what):
        try:
            env.mail(addr, "two_factor_changed", count=n)
        except AssertionError as e:
            f.items.append("%s: %s" % (what, e))

    notices(u["email"], 1, "2FA turned on")
    r = s.post(AUTH + "/totp/recovery-codes", {"password": pw})
    f.check(r.status == 200, "recovery codes: " + r.describe())
    notices(u["email"], 2, "new recovery codes")
    other = Session(env.server)
    r = other.login(u["username"], pw, totp=env.fresh_totp(secret))
    f.check(r.status == 200, "second sign-in: " + r.describe())
    r = s.post(AUTH + "/totp/disable", {"password": pw, "code": env.fresh_totp(secret)})
    f.check(r.status == 200, "disable: " + r.describe())
    notices(u["email"], 3, "2FA turned off")
    f.check(s.alive(), "the session that disabled 2FA ended")
    f.check(not other.alive(), "another session survived disabling 2FA")
    v, vpw, vsecret, _, _ = enrolled_user(env)
    r = env.admin.request("POST", upath(v["id"], "/totp/reset"))
    f.check(r.status == 200, "admin 2FA reset: " + r.describe())
    notices(v["email"], 2, "2FA reset by an administrator")
    old = v["email"]
    new = "moved" + v["username"] + "@example.com"
    r = env.admin.patch(upath(v["id"]), {"email": new})
    f.check(r.status == 200, "email change: " + r.describe())
    try:
        m = env.mail(old, "email_changed")
        f.check(new in m.body, "the notice does not name the new address: %r" % m.body[:300])
    except AssertionError as e:
        f.items.append("email change: %s" % e)
    f.check(not env.mails(new, "email_changed"), "the email_changed notice went to the new "
            "address")
    f.raise_if_any()


def test_policy_everyone_makes_users_enrol_first(ctx):
    env = env_of(ctx)
    env.patch_auth({"two_factor": {"require": "everyone"}})
    try:
        u, pw = env.user()
        s = Session(env.server)
        r = s.login(u["username"], pw)
        expect_status(r, 200)
        f = Failures()
        f.check(r.json.get("must_enroll_totp") is True, "must_enroll_totp: " + r.describe())
        f.check(s.get(AUTH + "/me").status == 200, "/auth/me refused")
        st = s.get(AUTH + "/totp")
        f.check(st.status == 200 and st.json.get("required") is True, "/auth/totp: " +
                st.describe())
        for label, r in (("GET own record", s.get(upath(u["id"]))),
                         ("GET /auth/sessions", s.get(AUTH + "/sessions")),
                         ("recovery-codes", s.post(AUTH + "/totp/recovery-codes",
                                                   {"password": pw}))):
            try:
                check_problem(r, 403)
                f.check(any(e.get("rule") == "totp_enrollment_required"
                            for e in (r.json.get("errors") or [])),
                        "%s: no rule totp_enrollment_required: %s" % (label, r.describe()))
            except AssertionError as e:
                f.items.append("%s: %s" % (label, e))
        e = enrol(env, s, pw)
        r = s.post(AUTH + "/totp/confirm", {"code": env.fresh_totp(e["secret"])})
        expect_status(r, 200)
        f.check(s.get(upath(u["id"])).status == 200, "own record refused after enrolling")
        r = s.post(AUTH + "/totp/disable", {"password": pw, "code": env.fresh_totp(e["secret"])})
        try:
            check_problem(r, 409, rule="required", field=None)
            f.check(any(x.get("rule") == "required" for x in (r.json.get("errors") or [])),
                    "disable while required: no rule required: " + r.describe())
        except AssertionError as e2:
            f.items.append("disable while required: %s" % e2)
        f.check(s.get(AUTH + "/totp").json.get("enabled") is True, "2FA off after a refused "
                "disable")
        f.raise_if_any()
    finally:
        env.patch_auth({"two_factor": {"require": "off"}})


def test_policy_roles_counts_roles_held_through_a_group(ctx):
    """two_factor.require "roles": a role held through a group counts as
    one held directly (as for the address rules)."""
    env = env_of(ctx)
    key = "fin" + unique_tag(6).lower()
    r = env.admin.post("/api/v1/roles", {"key": key, "name": "Finance " + key,
                                         "permissions": {}})
    expect_status(r, 201)
    env.patch_auth({"two_factor": {"require": "roles", "roles": [key]}})
    try:
        direct, dpw = env.user(role=key)
        member, mpw = env.user()
        bystander, bpw = env.user()
        g = env.admin.post("/api/v1/groups", {"name": "Finance team " + key, "roles": [key]})
        expect_status(g, 201)
        r = env.admin.post("/api/v1/groups/%d/members" % g.json["id"],
                           {"user_ids": [member["id"]]})
        expect_status(r, (200, 204))
        f = Failures()
        for label, u, pw, want in (("direct role", direct, dpw, True),
                                   ("role through a group", member, mpw, True),
                                   ("no such role", bystander, bpw, False)):
            s = Session(env.server)
            r = s.login(u["username"], pw)
            f.check(r.status == 200 and r.json.get("must_enroll_totp") is want,
                    "%s: must_enroll_totp should be %s: %s" % (label, want, r.describe()))
            st = s.get(AUTH + "/totp")
            f.check(st.status == 200 and st.json.get("required") is want,
                    "%s: /auth/totp required should be %s: %s" % (label, want, st.describe()))
            d = env.admin.get(upath(u["id"], "/login-diagnosis"))
            tf = [c for c in (d.json or {}).get("checks", []) if c.get("check") == "two_factor"]
            f.check(tf and tf[0].get("ok") is (not want),
                    "%s: diagnosis two_factor: %r" % (label, tf))
        f.raise_if_any()
    finally:
        env.patch_auth({"two_factor": {"require": "off", "roles": []}})


def test_totp_code_generator_matches_rfc_6238(ctx):
    # SHA-1 vectors of RFC 6238 appendix B (8 digits there; the last 6 here)
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    for t, want in ((59, "287082"), (1111111109, "081804"), (1234567890, "005924"),
                    (2000000000, "279037")):
        got = totp_code(secret, at_ms=t * 1000)
        expect(got == want, "TOTP at %d: %s, want %s" % (t, got, want))
