#!/usr/bin/env bash
# A Python base image made from Debian's own packages, for machines that reach Debian's
# archive but no container registry: debootstrap (minbase) with python3, venv and pip,
# brought up to date with bookworm's security updates, written as a root file system tar.
#   deploy/image/debian-base.sh OUTPUT.tar
# `podman import OUTPUT.tar` then makes the image (the Makefile's image-base target).
set -euo pipefail

output=${1:?usage: debian-base.sh OUTPUT.tar}
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }

rootfs=$(mktemp -d /var/tmp/debian-python-rootfs.XXXXXX)
cleanup() {
  umount "$rootfs/proc" 2>/dev/null || true
  rm -rf "$rootfs"
}
trap cleanup EXIT

debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  "$suite" "$rootfs" "$mirror"

cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
SOURCES
mount -t proc proc "$rootfs/proc"
chroot "$rootfs" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get upgrade -y -qq
chroot "$rootfs" apt-get clean
umount "$rootfs/proc"

# What an image does not need: package lists, documentation, the build host's resolver.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
: > "$rootfs/etc/resolv.conf"

mkdir -p "$(dirname "$output")"
tar --numeric-owner -C "$rootfs" -cf "$output.tmp" .
mv "$output.tmp" "$output"
echo "base root file system: $output ($(du -h "$output" | cut -f1))"
