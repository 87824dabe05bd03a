// The elementwise computations every backend runs (forward, backward, double backward, and the
// fused kinds), built from a functor, and the dispatch from run-time values (kind, form, dtype)
// to a concrete op type for one activation. Backends only supply a loop; each activation's
// instantiations live in that activation's own objects (setup.py builds one per activation).
#pragma once

#include <type_traits>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "common.h"
#include "list.h"
#include "math.h"

namespace fused_act {

// Compute type: float for float, half and bfloat16; double for double.
template <class S>
using opmath_t = std::conditional_t<std::is_same_v<S, double>, double, float>;

// One operand of a launch, seen as a (rows, cols) matrix of the launch's storage type. Element
// (r, c) is at ptr[r' * row_stride + c], or ptr[r' * row_stride] when per_row (one value for the
// whole row: the bias of an NCHW channel), with r' = r, or r % period when period > 0 (rows of
// an (N, C, HW) tensor cycle through the C channels). A flat tensor is one row.
struct Operand {
  const void* ptr = nullptr;
  int64_t row_stride = 0;
  int64_t period = 0;
  bool per_row = false;
};

struct OutOperand {
  void* ptr = nullptr;
  int64_t row_stride = 0;
};

// One elementwise launch, backend-neutral: num_inputs(kind) inputs, num_outputs(kind) outputs,
// rows * cols elements. The op front builds it (csrc/ops/); backends only supply a loop.
struct ElementwiseArgs {
  ActId act;
  Kind kind;
  bool from_output;  // kBackward / kDoubleBackward: s is y (true) or x (false)
  DType dtype;
  int64_t rows = 1;
  int64_t cols = 0;
  Operand in[kMaxInputs];
  OutOperand out[2];
  double params[kMaxParams];

  int64_t numel() const { return rows * cols; }
};

// A per-channel sum of output 0 that the CPU loop fuses into the launch (the bias gradient):
// sums[ch] += out0(r, c) over all elements, in the compute type, where ch = c when per_col
// (channels are the columns) and ch = r % channels otherwise (a row per (n, channel)). sums
// holds `channels` values of the compute type (float, or double for double).
// Reduce-only ops (ReducesOnly below: batch norm's statistics and its backward's first pass)
// store nothing and sum every output m into sums[m * channels + ch] instead.
struct ChannelSum {
  void* sums;
  int64_t channels;
  bool per_col;
};

template <class Act>
constexpr bool has_output_form() {
  return Act::kSaved == Saved::kOutput || Act::kSaved == Saved::kEither || Act::kSaved == Saved::kNone;
}
template <class Act>
constexpr bool has_input_form() {
  return Act::kSaved == Saved::kInput || Act::kSaved == Saved::kEither;
}

// Functors declaring kMemoryBound (functor.h).
template <class A, class = void>
struct MemoryBound : std::false_type {};
template <class A>
struct MemoryBound<A, std::enable_if_t<A::kMemoryBound>> : std::true_type {};

template <class A, class = void>
struct ZeroBySelect : std::false_type {};
template <class A>
struct ZeroBySelect<A, std::enable_if_t<A::kZeroBySelect>> : std::true_type {};

// g f'(s) through the saved form kFromOutput names. kZeroBySelect functors write it as the
// select torch's backward kernel makes (relu's threshold_backward, hardtanh_backward,
// hardsigmoid_backward, hardswish_backward), so an inf or NaN gradient in a flat region gives 0
// (a dead ReLU stops it) in one or two compare-and-blends per vector, where g * f' followed by a
// select on f' = 0 took 5-7 instructions; per element both run at L2 speed at 16,384-65,536
// floats, as ATen's kernels do. The others multiply, as torch's formulas do.
template <class Act, bool kFromOutput, class T, class P>
FA_HD T grad_at(T g, T s, const P& p) {
  if constexpr (ZeroBySelect<Act>::value) {
    if constexpr (kFromOutput) {
      return Act::grad_output(g, s, p);
    } else {
      return Act::grad_input(g, s, p);
    }
  } else if constexpr (kFromOutput) {
    return g * Act::d_output(s, p);
  } else {
    return g * Act::d_input(s, p);
  }
}

// g f'(x) at an input x: through the output where only that form exists (sigmoid, tanh, ...).
template <class Act, class T, class P>
FA_HD T grad_at_input(T g, T x, const P& p) {
  if constexpr (has_input_form<Act>()) {
    return grad_at<Act, false>(g, x, p);
  } else {
    return grad_at<Act, true>(g, Act::forward(x, p), p);
  }
}

// g d where d is a derivative that is a constant per region (the mask backward's two values,
// f'' in double backward): 0 where d = 0 for kZeroBySelect functors, as grad_at's selects.
template <class Act, class T>
FA_HD T grad_times(T g, T d) {
  if constexpr (ZeroBySelect<Act>::value) {
    return math::where(math::eq(d, T(0)), T(0), g * d);
  } else {
    return g * d;
  }
}

// Two results of one element (the gated backward's two gradients).
template <class T>
struct Two {
  T first, second;
};

template <class Act, class C>
struct ForwardOp {
  static constexpr int kInputs = 1, kOutputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T x) const {
    return Act::forward(x, p);
  }
};

