"""Issue 12 (security review), the portal's findings: each test tries what the review did and sees it refused.

1 four eyes for every subject but one's own; 4 approvers see every name and the key, the stored CSR is the
parsed one, a person's certificate holds the names the configuration permits; 6 input errors are 4xx;
8 admin_subjects apply on first sight only; 9 per-user quotas, no downloads made by other sites.
"""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from conftest import ADMIN, Harness, Person, PortalClient, make_csr
from securestack_portal import pki
from securestack_portal.config import ConfigError, parse

PASSPHRASE = "correct horse battery staple"
RITA = "CN=Rita Requester,O=SecureStack"
BEA = "CN=Bea Approver,O=SecureStack"


@pytest.fixture(autouse=True)
def fast_pkcs12(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pki, "PKCS12_KDF_ROUNDS", 1000)


def api_generate(client: PortalClient, **fields: str):
    return client.api("post", "/api/v1/requests/generate", {"passphrase": PASSPHRASE, **fields})


def csr_with(subject: str, names: list[x509.GeneralName], key=None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name.from_rfc4514_string(subject))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def events(portal: Harness, action: str) -> list[dict]:
    return [e for e in portal.rows("audit_events") if e["action"] == action]


# ------------------------------------------------------------------ finding 1: four eyes for others' subjects
def test_an_approver_generating_for_the_admin_subject_gets_a_pending_request(
    portal: Harness, approver: tuple[Person, PortalClient]
) -> None:
    """Before: issued at once, and the PKCS#12 let the approver sign in as the configured admin."""
    arno, client = approver
    ledger = portal.ledger()
    response = api_generate(client, common_name="Alice Admin", organization="SecureStack")
    assert response.status_code == 201, response.json
    assert response.json["certificate"] is None
    assert response.json["request"]["status"] == "pending"
    assert response.json["request"]["subject"] == ADMIN and response.json["request"]["owner"] == arno.subject
    bundle = pkcs12.load_pkcs12(base64.b64decode(response.json["pkcs12"]), PASSPHRASE.encode())
    assert bundle.cert is None
    assert portal.ledger() == ledger  # nothing issued
    (generated,) = events(portal, "request.generate")
    assert generated["actor"] == arno.subject and json.loads(generated["detail"])["subject"] == ADMIN
    assert events(portal, "request.approve") == []


def test_an_approver_cannot_mint_a_second_approver_and_approve_in_that_name(make_harness) -> None:
    """Before: the certificate for the other approver came at once, and with it the approver's own request
    was approved "by" the other. Now the generated request waits, and its filer cannot decide it."""
    for allow_self in (False, True):
        portal = make_harness(allow_self_approval=allow_self)
        arno_person = portal.person("CN=Arno Approver,O=SecureStack", role="approver")
        arno = portal.client(arno_person)
        bea = portal.client(portal.person(BEA, role="approver"))
        assert bea.api("get", "/api/v1/me").json["role"] == "approver"  # Bea has an account and a role
        ledger = portal.ledger()
        made = api_generate(arno, common_name="Bea Approver", organization="SecureStack")
        assert made.status_code == 201 and made.json["certificate"] is None
        request_id = made.json["request"]["id"]
        decided = arno.api("post", f"/api/v1/requests/{request_id}/approve", {"comment": "me"})
        assert decided.status_code == 403, decided.json
        expected = "not for you" if allow_self else "their own request"
        assert expected in decided.json["error"]
        assert "Approve and issue" not in arno.get(f"/requests/{request_id}").text
        assert portal.ledger() == ledger
        assert portal.rows("requests")[0]["status"] == "pending"
        assert events(portal, "request.generate")[0]["actor"] == arno_person.subject


def test_a_generated_request_for_someone_else_is_decided_by_another_approver(
    portal: Harness, approver: tuple[Person, PortalClient]
) -> None:
    arno, client = approver
    made = api_generate(client, common_name="New Hire", organization="SecureStack")
    request_id = made.json["request"]["id"]
    bea = portal.client(portal.person(BEA, role="approver"))
    done = bea.api("post", f"/api/v1/requests/{request_id}/approve", {"comment": "known"})
    assert done.status_code == 200 and done.json["status"] == "issued"
    assert done.json["owner"] == arno.subject and done.json["decided_by"] == BEA
    (approved,) = events(portal, "request.approve")
    assert approved["actor"] == BEA


