# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Builders of CSRs, good and hostile, for the tests."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

_EC_KEYS: list = []


def ec_key(curve: ec.EllipticCurve | None = None):
    return ec.generate_private_key(curve or ec.SECP256R1())


def make_csr(
    cn: str | None = "host.example.com",
    *,
    dns: list[str] | tuple[str, ...] = ("host.example.com",),
    ips: list[str] | tuple[str, ...] = (),
    emails: list[str] | tuple[str, ...] = (),
    key=None,
    ca: bool | None = None,
    extra_subject: list[x509.NameAttribute] | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
) -> str:
    key = key or ec_key()
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    attributes += extra_subject or []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    names += [x509.RFC822Name(e) for e in emails]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else (hash_algorithm or hashes.SHA256())
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def rsa_key(bits: int = 2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def tamper_signature(pem: str) -> str:
    """Return the CSR with one bit of its signature flipped."""
    csr = x509.load_pem_x509_csr(pem.encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.b64encode(bytes(der)).decode(), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n"
