// softmax / log_softmax over one dimension, forward and backward: the per-element formulas and
// the per-row phases, host-and-device so that the CPU SIMD loop, the CUDA kernel and the CPU
// simulation of a CUDA thread group all run the same lines. No torch headers (nvcc).
//
// The tensor is seen as (outer, D, inner) around the softmax dimension; a "row" is the D
// elements sharing (outer, inner) index, `stride` (= inner) apart.
#pragma once

#include <cmath>
#include <cstdint>

#include "common.h"
#include "elementwise.h"
#include "math.h"

namespace fused_act {

// Everything a backend needs to run one softmax op over a contiguous (outer, D, inner) tensor.
struct SoftmaxArgs {
  DType dtype;
  bool log;       // log_softmax
  bool backward;  // in = y (the forward's output), grad = upstream gradient
  const void* in;
  const void* grad;
  void* out;
  int64_t outer, dim, inner;
};

// The four computations, each in three per-element parts around one row reduction `s`:
//   summand(v, g, m)   summed over the row to give s (m = row max, forward only)
//   row_constant(s)    computed once per row
//   out(v, g, m, c)    the result for each element
// v is x (forward) or y (backward). Forward subtracts the row max before exp so that no
// summand exceeds 1 (torch does the same); a row of all -inf then gives NaN, as in torch.
//   softmax          y = exp(x - m) / s,          s = sum exp(x - m)
//   log_softmax      y = (x - m) - log(s)         (not x - (m + log s): m + log s rounds at |m|)
//   softmax bwd      dx = y * (g - s),            s = sum g * y
//   log_softmax bwd  dx = g - exp(y) * s,         s = sum g
template <bool kLog, bool kBackward>
struct SoftmaxOp {
  static constexpr bool kNeedsMax = !kBackward;
  // out == summand * c: a backend whose output has the compute type may store the summand in
  // the sum pass and only rescale it last (one exp per element instead of two).
  static constexpr bool kOutIsScaledSummand = !kBackward && !kLog;

  template <class T>
  FA_HD static T summand(const T& v, const T& g, const T& m) {
    if constexpr (kBackward) {
      return kLog ? g : g * v;
    } else {
      return math::exp(v - m);
    }
  }

  template <class C>
  FA_HD static C row_constant(C s) {
    if constexpr (kBackward) {
      return s;
    } else if constexpr (kLog) {
      return math::log(s);
    } else {
      return C(1) / s;
    }
  }

  template <class T>
  FA_HD static T out(const T& v, const T& g, const T& m, const T& c) {
    if constexpr (kBackward) {
      if constexpr (kLog) {
        return g - math::exp(v) * c;
      } else {
        return v * (g - c);
      }
    } else if constexpr (kLog) {
      return (v - m) - c;
    } else {
      return math::exp(v - m) * c;
    }
  }
};

// Calls f(SoftmaxOp<...>{}) for the computation a describes.
template <class F>
inline void visit_softmax_op(const SoftmaxArgs& a, F&& f) {
  if (a.backward) {
    a.log ? f(SoftmaxOp<true, true>{}) : f(SoftmaxOp<false, true>{});
  } else {
    a.log ? f(SoftmaxOp<true, false>{}) : f(SoftmaxOp<false, false>{});
  }
}

template <class S>
struct SoftmaxRow {
  const S* in;    // x or y
  const S* grad;  // backward only
  S* out;
  int64_t n;
  int64_t stride;
};

// The row starting at (outer index o, inner index j) of a contiguous (outer, D, inner) tensor.
template <class S>
FA_HD SoftmaxRow<S> softmax_row(const SoftmaxArgs& a, int64_t o, int64_t j) {
  const int64_t base = o * a.dim * a.inner + j;
  const S* in = static_cast<const S*>(a.in) + base;
  const S* grad = a.backward ? static_cast<const S*>(a.grad) + base : nullptr;
  return {in, grad, static_cast<S*>(a.out) + base, a.dim, a.inner};
}

// NaN-propagating max, as torch's reductions: a NaN anywhere in the row makes the max NaN.
template <class C>
FA_HD C combine_max(C a, C b) {
  return (b > a || b != b) ? b : a;
}

template <class C>
FA_HD C combine_sum(C a, C b) {
  return a + b;
}

// Kahan-compensated running sum. One thread may sum a whole row (inner > 1, or SIMD lanes that
// each own a row): plain float accumulation of 10^5 terms drifts by ~1e-4 relative, compensated
// stays at a few ulp. T is C or at::vec::Vectorized<C>.
template <class T>
struct CompensatedSum {
  T sum{0};
  T carry{0};
  FA_HD void add(const T& v) {
    const T y = v - carry;
    const T t = sum + y;
    carry = (t - sum) - y;
    sum = t;
  }
};

// The phases of one row for thread `lane` of the `lanes` threads that share it: each thread
// takes elements lane, lane + lanes, ...; the caller combines the partials of all lanes
// (combine_max / combine_sum) between phases.
template <class S, class C = opmath_t<S>>
FA_HD C partial_max(int64_t lane, int64_t lanes, const SoftmaxRow<S>& r) {
  C m = -INFINITY;
  for (int64_t i = lane; i < r.n; i += lanes) m = combine_max(m, static_cast<C>(r.in[i * r.stride]));
  return m;
}

template <class Op, class S, class C = opmath_t<S>>
FA_HD C partial_sum(int64_t lane, int64_t lanes, const SoftmaxRow<S>& r, C m) {
  CompensatedSum<C> s;
  for (int64_t i = lane; i < r.n; i += lanes) {
    const C g = Op::kNeedsMax ? C(0) : static_cast<C>(r.grad[i * r.stride]);
    s.add(Op::summand(static_cast<C>(r.in[i * r.stride]), g, m));
  }
  return s.sum;
}

template <class Op, class S, class C = opmath_t<S>>
FA_HD void write(int64_t lane, int64_t lanes, const SoftmaxRow<S>& r, C m, C c) {
  for (int64_t i = lane; i < r.n; i += lanes) {
    const C g = Op::kNeedsMax ? C(0) : static_cast<C>(r.grad[i * r.stride]);
    r.out[i * r.stride] = static_cast<S>(Op::out(static_cast<C>(r.in[i * r.stride]), g, m, c));
  }
}

// A whole row by one thread (the CPU's scalar tails, the CUDA kernel for inner > 1).
template <class Op, class S, class C = opmath_t<S>>
FA_HD void softmax_row_serial(const SoftmaxRow<S>& r) {
  const C m = Op::kNeedsMax ? partial_max<S>(0, 1, r) : C(0);
  const C s = partial_sum<Op, S>(0, 1, r, m);
  write<Op, S>(0, 1, r, m, Op::row_constant(s));
}

}  // namespace fused_act
