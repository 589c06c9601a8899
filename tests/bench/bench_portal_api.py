# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The portal's JSON API under a bounded load (`make bench`), run with .venv-portal/bin/python.

The portal (portal/src, the engine linked as `securestack_pki` as portal/tests/conftest.py does)
runs under real gunicorn on 127.0.0.1 with the settings the portal role deploys
(roles/portal/templates/gunicorn.conf.py.j2 and the role's defaults: gthread workers and threads,
TLS with a required client certificate of the root/services CAs, CRLs of the chain checked,
access log written), a SQLite database migrated by `securestack-portal db upgrade`, and a users CA
made with the engine. The clients stand for the web tier: each holds one keep-alive TLS connection
with the proxy's services-CA client certificate (so the app's proxy check passes) and sends the
identity headers of users-CA certificates, those of an admin and of one requester per client.

Load: a fixed number of clients, each running a fixed number of cycles of ten API calls (80 %
reads: pending and all requests, certificates (the inventory), /me, one request; 20 % writes: a
requester submits a CSR, the admin approves it, which signs it). Printed: requests/s, p50/p99
latency overall and per call, errors. Any error (an unexpected status or body, a failed
connection, a traceback in gunicorn's log, a ledger that does not hold every approved certificate)
makes the exit status non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import ipaddress
import json
import math
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROLE_DEFAULTS = REPO / "roles" / "portal" / "defaults" / "main.yml"
ADMIN = "CN=Bench Admin,O=SecureStack"
PROXY_CN = "web1"


def link_engine(root: Path) -> Path:
    """A `securestack_pki` package of symlinks to the collection's engine, as portal/tests/conftest.py makes it."""
    package = root / "securestack_pki"
    package.mkdir(parents=True)
    for source in [*sorted((REPO / "plugins" / "module_utils").glob("_pki_*.py")), REPO / "roles/ca/files/__init__.py"]:
        if source.name != "_pki_module.py":
            (package / source.name).symlink_to(source)
    return root


WORK = Path(tempfile.mkdtemp(prefix="bench-portal-"))
ENGINE = link_engine(WORK / "engine")
sys.path[:0] = [str(ENGINE), str(REPO / "portal" / "src")]

try:
    import gunicorn
    import gunicorn.config
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from securestack_pki._pki_ca import AuthoritySettings, CertificateAuthority, SignSpec
except ImportError as exc:
    raise SystemExit(
        f"{exc}: run this with the portal's venv, .venv-portal/bin/python (make setup builds it)"
    ) from None


# ------------------------------------------------------------------ settings
def role_defaults() -> dict[str, str]:
    """The portal role's gunicorn and TLS defaults, read from its defaults/main.yml (no YAML parser needed)."""
    text = ROLE_DEFAULTS.read_text()
    wanted = ("portal_workers", "portal_threads", "portal_timeout", "portal_tls_minimum_version", "portal_tls_ciphers")
    found: dict[str, str] = {}
    for name in wanted:
        match = re.search(rf"^{name}:[ \t]*(\S.*)$", text, re.MULTILINE)
        if match is None:
            raise SystemExit(f"{ROLE_DEFAULTS} has no {name}")
        value = match.group(1).strip()
        if value in (">-", ">"):  # a folded scalar: the indented lines that follow, joined by spaces
            lines = []
            for line in text[match.end() :].splitlines()[1:]:
                if not line.startswith("  "):
                    break
                lines.append(line.strip())
            value = " ".join(lines)
        found[name] = value
    return found


GUNICORN_CONF = """\
# Made by tests/bench/bench_portal_api.py after roles/portal/templates/gunicorn.conf.py.j2.
import ssl

wsgi_app = "securestack_portal.wsgi:app"
bind = [{bind}]
workers = {workers}
worker_class = "gthread"
threads = {threads}
timeout = {timeout}
proc_name = "securestack-portal-bench"
accesslog = {accesslog}
errorlog = {errorlog}
control_socket_disable = True
forwarded_allow_ips = ""

certfile = {certfile}
keyfile = {keyfile}
ca_certs = {ca_certs}
cert_reqs = ssl.CERT_REQUIRED
do_handshake_on_connect = True
ciphers = {ciphers}

CRL_BUNDLE = {crl_bundle}


def ssl_context(conf, default_ssl_context_factory):
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.{minimum_version}
    context.load_verify_locations(cafile=CRL_BUNDLE)
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION
    return context
"""


# ----------------------------------------------------------------------- PKI
def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr_for(subject: str, key=None, sans: list[x509.GeneralName] | None = None) -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name.from_rfc4514_string(subject))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key or new_key(), hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def issue_files(ca_dir: Path, subject: str, profile: str, directory: Path, sans=None) -> tuple[Path, Path]:
    """Key file and certificate file (the certificate followed by its CA chain)."""
    key = new_key()
    ca = CertificateAuthority.open(str(ca_dir))
    name = x509.Name.from_rfc4514_string(subject).get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    pem = ca.sign([SignSpec(csr=csr_for(subject, key, sans), profile=profile, name=str(name))])[0].certificate or ""
    key_file, cert_file = directory / f"{name}-{profile}.key", directory / f"{name}-{profile}.crt"
    key_file.write_bytes(key_pem(key))
    key_file.chmod(0o600)
    cert_file.write_text(pem + "".join(ca.chain_pem))
    return key_file, cert_file


