"""Distinguished names as the web tier prints them (OpenSSL's RFC 2253 form) and as the configuration names them.

nginx's $ssl_client_s_dn and Apache's SSL_CLIENT_S_DN are X509_NAME_print_ex(..., XN_FLAG_RFC2253): RDNs last
first, `,` `+` `"` `\\` `<` `>` `;` escaped with a backslash, a leading `#` or space and a trailing space too,
every byte of the UTF-8 above 0x7f and every control character as `\\XX`, `emailAddress` and `serialNumber` by
those names. cryptography's RFC 4514 parser knows neither name and reads `\\C3\\B6` byte by byte as Latin-1, so
this module parses the string itself, in one pass, by RFC 4514:

- `\\` and a special character (`,+"\\<>;#= `) is that character; `\\` and two hex digits is one byte; the bytes
  of a value are UTF-8 (so `J\\C3\\B6rg` is Jörg, and in `x\\\\41y` the `41` is text after an escaped backslash);
- `"`, `;`, `<`, `>` and NUL must be escaped, as must a space leading or ending a value (no space is ever dropped);
- `+` joins the attributes of a multi-valued RDN, `,` separates RDNs;
- a value starting with `#` is the hex of its BER encoding (RFC 4514 2.4; OpenSSL prints unknown attributes so):
  accepted when it is one ASN.1 string, for any attribute type; anything else is refused with the reason. A
  value of a lone `#` is that character: OpenSSL does not escape it (its first-character rule loses to the
  last-character one), and RFC 4514 has no empty hexstring.
Attribute types are the names below (any case) or dotted OIDs.
"""

from __future__ import annotations

import codecs
import string

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

ATTRIBUTE_NAMES = {
    "CN": NameOID.COMMON_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "STREET": NameOID.STREET_ADDRESS,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "serialNumber": NameOID.SERIAL_NUMBER,
}
_BY_NAME = {name.lower(): oid for name, oid in ATTRIBUTE_NAMES.items()}
_ESCAPABLE = frozenset(',+"\\<>;#= ')
_MUST_BE_ESCAPED = frozenset('"\\<>;\0')
_HEX = frozenset(string.hexdigits)
_TYPE_CHARS = frozenset(string.ascii_letters + string.digits + "-.")
# ASN.1 string types by tag, with the codec of their content.
_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString (as OpenSSL reads it)
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


def _tlv(der: bytes) -> tuple[int, bytes, bytes]:
    """The tag, content and what follows of the first BER/DER element of `der` (definite length only)."""
    if len(der) < 2:
        raise ValueError("truncated")
    tag, first = der[0], der[1]
    if first < 0x80:
        length, start = first, 2
    else:
        count = first & 0x7F
        if not 0 < count <= 4 or len(der) < 2 + count:
            raise ValueError("bad length")
        length, start = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if len(der) < start + length:
        raise ValueError("truncated")
    return tag, der[start : start + length], der[start + length :]


