# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection
# (its modules, its roles and its portal). Breaking changes can occur any time.
#
# The CA engine: create or keep a root or subordinate CA, sign CSRs one at a
# time or in batches, revoke, publish CRLs and report what was issued. Pure
# Python on `cryptography` 38 or newer, no Ansible imports, so the portal
# signs with the very same code as the modules.
#
# A CA is a directory (mode 0700):
#   ca.key          the private key, 0600, optionally encrypted
#   ca.crt          the CA certificate
#   chain.pem       this CA's certificate and its issuers up to the root
#   crl.pem/crl.der the current CRL (PEM for servers, DER for HTTP)
#   ledger.sqlite3  every certificate issued, revocations, CRL numbers

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import multiprocessing
import os
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
except ImportError:
    pass  # reported through _pki_policy.CRYPTOGRAPHY_IMPORT_ERROR

from ._pki_files import (
    DIRECTORY_MODE,
    KEY_MODE,
    PUBLIC_MODE,
    atomic_write,
    directory_lock,
    ensure_mode,
    ensure_private_directory,
    read_bytes,
)
from ._pki_ledger import Entry, Ledger
from ._pki_policy import (
    BAD_SIGNATURE,
    EXTENDED_KEY_USAGES,
    MAX_BATCH,
    NamePolicy,
    PkiError,
    ValidatedRequest,
    csr_signature_valid,
    general_names,
    get_profile,
    name_to_string,
    normalize_domain,
    spki_sha256,
    validate_ip_range,
    validate_request,
)

KEY_FILE = "ca.key"
CERT_FILE = "ca.crt"
CHAIN_FILE = "chain.pem"
CRL_FILE = "crl.pem"
CRL_DER_FILE = "crl.der"

BACKDATE = datetime.timedelta(minutes=5)
DEFAULT_CRL_DAYS = 7
MAX_ROOT_DAYS = 7300
KEY_TYPES = ("ecdsa", "rsa", "ed25519")
CURVES = ("secp256r1", "secp384r1")
RSA_SIZES = (2048, 3072, 4096)

# RFC 5280 reason names, which are also the values of cryptography's ReasonFlags.
# certificateHold is left out on purpose: revocation is final.
REVOCATION_REASONS = (
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
    "aACompromise",
)


# ---------------------------------------------------------------- helpers
def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def _aware(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def cert_not_before(cert: x509.Certificate) -> datetime.datetime:
    value = getattr(cert, "not_valid_before_utc", None)  # cryptography >= 42
    return value if value is not None else _aware(cert.not_valid_before)


def cert_not_after(cert: x509.Certificate) -> datetime.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else _aware(cert.not_valid_after)


def crl_next_update(crl: x509.CertificateRevocationList) -> datetime.datetime | None:
    value = getattr(crl, "next_update_utc", None)
    if value is not None:
        return value
    return None if crl.next_update is None else _aware(crl.next_update)


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def normalize_serial(value: str) -> str:
    cleaned = value.strip().lower().replace(":", "").replace(" ", "")
    if cleaned.startswith("0x"):
        cleaned = cleaned[2:]
    if not cleaned or any(c not in "0123456789abcdef" for c in cleaned):
        raise PkiError(f"{value!r} is not a serial number in hexadecimal")
    return serial_hex(int(cleaned, 16))


def pem_of(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def split_pem_certificates(data: bytes) -> list[x509.Certificate]:
    marker = b"-----END CERTIFICATE-----"
    certs = []
    for block in data.split(marker):
        if b"-----BEGIN CERTIFICATE-----" in block:
            start = block.index(b"-----BEGIN CERTIFICATE-----")
            certs.append(x509.load_pem_x509_certificate(block[start:] + marker + b"\n"))
    return certs


def generate_key(key_type: str, key_curve: str = "secp256r1", key_size: int = 3072):
    if key_type == "ecdsa":
        if key_curve not in CURVES:
            raise PkiError(f"key_curve {key_curve!r} is not supported: use {', '.join(CURVES)}")
        return ec.generate_private_key(ec.SECP384R1() if key_curve == "secp384r1" else ec.SECP256R1())
    if key_type == "rsa":
        if key_size not in RSA_SIZES:
            raise PkiError(f"key_size {key_size} is not supported for a CA: use {', '.join(map(str, RSA_SIZES))}")
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise PkiError(f"key_type {key_type!r} is not supported: use {', '.join(KEY_TYPES)}")


def describe_key(public_key: object) -> dict:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"key_type": "ecdsa", "key_curve": public_key.curve.name}
    if isinstance(public_key, rsa.RSAPublicKey):
        return {"key_type": "rsa", "key_size": public_key.key_size}
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return {"key_type": "ed25519"}
    return {"key_type": type(public_key).__name__}


def signature_hash(private_key: object):
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name == "secp384r1":
        return hashes.SHA384()
    return hashes.SHA256()


def encode_key(private_key: object, passphrase: str | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    )
    return private_key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_key(data: bytes, passphrase: str | None, where: str):
    try:
        return serialization.load_pem_private_key(data, passphrase.encode() if passphrase else None)
    except TypeError:
        if passphrase:
            raise PkiError(f"the key of {where} is not encrypted, but a passphrase was given") from None
        raise PkiError(f"the key of {where} is encrypted: a passphrase is required") from None
    except ValueError:
        raise PkiError(f"the key of {where} could not be decrypted: wrong passphrase or damaged file") from None


def key_is_encrypted(data: bytes) -> bool:
    return b"ENCRYPTED" in data.split(b"\n", 1)[0]


# --------------------------------------------------------------- settings
@dataclass
class AuthoritySettings:
    """What the operator asks for when creating or keeping a CA."""

    common_name: str
    organization_name: str | None = None
    key_type: str = "ecdsa"
    key_curve: str = "secp256r1"
    key_size: int = 3072
    valid_days: int | None = None
    path_length: int | None = None
    permitted_domains: list[str] = field(default_factory=list)
    permitted_ip_ranges: list[str] = field(default_factory=list)
    crl_url: str | None = None
    # Authority Information Access caIssuers: where this CA's own certificate (DER) is served,
    # written into every certificate it signs so that relying parties can build the chain.
    ca_issuers_url: str | None = None
    extended_key_usage: list[str] = field(default_factory=list)

    def normalise(self, is_root: bool) -> None:
        if not self.common_name or not self.common_name.strip():
            raise PkiError("common_name must not be empty")
        if self.key_type not in KEY_TYPES:
            raise PkiError(f"key_type {self.key_type!r} is not supported: use {', '.join(KEY_TYPES)}")
        if self.valid_days is None:
            self.valid_days = 3650 if is_root else 1825
        limit = MAX_ROOT_DAYS if is_root else get_profile("intermediate").max_days
        if not 1 <= self.valid_days <= limit:
            raise PkiError(
                f"valid_days {self.valid_days} refused: a {'root' if is_root else 'subordinate'} CA allows 1 to {limit}"
            )
        if self.path_length is None:
            self.path_length = 1 if is_root else 0
        if self.path_length < 0:
            raise PkiError("path_length must be zero or more")
        self.permitted_domains = sorted({normalize_domain(d) for d in self.permitted_domains})
        self.permitted_ip_ranges = sorted({validate_ip_range(r) for r in self.permitted_ip_ranges})
        unknown = [u for u in self.extended_key_usage if u not in EXTENDED_KEY_USAGES]
        if unknown:
            raise PkiError(f"unknown extended key usage {', '.join(unknown)}: use {', '.join(EXTENDED_KEY_USAGES)}")
        if self.extended_key_usage and is_root:
            raise PkiError("extended_key_usage applies to subordinate CAs only")
        self.extended_key_usage = sorted(set(self.extended_key_usage))
        check_url("crl_url", self.crl_url)
        check_url("ca_issuers_url", self.ca_issuers_url)


def check_url(option: str, value: str | None) -> None:
    """A URL written into certificates (CRL distribution point, caIssuers): http(s) with a host."""
    if value is None:
        return
    if not value.startswith(("http://", "https://")):
        raise PkiError(f"{option} {value!r} must be an http:// or https:// URL")
    if not value.isascii() or any(c.isspace() or not c.isprintable() for c in value):
        raise PkiError(f"{option} {value!r} must be an ASCII URL without spaces or control characters")
    try:
        host = urllib.parse.urlsplit(value).hostname
    except ValueError as exc:
        raise PkiError(f"{option} {value!r} is not a valid URL: {exc}") from None
    if not host:
        raise PkiError(f"{option} {value!r} names no host")


@dataclass
class SignSpec:
    """One request of a batch as the caller gives it."""

    csr: str
    profile: str = "server"
    name: str = ""
    valid_days: int | None = None
    path_length: int | None = None
    extended_key_usage: list[str] = field(default_factory=list)


@dataclass
class SignResult:
    name: str
    changed: bool
    serial: str | None
    certificate: str | None
    not_after: str | None
    profile: str


@dataclass
class CrlResult:
    changed: bool
    crl: str | None
    crl_number: int
    next_update: str | None


# ------------------------------------------------------------ extensions
def _constraints_extension(domains: list[str], ranges: list[str]) -> x509.NameConstraints | None:
    permitted: list[x509.GeneralName] = [x509.DNSName(d) for d in domains]
    permitted += [x509.IPAddress(ipaddress.ip_network(r)) for r in ranges]
    return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None) if permitted else None


