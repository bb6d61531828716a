"""The server as a process: health, metrics, request logs, HTTP/1.1 keep-alive,
HTTP/2, limits, clients that hang up, graceful shutdown."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

from harness import (Failures, expect, expect_eq, expect_status, raw_exchange, unique_tag,
                     user_body)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value}; raises on a malformed line."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        expect(m, "malformed metrics line %r" % line)
        labels = {}
        if m.group(3):
            rest = m.group(3)
            pos = 0
            while pos < len(rest):
                lm = LABEL.match(rest, pos)
                expect(lm, "malformed labels in %r" % line)
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        v = m.group(4)
        out[(m.group(1), frozenset(labels.items()))] = float(v.replace("Inf", "inf"))
    return out


def metrics(c):
    r = c.get("/metrics")
    expect_status(r, 200)
    return r, parse_metrics(r.text)


def test_healthz(ctx):
    c = ctx.client(token=None)
    r = c.get("/healthz")
    expect_status(r, 200)
    expect_eq(r.content_type(), "application/json", "Content-Type", r)
    expect(isinstance(r.json, dict) and r.json.get("status") == "ok",
           'body %r, want {"status": "ok"}' % (r.json,))


def test_metrics_names_and_counting(ctx):
    c = ctx.client()
    anon = ctx.client(token=None)
    c.get("/api/v1/users?limit=1")
    r, before = metrics(anon)
    ct = r.header("Content-Type") or ""
    expect(ct.startswith("text/plain") and "version=0.0.4" in ct.replace(" ", ""),
           "metrics Content-Type %r, want text/plain; version=0.0.4" % ct)
    f = Failures()
    names = {k[0] for k in before}
    for n in ("roster_http_requests_total", "roster_http_request_duration_seconds_bucket",
              "roster_http_request_duration_seconds_sum",
              "roster_http_request_duration_seconds_count", "roster_db_connections_in_use",
              "roster_db_connections_open", "roster_build_info"):
        f.check(n in names, "metric %s missing" % n)
    for fam, typ in (("roster_http_requests_total", "counter"),
                     ("roster_http_request_duration_seconds", "histogram")):
        f.check(re.search(r"^# TYPE %s %s$" % (fam, typ), r.text, re.M),
                "no '# TYPE %s %s' line" % (fam, typ))
    infos = [(dict(k[1]), v) for k, v in before.items() if k[0] == "roster_build_info"]
    f.check(len(infos) == 1 and infos[0][1] == 1 and infos[0][0].get("version")
            and infos[0][0].get("backend", "").startswith(
                "postgres" if ctx.backend == "postgres" else "sqlite"),
            "roster_build_info %r (want version=..., backend=%s, value 1)" % (infos, ctx.backend))
    for k, v in before.items():
        if k[0] in ("roster_db_connections_in_use", "roster_db_connections_open"):
            f.check(v >= 0, "%s = %s" % (k[0], v))
    f.raise_if_any()

    key = ("roster_http_requests_total", frozenset({"route": "/api/v1/users", "method": "GET",
                                                    "status": "200"}.items()))

    def settled():
        # a request is counted as it completes, possibly just after its response is read
        last = None
        for _ in range(20):
            _, m = metrics(anon)
            if last is not None and m.get(key) == last.get(key):
                return m
            last = m
            time.sleep(0.05)
        return last

    before = settled()
    for _ in range(3):
        expect_status(c.get("/api/v1/users?limit=1"), 200)
    after = settled()
    grown = []
    for k, v in after.items():
        if k[0] != "roster_http_requests_total":
            continue
        lab = dict(k[1])
        d = v - before.get(k, 0.0)
        if lab.get("method") == "GET" and lab.get("status") == "200" and "users" in lab.get(
                "route", "") and d:
            grown.append((lab.get("route"), d))
    expect(("/api/v1/users", 3.0) in grown,
           "after 3 GET /api/v1/users, roster_http_requests_total{route=\"/api/v1/users\","
           "method=\"GET\",status=\"200\"} grew by: %s (want 3)" % grown)
    # histogram: _count grows alike, +Inf bucket == _count, buckets are cumulative
    # (the contract names no labels for the histogram: sum over whatever series exist)
    grew = sum(v - before.get(k, 0.0) for k, v in after.items()
               if k[0] == "roster_http_request_duration_seconds_count")
    expect(grew >= 3, "roster_http_request_duration_seconds_count grew by %s after 3 requests"
           % grew)
    series = {}
    for k, v in after.items():
        if k[0] == "roster_http_request_duration_seconds_bucket":
            lab = dict(k[1])
            le = lab.pop("le", None)
            series.setdefault(frozenset(lab.items()), []).append(
                (float(le.replace("Inf", "inf")) if le else None, v))
    for lab, buckets in series.items():
        buckets.sort()
        vals = [v for _, v in buckets]
        expect(vals == sorted(vals), "buckets not cumulative for %s: %s" % (dict(lab), buckets))
        expect(buckets[-1][0] == float("inf"), "no +Inf bucket for %s" % dict(lab))
        total = after.get(("roster_http_request_duration_seconds_count", lab))
        expect(total == buckets[-1][1], "+Inf bucket %s != _count %s for %s" % (
            buckets[-1][1], total, dict(lab)))


def _log_lines(srv):
    out, bad = [], []
    for line in srv.stderr_text().splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError
            out.append(obj)
        except ValueError:
            bad.append(line)
    return out, bad


def server_errors(srv, n=4):
    """The last few log lines of level warn/error (for failure messages)."""
    out = []
    for line in srv.stderr_text().splitlines():
        if '"level":"error"' in line.replace(" ", "") or '"level":"warn' in line.replace(" ", ""):
            out.append(line[:300])
    return out[-n:]


def test_request_log_lines(ctx):
    srv = ctx.server
    c = ctx.client()
    fake = "rsk_fedcba9876543210_" + "Zq" * 21 + "Z"
    r1 = c.get("/api/v1/users?limit=2")
    r2 = c.post("/api/v1/users", user_body("lg" + unique_tag()))
    r3 = ctx.client(token=fake).get("/api/v1/users")
    r4 = ctx.client(token=None).get("/healthz")
    expect_status(r1, 200)
    expect_status(r2, 201)
    expect_status(r3, 401)
    want = {r.header("X-Request-Id"): r for r in (r1, r2, r3, r4)}
    deadline = time.monotonic() + 3
    while True:
        lines, bad = _log_lines(srv)
        byid = {l.get("request_id"): l for l in lines if l.get("msg") == "request"}
        if all(k in byid for k in want) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    f = Failures()
    f.check(not bad, "stderr lines that are not JSON objects: %r" % bad[:3])
    for rid, r in want.items():
        l = byid.get(rid)
        if not f.check(l is not None, "no request log line with request_id %s (%s %s)" % (
                rid, r.method, r.path)):
            continue
        for k in ("ts", "level", "msg", "request_id", "method", "route", "path", "status",
                  "duration_ms", "actor"):
            f.check(k in l, "log line lacks %r: %s" % (k, l))
        f.check(l.get("method") == r.method and l.get("status") == r.status,
                "log line method/status %r/%r for %s %s -> %d" % (
                    l.get("method"), l.get("status"), r.method, r.path, r.status))
        f.check(l.get("level") == "info", "level %r" % l.get("level"))
        f.check(isinstance(l.get("duration_ms"), (int, float)) and l["duration_ms"] >= 0,
                "duration_ms %r" % l.get("duration_ms"))
        f.check(isinstance(l.get("path"), str) and l["path"].split("?")[0] == r.path.split("?")[0],
                "path %r for %s" % (l.get("path"), r.path))
    for r in (r1, r2):
        l = byid.get(r.header("X-Request-Id")) or {}
        f.check(l.get("actor") in ("admin", 1, "1"), "actor %r for the admin's request" % (
            l.get("actor"),))
    l1 = byid.get(r1.header("X-Request-Id")) or {}
    f.check(l1.get("route") == "/api/v1/users", "route %r for GET /api/v1/users" % (
        l1.get("route"),))
    l3 = byid.get(r3.header("X-Request-Id")) or {}
    f.check(l3.get("actor") in (None, "", "-", "anonymous"),
            "actor %r on a 401 (no one was authenticated)" % (l3.get("actor"),))
    text = srv.stderr_text()
    tok = srv.admin_token
    for secret, what in ((tok, "admin token"), (tok.split("_", 2)[2], "admin token's secret"),
                         (fake, "rejected token"), (fake.split("_", 2)[2], "rejected secret")):
        f.check(secret not in text, "the %s appears in the log" % what)
    f.raise_if_any()


def test_keep_alive(ctx):
    c = ctx.client()
    conn = c.connection()
    try:
        socks = []
        rs = []
        rs.append(c.request("GET", "/healthz", conn=conn, token=None))
        socks.append(conn.sock)
        rs.append(c.request("GET", "/api/v1/users?limit=3", conn=conn))
        socks.append(conn.sock)
        rs.append(c.post("/api/v1/users", user_body("ka" + unique_tag()), conn=conn))
        socks.append(conn.sock)
        uid = rs[-1].json["id"] if rs[-1].status == 201 else 0
        rs.append(c.get("/api/v1/users/%d" % uid, conn=conn))
        socks.append(conn.sock)
        rs.append(c.patch("/api/v1/users/%d" % uid, {"first_name": "Kept"}, conn=conn))
        socks.append(conn.sock)
        rs.append(c.get("/api/v1/users/987654321", conn=conn))
        socks.append(conn.sock)
        rs.append(c.get("/api/v1/users/%d/history" % uid, conn=conn))
        socks.append(conn.sock)
    finally:
        conn.close()
    expect_eq([r.status for r in rs], [200, 200, 201, 200, 200, 404, 200], "statuses")
    expect(socks[0] is not None and all(s is socks[0] for s in socks),
           "the connection was not kept alive (socket changed after request %d)" % next(
               (i for i, s in enumerate(socks) if s is not socks[0]), -1))


def test_http2_prior_knowledge(ctx):
    curl = shutil.which("curl")
    if not curl:
        ctx.skip("curl not installed")
    feat = subprocess.run([curl, "-V"], stdout=subprocess.PIPE, text=True).stdout
    if "HTTP2" not in feat:
        ctx.skip("this curl has no HTTP2")
    srv = ctx.server
    base = srv.url
    f = Failures()

    def curl_run(*args):
        p = subprocess.run([curl, "-sS", "--http2-prior-knowledge", "--max-time", "10", "-o",
                            "-", "-w", "\n%{http_version} %{http_code}", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
        body, _, tail = p.stdout.rpartition("\n")
        return p.returncode, tail.strip(), body, p.stderr

    rc, st, body, err = curl_run(base + "/healthz")
    f.check(rc == 0 and st == "2 200", "h2 GET /healthz: rc=%d %r %r %r" % (rc, st, body, err))
    auth = "Authorization: Bearer " + srv.admin_token
    rc, st, body, err = curl_run("-H", auth, base + "/api/v1/users?limit=2")
    f.check(rc == 0 and st == "2 200" and '"items"' in body,
            "h2 GET /api/v1/users: rc=%d %r %r %r" % (rc, st, body[:200], err))
    rc, st, body, err = curl_run("-H", auth, "-H", "Content-Type: application/json", "-d",
                                 json.dumps(user_body("h2" + unique_tag())),
                                 base + "/api/v1/users")
    f.check(rc == 0 and st == "2 201", "h2 POST /api/v1/users: rc=%d %r %r %r" % (
        rc, st, body[:200], err))
    # several concurrent streams on one connection (raw frames: Debian's curl 7.88.1 cannot
    # reuse a prior-knowledge connection, curl/curl#10634)
    got = h2_streams(srv.port, ["/healthz", "/metrics", "/nope", "/healthz"])
    f.check(got.get("error") is None and [got.get(i) for i in (1, 3, 5, 7)] ==
            [200, 200, 404, 200], "h2 four concurrent streams on one connection: %s" % got)
    f.raise_if_any()


H2_STATUS = {0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500}


def h2_streams(port, paths, timeout=5):
    """Sends one HEADERS frame per path at once (streams 1, 3, ...) over h2c with prior
    knowledge; returns {stream: status or 'complete'} and 'error' if the server sent
    RST_STREAM/GOAWAY with an error or closed early. Status is read from the first HPACK
    byte (a static-table index); other encodings count as 'complete'."""
    def frame(t, flags, sid, payload=b""):
        return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) \
            + payload
    out = {"error": None}
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        req = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0)
        for i, path in enumerate(paths):
            block = bytes([0x82, 0x86, 0x04, len(path)]) + path.encode() + \
                bytes([0x01, 9]) + b"127.0.0.1"
            req += frame(1, 0x5, 1 + 2 * i, block)
        s.sendall(req)
        buf = b""
        open_streams = {1 + 2 * i for i in range(len(paths))}
        status = {}
        while open_streams:
            while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                d = s.recv(65536)
                if not d:
                    out["error"] = "connection closed with streams %s open" % sorted(open_streams)
                    return out
                buf += d
            n = int.from_bytes(buf[:3], "big")
            t, fl, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff
            p = buf[9:9 + n]
            buf = buf[9 + n:]
            if t == 4 and not fl & 1:
                s.sendall(frame(4, 1, 0))
            elif t == 1:
                status[sid] = H2_STATUS.get(p[0] if p else None, "complete")
            elif t == 3:
                out["error"] = "RST_STREAM on %d, code %d" % (sid, int.from_bytes(p[:4], "big"))
                return out
            elif t == 7:
                code = int.from_bytes(p[4:8], "big")
                if code:
                    out["error"] = "GOAWAY code %d %r" % (code, p[8:])
                    return out
            if t in (0, 1) and fl & 1:
                open_streams.discard(sid)
                out[sid] = status.get(sid)
    except OSError as e:
        out["error"] = repr(e)
    finally:
        s.close()
    return out


def test_header_size_limit(ctx):
    srv = ctx.server
    f = Failures()
    for label, extra in (("one 64 KiB header", "X-Big: " + "a" * 65536 + "\r\n"),
                         ("1000 headers", "".join("X-H%d: %s\r\n" % (i, "b" * 60)
                                                  for i in range(1000)))):
        data = ("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + "\r\n").encode()
        r, note = raw_exchange(srv.port, data, timeout=10, method="GET")
        f.check(r is not None and r.status in (431, 400),
                "%s: want 431 or 400, got %s (%s)" % (label, r.describe(200) if r else None,
                                                     note))
    r = ctx.client().get("/healthz")
    f.check(srv.alive() and r.status == 200, "server after big headers: " + r.describe())
    f.raise_if_any()


def test_clients_that_hang_up(ctx):
    srv = ctx.server
    tok = srv.admin_token
    reqs = []
    for i in range(8):
        body = json.dumps(user_body("hu" + unique_tag(8))).encode()
        reqs.append(("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
                         tok, len(body))).encode() + body)
    reqs.append(("GET /api/v1/users?limit=500 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
                 "\r\n\r\n" % tok).encode())
    reqs.append(("GET /api/v1/users?limit=50&sort=-last_name,email&q=hu HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer %s\r\n\r\n" % tok).encode())
    reqs.append(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    reqs.append(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    reqs.append(("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"user"
                 % tok).encode())                                  # body cut short
    reqs.append(b"GET /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthoriz")  # headers cut short
    reqs.append(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00")            # h2 preface, cut
    for i in range(200):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        try:
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.sendall(reqs[i % len(reqs)])
        except OSError:
            pass
        finally:
            s.close()
        if i % 50 == 49:
            expect(srv.alive(), "server died after %d hang-ups; stderr: %s" % (
                i + 1, srv.stderr_tail()))
    time.sleep(0.5)
    expect(srv.alive(), "server died; stderr: %s" % srv.stderr_tail())
    c = ctx.client()
    for method, path in (("GET", "/healthz"), ("GET", "/api/v1/users?limit=5"),
                         ("POST", "/api/v1/users")):
        t0 = time.monotonic()
        try:
            r = c.request(method, path, json_body=user_body("after" + unique_tag())) \
                if method == "POST" else c.get(path)
        except OSError as e:
            raise AssertionError("%s %s after 200 hang-ups: %r after %.1f s; server errors: %s" % (
                method, path, e, time.monotonic() - t0, server_errors(srv)))
        expect(r.status == (201 if method == "POST" else 200),
               "after 200 hang-ups (%.1f s): %s; server errors: %s" % (
                   time.monotonic() - t0, r.describe(), server_errors(srv)))


def _graceful(ctx, sig):
    srv = ctx.new_server(name="graceful-%s" % sig.name)
    c = srv.client()
    results = []  # (start, end, ok, detail); ok None = connection-level error
    acked = []
    stop = threading.Event()

    def stream():
        i = 0
        while not stop.is_set():
            t_start = time.monotonic()
            try:
                if i % 2:
                    r = c.get("/api/v1/users?limit=5")
                else:
                    r = c.post("/api/v1/users", user_body("gs%d%s" % (i, unique_tag())))
                    if r.status == 201:
                        acked.append(r.json["id"])
                ok, detail = r.status in (200, 201, 503), "%s %s -> %d" % (r.method, r.path,
                                                                          r.status)
            except (ConnectionError, http.client.RemoteDisconnected, socket.timeout) as e:
                ok, detail = None, repr(e)
            except Exception as e:  # noqa: BLE001 - a malformed or partial answer
                ok, detail = False, repr(e)
            results.append((t_start, time.monotonic(), ok, detail))
            i += 1
            time.sleep(0.02)

    # an idle keep-alive connection must not hold the shutdown up
    idle = c.connection()
    c.request("GET", "/healthz", conn=idle, token=None)
    t = threading.Thread(target=stream, daemon=True)
    t.start()
    time.sleep(0.7)
    t0 = time.monotonic()
    srv.proc.send_signal(sig)
    try:
        rc = srv.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    elapsed = time.monotonic() - t0
    stop.set()
    t.join(10)
    idle.close()
    if rc is None:
        srv.kill()
    f = Failures()
    f.check(rc == 0, "%s: exit code %r (want 0); stderr tail: %s" % (sig.name, rc,
                                                                       srv.stderr_tail(600)))
    f.check(elapsed < 5.0, "%s: exit took %.1f s (want < 5 s)" % (sig.name, elapsed))
    pre = [x for x in results if x[1] < t0]
    f.check(len(pre) >= 5 and all(x[2] for x in pre),
            "requests answered before the signal: %s" % [x[3] for x in pre if not x[2]][:5])
    bad = [x[3] for x in results if x[1] >= t0 and x[2] is False]
    f.check(not bad, "malformed or wrong answers during shutdown: %s" % bad[:5])
    f.check(not port_in_use(srv.port), "port %d still accepts after exit" % srv.port)
    # every acknowledged create survived the shutdown
    if rc is not None:
        again = ctx.new_server(db_url=srv.db_url, admin_token=srv.admin_token,
                               name="graceful-%s-again" % sig.name)
        c2 = again.client()
        lost = [i for i in acked if c2.get("/api/v1/users/%d" % i).status != 200]
        f.check(not lost, "acknowledged creates missing after restart: %s" % lost)
        again.stop()
    f.raise_if_any()


def port_in_use(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_graceful_shutdown_sigterm(ctx):
    _graceful(ctx, signal.SIGTERM)


def test_graceful_shutdown_sigint(ctx):
    _graceful(ctx, signal.SIGINT)


def test_db_pool_never_deadlocks(ctx):
    """A request must not hold one pool connection while it waits for another: with
    --db-pool-size 1 every kind of request still works, and more concurrent writes
    than the default pool has connections all succeed without the pool timeout."""
    f = Failures()
    small = ctx.new_server(extra_args=["--db-pool-size", "1"], name="pool1")
    c = small.client(timeout=15)
    for label, do, want in (
            ("GET /api/v1/users", lambda: c.get("/api/v1/users?limit=2"), 200),
            ("POST /api/v1/users", lambda: c.post("/api/v1/users", user_body(
                "p1" + unique_tag())), 201),
            ("POST /api/v1/api-keys", lambda: c.post("/api/v1/api-keys", {"name": "p1"}), 201)):
        t0 = time.monotonic()
        try:
            r = do()
            ok = r.status == want
            detail = r.describe(300)
        except OSError as e:
            ok, detail = False, repr(e)
        dt = time.monotonic() - t0
        f.check(ok and dt < 2.0, "--db-pool-size 1: %s took %.1f s: %s; server errors: %s" % (
            label, dt, detail, server_errors(small, 2)))
    small.stop()

    srv = ctx.server
    c = srv.client(timeout=20)
    tag = unique_tag()
    import test_users
    t0 = time.monotonic()
    rs = test_users._together(16, lambda i: c.post("/api/v1/users", user_body(
        "pc%02d%s" % (i, tag))))
    dt = time.monotonic() - t0
    statuses = sorted(getattr(r, "status", repr(r)) for r in rs)
    f.check(statuses == [201] * 16 and dt < 4.0,
            "16 concurrent creates (default pool): %s in %.1f s; server errors: %s" % (
                statuses, dt, server_errors(srv, 2)))
    f.raise_if_any()


def test_threads_are_named_for_operators(ctx):
    """`top -H` / `ps -L` name each thread (docs/operations.md): one
    roster-loopN per --threads, the job runner, the access watcher, on
    SQLite the checkpointer and the search indexer, and libuv's worker pool
    roster-pool once it has run a job (a write)."""
    srv = ctx.new_server(extra_args=["--threads", "3"], name="named-threads")
    try:
        c = srv.client()
        tag = unique_tag(5)
        for i in range(8):
            r = c.post("/api/v1/users", {"username": "thr%d-%s" % (i, tag),
                                         "email": "thr%d-%s@example.com" % (i, tag),
                                         "first_name": "T", "last_name": "N"})
            expect(r.status == 201, "create for the pool: " + r.describe())
        names = []
        for tid in os.listdir("/proc/%d/task" % srv.proc.pid):
            with open("/proc/%d/task/%s/comm" % (srv.proc.pid, tid)) as fh:
                names.append(fh.read().strip())
        want = {"roster-loop0", "roster-loop1", "roster-loop2", "roster-jobs", "roster-access",
                "roster-pool"}
        if ctx.backend == "sqlite":
            want |= {"roster-ckpt", "roster-index"}
        expect(want <= set(names), "threads %s lack %s" % (sorted(names),
                                                           sorted(want - set(names))))
        expect(names.count("roster-loop0") == 1 and names.count("roster-loop1") == 1,
               "pool threads still carry a loop's name: %s" % sorted(names))
        expect("roster-loop3" not in names, "a fourth loop with --threads 3: %s" % sorted(names))
    finally:
        srv.stop()
