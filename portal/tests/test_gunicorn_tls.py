"""The portal behind real gunicorn TLS: only the proxy's services-CA client certificate gets an answer."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from securestack_pki._pki_ca import CertificateAuthority, SignSpec

from conftest import ADMIN, Harness, Pki, portal_config
from securestack_portal.devsetup import _toml

GUNICORN = Path(sys.executable).parent / "gunicorn"


def issue(ca_dir: Path, cn: str, profile: str, directory: Path) -> tuple[Path, Path]:
    """Key and certificate files (certificate followed by its CA chain)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if profile == "server":
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    csr = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    ca = CertificateAuthority.open(str(ca_dir))
    pem = ca.sign([SignSpec(csr=csr, profile=profile, name=cn)])[0].certificate or ""
    key_file, cert_file = directory / f"{cn}-{profile}.key", directory / f"{cn}-{profile}.crt"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_text(pem + "".join(ca.chain_pem))
    return key_file, cert_file


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(portal: Harness, pki: Pki, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    server_key, server_cert = issue(pki.services, "localhost", "server", tmp_path)
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes((pki.root / "ca.crt").read_bytes() + (pki.services / "ca.crt").read_bytes())
    port = free_port()
    (tmp_path / "gunicorn.conf.py").write_text(
        f"bind = ['127.0.0.1:{port}']\nworkers = 1\ncertfile = '{server_cert}'\nkeyfile = '{server_key}'\n"
        f"ca_certs = '{bundle}'\ncert_reqs = 2\n"
    )
    config = tmp_path / "portal.toml"
    # reached straight, by the name in its certificate, on a random port
    config.write_text(_toml(portal_config(portal.directory, portal.users_ca, ("localhost",))))
    env = {
        **os.environ,
        "SECURESTACK_PORTAL_CONFIG": str(config),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p.startswith(("/tmp", str(Path(__file__).parents[1])))),
    }
    process = subprocess.Popen(
        [str(GUNICORN), "-c", str(tmp_path / "gunicorn.conf.py"), "securestack_portal.wsgi:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "gunicorn.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("gunicorn did not start: " + (tmp_path / "gunicorn.log").read_text())
                time.sleep(0.1)
        yield port, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=30)


def get(port: int, root: Path, path: str, client: tuple[Path, Path] | None, headers: dict | None = None):
    context = ssl.create_default_context(cafile=str(root / "ca.crt"))
    if client:
        context.load_cert_chain(certfile=str(client[1]), keyfile=str(client[0]))
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_only_the_proxy_certificate_is_answered(portal: Harness, pki: Pki, served: tuple[int, Path]) -> None:
    port, tmp_path = served
    proxy = issue(pki.services, "web1", "client", tmp_path)
    person = portal.person(ADMIN)
    status, body = get(port, pki.root, "/api/v1/me", proxy, person.headers(portal.issuer))
    assert status == 200 and '"role":"admin"' in body.replace(" ", "")
    assert get(port, pki.root, "/healthz", proxy)[0] == 200
    # a person's users-CA certificate (chain included) passes TLS, but is not the proxy: 403
    users_key, users_cert = issue(portal.users_ca, "Alice Admin", "client", tmp_path)
    status, body = get(port, pki.root, "/api/v1/me", (users_key, users_cert), person.headers(portal.issuer))
    assert status == 403 and "not the services CA" in body
    # a services-CA client certificate of another host: 403
    other = issue(pki.services, "db1", "client", tmp_path)
    status, body = get(port, pki.root, "/healthz", other)
    assert status == 403 and "not one of the web tier" in body
    # no client certificate: the handshake itself fails
    with pytest.raises((ssl.SSLError, ConnectionResetError, http.client.RemoteDisconnected)):
        get(port, pki.root, "/healthz", None)