def test_with_enrol_new_subjects_an_approver_enrols_a_new_subject_at_once(make_harness) -> None:
    """enrol_new_subjects (one-admin setups, the demo): a subject nobody holds is issued at once, audited
    as the approver's enrolment; the PKCS#12 holds key, certificate and chain."""
    portal = make_harness(enrol_new_subjects=True)
    arno_person = portal.person("CN=Arno Approver,O=SecureStack", role="approver")
    made = api_generate(portal.client(arno_person), common_name="New Hire", organization="SecureStack")
    assert made.status_code == 201 and made.json["request"]["status"] == "issued", made.json
    bundle = pkcs12.load_pkcs12(base64.b64decode(made.json["pkcs12"]), PASSPHRASE.encode())
    assert bundle.cert.certificate.subject.rfc4514_string() == "CN=New Hire,O=SecureStack"
    (approved,) = events(portal, "request.approve")
    assert approved["actor"] == arno_person.subject
    assert "enrol_new_subjects" in json.loads(approved["detail"])["comment"]


@pytest.mark.parametrize(
    ("holder", "reason"),
    [
        ("account", "the subject has an account"),
        ("role", "the subject has an account"),  # an admin set the role before the first sign-in
        ("admin", "the subject is an admin of the configuration"),
        ("certificate", "the users CA has issued a certificate for the subject"),
    ],
)
def test_with_enrol_new_subjects_a_subject_someone_holds_still_waits(make_harness, holder: str, reason: str) -> None:
    """enrol_new_subjects never reaches a subject that belongs to someone: the configured admin (before
    and after their first sign-in), an account, a role set ahead, a certificate issued outside the portal."""
    portal = make_harness(enrol_new_subjects=True)
    arno_person = portal.person("CN=Arno Approver,O=SecureStack", role="approver")
    arno = portal.client(arno_person)
    subject, common_name = ("CN=Rita Requester,O=SecureStack", "Rita Requester")
    if holder == "account":
        portal.client(portal.person(subject)).api("get", "/api/v1/me")
    elif holder == "role":
        portal.set_role(subject, "approver")
    elif holder == "admin":
        subject, common_name = ADMIN, "Alice Admin"
    else:
        portal.person(subject)  # issued by the users CA, never signed in
    users = portal.rows("users")
    ledger = portal.ledger()
    made = api_generate(arno, common_name=common_name, organization="SecureStack")
    assert made.status_code == 201 and made.json["certificate"] is None
    assert made.json["request"]["status"] == "pending" and made.json["request"]["subject"] == subject
    assert portal.ledger() == ledger and events(portal, "request.approve") == []
    (held,) = events(portal, "request.held")
    assert held["actor"] == arno_person.subject and json.loads(held["detail"])["reason"] == reason
    assert [u["subject"] for u in portal.rows("users")] == [u["subject"] for u in users]


def test_a_csr_for_another_subject_is_never_self_approved(make_harness) -> None:
    """Before: with allow_self_approval (a one-person setup) an approver filed a CSR for the admin's
    subject and approved it themselves."""
    portal = make_harness(allow_self_approval=True)
    arno_person = portal.person("CN=Arno Approver,O=SecureStack", role="approver")
    arno = portal.client(arno_person)
    ledger = portal.ledger()
    filed = arno.api("post", "/api/v1/requests", {"csr": make_csr(ADMIN)})
    assert filed.status_code == 201 and filed.json["status"] == "pending"
    decided = arno.api("post", f"/api/v1/requests/{filed.json['id']}/approve", {})
    assert decided.status_code == 403 and "needs another approver's decision" in decided.json["error"]
    assert portal.ledger() == ledger
    (submitted,) = events(portal, "request.submit")
    assert submitted["actor"] == arno_person.subject and json.loads(submitted["detail"])["subject"] == ADMIN
    # their own subject stays self-approvable where the configuration allows it
    own = arno.api("post", "/api/v1/requests", {"csr": make_csr(arno_person.subject)})
    assert arno.api("post", f"/api/v1/requests/{own.json['id']}/approve", {}).status_code == 200


