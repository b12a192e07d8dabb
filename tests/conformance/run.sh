#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the upstream Kubernetes [Conformance] tests, as built by tests/conformance/build.sh, against
# the test bed's `default` cluster: imports the built test images into every node's containerd,
# runs e2e.test under ginkgo in parallel within a bounded wall time, writes a JUnit report and
# prints the passed / failed / skipped counts and the names of the failures. Not run by CI: it
# takes about an hour. It holds /tmp/testbed.lock from the image import to the summary.
#
#   tests/conformance/run.sh              import, run, summarize (exit 1 if any test failed)
#   tests/conformance/run.sh --dry-run    what the focus and skip list select; no cluster, no lock
#   tests/conformance/run.sh --summary D  the summary of the run reported in directory D again
#
# Settings (environment):
#   CONFORMANCE_MINUTES=60     ginkgo's --timeout for the whole suite; specs not finished by then
#                              are reported as interrupted (the script itself stops 10 min later)
#   CONFORMANCE_PROCS=4        ginkgo parallel processes; [Serial] tests run after, on one process
#   CONFORMANCE_FOCUS          regular expression of the tests to run (default: \[Conformance\])
#   CONFORMANCE_SKIP           an extra regular expression of tests to skip, beside the image list
#   CONFORMANCE_REPORT_DIR     where junit.xml, e2e.log and summary.txt go
#                              (default: $CONFORMANCE_ROOT/runs/<UTC date and time>)
#   CONFORMANCE_NODES          the node containers to import the images into (default: the
#                              cluster's node names, which are the test bed's container names)
#   CONFORMANCE_ROOT           build.sh's output (default ~/.cache/scratch-kubernetes/conformance/<kube_version>)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091
. "$here/../testbed/cluster.env"
cache=${SCRATCH_CACHE:-$HOME/.cache/scratch-kubernetes}
CONFORMANCE_ROOT=${CONFORMANCE_ROOT:-$cache/conformance/$KUBE_VERSION}
minutes=${CONFORMANCE_MINUTES:-60}
procs=${CONFORMANCE_PROCS:-4}
focus=${CONFORMANCE_FOCUS:-'\[Conformance\]'}
extra_skip=${CONFORMANCE_SKIP:-}
bin=$CONFORMANCE_ROOT/bin
images=$CONFORMANCE_ROOT/images
skip_list=$here/skip-images.tsv
lock=/tmp/testbed.lock

log() { printf '[conformance %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "$*"; exit 2; }

# The summary of a JUnit report: counts of the [Conformance] tests, the skip list's names apart.
summarize() {
  local report=$1 dry_run=${2:-false}
  python3 - "$report" "$dry_run" "$report_dir/skipped-by-image.txt" <<'PY'
import sys
import xml.etree.ElementTree as ET

report, dry_run, skipped_file = sys.argv[1], sys.argv[2] == "true", sys.argv[3]
try:
    skipped_names = [line.rstrip("\n") for line in open(skipped_file) if line.strip()]
except FileNotFoundError:
    skipped_names = []
counts = {"passed": 0, "failed": 0, "interrupted": 0, "skipped by the image list": 0,
          "skipped by the test": 0, "not run": 0}
failures, interrupted = [], []
for case in ET.parse(report).getroot().iter("testcase"):
    name = case.get("name", "")
    if not name.startswith("[It] ") or "[Conformance]" not in name:
        continue
    name = name[len("[It] "):]
    status = case.get("status", "")
    skipped = case.find("skipped")
    if status == "passed":
        counts["passed"] += 1
    elif status in ("failed", "timedout", "panicked", "aborted"):
        counts["failed"] += 1
        failures.append(f"{name} ({status})")
    elif status == "interrupted":
        counts["interrupted"] += 1
        interrupted.append(name)
    elif any(name == s or name.startswith(s + " ") for s in skipped_names):
        counts["skipped by the image list"] += 1
    elif skipped is not None and skipped.get("message", "skipped") != "skipped":
        counts["skipped by the test"] += 1
    else:  # the time limit ran out first, or CONFORMANCE_SKIP named it
        counts["not run"] += 1
if dry_run:
    print(f"selected: {counts['passed']} [Conformance] tests; skipped by the image list: "
          f"{counts['skipped by the image list']}; not selected otherwise: {counts['not run']}")
    sys.exit(0)
for key, value in counts.items():
    note = " (the time limit ran out first, or CONFORMANCE_SKIP named them)" if key == "not run" else ""
    print(f"  {key}: {value}{note}")
if failures:
    print("Failed:")
    for name in sorted(failures):
        print(f"  {name}")
if interrupted:
    print("Interrupted (the time limit):")
    for name in sorted(interrupted):
        print(f"  {name}")
skipped = counts["skipped by the image list"] + counts["skipped by the test"]
print(f"conformance: {counts['passed']} passed, {counts['failed'] + counts['interrupted']} failed, {skipped} skipped")
sys.exit(1 if failures or interrupted or counts["not run"] else 0)
PY
}

mode=run
case ${1:-} in
  --dry-run) mode=dry-run ;;
  --summary)
    [ -n "${2:-}" ] || die "usage: $0 --summary REPORT_DIR"
    report_dir=$2
    summarize "$report_dir/junit.xml"
    exit
    ;;
  "") ;;
  *) die "usage: $0 [--dry-run | --summary REPORT_DIR]" ;;
