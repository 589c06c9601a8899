# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Batch signing benchmark (`make bench`): one run, side by side, ratios rather than bare numbers.

For each CA key type it times, on the same 1000 CSRs:
  raw        cryptography alone in this process: load each CSR, build a certificate with the same
             extensions, sign it (no policy, no ledger): the ceiling;
  engine     the engine's batch sign in this process (policy, CSR signature check, ledger);
  ca_sign    the ca_sign module run as Ansible runs it (a separate process, JSON in and out),
             with 1000 requests in one call, and its fixed start-up cost measured with 1 request;
  single     ca_sign called once per CSR (20 calls): what a per-certificate loop costs.

And, against the usual way of doing this with Ansible, both through ansible-playbook on localhost
(connection local, this venv's ansible) with a fresh CA of each key type, on the same N (20) CSRs:
  ownca      community.crypto.x509_certificate with provider ownca, looped over the CSR files,
             one module run per certificate;
  ca_sign    securestack.pki.ca_sign with the same N CSRs in one call.
Each is the duration of its task as the ansible.posix.json callback records it (and, beside it,
the wall time of the whole ansible-playbook run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
from conftest import link_collection  # noqa: E402

link_collection()  # this checkout, importable as ansible_collections.securestack.pki
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID  # noqa: E402
from helpers import make_csr  # noqa: E402

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import (  # noqa: E402
    AuthoritySettings,
    CertificateAuthority,
    SignSpec,
)


def raw_sign(ca: CertificateAuthority, csrs: list[str], verify: bool = False) -> float:
    key, issuer = ca.key, ca.certificate
    issuer_ski = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key())
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)
    algorithm = None if "ed25519" in type(key).__name__.lower() else hashes.SHA256()
    now = datetime.datetime.now(datetime.UTC)
    start = time.perf_counter()
    for pem in csrs:
        csr = x509.load_pem_x509_csr(pem.encode())
        if verify and not csr.is_signature_valid:
            raise SystemExit("a benchmark CSR does not verify")
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(issuer.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(san, critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
            .add_extension(aki, critical=False)
            .sign(key, algorithm)
        )
    return time.perf_counter() - start


def module_call(args: dict, workdir: str) -> tuple[float, dict]:
    collections = os.path.join(ROOT, ".cache", "unit-collections")
    arg_file = os.path.join(workdir, "args.json")
    with open(arg_file, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ansible_collections.securestack.pki.plugins.modules.ca_sign", arg_file],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": collections},
        check=False,
    )
    elapsed = time.perf_counter() - start
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit(f"ca_sign failed: {result['msg']}")
    return elapsed, result