# ------------------------------------------------------------------ finding 4: every name, the key, the CSR
def test_the_approver_sees_every_name_and_the_key(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    """Before: the page and the API showed the subject and the raw PEM only."""
    _rita, rita = requester
    key = ec.generate_private_key(ec.SECP384R1())
    csr = csr_with(RITA, [x509.RFC822Name("rita@example.org"), x509.RFC822Name("ceo@example.org")], key)
    filed = rita.api("post", "/api/v1/requests", {"csr": csr})
    assert filed.status_code == 201, filed.json
    _arno, arno = approver
    shown = arno.api("get", f"/api/v1/requests/{filed.json['id']}").json
    spki = pki.describe_key(key.public_key())
    assert shown["names"] == {"dns": [], "ip": [], "email": ["rita@example.org", "ceo@example.org"]}
    assert shown["key"] == {"type": "ECDSA P-384", "size": 384} and spki == ("ECDSA P-384", 384)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib

    assert shown["spki_sha256"] == hashlib.sha256(der).hexdigest()
    page = arno.get(f"/requests/{filed.json['id']}").text
    for text in ("rita@example.org", "ceo@example.org", "ECDSA P-384, 384 bits", shown["spki_sha256"]):
        assert text in page, text
    assert json.loads(events(portal, "request.submit")[0]["detail"])["email"] == ["rita@example.org", "ceo@example.org"]


def test_an_rsa_key_is_shown_with_its_size(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    _rita, rita = requester
    csr = make_csr(RITA, key=rsa.generate_private_key(65537, 3072))
    filed = rita.api("post", "/api/v1/requests", {"csr": csr})
    assert filed.json["key"] == {"type": "RSA", "size": 3072}


def test_text_around_the_csr_is_refused(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    """Before: the user's text, free text around the PEM included, was stored and shown to approvers."""
    _rita, rita = requester
    csr = make_csr(RITA)
    pasted = "Please approve quickly, the CEO said so <b>ok</b>\n" + csr + "\nalso add www.evil.example\n"
    response = rita.submit("/requests/new", "/requests/new", {"csr": pasted})
    assert response.status_code == 400
    assert "exactly one PEM block of type CERTIFICATE REQUEST" in response.text
    assert portal.rows("requests") == []


def test_only_the_parsed_csr_is_stored(portal: Harness, requester: tuple[Person, PortalClient]) -> None:
    """White space and CRLF line ends around a CSR are accepted; what is stored is the CSR re-encoded."""
    _rita, rita = requester
    csr = make_csr(RITA)
    pasted = "\r\n  " + csr.replace("\n", "\r\n") + "\r\n\r\n"
    response = rita.submit("/requests/new", "/requests/new", {"csr": pasted})
    assert response.status_code == 302, response.text
    stored = portal.rows("requests")[0]["csr_pem"]
    assert stored == x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            x509.DNSName("laptop.example.org"),
            "DNS name 'laptop.example.org' refused: a person's certificate holds no DNS",
        ),
        (
            x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
            "IP address 10.1.2.3 refused: a person's certificate holds no IP",
        ),
    ],
)
def test_a_persons_certificate_holds_no_host_names_by_default(
    portal: Harness, requester: tuple[Person, PortalClient], name: x509.GeneralName, message: str
) -> None:
    """Before: the client profile took DNS names and IP addresses from any requester's CSR."""
    _rita, rita = requester
    refused = rita.api("post", "/api/v1/requests", {"csr": csr_with(RITA, [name])})
    assert refused.status_code == 400 and message in refused.json["error"]
    page = rita.submit("/requests/new", "/requests/new", {"csr": csr_with(RITA, [name])})
    assert page.status_code == 400 and message.replace("'", "&#39;") in page.text
    assert portal.rows("requests") == []


