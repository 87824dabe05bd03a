// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.elu(x, alpha): x > 0 ? x : alpha * expm1(x). torch's elu_backward(is_result=true):
// y <= 0 ? grad * (y + alpha) : grad, so the derivative at 0 is alpha. With alpha >= 0,
// y <= 0 exactly when x <= 0; a negative alpha falls back to the input form.
struct Elu {
  static constexpr const char* kName = "elu";
  static constexpr const char* kParams = "alpha";
  static constexpr Saved kSaved = Saved::kEither;
  static bool output_ok(const Params<double>& p) { return p[0] >= 0; }
  static const char* invalid(const Params<double>&) { return nullptr; }
  FA_FN forward(T x, const P& p) { return where(gt(x, T(0)), x, T(p[0]) * expm1_nonpos(x)); }
  FA_FN d_input(T x, const P& p) { return where(le(x, T(0)), T(p[0]) * exp(x), T(1)); }
  FA_FN d2_input(T x, const P& p) { return where(le(x, T(0)), T(p[0]) * exp(x), T(0)); }
  FA_FN d_output(T y, const P& p) { return where(le(y, T(0)), y + T(p[0]), T(1)); }
  FA_FN d2_output(T y, const P&) { return where(le(y, T(0)), T(1), T(0)); }
};

}  // namespace fused_act::act
