"""harness.py: real servers on loopback for the roster API suite.

Standard library only (run with /usr/bin/python3). What lives here:

- free_port(): bind port 0 on 127.0.0.1 and read the port back.
- PgCluster: a private PostgreSQL cluster (initdb / pg_ctl as the `postgres`
  user through runuser), one fresh database per server start (createdb).
- Server: `roster serve` on a free loopback port; reads the admin key from its
  stdout, waits for "roster listening on", polls /healthz, captures stderr to a
  log file, stops by PID (SIGTERM, SIGKILL after 10 s).
- Client / Response: an http.client wrapper returning status, headers and
  parsed JSON, and describing the exchange for failure messages.
- raw_exchange(): send arbitrary bytes (huge bodies, huge headers) and read
  the answer even when the server answers before the request is complete.
- check_* helpers shared by the test modules.

Every process started here is registered and stopped at exit (atexit), so a
crashing or interrupted run leaves nothing behind.
"""

import atexit
import http.client
import json
import os
import pwd
import queue
import re
import select
import shutil
import signal
import socket
import subprocess
import threading
import time
import unicodedata
import urllib.parse

PG_BIN = "/usr/lib/postgresql/15/bin"
HOST = "127.0.0.1"

# --------------------------------------------------------------------------
# process registry: everything we start is stopped at exit

_live = []
_live_lock = threading.Lock()


def _register(obj):
    with _live_lock:
        _live.append(obj)


def _unregister(obj):
    with _live_lock:
        if obj in _live:
            _live.remove(obj)


def stop_all():
    """Stops every server and cluster still running (servers first)."""
    with _live_lock:
        objs = list(_live)
    for o in sorted(objs, key=lambda o: 0 if isinstance(o, Server) else 1):
        try:
            o.stop()
        except Exception:  # keep stopping the rest
            pass


