# SPDX-License-Identifier: Apache-2.0
"""Filters over the version-skew core (module_utils/_versions.py)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.scratch.kubernetes.plugins.module_utils import _versions


def version_skew(
    target: str,
    apiservers: dict[str, str],
    kubelets: dict[str, str],
    upgrade: bool = False,
    run_masters: list[str] | None = None,
) -> list[str]:
    """The problems that stop installing ``target`` on a cluster running these versions."""
    try:
        return _versions.skew_problems(target, apiservers, kubelets, upgrade=upgrade, run_masters=run_masters)
    except _versions.VersionError as error:
        raise AnsibleFilterError(str(error)) from error


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"version_skew": version_skew}
