#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The local test bed: Docker engine, node image, release mirror, sealed node network.
#
#   testbed.sh up        everything below, idempotent (what molecule's create runs)
#   testbed.sh down      remove nodes, mirror server, network, firewall rule, outside host
#   testbed.sh engine | image | mirror | debian-repo | ssh-key | network-up | network-down | serve | unserve
#
# Every step is safe to repeat, and `down` also cleans up after a run that crashed halfway.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${SCRATCH_CACHE:-$HOME/.cache/scratch-kubernetes}
state=$cache/testbed
mkdir -p "$state"

# Names shared with molecule/default/molecule.yml and the seal test.
network=k8s-testbed
bridge=k8stb0
subnet=172.31.250.0/24
host_ip=172.31.250.1
mirror_port=8480
node_label=scratch-kubernetes.testbed
outside_ns=k8stb-outside
outside_ip=198.18.0.2
# Sysctls that are not namespaced: a kubelet inside a node writes the host's.
host_sysctls=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes)

log() { printf '[testbed %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# Starts a daemon in the background without the caller's open files beyond stdio: a daemon
# that inherited the descriptor of /tmp/testbed.lock would hold the test bed's lock forever.
daemon() {
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec nohup "$@"
  ) &
}

engine() {
  if ! command -v dockerd >/dev/null; then
    log "installing docker.io from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    daemon dockerd >"$state/dockerd.log" 2>&1
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
  docker info >/dev/null 2>&1 || { log "dockerd did not answer; see $state/dockerd.log"; exit 1; }
}

# The image tag is a hash of its recipe: it is rebuilt exactly when the recipe changes. The
# debootstrap root file system (the slow part) depends on the package list alone.
node_image() {
  local tag rootfs packages_hash
  tag=scratch-kubernetes/node:$(cat "$here/node-image.packages" "$here/node-init" "$here/node-apt-sources.list" |
    sha256sum | cut -c1-12)
  if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return; fi
  packages_hash=$(sha256sum <"$here/node-image.packages" | cut -c1-12)
  local archive=$cache/node-rootfs-$packages_hash.tar
  if [ ! -f "$archive" ]; then
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    log "building the node root file system with debootstrap"
    rootfs=$(mktemp -d "$cache/rootfs.XXXXXX")
    debootstrap --variant=minbase --include="$(grep -v '^#' "$here/node-image.packages" | paste -sd,)" \
      bookworm "$rootfs" http://deb.debian.org/debian >"$state/debootstrap.log" 2>&1
    # Units that cannot work in a container and only add noise to the journal.
    for unit in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
      getty@tty1.service console-getty.service systemd-modules-load.service; do
      ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
    done
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$archive.partial" . && mv "$archive.partial" "$archive"
    rm -rf "$rootfs"
  fi
  log "importing node image $tag"
  local layer
  layer=$(mktemp -d "$cache/node-init.XXXXXX")
  install -D -m 0755 "$here/node-init" "$layer/usr/local/sbin/node-init"
  install -D -m 0644 "$here/node-apt-sources.list" "$layer/etc/apt/sources.list"
  cp "$archive" "$layer/image.tar"
  # docker import refuses duplicate paths: the root file system's own sources.list goes first.
  tar --delete -f "$layer/image.tar" ./etc/apt/sources.list
  tar -C "$layer" --append -f "$layer/image.tar" ./usr/local/sbin/node-init ./etc/apt/sources.list
  docker import -c 'CMD ["/usr/local/sbin/node-init"]' -c 'ENV container=docker' "$layer/image.tar" "$tag" >/dev/null
  rm -rf "$layer"
  echo "$tag"
}

# The controller logs in to the nodes as root with this key, as operators' automation does;
# molecule's create installs its public half in every node. It outlives `down`.
ssh_key() {
  local key=$state/ssh/id_ed25519
  [ -f "$key" ] && return 0
  command -v ssh-keygen >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >/dev/null
  install -d -m 0700 "$state/ssh"
  ssh-keygen -q -t ed25519 -N '' -C scratch-kubernetes-testbed -f "$key"
}

mirror() {
  "$here/build-mirror.sh"
  test_image
  debian_repo
}

