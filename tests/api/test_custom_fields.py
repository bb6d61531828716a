"""Custom fields (docs/design/users-contract.md, "Custom fields"): defining
each type, key rules and uniqueness, values checked per type, options,
pattern, min/max and date format, required fields with and without a
default on create, defaults applied, unknown keys, retiring a field, key and
type immutable, PATCH merging per key with null clearing, and filtering lists
with cf.<key>=.

Every refused request is checked for its status, problem body (errors[].field
and .rule) and for having changed nothing (the field list, the user and its
history, the user total)."""

import json
import threading

from harness import (Failures, check_problem, create_user, expect, expect_status,
                     history, unique_tag, urlq, user_body, user_total)

USERS = "/api/v1/users"
FIELDS = "/api/v1/settings/users/fields"
KEY_RULES = ("format", "pattern")   # the contract gives the key's pattern but names no rule


def upath(uid, suffix=""):
    return "%s/%d%s" % (USERS, uid, suffix)


def fpath(fid):
    return "%s/%d" % (FIELDS, fid)


def field_list(c):
    r = c.get(FIELDS)
    expect_status(r, 200)
    expect(isinstance(r.json, dict) and isinstance(r.json.get("items"), list),
           "field list shape: " + r.describe())
    return r.json["items"]


def define(c, key, ftype, **kw):
    body = {"key": key, "label": kw.pop("label", key.replace("_", " ").capitalize()),
            "type": ftype}
    body.update(kw)
    r = c.post(FIELDS, body)
    expect_status(r, 201)
    return r.json


def user_state(c, uid):
    g = c.get(upath(uid))
    h = c.get(upath(uid, "/history"))
    return {"user": (g.status, g.json, g.header("ETag")),
            "history": [e.get("id") for e in (h.json or {}).get("items", [])]}


def watch(c, *uids):
    return lambda: {"total": user_total(c), "fields": c.get(FIELDS).text,
                    "users": [user_state(c, u) for u in uids]}


def case(f, label, snap, do, status, field, rule):
    """A request that must be refused and change nothing; rule may be a tuple
    of acceptable rules."""
    before = snap()
    try:
        r = do()
        check_problem(r, status, field=field, rule=rule)
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    after = snap()
    if after != before:
        diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        f.items.append("%s: the refused request changed state: %s" % (
            label, json.dumps(diff, ensure_ascii=False)[:800]))


def fixture(ctx):
    """One field of each type (plus an unpatterned text), defined once per module."""
    if "fields" not in ctx.state:
        c = ctx.client()
        t = unique_tag(5)
        specs = {
            "text": ("cc_" + t, "text", {"label": "Cost center", "pattern": "^CC-[0-9]+$"}),
            "notes": ("notes_" + t, "text", {"label": "Notes"}),
            "number": ("hc_" + t, "number", {"label": "Headcount", "min": 0, "max": 100}),
            "date": ("start_" + t, "date", {"label": "Start date"}),
            "boolean": ("remote_" + t, "boolean", {"label": "Remote"}),
            "choice": ("colour_" + t, "choice", {"label": "Colour",
                                                 "options": ["red", "green"]}),
        }
        made = {}
        for name, (key, ftype, extra) in specs.items():
            body = dict({"key": key, "type": ftype}, **extra)
            r = c.post(FIELDS, body)
            made[name] = (body, r)
        ctx.state["fields"] = (t, made)
    t, made = ctx.state["fields"]
    for name, (body, r) in made.items():
        expect(r.status == 201, "defining the %s field failed: %s" % (name, r.describe()))
    return t, {name: body["key"] for name, (body, r) in made.items()}


# ---------------------------------------------------------------------------


def test_define_each_type(ctx):
    c = ctx.client()
    t, keys = fixture(ctx)
    made = ctx.state["fields"][1]
    f = Failures()
    listed = {x.get("id"): x for x in field_list(c)}
    for name, (body, r) in made.items():
        got = r.json
        want = dict(body, required=False, default=None, active=True)
        for k, v in want.items():
            f.check(got.get(k) == v, "%s field: %s = %r, want %r" % (name, k, got.get(k), v))
        f.check(isinstance(got.get("id"), int), "%s field: id %r" % (name, got.get("id")))
        f.check(listed.get(got.get("id")) == got, "%s field: listed as %r, created as %r" % (
            name, listed.get(got.get("id")), got))
        g = c.get(fpath(got["id"]))
        f.check(g.status == 200 and g.json == got, "GET %s field: %s" % (name, g.describe()))
    f.raise_if_any()


