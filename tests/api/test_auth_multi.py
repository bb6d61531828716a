"""Several servers on one PostgreSQL database (docs/design/auth-contract.md):
a session made on A works on B and a logout on B ends it on A; failed
sign-ins split between A and B add up to one lockout; each mail is sent once
(the mail job runs under its lease: the SMTP peer receives exactly one copy
although both servers run the job). PostgreSQL only."""

import os

from harness import (AUTH, Failures, Session, check_generic_401, expect, expect_eq,
                     expect_status, start_auth_server, strong_password)

USERS = "/api/v1/users"


def pair(ctx):
    if ctx.backend != "postgres":
        ctx.skip("several servers share a database only on PostgreSQL")
    if "pair" not in ctx.state:
        key = os.path.join(ctx.dir, "shared.key")
        a = start_auth_server(ctx, name="nodeA", key_file=key)
        b = start_auth_server(ctx, name="nodeB", db_url=a.server.db_url, smtp=a.smtp,
                              key_file=key, configure=False, admin_token=a.server.admin_token)
        ctx.state["pair"] = (a, b)
    return ctx.state["pair"]


def on(env, s):
    """The same cookie and CSRF token, sent to another server."""
    t = Session(env.server)
    t.cookie, t.csrf = s.cookie, s.csrf
    return t


def test_session_made_on_a_works_on_b_and_logout_on_b_ends_it_on_a(ctx):
    a, b = pair(ctx)
    u, pw = a.user()
    sa = a.login(u["username"], pw)
    sb = on(b, sa)
    f = Failures()
    r = sb.me()
    f.check(r.status == 200 and r.json["user"]["id"] == u["id"], "session on B: " + r.describe())
    r = sb.get(AUTH + "/sessions")
    f.check(r.status == 200 and [i.get("current") for i in r.json.get("items", [])] == [True],
            "sessions listed on B: " + r.describe())
    r = sb.post(AUTH + "/logout")
    f.check(r.status == 204, "logout on B: " + r.describe())
    f.check(not sa.alive(), "the session still works on A after logout on B")
    f.raise_if_any()


def test_lockout_counts_failures_on_both(ctx):
    a, b = pair(ctx)
    a.patch_auth({"lockout": {"enabled": True, "max_failures": 4, "window_minutes": 15,
                              "duration_minutes": 15}})
    u, pw = a.user()
    for i, env in enumerate((a, b, a, b)):
        check_generic_401(Session(env.server).login(u["username"], "Wrong" + pw),
                          "failure %d on %s" % (i + 1, env.server.name))
    expect_eq(b.admin.get("%s/%d" % (USERS, u["id"])).json.get("status"), "locked",
              "status after 2 failures on each node (max 4)")
    for env in (a, b):
        check_generic_401(Session(env.server).login(u["username"], pw),
                          "right password on %s while locked" % env.server.name)
    # the account_locked mail: one copy
    a.mail(u["email"], "account_locked")
    got = a.smtp.none_for(u["email"], a.subject_rx("account_locked"), wait=1.5)
    expect(len(got) == 1, "account_locked mails: %d, want 1" % len(got))


def test_each_mail_is_sent_once(ctx):
    a, b = pair(ctx)
    f = Failures()
    users = [a.user()[0] for _ in range(6)]
    for i, u in enumerate(users):
        env = (a, b)[i % 2]
        r = Session(env.server).post(AUTH + "/forgot-password", {"email": u["email"]})
        f.check(r.status == 202, "forgot on %s: %s" % (env.server.name, r.describe()))
    for u in users:
        a.mail(u["email"], "reset")
    for u in users:
        got = a.smtp.none_for(u["email"], a.subject_rx("reset"), wait=0.3)
        f.check(len(got) == 1, "%d reset mails to %s, want 1" % (len(got), u["email"]))
    sent = [m for m in a.outbox(limit=500) if m.get("kind") == "reset"]
    f.check(len(sent) == len(users), "reset mails in the outbox: %d, want %d" % (
        len(sent), len(users)))
    f.check(all(m.get("status") == "sent" and m.get("attempts") == 1 for m in sent),
            "outbox entries: %r" % [(m.get("status"), m.get("attempts")) for m in sent])
    # a password changed on B is in force on A at once
    u, pw = a.user()
    s = b.login(u["username"], pw)
    n = strong_password()
    expect_status(s.post(AUTH + "/change-password", {"current_password": pw,
                                                      "new_password": n}), 200)
    expect(Session(a.server).login(u["username"], n).status == 200, "new password on A")
    f.raise_if_any()
