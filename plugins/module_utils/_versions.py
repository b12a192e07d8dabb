# SPDX-License-Identifier: Apache-2.0
"""The Kubernetes version-skew policy, as the collection applies it before changing anything.

https://kubernetes.io/releases/version-skew-policy/: apiservers move one minor release at a
time, and a kubelet is never newer than an apiserver nor more than three minors older. An
ordinary run (site.yml, add_node.yml) changes no version at all: a new release on a live cluster
goes through upgrade.yml, which rolls it out in the order that keeps the policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

KUBELET_MINORS_BEHIND = 3

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")

Version = tuple[int, int, int]


class VersionError(ValueError):
    """A version string that is not MAJOR.MINOR.PATCH."""


def parse(version: str) -> Version:
    """``(major, minor, patch)`` of ``1.37.2``, ``v1.37.2`` or ``v1.37.2+build``."""
    match = _VERSION.match(str(version).strip())
    if not match:
        raise VersionError(f"{version!r} is not a Kubernetes version (MAJOR.MINOR.PATCH)")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def _text(version: Version) -> str:
    return ".".join(str(part) for part in version)


def _minors_between(older: Version, newer: Version) -> int:
    # Kubernetes has had one major release: a different major is as far as it gets.
    return newer[1] - older[1] if older[0] == newer[0] else 1000


def _by_version(running: Mapping[str, str]) -> dict[Version, list[str]]:
    grouped: dict[Version, list[str]] = {}
    for host in sorted(running):
        grouped.setdefault(parse(running[host]), []).append(host)
    return grouped


def skew_problems(
    target: str,
    apiservers: Mapping[str, str],
    kubelets: Mapping[str, str],
    upgrade: bool = False,
    run_masters: Iterable[str] | None = None,
) -> list[str]:
    """What stops a run that installs ``target`` on a cluster running the given versions.

    ``apiservers`` maps each master to its apiserver's version, ``kubelets`` each registered node
    to its kubelet's (both may be empty on a new cluster). Without ``upgrade`` any difference is
    a problem; with it, the checks are the skew policy's. ``run_masters`` are the masters the
    upgrade reaches: a kubelet it upgrades must not end up newer than an apiserver it leaves.
    Returns one sentence per problem, each saying what to do.
    """
    wanted = parse(target)
    problems: list[str] = []
    for component, running in (("apiserver", apiservers), ("kubelet", kubelets)):
        for version, hosts in _by_version(running).items():
            where = f"the {component} on {', '.join(hosts)} runs {_text(version)}"
            starting_where = where[0].upper() + where[1:]
            if version > wanted:
                problems.append(
                    f"kube_version {target} goes backwards: {where}. Downgrades are not supported; "
                    f"set kube_version to {_text(version)} or newer."
                )
            elif version == wanted:
                continue
            elif not upgrade:
                problems.append(
                    f"{starting_where}, not kube_version {target}: a running cluster changes version only "
                    f"through playbooks/upgrade.yml, which rolls it out one member at a time."
                )
            elif component == "apiserver" and _minors_between(version, wanted) > 1:
                problems.append(
                    f"kube_version {target} skips a minor release: {where}. Upgrade one minor at a time: "
                    f"to {version[0]}.{version[1] + 1} first."
                )
            elif component == "kubelet" and _minors_between(version, wanted) > KUBELET_MINORS_BEHIND:
                oldest = f"{wanted[0]}.{wanted[1] - KUBELET_MINORS_BEHIND}"
                problems.append(
                    f"{starting_where}, more than {KUBELET_MINORS_BEHIND} minor releases older than "
                    f"kube_version {target}: upgrade those nodes to {oldest} first."
                )
    if upgrade and run_masters is not None:
        left = sorted(set(apiservers) - set(run_masters))
        behind = [host for host in left if parse(apiservers[host]) < wanted]
        if behind and any(parse(version) < wanted for version in kubelets.values()):
            problems.append(
                f"This upgrade leaves the apiserver on {', '.join(behind)} older than the kubelets it "
                f"upgrades: include every master in the run (drop --limit, or add {', '.join(behind)})."
            )
    return problems
