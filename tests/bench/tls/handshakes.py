# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Load generator of bench_tls.py, run on the client container (python3 - < handshakes.py ARGS).

  handshakes.py HOST PORT new|reuse SECONDS WORKERS [CERT KEY]

WORKERS processes each open connection after connection to HOST:PORT for
SECONDS: TLS handshake, GET /bench, read the answer, close. `new` makes a full
handshake every time; `reuse` offers the session of the previous connection,
as a browser offers its latest ticket (TLS 1.3 tickets of a server-side cache
are single-use, so reusing the first session over and over, as `openssl
s_time -reuse` does, measures failed resumptions). Prints JSON: connections,
how many were resumed, elapsed seconds.
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import ssl
import sys
import time


def worker(args: tuple[str, int, str, float, str | None, str | None]) -> tuple[int, int]:
    host, port, mode, seconds, cert, key = args
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(cert, key)
    session = None
    connections = resumed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.create_connection((host, port)) as raw:
            offered = session if mode == "reuse" else None
            with context.wrap_socket(raw, server_hostname=host, session=offered) as conn:
                conn.sendall(b"GET /bench HTTP/1.0\r\nHost: " + host.encode() + b"\r\n\r\n")
                while conn.recv(4096):
                    pass
                connections += 1
                resumed += conn.session_reused
                session = conn.session
    return connections, resumed


def main() -> int:
    host, port, mode, seconds, workers = (
        sys.argv[1],
        int(sys.argv[2]),
        sys.argv[3],
        float(sys.argv[4]),
        int(sys.argv[5]),
    )
    cert, key = (sys.argv[6], sys.argv[7]) if len(sys.argv) > 7 else (None, None)
    started = time.monotonic()
    with multiprocessing.Pool(workers) as pool:
        results = pool.map(worker, [(host, port, mode, seconds, cert, key)] * workers)
    elapsed = time.monotonic() - started
    json.dump(
        {
            "connections": sum(connections for connections, resumed in results),
            "resumed": sum(resumed for connections, resumed in results),
            "seconds": elapsed,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
