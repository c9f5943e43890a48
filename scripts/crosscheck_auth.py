#!/usr/bin/env python3
"""Independent SPF and DKIM results for tests/it/sender.rs: pyspf and dkimpy (PyPI), asked
through the test's DNS server.

Reads one JSON document on stdin:
  {"server": "127.0.0.1", "port": 5353,
   "cases": [{"kind": "spf", "ip": "192.0.2.10", "sender": "a@b.test", "helo": "h.test"},
             {"kind": "dkim", "eml": "/path/to/message.eml"}]}
and writes {"results": ["pass", "fail", ...]} (one per case): the SPF result word, or for DKIM
"pass" when dkimpy verifies the first signature and "fail" otherwise.
Exits 3 when a module is missing (the caller decides whether that fails or skips).
"""
import json
import sys

try:
    import dns.resolver
    import spf
    import dkim
except ImportError as e:  # reported to the caller
    print(f"missing Python module: {e.name}", file=sys.stderr)
    sys.exit(3)


def main():
    req = json.load(sys.stdin)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [req["server"]]
    resolver.port = int(req["port"])
    resolver.timeout = resolver.lifetime = 5
    dns.resolver.default_resolver = resolver

    def txt(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        try:
            answer = resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(answer[0].strings)

    results = []
    for case in req["cases"]:
        if case["kind"] == "spf":
            result, _explanation = spf.check2(
                i=case["ip"], s=case["sender"], h=case["helo"], querytime=20
            )
            results.append(result)
        else:
            with open(case["eml"], "rb") as f:
                message = f.read()
            try:
                ok = dkim.verify(message, dnsfunc=txt)
            except Exception:  # dkimpy raises on malformed input: not a pass
                ok = False
            results.append("pass" if ok else "fail")
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
