"""The portal role's own checks, on the demo's stack (scripts/demo-test.sh runs this file after test_stack.py).

These were the molecule scenario ``portal`` (CA, PostgreSQL, portal, nginx),
which built the very hosts the demo has; they now run on the demo bed. The
hosts come from the inventory's groups (``app``, ``web_nginx``,
``web_apache``, ``db_postgresql``, ``ca``), the settings from the same
environment as test_stack.py (STACK_INVENTORY, STACK_CREDENTIALS,
STACK_WORK, STACK_WEB_URLS).

1. the service: gunicorn under systemd as its own user, sandboxed (its
   mount table, systemd-analyze security), the users CA's CRL timer;
2. files: owners and modes, the secret key, the users CA's directory;
3. the virtual environment: exactly the pinned wheels and the engine of the
   collection that deployed it (the installed tarball in
   ANSIBLE_COLLECTIONS_PATH, from which site ran);
4. the users CA: a client-only subordinate of the root with the key made
   on the portal host, its CRL, a revocation that reaches both web servers
   through the portal and their CRL fetch timers;
5. who may connect to the portal: the proxies' certificates only; no
   certificate, a server certificate, another service's certificate with
   forged identity headers, a users-CA certificate and a revoked proxy
   certificate are refused (gunicorn's reason read from its journal);
6. the database session: TLS with the portal's client certificate, seen
   from both ends; refused without it;
7. the first admin's PKCS#12 file on this machine;
8. the portal's own browser test (tests/browser/test_portal_browser.py)
   through nginx on the demo's published port, then through Apache.

State: what this file changes (a certificate revoked in the users CA, one
in the services CA, the portal host's CRL bundle, Alice enrolled through
each web server) is its own; nothing here reads what test_stack.py left,
and test_stack.py runs first (its checks of the latest revocation and of
the CRL push assume that only its browser run revoked anything).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from stack_bed import APP, CA, CREDENTIALS, PG, PROJECT, RUNNER, WEB_HOSTS, WEB_URLS, address, host
from stack_bed import WORK as BED_WORK

WEB = WEB_HOSTS["nginx"]
WEB_SERVERS = WEB_HOSTS
DB = PG
WORK = BED_WORK / "portal"
ARTIFACTS = PROJECT / ".cache" / "artifacts" / "demo"
# The collection site ran from: the tarball demo/demo.sh built from this
# checkout and installed there (what the hosts got, even if the checkout
# has moved on since).
DEPLOYED = (
    Path(os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(PROJECT / ".cache" / "demo-collections")).split(":")[0])
    / "ansible_collections"
    / "securestack"
    / "pki"
)

PKI = "/etc/securestack-pki"
USERS_CA = "/var/lib/securestack-portal/users-ca"
CONFIG = "/etc/securestack-portal"
VENV = "/opt/securestack-portal/current"
UNIT = "securestack-portal.service"
PORTAL_URL = f"https://{APP}:{RUNNER.get_variables(APP).get('portal_port', 8443)}"
PORTAL_PORT = urlsplit(PORTAL_URL).port
# Each curl prints the HTTP status last; 000 when there was no HTTP exchange.
CURL = "curl -sS -o /dev/null -w '%{http_code}' --max-time 20"
TRUST = f"--cacert {PKI}/ca-bundle.pem"
AS_PROXY = f"{TRUST} --cert {PKI}/proxy.crt --key {PKI}/private/proxy.key"
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"


def admin_files() -> tuple[Path, Path]:
    return CREDENTIALS / f"{APP}-admin.p12", CREDENTIALS / f"{APP}-admin.passphrase"


def as_portal(command: str):
    """Run a command on the app host as the service's user, with its configuration."""
    return host(APP).run(f"runuser -u portal -- env SECURESTACK_PORTAL_CONFIG={CONFIG}/portal.toml {command}")


def systemd_properties(name: str, unit: str) -> dict[str, str]:
    out = host(name).check_output(f"systemctl show --all {unit} --no-pager")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def pins(text: str) -> dict[str, str]:
    """name -> version of every `name==version` line (pip freeze, requirements.lock)."""
    return {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in text.split() if "==" in line}


