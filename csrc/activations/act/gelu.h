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
  FA_FN forward(T x, const P&) { return x * normcdf(x); }
  FA_FN d_input(T x, const P&) {
    const auto n = std_normal(x);
    return n.cdf + x * n.pdf;
  }
  // d/dx (Phi + x phi) = 2 phi + x phi' = phi (2 - x^2)
  FA_FN d2_input(T x, const P&) { return exp_nonpos(T(-0.5) * x * x) * T(kInvSqrt2Pi) * (T(2) - x * x); }
};

}  // namespace fused_act::act
