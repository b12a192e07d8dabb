# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Sourced by tests/testbed/build-mirror.sh and tests/conformance/build.sh: how the test bed builds
# upstream Go modules, said once.

# go_wrapper DIR MODULE VERSION: a module in DIR whose go.mod requires MODULE at VERSION; `go get`
# and `go build` of MODULE's packages then run in DIR.
go_wrapper() {
  local dir=$1 module=$2 version=$3
  mkdir -p "$dir"
  if [ ! -f "$dir/go.mod" ]; then
    (cd "$dir" && go mod init "testbed.local/$(basename "$dir")" >/dev/null 2>&1)
  fi
  (cd "$dir" && go mod edit -require="$module@$version")
}

# kubernetes_wrapper DIR VERSION: go_wrapper of k8s.io/kubernetes at vVERSION. Its go.mod points
# its staging modules at ./staging, which a module download does not have: each is replaced by
# its published v0.Y.Z tag, read from the release's own go.mod.
kubernetes_wrapper() {
  local dir=$1 version=$2 gomod
  go_wrapper "$dir" k8s.io/kubernetes "v$version"
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@v$version" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" | while read -r module; do
    (cd "$dir" && go mod edit -replace="$module=$module@v0.${version#1.}")
  done
}

# kubernetes_ldflags VERSION: the -X flags with which a Kubernetes binary reports vVERSION, as a
# release build sets them (the build date fixed, for reproducible binaries).
kubernetes_ldflags() {
  local version=$1 package=k8s.io/component-base/version minor=${1#*.}
  minor=${minor%%.*}
  echo "-X $package.gitVersion=v$version -X $package.gitMajor=${version%%.*} -X $package.gitMinor=$minor" \
    "-X $package.gitTreeState=clean -X $package.buildDate=1970-01-01T00:00:00Z"
}
