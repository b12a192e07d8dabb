# SPDX-License-Identifier: Apache-2.0
"""Controller side of scratch.kubernetes.node_certificates (see the module's documentation).

The node makes its keys and CSRs in one call (scratch.kubernetes.certificate_requests); the CSRs
are signed right here, in the same task, where the CA keys are; what the caller should install
comes back as a list of files. Nothing but CSRs and certificates crosses the wire.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki import PKIError, parse_timestamp
from ansible_collections.scratch.kubernetes.plugins.module_utils._pki_batch import ensure_certificates

_NODE_MODULE = "scratch.kubernetes.certificate_requests"

_ARGUMENT_SPEC = {
    "directory": {"type": "path", "required": True},
    "certificates": {"type": "list", "elements": "dict", "required": True},
    "pki_dir": {"type": "path", "required": True},
    "ca_certificates": {"type": "list", "elements": "str", "default": ["ca"]},
    "validity_days": {"type": "int", "default": 365},
    "renew_before_days": {"type": "int", "default": 30},
    "reissue_issued_before": {"type": "str"},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=_ARGUMENT_SPEC)[1]
        if args["reissue_issued_before"]:
            try:  # before the node makes any key
                parse_timestamp(args["reissue_issued_before"], "reissue_issued_before")
            except PKIError as error:
                raise AnsibleActionFail(str(error)) from None
        requested = self._execute_module(
            _NODE_MODULE,
            module_args={"directory": args["directory"], "requests": args["certificates"]},
            task_vars=task_vars,
        )
        if requested.get("failed"):
            return {**result, **requested}

        pki_dir = os.path.expanduser(args["pki_dir"])
        issued_dir = os.path.join(pki_dir, "issued", str((task_vars or {})["inventory_hostname"]))
        # The node's answer says which CSR is which; everything else (the CA, what each certificate
        # says) comes from this task's own requests, and every CSR is checked against its request.
        csrs = {entry.get("name"): entry.get("csr") for entry in requested.get("csrs", [])}
        names = [request["name"] for request in args["certificates"]]
        if sorted(csrs, key=str) != sorted(names):
            raise AnsibleActionFail(
                f"{issued_dir}: the node answered with CSRs for {sorted(csrs, key=str)}, but "
                f"{sorted(names)} were requested; nothing was signed."
            )
        signing = [
            {
                "path": os.path.join(issued_dir, f"{request['name']}.crt"),
                "request": request,
                "csr": csrs[request["name"]],
                "ca_certificate_path": os.path.join(pki_dir, f"{request.get('ca') or 'ca'}.crt"),
                "ca_privatekey_path": os.path.join(pki_dir, f"{request.get('ca') or 'ca'}.key"),
            }
            for request in args["certificates"]
        ]
        try:
            signed = ensure_certificates(
                signing,
                validity_days=args["validity_days"],
                renew_before_days=args["renew_before_days"],
                reissue_issued_before=args["reissue_issued_before"],
                check_mode=self._task.check_mode,
            )
        except (PKIError, OSError) as error:
            # Not "from error": Ansible would append the message of error, and of its own cause, again.
            raise AnsibleActionFail(f"signing the certificates of {issued_dir}: {error}") from None

        files = [
            {"src": item["path"], "dest": os.path.join(args["directory"], os.path.basename(item["path"]))}
            for item in signing
        ] + [
            {"src": os.path.join(pki_dir, f"{ca}.crt"), "dest": os.path.join(args["directory"], f"{ca}.crt")}
            for ca in args["ca_certificates"]
        ]
        reasons = list(requested.get("reasons", [])) + signed.reasons
        result.update(changed=bool(reasons), reasons=reasons, issued=signed.facts["issued"], files=files)
        return result