def _key_usage(ca: bool, public_key: object) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=(not ca) and isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_subject(settings: AuthoritySettings) -> x509.Name:
    attributes = []
    if settings.organization_name:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, settings.organization_name))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, settings.common_name))
    return x509.Name(attributes)


def _identity(spki: str, subject: x509.Name, names: list[str], profile: str, extra: dict) -> str:
    material = json.dumps(
        {
            "spki": spki,
            "subject": name_to_string(subject),
            "names": sorted(names),
            "profile": profile,
            **extra,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


# ----------------------------------------------------------- authority
class CertificateAuthority:
    """A CA on disk. Construct with `open()` or `ensure()`."""

    def __init__(self, path: str, passphrase: str | None = None) -> None:
        self.path = os.path.abspath(path)
        self.passphrase = passphrase
        self.ledger = Ledger(self.path)
        self._key = None
        cert_data = read_bytes(self._file(CERT_FILE))
        if cert_data is None:
            raise PkiError(f"no CA at {self.path}: {CERT_FILE} is missing")
        self.certificate = x509.load_pem_x509_certificate(cert_data)
        chain_data = read_bytes(self._file(CHAIN_FILE)) or cert_data
        self.chain = split_pem_certificates(chain_data)
        self.ledger.initialise()

    # -- construction ----------------------------------------------------
    @classmethod
    def open(cls, path: str, passphrase: str | None = None) -> CertificateAuthority:
        if not os.path.isdir(path):
            raise PkiError(f"no CA at {path}: the directory does not exist")
        return cls(path, passphrase)

    @staticmethod
    def exists(path: str) -> bool:
        return os.path.exists(os.path.join(path, CERT_FILE)) and os.path.exists(os.path.join(path, KEY_FILE))

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def key(self):
        if self._key is None:
            data = read_bytes(self._file(KEY_FILE))
            if data is None:
                raise PkiError(f"the CA at {self.path} has no key ({KEY_FILE} missing)")
            self._key = load_key(data, self.passphrase, f"the CA at {self.path}")
        return self._key

    # -- settings kept in the ledger -------------------------------------
    def setting(self, key: str, default: object = None) -> object:
        value = self.ledger.get_meta(f"setting.{key}")
        return default if value is None else json.loads(value)

    @property
    def name_policy(self) -> NamePolicy:
        return NamePolicy(
            permitted_domains=tuple(self.setting("permitted_domains", [])),  # type: ignore[arg-type]
            permitted_ip_ranges=tuple(self.setting("permitted_ip_ranges", [])),  # type: ignore[arg-type]
        )

    @property
    def path_length(self) -> int | None:
        return self.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length

    @property
    def not_after(self) -> datetime.datetime:
        return cert_not_after(self.certificate)

    @property
    def chain_pem(self) -> list[str]:
        return [pem_of(c) for c in self.chain]

    @property
    def certificate_pem(self) -> str:
        return pem_of(self.certificate)

    def summary(self) -> dict:
        return {
            "path": self.path,
            "subject": name_to_string(self.certificate.subject),
            "issuer": name_to_string(self.certificate.issuer),
            "serial": serial_hex(self.certificate.serial_number),
            "not_before": iso(cert_not_before(self.certificate)),
            "not_after": iso(self.not_after),
            "path_length": self.path_length,
            "permitted_domains": list(self.name_policy.permitted_domains),
            "permitted_ip_ranges": list(self.name_policy.permitted_ip_ranges),
            "crl_url": self.setting("crl_url"),
            "ca_issuers_url": self.setting("ca_issuers_url"),
            "certificate": self.certificate_pem,
            **describe_key(self.certificate.public_key()),
        }

    # -- ensure (create or keep) -----------------------------------------
    @classmethod
    def ensure(
        cls,
        path: str,
        settings: AuthoritySettings,
        *,
        passphrase: str | None = None,
        parent: str | None = None,
        parent_passphrase: str | None = None,
        check_mode: bool = False,
        now: datetime.datetime | None = None,
    ) -> tuple[bool, dict, dict]:
        """Create the CA, or check that the one on disk is what `settings` describe.

        Returns (changed, before, after) where before/after describe the CA for diff mode.
        """
        now = now or utcnow()
        path = os.path.abspath(path)
        settings.normalise(is_root=parent is None)
        issuer = None
        if parent is not None:
            if os.path.abspath(parent) == path:
                raise PkiError("a CA cannot be its own parent")
            if check_mode and not cls.exists(parent) and not cls.exists(path):
                # A check-mode run of a play that creates the parent first: both would be created.
                return True, {}, cls._planned(settings, parent)
            issuer = cls.open(parent, parent_passphrase)
            issuer.check_may_issue_ca(settings.path_length or 0, settings.permitted_domains)
            # A subordinate CA is never looser than its parent: it inherits the parent's names.
            settings.permitted_domains = settings.permitted_domains or list(issuer.name_policy.permitted_domains)
            settings.permitted_ip_ranges = settings.permitted_ip_ranges or list(issuer.name_policy.permitted_ip_ranges)
        if cls.exists(path):
            ca = cls(path, passphrase)
            before = ca.describe_settings()
            ca.check_identity(settings, issuer)
            changed = ca.update_settings(settings, issuer, check_mode)
            return changed, before, ca.describe_settings() if not check_mode else cls._planned(settings, parent)
        if issuer is not None:
            issuer.key  # noqa: B018  fail early on a wrong parent passphrase, before writing anything
        after = cls._planned(settings, parent)
        if check_mode:
            return True, {}, after
        ensure_private_directory(path)
        with directory_lock(path):
            if cls.exists(path):  # created by a concurrent process while we waited
                return cls.ensure(
                    path, settings, passphrase=passphrase, parent=parent, parent_passphrase=parent_passphrase, now=now
                )
            cls._create(path, settings, passphrase, issuer, now)
        ca = cls(path, passphrase)
        return True, {}, ca.describe_settings()

    # -- a subordinate CA signed elsewhere ------------------------------------
    @classmethod
    def ensure_external(
        cls,
        path: str,
        settings: AuthoritySettings,
        *,
        passphrase: str | None = None,
        certificate: str | None = None,
        chain: list[str] | None = None,
        check_mode: bool = False,
        now: datetime.datetime | None = None,
    ) -> tuple[bool, str, dict, dict]:
        """A subordinate CA whose key is made here and whose CSR another CA signs (on another host).

        Without `certificate`: make the key (once) and return a CSR for it. With `certificate` (and
        `chain`, its issuers up to the root): check that it certifies this key as a CA and install
        it, which makes the directory a working CA. Returns (changed, csr, before, after)."""
        now = now or utcnow()
        path = os.path.abspath(path)
        settings.normalise(is_root=False)
        if settings.permitted_domains or settings.permitted_ip_ranges or settings.extended_key_usage:
            raise PkiError(
                "an externally signed CA takes its name constraints and usages from its certificate:"
                " leave permitted_domains, permitted_ip_ranges and extended_key_usage empty"
            )
        key_path = os.path.join(path, KEY_FILE)
        key_data = read_bytes(key_path)
        changed = key_data is None
        if key_data is None:
            if check_mode:
                return True, "", {}, cls._planned(settings, "external")
            ensure_private_directory(path)
            with directory_lock(path):
                if read_bytes(key_path) is None:
                    key = generate_key(settings.key_type, settings.key_curve, settings.key_size)
                    atomic_write(key_path, encode_key(key, passphrase), KEY_MODE)
            key_data = read_bytes(key_path) or b""
        key = load_key(key_data, passphrase, f"the CA at {path}")
        wanted_key = describe_key(key.public_key())
        if wanted_key["key_type"] != settings.key_type:
            raise PkiError(f"the key at {key_path} is {wanted_key['key_type']}, not {settings.key_type}")
        subject = _ca_subject(settings)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .sign(key, signature_hash(key))
            .public_bytes(serialization.Encoding.PEM)
            .decode()
        )
        before = cls(path, passphrase).describe_settings() if cls.exists(path) else {}
        if certificate is None:
            return changed, csr, before, before
        cert, issuers = _check_external_certificate(certificate, chain or [], key, subject, now)
        cert_data = pem_of(cert).encode()
        chain_data = "".join(pem_of(c) for c in [cert, *issuers]).encode()
        installed = read_bytes(os.path.join(path, CERT_FILE)) == cert_data
        installed = installed and read_bytes(os.path.join(path, CHAIN_FILE)) == chain_data
        if not installed:
            changed = True
            if not check_mode:
                atomic_write(os.path.join(path, CERT_FILE), cert_data, PUBLIC_MODE)
                atomic_write(os.path.join(path, CHAIN_FILE), chain_data, PUBLIC_MODE)
        if check_mode and not installed:
            return True, csr, before, {**cls._planned(settings, "external"), "path_length": _path_length_of(cert)}
        ca = cls(path, passphrase)
        domains, ranges = _constraints_of(cert)
        wanted = {
            "crl_url": settings.crl_url,
            "ca_issuers_url": settings.ca_issuers_url,
            "permitted_domains": domains,
            "permitted_ip_ranges": ranges,
            "parent": "external",
        }
        changed = ca._fix_modes(check_mode) or changed
        changed = ca.store_settings(wanted, check_mode) or changed
        if not check_mode and (not installed or ca.current_crl() is None):
            ca.refresh_crl(force=True, now=now)
        return changed, csr, before, ca.describe_settings()

    @staticmethod
    def _planned(settings: AuthoritySettings, parent: str | None) -> dict:
        planned = asdict(settings)
        planned["parent"] = os.path.abspath(parent) if parent else None
        planned.pop("valid_days", None)
        return planned

    def describe_settings(self) -> dict:
        public_key = self.certificate.public_key()
        org = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        cn = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return {
            "common_name": cn[0].value if cn else None,
            "organization_name": org[0].value if org else None,
            "key_type": describe_key(public_key)["key_type"],
            "key_curve": describe_key(public_key).get("key_curve", "secp256r1"),
            "key_size": describe_key(public_key).get("key_size", 3072),
            "path_length": self.path_length,
            "permitted_domains": list(self.setting("permitted_domains", [])),  # type: ignore[call-overload]
            "permitted_ip_ranges": list(self.setting("permitted_ip_ranges", [])),  # type: ignore[call-overload]
            "crl_url": self.setting("crl_url"),
            "ca_issuers_url": self.setting("ca_issuers_url"),
            "extended_key_usage": sorted(self._own_eku()),
            "parent": self.setting("parent"),
        }

    def _own_eku(self) -> list[str]:
        try:
            usages = self.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return []
        by_oid = {oid: name for name, oid in EXTENDED_KEY_USAGES.items()}
        return [by_oid.get(u.dotted_string, u.dotted_string) for u in usages]

    def check_identity(self, settings: AuthoritySettings, issuer: CertificateAuthority | None) -> None:
        """Refuse to silently turn an existing CA into a different one."""
        current = self.describe_settings()
        wanted = self._planned(settings, issuer.path if issuer else None)
        identity_fields = ["common_name", "organization_name", "key_type", "path_length", "extended_key_usage"]
        if settings.key_type == "ecdsa":
            identity_fields.append("key_curve")
        if settings.key_type == "rsa":
            identity_fields.append("key_size")
        differences = [f for f in identity_fields if current[f] != wanted[f]]
        is_root = self.certificate.issuer == self.certificate.subject
        if (issuer is None) != is_root or (
            issuer is not None and self.certificate.issuer != issuer.certificate.subject
        ):
            differences.append("parent")
        if _constraints_of(self.certificate) != (settings.permitted_domains, settings.permitted_ip_ranges):
            differences.append("permitted_domains/permitted_ip_ranges")
        if differences:
            details = ", ".join(f"{f}: {current.get(f)!r} -> {wanted.get(f)!r}" for f in differences)
            raise PkiError(
                f"the CA at {self.path} exists with a different identity ({details});"
                " it is never replaced in place: choose another path, or remove it on purpose"
            )

    def update_settings(
        self, settings: AuthoritySettings, issuer: CertificateAuthority | None, check_mode: bool
    ) -> bool:
        changed = False
        key_data = read_bytes(self._file(KEY_FILE)) or b""
        if key_is_encrypted(key_data) != bool(self.passphrase):
            # Re-encrypt (or decrypt) on request: load with what the file needs.
            if key_is_encrypted(key_data) and not self.passphrase:
                raise PkiError(f"the key of the CA at {self.path} is encrypted: a passphrase is required")
            changed = True
            if not check_mode:
                plain = load_key(key_data, None, f"the CA at {self.path}")
                atomic_write(self._file(KEY_FILE), encode_key(plain, self.passphrase), KEY_MODE)
        else:
            self.key  # noqa: B018  proves the passphrase is right
        chain = [self.certificate, *(issuer.chain if issuer else [])]
        chain_data = "".join(pem_of(c) for c in chain).encode()
        if read_bytes(self._file(CHAIN_FILE)) != chain_data:
            changed = True
            if not check_mode:
                atomic_write(self._file(CHAIN_FILE), chain_data, PUBLIC_MODE)
                self.chain = chain
        changed = self._fix_modes(check_mode) or changed
        return self.store_settings(_signing_settings(settings, issuer), check_mode) or changed

    def store_settings(self, wanted: dict, check_mode: bool) -> bool:
        """Keep the signing settings in the ledger; returns True when any of them changes."""
        stale = {key: value for key, value in wanted.items() if self.setting(key) != value}
        if stale and not check_mode:
            with self.ledger.write() as cur:
                for key, value in stale.items():
                    Ledger.set_meta(cur, f"setting.{key}", json.dumps(value))
        return bool(stale)

    def _fix_modes(self, check_mode: bool) -> bool:
        changed = False
        for name, mode in ((KEY_FILE, KEY_MODE), (CERT_FILE, PUBLIC_MODE), ("ledger.sqlite3", KEY_MODE)):
            if os.path.exists(self._file(name)) and os.stat(self._file(name)).st_mode & 0o777 != mode:
                changed = True
                if not check_mode:
                    ensure_mode(self._file(name), mode)
        if os.stat(self.path).st_mode & 0o777 != DIRECTORY_MODE:
            changed = True
            if not check_mode:
                ensure_private_directory(self.path)
        return changed

    @classmethod
    def _create(
        cls,
        path: str,
        settings: AuthoritySettings,
        passphrase: str | None,
        issuer: CertificateAuthority | None,
        now: datetime.datetime,
    ) -> None:
        key_path = os.path.join(path, KEY_FILE)
        existing_key = read_bytes(key_path)
        if existing_key is not None:
            # A previous run stopped between the key and the certificate: keep the key.
            private_key = load_key(existing_key, passphrase, f"the CA at {path}")
        else:
            private_key = generate_key(settings.key_type, settings.key_curve, settings.key_size)
            atomic_write(key_path, encode_key(private_key, passphrase), KEY_MODE)
        subject = _ca_subject(settings)
        if issuer is None:
            certificate = _build_certificate(
                subject=subject,
                issuer_subject=subject,
                public_key=private_key.public_key(),
                signing_key=private_key,
                authority_key_id=_authority_key_identifier(private_key.public_key()),
                serial=x509.random_serial_number(),
                not_before=now - BACKDATE,
                not_after=now + datetime.timedelta(days=settings.valid_days or 3650),
                ca=True,
                path_length=settings.path_length,
                eku=(),
                names=[],
                crl_url=None,
                ca_issuers_url=None,
                constraints=_constraints_extension(settings.permitted_domains, settings.permitted_ip_ranges),
            )
            chain = [certificate]
        else:
            certificate = issuer.issue_subordinate(private_key.public_key(), subject, settings, now)
            chain = [certificate, *issuer.chain]
        atomic_write(os.path.join(path, CERT_FILE), pem_of(certificate).encode(), PUBLIC_MODE)
        atomic_write(os.path.join(path, CHAIN_FILE), "".join(pem_of(c) for c in chain).encode(), PUBLIC_MODE)
        ca = cls(path, passphrase)
        ca.store_settings(_signing_settings(settings, issuer), check_mode=False)
        ca.refresh_crl(valid_days=DEFAULT_CRL_DAYS, force=True, now=now)

    # -- issuing ---------------------------------------------------------
    def check_may_issue_ca(self, path_length: int, domains: list[str]) -> None:
        own = self.path_length
        if own is not None and path_length >= own:
            raise PkiError(
                f"the CA at {self.path} has path length {own}: it may only sign subordinate CAs"
                f" with a path length below {own} (asked: {path_length})"
            )
        policy = self.name_policy
        for domain in domains:
            policy.check_dns(domain)

    def issue_subordinate(
        self, public_key: object, subject: x509.Name, settings: AuthoritySettings, now: datetime.datetime
    ) -> x509.Certificate:
        """Sign a subordinate CA created on this host (ca_authority with `parent`) and record it."""
        self.check_may_issue_ca(settings.path_length or 0, settings.permitted_domains)
        not_before = now - BACKDATE
        not_after = min(now + datetime.timedelta(days=settings.valid_days or 1825), self.not_after)
        eku = tuple(settings.extended_key_usage)
        spki = spki_sha256(public_key)
        identity = _identity(spki, subject, [], "intermediate", {"path_length": settings.path_length, "eku": list(eku)})
        with self.ledger.write() as cur:
            batch_id = Ledger.new_batch(cur, iso(now), 1)
            cert = _build_certificate(
                subject=subject,
                issuer_subject=self.certificate.subject,
                public_key=public_key,
                signing_key=self.key,
                authority_key_id=_authority_key_identifier(self.certificate.public_key()),
                serial=self._free_serial(cur),
                not_before=not_before,
                not_after=not_after,
                ca=True,
                path_length=settings.path_length,
                eku=eku,
                names=[],
                crl_url=self.setting("crl_url"),  # type: ignore[arg-type]
                ca_issuers_url=self.setting("ca_issuers_url"),  # type: ignore[arg-type]
                constraints=_constraints_extension(settings.permitted_domains, settings.permitted_ip_ranges),
            )
            entry = Entry(
                serial=serial_hex(cert.serial_number),
                identity=identity,
                name=settings.common_name,
                profile="intermediate",
                subject=name_to_string(subject),
                names=[],
                spki_sha256=spki,
                not_before=iso(not_before),
                not_after=iso(not_after),
                pem=pem_of(cert),
                batch_id=batch_id,
                revoked_at=None,
                revocation_reason=None,
            )
            Ledger.insert(cur, entry)
            Ledger.close_batch(cur, batch_id, 1)
        return cert

    @staticmethod
    def _free_serial(cur, taken: set[int] | None = None) -> int:
        """A random serial (159 bits) that neither the ledger nor this batch holds yet."""
        while True:
            serial = x509.random_serial_number()
            if not Ledger.serial_taken(cur, serial_hex(serial)) and serial not in (taken or ()):
                if taken is not None:
                    taken.add(serial)
                return serial

    def validate(
        self, specs: list[SignSpec], allowed_domains: list[str] | None = None, pool: _WorkerPool | None = None
    ) -> list[ValidatedRequest]:
        """Check every request before anything is signed: one bad request stops the batch.

        With a worker pool, the CSR signatures (the costliest check) are verified by the workers
        while this process checks everything else; the first failing request, in request order,
        is the one reported either way."""
        if len(specs) > MAX_BATCH:
            raise PkiError(f"a batch of {len(specs)} requests refused: at most {MAX_BATCH} per call")
        policy = self.name_policy
        if allowed_domains:
            narrowed = [normalize_domain(d) for d in allowed_domains]
            for domain in narrowed:
                policy.check_dns(domain)
            policy = NamePolicy(tuple(narrowed), policy.permitted_ip_ranges)
        signatures = pool.map_async(_check_signatures, [s.csr for s in specs]) if pool else None
        own = set(self._own_eku())
        validated: list[ValidatedRequest] = []
        failure: tuple[int, PkiError] | None = None
        for index, spec in enumerate(specs):
            try:
                validated.append(self._validate_one(spec, policy, own, signature_valid=True if signatures else None))
            except PkiError as exc:
                failure = (index, exc)
                break
            except (ValueError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
                # what cryptography raises on input the policy did not foresee: still a refusal
                failure = (index, PkiError(f"the request cannot be read: {exc or type(exc).__name__}"))
                break
        if signatures is not None:
            forged = next((i for i, valid in enumerate(signatures.get()) if valid is False), None)
            if forged is not None and (failure is None or forged < failure[0]):
                failure = (forged, PkiError(BAD_SIGNATURE))
        if failure is not None:
            index, exc = failure
            if len(specs) == 1 and not specs[0].name:
                raise exc
            raise PkiError(f"request {specs[index].name or f'#{index + 1}'}: {exc}") from None
        return validated

    def _validate_one(
        self, spec: SignSpec, policy: NamePolicy, own: set[str], signature_valid: bool | None
    ) -> ValidatedRequest:
        """`own`: the extended key usages this CA is restricted to (empty: none)."""
        profile = get_profile(spec.profile)
        request = validate_request(
            spec.csr,
            profile,
            policy,
            valid_days=spec.valid_days,
            name=spec.name,
            path_length=spec.path_length,
            extended_key_usage=spec.extended_key_usage,
            signature_valid=signature_valid,
        )
        if profile.ca:
            self.check_may_issue_ca(request.path_length or 0, [])
        if own:
            wanted = set(request.extended_key_usage)
            if not wanted or not wanted <= own:
                raise PkiError(
                    f"this CA may only issue for {', '.join(sorted(own))}: the {profile.name} profile asks for"
                    f" {', '.join(sorted(wanted)) or 'any usage'}"
                )
        return request

    def sign(
        self,
        specs: list[SignSpec],
        renew_before_days: int = 30,
        check_mode: bool = False,
        now: datetime.datetime | None = None,
        allowed_domains: list[str] | None = None,
    ) -> list[SignResult]:
        """Sign a batch in one transaction. Same key, names and profile: same certificate back,
        until it enters its renewal window."""
        now = now or utcnow()
        if renew_before_days < 0:
            raise PkiError("renew_before_days must be zero or more")
        # The signing context (with the key) exists before the workers are forked, so it
        # reaches them through fork's copy of memory, never through a pipe.
        context = None if check_mode else self._signing_context()
        with _WorkerPool.start(len(specs), context) as pool:
            return self._sign(
                specs,
                renew_before_days=renew_before_days,
                now=now,
                allowed_domains=allowed_domains,
                pool=pool,
                context=context,
            )

    def _signing_context(self) -> _SigningContext:
        policy = self.name_policy
        return _SigningContext(
            key=self.key,
            issuer_subject=self.certificate.subject,
            authority_key_id=_authority_key_identifier(self.certificate.public_key()),
            crl_url=self.setting("crl_url"),  # type: ignore[arg-type]
            ca_issuers_url=self.setting("ca_issuers_url"),  # type: ignore[arg-type]
            subordinate_constraints=_constraints_extension(
                list(policy.permitted_domains), list(policy.permitted_ip_ranges)
            ),
        )

    def _sign(
        self,
        specs: list[SignSpec],
        *,
        renew_before_days: int,
        now: datetime.datetime,
        allowed_domains: list[str] | None,
        pool: _WorkerPool | None,
        context: _SigningContext | None,
    ) -> list[SignResult]:
        """`context` is None in check mode: nothing is signed."""
        requests = self.validate(specs, allowed_domains, pool)
        for request in requests:
            if renew_before_days >= request.valid_for.days:
                raise PkiError(
                    f"request {request.name or request.subject.rfc4514_string()}: renew_before_days"
                    f" ({renew_before_days}) must be shorter than the validity ({request.valid_for.days} days),"
                    " or every run would issue a new certificate"
                )
        renew_at = datetime.timedelta(days=renew_before_days)
        if context is None:
            return [self._plan(r, now, renew_at) for r in requests]
        if not requests:
            return []
        with self.ledger.write() as cur:
            batch_id = Ledger.new_batch(cur, iso(now), len(requests))
            # 1. decide, per request, whether its current certificate is kept or a new one is issued
            plan: list[tuple[ValidatedRequest, str, Entry | int]] = []
            pending: dict[str, int] = {}  # identity -> index in plan of the request issuing it
            serials: set[int] = set()
            jobs = []
            for request in requests:
                identity = self._request_identity(request)
                current = Ledger.current_for_identity(cur, identity)
                if current is not None and parse_iso(current.not_after) - renew_at > now:
                    plan.append((request, identity, current))
                elif identity in pending:  # the same request twice in one batch: one certificate
                    plan.append((request, identity, pending[identity]))
                else:
                    serial = self._free_serial(cur, serials)
                    pending[identity] = len(jobs)
                    plan.append((request, identity, len(jobs)))
                    jobs.append(
                        _SignJob.of(request, serial, now - BACKDATE, min(now + request.valid_for, self.not_after))
                    )
            # 2. sign what must be issued (over all cores for a large batch), inside the transaction
            pems = pool.map(_sign_chunk, jobs) if pool else [_sign_job(context, job) for job in jobs]
            # 3. record and answer in request order
            results: list[SignResult] = []
            inserted: set[int] = set()
            for request, identity, decision in plan:
                if isinstance(decision, Entry):
                    results.append(
                        SignResult(
                            request.name, False, decision.serial, decision.pem, decision.not_after, request.profile.name
                        )
                    )
                    continue
                job = jobs[decision]
                entry = Entry(
                    serial=serial_hex(job.serial),
                    identity=identity,
                    name=request.name,
                    profile=request.profile.name,
                    subject=name_to_string(request.subject),
                    names=request.names,
                    spki_sha256=request.spki_sha256,
                    not_before=iso(job.not_before),
                    not_after=iso(job.not_after),
                    pem=pems[decision],
                    batch_id=batch_id,
                    revoked_at=None,
                    revocation_reason=None,
                )
                first = decision not in inserted
                if first:
                    Ledger.insert(cur, entry)
                    inserted.add(decision)
                results.append(
                    SignResult(request.name, first, entry.serial, entry.pem, entry.not_after, request.profile.name)
                )
            Ledger.close_batch(cur, batch_id, len(jobs))
        return results

    def _request_identity(self, request: ValidatedRequest) -> str:
        extra = (
            {"path_length": request.path_length, "eku": list(request.extended_key_usage)} if request.profile.ca else {}
        )
        return _identity(request.spki_sha256, request.subject, request.names, request.profile.name, extra)

    def _plan(self, request: ValidatedRequest, now: datetime.datetime, renew_at: datetime.timedelta) -> SignResult:
        current = Ledger.current_for_identity(self.ledger.connect().cursor(), self._request_identity(request))
        if current is not None and parse_iso(current.not_after) - renew_at > now:
            return SignResult(request.name, False, current.serial, current.pem, current.not_after, request.profile.name)
        return SignResult(request.name, True, None, None, None, request.profile.name)

    # -- revocation and CRLs ---------------------------------------------
    def find_serial(self, serial: str | None = None, certificate: str | None = None) -> Entry:
        """The ledger entry of a certificate this CA issued, by serial or by the certificate itself."""
        if (serial is None) == (certificate is None):
            raise PkiError("give exactly one of serial or certificate")
        if certificate is not None:
            try:
                cert = x509.load_pem_x509_certificate(certificate.strip().encode() + b"\n")
            except Exception as exc:
                raise PkiError(f"certificate is not a PEM certificate: {exc}") from None
            if cert.issuer != self.certificate.subject:
                raise PkiError(f"the certificate was issued by {name_to_string(cert.issuer)}, not by this CA")
            serial = serial_hex(cert.serial_number)
        wanted = normalize_serial(serial or "")
        entry = self.ledger.get(wanted)
        if entry is None:
            raise PkiError(f"serial {wanted} was not issued by the CA at {self.path}")
        if certificate is not None and entry.pem.strip() != certificate.strip():
            raise PkiError(f"serial {wanted} is in the ledger, but with another certificate: refusing")
        return entry

    def revoke(
        self,
        serial: str | None = None,
        certificate: str | None = None,
        reason: str = "unspecified",
        check_mode: bool = False,
        now: datetime.datetime | None = None,
    ) -> tuple[bool, Entry]:
        now = now or utcnow()
        if reason not in REVOCATION_REASONS:
            raise PkiError(f"unknown revocation reason {reason!r}: use one of {', '.join(REVOCATION_REASONS)}")
        entry = self.find_serial(serial, certificate)
        if entry.revoked_at is not None:
            return False, entry
        if check_mode:
            return True, entry
        self.key  # noqa: B018  the CRL must be rewritten: fail before marking anything
        with self.ledger.write() as cur:
            Ledger.mark_revoked(cur, entry.serial, iso(now), reason)
        self.refresh_crl(force=True, now=now)
        return True, self.ledger.get(entry.serial) or entry

    def _revocation_digest(self) -> str:
        return self._revocation_digest_from(self.ledger.revoked())

    def current_crl(self) -> x509.CertificateRevocationList | None:
        data = read_bytes(self._file(CRL_FILE))
        if data is None:
            return None
        try:
            return x509.load_pem_x509_crl(data)
        except ValueError:
            return None

    def current_crl_pem(self) -> str:
        crl = self.current_crl()
        return "" if crl is None else crl.public_bytes(serialization.Encoding.PEM).decode()

    def crl_needs_refresh(
        self, renew_before_days: int, now: datetime.datetime, crl: x509.CertificateRevocationList | None
    ) -> bool:
        """Whether `crl` (the CA's current CRL, as read from disk) must be rewritten."""
        if crl is None or crl.issuer != self.certificate.subject:
            return True
        if not crl.is_signature_valid(self.certificate.public_key()):
            return True
        next_update = crl_next_update(crl)
        if next_update is None or next_update - datetime.timedelta(days=renew_before_days) <= now:
            return True
        if self.ledger.get_meta("crl.revoked_digest") != self._revocation_digest():
            return True
        der = read_bytes(self._file(CRL_DER_FILE))
        return der != crl.public_bytes(serialization.Encoding.DER)

    def refresh_crl(
        self,
        valid_days: int | None = None,
        renew_before_days: int = 3,
        force: bool = False,
        check_mode: bool = False,
        now: datetime.datetime | None = None,
    ) -> CrlResult:
        now = now or utcnow()
        days = valid_days if valid_days is not None else int(self.ledger.get_meta("crl.valid_days") or DEFAULT_CRL_DAYS)
        if days < 1:
            raise PkiError("the CRL validity must be at least one day")
        if renew_before_days >= days:
            raise PkiError(
                f"renew_before_days ({renew_before_days}) must be shorter than the CRL validity ({days} days),"
                " or every run would rewrite the CRL"
            )
        crl = self.current_crl()
        if not force and crl is not None and not self.crl_needs_refresh(renew_before_days, now, crl):
            return CrlResult(
                False,
                crl.public_bytes(serialization.Encoding.PEM).decode(),
                int(self.ledger.get_meta("crl.number") or 0),
                iso(crl_next_update(crl)),
            )  # type: ignore[arg-type]
        if check_mode:
            return CrlResult(
                True, None, int(self.ledger.get_meta("crl.number") or 0) + 1, iso(now + datetime.timedelta(days=days))
            )
        key = self.key
        with self.ledger.write() as cur:
            number = int(self.ledger.get_meta("crl.number", cur) or 0) + 1
            revoked = self.ledger.revoked(cur)
            next_update = now + datetime.timedelta(days=days)
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(self.certificate.subject)
                .last_update(now - BACKDATE)
                .next_update(next_update)
                .add_extension(x509.CRLNumber(number), critical=False)
                .add_extension(_authority_key_identifier(self.certificate.public_key()), critical=False)
            )
            for entry in revoked:
                revoked_builder = (
                    x509.RevokedCertificateBuilder()
                    .serial_number(int(entry.serial, 16))
                    .revocation_date(parse_iso(entry.revoked_at or iso(now)))
                )
                if entry.revocation_reason and entry.revocation_reason != "unspecified":
                    revoked_builder = revoked_builder.add_extension(
                        x509.CRLReason(x509.ReasonFlags(entry.revocation_reason)), critical=False
                    )
                builder = builder.add_revoked_certificate(revoked_builder.build())
            crl = builder.sign(key, signature_hash(key))
            pem = crl.public_bytes(serialization.Encoding.PEM)
            atomic_write(self._file(CRL_FILE), pem, PUBLIC_MODE)
            atomic_write(self._file(CRL_DER_FILE), crl.public_bytes(serialization.Encoding.DER), PUBLIC_MODE)
            Ledger.set_meta(cur, "crl.number", str(number))
            Ledger.set_meta(cur, "crl.valid_days", str(days))
            Ledger.set_meta(cur, "crl.revoked_digest", self._revocation_digest_from(revoked))
        return CrlResult(True, pem.decode(), number, iso(next_update))

    @staticmethod
    def _revocation_digest_from(revoked: list[Entry]) -> str:
        material = json.dumps([(e.serial, e.revocation_reason, e.revoked_at) for e in revoked])
        return hashlib.sha256(material.encode()).hexdigest()

    # -- reporting -------------------------------------------------------
    def inventory(self, now: datetime.datetime | None = None) -> list[dict]:
        now = now or utcnow()
        listed = []
        for entry in self.ledger.all():
            if entry.revoked_at:
                status = "revoked"
            elif parse_iso(entry.not_after) <= now:
                status = "expired"
            else:
                status = "valid"
            listed.append(
                {
                    "serial": entry.serial,
                    "name": entry.name,
                    "subject": entry.subject,
                    "names": entry.names,
                    "profile": entry.profile,
                    "not_before": entry.not_before,
                    "not_after": entry.not_after,
                    "status": status,
                    "revoked_at": entry.revoked_at,
                    "revocation_reason": entry.revocation_reason,
                }
            )
        return listed


# ----------------------------------------------------- batch work over cores
PARALLEL_MIN_REQUESTS = 64


@dataclass
class _SigningContext:
    key: object
    issuer_subject: x509.Name
    authority_key_id: x509.AuthorityKeyIdentifier
    crl_url: str | None
    ca_issuers_url: str | None
    subordinate_constraints: x509.NameConstraints | None


@dataclass
class _SignJob:
    """What a worker needs to build one certificate: plain, picklable values only."""

    csr: bytes
    serial: int
    not_before: datetime.datetime
    not_after: datetime.datetime
    ca: bool
    path_length: int | None
    eku: tuple[str, ...]
    dns_names: list[str]
    ip_addresses: list[str]
    emails: list[str]

    @classmethod
    def of(
        cls, request: ValidatedRequest, serial: int, not_before: datetime.datetime, not_after: datetime.datetime
    ) -> _SignJob:
        return cls(
            request.csr.public_bytes(serialization.Encoding.DER),
            serial,
            not_before,
            not_after,
            request.profile.ca,
            request.path_length,
            request.extended_key_usage,
            request.dns_names,
            request.ip_addresses,
            request.emails,
        )


# Set in the parent before the worker processes are forked, so that the CA key
# reaches them through fork's copy of memory and is never pickled or piped.
_FORKED_CONTEXT: _SigningContext | None = None


def _worker_count(items: int) -> int:
    if items < PARALLEL_MIN_REQUESTS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 8))


