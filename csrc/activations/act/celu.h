// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// CELU (Barron 2017), F.celu(x, alpha): x > 0 ? x : alpha expm1(x/alpha), alpha != 0. torch
// differentiates it as elu_backward with input_scale 1/alpha: f' = exp(x/alpha) for x <= 0
// (1 at 0), 1 above. y <= 0 exactly when x <= 0, and alpha exp(x/alpha) = y + alpha there, so
// f' = 1 + y/alpha. With alpha < 0, y = alpha expm1(x/alpha) grows without bound below 0 and
// overflows a half output (x < -16.6 for alpha = -1.5) where f' and g f' may not: the output
// form would give inf, so a negative alpha keeps the input (as elu does).
struct Celu {
  static constexpr const char* kName = "celu";
  static constexpr const char* kParams = "alpha";
  static constexpr Saved kSaved = Saved::kEither;
  static bool output_ok(const Params<double>& p) { return p[0] > 0; }
  static const char* invalid(const Params<double>& p) { return p[0] != 0 ? nullptr : "alpha must not be 0"; }
  // u = x / alpha as torch forms it, x times 1/alpha. For alpha > 0, u <= 0 on the lanes the
  // select keeps, so elu's expm1_nonpos serves (forward at 2^20 floats 1.64x faster than on
  // expm1, Intel AVX-512; docs/speed-log.md); a negative alpha makes u >= 0 there and needs expm1.
  FA_FN forward(T x, const P& p) {
    const T u = x * T(1 / p[0]);
    return where(gt(x, T(0)), x, T(p[0]) * (p[0] > 0 ? expm1_nonpos(u) : expm1(u)));
  }
  FA_FN d_input(T x, const P& p) { return where(le(x, T(0)), exp(x * T(1 / p[0])), T(1)); }
  FA_FN d2_input(T x, const P& p) { return where(le(x, T(0)), exp(x * T(1 / p[0])) * T(1 / p[0]), T(0)); }
  FA_FN d_output(T y, const P& p) { return where(le(y, T(0)), T(1) + y * T(1 / p[0]), T(1)); }
  FA_FN d2_output(T y, const P& p) { return where(le(y, T(0)), T(1 / p[0]), T(0)); }
};

}  // namespace fused_act::act
