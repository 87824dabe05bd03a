// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// Exact GELU, x Phi(x) (Hendrycks & Gimpel 2016); F.gelu(approximate="none"), backward as
// torch's gelu_backward: Phi(x) + x phi(x).
struct Gelu {
  static constexpr const char* kName = "gelu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  static constexpr double kSqrt1_2 = 0.70710678118654752440;     // 1/sqrt(2)
  static constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2 pi)
  FA_FN forward(T x, const P&) { return x * T(0.5) * (T(1) + erf(x * T(kSqrt1_2))); }
  FA_FN d_input(T x, const P&) {
    const T cdf = T(0.5) * (T(1) + erf(x * T(kSqrt1_2)));
    const T pdf = exp(T(-0.5) * x * x) * T(kInvSqrt2Pi);
    return cdf + x * pdf;
  }
  // d/dx (Phi + x phi) = 2 phi + x phi' = phi (2 - x^2)
  FA_FN d2_input(T x, const P&) {
    const T pdf = exp(T(-0.5) * x * x) * T(kInvSqrt2Pi);
    return pdf * (T(2) - x * x);
  }
};

}  // namespace fused_act::act
