"""Who may reach the portal: only the proxy, and only with the identity of a live users-CA certificate."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from securestack_pki._pki_ca import CertificateAuthority, SignSpec

from conftest import ADMIN, Harness, make_csr
from securestack_portal import dn


def test_the_proxy_with_a_valid_identity_gets_in(portal: Harness) -> None:
    person = portal.person("CN=Jane Doe,O=SecureStack")
    response = portal.client(person).get("/")
    assert response.status_code == 200
    assert "CN=Jane Doe,O=SecureStack" in response.text


@pytest.mark.parametrize(
    ("peer", "message"),
    [
        (None, "no TLS client certificate"),
        ("server", "not a client (clientAuth) certificate"),
        ("other", "is not one of the web tier&#39;s proxies"),
        ("user", "not the services CA"),
        (b"garbage", "does not parse"),
    ],
)
def test_anything_but_the_proxy_is_refused(portal: Harness, peer: object, message: str) -> None:
    person = portal.person(ADMIN)
    der = {
        None: None,
        "server": portal.pki.server_der,  # the right CN, but a server certificate
        "other": portal.pki.other_proxy_der,  # a services-CA client certificate of another host
        "user": person.der,  # a person's users-CA certificate, straight to gunicorn
    }.get(peer, peer)  # type: ignore[call-overload]
    client = portal.client(person, peer=der)
    for path in ("/", "/crl", "/healthz", "/api/v1/me"):
        response = client.get(path)
        assert response.status_code == 403, path
    assert message in client.get("/").text
    assert portal.rows("users") == []  # not even seen


def test_crl_and_health_need_the_proxy_but_no_person(portal: Harness) -> None:
    client = portal.client(None)
    assert client.get("/healthz").json == {"status": "ok"}
    der = client.get("/crl")
    assert der.status_code == 200 and der.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(der.data)
    assert crl.issuer == CertificateAuthority.open(str(portal.users_ca)).certificate.subject
    pem = client.get("/crl.pem")
    assert pem.mimetype == "application/x-pem-file" and x509.load_pem_x509_crl(pem.data).issuer == crl.issuer
    assert client.get("/").status_code == 403


def _headers_without(portal: Harness, *names: str) -> dict[str, str]:
    headers = portal.person("CN=Jane Doe,O=SecureStack").headers(portal.issuer)
    return {k: v for k, v in headers.items() if k not in names}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"X-SSL-Client-Verify": "FAILED:certificate revoked"}, "did not report SUCCESS"),
        ({"X-SSL-Client-Verify": "NONE"}, "did not report SUCCESS"),
        ({"X-SSL-Client-I-DN": "CN=SecureStack Services CA,O=SecureStack"}, "not issued by the users CA"),
        ({"X-SSL-Client-I-DN": "not a DN"}, "is not a distinguished name"),
        ({"X-SSL-Client-Serial": "0123456789abcdef"}, "was not issued by the users CA"),
        ({"X-SSL-Client-Serial": "xyz"}, "is not hexadecimal"),
        ({"X-SSL-Client-S-DN": ADMIN}, "belongs to another subject"),
        ({"X-SSL-Client-Fingerprint": "00" * 20}, "fingerprint does not match"),
    ],
)
def test_forged_or_failed_identity_headers_are_refused(portal: Harness, change: dict, message: str) -> None:
    headers = {**_headers_without(portal), **change}
    response = portal.client(None, headers=headers).get("/")
    assert response.status_code == 403
    assert message in response.text
    assert portal.rows("users") == []


def test_a_certificate_header_of_another_certificate_is_refused(portal: Harness) -> None:
    other = portal.person("CN=Other,O=SecureStack")
    headers = {
        **_headers_without(portal, "X-SSL-Client-Fingerprint"),
        "X-SSL-Client-Cert": other.headers("")["X-SSL-Client-Cert"],
    }
    response = portal.client(None, headers=headers).get("/")
    assert response.status_code == 403 and "the certificate sent does not match" in response.text


@pytest.mark.parametrize("missing", ["X-SSL-Client-S-DN", "X-SSL-Client-I-DN", "X-SSL-Client-Serial"])
def test_missing_identity_headers_are_refused(portal: Harness, missing: str) -> None:
    response = portal.client(None, headers=_headers_without(portal, missing)).get("/")
    assert response.status_code == 403 and "are required" in response.text


def test_neither_fingerprint_nor_certificate_is_refused(portal: Harness) -> None:
    headers = _headers_without(portal, "X-SSL-Client-Fingerprint", "X-SSL-Client-Cert")
    response = portal.client(None, headers=headers).get("/")
    assert response.status_code == 403 and "neither X-SSL-Client-Fingerprint nor X-SSL-Client-Cert" in response.text


def test_fingerprint_alone_or_certificate_alone_is_enough(portal: Harness) -> None:
    person = portal.person("CN=Jane Doe,O=SecureStack")
    headers = person.headers(portal.issuer)
    only_fingerprint = {k: v for k, v in headers.items() if k != "X-SSL-Client-Cert"}
    assert portal.client(None, headers=only_fingerprint).get("/").status_code == 200
    # Apache-style: the PEM with its line breaks turned into spaces, a SHA-256 fingerprint with colons
    der = person.der
    apache = {k: v for k, v in headers.items() if k not in ("X-SSL-Client-Cert", "X-SSL-Client-Fingerprint")}
    apache["X-SSL-Client-Cert"] = person.pem.replace("\n", " ")
    apache["X-SSL-Client-Fingerprint"] = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    assert portal.client(None, headers=apache).get("/").status_code == 200


def test_an_expired_certificate_is_refused(portal: Harness) -> None:
    import datetime

    ca = CertificateAuthority.open(str(portal.users_ca))
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    result = ca.sign(
        [SignSpec(csr=make_csr("CN=Old,O=SecureStack"), profile="client", valid_days=2)], now=past, renew_before_days=0
    )[0]
    pem = result.certificate or ""
    cert = x509.load_pem_x509_certificate(pem.encode())
    headers = {
        "X-SSL-Client-Verify": "SUCCESS",
        "X-SSL-Client-S-DN": "CN=Old,O=SecureStack",
        "X-SSL-Client-I-DN": portal.issuer,
        "X-SSL-Client-Serial": format(cert.serial_number, "X"),
        "X-SSL-Client-Fingerprint": hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),  # noqa: S324
    }
    response = portal.client(None, headers=headers).get("/")
    assert response.status_code == 403 and "is not valid now" in response.text


def test_first_sight_makes_the_configured_admin_an_admin_and_others_requesters(portal: Harness) -> None:
    assert portal.client(portal.person(ADMIN)).get("/api/v1/me").json["role"] == "admin"
    assert portal.client(portal.person("CN=Bob,O=SecureStack")).get("/api/v1/me").json["role"] == "requester"
    actions = [(row["actor"], row["action"]) for row in portal.rows("audit_events")]
    assert actions == [(ADMIN, "user.first_seen"), ("CN=Bob,O=SecureStack", "user.first_seen")]


def test_a_subject_named_admin_later_is_not_promoted(make_harness) -> None:
    """admin_subjects apply on first sight only (issue 12, finding 8): afterwards the role is what admins set."""
    portal = make_harness(admin_subjects=[])
    carol = portal.person("CN=Carol,O=SecureStack")
    assert portal.client(carol).get("/api/v1/me").json["role"] == "requester"
    from conftest import portal_config
    from securestack_portal import create_app
    from securestack_portal.config import parse

    data = portal_config(portal.directory, portal.users_ca, admin_subjects=["CN=Carol,O=SecureStack"])
    portal.app = create_app(parse(data))
    assert portal.client(carol).get("/api/v1/me").json["role"] == "requester"
    assert [e["action"] for e in portal.rows("audit_events")] == ["user.first_seen"]


@pytest.mark.parametrize(
    "name",
    [
        [(NameOID.ORGANIZATION_NAME, "SecureStack"), (NameOID.COMMON_NAME, "Jörg Müller")],
        [(NameOID.COMMON_NAME, "Jane"), (NameOID.EMAIL_ADDRESS, "jane@example.org")],
        [(NameOID.ORGANIZATION_NAME, "Doe, Jane & Co <x>"), (NameOID.COMMON_NAME, "+Jane=\\#")],
        [(NameOID.SERIAL_NUMBER, "42"), (NameOID.COMMON_NAME, "日本 太郎")],
    ],
)
def test_subjects_as_openssl_prints_them_are_understood(portal: Harness, tmp_path, name: list) -> None:
    """nginx and Apache send OpenSSL's RFC 2253 form: escaped UTF-8 bytes, emailAddress, serialNumber."""
    import subprocess

    subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in name])
    ca = CertificateAuthority.open(str(portal.users_ca))
    emails = tuple(str(a.value) for a in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS))
    result = ca.sign([SignSpec(csr=make_csr(subject, emails=emails), profile="client")])[0]
    (tmp_path / "c.pem").write_text(result.certificate or "")
    printed = {}
    for what in ("subject", "issuer"):
        out = subprocess.run(
            ["openssl", "x509", "-in", str(tmp_path / "c.pem"), "-noout", f"-{what}", "-nameopt", "RFC2253"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        printed[what] = out.strip().split("=", 1)[1]
    der = x509.load_pem_x509_certificate((result.certificate or "").encode()).public_bytes(serialization.Encoding.DER)
    headers = {
        "X-SSL-Client-Verify": "SUCCESS",
        "X-SSL-Client-S-DN": printed["subject"],
        "X-SSL-Client-I-DN": printed["issuer"],
        "X-SSL-Client-Serial": (result.serial or "").upper(),
        "X-SSL-Client-Fingerprint": hashlib.sha1(der).hexdigest(),  # noqa: S324
    }
    response = portal.client(None, headers=headers).get("/api/v1/me")
    assert response.status_code == 200, response.json
    assert response.json["subject"] == subject.rfc4514_string()


def _openssl_headers(portal: Harness, subject: x509.Name, server: str = "nginx") -> tuple[dict[str, str], str]:
    """What nginx or Apache sends for a users-CA certificate of `subject`, as the WSGI server hands it over.

    Both print the DNs with OpenSSL's RFC 2253 form (Apache leaves the UTF-8 unescaped); the WSGI server decodes
    a header's bytes as Latin-1. Returns the headers and the subject as the ledger writes it.
    """
    from test_dn import openssl_rfc2253

    ca = CertificateAuthority.open(str(portal.users_ca))
    emails = tuple(str(a.value) for a in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS))
    result = ca.sign([SignSpec(csr=make_csr(subject, emails=emails), profile="client")])[0]
    cert = x509.load_pem_x509_certificate((result.certificate or "").encode())
    headers = {
        "X-SSL-Client-Verify": "SUCCESS",
        "X-SSL-Client-S-DN": openssl_rfc2253(cert.subject, server).encode().decode("latin-1"),
        "X-SSL-Client-I-DN": openssl_rfc2253(cert.issuer, server).encode().decode("latin-1"),
        "X-SSL-Client-Serial": (result.serial or "").upper(),
        "X-SSL-Client-Fingerprint": hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),  # noqa: S324
    }
    return headers, cert.subject.rfc4514_string()


