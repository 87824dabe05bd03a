// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// torch.tanh; backward 1 - y^2 as torch's tanh_backward.
struct Tanh {
  static constexpr const char* kName = "tanh";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return tanh(x); }
  FA_FN d_output(T y, const P&) { return T(1) - y * y; }
  FA_FN d2_output(T y, const P&) { return T(-2) * y; }
};

}  // namespace fused_act::act
