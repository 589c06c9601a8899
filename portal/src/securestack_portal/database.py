"""Database engine (SQLite, PostgreSQL over psycopg 3, MariaDB over PyMySQL) and Alembic migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event

from .config import DatabaseConfig

MIGRATIONS = Path(__file__).parent / "migrations"


def connect_args(database: DatabaseConfig) -> dict:
    """Mutual TLS to the database: verify the server (CA and host name), present the portal's certificate."""
    if database.dialect == "postgresql":
        return {
            "sslmode": "verify-full",
            "sslrootcert": database.ssl_ca,
            "sslcert": database.ssl_cert,
            "sslkey": database.ssl_key,
        }
    if database.dialect == "mysql":
        return {
            "ssl_ca": database.ssl_ca,
            "ssl_cert": database.ssl_cert,
            "ssl_key": database.ssl_key,
            "ssl_verify_cert": True,
            "ssl_verify_identity": True,
        }
    return {}


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def make_engine(database: DatabaseConfig) -> Engine:
    engine = create_engine(database.url, connect_args=connect_args(database), pool_pre_ping=True)
    if database.dialect == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if head is None:
        raise RuntimeError("the portal ships no migration")
    return head


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Run the migrations up to head. Returns (revision before, revision after)."""
    before = current_revision(engine)
    if before != head_revision():
        command.upgrade(_alembic_config(engine), "head")
    return before, current_revision(engine) or ""
