"""Password policy (docs/design/auth-contract.md, password.h and the auth
settings): minimum length 12 by default (rule min_length, field password),
long and Unicode passwords accepted, the common-password blocklist (rule
blocklist), profile words (rule profile_words), history (rule history),
change-password needs the current password, and expiry (max_age_days, the
expiry_notice mail once, must change after expiry) through the test clock."""

from harness import (AUTH, Failures, Session, auth_env, check_problem, events,
                     expect, expect_eq, expect_status, start_auth_server, strong_password,
                     unique_tag, user_body, user_total)

USERS = "/api/v1/users"
DAY = 24 * 3600 * 1000

# Refused by cracklib's checks (verified with FascistCheck on Debian 12's
# dictionary: "too simplistic/systematic").
COMMON = ("123456789012", "abcdefghijkl")


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def refused_create(f, c, label, pw, rule, username=None, **kw):
    n = user_total(c)
    r = c.post(USERS, user_body(username or "pp" + unique_tag(), password=pw, **kw))
    try:
        check_problem(r, 422, field="password", rule=rule)
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    f.check(user_total(c) == n, "%s: the refused create added a user" % label)


def test_length_and_unicode(ctx):
    env = auth_env(ctx)
    c = env.admin
    f = Failures()
    LONG = "".join(strong_password() for _ in range(16))
    refused_create(f, c, "11 characters", "Qz7!kP2#mW9", "min_length")
    r = c.post(USERS, user_body("pp" + unique_tag(), password="Qz7!kP2#mW9x"))
    f.check(r.status == 201, "12 characters: " + r.describe())
    for label, pw in (("70 characters", "Vx8#" + "qwhzkrtpmn" * 6 + "!a"),
                      ("emoji", "🦊🐙🌵🚲🎻🧊 ride far"),
                      ("CJK", "東京の夜空に星が光る午後九時"),
                      ("256 characters", LONG[:256])):
        u, _ = env.user(password=pw)
        r = Session(env.server).login(u["username"], pw)
        f.check(r.status == 200, "%s: login: %s" % (label, r.describe()))
    refused_create(f, c, "257 characters", LONG[:257], "max_length")
    # NFKC: the full-width form of a password signs in as its normal form
    u, _ = env.user(password="ＱｚＸｖ７！ｋＰ２＃ｍＷ９ｘ")
    f.check(Session(env.server).login(u["username"], "QzXv7!kP2#mW9x").status == 200,
            "NFKC-equivalent password refused")
    f.raise_if_any()


def test_blocklist_and_profile_words(ctx):
    env = auth_env(ctx)
    c = env.admin
    f = Failures()
    for pw in COMMON:
        refused_create(f, c, "common %r" % pw, pw, "blocklist")
    name = "harriet" + unique_tag(4)
    refused_create(f, c, "contains the username", "Xx9!" + name.upper() + "!q", "profile_words",
                   username=name)
    refused_create(f, c, "contains the last name", "Zz8#Montgomery#77", "profile_words",
                   last_name="Montgomery")
    # through change-password, the field is new_password
    u, pw = env.user()
    s = env.login(u["username"], pw)
    r = s.post(AUTH + "/change-password", {"current_password": pw,
                                            "new_password": COMMON[0]})
    try:
        check_problem(r, 422, field="new_password", rule="blocklist")
    except AssertionError as e:
        f.items.append("change-password to a common password: %s" % e)
    r = s.post(AUTH + "/change-password", {"current_password": pw, "new_password": "short"})
    try:
        check_problem(r, 422, field="new_password", rule="min_length")
    except AssertionError as e:
        f.items.append("change-password to a short password: %s" % e)
    f.check(Session(env.server).login(u["username"], pw).status == 200,
            "refused changes changed the password")
    f.raise_if_any()


def test_change_password_needs_the_current_one(ctx):
    env = auth_env(ctx)
    u, pw = env.user()
    s = env.login(u["username"], pw)
    new = strong_password()
    r = s.post(AUTH + "/change-password", {"current_password": "Wrong" + pw,
                                            "new_password": new})
    # The contract does not name the status; the server's choice is reported.
    expect(r.status in (401, 403, 422) and r.content_type() == "application/problem+json",
           "wrong current password: " + r.describe())
    ctx.state.setdefault("notes", []).append("change-password wrong current: %d %s" % (
        r.status, r.text[:200]))
    expect(Session(env.server).login(u["username"], pw).status == 200,
           "the old password stopped working after a refused change")
    expect(Session(env.server).login(u["username"], new).status == 401,
           "the refused new password works")
    expect_eq(events(env.admin, u["id"], "auth.password_changed"), [], "password_changed events")
    r = s.post(AUTH + "/change-password", {"current_password": pw, "new_password": new})
    expect_status(r, 200)
    m = env.mail(u["email"], "password_changed")
    expect(new not in m.body, "the new password is in the mail")


