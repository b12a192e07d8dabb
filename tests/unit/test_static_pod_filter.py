# SPDX-License-Identifier: Apache-2.0
"""The static_pod filter: a component's manifest from the command line its systemd unit runs."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.scratch.kubernetes.plugins.filter import static_pod

make = static_pod.FilterModule().filters()["static_pod"]
COMMAND = ["/usr/local/bin/etcd", "--data-dir=/var/lib/etcd", "--cert-file=/etc/etcd/pki/server.crt"]


def test_the_command_is_the_units_and_every_path_is_mounted_where_the_flags_name_it() -> None:
    pod = make(
        COMMAND,
        name="etcd",
        image="registry.k8s.io/etcd:3.6.16-0",
        host_paths=[{"path": "/etc/etcd/pki"}, {"path": "/var/lib/etcd", "writable": True}],
    )
    (container,) = pod["spec"]["containers"]
    assert container["command"] == COMMAND
    assert container["image"] == "registry.k8s.io/etcd:3.6.16-0"
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume["hostPath"] for volume in pod["spec"]["volumes"]}
    assert {path: volumes[mount["name"]]["path"] for path, mount in mounts.items()} == {
        "/etc/etcd/pki": "/etc/etcd/pki",
        "/var/lib/etcd": "/var/lib/etcd",
    }
    assert mounts["/etc/etcd/pki"]["readOnly"] and not mounts["/var/lib/etcd"]["readOnly"]
    assert {volume["type"] for volume in volumes.values()} == {"Directory"}


def test_the_pod_is_a_critical_host_network_pod_of_kube_system() -> None:
    pod = make(COMMAND, name="kube-scheduler", image="i")
    assert pod["metadata"] == {
        "name": "kube-scheduler",
        "namespace": "kube-system",
        "labels": {"component": "kube-scheduler", "tier": "control-plane"},
    }
    assert pod["spec"]["hostNetwork"] is True
    assert pod["spec"]["priorityClassName"] == "system-node-critical"
    assert pod["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_run_as_makes_the_container_run_as_that_user() -> None:
    security = make(COMMAND, name="etcd", image="i", run_as={"uid": 998, "gid": 997})["spec"][
        "securityContext"
    ]
    assert (security["runAsUser"], security["runAsGroup"], security["runAsNonRoot"]) == (998, 997, True)


def test_a_host_path_may_say_its_type() -> None:
    pod = make(
        COMMAND,
        name="a",
        image="i",
        host_paths=[{"path": "/var/log/k", "writable": True, "type": "DirectoryOrCreate"}],
    )
    assert pod["spec"]["volumes"][0]["hostPath"] == {"path": "/var/log/k", "type": "DirectoryOrCreate"}


@pytest.mark.parametrize(
    ("command", "paths", "message"),
    [([], [], "command of x is empty"), (COMMAND, [{"writable": True}], "host path 0 of x has no `path`")],
)
def test_bad_input_is_refused_with_what_is_wrong(
    command: list[str], paths: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(AnsibleFilterError, match=message):
        make(command, name="x", image="i", host_paths=paths)
