"""The whole secured stack, end to end, as ``make demo`` leaves it (scripts/demo-test.sh runs this
file after bringing the demo up from nothing and running ``site`` twice more, for real and in check mode).

In order (pytest keeps the file's order; the later checks use what the
browser did):

1. the databases: the portal's sessions to PostgreSQL are TLS with its
   client certificate (pg_stat_ssl); MariaDB, deployed beside it with the
   portal's account, serves that certificate over TLS (processlist and
   session status) and nothing else; plaintext to either is refused;
2. the browser (Playwright with Debian's chromium, tests/stack/browser/)
   through Apache and through nginx: the admin logs in with its client
   certificate, a person's CSR is submitted, approved and downloaded; the
   admin revokes a person's certificate, and the audit log shows it;
3. the revoked certificate: the web servers still let it through to the
   portal (which refuses it from its ledger) until the CRL push
   (playbooks/crl.yml), then refuse it themselves; the other person's
   certificate still gets in;
4. sslyze: both web servers compliant with Mozilla's intermediate profile,
   TLS 1.0 and 1.1 refused (and refused to a client that offers them);
   testssl.sh (Debian's package) with our root as a trust anchor finds
   nothing rated MEDIUM or worse on either;
5. pkilint (RFC 5280) on every certificate and CRL of every host, and on
   the people's certificates the browser obtained: no finding of ERROR.

Every check is a real exchange with the deployed servers.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import ssl
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from stack_bed import (
    APP,
    CA,
    CREDENTIALS,
    INVENTORY,
    MARIADB,
    PG,
    PROJECT,
    RUNNER,
    WEB_HOSTS,
    WORK,
    address,
    host,
)
from stack_bed import WEB_URLS as STACK_WEB_URLS

WEB = WEB_HOSTS
WEB_URLS = {server: urlsplit(url) for server, url in STACK_WEB_URLS.items()}
STATE = WORK / "browser"
ARTIFACTS = PROJECT / ".cache" / "artifacts" / "demo"
SSLYZE = PROJECT / ".venv-sslyze" / "bin" / "sslyze"
PKILINT = PROJECT / ".venv-pkilint" / "bin"
TESTSSL = "/usr/bin/testssl"  # Debian's testssl.sh (scripts/setup.sh installs it)

PKI = "/etc/securestack-pki"
VENV = "/opt/securestack-portal/current"
PORTAL_CONFIG = "/etc/securestack-portal/portal.toml"

MOZILLA_6_INTERMEDIATE_TLS12 = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
MOZILLA_6_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}


# ----------------------------------------------------------------- helpers
@cache
def root_ca() -> Path:
    path = WORK / "root-ca.pem"
    path.write_text(host(CA).file("/var/lib/securestack-pki/root/ca.crt").content_string)
    return path


def pem_files(p12: Path, passphrase: str, directory: Path, name: str) -> tuple[str, str]:
    """The key and certificate of a PKCS#12 file, as PEM files for Python's ssl and sslyze.

    The certificate alone: the web servers hold the users CA, and sslyze's
    legacy OpenSSL (its SSL 2.0 scan) fails to load a chain that ends in a root.
    """
    key, cert, chain = pkcs12.load_key_and_certificates(p12.read_bytes(), passphrase.encode())
    assert key is not None and cert is not None
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    assert chain, "the PKCS#12 file carries the users CA"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


def https(server: str, cert: tuple[str, str], path: str = "/") -> dict:
    """One request from this machine to a web server as the user reaches it, verified against our root."""
    context = ssl.create_default_context(cafile=str(root_ca()))
    context.load_cert_chain(*cert)
    url = WEB_URLS[server]
    connection = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return {"stage": "done", "status": response.status, "body": response.read().decode(errors="replace")}
    except ssl.SSLError as exc:
        # Apache refuses a certificate in the handshake; under TLS 1.3 the
        # alert reaches the client on its first read.
        return {"stage": "tls", "reason": exc.reason, "error": str(exc)}
    except (TimeoutError, ConnectionResetError, BrokenPipeError) as exc:
        return {"stage": "connection", "reason": type(exc).__name__, "error": str(exc)}
    finally:
        connection.close()


def refused_by_the_web_server(server: str, report: dict) -> bool:
    """nginx answers 400 itself (its own error page) after the handshake; Apache sends a revocation alert."""
    if server == "nginx":
        return report["stage"] == "done" and report["status"] == 400 and "The SSL certificate error" in report["body"]
    return report["stage"] == "tls" and report["reason"] == "SSLV3_ALERT_CERTIFICATE_REVOKED"


def portal_python(code: str, user: str = "root"):
    """Python of the portal's venv on the app host (psycopg, PyMySQL, SQLAlchemy), as `user`."""
    prefix = "" if user == "root" else f"runuser -u {user} -- env SECURESTACK_PORTAL_CONFIG={PORTAL_CONFIG} "
    return host(APP).run(f"{prefix}{VENV}/bin/python -c {shlex.quote(code)}")


