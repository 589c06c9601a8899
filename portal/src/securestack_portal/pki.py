"""The users CA, through the collection's CA engine (package securestack_pki, never a copy here).

The engine's ledger in the CA directory is the source of truth for what was
issued: the portal keeps requests and links them to serials, nothing more.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from securestack_pki._pki_ca import (
    REVOCATION_REASONS,
    CertificateAuthority,
    SignSpec,
    normalize_serial,
    parse_iso,
    utcnow,
)
from securestack_pki._pki_ledger import Entry
from securestack_pki._pki_policy import (
    PROFILES,
    NamePolicy,
    PkiError,
    ValidatedRequest,
    normalize_domain,
    validate_ip_range,
    validate_request,
)

__all__ = [
    "EXPIRING_DAYS",
    "KEY_CHOICES",
    "REVOCATION_REASONS",
    "CsrFacts",
    "Issued",
    "PkiError",
    "UsersCA",
    "build_csr",
    "describe_csr",
    "generate_key",
    "normalize_domain",
    "normalize_serial",
    "pkcs12_bundle",
    "validate_ip_range",
]

PROFILE = "client"
EXPIRING_DAYS = 30
RENEW_BEFORE_DAYS = 30
KEY_CHOICES = {
    "ecdsa-p256": "ECDSA P-256",
    "ecdsa-p384": "ECDSA P-384",
    "rsa-3072": "RSA 3072",
}
PKCS12_KDF_ROUNDS = 600_000


@dataclass(frozen=True)
class Issued:
    """One certificate of the users CA's ledger, as the portal shows it."""

    serial: str
    subject: str
    names: list[str]
    not_before: datetime.datetime
    not_after: datetime.datetime
    revoked_at: datetime.datetime | None
    revocation_reason: str | None
    pem: str

    @classmethod
    def of(cls, entry: Entry) -> Issued:
        return cls(
            serial=entry.serial,
            subject=entry.subject,
            names=list(entry.names),
            not_before=parse_iso(entry.not_before),
            not_after=parse_iso(entry.not_after),
            revoked_at=parse_iso(entry.revoked_at) if entry.revoked_at else None,
            revocation_reason=entry.revocation_reason,
            pem=entry.pem,
        )

    def status(self, now: datetime.datetime | None = None) -> str:
        """valid, expiring (within EXPIRING_DAYS), expired or revoked."""
        now = now or utcnow()
        if self.revoked_at is not None:
            return "revoked"
        if self.not_after <= now:
            return "expired"
        if self.not_after - now <= datetime.timedelta(days=EXPIRING_DAYS):
            return "expiring"
        return "valid"

    def days_left(self, now: datetime.datetime | None = None) -> int:
        return (self.not_after - (now or utcnow())).days

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem.encode())

    def fingerprints(self) -> set[str]:
        """SHA-1 (nginx's $ssl_client_fingerprint) and SHA-256 of the DER certificate, lower-case hex."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {hashlib.sha1(der).hexdigest(), hashlib.sha256(der).hexdigest()}  # noqa: S324  (a name, not a MAC)


@dataclass(frozen=True)
class CsrFacts:
    """What an approver must see of a request: every name and the key (from the engine's parse)."""

    subject: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    emails: tuple[str, ...]
    key_type: str
    key_size: int
    spki_sha256: str
    pem: str

    @classmethod
    def of(cls, validated: ValidatedRequest) -> CsrFacts:
        key_type, key_size = describe_key(validated.public_key)
        return cls(
            subject=validated.subject.rfc4514_string(),
            dns_names=tuple(validated.dns_names),
            ip_addresses=tuple(validated.ip_addresses),
            emails=tuple(validated.emails),
            key_type=key_type,
            key_size=key_size,
            spki_sha256=validated.spki_sha256,
            pem=validated.csr.public_bytes(serialization.Encoding.PEM).decode(),
        )


def describe_key(public_key: object) -> tuple[str, int]:
    """("ECDSA P-256", 256), ("RSA", 3072), ("Ed25519", 256)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384"}.get(public_key.curve.name, public_key.curve.name)
        return f"ECDSA {curve}", public_key.curve.key_size
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    return type(public_key).__name__, 0


@functools.lru_cache(maxsize=1024)
def describe_csr(pem: str) -> CsrFacts:
    """A stored request's CSR, parsed by the engine (client profile, no name restriction: display only)."""
    return CsrFacts.of(validate_request(pem, PROFILES[PROFILE], NamePolicy()))


class UsersCA:
    """The users CA directory, opened per use (the ledger is shared with other processes)."""

    def __init__(self, path: str, passphrase: str | None = None, valid_days: int = 365) -> None:
        self.path = path
        self.passphrase = passphrase
        self.valid_days = valid_days

    def _open(self) -> CertificateAuthority:
        return CertificateAuthority.open(self.path, self.passphrase)

    def _spec(self, csr: str, name: str = "") -> SignSpec:
        return SignSpec(csr=csr, profile=PROFILE, name=name, valid_days=self.valid_days)

    @property
    def subject(self) -> x509.Name:
        return self._open().certificate.subject

    def check(self, csr: str) -> ValidatedRequest:
        """Validate a CSR exactly as signing will, writing nothing. Raises PkiError with the engine's message."""
        ca = self._open()
        try:
            return ca.validate([self._spec(csr)])[0]
        finally:
            ca.ledger.close()

    def sign(self, csr: str, name: str) -> Issued:
        ca = self._open()
        try:
            # The engine hands back the same certificate for the same key and subject until it is
            # this close to expiry; never longer than the validity itself.
            renew_before = min(RENEW_BEFORE_DAYS, self.valid_days - 1)
            result = ca.sign([self._spec(csr, name)], renew_before_days=renew_before)[0]
            return self._issued(ca, result.serial or "")
        finally:
            ca.ledger.close()

    def _issued(self, ca: CertificateAuthority, serial: str) -> Issued:
        entry = ca.ledger.get(serial)
        if entry is None:
            raise PkiError(f"serial {serial} is not in the ledger of the users CA")
        return Issued.of(entry)

    def get(self, serial: str) -> Issued | None:
        try:
            wanted = normalize_serial(serial)
        except PkiError:
            return None
        ca = self._open()
        try:
            entry = ca.ledger.get(wanted)
            return None if entry is None else Issued.of(entry)
        finally:
            ca.ledger.close()

    def revoke(self, serial: str, reason: str) -> Issued:
        """Mark revoked in the ledger; the engine rewrites crl.pem and crl.der at once."""
        ca = self._open()
        try:
            _changed, entry = ca.revoke(serial=serial, reason=reason)
            return Issued.of(entry)
        finally:
            ca.ledger.close()

    def refresh_crl(self, force: bool = False) -> tuple[bool, int, str | None]:
        ca = self._open()
        try:
            result = ca.refresh_crl(force=force)
            return result.changed, result.crl_number, result.next_update
        finally:
            ca.ledger.close()

    def all(self) -> list[Issued]:
        ca = self._open()
        try:
            return [Issued.of(e) for e in ca.ledger.all()]
        finally:
            ca.ledger.close()

    def chain_pem(self) -> str:
        """The users CA and its issuers up to the root."""
        ca = self._open()
        try:
            return "".join(ca.chain_pem)
        finally:
            ca.ledger.close()

    def chain(self) -> list[x509.Certificate]:
        ca = self._open()
        try:
            return list(ca.chain)
        finally:
            ca.ledger.close()

    def crl(self, encoding: str) -> bytes:
        """The CRL as the engine last wrote it (crl.der or crl.pem)."""
        ca = self._open()
        try:
            crl = ca.current_crl()
        finally:
            ca.ledger.close()
        if crl is None:
            raise PkiError(f"the users CA at {self.path} has no CRL yet")
        kind = serialization.Encoding.DER if encoding == "der" else serialization.Encoding.PEM
        return crl.public_bytes(kind)


# ------------------------------------------------------------ key generation
def generate_key(choice: str) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    """A new key in memory only: it is never written anywhere by the portal."""
    if choice == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if choice == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if choice == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise PkiError(f"unknown key type {choice!r}: use one of {', '.join(KEY_CHOICES)}")


def build_csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, subject: x509.Name, email: str = "") -> str:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if email:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def subject_name(common_name: str, organization: str = "") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def pkcs12_bundle(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    passphrase: str,
    friendly_name: str,
    certificate: x509.Certificate | None = None,
    chain: list[x509.Certificate] | None = None,
) -> bytes:
    """PKCS#12 under the user's passphrase: AES-256-CBC, PBKDF2, HMAC-SHA256 (what current browsers import)."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase.encode())
    )
    return pkcs12.serialize_key_and_certificates(friendly_name.encode(), key, certificate, chain or None, encryption)
