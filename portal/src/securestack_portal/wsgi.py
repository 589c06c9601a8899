"""WSGI entry point: gunicorn runs `securestack_portal.wsgi:app` (config from SECURESTACK_PORTAL_CONFIG)."""

from __future__ import annotations

from . import create_app

app = create_app()
