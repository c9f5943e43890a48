#!/usr/bin/env python3
"""An OAuth 2.0 token-introspection endpoint (RFC 7662) for smtpcheck's interop tests.

Started by scripts/interop.sh for the Dovecot `oauth2` passdbs that check the XOAUTH2 and
OAUTHBEARER logins of the interop Postfix's submission listener and of the interop IMAP Dovecot
(introspection_mode = post).

    POST /introspect   form body token=TOKEN
        a token listed as "valid USER"  -> 200 {"active": true, "username": USER, ...}
        a token listed as "expired"     -> 200 {"active": false}   (as RFC 7662 says)
        any other token                 -> 200 {"active": false}

TOKENS_FILE has one token a line: "TOKEN valid USER" or "TOKEN expired". It is read at every
request, so `up` may write it after start. Tokens are never logged. Listens on 127.0.0.1 only;
stops on SIGTERM or SIGINT.

Usage: interop_introspect.py --port PORT --tokens TOKENS_FILE [--host 127.0.0.1]
"""

import argparse
import json
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

MAX_BODY = 64 * 1024


def load_tokens(path):
    tokens = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2:
                    tokens[parts[0]] = parts[1:]
    except OSError:
        pass
    return tokens


class Handler(BaseHTTPRequestHandler):
    tokens_file = ""
    timeout = 10  # seconds per read: a stalled client does not hold a thread forever

    def log_message(self, fmt, *args):  # noqa: A003 (the http.server name)
        # The request line has no token (it is in the body); say only what was asked.
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] != "/introspect":
            self.reply(404, {"error": "not_found"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.reply(400, {"error": "invalid_request"})
            return
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        token = (form.get("token") or [""])[0]
        entry = load_tokens(self.tokens_file).get(token) if token else None
        if entry and entry[0] == "valid" and len(entry) >= 2:
            sys.stderr.write("introspection: active token for %s\n" % entry[1])
            self.reply(
                200,
                {
                    "active": True,
                    "username": entry[1],
                    "scope": "smtp",
                    "exp": int(time.time()) + 3600,
                },
            )
        else:
            kind = entry[0] if entry else "unknown"
            sys.stderr.write("introspection: inactive token (%s)\n" % kind)
            self.reply(200, {"active": False})

    def do_GET(self):  # noqa: N802
        self.reply(405, {"error": "invalid_request"})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tokens", required=True)
    p.add_argument("--host", default="127.0.0.1")
    args = p.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("interop_introspect.py listens on loopback only")
    Handler.tokens_file = args.tokens
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True

    def stop(_sig, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write("introspection endpoint on %s:%d\n" % (args.host, args.port))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
