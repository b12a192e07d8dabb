#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: certificate_requests
short_description: Make a node's private keys and certificate signing requests in one call
version_added: "0.2.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - For each entry of O(requests), keeps or makes the private key O(directory)/NAME.key on the node (ECDSA
    P-256, written atomically with mode 0600 from the start, as M(scratch.kubernetes.private_key) does) and
    returns a CSR for it, as M(scratch.kubernetes.csr) makes. Keys never leave the node.
  - One call for all of a node's certificates; M(scratch.kubernetes.node_certificates) calls it and signs the
    requests on the controller in the same task.
  - A key of another type, or a file that holds no usable key, is replaced; a key with another mode gets 0600.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
attributes:
  check_mode:
    support: full
    details: Reports which keys would be made; returns no CSR for them.
  diff_mode:
    support: none
requirements:
  - cryptography >= 38.0
options:
  directory:
    description: Where the keys are kept; created with mode 0755 if missing.
    type: path
    required: true
  requests:
    description: The certificates this node needs.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: File name of the key (NAME.key) and of the certificate the caller installs (NAME.crt).
        type: str
        required: true
      ca:
        description: Name of the CA that is to sign it; returned with the CSR for the signing step.
        type: str
        default: ca
      common_name:
        description: Subject common name.
        type: str
        required: true
      organization:
        description: Subject organizations.
        type: list
        elements: str
        default: []
      dns_names:
        description: DNS subject alternative names.
        type: list
        elements: str
        default: []
      ip_addresses:
        description: IP subject alternative names.
        type: list
        elements: str
        default: []
      extended_key_usage:
        description: Extended key usages.
        type: list
        elements: str
        choices: [server_auth, client_auth]
        default: [client_auth]
"""

EXAMPLES = r"""
- name: Keys and certificate requests of the kubelet
  scratch.kubernetes.certificate_requests:
    directory: /var/lib/kubelet/pki
    requests:
      - name: kubelet-client
        common_name: system:node:{{ inventory_hostname }}
        organization: [system:nodes]
      - name: kubelet-server
        common_name: system:node:{{ inventory_hostname }}
        dns_names: ["{{ inventory_hostname }}"]
        ip_addresses: ["{{ node_ip }}"]
        extended_key_usage: [server_auth]
  register: __kubelet_requests
"""

RETURN = r"""
csrs:
  description:
    - One entry per request, in order.
    - C(csr) is null in check mode for a key yet to be made or replaced.
  returned: success
  type: list
  elements: dict
  sample: [{name: kubelet-client, ca: ca, csr: "-----BEGIN CERTIFICATE REQUEST-----\n..."}]
reasons:
  description: Why keys or the directory changed (or would); empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample: ["/var/lib/kubelet/pki/kubelet-client.key does not exist"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import PKIError
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_batch import ensure_requests


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directory": {"type": "path", "required": True},
            "requests": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "ca": {"type": "str", "default": "ca"},
                    "common_name": {"type": "str", "required": True},
                    "organization": {"type": "list", "elements": "str", "default": []},
                    "dns_names": {"type": "list", "elements": "str", "default": []},
                    "ip_addresses": {"type": "list", "elements": "str", "default": []},
                    "extended_key_usage": {
                        "type": "list",
                        "elements": "str",
                        "choices": ["server_auth", "client_auth"],
                        "default": ["client_auth"],
                        "no_log": False,
                    },
                },
            },
        },
        supports_check_mode=True,
    )
    require(module, "cryptography")
    try:
        outcome = ensure_requests(
            module.params["directory"], module.params["requests"], check_mode=module.check_mode
        )
    except (PKIError, OSError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=outcome.changed, reasons=outcome.reasons, **outcome.facts)


if __name__ == "__main__":
    main()
