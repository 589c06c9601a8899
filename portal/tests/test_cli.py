"""`securestack-portal`: migrations, the configuration check, the CRL, and the development setup."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from securestack_pki._pki_ca import CertificateAuthority

from conftest import Harness, portal_config
from securestack_portal import create_app
from securestack_portal.cli import main
from securestack_portal.config import ConfigError, load, parse
from securestack_portal.database import head_revision


def write_config(path: Path, data: dict) -> Path:
    from securestack_portal.devsetup import _toml

    path.write_text(_toml(data))
    return path


def run(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_db_upgrade_makes_the_schema_once(portal: Harness, tmp_path: Path) -> None:
    data = portal_config(tmp_path, portal.users_ca)
    data["database"]["url"] = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    config = write_config(tmp_path / "portal.toml", data)
    first = run(config, "db", "upgrade")
    assert first.exit_code == 0, first.output
    assert first.output == f"upgraded to {head_revision()} (was empty)\n"
    second = run(config, "db", "upgrade")
    assert second.exit_code == 0 and second.output == f"database already at head ({head_revision()})\n"


def test_check_config(portal: Harness, tmp_path: Path) -> None:
    config = write_config(tmp_path / "portal.toml", portal_config(portal.directory, portal.users_ca))
    good = run(config, "check-config")
    assert good.exit_code == 0, good.output
    assert "users CA: CN=SecureStack Users CA,O=SecureStack" in good.output and "configuration OK" in good.output
    data = portal_config(portal.directory, portal.users_ca)
    data["database"]["url"] = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    data["ca"]["dir"] = str(tmp_path / "nowhere")
    bad = run(write_config(tmp_path / "bad.toml", data), "check-config")
    assert bad.exit_code == 1
    assert "users CA: no CA at" in bad.output and "run db upgrade" in bad.output


def test_crl_command(portal: Harness, tmp_path: Path) -> None:
    config = write_config(tmp_path / "portal.toml", portal_config(portal.directory, portal.users_ca))
    current = run(config, "crl")
    assert current.exit_code == 0 and current.output.startswith("CRL current, number 1")
    forced = run(config, "crl", "--force")
    assert forced.exit_code == 0 and forced.output.startswith("CRL rewritten, number 2")
    crl = x509.load_der_x509_crl((portal.users_ca / "crl.der").read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2


def test_a_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    result = run(tmp_path / "missing.toml", "db", "upgrade")
    assert result.exit_code == 1 and "No such file or directory" in result.output


def test_dev_init_makes_a_working_development_setup(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dev-init", str(tmp_path / "dev"), "--subject", "CN=Dev,O=Test"])
    assert result.exit_code == 0, result.output
    config = load(str(tmp_path / "dev" / "portal.toml"))
    assert config.dev.enabled and config.database.dialect == "sqlite"
    users = CertificateAuthority.open(config.ca.dir)
    assert users.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value[0].dotted_string == (
        "1.3.6.1.5.5.7.3.2"
    )
    app = create_app(config)
    client = app.test_client()
    page = client.get("/", base_url="https://localhost")
    assert page.status_code == 200
    assert "Development mode" in page.text and "CN=Dev,O=Test" in page.text
    assert client.get("/api/v1/me", base_url="https://localhost").json["role"] == "admin"
    # the injector replaces whatever identity the client claims
    forged = client.get("/api/v1/me", base_url="https://localhost", headers={"X-SSL-Client-S-DN": "CN=Other"})
    assert forged.json["subject"] == "CN=Dev,O=Test"


def test_development_mode_is_off_unless_set(portal: Harness) -> None:
    assert not portal.config.dev.enabled
    # without the proxy and without headers, nothing gets in (no injector)
    response = portal.app.test_client().get("/", base_url="https://portal.test")
    assert response.status_code == 403
    assert "Development mode" not in response.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"database": {"url": "sqlite:///x", "extra": 1}, "dev": {"enabled": True}}, "needs identity_certificate"),
        ({"database": {"url": "postgresql+psycopg://db1/p"}, "dev": {"enabled": True, "identity_certificate": "x"}}, "SQLite only"),  # noqa: E501
        ({"database": {"url": "postgresql+psycopg://portal@db1/portal"}}, "ssl_ca, ssl_cert and ssl_key are required"),
        ({"database": {"url": "oracle://x"}}, "unsupported database 'oracle'"),
        ({"auth": {"proxy_common_names": []}}, "proxy_issuer and proxy_common_names are required"),
        ({"auth": {"proxy_common_names": ["web1"], "proxy_issuer": "nonsense"}}, "not a distinguished name"),
        ({"auth": {"proxy_common_names": ["web1"], "proxy_issuer": "CN=S", "admin_subjects": "CN"}}, "must be a list"),
        ({"ca": {"dir": "/x", "user_valid_days": 900}}, "between 1 and 825"),
        ({"secret_key_file": ""}, "secret_key_file is required"),
    ],
)  # fmt: skip
def test_configuration_errors(tmp_path: Path, change: dict, message: str) -> None:
    data = portal_config(tmp_path, tmp_path / "ca")
    for key, value in change.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) and key != "auth" else value
    if "auth" in change:
        data["auth"] = change["auth"]
    with pytest.raises(ConfigError, match=message):
        parse(data)


def test_a_short_secret_key_is_refused(tmp_path: Path) -> None:
    config = parse(portal_config(tmp_path, tmp_path / "ca"))
    Path(config.secret_key_file).write_text("short")
    with pytest.raises(ConfigError, match="fewer than 32 bytes"):
        config.secret_key()


def test_database_tls_settings() -> None:
    from securestack_portal.config import DatabaseConfig
    from securestack_portal.database import connect_args

    files = {"ssl_ca": "/ca.pem", "ssl_cert": "/c.crt", "ssl_key": "/c.key"}
    postgres = connect_args(DatabaseConfig(url="postgresql+psycopg://portal@db1/portal", **files))
    assert postgres == {"sslmode": "verify-full", "sslrootcert": "/ca.pem", "sslcert": "/c.crt", "sslkey": "/c.key"}
    mysql = connect_args(DatabaseConfig(url="mysql+pymysql://portal@db1/portal", **files))
    assert mysql == {**files, "ssl_verify_cert": True, "ssl_verify_identity": True}
    assert connect_args(DatabaseConfig(url="sqlite:///x")) == {}
