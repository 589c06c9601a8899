"""Testinfra checks of the securestack.pki.portal role (scenario ``portal``).

The portal runs on portal-app behind the web tier on portal-web, with its
database on portal-db and the root and services CAs on portal-ca. TLS checks
use curl on the hosts that hold the certificates they present; the users-CA
check runs curl on this machine with the admin's certificate.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import pytest
import testinfra
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

APP, WEB, DB, CA = "portal-app", "portal-web", "portal-db", "portal-ca"
testinfra_hosts = [f"ansible://{APP}"]

PKI = "/etc/securestack-pki"
USERS_CA = "/var/lib/securestack-portal/users-ca"
CONFIG = "/etc/securestack-portal"
VENV = "/opt/securestack-portal/current"
UNIT = "securestack-portal.service"
PORTAL_URL = f"https://{APP}:8443"
# Each curl prints the HTTP status last; 000 when there was no HTTP exchange.
CURL = "curl -sS -o /dev/null -w '%{http_code}' --max-time 20"
TRUST = f"--cacert {PKI}/ca-bundle.pem"
AS_PROXY = f"{TRUST} --cert {PKI}/proxy.crt --key {PKI}/private/proxy.key"
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"


def other(name: str):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@cache
def credentials() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "credentials"


class Result:
    """A local command's outcome, shaped like testinfra's."""

    def __init__(self, completed: subprocess.CompletedProcess) -> None:
        self.rc, self.stdout, self.stderr = completed.returncode, completed.stdout, completed.stderr


def subprocess_result(argv: list[str]) -> Result:
    return Result(subprocess.run(argv, capture_output=True, text=True, check=False))


def as_portal(host, command: str):
    """Run a command as the service's user, with its configuration."""
    return host.run(f"runuser -u portal -- env SECURESTACK_PORTAL_CONFIG={CONFIG}/portal.toml {command}")


def systemd_properties(host, unit: str) -> dict[str, str]:
    out = host.check_output(f"systemctl show --all {unit} --no-pager")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


# --- the service ------------------------------------------------------------
def test_service_runs_as_its_user_under_systemd(host) -> None:
    service = host.service(UNIT)
    assert service.is_running
    assert service.is_enabled
    props = systemd_properties(host, UNIT)
    assert props["User"] == "portal"
    assert props["Type"] == "notify"
    main_pid = int(props["MainPID"])
    assert main_pid > 0
    pids = [main_pid, *map(int, host.check_output(f"pgrep --parent {main_pid}").split())]
    assert len(pids) >= 3, "the arbiter and two workers"
    for pid in pids:
        status = host.file(f"/proc/{pid}/status").content_string
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert host.check_output(f"ps -o user= -p {pid}") == "portal"
        assert fields["NoNewPrivs"].strip() == "1"
        assert int(fields["CapEff"], 16) == 0
        assert int(fields["CapBnd"], 16) == 0
        assert fields["Seccomp"].strip() == "2"
        assert "gunicorn" in host.file(f"/proc/{pid}/cmdline").content_string


def test_service_sandbox(host) -> None:
    props = systemd_properties(host, UNIT)
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectHome": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RestrictSUIDSGID": "yes",
        "UMask": "0077",
        "CapabilityBoundingSet": "",
        "ReadWritePaths": "/var/lib/securestack-portal",
    }
    assert {key: props.get(key) for key in expected} == expected
    assert sorted(props["RestrictAddressFamilies"].split()) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    # What the sandbox means in practice, from the service's own mount table:
    # code, configuration and keys read-only, its state directory writable,
    # its /tmp its own.
    mounts = service_mounts(host, props["MainPID"])
    for path in (CONFIG, "/opt/securestack-portal", PKI, "/usr", "/etc"):
        assert "ro" in mounts(path)[1], path
    assert "rw" in mounts("/var/lib/securestack-portal/users-ca")[1]
    tmp_root, tmp_options = mounts("/tmp")  # noqa: S108  (the service's /tmp, from its mount table)
    assert "securestack-portal.service" in tmp_root
    assert "noexec" in tmp_options


