# SPDX-License-Identifier: Apache-2.0
"""The version-skew policy: what an ordinary run and an upgrade refuse, and what they let through."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.scratch.kubernetes.plugins.filter import versions as versions_filter
from ansible_collections.scratch.kubernetes.plugins.module_utils._versions import (
    VersionError,
    parse,
    skew_problems,
)

MASTERS = {"m1": "v1.36.3", "m2": "v1.36.3", "m3": "v1.36.3"}
KUBELETS = {"m1": "v1.36.3", "m2": "v1.36.3", "m3": "v1.36.3", "n1": "v1.36.3"}


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("1.37.2", (1, 37, 2)),
        ("v1.37.2", (1, 37, 2)),
        ("v1.37.2+k3s1", (1, 37, 2)),
        ("v1.38.0-rc.1", (1, 38, 0)),
    ],
)
def test_parse_reads_the_forms_clusters_report(text: str, version: tuple[int, int, int]) -> None:
    assert parse(text) == version


@pytest.mark.parametrize("text", ["1.37", "latest", "", "v1.x.2"])
def test_parse_refuses_what_is_not_a_version(text: str) -> None:
    with pytest.raises(VersionError, match="not a Kubernetes version"):
        parse(text)


def test_a_new_cluster_has_nothing_to_check() -> None:
    assert skew_problems("1.37.2", {}, {}) == []
    assert skew_problems("1.37.2", {}, {}, upgrade=True, run_masters=[]) == []


def test_an_ordinary_run_at_the_running_version_goes_on() -> None:
    assert skew_problems("1.36.3", MASTERS, KUBELETS) == []


def test_an_ordinary_run_refuses_a_new_release_and_names_upgrade_yml() -> None:
    problems = skew_problems("1.37.2", {}, KUBELETS)
    assert problems == [
        "The kubelet on m1, m2, m3, n1 runs 1.36.3, not kube_version 1.37.2: a running cluster changes "
        "version only through playbooks/upgrade.yml, which rolls it out one member at a time."
    ]


def test_an_ordinary_run_refuses_a_new_patch_too() -> None:
    assert skew_problems("1.36.4", {}, KUBELETS)


@pytest.mark.parametrize("upgrade", [False, True])
def test_going_backwards_is_refused_with_the_version_to_set(upgrade: bool) -> None:
    problems = skew_problems("1.35.9", MASTERS, {}, upgrade=upgrade)
    assert problems == [
        "kube_version 1.35.9 goes backwards: the apiserver on m1, m2, m3 runs 1.36.3. Downgrades are not "
        "supported; set kube_version to 1.36.3 or newer."
    ]


def test_an_upgrade_by_one_minor_goes_on() -> None:
    assert skew_problems("1.37.2", MASTERS, KUBELETS, upgrade=True, run_masters=list(MASTERS)) == []


def test_an_interrupted_upgrade_can_be_run_again() -> None:
    apiservers = {**MASTERS, "m1": "v1.37.2"}
    kubelets = {**KUBELETS, "m1": "v1.37.2"}
    assert skew_problems("1.37.2", apiservers, kubelets, upgrade=True, run_masters=list(MASTERS)) == []


def test_an_upgrade_that_skips_a_minor_is_refused() -> None:
    problems = skew_problems("1.38.0", MASTERS, KUBELETS, upgrade=True)
    assert problems == [
        "kube_version 1.38.0 skips a minor release: the apiserver on m1, m2, m3 runs 1.36.3. Upgrade one "
        "minor at a time: to 1.37 first."
    ]


def test_kubelets_may_lag_three_minors_but_not_four() -> None:
    apiservers = {"m1": "v1.39.0"}
    assert skew_problems("1.40.0", apiservers, {"n1": "v1.37.5"}, upgrade=True) == []
    problems = skew_problems("1.40.0", apiservers, {"n1": "v1.36.3"}, upgrade=True)
    assert problems == [
        "The kubelet on n1 runs 1.36.3, more than 3 minor releases older than kube_version 1.40.0: upgrade "
        "those nodes to 1.37 first."
    ]


def test_a_limited_upgrade_may_not_leave_an_apiserver_behind_newer_kubelets() -> None:
    problems = skew_problems("1.37.2", MASTERS, KUBELETS, upgrade=True, run_masters=["m1"])
    assert problems == [
        "This upgrade leaves the apiserver on m2, m3 older than the kubelets it upgrades: include every "
        "master in the run (drop --limit, or add m2, m3)."
    ]


def test_a_limited_upgrade_of_nodes_after_the_masters_goes_on() -> None:
    apiservers = {host: "v1.37.2" for host in MASTERS}
    assert skew_problems("1.37.2", apiservers, KUBELETS, upgrade=True, run_masters=[]) == []


def test_the_filter_turns_a_bad_version_into_a_filter_error() -> None:
    with pytest.raises(AnsibleFilterError, match=r"'1\.37' is not a Kubernetes version"):
        versions_filter.version_skew("1.37", {}, {})
    assert versions_filter.version_skew("1.37.2", MASTERS, {}, upgrade=True) == []
