#!/usr/bin/python3
"""run.py: the roster API suite runner (standard library only).

    /usr/bin/python3 tests/api/run.py --binary build/roster --backend sqlite|postgres|both
                                      [--filter NAME] [--keep]

Discovers test_* functions in tests/api/test_*.py (in file order), runs each
against a real `roster serve` on loopback and prints `ok NAME`, `FAIL NAME:
reason` (or `skip NAME: reason`) per test, then exactly one line
`N passed, N failed` summed over the backends. Exit 1 on any failure.

A test is `def test_x(ctx)`; ctx (a Context) gives the backend, a shared server
per module (ctx.server, started on first use), fresh servers and databases
(ctx.new_server(), ctx.new_db_url()) and a dict ctx.state kept for the module.
A module with BACKEND_INDEPENDENT = True runs once, not per backend.

Each run works in a temporary directory (server logs, SQLite files, the
PostgreSQL cluster), removed when everything passed and kept (path printed)
otherwise. Every process started is stopped in finally blocks and at exit.
"""

import argparse
import glob
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

TEST_TIMEOUT = 150.0


class SkipTest(Exception):
    pass


class Suite:
    def __init__(self, binary, run_dir):
        self.binary = binary
        self.run_dir = run_dir
        self._pg = None
        self._pg_error = None

    def pg(self):
        if self._pg_error:
            raise self._pg_error
        if self._pg is None:
            try:
                self._pg = harness.PgCluster(self.run_dir, "pg").start()
            except Exception as e:
                self._pg_error = RuntimeError("PostgreSQL cluster did not start: %s" % e)
                raise self._pg_error
        return self._pg

    def close_pg(self):
        if self._pg is not None:
            self._pg.remove()
            self._pg = None


class Context:
    def __init__(self, suite, backend, module_name):
        self.suite = suite
        self.backend = backend
        self.binary = suite.binary
        self.module = module_name
        self.dir = os.path.join(suite.run_dir, "%s-%s" % (backend, module_name))
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.state = {}
        self._servers = []
        self._clusters = []
        self._server = None
        self._server_error = None
        self._n = 0

    SkipTest = SkipTest

    def skip(self, reason):
        raise SkipTest(reason)

    def _next(self, prefix):
        self._n += 1
        return "%s%d" % (prefix, self._n)

    # -- databases
    def new_db_url(self, cluster=None):
        """A fresh, empty database for this backend."""
        if self.backend == "postgres":
            return (cluster or self.suite.pg()).createdb()
        path = os.path.join(self.dir, self._next("db") + ".sqlite")
        return "sqlite:" + path

    @staticmethod
    def sqlite_path(db_url):
        assert db_url.startswith("sqlite:")
        return db_url[len("sqlite:"):]

    def new_pg_cluster(self, fsync=True):
        c = harness.PgCluster(self.dir, self._next("pg"), fsync=fsync)
        self._clusters.append(c)
        return c.start()

    # -- servers
    def new_server(self, db_url=None, admin_token=None, extra_args=(), start=True, name=None):
        s = harness.Server(self.binary, db_url or self.new_db_url(), self.dir,
                           name=name or self._next("server"), admin_token=admin_token,
                           extra_args=extra_args)
        self._servers.append(s)
        if start:
            s.start()
        return s

    @property
    def server(self):
        """The module's shared server (fresh database), started on first use."""
        if self._server_error:
            raise self._server_error
        if self._server is None or not self._server.alive():
            if self._server is not None:
                raise RuntimeError("the module's shared server died (exit %s); stderr tail: %s" % (
                    self._server.proc.returncode, self._server.stderr_tail()))
            try:
                self._server = self.new_server(name="shared")
            except Exception as e:
                self._server_error = e
                raise
        return self._server

    def client(self, token="admin"):
        return self.server.client(token)

    def close(self):
        for s in self._servers:
            try:
                s.stop()
            except Exception:
                pass
        for c in self._clusters:
            try:
                c.remove()
            except Exception:
                pass


def discover():
    mods = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        tests = [(k, v) for k, v in vars(mod).items()
                 if k.startswith("test_") and callable(v) and getattr(v, "__module__", "") == name]
        tests.sort(key=lambda kv: kv[1].__code__.co_firstlineno)
        mods.append((name, mod, tests))
    return mods


