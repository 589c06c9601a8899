# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The CA engine's behaviour: what it builds, what it keeps, what it reissues."""

from __future__ import annotations

import datetime
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from helpers import ec_key, make_csr, rsa_key

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import (
    AuthoritySettings,
    CertificateAuthority,
    SignSpec,
    cert_not_after,
    cert_not_before,
    crl_next_update,
    utcnow,
)
from ansible_collections.securestack.pki.plugins.module_utils._pki_policy import PkiError

CRL_URL = "http://ca.example.com/crl/services.crl"


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def ext(cert: x509.Certificate, kind: type) -> x509.Extension:
    return cert.extensions.get_extension_for_class(kind)


@pytest.fixture
def pki(tmp_path) -> dict[str, str]:
    root = str(tmp_path / "root")
    services = str(tmp_path / "services")
    CertificateAuthority.ensure(
        root, AuthoritySettings(common_name="Test Root", organization_name="Test", permitted_domains=["example.com"])
    )
    CertificateAuthority.ensure(services, AuthoritySettings(common_name="Test Services", crl_url=CRL_URL), parent=root)
    return {"root": root, "services": services, "tmp": str(tmp_path)}


def openssl_verify(pki: dict[str, str], leaf_pem: str, crl: bool = False) -> subprocess.CompletedProcess:
    leaf = os.path.join(pki["tmp"], "leaf.pem")
    with open(leaf, "w") as handle:
        handle.write(leaf_pem)
    command = [
        "openssl",
        "verify",
        "-CAfile",
        os.path.join(pki["root"], "ca.crt"),
        "-untrusted",
        os.path.join(pki["services"], "ca.crt"),
    ]
    if crl:
        crls = os.path.join(pki["tmp"], "crls.pem")
        with open(crls, "w") as handle:
            for ca in ("root", "services"):
                with open(os.path.join(pki[ca], "crl.pem")) as crl_file:
                    handle.write(crl_file.read())
        command += ["-crl_check_all", "-CRLfile", crls]
    return subprocess.run([*command, leaf], capture_output=True, text=True, check=False)


# ----------------------------------------------------------------- authorities
def test_root_files_and_modes(pki: dict[str, str]) -> None:
    root = pki["root"]
    assert mode(root) == 0o700
    assert mode(os.path.join(root, "ca.key")) == 0o600
    assert mode(os.path.join(root, "ledger.sqlite3")) == 0o600
    assert mode(os.path.join(root, "ca.crt")) == 0o644
    for name in ("crl.pem", "crl.der", "chain.pem"):
        assert os.path.exists(os.path.join(root, name))


def test_root_certificate_is_rfc5280_clean(pki: dict[str, str]) -> None:
    cert = CertificateAuthority.open(pki["root"]).certificate
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Test"
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 1
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ski = ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    names = ext(cert, x509.NameConstraints)
    assert names.critical and names.value.permitted_subtrees == [x509.DNSName("example.com")]
    assert cert.serial_number.bit_length() >= 64
    assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert cert_not_after(cert) - cert_not_before(cert) > datetime.timedelta(days=3649)


