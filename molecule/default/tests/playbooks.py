# SPDX-License-Identifier: Apache-2.0
"""Running the collection's playbooks against the test bed as a user does, and telling what changed.

Each run is `ansible-playbook -i <the scenario's inventory> PLAYBOOK` from the repository root. Tests that
run playbooks hold the `testbed_lock` fixture (conftest.py) from the fingerprints before a run to
those after it, so that no other run lands in between.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import INVENTORY, MACHINES, REPO, SETTINGS, STATE_DIR, Node, node_exec, parent_pid, run

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
# Every binary the roles install under /usr/local/bin.
BINARIES = [
    *("etcd", "etcdctl", "etcdutl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"),
    *("kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr"),
]
PROCESSES = ["etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kubelet", "kube-proxy"]
PROCESSES += ["containerd", "containerd-shim", "pause", "haproxy"]
# What reset.yml must leave behind on a node: none of these.
RESET_PATHS = [
    "/etc/kubernetes",
    "/var/log/kubernetes",
    "/etc/etcd",
    "/var/lib/etcd",
    "/var/lib/kubelet",
    "/var/lib/kube-proxy",
    "/etc/containerd",
    "/run/containerd",
    "/var/lib/scratch-kubernetes",
    "/etc/cni/net.d",
    "/opt/cni/bin",
    "/var/lib/cni",
    "/etc/ansible/facts.d/scratch_kubernetes.fact",
    "/etc/haproxy",
    "/etc/apt/sources.list.d/scratch-kubernetes-testbed.sources",
    "/etc/apt/keyrings/scratch-kubernetes-testbed.asc",
    "/etc/sysctl.d/90-kubernetes.conf",
    "/etc/modules-load.d/kubernetes.conf",
    "/usr/local/sbin/pod-network-routes",
    "/usr/local/sbin/runc",
    *(f"/usr/local/bin/{binary}" for binary in BINARIES),
    *(f"/etc/systemd/system/{unit}.service" for unit in (*FINGERPRINT_UNITS, "pod-network")),
]

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


def _command(name: str, args: Sequence[str], inventories: Sequence[Path | str]) -> list[str]:
    sources = [arg for inventory in inventories for arg in ("-i", str(inventory))]
    return [str(Path(sys.executable).parent / "ansible-playbook"), *sources, name, *args]


def _user_env() -> dict[str, str]:
    # Molecule's verify step exports its own ANSIBLE_* settings; a user's run has the repo's ansible.cfg.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    return env | {
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
        "ANSIBLE_CALLBACK_FORMAT_PRETTY": "false",
    }


def playbook(name: str, *args: str, inventories: Sequence[Path | str] = (INVENTORY,)) -> PlaybookRun:
    """`ansible-playbook -i INVENTORY... NAME ARGS` from the repository root (hold testbed_lock)."""
    command = _command(name, args, inventories)
    result = run(*command, env=_user_env(), cwd=REPO, timeout=PLAYBOOK_TIMEOUT, check=False)
    return PlaybookRun(result.returncode, result.stdout + result.stderr)


def site_yml(*args: str, **kwargs: Any) -> PlaybookRun:
    return playbook("site.yml", *args, **kwargs)


def timed(name: str, *args: str, inventories: Sequence[Path | str] = (INVENTORY,)) -> PlaybookRun:
    """Run a playbook that must succeed, and say how long it took (shown with pytest -s)."""
    started = time.monotonic()
    result = playbook(name, *args, inventories=inventories)
    print(f"{name} {' '.join(args)}: rc={result.returncode} in {time.monotonic() - started:.0f}s")
    assert result.returncode == 0, result.tail()
    return result


def killed_site_yml(after: float) -> str:
    """site.yml killed with SIGKILL after so many seconds, with every process it started (its
    forks, their ssh or docker exec): a crash of the controller. Returns the task it was in."""
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            _command("site.yml", (), (INVENTORY,)),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=_user_env(),
            cwd=REPO,
        )
        try:
            process.wait(timeout=after)
        except subprocess.TimeoutExpired:
            # Ansible's forks start sessions of their own: the process group alone would miss them.
            # Stopped first, so that none of them starts another process before it dies.
            tree = _process_tree(process.pid)
            _send(tree, signal.SIGSTOP)
            _send(_process_tree(process.pid) | tree, signal.SIGKILL)
            process.wait()
        else:
            return "(finished before the kill)"
        output.seek(0)
        tasks = [banner["task"] for banner in map(TASK_BANNER.match, output.read().splitlines()) if banner]
    return tasks[-1] if tasks else "(before the first task)"


def _process_tree(root: int) -> set[int]:
    """root and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = parent_pid(entry.name)
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, []))
    return tree


def _send(pids: set[int], number: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # gone meanwhile
            os.kill(pid, number)


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


def leftovers(node: Node) -> list[str]:
    """Whatever of ours reset.yml should have removed and did not."""
    script = (
        f"for p in {' '.join(RESET_PATHS)}; do [ ! -e $p ] || echo path $p; done\n"
        # By process name (truncated to 15 characters): the script's own command line names them too.
        f"ps -eo comm= | grep -xE '{'|'.join(PROCESSES)}' | sed 's/^/process /'\n"
        f"ip -o route show root {SETTINGS['cluster_cidr']} | sed 's/^/route /'\n"
        "ip -o link show | grep -E ': (cbr0|veth[^:]*)[:@]' | sed 's/^/link /'\n"
        "iptables-save | grep -E '^:KUBE-|pod-network' | sed 's/^/iptables /'\n"
        "dpkg-query --show --showformat='${Status}' haproxy 2>/dev/null | grep -q 'ok installed'"
        " && echo package haproxy\n"
        "systemctl list-unit-files --no-legend 'kube*' etcd.service containerd.service pod-network.service"
        " | sed 's/^/unit /'\n"
        "true"
    )
    return node_exec(node, "bash", "-c", script).stdout.splitlines()