@dataclass(frozen=True)
class Person:
    subject: str
    headers: dict[str, str]


def person(users_ca: Path, subject: str) -> Person:
    """A users-CA client certificate (issued outside the portal, as Ansible does) and what nginx sends for it."""
    ca = CertificateAuthority.open(str(users_ca))
    result = ca.sign([SignSpec(csr=csr_for(subject), profile="client")])[0]
    pem = result.certificate or ""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return Person(
        subject=subject,
        headers={
            "X-SSL-Client-Verify": "SUCCESS",
            "X-SSL-Client-S-DN": subject,
            "X-SSL-Client-I-DN": ca.certificate.subject.rfc4514_string(),
            "X-SSL-Client-Serial": (result.serial or "").upper(),
            "X-SSL-Client-Fingerprint": hashlib.sha1(der).hexdigest(),  # noqa: S324  (nginx's fingerprint is SHA-1)
            "X-SSL-Client-Cert": urllib.parse.quote(pem),
        },
    )


@dataclass
class Pki:
    root: Path
    services: Path
    users: Path
    server: tuple[Path, Path]
    proxy: tuple[Path, Path]
    bundle: Path
    crl_bundle: Path


def make_pki(base: Path) -> Pki:
    """Root, services CA under it, users CA (clientAuth only, key made beside the portal) as the roles deploy them."""
    root, services, users = base / "root", base / "services", base / "users-ca"
    CertificateAuthority.ensure(
        str(root), AuthoritySettings(common_name="Bench Root CA", organization_name="SecureStack")
    )
    CertificateAuthority.ensure(
        str(services),
        AuthoritySettings(common_name="SecureStack Services CA", organization_name="SecureStack"),
        parent=str(root),
    )
    settings = AuthoritySettings(common_name="SecureStack Users CA", organization_name="SecureStack")
    _changed, csr, _before, _after = CertificateAuthority.ensure_external(str(users), settings)
    root_ca = CertificateAuthority.open(str(root))
    signed = root_ca.sign([SignSpec(csr=csr, profile="intermediate", extended_key_usage=["clientAuth"])])[0]
    CertificateAuthority.ensure_external(str(users), settings, certificate=signed.certificate, chain=root_ca.chain_pem)
    tls = base / "tls"
    tls.mkdir()
    server = issue_files(
        services,
        "CN=localhost",
        "server",
        tls,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    proxy = issue_files(services, f"CN={PROXY_CN}", "client", tls)
    bundle, crl_bundle = tls / "ca-bundle.pem", tls / "crl-bundle.pem"
    bundle.write_bytes((root / "ca.crt").read_bytes() + (services / "ca.crt").read_bytes())
    crl_bundle.write_bytes((root / "crl.pem").read_bytes() + (services / "crl.pem").read_bytes())
    return Pki(root, services, users, server, proxy, bundle, crl_bundle)


# -------------------------------------------------------------------- server
def toml(data: dict) -> str:
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, values in ((k, v) for k, v in data.items() if isinstance(v, dict)):
        lines.append(f"\n[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    errorlog: Path
    settings: dict[str, str]


def start_server(pki: Pki, base: Path, defaults: dict[str, str], workers: int, threads: int) -> Server:
    base.mkdir(parents=True)
    (base / "secret_key").write_text(os.urandom(32).hex())
    (base / "secret_key").chmod(0o600)
    services_subject = CertificateAuthority.open(str(pki.services)).certificate.subject.rfc4514_string()
    config = base / "portal.toml"
    config.write_text(
        toml(
            {
                "secret_key_file": str(base / "secret_key"),
                "database": {"url": f"sqlite:///{base / 'portal.sqlite3'}"},
                "ca": {"dir": str(pki.users), "user_valid_days": 365},
                "auth": {"admin_subjects": [ADMIN], "proxy_common_names": [PROXY_CN], "proxy_issuer": services_subject},
            }
        )
    )
    env = {
        **os.environ,
        "SECURESTACK_PORTAL_CONFIG": str(config),
        "PYTHONPATH": os.pathsep.join([str(ENGINE), str(REPO / "portal" / "src")]),
    }
    upgrade = subprocess.run(
        [sys.executable, "-m", "securestack_portal", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if upgrade.returncode != 0:
        raise SystemExit(f"securestack-portal db upgrade failed:\n{upgrade.stdout}{upgrade.stderr}")
    port = free_port()
    errorlog = base / "gunicorn-error.log"
    settings = {
        "workers": str(workers),
        "threads": str(threads),
        "timeout": defaults["portal_timeout"],
        "minimum_version": defaults["portal_tls_minimum_version"].replace(".", "_"),
    }
    conf = base / "gunicorn.conf.py"
    conf.write_text(
        GUNICORN_CONF.format(
            bind=json.dumps(f"127.0.0.1:{port}"),
            accesslog=json.dumps(str(base / "gunicorn-access.log")),
            errorlog=json.dumps(str(errorlog)),
            certfile=json.dumps(str(pki.server[1])),
            keyfile=json.dumps(str(pki.server[0])),
            ca_certs=json.dumps(str(pki.bundle)),
            ciphers=json.dumps(defaults["portal_tls_ciphers"]),
            crl_bundle=json.dumps(str(pki.crl_bundle)),
            **settings,
        )
    )
    gunicorn_bin = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [str(gunicorn_bin), "--config", str(conf)],
        env=env,
        cwd=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while (answer := health(pki, port)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            process.terminate()
            log = errorlog.read_text() if errorlog.exists() else ""
            raise SystemExit(f"gunicorn did not start:\n{log[-3000:]}")
        time.sleep(0.2)
    if answer[0] != 200:
        process.terminate()
        raise SystemExit(f"the portal answers /healthz with HTTP {answer[0]}: {answer[1][:300]!r}")
    return Server(process, port, errorlog, settings)


def health(pki: Pki, port: int) -> tuple[int, bytes] | None:
    """/healthz through the proxy's connection; None while nothing answers."""
    try:
        connection = Connection(pki, port)
        try:
            status, body, _seconds = connection.call("GET", "/healthz", {})
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return None
    return status, body


# -------------------------------------------------------------------- client
def client_context(pki: Pki) -> ssl.SSLContext:
    """What the web tier does: verify the portal against the root, present the proxy certificate."""
    context = ssl.create_default_context(cafile=str(pki.root / "ca.crt"))
    context.load_cert_chain(certfile=str(pki.proxy[1]), keyfile=str(pki.proxy[0]))
    return context


class Connection:
    """One keep-alive TLS connection, like an nginx upstream keepalive connection to the portal."""

    def __init__(self, pki: Pki, port: int) -> None:
        self.context = client_context(pki)
        self.port = port
        self.connection: http.client.HTTPSConnection | None = None
        self.handshakes = 0

    def call(self, method: str, path: str, headers: dict[str, str], body: object = None) -> tuple[int, bytes, float]:
        if self.connection is not None and self.connection.sock is not None:
            # An idle keep-alive connection that turned readable was closed by the server (gunicorn's
            # keepalive timeout): nginx drops such a connection from its cache too, and opens a new one.
            readable, _w, _x = select.select([self.connection.sock], [], [], 0)
            if readable:
                self.close()
        if self.connection is None:
            self.connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=120)
            self.connection.connect()
            self.handshakes += 1
        data = None if body is None else json.dumps(body).encode()
        sent = {**headers, **({"Content-Type": "application/json"} if data is not None else {})}
        start = time.perf_counter()
        try:
            self.connection.request(method, path, body=data, headers=sent)
            response = self.connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        elapsed = time.perf_counter() - start
        if response.will_close:
            self.close()
        return response.status, payload, elapsed

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@dataclass
class Worker:
    """One client: its connection, its requester identity, its CSRs made in advance."""

    connection: Connection
    admin: Person
    requester: Person
    csrs: list[str]
    samples: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def call(self, label: str, method: str, path: str, who: Person, expect: int, *, body: object = None) -> object:
        try:
            status, payload, seconds = self.connection.call(method, path, who.headers, body)
        except (OSError, http.client.HTTPException) as exc:
            self.errors.append(f"{label}: {type(exc).__name__}: {exc}")
            return None
        self.samples.append((label, seconds))
        if status != expect:
            self.errors.append(f"{label}: HTTP {status} (expected {expect}): {payload[:300]!r}")
            return None
        try:
            return json.loads(payload)
        except ValueError:
            self.errors.append(f"{label}: the answer is not JSON: {payload[:300]!r}")
            return None

    def cycle(self) -> int:
        """Ten API calls, two of them writes. Returns how many certificates it got issued."""
        admin, me = self.admin, self.requester
        issued = 0
        self.call("GET requests?status=pending (admin)", "GET", "/api/v1/requests?status=pending", admin, 200)
        self.call("GET certificates (admin)", "GET", "/api/v1/certificates", admin, 200)
        self.call("GET me", "GET", "/api/v1/me", me, 200)
        created = self.call(
            "POST requests (submit)", "POST", "/api/v1/requests", me, 201, body={"csr": self.csrs.pop()}
        )
        self.call("GET requests (admin)", "GET", "/api/v1/requests", admin, 200)
        self.call("GET requests (own)", "GET", "/api/v1/requests", me, 200)
        if isinstance(created, dict) and created.get("status") == "pending":
            done = self.call(
                "POST requests/<id>/approve",
                "POST",
                f"/api/v1/requests/{created['id']}/approve",
                admin,
                200,
                body={"comment": "bench"},
            )
            if isinstance(done, dict) and done.get("status") == "issued" and done.get("serial"):
                issued += 1
            elif done is not None:
                self.errors.append(f"approve: not issued: {done!r}")
            self.call("GET requests/<id> (admin)", "GET", f"/api/v1/requests/{created['id']}", admin, 200)
        elif created is not None:
            self.errors.append(f"submit: not pending: {created!r}")
        self.call("GET certificates (own)", "GET", "/api/v1/certificates", me, 200)
        self.call("GET me (admin)", "GET", "/api/v1/me", admin, 200)
        return issued


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def seed(clients: list[Worker], count: int) -> int:
    """Issued certificates in the users CA before the load, through the API (not measured)."""
    issued = 0
    for client in clients:
        for _seeded in range(count):
            body = {"csr": client.csrs.pop()}
            created = client.call("seed submit", "POST", "/api/v1/requests", client.requester, 201, body=body)
            if isinstance(created, dict):
                path = f"/api/v1/requests/{created['id']}/approve"
                done = client.call("seed approve", "POST", path, client.admin, 200, body={})
                issued += isinstance(done, dict) and done.get("status") == "issued"
    for client in clients:
        client.samples.clear()
    return issued


def load(clients: list[Worker], cycles: int) -> tuple[float, int]:
    """Every client at once, after one warm-up cycle each: (seconds, certificates issued)."""
    barrier = threading.Barrier(len(clients) + 1)
    issued = [0] * len(clients)

    def drive(index: int) -> None:
        client = clients[index]
        try:
            issued[index] += client.cycle()  # warm-up: connection and users seen by the app, not measured
            client.samples.clear()
            barrier.wait(timeout=600)
            for _cycle in range(cycles):
                issued[index] += client.cycle()
        except Exception as exc:  # a client that dies is an error of the run, not a hang
            client.errors.append(f"client {index}: {type(exc).__name__}: {exc}")
            barrier.abort()

    threads = [threading.Thread(target=drive, args=(i,), daemon=True) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: its error is reported
        barrier.wait(timeout=600)
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, sum(issued)


def run(args: argparse.Namespace) -> int:
    defaults = role_defaults()
    workers = args.workers or int(defaults["portal_workers"])
    threads = args.threads or int(defaults["portal_threads"])
    print("building the CAs, the proxy and server certificates and the users ...", flush=True)
    pki = make_pki(WORK / "pki")
    admin = person(pki.users, ADMIN)
    requesters = [person(pki.users, f"CN=Bench Requester {i},O=SecureStack") for i in range(args.clients)]
    per_client = args.cycles + 1 + args.seed  # warm-up cycle and seeding included
    csrs = [[csr_for(r.subject) for _csr in range(per_client)] for r in requesters]
    server = start_server(pki, WORK / "portal", defaults, workers, threads)
    try:
        clients = [Worker(Connection(pki, server.port), admin, r, c) for r, c in zip(requesters, csrs, strict=True)]
        print(f"seeding {args.seed * args.clients} issued certificates through the API ...", flush=True)
        expected = 1 + args.clients + seed(clients, args.seed)  # the admin's and requesters' own certificates too
        print(f"load: {args.clients} clients x {args.cycles} cycles of 10 calls ...", flush=True)
        elapsed, issued = load(clients, args.cycles)
        expected += issued
        check = Worker(Connection(pki, server.port), admin, admin, [])
        listed = check.call("final inventory", "GET", "/api/v1/certificates", admin, 200)
        check.connection.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=60)
    errors = [e for c in clients for e in c.errors] + check.errors
    if isinstance(listed, list) and len(listed) != expected:
        errors.append(f"the users CA lists {len(listed)} certificates, {expected} were issued")
    log = server.errorlog.read_text()
    errors += [f"gunicorn: {line}" for line in log.splitlines() if re.search(r"Traceback|\[ERROR\]|\[CRITICAL\]", line)]
    report(args, server, clients, elapsed, errors=errors, certificates=expected)
    return 1 if errors else 0


def report(
    args, server: Server, clients: list[Worker], elapsed: float, *, errors: list[str], certificates: int
) -> None:
    samples = [s for c in clients for s in c.samples]
    latencies = [seconds for _label, seconds in samples]
    writes = sum(1 for label, _s in samples if label.startswith("POST"))
    handshakes = sum(c.connection.handshakes for c in clients)
    print()
    print(
        f"Portal JSON API, bounded load on loopback ({os.cpu_count()} cores, gunicorn {gunicorn.__version__},"
        f" Python {sys.version.split()[0]}, SQLite):"
    )
    print(
        f"  gunicorn as the portal role deploys it: gthread, workers={server.settings['workers']},"
        f" threads={server.settings['threads']}, timeout={server.settings['timeout']},"
        f" keepalive={gunicorn.config.Config().keepalive} (gunicorn's default), TLS >="
        f" {server.settings['minimum_version'].replace('_', '.')} with a required client certificate and CRL"
        " checks, access log on"
    )
    print(
        f"  load: {args.clients} clients, one keep-alive TLS connection each (proxy certificate), {args.cycles}"
        f" cycles of 10 calls each; {writes} of {len(samples)} calls are writes (submit, approve)"
    )
    print(f"  users CA at the end: {certificates} certificates ({args.seed * args.clients} seeded before the load)")
    print()
    if latencies:
        print(
            f"  requests {len(latencies)} in {elapsed:.1f} s: {len(latencies) / elapsed:.1f} requests/s,"
            f" p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms,"
            f" max {max(latencies) * 1000:.0f} ms, errors {len(errors)}, TLS handshakes {handshakes}"
        )
    print()
    header = f"  {'call':<36} {'count':>6} {'p50 ms':>7} {'p99 ms':>7}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for label in dict.fromkeys(label for label, _s in samples):
        values = [s for lab, s in samples if lab == label]
        print(
            f"  {label:<36} {len(values):>6} {percentile(values, 0.5) * 1000:>7.0f}"
            f" {percentile(values, 0.99) * 1000:>7.0f}"
        )
    if errors:
        print()
        print(f"ERRORS ({len(errors)}), the first ones:")
        for error in errors[:10]:
            print(f"  {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (keep-alive connections)")
    parser.add_argument("--cycles", type=int, default=25, help="cycles of 10 calls per client")
    parser.add_argument("--seed", type=int, default=5, help="certificates issued per client before the load")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: the portal role's)")
    parser.add_argument("--threads", type=int, default=0, help="threads per worker (default: the portal role's)")
    parser.add_argument("--keep", action="store_true", help=f"keep the work directory ({WORK})")
    args = parser.parse_args()
    try:
        status = run(args)
    finally:
        if args.keep:
            print(f"work directory kept: {WORK}")
        else:
            shutil.rmtree(WORK, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