def test_subordinate_chain_verifies_and_is_recorded_by_its_parent(pki: dict[str, str]) -> None:
    services = CertificateAuthority.open(pki["services"])
    constraints = ext(services.certificate, x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    # the parent's names are inherited, so the subordinate is never looser
    assert ext(services.certificate, x509.NameConstraints).value.permitted_subtrees == [x509.DNSName("example.com")]
    assert services.name_policy.permitted_domains == ("example.com",)
    assert [c.subject for c in services.chain] == [
        services.certificate.subject,
        CertificateAuthority.open(pki["root"]).certificate.subject,
    ]
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", os.path.join(pki["root"], "ca.crt"), os.path.join(pki["services"], "ca.crt")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    recorded = CertificateAuthority.open(pki["root"]).inventory()
    assert [(c["profile"], c["subject"]) for c in recorded] == [("intermediate", "CN=Test Services")]


def test_ensure_is_idempotent_and_check_mode_writes_nothing(pki: dict[str, str], tmp_path) -> None:
    settings = AuthoritySettings(common_name="Test Root", organization_name="Test", permitted_domains=["example.com"])
    changed, before, after = CertificateAuthority.ensure(pki["root"], settings)
    assert not changed and before == after
    fresh = tmp_path / "fresh"
    changed, before, after = CertificateAuthority.ensure(
        str(fresh), AuthoritySettings(common_name="New"), check_mode=True
    )
    assert changed and before == {} and after["common_name"] == "New"
    assert not fresh.exists()


def test_check_mode_predicts_a_subordinate_whose_parent_is_not_there_yet(tmp_path) -> None:
    root, services = str(tmp_path / "root"), str(tmp_path / "services")
    changed, _before, after = CertificateAuthority.ensure(
        services, AuthoritySettings(common_name="Services"), parent=root, check_mode=True
    )
    assert changed and after["parent"] == root
    assert not (tmp_path / "services").exists()
    with pytest.raises(PkiError, match="no CA at"):  # for real, a missing parent is an error
        CertificateAuthority.ensure(services, AuthoritySettings(common_name="Services"), parent=root)
    assert not (tmp_path / "services").exists()


def test_crl_url_change_is_a_settings_change_not_a_new_ca(pki: dict[str, str]) -> None:
    serial_before = CertificateAuthority.open(pki["services"]).certificate.serial_number
    settings = AuthoritySettings(common_name="Test Services", crl_url="http://other.example.com/s.crl")
    changed, before, after = CertificateAuthority.ensure(pki["services"], settings, parent=pki["root"])
    assert changed and before["crl_url"] == CRL_URL and after["crl_url"] == "http://other.example.com/s.crl"
    ca = CertificateAuthority.open(pki["services"])
    assert ca.certificate.serial_number == serial_before


def test_encrypted_key_at_rest(tmp_path) -> None:
    path = str(tmp_path / "locked")
    CertificateAuthority.ensure(path, AuthoritySettings(common_name="Locked"), passphrase="s3cret passphrase")
    with open(os.path.join(path, "ca.key"), "rb") as handle:
        assert handle.read().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    issued = CertificateAuthority.open(path, "s3cret passphrase").sign([SignSpec(csr=make_csr())])
    assert issued[0].changed
    # the key of an encrypted CA cannot be used or re-encrypted without its passphrase
    with pytest.raises(PkiError, match="passphrase is required"):
        CertificateAuthority.ensure(path, AuthoritySettings(common_name="Locked"))


def test_key_kept_after_an_interrupted_creation(tmp_path) -> None:
    path = tmp_path / "ca"
    path.mkdir(mode=0o700)
    key = ec_key()
    (path / "ca.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    CertificateAuthority.ensure(str(path), AuthoritySettings(common_name="Recovered"))
    cert = CertificateAuthority.open(str(path)).certificate
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize(
    ("key_type", "algorithm"),
    [
        ("rsa", SignatureAlgorithmOID.RSA_WITH_SHA256),
        ("ed25519", SignatureAlgorithmOID.ED25519),
    ],
)
def test_other_ca_key_types(tmp_path, key_type: str, algorithm: x509.ObjectIdentifier) -> None:
    path = str(tmp_path / key_type)
    CertificateAuthority.ensure(path, AuthoritySettings(common_name=key_type, key_type=key_type, key_size=2048))
    issued = CertificateAuthority.open(path).sign([SignSpec(csr=make_csr())])[0]
    assert load(issued.certificate).signature_algorithm_oid == algorithm


def test_p384_ca_signs_with_sha384(tmp_path) -> None:
    path = str(tmp_path / "p384")
    CertificateAuthority.ensure(path, AuthoritySettings(common_name="P-384", key_curve="secp384r1"))
    issued = CertificateAuthority.open(path).sign([SignSpec(csr=make_csr())])[0]
    assert load(issued.certificate).signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384


# --------------------------------------------------------------------- signing
def test_server_certificate_follows_the_profile_not_the_csr(pki: dict[str, str]) -> None:
    key = ec_key()
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example.com")]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("web.example.com"), x509.DNSName("www.example.com")]),
            critical=False,
        )
        # what a hostile CSR asks for, and must not get:
        .add_extension(x509.KeyUsage(True, True, True, True, True, True, True, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    csr = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    now = utcnow()
    result = CertificateAuthority.open(pki["services"]).sign([SignSpec(csr=csr, name="web")], now=now)[0]
    cert = load(result.certificate)
    assert result.changed and result.serial == format(cert.serial_number, "x")
    assert cert.serial_number.bit_length() >= 64
    assert ext(cert, x509.BasicConstraints).critical and not ext(cert, x509.BasicConstraints).value.ca
    usage = ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not (
        usage.value.key_cert_sign
        or usage.value.crl_sign
        or usage.value.key_encipherment
        or usage.value.content_commitment
    )
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "web.example.com",
        "www.example.com",
    ]
    issuer_ski = ext(CertificateAuthority.open(pki["services"]).certificate, x509.SubjectKeyIdentifier).value
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == issuer_ski.digest
    assert ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    points = ext(cert, x509.CRLDistributionPoints).value
    assert points[0].full_name == [x509.UniformResourceIdentifier(CRL_URL)]
    assert cert_not_after(cert) == now + datetime.timedelta(days=90)
    assert cert_not_before(cert).tzinfo is not None and cert_not_before(cert) <= now
    assert openssl_verify(pki, result.certificate, crl=True).returncode == 0


def test_rsa_server_key_gets_key_encipherment(pki: dict[str, str]) -> None:
    result = CertificateAuthority.open(pki["services"]).sign([SignSpec(csr=make_csr(key=rsa_key()))])[0]
    assert ext(load(result.certificate), x509.KeyUsage).value.key_encipherment


def test_client_profile(pki: dict[str, str]) -> None:
    csr = make_csr(cn="Jane Doe", dns=[], emails=["jane@example.com"], key=ed25519.Ed25519PrivateKey.generate())
    result = CertificateAuthority.open(pki["services"]).sign([SignSpec(csr=csr, profile="client")])[0]
    cert = load(result.certificate)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.RFC822Name) == ["jane@example.com"]
    assert cert_not_after(cert) - cert_not_before(cert) > datetime.timedelta(days=364)


def test_client_profile_needs_a_common_name(pki: dict[str, str]) -> None:
    with pytest.raises(PkiError, match="needs a common name"):
        CertificateAuthority.open(pki["services"]).sign([SignSpec(csr=make_csr(cn=None), profile="client")])


def test_intermediate_profile(pki: dict[str, str]) -> None:
    csr = make_csr(cn="Users CA", dns=[])
    result = CertificateAuthority.open(pki["root"]).sign(
        [SignSpec(csr=csr, profile="intermediate", extended_key_usage=["clientAuth"])]
    )[0]
    cert = load(result.certificate)
    constraints = ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    assert ext(cert, x509.KeyUsage).value.key_cert_sign
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert ext(cert, x509.NameConstraints).value.permitted_subtrees == [x509.DNSName("example.com")]


def test_validity_never_beyond_the_ca(tmp_path) -> None:
    path = str(tmp_path / "short")
    CertificateAuthority.ensure(path, AuthoritySettings(common_name="Short-lived", valid_days=10))
    ca = CertificateAuthority.open(path)
    result = ca.sign([SignSpec(csr=make_csr(), valid_days=90)], renew_before_days=1)[0]
    assert cert_not_after(load(result.certificate)) == ca.not_after


def test_same_request_same_certificate_until_the_renewal_window(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    csr = make_csr()
    now = utcnow()
    first = ca.sign([SignSpec(csr=csr, name="web")], now=now)[0]
    again = ca.sign([SignSpec(csr=csr, name="web")], now=now + datetime.timedelta(days=59))[0]
    assert not again.changed and again.serial == first.serial and again.certificate == first.certificate
    renewed = ca.sign([SignSpec(csr=csr, name="web")], now=now + datetime.timedelta(days=61))[0]
    assert renewed.changed and renewed.serial != first.serial
    # a new key or other names is another identity: a new certificate at once
    other_key = ca.sign([SignSpec(csr=make_csr(), name="web")], now=now)[0]
    assert other_key.changed and other_key.serial not in (first.serial, renewed.serial)
    more_names = ca.sign([SignSpec(csr=make_csr(dns=["host.example.com", "alt.example.com"]))], now=now)[0]
    assert more_names.changed


def test_revoked_certificate_is_reissued(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    csr = make_csr()
    first = ca.sign([SignSpec(csr=csr)])[0]
    ca.revoke(serial=first.serial, reason="keyCompromise")
    second = ca.sign([SignSpec(csr=csr)])[0]
    assert second.changed and second.serial != first.serial


def test_check_mode_signs_nothing(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    csr = make_csr()
    planned = ca.sign([SignSpec(csr=csr)], check_mode=True)[0]
    assert planned.changed and planned.certificate is None
    assert ca.inventory() == []
    issued = ca.sign([SignSpec(csr=csr)])[0]
    replanned = ca.sign([SignSpec(csr=csr)], check_mode=True)[0]
    assert not replanned.changed and replanned.serial == issued.serial


def test_batch_results_in_request_order_with_duplicates_reusing(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    csrs = [make_csr(cn=f"h{i}.example.com", dns=[f"h{i}.example.com"]) for i in range(20)]
    results = ca.sign([SignSpec(csr=c, name=f"h{i}") for i, c in enumerate(csrs)] + [SignSpec(csr=csrs[0], name="dup")])
    assert [r.name for r in results] == [f"h{i}" for i in range(20)] + ["dup"]
    assert all(r.changed for r in results[:20]) and not results[20].changed
    assert results[20].serial == results[0].serial
    assert len({r.serial for r in results}) == 20
    assert ca.ledger.batch_count() == 1 + 0  # one signing call issued certificates


# -------------------------------------------------------------- revocation/CRL
def test_revocation_and_crl(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    issued = ca.sign([SignSpec(csr=make_csr())])[0]
    number_before = int(ca.ledger.get_meta("crl.number") or 0)
    changed, entry = ca.revoke(serial=issued.serial.upper(), reason="keyCompromise")
    assert changed and entry.revocation_reason == "keyCompromise"
    changed_again, _entry = ca.revoke(certificate=issued.certificate, reason="keyCompromise")
    assert not changed_again
    crl = ca.current_crl()
    assert crl is not None and crl.is_signature_valid(ca.certificate.public_key())
    revoked = crl.get_revoked_certificate_by_serial_number(int(issued.serial, 16))
    assert revoked is not None
    assert revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number_before + 1
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert crl_next_update(crl) > utcnow() + datetime.timedelta(days=6)
    with open(os.path.join(pki["services"], "crl.der"), "rb") as handle:
        assert x509.load_der_x509_crl(handle.read()) == crl
    result = openssl_verify(pki, issued.certificate, crl=True)
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr
    assert [c["status"] for c in ca.inventory() if c["serial"] == issued.serial] == ["revoked"]


def test_crl_refresh_is_idempotent_until_due(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    now = utcnow()
    first = ca.refresh_crl(valid_days=7, renew_before_days=3, now=now)
    assert not first.changed  # written at creation, not due
    due = ca.refresh_crl(valid_days=7, renew_before_days=3, now=now + datetime.timedelta(days=4, minutes=1))
    assert due.changed and due.crl_number == first.crl_number + 1
    planned = ca.refresh_crl(valid_days=7, renew_before_days=3, check_mode=True, now=now + datetime.timedelta(days=9))
    assert planned.changed and planned.crl is None
    assert (
        ca.refresh_crl(valid_days=7, renew_before_days=3, now=now + datetime.timedelta(days=4, minutes=2)).changed
        is False
    )


def test_crl_rewritten_when_it_was_tampered_with(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    other = CertificateAuthority.open(pki["root"])
    with (
        open(os.path.join(pki["root"], "crl.pem"), "rb") as src,
        open(os.path.join(pki["services"], "crl.pem"), "wb") as dst,
    ):
        dst.write(src.read())
    assert ca.refresh_crl().changed
    assert ca.current_crl().issuer == ca.certificate.subject != other.certificate.subject


def test_inventory_statuses(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    now = utcnow()
    short, long_, revoked = ca.sign(
        [
            SignSpec(csr=make_csr(), name="short", valid_days=5),
            SignSpec(csr=make_csr(), name="long", valid_days=90),
            SignSpec(csr=make_csr(), name="revoked", valid_days=90),
        ],
        renew_before_days=1,
        now=now,
    )
    ca.revoke(serial=revoked.serial)
    statuses = {c["name"]: c["status"] for c in ca.inventory(now=now + datetime.timedelta(days=10))}
    assert statuses == {"short": "expired", "long": "valid", "revoked": "revoked"}
    del short, long_


def test_large_batch_signed_over_worker_processes(pki: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from ansible_collections.securestack.pki.plugins.module_utils import _pki_ca

    monkeypatch.setattr(_pki_ca, "_worker_count", lambda items: 2 if items >= _pki_ca.PARALLEL_MIN_REQUESTS else 1)
    dispatched = []
    real_map_async = _pki_ca._WorkerPool.map_async

    def spy(self, function, items):
        dispatched.append((function.__name__, len(items)))
        return real_map_async(self, function, items)

    monkeypatch.setattr(_pki_ca._WorkerPool, "map_async", spy)
    count = _pki_ca.PARALLEL_MIN_REQUESTS + 6
    csrs = [make_csr(cn=f"n{i}.example.com", dns=[f"n{i}.example.com"], ips=["10.1.2.3"]) for i in range(count)]
    ca = CertificateAuthority.open(pki["services"])
    specs = [SignSpec(csr=c, name=f"n{i}") for i, c in enumerate(csrs)] + [SignSpec(csr=csrs[5], name="again")]
    results = ca.sign(specs)
    assert [r.name for r in results[:count]] == [f"n{i}" for i in range(count)]
    assert sum(r.changed for r in results) == count and results[-1].serial == results[5].serial
    for i, result in enumerate(results[:count]):
        cert = load(result.certificate)
        assert (
            cert.public_key().public_numbers() == x509.load_pem_x509_csr(csrs[i].encode()).public_key().public_numbers()
        )
        assert ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [f"n{i}.example.com"]
        assert format(cert.serial_number, "x") == result.serial
    assert openssl_verify(pki, results[0].certificate, crl=True).returncode == 0
    assert len({e.serial for e in ca.ledger.all()}) == count
    assert dispatched == [("_check_signatures", count + 1), ("_sign_chunk", count)]


def test_large_batch_with_one_forged_csr_is_refused_whole(pki: dict[str, str]) -> None:
    from helpers import tamper_signature

    from ansible_collections.securestack.pki.plugins.module_utils import _pki_ca

    csrs = [make_csr(cn=f"m{i}.example.com", dns=[f"m{i}.example.com"]) for i in range(_pki_ca.PARALLEL_MIN_REQUESTS)]
    csrs[40] = tamper_signature(csrs[40])
    ca = CertificateAuthority.open(pki["services"])
    with pytest.raises(PkiError, match="request m40: the CSR's signature does not verify"):
        ca.sign([SignSpec(csr=c, name=f"m{i}") for i, c in enumerate(csrs)])
    assert ca.inventory() == []


@pytest.mark.parametrize(("forged", "weak", "reported"), [(10, 50, "m10"), (50, 10, "m10")])
def test_large_batch_reports_the_first_bad_request(pki: dict[str, str], forged: int, weak: int, reported: str) -> None:
    from helpers import tamper_signature

    from ansible_collections.securestack.pki.plugins.module_utils import _pki_ca

    csrs = [make_csr(cn=f"m{i}.example.com", dns=[f"m{i}.example.com"]) for i in range(_pki_ca.PARALLEL_MIN_REQUESTS)]
    csrs[forged] = tamper_signature(csrs[forged])
    csrs[weak] = make_csr(cn=f"m{weak}.example.com", dns=[f"m{weak}.example.com"], key=rsa_key(1024))
    message = "signature does not verify" if reported == f"m{forged}" else "RSA key of 1024 bits refused"
    with pytest.raises(PkiError, match=f"request {reported}: .*{message}"):
        CertificateAuthority.open(pki["services"]).sign([SignSpec(csr=c, name=f"m{i}") for i, c in enumerate(csrs)])


# ------------------------------------------------- a subordinate CA signed elsewhere
def users_ca(pki: dict[str, str]) -> tuple[str, AuthoritySettings]:
    return os.path.join(pki["tmp"], "users"), AuthoritySettings(common_name="Users CA", organization_name="Test")


def test_external_subordinate_ca_flow(pki: dict[str, str]) -> None:
    path, settings = users_ca(pki)
    changed, csr, _before, _after = CertificateAuthority.ensure_external(path, settings)
    assert changed and csr.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert mode(path) == 0o700 and mode(os.path.join(path, "ca.key")) == 0o600
    assert not os.path.exists(os.path.join(path, "ca.crt"))
    again, csr_again, _before, _after = CertificateAuthority.ensure_external(path, settings)
    assert not again  # the key is kept; a CSR for it comes back each time
    assert (
        x509.load_pem_x509_csr(csr_again.encode()).public_key().public_numbers()
        == x509.load_pem_x509_csr(csr.encode()).public_key().public_numbers()
    )
    root = CertificateAuthority.open(pki["root"])
    signed = root.sign([SignSpec(csr=csr, profile="intermediate", extended_key_usage=["clientAuth"])])[0]
    args = {"certificate": signed.certificate, "chain": root.chain_pem}
    planned = CertificateAuthority.ensure_external(path, settings, check_mode=True, **args)
    assert planned[0] and not os.path.exists(os.path.join(path, "ca.crt"))
    installed = CertificateAuthority.ensure_external(path, settings, **args)
    assert installed[0]
    assert not CertificateAuthority.ensure_external(path, settings, **args)[0]
    users = CertificateAuthority.open(path)
    assert users.name_policy.permitted_domains == ("example.com",) and users.current_crl() is not None
    client = users.sign([SignSpec(csr=make_csr(cn="Jane Doe", dns=[]), profile="client")])[0]
    chain_file = os.path.join(pki["tmp"], "users-chain.pem")
    with open(chain_file, "w") as handle:
        handle.write("".join(users.chain_pem))
    leaf = os.path.join(pki["tmp"], "jane.pem")
    with open(leaf, "w") as handle:
        handle.write(client.certificate)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            os.path.join(pki["root"], "ca.crt"),
            "-untrusted",
            chain_file,
            "-purpose",
            "sslclient",
            leaf,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the users CA is restricted to clientAuth: it refuses to issue server certificates
    with pytest.raises(PkiError, match="may only issue for clientAuth: the server profile asks for serverAuth"):
        users.sign([SignSpec(csr=make_csr())])


def test_external_certificate_rejections(pki: dict[str, str]) -> None:
    path, settings = users_ca(pki)
    _changed, csr, _before, _after = CertificateAuthority.ensure_external(path, settings)
    root = CertificateAuthority.open(pki["root"])
    services = CertificateAuthority.open(pki["services"])
    good = root.sign([SignSpec(csr=csr, profile="intermediate")])[0].certificate
    other_key = root.sign([SignSpec(csr=make_csr(cn="Users CA", dns=[]), profile="intermediate")])[0].certificate
    leaf = services.sign([SignSpec(csr=make_csr())])[0].certificate
    not_a_ca = services.sign([SignSpec(csr=csr, profile="client")])[0].certificate  # this very key, as a client
    cases = [
        ({"certificate": not_a_ca, "chain": services.chain_pem}, "not a CA certificate"),
        ({"certificate": other_key, "chain": root.chain_pem}, "for another key"),
        ({"certificate": leaf, "chain": services.chain_pem}, "for another key"),
        ({"certificate": good, "chain": services.chain_pem}, "is not signed by"),
        ({"certificate": good, "chain": []}, "chain is required"),
        ({"certificate": "not a certificate", "chain": root.chain_pem}, "not PEM"),
    ]
    for args, message in cases:
        with pytest.raises(PkiError, match=message):
            CertificateAuthority.ensure_external(path, settings, **args)
        assert not os.path.exists(os.path.join(path, "ca.crt"))
    with pytest.raises(PkiError, match="subject CN=Users CA,O=Test is not CN=Other"):
        CertificateAuthority.ensure_external(
            path, AuthoritySettings(common_name="Other"), certificate=good, chain=root.chain_pem
        )
    with pytest.raises(PkiError, match="takes its name constraints"):
        CertificateAuthority.ensure_external(
            path, AuthoritySettings(common_name="Users CA", permitted_domains=["example.com"])
        )
