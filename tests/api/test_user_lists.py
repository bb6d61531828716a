"""User lists (docs/design/users-contract.md, "Lists"): every filter (date
ranges and cf.<key> included), every sort key ascending and descending with
nulls (first ascending, last descending, id the final tie-breaker), mixed
multi-key sorts paged through with the cursor without duplicates or gaps and
with a matching total, page= paging, cursor and page together (400), fields=
selection, bad parameters (400 naming them), q over the employee id.

One fixture of 28 users sharing a tag, with every listed field set on some and
null on others; expectations are computed from the records the server
returns for them (GET with q=tag), so a filter or sort is checked against the
server's own data. Text sorts are byte order (docs/architecture.md); the
fixture's values are all of one case shape so any collation agrees."""

import functools
import time
from datetime import datetime, timedelta, timezone

from harness import (Failures, check_problem, create_user, expect, expect_eq, expect_status,
                     unique_tag, urlq)

USERS = "/api/v1/users"
FIELDS = "/api/v1/settings/users/fields"
N = 28
SORT_KEYS = ("id", "username", "email", "first_name", "last_name", "department", "location",
             "position", "employee_id", "type", "status", "created_at", "updated_at",
             "last_login_at")
FIRSTS = ["Anna", "Bertil", "Cecilia", "David", "Erik", "Frida", "Gustav"]
LASTS = ["Lind", "Berg", "Holm", "Berg", "Ek", "Lind", "Nyberg", "Berg"]
TYPES = ["standard", "guest", "standard", "api", "standard", "guest", "api"]


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_iso(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def fixture(ctx):
    if "lists" in ctx.state:
        return ctx.state["lists"]
    c = ctx.client()
    tag = "ls" + unique_tag(5)
    cf_key = "team_" + tag[2:]
    have_cf = c.post(FIELDS, {"key": cf_key, "label": "Team", "type": "text"}).status == 201
    users = []
    for i in range(N):
        if i == N // 2:
            time.sleep(0.05)           # a gap in created_at between the two halves
        letters = "".join(chr(ord("a") + (i * 7 + k * 3) % 26) for k in range(3))
        body = {"username": "%s%s%02d" % (tag, letters, i),
                "email": "%s.%02d@example.com" % (tag, (i * 37) % 100),
                "first_name": FIRSTS[i % 7], "last_name": LASTS[(i * 5) % 8],
                "department": [None, "Sales", "Ops", "Eng"][i % 4],
                "location": ["Oslo", None, "Bergen"][i % 3],
                "position": ["Lead", "Analyst", None, "Engineer", "Manager"][i % 5],
                "employee_id": None if i % 6 == 0 else "E%s%02d" % (tag.upper(), (i * 37) % 100),
                "role": [None, "sales_rep", "eng_lead"][(i // 2) % 3],
                "type": TYPES[i % 7],
                "status": "pending" if i % 5 == 1 else "active",
                "manager_id": None if i < 3 else [None, users[0]["id"], users[1]["id"],
                                                  users[2]["id"]][(i * 3) % 4]}
        team = ["red", "blue", None][i % 3]
        if have_cf and team:
            body["custom_fields"] = {cf_key: team}
        users.append(create_user(c, **{k: v for k, v in body.items() if v is not None}))
    for i, u in enumerate(users):
        if i % 5 == 3:
            c.post("%s/%d/deactivate" % (USERS, u["id"]), {"reason": "temporary_leave"})
        elif i % 5 == 4:
            c.post("%s/%d/lock" % (USERS, u["id"]), {})
    for u in users[::5]:
        expect_status(c.patch("%s/%d" % (USERS, u["id"]), {"last_name": "Zeta"}), 200)
    r = c.get(USERS + "?" + urlq(q=tag, limit=500))
    expect_status(r, 200)
    recs = r.json["items"]
    expect_eq(sorted(x["id"] for x in recs), sorted(u["id"] for u in users),
              "the fixture's users listed with q=%s" % tag, r)
    half = N // 2
    ids_a = {u["id"] for u in users[:half]}
    last_a = max(parse_iso(x["created_at"]) for x in recs if x["id"] in ids_a)
    first_b = min(parse_iso(x["created_at"]) for x in recs if x["id"] not in ids_a)
    expect(first_b - last_a >= timedelta(milliseconds=3),
           "created_at of the halves overlap: %s / %s" % (last_a, first_b))
    ctx.state["lists"] = {"tag": tag, "recs": recs, "ids_a": ids_a, "cf": cf_key,
                          "have_cf": have_cf, "boundary": last_a + timedelta(milliseconds=1),
                          "managers": [u["id"] for u in users[:3]]}
    return ctx.state["lists"]


def parse_sort(sort):
    return [(p.lstrip("-"), p.startswith("-")) for p in sort.split(",")]


def expected(recs, sort="id", tie_desc=False):
    """The ids in the order of sort: nulls first ascending, last descending;
    ties broken by id (ascending, or descending with tie_desc)."""
    keys = parse_sort(sort)

    def cmp(a, b):
        for field, desc in keys:
            va, vb = a.get(field), b.get(field)
            if va == vb:
                continue
            if va is None:
                return 1 if desc else -1
            if vb is None:
                return -1 if desc else 1
            r = -1 if va < vb else 1
            return -r if desc else r
        r = (a["id"] > b["id"]) - (a["id"] < b["id"])
        return -r if tie_desc else r
    return [x["id"] for x in sorted(recs, key=functools.cmp_to_key(cmp))]


def expected_any(recs, sort):
    """Acceptable orders. The contract says "id is the final tie-breaker"
    without a direction: read as id ascending, or id in the direction of the
    last sort key (what a keyset over (keys..., id) with that key's direction
    gives). Either is accepted, but it must be one of them throughout."""
    out = [expected(recs, sort)]
    if parse_sort(sort)[-1][1]:
        out.append(expected(recs, sort, tie_desc=True))
    return out


def walk(c, query, limit, max_pages=200):
    """Follows next_cursor to the end: (items, totals seen, error or None)."""
    items, totals, cursor = [], [], None
    for _ in range(max_pages):
        q = dict(query, limit=limit)
        if cursor is not None:
            q["cursor"] = cursor
        r = c.get(USERS + "?" + urlq(**q))
        if r.status != 200:
            return items, totals, "page %d: %s" % (len(totals) + 1, r.describe(400))
        b = r.json
        if not (isinstance(b, dict) and isinstance(b.get("items"), list)):
            return items, totals, "list shape: " + r.describe(400)
        if len(b["items"]) > limit:
            return items, totals, "%d items > limit %d" % (len(b["items"]), limit)
        items.extend(b["items"])
        totals.append(b.get("total"))
        cursor = b.get("next_cursor")
        if cursor is None:
            return items, totals, None
        if not b["items"]:
            return items, totals, "empty page with a next_cursor: " + r.describe(300)
    return items, totals, "more than %d pages" % max_pages


def check_walk(f, c, fx, sort, limit, extra=None):
    q = {"q": fx["tag"], "sort": sort}
    q.update(extra or {})
    items, totals, err = walk(c, q, limit)
    label = "sort=%s limit=%d%s" % (sort, limit, (" " + urlq(**extra)) if extra else "")
    if not f.check(err is None, "%s: %s" % (label, err)):
        return items
    got = [x["id"] for x in items]
    wants = expected_any(fx["recs"], sort)
    want = got if got in wants else wants[-1]
    dups = sorted({i for i in got if got.count(i) > 1})
    f.check(not dups, "%s: duplicates %s" % (label, dups))
    f.check(set(got) == set(want), "%s: missing %s, extra %s" % (
        label, sorted(set(want) - set(got)), sorted(set(got) - set(want))))
    f.check(all(t == N for t in totals), "%s: totals %s, want %d" % (label, totals, N))
    if not dups and set(got) == set(want) and got != want:
        by_id = {x["id"]: x for x in fx["recs"]}
        pos = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        keys = [k for k, _ in parse_sort(sort)]
        f.check(False, "%s: order differs at %d: got id %d %s, want id %d %s" % (
            label, pos, got[pos], [by_id[got[pos]].get(k) for k in keys], want[pos],
            [by_id[want[pos]].get(k) for k in keys]))
    return items


def ids_of(r):
    return sorted(x["id"] for x in r.json["items"])


# ---------------------------------------------------------------------------


def test_every_sort_key_both_directions(ctx):
    c = ctx.client()
    fx = fixture(ctx)
    f = Failures()
    for key in SORT_KEYS:
        for sort in (key, "-" + key):
            check_walk(f, c, fx, sort, 7)
    f.raise_if_any()


def test_mixed_multi_key_sorts_page_through_without_gaps(ctx):
    c = ctx.client()
    fx = fixture(ctx)
    f = Failures()
    for sort, limit in (("department,-location,employee_id", 4),
                        ("-status,type,-created_at", 5),
                        ("location,-position,last_name", 3),
                        ("-last_login_at,department,-id", 6),
                        ("-department,position", 1),
                        ("type,-updated_at", 4)):
        check_walk(f, c, fx, sort, limit)
    f.raise_if_any()


def test_filters(ctx):
    c = ctx.client()
    fx = fixture(ctx)
    recs, tag = fx["recs"], fx["tag"]
    m0 = fx["managers"][0]
    f = Failures()
    cases = [({"status": s}, lambda x, s=s: x["status"] == s)
             for s in ("active", "pending", "inactive", "locked")]
    cases += [({"type": "guest"}, lambda x: x["type"] == "guest"),
              ({"type": "api"}, lambda x: x["type"] == "api"),
              ({"department": "Sales"}, lambda x: x["department"] == "Sales"),
              ({"location": "Oslo"}, lambda x: x["location"] == "Oslo"),
              ({"position": "Lead"}, lambda x: x["position"] == "Lead"),
              ({"manager_id": m0}, lambda x: x["manager_id"] == m0),
              ({"role": "sales_rep"}, lambda x: x["role"] == "sales_rep"),
              ({"department": "Ops", "location": "Bergen", "status": "active"},
               lambda x: (x["department"], x["location"], x["status"]) == ("Ops", "Bergen",
                                                                           "active")),
              ({"type": "standard", "role": "eng_lead"},
               lambda x: x["type"] == "standard" and x["role"] == "eng_lead")]
    b = fx["boundary"]
    in_a = lambda x: x["id"] in fx["ids_a"]  # noqa: E731
    cases += [({"created_after": iso(b)}, lambda x: not in_a(x)),
              ({"created_before": iso(b)}, in_a),
              ({"created_after": "2000-01-01T00:00:00Z", "created_before": iso(b)}, in_a),
              ({"created_after": iso(b + timedelta(days=1))}, lambda x: False),
              ({"created_after": (b + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.")
                + "%03d+01:00" % (b.microsecond // 1000)}, lambda x: not in_a(x)),
              ({"last_login_after": "2000-01-01T00:00:00Z"}, lambda x: False),
              ({"last_login_before": "2100-01-01T00:00:00Z"}, lambda x: False)]
    if fx["have_cf"]:
        cases += [({"cf." + fx["cf"]: "red"}, lambda x: x["custom_fields"].get(fx["cf"]) ==
                   "red"),
                  ({"cf." + fx["cf"]: "blue", "status": "active"},
                   lambda x: x["custom_fields"].get(fx["cf"]) == "blue" and
                   x["status"] == "active")]
    else:
        f.items.append("the custom field for cf.<key> could not be defined")
    for params, pred in cases:
        want = sorted(x["id"] for x in recs if pred(x))
        r = c.get(USERS + "?" + urlq(q=tag, limit=500, **params))
        if not f.check(r.status == 200, "%s: %s" % (urlq(**params), r.describe(300))):
            continue
        got = ids_of(r)
        f.check(got == want and r.json["total"] == len(want), "%s: ids %s total %s, want %s" % (
            urlq(**params), got, r.json["total"], want))
    # the fixture has something to find for the plain filters
    f.check(all(any(pred(x) for x in recs) for _, pred in cases[:13]), "a filter value is unused")
    f.raise_if_any()


def test_q_searches_the_employee_id(ctx):
    c = ctx.client()
    fx = fixture(ctx)
    f = Failures()
    withid = [x for x in fx["recs"] if x["employee_id"]]
    for x in withid[:3]:
        for q in (x["employee_id"], x["employee_id"].lower(), x["employee_id"][1:]):
            r = c.get(USERS + "?" + urlq(q=q))
            f.check(r.status == 200 and [u["id"] for u in r.json["items"]] == [x["id"]]
                    and r.json["total"] == 1, "q=%s: %s" % (q, r.describe(300)))
    f.raise_if_any()


def test_q_follows_employee_id_changes(ctx):
    c = ctx.client()
    t = unique_tag(6)
    u = create_user(c, "qe" + unique_tag(), employee_id="OLD" + t.upper())
    f = Failures()

    def found(q):
        r = c.get(USERS + "?" + urlq(q=q))
        expect_status(r, 200)
        return [x["id"] for x in r.json["items"]]
    f.check(found("old" + t) == [u["id"]], "q finds the employee id")
    expect_status(c.patch("%s/%d" % (USERS, u["id"]), {"employee_id": "NEW" + t.upper()}), 200)
    f.check(found("new" + t) == [u["id"]] and found("old" + t) == [],
            "after the change: q=new %s, q=old %s" % (found("new" + t), found("old" + t)))
    expect_status(c.patch("%s/%d" % (USERS, u["id"]), {"employee_id": None}), 200)
    f.check(found("new" + t) == [], "after clearing: q=new %s" % found("new" + t))
    f.raise_if_any()


def test_page_paging(ctx):
    c = ctx.client()
    fx = fixture(ctx)
    sort = "-department,username"
    want = expected(fx["recs"], sort)        # last key ascending: id ascending either way
    f = Failures()
    got = []
    pages = -(-N // 7)
    for p in range(1, pages + 2):
        r = c.get(USERS + "?" + urlq(q=fx["tag"], sort=sort, limit=7, page=p))
        if not f.check(r.status == 200, "page=%d: %s" % (p, r.describe(300))):
            break
        b = r.json
        f.check(b.get("page") == p and b.get("total") == N, "page=%d: page %r total %r" % (
            p, b.get("page"), b.get("total")))
        if p <= pages:
            f.check(len(b["items"]) == min(7, N - 7 * (p - 1)), "page=%d has %d items" % (
                p, len(b["items"])))
        else:
            f.check(b["items"] == [], "page past the end has items: " + r.describe(300))
        got += [x["id"] for x in b["items"]]
    f.check(got == want, "pages 1..%d: %s, want %s" % (pages, got, want))
    # cursor and page together
    r = c.get(USERS + "?" + urlq(q=fx["tag"], limit=7))
    cur = (r.json or {}).get("next_cursor")
    if f.check(isinstance(cur, str) and cur, "no next_cursor to combine with page"):
        r = c.get(USERS + "?" + urlq(q=fx["tag"], limit=7, cursor=cur, page=2))
        errs = (r.json or {}).get("errors") or []
        f.check(r.status == 400 and any(e.get("field") in ("cursor", "page") for e in errs),
                "cursor and page together: " + r.describe())
    f.raise_if_any()


def test_fields_selection(ctx):
    c = ctx.client()
    fx = fixture(ctx)
    f = Failures()
    for sel in ("id,username,email", "id", "display_name,department,custom_fields,status"):
        r = c.get(USERS + "?" + urlq(q=fx["tag"], fields=sel, limit=500))
        if not f.check(r.status == 200, "fields=%s: %s" % (sel, r.describe(300))):
            continue
        bad = [x for x in r.json["items"] if set(x) != set(sel.split(","))]
        f.check(not bad, "fields=%s: items %s" % (sel, bad[:2]))
        f.check(r.json["total"] == N and len(r.json["items"]) == N, "fields=%s: total %r" % (
            sel, r.json["total"]))
    by_id = {x["id"]: x for x in fx["recs"]}
    r = c.get(USERS + "?" + urlq(q=fx["tag"], fields="id,username,department", limit=500))
    if r.status == 200:
        wrong = [x for x in r.json["items"] if (x.get("username"), x.get("department")) != (
            by_id[x["id"]]["username"], by_id[x["id"]]["department"])]
        f.check(not wrong, "selected values differ from the records: %s" % wrong[:2])
    # the cursor does not depend on the fields shown
    check_walk(f, c, fx, "-department,location", 5, {"fields": "id,username"})
    f.raise_if_any()


def test_bad_parameters_are_400_naming_them(ctx):
    c = ctx.client()
    fx = fixture(ctx)
    before = c.get(USERS + "?" + urlq(q=fx["tag"], limit=500)).json
    f = Failures()
    for query, field in (
            ("status=bogus", "status"), ("type=root", "type"),
            ("manager_id=abc", "manager_id"), ("manager_id=1.5", "manager_id"),
            ("created_after=yesterday", "created_after"),
            ("created_before=2026-13-01T00:00:00Z", "created_before"),
            ("last_login_after=x", "last_login_after"),
            ("last_login_before=2026-01-01T25:00:00Z", "last_login_before"),
            ("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"),
            ("sort=bogus", "sort"), ("sort=-", "sort"), ("sort=password", "sort"),
            ("sort=custom_fields", "sort"), ("sort=display_name", "sort"),
            ("sort=" + "id,username,email,first_name", "sort"),
            ("cursor=garbage", "cursor"), ("page=0", "page"), ("page=-1", "page"),
            ("page=x", "page"), ("page=1.5", "page"),
            ("fields=bogus", "fields"), ("fields=id,password", "fields"),
            ("status=active&status=pending", "status"),
            ("department=Ops&department=Eng", "department"),
            ("q=a&q=b", "q")):
        r = c.get(USERS + "?" + query)
        try:
            check_problem(r, 400, field=field)
        except AssertionError as e:
            f.items.append("%s: %s" % (query, e))
    # a page far past the end: empty, or refused naming page; never an error of ours
    for page in ("9223372036854775807", "99999999999"):
        r = c.get(USERS + "?" + urlq(q=fx["tag"], page=page, limit=500))
        f.check((r.status == 200 and r.json["items"] == []) or (
            r.status == 400 and any(e.get("field") == "page" for e in r.json.get("errors") or [])),
            "page=%s: %s" % (page, r.describe(300)))
    # a cursor belongs to the sort it was made for
    r = c.get(USERS + "?" + urlq(q=fx["tag"], sort="username", limit=5))
    cur = (r.json or {}).get("next_cursor")
    f.check("page" not in (r.json or {}), "a cursor-paged list carries page: " + r.describe(300))
    if f.check(isinstance(cur, str) and cur, "no next_cursor: " + r.describe(300)):
        r = c.get(USERS + "?" + urlq(q=fx["tag"], sort="-department", limit=5, cursor=cur))
        try:
            check_problem(r, 400, field="cursor")
        except AssertionError as e:
            f.items.append("a cursor made for sort=username used with sort=-department: %s" % e)
    after = c.get(USERS + "?" + urlq(q=fx["tag"], limit=500)).json
    f.check(after == before, "the list changed")
    f.raise_if_any()
