# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the benchmarks that start containers share: the test image, systemd's flags, the docker command."""

from __future__ import annotations

import subprocess

IMAGE = "securestack/debian:12"
# systemd as PID 1, with the flags of the molecule scenarios (--privileged fails on these machines).
SYSTEMD_FLAGS = [
    "--cap-add",
    "SYS_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--cgroupns",
    "host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    "--tmpfs",
    "/tmp",
    "--stop-signal",
    "SIGRTMIN+3",
]


def docker(*args: str, check: bool = True) -> str:
    """Run docker with these arguments; its standard output, stripped."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check).stdout.strip()
