# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every input the design says must be rejected: the error names the problem, nothing is written."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519
from cryptography.x509.oid import NameOID
from helpers import ec_key, make_csr, rsa_key, tamper_signature

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import (
    AuthoritySettings,
    CertificateAuthority,
    SignSpec,
)
from ansible_collections.securestack.pki.plugins.module_utils._pki_policy import PkiError


def snapshot(directory: str) -> dict[str, str]:
    """Content hash of every file of the CA, and the ledger's rows, to prove nothing was written."""
    state = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith("ledger.sqlite3") or name == ".lock":
            continue
        with open(path, "rb") as handle:
            state[name] = hashlib.sha256(handle.read()).hexdigest()
    ca = CertificateAuthority.open(directory)
    state["ledger"] = repr([(e.serial, e.revoked_at) for e in ca.ledger.all()])
    state["batches"] = repr(
        ca.ledger.connect().execute("SELECT * FROM batches").fetchall()
        and [tuple(r) for r in ca.ledger.connect().execute("SELECT * FROM batches")]
    )
    ca.ledger.close()
    return state


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("ca") / "services")
    CertificateAuthority.ensure(
        path,
        AuthoritySettings(common_name="Test CA", permitted_domains=["example.com"], permitted_ip_ranges=["10.0.0.0/8"]),
    )
    return path


def refused(ca_dir: str, spec: SignSpec, message: str, **sign_args) -> None:
    before = snapshot(ca_dir)
    ca = CertificateAuthority.open(ca_dir)
    with pytest.raises(PkiError, match=message):
        ca.sign([spec], **sign_args)
    assert snapshot(ca_dir) == before


def test_text_that_is_no_csr(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr="hello, I am not a CSR"), "not a certificate signing request")


def test_pem_of_the_wrong_kind(ca_dir: str) -> None:
    certificate = CertificateAuthority.open(ca_dir).certificate_pem
    refused(ca_dir, SignSpec(csr=certificate), "not a certificate signing request")


def test_csr_whose_signature_does_not_verify(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=tamper_signature(make_csr())), "signature does not verify")


@pytest.mark.parametrize("profile", ["server", "client"])
def test_csr_asking_for_ca_true(ca_dir: str, profile: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(ca=True), profile=profile), f"asks for CA:TRUE.*{profile}")


@pytest.mark.parametrize("bits", [1024, 1536])
def test_rsa_under_2048_bits(ca_dir: str, bits: int) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(key=rsa_key(bits))), f"RSA key of {bits} bits refused")


def test_dsa_key(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(key=dsa.generate_private_key(2048))), "DSA key refused")


@pytest.mark.parametrize("curve", [ec.SECP521R1(), ec.SECP256K1(), ec.SECP224R1()])
def test_curves_other_than_p256_and_p384(ca_dir: str, curve: ec.EllipticCurve) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(key=ec_key(curve))), f"curve {curve.name} refused")


def test_ed25519_under_the_server_profile(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(key=ed25519.Ed25519PrivateKey.generate())), "Ed25519 key refused")


@pytest.mark.parametrize(
    ("dns", "ips", "message"),
    [
        (["www.evil.org"], [], "outside the permitted domains"),
        (["example.com.evil.org"], [], "outside the permitted domains"),
        (["notexample.com"], [], "outside the permitted domains"),
        (["host.example.com"], ["192.168.1.1"], "outside the permitted ranges"),
    ],
)
def test_names_outside_permitted(ca_dir: str, dns: list[str], ips: list[str], message: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(cn=None, dns=dns, ips=ips)), message)


def test_names_outside_allowed_domains_of_the_call(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr()), "outside the permitted domains", allowed_domains=["db.example.com"])


def test_wildcard_name(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(cn=None, dns=["*.example.com"])), "wildcard")


def test_invalid_host_name(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(cn=None, dns=["bad_name.example.com"])), "not a valid host name")


def test_server_request_without_dns_or_ip(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(cn="host.example.com", dns=[])), "needs at least one DNS name or IP")


def test_server_common_name_not_among_names(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(cn="other.example.com")), "must also be one of")


@pytest.mark.parametrize(
    ("profile", "days", "limit"), [("server", 367, 366), ("client", 826, 825), ("intermediate", 3651, 3650)]
)
def test_validity_longer_than_the_profile_allows(ca_dir: str, profile: str, days: int, limit: int) -> None:
    csr = make_csr(cn="Sub CA", dns=[]) if profile == "intermediate" else make_csr()
    refused(ca_dir, SignSpec(csr=csr, profile=profile, valid_days=days), f"allows at most {limit}")


def test_oversized_csr(ca_dir: str) -> None:
    big = make_csr() + ("X" * 17000)
    refused(ca_dir, SignSpec(csr=big), "bytes refused")


def test_too_many_names(ca_dir: str) -> None:
    names = [f"h{i}.example.com" for i in range(101)]
    refused(ca_dir, SignSpec(csr=make_csr(cn=None, dns=names)), "at most 100 names")


def test_batch_over_the_limit(ca_dir: str) -> None:
    csr = make_csr()
    ca = CertificateAuthority.open(ca_dir)
    before = snapshot(ca_dir)
    with pytest.raises(PkiError, match="batch of 10001 requests refused"):
        ca.sign([SignSpec(csr=csr, name=str(i)) for i in range(10001)])
    assert snapshot(ca_dir) == before


