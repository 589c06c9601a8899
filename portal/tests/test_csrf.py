"""CSRF: every form needs its token and a same-origin Referer; the API needs JSON and refuses cross-site calls."""

from __future__ import annotations

import re

import pytest

from conftest import ADMIN, Harness, Person, PortalClient, make_csr

RITA = "CN=Rita Requester,O=SecureStack"
FORMS = [
    ("/requests/new", {"csr": "x"}),
    ("/requests/generate", {"passphrase": "p" * 12, "confirm": "p" * 12, "key_type": "ecdsa-p256"}),
    ("/requests/1/approve", {"comment": ""}),
    ("/requests/1/reject", {"comment": "no"}),
    ("/certificates/abc/revoke", {"reason": "unspecified"}),
    ("/users", {"subject": "CN=X", "role": "admin"}),
]


@pytest.mark.parametrize(("path", "data"), FORMS)
def test_every_form_refuses_a_post_without_its_token(portal: Harness, path: str, data: dict) -> None:
    admin = portal.client(portal.person(ADMIN))
    admin.get("/")
    before = (portal.rows("requests"), portal.rows("audit_events"), portal.rows("users"), portal.ledger())
    response = admin.post(path, data=data)
    assert response.status_code == 400
    assert "The CSRF token is missing." in response.text
    assert (portal.rows("requests"), portal.rows("audit_events"), portal.rows("users"), portal.ledger()) == before


def test_a_wrong_or_foreign_token_is_refused(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    client.csrf_token("/requests/new")  # the session exists, the token is forged
    wrong = client.post("/requests/new", data={"csrf_token": "forged", "csr": make_csr(RITA)})
    assert wrong.status_code == 400 and "The CSRF token is invalid." in wrong.text
    other = portal.client(portal.person("CN=Other,O=SecureStack"))
    foreign = other.csrf_token("/requests/new")  # valid, but bound to another session
    client.csrf_token("/requests/new")
    response = client.post("/requests/new", data={"csrf_token": foreign, "csr": make_csr(RITA)})
    assert response.status_code == 400 and "The CSRF tokens do not match." in response.text
    assert portal.rows("requests") == []


def test_a_cross_origin_referer_is_refused(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    token = client.csrf_token("/requests/new")
    response = client.post(
        "/requests/new", data={"csrf_token": token, "csr": make_csr(RITA)}, headers={"Referer": "https://evil.test/"}
    )
    assert response.status_code == 400
    assert "the form was refused: it was sent from https://evil.test (Referer header)" in response.text
    assert portal.rows("requests") == []
    # the public name of the web tier, passed as X-Forwarded-Host, is the host the Referer must match
    forwarded = client.post(
        "/requests/new",
        data={"csrf_token": token, "csr": make_csr(RITA)},
        headers={"Referer": "https://portal.example.org/requests/new", "X-Forwarded-Host": "portal.example.org"},
    )
    assert forwarded.status_code == 302


def test_the_session_cookie_is_secure_httponly_strict(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    response = client.get("/requests/new")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-portal-session=")
    assert re.search(r"; Secure", cookie) and re.search(r"; HttpOnly", cookie)
    assert "SameSite=Strict" in cookie and "Path=/" in cookie and "Domain" not in cookie


def test_the_api_needs_a_json_body_for_changes(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    form = client.post("/api/v1/requests", data={"csr": make_csr(RITA)})
    assert form.status_code == 415 and "application/json" in form.json["error"]
    text = client.post("/api/v1/requests", data=make_csr(RITA), content_type="text/plain")
    assert text.status_code == 415
    assert portal.rows("requests") == []
    ok = client.api("post", "/api/v1/requests", {"csr": make_csr(RITA)})  # no CSRF token needed
    assert ok.status_code == 201


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_the_api_refuses_cross_site_calls(portal: Harness, requester: tuple[Person, PortalClient], site: str) -> None:
    _rita, client = requester
    response = client.post("/api/v1/requests", json={"csr": make_csr(RITA)}, headers={"Sec-Fetch-Site": site})
    assert response.status_code == 403 and "cross-site" in response.json["error"]
    assert client.get("/api/v1/me", headers={"Sec-Fetch-Site": site}).status_code == 403
    assert client.get("/api/v1/me", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    assert portal.rows("requests") == []


def test_the_api_refuses_a_body_that_is_not_an_object(requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    response = client.api("post", "/api/v1/requests", ["not", "an", "object"])
    assert response.status_code == 400 and "JSON object" in response.json["error"]
    wrong_type = client.api("post", "/api/v1/requests", {"csr": 42})
    assert wrong_type.status_code == 400 and "csr must be a string" in wrong_type.json["error"]
