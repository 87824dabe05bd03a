// The handful of math primitives the activation functors (and softmax.h) use, overloaded so that one functor
// body compiles for every backend:
//   float / double            on the host and on the GPU (CUDA's expf, tanhf, ... are <= 2 ulp);
//   at::vec::Vectorized<T>    on the CPU, when the including file defines FUSED_ACT_CPU_VEC
//                             (SLEEF's 1-ulp routines under AVX2 / AVX-512).
// Functors branch only through where(), never `if`, so the SIMD version computes both sides.
#pragma once

#include <cmath>

#include "common.h"

namespace fused_act::math {

FA_HD float exp(float x) { return ::expf(x); }
FA_HD double exp(double x) { return ::exp(x); }
FA_HD float expm1(float x) { return ::expm1f(x); }
FA_HD double expm1(double x) { return ::expm1(x); }
FA_HD float log(float x) { return ::logf(x); }
FA_HD double log(double x) { return ::log(x); }
FA_HD float log1p(float x) { return ::log1pf(x); }
FA_HD double log1p(double x) { return ::log1p(x); }
FA_HD float tanh(float x) { return ::tanhf(x); }
FA_HD double tanh(double x) { return ::tanh(x); }
FA_HD float erf(float x) { return ::erff(x); }
FA_HD double erf(double x) { return ::erf(x); }
FA_HD float abs(float x) { return ::fabsf(x); }
FA_HD double abs(double x) { return ::fabs(x); }

template <class T>
FA_HD T where(bool cond, T a, T b) {
  return cond ? a : b;
}

}  // namespace fused_act::math

#if defined(FUSED_ACT_CPU_VEC) && !defined(__CUDACC__)
#include <ATen/cpu/vec/vec.h>

namespace fused_act::math {

template <class S>
using Vec = at::vec::Vectorized<S>;

// SLEEF's 1-ulp routines (double; and float exp, erf). float expm1, log1p, tanh: see below.
template <class S> inline Vec<S> exp(const Vec<S>& x) { return x.exp(); }
template <class S> inline Vec<S> expm1(const Vec<S>& x) { return x.expm1(); }
template <class S> inline Vec<S> log1p(const Vec<S>& x) { return x.log1p(); }
template <class S> inline Vec<S> tanh(const Vec<S>& x) { return x.tanh(); }
template <class S> inline Vec<S> erf(const Vec<S>& x) { return x.erf(); }
template <class S> inline Vec<S> abs(const Vec<S>& x) { return x.abs(); }

// `cond` is a comparison result: all bits set in the lanes where it holds.
template <class S>
inline Vec<S> where(const Vec<S>& cond, const Vec<S>& a, const Vec<S>& b) {
  return Vec<S>::blendv(b, a, cond);
}

// float SIMD versions of expm1, log1p and tanh built on SLEEF's expf/logf. SLEEF's own
// expm1f/log1pf are 9-10x slower than its expf in this torch build (2^22 floats, one thread:
// torch.expm1 70 ms, torch.log1p 85 ms, torch.exp 8 ms, torch.tanh 23 ms), and these three carry
// elu, selu, celu, mish, softplus, logsigmoid and the tanh family. Each stays within a few ulp;
// tests/test_activations.py holds them to float32 tolerances against torch in float64.

// Taylor series below |x| = 0.5 (degree 9: truncation < 1e-9 relative), exp(x) - 1 above it,
// where the subtraction loses at most ~2 ulp.
inline Vec<float> expm1(const Vec<float>& x) {
  using V = Vec<float>;
  V p(1.f / 362880);
  p = p * x + V(1.f / 40320);
  p = p * x + V(1.f / 5040);
  p = p * x + V(1.f / 720);
  p = p * x + V(1.f / 120);
  p = p * x + V(1.f / 24);
  p = p * x + V(1.f / 6);
  p = p * x + V(0.5f);
  p = p * x + V(1.f);
  return where(x.abs() < V(0.5f), p * x, x.exp() - V(1.f));
}

// Goldberg's log1p(u) = log(w) * u / (w - 1) with w = 1 + u: the rounding of w cancels.
inline Vec<float> log1p(const Vec<float>& u) {
  using V = Vec<float>;
  const V w = V(1.f) + u;
  const V r = w.log() * (u / (w - V(1.f)));
  return where(w == V(1.f), u, where(u == V(INFINITY), u, r));
}

// tanh(x) = e / (e + 2) with e = expm1(2x), exact in form for all x; tanh(x) rounds to 1 in
// float from x = 9 on, where e overflows for large x.
inline Vec<float> tanh(const Vec<float>& x) {
  using V = Vec<float>;
  const V e = expm1(V(2.f) * x);
  return where(x > V(9.f), V(1.f), e / (e + V(2.f)));
}

}  // namespace fused_act::math
#endif
