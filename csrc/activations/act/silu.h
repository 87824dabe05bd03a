// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// SiLU / swish, x sigmoid(x) (Elfwing et al. 2017); F.silu, backward as torch's silu_backward.
struct Silu {
  static constexpr const char* kName = "silu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kInput;
  FA_FN forward(T x, const P&) { return x / (T(1) + exp_neg(x)); }
  FA_FN d_input(T x, const P&) {
    const T s = sigmoid(x);
    return s * (T(1) + x * (T(1) - s));
  }
  // f' = s + x s (1-s), s' = s (1-s)  =>  f'' = s (1-s) (2 + x (1 - 2s))
  FA_FN d2_input(T x, const P&) {
    const T s = sigmoid(x);
    return s * (T(1) - s) * (T(2) + x * (T(1) - T(2) * s));
  }
};

}  // namespace fused_act::act