def test_key_rules_and_definition_errors(ctx):
    c = ctx.client()
    t, keys = fixture(ctx)
    snap = watch(c)
    f = Failures()
    ok = {"label": "X", "type": "text"}
    for key in ("Cost", "1abc", "a-b", "a b", "_ab", "a" * 41, "", "\u00e5r"):
        case(f, "key %r" % key, snap, lambda key=key: c.post(FIELDS, dict(ok, key=key)), 422,
             "key", KEY_RULES)
    for label, body, status, field, rule in (
            ("key of the wrong type", dict(ok, key=5), 400, "key", "type"),
            ("no key", ok, 422, "key", "required"),
            ("no type", {"key": "nt_" + t, "label": "X"}, 422, "type", "required"),
            ("unknown type", {"key": "ut_" + t, "label": "X", "type": "colour"}, 422, "type",
             "enum"),
            ("choice without options", {"key": "co_" + t, "label": "X", "type": "choice"}, 422,
             "options", "required"),
            ("choice with empty options", {"key": "ce_" + t, "label": "X", "type": "choice",
                                           "options": []}, 422, "options", None),
            ("invalid pattern", {"key": "ip_" + t, "label": "X", "type": "text",
                                 "pattern": "(["}, 422, "pattern", "pattern"),
            # patterns glibc's regcomp would take seconds and gigabytes over
            ("stacked stars after a bracket", {"key": "ib_" + t, "label": "X", "type": "text",
                                               "pattern": "^[ve{a-]" + "*" * 40 + "+d"},
             422, "pattern", "pattern"),
            ("nested repetition", {"key": "in_" + t, "label": "X", "type": "text",
                                   "pattern": "((a{40}){40}){40}"}, 422, "pattern", "pattern"),
            ("back-reference", {"key": "br_" + t, "label": "X", "type": "text",
                                "pattern": "^(a+)\\1$"}, 422, "pattern", "pattern"),
            ("number default of the wrong type", {"key": "nd_" + t, "label": "X",
                                                  "type": "number", "default": "x"}, 422,
             "default", "type"),
            ("choice default not an option", {"key": "cd_" + t, "label": "X", "type": "choice",
                                              "options": ["a", "b"], "default": "z"}, 422,
             "default", "enum"),
            ("unknown property", {"key": "up_" + t, "label": "X", "type": "text",
                                  "colour": "red"}, 400, "colour", "unknown_field"),
            ("duplicate key", {"key": keys["text"], "label": "Again", "type": "text"}, 409, "key",
             "unique")):
        case(f, label, snap, lambda body=body: c.post(FIELDS, body), status, field, rule)
    before = snap()
    r = c.post(FIELDS, {"key": "mm_" + t, "label": "X", "type": "number", "min": 10, "max": 5})
    errs = (r.json or {}).get("errors") or []
    f.check(r.status == 422 and any(e.get("field") in ("min", "max") for e in errs),
            "min 10 > max 5: " + r.describe())
    f.check(snap() == before, "min 10 > max 5 changed state")
    # six simultaneous definitions of one key: one field
    key = "race_" + t
    barrier = threading.Barrier(6)
    out = [None] * 6

    def run(i):
        barrier.wait(5)
        out[i] = c.post(FIELDS, {"key": key, "label": "Race %d" % i, "type": "text"})
    ts = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for th in ts:
        th.start()
    for th in ts:
        th.join(30)
    st = sorted(getattr(r, "status", None) for r in out)
    f.check(st == [201] + [409] * 5, "6 simultaneous definitions of one key: %s" % st)
    f.check(len([x for x in field_list(c) if x.get("key") == key]) == 1,
            "fields with key %s after the race" % key)
    # the edge of the key pattern is allowed
    long_key = ("k" + t + "_" * 40)[:40]
    r = c.post(FIELDS, {"key": long_key, "label": "Long", "type": "text"})
    f.check(r.status == 201 and r.json.get("key") == long_key, "40-character key: " +
            r.describe())
    f.raise_if_any()


