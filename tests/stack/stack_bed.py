# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bed the stack's tests run on, as scripts/demo-test.sh describes it: one place for test_stack and test_portal.

Set by scripts/demo-test.sh: the demo's inventory (STACK_INVENTORY), the admin's credentials that site
left on this machine (STACK_CREDENTIALS), a scratch directory (STACK_WORK), and the web servers as the
user reaches them (STACK_WEB_URLS: the demo's published ports on localhost).
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

PROJECT = Path(__file__).resolve().parents[2]
INVENTORY = os.environ["STACK_INVENTORY"]
RUNNER = AnsibleRunner(INVENTORY)
CA = RUNNER.get_hosts("ca")[0]
APP = RUNNER.get_hosts("app")[0]
WEB_HOSTS = {"apache": RUNNER.get_hosts("web_apache")[0], "nginx": RUNNER.get_hosts("web_nginx")[0]}
PG = RUNNER.get_hosts("db_postgresql")[0]
MARIADB = RUNNER.get_hosts("db_mysql")[0]
WEB_URLS = json.loads(os.environ["STACK_WEB_URLS"])
assert set(WEB_URLS) == set(WEB_HOSTS), WEB_URLS
CREDENTIALS = Path(os.environ["STACK_CREDENTIALS"])
WORK = Path(os.environ["STACK_WORK"])


@cache
def host(name: str):
    """The bed's containers, reached with docker exec."""
    return testinfra.get_host(f"docker://{name}")


@cache
def address(name: str) -> str:
    return host(name).interface("eth0").addresses[0]
