"""What people do in the portal, shared by the HTML pages and the JSON API.

Every function checks the role rule, acts (through the engine for anything the
users CA does), and writes one audit event in the same database transaction.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from dataclasses import dataclass

from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import dn, pki
from .config import LimitsConfig, NamesConfig
from .dn import canonical_dn, parse_dn
from .identity import Identity
from .models import AuditEvent, CertificateRequest, Role, Status, User, subject_digest, utcnow
from .pki import PkiError, UsersCA

LAST_SEEN_EVERY = datetime.timedelta(hours=1)
MAX_COMMENT = 2000
MIN_PASSPHRASE = 12
# Deeper than any audit log gets; SQLite's integers end at 2**63 - 1 (an OverflowError, not a 4xx).
MAX_AUDIT_OFFSET = 10**9


class ActionError(Exception):
    """An action refused; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Actor:
    """The user acting, with the certificate they acted with (for the audit log)."""

    user: User
    serial: str
    remote_addr: str = ""


# ----------------------------------------------------------------- audit
def audit(session: Session, actor: Actor | None, action: str, target: str = "", **detail: object) -> None:
    session.add(
        AuditEvent(
            at=utcnow(),
            actor=actor.user.subject if actor else "system",
            actor_serial=actor.serial if actor else "",
            action=action,
            target=target[:255],
            detail=json.dumps(detail, sort_keys=True) if detail else "",
            remote_addr=actor.remote_addr[:64] if actor else "",
        )
    )


# ----------------------------------------------------------------- users
def user_for(session: Session, identity: Identity, admin_subjects: tuple[str, ...], remote_addr: str) -> Actor:
    """The user of this certificate's subject, created on first sight.

    `admin_subjects` (the configuration) apply on first sight only: a subject named there becomes
    admin when the portal first sees it, and afterwards its role is what admins set in the portal,
    so a configured admin can be demoted like anyone else.
    """
    digest = subject_digest(identity.subject)
    user = session.scalars(select(User).where(User.subject_sha256 == digest)).one_or_none()
    now = utcnow()
    if user is None:
        named_admin = identity.subject in {canonical_dn(s) for s in admin_subjects}
        role = Role.ADMIN if named_admin else Role.REQUESTER
        user = User(subject=identity.subject, subject_sha256=digest, role=role.value, created_at=now, last_seen_at=now)
        session.add(user)
        try:
            session.flush()
        except IntegrityError:
            # A concurrent first request of the same person (a browser opens
            # several connections) created the user between our read and our
            # write: use theirs.
            session.rollback()
            user = session.scalars(select(User).where(User.subject_sha256 == digest)).one()
        else:
            actor = Actor(user, identity.serial, remote_addr)
            audit(session, actor, "user.first_seen", identity.subject, role=role.value)
            session.commit()
            return actor
    actor = Actor(user, identity.serial, remote_addr)
    if user.last_seen_at is None or now - user.last_seen_at > LAST_SEEN_EVERY:
        user.last_seen_at = now
        session.commit()
    return actor


def set_role(session: Session, actor: Actor, subject: str, role: str) -> User:
    if not actor.user.is_admin:
        raise ActionError("only an admin may change roles", 403)
    if role not in {r.value for r in Role}:
        raise ActionError(f"unknown role {role!r}: use requester, approver or admin")
    try:
        subject = canonical_dn(dn.strip(subject))
    except ValueError:
        raise ActionError(f"{subject!r} is not a distinguished name (RFC 4514, e.g. CN=Jane Doe,O=Example)") from None
    if subject == actor.user.subject and role != Role.ADMIN:
        raise ActionError("an admin cannot take their own admin role away (another admin can)", 403)
    user = session.scalars(select(User).where(User.subject_sha256 == subject_digest(subject))).one_or_none()
    before = user.role if user else None
    if user is None:
        user = User(subject=subject, subject_sha256=subject_digest(subject), role=role)
        session.add(user)
    user.role = role
    audit(session, actor, "user.role", subject, role=role, before=before)
    session.commit()
    return user


