#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine (run as root, or with sudo):
# the OCI registry, qemu for arm64 binaries, the AWS emulator, the zig linker for Lambda
# builds, checkov, and the Rust targets. Idempotent: already-present tools are kept.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

apt_packages=()
command -v docker-registry >/dev/null || apt_packages+=(docker-registry)
command -v qemu-aarch64-static >/dev/null || apt_packages+=(qemu-user-static)
command -v unzip >/dev/null || apt_packages+=(unzip)
command -v readelf >/dev/null || apt_packages+=(binutils)
# The arm64 Lambda binaries link glibc dynamically: qemu needs the arm64 loader and libraries.
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || apt_packages+=(libc6-arm64-cross libgcc-s1-arm64-cross)
if [ ${#apt_packages[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${apt_packages[@]}"
fi
# Debian starts the registry as a service on :5000 where an init system runs; the tests start
# their own on free ports and do not need it.

PIP="python3 -m pip"
$PIP install -q --disable-pip-version-check 'moto[server]>=5.1' ziglang cargo-zigbuild cargo-lambda checkov

rustup target add x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu >/dev/null

command -v terraform >/dev/null || {
  echo "terraform is not installed: install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)" >&2
  exit 1
}
echo "setup: docker-registry, qemu-aarch64-static, moto_server, cargo-zigbuild, checkov, terraform and the Rust targets are ready"
