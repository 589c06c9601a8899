"""DNs as OpenSSL prints them (nginx's $ssl_client_s_dn, Apache's SSL_CLIENT_S_DN) read back to the same name.

Both web servers print a certificate's subject with X509_NAME_print_ex(..., XN_FLAG_RFC2253), which is what
`openssl x509 -noout -subject -nameopt RFC2253` prints: each hostile name below is put in a real certificate,
printed by openssl and parsed by dn.parse_dn, and must give back exactly the name that was issued.
"""

from __future__ import annotations

import datetime
import re
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securestack_portal import dn

_A = x509.NameAttribute
CN, ORG, OU = NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME
EMAIL, SERIAL = NameOID.EMAIL_ADDRESS, NameOID.SERIAL_NUMBER


def _name(*rdns: x509.NameAttribute | tuple[x509.NameAttribute, ...]) -> x509.Name:
    """RDNs in certificate order (the printed form reverses them); a tuple is a multi-valued RDN."""
    return x509.Name([x509.RelativeDistinguishedName(r if isinstance(r, tuple) else (r,)) for r in rdns])


# Each of these lost its owner the portal before one-pass parsing (issue 12, finding 7) unless marked.
HOSTILE: dict[str, x509.Name] = {
    "comma": _name(_A(ORG, "SecureStack"), _A(CN, "Doe, Jane")),
    "plus": _name(_A(CN, "a+b")),
    "quote": _name(_A(CN, 'say "hi"')),
    "backslash": _name(_A(CN, "back\\slash")),
    "hex-after-escaped-backslash": _name(_A(CN, "x\\41y")),  # \\ then literal 41, not \41 = "A"
    "backslash-before-hex-run": _name(_A(CN, "J\\C3\\B6rg")),  # literal backslashes, not UTF-8 escapes
    "leading-hash": _name(_A(CN, "#hash")),
    "lone-hash": _name(_A(CN, "x"), _A(OU, "#")),  # OpenSSL prints OU=# unescaped
    "leading-hash-trailing-space": _name(_A(CN, "#hash ")),
    "leading-and-trailing-space": _name(_A(CN, " padded ")),
    "two-trailing-spaces": _name(_A(CN, "two  ")),
    "backslash-space-at-end": _name(_A(CN, "x\\ ")),
    "angle-semicolon-equals": _name(_A(CN, "<a>;b=c")),
    "all-specials": _name(_A(ORG, "Doe, Jane & Co <x>"), _A(CN, '+Jane=\\#";,')),
    "utf8-two-byte": _name(_A(CN, "Jörg Müller")),
    "utf8-three-byte": _name(_A(CN, "日本 太郎")),
    "utf8-four-byte": _name(_A(CN, "emoji \U0001f512")),
    "utf8-next-to-escapes": _name(_A(CN, "Ö,Ö+\\Ö")),
    "rtl-override": _name(_A(CN, "evil\u202egnp.exe")),
    "email-address": _name(_A(CN, "Jane"), _A(EMAIL, "jane+tag@example.org")),
    "serial-number": _name(_A(SERIAL, "42"), _A(CN, "Jane")),
    "multi-valued-rdn": _name(_A(ORG, "SecureStack"), (_A(CN, "Jane, Doe"), _A(SERIAL, "42"))),
    "multi-valued-email": _name((_A(CN, "+x"), _A(EMAIL, "j@example.org"), _A(OU, "#"))),
}


def _certificate(name: x509.Name) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
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


def openssl_rfc2253(name: x509.Name, server: str = "nginx") -> str:
    """The subject as the web server prints it: nginx's $ssl_client_s_dn is XN_FLAG_RFC2253 (every byte above
    0x7f escaped, `\\C3\\B6`); Apache's SSL_CLIENT_S_DN (mod_ssl 2.4) is the same but for the UTF-8, left as it is."""
    nameopt = {"nginx": "RFC2253", "apache": "RFC2253,-esc_msb"}[server]
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-nameopt", nameopt],
        input=_certificate(name), capture_output=True, check=True,
    ).stdout  # fmt: skip
    text = out.decode("ascii" if server == "nginx" else "utf-8")
    assert text.startswith("subject=") and text.endswith("\n")
    return text.removeprefix("subject=").removesuffix("\n")


@pytest.mark.parametrize("server", ["nginx", "apache"])
@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_openssl_rfc2253_form_reads_back_to_the_same_name(name: x509.Name, server: str) -> None:
    printed = openssl_rfc2253(name, server)
    assert dn.parse_dn(printed) == name, printed


