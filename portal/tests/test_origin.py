"""The public origin: the Host the browser used (port included, as the web tier forwards it) must be trusted,
forms must come from that very origin, and absolute URLs carry the port the browser used."""

from __future__ import annotations

from urllib.parse import urljoin

import pytest
from flask import url_for

from conftest import Harness, Person, PortalClient, make_csr, portal_config
from securestack_portal.config import ConfigError, parse
from securestack_portal.origins import host_is_trusted, origin_of

RITA = "CN=Rita Requester,O=SecureStack"
# What nginx (Host/X-Forwarded-Host $http_host) and Apache (mod_proxy's X-Forwarded-Host) pass on for
# https://localhost:8443/, the demo's port-forward to nginx's 443.
FORWARDED = {"X-Forwarded-Host": "localhost:8443"}
PAGE = "https://localhost:8443/requests/new"


def through(host: str, referer: str | None = None, **extra: str) -> dict:
    return {"X-Forwarded-Host": host, "Referer": referer or f"https://{host}/requests/new", **extra}


def test_a_form_through_a_port_forward_is_accepted(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    token = client.csrf_token("/requests/new")
    response = client.post(
        "/requests/new", data={"csrf_token": token, "csr": make_csr(RITA)}, headers={**FORWARDED, "Referer": PAGE}
    )
    assert response.status_code == 302, response.text
    # The redirect lands on the origin the browser used (a relative Location resolves against it).
    assert urljoin(PAGE, response.headers["Location"]).startswith("https://localhost:8443/requests/")
    # Browsers send Origin with a form post: it alone decides when present.
    with_origin = client.post(
        "/requests/new",
        data={"csrf_token": token, "csr": make_csr(RITA)},
        headers={**FORWARDED, "Referer": PAGE, "Origin": "https://localhost:8443"},
    )
    assert with_origin.status_code == 302, with_origin.text
    assert len(portal.rows("requests")) == 2


def test_an_untrusted_host_is_refused_naming_it_and_the_variable(
    portal: Harness, requester: tuple[Person, PortalClient]
) -> None:
    _rita, client = requester
    token = client.csrf_token("/requests/new")
    for host in ("evil.example", "evil.example:8443", "localhost:9443", "localhost"):
        page = client.get("/", headers=through(host))
        assert page.status_code == 400, (host, page.text)
        assert f"this portal does not answer to the host &#39;{host}&#39;" in page.text
        assert "portal_trusted_hosts" in page.text and "localhost:8443" in page.text
        form = client.post("/requests/new", data={"csrf_token": token, "csr": make_csr(RITA)}, headers=through(host))
        assert form.status_code == 400 and "portal_trusted_hosts" in form.text
        api = client.get("/api/v1/me", headers=through(host))
        assert api.status_code == 400 and f"the host '{host}'" in api.json["error"]
    assert portal.rows("requests") == []


def test_an_entry_without_a_port_trusts_every_port(requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    for host in ("portal.example.org", "portal.example.org:443", "portal.example.org:9443", "PORTAL.example.org"):
        assert client.get("/", headers=through(host)).status_code == 200, host


@pytest.mark.parametrize(
    ("headers", "source", "header"),
    [
        ({"Referer": "https://evil.test/form"}, "https://evil.test", "Referer"),
        # the port-less name of the same host (what nginx forwarded before) is another origin
        ({"Referer": "https://localhost/requests/new"}, "https://localhost", "Referer"),
        # a trusted host, but not the one this request was made to
        ({"Referer": "https://portal.test/requests/new"}, "https://portal.test", "Referer"),
        ({"Referer": PAGE, "Origin": "https://evil.test"}, "https://evil.test", "Origin"),
        ({"Referer": "http://localhost:8443/requests/new"}, "http://localhost:8443", "Referer"),
    ],
)
def test_a_form_from_another_origin_is_refused_and_writes_nothing(
    portal: Harness, requester: tuple[Person, PortalClient], headers: dict, source: str, header: str
) -> None:
    _rita, client = requester
    token = client.csrf_token("/requests/new")
    before = (portal.rows("requests"), portal.rows("audit_events"), portal.ledger())
    response = client.post(
        "/requests/new", data={"csrf_token": token, "csr": make_csr(RITA)}, headers={**FORWARDED, **headers}
    )
    assert response.status_code == 400
    assert (
        f"the form was refused: it was sent from {source} ({header} header), not from this portal&#39;s own"
        " origin https://localhost:8443" in response.text
    )
    assert (portal.rows("requests"), portal.rows("audit_events"), portal.ledger()) == before
    assert portal.rows("requests") == []


def test_a_form_without_origin_or_referer_is_refused(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _rita, client = requester
    token = client.csrf_token("/requests/new")
    response = client.post(
        "/requests/new",
        data={"csrf_token": token, "csr": make_csr(RITA)},
        headers={**FORWARDED, "Referer": "", "Origin": "null"},
    )
    assert response.status_code == 400
    assert "neither an Origin nor a Referer" in response.text and "nginx_referrer_policy" in response.text
    assert portal.rows("requests") == []


def test_absolute_urls_carry_the_port(make_harness) -> None:
    portal = make_harness()

    @portal.app.route("/test-absolute-url")
    def absolute_url() -> str:
        return url_for("web.request_new", _external=True)

    client = portal.client(portal.person(RITA))
    assert client.get("/test-absolute-url", headers=FORWARDED).text == "https://localhost:8443/requests/new"
    assert client.get("/test-absolute-url").text == "https://portal.test/requests/new"


def test_trusted_hosts_are_required_and_checked(tmp_path) -> None:
    config = portal_config(tmp_path, tmp_path / "users-ca")
    config["web"] = {"trusted_hosts": []}
    with pytest.raises(ConfigError, match=r"\[web\] trusted_hosts is required.*portal_trusted_hosts"):
        parse(config)
    del config["web"]
    with pytest.raises(ConfigError, match=r"\[web\] trusted_hosts is required"):
        parse(config)
    for wrong in ("https://portal.test", "portal.test/", "portal.test:99999", "a b"):
        config["web"] = {"trusted_hosts": [wrong]}
        with pytest.raises(ConfigError, match="is not a host name or address with an optional port"):
            parse(config)
    config["web"] = {"trusted_hosts": ["Portal.Test", "portal.test:8443", "192.0.2.1", "[2001:db8::1]:8443"]}
    assert parse(config).web.trusted_hosts == ("portal.test", "portal.test:8443", "192.0.2.1", "[2001:db8::1]:8443")


@pytest.mark.parametrize(
    ("host", "trusted"),
    [
        ("localhost:8443", True),
        ("LOCALHOST:8443", True),
        ("localhost", False),
        ("localhost:443", False),
        ("portal.test", True),
        ("portal.test:443", True),
        ("portal.test:1", True),
        ("sub.portal.test", False),
        ("portal.test.evil", False),
        ("[2001:db8::1]", True),
        ("[2001:db8::1]:8443", False),
        ("", False),
        ("portal.test:x", False),
    ],
)
def test_host_matching(host: str, trusted: bool) -> None:
    assert host_is_trusted(host, ("localhost:8443", "portal.test", "[2001:db8::1]:443")) is trusted


def test_origins_leave_default_ports_out() -> None:
    assert origin_of("https://Localhost:443/x?y") == "https://localhost"
    assert origin_of("https://localhost:8443/x") == "https://localhost:8443"
    assert origin_of("http://localhost:80/") == "http://localhost"
    assert origin_of("https://[2001:db8::1]:8443/") == "https://[2001:db8::1]:8443"
    assert origin_of("ftp://localhost/") is None
    assert origin_of("not a url") is None
