#!/usr/bin/python
# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_info
short_description: Show what a securestack.pki CA issued, with status and expiry
version_added: 0.1.0
description:
  - Reads the CA's ledger and returns every certificate it issued with its status (C(valid), C(revoked) or
    C(expired)) and expiry, and a summary of the CA itself. Changes nothing.
author:
  - securestack.pki contributors (@securestack)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: N/A
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  ca:
    description:
      - Directory of the CA.
    type: path
    required: true
  status:
    description:
      - Only list certificates with these statuses. Empty lists all.
    type: list
    elements: str
    choices: [valid, revoked, expired]
    default: []
  expiring_within_days:
    description:
      - Only list valid certificates that expire within this many days.
    type: int
requirements:
  - cryptography >= 3.4 on the managed host
seealso:
  - module: securestack.pki.ca_sign
"""

EXAMPLES = r"""
- name: What expires within 30 days?
  securestack.pki.ca_info:
    ca: /var/lib/securestack-pki/services
    expiring_within_days: 30
  register: ca_info_expiring
"""

RETURN = r"""
ca:
  description: The CA itself.
  returned: success
  type: dict
  contains:
    subject:
      description: Subject (RFC 4514).
      type: str
    issuer:
      description: Issuer (RFC 4514).
      type: str
    serial:
      description: Serial number, lowercase hexadecimal.
      type: str
    not_before:
      description: Start of validity (ISO 8601, UTC).
      type: str
    not_after:
      description: Expiry (ISO 8601, UTC).
      type: str
    path_length:
      description: The CA's path length constraint.
      type: int
    permitted_domains:
      description: DNS name constraints.
      type: list
      elements: str
    permitted_ip_ranges:
      description: IP name constraints.
      type: list
      elements: str
    crl_url:
      description: CRL distribution point written into what the CA signs.
      type: str
    ca_issuers_url:
      description: Authority Information Access caIssuers URL (this CA's certificate) written into what the CA signs.
      type: str
    certificate:
      description: The CA certificate (PEM).
      type: str
    key_type:
      description: Key type of the CA.
      type: str
certificates:
  description: One entry per certificate issued, oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    serial:
      description: Serial number, lowercase hexadecimal.
      type: str
    name:
      description: The request's name given at signing.
      type: str
    subject:
      description: Subject (RFC 4514).
      type: str
    names:
      description: Subject alternative names.
      type: list
      elements: str
    profile:
      description: Profile (server, client, intermediate).
      type: str
    not_before:
      description: Start of validity (ISO 8601, UTC).
      type: str
    not_after:
      description: Expiry (ISO 8601, UTC).
      type: str
    status:
      description: C(valid), C(revoked) or C(expired).
      type: str
    revoked_at:
      description: Revocation time, or null.
      type: str
    revocation_reason:
      description: Revocation reason, or null.
      type: str
signing_calls:
  description: How many signing calls (batches) issued at least one certificate. A batch rollout shows one per run.
  returned: success
  type: int
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import (
    CertificateAuthority,
    parse_iso,
    utcnow,
)
from ansible_collections.securestack.pki.plugins.module_utils._pki_module import require_cryptography, run_engine


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            ca=dict(type="path", required=True),
            status=dict(type="list", elements="str", choices=["valid", "revoked", "expired"], default=[]),
            expiring_within_days=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params

    def read() -> tuple:
        ca = CertificateAuthority.open(params["ca"])
        return ca.summary(), ca.inventory(), ca.ledger.batch_count()

    summary, certificates, batches = run_engine(module, read)
    if params["status"]:
        certificates = [c for c in certificates if c["status"] in params["status"]]
    if params["expiring_within_days"] is not None:
        horizon = utcnow() + datetime.timedelta(days=params["expiring_within_days"])
        certificates = [c for c in certificates if c["status"] == "valid" and parse_iso(c["not_after"]) <= horizon]
    module.exit_json(changed=False, ca=summary, certificates=certificates, signing_calls=batches)


if __name__ == "__main__":
    main()
