# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rollout benchmark (`make bench`): the `certificate` role on N hosts against a bare play.

One CA container (systemd, the `ca` role) and, for each N, N fresh lightweight containers
(no init: a shell that sleeps) on one docker network. For each N it times, in the same run:
  facts   a play that only gathers facts on the N hosts (Ansible's own cost per host);
  role    the `certificate` role issuing and installing one server certificate on each host
          (key and CSR on the host, one ca_sign batch on the CA host, files back).
The issuance cost is role - facts; batching makes it grow far slower than N.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from containers import IMAGE, SYSTEMD_FLAGS, docker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "bench", "rollout")
NETWORK = "securestack-bench"
CA = "securestack-bench-ca"


def remove(names: list[str]) -> None:
    if names:
        docker("rm", "-f", *names, check=False)


def start_hosts(count: int) -> list[str]:
    names = [f"securestack-bench-h{i}" for i in range(count)]
    remove(names)
    for name in names:
        docker("run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, IMAGE, "sleep", "infinity")
    return names


def inventory(path: str, hosts: list[str]) -> None:
    connection = {"ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"}
    data = {
        "ca": {"hosts": {CA: connection}},
        "bench": {"hosts": dict.fromkeys(hosts, connection)},
    }
    with open(path, "w") as handle:
        json.dump({"all": {"children": data}}, handle)


def playbook(play: str, inventory_path: str, forks: int) -> float:
    env = {**os.environ, "ANSIBLE_FORKS": str(forks)}
    start = time.perf_counter()
    result = subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", inventory_path, os.path.join(HERE, play)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-2000:])
        raise SystemExit(f"{play} failed (exit {result.returncode})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default="1,5,10,20", help="comma-separated host counts")
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    docker("network", "create", NETWORK, check=False)
    remove([CA])
    docker("run", "-d", "--name", CA, "--hostname", "ca", "--network", NETWORK, *SYSTEMD_FLAGS, IMAGE, "/sbin/init")
    rows = []
    hosts: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as workdir:
            inventory_path = os.path.join(workdir, "inventory.json")
            inventory(inventory_path, [])
            print("setting up the CA container (the ca role) ...", flush=True)
            playbook("ca.yml", inventory_path, forks=5)
            for count in counts:
                print(f"{count} hosts ...", flush=True)
                hosts = start_hosts(count)
                inventory(inventory_path, hosts)
                forks = max(5, count)
                facts = playbook("facts.yml", inventory_path, forks)
                role = playbook("certificates.yml", inventory_path, forks)
                again = playbook("certificates.yml", inventory_path, forks)
                rows.append((count, facts, role, again))
                remove(hosts)
                hosts = []
    finally:
        remove([*hosts, CA])
        docker("network", "rm", NETWORK, check=False)
    print()
    print("Rollout of one server certificate per host, one run (forks = max(5, N)):")
    header = f"{'hosts':>5} {'facts s':>8} {'role s':>7} {'role-facts s':>12} {'per host s':>10} {'2nd run s':>9}"
    print(header)
    print("-" * len(header))
    for count, facts, role, again in rows:
        print(
            f"{count:>5} {facts:>8.1f} {role:>7.1f} {role - facts:>12.1f} {(role - facts) / count:>10.2f} {again:>9.1f}"
        )
    print()
    print("facts: a play that only gathers facts on the same hosts; role: the certificate role on fresh hosts")
    print("(key, CSR, one ca_sign batch, files); 2nd run: the role again, nothing to change.")


if __name__ == "__main__":
    main()
