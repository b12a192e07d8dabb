#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every test of the project, as CI runs them: lint and sanity, unit and module tests, then a
# real cluster on the local test bed for each molecule scenario (create, converge, idempotence,
# verify, destroy): `default` (1 master, 2 minions), `ha` (3 masters, 1 minion),
# `dedicated-etcd` (1 master, 1 minion, 3 etcd machines) and `guide` (1 master whose kubelet runs
# the control plane as static pods, 1 minion).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate

step() { printf '\n=== %s ===\n' "$*"; }

step "lint and sanity"
scripts/lint.sh

step "unit and module tests"
python -m pytest tests/unit tests/modules

step "test bed: engine, node image, release mirror, sealed network"
tests/testbed/testbed.sh up

# Serialised with any other run against the test bed (bench_converge.sh, a demo).
for scenario in default ha dedicated-etcd guide; do
  step "molecule $scenario: a real cluster from bare nodes"
  flock /tmp/testbed.lock molecule test --scenario-name "$scenario"
done

# The default scenario's verify starts by resetting the nodes and rebuilding the cluster in a run
# killed at a random moment, for two seeds (test_rebuild.py); tests/benchmarks/bench_kill_rerun.sh
# runs it for many seeds, by hand.
