#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: encryption_key
short_description: Create the key that encrypts Secrets at rest, once, and keep it
version_added: "0.1.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Makes sure O(path) holds a 32-byte key (256 bits), base64 encoded, as the API server's
    C(EncryptionConfiguration) needs for the C(aescbc) and C(secretbox) providers.
  - If the file is missing, 32 random bytes from the operating system's CSPRNG are written, base64 encoded
    with a trailing newline, atomically and with mode 0600 from the start.
  - If the file exists and holds valid base64 of exactly 32 bytes, it is kept and returned.
  - If the file exists but holds anything else, the module fails and leaves it alone. Secrets may already be
    encrypted with it, so it is never replaced silently.
  - The key is returned in RV(key), so that a template can put it in the C(EncryptionConfiguration). The
    module never logs it, but Ansible shows return values unless the task sets C(no_log=true). Always set
    C(no_log=true) on the task, and on every task that uses the registered key.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
  - scratch.kubernetes._pki
  - scratch.kubernetes._pki.SECRET
attributes:
  check_mode:
    details: Reports whether the key would be created; writes nothing and returns no key then.
  diff_mode:
    details: The diff shows only whether the file exists, and file attributes; never the key.
options:
  path:
    description: Where the key is kept, on the controller or on each master.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Secrets encryption key, generated once
  scratch.kubernetes.encryption_key:
    path: "{{ pki_dir }}/encryption.key"
  delegate_to: localhost
  run_once: true
  no_log: true
  register: __control_plane_encryption_key
"""

RETURN = r"""
path:
  description: Path of the key file.
  returned: success
  type: str
  sample: /etc/scratch-kubernetes/pki/encryption.key
key:
  description:
    - Sensitive. The key, base64 encoded (44 characters, no newline). Set C(no_log=true) on the task.
    - Null in check mode when the key would be created.
  returned: success
  type: str
  sample: "(sensitive)"
reasons:
  description: Why the file or its attributes changed (or would change); empty when nothing changed.
  returned: success
  type: list
  elements: str
  sample: ["/etc/scratch-kubernetes/pki/encryption.key does not exist"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import (
    PKIError,
    ensure_encryption_key,
)
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_module import (
    exit_with,
    file_argument_spec,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            **file_argument_spec("0600"),
        ),
        supports_check_mode=True,
    )
    try:
        outcome = ensure_encryption_key(module.params["path"], check_mode=module.check_mode)
    except PKIError as error:
        module.fail_json(msg=str(error))
    exit_with(module, outcome, [(module.params["path"], None)])


if __name__ == "__main__":
    main()