def browser_report() -> dict:
    path = STATE / "report.json"
    assert path.exists(), "the browser test did not run (test_browser_through_both_web_servers)"
    return json.loads(path.read_text())


# ----------------------------------------------------------------- 1. the databases
def test_portal_sessions_to_postgresql_are_tls_with_its_client_certificate():
    # A request that reads the database, through the proxy path, so the service holds sessions.
    web = host(WEB["nginx"])
    status = web.check_output(
        f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time 20 --cacert {PKI}/ca-bundle.pem"
        f" --cert {PKI}/proxy.crt --key {PKI}/private/proxy.key https://{APP}:8443/healthz"
    )
    assert status == "200"
    sessions = host(PG).check_output(
        "runuser -u postgres -- psql -AtF'|' -c \"SELECT s.ssl, s.version, s.client_dn, host(a.client_addr)"
        " FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.usename = 'portal'\""
    )
    rows = [line.split("|") for line in sessions.splitlines()]
    assert rows, "the portal holds no session to PostgreSQL"
    for ssl_on, version, client_dn, client in rows:
        assert ssl_on == "t"
        assert version in ("TLSv1.2", "TLSv1.3")
        assert client_dn == "/CN=portal"
        assert client == address(APP)
    # The portal's configuration names this server and verifies it.
    config = host(APP).file(PORTAL_CONFIG).content_string
    assert f"postgresql+psycopg://portal@{PG}:5432/portal" in config


def test_postgresql_refuses_plaintext_and_tls_without_the_certificate():
    probe = (
        "import psycopg\n"
        f"for kwargs in (dict(sslmode='disable'), dict(sslmode='verify-full', sslrootcert='{PKI}/ca-bundle.pem')):\n"
        "    try:\n"
        f"        psycopg.connect(host='{PG}', dbname='portal', user='portal', connect_timeout=10, **kwargs)\n"
        "    except psycopg.OperationalError as exc:\n"
        "        print('refused:', ' '.join(str(exc).split()))\n"
        "    else:\n"
        "        print('connected')\n"
    )
    result = portal_python(probe, user="portal")
    assert result.rc == 0, result.stderr
    plaintext, no_certificate = result.stdout.strip().splitlines()
    assert plaintext.startswith("refused:") and "no encryption" in plaintext, plaintext
    assert no_certificate.startswith("refused:") and "certificate" in no_certificate, no_certificate


MYSQL_PROBE = """
import json, sys, time, pymysql
kind, user, password, hold = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
tls = {{"ca": "{pki}/ca-bundle.pem", "check_hostname": True}}
if kind == "portal-db":
    tls.update(cert="{pki}/portal-db.crt", key="{pki}/private/portal-db.key")
elif kind == "server-certificate":
    # The app host's own services-CA certificate: serverAuth only, another subject.
    tls.update(cert="{pki}/portal.crt", key="{pki}/private/portal.key")
try:
    connection = pymysql.connect(host="{db}", user=user, password=password, connect_timeout=10,
                                 database="portal" if user == "portal" else None,
                                 ssl=None if kind == "plaintext" else tls,
                                 # PyMySQL tries TLS even without options ("preferred"): really plaintext.
                                 ssl_disabled=kind == "plaintext")
except pymysql.err.MySQLError as exc:
    print(json.dumps({{"refused": exc.args[0], "message": str(exc.args[-1])}}), flush=True)
    sys.exit(0)
with connection.cursor() as cursor:
    cursor.execute("SELECT CONNECTION_ID(), CURRENT_USER()")
    thread, current = cursor.fetchone()
    cursor.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
    status = dict(cursor.fetchall())
print(json.dumps({{"thread": thread, "user": current, **status}}), flush=True)
time.sleep(hold)
"""
# MariaDB 11.8 refuses plaintext before authentication (3159,
# ER_SECURE_TRANSPORT_REQUIRED); 10.11 (Debian 12) after it, as access denied (1045).
PLAINTEXT_REFUSED = {3159, 1045}
# A client certificate refused in the handshake: the server drops the connection.
HANDSHAKE_REFUSED = {2006, 2013}