class _Reader:
    """One pass over an RFC 4514 string; `at` is the index of the next character."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def attribute(self) -> x509.NameAttribute:
        oid, name = self._type()
        self.at += 1  # the '='
        start = self.at
        value = self._hexstring(start) if self.peek() == "#" else self._string(name, start)
        return x509.NameAttribute(oid, value)

    def _type(self) -> tuple[ObjectIdentifier, str]:
        start = self.at
        end = self.text.find("=", start)
        if end == start or start == len(self.text):
            raise ValueError(f"an attribute type is missing at position {start}")
        if end < 0:
            raise ValueError(f"expected '=' after the attribute type {self.text[start:]!r}")
        name = self.text[start:end]
        self.at = end
        if name[0].isdigit() and set(name) <= _TYPE_CHARS:
            try:
                return ObjectIdentifier(name), name
            except ValueError:
                raise ValueError(f"attribute type {name!r} at position {start} is no OID") from None
        oid = _BY_NAME.get(name.lower())
        if oid is None:
            raise ValueError(
                f"unknown attribute type {name!r} at position {start}; known: {', '.join(ATTRIBUTE_NAMES)} or an OID"
            )
        return oid, name

    def _string(self, name: str, start: int) -> str:
        octets = bytearray()
        while (char := self.peek()) not in ("", ",", "+"):
            if char == "\\":
                octets += self._escape()
                continue
            if char in _MUST_BE_ESCAPED:
                raise ValueError(f"{char!r} at position {self.at} must be escaped")
            if char == " " and self.at == start:
                raise ValueError(f"a space at position {self.at} leading the value must be escaped")
            if char == " " and self.text[self.at + 1 : self.at + 2] in ("", ",", "+"):
                raise ValueError(f"a space at position {self.at} ending the value must be escaped")
            try:
                octets += char.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"character {char!r} at position {self.at} is no Unicode scalar value") from None
            self.at += 1
        try:
            return octets.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"the value of {name} at position {start} is not UTF-8") from None

    def _escape(self) -> bytes:
        pair = self.text[self.at + 1 : self.at + 3]
        if not pair:
            raise ValueError(f"'\\' at position {self.at} escapes nothing")
        if len(pair) == 2 and set(pair) <= _HEX:
            self.at += 3
            return bytes.fromhex(pair)
        if pair[0] in _ESCAPABLE:
            self.at += 2
            return pair[0].encode()
        raise ValueError(f"'\\' at position {self.at} escapes neither a special character nor two hex digits")

    def _hexstring(self, start: int) -> str:
        end = start + 1
        while end < len(self.text) and self.text[end] not in ",+":
            end += 1
        digits = self.text[start + 1 : end]
        self.at = end
        if not digits:
            return "#"  # OpenSSL leaves a value of one '#' unescaped; no hexstring is empty
        if len(digits) % 2 or not set(digits) <= _HEX:
            raise ValueError(f"the hexstring at position {start} is not an even number of hex digits")
        try:
            tag, content, rest = _tlv(bytes.fromhex(digits))
        except ValueError:
            rest = b"?"
        if rest:
            raise ValueError(f"the hexstring at position {start} is not the BER of one string")
        codec = _STRING_CODECS.get(tag)
        if codec is None:
            raise ValueError(f"the hexstring at position {start} holds an ASN.1 value of tag 0x{tag:02X}, not a string")
        try:
            return codecs.decode(content, codec)
        except UnicodeDecodeError:
            raise ValueError(f"the hexstring at position {start} is not a valid {codec} string") from None


def strip(value: str) -> str:
    """`value` without the whitespace around it, its escaped trailing space (`CN=x\\ `) kept.

    What HTTP does to a header value, or `str.strip` to a typed subject, takes the space of a final `\\ ` too;
    a value that ends in an odd number of backslashes had it and gets it back (an even number are escaped
    backslashes: `CN=x\\\\`).
    """
    kept = value.strip(" \t\r\n")
    backslashes = len(kept) - len(kept.rstrip("\\"))
    return kept + " " if backslashes % 2 else kept


def parse_dn(value: str) -> x509.Name:
    """The name `value` spells in RFC 4514 (or OpenSSL's RFC 2253 output). Raises ValueError saying what is wrong."""
    if value == "":
        return x509.Name([])
    reader = _Reader(value)
    rdns: list[x509.RelativeDistinguishedName] = []
    attributes = [reader.attribute()]
    while True:
        separator = reader.peek()
        if separator != "+":
            rdns.append(x509.RelativeDistinguishedName(attributes))
            attributes = []
        if separator == "":
            break
        reader.at += 1
        attributes.append(reader.attribute())
    return x509.Name(reversed(rdns))


def _der_key(attribute: x509.NameAttribute) -> bytes:
    """The DER of one AttributeTypeAndValue: how DER orders the attributes of an RDN (a SET OF)."""
    _tag, name_content, _rest = _tlv(x509.Name([x509.RelativeDistinguishedName([attribute])]).public_bytes())
    _tag, set_content, _rest = _tlv(name_content)
    return set_content


def canonical_dn(value: str) -> str:
    """One spelling per DN: RFC 4514 as cryptography writes it, which is how the engine's ledger writes subjects.

    The attributes of a multi-valued RDN stand in their DER order, as they come out of a certificate.
    """
    name = parse_dn(value)
    return x509.Name([x509.RelativeDistinguishedName(sorted(rdn, key=_der_key)) for rdn in name.rdns]).rfc4514_string()
