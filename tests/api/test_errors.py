"""Bad input: every case of the contract's "Errors" list.

Each case asserts the status, Content-Type application/problem+json, the
problem body (type, title, status, detail, instance, request_id), errors[]
field and rule where fields are at fault, the security headers, and that
nothing changed: the user total, the target user (body and ETag), its history
and the API key list are the same before and after.
"""

import json

from harness import (Failures, check_problem, check_security_headers, create_user, revoke_key,
                     parse_allow, raw_exchange, security_header_faults, unique_tag, urlq,
                     user_body)

USERS = "/api/v1/users"


def target(ctx):
    """A user every case may aim at, at version 2 (so '"1"' is stale)."""
    if "target" not in ctx.state:
        c = ctx.client()
        u = create_user(c, "tg" + unique_tag(), first_name="Tara", last_name="Target")
        r = c.patch("%s/%d" % (USERS, u["id"]), {"last_name": "Targeted"})
        assert r.status == 200, r.describe()
        other = create_user(c, "ot" + unique_tag(), first_name="Otto", last_name="Other")
        ctx.state["target"] = (r.json, other)
    return ctx.state["target"]


def snapshot(ctx):
    c = ctx.client()
    t, other = target(ctx)
    out = {}
    r = c.get(USERS + "?limit=1")
    out["total"] = r.json["total"] if r.status == 200 else r.describe()
    for key, u in (("target", t), ("other", other)):
        g = c.get("%s/%d" % (USERS, u["id"]))
        out[key] = (g.status, g.json, g.header("ETag"))
        h = c.get("%s/%d/history" % (USERS, u["id"]))
        out[key + "_history"] = [e.get("id") for e in (h.json or {}).get("items", [])]
    k = c.get("/api/v1/api-keys")
    # last_used_at of the key making these requests moves by itself
    keys = [{f: v for f, v in item.items() if f != "last_used_at"}
            for item in (k.json or {}).get("items") or []]
    out["api_keys"] = json.dumps(keys, sort_keys=True) if k.status == 200 else k.describe()
    return out


def case(ctx, f, label, do, status, field=None, rule=None, first=False, errors_expected=None,
         path=None):
    """Runs one bad request; records any failure in f. Returns the response."""
    before = snapshot(ctx)
    r = None
    try:
        r = do()
        if r is None:
            raise AssertionError("no response")
        check_problem(r, status, field=field, rule=rule, path=path, first=first,
                      errors_expected=errors_expected)
    except AssertionError as e:
        f.items.append("%s: %s" % (label, e))
    except OSError as e:
        f.items.append("%s: connection error %r" % (label, e))
    after = snapshot(ctx)
    if after != before:
        diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        f.items.append("%s: the rejected request changed state: %s" % (label, json.dumps(
            diff, ensure_ascii=False)[:800]))
    return r


def raw_json(ctx, method, path, text, ctype="application/json", token="admin"):
    c = ctx.client(token)
    data = text.encode("utf-8") if isinstance(text, str) else text
    hdrs = {"Content-Type": ctype} if ctype is not None else {}
    return lambda: c.request(method, path, data=data, headers=hdrs)


def email_of(n, tag):
    """An address of exactly n bytes: a short local part, DNS-sized labels."""
    local = "e" + tag
    room = n - len(local) - 1 - len(".com")
    labels = []
    while room > 0:
        size = min(63, room)
        if room - size == 1:      # never leave room for an empty label
            size -= 1
        labels.append(chr(ord("a") + len(labels)) * size)
        room -= size + 1
    addr = local + "@" + ".".join(labels) + ".com"
    assert len(addr.encode()) == n, (n, len(addr))
    return addr


def tpath(ctx):
    return "%s/%d" % (USERS, target(ctx)[0]["id"])


# ---------------------------------------------------------------------------


