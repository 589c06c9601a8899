"""Testinfra checks shared by the web scenarios (molecule/nginx, molecule/apache).

The scenario's name (MOLECULE_SCENARIO_NAME) is the server under test. Every
check is a real exchange: the client host (group `app`, also the stand-in
portal) connects to each web host with web_client.py and reports what
happened as JSON; the backend logs every request it receives, so a refused
request is also proven never to have reached it. Fixtures (users' keys and
certificates in /etc/web-test on the client) come from
molecule/resources/web/prepare.yml.

What each server does with a refused client certificate differs, and each
is asserted exactly: nginx completes the handshake and answers 400 (403 when
the certificate verifies but comes from another CA than the users CA);
Apache refuses in the handshake with an alert naming the reason, which under
TLS 1.3 reaches the client on its first read, after it sent its request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

__all__ = [
    "test_forged_identity_headers_never_reach_the_backend",
    "test_global_tls_settings_cover_other_sites",
    "test_missing_root_crl_locks_everyone_out",
    "test_old_protocol_versions_are_refused",
    "test_plain_http_redirects_except_the_public_path",
    "test_refusal_reasons_are_the_intended_ones",
    "test_refused_client_certificates",
    "test_revocation_reaches_the_server_without_ansible",
    "test_security_headers",
    "test_server_configuration",
    "test_session_resumption",
    "test_sslyze_reports_mozilla_compliance",
    "test_test_client_really_offers_old_versions",
    "test_the_host_the_browser_sent_reaches_the_backend_with_its_port",
    "test_valid_user_reaches_the_backend_with_verified_identity",
]

KIND = os.environ["MOLECULE_SCENARIO_NAME"]  # nginx | apache
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
WEB = sorted(RUNNER.get_hosts("web"))
CLIENT = RUNNER.get_hosts("app")[0]
CA = RUNNER.get_hosts("ca")[0]
REPO = Path(__file__).resolve().parents[4]
SSLYZE = REPO / ".venv-sslyze" / "bin" / "sslyze"

TEST_DIR = "/etc/web-test"
PKI = "/etc/securestack-pki"
CA_BUNDLE = f"{PKI}/ca-bundle.pem"
USERS_CA = "/var/lib/securestack-pki/users"
IDENTITY = [
    "X-SSL-Client-Verify",
    "X-SSL-Client-S-DN",
    "X-SSL-Client-I-DN",
    "X-SSL-Client-Serial",
    "X-SSL-Client-Fingerprint",
    "X-SSL-Client-Cert",
]
# mod_ssl has no fingerprint of the client certificate (and ap_expr's sha1()
# stops at the first NUL byte of a DER certificate): Apache sends the
# certificate itself, from which the portal computes it.
SENT = [name for name in IDENTITY if not (KIND == "apache" and name == "X-SSL-Client-Fingerprint")]

# Where each server keeps what it verifies client certificates against.
CLIENT_CA_FILE = {"nginx": "/etc/nginx/securestack/client-ca.pem", "apache": "/etc/apache2/securestack/client-ca.pem"}[
    KIND
]
CRL_BUNDLE = f"{PKI}/crl-bundle.pem"
RELOAD = {"nginx": "systemctl reload nginx", "apache": "systemctl reload apache2"}[KIND]

# Mozilla's server-side TLS guidelines 6.0, intermediate: what may be accepted.
MOZILLA_6_INTERMEDIATE_TLS12 = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
MOZILLA_6_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
MOZILLA_6_CURVES = {"X25519MLKEM768", "X25519", "prime256v1", "secp256r1", "secp384r1"}

# Client certificates that must be refused: the files the client presents.
REFUSED = {
    "none": None,
    "revoked": (f"{TEST_DIR}/bob.crt", f"{TEST_DIR}/bob.key"),
    "expired": (f"{TEST_DIR}/dave.crt", f"{TEST_DIR}/dave.key"),
    "foreign-ca": (f"{TEST_DIR}/mallory.crt", f"{TEST_DIR}/mallory.key"),
    "server-usage": (f"{TEST_DIR}/erin.crt", f"{TEST_DIR}/erin.key"),
    "host-server-certificate": (f"{PKI}/backend-fullchain.pem", f"{PKI}/private/backend.key"),
    "services-ca-client": (f"{PKI}/service-client-fullchain.pem", f"{PKI}/private/service-client.key"),
}
ALICE = (f"{TEST_DIR}/alice.crt", f"{TEST_DIR}/alice.key")
CAROL = (f"{TEST_DIR}/carol.crt", f"{TEST_DIR}/carol.key")

# How each server refuses them. nginx: (stage, HTTP status). Apache: the TLS
# alert, which TLS 1.3 delivers on the client's first read ("response").
EXPECTED_REFUSAL = {
    "nginx": {
        "none": ("done", 400),
        "revoked": ("done", 400),
        "expired": ("done", 400),
        "foreign-ca": ("done", 400),
        "server-usage": ("done", 400),
        "host-server-certificate": ("done", 400),
        "services-ca-client": ("done", 403),
    },
    "apache": {
        "none": ("response", "TLSV13_ALERT_CERTIFICATE_REQUIRED"),
        "revoked": ("response", "SSLV3_ALERT_CERTIFICATE_REVOKED"),
        "expired": ("response", "SSLV3_ALERT_CERTIFICATE_EXPIRED"),
        "foreign-ca": ("response", "TLSV1_ALERT_UNKNOWN_CA"),
        "server-usage": ("response", "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"),
        "host-server-certificate": ("response", "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"),
        "services-ca-client": ("done", 403),
    },
}
# Why OpenSSL refuses each certificate against the server's own trust store
# and CRLs (`openssl verify` error codes).
VERIFY_ERROR = {
    "revoked": 23,  # certificate revoked
    "expired": 10,  # certificate has expired
    "foreign-ca": 20,  # unable to get local issuer certificate
    "server-usage": 26,  # unsuitable certificate purpose
    "host-server-certificate": 26,
}


# ----------------------------------------------------------------- helpers
@cache
def host(name: str):
    """Containers of the scenario, reached with docker exec (fast)."""
    return testinfra.get_host(f"docker://{name}")


def profile(web: str) -> str:
    return RUNNER.get_variables(web).get(f"{KIND}_tls_profile", "intermediate")


def intermediate_hosts() -> list[str]:
    return [web for web in WEB if profile(web) == "intermediate"]


def request(web: str, cert: tuple[str, str] | None = None, *, path: str = "/", **options) -> dict:
    """One request from the client host to `web`, as web_client.py reports it."""
    argv = ["python3", f"{TEST_DIR}/web_client.py", "--host", web, "--path", path]
    if not options.pop("plain", False):
        argv += ["--cafile", CA_BUNDLE]
    else:
        argv += ["--plain"]
    if cert:
        argv += ["--cert", cert[0], "--key", cert[1]]
    for header in options.pop("headers", []):
        argv += ["--header", header]
    for option, value in options.items():
        flag = "--" + option.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return json.loads(host(CLIENT).check_output(shlex.join(argv)))


def settled(web: str, cert: tuple[str, str] | None, accepted: bool, timeout: float = 20) -> dict:
    """Requests until the answer is (or is not) 200: a reload takes effect once the old workers have left."""
    deadline = time.monotonic() + timeout
    while True:
        path = probe_path()
        report = request(web, cert, path=path)
        report["probe"] = path
        if (report["status"] == 200) == accepted or time.monotonic() > deadline:
            return report
        time.sleep(0.5)


def probe_path() -> str:
    return f"/probe/{uuid.uuid4().hex}"


def backend_log() -> list[dict]:
    text = host(CLIENT).file("/var/log/web-backend.log").content_string
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def backend_saw(path: str) -> bool:
    return any(entry["path"] == path for entry in backend_log())


def received_headers(report: dict) -> list[tuple[str, str]]:
    return [tuple(pair) for pair in json.loads(report["body"])["headers"]]


def header(report: dict, name: str) -> str | None:
    values = [value for key, value in report.get("headers", []) if key.lower() == name.lower()]
    return values[0] if values else None


def canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def subject_rfc2253(path: str, what: str = "subject") -> str:
    out = host(CLIENT).check_output(f"openssl x509 -in {path} -noout -{what} -nameopt RFC2253")
    return re.sub(rf"^{what}=\s*", "", out.strip())


def certificate_der(path: str) -> bytes:
    pem = host(CLIENT).file(path).content_string
    body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    assert body
    return base64.b64decode("".join(body.group(1).split()))


def assert_refused(web: str, case: str, report: dict, path: str) -> None:
    stage, outcome = EXPECTED_REFUSAL[KIND][case]
    assert report["stage"] == stage, report
    if stage == "done":
        assert report["status"] == outcome, report
    else:
        assert report["reason"] == outcome, report
    assert not backend_saw(path), f"{case}: the backend received {path}"


# ----------------------------------------------------------------- the tests
@pytest.mark.parametrize("web", WEB)
def test_valid_user_reaches_the_backend_with_verified_identity(web):
    path = probe_path()
    report = request(web, ALICE, path=path)
    assert report["status"] == 200, report
    echo = json.loads(report["body"])
    # The backend let it in because nginx/Apache presented its proxy certificate.
    assert echo["peer"] == web
    assert echo["path"] == path
    received = {name.lower(): value for name, value in received_headers(report)}
    assert received["x-ssl-client-verify"] == "SUCCESS"
    assert received["x-ssl-client-s-dn"] == subject_rfc2253(ALICE[0]) == "CN=Alice Example,O=SecureStack"
    assert (
        received["x-ssl-client-i-dn"] == subject_rfc2253(ALICE[0], "issuer") == "CN=SecureStack Users CA,O=SecureStack"
    )
    serial = host(CLIENT).check_output(f"openssl x509 -in {ALICE[0]} -noout -serial").split("=")[1]
    assert int(received["x-ssl-client-serial"], 16) == int(serial, 16)
    der = certificate_der(ALICE[0])
    sent = urllib.parse.unquote(received["x-ssl-client-cert"])
    body = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", sent, re.S)
    assert body and base64.b64decode("".join(body.group(1).split())) == der
    if "X-SSL-Client-Fingerprint" in SENT:
        assert received["x-ssl-client-fingerprint"] == hashlib.sha1(der).hexdigest()  # noqa: S324 (nginx's fingerprint)
    else:
        assert "x-ssl-client-fingerprint" not in received
    assert {"status": 200, "path": path, "peer": web} in backend_log()


@pytest.mark.parametrize("case", sorted(REFUSED))
@pytest.mark.parametrize("web", WEB)
def test_refused_client_certificates(web, case):
    path = probe_path()
    report = request(web, REFUSED[case], path=path)
    assert_refused(web, case, report, path)


@pytest.mark.parametrize("web", WEB)
def test_refusal_reasons_are_the_intended_ones(web):
    """Each refused certificate fails for its own reason against the server's trust store and CRLs."""
    server = host(web)
    client = host(CLIENT)
    tmp = server.check_output("mktemp -d")
    try:
        for case, expected in VERIFY_ERROR.items():
            cert = client.file(REFUSED[case][0]).content_string
            server.run_expect([0], f"cat > {tmp}/{case}.pem << 'EOF'\n{cert}EOF")
            result = server.run(
                f"openssl verify -crl_check_all -purpose sslclient -CAfile {CLIENT_CA_FILE}"
                f" -CRLfile {CRL_BUNDLE} -untrusted {tmp}/{case}.pem {tmp}/{case}.pem"
            )
            assert result.rc != 0
            assert f"error {expected} at 0 depth" in result.stdout + result.stderr, (case, result.stdout)
        alice = client.file(ALICE[0]).content_string
        server.run_expect([0], f"cat > {tmp}/alice.pem << 'EOF'\n{alice}EOF")
        server.run_expect(
            [0],
            f"openssl verify -crl_check_all -purpose sslclient -CAfile {CLIENT_CA_FILE}"
            f" -CRLfile {CRL_BUNDLE} {tmp}/alice.pem",
        )
    finally:
        server.run(f"rm -rf {tmp}")


