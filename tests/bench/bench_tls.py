# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS handshake benchmark (`make bench`): our nginx and Apache against the same servers at Debian's defaults.

Six Debian 12 containers (systemd) on one docker network, set up by tests/bench/tls/setup.yml:
  default   nginx and Apache as Debian ships them, TLS switched on the Debian way (the default
            site's TLS lines, default-ssl) with Debian's snakeoil certificate, RSA 2048;
  tls       nginx and Apache converged by securestack.pki.nginx / securestack.pki.apache, a
            second site (port 8444) without client certificates: the role's TLS settings
            alone (ECDSA P-256, Mozilla intermediate, session cache, no tickets);
  mtls      the portal's site of the same servers (port 443): a user certificate on every
            full handshake, verified up to the root, with the CRLs of the users CA and the root;
plus the CA host and a client host. From the client host, tls/handshakes.py
runs --clients processes in parallel against one server for --seconds,
fetching a small page (/bench, answered by the server itself, not proxied),
with a full handshake per connection, or resuming the previous connection's
session. Servers are measured in interleaved rounds and the best round of
each is kept. The result is handshakes per second of the server container's
CPU time (from its cgroup: what one core of the server takes, whatever else
runs on the machine), handshakes per second of wall-clock time (bound by the
clients and the shared machine), and the ratio of each hardened
configuration to the default one.

--root-curve sets the root CA's key (the ca role's ca_root_key_curve, P-384
by default): a full mutual-TLS handshake verifies two of its signatures (on
the users CA's certificate and on the root's CRL).
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
HERE = os.path.join(ROOT, "tests", "bench", "tls")
NETWORK = "securestack-bench-tls"
PREFIX = "securestack-bench-tls-"
# Inventory group of each container (the web scenarios' groups, plus the defaults).
HOSTS = {
    "ca": "ca",
    "client": "app",
    "nginx": "web_nginx",
    "apache": "web_apache",
    "nginx-default": "defaults_nginx",
    "apache-default": "defaults_apache",
}
# server, hardened container, default container
PAIRS = [("nginx", "nginx", "nginx-default"), ("apache", "apache", "apache-default")]
# configuration: (container of the pair: 0 hardened, 1 default), port, client certificate
CONFIGS = {"default": (1, 443, False), "tls": (0, 8444, False), "mtls": (0, 443, True)}
USER_CERT = ("/etc/web-test/alice.crt", "/etc/web-test/alice.key")


def name(host: str) -> str:
    return PREFIX + host


def start() -> None:
    stop()
    docker("network", "create", NETWORK, check=False)
    for host in HOSTS:
        docker(
            "run",
            "-d",
            "--name",
            name(host),
            "--hostname",
            name(host),
            "--network",
            NETWORK,
            *SYSTEMD_FLAGS,
            IMAGE,
            "/sbin/init",
        )
    # On a busy docker host a systemd container now and then exits at once
    # (exit 255, no log): start it again.
    for pause in (2, 2, 2):
        time.sleep(pause)
        stopped = [host for host in HOSTS if docker("inspect", "-f", "{{.State.Running}}", name(host)) != "true"]
        if not stopped:
            return
        docker("start", *[name(host) for host in stopped], check=False)
    raise SystemExit(f"containers do not stay up: {stopped}")


def stop() -> None:
    docker("rm", "-f", *[name(host) for host in HOSTS], check=False)
    docker("network", "rm", NETWORK, check=False)


def inventory(path: str) -> None:
    connection = {"ansible_connection": "community.docker.docker", "ansible_python_interpreter": "/usr/bin/python3"}
    groups: dict[str, dict] = {}
    for host, group in HOSTS.items():
        groups.setdefault(group, {"hosts": {}})["hosts"][name(host)] = connection
    groups["web"] = {"children": {"web_nginx": {}, "web_apache": {}}}
    with open(path, "w") as handle:
        json.dump({"all": {"children": groups}}, handle)