template <class Act, bool kFromOutput, class C>
struct BackwardOp {
  static constexpr int kInputs = 2, kOutputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T g, T s) const {
    return grad_at<Act, kFromOutput>(g, s, p);
  }
};

// Derivative of g * f'(s) with respect to s, times the incoming gradient gg.
template <class Act, bool kFromOutput, class C>
struct DoubleBackwardOp {
  static constexpr int kInputs = 3, kOutputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T gg, T g, T s) const {
    if constexpr (kFromOutput) {
      return grad_times<Act>(gg * g, Act::d2_output(s, p));
    } else {
      return grad_times<Act>(gg * g, Act::d2_input(s, p));
    }
  }
};

// Bias + activation: the sum x + b exists only in registers (computed in C, not rounded to
// the storage type as eager's separate add would).
template <class Act, class C>
struct BiasForwardOp {
  static constexpr int kInputs = 2, kOutputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T x, T b) const {
    return Act::forward(x + b, p);
  }
};

template <class Act, class C>
struct BiasBackwardOp {
  static constexpr int kInputs = 3, kOutputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T g, T x, T b) const {
    return grad_at_input<Act>(g, x + b, p);
  }
};

// Gated unit f(a) * u (GLU with f = sigmoid, SwiGLU with silu, GeGLU with gelu, ReGLU with relu).
template <class Act, class C>
struct GatedForwardOp {
  static constexpr int kInputs = 2, kOutputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T a, T u) const {
    return Act::forward(a, p) * u;
  }
};

template <class Act, class C>
struct GatedBackwardOp {
  static constexpr int kInputs = 3, kOutputs = 2;
  Params<C> p;
  template <class T>
  FA_HD Two<T> operator()(T g, T a, T u) const {
    return {grad_at_input<Act>(g * u, a, p), g * Act::forward(a, p)};
  }
};

// Batch norm + activation (fused_act::batch_norm_act). The normalisation is an affine map per
// channel, z = x * scale + shift with scale = weight * invstd and shift = bias - mean * scale
// (computed once per channel by the op front), so z exists only in registers: the forward reads x
// and writes f(z), one pass after the statistics. Backward (training), with dz = g f'(z) and M
// elements per channel:
//   dx = scale (dz - mean(dz) - xhat mean(dz xhat)),  xhat = (x - mean) invstd,
// which is scale * dz + k0 + k1 * x with k1 = -scale invstd^2 (sum(dz x) - mean sum(dz)) / M and
// k0 = -scale sum(dz) / M - k1 mean: one pass for the two sums, one for dx (eval: k0 = k1 = 0).
template <class Act, class C>
struct AffineForwardOp {
  static constexpr int kInputs = 3, kOutputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T x, T scale, T shift) const {
    return Act::forward(x * scale + shift, p);
  }
};

template <class Act, class C>
struct AffineGradSumsOp {
  static constexpr int kInputs = 4, kOutputs = 2;
  Params<C> p;
  template <class T>
  FA_HD Two<T> operator()(T g, T x, T scale, T shift) const {
    const T dz = grad_at_input<Act>(g, x * scale + shift, p);
    return {dz, dz * x};
  }
};

template <class Act, class C>
struct AffineBackwardOp {
  static constexpr int kInputs = 6, kOutputs = 1;
  Params<C> p;
  template <class T>
  FA_HD T operator()(T g, T x, T scale, T shift, T k0, T k1) const {
    return grad_at_input<Act>(g, x * scale + shift, p) * scale + (k0 + k1 * x);
  }
};

// The statistics: sums of x - k and its square per channel, k one value of the channel (its first
// element), so that the variance S2 / M - (S1 / M)^2 does not cancel when |mean| >> std (the
// shifted-data algorithm). Independent of the activation: instantiated in identity's objects only.
template <class C>
struct ChannelStatsOp {
  static constexpr int kInputs = 2, kOutputs = 2;
  template <class T>
  FA_HD Two<T> operator()(T x, T k) const {
    const T d = x - k;
    return {d, d * d};
  }
};

