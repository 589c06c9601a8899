"""The HTML pages. Forms are Flask-WTF forms (CSRF token on every one); Jinja escapes every value."""

from __future__ import annotations

import base64
from collections import Counter

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for

from . import services
from .forms import DecisionForm, GenerateForm, RevokeForm, RoleForm, SubmitCsrForm
from .models import Status
from .pki import EXPIRING_DAYS, PkiError, describe_csr, utcnow
from .services import ActionError
from .state import db, portal

web = Blueprint("web", __name__)

AUDIT_PAGE = 100
STATUSES = ("valid", "expiring", "expired", "revoked")


def _allow_self() -> bool:
    return portal().config.auth.allow_self_approval


def _names():
    return portal().config.names


@web.get("/")
def dashboard() -> str:
    actor = g.actor
    mine = services.list_requests(db(), actor)
    mine = [r for r in mine if r.owner_id == actor.user.id]
    pending = services.list_requests(db(), actor, Status.PENDING) if actor.user.can_approve else []
    certificates = services.list_certificates(db(), portal().ca, actor)
    now = utcnow()
    own = [c for c in certificates if c.subject == actor.user.subject]
    return render_template(
        "dashboard.html",
        mine=mine[:10],
        pending=[
            r for r in pending if r.owner_id != actor.user.id or (_allow_self() and r.subject == actor.user.subject)
        ],
        own=own,
        now=now,
        identity_serial=actor.serial,
    )


@web.get("/requests")
def requests_list() -> str:
    status = request.args.get("status", "")
    if status and status not in {s.value for s in Status}:
        abort(400, f"unknown status {status!r}")
    return render_template("requests.html", requests=services.list_requests(db(), g.actor, status), status=status)


@web.route("/requests/new", methods=["GET", "POST"])
def request_new():
    form = SubmitCsrForm()
    status = 400
    if form.validate_on_submit():
        csr = _csr_from(form)
        if csr is not None:
            try:
                config = portal().config
                created = services.submit(db(), portal().ca, g.actor, csr, names=config.names, limits=config.limits)
            except ActionError as exc:
                db().rollback()
                form.csr.errors = [exc.message]
                status = exc.status
            else:
                flash(f"Request #{created.id} filed; an approver will decide.", "ok")
                return redirect(url_for("web.request_detail", request_id=created.id))
    page = render_template("request_new.html", form=form, generate_form=GenerateForm())
    return page, status if form.is_submitted() else 200


def pem_armour(der: bytes) -> str:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{lines}\n-----END CERTIFICATE REQUEST-----\n"


def _csr_from(form: SubmitCsrForm) -> str | None:
    upload = form.csr_file.data
    pasted = (form.csr.data or "").strip()
    if upload and pasted:
        form.csr.errors = ["give either a pasted CSR or a file, not both"]
        return None
    if upload:
        data = upload.read()
        if b"-----BEGIN" not in data:  # DER: the engine reads the same bytes as PEM
            return pem_armour(data)
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            form.csr.errors = ["the uploaded file is neither PEM nor DER"]
            return None
    if not pasted:
        form.csr.errors = ["paste a CSR or choose a file"]
        return None
    return pasted


@web.post("/requests/generate")
def request_generate():
    form = GenerateForm()
    status = 400
    if form.validate_on_submit():
        try:
            made = services.generate(
                db(),
                portal().ca,
                g.actor,
                passphrase=form.passphrase.data or "",
                key_type=form.key_type.data or "ecdsa-p256",
                common_name=form.common_name.data or "",
                organization=form.organization.data or "",
                allow_self_approval=_allow_self(),
                limits=portal().config.limits,
                enrol_new_subjects=portal().config.auth.enrol_new_subjects,
                admin_subjects=portal().config.auth.admin_subjects,
            )
        except ActionError as exc:
            db().rollback()
            form.passphrase.errors = [exc.message]
            status = exc.status
        else:
            return Response(
                made.pkcs12,
                mimetype="application/x-pkcs12",
                headers={"Content-Disposition": f'attachment; filename="request-{made.request.id}.p12"'},
            )
    return render_template("request_new.html", form=SubmitCsrForm(), generate_form=form), status


@web.get("/requests/<int:request_id>")
def request_detail(request_id: int) -> str:
    found = _request_or_404(request_id)
    may_decide = (
        g.actor.user.can_approve
        and found.status == Status.PENDING
        and (found.owner_id != g.actor.user.id or (_allow_self() and found.subject == g.actor.user.subject))
    )
    try:
        facts = describe_csr(found.csr_pem)
    except PkiError as exc:  # stored before the engine refused something it holds
        facts, csr_error = None, str(exc)
    else:
        csr_error = ""
    return render_template(
        "request_detail.html", req=found, facts=facts, csr_error=csr_error, form=DecisionForm(), may_decide=may_decide
    )


def _request_or_404(request_id: int):
    try:
        return services.get_request(db(), g.actor, request_id)
    except ActionError as exc:
        abort(exc.status, exc.message)


