#!/usr/bin/python
# Copyright (c) securestack.pki contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: ca_authority
short_description: Create or keep a root or subordinate certificate authority
version_added: 0.1.0
description:
  - Creates a certificate authority in a directory (mode 0700) on the managed host, or checks that the one
    already there is the one described.
  - The private key is generated on that host and never leaves it. It is stored with mode 0600, encrypted
    at rest when O(passphrase) is set.
  - Without O(parent) the CA is a self-signed root. With O(parent) it is a subordinate CA signed by the CA
    in that directory on the same host, which records the certificate in its ledger.
  - With O(external=true) the CA is a subordinate CA signed by a CA on another host, the way the portal's
    users CA comes to be. A first call makes the key and returns a CSR (RV(csr)); sign it there with
    M(securestack.pki.ca_sign) and the C(intermediate) profile; a second call with O(certificate) and O(chain)
    checks that the certificate makes this key a CA under a verifiable chain and installs it.
  - An existing CA is never replaced. When the directory holds a CA with another common name, key type,
    parent, path length or name constraints, the module fails and changes nothing.
  - Creating a CA also writes its first CRL (valid for 7 days); use M(securestack.pki.ca_crl) to keep it fresh.
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
requirements:
  - cryptography >= 3.4 on the managed host (Debian 12 and 13 ship a suitable python3-cryptography)
