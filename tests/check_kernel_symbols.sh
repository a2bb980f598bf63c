#!/usr/bin/env bash
# The kernels are compiled once per instruction-set level (src/kernels/isa.hpp). A weak
# (COMDAT) function outside the level's namespace rwkv::isa_<level>, such as an
# out-of-line std::vector member, would be merged by the linker with the copies of other
# levels and of the rest of the library, and the AVX-512 copy could end up running on a
# processor without AVX-512. So the objects of every level above scalar (whose flags are
# the baseline's) must define no weak symbol outside their namespace.
# usage: check_kernel_symbols.sh OBJECT... (an argument may be a ;-separated CMake list)
set -euo pipefail
IFS=';' read -r -a objects <<< "$(IFS=';'; echo "$*")"
if [[ ${#objects[@]} -eq 0 ]]; then echo "no kernel objects given" >&2; exit 1; fi
status=0
for object in "${objects[@]}"; do
  symbols=$(nm -C --defined-only "$object")  # fails the script if nm cannot read it
  # Weak (W, V) and unique (u) definitions, demangled, other than the level's own and
  # the personality routine's reference that every C++ object with exceptions has.
  found=$(awk '$2 ~ /^[WVu]$/' <<< "$symbols" | grep -v ' rwkv::isa_' | grep -v 'DW.ref.__gxx_personality_v0' || true)
  if [[ -n "$found" ]]; then
    echo "$object defines weak symbols outside rwkv::isa_*:" >&2
    echo "$found" >&2
    status=1
  fi
done
if [[ $status -eq 0 ]]; then echo "checked ${#objects[@]} kernel objects: no shared weak symbols"; fi
exit $status
