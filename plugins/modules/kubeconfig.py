#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: kubeconfig
short_description: Write a kubeconfig file with embedded CA and credentials
version_added: "0.1.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Writes a kubeconfig (C(apiVersion=v1), C(kind=Config)) with one cluster, one user and one context,
    which is also the current context. The CA certificate is embedded as C(certificate-authority-data); the
    user authenticates with an embedded client certificate and key (C(client-certificate-data),
    C(client-key-data)) or with a bearer O(token).
  - The files are read on the host the module runs on, so run it where the client key is. The client key
    must belong to the client certificate.
  - Idempotent by content, not bytes. An existing file that parses (as YAML) to exactly the desired
    structure is kept; anything else, including extra clusters, users or contexts added by other tools, is
    replaced.
  - The file holds a key or a token, so it is written atomically with mode 0600 from the start.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
  - scratch.kubernetes._pki
  - scratch.kubernetes._pki.SECRET
attributes:
  check_mode:
    details: Reports whether the file would be written, and why; writes nothing.
  diff_mode:
    details:
      - The diff shows context, cluster, server, user and the fingerprints of the embedded certificates, and
        file attributes.
      - A token or key is never shown; for a token, only that one is set.
requirements:
  - cryptography >= 38.0
  - PyYAML
options:
  path:
    description: Where the kubeconfig is written.
    type: path
    required: true
  cluster_name:
    description: Name of the cluster entry.
    type: str
    required: true
  server:
    description: URL of the API server; it must start with C(https://).
    type: str
    required: true
  ca_certificate_path:
    description:
      - The CA certificate that signed the API server's certificate; embedded in the file.
      - Required, since the collection never writes a kubeconfig that skips TLS verification.
    type: path
    required: true
  user:
    description: Name of the user entry; by convention the identity (certificate CN) it stands for.
    type: str
    required: true
  client_certificate_path:
    description: Client certificate to embed; requires O(client_key_path). Mutually exclusive with O(token).
    type: path
  client_key_path:
    description: Private key of O(client_certificate_path), embedded in the file.
    type: path
  token:
    description: Bearer token of the user. Mutually exclusive with O(client_certificate_path).
    type: str
  context_name:
    description: Name of the context, which is also the current context. Defaults to C(<user>@<cluster_name>).
    type: str
notes:
  - One of O(client_certificate_path) (with O(client_key_path)) and O(token) is required.
"""

EXAMPLES = r"""
- name: Kubeconfig of the kubelet
  scratch.kubernetes.kubeconfig:
    path: /etc/kubernetes/kubelet.kubeconfig
    cluster_name: "{{ cluster_name }}"
    server: "https://{{ hostvars[groups['masters'][0]].node_ip }}:6443"
    ca_certificate_path: /etc/kubernetes/pki/ca.crt
    user: "system:node:{{ inventory_hostname }}"
    client_certificate_path: /etc/kubernetes/pki/kubelet.crt
    client_key_path: /etc/kubernetes/pki/kubelet.key
"""

RETURN = r"""
path:
  description: Path of the kubeconfig.
  returned: success
  type: str
  sample: /etc/kubernetes/kubelet.kubeconfig
context:
  description: Name of the context, which is the current context.
  returned: success
  type: str
  sample: system:node:worker-1@kubernetes
reasons:
  description: Why the file or its attributes changed (or would change); empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample: ["server differs"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import PKIError
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_module import (
    exit_with,
    file_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            cluster_name=dict(type="str", required=True),
            server=dict(type="str", required=True),
            ca_certificate_path=dict(type="path", required=True),
            user=dict(type="str", required=True),
            client_certificate_path=dict(type="path"),
            client_key_path=dict(type="path", no_log=False),
            token=dict(type="str", no_log=True),
            context_name=dict(type="str"),
            **file_argument_spec("0600"),
        ),
        required_one_of=[("client_certificate_path", "token")],
        mutually_exclusive=[("client_certificate_path", "token")],
        required_together=[("client_certificate_path", "client_key_path")],
        supports_check_mode=True,
    )
    require(module, "cryptography", "yaml")
    from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_kubeconfig import (
        build_kubeconfig,
        ensure_kubeconfig,
    )

    params = module.params
    try:
        config = build_kubeconfig(
            cluster_name=params["cluster_name"],
            server=params["server"],
            ca_certificate_path=params["ca_certificate_path"],
            user=params["user"],
            client_certificate_path=params["client_certificate_path"],
            client_key_path=params["client_key_path"],
            token=params["token"],
            context_name=params["context_name"],
        )
        outcome = ensure_kubeconfig(params["path"], config, check_mode=module.check_mode)
    except PKIError as error:
        module.fail_json(msg=str(error))
    exit_with(module, outcome, [(params["path"], None)])


if __name__ == "__main__":
    main()
