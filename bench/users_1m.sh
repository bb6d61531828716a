#!/usr/bin/env bash
# bench/users_1m.sh — the issue-3 user benchmark at one million users: figures, never pass/fail.
#
#   bash bench/users_1m.sh [path/to/roster]          (e.g. bash bench/users_1m.sh build/roster)
#
# With 1,000,000 generated users (created through POST /api/v1/users on
# SQLite, cached; copied into PostgreSQL), it measures on each backend:
#   - GET /api/v1/users?department=D&sort=last_name&limit=50: page 1, page 2 via
#     next_cursor and a deep page, one keep-alive client (p50/p90/p99/max), and
#     wrk throughput of page 1;
#   - GET /api/v1/users?q=<3-6 chars>&limit=50 (and 2 chars, and a term in
#     every row): one client, and wrk throughput;
#   - creates/s from one client (wrk t1 c1) at 1M users;
#   - the plans and direct timings of the SQL the store runs for them.
# The table is printed and written to bench/results/users_1m.txt, the query
# plans to bench/results/users_1m_plans.txt, raw figures to
# bench/results/users_1m.jsonl; logs stay in bench/.run/logs_1m/. See
# bench/README_1m.md.
#
# Knobs (environment):
#   BENCH_1M_USERS=1000000     users to generate (plus the first-run admin)
#   BENCH_1M_WORKERS=6         loader processes, one keep-alive connection each
#   BENCH_1M_DEADLINE=1500     seconds; the load starts no request after this
#   BENCH_1M_DURATION=10       seconds per wrk run
#   BENCH_1M_BACKENDS="sqlite postgres"
#   BENCH_1M_NO_CACHE=1        regenerate the SQLite data set even if cached
#   BENCH_1M_WAIT_QUIET=0      before each backend's runs, wait up to this many
#                              seconds for the machine to be < 30% busy (shared machines)
#   BENCH_1M_UPGRADE=1         when no cached data set matches this binary's schema,
#                              upgrade the newest other cached one with `roster migrate`
#                              instead of loading a million users again (see README_1m.md)
#   BENCH_1M_LOAD_DIR=DIR      where the SQLite file is built during the load
#                              (default: /dev/shm when it has room, else bench/.run)
#   BENCH_PG_BIN=/usr/lib/postgresql/15/bin
#
# All traffic goes to 127.0.0.1; the load is bounded in time; every process
# started here is stopped on exit (trap), by its PID.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
TOOLS="$HERE/tools.py"
U1M="$HERE/users_1m.py"

BIN_ARG=${1:-$(dirname "$HERE")/build/roster}
USERS=${BENCH_1M_USERS:-1000000}
WORKERS=${BENCH_1M_WORKERS:-6}
DEADLINE=${BENCH_1M_DEADLINE:-1500}
DURATION=${BENCH_1M_DURATION:-10}
BACKENDS=${BENCH_1M_BACKENDS:-sqlite postgres}
SEED=20261124
WRK_T=2 WRK_C=16

RUN="$HERE/.run"
WORK="$RUN/work_1m"
CACHE="$RUN/cache"
LOGS="$RUN/logs_1m"
RESULTS_DIR="$HERE/results"
RESULTS="$WORK/results.jsonl"
PLAN="$WORK/plan.json"

