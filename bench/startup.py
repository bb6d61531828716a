#!/usr/bin/python3
"""Measure `roster serve` start-to-ready (Python standard library only).

Each run: pick a free port, take a monotonic timestamp, exec
`roster serve --listen 127.0.0.1:PORT --db URL --log-level warn`, then poll
GET /healthz every --poll-ms (a fresh TCP connection per try; refused
connections cost microseconds) until it answers 200. "ready" is that moment.
A reader thread also timestamps the `roster listening on` stdout line, if the
server writes (and flushes) it to a pipe. Then SIGTERM and time to exit.

Prints JSON: per-run figures and their medians. Bounded: each start gets
--timeout seconds, each stop 10 s before SIGKILL.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tools  # noqa: E402


def one_start(args, log):
    port = tools.freeport()
    cmd = [args.bin, "serve", "--listen", f"127.0.0.1:{port}", "--db", args.db, "--log-level", "warn"]
    line_at = {}
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)

    def reader():
        for raw in p.stdout:
            if b"roster listening on" in raw and "listening" not in line_at:
                line_at["listening"] = time.monotonic()
            log.write(b"[stdout] " + raw)

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    ready = None
    poll = args.poll_ms / 1000.0
    while time.monotonic() - t0 < args.timeout:
        if tools.healthz_once(port, timeout=1.0):
            ready = time.monotonic()
            break
        if p.poll() is not None:
            break
        time.sleep(poll)
    rss_kb = None
    if ready is not None:
        try:
            rss_kb = tools.proc_info(p.pid).get("rss_kb")
        except OSError:
            pass
    # Stop and time the exit.
    ts = time.monotonic()
    exit_code = None
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            exit_code = p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            exit_code = "killed after 10 s"
    else:
        exit_code = p.returncode
    stop_ms = (time.monotonic() - ts) * 1000
    th.join(timeout=2)
    return {
        "port": port,
        "ready_ms": None if ready is None else round((ready - t0) * 1000, 2),
        "listening_line_ms": round((line_at["listening"] - t0) * 1000, 2) if "listening" in line_at else None,
        "rss_at_ready_kb": rss_kb,
        "stop_ms": round(stop_ms, 1),
        "exit_code": exit_code,
    }


def med(xs):
    xs = [x for x in xs if isinstance(x, (int, float))]
    return round(statistics.median(xs), 2) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--poll-ms", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--log", default=os.devnull)
    args = ap.parse_args()
    runs = []
    with open(args.log, "ab") as log:
        for _ in range(args.runs):
            runs.append(one_start(args, log))
            log.flush()
    out = {
        "runs": runs,
        "ready_ms_median": med([r["ready_ms"] for r in runs]),
        "listening_line_ms_median": med([r["listening_line_ms"] for r in runs]),
        "stop_ms_median": med([r["stop_ms"] for r in runs]),
        "failed_starts": sum(1 for r in runs if r["ready_ms"] is None),
        "nonzero_exits": [r["exit_code"] for r in runs if r["exit_code"] != 0],
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0 if out["failed_starts"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
