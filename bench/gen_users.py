#!/usr/bin/python3
"""Load N generated users into a running roster through POST /api/v1/users.

Python standard library only. Several threads, each with its own keep-alive
http.client connection, take user indices from a shared counter, so the data
goes through the real API (validation, normalisation, audit events) exactly as
a client's would. Bounded in time: after --deadline seconds no new request is
started and the script reports how many users it made.

The users are deterministic for a given --seed and index: names drawn from
pools that mix ASCII, Latin letters with diacritics (Å, Ö, Ł, ü, ß, ø, ñ, č),
Greek and Cyrillic. Usernames and emails end in the index, so they are unique
even under the server's NFKC case fold. One user in five has a non-ASCII email
local part; if the server refuses that (422 on "email"), the user is retried
once with an ASCII email and the fallback is counted.

Writes the created ids, one a line, to --ids-out, and a JSON summary to stdout.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time

# (display form, ASCII form for emails)
FIRST = [
    ("Anna", "anna"), ("Åsa", "asa"), ("Örjan", "orjan"), ("Łukasz", "lukasz"),
    ("Jürgen", "jurgen"), ("Zoë", "zoe"), ("José", "jose"), ("François", "francois"),
    ("Søren", "soren"), ("Ævar", "aevar"), ("Björn", "bjorn"), ("Małgorzata", "malgorzata"),
    ("Ingrid", "ingrid"), ("Dmitrij", "dmitrij"), ("Chloé", "chloe"), ("Ñusta", "nusta"),
    ("Γιώργος", "giorgos"), ("Ελένη", "eleni"), ("Νίκος", "nikos"), ("Δήμητρα", "dimitra"),
    ("Иван", "ivan"), ("Мария", "maria"), ("Ольга", "olga"), ("Алексей", "aleksei"),
    ("John", "john"), ("Mary", "mary"), ("Peter", "peter"), ("Li", "li"),
]
LAST = [
    ("Smith", "smith"), ("Öberg", "oberg"), ("Åberg", "aberg"), ("Müller", "muller"),
    ("Łęcki", "lecki"), ("Nuñez", "nunez"), ("Dvořák", "dvorak"), ("Straße", "strasse"),
    ("Ødegård", "odegard"), ("Zając", "zajac"), ("Kovačević", "kovacevic"), ("Lindqvist", "lindqvist"),
    ("Çelik", "celik"), ("Weiß", "weiss"), ("Søndergaard", "sondergaard"), ("Ümit", "umit"),
    ("Παπαδόπουλος", "papadopoulos"), ("Σωτηρίου", "sotiriou"), ("Οικονόμου", "oikonomou"),
    ("Иванова", "ivanova"), ("Смирнов", "smirnov"), ("Кузнецова", "kuznetsova"),
    ("Johnson", "johnson"), ("Brown", "brown"), ("Garcia", "garcia"), ("O'Neil", "oneil"),
]
TYPES = ["standard"] * 17 + ["admin", "api", "guest"]


def make_user(seed, i, ascii_email=False):
    r = random.Random(seed * 1_000_003 + i)
    f, fa = r.choice(FIRST)
    l, la = r.choice(LAST)
    # Username: letters of any script, digits, '.', '_', '-'; the index keeps it unique.
    # Some are upper-case so the fold key differs from the stored form.
    uname_last = l.replace("'", "")
    sep = r.choice([".", "_", "-"])
    uname = f"{f}{sep}{uname_last}{i}"
    if r.random() < 0.5:
        uname = uname.lower()
    if not ascii_email and r.random() < 0.2:
        email = f"{f.lower()}.{uname_last.lower()}.{i}@example.org"
    else:
        email = f"{fa}.{la}.{i}@example.com"
    u = {"username": uname, "email": email, "first_name": f, "last_name": l}
    t = r.choice(TYPES)
    if t != "standard":
        u["type"] = t
    return u


class Loader:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.next_index = args.start
        self.end = args.start + args.count
        self.ids = []
        self.statuses = {}
        self.fallbacks = 0
        self.conn_errors = 0
        self.failures = []  # first few non-201 bodies, for the report
        self.deadline = time.monotonic() + args.deadline

    def take(self):
        with self.lock:
            if self.next_index >= self.end or time.monotonic() >= self.deadline:
                return None
            i = self.next_index
            self.next_index += 1
            return i

    def record(self, status, uid=None, body=None):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if uid is not None:
                self.ids.append(uid)
            elif body is not None and len(self.failures) < 5:
                self.failures.append({"status": status, "body": body[:400]})

    def post(self, conn, user):
        body = json.dumps(user, ensure_ascii=False).encode("utf-8")
        conn.request("POST", "/api/v1/users", body=body, headers={
            "Authorization": "Bearer " + self.args.token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        })
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data

    def worker(self):
        conn = None
        while True:
            i = self.take()
            if i is None:
                break
            user = make_user(self.args.seed, i)
            for attempt in range(3):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.args.port, timeout=30)
                    status, data = self.post(conn, user)
                except (OSError, http.client.HTTPException):
                    with self.lock:
                        self.conn_errors += 1
                    if conn is not None:
                        conn.close()
                    conn = None
                    time.sleep(0.01)
                    continue
                if status == 422 and not user["email"].isascii() and b'"email"' in data:
                    with self.lock:
                        self.fallbacks += 1
                    user = make_user(self.args.seed, i, ascii_email=True)
                    continue
                if status == 201:
                    try:
                        uid = json.loads(data)["id"]
                    except (ValueError, KeyError, TypeError):
                        self.record(-201, body=data.decode("utf-8", "replace"))
                        break
                    self.record(201, uid=uid)
                else:
                    self.record(status, body=data.decode("utf-8", "replace"))
                break
        if conn is not None:
            conn.close()

    def run(self):
        t0 = time.monotonic()
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            # Workers stop taking work at the deadline; allow one in-flight request to finish.
            t.join(timeout=max(0.0, self.deadline - time.monotonic()) + 35)
        elapsed = time.monotonic() - t0
        with self.lock:
            ids = sorted(self.ids)
            return {
                "requested": self.args.count,
                "created": len(ids),
                "elapsed_s": round(elapsed, 3),
                "created_per_s": round(len(ids) / elapsed, 1) if elapsed > 0 else 0,
                "threads": self.args.threads,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "unicode_email_fallbacks": self.fallbacks,
                "connection_errors": self.conn_errors,
                "hit_deadline": len(ids) < self.args.count and time.monotonic() - t0 >= self.args.deadline,
                "min_id": ids[0] if ids else None,
                "max_id": ids[-1] if ids else None,
                "first_failures": self.failures,
            }, ids


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--start", type=int, default=1, help="first user index")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--deadline", type=float, default=240.0, help="seconds; no new request after this")
    ap.add_argument("--seed", type=int, default=20261124)
    ap.add_argument("--ids-out", required=True)
    ap.add_argument("--sample", type=int, default=0, help="print N generated users and exit")
    args = ap.parse_args()
    if args.sample:
        for i in range(args.start, args.start + args.sample):
            print(json.dumps(make_user(args.seed, i), ensure_ascii=False))
        return 0
    summary, ids = Loader(args).run()
    with open(args.ids_out, "w") as f:
        for uid in ids:
            f.write(f"{uid}\n")
    json.dump(summary, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0 if ids else 1


if __name__ == "__main__":
    sys.exit(main())
