// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.softplus(x, beta, threshold): x where beta x > threshold, else log(1 + exp(beta x)) / beta.
// Written as (max(bx, 0) + log1p(exp(-|bx|))) / beta and f' = sigmoid(bx), which cannot
// overflow; torch's exp(bx) forms give inf and NaN when threshold > 88 in float32.
struct Softplus {
  static constexpr const char* kName = "softplus";
  static constexpr const char* kParams = "beta,threshold";
  static constexpr Saved kSaved = Saved::kInput;
  static const char* invalid(const Params<double>& p) { return p[0] != 0 ? nullptr : "beta must not be 0"; }
  FA_FN forward(T x, const P& p) {
    const T beta(p[0]);
    const T bx = beta * x;
    const T soft = (where(gt(bx, T(0)), bx, T(0)) + log1p_unit(exp_nonpos(T(0) - abs(bx)))) / beta;
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
};

}  // namespace fused_act::act
