"""Lifecycle (docs/design/users-contract.md, "Lifecycle" and "Erase"): every
allowed transition and every refused one (409 rule `transition`, the allowed
actions named in the detail), deactivation reasons and notes, the effects (API
keys of an inactive or locked user stop at once and work again after
reactivate/unlock; status_reason/status_note/status_changed_at), one audit
event per action with its reason and note, If-Match on actions, last
administrator protection, erase (anonymised fields, audit trail kept, keys
revoked, no further changes) and DELETE -> 405.

Every refused request is checked for its status, problem body and for having
changed nothing (the user, its ETag and its history)."""

import json
import threading

from harness import (Failures, ISO_MS, admin_user, check_problem, create_user, expect,
                     expect_eq, expect_status, history, parse_allow, unique_tag, urlq,
                     user_total)

USERS = "/api/v1/users"
KEYS = "/api/v1/api-keys"
FIELDS = "/api/v1/settings/users/fields"
ACTIONS = ("activate", "deactivate", "reactivate", "lock", "unlock")
ALLOWED = {"pending": ("activate",), "active": ("deactivate", "lock"),
           "inactive": ("reactivate",), "locked": ("unlock",)}
TARGET = {"activate": "active", "deactivate": "inactive", "reactivate": "active",
          "lock": "locked", "unlock": "active"}
REASONS = ("left_company", "temporary_leave", "security_concern", "other")


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def act(c, uid, action, body=None, **kw):
    if body is None:
        body = {"reason": "left_company"} if action == "deactivate" else {}
    return c.post(upath(uid, "/" + action), body, **kw)


def must_act(c, uid, action, body=None, **kw):
    r = act(c, uid, action, body, **kw)
    expect_status(r, 200)
    return r.json


def user_state(c, uid):
    g = c.get(upath(uid))
    h = c.get(upath(uid, "/history"))
    return {"user": (g.status, g.json, g.header("ETag")),
            "history": [e.get("id") for e in (h.json or {}).get("items", [])]}


def watch(c, *uids):
    return lambda: {"total": user_total(c), "users": [user_state(c, u) for u in uids]}


def case(f, label, snap, do, status, field=None, rule=None, detail=None, any_field=False):
    """A request that must be refused and change nothing. With any_field, the
    rule is looked for on any errors[] entry (the contract names no field)."""
    before = snap()
    r = None
    try:
        r = do()
        if isinstance(status, tuple):
            alts = dict(status)
            st = r.status if r.status in alts else status[0][0]
            rule = alts.get(st, rule)
            status = st
        b = check_problem(r, status, field=field, rule=rule)
        if any_field and rule is not None:
            errs = b.get("errors") or []
            expect(any(isinstance(e, dict) and e.get("rule") == rule for e in errs),
                   "want an errors[] entry with rule %r: %s" % (rule, r.describe()))
        if detail is not None:
            expect_eq(b.get("detail"), detail, "problem detail", r)
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    after = snap()
    if after != before:
        diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        f.items.append("%s: the refused request changed state: %s" % (
            label, json.dumps(diff, ensure_ascii=False)[:800]))
    return r


def new_key(c, username):
    r = c.post(KEYS, {"name": "lc-" + unique_tag(), "username": username})
    expect_status(r, 201)
    return r.json


def key_probe(ctx, token):
    """A request any authenticated user may make (their own API keys). What a
    user may do is the access model's business; here only whether the key
    authenticates matters: 401 or not."""
    return ctx.client(token=token).get(KEYS)


def authenticates(r):
    return r.status != 401 and r.status < 500


def expect_401(r, what):
    try:
        check_problem(r, 401, errors_expected=False)
    except AssertionError as e:
        raise AssertionError("%s: %s" % (what, e))
    www = r.header("WWW-Authenticate") or ""
    expect(www.split(" ")[0].lower() == "bearer", "%s: WWW-Authenticate %r" % (what, www))


def in_state(c, state, tag):
    """A fresh user in the given state, reached through the API."""
    u = create_user(c, "s" + state[:3] + unique_tag() + tag,
                    status="pending" if state == "pending" else "active")
    if state == "inactive":
        u = must_act(c, u["id"], "deactivate", {"reason": "temporary_leave"})
    elif state == "locked":
        u = must_act(c, u["id"], "lock")
    expect_eq(u["status"], state, "status of the fixture user")
    return u


