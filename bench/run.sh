#!/usr/bin/env bash
# bench/run.sh — roster's benchmark suite: figures, never pass/fail.
#
#   bash bench/run.sh [path/to/roster]        (`make bench` runs it with build/roster)
#
# On SQLite, then on a private PostgreSQL cluster, with 100,000 users created
# through POST /api/v1/users, it measures: idle RSS, start to ready (median of
# 5), GET /api/v1/users/{id} throughput and latency, the same GETs while
# creates commit, and single-client creates/s. It prints a summary table and
# writes it to bench/results/latest.txt. See bench/README.md for what each
# figure means.
#
# Knobs (environment):
#   BENCH_USERS=100000        users to generate
#   BENCH_DURATION=10         seconds per measured wrk run
#   BENCH_BACKENDS="sqlite postgres"
#   BENCH_LOAD_THREADS=4      client threads of the data loader
#   BENCH_NO_CACHE=1          regenerate the SQLite data set even if cached
#   BENCH_PG_BIN=/usr/lib/postgresql/15/bin
#
# All traffic goes to 127.0.0.1; every load loop is bounded in time; every
# process started here is stopped on exit (trap), by its PID.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PY=/usr/bin/python3
TOOLS="$HERE/tools.py"

BIN_ARG=${1:-$ROOT/build/roster}
USERS=${BENCH_USERS:-100000}
DURATION=${BENCH_DURATION:-10}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
LOAD_THREADS=${BENCH_LOAD_THREADS:-4}
LOAD_DEADLINE=${BENCH_LOAD_DEADLINE:-200}
WARMUP=2
GET_T=2 GET_C=64
SEED=20261124

RUN="$HERE/.run"
WORK="$RUN/work"
CACHE="$RUN/cache"
LOGS="$RUN/logs"
RESULTS_DIR="$HERE/results"
RESULTS="$WORK/results.jsonl"

