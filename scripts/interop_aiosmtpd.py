#!/usr/bin/env python3
"""An aiosmtpd server for smtpcheck's interop tests (started by scripts/interop.sh).

It refuses EHLO with 502 (as an old, HELO-only server would), accepts HELO, accepts every
sender and recipient, and spools each message to SPOOL_DIR as one file:

    SPOOL_DIR/<seconds>.<pid>.<counter>.eml   the message bytes exactly as received
                                              (after dot-unstuffing; CRLF line endings)
    SPOOL_DIR/<same name>.json                the envelope: helo, mail_from, rcpt_tos, peer

The .json is written first and the .eml is renamed into place last, so a reader that sees the
.eml finds the .json too. Listens on 127.0.0.1 only; stops on SIGTERM or SIGINT.

Usage: interop_aiosmtpd.py --port PORT --spool SPOOL_DIR [--host 127.0.0.1]
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import sys
import time

from aiosmtpd.smtp import SMTP, syntax

EHLO_REFUSAL = "502 5.5.1 EHLO not implemented here: use HELO"
HOSTNAME = "aiosmtpd.interop.test"


class HeloOnlySMTP(SMTP):
    """An SMTP server that does not implement EHLO."""

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str):  # noqa: N802 (aiosmtpd's naming)
        await self.push(EHLO_REFUSAL)


class SpoolHandler:
    """Writes every accepted message to the spool directory."""

    def __init__(self, spool: str):
        self.spool = spool
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        name = f"{time.time():.6f}.{os.getpid()}.{next(self.counter)}"
        base = os.path.join(self.spool, name)
        meta = {
            "helo": session.host_name,
            "extended_smtp": bool(session.extended_smtp),
            "peer": list(session.peer) if session.peer else None,
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "bytes": len(envelope.original_content or b""),
        }
        tmp = os.path.join(self.spool, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f)
        os.replace(tmp, base + ".json")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or b"")
        os.replace(tmp, base + ".eml")
        return f"250 2.0.0 Ok: spooled as {name}"


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--spool", required=True)
    args = ap.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        print("refusing to listen on a non-loopback address", file=sys.stderr)
        return 2
    os.makedirs(args.spool, exist_ok=True)
    handler = SpoolHandler(args.spool)
    loop = asyncio.get_running_loop()

    def factory():
        return HeloOnlySMTP(
            handler,
            hostname=HOSTNAME,
            ident="smtpcheck interop aiosmtpd",
            data_size_limit=10 * 1024 * 1024,
            timeout=60,
            loop=loop,
        )

    server = await loop.create_server(factory, host=args.host, port=args.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"aiosmtpd listening on {args.host}:{args.port}, spool {args.spool}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()
    print("aiosmtpd stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