def test_values_are_checked_per_type(ctx):
    c = ctx.client()
    t, k = fixture(ctx)
    u = create_user(c, "cv" + t)
    snap = watch(c, u["id"])
    f = Failures()
    bad = [
        ("text", "XX-1", "pattern"), ("text", "cc-12", "pattern"), ("text", 5, "type"),
        ("notes", "n" * 501, ("max_length", "max")), ("notes", ["a"], "type"),
        ("number", "5", "type"), ("number", True, "type"), ("number", -1, "min"),
        ("number", -0.5, "min"), ("number", 100.5, "max"), ("number", 101, "max"),
        ("date", "2026-13-01", "format"), ("date", "2026-02-30", "format"),
        ("date", "05/01/2026", "format"), ("date", "2026-1-5", "format"),
        ("date", "2026-01-05T00:00:00Z", "format"), ("date", "", "format"),
        ("date", 20260105, "type"),
        ("boolean", "true", "type"), ("boolean", 1, "type"), ("boolean", "yes", "type"),
        ("choice", "blue", "enum"), ("choice", "Red", "enum"), ("choice", 1, "type"),
        ("choice", ["red"], "type"),
    ]
    for name, value, rule in bad:
        shown = value if len(str(value)) < 30 else str(value)[:20] + "..."
        case(f, "PATCH %s=%r" % (name, shown), snap,
             lambda name=name, value=value: c.patch(upath(u["id"]), {
                 "custom_fields": {k[name]: value}}), 422, "custom_fields." + k[name], rule)
    for name, value, rule in bad[::4]:
        case(f, "create with %s=%r" % (name, value), snap,
             lambda name=name, value=value: c.post(USERS, user_body(
                 "cv" + unique_tag(), custom_fields={k[name]: value})), 422,
             "custom_fields." + k[name], rule)
    case(f, "PATCH an unknown key", snap, lambda: c.patch(upath(u["id"]), {
        "custom_fields": {"nokey_" + t: "x"}}), 422, "custom_fields.nokey_" + t, "unknown")
    case(f, "create with an unknown key", snap, lambda: c.post(USERS, user_body(
        "cv" + unique_tag(), custom_fields={"nokey_" + t: 1})), 422, "custom_fields.nokey_" + t,
        "unknown")
    case(f, "a good value next to a bad one", snap, lambda: c.patch(upath(u["id"]), {
        "custom_fields": {k["text"]: "CC-1", k["number"]: 500}}), 422,
        "custom_fields." + k["number"], "max")
    for value in ("CC-1", ["x"], 5):
        case(f, "custom_fields = %r" % (value,), snap,
             lambda value=value: c.patch(upath(u["id"]), {"custom_fields": value}), 400,
             "custom_fields", "type")
    # the good values, at the edges
    good = {k["text"]: "CC-100", k["notes"]: "n" * 500, k["number"]: 100, k["date"]: "2024-02-29",
            k["boolean"]: False, k["choice"]: "green"}
    r = c.patch(upath(u["id"]), {"custom_fields": good})
    f.check(r.status == 200 and r.json.get("custom_fields") == good,
            "PATCH good values: " + r.describe())
    for value in (0, 42.5):
        r = c.patch(upath(u["id"]), {"custom_fields": {k["number"]: value}})
        f.check(r.status == 200 and (r.json.get("custom_fields") or {}).get(k["number"]) == value,
                "number %r: %s" % (value, r.describe()))
    emoji = "\U0001F600" * 500                   # 500 characters, 2000 bytes
    r = c.patch(upath(u["id"]), {"custom_fields": {k["notes"]: emoji}})
    f.check(r.status == 200 and (r.json.get("custom_fields") or {}).get(k["notes"]) == emoji,
            "500 non-ASCII characters: " + r.describe(200))
    r = c.post(USERS, user_body("cw" + t, custom_fields=good))
    f.check(r.status == 201 and {a: v for a, v in r.json["custom_fields"].items()
                                 if a in good} == good,
            "create with good values: " + r.describe())
    f.raise_if_any()


