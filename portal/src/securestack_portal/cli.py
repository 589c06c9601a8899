"""`securestack-portal`: database migrations, a configuration check, the CRL, and a development setup."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
from sqlalchemy import text

from . import config as config_module
from . import database as db_module
from .config import ConfigError
from .devsetup import make_dev_setup
from .pki import PkiError, UsersCA


def _load(path: str | None) -> config_module.Config:
    try:
        return config_module.load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.option(
    "--config", "config_path", envvar=config_module.CONFIG_ENV, default=None, help="portal.toml (default: env or /etc)"
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """SecureStack certificate portal."""
    ctx.obj = config_path


@main.group()
def db() -> None:
    """The portal's database."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(config_path: str | None) -> None:
    """Run the migrations up to head (idempotent)."""
    config = _load(config_path)
    engine = db_module.make_engine(config.database)
    before, after = db_module.upgrade(engine)
    if before == after:
        click.echo(f"database already at head ({after})")
    else:
        click.echo(f"upgraded to {after} (was {before or 'empty'})")


@main.command("check-config")
@click.pass_obj
def check_config(config_path: str | None) -> None:
    """Check the configuration, the secret key, the users CA and the database."""
    config = _load(config_path)
    problems = []
    try:
        config.secret_key()
        config.ca_passphrase()
    except ConfigError as exc:
        problems.append(str(exc))
    ca = UsersCA(config.ca.dir)
    try:
        click.echo(f"users CA: {ca.subject.rfc4514_string()} ({config.ca.dir})")
    except PkiError as exc:
        problems.append(f"users CA: {exc}")
    try:
        engine = db_module.make_engine(config.database)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = db_module.current_revision(engine)
        click.echo(f"database: {config.database.dialect}, revision {revision or 'none'}")
        if revision != db_module.head_revision():
            problems.append(
                f"database: at {revision or 'no revision'}, not {db_module.head_revision()}: run db upgrade"
            )
    except Exception as exc:
        problems.append(f"database: {exc}")
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(1)
    click.echo("configuration OK")


@main.command("crl")
@click.option("--force", is_flag=True, help="rewrite even when the CRL is current")
@click.pass_obj
def crl(config_path: str | None, force: bool) -> None:
    """Rewrite the users CA's CRL when it is due (or when forced)."""
    config = _load(config_path)
    try:
        changed, number, next_update = UsersCA(config.ca.dir, config.ca_passphrase()).refresh_crl(force=force)
    except PkiError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"CRL {'rewritten' if changed else 'current'}, number {number}, next update {next_update}")


@main.command("dev-init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--subject", default="CN=Dev Admin,O=SecureStack Dev", show_default=True, help="your identity")
def dev_init(directory: Path, subject: str) -> None:
    """Make a development setup: root and users CA, your certificate, SQLite, a config with [dev] on."""
    config_file = make_dev_setup(directory.resolve(), subject, secrets.token_hex(32))
    click.echo(f"development setup in {directory}; run:")
    click.echo(f"  SECURESTACK_PORTAL_CONFIG={config_file} flask --app securestack_portal.wsgi run")
