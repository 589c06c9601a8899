# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options shared by the modules that act on an existing CA.
    DOCUMENTATION = r"""
options:
  ca:
    description:
      - Directory of the CA, as created by M(securestack.pki.ca_authority).
    type: path
    required: true
  passphrase:
    description:
      - Passphrase of the CA's private key, when it is kept encrypted at rest.
      - Keep it in Ansible Vault. It is never logged.
    type: str
requirements:
  - cryptography >= 3.4 on the host that holds the CA (Debian 12 and 13 ship a suitable python3-cryptography)
notes:
  - The CA's ledger (C(ledger.sqlite3) in the CA directory) is the source of truth for what was issued.
    Writers serialise on it, so parallel tasks against one CA are safe.
"""
