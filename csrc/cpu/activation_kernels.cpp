// The CPU kernels of one activation for one instruction set. setup.py compiles this file once
// per (activation in activations/list.h) x (instruction set in its CPU_ISAS), defining
//   FUSED_ACT_ACTIVATION         the functor's name (Gelu),
//   FUSED_ACT_ACTIVATION_HEADER  its header ("activations/act/gelu.h"),
//   CPU_CAPABILITY               the set's name (AVX2),
// so that a change to one functor rebuilds only that activation's objects.
#define FUSED_ACT_CPU_VEC 1

#include FUSED_ACT_ACTIVATION_HEADER

#include "kernels.h"
#include "mask_loop.h"
#include "vectorized_loop.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {

// Functors with kAvx2OnAvx512 (functor.h): their AVX-512 build calls the AVX2 kernels. Each
// where() costs AVX-512 two more instructions than AVX2 (ATen's comparison result is a vector,
// turned into a mask register and back), and these activations are little else than nested
// selects. Alternating runs of `bench.call_cost --modes fwd` (2-core AMD EPYC, Zen 4; medians
// of 3 runs of 31 rounds, eager / fused, AVX-512 build -> AVX2 build) at 16,384 / 65,536 floats:
// hardtanh 1.16 -> 1.38 / 1.02 -> 1.22, hardsigmoid 1.04 -> 1.24 / 1.07 -> 1.32, hardswish
// 1.02 -> 1.30 / 1.02 -> 1.37, relu6 0.86 -> 1.17 / 0.85 -> 1.07; relu and leaky_relu (one
// select) equal; bfloat16 within 0.05 either way (`python -m bench`, 2^16 and 2^20). Eager runs
// ATen's AVX2 kernels for these on AVX-512 CPUs as well.
template <class A, class = void>
struct Avx2OnAvx512 : std::false_type {};
template <class A>
struct Avx2OnAvx512<A, std::enable_if_t<A::kAvx2OnAvx512>> : std::true_type {};

#if defined(CPU_CAPABILITY_AVX512)
template <class Act>
constexpr bool kCallsAvx2 = Avx2OnAvx512<Act>::value;
#else
template <class Act>
constexpr bool kCallsAvx2 = false;
#endif

template <class Act>
void ActivationKernels<Act>::elementwise(const ElementwiseArgs& a, const ChannelSum* sum) {
  if constexpr (kCallsAvx2<Act>) {
    AVX2::ActivationKernels<Act>::elementwise(a, sum);
  } else {
    visit_dtype(a.dtype, [&](auto storage) {
      using scalar_t = decltype(storage);
      visit_elementwise_op<Act, opmath_t<scalar_t>>(a, [&](const auto& op) { vectorized_map<scalar_t>(a, op, sum); });
    });
  }
}

template <class Act>
void ActivationKernels<Act>::mask(const MaskArgs& a) {
  if constexpr (is_maskable<Act>()) {
    visit_dtype(a.dtype, [&](auto storage) {
      using scalar_t = decltype(storage);
      if (a.backward) {
        mask_loop::mask_backward<scalar_t, Act>(a);
      } else {
        mask_loop::mask_forward<scalar_t, Act>(a);
      }
    });
  }
}

template struct ActivationKernels<act::FUSED_ACT_ACTIVATION>;

}  // namespace CPU_CAPABILITY
}  // namespace fused_act::cpu
