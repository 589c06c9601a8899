"""Testinfra checks of the securestack.pki.mysql role (scenario ``mysql``).

Every connection is made from the client host (my-client, Debian 12, MariaDB
10.11 client, PyMySQL, OpenSSL 3) to each database host (my-db12: MariaDB
10.11, my-db13: MariaDB 11.8). Server-side facts are read over the local
socket on the database host. side_effect.yml has connected with
app-revoked, revoked it and pushed the CRL; it left what these tests need
in scenario-facts.json in molecule's ephemeral directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import testinfra

DB_HOSTS = ["my-db12", "my-db13"]
PKI = "/etc/securestack-pki"
FOREIGN = "/etc/securestack-test/foreign"
# Mozilla's intermediate profile (guidelines 6.0): TLS 1.3 suites, then TLS 1.2.
MOZILLA_INTERMEDIATE = {
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
}
# The password prepare.yml gave root, also for root@'%', before the role ran.
SEEDED_ROOT_PASSWORD = "scenario-root-password"  # noqa: S105 (a test fixture, not a secret)
# Client errors: refused by the server during the TLS handshake (2026), or the
# connection dropped by the server after a failed handshake (2013).
TLS_REFUSAL = re.compile(r"ERROR (2026|2013) ")
ACCESS_DENIED = re.compile(r"ERROR (1045|1698) \(28000\): Access denied")
# Plaintext: MariaDB 11.8 refuses the transport before authentication (3159), 10.11 after
# it, so an account that requires a certificate is simply denied there.
PLAINTEXT_REFUSAL = re.compile(r"ERROR (3159 \(08004\): Connections using insecure transport|(1045|1698) \(28000\))")


@cache
def get_host(name: str):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@pytest.fixture(scope="module")
def client():
    return get_host("my-client")


@pytest.fixture(scope="module", params=DB_HOSTS)
def db(request):
    return request.param


@cache
def scenario_facts() -> dict:
    return json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "scenario-facts.json").read_text())


def server_sql(db_name: str, sql: str) -> str:
    """Run SQL as root over the database host's local socket."""
    return get_host(db_name).check_output(f"mariadb --batch --skip-column-names --execute={shlex.quote(sql)}")


def mariadb(client, db_name: str, *options: str, sql: str = "SELECT CURRENT_USER()", defaults: bool = False):
    """The real mariadb client on the client host; --no-defaults unless `defaults` (then /root/.my.cnf)."""
    argv = ([] if defaults else ["--no-defaults"]) + [f"--host={db_name}", "--batch", "--skip-column-names"]
    argv += [*options, f"--execute={sql}"]
    return client.run("mariadb " + " ".join(shlex.quote(arg) for arg in argv))


def tls(cert: str | None = None, key: str | None = None, ca: str = f"{PKI}/ca-bundle.pem") -> list[str]:
    """TLS options with server verification, and a client certificate when given."""
    options = [f"--ssl-ca={ca}", "--ssl-verify-server-cert"]
    if cert:
        options += [f"--ssl-cert={cert}", f"--ssl-key={key}"]
    return options


def ours(name: str) -> list[str]:
    return tls(f"{PKI}/{name}.crt", f"{PKI}/private/{name}.key")


def output(cmd) -> str:
    return cmd.stdout + cmd.stderr


def assert_tls_refused(client, db_name: str, cert: str, key: str, alert: str) -> None:
    """Refused in the handshake; under TLS 1.2 (client certificate checked inside the handshake,
    so the server's alert always reaches the client) with the alert that says why."""
    options = tls(cert, key)
    default = mariadb(client, db_name, *options, "--user=app")
    assert default.rc != 0, output(default)
    assert TLS_REFUSAL.search(default.stderr), output(default)
    tls12 = mariadb(client, db_name, *options, "--tls-version=TLSv1.2", "--user=app")
    assert tls12.rc != 0, output(tls12)
    assert f"ERROR 2026 (HY000): TLS/SSL error: {alert}" in tls12.stderr, output(tls12)


