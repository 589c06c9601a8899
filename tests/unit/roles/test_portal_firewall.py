# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The portal role's nftables table lets only the web tier and the host itself reach the portal's port.

The real template, rendered with the role's defaults and vars, loaded into a
network namespace of an unprivileged user namespace (unshare -rn): a veth pair
to a second namespace holds a web host's address and a stranger's. Skipped
where nft or user namespaces are missing (the role itself refuses to run
where nft cannot work, unless portal_firewall is off).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_forwarded_host import render

SCRIPT = r"""
set -eu
ip link set lo up
unshare -n sleep 60 & inner=$!
sleep 0.3
ip link add v0 type veth peer name v1
ip link set v1 netns $inner
ip addr add 10.9.0.1/24 dev v0; ip link set v0 up
nsenter -t $inner -n ip link set lo up
nsenter -t $inner -n ip addr add 10.9.0.2/24 dev v1
nsenter -t $inner -n ip addr add 10.9.0.3/24 dev v1
nsenter -t $inner -n ip link set v1 up
python3 -m http.server 8443 --bind 10.9.0.1 >/dev/null 2>&1 & server=$!
python3 -m http.server 8080 --bind 10.9.0.1 >/dev/null 2>&1 & other=$!
sleep 0.7
# a table of the host's own, which the portal's table must leave alone
nft add table inet host_rules
nft -f "$1"
nft -f "$1"
try() {
    code="import socket; s = socket.socket(); s.bind(('$1', 0)); s.settimeout(2); s.connect(('10.9.0.1', $2))"
    if nsenter -t $inner -n python3 -c "$code" 2>/dev/null
    then echo "$1:$2 open"; else echo "$1:$2 closed"; fi
}
try 10.9.0.2 8443; try 10.9.0.3 8443; try 10.9.0.3 8080
if python3 -c "import socket; socket.create_connection(('10.9.0.1', 8443), timeout=2)"
then echo "local:8443 open"; else echo "local:8443 closed"; fi
nft list tables
kill $server $other $inner
"""


def namespaces_work() -> bool:
    if not (shutil.which("nft") and shutil.which("unshare") and shutil.which("nsenter") and shutil.which("ip")):
        return False
    probe = subprocess.run(["unshare", "-rn", "nft", "list", "tables"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not namespaces_work(), reason="needs nft, ip and unprivileged user namespaces")
def test_only_the_web_tier_and_the_host_reach_the_portal_port(tmp_path: Path) -> None:
    rules = render(
        "portal",
        "firewall.nft.j2",
        portal_proxy_hosts=["web1"],
        hostvars={"web1": {"ansible_facts": {"default_ipv4": {"address": "10.9.0.2"}}}},
    )
    (tmp_path / "firewall.nft").write_text(rules)
    result = subprocess.run(
        ["unshare", "-rn", "sh", "-c", SCRIPT, "sh", str(tmp_path / "firewall.nft")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = result.stdout.split("\n")
    assert result.returncode == 0, result.stderr
    assert "10.9.0.2:8443 open" in lines  # the web host
    assert "10.9.0.3:8443 closed" in lines  # anyone else
    assert "10.9.0.3:8080 open" in lines  # other ports: untouched
    assert "local:8443 open" in lines  # the host itself
    # loaded twice: one table; the host's own table is still there
    assert [line for line in lines if line.startswith("table")] == [
        "table inet host_rules",
        "table inet securestack_portal",
    ]


def test_no_address_family_without_addresses_gets_an_empty_set() -> None:
    rules = render("portal", "firewall.nft.j2", portal_firewall_allowed_addresses=["fd00::5", "10.0.0.0/24"])
    assert "ip saddr { 10.0.0.0/24 } accept" in rules
    assert "ip6 saddr { fd00::5 } accept" in rules
    v4_only = render("portal", "firewall.nft.j2", portal_firewall_allowed_addresses=["192.0.2.7"])
    assert "ip6 saddr" not in v4_only
