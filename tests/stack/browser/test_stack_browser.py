# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The full stack in a real browser: Playwright for Python driving Debian's chromium.

Run by tests/stack/test_stack.py (scripts/demo-test.sh) with the portal's venv
(.venv-portal, where playwright is), against the demo's stack, through
each web server in turn (Apache, then nginx), presenting client
certificates of the users CA:

1. the first admin logs in with the PKCS#12 file the portal role left on
   the controller and enrols a person (the portal makes the key and hands it
   over once as a PKCS#12 file, which the browser downloads);
2. that person logs in with the file and submits a CSR for a key made here;
3. the admin approves the request;
4. the person downloads the certificate: it certifies the key, for client
   authentication only, and the users CA signed it.

Then, through nginx, the admin revokes the certificate of the person
enrolled through nginx (reason keyCompromise) and finds the revocation in
the audit log. The people's PKCS#12 files and what happened go to
STACK_BROWSER_STATE (a JSON report), for the checks after the CRL push.

Environment:
  STACK_BROWSER_URLS       JSON {"apache": "https://localhost:9443", "nginx": "https://localhost:8443"}
  STACK_BROWSER_ADMIN_P12  the admin's PKCS#12 file; STACK_BROWSER_ADMIN_PASSPHRASE_FILE its passphrase
  STACK_BROWSER_ROOT_CA    the root CA (PEM): the only trust anchor for the web servers
  STACK_BROWSER_STATE      directory for the report and the people's files
  STACK_BROWSER_ARTIFACTS  directory for screenshots
  STACK_BROWSER_CHROMIUM   the browser (default /usr/bin/chromium)

The page helpers (open_page, submit_csr, approve, download_certificate...)
come from the portal's own browser test, tests/browser/test_portal_browser.py.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "browser"))
# The portal's page helpers.
import test_portal_browser as portal_pages
from test_portal_browser import (
    approve,
    context_for,
    download_certificate,
    flash,
    signed_in_as,
    submit_csr,
)


def open_page(context, url: str):
    """A page at `url` (HTTP 200), as the portal's helper opens it, once more if the host's network changed.

    Chromium aborts requests in flight with net::ERR_NETWORK_CHANGED when
    an interface of the host appears or goes, which Docker does for every
    container started or stopped (other scenarios, on a shared machine).
    Only navigations (GET) are retried; a form post is never sent twice.
    """
    from playwright.sync_api import Error as PlaywrightError

    page = context.new_page()
    for attempt in range(3):
        try:
            response = page.goto(url)
            break
        except PlaywrightError as exc:
            if "ERR_NETWORK_CHANGED" not in str(exc) or attempt == 2:
                raise
            time.sleep(1)
    assert response is not None
    assert response.status == 200, f"{url}: HTTP {response.status} (503: the server's certificate did not verify)"
    return page


# The portal's helpers (submit_csr, approve, ...) open their pages with it too.
portal_pages.open_page = open_page

REQUIRED = (
    "STACK_BROWSER_URLS",
    "STACK_BROWSER_ADMIN_P12",
    "STACK_BROWSER_ADMIN_PASSPHRASE_FILE",
    "STACK_BROWSER_ROOT_CA",
    "STACK_BROWSER_STATE",
)
missing = [name for name in REQUIRED if not os.environ.get(name)]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs the default scenario's stack: set {', '.join(missing)}")

ADMIN_SUBJECT = "CN=admin,O=SecureStack"
# Each web server in turn; the revocation goes through the last one.
SERVERS = ("apache", "nginx")
REVOKE_THROUGH = "nginx"


def person(server: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SecureStack"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Stack User {server}"),
        ]
    )


