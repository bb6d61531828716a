"""Crash safety: kill -9 the server while creates stream in; every acknowledged
create (201) must be there after a restart, with its audit event, and the
database must pass its integrity check. PostgreSQL runs on its own cluster
with fsync on (the suite's shared cluster has fsync=off)."""

import http.client
import os
import shutil
import subprocess
import threading
import time

from harness import Failures, expect, unique_tag, urlq, user_body

STREAM_SECONDS = 1.5


def _stream_and_kill(srv):
    c = srv.client(timeout=5)
    acked = []      # (id, username)
    errors = []
    stop = threading.Event()

    def stream():
        tag = unique_tag(5)
        i = 0
        while not stop.is_set():
            name = "cr%s%05d" % (tag, i)
            i += 1
            try:
                r = c.post("/api/v1/users", user_body(name))
            except (OSError, http.client.HTTPException):
                if stop.is_set():
                    return
                errors.append(name)
                continue
            if r.status == 201:
                acked.append((r.json["id"], name))
            else:
                errors.append("%s: %s" % (name, r.describe(200)))

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    time.sleep(STREAM_SECONDS)
    stop.set()   # no new request after this; the one in flight is cut by the kill
    srv.kill()   # SIGKILL mid-stream
    t.join(10)
    return acked, errors


def _check_after_restart(ctx, srv, acked, f):
    again = ctx.new_server(db_url=srv.db_url, admin_token=srv.admin_token, name=srv.name + "-again")
    c = again.client()
    lost, wrong, no_audit = [], [], []
    for uid, name in acked:
        r = c.get("/api/v1/users/%d" % uid)
        if r.status != 200:
            lost.append((uid, name, r.status))
        elif r.json.get("username") != name:
            wrong.append((uid, name, r.json.get("username")))
    for uid, name in acked[:5] + acked[-5:]:
        h = c.get("/api/v1/users/%d/history" % uid)
        acts = [e.get("action") for e in (h.json or {}).get("items", [])]
        if acts != ["user.create"]:
            no_audit.append((uid, acts))
    f.check(not lost, "%d of %d acknowledged creates lost after kill -9: %s" % (
        len(lost), len(acked), lost[:10]))
    f.check(not wrong, "users with the wrong username after restart: %s" % wrong[:10])
    f.check(not no_audit, "acknowledged creates without exactly one user.create event: %s" %
            no_audit[:5])
    for uid, name in acked[:2] + acked[-3:]:
        r = c.get("/api/v1/users?" + urlq(q=name))
        f.check(r.status == 200 and uid in [u["id"] for u in r.json.get("items", [])],
                "search for %s after restart: %s" % (name, r.describe(200)))
    r = c.get("/api/v1/users?limit=1")
    f.check(r.status == 200 and r.json["total"] >= len(acked) + 1,
            "total %s after restart, want >= %d" % (r.json.get("total") if r.json else r.status,
                                                   len(acked) + 1))
    # the restarted server still takes writes
    r = c.post("/api/v1/users", user_body("post" + unique_tag()))
    f.check(r.status == 201, "create after restart: " + r.describe())
    return again


def test_kill_9_mid_stream_loses_no_acknowledged_create(ctx):
    f = Failures()
    if ctx.backend == "postgres":
        cluster = ctx.new_pg_cluster(fsync=True)
        db = ctx.new_db_url(cluster=cluster)
        fs = cluster.psql(db.rsplit("/", 1)[1], "SHOW fsync").strip()
        expect(fs == "on", "crash cluster runs with fsync=%r" % fs)
    else:
        db = ctx.new_db_url()
    srv = ctx.new_server(db_url=db, name="crash")
    for round_ in (1, 2):
        acked, errors = _stream_and_kill(srv)
        expect(len(acked) >= 10, "round %d: only %d creates acknowledged in %.1f s (errors: %s)" % (
            round_, len(acked), STREAM_SECONDS, errors[:3]))
        f.check(not errors, "round %d: creates failed before the kill: %s" % (
            round_, errors[:3]))
        if ctx.backend == "sqlite":
            path = ctx.sqlite_path(db)
            sq = shutil.which("sqlite3")
            expect(sq, "sqlite3 CLI not installed")
            # check a copy, so the WAL recovery the check does is not ours to explain
            copy = path + ".check"
            for ext in ("", "-wal", "-shm"):
                if os.path.exists(path + ext):
                    shutil.copyfile(path + ext, copy + ext)
            # The trigram index plus the users it has yet to take in must
            # agree with the table: fold the pending ones in as the indexer
            # would (on the copy), then FTS5's own 'integrity-check'.
            p = subprocess.run([sq, copy, "PRAGMA integrity_check; PRAGMA foreign_key_check; "
                                "INSERT INTO users_fts (users_fts, rowid, search_key) "
                                "SELECT 'delete', user_id, indexed_key FROM users_fts_pending "
                                "WHERE indexed_key IS NOT NULL; "
                                "INSERT INTO users_fts (rowid, search_key) SELECT p.user_id, "
                                "u.search_key FROM users_fts_pending p JOIN users u "
                                "ON u.id = p.user_id; DELETE FROM users_fts_pending; "
                                "INSERT INTO users_fts (users_fts, rank) "
                                "VALUES ('integrity-check', 1);"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=60)
            f.check(p.returncode == 0 and p.stdout.strip() == "ok",
                    "round %d: integrity_check: %r %r" % (round_, p.stdout[:300], p.stderr[:300]))
        srv = _check_after_restart(ctx, srv, acked, f)
        f.raise_if_any()
    srv.stop()
