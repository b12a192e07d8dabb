#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_pki
short_description: Keep the CAs, service-account key, encryption key and admin kubeconfig in one call
version_added: "0.2.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Runs on the controller, where the cluster's identity stays. In O(pki_dir) it keeps, or makes when
    missing or unfit, C(ca.key)/C(ca.crt) (Kubernetes CA) and C(etcd-ca.key)/C(etcd-ca.crt) (etcd CA),
    C(service-account.key)/C(service-account.pub), C(encryption.key), and C(admin.key)/C(admin.crt)
    (user C(admin), group C(system:masters), signed by the Kubernetes CA); and it writes the admin
    kubeconfig at O(admin_kubeconfig_path).
  - Each file gets the checks of its own module (M(scratch.kubernetes.private_key),
    M(scratch.kubernetes.ca_certificate), M(scratch.kubernetes.encryption_key),
    M(scratch.kubernetes.certificate), M(scratch.kubernetes.kubeconfig)); one call replaces them all.
  - Keys are ECDSA P-256. Private files are mode 0600, certificates and the public key 0644,
    O(state_dir) and O(pki_dir) 0700; a wrong mode is corrected and reported.
  - An existing C(encryption.key) that is not a valid key fails the module and is left alone.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be written and why; a file that depends on one yet to be made is reported too.
  diff_mode:
    support: none
requirements:
  - cryptography >= 38.0
  - PyYAML
options:
  state_dir:
    description: The cluster's state directory on the controller; made (0700) if missing.
    type: path
    required: true
  pki_dir:
    description: Where the keys and certificates are kept; made (0700) if missing.
    type: path
    required: true
  cluster_name:
    description: Names the CAs (C(<cluster_name> CA), C(<cluster_name> etcd CA)) and the kubeconfig's cluster.
    type: str
    required: true
  admin_kubeconfig_path:
    description: Where the admin kubeconfig is written (0600), with the admin key and certificate embedded.
    type: path
    required: true
  apiserver_url:
    description: The API server URL the admin kubeconfig names, C(https://...).
    type: str
    required: true
  validity_days:
    description: Lifetime of a newly issued admin certificate, in days.
    type: int
    default: 365
  ca_validity_days:
    description: Lifetime of a newly made CA certificate, in days.
    type: int
    default: 3650
  renew_before_days:
    description: Reissue a certificate that expires within this many days; must be below both validities.
    type: int
    default: 30
  reissue_issued_before:
    description: As O(scratch.kubernetes.certificate#module:reissue_issued_before), for the admin certificate.
    type: str
"""

EXAMPLES = r"""
- name: The cluster's CAs, shared secrets and admin identity
  scratch.kubernetes.cluster_pki:
    state_dir: "{{ cluster_state_dir }}"
    pki_dir: "{{ pki_dir }}"
    cluster_name: "{{ cluster_name }}"
    admin_kubeconfig_path: "{{ admin_kubeconfig_path }}"
    apiserver_url: https://10.0.0.1:6443
"""

RETURN = r"""
reasons:
  description: What was written (or would be, in check mode) and why, each prefixed with the file's path.
  returned: success
  type: list
  elements: str
  sample: ["/root/.scratch-kubernetes/demo/pki/admin.crt: it expires within 30 days"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import PKIError
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_cluster import (
    ClusterPKI,
    ensure_cluster_pki,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state_dir": {"type": "path", "required": True},
            "pki_dir": {"type": "path", "required": True},
            "cluster_name": {"type": "str", "required": True},
            "admin_kubeconfig_path": {"type": "path", "required": True},
            "apiserver_url": {"type": "str", "required": True},
            "validity_days": {"type": "int", "default": 365},
            "ca_validity_days": {"type": "int", "default": 3650},
            "renew_before_days": {"type": "int", "default": 30},
            "reissue_issued_before": {"type": "str"},
        },
        supports_check_mode=True,
    )
    require(module, "cryptography", "yaml")
    try:
        outcome = ensure_cluster_pki(ClusterPKI(**module.params), check_mode=module.check_mode)
    except (PKIError, OSError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=outcome.changed, reasons=outcome.reasons)


if __name__ == "__main__":
    main()
