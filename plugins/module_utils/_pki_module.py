# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection.
# Breaking changes can occur any time.
#
# Glue between the Ansible modules and the CA engine: the one place where the
# engine's errors become `fail_json` and a missing `cryptography` becomes a
# message that says which package to install.

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ._pki_policy import CRYPTOGRAPHY_IMPORT_ERROR, PkiError

MINIMUM_CRYPTOGRAPHY = "3.4"


def ca_argument_spec(**options: dict) -> dict:
    """The options of the doc fragment securestack.pki.ca (an existing CA and its passphrase), plus `options`."""
    return {"ca": {"type": "path", "required": True}, "passphrase": {"type": "str", "no_log": True}, **options}


def require_cryptography(module: AnsibleModule) -> None:
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib(f"cryptography >= {MINIMUM_CRYPTOGRAPHY} (Debian: python3-cryptography)"),
            exception=CRYPTOGRAPHY_IMPORT_ERROR,
        )


def run_engine(module: AnsibleModule, action: Callable[[], Any]) -> Any:
    """Run an engine call; a refused input or state ends the module with the engine's message."""
    try:
        return action()
    except PkiError as exc:
        module.fail_json(msg=str(exc))