# ----------------------------------------------------------------- 1. the service
def test_service_runs_as_its_user_under_systemd() -> None:
    app = host(APP)
    service = app.service(UNIT)
    assert service.is_running
    assert service.is_enabled
    props = systemd_properties(APP, UNIT)
    assert props["User"] == "portal"
    assert props["Type"] == "notify"
    main_pid = int(props["MainPID"])
    assert main_pid > 0
    pids = [main_pid, *map(int, app.check_output(f"pgrep --parent {main_pid}").split())]
    assert len(pids) >= 3, "the arbiter and two workers"
    for pid in pids:
        status = app.file(f"/proc/{pid}/status").content_string
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert app.check_output(f"ps -o user= -p {pid}") == "portal"
        assert fields["NoNewPrivs"].strip() == "1"
        assert int(fields["CapEff"], 16) == 0
        assert int(fields["CapBnd"], 16) == 0
        assert fields["Seccomp"].strip() == "2"
        assert "gunicorn" in app.file(f"/proc/{pid}/cmdline").content_string


def service_mounts(pid: str):
    """A lookup: path -> (root, options) of the mount that holds it in the process's mount namespace."""
    entries = []
    for line in host(APP).file(f"/proc/{pid}/mountinfo").content_string.splitlines():
        fields = line.split()
        entries.append((fields[4], fields[3], fields[5].split(",")))

    def lookup(path: str) -> tuple[str, list[str]]:
        holding = [e for e in entries if path == e[0] or path.startswith(e[0].rstrip("/") + "/")]
        longest = max(len(e[0]) for e in holding)
        # The last mount on a mount point covers the earlier ones.
        _point, root, options = [e for e in holding if len(e[0]) == longest][-1]
        return root, options

    return lookup


def test_service_sandbox() -> None:
    props = systemd_properties(APP, UNIT)
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
    mounts = service_mounts(props["MainPID"])
    for path in (CONFIG, "/opt/securestack-portal", PKI, "/usr", "/etc"):
        assert "ro" in mounts(path)[1], path
    assert "rw" in mounts(USERS_CA)[1]
    tmp_root, tmp_options = mounts("/tmp")
    assert "securestack-portal.service" in tmp_root
    assert "noexec" in tmp_options


def test_systemd_analyze_security_score() -> None:
    out = host(APP).check_output(f"systemd-analyze security {UNIT} --no-pager")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", out)
    assert match, out
    score = float(match.group(1))
    print(f"systemd-analyze security {UNIT}: {score} {match.group(2)}")
    assert score <= 2.0, out


def test_crl_timer_refreshes_the_users_ca_crl() -> None:
    app = host(APP)
    assert app.service("securestack-portal-crl.timer").is_enabled
    assert app.service("securestack-portal-crl.timer").is_running
    # The job itself, in its own sandbox, as the portal's user.
    app.check_output("systemctl start securestack-portal-crl.service")
    props = systemd_properties(APP, "securestack-portal-crl.service")
    assert props["Result"] == "success"
    assert props["User"] == "portal"
    log = app.check_output("journalctl -u securestack-portal-crl.service --no-pager -o cat -n 20")
    assert re.search(r"CRL (current|rewritten), number \d+", log), log


# ----------------------------------------------------------------- 2. files
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
def test_file_owners_and_modes(path: str, user: str, group: str, mode: int) -> None:
    found = host(APP).file(path)
    assert found.exists
    assert (found.user, found.group, found.mode) == (user, group, mode)


def test_secret_key_is_random_and_long() -> None:
    key = host(APP).file(f"{CONFIG}/secret_key").content_string.strip()
    assert len(key) >= 64
    assert len(set(key)) > 20


def test_everything_in_the_users_ca_belongs_to_the_service() -> None:
    assert host(APP).check_output(f"find {USERS_CA} ! -user portal") == ""