# ---------------------------------------------------------------------------


def test_allowed_transitions_and_what_they_record(ctx):
    c = ctx.client()
    u = create_user(c, "lt" + unique_tag(), status="pending")
    f = Failures()
    f.check(u["status"] == "pending", "created as %r" % u["status"])
    steps = [("activate", {"note": "welcome aboard"}, None, "welcome aboard"),
             ("lock", {"note": "odd sign-ins"}, None, "odd sign-ins"),
             ("unlock", {"note": "cleared by IT"}, None, "cleared by IT"),
             ("deactivate", {"reason": "temporary_leave", "note": "parental leave"},
              "temporary_leave", "parental leave"),
             ("reactivate", {}, None, None),
             ("deactivate", {"reason": "security_concern"}, "security_concern", None),
             ("reactivate", {"note": "back"}, None, "back")]
    cur = u
    hist = history(c, u["id"])
    for action, body, reason, note in steps:
        label = "%s %s" % (action, json.dumps(body))
        r = act(c, u["id"], action, body)
        if not f.check(r.status == 200, "%s: %s" % (label, r.describe())):
            break
        p = r.json
        want_status = TARGET[action]
        f.check(p.get("status") == want_status, "%s: status %r, want %r" % (
            label, p.get("status"), want_status))
        f.check(p.get("status_reason") == reason and p.get("status_note") == note,
                "%s: status_reason/status_note %r/%r, want %r/%r" % (
                    label, p.get("status_reason"), p.get("status_note"), reason, note))
        sca = p.get("status_changed_at")
        f.check(isinstance(sca, str) and ISO_MS.match(sca) and sca >= (
            cur.get("status_changed_at") or cur["created_at"]),
            "%s: status_changed_at %r (before %r)" % (label, sca, cur.get("status_changed_at")))
        f.check(p.get("version") == cur["version"] + 1 and r.header("ETag") == '"%d"' % (
            cur["version"] + 1), "%s: version %r / ETag %r after version %d" % (
                label, p.get("version"), r.header("ETag"), cur["version"]))
        for k in ("username", "email", "first_name", "last_name", "type", "created_at"):
            f.check(p.get(k) == u[k], "%s changed %s" % (label, k))
        g = c.get(upath(u["id"]))
        f.check(g.json == p, "%s: GET differs from the response" % label)
        h = history(c, u["id"])
        f.check(len(h) == len(hist) + 1, "%s: %d new audit events, want 1" % (
            label, len(h) - len(hist)))
        ev = h[0]
        f.check(ev.get("action") == "user." + action, "%s: event %r" % (label, ev.get("action")))
        f.check((ev.get("before") or {}).get("status") == cur["status"]
                and (ev.get("after") or {}).get("status") == want_status,
                "%s: event before/after %r/%r" % (label, ev.get("before"), ev.get("after")))
        f.check(ev.get("request_id") == r.header("X-Request-Id"), "%s: event request_id" % label)
        f.check(ev.get("actor_name") == "admin" and isinstance(ev.get("actor_id"), int)
                and isinstance(ev.get("at"), str) and bool(ISO_MS.match(ev["at"]))
                and ev.get("target_id") == u["id"],
                "%s: event actor/at/target %r/%r/%r/%r" % (label, ev.get("actor_name"),
                                                         ev.get("actor_id"), ev.get("at"),
                                                         ev.get("target_id")))
        if reason:
            f.check(ev.get("reason") == reason, "%s: event reason %r, want %r" % (
                label, ev.get("reason"), reason))
        if note:
            f.check(note in json.dumps(ev, ensure_ascii=False), "%s: the note %r is not in the "
                    "event %s" % (label, note, json.dumps(ev)[:400]))
        cur, hist = p, h
    f.raise_if_any()


