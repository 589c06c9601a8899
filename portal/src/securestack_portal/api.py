"""The JSON API (/api/v1), the same actions as the pages, described in openapi.json.

Authentication: the same client-certificate identity as the pages. CSRF: a
browser presents its client certificate to any site's request, so the API
refuses what a foreign page could make a browser send: a state-changing call
must carry a JSON body (Content-Type: application/json, which a cross-origin
page can send only after a CORS preflight that the portal never answers), and
any call whose Sec-Fetch-Site says cross-site or same-site is refused.
"""

from __future__ import annotations

import base64
from importlib import resources

from flask import Blueprint, Response, g, jsonify, request

from . import services
from .models import AuditEvent, CertificateRequest, Status, User
from .pki import Issued, PkiError, describe_csr, utcnow
from .services import ActionError
from .state import db, portal

api = Blueprint("api", __name__, url_prefix="/api/v1")

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
MAX_AUDIT = 1000


def _iso(value) -> str | None:
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def csr_json(pem: str) -> dict:
    """Every name the CSR asks for, by type, and its key: what an approver decides on."""
    try:
        facts = describe_csr(pem)
    except PkiError as exc:  # a request stored before the engine refused something it holds
        return {"names": None, "key": None, "spki_sha256": None, "csr_error": str(exc)}
    return {
        "names": {"dns": list(facts.dns_names), "ip": list(facts.ip_addresses), "email": list(facts.emails)},
        "key": {"type": facts.key_type, "size": facts.key_size},
        "spki_sha256": facts.spki_sha256,
    }


def request_json(found: CertificateRequest) -> dict:
    return {
        "id": found.id,
        "subject": found.subject,
        "owner": found.owner.subject,
        "status": found.status,
        "generated": found.generated,
        "created_at": _iso(found.created_at),
        "decided_by": found.decided_by.subject if found.decided_by else None,
        "decided_at": _iso(found.decided_at),
        "comment": found.comment,
        "serial": found.serial,
        "csr": found.csr_pem,
        **csr_json(found.csr_pem),
    }


def certificate_json(issued: Issued, with_pem: bool = False) -> dict:
    now = utcnow()
    body = {
        "serial": issued.serial,
        "subject": issued.subject,
        "names": issued.names,
        "not_before": _iso(issued.not_before),
        "not_after": _iso(issued.not_after),
        "status": issued.status(now),
        "days_left": issued.days_left(now),
        "revoked_at": _iso(issued.revoked_at),
        "revocation_reason": issued.revocation_reason,
    }
    if with_pem:
        chain = portal().ca.chain_pem()
        body.update({"certificate": issued.pem, "chain": chain, "fullchain": issued.pem + chain})
    return body


def user_json(user: User) -> dict:
    return {"subject": user.subject, "role": user.role, "created_at": _iso(user.created_at)}


def event_json(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "at": _iso(event.at),
        "actor": event.actor,
        "actor_serial": event.actor_serial,
        "action": event.action,
        "target": event.target,
        "detail": event.detail,
        "remote_addr": event.remote_addr,
    }


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": message}), status


@api.before_request
def _no_cross_site():
    if request.headers.get("Sec-Fetch-Site", "") in ("cross-site", "same-site"):
        return _error("cross-site requests are refused", 403)
    if request.method in STATE_CHANGING and request.mimetype != "application/json":
        return _error("state-changing API calls take a JSON body (Content-Type: application/json)", 415)
    return None


@api.errorhandler(ActionError)
def _action_error(exc: ActionError):
    db().rollback()
    return _error(exc.message, exc.status)


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ActionError("the body must be a JSON object")
    return body


def _text(body: dict, key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise ActionError(f"{key} must be a string")
    return value


def _allow_self() -> bool:
    return portal().config.auth.allow_self_approval


@api.get("/openapi.json")
def openapi() -> Response:
    text = resources.files("securestack_portal").joinpath("static/openapi.json").read_text()
    return Response(text, mimetype="application/json")


@api.get("/me")
def me():
    return jsonify({**user_json(g.actor.user), "serial": g.actor.serial})


@api.get("/requests")
def list_requests():
    status = request.args.get("status", "")
    if status and status not in {s.value for s in Status}:
        raise ActionError(f"unknown status {status!r}")
    return jsonify([request_json(r) for r in services.list_requests(db(), g.actor, status)])


@api.post("/requests")
def submit():
    config = portal().config
    created = services.submit(
        db(), portal().ca, g.actor, _text(_body(), "csr"), names=config.names, limits=config.limits
    )
    return jsonify(request_json(created)), 201


@api.post("/requests/generate")
def generate():
    body = _body()
    made = services.generate(
        db(),
        portal().ca,
        g.actor,
        passphrase=_text(body, "passphrase"),
        key_type=_text(body, "key_type", "ecdsa-p256"),
        common_name=_text(body, "common_name", ""),
        organization=_text(body, "organization", ""),
        allow_self_approval=_allow_self(),
        limits=portal().config.limits,
        enrol_new_subjects=portal().config.auth.enrol_new_subjects,
        admin_subjects=portal().config.auth.admin_subjects,
    )
    return jsonify(
        {
            "request": request_json(made.request),
            "pkcs12": base64.b64encode(made.pkcs12).decode(),
            "certificate": certificate_json(made.issued) if made.issued else None,
        }
    ), 201


@api.get("/requests/<int:request_id>")
def get_request(request_id: int):
    return jsonify(request_json(services.get_request(db(), g.actor, request_id)))


@api.post("/requests/<int:request_id>/approve")
def approve(request_id: int):
    comment = _text(_body(), "comment", "")
    done = services.approve(
        db(), portal().ca, g.actor, request_id, comment, allow_self_approval=_allow_self(), names=portal().config.names
    )
    return jsonify(request_json(done))


@api.post("/requests/<int:request_id>/reject")
def reject(request_id: int):
    comment = _text(_body(), "comment", "")
    return jsonify(request_json(services.reject(db(), g.actor, request_id, comment, allow_self_approval=_allow_self())))


@api.get("/certificates")
def list_certificates():
    return jsonify([certificate_json(c) for c in services.list_certificates(db(), portal().ca, g.actor)])


@api.get("/certificates/<serial:serial>")
def get_certificate(serial: str):
    issued = services.get_certificate(db(), portal().ca, g.actor, serial)
    services.record_download(db(), g.actor, issued, "api")
    return jsonify(certificate_json(issued, with_pem=True))


@api.post("/certificates/<serial:serial>/revoke")
def revoke(serial: str):
    reason = _text(_body(), "reason", "unspecified")
    return jsonify(certificate_json(services.revoke(db(), portal().ca, g.actor, serial, reason)))


@api.get("/audit")
def audit():
    limit = min(max(request.args.get("limit", 100, type=int) or 100, 1), MAX_AUDIT)
    offset = request.args.get("offset", 0, type=int) or 0
    return jsonify([event_json(e) for e in services.audit_events(db(), g.actor, limit, offset)])


@api.get("/users")
def list_users():
    return jsonify([user_json(u) for u in services.list_users(db(), g.actor)])


@api.put("/users")
def set_role():
    body = _body()
    return jsonify(user_json(services.set_role(db(), g.actor, _text(body, "subject"), _text(body, "role"))))