atexit.register(stop_all)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def run(cmd, timeout=60, check=True, **kw):
    """subprocess.run with captured text output; raises with the output on failure."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s exited %d\nstdout: %s\nstderr: %s" %
                           (" ".join(cmd), p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p


# --------------------------------------------------------------------------
# PostgreSQL


class PgCluster:
    """A private cluster owned by the `postgres` user in base_dir/NAME."""

    def __init__(self, base_dir, name="pg", fsync=False):
        self.dir = os.path.join(base_dir, name)
        self.fsync = fsync
        self.port = None
        self.running = False
        self._dbs = 0

    def _as_pg(self, args, **kw):
        return run(["runuser", "-u", "postgres", "--"] + args, **kw)

    def start(self):
        pw = pwd.getpwnam("postgres")
        os.makedirs(self.dir, exist_ok=True)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.dir, 0o700)
        data = os.path.join(self.dir, "data")
        initdb = [PG_BIN + "/initdb", "-D", data, "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--locale=C.UTF-8"]
        if not self.fsync:
            initdb.append("--no-sync")
        self._as_pg(initdb, timeout=120)
        self.data = data
        for attempt in range(5):
            self.port = free_port()
            opts = "-k %s -p %d -c listen_addresses=127.0.0.1 -c max_connections=200" % (
                self.dir, self.port)
            opts += " -c fsync=off" if not self.fsync else " -c fsync=on -c synchronous_commit=on"
            _register(self)
            self.running = True
            p = self._as_pg([PG_BIN + "/pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"),
                             "-o", opts, "-w", "-t", "60", "start"], check=False, timeout=90)
            if p.returncode == 0:
                return self
            self.running = False
            _unregister(self)
            log = ""
            try:
                with open(os.path.join(self.dir, "log")) as f:
                    log = f.read()[-2000:]
            except OSError:
                pass
            if "already in use" not in log:
                raise RuntimeError("pg_ctl start failed: %s %s\n%s" % (p.stdout, p.stderr, log))
        raise RuntimeError("pg_ctl start failed: no free port")

    def createdb(self, name=None):
        self._dbs += 1
        name = name or "roster_%d_%d" % (os.getpid(), self._dbs)
        run([PG_BIN + "/createdb", "-h", HOST, "-p", str(self.port), "-U", "postgres", name])
        return "postgres://postgres@%s:%d/%s" % (HOST, self.port, name)

    def psql(self, dbname, sql):
        return run([PG_BIN + "/psql", "-h", HOST, "-p", str(self.port), "-U", "postgres", "-d",
                    dbname, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]).stdout

    def stop(self):
        if not self.running:
            return
        self.running = False
        try:
            self._as_pg([PG_BIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30",
                         "stop"], check=False, timeout=60)
        finally:
            _unregister(self)

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# roster serve

ADMIN_LINE = re.compile(r"^admin API key: (rsk_\S+)\s*$")
LISTEN_LINE = re.compile(r"^roster listening on (\S+)")


class ServerStartError(RuntimeError):
    pass


class Server:
    """One `roster serve` process on a free loopback port."""

    def __init__(self, binary, db_url, log_dir, name="server", admin_token=None, extra_args=(),
                 env=None, start_timeout=20.0):
        self.binary = binary
        self.db_url = db_url
        self.name = name
        self.admin_token = admin_token
        self.extra_args = list(extra_args)
        self.env = env
        self.start_timeout = start_timeout
        self.log_path = os.path.join(log_dir, name + ".stderr.log")
        self.stdout_path = os.path.join(log_dir, name + ".stdout.log")
        self.proc = None
        self.port = None
        self.url = None
        self.stdout_lines = []
        self.responses = []  # every Response a Client of this server received
        self._lines = queue.Queue()
        self.returncode = None

    # -- lifecycle
    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("server already running")
        self.port = free_port()
        self.url = "http://%s:%d" % (HOST, self.port)
        self.returncode = None
        cmd = [self.binary, "serve", "--listen", "%s:%d" % (HOST, self.port), "--db",
               self.db_url, "--log-level", "info"] + self.extra_args
        errf = open(self.log_path, "ab")
        env = dict(os.environ)
        env.pop("ROSTER_DB", None)
        if self.env:
            env.update(self.env)
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=errf, env=env, start_new_session=True)
        finally:
            errf.close()
        _register(self)
        # Each process gets its own queue: the reader of a process stopped by
        # restart() may still be finishing, and its end-of-output mark must
        # not reach the new process's wait.
        self._lines = queue.Queue()
        threading.Thread(target=self._read_stdout, args=(self.proc, self._lines),
                         daemon=True).start()
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _read_stdout(self, proc, lines):
        with open(self.stdout_path, "ab") as out:
            for raw in iter(proc.stdout.readline, b""):
                out.write(raw)
                out.flush()
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.stdout_lines.append(line)
                lines.put(line)
        proc.stdout.close()
        lines.put(None)

    def _wait_ready(self):
        deadline = time.monotonic() + self.start_timeout
        need_key = self.admin_token is None
        listening = False
        while not listening:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerStartError("%s: no 'roster listening on' line within %.0f s; stdout=%r; "
                                       "stderr tail: %s" % (self.name, self.start_timeout,
                                                            self.stdout_lines, self.stderr_tail()))
            try:
                line = self._lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise ServerStartError("%s exited with %s before it was ready; stdout=%r; "
                                           "stderr tail: %s" % (self.name, self.proc.returncode,
                                                                self.stdout_lines,
                                                                self.stderr_tail()))
                continue
            if line is None:
                self.proc.wait(timeout=5)
                raise ServerStartError("%s closed stdout (exit %s) before it was ready; "
                                       "stdout=%r; stderr tail: %s" % (
                                           self.name, self.proc.returncode, self.stdout_lines,
                                           self.stderr_tail()))
            m = ADMIN_LINE.match(line)
            if m:
                self.admin_token = m.group(1)
                continue
            m = LISTEN_LINE.match(line)
            if m:
                listening = True
                if need_key and self.admin_token is None:
                    raise ServerStartError("%s: 'roster listening on' came without an "
                                           "'admin API key: rsk_...' line first on a fresh "
                                           "database; stdout=%r" % (self.name, self.stdout_lines))
        # poll /healthz every 0.1 s
        last = None
        while time.monotonic() < deadline:
            try:
                r = Client(self.port, token=None, timeout=2).get("/healthz")
                if r.status == 200:
                    self._seed_roles()
                    return
                last = "status %d" % r.status
            except OSError as e:
                last = repr(e)
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise ServerStartError("%s: /healthz never answered 200 (last: %s); stderr tail: %s" %
                               (self.name, last, self.stderr_tail()))

    # Role keys that tests put on users. Since the access-control issue a
    # user's role must name an existing active role, so every server starts
    # with these (no permissions: they grant nothing by themselves).
    SEED_ROLES = ("clerk", "sales_rep", "sales_manager", "eng_lead", "ops.lead-2", "sweeper",
                  "ops_lead", "lead", "r" * 64)

    def _seed_roles(self):
        if not self.admin_token:
            return
        c = Client(self.port, token=self.admin_token, timeout=5)
        for key in self.SEED_ROLES:
            r = c.post("/api/v1/roles", {"key": key, "name": key, "permissions": {}})
            if r.status not in (201, 409):
                raise ServerStartError("%s: could not create test role %s: %s" %
                                       (self.name, key, r.describe()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """SIGTERM, wait; SIGKILL after timeout. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.returncode = self.proc.returncode
        _unregister(self)
        return self.returncode

    def kill(self):
        """kill -9 and reap."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self.returncode = self.proc.returncode
        _unregister(self)
        return self.returncode

    def restart(self):
        self.stop()
        return self.start()

    # -- logs
    def stderr_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, n=1500):
        t = self.stderr_text()
        return t[-n:] if t else "(empty)"

    # -- clients
    def client(self, token="admin", timeout=10):
        return Client(self.port, token=self.admin_token if token == "admin" else token,
                      timeout=timeout, sink=self.responses)


# --------------------------------------------------------------------------
# HTTP client

_NO_BODY = object()


class Response:
    def __init__(self, method, path, req_headers, req_body, status, reason, headers, body):
        self.method = method
        self.path = path
        self.req_headers = req_headers
        self.req_body = req_body
        self.status = status
        self.reason = reason
        self.headers = headers  # http.client.HTTPMessage: case-insensitive get()
        self.body = body
        self.text = body.decode("utf-8", "replace")
        self.json = None
        ct = self.content_type()
        if ct in ("application/json", "application/problem+json") or ct.endswith("+json"):
            try:
                self.json = json.loads(self.text)
            except ValueError:
                self.json = None

    def header(self, name):
        return self.headers.get(name)

    def header_all(self, name):
        return self.headers.get_all(name) or []

    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def describe(self, limit=600):
        rb = self.req_body
        if isinstance(rb, (bytes, bytearray)):
            rb = bytes(rb[:300]).decode("utf-8", "replace") + (
                "...(%d bytes)" % len(self.req_body) if len(self.req_body) > 300 else "")
        hdrs = {k: v for k, v in (self.req_headers or {}).items() if k.lower() != "authorization"}
        auth = (self.req_headers or {}).get("Authorization")
        if auth:
            hdrs["Authorization"] = auth[:16] + "..."
        body = self.text if len(self.text) <= limit else self.text[:limit] + "..."
        return "%s %s %s%s -> %d %s %s" % (
            self.method, self.path, json.dumps(hdrs) if hdrs else "",
            (" body=" + rb) if rb else "", self.status,
            self.headers.get("Content-Type", ""), body)


class Client:
    """One request per connection unless persistent=True (keep-alive)."""

    def __init__(self, port, token=None, timeout=10, host=HOST, sink=None):
        self.port = port
        self.host = host
        self.token = token
        self.timeout = timeout
        self.sink = sink

    def request(self, method, path, json_body=_NO_BODY, data=None, headers=None, token=_NO_BODY,
                conn=None):
        hdrs = {}
        tok = self.token if token is _NO_BODY else token
        if tok is not None:
            hdrs["Authorization"] = "Bearer " + tok
        body = None
        if json_body is not _NO_BODY:
            body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        elif data is not None:
            body = data if isinstance(data, (bytes, bytearray)) else data.encode("utf-8")
        if headers:
            for k, v in headers.items():
                if v is None:
                    hdrs.pop(k, None)
                else:
                    hdrs[k] = v
        own = conn is None
        c = conn or http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            rbody = r.read()
            resp = Response(method, path, hdrs, body, r.status, r.reason, r.headers, rbody)
        finally:
            if own:
                c.close()
        if self.sink is not None:
            self.sink.append(resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=_NO_BODY, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def patch(self, path, body=_NO_BODY, **kw):
        return self.request("PATCH", path, json_body=body, **kw)

    def connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)


def raw_exchange(port, data, timeout=10, method="POST", chunk=65536, host=HOST):
    """Sends data (a whole HTTP/1.1 request) and reads one response.

    Stops sending as soon as the server answers or closes, so a server that
    rejects a 2 MiB body early is read properly. Returns (Response or None,
    note) where note says what happened on the wire."""
    s = socket.create_connection((host, port), timeout=timeout)
    note = "sent all"
    try:
        s.setblocking(False)
        view = memoryview(data)
        sent = 0
        deadline = time.monotonic() + timeout
        while sent < len(data):
            left = deadline - time.monotonic()
            if left <= 0:
                note = "send timed out after %d of %d bytes" % (sent, len(data))
                break
            r, w, _ = select.select([s], [s], [], left)
            if r:
                note = "server answered/closed after %d of %d bytes" % (sent, len(data))
                break
            if w:
                try:
                    sent += s.send(view[sent:sent + chunk])
                except (BrokenPipeError, ConnectionResetError) as e:
                    note = "send failed after %d bytes: %r" % (sent, e)
                    break
        s.setblocking(True)
        s.settimeout(timeout)
        hr = http.client.HTTPResponse(s, method=method)
        try:
            hr.begin()
            body = hr.read()
        except (http.client.HTTPException, OSError) as e:
            return None, note + "; no response: %r" % (e,)
        head = data[:200].decode("latin-1", "replace").split("\r\n")[0]
        parts = head.split(" ")
        path = parts[1] if len(parts) > 1 else "?"
        return Response(method, path, {}, b"(%d raw bytes)" % len(data), hr.status, hr.reason,
                        hr.headers, body), note
    finally:
        s.close()


# --------------------------------------------------------------------------
# checks shared by the test modules


class Failures:
    """Collects several independent failures and raises them together."""

    def __init__(self):
        self.items = []

    def check(self, cond, msg):
        if not cond:
            self.items.append(msg)
        return cond

    def run(self, label, fn, *a, **kw):
        try:
            fn(*a, **kw)
        except AssertionError as e:
            self.items.append("%s: %s" % (label, e))

    def raise_if_any(self):
        if self.items:
            raise AssertionError("%d problem(s): %s" % (len(self.items), " || ".join(self.items)))


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def expect_status(r, status):
    ok = r.status in status if isinstance(status, (tuple, list, set)) else r.status == status
    if not ok:
        raise AssertionError("expected %s: %s" % (status, r.describe()))
    return r


def expect_eq(actual, expected, what, r=None):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r%s" % (
            what, expected, actual, (" [" + r.describe() + "]") if r is not None else ""))


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def security_header_faults(r):
    faults = []
    for k, v in SECURITY_HEADERS.items():
        got = r.header(k)
        if got is None or got.strip() != v:
            faults.append("%s=%r (want %r)" % (k, got, v))
    rid = r.header("X-Request-Id")
    if rid is None or not REQUEST_ID.match(rid):
        faults.append("X-Request-Id=%r (want 32 lower-case hex)" % (rid,))
    if r.path.startswith("/api/"):
        cc = r.header("Cache-Control") or ""
        if "no-store" not in [p.strip().lower() for p in cc.split(",")]:
            faults.append("Cache-Control=%r (want no-store)" % (cc,))
    return faults


def check_security_headers(r):
    f = security_header_faults(r)
    if f:
        raise AssertionError("missing/wrong headers %s on %s %s -> %d" % (
            "; ".join(f), r.method, r.path, r.status))


def check_problem(r, status, field=None, rule=None, path=None, first=False, errors_expected=None):
    """Asserts an RFC 9457 problem response as the contract describes it."""
    ctx = r.describe()
    if r.status != status:
        raise AssertionError("expected %d: %s" % (status, ctx))
    if r.content_type() != "application/problem+json":
        raise AssertionError("Content-Type %r, want application/problem+json: %s" % (
            r.header("Content-Type"), ctx))
    b = r.json
    if not isinstance(b, dict):
        raise AssertionError("problem body is not a JSON object: %s" % ctx)
    t = b.get("type")
    if not (isinstance(t, str) and t.startswith("https://roster.dev/problems/")
            and len(t) > len("https://roster.dev/problems/")):
        raise AssertionError("problem type %r: %s" % (t, ctx))
    if not (isinstance(b.get("title"), str) and b["title"].strip()):
        raise AssertionError("problem title missing: %s" % ctx)
    if b.get("status") != status:
        raise AssertionError("problem status %r != %d: %s" % (b.get("status"), status, ctx))
    if not (isinstance(b.get("detail"), str) and b["detail"].strip()):
        raise AssertionError("problem detail missing: %s" % ctx)
    want_path = (path if path is not None else r.path)
    inst = b.get("instance")
    if inst not in (want_path, want_path.split("?")[0], r.path):
        raise AssertionError("problem instance %r, want %r: %s" % (inst, want_path.split("?")[0],
                                                                   ctx))
    rid = r.header("X-Request-Id")
    if b.get("request_id") != rid:
        raise AssertionError("problem request_id %r != X-Request-Id %r: %s" % (
            b.get("request_id"), rid, ctx))
    check_security_headers(r)
    errs = b.get("errors")
    if field is not None:
        if not isinstance(errs, list) or not errs:
            raise AssertionError("no errors[] (want field %r rule %r): %s" % (field, rule, ctx))
        for e in errs:
            if not (isinstance(e, dict) and isinstance(e.get("message"), str) and e["message"]):
                raise AssertionError("errors[] entry without message: %s" % ctx)
        cands = errs[:1] if first else errs
        rules = rule if isinstance(rule, (tuple, list, set)) else (rule,)
        if not any(e.get("field") == field and (rule is None or e.get("rule") in rules)
                   for e in cands):
            raise AssertionError("want errors%s field=%r rule=%r: %s" % (
                "[0]" if first else "[]", field, rule, ctx))
    elif errors_expected is False:
        if errs not in (None, []):
            raise AssertionError("errors[] present but no field is at fault: %s" % ctx)
    return b


def parse_allow(v):
    return {m.strip().upper() for m in (v or "").split(",") if m.strip()}


def fold(s):
    return unicodedata.normalize("NFKC", s).casefold()


ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def unique_tag(n=6):
    """Lower-case ASCII letters only (sorts the same under any collation)."""
    import random
    return "".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def urlq(**params):
    return urllib.parse.urlencode(params)


# --------------------------------------------------------------------------
# users

def user_body(username=None, **kw):
    username = username if username is not None else ("u" + unique_tag(8))
    local = username.lower() if isinstance(username, str) and username.isascii() and \
        username.strip() else "e" + unique_tag(10)
    d = {"username": username, "email": local.strip() + "@example.com",
         "first_name": "Test", "last_name": "User"}
    d.update(kw)
    return d


def create_user(c, username=None, **kw):
    """POST /api/v1/users, asserting 201; returns the user JSON."""
    r = c.post("/api/v1/users", user_body(username, **kw))
    expect_status(r, 201)
    expect(isinstance(r.json, dict) and isinstance(r.json.get("id"), int),
           "create returned no user: " + r.describe())
    return r.json


def user_total(c, query=""):
    r = c.get("/api/v1/users?limit=1" + ("&" + query if query else ""))
    expect_status(r, 200)
    return r.json["total"]


def history(c, uid):
    r = c.get("/api/v1/users/%d/history" % uid)
    expect_status(r, 200)
    expect(isinstance(r.json, dict) and isinstance(r.json.get("items"), list),
           "history has no items[]: " + r.describe())
    return r.json["items"]


def admin_user(c):
    r = c.get("/api/v1/users?" + urlq(q="admin", limit=500))
    expect_status(r, 200)
    for u in r.json["items"]:
        if u["username"] == "admin":
            return u
    raise AssertionError("no user 'admin' in " + r.describe())


def revoke_key(c, key_id, token="admin"):
    """POST /api/v1/api-keys/{id}/revoke with no body (Content-Length: 0)."""
    kw = {} if token == "admin" else {"token": token}
    return c.request("POST", "/api/v1/api-keys/%d/revoke" % key_id, **kw)


# --------------------------------------------------------------------------
# sign-in and credentials (docs/design/auth-contract.md): an SMTP peer that
# keeps every message, servers with the test clock and the peer configured,
# a cookie session client, TOTP codes, mail parsing.

import base64  # noqa: E402
import email  # noqa: E402
import email.policy  # noqa: E402
import email.utils  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402
import struct  # noqa: E402

PYTHON = "/usr/bin/python3"
SESSION_COOKIE = "__Host-roster_session"
AUTH = "/api/v1/auth"
GENERIC_401_DETAIL = "invalid credentials"


def _client_put(self, path, body=_NO_BODY, **kw):
    return self.request("PUT", path, json_body=body, **kw)


def _client_delete(self, path, **kw):
    return self.request("DELETE", path, **kw)


Client.put = _client_put
Client.delete = _client_delete


def db_exec(ctx, db_url, sql, pg_sql=None):
    """Runs one statement on a server's database behind its back (the SQLite
    file, or the suite's PostgreSQL cluster; pg_sql when the dialects
    differ)."""
    if db_url.startswith("sqlite:"):
        import sqlite3
        con = sqlite3.connect(ctx.sqlite_path(db_url), timeout=10)
        try:
            con.execute(sql)
            con.commit()
        finally:
            con.close()
        return
    ctx.suite.pg().psql(db_url.rsplit("/", 1)[1], pg_sql or sql)


def poll(fn, timeout=10.0, interval=0.1, what="condition"):
    """Calls fn() every interval until it returns something truthy; returns
    that value, or raises AssertionError naming `what` after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)" % (
                timeout, what, last))
        time.sleep(interval)


