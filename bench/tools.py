#!/usr/bin/python3
"""Small helpers for bench/run.sh (Python standard library only).

  tools.py freeport                          print a free TCP port on 127.0.0.1
  tools.py wait-ready PORT [--pid P] [--timeout S]
                                             poll GET /healthz every 1 ms until 200;
                                             print ms waited; exit 1 on timeout or if P died
  tools.py token FILE                        print the first rsk_... token found in FILE
  tools.py proc PID                          print {"rss_kb","hwm_kb","threads","cpu_s"} as JSON
  tools.py record RESULTS BACKEND KEY VALUE  append one figure to RESULTS (JSON lines)
  tools.py record-wrk RESULTS BACKEND PREFIX WRK_OUTPUT [--cpu-before J --cpu-after J]
                                             parse the BENCH_RESULT line of a wrk run and
                                             append its figures as PREFIX_<field>
  tools.py total PORT TOKEN                  print "total" of GET /api/v1/users?limit=1
  tools.py schema-hash DBFILE                sha256 of a SQLite file's schema (sqlite_master
                                             SQL and user_version), to key the data cache
  tools.py report RESULTS OUT                print the summary table and write it to OUT
"""
import json
import os
import re
import socket
import sys
import time

TOKEN_RE = re.compile(r"rsk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def freeport():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz_once(port, timeout=0.5):
    """True if GET /healthz answers 200; False on refusal; raises nothing."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
    except OSError:
        return False


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def wait_ready(port, pid=None, timeout=20.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if healthz_once(port):
            return (time.monotonic() - t0) * 1000
        if pid and not pid_alive(pid):
            return None
        time.sleep(0.001)
    return None


def proc_info(pid):
    info = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "VmRSS":
                info["rss_kb"] = int(v.split()[0])
            elif k == "VmHWM":
                info["hwm_kb"] = int(v.split()[0])
            elif k in ("RssAnon", "RssFile", "RssShmem"):
                info[k.lower() + "_kb"] = int(v.split()[0])
            elif k == "Threads":
                info["threads"] = int(v.split()[0])
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    # fields[0] is state (field 3); utime is field 14, stime field 15.
    info["cpu_s"] = (int(fields[11]) + int(fields[12])) / hz
    # Whole machine, to see how much of the 2 cores the load generator took.
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    info["sys_total"] = sum(cpu[:8])
    info["sys_idle"] = cpu[3] + cpu[4]
    return info


def tree_cpu(root_pid):
    """utime+stime (s) of root_pid and its direct children (PostgreSQL's postmaster and backends)."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(name) == root_pid or int(fields[1]) == root_pid:
            total += int(fields[11]) + int(fields[12])
    return total / hz


def record(path, backend, key, value):
    with open(path, "a") as f:
        f.write(json.dumps({"backend": backend, "key": key, "value": value}, ensure_ascii=False) + "\n")


def parse_wrk(path):
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("BENCH_RESULT "):
                return json.loads(line[len("BENCH_RESULT "):])
    return None


def load_results(path):
    res = {}
    order = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                if r["backend"] not in res:
                    res[r["backend"]] = {}
                    order.append(r["backend"])
                if r["key"] == "notes":
                    res[r["backend"]].setdefault("notes", []).append(r["value"])
                else:
                    res[r["backend"]][r["key"]] = r["value"]
    return res, order


def fmt_num(v, nd=1):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer() and nd == 0:
        v = int(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{nd}f}"


def us_ms(v):
    return None if v is None else v / 1000.0


# (label, key or function(figures) -> value, decimals, target)
ROWS = [
    ("users in DB (generated through POST)", "users", 0, "100,000"),
    ("  how the DB was made", "dataset", None, ""),
    ("idle RSS after start, VmRSS (MB)", "idle_rss_mb", 1, "<= 10"),
    ("  anon / file-backed (MB)", lambda f: pair(f, "idle_anon_mb", "idle_file_mb", scale=1), None, ""),
    ("start to ready, median of 5 (ms)", "start_ready_ms", 1, "<= 100"),
    ("  (all 5 starts, ms)", "start_ready_all", None, ""),
    ("  'roster listening on' line, median (ms)", "listening_line_ms", 1, ""),
    ("  SIGTERM to exit, median (ms)", "shutdown_ms", 1, "< 5000"),
    ("GET /users/{id} (t2 c64): req/s", "get_rps", 0, ">= 40,000"),
    ("  p50 / p90 (ms)", lambda f: pair(f, "get_p50_us", "get_p90_us"), None, ""),
    ("  p99 (ms)", lambda f: us_ms(f.get("get_p99_us")), 2, "<= 3"),
    ("  p99.9 / max (ms)", lambda f: pair(f, "get_p999_us", "get_lat_max_us"), None, ""),
    ("  non-2xx / socket errors", lambda f: errs(f, "get"), None, "0 / 0"),
    ("  CPU: roster (+db) / machine, % of a core", lambda f: cpu_pair(f, "get"), None, ""),
    ("GET while 1 client creates: GET req/s", "mixed_get_rps", 0, ""),
    ("  GET p99 (ms)", lambda f: us_ms(f.get("mixed_get_p99_us")), 2, ""),
    ("  GET p99.9 / max (ms)", lambda f: pair(f, "mixed_get_p999_us", "mixed_get_lat_max_us"), None, ""),
    ("  GET non-2xx / socket errors", lambda f: errs(f, "mixed_get"), None, "0 / 0"),
    ("  CPU: roster (+db) / machine, % of a core", lambda f: cpu_pair(f, "mixed_get"), None, ""),
    ("  creates/s (201s) alongside", "mixed_create_created_per_s", 0, ""),
    ("  create p99 (ms)", lambda f: us_ms(f.get("mixed_create_p99_us")), 2, ""),
    ("  create non-201 (statuses)", lambda f: non201(f, "mixed_create"), None, "0"),
    ("create only (t1 c1): creates/s", "create_created_per_s", 0, ">= 2,000"),
    ("  create p50 / p99 (ms)", lambda f: pair(f, "create_p50_us", "create_p99_us"), None, ""),
    ("  create p99.9 / max (ms)", lambda f: pair(f, "create_p999_us", "create_lat_max_us"), None, ""),
    ("  create non-201 (statuses)", lambda f: non201(f, "create"), None, "0"),
    ("  CPU: roster (+db) / machine, % of a core", lambda f: cpu_pair(f, "create"), None, ""),
    ("create from 16 clients (t2 c16): creates/s", "create16_created_per_s", 0, ""),
    ("  create p99 / max (ms)", lambda f: pair(f, "create16_p99_us", "create16_lat_max_us"), None, ""),
    ("  create non-201 (statuses)", lambda f: non201(f, "create16"), None, "0"),
    ("RSS after the load runs, VmRSS / VmHWM (MB)", lambda f: pair(f, "rss_after_mb", "hwm_after_mb", scale=1), None, ""),
    ("  anon / file-backed (MB)", lambda f: pair(f, "after_anon_mb", "after_file_mb", scale=1), None, ""),
    ("server threads at idle", "threads", 0, ""),
]


def pair(f, a, b, scale=1000.0):
    va, vb = f.get(a), f.get(b)
    if va is None and vb is None:
        return None
    conv = lambda v: "n/a" if v is None else f"{v / scale:,.2f}" if scale != 1 else f"{v:,.1f}"
    return f"{conv(va)} / {conv(vb)}"


def cpu_pair(f, p):
    a, b, d = f.get(f"{p}_server_cpu_pct"), f.get(f"{p}_machine_busy_pct"), f.get(f"{p}_db_cpu_pct")
    if a is None:
        return None
    s = f"{a:.0f}"
    if d is not None:
        s += f" (+db {d:.0f})"
    return s + (f" / {b:.0f}" if b is not None else "")


def errs(f, p):
    n = f.get(f"{p}_non_2xx")
    if n is None:
        return None
    sock = sum(f.get(f"{p}_err_{k}", 0) or 0 for k in ("connect", "read", "write", "timeout"))
    return f"{n:,} / {sock:,}"


def non201(f, p):
    n = f.get(f"{p}_non_201")
    if n is None:
        return None
    st = f.get(f"{p}_statuses") or {}
    other = {k: v for k, v in st.items() if k != "201"}
    s = f"{n:,}"
    if other:
        s += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(other.items())) + ")"
    sock = sum(f.get(f"{p}_err_{k}", 0) or 0 for k in ("connect", "read", "write", "timeout"))
    if sock:
        s += f", socket errors {sock}"
    return s


def report(path, out):
    res, order = load_results(path)
    meta = res.pop("meta", {})
    order = [b for b in order if b != "meta"]
    lines = []
    lines.append("roster benchmark — figures, not pass/fail (targets shown for reference)")
    for k in ("date", "host", "quiet", "roster", "binary", "wrk", "postgres", "notes"):
        if k in meta:
            lines.append(f"  {k + ':':9} {meta[k]}")
    lines.append("")
    w0 = max(len(r[0]) for r in ROWS) + 2
    cols = order or ["sqlite"]
    cw = {b: max(16, len(b) + 2) for b in cols}
    vals = {}
    for i, (label, key, nd, target) in enumerate(ROWS):
        for b in cols:
            f = res.get(b, {})
            v = key(f) if callable(key) else f.get(key)
            s = fmt_num(v, nd if nd is not None else 1) if not isinstance(v, str) else v
            vals[(i, b)] = s
            cw[b] = max(cw[b], len(s) + 2)
    header = "figure".ljust(w0) + "".join(b.ljust(cw[b]) for b in cols) + "target"
    lines.append(header)
    lines.append("-" * len(header))
    for i, (label, key, nd, target) in enumerate(ROWS):
        lines.append(label.ljust(w0) + "".join(vals[(i, b)].ljust(cw[b]) for b in cols) + target)
    lines.append("")
    for b in cols:
        notes = res.get(b, {}).get("notes")
        if notes:
            for n in notes if isinstance(notes, list) else [notes]:
                lines.append(f"note ({b}): {n}")
    text = "\n".join(lines).rstrip() + "\n"
    sys.stdout.write(text)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "freeport":
        print(freeport())
    elif cmd == "wait-ready":
        port = int(rest[0])
        pid = None
        timeout = 20.0
        i = 1
        while i < len(rest):
            if rest[i] == "--pid":
                pid = int(rest[i + 1]); i += 2
            elif rest[i] == "--timeout":
                timeout = float(rest[i + 1]); i += 2
            else:
                raise SystemExit(f"wait-ready: unknown argument {rest[i]}")
        ms = wait_ready(port, pid, timeout)
        if ms is None:
            return 1
        print(f"{ms:.1f}")
    elif cmd == "token":
        try:
            with open(rest[0], errors="replace") as f:
                m = TOKEN_RE.search(f.read())
        except OSError:
            m = None
        if not m:
            return 1
        print(m.group(0))
    elif cmd == "proc":
        info = proc_info(int(rest[0]))
        if len(rest) > 1 and rest[1]:
            info["db_cpu_s"] = tree_cpu(int(rest[1]))
        print(json.dumps(info))
    elif cmd == "record":
        v = rest[3]
        try:
            v = json.loads(v)
        except ValueError:
            pass
        record(rest[0], rest[1], rest[2], v)
    elif cmd == "record-wrk":
        results, backend, prefix, wrk_out = rest[:4]
        r = parse_wrk(wrk_out)
        if r is None:
            record(results, backend, "notes", f"{prefix}: wrk printed no BENCH_RESULT line (see {wrk_out})")
            return 1
        opts = dict(zip(rest[4::2], rest[5::2]))
        for k, v in r.items():
            if k in ("label", "kind"):
                continue
            record(results, backend, f"{prefix}_{k}", v)
        if "--cpu-before" in opts and "--cpu-after" in opts:
            a = json.loads(opts["--cpu-before"]) if opts["--cpu-before"] else None
            b = json.loads(opts["--cpu-after"]) if opts["--cpu-after"] else None
            if a and b and r.get("duration_s"):
                record(results, backend, f"{prefix}_server_cpu_pct",
                       round(100.0 * (b["cpu_s"] - a["cpu_s"]) / r["duration_s"], 1))
                if "db_cpu_s" in a and "db_cpu_s" in b:
                    record(results, backend, f"{prefix}_db_cpu_pct",
                           round(100.0 * (b["db_cpu_s"] - a["db_cpu_s"]) / r["duration_s"], 1))
                dt = b.get("sys_total", 0) - a.get("sys_total", 0)
                if dt > 0:
                    busy = dt - (b["sys_idle"] - a["sys_idle"])
                    record(results, backend, f"{prefix}_machine_busy_pct",
                           round(100.0 * busy / dt * os.cpu_count(), 1))
    elif cmd == "total":
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", int(rest[0]), timeout=30)
        c.request("GET", "/api/v1/users?limit=1", headers={"Authorization": "Bearer " + rest[1]})
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            print(f"status {r.status}: {body[:200]!r}", file=sys.stderr)
            return 1
        print(json.loads(body).get("total"))
    elif cmd == "schema-hash":
        import hashlib
        import sqlite3
        db = sqlite3.connect(f"file:{rest[0]}?mode=ro", uri=True)
        h = hashlib.sha256()
        for typ, name, sql in db.execute(
                "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"):
            h.update(f"{typ}\0{name}\0{sql}\0".encode())
        h.update(str(db.execute("PRAGMA user_version").fetchone()[0]).encode())
        # The page size a new database gets is part of what is measured.
        h.update(f"page_size={db.execute('PRAGMA page_size').fetchone()[0]}".encode())
        db.close()
        print(h.hexdigest())
    elif cmd == "report":
        report(rest[0], rest[1])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
