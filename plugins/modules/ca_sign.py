#!/usr/bin/python
# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_sign
short_description: Sign one certificate signing request, or a batch of them, with a securestack.pki CA
version_added: 0.1.0
description:
  - Signs CSRs with a CA created by M(securestack.pki.ca_authority), under a profile that sets basic
    constraints, key usage and extended key usage itself. Nothing but the subject and the subject alternative
    names is taken from the CSR, and those only after validation against the CA's permitted names.
  - Give O(requests) to sign many CSRs in one call and one database transaction. This is how a play signs the
    CSRs of all its hosts at once (C(run_once) and C(delegate_to) the CA host).
  - Idempotent through the CA's ledger. The same public key, subject, names and profile get the same
    certificate back (C(changed=false)) until it enters its renewal window (O(renew_before_days) before expiry).
  - Every request is validated before anything is signed. One refused request fails the whole call with a
    message that names the request and the problem, and nothing is written.
  - Refused are text that is no CSR, a CSR whose signature does not verify, a CSR asking for C(CA:TRUE) under
    the C(server) or C(client) profile, RSA keys under 2048 bits, DSA keys, curves other than P-256 and P-384,
    Ed25519 under the C(server) profile, wildcard names, names outside the permitted domains, a C(server)
    request without a DNS name or IP address, a validity beyond the profile's maximum, and input over 16 KiB
    per CSR or 10000 requests per call.
author:
  - securestack.pki contributors (@securestack)
attributes:
  check_mode:
    support: full
    details: In check mode requests are validated and the module reports which would be issued; nothing is signed.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - securestack.pki.ca