class Mail:
    """One received message, parsed with the email package (RFC 2047 headers
    and quoted-printable bodies decoded)."""

    LINK = re.compile(r"https?://[^\s<>\"')\]]+")

    def __init__(self, raw, fname=""):
        self.raw = raw
        self.fname = fname
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.subject = str(self.msg.get("Subject", ""))
        self.to = str(self.msg.get("To", ""))
        self.sender = str(self.msg.get("From", ""))
        rcpt = self.msg.get_all("X-RcptTo") or []
        self.rcpts = [a.strip().lower() for r in rcpt for a in str(r).split(",") if a.strip()]
        if not self.rcpts:
            self.rcpts = [a.lower() for _, a in email.utils.getaddresses([self.to]) if a]
        try:
            part = self.msg.get_body(preferencelist=("plain",))
            self.body = part.get_content() if part is not None else ""
        except (KeyError, LookupError):
            self.body = self.msg.get_payload(decode=True).decode("utf-8", "replace")
        self.links = [u.rstrip(".,;") for u in self.LINK.findall(self.body)]

    def header(self, name):
        v = self.msg.get(name)
        return None if v is None else str(v)

    def token(self):
        """The token in the message's first link carrying one (query
        `token=`, a fragment `token=`, or the last path segment)."""
        for link in self.links:
            t = link_token(link)
            if t:
                return t
        return None

    def __repr__(self):
        return "<mail to=%s subject=%r>" % (",".join(self.rcpts), self.subject)


