"""Revocation by the owner or an approver, with a reason; the CRL is rewritten at once; revoked means no login."""

from __future__ import annotations

import pytest
from cryptography import x509

from conftest import ADMIN, Harness, Person, PortalClient, make_csr

RITA = "CN=Rita Requester,O=SecureStack"


def issued_serial(portal: Harness, rita: PortalClient, arno: PortalClient) -> str:
    filed = rita.api("post", "/api/v1/requests", {"csr": make_csr(RITA)})
    assert filed.status_code == 201, filed.json
    approved = arno.api("post", f"/api/v1/requests/{filed.json['id']}/approve", {"comment": ""})
    assert approved.status_code == 200, approved.json
    return approved.json["serial"]


def crl_serials(client: PortalClient) -> dict[str, str | None]:
    crl = x509.load_der_x509_crl(client.get("/crl").data)
    reasons = {}
    for entry in crl:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
        except x509.ExtensionNotFound:
            reason = None
        reasons[format(entry.serial_number, "x")] = reason
    return reasons


def test_the_owner_revokes_with_a_reason_and_the_crl_has_it_at_once(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    _rita, rita = requester
    _arno, arno = approver
    serial = issued_serial(portal, rita, arno)
    assert serial not in crl_serials(rita)
    response = rita.submit(f"/certificates/{serial}", f"/certificates/{serial}/revoke", {"reason": "keyCompromise"})
    assert response.status_code == 302
    assert crl_serials(rita) == {serial: "keyCompromise"}
    assert (portal.users_ca / "crl.pem").read_bytes() == rita.get("/crl.pem").data
    assert dict(portal.ledger())[serial] is not None
    page = rita.get(f"/certificates/{serial}").text
    assert "revoked" in page and "keyCompromise" in page and "Revoke this certificate" not in page
    event = portal.rows("audit_events")[-1]
    assert (event["action"], event["target"], event["actor"]) == ("certificate.revoke", f"serial:{serial}", RITA)
    again = rita.api("post", f"/api/v1/certificates/{serial}/revoke", {"reason": "superseded"})
    assert again.status_code == 409


def test_an_approver_revokes_anyone_and_a_stranger_no_one(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    _rita, rita = requester
    _arno, arno = approver
    serial = issued_serial(portal, rita, arno)
    bob = portal.client(portal.person("CN=Bob,O=SecureStack"))
    refused = bob.api("post", f"/api/v1/certificates/{serial}/revoke", {"reason": "unspecified"})
    assert refused.status_code == 404
    assert serial not in crl_serials(bob)
    done = arno.api("post", f"/api/v1/certificates/{serial}/revoke", {"reason": "affiliationChanged"})
    assert done.status_code == 200 and done.json["status"] == "revoked"
    assert crl_serials(arno) == {serial: "affiliationChanged"}


def test_an_unknown_reason_is_refused(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    _rita, rita = requester
    _arno, arno = approver
    serial = issued_serial(portal, rita, arno)
    api = rita.api("post", f"/api/v1/certificates/{serial}/revoke", {"reason": "certificateHold"})
    assert api.status_code == 400 and "unknown revocation reason 'certificateHold'" in api.json["error"]
    form = rita.submit(f"/certificates/{serial}", f"/certificates/{serial}/revoke", {"reason": "certificateHold"})
    assert form.status_code == 400 and "Not a valid choice" in form.text
    assert crl_serials(rita) == {}


def test_a_revoked_certificate_cannot_log_in(portal: Harness) -> None:
    person = portal.person("CN=Jane Doe,O=SecureStack")
    client = portal.client(person)
    assert client.get("/").status_code == 200
    admin = portal.client(portal.person(ADMIN))
    revoked = admin.api("post", f"/api/v1/certificates/{person.serial}/revoke", {"reason": "keyCompromise"})
    assert revoked.status_code == 200
    assert person.serial in crl_serials(admin)
    for path in ("/", "/requests", "/api/v1/me"):
        response = client.get(path)
        assert response.status_code == 403
        assert f"the client certificate {person.serial} is revoked" in response.text
    # a new certificate for the same person works, and the user keeps the same account
    renewed = portal.client(portal.person("CN=Jane Doe,O=SecureStack"))
    assert renewed.get("/api/v1/me").json["subject"] == "CN=Jane Doe,O=SecureStack"


def test_revoking_ones_own_login_certificate(portal: Harness) -> None:
    person = portal.person("CN=Jane Doe,O=SecureStack")
    client = portal.client(person)
    assert client.api("post", f"/api/v1/certificates/{person.serial}/revoke", {}).status_code == 200
    assert client.get("/").status_code == 403


@pytest.mark.parametrize("path", ["/crl", "/crl.pem"])
def test_the_crl_is_served_without_a_personal_identity(portal: Harness, path: str) -> None:
    response = portal.client(None).get(path)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "max-age=300"
