"""SecureStack certificate portal: a Flask application served by gunicorn behind the web tier."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.orm import sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from . import config as config_module
from .api import api
from .config import Config
from .database import make_engine
from .dev import DevIdentity
from .identity import Refused, check_proxy, identify, peer_certificate
from .origins import form_source, host_is_trusted, request_origin
from .pki import UsersCA, utcnow
from .public import public
from .services import user_for
from .state import Portal, close_session, db, portal
from .web import web

__all__ = ["create_app"]

LOG = logging.getLogger("securestack_portal")

# Content-Security-Policy of the web tier, sent by the portal too (defence in depth).
CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
# Reached without a personal identity (the proxy's certificate is still required).
PUBLIC_ENDPOINTS = {"public.crl_der", "public.crl_pem", "public.healthz", "static", "api.openapi"}
MAX_BODY = 64 * 1024
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


class SerialConverter(BaseConverter):
    """A certificate serial in hexadecimal (with or without colons)."""

    regex = "[0-9A-Fa-f:]{1,80}"


def create_app(config: Config | None = None) -> Flask:
    config = config or config_module.load()
    app = Flask(__name__)
    app.url_map.converters["serial"] = SerialConverter
    app.config.update(
        SECRET_KEY=config.secret_key(),
        SESSION_COOKIE_NAME="__Host-portal-session",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/",
        MAX_CONTENT_LENGTH=MAX_BODY,
        JSON_SORT_KEYS=False,
    )
    engine = make_engine(config.database)
    app.extensions["securestack_portal"] = Portal(
        config=config,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        ca=UsersCA(config.ca.dir, config.ca_passphrase(), config.ca.user_valid_days),
    )
    # Identity first (before_request functions run in order), then Flask-WTF's CSRF check.
    app.before_request(_authenticate)
    csrf = CSRFProtect(app)
    csrf.exempt(api)  # the API's own rule: JSON bodies and no cross-site requests (see api.py)
    app.register_blueprint(public)
    app.register_blueprint(web)
    app.register_blueprint(api)
    app.after_request(_security_headers)
    app.teardown_appcontext(close_session)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.context_processor(lambda: {"dev_mode": config.dev.enabled})
    # Only the proxy can connect (see _authenticate), so its X-Forwarded-For/-Proto/-Host are trusted, one hop.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    if config.dev.enabled:
        LOG.warning("DEVELOPMENT MODE: no proxy check, every request acts as %s", config.dev.identity_certificate)
        app.wsgi_app = DevIdentity(app.wsgi_app, config.dev.identity_certificate)  # type: ignore[method-assign]
    return app


def wants_json() -> bool:
    return request.path.startswith("/api/")


def _refuse(message: str, status: int = 403):
    LOG.warning("refused %s %s from %s: %s", request.method, request.path, request.remote_addr, message)
    if wants_json():
        return jsonify({"error": message}), status
    return render_template("error.html", status=status, message=message), status


def _authenticate():
    state = portal()
    if not state.config.dev.enabled:
        try:
            g.proxy = check_proxy(
                peer_certificate(request.environ),
                state.config.auth.proxy_common_names,
                state.config.auth.proxy_issuer,
                state.config.auth.proxy_spki_sha256,
            )
        except Refused as exc:
            return _refuse(str(exc))
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        # Read-only, and fetched straight from the portal by its own name (CRL fetchers, health checks).
        return None
    refused = _untrusted_host(state.config.web.trusted_hosts) or _foreign_form()
    if refused:
        return _refuse(refused, 400)
    try:
        identity = identify(request.headers, state.ca, utcnow())  # type: ignore[arg-type]
    except Refused as exc:
        return _refuse(str(exc))
    g.actor = user_for(db(), identity, state.config.auth.admin_subjects, request.remote_addr or "")
    return None


def _untrusted_host(trusted: tuple[str, ...]) -> str | None:
    """Why the Host the browser used (forwarded by the web tier) is refused, if it is."""
    if not trusted:  # development mode without [web] trusted_hosts
        return None
    if host_is_trusted(request.host, trusted, request.scheme):
        return None
    return (
        f"this portal does not answer to the host {request.host!r} (it answers to {', '.join(trusted)}); if browsers"
        " reach it by that name, add it to the role variable portal_trusted_hosts ([web] trusted_hosts in portal.toml)"
    )


def _foreign_form() -> str | None:
    """Why a form is refused when it does not come from the portal's own pages (before Flask-WTF's token check)."""
    if request.method in SAFE_METHODS or request.blueprint == "api":  # the API has its own rule (api.py)
        return None
    own = request_origin(request.scheme, request.host)
    source, header = form_source(request.headers.get("Origin"), request.headers.get("Referer"))
    if source is None:
        if not request.is_secure:  # plain HTTP: development mode only
            return None
        return (
            "the form was refused: the browser sent neither an Origin nor a Referer header, so it cannot be told"
            " from a form of another site (the web tier's Referrer-Policy must be same-origin or laxer,"
            " nginx_referrer_policy / apache_referrer_policy)"
        )
    if source != own:
        return (
            f"the form was refused: it was sent from {source} ({header} header), not from this portal's"
            f" own origin {own}; forms are accepted from the portal's pages only"
        )
    return None


def _security_headers(response):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _csrf_error(exc: CSRFError):
    return _refuse(f"the form was refused ({exc.description}); reload the page and try again", 400)


def _http_error(exc: HTTPException):
    if wants_json():
        return jsonify({"error": exc.description}), exc.code
    return render_template("error.html", status=exc.code, message=exc.description), exc.code