options:
  csr:
    description:
      - One CSR (PEM). Mutually exclusive with O(requests).
    type: str
  requests:
    description:
      - A batch of CSRs to sign in one call. Mutually exclusive with O(csr).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - A label for the request (a host name, for example), returned with its result and kept in the ledger.
        type: str
        required: true
      csr:
        description:
          - The CSR (PEM).
        type: str
        required: true
      profile:
        description:
          - Profile of this request. Defaults to O(profile).
        type: str
        choices: [server, client, intermediate]
      valid_days:
        description:
          - Validity of this request. Defaults to O(valid_days).
        type: int
  profile:
    description:
      - C(server) gives serverAuth certificates (at most 366 days, 90 by default), C(client) clientAuth ones
        (at most 825 days, 365 by default), C(intermediate) subordinate CAs (at most 3650 days, 1825 by default).
    type: str
    choices: [server, client, intermediate]
    default: server
  valid_days:
    description:
      - Validity in days. Defaults to the profile's default; never beyond the profile's maximum or the CA's own expiry.
    type: int
  renew_before_days:
    description:
      - A certificate enters its renewal window this many days before it expires; from then on the same request
        gets a new certificate. Must be shorter than the validity.
    type: int
    default: 30
  allowed_domains:
    description:
      - Narrow the names this call may sign to these domains (each must lie within the CA's permitted domains).
    type: list
    elements: str
    default: []
  path_length:
    description:
      - For the C(intermediate) profile, how many CA levels may stand below the new CA. Defaults to 0.
    type: int
  extended_key_usage:
    description:
      - For the C(intermediate) profile, restrict the new CA to these usages (for example C([clientAuth])).
    type: list
    elements: str
    choices: [serverAuth, clientAuth, codeSigning, emailProtection, OCSPSigning]
    default: []
seealso:
  - module: securestack.pki.ca_authority
  - module: securestack.pki.ca_revoke
"""

EXAMPLES = r"""
- name: Sign the CSRs of every host of the play in one batch
  securestack.pki.ca_sign:
    ca: /var/lib/securestack-pki/services
    requests: "{{ ansible_play_hosts | map('extract', hostvars, 'certificate_request') | list }}"
  run_once: true
  delegate_to: "{{ groups['ca'][0] }}"
  register: certificate_signed

- name: Sign one client CSR
  securestack.pki.ca_sign:
    ca: /var/lib/securestack-pki/services
    csr: "{{ lookup('ansible.builtin.file', 'portal.csr') }}"
    profile: client
    valid_days: 365
"""

RETURN = r"""
certificate:
  description: The certificate (PEM), for a single O(csr). Empty in check mode when a new one would be issued.
  returned: success and O(csr) was given
  type: str
chain:
  description: The CA's chain (PEM list, the signing CA first, up to the root).
  returned: success
  type: list
  elements: str
serial:
  description: Serial number, lowercase hexadecimal without separators, for a single O(csr).
  returned: success and O(csr) was given
  type: str
not_after:
  description: Expiry (ISO 8601, UTC), for a single O(csr).
  returned: success and O(csr) was given
  type: str
results:
  description: One entry per request, in request order.
  returned: success and O(requests) was given
  type: list
  elements: dict
  contains:
    name:
      description: The request's name.
      type: str
    changed:
      description: Whether a new certificate was issued for this request.
      type: bool
    certificate:
      description: The certificate (PEM).
      type: str
    chain:
      description: The CA's chain (PEM list).
      type: list
      elements: str
    serial:
      description: Serial number, lowercase hexadecimal.
      type: str
    not_after:
      description: Expiry (ISO 8601, UTC).
      type: str
    profile:
      description: Profile the certificate was issued under.
      type: str
issued:
  description: How many certificates this call issued (or would issue, in check mode).
  returned: success
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import CertificateAuthority, SignSpec
from ansible_collections.securestack.pki.plugins.module_utils._pki_module import (
    ca_argument_spec,
    require_cryptography,
    run_engine,
)
from ansible_collections.securestack.pki.plugins.module_utils._pki_policy import EXTENDED_KEY_USAGES, PROFILES


def main() -> None:
    module = AnsibleModule(
        argument_spec=ca_argument_spec(
            csr=dict(type="str"),
            requests=dict(
                type="list",
                elements="dict",
                options=dict(
                    name=dict(type="str", required=True),
                    csr=dict(type="str", required=True),
                    profile=dict(type="str", choices=list(PROFILES)),
                    valid_days=dict(type="int"),
                ),
            ),
            profile=dict(type="str", choices=list(PROFILES), default="server"),
            valid_days=dict(type="int"),
            renew_before_days=dict(type="int", default=30),
            allowed_domains=dict(type="list", elements="str", default=[]),
            path_length=dict(type="int"),
            extended_key_usage=dict(type="list", elements="str", choices=list(EXTENDED_KEY_USAGES), default=[]),
        ),
        mutually_exclusive=[("csr", "requests")],
        required_one_of=[("csr", "requests")],
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    single = params["csr"] is not None
    raw_requests = [dict(name="", csr=params["csr"])] if single else params["requests"]
    specs = [
        SignSpec(
            csr=request["csr"],
            name=request["name"],
            profile=request.get("profile") or params["profile"],
            valid_days=request.get("valid_days") or params["valid_days"],
            path_length=params["path_length"],
            extended_key_usage=params["extended_key_usage"],
        )
        for request in raw_requests
    ]

    def sign() -> tuple[list, list]:
        ca = CertificateAuthority.open(params["ca"], params["passphrase"])
        outcome = ca.sign(
            specs,
            renew_before_days=params["renew_before_days"],
            check_mode=module.check_mode,
            allowed_domains=params["allowed_domains"] or None,
        )
        return outcome, ca.chain_pem

    outcome, chain = run_engine(module, sign)
    issued = sum(1 for r in outcome if r.changed)
    result = dict(changed=issued > 0, issued=issued, chain=chain)
    if single:
        only = outcome[0]
        result.update(certificate=only.certificate or "", serial=only.serial or "", not_after=only.not_after or "")
    else:
        result["results"] = [
            dict(
                name=r.name,
                changed=r.changed,
                certificate=r.certificate or "",
                chain=chain,
                serial=r.serial or "",
                not_after=r.not_after or "",
                profile=r.profile,
            )
            for r in outcome
        ]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
