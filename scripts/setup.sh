#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One-time (and idempotent) set-up of a development machine: a virtual environment with
# the pinned tool chain in .venv, and the collection reachable as scratch.kubernetes
# from the work tree (ansible.cfg points collections_path at .cache/collections).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

venv=.venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r requirements-dev.txt
  echo "$want" >"$stamp"
fi

link=.cache/collections/ansible_collections/scratch/kubernetes
mkdir -p "$(dirname "$link")"
[ -L "$link" ] || ln -s "$repo" "$link"
echo "ready: source $venv/bin/activate"
