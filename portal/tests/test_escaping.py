"""Subject fields are escaped everywhere they are shown; the pages carry no inline script or style."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from conftest import ADMIN, Harness, make_csr

TEMPLATES = Path(__file__).resolve().parents[1] / "src" / "securestack_portal" / "templates"
SCRIPT = "<script>alert(1)</script>"
EVIL = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, '"><img src=x onerror=alert(2)>'),
        x509.NameAttribute(NameOID.COMMON_NAME, SCRIPT),
    ]
)


def test_a_hostile_subject_is_escaped_on_every_page(portal: Harness) -> None:
    admin = portal.client(portal.person(ADMIN))
    evil_person = portal.person(EVIL.rfc4514_string())
    evil = portal.client(evil_person)
    filed = evil.api("post", "/api/v1/requests", {"csr": make_csr(EVIL)})
    assert filed.status_code == 201, filed.json
    request_id = filed.json["id"]
    rejected = admin.api("post", f"/api/v1/requests/{request_id}/reject", {"comment": SCRIPT})
    assert rejected.status_code == 200
    pages = [
        "/",
        "/requests",
        f"/requests/{request_id}",
        "/certificates",
        f"/certificates/{evil_person.serial}",
        "/audit",
        "/users",
    ]
    for path in pages:
        for client in (admin, evil):
            response = client.get(path)
            if response.status_code == 403:  # the audit log and users page are not for a requester
                continue
            assert response.status_code == 200, path
            assert "<script" not in response.text and "<img" not in response.text, path
    shown = "\\&lt;script\\&gt;alert(1)\\&lt;/script\\&gt;"  # RFC 4514 escapes <>, then HTML does
    assert shown in admin.get("/certificates").text
    assert shown in evil.get("/").text  # the signed-in banner
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin.get(f"/requests/{request_id}").text  # the comment


def test_templates_have_no_inline_script_or_style() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text()
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", text, re.I), template.name


def test_pages_carry_the_strict_headers(portal: Harness) -> None:
    response = portal.client(portal.person(ADMIN)).get("/")
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert re.search(r'<link rel="stylesheet" href="/static/style.css', response.text)
