#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The collection's quality gates, in one run: ruff (lint + format), yamllint, ansible-lint
# (production profile), mypy on module_utils, ansible-test sanity, antsibull-docs (the plugins' and
# roles' documentation as the Ansible docsite renders it). Every gate runs even when an earlier one
# failed, so one run lists all findings; the exit status is non-zero if any failed.
#
#   scripts/lint.sh            all gates
#   scripts/lint.sh ruff mypy  only the named gates (ruff yamllint ansible-lint mypy sanity antsibull-docs)
#
# Needs the .venv made by scripts/setup.sh. ansible-test sanity uses the local Python 3.11 and
# the package index only (no containers, no other downloads).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
if [ ! -x "$venv/bin/ansible-test" ]; then
  echo "lint.sh: $venv is missing or incomplete; run scripts/setup.sh first" >&2
  exit 2
fi
# The tools run each other by name (ansible-lint runs ansible-playbook, ansible-test runs ansible-doc).
export PATH="$venv/bin:$PATH"
cd "$repo"

# A gate runs as an `if` condition, where `set -e` is off: each one returns its status itself.
gate_ruff() {
  local status=0
  ruff check plugins tests molecule || status=1
  ruff format --check plugins tests molecule || status=1
  return "$status"
}

gate_yamllint() {
  yamllint --strict -c "$repo/.yamllint" .
}

gate_ansible_lint() {
  # Settings in .ansible-lint (production profile, offline); ANSIBLE_CONFIG makes sure the
  # repository's ansible.cfg (collections_path=.cache/collections) is the one in force.
  ANSIBLE_CONFIG="$repo/ansible.cfg" ansible-lint --nocolor
}

gate_mypy() {
  mypy plugins/module_utils
}

# ansible-test's sanity virtual environments bootstrap pip with a get-pip script that it
# downloads from a host outside the package registries. This stand-in, put where ansible-test
# looks for its cached copy, installs the pip wheel bundled with Python and lets that pip
# fetch the wanted version from the package index.
install_get_pip_stand_in() {
  local version cache
  version=$(python -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3.11"))["pip"])') || return 1
  cache="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
  [ -e "$cache" ] && return 0
  mkdir -p "$(dirname "$cache")" || return 1
  cat >"$cache.tmp" <<'EOF'
# Stand-in for ansible-test's get-pip bootstrap script, written by scripts/lint.sh of
# scratch.kubernetes: only package registries are reachable. ensurepip runs in a child process
# because it blanks the pip configuration (PIP_CONFIG_FILE, with the CA bundle) of its caller.
import subprocess
import sys

own_flags = {"--no-setuptools", "--no-wheel"}
subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True)
subprocess.run([sys.executable, "-m", "pip", "install", *[a for a in sys.argv[1:] if a not in own_flags]], check=True)
if "--no-setuptools" in sys.argv:
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"], check=True)
EOF
  mv "$cache.tmp" "$cache" || return 1
}

gate_sanity() {
  install_get_pip_stand_in || return 1
  # ansible-test wants the collection at .../ansible_collections/<namespace>/<name>. A copy of
  # the files git knows (tracked, or new and not ignored) keeps .venv, .cache and build output out.
  local tmp dest status=0
  tmp=$(mktemp -d)
  dest="$tmp/ansible_collections/scratch/kubernetes"
  mkdir -p "$dest"
  git ls-files -z --cached --others --exclude-standard \
    | (while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done) \
    | tar -cf - --null -T - | tar -xf - -C "$dest" || { rm -rf "$tmp"; return 1; }
  # The shellcheck sanity test runs only where the Debian package shellcheck is installed; elsewhere
  # ansible-test skips it with a warning.
  (cd "$dest" && ansible-test sanity --python 3.11 --color no) || status=$?
  rm -rf "$tmp"
  return "$status"
}

# Every module's, filter's and role's documentation: its schema, its markup (C(), O(), M(), ...) and
# the references in it, to this collection and to ansible.builtin, and the RST made from it.
gate_antsibull_docs() {
  antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs dependent \
    --disallow-unknown-collection-refs .
}

all_gates=(ruff yamllint ansible-lint mypy sanity antsibull-docs)
if [ $# -gt 0 ]; then gates=("$@"); else gates=("${all_gates[@]}"); fi

failed=()
for gate in "${gates[@]}"; do
  case " ${all_gates[*]} " in
    *" $gate "*) ;;
    *) echo "lint.sh: unknown gate '$gate' (known: ${all_gates[*]})" >&2; exit 2 ;;
  esac
  echo "=== $gate"
  if ! "gate_${gate//-/_}"; then
    echo "=== $gate: FAILED"
    failed+=("$gate")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint.sh: failed gates: ${failed[*]}" >&2
  exit 1
fi
echo "lint.sh: all gates passed (${gates[*]})"
