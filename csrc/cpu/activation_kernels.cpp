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

template <class Act>
void ActivationKernels<Act>::elementwise(const ElementwiseArgs& a, const ChannelSum* sum) {
  visit_dtype(a.dtype, [&](auto storage) {
    using scalar_t = decltype(storage);
    visit_elementwise_op<Act, opmath_t<scalar_t>>(a, [&](const auto& op) { vectorized_map<scalar_t>(a, op, sum); });
  });
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
