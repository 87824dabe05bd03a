// The CUDA thread bodies of one activation compiled for the host (see simulation.h). setup.py
// compiles this file once per activation, like cpu/activation_kernels.cpp.
#include FUSED_ACT_ACTIVATION_HEADER

#include <type_traits>

#include "../cuda/elementwise_thread.cuh"
#include "../cuda/mask_thread.cuh"
#include "simulation.h"

namespace fused_act {

template <class Act>
bool SimulatedThreads<Act>::elementwise(const ElementwiseArgs& a, int64_t nthreads, int64_t only_thread) {
  bool vectorized = false;
  visit_dtype(a.dtype, [&](auto storage) {
    using S = decltype(storage);
    visit_elementwise_op<Act, opmath_t<S>>(a, [&](const auto& op) {
      using Op = std::decay_t<decltype(op)>;
      const auto t = cuda::make_operands<S, Op::kInputs, Op::kOutputs>(a);
      vectorized = cuda::can_vectorize(t);
      const cuda::Items it = cuda::plan_items(t, vectorized);
      for (int64_t tid = 0; tid < nthreads; ++tid) {
        if (only_thread < 0 || tid == only_thread) cuda::elementwise_body(tid, nthreads, t, op, vectorized, it);
      }
    });
  });
  return vectorized;
}

template <class Act>
bool SimulatedThreads<Act>::mask(const MaskArgs& a, int64_t nthreads) {
  bool packets = false;
  if constexpr (is_maskable<Act>()) {
    visit_dtype(a.dtype, [&](auto storage) {
      using S = decltype(storage);
      const cuda::MaskOperands<S> t{static_cast<const S*>(a.in), static_cast<S*>(a.out), a.mask, a.n};
      packets = cuda::can_vectorize_mask(t);
      const Params<opmath_t<S>> p = make_params<opmath_t<S>>(a.params);
      for (int64_t tid = 0; tid < nthreads; ++tid) cuda::mask_body<Act>(tid, nthreads, t, p, a.backward, packets);
    });
  }
  return packets;
}

template struct SimulatedThreads<act::FUSED_ACT_ACTIVATION>;

}  // namespace fused_act