def bench(key_type: str, csrs: list[str], singles: int, rounds: int, workdir: str) -> dict:
    """Each figure is the best of `rounds` interleaved rounds: on a shared machine the
    fastest run is the one least disturbed by others."""
    settings = AuthoritySettings(
        common_name=f"Bench {key_type}", key_type="rsa" if key_type == "rsa2048" else "ecdsa", key_size=2048
    )
    count = len(csrs)
    best: dict[str, float] = {}

    def keep(label: str, seconds: float) -> None:
        best[label] = min(best.get(label, seconds), seconds)

    for round_ in range(rounds):
        path = os.path.join(workdir, f"ca-{key_type}-{round_}")
        engine_path = os.path.join(workdir, f"engine-{key_type}-{round_}")
        CertificateAuthority.ensure(path, settings)
        CertificateAuthority.ensure(engine_path, settings)
        ca = CertificateAuthority.open(path)
        keep("raw", raw_sign(ca, csrs))
        keep("raw_verified", raw_sign(ca, csrs, verify=True))
        start = time.perf_counter()
        results = CertificateAuthority.open(engine_path).sign(
            [SignSpec(csr=c, name=str(i)) for i, c in enumerate(csrs)]
        )
        keep("engine", time.perf_counter() - start)
        assert sum(r.changed for r in results) == count
        startup, _result = module_call(
            {"ca": path, "csr": make_csr(cn="warm.example.com", dns=["warm.example.com"])}, workdir
        )
        keep("startup", startup)
        batch, result = module_call(
            {"ca": path, "requests": [{"name": str(i), "csr": c} for i, c in enumerate(csrs)]}, workdir
        )
        assert result["issued"] == count, result["issued"]
        keep("batch", batch)
    single_times = []
    for i in range(singles):
        elapsed, _result = module_call(
            {"ca": path, "csr": make_csr(cn=f"s{i}.example.com", dns=[f"s{i}.example.com"])}, workdir
        )
        single_times.append(elapsed)
    return {
        "key": key_type,
        "raw_rate": count / best["raw"],
        "raw_verified_rate": count / best["raw_verified"],
        "engine_rate": count / best["engine"],
        "batch_rate": count / best["batch"],
        "batch_rate_net": count / max(best["batch"] - best["startup"], 1e-9),
        "startup": best["startup"],
        "single": sorted(single_times)[len(single_times) // 2],
    }


OWNCA_PLAYBOOK = """\
- name: Sign with community.crypto, one x509_certificate (provider ownca) per CSR
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Sign each CSR with the ownca provider
      community.crypto.x509_certificate:
        path: "{{ bench_out }}/{{ item }}.crt"
        csr_path: "{{ bench_csr_dir }}/{{ item }}.csr"
        provider: ownca
        ownca_path: "{{ bench_ca }}/ca.crt"
        ownca_privatekey_path: "{{ bench_ca }}/ca.key"
        ownca_digest: sha256
        ownca_not_after: +90d
        mode: "0644"
      loop: "{{ bench_names }}"
"""

CA_SIGN_PLAYBOOK = """\
- name: Sign with securestack.pki, every CSR in one ca_sign call
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Sign the CSRs in one batch
      securestack.pki.ca_sign:
        ca: "{{ bench_ca }}"
        requests: "{{ bench_requests }}"
"""


def _stamp(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.rstrip("Z"))


def playbook(text: str, variables: dict, workdir: Path, label: str) -> tuple[float, float, dict]:
    """Run a playbook on localhost; (task seconds, whole run seconds, the task's result)."""
    play, var_file = workdir / f"{label}.yml", workdir / f"{label}-vars.json"
    play.write_text(text)
    var_file.write_text(json.dumps({**variables, "ansible_python_interpreter": sys.executable}))
    # Not the repository's ansible.cfg: its profile_tasks callback would print into the JSON, and
    # nothing else it sets applies to a local play.
    config = workdir / "ansible.cfg"
    config.write_text("[defaults]\nstdout_callback = ansible.posix.json\nretry_files_enabled = false\n")
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get(
            "ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".cache", "collections")
        ),
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), str(play), "-e", f"@{var_file}"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    run = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{label} playbook failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    task = json.loads(proc.stdout)["plays"][0]["tasks"][-1]
    duration = task["task"]["duration"]
    return (_stamp(duration["end"]) - _stamp(duration["start"])).total_seconds(), run, task["hosts"]["localhost"]


