// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.softplus(x, beta, threshold): x where beta x > threshold, else log(1 + exp(beta x)) / beta.
// Written as (max(bx, 0) + log1p(exp(-|bx|))) / beta and f' = sigmoid(bx), which cannot
// overflow; torch's exp(bx) forms give inf and NaN when threshold > 88 in float32.
//
// From the output (for any sign of beta): by = softplus(bx) > 0 on the soft side, and
// sigmoid(bx) = 1 - exp(-softplus(bx)) = -expm1(-by), accurate at both ends as logsigmoid's.
// The linear side has by = bx > threshold. The two sides' by overlap in
// (threshold, softplus(threshold)], a width of log1p(exp(-threshold)) < exp(-threshold): there
// the output form answers 1 where torch answers sigmoid(bx) >= sigmoid(threshold - exp(-threshold)),
// off by less than exp(-threshold) (torch's own forward jumps by that much at the threshold).
// For threshold >= 25 ln 2 that is under float32's half ulp below 1 (2^-25), so float32
// sigmoid(bx) rounds to the same 1; the default threshold 20 gives 2e-9. Smaller thresholds
// keep the input form (its backward reads x, so an in-place forward clones it). In place at 2^24
// the output form took forward + backward from 46.3 to 26.6 ms (Zen 4; README); expm1_nonpos
// keeps its backward at the input form's speed (27.6 against 28.0 us at 65,536, one thread).
struct Softplus {
  static constexpr const char* kName = "softplus";
  static constexpr const char* kParams = "beta,threshold";
  static constexpr Saved kSaved = Saved::kEither;
  static bool output_ok(const Params<double>& p) { return p[1] >= 25 * 0.69314718055994531; }
  static const char* invalid(const Params<double>& p) { return p[0] != 0 ? nullptr : "beta must not be 0"; }
  // Times 1/beta, not divided by beta (vdivps alone takes 0.18 ns per float32 on the Intel Xeon,
  // docs/math.md): forward at 65,536 floats 2.58x -> 2.72x eager's (bench.call_cost, two runs
  // each, AVX-512). Exact for beta = 1 and powers of 2, one more rounding otherwise.
  FA_FN forward(T x, const P& p) {
    const T bx = T(p[0]) * x;
    const T soft = (where(gt(bx, T(0)), bx, T(0)) + log1p_unit(exp_nonpos(T(0) - abs(bx)))) * T(1 / p[0]);
    return where(gt(bx, T(p[1])), x, soft);
  }
  FA_FN d_input(T x, const P& p) {
    const T bx = T(p[0]) * x;
    return where(gt(bx, T(p[1])), T(1), sigmoid(bx));
  }
  FA_FN d2_input(T x, const P& p) {
    const T beta(p[0]);
    const T bx = beta * x;
    const T s = sigmoid(bx);
    return where(gt(bx, T(p[1])), T(0), beta * s * (T(1) - s));
  }
  FA_FN d_output(T y, const P& p) {
    const T by = T(p[0]) * y;
    return where(gt(by, T(p[1])), T(1), T(0) - expm1_nonpos(T(0) - by));
  }
  // d/dy of -expm1(-by) is beta exp(-by) = beta (1 - sigmoid(bx)).
  FA_FN d2_output(T y, const P& p) {
    const T beta(p[0]);
    const T by = beta * y;
    return where(gt(by, T(p[1])), T(0), beta * exp_neg(by));
  }
};

}  // namespace fused_act::act