def mysql_command(kind: str, user: str = "portal", password: str = "", hold: float = 0) -> str:
    code = MYSQL_PROBE.format(pki=PKI, db=MARIADB)
    return f"{VENV}/bin/python -c {shlex.quote(code)} {kind} {user} {shlex.quote(password)} {hold}"


def mysql_probe(kind: str, user: str = "portal", password: str = "") -> dict:
    return json.loads(host(APP).check_output(mysql_command(kind, user, password)).splitlines()[0])


def mariadb_sql(sql: str) -> str:
    """As root over the server's socket (unix_socket authentication)."""
    return host(MARIADB).check_output(f"mariadb -N -B -e {shlex.quote(sql)}")


def test_mariadb_session_with_the_portal_certificate_is_tls():
    """A session with the portal's certificate: TLS by its status, and the server's processlist shows it."""
    app = host(APP)
    out = "/root/mysql-probe.json"
    app.run_expect([0], f"rm -f {out}; (nohup {mysql_command('portal-db', hold=30)} > {out} 2>&1 &)")
    deadline = time.monotonic() + 30
    while not app.file(out).content_string.strip() and time.monotonic() < deadline:
        time.sleep(0.5)
    session = json.loads(app.file(out).content_string.splitlines()[0])
    assert session["user"] == "portal@%"
    assert session["Ssl_version"] in ("TLSv1.2", "TLSv1.3")
    assert session["Ssl_cipher"]
    # The server's view of that very session, while it is open.
    rows = mariadb_sql(
        "SELECT ID, USER, SUBSTRING_INDEX(HOST, ':', 1), DB FROM information_schema.PROCESSLIST WHERE USER = 'portal'"
    )
    sessions = {int(row.split("\t")[0]): row.split("\t")[1:] for row in rows.splitlines()}
    assert sessions[int(session["thread"])] == ["portal", address(APP), "portal"], sessions
    # The account takes this certificate's subject and issuer, and no password.
    account = mariadb_sql(
        "SELECT ssl_type, x509_subject, x509_issuer, authentication_string FROM mysql.user WHERE User = 'portal'"
    )
    ssl_type, subject, issuer, *password = account.split("\t")
    assert ssl_type == "SPECIFIED"
    assert subject == "/CN=portal"
    assert issuer.endswith("/CN=SecureStack Services CA")
    assert password in ([], [""])
    assert mariadb_sql("SELECT @@require_secure_transport") == "1"


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("plaintext", PLAINTEXT_REFUSED),
        # TLS without a certificate: ER_ACCESS_DENIED_ERROR.
        ("tls-without-certificate", {1045}),
        ("server-certificate", HANDSHAKE_REFUSED),
    ],
)
def test_mariadb_refuses_the_portal_account_without_its_certificate(kind, codes):
    result = mysql_probe(kind)
    assert result.get("refused") in codes, result


def test_mariadb_refuses_plaintext_even_with_a_password():
    """require_secure_transport itself: a password account (made for this test) gets in over TLS only."""
    password = "probe-" + os.urandom(12).hex()
    mariadb_sql(f"CREATE USER 'stack_probe'@'%' IDENTIFIED BY '{password}'")
    try:
        plaintext = mysql_probe("plaintext", "stack_probe", password)
        assert plaintext.get("refused") in PLAINTEXT_REFUSED, plaintext
        over_tls = mysql_probe("tls-without-certificate", "stack_probe", password)
        assert over_tls.get("user") == "stack_probe@%", over_tls
    finally:
        mariadb_sql("DROP USER 'stack_probe'@'%'")


