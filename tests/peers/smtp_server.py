#!/usr/bin/python3
"""smtp_server.py: a small SMTP server for the tests (aiosmtpd; run with
/usr/bin/python3, where Debian's python3-aiosmtpd lives).

    smtp_server.py --port N --dir DIR [--starttls CERT KEY | --tls CERT KEY]
                   [--auth USER:PASS] [--refuse-rcpt TEXT]

Listens on 127.0.0.1:N and writes every message it accepts to DIR as one file
(written under a temporary name, then renamed, so a reader never sees half a
message); the file holds the envelope as two header lines (X-Envelope-From,
X-Envelope-To) followed by the message exactly as received.

--starttls CERT KEY  advertise STARTTLS and refuse mail before it
--tls CERT KEY       implicit TLS (SMTPS) on the port
--auth USER:PASS     require AUTH (PLAIN or LOGIN) with these credentials;
                     a wrong password gets "535 5.7.8 Authentication credentials invalid"
--refuse-rcpt TEXT   refuse recipients containing TEXT with "550 5.1.1 <rcpt>: mailbox unavailable"

Prints "ready" on stdout once it accepts connections and runs until SIGTERM
or SIGINT.
"""

import argparse
import itertools
import os
import signal
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class FileHandler:
    def __init__(self, directory, refuse_rcpt=None):
        self.dir = directory
        self.refuse = refuse_rcpt
        self.seq = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and self.refuse in address:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            n = next(self.seq)
        name = "%d.%06d.%d" % (int(time.time()), n, os.getpid())
        tmp = os.path.join(self.dir, "." + name + ".tmp")
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        head = ("X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n" % (
            envelope.mail_from, ",".join(envelope.rcpt_tos))).encode("utf-8")
        with open(tmp, "wb") as f:
            f.write(head + data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.dir, name + ".eml"))
        return "250 Message accepted for delivery"


def make_authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        login = getattr(auth_data, "login", b"") or b""
        pw = getattr(auth_data, "password", b"") or b""
        ok = login.decode("utf-8", "replace") == user and pw.decode("utf-8", "replace") == password
        if ok:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Authentication credentials invalid")
    return authenticate


def server_ctx(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--auth", metavar="USER:PASS")
    ap.add_argument("--refuse-rcpt", metavar="TEXT")
    args = ap.parse_args()
    if args.starttls and args.tls:
        ap.error("--starttls and --tls exclude each other")
    os.makedirs(args.dir, exist_ok=True)

    kw = {"server_hostname": "localhost"}
    tls = bool(args.starttls or args.tls)
    if args.starttls:
        kw["tls_context"] = server_ctx(*args.starttls)
        kw["require_starttls"] = True
    if args.tls:
        kw["ssl_context"] = server_ctx(*args.tls)
    if args.auth:
        user, _, password = args.auth.partition(":")
        kw["authenticator"] = make_authenticator(user, password)
        kw["auth_required"] = True
        kw["auth_require_tls"] = tls
    handler = FileHandler(args.dir, args.refuse_rcpt)
    ctl = Controller(handler, hostname="127.0.0.1", port=args.port, **kw)
    ctl.start()

    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print("ready", flush=True)
    while not done.is_set():
        done.wait(0.5)
    ctl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
