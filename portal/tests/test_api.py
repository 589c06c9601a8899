"""The JSON API: the whole flow, and the OpenAPI document describes exactly the routes there are."""

from __future__ import annotations

import re

from conftest import ADMIN, Harness, Person, PortalClient, make_csr

RITA = "CN=Rita Requester,O=SecureStack"


def test_the_whole_flow_through_the_api(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    rita_person, rita = requester
    arno_person, arno = approver
    me = rita.api("get", "/api/v1/me").json
    assert me == {**me, "subject": RITA, "role": "requester", "serial": rita_person.serial}
    filed = rita.api("post", "/api/v1/requests", {"csr": make_csr(RITA)})
    assert filed.status_code == 201 and filed.json["status"] == "pending" and filed.json["owner"] == RITA
    request_id = filed.json["id"]
    assert [r["id"] for r in arno.api("get", "/api/v1/requests?status=pending").json] == [request_id]
    approved = arno.api("post", f"/api/v1/requests/{request_id}/approve", {"comment": "fine"})
    assert approved.status_code == 200
    assert approved.json["status"] == "issued" and approved.json["decided_by"] == arno_person.subject
    serial = approved.json["serial"]
    cert = rita.api("get", f"/api/v1/certificates/{serial}").json
    assert cert["status"] == "valid" and cert["subject"] == RITA and 364 <= cert["days_left"] <= 365
    assert cert["fullchain"] == cert["certificate"] + cert["chain"]
    revoked = rita.api("post", f"/api/v1/certificates/{serial}/revoke", {"reason": "superseded"})
    assert revoked.json["status"] == "revoked" and revoked.json["revocation_reason"] == "superseded"
    actions = [e["action"] for e in arno.api("get", "/api/v1/audit?limit=5").json]
    assert actions == [
        "certificate.revoke",
        "certificate.download",
        "request.approve",
        "request.submit",
        "user.first_seen",
    ]


def test_unknown_things_answer_json_404(requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    assert client.api("get", "/api/v1/requests/999").status_code == 404
    assert client.api("get", "/api/v1/certificates/abcdef").status_code == 404
    missing = client.api("get", "/api/v1/nothing")
    assert missing.status_code == 404 and "error" in missing.json
    assert client.api("get", "/api/v1/requests?status=bogus").status_code == 400


def test_the_openapi_document_matches_the_routes(portal: Harness) -> None:
    client = portal.client(None)  # served without a personal identity, like the CRL
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200 and document.mimetype == "application/json"
    spec = document.json
    assert spec["openapi"].startswith("3.1") and spec["servers"] == [{"url": "/api/v1"}]
    documented = {
        (method.upper(), path) for path, item in spec["paths"].items() for method in item if method != "parameters"
    }
    routes = set()
    for rule in portal.app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            routes |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routes
    for item in spec["paths"].values():
        for operation in item.values():
            for reference in re.findall(r"'\$ref': '#/components/schemas/(\w+)'", str(operation)):
                assert reference in spec["components"]["schemas"]


def test_roles_through_the_api(portal: Harness) -> None:
    admin = portal.client(portal.person(ADMIN))
    rita_person = portal.person(RITA)
    rita = portal.client(rita_person)
    assert rita.api("get", "/api/v1/users").status_code == 403
    assert rita.api("get", "/api/v1/audit").status_code == 403
    assert rita.api("put", "/api/v1/users", {"subject": RITA, "role": "admin"}).status_code == 403
    made = admin.api("put", "/api/v1/users", {"subject": RITA, "role": "approver"})
    assert made.status_code == 200 and made.json["role"] == "approver"
    assert rita.api("get", "/api/v1/me").json["role"] == "approver"
    assert rita.api("get", "/api/v1/audit").status_code == 200
    assert {u["subject"] for u in admin.api("get", "/api/v1/users").json} == {ADMIN, RITA}