def _decide(request_id: int, approve: bool) -> Response:
    form = DecisionForm()
    if not form.validate_on_submit():
        abort(400, "; ".join(e for errors in form.errors.values() for e in errors))
    comment = form.comment.data or ""
    try:
        if approve:
            services.approve(
                db(), portal().ca, g.actor, request_id, comment, allow_self_approval=_allow_self(), names=_names()
            )
            flash(f"Request #{request_id} approved: the certificate is issued.", "ok")
        else:
            services.reject(db(), g.actor, request_id, comment, allow_self_approval=_allow_self())
            flash(f"Request #{request_id} rejected.", "ok")
    except ActionError as exc:
        db().rollback()
        if exc.status in (403, 404, 409):
            abort(exc.status, exc.message)
        flash(exc.message, "error")
    return redirect(url_for("web.request_detail", request_id=request_id))


@web.post("/requests/<int:request_id>/approve")
def request_approve(request_id: int) -> Response:
    return _decide(request_id, approve=True)


@web.post("/requests/<int:request_id>/reject")
def request_reject(request_id: int) -> Response:
    return _decide(request_id, approve=False)


@web.get("/certificates")
def certificates() -> str:
    now = utcnow()
    listed = services.list_certificates(db(), portal().ca, g.actor)
    counts = Counter(c.status(now) for c in listed)
    return render_template(
        "certificates.html",
        certificates=listed,
        counts={s: counts.get(s, 0) for s in STATUSES},
        requests=services.requests_by_serial(db()),
        now=now,
        expiring_days=EXPIRING_DAYS,
    )


def _certificate_or_404(serial: str):
    try:
        return services.get_certificate(db(), portal().ca, g.actor, serial)
    except ActionError as exc:
        abort(exc.status, exc.message)


@web.get("/certificates/<serial:serial>")
def certificate_detail(serial: str) -> str:
    issued = _certificate_or_404(serial)
    linked = services.requests_by_serial(db()).get(issued.serial)
    return render_template("certificate_detail.html", cert=issued, req=linked, form=RevokeForm(), now=utcnow())


def _download(serial: str, kind: str) -> Response:
    # A download writes an audit event: no other site may make a browser do it (an <img>, a link).
    if request.headers.get("Sec-Fetch-Site", "") in ("cross-site", "same-site"):
        abort(403, "downloads from another site are refused: open the certificate's page in the portal")
    issued = _certificate_or_404(serial)
    chain = portal().ca.chain_pem()
    body = {"crt": issued.pem, "chain": chain, "fullchain": issued.pem + chain}[kind]
    services.record_download(db(), g.actor, issued, kind)
    suffix = {"crt": ".crt", "chain": "-chain.pem", "fullchain": "-fullchain.pem"}[kind]
    return Response(
        body,
        mimetype="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="{issued.serial}{suffix}"'},
    )


@web.get("/certificates/<serial:serial>.crt")
def download_certificate(serial: str) -> Response:
    return _download(serial, "crt")


@web.get("/certificates/<serial:serial>-chain.pem")
def download_chain(serial: str) -> Response:
    return _download(serial, "chain")


@web.get("/certificates/<serial:serial>-fullchain.pem")
def download_fullchain(serial: str) -> Response:
    return _download(serial, "fullchain")


@web.post("/certificates/<serial:serial>/revoke")
def certificate_revoke(serial: str) -> Response:
    form = RevokeForm()
    if not form.validate_on_submit():
        abort(400, "; ".join(e for errors in form.errors.values() for e in errors))
    try:
        revoked = services.revoke(db(), portal().ca, g.actor, serial, form.reason.data or "unspecified")
    except ActionError as exc:
        db().rollback()
        abort(exc.status, exc.message)
    flash(f"Certificate {revoked.serial} revoked; the CRL is rewritten.", "ok")
    return redirect(url_for("web.certificate_detail", serial=revoked.serial))


@web.get("/audit")
def audit() -> str:
    page = max(1, request.args.get("page", 1, type=int) or 1)
    if page > services.MAX_AUDIT_OFFSET // AUDIT_PAGE:
        abort(
            400,
            f"page {page} is out of range: the audit log has at most {services.MAX_AUDIT_OFFSET // AUDIT_PAGE} pages",
        )
    try:
        events = services.audit_events(db(), g.actor, AUDIT_PAGE + 1, (page - 1) * AUDIT_PAGE)
    except ActionError as exc:
        abort(exc.status, exc.message)
    return render_template("audit.html", events=events[:AUDIT_PAGE], page=page, more=len(events) > AUDIT_PAGE)


@web.route("/users", methods=["GET", "POST"])
def users():
    if not g.actor.user.is_admin:
        abort(403, "only an admin may manage users")
    form = RoleForm()
    status = 200
    if form.validate_on_submit():
        try:
            changed = services.set_role(db(), g.actor, form.subject.data or "", form.role.data or "")
        except ActionError as exc:
            db().rollback()
            form.subject.errors = [exc.message]
            status = exc.status
        else:
            flash(f"{changed.subject} is now {changed.role}.", "ok")
            return redirect(url_for("web.users"))
    elif form.is_submitted():
        status = 400
    return render_template("users.html", users=services.list_users(db(), g.actor), form=form), status
