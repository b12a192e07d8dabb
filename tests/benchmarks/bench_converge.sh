#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Converge benchmark of the molecule scenario `default` (1 master + 2 minions) on warm caches.
#
#   tests/benchmarks/bench_converge.sh
#
# Fresh nodes (molecule destroy + create), then a full converge and a no-op rerun, each timed;
# prints both wall times and the ten slowest tasks of each run as the ansible.posix.profile_tasks
# callback reports them. Asserts nothing (the idempotence check is molecule's). The cluster is
# left up. Warm caches: the downloaded artifacts and the node image outlive `molecule destroy`.
# Holds /tmp/testbed.lock, like every other user of the test bed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
# shellcheck disable=SC1091
source .venv/bin/activate
logs=$(mktemp -d "${TMPDIR:-/tmp}/bench-converge.XXXXXX")

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Wall seconds of "$@", its output kept in $logs/$name.log; a failed step stops the benchmark.
timed() {
  local name=$1 start rc=0
  shift
  log "$name: $*"
  start=$(date +%s.%N)
  # Close the lock for the children: a daemon started on the way (dockerd, the mirror) must not keep it.
  "$@" 9>&- >"$logs/$name.log" 2>&1 || rc=$?
  python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$(date +%s.%N)" \
    >"$logs/$name.seconds"
  if [ "$rc" -ne 0 ]; then
    log "$name failed ($rc); the last lines of $logs/$name.log:"
    tail -n 40 "$logs/$name.log" >&2
    exit "$rc"
  fi
}

# The ten slowest tasks from the TASKS RECAP that profile_tasks prints after the PLAY RECAP.
# Molecule frames ansible's output ("  │ " before each line) and wraps long lines, indenting
# the continuation: undo both before reading the "<task> ---- 1.23s" rows.
slowest() {
  python3 - "$1" <<'PY'
import re, sys

text = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[1], errors="replace").read())
_, found, recap = text.rpartition("TASKS RECAP")
if not found:
    sys.exit("  (no TASKS RECAP in the output: is ansible.posix.profile_tasks enabled?)")
lines: list[str] = []
for raw in recap.splitlines():
    line = re.sub(r"^\s*\u2502 ?", "", raw).rstrip()
    if line.startswith("  ") and lines:
        lines[-1] += " " + line.strip()
    else:
        lines.append(line)
rows = [m.groups() for line in lines if (m := re.fullmatch(r"(.*?) -*\s*(\d+\.\d\d)s", line))]
for name, seconds in rows[:10]:
    print(f"  {float(seconds):8.2f}s  {name}")
PY
}

exec 9>/tmp/testbed.lock
log "waiting for /tmp/testbed.lock"
flock 9

timed testbed-up tests/testbed/testbed.sh up
timed destroy molecule destroy
timed create molecule create
timed converge molecule converge
timed rerun molecule converge

echo "converge benchmark, scenario default ($(git rev-parse --short HEAD), $(nproc) cores), logs in $logs"
printf '  %-34s %8ss\n' \
  "molecule create (fresh nodes)" "$(cat "$logs/create.seconds")" \
  "molecule converge (full)" "$(cat "$logs/converge.seconds")" \
  "molecule converge (no-op rerun)" "$(cat "$logs/rerun.seconds")"
echo "ten slowest tasks, full converge:"
slowest "$logs/converge.log"
echo "ten slowest tasks, no-op rerun:"
slowest "$logs/rerun.log"
