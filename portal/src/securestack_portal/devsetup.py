"""A development setup made with the engine: a root, a users CA (clientAuth only), one personal certificate."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securestack_pki._pki_ca import AuthoritySettings, CertificateAuthority, SignSpec

from .config import Config, parse
from .database import make_engine, upgrade
from .dn import parse_dn


def make_users_ca(directory: Path) -> Path:
    """Root and users CA the way the collection deploys them (users CA key made beside the portal, root signs)."""
    root, users = directory / "root", directory / "users-ca"
    CertificateAuthority.ensure(
        str(root), AuthoritySettings(common_name="Dev Root CA", organization_name="SecureStack")
    )
    settings = AuthoritySettings(common_name="SecureStack Users CA", organization_name="SecureStack")
    _changed, csr, _before, _after = CertificateAuthority.ensure_external(str(users), settings)
    root_ca = CertificateAuthority.open(str(root))
    signed = root_ca.sign([SignSpec(csr=csr, profile="intermediate", extended_key_usage=["clientAuth"])])[0]
    CertificateAuthority.ensure_external(str(users), settings, certificate=signed.certificate, chain=root_ca.chain_pem)
    return users


def issue_personal(users: Path, subject: str, key_file: Path) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(parse_dn(subject))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    result = CertificateAuthority.open(str(users)).sign([SignSpec(csr=csr, profile="client", name="dev")])[0]
    return result.certificate or ""


def dev_config(directory: Path, subject: str) -> dict:
    return {
        "secret_key_file": str(directory / "secret_key"),
        "database": {"url": f"sqlite:///{directory / 'portal.sqlite3'}"},
        "ca": {"dir": str(directory / "users-ca")},
        "auth": {"admin_subjects": [subject]},
        # `flask run` on this machine, on any port.
        "web": {"trusted_hosts": ["localhost", "127.0.0.1"]},
        "dev": {"enabled": True, "identity_certificate": str(directory / "me.crt")},
    }


def _toml(data: dict) -> str:
    """The few shapes dev_config uses: strings, booleans, lists of strings, one level of tables."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, values in ((k, v) for k, v in data.items() if isinstance(v, dict)):
        lines.append(f"\n[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def make_dev_setup(directory: Path, subject: str, secret: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    users = make_users_ca(directory)
    (directory / "me.crt").write_text(issue_personal(users, subject, directory / "me.key"))
    secret_file = directory / "secret_key"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(0o600)
    data = dev_config(directory, subject)
    config: Config = parse(data)
    upgrade(make_engine(config.database))
    config_file = directory / "portal.toml"
    config_file.write_text("# Development only: [dev] enabled = true skips the proxy check.\n" + _toml(data))
    return config_file
