# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile subjects through the real web tier (issue 12, finding 7: legitimate names locked their owner out).

The users CA on the portal host (its engine, as the portal's user) issues one client certificate per hostile
subject; each is presented from this machine to nginx (localhost:8443) and Apache (localhost:9443) as a user
reaches them. Each web server verifies it and hands the portal its subject as OpenSSL prints it (nginx's
$ssl_client_s_dn: XN_FLAG_RFC2253, every byte above 0x7f as `\\XX`; Apache's SSL_CLIENT_S_DN: the same with the
UTF-8 unescaped, which gunicorn hands over as Latin-1); GET /api/v1/me must answer 200 with the subject that was
issued (the first request makes the user, the second server finds the same one). A subject whose first RDN ends
in a space ends the header with `\\ `, whose space HTTP drops on the way.

Before the fix of finding 7 (the demo's portal of 8f10ead), 14 of the 34 requests got 403: `x\\41y`, a
trailing space ending the header (4 cases) and a lone `#` through both servers, UTF-8 and U+202E through Apache.

Settings as for test_stack.py and test_portal.py (stack_bed.py: STACK_INVENTORY, STACK_CREDENTIALS,
STACK_WORK, STACK_WEB_URLS). State: the certificates issued here stay in the users CA's ledger (named
``hostile-names/<case>``) and their owners in the portal's users, as requesters.
"""

from __future__ import annotations

import http.client
import json
import shlex
import ssl
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from stack_bed import APP, CA, WEB_URLS, WORK, host

USERS_CA = "/var/lib/securestack-portal/users-ca"
VENV = "/opt/securestack-portal/current"
CONFIG = "/etc/securestack-portal/portal.toml"
SCRATCH = WORK / "hostile-names"

_A = x509.NameAttribute
CN, ORG, OU = NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME
EMAIL, SERIAL = NameOID.EMAIL_ADDRESS, NameOID.SERIAL_NUMBER


def _name(*rdns: x509.NameAttribute | tuple[x509.NameAttribute, ...], org: bool = True) -> x509.Name:
    """RDNs in certificate order, O=SecureStack first unless `org` is false; a tuple is a multi-valued RDN.

    The printed form is last RDN first: without O, the first RDN's value ends the header.
    """
    first = (_A(ORG, "SecureStack"),) if org else ()
    return x509.Name([x509.RelativeDistinguishedName(r if isinstance(r, tuple) else (r,)) for r in (*first, *rdns)])


HOSTILE: dict[str, x509.Name] = {
    "comma": _name(_A(CN, "Doe, Jane")),
    "plus": _name(_A(CN, "a+b")),
    "quote": _name(_A(CN, 'say "hi"')),
    "backslash": _name(_A(CN, "back\\slash")),
    "hex-after-escaped-backslash": _name(_A(CN, "x\\41y")),
    "leading-hash-trailing-space": _name(_A(CN, "#hash "), org=False),  # CN=\\#hash\\  ends the header
    "leading-and-trailing-space": _name(_A(CN, " padded "), org=False),
    "two-trailing-spaces": _name(_A(CN, "two  "), org=False),
    "backslash-space-at-end": _name(_A(CN, "x\\ "), org=False),
    "trailing-space-mid-dn": _name(_A(CN, "mid "), _A(OU, " dn")),
    "lone-hash": _name(_A(OU, "#"), _A(CN, "lone hash")),
    "angle-semicolon-equals": _name(_A(CN, "<a>;b=c")),
    "utf8": _name(_A(CN, "Jörg Müller 日本")),
    "rtl-override": _name(_A(CN, "evil\u202egnp.exe")),
    "email-address": _name(_A(CN, "Jane Mail"), _A(EMAIL, "jane+tag@example.org")),
    "serial-number": _name(_A(CN, "Jane Serial"), _A(SERIAL, "42")),
    "multi-valued-rdn": _name((_A(CN, "Jane, Multi"), _A(SERIAL, "43"))),
}

_SIGN = """
import json, sys
from securestack_pki._pki_ca import CertificateAuthority, SignSpec
ca = CertificateAuthority.open(sys.argv[1])
requests = json.load(sys.stdin)
specs = [SignSpec(csr=r["csr"], name="hostile-names/" + r["case"], profile="client") for r in requests]
print(json.dumps([ca.ledger.get(result.serial).pem for result in ca.sign(specs)]))
"""


@cache
def root_ca() -> Path:
    path = SCRATCH / "root-ca.pem"
    path.write_text(host(CA).file("/var/lib/securestack-pki/root/ca.crt").content_string)
    return path


@cache
def _builder(name: x509.Name) -> x509.CertificateSigningRequestBuilder:
    """A CSR for `name`; an emailAddress of the subject is also an e-mail SAN, as the engine requires."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    emails = [x509.RFC822Name(str(a.value)) for a in name.get_attributes_for_oid(EMAIL)]
    return builder.add_extension(x509.SubjectAlternativeName(emails), critical=False) if emails else builder


def issued() -> dict[str, tuple[x509.Certificate, Path, Path]]:
    """One users-CA certificate per hostile subject, signed on the portal host: case -> (certificate, cert, key)."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    keys = {case: ec.generate_private_key(ec.SECP256R1()) for case in HOSTILE}
    requests = [
        {
            "case": case,
            "csr": _builder(name).sign(keys[case], hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode(),
        }
        for case, name in HOSTILE.items()
    ]
    sign = (
        f"printf %s {shlex.quote(json.dumps(requests))} | runuser -u portal --"
        f" env SECURESTACK_PORTAL_CONFIG={CONFIG} {VENV}/bin/python -c {shlex.quote(_SIGN)} {USERS_CA}"
    )
    pems = json.loads(host(APP).check_output(sign))
    result = {}
    for (case, key), pem in zip(keys.items(), pems, strict=True):
        cert_path, key_path = SCRATCH / f"{case}.crt", SCRATCH / f"{case}.key"
        cert_path.write_text(pem)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        result[case] = (x509.load_pem_x509_certificate(pem.encode()), cert_path, key_path)
    return result


def me(server: str, cert: Path, key: Path) -> tuple[int, str]:
    """GET /api/v1/me through a web server, as a browser with this certificate reaches it."""
    context = ssl.create_default_context(cafile=str(root_ca()))
    context.load_cert_chain(str(cert), str(key))
    url = urlsplit(WEB_URLS[server])
    connection = http.client.HTTPSConnection(url.hostname, url.port or 443, context=context, timeout=30)
    try:
        connection.request("GET", "/api/v1/me", headers={"Accept": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def test_the_users_ca_issues_the_hostile_subjects_as_asked() -> None:
    for case, (certificate, _cert, _key) in issued().items():
        assert certificate.subject == HOSTILE[case], case


@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_subject_gets_in_as_itself(case: str, server: str) -> None:
    certificate, cert, key = issued()[case]
    status, body = me(server, cert, key)
    assert status == 200, (case, server, status, body)
    answer = json.loads(body)
    assert answer["subject"] == certificate.subject.rfc4514_string(), (case, server)
    assert answer["serial"].lower().lstrip("0") == format(certificate.serial_number, "x"), (case, server)
    assert answer["role"] == "requester", (case, server)  # made on first sight, through either server
