# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The modules as Ansible runs them: JSON arguments in, JSON result out, in a separate process.

Each module is exercised in check mode, then for real, then both again, asserting `changed` each time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from cryptography import x509
from helpers import make_csr

PASSPHRASE = "vault-kept passphrase 7f3c"


def run(module: str, args: dict, tmp_path, *, check: bool = False, diff: bool = False, shadow: str = "") -> dict:
    """Run a module in its own process; `shadow` is a directory put first on PYTHONPATH."""
    import ansible_collections.securestack.pki as collection

    collections = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(collection.__path__[0]))))
    arg_file = tmp_path / f"args-{module}.json"
    arg_file.write_text(
        json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check, "_ansible_diff": diff}})
    )
    proc = subprocess.run(
        [sys.executable, "-m", f"ansible_collections.securestack.pki.plugins.modules.{module}", str(arg_file)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [shadow, collections]))},
        check=False,
    )
    assert PASSPHRASE not in proc.stdout + proc.stderr, "a passphrase leaked into the module's output"
    result = json.loads(proc.stdout)
    result["_rc"] = proc.returncode
    return result


@pytest.fixture
def cas(tmp_path) -> dict[str, str]:
    root = str(tmp_path / "root")
    services = str(tmp_path / "services")
    assert run("ca_authority", {"path": root, "common_name": "Root", "passphrase": PASSPHRASE}, tmp_path)["changed"]
    assert run(
        "ca_authority",
        {
            "path": services,
            "common_name": "Services",
            "parent": root,
            "parent_passphrase": PASSPHRASE,
            "crl_url": "http://ca.example.com/s.crl",
        },
        tmp_path,
    )["changed"]
    return {"root": root, "services": services}


