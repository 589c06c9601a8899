"""Every hostile CSR the engine rejects is rejected here too, with the engine's message, and nothing is stored."""

from __future__ import annotations

import base64
import functools
import textwrap
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, rsa
from cryptography.x509.oid import NameOID
from markupsafe import escape

from conftest import Harness, Person, PortalClient

RITA = "CN=Rita Requester,O=SecureStack"


def _csr(key=None, name: x509.Name | None = None, extensions: list | None = None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(name or x509.Name.from_rfc4514_string(RITA))
    for extension, critical in extensions or []:
        builder = builder.add_extension(extension, critical=critical)
    algorithm = None if isinstance(key, ed448.Ed448PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def _tampered() -> str:
    der = bytearray(x509.load_pem_x509_csr(_csr().encode()).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    body = "\n".join(textwrap.wrap(base64.b64encode(bytes(der)).decode(), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n"


def _name(*attributes: x509.NameAttribute) -> x509.Name:
    return x509.Name(list(attributes))


HOSTILE: dict[str, tuple[Callable[[], str], str]] = {
    "not-a-csr": (lambda: "hello, I am not a CSR", "input is not a certificate signing request"),
    "certificate-not-csr": (
        lambda: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "input is not a certificate signing request",
    ),
    "bad-signature": (_tampered, "the CSR's signature does not verify"),
    "oversized": (lambda: "A" * (17 * 1024), "bytes refused: the limit is 16384 bytes"),
    "rsa-1024": (lambda: _csr(rsa.generate_private_key(65537, 1024)), "RSA key of 1024 bits refused"),  # noqa: S505
    "dsa": (lambda: _csr(dsa.generate_private_key(2048)), "DSA key refused"),
    "ed448": (lambda: _csr(ed448.Ed448PrivateKey.generate()), "Ed448 key refused"),
    "curve-p521": (lambda: _csr(ec.generate_private_key(ec.SECP521R1())), "EC key on curve secp521r1 refused"),
    "ca-true": (
        lambda: _csr(extensions=[(x509.BasicConstraints(ca=True, path_length=None), True)]),
        "the CSR asks for CA:TRUE, which the client profile never grants",
    ),
    "no-common-name": (
        lambda: _csr(name=_name(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SecureStack"))),
        "a client certificate needs a common name (CN)",
    ),
    "foreign-subject-attribute": (
        lambda: _csr(name=_name(x509.NameAttribute(NameOID.COMMON_NAME, "x"), x509.NameAttribute(NameOID.TITLE, "y"))),
        "subject attribute 2.5.4.12 (title) is not accepted",
    ),
    "control-characters": (
        lambda: _csr(name=_name(x509.NameAttribute(NameOID.COMMON_NAME, "evil\nname"))),
        "subject attribute CN holds control characters",
    ),
    "wildcard-name": (
        lambda: _csr(extensions=[(x509.SubjectAlternativeName([x509.DNSName("*.example.com")]), False)]),
        "wildcard name '*.example.com' refused",
    ),
    "uri-name": (
        lambda: _csr(extensions=[(x509.SubjectAlternativeName([x509.UniformResourceIdentifier("https://x")]), False)]),
        "is not accepted for the client profile",
    ),
    "too-many-names": (
        lambda: _csr(
            extensions=[
                (x509.SubjectAlternativeName([x509.RFC822Name(f"u{i}@example.com") for i in range(101)]), False)
            ]
        ),
        "101 names refused: at most 100 names per certificate",
    ),
}


def _state(portal: Harness) -> tuple:
    return portal.rows("requests"), portal.rows("audit_events"), portal.rows("users"), portal.ledger()


@functools.cache
def hostile(case: str) -> str:
    """Each hostile CSR made once (DSA and RSA keys take a while)."""
    return HOSTILE[case][0]()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_csr_in_the_form(portal: Harness, requester: tuple[Person, PortalClient], case: str) -> None:
    message = HOSTILE[case][1]
    _person, client = requester
    token = client.csrf_token("/requests/new")
    before = _state(portal)
    response = client.post("/requests/new", data={"csrf_token": token, "csr": hostile(case)})
    assert response.status_code == 400
    assert str(escape(message)) in response.text
    assert _state(portal) == before


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_csr_in_the_api(portal: Harness, requester: tuple[Person, PortalClient], case: str) -> None:
    message = HOSTILE[case][1]
    _person, client = requester
    client.get("/")  # first sight recorded before the snapshot
    before = _state(portal)
    response = client.api("post", "/api/v1/requests", {"csr": hostile(case)})
    assert response.status_code == 400
    assert message in response.json["error"]
    assert _state(portal) == before