def test_malformed_json(ctx):
    f = Failures()
    tp = tpath(ctx)
    for label, method, path, text in (
            ("POST truncated", "POST", USERS, '{"username": "mj1", "email": '),
            ("POST single quotes", "POST", USERS, "{'username': 'mj2'}"),
            ("POST trailing garbage", "POST", USERS,
             json.dumps(user_body("mj" + unique_tag())) + " x"),
            ("POST two objects", "POST", USERS,
             json.dumps(user_body("mj" + unique_tag())) + json.dumps(user_body())),
            ("POST empty body", "POST", USERS, ""),
            ("POST trailing comma", "POST", USERS, '{"username": "mj3",}'),
            ("PATCH truncated", "PATCH", tp, '{"first_name": "X"'),
            ("PATCH bare word", "PATCH", tp, "first_name=X")):
        case(ctx, f, label, raw_json(ctx, method, path, text), 400, "body", "syntax", first=True)
    # invalid UTF-8 inside a string: the parser or the rules must refuse it
    bad = b'{"username": "ok' + unique_tag().encode() + b'", "email": "x@example.com", ' \
          b'"first_name": "\xff\xfe", "last_name": "L"}'
    before = snapshot(ctx)
    r = ctx.client().request("POST", USERS, data=bad, headers={"Content-Type": "application/json"})
    f.check(r.status in (400, 422) and r.content_type() == "application/problem+json",
            "invalid UTF-8: want 400/422 problem: " + r.describe())
    f.check(snapshot(ctx) == before, "invalid UTF-8 body changed state")
    f.raise_if_any()


def test_body_not_an_object(ctx):
    f = Failures()
    tp = tpath(ctx)
    for text in ("[]", '[{"username": "x"}]', '"jsmith"', "42", "null", "true"):
        case(ctx, f, "POST %s" % text, raw_json(ctx, "POST", USERS, text), 400, "body", "type",
             first=True)
    for text in ("[]", '"x"', "null"):
        case(ctx, f, "PATCH %s" % text, raw_json(ctx, "PATCH", tp, text), 400, "body", "type",
             first=True)
    f.raise_if_any()


def test_unknown_field(ctx):
    f = Failures()
    c = ctx.client()
    tp = tpath(ctx)
    case(ctx, f, "POST nickname", lambda: c.post(USERS, user_body(nickname="x")), 400, "nickname",
         "unknown_field")
    # `password` is a creation option (Set Password); its stored form is not a field
    case(ctx, f, "POST password_hash", lambda: c.post(USERS, user_body(password_hash="x")),
         400, "password_hash", "unknown_field")
    case(ctx, f, "PATCH password", lambda: c.patch(tp, {"password": "a long new passphrase"}),
         400, "password", "unknown_field")
    case(ctx, f, "PATCH nickname", lambda: c.patch(tp, {"nickname": "x"}), 400, "nickname",
         "unknown_field")
    case(ctx, f, "PATCH Username (names are case-sensitive)",
         lambda: c.patch(tp, {"Username": "x" + unique_tag()}), 400, "Username", "unknown_field")
    case(ctx, f, "PATCH valid + unknown", lambda: c.patch(tp, {"first_name": "Changed",
                                                               "nickname": "Sales"}),
         400, "nickname", "unknown_field")
    f.raise_if_any()


def test_read_only_fields(ctx):
    f = Failures()
    c = ctx.client()
    t = target(ctx)[0]
    tp = tpath(ctx)
    case(ctx, f, "POST id", lambda: c.post(USERS, user_body(id=424242)), 400, "id", "read_only")
    # status may be set on create (active or pending), never on PATCH (below)
    case(ctx, f, "POST display_name", lambda: c.post(USERS, user_body(display_name="X Y")), 400,
         "display_name", "read_only")
    case(ctx, f, "POST version", lambda: c.post(USERS, user_body(version=1)), 400, "version",
         "read_only")
    for field, value in (("id", t["id"] + 1000), ("created_at", "2020-01-01T00:00:00.000Z"),
                         ("updated_at", "2020-01-01T00:00:00.000Z"), ("version", 99),
                         ("status", "locked"), ("id", t["id"])):
        case(ctx, f, "PATCH %s=%r" % (field, value),
             lambda field=field, value=value: c.patch(tp, {field: value, "first_name": "Changed"}),
             400, field, "read_only")
    f.raise_if_any()


def test_wrong_json_types(ctx):
    f = Failures()
    c = ctx.client()
    tp = tpath(ctx)
    for field, value in (("username", 5), ("email", True), ("first_name", []),
                         ("last_name", {"x": 1}), ("type", 1), ("username", ["a", "b"]),
                         ("email", 1.5)):
        case(ctx, f, "POST %s=%r" % (field, value),
             lambda field=field, value=value: c.post(USERS, user_body(**{field: value})),
             400, field, "type")
    for field, value in (("first_name", 3.5), ("type", False), ("email", ["x@example.com"])):
        case(ctx, f, "PATCH %s=%r" % (field, value),
             lambda field=field, value=value: c.patch(tp, {field: value}), 400, field, "type")
    f.raise_if_any()


