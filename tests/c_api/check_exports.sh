#!/usr/bin/env bash
# librwkv.so exports exactly the C API: every function declared in rwkv.h, nothing
# that does not start with rwkv_, and carries its SONAME.
# Usage: check_exports.sh LIBRARY HEADER
set -euo pipefail
lib=$1
header=$2

exported=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u)
stray=$(grep -v '^rwkv_' <<<"$exported" || true)
if [ -n "$stray" ]; then
  echo "check_exports: $lib exports symbols outside the C API:" >&2
  head -20 <<<"$stray" >&2
  exit 1
fi
declared=$(grep -o 'RWKV_EXPORT[^(]*(' "$header" | grep -o 'rwkv_[a-z0-9_]*($' | tr -d '(' | sort -u)
if [ "$(wc -l <<<"$declared")" -lt 40 ]; then
  echo "check_exports: found only $(wc -l <<<"$declared") declarations in $header" >&2
  exit 1
fi
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -n "$missing" ]; then
  echo "check_exports: declared in $header but not exported by $lib:" >&2
  echo "$missing" >&2
  exit 1
fi
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [ "$soname" != "librwkv.so.1" ]; then
  echo "check_exports: SONAME is '$soname', expected librwkv.so.1" >&2
  exit 1
fi
echo "check_exports: $(wc -l <<<"$exported") rwkv_* functions exported, SONAME $soname"
