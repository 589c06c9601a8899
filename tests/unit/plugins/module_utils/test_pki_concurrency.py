# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Parallel signers against one CA, and a signer killed in the middle of a batch."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap

from helpers import make_csr

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import (
    AuthoritySettings,
    CertificateAuthority,
)

PROCESSES = 20
PER_PROCESS = 5

SIGNER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import CertificateAuthority, SignSpec
    ca_dir, csr_file, start_at = sys.argv[2], sys.argv[3], float(sys.argv[4])
    with open(csr_file) as handle:
        csrs = json.load(handle)
    while time.time() < start_at:      # every process starts signing at the same moment
        time.sleep(0.001)
    results = CertificateAuthority.open(ca_dir).sign([SignSpec(csr=c, name=n) for n, c in csrs])
    print(json.dumps([[r.name, r.serial, r.certificate] for r in results]))
    """
)

SLOW_SIGNER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.securestack.pki.plugins.module_utils import _pki_ca
    real_build = _pki_ca._build_certificate
    count = 0
    def slow_build(**kwargs):
        global count
        count += 1
        if count == 3:
            print("signing", flush=True)   # inside the transaction (in the signer or a worker)
        time.sleep(0.01)
        return real_build(**kwargs)
    _pki_ca._build_certificate = slow_build
    with open(sys.argv[3]) as handle:
        csrs = json.load(handle)
    _pki_ca.CertificateAuthority.open(sys.argv[2]).sign([_pki_ca.SignSpec(csr=c, name=n) for n, c in csrs])
    print("finished", flush=True)
    """
)


def collections_root() -> str:
    import ansible_collections.securestack.pki as collection

    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(collection.__path__[0]))))


def write_csrs(path: str, prefix: str, count: int) -> None:
    csrs = [
        [f"{prefix}-{i}", make_csr(cn=f"{prefix}-{i}.example.com", dns=[f"{prefix}-{i}.example.com"])]
        for i in range(count)
    ]
    with open(path, "w") as handle:
        json.dump(csrs, handle)


def test_twenty_processes_sign_at_once(tmp_path) -> None:
    import time

    ca_dir = str(tmp_path / "ca")
    CertificateAuthority.ensure(ca_dir, AuthoritySettings(common_name="Busy CA"))
    start_at = time.time() + 3
    procs = []
    for p in range(PROCESSES):
        csr_file = str(tmp_path / f"csrs-{p}.json")
        write_csrs(csr_file, f"p{p}", PER_PROCESS)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", SIGNER, collections_root(), ca_dir, csr_file, str(start_at)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    issued = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        issued += json.loads(out)
    serials = [serial for _name, serial, _pem in issued]
    assert len(issued) == PROCESSES * PER_PROCESS
    assert len(set(serials)) == len(serials), "two signers got the same serial"
    ledger = {e.serial: e for e in CertificateAuthority.open(ca_dir).ledger.all()}
    assert set(ledger) == set(serials), "a certificate is missing from the ledger"
    for name, serial, pem in issued:
        assert ledger[serial].pem == pem and ledger[serial].name == name
    ca = CertificateAuthority.open(ca_dir)
    assert ca.ledger.integrity_check() == "ok"
    assert ca.ledger.batch_count() == PROCESSES


def test_signer_killed_mid_batch_leaves_the_ledger_consistent(tmp_path) -> None:
    ca_dir = str(tmp_path / "ca")
    CertificateAuthority.ensure(ca_dir, AuthoritySettings(common_name="Crash CA"))
    csr_file = str(tmp_path / "csrs.json")
    write_csrs(csr_file, "doomed", 200)
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SIGNER, collections_root(), ca_dir, csr_file],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("signing")  # a worker is signing: the batch is mid-way
    os.kill(proc.pid, signal.SIGKILL)  # the process that holds the transaction
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with contextlib.suppress(ProcessLookupError):  # its orphaned signing workers, if any are left
        os.killpg(proc.pid, signal.SIGKILL)

    ca = CertificateAuthority.open(ca_dir)
    assert ca.ledger.integrity_check() == "ok"
    assert ca.ledger.all() == []  # all or nothing: the killed batch left no half entry
    assert ca.ledger.connect().execute("SELECT COUNT(*) FROM batches").fetchone()[0] == 0
    # the CA keeps working: the lock died with the process
    write_csrs(csr_file, "after", 3)
    with open(csr_file) as handle:
        from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import SignSpec

        results = ca.sign([SignSpec(csr=c, name=n) for n, c in json.load(handle)])
    assert len(ca.ledger.all()) == 3 and all(r.changed for r in results)
