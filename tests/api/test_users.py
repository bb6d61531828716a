"""Users: create, get, list, update, history (docs/api-contract-draft.md, "Users")."""

import json
import unicodedata

from harness import (Failures, ISO_MS, admin_user, create_user, expect, expect_eq, expect_status,
                     fold, history, unique_tag, urlq, user_body)

FIELDS = ("id", "username", "email", "first_name", "last_name", "type", "status", "created_at",
          "updated_at", "version")


def check_user_shape(u, r=None):
    where = (" [" + r.describe() + "]") if r is not None else ""
    expect(isinstance(u, dict), "user is not an object" + where)
    missing = [f for f in FIELDS if f not in u]
    expect(not missing, "user lacks %s%s" % (missing, where))
    expect(isinstance(u["id"], int) and u["id"] > 0, "id %r%s" % (u["id"], where))
    expect(isinstance(u["version"], int) and u["version"] >= 1, "version %r%s" % (u["version"], where))
    expect(u["type"] in ("standard", "admin", "api", "guest"), "type %r%s" % (u["type"], where))
    expect(u["status"] in ("active", "inactive", "locked", "pending"), "status %r%s" % (
        u["status"], where))
    for f in ("created_at", "updated_at"):
        expect(isinstance(u[f], str) and ISO_MS.match(u[f]),
               "%s %r is not like 2026-11-24T06:40:00.123Z%s" % (f, u[f], where))


def location_path(r):
    loc = r.header("Location") or ""
    if loc.startswith("http://") or loc.startswith("https://"):
        loc = "/" + loc.split("/", 3)[3]
    return loc


# ---------------------------------------------------------------------------


def test_create_then_get(ctx):
    c = ctx.client()
    name = "jsm" + unique_tag()
    body = {"username": name, "email": name + "@example.com", "first_name": "John",
            "last_name": "Smith"}
    r = c.post("/api/v1/users", body)
    expect_status(r, 201)
    expect_eq(r.content_type(), "application/json", "Content-Type", r)
    u = r.json
    check_user_shape(u, r)
    for k, v in body.items():
        expect_eq(u[k], v, "created " + k, r)
    expect_eq(u["type"], "standard", "default type", r)
    expect_eq(u["status"], "active", "initial status", r)
    expect_eq(u["version"], 1, "initial version", r)
    expect_eq(location_path(r), "/api/v1/users/%d" % u["id"], "Location", r)
    expect_eq(r.header("ETag"), '"1"', "ETag", r)

    g = c.get("/api/v1/users/%d" % u["id"])
    expect_status(g, 200)
    expect_eq(g.json, u, "GET after create", g)
    expect_eq(g.header("ETag"), '"1"', "ETag on GET", g)
    expect_eq(g.content_type(), "application/json", "Content-Type", g)


def test_create_with_each_type(ctx):
    c = ctx.client()
    f = Failures()
    for t in ("standard", "admin", "api", "guest"):
        r = c.post("/api/v1/users", user_body("ty" + t + unique_tag(), type=t))
        if f.check(r.status == 201, "type %s: %s" % (t, r.describe())):
            f.check(r.json.get("type") == t, "type %s stored as %r" % (t, r.json.get("type")))
    f.raise_if_any()


def test_get_unknown_and_non_numeric_id_is_404(ctx):
    c = ctx.client()
    f = Failures()
    for path in ("/api/v1/users/987654321", "/api/v1/users/abc", "/api/v1/users/0",
                 "/api/v1/users/-1", "/api/v1/users/1abc", "/api/v1/users/99999999999999999999999"):
        r = c.get(path)
        f.check(r.status == 404 and r.content_type() == "application/problem+json",
                "GET %s: %s" % (path, r.describe()))
    f.raise_if_any()


