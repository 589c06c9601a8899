# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The portal in a real browser: Playwright for Python driving Debian's chromium.

Runs against a deployed stack (tests/stack/test_portal.py runs it on the
demo's bed, through nginx and through Apache), through the web tier,
presenting client certificates of the users CA:

1. the first admin logs in with the PKCS#12 file the portal role left on the
   controller, and enrols Alice: the portal makes her key and hands it over
   once as a PKCS#12 file, which the browser downloads;
2. Alice logs in with that file, and submits a CSR for a key made here;
3. the admin approves the request;
4. Alice downloads the certificate, which must certify her key and come from
   the users CA;
5. a screenshot of the admin's inventory page is saved as a test artifact;
6. a browser without a client certificate is turned away by the web tier.

Run with the portal's venv: .venv-portal/bin/pytest tests/browser, with
  PORTAL_BROWSER_URL          https://<web tier address> (no path)
  PORTAL_BROWSER_ADMIN_P12    the admin's PKCS#12 file
  PORTAL_BROWSER_ADMIN_PASSPHRASE_FILE  its passphrase
  PORTAL_BROWSER_ROOT_CA      the root CA certificate (PEM): the only trust anchor for the server
  PORTAL_BROWSER_ARTIFACTS    directory for the screenshot (default .cache/artifacts)
  PORTAL_BROWSER_CHROMIUM     the browser (default /usr/bin/chromium, Debian's package)

Playwright presents client certificates through its own TLS client, which
verifies the server against Node's trust store: the root CA is added to it
with NODE_EXTRA_CA_CERTS (set before the driver starts), so a server that
does not chain to our root fails the test (Playwright answers 503).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

REQUIRED = (
    "PORTAL_BROWSER_URL",
    "PORTAL_BROWSER_ADMIN_P12",
    "PORTAL_BROWSER_ADMIN_PASSPHRASE_FILE",
    "PORTAL_BROWSER_ROOT_CA",
)
ROOT = Path(__file__).resolve().parents[2]
# A new person for every run: the portal enrols a subject at once only while
# nobody holds it (enrol_new_subjects); after one run Alice has an account, and
# a second enrolment in her name waits for another approver, as it must.
ALICE_CN = f"Alice Example {secrets.token_hex(4)}"
ALICE_DN = f"CN={ALICE_CN},O=SecureStack"
ALICE = x509.Name(
    [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SecureStack"),
        x509.NameAttribute(NameOID.COMMON_NAME, ALICE_CN),
    ]
)
TIMEOUT_MS = 60_000

missing = [name for name in REQUIRED if not os.environ.get(name)]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs a deployed portal: set {', '.join(missing)}")


@pytest.fixture(scope="module")
def settings() -> dict:
    artifacts = Path(os.environ.get("PORTAL_BROWSER_ARTIFACTS") or ROOT / ".cache" / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    return {
        "url": os.environ["PORTAL_BROWSER_URL"].rstrip("/"),
        "admin_p12": os.environ["PORTAL_BROWSER_ADMIN_P12"],
        "admin_passphrase": Path(os.environ["PORTAL_BROWSER_ADMIN_PASSPHRASE_FILE"]).read_text().strip(),
        "root_ca": os.environ["PORTAL_BROWSER_ROOT_CA"],
        "artifacts": artifacts,
        "chromium": os.environ.get("PORTAL_BROWSER_CHROMIUM", "/usr/bin/chromium"),
    }


@pytest.fixture(scope="module")
def browser(settings: dict) -> Iterator:
    from playwright.sync_api import sync_playwright

    # Read by the Playwright driver (Node) when it starts: the root CA is the
    # trust anchor of the TLS client that presents the client certificates.
    os.environ["NODE_EXTRA_CA_CERTS"] = settings["root_ca"]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=settings["chromium"])
        yield launched
        launched.close()


def context_for(browser, settings: dict, pfx_path: str, passphrase: str):
    context = browser.new_context(
        client_certificates=[{"origin": settings["url"], "pfxPath": pfx_path, "passphrase": passphrase}],
        accept_downloads=True,
        viewport={"width": 1400, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    return context


def open_page(context, url: str):
    page = context.new_page()
    response = page.goto(url)
    assert response is not None
    assert response.status == 200, f"{url}: HTTP {response.status} (503: the server's certificate did not verify)"
    return page


def click_for_download(page, button, target: Path) -> None:
    """Click, expect a download and save it; if none comes, fail with what the page says instead."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        with page.expect_download() as download_info:
            button.click()
        download_info.value.save_as(target)
    except PlaywrightTimeout:
        pytest.fail(f"no download from {page.url}; the page says: {page.locator('main').inner_text()[:600]}")


def signed_in_as(page) -> str:
    return page.locator("p.who").inner_text()


def flash(page) -> str:
    return page.locator("p.flash").first.inner_text()


def enrol_alice(admin, settings: dict, tmp_path: Path) -> tuple[Path, str, x509.Certificate]:
    """The admin has the portal make Alice's key and certificate; the browser downloads the PKCS#12 file."""
    passphrase = secrets.token_urlsafe(18)
    page = open_page(admin, f"{settings['url']}/requests/new")
    page.select_option("select[name=key_type]", "ecdsa-p256")
    page.fill("input[name=common_name]", ALICE_CN)
    page.fill("input[name=organization]", "SecureStack")
    page.fill("input[name=passphrase]", passphrase)
    page.fill("input[name=confirm]", passphrase)
    p12 = tmp_path / "alice.p12"
    click_for_download(page, page.get_by_role("button", name="Make the key and download the PKCS#12 file"), p12)
    key, cert, chain = pkcs12.load_key_and_certificates(p12.read_bytes(), passphrase.encode())
    assert key is not None
    assert cert is not None
    assert cert.subject == ALICE
    users_ca = chain[0]
    assert cert.issuer == users_ca.subject
    return p12, passphrase, users_ca


def submit_csr(alice, settings: dict, csr: str) -> str:
    page = open_page(alice, f"{settings['url']}/requests/new")
    page.fill("textarea[name=csr]", csr)
    page.get_by_role("button", name="Submit the request").click()
    filed = flash(page)
    match = re.search(r"Request #(\d+) filed", filed)
    assert match, filed
    return match.group(1)


def approve(admin, settings: dict, request_id: str) -> None:
    page = open_page(admin, f"{settings['url']}/requests/{request_id}")
    page.get_by_role("button", name="Approve and issue").click()
    assert f"Request #{request_id} approved" in flash(page)


def download_certificate(alice, settings: dict, request_id: str, tmp_path: Path) -> x509.Certificate:
    page = open_page(alice, f"{settings['url']}/requests/{request_id}")
    downloaded = tmp_path / "laptop.crt"
    click_for_download(page, page.get_by_role("link", name="certificate", exact=True), downloaded)
    return x509.load_pem_x509_certificate(downloaded.read_bytes())


def save_inventory(admin, settings: dict, serial: str) -> Path:
    page = open_page(admin, f"{settings['url']}/certificates")
    inventory = page.locator("table.inventory").inner_text()
    assert serial[:16] in inventory
    assert ALICE_DN in inventory
    screenshot = settings["artifacts"] / "portal-inventory.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    return screenshot


def test_enrol_request_approve_download(browser, settings: dict, tmp_path: Path) -> None:
    # 1. The first admin logs in with the role's PKCS#12 file and enrols Alice.
    admin = context_for(browser, settings, settings["admin_p12"], settings["admin_passphrase"])
    page = open_page(admin, f"{settings['url']}/")
    assert "CN=admin,O=SecureStack" in signed_in_as(page)
    assert page.locator("p.who .role").inner_text() == "admin"
    alice_p12, alice_passphrase, users_ca = enrol_alice(admin, settings, tmp_path)

    # 2. Alice logs in with the file the portal made, and asks for a
    #    certificate for a key of her own (made here, never sent).
    alice = context_for(browser, settings, str(alice_p12), alice_passphrase)
    page = open_page(alice, f"{settings['url']}/")
    assert ALICE_DN in signed_in_as(page)
    laptop_key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(ALICE).sign(laptop_key, hashes.SHA256())
    request_id = submit_csr(alice, settings, csr.public_bytes(serialization.Encoding.PEM).decode())

    # 3. The admin approves it.
    approve(admin, settings, request_id)

    # 4. Alice downloads her certificate: it certifies her laptop's key, for
    #    client authentication only, and the users CA signed it.
    issued = download_certificate(alice, settings, request_id, tmp_path)
    assert issued.public_key() == laptop_key.public_key()
    assert issued.subject == ALICE
    issued.verify_directly_issued_by(users_ca)
    usages = issued.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]

    # 5. The inventory, as the admin sees it, with the new certificate.
    screenshot = save_inventory(admin, settings, format(issued.serial_number, "x"))
    print(f"inventory screenshot: {screenshot}")
    alice.close()
    admin.close()


def test_browser_without_certificate_is_refused(browser, settings: dict) -> None:
    # Chromium's own TLS here (no client certificate, so no Playwright TLS
    # client): it does not know our root, hence ignore_https_errors for this
    # refusal check only. nginx answers 400; a web tier that refuses at the
    # handshake makes the navigation fail.
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(ignore_https_errors=True)
    page = context.new_page()
    try:
        response = page.goto(f"{settings['url']}/")
    except PlaywrightError as exc:
        assert "net::ERR_" in str(exc)
    else:
        assert response is not None
        assert response.status in (400, 403), response.status
        assert page.locator("p.who").count() == 0
    context.close()


def test_the_admin_file_is_protected(settings: dict) -> None:
    admin_p12 = Path(settings["admin_p12"])
    assert admin_p12.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(admin_p12.read_bytes(), b"not the passphrase")
