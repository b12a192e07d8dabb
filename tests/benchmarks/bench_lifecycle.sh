#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Day-2 benchmark on the test bed, warm caches: wall time of each lifecycle playbook, and of
# adding one node to a 3-node and to a 6-node cluster (the goal: under 60 s whatever the size).
#
#   tests/benchmarks/bench_lifecycle.sh
#
# Fresh node containers (the molecule create playbook, seven machines), site.yml on
# k8s-master-1 + k8s-minion-1..2, then: add k8s-minion-3 (3 -> 4 nodes), remove it, back up,
# restore, add k8s-minion-3..5 in one run (3 -> 6), add k8s-minion-6 (6 -> 7), reset every node.
# Prints one line per step. Asserts nothing (the molecule scenario tests behaviour). Leaves the
# nodes reset; `tests/testbed/testbed.sh down` removes them. Holds /tmp/testbed.lock.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# shellcheck disable=SC1091
source .venv/bin/activate
logs=$(mktemp -d "${TMPDIR:-/tmp}/bench-lifecycle.XXXXXX")
results=()

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Wall seconds of "$@", its output kept in $logs/<step>.log; a failed step stops the benchmark.
timed() {
  local name=$1 start rc=0 seconds
  shift
  log "$name: $*"
  start=$(date +%s.%N)
  "$@" 9>&- >"$logs/$name.log" 2>&1 || rc=$?
  seconds=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)")
  if [ "$rc" -ne 0 ]; then
    log "$name failed ($rc); the last lines of $logs/$name.log:"
    tail -n 40 "$logs/$name.log" >&2
    exit "$rc"
  fi
  results+=("$(printf '  %-44s %8ss' "$name" "$seconds")")
}

# An inventory that adds the named machines to the minions of inventory/testbed; k8s-minion-N
# has the address 172.31.250.(11+N), as the create playbook below gives it.
minions() {
  local file
  file=$logs/minions-$(echo "$@" | tr ' ' '-').yml
  python3 - "$file" "$@" <<'PY'
import sys, yaml
path, *names = sys.argv[1:]
hosts = {name: {"ansible_host": f"172.31.250.{11 + int(name.rsplit('-', 1)[1])}"} for name in names}
yaml.safe_dump({"all": {"children": {"minions": {"hosts": hosts}}}}, open(path, "w"))
PY
  echo "$file"
}

exec 9>/tmp/testbed.lock
log "waiting for /tmp/testbed.lock"
flock 9

platforms=$(python3 - <<'PY'
import json
names = ["k8s-master-1"] + [f"k8s-minion-{i}" for i in range(1, 7)]
print(json.dumps({"molecule_yml": {"platforms": [
    {"name": name, "networks": [{"ipv4_address": f"172.31.250.{11 + i}"}]} for i, name in enumerate(names)
]}}))
PY
)
export MOLECULE_PROJECT_DIRECTORY=$repo MOLECULE_SCENARIO_NAME=bench-lifecycle
timed "test bed down (clean start)" tests/testbed/testbed.sh down
rm -rf "$HOME/.scratch-kubernetes/testbed"
timed "node containers (7)" ansible-playbook molecule/resources/create.yml -e "$platforms"

play() { ansible-playbook -i inventory/testbed "$@"; }
timed "site.yml, 3 nodes (converge)" play site.yml
timed "add_node.yml, 3 nodes + 1" play -i "$(minions k8s-minion-3)" playbooks/add_node.yml -e node=k8s-minion-3
timed "remove_node.yml, 4 nodes - 1" play -i "$(minions k8s-minion-3)" playbooks/remove_node.yml -e node=k8s-minion-3
timed "backup.yml" play playbooks/backup.yml
archive=$(sed -n 's/.*Backup written: \([^" ]*\.tar\.gz\).*/\1/p' "$logs/backup.yml.log" | tail -n 1)
timed "restore.yml" play playbooks/restore.yml -e "backup=$archive"
six=$(minions k8s-minion-3 k8s-minion-4 k8s-minion-5)
timed "add_node.yml, 3 nodes + 3" play -i "$six" playbooks/add_node.yml -e node=k8s-minion-3,k8s-minion-4,k8s-minion-5
seven=$(minions k8s-minion-3 k8s-minion-4 k8s-minion-5 k8s-minion-6)
timed "add_node.yml, 6 nodes + 1" play -i "$seven" playbooks/add_node.yml -e node=k8s-minion-6
timed "reset.yml, 7 nodes" play -i "$seven" playbooks/reset.yml

echo "lifecycle benchmark ($(git rev-parse --short HEAD), $(nproc) cores), logs in $logs"
printf '%s\n' "${results[@]}"