def _hostile_names() -> dict[str, x509.Name]:
    from test_dn import HOSTILE

    return HOSTILE


@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("name", _hostile_names().values(), ids=_hostile_names().keys())
def test_hostile_subjects_get_in_as_themselves(portal: Harness, name: x509.Name, server: str) -> None:
    """Issue 12, finding 7: every legitimate subject, however it is escaped, is its owner's way in."""
    headers, issued = _openssl_headers(portal, name, server)
    response = portal.client(None, headers=headers).get("/api/v1/me")
    assert response.status_code == 200, (headers["X-SSL-Client-S-DN"], response.text)
    assert response.json["subject"] == issued == dn.canonical_dn(name.rfc4514_string())
    assert [row["subject"] for row in portal.rows("users")] == [issued]


@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("name", _hostile_names().values(), ids=_hostile_names().keys())
def test_hostile_subjects_get_in_after_http_dropped_trailing_whitespace(
    portal: Harness, name: x509.Name, server: str
) -> None:
    """gunicorn, as HTTP says, drops a header value's trailing whitespace: the space of a final `\\ ` is gone."""
    headers, issued = _openssl_headers(portal, name, server)
    headers = {key: value.rstrip(" \t") for key, value in headers.items()}
    response = portal.client(None, headers=headers).get("/api/v1/me")
    assert response.status_code == 200, (headers["X-SSL-Client-S-DN"], response.text)
    assert response.json["subject"] == issued


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("x\\41y", "CN=xAy"),  # what the old hex-run decoding made of CN=x\\41y
        ("#hash ", "CN=\\#hash"),  # the space is part of the name
        ("Jane\\", "CN=Jane\\ "),  # an escaped backslash is no escaped space
        ("#", "CN=#0C022323"),  # the BER of "##"
    ],
)
def test_a_near_miss_of_a_hostile_subject_is_another_subject(portal: Harness, value: str, sent: str) -> None:
    headers, _issued = _openssl_headers(portal, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, value)]))
    response = portal.client(None, headers={**headers, "X-SSL-Client-S-DN": sent}).get("/api/v1/me")
    assert response.status_code == 403
    assert response.json["error"].endswith(" belongs to another subject")
    assert portal.rows("users") == []


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (
            "CN=a\\4",
            "the subject 'CN=a\\\\4' is not a distinguished name:"
            " '\\' at position 4 escapes neither a special character nor two hex digits",
        ),
        ("CN=a;b", "the subject 'CN=a;b' is not a distinguished name: ';' at position 4 must be escaped"),
        ("CN=J\xf6rg", "X-SSL-Client-S-DN is neither ASCII nor UTF-8"),  # Latin-1 bytes, as WSGI hands them over
    ],
)
def test_a_subject_header_that_is_no_dn_is_refused_with_the_reason(portal: Harness, sent: str, message: str) -> None:
    headers = {**_headers_without(portal), "X-SSL-Client-S-DN": sent}
    response = portal.client(None, headers=headers).get("/api/v1/me")
    assert response.status_code == 403
    assert response.json == {"error": message}