@pytest.mark.parametrize("web", WEB)
def test_forged_identity_headers_never_reach_the_backend(web):
    forged = []
    for name in IDENTITY:
        words = name.split("-")
        spellings = {
            name,
            name.lower(),
            name.upper(),
            "_".join(words),
            "_".join(words).lower(),
            "-".join(words[:2]) + "_" + "_".join(words[2:]),  # X-SSL_Client_S_DN
            "_".join(words[:2]) + "-" + "-".join(words[2:]),  # X_SSL-Client-S-DN
        }
        forged += [f"{spelling}: forged-{i}" for i, spelling in enumerate(sorted(spellings))]
    # The portal trusts one hop of X-Forwarded-*: only the web server's may arrive.
    forged += ["X-Forwarded-For: 203.0.113.66", "X-Forwarded-Host: evil.example", "X_Forwarded_Host: evil.example"]
    path = probe_path()
    report = request(web, ALICE, path=path, headers=forged)
    assert report["status"] == 200, report
    received = received_headers(report)
    forwarded = [(canonical(name), value) for name, value in received if canonical(name).startswith("x-forwarded-")]
    client_address = host(CLIENT).check_output(f"getent hosts {CLIENT}").split()[0]
    assert ("x-forwarded-for", client_address) in forwarded, forwarded
    assert ("x-forwarded-host", web) in forwarded, forwarded
    assert not [value for _name, value in forwarded if "evil" in value or "203.0.113.66" in value], forwarded
    assert len([name for name, _value in forwarded if name == "x-forwarded-host"]) == 1, forwarded
    ours = [(name, value) for name, value in received if canonical(name) in {canonical(n) for n in IDENTITY}]
    # Exactly one copy of each header the server sends, in its own spelling, none forged.
    assert sorted(name for name, _value in ours) == sorted(SENT), received
    assert not [value for _name, value in ours if "forged" in value], received
    # A header that is not ours passes untouched: the check above can fail.
    report = request(web, ALICE, path=probe_path(), headers=["X-Harmless: yes"])
    assert ("X-Harmless", "yes") in received_headers(report)


