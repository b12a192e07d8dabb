#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Brings up a local cluster (1 master, 2 minions) on the test bed with site.yml and shows it
# working. The cluster stays up: `.venv/bin/molecule destroy` removes it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

scripts/setup.sh
# shellcheck disable=SC1091
source .venv/bin/activate
tests/testbed/testbed.sh up
# Molecule's record of created nodes can outlive them (a test run tears the test bed down):
# start from the containers that exist. create is idempotent and keeps a running cluster.
flock /tmp/testbed.lock sh -c 'molecule reset --scenario-name default &&
  molecule create --scenario-name default && molecule converge --scenario-name default'

# shellcheck disable=SC1091
. tests/testbed/cluster.env
kubectl() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

echo
kubectl get nodes -o wide
echo
echo "Cross-node pod ping:"
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: demo-a, namespace: default}
spec:
  nodeName: k8s-minion-1
  containers: [{name: box, image: docker.io/scratch-kubernetes/busybox:test, imagePullPolicy: Never, args: [-c, sleep 3600]}]
---
apiVersion: v1
kind: Pod
metadata: {name: demo-b, namespace: default}
spec:
  nodeName: k8s-minion-2
  containers: [{name: box, image: docker.io/scratch-kubernetes/busybox:test, imagePullPolicy: Never, args: [-c, sleep 3600]}]
YAML
kubectl wait --for=condition=Ready pod/demo-a pod/demo-b --timeout=120s >/dev/null
target=$(kubectl get pod demo-b -o jsonpath='{.status.podIP}')
kubectl get pods -o wide
kubectl exec demo-a -- ping -c 3 "$target"
kubectl delete pod demo-a demo-b --wait=false >/dev/null
echo
echo "The cluster is up. kubectl: $KUBECTL --kubeconfig $ADMIN_KUBECONFIG"
