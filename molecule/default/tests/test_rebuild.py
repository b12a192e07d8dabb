# SPDX-License-Identifier: Apache-2.0
"""Reset every node, then build the cluster again from bare nodes with a run that crashes halfway.

These tests go first (the `rebuild` stage), so that the whole verify suite after them checks a
cluster that reset.yml wiped and that site.yml finished building after a crash. One test per
seed of KILL_SEEDS (default "1 2"); the seed draws the moment of the kill.
tests/benchmarks/bench_kill_rerun.sh runs this test for many seeds, each followed by the verify
suite, and counts the recoveries.
"""

from __future__ import annotations

import os
import random

import pytest
from conftest import MACHINES, PKI_DIR

from playbooks import assert_recap_unchanged, killed_site_yml, leftovers, timed

pytestmark = pytest.mark.rebuild

SEEDS = [int(seed) for seed in os.environ.get("KILL_SEEDS", "1 2").split()]
# About a converge from bare nodes here: the kill lands anywhere in it, or after it.
KILL_WINDOW = (5.0, float(os.environ.get("KILL_WINDOW", "100")))


def kill_moment(seed: int) -> float:
    """Seconds into site.yml; a seed gives the same moment on every machine."""
    return round(random.Random(seed).uniform(*KILL_WINDOW), 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_reset_then_a_build_killed_halfway_is_finished_by_the_next_run(
    cluster: None, testbed_lock: None, seed: int
) -> None:
    ca = (PKI_DIR / "ca.crt").read_bytes()
    timed("playbooks/reset.yml")
    left = {machine.name: leftovers(machine) for machine in MACHINES}
    assert not any(left.values()), left
    assert_recap_unchanged(timed("playbooks/reset.yml"))

    moment = kill_moment(seed)
    print(f"seed {seed}: site.yml killed at {moment}s in {killed_site_yml(moment)}")
    timed("site.yml")
    assert_recap_unchanged(timed("site.yml"))
    # reset.yml keeps the controller's state: the cluster is built again with its own identity.
    assert (PKI_DIR / "ca.crt").read_bytes() == ca