def test_names_where_the_configuration_permits_them(make_harness) -> None:
    portal = make_harness(
        sections={
            "names": {
                "email_domains": ["example.org"],
                "dns_domains": ["hosts.example.org"],
                "ip_ranges": ["10.0.0.0/8"],
            }
        }
    )
    rita = portal.client(portal.person(RITA))
    good = [
        x509.RFC822Name("rita@example.org"),
        x509.DNSName("pc.hosts.example.org"),
        x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
    ]
    assert rita.api("post", "/api/v1/requests", {"csr": csr_with(RITA, good)}).status_code == 201
    for bad, message in [
        (x509.RFC822Name("rita@evil.example"), "addresses in example.org only ([names] email_domains)"),
        (x509.DNSName("www.example.org"), "holds names in hosts.example.org only"),
        (x509.IPAddress(ipaddress.ip_address("192.168.1.1")), "holds addresses in 10.0.0.0/8 only"),
    ]:
        refused = rita.api("post", "/api/v1/requests", {"csr": csr_with(RITA, [bad])})
        assert refused.status_code == 400 and message in refused.json["error"], refused.json
    assert len(portal.rows("requests")) == 1


def test_names_are_checked_again_on_approval(make_harness) -> None:
    """A request filed under a laxer [names] is not signed once the configuration forbids its names."""
    from dataclasses import replace

    from securestack_portal import create_app
    from securestack_portal.config import NamesConfig

    portal = make_harness(sections={"names": {"dns_domains": ["hosts.example.org"]}})
    rita = portal.client(portal.person(RITA))
    filed = rita.api("post", "/api/v1/requests", {"csr": csr_with(RITA, [x509.DNSName("pc.hosts.example.org")])})
    assert filed.status_code == 201
    portal.app = create_app(replace(portal.config, names=NamesConfig()))
    arno = portal.client(portal.person("CN=Arno,O=SecureStack", role="approver"))
    ledger = portal.ledger()
    refused = arno.api("post", f"/api/v1/requests/{filed.json['id']}/approve", {})
    assert refused.status_code == 400 and "holds no DNS names" in refused.json["error"]
    assert portal.ledger() == ledger and portal.rows("requests")[0]["status"] == "pending"


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"dns_domains": ["*.example.org"]}, "wildcard name"),
        ({"ip_ranges": ["not a range"]}, "is not an IP network"),
        ({"email_domains": "example.org"}, "names.email_domains must be a list of strings"),
    ],
)
def test_bad_name_settings_are_refused_at_start(names: dict, message: str) -> None:
    data = {"secret_key_file": "k", "database": {"url": "sqlite://"}, "ca": {"dir": "d"}, "names": names}
    with pytest.raises(ConfigError, match=message):
        parse(data)


# ------------------------------------------------------------------ finding 6: input errors are 4xx
def test_an_unsupported_key_type_is_a_400(portal: Harness, approver: tuple[Person, PortalClient]) -> None:
    """Before: pki.generate_key's PkiError escaped: HTTP 500."""
    _arno, arno = approver
    response = api_generate(arno, key_type="dsa-1024")
    assert response.status_code == 400
    assert response.json["error"] == "unknown key type 'dsa-1024': use one of ecdsa-p256, ecdsa-p384, rsa-3072"
    assert portal.rows("requests") == []


def test_an_oversized_audit_offset_is_a_400(portal: Harness, approver: tuple[Person, PortalClient]) -> None:
    """Before: SQLite's OverflowError on an offset past 2**63: HTTP 500."""
    _arno, arno = approver
    api = arno.api("get", f"/api/v1/audit?offset={10**30}")
    assert api.status_code == 400 and f"offset {10**30} is out of range" in api.json["error"]
    assert arno.api("get", "/api/v1/audit?offset=-5").status_code == 400
    page = arno.get(f"/audit?page={10**30}")
    assert page.status_code == 400 and "out of range" in page.text
    assert arno.api("get", "/api/v1/audit?offset=1000").status_code == 200


# ------------------------------------------------------------------ finding 8: admin_subjects on first sight only
def test_a_configured_admin_can_be_demoted(portal: Harness) -> None:
    """Before: user_for made the configured subject admin again on its next request."""
    alice = portal.client(portal.person(ADMIN))
    assert alice.api("get", "/api/v1/me").json["role"] == "admin"  # first sight
    portal.person("CN=Bob Admin,O=SecureStack", role="admin")
    bob = portal.client(portal.person("CN=Bob Admin,O=SecureStack"))
    demoted = bob.api("put", "/api/v1/users", {"subject": ADMIN, "role": "requester"})
    assert demoted.status_code == 200 and demoted.json["role"] == "requester"
    assert alice.api("get", "/api/v1/me").json["role"] == "requester"
    assert alice.api("get", "/api/v1/users").status_code == 403
    roles = [json.loads(e["detail"]) for e in events(portal, "user.role")]
    assert roles == [{"before": "admin", "role": "requester"}]


