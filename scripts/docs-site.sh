#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the collection's docs site offline: one HTML page per module, filter and role, made by
# antsibull-docs from the plugins' DOCUMENTATION and the roles' meta/argument_specs.yml, then Sphinx.
#
#   scripts/docs-site.sh            into build/docs (ignored by git)
#   scripts/docs-site.sh DIR        into DIR; open DIR/index.html
#
# Needs the .venv and the collection link made by scripts/setup.sh. DIR is replaced as a whole, so
# it must be missing, empty or an earlier build of this script.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
collections="$repo/.cache/collections"
if [ ! -x "$venv/bin/antsibull-docs" ] || [ ! -e "$collections/ansible_collections/scratch/kubernetes/galaxy.yml" ]; then
  echo "docs-site.sh: the .venv or the collection link is missing; run scripts/setup.sh first" >&2
  exit 2
fi
dest=$(realpath -m "${1:-$repo/build/docs}")
if [ -d "$dest" ] && [ -n "$(ls -A "$dest")" ] && [ ! -e "$dest/.buildinfo" ]; then
  echo "docs-site.sh: $dest holds files that are no docs build of this script; name another directory" >&2
  exit 2
fi
export PATH="$venv/bin:$PATH"
# --use-current documents the collection where Ansible finds it: the link in .cache/collections.
export ANSIBLE_COLLECTIONS_PATH="$collections"

# antsibull-docs wants its directories writable by their owner only; mktemp -d makes them so.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error --dest-dir "$work" \
  --project scratch.kubernetes --copyright "scratch.kubernetes developers" \
  --title "scratch.kubernetes" --html-short-title "scratch.kubernetes" scratch.kubernetes >/dev/null
# Offline, Sphinx cannot fetch the inventories of docs.ansible.com and docs.python.org: no
# intersphinx, and the links into Ansible's own docs (common return values, ansible.builtin
# modules) stay plain text instead of warnings. The collection's own references are checked by
# `antsibull-docs lint-collection-docs` (scripts/lint.sh antsibull-docs); any other warning fails.
cat >>"$work/conf.py" <<'EOF'

# Added by scripts/docs-site.sh: an offline build.
intersphinx_mapping = {}
suppress_warnings = ['ref.ref']
EOF

mkdir -p "$work/rst"
antsibull-docs --config-file "$work/antsibull-docs.cfg" collection --use-current --squash-hierarchy \
  --fail-on-error --cleanup everything --dest-dir "$work/rst" scratch.kubernetes >/dev/null
sphinx-build --quiet --fail-on-warning --keep-going -b html -d "$work/doctrees" -c "$work" "$work/rst" "$work/html"

# antsibull-docs leaves out, without a word, a role whose meta/argument_specs.yml does not parse:
# every role, module and documented filter must have its page.
missing=()
for path in "$repo"/roles/*/ "$repo"/plugins/modules/*.py "$repo"/plugins/filter/*.yml; do
  case "$path" in
    */roles/*) page="$(basename "$path")_role.html" ;;
    */modules/*) page="$(basename "$path" .py)_module.html" ;;
    *) page="$(basename "$path" .yml)_filter.html" ;;
  esac
  [ -e "$work/html/$page" ] || missing+=("$page")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "docs-site.sh: pages missing from the site: ${missing[*]}" >&2
  exit 1
fi

rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
cp -a "$work/html" "$dest"
echo "docs-site.sh: $dest/index.html"
