"""Lockout and throttling (docs/design/auth-contract.md): N failures within
the window lock the account (status locked, audit auth.locked, the
account_locked mail); the right password then gets the same generic 401; the
lock runs out after its duration (test clock + the locks job), or with
duration 0 lasts until an administrator unlocks; a success resets the count;
failures outside the window do not add up; unknown usernames never answer
differently; the per-IP budget answers 429 with Retry-After, the same for
existing and unknown accounts."""

import threading
import time

from harness import (Failures, Session, check_generic_401, check_problem, event_reason, events,
                     expect, expect_eq, poll, start_auth_server, strong_password, unique_tag)

USERS = "/api/v1/users"
MIN = 60 * 1000


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def status(env, uid):
    return env.admin.get(upath(uid)).json.get("status")


def fail(env, username, n):
    for i in range(n):
        check_generic_401(Session(env.server).login(username, "Wrong" + strong_password()),
                          "failure %d for %s" % (i + 1, username))


def lockout_env(ctx, **lockout):
    env = start_auth_server(ctx)
    cfg = {"enabled": True, "max_failures": 3, "window_minutes": 15, "duration_minutes": 15,
           "notify_user": True}
    cfg.update(lockout)
    env.patch_auth({"lockout": cfg})
    return env


def test_failures_lock_the_account_until_the_duration_runs_out(ctx):
    env = lockout_env(ctx)
    u, pw = env.user()
    f = Failures()
    fail(env, u["username"], 2)
    f.check(status(env, u["id"]) == "active", "locked after 2 of 3 failures")
    fail(env, u["username"], 1)
    f.check(status(env, u["id"]) == "locked", "not locked after 3 failures")
    ev = events(env.admin, u["id"], "auth.locked")
    f.check(len(ev) == 1, "auth.locked events: %d" % len(ev))
    m = env.mail(u["email"], "account_locked")
    f.check(u["username"] in m.body or u["first_name"] in m.body,
            "the account_locked mail does not name the user: %r" % m.body[:300])
    # the right password now gets the generic answer, audited as locked
    r = Session(env.server).login(u["username"], pw)
    check_generic_401(r, "right password while locked")
    last = events(env.admin, u["id"], "auth.login_failed")[0]
    f.check(event_reason(last) == "locked", "reason while locked: %r" % last)
    d = env.admin.get(upath(u["id"], "/login-diagnosis")).json or {}
    lock = [c for c in d.get("checks", []) if c.get("check") in ("lock", "status")]
    f.check(d.get("can_sign_in") is False and d.get("locked_until") is not None
            and any(c.get("ok") is False for c in lock), "diagnosis while locked: %r" % d)
    # still locked before the duration ends
    env.advance(14 * MIN)
    f.check(status(env, u["id"]) == "locked", "unlocked before the duration ran out")
    env.advance(2 * MIN)
    poll(lambda: status(env, u["id"]) == "active", timeout=10,
         what="the locks job to unlock the user after the duration")
    r = Session(env.server).login(u["username"], pw)
    f.check(r.status == 200, "login after the lock ran out: " + r.describe())
    unlock = [e for e in events(env.admin, u["id"]) if e.get("action") == "user.unlock"]
    f.check(unlock and event_reason(unlock[0]) == "lockout_expired",
            "unlock event with reason lockout_expired: %r" % unlock[:1])
    expect(len(env.mails(u["email"], "account_locked")) == 1, "account_locked mails: %r" %
           env.mails(u["email"], "account_locked"))
    f.raise_if_any()


def test_duration_zero_lasts_until_an_administrator_unlocks(ctx):
    env = lockout_env(ctx, duration_minutes=0, max_failures=2)
    u, pw = env.user()
    fail(env, u["username"], 2)
    expect_eq(status(env, u["id"]), "locked", "status after 2 failures")
    env.advance(3 * 24 * 60 * MIN)
    # give the locks job several passes (interval 100 ms) to do the wrong thing
    env.smtp.none_for("nobody@example.invalid", wait=1.0)
    expect_eq(status(env, u["id"]), "locked", "status 3 days later")
    check_generic_401(Session(env.server).login(u["username"], pw), "login while locked")
    r = env.admin.post(upath(u["id"], "/unlock"), {})
    expect(r.status == 200, "unlock: " + r.describe())
    r = Session(env.server).login(u["username"], pw)
    expect(r.status == 200, "login after the unlock: " + r.describe())
    # the counter starts again from zero
    fail(env, u["username"], 1)
    expect_eq(status(env, u["id"]), "active", "status after one failure past the unlock")


def test_success_resets_the_counter_and_the_window_limits_it(ctx):
    env = lockout_env(ctx, max_failures=3, window_minutes=10)
    u, pw = env.user()
    f = Failures()
    fail(env, u["username"], 2)
    r = Session(env.server).login(u["username"], pw)
    f.check(r.status == 200, "login: " + r.describe())
    fail(env, u["username"], 2)
    f.check(status(env, u["id"]) == "active", "locked though a success came between failures")
    # the window: 2 failures now, 2 more after it has passed: not locked
    v, vpw = env.user()
    fail(env, v["username"], 2)
    env.advance(11 * MIN)
    fail(env, v["username"], 2)
    f.check(status(env, v["id"]) == "active", "failures from different windows added up")
    fail(env, v["username"], 1)
    f.check(status(env, v["id"]) == "locked", "3 failures within the window did not lock")
    f.raise_if_any()