# ----------------------------------------------------------------- 2. the browser
def test_browser_through_both_web_servers():
    """Playwright with Debian's chromium, through Apache then nginx, on the demo's ports (tests/stack/browser/)."""
    env = {
        **os.environ,
        "STACK_BROWSER_URLS": os.environ["STACK_WEB_URLS"],
        "STACK_BROWSER_ADMIN_P12": str(CREDENTIALS / f"{APP}-admin.p12"),
        "STACK_BROWSER_ADMIN_PASSPHRASE_FILE": str(CREDENTIALS / f"{APP}-admin.passphrase"),
        "STACK_BROWSER_ROOT_CA": str(root_ca()),
        "STACK_BROWSER_STATE": str(STATE),
        "STACK_BROWSER_ARTIFACTS": str(ARTIFACTS),
        "STACK_BROWSER_CHROMIUM": "/usr/bin/chromium",
    }
    argv = [
        str(PROJECT / ".venv-portal" / "bin" / "pytest"),
        "-p",
        "no:cacheprovider",
        "-rA",
        str(Path(__file__).resolve().parent / "browser"),
    ]
    # Chromium aborts requests in flight when the host's network changes
    # (Docker adds or removes an interface for every container another
    # scenario starts or stops). Page loads are retried in the browser test;
    # a form post is not (it may have reached the portal), so a run that
    # failed for that reason alone runs again, whole: every run enrols its
    # own people and revokes its own certificate.
    for attempt in (1, 2):
        (STATE / "report.json").unlink(missing_ok=True)
        result = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=900, check=False)
        print(f"browser run {attempt}:", result.stdout[-8000:], result.stderr[-2000:])
        if result.returncode == 0 or "net::ERR_NETWORK_CHANGED" not in result.stdout:
            break
    assert result.returncode == 0
    summary = result.stdout.strip().splitlines()[-1]
    # Enrol-request-approve-download through each server, then the revocation.
    assert re.search(r"\b3 passed\b", summary), summary
    assert not re.search(r"failed|error|skipped|xfail|deselected", summary), summary


