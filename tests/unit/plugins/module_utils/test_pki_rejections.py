# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every input the design says must be rejected: the error names the problem, nothing is written."""

from __future__ import annotations

import hashlib
import os
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519
from cryptography.x509.name import _ASN1Type
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


# Issue 12, finding 5: names and attributes the policy let through, and CSR input that is not
# exactly one CSR. Each was signed before; each is refused with the field and the limit named.


@pytest.fixture(scope="module")
def open_ca_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CA with no permitted domains or ranges: the name checks alone stand between input and certificate."""
    path = str(tmp_path_factory.mktemp("ca") / "open")
    CertificateAuthority.ensure(path, AuthoritySettings(common_name="Open CA"))
    return path


def csr_with_extensions(cn: str, extensions: list[x509.ExtensionType]) -> str:
    """A CSR with these extensions as they are: no check of cryptography's builder stands in the way."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    wrapped = [x509.Extension(e.oid, False, e) for e in extensions]
    csr = x509.CertificateSigningRequestBuilder(subject, wrapped).sign(ec_key(), hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize("name", ["evil.com\n.example.com", "host.example.com\n"])
def test_dns_name_with_a_newline(ca_dir: str, open_ca_dir: str, name: str) -> None:
    for directory in (ca_dir, open_ca_dir):
        refused(directory, SignSpec(csr=make_csr(cn=None, dns=[name])), "not a valid host name")


@pytest.mark.parametrize("address", ["10.0.0.1", "192.0.2.1", "127.0.0.1"])
def test_ip_literal_as_dns_name(open_ca_dir: str, address: str) -> None:
    refused(open_ca_dir, SignSpec(csr=make_csr(cn=None, dns=[address])), f"DNS name '{address}' is an IP address")


@pytest.mark.parametrize(
    "address",
    [
        "a\x00<script>@example.com",
        "<b>jane</b>@example.com",
        "jane doe@example.com",
        "jane@example.com\n",
        ".jane@example.com",
        "jane..doe@example.com",
        "x" * 65 + "@example.com",
    ],
)
def test_email_outside_the_dot_atom_rule(ca_dir: str, open_ca_dir: str, address: str) -> None:
    name = x509.RFC822Name._init_without_validation(address)  # what a hostile CSR can hold
    csr = csr_with_extensions("Jane", [x509.SubjectAlternativeName([name])])
    for directory in (ca_dir, open_ca_dir):
        spec = SignSpec(csr=csr, profile="client")
        refused(directory, spec, "e-mail address .* refused: .*(dot-atom .* at most 64 characters|domain)")


def test_email_at_the_limits_is_signed(open_ca_dir: str) -> None:
    address = "x" * 64 + "@example.com"
    spec = SignSpec(csr=make_csr("Jane", dns=[], emails=[address, "o'brien+tag.x@example.com"]), profile="client")
    assert CertificateAuthority.open(open_ca_dir).sign([spec])[0].certificate


def unchecked_attribute(oid: x509.ObjectIdentifier, value: str) -> x509.NameAttribute:
    """A name attribute cryptography would refuse to build (the CSR comes from elsewhere)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x509.NameAttribute(oid, value, _validate=False)


@pytest.mark.parametrize(
    ("oid", "short_name", "limit"),
    [
        (NameOID.COMMON_NAME, "CN", 64),
        (NameOID.ORGANIZATION_NAME, "O", 64),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU", 64),
        (NameOID.LOCALITY_NAME, "L", 128),
        (NameOID.STATE_OR_PROVINCE_NAME, "ST", 128),
        (NameOID.SERIAL_NUMBER, "serialNumber", 64),
        (NameOID.EMAIL_ADDRESS, "emailAddress", 255),
    ],
)
@pytest.mark.parametrize("over", [1, 16, 136])
def test_subject_attribute_over_its_upper_bound(
    open_ca_dir: str, oid: x509.ObjectIdentifier, short_name: str, limit: int, over: int
) -> None:
    length = limit + over
    attributes = [unchecked_attribute(oid, "a" * length)]
    csr = make_csr("Jane" if short_name != "CN" else None, dns=[], extra_subject=attributes)
    message = f"subject attribute {short_name} of {length} characters refused: the limit is {limit}"
    refused(open_ca_dir, SignSpec(csr=csr, profile="client"), message)


@pytest.mark.parametrize("length", [80, 200])
def test_server_common_name_of_80_or_200_characters(open_ca_dir: str, length: int) -> None:
    name = ".".join(["a" * 60] * 4)[:length].rstrip(".")
    csr = make_csr(cn=None, dns=[name], extra_subject=[unchecked_attribute(NameOID.COMMON_NAME, name)])
    refused(open_ca_dir, SignSpec(csr=csr), f"subject attribute CN of {len(name)} characters refused: the limit is 64")


@pytest.mark.parametrize("country", ["USA", "U", "1Z", "12"])
def test_country_that_is_not_two_letters(open_ca_dir: str, country: str) -> None:
    csr = make_csr("Jane", dns=[], extra_subject=[unchecked_attribute(NameOID.COUNTRY_NAME, country)])
    refused(open_ca_dir, SignSpec(csr=csr, profile="client"), "subject attribute C .* must be exactly 2 letters")


def utf8_serial_number(value: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.SERIAL_NUMBER, value, _type=_ASN1Type.UTF8String)


def test_serial_number_outside_printable_string(open_ca_dir: str) -> None:
    csr = make_csr("Jane", dns=[], extra_subject=[utf8_serial_number("<b>1</b>")])
    refused(open_ca_dir, SignSpec(csr=csr, profile="client"), "serialNumber .* only PrintableString characters")


# The longest e-mail address the policy accepts: a 64-character local part, 254 in all.
LONGEST_EMAIL = "e" * 64 + "@" + ".".join(["d" * 61] * 3) + ".com"


def test_subject_at_the_upper_bounds_is_signed(open_ca_dir: str) -> None:
    assert len(LONGEST_EMAIL) == 254
    attributes = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "o" * 64),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * 64),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "l" * 128),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "s" * 128),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "1" * 64),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, LONGEST_EMAIL),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
    ]
    csr = make_csr("c" * 64, dns=[], emails=[LONGEST_EMAIL], extra_subject=attributes)
    assert CertificateAuthority.open(open_ca_dir).sign([SignSpec(csr=csr, profile="client")])[0].certificate


def test_subject_email_address_that_is_not_a_subject_alternative_name(open_ca_dir: str) -> None:
    """Before: signed, and pkilint found pkix.subject_email_address_not_in_san (ERROR) in the certificate."""
    subject = [x509.NameAttribute(NameOID.EMAIL_ADDRESS, "jane@example.com")]
    for emails in ([], ["john@example.com"]):
        csr = make_csr("Jane", dns=[], emails=emails, extra_subject=subject)
        message = "the subject's emailAddress 'jane@example.com' must also be one of the CSR's e-mail subject"
        refused(open_ca_dir, SignSpec(csr=csr, profile="client"), message)


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("e" * 65 + "@example.com", "the local part must be an RFC 5321 dot-atom"),
        ("e" * 243 + "@example.com", "at most 254 characters"),
        ("jane..doe@example.com", "the local part must be an RFC 5321 dot-atom"),
        ("jane@" + "d" * 64 + ".com", "its domain is not valid"),
        ("jane", "is not a valid e-mail address"),
    ],
)
def test_subject_email_address_that_is_no_mailbox(open_ca_dir: str, address: str, message: str) -> None:
    """Before: any IA5 text of up to 255 characters went into the subject's emailAddress."""
    csr = make_csr("Jane", dns=[], extra_subject=[unchecked_attribute(NameOID.EMAIL_ADDRESS, address)])
    refused(open_ca_dir, SignSpec(csr=csr, profile="client"), message)


@pytest.mark.parametrize(
    ("wrap", "message"),
    [
        (lambda csr: csr + make_csr("other.example.com", dns=["other.example.com"]), "2 PEM blocks"),
        (lambda csr: csr + csr, "2 PEM blocks"),
        (lambda csr: "Here is my CSR:\n" + csr, "nothing but white space around it"),
        (lambda csr: csr + "thanks\n", "nothing but white space around it"),
        (lambda csr: csr.replace("CERTIFICATE REQUEST-----\n", "CERTIFICATE REQUEST-----\nx: y\n", 1), "exactly one"),
    ],
)
def test_input_that_is_not_exactly_one_csr(ca_dir: str, wrap, message: str) -> None:
    refused(ca_dir, SignSpec(csr=wrap(make_csr())), f"not a certificate signing request .*{message}")


def test_white_space_around_the_csr_is_allowed(ca_dir: str) -> None:
    signed = CertificateAuthority.open(ca_dir).sign([SignSpec(csr="\n \t\n" + make_csr() + "\n\n  \n")])
    assert signed[0].certificate


# Issue 12, finding 6: what cryptography raises reading a CSR becomes a PkiError with a message.


def csr_with_duplicate_extension() -> str:
    """A CSR carrying subjectAltName twice (the builder's constructor does not check for duplicates)."""
    san = x509.SubjectAlternativeName([x509.DNSName("host.example.com")])
    other = x509.SubjectAlternativeName([x509.DNSName("www.evil.org")])
    return csr_with_extensions("host.example.com", [san, other])


def test_csr_with_a_duplicated_extension(ca_dir: str) -> None:
    refused(ca_dir, SignSpec(csr=csr_with_duplicate_extension()), "extension 2.5.29.17 more than once")


def test_csr_with_a_duplicated_extension_in_a_batch(ca_dir: str) -> None:
    specs = [SignSpec(csr=make_csr(), name="good"), SignSpec(csr=csr_with_duplicate_extension(), name="dup")]
    before = snapshot(ca_dir)
    with pytest.raises(PkiError, match=r"request dup: the CSR carries the extension 2\.5\.29\.17 more than once"):
        CertificateAuthority.open(ca_dir).sign(specs)
    assert snapshot(ca_dir) == before