T_START=$(date +%s)
say() { printf '[users_1m %4ds] %s\n' "$(($(date +%s) - T_START))" "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
SERVER_PID=""
SERVER_PORT=""
BG_PIDS=()
PG_DIR="" PG_DATA="" PG_BIN="" PG_PORT=""
LOAD_DIR_TMP=""
DB_ROOT_PID=""

stop_pid() { # PID [seconds]: SIGTERM, wait, then SIGKILL
    local pid=$1 limit=${2:-10} n=0
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    while kill -0 "$pid" 2>/dev/null; do
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
        n=$((n + 1))
        if [ $n -gt $((limit * 100)) ]; then
            say "pid $pid did not exit within ${limit}s of SIGTERM; SIGKILL"
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.01
    done
    wait "$pid" 2>/dev/null
    return 0
}

pg_stop() {
    if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 || {
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

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${BG_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && stop_pid "$p" 10
    done
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        stop_pid "$SERVER_PID" 20
    fi
    pg_stop
    [ -n "$LOAD_DIR_TMP" ] && [ -d "$LOAD_DIR_TMP" ] && rm -rf "$LOAD_DIR_TMP"
    exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- checks
[ -x "$BIN_ARG" ] || die "no roster binary at $BIN_ARG (build it: ninja -C build)"
[ -x "$PY" ] || die "$PY not found"
command -v wrk >/dev/null || die "wrk not installed (Debian package wrk; scripts/deps bench installs it)"
command -v sqlite3 >/dev/null || die "sqlite3 (the CLI) not installed (Debian package sqlite3)"

mkdir -p "$WORK" "$CACHE" "$LOGS" "$RESULTS_DIR"
rm -rf "${WORK:?}"/* "${LOGS:?}"/*
cp "$(realpath "$BIN_ARG")" "$WORK/roster.under-test" || die "cannot copy $BIN_ARG"
BIN="$WORK/roster.under-test"
record() { "$PY" "$TOOLS" record "$RESULTS" "$@"; }
note() { record "$1" notes "$2"; say "note ($1): $2"; }
json_field() { "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); v=d.get(sys.argv[2]); print("" if v is None else v)' "$1" "$2" 2>/dev/null; }
busy_pct() { # % of one core the machine was busy over the next second
    "$PY" - <<'PYEOF'
import os, time
def snap():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]
t0, i0 = snap(); time.sleep(1); t1, i1 = snap()
print(round(100.0 * ((t1 - t0) - (i1 - i0)) / max(1, t1 - t0) * os.cpu_count()))
PYEOF
}

record meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
record meta host "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), Linux $(uname -r), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
b=$(busy_pct)
record meta quiet "machine busy in the second before the run: ${b}% of a core (anything else running skews every figure)"
[ "${b:-0}" -gt 30 ] && say "warning: the machine is already ${b}% busy; figures will be low and noisy"
record meta roster "$(timeout 10 "$BIN" version 2>&1 | head -1)"
record meta binary "$BIN_ARG sha256:$(sha256sum "$BIN" | cut -c1-12)"
record meta clients "latency: 1 keep-alive client, sequential (users_1m.py seq); throughput: wrk -t$WRK_T -c$WRK_C -d${DURATION}s after a 2s warm-up; create: wrk -t1 -c1 -d${DURATION}s create_user.lua; all on the same 2 cores as the server"

# ---------------------------------------------------------------- server
start_server() { # NAME DBURL -> SERVER_PID, SERVER_PORT
    local name=$1 url=$2
    SERVER_PORT=$("$PY" "$TOOLS" freeport)
    "$BIN" serve --listen "127.0.0.1:$SERVER_PORT" --db "$url" --log-level warn \
        >"$LOGS/$name.out" 2>"$LOGS/$name.err" </dev/null &
    SERVER_PID=$!
    if ! "$PY" "$TOOLS" wait-ready "$SERVER_PORT" --pid "$SERVER_PID" --timeout 120 >/dev/null; then
        say "roster serve ($name) did not become ready; last stderr lines:"
        tail -n 20 "$LOGS/$name.err" >&2
        stop_server
        return 1
    fi
    return 0
}

stop_server() {
    [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID" 30
    SERVER_PID=""
}

server_gone() { # BACKEND WHEN: true (and a note) if the server process has died
    local b=$1 when=$2 rc
    kill -0 "$SERVER_PID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null)" != Z ] && return 1
    wait "$SERVER_PID" 2>/dev/null
    rc=$?
    note "$b" "roster serve died $when (exit status $rc$([ $rc -gt 128 ] && echo ", signal $((rc - 128))")); no further figures on $b. Last stderr: $(tail -2 "$LOGS/$b-serve.err" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
    SERVER_PID=""
    return 0
}

cli_token() { # DBURL NAME
    local url=$1 name=$2
    timeout 60 "$BIN" apikey create --user admin --name "bench1m-$(date +%s)" --db "$url" \
        >"$LOGS/$name.apikey.out" 2>&1 || { tail -5 "$LOGS/$name.apikey.out" >&2; return 1; }
    "$PY" "$TOOLS" token "$LOGS/$name.apikey.out"
}

proc_json() { "$PY" "$TOOLS" proc "$1" "$DB_ROOT_PID" 2>/dev/null || echo ""; }

run_wrk() { # OUT LABEL SCRIPT THREADS CONNS SECONDS
    local out=$1 label=$2 script=$3 t=$4 c=$5 d=$6
    BENCH_LABEL=$label timeout -k 5 $((d + 60)) \
        wrk -t"$t" -c"$c" -d"${d}s" --timeout 30s --latency -s "$HERE/$script" \
        "http://127.0.0.1:$SERVER_PORT" >"$out" 2>&1
}

server_log_note() { # BACKEND FILE WHEN
    local b=$1 f=$2 when=$3
    [ -s "$f" ] || return 0
    note "$b" "server logged $(grep -c . "$f") stderr lines $when; first: $(head -1 "$f" | cut -c1-200)"
}

# ---------------------------------------------------------------- measure one backend
wait_quiet() { # up to BENCH_1M_WAIT_QUIET seconds for the machine to be < 30% busy
    local limit=${BENCH_1M_WAIT_QUIET:-0} t0 bp
    [ "$limit" -gt 0 ] || return 0
    t0=$(date +%s)
    while :; do
        bp=$(busy_pct)
        [ "${bp:-0}" -lt 30 ] && return 0
        if [ $(($(date +%s) - t0)) -ge "$limit" ]; then
            say "machine still ${bp}% busy after ${limit}s; measuring anyway"
            return 0
        fi
        sleep 4
    done
}

measure() { # BACKEND DBURL TOKEN
    local b=$1 url=$2 token=$3 cpu0 cpu1 info
    wait_quiet
    record "$b" notes "load average before the $b runs: $(cut -d' ' -f1-3 /proc/loadavg); machine busy $(busy_pct)% of a core"
    start_server "$b-serve" "$url" || { note "$b" "server did not start; no figures"; return 1; }

    say "$b: sequential latency, 1 keep-alive client (list pages, searches)"
    "$PY" "$U1M" seq --port "$SERVER_PORT" --token "$token" --plan "$PLAN" --results "$RESULTS" \
        --backend "$b" --paths-dir "$WORK/paths" 2>>"$LOGS/$b-seq.err" ||
        note "$b" "sequential client failed: $(tail -2 "$LOGS/$b-seq.err" | tr '\n' ' ' | cut -c1-300)"
    server_gone "$b" "during the sequential runs" && return 1

    export ROSTER_TOKEN=$token
    local kind
    for kind in list search; do
        if [ -s "$WORK/paths/$kind.paths" ]; then
            say "$b: wrk $kind, 2s warm-up + ${DURATION}s (t$WRK_T c$WRK_C)"
            ROSTER_PATHS_FILE="$WORK/paths/$kind.paths" run_wrk "$LOGS/$b-wrk-$kind-warmup.txt" warmup paths_1m.lua "$WRK_T" "$WRK_C" 2
            cpu0=$(proc_json "$SERVER_PID")
            ROSTER_PATHS_FILE="$WORK/paths/$kind.paths" run_wrk "$LOGS/$b-wrk-$kind.txt" "$kind" paths_1m.lua "$WRK_T" "$WRK_C" "$DURATION"
            cpu1=$(proc_json "$SERVER_PID")
            "$PY" "$TOOLS" record-wrk "$RESULTS" "$b" "wrk_$kind" "$LOGS/$b-wrk-$kind.txt" --cpu-before "$cpu0" --cpu-after "$cpu1"
            server_gone "$b" "during the wrk $kind run" && return 1
        fi
    done

    say "$b: creates, one client, ${DURATION}s (wrk t1 c1, create_user.lua)"
    cpu0=$(proc_json "$SERVER_PID")
    run_wrk "$LOGS/$b-create.txt" create create_user.lua 1 1 "$DURATION"
    cpu1=$(proc_json "$SERVER_PID")
    "$PY" "$TOOLS" record-wrk "$RESULTS" "$b" create "$LOGS/$b-create.txt" --cpu-before "$cpu0" --cpu-after "$cpu1"
    unset ROSTER_TOKEN
    server_gone "$b" "during the create run" && return 1

    info=$(proc_json "$SERVER_PID")
    [ -n "$info" ] && record "$b" rss_after_mb "$("$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(round(d["rss_kb"]/1024,1))' "$info")"
    stop_server
    server_log_note "$b" "$LOGS/$b-serve.err" "during the measured runs"
    return 0
}

# ---------------------------------------------------------------- the SQLite data set
SRC_DB="" # the generated 1M file (cache or work), never measured on directly
PROBE_PAGE_SIZE="" # the page size this binary gives a new database

# BENCH_1M_UPGRADE: the newest cached data set of another schema (the same
# generator and seed), copied and brought to this binary's schema by
# `roster migrate`, as an operator's upgrade would; cached under this
# schema's key with "upgraded_from" in its .load.json.
upgrade_dataset() { # CACHE_DB
    local cdb=$1 old db t0 secs rewrote=""
    old=$(ls -t "$CACHE/users_1m-$USERS-"*.db 2>/dev/null | grep -vF "$cdb" | head -1)
    [ -n "$old" ] && [ -f "$old.load.json" ] || return 1
    db="$WORK/upgrade.db"
    rm -f "$db" "$db-wal" "$db-shm"
    say "sqlite: upgrading the cached data set $old with roster migrate"
    cp "$old" "$db" || return 1
    t0=$(date +%s%N)
    if ! timeout 1800 "$BIN" migrate --db "sqlite:$db" >"$LOGS/upgrade-migrate.out" 2>&1; then
        say "roster migrate of $old failed (see $LOGS/upgrade-migrate.out); loading instead"
        rm -f "$db" "$db-wal" "$db-shm"
        return 1
    fi
    # A new database gets the binary's page size; an old file keeps its own
    # until rewritten, which VACUUM does (docs/operations.md).
    if [ -n "$PROBE_PAGE_SIZE" ] && [ "$(sqlite3 "$db" "PRAGMA page_size" 2>/dev/null)" != "$PROBE_PAGE_SIZE" ]; then
        say "sqlite: rewriting the upgraded copy with $PROBE_PAGE_SIZE-byte pages (VACUUM)"
        sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE; PRAGMA page_size=$PROBE_PAGE_SIZE; VACUUM;" \
            >>"$LOGS/upgrade-migrate.out" 2>&1 || { rm -f "$db" "$db-wal" "$db-shm"; return 1; }
        rewrote=" and VACUUM to $PROBE_PAGE_SIZE-byte pages"
    fi
    secs=$(( ($(date +%s%N) - t0) / 1000000 ))
    sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;" >/dev/null 2>&1
    rm -f "$db-wal" "$db-shm"
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); d["upgraded_from"]=sys.argv[2]; d["migrate_ms"]=int(sys.argv[3]); d["rewrite"]=sys.argv[4]; print(json.dumps(d))' \
        "$old.load.json" "$(basename "$old")" "$secs" "$rewrote" >"$cdb.load.json.tmp" || return 1
    mv "$db" "$cdb" && mv "$cdb.load.json.tmp" "$cdb.load.json"
    SRC_DB=$cdb
    say "sqlite: upgraded in $((secs / 1000)) s; cached as $cdb"
    record sqlite dataset "cached, upgraded (API load $(json_field "$(cat "$cdb.load.json")" created_per_s)/s)"
    record sqlite notes "data set: $(basename "$old") (made by POST /api/v1/users at $(json_field "$(cat "$cdb.load.json")" created_per_s)/s under an older schema) brought to this schema by roster migrate$rewrote in $((secs / 1000)) s"
    return 0
}

make_dataset() {
    local key="" probe="$WORK/schema-probe.db" cdb ldir db sum token pid
    if timeout 60 "$BIN" migrate --db "sqlite:$probe" >"$LOGS/migrate-probe.out" 2>&1 && [ -f "$probe" ]; then
        key=$({ "$PY" "$TOOLS" schema-hash "$probe"; "$PY" "$U1M" gen-hash; echo "$USERS $SEED"; } | sha256sum | cut -c1-16)
        PROBE_PAGE_SIZE=$(sqlite3 "$probe" "PRAGMA page_size" 2>/dev/null)
    else
        say "roster migrate on an empty SQLite file failed; the data set will not be cached"
    fi
    rm -f "$probe" "$probe-wal" "$probe-shm"
    cdb="$CACHE/users_1m-$USERS-$key.db"
    if [ -n "$key" ] && [ -z "${BENCH_1M_NO_CACHE:-}" ] && [ -f "$cdb" ] && [ -f "$cdb.load.json" ]; then
        say "sqlite: using the cached data set $cdb"
        SRC_DB=$cdb
        if [ -n "$(json_field "$(cat "$cdb.load.json")" upgraded_from)" ]; then
            record sqlite dataset "cached, upgraded (API load $(json_field "$(cat "$cdb.load.json")" created_per_s)/s)"
            record sqlite notes "data set: a cached copy of $cdb: $(json_field "$(cat "$cdb.load.json")" upgraded_from) (POST /api/v1/users at $(json_field "$(cat "$cdb.load.json")" created_per_s)/s) upgraded by roster migrate$(json_field "$(cat "$cdb.load.json")" rewrite) in $(( $(json_field "$(cat "$cdb.load.json")" migrate_ms) / 1000 )) s"
            return 0
        fi
        record sqlite dataset "cached (API load, $(json_field "$(cat "$cdb.load.json")" created_per_s)/s)"
        record sqlite notes "data set: a cached copy of $cdb, made by POST /api/v1/users from $(json_field "$(cat "$cdb.load.json")" workers) clients at $(json_field "$(cat "$cdb.load.json")" created_per_s)/s (creates/s per tenth of the load: $(json_field "$(cat "$cdb.load.json")" rate_per_tenth))"
        return 0
    fi

    if [ -n "$key" ] && [ -n "${BENCH_1M_UPGRADE:-}" ] && [ -z "${BENCH_1M_NO_CACHE:-}" ] && upgrade_dataset "$cdb"; then
        return 0
    fi

    # The load writes to a file on tmpfs when there is room: every create is
    # still a full API request and transaction, only the fsync costs nothing,
    # so the load is CPU-bound (~2-4x faster than on disk).
    ldir=${BENCH_1M_LOAD_DIR:-}
    if [ -z "$ldir" ]; then
        if [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR==2{print $4}')" -gt $((6 * 1024 * 1024)) ]; then
            LOAD_DIR_TMP=$(mktemp -d /dev/shm/roster-1m.XXXXXX)
            ldir=$LOAD_DIR_TMP
        else
            ldir=$WORK
        fi
    fi
    db="$ldir/load.db"
    rm -f "$db" "$db-wal" "$db-shm"
    say "sqlite: generating $USERS users through POST /api/v1/users ($WORKERS clients, file in $ldir, ≤ ${DEADLINE}s)"
    start_server sqlite-load "sqlite:$db" || die "server did not start on an empty SQLite file"
    token=""
    for _ in $(seq 1 50); do
        token=$("$PY" "$TOOLS" token "$LOGS/sqlite-load.out") && break
        sleep 0.1
    done
    [ -n "$token" ] || token=$(cli_token "sqlite:$db" sqlite-load) || die "no API key for the load"
    "$PY" "$U1M" load --port "$SERVER_PORT" --token "$token" --count "$USERS" --workers "$WORKERS" \
        --deadline "$DEADLINE" --seed "$SEED" >"$WORK/load.json" &
    pid=$!
    BG_PIDS+=("$pid")
    wait "$pid"
    BG_PIDS=()
    sum=$(cat "$WORK/load.json" 2>/dev/null)
    [ -n "$sum" ] || die "the loader printed no summary"
    cp "$WORK/load.json" "$LOGS/load.json"
    stop_server
    server_log_note sqlite "$LOGS/sqlite-load.err" "during the load"
    # Fold the WAL in and leave rollback-journal mode, so the cached file is
    # one self-contained file that readers open without -wal/-shm (the server
    # switches its working copy back to WAL when it opens it).
    sqlite3 "$db" "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;" >/dev/null 2>&1
    say "sqlite: load: $(json_field "$sum" created) created in $(json_field "$sum" elapsed_s)s = $(json_field "$sum" created_per_s)/s; statuses $(json_field "$sum" statuses); creates/s per tenth: $(json_field "$sum" rate_per_tenth)"
    record sqlite dataset "API load this run, $(json_field "$sum" created_per_s)/s"
    record sqlite notes "data set: generated this run by POST /api/v1/users from $(json_field "$sum" workers) clients at $(json_field "$sum" created_per_s)/s in $(json_field "$sum" elapsed_s)s, the file on $( [ "$ldir" = "$LOAD_DIR_TMP" ] && echo "tmpfs (fsync free)" || echo "$ldir"); creates/s per tenth of the load: $(json_field "$sum" rate_per_tenth)"
    local fb
    fb=$(json_field "$sum" unicode_email_fallbacks)
    [ -n "$fb" ] && [ "$fb" != 0 ] && note sqlite "$fb users with a non-ASCII email local part were refused (422) and re-sent with an ASCII one"
    case "$(json_field "$sum" statuses)" in "{'201': $USERS}") ;; *) note sqlite "load statuses: $(json_field "$sum" statuses); first failures: $(json_field "$sum" first_failures | cut -c1-300)" ;; esac
    if [ -n "$key" ] && [ "$(json_field "$sum" created)" = "$USERS" ]; then
        # Keep the newest other 1M data set too (a second binary's schema),
        # drop older ones: each is ~1.3 GB.
        ls -t "$CACHE/users_1m-$USERS-"*.db 2>/dev/null | tail -n +2 | while read -r old; do rm -f "$old" "$old"-* "$old".*; done
        mv "$db" "$cdb.tmp" && mv "$cdb.tmp" "$cdb"
        echo "$sum" >"$cdb.load.json"
        SRC_DB=$cdb
        say "sqlite: cached the data set as $cdb ($(du -m "$cdb" | cut -f1) MB)"
    else
        [ "$(json_field "$sum" hit_deadline)" = True ] && note sqlite "the load hit its ${DEADLINE}s deadline; measured on what was made, not cached"
        mv "$db" "$WORK/generated.db"
        SRC_DB="$WORK/generated.db"
    fi
    rm -f "$db-wal" "$db-shm"
    [ -n "$LOAD_DIR_TMP" ] && rm -rf "$LOAD_DIR_TMP" && LOAD_DIR_TMP=""
    return 0
}

# ---------------------------------------------------------------- SQLite
bench_sqlite() {
    local db="$WORK/sqlite.db" url token
    url="sqlite:$db"
    cp "$SRC_DB" "$db" || { note sqlite "cannot copy the data set"; return 1; }
    record sqlite db_size_mb "$(du -m "$db" | cut -f1)"
    token=$(cli_token "$url" sqlite-apikey) || { note sqlite "roster apikey create failed"; return 1; }
    measure sqlite "$url" "$token" || return 1
    say "sqlite: query plans and direct SQL timings"
    "$PY" "$U1M" explain-sqlite --db "$db" --plan "$PLAN" --results "$RESULTS" \
        --out "$WORK/plans-sqlite.txt" 2>>"$LOGS/sqlite-explain.err" || note sqlite "explain failed (see $LOGS/sqlite-explain.err)"
    rm -f "$db" "$db-wal" "$db-shm"
}

# ---------------------------------------------------------------- PostgreSQL
bench_postgres() {
    local url token v psqlargs
    PG_BIN=${BENCH_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
    [ -x "$PG_BIN/initdb" ] || { note postgres "PostgreSQL server binaries not found; skipped"; return 1; }
    id postgres >/dev/null 2>&1 || { note postgres "no postgres system user; skipped"; return 1; }
    PG_DIR=$(mktemp -d /tmp/roster-bench1m-pg.XXXXXX)
    PG_DATA="$PG_DIR/data"
    chown postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    PG_PORT=$("$PY" "$TOOLS" freeport)
    say "postgres: initdb + start on 127.0.0.1:$PG_PORT (fsync on, socket dir $PG_DIR)"
    (cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres -E UTF8 --locale=C.UTF-8) \
        >"$LOGS/postgres-initdb.log" 2>&1 || { note postgres "initdb failed (see $LOGS/postgres-initdb.log)"; return 1; }
    (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" \
        -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on" -w -t 60 start) \
        >"$LOGS/postgres-start.log" 2>&1 || { note postgres "pg_ctl start failed (see $LOGS/postgres-start.log)"; return 1; }
    (cd / && runuser -u postgres -- "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" roster) \
        >>"$LOGS/postgres-start.log" 2>&1 || { note postgres "createdb failed"; return 1; }
    psqlargs="$PG_BIN/psql -h 127.0.0.1 -p $PG_PORT -U postgres -d roster"
    v=$($psqlargs -XAtc "select split_part(version(), ' ', 2) || ', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit') || ', shared_buffers=' || current_setting('shared_buffers')" 2>/dev/null)
    record meta postgres "PostgreSQL $v (private cluster, 127.0.0.1, trust auth)"
    url="postgres://postgres@127.0.0.1:$PG_PORT/roster"
    DB_ROOT_PID=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null)

    timeout 120 "$BIN" migrate --db "$url" >"$LOGS/postgres-migrate.out" 2>&1 ||
        { note postgres "roster migrate failed (see $LOGS/postgres-migrate.out)"; return 1; }
    say "postgres: copying the generated rows from SQLite (COPY, indexes rebuilt, VACUUM ANALYZE)"
    local t0 cp
    t0=$(date +%s)
    cp=$("$PY" "$U1M" pg-copy --sqlite "$SRC_DB" --psql "$psqlargs" 2>"$LOGS/postgres-copy.err") ||
        { cat "$LOGS/postgres-copy.err" >&2; note postgres "copy failed (see $LOGS/postgres-copy.err)"; return 1; }
    record postgres dataset "COPY of the SQLite set"
    record postgres notes "data set: the SQLite data set's users and audit_events copied with COPY (secondary indexes dropped and rebuilt, triggers off, user_counts recomputed, identities set, VACUUM ANALYZE) in $(($(date +%s) - t0))s: $cp"
    record postgres users "$($psqlargs -XAtc 'select count(*) from users')"
    record postgres db_size_mb "$($psqlargs -XAtc "select pg_database_size('roster') / 1048576")"
    token=$(cli_token "$url" postgres-apikey) || { note postgres "roster apikey create failed"; return 1; }
    measure postgres "$url" "$token" || return 1
    say "postgres: query plans (EXPLAIN ANALYZE)"
    "$PY" "$U1M" explain-pg --psql "$psqlargs" --plan "$PLAN" --results "$RESULTS" \
        --out "$WORK/plans-postgres.txt" 2>>"$LOGS/postgres-explain.err" || note postgres "explain failed (see $LOGS/postgres-explain.err)"
    DB_ROOT_PID=""
    pg_stop
}

# ---------------------------------------------------------------- main
say "roster: $BIN ($(timeout 10 "$BIN" version 2>&1 | head -1)); $USERS users; backends: $BACKENDS"
make_dataset
[ -n "$SRC_DB" ] && [ -f "$SRC_DB" ] || die "no data set"
record sqlite users "$(sqlite3 -readonly "$SRC_DB" 'select count(*) from users')"
"$PY" "$U1M" plan --db "$SRC_DB" --out "$PLAN" || die "could not choose the measured requests"
for b in $BACKENDS; do
    case $b in
    sqlite) bench_sqlite || say "sqlite: incomplete (see notes)" ;;
    postgres) bench_postgres || say "postgres: incomplete (see notes)"; pg_stop ;;
    *) die "unknown backend $b" ;;
    esac
done

echo >&2
"$PY" "$U1M" report "$RESULTS" "$RESULTS_DIR/users_1m.txt"
cp "$RESULTS" "$RESULTS_DIR/users_1m.jsonl"
cat "$WORK/plans-sqlite.txt" "$WORK/plans-postgres.txt" >"$RESULTS_DIR/users_1m_plans.txt" 2>/dev/null
echo
echo "written: bench/results/users_1m.txt (plans: bench/results/users_1m_plans.txt; raw: bench/results/users_1m.jsonl; logs: bench/.run/logs_1m/)"
say "done in $(($(date +%s) - T_START)) s"