def assert_plaintext_refused(cmd) -> None:
    assert cmd.rc != 0, output(cmd)
    assert PLAINTEXT_REFUSAL.search(cmd.stderr), output(cmd)


def assert_access_denied(cmd) -> None:
    assert cmd.rc != 0, output(cmd)
    assert ACCESS_DENIED.search(cmd.stderr), output(cmd)


# --- the server -------------------------------------------------------------


def test_server_tls_settings(db):
    values = dict(
        line.split("\t", 1)
        for line in server_sql(
            db,
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('require_secure_transport', 'tls_version', 'ssl_cipher',"
            " 'ssl_ca', 'ssl_cert', 'ssl_key', 'ssl_crl', 'have_ssl', 'bind_address', 'skip_name_resolve')",
        ).splitlines()
    )
    assert values["require_secure_transport"] == "ON"
    assert values["have_ssl"] == "YES"
    assert values["tls_version"] == "TLSv1.2,TLSv1.3"
    assert set(values["ssl_cipher"].split(":")) == MOZILLA_INTERMEDIATE
    assert values["ssl_cert"] == f"{PKI}/mysql-fullchain.pem"
    assert values["ssl_key"] == f"{PKI}/private/mysql.key"
    assert values["ssl_ca"] == f"{PKI}/ca-bundle.pem"
    assert values["ssl_crl"] == f"{PKI}/crl-bundle.pem"
    assert values["skip_name_resolve"] == "ON"
    # What the server really offers: exactly those suites.
    offered = server_sql(db, "SHOW GLOBAL STATUS LIKE 'Ssl_cipher_list'").split("\t", 1)[1]
    assert set(offered.split(":")) == MOZILLA_INTERMEDIATE


def test_extra_settings_from_the_escape_hatch(db):
    # mysql_server_settings in molecule.yml: local_infile false, max_connections 200.
    assert server_sql(db, "SELECT @@local_infile, @@max_connections") == "0\t200"


def test_listens_on_the_service_address_only(db):
    host = get_host(db)
    address = host.check_output("ip -4 -o route get 1.1.1.1 | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p'")
    assert re.fullmatch(r"[0-9.]+", address)
    listening = host.check_output("ss -Htln 'sport = :3306'").splitlines()
    assert [line.split()[3] for line in listening] == [f"{address}:3306"]
    assert server_sql(db, "SELECT @@bind_address") == address


def test_tls_files_readable_by_mysql_only(db):
    key = get_host(db).file(f"{PKI}/private/mysql.key")
    assert (key.user, key.group, key.mode) == ("mysql", "mysql", 0o600)


def test_reload_flushes_ssl_without_restart(db):
    unit = get_host(db).check_output("systemctl cat mariadb.service")
    assert "ExecReload=!/usr/bin/mariadb" in unit and "FLUSH SSL" in unit
    # side_effect.yml pushed a new CRL: the certificate role reloaded the unit, the process stayed.
    facts = scenario_facts()
    assert facts["pid_before"][db] == facts["pid_after"][db] != "0"
    assert (
        get_host(db).check_output("systemctl show --property=MainPID --value mariadb.service") == facts["pid_after"][db]
    )


# --- accounts ---------------------------------------------------------------


def test_no_anonymous_accounts_no_test_database_root_on_socket_only(db):
    accounts = server_sql(db, "SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY 1").splitlines()
    assert not [account for account in accounts if account.startswith("@")]
    assert [account for account in accounts if account.startswith("root@")] == ["root@localhost"]
    assert (
        server_sql(db, "SHOW CREATE USER 'root'@'localhost'")
        == "CREATE USER `root`@`localhost` IDENTIFIED VIA unix_socket"
    )
    assert "test" not in server_sql(db, "SHOW DATABASES").splitlines()
    assert server_sql(db, "SELECT COUNT(*) FROM mysql.db WHERE Db IN ('test', 'test\\\\_%')") == "0"
    # Every account reachable from the network requires a certificate subject and issuer.
    loose = server_sql(
        db,
        "SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE Host NOT IN ('localhost')"
        " AND (ssl_type <> 'SPECIFIED' OR x509_subject = '' OR x509_issuer = '')",
    )
    assert loose == ""


def test_accounts_require_the_exact_subject_and_issuer_of_the_certificates(client, db):
    # Read independently: openssl's X509_NAME_oneline form, as MariaDB compares it.
    subject = client.check_output(f"openssl x509 -in {PKI}/app.crt -noout -subject -nameopt compat")
    issuer = get_host("my-ca").check_output(
        "openssl x509 -in /var/lib/securestack-pki/services/ca.crt -noout -subject -nameopt compat"
    )
    assert subject == "subject=/CN=app"
    assert issuer == "subject=/O=SecureStack/CN=SecureStack Services CA"
    rows = server_sql(
        db,
        "SELECT User, Host, ssl_type, x509_subject, x509_issuer FROM mysql.user"
        " WHERE User IN ('app', 'reader') ORDER BY User",
    ).splitlines()
    assert rows == [
        "\t".join(["app", "%", "SPECIFIED", "/CN=app", issuer.removeprefix("subject=")]),
        "\t".join(["reader", "%", "SPECIFIED", "/CN=other", issuer.removeprefix("subject=")]),
    ]
    grants = server_sql(db, "SHOW GRANTS FOR 'app'@'%'")
    assert "GRANT ALL PRIVILEGES ON `appdb`.* TO `app`@`%`" in grants


# --- what gets in -------------------------------------------------------------


def test_application_connects_with_its_certificate_over_tls12_or_newer(client, db):
    # /root/.my.cnf from the role's client entry point: certificate, key, CA, verification.
    cmd = mariadb(
        client,
        db,
        defaults=True,
        sql="SELECT CURRENT_USER(); SHOW SESSION STATUS LIKE 'Ssl_version'; SHOW SESSION STATUS LIKE 'Ssl_cipher';"
        " CREATE TABLE IF NOT EXISTS appdb.probe (id INT); SELECT COUNT(*) FROM appdb.probe",
    )
    assert cmd.rc == 0, output(cmd)
    lines = cmd.stdout.splitlines()
    assert lines[0] == "app@%"
    assert lines[1].split("\t") in (["Ssl_version", "TLSv1.2"], ["Ssl_version", "TLSv1.3"])
    assert lines[2].split("\t")[1] in MOZILLA_INTERMEDIATE
    assert lines[3] == "0"


def test_option_file_turns_verification_on(client):
    option_file = client.file("/root/.my.cnf")
    assert (option_file.user, option_file.mode) == ("root", 0o600)
    assert re.search(r"^ssl-verify-server-cert = on$", option_file.content_string, re.M)
    # What the client makes of it: verification on.
    printed = client.check_output("mariadb --print-defaults")
    assert "--ssl-verify-server-cert=on" in printed


PYMYSQL_SCRIPT = r"""
import json, sys
import pymysql
host, cert, key, ca = sys.argv[1:5]
try:
    conn = pymysql.connect(host=host, user="app", ssl={"ca": ca, "cert": cert, "key": key, "check_hostname": True})
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
        version = cur.fetchone()[1]
        cur.execute("SELECT CURRENT_USER()")
        user = cur.fetchone()[0]
    print(json.dumps({"ok": True, "version": version, "user": user}))
except Exception as exc:
    print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
"""


def pymysql_connect(client, db_name: str, cert: str, key: str, ca: str = f"{PKI}/ca-bundle.pem") -> dict:
    args = " ".join(shlex.quote(arg) for arg in (db_name, cert, key, ca))
    return json.loads(client.check_output(f"python3 -c {shlex.quote(PYMYSQL_SCRIPT)} {args}"))


def test_python_driver_connects_with_verification(client, db):
    result = pymysql_connect(client, db, f"{PKI}/app.crt", f"{PKI}/private/app.key")
    assert result == {"ok": True, "version": result["version"], "user": "app@%"}
    assert result["version"] in ("TLSv1.2", "TLSv1.3")
    # The same driver refuses a server it cannot verify, and the server refuses another identity.
    foreign_ca = pymysql_connect(client, db, f"{PKI}/app.crt", f"{PKI}/private/app.key", ca=f"{FOREIGN}/ca.crt")
    assert not foreign_ca["ok"] and "CERTIFICATE_VERIFY_FAILED" in foreign_ca["error"], foreign_ca
    other = pymysql_connect(client, db, f"{PKI}/other.crt", f"{PKI}/private/other.key")
    assert not other["ok"] and "(1045," in other["error"], other


def test_other_identity_has_its_own_account(client, db):
    # The certificate "other" is valid (control): it gets in as reader, whose subject was derived from it.
    cmd = mariadb(client, db, *ours("other"), "--user=reader")
    assert cmd.rc == 0, output(cmd)
    assert cmd.stdout.strip() == "reader@%"


# --- what is refused ----------------------------------------------------------


def test_plaintext_refused(client, db):
    assert_plaintext_refused(mariadb(client, db, "--user=app", "--skip-ssl"))
    # require_secure_transport itself: an account with no certificate requirement (made for this
    # test over the socket, dropped after) is refused in plaintext and let in over TLS with the
    # same password.
    server_sql(db, "CREATE USER 'probe'@'%' IDENTIFIED BY 'probe-password'")
    try:
        # 11.8 says why (3159); 10.11 reports the refused transport as access denied.
        assert_plaintext_refused(mariadb(client, db, "--user=probe", "--password=probe-password", "--skip-ssl"))
        over_tls = mariadb(client, db, *tls(), "--user=probe", "--password=probe-password")
        assert over_tls.rc == 0, output(over_tls)
    finally:
        server_sql(db, "DROP USER 'probe'@'%'")


def test_tls_without_client_certificate_refused(client, db):
    assert_access_denied(mariadb(client, db, *tls(), "--user=app"))


def test_certificate_from_another_ca_refused(client, db):
    # The foreign CA copies our services CA's subject, its certificate the application's:
    # REQUIRE SUBJECT/ISSUER alone would let it in; the chain check stops it in the handshake.
    names = client.check_output(f"openssl x509 -in {FOREIGN}/client.crt -noout -subject -issuer -nameopt compat")
    assert names == "subject=/CN=app\nissuer=/O=SecureStack/CN=SecureStack Services CA"
    assert_tls_refused(client, db, f"{FOREIGN}/client.crt", f"{FOREIGN}/client.key", "tlsv1 alert unknown ca")


def test_revoked_certificate_refused(client, db):
    # Same subject and issuer as app's. It got in before side_effect.yml revoked it, and
    # still with the new CRL on disk before the reload (the server reads it at FLUSH SSL).
    facts = scenario_facts()
    assert facts["before_revocation"][db] == "app@%"
    assert facts["before_reload"][db] == "app@%"
    serial = client.check_output(f"openssl x509 -in {PKI}/app-revoked.crt -noout -serial").removeprefix("serial=")
    crl = get_host(db).check_output(f"openssl crl -in {PKI}/crl/services.crl.pem -noout -text")
    revoked = {int(found, 16) for found in re.findall(r"Serial Number: ([0-9A-F]+)", crl)}
    assert int(serial, 16) in revoked
    assert_tls_refused(
        client, db, f"{PKI}/app-revoked.crt", f"{PKI}/private/app-revoked.key", "sslv3 alert certificate revoked"
    )
    # The account itself still works with the valid certificate.
    assert mariadb(client, db, *ours("app"), "--user=app").stdout.strip() == "app@%"


def test_certificate_of_another_identity_refused(client, db):
    assert_access_denied(mariadb(client, db, *ours("other"), "--user=app"))


def test_server_certificate_as_client_certificate_refused(client, db):
    # The client host's own server certificate (serverAuth only) from our CA.
    assert_tls_refused(client, db, f"{PKI}/host.crt", f"{PKI}/private/host.key", "sslv3 alert unsupported certificate")


def test_password_login_from_the_network_refused(client, db):
    # prepare.yml gave root this password, also from anywhere; the role removed both.
    for options in (tls(), ours("app")):
        assert_access_denied(mariadb(client, db, *options, "--user=root", f"--password={SEEDED_ROOT_PASSWORD}"))
    assert_plaintext_refused(mariadb(client, db, "--skip-ssl", "--user=root", f"--password={SEEDED_ROOT_PASSWORD}"))
    # The application's account takes no password either: with its certificate and a password, refused.
    assert_access_denied(mariadb(client, db, *ours("app"), "--user=app", "--password=anything"))
    # root still gets in over the local socket, as the system's root only, password or not.
    host = get_host(db)
    assert (
        host.check_output("mariadb --batch --skip-column-names --execute='SELECT CURRENT_USER()'") == "root@localhost"
    )
    other_user = host.run(
        f"runuser -u nobody -- mariadb --no-defaults --skip-ssl --user=root --password={SEEDED_ROOT_PASSWORD}"
        " --execute='SELECT 1'"
    )
    assert other_user.rc != 0 and "Access denied" in other_user.stderr, output(other_user)


@pytest.mark.parametrize("version_flag", ["-tls1", "-tls1_1"])
def test_old_tls_versions_refused_by_the_server(client, db, version_flag):
    # OpenSSL forced to offer TLS 1.0/1.1 (security level 0 allows them and their ciphers);
    # the server must answer with a protocol_version alert (70): a refusal it sent, not a local one.
    cmd = client.run(
        f"openssl s_client -connect {db}:3306 -starttls mysql {version_flag} -cipher 'DEFAULT:@SECLEVEL=0'"
        " -servername {db} < /dev/null"
    )
    text = output(cmd)
    assert cmd.rc != 0, text
    assert "alert protocol version" in text and "SSL alert number 70" in text, text
    assert "no protocols available" not in text, text
    # Control: the same client with TLS 1.2 and 1.3 completes the handshake and verifies the server.
    for good, good_version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
        ok = client.run(
            f"openssl s_client -connect {db}:3306 -starttls mysql {good} -CAfile {PKI}/ca-bundle.pem"
            f" -verify_return_error -verify_hostname {db} < /dev/null"
        )
        assert ok.rc == 0, output(ok)
        assert re.search(rf"^New, {good_version}, Cipher is ", ok.stdout, re.M), ok.stdout
        assert "Verify return code: 0 (ok)" in ok.stdout


def test_client_verifies_the_server_name_and_ca(client, db):
    address = client.check_output(f"getent hosts {db} | cut -d' ' -f1")
    alias = f"{db}-not-in-certificate"
    client.run_expect([0], f"echo '{address} {alias}' >> /etc/hosts")
    try:
        # The option file's settings, to a name the server's certificate does not carry: refused.
        wrong_name = client.run(f"mariadb --host={alias} --execute='SELECT 1'")
        assert wrong_name.rc != 0
        assert "ERROR 2026" in wrong_name.stderr, output(wrong_name)
        # Control: the same connection without verification gets in, so the name check refused it.
        unverified = client.run(f"mariadb --host={alias} --disable-ssl-verify-server-cert --execute='SELECT 1'")
        assert unverified.rc == 0, output(unverified)
    finally:
        client.run(f"sed -i '/ {alias}$/d' /etc/hosts")
    # A CA that did not sign the server's certificate: refused.
    foreign = mariadb(
        client, db, *tls(f"{PKI}/app.crt", f"{PKI}/private/app.key", ca=f"{FOREIGN}/ca.crt"), "--user=app"
    )
    assert foreign.rc != 0 and "ERROR 2026" in foreign.stderr, output(foreign)
