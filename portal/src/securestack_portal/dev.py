"""Development mode only ([dev] enabled = true, SQLite only): every request acts as one local certificate.

The middleware removes any identity header the client sent and sets them from
the certificate named in the configuration, as the web tier would. It is never
installed unless the configuration turns development mode on.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization


class DevIdentity:
    def __init__(self, app, certificate_file: str) -> None:
        self.app = app
        cert = x509.load_pem_x509_certificate(Path(certificate_file).read_bytes())
        der = cert.public_bytes(serialization.Encoding.DER)
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.headers = {
            "HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS",
            "HTTP_X_SSL_CLIENT_S_DN": cert.subject.rfc4514_string(),
            "HTTP_X_SSL_CLIENT_I_DN": cert.issuer.rfc4514_string(),
            "HTTP_X_SSL_CLIENT_SERIAL": format(cert.serial_number, "X"),
            "HTTP_X_SSL_CLIENT_FINGERPRINT": hashlib.sha1(der).hexdigest(),  # noqa: S324  (nginx's fingerprint)
            "HTTP_X_SSL_CLIENT_CERT": urllib.parse.quote(pem),
        }

    def __call__(self, environ: dict, start_response):
        for key in [k for k in environ if k.startswith("HTTP_X_SSL_CLIENT")]:
            del environ[key]
        environ.update(self.headers)
        return self.app(environ, start_response)