def test_patch_is_a_partial_merge(ctx):
    c = ctx.client()
    u = create_user(c, "pm" + unique_tag(), first_name="Anna", last_name="Berg")
    path = "/api/v1/users/%d" % u["id"]
    r = c.patch(path, {"first_name": "Annika"})
    expect_status(r, 200)
    p = r.json
    check_user_shape(p, r)
    expect_eq(p["first_name"], "Annika", "patched first_name", r)
    for k in ("username", "email", "last_name", "type", "status", "created_at", "id"):
        expect_eq(p[k], u[k], "unpatched " + k, r)
    expect_eq(p["version"], 2, "version after one PATCH", r)
    expect_eq(r.header("ETag"), '"2"', "ETag after PATCH", r)
    expect(p["updated_at"] >= u["updated_at"], "updated_at went back: %s -> %s" % (
        u["updated_at"], p["updated_at"]))

    # application/merge-patch+json is accepted too; several fields at once
    r2 = c.request("PATCH", path, data=json.dumps({"last_name": "Bergström", "type": "guest"}),
                   headers={"Content-Type": "application/merge-patch+json"})
    expect_status(r2, 200)
    expect_eq((r2.json["last_name"], r2.json["type"], r2.json["first_name"]),
              ("Bergström", "guest", "Annika"), "merge-patch+json result", r2)
    expect_eq(r2.json["version"], 3, "version after two PATCHes", r2)
    expect_eq(r2.header("ETag"), '"3"', "ETag", r2)
    g = c.get(path)
    expect_eq(g.json, r2.json, "GET after PATCH", g)


def test_patch_unknown_user_is_404(ctx):
    c = ctx.client()
    r = c.patch("/api/v1/users/987654321", {"first_name": "X"})
    expect_status(r, 404)


def test_if_match(ctx):
    c = ctx.client()
    u = create_user(c, "im" + unique_tag(), first_name="Old")
    path = "/api/v1/users/%d" % u["id"]
    r = c.patch(path, {"first_name": "Second"}, headers={"If-Match": '"1"'})
    expect_status(r, 200)
    expect_eq(r.header("ETag"), '"2"', "ETag", r)
    before_hist = history(c, u["id"])
    # stale: version 1 again
    r = c.patch(path, {"first_name": "Third", "last_name": "Stale"}, headers={"If-Match": '"1"'})
    expect_status(r, 412)
    expect_eq(r.content_type(), "application/problem+json", "412 Content-Type", r)
    g = c.get(path)
    expect_eq((g.json["first_name"], g.json["last_name"], g.json["version"]),
              ("Second", u["last_name"], 2), "user after a 412", g)
    expect_eq(g.header("ETag"), '"2"', "ETag after a 412", g)
    expect_eq(len(history(c, u["id"])), len(before_hist), "history length after a 412")
    # current ETag works
    r = c.patch(path, {"first_name": "Third"}, headers={"If-Match": '"2"'})
    expect_status(r, 200)
    expect_eq((r.json["first_name"], r.json["version"]), ("Third", 3), "PATCH with fresh ETag", r)


def test_strings_are_trimmed_and_nfc_normalised(ctx):
    c = ctx.client()
    tag = unique_tag()
    r = c.post("/api/v1/users", {
        "username": "  zoe\u0308" + tag + "  ",           # decomposed ë, padded
        "email": " zoe" + tag + "@example.com ",
        "first_name": "  Zoe\u0308  ",
        "last_name": "A\u030asberg"})                     # decomposed Å
    expect_status(r, 201)
    u = r.json
    expect_eq(u["username"], "zo\u00eb" + tag, "username NFC + trimmed", r)
    expect_eq(u["email"], "zoe" + tag + "@example.com", "email trimmed", r)
    expect_eq(u["first_name"], "Zo\u00eb", "first_name NFC + trimmed", r)
    expect_eq(u["last_name"], "\u00c5sberg", "last_name NFC", r)
    g = c.get("/api/v1/users/%d" % u["id"])
    expect_eq(g.json["first_name"], "Zo\u00eb", "stored first_name", g)


NON_ASCII = [
    ("Åsa", "Öberg"), ("Łukasz", "Żółkiewski"), ("Zoë", "Brontë"), ("Σωκράτης", "Παπαδόπουλος"),
    ("Юлия", "Жуковская"), ("Nguyễn", "Thị Minh Khai"), ("Ζωή", "Ἀθηνᾶ"),
]


