"""Submit (paste or file), list, view, approve or reject, download; every role rule."""

from __future__ import annotations

import io
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import ADMIN, Harness, Person, PortalClient, make_csr

RITA = "CN=Rita Requester,O=SecureStack"


def file_request(client: PortalClient, csr: str) -> int:
    response = client.submit("/requests/new", "/requests/new", {"csr": csr})
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_submit_a_pasted_csr(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _person, client = requester
    request_id = file_request(client, make_csr(RITA))
    page = client.get(f"/requests/{request_id}")
    assert page.status_code == 200 and "pending" in page.text and RITA in page.text
    assert "Approve and issue" not in page.text  # a requester sees no decision form
    assert [(r["id"], r["status"]) for r in portal.rows("requests")] == [(request_id, "pending")]
    assert portal.rows("audit_events")[-1]["action"] == "request.submit"


@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_submit_a_csr_file(portal: Harness, requester: tuple[Person, PortalClient], encoding: str) -> None:
    _person, client = requester
    csr = x509.load_pem_x509_csr(make_csr(RITA).encode())
    data = csr.public_bytes(serialization.Encoding.PEM if encoding == "pem" else serialization.Encoding.DER)
    response = client.submit(
        "/requests/new",
        "/requests/new",
        {"csr_file": (io.BytesIO(data), f"me.{encoding}")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.text
    assert len(portal.rows("requests")) == 1


def test_submit_needs_exactly_one_csr(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _person, client = requester
    empty = client.submit("/requests/new", "/requests/new", {"csr": ""})
    assert empty.status_code == 400 and "paste a CSR or choose a file" in empty.text
    csr = make_csr(RITA)
    both = client.submit(
        "/requests/new",
        "/requests/new",
        {"csr": csr, "csr_file": (io.BytesIO(csr.encode()), "me.pem")},
        content_type="multipart/form-data",
    )
    assert both.status_code == 400 and "not both" in both.text
    assert portal.rows("requests") == []


def test_a_requester_may_request_only_their_own_subject(
    portal: Harness, requester: tuple[Person, PortalClient]
) -> None:
    _person, client = requester
    response = client.submit("/requests/new", "/requests/new", {"csr": make_csr(ADMIN)})
    assert response.status_code == 403
    assert "may only request certificates for their own subject" in response.text
    assert portal.rows("requests") == []


def test_an_approver_may_request_for_someone_else(portal: Harness, approver: tuple[Person, PortalClient]) -> None:
    _person, client = approver
    file_request(client, make_csr("CN=New Hire,O=SecureStack"))
    assert portal.rows("requests")[0]["subject"] == "CN=New Hire,O=SecureStack"


def test_requesters_see_their_own_requests_only(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    _rita, rita = requester
    bob_person = portal.person("CN=Bob,O=SecureStack")
    bob = portal.client(bob_person)
    mine = file_request(rita, make_csr(RITA))
    theirs = file_request(bob, make_csr("CN=Bob,O=SecureStack"))
    listing = rita.get("/requests").text
    assert f"#{mine}" in listing and f"#{theirs}" not in listing
    assert rita.get(f"/requests/{theirs}").status_code == 404
    assert rita.api("get", f"/api/v1/requests/{theirs}").status_code == 404
    _arno, arno = approver
    everything = arno.get("/requests").text
    assert f"#{mine}" in everything and f"#{theirs}" in everything
    assert f"#{mine}" not in arno.get("/requests?status=issued").text
    assert arno.get("/requests?status=bogus").status_code == 400


def approve(client: PortalClient, request_id: int, comment: str = "ok"):
    return client.submit(f"/requests/{request_id}", f"/requests/{request_id}/approve", {"comment": comment})


def test_an_approver_approves_and_the_certificate_is_issued(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    _rita, rita = requester
    arno_person, arno = approver
    request_id = file_request(rita, make_csr(RITA))
    assert "Approve and issue" in arno.get(f"/requests/{request_id}").text
    response = approve(arno, request_id, "known person")
    assert response.status_code == 302
    row = portal.rows("requests")[0]
    assert row["status"] == "issued" and row["serial"] in dict(portal.ledger())
    page = rita.get(f"/requests/{request_id}").text
    assert "issued" in page and "known person" in page and arno_person.subject in page
    assert portal.rows("audit_events")[-1]["action"] == "request.approve"


def test_a_requester_cannot_approve_or_reject(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _rita, rita = requester
    request_id = file_request(rita, make_csr(RITA))
    token = rita.csrf_token("/requests/new")
    ledger = portal.ledger()
    for action in ("approve", "reject"):
        response = rita.post(f"/requests/{request_id}/{action}", data={"csrf_token": token, "comment": "me"})
        assert response.status_code == 403, action
        assert "only approvers and admins" in response.text
        api = rita.api("post", f"/api/v1/requests/{request_id}/{action}", {"comment": "me"})
        assert api.status_code == 403, action
    assert portal.rows("requests")[0]["status"] == "pending" and portal.ledger() == ledger


def test_nobody_decides_their_own_request(portal: Harness, approver: tuple[Person, PortalClient]) -> None:
    arno_person, arno = approver
    request_id = file_request(arno, make_csr(arno_person.subject))
    assert "Approve and issue" not in arno.get(f"/requests/{request_id}").text
    token = arno.csrf_token("/requests/new")
    response = arno.post(f"/requests/{request_id}/approve", data={"csrf_token": token, "comment": "me"})
    assert response.status_code == 403 and "their own request" in response.text
    assert portal.rows("requests")[0]["status"] == "pending"


def test_self_approval_when_the_configuration_allows_it(make_harness) -> None:
    portal = make_harness(allow_self_approval=True)
    admin_person = portal.person(ADMIN)
    admin = portal.client(admin_person)
    request_id = file_request(admin, make_csr(ADMIN))
    assert approve(admin, request_id).status_code == 302
    assert portal.rows("requests")[0]["status"] == "issued"


def test_reject_needs_a_comment_and_a_decision_is_final(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    _rita, rita = requester
    _arno, arno = approver
    request_id = file_request(rita, make_csr(RITA))
    ledger = portal.ledger()
    empty = arno.submit(f"/requests/{request_id}", f"/requests/{request_id}/reject", {"comment": " "})
    assert empty.status_code == 302
    assert "needs a comment" in arno.get(f"/requests/{request_id}").text
    assert portal.rows("requests")[0]["status"] == "pending"
    rejected = arno.submit(
        f"/requests/{request_id}", f"/requests/{request_id}/reject", {"comment": "unknown <b>key</b>"}
    )
    assert rejected.status_code == 302
    page = rita.get(f"/requests/{request_id}").text
    assert "rejected" in page and "unknown &lt;b&gt;key&lt;/b&gt;" in page
    again = arno.api("post", f"/api/v1/requests/{request_id}/approve", {})
    assert again.status_code == 409 and "already rejected" in again.json["error"]
    assert portal.ledger() == ledger  # nothing issued for a rejected request
    assert portal.rows("requests")[0]["serial"] is None


def test_downloads_certificate_chain_and_full_chain(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient], tmp_path
) -> None:
    _rita, rita = requester
    _arno, arno = approver
    request_id = file_request(rita, make_csr(RITA))
    approve(arno, request_id)
    serial = portal.rows("requests")[0]["serial"]
    crt = rita.get(f"/certificates/{serial}.crt")
    chain = rita.get(f"/certificates/{serial}-chain.pem")
    full = rita.get(f"/certificates/{serial}-fullchain.pem")
    assert crt.status_code == chain.status_code == full.status_code == 200
    assert f'filename="{serial}.crt"' in crt.headers["Content-Disposition"]
    cert = x509.load_pem_x509_certificate(crt.data)
    assert format(cert.serial_number, "x") == serial and cert.subject.rfc4514_string() == RITA
    assert full.text == crt.text + chain.text
    assert len(re.findall("BEGIN CERTIFICATE", chain.text)) == 2  # users CA and root
    (tmp_path / "leaf.pem").write_bytes(crt.data)
    (tmp_path / "chain.pem").write_bytes(chain.data)
    verified = subprocess.run(
        [
            "openssl", "verify", "-CAfile", str(portal.pki.root / "ca.crt"), "-untrusted", str(tmp_path / "chain.pem"),
            "-purpose", "sslclient", str(tmp_path / "leaf.pem"),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    downloads = [r for r in portal.rows("audit_events") if r["action"] == "certificate.download"]
    assert [r["detail"] for r in downloads] == ['{"kind": "crt"}', '{"kind": "chain"}', '{"kind": "fullchain"}']


def test_others_cannot_see_or_download_a_certificate(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    _rita, rita = requester
    _arno, arno = approver
    request_id = file_request(rita, make_csr(RITA))
    approve(arno, request_id)
    serial = portal.rows("requests")[0]["serial"]
    bob = portal.client(portal.person("CN=Bob,O=SecureStack"))
    for path in (f"/certificates/{serial}", f"/certificates/{serial}.crt", f"/api/v1/certificates/{serial}"):
        assert bob.get(path).status_code == 404, path
        assert arno.get(path).status_code == 200, path
    assert serial not in bob.get("/certificates").text


def test_a_short_validity_is_honoured(make_harness) -> None:
    portal = make_harness()
    portal.config = portal.config  # same database and CA
    from dataclasses import replace

    from securestack_portal import create_app

    portal.app = create_app(replace(portal.config, ca=replace(portal.config.ca, user_valid_days=7)))
    rita = portal.client(portal.person(RITA))
    arno = portal.client(portal.person("CN=Arno,O=SecureStack", role="approver"))
    request_id = file_request(rita, make_csr(RITA))
    assert approve(arno, request_id).status_code == 302
    serial = portal.rows("requests")[0]["serial"]
    cert = x509.load_pem_x509_certificate(rita.get(f"/certificates/{serial}.crt").data)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 7 <= lifetime.days <= 8
