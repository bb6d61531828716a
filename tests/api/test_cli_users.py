"""The CLI for the complete account (docs/design/users-contract.md, "CLI"):
user add with every field flag, user list filters, user show --json/--profile,
user edit with --clear, the lifecycle commands, user erase, settings users
show/set. The rules and messages are the API's: a refusal exits 1 with the
field, the rule and the API's message (or detail) on stderr and changes
nothing; usage errors exit 2; --help exits 0.

Runs against the database of the module's running server, so the API checks
what the CLI did (and produces the messages the CLI must repeat)."""

import json
import os
import sqlite3
import subprocess
import threading

from harness import (Failures, create_user, expect, expect_status, history,
                     unique_tag, urlq, user_body, user_total)

USERS = "/api/v1/users"
SETTINGS = "/api/v1/settings/users"
FIELDS = "/api/v1/settings/users/fields"
RECORD = ("id", "username", "email", "first_name", "last_name", "display_name", "phone",
          "employee_id", "department", "position", "manager_id", "location", "type", "status",
          "status_reason", "status_note", "status_changed_at", "role", "custom_fields",
          "created_at", "updated_at", "last_login_at", "erased_at", "version")


def cli(ctx, *args, db=True, env_db=False, timeout=60):
    """Runs roster with the module server's database: --db at the end, or
    ROSTER_DB with env_db (so a trailing option really is the last word)."""
    env = dict(os.environ)
    env.pop("ROSTER_DB", None)
    cmd = [ctx.binary] + list(args)
    if env_db:
        env["ROSTER_DB"] = ctx.server.db_url
    elif db:
        cmd += ["--db", ctx.server.db_url]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, env=env, timeout=timeout)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    p.cmd = " ".join(cmd[1:])
    return p


def show(p):
    return "`roster %s` -> exit %d, stdout %r, stderr %r" % (p.cmd, p.returncode, p.out[-600:],
                                                          p.err[-600:])


def expect_rc(p, rc):
    ok = p.returncode in rc if isinstance(rc, tuple) else p.returncode == rc
    expect(ok, "want exit %s: %s" % (rc, show(p)))
    return p


def parse_json(p):
    try:
        return json.loads(p.out)
    except ValueError:
        raise AssertionError("stdout is not JSON: " + show(p))


def as_items(obj):
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and isinstance(obj.get("items"), list):
        return obj["items"]
    raise AssertionError("not a JSON list of users: %r" % (obj,))


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def user_state(c, uid):
    g = c.get(upath(uid))
    h = c.get(upath(uid, "/history"))
    return {"user": (g.status, g.json, g.header("ETag")),
            "history": [e.get("id") for e in (h.json or {}).get("items", [])]}


def watch(c, *uids):
    return lambda: {"total": user_total(c), "users": [user_state(c, u) for u in uids]}


def refused(f, label, snap, run, api=None, texts=(), rc=1):
    """A CLI command that must be refused: exit rc, stderr naming the field and
    rule of the API's refusal (api: a response) and its message or detail,
    plus any texts; nothing changes."""
    before = snap()
    p = run()
    if f.check(p.returncode in (rc if isinstance(rc, tuple) else (rc,)),
               "%s: want exit %s: %s" % (label, rc, show(p))):
        want = list(texts)
        if api is not None:
            b = api.json or {}
            errs = b.get("errors") or []
            if f.check(api.status in (400, 409, 422) and errs,
                       "%s: the API did not refuse the same input: %s" % (label, api.describe())):
                e = errs[0]
                want += [e.get("field"), e.get("rule"), e.get("message")]
        for w in want:
            alts = w if isinstance(w, tuple) else (w,)
            f.check(any(a in p.err for a in alts), "%s: stderr lacks %s: %s" % (
                label, " or ".join(repr(a) for a in alts), show(p)))
    after = snap()
    if after != before:
        f.items.append("%s: the refused command changed state: %s" % (
            label, json.dumps({k: (before[k], after[k]) for k in before
                               if before[k] != after[k]}, ensure_ascii=False)[:600]))
    return p


def audit_count(ctx, action):
    """Audit events with this action in the module server's database."""
    url = ctx.server.db_url
    if url.startswith("sqlite:"):
        con = sqlite3.connect("file:%s?mode=ro" % ctx.sqlite_path(url), uri=True, timeout=10)
        try:
            return con.execute("SELECT count(*) FROM audit_events WHERE action = ?",
                               (action,)).fetchone()[0]
        finally:
            con.close()
    return int(ctx.suite.pg().psql(url.rsplit("/", 1)[1], "SELECT count(*) FROM audit_events "
                                   "WHERE action = '%s'" % action).strip())


