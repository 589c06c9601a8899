# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pkilint's RFC 5280 linters over what the engine makes: fails on any finding of severity ERROR or worse.

Builds, in a temporary directory and with the ca role's URL layout, a root, the services CA
(signed by the root), a server and a client certificate (signed by the services CA), a users CA
signed from its CSR by the root (intermediate profile, clientAuth) with a person's certificate,
a client certificate whose subject holds every accepted attribute at its RFC 5280
upper bound (the longest the engine's policy lets through), and each CA's CRL with one
revocation in it; then runs `lint_pkix_cert` on every certificate and
`lint_crl` (PKIX profile, type CRL) on every CRL. Every finding down to NOTICE is printed.
Run by `make unit` in .venv-pkilint (requirements/pkilint.txt).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/unit: conftest (the collection's import path), helpers

from conftest import link_collection  # noqa: E402

link_collection()  # makes ansible_collections.securestack.pki importable (idempotent; the import did it too)
from cryptography import x509  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from helpers import ec_key, make_csr, rsa_key  # noqa: E402
from pkilint.bin import lint_crl, lint_pkix_cert  # noqa: E402

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import (  # noqa: E402
    AuthoritySettings,
    CertificateAuthority,
    SignSpec,
)
from ansible_collections.securestack.pki.plugins.module_utils._pki_policy import SUBJECT_UPPER_BOUNDS  # noqa: E402

BASE = "http://ca.example.com:8480"


def urls(name: str) -> dict[str, str]:
    return {"crl_url": f"{BASE}/{name}.crl", "ca_issuers_url": f"{BASE}/{name}.cer"}


def longest_subject() -> tuple[str, str, list[x509.NameAttribute]]:
    """A CN, an e-mail address and the other accepted attributes, each as long as the policy allows
    (the address: a 64-character local part, 254 characters in all, also a subject alternative name)."""
    bound = SUBJECT_UPPER_BOUNDS
    email = "e" * 64 + "@" + ".".join(["d" * 61] * 3) + ".com"
    extra = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "S" * bound["ST"]),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "L" * bound["L"]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "O" * bound["O"]),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "U" * bound["OU"]),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, "9" * bound["serialNumber"]),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, email),
    ]
    return "C" * bound["CN"], email, extra


def build(tmp: str) -> dict[str, tuple[str, bytes]]:
    """name -> (kind, PEM) of every document to lint."""
    root_dir, services_dir, rsa_dir = (os.path.join(tmp, n) for n in ("root", "services", "services-rsa"))
    CertificateAuthority.ensure(
        root_dir,
        AuthoritySettings(
            common_name="SecureStack Root CA", organization_name="SecureStack", key_curve="secp384r1", **urls("root")
        ),
    )
    CertificateAuthority.ensure(
        services_dir,
        AuthoritySettings(common_name="SecureStack Services CA", organization_name="SecureStack", **urls("services")),
        parent=root_dir,
    )
    CertificateAuthority.ensure(
        rsa_dir,
        AuthoritySettings(common_name="SecureStack RSA CA", key_type="rsa", key_size=2048, **urls("services-rsa")),
        parent=root_dir,
    )
    root, services, rsa_ca = (CertificateAuthority.open(p) for p in (root_dir, services_dir, rsa_dir))
    server, client = services.sign(
        [
            SignSpec(csr=make_csr("www1.example.com", dns=["www1.example.com"], ips=["192.0.2.10"]), name="server"),
            SignSpec(csr=make_csr("portal", dns=[]), name="client", profile="client"),
        ]
    )
    longest_cn, longest_email, longest_rest = longest_subject()
    longest = services.sign(
        [
            SignSpec(
                csr=make_csr(longest_cn, dns=[], emails=[longest_email], extra_subject=longest_rest),
                name="longest subject",
                profile="client",
            )
        ]
    )[0]
    rsa_server = rsa_ca.sign([SignSpec(csr=make_csr("www2.example.com", dns=["www2.example.com"], key=rsa_key()))])
    users_dir = os.path.join(tmp, "users")
    users_settings = AuthoritySettings(
        common_name="SecureStack Users CA",
        organization_name="SecureStack",
        crl_url="http://www1.example.com/pki/users.crl",
        ca_issuers_url="http://www1.example.com/pki/users.cer",
    )
    _changed, csr, _before, _after = CertificateAuthority.ensure_external(users_dir, users_settings)
    users_cert = root.sign(
        [SignSpec(csr=csr, profile="intermediate", path_length=0, extended_key_usage=["clientAuth"])]
    )[0]
    CertificateAuthority.ensure_external(
        users_dir, users_settings, certificate=users_cert.certificate, chain=root.chain_pem
    )
    users = CertificateAuthority.open(users_dir)
    person = users.sign(
        [SignSpec(csr=make_csr("Jane Doe", dns=[], emails=["jane@example.com"], key=ec_key()), profile="client")]
    )[0]
    services.revoke(serial=client.serial, reason="keyCompromise")
    users.revoke(serial=person.serial, reason="unspecified")
    documents: dict[str, tuple[str, bytes]] = {
        "root CA": ("cert", root.certificate_pem.encode()),
        "services CA": ("cert", services.certificate_pem.encode()),
        "RSA services CA": ("cert", rsa_ca.certificate_pem.encode()),
        "users CA": ("cert", (users_cert.certificate or "").encode()),
        "server (ECDSA)": ("cert", (server.certificate or "").encode()),
        "server (RSA)": ("cert", (rsa_server[0].certificate or "").encode()),
        "client": ("cert", (client.certificate or "").encode()),
        "client (subject at the upper bounds)": ("cert", (longest.certificate or "").encode()),
        "person (users CA)": ("cert", (person.certificate or "").encode()),
    }
    for name, ca in (("root", root), ("services", services), ("RSA services", rsa_ca), ("users", users)):
        documents[f"{name} CRL"] = ("crl", ca.current_crl_pem().encode())
    return documents


def lint(kind: str, path: str, severity: str) -> tuple[int, str]:
    args = ["lint", "-s", severity, path]
    if kind == "crl":
        args = ["lint", "-t", "CRL", "-p", "PKIX", "-s", severity, path]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = (lint_crl if kind == "crl" else lint_pkix_cert).main(args)
    return code, out.getvalue().strip()


def main() -> int:
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, pem) in build(tmp).items():
            path = os.path.join(tmp, name.replace(" ", "_").replace("(", "").replace(")", "") + ".pem")
            with open(path, "wb") as handle:
                handle.write(pem)
            _code, notices = lint(kind, path, "NOTICE")
            errors, report = lint(kind, path, "ERROR")
            print(f"{name}: {'FAIL' if errors else 'ok'}")
            for line in notices.splitlines():
                print(f"    {line}")
            if errors:
                failed.append((name, report))
    for name, report in failed:
        print(f"pkilint: {name} has findings of severity ERROR or worse:\n{report}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
