"""Testinfra checks of the securestack.pki.nginx role (scenario ``nginx``).

The checks are shared with the apache scenario: molecule/resources/web/tests/web_checks.py,
which reads the server under test from the scenario's name. The renewal
tests below are nginx's own: they run last (they re-key the hosts'
certificates) and run ``securestack.pki.renew`` as a user does.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
import web_checks
from web_checks import CLIENT, INVENTORY, PKI, REPO, RUNNER, WEB, host

# The shared tests (web_checks.__all__) become this module's, for pytest to collect.
globals().update({name: getattr(web_checks, name) for name in web_checks.__all__})

SERVER_CERT = f"{PKI}/server.crt"
RECORD = f"{PKI}/certificates.json"


def renew(*extra: str) -> subprocess.CompletedProcess:
    """ansible-playbook securestack.pki.renew against the scenario's inventory, as a user runs it."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    collections = str(REPO / ".cache" / "collections")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(filter(None, [collections, env.get("ANSIBLE_COLLECTIONS_PATH")]))
    argv = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", INVENTORY, "securestack.pki.renew", *extra]
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    print(" ".join(argv[3:]), result.stdout[-6000:], result.stderr[-3000:], sep="\n")
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def changed_per_host(output: str) -> dict[str, int]:
    return {name: int(count) for name, count in re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M)}


def serial_on_disk(web: str) -> str:
    return host(web).check_output(f"openssl x509 -in {SERVER_CERT} -noout -serial")


def serial_served(web: str) -> str:
    """The serial of the certificate `web` presents in a real TLS handshake (seen from the client host)."""
    return host(CLIENT).check_output(
        f"openssl s_client -connect {web}:443 -servername {web} </dev/null 2>/dev/null | openssl x509 -noout -serial"
    )


@pytest.fixture(scope="module")
def renewed() -> dict:
    """Serials before and after one `renew -e renew_all=true`, and what the run printed."""
    before = {web: serial_on_disk(web) for web in WEB}
    served_before = {web: serial_served(web) for web in WEB}
    run = renew("-e", "renew_all=true")
    return {"before": before, "served_before": served_before, "run": run}


def test_web_hosts_declare_no_certificate_list():
    """What makes the old renew miss them: their certificates come from the nginx role, not the inventory.

    The renew playbook before the host record read only `certificate_list`
    from the inventory, so on these hosts it renewed nothing.
    """
    for web in WEB:
        assert "certificate_list" not in RUNNER.get_variables(web), web


@pytest.mark.parametrize("web", WEB)
def test_the_nginx_role_recorded_its_certificates(web):
    record = json.loads(host(web).file(RECORD).content_string)
    assert {"server", "proxy"} <= set(record), record
    server = record["server"]
    assert server["certificate_path"] == SERVER_CERT
    assert server["fullchain_path"] == f"{PKI}/server-fullchain.pem"
    assert "nginx.service" in server["services"]
    assert server["names"] and all(re.match(r"^(DNS|IP):", name) for name in server["names"]), server
    assert host(web).file(RECORD).mode == 0o644


@pytest.mark.parametrize("web", WEB)
def test_renew_alone_renews_the_nginx_certificate_and_nginx_serves_it(renewed, web):
    assert re.search(rf"changed: \[{web}\]", renewed["run"].stdout), renewed["run"].stdout[-4000:]
    assert renewed["served_before"][web] == renewed["before"][web]
    after = serial_on_disk(web)
    assert after != renewed["before"][web]
    # nginx.service (the recorded entry's services) was reloaded: the new
    # certificate is what a client now receives, once the old workers left.
    deadline = time.monotonic() + 20
    while (served := serial_served(web)) != after and time.monotonic() < deadline:
        time.sleep(0.5)
    assert served == after


def test_a_second_renew_changes_nothing_and_check_mode_agrees(renewed):
    assert any(changed_per_host(renewed["run"].stdout).values())
    serials = {web: serial_on_disk(web) for web in WEB}
    for extra in ((), ("--check",)):
        counts = changed_per_host(renew(*extra).stdout)
        assert set(WEB) <= set(counts), counts
        assert all(count == 0 for count in counts.values()), (extra, counts)
    assert {web: serial_on_disk(web) for web in WEB} == serials
