# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The key-pin filters the portal role writes the proxy pins with (plugins/filter/spki_pins.py)."""

from __future__ import annotations

import base64
import datetime
import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.securestack.pki.plugins.filter.spki_pins import FilterModule, spki_pins, spki_sha256


def certificate_pem(key) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def ec_pem() -> bytes:
    return certificate_pem(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def rsa_pem() -> bytes:
    return certificate_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def openssl_pin(pem: bytes) -> str:
    """The pin as OpenSSL's command line computes it: the DER SPKI of the certificate, hashed."""
    data = pem
    for argv in (["x509", "-pubkey", "-noout"], ["pkey", "-pubin", "-outform", "DER"], ["dgst", "-sha256", "-r"]):
        data = subprocess.run(["openssl", *argv], input=data, capture_output=True, check=True).stdout
    return data.split()[0].decode()


def slurped(item: str, pem: bytes) -> dict:
    return {"item": item, "source": "/etc/securestack-pki/certs/proxy.crt", "content": base64.b64encode(pem).decode()}


@pytest.mark.parametrize("pem_fixture", ["ec_pem", "rsa_pem"])
def test_the_pin_is_what_openssl_computes_for_the_spki(request, pem_fixture: str) -> None:
    pem = request.getfixturevalue(pem_fixture)
    assert spki_sha256(pem.decode()) == openssl_pin(pem)
    assert spki_sha256(pem) == openssl_pin(pem)


def test_the_pins_of_a_slurp_loop_keep_its_order_and_leave_out_what_was_not_read(ec_pem: bytes, rsa_pem: bytes) -> None:
    registered = {
        "changed": False,
        "results": [
            slurped("web2", rsa_pem),
            {"item": "web3", "failed": True, "msg": "file not found: /etc/securestack-pki/certs/proxy.crt"},
            slurped("web1", ec_pem),
        ],
    }
    expected = [{"item": "web2", "sha256": spki_sha256(rsa_pem)}, {"item": "web1", "sha256": spki_sha256(ec_pem)}]
    assert spki_pins(registered) == expected
    assert spki_pins(registered["results"]) == expected
    assert spki_pins([]) == []


def test_a_new_key_changes_the_pin_and_the_same_key_does_not(ec_pem: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    renewed, again = certificate_pem(key), certificate_pem(key)
    assert renewed != again  # another serial and signature, the same key
    assert spki_sha256(renewed) == spki_sha256(again) != spki_sha256(ec_pem)


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([{"item": "web1", "content": "not base64!"}], "the certificate slurped for web1 is not base64"),
        (
            [{"item": "web1", "source": "/x.crt", "content": base64.b64encode(b"hello").decode()}],
            r"the certificate slurped for web1 \(/x.crt\) is not a PEM certificate",
        ),
        ([{"content": "AA=="}], "every result must be a dictionary with the loop's item"),
        ("web1", "spki_pins wants the results of a slurp loop, got str"),
        (None, "spki_pins wants the results of a slurp loop, got NoneType"),
    ],
)
def test_what_is_not_a_certificate_fails_naming_the_item(results, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        spki_pins(results)


def test_spki_sha256_refuses_what_is_not_a_pem_certificate() -> None:
    with pytest.raises(AnsibleFilterError, match="the input is not a PEM certificate"):
        spki_sha256("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(AnsibleFilterError, match="wants a PEM certificate as a string, got int"):
        spki_sha256(42)


def test_the_filters_are_registered() -> None:
    assert FilterModule().filters() == {"spki_sha256": spki_sha256, "spki_pins": spki_pins}