# ----------------------------------------------------------------- 3. the virtual environment
def test_venv_holds_exactly_the_pinned_wheels() -> None:
    app = host(APP)
    target = app.file(VENV).linked_to
    assert re.fullmatch(r"/opt/securestack-portal/venvs/[0-9a-f]{32}", target)
    assert app.file(f"{target}/.wheelhouse-sha256").content_string.strip().startswith(target.rsplit("/", 1)[1])
    assert app.check_output("ls /opt/securestack-portal/venvs") == target.rsplit("/", 1)[1]
    pinned = pins((DEPLOYED / "portal" / "requirements.lock").read_text())
    installed = pins(app.check_output(f"{VENV}/bin/python -m pip freeze --disable-pip-version-check --all"))
    # The venv's own tooling, from Debian's ensurepip.
    for tool in ("pip", "setuptools", "wheel"):
        installed.pop(tool, None)
    # The portal itself, at the version of the collection's portal/.
    version = tomllib.loads((DEPLOYED / "portal" / "pyproject.toml").read_text())["project"]["version"]
    assert installed.pop("securestack-portal") == version
    assert pinned, "the lock file pins nothing"
    assert installed == pinned


def test_engine_is_the_collections() -> None:
    module_utils = DEPLOYED / "plugins" / "module_utils"
    where = host(APP).check_output(
        f"{VENV}/bin/python -c 'import securestack_pki as e, os; print(os.path.dirname(os.path.realpath(e.__file__)))'"
    )
    assert where.startswith("/opt/securestack-portal/venvs/") and where.endswith("site-packages/securestack_pki")
    sources = sorted(module_utils.glob("_pki_*.py"))
    assert len(sources) > 1, module_utils
    for source in sources:
        installed = host(APP).file(f"{where}/{source.name}")
        if source.name == "_pki_module.py":
            assert not installed.exists, "the modules' Ansible glue is not part of the engine package"
        else:
            assert installed.content_string == source.read_text()


def test_config_checks_out() -> None:
    result = as_portal(f"{VENV}/bin/securestack-portal check-config")
    assert result.rc == 0, result.stderr
    assert "configuration OK" in result.stdout
    upgrade = as_portal(f"{VENV}/bin/securestack-portal db upgrade")
    assert upgrade.rc == 0, upgrade.stderr
    assert "database already at head" in upgrade.stdout


# ----------------------------------------------------------------- 4. the users CA
def test_users_ca_is_a_client_only_subordinate_of_the_root() -> None:
    app = host(APP)
    root = host(CA).file("/var/lib/securestack-pki/root/ca.crt").content_string
    users = x509.load_pem_x509_certificate(app.file(f"{USERS_CA}/ca.crt").content)
    root_cert = x509.load_pem_x509_certificate(root.encode())
    users.verify_directly_issued_by(root_cert)
    constraints = users.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0
    usages = users.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert users.subject.rfc4514_string() == "CN=SecureStack Users CA,O=SecureStack"
    # The key made here is the one certified.
    key_pub = app.check_output(f"openssl pkey -in {USERS_CA}/ca.key -pubout")
    assert (
        key_pub.strip()
        == users.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        .strip()
    )


def test_users_ca_crl_verifies() -> None:
    app = host(APP)
    check = app.run(f"openssl crl -in {USERS_CA}/crl.pem -CAfile {USERS_CA}/chain.pem -noout")
    assert check.rc == 0, check.stderr
    assert "verify OK" in check.stdout + check.stderr
    der = app.check_output(f"openssl crl -inform DER -in {USERS_CA}/crl.der")
    assert der.strip() == app.file(f"{USERS_CA}/crl.pem").content_string.strip()


def crl_serials(pem: str) -> set[int]:
    return {entry.serial_number for entry in x509.load_pem_x509_crl(pem.encode())}


