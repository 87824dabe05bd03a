// The handful of math primitives the activation functors use, overloaded so that one functor
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

}  // namespace fused_act::math
#endif
