"""A key pair made by the portal: handed over once in a PKCS#12 under the user's passphrase, never stored."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from conftest import Harness, Person, PortalClient
from securestack_portal import pki

PASSPHRASE = "correct horse battery staple"
PRODUCTION_KDF_ROUNDS = pki.PKCS12_KDF_ROUNDS  # read before any test patches it


@pytest.fixture(autouse=True)
def fast_pkcs12(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production KDF cost (600000 rounds) is kept out of the unit tests' time."""
    monkeypatch.setattr(pki, "PKCS12_KDF_ROUNDS", 1000)


def generate(client: PortalClient, **fields: str):
    data = {"key_type": "ecdsa-p256", "passphrase": PASSPHRASE, "confirm": PASSPHRASE, **fields}
    return client.submit("/requests/new", "/requests/generate", data)


def key_material(key: object) -> list[bytes]:
    """Byte strings that would betray the private key if found anywhere."""
    der = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        scalar = key.private_numbers().private_value.to_bytes((key.curve.key_size + 7) // 8, "big")
    else:
        scalar = key.private_numbers().d.to_bytes(384, "big")  # type: ignore[attr-defined]
    return [der, pem, scalar, scalar.hex().encode(), base64.b64encode(scalar)]


def assert_stored_nowhere(key: object, *directories: Path) -> None:
    secrets = key_material(key)
    for directory in directories:
        for path in directory.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(s in data for s in secrets), f"key material in {path}"


def session_of(client: PortalClient) -> dict:
    """The decoded session cookie the browser holds."""
    cookie = client.client.get_cookie("__Host-portal-session", domain="portal.test")
    assert cookie is not None
    app = client.client.application
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def test_a_requester_gets_the_key_and_the_request_waits(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    rita, client = requester
    response = generate(client)
    assert response.status_code == 200 and response.mimetype == "application/x-pkcs12"
    request = portal.rows("requests")[0]
    assert f'filename="request-{request["id"]}.p12"' in response.headers["Content-Disposition"]
    bundle = pkcs12.load_pkcs12(response.data, PASSPHRASE.encode())
    assert isinstance(bundle.key, ec.EllipticCurvePrivateKey) and bundle.cert is None
    assert request["status"] == "pending" and request["generated"] == 1 and request["subject"] == rita.subject
    assert "BEGIN CERTIFICATE REQUEST" in request["csr_pem"]
    assert_stored_nowhere(bundle.key, portal.directory)
    assert set(session_of(client)) == {"csrf_token"}
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(response.data, b"wrong passphrase")
    # then it goes through approval like a pasted CSR, and the certificate fits the key
    _arno, arno = approver
    decided = arno.submit(f"/requests/{request['id']}", f"/requests/{request['id']}/approve", {"comment": ""})
    assert decided.status_code == 302
    serial = portal.rows("requests")[0]["serial"]
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(client.get(f"/certificates/{serial}.crt").data)
    assert cert.public_key() == bundle.key.public_key()
    assert_stored_nowhere(bundle.key, portal.directory)


def test_a_requester_cannot_pick_another_subject(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    rita, client = requester
    generate(client, common_name="Somebody Else")
    assert portal.rows("requests")[0]["subject"] == rita.subject


def test_an_approver_enrols_someone_else_through_another_approver(
    portal: Harness, approver: tuple[Person, PortalClient]
) -> None:
    """Issue 12, finding 1: a key pair made for someone else's subject is a request like any other."""
    arno, client = approver
    response = generate(client, common_name="New Hire", organization="SecureStack", key_type="ecdsa-p384")
    assert response.status_code == 200
    bundle = pkcs12.load_pkcs12(response.data, PASSPHRASE.encode())
    assert isinstance(bundle.key, ec.EllipticCurvePrivateKey) and bundle.key.curve.name == "secp384r1"
    assert bundle.cert is None
    request = portal.rows("requests")[0]
    assert request["status"] == "pending" and request["subject"] == "CN=New Hire,O=SecureStack"
    bea = portal.client(portal.person("CN=Bea Approver,O=SecureStack", role="approver"))
    decided = bea.submit(f"/requests/{request['id']}", f"/requests/{request['id']}/approve", {"comment": ""})
    assert decided.status_code == 302
    serial = portal.rows("requests")[0]["serial"]
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(client.get(f"/certificates/{serial}.crt").data)
    assert cert.subject.rfc4514_string() == "CN=New Hire,O=SecureStack"
    assert cert.public_key() == bundle.key.public_key()
    actions = [(r["actor"], r["action"]) for r in portal.rows("audit_events") if r["action"].startswith("request.")]
    assert actions == [(arno.subject, "request.generate"), ("CN=Bea Approver,O=SecureStack", "request.approve")]
    assert_stored_nowhere(bundle.key, portal.directory)


def test_an_approver_generating_for_themselves_waits_for_another(
    portal: Harness, approver: tuple[Person, PortalClient]
) -> None:
    arno, client = approver
    bundle = pkcs12.load_pkcs12(generate(client).data, PASSPHRASE.encode())
    assert bundle.cert is None
    assert portal.rows("requests")[0]["status"] == "pending"
    assert portal.rows("requests")[0]["subject"] == arno.subject


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"passphrase": "short", "confirm": "short"}, "Field must be between 12 and 1024 characters long."),
        ({"confirm": "something else entirely"}, "the passphrases differ"),
        ({"key_type": "dsa-1024"}, "Not a valid choice"),
    ],
)
def test_bad_generation_input_is_refused(
    portal: Harness, requester: tuple[Person, PortalClient], fields: dict, message: str
) -> None:
    _rita, client = requester
    response = generate(client, **fields)
    assert response.status_code == 400 and message in response.text
    assert portal.rows("requests") == []


