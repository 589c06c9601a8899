# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the portal's wheelhouse on the controller, for the target's Python and platform.

Run by the securestack.pki.portal role (delegated to the controller). The
result is one tar file, wheelhouse.tar, holding:

  wheels/            the portal's wheel and a binary wheel of every pinned
                     runtime dependency (requirements.lock), for the target's
                     CPython version, ABI and glibc (manylinux) platform
  requirements.lock  the pins, installed with --no-index on the target
  engine/securestack_pki/  the collection's CA engine (plugins/module_utils/_pki_*.py
                     without the Ansible glue, and the package's __init__.py)
  manifest.json      what went in, and the content hash

The tar is kept in CACHE/<hash>/, where the hash covers everything that goes
into it (portal sources, pins, engine files, target Python and platforms), so
an unchanged input is never rebuilt: the script then only prints where the tar
is. Output: one JSON object on stdout: {"changed", "hash", "tarball"}.

Dependencies are downloaded with --only-binary=:all: and --no-deps, so the
lock must be complete: a missing pin fails the install on the target (pip
--no-index), never silently pulls an unpinned version.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# Bump when the layout of the tar changes: it is part of the hash.
FORMAT = "1"
# Left out of the portal's source hash: they do not go into its wheel.
SKIP_DIRS = {"__pycache__", "tests", "build", "dist", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo")


def skipped(path: Path) -> bool:
    return path.suffix in SKIP_SUFFIXES or any(
        part in SKIP_DIRS or part.endswith(".egg-info") for part in path.parts[:-1]
    )


def source_files(source: Path) -> list[Path]:
    """Files of the portal's source tree that can change its wheel, relative and sorted."""
    return sorted(
        path.relative_to(source)
        for path in source.rglob("*")
        if path.is_file() and not skipped(path.relative_to(source))
    )


def content_hash(args: argparse.Namespace) -> str:
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("format", FORMAT.encode())
    add("python", args.python_version.encode())
    add("platforms", "\n".join(args.platform).encode())
    for rel in source_files(args.source):
        add(f"source/{rel.as_posix()}", (args.source / rel).read_bytes())
    add("lock", args.lock.read_bytes())
    for path in sorted(args.engine, key=lambda p: p.name):
        add(f"engine/{path.name}", path.read_bytes())
    return digest.hexdigest()


def run(argv: list[str]) -> None:
    # argv is built here from the role's own options, never from a shell string.
    result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        sys.stderr.write(f"command failed ({result.returncode}): {' '.join(argv)}\n{result.stdout}\n{result.stderr}\n")
        raise SystemExit(1)


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build(args: argparse.Namespace, digest: str, out_dir: Path) -> Path:
    work = Path(tempfile.mkdtemp(prefix="portal-wheelhouse-", dir=out_dir.parent))
    try:
        wheels = work / "wheels"
        pip = [args.pip_python, "-m", "pip", "--disable-pip-version-check", *args.pip_arg]
        # The portal itself: pure Python, built from a copy of its sources
        # (setuptools writes build/ and *.egg-info into the tree it builds,
        # and an installed collection may be read-only).
        source = work / "source"
        shutil.copytree(args.source, source, ignore=shutil.ignore_patterns(*SKIP_DIRS, "*.egg-info", "*.pyc", "*.pyo"))
        run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)])
        # Its pinned dependencies, as binary wheels for the target only.
        abi = "cp" + args.python_version.replace(".", "")
        platforms = [item for platform in args.platform for item in ("--platform", platform)]
        run(
            [
                *pip,
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                args.python_version,
                "--abi",
                abi,
                *platforms,
                "--dest",
                str(wheels),
                "--requirement",
                str(args.lock),
            ]
        )
        manifest = {
            "format": FORMAT,
            "hash": digest,
            "python_version": args.python_version,
            "platforms": args.platform,
            "wheels": sorted(path.name for path in wheels.iterdir()),
            "engine": sorted(path.name for path in args.engine),
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        partial = out_dir / "wheelhouse.tar.partial"
        with tarfile.open(partial, "w") as tar:
            for name in manifest["wheels"]:
                tar.add(wheels / name, arcname=f"wheels/{name}")
            tar.add(args.lock, arcname="requirements.lock")
            for path in sorted(args.engine, key=lambda p: p.name):
                tar.add(path, arcname=f"engine/securestack_pki/{path.name}")
            add_bytes(tar, "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
        tarball = out_dir / "wheelhouse.tar"
        partial.replace(tarball)
        return tarball
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--source", required=True, type=Path, help="the portal's source directory (pyproject.toml)")
    parser.add_argument("--lock", required=True, type=Path, help="pinned runtime dependencies (requirements.lock)")
    parser.add_argument("--engine", action="append", default=[], type=Path, help="an engine file (repeat)")
    parser.add_argument("--python-version", required=True, help="the target's Python, e.g. 3.11")
    parser.add_argument("--platform", action="append", required=True, help="a wheel platform tag (repeat)")
    parser.add_argument("--cache", required=True, type=Path, help="directory of the built wheelhouses")
    parser.add_argument("--pip-python", default=sys.executable, help="Python whose pip downloads and builds")
    parser.add_argument("--pip-arg", action="append", default=[], help="an extra pip option (repeat)")
    args = parser.parse_args()
    for path in [args.source, args.lock, *args.engine]:
        if not path.exists():
            parser.error(f"{path} does not exist")
    if not args.engine:
        parser.error("at least one --engine file is required")

    digest = content_hash(args)
    out_dir = args.cache.expanduser().resolve() / digest[:32]
    tarball = out_dir / "wheelhouse.tar"
    changed = not tarball.exists()
    if changed:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tarball = build(args, digest, out_dir)
    print(json.dumps({"changed": changed, "hash": digest, "tarball": str(tarball)}))


if __name__ == "__main__":
    main()