def test_required_fields_on_create(ctx):
    c = ctx.client()
    t = unique_tag(5)
    old = create_user(c, "ro" + t)
    req = define(c, "req_" + t, "text", required=True)
    reqd = define(c, "reqd_" + t, "choice", options=["a", "b"], required=True, default="b")
    f = Failures()
    try:
        f.check(req.get("required") is True and reqd.get("default") == "b",
                "definitions %r %r" % (req, reqd))
        snap = watch(c, old["id"])
        case(f, "create without the required field", snap,
             lambda: c.post(USERS, user_body("rq" + unique_tag())), 422,
             "custom_fields." + req["key"], "required")
        case(f, "create with the required field null", snap,
             lambda: c.post(USERS, user_body("rq" + unique_tag(),
                                             custom_fields={req["key"]: None})), 422,
             "custom_fields." + req["key"], "required")
        r = c.post(USERS, user_body("rq" + unique_tag()))
        errs = (r.json or {}).get("errors") or []
        f.check(not any(e.get("field") == "custom_fields." + reqd["key"] for e in errs),
                "the required field with a default is reported missing: " + r.describe())
        r = c.post(USERS, user_body("rq" + unique_tag(), custom_fields={req["key"]: "here"}))
        f.check(r.status == 201 and {a: r.json["custom_fields"].get(a) for a in (
            req["key"], reqd["key"])} == {req["key"]: "here", reqd["key"]: "b"},
                "create with the required field (default for the other): " + r.describe())
        r = c.post(USERS, user_body("rq" + unique_tag(), custom_fields={req["key"]: "x",
                                                                        reqd["key"]: "a"}))
        f.check(r.status == 201 and (r.json.get("custom_fields") or {}).get(reqd["key"]) == "a",
                "a given value wins over the default: " + r.describe())
        # a user made before the field existed may still be patched
        r = c.patch(upath(old["id"]), {"first_name": "Older"})
        f.check(r.status == 200, "PATCH a user without the new required field: " +
                r.describe())
    finally:
        for fld in (req, reqd):
            expect_status(c.patch(fpath(fld["id"]), {"active": False}), 200)
    r = c.post(USERS, user_body("rq" + unique_tag()))
    f.check(r.status == 201 and req["key"] not in (r.json.get("custom_fields") or {}),
            "create once the required field is retired: " + r.describe())
    f.raise_if_any()


def test_defaults_are_applied(ctx):
    c = ctx.client()
    t = unique_tag(5)
    d = define(c, "seats_" + t, "number", default=10, min=0)
    b = define(c, "vpn_" + t, "boolean", default=True)
    f = Failures()
    u = create_user(c, "da" + t)
    cf = u.get("custom_fields") or {}
    f.check(cf.get(d["key"]) == 10 and cf.get(b["key"]) is True, "defaults on create: %r" % cf)
    v = create_user(c, "db" + t, custom_fields={d["key"]: 3, b["key"]: False})
    cf = v.get("custom_fields") or {}
    f.check(cf.get(d["key"]) == 3 and cf.get(b["key"]) is False, "given values: %r" % cf)
    g = c.get(upath(u["id"]))
    f.check((g.json.get("custom_fields") or {}).get(d["key"]) == 10, "stored default: " +
            g.describe())
    f.raise_if_any()


def test_retire_a_field_and_immutable_key_and_type(ctx):
    c = ctx.client()
    t = unique_tag(5)
    fld = define(c, "badge_" + t, "text")
    u = create_user(c, "rt" + t, custom_fields={fld["key"]: "B-1"})
    f = Failures()
    snap = watch(c, u["id"])
    case(f, "change the key", snap, lambda: c.patch(fpath(fld["id"]), {"key": "badge2_" + t}),
         422, "key", "immutable")
    case(f, "change the type", snap, lambda: c.patch(fpath(fld["id"]), {"type": "number"}), 422,
         "type", "immutable")
    r = c.patch(fpath(fld["id"]), {"label": "Badge number"})
    f.check(r.status == 200 and r.json.get("label") == "Badge number" and r.json.get("key") ==
            fld["key"], "change the label: " + r.describe())
    r = c.patch(fpath(fld["id"]), {"active": False})
    f.check(r.status == 200 and r.json.get("active") is False, "retire: " + r.describe())
    listed = [x for x in field_list(c) if x.get("id") == fld["id"]]
    f.check(listed and listed[0].get("active") is False, "listed after retiring: %s" % listed)
    g = c.get(upath(u["id"]))
    f.check((g.json.get("custom_fields") or {}).get(fld["key"]) == "B-1",
            "the value is not kept after retiring: " + g.describe())
    snap = watch(c, u["id"])
    # reading: a retired key is refused like an unknown one
    case(f, "PATCH a retired field", snap, lambda: c.patch(upath(u["id"]), {
        "custom_fields": {fld["key"]: "B-2"}}), 422, "custom_fields." + fld["key"], "unknown")
    case(f, "create with a retired field", snap, lambda: c.post(USERS, user_body(
        "rt" + unique_tag(), custom_fields={fld["key"]: "B-3"})), 422,
        "custom_fields." + fld["key"], "unknown")
    r = c.patch(upath(u["id"]), {"first_name": "Other"})
    f.check(r.status == 200 and (r.json.get("custom_fields") or {}).get(fld["key"]) == "B-1",
            "PATCH another field keeps the retired value: " + r.describe())
    for path in (fpath(987654321),):
        r = c.get(path)
        f.check(r.status == 404, "GET an unknown field: " + r.describe())
        r = c.patch(path, {"label": "x"})
        f.check(r.status == 404, "PATCH an unknown field: " + r.describe())
    f.raise_if_any()


