// One activation functor; the contract every functor follows is in ../functor.h.
#pragma once

#include "../functor.h"

namespace fused_act::act {

// F.relu. torch's threshold_backward(grad, y, 0) passes grad where y > 0 is false only for
// y <= 0, so the derivative is 0 at x = 0 and NaN inputs pass the gradient through.
struct Relu {
  static constexpr const char* kName = "relu";
  static constexpr const char* kParams = "";
  static constexpr Saved kSaved = Saved::kOutput;
  static constexpr bool kMemoryBound = true;   // selects and multiplies (functor.h)
  static constexpr bool kZeroBySelect = true;  // torch selects 0 in the flat regions (functor.h)
  FA_FN forward(T x, const P&) { return at_least(x, T(0)); }
  FA_FN grad_output(T g, T y, const P&) { return where(le(y, T(0)), T(0), g); }
  FA_FN d_output(T y, const P& p) { return grad_output(T(1), y, p); }
  FA_FN d2_output(T, const P&) { return T(0); }
  static constexpr bool kMaskable = true;
  FA_FN d_mask(bool bit, const P&) { return bit ? T(1) : T(0); }
};

}  // namespace fused_act::act