def test_refused_transitions_name_the_allowed_actions(ctx):
    c = ctx.client()
    t = unique_tag(4)
    f = Failures()
    for state, allowed in ALLOWED.items():
        u = in_state(c, state, t)
        snap = watch(c, u["id"])
        for action in ACTIONS:
            if action in allowed:
                continue
            body = {"reason": "left_company", "note": "n"} if action == "deactivate" else {}
            r = case(f, "%s a %s user" % (action, state), snap,
                     lambda u=u, action=action, body=body: act(c, u["id"], action, body),
                     409, "status", "transition")
            if r is None or r.status != 409 or not isinstance(r.json, dict):
                continue
            head = "cannot %s a user who is %s; from %s the allowed actions are: " % (
                action, state, state)
            d = r.json.get("detail") or ""
            # reading: several allowed actions are listed ", "-separated, in any order
            f.check(d.startswith(head) and sorted(d[len(head):].split(", ")) == sorted(allowed),
                    "%s a %s user: detail %r, want %r + %s" % (action, state, d, head,
                                                             " / ".join(allowed)))
    f.raise_if_any()


def test_deactivate_reason_and_note_rules(ctx):
    c = ctx.client()
    u = create_user(c, "dr" + unique_tag())
    snap = watch(c, u["id"])
    f = Failures()
    for label, body, status, field, rule in (
            ("no reason", {}, 422, "reason", "required"),
            ("note but no reason", {"note": "gone"}, 422, "reason", "required"),
            ("unknown reason", {"reason": "fired"}, 422, "reason", "enum"),
            ("reason in upper case", {"reason": "LEFT_COMPANY"}, 422, "reason", "enum"),
            ("other without a note", {"reason": "other"}, 422, "note", "required"),
            ("other with an empty note", {"reason": "other", "note": "  "}, 422, "note",
             ("required", "min_length")),
            ("other with a null note", {"reason": "other", "note": None}, 422, "note",
             "required"),
            ("reason of the wrong type", {"reason": 5}, 400, "reason", "type"),
            ("note of the wrong type", {"reason": "other", "note": ["x"]}, 400, "note", "type"),
            ("unknown field", {"reason": "left_company", "effective": "2026-01-01"}, 400,
             "effective", "unknown_field")):
        case(f, "deactivate with " + label, snap,
             lambda body=body: act(c, u["id"], "deactivate", body), status, field, rule)
    # other actions take only a note
    case(f, "lock with a reason", snap, lambda: act(c, u["id"], "lock", {"reason": "other"}),
         400, "reason", "unknown_field")
    case(f, "lock with a note of the wrong type", snap,
         lambda: act(c, u["id"], "lock", {"note": 7}), 400, "note", "type")
    # every reason is accepted
    for reason in REASONS:
        v = create_user(c, "dv" + unique_tag())
        body = {"reason": reason, "note": "because"} if reason == "other" else {"reason": reason}
        r = act(c, v["id"], "deactivate", body)
        f.check(r.status == 200 and r.json.get("status") == "inactive"
                and r.json.get("status_reason") == reason,
                "deactivate with %s: %s" % (reason, r.describe()))
    f.raise_if_any()


def test_inactive_or_locked_users_key_stops_at_once(ctx):
    c = ctx.client()
    u = create_user(c, "ky" + unique_tag())
    k = new_key(c, u["username"])
    tok = k["token"]
    f = Failures()
    r = key_probe(ctx, tok)
    f.check(authenticates(r), "the new key does not work: " + r.describe())
    for off, on, body in (("deactivate", "reactivate", {"reason": "temporary_leave"}),
                          ("lock", "unlock", {"note": "check"})):
        must_act(c, u["id"], off, body)
        try:
            expect_401(key_probe(ctx, tok), "key right after %s" % off)
        except AssertionError as e:
            f.items.append(str(e))
        must_act(c, u["id"], on)
        r = key_probe(ctx, tok)
        f.check(authenticates(r), "key right after %s: %s" % (on, r.describe()))
    # deactivation keeps the record, its manager link, role and the links to it
    boss = create_user(c, "kb" + unique_tag())
    v = create_user(c, "kv" + unique_tag(), manager_id=boss["id"], role="clerk",
                    department="Sales", phone="+1 555-0100")
    rep = create_user(c, "kr" + unique_tag(), manager_id=v["id"])
    d = must_act(c, v["id"], "deactivate", {"reason": "left_company"})
    f.check({k: d.get(k) for k in ("manager_id", "role", "department", "phone", "username")} ==
            {k: v[k] for k in ("manager_id", "role", "department", "phone", "username")},
            "deactivation changed the record: %s" % json.dumps(d)[:400])
    f.check(c.get(upath(rep["id"])).json.get("manager_id") == v["id"],
            "a report lost its (deactivated) manager")
    # the key itself was never revoked
    items = c.get(KEYS).json["items"]
    mine = [x for x in items if x.get("id") == k["id"]]
    f.check(mine and mine[0].get("revoked_at") is None, "key after the round trips: %s" % mine)
    f.raise_if_any()


