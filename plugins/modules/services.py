#!/usr/bin/python
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
module: services
short_description: Make systemd units, or a kubelet's static pods, run; restart them after their files change
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
  - With O(manager=kubelet), the names are static pods of this node's kubelet (their containers' names),
    asked through C(crictl). A pod without a running container is waited for, since the kubelet starts it from
    its manifest. A running container created before one of the O(restart_if_changed) files last changed is
    stopped, for the kubelet to start it anew, and the new one is waited for.
extends_documentation_fragment:
  - scratch.kubernetes._attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be reloaded, enabled, started and restarted; changes nothing.
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
  manager:
    description:
      - What runs the O(names). V(systemd) for units; V(kubelet) for static pods, which the kubelet starts
        from the manifests in its manifest directory (the roles' C(control_plane_mode=static_pods)).
    type: str
    choices: [systemd, kubelet]
    default: systemd
  timeout:
    description:
      - With O(manager=kubelet), how long to wait for the kubelet to start a pod, in seconds.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Start the control plane now and at boot
  scratch.kubernetes.services:
    names: [kube-apiserver, kube-controller-manager, kube-scheduler]

- name: Start the kubelet now and at boot, and restart it if its files changed since it started
  scratch.kubernetes.services:
    names: [kubelet]
    restart_if_changed: "{{ kubelet_installed.files }}"

- name: Wait for the apiserver's static pod, and restart it if its files changed since it started
  scratch.kubernetes.services:
    names: [kube-apiserver]
    manager: kubelet
    restart_if_changed: "{{ control_plane_installed.files }}"
"""

RETURN = r"""
reloaded:
  description: Whether systemd's configuration was reloaded (or would be).
  returned: success
  type: bool
  sample: false
enabled:
  description: Units enabled (or that would be); never static pods.
  returned: success
  type: list
  elements: str
  sample: [kubelet]
started:
  description: Units started (or that would be); static pods waited for (or that would be).
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

import time
from collections.abc import Sequence

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils import _services, _static_pods


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "names": {"type": "list", "elements": "str", "required": True},
            "restart_if_changed": {"type": "list", "elements": "path", "default": []},
            "manager": {"type": "str", "choices": ["systemd", "kubelet"], "default": "systemd"},
            "timeout": {"type": "int", "default": 300},
        },
        supports_check_mode=True,
    )

    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        return module.run_command(list(argv))

    changed_at = _services.newest_change(module.params["restart_if_changed"])
    try:
        if module.params["manager"] == "kubelet":
            report = _static_pods.ensure_running(
                module.params["names"],
                run,
                check_mode=module.check_mode,
                files_changed_at=changed_at,
                timeout=module.params["timeout"],
            )
        else:
            report = _services.ensure_running(
                module.params["names"],
                run,
                check_mode=module.check_mode,
                files_changed_at=changed_at,
                clock_offset=time.time() - time.monotonic(),
            )
    except _services.ServiceError as error:
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