# -------------------------------------------------------------- requests
def _check_subject_allowed(actor: Actor, subject: x509.Name) -> None:
    """A requester asks for their own subject only; approvers and admins may enrol others."""
    if not actor.user.can_approve and subject.rfc4514_string() != actor.user.subject:
        raise ActionError(
            f"a requester may only request certificates for their own subject ({actor.user.subject}),"
            f" not {subject.rfc4514_string()}",
            403,
        )


def check_names(names: NamesConfig, validated: pki.ValidatedRequest) -> None:
    """The names a person's certificate may hold: e-mail addresses (in the permitted domains, when
    configured); DNS names and IP addresses only where the configuration permits them (none by default)."""
    for email in validated.emails:
        domain = email.rsplit("@", 1)[1].lower()
        if names.email_domains and not _in_domains(domain, names.email_domains):
            raise ActionError(
                f"e-mail address {email!r} refused: a person's certificate may hold addresses in"
                f" {', '.join(names.email_domains)} only ([names] email_domains)"
            )
    for dns_name in validated.dns_names:
        if not _in_domains(dns_name, names.dns_domains):
            allowed = f"names in {', '.join(names.dns_domains)} only" if names.dns_domains else "no DNS names"
            raise ActionError(
                f"DNS name {dns_name!r} refused: a person's certificate holds {allowed} ([names] dns_domains)"
            )
    for address in validated.ip_addresses:
        if _in_ranges(address, names.ip_ranges):
            continue
        allowed = f"addresses in {', '.join(names.ip_ranges)} only" if names.ip_ranges else "no IP addresses"
        raise ActionError(f"IP address {address} refused: a person's certificate holds {allowed} ([names] ip_ranges)")


def _in_domains(name: str, domains: tuple[str, ...]) -> bool:
    return any(name == d or name.endswith("." + d) for d in domains)


def _in_ranges(address: str, ranges: tuple[str, ...]) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in map(ipaddress.ip_network, ranges) if network.version == ip.version)


def _check_quota_pending(session: Session, actor: Actor, limits: LimitsConfig) -> None:
    # Serialise one user's filings (PostgreSQL and MariaDB lock the row; SQLite writes one at a time anyway).
    session.scalars(select(User).where(User.id == actor.user.id).with_for_update()).one()
    pending = session.scalar(
        select(func.count())
        .select_from(CertificateRequest)
        .where(CertificateRequest.owner_id == actor.user.id, CertificateRequest.status == Status.PENDING.value)
    )
    if (pending or 0) >= limits.max_pending_requests:
        raise ActionError(
            f"you have {pending} requests waiting for a decision, the most one person may have"
            f" ([limits] max_pending_requests = {limits.max_pending_requests}): wait for a decision first",
            429,
        )


def _check_quota_generations(session: Session, actor: Actor, limits: LimitsConfig) -> None:
    since = utcnow() - datetime.timedelta(hours=1)
    made = session.scalar(
        select(func.count())
        .select_from(CertificateRequest)
        .where(
            CertificateRequest.owner_id == actor.user.id,
            CertificateRequest.generated.is_(True),
            CertificateRequest.created_at > since,
        )
    )
    if (made or 0) >= limits.generations_per_hour:
        raise ActionError(
            f"the portal made {made} key pairs for you in the last hour, the most it makes per person"
            f" ([limits] generations_per_hour = {limits.generations_per_hour}): try again later",
            429,
        )


def submit(
    session: Session,
    ca: UsersCA,
    actor: Actor,
    csr: str,
    *,
    names: NamesConfig | None = None,
    limits: LimitsConfig | None = None,
) -> CertificateRequest:
    """A pasted or uploaded CSR: checked by the engine exactly as it will be signed; refused, nothing is stored.

    What is stored is the CSR as the engine parsed it, re-encoded (never the text around it)."""
    try:
        validated = ca.check(csr)
    except PkiError as exc:
        raise ActionError(str(exc)) from None
    _check_subject_allowed(actor, validated.subject)
    check_names(names or NamesConfig(), validated)
    _check_quota_pending(session, actor, limits or LimitsConfig())
    facts = pki.CsrFacts.of(validated)
    request = _new_request(session, actor, validated.subject, facts.pem, generated=False)
    audit(session, actor, "request.submit", f"request:{request.id}", subject=request.subject, **_facts_detail(facts))
    session.commit()
    return request


