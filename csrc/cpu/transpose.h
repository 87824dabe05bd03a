// Batched matrix transposes on the CPU: how the op fronts relay out a dense operand whose memory
// order is another operand's with two groups of dimensions swapped (NCHW <-> NHWC), see
// ops/front.cpp, copy_into. ATen's copy_ walks such a pair element by element.
#pragma once

#include <cstdint>

namespace fused_act::cpu {

// dst[b][c][r] = src[b][r][c] for src a contiguous [batch][rows][cols] array of elements of
// elem_size bytes (2, 4 or 8) and dst a contiguous [batch][cols][rows] one.
struct TransposeArgs {
  const void* src;
  void* dst;
  int64_t batch;
  int64_t rows;
  int64_t cols;
  int elem_size;
};

// On the instruction set the kernels use (cpu/dispatch.cpp).
void run_transpose(const TransposeArgs& a);

}  // namespace fused_act::cpu

// One per instruction set (cpu/transpose_kernels.cpp, built once per set like the kernels).
#define FUSED_ACT_DECLARE_CPU_TRANSPOSE(ISA)  \
  namespace fused_act::cpu::ISA {             \
  void run_transpose(const TransposeArgs& a); \
  }

FUSED_ACT_DECLARE_CPU_TRANSPOSE(DEFAULT)
FUSED_ACT_DECLARE_CPU_TRANSPOSE(AVX2)
FUSED_ACT_DECLARE_CPU_TRANSPOSE(AVX512)
FUSED_ACT_DECLARE_CPU_TRANSPOSE(AVX512_BF16)
