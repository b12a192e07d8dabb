# SPDX-License-Identifier: Apache-2.0
"""Controller side of scratch.kubernetes.install_files (see the module's documentation).

Sources are checksummed here; the node is asked once what it lacks; only that content travels,
inline when small, copied to the node's temporary directory when large.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any, NamedTuple

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase
from ansible_collections.scratch.kubernetes.plugins.module_utils._files import cached_sha256

_MODULE = "scratch.kubernetes.install_files"
# Sources at least this large are copied to the node as files, not sent inline.
_LARGE = 1024 * 1024

_ENTRY_SPEC = {
    "dest": {"type": "path", "required": True},
    "src": {"type": "path"},
    "content": {"type": "str"},
    "mode": {"type": "raw", "default": "0644"},
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
}
_ARGUMENT_SPEC = {
    "files": {
        "type": "list",
        "elements": "dict",
        "required": True,
        "options": _ENTRY_SPEC,
        "mutually_exclusive": [["src", "content"]],
        "required_one_of": [["src", "content"]],
    },
}


class _Source(NamedTuple):
    """A file to install: what the node is told (``wanted``), and its content or controller path."""

    wanted: dict[str, Any]
    data: bytes | None
    src: str | None


class ActionModule(ActionBase):
    # The temporary directory is made only when a large file must travel: a no-op run is then
    # one command on the node (with pipelining), not four.
    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        args = self.validate_argument_spec(argument_spec=_ARGUMENT_SPEC)[1]
        entries: list[_Source] = []
        for entry in args["files"]:
            if not isinstance(entry["mode"], str):
                # YAML reads an unquoted 0644 as the number 420.
                raise AnsibleActionFail(
                    f'{entry["dest"]}: mode must be a quoted octal string such as "0644", '
                    f"not {entry['mode']!r}"
                )
            wanted = {key: entry[key] for key in ("dest", "mode", "owner", "group")}
            if entry["content"] is not None:
                data = to_bytes(entry["content"], errors="surrogate_or_strict")
                wanted["sha256"] = hashlib.sha256(data).hexdigest()
                entries.append(_Source(wanted, data, None))
            else:
                src = os.path.expanduser(entry["src"])
                try:
                    wanted["sha256"] = cached_sha256(src)
                except OSError as err:
                    raise AnsibleActionFail(
                        f"cannot read {src} on the controller for {entry['dest']}: {err}"
                    ) from err
                entries.append(_Source(wanted, None, src))

        try:
            query = self._execute_module(
                _MODULE, module_args={"files": [entry.wanted for entry in entries]}, task_vars=task_vars
            )
            if query.get("failed"):
                return {**result, **query}
            changed = list(query.get("changed_files", []))
            diff = list(query.get("diff", []))
            wanting = set(query.get("wanting", []))
            if wanting and self._task.check_mode:
                changed += [entry.wanted["dest"] for entry in entries if entry.wanted["dest"] in wanting]
                diff += [
                    {"before_header": dest, "after_header": dest, "before": "", "after": "(new content)\n"}
                    for dest in sorted(wanting)
                ]
            elif wanting:
                files = [self._with_content(*entry) for entry in entries if entry.wanted["dest"] in wanting]
                applied = self._execute_module(_MODULE, module_args={"files": files}, task_vars=task_vars)
                if applied.get("failed"):
                    return {**result, **applied}
                changed += applied.get("changed_files", [])
                diff += applied.get("diff", [])
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

        order = [entry.wanted["dest"] for entry in entries]
        result.update(changed=bool(changed), changed_files=sorted(set(changed), key=order.index), files=order)
        if self._task.diff:
            result["diff"] = diff
        return result

    def _with_content(self, wanted: dict[str, Any], data: bytes | None, src: str | None) -> dict[str, Any]:
        if data is None and src is not None and os.path.getsize(src) < _LARGE:
            with open(src, "rb") as handle:
                data = handle.read()
        if data is not None:
            return {**wanted, "content_base64": base64.b64encode(data).decode()}
        if not self._connection._shell.tmpdir:
            self._make_tmp_path()
        name = f"{wanted['sha256'][:16]}-{os.path.basename(wanted['dest'])}"
        staged = self._connection._shell.join_path(self._connection._shell.tmpdir, name)
        self._transfer_file(src, staged)
        self._fixup_perms2((self._connection._shell.tmpdir, staged))
        return {**wanted, "staged": staged}
