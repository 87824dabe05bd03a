// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// 1 / (1 + exp(-x)).  torch.sigmoid; backward y(1-y) as torch's sigmoid_backward.
struct Sigmoid {
  static constexpr const char* kName = "sigmoid";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return sigmoid(x); }
  FA_FN d_output(T y, const P&) { return y * (T(1) - y); }
  FA_FN d2_output(T y, const P&) { return T(1) - T(2) * y; }
};

}  // namespace fused_act::act
