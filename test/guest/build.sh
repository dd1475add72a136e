#!/usr/bin/env bash
# Builds the Trivet test guest into .cache/guest/: the kernel of Debian's linux-image-cloud-amd64
# and a busybox-static initramfs whose /init is test/guest/init.sh. Idempotent: a build is keyed
# by the kernel version and a hash of the init script, the module list and this script, and is
# reused when present. Needs no root: a kernel that is not installed is fetched with
# `apt-get download` and unpacked with `dpkg-deb -x`.
# Prints, as its last two lines, TRIVET_GUEST_KERNEL=<path> and TRIVET_GUEST_INITRD=<path>.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${TRIVET_GUEST_CACHE:-$repo/.cache/guest}"
meta_package=linux-image-cloud-amd64
busybox_bin=/bin/busybox
# Drivers the guest needs; each is loaded only if the kernel builds it as a module.
wanted_modules=(virtio_pci virtio_blk virtio_net button evdev)

log() { echo "guest build: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The versioned kernel package the meta package points at, e.g. linux-image-6.1.0-57-cloud-amd64.
resolve_kernel_package() {
  local pkg
  pkg="$(dpkg-query -W -f='${Depends}' "$meta_package" 2>/dev/null | grep -o 'linux-image-[^ ,]*' | head -n 1 || true)"
  if [[ -z "$pkg" ]]; then
    pkg="$(apt-cache depends "$meta_package" 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }' || true)"
  fi
  [[ -n "$pkg" ]] || die "cannot resolve the kernel package behind $meta_package (install it, or run apt-get update)"
  echo "$pkg"
}

# Prints the root of a tree holding boot/vmlinuz-$kver and lib/modules/$kver with modules.dep.
kernel_tree() {
  local pkg="$1" kver="$2"
  # TRIVET_GUEST_KERNEL_FROM_PACKAGE=1 takes the download path even when the kernel is installed.
  if [[ "${TRIVET_GUEST_KERNEL_FROM_PACKAGE:-0}" != 1 && -r "/boot/vmlinuz-$kver" && -r "/lib/modules/$kver/modules.dep" ]]; then
    echo /
    return
  fi
  local tree="$cache/kernel/$kver"
  if [[ ! -r "$tree/root/lib/modules/$kver/modules.dep" ]]; then
    log "kernel $kver is not installed: downloading $pkg"
    rm -rf "$tree"
    mkdir -p "$tree/deb"
    (cd "$tree/deb" && apt-get download "$pkg" >&2) || die "apt-get download $pkg failed"
    dpkg-deb -x "$tree"/deb/*.deb "$tree/root"
    # Debian's kernel packages leave modules.dep to depmod in postinst.
    depmod -b "$tree/root" "$kver" || die "depmod on the unpacked $pkg failed"
  fi
  echo "$tree/root"
}

# Prints the .ko paths (relative to lib/modules/$kver) to load, dependencies first, each once.
module_load_order() {
  local moddir="$1" m line dep
  local -a order=()
  for m in "${wanted_modules[@]}"; do
    line="$(grep -E "(^|/)${m}\.ko(\.[a-z]+)?:" "$moddir/modules.dep" || true)"
    if [[ -z "$line" ]]; then
      grep -qE "(^|/)${m}\.ko$" "$moddir/modules.builtin" || die "module $m is neither built in nor in modules.dep"
      continue
    fi
    # modules.dep lists a module's dependencies so that the last one must be loaded first.
    local -a deps
    read -r -a deps <<<"${line#*:}"
    local i
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do order+=("${deps[i]}"); done
    order+=("${line%%:*}")
  done
  for dep in "${order[@]}"; do echo "$dep"; done | awk '!seen[$0]++'
}

build_initrd() {
  local moddir="$1" out="$2" staging rel name
  staging="$(mktemp -d "$cache/staging.XXXXXX")"
  mkdir -p "$staging"/{bin,sbin,dev,proc,sys,tmp,etc,lib/modules}
  cp "$busybox_bin" "$staging/bin/busybox"
  for applet in $("$busybox_bin" --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$staging/bin/$applet"
  done
  cp "$here/init.sh" "$staging/init"
  chmod 0755 "$staging/init"
  : >"$staging/etc/modules.order"
  while read -r rel; do
    [[ -n "$rel" ]] || continue
    case "$rel" in *.ko) ;; *) die "compressed module $rel: busybox insmod needs plain .ko" ;; esac
    name="$(basename "$rel" .ko)"
    cp "$moddir/$rel" "$staging/lib/modules/$name.ko"
    echo "$name" >>"$staging/etc/modules.order"
  done < <(module_load_order "$moddir")
  (cd "$staging" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -9 -n) >"$out.tmp"
  mv "$out.tmp" "$out"
  rm -rf "$staging"
}

main() {
  [[ -x "$busybox_bin" ]] || die "$busybox_bin missing: install busybox-static"
  local pkg kver key out tree
  pkg="$(resolve_kernel_package)"
  kver="${pkg#linux-image-}"
  key="$kver-$(cat "$here/init.sh" "${BASH_SOURCE[0]}" | sha256sum | cut -c 1-16)"
  out="$cache/build-$key"
  if [[ ! -r "$out/vmlinuz" || ! -r "$out/initrd.gz" ]]; then
    mkdir -p "$cache"
    tree="$(kernel_tree "$pkg" "$kver")"
    log "building $out"
    rm -rf "$out.partial"
    mkdir -p "$out.partial"
    cp "$tree/boot/vmlinuz-$kver" "$out.partial/vmlinuz"
    build_initrd "$tree/lib/modules/$kver" "$out.partial/initrd.gz"
    # Older builds are stale by construction; keep the cache from growing.
    find "$cache" -maxdepth 1 -name 'build-*' ! -name "build-$key*" -exec rm -rf {} +
    rm -rf "$out"
    mv "$out.partial" "$out"
  fi
  echo "TRIVET_GUEST_KERNEL=$out/vmlinuz"
  echo "TRIVET_GUEST_INITRD=$out/initrd.gz"
}

main "$@"
