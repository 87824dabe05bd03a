// The handful of math primitives the activation functors (and softmax.h) use, overloaded so that one functor
// body compiles for every backend:
//   float / double            on the host and on the GPU (CUDA's expf, tanhf, ... are <= 2 ulp;
//                             the half / bfloat16 kernels use __expf and __logf, see below);
//   at::vec::Vectorized<T>    on the CPU, when the including file defines FUSED_ACT_CPU_VEC
//                             (SLEEF's 1-ulp routines under AVX2 / AVX-512).
// Functors branch only through where(), never `if`, so the SIMD version computes both sides, and
// compare only through lt, le, gt, ge, eq, ne.
#pragma once

#include <cmath>

#include "common.h"

namespace fused_act::math {

#if defined(__CUDA_ARCH__) && defined(FUSED_ACT_CUDA_REDUCED_PRECISION)
// The half / bfloat16 CUDA kernels, compiled in objects of their own (setup.py) that hold no
// float or double kernel: the hardware approximations, whose error (__expf: 2 + 1.5|x| ulp of
// float, below 2^-16 relative for |x| < 88; __logf: 2^-21 absolute near 1, 3 ulp elsewhere) is
// far under half's 2^-11 and bfloat16's 2^-8 rounding. Outputs below float's normal range
// (exp(x) < 1.2e-38) flush to 0, a bfloat16 subnormal's worth of absolute error. expm1, log1p,
// tanh and erfc keep CUDA's functions: their fast forms lose the relative accuracy near 0 that
// the output type still shows.
FA_HD float exp(float x) { return __expf(x); }
FA_HD float log(float x) { return __logf(x); }
#else
FA_HD float exp(float x) { return ::expf(x); }
FA_HD float log(float x) { return ::logf(x); }
#endif
FA_HD double exp(double x) { return ::exp(x); }
FA_HD float expm1(float x) { return ::expm1f(x); }
FA_HD double expm1(double x) { return ::expm1(x); }
FA_HD double log(double x) { return ::log(x); }
FA_HD float log1p(float x) { return ::log1pf(x); }
FA_HD double log1p(double x) { return ::log1p(x); }
// log1p(u) for u in [0, 1] (softplus and logsigmoid: u = exp(-|x|)); CPU SIMD float has a faster form.
FA_HD float log1p_unit(float u) { return ::log1pf(u); }
FA_HD double log1p_unit(double u) { return ::log1p(u); }
FA_HD float tanh(float x) { return ::tanhf(x); }
FA_HD double tanh(double x) { return ::tanh(x); }
FA_HD float abs(float x) { return ::fabsf(x); }
FA_HD double abs(double x) { return ::fabs(x); }
// exp(x) for x <= 0 or NaN (exp(-|x|), exp(-x^2/2)): the same values as exp; CPU SIMD float on
// AVX2 skips the overflow handling its exp needs (below).
FA_HD float exp_nonpos(float x) { return exp(x); }
FA_HD double exp_nonpos(double x) { return exp(x); }
// expm1(x) for x <= 0 or NaN (elu, selu, softplus's and logsigmoid's derivatives from
// the output); CPU SIMD float has a form with one polynomial (below).
FA_HD float expm1_nonpos(float x) { return expm1(x); }
FA_HD double expm1_nonpos(double x) { return expm1(x); }
// exp(-x) (sigmoid's and silu's exp); CPU SIMD float on AVX-512 folds the negation into exp.
FA_HD float exp_neg(float x) { return exp(-x); }
FA_HD double exp_neg(double x) { return exp(-x); }
// 1 / (1 + exp(-x)) (torch.sigmoid's formula); CPU SIMD float on AVX2 has a faster, reflected form.
FA_HD float sigmoid(float x) { return 1.f / (1.f + exp(-x)); }
FA_HD double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// The standard normal distribution at x: Phi(x), its CDF, and phi(x) = exp(-x^2 / 2) / sqrt(2 pi),
// its density (gelu's derivative, Phi + x phi). One function for both, so that SIMD float
// computes exp(-x^2 / 2) once for the pair; normcdf is Phi alone (gelu's forward), which SIMD
// float computes without exp. Phi = erfc(-x / sqrt 2) / 2, not (1 + erf(x / sqrt 2)) / 2, which
// cancels in the lower tail.
constexpr double kSqrt1_2 = 0.70710678118654752440;     // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1 / sqrt(2 pi)
template <class T>
struct Normal {
  T cdf;
  T pdf;
};
FA_HD float normcdf(float x) { return 0.5f * ::erfcf(x * float(-kSqrt1_2)); }
FA_HD double normcdf(double x) { return 0.5 * ::erfc(x * -kSqrt1_2); }
FA_HD Normal<float> std_normal(float x) { return {normcdf(x), exp(-0.5f * x * x) * float(kInvSqrt2Pi)}; }
FA_HD Normal<double> std_normal(double x) { return {normcdf(x), ::exp(-0.5 * x * x) * kInvSqrt2Pi}; }

template <class T>
FA_HD T where(bool cond, T a, T b) {
  return cond ? a : b;
}

// Comparisons are functions, not operators, so that AVX-512 can keep their result in a mask
// register (below); for scalars they are the operators. NaN compares false except in ne.
FA_HD bool lt(float a, float b) { return a < b; }
FA_HD bool le(float a, float b) { return a <= b; }
FA_HD bool gt(float a, float b) { return a > b; }
FA_HD bool ge(float a, float b) { return a >= b; }
FA_HD bool eq(float a, float b) { return a == b; }
FA_HD bool ne(float a, float b) { return a != b; }
FA_HD bool lt(double a, double b) { return a < b; }
FA_HD bool le(double a, double b) { return a <= b; }
FA_HD bool gt(double a, double b) { return a > b; }
FA_HD bool ge(double a, double b) { return a >= b; }
FA_HD bool eq(double a, double b) { return a == b; }
FA_HD bool ne(double a, double b) { return a != b; }

// Clamps, as ATen's clamp_min / clamp_max: where(lt(x, lo), lo, x) and where(gt(x, hi), hi, x),
// so x is kept where it is NaN or where both are zeros. The CPU's vmaxps / vminps (first
// operand the bound) give exactly those values in one instruction; a compare and a select took
// three on AVX2 (relu's forward loop: vcmpltps, vpcmpgtd, vandnps per vector).
FA_HD float at_least(float x, float lo) { return lt(x, lo) ? lo : x; }
FA_HD float at_most(float x, float hi) { return gt(x, hi) ? hi : x; }
FA_HD double at_least(double x, double lo) { return lt(x, lo) ? lo : x; }
FA_HD double at_most(double x, double hi) { return gt(x, hi) ? hi : x; }

}  // namespace fused_act::math