def test_non_ascii_names_round_trip(ctx):
    c = ctx.client()
    f = Failures()
    for i, (first, last) in enumerate(NON_ASCII):
        uname = unicodedata.normalize("NFC", first.lower()) + "." + unique_tag(4)
        r = c.post("/api/v1/users", {"username": uname, "email": "na%d%s@example.com" % (
            i, unique_tag()), "first_name": first, "last_name": last})
        if not f.check(r.status == 201, "create %s %s: %s" % (first, last, r.describe())):
            continue
        g = c.get("/api/v1/users/%d" % r.json["id"])
        f.check((g.json or {}).get("first_name") == first and g.json.get("last_name") == last
                and g.json.get("username") == uname,
                "round trip of %r/%r/%r: %s" % (uname, first, last, g.describe()))
    f.raise_if_any()


def test_uniqueness_ignores_case_and_normalisation(ctx):
    c = ctx.client()
    t = unique_tag()
    cases = [
        # (first username, conflicting username)
        ("jsmith" + t, "JSmith" + t),
        ("\u00c5sa" + t, "A\u030asa" + t),             # precomposed vs decomposed
        ("\u00e5sa" + t + "x", "\u00c5SA" + t + "X"),    # case of non-ASCII
        ("odysseus" + t, "ＯＤＹＳＳＥＵＳ" + t),            # fullwidth folds under NFKC
        (t + "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2",   # οδυσσευς (final sigma)
         t + "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3"),  # ΟΔΥΣΣΕΥΣ
        (t + "stra\u00dfe", t + "STRASSE"),               # ß folds to ss
    ]
    f = Failures()
    for i, (a, b) in enumerate(cases):
        r = c.post("/api/v1/users", user_body(a, email="ua%d%s@example.com" % (i, t)))
        if not f.check(r.status == 201, "create %r: %s" % (a, r.describe())):
            continue
        total = c.get("/api/v1/users?limit=1").json["total"]
        r2 = c.post("/api/v1/users", user_body(b, email="ub%d%s@example.com" % (i, t)))
        errs = (r2.json or {}).get("errors") or []
        f.check(r2.status == 409 and any(e.get("field") == "username" and e.get("rule") == "unique"
                                         for e in errs),
                "%r after %r: want 409 username/unique: %s" % (b, a, r2.describe()))
        f.check(c.get("/api/v1/users?limit=1").json["total"] == total,
                "total changed after rejected %r" % b)
    # email: case of the whole address
    em = "Mixed.Case" + t + "@Example.COM"
    r = c.post("/api/v1/users", user_body("em" + t, email=em))
    if f.check(r.status == 201, "create with email %r: %s" % (em, r.describe())):
        f.check(r.json["email"] in (em, em.lower(), "Mixed.Case" + t + "@example.com"),
                "stored email %r" % r.json["email"])
        r2 = c.post("/api/v1/users", user_body("em2" + t, email=em.lower()))
        errs = (r2.json or {}).get("errors") or []
        f.check(r2.status == 409 and any(e.get("field") == "email" and e.get("rule") == "unique"
                                         for e in errs),
                "email %r after %r: want 409 email/unique: %s" % (em.lower(), em, r2.describe()))
    f.raise_if_any()


# --- lists -------------------------------------------------------------------

FIRSTS = ["Anna", "Bertil", "Cecilia", "David", "Erik", "Frida", "Gustav"]
LASTS = ["Lind", "Berg", "Holm", "Berg", "Ek", "Lind", "Nyberg", "Berg"]


def _paging_fixture(ctx):
    """55 users sharing a tag: lower-case ASCII usernames and emails of one
    shape, capitalised names, so every collation sorts them alike."""
    if "paging" in ctx.state:
        return ctx.state["paging"]
    c = ctx.client()
    tag = "pg" + unique_tag(6)
    users = []
    for i in range(55):
        letters = "".join(chr(ord("a") + (i * 7 + k * 3) % 26) for k in range(3))
        uname = tag + letters + "%02d" % i
        users.append(create_user(c, uname, email="%s%02d@example.com" % (tag, (i * 37) % 100),
                                 first_name=FIRSTS[i % len(FIRSTS)],
                                 last_name=LASTS[(i * 5) % len(LASTS)],
                                 type="guest" if i % 5 == 0 else "standard"))
    # touch some so updated_at differs from created order
    for u in users[::4]:
        r = c.patch("/api/v1/users/%d" % u["id"], {"first_name": u["first_name"] + "a"})
        expect_status(r, 200)
    ctx.state["paging"] = (tag, {u["id"] for u in users})
    return ctx.state["paging"]