def service_mounts(host, pid: str):
    """A lookup: path -> (root, options) of the mount that holds it in the process's mount namespace."""
    entries = []
    for line in host.file(f"/proc/{pid}/mountinfo").content_string.splitlines():
        fields = line.split()
        entries.append((fields[4], fields[3], fields[5].split(",")))

    def lookup(path: str) -> tuple[str, list[str]]:
        holding = [e for e in entries if path == e[0] or path.startswith(e[0].rstrip("/") + "/")]
        longest = max(len(e[0]) for e in holding)
        # The last mount on a mount point covers the earlier ones.
        _point, root, options = [e for e in holding if len(e[0]) == longest][-1]
        return root, options

    return lookup


def test_systemd_analyze_security_score(host) -> None:
    out = host.check_output(f"systemd-analyze security {UNIT} --no-pager")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", out)
    assert match, out
    score = float(match.group(1))
    print(f"systemd-analyze security {UNIT}: {score} {match.group(2)}")
    assert score <= 2.0, out


def test_crl_timer_refreshes_the_users_ca_crl(host) -> None:
    assert host.service("securestack-portal-crl.timer").is_enabled
    assert host.service("securestack-portal-crl.timer").is_running
    # The job itself, in its own sandbox, as the portal's user.
    host.check_output("systemctl start securestack-portal-crl.service")
    props = systemd_properties(host, "securestack-portal-crl.service")
    assert props["Result"] == "success"
    assert props["User"] == "portal"
    log = host.check_output("journalctl -u securestack-portal-crl.service --no-pager -o cat -n 20")
    assert re.search(r"CRL (current|rewritten), number \d+", log), log


# --- files --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "user", "group", "mode"),
    [
        (CONFIG, "root", "portal", 0o750),
        (f"{CONFIG}/portal.toml", "root", "portal", 0o640),
        (f"{CONFIG}/gunicorn.conf.py", "root", "portal", 0o640),
        (f"{CONFIG}/secret_key", "root", "portal", 0o640),
        ("/var/lib/securestack-portal", "portal", "portal", 0o700),
        (USERS_CA, "portal", "portal", 0o700),
        (f"{USERS_CA}/ca.key", "portal", "portal", 0o600),
        (f"{USERS_CA}/ledger.sqlite3", "portal", "portal", 0o600),
        (f"{PKI}/private/portal.key", "portal", "portal", 0o600),
        (f"{PKI}/private/portal-db.key", "portal", "portal", 0o600),
    ],
)
def test_file_owners_and_modes(host, path: str, user: str, group: str, mode: int) -> None:
    found = host.file(path)
    assert found.exists
    assert (found.user, found.group, found.mode) == (user, group, mode)


def test_secret_key_is_random_and_long(host) -> None:
    key = host.file(f"{CONFIG}/secret_key").content_string.strip()
    assert len(key) >= 64
    assert len(set(key)) > 20


def test_everything_in_the_users_ca_belongs_to_the_service(host) -> None:
    assert host.check_output(f"find {USERS_CA} ! -user portal") == ""


# --- the virtual environment ----------------------------------------------------
def pins(text: str) -> dict[str, str]:
    return {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in text.split() if "==" in line}


def test_venv_holds_exactly_the_pinned_wheels(host) -> None:
    target = host.file(VENV).linked_to
    assert re.fullmatch(r"/opt/securestack-portal/venvs/[0-9a-f]{32}", target)
    assert host.file(f"{target}/.wheelhouse-sha256").content_string.strip().startswith(target.rsplit("/", 1)[1])
    assert host.check_output("ls /opt/securestack-portal/venvs") == target.rsplit("/", 1)[1]
    lock = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"], "portal", "requirements.lock").read_text()
    pinned = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in lock.split() if "==" in line
    }
    frozen = host.check_output(f"{VENV}/bin/python -m pip freeze --disable-pip-version-check --all")
    installed = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in frozen.split() if "==" in line
    }
    # The venv's own tooling, from Debian's ensurepip.
    for tool in ("pip", "setuptools", "wheel"):
        installed.pop(tool, None)
    assert installed.pop("securestack-portal") == "0.1.0"
    assert installed == pinned


def test_engine_is_the_collections(host) -> None:
    module_utils = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"], "plugins", "module_utils")
    where = host.check_output(
        f"{VENV}/bin/python -c 'import securestack_pki as e, os; print(os.path.dirname(os.path.realpath(e.__file__)))'"
    )
    assert where.startswith("/opt/securestack-portal/venvs/") and where.endswith("site-packages/securestack_pki")
    for source in sorted(module_utils.glob("_pki_*.py")):
        installed = host.file(f"{where}/{source.name}")
        if source.name == "_pki_module.py":
            assert not installed.exists, "the modules' Ansible glue is not part of the engine package"
        else:
            assert installed.content_string == source.read_text()