def run_one(fn, ctx):
    result = {}

    def target():
        try:
            fn(ctx)
            result["ok"] = True
        except SkipTest as e:
            result["skip"] = str(e)
        except BaseException as e:  # noqa: BLE001 - report everything
            result["error"] = e
            result["tb"] = traceback.format_exc()

    t = threading.Thread(target=target, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(TEST_TIMEOUT)
    result["time"] = time.monotonic() - t0
    if t.is_alive():
        result["error"] = AssertionError("timed out after %.0f s" % TEST_TIMEOUT)
        result["tb"] = "timeout"
    return result


def where(tb, module):
    """file:line of the deepest frame in the test module, for the FAIL line."""
    loc = ""
    for line in tb.splitlines():
        line = line.strip()
        if line.startswith('File "') and (module + ".py") in line:
            try:
                loc = "%s.py:%s" % (module, line.split(", line ")[1].split(",")[0])
            except IndexError:
                pass
    return loc


def run_all(suite, modules, backends, filter_text, counts, fail_log):
    independent_done = set()
    for backend in backends:
        try:
            for name, mod, tests in modules:
                independent = getattr(mod, "BACKEND_INDEPENDENT", False)
                if independent and name in independent_done:
                    continue
                label = "any" if independent else backend
                selected = [("%s.%s[%s]" % (name, tname, label), fn) for tname, fn in tests]
                selected = [(full, fn) for full, fn in selected
                            if not filter_text or filter_text in full]
                if not selected:
                    continue
                if independent:
                    independent_done.add(name)
                ctx = Context(suite, label, name)
                try:
                    for full, fn in selected:
                        report(full, name, run_one(fn, ctx), counts, fail_log)
                finally:
                    ctx.close()
        finally:
            suite.close_pg()


def report(full, module, res, counts, fail_log):
    if res.get("ok"):
        counts["passed"] += 1
        print("ok %s (%.1fs)" % (full, res["time"]), flush=True)
    elif "skip" in res:
        counts["skipped"] += 1
        print("skip %s: %s" % (full, res["skip"]), flush=True)
    else:
        counts["failed"] += 1
        err = res["error"]
        msg = str(err) or type(err).__name__
        if not isinstance(err, AssertionError):
            msg = "%s: %s" % (type(err).__name__, msg)
        msg = " ".join(msg.split())
        loc = where(res.get("tb", ""), module)
        print("FAIL %s: %s%s" % (full, msg[:3000], (" (" + loc + ")") if loc else ""),
              flush=True)
        with open(fail_log, "a") as f:
            f.write("=== %s\n%s\n" % (full, res.get("tb", "")))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default="build/roster")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--filter", default=None, help="run tests whose name contains this")
    ap.add_argument("--keep", action="store_true", help="keep the run directory")
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print("run.py: no executable at %s (build it: ninja -C build)" % binary, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1

    def on_term(signum, frame):
        raise SystemExit(130)

    signal.signal(signal.SIGTERM, on_term)
    # also when started with SIGINT ignored (a background job of a script)
    signal.signal(signal.SIGINT, signal.default_int_handler)

    run_dir = tempfile.mkdtemp(prefix="roster-api-")
    os.chmod(run_dir, 0o755)  # the postgres user must reach its cluster below
    suite = Suite(binary, run_dir)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    modules = discover()
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    fail_log = os.path.join(run_dir, "failures.log")
    started = time.monotonic()
    interrupted = False
    try:
        run_all(suite, modules, backends, args.filter, counts, fail_log)
    except (KeyboardInterrupt, SystemExit):
        interrupted = True
        print("# interrupted", flush=True)
    finally:
        harness.stop_all()
        if args.keep or counts["failed"] or interrupted:
            print("# logs kept in %s (%.0f s, %d skipped)" % (
                run_dir, time.monotonic() - started, counts["skipped"]), flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
            print("# %.0f s, %d skipped" % (time.monotonic() - started, counts["skipped"]),
                  flush=True)
        print("%d passed, %d failed" % (counts["passed"], counts["failed"]), flush=True)
    if interrupted:
        return 130
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
