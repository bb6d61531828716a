"""The CLI (docs/api-contract-draft.md, "CLI"): user add/list/show, apikey
create/list/revoke, validation messages as the API's, --help, version, usage
errors. Runs against the database of the module's running server (so the API
can confirm what the CLI did) and against fresh databases."""

import json
import os
import re
import subprocess
import time

from harness import Failures, expect, expect_eq, expect_status, unique_tag, user_body

TOKEN = re.compile(r"rsk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


def cli(ctx, *args, db=None, env_db=None, timeout=60):
    env = dict(os.environ)
    env.pop("ROSTER_DB", None)
    if env_db:
        env["ROSTER_DB"] = env_db
    cmd = [ctx.binary] + list(args)
    if db:
        cmd += ["--db", db]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       env=env, timeout=timeout)
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


def as_items(obj):
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict) and isinstance(obj.get("items"), list):
        return obj["items"]
    raise AssertionError("not a JSON list of users: %r" % (obj,))


def parse_json(p):
    try:
        return json.loads(p.out)
    except ValueError:
        raise AssertionError("stdout is not JSON: " + show(p))


def add_args(u):
    args = ["user", "add", "--username", u["username"], "--email", u["email"], "--first-name",
            u["first_name"], "--last-name", u["last_name"]]
    if "type" in u:
        args += ["--type", u["type"]]
    return args


# ---------------------------------------------------------------------------


def test_version(ctx):
    p = expect_rc(cli(ctx, "version"), 0)
    expect(re.search(r"\d+\.\d+", p.out), "no version number in: " + show(p))
    # the same version the server reports in roster_build_info
    m = ctx.client(token=None).get("/metrics")
    vm = re.search(r'roster_build_info\{[^}]*version="([^"]+)"', m.text)
    if vm:
        expect(vm.group(1) in p.out, "roster version says %r, /metrics says version=%r" % (
            p.out.strip(), vm.group(1)))


COMMANDS = [
    (["serve"], "--listen"), (["migrate"], "--db"), (["version"], None), (["routes"], None),
    (["user", "add"], "--username"), (["user", "list"], "--limit"), (["user", "show"], None),
    (["apikey", "create"], "--user"), (["apikey", "list"], None), (["apikey", "revoke"], None),
    (["user"], "add"), (["apikey"], "revoke"), ([], "serve"),
]


def test_help_on_each_command(ctx):
    f = Failures()
    for words, mention in COMMANDS:
        p = cli(ctx, *(words + ["--help"]))
        text = p.out + p.err
        f.check(p.returncode == 0 and text.strip(), "--help: " + show(p))
        if mention:
            f.check(mention in text, "`roster %s --help` does not mention %s" % (
                " ".join(words), mention))
    f.raise_if_any()


def test_usage_errors_exit_2(ctx):
    f = Failures()
    db = ctx.server.db_url
    for args in (["bogus"], ["user", "bogus"], ["apikey", "bogus"],
                 ["user", "add", "--db", db, "--bogus-flag", "x"],
                 ["user", "list", "--db", db, "--limit"],
                 ["user", "show", "--db", db], ["apikey", "revoke", "--db", db],
                 ["serve", "--db", db, "--listen"],
                 ["serve", "--db", db, "--listen", "127.0.0.1:0", "--loop-yield", "sometimes"]):
        p = cli(ctx, *args, timeout=20)
        f.check(p.returncode == 2 and p.err.strip(), "usage error: " + show(p))
        if "--loop-yield" in args:
            f.check("--loop-yield must be on or off" in p.err, "names the rule: " + show(p))
    f.raise_if_any()