def test_generation_through_the_api(portal: Harness, approver: tuple[Person, PortalClient]) -> None:
    _arno, client = approver
    short = client.api("post", "/api/v1/requests/generate", {"passphrase": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.json["error"]
    response = client.api("post", "/api/v1/requests/generate", {"passphrase": PASSPHRASE, "common_name": "Api Hire"})
    assert response.status_code == 201
    bundle = pkcs12.load_pkcs12(base64.b64decode(response.json["pkcs12"]), PASSPHRASE.encode())
    assert bundle.cert is None and response.json["certificate"] is None  # another approver decides
    assert response.json["request"]["status"] == "pending" and response.json["request"]["subject"] == "CN=Api Hire"
    assert_stored_nowhere(bundle.key, portal.directory)


def test_an_approver_with_self_approval_gets_their_own_certificate_at_once(make_harness) -> None:
    portal = make_harness(allow_self_approval=True)
    arno = portal.person("CN=Arno Approver,O=SecureStack", role="approver")
    response = portal.client(arno).api("post", "/api/v1/requests/generate", {"passphrase": PASSPHRASE})
    assert response.status_code == 201 and response.json["request"]["status"] == "issued"
    bundle = pkcs12.load_pkcs12(base64.b64decode(response.json["pkcs12"]), PASSPHRASE.encode())
    assert bundle.cert is not None and bundle.cert.certificate.subject.rfc4514_string() == arno.subject


def test_the_bundle_opens_in_openssl_with_the_passphrase_only(tmp_path: Path) -> None:
    assert PRODUCTION_KDF_ROUNDS >= 600_000  # OWASP's PBKDF2-HMAC-SHA256 work factor
    key = pki.generate_key("ecdsa-p256")
    bundle = tmp_path / "me.p12"
    bundle.write_bytes(pki.pkcs12_bundle(key, PASSPHRASE, "me"))
    opened = subprocess.run(
        ["openssl", "pkcs12", "-in", str(bundle), "-nocerts", "-noenc", "-passin", f"pass:{PASSPHRASE}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert "BEGIN PRIVATE KEY" in opened.stdout
    info = subprocess.run(
        ["openssl", "pkcs12", "-in", str(bundle), "-info", "-noout", "-passin", f"pass:{PASSPHRASE}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "AES-256-CBC" in info.stderr + info.stdout and "sha256" in (info.stderr + info.stdout).lower()
    wrong = subprocess.run(
        ["openssl", "pkcs12", "-in", str(bundle), "-nocerts", "-noenc", "-passin", "pass:wrong passphrase"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0


def test_key_choices() -> None:
    assert set(pki.KEY_CHOICES) == {"ecdsa-p256", "ecdsa-p384", "rsa-3072"}
    with pytest.raises(pki.PkiError, match="unknown key type 'dsa'"):
        pki.generate_key("dsa")