@pytest.mark.parametrize("port", [None, 8443, 443])
@pytest.mark.parametrize("web", WEB)
def test_the_host_the_browser_sent_reaches_the_backend_with_its_port(web, port):
    """Behind a port-forward (the demo publishes 443 on 8443) the browser sends Host: name:8443; the portal
    checks that host and builds its URLs and the origin forms must come from with it, so the port must stay."""
    sent = web if port is None else f"{web}:{port}"
    path = probe_path()
    report = request(web, ALICE, path=path, host_header=sent, headers=["X-Forwarded-Host: evil.example"])
    assert report["status"] == 200, report
    received = [(canonical(name), value) for name, value in received_headers(report)]
    assert [value for name, value in received if name == "x-forwarded-host"] == [sent], received
    if KIND == "nginx":
        assert [value for name, value in received if name == "host"] == [sent], received
    assert backend_saw(path)


@pytest.mark.parametrize("version", ["1.0", "1.1"])
@pytest.mark.parametrize("web", WEB)
def test_old_protocol_versions_are_refused(web, version):
    report = request(web, ALICE, tls=version, seclevel0=True)
    assert report["stage"] == "handshake", report
    # The server's protocol_version alert: the client did offer the version.
    assert report["reason"] == "TLSV1_ALERT_PROTOCOL_VERSION", report


