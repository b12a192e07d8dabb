# SPDX-License-Identifier: Apache-2.0
"""The control plane as static pods (scenario `guide`, control_plane_mode: static_pods): the master's
kubelet runs etcd, kube-apiserver, kube-controller-manager and kube-scheduler from the manifests
the roles write, the API shows them as mirror pods, and a rerun that changes a flag or a file
they read rolls them, as systemd restarts the units in the other mode.

Runs only where the scenario's masters run their control plane as static pods.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import MASTER, SETTINGS, STATIC_PODS, kubectl_json, node_exec

from playbooks import assert_recap_unchanged, site_yml

pytestmark = pytest.mark.skipif(not STATIC_PODS, reason="the control plane runs under systemd")

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
MANIFEST_DIR = SETTINGS["control_plane_manifest_dir"]


def mirror_pods() -> dict[str, dict[str, Any]]:
    """The API's mirror pods of the master's static pods, by component."""
    pods = kubectl_json("get", "pods", "--namespace", "kube-system", "--selector", "tier=control-plane")[
        "items"
    ]
    return {
        pod["metadata"]["labels"]["component"]: pod for pod in pods if pod["spec"]["nodeName"] == MASTER.name
    }


def running_container(component: str) -> dict[str, Any]:
    """The component's one running container, as the node's runtime (crictl) reports it."""
    listed = node_exec(
        MASTER, "crictl", "ps", "--state", "running", "--name", f"^{component}$", "--output", "json"
    ).stdout
    containers = json.loads(listed)["containers"]
    assert len(containers) == 1, listed
    return containers[0]


def command_line(container: dict[str, Any]) -> list[str]:
    pid = json.loads(node_exec(MASTER, "crictl", "inspect", container["id"]).stdout)["info"]["pid"]
    return node_exec(MASTER, "cat", f"/proc/{pid}/cmdline").stdout.rstrip("\0").split("\0")


def manifest(component: str) -> dict[str, Any]:
    return json.loads(
        node_exec(
            MASTER, "python3", "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            f"{MANIFEST_DIR}/{component}.yaml",
        ).stdout
    )  # fmt: skip


def test_the_api_shows_the_control_plane_as_mirror_pods_of_the_master(cluster: None) -> None:
    pods = mirror_pods()
    assert sorted(pods) == sorted(COMPONENTS)
    for component, pod in pods.items():
        # A mirror pod stands for a pod from a file of the kubelet's, which the API cannot change.
        assert pod["metadata"]["annotations"]["kubernetes.io/config.source"] == "file", component
        assert pod["status"]["phase"] == "Running", component
        assert all(status["ready"] for status in pod["status"]["containerStatuses"]), component


def test_no_control_plane_unit_exists_on_the_master(cluster: None) -> None:
    units = [f"/etc/systemd/system/{component}.service" for component in COMPONENTS]
    found = node_exec(MASTER, "sh", "-c", f"ls {' '.join(units)} 2>/dev/null; true")
    assert found.stdout.split() == []


@pytest.mark.parametrize("component", COMPONENTS)
def test_each_component_runs_its_manifests_command_from_the_release_image(
    cluster: None, component: str
) -> None:
    (spec,) = manifest(component)["spec"]["containers"]
    assert command_line(running_container(component)) == spec["command"]
    version = f"{SETTINGS['etcd_version']}-0" if component == "etcd" else f"v{SETTINGS['kube_version']}"
    assert (
        spec["image"]
        == f"registry.k8s.io/{component if component == 'etcd' else component + '-amd64'}:{version}"
    )


def test_a_changed_flag_or_file_rolls_the_static_pod_and_the_next_run_changes_nothing(
    cluster: None, testbed_lock: None
) -> None:
    """A flag changed in the inventory rewrites the manifest, and the kubelet replaces the pod; a
    file the pod reads that changed after it started makes the role stop its container, for the
    kubelet to start it anew (the one restart rule of scenario default's units)."""
    flag = ["-e", json.dumps({"control_plane_apiserver_extra_args": {"v": "2"}})]
    apiserver = running_container("kube-apiserver")

    changed = site_yml(*flag)
    assert changed.returncode == 0, changed.tail()
    rolled = running_container("kube-apiserver")
    assert rolled["id"] != apiserver["id"]
    assert "--v=2" in command_line(rolled)
    assert_recap_unchanged(site_yml(*flag))

    scheduler = running_container("kube-scheduler")
    node_exec(MASTER, "touch", "/etc/kubernetes/scheduler.kubeconfig")
    restored = site_yml()
    assert restored.returncode == 0, restored.tail()
    assert running_container("kube-scheduler")["id"] != scheduler["id"]
    assert "--v=2" not in command_line(running_container("kube-apiserver"))
