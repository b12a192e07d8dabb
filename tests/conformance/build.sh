#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the upstream Kubernetes conformance suite for kube_version from Go modules (and Debian
# packages), as tests/testbed/build-mirror.sh builds the release itself:
#   bin/e2e.test     k8s.io/kubernetes/test/e2e, compiled with `go test -c`, reporting v<kube_version>
#   bin/ginkgo       the ginkgo CLI at the version k8s.io/kubernetes's go.mod pins (parallel runs)
#   images/*.tar     the test images that can honestly be built here (docker save format, for
#                    `ctr -n k8s.io images import`), listed in images/index.tsv
#   build-times.tsv  seconds and size of each step, as last built
#
#   tests/conformance/build.sh             every step
#   tests/conformance/build.sh e2e images  only the named steps (e2e ginkgo images)
#
# Output: $CONFORMANCE_ROOT (default ~/.cache/scratch-kubernetes/conformance/<kube_version>). Each
# step is built once per version; a rerun only checks stamps. Go builds run under `nice -n 19`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
defaults="$repo/roles/cluster_defaults/defaults/main.yml"
cache=${SCRATCH_CACHE:-$HOME/.cache/scratch-kubernetes}
pin() { sed -n "s/^$1: *\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}$/\\1/p" "$defaults"; }
kube=$(pin kube_version)
CONFORMANCE_ROOT=${CONFORMANCE_ROOT:-$cache/conformance/$kube}
build_root=$cache/build
out=$CONFORMANCE_ROOT

