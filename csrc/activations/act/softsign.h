// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.softsign: x / (1 + |x|). f' = 1/(1+|x|)^2 = (1 - |y|)^2 since 1 - |y| = 1/(1+|x|).
struct Softsign {
  static constexpr const char* kName = "softsign";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return x / (T(1) + abs(x)); }
  FA_FN d_output(T y, const P&) {
    const T r = T(1) - abs(y);
    return r * r;
  }
  // d/dy (1-|y|)^2 = -2 sign(y) (1-|y|); sign(0) = 0 as torch's abs backward.
  FA_FN d2_output(T y, const P&) {
    const T sign = where(gt(y, T(0)), T(1), where(lt(y, T(0)), T(-1), T(0)));
    return T(-2) * sign * (T(1) - abs(y));
  }
};

}  // namespace fused_act::act
