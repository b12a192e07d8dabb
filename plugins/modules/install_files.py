#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: install_files
short_description: Put a set of files from the controller on a node, in one round trip when nothing changed
version_added: "0.2.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - The one way the roles put files on a node (release binaries, certificates, configuration files and
    systemd units). Each entry of O(files) comes from a file on the controller (O(files[].src)) or from
    text (O(files[].content), for example a C(lookup('scratch.kubernetes.template', ...))).
  - The action plugin checksums every source on the controller, then makes one call that compares them
    with the node's files. Files whose owner or mode alone differ are fixed by that call. Files whose content
    differs travel in a second call (small files inline, large ones copied first) and replace the old ones
    atomically; missing parent directories are created with mode 0755.
  - A no-op run therefore costs one remote call whatever the number and size of the files. The checksum of a
    file of 1 MiB or more is kept and reused while the file's size, modification and change times and
    inode stay the same, so release binaries are hashed once, not on every run for every node. The controller
    keeps it beside the source (C(.NAME.sha256)), the node in C(/var/lib/scratch-kubernetes/checksums)
    (one file per destination, named by the sha256 of its path; root's, mode 0700). Check mode reads that
    cache but never writes it.
  - RV(changed_files) lists what changed, for tasks that act on one file (an image to import again), and
    RV(files) every destination, for M(scratch.kubernetes.services) to restart the units that read them.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
  - scratch.kubernetes._attributes.FULL
attributes:
  action:
    description: Runs on the controller as an action plugin, which calls the module on the node.
    support: full
  check_mode:
    details: Reports which files would change; writes nothing.
  diff_mode:
    details:
      - Text files up to 64 KiB are shown whole, before and after; larger or binary files by size and
        checksum.
      - The content of a file that others may not read (mode V(0600) or V(0640), before or after) is never
        shown.
      - Mode and owner are shown for every changed file.
options:
  files:
    description: The files to install.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path on the node.
        type: path
        required: true
      src:
        description: A file on the controller. Mutually exclusive with O(files[].content).
        type: path
      content:
        description: The file's content as text. Mutually exclusive with O(files[].src).
        type: str
      mode:
        description: Permission bits, as an octal string.
        type: str
        default: "0644"
      owner:
        description: Owning user on the node.
        type: str
        default: root
      group:
        description: Owning group on the node.
        type: str
        default: root
      sha256:
        description: Set by the action plugin from O(files[].src) or O(files[].content); do not set it.
        type: str
      content_base64:
        description: Set by the action plugin, for a file the node lacks; do not set it.
        type: str
      staged:
        description: Set by the action plugin, for a large file it copied to the node; do not set it.
        type: path
"""

EXAMPLES = r"""
- name: Install the kubelet, its configuration and its unit
  scratch.kubernetes.install_files:
    files:
      - src: "{{ artifacts_dir }}/kubelet/{{ kube_version }}/kubelet"
        dest: /usr/local/bin/kubelet
        mode: "0755"
      - content: "{{ kubelet_config | to_nice_yaml }}"
        dest: /var/lib/kubelet/config.yaml
      - content: "{{ lookup('scratch.kubernetes.template', 'kubelet.service.j2') }}"
        dest: /etc/systemd/system/kubelet.service
  notify: Restart kubelet
"""

RETURN = r"""
changed_files:
  description: Destinations that changed (or would change, in check mode), in the order given.
  returned: success
  type: list
  elements: str
  sample: [/usr/local/bin/kubelet]
files:
  description: Every destination, changed or not, in the order given.
  returned: success
  type: list
  elements: str
  sample: [/usr/local/bin/kubelet, /etc/systemd/system/kubelet.service]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._files import (
    FileError,
    reconcile,
    wanted_from_params,
)

# Checksums of the node's large files, kept between runs (cached_sha256); reset.yml removes it.
_CHECKSUM_DIR = "/var/lib/scratch-kubernetes/checksums"
# The action plugin resolves src and content to sha256 and sends the content of a file only
# when the node reported wanting it (inline as base64, or staged on the node).
_ARGUMENT_SPEC = {
    "files": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": {
            "dest": {"type": "path", "required": True},
            "src": {"type": "path"},
            "content": {"type": "str", "no_log": True},
            "mode": {"type": "str", "default": "0644"},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "sha256": {"type": "str"},
            "content_base64": {"type": "str", "no_log": True},
            "staged": {"type": "path"},
        },
        "required_one_of": [["sha256", "content"]],
    },
}


def main() -> None:
    module = AnsibleModule(argument_spec=_ARGUMENT_SPEC, supports_check_mode=True)
    try:
        report = reconcile(
            wanted_from_params(module.params["files"]),
            check_mode=module.check_mode,
            want_diff=module._diff,
            checksum_dir=_CHECKSUM_DIR,
        )
    except (FileError, OSError) as err:
        module.fail_json(msg=str(err))
    result = {"changed": bool(report.changed), "changed_files": report.changed, "wanting": report.wanting}
    if module._diff:
        result["diff"] = report.diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