T_START=$(date +%s)
say() { printf '[bench %4ds] %s\n' "$(($(date +%s) - T_START))" "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
SERVER_PID=""
SERVER_PORT=""
BG_PIDS=()
PG_DIR=""
PG_DATA=""
PG_BIN=""

stop_pid() { # PID [seconds]: SIGTERM, wait, then SIGKILL. Prints ms to exit.
    local pid=$1 limit=${2:-10} t0 n=0
    t0=$(date +%s%N)
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; echo 0; return 0; }
    while kill -0 "$pid" 2>/dev/null; do
        # A zombie still answers kill -0; reap it if it is our child.
        if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then break; fi
        n=$((n + 1))
        if [ $n -gt $((limit * 100)) ]; then
            say "pid $pid did not exit within ${limit}s of SIGTERM; SIGKILL"
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.01
    done
    wait "$pid" 2>/dev/null
    echo $((($(date +%s%N) - t0) / 1000000))
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${BG_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && stop_pid "$p" 5 >/dev/null
    done
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        stop_pid "$SERVER_PID" 10 >/dev/null
    fi
    pg_stop
    exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- checks
[ -x "$BIN_ARG" ] || die "no roster binary at $BIN_ARG (build it: ninja -C build)"
BIN=$(realpath "$BIN_ARG")
[ -x "$PY" ] || die "$PY not found"
if ! command -v wrk >/dev/null; then
    if [ -x "$ROOT/scripts/deps" ]; then
        bash "$ROOT/scripts/deps" bench || die "wrk missing and scripts/deps bench failed"
    elif [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null ||
            die "apt-get install wrk failed"
    fi
    command -v wrk >/dev/null || die "wrk not installed (Debian package wrk)"
fi

mkdir -p "$WORK" "$CACHE" "$LOGS" "$RESULTS_DIR"
rm -f "$RESULTS" "$LOGS"/*
# Measure a private copy, so a rebuild of build/roster during the run cannot
# mix two binaries into one table.
cp "$BIN" "$WORK/roster.under-test" || die "cannot copy $BIN"
BIN="$WORK/roster.under-test"
record() { "$PY" "$TOOLS" record "$RESULTS" "$@"; }
note() { record "$1" notes "$2"; say "note ($1): $2"; }

record meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
record meta host "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
record meta roster "$(timeout 10 "$BIN" version 2>&1 | head -1)"
busy_before=$("$PY" - <<'PYEOF'
import os, time
def snap():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]
t0, i0 = snap(); time.sleep(1); t1, i1 = snap()
print(round(100.0 * ((t1 - t0) - (i1 - i0)) / max(1, t1 - t0) * os.cpu_count()))
PYEOF
)
record meta quiet "machine busy in the second before the run: ${busy_before}% of a core (anything else running skews every figure)"
[ "${busy_before:-0}" -gt 30 ] && say "warning: the machine is already ${busy_before}% busy; figures will be low and noisy"
record meta binary "$BIN_ARG sha256:$(sha256sum "$BIN" | cut -c1-12)"
record meta wrk "$(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'); GET t$GET_T c$GET_C, create t1 c1, ${DURATION}s each after a ${WARMUP}s warm-up; wrk runs on the same cores as the server"

# ---------------------------------------------------------------- server
start_server() { # NAME DBURL -> SERVER_PID, SERVER_PORT
    local name=$1 url=$2
    SERVER_PORT=$("$PY" "$TOOLS" freeport)
    "$BIN" serve --listen "127.0.0.1:$SERVER_PORT" --db "$url" --log-level warn \
        >"$LOGS/$name.out" 2>"$LOGS/$name.err" </dev/null &
    SERVER_PID=$!
    if ! "$PY" "$TOOLS" wait-ready "$SERVER_PORT" --pid "$SERVER_PID" --timeout 30 >/dev/null; then
        say "roster serve ($name) did not become ready; last stderr lines:"
        tail -n 20 "$LOGS/$name.err" >&2
        stop_server >/dev/null
        return 1
    fi
    return 0
}

stop_server() { # prints ms from SIGTERM to exit
    [ -n "$SERVER_PID" ] || { echo 0; return 0; }
    stop_pid "$SERVER_PID" 10
    SERVER_PID=""
}

server_token() { # NAME DBURL: the admin key printed on first start, else a new one from the CLI
    local name=$1 url=$2 tok i
    for i in $(seq 1 30); do
        tok=$("$PY" "$TOOLS" token "$LOGS/$name.out") && { echo "$tok"; return 0; }
        sleep 0.1
    done
    say "no 'admin API key:' line in $name stdout (not flushed?); creating a key with the CLI"
    cli_token "$url" "$name"
}

cli_token() { # DBURL NAME
    local url=$1 name=$2
    timeout 30 "$BIN" apikey create --user admin --name "bench-$(date +%s)" --db "$url" \
        >"$LOGS/$name.apikey.out" 2>&1 || { tail -5 "$LOGS/$name.apikey.out" >&2; return 1; }
    "$PY" "$TOOLS" token "$LOGS/$name.apikey.out"
}

DB_ROOT_PID="" # PostgreSQL's postmaster while benchmarking PostgreSQL: its CPU is reported too
proc_json() { "$PY" "$TOOLS" proc "$1" "$DB_ROOT_PID" 2>/dev/null || echo ""; }
json_field() { "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(d.get(sys.argv[2]) if d.get(sys.argv[2]) is not None else "")' "$1" "$2" 2>/dev/null; }

record_mem() { # BACKEND idle|after PROC_JSON
    local b=$1 when=$2 info=$3 k v
    for k in rss hwm anon file; do
        v=$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); k={"rss":"rss_kb","hwm":"hwm_kb","anon":"rssanon_kb","file":"rssfile_kb"}[sys.argv[2]]; print(round(d[k]/1024,1) if k in d else "")' "$info" "$k")
        [ -z "$v" ] && continue
        case "$when.$k" in
        idle.rss) record "$b" idle_rss_mb "$v" ;;
        idle.hwm) ;;
        after.rss) record "$b" rss_after_mb "$v" ;;
        after.hwm) record "$b" hwm_after_mb "$v" ;;
        *) record "$b" "${when}_${k}_mb" "$v" ;;
        esac
    done
}

run_wrk() { # OUTFILE LABEL SCRIPT THREADS CONNS SECONDS
    local out=$1 label=$2 script=$3 t=$4 c=$5 d=$6
    BENCH_LABEL=$label timeout -k 5 $((d + 30)) \
        wrk -t"$t" -c"$c" -d"${d}s" --timeout 10s --latency -s "$HERE/$script" "http://127.0.0.1:$SERVER_PORT" \
        >"$out" 2>&1
}

# ---------------------------------------------------------------- one backend
measure() { # BACKEND DBURL IDS_FILE TOKEN
    local b=$1 url=$2 ids=$3 token=$4 st cpu0 cpu1 p ms info pg pc
    export ROSTER_TOKEN=$token ROSTER_IDS_FILE=$ids

    say "$b: start to ready, 5 starts"
    st=$("$PY" "$HERE/startup.py" --bin "$BIN" --db "$url" --runs 5 --log "$LOGS/$b-startup.log")
    if [ -n "$st" ]; then
        record "$b" start_ready_ms "$(json_field "$st" ready_ms_median)"
        record "$b" start_ready_all "$("$PY" -c 'import json,sys; print(" ".join(str(r["ready_ms"]) for r in json.loads(sys.argv[1])["runs"]))' "$st")"
        record "$b" listening_line_ms "$(json_field "$st" listening_line_ms_median)"
        record "$b" shutdown_ms "$(json_field "$st" stop_ms_median)"
        echo "$st" >"$LOGS/$b-startup.json"
        case "$st" in *'"nonzero_exits": []'*) ;; *) note "$b" "roster serve exited non-zero after SIGTERM in start runs: $(json_field "$st" nonzero_exits)" ;; esac
        [ -z "$(json_field "$st" listening_line_ms_median)" ] &&
            note "$b" "'roster listening on' never reached a stdout pipe before /healthz answered or exit (stdout not flushed?)"
    fi

    say "$b: idle RSS"
    start_server "$b-serve" "$url" || { note "$b" "server did not start; no load figures"; return 1; }
    sleep 1
    info=$(proc_json "$SERVER_PID")
    record_mem "$b" idle "$info"
    record "$b" threads "$(json_field "$info" threads)"

    say "$b: warm-up ${WARMUP}s, then GET ${DURATION}s (t$GET_T c$GET_C)"
    run_wrk "$LOGS/$b-warmup.txt" warmup get_user.lua "$GET_T" "$GET_C" "$WARMUP"
    cpu0=$(proc_json "$SERVER_PID")
    run_wrk "$LOGS/$b-get.txt" get get_user.lua "$GET_T" "$GET_C" "$DURATION"
    cpu1=$(proc_json "$SERVER_PID")
    "$PY" "$TOOLS" record-wrk "$RESULTS" "$b" get "$LOGS/$b-get.txt" --cpu-before "$cpu0" --cpu-after "$cpu1"

    say "$b: GET ${DURATION}s while one client creates"
    cpu0=$(proc_json "$SERVER_PID")
    run_wrk "$LOGS/$b-mixed-create.txt" mixed-create create_user.lua 1 1 "$DURATION" &
    pc=$!
    BG_PIDS+=("$pc")
    run_wrk "$LOGS/$b-mixed-get.txt" mixed-get get_user.lua "$GET_T" "$GET_C" "$DURATION" &
    pg=$!
    BG_PIDS+=("$pg")
    wait "$pg" "$pc" 2>/dev/null
    BG_PIDS=()
    cpu1=$(proc_json "$SERVER_PID")
    "$PY" "$TOOLS" record-wrk "$RESULTS" "$b" mixed_get "$LOGS/$b-mixed-get.txt" --cpu-before "$cpu0" --cpu-after "$cpu1"
    "$PY" "$TOOLS" record-wrk "$RESULTS" "$b" mixed_create "$LOGS/$b-mixed-create.txt"

    say "$b: create only ${DURATION}s (t1 c1)"
    cpu0=$(proc_json "$SERVER_PID")
    run_wrk "$LOGS/$b-create.txt" create create_user.lua 1 1 "$DURATION"
    cpu1=$(proc_json "$SERVER_PID")
    "$PY" "$TOOLS" record-wrk "$RESULTS" "$b" create "$LOGS/$b-create.txt" --cpu-before "$cpu0" --cpu-after "$cpu1"

    say "$b: creates from 16 clients, ${DURATION}s (t2 c16)"
    cpu0=$(proc_json "$SERVER_PID")
    run_wrk "$LOGS/$b-create16.txt" create16 create_user.lua 2 16 "$DURATION"
    cpu1=$(proc_json "$SERVER_PID")
    "$PY" "$TOOLS" record-wrk "$RESULTS" "$b" create16 "$LOGS/$b-create16.txt" --cpu-before "$cpu0" --cpu-after "$cpu1"

    info=$(proc_json "$SERVER_PID")
    if [ -n "$info" ]; then
        record_mem "$b" after "$info"
    else
        note "$b" "server process gone after the load runs (crashed?); see $LOGS/$b-serve.err"
    fi
    ms=$(stop_server)
    say "$b: server stopped in ${ms} ms"
    server_log_note "$b" "$LOGS/$b-serve.err" "during the measured runs"
    unset ROSTER_TOKEN ROSTER_IDS_FILE
    return 0
}

server_log_note() { # BACKEND STDERR_FILE WHEN: summarise what the server logged at --log-level warn
    local b=$1 f=$2 when=$3 n summary
    [ -s "$f" ] || return 0
    n=$(grep -c . "$f")
    summary=$("$PY" - "$f" <<'PYEOF'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1], errors="replace"):
    try:
        d = json.loads(line)
        c[(d.get("level"), d.get("msg"), d.get("detail", "")[:90])] += 1
    except ValueError:
        c[("raw", line.strip()[:90], "")] += 1
print("; ".join(f"{n}x {l} '{m}'" + (f" ({d})" if d else "") for (l, m, d), n in c.most_common(3)))
PYEOF
)
    note "$b" "server logged $n stderr lines $when: $summary"
}

load_users() { # BACKEND PORT TOKEN IDS_OUT -> records load figures; echoes summary JSON
    local b=$1 port=$2 token=$3 ids=$4 sum
    say "$b: loading $USERS users through POST /api/v1/users ($LOAD_THREADS client threads, ≤ ${LOAD_DEADLINE}s)"
    sum=$("$PY" "$HERE/gen_users.py" --port "$port" --token "$token" --count "$USERS" \
        --threads "$LOAD_THREADS" --deadline "$LOAD_DEADLINE" --seed "$SEED" --ids-out "$ids" \
        2>"$LOGS/$b-load.err")
    echo "$sum" >"$LOGS/$b-load.json"
    server_log_note "$b" "$LOGS/$b-load.err" "during the data load"
    say "$b: load: $(json_field "$sum" created) created in $(json_field "$sum" elapsed_s)s = $(json_field "$sum" created_per_s)/s, statuses $(json_field "$sum" statuses)"
    echo "$sum"
}

dataset_note() { # BACKEND SUMMARY_JSON HOW
    local b=$1 sum=$2 how=$3
    record "$b" dataset "$how; load $(json_field "$sum" created_per_s)/s, $(json_field "$sum" threads) clients"
    local fb st
    fb=$(json_field "$sum" unicode_email_fallbacks)
    [ -n "$fb" ] && [ "$fb" != 0 ] && note "$b" "$fb generated users with a non-ASCII email local part were refused (422) and re-sent with an ASCII one"
    st=$(json_field "$sum" statuses)
    case "$st" in "{'201': $USERS}" | "") ;; *) note "$b" "data load statuses: $st; first failures: $(json_field "$sum" first_failures | head -c 400)" ;; esac
    [ "$(json_field "$sum" hit_deadline)" = True ] && note "$b" "data load hit its ${LOAD_DEADLINE}s deadline"
}

# ---------------------------------------------------------------- SQLite
bench_sqlite() {
    local db="$WORK/sqlite.db" url key="" probe="$WORK/schema-probe.db" sum token total
    url="sqlite:$db"
    rm -f "$probe" "$probe-wal" "$probe-shm"
    if timeout 30 "$BIN" migrate --db "sqlite:$probe" >"$LOGS/migrate-probe.out" 2>&1 && [ -f "$probe" ]; then
        key=$({ "$PY" "$TOOLS" schema-hash "$probe"; sha256sum "$HERE/gen_users.py"; echo "$USERS $SEED"; } | sha256sum | cut -c1-16)
    else
        say "roster migrate on an empty SQLite file failed; not caching the data set"
    fi
    rm -f "$probe" "$probe-wal" "$probe-shm"
    local cdb="$CACHE/users-$USERS-$key.db"
    rm -f "$db" "$db-wal" "$db-shm"

    if [ -n "$key" ] && [ -z "${BENCH_NO_CACHE:-}" ] && [ -f "$cdb" ] && [ -f "$cdb.ids" ] && [ -f "$cdb.load.json" ]; then
        say "sqlite: using cached data set $cdb"
        cp "$cdb" "$db"
        for s in wal shm; do [ -f "$cdb-$s" ] && cp "$cdb-$s" "$db-$s"; done
        cp "$cdb.ids" "$WORK/sqlite.ids"
        token=$(cli_token "$url" sqlite-apikey) || { note sqlite "roster apikey create failed"; return 1; }
        dataset_note sqlite "$(cat "$cdb.load.json")" "cached copy"
    else
        say "sqlite: generating the data set"
        start_server sqlite-load "$url" || { note sqlite "server did not start on an empty DB"; return 1; }
        token=$(server_token sqlite-load "$url") || { note sqlite "no API key"; stop_server >/dev/null; return 1; }
        sum=$(load_users sqlite "$SERVER_PORT" "$token" "$WORK/sqlite.ids")
        total=$("$PY" "$TOOLS" total "$SERVER_PORT" "$token" 2>/dev/null)
        [ -n "$total" ] && say "sqlite: API reports total=$total users"
        stop_server >/dev/null
        dataset_note sqlite "$sum" "generated"
        if [ -n "$key" ] && [ -s "$WORK/sqlite.ids" ] && [ "$(wc -l <"$WORK/sqlite.ids")" -eq "$USERS" ]; then
            rm -f "$CACHE/users-$USERS-"*.db* 2>/dev/null
            cp "$db" "$cdb"
            for s in wal shm; do [ -f "$db-$s" ] && cp "$db-$s" "$cdb-$s"; done
            cp "$WORK/sqlite.ids" "$cdb.ids"
            echo "$sum" >"$cdb.load.json"
            say "sqlite: cached the data set as $cdb"
        fi
    fi
    record sqlite users "$(wc -l <"$WORK/sqlite.ids")"
    measure sqlite "$url" "$WORK/sqlite.ids" "$token"
}

# ---------------------------------------------------------------- PostgreSQL
pg_stop() {
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 20 stop >/dev/null 2>&1 || {
            local pm
            pm=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null)
            [ -n "$pm" ] && kill -TERM "$pm" 2>/dev/null
        }
    fi
    if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
        cp "$PG_DIR/server.log" "$LOGS/postgres-server.log" 2>/dev/null
        rm -rf "$PG_DIR"
    fi
    PG_DATA="" PG_DIR=""
}

bench_postgres() {
    local port url sum token total v
    PG_BIN=${BENCH_PG_BIN:-}
    if [ -z "$PG_BIN" ]; then
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    fi
    [ -x "$PG_BIN/initdb" ] || { note postgres "PostgreSQL server binaries not found (apt-get install postgresql); skipped"; return 1; }
    id postgres >/dev/null 2>&1 || { note postgres "no postgres system user; skipped"; return 1; }

    PG_DIR=$(mktemp -d /tmp/roster-bench-pg.XXXXXX)
    PG_DATA="$PG_DIR/data"
    chown postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    port=$("$PY" "$TOOLS" freeport)
    say "postgres: initdb + start on 127.0.0.1:$port (fsync on, socket dir $PG_DIR)"
    (cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8) \
        >"$LOGS/postgres-initdb.log" 2>&1 || { note postgres "initdb failed (see $LOGS/postgres-initdb.log)"; return 1; }
    (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" \
        -o "-k $PG_DIR -p $port -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" -w -t 60 start) \
        >"$LOGS/postgres-start.log" 2>&1 || { note postgres "pg_ctl start failed (see $LOGS/postgres-start.log)"; return 1; }
    (cd / && runuser -u postgres -- "$PG_BIN/createdb" -h "$PG_DIR" -p "$port" roster) \
        >>"$LOGS/postgres-start.log" 2>&1 || { note postgres "createdb failed"; return 1; }
    v=$(cd / && runuser -u postgres -- "$PG_BIN/psql" -h "$PG_DIR" -p "$port" -d roster -Atc \
        "select split_part(version(), ' ', 2) || ', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', shared_buffers=' || current_setting('shared_buffers')" 2>/dev/null)
    record meta postgres "PostgreSQL $v (private cluster, 127.0.0.1, trust auth)"
    url="postgres://postgres@127.0.0.1:$port/roster"
    DB_ROOT_PID=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null)

    start_server postgres-load "$url" || { note postgres "server did not start on an empty PostgreSQL DB"; return 1; }
    token=$(server_token postgres-load "$url") || { note postgres "no API key"; stop_server >/dev/null; return 1; }
    sum=$(load_users postgres "$SERVER_PORT" "$token" "$WORK/postgres.ids")
    total=$("$PY" "$TOOLS" total "$SERVER_PORT" "$token" 2>/dev/null)
    [ -n "$total" ] && say "postgres: API reports total=$total users"
    stop_server >/dev/null
    dataset_note postgres "$sum" "generated"
    record postgres users "$(wc -l <"$WORK/postgres.ids")"
    measure postgres "$url" "$WORK/postgres.ids" "$token"
    DB_ROOT_PID=""
    pg_stop
}

# ---------------------------------------------------------------- main
say "roster: $BIN ($(timeout 10 "$BIN" version 2>&1 | head -1)); $USERS users; backends: $BACKENDS"
for b in $BACKENDS; do
    case $b in
    sqlite) bench_sqlite || say "sqlite: incomplete (see notes)" ;;
    postgres) bench_postgres || say "postgres: incomplete (see notes)"; pg_stop ;;
    *) die "unknown backend $b" ;;
    esac
done

echo >&2
"$PY" "$TOOLS" report "$RESULTS" "$RESULTS_DIR/latest.txt"
cp "$RESULTS" "$RESULTS_DIR/latest.jsonl"
echo
echo "written: bench/results/latest.txt (raw figures: bench/results/latest.jsonl; wrk output and server logs: bench/.run/logs/)"
say "done in $(($(date +%s) - T_START)) s"