def setup(inventory_path: str, root_curve: str) -> None:
    playbook = os.path.join(ROOT, ".venv", "bin", "ansible-playbook")
    result = subprocess.run(
        [playbook, "-i", inventory_path, "-e", f"ca_root_key_curve={root_curve}", os.path.join(HERE, "setup.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-6000:] + result.stderr[-2000:])
        raise SystemExit(f"setup.yml failed (exit {result.returncode})")


def cpu_seconds(host: str) -> float:
    """CPU time used so far by a container (every process in it), from its cgroup."""
    container = docker("inspect", "-f", "{{.Id}}", name(host))
    v1 = f"/sys/fs/cgroup/cpuacct/docker/{container}/cpuacct.usage"
    if os.path.exists(v1):
        with open(v1) as handle:
            return int(handle.read()) / 1e9
    for v2 in (f"/sys/fs/cgroup/unified/docker/{container}", f"/sys/fs/cgroup/system.slice/docker-{container}.scope"):
        if os.path.exists(f"{v2}/cpu.stat"):
            with open(f"{v2}/cpu.stat") as handle:
                usage = dict(line.split() for line in handle)
            return int(usage["usage_usec"]) / 1e6
    raise SystemExit(f"no CPU accounting found for the container {name(host)}")


def handshakes(server: str, port: int, mode: str, *, clients: int, seconds: int, with_cert: bool) -> dict:
    """`clients` processes of tls/handshakes.py (mode: new or reuse) against one server.

    Returns connections per second of wall-clock time (`wall`), per second of
    the server container's CPU time (`capacity`: what one core of the server
    takes, which the load of a shared machine does not change), and the share
    of resumed handshakes (`resumed`).
    """
    argv = [name(server), str(port), mode, str(seconds), str(clients)]
    if with_cert:
        argv += list(USER_CERT)
    with open(os.path.join(HERE, "handshakes.py")) as handle:
        script = handle.read()
    # Every measurement starts from an empty session cache: a run leaves
    # thousands of live sessions behind, which would fill nginx's cache and
    # turn the next run's resumptions into full handshakes.
    unit = "apache2.service" if "apache" in server else "nginx.service"
    docker("exec", name(server), "systemctl", "restart", unit)
    time.sleep(1)
    before = cpu_seconds(server)
    result = subprocess.run(
        ["docker", "exec", "-i", name("client"), "python3", "-", *argv],
        input=script,
        capture_output=True,
        text=True,
        check=False,
    )
    used = cpu_seconds(server) - before
    if result.returncode != 0:
        raise SystemExit(f"the load against {server}:{port} ({mode}) failed: {result.stderr[-2000:]}")
    counts = json.loads(result.stdout)
    return {
        "wall": counts["connections"] / counts["seconds"],
        "capacity": counts["connections"] / used,
        "resumed": counts["resumed"] / max(counts["connections"], 1),
    }


def check_servers() -> None:
    """Each server answers /bench with the certificate it should have (the mutual-TLS one only with a certificate)."""
    for hardened, default in (pair[1:] for pair in PAIRS):
        for config, (which, port, with_cert) in CONFIGS.items():
            server = (hardened, default)[which]
            key_type = "rsaEncryption" if config == "default" else "id-ecPublicKey"
            cert = f"-cert {USER_CERT[0]} -key {USER_CERT[1]}" if with_cert else ""
            request = "printf 'GET /bench HTTP/1.0\\r\\n\\r\\n'"
            out = docker(
                "exec",
                name("client"),
                "sh",
                "-c",
                f"{request} | openssl s_client -connect {name(server)}:{port} {cert} -ign_eof 2>/dev/null"
                " | sed -n '/BEGIN CERT/,/END CERT/p' | openssl x509 -noout -text;"
                f" {request} | openssl s_client -quiet -connect {name(server)}:{port} {cert} -ign_eof 2>/dev/null"
                " | tail -n 1",
                check=False,
            )
            if key_type not in out or not out.rstrip().endswith("ok"):
                raise SystemExit(f"{server}:{port} does not serve /bench with a {key_type} certificate:\n{out[-2000:]}")


def measure(args: argparse.Namespace) -> dict[str, dict[tuple[str, str, str], float]]:
    """Every server, configuration and kind of handshake, in interleaved rounds; the best round of each."""
    tables: dict[str, dict[tuple[str, str, str], float]] = {"wall": {}, "capacity": {}, "resumed": {}}
    for round_number in range(args.rounds):
        print(f"round {round_number + 1}/{args.rounds} ...", flush=True)
        for server, hardened, default in PAIRS:
            for mode in ("new", "reuse"):
                for config, (which, port, with_cert) in CONFIGS.items():
                    target = (hardened, default)[which]
                    measured = handshakes(
                        target, port, mode, clients=args.clients, seconds=args.seconds, with_cert=with_cert
                    )
                    key = (server, mode, config)
                    for table in ("wall", "capacity"):
                        tables[table][key] = max(tables[table].get(key, 0.0), measured[table])
                    tables["resumed"][key] = min(tables["resumed"].get(key, 1.0), measured["resumed"])
    return tables


def report(args: argparse.Namespace, tables: dict[str, dict[tuple[str, str, str], float]]) -> None:
    for title, table in (
        ("per second of the server's CPU time (what one core of the server takes)", tables["capacity"]),
        ("per second of wall-clock time (bound by the shared machine and the clients)", tables["wall"]),
    ):
        print()
        print(f"TLS handshakes {title}:")
        header = f"{'server':<8} {'handshake':<9} {'default':>8} {'tls':>8} {'ratio':>6} {'mtls':>8} {'ratio':>6}"
        print(header)
        print("-" * len(header))
        for server in (pair[0] for pair in PAIRS):
            for mode, label in (("new", "full"), ("reuse", "resumed")):
                default, tls, mtls = (table[(server, mode, config)] for config in ("default", "tls", "mtls"))
                print(
                    f"{server:<8} {label:<9} {default:>8.0f} {tls:>8.0f} {tls / default:>6.2f}"
                    f" {mtls:>8.0f} {mtls / default:>6.2f}"
                )
    print()
    print(f"{args.clients} parallel clients, best of {args.rounds} rounds of {args.seconds} s;", end=" ")
    print(f"root CA key {args.root_curve}.")
    low = {key: share for key, share in tables["resumed"].items() if key[1] == "reuse" and share < 0.95}
    print("resumed handshakes:", low or "over 95 % of the connections that offered a session")
    print()
    print("default: Debian's configuration, RSA 2048 snakeoil certificate. tls: the role's TLS settings")
    print("(ECDSA P-256, Mozilla intermediate), no client certificate. mtls: the portal's site, a user")
    print("certificate verified up to the root with two CRLs on every full handshake. ratio > 1: faster")
    print("than the default server.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="length of one measurement")
    parser.add_argument("--clients", type=int, default=4, help="parallel client processes")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best kept)")
    parser.add_argument("--root-curve", default="secp384r1", choices=["secp384r1", "secp256r1"])
    parser.add_argument("--keep", action="store_true", help="leave the containers running")
    parser.add_argument("--again", action="store_true", help="measure the containers a --keep run left")
    args = parser.parse_args()
    if not args.again:
        print("starting six containers and converging them (a few minutes) ...", flush=True)
        start()
    try:
        if not args.again:
            with tempfile.TemporaryDirectory() as workdir:
                inventory_path = os.path.join(workdir, "inventory.json")
                inventory(inventory_path)
                started = time.perf_counter()
                setup(inventory_path, args.root_curve)
                print(f"set up in {time.perf_counter() - started:.0f} s", flush=True)
        check_servers()
        tables = measure(args)
    finally:
        if not args.keep:
            stop()
    report(args, tables)


if __name__ == "__main__":
    main()