def walk(c, query, limit):
    """Follows next_cursor to the end; returns (items, totals seen, pages)."""
    items, totals, pages = [], [], 0
    cursor = None
    while True:
        q = dict(query, limit=limit)
        if cursor is not None:
            q["cursor"] = cursor
        r = c.get("/api/v1/users?" + urlq(**q))
        expect_status(r, 200)
        b = r.json
        expect(isinstance(b, dict) and isinstance(b.get("items"), list) and "next_cursor" in b
               and "total" in b, "list body shape: " + r.describe())
        expect(len(b["items"]) <= limit, "page of %d items > limit %d" % (len(b["items"]), limit))
        items.extend(b["items"])
        totals.append(b["total"])
        pages += 1
        expect(pages <= 200, "more than 200 pages: cursor loops? " + r.describe())
        cursor = b["next_cursor"]
        if cursor is None:
            break
        expect(isinstance(cursor, str) and cursor, "next_cursor %r" % (cursor,))
        expect(b["items"], "empty page with a next_cursor: " + r.describe())
    return items, totals, pages


def sort_cmp_key(sort):
    keys = []
    for part in sort.split(","):
        desc = part.startswith("-")
        keys.append((part.lstrip("-"), desc))
    return keys


def out_of_order(items, sort):
    keys = sort_cmp_key(sort)
    for a, b in zip(items, items[1:]):
        for field, desc in keys:
            va, vb = a[field], b[field]
            if va == vb:
                continue
            if (va < vb) == desc:
                return "%s then %s under sort=%s (field %s: %r then %r)" % (
                    a["username"], b["username"], sort, field, va, vb)
            break
        else:
            if a["id"] == b["id"]:
                return "id %d twice in a row" % a["id"]
    return None


SORTS = ["id", "-id", "username", "-username", "email", "-email", "first_name", "-first_name",
         "last_name,-created_at", "-last_name,first_name", "created_at", "-updated_at",
         "last_name,first_name,-id", "updated_at,-username"]


def test_list_paging_covers_every_row_once_for_each_sort(ctx):
    c = ctx.client()
    tag, ids = _paging_fixture(ctx)
    f = Failures()
    for sort in SORTS:
        for limit in ((7, 1) if sort in ("last_name,-created_at", "-id") else (7,)):
            try:
                items, totals, pages = walk(c, {"q": tag, "sort": sort}, limit)
            except AssertionError as e:
                f.items.append("sort=%s limit=%d: %s" % (sort, limit, e))
                continue
            got = [u["id"] for u in items]
            dups = sorted({i for i in got if got.count(i) > 1})
            f.check(not dups, "sort=%s limit=%d: duplicates %s" % (sort, limit, dups))
            f.check(set(got) == ids, "sort=%s limit=%d: missing %s, extra %s" % (
                sort, limit, sorted(ids - set(got)), sorted(set(got) - ids)))
            f.check(all(t == len(ids) for t in totals), "sort=%s: totals %s, want %d on every page"
                    % (sort, sorted(set(totals)), len(ids)))
            f.check(pages == -(-len(ids) // limit), "sort=%s limit=%d: %d pages for %d rows" % (
                sort, limit, pages, len(ids)))
            bad = out_of_order(items, sort)
            f.check(bad is None, "order: %s" % bad)
    f.raise_if_any()


def test_list_default_and_max_limit(ctx):
    c = ctx.client()
    tag, ids = _paging_fixture(ctx)
    r = c.get("/api/v1/users?" + urlq(q=tag))
    expect_status(r, 200)
    expect_eq(len(r.json["items"]), 50, "items with the default limit", r)
    expect(r.json["next_cursor"], "no next_cursor with 55 rows and limit 50")
    expect_eq(r.json["total"], 55, "total", r)
    ids50 = [u["id"] for u in r.json["items"]]
    expect_eq(ids50, sorted(ids50), "default sort is id ascending")
    r = c.get("/api/v1/users?" + urlq(q=tag, limit=500))
    expect_status(r, 200)
    expect_eq((len(r.json["items"]), r.json["next_cursor"]), (55, None), "limit=500", r)
    r = c.get("/api/v1/users?" + urlq(q=tag, limit=55))
    expect_status(r, 200)
    expect_eq(r.json["next_cursor"], None, "next_cursor when the page ends exactly at the last row",
              r)