esac

for f in "$bin/e2e.test" "$bin/ginkgo" "$images/index.tsv"; do
  [ -e "$f" ] || die "$f is missing: run tests/conformance/build.sh first"
done
report_dir=${CONFORMANCE_REPORT_DIR:-$CONFORMANCE_ROOT/runs/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$report_dir"

# The skip list: every test of skip-images.tsv one of whose images was not built.
regex_escape() { sed 's/[][(){}.*+?^$|\\]/\\&/g'; }
: >"$report_dir/skipped-by-image.txt"
while IFS=$'\t' read -r image name; do
  case $image in '' | '#'*) continue ;; esac
  if ! cut -f1 "$images/index.tsv" | grep -qxF "$image"; then
    printf '%s\n' "$name" >>"$report_dir/skipped-by-image.txt"
  fi
done <"$skip_list"
sort -u -o "$report_dir/skipped-by-image.txt" "$report_dir/skipped-by-image.txt"
skip=$(regex_escape <"$report_dir/skipped-by-image.txt" | sed 's/$/( |$)/' | paste -sd'|')
if [ -n "$extra_skip" ]; then skip=${skip:+$skip|}$extra_skip; fi
log "skipping the tests of $(wc -l <"$report_dir/skipped-by-image.txt") names in skip-images.tsv (an image not built, or a registry)"

ginkgo_args=(--focus="$focus" --no-color --junit-report=junit.xml --output-dir="$report_dir")
if [ -n "$skip" ]; then ginkgo_args+=(--skip="$skip"); fi

if [ "$mode" = dry-run ]; then
  "$bin/ginkgo" --dry-run "${ginkgo_args[@]}" --silence-skips "$bin/e2e.test" -- \
    --kubeconfig=/dev/null >"$report_dir/dry-run.log" 2>&1 || die "dry run failed; see $report_dir/dry-run.log"
  summarize "$report_dir/junit.xml" true
  exit
fi

# The test bed's lock, held by this shell (and what it runs) until it exits.
exec {lock_fd}>>"$lock"
if ! flock -n "$lock_fd"; then
  log "waiting for $lock (another test-bed run holds it)"
  flock "$lock_fd"
fi

kubectl() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
if [ -n "${CONFORMANCE_NODES:-}" ]; then
  read -ra nodes <<<"$CONFORMANCE_NODES"
else
  mapfile -t nodes < <(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
fi
[ "${#nodes[@]}" -gt 0 ] || die "the cluster has no nodes (is the default cluster up?)"
log "nodes: ${nodes[*]}"

# Images into each node's containerd, as the containerd role imports the release's images. Every
# time: an image rebuilt since the last run replaces the one under its name.
start=$(date +%s)
for node in "${nodes[@]}"; do
  while IFS=$'\t' read -r ref file; do
    log "importing $ref into $node"
    docker exec -i "$node" ctr --namespace k8s.io images import - <"$images/$file" >/dev/null ||
      die "could not import $ref into node container $node"
  done <"$images/index.tsv"
done
log "images ready on ${#nodes[@]} nodes in $(($(date +%s) - start))s"

log "running $focus with $procs processes for at most $minutes min; report in $report_dir"
start=$(date +%s)
status=0
timeout --kill-after=2m "$((minutes + 10))m" "$bin/ginkgo" "${ginkgo_args[@]}" --procs="$procs" \
  --timeout="${minutes}m" --silence-skips "$bin/e2e.test" -- \
  --kubeconfig="$ADMIN_KUBECONFIG" --kubectl-path="$KUBECTL" --provider=skeleton \
  --report-dir="$report_dir" >"$report_dir/e2e.log" 2>&1 || status=$?
wall=$(($(date +%s) - start))
log "ginkgo exited with $status after ${wall}s (log: $report_dir/e2e.log)"
[ -f "$report_dir/junit.xml" ] || die "no JUnit report was written; see $report_dir/e2e.log"
echo "e2e v$KUBE_VERSION, $procs processes, wall time ${wall}s, ginkgo exit status $status" >"$report_dir/summary.txt"
summary_status=0
summarize "$report_dir/junit.xml" >>"$report_dir/summary.txt" || summary_status=$?
cat "$report_dir/summary.txt"
[ "$status" -eq 0 ] && [ "$summary_status" -eq 0 ]
