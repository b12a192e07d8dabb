#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: private_key
short_description: Create a private key on the host that uses it
version_added: "0.1.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Writes an unencrypted PKCS#8 PEM private key to O(path), atomically and with mode 0600 from the
    start. Keys are made on the host that uses them and never copied; the CA key stays on the controller.
  - An existing key of the wanted O(type) (and O(size) for RSA) is kept. A key of another type, curve or
    size, or a file that does not hold a readable unencrypted key, is replaced by a new key; RV(reasons)
    says why.
  - Optionally also writes the public key to O(public_key_path) (mode 0644), as needed for the
    service-account key pair.
  - The private key bytes are never returned.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
  - scratch.kubernetes._pki
  - scratch.kubernetes._pki.SECRET
attributes:
  check_mode:
    details: Reports whether the key would be created or replaced, and why; writes nothing.
  diff_mode:
    details: The diff shows type, size, curve and public key fingerprint, and file attributes.
requirements:
  - cryptography >= 38.0
options:
  path:
    description: Where the private key is written.
    type: path
    required: true
  type:
    description: Key algorithm. V(ecdsa) uses the NIST P-256 curve (secp256r1).
    type: str
    choices: [ecdsa, rsa]
    default: ecdsa
  size:
    description: Key size in bits; used only with O(type=rsa).
    type: int
    choices: [2048, 4096]
    default: 2048
  public_key_path:
    description: If set, the PEM public key is also written there, with mode 0644 and O(owner)/O(group).
    type: path
  force:
    description: Replace the key even if it fits. Every run with V(true) reports a change.
    type: bool
    default: false
  state:
    description: V(absent) removes O(path) and O(public_key_path).
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Kubelet key on the node
  scratch.kubernetes.private_key:
    path: /etc/kubernetes/pki/kubelet.key

- name: Service-account signing key pair
  scratch.kubernetes.private_key:
    path: /etc/kubernetes/pki/sa.key
    public_key_path: /etc/kubernetes/pki/sa.pub
    type: rsa
    size: 4096
"""

RETURN = r"""
type:
  description: Algorithm of the key; null when O(state=absent).
  returned: success
  type: str
  sample: ecdsa
size:
  description: Key size in bits (256 for ECDSA P-256); null when O(state=absent).
  returned: success
  type: int
  sample: 256
curve:
  description: Curve of an ECDSA key; null for RSA and when O(state=absent).
  returned: success
  type: str
  sample: secp256r1
public_key:
  description: The PEM public key; null in check mode when the key would be replaced, and if O(state=absent).
  returned: success
  type: str
  sample: "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----\n"
fingerprint:
  description:
    - SHA-256 of the DER public key (SubjectPublicKeyInfo), as colon-separated hex.
    - Null in check mode when the key would be replaced, and with O(state=absent).
  returned: success
  type: str
  sample: "4f:1c:...:9a"
reasons:
  description: Why the key or its files changed (or would change); empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample: ["the key is rsa 2048, want ecdsa secp256r1"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._deps import require
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    KeySpec,
    PKIError,
    ensure_private_key,
    remove_private_key,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_module import (
    exit_with,
    file_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            type=dict(type="str", choices=["ecdsa", "rsa"], default="ecdsa"),
            size=dict(type="int", choices=[2048, 4096], default=2048),
            public_key_path=dict(type="path", no_log=False),
            force=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            **file_argument_spec("0600"),
        ),
        supports_check_mode=True,
    )
    require(module, "cryptography")

    params = module.params
    try:
        if params["state"] == "absent":
            outcome = remove_private_key(
                params["path"], params["public_key_path"], check_mode=module.check_mode
            )
        else:
            outcome = ensure_private_key(
                params["path"],
                KeySpec(params["type"], params["size"]),
                force=params["force"],
                public_key_path=params["public_key_path"],
                check_mode=module.check_mode,
            )
    except PKIError as error:
        module.fail_json(msg=str(error))
    files: list[tuple[str, str | None]] = []
    if params["state"] == "present":
        files.append((params["path"], None))
        if params["public_key_path"]:
            files.append((params["public_key_path"], "0644"))
    exit_with(module, outcome, files)


if __name__ == "__main__":
    main()