def test_missing_required_fields(ctx):
    f = Failures()
    c = ctx.client()
    for field in ("username", "email", "first_name", "last_name"):
        body = user_body()
        del body[field]
        case(ctx, f, "POST without %s" % field, lambda body=body: c.post(USERS, body), 422, field,
             "required")
    r = case(ctx, f, "POST {}", lambda: c.post(USERS, {}), 422, "username", "required")
    if r is not None and isinstance(r.json, dict):
        got = {(e.get("field"), e.get("rule")) for e in r.json.get("errors") or []}
        want = {(k, "required") for k in ("username", "email", "first_name", "last_name")}
        f.check(want <= got, "POST {}: want every missing field reported %s, got %s" % (
            sorted(want), sorted(got)))
    f.raise_if_any()


def test_rule_violations(ctx):
    f = Failures()
    c = ctx.client()
    tp = tpath(ctx)
    t = unique_tag()
    post = [
        ("username", "a", "min_length"),
        ("username", "u" + "x" * 64, "max_length"),                    # 65
        ("username", "\u00e9" * 65, "max_length"),                      # 65 characters, 130 bytes
        ("username", "bad name" + t, "characters"),
        ("username", "bad/name" + t, "characters"),
        ("username", "bad@name" + t, "characters"),
        ("username", "smile\U0001F600" + t, "characters"),
        ("username", "_lead" + t, ("characters", "format")),
        ("username", ".lead" + t, ("characters", "format")),
        ("username", "-lead" + t, ("characters", "format")),
        ("email", "no-at-sign.example.com", "format"),
        ("email", "a@nodot", "format"),
        ("email", "a b@example.com", "format"),
        ("email", "a@exa mple.com", "format"),
        ("email", "@example.com", "format"),
        ("email", "a@", "format"),
        ("email", "a\u0001b@example.com", ("format", "characters")),
        ("email", email_of(255, t), ("max_length",)),
        ("first_name", "", ("min_length", "required")),
        ("first_name", "   ", ("min_length", "required")),
        ("first_name", "F" * 101, "max_length"),
        ("last_name", "\u00d6" * 101, "max_length"),
        ("last_name", "bell\u0007" + t, ("characters", "format")),
        ("last_name", "new\nline", ("characters", "format")),
        ("last_name", "del\u007f" + t, ("characters", "format")),
        ("type", "superuser", "enum"),
        ("type", "", "enum"),
    ]
    for field, value, rule in post:
        case(ctx, f, "POST %s=%r" % (field, value[:20]),
             lambda field=field, value=value: c.post(USERS, user_body(**{field: value})),
             422, field, rule)
    for field, value, rule in (("username", "x", "min_length"), ("email", "bad", "format"),
                               ("type", "root", "enum"), ("last_name", "", ("min_length",
                                                                            "required"))):
        case(ctx, f, "PATCH %s=%r" % (field, value),
             lambda field=field, value=value: c.patch(tp, {field: value}), 422, field, rule)
    # two faults at once: both reported
    r = case(ctx, f, "POST two faults", lambda: c.post(USERS, user_body(username="a",
                                                                         email="bad")),
             422, "username", "min_length")
    if r is not None and isinstance(r.json, dict):
        got = {(e.get("field"), e.get("rule")) for e in r.json.get("errors") or []}
        f.check(("email", "format") in got, "two faults: email/format not reported: %s" % got)
    f.raise_if_any()


def test_rule_boundaries_are_accepted(ctx):
    c = ctx.client()
    f = Failures()
    t = unique_tag()
    for label, body in (
            ("username of 64", user_body("b" + t + "x" * (63 - len(t)))),
            ("username of 2", user_body(t[:1] + "9", email="two" + t + "@example.com")),
            ("username of 64 non-ASCII", user_body("\u00e9" * 58 + t)),
            ("username with . _ -", user_body("a.b_c-" + t)),
            ("username starting with a digit", user_body("7" + t)),
            ("email of 254 bytes", user_body("em" + t, email=email_of(254, t))),
            ("first_name of 100", user_body(first_name="F" * 100)),
            ("last_name of 100 non-ASCII", user_body(last_name="\u00d6" * 100)),
            ("last_name of 1", user_body(last_name="Ø"))):
        r = c.post(USERS, body)
        f.check(r.status == 201, "%s: %s" % (label, r.describe(300)))
    f.raise_if_any()