def test_config_checks_out(host) -> None:
    result = as_portal(host, f"{VENV}/bin/securestack-portal check-config")
    assert result.rc == 0, result.stderr
    assert "configuration OK" in result.stdout
    upgrade = as_portal(host, f"{VENV}/bin/securestack-portal db upgrade")
    assert upgrade.rc == 0, upgrade.stderr
    assert "database already at head" in upgrade.stdout


# --- the users CA -----------------------------------------------------------------
def test_users_ca_is_a_client_only_subordinate_of_the_root(host) -> None:
    root = other(CA).file("/var/lib/securestack-pki/root/ca.crt").content_string
    users = x509.load_pem_x509_certificate(host.file(f"{USERS_CA}/ca.crt").content)
    root_cert = x509.load_pem_x509_certificate(root.encode())
    users.verify_directly_issued_by(root_cert)
    constraints = users.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0
    usages = users.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert users.subject.rfc4514_string() == "CN=SecureStack Users CA,O=SecureStack"
    # The key made here is the one certified.
    key_pub = host.check_output(f"openssl pkey -in {USERS_CA}/ca.key -pubout")
    assert (
        key_pub.strip()
        == users.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        .strip()
    )


def test_users_ca_crl_verifies(host) -> None:
    check = host.run(f"openssl crl -in {USERS_CA}/crl.pem -CAfile {USERS_CA}/chain.pem -noout")
    assert check.rc == 0, check.stderr
    assert "verify OK" in check.stdout + check.stderr
    der = host.check_output(f"openssl crl -inform DER -in {USERS_CA}/crl.der")
    assert der.strip() == host.file(f"{USERS_CA}/crl.pem").content_string.strip()


def crl_serials(pem: str) -> set[int]:
    return {entry.serial_number for entry in x509.load_pem_x509_crl(pem.encode())}


def test_revocation_reaches_the_web_tier(host) -> None:
    """A certificate revoked in the users CA: the portal serves the new CRL, the web tier's timer fetches it."""
    revoke = (
        "from cryptography import x509; from cryptography.hazmat.primitives import hashes, serialization;"
        " from cryptography.hazmat.primitives.asymmetric import ec;"
        " from securestack_pki._pki_ca import CertificateAuthority, SignSpec;"
        " name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, 'Revoked Example')]);"
        " csr = x509.CertificateSigningRequestBuilder().subject_name(name)"
        ".sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(serialization.Encoding.PEM);"
        f" ca = CertificateAuthority.open('{USERS_CA}');"
        " result = ca.sign([SignSpec(csr=csr.decode(), name='portal-test/revoked-user', profile='client')])[0];"
        " ca.revoke(serial=result.serial, reason='keyCompromise'); print(result.serial)"
    )
    result = as_portal(host, f"{VENV}/bin/python -c {shlex.quote(revoke)}")
    assert result.rc == 0, result.stderr
    serial = int(result.stdout.strip(), 16)
    assert serial in crl_serials(host.file(f"{USERS_CA}/crl.pem").content_string)
    web = other(WEB)
    # The portal serves it to the proxy's certificate, without a login.
    served = web.check_output(f"curl -sS --max-time 20 {AS_PROXY} {PORTAL_URL}/crl.pem")
    assert served.strip() == host.file(f"{USERS_CA}/crl.pem").content_string.strip()
    # The web tier's CRL fetch timer gets it, without Ansible.
    web.check_output("systemctl start securestack-pki-crl-fetch.service")
    assert serial in crl_serials(web.file(f"{PKI}/crl/users.crl.pem").content_string)


# --- who may connect to the portal ------------------------------------------------
def refused_with(attempt, reason: str) -> None:
    """Run `attempt` (a refused TLS client) and find gunicorn's reason for the refusal in its log."""
    app = other(APP)
    since = app.check_output("date +%s")
    result = attempt()
    assert result.rc != 0
    assert result.stdout == "000", "no HTTP exchange"
    log = app.check_output(f"journalctl -u {UNIT} --since @{since} --no-pager -o cat")
    assert reason in log, log


