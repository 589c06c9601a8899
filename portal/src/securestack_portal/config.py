"""The portal's configuration: one TOML file, named by SECURESTACK_PORTAL_CONFIG."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .dn import parse_dn
from .origins import split_host
from .pki import PkiError, normalize_domain, validate_ip_range

CONFIG_ENV = "SECURESTACK_PORTAL_CONFIG"
DEFAULT_CONFIG = "/etc/securestack-portal/portal.toml"


class ConfigError(Exception):
    """The configuration file is missing, unreadable or wrong; the message says what to fix."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    ssl_ca: str = ""
    ssl_cert: str = ""
    ssl_key: str = ""

    @property
    def dialect(self) -> str:
        return self.url.split(":", 1)[0].split("+", 1)[0]


@dataclass(frozen=True)
class CaConfig:
    dir: str
    passphrase_file: str = ""
    user_valid_days: int = 365


@dataclass(frozen=True)
class AuthConfig:
    admin_subjects: tuple[str, ...] = ()
    proxy_common_names: tuple[str, ...] = ()
    proxy_issuer: str = ""
    # SHA-256 (hex) of the SubjectPublicKeyInfo of each web host's proxy certificate.
    proxy_spki_sha256: tuple[str, ...] = ()
    # A file of more such pins, one a line (the portal role writes it from the web hosts' certificates).
    proxy_spki_sha256_file: str = ""
    allow_self_approval: bool = False
    # An approver may enrol a subject nobody holds yet (no account, no certificate, no configured role)
    # at once; every other subject's request waits for a second approver. Off by default.
    enrol_new_subjects: bool = False


@dataclass(frozen=True)
class WebConfig:
    """What browsers reach the portal by, through the web tier: `name` (any port) or `name:port` entries."""

    trusted_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class NamesConfig:
    """Which subject alternative names a person's certificate may hold (the users CA's client profile).

    E-mail addresses: any, or only in `email_domains` when it is set. DNS names and IP
    addresses: none unless `dns_domains` / `ip_ranges` name where they may lie.
    """

    email_domains: tuple[str, ...] = ()
    dns_domains: tuple[str, ...] = ()
    ip_ranges: tuple[str, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    """Per-user quotas: requests waiting for a decision, key pairs the portal makes per hour."""

    max_pending_requests: int = 10
    generations_per_hour: int = 10


@dataclass(frozen=True)
class DevConfig:
    """Development mode: no proxy, identity from a local certificate. Never on unless set."""

    enabled: bool = False
    identity_certificate: str = ""


@dataclass(frozen=True)
class Config:
    secret_key_file: str
    database: DatabaseConfig
    ca: CaConfig
    auth: AuthConfig = field(default_factory=AuthConfig)
    web: WebConfig = field(default_factory=WebConfig)
    names: NamesConfig = field(default_factory=NamesConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    dev: DevConfig = field(default_factory=DevConfig)

    def secret_key(self) -> bytes:
        try:
            key = Path(self.secret_key_file).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"secret_key_file {self.secret_key_file}: {exc.strerror}") from None
        if len(key) < 32:
            raise ConfigError(f"secret_key_file {self.secret_key_file} holds fewer than 32 bytes: make a random key")
        return key

    def ca_passphrase(self) -> str | None:
        if not self.ca.passphrase_file:
            return None
        try:
            return Path(self.ca.passphrase_file).read_text().strip() or None
        except OSError as exc:
            raise ConfigError(f"ca.passphrase_file {self.ca.passphrase_file}: {exc.strerror}") from None


def _section(data: dict, name: str) -> dict:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _strings(section: dict, key: str, where: str) -> tuple[str, ...]:
    value = section.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key} must be a list of strings")
    return tuple(value)


def _count(section: dict, key: str, where: str, default: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}.{key} must be a whole number of at least 1, not {value!r}")
    return value


def _names(section: dict) -> NamesConfig:
    try:
        return NamesConfig(
            email_domains=tuple(normalize_domain(d) for d in _strings(section, "email_domains", "names")),
            dns_domains=tuple(normalize_domain(d) for d in _strings(section, "dns_domains", "names")),
            ip_ranges=tuple(validate_ip_range(r) for r in _strings(section, "ip_ranges", "names")),
        )
    except PkiError as exc:
        raise ConfigError(f"[names]: {exc}") from None


