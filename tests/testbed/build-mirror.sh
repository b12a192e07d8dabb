#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds an offline release mirror from Go modules, laid out like the upstream
# download sites (dl.k8s.io and GitHub release assets), so that pointing
# `release_base_url` at it is the only difference from a real install.
#
# Versions come from roles/cluster_defaults/defaults/main.yml: the product and
# the test bed can never disagree on what is installed.
#
# Output: $MIRROR_ROOT (default ~/.cache/scratch-kubernetes/mirror). Each
# component is built once per version; a rerun only checks stamps.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
defaults="$repo/roles/cluster_defaults/defaults/main.yml"
cache=${SCRATCH_CACHE:-$HOME/.cache/scratch-kubernetes}
MIRROR_ROOT=${MIRROR_ROOT:-$cache/mirror}
build_root=$cache/build

pin() { sed -n "s/^$1: *\"\\{0,1\\}\\([^\"]*\\)\"\\{0,1\\}$/\\1/p" "$defaults"; }
kube=$(pin kube_version)
etcd=$(pin etcd_version)
containerd=$(pin containerd_version)
runc=$(pin runc_version)
cni=$(pin cni_plugins_version)
cri_tools=$(pin cri_tools_version)
coredns=$(pin coredns_version)
pause=$(pin pause_version)
# The release the `ha` scenario converges and then upgrades to kube_version.
previous_kube=$(cat "$here/previous-kube-version")

export CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFLAGS=-trimpath
ldflags_strip="-s -w"
log() { printf '[mirror %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# sha256 file in the style upstream uses: "<hex>  <name>" (or bare hex for dl.k8s.io).
sum_line() { (cd "$(dirname "$1")" && sha256sum "$(basename "$1")"); }

# A wrapper module per component (go_wrapper, kubernetes_wrapper, kubernetes_ldflags).
# shellcheck source=tests/testbed/go-modules.sh
. "$here/go-modules.sh"

stamp_ok() { [ -f "$build_root/stamps/$1" ]; }
stamp() { mkdir -p "$build_root/stamps"; touch "$build_root/stamps/$1"; }

build_kubernetes() {
  local kube=$1
  local key="kubernetes-$kube" out="$MIRROR_ROOT/dl.k8s.io/release/v$kube/bin/linux/amd64"
  stamp_ok "$key" && return 0
  log "building Kubernetes v$kube (the longest step)"
  local dir="$build_root/$key"
  kubernetes_wrapper "$dir" "$kube"
  local ldflags
  ldflags="$ldflags_strip $(kubernetes_ldflags "$kube")"
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
  local pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$dir" && go get "${pkgs[@]/%/@v$kube}" >/dev/null)
  mkdir -p "$out"
  (cd "$dir" && go build -ldflags "$ldflags" -o "$out/" "${pkgs[@]}")
  for c in "${cmds[@]}"; do sha256sum "$out/$c" | cut -d' ' -f1 >"$out/$c.sha256"; done
  stamp "$key"
}

build_etcd() {
  # The key names the tools: a tarball from before etcdutl was added is rebuilt.
  local key="etcd-$etcd-etcdutl" name="etcd-v$etcd-linux-amd64"
  local out="$MIRROR_ROOT/github.com/etcd-io/etcd/releases/download/v$etcd"
  stamp_ok "$key" && return 0
  log "building etcd v$etcd"
  local dir="$build_root/$key" stage="$build_root/$key/stage/$name"
  go_wrapper "$dir" go.etcd.io/etcd/server/v3 "v$etcd"
  (cd "$dir" && go get "go.etcd.io/etcd/server/v3@v$etcd" "go.etcd.io/etcd/etcdctl/v3@v$etcd" \
    "go.etcd.io/etcd/etcdutl/v3@v$etcd" >/dev/null)
  mkdir -p "$stage" "$out"
  local ldflags="$ldflags_strip"
  (cd "$dir" && go build -ldflags "$ldflags" -o "$stage/etcd" go.etcd.io/etcd/server/v3 &&
    go build -ldflags "$ldflags" -o "$stage/etcdctl" go.etcd.io/etcd/etcdctl/v3 &&
    go build -ldflags "$ldflags" -o "$stage/etcdutl" go.etcd.io/etcd/etcdutl/v3)
  tar -C "$(dirname "$stage")" -czf "$out/$name.tar.gz" "$name"
  sum_line "$out/$name.tar.gz" >"$out/SHA256SUMS"
  stamp "$key"
}

build_containerd() {
  local key="containerd-$containerd" name="containerd-$containerd-linux-amd64.tar.gz"
  local out="$MIRROR_ROOT/github.com/containerd/containerd/releases/download/v$containerd"
  stamp_ok "$key" && return 0
  log "building containerd v$containerd"
  local dir="$build_root/$key" stage="$build_root/$key/stage"
  local module=github.com/containerd/containerd/v2
  go_wrapper "$dir" "$module" "v$containerd"
  local cmds=(containerd containerd-shim-runc-v2 ctr) pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("$module/cmd/$c"); done
  (cd "$dir" && go get "${pkgs[@]/%/@v$containerd}" >/dev/null)
  mkdir -p "$stage/bin" "$out"
  local ldflags="$ldflags_strip -X $module/version.Version=v$containerd"
  (cd "$dir" && go build -tags "no_btrfs no_devmapper no_zfs" -ldflags "$ldflags" -o "$stage/bin/" "${pkgs[@]}")
  tar -C "$stage" -czf "$out/$name" bin
  sum_line "$out/$name" >"$out/$name.sha256sum"
  stamp "$key"
}

build_runc() {
  local key="runc-$runc-static-seccomp" out="$MIRROR_ROOT/github.com/opencontainers/runc/releases/download/v$runc"
  stamp_ok "$key" && return 0
  log "building runc v$runc"
  [ -f /usr/include/seccomp.h ] ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libseccomp-dev >/dev/null
  local dir="$build_root/$key" module=github.com/opencontainers/runc
  go_wrapper "$dir" "$module" "v$runc"
  (cd "$dir" && go get "$module@v$runc" >/dev/null)
  mkdir -p "$out"
  # As upstream releases it: static, with seccomp (the CRI asks for the RuntimeDefault profile).
  # runc's nsenter is C, so cgo is required.
  (cd "$dir" && CGO_ENABLED=1 go build -tags "seccomp netgo osusergo urfave_cli_no_docs" \
    -ldflags "$ldflags_strip -X main.version=$runc -extldflags -static" -o "$out/runc.amd64" "$module")
  sum_line "$out/runc.amd64" >"$out/runc.sha256sum"
  stamp "$key"
}

# One module's commands in a tarball laid out as its upstream release is:
#   go_tarball KEY OUT TARBALL MEMBERS LDFLAGS MODULE VERSION PACKAGE...
# builds the packages into a stage directory, packs MEMBERS of it ("." for all) into
# OUT/TARBALL with OUT/TARBALL.sha256 beside it, and stamps KEY.
go_tarball() {
  local key=$1 out=$2 tarball=$3 members=$4 ldflags=$5 module=$6 version=$7
  shift 7
  local dir="$build_root/$key" stage="$build_root/$key/stage"
  go_wrapper "$dir" "$module" "$version"
  (cd "$dir" && go get "${@/%/@$version}" >/dev/null)
  mkdir -p "$stage" "$out"
  (cd "$dir" && go build -ldflags "$ldflags" -o "$stage/" "$@")
  tar -C "$stage" -czf "$out/$tarball" "$members"
  sum_line "$out/$tarball" >"$out/$tarball.sha256"
  stamp "$key"
}

build_cni_plugins() {
  local key="cni-plugins-$cni" module=github.com/containernetworking/plugins
  stamp_ok "$key" && return 0
  log "building CNI plugins v$cni"
  go_tarball "$key" "$MIRROR_ROOT/github.com/containernetworking/plugins/releases/download/v$cni" \
    "cni-plugins-linux-amd64-v$cni.tgz" . "$ldflags_strip" "$module" "v$cni" \
    "$module/plugins/main/bridge" "$module/plugins/ipam/host-local" \
    "$module/plugins/main/loopback" "$module/plugins/meta/portmap"
}

build_crictl() {
  local key="cri-tools-$cri_tools" module=sigs.k8s.io/cri-tools
  stamp_ok "$key" && return 0
  log "building crictl v$cri_tools"
  go_tarball "$key" "$MIRROR_ROOT/github.com/kubernetes-sigs/cri-tools/releases/download/v$cri_tools" \
    "crictl-v$cri_tools-linux-amd64.tar.gz" crictl "$ldflags_strip -X $module/pkg/version.Version=v$cri_tools" \
    "$module" "v$cri_tools" "$module/cmd/crictl"
}

build_coredns() {
  local key="coredns-$coredns" module=github.com/coredns/coredns
  stamp_ok "$key" && return 0
  log "building CoreDNS v$coredns"
  go_tarball "$key" "$MIRROR_ROOT/github.com/coredns/coredns/releases/download/v$coredns" \
    "coredns_${coredns}_linux_amd64.tgz" coredns "$ldflags_strip" "$module" "v$coredns" "$module"
}

# Image tarballs the runtime role imports (as the guide loads the release's
# image tarballs). Built FROM scratch with `docker import` of a one-binary rootfs.
build_images() {
  local key="images-pause-$pause-coredns-$coredns" out="$MIRROR_ROOT/images"
  stamp_ok "$key" && return 0
  log "building pause $pause and CoreDNS $coredns images"
  local dir="$build_root/$key"
  mkdir -p "$dir/pause" "$dir/coredns" "$out"
  cat >"$dir/pause/pause.go" <<'GO'
// The pause container: holds the pod's namespaces and reaps zombies.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s == syscall.SIGCHLD {
			for {
				if pid, _ := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); pid <= 0 {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
GO
  (cd "$dir/pause" && { [ -f go.mod ] || go mod init mirror.local/pause >/dev/null 2>&1; } &&
    go build -ldflags "$ldflags_strip" -o rootfs/pause .)
  tar -xzf "$MIRROR_ROOT/github.com/coredns/coredns/releases/download/v$coredns/coredns_${coredns}_linux_amd64.tgz" -C "$dir/coredns"
  mkdir -p "$dir/coredns/rootfs" && mv "$dir/coredns/coredns" "$dir/coredns/rootfs/coredns"
  import_image "$dir/pause/rootfs" "registry.k8s.io/pause:$pause" '["/pause"]' "$out/pause_$pause.tar"
  import_image "$dir/coredns/rootfs" "registry.k8s.io/coredns/coredns:v$coredns" '["/coredns"]' "$out/coredns_v$coredns.tar"
  stamp "$key"
}

# import_image ROOTFS REF ENTRYPOINT TARBALL [CHANGE...]: CHANGEs are more Dockerfile lines (ENV ...).
import_image() {
  local rootfs=$1 ref=$2 entrypoint=$3 tarball=$4 change changes=()
  for change in "${@:5}"; do changes+=(-c "$change"); done
  tar -C "$rootfs" -c . | docker import -c "ENTRYPOINT $entrypoint" "${changes[@]}" - "$ref" >/dev/null
  docker save "$ref" -o "$tarball"
  sum_line "$tarball" >"$tarball.sha256"
}

# The control plane's images for static pods, made as the release makes them
# (build/lib/release.sh): the component at /usr/local/bin/<component>, tagged
# registry.k8s.io/<component>-amd64:v<version>, saved as <component>.tar beside a
# <component>.docker_tag that holds the tag. The server tarball carries them in
# kubernetes/server/bin/; dl.k8s.io serves them beside the binaries, with the same bare-hex
# .sha256. Upstream's base image (go-runner on distroless) adds nothing the component needs:
# no shell, no CA bundle. The images leave the engine once saved.
build_kube_images() {
  local kube=$1
  local key="kube-images-$kube" bin="$MIRROR_ROOT/dl.k8s.io/release/v$kube/bin/linux/amd64"
  stamp_ok "$key" && return 0
  log "building the control plane's images for Kubernetes v$kube"
  local dir="$build_root/$key" c ref
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    ref="registry.k8s.io/$c-amd64:v$kube"
    rm -rf "${dir:?}/$c" && mkdir -p "$dir/$c/usr/local/bin"
    cp "$bin/$c" "$dir/$c/usr/local/bin/"
    import_image "$dir/$c" "$ref" "[\"/usr/local/bin/$c\"]" "$bin/$c.tar" "ENV PATH=/usr/local/bin:/usr/bin:/bin"
    sha256sum "$bin/$c.tar" | cut -d' ' -f1 >"$bin/$c.tar.sha256"
    echo "v$kube" >"$bin/$c.docker_tag"
    docker image rm "$ref" >/dev/null
    rm -rf "${dir:?}/$c"
  done
  stamp "$key"
}

# etcd's image as registry.k8s.io/etcd:<version>-0 (the -0 is the image's own revision), with
# etcd, etcdctl and etcdutl at /usr/local/bin as upstream's: etcd needs no shell.
build_etcd_image() {
  local ref="registry.k8s.io/etcd:$etcd-0"
  local key="etcd-image-$etcd-0" tarball="$MIRROR_ROOT/images/etcd_$etcd-0.tar"
  stamp_ok "$key" && return 0
  log "building the etcd $etcd image"
  local dir="$build_root/$key"
  rm -rf "$dir" && mkdir -p "$dir/rootfs/usr/local/bin" "$MIRROR_ROOT/images"
  tar -xzf "$MIRROR_ROOT/github.com/etcd-io/etcd/releases/download/v$etcd/etcd-v$etcd-linux-amd64.tar.gz" \
    --strip-components=1 -C "$dir/rootfs/usr/local/bin"
  import_image "$dir/rootfs" "$ref" '["/usr/local/bin/etcd"]' "$tarball" "ENV PATH=/usr/local/bin:/usr/bin:/bin"
  docker image rm "$ref" >/dev/null
  rm -rf "$dir"
  stamp "$key"
}

start=$(date +%s)
build_etcd
build_runc
build_cni_plugins
build_containerd
build_crictl
build_coredns
build_images
build_etcd_image
build_kubernetes "$kube"
build_kube_images "$kube"
build_kubernetes "$previous_kube"
log "mirror ready in $(( $(date +%s) - start ))s at $MIRROR_ROOT ($(du -sh "$MIRROR_ROOT" | cut -f1))"