# ------------------------------------------------------------------ finding 9: quotas, cross-site downloads
def test_pending_requests_per_user_are_limited(make_harness) -> None:
    """Before: no limit on the requests one person leaves for the approvers."""
    portal = make_harness(sections={"limits": {"max_pending_requests": 2}})
    rita = portal.client(portal.person(RITA))
    for _filed in range(2):
        assert rita.api("post", "/api/v1/requests", {"csr": make_csr(RITA)}).status_code == 201
    refused = rita.api("post", "/api/v1/requests", {"csr": make_csr(RITA)})
    assert refused.status_code == 429
    assert "you have 2 requests waiting for a decision" in refused.json["error"]
    assert "max_pending_requests = 2" in refused.json["error"]
    page = rita.submit("/requests/new", "/requests/new", {"csr": make_csr(RITA)})
    assert page.status_code == 429 and "waiting for a decision" in page.text
    generated = api_generate(rita)
    assert generated.status_code == 429
    assert len(portal.rows("requests")) == 2
    # a decision frees a place
    arno = portal.client(portal.person("CN=Arno,O=SecureStack", role="approver"))
    arno.api("post", f"/api/v1/requests/{portal.rows('requests')[0]['id']}/reject", {"comment": "duplicate"})
    assert rita.api("post", "/api/v1/requests", {"csr": make_csr(RITA)}).status_code == 201


def test_key_generations_per_user_and_hour_are_limited(make_harness) -> None:
    """Before: every call made an RSA-3072 key and a PKCS#12 (about half a second of CPU), without end."""
    portal = make_harness(sections={"limits": {"generations_per_hour": 1}})
    rita = portal.client(portal.person(RITA))
    assert api_generate(rita).status_code == 201
    refused = api_generate(rita, key_type="rsa-3072")
    assert refused.status_code == 429
    assert "made 1 key pairs for you in the last hour" in refused.json["error"]
    page = rita.submit(
        "/requests/new",
        "/requests/generate",
        {"key_type": "ecdsa-p256", "passphrase": PASSPHRASE, "confirm": PASSPHRASE},
    )
    assert page.status_code == 429 and "generations_per_hour = 1" in page.text
    assert len(portal.rows("requests")) == 1


@pytest.mark.parametrize("value", [0, -1, "3", True])
def test_bad_limits_are_refused_at_start(value: object) -> None:
    data = {"secret_key_file": "k", "database": {"url": "sqlite://"}, "ca": {"dir": "d"}}
    with pytest.raises(ConfigError, match=r"limits\.max_pending_requests must be a whole number of at least 1"):
        parse({**data, "limits": {"max_pending_requests": value}})


def test_another_site_cannot_make_a_browser_download(
    portal: Harness, requester: tuple[Person, PortalClient], approver: tuple[Person, PortalClient]
) -> None:
    """Before: an <img> on any site pointing at a download wrote an audit row per view."""
    _rita, rita = requester
    _arno, arno = approver
    request_id = rita.api("post", "/api/v1/requests", {"csr": make_csr(RITA)}).json["id"]
    serial = arno.api("post", f"/api/v1/requests/{request_id}/approve", {}).json["serial"]
    for site in ("cross-site", "same-site"):
        for suffix in (".crt", "-chain.pem", "-fullchain.pem"):
            response = rita.get(f"/certificates/{serial}{suffix}", headers={"Sec-Fetch-Site": site})
            assert response.status_code == 403 and "downloads from another site are refused" in response.text
    assert events(portal, "certificate.download") == []
    for site in ("same-origin", "none"):
        assert rita.get(f"/certificates/{serial}.crt", headers={"Sec-Fetch-Site": site}).status_code == 200
    assert len(events(portal, "certificate.download")) == 2