# The nodes cannot reach Debian's mirrors: the packages the roles install (debian-repo.packages)
# come from a local repository, signed with the test bed's own key, under the mirror's /debian.
# apt resolves against the node image's dpkg status, so the repository holds exactly what a node
# lacks. The test-bed inventory points the nodes' apt at it (prereqs_apt_sources), as an
# operator points machines at an internal mirror.
debian_repo() {
  local root=${MIRROR_ROOT:-$cache/mirror} keys=$state/apt recipe
  local repo=$root/debian archive
  archive=$cache/node-rootfs-$(sha256sum <"$here/node-image.packages" | cut -c1-12).tar
  recipe=$(cat "$here/debian-repo.packages" "$archive" 2>/dev/null | sha256sum | cut -c1-12)
  [ -f "$repo/InRelease" ] && [ "$(cat "$repo/.recipe" 2>/dev/null)" = "$recipe" ] && return 0
  log "building the local Debian repository"
  command -v dpkg-scanpackages >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dpkg-dev >/dev/null
  command -v gpg >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gpg >/dev/null
  if [ ! -f "$keys/key.asc" ]; then
    install -d -m 0700 "$keys"
    gpg --homedir "$keys" --batch --quiet --passphrase '' \
      --quick-generate-key 'scratch-kubernetes test bed repository' ed25519 sign never
    gpg --homedir "$keys" --batch --armor --export >"$keys/key.asc"
  fi
  local work packages
  work=$(mktemp -d "$cache/debian-repo.XXXXXX")
  tar -xOf "$archive" ./var/lib/dpkg/status >"$work/status"
  packages=$(grep -v '^#' "$here/debian-repo.packages" | paste -sd' ')
  local apt=(apt-get -qq -o "Dir::State::status=$work/status" -o Debug::NoLocking=1)
  # shellcheck disable=SC2086 # one word per package
  "${apt[@]}" --print-uris install $packages >"$work/uris" 2>/dev/null ||
    { apt-get update -qq && "${apt[@]}" --print-uris install $packages >"$work/uris"; }
  mkdir -p "$work/debian"
  # Each line: 'URL' FILE SIZE HASH; FILE is NAME_VERSION_ARCH.deb (the version's ':' as %3a).
  sed -n "s/^'[^']*' \([^_]*\)_\([^_]*\)_[^ ]* .*/\1=\2/p" "$work/uris" | sed 's/%3a/:/g' |
    (cd "$work/debian" && xargs -r apt-get download -qq -o APT::Sandbox::User=root)
  (cd "$work/debian" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages && gzip -9k Packages)
  {
    echo "Origin: scratch-kubernetes test bed"
    echo "Label: scratch-kubernetes test bed"
    echo "Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S UTC')"
    echo "SHA256:"
    for file in Packages Packages.gz; do
      printf ' %s %s %s\n' "$(sha256sum <"$work/debian/$file" | cut -d' ' -f1)" \
        "$(stat -c %s "$work/debian/$file")" "$file"
    done
  } >"$work/debian/Release"
  gpg --homedir "$keys" --batch --quiet --yes --clearsign -o "$work/debian/InRelease" "$work/debian/Release"
  echo "$recipe" >"$work/debian/.recipe"
  rm -rf "$repo" && mv "$work/debian" "$repo" && rm -rf "$work"
}

# A toolbox image for the tests' pods (ping, nslookup, wget, httpd): Debian's static busybox
# in an image of its own, served by the mirror beside the release images.
test_image() {
  local root=${MIRROR_ROOT:-$cache/mirror} dir=$cache/build/busybox
  local tarball=$root/images/busybox.tar
  [ -f "$tarball.sha256" ] && return 0
  log "building the busybox test image"
  rm -rf "$dir" && mkdir -p "$dir/rootfs/bin"
  if ! (cd "$dir" && apt-get download busybox-static >/dev/null 2>&1); then
    apt-get update -qq
    (cd "$dir" && apt-get download busybox-static >/dev/null)
  fi
  dpkg-deb -x "$dir"/busybox-static_*.deb "$dir/deb"
  cp "$dir/deb/bin/busybox" "$dir/rootfs/bin/busybox"
  for applet in sh ping nslookup wget httpd sleep cat ip hostname; do ln -s busybox "$dir/rootfs/bin/$applet"; done
  tar -C "$dir/rootfs" -c . | docker import -c 'ENTRYPOINT ["/bin/sh"]' -c 'ENV PATH=/bin' - \
    scratch-kubernetes/busybox:test >/dev/null
  docker save scratch-kubernetes/busybox:test -o "$tarball"
  (cd "$(dirname "$tarball")" && sha256sum busybox.tar >busybox.tar.sha256)
}

