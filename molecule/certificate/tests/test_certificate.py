"""Testinfra checks of the securestack.pki.certificate role (scenario ``certificate``).

side_effect.yml has run check mode on a fresh host, the renewal sequence, a
captured ``-vvv`` run that re-keyed every certificate, a second run and
``securestack.pki.revoke`` for cert-node2; it left what these tests need in
scenario-facts.json and converge-vvv.log in molecule's ephemeral directory.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path

import testinfra

BASE = "/etc/securestack-pki"
CA_BASE = "/var/lib/securestack-pki"
CERTIFICATES = {
    "cert-node1": ["server", "client", "short"],
    "cert-node2": ["server", "client", "users-ca"],
    "cert-node3": ["server", "client"],
}
OWNERS = {"client": "www-data"}
NODES = sorted(CERTIFICATES)
# The per-host tests run on the certificate nodes only (the CA host is checked
# by the `ca` scenario).
testinfra_hosts = [f"ansible://{node}" for node in NODES]
PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----\n(.*?)\n-----END \1-----", re.S)


def hostname(host) -> str:
    return host.backend.get_hostname()


# The last batch that issued certificates: how many it issued, in how many batches.
LAST_BATCH_SQL = (
    "SELECT COUNT(*), COUNT(DISTINCT batch_id) FROM certificates"
    " WHERE batch_id = (SELECT MAX(batch_id) FROM certificates)"
)


@cache
def state_dir() -> Path:
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])


@cache
def scenario_facts() -> dict:
    return json.loads((state_dir() / "scenario-facts.json").read_text())


@cache
def captured_output() -> str:
    return (state_dir() / "converge-vvv.log").read_text()


def ca_host():
    return testinfra.get_host("ansible://pki-ca", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@cache
def root_pem() -> str:
    return ca_host().file(f"{CA_BASE}/root/ca.crt").content_string


def body_lines(pem: str) -> list[str]:
    """The base64 lines of every PEM block in `pem`."""
    return [line for match in PEM.finditer(pem) for line in match.group(2).splitlines() if len(line) >= 16]


def cert_paths(name: str) -> dict:
    return {
        "key": f"{BASE}/private/{name}.key",
        "crt": f"{BASE}/{name}.crt",
        "chain": f"{BASE}/{name}-chain.pem",
        "fullchain": f"{BASE}/{name}-fullchain.pem",
    }


def node_certs(host) -> list[str]:
    return CERTIFICATES[hostname(host)]


def test_keys_are_private_and_owned_as_configured(host):
    for name in node_certs(host):
        key = host.file(cert_paths(name)["key"])
        owner = OWNERS.get(name, "root")
        assert (key.user, key.group, key.mode) == (owner, owner, 0o600), name
    private = host.file(f"{BASE}/private")
    assert (private.user, private.mode) == ("root", 0o711)


def test_certificate_public_key_matches_the_key(host):
    for name in node_certs(host):
        paths = cert_paths(name)
        from_key = host.check_output(f"openssl pkey -in {paths['key']} -pubout")
        from_crt = host.check_output(f"openssl x509 -in {paths['crt']} -noout -pubkey")
        assert from_key == from_crt, name
    # The check can fail: another certificate's key does not match.
    other = host.check_output(f"openssl pkey -in {cert_paths('client')['key']} -pubout")
    assert other != host.check_output(f"openssl x509 -in {cert_paths('server')['crt']} -noout -pubkey")


def test_chain_verifies_against_our_root(host):
    root = root_pem()
    host.run_expect([0], "true")
    names = node_certs(host)
    tmp = host.check_output("mktemp")
    try:
        host.run_expect([0], f"cat > {tmp} << 'EOF'\n{root}EOF")
        for name in names:
            paths = cert_paths(name)
            # The chain file ends with our root, exactly.
            assert host.file(paths["chain"]).content_string.endswith(root.strip() + "\n"), name
            cmd = host.run(f"openssl verify -x509_strict -CAfile {tmp} -untrusted {paths['chain']} {paths['crt']}")
            assert cmd.rc == 0, f"{name}: {cmd.stdout} {cmd.stderr}"
            # The full chain (without the root) verifies the same way.
            cmd = host.run(f"openssl verify -CAfile {tmp} -untrusted {paths['fullchain']} {paths['crt']}")
            assert cmd.rc == 0, name
            # And not against another anchor: the check can fail.
            assert host.run(f"openssl verify -CAfile {paths['crt']} {paths['crt']}").rc != 0
    finally:
        host.run(f"rm -f {tmp}")
    bundle = host.file(f"{BASE}/ca-bundle.pem").content_string
    assert root.strip() in bundle


def test_profiles(host):
    names = node_certs(host)
    server = host.check_output(f"openssl x509 -in {BASE}/server.crt -noout -ext extendedKeyUsage,subjectAltName")
    assert "TLS Web Server Authentication" in server
    assert f"DNS:{hostname(host)}" in server
    assert "IP Address:" in server
    client = host.check_output(f"openssl x509 -in {BASE}/client.crt -noout -ext extendedKeyUsage -subject")
    assert "TLS Web Client Authentication" in client
    if "users-ca" in names:
        ext = host.check_output(f"openssl x509 -in {BASE}/users-ca.crt -noout -ext basicConstraints -issuer")
        assert "CA:TRUE, pathlen:0" in ext
        assert "SecureStack Root CA" in ext
    if hostname(host) == "cert-node2":
        assert "2048 bit" in host.check_output(f"openssl pkey -in {BASE}/private/client.key -text -noout | head -n1")


def test_trust_store_holds_our_root_only_where_asked(host):
    verify = host.run(f"openssl verify -untrusted {BASE}/server-chain.pem {BASE}/server.crt")
    if hostname(host) == "cert-node1":
        assert host.file("/usr/local/share/ca-certificates/securestack-root.crt").exists
        assert verify.rc == 0, verify.stdout + verify.stderr
    else:
        assert not host.file("/usr/local/share/ca-certificates/securestack-root.crt").exists
        assert verify.rc != 0


def test_fresh_host_check_mode_predicted_changes():
    output = scenario_facts()["fresh_check"]
    recap = re.search(r"cert-node3\s+:\s+ok=\d+\s+changed=(\d+)", output)
    assert recap and int(recap.group(1)) > 0
    assert "a new key would be generated" in output
    ledgers = scenario_facts()["ledgers"]
    assert ledgers["after_check"] == ledgers["start"]


def test_one_signing_call_per_ca_per_run():
    ledgers = scenario_facts()["ledgers"]
    for ca in ("services", "root"):
        assert ledgers["captured"][ca]["signing_calls"] == ledgers["short_again"][ca]["signing_calls"] + 1
    # The ledger tells which batch issued what: everything re-keyed by the
    # captured run, on every node, came from one batch per CA.
    ca = ca_host()
    for ca_name, expected in (("services", 7), ("root", 1)):
        rows = ca.check_output(
            "python3 -c %s %s %s",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone())",
            f"{CA_BASE}/{ca_name}/ledger.sqlite3",
            LAST_BATCH_SQL,
        )
        assert rows == f"({expected}, 1)", ca_name


def test_captured_run_shows_no_key_material(host):
    output = captured_output()
    # The capture holds the run's module results: the certificates are there.
    for name in node_certs(host):
        crt_lines = body_lines(host.file(cert_paths(name)["crt"]).content_string)
        assert crt_lines and all(line in output for line in crt_lines), name
        key_text = host.check_output(f"cat {cert_paths(name)['key']}")
        assert "PRIVATE KEY" in key_text
        leaked = [line for line in body_lines(key_text) if line in output]
        assert leaked == [], f"{hostname(host)}:{name}: key material in the captured output"


def test_renewal_reissued_once_inside_the_window():
    ledgers = scenario_facts()["ledgers"]
    name = "cert-node1/short"

    def count(label: str) -> int:
        return len(ledgers[label]["services"]["valid"][name])

    assert count("short_issued") == count("start") + 1
    assert ledgers["short_outside"] == ledgers["short_issued"]
    assert count("short_renewed") == count("short_issued") + 1
    assert ledgers["short_again"] == ledgers["short_renewed"]


def test_revoked_serials_are_in_the_crl_of_every_endpoint(host):
    revoked = scenario_facts()["ledgers"]["revoked"]
    serials = {
        ca: [s for name, found in revoked[ca]["revoked"].items() if name.startswith("cert-node2/") for s in found]
        for ca in ("services", "root")
    }
    assert len(serials["services"]) >= 2 and len(serials["root"]) >= 1
    for ca, wanted in serials.items():
        text = host.check_output(f"openssl crl -in {BASE}/crl/{ca}.crl.pem -noout -text")
        # Compared as numbers: openssl prints whole bytes, the ledger drops leading zeros.
        listed = {int(s, 16) for s in re.findall(r"Serial Number: ([0-9A-Fa-f]+)", text)}
        assert {int(s, 16) for s in wanted} <= listed, ca
        assert "Key Compromise" in text
    # The revoked server certificate no longer verifies with CRL checks; a valid one does.
    check = f"openssl verify -crl_check_all -CAfile {BASE}/ca-bundle.pem -CRLfile {BASE}/crl-bundle.pem"
    result = host.run(f"{check} {BASE}/server.crt")
    if hostname(host) == "cert-node2":
        assert result.rc != 0 and "revoked" in (result.stdout + result.stderr)
    else:
        assert result.rc == 0, result.stdout + result.stderr


def test_services_reloaded_after_the_last_change(host):
    log = host.file("/var/log/securestack-dummy-reloads.log").content_string.splitlines()
    last = {line.split()[1]: line.split()[0] for line in log[-2:]}
    for path in (f"{BASE}/server.crt", f"{BASE}/crl-bundle.pem"):
        assert last[path] == host.check_output(f"sha256sum {path}").split()[0], path
