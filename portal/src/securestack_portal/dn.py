"""Distinguished names as the web tier prints them (OpenSSL's RFC 2253 form) and as the configuration names them.

cryptography's RFC 4514 parser knows neither `emailAddress` nor `serialNumber`
(both allowed in the engine's subjects), and reads OpenSSL's escaped UTF-8
(`CN=J\\C3\\B6rg`) byte by byte as Latin-1. This module fixes both before handing
the string to cryptography: runs of hex escapes are decoded as UTF-8 (special
characters stay escaped), and the two attribute names are mapped to their OIDs.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.x509.oid import NameOID

ATTRIBUTE_NAMES = {"emailAddress": NameOID.EMAIL_ADDRESS, "serialNumber": NameOID.SERIAL_NUMBER}
_HEX_RUN = re.compile(r"(?:\\[0-9A-Fa-f]{2})+")
_SPECIAL = set(',+"\\<>;=#')


def _decode_run(match: re.Match[str]) -> str:
    raw = bytes.fromhex(match.group(0).replace("\\", ""))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return match.group(0)
    return "".join("\\" + c if c in _SPECIAL or c == " " else c for c in text)


def parse_dn(value: str) -> x509.Name:
    """Raises ValueError when `value` is no distinguished name."""
    return x509.Name.from_rfc4514_string(_HEX_RUN.sub(_decode_run, value), ATTRIBUTE_NAMES)


def canonical_dn(value: str) -> str:
    """One spelling per DN: RFC 4514 as cryptography writes it, which is how the engine's ledger writes subjects."""
    return parse_dn(value).rfc4514_string()