def test_test_client_really_offers_old_versions():
    """The client of the test above can speak TLS 1.0 and 1.1: to a server that accepts them, it does."""
    client = host(CLIENT)
    for version, flag in (("1.0", "-tls1"), ("1.1", "-tls1_1")):
        server = (
            f"timeout 30 openssl s_server -quiet -www -accept 4433 {flag} -cipher ALL@SECLEVEL=0"
            f" -cert {PKI}/backend.crt -key {PKI}/private/backend.key"
        )
        out = client.check_output(
            f"{server} > /dev/null 2>&1 & pid=$!; sleep 1;"
            f" python3 {TEST_DIR}/web_client.py --host 127.0.0.1 --port 4433 --tls {version} --seclevel0;"
            " kill $pid"
        )
        report = json.loads(out)
        assert report["handshake"] and report["version"] == {"1.0": "TLSv1", "1.1": "TLSv1.1"}[version], report


@pytest.mark.parametrize("web", WEB)
def test_session_resumption(web):
    versions = ["1.2", "1.3"] if profile(web) == "intermediate" else ["1.3"]
    for version in versions:
        report = request(web, ALICE, tls=version, resume=True)
        assert report["status"] == 200, report
        assert report["resumed"] is True, report
        if version == "1.2":
            # Resumption from the server's session cache: no session ticket.
            assert report["ticket"] is False, report
    if profile(web) == "modern":
        assert request(web, ALICE, tls="1.2")["stage"] == "handshake"


