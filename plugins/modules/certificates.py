#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: certificates
short_description: Sign many certificate signing requests with the cluster CAs in one call
version_added: "0.2.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Runs on the controller, where the CA keys stay. Each entry of O(certificates) is handled exactly as
    M(scratch.kubernetes.certificate) handles its one certificate, with the same checks deciding whether an
    existing certificate is kept (key, subject, SANs, usages, CA, issuer, expiry, O(reissue_issued_before));
    each CA is loaded once, and missing parent directories are created with mode 0755.
  - One call signs the requests of every node of a play, as returned by
    M(scratch.kubernetes.certificate_requests).
extends_documentation_fragment:
  - scratch.kubernetes._attributes
attributes:
  check_mode:
    support: full
    details: Reports which certificates would be issued, and why; writes nothing.
  diff_mode:
    support: none
requirements:
  - cryptography >= 38.0
options:
  certificates:
    description: The certificates to keep or issue.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Where the certificate is written (mode 0644).
        type: path
        required: true
      csr:
        description: The PEM CSR; null only in check mode, for a key yet to be made.
        type: str
      ca_certificate_path:
        description: The signing CA's certificate.
        type: path
        required: true
      ca_privatekey_path:
        description: The signing CA's private key.
        type: path
        required: true
  validity_days:
    description: Lifetime of a newly issued certificate, in days.
    type: int
    default: 365
  renew_before_days:
    description: Reissue when a certificate expires within this many days; must be below O(validity_days).
    type: int
    default: 30
  reissue_issued_before:
    description: As O(scratch.kubernetes.certificate#module:reissue_issued_before).
    type: str
"""

EXAMPLES = r"""
- name: Sign every node's requests, on the controller
  scratch.kubernetes.certificates:
    certificates:
      - path: "{{ pki_dir }}/issued/node-1/kubelet-client.crt"
        csr: "{{ hostvars['node-1'].__kubelet_requests.csrs[0].csr }}"
        ca_certificate_path: "{{ pki_dir }}/ca.crt"
        ca_privatekey_path: "{{ pki_dir }}/ca.key"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
issued:
  description: Paths of the certificates issued (or that would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: [/root/.scratch-kubernetes/testbed/pki/issued/node-1/kubelet-client.crt]
reasons:
  description: Why each issued certificate was issued, prefixed with its path.
  returned: success
  type: list
  elements: str
  sample: ["/root/.scratch-kubernetes/testbed/pki/issued/node-1/kubelet.crt: it expires within 30 days"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import PKIError
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_batch import ensure_certificates


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "certificates": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "csr": {"type": "str"},
                    "ca_certificate_path": {"type": "path", "required": True},
                    "ca_privatekey_path": {"type": "path", "required": True, "no_log": False},
                },
            },
            "validity_days": {"type": "int", "default": 365},
            "renew_before_days": {"type": "int", "default": 30},
            "reissue_issued_before": {"type": "str"},
        },
        supports_check_mode=True,
    )
    require(module, "cryptography")
    params = module.params
    try:
        outcome = ensure_certificates(
            params["certificates"],
            validity_days=params["validity_days"],
            renew_before_days=params["renew_before_days"],
            reissue_issued_before=params["reissue_issued_before"],
            check_mode=module.check_mode,
        )
    except (PKIError, OSError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=outcome.changed, reasons=outcome.reasons, **outcome.facts)


if __name__ == "__main__":
    main()