def test_history(ctx):
    env = auth_env(ctx)
    env.patch_auth({"password": {"history": 3}})
    try:
        u, p0 = env.user()
        s = env.login(u["username"], p0)
        pws = [p0]
        for _ in range(2):
            n = strong_password()
            expect_status(s.post(AUTH + "/change-password", {"current_password": pws[-1],
                                                             "new_password": n}), 200)
            pws.append(n)
        f = Failures()
        for old in pws:
            r = s.post(AUTH + "/change-password", {"current_password": pws[-1],
                                                    "new_password": old})
            try:
                check_problem(r, 422, field="new_password", rule="history")
            except AssertionError as e:
                f.items.append("reuse: %s" % e)
        f.check(Session(env.server).login(u["username"], pws[-1]).status == 200,
                "refused reuses changed the password")
        # three newer passwords push the first out of the history
        for _ in range(3):
            n = strong_password()
            expect_status(s.post(AUTH + "/change-password", {"current_password": pws[-1],
                                                             "new_password": n}), 200)
            pws.append(n)
        r = s.post(AUTH + "/change-password", {"current_password": pws[-1],
                                                "new_password": p0})
        f.check(r.status == 200, "a password older than the history: " + r.describe())
        f.raise_if_any()
    finally:
        env.patch_auth({"password": {"history": 0}})


def test_settings_ranges(ctx):
    env = auth_env(ctx)
    c = env.admin
    before = c.get("/api/v1/settings/auth").json
    f = Failures()
    for patch, field in (({"password": {"min_length": 7}}, "password.min_length"),
                         ({"password": {"history": 25}}, "password.history"),
                         ({"lockout": {"max_failures": 0}}, "lockout.max_failures"),
                         ({"sessions": {"idle_timeout_minutes": 0}},
                          "sessions.idle_timeout_minutes"),
                         ({"two_factor": {"require": "sometimes"}}, "two_factor.require")):
        r = c.patch("/api/v1/settings/auth", patch)
        try:
            check_problem(r, 422, field=field)
        except AssertionError as e:
            f.items.append("%s: %s" % (field, e))
    r = c.patch("/api/v1/settings/auth", {"password": {"min_length": 12, "colour": "red"}})
    f.check(r.status == 400, "unknown key: " + r.describe())
    f.check(c.get("/api/v1/settings/auth").json == before, "refused patches changed settings")
    # a standard user can not change them
    u, pw = env.user()
    s = env.login(u["username"], pw)
    r = s.patch("/api/v1/settings/auth", {"password": {"min_length": 8}})
    f.check(r.status == 403, "standard user patches auth settings: " + r.describe())
    f.raise_if_any()


def test_min_length_setting_takes_effect(ctx):
    env = auth_env(ctx)
    c = env.admin
    env.patch_auth({"password": {"min_length": 16}})
    try:
        f = Failures()
        refused_create(f, c, "15 characters with min 16", "Qz7!kP2#mW9xTr4", "min_length")
        r = c.post(USERS, user_body("pp" + unique_tag(), password="Qz7!kP2#mW9xTr4v"))
        f.check(r.status == 201, "16 characters: " + r.describe())
        f.raise_if_any()
    finally:
        env.patch_auth({"password": {"min_length": 12}})


def test_expiry_notice_and_expired_password(ctx):
    env = start_auth_server(ctx)
    env.patch_auth({"password": {"max_age_days": 30, "expiry_notice_days": 7}})
    u, pw = env.user()
    f = Failures()
    env.advance(22 * DAY)
    got = env.smtp.none_for(u["email"], env.subject_rx("expiry_notice"), wait=1.0)
    f.check(got == [], "expiry notice 8 days before expiry (notice 7): %r" % got)
    env.advance(2 * DAY)      # day 24: 6 days left
    m = env.mail(u["email"], "expiry_notice")
    f.check(u["username"] in m.body or u["first_name"] in m.body, "notice body %r" % m.body[:300])
    got = env.smtp.none_for(u["email"], env.subject_rx("expiry_notice"), wait=1.0)
    f.check(len(got) == 1, "expiry notices: %d, want 1" % len(got))
    f.check(len(events(env.admin, u["id"], "auth.expiry_notice")) == 1, "auth.expiry_notice")
    r = Session(env.server).login(u["username"], pw)
    f.check(r.status == 200 and r.json.get("must_change_password") is False,
            "login before expiry: " + r.describe())
    env.advance(7 * DAY)      # day 31
    s = Session(env.server)
    r = s.login(u["username"], pw)
    f.check(r.status == 200 and r.json.get("must_change_password") is True,
            "login after expiry: " + r.describe())
    d = env.admin.get(upath(u["id"], "/login-diagnosis")).json or {}
    pwc = [c for c in d.get("checks", []) if c.get("check") == "password"]
    f.check(pwc and pwc[0].get("ok") is False, "diagnosis password check after expiry: %r" % d)
    if r.status == 200:
        n = strong_password()
        r = s.post(AUTH + "/change-password", {"current_password": pw, "new_password": n})
        f.check(r.status == 200, "change after expiry: " + r.describe())
        r = Session(env.server).login(u["username"], n)
        f.check(r.status == 200 and r.json.get("must_change_password") is False,
                "login after the change: " + r.describe())
    f.raise_if_any()
