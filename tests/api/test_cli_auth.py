"""The CLI's sign-in commands (docs/operations.md, "Sign-in, passwords and
sessions"): `user add --password-stdin [--require-reset] [--send-invite]`,
`user reset-password --temporary | --email-link`, `user invite`, `user
diagnose`. Same rules and messages as the API: the password policy refuses
with the field and rule, the API then signs in with what the CLI set, and the
outbox holds the mail the CLI queued. Secrets come from standard input only."""

import json
import os
import subprocess

from harness import Failures, create_user, expect, expect_status, unique_tag

USERS = "/api/v1/users"
LOGIN = "/api/v1/auth/login"


def cli(ctx, *args, stdin=None):
    env = dict(os.environ)
    env.pop("ROSTER_DB", None)
    cmd = [ctx.binary] + list(args) + ["--db", ctx.server.db_url]
    p = subprocess.run(cmd, input=(stdin or "").encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    p.show = "`roster %s` -> exit %d, stdout %r, stderr %r" % (
        " ".join(args), p.returncode, p.out[-500:], p.err[-500:])
    return p


def login(ctx, username, password):
    return ctx.client(token=None).post(LOGIN, {"username": username, "password": password})


def test_add_with_password_then_sign_in(ctx):
    t = unique_tag()
    name = "cla" + t
    pw = "violet lantern harbour " + t
    p = cli(ctx, "user", "add", "--username", name, "--email", name + "@example.com",
            "--first-name", "Cli", "--last-name", "Added", "--password-stdin", "--json",
            stdin=pw + "\n")
    expect(p.returncode == 0, p.show)
    expect(pw not in p.out and pw not in p.err, "the password was echoed: " + p.show)
    r = login(ctx, name, pw)
    expect_status(r, 200)
    expect(r.json["must_change_password"] is False, "no reset asked: " + r.describe())


def test_require_reset_and_policy_refusal(ctx):
    f = Failures()
    t = unique_tag()
    name = "clr" + t
    pw = "amber meadow compass " + t
    p = cli(ctx, "user", "add", "--username", name, "--email", name + "@example.com",
            "--first-name", "Cli", "--last-name", "Reset", "--password-stdin", "--require-reset",
            stdin=pw + "\n")
    f.check(p.returncode == 0, p.show)
    r = login(ctx, name, pw)
    f.check(r.status == 200 and r.json.get("must_change_password") is True,
            "require reset: " + r.describe())
    # the policy: refused with field and rule, nothing created
    weak = "clw" + t
    p = cli(ctx, "user", "add", "--username", weak, "--email", weak + "@example.com",
            "--first-name", "W", "--last-name", "K", "--password-stdin", stdin="short\n")
    f.check(p.returncode == 1 and "password" in p.err and "min_length" in p.err, p.show)
    r = ctx.client().get(USERS + "?q=" + weak)
    f.check(r.status == 200 and r.json["total"] == 0, "refused add created a user: " +
            r.describe())
    # no password on stdin: usage error
    p = cli(ctx, "user", "add", "--username", weak, "--email", weak + "@example.com",
            "--first-name", "W", "--last-name", "K", "--password-stdin", stdin="")
    f.check(p.returncode == 2, "empty stdin: " + p.show)
    f.raise_if_any()


def test_reset_password_temporary_and_email_link(ctx):
    f = Failures()
    c = ctx.client()
    u = create_user(c, "clt" + unique_tag())
    p = cli(ctx, "user", "reset-password", u["username"], "--temporary")
    f.check(p.returncode == 0, p.show)
    temp = p.out.strip().splitlines()[-1] if p.out.strip() else ""
    r = login(ctx, u["username"], temp)
    f.check(r.status == 200 and r.json.get("must_change_password") is True,
            "temporary password from the CLI: " + r.describe())
    p = cli(ctx, "user", "reset-password", u["username"], "--email-link")
    f.check(p.returncode == 0 and "reset link queued" in p.out, p.show)
    r = c.get("/api/v1/outbox?user_id=%d" % u["id"])
    kinds = [m["kind"] for m in (r.json or {}).get("items", [])]
    f.check("reset" in kinds, "no reset mail queued: %r" % kinds)
    p = cli(ctx, "user", "reset-password", u["username"])
    f.check(p.returncode == 2, "neither --temporary nor --email-link: " + p.show)
    f.raise_if_any()


def test_invite_and_diagnose(ctx):
    f = Failures()
    c = ctx.client()
    name = "cli" + unique_tag()
    p = cli(ctx, "user", "add", "--username", name, "--email", name + "@example.com",
            "--first-name", "In", "--last-name", "Vite", "--send-invite", "--json")
    f.check(p.returncode == 0, p.show)
    created = json.loads(p.out) if p.returncode == 0 else {}
    f.check(created.get("status") == "pending", "an invited user is pending: " + p.show)
    p = cli(ctx, "user", "invite", name)
    f.check(p.returncode == 0 and "invite queued" in p.out, p.show)
    if created.get("id"):
        r = c.get("/api/v1/outbox?user_id=%d" % created["id"])
        kinds = [m["kind"] for m in (r.json or {}).get("items", [])]
        f.check(kinds.count("invite") == 2, "two invites queued: %r" % kinds)
    p = cli(ctx, "user", "diagnose", name)
    f.check(p.returncode == 0 and "cannot sign in" in p.out and "pending_activation" in p.out,
            p.show)
    p = cli(ctx, "user", "diagnose", name, "--json", "--ip", "10.1.2.3")
    d = json.loads(p.out) if p.returncode == 0 else {}
    checks = {x["check"]: x for x in d.get("checks", [])}
    f.check(d.get("can_sign_in") is False and checks.get("pending_activation", {}).get("ok")
            is False, "diagnose --json: " + p.show)
    p = cli(ctx, "user", "invite", "admin")
    f.check(p.returncode == 1 and "not_pending" in p.err, "invite an active user: " + p.show)
    f.raise_if_any()
