#!/usr/bin/python3
"""The issue-3 benchmark at one million users: helpers for bench/users_1m.sh.

Python standard library only (plus bench/tools.py). Subcommands:

  users_1m.py gen-hash                      hash of the data generator below (cache key)
  users_1m.py sample-user N                 print user N of the generated set (JSON), N..N+9
  users_1m.py load --port P --token T --count N [--workers W] [--deadline S] [--seed S]
                                            create N users through POST /api/v1/users with
                                            W processes, one keep-alive connection each;
                                            progress on stderr, JSON summary on stdout
  users_1m.py plan --db SQLITE_FILE --out PLAN.json [--seed S]
                                            choose the measured requests from the data:
                                            departments (with sizes), a cursor at the middle
                                            of each department, search fragments
  users_1m.py seq --port P --token T --plan PLAN --results R --backend B --paths-dir D
                                            one keep-alive client, requests one after the
                                            other: latency percentiles; writes the path lists
                                            the wrk runs replay
  users_1m.py explain-sqlite --db FILE --plan PLAN --results R --out PLANS.txt
  users_1m.py explain-pg --psql "psql args" --plan PLAN --results R --out PLANS.txt
                                            the SQL the store runs for these requests (as in
                                            src/store/sqlite.c / postgres.c): query plans and
                                            the time of the count(*) and of the page query
  users_1m.py pg-copy --sqlite FILE --psql "psql args"
                                            copy users and audit_events from the SQLite file
                                            into a migrated, empty PostgreSQL database
  users_1m.py report RESULTS OUT            print the summary table and write it to OUT
"""
import base64
import hashlib
import json
import multiprocessing as mp
import os
import random
import re
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import unicodedata
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tools  # noqa: E402  (bench/tools.py: record, parse_wrk, proc_info, ...)

SEED = 20261124


