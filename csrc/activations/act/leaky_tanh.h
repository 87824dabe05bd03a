// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// Leaky tanh: x >= 0 ? tanh(x) : a tanh(x), a >= 0 (must match torch.where(x >= 0, tanh(x),
// a*tanh(x)), whose derivative at 0 is 1). For a > 0 the sign of y is the sign of x and
// tanh(x) = y/a below 0, so f' = 1 - y^2 or a - y^2/a; a = 0 needs the input.
struct LeakyTanh {
  static constexpr const char* kName = "leaky_tanh";
  static constexpr const char* kParams = "a";
  static constexpr Saved kSaved = Saved::kEither;
  static bool output_ok(const Params<double>& p) { return p[0] > 0; }
  static const char* invalid(const Params<double>& p) { return p[0] >= 0 ? nullptr : "a must be >= 0"; }
  FA_FN forward(T x, const P& p) {
    const T t = tanh(x);
    return where(ge(x, T(0)), t, T(p[0]) * t);
  }
  FA_FN d_input(T x, const P& p) {
    const T t = tanh(x);
    const T d = T(1) - t * t;
    return where(ge(x, T(0)), d, T(p[0]) * d);
  }
  FA_FN d2_input(T x, const P& p) {
    const T t = tanh(x);
    const T d = T(-2) * t * (T(1) - t * t);
    return where(ge(x, T(0)), d, T(p[0]) * d);
  }
  FA_FN d_output(T y, const P& p) {
    const T a(p[0]);
    return where(ge(y, T(0)), T(1) - y * y, a - y * y / a);
  }
  FA_FN d2_output(T y, const P& p) {
    const T a(p[0]);
    return where(ge(y, T(0)), T(-2) * y, T(-2) * y / a);
  }
};

}  // namespace fused_act::act