# The same build settings as build-mirror.sh: the Go build cache it filled is reused.
export CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFLAGS=-trimpath
ldflags_strip="-s -w"
log() { printf '[conformance %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
trap 'log "failed (status $?) at line $LINENO: $BASH_COMMAND"' ERR
gobuild() { nice -n 19 go "$@"; }

stamp_ok() { [ -f "$out/stamps/$1" ]; }
stamp() { mkdir -p "$out/stamps"; touch "$out/stamps/$1"; }
# Appends "step seconds size" to build-times.tsv (one line per step, the last build's).
record() {
  local step=$1 seconds=$2 size=$3 file=$out/build-times.tsv
  touch "$file"
  { grep -v "^$step	" "$file" || true; printf '%s\t%s\t%s\n' "$step" "$seconds" "$size"; } >"$file.new"
  mv "$file.new" "$file"
  log "$step: ${seconds}s, $size"
}
size_of() { du -shL "$@" | cut -f1 | paste -sd+; }

# Wrapper modules and Kubernetes' version flags, as build-mirror.sh builds the release.
# shellcheck source=tests/testbed/go-modules.sh
. "$repo/tests/testbed/go-modules.sh"

# The k8s.io/kubernetes source tree of v$kube in the module cache (read-only).
kube_src() {
  [ -f "$build_root/e2e-$kube/go.mod" ] || kubernetes_wrapper "$build_root/e2e-$kube" "$kube"
  (cd "$build_root/e2e-$kube" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
}

build_e2e() {
  local key="e2e-$kube"
  stamp_ok "$key" && return 0
  log "building e2e.test v$kube (the longest step)"
  local start dir=$build_root/e2e-$kube
  start=$(date +%s)
  kubernetes_wrapper "$dir" "$kube"
  # -t: the test/e2e package is built with its _test.go files, whose imports go.sum must cover.
  (cd "$dir" && go get -t "k8s.io/kubernetes/test/e2e@v$kube" >/dev/null)
  local ldflags
  ldflags="$ldflags_strip $(kubernetes_ldflags "$kube")"
  mkdir -p "$out/bin"
  (cd "$dir" && gobuild test -c -vet=off -ldflags "$ldflags" -o "$out/bin/e2e.test.partial" k8s.io/kubernetes/test/e2e)
  mv "$out/bin/e2e.test.partial" "$out/bin/e2e.test"
  record e2e.test "$(($(date +%s) - start))" "$(size_of "$out/bin/e2e.test")"
  stamp "$key"
}

build_ginkgo() {
  local version
  version=$(sed -n 's#^\s*github.com/onsi/ginkgo/v2 \(v[^ ]*\)$#\1#p' "$(kube_src)/go.mod")
  local key="ginkgo-$version"
  stamp_ok "$key" && return 0
  log "building ginkgo $version"
  local start dir=$build_root/ginkgo-$version module=github.com/onsi/ginkgo/v2
  start=$(date +%s)
  mkdir -p "$out/bin"
  go_wrapper "$dir" "$module" "$version"
  (cd "$dir" && go get "$module/ginkgo@$version" >/dev/null &&
    gobuild build -ldflags "$ldflags_strip" -o "$out/bin/ginkgo" "$module/ginkgo")
  record ginkgo "$(($(date +%s) - start))" "$(size_of "$out/bin/ginkgo")"
  stamp "$key"
}

# ---- Test images -----------------------------------------------------------------------------
# Each one is built from its recipe in test/images of the v$kube tree (or build/pause), with the
# tag test/utils/image/manifest.go asks for. Base layers that upstream takes from Alpine or
# Docker Hub come from Debian here; docs/conformance.md lists every difference.
images_dir=$out/images
debian_mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# The tag e2e v$kube expects for an image ID of manifest.go (configs[ID] = Config{..., "name", "tag"}).
e2e_tag() {
  sed -n "s/^\\s*configs\\[$1\\] = Config{list\\.[A-Za-z0-9]*, \"[^\"]*\", \"\\([^\"]*\\)\"}.*/\\1/p" \
    "$(kube_src)/test/utils/image/manifest.go"
}

# index_add REF FILE: images/index.tsv lists each archive and the image it holds ($last_tar: its path).
index_add() {
  local index=$images_dir/index.tsv
  touch "$index"
  { grep -v "	$2\$" "$index" || true; printf '%s\t%s\n' "$1" "$2"; } | sort >"$index.new"
  mv "$index.new" "$index"
  last_tar=$images_dir/$2
}

# import_image ROOTFS REF FILE CHANGE...: a one-layer image from ROOTFS (as build-mirror.sh
# makes pause and CoreDNS), saved as images/FILE.tar and listed in images/index.tsv.
import_image() {
  local rootfs=$1 ref=$2 file=$3
  shift 3
  local changes=() c
  for c in "$@"; do changes+=(-c "$c"); done
  mkdir -p "$images_dir"
  tar --numeric-owner -C "$rootfs" -c . | docker import "${changes[@]}" - "$ref" >/dev/null
  docker save "$ref" -o "$images_dir/$file.tar.partial"
  mv "$images_dir/$file.tar.partial" "$images_dir/$file.tar"
  index_add "$ref" "$file.tar"
}

# A Debian root file system (debootstrap minbase plus PACKAGES), for images whose upstream base
# is a distribution: debootstrap_rootfs DIR SUITE PACKAGES (comma-separated).
debootstrap_rootfs() {
  local dir=$1 suite=$2 packages=$3
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  rm -rf "$dir" && mkdir -p "$dir" "$build_root/conformance-debs"
  debootstrap --variant=minbase --include="$packages" --cache-dir="$build_root/conformance-debs" \
    "$suite" "$dir" "$debian_mirror" >"$dir.debootstrap.log" 2>&1 ||
    { log "debootstrap failed; see $dir.debootstrap.log"; return 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* \
    "$dir"/usr/share/locale/*
}

# The source package PACKAGE of SUITE, downloaded with apt state of its own (the host's is untouched):
# debian_source DIR SUITE PACKAGE prints the path of the .dsc. apt checks the .dsc and the files it
# names against the suite's signed Sources index.
debian_source() {
  local dir=$1 suite=$2 package=$3
  local state=$dir/apt-$suite
  mkdir -p "$state/lists/partial"
  echo "deb-src $debian_mirror $suite main" >"$state/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update >/dev/null
  (cd "$dir" && apt-get "${opts[@]}" source --download-only "$package" >/dev/null)
  ls "$dir/${package}_"*.dsc
}

# agnhost: the Go program of test/images/agnhost (CGO_ENABLED=0, main.Version set as its Makefile
# does) on a Debian root file system with the tools its Alpine base installs (bind-tools, curl,
# netcat-openbsd, iproute2, iperf, bash, util-linux, socat) and the busybox applets the tests call.
image_agnhost() {
  local tag src dir=$build_root/conformance-$kube/agnhost
  tag=$(e2e_tag Agnhost) src=$(kube_src)/test/images/agnhost
  [ "$(cat "$src/VERSION")" = "$tag" ] || { log "agnhost: the tree has $(cat "$src/VERSION"), e2e wants $tag"; return 1; }
  debootstrap_rootfs "$dir/rootfs" bookworm \
    dnsutils,curl,wget,netcat-openbsd,iproute2,iperf,socat,iputils-ping,procps,netbase
  (cd "$build_root/e2e-$kube" && go get "k8s.io/kubernetes/test/images/agnhost@v$kube" >/dev/null &&
    gobuild build -ldflags "$ldflags_strip -X main.Version=$tag" -o "$dir/rootfs/agnhost" k8s.io/kubernetes/test/images/agnhost)
  ln -s agnhost "$dir/rootfs/agnhost-2"
  mkdir -p "$dir/rootfs/uploads"
  cp "$src/porter/localhost.crt" "$src/porter/localhost.key" "$dir/rootfs/"
  ln -sf /usr/bin/iperf "$dir/rootfs/usr/local/bin/iperf"
  # adduser -u 1000 -D user-defined-in-image; addgroup -g 50000 group-defined-in-image; ...
  echo 'user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh' >>"$dir/rootfs/etc/passwd"
  echo 'user-defined-in-image:!:20000:0:99999:7:::' >>"$dir/rootfs/etc/shadow"
  printf '%s\n' 'user-defined-in-image:x:1000:' 'group-defined-in-image:x:50000:user-defined-in-image' \
    >>"$dir/rootfs/etc/group"
  mkdir -p "$dir/rootfs/home/user-defined-in-image" && chown 1000:1000 "$dir/rootfs/home/user-defined-in-image"
  import_image "$dir/rootfs" "registry.k8s.io/e2e-test-images/agnhost:$tag" "agnhost_$tag" \
    'ENTRYPOINT ["/agnhost"]' 'CMD ["pause"]' 'EXPOSE 80 8080 8081 9376 5000' \
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
}

# busybox: upstream's is Docker Hub's busybox:<version>, BusyBox built from busybox.net's tarball
# with `make defconfig`. Here: the same tarball (the .orig.tar.bz2 of Debian's source package is it
# byte for byte: the .dsc's checksum and the pin below must both match), `make defconfig` plus
# CONFIG_STATIC=y, compiled with the host's gcc against glibc, every applet a hard link in /bin as
# `busybox --install /bin` makes them upstream, and /usr/bin/env. Debian's own busybox-static is not
# used: its patch revert-9c143ce52da11ec3d21a3491c3749841d3dc10f0.patch makes ash drop environment
# variables whose names are not shell names, which a Secrets test (`env` of a variable data-1) reads.
busybox_version=1.37.0
busybox_sha256=3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4
image_busybox() {
  local tag dir=$build_root/conformance-$kube/busybox dsc sum
  tag=$(e2e_tag BusyBox)
  [ "${tag%-*}" = "$busybox_version" ] || { log "busybox: build.sh pins $busybox_version, e2e wants $tag"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir/src" "$dir/rootfs"
  local orig=busybox_$busybox_version.orig.tar.bz2 src=$dir/src/busybox-$busybox_version
  dsc=$(debian_source "$dir/src" trixie busybox)
  [ -f "$dir/src/$orig" ] || { log "busybox: Debian's source package ($(basename "$dsc")) has no $orig"; return 1; }
  sum=$(sed -n "/^Checksums-Sha256:/,/^[^ ]/s/^ \([0-9a-f]\{64\}\) [0-9]* $orig\$/\1/p" "$dsc")
  [ "$sum" = "$busybox_sha256" ] || { log "busybox: $(basename "$dsc") gives $orig the sha256 '$sum', not $busybox_sha256"; return 1; }
  printf '%s  %s\n' "$busybox_sha256" "$dir/src/$orig" | sha256sum -c --quiet - ||
    { log "busybox: $orig does not match its sha256"; return 1; }
  tar -C "$dir/src" -xjf "$dir/src/$orig"
  # The build date that BusyBox prints is the tarball's (as Docker Hub's build sets it), not today's.
  # No option of defconfig fails to build statically here (glibc 2.36, Linux 6.1 headers), so only
  # CONFIG_STATIC changes. The linker warns that getaddrinfo, gethostbyname and getservbyname want
  # glibc's NSS modules at run time; the "files" and "dns" sources are in libc itself since 2.34.
  (cd "$src" && SOURCE_DATE_EPOCH=$(stat -c %Y .) && export SOURCE_DATE_EPOCH &&
    nice -n 19 make defconfig &&
    sed -i 's/^# CONFIG_STATIC is not set$/CONFIG_STATIC=y/' .config &&
    nice -n 19 make oldconfig </dev/null && grep -qx CONFIG_STATIC=y .config &&
    nice -n 19 make -j"$(nproc)" busybox) >"$dir/build.log" 2>&1 ||
    { log "busybox: the build failed; see $dir/build.log"; return 1; }
  [ -z "$(readelf -l "$src/busybox" | sed -n '/INTERP/p')" ] || { log "busybox: the binary is not static"; return 1; }
  local version
  version=$("$src/busybox" --help | sed -n '1s/^BusyBox v\([0-9.]*\) .*/\1/p')
  [ "$version" = "$busybox_version" ] || { log "busybox: the binary says '$version'"; return 1; }
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/usr/bin" "$dir/rootfs/etc" "$dir/rootfs/tmp" "$dir/rootfs/root" \
    "$dir/rootfs/home" "$dir/rootfs/var"
  chmod 1777 "$dir/rootfs/tmp"
  cp "$src/busybox" "$dir/rootfs/bin/busybox"
  "$dir/rootfs/bin/busybox" --install "$dir/rootfs/bin"
  ln -s ../../bin/env "$dir/rootfs/usr/bin/env"
  local applets links
  applets=$("$dir/rootfs/bin/busybox" --list | wc -l) links=$(stat -c %h "$dir/rootfs/bin/busybox")
  [ "$links" -eq "$((applets + 1))" ] || { log "busybox: $applets applets, but /bin/busybox has $links links"; return 1; }
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' \
    'nobody:x:65534:65534:nobody:/home:/bin/false' >"$dir/rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'daemon:x:1:' 'nogroup:x:65534:' >"$dir/rootfs/etc/group"
  import_image "$dir/rootfs" "registry.k8s.io/e2e-test-images/busybox:$tag" "busybox_$tag" \
    'CMD ["sh"]' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
}

# pause: upstream's C program (build/pause/linux/pause.c), compiled as its Makefile does.
image_pause() {
  local tag dir=$build_root/conformance-$kube/pause src
  tag=$(e2e_tag Pause) src=$(kube_src)/build/pause
  grep -q "^TAG ?= $tag\$" "$src/Makefile" || { log "pause: the tree's Makefile is not at $tag"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir/rootfs"
  # REV is `git describe` of the tree upstream; here it names the module version instead.
  gcc -Os -Wall -Werror -static -DVERSION="v$tag-v$kube" -o "$dir/rootfs/pause" "$src/linux/pause.c"
  strip "$dir/rootfs/pause"
  import_image "$dir/rootfs" "registry.k8s.io/pause:$tag" "pause_$tag" 'ENTRYPOINT ["/pause"]' 'USER 65535:65535'
}

# nonewprivs: the Go program of test/images/nonewprivs, setuid, as its Dockerfile installs it
# (its Alpine base is left out: the image runs nothing else).
image_nonewprivs() {
  local tag dir=$build_root/conformance-$kube/nonewprivs src
  tag=$(e2e_tag Nonewprivs) src=$(kube_src)/test/images/nonewprivs
  [ "$(cat "$src/VERSION")" = "$tag" ] || { log "nonewprivs: the tree has $(cat "$src/VERSION"), e2e wants $tag"; return 1; }
  rm -rf "$dir" && mkdir -p "$dir/rootfs/usr/local/bin"
  (cd "$build_root/e2e-$kube" && gobuild build -ldflags "$ldflags_strip" -o "$dir/rootfs/usr/local/bin/nnp" \
    k8s.io/kubernetes/test/images/nonewprivs)
  chmod 4755 "$dir/rootfs/usr/local/bin/nnp"
  import_image "$dir/rootfs" "registry.k8s.io/e2e-test-images/nonewprivs:$tag" "nonewprivs_$tag" \
    'CMD ["nnp"]' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
}

# glibc-dns-testing: Debian bookworm (its base is debian:bookworm-slim) with dnsutils. Upstream
# also puts a CoreDNS v1.5.0 binary at /coredns, which no conformance test runs: left out.
image_glibc_dns_testing() {
  local tag dir=$build_root/conformance-$kube/glibc-dns-testing src
  tag=$(e2e_tag GlibcDnsTesting) src=$(kube_src)/test/images/glibc-dns-testing
  [ "$(cat "$src/VERSION")" = "$tag" ] || { log "glibc-dns-testing: the tree has $(cat "$src/VERSION"), e2e wants $tag"; return 1; }
  debootstrap_rootfs "$dir/rootfs" bookworm dnsutils
  import_image "$dir/rootfs" "registry.k8s.io/e2e-test-images/glibc-dns-testing:$tag" "glibc-dns-testing_$tag" \
    'CMD ["bash"]' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
}

build_images() {
  local image built=false
  for image in agnhost busybox pause nonewprivs glibc_dns_testing; do
    local key="image-${image//_/-}"
    stamp_ok "$key" && continue
    built=true
    log "building the ${image//_/-} image"
    local start
    start=$(date +%s)
    "image_$image"
    record "$key" "$(($(date +%s) - start))" "$(size_of "$last_tar")"
    stamp "$key"
  done
  if [ "$built" = true ] || [ ! -f "$images_dir/SHA256SUMS" ]; then
    (cd "$images_dir" && sha256sum ./*.tar >SHA256SUMS)
  fi
}

steps=(e2e ginkgo images)
if [ $# -gt 0 ]; then steps=("$@"); fi
total=$(date +%s)
for step in "${steps[@]}"; do
  case $step in
    e2e | ginkgo | images) "build_$step" ;;
    *) log "unknown step '$step' (known: e2e ginkgo images)"; exit 2 ;;
  esac
done
log "conformance suite v$kube ready in $(($(date +%s) - total))s at $out ($(du -sh "$out" | cut -f1))"