def link_token(link):
    u = urllib.parse.urlsplit(link)
    q = urllib.parse.parse_qs(u.query)
    if q.get("token"):
        return q["token"][0]
    f = urllib.parse.parse_qs(u.fragment)
    if f.get("token"):
        return f["token"][0]
    seg = u.path.rstrip("/").rsplit("/", 1)[-1]
    return seg if len(seg) >= 20 else None


class SmtpPeer:
    """`python3 -m aiosmtpd` with the Mailbox handler writing a Maildir.
    Started by PID, ready when the port accepts, stopped at exit."""

    def __init__(self, base_dir, name="smtp"):
        self.dir = os.path.join(base_dir, name + ".maildir")
        self.log_path = os.path.join(base_dir, name + ".log")
        self.proc = None
        self.port = None

    def start(self, timeout=15.0):
        os.makedirs(os.path.dirname(self.dir), exist_ok=True)
        for _ in range(5):
            self.port = free_port()
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [PYTHON, "-m", "aiosmtpd", "-n", "-l", "%s:%d" % (HOST, self.port), "-c",
                     "aiosmtpd.handlers.Mailbox", self.dir],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            finally:
                log.close()
            _register(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_open(self.port):
                    return self
                time.sleep(0.1)
            self.stop()
        raise RuntimeError("aiosmtpd did not start; log: %s" % self._log_tail())

    def _log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-1500:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    @property
    def url(self):
        return "smtp://%s:%d" % (HOST, self.port)

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
            except ProcessLookupError:
                pass
        _unregister(self)

    remove = stop  # so a runner Context can stop it with its clusters

    def messages(self):
        """Every message received so far, oldest first."""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.dir, sub)
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for n in names:
                p = os.path.join(d, n)
                try:
                    with open(p, "rb") as f:
                        raw = f.read()
                    out.append((os.stat(p).st_mtime_ns, n, raw))
                except OSError:
                    continue
        out.sort()
        return [Mail(raw, n) for _, n, raw in out]

    def to(self, addr, subject=None):
        """Messages whose envelope recipient is addr (and subject matches the
        regular expression `subject` when given)."""
        a = addr.lower()
        rx = re.compile(subject) if isinstance(subject, str) else subject
        return [m for m in self.messages() if a in m.rcpts and (rx is None or rx.search(
            m.subject))]

    def wait_for(self, addr, subject=None, count=1, timeout=15.0):
        """Waits until at least `count` matching messages to addr arrived;
        returns them (all of them, oldest first)."""
        return poll(lambda: (lambda ms: ms if len(ms) >= count else None)(self.to(addr, subject)),
                    timeout=timeout, what="%d mail(s) to %s%s (received: %r)" % (
                        count, addr, " subject ~ %r" % subject if subject else "",
                        self.messages()[-5:]))

    def none_for(self, addr, subject=None, wait=1.0):
        """Asserts that no (further) matching message arrives within `wait`
        seconds (a negative check: it has to wait out the mail job's passes)."""
        time.sleep(wait)
        return self.to(addr, subject)


