#!/usr/bin/env bash
# Installs the Debian 12 packages Trivet's build, tests and benchmarks need (run as root).
# Used by the README's two commands and by .ci/run; safe to run again.
set -euo pipefail

packages=(
  qemu-system-x86 qemu-utils qemu-block-extra   # guests, qemu-img, NBD client side
  busybox-static cpio gzip kmod                 # the test guest's initramfs
  linux-image-cloud-amd64                       # the test guest's kernel, the KVM probe's
  etcd-server etcd-client                       # the peer of the Raft benchmark
  fio                                           # storage benchmark
  glusterfs-server                              # the storage benchmark's GlusterFS peer
  protobuf-compiler                             # protoc: checks the generated API code is fresh
  chromium                                      # the web UI's end-to-end tests (headless)
  iproute2 procps ca-certificates git           # namespaces, bridges and taps, process tools
  genisoimage ovmf                              # cloud-init NoCloud seed ISOs; UEFI firmware
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (apt-get install)" >&2
  exit 1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# apt-get download of the guest kernel needs package lists even when nothing is missing.
if [ ${#missing[@]} -gt 0 ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# Debian starts etcd as a service on install; the benchmark runs its own members.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -ne 20 ]; then
  echo "install-deps: Node.js 20 is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