def _big_request(ctx, method, path, size, chunked=False):
    tok = ctx.server.admin_token
    filler = "x" * size
    body = json.dumps(user_body(first_name=filler) if method == "POST"
                      else {"first_name": filler}).encode()
    head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\n" % (method, path, tok))
    if chunked:
        parts = []
        for i in range(0, len(body), 65536):
            piece = body[i:i + 65536]
            parts.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
        data = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"".join(parts) + \
            b"0\r\n\r\n"
    else:
        data = (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body
    return lambda: raw_exchange(ctx.server.port, data, timeout=15, method=method)[0]


def test_body_too_large(ctx):
    f = Failures()
    tp = tpath(ctx)
    mib2 = 2 * 1024 * 1024
    case(ctx, f, "POST 2 MiB", _big_request(ctx, "POST", USERS, mib2), 413, path=USERS,
         errors_expected=False)
    case(ctx, f, "PATCH 2 MiB", _big_request(ctx, "PATCH", tp, mib2), 413, path=tp,
         errors_expected=False)
    case(ctx, f, "POST 2 MiB chunked", _big_request(ctx, "POST", USERS, mib2, chunked=True), 413,
         path=USERS, errors_expected=False)
    r = ctx.client().get("/healthz")
    f.check(r.status == 200, "server after big bodies: " + r.describe())
    f.raise_if_any()


def test_wrong_content_type(ctx):
    f = Failures()
    tp = tpath(ctx)
    good = json.dumps(user_body())
    for label, method, path, ctype in (
            ("POST text/plain", "POST", USERS, "text/plain"),
            ("POST no Content-Type", "POST", USERS, None),
            ("POST form", "POST", USERS, "application/x-www-form-urlencoded"),
            ("POST application/xml", "POST", USERS, "application/xml"),
            ("PATCH application/xml", "PATCH", tp, "application/xml"),
            ("PATCH text/plain", "PATCH", tp, "text/plain"),
            ("POST api-keys text/plain", "POST", "/api/v1/api-keys", "text/plain")):
        body = good if method == "POST" and path == USERS else (
            '{"first_name": "Changed"}' if method == "PATCH" else '{"name": "k"}')
        case(ctx, f, label, raw_json(ctx, method, path, body, ctype=ctype), 415,
             errors_expected=False)
    f.raise_if_any()


def test_unknown_route_is_404(ctx):
    f = Failures()
    c = ctx.client()
    tid = target(ctx)[0]["id"]
    for path in ("/api/v1/nope", "/nope", "/api/v1/users/%d/nope" % tid, "/api/v2/users",
                 "/api/v1/users/%d/history/1" % tid, "/api/v1/api-keys/1/nope",
                 "/api/v1/userss"):
        case(ctx, f, "GET " + path, lambda path=path: c.get(path), 404, errors_expected=False)
    case(ctx, f, "POST /api/v1/nope", lambda: c.post("/api/v1/nope", {"a": 1}), 404,
         errors_expected=False)
    f.raise_if_any()


def test_wrong_method_is_405_with_allow(ctx):
    f = Failures()
    c = ctx.client()
    tp = tpath(ctx)
    for method, path, allow in (
            ("DELETE", USERS, {"GET", "POST"}),
            ("PUT", USERS, {"GET", "POST"}),
            ("PATCH", USERS, {"GET", "POST"}),
            ("DELETE", tp, {"GET", "PATCH"}),
            ("PUT", tp, {"GET", "PATCH"}),
            ("POST", tp, {"GET", "PATCH"}),
            ("POST", tp + "/history", {"GET"}),
            ("DELETE", "/api/v1/api-keys", {"GET", "POST"}),
            ("GET", "/api/v1/api-keys/1/revoke", {"POST"}),
            ("POST", "/healthz", {"GET"}),
            ("DELETE", "/metrics", {"GET"})):
        data = b'{"first_name": "Changed"}' if method in ("POST", "PUT", "PATCH") else None
        hdrs = {"Content-Type": "application/json"} if data else None
        r = case(ctx, f, "%s %s" % (method, path),
                 lambda method=method, path=path, data=data, hdrs=hdrs:
                 c.request(method, path, data=data, headers=hdrs), 405, errors_expected=False)
        if r is not None and r.status == 405:
            got = parse_allow(r.header("Allow"))
            f.check(allow <= got and got <= allow | {"HEAD", "OPTIONS"},
                    "%s %s: Allow %r, want %s" % (method, path, r.header("Allow"),
                                                  ", ".join(sorted(allow))))
    f.raise_if_any()


def test_uniqueness_conflict_is_409(ctx):
    f = Failures()
    c = ctx.client()
    t, other = target(ctx)
    case(ctx, f, "POST same username, other case",
         lambda: c.post(USERS, user_body(t["username"].upper(),
                                         email="x%s@example.com" % unique_tag())),
         409, "username", "unique")
    case(ctx, f, "POST same email, other case",
         lambda: c.post(USERS, user_body(email=t["email"].upper())), 409, "email", "unique")
    case(ctx, f, "PATCH other to target's username",
         lambda: c.patch("%s/%d" % (USERS, other["id"]), {"username": t["username"].title()}),
         409, "username", "unique")
    case(ctx, f, "PATCH other to target's email (+ a first_name change)",
         lambda: c.patch("%s/%d" % (USERS, other["id"]), {"email": t["email"],
                                                          "first_name": "Changed"}),
         409, "email", "unique")
    f.raise_if_any()


def test_credentials_are_checked(ctx):
    f = Failures()
    srv = ctx.server
    tok = srv.admin_token
    c = ctx.client()
    # a revoked key
    k = c.post("/api/v1/api-keys", {"name": "to revoke " + unique_tag()})
    revoked = None
    if f.check(k.status == 201, "create key: " + k.describe()):
        revoked = k.json["token"]
        rv = revoke_key(c, k.json["id"])
        f.check(rv.status == 200, "revoke: " + rv.describe())
    key_id = tok.split("_")[1]
    wrong_secret = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    headers_cases = [
        ("no Authorization", None),
        ("Bearer garbage", "Bearer garbage"),
        ("Bearer empty", "Bearer "),
        ("Basic", "Basic YWRtaW46YWRtaW4="),
        ("token without scheme", tok),
        ("unknown well-formed key", "Bearer rsk_0123456789abcdef_" + "A" * 43),
        ("known key id, wrong secret", "Bearer " + wrong_secret),
        ("known key id, short secret", "Bearer rsk_%s_abc" % key_id),
        ("token with trailing junk", "Bearer " + tok + "x"),
    ]
    if revoked:
        headers_cases.append(("revoked key", "Bearer " + revoked))
    details = {}
    for label, auth in headers_cases:
        for method, path, body in (("GET", USERS, None),
                                   ("POST", USERS, json.dumps(user_body()).encode())):
            hdrs = {"Authorization": auth}
            if body:
                hdrs["Content-Type"] = "application/json"
            r = case(ctx, f, "%s %s with %s" % (method, path, label),
                     lambda method=method, path=path, body=body, hdrs=hdrs:
                     c.request(method, path, data=body, headers=hdrs, token=None), 401,
                     errors_expected=False)
            if r is not None and r.status == 401:
                www = r.header("WWW-Authenticate") or ""
                f.check(www.split(" ")[0].lower() == "bearer",
                        "%s: WWW-Authenticate %r, want Bearer" % (label, www))
                details.setdefault((r.json or {}).get("detail"), []).append(label)
    f.check(len(details) <= 1, "401 detail differs by reason (it must be one generic text): %s"
            % details)
    # the real token still works (so the cases above failed for the right reason)
    r = c.get(USERS + "?limit=1")
    f.check(r.status == 200, "admin token: " + r.describe())
    f.raise_if_any()


def test_stale_if_match_is_412(ctx):
    f = Failures()
    c = ctx.client()
    tp = tpath(ctx)
    cur = c.get(tp).json["version"]
    for etag in ('"%d"' % (cur - 1), '"%d"' % (cur + 5), '"0"', '"abc"'):
        case(ctx, f, "If-Match %s" % etag,
             lambda etag=etag: c.patch(tp, {"first_name": "Changed"}, headers={"If-Match": etag}),
             412, errors_expected=False)
    f.raise_if_any()


def test_bad_list_parameters(ctx):
    f = Failures()
    c = ctx.client()
    r = c.get(USERS + "?" + urlq(limit=1, sort="username"))
    other_sort_cursor = (r.json or {}).get("next_cursor")
    cases = [("limit", {"limit": v}) for v in ("0", "501", "-1", "abc", "1.5", "10x")]
    cases += [("sort", {"sort": v}) for v in ("nope", "-nope", "password", "id,bogus", "--id",
                                              "username;drop")]
    cases += [("cursor", {"cursor": v}) for v in ("garbage", "!!!", "eyJ4IjoxfQ", "A" * 300)]
    if other_sort_cursor:
        cases.append(("cursor", {"cursor": other_sort_cursor, "sort": "-email"}))
    cases += [("status", {"status": v}) for v in ("bogus", "ACTIVE2")]
    cases += [("type", {"type": v}) for v in ("bogus", "superuser")]
    for field, params in cases:
        path = USERS + "?" + urlq(**params)
        case(ctx, f, "GET %s" % path, lambda path=path: c.get(path), 400, field, None, first=True,
             path=USERS)
    f.raise_if_any()


def test_every_response_has_security_headers_and_request_id(ctx):
    c = ctx.client()
    anon = ctx.client(token=None)
    tid = target(ctx)[0]["id"]
    rs = [anon.get("/healthz"), anon.get("/metrics"), anon.get(USERS), c.get(USERS),
          c.get("%s/%d" % (USERS, tid)), c.get("%s/%d/history" % (USERS, tid)),
          c.get("/api/v1/api-keys"), c.get("/nope"), c.request("DELETE", USERS),
          c.post(USERS, {}), c.post(USERS, user_body("sh" + unique_tag()))]
    f = Failures()
    for r in rs:
        faults = security_header_faults(r)
        f.check(not faults, "%s %s -> %d: %s" % (r.method, r.path, r.status, "; ".join(faults)))
    ids = [r.header("X-Request-Id") for r in rs]
    f.check(len(set(ids)) == len(ids), "X-Request-Id repeats: %s" % ids)
    # and every response this module's clients received so far
    seen = set()
    for r in list(ctx.server.responses):
        faults = security_header_faults(r)
        key = (r.method, r.path.split("?")[0], r.status, tuple(faults))
        if faults and key not in seen:
            seen.add(key)
            f.check(False, "%s %s -> %d: %s" % (r.method, r.path, r.status, "; ".join(faults)))
    f.raise_if_any()
    check_security_headers(rs[0])


def test_odd_requests_get_4xx_never_5xx(ctx):
    c = ctx.client()
    tid = target(ctx)[0]["id"]
    f = Failures()
    before = snapshot(ctx)
    for method, path in (
            ("GET", USERS + "?q=%FF"), ("GET", USERS + "?q=" + "a" * 300),
            ("GET", USERS + "?cursor=%FF%FE"), ("GET", USERS + "?limit=99999999999999999999"),
            ("GET", USERS + "?sort=,"), ("GET", USERS + "?sort=-"), ("GET", USERS + "?status="),
            ("GET", USERS + "/9223372036854775808"), ("GET", USERS + "/%d/history/x" % tid),
            ("GET", "/" + "x" * 8000), ("OPTIONS", USERS), ("POST", "/api/v1/api-keys/999999/revoke"),
            ("GET", USERS + "/987654321/history")):
        r = c.request(method, path)
        f.check(400 <= r.status < 500 and r.content_type() == "application/problem+json",
                "%s %s: %s" % (method, path[:60], r.describe(200)))
    for body in (b'{"username": "x\\u0000y"}', b'{"username": "a", "username": "b"}',
                 b'\xef\xbb\xbf{"username": "bom"}', b'{"x": ' + b"[" * 10000 + b"]" * 10000 + b"}",
                 b'{"type": 1e400}', b'{"first_name": "\\ud800"}'):
        r = c.request("POST", USERS, data=body, headers={"Content-Type": "application/json"})
        f.check(r.status in (400, 422) and r.content_type() == "application/problem+json",
                "POST %r: %s" % (body[:40], r.describe(200)))
    f.check(ctx.server.alive(), "server died")
    f.check(snapshot(ctx) == before, "odd requests changed state")
    f.raise_if_any()
