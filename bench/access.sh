#!/usr/bin/env bash
# bench/access.sh — the access check through the API (issue 4): figures, never pass/fail.
#
#   bash bench/access.sh [path/to/roster]     (`make bench` runs it with build/roster)
#
# Starts `roster serve` on SQLite in a temporary directory, registers two module
# resources, creates a custom role, groups that carry roles and BENCH_ACCESS_USERS
# users with primary, secondary and group roles (one in four is of type guest,
# one in ten inactive), then measures with wrk:
#   GET /api/v1/access/check?user_id=U&resource=R&level=L
# over every user × resource × level (answers cached in the process after the
# first ask), with the admin key. It also asks each (user, resource) once
# before the load and checks the answer against what the setup granted, so a
# cache that answers fast and wrong shows up as "answers checked: N wrong".
# Then it runs the in-process figure (build/bench/bench_access) beside it.
#
# Knobs (environment):
#   BENCH_ACCESS_USERS=200   users
#   BENCH_DURATION=10        seconds of the measured wrk run (after 2 s warm-up)
#   BENCH_ACCESS_T=2 BENCH_ACCESS_C=64   wrk threads/connections
#
# It prints a summary and writes bench/results/access_latest.txt (raw:
# access_latest.json); wrk output and the server's stderr stay in
# bench/.run/access-logs/. All traffic goes to 127.0.0.1; every process started
# here is stopped on exit, by its PID.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PY=/usr/bin/python3
TOOLS="$HERE/tools.py"

BIN_ARG=${1:-$ROOT/build/roster}
INPROC=${BENCH_ACCESS_INPROC:-$(dirname "$BIN_ARG")/bench/bench_access}
NUSERS=${BENCH_ACCESS_USERS:-200}
DURATION=${BENCH_DURATION:-10}
T=${BENCH_ACCESS_T:-2}
C=${BENCH_ACCESS_C:-64}
WARMUP=2

LOGS="$HERE/.run/access-logs"
RESULTS_DIR="$HERE/results"
OUT_TXT="$RESULTS_DIR/access_latest.txt"
OUT_JSON="$RESULTS_DIR/access_latest.json"

T_START=$(date +%s)
say() { printf '[access %4ds] %s\n' "$(($(date +%s) - T_START))" "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

SERVER_PID=""
TMP=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 500); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.02; done
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    [ -n "$TMP" ] && [ -d "$TMP" ] && rm -rf "$TMP"
    exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

