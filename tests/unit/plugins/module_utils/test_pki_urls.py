# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where relying parties find a CA's CRL and certificate: CRL distribution point and AIA caIssuers.

Every certificate a CA signs names the CA's CRL (DER) and its certificate (DER), both over plain
HTTP (RFC 5280 4.2.1.13 and 4.2.2.1). A change of those settings applies to what is signed from
then on; the CA certificate and what it already issued stay as they are until renewed."""

from __future__ import annotations

import datetime
import hashlib
import os

import pytest
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID
from helpers import ec_key, make_csr

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import (
    AuthoritySettings,
    CertificateAuthority,
    SignSpec,
)
from ansible_collections.securestack.pki.plugins.module_utils._pki_policy import PkiError

BASE = "http://ca.example.com:8480"
ROOT_URLS = {"crl_url": f"{BASE}/root.crl", "ca_issuers_url": f"{BASE}/root.cer"}
SERVICES_URLS = {"crl_url": f"{BASE}/services.crl", "ca_issuers_url": f"{BASE}/services.cer"}


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except x509.ExtensionNotFound:
        return []
    assert not points.critical
    return [name.value for point in points.value for name in point.full_name or []]


def ca_issuers_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return []
    assert not aia.critical  # RFC 5280 4.2.2.1: MUST be non-critical
    return [d.access_location.value for d in aia.value if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]


def snapshot(path: str) -> dict[str, str]:
    out = {}
    for name in sorted(os.listdir(path)):
        with open(os.path.join(path, name), "rb") as handle:
            out[name] = hashlib.sha256(handle.read()).hexdigest()
    return out


@pytest.fixture
def pki(tmp_path) -> dict[str, str]:
    root, services = str(tmp_path / "root"), str(tmp_path / "services")
    CertificateAuthority.ensure(root, AuthoritySettings(common_name="Test Root", **ROOT_URLS))
    CertificateAuthority.ensure(services, AuthoritySettings(common_name="Test Services", **SERVICES_URLS), parent=root)
    return {"root": root, "services": services}


def test_server_and_client_certificates_name_the_crl_and_the_issuer(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    server, client = ca.sign(
        [
            SignSpec(csr=make_csr(), name="server"),
            SignSpec(csr=make_csr(cn="portal", dns=[]), name="client", profile="client"),
        ]
    )
    for result in (server, client):
        cert = load(result.certificate or "")
        assert crl_urls(cert) == [SERVICES_URLS["crl_url"]]
        assert ca_issuers_urls(cert) == [SERVICES_URLS["ca_issuers_url"]]


def test_batch_signed_over_worker_processes_carries_the_urls(pki: dict[str, str]) -> None:
    key = ec_key()
    specs = [
        SignSpec(csr=make_csr(cn=f"h{i}.example.com", dns=[f"h{i}.example.com"], key=key), name=f"h{i}")
        for i in range(70)
    ]
    results = CertificateAuthority.open(pki["services"]).sign(specs)
    for result in (results[0], results[-1]):
        cert = load(result.certificate or "")
        assert crl_urls(cert) == [SERVICES_URLS["crl_url"]]
        assert ca_issuers_urls(cert) == [SERVICES_URLS["ca_issuers_url"]]


def test_the_services_ca_certificate_names_the_roots_crl_and_certificate(pki: dict[str, str]) -> None:
    services = CertificateAuthority.open(pki["services"]).certificate
    assert crl_urls(services) == [ROOT_URLS["crl_url"]]
    assert ca_issuers_urls(services) == [ROOT_URLS["ca_issuers_url"]]
    # A self-signed root names nobody: it is the trust anchor.
    root = CertificateAuthority.open(pki["root"]).certificate
    assert crl_urls(root) == [] and ca_issuers_urls(root) == []


def test_an_intermediate_signed_from_a_csr_names_the_roots_urls(pki: dict[str, str]) -> None:
    signed = CertificateAuthority.open(pki["root"]).sign(
        [SignSpec(csr=make_csr(cn="Users CA", dns=[]), profile="intermediate", extended_key_usage=["clientAuth"])]
    )
    cert = load(signed[0].certificate or "")
    assert crl_urls(cert) == [ROOT_URLS["crl_url"]]
    assert ca_issuers_urls(cert) == [ROOT_URLS["ca_issuers_url"]]


def test_info_reports_the_urls(pki: dict[str, str]) -> None:
    ca = CertificateAuthority.open(pki["services"])
    assert ca.summary()["ca_issuers_url"] == SERVICES_URLS["ca_issuers_url"]
    assert ca.describe_settings()["ca_issuers_url"] == SERVICES_URLS["ca_issuers_url"]
    assert ca.summary()["crl_url"] == SERVICES_URLS["crl_url"]


def test_without_urls_nothing_is_written(tmp_path) -> None:
    path = str(tmp_path / "plain")
    CertificateAuthority.ensure(path, AuthoritySettings(common_name="Plain"))
    cert = load(CertificateAuthority.open(path).sign([SignSpec(csr=make_csr())])[0].certificate or "")
    assert crl_urls(cert) == [] and ca_issuers_urls(cert) == []


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "ca_issuers_url",
            "ftp://ca.example.com/r.cer",
            "ca_issuers_url 'ftp://ca.example.com/r.cer' must be an http://",
        ),
        ("ca_issuers_url", "ca.example.com/root.cer", "must be an http:// or https:// URL"),
        ("ca_issuers_url", "http:///root.cer", "ca_issuers_url 'http:///root.cer' names no host"),
        ("ca_issuers_url", "http://ca.example.com/a b.cer", "without spaces or control characters"),
        ("ca_issuers_url", "http://ca.example.com/\u00e9.cer", "must be an ASCII URL"),
        ("ca_issuers_url", "http://[::1/root.cer", "is not a valid URL"),
        ("crl_url", "http://", "crl_url 'http://' names no host"),
        ("crl_url", "http://ca.example.com/x\n.crl", "without spaces or control characters"),
    ],
)
def test_a_bad_url_is_refused_and_nothing_written(tmp_path, option: str, value: str, message: str) -> None:
    path = tmp_path / "ca"
    with pytest.raises(PkiError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        CertificateAuthority.ensure(str(path), AuthoritySettings(common_name="X", **{option: value}))
    assert not path.exists()


def test_a_bad_url_on_an_existing_ca_changes_nothing(pki: dict[str, str]) -> None:
    before = snapshot(pki["services"])
    settings = AuthoritySettings(
        common_name="Test Services", crl_url=SERVICES_URLS["crl_url"], ca_issuers_url="ldap://x"
    )
    with pytest.raises(PkiError, match="ca_issuers_url 'ldap://x' must be an http:// or https:// URL"):
        CertificateAuthority.ensure(pki["services"], settings, parent=pki["root"])
    assert snapshot(pki["services"]) == before
    assert CertificateAuthority.open(pki["services"]).setting("ca_issuers_url") == SERVICES_URLS["ca_issuers_url"]


def test_an_upgrade_records_the_urls_without_reissuing_anything(tmp_path) -> None:
    """A hierarchy made without URLs (as before), then the role's new defaults: the CA certificates
    and the certificates already issued stay; what is signed from then on carries the URLs."""
    root, services = str(tmp_path / "root"), str(tmp_path / "services")
    CertificateAuthority.ensure(root, AuthoritySettings(common_name="Test Root"))
    CertificateAuthority.ensure(services, AuthoritySettings(common_name="Test Services"), parent=root)
    csr = make_csr()
    old = CertificateAuthority.open(services).sign([SignSpec(csr=csr)])[0]
    files = {path: open(os.path.join(path, "ca.crt")).read() for path in (root, services)}  # noqa: SIM115

    # check mode predicts the change, writes nothing
    changed, _before, after = CertificateAuthority.ensure(
        root, AuthoritySettings(common_name="Test Root", **ROOT_URLS), check_mode=True
    )
    assert changed and after["ca_issuers_url"] == ROOT_URLS["ca_issuers_url"]
    assert CertificateAuthority.open(root).setting("ca_issuers_url") is None

    changed, before, after = CertificateAuthority.ensure(root, AuthoritySettings(common_name="Test Root", **ROOT_URLS))
    assert changed and before["ca_issuers_url"] is None and after["ca_issuers_url"] == ROOT_URLS["ca_issuers_url"]
    changed, _before, _after = CertificateAuthority.ensure(
        services, AuthoritySettings(common_name="Test Services", **SERVICES_URLS), parent=root
    )
    assert changed
    # No CA certificate was re-issued.
    for path, pem in files.items():
        assert open(os.path.join(path, "ca.crt")).read() == pem  # noqa: SIM115
    assert crl_urls(CertificateAuthority.open(services).certificate) == []
    # A second run changes nothing.
    assert not CertificateAuthority.ensure(root, AuthoritySettings(common_name="Test Root", **ROOT_URLS))[0]
    assert not CertificateAuthority.ensure(
        services, AuthoritySettings(common_name="Test Services", **SERVICES_URLS), parent=root
    )[0]

    ca = CertificateAuthority.open(services)
    kept = ca.sign([SignSpec(csr=csr)])[0]
    assert not kept.changed and kept.serial == old.serial and kept.certificate == old.certificate
    assert crl_urls(load(kept.certificate or "")) == []
    fresh = ca.sign([SignSpec(csr=make_csr())])[0]
    assert crl_urls(load(fresh.certificate or "")) == [SERVICES_URLS["crl_url"]]
    assert ca_issuers_urls(load(fresh.certificate or "")) == [SERVICES_URLS["ca_issuers_url"]]
    # Its renewal (inside the renewal window) carries them too.
    expiry = datetime.datetime.strptime(old.not_after or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    renewed = ca.sign([SignSpec(csr=csr)], now=expiry - datetime.timedelta(days=10))[0]
    assert renewed.changed and renewed.serial != old.serial
    assert ca_issuers_urls(load(renewed.certificate or "")) == [SERVICES_URLS["ca_issuers_url"]]


def test_an_external_ca_keeps_its_urls_for_what_it_signs(pki: dict[str, str], tmp_path) -> None:
    users = str(tmp_path / "users")
    settings = {"common_name": "Users CA", "crl_url": "http://www.example.com/pki/users.crl"}
    settings["ca_issuers_url"] = "http://www.example.com/pki/users.cer"
    _changed, csr, _before, _after = CertificateAuthority.ensure_external(users, AuthoritySettings(**settings))
    root = CertificateAuthority.open(pki["root"])
    signed = root.sign([SignSpec(csr=csr, profile="intermediate", extended_key_usage=["clientAuth"])])[0]
    assert ca_issuers_urls(load(signed.certificate or "")) == [ROOT_URLS["ca_issuers_url"]]
    CertificateAuthority.ensure_external(
        users, AuthoritySettings(**settings), certificate=signed.certificate, chain=root.chain_pem
    )
    ca = CertificateAuthority.open(users)
    person = load(ca.sign([SignSpec(csr=make_csr(cn="Jane", dns=[]), profile="client")])[0].certificate or "")
    assert crl_urls(person) == ["http://www.example.com/pki/users.crl"]
    assert ca_issuers_urls(person) == ["http://www.example.com/pki/users.cer"]
    assert ca.summary()["ca_issuers_url"] == "http://www.example.com/pki/users.cer"