def add_args(u):
    flags = {"username": "--username", "email": "--email", "first_name": "--first-name",
             "last_name": "--last-name", "phone": "--phone", "employee_id": "--employee-id",
             "department": "--department", "position": "--position", "manager": "--manager",
             "location": "--location", "type": "--type", "role": "--role", "status": "--status"}
    args = ["user", "add"]
    for k, flag in flags.items():
        if k in u:
            args += [flag, str(u[k])]
    for k, v in (u.get("cf") or {}).items():
        args += ["--cf", "%s=%s" % (k, v)]
    return args


def by_username(c, name):
    r = c.get(USERS + "?" + urlq(q=name, limit=500))
    expect_status(r, 200)
    hits = [u for u in r.json["items"] if u["username"] == name]
    expect(hits, "user %s not found: %s" % (name, r.describe(300)))
    return hits[0]


def cf_key(ctx):
    """A text custom field of the module (defined once)."""
    if "cf" not in ctx.state:
        key = "cc_" + unique_tag(5)
        r = ctx.client().post(FIELDS, {"key": key, "label": "Cost center", "type": "text"})
        expect_status(r, 201)
        ctx.state["cf"] = key
    return ctx.state["cf"]


# ---------------------------------------------------------------------------

HELP = [
    (["user", "add"], ("--phone", "--employee-id", "--department", "--position", "--manager",
                       "--location", "--role", "--status", "--cf")),
    (["user", "list"], ("--status", "--type", "--department", "--location", "--manager",
                        "--role", "--q", "--sort", "--limit", "--cf", "--json")),
    (["user", "show"], ("--json", "--profile")),
    (["user", "edit"], ("--clear", "--department", "--manager")),
    (["user", "deactivate"], ("--reason", "--note")),
    (["user", "reactivate"], ("--note",)), (["user", "activate"], ("--note",)),
    (["user", "lock"], ("--note",)), (["user", "unlock"], ("--note",)),
    (["user", "erase"], ("--note", "--yes")),
    (["user"], ("edit", "deactivate", "erase")),
    (["settings"], ("users",)), (["settings", "users"], ("show", "set")),
    (["settings", "users", "set"], ("=",)), (["settings", "users", "show"], ()),
    ([], ("settings",)),
]


def test_help_for_the_new_commands(ctx):
    f = Failures()
    for words, mentions in HELP:
        p = cli(ctx, *(words + ["--help"]), db=False)
        text = p.out + p.err
        if not f.check(p.returncode == 0 and text.strip(), "--help: " + show(p)):
            continue
        for m in mentions:
            f.check(m in text, "`roster %s --help` does not mention %s" % (" ".join(words), m))
    f.raise_if_any()


def test_add_with_every_flag(ctx):
    c = ctx.client()
    key = cf_key(ctx)
    t = unique_tag()
    boss = create_user(c, "cb" + t, first_name="Jane", last_name="Doe")
    u = {"username": "ca" + t, "email": "ca.%s@example.com" % t, "first_name": "Clíona",
         "last_name": "Ó Briain", "phone": "+353 1 555 0100", "employee_id": "CE" + t.upper(),
         "department": "Sales", "position": "Account Manager", "manager": boss["username"],
         "location": "Dublin", "type": "guest", "role": "sales_rep", "status": "pending",
         "cf": {key: "CC-7"}}
    expect_rc(cli(ctx, *add_args(u)), 0)
    got = by_username(c, u["username"])
    f = Failures()
    for k, v in u.items():
        if k == "manager":
            f.check(got.get("manager_id") == boss["id"], "manager_id %r, want %d" % (
                got.get("manager_id"), boss["id"]))
        elif k == "cf":
            f.check(got.get("custom_fields") == v, "custom_fields %r" % got.get("custom_fields"))
        else:
            f.check(got.get(k) == v, "%s = %r, want %r" % (k, got.get(k), v))
    ev = history(c, got["id"])
    f.check([e.get("action") for e in ev] == ["user.create"], "history %s" % [
        e.get("action") for e in ev])
    # --manager by id
    v = {"username": "cm" + t, "email": "cm.%s@example.com" % t, "first_name": "M",
         "last_name": "Id", "manager": str(boss["id"])}
    expect_rc(cli(ctx, *add_args(v)), 0)
    f.check(by_username(c, v["username"]).get("manager_id") == boss["id"], "--manager ID")
    # show --json is the API's record
    p = expect_rc(cli(ctx, "user", "show", u["username"], "--json"), 0)
    j = parse_json(p)
    g = c.get(upath(got["id"])).json
    diff = {k: (j.get(k), g.get(k)) for k in RECORD if j.get(k) != g.get(k)}
    f.check(not diff, "show --json differs from the API (cli, api): %s" % diff)
    f.raise_if_any()