network_up() {
  docker network inspect "$network" >/dev/null 2>&1 ||
    docker network create --subnet "$subnet" --gateway "$host_ip" \
      -o com.docker.network.bridge.name="$bridge" "$network" >/dev/null
  # The seal: nothing that enters from the node bridge is forwarded anywhere else.
  iptables -C DOCKER-USER -i "$bridge" ! -o "$bridge" -j DROP 2>/dev/null ||
    iptables -I DOCKER-USER -i "$bridge" ! -o "$bridge" -j DROP
  # An "outside" host of our own, which the seal must keep the nodes away from.
  if ! ip netns list | grep -qw "$outside_ns"; then
    ip netns add "$outside_ns"
    ip link add k8stb-out0 type veth peer name k8stb-out1
    ip link set k8stb-out1 netns "$outside_ns"
    ip addr add 198.18.0.1/30 dev k8stb-out0
    ip link set k8stb-out0 up
    ip -n "$outside_ns" addr add "$outside_ip/30" dev k8stb-out1
    ip -n "$outside_ns" link set k8stb-out1 up
    ip -n "$outside_ns" link set lo up
    ip -n "$outside_ns" route add default via 198.18.0.1
  fi
  if [ ! -f "$state/sysctls" ]; then
    for key in "${host_sysctls[@]}"; do echo "$key=$(sysctl -n "$key")"; done >"$state/sysctls"
  fi
}

network_down() {
  while iptables -C DOCKER-USER -i "$bridge" ! -o "$bridge" -j DROP 2>/dev/null; do
    iptables -D DOCKER-USER -i "$bridge" ! -o "$bridge" -j DROP
  done
  if docker info >/dev/null 2>&1 && docker network inspect "$network" >/dev/null 2>&1; then
    docker network rm "$network" >/dev/null
  fi
  ip link del k8stb-out0 2>/dev/null || true
  ip netns del "$outside_ns" 2>/dev/null || true
  if [ -f "$state/sysctls" ]; then
    sysctl -q -p "$state/sysctls" && rm -f "$state/sysctls"
  fi
}

serve() {
  local root=${MIRROR_ROOT:-$cache/mirror}
  # The nodes' name server, beside the mirror: it knows no name (no-such-name.py says why).
  if ! { [ -f "$state/dns.pid" ] && kill -0 "$(cat "$state/dns.pid")" 2>/dev/null; }; then
    daemon python3 "$here/no-such-name.py" "$host_ip" >"$state/dns.log" 2>&1
    echo $! >"$state/dns.pid"
  fi
  if [ -f "$state/mirror.pid" ] && kill -0 "$(cat "$state/mirror.pid")" 2>/dev/null; then return; fi
  daemon python3 -m http.server "$mirror_port" --bind "$host_ip" --directory "$root" >"$state/mirror.log" 2>&1
  echo $! >"$state/mirror.pid"
  for _ in $(seq 50); do
    python3 - "$host_ip" "$mirror_port" <<'PY' && return 0
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.2).close()
PY
    sleep 0.1
  done
  log "the mirror server did not start; see $state/mirror.log"
  exit 1
}

unserve() {
  local server
  for server in mirror dns; do
    if [ -f "$state/$server.pid" ]; then
      kill "$(cat "$state/$server.pid")" 2>/dev/null || true
      rm -f "$state/$server.pid"
    fi
  done
}

remove_nodes() {
  docker info >/dev/null 2>&1 || return 0
  docker ps -aq --filter "label=$node_label" | xargs -r docker rm -f -v >/dev/null
}

case ${1:-} in
  engine) engine ;;
  # One step per line: set -e does not reach into a function called from an && list, where a
  # failed command would go unnoticed.
  image) engine; node_image ;;
  mirror) engine; mirror ;;
  debian-repo) debian_repo ;;
  ssh-key) ssh_key ;;
  network-up) engine; network_up ;;
  network-down) network_down ;;
  serve) serve ;;
  unserve) unserve ;;
  up) engine; node_image >/dev/null; mirror; ssh_key; network_up; serve ;;
  # The controller-side state of the test cluster (its CAs, admin kubeconfig) goes with its nodes.
  down) remove_nodes && unserve && network_down && rm -rf "$HOME/.scratch-kubernetes/testbed" ;;
  *) echo "usage: $0 up|down|engine|image|mirror|debian-repo|ssh-key|network-up|network-down|serve|unserve" >&2; exit 2 ;;
esac
