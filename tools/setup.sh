#!/usr/bin/env bash
# Installs the Debian packages the build needs, only those that are missing.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(cmake g++ make pkg-config libeigen3-dev libfmt-dev nlohmann-json3-dev libgtest-dev libutf8proc-dev
  libcpp-httplib-dev  # rwkv-server: the HTTP server (and the client its tests use)
  clang libclang-rt-14-dev llvm-14  # tests/fuzz: clang++, libFuzzer, llvm-symbolizer
  python3 python3-numpy python3-pytest python3-pip python3-setuptools python3-wheel  # python/: binding, its tests, pip install
  chromium nginx)  # tests/node: the chat page in a real browser; two server replicas behind a balancer
# Node.js with npm for tests/node (Debian's nodejs and npm, unless a Node.js with npm is already there).
if ! command -v npm >/dev/null 2>&1; then packages+=(nodejs npm); fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
install_node_modules() {
  # tests/node's pinned packages (package-lock.json) from the npm registry, once.
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "tools/setup.sh: npm ci in tests/node" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}
if [ ${#missing[@]} -eq 0 ]; then
  install_node_modules
  exit 0
fi
echo "tools/setup.sh: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_node_modules
