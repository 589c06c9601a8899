"""Certificates the CA engine refuses to make, for the web scenarios' negative tests.

Runs on the CA host (python3-cryptography), reads a JSON object of CSRs (PEM) on
stdin and prints a JSON object of certificates (PEM):

  expired     signed by the users CA, notBefore 30 days ago, notAfter yesterday
              (the engine refuses to backdate);
  serverauth  signed by the users CA with serverAuth only: a server certificate
              offered as a client certificate (the users CA refuses serverAuth);
  foreign     signed by a throwaway CA whose name is the users CA's name: only
              the signature tells them apart;
  foreign_ca  that throwaway CA's certificate.

Only CSRs come in and certificates go out: the keys stay on the client host.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def leaf(
    csr: x509.CertificateSigningRequest,
    *,
    issuer: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    usage: x509.ObjectIdentifier,
) -> x509.Certificate:
    """An end-entity certificate for the CSR's key and subject, signed by `key`."""
    if not csr.is_signature_valid:
        raise SystemExit("web_fixture: a CSR's signature does not verify")
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(issuer.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def throwaway_ca(name: x509.Name) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA with the given name and a key nobody keeps."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ca", required=True, type=Path, help="directory of the users CA (ca.crt, ca.key)")
    args = parser.parse_args()
    csrs = {name: x509.load_pem_x509_csr(text.encode()) for name, text in json.load(sys.stdin).items()}
    ca_cert = x509.load_pem_x509_certificate((args.ca / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((args.ca / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise SystemExit("web_fixture: the users CA key is not an ECDSA key")
    client, server = ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH
    foreign_ca, foreign_key = throwaway_ca(ca_cert.subject)
    out = {
        "expired": pem(
            leaf(
                csrs["expired"],
                issuer=ca_cert,
                key=ca_key,
                not_before=NOW - 30 * DAY,
                not_after=NOW - DAY,
                usage=client,
            )
        ),
        "serverauth": pem(
            leaf(
                csrs["serverauth"],
                issuer=ca_cert,
                key=ca_key,
                not_before=NOW - DAY,
                not_after=NOW + 30 * DAY,
                usage=server,
            )
        ),
        "foreign": pem(
            leaf(
                csrs["foreign"],
                issuer=foreign_ca,
                key=foreign_key,
                not_before=NOW - DAY,
                not_after=NOW + 30 * DAY,
                usage=client,
            )
        ),
        "foreign_ca": pem(foreign_ca),
    }
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