def totp_code(secret_b32, at_ms=None, offset_ms=0, step_delta=0):
    """RFC 6238 TOTP (SHA-1, 30 s, 6 digits) for the base32 secret at the
    given time in ms (default: now plus offset_ms, the server's test clock)."""
    s = secret_b32.strip().replace(" ", "").upper()
    key = base64.b32decode(s + "=" * (-len(s) % 8))
    t = at_ms if at_ms is not None else int(time.time() * 1000) + offset_ms
    step = t // 30000 + step_delta
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = mac[-1] & 0x0F
    v = (struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000
    return "%06d" % v


def parse_set_cookie(value):
    """'name=value; Attr; Attr=x' -> (name, value, {attr lower: value or True})."""
    parts = [p.strip() for p in value.split(";")]
    name, _, val = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        if not p:
            continue
        k, eq, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if eq else True
    return name.strip(), val.strip(), attrs


def session_cookie(r):
    """(value, attrs) of the response's Set-Cookie for the session cookie, or None."""
    for v in r.header_all("Set-Cookie"):
        name, val, attrs = parse_set_cookie(v)
        if name == SESSION_COOKIE:
            return val, attrs
    return None


class Session:
    """A browser-like client: keeps the session cookie from login, sends it,
    and sends X-CSRF-Token on every state-changing request."""

    STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")

    def __init__(self, server, user_agent="roster-tests"):
        self.server = server
        self.cookie = None
        self.csrf = None
        self.login_response = None
        self.user_agent = user_agent
        self.http = Client(server.port, token=None, sink=server.responses)

    def request(self, method, path, body=_NO_BODY, csrf=True, cookie=True, headers=None):
        hdrs = {"User-Agent": self.user_agent}
        c = self.cookie if cookie is True else cookie
        if c:
            hdrs["Cookie"] = "%s=%s" % (SESSION_COOKIE, c)
        if method in self.STATE_CHANGING and csrf:
            tok = self.csrf if csrf is True else csrf
            if tok:
                hdrs["X-CSRF-Token"] = tok
        if headers:
            hdrs.update(headers)
        r = self.http.request(method, path, json_body=body, headers=hdrs, token=None)
        sc = session_cookie(r)
        if sc is not None:
            val, attrs = sc
            cleared = not val or attrs.get("max-age") == "0" or "1970" in str(
                attrs.get("expires", ""))
            self.cookie = None if cleared else val
        if r.status == 200 and isinstance(r.json, dict) and isinstance(
                r.json.get("csrf_token"), str):
            self.csrf = r.json["csrf_token"]
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=_NO_BODY, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=_NO_BODY, **kw):
        return self.request("PUT", path, body, **kw)

    def patch(self, path, body=_NO_BODY, **kw):
        return self.request("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, username=None, password=None, email=None, totp=None, recovery_code=None,
              headers=None, send_cookie=False):
        body = {}
        if username is not None:
            body["username"] = username
        if email is not None:
            body["email"] = email
        if password is not None:
            body["password"] = password
        if totp is not None:
            body["totp"] = totp
        if recovery_code is not None:
            body["recovery_code"] = recovery_code
        r = self.request("POST", AUTH + "/login", body, csrf=False, cookie=send_cookie,
                         headers=headers)
        self.login_response = r
        return r

    def me(self):
        return self.get(AUTH + "/me")

    def alive(self):
        """Whether the current cookie still authenticates (GET /auth/me)."""
        r = self.get(AUTH + "/me")
        if r.status not in (200, 401):
            raise AssertionError("GET /auth/me: " + r.describe())
        return r.status == 200