def test_if_match_on_actions(ctx):
    c = ctx.client()
    u = create_user(c, "if" + unique_tag())
    expect_status(c.patch(upath(u["id"]), {"position": "Clerk"}), 200)      # version 2
    snap = watch(c, u["id"])
    f = Failures()
    for action in ("lock", "deactivate"):
        before = snap()
        r = act(c, u["id"], action, headers={"If-Match": '"1"'})
        f.check(r.status == 412 and r.content_type() == "application/problem+json",
                "%s with a stale If-Match: %s" % (action, r.describe()))
        f.check(snap() == before, "%s with a stale If-Match changed state" % action)
    r = act(c, u["id"], "lock", headers={"If-Match": '"2"'})
    f.check(r.status == 200 and r.json.get("status") == "locked" and r.json.get("version") == 3,
            "lock with the current If-Match: " + r.describe())
    r = act(c, u["id"], "unlock", headers={"If-Match": '"3"'})
    f.check(r.status == 200 and r.json.get("version") == 4, "unlock with If-Match 3: " +
            r.describe())
    f.raise_if_any()


def test_actions_on_unknown_users_are_404(ctx):
    c = ctx.client()
    f = Failures()
    for action in ACTIONS + ("erase",):
        body = {"reason": "other", "note": "x"} if action == "deactivate" else {"note": "x"}
        r = c.post(upath(987654321, "/" + action), body)
        f.check(r.status == 404 and r.content_type() == "application/problem+json",
                "%s of an unknown user: %s" % (action, r.describe()))
    f.raise_if_any()


def test_last_administrator_is_protected(ctx):
    srv = ctx.new_server()                # admin is the only admin-type user here
    try:
        c = srv.client()
        admin = admin_user(c)
        expect_eq(admin["type"], "admin", "type of the first-run admin")
        f = Failures()
        snap = watch(c, admin["id"])
        for action, body in (("deactivate", {"reason": "other", "note": "test"}),
                             ("lock", {})):
            case(f, "%s the only admin" % action, snap,
                 lambda action=action, body=body: act(c, admin["id"], action, body),
                 409, None, "last_admin", any_field=True)
        # a pending admin-type user does not count
        create_user(c, "pa" + unique_tag(), type="admin", status="pending")
        case(f, "lock the only active admin (another is pending)", snap,
             lambda: act(c, admin["id"], "lock", {}), 409, None, "last_admin", any_field=True)
        # with a second active admin either may go, but not both
        a2 = create_user(c, "a2" + unique_tag(), type="admin")
        c2 = srv.client(token=new_key(c, a2["username"])["token"])
        r = act(c, a2["id"], "deactivate", {"reason": "temporary_leave"})
        f.check(r.status == 200, "deactivate the second admin: " + r.describe())
        must_act(c, a2["id"], "reactivate")
        r = act(c2, admin["id"], "lock", {})
        f.check(r.status == 200, "lock the first admin while a second is active: " +
                r.describe())
        snap2 = watch(c2, a2["id"])
        case(f, "deactivate the second admin once the first is locked", snap2,
             lambda: act(c2, a2["id"], "deactivate", {"reason": "left_company"}),
             409, None, "last_admin", any_field=True)
        case(f, "lock the second admin once the first is locked", snap2,
             lambda: act(c2, a2["id"], "lock", {}), 409, None, "last_admin", any_field=True)
        r = act(c2, admin["id"], "unlock", {})
        f.check(r.status == 200, "unlock the first admin: " + r.describe())
        # the two admins lock each other at the same moment: one of them stays
        for i in range(5):
            barrier = threading.Barrier(2)
            out = [None, None]

            def run(j, client, uid):
                barrier.wait(5)
                out[j] = act(client, uid, "lock", {})
            ts = [threading.Thread(target=run, args=(0, c, a2["id"])),
                  threading.Thread(target=run, args=(1, c2, admin["id"]))]
            for th in ts:
                th.start()
            for th in ts:
                th.join(30)
            st = [getattr(x, "status", None) for x in out]
            # the loser is refused as the last admin (409), or it was locked itself
            # while its request ran: its key no longer authenticates (401) or its
            # access is gone by the time it is checked (403); never are both locked
            if not f.check(sorted(st, key=str) in ([200, 409], [200, 401], [200, 403]),
                           "round %d: two admins lock each other at once: %s" % (i, st)):
                break
            loser = out[1 - st.index(200)]
            if loser.status == 409:
                errs = (loser.json or {}).get("errors") or []
                f.check(any(e.get("rule") == "last_admin" for e in errs),
                        "the refused lock: " + loser.describe())
            survivor = c if st[0] == 200 else c2
            states = [survivor.get(upath(x)).json.get("status") for x in (admin["id"], a2["id"])]
            # out[0] is admin locking a2: if it won, a2 is the locked one
            want = ["active", "locked"] if st[0] == 200 else ["locked", "active"]
            f.check(states == want, "round %d (%s): admin/second admin are %s, want %s" % (
                i, st, states, want))
            # the one left unlocks the other
            if st[0] == 200:
                r = act(c, a2["id"], "unlock", {})
            else:
                r = act(c2, admin["id"], "unlock", {})
            if not f.check(r.status == 200, "unlock after round %d: %s" % (i, r.describe())):
                break
        f.raise_if_any()
    finally:
        srv.stop()


