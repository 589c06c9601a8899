# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection
# (its modules, its roles and its portal). Breaking changes can occur any time.
#
# The CA's ledger: one SQLite database in the CA's directory that records
# every certificate the CA issued, every revocation and every CRL number.
# Writers take the database lock with BEGIN IMMEDIATE, so parallel signers
# (Ansible forks, portal workers) serialise and can neither reuse a serial
# nor lose an entry; a writer killed midway leaves no trace (SQLite rolls
# the transaction back).

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

LEDGER_FILE = "ledger.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 120_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    issued_at TEXT NOT NULL,
    requests  INTEGER NOT NULL,
    issued    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    serial            TEXT PRIMARY KEY,
    identity          TEXT NOT NULL,
    name              TEXT NOT NULL,
    profile           TEXT NOT NULL,
    subject           TEXT NOT NULL,
    names             TEXT NOT NULL,
    spki_sha256       TEXT NOT NULL,
    not_before        TEXT NOT NULL,
    not_after         TEXT NOT NULL,
    pem               TEXT NOT NULL,
    batch_id          INTEGER REFERENCES batches(id),
    revoked_at        TEXT,
    revocation_reason TEXT
);
CREATE INDEX IF NOT EXISTS certificates_identity ON certificates(identity, not_after);
"""


@dataclass(frozen=True)
class Entry:
    serial: str
    identity: str
    name: str
    profile: str
    subject: str
    names: list[str]
    spki_sha256: str
    not_before: str
    not_after: str
    pem: str
    batch_id: int | None
    revoked_at: str | None
    revocation_reason: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Entry:
        values = dict(row)
        values["names"] = json.loads(values["names"])
        return cls(**values)


_COLUMNS = (
    "serial, identity, name, profile, subject, names, spki_sha256, not_before, not_after,"
    " pem, batch_id, revoked_at, revocation_reason"
)


class Ledger:
    """Thin access layer over the SQLite ledger. Times are ISO 8601 UTC strings."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LEDGER_FILE)
        self._db: sqlite3.Connection | None = None

    @property
    def exists(self) -> bool:
        return os.path.exists(self.path)

    def connect(self) -> sqlite3.Connection:
        if self._db is None:
            old_umask = os.umask(0o077)
            try:
                db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            finally:
                os.umask(old_umask)
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def initialise(self) -> None:
        """Create the tables if they are missing (each statement is atomic and idempotent)."""
        db = self.connect()
        db.executescript(_SCHEMA)
        db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        version = int(self.get_meta("schema_version") or 0)
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"ledger {self.path} has schema {version}, newer than this engine ({SCHEMA_VERSION})")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction holding the database lock from its start."""
        db = self.connect()
        cur = db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            db.rollback()
            raise
        else:
            db.commit()

    # meta -------------------------------------------------------------
    def get_meta(self, key: str, cur: sqlite3.Cursor | None = None) -> str | None:
        executor = cur or self.connect()
        row = executor.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def set_meta(cur: sqlite3.Cursor, key: str, value: str) -> None:
        cur.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # certificates ----------------------------------------------------
    @staticmethod
    def current_for_identity(cur: sqlite3.Cursor, identity: str) -> Entry | None:
        """The newest unrevoked certificate issued for this identity."""
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM certificates WHERE identity = ? AND revoked_at IS NULL"  # noqa: S608  (constant column list)
            " ORDER BY not_after DESC LIMIT 1",
            (identity,),
        ).fetchone()
        return None if row is None else Entry.from_row(row)

    @staticmethod
    def serial_taken(cur: sqlite3.Cursor, serial: str) -> bool:
        return cur.execute("SELECT 1 FROM certificates WHERE serial = ?", (serial,)).fetchone() is not None

    @staticmethod
    def new_batch(cur: sqlite3.Cursor, issued_at: str, requests: int) -> int:
        cur.execute("INSERT INTO batches(issued_at, requests, issued) VALUES (?, ?, 0)", (issued_at, requests))
        return int(cur.lastrowid)

    @staticmethod
    def close_batch(cur: sqlite3.Cursor, batch_id: int, issued: int) -> None:
        cur.execute("UPDATE batches SET issued = ? WHERE id = ?", (issued, batch_id))

    @staticmethod
    def insert(cur: sqlite3.Cursor, entry: Entry) -> None:
        cur.execute(
            f"INSERT INTO certificates({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                entry.serial,
                entry.identity,
                entry.name,
                entry.profile,
                entry.subject,
                json.dumps(entry.names),
                entry.spki_sha256,
                entry.not_before,
                entry.not_after,
                entry.pem,
                entry.batch_id,
                entry.revoked_at,
                entry.revocation_reason,
            ),
        )

    def get(self, serial: str, cur: sqlite3.Cursor | None = None) -> Entry | None:
        executor = cur or self.connect()
        row = executor.execute(f"SELECT {_COLUMNS} FROM certificates WHERE serial = ?", (serial,)).fetchone()  # noqa: S608  (constant column list)
        return None if row is None else Entry.from_row(row)

    @staticmethod
    def mark_revoked(cur: sqlite3.Cursor, serial: str, revoked_at: str, reason: str) -> None:
        cur.execute(
            "UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ? AND revoked_at IS NULL",
            (revoked_at, reason, serial),
        )

    def revoked(self, cur: sqlite3.Cursor | None = None) -> list[Entry]:
        executor = cur or self.connect()
        rows = executor.execute(
            f"SELECT {_COLUMNS} FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial"  # noqa: S608  (constant column list)
        ).fetchall()
        return [Entry.from_row(r) for r in rows]

    def all(self) -> list[Entry]:
        rows = self.connect().execute(f"SELECT {_COLUMNS} FROM certificates ORDER BY not_before, serial").fetchall()  # noqa: S608  (constant column list)
        return [Entry.from_row(r) for r in rows]

    def batch_count(self) -> int:
        return int(self.connect().execute("SELECT COUNT(*) FROM batches WHERE issued > 0").fetchone()[0])

    def integrity_check(self) -> str:
        return str(self.connect().execute("PRAGMA integrity_check").fetchone()[0])
