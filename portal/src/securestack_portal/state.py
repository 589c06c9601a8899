"""What the application holds for its lifetime, and the database session of the current request."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from .config import Config
from .pki import UsersCA


@dataclass
class Portal:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    ca: UsersCA


def portal() -> Portal:
    return current_app.extensions["securestack_portal"]


def db() -> Session:
    if "db" not in g:
        g.db = portal().sessions()
    return g.db


def close_session(_exc: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