#if defined(FUSED_ACT_CPU_VEC) && !defined(__CUDACC__)
#include <ATen/cpu/vec/vec.h>

namespace fused_act::math {

template <class S>
using Vec = at::vec::Vectorized<S>;

// SLEEF's 1-ulp routines (double). float exp, expm1, log, log1p, tanh, std_normal: see below.
template <class S>
inline Vec<S> exp(const Vec<S>& x) {
  return x.exp();
}
template <class S>
inline Vec<S> exp_nonpos(const Vec<S>& x) {
  return x.exp();
}
template <class S>
inline Vec<S> exp_neg(const Vec<S>& x) {
  return (Vec<S>(0) - x).exp();
}
template <class S>
inline Vec<S> sigmoid(const Vec<S>& x) {
  return Vec<S>(1) / (Vec<S>(1) + x.neg().exp());
}
template <class S>
inline Vec<S> expm1(const Vec<S>& x) {
  return x.expm1();
}
template <class S>
inline Vec<S> expm1_nonpos(const Vec<S>& x) {
  return x.expm1();
}
template <class S>
inline Vec<S> log(const Vec<S>& x) {
  return x.log();
}
template <class S>
inline Vec<S> log1p(const Vec<S>& x) {
  return x.log1p();
}
template <class S>
inline Vec<S> log1p_unit(const Vec<S>& x) {
  return x.log1p();
}
template <class S>
inline Vec<S> tanh(const Vec<S>& x) {
  return x.tanh();
}
template <class S>
inline Vec<S> abs(const Vec<S>& x) {
  return x.abs();
}
template <class S>
inline Vec<S> at_least(const Vec<S>& x, const Vec<S>& lo) {
  return at::vec::clamp_min(x, lo);
}
template <class S>
inline Vec<S> at_most(const Vec<S>& x, const Vec<S>& hi) {
  return at::vec::clamp_max(x, hi);
}

// `cond` is a vector with all bits set in the lanes where it holds (a loaded selection, or a
// comparison below outside AVX-512).
template <class S>
inline Vec<S> where(const Vec<S>& cond, const Vec<S>& a, const Vec<S>& b) {
  return Vec<S>::blendv(b, a, cond);
}

enum class Cmp { lt, le, gt, ge, eq, ne };

#if defined(CPU_CAPABILITY_AVX512)
// ATen's AVX-512 comparisons return a vector (vcmpps into a mask register, then vpmovm2d) that
// its blendv turns back into a mask (vpcmpeqd) before vblendmps: two instructions per select
// that AVX2's vcmpps + vblendvps does not pay, and GCC does not fold them. These keep the mask.
// relu's backward loop went from 11 to 7 instructions per vector; measurements in docs/design.md
// ("CPU instruction sets"). The predicates are ATen's (ordered, quiet; ne unordered).
template <class S>
struct Mask;
template <>
struct Mask<float> {
  __mmask16 k;
};
template <>
struct Mask<double> {
  __mmask8 k;
};
template <Cmp c>
constexpr int kPredicate = c == Cmp::lt   ? _CMP_LT_OQ
                           : c == Cmp::le ? _CMP_LE_OQ
                           : c == Cmp::gt ? _CMP_GT_OQ
                           : c == Cmp::ge ? _CMP_GE_OQ
                           : c == Cmp::eq ? _CMP_EQ_OQ
                                          : _CMP_NEQ_UQ;
template <Cmp c>
inline Mask<float> compare(const Vec<float>& a, const Vec<float>& b) {
  return {_mm512_cmp_ps_mask(a, b, kPredicate<c>)};
}
template <Cmp c>
inline Mask<double> compare(const Vec<double>& a, const Vec<double>& b) {
  return {_mm512_cmp_pd_mask(a, b, kPredicate<c>)};
}
inline Vec<float> where(Mask<float> cond, const Vec<float>& a, const Vec<float>& b) {
  return _mm512_mask_blend_ps(cond.k, b, a);
}
inline Vec<double> where(Mask<double> cond, const Vec<double>& a, const Vec<double>& b) {
  return _mm512_mask_blend_pd(cond.k, b, a);
}
#else
// ATen's vector comparisons: all bits set in the lanes where they hold.
template <Cmp c, class S>
inline Vec<S> compare(const Vec<S>& a, const Vec<S>& b) {
  if constexpr (c == Cmp::lt) return a < b;
  if constexpr (c == Cmp::le) return a <= b;
  if constexpr (c == Cmp::gt) return a > b;
  if constexpr (c == Cmp::ge) return a >= b;
  if constexpr (c == Cmp::eq) return a == b;
  if constexpr (c == Cmp::ne) return a != b;
}
#endif

template <class S>
inline auto lt(const Vec<S>& a, const Vec<S>& b) {
  return compare<Cmp::lt>(a, b);
}
template <class S>
inline auto le(const Vec<S>& a, const Vec<S>& b) {
  return compare<Cmp::le>(a, b);
}
template <class S>
inline auto gt(const Vec<S>& a, const Vec<S>& b) {
  return compare<Cmp::gt>(a, b);
}
template <class S>
inline auto ge(const Vec<S>& a, const Vec<S>& b) {
  return compare<Cmp::ge>(a, b);
}
template <class S>
inline auto eq(const Vec<S>& a, const Vec<S>& b) {
  return compare<Cmp::eq>(a, b);
}
template <class S>
inline auto ne(const Vec<S>& a, const Vec<S>& b) {
  return compare<Cmp::ne>(a, b);
}

// float SIMD versions of exp, expm1, log, log1p, tanh and std_normal, inline. ATen's Vectorized<float>::exp is
// SLEEF's expf (1 ulp) behind an out-of-line call: every call spills all live vector registers
// (caller-saved in the x86-64 ABI) and stops the loop from overlapping two blocks' math. These
// inline forms let the compiler schedule whole activations; reduced types compute in float and
// get them too. Maximum errors over every float32 input are in docs/math.md
// (`python -m bench.math_accuracy`); tests/test_activations.py holds every activation to its
// float32 tolerance against torch in float64. double keeps SLEEF's routines.

// c[0] x^(N-1) + c[1] x^(N-2) + ... + c[N-1] by Horner's rule, one FMA per coefficient after the
// first (highest degree first). N is a constant, so the loop unrolls into the FMA chain.
template <size_t N>
inline Vec<float> horner(const Vec<float>& x, const float (&c)[N]) {
  Vec<float> p(c[0]);
  for (size_t k = 1; k < N; ++k) p = at::vec::fmadd(p, x, Vec<float>(c[k]));
  return p;
}

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kRoundToInt = 12582912.f;  // 1.5 * 2^23
// ln 2 in two parts for the Cody-Waite reduction (see exp)
constexpr float kLn2Hi = 0.693145751953125f;
constexpr float kLn2Lo = 1.428606765330187045e-06f;

// n = round(x log2(e)) by adding 1.5 * 2^23 in the FMA that scales x: the sum's ulp is 1, so
// it is rounded to an integer (ties to even) for |x log2(e)| < 2^22, and subtracting 1.5 * 2^23
// again is exact. An FMA and a subtraction in place of a multiply and vrndscaleps / vroundps
// (two uops on Intel). The sum's bits are those of 1.5 * 2^23 plus n as an integer, so
// `exponent_bits` makes 2^(n + bias) from them without a float-to-int conversion.
// (bench.sigmoid_forms, Intel Xeon AVX-512, one thread in L1: exp 0.146 -> 0.132 ns per element,
// 0.123 with exp_reduced's single Horner chain below.)
struct Log2Rounded {
  Vec<float> n, sum;
};
inline Log2Rounded round_log2e(const Vec<float>& xc) {
  using V = Vec<float>;
  const V sum = at::vec::fmadd(xc, V(kLog2e), V(kRoundToInt));
  return {sum - V(kRoundToInt), sum};
}
// 2^(n + bias) as a float from round_log2e's sum, for n + bias in [1, 254]: the integer
// n + bias is the sum's bits plus bias, and the shift drops the bits of 1.5 * 2^23 (its low 23
// bits are 0, the rest shift out).
inline Vec<float> exponent_bits(const Log2Rounded& k, int32_t bias) {
  using I = Vec<int32_t>;
  return at::vec::cast<float>((at::vec::cast<int32_t>(k.sum) + I(bias)) << I(23));
}

// r = xc - n ln2 and q(r), the parts of exp shared with exp_nonpos and expm1_nonpos (see exp).
inline Vec<float> exp_reduction(const Vec<float>& xc, const Vec<float>& n) {
  using V = Vec<float>;
  const V r = at::vec::fmadd(n, V(-kLn2Hi), xc);
  return at::vec::fmadd(n, V(-kLn2Lo), r);
}
constexpr float kExpQ[] = {0.0013751621590927243f, 0.008368915878236294f, 0.04166952893137932f, 0.166665181517601f,
                           0.49999988079071045f};
// exp(r) - 1 = r + r^2 q(r)
inline Vec<float> expm1_reduced(const Vec<float>& xc, const Vec<float>& n) {
  const Vec<float> r = exp_reduction(xc, n);
  return at::vec::fmadd(horner(r, kExpQ) * r, r, r);
}
// exp(r) = 1 + r (1 + r q(r)): the same polynomial as expm1_reduced + 1 in one chain of FMAs,
// one instruction fewer (with round_log2e, exp's max error 1.02 -> 0.90 ulp: docs/math.md).
inline Vec<float> exp_poly(const Vec<float>& r) {
  using V = Vec<float>;
  return at::vec::fmadd(at::vec::fmadd(horner(r, kExpQ), r, V(1.f)), r, V(1.f));
}
inline Vec<float> exp_reduced(const Vec<float>& xc, const Vec<float>& n) { return exp_poly(exp_reduction(xc, n)); }

// exp(x) = 2^n exp(r), x = n ln2 + r, |r| <= ln2/2 (Cody-Waite: ln2 in two parts, the first
// exact in a product with any |n| <= 150). exp(r) = 1 + r + r^2 q(r), q of degree 4 fitted to
// exp's relative error on that interval (max 3.6e-9 before rounding; ~1 ulp evaluated in float).
// 2^n is put in the exponent bits as 2^a 2^b, a = floor(n/2), so both factors are normal for
// n in [-150, 128]: results in the subnormal range and up to FLT_MAX come out right.
inline Vec<float> exp(const Vec<float>& x) {
  using V = Vec<float>;
  const V xc = at::vec::clamp(x, V(-104.f), V(88.8f));
  const V n = round_log2e(xc).n;
  const V p = exp_reduced(xc, n);
#if defined(CPU_CAPABILITY_AVX512)
  // vscalefps: p 2^n in one instruction, rounded once, overflowing to inf and underflowing
  // through the subnormals as exp does; NaN stays NaN (the clamp's min/max return it). The same
  // outputs as the branch below, sampled over every 97th float32; half the time of the whole exp
  // (0.41 -> 0.20 ns per element in cache, sigmoid 0.48 -> 0.29; 2-core AMD EPYC, Zen 4).
  return V(_mm512_scalef_ps(p, n));
#else
  using I = Vec<int32_t>;
  const V a = (n * V(0.5f)).floor();
  const auto pow2 = [](const V& e) {
    return at::vec::cast<float>((at::vec::convert_to_int_of_same_size(e) + I(127)) << I(23));
  };
  const V y = p * pow2(a) * pow2(n - a);
  // x > ln(FLT_MAX) overflows to inf; NaN passes through (the clamp would have made it finite)
  return where(ne(x, x), x, where(gt(x, V(88.72283935546875f)), V(INFINITY), y));
#endif
}

// exp(x) for x <= 0 (and NaN), bit for bit exp's results: on AVX-512 exp itself. On AVX2, n is
// in [-150, 0], so p 2^(n + 24) is a normal float, exact, and the product with 2^-24 rounds once
// into the subnormals as exp's two factors do: one exponent insertion instead of exp's floor,
// two insertions and two selects (no overflow to handle). at_least keeps NaN, which then passes
// through p. The functors call it where the argument cannot be positive: exp(-|x|) (sigmoid,
// softplus, logsigmoid, gelu_tanh) and exp(-x^2/2) (gelu's backward).
inline Vec<float> exp_nonpos(const Vec<float>& x) {
#if defined(CPU_CAPABILITY_AVX512)
  return exp(x);
#else
  using V = Vec<float>;
  const V xc = at_least(x, V(-104.f));
  const Log2Rounded k = round_log2e(xc);
  return exp_reduced(xc, k.n) * exponent_bits(k, 127 + 24) * V(5.9604644775390625e-08f);  // 2^-24
#endif
}

// exp(-x) (sigmoid's and silu's exp), bit for bit exp(0 - x): on AVX-512 the negation folds into
// the reduction, clamp(-x, lo, hi) = -clamp(x, -hi, -lo) and -x log2(e) + 1.5 * 2^23 and
// -x - n ln2 are single FMAs (vfnmsub), so -x is never formed: one instruction fewer, sigmoid's
// division form 0.218 -> 0.201 and 0.229 -> 0.222 ns per element in L1 (bench.sigmoid_forms'
// binary, two runs, Intel Xeon); fused_act.sigmoid / silu at 65,536 floats on one thread
// 13.9-14.4 -> 13.7-14.6 us and 14.1-14.6 -> 13.8-15.0 (three alternating runs of each build).
inline Vec<float> exp_neg(const Vec<float>& x) {
  using V = Vec<float>;
#if defined(CPU_CAPABILITY_AVX512)
  const V xc = at::vec::clamp(x, V(-88.8f), V(104.f));
  const V n = at::vec::fmadd(xc, V(-kLog2e), V(kRoundToInt)) - V(kRoundToInt);
  const V r = V(_mm512_fnmsub_ps(n, V(kLn2Hi), xc));
  return V(_mm512_scalef_ps(exp_poly(at::vec::fmadd(n, V(-kLn2Lo), r)), n));
#else
  return exp(V(0.f) - x);
#endif
}

// sigmoid(x). AVX2: by reflection, n / (1 + q) with q = exp(-|x|) on exp_nonpos and n = 1 for
// x >= 0, q below; n is selected beside the addition, off the division's path. 2.40 ulp at most
// over all floats (bench.math_accuracy, AVX2 build) and no flush to 0 below x = -88.7, where 1 / (1 +
// exp(-x)) overflows (docs/math.md); 65,536 floats in L2, one thread, interleaved medians on a 2-core AVX2
// EPYC: 52.6-57.7 us against the division form's 62.6-67.9 (torch.sigmoid: 72-80). AVX-512 keeps the division form: its
// exp has no special cases to drop (vscalefps), so the reflection only adds the abs and the select, which measured
// 18% slower on the Zen 4, where exp runs at the FMA pipes' rate (python -m bench.sigmoid_forms; docs/math.md).
inline Vec<float> sigmoid(const Vec<float>& x) {
  using V = Vec<float>;
#if defined(CPU_CAPABILITY_AVX512)
  return V(1.f) / (V(1.f) + exp_neg(x));
#else
  const V q = exp_nonpos(V(0.f) - x.abs());
  return where(ge(x, V(0.f)), V(1.f), q) / (V(1.f) + q);
#endif
}

// Taylor series below |x| = 0.5 (degree 9: truncation < 1e-9 relative), exp(x) - 1 above it,
// where the subtraction loses at most ~2 ulp.
inline Vec<float> expm1(const Vec<float>& x) {
  using V = Vec<float>;
  const V p = horner(x, {1.f / 362880, 1.f / 40320, 1.f / 5040, 1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f});
  return where(lt(x.abs(), V(0.5f)), p * x, exp(x) - V(1.f));
}

// expm1(x) for x <= 0 (and NaN; positive x gives 0): expm1(n ln2 + r) = 2^n (exp(r) - 1) + (2^n - 1),
// one polynomial (exp's, without its 1) and one rounding in the FMA, where expm1 above
// evaluates both its Taylor series and exp. 2^n - 1 is exact for n >= -24; below x = -30
// expm1 is -1 in float (from -17.33 on), so the clamp keeps 2^n normal (n >= -44).
// softplus's and logsigmoid's derivatives from their outputs, -expm1(-beta y) and -expm1(y),
// and elu's, selu's and celu's forwards (where() drops the positive lanes): elu's and selu's at
// 2^20 floats, Zen 4, 1.22x and 1.56x faster than on expm1 (bench/results/avx512/expm1_nonpos).
inline Vec<float> expm1_nonpos(const Vec<float>& x) {
  using V = Vec<float>;
  const V xc = at::vec::clamp(x, V(-30.f), V(0.f));
  const Log2Rounded k = round_log2e(xc);
  const V s = exponent_bits(k, 127);
  return at::vec::fmadd(s, expm1_reduced(xc, k.n), s - V(1.f));
}

// Cephes' logf after its range reduction: log(m 2^e) for f = m - 1, m in [sqrt(1/2), sqrt(2)), as
// f - f^2/2 + f^3 P(f), P of degree 8, plus e ln2 in two parts.
inline Vec<float> log_reduced(const Vec<float>& f, const Vec<float>& e) {
  using V = Vec<float>;
  const V z = f * f;
  V y = horner(f, {7.0376836292e-2f, -1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f, 1.4249322787e-1f,
                   -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f, 3.3333331174e-1f});
  y = y * f * z;
  y = at::vec::fmadd(e, V(-2.12194440e-4f), y);
  y = at::vec::fmadd(z, V(-0.5f), y);
  return at::vec::fmadd(e, V(0.693359375f), f + y);
}

// log(w) for w > 0 as Cephes' logf: w = m 2^e, m in [sqrt(1/2), sqrt(2)), then log_reduced. The
// exponent and mantissa are read from the bits (no SLEEF call: see exp). 0 gives -inf, inf gives inf, w < 0 or NaN NaN.
inline Vec<float> log(const Vec<float>& w) {
  using V = Vec<float>;
  using I = Vec<int32_t>;
  const I bits = at::vec::cast<int32_t>(w);
  // biased exponent field, exactly as a float (its low 23 bits are 0), and m in [0.5, 1)
  V e = at::vec::convert_to_fp_of_same_size<float>(bits & I(0x7F800000)) * V(1.f / 8388608.f) - V(126.f);
  V m = at::vec::cast<float>((bits & I(0x007FFFFF)) | I(0x3F000000));
  const auto small = lt(m, V(0.70710678118654752440f));
  e = where(small, e - V(1.f), e);
  const V f = where(small, m + m, m) - V(1.f);
  const V r = log_reduced(f, e);
  // subnormal w (not normalised above) falls back to the exact path: never from log1p's w >= 2^-24.
  // ge is false for NaN, so NaN gives NaN (its bits alone would give a finite r)
  return where(eq(w, V(0.f)), V(-INFINITY), where(ge(w, V(0.f)), where(eq(w, V(INFINITY)), w, r), V(NAN)));
}

// Goldberg's log1p(u) = log(w) * u / (w - 1) with w = 1 + u: the rounding of w cancels.
inline Vec<float> log1p(const Vec<float>& u) {
  using V = Vec<float>;
  const V w = V(1.f) + u;
  const V r = log(w) * (u / (w - V(1.f)));
  return where(eq(w, V(1.f)), u, where(eq(u, V(INFINITY)), u, r));
}

// log1p(u) for u in [0, 1] (softplus and logsigmoid: u = exp(-|x|); NaN passes through) as
// u + u^2 P(u), 1 + u P(u) of degree 10 fitted toward the minimax relative error of log1p on
// [0, 1] by `python -m bench.fit_rational log1p` (8.1e-9 with float coefficients): the FMA adds
// u last, so the polynomial's roundings weigh with u^2 P(u), at most 0.31 of the result. 10 FMAs
// and a multiply, where Cephes' logf after the split of 1 + u at sqrt 2 took 16 operations and
// two selects: 1.26 ulp over every float in [0, 1], was 1.39 (docs/math.md). In L1, one thread,
// both in one run (Intel Xeon): log1p_unit 0.197 -> 0.111 ns per element, softplus 0.476 ->
// 0.338-0.345, logsigmoid 0.457 -> 0.331 built for AVX-512; softplus 0.93 -> 0.58-0.60,
// logsigmoid 0.86 -> 0.52-0.55 for AVX2. u^2 is subnormal (slow) for u in [2^-75, 2^-63), x in
// [-52, -44], where log1p(u) = u; Cephes' f^3 was from x = -30 on.
inline Vec<float> log1p_unit(const Vec<float>& u) {
  const Vec<float> p = horner(u, {0.00203021523f, -0.0134074036f, 0.0414779671f, -0.0824414566f, 0.124184161f,
                                  -0.161056831f, 0.19890745f, -0.249872699f, 0.333325595f, -0.499999821f});
  return at::vec::fmadd(u * u, p, u);
}

// tanh(x) = x P(x^2) / Q(x^2), P and Q of degree 4 fitted toward the minimax relative error on [0,
// 8.5] (`python -m bench.fit_rational tanh`: 2.4e-8 with float coefficients), x clamped to [-8.5,
// 8.5], where the float32 evaluation gives exactly 1, and the result clamped to [-1, 1] (rounded in
// float32, x P / Q exceeds 1 at 2,421 of 8M points of [8.17, 8.5], by up to 2 ulp). XNNPACK's
// rational form with one more degree in Q: 8 FMAs, 2 multiplies, a division and 4 mins / maxes,
// where the exp-based form (sign(x) |e / (e + 2)|, e = expm1(-2|x|), 2.50 ulp) needed 23 operations
// and the division: in L1, one thread, 0.295 -> 0.196 ns per element on AVX-512, 0.401 -> 0.274 on
// AVX2 (Intel Xeon, both forms in one binary). Max error 5.16 ulp over all floats, 3.1e-7 absolute,
// at |x| = 7.14 where tanh is 1 - 1.3e-6 and the ulp below 1 is 6e-8 (docs/math.md). Odd and NaN-
// preserving: -0 gives -0, the clamps return NaN.
inline Vec<float> tanh(const Vec<float>& x) {
  using V = Vec<float>;
  const V xc = at::vec::clamp(x, V(-8.5f), V(8.5f));
  const V w = xc * xc;
  const V p = horner(w, {1.42687524e-08f, 2.12507603e-05f, 0.00353401224f, 0.134132355f, 1.f});
  const V q = horner(w, {8.14494683e-07f, 0.000334883895f, 0.0260226987f, 0.46746558f, 1.f});
  return at::vec::clamp(xc * p / q, V(-1.f), V(1.f));
}

// Phi and phi (see the scalar std_normal) by Abramowitz & Stegun 7.1.26, the erf of ATen's
// Vectorized<float>::erf (max abs error 1.5e-7), written for Phi itself: with z = |x| / sqrt 2,
// erfc(z) = t P(t) exp(-z^2), t = 1 / (1 + p z), so Phi(-|x|) = q = t (P(t) / 2) exp(-x^2 / 2)
// (1/sqrt 2 and 1/2 folded into p and P's coefficients) and Phi(|x|) = 1 - q. Against gelu's
// former x (1 + erf(x / sqrt 2)) / 2: no scaling of x, no sign flip of erf, no 1 + erf; the
// derivative's phi reuses q's exp. Error: docs/math.md (`python -m bench.math_accuracy`).
inline Normal<Vec<float>> std_normal(const Vec<float>& x) {
  using V = Vec<float>;
  const V t = V(1.f) / at::vec::fmadd(V(0.2316418882663604f), x.abs(), V(1.f));
  const V poly = horner(t, {0.5307027145f, -0.7265760135f, 0.7107068705f, -0.142248368f, 0.127414796f});
  const V e = exp_nonpos(V(-0.5f) * x * x);
  const V q = poly * t * e;
  return {where(lt(x, V(0.f)), q, V(1.f) - q), e * V(float(kInvSqrt2Pi))};
}

inline Vec<double> normcdf(const Vec<double>& x) { return Vec<double>(0.5) * (x * Vec<double>(-kSqrt1_2)).erfc(); }

inline Normal<Vec<double>> std_normal(const Vec<double>& x) {
  using V = Vec<double>;
  return {normcdf(x), exp(V(-0.5) * x * x) * V(kInvSqrt2Pi)};
}

// Phi alone (gelu's forward), without exp: (1 + erf(z)) / 2, z = x / sqrt 2 clamped to
// [-4.1, 4.1], erf(z) = z P(z^2) / Q(z^2) with P and Q of degree 5 fitted by
// `python -m bench.fit_rational erf` (relative error 5.4e-8 with the coefficients rounded to float).
// At the clamp it evaluates to exactly 1, so Phi is exactly 0 and 1 in the tails: gelu(-1e30) is
// -0, gelu(1e30) 1e30. 10 FMAs and a division, where std_normal's Phi spends an exp (13
// instructions), the division and 5 FMAs: gelu's forward at 2^20 floats, one thread, 0.45 ->
// 0.32 ns per element (eager's oneDNN kernel: 0.47; 2-core AMD EPYC, Zen 4). The lower tail's
// error is absolute (1 + erf cancels): 1.95e-7 at most, A&S's 3.2e-7 (docs/math.md).
inline Vec<float> normcdf(const Vec<float>& x) {
  using V = Vec<float>;
  const V z = at::vec::clamp(x * V(float(kSqrt1_2)), V(-4.1f), V(4.1f));
  const V w = z * z;
  const V p = horner(w, {1.91340882e-06f, 0.000285108428f, 0.00404923037f, 0.0536093451f, 0.197848022f, 1.12837911f});
  const V q = horner(w, {3.66844688e-05f, 0.00121969357f, 0.0155443652f, 0.117072284f, 0.508670509f, 1.f});
  return at::vec::fmadd(z * p / q, V(0.5f), V(0.5f));
}

}  // namespace fused_act::math
#endif