def test_add_refusals_match_the_api(ctx):
    c = ctx.client()
    key = cf_key(ctx)
    t = unique_tag()
    existing = create_user(c, "cx" + t, employee_id="DUP" + t.upper())
    snap = watch(c, existing["id"])
    f = Failures()
    base = {"username": "cy" + t, "email": "cy.%s@example.com" % t, "first_name": "C",
            "last_name": "Y"}
    for label, extra, api_extra in (
            ("bad role", {"role": "Bad Role"}, {"role": "Bad Role"}),
            ("bad phone", {"phone": "call me"}, {"phone": "call me"}),
            ("status locked", {"status": "locked"}, {"status": "locked"}),
            ("bad type", {"type": "root"}, {"type": "root"}),
            ("long department", {"department": "d" * 101}, {"department": "d" * 101}),
            ("duplicate employee id", {"employee_id": "dup" + t}, {"employee_id": "dup" + t}),
            ("unknown custom field", {"cf": {"nokey_" + t: "x"}},
             {"custom_fields": {"nokey_" + t: "x"}}),
            ("unknown manager id",
             {"manager": "987654321", "cf": {key: "ok"}}, {"manager_id": 987654321,
                                                           "custom_fields": {key: "ok"}})):
        api = c.post(USERS, dict(base, **api_extra))
        refused(f, label, snap, lambda extra=extra: cli(ctx, *add_args(dict(base, **extra))),
                api=api)
    refused(f, "unknown manager username", snap,
            lambda: cli(ctx, *add_args(dict(base, manager="nobody" + t))), texts=("manager",))
    f.raise_if_any()


