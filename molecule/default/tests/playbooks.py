# SPDX-License-Identifier: Apache-2.0
"""Running the collection's playbooks against the test bed as a user does, and telling what changed.

Each run is `ansible-playbook -i <the scenario's inventory> PLAYBOOK` from the repository root. Tests that
run playbooks hold the `testbed_lock` fixture (conftest.py) from the fingerprints before a run to
those after it, so that no other run lands in between.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import INVENTORY, MACHINES, REPO, SETTINGS, STATE_DIR, Node, node_exec, run

PLAYBOOK_TIMEOUT = 2400
FINGERPRINT_DIRS = [
    "/etc/kubernetes",
    "/etc/etcd",
    "/var/lib/kubelet/pki",
    "/var/lib/kube-proxy",
    "/etc/cni",
    "/etc/systemd/system",
    "/usr/local/bin",
    "/etc/containerd",
    "/etc/haproxy",
]
FINGERPRINT_UNITS = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "containerd",
    "kube-proxy",
    "haproxy",
]
CONTROLLER_ARTIFACT = (
    Path.home() / ".cache/scratch-kubernetes/artifacts/kubelet" / SETTINGS["kube_version"] / "kubelet"
)
RECAP_LINE = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.M,
)
TASK_BANNER = re.compile(r"^TASK \[(?P<task>.*)\] \**$")
FAILURE_LINE = re.compile(r"^(?:fatal|failed): \[(?P<host>[^\]]+)\].*? => (?P<result>\{.*\})$")


@dataclass(frozen=True)
class Failure:
    task: str
    host: str
    messages: list[str]


@dataclass(frozen=True)
class PlaybookRun:
    returncode: int
    output: str

    def recap(self) -> dict[str, dict[str, int]]:
        """host -> ok/changed/unreachable/failed counts from the PLAY RECAP."""
        _before, found, tail = self.output.rpartition("PLAY RECAP")
        assert found, f"no PLAY RECAP in the output:\n{self.tail()}"
        return {
            match["host"]: {key: int(match[key]) for key in ("ok", "changed", "unreachable", "failed")}
            for match in RECAP_LINE.finditer(tail)
        }

    def failures(self) -> list[Failure]:
        """Every failed task result, with the task it belongs to and each message in it."""
        task, failures = "", []
        for line in self.output.splitlines():
            if banner := TASK_BANNER.match(line):
                task = banner["task"]
            elif failure := FAILURE_LINE.match(line):
                failures.append(Failure(task, failure["host"], _messages(json.loads(failure["result"]))))
        return failures

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def _messages(result: Any) -> list[str]:
    if isinstance(result, dict):
        own = [result["msg"]] if isinstance(result.get("msg"), str) else []
        # Role argument validation says what is wrong in argument_errors, beside a generic msg.
        own += [error for error in result.get("argument_errors", []) if isinstance(error, str)]
        return own + [msg for item in result.get("results", []) for msg in _messages(item)]
    return []


def playbook(name: str, *args: str, inventories: Sequence[Path | str] = (INVENTORY,)) -> PlaybookRun:
    """`ansible-playbook -i INVENTORY... NAME ARGS` from the repository root (hold testbed_lock)."""
    # Molecule's verify step exports its own ANSIBLE_* settings; a user's run has the repo's ansible.cfg.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    env |= {
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_CALLBACK_FORMAT_PRETTY": "false",
    }
    command = Path(sys.executable).parent / "ansible-playbook"
    sources = [arg for inventory in inventories for arg in ("-i", str(inventory))]
    result = run(command, *sources, name, *args, env=env, cwd=REPO, timeout=PLAYBOOK_TIMEOUT, check=False)
    return PlaybookRun(result.returncode, result.stdout + result.stderr)


def site_yml(*args: str, **kwargs: Any) -> PlaybookRun:
    return playbook("site.yml", *args, **kwargs)


# What tells a file changed without reading it: any write, replacement, chmod or chown moves its
# change time or inode, so this sees more than a content hash would, at a fraction of the cost.
FILE_IDENTITY = "%s %C@ %i %m %U:%G"


def node_fingerprint(node: Node) -> dict[str, str]:
    """Size, change time, inode, mode and owner of every file the roles manage, and when each service
    last entered its active state."""
    script = (
        f"for d in {' '.join(FINGERPRINT_DIRS)}; do"
        f" [ ! -d $d ] || find $d -type f -printf '%p  {FILE_IDENTITY}\\n'; done\n"
        f"for u in {' '.join(FINGERPRINT_UNITS)}; do"
        ' echo "unit:$u  $(systemctl show -p ActiveEnterTimestampMonotonic --value $u)"; done'
    )
    lines = node_exec(node, "bash", "-c", f"set -o pipefail; {script}", timeout=300).stdout.splitlines()
    return dict(line.split("  ", 1) for line in lines)


def controller_fingerprint() -> dict[str, str]:
    """The controller's cluster state (CAs, issued certificates, admin kubeconfig) and a cached binary."""
    paths = [*(path for path in STATE_DIR.rglob("*") if path.is_file()), CONTROLLER_ARTIFACT]
    return {str(path): _identity(path.stat()) for path in paths}


def _identity(info: os.stat_result) -> str:
    """FILE_IDENTITY of a file on the controller."""
    owner = f"{info.st_uid}:{info.st_gid}"
    return f"{info.st_size} {info.st_ctime_ns} {info.st_ino} {info.st_mode & 0o7777:o} {owner}"


def fingerprints(nodes: Sequence[Node] = MACHINES) -> dict[str, dict[str, str]]:
    """Every machine's fingerprint, taken side by side."""
    with ThreadPoolExecutor(max_workers=len(nodes) + 1) as pool:
        taken = {"controller": pool.submit(controller_fingerprint)}
        taken |= {node.name: pool.submit(node_fingerprint, node) for node in nodes}
        return {host: fingerprint.result() for host, fingerprint in taken.items()}


def assert_unchanged(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> None:
    changed = {
        host: {key: (before[host].get(key), after[host].get(key))
               for key in before[host].keys() | after[host].keys()
               if before[host].get(key) != after[host].get(key)}
        for host in before
    }  # fmt: skip
    changed = {host: diff for host, diff in changed.items() if diff}
    assert not changed, f"files or services changed (before, after): {changed}"


def assert_recap_unchanged(run: PlaybookRun, nodes: Sequence[Node] = MACHINES) -> dict[str, dict[str, int]]:
    recap = run.recap()
    missing = {node.name for node in nodes} - recap.keys()
    assert not missing, f"hosts missing from the PLAY RECAP: {missing}\n{run.tail()}"
    changed = {host: counts["changed"] for host, counts in recap.items() if counts["changed"]}
    assert not changed, f"PLAY RECAP reports changes: {changed}\n{run.tail()}"
    return recap