def ansible_peer(key_type: str, csrs: list[str], rounds: int, workdir: str) -> dict:
    """community.crypto's per-certificate loop against one ca_sign call: same CSRs, same kind of CA key."""
    base = Path(workdir) / f"peer-{key_type}"
    csr_dir = base / "csr"
    csr_dir.mkdir(parents=True)
    names = [f"host{i}" for i in range(len(csrs))]
    for name, pem in zip(names, csrs, strict=True):
        (csr_dir / f"{name}.csr").write_text(pem)
    settings = AuthoritySettings(
        common_name=f"Peer {key_type}", key_type="rsa" if key_type == "rsa2048" else "ecdsa", key_size=2048
    )
    best: dict[str, float] = {}

    def keep(label: str, seconds: float) -> None:
        best[label] = min(best.get(label, seconds), seconds)

    for round_ in range(rounds):
        ca = base / f"ca-{round_}"  # a fresh CA each round: the ledger would return the same certificates
        CertificateAuthority.ensure(str(ca), settings)
        task, run, result = playbook(
            CA_SIGN_PLAYBOOK,
            {"bench_ca": str(ca), "bench_requests": [{"name": n, "csr": c} for n, c in zip(names, csrs, strict=True)]},
            base,
            "ca_sign",
        )
        assert result["issued"] == len(csrs), result.get("issued")
        keep("ca_sign", task)
        keep("ca_sign_run", run)
        out = base / f"ownca-{round_}"
        out.mkdir()
        task, run, result = playbook(
            OWNCA_PLAYBOOK,
            {"bench_ca": str(ca), "bench_out": str(out), "bench_csr_dir": str(csr_dir), "bench_names": names},
            base,
            "ownca",
        )
        assert sum(bool(r.get("changed")) for r in result["results"]) == len(csrs), "ownca did not issue every one"
        assert len(list(out.glob("*.crt"))) == len(csrs)
        keep("ownca", task)
        keep("ownca_run", run)
    return {
        "key": key_type,
        "ownca_rate": len(csrs) / best["ownca"],
        "ca_sign_rate": len(csrs) / best["ca_sign"],
        "ownca_run": best["ownca_run"],
        "ca_sign_run": best["ca_sign_run"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--ownca-count", type=int, default=20, help="CSRs for the community.crypto ownca peer (0: skip it)"
    )
    parser.add_argument("--ownca-rounds", type=int, default=1, help="rounds of the ownca peer (best kept)")
    args = parser.parse_args()
    print(f"generating {args.count} CSRs (ECDSA P-256 keys) ...", flush=True)
    csrs = [make_csr(cn=f"host{i}.example.com", dns=[f"host{i}.example.com"]) for i in range(args.count)]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for key_type in ("rsa2048", "ecdsa-p256"):
            print(f"signing with a {key_type} CA ...", flush=True)
            rows.append(bench(key_type, csrs, args.singles, args.rounds, workdir))
        peers = []
        if args.ownca_count > 0:
            for key_type in ("rsa2048", "ecdsa-p256"):
                print(f"ansible-playbook: ownca loop and one ca_sign call, {key_type} CA ...", flush=True)
                peers.append(ansible_peer(key_type, csrs[: args.ownca_count], args.ownca_rounds, workdir))
    print()
    print(
        f"Batch signing of {args.count} CSRs, best of {args.rounds} rounds in one run ({os.cpu_count()} cores,"
        f" cryptography {__import__('cryptography').__version__}):"
    )
    header = (
        f"{'CA key':<11} {'raw/s':>7} {'raw+v/s':>8} {'engine/s':>9} {'ca_sign/s':>10} {'net/s':>7}"
        f" {'net/raw':>8} {'net/raw+v':>9} {'start-up s':>10} {'single call s':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['key']:<11} {r['raw_rate']:>7.0f} {r['raw_verified_rate']:>8.0f} {r['engine_rate']:>9.0f}"
            f" {r['batch_rate']:>10.0f} {r['batch_rate_net']:>7.0f} {r['batch_rate_net'] / r['raw_rate']:>8.2f}"
            f" {r['batch_rate_net'] / r['raw_verified_rate']:>9.2f} {r['startup']:>10.3f} {r['single']:>13.3f}"
        )
    print()
    print("raw: cryptography alone in one process, no check of the CSR; raw+v: the same plus the CSR")
    print("signature check that every CA owes (proof of possession); engine: the engine's batch in this process;")
    print("ca_sign: the module with all requests in one call, as Ansible runs it; net: start-up cost")
    print("(a 1-request call) taken off; single call: one ca_sign per CSR (median). Target: net/raw >= 0.5.")
    if not peers:
        return
    print()
    print(
        f"Against community.crypto: {args.ownca_count} CSRs through ansible-playbook on localhost, best of"
        f" {args.ownca_rounds} round(s) ({_ansible_versions()}):"
    )
    header = f"{'CA key':<11} {'ownca/s':>8} {'ca_sign/s':>10} {'ratio':>7} {'ownca run s':>12} {'ca_sign run s':>14}"
    print(header)
    print("-" * len(header))
    for p in peers:
        print(
            f"{p['key']:<11} {p['ownca_rate']:>8.1f} {p['ca_sign_rate']:>10.1f}"
            f" {p['ca_sign_rate'] / p['ownca_rate']:>7.1f} {p['ownca_run']:>12.1f} {p['ca_sign_run']:>14.1f}"
        )
    print()
    print("ownca/s: community.crypto.x509_certificate (provider ownca) looped over the CSR files, one module run")
    print("per certificate; ca_sign/s: securestack.pki.ca_sign with every CSR in one call; both are the task's")
    print("duration; ratio: ca_sign/s over ownca/s; run s: the whole ansible-playbook run, start-up included.")


def _ansible_versions() -> str:
    import ansible.release

    manifest = Path(ansible.release.__file__).parents[1] / "ansible_collections/community/crypto/MANIFEST.json"
    try:
        crypto = json.loads(manifest.read_text())["collection_info"]["version"]
    except OSError:
        crypto = "?"
    return f"ansible-core {ansible.release.__version__}, community.crypto {crypto}"


if __name__ == "__main__":
    main()
