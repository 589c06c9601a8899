"""The CRL fetch timer (securestack-pki-crl-fetch) on cert-node1 and the
CA host's publisher (securestack-pki-publish).

A CRL the CA really rewrote is fetched, installed in PEM and DER and in the
bundle, and the services are reloaded. A CRL signed by another key, one whose
nextUpdate has passed and an older one replayed are all refused, and the
installed files stay as they were. The bad CRLs are made on the CA host with
python3-cryptography (the last two with the real CA key, as only an attacker
holding an old CRL or a broken CA could present them) and served to the
script from a throwaway HTTP server on the node.
"""

from __future__ import annotations

import os

import pytest
import testinfra

BASE = "/etc/securestack-pki"
CA_DIR = "/var/lib/securestack-pki/services"
FETCH = "/usr/local/sbin/securestack-pki-crl-fetch"
INSTALLED = [f"{BASE}/crl/services.crl.pem", f"{BASE}/crl/services.crl", f"{BASE}/crl-bundle.pem"]

FORGE = r"""
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ca_dir, kind, out = sys.argv[1:4]
cert = x509.load_pem_x509_certificate(open(ca_dir + "/ca.crt", "rb").read())
key = serialization.load_pem_private_key(open(ca_dir + "/ca.key", "rb").read(), None)
current = x509.load_pem_x509_crl(open(ca_dir + "/crl.pem", "rb").read())
number = current.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
last, following = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=7)
if kind == "foreign-key":
    key, number = ec.generate_private_key(ec.SECP256R1()), number + 10
elif kind == "expired":
    last, following, number = now - datetime.timedelta(days=9), now - datetime.timedelta(days=2), number + 10
elif kind == "older":
    number = number - 1
builder = (
    x509.CertificateRevocationListBuilder()
    .issuer_name(cert.subject)
    .last_update(last)
    .next_update(following)
    .add_extension(x509.CRLNumber(number), critical=False)
)
open(out, "wb").write(builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
"""


def inventory_host(name: str):
    return testinfra.get_host(f"ansible://{name}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def digests(node) -> dict:
    return {path: node.check_output(f"sha256sum {path}").split()[0] for path in INSTALLED}


def crl_number(node, path: str) -> int:
    return int(node.check_output(f"openssl crl -in {path} -noout -crlnumber").split("=")[1], 16)


def test_publisher_serves_the_public_directory():
    ca = inventory_host("pki-ca")
    assert ca.service("securestack-pki-publish").is_running
    node = inventory_host("cert-node1")
    served = node.check_output("curl -fsS http://pki-ca:8480/services.crl.pem")
    assert served == ca.file("/var/lib/securestack-pki-public/services.crl.pem").content_string.strip()
    # Only the public directory: the CA's private directory is out of reach.
    assert node.run("curl -fsS http://pki-ca:8480/../securestack-pki/services/ca.key").rc != 0


def test_timer_is_active_and_der_copies_follow_the_pem():
    node = inventory_host("cert-node1")
    assert node.service("securestack-pki-crl-fetch.timer").is_enabled
    assert node.service("securestack-pki-crl-fetch.timer").is_running
    for ca in ("root", "services"):
        der = node.check_output(f"openssl crl -inform DER -in {BASE}/crl/{ca}.crl -noout -fingerprint")
        pem = node.check_output(f"openssl crl -in {BASE}/crl/{ca}.crl.pem -noout -fingerprint")
        assert der == pem
        assert node.run(f"openssl crl -in {BASE}/crl/{ca}.crl.pem -noout -CAfile {BASE}/crl/{ca}.crt").rc == 0


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("foreign-key", "signature does not verify"),
        ("expired", "nextUpdate"),
        ("older", "not higher than the installed one"),
    ],
)
def test_bad_crls_are_refused_and_nothing_changes(kind, message):
    ca, node = inventory_host("pki-ca"), inventory_host("cert-node1")
    ca.check_output(f"python3 - {CA_DIR} {kind} /root/forged.crl.pem <<'EOF'\n{FORGE}\nEOF")
    forged = ca.file("/root/forged.crl.pem").content_string
    node.check_output(f"mkdir -p /root/mirror && cat > /root/mirror/services.crl.pem <<'EOF'\n{forged}EOF")
    node.check_output(f"cp {BASE}/crl/root.crl.pem /root/mirror/root.crl.pem")
    before = digests(node)
    server = "python3 -m http.server --bind 127.0.0.1 --directory /root/mirror 8481"
    result = node.run(
        f"({server} >/dev/null 2>&1 & pid=$!; "
        "for i in $(seq 100); do curl -fso /dev/null http://127.0.0.1:8481/ && break; sleep 0.2; done; "
        f"SECURESTACK_PKI_CRL_URL=http://127.0.0.1:8481 {FETCH}; "
        "rc=$?; kill $pid; exit $rc)"
    )
    assert result.rc == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert "updated" not in result.stdout
    assert digests(node) == before


def test_a_crl_the_ca_rewrote_is_fetched_installed_and_reloaded():
    ca, node = inventory_host("pki-ca"), inventory_host("cert-node1")
    before = crl_number(node, f"{BASE}/crl/services.crl.pem")
    ca.check_output(
        f"PYTHONPATH=/usr/local/lib/securestack-pki python3 -m securestack_pki crl --ca {CA_DIR} --force"
        " && /usr/local/lib/securestack-pki/publish-public"
    )
    reloads = len(node.file("/var/log/securestack-dummy-reloads.log").content_string.splitlines())
    node.check_output("systemctl start securestack-pki-crl-fetch.service")
    assert crl_number(node, f"{BASE}/crl/services.crl.pem") == before + 1
    der = node.check_output(f"openssl crl -inform DER -in {BASE}/crl/services.crl -noout -crlnumber")
    assert int(der.split("=")[1], 16) == before + 1
    bundle = node.file(f"{BASE}/crl-bundle.pem").content_string
    assert node.file(f"{BASE}/crl/services.crl.pem").content_string in bundle
    after = node.file("/var/log/securestack-dummy-reloads.log").content_string.splitlines()
    assert len(after) > reloads