def _facts_detail(facts: pki.CsrFacts) -> dict[str, object]:
    """What the audit log keeps of a request: every name and the key's fingerprint."""
    return {
        "dns": list(facts.dns_names),
        "ip": list(facts.ip_addresses),
        "email": list(facts.emails),
        "key": f"{facts.key_type} {facts.key_size}",
        "spki_sha256": facts.spki_sha256,
    }


def _new_request(session: Session, actor: Actor, subject: x509.Name, csr: str, generated: bool) -> CertificateRequest:
    request = CertificateRequest(
        owner_id=actor.user.id,
        subject=subject.rfc4514_string(),
        csr_pem=csr,
        generated=generated,
        status=Status.PENDING.value,
        created_at=utcnow(),
        comment="",
    )
    session.add(request)
    session.flush()
    return request


@dataclass(frozen=True)
class Generated:
    request: CertificateRequest
    pkcs12: bytes
    issued: pki.Issued | None


def generate(
    session: Session,
    ca: UsersCA,
    actor: Actor,
    *,
    passphrase: str,
    key_type: str = "ecdsa-p256",
    common_name: str = "",
    organization: str = "",
    allow_self_approval: bool = False,
    limits: LimitsConfig | None = None,
    enrol_new_subjects: bool = False,
    admin_subjects: tuple[str, ...] = (),
) -> Generated:
    """A key pair made in memory, its CSR filed as a request, the key handed back once in a PKCS#12.

    The key is never stored. The request waits for approval like a pasted CSR (the PKCS#12
    holds the key alone), whoever files it and for whomever: an approver enrolling someone
    else files a request that another approver decides. Only an approver's request for their
    own subject, where `allow_self_approval` is set, is issued at once (key, certificate and chain),
    and, where `enrol_new_subjects` is set, an approver's enrolment of a subject that nobody holds yet
    (see `subject_claim`); a subject someone holds always waits for another approver.
    """
    if key_type not in pki.KEY_CHOICES:
        raise ActionError(f"unknown key type {key_type!r}: use one of {', '.join(pki.KEY_CHOICES)}")
    if len(passphrase) < MIN_PASSPHRASE:
        raise ActionError(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
    limits = limits or LimitsConfig()
    subject = _generated_subject(actor, common_name, organization)
    _check_quota_pending(session, actor, limits)
    _check_quota_generations(session, actor, limits)
    key = pki.generate_key(key_type)
    csr = pki.build_csr(key, subject)
    try:
        facts = pki.CsrFacts.of(ca.check(csr))
    except PkiError as exc:
        raise ActionError(str(exc)) from None
    request = _new_request(session, actor, subject, facts.pem, generated=True)
    audit(
        session, actor, "request.generate", f"request:{request.id}",
        subject=request.subject, key_type=key_type, **_facts_detail(facts),
    )  # fmt: skip
    issued = None
    if actor.user.can_approve and allow_self_approval and request.subject == actor.user.subject:
        issued = _issue(session, ca, actor, request, "own certificate, self-approval allowed by the configuration")
    elif actor.user.can_approve and enrol_new_subjects and request.subject != actor.user.subject:
        claim = subject_claim(session, ca, request.subject, admin_subjects)
        if claim is None:
            issued = _issue(session, ca, actor, request, "enrolled a new subject (enrol_new_subjects)")
        else:
            audit(session, actor, "request.held", f"request:{request.id}", subject=request.subject, reason=claim)
    session.commit()
    certificate = issued.certificate if issued else None
    chain = ca.chain() if issued else None
    bundle = pki.pkcs12_bundle(key, passphrase, request.subject, certificate, chain)
    return Generated(request, bundle, issued)


def subject_claim(session: Session, ca: UsersCA, subject: str, admin_subjects: tuple[str, ...]) -> str | None:
    """Why `subject` belongs to someone already (None when nobody holds it): an account (with any role,
    also one an admin set before its first sign-in), a role in the configuration, or a certificate of
    the users CA's ledger (valid, expired or revoked)."""
    if session.scalar(select(func.count()).select_from(User).where(User.subject_sha256 == subject_digest(subject))):
        return "the subject has an account"
    if subject in {canonical_dn(s) for s in admin_subjects}:
        return "the subject is an admin of the configuration"
    if any(issued.subject == subject for issued in ca.all()):
        return "the users CA has issued a certificate for the subject"
    return None


def _generated_subject(actor: Actor, common_name: str, organization: str) -> x509.Name:
    if not actor.user.can_approve or not common_name.strip():
        return parse_dn(actor.user.subject)
    try:
        return pki.subject_name(common_name.strip(), organization.strip())
    except ValueError as exc:
        raise ActionError(f"subject refused: {exc}") from None


def get_request(session: Session, actor: Actor, request_id: int) -> CertificateRequest:
    request = session.get(CertificateRequest, request_id)
    if request is None or not (actor.user.can_approve or request.owner_id == actor.user.id):
        raise ActionError(f"no request {request_id}", 404)
    return request


def list_requests(session: Session, actor: Actor, status: str = "") -> list[CertificateRequest]:
    query = select(CertificateRequest).order_by(CertificateRequest.id.desc())
    if not actor.user.can_approve:
        query = query.where(CertificateRequest.owner_id == actor.user.id)
    if status:
        query = query.where(CertificateRequest.status == status)
    return list(session.scalars(query))


def _decidable(session: Session, actor: Actor, request_id: int, allow_self_approval: bool) -> CertificateRequest:
    if not actor.user.can_approve:
        raise ActionError("only approvers and admins may approve or reject requests", 403)
    request = session.scalars(
        select(CertificateRequest).where(CertificateRequest.id == request_id).with_for_update()
    ).one_or_none()
    if request is None:
        raise ActionError(f"no request {request_id}", 404)
    if request.status != Status.PENDING:
        raise ActionError(f"request {request_id} is already {request.status}", 409)
    if request.owner_id == actor.user.id:
        if not allow_self_approval:
            raise ActionError("nobody approves or rejects their own request: another approver must decide", 403)
        if request.subject != actor.user.subject:
            raise ActionError(
                f"request {request_id} is for {request.subject}, not for you: a certificate for someone else's"
                " subject needs another approver's decision, whatever allow_self_approval says",
                403,
            )
    return request


def _clean_comment(comment: str) -> str:
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise ActionError(f"the comment is longer than {MAX_COMMENT} characters")
    return comment


def _issue(session: Session, ca: UsersCA, actor: Actor, request: CertificateRequest, comment: str) -> pki.Issued:
    try:
        issued = ca.sign(request.csr_pem, name=f"portal-request-{request.id}")
    except PkiError as exc:
        raise ActionError(str(exc)) from None
    request.status = Status.ISSUED.value
    request.serial = issued.serial
    request.decided_by_id = actor.user.id
    request.decided_at = utcnow()
    request.comment = comment
    audit(session, actor, "request.approve", f"request:{request.id}", serial=issued.serial, comment=comment)
    return issued


def approve(
    session: Session,
    ca: UsersCA,
    actor: Actor,
    request_id: int,
    comment: str,
    *,
    allow_self_approval: bool = False,
    names: NamesConfig | None = None,
) -> CertificateRequest:
    """Sign a pending request; its names are checked again against today's [names] (it may have been filed
    under a laxer configuration)."""
    comment = _clean_comment(comment)
    request = _decidable(session, actor, request_id, allow_self_approval)
    try:
        validated = ca.check(request.csr_pem)
    except PkiError as exc:
        raise ActionError(str(exc)) from None
    check_names(names or NamesConfig(), validated)
    _issue(session, ca, actor, request, comment)
    session.commit()
    return request


def reject(
    session: Session, actor: Actor, request_id: int, comment: str, *, allow_self_approval: bool = False
) -> CertificateRequest:
    comment = _clean_comment(comment)
    if not comment:
        raise ActionError("a rejection needs a comment that tells the requester why")
    request = _decidable(session, actor, request_id, allow_self_approval)
    request.status = Status.REJECTED.value
    request.decided_by_id = actor.user.id
    request.decided_at = utcnow()
    request.comment = comment
    audit(session, actor, "request.reject", f"request:{request.id}", comment=comment)
    session.commit()
    return request


# ---------------------------------------------------------- certificates
def requests_by_serial(session: Session) -> dict[str, CertificateRequest]:
    rows = session.scalars(select(CertificateRequest).where(CertificateRequest.serial.is_not(None)))
    return {r.serial: r for r in rows if r.serial}


def may_see(session: Session, actor: Actor, issued: pki.Issued) -> bool:
    """Approvers see every certificate; others the ones they requested or that carry their subject."""
    if actor.user.can_approve or issued.subject == actor.user.subject:
        return True
    owned = session.scalar(
        select(func.count())
        .select_from(CertificateRequest)
        .where(CertificateRequest.serial == issued.serial, CertificateRequest.owner_id == actor.user.id)
    )
    return bool(owned)


def get_certificate(session: Session, ca: UsersCA, actor: Actor, serial: str) -> pki.Issued:
    issued = ca.get(serial)
    if issued is None or not may_see(session, actor, issued):
        raise ActionError(f"no certificate {serial}", 404)
    return issued


def list_certificates(session: Session, ca: UsersCA, actor: Actor) -> list[pki.Issued]:
    """Sorted by expiry, soonest first."""
    issued = ca.all()
    if not actor.user.can_approve:
        mine = {s for s, r in requests_by_serial(session).items() if r.owner_id == actor.user.id}
        issued = [i for i in issued if i.serial in mine or i.subject == actor.user.subject]
    return sorted(issued, key=lambda i: (i.not_after, i.serial))


def revoke(session: Session, ca: UsersCA, actor: Actor, serial: str, reason: str) -> pki.Issued:
    """The owner or an approver: revoked in the ledger, CRL rewritten at once by the engine."""
    if reason not in pki.REVOCATION_REASONS:
        raise ActionError(f"unknown revocation reason {reason!r}: use one of {', '.join(pki.REVOCATION_REASONS)}")
    issued = get_certificate(session, ca, actor, serial)
    if issued.revoked_at is not None:
        raise ActionError(f"certificate {issued.serial} is already revoked", 409)
    try:
        revoked = ca.revoke(issued.serial, reason)
    except PkiError as exc:
        raise ActionError(str(exc)) from None
    audit(session, actor, "certificate.revoke", f"serial:{issued.serial}", reason=reason, subject=issued.subject)
    session.commit()
    return revoked


def record_download(session: Session, actor: Actor, issued: pki.Issued, kind: str) -> None:
    audit(session, actor, "certificate.download", f"serial:{issued.serial}", kind=kind)
    session.commit()


def audit_events(session: Session, actor: Actor, limit: int = 200, offset: int = 0) -> list[AuditEvent]:
    if not actor.user.can_approve:
        raise ActionError("only approvers and admins may read the audit log", 403)
    if not 0 <= offset <= MAX_AUDIT_OFFSET:
        raise ActionError(f"offset {offset} is out of range: use 0 to {MAX_AUDIT_OFFSET}")
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(query))


def list_users(session: Session, actor: Actor) -> list[User]:
    if not actor.user.is_admin:
        raise ActionError("only an admin may list users", 403)
    return list(session.scalars(select(User).order_by(User.subject)))
