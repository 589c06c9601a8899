# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pins of public keys: the SHA-256 of a certificate's SubjectPublicKeyInfo (DER).

The portal accepts identity headers only from a connection whose client
certificate carries a pinned key (auth.proxy_spki_sha256 and the file the
portal role writes). The pins are computed on the controller from the
certificates the role reads on the web hosts (public data), with the same
definition the portal uses (securestack_portal.identity.spki_sha256).

- spki_sha256: the pin of one PEM certificate.
- spki_pins: the pins of the certificates of an ansible.builtin.slurp loop,
  with the loop item each came from; results without content are left out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # pragma: no cover - ansible-test's import test has no cryptography
    HAS_CRYPTOGRAPHY = False
else:
    HAS_CRYPTOGRAPHY = True


def _pin(pem: bytes, what: str) -> str:
    if not HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError("the spki pin filters need the Python library cryptography on the controller")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise AnsibleFilterError(f"{what} is not a PEM certificate: {exc}") from exc
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def spki_sha256(pem: Any) -> str:
    """SHA-256 in lower-case hex of the SubjectPublicKeyInfo of the first certificate in `pem`."""
    if isinstance(pem, str):
        pem = pem.encode()
    if not isinstance(pem, bytes):
        raise AnsibleFilterError(f"spki_sha256 wants a PEM certificate as a string, got {type(pem).__name__}")
    return _pin(pem, "the input")


def spki_pins(results: Any) -> list[dict]:
    """[{item, sha256}] for each slurp result with content, in the loop's order."""
    if isinstance(results, Mapping) and "results" in results:
        results = results["results"]
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Iterable):
        raise AnsibleFilterError(f"spki_pins wants the results of a slurp loop, got {type(results).__name__}")
    pins = []
    for result in results:
        if not isinstance(result, Mapping) or "item" not in result:
            raise AnsibleFilterError(f"every result must be a dictionary with the loop's item, got {result!r}")
        content = result.get("content")
        if content is None:
            continue
        source = f" ({result['source']})" if result.get("source") else ""
        what = f"the certificate slurped for {result['item']}{source}"
        try:
            pem = base64.b64decode(content, validate=True)
        except (binascii.Error, TypeError) as exc:
            raise AnsibleFilterError(f"{what} is not base64 (slurp's content): {exc}") from exc
        pins.append({"item": result["item"], "sha256": _pin(pem, what)})
    return pins


class FilterModule:
    """securestack.pki filters for key pins."""

    def filters(self) -> dict:
        return {"spki_sha256": spki_sha256, "spki_pins": spki_pins}