def _pins(auth: dict) -> tuple[str, ...]:
    """auth.proxy_spki_sha256, then the first word of each line of auth.proxy_spki_sha256_file (# comments)."""
    pins = list(_strings(auth, "proxy_spki_sha256", "auth"))
    path = auth.get("proxy_spki_sha256_file", "")
    if path:
        try:
            lines = Path(str(path)).read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"auth.proxy_spki_sha256_file {path}: {exc.strerror}") from None
        pins += [line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return tuple(pin.replace(":", "").lower() for pin in pins)


def _check_dn(value: str, where: str) -> None:
    try:
        parse_dn(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {value!r} is not a distinguished name (RFC 4514): {exc}") from None


def parse(data: dict) -> Config:
    """Build a Config from the parsed TOML, refusing what cannot work."""
    database = _section(data, "database")
    ca = _section(data, "ca")
    auth = _section(data, "auth")
    web = _section(data, "web")
    names = _section(data, "names")
    limits = _section(data, "limits")
    dev = _section(data, "dev")
    if not data.get("secret_key_file"):
        raise ConfigError("secret_key_file is required")
    if not database.get("url"):
        raise ConfigError("[database] url is required")
    if not ca.get("dir"):
        raise ConfigError("[ca] dir is required")
    config = Config(
        secret_key_file=str(data["secret_key_file"]),
        database=DatabaseConfig(
            url=str(database["url"]),
            ssl_ca=str(database.get("ssl_ca", "")),
            ssl_cert=str(database.get("ssl_cert", "")),
            ssl_key=str(database.get("ssl_key", "")),
        ),
        ca=CaConfig(
            dir=str(ca["dir"]),
            passphrase_file=str(ca.get("passphrase_file", "")),
            user_valid_days=int(ca.get("user_valid_days", 365)),
        ),
        auth=AuthConfig(
            admin_subjects=_strings(auth, "admin_subjects", "auth"),
            proxy_common_names=_strings(auth, "proxy_common_names", "auth"),
            proxy_issuer=str(auth.get("proxy_issuer", "")),
            proxy_spki_sha256=_pins(auth),
            proxy_spki_sha256_file=str(auth.get("proxy_spki_sha256_file", "")),
            allow_self_approval=bool(auth.get("allow_self_approval", False)),
            enrol_new_subjects=auth.get("enrol_new_subjects", False) is True,
        ),
        web=WebConfig(trusted_hosts=tuple(v.lower() for v in _strings(web, "trusted_hosts", "web"))),
        names=_names(names),
        limits=LimitsConfig(
            max_pending_requests=_count(limits, "max_pending_requests", "limits", 10),
            generations_per_hour=_count(limits, "generations_per_hour", "limits", 10),
        ),
        dev=DevConfig(
            enabled=dev.get("enabled", False) is True,
            identity_certificate=str(dev.get("identity_certificate", "")),
        ),
    )
    _validate(config)
    return config


def _check_pins(auth: AuthConfig) -> None:
    if not auth.proxy_spki_sha256 and not auth.proxy_spki_sha256_file:
        raise ConfigError(
            "[auth] proxy_spki_sha256 (or proxy_spki_sha256_file) is required: the SHA-256 of the public key"
            " of each web host's proxy certificate (the portal role gathers them from the web hosts)"
        )
    for pin in auth.proxy_spki_sha256:
        if not re.fullmatch(r"[0-9a-f]{64}", pin):
            raise ConfigError(f"auth.proxy_spki_sha256: {pin!r} is not a SHA-256 in hex (64 hexadecimal digits)")


def _validate(config: Config) -> None:
    if config.database.dialect not in ("sqlite", "postgresql", "mysql"):
        raise ConfigError(f"[database] url: unsupported database {config.database.dialect!r}")
    if not 1 <= config.ca.user_valid_days <= 825:
        raise ConfigError("[ca] user_valid_days must be between 1 and 825 (the engine's client profile maximum)")
    for subject in config.auth.admin_subjects:
        _check_dn(subject, "auth.admin_subjects")
    for entry in config.web.trusted_hosts:
        if split_host(entry) is None:
            raise ConfigError(
                f"web.trusted_hosts: {entry!r} is not a host name or address with an optional port (name or name:port)"
            )
    if config.dev.enabled:
        if config.database.dialect != "sqlite":
            raise ConfigError("[dev] enabled works with SQLite only: development mode never touches a real database")
        if not config.dev.identity_certificate:
            raise ConfigError("[dev] enabled needs identity_certificate (made by `securestack-portal dev-init`)")
        return
    if not config.web.trusted_hosts:
        raise ConfigError(
            "[web] trusted_hosts is required: the names (name, or name:port for one port only) browsers reach"
            " the portal by through the web tier (role variable portal_trusted_hosts)"
        )
    if not config.auth.proxy_issuer or not config.auth.proxy_common_names:
        raise ConfigError("[auth] proxy_issuer and proxy_common_names are required: only the proxy may connect")
    _check_dn(config.auth.proxy_issuer, "auth.proxy_issuer")
    _check_pins(config.auth)
    if config.database.dialect != "sqlite" and not (
        config.database.ssl_ca and config.database.ssl_cert and config.database.ssl_key
    ):
        raise ConfigError(
            "[database] ssl_ca, ssl_cert and ssl_key are required: the database is reached over mutual TLS"
        )


def load(path: str | None = None) -> Config:
    path = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"configuration {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration {path}: {exc}") from None
    return parse(data)
