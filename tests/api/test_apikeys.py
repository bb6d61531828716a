"""API keys: create (token shown once), list, revoke, other users' keys, expiry,
last_used_at (docs/api-contract-draft.md, "API keys")."""

import re
import time
from datetime import datetime, timezone

from harness import (Failures, admin_user, check_problem, create_user, expect, expect_eq,
                     expect_status, history, revoke_key, unique_tag)

KEYS = "/api/v1/api-keys"
TOKEN = re.compile(r"^rsk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
KEY_FIELDS = ("id", "key_id", "name", "user_id", "username", "created_at", "expires_at",
              "revoked_at", "last_used_at")


def list_keys(c):
    r = c.get(KEYS)
    expect_status(r, 200)
    expect(isinstance(r.json, dict) and isinstance(r.json.get("items"), list),
           "key list shape: " + r.describe())
    return r


def find_key(c, key_id):
    r = list_keys(c)
    for k in r.json["items"]:
        if k.get("id") == key_id:
            return k, r
    raise AssertionError("key %s not in the list: %s" % (key_id, r.describe()))


def rfc3339(ts):
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def expect_401(r):
    check_problem(r, 401, errors_expected=False)
    www = r.header("WWW-Authenticate") or ""
    expect(www.split(" ")[0].lower() == "bearer", "WWW-Authenticate %r: %s" % (www, r.describe()))


def test_create_shows_token_once(ctx):
    c = ctx.client()
    admin = admin_user(c)
    name = "ci-" + unique_tag()
    r = c.post(KEYS, {"name": name})
    expect_status(r, 201)
    k = r.json
    for f in KEY_FIELDS + ("token",):
        expect(f in k, "created key lacks %r: %s" % (f, r.describe()))
    m = TOKEN.match(k["token"] or "")
    expect(m, "token %r does not look like rsk_<16 hex>_<43 base64url>" % k["token"])
    expect_eq(m.group(1), k["key_id"], "token's key id vs key_id", r)
    expect_eq((k["name"], k["user_id"], k["username"]), (name, admin["id"], "admin"),
              "name/user_id/username (default: the caller)", r)
    expect_eq((k["expires_at"], k["revoked_at"], k["last_used_at"]), (None, None, None),
              "expires_at/revoked_at/last_used_at of a new key", r)
    expect(isinstance(k["id"], int), "id %r" % k["id"])
    # the new token works
    expect_status(ctx.client(token=k["token"]).get("/api/v1/users?limit=1"), 200)
    # listed without the token
    item, lr = find_key(c, k["id"])
    expect("token" not in item, "the list shows a token: %s" % item)
    secret = m.group(2)
    expect(secret not in lr.text, "the list body contains the secret")
    for field in KEY_FIELDS:
        expect(field in item, "listed key lacks %r: %s" % (field, item))
    expect_eq((item["key_id"], item["name"], item["username"]), (k["key_id"], name, "admin"),
              "listed key", lr)
    for other in lr.json["items"]:
        expect("token" not in other and "secret" not in other and "secret_hash" not in other,
               "a listed key carries secret material: %s" % other)


def test_revoke(ctx):
    c = ctx.client()
    r = c.post(KEYS, {"name": "rv-" + unique_tag()})
    expect_status(r, 201)
    k = r.json
    kc = ctx.client(token=k["token"])
    expect_status(kc.get("/api/v1/users?limit=1"), 200)
    rv = revoke_key(c, k["id"])
    expect_status(rv, 200)
    expect_eq((rv.json or {}).get("id"), k["id"], "revoked key id", rv)
    expect(isinstance(rv.json.get("revoked_at"), str), "revoked_at not set: " + rv.describe())
    expect("token" not in rv.json, "revoke shows the token: " + rv.describe())
    expect_401(kc.get("/api/v1/users?limit=1"))
    expect_401(kc.post("/api/v1/users", {"username": "x" + unique_tag()}))
    item, lr = find_key(c, k["id"])
    expect(isinstance(item.get("revoked_at"), str), "listed revoked_at: %s" % item)
    # the admin key itself is unaffected
    expect_status(c.get("/api/v1/users?limit=1"), 200)


def test_key_for_another_user_is_attributed_to_that_user(ctx):
    c = ctx.client()
    bob = create_user(c, "kbob" + unique_tag(), first_name="Bob", last_name="Keys", type="admin")
    r = c.post(KEYS, {"name": "bob's key", "username": bob["username"]})
    expect_status(r, 201)
    k = r.json
    expect_eq((k["user_id"], k["username"]), (bob["id"], bob["username"]), "key owner", r)
    bc = ctx.client(token=k["token"])
    victim = create_user(c, "kv" + unique_tag(), first_name="Vic")
    p = bc.patch("/api/v1/users/%d" % victim["id"], {"first_name": "Victor"})
    expect_status(p, 200)
    cr = bc.post("/api/v1/users", {"username": "kb" + unique_tag(), "email": "kb%s@example.com"
                                   % unique_tag(), "first_name": "Made", "last_name": "ByBob"})
    expect_status(cr, 201)
    f = Failures()
    ev = history(c, victim["id"])[0]
    f.check(ev.get("action") == "user.update" and ev.get("actor_name") == bob["username"]
            and ev.get("actor_id") == bob["id"],
            "update by bob's key recorded as %r/%r/%r" % (ev.get("action"), ev.get("actor_name"),
                                                          ev.get("actor_id")))
    f.check(ev.get("request_id") == p.header("X-Request-Id"), "request_id %r vs %r" % (
        ev.get("request_id"), p.header("X-Request-Id")))
    ev = history(c, cr.json["id"])[0]
    f.check(ev.get("action") == "user.create" and ev.get("actor_name") == bob["username"],
            "create by bob's key recorded as %r/%r" % (ev.get("action"), ev.get("actor_name")))
    # bob's key is listed as bob's
    item, _ = find_key(c, k["id"])
    f.check(item.get("username") == bob["username"] and item.get("user_id") == bob["id"],
            "listed owner %r/%r" % (item.get("username"), item.get("user_id")))
    f.raise_if_any()


def test_expired_key_is_refused(ctx):
    c = ctx.client()
    f = Failures()
    # already expired when created
    r = c.post(KEYS, {"name": "old-" + unique_tag(), "expires_at": "2000-01-01T00:00:00Z"})
    if r.status == 201:
        e = ctx.client(token=r.json["token"]).get("/api/v1/users?limit=1")
        try:
            expect_401(e)
        except AssertionError as ex:
            f.items.append("key with expires_at 2000-01-01: %s" % ex)
    else:
        f.check(r.status == 422 and any(x.get("field") == "expires_at" for x in
                                        (r.json or {}).get("errors") or []),
                "creating a key that expired in 2000: want 201 (then 401) or 422 expires_at: "
                + r.describe())
    # expires a moment from now: works, then stops working
    exp = int(time.time()) + 3
    r = c.post(KEYS, {"name": "soon-" + unique_tag(), "expires_at": rfc3339(exp)})
    expect_status(r, 201)
    expect(isinstance(r.json.get("expires_at"), str) and r.json["expires_at"].startswith(
        rfc3339(exp)[:19]), "expires_at %r, want %s" % (r.json.get("expires_at"), rfc3339(exp)))
    kc = ctx.client(token=r.json["token"])
    expect_status(kc.get("/api/v1/users?limit=1"), 200)
    time.sleep(max(0.0, exp + 0.3 - time.time()))
    try:
        expect_401(kc.get("/api/v1/users?limit=1"))
    except AssertionError as ex:
        f.items.append("after expires_at passed: %s" % ex)
    f.raise_if_any()


def test_last_used_at_is_set_after_use(ctx):
    c = ctx.client()
    r = c.post(KEYS, {"name": "lu-" + unique_tag()})
    expect_status(r, 201)
    k = r.json
    item, _ = find_key(c, k["id"])
    expect_eq(item.get("last_used_at"), None, "last_used_at before any use")
    expect_status(ctx.client(token=k["token"]).get("/api/v1/users?limit=1"), 200)
    deadline = time.monotonic() + 3
    while True:
        item, lr = find_key(c, k["id"])
        if item.get("last_used_at") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    lu = item.get("last_used_at")
    expect(isinstance(lu, str) and lu >= k["created_at"],
           "last_used_at %r after a use (created_at %s)" % (lu, k["created_at"]))


def test_api_key_input_errors(ctx):
    c = ctx.client()
    f = Failures()
    before = list_keys(c).json["items"]
    for label, body, status, field, rule in (
            ("unknown field", {"name": "x", "scope": "all"}, 400, "scope", "unknown_field"),
            ("name wrong type", {"name": 5}, 400, "name", "type"),
            ("unknown user", {"name": "x", "username": "nobody" + unique_tag()}, (404, 422),
             "username", None),
            ("bad expires_at", {"name": "x", "expires_at": "next tuesday"}, 422, "expires_at",
             "format")):
        r = c.post(KEYS, body)
        statuses = status if isinstance(status, tuple) else (status,)
        try:
            if r.status == 404 and 404 in statuses:
                check_problem(r, 404)
            else:
                check_problem(r, statuses[-1] if r.status not in statuses else r.status,
                              field=field, rule=rule)
        except AssertionError as e:
            f.items.append("%s: %s" % (label, e))
    strip = lambda items: [{k: v for k, v in i.items() if k != "last_used_at"} for i in items]
    f.check(strip(list_keys(c).json["items"]) == strip(before),
            "rejected key requests changed the key list")
    # no credentials
    r = ctx.client(token=None).get(KEYS)
    try:
        expect_401(r)
    except AssertionError as e:
        f.items.append("GET api-keys without a token: %s" % e)
    f.raise_if_any()


# ---------------------------------------------------------------------------
# Authentication caches keys per process (src/service/keycache.c). These
# prove that a cached key is still refused the moment it must be: revoked
# (here at once, in another process within 1 s), expired, its owner
# deactivated, or presented with a wrong secret.

PROBE = "/api/v1/users?limit=1"


def warm(kc, times=5):
    """Uses a key a few times so the server has it cached."""
    for _ in range(times):
        expect_status(kc.get(PROBE), 200)


def new_token(c, username=None, **kw):
    body = {"name": "kc-" + unique_tag()}
    if username:
        body["username"] = username
    body.update(kw)
    r = c.post(KEYS, body)
    expect_status(r, 201)
    return r.json


def test_cached_key_still_compares_its_secret(ctx):
    c = ctx.client()
    k = new_token(c)
    kc = ctx.client(token=k["token"])
    warm(kc)
    m = TOKEN.match(k["token"])
    secret = m.group(2)
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    f = Failures()
    for label, tok in (("last character changed", "rsk_%s_%s" % (m.group(1), wrong)),
                       ("all zero secret", "rsk_%s_%s" % (m.group(1), "A" * 43))):
        try:
            expect_401(ctx.client(token=tok).get(PROBE))
        except AssertionError as e:
            f.items.append("cached key id with a wrong secret (%s): %s" % (label, e))
    f.check(kc.get(PROBE).status == 200, "the right secret after the wrong ones")
    f.raise_if_any()


def test_revoked_cached_key_stops_at_once(ctx):
    c = ctx.client()
    k = new_token(c)
    kc = ctx.client(token=k["token"])
    warm(kc)
    access = "/api/v1/access/check?user_id=%d&resource=users&level=read" % k["user_id"]
    expect_status(kc.get(access), 200)
    expect_status(revoke_key(c, k["id"]), 200)
    f = Failures()
    # the very next requests, on fresh and on kept-alive connections
    for label, r in (("GET users", kc.get(PROBE)), ("access check", kc.get(access)),
                     ("GET users again", ctx.client(token=k["token"]).get(PROBE))):
        try:
            expect_401(r)
        except AssertionError as e:
            f.items.append("revoked cached key, %s: %s" % (label, e))
    f.raise_if_any()


def test_revoked_key_stops_on_another_process_within_1s(ctx):
    """Two processes on one database: a key cached by B stops on B within
    1 s of being revoked through A (the access version bump; B's watcher
    polls it every 50 ms)."""
    a = ctx.new_server(name="keys_a")
    b = ctx.new_server(db_url=a.db_url, admin_token=a.admin_token, name="keys_b")
    k = new_token(a.client())
    kb = b.client(token=k["token"])
    warm(kb)
    warm(a.client(token=k["token"]), 2)
    other = new_token(a.client())
    warm(b.client(token=other["token"]), 2)
    expect_status(revoke_key(a.client(), k["id"]), 200)
    f = Failures()
    try:
        expect_401(a.client(token=k["token"]).get(PROBE))
    except AssertionError as e:
        f.items.append("on A, which revoked it: %s" % e)
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < 1.0:
        last = kb.get(PROBE)
        if last.status == 401:
            break
        time.sleep(0.02)
    f.check(last is not None and last.status == 401,
            "on B the revoked key still answered %s after %.2f s: %s"
            % (last.status if last else None, time.monotonic() - t0,
               last.describe() if last else ""))
    # other keys keep working on both
    f.check(b.client(token=other["token"]).get(PROBE).status == 200, "another key on B")
    f.check(a.client().get(PROBE).status == 200, "the admin key on A")
    f.raise_if_any()


def test_cached_key_stops_at_its_expiry(ctx):
    """The key is used right up to its expiry (so the server has it cached,
    fresh) and must be refused from that instant on."""
    c = ctx.client()
    exp = int(time.time()) + 2
    k = new_token(c, expires_at=rfc3339(exp))
    kc = ctx.client(token=k["token"])
    ok = 0
    while time.time() < exp - 0.15:
        r = kc.get(PROBE)
        expect_status(r, 200)
        ok += 1
        time.sleep(0.05)
    expect(ok >= 3, "the key was used only %d times before its expiry" % ok)
    time.sleep(max(0.0, exp + 0.05 - time.time()))
    expect_401(kc.get(PROBE))
    expect_401(ctx.client(token=k["token"]).get(PROBE))


def test_deactivated_owners_cached_key_stops_at_once(ctx):
    c = ctx.client()
    u = create_user(c, "kd" + unique_tag(), first_name="Dee", last_name="Active", type="admin")
    k = new_token(c, u["username"])
    kc = ctx.client(token=k["token"])
    warm(kc)
    r = c.post("/api/v1/users/%d/deactivate" % u["id"], {"reason": "left_company"})
    expect_status(r, 200)
    f = Failures()
    try:
        expect_401(kc.get(PROBE))
    except AssertionError as e:
        f.items.append("deactivated owner's key, next request: %s" % e)
    # and back on reactivation (the key itself was never revoked)
    r = c.post("/api/v1/users/%d/reactivate" % u["id"], {})
    expect_status(r, 200)
    f.check(kc.get(PROBE).status == 200, "the key after the owner's reactivation")
    # a lock stops it too
    expect_status(c.post("/api/v1/users/%d/lock" % u["id"], {}), 200)
    try:
        expect_401(kc.get(PROBE))
    except AssertionError as e:
        f.items.append("locked owner's key, next request: %s" % e)
    f.raise_if_any()


def test_key_list_survives_access_cache_clears(ctx):
    """The key list asks whether the caller may read every key; when the access
    cache was just emptied that question reads the store. Regression: it once
    did so with no error to fill and took the server down."""
    import threading
    c = ctx.client()
    stop = threading.Event()
    errors = []

    def clear():
        cc = ctx.client()
        while not stop.is_set():
            r = cc.post("/api/v1/access/cache/clear", {})
            if r.status not in (200, 204):
                errors.append("cache clear: " + r.describe())
                return

    t = threading.Thread(target=clear)
    t.start()
    try:
        statuses = [c.get(KEYS).status for _ in range(1000)]
    finally:
        stop.set()
        t.join()
    expect(not errors, "; ".join(errors))
    expect(statuses.count(200) == len(statuses),
           "key list during cache clears: %s" % sorted(set(statuses)))
    list_keys(c)
