"""Mail that is never lost (docs/design/auth-contract.md): the notifications and
auth settings endpoints (validation, If-Match, the write-only SMTP password,
read-only template variables), the test message over plain SMTP, STARTTLS,
implicit TLS and AUTH against a real SMTP server (tests/peers/smtp_server.py,
aiosmtpd), 502 with the server's own answer when it refuses, and the outbox:
mail queued while no SMTP server listens stays pending with its attempts and
last error, and arrives exactly once after the server comes up and the test
clock moves past the back-off.

Tests that queue mail use POST /api/v1/users with send_invite (the sign-in
part) and PUT /api/v1/test/clock; the server runs with ROSTER_TEST_CLOCK=1 and
ROSTER_JOBS_INTERVAL_MS=100."""

import email
import email.header
import email.policy
import glob
import os
import sqlite3
import subprocess
import time

import harness
from harness import (check_problem, expect, expect_eq, expect_status, free_port, unique_tag,
                     user_body)

NOTIFY = "/api/v1/settings/notifications"
AUTH = "/api/v1/settings/auth"
TEST = NOTIFY + "/test"
OUTBOX = "/api/v1/outbox"
PEER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peers",
                    "smtp_server.py")
KINDS = ("invite", "welcome", "reset", "password_changed", "account_locked", "expiry_notice",
         "two_factor_changed", "email_changed")
COMMON_VARS = {"username", "first_name", "last_name", "email", "product", "base_url"}


# --------------------------------------------------------------------------
# peers and servers


