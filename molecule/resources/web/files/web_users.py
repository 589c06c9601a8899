"""The test users' keys and certificates on the client host of the web scenarios.

  web_users.py csrs --dir DIR      stdin: {"name": "common name", ...}
      makes DIR/<name>.key (ECDSA P-256, 0600) when missing, and prints
      {"name": CSR (PEM), ...} for subject CN=<common name>,O=SecureStack;
  web_users.py install --dir DIR   stdin: {"name": certificate (PEM), ...}
      writes DIR/<name>.crt (0644) and prints the names it changed.

One process for all users: the scenario's prepare step stays short.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def load_or_make_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SystemExit(f"web_users: {path} is not an ECDSA key")
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def csrs(directory: Path, users: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, common_name in users.items():
        key = load_or_make_key(directory / f"{name}.key")
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SecureStack"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        out[name] = csr.public_bytes(serialization.Encoding.PEM).decode()
    return out


def install(directory: Path, certificates: dict[str, str]) -> list[str]:
    changed = []
    for name, pem in certificates.items():
        path = directory / f"{name}.crt"
        if path.exists() and path.read_text() == pem:
            continue
        path.write_text(pem)
        path.chmod(0o644)
        changed.append(name)
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["csrs", "install"])
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args()
    data = json.load(sys.stdin)
    result = csrs(args.dir, data) if args.action == "csrs" else install(args.dir, data)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
