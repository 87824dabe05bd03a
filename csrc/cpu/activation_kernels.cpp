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
#include "storage.h"
#include "vectorized_loop.h"

namespace fused_act::cpu {
namespace CPU_CAPABILITY {

// Functors with kMemoryBound (functor.h): their AVX-512 build calls the AVX2 kernels, as ATen
// does for its memory-bound kernels (DispatchStub.h: REGISTER_DISPATCH leaves the AVX-512 slot
// empty, so eager's relu, threshold_backward, hardtanh, ... run AVX2 on AVX-512 CPUs; only
// ALSO_REGISTER_AVX512_DISPATCH kernels get AVX-512). For math that is only selects and
// multiplies, 512-bit vectors gain nothing in cache and lose a little: one op call from C++
// (2-core AMD EPYC, Zen 4, one thread, medians of 15 x 2,000 calls, two runs each), AVX-512 ->
// AVX2, relu at 65,536 floats forward 6.1-6.7 -> 5.9-6.0 us, backward 9.5-9.6 -> 9.3;
// squared_relu forward 6.2-6.3 -> 5.9; hardtanh, relu6, hardsigmoid, hardswish and leaky_relu
// equal within the runs' spread. Transcendental functors keep AVX-512 (sigmoid forward
// 16.9 -> 38.2 us on AVX2).
// The AVX512_BF16 build keeps them: bfloat16's rounding, one instruction there, is what such a
// loop spends its time on (storage.h).
#if defined(CPU_CAPABILITY_AVX512) && !defined(CPU_CAPABILITY_AVX512_BF16)
template <class Act>
constexpr bool kCallsAvx2 = MemoryBound<Act>::value;
#else
template <class Act>
constexpr bool kCallsAvx2 = false;
#endif

// The launches that may stream their stores (cpu/streaming.h): every op of a memory-bound
// functor, and any functor's backward from the output, f'(y) a select or a polynomial in y for
// all but logsigmoid (sigmoid's y (1 - y), tanh's 1 - y^2, elu's y + alpha). Forward + backward
// at 2^22 floats with both launches streamed (bench/streaming.py, before this split): sigmoid
// 1.12-1.25x, tanh 1.12x faster, though their forwards alone streamed 1.0-1.17x and 0.87x.
template <class Act, class Op>
constexpr bool kStreams = MemoryBound<Act>::value;
template <class Act, class C>
constexpr bool kStreams<Act, BackwardOp<Act, true, C>> = true;

template <class Act>
void ActivationKernels<Act>::elementwise(const ElementwiseArgs& a, const ChannelSum* sum) {
  if constexpr (kCallsAvx2<Act>) {
    AVX2::ActivationKernels<Act>::elementwise(a, sum);
  } else {
    visit_storage(a.dtype, [&](auto storage) {
      using scalar_t = decltype(storage);
      visit_elementwise_op<Act, opmath_t<scalar_t>>(
          a, [&](const auto& op) { vectorized_map<scalar_t, kStreams<Act, std::decay_t<decltype(op)>>>(a, op, sum); });
    });
  }
}

template <class Act>
void ActivationKernels<Act>::mask(const MaskArgs& a) {
  if constexpr (is_maskable<Act>()) {
    visit_storage(a.dtype, [&](auto storage) {
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
