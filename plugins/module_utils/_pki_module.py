# SPDX-License-Identifier: Apache-2.0
"""Ansible glue shared by the PKI modules: file options and the common way to exit.

Kept apart from ``_pki``, whose core knows nothing of Ansible.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ansible.module_utils.basic import AnsibleModule
    from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import Outcome


def file_argument_spec(mode: str) -> dict[str, dict[str, Any]]:
    """mode/owner/group, documented by the ``scratch.kubernetes._pki`` doc fragment."""
    return {
        "mode": {"type": "raw", "default": mode},
        "owner": {"type": "str"},
        "group": {"type": "str"},
    }


def exit_with(module: AnsibleModule, outcome: Outcome, files: Sequence[tuple[str, str | None]] = ()) -> None:
    """Apply mode/owner/group to ``files``, then exit with the outcome's facts and reasons.

    ``files`` pairs a path with a mode that replaces the ``mode`` option (None keeps it).
    Files that do not exist (check mode, state=absent) are skipped. Attribute changes of the
    first file are shown in the diff; ``set_fs_attributes_if_different`` honours check mode.
    """
    diff = {"before": dict(outcome.before), "after": dict(outcome.after)}
    for index, (path, mode) in enumerate(files):
        if not os.path.exists(path):
            continue
        params = module.params if mode is None else dict(module.params, mode=mode)
        file_args = module.load_file_common_arguments(params, path=path)
        if module.set_fs_attributes_if_different(file_args, False, diff if index == 0 else None):
            outcome.reasons.append(f"{path}: mode, owner or group differ")
    result: dict[str, Any] = {"changed": outcome.changed, "reasons": outcome.reasons, **outcome.facts}
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)