options:
  path:
    description:
      - Directory of the CA. Created with mode 0700 when missing.
    type: path
    required: true
  common_name:
    description:
      - Common name (CN) of the CA's subject.
    type: str
    required: true
  organization_name:
    description:
      - Organization (O) of the CA's subject.
    type: str
  parent:
    description:
      - Directory of the CA, on the same host, that signs this one. Absent for a self-signed root.
      - The subordinate CA inherits the parent's O(permitted_domains) and O(permitted_ip_ranges) when none are given.
    type: path
  external:
    description:
      - This CA is signed by a CA on another host (see the description). Mutually exclusive with O(parent).
      - Its name constraints and usages come from the certificate it is given, so O(permitted_domains),
        O(permitted_ip_ranges) and O(extended_key_usage) must stay empty.
    type: bool
    default: false
  certificate:
    description:
      - With O(external=true), this CA's certificate (PEM) as the signing CA issued it for the key made here.
      - A certificate for the same key replaces the installed one (renewal); one for another key is refused.
    type: str
  chain:
    description:
      - With O(certificate), the issuers of the certificate up to the root (PEM list, the signing CA first).
    type: list
    elements: str
  parent_passphrase:
    description:
      - Passphrase of the parent CA's key when it is encrypted at rest. Never logged.
    type: str
  passphrase:
    description:
      - Keep this CA's private key encrypted with this passphrase. Never logged.
      - Setting it on an existing CA whose key is stored in clear encrypts the key (and the reverse decrypts it).
    type: str
  key_type:
    description:
      - Type of the CA's key. Browsers do not accept C(ed25519) certificate chains.
    type: str
    choices: [ecdsa, rsa, ed25519]
    default: ecdsa
  key_curve:
    description:
      - Curve of an C(ecdsa) key. C(secp384r1) signs with SHA-384, C(secp256r1) with SHA-256.
    type: str
    choices: [secp256r1, secp384r1]
    default: secp256r1
  key_size:
    description:
      - Size in bits of an C(rsa) key.
    type: int
    choices: [2048, 3072, 4096]
    default: 3072
  valid_days:
    description:
      - Validity of the CA certificate in days, used when the CA is created.
      - Defaults to 3650 for a root (at most 7300) and 1825 for a subordinate CA (at most 3650, and never beyond
        the parent's own expiry).
    type: int
  path_length:
    description:
      - How many CA levels may stand below this one. Defaults to 1 for a root and 0 for a subordinate CA.
    type: int
  permitted_domains:
    description:
      - DNS domains this CA may issue names in. Written as critical name constraints into the CA certificate,
        and enforced when signing (a name is allowed when it equals a domain or ends with C(.domain)).
      - Empty means no DNS restriction.
    type: list
    elements: str
    default: []
  permitted_ip_ranges:
    description:
      - IP networks (CIDR) this CA may issue addresses in, as name constraints and at signing. Empty means no
        IP restriction.
    type: list
    elements: str
    default: []
  crl_url:
    description:
      - URL of this CA's CRL, written as CRL distribution point into every certificate it signs.
      - Must be an C(http://) URL in practice (clients fetch CRLs without TLS), naming the CRL in DER
        (RFC 5280 section 4.2.1.13).
      - Changing it on an existing CA records the new URL for the certificates signed from then on; the CA
        certificate and the certificates already issued stay as they are until they are renewed.
    type: str
  ca_issuers_url:
    description:
      - URL of this CA's own certificate in DER, written as Authority Information Access caIssuers into every
        certificate it signs, so that relying parties can fetch the issuer and build the chain
        (RFC 5280 section 4.2.2.1).
      - Must be an C(http://) URL in practice, like O(crl_url); changing it affects future signings only.
    type: str
  extended_key_usage:
    description:
      - For a subordinate CA, restrict what it may issue for, for example C([clientAuth]) for a CA that issues
        client certificates only.
    type: list
    elements: str
    choices: [serverAuth, clientAuth, codeSigning, emailProtection, OCSPSigning]
    default: []
seealso:
  - module: securestack.pki.ca_sign
  - module: securestack.pki.ca_crl
  - module: securestack.pki.ca_info
"""

EXAMPLES = r"""
- name: Create the root CA
  securestack.pki.ca_authority:
    path: /var/lib/securestack-pki/root
    common_name: Example Root CA
    permitted_domains: [example.com]
    passphrase: "{{ vault_root_ca_passphrase }}"

- name: Create the services CA, signed by the root
  securestack.pki.ca_authority:
    path: /var/lib/securestack-pki/services
    common_name: Example Services CA
    parent: /var/lib/securestack-pki/root
    parent_passphrase: "{{ vault_root_ca_passphrase }}"
    crl_url: http://ca.example.com/crl/services.crl
    ca_issuers_url: http://ca.example.com/crl/services.cer

- name: Make the users CA's key and CSR on the portal host
  securestack.pki.ca_authority:
    path: /var/lib/securestack-portal/users-ca
    common_name: Example Users CA
    external: true
  register: users_ca

- name: Sign it with the root, on the CA host
  securestack.pki.ca_sign:
    ca: /var/lib/securestack-pki/root
    csr: "{{ users_ca.csr }}"
    profile: intermediate
    extended_key_usage: [clientAuth]
  delegate_to: "{{ groups['ca'][0] }}"
  register: users_ca_signed

- name: Install the users CA's certificate on the portal host
  securestack.pki.ca_authority:
    path: /var/lib/securestack-portal/users-ca
    common_name: Example Users CA
    external: true
    certificate: "{{ users_ca_signed.certificate }}"
    chain: "{{ users_ca_signed.chain }}"
"""

RETURN = r"""
certificate:
  description: The CA certificate (PEM). Empty in check mode when the CA does not exist yet.
  returned: success
  type: str
chain:
  description: This CA's certificate and its issuers up to the root, each as PEM.
  returned: success
  type: list
  elements: str
serial:
  description: Serial number of the CA certificate, lowercase hexadecimal without separators.
  returned: success
  type: str
not_after:
  description: Expiry of the CA certificate (ISO 8601, UTC).
  returned: success
  type: str
  sample: "2036-11-24T19:00:00Z"
path:
  description: Absolute path of the CA directory.
  returned: success
  type: str
csr:
  description: With O(external=true), a CSR (PEM) for this CA's key, to be signed by the issuing CA.
  returned: success and O(external=true), except in check mode before the key exists
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.securestack.pki.plugins.module_utils._pki_ca import (
    AuthoritySettings,
    CertificateAuthority,
    iso,
    serial_hex,
)
from ansible_collections.securestack.pki.plugins.module_utils._pki_module import require_cryptography, run_engine
from ansible_collections.securestack.pki.plugins.module_utils._pki_policy import EXTENDED_KEY_USAGES


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            common_name=dict(type="str", required=True),
            organization_name=dict(type="str"),
            parent=dict(type="path"),
            parent_passphrase=dict(type="str", no_log=True),
            passphrase=dict(type="str", no_log=True),
            key_type=dict(type="str", choices=["ecdsa", "rsa", "ed25519"], default="ecdsa"),
            key_curve=dict(type="str", choices=["secp256r1", "secp384r1"], default="secp256r1"),
            key_size=dict(type="int", choices=[2048, 3072, 4096], default=3072),
            valid_days=dict(type="int"),
            path_length=dict(type="int"),
            permitted_domains=dict(type="list", elements="str", default=[]),
            permitted_ip_ranges=dict(type="list", elements="str", default=[]),
            crl_url=dict(type="str"),
            ca_issuers_url=dict(type="str"),
            external=dict(type="bool", default=False),
            certificate=dict(type="str"),
            chain=dict(type="list", elements="str"),
            extended_key_usage=dict(
                type="list",
                elements="str",
                default=[],
                choices=list(EXTENDED_KEY_USAGES),
            ),
        ),
        mutually_exclusive=[("external", "parent")],
        required_by={"certificate": "chain"},
        supports_check_mode=True,
    )
    require_cryptography(module)
    external_only = [name for name in ("certificate", "chain") if module.params[name] is not None]
    if external_only and not module.params["external"]:
        module.fail_json(msg=f"{' and '.join(external_only)} apply to an external CA: set external=true")
    params = module.params
    settings = AuthoritySettings(
        common_name=params["common_name"],
        organization_name=params["organization_name"],
        key_type=params["key_type"],
        key_curve=params["key_curve"],
        key_size=params["key_size"],
        valid_days=params["valid_days"],
        path_length=params["path_length"],
        permitted_domains=params["permitted_domains"],
        permitted_ip_ranges=params["permitted_ip_ranges"],
        crl_url=params["crl_url"],
        ca_issuers_url=params["ca_issuers_url"],
        extended_key_usage=params["extended_key_usage"],
    )
    csr = None
    if params["external"]:
        changed, csr, before, after = run_engine(
            module,
            lambda: CertificateAuthority.ensure_external(
                params["path"],
                settings,
                passphrase=params["passphrase"],
                certificate=params["certificate"],
                chain=params["chain"],
                check_mode=module.check_mode,
            ),
        )
    else:
        changed, before, after = run_engine(
            module,
            lambda: CertificateAuthority.ensure(
                params["path"],
                settings,
                passphrase=params["passphrase"],
                parent=params["parent"],
                parent_passphrase=params["parent_passphrase"],
                check_mode=module.check_mode,
            ),
        )
    result = dict(changed=changed, path=params["path"], certificate="", chain=[], serial="", not_after="")
    if csr is not None:
        result["csr"] = csr
    if CertificateAuthority.exists(params["path"]):
        ca = CertificateAuthority(params["path"], params["passphrase"])
        result.update(
            certificate=ca.certificate_pem,
            chain=ca.chain_pem,
            serial=serial_hex(ca.certificate.serial_number),
            not_after=iso(ca.not_after),
        )
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
