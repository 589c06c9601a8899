"""Who is asking: the proxy's TLS certificate, then the identity headers it sends.

Two gates, both on every request:
1. the TLS peer of this connection (gunicorn terminates TLS and demands a
   certificate) must be the web tier's `proxy` certificate: clientAuth, issued by
   the services CA, with a CN named in the configuration, and a public key pinned
   there (proxy_spki_sha256: what the web hosts' proxy certificates hold). Anyone else (a browser
   with a users-CA certificate, another service) gets 403, so the headers below
   can only come from the proxy;
2. the headers must describe a certificate of the users CA that its ledger holds,
   unrevoked and unexpired, with the same subject, serial and fingerprint.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
import urllib.parse
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import dn
from .pki import Issued, PkiError, UsersCA, normalize_serial

H_VERIFY = "X-SSL-Client-Verify"
H_SUBJECT = "X-SSL-Client-S-DN"
H_ISSUER = "X-SSL-Client-I-DN"
H_SERIAL = "X-SSL-Client-Serial"
H_FINGERPRINT = "X-SSL-Client-Fingerprint"
H_CERT = "X-SSL-Client-Cert"
IDENTITY_HEADERS = (H_VERIFY, H_SUBJECT, H_ISSUER, H_SERIAL, H_FINGERPRINT, H_CERT)

_PEM_BODY = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


class Refused(Exception):
    """The request may not proceed; the message says why (shown to the caller, logged)."""


@dataclass(frozen=True)
class Identity:
    subject: str  # RFC 4514, as the engine writes it in the ledger
    serial: str
    certificate: Issued


def parse_dn(value: str, what: str) -> x509.Name:
    try:
        return dn.parse_dn(value)
    except ValueError as exc:
        raise Refused(f"{what} {value!r} is not a distinguished name: {exc}") from None


# ------------------------------------------------------------- the proxy
def spki_sha256(cert: x509.Certificate) -> str:
    """The pin of a certificate's key: SHA-256 of its DER SubjectPublicKeyInfo, lowercase hex."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def check_proxy(peer_der: bytes | None, common_names: tuple[str, ...], issuer: str, spki_pins: tuple[str, ...]) -> str:
    """Refuse unless the TLS peer is the web tier's proxy certificate. Returns its CN.

    Issuer, clientAuth and CN say what the certificate claims; the pin (`spki_pins`, the SHA-256 of the
    public key of each web host's proxy certificate, gathered by the role) says it is the one the web
    tier holds: another services-CA client certificate named after a web host has another key.
    """
    if not peer_der:
        raise Refused("no TLS client certificate on this connection: only the web tier may connect")
    try:
        cert = x509.load_der_x509_certificate(peer_der)
    except ValueError:
        raise Refused("the TLS client certificate does not parse") from None
    if cert.issuer != parse_dn(issuer, "proxy_issuer"):
        raise Refused(f"the TLS client certificate was issued by {cert.issuer.rfc4514_string()}, not the services CA")
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        usages = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        raise Refused("the TLS client certificate is not a client (clientAuth) certificate")
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(names) != 1 or names[0] not in common_names:
        raise Refused(
            f"the TLS client certificate {cert.subject.rfc4514_string()} is not one of the web tier's proxies"
        )
    if not spki_pins:
        raise Refused(
            "no key of the web tier's proxy certificates is pinned yet (proxy_spki_sha256): the portal role"
            " pins them once the web hosts have their proxy certificate (run the site playbook to its end)"
        )
    if spki_sha256(cert) not in spki_pins:
        raise Refused(
            f"the TLS client certificate {cert.subject.rfc4514_string()} (key SHA-256 {spki_sha256(cert)}) is not"
            " the key of the web tier's proxy certificate pinned in proxy_spki_sha256"
        )
    return str(names[0])


def peer_certificate(environ: dict) -> bytes | None:
    """The DER certificate of the TLS peer, from gunicorn's SSL socket."""
    sock = environ.get("gunicorn.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    return getpeercert(binary_form=True)


# ------------------------------------------------------------- the person
def _header_certificate(value: str) -> x509.Certificate:
    """nginx's $ssl_client_escaped_cert (URL-encoded PEM), or a PEM whose line breaks became spaces."""
    match = _PEM_BODY.search(urllib.parse.unquote(value))
    if match is None:
        raise Refused(f"{H_CERT} holds no PEM certificate")
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(match.group(1).split())))
    except ValueError:
        raise Refused(f"{H_CERT} does not parse") from None


def _header_dn(headers: dict[str, str], name: str) -> str:
    """A DN header as the web tier printed it (RFC 2253), as text, with the space of a final `\\ ` it lost on the way.

    nginx escapes every byte above 0x7f (`J\\C3\\B6rg`); Apache's SSL_CLIENT_S_DN carries the UTF-8 itself, which
    the WSGI server hands over decoded as Latin-1 (PEP 3333): the bytes are taken back and read as UTF-8.
    OpenSSL escapes a space ending a value (`CN=x\\ `), but HTTP takes the whitespace around a header value as
    no part of it, and gunicorn drops it: dn.strip gives it back. The other spaces are inside the value and stay.
    """
    value = headers.get(name, "")
    try:
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        pass  # not from a WSGI server's bytes: already text
    except UnicodeDecodeError:
        raise Refused(f"{name} is neither ASCII nor UTF-8") from None
    return dn.strip(value)


def _check_headers_match(headers: dict[str, str], issued: Issued) -> None:
    fingerprint = headers.get(H_FINGERPRINT, "").replace(":", "").strip().lower()
    pem = headers.get(H_CERT, "").strip()
    if not fingerprint and not pem:
        raise Refused(f"neither {H_FINGERPRINT} nor {H_CERT} was sent")
    if fingerprint and fingerprint not in issued.fingerprints():
        raise Refused("the certificate fingerprint does not match the ledger's certificate of this serial")
    if pem:
        sent = _header_certificate(pem).public_bytes(serialization.Encoding.DER)
        if sent != issued.certificate.public_bytes(serialization.Encoding.DER):
            raise Refused("the certificate sent does not match the ledger's certificate of this serial")


def identify(headers: dict[str, str], ca: UsersCA, now: datetime.datetime) -> Identity:
    """The person behind the request, from the proxy's headers, checked against the users CA's ledger."""
    if headers.get(H_VERIFY, "") != "SUCCESS":
        raise Refused("no verified client certificate (the web tier did not report SUCCESS)")
    subject_text = _header_dn(headers, H_SUBJECT)
    issuer_text = _header_dn(headers, H_ISSUER)
    serial_text = headers.get(H_SERIAL, "").strip()
    if not (subject_text and issuer_text and serial_text):
        raise Refused(f"{H_SUBJECT}, {H_ISSUER} and {H_SERIAL} are required")
    if parse_dn(issuer_text, "the issuer") != ca.subject:
        raise Refused("the client certificate was not issued by the users CA")
    subject = parse_dn(subject_text, "the subject")
    try:
        serial = normalize_serial(serial_text)
    except PkiError:
        raise Refused(f"serial {serial_text!r} is not hexadecimal") from None
    issued = ca.get(serial)
    if issued is None:
        raise Refused(f"serial {serial} was not issued by the users CA")
    if issued.certificate.subject != subject:
        raise Refused(f"serial {serial} belongs to another subject")
    if issued.revoked_at is not None:
        raise Refused(f"the client certificate {serial} is revoked")
    if not issued.not_before <= now < issued.not_after:
        raise Refused(f"the client certificate {serial} is not valid now")
    _check_headers_match(headers, issued)
    return Identity(subject=issued.subject, serial=serial, certificate=issued)
