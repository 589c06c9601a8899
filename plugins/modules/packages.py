#!/usr/bin/python
# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: packages
short_description: Install Debian packages, refreshing apt's package lists only when they cannot serve them
version_added: 0.2.0
description:
  - Installs the named Debian packages that are not installed yet, with C(apt-get), keeping configuration files
    that were changed and asking nothing.
  - When every named package is installed, nothing else happens (one C(dpkg-query) call); the package lists are not
    read or refreshed.
  - When some are missing, the package lists are refreshed (C(apt-get update)) first if they hold no package index
    at all, if their newest index is older than O(cache_valid_time), or if they offer no version of a missing package.
    This copes with hosts whose lists are empty although their directory is new (container and minimal cloud images),
    which C(ansible.builtin.apt)'s O(ansible.builtin.apt#module:cache_valid_time) takes for fresh lists.
  - The roles of this collection install their packages with this module.
author:
  - securestack.pki contributors (@securestack)
attributes:
  check_mode:
    support: full
    details: Reports the packages that would be installed and whether the lists would be refreshed; changes nothing.
  diff_mode:
    support: full
  platform:
    platforms: debian
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  name:
    description:
      - Names of the Debian packages that must be installed. Real package names, not virtual ones, and no version
        or release pins.
    type: list
    elements: str
    required: true
  cache_valid_time:
    description:
      - Refresh the package lists before installing a missing package when their newest index is older than this,
        in seconds, so that the versions installed are those the archive serves now.
    type: int
    default: 3600
  lock_timeout:
    description:
      - Seconds to wait for the dpkg lock when another package manager holds it.
    type: int
    default: 120
notes:
  - Use it for installation only; upgrades and removals stay with M(ansible.builtin.apt).
seealso:
  - module: ansible.builtin.apt
"""

EXAMPLES = r"""
- name: Install the nginx packages
  securestack.pki.packages:
    name:
      - nginx-light
      - ssl-cert
"""

RETURN = r"""
installed:
  description: The packages installed by this run (in check mode, those that would be).
  returned: success
  type: list
  elements: str
cache_updated:
  description: Whether the package lists were refreshed (in check mode, whether they would be).
  returned: success
  type: bool
cache_update_reason:
  description: Why the lists were (or would be) refreshed; empty when they were not.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.securestack.pki.plugins.module_utils._debian_packages import PackagesError, ensure, lists_age


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", required=True),
            cache_valid_time=dict(type="int", default=3600),
            lock_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def run(argv, environ):
        return module.run_command(list(argv), environ_update=environ)

    for tool in ("dpkg-query", "apt-get", "apt-cache"):
        if module.get_bin_path(tool) is None:
            module.fail_json(msg=f"{tool} not found: this module manages Debian packages with apt")
    try:
        done = ensure(
            params["name"],
            run,
            max_age=params["cache_valid_time"],
            lock_timeout=params["lock_timeout"],
            check_mode=module.check_mode,
            age=lists_age(),
        )
    except PackagesError as exc:
        module.fail_json(msg=str(exc))
    result = dict(
        changed=bool(done.missing),
        installed=done.missing,
        cache_updated=done.refresh,
        cache_update_reason=done.reason,
    )
    if module._diff:
        present = [n for n in done.wanted if n not in done.missing]
        result["diff"] = dict(
            before="".join(f"{n}\n" for n in present),
            after="".join(f"{n}\n" for n in done.wanted),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