def test_ca_authority_check_real_check_real(tmp_path) -> None:
    args = {"path": str(tmp_path / "ca"), "common_name": "Root", "permitted_domains": ["Example.COM"]}
    planned = run("ca_authority", args, tmp_path, check=True, diff=True)
    assert planned["changed"] and planned["certificate"] == "" and not (tmp_path / "ca").exists()
    assert planned["diff"]["before"] == {} and planned["diff"]["after"]["permitted_domains"] == ["example.com"]
    created = run("ca_authority", args, tmp_path)
    assert created["changed"] and created["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert created["chain"] == [created["certificate"]]
    assert not run("ca_authority", args, tmp_path, check=True)["changed"]
    again = run("ca_authority", args, tmp_path, diff=True)
    assert not again["changed"] and again["certificate"] == created["certificate"]
    assert again["diff"]["before"] == again["diff"]["after"]


def test_ca_authority_subordinate_chain(cas: dict[str, str], tmp_path) -> None:
    result = run(
        "ca_authority",
        {
            "path": cas["services"],
            "common_name": "Services",
            "parent": cas["root"],
            "parent_passphrase": PASSPHRASE,
            "crl_url": "http://ca.example.com/s.crl",
        },
        tmp_path,
    )
    assert not result["changed"] and len(result["chain"]) == 2
    assert x509.load_pem_x509_certificate(result["chain"][1].encode()).subject.rfc4514_string() == "CN=Root"


def test_ca_authority_refuses_a_different_existing_ca(cas: dict[str, str], tmp_path) -> None:
    result = run(
        "ca_authority",
        {"path": cas["root"], "common_name": "Root", "key_type": "rsa", "passphrase": PASSPHRASE},
        tmp_path,
    )
    assert result["failed"] and result["_rc"] != 0 and "different identity (key_type" in result["msg"]


def test_ca_sign_single_and_batch(cas: dict[str, str], tmp_path) -> None:
    csr = make_csr()
    single = {"ca": cas["services"], "csr": csr}
    planned = run("ca_sign", single, tmp_path, check=True)
    assert planned["changed"] and planned["certificate"] == "" and planned["issued"] == 1
    signed = run("ca_sign", single, tmp_path)
    assert signed["changed"] and signed["serial"] == format(
        x509.load_pem_x509_certificate(signed["certificate"].encode()).serial_number, "x"
    )
    assert signed["not_after"].endswith("Z") and len(signed["chain"]) == 2
    assert not run("ca_sign", single, tmp_path, check=True)["changed"]
    again = run("ca_sign", single, tmp_path)
    assert not again["changed"] and again["serial"] == signed["serial"]

    requests = [{"name": f"h{i}", "csr": make_csr(cn=f"h{i}.example.com", dns=[f"h{i}.example.com"])} for i in range(3)]
    requests.append({"name": "svc-client", "csr": make_csr(cn="portal", dns=[]), "profile": "client"})
    batch = run("ca_sign", {"ca": cas["services"], "requests": requests}, tmp_path)
    assert batch["changed"] and batch["issued"] == 4
    assert [r["name"] for r in batch["results"]] == ["h0", "h1", "h2", "svc-client"]
    assert [r["profile"] for r in batch["results"]] == ["server"] * 3 + ["client"]
    assert all(r["changed"] and r["certificate"] for r in batch["results"])
    batch_again = run("ca_sign", {"ca": cas["services"], "requests": requests}, tmp_path)
    assert not batch_again["changed"] and not any(r["changed"] for r in batch_again["results"])
    assert [r["serial"] for r in batch_again["results"]] == [r["serial"] for r in batch["results"]]


def test_ca_sign_rejection_reaches_the_user(cas: dict[str, str], tmp_path) -> None:
    result = run(
        "ca_sign",
        {
            "ca": cas["services"],
            "requests": [
                {"name": "good", "csr": make_csr()},
                {"name": "evil", "csr": make_csr(ca=True)},
            ],
        },
        tmp_path,
    )
    assert (
        result["failed"]
        and result["msg"] == "request evil: the CSR asks for CA:TRUE, which the server profile never grants"
    )
    info = run("ca_info", {"ca": cas["services"]}, tmp_path)
    assert info["certificates"] == []


def csr_with_duplicate_extension() -> str:
    """A CSR carrying subjectAltName twice: cryptography raises DuplicateExtension reading it."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    sans = [x509.SubjectAlternativeName([x509.DNSName(n)]) for n in ("host.example.com", "www.evil.org")]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "host.example.com")])
    builder = x509.CertificateSigningRequestBuilder(subject, [x509.Extension(e.oid, False, e) for e in sans])
    csr = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (csr_with_duplicate_extension, "the CSR carries the extension 2.5.29.17 more than once"),
        (
            lambda: make_csr() + make_csr(),
            "input is not a certificate signing request (PEM or DER):"
            " the input holds 2 PEM blocks; exactly one CSR is accepted",
        ),
    ],
)
def test_ca_sign_fails_cleanly_on_a_malformed_csr(cas: dict[str, str], tmp_path, make, message: str) -> None:
    for check in (True, False):
        result = run("ca_sign", {"ca": cas["services"], "csr": make()}, tmp_path, check=check)
        assert result["failed"] and result["msg"] == message
        assert "exception" not in result
    assert run("ca_info", {"ca": cas["services"]}, tmp_path)["certificates"] == []


def test_ca_sign_intermediate_from_an_encrypted_root(cas: dict[str, str], tmp_path) -> None:
    args = {
        "ca": cas["root"],
        "passphrase": PASSPHRASE,
        "csr": make_csr(cn="Users CA", dns=[]),
        "profile": "intermediate",
        "extended_key_usage": ["clientAuth"],
    }
    signed = run("ca_sign", args, tmp_path)
    assert signed["changed"]
    without = run("ca_sign", {**args, "passphrase": None}, tmp_path)
    assert without["failed"] and "passphrase is required" in without["msg"]


def test_ca_revoke_and_ca_crl(cas: dict[str, str], tmp_path) -> None:
    signed = run("ca_sign", {"ca": cas["services"], "csr": make_csr()}, tmp_path)
    args = {"ca": cas["services"], "serial": signed["serial"].upper(), "reason": "superseded"}
    planned = run("ca_revoke", args, tmp_path, check=True, diff=True)
    assert planned["changed"] and planned["diff"]["after"]["status"] == "revoked"
    assert run("ca_info", {"ca": cas["services"], "status": ["revoked"]}, tmp_path)["certificates"] == []
    revoked = run("ca_revoke", args, tmp_path)
    assert revoked["changed"] and revoked["reason"] == "superseded" and revoked["revoked_at"]
    crl = x509.load_pem_x509_crl(revoked["crl"].encode())
    assert crl.get_revoked_certificate_by_serial_number(int(signed["serial"], 16)) is not None
    assert not run("ca_revoke", args, tmp_path, check=True)["changed"]
    assert not run("ca_revoke", args, tmp_path)["changed"]
    unknown = run("ca_revoke", {"ca": cas["services"], "serial": "1234"}, tmp_path)
    assert unknown["failed"] and "was not issued" in unknown["msg"]

    crl_args = {"ca": cas["services"], "valid_days": 7, "renew_before_days": 3}
    assert not run("ca_crl", crl_args, tmp_path, check=True)["changed"]
    current = run("ca_crl", crl_args, tmp_path)
    assert not current["changed"] and current["crl"] == revoked["crl"]
    longer = {**crl_args, "valid_days": 30, "renew_before_days": 10}
    assert run("ca_crl", longer, tmp_path, check=True)["changed"]
    rewritten = run("ca_crl", longer, tmp_path)
    assert rewritten["changed"] and rewritten["crl_number"] == current["crl_number"] + 1
    assert not run("ca_crl", longer, tmp_path)["changed"]
    root_crl = run("ca_crl", {"ca": cas["root"], "force": True}, tmp_path)
    assert root_crl["failed"] and "passphrase is required" in root_crl["msg"]


def test_ca_info(cas: dict[str, str], tmp_path) -> None:
    run("ca_sign", {"ca": cas["services"], "csr": make_csr(), "valid_days": 10, "renew_before_days": 2}, tmp_path)
    run("ca_sign", {"ca": cas["services"], "csr": make_csr(), "valid_days": 200}, tmp_path)
    info = run("ca_info", {"ca": cas["services"]}, tmp_path, check=True)
    assert not info["changed"] and info["ca"]["subject"] == "CN=Services" and info["signing_calls"] == 2
    assert sorted(c["status"] for c in info["certificates"]) == ["valid", "valid"]
    assert {c["profile"] for c in info["certificates"]} == {"server"}
    soon = run("ca_info", {"ca": cas["services"], "expiring_within_days": 30}, tmp_path)
    assert len(soon["certificates"]) == 1
    root = run("ca_info", {"ca": cas["root"]}, tmp_path)
    assert [c["profile"] for c in root["certificates"]] == ["intermediate"]


def test_missing_cryptography_is_named(tmp_path) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "cryptography").mkdir(parents=True)
    (shadow / "cryptography" / "__init__.py").write_text("raise ImportError('cryptography is not installed here')\n")
    for module, args in [
        ("ca_authority", {"path": str(tmp_path / "ca"), "common_name": "X"}),
        ("ca_info", {"ca": str(tmp_path / "ca")}),
    ]:
        result = run(module, args, tmp_path, shadow=str(shadow))
        assert result["failed"] and "python3-cryptography" in result["msg"]
    assert not (tmp_path / "ca").exists()


def test_ca_authority_external_subordinate(cas: dict[str, str], tmp_path) -> None:
    users = {"path": str(tmp_path / "users"), "common_name": "Users CA", "external": True}
    first = run("ca_authority", users, tmp_path)
    assert first["changed"] and first["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert first["certificate"] == ""
    signed = run(
        "ca_sign",
        {
            "ca": cas["root"],
            "passphrase": PASSPHRASE,
            "csr": first["csr"],
            "profile": "intermediate",
            "extended_key_usage": ["clientAuth"],
        },
        tmp_path,
    )
    install = {**users, "certificate": signed["certificate"], "chain": signed["chain"]}
    assert run("ca_authority", install, tmp_path, check=True)["changed"]
    installed = run("ca_authority", install, tmp_path)
    assert installed["changed"] and installed["certificate"] == signed["certificate"]
    assert installed["chain"] == [signed["certificate"], *signed["chain"]]
    assert not run("ca_authority", install, tmp_path)["changed"]
    client = run("ca_sign", {"ca": users["path"], "csr": make_csr(cn="Jane", dns=[]), "profile": "client"}, tmp_path)
    assert client["changed"] and len(client["chain"]) == 2  # the users CA, then the root
    misuse = run(
        "ca_authority", {"path": str(tmp_path / "x"), "common_name": "X", "certificate": "c", "chain": ["c"]}, tmp_path
    )
    assert misuse["failed"] and "set external=true" in misuse["msg"] and not (tmp_path / "x").exists()


def test_ca_authority_ca_issuers_url_is_a_setting_for_future_signings(cas: dict[str, str], tmp_path) -> None:
    """Adding the URLs to an existing CA (an upgrade): check mode predicts it, the run records it, the
    CA certificate is not re-issued, a second run changes nothing, ca_info reports it, new certificates
    carry it."""
    args = {
        "path": cas["services"],
        "common_name": "Services",
        "parent": cas["root"],
        "parent_passphrase": PASSPHRASE,
        "crl_url": "http://ca.example.com/s.crl",
        "ca_issuers_url": "http://ca.example.com/s.cer",
    }
    before = run("ca_authority", {**args, "ca_issuers_url": None}, tmp_path)
    assert not before["changed"]
    planned = run("ca_authority", args, tmp_path, check=True, diff=True)
    assert planned["changed"] and planned["diff"]["before"]["ca_issuers_url"] is None
    assert planned["diff"]["after"]["ca_issuers_url"] == "http://ca.example.com/s.cer"
    applied = run("ca_authority", args, tmp_path)
    assert applied["changed"] and applied["serial"] == before["serial"]
    assert applied["certificate"] == before["certificate"]
    assert not run("ca_authority", args, tmp_path, check=True)["changed"]
    assert not run("ca_authority", args, tmp_path)["changed"]
    info = run("ca_info", {"ca": cas["services"]}, tmp_path)
    assert info["ca"]["ca_issuers_url"] == "http://ca.example.com/s.cer"
    assert info["ca"]["crl_url"] == "http://ca.example.com/s.crl"
    signed = run("ca_sign", {"ca": cas["services"], "csr": make_csr()}, tmp_path)
    cert = x509.load_pem_x509_certificate(signed["certificate"].encode())
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == ["http://ca.example.com/s.cer"]
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for p in cdp for n in p.full_name] == ["http://ca.example.com/s.crl"]


def test_ca_authority_refuses_a_bad_ca_issuers_url(tmp_path) -> None:
    path = tmp_path / "ca"
    args = {"path": str(path), "common_name": "Root", "ca_issuers_url": "file:///etc/x"}
    result = run("ca_authority", args, tmp_path)
    assert result["failed"] and result["_rc"] != 0
    assert result["msg"] == "ca_issuers_url 'file:///etc/x' must be an http:// or https:// URL"
    assert not path.exists()