class _WorkerPool:
    """Forked worker processes for one batch; `map` runs a chunk function over a list."""

    def __init__(self, pool, workers: int) -> None:
        self._pool = pool
        self._workers = workers

    @classmethod
    @contextmanager
    def start(cls, items: int, context: _SigningContext | None) -> Iterator[_WorkerPool | None]:
        global _FORKED_CONTEXT  # noqa: PLW0603
        workers = _worker_count(items)
        if workers <= 1:
            yield None
            return
        _FORKED_CONTEXT = context
        try:
            try:
                pool = multiprocessing.get_context("fork").Pool(workers)
            except OSError:  # no /dev/shm or no fork in this sandbox: stay in this process
                yield None
                return
            with pool:
                yield cls(pool, workers)
        finally:
            _FORKED_CONTEXT = None

    def _chunks(self, items: list) -> list[list]:
        size = max(1, -(-len(items) // (self._workers * 4)))
        return [items[i : i + size] for i in range(0, len(items), size)]

    def map_async(self, function, items: list) -> _Pending:
        return _Pending(self._pool.map_async(function, self._chunks(items)))

    def map(self, function, items: list) -> list:
        return self.map_async(function, items).get()


class _Pending:
    def __init__(self, result) -> None:
        self._result = result

    def get(self) -> list:
        return [value for chunk in self._result.get() for value in chunk]


def _check_signatures(csrs: list[str]) -> list[bool | None]:
    return [csr_signature_valid(c) for c in csrs]


def _sign_chunk(jobs: list[_SignJob]) -> list[str]:
    context = _FORKED_CONTEXT
    if context is None:
        raise RuntimeError("a signing worker started without the CA's signing context")
    return [_sign_job(context, job) for job in jobs]


def _sign_job(context: _SigningContext, job: _SignJob) -> str:
    csr = x509.load_der_x509_csr(job.csr)
    cert = _build_certificate(
        subject=csr.subject,
        issuer_subject=context.issuer_subject,
        public_key=csr.public_key(),
        signing_key=context.key,
        authority_key_id=context.authority_key_id,
        serial=job.serial,
        not_before=job.not_before,
        not_after=job.not_after,
        ca=job.ca,
        path_length=job.path_length,
        eku=job.eku,
        names=general_names(job.dns_names, job.ip_addresses, job.emails),
        crl_url=context.crl_url,
        ca_issuers_url=context.ca_issuers_url,
        constraints=context.subordinate_constraints if job.ca else None,
    )
    return pem_of(cert)


def _signing_settings(settings: AuthoritySettings, issuer: CertificateAuthority | None) -> dict:
    """The settings a CA created on this host keeps in its ledger."""
    return {
        "crl_url": settings.crl_url,
        "ca_issuers_url": settings.ca_issuers_url,
        "permitted_domains": settings.permitted_domains,
        "permitted_ip_ranges": settings.permitted_ip_ranges,
        "parent": issuer.path if issuer else None,
    }


def _path_length_of(cert: x509.Certificate) -> int | None:
    return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` issued `cert` (name and signature). Works on cryptography 38."""
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    algorithm = cert.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _check_external_certificate(
    certificate: str, chain: list[str], key: object, subject: x509.Name, now: datetime.datetime
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """Refuse a certificate that does not make this key a CA under a verifiable chain."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.strip().encode() + b"\n")
        issuers = [x509.load_pem_x509_certificate(c.strip().encode() + b"\n") for c in chain]
    except ValueError as exc:
        raise PkiError(f"certificate or chain is not PEM: {exc}") from None
    if spki_sha256(cert.public_key()) != spki_sha256(key.public_key()):  # type: ignore[attr-defined]
        raise PkiError("the certificate is for another key than this CA's key")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise PkiError("the certificate is not a CA certificate (basicConstraints CA:TRUE missing)")
    if cert.subject != subject:
        raise PkiError(f"the certificate's subject {name_to_string(cert.subject)} is not {name_to_string(subject)}")
    if not cert_not_before(cert) <= now < cert_not_after(cert):
        raise PkiError(
            f"the certificate is not valid now (valid {iso(cert_not_before(cert))} to {iso(cert_not_after(cert))})"
        )
    if not issuers:
        raise PkiError("chain is required: the issuers of the certificate up to the root")
    for child, parent in zip([cert, *issuers], issuers, strict=False):
        if not signed_by(child, parent):
            raise PkiError(
                f"{name_to_string(child.subject)} is not signed by {name_to_string(parent.subject)} in the chain"
            )
    if not signed_by(issuers[-1], issuers[-1]):
        raise PkiError("the chain does not end with a self-signed root")
    return cert, issuers


def _constraints_of(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return [], []
    subtrees = constraints.permitted_subtrees or []
    domains = sorted(n.value for n in subtrees if isinstance(n, x509.DNSName))
    ranges = sorted(str(n.value) for n in subtrees if isinstance(n, x509.IPAddress))
    return domains, ranges


def _authority_key_identifier(issuer_public_key: object) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
        x509.SubjectKeyIdentifier.from_public_key(issuer_public_key)  # type: ignore[arg-type]
    )


def _build_certificate(
    *,
    subject: x509.Name,
    issuer_subject: x509.Name,
    public_key: object,
    signing_key: object,
    authority_key_id: x509.AuthorityKeyIdentifier,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    ca: bool,
    path_length: int | None,
    eku: tuple[str, ...],
    names: list[x509.GeneralName],
    crl_url: str | None,
    ca_issuers_url: str | None,
    constraints: x509.NameConstraints | None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(_key_usage(ca, public_key), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)  # type: ignore[arg-type]
    )
    builder = builder.add_extension(authority_key_id, critical=False)
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(EXTENDED_KEY_USAGES[u]) for u in eku]), critical=False
        )
    if names:
        # RFC 5280 4.2.1.6: the extension is critical when the subject is empty.
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=len(subject) == 0)
    if constraints is not None:
        builder = builder.add_extension(constraints, critical=True)
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            ),
            critical=False,
        )
    if ca_issuers_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers_url)
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(signing_key, signature_hash(signing_key))  # type: ignore[arg-type]