class SmtpPeer:
    """tests/peers/smtp_server.py on a loopback port; stopped by PID."""

    def __init__(self, ctx, port=None, args=()):
        self.port = port or free_port()
        self.dir = os.path.join(ctx.dir, "smtp-%d-%s" % (self.port, unique_tag(4)))
        os.makedirs(self.dir)
        self.args = list(args)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", PEER, "--port", str(self.port),
                                      "--dir", self.dir] + self.args,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=open(self.dir + ".stderr", "wb"),
                                     start_new_session=True)
        harness._register(self)
        line = self.proc.stdout.readline().decode().strip()
        if line != "ready":
            self.stop()
            raise AssertionError("smtp peer did not start (%r): %s" % (line, self.stderr()))
        return self

    def stderr(self):
        try:
            with open(self.dir + ".stderr") as f:
                return f.read()[-1500:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc = None
        harness._unregister(self)

    def messages(self):
        """Every message received so far, oldest first, as email.message objects."""
        out = []
        for p in sorted(glob.glob(os.path.join(self.dir, "*.eml"))):
            with open(p, "rb") as f:
                out.append(email.message_from_bytes(f.read(), policy=email.policy.default))
        return out

    def wait_messages(self, n, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.messages()
            if len(msgs) >= n:
                return msgs
            time.sleep(0.1)
        raise AssertionError("smtp peer on %d has %d message(s), want %d; peer stderr: %s" % (
            self.port, len(self.messages()), n, self.stderr()))


def certs(ctx):
    """A self-signed certificate for localhost/127.0.0.1 (openssl CLI), made once."""
    if "cert" not in ctx.state:
        cert = os.path.join(ctx.dir, "smtp-cert.pem")
        key = os.path.join(ctx.dir, "smtp-key.pem")
        harness.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                     "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                     "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        ctx.state["cert"] = (cert, key)
    return ctx.state["cert"]


def mail_server(ctx):
    """The module's server with the test clock and fast jobs."""
    s = ctx.state.get("server")
    if s is None or not s.alive():
        s = harness.Server(ctx.binary, ctx.new_db_url(), ctx.dir, name="mail",
                           env={"ROSTER_TEST_CLOCK": "1", "ROSTER_JOBS_INTERVAL_MS": "100"})
        ctx._servers.append(s)
        s.start()
        ctx.state["server"] = s
    return s


def client(ctx):
    return mail_server(ctx).client()


def set_smtp(c, **smtp):
    """PATCHes smtp settings (and anything else given as other=...); asserts 200."""
    other = smtp.pop("other", {})
    body = dict(other)
    body["smtp"] = smtp
    r = c.patch(NOTIFY, body)
    expect_status(r, 200)
    return r.json


def plain_smtp(c, port, **kw):
    d = {"url": "smtp://127.0.0.1:%d" % port, "security": "none", "username": "",
         "password": None, "verify_tls": True, "timeout_seconds": 5,
         "from": "Roster Tests <roster@tests.example>"}
    d.update(kw)
    return set_smtp(c, **d)


def set_clock(c, offset_ms):
    r = c.request("PUT", "/api/v1/test/clock", {"offset_ms": offset_ms})
    expect(r.status in (200, 204), "PUT /api/v1/test/clock: " + r.describe())


def outbox(c, query=""):
    r = c.get(OUTBOX + ("?" + query if query else ""))
    expect_status(r, 200)
    expect(isinstance(r.json, dict) and isinstance(r.json.get("items"), list),
           "outbox without items: " + r.describe())
    return r.json["items"]


def queue_invite(c, **kw):
    """Creates a pending user with send_invite (queues an invite mail); returns the user."""
    body = user_body(**kw)
    body["send_invite"] = True
    body["status"] = "pending"
    r = c.post("/api/v1/users", body)
    expect_status(r, 201)
    return r.json


def wait_outbox(c, user_id, cond, what, timeout=15):
    deadline = time.monotonic() + timeout
    items = []
    while time.monotonic() < deadline:
        items = outbox(c, "user_id=%d" % user_id)
        if items and cond(items):
            return items
        time.sleep(0.1)
    raise AssertionError("outbox of user %d never got %s: %r" % (user_id, what, items))


def db_rows(ctx, sql):
    """Rows of a query on the mail server's database, as one text blob."""
    url = mail_server(ctx).db_url
    if url.startswith("sqlite:"):
        con = sqlite3.connect("file:%s?mode=ro" % ctx.sqlite_path(url), uri=True, timeout=10)
        try:
            return repr(con.execute(sql).fetchall())
        finally:
            con.close()
    return ctx.suite.pg().psql(url.rsplit("/", 1)[1], sql)


def audit_count(ctx, action):
    url = mail_server(ctx).db_url
    q = "SELECT count(*) FROM audit_events WHERE action = '%s'" % action
    if url.startswith("sqlite:"):
        con = sqlite3.connect("file:%s?mode=ro" % ctx.sqlite_path(url), uri=True, timeout=10)
        try:
            return con.execute(q).fetchone()[0]
        finally:
            con.close()
    return int(ctx.suite.pg().psql(url.rsplit("/", 1)[1], q).strip())


def subject_of(msg):
    return str(email.header.make_header(email.header.decode_header(msg["Subject"])))


def refused(r, status, field, rule=None):
    return check_problem(r, status, field=field, rule=rule)


# --------------------------------------------------------------------------
# settings endpoints


def test_notify_settings_defaults(ctx):
    c = client(ctx)
    r = c.get(NOTIFY)
    expect_status(r, 200)
    b = r.json
    expect_eq(r.header("ETag"), '"%d"' % b["version"], "ETag", r)
    smtp = b["smtp"]
    expect_eq(set(smtp), {"url", "security", "username", "password_set", "from",
                          "timeout_seconds", "verify_tls"}, "smtp keys", r)
    expect_eq(smtp["password_set"], False, "password_set", r)
    expect_eq(set(b["enabled"]), set(KINDS), "enabled kinds", r)
    for k in KINDS:
        t = b["templates"][k]
        expect(isinstance(t["subject"], str) and t["subject"] and isinstance(t["body"], str)
               and t["body"], "template %s empty: %s" % (k, r.describe()))
        expect(COMMON_VARS <= set(t["variables"]), "template %s variables %r" % (
            k, t["variables"]))
    expect("link" in b["templates"]["invite"]["variables"], "invite has link: " + r.describe())
    expect("days_left" in b["templates"]["expiry_notice"]["variables"], "expiry days_left")
    # a reader may read, not write
    r = c.get(AUTH)
    expect_status(r, 200)
    expect_eq(r.header("ETag"), '"%d"' % r.json["version"], "auth ETag", r)


def test_notify_settings_validation(ctx):
    c = client(ctx)
    before = c.get(NOTIFY).json
    cases = [
        ({"smtp": {"bogus": 1}}, 400, "smtp.bogus", "unknown_field"),
        ({"nonsense": {}}, 400, "nonsense", "unknown_field"),
        ({"smtp": {"timeout_seconds": "10"}}, 400, "smtp.timeout_seconds", "type"),
        ({"smtp": {"password_set": True}}, 400, "smtp.password_set", "read_only"),
        ({"templates": {"invite": {"variables": ["x"]}}}, 400, "templates.invite.variables",
         "read_only"),
        ({"templates": {"reset": {"body_only_variables": []}}}, 400,
         "templates.reset.body_only_variables", "read_only"),
        ({"version": 7}, 400, "version", "read_only"),
        ({"smtp": {"url": "http://127.0.0.1:25"}}, 422, "smtp.url", "url"),
        ({"smtp": {"security": "sometimes"}}, 422, "smtp.security", None),
        ({"smtp": {"url": "smtp://127.0.0.1:25", "security": "tls"}}, 422, None, None),
        ({"smtp": {"from": "two@a.example, three@b.example"}}, 422, "smtp.from", "mailbox"),
        ({"smtp": {"from": "x@y.example\r\nBcc: z@y.example"}}, 422, "smtp.from", None),
        ({"templates": {"reset": {"body": "Hi {{first_name}}, {{password}}"}}}, 422,
         "templates.reset.body", "unknown_variable"),
        ({"templates": {"reset": {"subject": "{{link}} {{nope}}"}}}, 422,
         "templates.reset.subject", "unknown_variable"),
        ({"templates": {"invite": {"subject": "Hello\r\nBcc: victim@example.com"}}}, 422,
         "templates.invite.subject", "header_injection"),
        ({"templates": {"invite": {"subject": "x" * 201}}}, 422, "templates.invite.subject",
         "max_length"),
        ({"templates": {"invite": {"body": "x" * 20001}}}, 422, "templates.invite.body",
         "max_length"),
    ]
    fails = []
    for body, status, field, rule in cases:
        r = c.patch(NOTIFY, body)
        try:
            b = check_problem(r, status, field=field, rule=rule)
            if field is None and status == 422:
                expect(b.get("errors"), "422 without errors[]: " + r.describe())
        except AssertionError as e:
            fails.append(str(e))
    after = c.get(NOTIFY).json
    expect_eq(after, before, "settings after refused patches")
    expect(not fails, "\n".join(fails))


def test_notify_if_match_and_audit(ctx):
    c = client(ctx)
    cur = c.get(NOTIFY)
    v = cur.json["version"]
    n0 = audit_count(ctx, "settings.notifications")
    r = c.patch(NOTIFY, {"smtp": {"timeout_seconds": 7}}, headers={"If-Match": '"%d"' % (v + 5)})
    check_problem(r, 412)
    r = c.patch(NOTIFY, {"smtp": {"timeout_seconds": 7}}, headers={"If-Match": '"%d"' % v})
    expect_status(r, 200)
    expect_eq(r.json["version"], v + 1, "version after patch", r)
    expect_eq(r.header("ETag"), '"%d"' % (v + 1), "ETag after patch", r)
    expect_eq(r.json["smtp"]["timeout_seconds"], 7, "timeout_seconds", r)
    r = c.patch(NOTIFY, {"smtp": {"timeout_seconds": 8}}, headers={"If-Match": '"%d"' % v})
    check_problem(r, 412)
    expect_eq(audit_count(ctx, "settings.notifications"), n0 + 1, "audit events")
    expect_status(c.patch(NOTIFY, {"smtp": {"timeout_seconds": 10}}), 200)


def test_smtp_password_write_only(ctx):
    c = client(ctx)
    secret = "s3cret-" + unique_tag(10)
    # credentials need TLS (test_smtp_auth_needs_tls)
    r = c.patch(NOTIFY, {"smtp": {"username": "mailer", "password": secret,
                                  "security": "starttls"}})
    expect_status(r, 200)
    expect_eq(r.json["smtp"]["password_set"], True, "password_set", r)
    expect("password" not in r.json["smtp"], "password shown: " + r.describe())
    expect(secret not in r.text, "password echoed: " + r.describe())
    g = c.get(NOTIFY)
    expect_eq(g.json["smtp"]["password_set"], True, "password_set on GET", g)
    expect(secret not in g.text, "password in GET: " + g.describe())
    stored = db_rows(ctx, "SELECT * FROM settings")
    expect(secret not in stored, "the SMTP password is stored in clear: " + stored[:500])
    audits = db_rows(ctx, "SELECT * FROM audit_events WHERE action = 'settings.notifications'")
    expect(secret not in audits, "the SMTP password is in the audit log")
    expect("notifications" in stored, "settings row for notifications missing: " + stored[:300])
    # other patches keep it; null clears it
    r = c.patch(NOTIFY, {"smtp": {"timeout_seconds": 9}})
    expect_eq(r.json["smtp"]["password_set"], True, "password kept by other patch", r)
    r = c.patch(NOTIFY, {"smtp": {"password": None, "username": "", "timeout_seconds": 10,
                                  "security": "none"}})
    expect_eq(r.json["smtp"]["password_set"], False, "password cleared by null", r)


def test_smtp_auth_needs_tls(ctx):
    """SMTP AUTH sends the password as readable text: a username or password
    with security none is refused (422 smtp.security auth_needs_tls) and
    changes nothing; none without credentials still sends; a stored document
    from before the rule is never used to send the password in the clear."""
    c = client(ctx)
    cert, key = certs(ctx)
    plain = SmtpPeer(ctx).start()
    authed = SmtpPeer(ctx, args=["--auth", "mailer:right-pass"]).start()
    try:
        plain_smtp(c, plain.port)
        before = c.get(NOTIFY).json
        n0 = audit_count(ctx, "settings.notifications")
        for label, smtp in (
                ("username and password", {"username": "mailer", "password": "right-pass"}),
                ("username", {"username": "mailer"}),
                ("password", {"password": "right-pass"}),
                ("explicit none", {"username": "mailer", "password": "right-pass",
                                   "security": "none"})):
            r = c.patch(NOTIFY, {"smtp": smtp})
            b = check_problem(r, 422, field="smtp.security", rule="auth_needs_tls")
            msg = " ".join([b.get("detail") or ""] + [e.get("message") or ""
                                                      for e in b.get("errors") or []])
            expect("in the clear" in msg and "starttls" in msg,
                   "%s: the refusal says why and what to do: %s" % (label, r.describe()))
        after = c.get(NOTIFY).json
        expect_eq(after, before, "settings after the refused patches")
        expect_eq(audit_count(ctx, "settings.notifications"), n0, "audit events")
        # none without credentials still works (the harness's plain sink relies on it)
        r = c.post(TEST, {"to": "plain@example.com"})
        expect_status(r, 200)
        expect_eq(len(plain.wait_messages(1)), 1, "sent over plain SMTP without AUTH")
        # credentials over starttls are accepted; dropping TLS while they stay is not
        set_smtp(c, url="smtp://127.0.0.1:%d" % authed.port, security="starttls",
                 username="mailer", password="right-pass")
        check_problem(c.patch(NOTIFY, {"smtp": {"security": "none"}}), 422,
                      field="smtp.security", rule="auth_needs_tls")
        check_problem(c.patch(NOTIFY, {"smtp": {"security": "none", "password": None}}), 422,
                      field="smtp.security", rule="auth_needs_tls")
        # a document stored before the rule (none with credentials) still reads,
        # but nothing is sent with it: no AUTH crosses the network in the clear
        harness.db_exec(ctx, mail_server(ctx).db_url,
                        "UPDATE settings SET value = json_set(value, '$.smtp.security', 'none')"
                        " WHERE key = 'notifications'",
                        "UPDATE settings SET value = jsonb_set(value::jsonb, '{smtp,security}',"
                        " '\"none\"')::text WHERE key = 'notifications'")
        g = c.get(NOTIFY)
        expect_status(g, 200)
        expect_eq((g.json["smtp"]["security"], g.json["smtp"]["username"],
                   g.json["smtp"]["password_set"]), ("none", "mailer", True), "stored settings", g)
        r = c.post(TEST, {"to": "clear@example.com"})
        check_problem(r, 422, field="smtp.security", rule="auth_needs_tls")
        time.sleep(0.5)
        expect_eq(authed.messages(), [], "messages sent with AUTH in the clear")
        # fixing it in one patch (back to none without credentials) is accepted
        plain_smtp(c, plain.port)
    finally:
        plain.stop()
        authed.stop()
        plain_smtp(c, 1)


def test_auth_settings_endpoints(ctx):
    c = client(ctx)
    r = c.get(AUTH)
    expect_status(r, 200)
    b = r.json
    for sec in ("password", "lockout", "throttle", "sessions", "two_factor", "ip_rules",
                "tokens"):
        expect(isinstance(b.get(sec), dict), "auth settings lack %s: %s" % (sec, r.describe()))
    v = b["version"]
    n0 = audit_count(ctx, "settings.auth")
    fails = []
    for body, status, field, rule in [
            ({"lockout": {"max_failures": 0}}, 422, "lockout.max_failures", None),
            ({"password": {"min_length": 7}}, 422, "password.min_length", None),
            ({"two_factor": {"require": "sometimes"}}, 422, "two_factor.require", None),
            ({"ip_rules": {"types": {"api": ["10.0.0.0/33"]}}}, 422, None, "cidr"),
            ({"sessions": {"idle_timeout_minutes": "30"}}, 400, "sessions.idle_timeout_minutes",
             "type"),
            ({"lockout": {"bogus": True}}, 400, "lockout.bogus", "unknown_field"),
            ({"version": 3}, 400, "version", "read_only")]:
        r = c.patch(AUTH, body)
        try:
            pb = check_problem(r, status, field=field, rule=rule)
            if field is None:
                expect(any(e.get("rule") == rule for e in pb.get("errors", [])),
                       "want rule %s: %s" % (rule, r.describe()))
        except AssertionError as e:
            fails.append(str(e))
    expect(not fails, "\n".join(fails))
    expect_eq(audit_count(ctx, "settings.auth"), n0, "audit events after refused patches")
    check_problem(c.patch(AUTH, {"lockout": {"max_failures": 7}},
                          headers={"If-Match": '"%d"' % (v + 1)}), 412)
    r = c.patch(AUTH, {"lockout": {"max_failures": 7}}, headers={"If-Match": '"%d"' % v})
    expect_status(r, 200)
    expect_eq(r.json["lockout"]["max_failures"], 7, "max_failures", r)
    expect_eq(r.header("ETag"), '"%d"' % (v + 1), "ETag", r)
    expect_eq(c.get(AUTH).json["lockout"]["max_failures"], 7, "max_failures on GET")
    expect_eq(audit_count(ctx, "settings.auth"), n0 + 1, "settings.auth audit events")
    expect_status(c.patch(AUTH, {"lockout": {"max_failures": 5}}), 200)


# --------------------------------------------------------------------------
# the test message: transports


def test_test_message_body_rules(ctx):
    c = client(ctx)
    refused(c.post(TEST, {"to": 5}), 400, "to", "type")
    refused(c.post(TEST, {}), 422, "to", "required")
    refused(c.post(TEST, {"to": "not an address"}), 422, "to")
    refused(c.post(TEST, {"to": "a@b.example", "cc": "c@d.example"}), 400, "cc",
            "unknown_field")


def test_test_message_plain(ctx):
    c = client(ctx)
    peer = SmtpPeer(ctx).start()
    try:
        plain_smtp(c, peer.port)
        r = c.post(TEST, {"to": "someone@example.com"})
        expect_status(r, 200)
        expect_eq(r.json, {"sent": True}, "test answer", r)
        msgs = peer.wait_messages(1)
        expect_eq(len(msgs), 1, "messages")
        m = msgs[0]
        expect_eq(m["X-Envelope-From"], "roster@tests.example", "envelope from")
        expect_eq(m["X-Envelope-To"], "someone@example.com", "envelope to")
        expect_eq(m["To"], "someone@example.com", "To")
        expect("roster@tests.example" in m["From"], "From: %r" % m["From"])
        expect(m["Message-ID"] and m["Message-ID"].rstrip(">").endswith("@tests.example"),
               "Message-ID: %r" % m["Message-ID"])
        expect(m["Date"], "Date header missing")
    finally:
        peer.stop()


def test_test_message_refused_502(ctx):
    c = client(ctx)
    peer = SmtpPeer(ctx, args=["--refuse-rcpt", "nobody"]).start()
    try:
        plain_smtp(c, peer.port)
        r = c.post(TEST, {"to": "nobody@example.com"})
        b = check_problem(r, 502)
        expect("550" in b["detail"] and "mailbox unavailable" in b["detail"],
               "502 detail should carry the server's answer: " + r.describe())
        expect_eq(peer.messages(), [], "messages after refusal")
    finally:
        peer.stop()
    # nothing listens any more
    r = c.post(TEST, {"to": "someone@example.com"})
    b = check_problem(r, 502)
    expect("connect" in b["detail"].lower(), "502 detail names the connection: " + r.describe())


def test_test_message_starttls(ctx):
    c = client(ctx)
    cert, key = certs(ctx)
    peer = SmtpPeer(ctx, args=["--starttls", cert, key]).start()
    try:
        # the server insists on STARTTLS: plain is refused with its answer
        plain_smtp(c, peer.port)
        r = c.post(TEST, {"to": "plain@example.com"})
        b = check_problem(r, 502)
        expect("530" in b["detail"], "want the server's 530 in: " + r.describe())
        # STARTTLS with a self-signed certificate: verified -> refused, unverified -> sent
        plain_smtp(c, peer.port, security="starttls", verify_tls=True)
        r = c.post(TEST, {"to": "verified@example.com"})
        check_problem(r, 502)
        plain_smtp(c, peer.port, security="starttls", verify_tls=False)
        r = c.post(TEST, {"to": "tls@example.com"})
        expect_status(r, 200)
        msgs = peer.wait_messages(1)
        expect_eq([m["X-Envelope-To"] for m in msgs], ["tls@example.com"], "delivered")
    finally:
        peer.stop()


def test_test_message_implicit_tls(ctx):
    c = client(ctx)
    cert, key = certs(ctx)
    peer = SmtpPeer(ctx, args=["--tls", cert, key]).start()
    try:
        r = c.patch(NOTIFY, {"smtp": {"url": "smtps://127.0.0.1:%d" % peer.port,
                                      "security": "tls", "verify_tls": False,
                                      "username": "", "password": None}})
        expect_status(r, 200)
        r = c.post(TEST, {"to": "smtps@example.com"})
        expect_status(r, 200)
        msgs = peer.wait_messages(1)
        expect_eq(msgs[0]["X-Envelope-To"], "smtps@example.com", "delivered over SMTPS")
    finally:
        peer.stop()
        plain_smtp(c, 1)


def test_test_message_auth(ctx):
    c = client(ctx)
    cert, key = certs(ctx)
    peer = SmtpPeer(ctx, args=["--starttls", cert, key, "--auth", "mailer:right-pass"]).start()
    try:
        plain_smtp(c, peer.port, security="starttls", verify_tls=False, username="mailer",
                   password="wrong-pass")
        r = c.post(TEST, {"to": "auth@example.com"})
        b = check_problem(r, 502)
        expect("535" in b["detail"], "want the server's 535 in: " + r.describe())
        expect_eq(peer.messages(), [], "messages after failed AUTH")
        plain_smtp(c, peer.port, security="starttls", verify_tls=False, username="mailer",
                   password="right-pass")
        r = c.post(TEST, {"to": "auth@example.com"})
        expect_status(r, 200)
        expect_eq(len(peer.wait_messages(1)), 1, "messages after AUTH")
    finally:
        peer.stop()
        plain_smtp(c, 1)


# --------------------------------------------------------------------------
# the outbox


def test_outbox_query_rules(ctx):
    c = client(ctx)
    for q, field in [("status=bogus", "status"), ("limit=0", "limit"), ("limit=501", "limit"),
                     ("limit=x", "limit"), ("user_id=-3", "user_id"), ("user_id=abc", "user_id"),
                     ("colour=red", "colour")]:
        check_problem(c.get(OUTBOX + "?" + q), 400, field=field)
    for q in ("", "status=pending", "status=sent", "status=failed", "limit=1", "limit=500",
              "user_id=999999"):
        outbox(c, q)


def test_outbox_down_then_up(ctx):
    c = client(ctx)
    port = free_port()
    plain_smtp(c, port)  # nothing listens there yet
    set_clock(c, 0)
    u = queue_invite(c)
    items = wait_outbox(c, u["id"], lambda it: it[0]["attempts"] >= 1, "a failed attempt")
    m = items[0]
    expect_eq(len(items), 1, "queued mail", None)
    expect_eq(m["status"], "pending", "status while the server is down")
    expect_eq(m["kind"], "invite", "kind")
    expect_eq(m["to"], u["email"], "to")
    expect(m["last_error"] and "connect" in m["last_error"].lower(),
           "last_error names the connection failure: %r" % m)
    expect(m["next_attempt_at"] > m["created_at"], "next attempt later: %r" % m)
    expect("message" not in m and "body" not in m, "outbox shows the body: %r" % m)
    expect_eq(m["sent_at"], None, "sent_at")
    # still pending: the back-off (30 s) has not run out
    time.sleep(1.0)
    m2 = outbox(c, "user_id=%d" % u["id"])[0]
    expect_eq(m2["attempts"], m["attempts"], "no retry inside the back-off")
    peer = SmtpPeer(ctx, port=port).start()
    try:
        set_clock(c, 31000)
        items = wait_outbox(c, u["id"], lambda it: it[0]["status"] == "sent", "status sent")
        expect(items[0]["sent_at"], "sent_at set: %r" % items[0])
        peer.wait_messages(1)
        time.sleep(1.0)  # ten more passes
        set_clock(c, 4 * 3600 * 1000)
        time.sleep(1.0)
        mine = [x for x in peer.messages() if x["X-Envelope-To"] == u["email"]]
        expect_eq(len(mine), 1, "copies of the invite delivered")
        expect_eq(len(outbox(c, "user_id=%d&status=sent" % u["id"])), 1, "sent items")
    finally:
        peer.stop()
        set_clock(c, 0)


def test_outbox_wrong_password_stays_pending(ctx):
    c = client(ctx)
    cert, key = certs(ctx)
    peer = SmtpPeer(ctx, args=["--starttls", cert, key, "--auth", "mailer:right-pass"]).start()
    try:
        set_clock(c, 0)
        plain_smtp(c, peer.port, security="starttls", verify_tls=False, username="mailer",
                   password="wrong-pass")
        u = queue_invite(c)
        items = wait_outbox(c, u["id"], lambda it: it[0]["attempts"] >= 1, "a failed attempt")
        expect_eq(items[0]["status"], "pending", "status after a refused AUTH")
        expect("535" in (items[0]["last_error"] or ""), "last_error names 535: %r" % items[0])
        expect_eq(peer.messages(), [], "nothing delivered")
        plain_smtp(c, peer.port, security="starttls", verify_tls=False, username="mailer",
                   password="right-pass")
        set_clock(c, 31000)
        wait_outbox(c, u["id"], lambda it: it[0]["status"] == "sent", "status sent")
        expect_eq(len(peer.wait_messages(1)), 1, "delivered after the fix")
    finally:
        peer.stop()
        set_clock(c, 0)
        plain_smtp(c, 1)


def test_edited_template_used_next(ctx):
    c = client(ctx)
    old = c.get(NOTIFY).json["templates"]["invite"]
    peer = SmtpPeer(ctx).start()
    try:
        set_clock(c, 0)
        plain_smtp(c, peer.port, other={"templates": {"invite": {
            "subject": "Join {{product}}, {{first_name}}",
            "body": "Hello {{first_name}} {{last_name}},\nyour link: {{link}}\nBye."}}})
        u = queue_invite(c, first_name="Zoë", last_name="Øster")
        items = wait_outbox(c, u["id"], lambda it: it[0]["status"] == "sent", "status sent")
        expect_eq(items[0]["subject"], "Join roster, Zoë", "rendered subject in the outbox")
        msgs = peer.wait_messages(1)
        m = [x for x in msgs if x["X-Envelope-To"] == u["email"]][0]
        expect_eq(subject_of(m), "Join roster, Zoë", "delivered subject")
        body = m.get_content()
        expect("Hello Zoë Øster," in body, "rendered body: %r" % body)
        expect("your link: http" in body, "link rendered: %r" % body)
    finally:
        peer.stop()
        expect_status(c.patch(NOTIFY, {"templates": {"invite": {
            "subject": old["subject"], "body": old["body"]}}}), 200)
        plain_smtp(c, 1)


def test_link_only_in_template_bodies(ctx):
    """Reset and invite links carry a secret token: a subject (shown in mail
    lists, the outbox, logs) may not use {{link}} (422 variable_not_allowed,
    nothing changes); the variable lists say which are body-only; a subject
    stored before the rule still reads but renders without the link."""
    c = client(ctx)
    before = c.get(NOTIFY).json
    t = before["templates"]
    expect_eq(t["reset"]["body_only_variables"], ["link"], "reset body-only variables")
    expect_eq(t["invite"]["body_only_variables"], ["link"], "invite body-only variables")
    for k in KINDS:
        expect(set(t[k]["body_only_variables"]) <= set(t[k]["variables"]),
               "%s body-only variables outside its variables: %r" % (k, t[k]))
    expect_eq(t["welcome"]["body_only_variables"], [], "welcome body-only variables")
    n0 = audit_count(ctx, "settings.notifications")
    for kind, subject in (("reset", "Reset: {{link}}"), ("invite", "Join {{ link }}"),
                          ("reset", "{{username}} {{link}} in {{expires_minutes}} min")):
        r = c.patch(NOTIFY, {"templates": {kind: {"subject": subject,
                                                  "body": "Hello {{first_name}}"}}})
        b = check_problem(r, 422, field="templates.%s.subject" % kind,
                          rule="variable_not_allowed")
        msg = " ".join(e.get("message") or "" for e in b.get("errors") or [])
        expect("only in the body" in msg, "the refusal says why: " + r.describe())
    expect_eq(c.get(NOTIFY).json, before, "settings after the refused patches")
    expect_eq(audit_count(ctx, "settings.notifications"), n0, "audit events")
    # in the body it is what the mail is for
    r = c.patch(NOTIFY, {"templates": {"reset": {"body": "Open {{link}} now"}}})
    expect_status(r, 200)
    expect_status(c.patch(NOTIFY, {"templates": {"reset": None}}), 200)
    # a subject stored before the rule: still reads, never shows the link
    peer = SmtpPeer(ctx).start()
    try:
        set_clock(c, 0)
        plain_smtp(c, peer.port, other={"templates": {"invite": {"subject": "Join {{product}}"}}})
        harness.db_exec(ctx, mail_server(ctx).db_url,
                        "UPDATE settings SET value = json_set(value, '$.templates.invite.subject',"
                        " 'Join: {{link}} ({{first_name}})') WHERE key = 'notifications'",
                        "UPDATE settings SET value = jsonb_set(value::jsonb,"
                        " '{templates,invite,subject}', '\"Join: {{link}} ({{first_name}})\"')"
                        "::text WHERE key = 'notifications'")
        g = c.get(NOTIFY)
        expect_status(g, 200)
        expect_eq(g.json["templates"]["invite"]["subject"], "Join: {{link}} ({{first_name}})",
                  "stored subject", g)
        u = queue_invite(c, first_name="Lea")
        items = wait_outbox(c, u["id"], lambda it: it[0]["status"] == "sent", "status sent")
        expect_eq(items[0]["subject"], "Join:  (Lea)", "outbox subject without the link")
        m = [x for x in peer.wait_messages(1) if x["X-Envelope-To"] == u["email"]][0]
        expect_eq(subject_of(m), "Join:  (Lea)", "delivered subject")
        body = m.get_content()
        expect("/activate" in body, "the link is still in the body: %r" % body)
    finally:
        peer.stop()
        expect_status(c.patch(NOTIFY, {"templates": {"invite": None}}), 200)
        plain_smtp(c, 1)


def test_disabled_kind_not_queued(ctx):
    c = client(ctx)
    r = c.patch(NOTIFY, {"enabled": {"invite": False}})
    expect_status(r, 200)
    try:
        u = queue_invite(c)
        time.sleep(0.3)
        expect_eq(outbox(c, "user_id=%d" % u["id"]), [], "outbox of a disabled kind")
    finally:
        expect_status(c.patch(NOTIFY, {"enabled": {"invite": True}}), 200)


def test_login_diagnosis_says_whether_mail_reaches_the_user(ctx):
    """The spec's "Password reset not working" (review email config) in the
    login diagnosis: an `email` check with the latest mail to the user; not
    a sign-in condition."""
    c = client(ctx)

    def mail_check(uid):
        r = c.get("/api/v1/users/%d/login-diagnosis" % uid)
        expect_status(r, 200)
        found = [x for x in r.json.get("checks", []) if x.get("check") == "email"]
        expect(len(found) == 1, "no email check: %r" % r.json)
        return found[0]
    port = free_port()
    plain_smtp(c, port)  # nothing listens there
    set_clock(c, 0)
    try:
        u = queue_invite(c)
        wait_outbox(c, u["id"], lambda it: it[0]["attempts"] >= 1, "a failed attempt")
        m = mail_check(u["id"])
        expect(m["ok"] is False and "retried" in m["detail"], "failing delivery: %r" % m)
        lm = m.get("last_mail") or {}
        expect(lm.get("kind") == "invite" and lm.get("status") == "pending"
               and lm.get("attempts", 0) >= 1 and lm.get("last_error"),
               "last_mail of a failing delivery: %r" % m)
        # reset mail turned off
        expect_status(c.patch(NOTIFY, {"enabled": {"reset": False}}), 200)
        m = mail_check(u["id"])
        expect(m["ok"] is False and "enabled.reset" in m["detail"], "reset mail off: %r" % m)
        expect_status(c.patch(NOTIFY, {"enabled": {"reset": True}}), 200)
        # delivered
        peer = SmtpPeer(ctx, port=port).start()
        try:
            set_clock(c, 31000)
            wait_outbox(c, u["id"], lambda it: it[0]["status"] == "sent", "status sent")
            m = mail_check(u["id"])
            expect(m["ok"] is True and m["last_mail"]["status"] == "sent"
                   and m["last_mail"]["sent_at"], "delivered: %r" % m)
        finally:
            peer.stop()
    finally:
        set_clock(c, 0)
        plain_smtp(c, 1)
