"""Test client of the web scenarios: one real HTTP request, over TLS or not, reported as JSON.

  web_client.py --host NAME [--port 443] [--cert PEM --key PEM] [--cafile PEM]
                [--tls 1.0|1.1|1.2|1.3] [--seclevel0] [--ciphers LIST]
                [--header 'Name: value' ...] [--method GET] [--path /] [--plain]
                [--resume] [--host-header NAME[:PORT]]

Headers are written as given (underscores, duplicates and case kept). The
report says how far the exchange got: `stage` is "connect", "handshake",
"request", "response" or "done"; an error carries OpenSSL's reason (for
example TLSV13_ALERT_CERTIFICATE_REQUIRED), so a test can tell a handshake
refused by the server from one the client's own OpenSSL refused.

--tls pins the protocol version; with --seclevel0 the client drops OpenSSL's
security level to 0, which is what lets OpenSSL 3 offer TLS 1.0 and 1.1 at
all (Debian's default configuration refuses them before the server can).
--resume makes a second request that offers the first one's TLS session and
reports whether the server resumed it (`resumed`) and whether that session
came with a session ticket (`ticket`).
"""

from __future__ import annotations

import argparse
import json
import socket
import ssl
import sys

VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def tls_context(args: argparse.Namespace) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if args.cafile:
        context.load_verify_locations(cafile=args.cafile)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    if args.seclevel0:
        context.set_ciphers((args.ciphers or "ALL") + ":@SECLEVEL=0")
    elif args.ciphers:
        context.set_ciphers(args.ciphers)
    if args.tls:
        context.minimum_version = VERSIONS[args.tls]
        context.maximum_version = VERSIONS[args.tls]
    return context


def error_report(report: dict, stage: str, exc: Exception) -> dict:
    report["stage"] = stage
    report["error"] = type(exc).__name__
    report["reason"] = getattr(exc, "reason", None) or str(exc)
    report["message"] = str(exc)
    return report


def parse_response(raw: bytes, report: dict) -> None:
    head, _blank, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    report["status"] = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else None
    report["headers"] = [[part.strip() for part in line.split(":", 1)] for line in lines[1:] if ":" in line]
    report["body"] = body.decode("utf-8", "replace")


def exchange(
    args: argparse.Namespace, context: ssl.SSLContext | None, session: ssl.SSLSession | None = None
) -> tuple[dict, ssl.SSLSession | None]:
    """Connect, handshake (unless `context` is None), send the request, read the answer.

    Returns the report and the TLS session (to resume, with the same context).
    """
    report: dict = {"stage": "connect", "handshake": False, "status": None}
    try:
        raw_sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    except OSError as exc:
        return error_report(report, "connect", exc), None
    with raw_sock:
        sock: socket.socket = raw_sock
        if context is not None:
            try:
                sock = context.wrap_socket(raw_sock, server_hostname=args.host, session=session)
            except (ssl.SSLError, OSError) as exc:
                return error_report(report, "handshake", exc), None
            report.update(handshake=True, version=sock.version(), cipher=sock.cipher()[0], resumed=sock.session_reused)
        host_header = args.host_header or args.host
        request = f"{args.method} {args.path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n"
        request += "".join(f"{header}\r\n" for header in args.header) + "\r\n"
        try:
            sock.sendall(request.encode("iso-8859-1"))
        except (ssl.SSLError, OSError) as exc:
            return error_report(report, "request", exc), None
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ssl.SSLError, OSError) as exc:
            if not chunks:
                return error_report(report, "response", exc), None
        report["stage"] = "done"
        parse_response(b"".join(chunks), report)
        return report, getattr(sock, "session", None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="name to connect to (SNI, Host, certificate check)")
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--cafile")
    parser.add_argument("--tls", choices=sorted(VERSIONS))
    parser.add_argument("--seclevel0", action="store_true")
    parser.add_argument("--ciphers")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--host-header", help="the Host header (default: --host), as a browser behind a port-forward")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", default="/")
    parser.add_argument("--plain", action="store_true", help="plain HTTP, no TLS")
    parser.add_argument("--resume", action="store_true", help="a second request that resumes the first's session")
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()

    try:
        context = None if args.plain else tls_context(args)
    except ssl.SSLError as exc:
        # The client's own OpenSSL refused the settings: nothing was sent.
        json.dump(error_report({"handshake": False, "status": None}, "setup", exc), sys.stdout)
        return 0
    report, session = exchange(args, context)
    if args.resume and report["stage"] == "done":
        report, _session = exchange(args, context, session)
        report["ticket"] = bool(session and session.has_ticket)
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