[ -x "$BIN_ARG" ] || die "no roster binary at $BIN_ARG (build it: ninja -C build)"
command -v wrk >/dev/null || die "wrk not installed (Debian package wrk; scripts/deps bench)"
mkdir -p "$LOGS" "$RESULTS_DIR"
rm -f "$LOGS"/*
TMP=$(mktemp -d /tmp/roster-bench-access.XXXXXX) || die "mktemp failed"
cp "$BIN_ARG" "$TMP/roster" || die "cannot copy the binary"
BIN="$TMP/roster"
PATHS="$TMP/paths"

PORT=$("$PY" "$TOOLS" freeport)
"$BIN" serve --listen "127.0.0.1:$PORT" --db "sqlite:$TMP/roster.db" --log-level warn \
    >"$LOGS/serve.out" 2>"$LOGS/serve.err" </dev/null &
SERVER_PID=$!
"$PY" "$TOOLS" wait-ready "$PORT" --pid "$SERVER_PID" --timeout 30 >/dev/null ||
    { tail -n 20 "$LOGS/serve.err" >&2; die "roster serve did not become ready"; }
TOKEN=""
for _ in $(seq 1 30); do
    TOKEN=$("$PY" "$TOOLS" token "$LOGS/serve.out") && break
    sleep 0.1
done
[ -n "$TOKEN" ] || die "no admin API key on roster serve's stdout (see $LOGS/serve.out)"

say "setup: resources, a role, groups and $NUSERS users (≤ 120 s)"
"$PY" - "$PORT" "$TOKEN" "$NUSERS" "$PATHS" >"$LOGS/setup.json" <<'PYEOF'
# Builds the access model and the path list, then asks every (user, resource)
# once and compares the answer with what the setup granted (the expected
# level is computed here from the same rules: highest level wins, guest caps
# at read, an inactive user holds nothing).
import http.client, json, secrets, sys, time
port, token, n, paths_file = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
H = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json"}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
def call(method, path, body=None, ok=(200, 201, 204)):
    c.request(method, path, body=None if body is None else json.dumps(body), headers=H)
    r = c.getresponse()
    data = r.read()
    if r.status not in ok:
        print(json.dumps({"error": f"{method} {path} -> {r.status} {data[:300].decode(errors='replace')}"}))
        sys.exit(1)
    return json.loads(data) if data else None

LV = {"none": 0, "read": 1, "write": 2, "admin": 3}
run = secrets.token_hex(3)
call("PATCH", "/api/v1/settings/notifications", {"enabled": {"welcome": False}})
for key, label in (("invoices", "Invoices"), ("orders", "Orders")):
    call("POST", "/api/v1/resources", {"key": key, "label": label, "module": "bench"}, ok=(201, 409))
roles = {r["key"]: r["permissions"] for r in call("GET", "/api/v1/roles?limit=100")["items"]}
clerk = f"clerk_{run}"
roles[clerk] = {"invoices": "write", "orders": "read"}
call("POST", "/api/v1/roles", {"key": clerk, "name": f"Clerk {run}", "permissions": roles[clerk]})
groups = []
for i, gr in enumerate(([clerk], ["auditor"], [])):
    g = call("POST", "/api/v1/groups", {"name": f"bench-{run}-{i}", "roles": gr})
    groups.append((g["id"], gr))
prim = ["standard_user", "user_manager", "auditor", "guest", clerk]
resources = ["users", "groups", "roles", "settings", "audit", "invoices", "orders"]
want = {}
ids = []
t0 = time.monotonic()
for i in range(n):
    p = prim[i % len(prim)]
    utype = "guest" if i % 4 == 3 else "standard"
    body = {"username": f"acc{run}.{i}", "email": f"acc{run}.{i}@bench.example.com",
            "first_name": "Åsa", "last_name": f"Access{i}", "role": p, "type": utype}
    u = call("POST", "/api/v1/users", body)
    uid = u["id"]
    sec = [prim[(i + 1) % len(prim)]] if i % 3 == 0 else []
    if sec:
        call("PUT", f"/api/v1/users/{uid}/roles", {"primary": p, "secondary": sec})
    g = groups[i % len(groups)]
    call("POST", f"/api/v1/groups/{g[0]}/members", {"user_ids": [uid]})
    held = [p] + sec + g[1]
    active = True
    if i % 10 == 9:
        call("POST", f"/api/v1/users/{uid}/deactivate", {"reason": "left_company"}, ok=(200,))
        active = False
    for res in resources:
        lv = max((LV[roles[r].get(res, "none")] for r in held), default=0)
        if utype == "guest":
            lv = min(lv, 1)
        if not active:
            lv = 0
        want[(uid, res)] = lv
    ids.append(uid)
setup_s = time.monotonic() - t0
with open(paths_file, "w") as f:
    for uid in ids:
        for res in resources:
            for lv in ("read", "write"):
                f.write(f"/api/v1/access/check?user_id={uid}&resource={res}&level={lv}\n")
wrong, first_wrong = 0, None
for (uid, res), lv in want.items():
    a = call("GET", f"/api/v1/access/check?user_id={uid}&resource={res}&level=read")
    if LV.get(a.get("level"), -1) != lv or a.get("allowed") != (lv >= 1):
        wrong += 1
        first_wrong = first_wrong or f"user {uid} {res}: want {lv}, got {a}"
print(json.dumps({"users": len(ids), "resources": resources, "paths": len(ids) * len(resources) * 2,
                  "setup_s": round(setup_s, 2), "checked": len(want), "wrong": wrong,
                  "first_wrong": first_wrong}))
PYEOF
[ $? -eq 0 ] || die "setup failed: $(cat "$LOGS/setup.json")"
say "setup: $(cat "$LOGS/setup.json")"

export ROSTER_TOKEN=$TOKEN ROSTER_PATHS_FILE=$PATHS
run_wrk() { # OUT LABEL SECONDS
    BENCH_LABEL=$2 timeout -k 5 $(($3 + 30)) wrk -t"$T" -c"$C" -d"$3s" --timeout 10s --latency \
        -s "$HERE/paths_1m.lua" "http://127.0.0.1:$PORT" >"$1" 2>&1
}
say "GET /api/v1/access/check: warm-up ${WARMUP}s, then wrk t$T c$C ${DURATION}s"
run_wrk "$LOGS/warmup.txt" warmup "$WARMUP"
"$PY" "$TOOLS" proc "$SERVER_PID" >"$LOGS/cpu-0.json" 2>/dev/null
run_wrk "$LOGS/check.txt" access-check "$DURATION"
"$PY" "$TOOLS" proc "$SERVER_PID" >"$LOGS/cpu-1.json" 2>/dev/null
kill -0 "$SERVER_PID" 2>/dev/null || say "the server is gone (crashed?); see $LOGS/serve.err"
"$PY" "$TOOLS" proc "$SERVER_PID" >"$LOGS/rss.json" 2>/dev/null

INPROC_LINE="n/a (no $INPROC)"
if [ -x "$INPROC" ]; then
    say "in-process: $INPROC"
    INPROC_LINE=$(timeout 300 "$INPROC" 2>&1 | tail -1)
fi

"$PY" - "$LOGS" "$OUT_TXT" "$OUT_JSON" "$T" "$C" "$DURATION" "$INPROC_LINE" <<'PYEOF'
import json, os, sys, time
logs, out_txt, out_json, t, c, dur, inproc = sys.argv[1:8]
def last_json(name):
    try:
        return json.loads(open(os.path.join(logs, name)).read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None
def wrk(name):
    try:
        for line in open(os.path.join(logs, name), errors="replace"):
            if line.startswith("BENCH_RESULT "):
                return json.loads(line[len("BENCH_RESULT "):])
    except (OSError, ValueError):
        pass
    return None
setup, r = last_json("setup.json") or {}, wrk("check.txt")
p0, p1, rss = last_json("cpu-0.json"), last_json("cpu-1.json"), last_json("rss.json")
srv = 100.0 * (p1["cpu_s"] - p0["cpu_s"]) / r["duration_s"] if r and p0 and p1 else None
def ms(k):
    return "n/a" if not r else f"{r[k] / 1000:.2f}"
L = ["roster access-check benchmark (issue 4): figures, never pass/fail",
     f"  {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; {os.cpu_count()} cores; wrk on the same cores as the server",
     f"  SQLite; {setup.get('users')} users x {len(setup.get('resources', []))} resources x 2 levels = "
     f"{setup.get('paths')} distinct checks (primary, secondary and group roles; guests; inactive users)",
     f"  answers checked against the setup's grants before the load: {setup.get('checked')}, "
     f"{setup.get('wrong')} wrong" + (f" (first: {setup['first_wrong']})" if setup.get("first_wrong") else ""),
     ""]
rows = [
    (f"GET /api/v1/access/check, cached (wrk t{t} c{c}, {dur} s): answers/s",
     "n/a" if not r else f"{r['rps']:,.0f}", ">= 50,000"),
    ("  p50 / p99 / p99.9 (ms)", f"{ms('p50_us')} / {ms('p99_us')} / {ms('p999_us')}", ""),
    ("  statuses", "n/a" if not r else ", ".join(f"{k}: {v}" for k, v in sorted(r.get("statuses", {}).items())), "200 only"),
    ("  socket errors", "n/a" if not r else str(r["err_connect"] + r["err_read"] + r["err_write"] + r["err_timeout"]), "0"),
    ("  roster CPU, % of a core", "n/a" if srv is None else f"{srv:.0f}", ""),
    ("  roster RSS after the run (MB)", "n/a" if not rss else f"{rss.get('rss_kb', 0) / 1024:.1f}", ""),
    ("in-process (bench_access)", inproc, ">= 1,000,000/s"),
]
w = max(len(a) for a, _, _ in rows)
v = max(len(b) for _, b, _ in rows if len(b) < 60)
L.append(f"{'figure'.ljust(w)}  {'value'.ljust(v)}  target")
for a, b, tg in rows:
    L.append(f"{a.ljust(w)}  {b.ljust(v)}  {tg}".rstrip())
text = "\n".join(L) + "\n"
print(text, end="")
open(out_txt, "w").write(text)
json.dump({"setup": setup, "wrk": r, "server_cpu_pct": srv, "rss": rss, "inproc": inproc},
          open(out_json, "w"), indent=1)
PYEOF
say "done in $(($(date +%s) - T_START)) s"
