// Included by the kernel sources that inline many AVX-512 intrinsics: GCC 12's AVX-512
// headers build their "undefined" vectors from themselves, which -W(maybe-)uninitialized
// reports wherever such an intrinsic is inlined (GCC bug 105593, fixed in GCC 13). The
// pragmas hold for the rest of the including file.
#pragma once

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
