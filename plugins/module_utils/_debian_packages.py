# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection.
# Breaking changes can occur any time.
#
# What the `packages` module decides, without Ansible: which of the wanted
# Debian packages are missing, whether apt's package lists can install them
# as they are, and the apt-get calls that refresh the lists and install.
#
# Why not apt's own `cache_valid_time`: it judges the lists by the age of
# /var/lib/apt/lists (or apt's success stamp), so a host whose lists are
# empty but whose directory is new (a container or cloud image built minutes
# ago) is taken as fresh, and the install fails with "No package matching".
# Here the lists are refreshed when a missing package has no candidate in
# them, when they hold no index at all, or when they are older than the
# allowed age; never when everything wanted is installed already.

from __future__ import annotations

import glob
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LISTS_DIR = "/var/lib/apt/lists"
UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"

# Debian policy §5.6.1: lower case letters, digits, '+', '-', '.'; at least two
# characters, starting with a letter or digit. An architecture may follow.
PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?")

# Keep the configuration files the operator (or a role) changed; take the
# package's own defaults where nobody did. Never ask.
INSTALL_OPTIONS = (
    "-o",
    "Dpkg::Options::=--force-confdef",
    "-o",
    "Dpkg::Options::=--force-confold",
)
APT_ENVIRONMENT = {"DEBIAN_FRONTEND": "noninteractive", "APT_LISTCHANGES_FRONTEND": "none", "LC_ALL": "C.UTF-8"}

# run(argv, environ) -> (rc, stdout, stderr)
Runner = Callable[[Sequence[str], dict], tuple]


class PackagesError(Exception):
    """A wanted package cannot be installed; the message says why and what to check."""


@dataclass
class Plan:
    """What a run would do: the packages to install and whether the lists need a refresh first."""

    wanted: list[str]
    missing: list[str]
    refresh: bool = False
    reason: str = ""
    unknown: list[str] = field(default_factory=list)


def check_names(names: Sequence[str]) -> list[str]:
    """The wanted names, each once, in order; a name apt would read as something else is refused."""
    bad = [n for n in names if not isinstance(n, str) or not PACKAGE_NAME.fullmatch(n)]
    if bad:
        raise PackagesError(
            f"not a Debian package name: {', '.join(repr(b) for b in bad)} "
            "(lower-case letters, digits, '+', '-', '.'; no version or release pins)"
        )
    return list(dict.fromkeys(names))


def installed(names: Sequence[str], run: Runner) -> set[str]:
    """The names among `names` that dpkg has installed (state `ii`)."""
    fmt = "-f=${binary:Package}\t${Package}\t${db:Status-Abbrev}\n"
    rc, out, err = run(["dpkg-query", "-W", fmt, "--", *names], {})
    # dpkg-query exits 1 when some name is unknown to dpkg: that only means "not installed".
    if rc not in (0, 1):
        raise PackagesError(f"dpkg-query failed (rc {rc}): {err.strip()}")
    found: set[str] = set()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].startswith("ii"):
            found.update(parts[:2])
    return {n for n in names if n in found}


def candidates(names: Sequence[str], run: Runner) -> set[str]:
    """The names among `names` that apt's lists offer a version of (a candidate)."""
    rc, out, err = run(["apt-cache", "policy", "--", *names], APT_ENVIRONMENT)
    if rc != 0:
        raise PackagesError(f"apt-cache policy failed (rc {rc}): {err.strip()}")
    offered: set[str] = set()
    current = None
    for line in out.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            current = line[:-1]
        elif current and line.strip().startswith("Candidate:"):
            if line.split(":", 1)[1].strip() != "(none)":
                offered.add(current)
            current = None
    # apt-cache prints an architecture-qualified name as given; a plain name may
    # come back qualified on a multi-arch host.
    return {n for n in names if n in offered or any(o.split(":")[0] == n for o in offered)}


def lists_age(lists_dir: str = LISTS_DIR, stamp: str = UPDATE_STAMP, now: float | None = None) -> float | None:
    """Seconds since the lists were last fetched; None when there are no package indexes at all.

    The age is that of the newest index file (or apt's success stamp, when newer),
    not of the directory, which an image build or a cleanup touches without
    fetching anything.
    """
    indexes = [p for p in glob.glob(os.path.join(lists_dir, "*_Packages*")) if not p.endswith(".diff_Index")]
    if not indexes:
        return None
    newest = max(os.path.getmtime(p) for p in indexes)
    if os.path.exists(stamp):
        newest = max(newest, os.path.getmtime(stamp))
    return max(0.0, (time.time() if now is None else now) - newest)


def plan(names: Sequence[str], run: Runner, max_age: int, age: float | None) -> Plan:
    """Decide what to do for `names` given the lists' `age` (see lists_age)."""
    wanted = check_names(names)
    present = installed(wanted, run)
    missing = [n for n in wanted if n not in present]
    if not missing:
        return Plan(wanted, [])
    if age is None:
        return Plan(wanted, missing, True, "the package lists are empty")
    if age > max_age:
        return Plan(wanted, missing, True, f"the package lists are {int(age)} s old (more than {max_age} s)")
    offered = candidates(missing, run)
    unknown = [n for n in missing if n not in offered]
    if unknown:
        return Plan(wanted, missing, True, f"the package lists do not offer {', '.join(unknown)}", unknown)
    return Plan(wanted, missing)


def refresh(run: Runner, retries: int = 3, pause: float = 2.0) -> None:
    """apt-get update, retried with a growing pause (a mirror or cache can fail for a moment)."""
    err = ""
    for attempt in range(retries):
        rc, out, err = run(["apt-get", "update", "-q"], APT_ENVIRONMENT)
        # apt-get update exits 0 even when some index failed to download; it then says so.
        failed = [line for line in (out + "\n" + err).splitlines() if line.startswith(("E:", "W: Failed to fetch"))]
        if rc == 0 and not failed:
            return
        err = "\n".join(failed) or err.strip()
        if attempt + 1 < retries:
            time.sleep(pause * 2**attempt)
    raise PackagesError(f"apt-get update failed {retries} times: {err}")


def install(missing: Sequence[str], run: Runner, lock_timeout: int) -> None:
    lock = f"DPkg::Lock::Timeout={lock_timeout}"
    argv = ["apt-get", "install", "-y", "-q", "-o", lock, *INSTALL_OPTIONS, "--", *missing]
    rc, out, err = run(argv, APT_ENVIRONMENT)
    if rc != 0:
        tail = "\n".join((out.strip().splitlines() + err.strip().splitlines())[-15:])
        raise PackagesError(f"apt-get install {' '.join(missing)} failed (rc {rc}):\n{tail}")


def ensure(
    names: Sequence[str], run: Runner, *, max_age: int, lock_timeout: int, check_mode: bool, age: float | None
) -> Plan:
    """Install what is missing, refreshing the lists first when they cannot serve it. Returns the plan carried out."""
    todo = plan(names, run, max_age, age)
    if not todo.missing or check_mode:
        return todo
    if todo.refresh:
        refresh(run)
        offered = candidates(todo.missing, run)
        still = [n for n in todo.missing if n not in offered]
        if still:
            raise PackagesError(
                f"no package {', '.join(still)} in apt's package lists, even after refreshing them: "
                "check the name, and that the host's apt sources include the suite that has it"
            )
    install(todo.missing, run, lock_timeout)
    return todo