def test_user_add_list_show(ctx):
    srv = ctx.server
    db = srv.db_url
    c = ctx.client()
    t = unique_tag()
    u = {"username": "cli" + t, "email": "cli.%s@example.com" % t, "first_name": "Clíona",
         "last_name": "Ó Briain", "type": "guest"}
    expect_rc(cli(ctx, *add_args(u), db=db), 0)
    p = expect_rc(cli(ctx, "user", "show", u["username"], "--json", db=db), 0)
    got = parse_json(p)
    for k, v in u.items():
        expect_eq(got.get(k), v, "user show --json " + k)
    uid = got.get("id")
    expect(isinstance(uid, int), "no id in " + show(p))
    p2 = expect_rc(cli(ctx, "user", "show", str(uid), "--json", db=db), 0)
    expect_eq(parse_json(p2).get("username"), u["username"], "user show ID")
    p3 = expect_rc(cli(ctx, "user", "show", u["username"], db=db), 0)
    expect(u["username"] in p3.out and u["email"] in p3.out, "plain user show: " + show(p3))
    # list
    p = expect_rc(cli(ctx, "user", "list", "--q", t, "--json", db=db), 0)
    items = as_items(parse_json(p))
    expect_eq([i.get("username") for i in items], [u["username"]], "user list --q")
    p = expect_rc(cli(ctx, "user", "list", "--limit", "1", "--json", db=db), 0)
    expect_eq(len(as_items(parse_json(p))), 1, "user list --limit 1")
    p = expect_rc(cli(ctx, "user", "list", "--q", t, db=db), 0)
    expect(u["username"] in p.out, "plain user list: " + show(p))
    # the API sees it, with its audit event
    g = c.get("/api/v1/users/%d" % uid)
    expect_status(g, 200)
    expect_eq((g.json["username"], g.json["last_name"], g.json["type"]),
              (u["username"], u["last_name"], "guest"), "API view of the CLI's user", g)
    h = c.get("/api/v1/users/%d/history" % uid)
    expect_eq([e.get("action") for e in h.json["items"]], ["user.create"], "history", h)
    # unknown user
    p = cli(ctx, "user", "show", "nobody" + t, db=db)
    expect(p.returncode == 1 and p.err.strip(), "show unknown user: " + show(p))


def test_validation_messages_match_the_api(ctx):
    srv = ctx.server
    db = srv.db_url
    c = ctx.client()
    t = unique_tag()
    existing = {"username": "dup" + t, "email": "dup%s@example.com" % t, "first_name": "D",
                "last_name": "U"}
    expect_rc(cli(ctx, *add_args(existing), db=db), 0)
    cases = [
        ("bad email", user_body("ve" + t, email="not-an-email")),
        ("username too long", user_body("v" + "x" * 70)),
        ("username bad characters", user_body("bad name" + t)),
        ("bad type", user_body("vt" + t, type="superuser")),
        ("name with control char", user_body("vc" + t, first_name="a\u0007b")),
        ("duplicate username (other case)", user_body(existing["username"].upper())),
        ("duplicate email", user_body("vd" + t, email=existing["email"])),
    ]
    f = Failures()
    total = c.get("/api/v1/users?limit=1").json["total"]
    for label, body in cases:
        r = c.post("/api/v1/users", body)
        errs = (r.json or {}).get("errors") or []
        if not f.check(r.status in (409, 422) and errs, "%s: API %s" % (label, r.describe())):
            continue
        field, rule, msg = errs[0].get("field"), errs[0].get("rule"), errs[0].get("message")
        p = cli(ctx, *add_args(body), db=db)
        f.check(p.returncode == 1, "%s: CLI exit %d, want 1: %s" % (label, p.returncode, show(p)))
        f.check(field in p.err and rule in p.err,
                "%s: CLI stderr does not name field %r and rule %r: %r" % (label, field, rule,
                                                                          p.err))
        f.check(msg in p.err, "%s: CLI stderr %r lacks the API's message %r" % (label, p.err, msg))
    f.check(c.get("/api/v1/users?limit=1").json["total"] == total,
            "rejected adds created users")
    # a missing required option: usage (2) or validation (1), naming the field
    body = user_body("vm" + t)
    args = [a for a in add_args(body)]
    i = args.index("--email")
    del args[i:i + 2]
    p = cli(ctx, *args, db=db)
    f.check(p.returncode in (1, 2) and "email" in p.err, "add without --email: " + show(p))
    f.raise_if_any()