def test_revocation_reaches_the_web_tier() -> None:
    """A certificate revoked in the users CA: the portal serves the new CRL, each web server's timer fetches it."""
    app = host(APP)
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
    result = as_portal(f"{VENV}/bin/python -c {shlex.quote(revoke)}")
    assert result.rc == 0, result.stderr
    serial = int(result.stdout.strip(), 16)
    portal_crl = app.file(f"{USERS_CA}/crl.pem").content_string
    assert serial in crl_serials(portal_crl)
    for name in WEB_SERVERS.values():
        web = host(name)
        # The portal serves it to the proxy's certificate, without a login.
        served = web.check_output(f"curl -sS --max-time 20 {AS_PROXY} {PORTAL_URL}/crl.pem")
        assert served.strip() == portal_crl.strip(), name
        # The web server's CRL fetch timer gets it, without Ansible.
        web.check_output("systemctl start securestack-pki-crl-fetch.service")
        assert serial in crl_serials(web.file(f"{PKI}/crl/users.crl.pem").content_string), name


# ----------------------------------------------------------------- 5. who may connect to the portal
def refused_with(attempt, reason: str) -> None:
    """Run `attempt` (a refused TLS client) and find gunicorn's reason for the refusal in its log."""
    app = host(APP)
    since = app.check_output("date +%s")
    result = attempt()
    assert result.rc != 0
    assert result.stdout == "000", "no HTTP exchange"
    log = app.check_output(f"journalctl -u {UNIT} --since @{since} --no-pager -o cat")
    assert reason in log, log


@pytest.mark.parametrize("server", sorted(WEB_SERVERS))
def test_proxy_certificate_gets_in(server: str) -> None:
    status = host(WEB_SERVERS[server]).check_output(f"{CURL} {AS_PROXY} {PORTAL_URL}/healthz")
    assert status == "200"


def test_connection_without_certificate_is_refused() -> None:
    web = host(WEB)
    refused_with(
        lambda: web.run(f"{CURL} {TRUST} {PORTAL_URL}/healthz"),
        "PEER_DID_NOT_RETURN_A_CERTIFICATE",
    )


def test_server_certificate_is_refused_as_client_certificate() -> None:
    web = host(WEB)
    refused_with(
        lambda: web.run(f"{CURL} {TRUST} --cert {PKI}/server.crt --key {PKI}/private/server.key {PORTAL_URL}/healthz"),
        "unsuitable certificate purpose",
    )


def test_other_services_client_certificate_gets_403_even_with_identity_headers() -> None:
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
    status = host(APP).check_output(
        f"{CURL} {TRUST} --cert {PKI}/portal-db.crt --key {PKI}/private/portal-db.key {forged} {PORTAL_URL}/"
    )
    assert status == "403"


def test_users_ca_certificate_is_refused_at_the_handshake() -> None:
    """The admin's certificate works through the web tier, never straight to the portal.

    Tried from a web host: the portal's firewall lets only the web tier reach its port."""
    p12, passphrase_file = admin_files()
    key, cert, _chain = pkcs12.load_key_and_certificates(p12.read_bytes(), passphrase_file.read_text().strip().encode())
    pem = (
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    ).decode()
    web = host(WEB)
    web.check_output(f"umask 077 && printf %s {shlex.quote(pem)} > /root/portal-test-admin.pem")
    try:
        refused_with(
            lambda: web.run(f"{CURL} {TRUST} --cert /root/portal-test-admin.pem {PORTAL_URL}/healthz"),
            "unable to get local issuer certificate",
        )
    finally:
        web.run("rm -f /root/portal-test-admin.pem")