def test_list_filters_status_and_type(ctx):
    c = ctx.client()
    tag, ids = _paging_fixture(ctx)
    r = c.get("/api/v1/users?" + urlq(q=tag, type="guest", limit=500))
    expect_status(r, 200)
    expect_eq(r.json["total"], 11, "guests among 55 (every 5th)", r)
    expect(all(u["type"] == "guest" for u in r.json["items"]), "type filter leaks: " + r.describe())
    r = c.get("/api/v1/users?" + urlq(q=tag, status="active", type="standard", limit=500))
    expect_status(r, 200)
    expect_eq(r.json["total"], 44, "active standard users", r)
    r = c.get("/api/v1/users?" + urlq(q=tag, status="inactive"))
    expect_status(r, 200)
    expect_eq((r.json["total"], r.json["items"]), (0, []), "inactive users", r)
    items, totals, _ = walk(c, {"q": tag, "type": "guest", "sort": "-last_name,first_name"}, 3)
    expect_eq(len({u["id"] for u in items}), 11, "walk of the guest filter")


def _search_fixture(ctx):
    if "search" in ctx.state:
        return ctx.state["search"]
    c = ctx.client()
    t = unique_tag(5)
    people = {
        "ascii": create_user(c, "hq" + t, email="hannelore." + t + "@Qmail-Example.org",
                             first_name="Hannelore", last_name="Quastwtag" + t),
        "sv": create_user(c, "se" + t, first_name="Åsa", last_name="Öberg" + t),
        "pl": create_user(c, "pl" + t, first_name="Łukasz", last_name="Żółw" + t),
        "el": create_user(c, "el" + t, first_name="Σωκράτης", last_name="Οδυσσέας" + t),
        "ru": create_user(c, "ru" + t, first_name="Юлия", last_name="Жуковская" + t),
        "pct": create_user(c, "pc" + t, first_name="Hundred%", last_name="Under_score" + t),
    }
    ctx.state["search"] = (t, people)
    return ctx.state["search"]


def _search_case(c, f, q, want_id):
    r = c.get("/api/v1/users?" + urlq(q=q, limit=500))
    if not f.check(r.status == 200, "q=%r: %s" % (q, r.describe())):
        return
    items = r.json["items"]
    if want_id is not None:
        f.check(any(u["id"] == want_id for u in items), "q=%r does not find user %d: %s" % (
            q, want_id, r.describe(300)))
    fq = fold(q)
    stray = [u["username"] for u in items
             if not any(fq in fold(u[k]) for k in ("username", "email", "first_name", "last_name"))]
    f.check(not stray, "q=%r returns rows not containing it: %s" % (q, stray[:5]))
    f.check(r.json["total"] == len(items), "q=%r: total %s but %d items" % (
        q, r.json["total"], len(items)))


def test_q_search_is_case_insensitive_substring(ctx):
    c = ctx.client()
    t, p = _search_fixture(ctx)
    f = Failures()
    uid = p["ascii"]["id"]
    for q in ("quastwtag" + t, "QUASTWTAG" + t.upper(), "uastwta", "hq" + t.upper(),
              "HANNELORE." + t.upper(), "qmail-example", "QMAIL-EXAMPLE.ORG", "annelor"):
        _search_case(c, f, q, uid)
    _search_case(c, f, "hq" + t[:1], uid)      # three characters
    _search_case(c, f, t[:2], None)            # two characters: a substring search still works
    r = c.get("/api/v1/users?" + urlq(q=t[:2] + "qqqzzz"))
    f.check(r.status == 200 and r.json["total"] == 0 and r.json["items"] == [],
            "q that matches nothing: " + r.describe())
    f.raise_if_any()


def test_q_search_non_ascii(ctx):
    c = ctx.client()
    t, p = _search_fixture(ctx)
    f = Failures()
    for q, key in (("öberg" + t, "sv"), ("ÖBERG" + t.upper(), "sv"), ("åsa", "sv"),
                   ("ŻÓŁW" + t.upper(), "pl"), ("łukasz", "pl"), ("ŁUKASZ", "pl"),
                   ("ΟΔΥΣΣΈΑΣ" + t.upper(), "el"), ("σωκράτης", "el"), ("ΣΩΚΡΆΤΗΣ", "el"),
                   ("жуковская" + t, "ru"), ("ЮЛИЯ", "ru")):
        _search_case(c, f, q, p[key]["id"])
    f.raise_if_any()


