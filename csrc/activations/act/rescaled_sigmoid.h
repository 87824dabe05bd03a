// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// sigmoid*(x) = 4 sigmoid(x) - 2 (must match 4*torch.sigmoid(x) - 2). It equals 2 tanh(x/2),
// which avoids the cancellation of 4s - 2 near 0; f' = 4 s (1-s) = 1 - y^2/4.
struct RescaledSigmoid {
  static constexpr const char* kName = "rescaled_sigmoid";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  FA_FN forward(T x, const P&) { return T(2) * tanh(T(0.5) * x); }
  FA_FN d_output(T y, const P&) { return T(1) - T(0.25) * y * y; }
  FA_FN d2_output(T y, const P&) { return T(-0.5) * y; }
};

}  // namespace fused_act::act
