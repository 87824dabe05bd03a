// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// CELU (Barron 2017), F.celu(x, alpha): x > 0 ? x : alpha expm1(x/alpha). For any alpha != 0,
// y <= 0 exactly when x <= 0 and alpha exp(x/alpha) = y + alpha: f' = 1 + y/alpha there
// (torch: elu_backward with input_scale 1/alpha, derivative 1 at 0).
struct Celu {
  static constexpr const char* kName = "celu";
  static constexpr const char* kParams = "alpha";
  static constexpr Saved kSaved = Saved::kOutput;
  static const char* invalid(const Params<double>& p) { return p[0] != 0 ? nullptr : "alpha must not be 0"; }
  FA_FN forward(T x, const P& p) {
    const T alpha(p[0]);
    return where(gt(x, T(0)), x, alpha * expm1(x / alpha));
  }
  FA_FN d_output(T y, const P& p) { return where(le(y, T(0)), T(1) + y / T(p[0]), T(1)); }
  FA_FN d2_output(T y, const P& p) { return where(le(y, T(0)), T(1) / T(p[0]), T(0)); }
};

}  // namespace fused_act::act