def test_list_filters_and_sort(ctx):
    c = ctx.client()
    key = cf_key(ctx)
    t = "cl" + unique_tag(5)
    boss = create_user(c, t + "boss", department="Mgmt")
    us = [create_user(c, t + "%02d" % i, department=["Sales", "Ops"][i % 2],
                      location=["Oslo", "Bergen", "Oslo"][i % 3], role=["clerk", "lead"][i // 3],
                      type=["standard", "guest"][i % 2], status=["active", "pending"][i // 4],
                      manager_id=boss["id"] if i % 3 == 0 else None,
                      custom_fields={key: "CC-%d" % (i % 2)}) for i in range(6)]
    names = {u["username"]: u for u in us}
    f = Failures()
    for flags, pred in (
            (["--department", "Sales"], lambda u: u["department"] == "Sales"),
            (["--location", "Oslo"], lambda u: u["location"] == "Oslo"),
            (["--status", "pending"], lambda u: u["status"] == "pending"),
            (["--type", "guest"], lambda u: u["type"] == "guest"),
            (["--role", "lead"], lambda u: u["role"] == "lead"),
            (["--manager", boss["username"]], lambda u: u["manager_id"] == boss["id"]),
            (["--manager", str(boss["id"])], lambda u: u["manager_id"] == boss["id"]),
            (["--cf", key + "=CC-1"], lambda u: u["custom_fields"].get(key) == "CC-1"),
            (["--department", "Ops", "--location", "Bergen"],
             lambda u: (u["department"], u["location"]) == ("Ops", "Bergen"))):
        p = cli(ctx, "user", "list", "--q", t, "--json", "--limit", "500", *flags)
        if not f.check(p.returncode == 0, show(p)):
            continue
        try:
            got = sorted(i.get("username") for i in as_items(parse_json(p)))
        except AssertionError as e:
            f.items.append(str(e))
            continue
        want = sorted(n for n, u in names.items() if pred(u))
        f.check(got == want and want, "list %s: %s, want %s" % (" ".join(flags), got, want))
    p = cli(ctx, "user", "list", "--q", t, "--sort", "-department,-username", "--json")
    api = c.get(USERS + "?" + urlq(q=t, sort="-department,-username")).json["items"]
    if f.check(p.returncode == 0, show(p)):
        f.check([i.get("username") for i in as_items(parse_json(p))] ==
                [u["username"] for u in api], "--sort -department,-username differs from the "
                "API: " + show(p))
    p = cli(ctx, "user", "list", "--q", t, "--limit", "2", "--json")
    f.check(p.returncode == 0 and len(as_items(parse_json(p))) == 2, "--limit 2: " + show(p))
    p = cli(ctx, "user", "list", "--q", t, "--department", "Sales")
    f.check(p.returncode == 0 and us[0]["username"] in p.out and us[1]["username"] not in p.out,
            "plain list with --department: " + show(p))
    for flags in (["--status", "bogus"], ["--sort", "password"], ["--cf", "nokey=1"]):
        p = cli(ctx, "user", "list", *flags)
        f.check(p.returncode in (1, 2) and p.err.strip(), "list %s: %s" % (" ".join(flags),
                                                                             show(p)))
    f.raise_if_any()


def test_show_profile(ctx):
    c = ctx.client()
    t = unique_tag()
    boss = create_user(c, "sb" + t, first_name="Jane", last_name="Doe")
    u = create_user(c, "sp" + t, department="Sales", position="Clerk", location="Oslo",
                    manager_id=boss["id"], role="clerk", phone="+47 22 12 34 56")
    api = c.get(upath(u["id"], "/profile"))
    expect_status(api, 200)
    f = Failures()
    for ref in (u["username"], str(u["id"])):
        p = cli(ctx, "user", "show", ref, "--profile")
        if not f.check(p.returncode == 0, show(p)):
            continue
        try:
            j = json.loads(p.out)
        except ValueError:
            j = None
        if j is not None:
            f.check(j == api.json, "show --profile JSON differs from GET /profile: %s vs %s" % (
                p.out[:400], api.text[:400]))
        else:   # reading: a text rendering of the three sections
            low = p.out.lower()
            for w in ("personal", "organization", "system", "Jane Doe", "Sales",
                      "+47 22 12 34 56", u["email"]):
                f.check(w.lower() in low, "show --profile lacks %r: %s" % (w, show(p)))
    p = cli(ctx, "user", "show", "nobody" + t, "--profile")
    f.check(p.returncode == 1 and p.err.strip(), "--profile of an unknown user: " + show(p))
    f.raise_if_any()


def test_edit_and_clear(ctx):
    c = ctx.client()
    key = cf_key(ctx)
    t = unique_tag()
    boss = create_user(c, "eb" + t)
    u = create_user(c, "ed" + t, phone="+1 555-0100", department="Sales", position="Clerk")
    f = Failures()
    p = cli(ctx, "user", "edit", u["username"], "--department", "Ops", "--location", "Oslo",
            "--manager", boss["username"], "--role", "ops_lead", "--cf", key + "=CC-9",
            "--first-name", "Edda")
    if f.check(p.returncode == 0, show(p)):
        g = c.get(upath(u["id"])).json
        f.check((g["department"], g["location"], g["manager_id"], g["role"], g["first_name"],
                 g["custom_fields"].get(key), g["phone"]) ==
                ("Ops", "Oslo", boss["id"], "ops_lead", "Edda", "CC-9", "+1 555-0100"),
                "after edit: %s" % json.dumps(g)[:500])
        ev = history(c, u["id"])[0]
        f.check(ev.get("action") == "user.update" and "position" not in json.dumps(
            ev.get("after")), "edit's audit event: %s" % json.dumps(ev)[:400])
    p = cli(ctx, "user", "edit", str(u["id"]), "--clear", "phone", "--clear", "position")
    if f.check(p.returncode == 0, show(p)):
        g = c.get(upath(u["id"])).json
        f.check(g["phone"] is None and g["position"] is None and g["department"] == "Ops",
                "after --clear phone --clear position: %s" % json.dumps(g)[:400])
    snap = watch(c, u["id"])
    refused(f, "edit --role 'Bad Role'", snap,
            lambda: cli(ctx, "user", "edit", u["username"], "--role", "Bad Role"),
            api=c.patch(upath(u["id"]), {"role": "Bad Role"}))
    refused(f, "edit --manager itself", snap,
            lambda: cli(ctx, "user", "edit", u["username"], "--manager", u["username"]),
            api=c.patch(upath(u["id"]), {"manager_id": u["id"]}))
    refused(f, "edit --clear first_name", snap,
            lambda: cli(ctx, "user", "edit", u["username"], "--clear", "first_name"),
            texts=(("first_name", "first-name"),), rc=(1, 2))
    refused(f, "edit --clear bogus", snap,
            lambda: cli(ctx, "user", "edit", u["username"], "--clear", "bogus"),
            texts=("bogus",), rc=(1, 2))
    refused(f, "edit an unknown user", snap,
            lambda: cli(ctx, "user", "edit", "nobody" + t, "--department", "X"))
    f.raise_if_any()


def test_writes_are_read_at_once(ctx):
    """A commit is in the very next read, whether another process made it
    (the CLI) or this server (PATCH), while other clients keep the event
    loops reading: on SQLite a loop may keep its read snapshot between
    requests (src/store/sqlite.c, "Kept read snapshots") and must never serve
    one that predates a commit. The clients check from several connections,
    so both loops answer."""
    c = ctx.client()
    u = create_user(c, "rw" + unique_tag(), department="D0")
    stop = threading.Event()
    seen = []

    def hammer():
        hc = ctx.client()
        while not stop.is_set():
            seen.append(hc.get(upath(u["id"])).status)

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    readers = [ctx.client() for _ in range(4)]
    f = Failures()
    try:
        for i in range(1, 41):
            want = "D%d" % i
            if i % 5 == 0:
                p = cli(ctx, "user", "edit", str(u["id"]), "--department", want)
                if not f.check(p.returncode == 0, show(p)):
                    break
                how = "the CLI"
            else:
                r = c.patch(upath(u["id"]), {"department": want})
                if not f.check(r.status == 200, "PATCH: %s" % r.describe()):
                    break
                how = "PATCH"
            for rc in readers:
                g = rc.get(upath(u["id"]))
                f.check(g.status == 200 and g.json["department"] == want,
                        "write %d by %s, then GET: %s %s" % (i, how, g.status, g.text[:160]))
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    f.check(len(seen) > 0 and set(seen) == {200}, "hammer statuses: %s" % sorted(set(seen)))
    f.raise_if_any()


def test_lifecycle_commands(ctx):
    c = ctx.client()
    t = unique_tag()
    u = create_user(c, "lc" + t, status="pending")
    f = Failures()
    for args, status, action in (
            (["activate", u["username"], "--note", "hello"], "active", "activate"),
            (["lock", str(u["id"]), "--note", "odd"], "locked", "lock"),
            (["unlock", u["username"]], "active", "unlock"),
            (["deactivate", u["username"], "--reason", "left_company", "--note", "bye"],
             "inactive", "deactivate"),
            (["reactivate", u["username"], "--note", "back"], "active", "reactivate")):
        p = cli(ctx, "user", *args)
        if not f.check(p.returncode == 0, show(p)):
            continue
        g = c.get(upath(u["id"])).json
        ev = history(c, u["id"])[0]
        f.check(g["status"] == status and ev.get("action") == "user." + action,
                "after `user %s`: status %r, event %r" % (" ".join(args), g["status"],
                                                          ev.get("action")))
        if action == "deactivate":
            f.check(ev.get("reason") == "left_company" and g.get("status_reason") ==
                    "left_company", "deactivate's reason: event %r, user %r" % (
                        ev.get("reason"), g.get("status_reason")))
        note = args[args.index("--note") + 1] if "--note" in args else None
        f.check(g.get("status_note") == note, "after `user %s`: status_note %r" % (
            " ".join(args), g.get("status_note")))
    g = c.get(upath(u["id"])).json
    f.check(g.get("status_reason") is None, "status_reason after reactivate: %r" % (
        g.get("status_reason"),))
    # refusals: the API's words
    p2 = create_user(c, "lp" + t, status="pending")
    snap = watch(c, p2["id"])
    refused(f, "deactivate a pending user", snap,
            lambda: cli(ctx, "user", "deactivate", p2["username"], "--reason", "left_company"),
            api=c.post(upath(p2["id"], "/deactivate"), {"reason": "left_company"}),
            texts=("cannot deactivate a user who is pending; from pending the allowed actions "
                   "are: activate",))
    refused(f, "unlock a pending user", snap,
            lambda: cli(ctx, "user", "unlock", p2["username"]),
            api=c.post(upath(p2["id"], "/unlock"), {}))
    a = create_user(c, "la" + t)
    snap = watch(c, a["id"])
    refused(f, "deactivate --reason fired", snap,
            lambda: cli(ctx, "user", "deactivate", a["username"], "--reason", "fired"),
            api=c.post(upath(a["id"], "/deactivate"), {"reason": "fired"}))
    refused(f, "deactivate --reason other without a note", snap,
            lambda: cli(ctx, "user", "deactivate", a["username"], "--reason", "other"),
            api=c.post(upath(a["id"], "/deactivate"), {"reason": "other"}))
    refused(f, "deactivate without --reason", snap,
            lambda: cli(ctx, "user", "deactivate", a["username"]), texts=("reason",),
            rc=(1, 2))
    refused(f, "lock an unknown user", snap, lambda: cli(ctx, "user", "lock", "nobody" + t))
    f.raise_if_any()


def test_erase_command(ctx):
    c = ctx.client()
    t = unique_tag()
    u = create_user(c, "er" + t, phone="+1 555-0100", department="Legal")
    snap = watch(c, u["id"])
    f = Failures()
    refused(f, "erase without --yes", snap,
            lambda: cli(ctx, "user", "erase", u["username"], "--note", "DSAR-1"), rc=(1, 2),
            texts=("--yes",))
    refused(f, "erase without --note", snap,
            lambda: cli(ctx, "user", "erase", u["username"], "--yes"), rc=(1, 2),
            texts=("note",))
    p = cli(ctx, "user", "erase", u["username"], "--note", "DSAR-2026-17", "--yes")
    if f.check(p.returncode == 0, show(p)):
        g = c.get(upath(u["id"])).json
        f.check((g["username"], g["email"], g["first_name"], g["last_name"], g["phone"],
                 g["department"], g["status"], g["status_reason"]) ==
                ("erased-%d" % u["id"], "erased-%d@erased.invalid" % u["id"], "Erased", "User",
                 None, "Legal", "inactive", "erased") and g.get("erased_at"),
                "after erase: %s" % json.dumps(g)[:500])
        ev = history(c, u["id"])[0]
        f.check(ev.get("action") == "user.erase" and "DSAR-2026-17" in json.dumps(ev),
                "erase event %s" % json.dumps(ev)[:300])
        snap = watch(c, u["id"])
        refused(f, "reactivate an erased user", snap,
                lambda: cli(ctx, "user", "reactivate", str(u["id"])),
                api=c.post(upath(u["id"], "/reactivate"), {}), texts=("erased",))
        refused(f, "edit an erased user", snap,
                lambda: cli(ctx, "user", "edit", str(u["id"]), "--department", "X"),
                texts=("erased",))
    f.raise_if_any()


def test_settings_show_and_set(ctx):
    c = ctx.client()
    f = Failures()
    p = cli(ctx, "settings", "users", "show")
    api = c.get(SETTINGS).json
    if f.check(p.returncode == 0, show(p)):
        try:
            j = json.loads(p.out)
        except ValueError:
            j = None
        if j is not None:
            f.check(j == api, "settings users show differs from the API: %s vs %s" % (
                p.out[:300], json.dumps(api)[:300]))
        else:
            f.check("max_active_users" in p.out and "username_min_length" in p.out,
                    "settings users show: " + show(p))
    t = unique_tag()
    n0 = audit_count(ctx, "settings.update")
    try:
        p = cli(ctx, "settings", "users", "set", "licence.max_active_users=250",
                "validation.require_department=true", "defaults.location=Oslo")
        if f.check(p.returncode == 0, show(p)):
            f.check(audit_count(ctx, "settings.update") > n0, "`settings users set` is not "
                    "audited (no settings.update event)")
            s = c.get(SETTINGS).json
            f.check((s["licence"]["max_active_users"], s["validation"]["require_department"],
                     s["defaults"]["location"]) == (250, True, "Oslo"),
                    "the API after set: %s" % json.dumps(s)[:400])
            f.check(s["version"] > api["version"], "version %r after %r" % (
                s["version"], api["version"]))
            # the rule takes effect, in the CLI and in the API, with the same words
            body = user_body("cs" + t)
            refused(f, "add without a department", watch(c),
                    lambda: cli(ctx, *add_args(body)), api=c.post(USERS, body))
        before = c.get(SETTINGS).json
        for label, args, texts in (
                ("zero min length", ["validation.username_min_length=0"],
                 ("validation.username_min_length",)),
                ("unknown key", ["validation.bogus=1"], ("validation.bogus",)),
                ("bad regex", ["validation.username_pattern=([a-z"],
                 ("validation.username_pattern", "pattern")),
                ("bad enum", ["defaults.type=root"], ("defaults.type", "enum")),
                ("one good one bad", ["licence.max_active_users=5",
                                      "validation.username_min_length=-1"],
                 ("validation.username_min_length",))):
            n1 = audit_count(ctx, "settings.update")
            p = cli(ctx, "settings", "users", "set", *args)
            f.check(audit_count(ctx, "settings.update") == n1, "set %s: audited" % label)
            f.check(p.returncode == 1 and all(x in p.err for x in texts),
                    "set %s: want exit 1 naming %s: %s" % (label, texts, show(p)))
            f.check(c.get(SETTINGS).json == before, "set %s changed the settings" % label)
        p = cli(ctx, "settings", "users", "set", "novalue")
        f.check(p.returncode == 2 and p.err.strip(), "set without '=': " + show(p))
        f.check(c.get(SETTINGS).json == before, "a usage error changed the settings")
    finally:
        p = cli(ctx, "settings", "users", "set", "licence.max_active_users=null",
                "validation.require_department=false", "defaults.location=null")
        s = c.get(SETTINGS).json
        if (s["licence"]["max_active_users"], s["validation"]["require_department"],
                s["defaults"]["location"]) != (None, False, None):
            f.items.append("set ...=null did not restore: %s; %s" % (show(p), json.dumps(s)[:300]))
            c.patch(SETTINGS, {"licence": {"max_active_users": None},
                               "validation": {"require_department": False},
                               "defaults": {"location": None}})
    f.raise_if_any()


def test_licence_and_manager_loop_messages_match_the_api(ctx):
    c = ctx.client()
    t = unique_tag()
    pend = create_user(c, "mp" + t, status="pending")
    a = create_user(c, "ma" + t)
    b = create_user(c, "mb" + t, manager_id=a["id"])
    f = Failures()
    snap = watch(c, a["id"], b["id"])
    refused(f, "manager loop", snap,
            lambda: cli(ctx, "user", "edit", a["username"], "--manager", b["username"]),
            api=c.patch(upath(a["id"]), {"manager_id": b["id"]}),
            texts=("manager chain would loop: %s \u2192 %s \u2192 %s" % (
                a["username"], b["username"], a["username"]),))
    try:
        n = user_total(c, "status=active")
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": n}}), 200)
        detail = "licence limit reached: %d of %d active users" % (n, n)
        snap = watch(c, pend["id"])
        body = user_body("mq" + t)
        refused(f, "add at the limit", snap, lambda: cli(ctx, *add_args(body)),
                api=c.post(USERS, body), texts=(detail, "licence_limit"))
        refused(f, "activate at the limit", snap,
                lambda: cli(ctx, "user", "activate", pend["username"]),
                api=c.post(upath(pend["id"], "/activate"), {}), texts=(detail,))
        p = cli(ctx, *add_args(dict(user_body("mr" + t), status="pending")))
        f.check(p.returncode == 0, "add a pending user at the limit: " + show(p))
    finally:
        expect_status(c.patch(SETTINGS, {"licence": {"max_active_users": None}}), 200)
    f.raise_if_any()


def test_usage_errors_exit_2(ctx):
    f = Failures()
    t = unique_tag()
    c = ctx.client()
    u = create_user(c, "ug" + t)
    snap = watch(c, u["id"])
    before = snap()
    for args in (["user", "deactivate"], ["user", "edit"], ["user", "erase"],
                 ["user", "activate"], ["user", "lock", u["username"], "--note"],
                 ["user", "edit", u["username"], "--bogus", "1"],
                 ["user", "list", "--cf"], ["user", "show", u["username"], "--profile", "x"],
                 ["settings"], ["settings", "bogus"], ["settings", "users"],
                 ["settings", "users", "bogus"]):
        p = cli(ctx, *args, env_db=True)
        f.check(p.returncode == 2 and p.err.strip(), "usage error: " + show(p))
    # reading: a --cf without KEY=VALUE may be a usage error or a refusal naming it
    p = cli(ctx, *(add_args(user_body("ux" + t)) + ["--cf", "novalue"]))
    f.check(p.returncode in (1, 2) and "cf" in p.err, "--cf novalue: " + show(p))
    f.check(snap() == before, "usage errors changed state")
    f.raise_if_any()
