# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection
# (its modules, its roles and its portal). Breaking changes can occur any time.
#
# File handling of the CA engine: atomic writes (temporary file in the same
# directory, fsync, rename), private modes, and an exclusive lock per CA
# directory for the rare operations that change more than the ledger.

from __future__ import annotations

import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

DIRECTORY_MODE = 0o700
KEY_MODE = 0o600
PUBLIC_MODE = 0o644


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def atomic_write(path: str, data: bytes, mode: int) -> bool:
    """Write `data` to `path` so that readers see the old or the new file, never a part.

    Returns True when the content or the mode changed.
    """
    current = read_bytes(path)
    if current == data:
        if stat.S_IMODE(os.stat(path).st_mode) != mode:
            os.chmod(path, mode)
            return True
        return False
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True


def ensure_private_directory(path: str) -> bool:
    """Create `path` with mode 0700 (or tighten it). Returns True when something changed."""
    if not os.path.isdir(path):
        os.makedirs(path, mode=DIRECTORY_MODE)
        os.chmod(path, DIRECTORY_MODE)
        return True
    if stat.S_IMODE(os.stat(path).st_mode) != DIRECTORY_MODE:
        os.chmod(path, DIRECTORY_MODE)
        return True
    return False


def ensure_mode(path: str, mode: int) -> bool:
    if os.path.exists(path) and stat.S_IMODE(os.stat(path).st_mode) != mode:
        os.chmod(path, mode)
        return True
    return False


@contextmanager
def directory_lock(path: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on the CA directory."""
    fd = os.open(os.path.join(path, ".lock"), os.O_RDWR | os.O_CREAT, KEY_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