def test_apikey_create_list_revoke(ctx):
    srv = ctx.server
    db = srv.db_url
    c = ctx.client()
    name = "cli-key-" + unique_tag()
    p = expect_rc(cli(ctx, "apikey", "create", "--user", "admin", "--name", name, db=db), 0)
    m = TOKEN.search(p.out)
    expect(m, "no token on stdout: " + show(p))
    token, key_id, secret = m.group(0), m.group(1), m.group(2)
    kc = ctx.client(token=token)
    expect_status(kc.get("/api/v1/users?limit=1"), 200)
    f = Failures()
    for args in (["apikey", "list"], ["apikey", "list", "--user", "admin"]):
        lp = cli(ctx, *args, db=db)
        f.check(lp.returncode == 0 and key_id in lp.out and name in lp.out,
                "list does not show key id %s / name %s: %s" % (key_id, name, show(lp)))
        f.check(secret not in lp.out + lp.err, "`roster %s` prints the secret" % " ".join(args))
    # find the numeric id through the API and revoke with the CLI
    items = c.get("/api/v1/api-keys").json["items"]
    ids = [k["id"] for k in items if k.get("key_id") == key_id]
    expect(ids, "the CLI's key %s is not in GET /api/v1/api-keys" % key_id)
    rp = cli(ctx, "apikey", "revoke", str(ids[0]), db=db)
    f.check(rp.returncode == 0, "revoke: " + show(rp))
    # The server caches keys; a revocation by another process (this CLI)
    # reaches it through the access version within 50 ms.
    deadline = time.monotonic() + 1.0
    r = kc.get("/api/v1/users?limit=1")
    while r.status != 401 and time.monotonic() < deadline:
        time.sleep(0.02)
        r = kc.get("/api/v1/users?limit=1")
    f.check(r.status == 401, "the CLI-revoked key still works after 1 s: " + r.describe())
    # another user's key is that user's
    t = unique_tag()
    expect_rc(cli(ctx, *add_args({"username": "kc" + t, "email": "kc%s@example.com" % t,
                                   "first_name": "K", "last_name": "C", "type": "admin"}),
                  db=db), 0)
    p = cli(ctx, "apikey", "create", "--user", "kc" + t, "--name", "theirs", db=db)
    m = TOKEN.search(p.out)
    if f.check(p.returncode == 0 and m, "create for kc%s: %s" % (t, show(p))):
        kk = [k for k in c.get("/api/v1/api-keys").json["items"] if k.get("key_id") == m.group(1)]
        f.check(kk and kk[0].get("username") == "kc" + t, "owner of the CLI key: %s" % kk)
    # unknown user
    p = cli(ctx, "apikey", "create", "--user", "nobody" + t, "--name", "x", db=db)
    f.check(p.returncode == 1 and p.err.strip() and not TOKEN.search(p.out),
            "create for an unknown user: " + show(p))
    # expired
    p = cli(ctx, "apikey", "create", "--user", "admin", "--name", "old", "--expires",
            "2000-01-01T00:00:00Z", db=db)
    m = TOKEN.search(p.out)
    if p.returncode == 0 and m:
        r = ctx.client(token=m.group(0)).get("/api/v1/users?limit=1")
        f.check(r.status == 401, "a key that expired in 2000 works: " + r.describe())
    else:
        f.check(p.returncode == 1 and "expires" in p.err, "create expired key: " + show(p))
    f.raise_if_any()


def test_roster_db_environment_variable(ctx):
    db = ctx.server.db_url
    p = expect_rc(cli(ctx, "user", "list", "--json", env_db=db), 0)
    names = [i.get("username") for i in as_items(parse_json(p))]
    expect("admin" in names, "ROSTER_DB: admin not in %s" % names[:10])


def test_fresh_database(ctx):
    db = ctx.new_db_url()
    expect_rc(cli(ctx, "migrate", db=db), 0)
    expect_rc(cli(ctx, "migrate", db=db), 0)   # idempotent
    t = unique_tag()
    u = {"username": "fr" + t, "email": "fr%s@example.com" % t, "first_name": "Åsa",
         "last_name": "Öberg"}
    expect_rc(cli(ctx, *add_args(u), db=db), 0)
    p = expect_rc(cli(ctx, "user", "list", "--json", db=db), 0)
    names = [i.get("username") for i in as_items(parse_json(p))]
    expect(u["username"] in names, "fresh DB list: " + show(p))
    p = expect_rc(cli(ctx, "user", "show", u["username"], "--json", db=db), 0)
    expect_eq((parse_json(p).get("first_name"), parse_json(p).get("last_name")),
              ("Åsa", "Öberg"), "non-ASCII names through the CLI")
    # the same uniqueness as the API
    p = cli(ctx, *add_args(dict(u, email="other%s@example.com" % t,
                                username=u["username"].upper())), db=db)
    expect(p.returncode == 1 and "username" in p.err and "unique" in p.err,
           "duplicate username in another case: " + show(p))
