#!/usr/bin/env python3
"""Runs every roster test suite and ends with one line: "N passed, N failed".

Suites: unit tests (cmocka, through meson test) on the normal and the
ASan+UBSan builds; the black-box API suite (tests/api/run.py) on SQLite and
PostgreSQL with both builds; each libFuzzer target for a short time.
Exit status is non-zero if anything failed."""
import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ_SECONDS = int(os.environ.get("ROSTER_FUZZ_SECONDS", "20"))


def run(cmd, env=None, timeout=None):
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, cwd=ROOT, env=env, timeout=timeout, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors="replace")
    sys.stdout.write(p.stdout)
    sys.stdout.flush()
    return p.returncode, p.stdout


def meson_unit(build, label):
    """Runs the cmocka executables through meson and counts their test cases."""
    code, out = run(["meson", "test", "-C", build, "--suite", "unit", "--print-errorlogs",
                     "--no-rebuild", "--verbose"])
    passed = sum(int(n) for n in re.findall(r"^\[  PASSED  \] (\d+) test", out, re.M))
    failed = sum(int(n) for n in re.findall(r"^\[  FAILED  \] (\d+) test", out, re.M))
    bad_exes = re.search(r"^Fail:\s+(\d+)", out, re.M)
    timeouts = re.search(r"^Timeout:\s+(\d+)", out, re.M)
    crashed = (int(bad_exes.group(1)) if bad_exes else 0) + (int(timeouts.group(1)) if timeouts else 0)
    if crashed and failed == 0:
        failed = crashed  # an executable died before cmocka could count
    if code != 0 and failed == 0:
        failed = 1
    if passed + failed == 0:
        print("%s: no unit tests ran" % label)
        failed = 1
    return passed, failed


def api_suite(binary, backend, label):
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    env["LSAN_OPTIONS"] = "suppressions=%s" % os.path.join(ROOT, "tests", "lsan.supp")
    code, out = run(["/usr/bin/python3", "tests/api/run.py", "--binary", binary,
                     "--backend", backend], env=env)
    m = None
    for m in re.finditer(r"^(\d+) passed, (\d+) failed", out, re.M):
        pass
    if not m:
        print("%s: the API suite printed no summary (exit %d)" % (label, code))
        return 0, 1
    passed, failed = int(m.group(1)), int(m.group(2))
    if code != 0 and failed == 0:
        failed = 1
    return passed, failed


def fuzz_suite(build):
    fuzz_dir = os.path.join(build, "tests", "fuzz")
    corpus_root = os.path.join(ROOT, "tests", "fuzz", "corpus")
    passed = failed = 0
    if not os.path.isdir(fuzz_dir):
        print("fuzz: no targets built in %s" % fuzz_dir)
        return 0, 1
    targets = sorted(f for f in os.listdir(fuzz_dir)
                     if f.startswith("fuzz_") and os.access(os.path.join(fuzz_dir, f), os.X_OK)
                     and not f.endswith(".p"))
    for t in targets:
        work = os.path.join(ROOT, build, "fuzz-work", t)
        os.makedirs(work, exist_ok=True)
        seeds = os.path.join(corpus_root, t)
        # -timeout: one input running 10 s fails the target (with the input
        # saved) instead of holding the suite past -max_total_time, which
        # libFuzzer checks only between inputs.
        cmd = [os.path.join(fuzz_dir, t), "-max_total_time=%d" % FUZZ_SECONDS, "-timeout=10",
               "-artifact_prefix=%s/" % work, "-print_final_stats=1", work]
        if os.path.isdir(seeds):
            cmd.append(seeds)
        code, out = run(cmd)
        if code == 0:
            passed += 1
            print("ok fuzz %s" % t)
        else:
            failed += 1
            print("FAIL fuzz %s (exit %d); crash inputs in %s" % (t, code, work))
    if not targets:
        print("fuzz: no targets found")
        failed += 1
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--asan-build")
    ap.add_argument("--fuzz-build")
    ap.add_argument("--only", choices=["unit", "api", "fuzz"])
    args = ap.parse_args()

    results = []
    started = time.time()

    def suite(name, fn, *a):
        t0 = time.time()
        p, f = fn(*a)
        results.append((name, p, f, time.time() - t0))
        print("== %s: %d passed, %d failed (%.0f s)" % (name, p, f, time.time() - t0), flush=True)

    if args.only in (None, "unit"):
        suite("unit", meson_unit, args.build, "unit")
        if args.asan_build:
            suite("unit (asan+ubsan)", meson_unit, args.asan_build, "unit asan")
    if args.only in (None, "api"):
        suite("api (sqlite, postgres)", api_suite, os.path.join(args.build, "roster"), "both",
              "api")
        if args.asan_build:
            suite("api (asan+ubsan; sqlite, postgres)", api_suite,
                  os.path.join(args.asan_build, "roster"), "both", "api asan")
    if args.only in (None, "fuzz") and args.fuzz_build:
        suite("fuzz", fuzz_suite, args.fuzz_build)

    print("")
    for name, p, f, secs in results:
        print("  %-40s %4d passed, %3d failed  %5.0f s" % (name, p, f, secs))
    total_p = sum(r[1] for r in results)
    total_f = sum(r[2] for r in results)
    print("  total time %.0f s" % (time.time() - started))
    print("%d passed, %d failed" % (total_p, total_f))
    sys.exit(1 if total_f or not results else 0)


if __name__ == "__main__":
    main()
