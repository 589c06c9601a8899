"""Test harness: the engine linked as `securestack_pki`, a root, a services CA with the proxy's certificate,
and per test a fresh users CA, SQLite database and application."""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE_FILES = sorted((REPO / "plugins" / "module_utils").glob("_pki_*.py"))


def link_engine() -> Path:
    """A temporary `securestack_pki` package of symlinks to the collection's engine (as the role installs copies)."""
    root = Path(tempfile.mkdtemp(prefix="portal-engine-"))
    package = root / "securestack_pki"
    package.mkdir()
    for source in [*ENGINE_FILES, REPO / "roles" / "ca" / "files" / "__init__.py"]:
        if source.name != "_pki_module.py":
            (package / source.name).symlink_to(source)
    return root


sys.path[:0] = [str(link_engine()), str(REPO / "portal" / "src")]

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from securestack_pki._pki_ca import AuthoritySettings, CertificateAuthority, SignSpec  # noqa: E402

from securestack_portal import create_app  # noqa: E402
from securestack_portal.config import parse  # noqa: E402
from securestack_portal.database import make_engine, upgrade  # noqa: E402
from securestack_portal.models import User, subject_digest  # noqa: E402

BASE_URL = "https://portal.test"
PROXY_CN = "web1"
# The key of the web tier's proxy certificate, fixed so that its pin (proxy_spki_sha256) is known here.
PROXY_KEY = ec.derive_private_key(0x5EC57AC4, ec.SECP256R1())
PROXY_SPKI_SHA256 = hashlib.sha256(
    PROXY_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).hexdigest()
SERVICES_CA = "CN=SecureStack Services CA,O=SecureStack"
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def make_csr(subject: str | x509.Name, key=None, emails: tuple[str, ...] = ()) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    name = subject if isinstance(subject, x509.Name) else x509.Name.from_rfc4514_string(subject)
    builder = x509.CertificateSigningRequestBuilder().subject_name(name)
    if emails:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.RFC822Name(e) for e in emails]), False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class Person:
    subject: str
    serial: str
    pem: str

    @property
    def der(self) -> bytes:
        return x509.load_pem_x509_certificate(self.pem.encode()).public_bytes(serialization.Encoding.DER)

    def headers(self, issuer: str) -> dict[str, str]:
        """What nginx sends for this certificate."""
        return {
            "X-SSL-Client-Verify": "SUCCESS",
            "X-SSL-Client-S-DN": self.subject,
            "X-SSL-Client-I-DN": issuer,
            "X-SSL-Client-Serial": self.serial.upper(),
            "X-SSL-Client-Fingerprint": hashlib.sha1(self.der).hexdigest(),  # noqa: S324
            "X-SSL-Client-Cert": urllib.parse.quote(self.pem),
        }


class FakeTlsSocket:
    """What gunicorn puts in environ["gunicorn.socket"]: an SSL socket with the peer's certificate."""

    def __init__(self, der: bytes | None) -> None:
        self.der = der

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        assert binary_form
        return self.der


class PortalClient:
    """A Flask test client that arrives through the proxy (TLS peer certificate) as one person."""

    def __init__(self, client: FlaskClient, headers: dict[str, str], peer: bytes | None) -> None:
        self.client = client
        self.headers = headers
        self.peer = peer

    def _kwargs(self, kwargs: dict) -> dict:
        headers = {"Referer": BASE_URL + "/", **self.headers, **kwargs.pop("headers", {})}
        environ = {"gunicorn.socket": FakeTlsSocket(self.peer), **kwargs.pop("environ_base", {})}
        return {"headers": headers, "environ_base": environ, "base_url": BASE_URL, **kwargs}

    def get(self, path: str, **kwargs):
        return self.client.get(path, **self._kwargs(kwargs))

    def post(self, path: str, **kwargs):
        return self.client.post(path, **self._kwargs(kwargs))

    def put(self, path: str, **kwargs):
        return self.client.put(path, **self._kwargs(kwargs))

    def csrf_token(self, page: str) -> str:
        response = self.get(page)
        assert response.status_code == 200, response.text
        match = CSRF_FIELD.search(response.text)
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def submit(self, page: str, action: str, data: dict, **kwargs):
        """Post a form the way a browser does: token from the page, then the post."""
        return self.post(action, data={"csrf_token": self.csrf_token(page), **data}, **kwargs)

    def api(self, method: str, path: str, body: object = None):
        call = getattr(self.client, method.lower())
        kwargs = {} if body is None else {"json": body}
        return call(path, **self._kwargs(kwargs))


@dataclass(frozen=True)
class Pki:
    root: Path
    services: Path
    proxy_der: bytes
    other_proxy_der: bytes
    server_der: bytes


