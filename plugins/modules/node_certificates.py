#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: node_certificates
short_description: Issue a node's certificates in one task, with its keys made on the node
version_added: "0.2.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - The one way the roles issue certificates. On the node, M(scratch.kubernetes.certificate_requests) keeps
    or makes a key (ECDSA P-256, mode 0600) for each entry of O(certificates) in O(directory), and returns
    its CSR. The node's keys never leave it; the CA keys never leave the controller.
    On the controller, in the same task, each CSR is signed by the CA its entry names, with the same
    checks as M(scratch.kubernetes.certificate) deciding whether the certificate already issued is kept
    (key, subject, SANs, usages, issuer, expiry, O(reissue_issued_before)).
  - The controller signs only what it asked for. Every CSR must ask for exactly the subject, SANs and usages
    of its entry in O(certificates); the certificate is built from that entry, and only the key comes from
    the CSR (whose signature proves the node holds it). A CSR that differs, as one made or altered by root
    on the node to obtain another identity would, fails the task, naming the field, before anything is
    signed, in check mode too.
  - Certificates are kept on the controller in O(pki_dir)/issued/INVENTORY_HOSTNAME/NAME.crt. The task
    does not copy them. It returns RV(files), which the caller adds to its own
    M(scratch.kubernetes.install_files) call, so that a role installs all its files in one task.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
attributes:
  action:
    description: Runs on the controller as an action plugin, which calls the module on the node.
    support: full
  check_mode:
    support: full
    details: Reports which keys would be made and which certificates issued, and why; writes nothing.
  diff_mode:
    support: none
requirements:
  - cryptography >= 38.0, on the controller and on the node
options:
  directory:
    description: Where the node keeps the keys, and where the caller installs the certificates.
    type: path
    required: true
  certificates:
    description:
      - The certificates the node needs, as O(scratch.kubernetes.certificate_requests#module:requests)
        (C(name), C(ca), C(common_name), C(organization), C(dns_names), C(ip_addresses),
        C(extended_key_usage)).
      - C(ca) names the signing CA's files on the controller, O(pki_dir)/CA.crt and O(pki_dir)/CA.key.
    type: list
    elements: dict
    required: true
  pki_dir:
    description: The controller's PKI directory, which holds the CAs and the issued certificates.
    type: path
    required: true
  ca_certificates:
    description: The CA certificates (by name, as C(ca)) to install beside the node's certificates.
    type: list
    elements: str
    default: [ca]
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
- name: Issue the kube-proxy certificate
  scratch.kubernetes.node_certificates:
    directory: /var/lib/kube-proxy/pki
    pki_dir: "{{ pki_dir }}"
    certificates:
      - name: kube-proxy
        common_name: system:kube-proxy
  register: __kube_proxy_certificates

- name: Install kube-proxy and its certificate
  scratch.kubernetes.install_files:
    files: "{{ [{'src': artifacts_dir ~ '/kube-proxy', 'dest': '/usr/local/bin/kube-proxy', 'mode': '0755'}]
               + __kube_proxy_certificates.files }}"
"""

RETURN = r"""
files:
  description: The certificates and CA certificates to install, as install_files takes them.
  returned: success
  type: list
  elements: dict
  sample:
    - src: /root/.scratch-kubernetes/demo/pki/issued/node-1/kube-proxy.crt
      dest: /var/lib/kube-proxy/pki/kube-proxy.crt
issued:
  description: Controller paths of the certificates issued (or that would be, in check mode).
  returned: success
  type: list
  elements: str
reasons:
  description: Why keys were made and certificates issued, each prefixed with its path.
  returned: success
  type: list
  elements: str
  sample: ["/var/lib/kube-proxy/pki/kube-proxy.key does not exist"]
"""
