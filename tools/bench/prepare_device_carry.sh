#!/usr/bin/env bash
# Fills .device-carry/ (ignored by git) with what tools/bench/device_scaling.sh needs on a
# machine that has no network: the Debian 12 packages of our build dependencies, and
# rwkv.cpp's sources with its ggml submodule at the pinned commit, trimmed to what a CPU
# build reads.
#
#   tools/bench/prepare_device_carry.sh [--rwkvcpp-git DIR] [--ggml-git DIR]
#
# DIR: a clone or bare git directory of RWKV/rwkv.cpp (default /work/.mirror/RWKV+rwkv.cpp/repo)
# and of ggerganov/ggml (default /work/.mirror/ggerganov+ggml/repo); the ggml commit is the
# one rwkv.cpp pins (git ls-tree HEAD ggml). Needs apt-get (Debian 12) for the packages.
# Result: .device-carry/debs/*.deb, .device-carry/rwkv.cpp/ (with SOURCE_COMMITS), and
# .device-carry/head-src.tar.gz (+ head-src.commit): this checkout's HEAD sources, which
# device_scaling.sh builds when the working tree does not (the device copy has no .git).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
carry="$repo/.device-carry"
rwkvcpp_git=/work/.mirror/RWKV+rwkv.cpp/repo
ggml_git=/work/.mirror/ggerganov+ggml/repo
while [ $# -gt 0 ]; do
  case "$1" in
    --rwkvcpp-git) rwkvcpp_git="$2"; shift 2 ;;
    --ggml-git) ggml_git="$2"; shift 2 ;;
    --help | -h) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "prepare_device_carry.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Our CMakeLists.txt needs Eigen3, fmt, nlohmann_json, pkg-config with libutf8proc and
# cpp-httplib. cpp-httplib.pc requires openssl, zlib and brotli's .pc files (and their
# headers, since its header includes them), so their -dev packages come along; the
# runtime libraries are the ones the build links (fmt, utf8proc) or may run (httplib).
debs=(libeigen3-dev libfmt-dev libfmt9 nlohmann-json3-dev libutf8proc-dev libutf8proc2
  libcpp-httplib-dev libcpp-httplib0.11 libssl-dev zlib1g-dev libbrotli-dev libbrotli1
  pkg-config pkgconf pkgconf-bin libpkgconf3)
rm -rf "$carry/debs"
mkdir -p "$carry/debs"
echo "prepare_device_carry.sh: apt-get download ${debs[*]}" >&2
(cd "$carry/debs" && apt-get download "${debs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2)

# rwkv.cpp: every file of HEAD except its test models, tokenizer JSON and CI (sizes, and
# a mirror may hold those large blobs as absent objects), then ggml at the pinned commit
# without its other backends, examples, tests and docs.
rwkvcpp_commit="$(git --git-dir="$rwkvcpp_git" rev-parse HEAD)"
ggml_commit="$(git --git-dir="$rwkvcpp_git" ls-tree HEAD ggml | awk '$2 == "commit" {print $3}')"
[ -n "$ggml_commit" ] || { echo "prepare_device_carry.sh: no ggml submodule in $rwkvcpp_git" >&2; exit 1; }
dest="$carry/rwkv.cpp"
rm -rf "$dest"
mkdir -p "$dest/ggml"
git --git-dir="$rwkvcpp_git" ls-tree -r HEAD | while read -r _mode type object path; do
  [ "$type" = blob ] || continue
  case "$path" in tests/* | python/20B_tokenizer.json | .github/* | docs/*) continue ;; esac
  mkdir -p "$dest/$(dirname "$path")"
  git --git-dir="$rwkvcpp_git" cat-file blob "$object" > "$dest/$path"
done
git --git-dir="$ggml_git" archive "$ggml_commit" | tar -x -C "$dest/ggml"
(cd "$dest/ggml" && rm -rf examples tests docs scripts ci spm-headers Package.swift \
  src/ggml-{cann,cuda,hip,kompute,metal,musa,sycl,vulkan,rpc,blas})
cat > "$dest/SOURCE_COMMITS" <<EOF
rwkv.cpp $rwkvcpp_commit (github.com/RWKV/rwkv.cpp)
ggml $ggml_commit (github.com/ggerganov/ggml, rwkv.cpp's pinned submodule)
EOF
cat "$dest/SOURCE_COMMITS" >&2
du -sh "$carry/debs" "$dest" >&2

# HEAD's sources, for a working tree caught mid-change.
git -C "$repo" archive HEAD -- CMakeLists.txt cmake include src tools | gzip -6 > "$carry/head-src.tar.gz"
git -C "$repo" rev-parse --short HEAD > "$carry/head-src.commit"
echo "head-src.tar.gz: HEAD $(cat "$carry/head-src.commit")" >&2
du -sh "$carry" >&2
