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

// The first `count` (0 < count <= size) elements of a storage vector at p, the rest zero, and the
// store of those elements. ATen's partial loadu / store of a 16-bit vector under AVX2 go through
// a stack buffer and memcpy (a store-forwarding stall on the load): three of them per short row
// made bfloat16 softmax over rows of 10 2.7x slower in forward ((65536, 10), 2 threads, AVX2 build
// on Intel: 1.9 ms against 0.7 with full loads in their place). AVX2 has no 16-bit masked load or
// store: the pairs go through masked 32-bit ones, an odd last element on its own. Masked-off
// lanes touch no memory, so nothing outside the count elements is read or written. Other types
// and instruction sets keep ATen's (masked on AVX-512).
#if defined(CPU_CAPABILITY_AVX2)
// The leading `pairs` 32-bit lanes of a 256-bit vector.
inline __m256i pair_mask(int64_t pairs) {
  static const int32_t table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 8 - pairs));
}
#endif

template <class S>
inline at::vec::Vectorized<S> load_first(const S* p, int64_t count) {
#if defined(CPU_CAPABILITY_AVX2)
  if constexpr (sizeof(S) == 2) {
    __m256i v = _mm256_maskload_epi32(reinterpret_cast<const int*>(p), pair_mask(count / 2));
    if (count % 2 == 1) {
      // lane count - 1 of a broadcast of the last element, blended in by a one-lane mask
      static const int16_t lane[32] = {0,  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
      const __m256i last = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lane + 16 - (count - 1)));
      v = _mm256_blendv_epi8(v, _mm256_set1_epi16(reinterpret_cast<const int16_t*>(p)[count - 1]), last);
    }
    return at::vec::Vectorized<S>(v);
  }
#endif
  return at::vec::Vectorized<S>::loadu(p, count);
}

template <class S>
inline void store_first(S* p, const at::vec::Vectorized<S>& v, int64_t count) {
#if defined(CPU_CAPABILITY_AVX2)
  if constexpr (sizeof(S) == 2) {
    const __m256i bits = v;
    _mm256_maskstore_epi32(reinterpret_cast<int*>(p), pair_mask(count / 2), bits);
    if (count % 2 == 1) {
      alignas(32) int16_t lanes[16];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), bits);
      reinterpret_cast<int16_t*>(p)[count - 1] = lanes[count - 1];
    }
    return;
  }
#endif
  v.store(p, count);
}

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
