# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection
# (its modules, its roles and its portal). Breaking changes can occur any time.
#
# Issuance policy of the securestack.pki CA engine: profiles, accepted keys,
# accepted names, and the validation of certificate signing requests. Pure
# Python on `cryptography` (38 and newer), no Ansible imports.

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import traceback
from dataclasses import dataclass, field

CRYPTOGRAPHY_IMPORT_ERROR: str | None = None
try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
    from cryptography.x509.oid import NameOID
except ImportError:
    # Nothing of the engine runs without it: the modules (_pki_module.py) and
    # the command line (_pki_cli.py) check this and say what to install.
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

MAX_PEM_BYTES = 16 * 1024
MAX_NAMES = 100
MAX_BATCH = 10000
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
ACCEPTED_CURVES = ("secp256r1", "secp384r1")

# Extended key usages by their RFC 5280 names (OIDs as dotted strings, so this
# module imports without cryptography).
EXTENDED_KEY_USAGES = {
    "serverAuth": "1.3.6.1.5.5.7.3.1",
    "clientAuth": "1.3.6.1.5.5.7.3.2",
    "codeSigning": "1.3.6.1.5.5.7.3.3",
    "emailProtection": "1.3.6.1.5.5.7.3.4",
    "OCSPSigning": "1.3.6.1.5.5.7.3.9",
}

# Subject attributes a CSR may carry into a certificate. Anything else is
# refused rather than dropped silently, so the requester knows what they get.
SUBJECT_ATTRIBUTES = {
    "2.5.4.3": "CN",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.6": "C",
    "2.5.4.8": "ST",
    "2.5.4.7": "L",
    "1.2.840.113549.1.9.1": "emailAddress",
    "2.5.4.5": "serialNumber",
}

BAD_SIGNATURE = "the CSR's signature does not verify: it was altered or not signed by its key"

# Every pattern that validates input is applied with fullmatch (never match with `$`,
# which also matches before a trailing newline).
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# RFC 5321 dot-atom local part: printable ASCII atext, dots only between atoms.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LOCAL_PART = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
MAX_EMAIL_LOCAL_PART = 64
MAX_EMAIL_LENGTH = 254
# The only input accepted as PEM: exactly one CSR, white space around it allowed.
_PEM_CSR = re.compile(
    rb"\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n"
    rb"[A-Za-z0-9+/=\r\n]+"
    rb"-----END (?(1)NEW )CERTIFICATE REQUEST-----\s*"
)

# Upper bounds of the accepted subject attributes in characters (RFC 5280 Appendix A,
# ub-common-name and friends); C is exactly two letters (ISO 3166, PrintableString).
SUBJECT_UPPER_BOUNDS = {
    "CN": 64,
    "O": 64,
    "OU": 64,
    "L": 128,
    "ST": 128,
    "serialNumber": 64,
    "emailAddress": 255,
    "C": 2,
}
_COUNTRY = re.compile(r"[A-Za-z]{2}")
# X.680 PrintableString, the type of serialNumber (RFC 5280 Appendix A).
_PRINTABLE_STRING = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]+")


class PkiError(Exception):
    """An input or state the engine refuses. The message is meant for the user."""


@dataclass(frozen=True)
class Profile:
    name: str
    default_days: int
    max_days: int
    ca: bool
    key_usage_ca: bool
    extended_key_usage: tuple[str, ...]
    allow_ed25519: bool
    require_names: bool
    allowed_name_types: tuple[str, ...]


