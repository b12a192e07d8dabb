#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Crash recovery on the test bed, seed after seed: test_rebuild.py resets every node, kills
# site.yml (SIGKILL, with every process it started) at a moment drawn from the seed while it
# builds the cluster from bare nodes, runs it again and requires a third run to change nothing;
# then the verify suite checks the cluster. CI's default scenario runs that test for two seeds;
# this is its soak run.
#
#   tests/benchmarks/bench_kill_rerun.sh [SEEDS [FIRST_SEED]]     (default 10 seeds, from 1)
#
# KILL_WINDOW bounds the moment of the kill (default 100 s, about a converge here). VERIFY
# selects the verify tests (default: every test that only looks; "quick" for test_cluster.py
# alone). Brings up the default scenario's cluster first if it is not up, and leaves the cluster
# of the last seed up. Prints one line per seed and "k/N recovered". Holds /tmp/testbed.lock.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# shellcheck disable=SC1091
source .venv/bin/activate
seeds=${1:-10}
first=${2:-1}
suite=molecule/default/tests
tests=("$suite" -m "not rebuild and not upgrade and not last and not lifecycle")
[ "${VERIFY:-}" != quick ] || tests=("$suite/test_cluster.py")
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
# The lock is held by a flock process that stays this script's ancestor, so that the tests it
# runs see it held and do not wait for it (conftest.py's testbed_lock); -o keeps its descriptor
# from the daemons a run leaves behind (ssh's ControlPersist).
if [ -z "${BENCH_KILL_RERUN_LOCKED:-}" ]; then
  log "waiting for /tmp/testbed.lock"
  BENCH_KILL_RERUN_LOCKED=1 exec flock -o /tmp/testbed.lock "$0" "$@"
fi
logs=$(mktemp -d "${TMPDIR:-/tmp}/bench-kill-rerun.XXXXXX")

pytest() { python -m pytest -p no:cacheprovider "$@"; }

tests/testbed/testbed.sh up >"$logs/testbed.log" 2>&1
export MOLECULE_PROJECT_DIRECTORY=$repo MOLECULE_SCENARIO_NAME=default
log "the default scenario's cluster (molecule create and converge)"
{ molecule create -s default && molecule converge -s default; } >"$logs/converge.log" 2>&1

recovered=0
lines=()
for seed in $(seq "$first" $((first + seeds - 1))); do
  log "seed $seed"
  start=$(date +%s)
  outcome=recovered
  if ! KILL_SEEDS=$seed pytest -q -s "$suite/test_rebuild.py" >"$logs/$seed-rebuild.log" 2>&1; then
    outcome="rebuild failed"
  elif ! pytest -q "${tests[@]}" >"$logs/$seed-verify.log" 2>&1; then
    outcome="verify failed"
  fi
  seconds=$(($(date +%s) - start))
  killed=$(grep -o "site.yml killed at .*" "$logs/$seed-rebuild.log" | head -n 1 || true)
  [ "$outcome" != recovered ] || recovered=$((recovered + 1))
  lines+=("$(printf '  seed %-3s %-90.90s %-15s (%ss)' "$seed" "${killed:-(no kill)}" "$outcome" "$seconds")")
  log "seed $seed: $outcome"
done

echo "kill-and-rerun benchmark ($(git rev-parse --short HEAD), $(nproc) cores), logs in $logs"
printf '%s\n' "${lines[@]}"
echo "$recovered/$seeds recovered"
[ "$recovered" = "$seeds" ]
