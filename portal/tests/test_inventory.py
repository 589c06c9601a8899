"""The inventory of everything the users CA issued, and its expiry view."""

from __future__ import annotations

import datetime
import re

from securestack_pki._pki_ca import CertificateAuthority, SignSpec

from conftest import ADMIN, Harness, make_csr


def issue(portal: Harness, cn: str, days: int, days_ago: int = 0) -> str:
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days_ago)
    ca = CertificateAuthority.open(str(portal.users_ca))
    spec = SignSpec(csr=make_csr(f"CN={cn},O=SecureStack"), profile="client", valid_days=days)
    return ca.sign([spec], now=now, renew_before_days=0)[0].serial or ""


def test_the_expiry_view_sorts_by_expiry_and_counts_each_status(portal: Harness) -> None:
    admin_person = portal.person(ADMIN)  # valid, 365 days
    soon = issue(portal, "Soon", days=10)
    gone = issue(portal, "Gone", days=5, days_ago=20)
    later = issue(portal, "Later", days=100)
    revoked = issue(portal, "Revoked", days=200)
    CertificateAuthority.open(str(portal.users_ca)).revoke(serial=revoked, reason="superseded")
    admin = portal.client(admin_person)
    page = admin.get("/certificates").text
    counts = {status: number for number, status in re.findall(r'<span class="number">(\d+)</span> (\w+)', page)}
    assert counts == {"valid": "2", "expiring": "1", "expired": "1", "revoked": "1"}
    order = re.findall(r'<span class="badge badge-(\w+)">', page)
    assert order == ["expired", "expiring", "valid", "revoked", "valid"]  # by expiry: -15, 10, 100, 200, 365 days
    rows = re.findall(r'<tr class="row-(\w+)">', page)
    assert rows == order
    listed = [c["serial"] for c in admin.api("get", "/api/v1/certificates").json]
    assert listed == [gone, soon, later, revoked, admin_person.serial]
    statuses = {c["serial"]: c["status"] for c in admin.api("get", "/api/v1/certificates").json}
    assert statuses[soon] == "expiring" and statuses[gone] == "expired" and statuses[revoked] == "revoked"
    assert "outside the portal" in page  # issued by Ansible, not through a request


def test_a_requester_sees_only_their_own_certificates(portal: Harness) -> None:
    issue(portal, "Someone", days=30)
    rita_person = portal.person("CN=Rita,O=SecureStack")
    rita = portal.client(rita_person)
    listed = rita.api("get", "/api/v1/certificates").json
    assert [c["serial"] for c in listed] == [rita_person.serial]
    assert "Your certificates" in rita.get("/certificates").text
