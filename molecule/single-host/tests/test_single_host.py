"""The whole stack on one host (scenario ``single-host``: playbooks/site.yml, every group on ss-stack).

Three roles hand the certificate role their own CRL list here: the checks
prove that the host keeps what every one of them needs (crl-consumers.json,
the CRL files, the bundle, one fetch timer for all), that the fetch timer
works for all three CAs, and that the stack itself works: the admin reaches
the portal through nginx with the certificate site issued, a connection
without one is refused, the portal's database session is TLS with its
client certificate. Idempotence and check mode are molecule's own steps.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
from functools import cache
from pathlib import Path

import testinfra
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
STACK = AnsibleRunner(INVENTORY).get_hosts("all")[0]
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CREDENTIALS = EPHEMERAL / "credentials"

PKI = "/etc/securestack-pki"
CA_CERTIFICATES = {
    "root": "/var/lib/securestack-pki/root/ca.crt",
    "services": "/var/lib/securestack-pki/services/ca.crt",
    "users": "/var/lib/securestack-portal/users-ca/ca.crt",
}
PG_UNIT = "postgresql@15-main.service"


@cache
def host():
    return testinfra.get_host(f"docker://{STACK}")


@cache
def address() -> str:
    return host().interface("eth0").addresses[0]


def certificate(path: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(host().file(path).content_string.encode())


def crls_in(pem: str) -> list[x509.CertificateRevocationList]:
    blocks = re.findall(r"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", pem, re.S)
    return [x509.load_pem_x509_crl(block.encode()) for block in blocks]


def fetch_script_value(name: str) -> str:
    script = host().file("/usr/local/sbin/securestack-pki-crl-fetch").content_string
    found = re.search(rf"^{name}=(.*)$", script, re.M)
    assert found, f"{name}= is missing from the fetch script"
    return found.group(1).strip("'\"")


@cache
def admin_pem() -> tuple[str, str]:
    """The admin's key and certificate from the PKCS#12 file site left on the controller, as PEM files."""
    p12 = CREDENTIALS / f"{STACK}-admin.p12"
    passphrase = (CREDENTIALS / f"{STACK}-admin.passphrase").read_text().strip()
    key, cert, chain = pkcs12.load_key_and_certificates(p12.read_bytes(), passphrase.encode())
    assert key is not None and cert is not None and chain
    key_path, cert_path = EPHEMERAL / "admin.key", EPHEMERAL / "admin.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


def https_get(path: str, client: tuple[str, str] | None) -> tuple[int, str]:
    """GET from this machine to nginx by address, verifying its certificate for the host's name."""
    root = EPHEMERAL / "root.pem"
    root.write_text(host().file(CA_CERTIFICATES["root"]).content_string)
    context = ssl.create_default_context(cafile=str(root))
    if client:
        context.load_cert_chain(*client)
    raw = socket.create_connection((address(), 443), timeout=30)
    connection = http.client.HTTPSConnection(STACK, 443, timeout=30)
    connection.sock = context.wrap_socket(raw, server_hostname=STACK)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


# ----------------------------------------------------------------- the CRLs of every role on the host
def test_every_role_on_the_host_recorded_its_crl_needs():
    records = json.loads(host().file(f"{PKI}/crl-consumers.json").content_string)
    assert set(records) == {"nginx", "portal", "postgresql"}
    assert sorted(records["nginx"]["cas"]) == ["root", "services", "users"]
    assert sorted(records["postgresql"]["cas"]) == ["root", "services"]
    assert sorted(records["portal"]["cas"]) == ["root", "services"]
    assert records["nginx"]["services"] == ["nginx.service"]
    assert records["postgresql"]["services"] == [PG_UNIT]
    # The users CA is fetched from the portal over mutual TLS: nginx recorded where.
    assert records["nginx"]["locations"]["users"]["crl_url"] == f"https://{STACK}:8443/crl.pem"


def test_the_host_holds_the_crl_of_every_ca_any_role_needs():
    bundle = crls_in(host().file(f"{PKI}/crl-bundle.pem").content_string)
    issuers = sorted(crl.issuer.rfc4514_string() for crl in bundle)
    expected = sorted(certificate(path).subject.rfc4514_string() for path in CA_CERTIFICATES.values())
    assert issuers == expected
    for ca, path in CA_CERTIFICATES.items():
        (crl,) = crls_in(host().file(f"{PKI}/crl/{ca}.crl.pem").content_string)
        ca_cert = certificate(path)
        assert crl.issuer == ca_cert.subject
        assert crl.is_signature_valid(ca_cert.public_key())
        assert host().file(f"{PKI}/crl/{ca}.crl").exists, f"the DER copy of {ca}'s CRL is missing"


def test_one_fetch_timer_serves_every_role():
    assert fetch_script_value("CAS").split() == ["root", "services", "users"]
    assert set(fetch_script_value("SERVICES").split()) == {"nginx.service", PG_UNIT}
    assert host().service("securestack-pki-crl-fetch.timer").is_enabled
    assert host().service("securestack-pki-crl-fetch.timer").is_running


def test_the_fetch_timer_fetches_all_three_crls_and_keeps_the_bundle_whole():
    before = host().file(f"{PKI}/crl-bundle.pem").content_string
    run = host().run("systemctl start securestack-pki-crl-fetch.service")
    journal = host().run("journalctl -u securestack-pki-crl-fetch.service -n 20 --no-pager").stdout
    assert run.rc == 0, run.stderr + journal
    result = host().check_output("systemctl show securestack-pki-crl-fetch.service -p Result --value")
    assert result == "success", journal
    # Nothing newer was published since site ran: the same CRLs, all three.
    assert host().file(f"{PKI}/crl-bundle.pem").content_string == before
    assert len(crls_in(before)) == 3


# ----------------------------------------------------------------- the stack on one host
def test_the_admin_reaches_the_portal_through_nginx():
    status, body = https_get("/api/v1/me", admin_pem())
    assert status == 200, body
    me = json.loads(body)
    assert me["subject"] == "CN=Alice Admin,O=Example"
    assert me["role"] == "admin"


def test_nginx_refuses_a_connection_without_a_client_certificate():
    status, body = https_get("/api/v1/me", None)
    assert status == 400
    assert "No required SSL certificate was sent" in body


def test_the_portal_database_session_is_tls_with_its_client_certificate():
    # A request that reads the database, so the portal holds a session.
    status, body = https_get("/api/v1/me", admin_pem())
    assert status == 200, body
    rows = host().check_output(
        "runuser -u postgres -- psql -AtF'|' -c \"SELECT s.ssl, s.version, s.client_dn FROM pg_stat_ssl s"
        " JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'portal'\""
    )
    sessions = [line.split("|") for line in rows.splitlines()]
    assert sessions, "the portal holds no session to PostgreSQL"
    for ssl_on, version, client_dn in sessions:
        assert ssl_on == "t"
        assert version in ("TLSv1.2", "TLSv1.3")
        assert client_dn == "/CN=portal"
    # The portal reaches PostgreSQL over the network (TLS), not the socket.
    config = host().file("/etc/securestack-portal/portal.toml").content_string
    assert f"postgresql+psycopg://portal@{STACK}:5432/portal" in config
