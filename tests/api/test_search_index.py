"""Text search stays exact while the search index catches up.

On SQLite the trigram index is brought up to date by a background indexer
(src/store/sqlite.c, "the search indexer"); until it has run, users created,
renamed or erased are answered from their current record. These tests search
right after each change (the index has not caught up yet) and again once
/metrics says the indexer has taken everything in, and expect the same answers
both times: the right users, the right totals, pages in order without gaps, in
both directions, with other filters and other sorts. On PostgreSQL the same
tests run without the wait (its index is part of each transaction)."""

import re
import time

from harness import (Failures, create_user, expect, expect_status, unique_tag, urlq)

USERS = "/api/v1/users"


def index_state(c):
    r = c.get("/metrics")
    expect_status(r, 200)
    pend = re.search(r"^roster_search_index_pending (\d+)$", r.text, re.M)
    done = re.search(r"^roster_search_indexed_total (\d+)$", r.text, re.M)
    expect(pend and done, "/metrics lacks the search index figures")
    return int(pend.group(1)), int(done.group(1))


def wait_indexed(ctx, c, since, at_least):
    """Waits until the indexer has folded at_least users in since `since` and
    reports nothing pending (SQLite); returns at once on PostgreSQL."""
    if ctx.backend != "sqlite":
        return
    deadline = time.time() + 10
    while time.time() < deadline:
        pend, done = index_state(c)
        if pend == 0 and done - since >= at_least:
            return
        time.sleep(0.05)
    raise AssertionError("the search indexer did not catch up within 10 s: pending %d, "
                         "indexed %d (wanted %d more than %d)" % (pend, done, at_least, since))


def search(c, q, **kw):
    r = c.get(USERS + "?" + urlq(q=q, **kw))
    expect_status(r, 200)
    return r


def ids(r):
    return [u["id"] for u in r.json["items"]]


def walk(c, q, limit, sort=None):
    """Every id of the search, page by page (cursor), with the totals seen."""
    out, totals, cursor = [], set(), None
    for _ in range(100):
        params = {"q": q, "limit": limit}
        if sort:
            params["sort"] = sort
        if cursor:
            params["cursor"] = cursor
        r = search(c, **params)
        out += ids(r)
        totals.add(r.json.get("total"))
        cursor = r.json.get("next_cursor")
        if not cursor:
            return out, totals
    raise AssertionError("more than 100 pages for %r" % q)


def test_new_and_renamed_users_are_found_before_and_after_indexing(ctx):
    c = ctx.client()
    _, done0 = index_state(c)
    old, new = "sxo" + unique_tag(8), "sxn" + unique_tag(8)
    u = create_user(c, old + ".one", first_name="Ingrid", last_name=old.capitalize())
    f = Failures()
    r = search(c, old)
    f.check(ids(r) == [u["id"]] and r.json["total"] == 1,
            "just created, q=%s: %s" % (old, r.describe(300)))
    expect_status(c.patch("%s/%d" % (USERS, u["id"]),
                          {"username": new + ".one", "email": new + ".one@example.com",
                           "last_name": new.capitalize()}), 200)
    for when in ("just renamed", "after indexing"):
        r_new, r_old = search(c, new), search(c, old)
        f.check(ids(r_new) == [u["id"]] and r_new.json["total"] == 1,
                "%s, q=new: %s" % (when, r_new.describe(300)))
        f.check(ids(r_old) == [] and r_old.json["total"] == 0,
                "%s, q=old finds the old name: %s" % (when, r_old.describe(300)))
        # Another filter with the text: the combined (IN) form of the query.
        r_f = search(c, new, status="active", sort="last_name")
        f.check(ids(r_f) == [u["id"]], "%s, q=new&status&sort=last_name: %s"
                % (when, r_f.describe(300)))
        if when == "just renamed":
            wait_indexed(ctx, c, done0, 1)
    f.raise_if_any()


def test_pages_mix_indexed_and_pending_users_without_gaps(ctx):
    c = ctx.client()
    tag = "sxp" + unique_tag(8)
    _, done0 = index_state(c)
    first = [create_user(c, "%s.a%d" % (tag, i))["id"] for i in range(5)]
    wait_indexed(ctx, c, done0, 5)
    # These five stay pending for a while: the indexer waits for writes to
    # settle, and the searches below follow at once.
    second = [create_user(c, "%s.b%d" % (tag, i))["id"] for i in range(5)]
    want = sorted(first + second)
    f = Failures()
    for limit in (3, 4, 20):
        got, totals = walk(c, tag, limit)
        f.check(got == want, "limit %d, ascending: %s, want %s" % (limit, got, want))
        f.check(totals == {10}, "limit %d: totals %s, want 10" % (limit, totals))
        got, totals = walk(c, tag, limit, sort="-id")
        f.check(got == want[::-1], "limit %d, descending: %s" % (limit, got))
        got, _ = walk(c, tag, limit, sort="username")
        f.check(sorted(got) == want and len(got) == 10,
                "limit %d, by username: %s" % (limit, got))
    f.raise_if_any()


def test_erased_users_leave_the_search(ctx):
    c = ctx.client()
    tag = "sxe" + unique_tag(8)
    _, done0 = index_state(c)
    a = create_user(c, tag + ".keep")
    b = create_user(c, tag + ".gone")
    wait_indexed(ctx, c, done0, 2)
    r = c.post("%s/%d/erase" % (USERS, b["id"]), {"note": "privacy request"})
    expect(r.status in (200, 204), "erase: " + r.describe(300))
    _, done1 = index_state(c)
    f = Failures()
    for when in ("just erased", "after indexing"):
        r = search(c, tag)
        f.check(ids(r) == [a["id"]] and r.json["total"] == 1,
                "%s: %s" % (when, r.describe(300)))
        if when == "just erased":
            wait_indexed(ctx, c, done1, 1)
    f.raise_if_any()