def _services_cert(services: Path, cn: str, profile: str, key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if profile == "server":
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    csr = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    pem = CertificateAuthority.open(str(services)).sign([SignSpec(csr=csr, profile=profile, name=cn)])[0].certificate
    return x509.load_pem_x509_certificate((pem or "").encode()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    root = base / "root"
    CertificateAuthority.ensure(
        str(root), AuthoritySettings(common_name="Test Root CA", organization_name="SecureStack")
    )
    services = base / "services"
    CertificateAuthority.ensure(
        str(services),
        AuthoritySettings(common_name="SecureStack Services CA", organization_name="SecureStack"),
        parent=str(root),
    )
    return Pki(
        root=root,
        services=services,
        proxy_der=_services_cert(services, PROXY_CN, "client", PROXY_KEY),
        other_proxy_der=_services_cert(services, "db1", "client"),
        server_der=_services_cert(services, PROXY_CN, "server"),
    )


@dataclass
class Harness:
    """One portal: its users CA, its SQLite database, its application."""

    pki: Pki
    directory: Path
    users_ca: Path
    app: object
    config: object
    people: dict[str, Person] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return CertificateAuthority.open(str(self.users_ca)).certificate.subject.rfc4514_string()

    def person(self, subject: str, role: str | None = None) -> Person:
        """A client certificate of the users CA for `subject` (issued outside the portal, as Ansible would)."""
        csr = make_csr(subject)
        result = CertificateAuthority.open(str(self.users_ca)).sign([SignSpec(csr=csr, profile="client")])[0]
        person = Person(subject=subject, serial=result.serial or "", pem=result.certificate or "")
        if role is not None:
            self.set_role(subject, role)
        return person

    def set_role(self, subject: str, role: str) -> None:
        from sqlalchemy.orm import Session

        with Session(make_engine(self.config.database)) as session:
            user = session.query(User).filter_by(subject_sha256=subject_digest(subject)).one_or_none()
            if user is None:
                user = User(subject=subject, subject_sha256=subject_digest(subject))
                session.add(user)
            user.role = role
            session.commit()

    def client(self, person: Person | None, peer: bytes | None = b"proxy", headers: dict | None = None) -> PortalClient:
        sent = person.headers(self.issuer) if person else {}
        der = self.pki.proxy_der if peer == b"proxy" else peer
        return PortalClient(self.app.test_client(), {**sent, **(headers or {})}, der)

    def rows(self, table: str) -> list[dict]:
        """Every row of a table of the portal's database, read directly."""
        import sqlite3

        db = sqlite3.connect(self.directory / "portal.sqlite3")
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY id")]  # noqa: S608  (test tables)
        finally:
            db.close()

    def ledger(self) -> list[tuple]:
        ca = CertificateAuthority.open(str(self.users_ca))
        try:
            return [(e.serial, e.revoked_at) for e in ca.ledger.all()]
        finally:
            ca.ledger.close()


ADMIN = "CN=Alice Admin,O=SecureStack"


# What the web tier's names would give: the test client's BASE_URL, a public name, a port-forward.
TRUSTED_HOSTS = ("portal.test", "portal.example.org", "localhost:8443")


def portal_config(
    directory: Path, users_ca: Path, trusted_hosts: tuple[str, ...] = TRUSTED_HOSTS, **auth: object
) -> dict:
    (directory / "secret_key").write_text("s" * 64)
    return {
        "secret_key_file": str(directory / "secret_key"),
        "database": {"url": f"sqlite:///{directory / 'portal.sqlite3'}"},
        "ca": {"dir": str(users_ca), "user_valid_days": 365},
        "auth": {
            "admin_subjects": [ADMIN],
            "proxy_common_names": [PROXY_CN, "web2"],
            "proxy_issuer": SERVICES_CA,
            "proxy_spki_sha256": [PROXY_SPKI_SHA256],
            **auth,
        },
        "web": {"trusted_hosts": list(trusted_hosts)},
    }


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at head, made once by the migrations and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "portal.sqlite3"
    engine = make_engine(parse_database(f"sqlite:///{path}"))
    upgrade(engine)
    engine.dispose()
    return path


def parse_database(url: str):
    from securestack_portal.config import DatabaseConfig

    return DatabaseConfig(url=url)


@pytest.fixture
def make_harness(pki: Pki, tmp_path: Path, migrated_database: Path):
    """A factory, for tests that need another configuration."""

    def build(trusted_hosts: tuple[str, ...] = TRUSTED_HOSTS, sections: dict | None = None, **auth: object) -> Harness:
        """`sections`: more tables of portal.toml ({"limits": {...}}); `auth`: keys of [auth]."""
        directory = tmp_path / f"portal{len(list(tmp_path.iterdir()))}"
        directory.mkdir()
        users_ca = make_users_ca_under(pki, directory)
        config = parse({**portal_config(directory, users_ca, trusted_hosts, **auth), **(sections or {})})
        shutil.copyfile(migrated_database, directory / "portal.sqlite3")
        app = create_app(config)
        app.config["TESTING"] = False  # keep CSRF and every check on
        return Harness(pki=pki, directory=directory, users_ca=users_ca, app=app, config=config)

    return build


def make_users_ca_under(pki: Pki, directory: Path) -> Path:
    """The users CA as deployed: key made in its own directory, CSR signed by the root (clientAuth only)."""
    settings = AuthoritySettings(common_name="SecureStack Users CA", organization_name="SecureStack")
    users = directory / "users-ca"
    _changed, csr, _b, _a = CertificateAuthority.ensure_external(str(users), settings)
    root = CertificateAuthority.open(str(pki.root))
    signed = root.sign([SignSpec(csr=csr, profile="intermediate", extended_key_usage=["clientAuth"])])[0]
    CertificateAuthority.ensure_external(str(users), settings, certificate=signed.certificate, chain=root.chain_pem)
    return users


@pytest.fixture
def portal(make_harness) -> Iterator[Harness]:
    yield make_harness()


@pytest.fixture
def admin(portal: Harness) -> PortalClient:
    return portal.client(portal.person(ADMIN))


@pytest.fixture
def requester(portal: Harness) -> tuple[Person, PortalClient]:
    person = portal.person("CN=Rita Requester,O=SecureStack")
    return person, portal.client(person)


@pytest.fixture
def approver(portal: Harness) -> tuple[Person, PortalClient]:
    person = portal.person("CN=Arno Approver,O=SecureStack", role="approver")
    return person, portal.client(person)