def test_patch_merges_per_key_and_null_clears(ctx):
    c = ctx.client()
    t, k = fixture(ctx)
    start = {k["text"]: "CC-1", k["number"]: 5, k["boolean"]: True}
    u = create_user(c, "mg" + t, custom_fields=start)
    mine = set(k.values())

    def cf(x):      # the fixture's keys (fields with defaults from other tests may be there)
        return {a: v for a, v in ((x or {}).get("custom_fields") or {}).items() if a in mine}
    f = Failures()
    f.check(cf(u) == start, "created with %r" % (u.get("custom_fields"),))
    r = c.patch(upath(u["id"]), {"custom_fields": {k["number"]: 6}})
    f.check(r.status == 200 and cf(r.json) == dict(start, **{k["number"]: 6}),
            "PATCH one key: " + r.describe())
    ev = history(c, u["id"])[0]
    evs = json.dumps(ev)
    f.check(ev.get("action") == "user.update" and k["number"] in json.dumps(ev.get("after")),
            "the update event does not show the changed key: " + evs[:500])
    r = c.patch(upath(u["id"]), {"custom_fields": {k["text"]: None, k["choice"]: "red"}})
    want = {k["number"]: 6, k["boolean"]: True, k["choice"]: "red"}
    got = cf(r.json)
    f.check(r.status == 200 and {a: v for a, v in got.items() if v is not None} == want
            and got.get(k["text"]) is None, "null clears one key, another is added: " +
            r.describe())
    got = r.json.get("custom_fields")
    g = c.get(upath(u["id"]))
    f.check(g.json.get("custom_fields") == got, "GET after the merges: " + g.describe())
    # an empty object changes nothing
    r = c.patch(upath(u["id"]), {"custom_fields": {}})
    f.check(r.status == 200 and r.json.get("custom_fields") == got, "PATCH {}: " + r.describe())
    f.raise_if_any()


def test_filter_by_custom_field(ctx):
    c = ctx.client()
    t, k = fixture(ctx)
    tag = "fl" + unique_tag(5)
    vals = [{k["text"]: "CC-100", k["choice"]: "red", k["boolean"]: True, k["number"]: 5,
             k["date"]: "2026-01-05"},
            {k["text"]: "CC-200", k["choice"]: "green", k["boolean"]: False, k["number"]: 7},
            {k["text"]: "CC-100", k["choice"]: "green", k["boolean"]: True},
            {}]
    users = [create_user(c, "%s%d" % (tag, i), custom_fields=v) for i, v in enumerate(vals)]
    ids = [u["id"] for u in users]
    f = Failures()
    for param, value, want in (
            (k["text"], "CC-100", [ids[0], ids[2]]), (k["text"], "CC-300", []),
            (k["choice"], "green", [ids[1], ids[2]]), (k["boolean"], "true", [ids[0], ids[2]]),
            (k["boolean"], "false", [ids[1]]), (k["number"], "7", [ids[1]]),
            (k["date"], "2026-01-05", [ids[0]])):
        r = c.get(USERS + "?" + urlq(**{"q": tag, "cf." + param: value, "limit": 500}))
        if not f.check(r.status == 200, "cf.%s=%s: %s" % (param, value, r.describe())):
            continue
        got = sorted(u["id"] for u in r.json["items"])
        f.check(got == sorted(want) and r.json["total"] == len(want),
                "cf.%s=%s: ids %s total %s, want %s" % (param, value, got, r.json["total"],
                                                        sorted(want)))
    r = c.get(USERS + "?" + urlq(**{"q": tag, "cf." + k["text"]: "CC-100",
                                    "cf." + k["choice"]: "green"}))
    f.check(r.status == 200 and [u["id"] for u in r.json["items"]] == [ids[2]],
            "two cf filters: " + r.describe())
    for label, query, field in (
            ("unknown key", urlq(**{"cf.nokey_" + t: "x"}), "cf.nokey_" + t),
            ("twice", "cf.%s=CC-1&cf.%s=CC-2" % (k["text"], k["text"]), "cf." + k["text"]),
            ("bad key", urlq(**{"cf.Bad-Key": "x"}), "cf.Bad-Key")):
        r = c.get(USERS + "?" + query)
        try:
            check_problem(r, 400, field=field)
        except AssertionError as e:
            f.items.append("cf filter %s: %s" % (label, e))
    f.raise_if_any()
