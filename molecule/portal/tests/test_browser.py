"""The browser test (tests/browser, Playwright with Debian's chromium) against this scenario's stack.

It runs in the portal's venv (.venv-portal, where playwright is), as a
separate pytest run; this wrapper hands it the web tier's address, the
admin's PKCS#12 file that the portal role left on this machine, and the root
CA, and fails unless every browser test passed (a skip is a failure here).
The inventory screenshot goes to .cache/artifacts/portal-inventory.png.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import testinfra

testinfra_hosts = ["ansible://portal-web"]


def test_browser(host) -> None:
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    state = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    ca = testinfra.get_host("ansible://portal-ca", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])
    root_ca = state / "root-ca.pem"
    root_ca.write_text(ca.file("/var/lib/securestack-pki/root/ca.crt").content_string)
    artifacts = project / ".cache" / "artifacts"
    env = {
        **os.environ,
        "PORTAL_BROWSER_URL": f"https://{host.interface('eth0').addresses[0]}",
        "PORTAL_BROWSER_ADMIN_P12": str(state / "credentials" / "portal-app-admin.p12"),
        "PORTAL_BROWSER_ADMIN_PASSPHRASE_FILE": str(state / "credentials" / "portal-app-admin.passphrase"),
        "PORTAL_BROWSER_ROOT_CA": str(root_ca),
        "PORTAL_BROWSER_ARTIFACTS": str(artifacts),
        "PORTAL_BROWSER_CHROMIUM": "/usr/bin/chromium",
    }
    result = subprocess.run(
        [str(project / ".venv-portal" / "bin" / "pytest"), "-p", "no:cacheprovider", "-s", "-rA", "tests/browser"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    print(result.stdout[-6000:], result.stderr[-2000:])
    assert result.returncode == 0
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\b3 passed\b", summary), summary
    assert not re.search(r"skipped|xfail|deselected", summary), summary
    screenshot = artifacts / "portal-inventory.png"
    assert screenshot.stat().st_size > 10_000
    print(f"inventory screenshot: {screenshot}")