PROFILES: dict[str, Profile] = {
    "server": Profile(
        name="server",
        default_days=90,
        max_days=366,
        ca=False,
        key_usage_ca=False,
        extended_key_usage=("serverAuth",),
        allow_ed25519=False,
        require_names=True,
        allowed_name_types=("dns", "ip"),
    ),
    "client": Profile(
        name="client",
        default_days=365,
        max_days=825,
        ca=False,
        key_usage_ca=False,
        extended_key_usage=("clientAuth",),
        allow_ed25519=True,
        require_names=False,
        allowed_name_types=("dns", "ip", "email"),
    ),
    "intermediate": Profile(
        name="intermediate",
        default_days=1825,
        max_days=3650,
        ca=True,
        key_usage_ca=True,
        extended_key_usage=(),
        allow_ed25519=True,
        require_names=False,
        allowed_name_types=(),
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise PkiError(f"unknown profile {name!r}: use one of {', '.join(sorted(PROFILES))}") from None


@dataclass(frozen=True)
class NamePolicy:
    """What names a CA may put into certificates."""

    permitted_domains: tuple[str, ...] = ()
    permitted_ip_ranges: tuple[str, ...] = ()

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(r, strict=False) for r in self.permitted_ip_ranges]

    def check_dns(self, name: str) -> None:
        if self.permitted_domains and not any(name == d or name.endswith("." + d) for d in self.permitted_domains):
            raise PkiError(f"name {name!r} is outside the permitted domains ({', '.join(self.permitted_domains)})")

    def check_ip(self, address: str) -> None:
        if not self.permitted_ip_ranges:
            return
        ip = ipaddress.ip_address(address)
        if not any(ip.version == n.version and ip in n for n in self.networks()):
            raise PkiError(
                f"IP address {address} is outside the permitted ranges ({', '.join(self.permitted_ip_ranges)})"
            )

    def check_email(self, address: str) -> None:
        self.check_dns(address.rsplit("@", 1)[1])


def normalize_domain(domain: str) -> str:
    """Validate a permitted-domain entry and return it in canonical form."""
    value = domain.strip().lower().rstrip(".")
    if value.startswith("."):
        value = value[1:]
    validate_dns_name(value)
    return value


def validate_dns_name(name: str) -> str:
    if not name or len(name) > 253:
        raise PkiError(f"DNS name {name!r} is empty or longer than 253 characters")
    if _is_ip_literal(name):
        raise PkiError(f"DNS name {name!r} is an IP address: put it into the CSR as an IP address name instead")
    if name.startswith("*."):
        raise PkiError(f"wildcard name {name!r} refused: this CA issues no wildcard certificates")
    if name != name.lower():
        raise PkiError(f"DNS name {name!r} must be lower case")
    labels = name.split(".")
    for label in labels:
        if not _DNS_LABEL.fullmatch(label):
            raise PkiError(f"DNS name {name!r} is not a valid host name (label {label!r})")
    return name


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def validate_email(address: str) -> str:
    """An e-mail address as this CA certifies it: `local@domain`, the local part an RFC 5321
    dot-atom (printable ASCII letters, digits and !#$%&'*+/=?^_`{|}~- , dots only between
    them) of at most 64 characters, the domain a valid host name. Returns the domain."""
    local, at, domain = address.rpartition("@")
    rule = (
        "the local part must be an RFC 5321 dot-atom (printable ASCII letters, digits and"
        f" !#$%&'*+/=?^_`{{|}}~- , dots only between them) of at most {MAX_EMAIL_LOCAL_PART} characters"
    )
    if not at or len(address) > MAX_EMAIL_LENGTH or "@" in local:
        raise PkiError(
            f"e-mail address {address!r} is not a valid e-mail address: one @, at most {MAX_EMAIL_LENGTH} characters"
        )
    if len(local) > MAX_EMAIL_LOCAL_PART or not _EMAIL_LOCAL_PART.fullmatch(local):
        raise PkiError(f"e-mail address {address!r} refused: {rule}")
    try:
        return validate_dns_name(domain.lower())
    except PkiError as exc:
        raise PkiError(f"e-mail address {address!r} refused: its domain is not valid ({exc})") from None


def validate_ip_range(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError as exc:
        raise PkiError(f"{value!r} is not an IP network in CIDR form: {exc}") from None


def check_public_key(public_key: object, profile: Profile) -> str:
    """Refuse weak or unsupported keys. Returns a short key description."""
    if isinstance(public_key, rsa.RSAPublicKey):
        bits = public_key.key_size
        if bits < MIN_RSA_BITS:
            raise PkiError(f"RSA key of {bits} bits refused: at least {MIN_RSA_BITS} bits are required")
        if bits > MAX_RSA_BITS:
            raise PkiError(f"RSA key of {bits} bits refused: at most {MAX_RSA_BITS} bits are accepted")
        if public_key.public_numbers().e != 65537:
            raise PkiError("RSA key refused: the public exponent must be 65537")
        return f"rsa{bits}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve.name
        if curve not in ACCEPTED_CURVES:
            raise PkiError(
                f"EC key on curve {curve} refused: only P-256 (secp256r1) and P-384 (secp384r1) are accepted"
            )
        return curve
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        if not profile.allow_ed25519:
            raise PkiError(f"Ed25519 key refused for the {profile.name} profile (browsers do not accept it)")
        return "ed25519"
    if isinstance(public_key, dsa.DSAPublicKey):
        raise PkiError("DSA key refused: use RSA (2048 bits or more) or ECDSA P-256/P-384")
    if isinstance(public_key, ed448.Ed448PublicKey):
        raise PkiError("Ed448 key refused: use RSA (2048 bits or more) or ECDSA P-256/P-384")
    raise PkiError(f"unsupported key type {type(public_key).__name__}")


@dataclass
class ValidatedRequest:
    """A CSR that passed policy: only what the CA will put into the certificate."""

    name: str
    profile: Profile
    csr: x509.CertificateSigningRequest
    subject: x509.Name
    dns_names: list[str] = field(default_factory=list)
    ip_addresses: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    valid_for: datetime.timedelta = datetime.timedelta(days=90)
    public_key: object = None
    spki_sha256: str = ""
    path_length: int | None = None
    extended_key_usage: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return self.dns_names + self.ip_addresses + self.emails


def _parse_csr(data: str | bytes) -> x509.CertificateSigningRequest:
    """Exactly one PEM CSR (surrounding white space ignored) or DER; raises ValueError
    for PEM input that is not exactly one CSR, else what cryptography raises."""
    raw = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN" not in raw:
        return x509.load_der_x509_csr(raw)
    blocks = raw.count(b"-----BEGIN")
    if blocks != 1:
        raise ValueError(f"the input holds {blocks} PEM blocks; exactly one CSR is accepted")
    if not _PEM_CSR.fullmatch(raw):
        raise ValueError(
            "the input must be exactly one PEM block of type CERTIFICATE REQUEST,"
            " with nothing but white space around it"
        )
    return x509.load_pem_x509_csr(raw.strip() + b"\n")


def csr_signature_valid(data: str | bytes) -> bool | None:
    """Whether the CSR's signature verifies; None when it does not even parse."""
    try:
        csr = _parse_csr(data)
    except Exception:
        return None
    return csr.is_signature_valid


def load_csr(data: str | bytes, signature_valid: bool | None = None) -> x509.CertificateSigningRequest:
    """Parse a CSR (PEM or DER) and check its signature (unless the caller already did)."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_PEM_BYTES:
        raise PkiError(f"CSR of {len(raw)} bytes refused: the limit is {MAX_PEM_BYTES} bytes")
    try:
        csr = _parse_csr(raw)
    except Exception as exc:  # cryptography raises ValueError or its own errors
        raise PkiError(f"input is not a certificate signing request (PEM or DER): {exc}") from None
    if not (csr.is_signature_valid if signature_valid is None else signature_valid):
        raise PkiError(BAD_SIGNATURE)
    return csr


def _subject_of(csr: x509.CertificateSigningRequest) -> x509.Name:
    for attribute in csr.subject:
        short_name = SUBJECT_ATTRIBUTES.get(attribute.oid.dotted_string)
        if short_name is None:
            raise PkiError(
                f"subject attribute {attribute.oid.dotted_string} ({attribute.oid._name}) is not accepted;"
                f" allowed: {', '.join(SUBJECT_ATTRIBUTES.values())}"
            )
        if not isinstance(attribute.value, str) or not attribute.value.strip():
            raise PkiError(f"subject attribute {short_name} is empty")
        if any(ord(c) < 32 or ord(c) == 127 for c in attribute.value):
            raise PkiError(f"subject attribute {short_name} holds control characters")
        _check_attribute_bounds(short_name, attribute.value)
    return csr.subject


def _check_attribute_bounds(short_name: str, value: str) -> None:
    limit = SUBJECT_UPPER_BOUNDS[short_name]
    if short_name == "C":
        if not _COUNTRY.fullmatch(value):
            raise PkiError(f"subject attribute C {value!r} refused: it must be exactly 2 letters (ISO 3166 code)")
        return
    if len(value) > limit:
        raise PkiError(
            f"subject attribute {short_name} of {len(value)} characters refused: the limit is {limit}"
            " (RFC 5280 upper bound)"
        )
    if short_name == "serialNumber" and not _PRINTABLE_STRING.fullmatch(value):
        raise PkiError(
            f"subject attribute serialNumber {value!r} refused: only PrintableString characters"
            " (letters, digits, space and '()+,-./:=?) are allowed"
        )
    if short_name == "emailAddress" and not value.isascii():
        raise PkiError(f"subject attribute emailAddress {value!r} refused: only ASCII (IA5String) is allowed")


def _read_csr(csr: x509.CertificateSigningRequest) -> tuple[object, x509.Extensions]:
    """The CSR's public key and extensions; whatever cryptography raises reading them is a PkiError."""
    try:
        extensions = csr.extensions
    except x509.DuplicateExtension as exc:
        raise PkiError(f"the CSR carries the extension {exc.oid.dotted_string} more than once") from None
    except Exception as exc:  # ValueError, UnsupportedGeneralNameType ... of cryptography's parser
        raise PkiError(f"the CSR's extensions cannot be read: {exc or type(exc).__name__}") from None
    try:
        public_key = csr.public_key()
    except Exception as exc:  # UnsupportedAlgorithm, ValueError
        raise PkiError(f"the CSR's public key cannot be read: {exc or type(exc).__name__}") from None
    return public_key, extensions


def _requested_names(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(ext.value)


def _refuse_ca_request(csr: x509.CertificateSigningRequest, profile: Profile) -> None:
    try:
        constraints = csr.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    if constraints.ca and not profile.ca:
        raise PkiError(f"the CSR asks for CA:TRUE, which the {profile.name} profile never grants")


def validate_request(
    csr_data: str | bytes,
    profile: Profile,
    policy: NamePolicy,
    *,
    valid_days: int | None = None,
    name: str = "",
    path_length: int | None = None,
    extended_key_usage: list[str] | tuple[str, ...] = (),
    signature_valid: bool | None = None,
) -> ValidatedRequest:
    """Parse and check one request against the profile and the CA's names."""
    csr = load_csr(csr_data, signature_valid)
    public_key, _extensions = _read_csr(csr)
    check_public_key(public_key, profile)
    _refuse_ca_request(csr, profile)
    try:
        subject = _subject_of(csr)
    except ValueError as exc:  # cryptography cannot decode an attribute
        raise PkiError(f"the CSR's subject cannot be read: {exc}") from None

    days = profile.default_days if valid_days is None else valid_days
    if days < 1:
        raise PkiError(f"validity of {days} days refused: it must be at least one day")
    if days > profile.max_days:
        raise PkiError(f"validity of {days} days refused: the {profile.name} profile allows at most {profile.max_days}")

    request = ValidatedRequest(
        name=name,
        profile=profile,
        csr=csr,
        subject=subject,
        valid_for=datetime.timedelta(days=days),
        public_key=public_key,
        spki_sha256=spki_sha256(public_key),
    )
    general_names = _requested_names(csr)
    if len(general_names) > MAX_NAMES:
        raise PkiError(f"{len(general_names)} names refused: at most {MAX_NAMES} names per certificate")
    for general_name in general_names:
        _accept_name(request, general_name, policy)

    _check_names_and_subject(request)
    _apply_usage(request, path_length, extended_key_usage)
    return request


def _check_names_and_subject(request: ValidatedRequest) -> None:
    profile, subject = request.profile, request.subject
    if profile.require_names and not (request.dns_names or request.ip_addresses):
        raise PkiError(f"a {profile.name} certificate needs at least one DNS name or IP address in the CSR")
    common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if profile.name == "server":
        for cn in common_names:
            if cn.value not in request.dns_names + request.ip_addresses:
                raise PkiError(f"the common name {cn.value!r} must also be one of the CSR's subject alternative names")
    elif not common_names:
        raise PkiError(f"a {profile.name} certificate needs a common name (CN) in the CSR's subject")
    # RFC 5280 4.1.2.6: an address in the subject's (deprecated) emailAddress must also be
    # an rfc822Name of the subject alternative names, and it is held to the same rules.
    for attribute in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
        address = str(attribute.value)
        validate_email(address)
        if address not in request.emails:
            raise PkiError(
                f"the subject's emailAddress {address!r} must also be one of the CSR's e-mail subject"
                " alternative names (RFC 5280 4.1.2.6)"
            )


def _apply_usage(
    request: ValidatedRequest, path_length: int | None, extended_key_usage: list[str] | tuple[str, ...]
) -> None:
    if not request.profile.ca:
        if path_length is not None or extended_key_usage:
            raise PkiError(
                f"path_length and extended_key_usage apply to the intermediate profile, not {request.profile.name}"
            )
        request.extended_key_usage = request.profile.extended_key_usage
        return
    request.path_length = 0 if path_length is None else path_length
    if request.path_length < 0:
        raise PkiError("path_length must be zero or more")
    unknown = [u for u in extended_key_usage if u not in EXTENDED_KEY_USAGES]
    if unknown:
        raise PkiError(f"unknown extended key usage {', '.join(unknown)}: use {', '.join(EXTENDED_KEY_USAGES)}")
    request.extended_key_usage = tuple(extended_key_usage)


def _accept_name(request: ValidatedRequest, general_name: x509.GeneralName, policy: NamePolicy) -> None:
    kinds = request.profile.allowed_name_types
    if isinstance(general_name, x509.DNSName) and "dns" in kinds:
        value = validate_dns_name(general_name.value)
        policy.check_dns(value)
        if value not in request.dns_names:
            request.dns_names.append(value)
    elif isinstance(general_name, x509.IPAddress) and "ip" in kinds:
        if isinstance(general_name.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            raise PkiError("IP networks are not accepted as subject alternative names")
        value = str(general_name.value)
        policy.check_ip(value)
        if value not in request.ip_addresses:
            request.ip_addresses.append(value)
    elif isinstance(general_name, x509.RFC822Name) and "email" in kinds:
        validate_email(general_name.value)
        policy.check_email(general_name.value.lower())
        if general_name.value not in request.emails:
            request.emails.append(general_name.value)
    else:
        raise PkiError(
            f"subject alternative name {general_name!r} is not accepted for the {request.profile.name} profile"
        )


def general_names(dns_names: list[str], ip_addresses: list[str], emails: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(n)) for n in ip_addresses]
    names += [x509.RFC822Name(n) for n in emails]
    return names


def spki_sha256(public_key: object) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo: the key's identity in the ledger."""
    der = public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def name_to_string(name: x509.Name) -> str:
    """RFC 4514 form, as OpenSSL and most tools print it."""
    return name.rfc4514_string()