@pytest.fixture(scope="module")
def env() -> dict:
    state = Path(os.environ["STACK_BROWSER_STATE"])
    state.mkdir(parents=True, exist_ok=True)
    artifacts = Path(os.environ.get("STACK_BROWSER_ARTIFACTS") or state / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    return {
        "urls": json.loads(os.environ["STACK_BROWSER_URLS"]),
        "admin_p12": os.environ["STACK_BROWSER_ADMIN_P12"],
        "admin_passphrase": Path(os.environ["STACK_BROWSER_ADMIN_PASSPHRASE_FILE"]).read_text().strip(),
        "root_ca": os.environ["STACK_BROWSER_ROOT_CA"],
        "state": state,
        "artifacts": artifacts,
        "chromium": os.environ.get("STACK_BROWSER_CHROMIUM", "/usr/bin/chromium"),
        "report": {"people": {}},
    }


@pytest.fixture(scope="module")
def browser(env: dict) -> Iterator:
    from playwright.sync_api import sync_playwright

    # Read by the Playwright driver (Node) when it starts: our root is the
    # trust anchor of the TLS client that presents the client certificates.
    os.environ["NODE_EXTRA_CA_CERTS"] = env["root_ca"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=env["chromium"])
        yield launched
        launched.close()
    (env["state"] / "report.json").write_text(json.dumps(env["report"], indent=2))


def settings_for(env: dict, server: str) -> dict:
    """The shape the portal's page helpers take."""
    return {"url": env["urls"][server].rstrip("/")}


def as_admin(browser, env: dict, server: str):
    admin = context_for(browser, settings_for(env, server), env["admin_p12"], env["admin_passphrase"])
    page = open_page(admin, f"{env['urls'][server]}/")
    assert ADMIN_SUBJECT in signed_in_as(page)
    assert page.locator("p.who .role").inner_text() == "admin"
    page.close()
    return admin


def enrol(admin, env: dict, server: str) -> tuple[Path, str, x509.Certificate, x509.Certificate]:
    """The admin has the portal make a person's key and certificate; the browser downloads the PKCS#12 file."""
    passphrase = secrets.token_urlsafe(18)
    page = open_page(admin, f"{env['urls'][server]}/requests/new")
    page.select_option("select[name=key_type]", "ecdsa-p256")
    page.fill("input[name=common_name]", f"Stack User {server}")
    page.fill("input[name=organization]", "SecureStack")
    page.fill("input[name=passphrase]", passphrase)
    page.fill("input[name=confirm]", passphrase)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Make the key and download the PKCS#12 file").click()
    p12 = env["state"] / f"{server}-user.p12"
    download_info.value.save_as(p12)
    page.close()
    key, cert, chain = pkcs12.load_key_and_certificates(p12.read_bytes(), passphrase.encode())
    assert key is not None
    assert cert is not None
    assert cert.subject == person(server)
    users_ca = chain[0]
    cert.verify_directly_issued_by(users_ca)
    return p12, passphrase, cert, users_ca


@pytest.mark.parametrize("server", SERVERS)
def test_enrol_request_approve_download(browser, env: dict, server: str, tmp_path: Path) -> None:
    settings = settings_for(env, server)
    # 1. The first admin logs in with the role's PKCS#12 file and enrols a person.
    admin = as_admin(browser, env, server)
    p12, passphrase, enrolled, users_ca = enrol(admin, env, server)

    # 2. The person logs in with the file the portal made, and asks for a
    #    certificate for a key of their own (made here, never sent).
    user = context_for(browser, settings, str(p12), passphrase)
    page = open_page(user, f"{settings['url']}/")
    assert person(server).rfc4514_string() in signed_in_as(page)
    page.close()
    laptop_key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(person(server)).sign(laptop_key, hashes.SHA256())
    request_id = submit_csr(user, settings, csr.public_bytes(serialization.Encoding.PEM).decode())

    # 3. The admin approves it.
    approve(admin, settings, request_id)

    # 4. The person downloads the certificate: it certifies the laptop's key,
    #    for client authentication only, and the users CA signed it.
    issued = download_certificate(user, settings, request_id, tmp_path)
    assert issued.public_key() == laptop_key.public_key()
    assert issued.subject == person(server)
    issued.verify_directly_issued_by(users_ca)
    usages = issued.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    env["report"]["people"][server] = {
        "p12": str(p12),
        "passphrase": passphrase,
        "serial": format(enrolled.serial_number, "x"),
        "request": request_id,
        "issued_serial": format(issued.serial_number, "x"),
    }
    user.close()
    admin.close()


def test_admin_revokes_a_certificate_and_the_audit_log_shows_it(browser, env: dict) -> None:
    revoked = env["report"]["people"].get(REVOKE_THROUGH)
    assert revoked, "the enrolment through nginx did not happen"
    serial = revoked["serial"]
    url = env["urls"][REVOKE_THROUGH]
    admin = as_admin(browser, env, REVOKE_THROUGH)
    page = open_page(admin, f"{url}/certificates/{serial}")
    page.select_option("select[name=reason]", "keyCompromise")
    page.get_by_role("button", name="Revoke this certificate").click()
    assert f"Certificate {serial} revoked" in flash(page)
    assert page.locator("h1 .badge").inner_text() == "revoked"
    assert "keyCompromise" in page.locator("dl.facts").inner_text()

    page = open_page(admin, f"{url}/audit")
    rows = page.locator("table.audit tbody tr")
    entries = [rows.nth(i).inner_text() for i in range(rows.count())]
    revocations = [row for row in entries if "certificate.revoke" in row and serial in row]
    assert revocations, entries[:10]
    assert ADMIN_SUBJECT in revocations[0]
    assert re.search(r"keyCompromise", revocations[0]), revocations[0]
    screenshot = env["artifacts"] / "stack-audit.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    env["report"]["revoked"] = serial
    admin.close()