@pytest.mark.parametrize("name", HOSTILE.values(), ids=HOSTILE.keys())
def test_the_ledgers_form_reads_back_to_the_same_name(name: x509.Name) -> None:
    """The ledger and the configuration use cryptography's RFC 4514 spelling; canonical_dn gives the certificate's own
    (a multi-valued RDN in DER order, as the engine writes the ledger), whatever spelling it starts from."""
    written = name.rfc4514_string()
    assert dn.parse_dn(written) == name, written
    ledger = x509.load_pem_x509_certificate(_certificate(name)).subject.rfc4514_string()
    assert dn.canonical_dn(written) == ledger
    assert dn.canonical_dn(openssl_rfc2253(name)) == ledger
    assert dn.canonical_dn(ledger) == ledger


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("CN=x\\\\41y", _name(_A(CN, "x\\41y"))),
        ("CN=\\#hash\\ ", _name(_A(CN, "#hash "))),
        ("CN=J\\C3\\B6rg", _name(_A(CN, "Jörg"))),
        ("CN=J\\c3\\b6rg", _name(_A(CN, "Jörg"))),
        ("CN=Jörg", _name(_A(CN, "Jörg"))),
        ("CN=\\4A\\C3\\B6\\72g", _name(_A(CN, "Jörg"))),
        ("CN=a\\2Cb", _name(_A(CN, "a,b"))),  # an escaped special character as hex stays text
        ("CN=a=b#c", _name(_A(CN, "a=b#c"))),  # '=' and a '#' not in front need no escape
        ("OU=#,CN=x", _name(_A(CN, "x"), _A(OU, "#"))),  # a lone '#', as OpenSSL prints it
        ("cn=x,o=y", _name(_A(ORG, "y"), _A(CN, "x"))),  # attribute names are case-insensitive
        ("CN=x,O=y+OU=z", _name((_A(ORG, "y"), _A(OU, "z")), _A(CN, "x"))),
        ("emailAddress=j@example.org", _name(_A(EMAIL, "j@example.org"))),
        ("1.2.840.113549.1.9.1=j@example.org", _name(_A(EMAIL, "j@example.org"))),
        ("serialNumber=42+CN=x", _name((_A(SERIAL, "42"), _A(CN, "x")))),
        ("O=", _name(_A(ORG, ""))),
        ("", x509.Name([])),
    ],
)
def test_rfc4514_escapes_are_read_in_one_pass(text: str, name: x509.Name) -> None:
    assert dn.parse_dn(text) == name


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("CN=#0C034AC3B6", _name(_A(CN, "Jö"))),  # UTF8String
        ("CN=#130161", _name(_A(CN, "a"))),  # PrintableString
        ("1.2.840.113549.1.9.1=#16036a4078", _name(_A(EMAIL, "j@x"))),  # IA5String
        ("CN=#1E0400E40042", _name(_A(CN, "äB"))),  # BMPString
        ("2.5.4.3=#0c0161+O=#0C0162", _name((_A(CN, "a"), _A(ORG, "b")))),
    ],
)
def test_the_hexstring_form_is_the_ber_of_a_string(text: str, name: x509.Name) -> None:
    """RFC 4514 2.4: `#` and the hex of the value's BER encoding (what OpenSSL prints for unknown attributes)."""
    assert dn.parse_dn(text) == name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a DN", "expected '=' after the attribute type 'not a DN'"),
        ("CN=x,", "an attribute type is missing at position 5"),
        ("CN=x, O=y", "unknown attribute type ' O'"),
        ("XX=x", "unknown attribute type 'XX'"),
        ("CN=a\\", "'\\' at position 4 escapes nothing"),
        ("CN=a\\4", "'\\' at position 4 escapes neither a special character nor two hex digits"),
        ("CN=a\\xz", "'\\' at position 4 escapes neither a special character nor two hex digits"),
        ('CN=a"b', "'\"' at position 4 must be escaped"),
        ("CN=a;b", "';' at position 4 must be escaped"),
        ("CN=a<b", "'<' at position 4 must be escaped"),
        ("CN= x", "a space at position 3 leading the value must be escaped"),
        ("CN=x ", "a space at position 4 ending the value must be escaped"),
        ("CN=\\C3", "the value of CN at position 3 is not UTF-8"),
        ("CN=#0C0", "the hexstring at position 3 is not an even number of hex digits"),
        ("CN=#0C0561", "the hexstring at position 3 is not the BER of one string"),
        ("CN=#020101", "the hexstring at position 3 holds an ASN.1 value of tag 0x02, not a string"),
        ("CN=#zz", "the hexstring at position 3 is not an even number of hex digits"),
        ("CN=x+CN=x", "duplicate"),
    ],
)
def test_what_is_no_dn_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        dn.parse_dn(text)


@pytest.mark.parametrize(
    ("text", "stripped"),
    [
        ("CN=\\#hash\\ ", "CN=\\#hash\\ "),
        ("CN=\\#hash\\", "CN=\\#hash\\ "),  # the space HTTP or str.strip took
        ("  CN=x\\  \t", "CN=x\\ "),
        ("CN=x\\\\", "CN=x\\\\"),  # an escaped backslash
        ("CN=x\\\\\\", "CN=x\\\\\\ "),
        (" CN=x ", "CN=x"),
    ],
)
def test_strip_keeps_the_escaped_trailing_space(text: str, stripped: str) -> None:
    assert dn.strip(text) == stripped
