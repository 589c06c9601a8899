"""What needs no personal identity: the CRL (the web tier serves it on plain HTTP) and the health check."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from .pki import PkiError
from .state import db, portal

public = Blueprint("public", __name__)


def _crl(encoding: str, mimetype: str) -> Response:
    try:
        data = portal().ca.crl(encoding)
    except PkiError as exc:
        return Response(str(exc) + "\n", status=503, mimetype="text/plain")
    return Response(data, mimetype=mimetype, headers={"Cache-Control": "max-age=300"})


@public.get("/crl")
def crl_der() -> Response:
    return _crl("der", "application/pkix-crl")


@public.get("/crl.pem")
def crl_pem() -> Response:
    return _crl("pem", "application/x-pem-file")


@public.get("/healthz")
def healthz():
    db().execute(text("SELECT 1"))
    portal().ca.subject  # noqa: B018  the users CA opens
    return jsonify({"status": "ok"})