// Inputs from this index on are per-channel coefficients stored in the compute type (float for
// half and bfloat16 tensors, so that scale = weight * invstd and shift = bias - mean * scale keep
// float precision: rounded to bfloat16, shift would lose |mean| / 256 where z cancels), read as C
// whether broadcast per row or laid out along the columns. kInputs: none.
template <class Op>
struct CoefficientInputs {
  static constexpr int value = Op::kInputs;
};
template <class Act, class C>
struct CoefficientInputs<AffineForwardOp<Act, C>> {
  static constexpr int value = 1;
};
template <class Act, class C>
struct CoefficientInputs<AffineGradSumsOp<Act, C>> {
  static constexpr int value = 2;
};
template <class Act, class C>
struct CoefficientInputs<AffineBackwardOp<Act, C>> {
  static constexpr int value = 2;
};
template <class C>
struct CoefficientInputs<ChannelStatsOp<C>> {
  static constexpr int value = 1;
};

// The ops launched with a ChannelSum: bias_act's backward (input form: BiasBackwardOp; output
// form: the plain backward through y), which sums output 0 beside storing it, and the reduce-only
// ops; no other op's sum code is compiled.
template <class Op>
struct ReducesOnly : std::false_type {};
template <class Act, class C>
struct ReducesOnly<AffineGradSumsOp<Act, C>> : std::true_type {};
template <class C>
struct ReducesOnly<ChannelStatsOp<C>> : std::true_type {};

template <class Op>
struct SumsChannels : ReducesOnly<Op> {};
template <class Act, class C>
struct SumsChannels<BiasBackwardOp<Act, C>> : std::true_type {};
template <class Act, class C>
struct SumsChannels<BackwardOp<Act, true, C>> : std::true_type {};

// The ops with an operand that may be per_row (a per-channel value on NCHW rows); the others'
// loops carry no broadcast test.
template <class Op>
struct BroadcastsRows : std::false_type {};
template <class Act, class C>
struct BroadcastsRows<BiasForwardOp<Act, C>> : std::true_type {};
template <class Act, class C>
struct BroadcastsRows<BiasBackwardOp<Act, C>> : std::true_type {};
template <class Act, class C>
struct BroadcastsRows<AffineForwardOp<Act, C>> : std::true_type {};
template <class Act, class C>
struct BroadcastsRows<AffineGradSumsOp<Act, C>> : std::true_type {};
template <class Act, class C>
struct BroadcastsRows<AffineBackwardOp<Act, C>> : std::true_type {};
template <class C>
struct BroadcastsRows<ChannelStatsOp<C>> : std::true_type {};

// Calls f(op) with the op object of activation Act for (kind, from_output) in compute type C.
// Only the derivative forms a functor defines are instantiated; the op front never asks for
// another.
template <class Act, class C, class F>
inline void visit_elementwise_op(const ElementwiseArgs& a, F&& f) {
  const Params<C> p = make_params<C>(a.params);
  switch (a.kind) {
    case Kind::kForward:
      f(ForwardOp<Act, C>{p});
      return;
    case Kind::kBiasForward:
      f(BiasForwardOp<Act, C>{p});
      return;
    case Kind::kBiasBackward:  // the output form of bias_act's backward is kBackward
      if constexpr (has_input_form<Act>()) f(BiasBackwardOp<Act, C>{p});
      return;
    case Kind::kGatedForward:
      f(GatedForwardOp<Act, C>{p});
      return;
    case Kind::kGatedBackward:
      f(GatedBackwardOp<Act, C>{p});
      return;
    case Kind::kAffineForward:
      f(AffineForwardOp<Act, C>{p});
      return;
    case Kind::kAffineGradSums:
      f(AffineGradSumsOp<Act, C>{p});
      return;
    case Kind::kAffineBackward:
      f(AffineBackwardOp<Act, C>{p});
      return;
    case Kind::kChannelStats:  // the front launches it as identity's
      if constexpr (std::is_same_v<Act, act::Identity>) f(ChannelStatsOp<C>{});
      return;
    case Kind::kBackward:
    case Kind::kDoubleBackward:
      break;
  }
  auto with_form = [&](auto from_output) {
    constexpr bool kFromOutput = decltype(from_output)::value;
    if (a.kind == Kind::kBackward) {
      f(BackwardOp<Act, kFromOutput, C>{p});
    } else {
      f(DoubleBackwardOp<Act, kFromOutput, C>{p});
    }
  };
  if constexpr (has_output_form<Act>() && has_input_form<Act>()) {
    if (a.from_output) {
      with_form(std::true_type{});
    } else {
      with_form(std::false_type{});
    }
  } else {
    with_form(std::bool_constant<has_output_form<Act>()>{});
  }
}

// Calls f(scalar_t{}) for the storage type.
template <class F>
inline void visit_dtype(DType d, F&& f) {
  switch (d) {
    case DType::kFloat:
      f(float{});
      break;
    case DType::kDouble:
      f(double{});
      break;
    case DType::kHalf:
      f(c10::Half{});
      break;
    case DType::kBFloat16:
      f(c10::BFloat16{});
      break;
  }
}

}  // namespace fused_act
