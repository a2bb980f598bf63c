# The kernel sources: compiled once per instruction-set level with
# -DRWKV_KERNEL_NS=isa_<level> (src/kernels/isa.hpp), not with the rest of the library.
# Read by CMakeLists.txt and tests/fuzz/CMakeLists.txt.
set(RWKV_KERNEL_SOURCES dequantize.cpp kernel_set.cpp machine_probes.cpp matmat.cpp matmat_eigen.cpp
  matmat_bf16.cpp matmat_bf16_amx.cpp matmat_f16.cpp matmat_int8.cpp matmat_int8_amx.cpp matmat_small.cpp
  matvec_bf16.cpp matvec_f16.cpp matvec_f32.cpp matvec_q4_s.cpp matvec_q8_0.cpp
  quantize_activation.cpp vector_math.cpp wkv.cpp)
list(TRANSFORM RWKV_KERNEL_SOURCES PREPEND ${CMAKE_CURRENT_LIST_DIR}/)
