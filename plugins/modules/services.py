#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: services
short_description: Make systemd units enabled and running, with one look at them all
version_added: "0.2.0"
author: scratch.kubernetes developers (@scratch-kubernetes)
description:
  - Reads the state of every unit in O(names) with one C(systemctl show). Units not enabled are enabled,
    units not active are started; units already enabled and running are left alone.
  - C(systemctl daemon-reload) runs only when systemd reports that a unit file changed since it was loaded
    (C(NeedDaemonReload)) or does not know a unit yet, not on every run as
    M(ansible.builtin.systemd_service) with C(daemon_reload=true) does.
  - With O(restart_if_changed), a unit that runs but became active before one of those files last changed is
    restarted. One rule covers the restart after this run changed the files and the restart a killed run
    never made, which its rerun, finding the files in place, would not make otherwise.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be reloaded, enabled and started; changes nothing.
  diff_mode:
    support: none
options:
  names:
    description: The units, such as V(kubelet) or V(kube-apiserver.service).
    type: list
    elements: str
    required: true
  restart_if_changed:
    description:
      - Files the units read, such as RV(scratch.kubernetes.install_files#module:files) of the task that
        installed them. Missing files are ignored.
      - Only the modification time counts, so a unit whose reload does not make it active anew (HAProxy's)
        must not use this.
    type: list
    elements: path
    default: []
"""

EXAMPLES = r"""
- name: Start the control plane now and at boot
  scratch.kubernetes.services:
    names: [kube-apiserver, kube-controller-manager, kube-scheduler]

- name: Start the kubelet now and at boot, and restart it if its files changed since it started
  scratch.kubernetes.services:
    names: [kubelet]
    restart_if_changed: "{{ kubelet_installed.files }}"
"""

RETURN = r"""
reloaded:
  description: Whether systemd's configuration was reloaded (or would be).
  returned: success
  type: bool
  sample: false
enabled:
  description: Units enabled (or that would be).
  returned: success
  type: list
  elements: str
  sample: [kubelet]
started:
  description: Units started (or that would be).
  returned: success
  type: list
  elements: str
  sample: [kubelet]
restarted:
  description: Units restarted (or that would be) because of O(restart_if_changed).
  returned: success
  type: list
  elements: str
  sample: [kubelet]
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._services import ServiceError, ensure_running


def newest_change(paths: list[str]) -> float | None:
    """The latest modification time among the paths that exist, or None."""
    times = [os.stat(path).st_mtime for path in paths if os.path.exists(path)]
    return max(times, default=None)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str", "required": True},
            "restart_if_changed": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    try:
        report = ensure_running(
            module.params["names"],
            lambda argv: module.run_command(list(argv)),
            check_mode=module.check_mode,
            files_changed_at=newest_change(module.params["restart_if_changed"]),
            clock_offset=time.time() - time.monotonic(),
        )
    except ServiceError as error:
        module.fail_json(msg=str(error))
    module.exit_json(
        changed=report.changed,
        reloaded=report.reloaded,
        enabled=report.enabled,
        started=report.started,
        restarted=report.restarted,
    )


if __name__ == "__main__":
    main()