def test_proxy_certificate_gets_in() -> None:
    web = other(WEB)
    status = web.check_output(f"{CURL} {AS_PROXY} {PORTAL_URL}/healthz")
    assert status == "200"


def test_connection_without_certificate_is_refused() -> None:
    web = other(WEB)
    refused_with(
        lambda: web.run(f"{CURL} {TRUST} {PORTAL_URL}/healthz"),
        "PEER_DID_NOT_RETURN_A_CERTIFICATE",
    )


def test_server_certificate_is_refused_as_client_certificate() -> None:
    web = other(WEB)
    refused_with(
        lambda: web.run(f"{CURL} {TRUST} --cert {PKI}/server.crt --key {PKI}/private/server.key {PORTAL_URL}/healthz"),
        "unsuitable certificate purpose",
    )


def test_other_services_client_certificate_gets_403_even_with_identity_headers(host) -> None:
    # The portal's own database certificate: services CA, clientAuth, but not a proxy.
    forged = " ".join(
        f"-H {shlex.quote(h)}"
        for h in (
            "X-SSL-Client-Verify: SUCCESS",
            "X-SSL-Client-S-DN: CN=admin,O=SecureStack",
            "X-SSL-Client-I-DN: CN=SecureStack Users CA,O=SecureStack",
            "X-SSL-Client-Serial: 01",
        )
    )
    status = host.check_output(
        f"{CURL} {TRUST} --cert {PKI}/portal-db.crt --key {PKI}/private/portal-db.key {forged} {PORTAL_URL}/"
    )
    assert status == "403"


def test_users_ca_certificate_is_refused_at_the_handshake(host, tmp_path: Path) -> None:
    # The admin's certificate works through the web tier, never straight to the portal.
    passphrase = (credentials() / f"{APP}-admin.passphrase").read_text().strip().encode()
    key, cert, _chain = pkcs12.load_key_and_certificates((credentials() / f"{APP}-admin.p12").read_bytes(), passphrase)
    pem = tmp_path / "admin.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    pem.chmod(0o600)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(host.file(f"{PKI}/ca-bundle.pem").content_string)
    address = host.interface("eth0").addresses[0]
    argv = shlex.split(f"{CURL} --cacert {bundle} --cert {pem} --resolve {APP}:8443:{address} {PORTAL_URL}/healthz")
    refused_with(
        lambda: subprocess_result(argv),
        "unable to get local issuer certificate",
    )


def test_revoked_proxy_certificate_is_refused() -> None:
    """A second proxy certificate (CN portal-web), revoked in the services CA: the CRL keeps it out."""
    web, ca, app = other(WEB), other(CA), other(APP)
    web.check_output(
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=portal-web"
        " -keyout /root/revoked-proxy.key -out /root/revoked-proxy.csr 2>/dev/null"
    )
    csr = web.file("/root/revoked-proxy.csr").content_string
    sign_and_revoke = (
        "import sys; from securestack_pki._pki_ca import CertificateAuthority, SignSpec;"
        " ca = CertificateAuthority.open('/var/lib/securestack-pki/services');"
        " result = ca.sign([SignSpec(csr=sys.stdin.read(), name='portal-test/revoked-proxy', profile='client')])[0];"
        " ca.revoke(serial=result.serial, reason='keyCompromise');"
        " print(ca.ledger.get(result.serial).pem, end='')"
    )
    engine = "PYTHONPATH=/usr/local/lib/securestack-pki python3"
    cert = ca.check_output(f"printf %s {shlex.quote(csr)} | {engine} -c {shlex.quote(sign_and_revoke)}")
    web.check_output(f"printf '%s\\n' {shlex.quote(cert)} > /root/revoked-proxy.crt")
    # The portal host gets the new services CRL (the certificate role would, at its next run or fetch).
    crls = "".join(ca.file(f"/var/lib/securestack-pki/{name}/crl.pem").content_string for name in ("root", "services"))
    app.check_output(f"printf %s {shlex.quote(crls)} > {PKI}/crl-bundle.pem")
    refused_with(
        lambda: web.run(
            f"{CURL} {TRUST} --cert /root/revoked-proxy.crt --key /root/revoked-proxy.key {PORTAL_URL}/healthz"
        ),
        "certificate revoked",
    )
    # The proxy's own certificate still gets in: the new CRL was read, and it is only the revoked one that fails.
    status = web.check_output(f"{CURL} {AS_PROXY} {PORTAL_URL}/healthz")
    assert status == "200"


