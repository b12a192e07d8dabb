#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: csr
short_description: Build a certificate signing request from a private key on the host
version_added: "0.1.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Reads the private key at O(privatekey_path) and returns a PEM certificate signing request (CSR) for
    it, signed with SHA-256. The key never leaves the host; only the CSR, which holds the public key, is
    returned, to be signed on the controller by M(scratch.kubernetes.certificate).
  - The subject is O(organization) (one C(O) attribute each, in the given order) followed by
    O(common_name). Kubernetes takes the user name from C(CN) and the groups from C(O).
  - DNS names and IP addresses become the subject alternative names (SANs), sorted, so the same input
    always requests the same content. ECDSA signatures are randomized, so the CSR bytes differ between
    runs; M(scratch.kubernetes.certificate) therefore compares subject, SANs, usages and public key, never
    CSR bytes.
  - Writes nothing and always reports C(changed=false).
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
attributes:
  check_mode:
    details: Nothing is written in any mode; check mode returns the same CSR as a real run.
  diff_mode:
    details: There is never a diff, since nothing changes.
requirements:
  - cryptography >= 38.0
options:
  privatekey_path:
    description: Private key the CSR is made for, as written by M(scratch.kubernetes.private_key).
    type: path
    required: true
  common_name:
    description: Subject common name (C(CN)), for example V(system:node:worker-1).
    type: str
    required: true
  organization:
    description: Subject organizations (C(O)), for example V([system:nodes]).
    type: list
    elements: str
    default: []
  dns_names:
    description: DNS names for the subject alternative name extension.
    type: list
    elements: str
    default: []
  ip_addresses:
    description: IPv4 or IPv6 addresses for the subject alternative name extension.
    type: list
    elements: str
    default: []
  key_usage:
    description: Key usages requested (a critical extension); none if empty.
    type: list
    elements: str
    choices: [digital_signature, content_commitment, key_encipherment, data_encipherment, key_agreement]
    default: [digital_signature, key_encipherment]
  extended_key_usage:
    description: Extended key usages requested; none if empty.
    type: list
    elements: str
    choices: [server_auth, client_auth]
    default: [client_auth]
"""

EXAMPLES = r"""
- name: CSR of the kubelet's client identity
  scratch.kubernetes.csr:
    privatekey_path: /etc/kubernetes/pki/kubelet.key
    common_name: "system:node:{{ inventory_hostname }}"
    organization: ["system:nodes"]
    dns_names: ["{{ inventory_hostname }}"]
    ip_addresses: ["{{ node_ip }}"]
    extended_key_usage: [client_auth, server_auth]
  register: __kubelet_csr

- name: Sign it on the controller
  scratch.kubernetes.certificate:
    csr_content: "{{ __kubelet_csr.csr }}"
    path: "{{ pki_dir }}/{{ inventory_hostname }}/kubelet.crt"
    ca_certificate_path: "{{ pki_dir }}/ca.crt"
    ca_privatekey_path: "{{ pki_dir }}/ca.key"
  delegate_to: localhost
"""

RETURN = r"""
csr:
  description: The certificate signing request, PEM encoded.
  returned: success
  type: str
  sample: "-----BEGIN CERTIFICATE REQUEST-----\n...\n-----END CERTIFICATE REQUEST-----\n"
public_key_fingerprint:
  description: SHA-256 of the DER public key (SubjectPublicKeyInfo) in the CSR, as colon-separated hex.
  returned: success
  type: str
  sample: "4f:1c:...:9a"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    PKIError,
    csr_pem,
    load_private_key,
    make_csr,
    public_key_fingerprint,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            privatekey_path=dict(type="path", required=True, no_log=False),
            common_name=dict(type="str", required=True),
            organization=dict(type="list", elements="str", default=[]),
            dns_names=dict(type="list", elements="str", default=[]),
            ip_addresses=dict(type="list", elements="str", default=[]),
            key_usage=dict(
                type="list",
                elements="str",
                no_log=False,
                choices=[
                    "digital_signature",
                    "content_commitment",
                    "key_encipherment",
                    "data_encipherment",
                    "key_agreement",
                ],
                default=["digital_signature", "key_encipherment"],
            ),
            extended_key_usage=dict(
                type="list",
                elements="str",
                no_log=False,
                choices=["server_auth", "client_auth"],
                default=["client_auth"],
            ),
        ),
        supports_check_mode=True,
    )
    require(module, "cryptography")

    params = module.params
    try:
        key = load_private_key(params["privatekey_path"])
        csr = make_csr(
            key,
            params["common_name"],
            params["organization"],
            params["dns_names"],
            params["ip_addresses"],
            params["key_usage"],
            params["extended_key_usage"],
        )
    except PKIError as error:
        module.fail_json(msg=str(error))
    module.exit_json(
        changed=False, csr=csr_pem(csr), public_key_fingerprint=public_key_fingerprint(key.public_key())
    )


if __name__ == "__main__":
    main()
