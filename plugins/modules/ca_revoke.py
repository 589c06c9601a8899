#!/usr/bin/python
# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_revoke
short_description: Revoke a certificate issued by a securestack.pki CA and rewrite its CRL
version_added: 0.1.0
description:
  - Marks a certificate as revoked in the CA's ledger, with an RFC 5280 reason, and rewrites the CA's CRL
    (C(crl.pem) and C(crl.der) in the CA directory) at once.
  - Revoking a certificate that is already revoked is not a change.
  - Only certificates in the CA's ledger can be revoked; an unknown serial, or a certificate of another CA,
    fails and changes nothing. Revocation is final (C(certificateHold) is not offered).
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
  serial:
    description:
      - Serial number of the certificate, in hexadecimal (case and colons do not matter).
      - Exactly one of O(serial) and O(certificate) is required.
    type: str
  certificate:
    description:
      - The certificate to revoke (PEM).
    type: str
  reason:
    description:
      - RFC 5280 revocation reason. C(unspecified) is written without a reason code, as RFC 5280 recommends.
    type: str
    choices: [unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation,
              privilegeWithdrawn, aACompromise]
    default: unspecified
seealso:
  - module: securestack.pki.ca_crl
  - module: securestack.pki.ca_info
"""

EXAMPLES = r"""
- name: Revoke a compromised certificate
  securestack.pki.ca_revoke:
    ca: /var/lib/securestack-pki/services
    serial: 5f1a0c7d2e9b44f1a2c3d4e5f60718293a4b5c6d
    reason: keyCompromise
"""

RETURN = r"""
serial:
  description: Serial number of the revoked certificate, lowercase hexadecimal.
  returned: success
  type: str
revoked_at:
  description: When it was revoked (ISO 8601, UTC). Empty in check mode before the first revocation.
  returned: success
  type: str
reason:
  description: The reason recorded in the ledger.
  returned: success
  type: str
crl:
  description: The CA's CRL (PEM) after the call.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import REVOCATION_REASONS, CertificateAuthority
from ansible_collections.securestack.pki.plugins.module_utils._pki_module import (
    ca_argument_spec,
    require_cryptography,
    run_engine,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ca_argument_spec(
            serial=dict(type="str"),
            certificate=dict(type="str"),
            reason=dict(type="str", choices=list(REVOCATION_REASONS), default="unspecified"),
        ),
        mutually_exclusive=[("serial", "certificate")],
        required_one_of=[("serial", "certificate")],
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params

    def revoke() -> tuple:
        ca = CertificateAuthority.open(params["ca"], params["passphrase"])
        changed, entry = ca.revoke(
            serial=params["serial"],
            certificate=params["certificate"],
            reason=params["reason"],
            check_mode=module.check_mode,
        )
        return changed, entry, ca.current_crl_pem()

    changed, entry, crl_pem = run_engine(module, revoke)
    result = dict(
        changed=changed,
        serial=entry.serial,
        revoked_at=entry.revoked_at or "",
        reason=entry.revocation_reason or (params["reason"] if changed else ""),
        crl=crl_pem,
    )
    if module._diff:
        result["diff"] = dict(
            before=dict(serial=entry.serial, status="revoked" if (entry.revoked_at and not changed) else "valid"),
            after=dict(serial=entry.serial, status="revoked"),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