def test_revoked_proxy_certificate_is_refused() -> None:
    """A second proxy certificate (the nginx host's name), revoked in the services CA: the CRL keeps it out."""
    web, ca, app = host(WEB), host(CA), host(APP)
    web.check_output(
        f"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN={WEB}"
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


# ----------------------------------------------------------------- 6. the database session
def test_portal_database_session_is_tls_with_client_certificate() -> None:
    # From inside the portal's own engine (its configuration, its certificate).
    probe = (
        "from securestack_portal.config import load; from securestack_portal.database import make_engine;"
        " from sqlalchemy import text; engine = make_engine(load().database);"
        " c = engine.connect();"
        " print(*c.execute(text('SELECT ssl, version, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).one(),"
        " sep='|')"
    )
    result = as_portal(f"{VENV}/bin/python -c {shlex.quote(probe)}")
    assert result.rc == 0, result.stderr
    ssl, version, client_dn = result.stdout.strip().split("|")
    assert ssl == "True"
    assert version in ("TLSv1.2", "TLSv1.3")
    assert client_dn == "/CN=portal"


def test_service_database_sessions_are_tls_with_client_certificate() -> None:
    # A page that reads the database, through the proxy, then the server's view of the service's sessions.
    assert host(WEB).check_output(f"{CURL} {AS_PROXY} {PORTAL_URL}/healthz") == "200"
    db = host(DB)
    sessions = db.check_output(
        "runuser -u postgres -- psql -AtF'|' -c \"SELECT s.ssl, s.client_dn, a.client_addr FROM pg_stat_ssl s"
        " JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'portal'\""
    )
    rows = [line.split("|") for line in sessions.splitlines()]
    assert rows, "the service keeps its database sessions open"
    assert all(row == ["t", "/CN=portal", address(APP)] for row in rows), rows
    log = db.check_output(f"grep -h 'user=portal database=portal SSL enabled' {PG_LOG}")
    assert "protocol=TLSv1.3" in log or "protocol=TLSv1.2" in log
    assert 'identity="CN=portal" method=cert' in db.check_output(f"cat {PG_LOG}")


def test_database_refuses_the_portal_without_its_certificate() -> None:
    probe = (
        "import psycopg, sys\n"
        f"for kwargs in (dict(sslmode='verify-full', sslrootcert='{PKI}/ca-bundle.pem'),"
        " dict(sslmode='disable')):\n"
        "    try:\n"
        f"        psycopg.connect(host='{DB}', dbname='portal', user='portal', connect_timeout=10, **kwargs)\n"
        "    except psycopg.OperationalError as exc:\n"
        "        print('refused:', str(exc).strip().splitlines()[-1])\n"
        "    else:\n"
        "        print('connected')\n"
    )
    result = as_portal(f"{VENV}/bin/python -c {shlex.quote(probe)}")
    assert result.rc == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("refused:") for line in lines), lines


# ----------------------------------------------------------------- 7. the first admin
def test_admin_pkcs12_on_the_controller() -> None:
    p12, passphrase_file = admin_files()
    assert p12.stat().st_mode & 0o777 == 0o600
    assert passphrase_file.stat().st_mode & 0o777 == 0o600
    passphrase = passphrase_file.read_text().strip()
    assert len(passphrase) >= 32
    key, cert, chain = pkcs12.load_key_and_certificates(p12.read_bytes(), passphrase.encode())
    assert key is not None
    assert cert.subject.rfc4514_string() == "CN=admin,O=SecureStack"
    users_ca = x509.load_pem_x509_certificate(host(APP).file(f"{USERS_CA}/ca.crt").content)
    cert.verify_directly_issued_by(users_ca)
    assert chain[0] == users_ca
    assert (CREDENTIALS / f"{APP}-admin.crt").read_bytes() == cert.public_bytes(serialization.Encoding.PEM)
    # The users CA's ledger holds it: the portal lets it in.
    info = as_portal(f"{VENV}/bin/python -m securestack_pki info --ca {USERS_CA}")
    assert info.rc == 0, info.stderr
    assert format(cert.serial_number, "x") in info.stdout


