"""Testinfra checks of the securestack.pki.postgresql role (scenario ``postgresql``).

Every test runs on the client host, pg-client, with the real ``psql`` client
(libpq 17) or psycopg 3, against both database hosts: pg-db12 (PostgreSQL 15)
and pg-db13 (PostgreSQL 17). The client holds certificates of our services CA
for the application (CN app) and for other identities, one revoked by
side_effect.yml, a server certificate named app, a certificate named app from
a users CA under our root, and one from a foreign CA (shared fixture).
Each "refused" test also reads why in the server's log where the server says
it, and each has a control that succeeds with one thing changed.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from functools import cache
from pathlib import Path

import pytest
import testinfra

testinfra_hosts = ["docker://pg-client"]

VERSIONS = {"pg-db12": "15", "pg-db13": "17"}
PKI = "/etc/securestack-pki"
FOREIGN = "/etc/securestack-test/foreign"
LEGACY_OPENSSL_CONF = "/etc/securestack-test/openssl-legacy.cnf"
MOZILLA_TLS12_CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
}
SESSION_SQL = "SELECT current_user, ssl, version, cipher, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture(params=sorted(VERSIONS))
def db(request) -> str:
    return request.param


@cache
def server(name: str):
    return testinfra.get_host(f"docker://{name}")


def ours(name: str) -> tuple[str, str]:
    """Certificate and key of one of the client's certificates of our CAs."""
    return f"{PKI}/{name}-fullchain.pem", f"{PKI}/private/{name}.key"


def conninfo(db: str, user: str, cert: tuple[str, str] | None, **options: str) -> str:
    params = {
        "host": db,
        "dbname": "appdb",
        "user": user,
        "sslmode": "verify-full",
        "sslrootcert": f"{PKI}/ca-bundle.pem",
        "connect_timeout": "10",
    }
    if cert is None:
        params["sslcertmode"] = "disable"
    else:
        params["sslcert"], params["sslkey"] = cert
    params.update(options)
    return " ".join(f"{key}={value}" for key, value in params.items() if value is not None)


def psql(host, db: str, user: str, cert: tuple[str, str] | None, *, sql: str = SESSION_SQL, env: str = "", **options):
    """Run psql on the client; returns the command result (rc, stdout, stderr)."""
    target = shlex.quote(conninfo(db, user, cert, **options))
    return host.run(f"cd /tmp && {env} psql -XAtq {target} -c {shlex.quote(sql)}")


def connects(host, db: str, user: str, cert, **options) -> list[str]:
    result = psql(host, db, user, cert, **options)
    assert result.rc == 0, result.stderr
    return result.stdout.strip().split("|")


def refused(host, db: str, user: str, cert, env: str = "", **options) -> str:
    result = psql(host, db, user, cert, env=env, **options)
    assert result.rc != 0, f"connected: {result.stdout}"
    return result.stderr


def server_sql(db: str, sql: str) -> str:
    """A query on the database host, as the postgres superuser over the local socket."""
    return server(db).check_output(f"cd /tmp && runuser -u postgres -- psql -XAtqc {shlex.quote(sql)}")


