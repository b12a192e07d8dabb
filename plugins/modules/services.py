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
  - Restarts after a configuration change stay with each role's handler.
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
"""

EXAMPLES = r"""
- name: Start the control plane now and at boot
  scratch.kubernetes.services:
    names: [kube-apiserver, kube-controller-manager, kube-scheduler]
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
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.scratch.kubernetes.plugins.module_utils._services import ServiceError, ensure_running


def main() -> None:
    module = AnsibleModule(
        argument_spec={"names": {"type": "list", "elements": "str", "required": True}},
        supports_check_mode=True,
    )
    try:
        report = ensure_running(
            module.params["names"], lambda argv: module.run_command(list(argv)), check_mode=module.check_mode
        )
    except ServiceError as error:
        module.fail_json(msg=str(error))
    module.exit_json(
        changed=report.changed, reloaded=report.reloaded, enabled=report.enabled, started=report.started
    )


if __name__ == "__main__":
    main()