# ----------------------------------------------------------------- 8. the portal's browser test
@pytest.mark.parametrize("server", ["nginx", "apache"])
def test_portal_browser_test_through_the_web_server(server: str) -> None:
    """tests/browser (Playwright, Debian's chromium) through each web server as the user reaches it.

    It runs in the portal's venv (.venv-portal, where playwright is), as a
    separate pytest run, and fails unless every browser test passed (a skip
    is a failure here). The inventory screenshot goes to
    .cache/artifacts/demo/portal-<server>/portal-inventory.png.
    """
    WORK.mkdir(parents=True, exist_ok=True)
    root_ca = WORK / "root-ca.pem"
    root_ca.write_text(host(CA).file("/var/lib/securestack-pki/root/ca.crt").content_string)
    artifacts = ARTIFACTS / f"portal-{server}"
    screenshot = artifacts / "portal-inventory.png"
    screenshot.unlink(missing_ok=True)
    p12, passphrase_file = admin_files()
    env = {
        **os.environ,
        "PORTAL_BROWSER_URL": WEB_URLS[server],
        "PORTAL_BROWSER_ADMIN_P12": str(p12),
        "PORTAL_BROWSER_ADMIN_PASSPHRASE_FILE": str(passphrase_file),
        "PORTAL_BROWSER_ROOT_CA": str(root_ca),
        "PORTAL_BROWSER_ARTIFACTS": str(artifacts),
        "PORTAL_BROWSER_CHROMIUM": "/usr/bin/chromium",
    }
    argv = [str(PROJECT / ".venv-portal" / "bin" / "pytest"), "-p", "no:cacheprovider", "-s", "-rA", "tests/browser"]
    # As in test_stack.py: Chromium aborts requests in flight when the host's
    # network changes (another job's containers starting or stopping); a run
    # that failed for that reason alone runs again, whole (it enrols Alice anew).
    for attempt in (1, 2):
        result = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=600, check=False)
        print(f"browser run {attempt} through {server}:", result.stdout[-6000:], result.stderr[-2000:])
        if result.returncode == 0 or "net::ERR_NETWORK_CHANGED" not in result.stdout:
            break
    assert result.returncode == 0
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\b3 passed\b", summary), summary
    assert not re.search(r"failed|error|skipped|xfail|deselected", summary), summary
    assert screenshot.stat().st_size > 10_000
    print(f"inventory screenshot: {screenshot}")


# ----------------------------------------------------------------- 9. a re-keyed proxy
def proxy_spki_sha256(web) -> str:
    return web.check_output(
        f"openssl x509 -in {PKI}/proxy.crt -noout -pubkey | openssl pkey -pubin -outform DER"
        " | sha256sum | cut -d' ' -f1"
    )


def test_renew_pins_a_rekeyed_proxy_again(tmp_path: Path) -> None:
    """renew with renew_names=[proxy] gives nginx's proxy certificate a new key; the portal accepts it after the run.

    Before renew's last play, the portal kept the old key's pin and refused the web tier until the next site run."""
    web, app = host(WEB), host(APP)
    pins_file = f"{CONFIG}/proxy-keys.sha256"
    old = proxy_spki_sha256(web)
    assert f"{old} {WEB}" in app.file(pins_file).content_string
    argv = [
        str(PROJECT / ".venv" / "bin" / "ansible-playbook"),
        "-i",
        os.environ["STACK_INVENTORY"],
        str(PROJECT / "playbooks" / "renew.yml"),
        "--limit",
        f"{WEB},{APP}",
        "-e",
        '{"renew_names": ["proxy"]}',
    ]
    run = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, timeout=900, check=False)
    print(run.stdout[-6000:], run.stderr[-2000:])
    assert run.returncode == 0
    new = proxy_spki_sha256(web)
    assert new != old, "the proxy certificate kept its key"
    pinned = app.file(pins_file).content_string
    assert f"{new} {WEB}" in pinned and old not in pinned, pinned
    # The new key gets in, at the TLS layer and past the portal's pin ...
    assert web.check_output(f"{CURL} {AS_PROXY} {PORTAL_URL}/healthz") == "200"
    # ... and a person reaches the portal through nginx, which reloaded with the new key.
    p12, passphrase_file = admin_files()
    key, cert, _chain = pkcs12.load_key_and_certificates(p12.read_bytes(), passphrase_file.read_text().strip().encode())
    pem = tmp_path / "admin.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    pem.chmod(0o600)
    root_ca = tmp_path / "root-ca.pem"
    root_ca.write_text(host(CA).file("/var/lib/securestack-pki/root/ca.crt").content_string)
    me = subprocess.run(
        [
            *shlex.split(CURL),
            *("--cacert", str(root_ca), "--cert", str(pem)),
            f"{WEB_URLS['nginx'].rstrip('/')}/api/v1/me",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert me.stdout == "200", (me.stdout, me.stderr)
