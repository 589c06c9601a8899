#!/usr/bin/python
# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_crl
short_description: Keep the CRL of a securestack.pki CA current
version_added: 0.1.0
description:
  - Writes the CA's certificate revocation list, as C(crl.pem) and C(crl.der) in the CA directory, when it is
    missing, when the revocations in the ledger changed since it was written, when it was not signed by this CA,
    or when its nextUpdate is less than O(renew_before_days) away. Otherwise nothing changes.
  - The CRL follows RFC 5280, version 2, with a CRL number that increases with every CRL, the authority key
    identifier, thisUpdate and nextUpdate, and a reason code for every entry revoked with a reason.
author:
  - securestack.pki contributors (@securestack)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - securestack.pki.ca
options:
  valid_days:
    description:
      - Days until the CRL's nextUpdate. Clients refuse certificates of a CA whose CRL is past nextUpdate,
        so keep it well beyond the refresh interval.
    type: int
    default: 7
  renew_before_days:
    description:
      - Rewrite the CRL when nextUpdate is closer than this. Must be shorter than O(valid_days).
    type: int
    default: 3
  force:
    description:
      - Rewrite the CRL even when it is current.
    type: bool
    default: false
seealso:
  - module: securestack.pki.ca_revoke
"""

EXAMPLES = r"""
- name: Keep the services CA's CRL fresh
  securestack.pki.ca_crl:
    ca: /var/lib/securestack-pki/services
    valid_days: 7
    renew_before_days: 3

- name: An offline root publishes a long-lived CRL
  securestack.pki.ca_crl:
    ca: /var/lib/securestack-pki/root
    passphrase: "{{ vault_root_ca_passphrase }}"
    valid_days: 90
    renew_before_days: 30
"""

RETURN = r"""
crl:
  description: The CRL (PEM). Empty in check mode when a new one would be written.
  returned: success
  type: str
crl_number:
  description: The CRL number (the next one, in check mode when a new CRL would be written).
  returned: success
  type: int
next_update:
  description: nextUpdate of the CRL (ISO 8601, UTC).
  returned: success
  type: str
path:
  description: Path of the PEM CRL.
  returned: success
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import CRL_FILE, CertificateAuthority
from ansible_collections.securestack.pki.plugins.module_utils._pki_module import (
    ca_argument_spec,
    require_cryptography,
    run_engine,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ca_argument_spec(
            valid_days=dict(type="int", default=7),
            renew_before_days=dict(type="int", default=3),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params

    def refresh() -> tuple:
        ca = CertificateAuthority.open(params["ca"], params["passphrase"])
        before = ca.current_crl_pem()
        outcome = ca.refresh_crl(
            valid_days=params["valid_days"],
            renew_before_days=params["renew_before_days"],
            force=params["force"],
            check_mode=module.check_mode,
        )
        return before, outcome

    before, outcome = run_engine(module, refresh)
    result = dict(
        changed=outcome.changed,
        crl=outcome.crl or "",
        crl_number=outcome.crl_number,
        next_update=outcome.next_update or "",
        path=os.path.join(os.path.abspath(params["ca"]), CRL_FILE),
    )
    if module._diff:
        result["diff"] = dict(before=before, after=outcome.crl or "")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