# --- the database session ----------------------------------------------------------
def test_portal_database_session_is_tls_with_client_certificate(host) -> None:
    # From inside the portal's own engine (its configuration, its certificate).
    probe = (
        "from securestack_portal.config import load; from securestack_portal.database import make_engine;"
        " from sqlalchemy import text; engine = make_engine(load().database);"
        " c = engine.connect();"
        " print(*c.execute(text('SELECT ssl, version, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).one(),"
        " sep='|')"
    )
    result = as_portal(host, f"{VENV}/bin/python -c {shlex.quote(probe)}")
    assert result.rc == 0, result.stderr
    ssl, version, client_dn = result.stdout.strip().split("|")
    assert ssl == "True"
    assert version in ("TLSv1.2", "TLSv1.3")
    assert client_dn == "/CN=portal"


def test_service_database_sessions_are_tls_with_client_certificate(host) -> None:
    # A page that reads the database, through the proxy, then the server's view of the service's sessions.
    web = other(WEB)
    assert web.check_output(f"{CURL} {AS_PROXY} {PORTAL_URL}/healthz") == "200"
    db = other(DB)
    sessions = db.check_output(
        "runuser -u postgres -- psql -AtF'|' -c \"SELECT s.ssl, s.client_dn, a.client_addr FROM pg_stat_ssl s"
        " JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'portal'\""
    )
    address = host.interface("eth0").addresses[0]
    rows = [line.split("|") for line in sessions.splitlines()]
    assert rows, "the service keeps its database sessions open"
    assert all(row == ["t", "/CN=portal", address] for row in rows), rows
    log = db.check_output(
        "grep -h 'user=portal database=portal SSL enabled' /var/log/postgresql/postgresql-15-main.log"
    )
    assert "protocol=TLSv1.3" in log or "protocol=TLSv1.2" in log
    assert 'identity="CN=portal" method=cert' in db.check_output("cat /var/log/postgresql/postgresql-15-main.log")


def test_database_refuses_the_portal_without_its_certificate(host) -> None:
    probe = (
        "import psycopg, sys\n"
        "for kwargs in (dict(sslmode='verify-full', sslrootcert='/etc/securestack-pki/ca-bundle.pem'),"
        " dict(sslmode='disable')):\n"
        "    try:\n"
        "        psycopg.connect(host='portal-db', dbname='portal', user='portal', connect_timeout=10, **kwargs)\n"
        "    except psycopg.OperationalError as exc:\n"
        "        print('refused:', str(exc).strip().splitlines()[-1])\n"
        "    else:\n"
        "        print('connected')\n"
    )
    result = as_portal(host, f"{VENV}/bin/python -c {shlex.quote(probe)}")
    assert result.rc == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("refused:") for line in lines), lines


# --- the first admin ----------------------------------------------------------------
def test_admin_pkcs12_on_the_controller(host) -> None:
    p12 = credentials() / f"{APP}-admin.p12"
    passphrase_file = credentials() / f"{APP}-admin.passphrase"
    assert p12.stat().st_mode & 0o777 == 0o600
    assert passphrase_file.stat().st_mode & 0o777 == 0o600
    passphrase = passphrase_file.read_text().strip()
    assert len(passphrase) >= 32
    key, cert, chain = pkcs12.load_key_and_certificates(p12.read_bytes(), passphrase.encode())
    assert key is not None
    assert cert.subject.rfc4514_string() == "CN=admin,O=SecureStack"
    users_ca = x509.load_pem_x509_certificate(host.file(f"{USERS_CA}/ca.crt").content)
    cert.verify_directly_issued_by(users_ca)
    assert chain[0] == users_ca
    assert (credentials() / f"{APP}-admin.crt").read_bytes() == cert.public_bytes(serialization.Encoding.PEM)
    # The users CA's ledger holds it: the portal lets it in.
    info = as_portal(host, f"{VENV}/bin/python -m securestack_pki info --ca {USERS_CA}")
    assert info.rc == 0, info.stderr
    assert format(cert.serial_number, "x") in info.stdout
