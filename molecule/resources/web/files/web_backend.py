"""Stand-in for the portal in the web scenarios: an HTTPS server that echoes what it received.

TLS with a services-CA server certificate; it demands a client certificate
that verifies against the root/services bundle and answers only the web
tier's proxies (the common names given with --allow), like the portal. Every
request is logged (one JSON line: path, peer, status) and answered with JSON:
the method, the path, the peer's common name and every header as received
(name and value, in order, duplicates included).
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

LOG_LOCK = threading.Lock()


class EchoHandler(BaseHTTPRequestHandler):
    server_version = "web-backend"
    allowed: frozenset[str] = frozenset()
    log_path: Path = Path("/dev/null")

    def peer_common_name(self) -> str:
        cert = self.connection.getpeercert() or {}
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
        return ""

    def answer(self) -> None:
        peer = self.peer_common_name()
        status = 200 if peer in self.allowed else 403
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "peer": peer,
                "headers": [list(h) for h in self.headers.items()],
            }
        ).encode()
        with LOG_LOCK, self.log_path.open("a") as log:
            log.write(json.dumps({"path": self.path, "peer": peer, "status": status}) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    # http.server dispatches on these names.
    do_GET = answer
    do_POST = answer

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert", required=True, help="server certificate and its chain (PEM)")
    parser.add_argument("--key", required=True)
    parser.add_argument("--cafile", required=True, help="CAs that verify client certificates")
    parser.add_argument("--allow", action="append", default=[], help="common name of a proxy (repeatable)")
    parser.add_argument("--log", required=True, type=Path)
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cafile=args.cafile)
    context.load_cert_chain(args.cert, args.key)

    EchoHandler.allowed = frozenset(args.allow)
    EchoHandler.log_path = args.log
    server = ThreadingHTTPServer(("", args.port), EchoHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
