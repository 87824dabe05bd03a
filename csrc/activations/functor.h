// What every activation functor (act/<name>.h, one file each: the only place its math is
// written) defines:
//   kName, kParams        the op name and its parameter names (comma separated, in order);
//   kSaved                what backward needs from the forward (see Saved in common.h);
//   forward(x, p)         y = f(x);
//   d_output(y, p), d2_output(y, p)   f'(x) written in y, and d f'/dy      (kSaved: Output, Either, None)
//   d_input(x, p),  d2_input(x, p)    f'(x), and f''(x)                    (kSaved: Input, Either)
//   output_ok(p)          (kSaved == Either) whether the output form is valid for these parameters;
//   invalid(p)            nullptr, or the rule the parameters break;
//   kMaskable, d_mask(bit, p)   (piecewise-linear functors only) f' takes two values, d_mask(false, p)
//                         and d_mask(true, p), so backward can keep one bit per element (mask.h);
//   kZeroBySelect         (optional) torch's backward selects 0 where f' = 0 instead of multiplying
//                         (threshold_backward, hardtanh_backward, ...), so an inf or NaN gradient
//                         there gives 0, not NaN. Such a functor writes g f' as that select,
//                         grad_output(g, y, p) / grad_input(g, x, p) for the forms it has, and
//                         its d_output / d_input as the select at g = 1 (elementwise.h, grad_at);
//   kMemoryBound          (optional) only selects and multiplies: the CPU runs its AVX2 kernels on
//                         AVX-512 CPUs too, as ATen does (cpu/activation_kernels.cpp), and streams
//                         the stores of launches larger than the L3 (cpu/streaming.h);
// T is float, double or at::vec::Vectorized of those; P is Params<float or double>. The body
// uses only math.h primitives (comparisons too: where(lt(x, T(0)), ...), never x < T(0)), so
// the CPU SIMD loop, the CUDA kernel and the CPU simulation of a CUDA thread all run this same
// code. Reduced types are computed in float and rounded once.
//
// Derivatives at kinks follow PyTorch's autograd formulas (quoted per functor), and each functor
// names the torch function it must agree with; tests/test_activations.py checks that in float64.
#pragma once

#include "common.h"
#include "math.h"

// The signature of a functor's math: T is the value type, P the parameters.
#define FA_FN                 \
  template <class T, class P> \
  static FA_HD T

namespace fused_act::act {
// Functor bodies call exp, where, ... unqualified: the overload set of math.h.
using namespace ::fused_act::math;
}  // namespace fused_act::act