def test_unknown_subject_attribute(ca_dir: str) -> None:
    odd = [x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example")]
    refused(ca_dir, SignSpec(csr=make_csr(extra_subject=odd)), "subject attribute .* is not accepted")


def test_unknown_profile(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(), profile="superuser"), "unknown profile")


def test_one_bad_request_stops_the_whole_batch(ca_dir: str) -> None:
    good = [SignSpec(csr=make_csr(cn=f"h{i}.example.com", dns=[f"h{i}.example.com"]), name=f"h{i}") for i in range(5)]
    bad = SignSpec(csr=make_csr(key=rsa_key(1024)), name="weak-host")
    before = snapshot(ca_dir)
    with pytest.raises(PkiError, match="request weak-host: RSA key of 1024 bits refused"):
        CertificateAuthority.open(ca_dir).sign([*good, bad])
    assert snapshot(ca_dir) == before


def test_renewal_window_as_long_as_the_validity(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=make_csr(), valid_days=30), "would issue a new certificate", renew_before_days=30)


def test_intermediate_beyond_path_length(tmp_path) -> None:
    root = str(tmp_path / "root")
    CertificateAuthority.ensure(root, AuthoritySettings(common_name="Root", path_length=0))
    before = snapshot(root)
    with pytest.raises(PkiError, match="path length 0"):
        CertificateAuthority.open(root).sign([SignSpec(csr=make_csr(cn="Sub", dns=[]), profile="intermediate")])
    assert snapshot(root) == before


def test_revoke_unknown_serial(ca_dir: str) -> None:
    before = snapshot(ca_dir)
    with pytest.raises(PkiError, match="was not issued by the CA"):
        CertificateAuthority.open(ca_dir).revoke(serial="abcdef0123")
    assert snapshot(ca_dir) == before


def test_revoke_certificate_of_another_ca(ca_dir: str, tmp_path) -> None:
    other = str(tmp_path / "other")
    CertificateAuthority.ensure(other, AuthoritySettings(common_name="Other CA"))
    foreign = CertificateAuthority.open(other).sign([SignSpec(csr=make_csr())])[0].certificate
    before = snapshot(ca_dir)
    with pytest.raises(PkiError, match="not by this CA"):
        CertificateAuthority.open(ca_dir).revoke(certificate=foreign)
    assert snapshot(ca_dir) == before


def test_revoke_with_unknown_reason(ca_dir: str) -> None:
    serial = CertificateAuthority.open(ca_dir).sign([SignSpec(csr=make_csr())])[0].serial
    before = snapshot(ca_dir)
    with pytest.raises(PkiError, match="unknown revocation reason 'certificateHold'"):
        CertificateAuthority.open(ca_dir).revoke(serial=serial, reason="certificateHold")
    assert snapshot(ca_dir) == before


def test_existing_ca_with_another_identity_is_not_replaced(ca_dir: str) -> None:
    before = snapshot(ca_dir)
    with pytest.raises(PkiError, match=r"different identity.*common_name"):
        CertificateAuthority.ensure(
            ca_dir,
            AuthoritySettings(
                common_name="Another CA", permitted_domains=["example.com"], permitted_ip_ranges=["10.0.0.0/8"]
            ),
        )
    with pytest.raises(PkiError, match=r"different identity.*key_type"):
        CertificateAuthority.ensure(
            ca_dir,
            AuthoritySettings(
                common_name="Test CA",
                key_type="rsa",
                permitted_domains=["example.com"],
                permitted_ip_ranges=["10.0.0.0/8"],
            ),
        )
    with pytest.raises(PkiError, match=r"different identity.*permitted"):
        CertificateAuthority.ensure(ca_dir, AuthoritySettings(common_name="Test CA"))
    assert snapshot(ca_dir) == before


def test_wrong_passphrase(tmp_path) -> None:
    path = str(tmp_path / "locked")
    CertificateAuthority.ensure(path, AuthoritySettings(common_name="Locked"), passphrase="correct horse")
    before = snapshot(path)
    with pytest.raises(PkiError, match="wrong passphrase"):
        CertificateAuthority.open(path, "battery staple").sign([SignSpec(csr=make_csr())])
    with pytest.raises(PkiError, match="passphrase is required"):
        CertificateAuthority.open(path).sign([SignSpec(csr=make_csr())])
    assert snapshot(path) == before


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (AuthoritySettings(common_name=""), "common_name must not be empty"),
        (AuthoritySettings(common_name="X", valid_days=8000), "valid_days 8000 refused"),
        (AuthoritySettings(common_name="X", permitted_domains=["bad domain"]), "not a valid host name"),
        (AuthoritySettings(common_name="X", permitted_ip_ranges=["10.0.0.300/8"]), "not an IP network"),
        (AuthoritySettings(common_name="X", crl_url="ftp://x/crl"), "http:// or https://"),
        (AuthoritySettings(common_name="X", extended_key_usage=["clientAuth"]), "subordinate CAs only"),
        (AuthoritySettings(common_name="X", key_type="dsa"), "key_type 'dsa' is not supported"),
    ],
)
def test_bad_authority_settings_write_nothing(tmp_path, settings: AuthoritySettings, message: str) -> None:
    path = tmp_path / "ca"
    with pytest.raises(PkiError, match=message):
        CertificateAuthority.ensure(str(path), settings)
    assert not path.exists()