def _erase_fixture(c, t):
    key = "secret_" + t
    expect_status(c.post(FIELDS, {"key": key, "label": "Secret", "type": "text"}), 201)
    boss = create_user(c, "eb" + t)
    personal = {"username": "eleanor" + t, "email": "eleanor.%s@example.org" % t,
                "first_name": "Eleanorq", "last_name": "Rigbyzz" + t, "phone": "+44 20 7946 0999",
                "employee_id": "EID" + t.upper(), "position": "Wedding Sweeper" + t}
    kept = {"department": "Church", "location": "Liverpool", "type": "guest",
            "role": "sweeper", "manager_id": boss["id"]}
    u = create_user(c, custom_fields={key: "rice-" + t}, **dict(personal, **kept))
    expect_status(c.patch(upath(u["id"]), {"location": "Liverpool", "position":
                                           personal["position"] + "s"}), 200)
    personal["position"] += "s"
    return key, personal, kept, u


def test_erase_anonymises_keeps_history_and_revokes_keys(ctx):
    c = ctx.client()
    t = unique_tag()
    key, personal, kept, u = _erase_fixture(c, t)
    uid = u["id"]
    k = new_key(c, personal["username"])
    r0 = key_probe(ctx, k["token"])
    expect(authenticates(r0), "the key does not work before the erase: " + r0.describe())
    h0 = history(c, uid)
    r = c.post(upath(uid, "/erase"), {"note": "DSAR-2026-17"})
    expect_status(r, 200)
    e = r.json
    f = Failures()
    want = {"username": "erased-%d" % uid, "email": "erased-%d@erased.invalid" % uid,
            "first_name": "Erased", "last_name": "User", "phone": None, "employee_id": None,
            "position": None, "status": "inactive", "status_reason": "erased"}
    want.update(kept)
    for k2, v in want.items():
        f.check(e.get(k2) == v, "erased %s = %r, want %r" % (k2, e.get(k2), v))
    f.check(e.get("custom_fields") in ({}, None), "custom_fields %r, want cleared" % (
        e.get("custom_fields"),))
    f.check(e.get("display_name") == "Erased User", "display_name %r" % (e.get("display_name"),))
    f.check(isinstance(e.get("erased_at"), str) and ISO_MS.match(e["erased_at"]),
            "erased_at %r" % (e.get("erased_at"),))
    f.check(e.get("version") == u["version"] + 2, "version %r" % (e.get("version"),))
    g = c.get(upath(uid))
    f.check(g.json == e, "GET differs from the erase response: " + g.describe())
    # nothing personal is left in the record, the profile or a search
    blob = json.dumps(g.json, ensure_ascii=False) + c.get(upath(uid, "/profile")).text
    for name, v in personal.items():
        f.check(v not in blob, "%s %r is still in the record/profile" % (name, v))
    for q in (personal["username"], personal["last_name"], personal["employee_id"]):
        lr = c.get(USERS + "?" + urlq(q=q))
        f.check(lr.status == 200 and lr.json["total"] == 0, "q=%s still finds: %s" % (
            q, lr.describe(300)))
    # keys revoked
    try:
        expect_401(key_probe(ctx, k["token"]), "the erased user's key")
    except AssertionError as ex:
        f.items.append(str(ex))
    mine = [x for x in c.get(KEYS).json["items"] if x.get("id") == k["id"]]
    f.check(mine and isinstance(mine[0].get("revoked_at"), str),
            "the erased user's key is not revoked: %s" % mine)
    # the audit trail is kept as it was, and the erase is audited without personal values
    h1 = history(c, uid)
    f.check(h1[1:] == h0, "the earlier audit events changed:\nbefore %s\nafter %s" % (
        json.dumps(h0)[:600], json.dumps(h1[1:])[:600]))
    ev = h1[0] if h1 else {}
    f.check(ev.get("action") == "user.erase", "newest event %r" % ev.get("action"))
    evs = json.dumps(ev, ensure_ascii=False)
    f.check("DSAR-2026-17" in evs, "the note is not in the erase event: " + evs[:400])
    f.check(ev.get("request_id") == r.header("X-Request-Id"), "erase event request_id")
    for name, v in list(personal.items()) + [("custom field", "rice-" + t)]:
        f.check(v not in evs, "the erase event carries %s %r: %s" % (name, v, evs[:400]))
    f.raise_if_any()


