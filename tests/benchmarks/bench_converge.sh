#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Converge benchmark on the test bed, warm caches: site.yml from bare nodes and a no-op rerun, at
# 3 nodes (1 master + 2 minions) and at 10 (1 + 9), over SSH (as operators reach their machines:
# ControlPersist and pipelining on) and over the docker connection; and, when Mitogen is
# installed in .venv (pip install mitogen), the no-op reruns under its strategy.
#
#   tests/benchmarks/bench_converge.sh
#
# Ten fresh node containers (the molecule create playbook); between rows, reset.yml returns the
# nodes to bare (the controller's state stays, as in an operator's rebuild). Prints the wall times,
# the 10-node / 3-node ratios, and the ten slowest tasks of the 3-node runs over SSH as
# ansible.posix.profile_tasks reports them. Asserts nothing (molecule tests behaviour). Leaves a
# 10-node cluster; `tests/testbed/testbed.sh down` removes it. Holds /tmp/testbed.lock.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# shellcheck disable=SC1091
source .venv/bin/activate
logs=$(mktemp -d "${TMPDIR:-/tmp}/bench-converge.XXXXXX")
declare -A seconds

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Wall seconds of "$@" into seconds[$name], output in $logs/$name.log; a failure stops the benchmark.
timed() {
  local name=$1 start rc=0
  shift
  log "$name"
  start=$(date +%s.%N)
  "$@" 9>&- >"$logs/$name.log" 2>&1 || rc=$?
  seconds[$name]=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" \
    "$start" "$(date +%s.%N)")
  if [ "$rc" -ne 0 ]; then
    log "$name failed ($rc); the last lines of $logs/$name.log:"
    tail -n 40 "$logs/$name.log" >&2
    exit "$rc"
  fi
}

# The ten slowest tasks from the TASKS RECAP that profile_tasks prints after the PLAY RECAP.
slowest() {
  python3 - "$1" <<'PY'
import re, sys

text = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[1], errors="replace").read())
_, found, recap = text.rpartition("TASKS RECAP")
if not found:
    sys.exit("  (no TASKS RECAP in the output: is ansible.posix.profile_tasks enabled?)")
rows = [m.groups() for line in recap.splitlines() if (m := re.fullmatch(r"(.*?) -*\s*(\d+\.\d\d)s", line.strip()))]
for name, secs in rows[:10]:
    print(f"  {float(secs):8.2f}s  {name}")
PY
}

# This machine's CPU is shared, and its speed moved by a factor of two within an hour on some days:
# a fixed pure-Python loop, timed before and after, tells runs on a fast day from runs on a slow one.
calibrate() {
  python3 -c 'import time
start = time.process_time()
total = 0
for i in range(10_000_000):
    total += i
print(f"{time.process_time() - start:.2f}")'
}

exec 9>/tmp/testbed.lock
log "waiting for /tmp/testbed.lock"
flock 9
calibration_before=$(calibrate)

# Every kubelet and containerd of a node container takes inotify instances from this host's
# per-user limit (128 by default), which ten nodes exhaust; put it back afterwards.
inotify=$(sysctl -n fs.inotify.max_user_instances)
trap 'sysctl -qw fs.inotify.max_user_instances=$inotify' EXIT
sysctl -qw fs.inotify.max_user_instances=8192

names=(k8s-master-1 k8s-minion-{1..9})
platforms=$(python3 - "${names[@]}" <<'PY'
import json, sys
print(json.dumps({"molecule_yml": {"platforms": [
    {"name": name, "networks": [{"ipv4_address": f"172.31.250.{11 + i}"}]} for i, name in enumerate(sys.argv[1:])
]}}))
PY
)
# inventory/testbed holds the first three; this adds the other seven as minions.
ten=$logs/ten.yml
python3 - "$ten" "${names[@]:3}" <<'PY'
import sys, yaml
path, *names = sys.argv[1:]
hosts = {name: {"ansible_host": f"172.31.250.{11 + int(name.rsplit('-', 1)[1])}"} for name in names}
yaml.safe_dump({"all": {"children": {"minions": {"hosts": hosts}}}}, open(path, "w"))
PY

export MOLECULE_PROJECT_DIRECTORY=$repo MOLECULE_SCENARIO_NAME=bench-converge
timed testbed-down tests/testbed/testbed.sh down
timed testbed-up tests/testbed/testbed.sh up
timed create ansible-playbook molecule/resources/create.yml -e "$platforms"

three=(-i inventory/testbed)
tens=(-i inventory/testbed -i "$ten")
mitogen=$(python3 -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__))' 2>/dev/null || true)

# One row: converge from bare, then a no-op rerun (and the rerun under Mitogen over SSH).
row() {
  local connection=$1 size=$2
  shift 2
  TESTBED_CONNECTION=$connection timed "$connection-$size-converge" ansible-playbook "$@" site.yml
  TESTBED_CONNECTION=$connection timed "$connection-$size-noop" ansible-playbook "$@" site.yml
  if [ -n "$mitogen" ] && [ "$connection" = ssh ]; then
    ANSIBLE_STRATEGY_PLUGINS=$mitogen/plugins/strategy ANSIBLE_STRATEGY=mitogen_linear \
      timed "mitogen-$size-noop" ansible-playbook "$@" site.yml
  fi
}

docker=community.docker.docker
row ssh 3 "${three[@]}"
timed reset-3 ansible-playbook "${three[@]}" playbooks/reset.yml
row ssh 10 "${tens[@]}"
timed reset-10 ansible-playbook "${tens[@]}" playbooks/reset.yml
row "$docker" 3 "${three[@]}"
timed reset-3-again ansible-playbook "${three[@]}" playbooks/reset.yml
row "$docker" 10 "${tens[@]}"

ratio() { python3 -c "import sys; print(f'{float(sys.argv[2]) / float(sys.argv[1]):.2f}')" "$1" "$2"; }
echo "converge benchmark ($(git rev-parse --short HEAD), $(nproc) cores), logs in $logs"
echo "  CPU calibration (10 million additions in Python, CPU seconds): $calibration_before before, $(calibrate) after"
printf '  %-36s %10s %10s\n' "" "converge" "no-op"
for connection in ssh "$docker"; do
  for size in 3 10; do
    printf '  %-36s %9ss %9ss\n' "$connection, $size nodes" \
      "${seconds[$connection-$size-converge]}" "${seconds[$connection-$size-noop]}"
  done
  printf '  %-36s %10s %10s\n' "$connection, 10 / 3" \
    "$(ratio "${seconds[$connection-3-converge]}" "${seconds[$connection-10-converge]}")" \
    "$(ratio "${seconds[$connection-3-noop]}" "${seconds[$connection-10-noop]}")"
done
if [ -n "$mitogen" ]; then
  printf '  %-36s %10s %9ss\n' "ssh + mitogen, 3 nodes" "" "${seconds[mitogen-3-noop]}"
  printf '  %-36s %10s %9ss\n' "ssh + mitogen, 10 nodes" "" "${seconds[mitogen-10-noop]}"
fi
echo "ten slowest tasks, ssh, 3 nodes, converge:"
slowest "$logs/ssh-3-converge.log"
echo "ten slowest tasks, ssh, 3 nodes, no-op:"
slowest "$logs/ssh-3-noop.log"