def test_q_search_treats_special_characters_literally(ctx):
    c = ctx.client()
    t, p = _search_fixture(ctx)
    f = Failures()
    _search_case(c, f, "%", p["pct"]["id"])        # LIKE wildcard: must not match everything
    _search_case(c, f, "_score" + t, p["pct"]["id"])
    _search_case(c, f, "d%", p["pct"]["id"])
    for q in ('"', "'", "*", "(", ")", "a OR b", "NEAR", "\\", "^", ":", "-", "' OR '1'='1"):
        _search_case(c, f, q, None)
    f.raise_if_any()


# --- history -----------------------------------------------------------------


def test_history_records_create_and_update(ctx):
    c = ctx.client()
    admin = admin_user(c)
    name = "hi" + unique_tag()
    r1 = c.post("/api/v1/users", user_body(name, first_name="Ingrid", last_name="Ek"))
    expect_status(r1, 201)
    u = r1.json
    rid1 = r1.header("X-Request-Id")
    r2 = c.patch("/api/v1/users/%d" % u["id"], {"first_name": "Inga", "last_name": "Ek",
                                                "type": "admin"})
    expect_status(r2, 200)
    rid2 = r2.header("X-Request-Id")
    expect(rid1 and rid2 and rid1 != rid2, "request ids %r %r" % (rid1, rid2))

    hr = c.get("/api/v1/users/%d/history" % u["id"])
    expect_status(hr, 200)
    expect_eq(hr.content_type(), "application/json", "history Content-Type", hr)
    items = hr.json["items"]
    expect_eq([e.get("action") for e in items], ["user.update", "user.create"],
              "history actions (newest first)", hr)
    upd, cre = items
    f = Failures()
    for e, rid in ((upd, rid2), (cre, rid1)):
        for k in ("id", "at", "actor_id", "actor_name", "action", "target_type", "target_id",
                  "request_id", "before", "after", "reason"):
            f.check(k in e, "event %s lacks %r" % (e.get("action"), k))
        f.check(e.get("request_id") == rid, "%s request_id %r != X-Request-Id %r of the change" % (
            e.get("action"), e.get("request_id"), rid))
        f.check(e.get("actor_name") == "admin", "%s actor_name %r" % (e.get("action"),
                                                                      e.get("actor_name")))
        f.check(e.get("actor_id") == admin["id"], "%s actor_id %r != admin id %r" % (
            e.get("action"), e.get("actor_id"), admin["id"]))
        f.check(e.get("target_type") == "user" and e.get("target_id") == u["id"],
                "%s target %r/%r" % (e.get("action"), e.get("target_type"), e.get("target_id")))
        f.check(e.get("reason") is None, "%s reason %r" % (e.get("action"), e.get("reason")))
        f.check(isinstance(e.get("at"), str) and bool(ISO_MS.match(e["at"])),
                "%s at %r" % (e.get("action"), e.get("at")))
    f.check(isinstance(upd.get("id"), int) and isinstance(cre.get("id"), int)
            and upd["id"] > cre["id"], "event ids %r %r" % (upd.get("id"), cre.get("id")))
    f.check(cre.get("before") is None, "create before %r, want null" % (cre.get("before"),))
    after = cre.get("after") or {}
    for k in ("username", "email", "first_name", "last_name"):
        f.check(after.get(k) == u[k], "create after.%s = %r, want %r" % (k, after.get(k), u[k]))
    f.check(upd.get("before") == {"first_name": "Ingrid", "type": "standard"},
            "update before %r, want only the changed fields {first_name: Ingrid, type: standard}"
            % (upd.get("before"),))
    f.check(upd.get("after") == {"first_name": "Inga", "type": "admin"},
            "update after %r, want {first_name: Inga, type: admin}" % (upd.get("after"),))
    f.raise_if_any()


