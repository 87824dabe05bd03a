// Storage types of the CPU kernels: which ones a build holds, and the float -> storage rounding
// of half and bfloat16. Included only from files built with CPU_CAPABILITY defined.
#pragma once

#include <type_traits>

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include "../activations/elementwise.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {

// Calls f(scalar_t{}) for the storage type. The AVX512_BF16 build (setup.py) holds bfloat16's
// kernels only: cpu/dispatch.cpp sends it nothing else, and the other three types would triple
// its compile time for code the AVX512 build already has.
template <class F>
inline void visit_storage(DType d, F&& f) {
#if defined(CPU_CAPABILITY_AVX512_BF16)
  TORCH_INTERNAL_ASSERT(d == DType::kBFloat16, "fused_act: the AVX512_BF16 kernels are bfloat16's only");
  f(c10::BFloat16{});
#else
  visit_dtype(d, std::forward<F>(f));
#endif
}

// Two float vectors rounded (to nearest even) into one vector of S. ATen's AVX-512 bfloat16
// rounding is an integer sequence (add 0x7fff plus the lowest kept bit, shift, NaN fix-up, pack),
// about ten instructions per 32 values; CPUs with avx512_bf16 do it in one, vcvtne2ps2bf16.
// bfloat16 forward at 65,536 elements, one thread, relu: 9.1 us with ATen's rounding, 5.1 us
// with the instruction, 5.1 us for float32 (2-core AMD EPYC, Zen 4). The instruction flushes
// results below FLT_MIN (1.2e-38) to zero where ATen's sequence keeps bfloat16 subnormals: an
// absolute difference of at most 1.2e-38, as oneDNN's bfloat16 kernels (eager's gelu) have.
template <class S>
inline at::vec::Vectorized<S> from_float(const at::vec::Vectorized<float>& lo, const at::vec::Vectorized<float>& hi) {
#if defined(CPU_CAPABILITY_AVX512_BF16)
  if constexpr (std::is_same_v<S, c10::BFloat16>) {
    return at::vec::Vectorized<S>(reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
  }
#endif
  return at::vec::convert_from_float<S>(lo, hi);
}

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
