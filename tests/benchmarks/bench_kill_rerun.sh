#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Crash recovery on the test bed: for each seed, site.yml builds the cluster from bare nodes and
# is killed (SIGKILL, with every process it started on the controller) at a random moment; then
# site.yml runs again, a third run must change nothing, and the verify suite checks the cluster.
#
#   tests/benchmarks/bench_kill_rerun.sh [SEEDS [FIRST_SEED]]     (default 10 seeds, from 1)
#
# The moment of the kill is drawn from the seed, uniformly in [5 s, KILL_WINDOW] (default 100 s,
# about a converge here), so a seed gives the same moment on every machine. VERIFY selects the
# verify tests (default: every test that only looks; "quick" for test_cluster.py alone). Prints
# one line per seed and "k/N recovered". Fresh node containers at the start (the default
# scenario's three); the nodes are reset between seeds; the cluster of the last seed is left up.
# Holds /tmp/testbed.lock.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# shellcheck disable=SC1091
source .venv/bin/activate
seeds=${1:-10}
first=${2:-1}
window=${KILL_WINDOW:-100}
tests=(molecule/default/tests -m "not upgrade and not last and not lifecycle")
[ "${VERIFY:-}" != quick ] || tests=(molecule/default/tests/test_cluster.py)
logs=$(mktemp -d "${TMPDIR:-/tmp}/bench-kill-rerun.XXXXXX")

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
play() { ansible-playbook -i inventory/testbed "$@"; }
# The sum of the changed= counts of a run's PLAY RECAP.
changed_total() { awk -F'changed=' 'NF > 1 { split($2, count, " "); total += count[1] } END { print total + 0 }' "$1"; }

exec 9>/tmp/testbed.lock
log "waiting for /tmp/testbed.lock"
flock 9

export MOLECULE_PROJECT_DIRECTORY=$repo MOLECULE_SCENARIO_NAME=default
tests/testbed/testbed.sh down 9>&- >"$logs/testbed.log" 2>&1
tests/testbed/testbed.sh up 9>&- >>"$logs/testbed.log" 2>&1
platforms=$(python3 -c 'import json, yaml; print(json.dumps({"molecule_yml": yaml.safe_load(open("molecule/default/molecule.yml"))}))')
ansible-playbook molecule/resources/create.yml -e "$platforms" 9>&- >"$logs/create.log" 2>&1

recovered=0
lines=()
for seed in $(seq "$first" $((first + seeds - 1))); do
  delay=$(python3 -c "import random, sys; print(f'{random.Random(int(sys.argv[1])).uniform(5, float(sys.argv[2])):.1f}')" "$seed" "$window")
  log "seed $seed: reset, then site.yml killed after ${delay}s"
  play playbooks/reset.yml 9>&- >"$logs/$seed-reset.log" 2>&1
  rm -rf "$HOME/.scratch-kubernetes/testbed"
  # A process group of its own, so that the kill reaches every worker and ssh it started.
  setsid ansible-playbook -i inventory/testbed site.yml 9>&- >"$logs/$seed-killed.log" 2>&1 &
  victim=$!
  sleep "$delay"
  last_task=$(grep '^TASK \[' "$logs/$seed-killed.log" | tail -n 1 | sed 's/^TASK \[\(.*\)\] \**$/\1/')
  kill -KILL -- "-$victim" 2>/dev/null || last_task="(finished before the kill)"
  wait "$victim" 2>/dev/null || true
  start=$(date +%s)
  outcome=recovered
  if ! play site.yml 9>&- >"$logs/$seed-rerun.log" 2>&1; then
    outcome="rerun failed"
  elif ! play site.yml 9>&- >"$logs/$seed-noop.log" 2>&1 || [ "$(changed_total "$logs/$seed-noop.log")" != 0 ]; then
    outcome="third run not a no-op"
  elif ! python -m pytest -q -p no:cacheprovider "${tests[@]}" 9>&- >"$logs/$seed-verify.log" 2>&1; then
    outcome="verify failed"
  fi
  seconds=$(($(date +%s) - start))
  [ "$outcome" != recovered ] || recovered=$((recovered + 1))
  lines+=("$(printf '  seed %-3s killed at %6ss in %-70.70s %-22s (rerun+verify %ss)' \
    "$seed" "$delay" "$last_task" "$outcome" "$seconds")")
  log "seed $seed: $outcome"
done

echo "kill-and-rerun benchmark ($(git rev-parse --short HEAD), $(nproc) cores), logs in $logs"
printf '%s\n' "${lines[@]}"
echo "$recovered/$seeds recovered"
[ "$recovered" = "$seeds" ]