def test_json_with_charset_parameter_is_accepted(ctx):
    c = ctx.client()
    r = c.request("POST", "/api/v1/users", data=json.dumps(user_body("cs" + unique_tag())),
                  headers={"Content-Type": "application/json; charset=utf-8"})
    expect_status(r, 201)


# --- races ---------------------------------------------------------------------


def _together(n, fn):
    """Runs fn(i) in n threads released at once; returns the results in order."""
    import threading
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        try:
            barrier.wait(5)
            out[i] = fn(i)
        except Exception as e:  # noqa: BLE001
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return out


def test_concurrent_creates_of_one_username_make_one_user(ctx):
    c = ctx.client()
    t = unique_tag()
    total = c.get("/api/v1/users?limit=1").json["total"]
    variants = ["race" + t, "RACE" + t, "Race" + t, "rAcE" + t.upper()]
    rs = _together(8, lambda i: c.post("/api/v1/users", user_body(
        variants[i % 4], email="race%d%s@example.com" % (i, t))))
    bad = [r for r in rs if not hasattr(r, "status")]
    expect(not bad, "exceptions: %s" % bad)
    statuses = sorted(r.status for r in rs)
    expect_eq(statuses, [201] + [409] * 7, "statuses of 8 simultaneous creates of one username")
    for r in rs:
        if r.status == 409:
            errs = (r.json or {}).get("errors") or []
            expect(any(e.get("field") == "username" and e.get("rule") == "unique" for e in errs),
                   "409 without username/unique: " + r.describe())
    expect_eq(c.get("/api/v1/users?limit=1").json["total"], total + 1, "total after the race")


def test_concurrent_creates_of_one_email_make_one_user(ctx):
    c = ctx.client()
    t = unique_tag()
    rs = _together(8, lambda i: c.post("/api/v1/users", user_body(
        "em%d%s" % (i, t), email=("Same%s@Example.com" % t) if i % 2 else ("same%s@example.com"
                                                                           % t))))
    bad = [r for r in rs if not hasattr(r, "status")]
    expect(not bad, "exceptions: %s" % bad)
    expect_eq(sorted(r.status for r in rs), [201] + [409] * 7,
              "statuses of 8 simultaneous creates of one email")


def test_concurrent_patches_with_one_if_match_let_one_win(ctx):
    c = ctx.client()
    u = create_user(c, "ifr" + unique_tag())
    path = "/api/v1/users/%d" % u["id"]
    rs = _together(8, lambda i: c.patch(path, {"first_name": "Racer%d" % i},
                                        headers={"If-Match": '"1"'}))
    bad = [r for r in rs if not hasattr(r, "status")]
    expect(not bad, "exceptions: %s" % bad)
    expect_eq(sorted(r.status for r in rs), [200] + [412] * 7,
              "statuses of 8 simultaneous PATCHes with If-Match \"1\"")
    winner = [r for r in rs if r.status == 200][0]
    g = c.get(path)
    expect_eq((g.json["version"], g.json["first_name"]), (2, winner.json["first_name"]),
              "user after the race", g)
    expect_eq([e["action"] for e in history(c, u["id"])], ["user.update", "user.create"],
              "history after the race")


def test_concurrent_patches_lose_no_update(ctx):
    c = ctx.client()
    u = create_user(c, "lu" + unique_tag())
    path = "/api/v1/users/%d" % u["id"]
    rs = _together(8, lambda i: c.patch(path, {"first_name": "Step%d" % i}))
    bad = [r for r in rs if not hasattr(r, "status")]
    expect(not bad, "exceptions: %s" % bad)
    expect_eq([r.status for r in rs], [200] * 8, "statuses of 8 simultaneous PATCHes")
    versions = sorted(r.json["version"] for r in rs)
    expect_eq(versions, list(range(2, 10)), "versions returned by 8 simultaneous PATCHes")
    g = c.get(path)
    expect_eq(g.json["version"], 9, "final version", g)
    h = history(c, u["id"])
    expect_eq(len(h), 9, "history events (1 create + 8 updates)")
    # each update's before is the previous update's after
    ups = list(reversed(h[:-1]))
    chain = [(e.get("before") or {}).get("first_name") for e in ups]
    prev = [u["first_name"]] + [(e.get("after") or {}).get("first_name") for e in ups[:-1]]
    expect_eq(chain, prev, "update events' before values chain")