def login_ok(server, username, password, **kw):
    """A Session signed in (asserting 200)."""
    s = Session(server)
    r = s.login(username, password, **kw)
    expect_status(r, 200)
    expect(s.cookie, "login set no %s cookie: %s" % (SESSION_COOKIE, r.describe()))
    expect(isinstance(r.json, dict) and r.json.get("csrf_token"), "login gave no csrf_token: " +
           r.describe())
    return s


def strong_password(prefix="Qz"):
    """A password that passes the default policy (random, no words)."""
    import random
    alphabet = "bcdfghjkmnpqrstvwxzBCDFGHJKMNPQRSTVWXZ23456789"
    return prefix + "".join(random.choice(alphabet) for _ in range(14)) + "!7"


def check_generic_401(r, what="login"):
    """The one answer to every failed sign-in: 401, detail 'invalid
    credentials', no errors[]. Returns the body without request_id/instance
    for comparing answers."""
    try:
        b = check_problem(r, 401, errors_expected=False)
    except AssertionError as e:
        raise AssertionError("%s: %s" % (what, e))
    expect_eq(b.get("detail"), GENERIC_401_DETAIL, "%s: detail" % what, r)
    return {k: v for k, v in b.items() if k not in ("request_id", "instance")}


def events(c, uid, action=None):
    """The user's audit events (newest first), those of one action when given."""
    return [e for e in history(c, uid) if action is None or e.get("action") == action]