def test_erased_user_cannot_change(ctx):
    c = ctx.client()
    f = Failures()
    for start in ("locked", "pending"):
        u = in_state(c, start, unique_tag(3))
        r = c.post(upath(u["id"], "/erase"), {"note": "DSAR-%s" % unique_tag(3)})
        if not f.check(r.status == 200 and r.json.get("status") == "inactive"
                       and r.json.get("status_reason") == "erased",
                       "erase a %s user: %s" % (start, r.describe())):
            continue
        snap = watch(c, u["id"])
        case(f, "PATCH an erased user", snap,
             lambda u=u: c.patch(upath(u["id"]), {"first_name": "Back"}), 409, None, "erased",
             any_field=True)
        for action in ACTIONS:
            body = {"reason": "other", "note": "x"} if action == "deactivate" else {}
            case(f, "%s an erased user" % action, snap,
                 lambda u=u, action=action, body=body: act(c, u["id"], action, body),
                 409, None, "erased", any_field=True)
        case(f, "erase an erased user", snap,
             lambda u=u: c.post(upath(u["id"], "/erase"), {"note": "again"}), 409, None,
             "erased", any_field=True)
    f.raise_if_any()


def test_erase_needs_a_note_and_delete_is_405(ctx):
    c = ctx.client()
    u = create_user(c, "en" + unique_tag())
    snap = watch(c, u["id"])
    f = Failures()
    case(f, "erase without a note", snap, lambda: c.post(upath(u["id"], "/erase"), {}),
         422, "note", "required")
    case(f, "erase with a blank note", snap,
         lambda: c.post(upath(u["id"], "/erase"), {"note": " "}), 422, "note",
         ("required", "min_length"))
    case(f, "erase with a note of the wrong type", snap,
         lambda: c.post(upath(u["id"], "/erase"), {"note": 17}), 400, "note", "type")
    before = snap()
    r = c.request("DELETE", upath(u["id"]))
    f.check(r.status == 405 and r.content_type() == "application/problem+json",
            "DELETE a user: " + r.describe())
    allow = parse_allow(r.header("Allow"))
    f.check({"GET", "PATCH"} <= allow and "DELETE" not in allow, "Allow %r" % r.header("Allow"))
    f.check(snap() == before, "DELETE changed state")
    f.raise_if_any()
