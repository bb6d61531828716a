"""Exporting users ("How to Export User Data"; issue 4's "filter user lists and
exports by group"): GET /api/v1/users/export answers text/csv (RFC 4180: a
header row, CRLF rows, quoted fields) with every user the list's filters
match, in the list's order, in the chosen field sections; cells a spreadsheet
would run as formulas are neutralised; the export is audited; it needs
export read."""

import csv
import io
import json

from harness import (Failures, check_problem, create_user, expect, expect_status, unique_tag)
from test_authz_matrix import audited_request_ids

USERS = "/api/v1/users"
EXPORT = USERS + "/export"


def rows(r):
    expect_status(r, 200)
    ct = r.header("Content-Type") or ""
    expect(ct.startswith("text/csv"), "Content-Type %r" % ct)
    expect("attachment" in (r.header("Content-Disposition") or ""),
           "Content-Disposition %r" % r.header("Content-Disposition"))
    expect(r.text.endswith("\r\n"), "rows end with CRLF")
    return list(csv.DictReader(io.StringIO(r.text, newline="")))


def new_key(c, username):
    r = c.post("/api/v1/api-keys", {"name": "ex-" + unique_tag(), "username": username})
    expect_status(r, 201)
    return r.json["token"]


def test_export_by_group_with_sections_and_every_member(ctx):
    c = ctx.client()
    t = unique_tag(5)
    g = c.post("/api/v1/groups", {"name": "Export " + t, "roles": ["standard_user"]})
    expect_status(g, 201)
    gid = g.json["id"]
    members = [create_user(c, "ex%s.%d" % (t, i), department="Sales", phone="+49 30 %d" % i)
               for i in range(3)]
    odd = create_user(c, "exodd" + t, first_name="=HYPERLINK(\"http://x\")",
                      last_name='O"Neil, Jr', position="Lead, Sales")
    members.append(odd)
    many = [create_user(c, "exm%s.%d" % (t, i))["id"] for i in range(520)]
    outsider = create_user(c, "exout" + t)
    for batch in ([m["id"] for m in members] + many[:400], many[400:]):
        r = c.post("/api/v1/groups/%d/members" % gid, {"user_ids": batch})
        expect(r.status in (200, 201, 204), "add members: " + r.describe())
    f = Failures()
    got = rows(c.get(EXPORT + "?group=%d" % gid))
    ids = [int(x["id"]) for x in got]
    want = sorted([m["id"] for m in members] + many)
    f.check(sorted(ids) == want, "export by group: %d rows, want %d; outsider in: %s" % (
        len(ids), len(want), outsider["id"] in ids))
    f.check(len(set(ids)) == len(ids), "a row twice")
    by_id = {int(x["id"]): x for x in got}
    o = by_id.get(odd["id"], {})
    f.check(o.get("first_name") == "'=HYPERLINK(\"http://x\")",
            "a formula cell is neutralised with a leading ': %r" % o.get("first_name"))
    f.check(o.get("last_name") == 'O"Neil, Jr' and o.get("position") == "Lead, Sales",
            "quotes and commas survive: %r" % o)
    m0 = by_id.get(members[0]["id"], {})
    f.check(m0.get("phone") == "'+49 30 0" and m0.get("department") == "Sales" and
            m0.get("groups") == "Export " + t and m0.get("email") == members[0]["email"],
            "a member's row: %r" % m0)
    # sections choose the columns
    got = rows(c.get(EXPORT + "?group=%d&sections=basic,contact&sort=-id" % gid))
    f.check(got and set(got[0].keys()) == {"id", "username", "first_name", "last_name",
                                            "display_name", "type", "status", "email",
                                            "phone"}, "basic,contact columns: %s" % (
        sorted(got[0].keys()) if got else None))
    f.check([int(x["id"]) for x in got] == sorted(want, reverse=True),
            "the list's sort is the export's order")
    # filters of the list apply
    got = rows(c.get(EXPORT + "?department=Sales&q=ex%s" % t))
    f.check(sorted(int(x["id"]) for x in got) == sorted(m["id"] for m in members[:3]),
            "department filter: %s" % [x["id"] for x in got])
    f.raise_if_any()


def test_export_is_audited_and_refusals_change_nothing(ctx):
    c = ctx.client()
    t = unique_tag(5)
    create_user(c, "exa" + t)
    r = c.get(EXPORT + "?q=exa" + t)
    expect_status(r, 200)
    rid = r.header("X-Request-Id")
    f = Failures()
    f.check(audited_request_ids(ctx, [rid]) == {rid}, "the export wrote no audit event")
    for q, field, rule in (("format=xlsx", "format", "enum"),
                           ("sections=basic,salary", "sections", "enum"),
                           ("limit=5", "limit", "unknown"),
                           ("colour=red", "colour", "unknown")):
        r = c.get(EXPORT + "?" + q)
        try:
            b = check_problem(r, 400)
            errs = [e for e in b.get("errors") or [] if isinstance(e, dict)]
            expect(any(e.get("field") == field for e in errs),
                   "want an error naming %s: %s" % (field, r.describe(300)))
        except AssertionError as e:
            f.items.append("export ?%s: %s" % (q, e))
    # export read is what it needs: a standard user has none
    std = create_user(c, "exs" + t, role="standard_user")
    sc = ctx.client(token=new_key(c, std["username"]))
    r = sc.get(EXPORT)
    try:
        b = check_problem(r, 403)
        expect(b.get("detail") == "you need read access to export", "detail %r" % b.get("detail"))
    except AssertionError as e:
        f.items.append("a standard user exports: %s" % e)
    um = create_user(c, "exu" + t, role="user_manager")
    r = ctx.client(token=new_key(c, um["username"])).get(EXPORT + "?q=exa" + t)
    f.check(r.status == 200 and "exa" + t in r.text, "a user manager (export write) exports: " +
            r.describe(300))
    f.raise_if_any()