def event_reason(e):
    """The `reason` of an audit event, wherever the server put it (top level,
    or in after/detail)."""
    if not isinstance(e, dict):
        return None
    if e.get("reason") is not None:
        return e["reason"]
    for k in ("after", "detail", "details", "data"):
        v = e.get(k)
        if isinstance(v, dict) and v.get("reason") is not None:
            return v["reason"]
    return None


class AuthEnv:
    """A server started for sign-in tests, its SMTP peer and helpers."""

    def __init__(self, server, smtp):
        self.server = server
        self.smtp = smtp
        self.admin = server.client()
        self._subjects = None

    # -- clock
    def set_clock(self, offset_ms):
        r = self.admin.put("/api/v1/test/clock", {"offset_ms": int(offset_ms)})
        expect_status(r, (200, 204))
        self.server.clock_offset_ms = int(offset_ms)
        return r

    def advance(self, ms):
        return self.set_clock(self.clock() + int(ms))

    def clock(self):
        return getattr(self.server, "clock_offset_ms", 0)

    def totp(self, secret, step_delta=0):
        return totp_code(secret, offset_ms=self.clock(), step_delta=step_delta)

    def fresh_totp(self, secret):
        """Moves the test clock one TOTP step (30 s) on and returns the code
        for the new time, so a code never repeats an already used step."""
        self.advance(30000)
        return self.totp(secret)

    # -- settings
    def patch_auth(self, patch):
        r = self.admin.patch("/api/v1/settings/auth", patch)
        expect_status(r, 200)
        return r.json

    def auth_settings(self):
        r = self.admin.get("/api/v1/settings/auth")
        expect_status(r, 200)
        return r.json

    # -- users
    def user(self, password=None, prefix="au", **kw):
        """A user created through the API (active, with a password unless
        password is False). Returns (user json, password)."""
        pw = strong_password() if password is None else password
        body = dict(kw)
        if pw:
            body["password"] = pw
        u = create_user(self.admin, prefix + unique_tag(8), **body)
        return u, (pw or None)

    def login(self, username, password, **kw):
        return login_ok(self.server, username, password, **kw)

    def session(self):
        return Session(self.server)

    # -- mail
    def subject_rx(self, kind):
        """A regular expression for the subject of a mail kind, from the
        template in the notifications settings ({{var}} matches anything)."""
        if self._subjects is None:
            r = self.admin.get("/api/v1/settings/notifications")
            expect_status(r, 200)
            self._subjects = {k: v.get("subject", "") for k, v in
                              (r.json.get("templates") or {}).items()}
        t = self._subjects.get(kind)
        expect(t, "no subject template for mail kind %r" % kind)
        parts = re.split(r"\{\{\s*[a-z_]+\s*\}\}", t)
        return re.compile("^" + ".*".join(re.escape(p) for p in parts) + "$", re.S)

    def mail(self, addr, kind, count=1, timeout=15.0):
        """Waits for `count` mails of a kind to addr; returns the newest."""
        return self.smtp.wait_for(addr, self.subject_rx(kind), count=count, timeout=timeout)[-1]

    def mails(self, addr, kind):
        return self.smtp.to(addr, self.subject_rx(kind))

    def outbox(self, **q):
        r = self.admin.get("/api/v1/outbox" + ("?" + urlq(**q) if q else ""))
        expect_status(r, 200)
        return r.json["items"]


