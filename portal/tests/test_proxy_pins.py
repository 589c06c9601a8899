"""The proxy is recognised by its pinned key (issue 12, finding 2), not by its issuer, CN and clientAuth alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import ADMIN, PROXY_CN, PROXY_SPKI_SHA256, Harness, _services_cert, portal_config
from securestack_portal.config import ConfigError, parse
from securestack_portal.identity import spki_sha256

PIN_FILE_LINES = f"# Written by Ansible\n{PROXY_SPKI_SHA256} web1\n\n{'AB:' * 31}AB portal_proxy_spki_sha256\n"


def without_inline_pins(data: dict) -> dict:
    data["auth"].pop("proxy_spki_sha256")
    return data


def test_the_role_s_pin_file_is_read_with_the_inline_pins(tmp_path: Path) -> None:
    pins = tmp_path / "proxy-keys.sha256"
    pins.write_text(PIN_FILE_LINES)
    data = portal_config(tmp_path, tmp_path / "ca", proxy_spki_sha256=["cd" * 32], proxy_spki_sha256_file=str(pins))
    assert parse(data).auth.proxy_spki_sha256 == ("cd" * 32, PROXY_SPKI_SHA256, "ab" * 32)


def test_the_pin_is_the_sha256_of_the_subject_public_key_info(portal: Harness) -> None:
    cert = x509.load_der_x509_certificate(portal.pki.proxy_der)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert spki_sha256(cert) == PROXY_SPKI_SHA256
    assert len(spki) > 32


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({}, r"proxy_spki_sha256 \(or proxy_spki_sha256_file\) is required"),
        ({"proxy_spki_sha256": ["abc"]}, "'abc' is not a SHA-256 in hex"),
        ({"proxy_spki_sha256": "ab" * 32}, "auth.proxy_spki_sha256 must be a list of strings"),
        ({"proxy_spki_sha256_file": "/nonexistent/proxy-keys.sha256"}, "proxy_spki_sha256_file /nonexistent"),
    ],
)
def test_pins_that_cannot_work_are_refused(tmp_path: Path, auth: dict, message: str) -> None:
    data = without_inline_pins(portal_config(tmp_path, tmp_path / "ca"))
    data["auth"].update(auth)
    with pytest.raises(ConfigError, match=message):
        parse(data)


def test_another_key_with_the_web_hosts_name_is_refused(portal: Harness) -> None:
    person = portal.person(ADMIN)
    # the services CA's client certificate of a second service on web1, named after the host
    impostor = _services_cert(portal.pki.services, PROXY_CN, "client")
    response = portal.client(person, peer=impostor).get("/api/v1/me")
    assert response.status_code == 403
    assert "is not the key of the web tier's proxy certificate" in response.get_json()["error"]
    assert portal.client(person).get("/api/v1/me").status_code == 200


def test_no_pin_yet_refuses_every_proxy_and_says_how_to_pin(make_harness, tmp_path: Path) -> None:
    empty = tmp_path / "proxy-keys.sha256"
    empty.write_text("# no web host has its proxy certificate yet\n")
    portal = make_harness(proxy_spki_sha256=[], proxy_spki_sha256_file=str(empty))
    response = portal.client(portal.person(ADMIN)).get("/api/v1/me")
    assert response.status_code == 403
    assert "no key of the web tier's proxy certificates is pinned yet" in response.get_json()["error"]