def test_unknown_usernames_never_answer_differently(ctx):
    env = lockout_env(ctx, max_failures=2)
    ghost = "ghost" + unique_tag(8)
    u, pw = env.user()
    bodies = set()
    for i in range(8):
        for name in (ghost, u["username"]):
            b = check_generic_401(Session(env.server).login(name, "Wrong" + strong_password()),
                                  "failure %d for %s" % (i, name))
            bodies.add(repr(sorted(b.items())))
    expect(len(bodies) == 1, "answers differ: %r" % bodies)
    expect_eq(status(env, u["id"]), "locked", "the existing user")


def test_per_ip_throttle_answers_429_alike(ctx):
    env = start_auth_server(ctx, quiet_throttle=False)
    env.patch_auth({"throttle": {"ip_max_failures": 4, "ip_window_seconds": 300},
                    "lockout": {"enabled": False}})
    u, pw = env.user()
    for i in range(4):
        check_generic_401(Session(env.server).login("ghost%d" % i + unique_tag(), "Wrong1234567"),
                          "failure %d" % (i + 1))
    f = Failures()
    bodies = []
    for label, name, password in (("existing account, right password", u["username"], pw),
                                  ("existing account, wrong password", u["username"],
                                   "Wrong" + pw),
                                  ("unknown account", "ghost" + unique_tag(8), pw)):
        r = Session(env.server).login(name, password)
        try:
            b = check_problem(r, 429)
            ra = r.header("Retry-After")
            f.check(ra is not None and ra.isdigit() and 0 < int(ra) <= 300,
                    "%s: Retry-After %r" % (label, ra))
            bodies.append({k: v for k, v in b.items() if k not in ("request_id", "instance")})
        except AssertionError as e:
            f.items.append("%s: %s" % (label, e))
    f.check(len({repr(sorted(b.items())) for b in bodies}) == 1, "429 bodies differ: %r" % bodies)
    reasons = [event_reason(e) for e in events(env.admin, u["id"], "auth.login_failed")]
    f.check("throttled" in reasons, "no auth.login_failed reason throttled: %r" % reasons)
    # the budget is per window: after it, sign-in works again
    env.advance(301 * 1000)
    r = Session(env.server).login(u["username"], pw)
    f.check(r.status == 200, "login after the throttle window: " + r.describe())
    f.raise_if_any()


def parallel_logins(env, username, passwords, right=None, right_delay=0.005):
    """Signs in with every wrong password at once (and the right one a few
    ms later when given); returns the right one's Session, or None."""
    out = {}

    def go(key, pw, delay):
        time.sleep(delay)
        s = Session(env.server)
        s.login(username, pw)
        out[key] = s

    ts = [threading.Thread(target=go, args=(i, pw, 0)) for i, pw in enumerate(passwords)]
    if right is not None:
        ts.append(threading.Thread(target=go, args=("right", right, right_delay)))
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out.get("right")


def test_parallel_failures_lock_once_and_a_guess_in_flight_gains_nothing(ctx):
    """Sign-ins race the lockout (--hash-concurrency 8, so guesses hash side
    by side): a lock "until an administrator unlocks" is applied once (one
    auth.locked event, one mail, never mistaken for the last administrator's
    pause, so it never runs out), and a right password in flight while the
    lock commits leaves no session that outlives it."""
    env = start_auth_server(ctx, extra_args=["--hash-concurrency", "8"])
    env.patch_auth({"lockout": {"enabled": True, "max_failures": 3, "window_minutes": 15,
                                "duration_minutes": 0, "notify_user": True}})
    f = Failures()
    u, pw = env.user()
    parallel_logins(env, u["username"], ["Wrong" + strong_password() for _ in range(8)])
    f.check(status(env, u["id"]) == "locked", "not locked after 8 parallel failures")
    locks = events(env.admin, u["id"], "auth.locked")
    f.check(len(locks) == 1, "auth.locked events: %r" % [event_reason(e) for e in locks])
    f.check(all(event_reason(e) == "too_many_failed_sign_ins" for e in locks),
            "lock reasons: %r" % [event_reason(e) for e in locks])
    env.mail(u["email"], "account_locked")
    env.smtp.none_for("nobody@example.invalid", wait=1.0)
    f.check(len(env.mails(u["email"], "account_locked")) == 1,
            "account_locked mails: %d" % len(env.mails(u["email"], "account_locked")))
    # a right password in flight: whatever it got, no session survives the lock
    for trial in range(4):
        v, vpw = env.user()
        s = parallel_logins(env, v["username"], ["Wrong" + strong_password() for _ in range(8)],
                            right=vpw)
        got = s.login_response.status
        f.check(got in (200, 401), "trial %d: right password got %s" % (trial, got))
        if status(env, v["id"]) != "locked":
            continue
        if got == 200:
            f.check(not s.alive(), "trial %d: the right guess's session works while locked" %
                    trial)
        r = env.admin.post(upath(v["id"], "/unlock"), {})
        f.check(r.status == 200, "unlock: " + r.describe())
        if got == 200:
            f.check(not s.alive(), "trial %d: the session made while the lock committed "
                    "works after the unlock" % trial)
    # the lock until an administrator unlocks does not run out
    env.advance(20 * MIN)
    env.smtp.none_for("nobody@example.invalid", wait=1.0)
    f.check(status(env, u["id"]) == "locked", "the until-unlock lock ran out after 20 minutes")
    f.run("right password 20 minutes later", check_generic_401,
          Session(env.server).login(u["username"], pw), "right password, locked")
    f.raise_if_any()