class ServerLog:
    """The lines the database server logs from now on."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.path = f"/var/log/postgresql/postgresql-{VERSIONS[db]}-main.log"
        self.start = int(server(db).check_output(f"wc -l < {self.path}"))

    def since(self) -> str:
        return server(self.db).check_output(f"tail -n +{self.start + 1} {self.path}")


# --- the server ------------------------------------------------------------


def test_server_runs_the_release_version_with_the_role_settings(host, db):
    address = host.check_output(f"getent ahostsv4 {db} | head -n1").split()[0]
    settings = dict(
        line.split("=", 1)
        for line in server_sql(
            db,
            "SELECT name || '=' || setting FROM pg_settings WHERE name IN ('server_version_num', 'ssl',"
            " 'ssl_min_protocol_version', 'ssl_max_protocol_version', 'ssl_ciphers', 'listen_addresses',"
            " 'ssl_ca_file', 'ssl_crl_file', 'ssl_cert_file', 'ssl_key_file', 'max_connections', 'work_mem',"
            " 'password_encryption')",
        ).splitlines()
    )
    assert settings["server_version_num"].startswith(VERSIONS[db])
    assert settings["ssl"] == "on"
    assert settings["ssl_min_protocol_version"] == "TLSv1.2"
    assert settings["ssl_max_protocol_version"] == ""
    assert set(settings["ssl_ciphers"].split(":")) == MOZILLA_TLS12_CIPHERS
    assert settings["listen_addresses"] == address
    assert settings["ssl_cert_file"] == f"{PKI}/postgresql-fullchain.pem"
    assert settings["ssl_key_file"] == f"{PKI}/private/postgresql.key"
    assert settings["ssl_ca_file"] == f"{PKI}/ca-bundle.pem"
    assert settings["ssl_crl_file"] == f"{PKI}/crl-bundle.pem"
    assert settings["password_encryption"] == "scram-sha-256"  # noqa: S105 - a setting, not a password
    # The escape hatch, including a setting that only a restart applies.
    assert (settings["max_connections"], settings["work_mem"]) == ("50", "8192")
    assert server_sql(db, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"
    # Listening on the service address only: not on the wildcard, not on loopback.
    listening = server(db).check_output("ss -Htln 'sport = :5432' | awk '{print $4}'").split()
    assert listening == [f"{address}:5432"]


def test_key_is_private_to_postgres(db):
    key = server(db).file(f"{PKI}/private/postgresql.key")
    assert (key.user, key.group, key.mode) == ("postgres", "postgres", 0o600)


def test_hba_has_no_password_method(db):
    methods = server_sql(db, "SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1").split()
    assert methods == ["cert", "peer", "reject"]
    # The reject lines come first for the network, before any hostssl line.
    rules = server_sql(db, "SELECT type || ' ' || auth_method FROM pg_hba_file_rules ORDER BY line_number").splitlines()
    assert rules[0] == "local peer"
    assert rules[1:5] == ["hostnossl reject"] * 4
    assert set(rules[5:]) == {"hostssl cert"}


# --- who gets in -----------------------------------------------------------


def test_application_connects_with_psql_over_tls13(host, db):
    user, ssl, version, cipher, client_dn = connects(host, db, "app", ours("app"))
    assert (user, ssl, client_dn) == ("app", "t", "/CN=app")
    assert version == "TLSv1.3"
    assert cipher.startswith("TLS_")


PSYCOPG_SCRIPT = """
import sys
import psycopg
host, pki = sys.argv[1:]
with psycopg.connect(host=host, dbname="appdb", user="app", sslmode="verify-full",
                     sslrootcert=pki + "/ca-bundle.pem", sslcert=pki + "/app-fullchain.pem",
                     sslkey=pki + "/private/app.key", connect_timeout=10) as conn:
    print(conn.execute("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()[0])
    # app owns appdb, and so its public schema: it can create tables there.
    conn.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text)")
    conn.execute("INSERT INTO notes (body) VALUES (%s)", ("written over mutual TLS",))
    print(conn.execute("SELECT count(*) > 0 FROM notes").fetchone()[0])
"""


def test_application_connects_with_psycopg(host, db):
    result = host.run(f"python3 -c {shlex.quote(PSYCOPG_SCRIPT)} {db} {PKI}")
    assert result.rc == 0, result.stderr
    version, wrote = result.stdout.split()
    assert version in ("TLSv1.2", "TLSv1.3")
    assert wrote == "True"


def test_tls12_session_uses_a_mozilla_cipher(host, db):
    _user, ssl, version, cipher, _dn = connects(host, db, "app", ours("app"), ssl_max_protocol_version="TLSv1.2")
    assert (ssl, version) == ("t", "TLSv1.2")
    assert cipher in MOZILLA_TLS12_CIPHERS


def test_tls12_cipher_outside_mozilla_list_refused(host, db):
    def handshake(cipher: str):
        return host.run(
            f"openssl s_client -connect {db}:5432 -starttls postgres -tls1_2 -cipher {cipher} "
            f"-CAfile {PKI}/ca-bundle.pem -verify_return_error < /dev/null"
        )

    # A CBC suite that OpenSSL offers by default and the server's ECDSA key could use.
    result = handshake("ECDHE-ECDSA-AES128-SHA256")
    assert result.rc != 0
    assert "alert handshake failure" in result.stderr
    control = handshake("ECDHE-ECDSA-AES128-GCM-SHA256")
    assert "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in control.stdout, control.stderr


def test_privileges_are_applied(host, db):
    # reporter was granted CONNECT on appdb; PUBLIC lost it, so auditor,
    # mapped and allowed by pg_hba.conf, is refused by the privileges.
    assert connects(host, db, "reporter", ours("reporter"))[0] == "reporter"
    error = refused(host, db, "auditor", ours("auditor"))
    assert 'permission denied for database "appdb"' in error
    connect = server_sql(
        db,
        "SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, ',' ORDER BY 1)"
        " FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = 'appdb' AND a.privilege_type = 'CONNECT'",
    )
    assert sorted(connect.split(",")) == ["app", "reporter"]


# --- who does not ----------------------------------------------------------


def test_plaintext_refused(host, db):
    error = refused(host, db, "app", ours("app"), sslmode="disable", sslrootcert=None)
    assert "pg_hba.conf rejects connection" in error
    assert "no encryption" in error


def test_tls_without_client_certificate_refused(host, db):
    error = refused(host, db, "app", None)
    assert "connection requires a valid client certificate" in error


def test_certificate_from_another_ca_refused(host, db):
    # Same subjects as our services CA and the application's certificate.
    subject = host.check_output(f"openssl x509 -in {FOREIGN}/app.crt -noout -subject -issuer")
    assert "CN=app" in subject and "CN=SecureStack Services CA" in subject
    log = ServerLog(db)
    error = refused(host, db, "app", (f"{FOREIGN}/app.crt", f"{FOREIGN}/app.key"))
    assert "alert unknown ca" in error, error
    assert "could not accept SSL connection: certificate verify failed" in log.since()


def test_revoked_certificate_refused(host, db):
    # Same name as the application's (mapped to app); revoked by side_effect.yml.
    serial = host.check_output(f"openssl x509 -in {PKI}/revoked.crt -noout -serial").split("=")[1]
    crls = server(db).check_output(f"openssl crl -in {PKI}/crl/services.crl.pem -noout -text")
    assert int(serial, 16) in {
        int(line.split(":")[1].strip(), 16) for line in crls.splitlines() if "Serial Number:" in line
    }
    log = ServerLog(db)
    error = refused(host, db, "app", ours("revoked"))
    assert "alert certificate revoked" in error, error
    lines = log.since()
    assert "could not accept SSL connection: certificate verify failed" in lines
    if VERSIONS[db] != "15":  # PostgreSQL 16 and newer say why
        assert "certificate revoked" in lines


def test_certificate_of_another_identity_refused(host, db):
    for name in ("reporter", "auditor"):
        error = refused(host, db, "app", ours(name))
        assert 'certificate authentication failed for user "app"' in error, name
    # A role on no pg_hba.conf line, whatever the certificate.
    assert "no pg_hba.conf entry" in refused(host, db, "stranger", ours("reporter"))
    # Nobody gets the superuser over the network.
    assert "no pg_hba.conf entry" in refused(host, db, "postgres", ours("app"))
    # Control: the reporter certificate itself is valid, for its own role.
    assert connects(host, db, "reporter", ours("reporter"))[0] == "reporter"


def test_server_certificate_as_client_certificate_refused(host, db):
    # Named app, from our services CA, but for serverAuth only.
    usage = host.check_output(f"openssl x509 -in {PKI}/app-server.crt -noout -subject -ext extendedKeyUsage")
    assert "CN=app" in usage and "TLS Web Server Authentication" in usage and "Client" not in usage
    log = ServerLog(db)
    error = refused(host, db, "app", ours("app-server"))
    assert "alert unsupported certificate" in error, error
    if VERSIONS[db] != "15":
        assert "unsuitable certificate purpose" in log.since()


def test_certificate_of_another_ca_under_our_root_refused(host, db):
    # The users CA is signed by our root (in ssl_ca_file), but its CRL is not
    # in ssl_crl_file: OpenSSL wants a CRL for every certificate of the chain.
    issuer = host.check_output(f"openssl x509 -in {PKI}/users-app.crt -noout -subject -issuer")
    assert "CN=app" in issuer and "SecureStack Test Users CA" in issuer
    log = ServerLog(db)
    error = refused(host, db, "app", ours("users-app"))
    assert "alert unknown ca" in error, error
    if VERSIONS[db] != "15":
        assert "unable to get certificate CRL" in log.since()


def test_password_login_from_the_network_refused(host, db):
    password = secrets.token_urlsafe(18)
    server_sql(db, f"ALTER ROLE reporter PASSWORD '{password}'")
    try:
        stored = server_sql(db, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'reporter'")
        assert stored == "t"
        env = f"PGPASSWORD={password}"
        # TLS, right password, no certificate.
        error = refused(host, db, "reporter", None, env=env)
        assert "connection requires a valid client certificate" in error
        # Plaintext, right password.
        error = refused(host, db, "reporter", None, env=env, sslmode="disable", sslrootcert=None, sslcertmode=None)
        assert "pg_hba.conf rejects connection" in error
        # TLS with the certificate of an identity that is not reporter, right password.
        error = refused(host, db, "reporter", ours("auditor"), env=env)
        assert 'certificate authentication failed for user "reporter"' in error
        # The server never asks for a password: a client that accepts only a
        # password exchange gives up before sending anything.
        error = refused(host, db, "reporter", ours("reporter"), env=env, require_auth="scram-sha-256")
        assert "server did not complete authentication" in error or "authentication method requirement" in error
    finally:
        server_sql(db, "ALTER ROLE reporter PASSWORD NULL")


def test_tls10_and_tls11_refused_by_the_server(host, db):
    legacy = f"OPENSSL_CONF={LEGACY_OPENSSL_CONF}"
    for version, flag, hello in (("TLSv1", "-tls1", "03 01"), ("TLSv1.1", "-tls1_1", "03 02")):
        log = ServerLog(db)
        error = refused(
            host,
            db,
            "app",
            ours("app"),
            env=legacy,
            ssl_min_protocol_version="TLSv1",
            ssl_max_protocol_version=version,
        )
        # A protocol_version alert received from the server.
        assert "alert protocol version" in error, error
        assert "could not accept SSL connection: unsupported protocol" in log.since()
        # The same with openssl's trace: the ClientHello offered the old
        # version, the server answered with a fatal protocol_version alert.
        trace = host.run(
            f"{legacy} openssl s_client -connect {db}:5432 -starttls postgres {flag} "
            f"-cipher DEFAULT:@SECLEVEL=0 -msg < /dev/null"
        )
        assert trace.rc != 0
        hello_line = trace.stdout.split("ClientHello", 1)[1].splitlines()[1].split()
        assert " ".join(hello_line[4:6]) == hello, trace.stdout
        assert "<<< " in trace.stdout and "Alert [length 0002], fatal protocol_version" in trace.stdout


def test_client_really_offers_tls11(host):
    # Control for the test above: with the same OpenSSL configuration the
    # client completes a TLS 1.1 handshake with a local server that allows it.
    host.run_expect(
        [0],
        "cd /tmp && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls11.key"
        " -out tls11.crt -subj /CN=tls11 -days 1 2> /dev/null",
    )
    try:
        host.run_expect(
            [0],
            f"cd /tmp && (sleep 5 | OPENSSL_CONF={LEGACY_OPENSSL_CONF} openssl s_server -accept 14433"
            " -cert tls11.crt -key tls11.key -tls1_1 -cipher DEFAULT:@SECLEVEL=0 -naccept 1"
            " > /dev/null 2>&1 &) && sleep 1",
        )
        result = host.run(
            f"(sleep 1; echo Q) | OPENSSL_CONF={LEGACY_OPENSSL_CONF} openssl s_client -connect 127.0.0.1:14433"
            " -tls1_1 -cipher DEFAULT:@SECLEVEL=0"
        )
        assert "Protocol  : TLSv1.1" in result.stdout, result.stderr
    finally:
        host.run("rm -f /tmp/tls11.key /tmp/tls11.crt")


# --- CRL reloads -----------------------------------------------------------


@cache
def times(db: str) -> dict:
    state = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    return json.loads((state / f"times-{db}.json").read_text())


def test_revocation_reloaded_the_server_without_a_restart(db):
    before, after = times(db)["before"], times(db)["after"]
    # Same postmaster start time, later configuration load time.
    assert after[0] == before[0]
    assert after[1] > before[1]


def test_crl_unit_reload_reaches_the_server(db):
    # What the certificate role's CRL refresh timer runs.
    unit = f"postgresql@{VERSIONS[db]}-main.service"
    assert unit in server(db).file("/usr/local/sbin/securestack-pki-crl-fetch").content_string
    sql = "SELECT pg_postmaster_start_time() || '|' || pg_conf_load_time()"
    started, loaded = server_sql(db, sql).split("|")
    server(db).run_expect([0], f"systemctl try-reload-or-restart {unit}")
    now = server(db).run(
        f"for i in $(seq 20); do v=$(cd /tmp && runuser -u postgres -- psql -XAtqc {shlex.quote(sql)});"
        f' [ "${{v#*|}}" != {shlex.quote(loaded)} ] && break; sleep 0.5; done; echo "$v"'
    )
    new_started, new_loaded = now.stdout.strip().split("|")
    assert new_started == started
    assert new_loaded > loaded