@pytest.mark.parametrize("port", [443, 8444])
@pytest.mark.parametrize("web", WEB)
def test_global_tls_settings_cover_other_sites(web, port):
    """The escape hatch's second TLS site (port 8444) gets the same TLS as the portal."""
    cert = ALICE if port == 443 else None
    for version in ("1.0", "1.1"):
        report = request(web, cert, port=port, tls=version, seclevel0=True)
        assert report["reason"] == "TLSV1_ALERT_PROTOCOL_VERSION", report
    # CBC, CCM and ARIA suites for our ECDSA certificate, which Debian's
    # defaults allow; refused by the server (its handshake_failure alert).
    for cipher in ("ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES256-CCM"):
        report = request(web, cert, port=port, tls="1.2", ciphers=cipher)
        expected = "SSLV3_ALERT_HANDSHAKE_FAILURE" if profile(web) == "intermediate" else "TLSV1_ALERT_PROTOCOL_VERSION"
        assert report["reason"] == expected, (cipher, report)
    report = request(web, cert, port=port, tls="1.3")
    assert report["handshake"] and report["status"] == 200, report
    if profile(web) == "intermediate":
        report = request(web, cert, port=port, tls="1.2", ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        assert report["handshake"] and report["status"] == 200, report
    else:
        assert request(web, cert, port=port, tls="1.2")["stage"] == "handshake"
    if port == 8444:
        # nginx: the escape hatch's `return 200`; Apache: Debian's default page.
        assert {"nginx": "another site", "apache": "Apache2 Debian Default Page"}[KIND] in report["body"]


@pytest.mark.parametrize("web", WEB)
def test_plain_http_redirects_except_the_public_path(web):
    report = request(web, port=80, plain=True, path="/some/page?x=1")
    assert report["status"] == 301, report
    assert header(report, "Location") == f"https://{web}/some/page?x=1"
    client = host(CLIENT)
    for ca in ("users", "root", "services"):
        # The DER CRL, byte for byte the file on the web host; it parses as the CA's CRL.
        served = client.check_output(f"curl -fsS http://{web}/pki/{ca}.crl | sha256sum")
        assert served.split()[0] == host(web).check_output(f"sha256sum {PKI}/crl/{ca}.crl").split()[0]
        issuer = client.check_output(f"curl -fsS http://{web}/pki/{ca}.crl | openssl crl -inform DER -noout -issuer")
        assert "SecureStack" in issuer
        served = client.check_output(f"curl -fsS http://{web}/pki/{ca}.crt | sha256sum")
        assert served.split()[0] == host(web).check_output(f"sha256sum {PKI}/crl/{ca}.crt").split()[0]
    content_type = client.check_output(f"curl -fsS -o /dev/null -w '%{{content_type}}' http://{web}/pki/users.crl")
    assert content_type == "application/pkix-crl"
    # Only files, only reading: no listing, no upload, nothing outside the directory.
    assert client.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' http://{web}/pki/") in {"403", "404"}
    code = client.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -X POST --data x http://{web}/pki/users.crl")
    assert code in {"403", "405"}
    code = client.check_output(
        f"curl -s --path-as-is -o /dev/null -w '%{{http_code}}' http://{web}/pki/../private/server.key"
    )
    assert code != "200"
    code = client.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' http://{web}/pki/..%2fprivate%2fserver.key")
    assert code != "200"


@pytest.mark.parametrize("web", WEB)
def test_security_headers(web):
    for report in (request(web, ALICE), request(web, REFUSED["services-ca-client"])):
        assert report["status"] in {200, 403}, report
        assert header(report, "Strict-Transport-Security") == "max-age=63072000"
        assert header(report, "X-Content-Type-Options") == "nosniff"
        assert header(report, "Referrer-Policy") == "same-origin"
        assert "frame-ancestors 'none'" in header(report, "Content-Security-Policy")
        # Server tokens off: the product, no version.
        assert header(report, "Server") == {"nginx": "nginx", "apache": "Apache"}[KIND]


@pytest.mark.parametrize("web", WEB)
def test_server_configuration(web):
    server = host(web)
    if KIND == "nginx":
        server.run_expect([0], "nginx -t")
        dump = server.check_output("nginx -T 2>/dev/null")
        protocols = re.findall(r"^\s*ssl_protocols\s+([^;]+);", dump, re.M)
        assert protocols, "no ssl_protocols"
    else:
        server.run_expect([0], "apache2ctl -t")
        dump = server.check_output("cat /etc/apache2/securestack/securestack.conf")
        protocols = re.findall(r"^\s*SSLProtocol\s+(.+)$", dump, re.M)
        assert protocols
    # Never TLS 1.0 or 1.1, anywhere in the configuration.
    assert all("TLSv1 " not in p + " " and "TLSv1.1" not in p for p in protocols), protocols
    assert server.service({"nginx": "nginx", "apache": "apache2"}[KIND]).is_running


@pytest.mark.parametrize("web", WEB)
def test_missing_root_crl_locks_everyone_out(web):
    """CRLs are checked for every CA of the chain, the root included: without the root's CRL nobody gets in."""
    server = host(web)
    root_crl = server.file(f"{PKI}/crl/root.crl.pem").content_string.strip()
    bundle = server.file(CRL_BUNDLE).content_string
    assert root_crl in bundle
    server.run_expect([0], f"cp -p {CRL_BUNDLE} {CRL_BUNDLE}.saved")
    try:
        without_root = bundle.replace(root_crl, "").strip() + "\n"
        server.run_expect([0], f"cat > {CRL_BUNDLE} << 'EOF'\n{without_root}EOF")
        server.run_expect([0], RELOAD)
        report = settled(web, ALICE, accepted=False)
        assert report["status"] != 200, report
        assert not backend_saw(report["probe"])
    finally:
        server.run_expect([0], f"mv -f {CRL_BUNDLE}.saved {CRL_BUNDLE}")
        server.run_expect([0], RELOAD)
    assert settled(web, ALICE, accepted=True)["status"] == 200


def test_revocation_reaches_the_server_without_ansible():
    """Revoked on the CA host, refused by every web host once its CRL fetch timer ran: no Ansible run between."""
    client = host(CLIENT)
    serial = client.check_output(f"openssl x509 -in {CAROL[0]} -noout -serial").split("=")[1]
    crl = host(CA).check_output(f"openssl crl -in {USERS_CA}/crl.pem -noout -text")
    revoked = {int(number, 16) for number in re.findall(r"Serial Number: ([0-9A-Fa-f]+)", crl)}
    if int(serial, 16) not in revoked:
        # Valid until now: carol gets through.
        for web in WEB:
            assert request(web, CAROL)["status"] == 200
        ca = testinfra.get_host(f"ansible://{CA}", ansible_inventory=INVENTORY)
        ca.ansible("securestack.pki.ca_revoke", f"ca={USERS_CA} serial={serial} reason=keyCompromise", check=False)
        host(CA).run_expect([0], "/usr/local/lib/securestack-pki/publish-public")
    for web in WEB:
        host(web).run_expect([0], "systemctl start securestack-pki-crl-fetch.service")
        report = settled(web, CAROL, accepted=False)
        assert_refused(web, "revoked", report, report["probe"])
        assert settled(web, ALICE, accepted=True)["status"] == 200


def test_sslyze_reports_mozilla_compliance():
    """sslyze (PyPI) against every web host, with our root and alice's certificate for the mutual-TLS server."""
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp)
        (files / "root.crt").write_text(host(CA).file("/var/lib/securestack-pki/root/ca.crt").content_string)
        (files / "alice.crt").write_text(host(CLIENT).file(ALICE[0]).content_string)
        (files / "alice.key").write_text(host(CLIENT).check_output(f"cat {ALICE[1]}") + "\n")

        def scan(web: str) -> tuple[str, subprocess.CompletedProcess, dict]:
            address = subprocess.run(
                ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", web],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            out = files / f"{web}.json"
            argv = [
                str(SSLYZE),
                f"--mozilla_config={profile(web)}",
                f"--certinfo_ca_file={files / 'root.crt'}",
                f"--cert={files / 'alice.crt'}",
                f"--key={files / 'alice.key'}",
                f"--json_out={out}",
                f"{web}:443{{{address}}}",
            ]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
            return web, result, json.loads(out.read_text()) if out.exists() else {}

        with ThreadPoolExecutor(len(WEB)) as pool:
            scans = list(pool.map(scan, WEB))
    for web, result, data in scans:
        assert result.returncode == 0, f"{web}: {result.stdout}\n{result.stderr}"
        assert f'Checking results against Mozilla\'s "{profile(web)}" configuration' in result.stdout, result.stdout
        assert f"{web}:443: OK - Compliant." in result.stdout, result.stdout
        # And within Mozilla 6.0, which sslyze 6.3 (built on 5.7) does not know yet.
        scan_result = data["server_scan_results"][0]["scan_result"]
        accepted = {
            version: {
                suite["cipher_suite"]["name"] for suite in scan_result[version]["result"]["accepted_cipher_suites"]
            }
            for version in (
                "ssl_2_0_cipher_suites",
                "ssl_3_0_cipher_suites",
                "tls_1_0_cipher_suites",
                "tls_1_1_cipher_suites",
                "tls_1_2_cipher_suites",
                "tls_1_3_cipher_suites",
            )
        }
        assert not any(
            accepted[v]
            for v in (
                "ssl_2_0_cipher_suites",
                "ssl_3_0_cipher_suites",
                "tls_1_0_cipher_suites",
                "tls_1_1_cipher_suites",
            )
        )
        assert accepted["tls_1_3_cipher_suites"] and accepted["tls_1_3_cipher_suites"] <= MOZILLA_6_TLS13
        if profile(web) == "intermediate":
            assert (
                accepted["tls_1_2_cipher_suites"] and accepted["tls_1_2_cipher_suites"] <= MOZILLA_6_INTERMEDIATE_TLS12
            )
        else:
            assert not accepted["tls_1_2_cipher_suites"]
        curves = {curve["name"] for curve in scan_result["elliptic_curves"]["result"]["supported_curves"]}
        assert curves and curves <= MOZILLA_6_CURVES, curves