_serve_help = {}


def serve_supports(binary, option):
    """Whether `roster serve --help` mentions an option."""
    if binary not in _serve_help:
        try:
            p = run([binary, "serve", "--help"], check=False, timeout=10)
            _serve_help[binary] = p.stdout + p.stderr
        except Exception:  # noqa: BLE001
            _serve_help[binary] = ""
    return option in _serve_help[binary]


def start_auth_server(ctx, db_url=None, extra_args=(), env=None, smtp=None, name=None,
                      key_file=None, configure=True, quiet_throttle=True, admin_token=None):
    """A `roster serve` for sign-in tests: ROSTER_TEST_CLOCK=1,
    ROSTER_JOBS_INTERVAL_MS=100, its notifications SMTP pointed at an
    SmtpPeer (a new one unless given). quiet_throttle raises the per-IP
    failure budget so that tests making many failed sign-ins from 127.0.0.1
    do not trip it (the per-IP test sets it low itself). Returns an AuthEnv;
    the server and the peer are stopped with the module's context. A second
    server on the same database: pass db_url, admin_token, smtp, key_file and
    configure=False (the settings live in the database)."""
    name = name or ctx._next("auth")
    if smtp is None:
        smtp = SmtpPeer(ctx.dir, name + "-smtp").start()
        ctx._clusters.append(smtp)  # the runner's Context.close() calls remove() on these
    e = {"ROSTER_TEST_CLOCK": "1", "ROSTER_JOBS_INTERVAL_MS": "100"}
    e.update(env or {})
    args = list(extra_args)
    if key_file is None and serve_supports(ctx.binary, "--secret-key-file"):
        key_file = os.path.join(ctx.dir, name + ".key")
    if key_file and serve_supports(ctx.binary, "--secret-key-file"):
        args += ["--secret-key-file", key_file]
    s = Server(ctx.binary, db_url or ctx.new_db_url(), ctx.dir, name=name, extra_args=args,
               env=e, admin_token=admin_token)
    ctx._servers.append(s)
    s.start()
    s.clock_offset_ms = 0
    env_ = AuthEnv(s, smtp)
    if configure:
        r = env_.admin.patch("/api/v1/settings/notifications",
                             {"smtp": {"url": smtp.url, "security": "none"}})
        expect_status(r, 200)
        if quiet_throttle:
            env_.patch_auth({"throttle": {"ip_max_failures": 100000,
                                          "forgot_per_ip_per_hour": 100000}})
    return env_


def auth_env(ctx):
    """The module's shared sign-in server (started on first use)."""
    if "auth_env" not in ctx.state:
        ctx.state["auth_env"] = start_auth_server(ctx, name="authshared")
    env_ = ctx.state["auth_env"]
    if not env_.server.alive():
        raise RuntimeError("the module's shared sign-in server died; stderr tail: %s" %
                           env_.server.stderr_tail())
    return env_
