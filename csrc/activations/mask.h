// Backward from a 1-bit mask, for activations whose derivative takes only two values
// (piecewise-linear ones: relu, leaky_relu, hardtanh, relu6, hardsigmoid). The bit of element
// x is "f'(x) equals d_mask(true)", with f' computed by the functor's own derivative, so each
// functor's kink convention (relu'(0) = 0, hardtanh' = 0 at the bounds, leaky_relu'(0) = slope)
// carries over without being written again. Backward is then g * d_mask(bit).
//
// Mask layout: byte i holds elements 8i .. 8i+7 (bit j = element 8i + j) in the memory order
// of the forward's output; padding bits of the last byte are 0. Shared by the CPU loop
// (cpu/mask_loop.h), the CUDA thread body (cuda/mask_thread.cuh) and the op front.
#pragma once

#include <type_traits>

#include "elementwise.h"

namespace fused_act {

template <class A, class = void>
struct IsMaskable : std::false_type {};
template <class A>
struct IsMaskable<A, std::enable_if_t<A::kMaskable>> : std::true_type {};

template <class Act>
constexpr bool is_maskable() {
  return IsMaskable<Act>::value;
}

// f'(x) for the mask bit. The input form when the functor has one (it is valid for every
// parameter), else the output form; for these functors y in the compute type and the rounded
// stored y compare alike (clamps and sign tests of values already representable).
template <class Act, class T, class P>
FA_HD T mask_derivative(T x, T y, const P& p) {
  if constexpr (has_input_form<Act>()) {
    return Act::d_input(x, p);
  } else {
    return Act::d_output(y, p);
  }
}

// One mask launch. Forward: in = x, out = y (in == out allowed: every backend reads an element
// before writing it), mask written. Backward: in = grad, out = grad_input, mask read.
struct MaskArgs {
  ActId act;
  bool backward;
  DType dtype;
  const void* in;
  void* out;
  uint8_t* mask;
  int64_t n;
  double params[kMaxParams];
};

constexpr int64_t mask_bytes(int64_t n) { return (n + 7) / 8; }

}  // namespace fused_act
