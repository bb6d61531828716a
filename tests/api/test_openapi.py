"""docs/api/openapi.yaml against the route table (`roster routes`) and the
contract. Backend independent: runs once. Parses YAML with Debian's
python3-yaml (`apt-get install python3-yaml`)."""

import os
import re
import subprocess

from harness import Failures, expect

BACKEND_INDEPENDENT = True

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.normpath(os.path.join(HERE, "..", "..", "docs", "api", "openapi.yaml"))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

# the contract's routes (docs/api-contract-draft.md)
CONTRACT = {
    ("GET", "/healthz"), ("GET", "/metrics"),
    ("GET", "/api/v1/users"), ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/{id}"), ("PATCH", "/api/v1/users/{id}"),
    ("GET", "/api/v1/users/{id}/history"),
    ("GET", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys"),
    ("POST", "/api/v1/api-keys/{id}/revoke"),
}


def load():
    try:
        import yaml
    except ImportError:
        raise AssertionError("no yaml module: run with /usr/bin/python3 and "
                             "`apt-get install python3-yaml`")
    with open(DOC, encoding="utf-8") as f:
        return yaml.safe_load(f)


def doc_routes(doc):
    out = set()
    for path, item in (doc.get("paths") or {}).items():
        for m in METHODS:
            if m in (item or {}):
                out.add((m.upper(), path))
    return out


def resolve(doc, ref):
    expect(ref.startswith("#/"), "external $ref %r" % ref)
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        expect(isinstance(node, dict) and part in node, "unresolved $ref %r" % ref)
        node = node[part]
    return node


def walk_refs(doc, node, f, where="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                try:
                    resolve(doc, v)
                except AssertionError as e:
                    f.items.append("%s: %s" % (where, e))
            else:
                walk_refs(doc, v, f, where + "/" + str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_refs(doc, v, f, "%s/%d" % (where, i))


def test_document_is_openapi_3_1(ctx):
    doc = load()
    f = Failures()
    f.check(str(doc.get("openapi", "")).startswith("3.1."), "openapi: %r" % doc.get("openapi"))
    f.check((doc.get("info") or {}).get("title") and (doc.get("info") or {}).get("version"),
            "info.title/version missing")
    comp = doc.get("components") or {}
    schemas = comp.get("schemas") or {}
    for s in ("User", "UserList", "ApiKey", "Problem"):
        f.check(s in schemas, "components.schemas.%s missing" % s)
    bearer = (comp.get("securitySchemes") or {}).get("bearer") or {}
    f.check(bearer.get("type") == "http" and bearer.get("scheme") == "bearer",
            "securitySchemes.bearer: %r" % bearer)
    f.check({"bearer": []} in (doc.get("security") or []), "no global bearer security")
    user = schemas.get("User", {})
    f.check(set(user.get("required", [])) >= {"id", "username", "email", "first_name",
                                               "last_name", "type", "status", "created_at",
                                               "updated_at", "version"}, "User.required")
    prob = schemas.get("Problem", {})
    f.check(set(prob.get("required", [])) >= {"type", "title", "status", "detail"},
            "Problem.required")
    walk_refs(doc, doc, f)
    # every operation: responses, and error responses are problem+json
    for path, item in (doc.get("paths") or {}).items():
        for m in METHODS:
            op = (item or {}).get(m)
            if op is None:
                continue
            resp = op.get("responses") or {}
            f.check(resp, "%s %s has no responses" % (m.upper(), path))
            for code, r in resp.items():
                if "$ref" in r:
                    r = resolve(doc, r["$ref"])
                if str(code).startswith(("4", "5")):
                    f.check("application/problem+json" in (r.get("content") or {}),
                            "%s %s %s is not problem+json" % (m.upper(), path, code))
            for p in op.get("parameters", []) + (item.get("parameters") or []):
                if "$ref" in p:
                    p = resolve(doc, p["$ref"])
                if p.get("in") == "path":
                    f.check("{%s}" % p["name"] in path, "%s %s: path parameter %s not in path"
                            % (m.upper(), path, p["name"]))
            public = bool((op.get("x-required-access") or {}).get("public"))
            if path.startswith("/api/") and public:
                # sign-in without credentials: open to anyone, authentication optional
                f.check(op.get("security") in ([], [{}]), "%s %s is public but requires "
                        "credentials: %r" % (m.upper(), path, op.get("security")))
            elif path.startswith("/api/"):
                f.check(op.get("security") not in ([], [{}]), "%s %s is marked unauthenticated"
                        % (m.upper(), path))
                f.check("401" in resp, "%s %s documents no 401" % (m.upper(), path))
            else:
                f.check(op.get("security") == [], "%s %s should be security: []" % (m.upper(),
                                                                                   path))
    f.raise_if_any()


def test_contract_routes_are_documented(ctx):
    got = doc_routes(load())
    missing = CONTRACT - got
    expect(not missing, "openapi.yaml lacks contract routes: %s" % sorted(missing))


def test_route_table_matches_openapi(ctx):
    p = subprocess.run([ctx.binary, "routes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    expect(p.returncode == 0, "roster routes: exit %d, stderr %r" % (p.returncode, p.stderr))
    routes = set()
    bad = []
    for line in p.stdout.splitlines():
        if not line.strip():
            continue
        # `METHOD PATH`; columns after the path (the server adds resource and level) are ignored
        m = re.match(r"^([A-Z]+)\s+(/\S*)(\s+.*)?$", line.strip())
        if m:
            routes.add((m.group(1), m.group(2)))
        else:
            bad.append(line)
    expect(not bad, "`roster routes` lines not of the form 'METHOD PATH': %r" % bad[:5])
    expect(routes, "`roster routes` printed nothing")
    doc = doc_routes(load())
    f = Failures()
    f.check(not routes - doc, "routes missing from openapi.yaml: %s" % sorted(routes - doc))
    f.check(not doc - routes, "openapi.yaml paths the server does not route: %s" % sorted(
        doc - routes))
    f.check(not CONTRACT - routes, "contract routes missing from `roster routes`: %s" % sorted(
        CONTRACT - routes))
    f.raise_if_any()