# ----------------------------------------------------------------- 3. revocation
def test_revoked_certificate_is_refused_by_both_web_servers_after_the_crl_push():
    report = browser_report()
    revoked_serial = report["revoked"]
    revoked = report["people"]["nginx"]
    valid = report["people"]["apache"]
    assert revoked["serial"] == revoked_serial
    with tempfile.TemporaryDirectory() as tmp:
        revoked_cert = pem_files(Path(revoked["p12"]), revoked["passphrase"], Path(tmp), "revoked")
        valid_cert = pem_files(Path(valid["p12"]), valid["passphrase"], Path(tmp), "valid")

        # The portal's own CRL lists it already (the portal rewrote it at once).
        crl = host(APP).check_output(
            "openssl crl -in /var/lib/securestack-portal/users-ca/crl.pem -noout -text | grep 'Serial Number'"
        )
        assert int(revoked_serial, 16) in {int(s, 16) for s in re.findall(r"Serial Number: ([0-9A-Fa-f]+)", crl)}

        # Before the push the web servers still have the old CRL: the
        # certificate passes the TLS layer and the portal refuses it (ledger).
        for server in WEB:
            before = https(server, revoked_cert, path="/api/v1/me")
            assert before["stage"] == "done" and before["status"] == 403, (server, before)
            assert "revoked" in before["body"], (server, before)

        # The CRL push: every host fetches its CRLs now.
        push = subprocess.run(
            [
                str(Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin" / "ansible-playbook"),
                "-i",
                INVENTORY,
                str(PROJECT / "playbooks" / "crl.yml"),
            ],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        print(push.stdout[-4000:], push.stderr[-2000:])
        assert push.returncode == 0
        for name in WEB.values():
            # The fetch changed each web server's CRLs.
            assert re.search(rf"changed: \[{name}\]", push.stdout), push.stdout

        for server in WEB:
            deadline = time.monotonic() + 20
            while True:
                after = https(server, revoked_cert)
                if refused_by_the_web_server(server, after) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert refused_by_the_web_server(server, after), (server, after)
            # The other person's certificate still gets in, to the portal.
            still = https(server, valid_cert)
            assert still["status"] == 200 and "Stack User apache" in still["body"], (server, still)


def test_revocation_is_in_the_audit_log():
    """The portal's JSON API, as the admin, through nginx: who revoked what, and why."""
    report = browser_report()
    passphrase = (CREDENTIALS / f"{APP}-admin.passphrase").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        admin = pem_files(CREDENTIALS / f"{APP}-admin.p12", passphrase, Path(tmp), "admin")
        answer = https("nginx", admin, path="/api/v1/audit?limit=200")
    assert answer["status"] == 200, answer
    events = [e for e in json.loads(answer["body"]) if e["action"] == "certificate.revoke"]
    # Newest first: the browser's revocation is the latest.
    assert events, "no revocation in the audit log"
    event = events[0]
    assert event["target"] == f"serial:{report['revoked']}", events
    assert event["actor"] == "CN=admin,O=SecureStack"
    assert "keyCompromise" in json.dumps(event["detail"])


# ----------------------------------------------------------------- 4. TLS of the web servers
def test_sslyze_reports_mozilla_intermediate_compliance():
    report = browser_report()
    valid = report["people"]["apache"]
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp)
        cert, key = pem_files(Path(valid["p12"]), valid["passphrase"], files, "client")

        def scan(server: str) -> tuple[str, subprocess.CompletedProcess, dict]:
            name = f"{WEB_URLS[server].hostname}:{WEB_URLS[server].port or 443}"
            out = files / f"{server}.json"
            argv = [
                str(SSLYZE),
                "--mozilla_config=intermediate",
                f"--certinfo_ca_file={root_ca()}",
                f"--cert={cert}",
                f"--key={key}",
                f"--json_out={out}",
                name,
            ]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
            return name, result, json.loads(out.read_text()) if out.exists() else {}

        with ThreadPoolExecutor(len(WEB)) as pool:
            scans = list(pool.map(scan, WEB))
    for name, result, data in scans:
        assert result.returncode == 0, f"{name}: {result.stdout}\n{result.stderr}"
        assert 'Checking results against Mozilla\'s "intermediate" configuration' in result.stdout, result.stdout
        assert f"{name}: OK - Compliant." in result.stdout, result.stdout
        scan_result = data["server_scan_results"][0]["scan_result"]
        accepted = {
            version: {
                s["cipher_suite"]["name"]
                for s in scan_result[f"{version}_cipher_suites"]["result"]["accepted_cipher_suites"]
            }
            for version in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1", "tls_1_2", "tls_1_3")
        }
        # sslyze offered every suite of each version: none of SSL 2/3, TLS 1.0 or 1.1 was accepted.
        assert not any(accepted[v] for v in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1")), accepted
        assert accepted["tls_1_2"] and accepted["tls_1_2"] <= MOZILLA_6_INTERMEDIATE_TLS12, accepted
        assert accepted["tls_1_3"] and accepted["tls_1_3"] <= MOZILLA_6_TLS13, accepted


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
@pytest.mark.parametrize("server", sorted(WEB))
def test_old_tls_versions_are_refused(server, version):
    """A client offering only TLS 1.0 or 1.1 (security level 0: OpenSSL really sends it) gets protocol_version."""
    result = subprocess.run(
        [
            "openssl",
            "s_client",
            version,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
            "-connect",
            f"{WEB_URLS[server].hostname}:{WEB_URLS[server].port or 443}",
            "-servername",
            WEB_URLS[server].hostname,
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert re.search(r"alert protocol version", result.stderr), result.stderr


TESTSSL_FAILING = ("MEDIUM", "HIGH", "CRITICAL")
# Findings every complete scan reports (protocols, ciphers, the certificate).
TESTSSL_REQUIRED_IDS = (
    "TLS1_2",
    "TLS1_3",
    "cipherlist_NULL",
    "cert_trust",
    "cert_crlDistributionPoints",
    "cert_chain_of_trust",
)


@pytest.mark.parametrize("server", sorted(WEB))
def test_testssl_finds_nothing_rated_medium_or_worse(server):
    """testssl.sh's full default run, our root added as a trust anchor; every finding MEDIUM or worse fails.

    The whole JSON is read (no --severity filter), so that a scan that never
    reached the server cannot pass for a clean one: the protocol, cipher and
    certificate checks must all be there.
    """
    url = WEB_URLS[server]
    out = WORK / f"testssl-{server}.json"
    out.unlink(missing_ok=True)
    argv = [
        TESTSSL,
        "--quiet",
        "--color",
        "0",
        "--warnings",
        "off",
        # localhost resolves to ::1 too; the demo publishes on 127.0.0.1 only.
        "--ip",
        "127.0.0.1",
        "--add-ca",
        str(root_ca()),
        "--jsonfile",
        str(out),
        f"{url.hostname}:{url.port or 443}",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    print(result.stdout[-6000:], result.stderr[-2000:])
    assert out.exists(), f"testssl.sh wrote no JSON (rc {result.returncode})"
    findings = json.loads(out.read_text())
    ids = {f["id"] for f in findings}
    for needed in TESTSSL_REQUIRED_IDS:
        assert needed in ids, f"testssl.sh did not report {needed}: the scan is incomplete ({sorted(ids)[:40]} ...)"
    problems = [f for f in findings if f["severity"] in TESTSSL_FAILING or f["id"] == "scanProblem"]
    assert not problems, json.dumps(problems, indent=1)


# ----------------------------------------------------------------- 5. what the CAs issued, judged by pkilint
# Certificates (PEM, one each) and DER CRLs that the certificate role and the
# CAs leave on the hosts; the chains and bundles repeat them.
PKI_DOCUMENTS = (
    f"{PKI}/*.crt",
    f"{PKI}/crl/*.crt",
    f"{PKI}/crl/*.crl",
    "/var/lib/securestack-pki-public/*.crt",
    "/var/lib/securestack-pki-public/*.crl",
    "/var/lib/securestack-portal/users-ca/ca.crt",
    "/var/lib/securestack-portal/users-ca/crl.der",
)


# pkilint asks more of a domain name than RFC 5280 does: it refuses a single
# label ("localhost", the demo's container names), which the preferred name
# syntax of RFC 1034 §3.5 that RFC 5280 §4.2.1.6 names allows, in a dNSName and
# as the host of a URI. The demo needs such names (the containers are reached
# by them, the browser by localhost), so exactly that finding, for exactly
# such a name, is shown and not failed; any other finding fails.
SINGLE_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def stricter_than_rfc_5280(finding: dict) -> bool:
    quoted = re.fullmatch(r'Invalid (?:domain name|URI) syntax: "(.*)"', finding["message"])
    if quoted is None:
        return False
    if finding["code"] == "pkix.invalid_domain_name_syntax":
        return bool(SINGLE_LABEL.match(quoted.group(1)))
    if finding["code"] == "pkix.invalid_uri_syntax":
        uri = urlsplit(quoted.group(1))
        return uri.scheme == "http" and bool(uri.hostname and SINGLE_LABEL.match(uri.hostname)) and uri.path != ""
    return False


def pkilint(kind: str, path: Path) -> list:
    tool = [str(PKILINT / "lint_pkix_cert"), "lint"]
    if kind == "crl":
        tool = [str(PKILINT / "lint_crl"), "lint", "-t", "CRL", "-p", "PKIX"]
    argv = [*tool, "-s", "ERROR", "-f", "JSON", str(path)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.stdout.strip(), f"pkilint gave no answer for {path}: {result.stderr}"
    failing = []
    for entry in json.loads(result.stdout)["results"]:
        for finding in entry["finding_descriptions"]:
            if stricter_than_rfc_5280(finding):
                print(f"{path}: {finding['code']}: {finding['message']} (a single label: allowed by RFC 5280)")
            else:
                failing.append({"node": entry["node_path"], **finding})
    return failing


def test_pkilint_finds_no_error_in_any_certificate_or_crl():
    report = browser_report()
    documents: dict[bytes, tuple[str, str]] = {}
    for name in RUNNER.get_hosts("all"):
        listing = host(name).run(f"ls -1 {' '.join(PKI_DOCUMENTS)} 2>/dev/null").stdout.split()
        for path in listing:
            content = host(name).file(path).content
            documents.setdefault(content, ("crl" if path.endswith((".crl", ".der")) else "cert", f"{name}:{path}"))
    for server, person in report["people"].items():
        cert = pkcs12.load_pkcs12(Path(person["p12"]).read_bytes(), person["passphrase"].encode()).cert
        assert cert is not None, server
        pem = cert.certificate.public_bytes(serialization.Encoding.PEM)
        documents.setdefault(pem, ("cert", f"person enrolled via {server}"))
    kinds = [kind for kind, origin in documents.values()]
    # Root, services and users CA, a server or client certificate per host, the people's, and the CRLs.
    assert kinds.count("cert") >= 10 and kinds.count("crl") >= 3, documents.values()
    findings = {}
    directory = WORK / "pkilint"
    directory.mkdir(exist_ok=True)
    for number, (content, (kind, origin)) in enumerate(documents.items()):
        path = directory / f"{number}.{'crl' if kind == 'crl' else 'pem'}"
        path.write_bytes(content)
        results = pkilint(kind, path)
        if results:
            findings[origin] = results
    assert not findings, json.dumps(findings, indent=1)