def log(msg):
    sys.stderr.write(f"[users_1m {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# --- data generator begin ----------------------------------------------------
# Everything between the "begin" and "end" markers is hashed into the cache key
# of the generated SQLite file: change the data and the cache is rebuilt.
#
# The people: a CEO, one head per department, one manager per ~60 staff, and
# staff. Department sizes are uneven (Sales ~18%, Internal Audit ~0.2%), ~2%
# of staff have no department. Names are drawn from Zipf-weighted pools that
# mix English, Nordic, German, Polish, Czech, Spanish, Portuguese, French,
# Italian, Turkish, Greek, Russian, Vietnamese, Chinese, Korean, Japanese and
# Indian names, so many people share a surname (as in a real company) and the
# sort by last name has long runs of ties.

DEPARTMENTS = [  # (name, weight per mille of staff); ~20 departments, uneven
    ("Sales", 180), ("Engineering", 150), ("Customer Support", 120), ("Operations", 90),
    ("Marketing", 70), ("Manufacturing", 60), ("Logistics", 50), ("Finance", 45),
    ("Retail", 40), ("IT", 35), ("Human Resources", 30), ("Product", 25),
    ("Research & Development", 22), ("Quality Assurance", 18), ("Procurement", 14),
    ("Legal", 10), ("Facilities", 8), ("Communications", 6), ("Security", 4),
    ("Executive Office", 1),
]
NO_DEPARTMENT_PER_MILLE = 21

POSITIONS = {
    "Sales": ["Account Executive", "Sales Representative", "Inside Sales Representative",
              "Senior Account Executive", "Sales Engineer", "Key Account Manager"],
    "Engineering": ["Software Engineer", "Senior Software Engineer", "Staff Engineer",
                    "Site Reliability Engineer", "QA Engineer", "Engineering Intern"],
    "Customer Support": ["Support Agent", "Senior Support Agent", "Support Specialist",
                         "Technical Support Engineer"],
    "Operations": ["Operations Analyst", "Operations Coordinator", "Planner"],
    "Marketing": ["Marketing Specialist", "Content Writer", "Designer", "SEO Analyst"],
    "Manufacturing": ["Machine Operator", "Assembly Technician", "Shift Supervisor"],
    "Logistics": ["Warehouse Associate", "Forklift Driver", "Dispatcher"],
    "Finance": ["Accountant", "Financial Analyst", "Controller", "Payroll Specialist"],
    "Retail": ["Store Associate", "Cashier", "Store Manager Assistant"],
    "IT": ["Systems Administrator", "Service Desk Analyst", "Network Engineer"],
    "Human Resources": ["HR Generalist", "Recruiter", "HR Business Partner"],
    "Product": ["Product Manager", "Product Owner", "UX Researcher"],
    "Research & Development": ["Research Scientist", "Lab Technician", "R&D Engineer"],
    "Quality Assurance": ["Quality Inspector", "Quality Engineer"],
    "Procurement": ["Buyer", "Procurement Specialist"],
    "Legal": ["Counsel", "Paralegal", "Compliance Officer"],
    "Facilities": ["Facilities Coordinator", "Maintenance Technician"],
    "Communications": ["Communications Specialist", "Press Officer"],
    "Security": ["Security Analyst", "Security Officer"],
    "Executive Office": ["Executive Assistant", "Chief of Staff"],
}

LOCATIONS = [  # (name, weight)
    ("New York", 120), ("London", 100), ("Stockholm", 60), ("Berlin", 60), ("Warszawa", 50),
    ("São Paulo", 50), ("Zürich", 30), ("Malmö", 25), ("Kraków", 40), ("München", 35),
    ("Praha", 30), ("Madrid", 40), ("Paris", 45), ("Milano", 25), ("İstanbul", 30),
    ("Αθήνα", 20), ("Москва", 25), ("Hà Nội", 20), ("Seoul", 25), ("東京", 30),
    ("Bengaluru", 60), ("Mumbai", 40), ("Toronto", 35), ("Reykjavík", 5), ("Remote", 80),
]

# (display, ASCII) — the ASCII form goes into emails and half of the usernames.
FIRST = [
    ("James", "james"), ("Mary", "mary"), ("John", "john"), ("Anna", "anna"), ("Maria", "maria"),
    ("David", "david"), ("Sarah", "sarah"), ("Michael", "michael"), ("Laura", "laura"),
    ("Emma", "emma"), ("Liam", "liam"), ("Olivia", "olivia"), ("Noah", "noah"),
    ("Åsa", "asa"), ("Örjan", "orjan"), ("Björn", "bjorn"), ("Ingrid", "ingrid"), ("Sven", "sven"),
    ("Karin", "karin"), ("Søren", "soren"), ("Øystein", "oystein"), ("Mette", "mette"),
    ("Ævar", "aevar"), ("Þóra", "thora"), ("Sigurður", "sigurdur"), ("Dagný", "dagny"),
    ("Jürgen", "jurgen"), ("Hans", "hans"), ("Sophie", "sophie"), ("Jörg", "jorg"),
    ("Łukasz", "lukasz"), ("Małgorzata", "malgorzata"), ("Paweł", "pawel"), ("Katarzyna", "katarzyna"),
    ("Zdeněk", "zdenek"), ("Jiří", "jiri"), ("Tomáš", "tomas"), ("Kateřina", "katerina"),
    ("José", "jose"), ("Lucía", "lucia"), ("Álvaro", "alvaro"), ("Ñusta", "nusta"), ("Carlos", "carlos"),
    ("João", "joao"), ("Conceição", "conceicao"), ("Inês", "ines"),
    ("François", "francois"), ("Chloé", "chloe"), ("Émile", "emile"), ("Zoë", "zoe"),
    ("Giulia", "giulia"), ("Niccolò", "niccolo"), ("Ahmet", "ahmet"), ("Ayşe", "ayse"),
    ("Kaisa", "kaisa"), ("Päivi", "paivi"), ("Jyrki", "jyrki"),
    ("Γιώργος", "giorgos"), ("Ελένη", "eleni"), ("Νίκος", "nikos"), ("Δήμητρα", "dimitra"),
    ("Иван", "ivan"), ("Мария", "mariya"), ("Ольга", "olga"), ("Алексей", "aleksei"),
    ("Дмитрий", "dmitrii"), ("Minh", "minh"), ("Thảo", "thao"), ("Linh", "linh"),
    ("Wei", "wei"), ("Li", "li"), ("Xiaoming", "xiaoming"), ("Ji-ho", "ji-ho"), ("Seo-yeon", "seo-yeon"),
    ("Hiroshi", "hiroshi"), ("Yuki", "yuki"), ("Priya", "priya"), ("Arjun", "arjun"),
    ("Ananya", "ananya"), ("Rahul", "rahul"), ("Mohammed", "mohammed"), ("Fatima", "fatima"),
]
LAST = [
    ("Smith", "smith"), ("Johnson", "johnson"), ("Brown", "brown"), ("Garcia", "garcia"),
    ("Müller", "muller"), ("Schmidt", "schmidt"), ("Schneider", "schneider"), ("Weiß", "weiss"),
    ("Andersson", "andersson"), ("Johansson", "johansson"), ("Nilsson", "nilsson"), ("Öberg", "oberg"),
    ("Åberg", "aberg"), ("Lindqvist", "lindqvist"), ("Jørgensen", "jorgensen"), ("Ødegård", "odegard"),
    ("Søndergaard", "sondergaard"), ("Sigurðsson", "sigurdsson"), ("Jónsdóttir", "jonsdottir"),
    ("Nowak", "nowak"), ("Kowalski", "kowalski"), ("Wiśniewska", "wisniewska"), ("Wójcik", "wojcik"),
    ("Łęcki", "lecki"), ("Zając", "zajac"), ("Novák", "novak"), ("Dvořák", "dvorak"), ("Černý", "cerny"),
    ("González", "gonzalez"), ("Rodríguez", "rodriguez"), ("Nuñez", "nunez"), ("Peña", "pena"),
    ("de la Cruz", "delacruz"), ("Silva", "silva"), ("Santos", "santos"), ("Conceição", "conceicao"),
    ("Martin", "martin"), ("Dubois", "dubois"), ("Lefèvre", "lefevre"), ("Moreau", "moreau"),
    ("Rossi", "rossi"), ("Bianchi", "bianchi"), ("Ferrari", "ferrari"), ("van der Berg", "vanderberg"),
    ("Yılmaz", "yilmaz"), ("Çelik", "celik"), ("Şahin", "sahin"), ("Kovačević", "kovacevic"),
    ("Horvat", "horvat"), ("Virtanen", "virtanen"), ("Mäkinen", "makinen"), ("Häkkinen", "hakkinen"),
    ("Παπαδόπουλος", "papadopoulos"), ("Σωτηρίου", "sotiriou"), ("Οικονόμου", "oikonomou"),
    ("Иванова", "ivanova"), ("Смирнов", "smirnov"), ("Кузнецова", "kuznetsova"), ("Попов", "popov"),
    ("Nguyễn", "nguyen"), ("Trần", "tran"), ("Lê", "le"), ("Wang", "wang"), ("Zhang", "zhang"),
    ("Chen", "chen"), ("Liu", "liu"), ("Kim", "kim"), ("Park", "park"), ("Lee", "lee"),
    ("Tanaka", "tanaka"), ("Suzuki", "suzuki"), ("Satō", "sato"), ("Patel", "patel"),
    ("Sharma", "sharma"), ("Singh", "singh"), ("Kumar", "kumar"), ("Haddad", "haddad"),
    ("O'Neil", "oneil"), ("O'Brien", "obrien"), ("MacDonald", "macdonald"), ("Murphy", "murphy"),
    ("Kelly", "kelly"), ("Walsh", "walsh"), ("Straße", "strasse"), ("Ümit", "umit"),
]
DOMAINS = ["example.com", "example.com", "example.com", "corp.example.net", "example.org"]
COUNTRY_CODES = ["1", "44", "46", "49", "48", "55", "41", "33", "39", "90", "30", "7", "84", "82",
                 "81", "91"]


def _cumulative(weights):
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def _zipf(n, s=0.75):
    return _cumulative([1.0 / (r + 1) ** s for r in range(n)])


_FIRST_CUM = _zipf(len(FIRST), 0.6)
_LAST_CUM = _zipf(len(LAST), 0.8)
_LOC_CUM = _cumulative([w for _, w in LOCATIONS])
_DEPT_CUM = _cumulative([w for _, w in DEPARTMENTS] + [NO_DEPARTMENT_PER_MILLE])


def _pick(r, items, cum):
    return r.choices(items, cum_weights=cum, k=1)[0]


def layout(count):
    """Index ranges of the roles: 0 the CEO, 1..D heads, then managers, then staff."""
    d = len(DEPARTMENTS)
    managers = max(1, count // 60)
    return {"ceo": (0, 1), "head": (1, 1 + d), "manager": (1 + d, 1 + d + managers),
            "staff": (1 + d + managers, count)}


def role_of(i, lay):
    for role in ("ceo", "head", "manager", "staff"):
        a, b = lay[role]
        if a <= i < b:
            return role
    raise ValueError(i)


def department_of(seed, i, lay):
    """Department index (None: no department) of person i; deterministic."""
    role = role_of(i, lay)
    if role == "ceo":
        return len(DEPARTMENTS) - 1  # Executive Office
    if role == "head":
        return i - lay["head"][0]
    r = random.Random(seed * 7_000_003 + i * 31 + 7)
    names = list(range(len(DEPARTMENTS))) + [None]
    if role == "manager":
        return _pick(r, names[:-1], _DEPT_CUM[:-1])
    return _pick(r, names, _DEPT_CUM)


def manager_pools(seed, lay):
    """For each department, the indices of its managers (in index order)."""
    pools = {k: [] for k in range(len(DEPARTMENTS))}
    a, b = lay["manager"]
    for i in range(a, b):
        pools[department_of(seed, i, lay)].append(i)
    return pools


def make_user(seed, i, lay, pools, idmap, ascii_email=False):
    """The request body for person i. idmap: index -> id of already created
    people (the CEO, heads and managers), for manager_id."""
    r = random.Random(seed * 1_000_003 + i)
    role = role_of(i, lay)
    f, fa = _pick(r, FIRST, _FIRST_CUM)
    l, la = _pick(r, LAST, _LAST_CUM)
    uname_last = re.sub(r"[^\w.-]", "", l)  # "de la Cruz" -> "delaCruz", "O'Neil" -> "ONeil"
    sep = r.choice([".", ".", "_", "-"])
    if r.random() < 0.5:
        uname = f"{fa}{sep}{la}{i}"
    else:
        uname = f"{f}{sep}{uname_last}{i}"  # letters of any script
        if r.random() < 0.5:
            uname = uname.lower()
    dom = r.choice(DOMAINS)
    if not ascii_email and r.random() < 0.05:
        email = f"{f.lower()}.{uname_last.lower()}{i}@{dom}"  # non-ASCII local part
    else:
        email = f"{fa}.{la}{i}@{dom}"
    u = {"username": uname, "email": email, "first_name": f, "last_name": l}
    dep = department_of(seed, i, lay)
    if dep is not None:
        dname = DEPARTMENTS[dep][0]
        u["department"] = dname
        if role == "ceo":
            u["position"] = "Chief Executive Officer"
        elif role == "head":
            u["position"] = f"Head of {dname}"
        elif role == "manager":
            u["position"] = r.choice([f"{dname} Manager", "Team Lead", "Group Manager"])
        else:
            u["position"] = r.choice(POSITIONS[dname])
    elif r.random() < 0.5:
        u["position"] = r.choice(["Contractor", "Consultant", "Temporary Worker"])
    u["location"] = _pick(r, [n for n, _ in LOCATIONS], _LOC_CUM)
    if r.random() < 0.95:
        u["employee_id"] = f"E{i:07d}"
    if r.random() < 0.7:
        digits = "".join(str(r.randrange(10)) for _ in range(9))
        u["phone"] = f"+{r.choice(COUNTRY_CODES)} {digits[:3]} {digits[3:6]} {digits[6:]}"
    # manager_id: heads report to the CEO, managers to their head, most staff
    # to a manager of their department.
    mgr_index = None
    if role == "head":
        mgr_index = lay["ceo"][0]
    elif role == "manager":
        mgr_index = lay["head"][0] + dep
    elif role == "staff" and dep is not None and r.random() < 0.92:
        pool = pools.get(dep) or []
        mgr_index = r.choice(pool) if pool else lay["head"][0] + dep
    if mgr_index is not None and mgr_index in idmap:
        u["manager_id"] = idmap[mgr_index]
    t = r.random()
    if role == "staff":
        if t < 0.002:
            u["type"] = "admin"
        elif t < 0.012:
            u["type"] = "api"
        elif t < 0.032:
            u["type"] = "guest"
        if r.random() < 0.03:
            u["status"] = "pending"
    # No "role": roles are references to defined roles now (422 rule exists
    # for an unknown one), and the benchmark defines none.
    return u
# --- data generator end ------------------------------------------------------


def gen_hash():
    with open(os.path.abspath(__file__), encoding="utf-8") as f:
        src = f.read()
    a = src.index("# --- data generator begin")
    b = src.index("# --- data generator end")
    return hashlib.sha256(src[a:b].encode()).hexdigest()[:16]


# --- a minimal keep-alive HTTP/1.1 client (cheap per request: the loader and
# the latency client share the 2 cores with the server) -----------------------

class Conn:
    def __init__(self, port, token, timeout=120.0):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b""
        self.auth = f"Authorization: Bearer {token}\r\n".encode()

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf = b""

    def _recv(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def _read_response(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            self._recv()
        head = self.buf[:i].decode("latin-1")
        self.buf = self.buf[i + 4:]
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdr = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdr[k.strip().lower()] = v.strip()
        if hdr.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._recv()
                j = self.buf.index(b"\r\n")
                n = int(self.buf[:j].split(b";")[0], 16)
                while len(self.buf) < j + 2 + n + 2:
                    self._recv()
                body += self.buf[j + 2:j + 2 + n]
                self.buf = self.buf[j + 2 + n + 2:]
                if n == 0:
                    break
        else:
            n = int(hdr.get("content-length", "0"))
            while len(self.buf) < n:
                self._recv()
            body, self.buf = self.buf[:n], self.buf[n:]
        if hdr.get("connection", "").lower() == "close":
            self.close()
        return status, body

    def request(self, method, path, body=None):
        """(status, body bytes, seconds from first byte sent to last byte read)."""
        req = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + self.auth
        req += b"Accept: application/json\r\n"
        if body is not None:
            req += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        else:
            req += b"\r\n"
        for attempt in range(2):
            if self.sock is None:
                self._connect()
            t0 = time.perf_counter()
            try:
                self.sock.sendall(req)
                status, data = self._read_response()
                return status, data, time.perf_counter() - t0
            except (OSError, ConnectionError, ValueError, IndexError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


# --- load ---------------------------------------------------------------------

def _load_worker(w, nworkers, port, token, seed, count, lay, pools, idmap, lo, hi, deadline,
                 progress, want_ids, out_q):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides
    conn = Conn(port, token, timeout=60)
    statuses, ids, failures = {}, {}, []
    fallbacks = conn_errors = 0
    local = 0
    i = lo + w
    while i < hi:
        if time.time() >= deadline:
            break
        user = make_user(seed, i, lay, pools, idmap)
        for attempt in range(3):
            body = json.dumps(user, ensure_ascii=False, separators=(",", ":")).encode()
            try:
                status, data, _ = conn.request("POST", "/api/v1/users", body)
            except (OSError, ConnectionError, ValueError):
                conn_errors += 1
                time.sleep(0.05)
                continue
            if status == 422 and not user["email"].isascii() and b'"email"' in data:
                fallbacks += 1
                user = make_user(seed, i, lay, pools, idmap, ascii_email=True)
                continue
            statuses[status] = statuses.get(status, 0) + 1
            if status == 201:
                if want_ids:
                    m = re.search(rb'"id":(\d+)', data)
                    if m:
                        ids[i] = int(m.group(1))
            elif len(failures) < 5:
                failures.append({"index": i, "status": status, "body": data[:300].decode("utf-8", "replace")})
            break
        local += 1
        if local == 200:
            with progress.get_lock():
                progress.value += local
            local = 0
        i += nworkers
    with progress.get_lock():
        progress.value += local
    conn.close()
    out_q.put({"statuses": statuses, "ids": ids, "failures": failures, "fallbacks": fallbacks,
               "conn_errors": conn_errors})


def cmd_load(args):
    count, workers, seed = args.count, args.workers, args.seed
    lay = layout(count)
    pools = manager_pools(seed, lay)
    deadline = time.time() + args.deadline
    progress = mp.Value("q", 0)
    idmap = {}
    total_status, failures = {}, []
    fallbacks = conn_errors = 0
    t_start = time.monotonic()
    marks = []  # (created so far, seconds) every 10%
    stopping = {"flag": False}

    def on_term(signum, frame):
        stopping["flag"] = True
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    phases = [("ceo", 1), ("head", 1), ("manager", workers), ("staff", workers)]
    last_print = time.monotonic()
    last_done = 0
    next_mark = count // 10
    for role, nw in phases:
        lo, hi = lay[role]
        if lo >= hi:
            continue
        want_ids = role != "staff"
        q = mp.Queue()
        procs = [mp.Process(target=_load_worker, daemon=True,
                            args=(w, nw, args.port, args.token, seed, count, lay, pools, idmap,
                                  lo, hi, deadline, progress, want_ids, q)) for w in range(nw)]
        for p in procs:
            p.start()
        results = []
        while len(results) < nw:
            try:
                results.append(q.get(timeout=1.0))
            except Exception:  # queue.Empty
                if not any(p.is_alive() for p in procs) and q.empty():
                    break
            now = time.monotonic()
            done = progress.value
            while next_mark and done >= next_mark and len(marks) < 10:
                marks.append((next_mark, round(now - t_start, 1)))
                next_mark += count // 10
            if now - last_print >= args.progress_every:
                rate_now = (done - last_done) / (now - last_print)
                avg = done / (now - t_start)
                eta = (count - done) / avg if avg > 0 else 0
                log(f"load: {done:,}/{count:,} ({100.0 * done / count:.1f}%), "
                    f"{rate_now:,.0f}/s now, {avg:,.0f}/s average, ETA {int(eta) // 60}m{int(eta) % 60:02d}s")
                last_print, last_done = now, done
        for p in procs:
            p.join(timeout=10)
        for r in results:
            for k, v in r["statuses"].items():
                total_status[k] = total_status.get(k, 0) + v
            idmap.update(r["ids"])
            failures.extend(r["failures"][: max(0, 5 - len(failures))])
            fallbacks += r["fallbacks"]
            conn_errors += r["conn_errors"]
        if len(results) < nw:
            log(f"load: {nw - len(results)} worker(s) of phase {role} died without a report")
        if time.time() >= deadline:
            break
    elapsed = time.monotonic() - t_start
    done = progress.value
    while next_mark and done >= next_mark and len(marks) < 10:
        marks.append((next_mark, round(elapsed, 1)))
        next_mark += count // 10
    created = total_status.get(201, 0)
    # creates/s per tenth of the load: does the rate fall as the tables grow?
    tenths, prev = [], (0, 0.0)
    for n, t in marks:
        if t > prev[1]:
            tenths.append(round((n - prev[0]) / (t - prev[1])))
        prev = (n, t)
    summary = {
        "requested": count, "created": created, "elapsed_s": round(elapsed, 1),
        "created_per_s": round(created / elapsed, 1) if elapsed > 0 else 0,
        "workers": workers, "statuses": {str(k): v for k, v in sorted(total_status.items())},
        "unicode_email_fallbacks": fallbacks, "connection_errors": conn_errors,
        "hit_deadline": created < count and time.time() >= deadline,
        "rate_per_tenth": tenths, "managers_created": len(idmap), "first_failures": failures,
    }
    json.dump(summary, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0 if created else 1


# --- the measured requests ------------------------------------------------------

def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def cmd_plan(args):
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    r = random.Random(args.seed)
    depts = db.execute("SELECT department, count(*) FROM users WHERE department <> '' "
                       "GROUP BY department ORDER BY count(*) DESC").fetchall()
    plan = {"departments": [], "search": [], "search2": [], "search_common": []}
    for name, n in depts:
        mid = db.execute("SELECT last_name, id FROM users WHERE department = ? "
                         "ORDER BY last_name, id LIMIT 1 OFFSET ?", (name, n // 2)).fetchone()
        plan["departments"].append({"name": name, "users": n, "mid_last_name": mid[0], "mid_id": mid[1]})
    maxid = db.execute("SELECT max(id) FROM users").fetchone()[0]
    total = db.execute("SELECT count(*) FROM users").fetchone()[0]
    plan["users"] = total

    def fragment(text, lo, hi):
        text = text.strip()
        if len(text) < lo:
            return None
        n = r.randint(lo, min(hi, len(text)))
        s = r.randint(0, len(text) - n)
        frag = text[s:s + n]
        if frag.strip() != frag or not frag.strip():
            return None
        return frag

    kinds = [("last_name", 40), ("first_name", 15), ("email", 25), ("employee_id", 20)]
    while len(plan["search"]) < 200:
        uid = r.randint(2, maxid)
        row = db.execute("SELECT first_name, last_name, email, employee_id FROM users WHERE id = ?",
                         (uid,)).fetchone()
        if not row:
            continue
        kind = r.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        val = {"first_name": row[0], "last_name": row[1], "email": row[2].split("@")[0],
               "employee_id": row[3]}[kind]
        frag = fragment(val or "", 3, 6)
        if frag:
            plan["search"].append({"q": frag, "kind": kind})
    while len(plan["search2"]) < 30:
        uid = r.randint(2, maxid)
        row = db.execute("SELECT last_name, first_name FROM users WHERE id = ?", (uid,)).fetchone()
        if row:
            frag = fragment(row[r.randrange(2)], 2, 2)
            if frag:
                plan["search2"].append({"q": frag, "kind": "name"})
    # A rare fragment whose matches all sit at the end of the id order: the
    # first 6 characters of the newest employee id (~100 matches).
    last_emp = db.execute("SELECT employee_id FROM users WHERE employee_id <> '' ORDER BY id DESC LIMIT 1").fetchone()
    plan["search_rare"] = {"q": (last_emp[0] if last_emp else "E09999")[:6], "kind": "employee_id"}
    # Terms in nearly every row: the email domain, a first-name trigram.
    plan["search_common"] = [{"q": "example", "kind": "domain"}, {"q": "exa", "kind": "domain"}]
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(plan, f, ensure_ascii=False, indent=1)
    log(f"plan: {len(depts)} departments (largest {depts[0][0]} {depts[0][1]:,}, smallest "
        f"{depts[-1][0]} {depts[-1][1]:,}), {total:,} users, {len(plan['search'])} search fragments")
    return 0


def list_path(dept, cursor=None):
    p = f"/api/v1/users?department={urllib.parse.quote(dept, safe='')}&sort=last_name&limit=50"
    if cursor:
        p += f"&cursor={urllib.parse.quote(cursor, safe='')}"
    return p


def search_path(q):
    return f"/api/v1/users?q={urllib.parse.quote(q, safe='')}&limit=50"


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def lat_summary(samples_s):
    ms = [s * 1000.0 for s in samples_s]
    return {"n": len(ms), "p50": pct(ms, 50), "p90": pct(ms, 90), "p99": pct(ms, 99),
            "max": max(ms) if ms else None, "mean": statistics.fmean(ms) if ms else None}


def craft_cursor(sample_cursor, value, uid):
    """A cursor at (value, uid), in the format the server issues (see
    rs_cursor_encode): base64url of "c1" \\x1f "<field>:<dir>:<value>" \\x1f "<id>"."""
    try:
        raw = b64url_decode(sample_cursor).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    parts = raw.split("\x1f")
    if len(parts) != 3 or parts[0] != "c1" or parts[1].count(":") < 2:
        return None
    field, d, _ = parts[1].split(":", 2)
    return b64url_encode(f"c1\x1f{field}:{d}:{value}\x1f{uid}".encode("utf-8"))


def cmd_seq(args):
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    b = args.backend
    rec = lambda k, v: tools.record(args.results, b, k, v)  # noqa: E731
    conn = Conn(args.port, args.token)
    r = random.Random(args.seed)
    depts = plan["departments"]
    bad = {}

    def get(path):
        status, body, dt = conn.request("GET", path)
        if status != 200:
            bad[status] = bad.get(status, 0) + 1
            if len(bad) == 1 and bad[status] == 1:
                log(f"{b}: GET {path} -> {status}: {body[:200]!r}")
            return None, dt
        return body, dt

    # Warm-up: every department once, a few searches (not measured).
    for d in depts:
        get(list_path(d["name"]))
    for s in plan["search"][:20]:
        get(search_path(s["q"]))

    # 1. Page 1, departments in a shuffled round-robin (never the same twice in a row).
    order = []
    while len(order) < args.requests:
        block = list(range(len(depts)))
        r.shuffle(block)
        if order and block[0] == order[-1]:
            block.append(block.pop(0))
        order.extend(block)
    order = order[:args.requests]
    per_dept = {d["name"]: {"p1": [], "p2": [], "deep": []} for d in depts}
    cursors, totals = {}, {}
    p1 = []
    for k in order:
        d = depts[k]["name"]
        body, dt = get(list_path(d))
        p1.append(dt)
        per_dept[d]["p1"].append(dt)
        if body and d not in cursors:
            j = json.loads(body)
            cursors[d] = j.get("next_cursor")
            totals[d] = j.get("total")
            if len(j.get("items", [])) != 50:
                log(f"{b}: {d}: page 1 has {len(j.get('items', []))} items")
    rec("list_p1", lat_summary(p1))
    # 2. Page 2 through the next_cursor of page 1.
    p2 = []
    for k in order:
        d = depts[k]["name"]
        if not cursors.get(d):
            continue
        body, dt = get(list_path(d, cursors[d]))
        p2.append(dt)
        per_dept[d]["p2"].append(dt)
    rec("list_p2", lat_summary(p2))
    # 3. A deep page: a cursor at the middle of the department (what "next"
    # costs after paging half-way through, or a bookmarked cursor).
    deep = []
    sample = next((c for c in cursors.values() if c), None)
    deep_ok = sample and craft_cursor(sample, "x", 1)
    if deep_ok:
        for k in order[: args.requests // 2]:
            d = depts[k]
            cur = craft_cursor(sample, d["mid_last_name"], d["mid_id"])
            body, dt = get(list_path(d["name"], cur))
            deep.append(dt)
            per_dept[d["name"]]["deep"].append(dt)
        rec("list_deep", lat_summary(deep))
    else:
        rec("notes", "deep page not measured: the cursor format is not the expected one")
    dept_rows = []
    for d in depts:
        pd = per_dept[d["name"]]
        dept_rows.append({"name": d["name"], "users": d["users"], "total": totals.get(d["name"]),
                          "p1_p50": pct([x * 1000 for x in pd["p1"]], 50),
                          "p2_p50": pct([x * 1000 for x in pd["p2"]], 50),
                          "deep_p50": pct([x * 1000 for x in pd["deep"]], 50)})
    rec("list_by_department", dept_rows)

    # 4. Search, 3-6 characters.
    lat, matches, by_kind = [], [], {}
    for s in plan["search"][: args.requests]:
        body, dt = get(search_path(s["q"]))
        lat.append(dt)
        by_kind.setdefault(s["kind"], []).append(dt)
        if body:
            matches.append(json.loads(body).get("total", 0))
    rec("search", lat_summary(lat))
    rec("search_matches", {"median": pct(matches, 50), "p90": pct(matches, 90), "max": max(matches or [0])})
    rec("search_by_kind", {k: {"n": len(v), "p50": pct([x * 1000 for x in v], 50)} for k, v in by_kind.items()})
    # 5. Two characters (no trigram: a scan).
    lat, matches = [], []
    for s in plan["search2"]:
        body, dt = get(search_path(s["q"]))
        lat.append(dt)
        if body:
            matches.append(json.loads(body).get("total", 0))
    rec("search2", lat_summary(lat))
    rec("search2_matches", {"median": pct(matches, 50), "max": max(matches or [0])})
    # 6. A term in (nearly) every row.
    for s in plan["search_common"]:
        lat, tot = [], None
        for _ in range(3):
            body, dt = get(search_path(s["q"]))
            lat.append(dt)
            if body:
                tot = json.loads(body).get("total")
        rec(f"search_common_{s['q']}", dict(lat_summary(lat), total=tot))
    if bad:
        rec("notes", f"sequential client: non-200 answers {bad}")
    conn.close()

    # Paths for wrk: page 1 of every department (in the shuffled order) and the searches.
    os.makedirs(args.paths_dir, exist_ok=True)
    with open(os.path.join(args.paths_dir, "list.paths"), "w", encoding="utf-8") as f:
        for k in order:
            f.write(list_path(depts[k]["name"]) + "\n")
    with open(os.path.join(args.paths_dir, "search.paths"), "w", encoding="utf-8") as f:
        for s in plan["search"]:
            f.write(search_path(s["q"]) + "\n")
    return 0


# --- the store's SQL, for plans and direct timings ---------------------------------

SQ_COLS = ("id, username, email, first_name, last_name, type, status, created_at, updated_at, version, "
           "phone, employee_id, department, position, location, role, manager_id, status_reason, "
           "status_note, status_changed_at, custom_json, last_login_at, erased_at")
PG_COLS = SQ_COLS


def sqlite_queries(plan):
    """(label, sql, params) as sq_user_list builds them (src/store/sqlite.c)."""
    d0 = plan["departments"][0]
    s3 = next(s for s in plan["search"] if s["kind"] == "last_name")
    s2 = plan["search2"][0]
    fts = lambda q: '"' + q.casefold().replace('"', '""') + '"'  # noqa: E731 (fold ~ rs_fold_key)
    like = lambda q: "%" + q.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"  # noqa: E731
    return [
        ("list page 1: " + d0["name"],
         f"SELECT {SQ_COLS} FROM users WHERE 1=1 AND department = ? ORDER BY last_name, id LIMIT 51",
         (d0["name"],)),
        ("list count: " + d0["name"], "SELECT count(*) FROM users WHERE 1=1 AND department = ?",
         (d0["name"],)),
        ("list deep page (cursor at the middle): " + d0["name"],
         f"SELECT {SQ_COLS} FROM users WHERE 1=1 AND department = ? AND (last_name, id) > (?, ?) "
         "ORDER BY last_name, id LIMIT 51",
         (d0["name"], d0["mid_last_name"], d0["mid_id"])),
        (f"search page: q={s3['q']}",
         f"SELECT {SQ_COLS} FROM users_fts JOIN users ON users.id = users_fts.rowid WHERE "
         "users_fts MATCH ? ORDER BY users_fts.rowid LIMIT 51", (fts(s3["q"]),)),
        (f"search count: q={s3['q']}",
         "SELECT count(*) FROM users_fts WHERE users_fts MATCH ?", (fts(s3["q"]),)),
        (f"search page, 2 chars: q={s2['q']}",
         f"SELECT {SQ_COLS} FROM users WHERE 1=1 AND search_key LIKE ? ESCAPE '\\' ORDER BY id LIMIT 51",
         (like(s2["q"]),)),
        (f"search count, 2 chars: q={s2['q']}",
         "SELECT count(*) FROM users WHERE 1=1 AND search_key LIKE ? ESCAPE '\\'", (like(s2["q"]),)),
    ]


def _time_sqlite(db, sql, params, reps=5):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        db.execute(sql, params).fetchall()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts)


def cmd_explain_sqlite(args):
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    db.execute("PRAGMA mmap_size=268435456")  # as the server's read connections
    out = [f"SQLite {sqlite3.sqlite_version}: plans of the SQL src/store/sqlite.c runs "
           f"(sqlite_stat1 present: {bool(db.execute(chr(32).join(['SELECT count(*) FROM sqlite_master', 'WHERE name=?']), ('sqlite_stat1',)).fetchone()[0])})", ""]
    timings = {}
    for label, sql, params in sqlite_queries(plan):
        rows = db.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        ms = _time_sqlite(db, sql, params)
        timings[label] = round(ms, 2)
        out.append(f"-- {label}   [{ms:.2f} ms, median of 5, in-process]")
        out.append("   " + sql.replace(SQ_COLS, "<cols>"))
        for row in rows:
            out.append(f"   {'  ' * (0 if row[1] == 0 else 1)}{row[3]}")
        out.append("")
    # count(*) by department size: the cost every list page pays for "total".
    out.append("-- count(*) of a department filter by department size (in-process, median of 5):")
    counts = []
    for d in plan["departments"]:
        ms = _time_sqlite(db, "SELECT count(*) FROM users WHERE 1=1 AND department = ?", (d["name"],))
        counts.append({"name": d["name"], "users": d["users"], "count_ms": round(ms, 2)})
        out.append(f"   {d['name']:<24} {d['users']:>9,} users  {ms:8.2f} ms")
    out.append("")
    # Search: count and page per query kind, over the first 40 planned searches.
    cq, pq = [], []
    for s in plan["search"][:40]:
        p = ('"' + s["q"].casefold().replace('"', '""') + '"',)
        cq.append(_time_sqlite(db, "SELECT count(*) FROM users_fts WHERE users_fts MATCH ?", p, 1))
        pq.append(_time_sqlite(db, f"SELECT {SQ_COLS} FROM users_fts JOIN users ON users.id = "
                                   "users_fts.rowid WHERE users_fts MATCH ? ORDER BY users_fts.rowid "
                                   "LIMIT 51", p, 1))
    tools.record(args.results, "sqlite", "sql_search_ms", {"count_p50": pct(cq, 50), "page_p50": pct(pq, 50)})
    tools.record(args.results, "sqlite", "sql_count_by_department", counts)
    tools.record(args.results, "sqlite", "sql_timings", timings)
    out.append(f"-- search over 40 planned fragments: count(*) median {pct(cq, 50):.2f} ms, "
               f"page median {pct(pq, 50):.2f} ms")
    out.append("")
    # Candidate fixes: NOT what the server runs; same results (checked), timed the same way.
    out.append("== other forms (not what the server runs; same rows where checked) ==")
    alt = {}
    d0 = plan["departments"][0]
    s3 = next(s for s in plan["search"] if s["kind"] == "last_name")
    now = dict((lbl, (sql, prm)) for lbl, sql, prm in sqlite_queries(plan))
    fts3 = ('"' + s3["q"].casefold().replace('"', '""') + '"',)
    cands = [
        ("deep page, the OR form (mixed directions; before 0005): (k > ?) OR (k = ? AND id > ?)",
         f"SELECT {SQ_COLS} FROM users WHERE 1=1 AND department = ? AND ((last_name > ?) OR "
         "(last_name = ? AND id > ?)) ORDER BY last_name, id LIMIT 51",
         (d0["name"], d0["mid_last_name"], d0["mid_last_name"], d0["mid_id"]),
         "list deep page (cursor at the middle): " + d0["name"], False),
        ("list count capped at 10,001 rows: count(*) FROM (SELECT 1 ... LIMIT 10001)",
         "SELECT count(*) FROM (SELECT 1 FROM users WHERE 1=1 AND department = ? LIMIT 10001)",
         (d0["name"],), None, None),  # capped: 10,001 where the exact count is larger
        (f"search count joined to users (other filters, or before 0005): q={s3['q']}",
         "SELECT count(*) FROM users WHERE 1=1 AND id IN (SELECT rowid FROM users_fts WHERE users_fts MATCH ?)",
         fts3, f"search count: q={s3['q']}", False),
        (f"search page, id IN (FTS) then ORDER BY id (sorts other than id, or before 0005): q={s3['q']}",
         f"SELECT {SQ_COLS} FROM users WHERE 1=1 AND id IN (SELECT rowid FROM users_fts WHERE "
         "users_fts MATCH ?) ORDER BY id LIMIT 51", fts3, f"search page: q={s3['q']}", False),
        ("search page driven by FTS, q=exa (in every row)",
         f"SELECT {SQ_COLS.replace('id, ', 'users.id, ', 1)} FROM users_fts JOIN users ON users.id = users_fts.rowid "
         "WHERE users_fts MATCH ? ORDER BY users_fts.rowid LIMIT 51", ('"exa"',), None, None),
        ("search page, id IN (FTS) form, q=exa",
         f"SELECT {SQ_COLS} FROM users WHERE 1=1 AND id IN (SELECT rowid FROM users_fts WHERE "
         "users_fts MATCH ?) ORDER BY id LIMIT 51", ('"exa"',), None, None),
        ("search count joined to users, q=exa",
         "SELECT count(*) FROM users WHERE 1=1 AND id IN (SELECT rowid FROM users_fts WHERE users_fts MATCH ?)",
         ('"exa"',), None, None),
        ("search count on the FTS table alone, q=exa", "SELECT count(*) FROM users_fts WHERE users_fts MATCH ?",
         ('"exa"',), None, None),
    ]
    for label, sql, prm, same_as, _ in cands:
        ms = _time_sqlite(db, sql, prm)
        check = ""
        if same_as and same_as in now:
            a = db.execute(sql, prm).fetchall()
            b = db.execute(*now[same_as]).fetchall()
            check = " same rows" if a == b else " ROWS DIFFER"
        alt[label] = round(ms, 2)
        rows = db.execute("EXPLAIN QUERY PLAN " + sql, prm).fetchall()
        out.append(f"-- {label}   [{ms:.2f} ms{check}]")
        out.append("   " + sql.replace(SQ_COLS, "<cols>"))
        for row in rows:
            out.append(f"   {row[3]}")
        out.append("")
    tools.record(args.results, "sqlite", "sql_alternatives", alt)
    # What ANALYZE would change (on a scratch copy of the schema stats only).
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return 0


def pg_queries(plan):
    d0 = plan["departments"][0]
    s3 = next(s for s in plan["search"] if s["kind"] == "last_name")
    s2 = plan["search2"][0]
    lit = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731
    esc = lambda q: q.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")  # noqa: E731
    like = lambda q: f" AND search_key LIKE '%' || {lit(esc(q))}::text || '%' ESCAPE E'\\\\'"  # noqa: E731
    dep = f" AND department = {lit(d0['name'])}"
    return [
        ("list count: " + d0["name"], f"SELECT count(*) FROM users WHERE TRUE{dep}"),
        ("list page 1: " + d0["name"],
         f"SELECT {PG_COLS} FROM users WHERE TRUE{dep} ORDER BY last_name COLLATE \"C\" ASC, id ASC LIMIT 51"),
        ("list deep page (cursor at the middle): " + d0["name"],
         f"SELECT {PG_COLS} FROM users WHERE TRUE{dep} AND "
         f"(last_name COLLATE \"C\", id) > ({lit(d0['mid_last_name'])}, {d0['mid_id']})"
         " ORDER BY last_name COLLATE \"C\" ASC, id ASC LIMIT 51"),
        (f"search count: q={s3['q']}", f"SELECT count(*) FROM users WHERE TRUE{like(s3['q'])}"),
        (f"search page: q={s3['q']}",
         f"SELECT {PG_COLS} FROM users WHERE TRUE{like(s3['q'])} ORDER BY id ASC LIMIT 51"),
        (f"search count, 2 chars: q={s2['q']}", f"SELECT count(*) FROM users WHERE TRUE{like(s2['q'])}"),
        (f"search page, 2 chars: q={s2['q']}",
         f"SELECT {PG_COLS} FROM users WHERE TRUE{like(s2['q'])} ORDER BY id ASC LIMIT 51"),
    ]


def psql(psql_args, sql, stdin=None):
    cmd = shlex.split(psql_args) + ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"psql failed: {r.stderr.strip()[:500]} (sql: {sql[:200]})")
    return r.stdout


def cmd_explain_pg(args):
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)
    out = [psql(args.psql, "SELECT version()").strip(),
           "EXPLAIN (ANALYZE, BUFFERS) of the SQL src/store/postgres.c runs (values inlined: the "
           "server sends them as parameters of an unnamed statement, so it gets a custom plan too)", ""]
    timings = {}
    for label, sql in pg_queries(plan):
        psql(args.psql, sql)  # warm
        text = psql(args.psql, "EXPLAIN (ANALYZE, BUFFERS) " + sql)
        m = re.search(r"Execution Time: ([0-9.]+) ms", text)
        timings[label] = float(m.group(1)) if m else None
        out.append(f"-- {label}")
        out.append("   " + sql.replace(PG_COLS, "<cols>"))
        out.extend("   " + line for line in text.rstrip().splitlines())
        out.append("")
    # count(*) by department size.
    counts = []
    out.append("-- count(*) of a department filter by department size (EXPLAIN ANALYZE execution time):")
    for d in plan["departments"]:
        text = psql(args.psql, "EXPLAIN (ANALYZE) SELECT count(*) FROM users WHERE TRUE AND department = "
                    + "'" + d["name"].replace("'", "''") + "'")
        m = re.search(r"Execution Time: ([0-9.]+) ms", text)
        ms = float(m.group(1)) if m else None
        counts.append({"name": d["name"], "users": d["users"], "count_ms": ms})
        out.append(f"   {d['name']:<24} {d['users']:>9,} users  {ms:8.2f} ms")
    tools.record(args.results, "postgres", "sql_count_by_department", counts)
    tools.record(args.results, "postgres", "sql_timings", timings)
    # Candidate fixes: NOT what the server runs.
    out.append("")
    out.append("== other forms (not what the server runs) ==")
    d0 = plan["departments"][0]
    lit = lambda v: "'" + v.replace("'", "''") + "'"  # noqa: E731
    rare = plan.get("search_rare") or min(plan["search"], key=lambda s: (s["kind"] != "employee_id", -len(s["q"])))
    like = lambda q: (" AND search_key LIKE '%' || " + lit(q.casefold().replace("\\", "\\\\").replace("%", "\\%")  # noqa: E731
                                                           .replace("_", "\\_")) + "::text || '%' ESCAPE E'\\\\'")
    cands = [
        ("deep page, the OR form (mixed directions; before 0005)",
         f"SELECT {PG_COLS} FROM users WHERE TRUE AND department = {lit(d0['name'])} AND "
         f"((last_name COLLATE \"C\" > {lit(d0['mid_last_name'])}) OR (last_name COLLATE \"C\" = "
         f"{lit(d0['mid_last_name'])} AND id > {d0['mid_id']})) "
         "ORDER BY last_name COLLATE \"C\" ASC, id ASC LIMIT 51"),
        ("list count capped at 10,001 rows",
         f"SELECT count(*) FROM (SELECT 1 FROM users WHERE TRUE AND department = {lit(d0['name'])} LIMIT 10001) s"),
        (f"search page as the server runs it, a rare fragment: q={rare['q']}",
         f"SELECT {PG_COLS} FROM users WHERE TRUE{like(rare['q'])} ORDER BY id ASC LIMIT 51"),
        (f"search page with the pkey order disabled (ORDER BY id + 0): q={rare['q']}",
         f"SELECT {PG_COLS} FROM users WHERE TRUE{like(rare['q'])} ORDER BY id + 0 LIMIT 51"),
        ("search count as the server runs it: q=exa (every row)",
         f"SELECT count(*) FROM users WHERE TRUE{like('exa')}"),
        ("search count capped at 10,001 rows: q=exa",
         f"SELECT count(*) FROM (SELECT 1 FROM users WHERE TRUE{like('exa')} LIMIT 10001) s"),
    ]
    alt = {}
    for label, sql in cands:
        psql(args.psql, sql)
        text = psql(args.psql, "EXPLAIN (ANALYZE, BUFFERS) " + sql)
        m = re.search(r"Execution Time: ([0-9.]+) ms", text)
        alt[label] = float(m.group(1)) if m else None
        out.append(f"-- {label}")
        out.append("   " + sql.replace(PG_COLS, "<cols>"))
        out.extend("   " + line for line in text.rstrip().splitlines())
        out.append("")
    tools.record(args.results, "postgres", "sql_alternatives", alt)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    return 0


# --- PostgreSQL: copy the generated rows ----------------------------------------------

def cmd_pg_copy(args):
    sq = sqlite3.connect(f"file:{args.sqlite}?mode=ro", uri=True)
    # users and audit_events, then every other table that has rows in SQLite
    # and is empty in PostgreSQL (tables a migration seeds, such as built-in
    # roles, stay as PostgreSQL's migration made them; API keys are made anew).
    skip = {"schema_migrations", "api_keys", "user_counts"}
    others = [r[0] for r in sq.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'users_fts%' ORDER BY name") if r[0] not in skip | {"users", "audit_events"}]
    tables = ["users", "audit_events"] + others
    t0 = time.monotonic()
    idx = psql(args.psql, "SELECT indexname || E'\\t' || indexdef FROM pg_indexes WHERE schemaname = 'public' "
               "AND tablename IN ('users', 'audit_events') AND indexname NOT IN "
               "(SELECT conname FROM pg_constraint) ORDER BY indexname")
    indexes = [line.split("\t", 1) for line in idx.splitlines() if "\t" in line]
    # Bulk load without the secondary indexes, triggers and FK checks; rebuild after.
    psql(args.psql, "; ".join(f'DROP INDEX "{n}"' for n, _ in indexes))
    copied = {}
    for t in tables:
        n = sq.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
        if n == 0:
            continue
        exists = psql(args.psql, f"SELECT to_regclass('public.\"{t}\"') IS NOT NULL").strip() == "t"
        if not exists or (t not in ("users", "audit_events")
                          and psql(args.psql, f'SELECT count(*) FROM "{t}"').strip() != "0"):
            continue
        scols = [r[1] for r in sq.execute(f"PRAGMA table_info({t})")]
        pcols = psql(args.psql, f"SELECT column_name FROM information_schema.columns WHERE "
                     f"table_schema = 'public' AND table_name = '{t}'").split()
        cols = [c for c in scols if c in pcols]
        sel = ", ".join(cols)
        exp = subprocess.Popen(["sqlite3", "-csv", "-readonly", args.sqlite,
                                f'SELECT {sel} FROM "{t}"' + (" ORDER BY id" if "id" in cols else "")],
                               stdout=subprocess.PIPE)
        cmd = shlex.split(args.psql) + ["-X", "-q", "-v", "ON_ERROR_STOP=1",
                                        "-c", "SET session_replication_role = replica",
                                        "-c", f"\\copy {t} ({sel}) FROM pstdin WITH (FORMAT csv)"]
        r = subprocess.run(cmd, stdin=exp.stdout, capture_output=True, text=True, timeout=1800)
        exp.stdout.close()
        exp.wait()
        if r.returncode != 0 or exp.returncode != 0:
            raise RuntimeError(f"copy {t} failed: {r.stderr.strip()[:500]}")
        copied[t] = n
        log(f"pg-copy: {t}: {n:,} rows in {time.monotonic() - t0:.0f}s")
    t1 = time.monotonic()
    psql(args.psql, "SET maintenance_work_mem = '512MB'; " + "; ".join(d for _, d in indexes))
    log(f"pg-copy: rebuilt {len(indexes)} indexes in {time.monotonic() - t1:.0f}s")
    for t in copied:
        if psql(args.psql, f"SELECT pg_get_serial_sequence('{t}', 'id') IS NOT NULL FROM information_schema.columns "
                           f"WHERE table_schema = 'public' AND table_name = '{t}' AND column_name = 'id'").strip() == "t":
            psql(args.psql, f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                            f"coalesce((SELECT max(id) FROM {t}), 0) + 1, false)")
    psql(args.psql, "UPDATE user_counts c SET n = (SELECT count(*) FROM users u "
                    "WHERE u.status = c.status AND u.type = c.type)")
    t2 = time.monotonic()
    psql(args.psql, "VACUUM (ANALYZE) users")
    psql(args.psql, "VACUUM (ANALYZE) audit_events")
    psql(args.psql, "VACUUM (ANALYZE) user_counts")
    psql(args.psql, "CHECKPOINT")
    log(f"pg-copy: VACUUM ANALYZE + CHECKPOINT in {time.monotonic() - t2:.0f}s; "
        f"total {time.monotonic() - t0:.0f}s")
    print(json.dumps({"copied": copied, "indexes": len(indexes), "seconds": round(time.monotonic() - t0, 1)}))
    return 0


# --- the report ---------------------------------------------------------------------

def _ms(v, nd=2):
    return "n/a" if v is None else f"{v:,.{nd}f}"


def _lat(f, key, fields=("p50", "p90", "p99", "max")):
    d = f.get(key)
    if not isinstance(d, dict):
        return None
    return " / ".join(_ms(d.get(k)) for k in fields)


def _wrk(f, p):
    if f.get(f"{p}_rps") is None:
        return None
    return (f"{f[f'{p}_rps']:,.0f} req/s; p50 {f.get(f'{p}_p50_us', 0) / 1000:.1f} / p99 "
            f"{f.get(f'{p}_p99_us', 0) / 1000:.1f} ms")


def _wrk_errs(f, p):
    n = f.get(f"{p}_non_2xx")
    if n is None:
        return None
    sock = sum(f.get(f"{p}_err_{k}", 0) or 0 for k in ("connect", "read", "write", "timeout"))
    cpu = f.get(f"{p}_server_cpu_pct")
    s = f"{n:,} / {sock:,}"
    if cpu is not None:
        s += f"; CPU roster {cpu:.0f}%"
        if f.get(f"{p}_db_cpu_pct") is not None:
            s += f" +pg {f[f'{p}_db_cpu_pct']:.0f}%"
    return s


ROWS_1M = [
    ("users in DB", lambda f: f"{f['users']:,}" if isinstance(f.get("users"), int) else f.get("users"), ""),
    ("  how the DB was made", lambda f: f.get("dataset"), ""),
    ("LIST ?department=D&sort=last_name&limit=50", None, ""),
    ("  page 1, 1 client x200, p50/p90/p99/max ms", lambda f: _lat(f, "list_p1"), "p50 <= 5"),
    ("  page 2 via next_cursor x200", lambda f: _lat(f, "list_p2"), "p50 <= 5"),
    ("  deep page (cursor mid-department) x100", lambda f: _lat(f, "list_deep"), ""),
    ("  largest dept: users, page-1 p50 ms", lambda f: _dept(f, 0), ""),
    ("  smallest dept: users, page-1 p50 ms", lambda f: _dept(f, -1), ""),
    ("  SQL count(*) largest / smallest dept ms", lambda f: _cnt(f), ""),
    ("  wrk t2 c16, page 1", lambda f: _wrk(f, "wrk_list"), ""),
    ("    non-2xx / socket errors; CPU", lambda f: _wrk_errs(f, "wrk_list"), "0 / 0"),
    ("SEARCH ?q=<3-6 chars>&limit=50", None, ""),
    ("  1 client x200, p50/p90/p99/max ms", lambda f: _lat(f, "search"), "p50 <= 20"),
    ("  matches per query (median / p90 / max)", lambda f: _matches(f, "search_matches"), ""),
    ("  p50 ms by fragment of", lambda f: _bykind(f), ""),
    ("  wrk t2 c16", lambda f: _wrk(f, "wrk_search"), ""),
    ("    non-2xx / socket errors; CPU", lambda f: _wrk_errs(f, "wrk_search"), "0 / 0"),
    ("  2 chars x30, p50/p90/p99/max ms", lambda f: _lat(f, "search2"), "(p50 <= 20)"),
    ("    matches per query (median / max)", lambda f: _matches(f, "search2_matches"), ""),
    ("  q=exa (in every email) x3, p50 ms / total", lambda f: _common(f, "exa"), ""),
    ("  q=example x3, p50 ms / total", lambda f: _common(f, "example"), ""),
    ("CREATE, 1 client (wrk t1 c1) at 1M users", None, ""),
    ("  creates/s", lambda f: f"{f['create_created_per_s']:,.0f}" if f.get("create_created_per_s") is not None else None, ">= 2,000"),
    ("  p50 / p99 / max ms", lambda f: " / ".join(_ms((f.get(k) or 0) / 1000) for k in ("create_p50_us", "create_p99_us", "create_lat_max_us")) if f.get("create_p50_us") is not None else None, ""),
    ("  non-201; CPU", lambda f: (f"{f.get('create_non_201', 0):,}" + (f"; CPU roster {f['create_server_cpu_pct']:.0f}%" if f.get("create_server_cpu_pct") is not None else "") + (f" +pg {f['create_db_cpu_pct']:.0f}%" if f.get("create_db_cpu_pct") is not None else "")) if f.get("create_non_201") is not None else None, "0"),
    ("DB size on disk (MB)", lambda f: f.get("db_size_mb"), ""),
    ("server RSS after the runs (MB)", lambda f: f.get("rss_after_mb"), ""),
]


def _dept(f, k):
    rows = f.get("list_by_department")
    if not rows:
        return None
    d = rows[k]
    return f"{d['name']} {d['users']:,}: {_ms(d['p1_p50'])}"


def _cnt(f):
    rows = f.get("sql_count_by_department")
    if not rows:
        return None
    return f"{_ms(rows[0]['count_ms'])} / {_ms(rows[-1]['count_ms'])}"


def _matches(f, key):
    d = f.get(key)
    if not isinstance(d, dict):
        return None
    return " / ".join(f"{d[k]:,}" for k in ("median", "p90", "max") if d.get(k) is not None)


def _bykind(f):
    d = f.get("search_by_kind")
    if not isinstance(d, dict):
        return None
    short = {"last_name": "last", "first_name": "first", "email": "email", "employee_id": "emp.id"}
    return ", ".join(f"{short.get(k, k)} {_ms(v['p50'], 1)}" for k, v in sorted(d.items()))


def _common(f, q):
    d = f.get(f"search_common_{q}")
    if not isinstance(d, dict):
        return None
    return f"{_ms(d.get('p50'), 1)} / {d.get('total'):,}" if d.get("total") is not None else _ms(d.get("p50"), 1)


def cmd_report(args):
    res, order = tools.load_results(args.results)
    meta = res.pop("meta", {})
    cols = [b for b in order if b != "meta"] or ["sqlite"]
    lines = ["roster users benchmark at 1,000,000 users (issue 3) — figures, not pass/fail"]
    for k in ("date", "host", "quiet", "roster", "binary", "postgres", "clients", "notes"):
        if k in meta:
            v = meta[k]
            for one in (v if isinstance(v, list) else [v]):
                lines.append(f"  {k + ':':9} {one}")
    lines.append("")
    w0 = max(len(r[0]) for r in ROWS_1M) + 2
    vals, cw = {}, {b: max(14, len(b) + 2) for b in cols}
    for i, (label, fn, target) in enumerate(ROWS_1M):
        for b in cols:
            v = None
            if fn:
                try:
                    v = fn(res.get(b, {}))
                except (KeyError, TypeError, ValueError):
                    v = None
            s = "" if fn is None else ("n/a" if v is None else str(v))
            vals[(i, b)] = s
            cw[b] = max(cw[b], min(len(s), 46) + 2)
    header = "figure".ljust(w0) + "".join(b.ljust(cw[b]) for b in cols) + "target"
    lines += [header, "-" * len(header)]
    for i, (label, fn, target) in enumerate(ROWS_1M):
        lines.append(label.ljust(w0) + "".join(vals[(i, b)].ljust(cw[b]) for b in cols) + target)
    lines.append("")
    # Per department: size, page-1 / page-2 / deep p50, and count(*) in SQL.
    for b in cols:
        rows = res.get(b, {}).get("list_by_department")
        if not rows:
            continue
        cnt = {d["name"]: d["count_ms"] for d in res.get(b, {}).get("sql_count_by_department") or []}
        lines.append(f"{b}: list latency by department (p50 ms, 1 client) and the count(*) alone (SQL, ms)")
        lines.append(f"  {'department':<24}{'users':>9}{'page 1':>9}{'page 2':>9}{'deep':>9}{'count(*)':>10}")
        for d in rows:
            lines.append(f"  {d['name']:<24}{d['users']:>9,}{_ms(d['p1_p50'], 1):>9}{_ms(d['p2_p50'], 1):>9}"
                         f"{_ms(d['deep_p50'], 1):>9}{_ms(cnt.get(d['name']), 1):>10}")
        lines.append("")
    for b in cols:
        t = res.get(b, {}).get("sql_timings")
        if t:
            lines.append(f"{b}: the store's SQL run directly ({'in-process sqlite3, median of 5' if b == 'sqlite' else 'EXPLAIN ANALYZE execution time'}), ms")
            for k, v in t.items():
                lines.append(f"  {k:<60} {_ms(v)}")
            lines.append("")
    for b in cols:
        t = res.get(b, {}).get("sql_alternatives")
        if t:
            lines.append(f"{b}: other forms of that SQL (not what the server runs; plans in users_1m_plans.txt), ms")
            for k, v in t.items():
                lines.append(f"  {k[:78]:<78} {_ms(v)}")
            lines.append("")
    for b in cols:
        notes = res.get(b, {}).get("notes")
        for n in (notes if isinstance(notes, list) else [notes] if notes else []):
            lines.append(f"note ({b}): {n}")
    text = "\n".join(lines).rstrip() + "\n"
    sys.stdout.write(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("gen-hash")
    p = sub.add_parser("sample-user")
    p.add_argument("index", type=int)
    p.add_argument("--count", type=int, default=1_000_000)
    p = sub.add_parser("load")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=6)
    p.add_argument("--deadline", type=float, default=1500)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--progress-every", type=float, default=10)
    p = sub.add_parser("plan")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=SEED)
    p = sub.add_parser("seq")
    for a in ("--token", "--plan", "--results", "--backend", "--paths-dir"):
        p.add_argument(a, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--seed", type=int, default=SEED)
    p = sub.add_parser("explain-sqlite")
    for a in ("--db", "--plan", "--results", "--out"):
        p.add_argument(a, required=True)
    p = sub.add_parser("explain-pg")
    for a in ("--psql", "--plan", "--results", "--out"):
        p.add_argument(a, required=True)
    p = sub.add_parser("pg-copy")
    p.add_argument("--sqlite", required=True)
    p.add_argument("--psql", required=True)
    p = sub.add_parser("report")
    p.add_argument("results")
    p.add_argument("out")
    args = ap.parse_args()
    if args.cmd == "gen-hash":
        print(gen_hash())
        return 0
    if args.cmd == "sample-user":
        lay = layout(args.count)
        pools = manager_pools(SEED, lay)
        for i in range(args.index, args.index + 10):
            print(json.dumps(make_user(SEED, i, lay, pools, {k: k + 1 for k in range(lay["staff"][0])}),
                             ensure_ascii=False))
        return 0
    return {"load": cmd_load, "plan": cmd_plan, "seq": cmd_seq, "explain-sqlite": cmd_explain_sqlite,
            "explain-pg": cmd_explain_pg, "pg-copy": cmd_pg_copy, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
